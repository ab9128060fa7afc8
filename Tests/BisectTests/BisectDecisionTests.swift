import Foundation
import Support
import XCTest

@testable import Bisect

/// The bisect's decisions over a real git history, with a model standing in
/// for the kernel runs: which commits build, boot and show the failure, and
/// how often. What is tested is the decision logic (signatures, flaky
/// counting, skips, confidence, resuming, fix mode), not the runs.
final class BisectDecisionTests: XCTestCase {
    /// A history of `count` commits on top of a root commit, each rewriting one file.
    struct History {
        var tree: String
        /// commits[0] is the root (good); commits[count] the tip.
        var commits: [String]

        static func make(count: Int, in directory: String) async throws -> History {
            let tree = directory + "/tree"
            try Files.createDirectory(tree)
            let env = ["GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
                       "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_AUTHOR_DATE": "2001-01-01T00:00:00Z",
                       "GIT_COMMITTER_DATE": "2001-01-01T00:00:00Z"]
            try await Command.check("git", ["-C", tree, "init", "-q", "-b", "main"])
            for index in 0...count {
                try Files.writeAtomically("\(index)\n", to: tree + "/file")
                try await Command.check("git", ["-C", tree, "add", "file"])
                try await Command.check("git", ["-C", tree, "commit", "-q", "-m", "commit \(index)"], environment: env)
            }
            let list = try await Command.check("git", ["-C", tree, "rev-list", "--reverse", "HEAD"]).stdout
            return History(tree: tree, commits: list.split(separator: "\n").map(String.init))
        }
    }

    /// Which commits do what, as a kernel would.
    /// `@unchecked`: a test sets its parameters before the bisect starts; runs change state only with `lock` held.
    final class Model: StepRunner, @unchecked Sendable {
        let commits: [String]
        /// Commits from this index on have the failure (a fix model inverts it).
        var culprit: Int
        var fixedAt: Int?
        var rate = 1.0
        var unbuildable: Set<Int> = []
        var otherCrash: Set<Int> = []
        var otherCrashStopsWorkload = false
        var revertCures = true
        /// After this many runs the next run is interrupted (SIGINT).
        var interruptAfter: Int?
        private var generator: UInt64 = 0x9E3779B97F4A7C15
        private let lock = NSLock()
        private(set) var calls: [Int: Int] = [:]

        init(commits: [String], culprit: Int) {
            self.commits = commits
            self.culprit = culprit
        }

        var totalCalls: Int { lock.withLock { calls.values.reduce(0, +) } }

        /// xorshift: a fixed sequence, so a flaky model is the same every time.
        private func uniform() -> Double {
            generator ^= generator << 13
            generator ^= generator >> 7
            generator ^= generator << 17
            return Double(generator >> 11) / Double(1 << 53)
        }

        func run(commit: String, extraPatch: String?) async throws -> StepRun {
            try lock.withLock { try respond(commit: commit, extraPatch: extraPatch) }
        }

        private func respond(commit: String, extraPatch: String?) throws -> StepRun {
            let index = try XCTUnwrap(commits.firstIndex(of: commit))
            let id = "run-\(index)-\(calls[index, default: 0])"
            if let limit = interruptAfter, calls.values.reduce(0, +) >= limit {
                return StepRun(runID: id, status: .error, end: .interrupted, reason: "interrupted by SIGINT",
                               failureTitles: [], timings: StepTimings())
            }
            calls[index, default: 0] += 1
            let timings = StepTimings(build: 5, boot: 1, workload: 2, wall: 9)
            if unbuildable.contains(index) {
                return StepRun(runID: id, status: .buildFail, end: .buildFailed,
                               reason: "drivers/iommu/iommu-sva.c:12: error: expected ';'", failureTitles: [],
                               timings: timings)
            }
            var broken = fixedAt.map { index < $0 } ?? (index >= culprit)
            if extraPatch != nil, revertCures { broken = false }
            if broken, uniform() < rate {
                let reason = "PASID 1 freed while still bound to pid \(80 + Int(uniform() * 40))"
                return StepRun(runID: id, status: .fail, end: .finished, reason: reason,
                               failureTitles: [reason, "BUG: unable to handle kernel NULL pointer dereference in sva_accel_pin"],
                               workloadCompleted: false, timings: timings)
            }
            if otherCrash.contains(index) {
                let reason = "WARNING in iommu_sva_unbind_device"
                return StepRun(runID: id, status: .fail, end: .finished, reason: reason, failureTitles: [reason],
                               workloadCompleted: !otherCrashStopsWorkload, timings: timings)
            }
            return StepRun(runID: id, status: .pass, end: .finished, reason: "1 scenario(s) passed",
                           failureTitles: [], timings: timings)
        }
    }

