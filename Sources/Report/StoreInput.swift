import Classify
import Foundation
import GRDB
import RunModel
import Store
import Support

extension MatrixReport {
    /// A matrix run as the store holds it: each cell's latest attempt, plus
    /// what only the run's `result.json` keeps (the build's base commit,
    /// patches and patchset hash; PASID lifetime violations; when it started),
    /// read from the run directory while it exists. The store's rows decide
    /// the outcome; `result.json` only adds detail.
    public static func load(from store: Store, runID: String) throws -> MatrixReport {
        let run = try store.existingRun(id: runID)
        let cells = try store.results(ofRun: runID).map { try ReportCell(stored: $0) }
        return MatrixReport(id: run.id, startedAt: Timestamp.iso(run.createdAt), cells: cells)
    }

    /// A matrix run ready to render: loaded from the store and marked against
    /// a baseline run by the store's comparison (`comparison`, or computed),
    /// or without one against the store's history (an issue is new when its
    /// signature was never seen before this run).
    public static func load(from store: Store, runID: String, baselineID: String?,
                            comparison: Comparison? = nil) throws -> MatrixReport {
        var report = try load(from: store, runID: runID)
        let base = try baselineID.map { try load(from: store, runID: $0) }
        let comparison = try comparison ?? baselineID.map { try store.compare(runID: runID, baselineID: $0) }
        Regressions.annotate(&report, baseline: base, comparison: comparison, firstSeen: StoreHistory(store: store).firstSeen)
        return report
    }
}

extension ReportCell {
    /// Largest result.json read back (the harness writes a few kilobytes).
    static let maxResultBytes = 16 << 20

    init(stored: CellResult) throws {
        let cell = stored.cell
        var result = RunResult.decodedFromDirectory(cell.directory) ?? RunResult.blank()
        result.runID = stored.outcome?.harnessRunID ?? cell.harnessRunID ?? "cell-\(cell.id ?? 0)"
        result.kernel = cell.kernel
        result.kernelIdentity = cell.kernelIdentity ?? result.kernelIdentity
        result.machine = cell.machine
        result.workload = cell.workload
        if let outcome = stored.outcome {
            result.status = outcome.status
            result.reason = outcome.reason
            result.evidence = outcome.evidence
            result.end = outcome.end
            result.kernelRelease = outcome.kernelRelease ?? result.kernelRelease
            result.timings = outcome.timings
            result.consoleBytes = outcome.consoleBytes
            result.finishedAt = Timestamp.iso(outcome.recordedAt)
        } else {
            result.status = .miss
            result.reason = "no outcome yet: the cell is \(cell.state.rawValue)"
            // No run ended yet: the cell's state (pending, running) stands in for the end.
            result.end = RunResult.End(rawValue: cell.state.rawValue)
        }
        if let started = cell.startedAt { result.startedAt = Timestamp.iso(started) }
        // The store keeps lifetime violations as reports too (for comparisons);
        // result.json has them as violations, which the report shows apart.
        let violationsKnown = !result.lifecycleViolations.isEmpty
        result.reports = stored.reports.sorted { $0.ordinal < $1.ordinal }.filter {
            !(violationsKnown && $0.category == PasidLifecycleOracle.Violation.category)
        }.map {
            KernelReport(category: KernelReport.Category(rawValue: $0.category), title: $0.title, signature: $0.signature, guiltyFrame: $0.guiltyFrame,
                         text: $0.text, corrupted: $0.corrupted, suppressed: $0.suppressed, line: $0.line)
        }
        result.scenarios = stored.scenarios.sorted { $0.ordinal < $1.ordinal }.map {
            ScenarioResult(name: $0.name, status: $0.status, reason: $0.reason, evidence: $0.evidence, ended: true)
        }
        self.init(result: result, repeatIndex: cell.repeatIndex, runDirectory: cell.directory, series: cell.series,
                  configFragments: cell.configFragments, scenarios: cell.scenarios)
        kernelName = cell.kernelName
    }
}

extension RunResult {
    /// The run directory's result.json, if it is there, bounded and parseable.
    static func decodedFromDirectory(_ directory: String?) -> RunResult? {
        guard let directory, let handle = FileHandle(forReadingAtPath: directory + "/result.json") else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: ReportCell.maxResultBytes + 1),
              data.count <= ReportCell.maxResultBytes else { return nil }
        return try? JSONDecoder().decode(RunResult.self, from: data)
    }

    /// An empty result to fill in from the store's rows.
    static func blank() -> RunResult {
        RunResult(runID: "", status: .miss, reason: "", kernel: "", machine: "", workload: "", end: .other(""),
                  startedAt: "")
    }
}

/// "When was this signature first seen", from every run in the store.
public struct StoreHistory {
    public var store: Store

    public init(store: Store) { self.store = store }

    public func firstSeen(signature: String) -> ReportIssue.Sighting? {
        try? store.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT cells.harness_run_id AS run, outcomes.recorded_at AS at, cells.kernel_name AS kernel,
                       cells.run_id AS matrix
                FROM reports
                JOIN cells ON cells.id = reports.cell_id
                JOIN outcomes ON outcomes.cell_id = reports.cell_id AND outcomes.attempt = reports.attempt
                WHERE reports.signature = ? AND reports.suppressed = 0
                ORDER BY outcomes.recorded_at LIMIT 1
                """, arguments: [signature])
            guard let row, let at: Date = row["at"] else { return nil }
            let run: String = row["run"] ?? row["matrix"] ?? "?"
            return ReportIssue.Sighting(runID: run, time: Timestamp.iso(at), kernel: row["kernel"] ?? "?")
        } ?? nil
    }
}

enum Timestamp {
    static func iso(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }
}
