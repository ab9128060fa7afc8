import Foundation
import Support
import VCS

/// Runs one commit through the harness. The real one builds and boots it
/// (`HarnessStepRunner`); unit tests of the decision logic give a model.
public protocol StepRunner: Sendable {
    /// `extraPatch`: a patch applied after the user's series (the revert check).
    func run(commit: String, extraPatch: String?) async throws -> StepRun
}

/// The bisect was stopped by SIGINT/SIGTERM during a run; the state is saved
/// and the same command (or `--resume`) continues.
public struct BisectInterrupted: Error, CustomStringConvertible {
    public var signal: String
    public var description: String { "bisect interrupted by \(signal); run the same command or --resume to continue" }
}

/// Drives `git bisect` over a tree: verifies the two ends, then asks git for
/// a commit, decides it from as many runs as `StepDecider` wants, marks it,
/// and repeats until git names the first bad (or fixed) commit.
public final class BisectDriver {
    public let parameters: BisectParameters
    public let directory: String
    private let runner: StepRunner
    private let events: @Sendable (String) -> Void
    private var state: BisectState
    private var git: GitBisect!
    /// Held for the whole bisect, so Ctrl-C between runs (git, bookkeeping)
    /// stops it as cleanly as Ctrl-C during one.
    private var signals: SignalWatch?

    /// `directory` holds the state, git's clone and the lock
    /// (`BisectState.directory(cache:tree:)` for the real thing).
    /// An unfinished bisect of other parameters there is refused unless
    /// `restart`; a finished one is replaced.
    public init(parameters: BisectParameters, directory: String, runner: StepRunner, restart: Bool = false,
                events: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.parameters = parameters
        self.directory = directory
        self.runner = runner
        self.events = events
        if !restart, let existing = try BisectState.load(from: directory) {
            if existing.parameters == parameters {
                state = existing
                return
            }
            if existing.report == nil {
                throw HarnessError.badInput(existing.parameters.tree,
                    "an unfinished bisect of this tree (\(existing.parameters.badName) bad, \(existing.parameters.goodName) good) is in \(directory); --resume continues it, --restart drops it")
            }
        }
        state = BisectState(parameters: parameters)
    }

    /// The parameters of the bisect recorded in `directory`, for `--resume`.
    public static func recordedParameters(in directory: String) throws -> BisectParameters? {
        try BisectState.load(from: directory)?.parameters
    }

    public func run() async throws -> BisectReport {
        let lock = try BisectLock.take(directory: directory)
        defer { lock.unlock() }
        let signals = SignalWatch(signals: [SIGINT, SIGTERM])
        self.signals = signals
        defer { signals.stop() }
        if let report = state.report {
            events("this bisect finished before; its answer:")
            return report
        }
        if state.runs.isEmpty { events("bisect state: \(directory)/state.json") } else {
            events("resuming: \(state.runs.values.reduce(0) { $0 + $1.count }) run(s) recorded in \(directory)/state.json")
        }
        try state.save(to: directory)
        let clone = try await GitBisect.clone(tree: parameters.tree, into: directory)
        let fix = try await clone.isAncestor(parameters.bad, of: parameters.good)
        git = GitBisect(repository: clone, terms: fix ? .fix : .regression)
        if fix { events("--bad is older than --good: bisecting the fix (git terms broken/fixed)") }

        try await verifyBad()
        try await verifyGood()

        let size = try await git.rangeSize(bad: parameters.bad, good: parameters.good)
        events("bisecting \(size) commit(s), about \(Self.expectedSteps(size)) step(s)")
        var step = try await git.start(bad: parameters.bad, good: parameters.good)
        var culprit: String?
        var candidates: [String] = []
        while true {
            switch step {
            case .test(let commit):
                let subject = await git.subject(commit)
                let number = (state.order.firstIndex(of: commit) ?? state.order.count) + 1
                events("step \(number): \(commit.prefix(12)) \(subject)" + (state.decisions[commit] == nil ? "" : " (recorded)"))
                let decision = try await decide(commit)
                if !state.order.contains(commit) {
                    state.order.append(commit)
                    try state.save(to: directory)
                }
                events("  \(decision.verdict.rawValue): \(decision.note)")
                try checkSignals()
                step = try await git.mark(commit, decision.verdict)
                continue
            case .found(let commit):
                culprit = commit
            case .ambiguous(let list):
                candidates = list
            }
            break
        }

        var revert: StepSummary?
        if let culprit, parameters.checkRevert, !fix {
            revert = try await checkRevert(culprit)
        }
        let report = try await makeReport(culprit: culprit, candidates: candidates, size: size, fix: fix, revert: revert)
        state.report = report
        try state.save(to: directory)
        try? Files.writeAtomically(report.text, to: directory + "/report.txt")
        return report
    }

    /// ⌈log2(size + 1)⌉: what git needs for `size` commits without skips.
    public static func expectedSteps(_ size: Int) -> Int {
        var steps = 0
        while (1 << steps) < size + 1 { steps += 1 }
        return steps
    }

    // MARK: - Ends

