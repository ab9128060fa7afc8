import Foundation
import XCTest

@testable import Classify

/// Crafted logs in testdata/attacks, each named by what it attacks (its first line says
/// what and the verdict a kernel developer wants): the guest and everything it prints are
/// untrusted, and none of them may turn a FAIL into a PASS or crash the harness.
final class AttackTests: XCTestCase {
    static let directory = Bundle.module.resourceURL!.appendingPathComponent("testdata/attacks")

    static func bytes(_ name: String) throws -> Data {
        try Data(contentsOf: directory.appendingPathComponent(name))
    }

    static func analyze(_ name: String, suppressions: Suppressions = Suppressions()) throws -> ConsoleAnalysis {
        var classifier = ConsoleClassifier(suppressions: suppressions)
        classifier.feed(try bytes(name))
        return classifier.finish()
    }

    static func lines(_ name: String) throws -> [String] {
        String(decoding: try bytes(name), as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// The title the classifier gives the Oops all the attack logs end in, classified alone:
    /// the attacks assert that it, not something else, decides the verdict (and stay
    /// right whatever the title rules become).
    func oopsTitle() throws -> String {
        let text = String(decoding: try Self.bytes("report-after-done.log"), as: UTF8.self)
        var classifier = ConsoleClassifier()
        classifier.feed(Array(text[text.range(of: "[   17.412301]")!.lowerBound...].utf8))
        let reports = classifier.finish().reports
        XCTAssertEqual(reports.count, 1)
        return try XCTUnwrap(reports.first?.title)
    }

    static let timerWarning = "WARNING in arch_timer_check_ool_workaround"

    func rules(_ yaml: String) throws -> Suppressions { try Suppressions.parse(yaml, source: "attack.yaml") }

    func testSuppressedWarningsDoNotHideALaterOops() throws {
        let oops = try oopsTitle()
        for yaml in ["- title: \"WARNING in arch_timer_*\"", "- title: \"\(Self.timerWarning)\"\n  kernel: \"6.1.*\""] {
            let a = try Self.analyze("suppressed-warnings-hide-oops.log", suppressions: try rules(yaml))
            XCTAssertEqual(a.reportsDropped, 1, yaml)
            XCTAssertEqual(a.reports.count, ConsoleClassifier.maxStoredReports + 1, "the 64 texts and the deciding one")
            XCTAssertEqual(a.unsuppressedReportCount, 1, yaml)
            XCTAssertEqual(a.reports.last?.title, oops)
            XCTAssertFalse(a.reports.last?.suppressed ?? true)
            let o = decideOutcome(analysis: a, end: .guestFinished, workload: "sva")
            XCTAssertEqual(o.status, .fail, yaml)
            XCTAssertEqual(o.reason, oops, yaml)
            XCTAssertEqual(decideLogOutcome(analysis: a).reason, oops, yaml)
        }
        // A rule for another kernel suppresses nothing: every report counts, the first names it.
        let a = try Self.analyze("suppressed-warnings-hide-oops.log",
                                 suppressions: try rules("- title: \"\(Self.timerWarning)\"\n  kernel: \"5.*\""))
        XCTAssertEqual(a.unsuppressedReportCount, 65)
        XCTAssertEqual(a.unsuppressedReportCounts[a.reports[0].category.rawValue], 64)
        let o = decideOutcome(analysis: a, end: .guestFinished, workload: "sva")
        XCTAssertEqual(o.reason, Self.timerWarning)
        XCTAssertTrue(o.evidence.contains { $0.hasPrefix("65 unsuppressed kernel report(s) in all") }, "\(o.evidence)")
    }

    /// Reports past the stored ones are judged with the release learnt after them.
    func testReportsPastTheCapAreJudgedWithTheFinalRelease() throws {
        let text = String(decoding: try Self.bytes("suppressed-warning-storm.log"), as: UTF8.self)
            .split(separator: "\n").filter { !$0.contains("Linux version") && !$0.contains("@@kharness release") }
            .joined(separator: "\n") + "\n@@kharness release 6.1.0-kharness\n"
        for (kernel, status) in [("6.1.*", RunStatus.pass), ("6.2.*", .fail)] {
            var c = ConsoleClassifier(suppressions: try rules("- title: \"\(Self.timerWarning)\"\n  kernel: \"\(kernel)\""))
            c.feed(Array(text.utf8))
            let a = c.finish()
            XCTAssertGreaterThan(a.reportsDropped, 0)
            XCTAssertEqual(decideLogOutcome(analysis: a).status, status, kernel)
        }
    }

    func testSuppressedStormPassesAndIsCounted() throws {
        let a = try Self.analyze("suppressed-warning-storm.log", suppressions: try rules("- title: \"\(Self.timerWarning)\""))
        XCTAssertEqual(a.reports.count, ConsoleClassifier.maxStoredReports)
        XCTAssertEqual(a.reportsDropped, 36)
        XCTAssertEqual(a.unsuppressedReportCount, 0)
        XCTAssertEqual(decideOutcome(analysis: a, end: .guestFinished, workload: "sva"),
                       Outcome(status: .pass, reason: "1 scenario(s) passed", evidence: ["baseline"]))
    }

    func testScenarioFailuresTakeNoKernelReportSlot() throws {
        let a = try Self.analyze("scenario-fails-then-oops.log")
        XCTAssertEqual(a.reports.filter { !$0.isKernelReport }.count, 64)
        XCTAssertEqual(a.reportsDropped, 0)
        let o = decideOutcome(analysis: a, end: .guestFinished, workload: "sva")
        XCTAssertEqual(o, Outcome(status: .fail, reason: try oopsTitle(), evidence: o.evidence))
    }

    func testAFailurePastTheScenarioCapIsNotAPass() throws {
        let a = try Self.analyze("scenario-fail-past-the-cap.log")
        XCTAssertEqual(a.scenarios.count, ConsoleClassifier.maxScenarios)
        XCTAssertEqual(a.scenariosDropped, 3)
        XCTAssertEqual(decideOutcome(analysis: a, end: .guestFinished, workload: "sva").reason,
                       "the workload announced more than 256 scenarios")
        XCTAssertEqual(decideLogOutcome(analysis: a).status, .fail)
    }

    func testFailThenPassStaysFail() throws {
        let a = try Self.analyze("fail-then-pass.log")
        XCTAssertEqual(a.scenarios.map(\.status), [.fail])
        XCTAssertEqual(a.reports.map(\.title), ["workload failure in nginx"])
        XCTAssertEqual(decideOutcome(analysis: a, end: .guestFinished, workload: "sva").reason, "nginx: canary page changed")
        XCTAssertEqual(decideLogOutcome(analysis: a).status, .fail)
    }

    func testSoftLockupNamingAProtocolLineStaysAReport() throws {
        let a = try Self.analyze("soft-lockup-comm-done.log")
        XCTAssertFalse(a.sawDone)
        XCTAssertEqual(a.reports.count, 1)
        let o = decideOutcome(analysis: a, end: .guestFinished, workload: "sva")
        XCTAssertEqual(o.status, .fail)
        XCTAssertEqual(o.reason, a.reports[0].title)
        XCTAssertTrue(o.reason.contains("soft lockup"), o.reason)
    }

    func testProtocolTextInsideALineIsNotProtocol() throws {
        let a = try Self.analyze("protocol-mid-line.log")
        XCTAssertFalse(a.sawDone)
        XCTAssertEqual(a.kernelRelease, "6.1.0-kharness")
        XCTAssertEqual(a.scenarios.map(\.status), [.miss])
        XCTAssertTrue(decideOutcome(analysis: a, end: .guestFinished, workload: "sva").reason
            .hasPrefix("guest stopped before @@kharness done"))
        XCTAssertEqual(decideLogOutcome(analysis: a).reason, "baseline: began but gave no result")
        XCTAssertNil(ConsoleClassifier.protocolMessage("x @@kharness done"))
        XCTAssertEqual(ConsoleClassifier.protocolMessage("\u{1B}[1;31m@@kharness done"), "done")
        XCTAssertNil(ConsoleClassifier.protocolMessage("[   1.0] @@kharness done"), "the kernel's log")
        XCTAssertEqual(ConsoleClassifier.protocolMessage("@@kharness exit 0"), "exit 0")
    }

    func testKernelMessagesStartingWithATaskNameAreNotProtocol() throws {
        let a = try Self.analyze("kernel-log-line-as-protocol.log")
        XCTAssertFalse(a.sawDone)
        XCTAssertEqual(a.scenarios.map(\.status), [.miss])
        XCTAssertNil(a.workloadExitStatus)
        XCTAssertTrue(decideOutcome(analysis: a, end: .guestFinished, workload: "sva").reason
            .hasPrefix("guest stopped before @@kharness done"))
    }

    func testOnlyTheFirstReleaseCounts() throws {
        let a = try Self.analyze("release-override.log",
                                 suppressions: try rules("- title: \"\(Self.timerWarning)\"\n  kernel: \"5.10.*\""))
        XCTAssertEqual(a.kernelRelease, "6.1.0-kharness")
        XCTAssertEqual(decideOutcome(analysis: a, end: .guestFinished, workload: "sva").reason, Self.timerWarning)
    }

    func testWorkloadThatExitedNonZeroFails() throws {
        let a = try Self.analyze("workload-exit-nonzero.log")
        XCTAssertEqual(a.workloadExitStatus, 137)
        XCTAssertEqual(decideOutcome(analysis: a, end: .guestFinished, workload: "sva").reason, "workload exited with status 137")
        XCTAssertEqual(decideLogOutcome(analysis: a).status, .fail)
    }

    func testRequestedScenarioThatNeverReportedFails() throws {
        let a = try Self.analyze("requested-scenario-missing.log")
        let asked = RunExpectations(workload: "sva", scenarios: ["baseline", "nginx"])
        XCTAssertEqual(decideOutcome(analysis: a, end: .guestFinished, expected: asked).reason, "nginx: requested but never reported")
        XCTAssertEqual(decideOutcome(analysis: a, end: .guestFinished, workload: "sva").status, .pass)
    }

    func testDeviceThatDidNotProbeFailsOnAMachineThatHasIt() throws {
        let a = try Self.analyze("probe-failed-all-skip.log")
        let sva = RunExpectations(workload: "sva", machineHasDevice: true)
        let o = decideOutcome(analysis: a, end: .guestFinished, expected: sva)
        XCTAssertEqual(o.status, .fail)
        XCTAssertTrue(o.reason.hasPrefix("sva-accel at 0000:00:04.0 has no driver"), o.reason)
        XCTAssertEqual(decideOutcome(analysis: a, end: .guestFinished, workload: "sva").status, .skip)
        XCTAssertEqual(decideLogOutcome(analysis: a).status, .skip)
    }

    func testCallbackCountsThatOverflowSaturate() throws {
        let a = try Self.analyze("callbacks-suppressed-overflow.log")
        XCTAssertEqual(a.smmuEventCount, Int.max)
        XCTAssertEqual(decideLogOutcome(analysis: a).reason, "arm-smmu-v3: event storm")
    }

    func testHugeSmmuNumbersDoNotTrap() throws {
        let a = try Self.analyze("smmu-huge-event-id.log")
        XCTAssertEqual(a.smmuEvents.first?.name, "UNKNOWN(0xff)")
        XCTAssertEqual(a.smmuEvents.first?.raw, [UInt64.max])
        XCTAssertEqual(decideLogOutcome(analysis: a).status, .fail)
    }

    func testReportAfterDoneCounts() throws {
        let a = try Self.analyze("report-after-done.log")
        XCTAssertTrue(a.sawDone)
        XCTAssertEqual(decideOutcome(analysis: a, end: .guestFinished, workload: "sva").reason, try oopsTitle())
    }

    // MARK: - Trace

    func testForgedConsoleSectionsAreIgnoredWithAPort() throws {
        var trace = TraceCollector(hasPort: true)
        for line in try Self.lines("trace-forged-clock-marker.port.log") { trace.addPortLine(line) }
        for line in try Self.lines("trace-forged-sections.console.log") { trace.addConsoleLine(line, afterKernelDied: false) }
        XCTAssertTrue(trace.complete, "a console line cannot claim lost events")
        XCTAssertEqual(trace.overruns, 0)
        XCTAssertFalse(trace.untrusted)
        XCTAssertFalse(trace.events.contains { $0.kind == .pasidFree })
        XCTAssertEqual(trace.dumpClockOffset, 9.1, "the second clock marker is a workload's")
        // Without a port the console is the channel: believed, and said to be untrusted.
        var fallback = TraceCollector()
        for line in try Self.lines("trace-forged-sections.console.log") { fallback.addConsoleLine(line) }
        XCTAssertTrue(fallback.untrusted)
        XCTAssertEqual(fallback.overruns, 1)
    }

    func testHugeTraceNumbersDoNotTrap() throws {
        var trace = TraceCollector(hasPort: true)
        for line in try Self.lines("trace-huge-timestamps.port.log") { trace.addPortLine(line) }
        for line in try Self.lines("trace-huge-timestamps.console.log") { trace.addConsoleLine(line) }
        XCTAssertEqual(trace.overruns, Int.max)
        XCTAssertFalse(trace.complete)
        var oracle = PasidLifecycleOracle()
        for event in trace.events { oracle.observe(event) }
        oracle.finish(complete: true)
        for event in trace.events { _ = event.jsonLine }
        XCTAssertTrue(trace.untrusted, "the dump's records came from the console")
    }
}
