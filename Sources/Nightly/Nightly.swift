import Foundation
import Kernel
import Matrix
import Report
import RunModel
import Store
import Support

/// One night as the nightly's history keeps it: which matrix run it was,
/// which commits it tested, and what it found.
public struct Night: Codable, Sendable, Equatable {
    public var runID: String
    public var startedAt: Date
    public var heads: [TreeHead]
    /// The matrix run finished (every cell has an outcome); only such nights
    /// are baselines for the next.
    public var complete: Bool
    /// The night compared with (nil on the first night).
    public var baselineID: String?
    /// Cell keys with a new failure, as `CellKey.description`.
    public var newRegressions: [String]
    /// Culprits named by bisects, as `#regzbot introduced:` lines.
    public var culprits: [String]
}

/// The history of one nightly (`<results>/nightly-<name>.json`), replaced
/// atomically at the end of each night.
public struct NightlyHistory: Codable, Sendable, Equatable {
    public var name: String
    public var nights: [Night]

    public static func path(results: String, name: String) -> String { "\(results)/nightly-\(name).json" }

    public static func load(results: String, name: String) throws -> NightlyHistory {
        let path = path(results: results, name: name)
        guard let data = FileManager.default.contents(atPath: path) else { return NightlyHistory(name: name, nights: []) }
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            return try decoder.decode(NightlyHistory.self, from: data)
        } catch {
            throw HarnessError.infrastructure(path, "unreadable nightly history (\(error)); move it away to start afresh")
        }
    }

    func save(results: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        try Files.writeAtomically(try encoder.encode(self), to: Self.path(results: results, name: name))
    }

    /// The newest complete night: what tonight is compared with.
    public var baseline: Night? { nights.last(where: \.complete) }
}

/// What a night did, for the CLI to print and to decide the exit status.
public struct NightlyOutcome: Sendable {
    public var night: Night
    public var matrix: MatrixOutcome
    public var comparison: Comparison?
    public var reportsDirectory: String
    public var reportFiles: [String]
    public var bisects: [String]

    /// 1 when the night found a new regression, 3 when it could not run every
    /// cell (infrastructure), else 0. Failures that were there last night too
    /// are in the reports but do not fail the night.
    public var exitCode: Int32 {
        if let signal = matrix.interruptedBy { return ExitStatus.interrupted(by: signal) }
        if !night.newRegressions.isEmpty { return ExitStatus.failure }
        if !night.complete { return ExitStatus.error }
        if comparison == nil, matrix.exitCode == ExitStatus.failure { return ExitStatus.failure }
        return ExitStatus.success
    }
}

/// Bisects one new regression; the real one drives `Bisect.BisectDriver`.
public protocol RegressionBisector: Sendable {
    /// - Returns: the bisect's report text, with its `#regzbot introduced:` line.
    func bisect(tree: String, good: String, bad: String, cell: CellRecord, reruns: Int) async throws -> String
}

/// The nightly job: fetch, pin, run, compare, report, bisect.
public final class Nightly: Sendable {
    let config: NightlyConfig
    let cache: CacheDirectory
    let bisector: RegressionBisector?
    let say: @Sendable (String) -> Void
    let matrixEvents: @Sendable (MatrixEvent) -> Void

    public init(config: NightlyConfig, cache: CacheDirectory = .fromEnvironment(), bisector: RegressionBisector?,
                say: @escaping @Sendable (String) -> Void = { _ in },
                matrixEvents: @escaping @Sendable (MatrixEvent) -> Void = { _ in }) {
        self.config = config
        self.cache = cache
        self.bisector = bisector
        self.say = say
        self.matrixEvents = matrixEvents
    }