    /// The bad revision must show a failure; it names the one hunted unless
    /// `--signature` did, and its runs give the first estimate of how often
    /// the failure shows.
    private func verifyBad() async throws {
        let bad = parameters.bad
        if state.decisions[bad] != nil { return }
        events("checking --bad \(parameters.badName) (\(bad.prefix(12)))")
        if let given = parameters.signature { state.hunted = FailureSignature(given) }
        let limit = max(parameters.policy.maxRuns, parameters.policy.reproduceRuns)
        while true {
            let runs = state.runs[bad] ?? []
            if state.hunted == nil, let first = runs.first(where: { $0.status == .fail }) {
                if case .untestable(let why) = Observation.of(first, hunting: FailureSignature("")) {
                    throw HarnessError.badInput("--bad \(parameters.badName)", "\(why); give --signature to hunt a build or boot failure")
                }
                state.hunted = FailureSignature(first.reason)
                state.huntedExample = first.reason
                try state.save(to: directory)
                events("hunting: \(state.hunted!) (from \"\(first.reason)\")")
            }
            if let hunted = state.hunted {
                if state.huntedExample == nil, let example = runs.first(where: { hunted.matches($0) }) {
                    state.huntedExample = example.failureTitles.first { FailureSignature.normalise($0) == hunted.text }
                }
                let observations = runs.map { Observation.of($0, hunting: hunted) }
                for case .untestable(let why) in observations {
                    throw HarnessError.badInput("--bad \(parameters.badName)", why)
                }
                let hits = observations.filter { $0 == .hit }.count
                if hits > 0, runs.count >= parameters.policy.reproduceRuns {
                    state.decisions[bad] = Decision(verdict: .bad, confidence: 1,
                                                    note: "failure in \(hits) of \(runs.count) run(s)")
                    try state.save(to: directory)
                    events("  bad: failure in \(hits) of \(runs.count) run(s)")
                    return
                }
            }
            if runs.count >= limit {
                let last = runs.last.map { "\($0.status.rawValue): \($0.reason)" } ?? "no run"
                let what = state.hunted.map { "\"\($0)\"" } ?? "a failure"
                throw HarnessError.badInput("--bad \(parameters.badName)",
                                            "\(what) did not show in \(runs.count) run(s) (last: \(last))")
            }
            try await runOnce(bad, key: bad)
        }
    }

    private func verifyGood() async throws {
        let good = parameters.good
        if state.decisions[good] == nil { events("checking --good \(parameters.goodName) (\(good.prefix(12)))") }
        let decision = try await decide(good)
        switch decision.verdict {
        case .good: events("  good: \(decision.note)")
        case .bad:
            throw HarnessError.badInput("--good \(parameters.goodName)", "shows the failure hunted too (\(decision.note))")
        case .skip:
            throw HarnessError.badInput("--good \(parameters.goodName)", "cannot be tested: \(decision.note)")
        }
    }

    // MARK: - Steps

    /// Runs `commit` until the decider has a verdict; a decision recorded
    /// before (a resumed bisect) stands.
    private func decide(_ commit: String, key: String? = nil, extraPatch: String? = nil) async throws -> Decision {
        let key = key ?? commit
        if let decision = state.decisions[key] { return decision }
        guard let hunted = state.hunted else {
            throw HarnessError.infrastructure(directory, "no failure to hunt")
        }
        while true {
            let observations = (state.runs[key] ?? []).map { Observation.of($0, hunting: hunted) }
            if let decision = StepDecider.decide(observations, rate: state.reproduction, policy: parameters.policy) {
                state.decisions[key] = decision
                try state.save(to: directory)
                return decision
            }
            try await runOnce(commit, key: key, extraPatch: extraPatch)
        }
    }

    private func runOnce(_ commit: String, key: String, extraPatch: String? = nil) async throws {
        try checkSignals()
        let started = ContinuousClock.now
        var run = try await runner.run(commit: commit, extraPatch: extraPatch)
        if run.wasInterrupted {
            throw BisectInterrupted(signal: run.reason.components(separatedBy: " ").last ?? "a signal")
        }
        let elapsed = ContinuousClock.now - started
        let wall = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        run.timings.wall = max(run.timings.wall, wall)
        state.runs[key, default: []].append(run)
        try state.save(to: directory)
        let what: String
        if let hunted = state.hunted {
            switch Observation.of(run, hunting: hunted) {
            case .hit: what = "failure hunted"
            case .miss(let other): what = other.map { "without it (other failure: \($0))" } ?? "without it"
            case .untestable(let why), .inconclusive(let why): what = why
            }
        } else {
            what = "\(run.status.rawValue): \(run.reason)"
        }
        events(String(format: "  run %@: %@ (%.1f s)", run.runID, what, run.timings.wall))
        try checkSignals()
    }

    private func checkSignals() throws {
        if let signal = signals?.received { throw BisectInterrupted(signal: SignalWatch.name(signal)) }
    }

