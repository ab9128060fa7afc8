import Bisect
import Foundation
import Harness
import Store
import Support

/// Bisects a new regression the way `kharness bisect` does, with the cell's
/// own workload, scenarios, machine and config, between last night's commit
/// (good) and tonight's (bad).
public struct HarnessBisector: RegressionBisector {
    let cache: CacheDirectory
    let results: String

    public init(cache: CacheDirectory = .fromEnvironment(), results: String = "results") {
        self.cache = cache
        self.results = results
    }

    public func bisect(tree: String, good: String, bad: String, cell: CellRecord, reruns: Int) async throws -> String {
        // `reruns` bounds the runs per commit, the bad end's reproduction runs included.
        let policy = BisectPolicy(maxRuns: max(1, reruns), reproduceRuns: max(1, reruns))
        let parameters = try await BisectParameters.resolve(
            tree: tree, good: good, bad: bad, series: cell.series, workload: cell.workload, scenarios: cell.scenarios,
            machine: cell.machineProfile, configFragments: cell.configFragments, signature: nil, policy: policy,
            checkRevert: false)
        var template = HarnessStepRunner.request(for: parameters, resultsRoot: results + "/bisect")
        template.extraCmdline = cell.cmdline
        let runner = HarnessStepRunner(parameters: parameters, template: template, cache: cache)
        let driver = try BisectDriver(parameters: parameters, directory: try BisectDriverDirectory.for(cache: cache, tree: tree),
                                      runner: runner, restart: true)
        return try await driver.run().text
    }
}
