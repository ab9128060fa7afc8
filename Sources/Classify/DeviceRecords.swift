import Foundation

/// One access of the sva-accel device as its `records` chardev reports it
/// (guest/qemu/patches/0005): a page-sized chunk of a job, the PASID it
/// carried, and where it landed or that it faulted, timed with the guest's
/// virtual counter.
public struct DeviceRecord: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable {
        /// The access succeeded and reached this guest physical address.
        case reached(UInt64)
        /// The access succeeded; the device could not say where ("pa=?").
        case reachedSomewhere
        case fault
        /// The access stalled in the SMMU (tag `stag`): neither reached nor faulted yet. A
        /// retry is recorded as a new access, an abort as a fault at its resume.
        case stalled(stag: Int)
    }

    /// CNTVCT (CNTVOFF = 0) just before the access.
    public var counter: UInt64
    public var slot: Int
    /// nil: the access carried no PASID (the DMA API's address space).
    public var pasid: Int?
    public var isWrite: Bool
    public var iova: UInt64
    public var length: UInt64
    public var outcome: Outcome

    public var succeeded: Bool {
        switch outcome {
        case .reached, .reachedSomewhere: true
        case .fault, .stalled: false
        }
    }

    /// The record as the device wrote it (rebuilt from the fields: the
    /// parser keeps no text of its own per record).
    public var line: String {
        let where_: String
        switch outcome {
        case .reached(let pa): where_ = "pa=0x" + String(pa, radix: 16)
        case .reachedSomewhere: where_ = "pa=?"
        case .fault: where_ = "fault"
        case .stalled(let stag): where_ = "stall stag=\(stag)"
        }
        return "t=\(counter) slot=\(slot) pasid=\(pasid.map(String.init) ?? "-") dir=\(isWrite ? "w" : "r") "
            + "iova=0x\(String(iova, radix: 16)) len=\(length) \(where_)"
    }
}

/// One decision of the emulated SMMUv3 as its `records` chardev reports it
/// (guest/qemu/patches/0007), timed with the same counter as the device's
/// records. The SMMU writes each line when it decides, while sva-accel writes
/// its lines after each run of its engine: the SMMU's line for an access comes
/// before the device's line for it in the file.
public struct SmmuRecord: Sendable, Equatable {
    /// `CMD_CFGI_*`: `ste_range` names the range's first StreamID, `all` is
    /// `CMD_CFGI_ALL` (StreamID 0).
    public enum CfgiKind: String, Sendable, CaseIterable {
        case ste, ste_range = "ste_range", all, cd, cd_all = "cd_all"
    }

    /// `CMD_TLBI_*`: `asid` and `va` name an ASID; `va`, `vaa` and `s2_ipa`
    /// an address and a page count; the others invalidate every ASID.
    public enum TlbiKind: String, Sendable, CaseIterable {
        case asid, va, vaa, all, nsnh_all = "nsnh_all", s12_vmall = "s12_vmall", s2_ipa = "s2_ipa"

        var hasAsid: Bool { self == .asid || self == .va }
        var hasRange: Bool { self == .va || self == .vaa || self == .s2_ipa }
    }

    public enum Decision: Sendable, Equatable {
        /// A context descriptor fetched into the configuration cache (a miss).
        case cd(sid: UInt32, ssid: Int?, asid: Int, ttb0: UInt64, valid: Bool)
        case cfgi(CfgiKind, sid: UInt32, ssid: Int?)
        /// `pages`: of the command's granule, 1 for a command without range.
        case tlbi(TlbiKind, asid: Int?, iova: UInt64?, pages: UInt64?)
        /// A translation served from an IOTLB entry a context with another
        /// TTB0 filled (one record per entry and serving context).
        case staleHit(sid: UInt32, ssid: Int?, asid: Int, iova: UInt64, ttb0: UInt64, filledSsid: Int?, filledTtb0: UInt64)
        /// A faulting transaction held (stall, QEMU patch 0008); `recorded`: its event reached
        /// the event queue (false: the queue was not writable, it is retried).
        case stall(sid: UInt32, ssid: Int?, iova: UInt64, stag: Int, recorded: Bool)
        /// A stall ended: retried (CMD_RESUME with retry) or aborted (CMD_RESUME with abort,
        /// CMD_STALL_TERM, the SMMU disabled or reset).
        case resume(sid: UInt32, stag: Int, retry: Bool)
    }

    /// CNTVCT (CNTVOFF = 0) when the SMMU decided.
    public var counter: UInt64
    public var decision: Decision

    public init(counter: UInt64, decision: Decision) {
        self.counter = counter
        self.decision = decision
    }

