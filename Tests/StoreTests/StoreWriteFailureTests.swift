import Foundation
import Support
import XCTest

@testable import Store

/// A database write the disk refuses (here the kernel's file-size limit, as a
/// full disk would) is one line naming the database, an infrastructure error,
/// and rolls back whole: what was recorded before is still there and readable.
final class StoreWriteFailureTests: XCTestCase {
    var directory = ""

    override func setUp() {
        directory = NSTemporaryDirectory() + "kharness-store-full-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    func run(_ id: String, text: String) -> (MatrixRunRecord, [CellRecord]) {
        let run = MatrixRunRecord(id: id, name: "t", matrixFile: "/m.yaml", matrixText: text, matrixHash: "h",
                                  withoutSeries: false, resultsDirectory: directory, parallelism: 1)
        let cell = CellRecord(runID: id, ordinal: 0, kernelName: "debian:6.1", kernel: "debian:6.1", machine: "stock",
                              machineProfile: "stock", cmdline: [], workload: "boot", repeatIndex: 1)
        return (run, [cell])
    }

    func testAWriteTheDiskRefusesIsOneLineAndRollsBack() throws {
        let store = try Store.open(path: directory + "/kharness.db")
        let (first, firstCells) = run("m1", text: "name: t\n")
        _ = try store.createRun(first, cells: firstCells)

        var saved = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved), 0)
        let previousHandler = signal(SIGXFSZ, SIG_IGN)
        var limited = saved
        limited.rlim_cur = 256 << 10
        XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limited), 0)
        let (big, bigCells) = run("m2", text: String(repeating: "x", count: 4 << 20))
        do {
            _ = try store.createRun(big, cells: bigCells)
            XCTFail("wrote past the file-size limit")
        } catch let error as HarnessError {
            XCTAssertEqual(error.kind, .infrastructure)
            XCTAssertEqual(error.input, store.path)
            XCTAssertTrue(error.reason.hasPrefix("database write failed: "), error.reason)
            XCTAssertFalse(error.description.contains("\n"), error.description)
        }
        setrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
        signal(SIGXFSZ, previousHandler)

        XCTAssertEqual(try store.runs().map(\.id), ["m1"])
        XCTAssertEqual(try store.integrityCheck(), ["ok"])
    }
}
