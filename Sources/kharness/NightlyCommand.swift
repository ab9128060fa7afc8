import ArgumentParser
import Foundation
import Nightly
import RunModel
import Support

struct NightlyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nightly",
        abstract: "Fetch the trees, run the matrix on their new heads, compare with last night, report, bisect.",
        discussion: """
            Exit status: 0 no new regression, 1 a new regression (the reports name it), 2 bad config, \
            3 a cell could not run (infrastructure), 130/143 interrupted. scripts/nightly wraps this \
            for cron, systemd timers and CI pipelines (examples/nightly, examples/ci).
            """)

    @Option(help: "The nightly config (YAML).")
    var config: String

    @Option(help: "Write the reports here instead of the config's reports: directory.")
    var reports: String?

    @Flag(help: "Do not bisect new regressions, whatever the config says.")
    var noBisect = false

    func run() async throws {
        let outcome = try await exitOnError {
            var config = try NightlyConfig.load(path: config)
            if let reports { config.reports = Files.absolute(reports) }
            if noBisect { config.bisect = false }
            let console = MatrixConsole()
            return try await Nightly(config: config, bisector: HarnessBisector(results: config.results), say: { stderrLine("kharness: \($0)") },
                                     matrixEvents: console.show).run()
        }
        let night = outcome.night
        print("night \(night.runID): \(night.heads.map { "\($0.revision)=\($0.commit.prefix(12))" }.joined(separator: " "))")
        if let baseline = night.baselineID {
            let regressions = night.newRegressions
            print(regressions.isEmpty ? "no new regression since \(baseline)"
                                      : "\(regressions.count) new regression(s) since \(baseline):")
            for key in regressions { print("  \(key)") }
        } else {
            print("first night: nothing to compare with")
        }
        for line in night.culprits { printSafe(line) }
        print("reports: \(outcome.reportsDirectory)")
        if outcome.exitCode != ExitStatus.success { throw ExitCode(outcome.exitCode) }
    }
}
