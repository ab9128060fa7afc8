import Foundation
import Support
import VCS

/// A tree's revision as the nightly tested it: the name the matrix used
/// (`origin/master`) and the commit it pointed at that night, so the next
/// night compares and bisects between commits, not between moving names.
public struct TreeHead: Codable, Sendable, Equatable {
    public var tree: String
    public var revision: String
    public var commit: String
    public var subject: String

    public init(tree: String, revision: String, commit: String, subject: String) {
        self.tree = tree
        self.revision = revision
        self.commit = commit
        self.subject = subject
    }
}

/// Brings the nightly's kernel trees up to date and pins their heads.
public enum Trees {
    /// Fetches every remote of `tree` when it has any; a tree without
    /// remotes (a local work tree) is tested as it is.
    /// - Returns: the remotes fetched.
    @discardableResult
    public static func fetch(_ tree: String) async throws -> [String] {
        guard Files.isDirectory(tree) else { throw HarnessError.badInput(tree, "kernel tree does not exist") }
        let repository = GitRepository(path: tree)
        let remotes: [String]
        do {
            remotes = try await repository.remotes()
        } catch GitError.failed(_, _, let reason) {
            // `git remote` fails only where there is no repository: the config's tree.
            throw HarnessError.badInput(tree, reason)
        }
        guard !remotes.isEmpty else { return [] }
        try await repository.fetch(remotes)
        return remotes
    }

    /// The commit `revision` names in `tree` now. The revision comes from a
    /// config file: after `--end-of-options` git never reads it as an option
    /// (`--output=<file>` would write a file).
    public static func resolve(_ tree: String, _ revision: String) async throws -> TreeHead {
        do {
            let head = try await GitRepository(path: tree).headline(revision)
            return TreeHead(tree: tree, revision: revision, commit: head.commit, subject: head.subject)
        } catch GitError.unknownRevision(_, _, let detail) {
            throw HarnessError.badInput("\(tree)@\(revision)", "not a commit in that tree (\(detail))")
        }
    }
}