    private var scratch = ""

    override func setUp() async throws {
        scratch = NSTemporaryDirectory() + "kharness-bisect-\(UUID().uuidString)"
        try Files.createDirectory(scratch)
        addTeardownBlock { [scratch] in try? FileManager.default.removeItem(atPath: scratch) }
    }

    private func parameters(_ history: History, good: String, bad: String, policy: BisectPolicy = BisectPolicy(),
                            checkRevert: Bool = false) -> BisectParameters {
        BisectParameters(tree: history.tree, goodName: good, badName: bad, good: good, bad: bad, series: nil,
                         workload: "sva", scenarios: ["exit-no-unbind"], machine: "sva",
                         configFragments: ["smmuv3", "trace", "modules"], signature: nil, policy: policy,
                         checkRevert: checkRevert)
    }

    private func bisect(_ history: History, _ model: Model, good: Int = 0, bad: Int? = nil,
                        policy: BisectPolicy = BisectPolicy(), checkRevert: Bool = false,
                        directory: String? = nil) async throws -> BisectReport {
        let bad = bad ?? history.commits.count - 1
        let directory = directory ?? scratch + "/state"
        try Files.createDirectory(directory)
        let driver = try BisectDriver(
            parameters: parameters(history, good: history.commits[good], bad: history.commits[bad], policy: policy,
                                   checkRevert: checkRevert),
            directory: directory, runner: model)
        return try await driver.run()
    }

    func testSignatureLeavesOutPidsAndNumbersButNotIdentifiers() {
        XCTAssertEqual(FailureSignature("PASID 1 freed while still bound to pid 85"),
                       FailureSignature("PASID 2 freed while still bound to pid 112"))
        XCTAssertEqual(FailureSignature("PASID 1 freed while still bound to pid 85").text,
                       "PASID # freed while still bound to pid #")
        XCTAssertEqual(FailureSignature.normalise("KASAN: slab-use-after-free Read in ext4_fill_super"),
                       "KASAN: slab-use-after-free Read in ext4_fill_super")
        XCTAssertEqual(FailureSignature.normalise("BUG: soft lockup in mmu_notifier2 on CPU 0x3"),
                       "BUG: soft lockup in mmu_notifier2 on CPU #")
        XCTAssertNotEqual(FailureSignature("PASID 1 freed while still bound to pid 85"),
                          FailureSignature("PASID 1 bound by pid 86 while still bound to pid 85"))
    }

    func testOneHitIsBadAndCleanRunsAreGoodOnlyWhenConfident() {
        let policy = BisectPolicy(maxRuns: 6, confidence: 0.95)
        let sure = ReproductionRate(hits: 18, runs: 18) // estimate 0.95
        XCTAssertEqual(StepDecider.decide([.miss(other: nil), .hit], rate: sure, policy: policy)?.verdict, .bad)
        XCTAssertEqual(StepDecider.decide([.miss(other: nil)], rate: sure, policy: policy)?.verdict, .good)
        let flaky = ReproductionRate(hits: 3, runs: 6) // estimate 0.5: 5 clean runs give 0.97
        XCTAssertNil(StepDecider.decide(Array(repeating: .miss(other: nil), count: 4), rate: flaky, policy: policy))
        let good = StepDecider.decide(Array(repeating: .miss(other: nil), count: 5), rate: flaky, policy: policy)
        XCTAssertEqual(good?.verdict, .good)
        XCTAssertEqual(good?.confidence ?? 0, 1 - pow(0.5, 5), accuracy: 1e-9)
        // At the run limit a good is given with the confidence it has.
        let capped = StepDecider.decide(Array(repeating: .miss(other: nil), count: 2), rate: flaky,
                                        policy: BisectPolicy(maxRuns: 2, confidence: 0.99))
        XCTAssertEqual(capped?.verdict, .good)
        XCTAssertEqual(capped?.confidence ?? 0, 0.75, accuracy: 1e-9)
    }

