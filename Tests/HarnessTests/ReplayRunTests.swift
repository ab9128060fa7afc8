import Classify
import Collect
import Foundation
import Kernel
import KernelTestSupport
import Machine
import RunModel
import Support
import XCTest

@testable import Harness

/// The run's watch, evidence and verdict stages, and a whole run, on replayed
/// machines: real recorded consoles played back in chunks, ended the way a
/// real machine ends (it powers off, QEMU crashes, the guest hangs or floods,
/// libvirt goes away). No libvirt, no QEMU.
final class ReplayRunTests: XCTestCase {
    private var directory = ""

    override func setUp() async throws {
        directory = NSTemporaryDirectory() + "kharness-replay-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A recorded console from the classifier's test data, without its header.
    private static func console(_ name: String) throws -> Data { try ReplayFixtures.console(name) }

    private struct Watched {
        var outcome: Outcome
        var result: RunResult
        var consoleBytes: Int { result.consoleBytes }
        var kernelRelease: String? { result.kernelRelease }
        var end: RunResult.End { result.end }
        var machine: ReplayMachine
        var timings: [String: Double]
    }

    /// Starts a replayed machine and takes it to its verdict through
    /// `Runner.observe`, what `Runner.execute` does with a started machine.
    private func watch(_ recording: Recording, request: RunRequest = RunRequest(kernel: .debian(version: "6.1")),
                       tracePort: Bool = false, build: KernelBuild? = nil) async throws -> Watched
    {
        var description = DomainDescription(name: "kharness-replay", emulator: "/usr/bin/qemu-system-aarch64",
                                            kernel: "/nonexistent/Image", initrd: "/nonexistent/initrd",
                                            cmdline: "console=ttyAMA0", consoleLog: "\(directory)/console.log")
        description.traceLog = tracePort ? "\(directory)/trace-port.log" : nil
        let plan = Runner.MachinePlan(description: description, deviceRecords: nil,
                                      expectations: RunExpectations(workload: request.workload, scenarios: request.scenarios))
        let machine = try XCTUnwrap(try ReplayMachines(recording).start(description) as? ReplayMachine)
        let clock = PhaseClock()
        let signals = SignalWatch(signals: [])
        defer { signals.stop() }
        var result = RunResult(runID: "replay", status: .error, reason: "provisional", kernel: "debian:6.1",
                               machine: request.machine, workload: request.workload, end: .harnessDied,
                               startedAt: "2026-12-05T00:00:00Z")
        result.build = build
        let outcome = try await Runner.observe(machine, plan: plan, request: request,
                                               suppressions: try Runner.suppressions(for: request), directory: directory,
                                               clock: clock, signals: signals, events: { _ in }, result: &result)
        return Watched(outcome: outcome, result: result, machine: machine, timings: clock.timings)
    }
    /// A real Debian 6.1 boot that powers off after done: PASS, every byte
    /// read, and the machine left to power itself off rather than destroyed.
    func testRecordedCleanBootPasses() async throws {
        let console = try Self.console("real-debian-6.1-boot.log")
        let run = try await watch(Recording(console: console, ending: .poweredOff))
        XCTAssertEqual(run.outcome.status, .pass, run.outcome.reason)
        XCTAssertEqual(run.outcome.reason, "1 scenario(s) passed")
        XCTAssertEqual(run.end, .finished)
        XCTAssertEqual(run.kernelRelease, "6.1.0-56-arm64")
        XCTAssertEqual(run.consoleBytes, console.count)
        XCTAssertFalse(run.machine.wasDestroyed, "a guest that said done powers itself off")
        XCTAssertNotNil(run.timings["poweroff"])
        XCTAssertNotNil(run.timings["boot"])
    }

    /// An oops (oops=panic, panic=-1: the guest resets, libvirt says
    /// "shutdown"): FAIL under the report's title.
    func testKernelOopsFailsWithItsTitle() async throws {
        let run = try await watch(Recording(console: try Self.console("null-deref.log"), ending: .poweredOff))
        XCTAssertEqual(run.outcome.status, .fail)
        XCTAssertEqual(run.outcome.reason, "BUG: unable to handle kernel NULL pointer dereference in arm_smmu_write_ctx_desc")
        XCTAssertEqual(run.end, .finished)
        XCTAssertTrue(run.outcome.evidence.contains { $0.contains("Call trace:") || $0.contains("arm_smmu_write_ctx_desc") },
                      "\(run.outcome.evidence)")
    }

    /// The kernel panics before /init (no root fs) and the guest resets:
    /// FAIL under the panic's title, no workload ever ran.
    func testBootPanicFailsWithThePanicsTitle() async throws {
        let run = try await watch(Recording(console: try Self.console("panic-rootfs.log"), ending: .poweredOff))
        XCTAssertEqual(run.outcome.status, .fail)
        XCTAssertTrue(run.outcome.reason.hasPrefix("kernel panic: VFS: Unable to mount root fs on unknown-block("),
                      run.outcome.reason)
        XCTAssertEqual(run.end, .finished)
        XCTAssertEqual(run.result.scenarios, [])
    }

    /// QEMU dies half-way through the boot: ERROR, the infrastructure's
    /// failure, with QEMU's last line in the reason; never a kernel FAIL.
    func testQemuDyingMidRunIsAnErrorNamingQemusLine() async throws {
        let console = try Self.console("real-debian-6.1-boot.log")
        let half = console.prefix(console.count / 2)
        let qemuLine = "2026-12-05T19:02:11.345102Z qemu-system-aarch64: ../../hw/arm/smmuv3.c:1187: smmuv3_cmdq_consume: Assertion `cmd' failed."
        let run = try await watch(Recording(console: Data(half), ending: .emulatorCrashed(lastLine: qemuLine)))
        XCTAssertEqual(run.outcome.status, .error, run.outcome.reason)
        XCTAssertEqual(run.outcome.reason, "QEMU stopped unexpectedly (libvirt: reason=crashed): \(qemuLine)")
        XCTAssertEqual(run.end, .infrastructure)
    }

    /// libvirt stops answering mid-run: ERROR in libvirt's words, and the
    /// machine is still destroyed.
    func testVanishedLibvirtIsAnError() async throws {
        let console = try Self.console("real-debian-6.1-boot.log")
        let why = "libvirt stopped answering during the run: End of file while reading data: Input/output error"
        let run = try await watch(Recording(console: Data(console.prefix(4000)), ending: .vanishes(why)))
        XCTAssertEqual(run.outcome.status, .error)
        XCTAssertEqual(run.outcome.reason, why)
        XCTAssertEqual(run.end, .infrastructure)
        XCTAssertTrue(run.machine.wasDestroyed)
    }

    /// A guest that hangs in its workload: the workload deadline stops it,
    /// the verdict names the last console line, and the machine is destroyed.
    func testHungWorkloadTimesOut() async throws {
        var request = RunRequest(kernel: .debian(version: "6.1"))
        request.bootTimeout = 5
        request.totalTimeout = 1
        let started = ContinuousClock.now
        let run = try await watch(Recording(console: try Self.console("real-debian-6.1-hang.log"), ending: .hangs),
                                  request: request)
        XCTAssertEqual(run.end, .timeout)
        XCTAssertEqual(run.outcome.status, .fail)
        XCTAssertEqual(run.outcome.reason, "timeout in workload; last console line: about to hang")
        XCTAssertTrue(run.machine.wasDestroyed)
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(4), "the deadline, not the end of the recording, stopped it")
    }

