import Classify
import Store
import XCTest
@testable import Report

final class RegressionsTests: XCTestCase {
    var root = ""

    override func setUp() { root = NSTemporaryDirectory() + "report-\(UUID().uuidString)" }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    func testCellChangeTakesTheWorstNewsOfTheStoreComparison() {
        let key = CellKey(kernel: "k", configFragments: [], machine: "m", workload: "w", scenarios: [])
        let side = SideCount(failing: 1, usable: 1, total: 1, statuses: ["FAIL"])
        func entry(_ change: Change) -> ComparisonEntry {
            ComparisonEntry(key: key, change: change, issue: FailureIssue(signature: "s", title: "t", category: .other("c")),
                            run: side, baseline: side)
        }
        XCTAssertEqual(Regressions.change([]), .unchanged)
        XCTAssertEqual(Regressions.change([entry(.fixed), entry(.new)]), .newFailure)
        XCTAssertEqual(Regressions.change([entry(.stillFailing), entry(.flaky)]), .flaky)
        XCTAssertEqual(Regressions.change([entry(.fixed), entry(.stillFailing)]), .stillFailing)
        XCTAssertEqual(Regressions.change([entry(.fixed)]), .fixed)
        XCTAssertEqual(Regressions.change([entry(.incomplete)]), .incomplete)
    }

    func testIssuesGroupBySignatureAndLifecycleTitlesIgnoreNumbers() throws {
        var report = try Fixtures.matrix(root: root)
        // The lifetime violation (the cause), KASAN, the hostile WARNING (all from the failed run), the build failure.
        XCTAssertEqual(report.issues.map(\.category), [.pasidLifetime, .report(.kasan), .report(.warning), .build])
        XCTAssertEqual(report.issues.map(\.signature)[1...2], ["0123456789abcdef", "fedcba9876543210"])
        XCTAssertEqual(report.issues[0].cells, [1])
        XCTAssertEqual(report.issues[3].cells, [4])
        XCTAssertEqual(report.issues[0].firstSeen?.runID, "run-sva-fail")
        XCTAssertEqual(Regressions.lifecycleSignature("PASID 1 freed while still bound to pid 85"),
                       Regressions.lifecycleSignature("PASID 7 freed while still bound to pid 1203"))
        XCTAssertNotEqual(Regressions.lifecycleSignature("PASID 1 freed while still bound to pid 85"),
                          Regressions.lifecycleSignature("PASID 1 bound by pid 86 while still bound to pid 85"))
        // Without a baseline and without history, what this run shows first is new.
        XCTAssertTrue(report.issues.allSatisfy { $0.isNew(in: report) })

        // Seen before in the store: not new.
        Regressions.annotate(&report, firstSeen: { signature in
            signature == "0123456789abcdef" ? .init(runID: "older-run", time: "2026-11-01T00:00:00Z", kernel: "v6.11") : nil
        })
        XCTAssertFalse(report.issues[1].isNew(in: report))
        XCTAssertTrue(report.issues[2].isNew(in: report))
    }

    func testFailureWithoutReportIsNamedByItsReasonAsTheStoreNamesIt() {
        var result = Fixtures.result(id: "r", status: "FAIL", reason: "scenario pasid-reuse: canary page 3 changed at 0x1000")
        result.reports = []
        let issues = Regressions.issues(in: [ReportCell(result: result)])
        XCTAssertEqual(issues.count, 1)
        XCTAssertEqual(issues[0].title, "scenario pasid-reuse: canary page N changed at N")
        XCTAssertTrue(issues[0].signature.hasPrefix("verdict-"))
        // The same failure with other numbers is the same issue.
        result.reason = "scenario pasid-reuse: canary page 7 changed at 0x2000"
        XCTAssertEqual(Regressions.issues(in: [ReportCell(result: result)])[0].signature, issues[0].signature)
        // Infrastructure errors are never kernel issues.
        result.status = .error
        XCTAssertTrue(Regressions.issues(in: [ReportCell(result: result)]).isEmpty)
    }

    func testBaselineMarksIssuesAlreadyThere() throws {
        var report = try Fixtures.matrix(root: root)
        var base = report.cells[1]
        base.result.reports = [Fixtures.kasanReport()]
        base.result.lifecycleViolations = []
        Regressions.annotate(&report, baseline: MatrixReport(id: "matrix-base", cells: [base]))
        XCTAssertEqual(report.baselineID, "matrix-base")
        XCTAssertEqual(report.issues.map(\.inBaseline), [false, true, false, false])
        XCTAssertFalse(report.issues[1].isNew(in: report))
        XCTAssertTrue(report.issues[0].isNew(in: report))
    }
}
