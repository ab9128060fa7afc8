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
            if !exited { usleep(5_000) }
        }
        XCTAssertTrue(exited, "a killed process counts as exited before it is reaped")
        XCTAssertEqual(kill(pid, 0), 0, "not reaped yet: still a zombie that kill(pid, 0) finds")

        var status: Int32 = 0
        XCTAssertEqual(waitpid(pid, &status, 0), pid)
        XCTAssertTrue(QemuProcess.hasExited(pid: pid))
    }
}
