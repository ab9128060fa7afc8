import Foundation
import Support
import XCTest

@testable import VCS

/// GitRepository against real repositories made in a temporary directory:
/// what is the user's input (a path, a revision) and what is the machine's
/// (git missing, a clone that cannot be made), and the shared clone that
/// several processes may race to make.
final class GitRepositoryTests: XCTestCase {
    var root = ""

    override func setUp() async throws {
        root = NSTemporaryDirectory() + "kharness-git-\(UUID().uuidString)"
        try Files.createDirectory(root)
    }

    override func tearDown() async throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    static let identity = ["-c", "user.name=k", "-c", "user.email=k@example.invalid"]

    /// A repository at `root/<name>` with one commit per subject, each adding a file.
    func makeRepository(_ name: String = "tree", commits: [String] = ["first", "second"]) async throws -> GitRepository {
        let path = root + "/" + name
        try Files.createDirectory(path)
        let repository = GitRepository(path: path)
        try await repository.check(["init", "--quiet", "--initial-branch=master"])
        for (index, subject) in commits.enumerated() {
            try Files.writeAtomically("\(subject)\n", to: path + "/file\(index)")
            try await repository.check(["add", "."])
            try await repository.check(Self.identity + ["commit", "--quiet", "-m", subject])
        }
        return repository
    }

    /// A git that cannot be started.
    static let missingGit = "/nonexistent/bin/git"

    // MARK: Bad input

    func testAPathWithoutARepositoryIsBadInput() async throws {
        for path in [root + "/nonexistent", root] {
            do {
                _ = try await GitRepository.open(path)
                XCTFail("\(path) opened as a repository")
            } catch let error as GitError {
                XCTAssertEqual(error, .notARepository(path: path))
                XCTAssertEqual(error.kind, .badInput)
                XCTAssertEqual(HarnessError(error).description, "\(path): not a git repository")
            }
        }
    }

    func testRevisionsResolveToCommitsAndUnknownOnesAreBadInput() async throws {
        let repository = try await makeRepository()
        let head = try await repository.resolve("HEAD")
        XCTAssertEqual(head.count, 40)
        let v1 = try await repository.resolve("master")
        XCTAssertEqual(v1, head)
        let first = try await repository.resolve("HEAD~1")
        XCTAssertNotEqual(first, head)
        let v2 = try await repository.isAncestor(first, of: head)
        XCTAssertTrue(v2)
        let v3 = try await repository.isAncestor(head, of: first)
        XCTAssertFalse(v3)
        let v4 = try await repository.hasCommit(head)
        XCTAssertTrue(v4)
        let v5 = try await repository.hasCommit(String(repeating: "0", count: 40))
        XCTAssertFalse(v5)
        let headline = try await repository.headline("HEAD~1")
        XCTAssertEqual(headline.commit, first)
        XCTAssertEqual(headline.subject, "first")

        do {
            _ = try await repository.resolve("no-such-revision")
            XCTFail("resolved a revision that does not exist")
        } catch let error as GitError {
            XCTAssertEqual(error, .unknownRevision("no-such-revision", repository: repository.path))
            XCTAssertEqual(error.kind, .badInput)
        }
        do {
            _ = try await repository.headline("no-such-revision")
            XCTFail("a headline of a revision that does not exist")
        } catch GitError.unknownRevision(let revision, _, let detail) {
            XCTAssertEqual(revision, "no-such-revision")
            XCTAssertFalse(detail.isEmpty, "git's complaint is kept")
        }
    }

    /// A revision from a config file is a revision, never an option that writes a file.
    func testARevisionThatLooksLikeAnOptionIsNotOne() async throws {
        let repository = try await makeRepository()
        let written = root + "/written-by-git"
        for attempt in [{ _ = try await repository.resolve("--output=\(written)") },
                        { _ = try await repository.headline("--output=\(written)") }] {
            do {
                try await attempt()
                XCTFail("resolved an option")
            } catch let error as GitError {
                XCTAssertEqual(error.kind, .badInput)
            }
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: root)
        XCTAssertFalse(files.contains { $0.hasPrefix("written-by-git") }, "git took the revision for an option: \(files)")
    }

