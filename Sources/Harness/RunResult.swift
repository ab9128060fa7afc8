import Classify
import Foundation
import Kernel

/// What `result.json` says about a run. Written once, provisionally, when the
/// run starts (so a harness killed outright still leaves an ERROR behind),
/// then replaced atomically when the run ends.
public struct RunResult: Codable, Sendable {
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
    /// How the harness saw the run end: finished, timeout, interrupted, infrastructure, bad-input.
    public var end: String
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

    enum CodingKeys: String, CodingKey {
        case runID = "run_id", status, reason, evidence, kernel
        case kernelIdentity = "kernel_identity", kernelRelease = "kernel_release", build
        case machine, workload, end, scenarios, reports, timings
        case lifecycleViolations = "lifecycle_violations", traceUntrusted = "trace_untrusted"
        case unsuppressedReportCounts = "unsuppressed_report_counts", reportsDropped = "reports_dropped"
        case consoleBytes = "console_bytes", startedAt = "started_at", finishedAt = "finished_at"
    }

    /// The process exit code for this outcome: 0 PASS, 1 FAIL or BUILD_FAIL, 3 ERROR
    /// (SKIP and MISS are not failures of the kernel: 0).
    public var exitCode: Int32 {
        switch status {
        case .pass, .skip, .miss: return 0
        case .fail, .buildFail: return 1
        case .error: return end == "bad-input" ? 2 : 3
        }
    }
}
