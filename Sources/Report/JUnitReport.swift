import Classify
import Foundation
import RunModel

/// JUnit XML, the format CI systems (GitLab, Jenkins, GitHub actions' test
/// reporters) read: one `<testsuite>` per kernel, config and machine; one
/// `<testcase>` per run (the run's own verdict, with the kernel reports) and
/// one per scenario the guest reported.
public enum JUnitReport {
    public static func render(_ report: MatrixReport) -> String {
        var suites: [(name: String, cells: [ReportCell])] = []
        var position: [String: Int] = [:]
        for cell in report.cells {
            let name = "\(cell.kernelLabel) (\(cell.configLabel)) on \(cell.result.machine)"
            if let at = position[name] {
                suites[at].cells.append(cell)
            } else {
                position[name] = suites.count
                suites.append((name, [cell]))
            }
        }
        let cases = report.cells.map(testcases)
        let all = cases.flatMap { $0 }
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<testsuites name=\"\(Escape.markup("kharness \(report.id)"))\"\(counts(all))>\n"
        var caseIndex = 0
        for suite in suites {
            let suiteCases = suite.cells.flatMap { _ -> [Testcase] in
                defer { caseIndex += 1 }
                return cases[caseIndex]
            }
            let first = suite.cells[0].result
            out += "  <testsuite name=\"\(Escape.markup(suite.name))\"\(counts(suiteCases))"
            out += " timestamp=\"\(Escape.markup(first.startedAt))\">\n"
            out += "    <properties>\n"
            var properties = [("matrix_run", report.id), ("kernel", first.kernel), ("machine", first.machine)]
            if let identity = first.kernelIdentity { properties.append(("kernel_identity", identity)) }
            if let release = first.kernelRelease { properties.append(("kernel_release", release)) }
            if let build = first.build {
                properties += [("base_commit", build.baseCommit), ("patchset_hash", build.patchsetHash),
                               ("config_hash", build.configHash)]
            }
            for (name, value) in properties {
                out += "      <property name=\"\(Escape.markup(name))\" value=\"\(Escape.markup(value))\"/>\n"
            }
            out += "    </properties>\n"
            for testcase in suiteCases { out += testcase.xml }
            out += "  </testsuite>\n"
        }
        out += "</testsuites>\n"
        return out
    }

    struct Testcase {
        var status: RunStatus
        var xml: String
    }

    private static func counts(_ cases: [Testcase]) -> String {
        let failures = cases.filter { Regressions.isFailure($0.status) }.count
        let errors = cases.filter { $0.status == .error || $0.status == .miss }.count
        let skipped = cases.filter { $0.status == .skip }.count
        return " tests=\"\(cases.count)\" failures=\"\(failures)\" errors=\"\(errors)\" skipped=\"\(skipped)\""
    }

    private static func testcases(for cell: ReportCell) -> [Testcase] {
        let result = cell.result
        let classname = Escape.markup("\(result.workload).\(result.machine)")
        let suffix = cell.repeatIndex > 1 ? " #\(cell.repeatIndex)" : ""
        let seconds = String(format: "%.3f", result.timings["total"] ?? 0)
        var outOfBand = "run \(result.runID)\nreproduce: \(cell.reproducer)\n"
        if let console = cell.artifact("console.log") { outOfBand += "console: \(console)\n" }
        if let change = cell.change { outOfBand += "against baseline: \(change.rawValue)\n" }

        var run = "    <testcase classname=\"\(classname)\" name=\"\(Escape.markup(result.workload + suffix))\" time=\"\(seconds)\">\n"
        let message = result.reason.isEmpty ? cell.activeReports.first?.title ?? "" : result.reason
        let type = result.lifecycleViolations.isEmpty ? cell.activeReports.first?.category.rawValue ?? result.status.rawValue : IssueCategory.pasidLifetime.rawValue
        run += verdict(result.status, message: message, type: type,
                       body: cell.excerpt(maxLines: 200))
        run += "      <system-out>\(Escape.markup(outOfBand))</system-out>\n"
        run += "    </testcase>\n"
        var cases = [Testcase(status: result.status, xml: run)]
        for scenario in result.scenarios {
            var xml = "    <testcase classname=\"\(classname)\" name=\"\(Escape.markup("\(result.workload).\(scenario.name)\(suffix)"))\" time=\"0\">\n"
            xml += verdict(scenario.status, message: scenario.reason, type: scenario.status.rawValue,
                           body: ([scenario.reason] + scenario.evidence).joined(separator: "\n"))
            xml += "    </testcase>\n"
            cases.append(Testcase(status: scenario.status, xml: xml))
        }
        return cases
    }

    private static func verdict(_ status: RunStatus, message: String, type: String, body: String) -> String {
        let attributes = "message=\"\(Escape.markup(Escape.truncate(Escape.line(message), 300)))\" type=\"\(Escape.markup(type))\""
        switch status {
        case .pass: return ""
        case .fail, .buildFail: return "      <failure \(attributes)>\(Escape.markup(body))</failure>\n"
        // MISS (began, gave no result) did not complete: an error to CI, not a skip to hide.
        case .error, .miss: return "      <error \(attributes)>\(Escape.markup(body))</error>\n"
        case .skip: return "      <skipped \(attributes)/>\n"
        }
    }
}