    // MARK: Infrastructure

    func testAMissingGitIsInfrastructureNotBadInput() async throws {
        let repository = try await makeRepository()
        let broken = GitRepository(path: repository.path, executable: Self.missingGit)
        for attempt in [{ _ = try await broken.resolve("HEAD") },
                        { _ = try await GitRepository.open(repository.path, executable: Self.missingGit) },
                        { _ = try await GitRepository.sharedClone(of: repository.path, at: self.root + "/c.git",
                                                                  executable: Self.missingGit) }] {
            do {
                try await attempt()
                XCTFail("ran a git that does not exist")
            } catch let error as GitError {
                guard case .unavailable(let executable, let reason) = error else {
                    return XCTFail("not .unavailable: \(error)")
                }
                XCTAssertEqual(executable, Self.missingGit)
                XCTAssertFalse(reason.isEmpty)
                XCTAssertEqual(error.kind, .infrastructure)
                XCTAssertFalse(HarnessError(error).description.contains("\n"), "\(error)")
            }
        }
    }

    func testACloneThatCannotBeMadeIsInfrastructureAndAMissingSourceIsBadInput() async throws {
        let repository = try await makeRepository()
        // The clone's directory is a regular file: git cannot make its temporary beside it.
        let blocked = root + "/blocked"
        try Files.writeAtomically("not a directory\n", to: blocked)
        do {
            _ = try await GitRepository.sharedClone(of: repository.path, at: blocked + "/repo.git")
            XCTFail("cloned under a file")
        } catch let error as HarnessError {
            XCTAssertEqual(error.kind, .infrastructure)
            XCTAssertEqual(error.input, blocked)
        } catch let error as GitError {
            XCTAssertEqual(error.kind, .infrastructure, "\(error)")
        }
        do {
            _ = try await GitRepository.sharedClone(of: root + "/nonexistent", at: root + "/c.git")
            XCTFail("cloned a repository that does not exist")
        } catch let error as GitError {
            XCTAssertEqual(error, .notARepository(path: root + "/nonexistent"))
            XCTAssertEqual(error.kind, .badInput)
        }
        XCTAssertEqual(try temporaries(in: root), [])
    }

