import Classify
import Foundation
import RunModel
import Support

/// A failure as comparisons see it: the same signature in two runs is the
/// same issue, whatever the cell, the address or the timestamp.
public struct FailureIssue: Codable, Sendable, Hashable, Comparable {
    /// A kernel report's signature (`KernelReport.signature`), or for failures
    /// without a kernel report (a scenario failure, a timeout, a boot failure,
    /// a build failure) `verdict-` and 16 hex digits of the reason with its
    /// variable parts (numbers, the last console line) left out.
    public var signature: String
    /// The report's title, or the reason so reduced.
    public var title: String
    /// The report's category, a PASID lifetime violation, or `verdict` / `build`.
    public var category: IssueCategory

    public init(signature: String, title: String, category: IssueCategory) {
        self.signature = signature
        self.title = title
        self.category = category
    }

    /// PASID lifetime violations first (the oops an early free causes follows from the
    /// violation, and lists and mails lead with the cause), then by title.
    public static func < (a: FailureIssue, b: FailureIssue) -> Bool {
        (a.rank, a.title, a.signature) < (b.rank, b.title, b.signature)
    }

    private var rank: Int { category == .pasidLifetime ? 0 : 1 }

    /// The signature alone is the issue: titles may name what varies from
    /// run to run (the PID in a PASID lifetime violation's title).
    public static func == (a: FailureIssue, b: FailureIssue) -> Bool { a.signature == b.signature }
    public func hash(into hasher: inout Hasher) { hasher.combine(signature) }

    /// The issues one cell's outcome shows: none unless it failed; the
    /// unsuppressed kernel reports when there are any; else its reason.
    public static func issues(of result: CellResult) -> [FailureIssue] {
        guard let outcome = result.outcome else { return [] }
        switch outcome.status {
        case .fail:
            let kernelReports = result.reports.filter { $0.isKernelReport && !$0.suppressed }
            if !kernelReports.isEmpty {
                var seen = Set<String>()
                return kernelReports.compactMap { report in
                    guard seen.insert(report.signature).inserted else { return nil }
                    return FailureIssue(signature: report.signature, title: report.title, category: IssueCategory(rawValue: report.category))
                }
            }
            return [verdict(outcome.reason, category: .verdict)]
        case .buildFail:
            return [verdict("build failure", category: .build)]
        case .pass, .skip, .error, .miss:
            return []
        }
    }

    /// A reason without what changes from run to run: the last console line
    /// a timeout quotes, numbers (PIDs, addresses, counts).
    public static func verdict(_ reason: String, category: IssueCategory) -> FailureIssue {
        var stable = reason
        if let cut = stable.range(of: "; last console line:") { stable = String(stable[..<cut.lowerBound]) }
        stable = NumberMask.digitRuns(stable, addresses: true)
        return FailureIssue(signature: "verdict-" + Digest.sha256(category.rawValue + "\n" + stable).prefix(16),
                            title: stable, category: category)
    }
}

/// How an issue (or a cell key) changed from the baseline to the run.
public enum Change: String, Codable, Sendable, CaseIterable {
    /// Fails in every usable repeat of the run, in none of the baseline's.
    case new
    /// Failed in every usable repeat of the baseline, in none of the run's.
    case fixed
    /// Fails in every usable repeat of both.
    case stillFailing = "still-failing"
    /// The repeats of the run or of the baseline disagree: the issue showed in
    /// some of them and not in others.
    case flaky
    /// Nothing can be said: a side has no usable repeat (all ERROR, MISS or
    /// unfinished), or the cell exists in one run only.
    case incomplete
}

/// How one side (the run or the baseline) saw one cell key.
public struct SideCount: Codable, Sendable, Equatable {
    /// Repeats with the issue (0 for an `incomplete` entry).
    public var failing: Int
    /// Repeats with a verdict about the kernel: PASS, FAIL, SKIP, BUILD_FAIL.
    public var usable: Int
    /// Repeats in the run.
    public var total: Int
    /// Every repeat's status in repeat order ("-" for no outcome yet).
    public var statuses: [String]

    public init(failing: Int, usable: Int, total: Int, statuses: [String]) {
        self.failing = failing
        self.usable = usable
        self.total = total
        self.statuses = statuses
    }
}

/// One line of a comparison: an issue of a cell key and how it changed.
public struct ComparisonEntry: Codable, Sendable, Equatable {
    public var key: CellKey
    public var change: Change
    /// Nil for `incomplete` entries.
    public var issue: FailureIssue?
    public var run: SideCount
    public var baseline: SideCount
    /// For `incomplete`: why.
    public var note: String?

    public init(key: CellKey, change: Change, issue: FailureIssue?, run: SideCount, baseline: SideCount, note: String? = nil) {
        self.key = key
        self.change = change
        self.issue = issue
        self.run = run
        self.baseline = baseline
        self.note = note
    }
}

