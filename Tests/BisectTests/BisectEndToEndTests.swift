// `@preconcurrency` (first, before Foundation re-exports the C library without it): `stdout` is
// a C global `var`; class setUp sets its buffering once, before any test runs.
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
@preconcurrency import Darwin
#endif
import Foundation
import Harness
import KernelTestSupport
import Support
import XCTest

@testable import Bisect

/// `kharness bisect` on the real stack: synthetic histories on Debian's 6.12
/// source (scripts/bisect-fixture), each step an incremental kernel build, the
/// sva-accel module, a boot of the SVA machine and the sva workload's
/// exit-no-unbind scenario (the one the planted PASID use-after-free breaks).
final class BisectEndToEndTests: XCTestCase {

    static let fixture = Task { () throws -> String in
        let result = try await Command.check(Checkout.path("scripts/bisect-fixture"), [])
        return try XCTUnwrap(result.stdout.split(separator: "\n").last.map(String.init))
    }

    private var scratch = ""

    /// `swift test` decodes the test process's output in 4 KiB pieces and
    /// drops a piece that ends inside a UTF-8 character, and every piece after
    /// it: whole lines keep the log of these tests complete.
    override class func setUp() {
        super.setUp()
        setvbuf(stdout, nil, _IOLBF, 0)
    }

    override func setUp() async throws {
        scratch = NSTemporaryDirectory() + "kharness-bisect-e2e-\(UUID().uuidString)"
        try Files.createDirectory(scratch)
        addTeardownBlock { [scratch] in try? FileManager.default.removeItem(atPath: scratch) }
    }

    private func commit(_ revision: String) async throws -> String {
        try await Command.check("git", ["-C", try await Self.fixture.value, "rev-parse", revision])
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func bisect(bad: String, scenario: String = "exit-no-unbind", policy: BisectPolicy = BisectPolicy(),
                        checkRevert: Bool = false) async throws -> BisectReport {
        let parameters = try await BisectParameters.resolve(
            tree: try await Self.fixture.value, good: "v6.12-debian", bad: bad, series: nil, workload: "sva",
            scenarios: [scenario], machine: "sva", configFragments: ["smmuv3", "trace", "modules"],
            signature: nil, policy: policy, checkRevert: checkRevert)
        let runner = HarnessStepRunner(parameters: parameters,
                                       template: HarnessStepRunner.request(for: parameters, resultsRoot: scratch + "/results"))
        let driver = try BisectDriver(parameters: parameters, directory: scratch, runner: runner,
                                      events: { print("bisect: \($0)") })
        let report = try await driver.run()
        print(report.text)
        return report
    }

    /// 24 commits, one of them the planted bug: named exactly, within
    /// ⌈log2 24⌉ + 2 steps, and reverting it on the tip cures the tip.
    func testNamesThePlantedCommitInTheRegressionHistory() async throws {
        let report = try await bisect(bad: "regression", checkRevert: true)
        let planted = try await commit("regression~7")
        XCTAssertEqual(report.firstBad, planted)
        XCTAssertEqual(report.subject, "kharness: plant the 2022 PASID use-after-free (drop the PASID at mmput)")
        XCTAssertEqual(report.rangeSize, 24)
        XCTAssertLessThanOrEqual(report.steps.count, Int(ceil(log2(24.0))) + 2)
        XCTAssertEqual(report.hunted, "PASID # freed while still bound to pid #")
        XCTAssertEqual(report.regzbotLine, "#regzbot introduced: \(planted.prefix(12))")
        XCTAssertEqual(report.revert?.verdict, .good, report.revert?.note ?? "no revert check")
        XCTAssertTrue(report.steps.allSatisfy { $0.verdict != .skip })
        XCTAssertGreaterThan(report.totalTimings.build, 0)
        XCTAssertGreaterThan(report.totalTimings.boot, 0)

        // The printed log replays in a clone of the tree to the same commit.
        try Files.writeAtomically(report.log, to: scratch + "/bisect.log")
        try await Command.check("git", ["clone", "-q", "--bare", "--shared", try await Self.fixture.value, scratch + "/replay.git"])
        let replay = try await Command.check("git", ["-C", scratch + "/replay.git", "bisect", "replay", scratch + "/bisect.log"])
        XCTAssertTrue(replay.stdout.contains("\(planted) is the first bad commit"), replay.stdout)
    }

    /// Commits 4 and 5 of 10 do not compile: skipped, and the answer is still the planted commit.
    func testSkipsCommitsThatDoNotBuild() async throws {
        let report = try await bisect(bad: "unbuildable")
        let planted = try await commit("unbuildable~3")
        XCTAssertEqual(report.firstBad, planted)
        let skipped = report.steps.filter { $0.verdict == .skip }
        XCTAssertFalse(skipped.isEmpty, "\(report.steps.map(\.subject))")
        XCTAssertTrue(skipped.allSatisfy { $0.note.hasPrefix("does not build") }, "\(skipped.map(\.note))")
        XCTAssertTrue(skipped.allSatisfy { $0.subject.contains("break the build") || $0.subject.contains("harmless change 105") })
    }

    /// The planted bug shows in about three boots of four: a clean run is
    /// not conclusive, so clean commits are re-run, and the answer says how
    /// sure it is.
    func testFindsAFlakyFailureByCounting() async throws {
        let report = try await bisect(bad: "flaky", policy: BisectPolicy(maxRuns: 6, confidence: 0.999, reproduceRuns: 4))
        let planted = try await commit("flaky~3")
        XCTAssertEqual(report.firstBad, planted)
        XCTAssertLessThan(report.confidence, 1)
        for step in report.steps + report.ends where step.verdict == .good {
            XCTAssertGreaterThanOrEqual(step.clean, 2, "\(step.subject): \(step.note)")
        }
        XCTAssertGreaterThanOrEqual(report.reproduction.runs, 4)
    }

    /// A device-side bug: the kernel's bookkeeping is intact and the workload's own checks
    /// are not what names it; the device oracle's title is what the bisect hunts, and the
    /// commit it names is the planted one.
    func testNamesThePlantedDeviceSideBug() async throws {
        let report = try await bisect(bad: "device", scenario: "munmap-inflight-dma")
        let planted = try await commit("device~3")
        XCTAssertEqual(report.firstBad, planted)
        XCTAssertEqual(report.hunted, "device DMA through PASID # reached a page pid # had unmapped")
        let subject = try XCTUnwrap(report.subject)
        XCTAssertTrue(subject.hasPrefix("kharness: plant a stale SMMU TLB after munmap"), subject)
        XCTAssertEqual(report.rangeSize, 8)
        XCTAssertTrue(report.steps.allSatisfy { $0.verdict != .skip })
    }
}
