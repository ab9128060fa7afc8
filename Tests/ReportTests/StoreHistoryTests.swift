import Foundation
import RunModel
import Store
import Support
import XCTest
@testable import Report

/// "First seen" from a real SQLite store: an issue an earlier matrix run
/// already showed is not news, whatever this run's baseline.
final class StoreHistoryTests: XCTestCase {
    var root = ""

    override func setUp() { root = NSTemporaryDirectory() + "report-history-\(UUID().uuidString)" }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    /// Records one finished cell whose run showed `result`'s reports.
    func record(_ store: Store, matrix: String, _ result: RunResult) throws {
        let cells = try store.createRun(
            MatrixRunRecord(id: matrix, name: "history", matrixFile: root + "/m.yaml", matrixText: "", matrixHash: "",
                            withoutSeries: false, resultsDirectory: root, parallelism: 1),
            cells: [CellRecord(runID: matrix, ordinal: 0, kernelName: "6.12", kernel: result.kernel, machine: "sva",
                               machineProfile: "sva", workload: "sva", repeatIndex: 1)])
        let id = try XCTUnwrap(cells.first?.id)
        let attempt = try store.startCell(id, harnessRunID: result.runID, directory: root + "/" + result.runID,
                                          connectionURI: nil)
        try store.finishCell(id, attempt: attempt, result: result, wallSeconds: 1)
        try store.setRunState(matrix, .finished)
    }

    func testFirstSeenComesFromTheEarliestRunInTheStore() throws {
        let store = try Store.open(path: root + "/kharness.db")
        try record(store, matrix: "m-old", Fixtures.result(id: "h-old", status: "FAIL", reports: [Fixtures.kasan()]))
        Thread.sleep(forTimeInterval: 0.05) // a synchronous test: blocking here blocks no task
        var other = Fixtures.kasan(title: "WARNING in iommu_sva_bind_device", signature: "1111222233334444")
        other["category"] = "warning"
        try record(store, matrix: "m-new", Fixtures.result(id: "h-new", status: "FAIL", reports: [Fixtures.kasan(), other]))

        var report = try MatrixReport.load(from: store, runID: "m-new")
        XCTAssertEqual(report.cells.map(\.runID), ["h-new"])
        Regressions.annotate(&report, firstSeen: StoreHistory(store: store).firstSeen)
        XCTAssertEqual(report.issues.map(\.signature), ["0123456789abcdef", "1111222233334444"])
        XCTAssertEqual(report.issues[0].firstSeen?.runID, "h-old")
        XCTAssertEqual(report.issues[0].firstSeen?.kernel, "6.12")
        XCTAssertFalse(report.issues[0].isNew(in: report), "m-old showed it already")
        XCTAssertEqual(report.issues[1].firstSeen?.runID, "h-new")
        XCTAssertTrue(report.issues[1].isNew(in: report))
        XCTAssertEqual(EmailReport.render(report).components(separatedBy: "\nSubject: ").count - 1, 1)
        XCTAssertNil(StoreHistory(store: store).firstSeen(signature: "ffffffffffffffff"))
    }
}
