import Foundation

/// Where the device's counter sits on the trace's clock.
///
/// The guest's trace clock (`global`, sched_clock) and the device's records
/// (CNTVCT) both count the same virtual counter, but sched_clock starts from
/// its own epoch, so the offset between them is measured: the workload reads
/// the counter, writes a `kharness-cntvct before=<c1>` marker, reads it again
/// and writes `kharness-cntvct after=<c2>`. The first marker's timestamp was
/// taken between the two reads, so each pair bounds the offset from both
/// sides; the tightest bounds of all pairs win. A DMA is then ordered against
/// a trace event only when its whole interval is on one side: no guesses.
public struct CounterClock: Sendable, Equatable {
    public var counterHz: UInt64
    /// Trace time = counter / counterHz + offset, offset in [low, high] seconds.
    public var low: Double
    public var high: Double
    public var samples: Int

    /// ftrace prints microseconds, truncated.
    static let traceResolution = 1e-6
    public static let markerBefore = "kharness-cntvct before="
    public static let markerAfter = "kharness-cntvct after="

    /// nil when the trace has no complete pair, or the pairs contradict each
    /// other (a counter that is not the trace's, or markers that lie).
    public static func calibrate(counterHz: UInt64, traceLines: [String]) -> CounterClock? {
        guard counterHz > 0 else { return nil }
        let period = 1 / Double(counterHz)
        var pending: [Int: (ts: Double, before: UInt64)] = [:]
        var low = -Double.infinity, high = Double.infinity, samples = 0
        for line in traceLines where line.contains("kharness-cntvct ") {
            guard let record = TraceEvent.record(of: line), record.event == "tracing_mark_write" else { continue }
            let payload = record.payload.trimmingCharacters(in: .whitespaces)
            if let value = number(after: markerBefore, in: payload) {
                pending[record.pid] = (record.ts, value)
            } else if let value = number(after: markerAfter, in: payload), let first = pending.removeValue(forKey: record.pid) {
                guard value >= first.before else { return nil }
                low = max(low, first.ts - Double(value) * period)
                high = min(high, first.ts + traceResolution - Double(first.before) * period)
                samples += 1
            }
        }
        guard samples > 0, low <= high + traceResolution else { return nil }
        return CounterClock(counterHz: counterHz, low: low, high: max(low, high), samples: samples)
    }

    /// The earliest and latest trace time the counter value can be.
    public func interval(_ counter: UInt64) -> (earliest: Double, latest: Double) {
        let seconds = Double(counter) / Double(counterHz)
        return (seconds + low, seconds + high)
    }

    private static func number(after prefix: String, in text: String) -> UInt64? {
        guard text.hasPrefix(prefix) else { return nil }
        return DeviceLog.decimal(ArraySlice(Array(text.dropFirst(prefix.count).prefix(21).utf8)))
    }
}

/// Joins the device's records with the kernel's trace: the device-side
/// oracles of issue 12, the first three a successful DMA at a time the kernel
/// had promised the device could not reach the memory, the fourth a DMA that
/// faulted where the kernel had promised it would reach it, the fifth a DMA
/// that reached memory the kernel had promised was another's:
/// - the 2022 bug's own damage: a DMA through a PASID that succeeded after
///   its address space was torn down and before the binding was released.
///   "Torn down" is the return of `__mmu_notifier_release()` in the task that
///   ran `exit_mmap()`: from then on the IOMMU driver must have stopped
///   translating for the mm (arm-smmu-v3 installs a CD that faults
///   everything), while the binding lives on until the driver unbinds.
///   Faults in that window are the expected outcome and are not reported.
/// - a DMA through a PASID that succeeded while no binding held it (judged
///   only in a whole trace: a lost bind event would look the same).
/// - a stale IOTLB entry's damage: a DMA that succeeded to a page the process
///   had unmapped, or a write that succeeded to a page it had made read-only,
///   after `munmap()`/`mprotect()` returned. The mm notifier's invalidation
///   must have reached the SMMU before the syscall returned; a kernel that
///   skips it leaves the device reaching the old page. The workload says
///   what it unmapped with trace markers (see `RangeMarker`).
/// - a live binding's damage: a DMA through a PASID that faulted on a page
///   the device had reached through the same binding before, while the
///   binding was live, its address space not torn down, the process had not
///   touched the page (no range marker) and, for a write, had not forked
///   since: the PASID's context descriptor was cleared or replaced under the
///   binding (judged only in a whole trace: a lost unbind or `exit_mmap`
///   would make a dead binding look live).
/// - another address space's damage: a DMA that reached a physical page other
///   than the one its process had claimed at that address (`OwnedMarker`):
///   a page of another process, one freed, or one nobody claimed
///   (`judgeDmaToOtherPages`, judged only in a whole trace).
///
/// Every order is on the shared clock (`CounterClock`) and only an access
/// whose whole interval is on one side counts.
public struct DeviceOracle: Sendable {
    public internal(set) var violations: [PasidLifecycleOracle.Violation] = []
    /// Why the oracle could not judge, or what looked wrong in the records;
    /// for the run's evidence, never a verdict on their own.
    public internal(set) var notes: [String] = []
    public private(set) var clock: CounterClock?

    public static let releaseEvent = "mmu_notifier_release_ret"

