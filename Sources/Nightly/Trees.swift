import Foundation
import Support

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
        let remotes = try await Command.check("git", ["-C", tree, "remote"], kind: .badInput, input: tree)
            .stdout.split(whereSeparator: \.isNewline).map(String.init)
        guard !remotes.isEmpty else { return [] }
        try await Command.check("git", ["-C", tree, "fetch", "--quiet", "--prune", "--multiple"] + remotes,
                                input: "\(tree): git fetch \(remotes.joined(separator: " "))")
        return remotes
    }

    /// The commit `revision` names in `tree` now. The revision comes from a
    /// config file: after `--end-of-options` git never reads it as an option
    /// (`--output=<file>` would write a file).
    public static func resolve(_ tree: String, _ revision: String) async throws -> TreeHead {
        let result = try await Command.run("git", ["-C", tree, "log", "-1", "--format=%H%n%s", "--end-of-options",
                                                   revision + "^{commit}", "--"])
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard result.succeeded, lines.count >= 2, lines[0].count == 40 else {
            throw HarnessError.badInput("\(tree)@\(revision)", "not a commit in that tree (\(result.lastErrorLine))")
        }
        return TreeHead(tree: tree, revision: revision, commit: lines[0], subject: lines[1])
    }
}
