import Classify
import Collect
import Foundation
import Machine

/// Follows a running guest: its console into the classifier and the
/// terminal, its domain state, the deadlines and the user's signals, and
/// says how the run ended.
final class GuestWatch {
    private let request: RunRequest
    private let follower: ConsoleFollower
    private var splitter = ConsoleLineSplitter()
    private var classifier: ConsoleClassifier
    private let events: @Sendable (RunEvent) -> Void
    private(set) var lifecycle = PasidLifecycleOracle()
    private var initSpokeAt: Date?
    private var sawDone = false
    /// The ftrace section the sva workload prints between
    /// `@@kharness trace-begin` and `@@kharness trace-end`, kept for the run
    /// directory; bounded like the console itself.
    private(set) var trace: [String] = []
    private var traceBytes = 0
    private var inTrace = false
    static let traceLimitBytes = 16 << 20

    static let pollInterval: Duration = .milliseconds(20)

    init(request: RunRequest, consoleLog: String, suppressions: Suppressions,
         events: @escaping @Sendable (RunEvent) -> Void) {
        self.request = request
        self.classifier = ConsoleClassifier(suppressions: suppressions)
        self.follower = ConsoleFollower(path: consoleLog)
        self.events = events
    }

    var consoleBytes: Int { follower.bytesRead }

    func follow(domain: Domain, clock: PhaseClock, signals: SignalWatch) async -> RunEnd {
        let started = Date()
        var tick = 0
        while true {
            drain()
            if sawDone { break }
            if follower.bytesRead > request.consoleLimitBytes {
                return .consoleFlood(limitBytes: request.consoleLimitBytes)
            }
            if let signal = signals.received {
                return .interrupted(signal: SignalWatch.name(signal))
            }
            if tick % 5 == 0 {
                switch domain.state() {
                case .running: break
                case .ended:
                    drain()
                    finishPhases(clock: clock, started: started)
                    return Self.howItEnded(domain: domain.name)
                case .unknown(let message):
                    return .infrastructure("libvirt stopped answering during the run: \(message)")
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

    /// A domain that ended without the harness destroying it either shut
    /// down from inside (power-off, or a reset after a panic) or lost its
    /// QEMU, which is the infrastructure's failure, never the kernel's.
    static func howItEnded(domain: String) -> RunEnd {
        var found = QemuProcess.endReason(domain: domain)
        for _ in 0..<20 where found == nil {
            // libvirt writes the line as it cleans up; give it a moment.
            usleep(50_000)
            found = QemuProcess.endReason(domain: domain)
        }
        guard let (reason, qemuLine) = found, reason != "shutdown", reason != "destroyed" else {
            return .guestFinished
        }
        return .infrastructure("QEMU stopped unexpectedly (libvirt: reason=\(reason))" + (qemuLine.map { ": \($0)" } ?? ""))
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
        while true {
            let data = follower.read()
            if data.isEmpty { return }
            classifier.feed(data)
            for line in splitter.feed(data) { observe(line) }
            if follower.bytesRead > request.consoleLimitBytes { return }
        }
    }

    private func observe(_ line: String) {
        events(.console(line))
        lifecycle.observe(line)
        if inTrace, !line.contains("@@kharness trace-end"), traceBytes < Self.traceLimitBytes {
            trace.append(line)
            traceBytes += line.utf8.count + 1
        }
        guard line.contains("@@kharness ") else { return }
        if initSpokeAt == nil { initSpokeAt = Date() }
        if line.contains("@@kharness done") { sawDone = true }
        if line.contains("@@kharness trace-begin") { inTrace = true }
        if line.contains("@@kharness trace-end") { inTrace = false }
    }

    func finish() -> ConsoleAnalysis {
        if let last = splitter.finish() { observe(last) }
        return classifier.finish()
    }
}
