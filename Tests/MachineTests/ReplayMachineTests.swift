import Foundation
import XCTest

@testable import Machine

/// The replay backend writes what it was given where a real machine would,
/// and ends as told: the other tests' assertions rest on that.
final class ReplayMachineTests: XCTestCase {
    private var directory = ""

    override func setUp() async throws {
        directory = NSTemporaryDirectory() + "kharness-replay-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func description(trace: Bool) -> DomainDescription {
        var description = DomainDescription(name: "kharness-replay", emulator: "/bin/false", kernel: "/k", initrd: "/i",
                                            cmdline: "", consoleLog: "\(directory)/console.log")
        description.traceLog = trace ? "\(directory)/trace-port.log" : nil
        return description
    }

    private func waitForEnd(_ machine: any MachineInstance) async throws {
        for _ in 0..<400 where machine.state() == .running { try await Task.sleep(for: .milliseconds(5)) }
    }

    /// Every stream lands whole in its file; the end comes after the last byte.
    func testPlaysEveryStreamThenPowersOff() async throws {
        let console = Data((0..<10_000).map { UInt8(truncatingIfNeeded: $0) })
        let trace = Data("# kharness trace-begin\n# kharness trace-end overruns=0\n".utf8)
        var recording = Recording(console: console, trace: trace)
        recording.chunkBytes = 1000
        let machine = try ReplayMachines(recording).start(description(trace: true))
        try await waitForEnd(machine)
        XCTAssertEqual(machine.state(), .ended)
        let end = await machine.end()
        XCTAssertEqual(end, .stopped)
        XCTAssertEqual(FileManager.default.contents(atPath: "\(directory)/console.log"), console)
        XCTAssertEqual(FileManager.default.contents(atPath: "\(directory)/trace-port.log"), trace)
        let poweredOff = await machine.awaitPowerOff(within: .milliseconds(10))
        XCTAssertEqual(poweredOff, true)
    }

    /// A guest without a trace port gets no trace file, as a real one would.
    func testNoTracePortNoTraceFile() async throws {
        let machine = try ReplayMachines(Recording(console: Data("x\n".utf8), trace: Data("t\n".utf8)))
            .start(description(trace: false))
        try await waitForEnd(machine)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(directory)/trace-port.log"))
    }

    /// A hung machine runs until destroyed; a crashed one says why.
    func testHangsUntilDestroyedAndCrashesWithALine() async throws {
        let hung = try ReplayMachines(Recording(console: Data("x\n".utf8), ending: .hangs)).start(description(trace: false))
        let poweredOff = await hung.awaitPowerOff(within: .milliseconds(50))
        XCTAssertEqual(poweredOff, false)
        XCTAssertEqual(hung.state(), .running)
        await hung.destroy()
        XCTAssertEqual(hung.state(), .ended)

        let crashed = try ReplayMachines(Recording(console: Data("x\n".utf8), ending: .emulatorCrashed(lastLine: "boom")))
            .start(description(trace: false))
        try await waitForEnd(crashed)
        let end = await crashed.end()
        XCTAssertEqual(end, .emulatorFailed(detail: "libvirt: reason=crashed", lastLine: "boom"))
    }

    /// A run directory's files are a recording.
    func testRecordingFromARunDirectory() throws {
        try Data("console\n".utf8).write(to: URL(fileURLWithPath: "\(directory)/console.log"))
        try Data("device\n".utf8).write(to: URL(fileURLWithPath: "\(directory)/device.log"))
        let recording = try Recording(runDirectory: directory)
        XCTAssertEqual(recording.console, Data("console\n".utf8))
        XCTAssertNil(recording.trace)
        XCTAssertEqual(recording.deviceRecords, Data("device\n".utf8))
        XCTAssertThrowsError(try Recording(runDirectory: directory + "/missing"))
    }
}
