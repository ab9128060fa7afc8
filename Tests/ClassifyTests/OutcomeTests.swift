import Foundation
import XCTest

@testable import Classify

/// The verdict rules of `decideOutcome` beyond the per-log expectations.
final class OutcomeTests: XCTestCase {
    func analysis(_ name: String) throws -> ConsoleAnalysis { try ArmLogs.analyze(name) }

    func testInfrastructureFailureIsErrorEvenWithAKernelReport() throws {
        let a = try analysis("kasan-uaf.log")
        let o = decideOutcome(analysis: a, end: .infrastructure("qemu-system-aarch64 exited with signal 9"), workload: "sva")
        XCTAssertEqual(o.status, .error)
        XCTAssertEqual(o.reason, "qemu-system-aarch64 exited with signal 9")
        XCTAssertTrue(o.evidence.contains { $0.contains("KASAN") }, "the report is kept as evidence")
    }

    func testImageNotAKernelIsErrorNotBootFailure() throws {
        let a = try analysis("no-kernel-output.log")
        let o = decideOutcome(analysis: a, end: .infrastructure("vmlinux.bin: not an arm64 kernel image"), workload: "sva")
        XCTAssertEqual(o.status, .error)
    }

    func testInterruptedIsError() throws {
        let o = decideOutcome(analysis: try analysis("boot-pass.log"), end: .interrupted(signal: "SIGINT"), workload: "sva")
        XCTAssertEqual(o, Outcome(status: .error, reason: "interrupted by SIGINT", evidence: o.evidence))
    }

    func testTimeoutWithoutKernelOutputIsBootFailure() throws {
        let o = decideOutcome(analysis: try analysis("no-kernel-output.log"), end: .timeout(phase: "boot"), workload: "sva")
        XCTAssertEqual(o.status, .fail)
        XCTAssertEqual(o.reason, "boot failure: no kernel output")
    }

    func testBootFailedWithPanicNamesThePanic() throws {
        let o = decideOutcome(analysis: try analysis("panic-rootfs.log"), end: .bootFailed("init never ran"), workload: "sva")
        // The panic's title is the log header's, so a deliberate title change is an update of the header.
        XCTAssertEqual(o.reason, "boot failure: " + (try XCTUnwrap(ArmLogs.file("panic-rootfs.log").title)))
        let clean = decideOutcome(analysis: try analysis("timeout.log"), end: .bootFailed("init never ran"), workload: "sva")
        XCTAssertEqual(clean.reason, "boot failure: init never ran")
    }

    func testGuestStoppingBeforeDoneIsFail() throws {
        let o = decideOutcome(analysis: try analysis("timeout.log"), end: .guestFinished, workload: "sva")
        XCTAssertEqual(o.status, .fail)
        XCTAssertTrue(o.reason.hasPrefix("guest stopped before @@kharness done; last console line: "), o.reason)
    }

    /// A guest that floods its trace port is stopped and fails, like one
    /// that floods its console.
    func testTraceFloodIsFail() throws {
        let o = decideOutcome(analysis: try analysis("boot-pass.log"), end: .traceFlood(limitBytes: 64 << 20), workload: "sva")
        XCTAssertEqual(o.status, .fail)
        XCTAssertEqual(o.reason, "trace flood: the guest wrote more than 64 MiB to its trace port")
    }

    func testDoneWithoutScenariosIsMissForAWorkloadButPassForBoot() {
        var c = ConsoleClassifier()
        c.feed(Array("[    0.000000] Booting Linux on physical CPU 0x0\n@@kharness done\n".utf8))
        let a = c.finish()
        XCTAssertEqual(decideOutcome(analysis: a, end: .guestFinished, workload: "sva").status, .miss)
        XCTAssertEqual(decideOutcome(analysis: a, end: .guestFinished, workload: "boot").status, .pass)
    }

    func testSuppressedReportDoesNotFailTheRun() throws {
        let file = try ArmLogs.file("warning.log")
        let data = file.log
        let title = try XCTUnwrap(file.title)
        let rules = try Suppressions.parse(
            """
            # QEMU quirk, not our bug
            - title: "\(title)"
              kernel: "6.1.*"
              reason: known
            """, source: "test.yaml")
        var c = ConsoleClassifier(suppressions: rules)
        c.feed(data)
        let a = c.finish()
        XCTAssertEqual(a.reports.map(\.suppressed), [true])
        XCTAssertEqual(decideOutcome(analysis: a, end: .guestFinished, workload: "sva").status, .pass)
        XCTAssertEqual(decideLogOutcome(analysis: a).status, .pass)
        XCTAssertEqual(decideLogOutcome(analysis: a).reason, "only suppressed reports")
    }

    func testLogOutcomeForBareLogs() throws {
        XCTAssertEqual(decideLogOutcome(analysis: try analysis("kasan-uaf.log")).status, .fail)
        XCTAssertEqual(decideLogOutcome(analysis: try analysis("timeout.log")).status, .fail, "scenario began, no result")
        XCTAssertEqual(decideLogOutcome(analysis: try analysis("skip.log")).status, .skip)
        var c = ConsoleClassifier()
        c.feed(Array("some log from anywhere\nwithout any kernel banner\n".utf8))
        XCTAssertEqual(decideLogOutcome(analysis: c.finish()), Outcome(status: .pass, reason: "no kernel reports", evidence: []))
    }
}

final class SuppressionTests: XCTestCase {
    func report(_ title: String, signature: String = "0123456789abcdef") -> KernelReport {
        KernelReport(category: .warning, title: title, signature: signature, guiltyFrame: nil, text: "", corrupted: false)
    }