    /// `traceComplete`: the trace lost nothing (footer seen, no overruns, not cut). Only
    /// then can an access with no binding around it be judged: a lost bind event would
    /// look exactly like one. `bindingsTraced`: the device's driver traces its binds and
    /// unbinds (sva_accel does; the in-tree uio_pci_generic_sva of the uio pattern does
    /// not): without them only the range markers' oracle can judge.
    public init(log: DeviceLog, traceLines: [String], events: [TraceEvent], traceComplete: Bool = false,
                bindingsTraced: Bool = true) {
        if log.rejectedLines > 0 { notes.append("device records: \(log.rejectedLines) malformed lines skipped") }
        if log.outOfOrder > 0 { notes.append("device records: \(log.outOfOrder) records out of time order") }
        if log.truncated { notes.append("device records: cut at \(log.bytes >> 20) MiB") }
        judgeStaleTlbHits(log: log)
        var clock: CounterClock?
        if !log.records.isEmpty {
            if let hz = log.counterHz {
                clock = CounterClock.calibrate(counterHz: hz, traceLines: traceLines)
                if clock == nil {
                    notes.append("device records: the trace has no consistent kharness-cntvct markers: not judged")
                }
            } else {
                notes.append("device records: no header, so no counter frequency: not judged")
            }
        }
        // A stall left pending when a run ended early is nobody's fault but the crash's. Without
        // the clock only stalls never answered at all are judged.
        if traceComplete { judgeUnresumedStalls(log: log, events: bindingsTraced ? events : [], clock: clock) }
        guard let clock else { return }
        self.clock = clock
        // Markers are positive evidence: a lost one only hides a violation, so a
        // partial trace is judged too.
        judgeDmaToUnmappedPages(log: log, traceLines: traceLines, events: events, clock: clock)
        guard bindingsTraced else {
            notes.append("device records: the device's driver traces no binds (uio_pci_generic_sva), so DMA after "
                + "teardown, outside every binding and faults while a binding was live are not judged")
            return
        }
        judgeDmaAfterTeardown(log: log, traceLines: traceLines, events: events, clock: clock)
        if traceComplete {
            judgeDmaWithoutBinding(log: log, events: events, clock: clock)
            judgeFaultsWhileBound(log: log, traceLines: traceLines, events: events, clock: clock)
            judgeDmaToOtherPages(log: log, traceLines: traceLines, events: events, clock: clock)
        } else {
            notes.append("device records: the trace is not whole, so DMA outside every binding, "
                + "faults while a binding was live and DMA to pages other than the process's own are not judged")
        }
    }

    /// A successful access through a PASID while no binding of the device held it: before
    /// its bind, after its unbind returned (the driver stops the device before it unbinds),
    /// or through a PASID never bound. Judged by order on the shared clock only: an access
    /// whose interval touches a binding is not one.
    private mutating func judgeDmaWithoutBinding(log: DeviceLog, events: [TraceEvent], clock: CounterClock) {
        // Every binding of a PASID as a time interval; unbound at the trace's end if never.
        let held = Self.pairBindings(events)
        var accesses: [Int: [DeviceRecord]] = [:]
        for record in log.records where record.succeeded {
            if let pasid = record.pasid { accesses[pasid, default: []].append(record) }
        }
        for pasid in accesses.keys.sorted() {
            let intervals = (held[pasid] ?? []).map { (from: $0.bind.ts, to: $0.unbind?.ts ?? .infinity, bind: $0.bind, unbind: $0.unbind) }
                .sorted { $0.from < $1.from }
            // The times some binding held the PASID: one process may bind it more than once
            // (two opens of the device, a thread), so the bindings are merged first.
            var covered: [(from: Double, to: Double)] = []
            for i in intervals {
                if let last = covered.last, i.from <= last.to {
                    covered[covered.count - 1].to = max(last.to, i.to)
                } else {
                    covered.append((i.from, i.to))
                }
            }
            var outside: [DeviceRecord] = []
            for record in accesses[pasid]! {
                let (earliest, latest) = clock.interval(record.counter)
                // The last covered stretch that began before the access could have ended.
                var low = 0, high = covered.count
                while low < high {
                    let mid = low + (high - low) / 2
                    if covered[mid].from <= latest { low = mid + 1 } else { high = mid }
                }
                if !(low > 0 && covered[low - 1].to >= earliest) { outside.append(record) }
            }
            guard let first = outside.first, violations.count < 64 else { continue }
            let (earliest, _) = clock.interval(first.counter)
            let before = intervals.last { $0.from <= earliest }
            var evidence = ["device: \(first.line) (trace time \(Self.seconds(earliest)) or later)"]
            if let before, let unbind = before.unbind {
                evidence.insert("trace: \(before.bind.line)", at: 0)
                evidence.append("trace: \(unbind.line)")
            } else if let next = intervals.first(where: { $0.from > earliest }) {
                evidence.append("trace: \(next.bind.line) (the next bind)")
            } else {
                evidence.append("trace: no bind of PASID \(pasid) in the whole trace")
            }
            evidence.append("device: \(outside.count) accesses through PASID \(pasid) succeeded while no binding held it")
            evidence.append("clock: counter at \(clock.counterHz) Hz, offset known to "
                + "\(Self.micros(clock.high - clock.low)) us from \(clock.samples) marker pairs")
            violations.append(.init(title: "device DMA through PASID \(pasid) reached memory while no binding held it",
                                    evidence: evidence))
        }
    }

    private struct Teardown {
        var ts: Double
        var exitLine: String
        var releaseLine: String
    }