    /// Whether the command invalidates TLB entries of `asid` at `iova`: by ASID,
    /// by every ASID, or by an address range over it (taken in 4 KiB pages, the
    /// granule Linux uses; a command without range covers the page at its address).
    public func invalidatesTlb(asid: Int, iova: UInt64) -> Bool {
        guard case .tlbi(let kind, let a, let start, let pages) = decision else { return false }
        switch kind {
        case .asid: return a == asid
        case .all, .nsnh_all, .s12_vmall: return true
        case .s2_ipa: return false
        case .va, .vaa:
            if kind == .va, a != asid { return false }
            guard let start, let pages else { return false }
            let first = start >> 12, page = iova >> 12
            return page >= first && page - first < pages
        }
    }

    /// The record as the SMMU wrote it (rebuilt from the fields).
    public var line: String {
        func ssid(_ value: Int?) -> String { value.map(String.init) ?? "-" }
        func hex<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16) }
        let body: String
        switch decision {
        case .cd(let sid, let s, let asid, let ttb0, let valid):
            body = "cd sid=\(hex(sid)) ssid=\(ssid(s)) asid=\(asid) ttb0=\(hex(ttb0)) valid=\(valid ? 1 : 0)"
        case .cfgi(let kind, let sid, let s):
            body = "cfgi kind=\(kind.rawValue) sid=\(hex(sid)) ssid=\(ssid(s))"
        case .tlbi(let kind, let asid, let iova, let pages):
            body = "tlbi kind=\(kind.rawValue) asid=\(ssid(asid)) iova=\(iova.map { hex($0) } ?? "-") "
                + "num=\(pages.map(String.init) ?? "-")"
        case .staleHit(let sid, let s, let asid, let iova, let ttb0, let fs, let fttb0):
            body = "stale-hit sid=\(hex(sid)) ssid=\(ssid(s)) asid=\(asid) iova=\(hex(iova)) ttb0=\(hex(ttb0)) "
                + "filled-ssid=\(ssid(fs)) filled-ttb0=\(hex(fttb0))"
        case .stall(let sid, let s, let iova, let stag, let recorded):
            body = "stall sid=\(hex(sid)) ssid=\(ssid(s)) iova=\(hex(iova)) stag=\(stag) recorded=\(recorded ? 1 : 0)"
        case .resume(let sid, let stag, let retry):
            body = "resume sid=\(hex(sid)) stag=\(stag) action=\(retry ? "retry" : "abort")"
        }
        return "t=\(counter) smmu=\(body)"
    }
}

/// The records file (`device.log`), parsed: sva-accel's accesses and, when the
/// SMMU records its decisions too (QEMU writes both to the file through two
/// `file` chardevs opened in append mode), the SMMU's. The file is written by
/// emulated devices a guest drives, so it is untrusted: a line that does not
/// have exactly the documented shape is counted and skipped, numbers that
/// overflow are rejected, at most `limitBytes`, `maxRecords` device records and
/// `maxSmmuRecords` SMMU records are kept, and nothing in it can make the
/// parser trap. The two sources are counted apart: a line whose second word
/// starts with `smmu=` (or the SMMU's header) is the SMMU's.
///
/// The format, one record a line, fields in this order, single spaces:
///
///     # sva-accel records v1 counter-hz=<dec>
///     t=<dec> slot=<dec> pasid=<dec|-> dir=<r|w> iova=0x<hex> len=<dec> pa=0x<hex>|pa=?|fault|stall stag=<dec>
///     # arm-smmuv3 records v1 counter-hz=<dec>
///     t=<dec> smmu=cd sid=0x<hex> ssid=<dec|-> asid=<dec> ttb0=0x<hex> valid=<0|1>
///     t=<dec> smmu=cfgi kind=<ste|ste_range|all|cd|cd_all> sid=0x<hex> ssid=<dec|->
///     t=<dec> smmu=tlbi kind=<asid|va|vaa|all|nsnh_all|s12_vmall|s2_ipa> asid=<dec|-> iova=0x<hex>|- num=<dec>|-
///     t=<dec> smmu=stale-hit sid=0x<hex> ssid=<dec|-> asid=<dec> iova=0x<hex> ttb0=0x<hex>
///         filled-ssid=<dec|-> filled-ttb0=0x<hex>      (one line)
///     t=<dec> smmu=stall sid=0x<hex> ssid=<dec|-> iova=0x<hex> stag=<dec> recorded=<0|1>
///     t=<dec> smmu=resume sid=0x<hex> stag=<dec> action=<retry|abort>
///
/// The stall lines come from a stalling SMMU (QEMU patch 0008, `stall=force`): the
/// device writes `stall stag=<tag>` where an access was held, and the access again
/// when it is retried (a new record) or aborted (`fault`, timed at the resume).
/// A cfgi of kind `cd` names a SubstreamID, the other kinds `-`; a tlbi names an
/// ASID exactly for `asid` and `va`, an address and a page count (at least 1)
/// exactly for `va`, `vaa` and `s2_ipa`; a stale hit's two TTB0s differ. ASIDs
/// and stall tags are 16 bits, SubstreamIDs 20, StreamIDs 32.
public struct DeviceLog: Sendable {
    /// From the header line; nil when there was none (the records cannot
    /// be placed on the trace's clock then).
    public private(set) var counterHz: UInt64?
    public private(set) var records: [DeviceRecord] = []
    /// Lines that are not records (or a second header), the SMMU's aside.
    public private(set) var rejectedLines = 0
    /// Records whose counter is below the one before: a device's records
    /// are in time order, so these are lies or corruption (kept, counted).
    public private(set) var outOfOrder = 0
    /// The file went past `limitBytes` or `maxRecords`: the rest was not read
    /// (past `maxRecords` alone, the SMMU's records still are).
    public private(set) var truncated = false
    public private(set) var bytes = 0

