import Foundation
import KernelTestSupport
import Machine
import RunModel
import Support
import Synchronization
import XCTest

@testable import Matrix
@testable import Store

/// Whole matrices on replayed machines: every cell goes through the runner's
/// stages and the store as in a real matrix, but its machine plays a recorded
/// console and ends as scripted. No libvirt, no QEMU, no kernel build (the
/// kernel is an `image:` that nothing boots).
final class MatrixReplayTests: XCTestCase {
    var directory = ""

    override func setUp() {
        directory = Checkout.scratchDirectory("kharness-matrix-replay")
        Checkout.useGuestAssets()
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    /// One `image:` kernel on `machines` running the boot workload, each
    /// machine's cells replaying `recordings[machine]`.
    func run(machines: [String], recordings: [String: Recording],
             runID: String) async throws -> (MatrixOutcome, Store, [String]) {
        let (cache, image) = try ReplayFixtures.fakeKernel(in: directory)
        let file = directory + "/matrix.yaml"
        try """
            name: replay
            kernels: [image:\(image)]
            machines: [\(machines.joined(separator: ", "))]
            workloads: [boot]
            parallel: 2
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let store = try Store.open(path: directory + "/results/kharness.db")
        let played = MachinesPlayed()
        var options = MatrixOptions()
        options.results = directory + "/results"
        options.runID = runID
        let runner = MatrixRunner(store: store, cache: cache, machines: { request in
            played.append(request.machine)
            return ReplayMachines(recordings[request.machine]!)
        })
        let outcome = try await runner.run(matrixPath: file, options: options)
        return (outcome, store, played.all)
    }

    /// A cell whose machine powers off after a clean boot passes; one whose
    /// QEMU crashes is ERROR with QEMU's last line; both are in the database
    /// with their run directories, and the matrix exits 3 (an ERROR, no FAIL).
    func testAPassingCellAndACrashingQemuAreRecordedAndTheMatrixIsAnError() async throws {
        let console = try ReplayFixtures.console("real-debian-6.1-boot.log")
        let recordings = [
            "stock": Recording(console: console, ending: .poweredOff),
            "nosmmu": Recording(console: Data(console.prefix(5000)),
                                ending: .emulatorCrashed(lastLine: "qemu-system-aarch64: hardware error")),
        ]
        let (outcome, store, played) = try await run(machines: ["stock", "nosmmu"], recordings: recordings, runID: "replay1")
        XCTAssertEqual(played.sorted(), ["nosmmu", "stock"], "each cell's machine came from the given backend")
        XCTAssertEqual(outcome.exitCode, ExitStatus.error)
        XCTAssertEqual(outcome.run.state, .finished)
        XCTAssertNil(outcome.interruptedBy)

        // What the database holds, read back through a connection of its own.
        let reopened = try Store.open(path: store.path)
        let results = try reopened.results(ofRun: "replay1")
        XCTAssertEqual(results.count, 2)
        XCTAssertEqual(try reopened.existingRun(id: "replay1").state, .finished)
        for result in results {
            XCTAssertEqual(result.cell.state, .done, result.cell.machine)
            XCTAssertEqual(result.cell.attempts, 1)
            XCTAssertTrue(result.cell.kernelIdentity?.hasPrefix("image:") == true, "\(result.cell)")
            let recorded = try XCTUnwrap(result.outcome, "cell \(result.cell.machine) has no outcome")
            let runID = try XCTUnwrap(recorded.harnessRunID)
            let json = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/results/replay1/\(runID)/result.json"))
            let fields = try XCTUnwrap(JSONSerialization.jsonObject(with: json) as? [String: Any])
            XCTAssertEqual(fields["status"] as? String, recorded.status.rawValue)
            switch result.cell.machine {
            case "stock":
                XCTAssertEqual(recorded.status, .pass, recorded.reason)
                XCTAssertEqual(recorded.end, .finished)
            case "nosmmu":
                XCTAssertEqual(recorded.status, .error)
                XCTAssertEqual(recorded.end, .infrastructure)
                XCTAssertEqual(recorded.reason,
                               "QEMU stopped unexpectedly (libvirt: reason=crashed): qemu-system-aarch64: hardware error")
            default:
                XCTFail("unexpected machine \(result.cell.machine)")
            }
        }
        XCTAssertEqual(outcome.results.map(\.outcome?.status), results.map(\.outcome?.status))
    }

    /// A kernel oops in one cell makes the matrix a FAIL (exit 1) even with
    /// an ERROR beside it; every cell still ends with its own outcome.
    func testAFailingCellMakesTheMatrixFailWhateverElseHappened() async throws {
        let clean = try ReplayFixtures.console("real-debian-6.1-boot.log")
        let recordings = [
            "stock": Recording(console: clean, ending: .poweredOff),
            "stock-lazy": Recording(console: try ReplayFixtures.console("null-deref.log"), ending: .poweredOff),
            "nosmmu": Recording(console: Data(clean.prefix(5000)), ending: .vanishes("libvirt connection lost")),
        ]
        let (outcome, store, _) = try await run(machines: ["stock", "stock-lazy", "nosmmu"], recordings: recordings,
                                                runID: "replay2")
        XCTAssertEqual(outcome.exitCode, ExitStatus.failure)
        let results = try store.results(ofRun: "replay2")
        XCTAssertEqual(results.count, 3)
        XCTAssertTrue(results.allSatisfy { $0.cell.state == .done && $0.outcome != nil }, "\(results)")
        let statuses = Dictionary(uniqueKeysWithValues: results.map { ($0.cell.machine, $0.outcome?.status) })
        XCTAssertEqual(statuses, ["stock": .pass, "stock-lazy": .fail, "nosmmu": .error])
        let oops = try XCTUnwrap(results.first { $0.cell.machine == "stock-lazy" }?.outcome)
        XCTAssertEqual(oops.reason, "BUG: unable to handle kernel NULL pointer dereference in arm_smmu_write_ctx_desc")
    }
}

/// The machines a backend factory was asked for.
final class MachinesPlayed: Sendable {
    private let machines = Mutex<[String]>([])

    func append(_ machine: String) { machines.withLock { $0.append(machine) } }
    var all: [String] { machines.withLock { $0 } }
}
