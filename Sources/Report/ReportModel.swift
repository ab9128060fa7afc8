import Classify
import Foundation
import RunModel
import Store

/// One matrix run as every report format sees it: the cells in the order the
/// matrix ran them, and what changed against a baseline run when there is one.
///
/// The reports render from these values only, so the formats cannot disagree
/// about what a run was; where the values come from (the store, or result.json
/// files) is the caller's business.
public struct MatrixReport: Sendable {
    /// The matrix run's ID, as `kharness report <id>` takes it.
    public var id: String
    /// When the matrix run started (ISO 8601), if known.
    public var startedAt: String?
    public var cells: [ReportCell]
    /// The run the cells were compared with (`--baseline`), if any.
    public var baselineID: String?
    /// The kernel issues of the run (one per signature), filled by ``Comparison``.
    public var issues: [ReportIssue] = []

    public init(id: String, startedAt: String? = nil, cells: [ReportCell], baselineID: String? = nil) {
        self.id = id
        self.startedAt = startedAt
        self.cells = cells
        self.baselineID = baselineID
    }
}

/// One run of the matrix: its recorded result plus where it sits in the matrix.
public struct ReportCell: Sendable {
    /// What `result.json` (and the store) recorded for the run.
    public var result: RunResult
    /// Which repetition of the same cell this is, from 1.
    public var repeatIndex: Int
    /// The run directory (console.log, result.json, trace-events.jsonl), if it still exists.
    public var runDirectory: String?
    /// The patch series file the kernel was built with, for the reproducer command.
    public var series: String?
    /// Config fragments asked for (git kernels); empty for prebuilt kernels.
    public var configFragments: [String]
    /// Scenarios asked for; empty means the workload's default set.
    public var scenarios: [String]
    /// Against the baseline; nil without one.
    public var change: CellChange?
    /// The kernel's name in the matrix file, when it has one.
    public var kernelName: String?

    public init(result: RunResult, repeatIndex: Int = 1, runDirectory: String? = nil, series: String? = nil,
                configFragments: [String]? = nil, scenarios: [String] = [], change: CellChange? = nil) {
        self.result = result
        self.repeatIndex = repeatIndex
        self.runDirectory = runDirectory
        self.series = series
        self.configFragments = configFragments ?? result.build?.configFragments ?? []
        self.scenarios = scenarios
        self.change = change
    }

    public var runID: String { result.runID }
    public var status: RunStatus { result.status }

    /// The row of the matrix grid: the kernel as built (spec, series, config).
    public var kernelLabel: String {
        var label = kernelName ?? result.kernel
        if let build = result.build, !build.patches.isEmpty {
            label += " + \(build.patches.count) patch\(build.patches.count == 1 ? "" : "es")"
        }
        return label
    }

    public var configLabel: String { configFragments.isEmpty ? "-" : configFragments.joined(separator: ",") }

    /// The column of the matrix grid.
    public var columnLabel: String {
        scenarios.isEmpty ? "\(result.machine) / \(result.workload)"
            : "\(result.machine) / \(result.workload) [\(scenarios.joined(separator: ","))]"
    }

    /// The cell's identity across runs, as the store compares them: the
    /// kernel's name (not its series), fragments, machine, workload, scenarios.
    public var key: CellKey {
        CellKey(kernel: kernelName ?? result.kernel, configFragments: configFragments, machine: result.machine,
                workload: result.workload, scenarios: scenarios)
    }

    /// Kernel reports that decide the outcome (not suppressed).
    public var activeReports: [KernelReport] { result.reports.filter { !$0.suppressed } }

    public func artifact(_ name: String) -> String? {
        runDirectory.map { "\($0)/\(name)" }
    }

    /// The command that runs this cell again.
    public var reproducer: String { reproducerWords.joined(separator: " ") }

    /// The reproducer's words, each quoted for a POSIX shell.
    public var reproducerWords: [String] {
        var words = ["kharness", "run", "--kernel", result.kernel]
        if let series { words += ["--series", series] }
        if !configFragments.isEmpty { words += ["--config", configFragments.joined(separator: ",")] }
        words += ["--machine", result.machine, "--workload", result.workload]
        if !scenarios.isEmpty { words += ["--scenarios", scenarios.joined(separator: ",")] }
        return words.map(ShellQuote.quote)
    }

    /// The first lines that explain a failure: a lifetime violation's
    /// evidence and the first active kernel report (the oops a violation
    /// causes), else the reason and evidence.
    public func excerpt(maxLines: Int = 60) -> String {
        var parts: [String] = []
        if let violation = result.lifecycleViolations.first {
            parts.append(([violation.title] + violation.evidence).joined(separator: "\n"))
        }
        if let report = activeReports.first { parts.append(report.text) }
        if parts.isEmpty { parts.append(([result.reason] + result.evidence).joined(separator: "\n")) }
        let text = parts.joined(separator: "\n\n")
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let kept = lines.prefix(maxLines).joined(separator: "\n")
        return lines.count > maxLines ? kept + "\n[... \(lines.count - maxLines) more lines]" : kept
    }
}

/// What a cell's key did against the baseline (from the store's comparison:
/// see ``Regressions/change(_:)``).
public enum CellChange: String, Sendable, CaseIterable {
    /// An issue shows in every usable repeat now and in none of the baseline's.
    case newFailure = "new failure"
    /// An issue of the baseline's is gone.
    case fixed
    case stillFailing = "still failing"
    /// Repeats disagree, here or in the baseline.
    case flaky
    /// Every repeat passed on both sides.
    case unchanged
    /// Nothing can be said: the key is on one side only, or a side has no
    /// verdict about the kernel (all ERROR, MISS or unfinished).
    case incomplete
}

/// One kernel problem across the run: every cell whose console showed the same
/// report signature (or the same PASID lifetime violation) is one issue.
public struct ReportIssue: Sendable {
    /// The classifier's 16-hex-digit signature, or `lifecycle-<hash>` for a lifetime violation.
    public var signature: String
    public var title: String
    /// A Classify category ("kasan", "oops", ...), "pasid-lifetime", "verdict" or "build".
    public var category: IssueCategory
    public var guiltyFrame: String?
    /// The first occurrence's text.
    public var text: String
    /// Indices into ``MatrixReport/cells``.
    public var cells: [Int]
    /// Present in the baseline too (nil without a baseline).
    public var inBaseline: Bool?
    /// The earliest run known to show it.
    public var firstSeen: Sighting?

    public struct Sighting: Sendable, Equatable {
        public var runID: String
        public var time: String
        public var kernel: String

        public init(runID: String, time: String, kernel: String) {
            self.runID = runID
            self.time = time
            self.kernel = kernel
        }
    }

    /// A regression a developer should hear about: absent from the baseline, or,
    /// without a baseline, never seen before this matrix run.
    public func isNew(in report: MatrixReport) -> Bool {
        if let inBaseline { return !inBaseline }
        guard let firstSeen else { return true }
        return report.cells.contains { $0.runID == firstSeen.runID }
    }
}

/// POSIX shell quoting for reproducer commands.
enum ShellQuote {
    static func quote(_ word: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@,+%")
        if !word.isEmpty, word.allSatisfy({ safe.contains($0) }) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
