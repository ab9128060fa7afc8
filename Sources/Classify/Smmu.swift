/// Arm SMMUv3 console output: event records, queue overflows, command timeouts, global errors.
///
/// Kernels up to v6.13 print an event as `arm-smmu-v3 <dev>: event 0xNN received:`
/// followed by the four raw record doublewords; from v6.14 the raw dump is followed by
/// a decoded line, `event: <NAME> client: <dev> sid: 0x… ssid: 0x… iova: 0x… ipa: 0x…`.
/// Both are decoded here into one ``SmmuEvent``.
enum Smmu {
    /// Event names by event number, from the Arm SMMUv3 architecture (event queue records).
    static let eventNames: [Int: String] = [
        0x01: "F_UUT", 0x02: "C_BAD_STREAMID", 0x03: "F_STE_FETCH", 0x04: "C_BAD_STE",
        0x05: "F_BAD_ATS_TREQ", 0x06: "F_STREAM_DISABLED", 0x07: "F_TRANSL_FORBIDDEN",
        0x08: "C_BAD_SUBSTREAMID", 0x09: "F_CD_FETCH", 0x0A: "C_BAD_CD", 0x0B: "F_WALK_EABT",
        0x10: "F_TRANSLATION", 0x11: "F_ADDR_SIZE", 0x12: "F_ACCESS", 0x13: "F_PERMISSION",
        0x20: "F_TLB_CONFLICT", 0x21: "F_CFG_CONFLICT", 0x24: "E_PAGE_REQUEST", 0x25: "F_VMS_FETCH",
    ]

    static func name(forID id: Int) -> String {
        if let n = eventNames[id] { return n }
        if (0xE0...0xEF).contains(id) { return "IMPDEF_EVENT_\(hex(UInt64(truncatingIfNeeded: id)))" }
        return "UNKNOWN(\(hex(UInt64(truncatingIfNeeded: id))))"
    }

    /// Decodes a raw event record.
    ///
    /// Layout (SMMUv3 architecture, event queue record): doubleword 0 holds the event
    /// number in bits [7:0], SSV in bit 11, SubstreamID in bits [31:12] and StreamID in
    /// bits [63:32]. For translation, address-size, access and permission faults,
    /// doubleword 1 has RnW in bit 35 (1 = read) and S2 in bit 39, doubleword 2 is the
    /// input address and doubleword 3 bits [51:12] the faulting IPA. For STE/CD/VMS fetch
    /// faults doubleword 3 is the fetch address.
    static func decode(raw: [UInt64], line: Int) -> SmmuEvent {
        let d0 = raw.first ?? 0
        let id = Int(d0 & 0xFF)
        let ssv = d0 & (1 << 11) != 0
        var event = SmmuEvent(
            name: name(forID: id), id: id, streamID: UInt32(truncatingIfNeeded: d0 >> 32),
            substreamID: ssv ? UInt32((d0 >> 12) & 0xFFFFF) : nil, raw: raw, line: line)
        let isFault = (0x10...0x13).contains(id)
        if isFault, raw.count >= 3 {
            event.read = raw[1] & (1 << 35) != 0
            event.address = raw[2]
            if raw.count >= 4, raw[1] & (1 << 39) != 0 { event.ipa = raw[3] & 0x000F_FFFF_FFFF_F000 }
        } else if [0x03, 0x09, 0x25].contains(id), raw.count >= 4 {
            event.address = raw[3] & 0x000F_FFFF_FFFF_FFF8
        } else if id == 0x05 || id == 0x07 || id == 0x0B, raw.count >= 3 {
            event.address = raw[2]
        }
        return event
    }

    /// Parses the v6.14+ decoded line (the text after `event: `):
    /// `F_TRANSLATION client: 0000:00:02.0 sid: 0x10 ssid: 0x1 iova: 0x8000 ipa: 0x0`.
    static func parseDecoded(_ text: Substring, line: Int) -> SmmuEvent {
        let name = String(text.prefix(while: { $0 != " " }))
        var event = SmmuEvent(name: name, line: line)
        event.id = eventNames.first(where: { $0.value == name })?.key
        if let c = text.range(of: " client: ") {
            let rest = text[c.upperBound...]
            let end = rest.range(of: " sid: ")?.lowerBound ?? rest.endIndex
            event.client = String(rest[..<end])
        }
        event.streamID = field(text, " sid: ").map { UInt32(truncatingIfNeeded: $0) }
        event.substreamID = field(text, " ssid: ").map { UInt32(truncatingIfNeeded: $0) }
        event.address = field(text, " iova: ") ?? field(text, " fetch_addr: ")
        if let ipa = field(text, " ipa: "), ipa != 0 { event.ipa = ipa }
        return event
    }

    private static func field(_ text: Substring, _ key: String) -> UInt64? {
        guard let r = text.range(of: key) else { return nil }
        let token = text[r.upperBound...].prefix(while: { $0 != " " && $0 != "," })
        return parseNumber(token)
    }

    /// `0x1f`, `0X1F`, `31`.
    static func parseNumber(_ token: Substring) -> UInt64? {
        let t = token.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix("0x") || t.hasPrefix("0X") { return UInt64(t.dropFirst(2), radix: 16) }
        return UInt64(t, radix: 10)
    }

