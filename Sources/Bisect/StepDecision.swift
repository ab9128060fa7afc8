import Classify
import Foundation
import RunModel

/// What one run says about the commit it ran, for the failure hunted.
public enum Observation: Sendable, Equatable {
    /// The hunted failure showed.
    case hit
    /// It did not; `other` names a different failure the run showed, which
    /// is reported but never makes the commit bad.
    case miss(other: String?)
    /// The commit cannot be tested at all: it does not build or boot.
    case untestable(String)
    /// The run says nothing about the failure hunted (an infrastructure
    /// ERROR, a workload that reported nothing, a different failure that
    /// stopped the workload before the end); run it again.
    case inconclusive(String)

    public static func of(_ run: StepRun, hunting hunted: FailureSignature) -> Observation {
        if run.status == .buildFail { return .untestable("does not build: \(run.reason)") }
        if hunted.matches(run) { return .hit }
        if run.end == .bootFailed || run.reason.hasPrefix("boot failure") || run.reason.hasPrefix("timeout in boot") {
            return .untestable("does not boot: \(run.reason)")
        }
        switch run.status {
        case .pass: return .miss(other: nil)
        case .fail where run.workloadCompleted == false:
            // It stopped the workload before the failure hunted could show:
            // says nothing about this commit, like an infrastructure error.
            return .inconclusive("a different failure stopped the workload: \(run.reason)")
        case .fail: return .miss(other: run.reason)
        case .skip: return .untestable("the workload cannot run: \(run.reason)")
        case .error, .miss, .buildFail: return .inconclusive("\(run.status.rawValue): \(run.reason)")
        }
    }
}

/// How a step is decided: how many runs a commit may get and how sure a
/// "good" must be before it is given.
public struct BisectPolicy: Codable, Sendable, Equatable {
    /// Runs per commit at most (a commit without the failure is re-run
    /// until `confidence` is reached or this many runs were made).
    public var maxRuns: Int
    /// Probability wanted that a commit called good really is good.
    public var confidence: Double
    /// Runs of the bad revision before bisecting, to estimate how often
    /// the failure shows on a commit that has it.
    public var reproduceRuns: Int
    /// Inconclusive runs (infrastructure errors) after which a commit is skipped.
    public var maxInconclusive: Int

    public init(maxRuns: Int = 4, confidence: Double = 0.95, reproduceRuns: Int = 3, maxInconclusive: Int = 2) {
        self.maxRuns = maxRuns
        self.confidence = confidence
        self.reproduceRuns = reproduceRuns
        self.maxInconclusive = maxInconclusive
    }
}

/// How often the hunted failure shows on commits known to have it, counted
/// over every run of such a commit (the bad revision and every commit decided
/// bad). The estimate is the posterior mean under a uniform prior,
/// (hits + 1) / (runs + 2): three hits in three runs give 0.8, not 1, so a
/// handful of lucky runs never makes a single clean run look conclusive.
public struct ReproductionRate: Codable, Sendable, Equatable {
    public var hits: Int
    public var runs: Int

    public init(hits: Int = 0, runs: Int = 0) {
        self.hits = hits
        self.runs = runs
    }

    public var estimate: Double { Double(hits + 1) / Double(runs + 2) }

    /// The chance that a commit with the failure would still show it in none
    /// of `clean` runs.
    public func missProbability(cleanRuns clean: Int) -> Double { pow(1 - estimate, Double(clean)) }
}

/// A commit's verdict in the hunted sense: `bad` shows the failure.
public enum Verdict: String, Codable, Sendable {
    case bad, good, skip
}

public struct Decision: Codable, Sendable, Equatable {
    public var verdict: Verdict
    /// Probability that the verdict is right, under the model above: a hit
    /// is certain (the failure's signature does not show on commits without
    /// it), a good is as sure as its clean runs make it.
    public var confidence: Double
    /// Why, in a few words: "3 of 3 runs clean", "does not build: ...".
    public var note: String
}

/// Decides a commit from its runs. The failure hunted is one-sided: a commit
/// without the bug never shows its signature, a commit with it shows it in
/// some fraction of runs. So one hit makes a commit bad, and a commit is good
/// only after enough clean runs that a bad commit would almost surely have
/// shown the failure in one of them.
public enum StepDecider {
    /// nil: run the commit again.
    public static func decide(_ observations: [Observation], rate: ReproductionRate,
                              policy: BisectPolicy) -> Decision? {
        var hits = 0, clean = 0, inconclusive = 0
        var others: [String] = []
        for observation in observations {
            switch observation {
            case .untestable(let why):
                return Decision(verdict: .skip, confidence: 1, note: why)
            case .hit: hits += 1
            case .miss(let other):
                clean += 1
                if let other, !others.contains(other) { others.append(other) }
            case .inconclusive: inconclusive += 1
            }
        }
        let runs = hits + clean
        if hits > 0 {
            let note = clean == 0 ? "failure in \(hits) of \(runs) run(s)"
                : "failure in \(hits) of \(runs) run(s): flaky"
            return Decision(verdict: .bad, confidence: 1, note: note)
        }
        let otherNote = others.isEmpty ? "" : "; other failure: " + others.joined(separator: "; ")
        if clean > 0 {
            let sure = 1 - rate.missProbability(cleanRuns: clean)
            if sure >= policy.confidence || clean + inconclusive >= policy.maxRuns {
                return Decision(verdict: .good, confidence: sure, note: "\(clean) of \(clean) run(s) without it" + otherNote)
            }
            return nil
        }
        if inconclusive >= policy.maxInconclusive || inconclusive >= policy.maxRuns {
            let last = observations.last.flatMap { if case .inconclusive(let why) = $0 { return why } else { return nil } }
            return Decision(verdict: .skip, confidence: 1, note: "no usable run: " + (last ?? "inconclusive"))
        }
        return nil
    }
}
