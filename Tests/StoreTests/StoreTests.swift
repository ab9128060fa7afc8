import Classify
import Foundation
import GRDB
import RunModel
import Support
import XCTest

@testable import Store

/// The store on a real SQLite file in a temporary directory.
final class StoreTests: XCTestCase {
    var directory = ""

    override func setUp() {
        directory = NSTemporaryDirectory() + "kharness-store-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    func makeRun(_ store: Store, id: String = "m1", repeats: Int = 2) throws -> [CellRecord] {
        let run = MatrixRunRecord(id: id, name: "t", matrixFile: "/m.yaml", matrixText: "name: t\n", matrixHash: "h",
                                  withoutSeries: false, resultsDirectory: directory, parallelism: 2)
        let cells = (1...repeats).map { r in
            CellRecord(runID: id, ordinal: r - 1, kernelName: "debian:6.1", kernel: "debian:6.1", machine: "stock",
                       machineProfile: "stock", cmdline: ["iommu.strict=1"], workload: "boot", repeatIndex: r)
        }
        return try store.createRun(run, cells: cells)
    }

    static func result(_ id: String, _ status: RunStatus, reason: String = "ok", reports: [KernelReport] = [],
                       end: RunResult.End = .finished) -> RunResult {
        RunResult(runID: id, status: status, reason: reason, evidence: ["e"], kernel: "debian:6.1",
                  kernelIdentity: "debian:6.1.0-1", build: nil, kernelRelease: "6.1.0-1-arm64", machine: "stock",
                  workload: "boot", end: end, scenarios: [ScenarioResult(name: "boot", status: status, ended: true)],
                  reports: reports, timings: ["boot": 2, "workload": 1, "total": 4], consoleBytes: 100,
                  startedAt: "", finishedAt: "")
    }

    static let oops = KernelReport(category: .oops, title: "BUG: unable to handle kernel NULL pointer dereference in foo",
                                   signature: "0123456789abcdef", guiltyFrame: "foo", text: "Unable to handle ...",
                                   corrupted: false)

    /// A PASID lifetime violation is kept as the cell's first report, so a
    /// comparison sees the same bug in two runs as one issue still failing,
    /// although the oops it caused hit other code each time.
    func testALifetimeViolationIsTheIssueComparisonsFollow() throws {
        let store = try Store.open(path: directory + "/k.db")
        for (run, pid, oopsSignature) in [("m1", 85, "1111111111111111"), ("m2", 1203, "2222222222222222")] {
            let cells = try makeRun(store, id: run)
            for cell in cells {
                let id = try XCTUnwrap(cell.id)
                _ = try store.startCell(id, harnessRunID: "\(run)-\(id)", directory: directory + "/\(run)/\(id)",
                                        connectionURI: nil)
                var result = Self.result("\(run)-\(id)", .fail, reason: "PASID 1 freed while still bound to pid \(pid)")
                result.lifecycleViolations = [.init(title: "PASID 1 freed while still bound to pid \(pid)",
                                                    evidence: ["sva_accel_bind: pasid=1 pid=\(pid)"])]
                var oops = Self.oops
                oops.signature = oopsSignature
                result.reports = [oops]
                try store.finishCell(id, attempt: 1, result: result, wallSeconds: 1)
            }
        }
        let first = try XCTUnwrap(try store.cells(ofRun: "m2").first?.id)
        XCTAssertEqual(try store.reports(ofCell: first).map(\.category), ["pasid-lifetime", "oops"])

        let comparison = try store.compare(runID: "m2", baselineID: "m1")
        let violation = try XCTUnwrap(comparison.entries.first { $0.issue?.category == .pasidLifetime })
        XCTAssertEqual(violation.change, .stillFailing, "\(comparison.entries)")
        XCTAssertEqual(violation.issue?.signature, PasidLifecycleOracle.Violation.signature(title: "PASID 7 freed while still bound to pid 9"))
    }

