import Classify
import Foundation
import Support

/// Groups a run's failures into issues and compares a run with its baseline.
///
/// Runs are compared per experiment (machine, workload, scenarios, config
/// fragments) and kernel as the user named it, so a series tested against its
/// base tree compares cell by cell. When the baseline ran another kernel (a
/// previous release, say), an experiment the baseline ran on exactly one kernel
/// is compared with that one.
public enum Comparison {
    /// Fills in ``MatrixReport/issues`` and, given a baseline, each cell's
    /// ``ReportCell/change`` and each issue's ``ReportIssue/inBaseline``.
    /// `firstSeen` looks an issue's signature up in the history (the store);
    /// without an answer the earliest cell of this run that shows it is used.
    public static func annotate(
        _ report: inout MatrixReport, baseline: MatrixReport? = nil,
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
        guard let baseline else { return }
        report.baselineID = baseline.id
        let baselineSignatures = Set(issues(in: baseline.cells).map(\.signature))
        for index in report.issues.indices {
            report.issues[index].inBaseline = baselineSignatures.contains(report.issues[index].signature)
        }
        let mine = outcomes(of: report.cells)
        let theirs = outcomes(of: baseline.cells)
        for index in report.cells.indices {
            let cell = report.cells[index]
            let key = Key(kernel: cell.kernelKey, experiment: cell.experimentKey)
            let before = theirs[key] ?? soleOtherKernel(for: key, in: theirs)
            report.cells[index].change = change(now: mine[key] ?? [cell.status], before: before)
        }
    }

    private struct Key: Hashable {
        var kernel: String
        var experiment: String
    }

    private static func outcomes(of cells: [ReportCell]) -> [Key: [RunStatus]] {
        var result: [Key: [RunStatus]] = [:]
        for cell in cells {
            result[Key(kernel: cell.kernelKey, experiment: cell.experimentKey), default: []].append(cell.status)
        }
        return result
    }

    private static func soleOtherKernel(for key: Key, in baseline: [Key: [RunStatus]]) -> [RunStatus]? {
        let candidates = baseline.filter { $0.key.experiment == key.experiment }
        return candidates.count == 1 ? candidates.first?.value : nil
    }

    /// The verdict for one experiment from all its repetitions, now and before.
    static func change(now: [RunStatus], before: [RunStatus]?) -> CellChange {
        guard let before, !before.isEmpty else { return .notInBaseline }
        let nowFails = now.contains(where: isFailure), nowPasses = now.contains(.pass)
        let beforeFails = before.contains(where: isFailure), beforePasses = before.contains(.pass)
        if (nowFails && nowPasses) || (beforeFails && beforePasses) { return .flaky }
        switch (beforeFails, nowFails) {
        case (false, true): return beforePasses ? .newFailure : .unchanged
        case (true, false): return nowPasses ? .fixed : .unchanged
        case (true, true): return .stillFailing
        case (false, false): return .unchanged
        }
    }

    /// FAIL and BUILD_FAIL say something about the kernel; ERROR, SKIP and
    /// MISS do not, so they never make a regression or a fix.
    static func isFailure(_ status: RunStatus) -> Bool { status == .fail || status == .buildFail }

    /// One issue per signature, in order of first appearance.
    static func issues(in cells: [ReportCell]) -> [ReportIssue] {
        var issues: [ReportIssue] = []
        var position: [String: Int] = [:]
        func add(_ signature: String, _ title: String, _ category: String, _ frame: String?, _ text: String, _ cell: Int) {
            if let at = position[signature] {
                if issues[at].cells.last != cell { issues[at].cells.append(cell) }
                return
            }
            position[signature] = issues.count
            issues.append(ReportIssue(signature: signature, title: title, category: category, guiltyFrame: frame,
                                      text: text, cells: [cell], inBaseline: nil, firstSeen: nil))
        }
        for (index, cell) in cells.enumerated() {
            for report in cell.activeReports {
                add(report.signature, report.title, report.category, report.guiltyFrame, report.text, index)
            }
            for violation in cell.result.lifecycleViolations {
                add(lifecycleSignature(violation.title), violation.title, "pasid-lifetime", nil,
                    ([violation.title] + violation.evidence).joined(separator: "\n"), index)
            }
        }
        return issues
    }

    /// PIDs and PASID numbers differ from run to run; the kind of violation does not.
    static func lifecycleSignature(_ title: String) -> String {
        let shape = title.replacingOccurrences(of: "[0-9]+", with: "N", options: .regularExpression)
        return "lifecycle-" + Digest.sha256(shape).prefix(12)
    }
}
