import Classify
import Foundation
import GRDB
import KernelTestSupport
import Machine
import Support
import XCTest

@testable import Matrix
@testable import Store

/// Real matrices: libvirtd, QEMU, Debian's 6.1 kernel and a 6.12 kernel
/// built from Debian's source, a real SQLite file.
final class MatrixRunTests: XCTestCase {
    var directory = ""

    override func setUp() {
        directory = Checkout.scratchDirectory("kharness-matrix")
        Checkout.useGuestAssets()
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    func write(_ name: String, _ text: String) throws -> String {
        let path = directory + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func options(_ runID: String) -> MatrixOptions {
        var options = MatrixOptions()
        options.results = directory + "/results"
        options.runID = runID
        return options
    }

    /// Two kernels x two machines x the boot workload x 2 repeats, spread
    /// over two libvirt connections to this host's daemon: the local socket,
    /// and ssh through a private sshd on a loopback port, as a remote host
    /// would be reached.
    func testTwoKernelsTwoMachinesTwoRepeatsOverTwoConnections() async throws {
        let tree = try await KernelSources.tree("6.12")
        let ssh = try await LoopbackSSH(directory: directory + "/ssh")
        defer { ssh.stop() }
        let file = try write("matrix.yaml", """
            name: real
            repeat: 2
            parallel: 2
            kernels:
              - debian:6.1
              - name: "6.12"
                spec: git:\(tree)@HEAD
            configs: [[smmuv3, trace, modules]]
            machines:
              - stock
              - name: lazy
                profile: stock
                invalidation: lazy
            workloads: [boot]
            connections: [qemu:///system, "\(ssh.uri)"]
            """)
        let store = try Store.open(path: directory + "/results/kharness.db")
        let events = EventLog()
        let outcome = try await MatrixRunner(store: store, events: events.record).run(matrixPath: file, options: options("real"))
        let results = outcome.results
        XCTAssertEqual(events.kernelLines.filter { $0.contains("@HEAD") && $0.hasSuffix(": building") }.count, 1,
                       "the 6.12 kernel is prepared once for its four cells: \(events.kernelLines)")
        XCTAssertEqual(events.kernelLines.filter { $0 == "kernel debian:6.1: fetching" }.count, 1)
        XCTAssertEqual(events.started, 8)
        XCTAssertEqual(results.count, 8)
        XCTAssertEqual(outcome.run.state, .finished)
        XCTAssertEqual(outcome.exitCode, 0)
        for result in results {
            let outcome = try XCTUnwrap(result.outcome, "cell \(result.cell.ordinal) has no outcome")
            XCTAssertEqual(outcome.status, .pass, "\(result.cell.key): \(outcome.reason)")
            XCTAssertEqual(result.cell.state, .done)
            XCTAssertEqual(result.cell.attempts, 1)
            XCTAssertNotNil(result.cell.kernelIdentity)
            XCTAssertGreaterThan(outcome.guestSeconds, 0)
            XCTAssertLessThan(outcome.guestSeconds, outcome.wallSeconds)
            let console = try XCTUnwrap(result.artifact(named: "console.log"))
            XCTAssertTrue(try String(contentsOfFile: console.path, encoding: .utf8).contains("@@kharness done"))
            XCTAssertNotNil(result.artifact(named: "result.json"))
            let cmdline = try String(contentsOfFile: try XCTUnwrap(result.artifact(named: "cmdline")).path, encoding: .utf8)
            XCTAssertEqual(cmdline.contains("iommu.strict=0"), result.cell.machine == "lazy", cmdline)
            XCTAssertTrue(result.cell.directory?.hasPrefix(directory + "/results/real/") == true)
        }
        let git = results.filter { $0.cell.kernelName == "6.12" }
        XCTAssertEqual(git.count, 4)
        // Whatever point release Debian serves: the one the tree's Makefile names.
        let release = try await KernelSources.release(tree: tree, revision: "HEAD", fragments: ["smmuv3", "trace", "modules"])
        XCTAssertTrue(git.allSatisfy { $0.cell.configHash != nil && $0.outcome?.kernelRelease == release },
                      "\(git.map { $0.outcome?.kernelRelease }) is not \(release)")
        XCTAssertEqual(Set(git.map(\.cell.kernelIdentity)).count, 1, "one kernel build for all its cells")
        XCTAssertTrue(results.filter { $0.cell.kernelName == "debian:6.1" }.allSatisfy { $0.cell.configHash == nil })
        XCTAssertEqual(Set(results.compactMap(\.cell.connectionURI)), ["qemu:///system", ssh.uri])
        // The ssh cells went through sshd, all in one session: the harness keeps one
        // connection per URI (LibvirtConnection.shared).
        let sshd = try String(contentsOfFile: ssh.directory + "/sshd.log", encoding: .utf8)
        XCTAssertEqual(sshd.components(separatedBy: "Accepted publickey for root").count - 1, 1, sshd)
        XCTAssertEqual(try store.integrityCheck(), ["ok"])

        let same = try store.compare(runID: "real", baselineID: "real")
        XCTAssertEqual(same.entries, [])
        XCTAssertEqual(same.passingKeys, 4)
    }

    /// A kernel that cannot be prepared (a revision the tree does not have)
    /// gives each of its cells the same ERROR without booting; the other
    /// kernel's cells run.
    func testAKernelThatCannotBePreparedFailsItsCellsWithoutRunningThem() async throws {
        let tree = try await KernelSources.tree("6.12")
        let file = try write("bad-rev.yaml", """
            kernels:
              - debian:6.1
              - git:\(tree)@no-such-revision
            configs: [[smmuv3]]
            machines: [stock]
            workloads: [boot]
            repeat: 2
            parallel: 2
            """)
        let events = EventLog()
        let store = try Store.open(path: directory + "/results/kharness.db")
        let outcome = try await MatrixRunner(store: store, events: events.record).run(matrixPath: file, options: options("badrev"))
        XCTAssertEqual(outcome.exitCode, 3)
        XCTAssertEqual(outcome.run.state, .finished)
        XCTAssertEqual(events.started, 2, "only the Debian kernel's cells boot")
        for result in outcome.results where result.cell.kernel.hasPrefix("git:") {
            XCTAssertEqual(result.outcome?.status, .error)
            XCTAssertEqual(result.outcome?.end, .badInput)
            XCTAssertTrue(result.outcome?.reason.contains("unknown revision 'no-such-revision'") == true,
                          result.outcome?.reason ?? "")
            XCTAssertNil(result.cell.harnessRunID)
        }
        XCTAssertEqual(outcome.results.filter { $0.outcome?.status == .pass }.count, 2)
    }

    /// The issue's baseline: the same matrix without the series. A series
    /// that plants a WARNING in the SMMUv3 driver's probe is built once for
    /// its cells; without it the kernel boots clean; the comparison names
    /// the WARNING as the one new issue.
    func testASeriesComparedAgainstTheSameMatrixWithoutIt() async throws {
        let tree = try await KernelSources.tree("6.12")
        let file = try write("series.yaml", """
            kernels:
              - name: "6.12"
                spec: git:\(tree)@HEAD
                series: \(Checkout.root)/guest/patches/smmu-probe-warning-6.12.patch
            configs: [[smmuv3, trace, modules]]
            machines: [stock]
            workloads: [boot]
            repeat: 2
            parallel: 2
            """)
        let store = try Store.open(path: directory + "/results/kharness.db")
        let patched = try await MatrixRunner(store: store).run(matrixPath: file, options: options("patched"))
        var without = options("clean")
        without.withoutSeries = true
        let clean = try await MatrixRunner(store: store).run(matrixPath: file, options: without)

        XCTAssertEqual(clean.exitCode, 0, "\(clean.results.map { $0.outcome?.reason ?? "-" })")
        XCTAssertTrue(clean.results.allSatisfy { $0.cell.series == nil })
        XCTAssertEqual(patched.exitCode, 1)
        XCTAssertTrue(patched.results.allSatisfy { $0.cell.series?.hasSuffix("smmu-probe-warning-6.12.patch") == true })
        XCTAssertNotEqual(patched.results.first?.cell.kernelIdentity, clean.results.first?.cell.kernelIdentity)

        let comparison = try store.compare(runID: "patched", baselineID: "clean")
        XCTAssertEqual(comparison.entries.map(\.change), [.new], comparison.table())
        let issue = try XCTUnwrap(comparison.entries.first?.issue)
        XCTAssertEqual(issue.category, .report(.warning))
        XCTAssertTrue(issue.title.contains("arm_smmu_device_probe"), issue.title)
        XCTAssertEqual(comparison.entries.first?.run, SideCount(failing: 2, usable: 2, total: 2, statuses: ["FAIL", "FAIL"]),
                       comparison.table() + "\(patched.results.map { $0.outcome?.reason ?? "-" })")
    }

    /// A kernel that really panics (no init: it cannot mount a root) against
    /// one that boots: the panic's signature is new one way, fixed the other,
    /// still failing against itself.
    func testComparisonAgainstABaselineOnRealRuns() async throws {
        let good = try write("good.yaml", "kernels: [debian:6.1]\nmachines: [stock]\nworkloads: [boot]\nrepeat: 2\nparallel: 2\n")
        let bad = try write("bad.yaml", """
            kernels: [debian:6.1]
            machines:
              - name: stock
                profile: stock
                cmdline: [rdinit=/nonexistent]
            workloads: [boot]
            repeat: 2
            parallel: 2
            """)
        let store = try Store.open(path: directory + "/results/kharness.db")
        let baseline = try await MatrixRunner(store: store).run(matrixPath: good, options: options("good"))
        XCTAssertEqual(baseline.exitCode, 0, "\(baseline.results.map { $0.outcome?.reason ?? "-" })")
        let broken = try await MatrixRunner(store: store).run(matrixPath: bad, options: options("bad"))
        XCTAssertEqual(broken.exitCode, 1)

        let comparison = try store.compare(runID: "bad", baselineID: "good")
        XCTAssertEqual(comparison.entries.map(\.change), [.new], comparison.table())
        let entry = try XCTUnwrap(comparison.entries.first)
        XCTAssertEqual(entry.issue?.title, "kernel panic: VFS: Unable to mount root fs on unknown-block(NUM,NUM)")
        XCTAssertEqual(entry.run, SideCount(failing: 2, usable: 2, total: 2, statuses: ["FAIL", "FAIL"]))
        let signatures = Set(broken.results.flatMap(\.reports).map(\.signature))
        XCTAssertEqual(signatures.count, 1, "both repeats give the panic the same signature")
        XCTAssertEqual(entry.issue?.signature, signatures.first)

        XCTAssertEqual(try store.compare(runID: "good", baselineID: "bad").entries.map(\.change), [.fixed])

        // The command line: JSON on stdout, exit 1 because something is new.
        let compare = Process()
        compare.executableURL = URL(fileURLWithPath: try Self.executable())
        compare.arguments = ["compare", "bad", "good", "--json", "--results", directory + "/results"]
        let out = Pipe()
        compare.standardOutput = out
        try compare.run()
        let json = out.fileHandleForReading.readDataToEndOfFile()
        compare.waitUntilExit()
        XCTAssertEqual(compare.terminationStatus, 1)
        let decoded = try JSONDecoder().decode(Comparison.self, from: json)
        XCTAssertEqual(decoded, comparison)
        XCTAssertEqual(try store.compare(runID: "bad", baselineID: "bad").entries.map(\.change), [.stillFailing])
    }

    /// `matrix run` SIGKILLed while guests run: the database stays
    /// consistent, the next open marks the cells that were running
    /// interrupted (the killed process cannot), the guests die with the
    /// libvirt connection, and `matrix resume` finishes the run.
    func testSIGKILLMidRunThenResume() async throws {
        let kharness = try Self.executable()
        let file = try write("kill.yaml", "kernels: [debian:6.1]\nmachines: [stock, nosmmu]\nworkloads: [boot]\nrepeat: 2\nparallel: 2\n")
        let results = directory + "/results"
        let database = results + "/kharness.db"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: kharness)
        process.arguments = ["matrix", "run", file, "--results", results, "--id", "killed"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()

        // Wait until a guest's kernel is running in some cell, then SIGKILL.
        let running = try await Self.waitForABootingCell(database: database)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .uncaughtSignal)

        // The file as the killed process left it: intact, cells still "running".
        let raw = try DatabaseQueue(path: database)
        let integrity = try await raw.read { try String.fetchAll($0, sql: "PRAGMA integrity_check") }
        XCTAssertEqual(integrity, ["ok"])
        let leftRunning = try await raw.read { try Int64.fetchAll($0, sql: "SELECT id FROM cells WHERE state = 'running'") }
        XCTAssertFalse(leftRunning.isEmpty)
        try raw.close()

        // Its guests died with its libvirt connection (autodestroy).
        let connection = try LibvirtConnection(uri: "qemu:///system")
        defer { connection.close() }
        for cell in running {
            var left = ["?"]
            for _ in 0..<100 {
                left = try connection.activeDomainNames(prefix: "kharness-\(cell.harnessRunID)")
                if left.isEmpty { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            XCTAssertEqual(left, [], "the domain of cell \(cell.id) outlived the harness")
        }

        // The next open marks them interrupted, with an ERROR outcome.
        let store = try Store.open(path: database)
        XCTAssertEqual(try store.run(id: "killed")?.state, .interrupted)
        for id in leftRunning {
            XCTAssertEqual(try store.cell(id: id)?.state, .interrupted)
            XCTAssertEqual(try store.outcome(ofCell: id)?.end, .harnessDied)
            XCTAssertEqual(try store.outcome(ofCell: id)?.status, .error)
        }

        let resume = Process()
        resume.executableURL = URL(fileURLWithPath: kharness)
        resume.arguments = ["matrix", "resume", "killed", "--results", results]
        resume.standardOutput = FileHandle.nullDevice
        resume.standardError = FileHandle.nullDevice
        try resume.run()
        resume.waitUntilExit()
        XCTAssertEqual(resume.terminationStatus, 0)

        XCTAssertEqual(try store.run(id: "killed")?.state, .finished)
        let final = try store.results(ofRun: "killed")
        XCTAssertEqual(final.count, 4)
        for result in final {
            XCTAssertEqual(result.cell.state, .done)
            let expected: RunStatus = result.cell.machine == "stock" ? .pass : .skip
            XCTAssertEqual(result.outcome?.status, expected, "\(result.cell.key): \(result.outcome?.reason ?? "no outcome")")
        }
        for id in leftRunning {
            XCTAssertEqual(try store.outcomeHistory(ofCell: id).map(\.end), [.harnessDied, .finished])
            XCTAssertEqual(try store.cell(id: id)?.attempts, 2)
        }
        XCTAssertEqual(try store.integrityCheck(), ["ok"])
    }

    /// SIGTERM while two cells run: both are destroyed and recorded as
    /// interrupted, nothing new starts, the run is interrupted, exit 143.
    func testSIGTERMInterruptsRunningCellsAndStartsNoMore() async throws {
        let kharness = try Self.executable()
        let file = try write("term.yaml", "kernels: [debian:6.1]\nmachines: [stock]\nworkloads: [boot]\nrepeat: 4\nparallel: 2\n")
        let results = directory + "/results"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: kharness)
        process.arguments = ["matrix", "run", file, "--results", results, "--id", "term"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        try await Self.waitForABootingCell(database: results + "/kharness.db")
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 143)

        let store = try Store.open(path: results + "/kharness.db")
        XCTAssertEqual(try store.run(id: "term")?.state, .interrupted)
        let cells = try store.results(ofRun: "term")
        let interrupted = cells.filter { $0.cell.state == .interrupted }
        XCTAssertFalse(interrupted.isEmpty)
        for result in interrupted {
            XCTAssertEqual(result.outcome?.status, .error)
            XCTAssertEqual(result.outcome?.reason, "interrupted by SIGTERM")
        }
        XCTAssertTrue(cells.contains { $0.cell.state == .pending }, "no cell starts after the signal")
    }

    /// Returns the running cells once one of them has a kernel booting.
    @discardableResult
    static func waitForABootingCell(database: String) async throws -> [(id: Int64, harnessRunID: String)] {
        for _ in 0..<1200 {
            if FileManager.default.fileExists(atPath: database), let queue = try? DatabaseQueue(path: database),
               let rows = try? queue.read({ db in
                   try Row.fetchAll(db, sql: "SELECT id, harness_run_id, directory FROM cells WHERE state = 'running'")
               }) {
                let booting = rows.filter { row in
                    let console = (row["directory"] as String? ?? "") + "/console.log"
                    return (try? String(contentsOfFile: console, encoding: .utf8))?.contains("Linux version") == true
                }
                if !booting.isEmpty { return rows.map { ($0["id"], $0["harness_run_id"]) } }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTFail("no cell ever ran")
        return []
    }

    static func executable() throws -> String {
        guard let kharness = Checkout.builtExecutable else { throw XCTSkip(Checkout.missingExecutable) }
        return kharness
    }
}

/// What a matrix run reported, for assertions.
/// `@unchecked`: its vars are read and written only with `lock` held.
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var kernels: [String] = []
    private var startedCells = 0

    func record(_ event: MatrixEvent) {
        lock.lock()
        defer { lock.unlock() }
        switch event {
        case .kernel(let line): kernels.append(line)
        case .cellStarted: startedCells += 1
        default: break
        }
    }

    var kernelLines: [String] { lock.lock(); defer { lock.unlock() }; return kernels }
    var started: Int { lock.lock(); defer { lock.unlock() }; return startedCells }
}
