import Foundation

/// The workload's claim on physical pages, written to `trace_marker` by the
/// process that owns them:
///
///     kharness-owned pid=<dec> va=0x<hex> pa=0x<hex> len=<dec>
///
/// After writing every byte of [va, va+len) the process read
/// `/proc/self/pagemap` and found the run backed by the physically contiguous
/// [pa, pa+len). `va`, `pa` and `len` are page-aligned (4 KiB), `len` at
/// least a page and both ends within 64 bits, `pid` at most 4194304 and the
/// record's TASK-PID (a claim speaks for its writer's address space only);
/// anything else is counted as malformed and skipped.
struct OwnedMarker: Sendable, Equatable {
    static let prefix = "kharness-owned"
    static let pageShift: UInt64 = 12

    var pid: Int
    var vaPage: UInt64
    var paPage: UInt64
    var pages: UInt64

    static func parse(payload: some StringProtocol) -> OwnedMarker? {
        guard payload.utf8.count <= 160 else { return nil }
        let words = Array(payload.utf8).split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        let mask: UInt64 = (1 << pageShift) - 1
        guard words.count == 5, words[0].elementsEqual(prefix.utf8),
              let pid = DeviceLog.value(words[1], "pid=").flatMap(DeviceLog.decimal), pid <= RangeMarker.maxPid,
              let va = DeviceLog.value(words[2], "va=").flatMap(DeviceLog.hex), va & mask == 0,
              let pa = DeviceLog.value(words[3], "pa=").flatMap(DeviceLog.hex), pa & mask == 0,
              let len = DeviceLog.value(words[4], "len=").flatMap(DeviceLog.decimal), len > 0, len & mask == 0,
              !va.addingReportingOverflow(len).overflow, !pa.addingReportingOverflow(len).overflow
        else { return nil }
        return OwnedMarker(pid: Int(pid), vaPage: va >> pageShift, paPage: pa >> pageShift, pages: len >> pageShift)
    }

    enum Reading {
        case notMarker, malformed, foreign
        case marker(OwnedMarker)
    }

    static func read(pid writer: Int, payload: some StringProtocol) -> Reading {
        let payload = payload.trimmingCharacters(in: .whitespaces)
        guard payload == prefix || payload.hasPrefix(prefix + " ") else { return .notMarker }
        guard let m = parse(payload: payload) else { return .malformed }
        return m.pid == writer ? .marker(m) : .foreign
    }
}

extension DeviceOracle {
    /// Ownership markers kept, and pages they may claim in all: the trace is the guest's.
    static let maxOwnedMarkers = 4096
    static let maxOwnedPages: UInt64 = 1 << 18

    /// How a claim ended: what the page can be after it.
    enum ClaimEnd: Sendable, Equatable {
        /// Still the claimant's when the trace (or what can be judged of it) ends.
        case open
        /// The process unmapped, moved or changed the range (one of its range markers).
        case unmapped
        /// The process exited or exec'd: its pages went back to the allocator.
        case exited
        case execed
        /// The process forked: the page is shared copy-on-write with the child.
        case forked
        /// The process claimed the range again.
        case reclaimed
    }

    struct Claim {
        var marker: OwnedMarker
        var ts: Double
        var line: String
        var end = Double.infinity
        var ended = ClaimEnd.open
        var endLine: String?

        func covers(vaPage page: UInt64) -> Bool { page >= marker.vaPage && page - marker.vaPage < marker.pages }
        func covers(paPage page: UInt64) -> Bool { page >= marker.paPage && page - marker.paPage < marker.pages }
    }

