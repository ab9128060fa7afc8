import Foundation

/// One commit as the bisect decided it.
public struct StepSummary: Codable, Sendable, Equatable {
    public var commit: String
    public var subject: String
    public var verdict: Verdict
    public var confidence: Double
    public var note: String
    public var runs: Int
    /// Runs that showed the failure hunted, and runs that did not.
    public var hits: Int
    public var clean: Int
    public var runIDs: [String]
    public var timings: StepTimings
}

/// The answer of a bisect, and how it was reached.
public struct BisectReport: Codable, Sendable, Equatable {
    /// "regression" (first bad commit) or "fix" (first fixed commit).
    public var mode: String
    public var tree: String
    public var good: String
    public var bad: String
    public var goodName: String
    public var badName: String
    /// The normalised failure hunted, and one title it was taken from.
    public var hunted: String
    public var huntedExample: String
    /// The first bad (or fixed) commit; nil when skipped commits hide it.
    public var firstBad: String?
    public var subject: String?
    /// When only skipped commits are left: the commits it could be.
    public var candidates: [String]
    /// Commits git chose among, and ⌈log2(n + 1)⌉, the steps it needs without skips.
    public var rangeSize: Int
    public var expectedSteps: Int
    public var steps: [StepSummary]
    /// The --bad and --good revisions as checked before bisecting.
    public var ends: [StepSummary]
    /// The first bad commit and its parent(s), as decided.
    public var evidence: [StepSummary]
    public var reproduction: ReproductionRate
    /// Probability that no commit called good hid the failure.
    public var confidence: Double
    /// Failures other than the one hunted, per commit: reported, never decisive.
    public var otherFailures: [String]
    /// The bad revision with the first bad commit reverted (`--check-revert`).
    public var revert: StepSummary?
    /// `git bisect log`, replayable with `git bisect replay`.
    public var log: String
    public var stepTimings: StepTimings
    public var totalTimings: StepTimings

    public var regzbotLine: String? {
        guard let firstBad else { return nil }
        return mode == "fix" ? "#regzbot fix: \(firstBad.prefix(12))" : "#regzbot introduced: \(firstBad.prefix(12))"
    }

    public var text: String {
        var lines: [String] = []
        let what = mode == "fix" ? "first fixed commit" : "first bad commit"
        if let firstBad {
            lines.append("\(what): \(firstBad) \(subject ?? "")")
        } else {
            lines.append("\(what): unknown: only skipped commits are left; it is one of:")
            lines += candidates.map { "  \($0)" }
        }
        lines.append("failure hunted: \(hunted)" + (huntedExample.isEmpty ? "" : " (as in \"\(huntedExample)\")"))
        lines.append(String(format: "confidence: %.4f (the failure showed in %d of %d run(s) of commits that have it; estimated rate %.2f)",
                            confidence, reproduction.hits, reproduction.runs, reproduction.estimate))
        if !evidence.isEmpty {
            lines.append("evidence:")
            lines += evidence.map { "  " + Self.describe($0) }
        }
        lines.append("ends:")
        lines += ends.map { "  " + Self.describe($0) }
        lines.append("steps: \(steps.count) for \(rangeSize) commit(s) (\(expectedSteps) without skips or reruns)")
        for (index, step) in steps.enumerated() {
            lines.append(String(format: "  %2d ", index + 1) + Self.describe(step))
            lines.append("     " + Self.describe(step.timings))
        }
        if let revert {
            let outcome = revert.verdict == .good ? "the failure goes away" : revert.verdict == .bad ? "the failure stays" : "could not be tested"
            lines.append("revert check: \(revert.subject): \(outcome) (\(revert.note))")
        }
        if !otherFailures.isEmpty {
            lines.append("other failures seen (not the one hunted, not decisive):")
            lines += otherFailures.map { "  \($0)" }
        }
        lines.append("time: bisect steps " + Self.describe(stepTimings))
        lines.append("time: everything   " + Self.describe(totalTimings))
        lines.append("git bisect log (replay with `git bisect replay <file>`):")
        lines += log.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }
        if lines.last == "  " { lines.removeLast() }
        if let regzbotLine { lines.append(regzbotLine) }
        return lines.joined(separator: "\n") + "\n"
    }

    static func describe(_ step: StepSummary) -> String {
        String(format: "%@ %@ %@: %@ [runs: %@]", step.verdict.rawValue.padding(toLength: 4, withPad: " ", startingAt: 0),
               String(step.commit.prefix(12)), step.subject, step.note, step.runIDs.joined(separator: " "))
    }

    static func describe(_ t: StepTimings) -> String {
        String(format: "wall %.1f s = build %.1f + boot %.1f + workload %.1f + harness %.1f", t.wall, t.build, t.boot,
               t.workload, t.overhead)
    }
}