    func testUntestableIsSkippedAndOtherFailuresAreNotBad() {
        let rate = ReproductionRate(hits: 3, runs: 3)
        let policy = BisectPolicy()
        XCTAssertEqual(StepDecider.decide([.untestable("does not build: x")], rate: rate, policy: policy)?.verdict, .skip)
        XCTAssertNil(StepDecider.decide([.inconclusive("ERROR: libvirt")], rate: rate, policy: policy))
        XCTAssertEqual(StepDecider.decide([.inconclusive("a"), .inconclusive("b")], rate: rate, policy: policy)?.verdict, .skip)
        let other = StepDecider.decide([.miss(other: "WARNING in foo"), .miss(other: "WARNING in foo")], rate: rate,
                                       policy: policy)
        XCTAssertEqual(other?.verdict, .good)
        XCTAssertTrue(other?.note.contains("WARNING in foo") ?? false)

        let hunted = FailureSignature("PASID 1 freed while still bound to pid 2")
        let stopped = StepRun(runID: "r", status: .fail, end: .finished, reason: "BUG: unable to handle kernel paging request in foo",
                              failureTitles: ["BUG: unable to handle kernel paging request in foo"], workloadCompleted: false,
                              timings: StepTimings())
        XCTAssertEqual(Observation.of(stopped, hunting: hunted),
                       .inconclusive("a different failure stopped the workload: BUG: unable to handle kernel paging request in foo"))
        var completed = stopped
        completed.workloadCompleted = true
        XCTAssertEqual(Observation.of(completed, hunting: hunted), .miss(other: "BUG: unable to handle kernel paging request in foo"))
        var hit = stopped
        hit.failureTitles.append("PASID 7 freed while still bound to pid 99")
        XCTAssertEqual(Observation.of(hit, hunting: hunted), .hit)

        let run = StepRun(runID: "r", status: .fail, end: .bootFailed, reason: "boot failure: no kernel output",
                          failureTitles: ["boot failure: no kernel output"], timings: StepTimings())
        XCTAssertEqual(Observation.of(run, hunting: FailureSignature("PASID 1 freed while still bound to pid 2")),
                       .untestable("does not boot: boot failure: no kernel output"))
    }

    func testNamesTheFirstBadCommitWithinLogSteps() async throws {
        let history = try await History.make(count: 24, in: scratch)
        let model = Model(commits: history.commits, culprit: 17)
        let report = try await bisect(history, model)
        XCTAssertEqual(report.firstBad, history.commits[17])
        XCTAssertEqual(report.subject, "commit 17")
        XCTAssertEqual(report.mode, "regression")
        XCTAssertEqual(report.hunted, "PASID # freed while still bound to pid #")
        XCTAssertEqual(report.rangeSize, 24)
        XCTAssertLessThanOrEqual(report.steps.count, report.expectedSteps + 2)
        XCTAssertEqual(report.regzbotLine, "#regzbot introduced: \(history.commits[17].prefix(12))")
        XCTAssertEqual(Set(report.evidence.map(\.commit)), [history.commits[17], history.commits[16]])
        XCTAssertGreaterThan(report.confidence, 0.9)
        XCTAssertTrue(report.text.contains("first bad commit: \(history.commits[17]) commit 17"), report.text)
        XCTAssertEqual(report.totalTimings.build, Double(model.totalCalls) * 5, accuracy: 1e-9)

        // The log replays in a clone of the user's tree to the same answer.
        let log = scratch + "/bisect.log"
        try Files.writeAtomically(report.log, to: log)
        let clone = scratch + "/replay"
        try await Command.check("git", ["clone", "-q", history.tree, clone])
        let replay = try await Command.check("git", ["-C", clone, "bisect", "replay", log])
        XCTAssertTrue(replay.stdout.contains("\(history.commits[17]) is the first bad commit"), replay.stdout)
    }