    private mutating func judgeDmaAfterTeardown(log: DeviceLog, traceLines: [String], events: [TraceEvent],
                                                 clock: CounterClock) {
        // Release returns by thread, in trace order.
        var releases: [Int: [(ts: Double, line: String)]] = [:]
        for line in traceLines where line.contains(Self.releaseEvent) {
            guard let record = TraceEvent.record(of: line), record.event == Self.releaseEvent,
                  releases[record.pid, default: []].count < 4096 else { continue }
            releases[record.pid, default: []].append((record.ts, line.trimmingCharacters(in: .whitespaces)))
        }
        // Each mm's teardowns in trace order: its exit_mmap, then the release's return in the
        // same thread. An mm_struct's address is reused by later processes, so one address
        // has a teardown per process that had it.
        var teardowns: [String: [Teardown]] = [:]
        for event in events where event.kind == .mmExit {
            guard let mm = event.mm, teardowns[mm, default: []].count < 4096,
                  let release = releases[event.thread]?.first(where: { $0.ts >= event.ts }) else { continue }
            teardowns[mm, default: []].append(Teardown(ts: release.ts, exitLine: event.line, releaseLine: release.line))
        }
        // Successful PASID accesses by PASID, in counter order.
        var byPasid: [Int: [DeviceRecord]] = [:]
        for record in log.records where record.succeeded {
            if let pasid = record.pasid { byPasid[pasid, default: []].append(record) }
        }
        for pasid in byPasid.keys { byPasid[pasid]!.sort { $0.counter < $1.counter } }

        for (index, bind) in events.enumerated() where bind.kind == .bind {
            guard let pasid = bind.pasid, let mm = bind.mm,
                  let down = teardowns[mm]?.first(where: { $0.ts >= bind.ts }),
                  let accesses = byPasid[pasid] else { continue }
            let unbind = events[(index + 1)...].first { $0.kind == .unbind && $0.pasid == pasid && $0.mm == mm }
            let end = unbind?.ts ?? .infinity
            guard down.ts < end else { continue }
            // Accesses are in counter order and the interval is monotonic in it: the window
            // is one run of them, found by binary search (a trace may bind thousands of times).
            let from = Self.firstIndex(accesses) { clock.interval($0.counter).earliest > down.ts }
            let to = Self.firstIndex(accesses) { clock.interval($0.counter).latest >= end }
            let inWindow = from < to ? accesses[from..<to] : []
            guard let first = inWindow.first, let last = inWindow.last else { continue }
            let (earliest, _) = clock.interval(first.counter)
            let (lastEarliest, _) = clock.interval(last.counter)
            let bytes = inWindow.reduce(UInt64(0)) { $0.addingReportingOverflow($1.length).partialValue }
            let title = "device DMA through PASID \(pasid) reached memory after the address space of pid \(bind.pid) was torn down"
            var evidence = [
                "trace: \(bind.line)",
                "trace: \(down.exitLine)",
                "trace: \(down.releaseLine)",
                "device: \(first.line) (trace time \(Self.seconds(earliest)) or later, "
                    + "\(Self.micros(earliest - down.ts)) us after the release returned)",
            ]
            if inWindow.count > 1 {
                evidence.append("device: \(last.line) (trace time \(Self.seconds(lastEarliest)) or later)")
            }
            evidence.append("device: \(inWindow.count) accesses (\(bytes) bytes) through PASID \(pasid) succeeded "
                + "between the release and " + (unbind == nil ? "the end of the trace" : "the unbind"))
            if let unbind { evidence.append("trace: \(unbind.line)") }
            evidence.append("clock: counter at \(clock.counterHz) Hz, offset known to "
                + "\(Self.micros(clock.high - clock.low)) us from \(clock.samples) marker pairs")
            if violations.count < 64 { violations.append(.init(title: title, evidence: evidence)) }
        }
    }

    public static func seconds(_ value: Double) -> String { String(format: "%.6f", value) }
    static func micros(_ value: Double) -> String { String(format: "%.1f", value * 1e6) }
}

/// One of the workload's markers about its own address space, written to
/// `trace_marker` (a `tracing_mark_write:` record) by process `pid`, whose
/// binding of the device has PASID `pasid`:
///
///     kharness-unmapped pid=<dec> pasid=<dec> va=0x<hex> len=<dec>
///     kharness-readonly pid=<dec> pasid=<dec> va=0x<hex> len=<dec>
///     kharness-remapping pid=<dec> pasid=<dec> va=0x<hex> len=<dec>
///     kharness-unmapping pid=<dec> pasid=<dec> va=0x<hex> len=<dec>
///
/// `unmapped` is written after `munmap()` of [va, va+len) returned, `readonly`
/// after `mprotect(PROT_READ)` of it returned, `remapping` before the process
/// maps anything there again (or makes it writable), `unmapping` before it
/// calls `munmap()`, `madvise()`, `mremap()` or `mprotect()` on the range (so
/// a fault from then on is its own doing). The payload is exactly
/// these five words, single spaces, in this order (trailing whitespace aside):
/// decimal numbers without sign, `va` as `0x` and 1 to 16 lower-case hex
/// digits, `pid` at most 4194304 (PID_MAX_LIMIT), `pasid` 1 to 2^20-1, `len`
/// at least 1 and va+len within 64 bits. The guest writes them, so anything
/// else is counted as malformed and skipped.
struct RangeMarker: Sendable, Equatable {
    enum Kind: String, Sendable, CaseIterable {
        case unmapped = "kharness-unmapped"
        case readonly = "kharness-readonly"
        case remapping = "kharness-remapping"
        case unmapping = "kharness-unmapping"
    }

    var kind: Kind
    var ts: Double
    var pid: Int
    var pasid: Int
    var va: UInt64
    /// va + len: the range is [va, end).
    var end: UInt64
    /// The trace record, trimmed.
    var line: String

    static let maxPid: UInt64 = 4_194_304

