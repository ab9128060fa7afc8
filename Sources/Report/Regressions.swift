import Classify
import Foundation
import RunModel
import Store
import Support

/// Groups a run's failures into issues and marks what changed against a
/// baseline, in the store's terms (``Store/Comparison``, the same as
/// `kharness compare`), so a report and a comparison never disagree.
public enum Regressions {
    /// Fills in ``MatrixReport/issues`` and, given a baseline, each cell's
    /// ``ReportCell/change`` (from `comparison`, matched by cell key) and each
    /// issue's ``ReportIssue/inBaseline``. `firstSeen` looks a signature up in
    /// the history (the store); without an answer the earliest cell of this
    /// run that shows it is used.
    public static func annotate(
        _ report: inout MatrixReport, baseline: MatrixReport? = nil, comparison: Comparison? = nil,
        firstSeen: (String) -> ReportIssue.Sighting? = { _ in nil }
    ) {
        report.issues = issues(in: report.cells)
        for index in report.issues.indices {
            let issue = report.issues[index]
            let earliest = issue.cells.map { report.cells[$0] }
                .min { $0.result.startedAt < $1.result.startedAt }
                .map { ReportIssue.Sighting(runID: $0.runID, time: $0.result.startedAt, kernel: $0.kernelLabel) }
            report.issues[index].firstSeen = firstSeen(issue.signature) ?? earliest
        }
        if let baseline {
            report.baselineID = baseline.id
            let before = Set(issues(in: baseline.cells).map(\.signature))
            for index in report.issues.indices {
                report.issues[index].inBaseline = before.contains(report.issues[index].signature)
            }
        }
        if let comparison {
            report.baselineID = comparison.baselineID
            let byKey = Dictionary(grouping: comparison.entries, by: \.key)
            for index in report.cells.indices {
                report.cells[index].change = change(byKey[report.cells[index].key] ?? [])
            }
        }
    }

    /// A cell key's change from the comparison's entries for it: the worst
    /// news first. No entry means every repeat passed on both sides.
    static func change(_ entries: [ComparisonEntry]) -> CellChange {
        let changes = Set(entries.map(\.change))
        if changes.contains(.new) { return .newFailure }
        if changes.contains(.flaky) { return .flaky }
        if changes.contains(.stillFailing) { return .stillFailing }
        if changes.contains(.fixed) { return .fixed }
        if changes.contains(.incomplete) { return .incomplete }
        return .unchanged
    }

    /// FAIL and BUILD_FAIL say something about the kernel; ERROR, SKIP and
    /// MISS do not.
    static func isFailure(_ status: RunStatus) -> Bool { status == .fail || status == .buildFail }

    /// One issue per signature, in order of first appearance. A failed cell's
    /// issues are its unsuppressed kernel reports and PASID lifetime
    /// violations; a failure with neither (a scenario failure, a timeout, a
    /// build failure) is an issue named by its reason, with the store's
    /// signature for it (``FailureIssue``).
    static func issues(in cells: [ReportCell]) -> [ReportIssue] {
        var issues: [ReportIssue] = []
        var position: [String: Int] = [:]
        func add(_ signature: String, _ title: String, _ category: IssueCategory, _ frame: String?, _ text: String, _ cell: Int) {
            if let at = position[signature] {
                if issues[at].cells.last != cell { issues[at].cells.append(cell) }
                return
            }
            position[signature] = issues.count
            issues.append(ReportIssue(signature: signature, title: title, category: category, guiltyFrame: frame,
                                      text: text, cells: [cell], inBaseline: nil, firstSeen: nil))
        }
        for (index, cell) in cells.enumerated() {
            switch cell.status {
            case .fail:
                // A lifetime violation is the cause when there is one (the oops a
                // corrupted PASID causes later is its evidence), so it comes first.
                for violation in cell.result.lifecycleViolations {
                    add(lifecycleSignature(violation.title), violation.title, .pasidLifetime, nil,
                        ([violation.title] + violation.evidence).joined(separator: "\n"), index)
                }
                let reports = cell.activeReports.filter(\.isKernelReport)
                for report in reports {
                    add(report.signature, report.title, IssueCategory(report.category), report.guiltyFrame, report.text, index)
                }
                if reports.isEmpty && cell.result.lifecycleViolations.isEmpty {
                    let (signature, title) = verdict(cell.result.reason, category: .verdict)
                    add(signature, title, .verdict, nil, cell.excerpt(maxLines: 200), index)
                }
            case .buildFail:
                let (signature, title) = verdict("build failure", category: .build)
                add(signature, title, .build, nil, cell.result.reason, index)
            case .pass, .skip, .error, .miss:
                break
            }
        }
        return issues
    }

    /// PIDs and PASID numbers differ from run to run; the kind of violation does not.
    static func lifecycleSignature(_ title: String) -> String { PasidLifecycleOracle.Violation.signature(title: title) }

    /// The store's signature and title for a failure without a kernel report
    /// (``FailureIssue/verdict(_:category:)``), so reports and comparisons agree.
    static func verdict(_ reason: String, category: IssueCategory) -> (signature: String, title: String) {
        let issue = FailureIssue.verdict(reason, category: category)
        return (issue.signature, issue.title)
    }
}
