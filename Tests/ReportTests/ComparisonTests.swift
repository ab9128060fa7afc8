import Classify
import XCTest
@testable import Report

final class ComparisonTests: XCTestCase {
    func testChangeOverRepetitions() {
        XCTAssertEqual(Comparison.change(now: [.fail], before: [.pass]), .newFailure)
        XCTAssertEqual(Comparison.change(now: [.pass, .pass], before: [.fail]), .fixed)
        XCTAssertEqual(Comparison.change(now: [.fail], before: [.fail, .fail]), .stillFailing)
        XCTAssertEqual(Comparison.change(now: [.pass, .fail], before: [.pass]), .flaky)
        XCTAssertEqual(Comparison.change(now: [.fail], before: [.pass, .fail]), .flaky)
        XCTAssertEqual(Comparison.change(now: [.pass], before: [.pass]), .unchanged)
        XCTAssertEqual(Comparison.change(now: [.fail], before: nil), .notInBaseline)
        // Infrastructure errors say nothing about the kernel.
        XCTAssertEqual(Comparison.change(now: [.fail], before: [.error]), .unchanged)
        XCTAssertEqual(Comparison.change(now: [.error], before: [.fail]), .unchanged)
        XCTAssertEqual(Comparison.change(now: [.buildFail], before: [.pass]), .newFailure)
    }

    func testIssuesGroupBySignatureAndLifecycleTitlesIgnoreNumbers() throws {
        let root = NSTemporaryDirectory() + "report-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        var report = try Fixtures.matrix(root: root)
        XCTAssertEqual(report.issues.map(\.signature).prefix(2), ["0123456789abcdef", "fedcba9876543210"])
        XCTAssertEqual(report.issues.count, 3)
        XCTAssertTrue(report.issues[2].signature.hasPrefix("lifecycle-"))
        XCTAssertEqual(report.issues[0].cells, [1])
        XCTAssertEqual(report.issues[0].firstSeen?.runID, "run-sva-fail")
        XCTAssertEqual(Comparison.lifecycleSignature("PASID 1 freed while still bound to pid 85"),
                       Comparison.lifecycleSignature("PASID 7 freed while still bound to pid 1203"))
        XCTAssertNotEqual(Comparison.lifecycleSignature("PASID 1 freed while still bound to pid 85"),
                          Comparison.lifecycleSignature("PASID 1 bound by pid 86 while still bound to pid 85"))
        // Without a baseline and without history, what this run shows first is new.
        XCTAssertTrue(report.issues.allSatisfy { $0.isNew(in: report) })

        // Seen before in the store: not new.
        Comparison.annotate(&report, firstSeen: { signature in
            signature == "0123456789abcdef" ? .init(runID: "older-run", time: "2026-11-01T00:00:00Z", kernel: "v6.11") : nil
        })
        XCTAssertFalse(report.issues[0].isNew(in: report))
        XCTAssertTrue(report.issues[1].isNew(in: report))
    }

    func testBaselineMarksNewFailuresAndFlakyCells() throws {
        let root = NSTemporaryDirectory() + "report-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        var report = try Fixtures.matrix(root: root)
        // The baseline: the same experiments passing on the base kernel (no series).
        let baseline = MatrixReport(id: "matrix-base", cells: report.cells.map { cell in
            var result = cell.result
            result.status = .pass
            result.reports = []
            result.lifecycleViolations = []
            return ReportCell(result: result, repeatIndex: cell.repeatIndex, configFragments: cell.configFragments,
                              scenarios: cell.scenarios)
        })
        Comparison.annotate(&report, baseline: baseline)
        XCTAssertEqual(report.baselineID, "matrix-base")
        XCTAssertEqual(report.cells.map(\.change), [.unchanged, .flaky, .flaky, .unchanged, .newFailure])
        XCTAssertEqual(report.issues.map(\.inBaseline), [false, false, false])
        XCTAssertTrue(report.issues[0].isNew(in: report))

        // The same failure in the baseline: still failing, issue not new.
        var failing = baseline
        failing.cells[1] = report.cells[1]
        failing.cells.remove(at: 2)
        failing.cells[3].result.status = .buildFail
        Comparison.annotate(&report, baseline: failing)
        XCTAssertEqual(report.cells[4].change, .stillFailing)
        XCTAssertEqual(report.issues[0].inBaseline, true)
        XCTAssertFalse(report.issues[0].isNew(in: report))
    }

    func testBaselineOnAnotherKernelComparesBySoleExperiment() throws {
        let root = NSTemporaryDirectory() + "report-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        var report = try Fixtures.matrix(root: root)
        var previous = report.cells[1]
        previous.result.kernel = "git:/src/linux@v6.11"
        previous.result.status = .pass
        Comparison.annotate(&report, baseline: MatrixReport(id: "older", cells: [previous]))
        XCTAssertEqual(report.cells[1].change, .flaky)
        XCTAssertEqual(report.cells[0].change, .notInBaseline)
    }
}