    func testACellsOutcomeReportsScenariosAndArtifactsAreReadBack() throws {
        let store = try Store.open(path: directory + "/k.db")
        let cells = try makeRun(store)
        XCTAssertEqual(cells.map(\.id), [1, 2])
        XCTAssertEqual(try store.cells(ofRun: "m1").map(\.state), [.pending, .pending])

        let runDirectory = directory + "/m1/r1"
        try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        try "console\n".write(toFile: runDirectory + "/console.log", atomically: true, encoding: .utf8)
        try "{}".write(toFile: runDirectory + "/result.json", atomically: true, encoding: .utf8)
        let attempt = try store.startCell(1, harnessRunID: "r1", directory: runDirectory, connectionURI: "qemu:///system")
        XCTAssertEqual(attempt, 1)
        XCTAssertNil(try store.outcome(ofCell: 1), "a running cell has no outcome yet")
        try store.finishCell(1, attempt: 1, result: Self.result("r1", .fail, reason: Self.oops.title, reports: [Self.oops]),
                             wallSeconds: 5)

        let cell = try XCTUnwrap(store.cell(id: 1))
        XCTAssertEqual(cell.state, .done)
        XCTAssertEqual(cell.kernelIdentity, "debian:6.1.0-1")
        XCTAssertEqual(cell.cmdline, ["iommu.strict=1"])
        let outcome = try XCTUnwrap(store.outcome(ofCell: 1))
        XCTAssertEqual(outcome.status, .fail)
        XCTAssertEqual(outcome.guestSeconds, 3)
        XCTAssertEqual(outcome.wallSeconds, 5)
        XCTAssertEqual(outcome.evidence, ["e"])
        XCTAssertEqual(try store.reports(ofCell: 1).map(\.signature), ["0123456789abcdef"])
        XCTAssertEqual(try store.scenarios(ofCell: 1).map(\.name), ["boot"])
        XCTAssertEqual(try store.artifacts(ofCell: 1).map(\.name), ["console.log", "result.json"])
        XCTAssertEqual(try store.artifacts(ofCell: 1).first?.bytes, 8)

        let results = try store.results(ofRun: "m1")
        XCTAssertEqual(results.count, 2)
        XCTAssertEqual(results[0].outcome?.status, .fail)
        XCTAssertEqual(results[0].artifact(named: "console.log")?.path, runDirectory + "/console.log")
        XCTAssertNil(results[1].outcome)
        XCTAssertEqual(try store.integrityCheck(), ["ok"])
    }

    func testARunIDIsUsedOnce() throws {
        let store = try Store.open(path: directory + "/k.db")
        _ = try makeRun(store)
        XCTAssertThrowsError(try makeRun(store)) { error in
            XCTAssertEqual((error as? HarnessError)?.kind, .badInput)
        }
    }

    /// A harness that died leaves `running` rows and no lock holder; the
    /// next open marks what ran as interrupted with an ERROR outcome and
    /// leaves what never started pending. A run whose owner lives is left alone.
    func testOpeningRecoversRunsWhoseOwnerDied() throws {
        let path = directory + "/k.db"
        let owner: RunOwnership
        do {
            let store = try Store.open(path: path)
            owner = try store.own(runID: "alive")
            _ = try makeRun(store, id: "dead")
            _ = try makeRun(store, id: "alive")
            _ = try store.startCell(1, harnessRunID: "r1", directory: directory + "/none", connectionURI: nil)
            _ = try store.startCell(3, harnessRunID: "r3", directory: directory + "/none", connectionURI: nil)
        }
        // "dead" has no owner now: the process that ran it is gone.
        let store = try Store.open(path: path)
        XCTAssertEqual(try store.run(id: "dead")?.state, .interrupted)
        XCTAssertEqual(try store.cells(ofRun: "dead").map(\.state), [.interrupted, .pending])
        let outcome = try XCTUnwrap(store.outcome(ofCell: 1))
        XCTAssertEqual(outcome.status, .error)
        XCTAssertEqual(outcome.end, .harnessDied)
        XCTAssertEqual(try store.run(id: "alive")?.state, .running)
        XCTAssertEqual(try store.cell(id: 3)?.state, .running)
        XCTAssertThrowsError(try store.own(runID: "alive"), "a live owner keeps its run")
        owner.release()
        XCTAssertEqual(try store.recoverAbandonedRuns(), ["alive"])
        XCTAssertEqual(try store.cell(id: 3)?.state, .interrupted)
    }

    func testARerunIsANewAttemptAndTheLatestOneIsTheResult() throws {
        let store = try Store.open(path: directory + "/k.db")
        _ = try makeRun(store, repeats: 1)
        _ = try store.startCell(1, harnessRunID: "r1", directory: directory, connectionURI: nil)
        try store.finishCell(1, attempt: 1, result: Self.result("r1", .error, reason: "interrupted by SIGINT", end: .interrupted),
                             wallSeconds: 1)
        XCTAssertEqual(try store.cell(id: 1)?.state, .interrupted)
        let second = try store.startCell(1, harnessRunID: "r2", directory: directory, connectionURI: nil)
        XCTAssertEqual(second, 2)
        try store.finishCell(1, attempt: 2, result: Self.result("r2", .pass), wallSeconds: 1)
        XCTAssertEqual(try store.outcome(ofCell: 1)?.status, .pass)
        XCTAssertEqual(try store.outcomeHistory(ofCell: 1).map(\.status), [.error, .pass])
        XCTAssertEqual(try store.cell(id: 1)?.state, .done)
    }

    func testTheSchemaIsMigratedOnceAndReopens() throws {
        let path = directory + "/k.db"
        _ = try makeRun(try Store.open(path: path))
        let store = try Store.open(path: path)
        XCTAssertEqual(try store.runs().map(\.id), ["m1"])
        let migrations = try store.read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") }
        XCTAssertEqual(migrations, ["v1"])
    }

    func testAFileThatIsNotADatabaseIsAnInfrastructureError() throws {
        let path = directory + "/junk.db"
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try Store.open(path: path)) { error in
            let error = error as? HarnessError
            XCTAssertEqual(error?.kind, .infrastructure)
            XCTAssertEqual(error?.input, path)
        }
    }
}
