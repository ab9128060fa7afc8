import Classify
import Collect
import Foundation
import Machine
import RunModel
import Support

/// Follows a running guest: its console into the classifier and the
/// terminal, its machine's state (through ``MachineInstance``, whichever
/// backend runs it), the deadlines and the user's signals, and says how the
/// run ended.
final class GuestWatch {
    private let request: RunRequest
    private let follower: ConsoleFollower
    private var splitter = ConsoleLineSplitter()
    private var classifier: ConsoleClassifier
    private let events: @Sendable (RunEvent) -> Void
    private var initSpokeAt: Date?
    /// The classifier read init's `@@kharness done` (a protocol line by its rule:
    /// at a line's start, never a kernel report): the workload ran to its end.
    var sawDone: Bool { classifier.sawDone }
    /// The trace port's file (the sva workload's ftrace stream), when the
    /// machine has one; the console carries the trace otherwise, and what
    /// the port missed when the kernel dies.
    private let traceFollower: ConsoleFollower?
    private var traceSplitter = ConsoleLineSplitter(maxLineLength: 1024)
    private(set) var trace: TraceCollector
    /// A coverage kernel's gcov counters, sent on the trace port before its footer.
    private(set) var gcov = GcovSection()
    /// The workload's canary reports, for the lifecycle oracle.
    private var workloadReports: [String] = []
    static let traceLimitBytes = 16 << 20
    /// sva-accel's records file (QEMU writes it directly), watched for floods.
    var deviceRecords: DeviceRecordsFile?

    static let pollInterval: Duration = .milliseconds(20)

    init(request: RunRequest, consoleLog: String, traceLog: String? = nil, suppressions: Suppressions,
         events: @escaping @Sendable (RunEvent) -> Void) {
        self.request = request
        self.classifier = ConsoleClassifier(suppressions: suppressions)
        self.follower = ConsoleFollower(path: consoleLog)
        self.traceFollower = traceLog.map { ConsoleFollower(path: $0) }
        self.trace = TraceCollector(limitBytes: GuestWatch.traceLimitBytes, hasPort: traceLog != nil)
        self.events = events
    }

    var consoleBytes: Int { follower.bytesRead }
    var traceBytes: Int { traceFollower?.bytesRead ?? 0 }

    /// Follows `machine` until the guest says it is done, the machine ends,
    /// a limit or a deadline passes, or the user interrupts; says which.
    /// Never stops the machine: the caller does, whatever the end.
    func follow(machine: any MachineInstance, clock: PhaseClock, signals: SignalWatch) async -> RunEnd {
        let started = Date()
        var tick = 0
        while true {
            drain()
            if sawDone { break }
            if follower.bytesRead > request.consoleLimitBytes {
                return .consoleFlood(limitBytes: request.consoleLimitBytes)
            }
            if traceBytes > request.consoleLimitBytes {
                return .traceFlood(limitBytes: request.consoleLimitBytes)
            }
            if let deviceRecords, tick % 5 == 0, deviceRecords.flooded(limitBytes: request.consoleLimitBytes) {
                return .traceFlood(limitBytes: request.consoleLimitBytes)
            }
            if let signal = signals.received {
                return .interrupted(signal: SignalWatch.name(signal))
            }
            if tick % 5 == 0 {
                switch machine.state() {
                case .running: break
                case .ended:
                    drain()
                    finishPhases(clock: clock, started: started)
                    return Self.runEnd(await machine.end())
                case .unknown(let why):
                    return .infrastructure(why)
                }
            }
            let elapsed = Date().timeIntervalSince(started)
            if initSpokeAt == nil, elapsed > request.bootTimeout {
                finishPhases(clock: clock, started: started)
                return .timeout(phase: "boot")
            }
            if elapsed > request.totalTimeout {
                finishPhases(clock: clock, started: started)
                return .timeout(phase: "workload")
            }
            tick += 1
            try? await Task.sleep(for: Self.pollInterval)
        }
        finishPhases(clock: clock, started: started)
        return .guestFinished
    }