    /// The marker in a `tracing_mark_write` payload; nil when it is not one of
    /// the four, or is malformed (`isMarker` tells the two apart).
    static func parse(payload: some StringProtocol) -> (kind: Kind, pid: Int, pasid: Int, va: UInt64, end: UInt64)? {
        guard payload.utf8.count <= 160 else { return nil }
        let words = Array(payload.utf8).split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard words.count == 5, let kind = Kind.allCases.first(where: { words[0].elementsEqual($0.rawValue.utf8) }),
              let pid = DeviceLog.value(words[1], "pid=").flatMap(DeviceLog.decimal), pid <= maxPid,
              let pasid = DeviceLog.value(words[2], "pasid=").flatMap(DeviceLog.decimal), pasid > 0, pasid < 1 << 20,
              let va = DeviceLog.value(words[3], "va=").flatMap(DeviceLog.hex),
              let len = DeviceLog.value(words[4], "len=").flatMap(DeviceLog.decimal), len > 0
        else { return nil }
        let (end, overflow) = va.addingReportingOverflow(len)
        guard !overflow else { return nil }
        return (kind, Int(pid), Int(pasid), va, end)
    }

    /// What one trace record says as a range marker. A marker speaks for the process
    /// that wrote it only: one whose `pid=` is not the record's TASK-PID is `foreign`
    /// and ignored, so no process can open, close or excuse a window of another's. (The
    /// workload writes its markers from each process's main thread, where the TASK-PID
    /// is the process's pid.)
    enum Reading {
        case notMarker, malformed, foreign
        case marker((kind: Kind, pid: Int, pasid: Int, va: UInt64, end: UInt64))
    }

    static func read(pid writer: Int, payload: some StringProtocol) -> Reading {
        let payload = payload.trimmingCharacters(in: .whitespaces)
        guard isMarker(payload: payload) else { return .notMarker }
        guard let m = parse(payload: payload) else { return .malformed }
        return m.pid == writer ? .marker(m) : .foreign
    }

    /// The payload names one of the four markers (well formed or not).
    static func isMarker(payload: some StringProtocol) -> Bool {
        Kind.allCases.contains { payload.hasPrefix($0.rawValue + " ") || payload == $0.rawValue }
    }

    func overlaps(_ low: UInt64, _ high: UInt64) -> Bool { low < end && va < high }

    var range: String { "[0x\(String(va, radix: 16)), 0x\(String(end, radix: 16)))" }
}

extension DeviceOracle {
    static func foreignNote(_ count: Int) -> String {
        "device records: \(count) range markers naming a pid other than their writer's skipped"
    }

    /// Markers that open a window (unmapped, read-only) and markers that close one
    /// (remapping) each kept at most this many; a trace is the guest's to flood.
    static let maxRangeMarkers = 4096
    /// Device records looked at over all the windows, at most: a window is judged by
    /// going through the records in it, and 4096 windows over 400,000 records would
    /// be 1.6 billion looks. Past this, the windows left are not judged (a note says so).
    static let maxRangeRecordVisits = 16_000_000