    func testRulesMatchByTitleGlobSignatureKernelAndMachine() throws {
        let s = try Suppressions.parse(
            """
            - title: "WARNING in foo"
            - title: "INFO: rcu detected stall in *"
              machine: "tcg-*"
            - signature: "aaaaaaaaaaaaaaaa"
              kernel: "6.1.*"
            """, source: "s.yaml", machine: "tcg-2cpu")
        XCTAssertNotNil(s.rule(for: report("WARNING in foo"), kernel: nil))
        XCTAssertNil(s.rule(for: report("WARNING in foobar"), kernel: nil))
        XCTAssertNotNil(s.rule(for: report("INFO: rcu detected stall in bar"), kernel: nil))
        XCTAssertNil(Suppressions(rules: s.rules, machine: "kvm").rule(for: report("INFO: rcu detected stall in bar"), kernel: nil))
        XCTAssertNotNil(s.rule(for: report("x", signature: "aaaaaaaaaaaaaaaa"), kernel: "6.1.5"))
        XCTAssertNil(s.rule(for: report("x", signature: "aaaaaaaaaaaaaaaa"), kernel: "6.14.0"))
        XCTAssertNil(s.rule(for: report("x", signature: "aaaaaaaaaaaaaaaa"), kernel: nil))
    }

    func testBadFilesGiveOneLineErrorsNamingTheFile() {
        let cases = [
            "- title: [unclosed": "invalid YAML",
            "title: x": "expected a list of rules",
            "- kernel: 6.1": "needs 'title' or 'signature'",
            "- titel: x": "unknown key 'titel'",
            "- just text": "expected keys",
        ]
        for (text, fragment) in cases {
            XCTAssertThrowsError(try Suppressions.parse(text, source: "supp.yaml")) { error in
                let message = "\(error)"
                XCTAssertTrue(message.hasPrefix("supp.yaml: "), message)
                XCTAssertTrue(message.contains(fragment), message)
                XCTAssertFalse(message.contains("\n"), message)
            }
        }
        XCTAssertThrowsError(try Suppressions.load(path: "/nonexistent/supp.yaml")) {
            XCTAssertEqual("\($0)", "/nonexistent/supp.yaml: cannot read suppression file")
        }
        XCTAssertEqual(try Suppressions.parse("", source: "empty.yaml").rules, [])
        XCTAssertEqual(try Suppressions.parse("# only a comment\n", source: "c.yaml").rules, [])
    }
}

final class SmmuDecodeTests: XCTestCase {
    /// Record fields per the SMMUv3 event record layout.
    func testRawRecordDecoding() {
        let e = Smmu.decode(raw: [0x0000_0042_0012_3810, 0x0000_0000_0000_0000, 0xFFFF_0000_1234_5000, 0], line: 1)
        XCTAssertEqual(e.name, "F_TRANSLATION")
        XCTAssertEqual(e.streamID, 0x42)
        XCTAssertEqual(e.substreamID, 0x123)
        XCTAssertEqual(e.address, 0xFFFF_0000_1234_5000)
        XCTAssertEqual(e.read, false)
        let noSSV = Smmu.decode(raw: [0x0000_0007_0000_0004, 0, 0, 0], line: 1)
        XCTAssertEqual(noSSV.name, "C_BAD_STE")
        XCTAssertEqual(noSSV.streamID, 7)
        XCTAssertNil(noSSV.substreamID)
        XCTAssertEqual(Smmu.decode(raw: [0x2], line: 1).name, "C_BAD_STREAMID")
        XCTAssertEqual(Smmu.decode(raw: [0xE3], line: 1).name, "IMPDEF_EVENT_0xe3")
        XCTAssertEqual(Smmu.decode(raw: [0x7F], line: 1).name, "UNKNOWN(0x7f)")
        let s2 = Smmu.decode(raw: [0x13, 1 << 39, 0x8000, 0x0000_0000_4567_8000], line: 1)
        XCTAssertEqual(s2.name, "F_PERMISSION")
        XCTAssertEqual(s2.ipa, 0x4567_8000)
        let fetch = Smmu.decode(raw: [0x09, 0, 0, 0x0000_0000_8000_1000], line: 1)
        XCTAssertEqual(fetch.name, "F_CD_FETCH")
        XCTAssertEqual(fetch.address, 0x8000_1000)
    }

    func testDecodedLineOnlyAndUnassignedClient() {
        var c = ConsoleClassifier()
        c.feed(Array("""
            [    0.000000] Booting Linux on physical CPU 0x0
            [    5.000000] arm-smmu-v3 arm-smmu-v3.0.auto: event: C_BAD_STREAMID client: (unassigned sid) sid: 0x99 ssid: 0x0
            [    5.100000] arm-smmu-v3 arm-smmu-v3.0.auto: event: F_CD_FETCH client: 0000:00:02.0 sid: 0x10 ssid: 0x3 fetch_addr: 0x80001000
            [    6.000000] virtio_blk virtio1: [vda] 2048 512-byte logical blocks

            """.utf8))
        let a = c.finish()
        XCTAssertEqual(a.smmuEvents.map(\.name), ["C_BAD_STREAMID", "F_CD_FETCH"])
        XCTAssertEqual(a.smmuEvents[0].client, "(unassigned sid)")
        XCTAssertEqual(a.smmuEvents[0].streamID, 0x99)
        XCTAssertEqual(a.smmuEvents[1].address, 0x8000_1000)
        XCTAssertEqual(a.smmuEvents[1].substreamID, 3)
        XCTAssertEqual(a.reports.map(\.title), ["arm-smmu-v3: C_BAD_STREAMID event", "arm-smmu-v3: F_CD_FETCH event"])
    }
}
