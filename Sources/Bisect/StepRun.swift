import Classify
import Foundation
import RunModel

/// What one run of one commit showed, kept in the bisect's state so a
/// resumed bisect decides from the same facts without running them again.
public struct StepRun: Codable, Sendable, Equatable {
    public var runID: String
    public var status: RunStatus
    /// How the harness saw the run end (`RunResult.end`).
    public var end: RunResult.End
    public var reason: String
    /// Every failure the run showed, as titles: PASID lifetime violations,
    /// kernel reports no suppression matched, and the verdict's reason.
    public var failureTitles: [String]
    /// False when the workload did not get to the end: a scenario began and
    /// gave no result, or the guest stopped or hung first. nil: not known
    /// (taken as completed).
    public var workloadCompleted: Bool?
    public var timings: StepTimings

    public init(runID: String, status: RunStatus, end: RunResult.End, reason: String, failureTitles: [String],
                workloadCompleted: Bool? = nil, timings: StepTimings) {
        self.runID = runID
        self.status = status
        self.end = end
        self.reason = reason
        self.failureTitles = failureTitles
        self.workloadCompleted = workloadCompleted
        self.timings = timings
    }

    /// The facts of a harness run; `wall` is what the bisect waited for it.
    public init(result: RunResult, wall: Double) {
        var titles = result.lifecycleViolations.map(\.title)
        titles += result.reports.filter { $0.isKernelReport && !$0.suppressed }.map(\.title)
        if result.status == .fail { titles.append(result.reason) }
        var unique: [String] = []
        for title in titles where !unique.contains(title) { unique.append(title) }
        let completed = result.end == .finished && !result.scenarios.contains { $0.status == .miss }
        self.init(runID: result.runID, status: result.status, end: result.end, reason: result.reason,
                  failureTitles: unique, workloadCompleted: completed,
                  timings: StepTimings(runTimings: result.timings, wall: wall))
    }

    /// True when the user (or a signal) stopped the run: not an observation.
    public var wasInterrupted: Bool { end == .interrupted }
}

/// Where a step's time went: building the kernel and the workload, booting,
/// the workload itself, and everything else (domain start and teardown, the
/// initramfs, git, bookkeeping) as harness overhead.
public struct StepTimings: Codable, Sendable, Equatable {
    public var build: Double
    public var boot: Double
    public var workload: Double
    public var wall: Double

    public init(build: Double = 0, boot: Double = 0, workload: Double = 0, wall: Double = 0) {
        self.build = build
        self.boot = boot
        self.workload = workload
        self.wall = wall
    }

    init(runTimings: [String: Double], wall: Double) {
        self.init(build: (runTimings["kernel"] ?? 0) + (runTimings["workload-build"] ?? 0),
                  boot: runTimings["boot"] ?? 0, workload: runTimings["workload"] ?? 0,
                  wall: max(wall, runTimings["total"] ?? 0))
    }

    public var overhead: Double { max(0, wall - build - boot - workload) }

    public static func + (a: StepTimings, b: StepTimings) -> StepTimings {
        StepTimings(build: a.build + b.build, boot: a.boot + b.boot, workload: a.workload + b.workload,
                    wall: a.wall + b.wall)
    }
}

/// The failure a bisect hunts, normalised so that what varies from run to
/// run (the pid that bound the PASID, the PASID itself, a CPU number) does
/// not: "PASID 1 freed while still bound to pid 85" is hunted as
/// "PASID # freed while still bound to pid #". Kernel report titles are
/// already free of addresses (syzbot's naming), so they normalise to
/// themselves unless they carry a number.
public struct FailureSignature: Codable, Sendable, Equatable, CustomStringConvertible {
    public var text: String

    public init(_ title: String) { text = Self.normalise(title) }

    /// Whole-word decimal and hex numbers become `#` (``NumberMask/wholeNumbers(_:)``);
    /// identifiers that contain digits (`ext4_foo`, `mmu_notifier2`) are left alone.
    public static func normalise(_ title: String) -> String { NumberMask.wholeNumbers(title) }

    public func matches(_ run: StepRun) -> Bool {
        run.failureTitles.contains { Self.normalise($0) == text }
    }

    public var description: String { text }
}