    func testAFailingCommandNamesTheRepositoryAndGitsComplaint() async throws {
        let repository = try await makeRepository()
        do {
            try await repository.check(["bisect", "log"])
            XCTFail("git bisect log without a bisect succeeded")
        } catch let error as GitError {
            guard case .failed(let command, let path, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(command, "git bisect log")
            XCTAssertEqual(path, repository.path)
            XCTAssertFalse(reason.isEmpty)
            XCTAssertEqual(error.kind, .infrastructure)
        }
    }

    // MARK: Shared clones

    func testASharedCloneIsBareSharedUncollectedAndReused() async throws {
        let repository = try await makeRepository()
        let head = try await repository.resolve("HEAD")
        let destination = root + "/repos/tree.git"
        let clone = try await GitRepository.sharedClone(of: repository.path, at: destination)
        XCTAssertEqual(clone.path, destination)
        let v6 = try await clone.check(["rev-parse", "--is-bare-repository"])
        XCTAssertEqual(v6, "true\n")
        let v7 = try await clone.check(["config", "gc.auto"])
        XCTAssertEqual(v7, "0\n")
        XCTAssertTrue(Files.exists(destination + "/objects/info/alternates"), "not --shared")
        let v8 = try await clone.hasCommit(head)
        XCTAssertTrue(v8)
        // Reused as it is: a commit made in the clone survives the second call.
        try await clone.updateRef("refs/kharness/mark", to: head)
        let again = try await GitRepository.sharedClone(of: repository.path, at: destination)
        let v9 = try await again.resolve("refs/kharness/mark")
        XCTAssertEqual(v9, head)
        XCTAssertEqual(try temporaries(in: root + "/repos"), [])
    }

    /// Another process renames its clone into place while this one is cloning:
    /// this one finds the winner's clone, uses it and leaves nothing behind. The
    /// other process is a git wrapper that, after the real clone into the
    /// temporary, makes the destination first.
    func testTheLoserOfARaceUsesTheWinnersClone() async throws {
        let repository = try await makeRepository()
        let destination = root + "/repos/tree.git"
        let winner = root + "/winner-git"
        try Files.writeAtomically("""
            #!/bin/sh
            git "$@" || exit
            if [ "$3" = clone ] && [ ! -e '\(destination)' ]; then
                for last; do :; done
                cp -a "$last" '\(destination)' && touch '\(destination)/won'
            fi
            """, to: winner)
        chmod(winner, 0o755)
        let clone = try await GitRepository.sharedClone(of: repository.path, at: destination, executable: winner)
        XCTAssertEqual(clone.path, destination)
        XCTAssertTrue(Files.exists(destination + "/won"), "the winner's clone was replaced")
        let v10 = try await clone.resolve("HEAD")
        let v11 = try await repository.resolve("HEAD")
        XCTAssertEqual(v10, v11)
        XCTAssertEqual(try temporaries(in: root + "/repos"), [])
    }

    /// Several at once, for real: all get the one clone, none fails.
    func testConcurrentClonesAllSucceed() async throws {
        let repository = try await makeRepository()
        let destination = root + "/repos/tree.git"
        let paths = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<6 {
                group.addTask { try await GitRepository.sharedClone(of: repository.path, at: destination).path }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(Set(paths), [destination])
        XCTAssertEqual(try temporaries(in: root + "/repos"), [])
    }

    func testTemporariesOfKilledClonesAreReclaimed() async throws {
        let repository = try await makeRepository()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/true")
        try process.run()
        process.waitUntilExit()
        let stale = root + "/repos/.tmp-tree.git-\(process.processIdentifier)-1"
        try Files.createDirectory(stale)
        _ = try await GitRepository.sharedClone(of: repository.path, at: root + "/repos/tree.git")
        XCTAssertFalse(Files.exists(stale))
    }

    /// Clone temporaries left in `directory`.
    func temporaries(in directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix(".tmp-") }
    }

    // MARK: Worktrees and am

    func testAPatchIsAppliedInASparseWorktreeAndTheWorktreeRemoved() async throws {
        let repository = try await makeRepository()
        let base = try await repository.resolve("HEAD~1")
        // The patch: what the second commit did, as format-patch writes it.
        let patch = try await repository.check(["format-patch", "--stdout", "-1", "HEAD"])
        let mbox = root + "/series.mbox"
        try Files.writeAtomically(patch, to: mbox)
        let clone = try await GitRepository.sharedClone(of: repository.path, at: root + "/repos/tree.git")
        let directory = root + "/am"
        let worktree = try await clone.addWorktree(at: directory, commit: base, checkout: false)
        try await worktree.sparseCheckout(["/file1"])
        try await worktree.resetHard(to: base)
        let environment = ["GIT_COMMITTER_NAME": "kharness", "GIT_COMMITTER_EMAIL": "kharness@example.invalid",
                           "GIT_COMMITTER_DATE": try await clone.committerDate(base)]
        let am = try await worktree.am(mbox, environment: environment)
        XCTAssertTrue(am.succeeded, am.stderr)
        let head = try await worktree.head()
        let v12 = try await clone.headline(head).subject
        XCTAssertEqual(v12, "second")
        try await clone.updateRef("refs/kharness/test", to: head)
        await clone.removeWorktree(at: directory)
        XCTAssertFalse(Files.exists(directory))
        let v13 = try await clone.check(["worktree", "list"]).contains(directory)
        XCTAssertFalse(v13)
        let v14 = try await clone.hasCommit(head)
        XCTAssertTrue(v14, "the ref keeps the applied commit")

        // The same patch again on the tip: it cannot apply, and the am is aborted.
        let tip = try await clone.addWorktree(at: directory, commit: try await clone.resolve("HEAD"))
        let failed = try await tip.am(mbox, environment: environment)
        XCTAssertFalse(failed.succeeded)
        var rebaseApply = try await tip.check(["rev-parse", "--git-path", "rebase-apply"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if !rebaseApply.hasPrefix("/") { rebaseApply = tip.path + "/" + rebaseApply }
        XCTAssertFalse(Files.exists(rebaseApply), "am was left unfinished")
        await clone.removeWorktree(at: directory)
    }

    func testAWorktreeWhoseRegistrationIsGoneIsRecreated() async throws {
        let repository = try await makeRepository()
        let clone = try await GitRepository.sharedClone(of: repository.path, at: root + "/repos/tree.git")
        let source = root + "/src"
        let worktree = try await clone.addWorktree(at: source, commit: "HEAD~1")
        let v16 = try await worktree.checkoutDetached(try await clone.resolve("HEAD"))
        XCTAssertTrue(v16)
        XCTAssertTrue(Files.exists(source + "/file1"))
        // What a moved cache looks like: the worktree's metadata is gone from the clone.
        try FileManager.default.removeItem(atPath: clone.path + "/worktrees")
        let v17 = try await worktree.checkoutDetached("HEAD~1")
        XCTAssertFalse(v17)
        try FileManager.default.removeItem(atPath: source)
        await clone.pruneWorktrees()
        try await clone.addWorktree(at: source, commit: "HEAD~1", force: true)
        XCTAssertFalse(Files.exists(source + "/file1"))
    }

    // MARK: Remotes and contents

    func testRemotesAreFetched() async throws {
        let upstream = try await makeRepository("upstream")
        let local = GitRepository(path: root + "/local")
        try await GitRepository(path: root).check(["clone", "--quiet", upstream.path, local.path])
        let v18 = try await local.remotes()
        XCTAssertEqual(v18, ["origin"])
        let v19 = try await makeRepository("alone", commits: ["only"]).remotes()
        XCTAssertEqual(v19, [])
        try Files.writeAtomically("third\n", to: upstream.path + "/file2")
        try await upstream.check(["add", "."])
        try await upstream.check(Self.identity + ["commit", "--quiet", "-m", "third"])
        try await local.fetch(["origin"])
        let v20 = try await local.headline("origin/master").subject
        XCTAssertEqual(v20, "third")
        do {
            try await local.fetch(["no-such-remote"])
            XCTFail("fetched a remote that does not exist")
        } catch let error as GitError {
            XCTAssertEqual(error.input, "\(local.path): git fetch no-such-remote")
            XCTAssertEqual(error.kind, .infrastructure)
        }
    }

    func testGrepAndTheDigestOfMatchingTreeEntries() async throws {
        let repository = try await makeRepository(commits: [])
        try Files.createDirectory(repository.path + "/drivers")
        try Files.writeAtomically("config FOO\n\tbool \"foo\"\n", to: repository.path + "/drivers/Kconfig")
        try Files.writeAtomically("unrelated\n", to: repository.path + "/README")
        try await repository.check(["add", "."])
        try await repository.check(Self.identity + ["commit", "--quiet", "-m", "one"])
        let hits = try await repository.grep("^config[[:space:]]+FOO$", in: ["Kconfig*", "*/Kconfig*"])
        XCTAssertEqual(hits, ["drivers/Kconfig:1:config FOO"])
        let v21 = try await repository.grep("^config BAR$", in: ["*/Kconfig*"])
        XCTAssertEqual(v21, [])

        let pattern = "/?Kconfig[^/]*$"
        let first = try await repository.digestOfTreeEntries(at: "HEAD", matching: pattern)
        try Files.writeAtomically("changed\n", to: repository.path + "/README")
        try await repository.check(Self.identity + ["commit", "--quiet", "-am", "readme"])
        let v22 = try await repository.digestOfTreeEntries(at: "HEAD", matching: pattern)
        XCTAssertEqual(v22, first,
                       "a file that does not match changed the digest")
        try Files.writeAtomically("config FOO\n\ttristate \"foo\"\n", to: repository.path + "/drivers/Kconfig")
        try await repository.check(Self.identity + ["commit", "--quiet", "-am", "kconfig"])
        let v23 = try await repository.digestOfTreeEntries(at: "HEAD", matching: pattern)
        XCTAssertNotEqual(v23, first)
    }
}
