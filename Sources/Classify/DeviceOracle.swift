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
/// oracles of issue 12. One so far, the 2022 bug's own damage: a DMA through
/// a PASID that succeeded after its address space was torn down and before
/// the binding was released. "Torn down" is the return of
/// `__mmu_notifier_release()` in the task that ran `exit_mmap()`: from then
/// on the IOMMU driver must have stopped translating for the mm (arm-smmu-v3
/// installs a CD that faults everything), while the binding lives on until
/// the driver unbinds. Faults in that window are the expected outcome and
/// are not reported.
public struct DeviceOracle: Sendable {
    public private(set) var violations: [PasidLifecycleOracle.Violation] = []
    /// Why the oracle could not judge, or what looked wrong in the records;
    /// for the run's evidence, never a verdict on their own.
    public private(set) var notes: [String] = []
    public private(set) var clock: CounterClock?

    public static let releaseEvent = "mmu_notifier_release_ret"

    /// `traceComplete`: the trace lost nothing (footer seen, no overruns, not cut). Only
    /// then can an access with no binding around it be judged: a lost bind event would
    /// look exactly like one.
    public init(log: DeviceLog, traceLines: [String], events: [TraceEvent], traceComplete: Bool = false) {
        if log.rejectedLines > 0 { notes.append("device records: \(log.rejectedLines) malformed lines skipped") }
        if log.outOfOrder > 0 { notes.append("device records: \(log.outOfOrder) records out of time order") }
        if log.truncated { notes.append("device records: cut at \(log.bytes >> 20) MiB") }
        guard !log.records.isEmpty else { return }
        guard let hz = log.counterHz else {
            notes.append("device records: no header, so no counter frequency: not judged")
            return
        }
        guard let clock = CounterClock.calibrate(counterHz: hz, traceLines: traceLines) else {
            notes.append("device records: the trace has no consistent kharness-cntvct markers: not judged")
            return
        }
        self.clock = clock
        judgeDmaAfterTeardown(log: log, traceLines: traceLines, events: events, clock: clock)
        if traceComplete {
            judgeDmaWithoutBinding(log: log, events: events, clock: clock)
        } else {
            notes.append("device records: the trace is not whole, so DMA outside every binding is not judged")
        }
    }

    /// A successful access through a PASID while no binding of the device held it: before
    /// its bind, after its unbind returned (the driver stops the device before it unbinds),
    /// or through a PASID never bound. Judged by order on the shared clock only: an access
    /// whose interval touches a binding is not one.
    private mutating func judgeDmaWithoutBinding(log: DeviceLog, events: [TraceEvent], clock: CounterClock) {
        // Every binding of a PASID as a time interval; unbound at the trace's end if never.
        // Binds and unbinds of one PASID and mm pair up in order (a process may bind twice).
        var held: [Int: [(from: Double, to: Double, bind: TraceEvent, unbind: TraceEvent?)]] = [:]
        var open: [String: [Int]] = [:]
        for event in events where event.kind == .bind || event.kind == .unbind {
            guard let pasid = event.pasid else { continue }
            let key = "\(pasid) \(event.mm ?? "-")"
            if event.kind == .bind {
                guard held[pasid, default: []].count < 4096 else { continue }
                held[pasid, default: []].append((event.ts, .infinity, event, nil))
                open[key, default: []].append(held[pasid]!.count - 1)
            } else if var waiting = open[key], !waiting.isEmpty {
                let i = waiting.removeFirst()
                open[key] = waiting
                held[pasid]![i].to = event.ts
                held[pasid]![i].unbind = event
            }
        }
        var accesses: [Int: [DeviceRecord]] = [:]
        for record in log.records where record.succeeded {
            if let pasid = record.pasid { accesses[pasid, default: []].append(record) }
        }
        for pasid in accesses.keys.sorted() {
            let intervals = (held[pasid] ?? []).sorted { $0.from < $1.from }
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

    /// The first index whose record satisfies `predicate`, which is false then true along the array.
    static func firstIndex(_ records: [DeviceRecord], where predicate: (DeviceRecord) -> Bool) -> Int {
        var low = 0, high = records.count
        while low < high {
            let mid = low + (high - low) / 2
            if predicate(records[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }

    public static func seconds(_ value: Double) -> String { String(format: "%.6f", value) }
    static func micros(_ value: Double) -> String { String(format: "%.1f", value * 1e6) }
}