    /// A successful DMA to a page the process had unmapped, or a successful write to a
    /// page it had made read-only: what a stale SMMU TLB entry does when the kernel skips
    /// the invalidation its mm notifier owes the IOMMU (`invalidate_range` /
    /// `arch_invalidate_secondary_tlbs`). When `munmap()` or `mprotect()` returns, no
    /// translation of the old page may be left anywhere; the workload writes its marker
    /// after the return, so an access ordered after the marker that still reached memory
    /// went through a translation the kernel should have removed.
    ///
    /// The window of a marker ends, conservatively, at the first of: a `kharness-remapping`
    /// of that PASID overlapping the range (the process maps something there again and a
    /// success is legitimate), the unbind of the PASID, the PASID's next bind (a new
    /// owner whose unbind was lost looks the same as a second open), the `exit_mmap` of
    /// the binding's address space (from then on the teardown oracle judges), where
    /// remapping markers were dropped for the cap, and the end of the trace (the last
    /// event or marker it shows: a trace cut short must not leave a window open while the
    /// device's records go on). An access counts only when its whole interval is after the
    /// marker (whose time ftrace truncated to the microsecond) and before the window's end.
    /// The trace need not be whole: a lost unmapped or read-only marker only hides a
    /// violation. A remapping marker or unbind lost to a ring-buffer overrun in the middle
    /// of the trace would not be seen, and the window would run on past it.
    ///
    /// The device reads the counter before it translates, so an access whose counter
    /// precedes the remapping marker could translate after the process mapped the range
    /// again; the workload must let the device go idle before it writes
    /// `kharness-remapping` (the start of the window has no such gap: the counter is read
    /// before the access, so an access counted after the marker happened after it).
    mutating func judgeDmaToUnmappedPages(log: DeviceLog, traceLines: [String], events: [TraceEvent],
                                          clock: CounterClock) {
        var opens: [RangeMarker] = []
        var remaps: [Int: [RangeMarker]] = [:]
        var remapCount = 0
        var malformed = 0, foreign = 0, droppedOpens = 0
        /// Where the first remapping marker past the cap was: no window may extend past it.
        var cutoff = Double.infinity
        var seen: Set<String> = []
        // The last time the trace shows: past it a remapping marker or an unbind may be
        // missing (the trace was cut, or the kernel died), so no window goes further.
        var traceEnd = events.reduce(-Double.infinity) { max($0, $1.ts) }
        for line in traceLines where line.contains("kharness-") {
            guard let record = TraceEvent.record(of: line), record.event == "tracing_mark_write" else { continue }
            traceEnd = max(traceEnd, record.ts)
            let m: (kind: RangeMarker.Kind, pid: Int, pasid: Int, va: UInt64, end: UInt64)
            switch RangeMarker.read(pid: record.pid, payload: record.payload) {
            case .notMarker: continue
            case .malformed: malformed += 1; continue
            case .foreign: foreign += 1; continue
            case .marker(let marker): m = marker
            }
            // Written before the call: the range is still mapped; it neither opens nor closes
            // a window here (the live-binding fault oracle reads it).
            if m.kind == .unmapping { continue }
            // One record on two channels (the port and the console) is one marker.
            let micros = Int.clamping((record.ts * 1_000_000).rounded()) ?? 0
            let key = "\(m.kind.rawValue) \(micros) \(m.pid) \(m.pasid) \(m.va) \(m.end)"
            guard !seen.contains(key) else { continue }
            let marker = RangeMarker(kind: m.kind, ts: record.ts, pid: m.pid, pasid: m.pasid, va: m.va, end: m.end,
                                     line: line.trimmingCharacters(in: .whitespaces))
            if m.kind == .remapping {
                guard remapCount < Self.maxRangeMarkers else { cutoff = min(cutoff, record.ts); continue }
                remapCount += 1
                remaps[m.pasid, default: []].append(marker)
            } else {
                guard opens.count < Self.maxRangeMarkers else { droppedOpens += 1; continue }
                opens.append(marker)
            }
            seen.insert(key)
        }
        if malformed > 0 { notes.append("device records: \(malformed) malformed kharness-unmapped/readonly/remapping/unmapping markers skipped") }
        if foreign > 0 { notes.append(Self.foreignNote(foreign)) }
        if droppedOpens > 0 {
            notes.append("device records: \(droppedOpens) unmapped/read-only markers past the first \(Self.maxRangeMarkers) not judged")
        }
        if cutoff < .infinity {
            notes.append("device records: remapping markers past the first \(Self.maxRangeMarkers) dropped, "
                + "so no unmapped/read-only window is judged past \(Self.seconds(cutoff))")
        }
        guard !opens.isEmpty else { return }
        opens.sort { $0.ts < $1.ts }
        for pasid in remaps.keys { remaps[pasid]!.sort { $0.ts < $1.ts } }

        // What else ends a window, by PASID (and the binding's mm), in time order.
        var unbinds: [Int: [TraceEvent]] = [:]
        var binds: [Int: [TraceEvent]] = [:]
        var exits: [String: [TraceEvent]] = [:]
        let judged = Set(opens.map(\.pasid))
        for event in events {
            switch event.kind {
            case .unbind: if let p = event.pasid, judged.contains(p) { unbinds[p, default: []].append(event) }
            case .bind: if let p = event.pasid, judged.contains(p) { binds[p, default: []].append(event) }
            case .mmExit: if let mm = event.mm { exits[mm, default: []].append(event) }
            default: break
            }
        }
        for p in unbinds.keys { unbinds[p]!.sort { $0.ts < $1.ts } }
        for p in binds.keys { binds[p]!.sort { $0.ts < $1.ts } }
        for mm in exits.keys { exits[mm]!.sort { $0.ts < $1.ts } }

        // Successful accesses (and writes alone) of the PASIDs with markers, in counter order.
        var accesses: [Int: [DeviceRecord]] = [:]
        var writes: [Int: [DeviceRecord]] = [:]
        for record in log.records where record.succeeded {
            guard let pasid = record.pasid, judged.contains(pasid) else { continue }
            accesses[pasid, default: []].append(record)
            if record.isWrite { writes[pasid, default: []].append(record) }
        }
        for p in accesses.keys { accesses[p]!.sort { $0.counter < $1.counter } }
        for p in writes.keys { writes[p]!.sort { $0.counter < $1.counter } }

        var visits = 0
        var unjudged = 0
        for marker in opens {
            guard visits < Self.maxRangeRecordVisits else { unjudged += 1; continue }
            guard violations.count < 64 else { break }
            let readOnly = marker.kind == .readonly
            guard let records = (readOnly ? writes : accesses)[marker.pasid] else { continue }

            // The window's end: the first of everything that may end it.
            var end = cutoff < traceEnd ? (ts: cutoff, line: String?.none, what: "the dropped remapping markers")
                : (ts: traceEnd, line: String?.none, what: "the end of the trace")
            func consider(_ ts: Double, _ line: String, _ what: String) {
                if ts < end.ts { end = (ts, line, what) }
            }
            if let list = remaps[marker.pasid] {
                var i = Self.firstIndex(list) { $0.ts >= marker.ts }
                while i < list.count, list[i].ts < end.ts {
                    if list[i].overlaps(marker.va, marker.end) { consider(list[i].ts, list[i].line, "the remapping"); break }
                    i += 1
                }
            }
            if let list = unbinds[marker.pasid] {
                let i = Self.firstIndex(list) { $0.ts >= marker.ts }
                if i < list.count { consider(list[i].ts, list[i].line, "the unbind") }
            }
            // The binding the marker is under: the last bind of the PASID before it. Any
            // later bind ends the window: a new owner of the PASID (the old binding's unbind
            // lost), or a second open by the same process, which this oracle leaves alone.
            var mm: String?
            if let list = binds[marker.pasid] {
                let i = Self.firstIndex(list) { $0.ts > marker.ts }
                mm = i > 0 ? list[i - 1].mm : nil
                if i < list.count { consider(list[i].ts, list[i].line, "the PASID's next bind") }
            }
            if let mm, let list = exits[mm] {
                let i = Self.firstIndex(list) { $0.ts >= marker.ts }
                if i < list.count { consider(list[i].ts, list[i].line, "the address space's teardown") }
            }

            let after = marker.ts + CounterClock.traceResolution
            let from = Self.firstIndex(records) { clock.interval($0.counter).earliest >= after }
            let to = Self.firstIndex(records) { clock.interval($0.counter).latest >= end.ts }
            guard from < to else { continue }
            var first: DeviceRecord?, last: DeviceRecord?
            var count = 0, bytes: UInt64 = 0, cut = false
            for record in records[from..<to] {
                guard visits < Self.maxRangeRecordVisits else { cut = true; break }
                visits += 1
                let (recordEnd, overflow) = record.iova.addingReportingOverflow(record.length)
                guard marker.overlaps(record.iova, overflow ? .max : recordEnd) else { continue }
                if first == nil { first = record }
                last = record
                count += 1
                bytes = bytes.addingReportingOverflow(record.length).partialValue
            }
            if cut { unjudged += 1 }
            guard let first, let last else { continue }
            let (earliest, _) = clock.interval(first.counter)
            let (lastEarliest, _) = clock.interval(last.counter)
            let pasid = marker.pasid
            let title = readOnly
                ? "device DMA through PASID \(pasid) wrote a page pid \(marker.pid) had made read-only"
                : "device DMA through PASID \(pasid) reached a page pid \(marker.pid) had unmapped"
            var evidence = [
                "trace: \(marker.line)",
                "device: \(first.line) (trace time \(Self.seconds(earliest)) or later, "
                    + "\(Self.micros(earliest - marker.ts)) us after \(readOnly ? "mprotect" : "munmap") returned)",
            ]
            if count > 1 {
                evidence.append("device: \(last.line) (trace time \(Self.seconds(lastEarliest)) or later)")
            }
            evidence.append("device: \(cut ? "at least " : "")\(count) \(readOnly ? "writes" : "accesses") (\(bytes) bytes) "
                + "through PASID \(pasid) to \(marker.range) succeeded between the marker and \(end.what)")
            if let line = end.line { evidence.append("trace: \(line)") }
            evidence.append("clock: counter at \(clock.counterHz) Hz, offset known to "
                + "\(Self.micros(clock.high - clock.low)) us from \(clock.samples) marker pairs")
            violations.append(.init(title: title, evidence: evidence))
        }
        if unjudged > 0 {
            notes.append("device records: \(unjudged) unmapped/read-only windows not (wholly) judged: "
                + "\(Self.maxRangeRecordVisits) record looks spent")
        }
    }

