import Foundation
import Support
import VCS

/// `git bisect` in a bare `--shared` clone of the user's tree kept in the
/// cache: the user's checkout, index and refs are never touched, and no
/// working tree is needed because every step is built through the kernel
/// builder's own worktree. In a bare repository `git bisect` implies
/// `--no-checkout` and names the commit to test in `BISECT_HEAD`.
struct GitBisect {
    /// Git's terms: `bad`/`good` for a regression, `broken`/`fixed` when
    /// bisecting a fix (the old revision fails, the new one does not).
    struct Terms: Codable, Equatable {
        var old: String
        var new: String
        static let regression = Terms(old: "good", new: "bad")
        static let fix = Terms(old: "broken", new: "fixed")
    }

    enum Step: Equatable {
        case test(String)
        case found(String)
        /// Only skipped commits are left: the first bad commit is one of these.
        case ambiguous([String])
    }

    var repository: GitRepository
    var terms: Terms

    /// The shared clone for `tree` under `directory`, created on first use; the
    /// same clone (and race handling) as the kernel builder's.
    static func clone(tree: String, into directory: String) async throws -> GitRepository {
        try await GitRepository.sharedClone(of: tree, at: directory + "/repo.git")
    }

    func git(_ arguments: [String]) async throws -> CommandResult {
        try await repository.run(arguments)
    }

    func checked(_ arguments: [String]) async throws -> String {
        try await repository.check(arguments)
    }

    /// Starts over: any earlier bisect state in the clone is dropped. `bad`
    /// is the revision that shows the failure, `good` the one that does not;
    /// in fix mode they are git's `broken` (old) and `fixed` (new).
    func start(bad: String, good: String) async throws -> Step {
        _ = try await git(["bisect", "reset"])
        var arguments = ["bisect", "start"]
        let (new, old): (String, String)
        if terms == .regression {
            (new, old) = (bad, good)
        } else {
            arguments += ["--term-old=\(terms.old)", "--term-new=\(terms.new)"]
            (new, old) = (good, bad)
        }
        let result = try await git(arguments + [new, old])
        return try await next(after: result)
    }

    /// Marks `commit` with the verdict (in the hunted sense) and says what comes next.
    func mark(_ commit: String, _ verdict: Verdict) async throws -> Step {
        let term: String
        switch verdict {
        case .skip: term = "skip"
        case .bad: term = terms == .regression ? "bad" : terms.old
        case .good: term = terms == .regression ? "good" : terms.new
        }
        return try await next(after: try await git(["bisect", term, commit]))
    }

    private func next(after result: CommandResult) async throws -> Step {
        let output = result.stdout + "\n" + result.stderr
        let lines = output.split(separator: "\n").map(String.init)
        for line in lines {
            let words = line.split(separator: " ")
            if words.count >= 5, words[0].count == 40, words[0].allSatisfy(\.isHexDigit),
               line.hasSuffix(" is the first \(terms.new) commit") {
                return .found(String(words[0]))
            }
        }
        if output.contains("only 'skip'ped commits left to test") {
            let candidates = lines.compactMap { line -> String? in
                let word = line.split(separator: " ").first.map(String.init) ?? ""
                return word.count == 40 && word.allSatisfy(\.isHexDigit) ? word : nil
            }
            return .ambiguous(candidates)
        }
        guard result.succeeded else {
            throw HarnessError.infrastructure("git bisect", result.lastErrorLine)
        }
        let head = try await checked(["rev-parse", "--verify", "BISECT_HEAD"])
        return .test(head.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func log() async throws -> String { try await checked(["bisect", "log"]) }

    func subject(_ commit: String) async -> String {
        let result = try? await git(["log", "-1", "--format=%s", commit])
        return result?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    /// Number of commits git would have to choose among: those reachable
    /// from `bad` (or `good` in fix mode) and not from the other end.
    func rangeSize(bad: String, good: String) async throws -> Int {
        let (new, old) = terms == .regression ? (bad, good) : (good, bad)
        let count = try await checked(["rev-list", "--count", new, "^" + old])
        return Int(count.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// The patch that undoes `commit`, as `git am` takes it.
    func revertPatch(_ commit: String) async throws -> String {
        let subject = await subject(commit)
        let diff = try await checked(["diff", "--binary", "--full-index", commit, commit + "^"])
        guard !diff.isEmpty else {
            throw HarnessError.infrastructure(commit, "the commit changes nothing to revert")
        }
        return """
            From \(commit) Mon Sep 17 00:00:00 2001
            From: kharness <kharness@example.invalid>
            Date: Thu, 1 Jan 1970 00:00:00 +0000
            Subject: [PATCH] Revert "\(subject)"

            This reverts commit \(commit).
            ---

            """ + diff
    }
}