    /// A kernel that never reaches /init: the boot deadline, not the total one.
    func testGuestThatNeverRunsInitTimesOutInBoot() async throws {
        var request = RunRequest(kernel: .debian(version: "6.1"))
        request.bootTimeout = 0.5
        request.totalTimeout = 30
        let console = try Self.console("real-debian-6.1-boot.log")
        let beforeInit = try XCTUnwrap(console.firstRange(of: Data("Run /init".utf8)))
        let run = try await watch(Recording(console: console.subdata(in: 0..<beforeInit.lowerBound), ending: .hangs),
                                  request: request)
        XCTAssertEqual(run.end, .timeout)
        XCTAssertEqual(run.outcome.status, .fail)
        XCTAssertTrue(run.outcome.reason.hasPrefix("timeout in boot; last console line: "), run.outcome.reason)
        XCTAssertTrue(run.machine.wasDestroyed)
    }

    /// A guest that prints without end is stopped at the console limit: the
    /// harness reads a bounded amount, the machine is destroyed and writes no more.
    func testConsoleFloodStaysBounded() async throws {
        var request = RunRequest(kernel: .debian(version: "6.1"))
        request.consoleLimitBytes = 1 << 20
        let boot = try Self.console("real-debian-6.1-boot.log")
        let line = Data("[   12.345678] sva_accel 0000:00:04.0: job 17 still running, polling again\n".utf8)
        let spam = Data((0..<1000).flatMap { _ in line })
        var recording = Recording(console: Data(boot.prefix(6000)), ending: .keepsPrinting(spam))
        recording.chunkBytes = 64 << 10
        let run = try await watch(recording, request: request)
        XCTAssertEqual(run.end, .consoleFlood)
        XCTAssertEqual(run.outcome.status, .fail)
        XCTAssertTrue(run.outcome.reason.hasPrefix("console flood: the guest printed more than 1 MiB"), run.outcome.reason)
        XCTAssertGreaterThan(run.consoleBytes, 1 << 20)
        // Past the limit the watcher reads at most one more chunk, and one at the end.
        XCTAssertLessThanOrEqual(run.consoleBytes, (1 << 20) + 2 * (1 << 20))
        XCTAssertTrue(run.machine.wasDestroyed)
        let size = try FileManager.default.attributesOfItem(atPath: "\(directory)/console.log")[.size] as? Int
        try await Task.sleep(for: .milliseconds(100))
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: "\(directory)/console.log")[.size] as? Int, size,
                       "the destroyed machine still writes its console")
    }

    private static let traces = Checkout.root + "/Tests/ClassifyTests/testdata/traces"

    /// A recorded clean sva run on 6.12 whose trace came on the trace port:
    /// the port is followed beside the console, the trace is whole, the
    /// lifecycle oracle finds nothing, the trace is kept, and the SMMU faults
    /// the workload provokes stay suppressed: PASS.
    func testRecordedSvaRunWithItsTracePortPasses() async throws {
        let console = try Data(contentsOf: URL(fileURLWithPath: "\(Self.traces)/sva-6.12-clean.log"))
        let port = try Data(contentsOf: URL(fileURLWithPath: "\(Self.traces)/sva-6.12-clean-port.log"))
        var request = RunRequest(kernel: .debian(version: "6.1"))
        request.workload = "sva"
        request.machine = "sva"
        var recording = Recording(console: console, trace: port)
        recording.chunkBytes = 32 << 10
        let run = try await watch(recording, request: request, tracePort: true)
        XCTAssertEqual(run.outcome.status, .pass, run.outcome.reason)
        XCTAssertEqual(run.end, .finished)
        XCTAssertEqual(run.result.lifecycleViolations, [])
        XCTAssertNil(run.result.traceUntrusted)
        XCTAssertEqual(run.kernelRelease, "6.12.117")
        XCTAssertGreaterThan(run.result.scenarios.count, 1)
        let events = try String(contentsOfFile: "\(directory)/trace-events.jsonl", encoding: .utf8)
        XCTAssertTrue(events.contains("\"event\":\"bind\""), String(events.prefix(300)))
    }

    /// A coverage kernel's run whose guest sends a gcov section that lies (a path out of
    /// its directory, a file larger than announced, one past the size cap): the verdict is
    /// the trace's and the console's as without it (the section never reaches the trace),
    /// and the coverage is one line saying what was wrong, with nothing written.
    func testAHostileGcovSectionIsOneProblemAndChangesNothingElse() async throws {
        let console = try Data(contentsOf: URL(fileURLWithPath: "\(Self.traces)/sva-6.12-clean.log"))
        let port = try String(contentsOfFile: "\(Self.traces)/sva-6.12-clean-port.log", encoding: .utf8)
        let notes = directory + "/notes"
        try Files.createDirectory(notes + "/drivers/iommu")
        try Files.writeAtomically("gcno", to: notes + "/drivers/iommu/iommu-sva.gcno")
        try Files.writeAtomically("int x;", to: notes + "/drivers/iommu/iommu-sva.c")
        let build = KernelBuild(artifacts: KernelArtifacts(image: "/nonexistent/Image", identity: "git:/nonexistent/linux@0"), tree: "/nonexistent/linux",
                                revision: "HEAD", baseCommit: "0", builtCommit: "0", coverageDirectory: notes)
        var request = RunRequest(kernel: .debian(version: "6.1"))
        request.workload = "sva"
        request.machine = "sva"
        let big = "# kharness gcov-file path=x/drivers/iommu/iommu-sva.gcda bytes=\(GcovSection.maxFileBytes + 1)"
        let sections: [([String], String)] = [
            (["# kharness gcov-file path=../../../etc/x.gcda bytes=4", "AAAAAA=="], "is not a relative .gcda path"),
            (["# kharness gcov-file path=x/drivers/iommu/iommu-sva.gcda bytes=3", "AAAAAAAAAAAA"], "more than the 3 bytes it announced"),
            ([big], "more than \(GcovSection.maxFileBytes)"),
        ]
        for (lines, expected) in sections {
            let section = ([GcovSection.begin] + lines + ["# kharness gcov-end files=1"]).joined(separator: "\n") + "\n"
            let end = try XCTUnwrap(port.range(of: TraceCollector.portEnd))
            let hostile = port.replacingCharacters(in: end.lowerBound..<end.lowerBound, with: section)
            let run = try await watch(Recording(console: console, trace: Data(hostile.utf8)), request: request,
                                      tracePort: true, build: build)
            XCTAssertEqual(run.outcome.status, .pass, run.outcome.reason)
            XCTAssertEqual(run.result.lifecycleViolations, [])
            let coverage = try XCTUnwrap(run.result.coverage)
            XCTAssertEqual(coverage.files, [])
            XCTAssertTrue(coverage.problem?.hasPrefix("gcov data from the guest: ") ?? false, "\(coverage)")
            XCTAssertTrue(coverage.problem?.contains(expected) ?? false, "\(coverage)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/coverage"), expected)
            let trace = try String(contentsOfFile: "\(directory)/trace.log", encoding: .utf8)
            XCTAssertFalse(trace.contains("gcov"), "the section reached the trace")
        }
    }

    // MARK: A whole run

    private func fullRun(_ recording: Recording) async throws -> (RunResult, [String: Any]) {
        let (cache, image) = try ReplayFixtures.fakeKernel(in: directory)
        var request = RunRequest(kernel: .image(path: image, modules: nil))
        request.resultsRoot = "\(directory)/results"
        let result = try await Runner(cache: cache, machines: { _ in ReplayMachines(recording) }).run(request)
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/results/\(result.runID)/result.json"))
        return (result, try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any]))
    }

    /// Every stage from kernel to verdict on a replayed machine: result.json
    /// and the files a run keeps are what a libvirt run writes.
    func testWholeRunOnAReplayedMachineRecordsItsOutcome() async throws {
        let console = try Self.console("real-debian-6.1-boot.log")
        let (result, json) = try await fullRun(Recording(console: console, ending: .poweredOff))
        XCTAssertEqual(result.status, .pass, result.reason)
        XCTAssertEqual(json["status"] as? String, "PASS")
        XCTAssertEqual(json["end"] as? String, "finished")
        XCTAssertEqual(json["kernel_release"] as? String, "6.1.0-56-arm64")
        XCTAssertTrue((json["kernel_identity"] as? String)?.hasPrefix("image:") == true)
        let run = "\(directory)/results/\(result.runID)"
        for file in ["console.log", "domain.xml", "cmdline", "initramfs.manifest"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(run)/\(file)"), file)
        }
        XCTAssertEqual(FileManager.default.contents(atPath: "\(run)/console.log"), console)
        XCTAssertTrue(try String(contentsOfFile: "\(run)/domain.xml", encoding: .utf8).contains("<name>kharness-\(result.runID)</name>"))
        let timings = try XCTUnwrap(json["timings"] as? [String: Double])
        for phase in ["kernel", "initramfs", "connect", "start", "boot", "workload", "poweroff", "teardown", "total"] {
            XCTAssertNotNil(timings[phase], "no \(phase) timing in \(timings.keys.sorted())")
        }
    }

    /// QEMU crashing in a whole run is recorded as ERROR (exit 3), not left
    /// as the provisional "harness stopped" record.
    func testWholeRunWithACrashingQemuRecordsAnError() async throws {
        let console = try Self.console("real-debian-6.1-boot.log")
        let (result, json) = try await fullRun(Recording(console: Data(console.prefix(5000)),
                                                         ending: .emulatorCrashed(lastLine: "qemu-system-aarch64: hardware error")))
        XCTAssertEqual(result.status, .error)
        XCTAssertEqual(json["status"] as? String, "ERROR")
        XCTAssertEqual(json["end"] as? String, "infrastructure")
        XCTAssertEqual(json["reason"] as? String, "QEMU stopped unexpectedly (libvirt: reason=crashed): qemu-system-aarch64: hardware error")
        XCTAssertEqual(result.exitCode, 3)
    }
}