    /// The first index whose element satisfies `predicate`, which is false then true along the array.
    static func firstIndex<T>(_ array: [T], where predicate: (T) -> Bool) -> Int {
        var low = 0, high = array.count
        while low < high {
            let mid = low + (high - low) / 2
            if predicate(array[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }
}

extension DeviceOracle {
    /// Range markers the live-binding fault oracle keeps, over all PASIDs; past this
    /// (or at a malformed marker, whose range is unknown) no later fault is judged.
    static let maxLiveFaultMarkers = 65_536
    /// Bindings kept per PASID, as the unbound-DMA oracle keeps them.
    static let maxBindingsPerPasid = 4096

    /// Each PASID's bindings in bind order, each with its unbind if the trace has one:
    /// binds and unbinds of one PASID and mm pair up in order (a process may bind twice).
    /// At most `maxBindingsPerPasid` per PASID; only the PASIDs `wanted` says.
    static func pairBindings(_ events: [TraceEvent], wanted: (Int) -> Bool = { _ in true })
        -> [Int: [(bind: TraceEvent, unbind: TraceEvent?)]] {
        var bindings: [Int: [(bind: TraceEvent, unbind: TraceEvent?)]] = [:]
        var open: [String: [Int]] = [:]
        for event in events where event.kind == .bind || event.kind == .unbind {
            guard let pasid = event.pasid, wanted(pasid) else { continue }
            let key = "\(pasid) \(event.mm ?? "-")"
            if event.kind == .bind {
                guard bindings[pasid, default: []].count < maxBindingsPerPasid else { continue }
                bindings[pasid, default: []].append((event, nil))
                open[key, default: []].append(bindings[pasid]!.count - 1)
            } else if var waiting = open[key], !waiting.isEmpty {
                let i = waiting.removeFirst()
                open[key] = waiting
                bindings[pasid]![i].unbind = event
            }
        }
        return bindings
    }
    /// Live bindings a fault is judged against, earliest bound first, and the bindings
    /// looked at to find them (dead ones among them): a fault under thousands of
    /// overlapping bindings costs no more than this.
    static let maxLiveCandidates = 4
    static let maxLiveScan = 16

    /// A DMA through a PASID that faulted while a binding of it was live: the PASID's
    /// context descriptor was cleared or replaced underneath the binding (the kernel
    /// clearing it when the first of two bindings of one address space unbinds, say).
    ///
    /// A faulted access of PASID P is one when all of these hold for a binding B of P
    /// (bind and unbind of one PASID and mm paired in order):
    /// - B was bound before the access's interval and its unbind (if any) is after it;
    /// - B's address space was not torn down (no `exit_mmap` of its mm since the bind,
    ///   up to the access): after the teardown faults are the expected outcome;
    /// - the device reached the same page (iova >> 12) through P before, within B: a
    ///   successful access wholly after the bind and before the fault; a write, when
    ///   the fault is a write (a page may be readable and not writable);
    /// - the process did not change the page itself: no range marker of P of any kind
    ///   (`unmapping`, `unmapped`, `readonly`, `remapping`) overlaps the page at or
    ///   before the access (a fault the workload provokes is on a range it marks, on
    ///   a page never reached before, or after the teardown);
    /// - for a write: B's process (`pid` of the bind) did not fork between that
    ///   successful write and the fault (a fork write-protects the parent's pages for
    ///   copy-on-write, and a device without page faults then faults on a write).
    ///
    /// Judged only in a whole trace. A fault is judged against the live bindings of its
    /// PASID earliest bound first (at most `maxLiveCandidates`) and counts for the first
    /// that fits; one violation per binding, the first such fault as evidence. Faults are
    /// taken in counter order, so the bindings begun and those ended only move forward:
    /// linear in records and bindings, each fault a few binary searches.
    mutating func judgeFaultsWhileBound(log: DeviceLog, traceLines: [String], events: [TraceEvent],
                                        clock: CounterClock) {
        let records = log.records
        // Faulted accesses through a PASID, by PASID, in counter order (indices into records).
        var faults: [Int: [Int]] = [:]
        for (i, record) in records.enumerated() where record.outcome == .fault {
            if let pasid = record.pasid { faults[pasid, default: []].append(i) }
        }
        guard !faults.isEmpty else { return }
        for pasid in faults.keys { faults[pasid]!.sort { records[$0].counter < records[$1].counter } }

        // Bindings of those PASIDs: binds and unbinds of one PASID and mm pair up in order.
        struct Binding {
            var bind: TraceEvent
            var unbind: TraceEvent?
            /// Where the binding stops being judged: its unbind, its mm's teardown, or
            /// where the markers stop being known; -inf for a binding with no mm.
            var end = Double.infinity
        }
        let bindings = Self.pairBindings(events) { faults[$0] != nil }
            .mapValues { $0.map { Binding(bind: $0.bind, unbind: $0.unbind) } }
        /// Every unbind of those PASIDs in trace order, for the evidence: the unbind of
        /// another binding just before a fault is the likeliest culprit.
        var pasidUnbinds: [Int: [TraceEvent]] = [:]
        var forks: [Int: [Double]] = [:]
        var exits: [String: [Double]] = [:]
        for event in events {
            switch event.kind {
            case .unbind:
                guard let pasid = event.pasid, faults[pasid] != nil,
                      pasidUnbinds[pasid, default: []].count < Self.maxBindingsPerPasid else { continue }
                pasidUnbinds[pasid, default: []].append(event)
            case .fork: forks[event.pid, default: []].append(event.ts)
            case .mmExit: if let mm = event.mm { exits[mm, default: []].append(event.ts) }
            default: break
            }
        }
        guard !bindings.isEmpty else { return }
        for pid in forks.keys { forks[pid]!.sort() }
        for mm in exits.keys { exits[mm]!.sort() }

        // The workload's range markers of those PASIDs, as page ranges [from, to), by PASID
        // and the pid that wrote them: a marker speaks for its own process's address space
        // only (a PASID comes back with later processes, at the same addresses).
        var marks: [Int: [Int: [(from: UInt64, to: UInt64, ts: Double)]]] = [:]
        var markCount = 0
        var markCutoff = Double.infinity
        var foreignMarks = 0
        for line in traceLines where line.contains("kharness-") {
            guard let record = TraceEvent.record(of: line), record.event == "tracing_mark_write" else { continue }
            let m: (kind: RangeMarker.Kind, pid: Int, pasid: Int, va: UInt64, end: UInt64)
            switch RangeMarker.read(pid: record.pid, payload: record.payload) {
            case .notMarker: continue
            case .malformed: markCutoff = min(markCutoff, record.ts); continue
            case .foreign: foreignMarks += 1; continue
            case .marker(let marker): m = marker
            }
            guard faults[m.pasid] != nil else { continue }
            guard markCount < Self.maxLiveFaultMarkers else { markCutoff = min(markCutoff, record.ts); continue }
            markCount += 1
            // parse guarantees va < end.
            marks[m.pasid, default: [:]][m.pid, default: []].append((m.va >> 12, ((m.end &- 1) >> 12) &+ 1, record.ts))
        }
        if foreignMarks > 0, !notes.contains(Self.foreignNote(foreignMarks)) { notes.append(Self.foreignNote(foreignMarks)) }
        if markCutoff < .infinity {
            notes.append("device records: a malformed range marker or more than \(Self.maxLiveFaultMarkers), "
                + "so no fault after \(Self.seconds(markCutoff)) is judged against a live binding")
        }

        // Successful accesses of those PASIDs (and writes alone), sorted by PASID, page, counter.
        struct Hit {
            var pasid: Int
            var page: UInt64
            var counter: UInt64
            var index: Int
        }
        var hits: [Hit] = [], writeHits: [Hit] = []
        for (i, record) in records.enumerated() where record.succeeded {
            guard let pasid = record.pasid, bindings[pasid] != nil else { continue }
            let hit = Hit(pasid: pasid, page: record.iova >> 12, counter: record.counter, index: i)
            hits.append(hit)
            if record.isWrite { writeHits.append(hit) }
        }
        let byKey: (Hit, Hit) -> Bool = { ($0.pasid, $0.page, $0.counter) < ($1.pasid, $1.page, $1.counter) }
        hits.sort(by: byKey)
        writeHits.sort(by: byKey)
        /// The last success to the page that was wholly before `time`.
        func lastSuccess(_ hits: [Hit], pasid: Int, page: UInt64, before time: Double) -> Hit? {
            let low = Self.firstIndex(hits) { ($0.pasid, $0.page) >= (pasid, page) }
            let high = Self.firstIndex(hits) {
                ($0.pasid, $0.page) > (pasid, page)
                    || (($0.pasid, $0.page) == (pasid, page) && clock.interval($0.counter).latest >= time)
            }
            return high > low ? hits[high - 1] : nil
        }

        for pasid in faults.keys.sorted() {
            guard violations.count < 64 else { break }
            guard var list = bindings[pasid] else { continue }
            for i in list.indices {
                guard let mm = list[i].bind.mm else { list[i].end = -.infinity; continue }
                var end = min(list[i].unbind?.ts ?? .infinity, markCutoff)
                if let down = exits[mm] {
                    let k = Self.firstIndex(down) { $0 >= list[i].bind.ts }
                    if k < down.count { end = min(end, down[k]) }
                }
                list[i].end = end
            }
            list = list.enumerated().sorted { ($0.element.bind.ts, $0.offset) < ($1.element.bind.ts, $1.offset) }.map(\.element)
            let covers = (marks[pasid] ?? [:]).mapValues { Self.MarkCover($0) }

            var count = [Int](repeating: 0, count: list.count)
            var first = [(fault: Int, success: Int)?](repeating: nil, count: list.count)
            var begun = 0, lowest = 0
            for f in faults[pasid]! {
                let fault = records[f]
                let (earliest, latest) = clock.interval(fault.counter)
                while begun < list.count, list[begun].bind.ts < earliest { begun += 1 }
                // Faults come in counter order: a binding ended before one has ended for all later.
                while lowest < begun, list[lowest].end <= latest { lowest += 1 }
                guard lowest < begun else { continue }
                let page = fault.iova >> 12
                guard let success = lastSuccess(fault.isWrite ? writeHits : hits, pasid: pasid, page: page, before: earliest)
                else { continue }
                let successEarliest = clock.interval(success.counter).earliest
                var j = lowest, candidates = 0, scanned = 0
                while j < begun, candidates < Self.maxLiveCandidates, scanned < Self.maxLiveScan {
                    defer { j += 1 }
                    scanned += 1
                    let binding = list[j]
                    guard binding.end > latest else { continue }
                    candidates += 1
                    // Bound later, so every binding after this one is too.
                    guard successEarliest > binding.bind.ts else { break }
                    // The binding's process changed the page itself.
                    if let cover = covers[binding.bind.pid], cover.firstMarked(page) <= latest { continue }
                    if fault.isWrite, let times = forks[binding.bind.pid] {
                        let k = Self.firstIndex(times) { $0 + CounterClock.traceResolution > successEarliest }
                        if k < times.count, times[k] <= latest { continue }
                    }
                    count[j] += 1
                    if first[j] == nil { first[j] = (f, success.index) }
                    break
                }
            }

            for (j, binding) in list.enumerated() {
                guard violations.count < 64 else { break }
                guard let (f, s) = first[j] else { continue }
                let fault = records[f], success = records[s]
                let faultEarliest = clock.interval(fault.counter).earliest
                let successEarliest = clock.interval(success.counter).earliest
                var evidence = [
                    "trace: \(binding.bind.line)",
                    "device: \(success.line) (trace time \(Self.seconds(successEarliest)) or later)",
                    "device: \(fault.line) (trace time \(Self.seconds(faultEarliest)) or later, "
                        + "\(Self.micros(faultEarliest - successEarliest)) us after that success)",
                    "device: \(count[j]) accesses through PASID \(pasid) faulted while the binding was live",
                ]
                // The last unbind of the PASID (another binding's) between the success and the fault.
                let others = pasidUnbinds[pasid] ?? []
                let k = Self.firstIndex(others) { $0.ts >= faultEarliest }
                if k > 0, others[k - 1].ts > successEarliest, others[k - 1].line != binding.unbind?.line {
                    evidence.insert("trace: \(others[k - 1].line) (another binding of PASID \(pasid), "
                        + "between the success and the fault)", at: 3)
                }
                if let unbind = binding.unbind { evidence.append("trace: \(unbind.line)") }
                evidence.append("clock: counter at \(clock.counterHz) Hz, offset known to "
                    + "\(Self.micros(clock.high - clock.low)) us from \(clock.samples) marker pairs")
                violations.append(.init(
                    title: "device DMA through PASID \(pasid) of pid \(binding.bind.pid) faulted while its binding was live",
                    evidence: evidence))
            }
        }
    }

    /// Which pages of one PASID a range marker covered, and from when: the markers'
    /// page ranges cut the pages into segments, each labelled with the earliest marker
    /// over it. A page is then one binary search.
    struct MarkCover {
        /// Segment k is pages [bounds[k], bounds[k + 1]).
        var bounds: [UInt64] = []
        /// The earliest marker over segment k; +inf for none.
        var first: [Double] = []

        init(_ marks: [(from: UInt64, to: UInt64, ts: Double)]) {
            guard !marks.isEmpty else { return }
            bounds = Array(Set(marks.flatMap { [$0.from, $0.to] })).sorted()
            first = [Double](repeating: .infinity, count: bounds.count - 1)
            // Earliest first, each segment labelled once: next[k] is the first segment at
            // or after k not yet labelled (first.count: none), with path halving.
            var next = Array(0...first.count)
            func find(_ start: Int) -> Int {
                var k = start
                while next[k] != k {
                    next[k] = next[next[k]]
                    k = next[k]
                }
                return k
            }
            for mark in marks.sorted(by: { $0.ts < $1.ts }) where mark.from < mark.to {
                let low = DeviceOracle.firstIndex(bounds) { $0 >= mark.from }
                let high = DeviceOracle.firstIndex(bounds) { $0 >= mark.to }
                var k = find(low)
                while k < high {
                    first[k] = mark.ts
                    next[k] = k + 1
                    k = find(k + 1)
                }
            }
        }

        /// When a marker first covered the page; +inf if none did.
        func firstMarked(_ page: UInt64) -> Double {
            let k = DeviceOracle.firstIndex(bounds) { $0 > page } - 1
            return k >= 0 && k < first.count ? first[k] : .infinity
        }
    }
}
