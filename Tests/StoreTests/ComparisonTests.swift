import Classify
import Foundation
import Support
import XCTest

@testable import Store

/// The comparison rules as pure functions over records.
final class ComparisonTests: XCTestCase {
    static func cell(_ run: String, machine: String = "stock", repeatIndex: Int, _ status: RunStatus?,
                     reports: [(String, String)] = [], reason: String = "", state: CellState = .done) -> CellResult {
        var cell = CellRecord(runID: run, ordinal: repeatIndex, kernelName: "k", kernel: "git:/t@HEAD",
                              series: run == "run" ? "/s.mbox" : nil, machine: machine, machineProfile: machine,
                              workload: "boot", repeatIndex: repeatIndex)
        cell.id = Int64(repeatIndex)
        cell.state = status == nil ? .pending : state
        cell.attempts = status == nil ? 0 : 1
        let outcome = status.map { OutcomeRecord(cellID: Int64(repeatIndex), attempt: 1, harnessRunID: nil, status: $0,
                                                 reason: reason, end: .finished) }
        let records = reports.enumerated().map { i, report in
            ReportRecord(cellID: Int64(repeatIndex), attempt: 1, ordinal: i, report: KernelReport(
                category: .kasan, title: report.1, signature: report.0, guiltyFrame: nil, text: "", corrupted: false))
        }
        return CellResult(cell: cell, outcome: outcome, reports: records)
    }

    static let uaf = ("aaaaaaaaaaaaaaaa", "KASAN: slab-use-after-free Read in mm_pasid_drop")
    static let warn = ("bbbbbbbbbbbbbbbb", "WARNING in arm_smmu_sva_bind")

    func compare(_ run: [CellResult], _ baseline: [CellResult]) -> Comparison {
        Comparison.compare(run: run, runID: "run", baseline: baseline, baselineID: "base")
    }