    /// A DMA that reached a physical page other than the one its process has at that address:
    /// a translation the SMMU should no longer have (an ASID freed and reused while its old
    /// translations were still cached, a context descriptor pointing at another address
    /// space's tables), which delivers one process's DMA into another's memory, or into memory
    /// the allocator has taken back.
    ///
    /// The workload claims its pages (`OwnedMarker`) after writing them. A successful access
    /// through PASID P is one when all of these hold:
    /// - a binding of P by process C (the bind's `pid`, a thread group) was bound before the
    ///   access's interval and not unbound before its end;
    /// - C had claimed the access's page (iova >> 12) before the access (the marker's time,
    ///   truncated to the microsecond, plus that microsecond) and the claim had not ended by
    ///   then: C's fork (the page is shared copy-on-write from then on), exit or exec, a range
    ///   marker of C's over the claim (`kharness-unmapping` before `munmap()` and the calls like
    ///   it, `-unmapped`, `-readonly`, `-remapping`), a later claim of the same range, the end
    ///   of the trace;
    /// - the access reached (`pa=`) a page other than the claimed one.
    ///
    /// The claimant's page cannot have moved under it: the guest kernel has no page migration,
    /// compaction, KSM or swap, and the claimed pages were written before the claim (no
    /// copy-on-write pending). Whose page the access reached opens the evidence: a live claim of
    /// another process, a claim that ended with its owner's exit, exec or unmap (freed), or
    /// nobody the trace knows of. Not the title, which must not change with what the workload
    /// happened to claim (a bisect follows it). Judged only in a whole trace: a fork, exit or
    /// range marker lost to an overrun would leave a claim open past the moment the page stopped
    /// being the claimant's. One violation per binding; the first such access, and the last
    /// access that reached the same page outside this binding with the binding it went through,
    /// as evidence.
    mutating func judgeDmaToOtherPages(log: DeviceLog, traceLines: [String], events: [TraceEvent],
                                       clock: CounterClock) {
        var claims: [Claim] = []
        var malformed = 0, foreign = 0, dropped = 0
        var pages: UInt64 = 0
        var seen: Set<String> = []
        var traceEnd = events.reduce(-Double.infinity) { max($0, $1.ts) }
        // Range markers by writer, as va page ranges: each ends the claims it overlaps.
        var ranges: [Int: [(from: UInt64, to: UInt64, ts: Double, line: String)]] = [:]
        for line in traceLines where line.contains("kharness-") {
            guard let record = TraceEvent.record(of: line), record.event == "tracing_mark_write" else { continue }
            traceEnd = max(traceEnd, record.ts)
            switch RangeMarker.read(pid: record.pid, payload: record.payload) {
            case .marker(let m):
                guard ranges[m.pid, default: []].count < Self.maxRangeMarkers else { continue }
                ranges[m.pid, default: []].append((m.va >> 12, ((m.end &- 1) >> 12) &+ 1, record.ts,
                                                   line.trimmingCharacters(in: .whitespaces)))
                continue
            case .malformed, .foreign: continue
            case .notMarker: break
            }
            switch OwnedMarker.read(pid: record.pid, payload: record.payload) {
            case .notMarker: continue
            case .malformed: malformed += 1
            case .foreign: foreign += 1
            case .marker(let m):
                let micros = Int.clamping((record.ts * 1_000_000).rounded()) ?? 0
                let key = "\(micros) \(m.pid) \(m.vaPage) \(m.paPage) \(m.pages)"
                guard !seen.contains(key) else { continue }
                guard claims.count < Self.maxOwnedMarkers, pages + m.pages <= Self.maxOwnedPages else {
                    dropped += 1
                    continue
                }
                seen.insert(key)
                pages += m.pages
                claims.append(Claim(marker: m, ts: record.ts, line: line.trimmingCharacters(in: .whitespaces)))
            }
        }
        if malformed > 0 { notes.append("device records: \(malformed) malformed kharness-owned markers skipped") }
        if foreign > 0 { notes.append("device records: \(foreign) kharness-owned markers naming a pid other than their writer's skipped") }
        if dropped > 0 {
            notes.append("device records: \(dropped) kharness-owned markers past the first \(Self.maxOwnedMarkers) "
                + "(or \(Self.maxOwnedPages) pages) not judged")
        }
        guard !claims.isEmpty else { return }
        claims.sort { $0.ts < $1.ts }

        // What ends a claim, by the claimant's pid, in time order.
        var ends: [Int: [(ts: Double, kind: ClaimEnd, line: String)]] = [:]
        let claimants = Set(claims.map(\.marker.pid))
        for event in events where claimants.contains(event.pid) {
            switch event.kind {
            case .fork: ends[event.pid, default: []].append((event.ts, .forked, event.line))
            case .exit: ends[event.pid, default: []].append((event.ts, .exited, event.line))
            case .exec: ends[event.pid, default: []].append((event.ts, .execed, event.line))
            default: break
            }
        }
        for i in claims.indices {
            let c = claims[i]
            func end(_ ts: Double, _ kind: ClaimEnd, _ line: String?) {
                if ts >= c.ts, ts < claims[i].end { (claims[i].end, claims[i].ended, claims[i].endLine) = (ts, kind, line) }
            }
            if let list = ends[c.marker.pid], let first = list.first(where: { $0.ts >= c.ts }) {
                end(first.ts, first.kind, first.line)
            }
            let high = c.marker.vaPage + c.marker.pages
            for r in ranges[c.marker.pid] ?? [] where r.ts >= c.ts && r.from < high && c.marker.vaPage < r.to {
                end(r.ts, .unmapped, r.line)
            }
            // A later claim by the same process over the same addresses replaces this one.
            for later in claims[(i + 1)...] where later.marker.pid == c.marker.pid && later.ts > c.ts {
                if later.marker.vaPage < high && c.marker.vaPage < later.marker.vaPage + later.marker.pages {
                    end(later.ts, .reclaimed, later.line)
                    break
                }
            }
            if traceEnd < claims[i].end { (claims[i].end, claims[i].ended, claims[i].endLine) = (traceEnd, .open, nil) }
        }

        // Successful accesses by PASID, in counter order, and every binding of those PASIDs.
        var byPasid: [Int: [Int]] = [:]
        for (i, record) in log.records.enumerated() where record.succeeded {
            if let pasid = record.pasid { byPasid[pasid, default: []].append(i) }
        }
        let records = log.records
        for p in byPasid.keys { byPasid[p]!.sort { records[$0].counter < records[$1].counter } }
        let bindings = Self.pairBindings(events) { byPasid[$0] != nil }
        var claimsByPid: [Int: [Int]] = [:]
        for (i, c) in claims.enumerated() { claimsByPid[c.marker.pid, default: []].append(i) }

        var visits = 0, unjudged = 0
        for pasid in bindings.keys.sorted() {
            let accesses = byPasid[pasid]!
            for binding in bindings[pasid]! {
                guard violations.count < 64 else { break }
                guard let mine = claimsByPid[binding.bind.pid] else { continue }
                let unbound = binding.unbind?.ts ?? .infinity
                var first: (record: Int, claim: Int)?
                var count = 0, bytes: UInt64 = 0
                for k in mine {
                    let claim = claims[k]
                    let from = max(claim.ts + CounterClock.traceResolution, binding.bind.ts)
                    let to = min(claim.end, unbound)
                    guard from < to else { continue }
                    let low = Self.firstIndex(accesses) { clock.interval(records[$0].counter).earliest >= from }
                    let high = Self.firstIndex(accesses) { clock.interval(records[$0].counter).latest >= to }
                    guard low < high else { continue }
                    guard visits + (high - low) <= Self.maxRangeRecordVisits else { unjudged += 1; continue }
                    visits += high - low
                    for index in accesses[low..<high] {
                        let record = records[index]
                        let vaPage = record.iova >> 12
                        guard claim.covers(vaPage: vaPage), case .reached(let pa) = record.outcome,
                              pa >> 12 != claim.marker.paPage + (vaPage - claim.marker.vaPage) else { continue }
                        count += 1
                        bytes = bytes.addingReportingOverflow(record.length).partialValue
                        if first == nil || records[index].counter < records[first!.record].counter {
                            first = (index, k)
                        }
                    }
                }
                guard let first else { continue }
                violations.append(otherPageViolation(record: first.record, claim: claims[first.claim], claims: claims,
                                                     binding: binding, bindings: bindings, count: count, bytes: bytes,
                                                     records: records, clock: clock))
            }
        }
        if unjudged > 0 {
            notes.append("device records: \(unjudged) claimed ranges not judged: \(Self.maxRangeRecordVisits) record looks spent")
        }
    }

