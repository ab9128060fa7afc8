import Classify
import Foundation
import KernelTestSupport
import RunModel
import Kernel
import Machine
import Support
import XCTest

@testable import Harness

/// End-to-end runs on the real stack: libvirtd, QEMU 10, Debian's arm64 kernel.
final class RealBootTests: XCTestCase {
    private var resultsRoot = ""

    override func setUp() async throws {
        resultsRoot = NSTemporaryDirectory() + "kharness-results-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: resultsRoot, withIntermediateDirectories: true)
    }

    private func request(_ kernel: String) throws -> RunRequest {
        var r = RunRequest(kernel: try KernelSpec(parsing: kernel))
        r.resultsRoot = resultsRoot
        return r
    }

    private func script(_ body: String) throws -> String {
        let path = resultsRoot + "/workload-\(UUID().uuidString).sh"
        try body.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func readResult(_ runID: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(resultsRoot)/\(runID)/result.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// Nothing of this run may outlive it: no QEMU when the run returns, and
    /// no libvirt domain once libvirt has done its own bookkeeping for a
    /// QEMU that exited (it pauses 200 ms before it looks; see
    /// `LibvirtMachine.awaitPowerOff`), without the harness's help.
    private func assertNothingLeft(_ runID: String, file: StaticString = #filePath, line: UInt = #line) async throws {
        let pgrep = Process()
        pgrep.executableURL = URL(fileURLWithPath: "/usr/bin/pgrep")
        pgrep.arguments = ["-f", "guest=kharness-\(runID)"]
        try pgrep.run()
        pgrep.waitUntilExit()
        XCTAssertEqual(pgrep.terminationStatus, 1, "a QEMU process of run \(runID) is still running", file: file, line: line)
        let connection = try LibvirtConnection(uri: "qemu:///system")
        defer { connection.close() }
        var left = try connection.activeDomainNames(prefix: "kharness-\(runID)")
        for _ in 0..<50 where !left.isEmpty {
            try await Task.sleep(for: .milliseconds(100))
            left = try connection.activeDomainNames(prefix: "kharness-\(runID)")
        }
        XCTAssertEqual(left, [], "libvirt still runs the domain 5 s after the run", file: file, line: line)
    }

    func testDebian61BootsToPassWithSMMUEvidence() async throws {
        let result = try await Runner().run(try request("debian:6.1"))
        XCTAssertEqual(result.status, .pass, result.reason)
        XCTAssertEqual(result.end, .finished)
        XCTAssertTrue(result.kernelRelease?.hasPrefix("6.1.0-") == true, "\(String(describing: result.kernelRelease))")
        XCTAssertEqual(result.scenarios.map(\.name), ["boot"])
        let evidence = result.scenarios.first?.evidence ?? []
        XCTAssertTrue(evidence.contains { $0.contains("arm-smmu-v3") && $0.contains("features 0x") }, "\(evidence)")
        XCTAssertTrue(evidence.contains { $0.contains("1234:11e8") && $0.contains("iommu_group") }, "\(evidence)")
        let json = try readResult(result.runID)
        XCTAssertEqual(json["status"] as? String, "PASS")
        for file in ["console.log", "domain.xml", "cmdline", "initramfs.manifest"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(resultsRoot)/\(result.runID)/\(file)"), file)
        }
        XCTAssertNotNil(result.timings["boot"])
        XCTAssertNotNil(result.timings["workload"])
        try await assertNothingLeft(result.runID)
    }

    func testUsageErrorsAreRefusedBeforeAnyRunDirectoryExists() async throws {
        var badMachine = try request("debian:6.1")
        badMachine.machine = "no-such-machine"
        var badWorkload = try request("debian:6.1")
        badWorkload.workload = "no-such-workload"
        var badScript = try request("debian:6.1")
        badScript.workloadScript = resultsRoot + "/missing.sh"
        for (r, input) in [(badMachine, "no-such-machine"), (badWorkload, "no-such-workload"), (badScript, "missing.sh")] {
            do {
                _ = try await Runner().run(r)
                XCTFail("\(input) should be refused")
            } catch let error as HarnessError {
                XCTAssertEqual(error.kind, .badInput)
                XCTAssertTrue(error.description.contains(input), error.description)
            }
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: resultsRoot), [])
    }

    func testImageThatIsNotAKernelIsAnErrorWithAReason() async throws {
        let bogus = resultsRoot + "/not-a-kernel"
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: bogus))
        let result = try await Runner().run(try request("image:\(bogus)"))
        XCTAssertEqual(result.status, .error)
        XCTAssertTrue(result.reason.contains("not an arm64 kernel Image"), result.reason)
        XCTAssertTrue(result.reason.contains(bogus), result.reason)
        XCTAssertEqual(result.exitCode, 2)
        XCTAssertEqual(try readResult(result.runID)["status"] as? String, "ERROR")
        try await assertNothingLeft(result.runID)
    }

    func testHangingWorkloadTimesOutAtTheDeadline() async throws {
        var r = try request("debian:6.1")
        r.workloadScript = try script("echo '@@kharness begin hang'\necho about to hang\nsleep 100000\n")
        r.totalTimeout = 25
        let result = try await Runner().run(r)
        XCTAssertEqual(result.end, .timeout)
        XCTAssertNotEqual(result.status, .pass)
        XCTAssertNotEqual(result.status, .error, "a guest that hangs is the kernel's or workload's failure, not the harness's")
        XCTAssertTrue(result.reason.contains("timeout"), result.reason)
        XCTAssertTrue(result.reason.contains("about to hang"), "reason should quote the last console line: \(result.reason)")
        try await assertNothingLeft(result.runID)
    }

    /// A guest spewing random bytes (NUL, escapes, invalid UTF-8) is stopped
    /// at the console limit and judged FAIL; the harness survives it.
    func testConsoleFloodOfGarbageStopsTheGuest() async throws {
        var r = try request("debian:6.1")
        r.workloadScript = try script("echo '@@kharness begin flood'\nhead -c 200000000 /dev/urandom\n")
        r.consoleLimitBytes = 1 << 20
        r.totalTimeout = 300
        let result = try await Runner().run(r)
        XCTAssertEqual(result.end, .consoleFlood)
        XCTAssertEqual(result.status, .fail)
        XCTAssertTrue(result.reason.hasPrefix("console flood: the guest printed more than 1 MiB"), result.reason)
        XCTAssertGreaterThan(result.consoleBytes, 1 << 20)
        try await assertNothingLeft(result.runID)
    }

    /// A console larger than virtlogd's default rollover (2 MiB) stays whole
    /// in the run directory (scripts/setup raises the rollover above the
    /// harness's console limit), so reports link the whole log.
    func testAConsoleOfSeveralMegabytesIsKeptWhole() async throws {
        var r = try request("debian:6.1")
        r.workloadScript = try script("""
            echo '@@kharness begin chatty'
            yes 'kharness: a line of console padding, to go past two mebibytes of console output' | head -n 40000
            echo '@@kharness result chatty PASS'
            echo '@@kharness end chatty'

            """)
        r.totalTimeout = 300
        let result = try await Runner().run(r)
        XCTAssertEqual(result.end, .finished, result.reason)
        XCTAssertEqual(result.status, .pass, result.reason)
        let directory = "\(resultsRoot)/\(result.runID)"
        let size = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: directory + "/console.log")[.size] as? Int)
        XCTAssertGreaterThan(size, 40000 * 80, "console.log lost its beginning to a rollover")
        XCTAssertEqual(size, result.consoleBytes)
        let text = try String(contentsOfFile: directory + "/console.log", encoding: .utf8)
        XCTAssertTrue(text.contains("Booting Linux on physical CPU"), "the start of the console is missing")
        XCTAssertFalse(Files.exists(directory + "/console.log.0"))
        try await assertNothingLeft(result.runID)
    }

    /// Starts a run whose workload waits forever, and returns once the
    /// guest's init has spoken.
    private func startWaitingRun() async throws -> Task<RunResult, Error> {
        var r = try request("debian:6.1")
        r.workloadScript = try script("echo '@@kharness begin wait'\nsleep 100000\n")
        r.totalTimeout = 120
        let initSpoke = Flag()
        let runner = Runner(events: { event in
            if case .console(let line) = event, line.contains("@@kharness begin wait") { initSpoke.set() }
        })
        let running = Task { try await runner.run(r) }
        for _ in 0..<1200 where !initSpoke.isSet { try await Task.sleep(for: .milliseconds(100)) }
        XCTAssertTrue(initSpoke.isSet, "the guest's init never spoke")
        return running
    }

    /// QEMU itself dies mid-run: ERROR (infrastructure), not a kernel failure.
    func testQemuKilledDuringRunIsAnInfrastructureError() async throws {
        let running = try await startWaitingRun()
        let domains = try LibvirtConnection(uri: "qemu:///system").activeDomainNames(prefix: "kharness-")
        let mine = try XCTUnwrap(domains.first { FileManager.default.fileExists(atPath: "\(resultsRoot)/\($0.dropFirst("kharness-".count))") })
        let pid = try XCTUnwrap(QemuProcess(domain: mine).pid())
        kill(pid, SIGKILL)
        let result = try await running.value
        XCTAssertEqual(result.status, .error, result.reason)
        XCTAssertEqual(result.end, .infrastructure)
        XCTAssertTrue(result.reason.hasPrefix("QEMU stopped unexpectedly"), result.reason)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(resultsRoot)/\(result.runID)/qemu.log"))
        try await assertNothingLeft(result.runID)
    }

    /// libvirtd dies mid-run and comes back: the run is the infrastructure's
    /// failure (ERROR), never the kernel's, and the guest is gone.
    func testLibvirtdRestartDuringRunIsAnInfrastructureError() async throws {
        let running = try await startWaitingRun()
        try await Command.check("pkill", ["-KILL", "-x", "libvirtd"])
        try await Task.sleep(for: .seconds(1))
        try await Command.check(Checkout.path("scripts/start-libvirt"), [])
        let result = try await running.value
        XCTAssertEqual(result.status, .error, result.reason)
        XCTAssertEqual(result.end, .infrastructure)
        XCTAssertTrue(result.reason.contains("libvirt"), result.reason)
        try await waitForLibvirt()
        try await assertNothingLeft(result.runID)
    }

    private func waitForLibvirt() async throws {
        for _ in 0..<100 {
            if (try? LibvirtConnection(uri: "qemu:///system")) != nil { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        XCTFail("libvirtd did not come back")
    }

    func testSIGINTDestroysTheDomainAndRecordsInterrupted() async throws {
        guard let kharness = Checkout.builtExecutable else { throw XCTSkip(Checkout.missingExecutable) }
        let hang = try script("echo '@@kharness begin wait'\nsleep 100000\n")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: kharness)
        process.arguments = ["run", "--kernel", "debian:6.1", "--workload-script", hang, "--results", resultsRoot, "--quiet"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait until the guest's init runs, then interrupt.
        var runDirectory: String?
        for _ in 0..<1200 {
            if let dir = try FileManager.default.contentsOfDirectory(atPath: resultsRoot).first(where: { !$0.hasSuffix(".sh") }),
               let console = try? String(contentsOfFile: "\(resultsRoot)/\(dir)/console.log", encoding: .utf8),
               console.contains("@@kharness begin wait") {
                runDirectory = dir
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let runID = try XCTUnwrap(runDirectory, "the guest never started")
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 130)
        let json = try readResult(runID)
        XCTAssertEqual(json["status"] as? String, "ERROR")
        XCTAssertEqual(json["end"] as? String, "interrupted")
        XCTAssertTrue((json["reason"] as? String)?.contains("SIGINT") == true, "\(json)")
        try await assertNothingLeft(runID)
    }
}

/// `@unchecked`: `value` is read and written only with `lock` held.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
