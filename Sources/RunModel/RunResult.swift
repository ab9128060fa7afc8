import Classify
import Collect
import Foundation
import Kernel

/// What `result.json` says about a run. Written once, provisionally, when the
/// run starts (so a harness killed outright still leaves an ERROR behind),
/// then replaced atomically when the run ends.
///
/// It lives here, not in Harness, so whatever only reads records (the store,
/// reports, bisect's step decisions) does not depend on the stage that runs them.
public struct RunResult: Codable, Sendable, Equatable {
    public var runID: String
    public var status: RunStatus
    public var reason: String
    public var evidence: [String]
    public var kernel: String
    public var kernelIdentity: String?
    /// For `git:` kernels: the base commit, patches and hashes of the build.
    public var build: KernelBuild?
    /// `uname -r` as the guest reported it.
    public var kernelRelease: String?
    public var machine: String
    public var workload: String
    /// How the harness saw the run end (see ``End``).
    public var end: End
    public var scenarios: [ScenarioResult]
    public var reports: [KernelReport]
    /// PASID lifetime violations found in the trace (see PasidLifecycleOracle).
    public var lifecycleViolations: [PasidLifecycleOracle.Violation] = []
    /// Some of the trace's records came from the console (no trace port, or the oops
    /// dump), which any guest process can write: the lifecycle verdict trusts the guest.
    public var traceUntrusted: Bool?
    /// Every kernel report no suppression matched, by category, over the whole console
    /// (`reports` keeps the first 64 texts and the first unsuppressed one after them).
    public var unsuppressedReportCounts: [String: Int]?
    /// Kernel reports past the 64 kept texts: judged and counted, not kept.
    public var reportsDropped: Int?
    /// Seconds per phase: kernel, initramfs, start, boot, workload, teardown, total.
    public var timings: [String: Double]
    public var consoleBytes: Int
    public var startedAt: String
    public var finishedAt: String?
    /// A coverage kernel's run (the `coverage` config fragment): what the guest's
    /// gcov counters say of the profiled files; absent otherwise.
    public var coverage: CoverageSummary?

    public init(runID: String, status: RunStatus, reason: String, evidence: [String] = [], kernel: String,
                kernelIdentity: String? = nil, build: KernelBuild? = nil, kernelRelease: String? = nil,
                machine: String, workload: String, end: End, scenarios: [ScenarioResult] = [],
                reports: [KernelReport] = [], lifecycleViolations: [PasidLifecycleOracle.Violation] = [],
                traceUntrusted: Bool? = nil, unsuppressedReportCounts: [String: Int]? = nil,
                reportsDropped: Int? = nil, timings: [String: Double] = [:], consoleBytes: Int = 0,
                startedAt: String, finishedAt: String? = nil) {
        self.runID = runID
        self.status = status
        self.reason = reason
        self.evidence = evidence
        self.kernel = kernel
        self.kernelIdentity = kernelIdentity
        self.build = build
        self.kernelRelease = kernelRelease
        self.machine = machine
        self.workload = workload
        self.end = end
        self.scenarios = scenarios
        self.reports = reports
        self.lifecycleViolations = lifecycleViolations
        self.traceUntrusted = traceUntrusted
        self.unsuppressedReportCounts = unsuppressedReportCounts
        self.reportsDropped = reportsDropped
        self.timings = timings
        self.consoleBytes = consoleBytes
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }

    enum CodingKeys: String, CodingKey {
        case runID = "run_id", status, reason, evidence, kernel
        case kernelIdentity = "kernel_identity", kernelRelease = "kernel_release", build
        case machine, workload, end, scenarios, reports, timings
        case lifecycleViolations = "lifecycle_violations", traceUntrusted = "trace_untrusted"
        case unsuppressedReportCounts = "unsuppressed_report_counts", reportsDropped = "reports_dropped"
        case consoleBytes = "console_bytes", startedAt = "started_at", finishedAt = "finished_at", coverage
    }

    /// The process exit code for this run (see ``ExitStatus/of(_:)``).
    public var exitCode: Int32 { ExitStatus.of(self) }

    /// The signal that stopped the run ("SIGINT", "SIGTERM"), when one did. The
    /// record keeps it only in the reason, "interrupted by SIG…", which the runner and
    /// the classifier (rule 2) both write.
    public var interruptingSignal: String? {
        guard end == .interrupted else { return nil }
        let prefix = "interrupted by "
        guard reason.hasPrefix(prefix) else { return nil }
        return String(reason.dropFirst(prefix.count).prefix { !$0.isWhitespace && $0 != ";" && $0 != ":" })
    }
}

extension RunResult {
    /// `result.json`'s bytes: pretty-printed with sorted keys, so a record reads and
    /// diffs the same whoever wrote it.
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}
