import Foundation
import Support
import VCS
import XCTest

@testable import Kernel

/// The kernel builder's git steps (the shared clone, `git am` of a series in a
/// throw-away worktree, the persistent worktree) on a small repository: no
/// kernel, no make.
final class SourceTreeGitTests: XCTestCase {
    var root = ""

    override func setUp() async throws {
        root = NSTemporaryDirectory() + "kharness-tree-git-\(UUID().uuidString)"
        try Files.createDirectory(root)
    }

    override func tearDown() async throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    /// A tree with `base` and one commit on top, whose format-patch is the series.
    func makeTree() async throws -> (tree: String, base: String, series: PatchSeries) {
        let tree = root + "/linux"
        try Files.createDirectory(tree + "/kernel")
        let git = GitRepository(path: tree)
        let identity = ["-c", "user.name=k", "-c", "user.email=k@example.invalid"]
        try await git.check(["init", "--quiet"])
        try Files.writeAtomically("int a;\n", to: tree + "/kernel/fork.c")
        try Files.writeAtomically("readme\n", to: tree + "/README")
        try await git.check(["add", "."])
        try await git.check(identity + ["commit", "--quiet", "-m", "base"])
        let base = try await git.resolve("HEAD")
        try Files.writeAtomically("int a;\nint b;\n", to: tree + "/kernel/fork.c")
        try await git.check(identity + ["commit", "--quiet", "-am", "fork: add b"])
        let mbox = root + "/series.mbox"
        try Files.writeAtomically(try await git.check(["format-patch", "--stdout", "-1", "HEAD"]), to: mbox)
        try await git.check(["reset", "--quiet", "--hard", base])
        return (tree, base, try PatchSeries(path: mbox))
    }

    func testASeriesIsAppliedInTheCloneAndTheUsersTreeIsUntouched() async throws {
        let (tree, base, series) = try await makeTree()
        let builder = KernelBuilder(cache: CacheDirectory(root: root + "/cache"), configDirectory: root)
        let key = KernelBuilder.treeKey(tree)
        let clone = try await builder.sharedClone(of: tree, key: key)
        XCTAssertEqual(clone, root + "/cache/kernel-repos/\(key).git")
        let workDir = try builder.cache.directory("kernel-work", key)
        let applied = try await builder.apply(series, onto: base, clone: clone, workDir: workDir, key: "k1")
        let repository = GitRepository(path: clone)
        let subject = try await repository.headline(applied).subject
        XCTAssertEqual(subject, "fork: add b")
        let ref = try await repository.resolve("refs/kharness/k1")
        XCTAssertEqual(ref, applied)
        // Applied again: the same commit (the committer is fixed).
        let again = try await builder.apply(series, onto: base, clone: clone, workDir: workDir, key: "k2")
        XCTAssertEqual(again, applied)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: workDir), [], "worktree or mbox left")
        let userTree = GitRepository(path: tree)
        let userHead = try await userTree.resolve("HEAD")
        XCTAssertEqual(userHead, base)
        let inUserTree = try await userTree.hasCommit(applied)
        XCTAssertFalse(inUserTree, "the commit went into the user's repository")

        // The persistent worktree follows the commits asked for.
        let src = workDir + "/src"
        try await builder.checkout(applied, clone: clone, into: src)
        XCTAssertEqual(try String(contentsOfFile: src + "/kernel/fork.c", encoding: .utf8), "int a;\nint b;\n")
        try await builder.checkout(base, clone: clone, into: src)
        XCTAssertEqual(try String(contentsOfFile: src + "/kernel/fork.c", encoding: .utf8), "int a;\n")
    }

    func testASeriesThatDoesNotApplyIsBadInputAndLeavesNothing() async throws {
        let (tree, _, series) = try await makeTree()
        let builder = KernelBuilder(cache: CacheDirectory(root: root + "/cache"), configDirectory: root)
        let key = KernelBuilder.treeKey(tree)
        let clone = try await builder.sharedClone(of: tree, key: key)
        let workDir = try builder.cache.directory("kernel-work", key)
        // On a tree that already has the change, the patch cannot apply.
        let tip = try await GitRepository(path: tree).resolve("HEAD@{1}")
        do {
            _ = try await builder.apply(series, onto: tip, clone: clone, workDir: workDir, key: "k1")
            XCTFail("applied a patch twice")
        } catch let error as HarnessError {
            XCTAssertEqual(error.kind, .badInput)
            XCTAssertTrue(error.reason.hasPrefix("patch 1/1 \"fork: add b\" does not apply: kernel/fork.c"), error.reason)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: workDir), [], "worktree or mbox left")
        let worktrees = try await GitRepository(path: clone).check(["worktree", "list"])
        XCTAssertFalse(worktrees.contains("/am-"), worktrees)
    }
}
