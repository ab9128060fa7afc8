import Foundation
import Harness
import Kernel
import RunModel
import Support
import VCS

/// Builds and runs a commit through the normal pipeline (`Runner`): the
/// kernel builder's per-tree object directory is shared by every step, so
/// each step is an incremental build, and a commit built before is a cache hit.
public struct HarnessStepRunner: StepRunner {
    public var parameters: BisectParameters
    /// The run every step makes, with the kernel and series filled in per step.
    public var template: RunRequest
    public var cache: CacheDirectory
    public var events: @Sendable (RunEvent) -> Void

    public init(parameters: BisectParameters, template: RunRequest, cache: CacheDirectory = .fromEnvironment(),
                events: @escaping @Sendable (RunEvent) -> Void = { _ in }) {
        self.parameters = parameters
        self.template = template
        self.cache = cache
        self.events = events
    }

    /// The run request of a bisect: its workload, scenarios, machine and config.
    public static func request(for parameters: BisectParameters, resultsRoot: String) -> RunRequest {
        var request = RunRequest(kernel: .git(tree: parameters.tree, revision: parameters.bad))
        request.series = parameters.series
        request.configFragments = parameters.configFragments
        request.workload = parameters.workload
        request.scenarios = parameters.scenarios
        request.machine = parameters.machine
        request.resultsRoot = resultsRoot
        return request
    }

    public func run(commit: String, extraPatch: String?) async throws -> StepRun {
        var request = template
        request.kernel = .git(tree: parameters.tree, revision: commit)
        if let extraPatch { request.series = extraPatch }
        let started = ContinuousClock.now
        let result = try await Runner(cache: cache, events: events).run(request)
        let elapsed = ContinuousClock.now - started
        return StepRun(result: result,
                       wall: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
}

extension BisectParameters {
    /// Resolves `good` and `bad` in the user's tree (read only) and checks
    /// that the run they describe is valid before anything is built.
    public static func resolve(tree: String, good: String, bad: String, series: String?, workload: String,
                               scenarios: [String], machine: String, configFragments: [String],
                               signature: String?, policy: BisectPolicy, checkRevert: Bool) async throws -> BisectParameters {
        let tree = Files.absolute(tree)
        let repository: GitRepository
        do {
            repository = try await GitRepository.open(tree)
        } catch GitError.notARepository {
            throw HarnessError.badInput(tree, "not a git repository")
        }
        func commit(_ name: String, _ option: String) async throws -> String {
            do {
                return try await repository.resolve(name)
            } catch GitError.unknownRevision {
                throw HarnessError.badInput("\(option) \(name)", "unknown revision in \(tree)")
            }
        }
        let goodCommit = try await commit(good, "--good")
        let badCommit = try await commit(bad, "--bad")
        guard goodCommit != badCommit else {
            throw HarnessError.badInput("--good \(good) --bad \(bad)", "both name commit \(goodCommit.prefix(12))")
        }
        guard policy.maxRuns >= 1, policy.reproduceRuns >= 1, policy.confidence > 0, policy.confidence < 1 else {
            throw HarnessError.badInput("--max-runs/--reproduce/--confidence", "need at least 1 run and a confidence in (0, 1)")
        }
        let parameters = BisectParameters(
            tree: tree, goodName: good, badName: bad, good: goodCommit, bad: badCommit,
            series: series.map(Files.absolute), workload: workload, scenarios: scenarios, machine: machine,
            configFragments: configFragments, signature: signature, policy: policy, checkRevert: checkRevert)
        try Runner.validate(HarnessStepRunner.request(for: parameters, resultsRoot: "results"))
        return parameters
    }
}