    func testSkipsCommitsThatDoNotBuild() async throws {
        let history = try await History.make(count: 16, in: scratch)
        let model = Model(commits: history.commits, culprit: 12)
        model.unbuildable = [7, 8, 9]
        let report = try await bisect(history, model)
        XCTAssertEqual(report.firstBad, history.commits[12])
        let skipped = report.steps.filter { $0.verdict == .skip }
        XCTAssertFalse(skipped.isEmpty, "the midpoint (8) does not build and must be skipped")
        XCTAssertTrue(skipped.allSatisfy { $0.note.hasPrefix("does not build") && $0.runs == 1 })
        XCTAssertTrue(report.log.contains("git bisect skip"))
    }

    func testOnlySkippedCommitsLeftGivesTheCandidates() async throws {
        let history = try await History.make(count: 8, in: scratch)
        let model = Model(commits: history.commits, culprit: 5)
        model.unbuildable = [4, 5]
        let report = try await bisect(history, model)
        XCTAssertNil(report.firstBad)
        XCTAssertNil(report.regzbotLine)
        // git names the skipped commits and the first bad one after them.
        XCTAssertEqual(Set(report.candidates.map { String($0.prefix(12)) }),
                       Set(history.commits[4...6].map { String($0.prefix(12)) }))
        XCTAssertTrue(report.text.contains("only skipped commits are left"), report.text)
    }

    func testFlakyFailureIsDecidedByCountsWithAConfidence() async throws {
        let history = try await History.make(count: 16, in: scratch)
        let model = Model(commits: history.commits, culprit: 6)
        model.rate = 0.6
        let policy = BisectPolicy(maxRuns: 8, confidence: 0.99, reproduceRuns: 4)
        let report = try await bisect(history, model, policy: policy)
        XCTAssertEqual(report.firstBad, history.commits[6])
        XCTAssertLessThan(report.reproduction.hits, report.reproduction.runs, "the model missed at least once")
        XCTAssertLessThan(report.confidence, 1)
        XCTAssertGreaterThan(report.confidence, 0.9)
        for step in report.steps where step.verdict == .good {
            XCTAssertGreaterThan(step.clean, 1, "a clean run of a flaky failure is not conclusive: \(step)")
            XCTAssertGreaterThanOrEqual(step.confidence, 0.99)
        }
        XCTAssertTrue(report.steps.contains { $0.verdict == .bad && $0.runs > 1 } || model.rate == 1,
                      "some bad step needed more than one run: \(report.steps.map { ($0.verdict, $0.runs) })")
    }

    func testADifferentFailureIsReportedButDoesNotMakeAStepBad() async throws {
        let history = try await History.make(count: 16, in: scratch)
        let model = Model(commits: history.commits, culprit: 11)
        model.otherCrash = Set(4...10)
        let report = try await bisect(history, model)
        XCTAssertEqual(report.firstBad, history.commits[11])
        XCTAssertFalse(report.otherFailures.isEmpty)
        XCTAssertTrue(report.otherFailures.allSatisfy { $0.contains("WARNING in iommu_sva_unbind_device") })
    }

    func testADifferentFailureThatStopsTheWorkloadIsRerunThenSkipped() async throws {
        let history = try await History.make(count: 16, in: scratch)
        let model = Model(commits: history.commits, culprit: 11)
        model.otherCrash = Set(4...8)
        model.otherCrashStopsWorkload = true
        let report = try await bisect(history, model)
        XCTAssertEqual(report.firstBad, history.commits[11])
        let skipped = report.steps.filter { $0.verdict == .skip }
        XCTAssertFalse(skipped.isEmpty, "the midpoint (8) crashes before the workload ends")
        for step in skipped {
            XCTAssertEqual(step.runs, 2, step.note)
            XCTAssertTrue(step.note.contains("a different failure stopped the workload"), step.note)
        }
    }