    /// From the SMMU's header line; nil when there was none.
    public private(set) var smmuCounterHz: UInt64?
    /// The SMMU's records in file order (the order it decided in).
    public private(set) var smmuRecords: [SmmuRecord] = []
    /// SMMU lines (`t=... smmu=...`, a second SMMU header) of the wrong shape.
    public private(set) var smmuRejectedLines = 0
    /// SMMU records whose counter is below the SMMU's record before.
    public private(set) var smmuOutOfOrder = 0
    /// More than `maxSmmuRecords`: the SMMU's later records were not kept.
    public private(set) var smmuTruncated = false

    public static let header = "# sva-accel records v1 counter-hz="
    public static let smmuHeader = "# arm-smmuv3 records v1 counter-hz="
    public static let maxLineLength = 256
    public static let defaultLimitBytes = 16 << 20
    public static let maxRecords = 400_000
    public static let maxSmmuRecords = 100_000

    public init() {}

    /// Reads at most `limitBytes` of the file at `path`; a missing file is
    /// an empty log.
    public static func load(path: String, limitBytes: Int = defaultLimitBytes) -> DeviceLog {
        guard let handle = FileHandle(forReadingAtPath: path) else { return DeviceLog() }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: limitBytes &+ 1)) ?? Data()
        return parse(data, limitBytes: limitBytes)
    }

    public static func parse(_ data: some Collection<UInt8>, limitBytes: Int = defaultLimitBytes) -> DeviceLog {
        var log = DeviceLog()
        let bytes = Array(data.prefix(max(0, limitBytes)))
        log.truncated = data.count > bytes.count
        log.bytes = bytes.count
        var start = 0
        var lastCounter: UInt64 = 0, lastSmmuCounter: UInt64 = 0
        var deviceFull = false
        while start < bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "\n") { end += 1 }
            // A last line without its newline may have been cut mid-write.
            if end == bytes.count, log.truncated { break }
            let line = bytes[start..<end]
            start = end + 1
            if line.isEmpty { continue }
            let smmu = isSmmuLine(line)
            if line.count > maxLineLength {
                if smmu { log.smmuRejectedLines += 1 } else { log.rejectedLines += 1 }
                continue
            }
            if line.first == UInt8(ascii: "#") {
                if smmu {
                    if log.smmuCounterHz == nil, let hz = parseHeader(line, smmuHeader) {
                        log.smmuCounterHz = hz
                    } else {
                        log.smmuRejectedLines += 1
                    }
                } else if log.counterHz == nil, let hz = parseHeader(line) {
                    log.counterHz = hz
                } else {
                    log.rejectedLines += 1
                }
                continue
            }
            if smmu {
                guard let record = parseSmmuRecord(line) else { log.smmuRejectedLines += 1; continue }
                guard log.smmuRecords.count < maxSmmuRecords else { log.smmuTruncated = true; continue }
                if record.counter < lastSmmuCounter { log.smmuOutOfOrder += 1 }
                lastSmmuCounter = max(lastSmmuCounter, record.counter)
                log.smmuRecords.append(record)
                continue
            }
            guard let record = parseRecord(line) else { log.rejectedLines += 1; continue }
            // Past the cap the device's records are dropped; the SMMU's are still read.
            if deviceFull || log.records.count >= maxRecords { deviceFull = true; log.truncated = true; continue }
            if record.counter < lastCounter { log.outOfOrder += 1 }
            lastCounter = max(lastCounter, record.counter)
            log.records.append(record)
        }
        return log
    }

    /// The SMMU's header, or a line whose second word starts with `smmu=`.
    static func isSmmuLine(_ line: ArraySlice<UInt8>) -> Bool {
        if line.starts(with: Array("# arm-smmuv3 ".utf8)) { return true }
        guard line.starts(with: Array("t=".utf8)), let space = line.firstIndex(of: UInt8(ascii: " ")) else { return false }
        return line[(space + 1)...].starts(with: Array("smmu=".utf8))
    }

    static func parseHeader(_ line: ArraySlice<UInt8>, _ header: String = header) -> UInt64? {
        let prefix = Array(header.utf8)
        guard line.count > prefix.count, line.starts(with: prefix) else { return nil }
        guard let hz = decimal(line.dropFirst(prefix.count)), hz > 0, hz <= 10_000_000_000 else { return nil }
        return hz
    }

    /// `t=<dec> slot=<dec> pasid=<dec|-> dir=<r|w> iova=0x<hex> len=<dec> pa=0x<hex>|pa=?|fault`,
    /// the fields in this order, single spaces.
    static func parseRecord(_ line: ArraySlice<UInt8>) -> DeviceRecord? {
        let words = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard words.count == 7 || (words.count == 8 && words[6].elementsEqual("stall".utf8)),
              let counter = value(words[0], "t=").flatMap(decimal),
              let slot = value(words[1], "slot=").flatMap(decimal), slot < 32,
              let pasidText = value(words[2], "pasid="),
              let dir = value(words[3], "dir="), dir.count == 1,
              let iova = value(words[4], "iova=").flatMap(hex),
              let length = value(words[5], "len=").flatMap(decimal), length > 0, length <= 4096
        else { return nil }
        var pasid: Int?
        if !(pasidText.count == 1 && pasidText.first == UInt8(ascii: "-")) {
            guard let value = decimal(pasidText), value < 1 << 20 else { return nil }
            pasid = Int(value)
        }
        let isWrite: Bool
        switch dir.first {
        case UInt8(ascii: "r"): isWrite = false
        case UInt8(ascii: "w"): isWrite = true
        default: return nil
        }
        let outcome: DeviceRecord.Outcome
        if words.count == 8 {
            guard let stag = value(words[7], "stag=").flatMap(decimal), stag < 1 << 16 else { return nil }
            outcome = .stalled(stag: Int(stag))
        } else if words[6].elementsEqual("fault".utf8) {
            outcome = .fault
        } else if words[6].elementsEqual("pa=?".utf8) {
            outcome = .reachedSomewhere
        } else if let pa = value(words[6], "pa=").flatMap(hex) {
            outcome = .reached(pa)
        } else {
            return nil
        }
        return DeviceRecord(counter: counter, slot: Int(slot), pasid: pasid, isWrite: isWrite, iova: iova,
                            length: length, outcome: outcome)
    }

    /// One of the SMMU's six record shapes (see the type's comment), exactly.
    static func parseSmmuRecord(_ line: ArraySlice<UInt8>) -> SmmuRecord? {
        let words = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard words.count >= 2, let counter = value(words[0], "t=").flatMap(decimal),
              let what = value(words[1], "smmu=") else { return nil }
        func sid(_ word: ArraySlice<UInt8>) -> UInt32? {
            value(word, "sid=").flatMap(hex).flatMap { UInt32(exactly: $0) }
        }
        /// `-` is nil; a number must be below 2^bits.
        func optional(_ word: ArraySlice<UInt8>, _ key: String, bits: Int) -> Int?? {
            guard let text = value(word, key) else { return nil }
            if text.elementsEqual("-".utf8) { return .some(nil) }
            guard let n = decimal(text), n < 1 << UInt64(bits) else { return nil }
            return .some(Int(n))
        }
        func asid(_ word: ArraySlice<UInt8>) -> Int? {
            guard let n = value(word, "asid=").flatMap(decimal), n < 1 << 16 else { return nil }
            return Int(n)
        }
        let decision: SmmuRecord.Decision
        switch String(decoding: what, as: UTF8.self) {
        case "cd":
            guard words.count == 7, let sid = sid(words[2]), let ssid = optional(words[3], "ssid=", bits: 20),
                  let asid = asid(words[4]), let ttb0 = value(words[5], "ttb0=").flatMap(hex),
                  let valid = value(words[6], "valid="), valid.count == 1,
                  valid.first == UInt8(ascii: "0") || valid.first == UInt8(ascii: "1")
            else { return nil }
            decision = .cd(sid: sid, ssid: ssid, asid: asid, ttb0: ttb0, valid: valid.first == UInt8(ascii: "1"))
        case "cfgi":
            guard words.count == 5,
                  let kind = value(words[2], "kind=").flatMap({ SmmuRecord.CfgiKind(rawValue: String(decoding: $0, as: UTF8.self)) }),
                  let sid = sid(words[3]), let ssid = optional(words[4], "ssid=", bits: 20),
                  (ssid != nil) == (kind == .cd)
            else { return nil }
            decision = .cfgi(kind, sid: sid, ssid: ssid)
        case "tlbi":
            guard words.count == 6,
                  let kind = value(words[2], "kind=").flatMap({ SmmuRecord.TlbiKind(rawValue: String(decoding: $0, as: UTF8.self)) }),
                  let asid = optional(words[3], "asid=", bits: 16), (asid != nil) == kind.hasAsid,
                  let iovaText = value(words[4], "iova="), let numText = value(words[5], "num=")
            else { return nil }
            var iova: UInt64?, pages: UInt64?
            if kind.hasRange {
                guard let address = hex(iovaText), let n = decimal(numText), n > 0 else { return nil }
                iova = address
                pages = n
            } else {
                guard iovaText.elementsEqual("-".utf8), numText.elementsEqual("-".utf8) else { return nil }
            }
            decision = .tlbi(kind, asid: asid, iova: iova, pages: pages)
        case "stall":
            guard words.count == 7, let sid = sid(words[2]), let ssid = optional(words[3], "ssid=", bits: 20),
                  let iova = value(words[4], "iova=").flatMap(hex),
                  let stag = value(words[5], "stag=").flatMap(decimal), stag < 1 << 16,
                  let recorded = value(words[6], "recorded="), recorded.count == 1,
                  recorded.first == UInt8(ascii: "0") || recorded.first == UInt8(ascii: "1")
            else { return nil }
            decision = .stall(sid: sid, ssid: ssid, iova: iova, stag: Int(stag), recorded: recorded.first == UInt8(ascii: "1"))
        case "resume":
            guard words.count == 5, let sid = sid(words[2]),
                  let stag = value(words[3], "stag=").flatMap(decimal), stag < 1 << 16,
                  let action = value(words[4], "action="),
                  action.elementsEqual("retry".utf8) || action.elementsEqual("abort".utf8)
            else { return nil }
            decision = .resume(sid: sid, stag: Int(stag), retry: action.elementsEqual("retry".utf8))
        case "stale-hit":
            guard words.count == 9, let sid = sid(words[2]), let ssid = optional(words[3], "ssid=", bits: 20),
                  let asid = asid(words[4]), let iova = value(words[5], "iova=").flatMap(hex),
                  let ttb0 = value(words[6], "ttb0=").flatMap(hex),
                  let filledSsid = optional(words[7], "filled-ssid=", bits: 20),
                  let filledTtb0 = value(words[8], "filled-ttb0=").flatMap(hex), filledTtb0 != ttb0
            else { return nil }
            decision = .staleHit(sid: sid, ssid: ssid, asid: asid, iova: iova, ttb0: ttb0, filledSsid: filledSsid,
                                 filledTtb0: filledTtb0)
        default:
            return nil
        }
        return SmmuRecord(counter: counter, decision: decision)
    }

    /// The rest of `word` after `key` (`pid=`, `va=`…), when there is a rest; the record and
    /// marker parsers' one way of reading a `key=value` word.
    static func value(_ word: ArraySlice<UInt8>, _ key: String) -> ArraySlice<UInt8>? {
        let prefix = Array(key.utf8)
        guard word.count > prefix.count, word.starts(with: prefix) else { return nil }
        return word.dropFirst(prefix.count)
    }

    /// Decimal digits only, at most UInt64.max; anything else is nil.
    static func decimal(_ digits: ArraySlice<UInt8>) -> UInt64? {
        guard !digits.isEmpty, digits.count <= 20 else { return nil }
        var value: UInt64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            if o1 || o2 { return nil }
            value = sum
        }
        return value
    }

    /// `0x` and 1 to 16 hex digits.
    static func hex(_ text: ArraySlice<UInt8>) -> UInt64? {
        guard text.count > 2, text.count <= 18, text.starts(with: Array("0x".utf8)) else { return nil }
        var value: UInt64 = 0
        for byte in text.dropFirst(2) {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            default: return nil
            }
            value = value << 4 | UInt64(digit)
        }
        return value
    }
}
