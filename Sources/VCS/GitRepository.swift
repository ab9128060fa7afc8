import Foundation
import Support

/// A git repository (a checkout, a bare clone, or a worktree of one) and the
/// git operations kharness needs: resolving revisions, shared clones,
/// worktrees, `am`, refs, fetching, and the raw command the bisect drives.
///
/// Every git process kharness starts is started here, so the rules about git
/// live in one place: revisions from the user come after `--end-of-options`
/// (a config file's `--output=x` is a revision, never an option), a git that
/// cannot be started is an infrastructure fault, an unknown revision or a path
/// that is no repository is the user's input (``GitError``).
public struct GitRepository: Sendable, Hashable {
    /// The repository's directory, as given (git's `-C`).
    public var path: String
    /// The git to run: a name looked up in PATH or an absolute path (tests
    /// point it at nothing to see a missing git).
    public var executable: String

    public init(path: String, executable: String = "git") {
        self.path = path
        self.executable = executable
    }

    /// The repository at `path`, after checking that it is one.
    /// - Throws: ``GitError/notARepository(path:)`` when `path` is no directory
    ///   or git finds no repository there (or above it).
    public static func open(_ path: String, executable: String = "git") async throws -> GitRepository {
        let repository = GitRepository(path: path, executable: executable)
        guard Files.isDirectory(path), try await repository.run(["rev-parse", "--git-dir"]).succeeded else {
            throw GitError.notARepository(path: path)
        }
        return repository
    }

    // MARK: Running git

    /// `git -C <path> <arguments>`, whatever its exit status.
    /// - Throws: ``GitError/unavailable(executable:reason:)`` when git cannot be started.
    public func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> CommandResult {
        do {
            return try await Command.run(executable, ["-C", path] + arguments, environment: environment)
        } catch {
            throw GitError.unavailable(executable: executable, reason: HarnessError(error).reason)
        }
    }

    /// ``run(_:environment:)`` that must succeed; returns stdout.
    /// - Throws: ``GitError/failed(command:repository:reason:)`` with git's last line of complaint.
    @discardableResult
    public func check(_ arguments: [String], environment: [String: String] = [:]) async throws -> String {
        let result = try await run(arguments, environment: environment)
        guard result.succeeded else {
            throw GitError.failed(command: (["git"] + arguments.prefix(3)).joined(separator: " "),
                                  repository: path, reason: result.lastErrorLine)
        }
        return result.stdout
    }

    // MARK: Revisions