    /// A machine that ended without the harness destroying it either shut
    /// down from inside (power-off, or a reset after a panic) or lost its
    /// QEMU, which is the infrastructure's failure, never the kernel's.
    static func runEnd(_ end: MachineEnd) -> RunEnd {
        switch end {
        case .stopped:
            return .guestFinished
        case .emulatorFailed(let detail, let lastLine):
            return .infrastructure("QEMU stopped unexpectedly (\(detail))" + (lastLine.map { ": \($0)" } ?? ""))
        }
    }

    /// boot: domain start until /init speaks; workload: from then until done.
    private func finishPhases(clock: PhaseClock, started: Date) {
        if let spoke = initSpokeAt {
            clock.record("boot", seconds: spoke.timeIntervalSince(started))
            clock.record("workload", since: spoke)
        } else {
            clock.record("boot", since: started)
        }
    }

    /// Reads everything QEMU has written so far, one bounded chunk at a time.
    private func drain() {
        drainTrace()
        while true {
            let data = follower.read()
            if data.isEmpty { return }
            classifier.feed(data)
            for line in splitter.feed(data) { observe(line) }
            if follower.bytesRead > request.consoleLimitBytes { return }
        }
    }

    /// The trace port's new lines; past the limit the bytes are only counted
    /// (the guest is stopped when they pass the console's limit).
    private func drainTrace() {
        guard let traceFollower else { return }
        while true {
            let data = traceFollower.read()
            if data.isEmpty { return }
            for line in traceSplitter.feed(data) where !gcov.take(line) { trace.addPortLine(line) }
            if traceFollower.bytesRead > request.consoleLimitBytes { return }
        }
    }

    /// A console line, after the classifier has read the chunk it came in (so
    /// "after a kernel report" may count a report later in the same chunk: that
    /// report fails the run anyway). Protocol lines are recognised by the
    /// classifier's rule only: the substring anywhere else means nothing.
    private func observe(_ line: String) {
        events(.console(line))
        trace.addConsoleLine(line, afterKernelDied: classifier.sawKernelDeath)
        if workloadReports.count < 64, line.contains(" canary pid="), let message = ConsoleClassifier.protocolMessage(line),
           message.hasPrefix("evidence ") {
            workloadReports.append(line)
        }
        if initSpokeAt == nil, classifier.sawProtocol { initSpokeAt = Date() }
    }

    /// Reads what is left (virtlogd may write the last lines after the
    /// domain is gone) and ends the console and the trace.
    func finish() async -> ConsoleAnalysis {
        drain()
        if let last = splitter.finish() { observe(last) }
        await finishTrace()
        return classifier.finish()
    }

    /// The rest of the trace port. QEMU hands port output to virtlogd, which
    /// writes it a moment later: a guest that said done wrote the trace's
    /// footer before, so wait for it briefly rather than judge a cut trace.
    private func finishTrace() async {
        guard traceFollower != nil else { return }
        for attempt in 0..<40 {
            drainTrace()
            if trace.sawEnd || !sawDone || trace.truncated || attempt == 39 || traceBytes == 0 && attempt >= 10 { break }
            try? await Task.sleep(for: .milliseconds(25))
        }
        if let last = traceSplitter.finish(), !gcov.take(last) { trace.addPortLine(last) }
        gcov.finish()
    }

    /// The PASID lifecycle oracles over the trace from every channel and the
    /// workload's reports. Absences (leaks) count only in a whole trace of a
    /// workload that ran to its end.
    func lifecycle() -> PasidLifecycleOracle {
        var oracle = PasidLifecycleOracle()
        for event in trace.events { oracle.observe(event) }
        for line in workloadReports { oracle.observeWorkload(line) }
        oracle.finish(complete: trace.complete && sawDone)
        return oracle
    }
}