    /// `compare --json` and the verdict signatures stay as they were with typed categories.
    func testAnIssueKeepsItsCategoryStringAndSignature() throws {
        let issue = FailureIssue.verdict("timeout in boot after 120 s", category: .verdict)
        XCTAssertEqual(issue.signature, "verdict-" + Digest.sha256("verdict\ntimeout in boot after N s").prefix(16))
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(issue)) as? [String: String])
        XCTAssertEqual(object, ["signature": issue.signature, "title": "timeout in boot after N s", "category": "verdict"])
        let kasan = FailureIssue.issues(of: Self.cell("run", repeatIndex: 1, .fail, reports: [("s1", "KASAN: x")]))
        XCTAssertEqual(kasan.map(\.category), [.report(.kasan)])
    }

    func testASignatureInBothRunsIsTheSameIssueStillFailing() {
        let c = compare([Self.cell("run", repeatIndex: 1, .fail, reports: [Self.uaf]),
                         Self.cell("run", repeatIndex: 2, .fail, reports: [Self.uaf])],
                        [Self.cell("base", repeatIndex: 1, .fail, reports: [Self.uaf]),
                         Self.cell("base", repeatIndex: 2, .fail, reports: [Self.uaf])])
        XCTAssertEqual(c.entries.map(\.change), [.stillFailing])
        XCTAssertEqual(c.entries.first?.issue?.signature, Self.uaf.0)
        XCTAssertEqual(c.entries.first?.run.failing, 2)
    }

    func testNewFixedAndUnchangedPassing() {
        let run = [Self.cell("run", repeatIndex: 1, .fail, reports: [Self.uaf]),
                   Self.cell("run", machine: "nosmmu", repeatIndex: 1, .pass)]
        let base = [Self.cell("base", repeatIndex: 1, .fail, reports: [Self.warn]),
                    Self.cell("base", machine: "nosmmu", repeatIndex: 1, .pass)]
        let c = compare(run, base)
        XCTAssertEqual(c.entries(.new).map(\.issue?.title), [Self.uaf.1])
        XCTAssertEqual(c.entries(.fixed).map(\.issue?.title), [Self.warn.1])
        XCTAssertEqual(c.entries(.stillFailing).count, 0)
        XCTAssertEqual(c.passingKeys, 1)
        XCTAssertEqual(c.entries.map(\.change), [.new, .fixed], "new sorts before fixed")
    }

    func testRepeatsThatDisagreeAreFlakyOnEitherSide() {
        let c = compare([Self.cell("run", repeatIndex: 1, .fail, reports: [Self.uaf]),
                         Self.cell("run", repeatIndex: 2, .pass)],
                        [Self.cell("base", repeatIndex: 1, .pass), Self.cell("base", repeatIndex: 2, .pass)])
        XCTAssertEqual(c.entries.map(\.change), [.flaky])
        XCTAssertEqual(c.entries.first?.run, SideCount(failing: 1, usable: 2, total: 2, statuses: ["FAIL", "PASS"]))

        let fixedButFlakyBefore = compare([Self.cell("run", repeatIndex: 1, .pass)],
                                          [Self.cell("base", repeatIndex: 1, .fail, reports: [Self.warn]),
                                           Self.cell("base", repeatIndex: 2, .pass)])
        XCTAssertEqual(fixedButFlakyBefore.entries.map(\.change), [.flaky])
    }

    func testErrorsSayNothingAboutTheKernel() {
        // One repeat is an infrastructure ERROR: the other one decides.
        let c = compare([Self.cell("run", repeatIndex: 1, .error, reason: "libvirt died"),
                         Self.cell("run", repeatIndex: 2, .fail, reports: [Self.uaf])],
                        [Self.cell("base", repeatIndex: 1, .pass)])
        XCTAssertEqual(c.entries.map(\.change), [.new])
        XCTAssertEqual(c.entries.first?.run.usable, 1)

        let none = compare([Self.cell("run", repeatIndex: 1, .error), Self.cell("run", repeatIndex: 2, nil)],
                           [Self.cell("base", repeatIndex: 1, .pass)])
        XCTAssertEqual(none.entries.map(\.change), [.incomplete])
        XCTAssertEqual(none.entries.first?.run.statuses, ["ERROR", "-"])
        let onlyInRun = compare([Self.cell("run", machine: "sva", repeatIndex: 1, .pass)], [])
        XCTAssertEqual(onlyInRun.entries.first?.note, "not in the baseline")
    }

    func testFailuresWithoutReportsAreMatchedByTheirStableReason() {
        let run = [Self.cell("run", repeatIndex: 1, .fail,
                             reason: "timeout in workload; last console line: [  12.345] pid 77 stuck")]
        let base = [Self.cell("base", repeatIndex: 1, .fail,
                              reason: "timeout in workload; last console line: [  99.001] pid 12 stuck")]
        let c = compare(run, base)
        XCTAssertEqual(c.entries.map(\.change), [.stillFailing])
        XCTAssertEqual(c.entries.first?.issue?.title, "timeout in workload")
        XCTAssertTrue(c.entries.first?.issue?.signature.hasPrefix("verdict-") ?? false)

        let other = compare([Self.cell("run", repeatIndex: 1, .fail, reason: "nginx: byte 0x1000 wrong")],
                            [Self.cell("base", repeatIndex: 1, .fail, reason: "baseline: canary overwritten")])
        XCTAssertEqual(other.entries.map(\.change).sorted { $0.rawValue < $1.rawValue }, [.fixed, .new])
    }

    func testSuppressedReportsAreNotIssues() {
        var failing = Self.cell("run", repeatIndex: 1, .fail, reports: [Self.uaf, Self.warn])
        failing.reports[0].suppressed = true
        let c = compare([failing], [Self.cell("base", repeatIndex: 1, .pass)])
        XCTAssertEqual(c.entries.compactMap(\.issue?.signature), [Self.warn.0])
    }

    func testTheTableNamesEveryEntryAndTheCounts() {
        let c = compare([Self.cell("run", repeatIndex: 1, .fail, reports: [Self.uaf])],
                        [Self.cell("base", repeatIndex: 1, .pass)])
        let table = c.table()
        XCTAssertTrue(table.contains("new"), table)
        XCTAssertTrue(table.contains(Self.uaf.1), table)
        XCTAssertTrue(table.contains("1 new, 0 fixed, 0 still-failing, 0 flaky, 0 incomplete"), table)
    }
}
