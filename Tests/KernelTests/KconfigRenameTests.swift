import Foundation
import Kernel
import Support
import XCTest

/// Fragments name options as 5.10 to 6.x do; a tree that renamed one (7.3's
/// PROC_SYSCTL -> SYSCTL) gets the new name, every other tree its lines unchanged.
final class KconfigRenameTests: XCTestCase {
    /// A git tree whose fs/proc/Kconfig defines `symbol`, as the real ones do.
    func tree(defining symbol: String) throws -> String {
        let dir = NSTemporaryDirectory() + "kharness-kconfig-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        try Files.createDirectory(dir + "/fs/proc")
        try Files.writeAtomically("config \(symbol)\n\tbool \"Sysctl support (/proc/sys)\" if EXPERT\n\tdepends on PROC_FS\n",
                                  to: dir + "/fs/proc/Kconfig")
        try Files.writeAtomically("source \"fs/proc/Kconfig\"\n", to: dir + "/Kconfig")
        for arguments in [["init", "-q"], ["add", "."]] {
            let git = Process()
            git.executableURL = URL(fileURLWithPath: "/usr/bin/git")
            git.arguments = ["-C", dir] + arguments
            try git.run()
            git.waitUntilExit()
            XCTAssertEqual(git.terminationStatus, 0, "git \(arguments)")
        }
        return dir
    }

    func fragments() throws -> ConfigFragments {
        let dir = NSTemporaryDirectory() + "kharness-fragments-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        try Files.createDirectory(dir)
        try Files.writeAtomically("CONFIG_PROC_FS=y\nCONFIG_PROC_SYSCTL=y\n", to: dir + "/base.config")
        try Files.writeAtomically("# CONFIG_PROC_SYSCTL is not set\nCONFIG_PROC_SYSCTL_X=y\n", to: dir + "/off.config")
        return try ConfigFragments(directory: dir, names: ["off"])
    }

    func testATreeWithTheNewNameGetsItsLinesRewritten() async throws {
        let asked = try fragments()
        let renames = await KconfigRename.applicable(to: asked, source: try tree(defining: "SYSCTL"))
        XCTAssertEqual(renames, ["CONFIG_PROC_SYSCTL": "CONFIG_SYSCTL"])
        let renamed = asked.renaming(renames)
        XCTAssertEqual(renamed.fragments.map(\.text),
                       ["CONFIG_PROC_FS=y\nCONFIG_SYSCTL=y\n", "# CONFIG_SYSCTL is not set\nCONFIG_PROC_SYSCTL_X=y\n"])
        XCTAssertEqual(renamed.requested.map(\.symbol), ["CONFIG_PROC_FS", "CONFIG_SYSCTL", "CONFIG_PROC_SYSCTL_X"])
        XCTAssertNotEqual(renamed.hash, asked.hash)
    }

    func testATreeWithTheOldNameKeepsTheFragmentsAsWritten() async throws {
        let asked = try fragments()
        let renames = await KconfigRename.applicable(to: asked, source: try tree(defining: "PROC_SYSCTL"))
        XCTAssertEqual(renames, [:])
        XCTAssertEqual(asked.renaming(renames).hash, asked.hash)
    }

    /// A tree with neither name is left alone: the final check names the unknown symbol.
    func testATreeWithNeitherNameIsNotRewritten() async throws {
        let renames = await KconfigRename.applicable(to: try fragments(), source: try tree(defining: "SOMETHING_ELSE"))
        XCTAssertEqual(renames, [:])
    }
}
