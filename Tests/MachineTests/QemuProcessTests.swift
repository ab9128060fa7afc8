import Foundation
import XCTest

@testable import Machine

final class QemuProcessTests: XCTestCase {
    /// A process that exited counts as gone while it is still a zombie: that
    /// is when the harness stops waiting after a guest powers off (libvirt's
    /// reaper may not have collected QEMU yet).
    func testHasExitedSeesRunningZombieAndReaped() throws {
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sleep"), strdup("30"), nil]
        defer { argv.forEach { free($0) } }
        XCTAssertEqual(posix_spawn(&pid, "/bin/sleep", nil, nil, argv, environ), 0)
        XCTAssertFalse(QemuProcess.hasExited(pid: pid))

        kill(pid, SIGKILL)
        var exited = false
        for _ in 0..<400 where !exited {
            exited = QemuProcess.hasExited(pid: pid)
            if !exited { usleep(5_000) } // a synchronous test: blocking here blocks no task
        }
        XCTAssertTrue(exited, "a killed process counts as exited before it is reaped")
        XCTAssertEqual(kill(pid, 0), 0, "not reaped yet: still a zombie that kill(pid, 0) finds")

        var status: Int32 = 0
        XCTAssertEqual(waitpid(pid, &status, 0), pid)
        XCTAssertTrue(QemuProcess.hasExited(pid: pid))
    }
}

/// How libvirt's log of a domain is read for why its QEMU stopped.
final class QemuEndReasonTests: XCTestCase {
    /// The tail of a real qemu:///system log (the command line, QEMU's
    /// messages, libvirt's shutting-down line), with QEMU killed by a signal.
    func testReasonAndQemusLastOwnLine() throws {
        let tail = """
            2026-12-05 19:01:58.101+0000: starting up libvirt version: 11.3.0, qemu version: 10.0.2
            LC_ALL=C /usr/bin/qemu-system-aarch64 -name guest=kharness-20261205-190158-0a1b2c,debug-threads=on -machine virt
            2026-12-05T19:02:11.345102Z qemu-system-aarch64: ../../hw/arm/smmuv3.c:1187: smmuv3_cmdq_consume: Assertion `cmd' failed.
            2026-12-05T19:02:11.401122Z qemu-system-aarch64: terminating on signal 6 from pid 1 (<unknown process>)
            2026-12-05 19:02:11.520+0000: shutting down, reason=crashed

            """
        let end = try XCTUnwrap(QemuProcess.endReason(logTail: tail))
        XCTAssertEqual(end.reason, "crashed")
        XCTAssertEqual(end.lastQemuLine, "2026-12-05T19:02:11.345102Z qemu-system-aarch64: ../../hw/arm/smmuv3.c:1187: smmuv3_cmdq_consume: Assertion `cmd' failed.")
    }

    /// Until libvirt wrote its shutting-down line there is no reason yet.
    func testNoReasonBeforeLibvirtWroteIt() {
        XCTAssertNil(QemuProcess.endReason(logTail: "2026-12-05 19:01:58.101+0000: starting up libvirt version: 11.3.0\n"))
    }

    /// The directories are the backend's: a pid file elsewhere is read there.
    func testPidAndLogFilesFollowTheBackendsDirectories() throws {
        let run = NSTemporaryDirectory() + "kharness-qemu-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: run) }
        let process = QemuProcess(domain: "kharness-x", runDirectory: run, logDirectory: "/elsewhere/log")
        XCTAssertEqual(process.logFile, "/elsewhere/log/kharness-x.log")
        XCTAssertNil(process.pid())
        try "4242\n".write(toFile: "\(run)/kharness-x.pid", atomically: true, encoding: .utf8)
        XCTAssertEqual(process.pid(), 4242)
        XCTAssertEqual(QemuProcess(domain: "kharness-x").pidFile, "/run/libvirt/qemu/kharness-x.pid")
    }
}
