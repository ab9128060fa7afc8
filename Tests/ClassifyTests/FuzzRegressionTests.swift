import Foundation
import XCTest

@testable import Classify

/// Replays every input in testdata/fuzz-regressions/<target>/ through the fuzz target
/// that found it (Classify.FuzzTargets, the code scripts/fuzz runs): a trap fails the
/// test run. The first inputs are the traps the issue found by hand (a callback count
/// sum past Int, an SMMU event id past Int, a 1e300 trace timestamp) and a fork cycle.
final class FuzzRegressionTests: XCTestCase {
    static let directory = Bundle.module.resourceURL!.appendingPathComponent("testdata/fuzz-regressions")

    func testEveryRegressionInputRunsClean() throws {
        let targets = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path).sorted()
        XCTAssertEqual(Set(targets), Set(FuzzTargets.names), "one directory per target")
        var replayed = 0
        for target in targets {
            let dir = Self.directory.appendingPathComponent(target)
            for name in try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() {
                let data = try Data(contentsOf: dir.appendingPathComponent(name))
                XCTAssertTrue(FuzzTargets.run(target, Array(data)), "\(target)/\(name)")
                replayed += 1
            }
        }
        XCTAssertGreaterThanOrEqual(replayed, 4)
    }

    /// What the replayed traps now give, so the inputs keep testing the fix.
    func testTheTrapsNowGiveNumbers() throws {
        var c = ConsoleClassifier()
        let overflow = try Data(contentsOf: Self.directory.appendingPathComponent("console/callbacks-suppressed-sum-overflows"))
        c.feed(overflow.dropFirst())
        XCTAssertEqual(c.finish().smmuEventCount, Int.max)
        var tracker = SmmuTracker()
        _ = tracker.handle(message: "event 0xffffffffffffffff received:", line: 1)
        guard case .event(let e)? = tracker.flush().first else { return XCTFail("no event") }
        XCTAssertEqual(e.id, 0xFF)
        var trace = TraceCollector()
        trace.addPortLine("              sh-38      [000] .....     1.0e300: sched_process_fork: comm=sh pid=38 child_comm=sh child_pid=82")
        trace.addConsoleLine("sh-38        0d.... 1000us : sched_process_fork: comm=sh pid=38 child_comm=sh child_pid=82")
        XCTAssertEqual(trace.events.first?.ts, 1.0e300)
    }
}