    /// Builds the bad revision with the culprit reverted on top (after the
    /// user's series) and runs it like a step: good means the failure went away.
    private func checkRevert(_ culprit: String) async throws -> StepSummary {
        let key = "revert:\(culprit)"
        let patch = try await git.revertPatch(culprit)
        let seriesDirectory = directory + "/revert-\(culprit.prefix(12))"
        try? FileManager.default.removeItem(atPath: seriesDirectory)
        try Files.createDirectory(seriesDirectory)
        if let series = parameters.series {
            if Files.isDirectory(series) {
                for name in try FileManager.default.contentsOfDirectory(atPath: series).sorted()
                where name.hasSuffix(".patch") || name.hasSuffix(".diff") || name.hasSuffix(".eml") {
                    try FileManager.default.copyItem(atPath: series + "/" + name, toPath: seriesDirectory + "/0-" + name)
                }
            } else {
                try FileManager.default.copyItem(atPath: series, toPath: seriesDirectory + "/0-series.patch")
            }
        }
        try Files.writeAtomically(patch, to: seriesDirectory + "/z-revert-\(culprit.prefix(12)).patch")
        events("revert check: \(parameters.badName) with \(culprit.prefix(12)) reverted")
        let decision = try await decide(parameters.bad, key: key, extraPatch: seriesDirectory)
        events("  \(decision.verdict == .good ? "the failure goes away" : decision.verdict == .bad ? "the failure stays" : "untestable"): \(decision.note)")
        return summary(key, commit: parameters.bad, subject: "\(parameters.badName) with \(culprit.prefix(12)) reverted",
                       decision: decision)
    }

    // MARK: - Report

    private func summary(_ key: String, commit: String, subject: String, decision: Decision) -> StepSummary {
        let runs = state.runs[key] ?? []
        let observations = state.hunted.map { hunted in runs.map { Observation.of($0, hunting: hunted) } } ?? []
        let hits = observations.filter { $0 == .hit }.count
        let clean = observations.filter { if case .miss = $0 { return true } else { return false } }.count
        let timings = runs.reduce(StepTimings()) { $0 + $1.timings }
        return StepSummary(commit: commit, subject: subject, verdict: decision.verdict, confidence: decision.confidence,
                           note: decision.note, runs: runs.count, hits: hits, clean: clean, runIDs: runs.map(\.runID),
                           timings: timings)
    }

    private func makeReport(culprit: String?, candidates: [String], size: Int, fix: Bool,
                            revert: StepSummary?) async throws -> BisectReport {
        var steps: [StepSummary] = []
        for commit in state.order {
            guard let decision = state.decisions[commit] else { continue }
            steps.append(summary(commit, commit: commit, subject: await git.subject(commit), decision: decision))
        }
        var ends: [StepSummary] = []
        for (commit, name) in [(parameters.bad, parameters.badName), (parameters.good, parameters.goodName)] {
            guard let decision = state.decisions[commit] else { continue }
            var entry = summary(commit, commit: commit, subject: await git.subject(commit), decision: decision)
            entry.note = "\(name): " + entry.note
            ends.append(entry)
        }
        let rate = state.reproduction
        // Every "good" could be a bad commit that hid its failure; the
        // answer is right when none did.
        var confidence = 1.0
        for entry in steps + ends where entry.verdict == .good {
            confidence *= 1 - rate.missProbability(cleanRuns: entry.clean)
        }
        var others: [String] = []
        for entry in steps + ends {
            for run in state.runs[entry.commit] ?? [] {
                guard let hunted = state.hunted, case .miss(let other?) = Observation.of(run, hunting: hunted) else { continue }
                let line = "\(entry.commit.prefix(12)): \(other) (run \(run.runID))"
                if !others.contains(line) { others.append(line) }
            }
        }
        var evidence: [StepSummary] = []
        var culpritSubject: String?
        if let culprit {
            culpritSubject = await git.subject(culprit)
            let parents = (try? await git.checked(["rev-parse", culprit + "^@"]))?
                .split(separator: "\n").map(String.init) ?? []
            for commit in [culprit] + parents {
                if let entry = (steps + ends).first(where: { $0.commit == commit }) { evidence.append(entry) }
            }
        }
        var described: [String] = []
        for candidate in candidates { described.append("\(candidate.prefix(12)) \(await git.subject(candidate))") }
        let all = (steps + ends + (revert.map { [$0] } ?? [])).reduce(StepTimings()) { $0 + $1.timings }
        return BisectReport(
            mode: fix ? "fix" : "regression", tree: parameters.tree, good: parameters.good, bad: parameters.bad,
            goodName: parameters.goodName, badName: parameters.badName,
            hunted: state.hunted?.text ?? "", huntedExample: state.huntedExample ?? "",
            firstBad: culprit, subject: culpritSubject, candidates: described, rangeSize: size,
            expectedSteps: Self.expectedSteps(size), steps: steps, ends: ends, evidence: evidence,
            reproduction: rate, confidence: culprit == nil ? 0 : confidence, otherFailures: others,
            revert: revert, log: (try? await git.log()) ?? "",
            stepTimings: steps.reduce(StepTimings()) { $0 + $1.timings }, totalTimings: all)
    }
}