    static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

    /// An event whose raw dump was cut short.
    static func partial(_ c: (id: Int, line: Int, dwords: [UInt64])) -> SmmuEvent {
        if c.dwords.isEmpty { return SmmuEvent(name: name(forID: c.id), id: c.id, line: c.line) }
        return decode(raw: c.dwords, line: c.line)
    }

    /// One line describing the event, for report text and logs.
    static func describe(_ e: SmmuEvent) -> String {
        var parts = ["SMMU event \(e.name)"]
        if let id = e.id { parts.append("id \(hex(UInt64(truncatingIfNeeded: id)))") }
        if let c = e.client { parts.append("client \(c)") }
        if let s = e.streamID { parts.append("sid \(hex(UInt64(s)))") }
        if let s = e.substreamID { parts.append("ssid \(hex(UInt64(s)))") }
        if let a = e.address { parts.append("address \(hex(a))") }
        if let i = e.ipa { parts.append("ipa \(hex(i))") }
        if let r = e.read { parts.append(r ? "read" : "write") }
        if !e.raw.isEmpty { parts.append("raw [" + e.raw.map { hex($0) }.joined(separator: " ") + "]") }
        return parts.joined(separator: " ")
    }
}

import Foundation

/// Follows the SMMU lines of a console and turns them into events and reports.
struct SmmuTracker {
    enum Action {
        case event(SmmuEvent)
        case report(title: String, text: String, line: Int)
    }

    /// Raw dwords still being collected after `event 0xNN received:`.
    private var collecting: (id: Int, line: Int, dwords: [UInt64])?
    /// A complete event waiting for a possible v6.14 decoded line.
    private(set) var pending: SmmuEvent?
    private(set) var pendingSince = 0

    /// `message` is the text after `arm-smmu-v3 <dev>: `.
    mutating func handle(message: Substring, line: Int) -> [Action] {
        var actions: [Action] = []
        let m = message.trimmingCharacters(in: .whitespaces)[...]
        if var c = collecting {
            if m.hasPrefix("0x"), let v = Smmu.parseNumber(m) {
                c.dwords.append(v)
                if c.dwords.count == 4 {
                    collecting = nil
                    actions += flush()
                    pending = Smmu.decode(raw: c.dwords, line: c.line)
                    pendingSince = line
                } else {
                    collecting = c
                }
                return actions
            }
            // Cut short: decode what arrived.
            collecting = nil
            actions += flush()
            pending = Smmu.partial(c)
            pendingSince = line
        }
        if m.hasPrefix("event 0x"), m.hasSuffix("received:") {
            actions += flush()
            let idText = m.dropFirst("event ".count).prefix(while: { $0 != " " })
            // The event number is the record's low byte; the guest may print any number.
            collecting = (Int((Smmu.parseNumber(idText) ?? 0) & 0xFF), line, [])
            pendingSince = line
            return actions
        }
        if m.hasPrefix("event: ") {
            let decoded = Smmu.parseDecoded(m.dropFirst("event: ".count), line: line)
            if var p = pending, p.name == decoded.name, p.client == nil,
               decoded.streamID == nil || p.streamID == decoded.streamID
            {
                p.client = decoded.client
                if p.address == nil { p.address = decoded.address }
                if p.ipa == nil { p.ipa = decoded.ipa }
                pending = p
            } else {
                actions += flush()
                pending = decoded
                pendingSince = line
            }
            return actions
        }
        if var p = pending, m.hasPrefix("unpriv ") || m.hasPrefix("priv ") {
            if p.read == nil { p.read = m.contains(" read ") }
            pending = p
            return actions
        }
        actions += flush()
        if m.hasPrefix("EVTQ overflow") {
            actions.append(.report(title: "arm-smmu-v3: EVTQ overflow", text: String(m), line: line))
        } else if m.hasPrefix("PRIQ overflow") {
            actions.append(.report(title: "arm-smmu-v3: PRIQ overflow", text: String(m), line: line))
        } else if m.hasPrefix("CMD_SYNC timeout") {
            actions.append(.report(title: "arm-smmu-v3: CMD_SYNC timeout", text: String(m), line: line))
        } else if m.hasPrefix("CMDQ error") {
            let what = m.components(separatedBy: "): ").dropFirst().first.map { ": " + $0 } ?? ""
            actions.append(.report(title: "arm-smmu-v3: CMDQ error" + what, text: String(m), line: line))
        } else if m.hasPrefix("unexpected global error") || m.hasPrefix("device has entered Service Failure Mode")
            || m.hasPrefix("GERROR") || m.contains("MSI write aborted") || m.contains("write aborted --")
        {
            actions.append(.report(title: "arm-smmu-v3: global error", text: String(m), line: line))
        }
        return actions
    }

    /// Commits the waiting event, if any.
    mutating func flush() -> [Action] {
        var actions: [Action] = []
        if let c = collecting {
            collecting = nil
            pending = Smmu.partial(c)
        }
        if let p = pending {
            pending = nil
            actions.append(.event(p))
        }
        return actions
    }

    var isIdle: Bool { collecting == nil && pending == nil }
}
