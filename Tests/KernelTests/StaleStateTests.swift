import Foundation
import Support
import XCTest

@testable import Kernel

/// What a builder killed outright (SIGKILL) leaves behind is removed at the
/// next start; what a live process is using stays.
final class StaleStateTests: XCTestCase {
    /// The pid of a process that has exited.
    func deadPID() throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/true")
        try process.run()
        process.waitUntilExit()
        XCTAssertFalse(Files.processExists(process.processIdentifier))
        return process.processIdentifier
    }

    func testStaleWorktreesAndStagingDirectoriesAreReclaimed() async throws {
        let root = NSTemporaryDirectory() + "kharness-stale-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let dead = try deadPID(), live = getpid()
        let work = root + "/kernel-work/0123456789abcdef"
        let stale = [
            "\(work)/am-\(dead)-12345", "\(work)/am-\(dead)-12345.mbox",
            "\(root)/kernel-builds/.tmp-\(String(repeating: "a", count: 64))-\(dead)",
            "\(root)/kernel-repos/.tmp-0123456789abcdef-\(dead)",
        ]
        let kept = [
            "\(work)/am-\(live)-1", "\(work)/obj-x", "\(root)/kernel-builds/.tmp-\(String(repeating: "b", count: 64))-\(live)",
            "\(root)/kernel-builds/\(String(repeating: "c", count: 64))", "\(work)/.lock",
        ]
        for path in stale + kept { try Files.createDirectory(path) }
        let builder = KernelBuilder(cache: CacheDirectory(root: root), configDirectory: root)
        await builder.reclaimStale(workDir: work, clone: root + "/kernel-repos/none.git")
        for path in stale { XCTAssertFalse(Files.exists(path), "\(path) stayed") }
        for path in kept { XCTAssertTrue(Files.exists(path), "\(path) was removed") }
    }
}