    private func otherPageViolation(record index: Int, claim: Claim, claims: [Claim],
                                    binding: (bind: TraceEvent, unbind: TraceEvent?),
                                    bindings: [Int: [(bind: TraceEvent, unbind: TraceEvent?)]], count: Int, bytes: UInt64,
                                    records: [DeviceRecord], clock: CounterClock) -> PasidLifecycleOracle.Violation {
        let record = records[index]
        let (earliest, latest) = clock.interval(record.counter)
        guard case .reached(let pa) = record.outcome else { preconditionFailure("judged accesses reached a page") }
        let paPage = pa >> 12
        let pasid = record.pasid ?? -1
        let expected = (claim.marker.paPage + (record.iova >> 12) - claim.marker.vaPage) << 12
        let title = "device DMA through PASID \(pasid) of pid \(binding.bind.pid) reached a page other than its own"
        // Whose the page was: a live claim of it, else the last claim of it that ended before
        // the access. In the evidence, not the title: which it is depends on what the workload
        // happened to claim, and the title must stay the same from run to run.
        let reached = "pa 0x\(String(paPage << 12, radix: 16))"
        var owner: Claim?
        var whose = "owner: no process claimed the page reached (\(reached))"
        if let live = claims.last(where: { $0.covers(paPage: paPage) && $0.ts + CounterClock.traceResolution <= earliest
            && $0.end > latest }) {
            owner = live
            whose = "owner: the page reached (\(reached)) is pid \(live.marker.pid)'s, claimed and still mapped"
        } else if let gone = claims.last(where: { $0.covers(paPage: paPage) && $0.end <= earliest }) {
            owner = gone
            switch gone.ended {
            case .exited: whose = "owner: the page reached (\(reached)) was freed by the exit of pid \(gone.marker.pid)"
            case .execed: whose = "owner: the page reached (\(reached)) was freed by the exec of pid \(gone.marker.pid)"
            case .unmapped: whose = "owner: the page reached (\(reached)) was unmapped by pid \(gone.marker.pid)"
            case .forked: whose = "owner: the page reached (\(reached)) was pid \(gone.marker.pid)'s, shared with a child since its fork"
            case .open, .reclaimed: owner = nil
            }
        }
        var evidence = [
            whose,
            "trace: \(binding.bind.line)",
            "trace: \(claim.line)",
            "device: \(record.line) (trace time \(Self.seconds(earliest)) or later; pid \(binding.bind.pid)'s page "
                + "at iova 0x\(String((record.iova >> 12) << 12, radix: 16)) is pa 0x\(String(expected, radix: 16)))",
        ]
        if let owner {
            evidence.append("trace: \(owner.line) (the page it reached)")
            if let endLine = owner.endLine, owner.end <= earliest { evidence.append("trace: \(endLine)") }
        }
        // The last access that reached the same page outside this binding (through another PASID,
        // or before the bind), and the binding it went through: whose translation it likely was.
        if let before = records[..<index].last(where: {
            guard case .reached(let p) = $0.outcome, p >> 12 == paPage, $0.counter <= record.counter else { return false }
            return $0.pasid != record.pasid || clock.interval($0.counter).latest < binding.bind.ts
        }) {
            let (beforeEarliest, beforeLatest) = clock.interval(before.counter)
            evidence.append("device: \(before.line) (trace time \(Self.seconds(beforeEarliest)) or later: the last "
                + "access that reached that page outside this binding)")
            if let pasid = before.pasid, let through = bindings[pasid]?.last(where: {
                $0.bind.ts <= beforeEarliest && ($0.unbind?.ts ?? .infinity) >= beforeLatest
            }) {
                evidence.append("trace: \(through.bind.line) (the binding that access went through)")
                if let unbind = through.unbind, unbind.ts < earliest {
                    evidence.append("trace: \(unbind.line) (its unbind, before this access)")
                }
            }
        }
        evidence.append("device: \(count) accesses (\(bytes) bytes) of the binding reached pages other than its process's own")
        if let unbind = binding.unbind { evidence.append("trace: \(unbind.line)") }
        evidence.append("clock: counter at \(clock.counterHz) Hz, offset known to "
            + "\(Self.micros(clock.high - clock.low)) us from \(clock.samples) marker pairs")
        return .init(title: title, evidence: evidence)
    }
}