    func testResumesAfterAnInterruptionWithoutRepeatingRuns() async throws {
        let history = try await History.make(count: 24, in: scratch)
        let model = Model(commits: history.commits, culprit: 9)
        model.interruptAfter = 8
        do {
            _ = try await bisect(history, model)
            XCTFail("the model interrupts the ninth run")
        } catch is BisectInterrupted {}
        let before = model.calls
        let after = Model(commits: history.commits, culprit: 9)
        let report = try await bisect(history, after)
        XCTAssertEqual(report.firstBad, history.commits[9])
        // Commits decided before the interruption are not run again; the one
        // interrupted mid-way gets only the runs it still lacked.
        let decided = report.steps.map(\.commit) + report.ends.map(\.commit)
        for (index, count) in before {
            let step = try XCTUnwrap((report.steps + report.ends).first { $0.commit == history.commits[index] })
            XCTAssertEqual(step.runs, count + after.calls[index, default: 0])
        }
        XCTAssertEqual(model.totalCalls + after.totalCalls,
                       (report.steps + report.ends).reduce(0) { $0 + $1.runs }, "\(decided)")
        // Running the finished bisect again answers from the state.
        let again = Model(commits: history.commits, culprit: 9)
        let same = try await bisect(history, again)
        XCTAssertEqual(same, report)
        XCTAssertEqual(again.totalCalls, 0)
    }

    func testAnUnfinishedBisectOfOtherParametersIsNotClobbered() async throws {
        let history = try await History.make(count: 8, in: scratch)
        let model = Model(commits: history.commits, culprit: 5)
        model.interruptAfter = 2
        _ = try? await bisect(history, model)
        do {
            _ = try await bisect(history, Model(commits: history.commits, culprit: 5), good: 1)
            XCTFail("another unfinished bisect is recorded")
        } catch let error as HarnessError {
            XCTAssertEqual(error.kind, .badInput)
            XCTAssertTrue(error.reason.contains("--resume"), error.reason)
        }
    }

    func testBisectsAFixWhenGoodIsNewerThanBad() async throws {
        let history = try await History.make(count: 16, in: scratch)
        let model = Model(commits: history.commits, culprit: 0)
        model.fixedAt = 10
        // The old end fails, the new end does not.
        let report = try await bisect(history, model, good: 16, bad: 0)
        XCTAssertEqual(report.mode, "fix")
        XCTAssertEqual(report.firstBad, history.commits[10])
        XCTAssertEqual(report.regzbotLine, "#regzbot fix: \(history.commits[10].prefix(12))")
        XCTAssertTrue(report.text.hasPrefix("first fixed commit: \(history.commits[10])"), report.text)
    }

    func testAGoodRevisionThatFailsIsRefused() async throws {
        let history = try await History.make(count: 8, in: scratch)
        let model = Model(commits: history.commits, culprit: 0)
        do {
            _ = try await bisect(history, model, good: 2)
            XCTFail("--good shows the failure")
        } catch let error as HarnessError {
            XCTAssertEqual(error.kind, .badInput)
            XCTAssertTrue(error.input.hasPrefix("--good"), error.description)
        }
    }

    func testRevertCheckRunsTheBadRevisionWithTheCulpritReverted() async throws {
        let history = try await History.make(count: 8, in: scratch)
        let model = Model(commits: history.commits, culprit: 5)
        let report = try await bisect(history, model, checkRevert: true)
        XCTAssertEqual(report.firstBad, history.commits[5])
        XCTAssertEqual(report.revert?.verdict, .good)
        XCTAssertTrue(report.text.contains("the failure goes away"), report.text)
        let stays = Model(commits: history.commits, culprit: 5)
        stays.revertCures = false
        let other = try await bisect(history, stays, checkRevert: true, directory: scratch + "/state2")
        XCTAssertEqual(other.revert?.verdict, .bad)
    }
}