    public func run() async throws -> NightlyOutcome {
        let (matrix, _) = try MatrixFile.load(path: config.matrix)
        try Files.createDirectory(config.results)
        var history = try NightlyHistory.load(results: config.results, name: config.name)

        // Fetch each tree once, then pin every git kernel's revision to the
        // commit it names tonight.
        var heads: [TreeHead] = []
        var pins: [String: String] = [:]
        var fetched: Set<String> = []
        for kernel in matrix.kernels {
            guard case .git(let tree, let revision) = kernel.spec else { continue }
            if fetched.insert(tree).inserted {
                let remotes = try await Trees.fetch(tree)
                say(remotes.isEmpty ? "\(tree): no remote, tested as it is" : "\(tree): fetched \(remotes.joined(separator: ", "))")
            }
            let head = try await Trees.resolve(tree, revision)
            say("\(kernel.name): \(revision) is \(head.commit.prefix(12)) \"\(head.subject)\"")
            heads.append(head)
            pins["\(tree)@\(revision)"] = head.commit
        }

        let runID = "n" + RunID.new()
        let nightDirectory = "\(config.results)/\(runID)"
        try Files.createDirectory(nightDirectory)
        let pinnedPath = "\(nightDirectory)/matrix.yaml"
        try Files.writeAtomically(matrix.pinning(pins).yaml, to: pinnedPath)

        var options = MatrixOptions()
        options.results = config.results
        options.database = config.database
        options.runID = runID
        let store = try Store.open(path: options.databasePath)
        let baseline = history.baseline
        var night = Night(runID: runID, startedAt: Date(), heads: heads, complete: false,
                          baselineID: baseline?.runID, newRegressions: [], culprits: [])
        history.nights.append(night)
        try history.save(results: config.results)

        let outcome = try await MatrixRunner(store: store, cache: cache, events: matrixEvents)
            .run(matrixPath: pinnedPath, options: options)
        let results = try store.results(ofRun: runID)
        night.complete = outcome.interruptedBy == nil && results.allSatisfy { $0.outcome != nil }

        var comparison: Comparison?
        if let baseline {
            comparison = try store.compare(runID: runID, baselineID: baseline.runID)
            night.newRegressions = Self.newKeys(comparison!).map(\.description)
        }

        let reportsDirectory = config.reports ?? "\(nightDirectory)/reports"
        let reportFiles = try writeReports(store: store, runID: runID, baselineID: baseline?.runID,
                                           comparison: comparison, to: reportsDirectory)

        var bisects: [String] = []
        if config.bisect, let comparison, let baseline, let bisector {
            for key in Self.newKeys(comparison) {
                guard let cell = results.first(where: { $0.cell.key == key })?.cell,
                      case .git(let tree, let badCommit) = try KernelSpec(parsing: cell.kernel),
                      let kernel = matrix.kernels.first(where: { $0.name == cell.kernelName }),
                      case .git(_, let revision) = kernel.spec,
                      let good = baseline.heads.first(where: { $0.tree == tree && $0.revision == revision })
                else { continue }
                guard good.commit != badCommit else {
                    say("\(key): new failure on the same commit as last night: flaky or environmental, not bisected")
                    continue
                }
                say("bisecting \(key) between \(good.commit.prefix(12)) (good) and \(badCommit.prefix(12)) (bad)")
                do {
                    let text = try await bisector.bisect(tree: tree, good: good.commit, bad: badCommit, cell: cell,
                                                         reruns: config.bisectReruns)
                    bisects.append(text)
                    night.culprits += text.split(separator: "\n").filter { $0.hasPrefix("#regzbot introduced:") }.map(String.init)
                } catch {
                    bisects.append("bisect of \(key) failed: \(HarnessError(error))")
                }
            }
            if !bisects.isEmpty {
                try Files.writeAtomically(bisects.joined(separator: "\n\n") + "\n", to: "\(reportsDirectory)/bisect.txt")
            }
        }

        history.nights[history.nights.count - 1] = night
        try history.save(results: config.results)
        return NightlyOutcome(night: night, matrix: outcome, comparison: comparison, reportsDirectory: reportsDirectory,
                              reportFiles: reportFiles, bisects: bisects)
    }

    /// The cells with a new issue, once each (a violation and the oops it
    /// causes are two new issues of one cell).
    static func newKeys(_ comparison: Comparison) -> [CellKey] {
        var seen: Set<CellKey> = []
        return comparison.entries(.new).map(\.key).filter { seen.insert($0).inserted }
    }

    /// Every report format into `directory`, and one mail per new regression.
    private func writeReports(store: Store, runID: String, baselineID: String?, comparison: Comparison?,
                              to directory: String) throws -> [String] {
        try Files.createDirectory(directory)
        let report = try MatrixReport.load(from: store, runID: runID, baselineID: baselineID, comparison: comparison)
        var written: [String] = []
        let files: [(ReportFormat, String)] = [(.table, "table.txt"), (.junit, "junit.xml"), (.kcidb, "kcidb.json"),
                                               (.html, "report.html"), (.email, "regressions.txt")]
        for (format, name) in files {
            let path = "\(directory)/\(name)"
            try Files.writeAtomically(try format.render(report, outputPath: path), to: path)
            written.append(path)
        }
        return written
    }
}