    /// The commit `revision` names (a tag, a branch, an id, `HEAD~3`).
    /// - Throws: ``GitError/unknownRevision(_:repository:detail:)`` when it names none.
    public func resolve(_ revision: String) async throws -> String {
        let result = try await run(["rev-parse", "--verify", "--quiet", "--end-of-options", revision + "^{commit}"])
        guard result.succeeded else { throw GitError.unknownRevision(revision, repository: path) }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The commit `revision` names and its subject line.
    /// - Throws: ``GitError/unknownRevision(_:repository:detail:)`` with git's complaint.
    public func headline(_ revision: String) async throws -> (commit: String, subject: String) {
        let result = try await run(["log", "-1", "--format=%H%n%s", "--end-of-options", revision + "^{commit}", "--"])
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard result.succeeded, lines.count >= 2, lines[0].count == 40 else {
            throw GitError.unknownRevision(revision, repository: path, detail: result.lastErrorLine)
        }
        return (lines[0], lines[1])
    }

    /// Whether the repository has `commit` (a series commit lives only in the
    /// clone that applied it).
    public func hasCommit(_ commit: String) async throws -> Bool {
        try await run(["cat-file", "-e", "--end-of-options", commit + "^{commit}"]).succeeded
    }

    /// Whether `ancestor` is an ancestor of (or equal to) `descendant`.
    public func isAncestor(_ ancestor: String, of descendant: String) async throws -> Bool {
        try await run(["merge-base", "--is-ancestor", ancestor, descendant]).succeeded
    }

    /// The committer date of `commit`, ISO 8601 (`%cI`).
    public func committerDate(_ commit: String) async throws -> String {
        try await check(["show", "-s", "--format=%cI", commit]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Points `ref` at `commit`, so the commit survives pruning.
    public func updateRef(_ ref: String, to commit: String) async throws {
        try await check(["update-ref", ref, commit])
    }

    // MARK: Remotes

    /// The names of the repository's remotes (none for a local work tree).
    public func remotes() async throws -> [String] {
        try await check(["remote"]).split(whereSeparator: \.isNewline).map(String.init)
    }

    /// Fetches `remotes`, pruning what they dropped.
    public func fetch(_ remotes: [String]) async throws {
        let result = try await run(["fetch", "--quiet", "--prune", "--multiple"] + remotes)
        guard result.succeeded else {
            throw GitError.failed(command: "git fetch " + remotes.joined(separator: " "), repository: path,
                                  reason: result.lastErrorLine)
        }
    }

    // MARK: Clones

    /// A bare clone of `source` at `destination` that shares its object store
    /// (`--shared`): kharness's own place for commits, refs, worktrees and
    /// bisect state, while the user's repository stays untouched. Made on first
    /// use and reused after.
    ///
    /// Several processes may want the same clone at once (matrix cells, a
    /// bisect and a build): each clones into its own temporary directory and
    /// renames it into place; the one that loses the race finds the winner's
    /// clone there and uses it. Temporaries of processes killed mid-clone are
    /// removed first.
    /// - Throws: ``GitError/cloneFailed(destination:reason:)``; a `source` that is
    ///   not a repository is ``GitError/notARepository(path:)``.
    public static func sharedClone(of source: String, at destination: String,
                                   executable: String = "git") async throws -> GitRepository {
        let clone = GitRepository(path: destination, executable: executable)
        if Files.exists(destination + "/HEAD") { return clone }
        let url = URL(fileURLWithPath: destination)
        let parent = url.deletingLastPathComponent().path
        let prefix = ".tmp-\(url.lastPathComponent)-"
        try Files.createDirectory(parent)
        Files.reclaimStale(in: parent, prefix: prefix, pidField: 0)
        let temporary = parent + "/" + prefix + "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        let made = try await GitRepository(path: parent, executable: executable)
            .run(["clone", "--quiet", "--bare", "--shared", "--no-tags", "--", source, temporary])
        guard made.succeeded else {
            guard Files.isDirectory(source), try await GitRepository(path: source, executable: executable)
                .run(["rev-parse", "--git-dir"]).succeeded else {
                throw GitError.notARepository(path: source)
            }
            throw GitError.cloneFailed(destination: destination, reason: made.lastErrorLine)
        }
        // Never collected by itself: worktrees and bisect refs point into it
        // from outside what gc can see while they are in use.
        try await GitRepository(path: temporary, executable: executable).check(["config", "gc.auto", "0"])
        if rename(temporary, destination) != 0 {
            let reason = HarnessError.text(errno: errno)
            // Lost the race: another process renamed its clone into place first.
            if Files.exists(destination + "/HEAD") { return clone }
            throw GitError.cloneFailed(destination: destination, reason: reason)
        }
        return clone
    }

    // MARK: Worktrees

    /// Adds a detached worktree at `directory` checked out at `commit`
    /// (`checkout: false` leaves it empty, for a sparse checkout). `force`
    /// reuses a directory registered by a worktree since removed.
    /// - Returns: the worktree, itself a repository.
    @discardableResult
    public func addWorktree(at directory: String, commit: String, checkout: Bool = true,
                            force: Bool = false) async throws -> GitRepository {
        var arguments = ["worktree", "add", "--quiet"]
        if !checkout { arguments.append("--no-checkout") }
        if force { arguments.append("--force") }
        let result = try await run(arguments + ["--detach", directory, commit])
        guard result.succeeded else {
            throw GitError.failed(command: "git worktree add", repository: directory, reason: result.lastErrorLine)
        }
        return GitRepository(path: directory, executable: executable)
    }

    /// Removes the worktree at `directory`, registration and files, whatever
    /// state it is in; never fails.
    public func removeWorktree(at directory: String) async {
        _ = try? await run(["worktree", "remove", "--force", directory])
        try? FileManager.default.removeItem(atPath: directory)
        await pruneWorktrees()
    }

    /// Forgets worktrees whose directories are gone (removed by hand, or by
    /// the reclaiming of a killed process's leftovers); never fails.
    public func pruneWorktrees() async {
        _ = try? await run(["worktree", "prune"])
    }

    /// In a worktree: moves it to `commit`, rewriting only the files that differ.
    /// - Returns: false when git could not (a worktree whose registration is gone).
    public func checkoutDetached(_ commit: String) async throws -> Bool {
        try await run(["checkout", "--quiet", "--force", "--detach", commit]).succeeded
    }

    /// In a worktree: checks out only `patterns` (gitignore syntax, `--no-cone`).
    public func sparseCheckout(_ patterns: [String]) async throws {
        try await check(["sparse-checkout", "set", "--no-cone"] + patterns)
    }

    /// In a worktree: `reset --hard` to `commit`.
    public func resetHard(to commit: String) async throws {
        try await check(["reset", "--quiet", "--hard", commit])
    }

    /// In a worktree: `git am` of `mbox`, the result as git left it (the caller
    /// explains a patch that does not apply); an unfinished am is aborted.
    public func am(_ mbox: String, environment: [String: String]) async throws -> CommandResult {
        let result = try await run(["am", "--quiet", "--no-3way", mbox], environment: environment)
        if !result.succeeded { _ = try? await run(["am", "--abort"]) }
        return result
    }

    /// The commit `HEAD` is at.
    public func head() async throws -> String {
        try await check(["rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: Contents

    /// `git grep -n -E pattern -- pathspecs` in the work tree: the matching
    /// lines as `file:line:text`, none when nothing matches.
    public func grep(_ pattern: String, in pathspecs: [String]) async throws -> [String] {
        try await run(["grep", "-n", "-E", "-e", pattern, "--"] + pathspecs)
            .stdout.split(separator: "\n").map(String.init)
    }

    /// `sha256sum`'s line for the entries of `commit`'s tree whose `ls-tree`
    /// line matches the extended regular expression `pattern` (modes, blob ids
    /// and paths, so it changes when one of those files does). grep runs in a
    /// pipe: a kernel's 80k entries are slow to filter in Swift.
    public func digestOfTreeEntries(at commit: String, matching pattern: String) async throws -> String {
        try await Command.check(
            "sh", ["-c", "\"$1\" -C \"$2\" ls-tree -r \"$3\" | grep -E \"$4\" | sha256sum",
                   "sh", executable, path, commit, pattern]).stdout
    }
}