/// A run compared against a baseline (`kharness compare <run> <baseline>`).
public struct Comparison: Codable, Sendable, Equatable {
    public var runID: String
    public var baselineID: String
    /// Sorted by change (new first), then cell key, then issue title.
    public var entries: [ComparisonEntry]
    /// Cell keys present in both runs whose every repeat passed on both sides.
    public var passingKeys: Int

    public init(runID: String, baselineID: String, entries: [ComparisonEntry], passingKeys: Int) {
        self.runID = runID
        self.baselineID = baselineID
        self.entries = entries
        self.passingKeys = passingKeys
    }

    /// Entries with this change.
    public func entries(_ change: Change) -> [ComparisonEntry] { entries.filter { $0.change == change } }

    /// Compares the latest outcomes of two runs' cells, matched by ``CellKey``
    /// (kernel name, fragments, machine, workload, scenarios; not the series,
    /// not the repeat). For each key, every issue either side shows is
    /// counted over the side's usable repeats:
    ///
    /// - shown by some but not all usable repeats of a side: `flaky`;
    /// - by all of the run's and all of the baseline's: `still-failing`;
    /// - by all of the run's and none of the baseline's: `new`;
    /// - by none of the run's and all of the baseline's: `fixed`.
    ///
    /// A key with no usable repeat on a side, or on one side only, is
    /// `incomplete` (an infrastructure ERROR says nothing about the kernel).
    public static func compare(run: [CellResult], runID: String, baseline: [CellResult], baselineID: String) -> Comparison {
        let runByKey = Dictionary(grouping: run, by: { $0.cell.key })
        let baseByKey = Dictionary(grouping: baseline, by: { $0.cell.key })
        var entries: [ComparisonEntry] = []
        var passing = 0
        for key in Set(runByKey.keys).union(baseByKey.keys).sorted() {
            let mine = (runByKey[key] ?? []).sorted { $0.cell.repeatIndex < $1.cell.repeatIndex }
            let theirs = (baseByKey[key] ?? []).sorted { $0.cell.repeatIndex < $1.cell.repeatIndex }
            let mineUsable = mine.filter(isUsable)
            let theirsUsable = theirs.filter(isUsable)
            func side(_ all: [CellResult], _ usable: [CellResult], _ issue: FailureIssue?) -> SideCount {
                let failing = issue.map { issue in usable.filter { FailureIssue.issues(of: $0).contains(issue) }.count } ?? 0
                return SideCount(failing: failing, usable: usable.count, total: all.count,
                                 statuses: all.map { $0.outcome?.status.rawValue ?? "-" })
            }
            if mineUsable.isEmpty || theirsUsable.isEmpty {
                let why: String
                if mine.isEmpty { why = "not in the run" }
                else if theirs.isEmpty { why = "not in the baseline" }
                else if mineUsable.isEmpty { why = "no repeat of the run has a verdict on the kernel" }
                else { why = "no repeat of the baseline has a verdict on the kernel" }
                entries.append(ComparisonEntry(key: key, change: .incomplete, issue: nil, run: side(mine, mineUsable, nil),
                                               baseline: side(theirs, theirsUsable, nil), note: why))
                continue
            }
            let issues = Set((mineUsable + theirsUsable).flatMap(FailureIssue.issues(of:)))
            if issues.isEmpty { passing += 1 }
            for issue in issues.sorted() {
                let r = side(mine, mineUsable, issue)
                let b = side(theirs, theirsUsable, issue)
                let change: Change
                if (r.failing > 0 && r.failing < r.usable) || (b.failing > 0 && b.failing < b.usable) {
                    change = .flaky
                } else if r.failing > 0 && b.failing > 0 {
                    change = .stillFailing
                } else if r.failing > 0 {
                    change = .new
                } else {
                    change = .fixed
                }
                entries.append(ComparisonEntry(key: key, change: change, issue: issue, run: r, baseline: b))
            }
        }
        let order = Dictionary(uniqueKeysWithValues: Change.allCases.enumerated().map { ($1, $0) })
        entries.sort { a, b in
            if a.change != b.change { return order[a.change]! < order[b.change]! }
            if a.key != b.key { return a.key < b.key }
            switch (a.issue, b.issue) {
            case let (x?, y?): return x < y
            case (nil, _?): return true
            default: return false
            }
        }
        return Comparison(runID: runID, baselineID: baselineID, entries: entries, passingKeys: passing)
    }

    /// A verdict about the kernel: not ERROR (infrastructure), not MISS, not unfinished.
    static func isUsable(_ result: CellResult) -> Bool {
        guard let outcome = result.outcome, result.cell.state == .done else { return false }
        return [.pass, .fail, .skip, .buildFail].contains(outcome.status)
    }
}

extension Store {
    /// Compares two runs of this database (see ``Comparison/compare(run:runID:baseline:baselineID:)``).
    public func compare(runID: String, baselineID: String) throws -> Comparison {
        _ = try existingRun(id: runID)
        _ = try existingRun(id: baselineID)
        return Comparison.compare(run: try results(ofRun: runID), runID: runID,
                                  baseline: try results(ofRun: baselineID), baselineID: baselineID)
    }
}
