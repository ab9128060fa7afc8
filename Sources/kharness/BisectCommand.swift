import ArgumentParser
import Bisect
import Foundation
import Harness
import RunModel
import Support

/// `kharness bisect`: finds the commit that brought a failure in (or, with
/// --good newer than --bad, the one that fixed it).
struct BisectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bisect",
        abstract: "Find the first commit that shows a failure (or fixes it), building and running each step.",
        discussion: """
            Steps are decided by the failure the --bad revision shows (or --signature), normalised so \
            pids and numbers do not count; other failures are reported but never make a step bad; a step \
            that does not build or boot is skipped; a step without the failure is re-run until it is \
            good with --confidence (at most --max-runs runs). State is kept in the cache: the same command \
            (or --resume) continues an interrupted bisect.
            Exit status: 0 answer found, 1 only skipped commits left (no single answer), 2 bad input, \
            3 infrastructure, 130/143 interrupted.
            """)

    @Option(help: "The kernel git tree (only read; the bisect runs in a clone in the cache).")
    var tree: String

    @Option(help: "A revision without the failure.")
    var good: String?

    @Option(help: "A revision with the failure.")
    var bad: String?

    @Option(help: "A patch series applied on every step (directory of format-patch files or an mbox).")
    var series: String?

    @Option(help: "Workload to run in the guest.")
    var workload = "sva"

    @Option(help: "Scenarios of the workload, comma-separated (default: all).")
    var scenarios: String?

    @Option(help: "Machine: stock, stock-lazy, nosmmu, sva, sva-stall.")
    var machine = "sva"

    @Option(help: "Config fragments, comma-separated (from guest/configs).")
    var config = "smmuv3,trace,modules"

    @Option(help: "The failure to hunt, as a title (numbers are ignored); default: the --bad revision's failure.")
    var signature: String?

    @Option(help: "Runs per commit at most.")
    var maxRuns = 4

    @Option(help: "How sure a 'good' must be (probability that a commit with the failure would have shown it).")
    var confidence = 0.95

    @Option(help: "Runs of the --bad revision before bisecting, to estimate how often the failure shows.")
    var reproduce = 3

    @Flag(help: "After the answer, check that reverting it on --bad makes the failure go away.")
    var checkRevert = false

    @Flag(help: "Continue the bisect recorded for --tree (its own parameters).")
    var resume = false

    @Flag(help: "Drop the bisect recorded for --tree and start over.")
    var restart = false

    @Option(help: "Directory for run directories.")
    var results = "results"

    @Option(help: "A qemu-system-aarch64 to use instead of the machine's own.")
    var qemu: String?

    @Flag(help: "Print the report as JSON on stdout.")
    var json = false

    func run() async throws {
        let outcome: Result<BisectReport, BisectInterrupted> = try await exitOnError {
            let cache = CacheDirectory.fromEnvironment()
            let directory = try BisectDriverDirectory.for(cache: cache, tree: tree)
            let parameters: BisectParameters
            if resume {
                guard let recorded = try BisectDriver.recordedParameters(in: directory) else {
                    throw HarnessError.badInput(tree, "no bisect recorded for this tree to resume")
                }
                parameters = recorded
            } else {
                guard let good, let bad else {
                    throw HarnessError.badInput("kharness bisect", "--good and --bad are required (or --resume)")
                }
                parameters = try await BisectParameters.resolve(
                    tree: tree, good: good, bad: bad, series: series, workload: workload,
                    scenarios: scenarios.map { $0.split(separator: ",").map(String.init) } ?? [],
                    machine: machine,
                    configFragments: config.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                        .filter { !$0.isEmpty },
                    signature: signature,
                    policy: BisectPolicy(maxRuns: maxRuns, confidence: confidence, reproduceRuns: reproduce),
                    checkRevert: checkRevert)
            }
            var template = HarnessStepRunner.request(for: parameters, resultsRoot: results)
            template.emulator = qemu.map(Files.absolute)
            let runner = HarnessStepRunner(parameters: parameters, template: template, cache: cache, events: { event in
                if case .phase(let phase) = event, phase.hasPrefix("build: ") { stderrLine("kharness:     \(phase)") }
            })
            let driver = try BisectDriver(parameters: parameters, directory: directory, runner: runner,
                                          restart: restart, events: { stderrLine("kharness: \($0)") })
            do {
                return .success(try await driver.run())
            } catch let interrupted as BisectInterrupted {
                return .failure(interrupted)
            }
        }
        switch outcome {
        case .failure(let interrupted):
            stderrLine("kharness: \(interrupted)")
            throw ExitCode(ExitStatus.interrupted(bySignalNamed: interrupted.signal))
        case .success(let report):
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                printJSON(String(decoding: try encoder.encode(report), as: UTF8.self))
            } else {
                printSafe(report.text, terminator: "")
            }
            if report.firstBad == nil { throw ExitCode(ExitStatus.failure) }
        }
    }
}
