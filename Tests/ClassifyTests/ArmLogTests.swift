import Foundation
import Testing
import XCTest

@testable import Classify

/// Every arm64 log in testdata/arm64 against the expectations in its own header, one
/// test case per log so a failure names it. With `KHARNESS_UPDATE_TESTDATA=1` each header
/// is rewritten from what the classifier produces now instead (review with `git diff`).
@Suite("arm64 logs")
struct ArmLogTests {
    @Test("an arm64 log gives the reports and verdict its header expects", arguments: ArmLogs.names())
    func armLog(_ name: String) throws {
        let file = try ArmLogs.file(name)
        let want = try ArmLogExpectation(header: file)
        let analysis = ArmLogs.analyze(file.log)
        let outcome = decideOutcome(analysis: analysis, end: ArmLogs.runEnd(want.end), workload: "sva")

        if Testdata.updating {
            var next = file
            next.fields = want.updated(analysis: analysis, outcome: outcome).fields
            let url = Testdata.sourceDirectory.appendingPathComponent("testdata/arm64").appendingPathComponent(name)
            if try Testdata.write(next.rendered(), to: url) { print("updated \(url.path)") }
            return
        }

        #expect(
            analysis.reports.map { "\($0.category) | \($0.title)" } == want.reports.map { "\($0.category) | \($0.title)" },
            "\(name): reports")
        for (report, expected) in zip(analysis.reports, want.reports) {
            #expect(report.corrupted == expected.corrupted, "\(name): \(report.title) corrupted")
            if let frame = expected.guiltyFrame { #expect(report.guiltyFrame == frame, "\(name): \(report.title) guilty frame") }
            #expect(report.signature.count == 16, "\(name): \(report.title) signature")
        }
        // TITLE / ALT / CORRUPTED, checked as for the syzkaller corpus. The category is not
        // among them: KREPORT gives every report's category exactly.
        for result in FirstCrash.check(file, against: analysis, aspects: [.crash, .title, .corrupted]) {
            if let miss = result.miss { Issue.record(Comment(rawValue: "\(name) \(result.aspect.rawValue): \(miss)")) }
        }
        #expect(outcome.status.rawValue == want.status, "\(name): \(outcome.reason)")
        #expect(outcome.reason == want.reason, "\(name): reason")
        if let release = want.release { #expect(analysis.kernelRelease == release, "\(name): release") }
        #expect(analysis.bootBanners == want.bootBanners, "\(name): boot banners")
        if let scenarios = want.scenarios {
            #expect(
                Dictionary(uniqueKeysWithValues: analysis.scenarios.map { ($0.name, $0.status.rawValue) })
                    == Dictionary(uniqueKeysWithValues: scenarios.map { ($0.name, $0.status) }), "\(name): scenarios")
        }
        if let count = want.smmuEventCount { #expect(analysis.smmuEventCount == count, "\(name): SMMU event count") }
        if let events = want.smmuEvents {
            #expect(analysis.smmuEvents.count == events.count, "\(name): SMMU events")
            for (e, w) in zip(analysis.smmuEvents, events) {
                #expect(e.name == w.name, "\(name): SMMU event name")
                #expect(e.id == w.id, "\(name) \(w.name) id")
                #expect(e.streamID == w.streamID, "\(name) \(w.name) sid")
                #expect(e.substreamID == w.substreamID, "\(name) \(w.name) ssid")
                if let a = w.address { #expect(e.address == a, "\(name) \(w.name) address") }
                if let r = w.read { #expect(e.read == r, "\(name) \(w.name) read") }
                #expect(e.client == w.client, "\(name) \(w.name) client")
            }
        }
    }

    /// Only headed logs and the README are there: anything else (an expectations file
    /// beside the logs, a log under another suffix) would be checked by nothing.
    @Test func theDirectoryHoldsOnlyHeadedLogs() throws {
        let entries = try FileManager.default.contentsOfDirectory(atPath: ArmLogs.directory.path)
        #expect(entries.filter { !$0.hasSuffix(".log") && $0 != "README.md" } == [])
        #expect(ArmLogs.names().count >= 20)
    }

    /// The header parser reads the arm64 header format and writes it back unchanged.
    @Test func headerRoundTrip() throws {
        let header = """
            # a comment
            TITLE: KASAN: slab-use-after-free Read in f
            ALT: KASAN: use-after-free Read in f
            TYPE: KASAN-USE-AFTER-FREE-READ
            CORRUPTED: Y
            RUN-END: timeout:workload
            STATUS: FAIL
            REASON: KASAN: slab-use-after-free Read in f
            RELEASE: 6.1.0
            BOOT-BANNERS: 1
            KREPORT: kasan | KASAN: slab-use-after-free Read in f | corrupted | frame=f
            KREPORT: other | a | b title
            SCENARIO: sva-bind FAIL
            SMMU-EVENT-COUNT: 3
            SMMU-EVENT: F_TRANSLATION id=0x10 sid=0x8 ssid=0x1 address=0xffff8000 read=true client=0000:00:02.0
            SMMU-EVENT: C_BAD_CD id=0xa sid=0x8

            """
        let file = try TestdataFile.parse(Data(header.utf8))
        let e = try ArmLogExpectation(header: file)
        #expect(e.reports[0] == ArmLogExpectation.Report(category: "kasan", title: "KASAN: slab-use-after-free Read in f", corrupted: true, guiltyFrame: "f"))
        #expect(e.reports[1] == ArmLogExpectation.Report(category: "other", title: "a | b title"))
        #expect(e.smmuEvents?[0] == ArmLogExpectation.Event(name: "F_TRANSLATION", id: 16, streamID: 8, substreamID: 1, address: 0xffff_8000, read: true, client: "0000:00:02.0"))
        #expect(ArmLogs.runEnd(e.end) == RunEnd.timeout(phase: "workload"))
        #expect(e.fields == file.fields, "written back in the same order")
        for bad in ["STATUS: FAIL\n", "RUN-END: finished\nSTATUS: PASS\nREASON: r\nBOOT-BANNERS: 1\nSTAUTS: x\n",
                    "RUN-END: finished\nSTATUS: PASS\nREASON: r\nBOOT-BANNERS: 1\nCORRUPTED: Y\n",
                    "RUN-END: finished\nSTATUS: PASS\nSTATUS: FAIL\nREASON: r\nBOOT-BANNERS: 1\n"] {
            #expect(throws: ArmLogExpectation.HeaderError.self, "\(bad)") {
                try ArmLogExpectation(header: TestdataFile.parse(Data((bad + "\n").utf8)))
            }
        }
    }
}

/// Behaviour beyond the per-log headers, on the same arm64 logs.
final class ArmLogBehaviourTests: XCTestCase {
    /// The planted 2022 PASID bug's oops, recorded from a real 6.12 guest: the NULL
    /// dereference happens inside the slab allocator, and the title must name the driver
    /// function that called it, so the same bug hit from another allocation site is not
    /// merged with every other allocator crash.
    func testPlantedPasidOopsIsNamedByItsCallerNotTheAllocator() throws {
        let url = Bundle.module.resourceURL!.appendingPathComponent("testdata/traces/sva-6.12-planted-pasid-uaf.log")
        var classifier = ConsoleClassifier()
        classifier.feed(try Data(contentsOf: url))
        let oops = try XCTUnwrap(classifier.finish().reports.first { $0.category == .oops })
        XCTAssertTrue(oops.text.contains("pc : __kmalloc_node_noprof"), "the fault is in the allocator")
        XCTAssertEqual(oops.title, "BUG: unable to handle kernel NULL pointer dereference in sva_accel_pin")
        XCTAssertEqual(oops.guiltyFrame, "sva_accel_pin")
        XCTAssertFalse(oops.corrupted)
    }

    /// Chunking must not matter: one byte at a time gives the same analysis.
    func testByteAtATimeFeedingGivesTheSameAnalysis() throws {
        for name in ["kasan-uaf.log", "smmu-6.14.log", "interleaved-caller-id.log", "lockdep-circular.log"] {
            XCTAssertEqual(try ArmLogs.analyze(name, chunk: 1), try ArmLogs.analyze(name), name)
        }
    }

    /// Lines another CPU or task printed into a report (other printk caller id) stay out of it.
    func testCallerIDsKeepInterleavedLinesOutOfTheReport() throws {
        let analysis = try ArmLogs.analyze("interleaved-caller-id.log")
        let kasan = try XCTUnwrap(analysis.reports.first)
        XCTAssertFalse(kasan.text.contains("completion irq"))
        XCTAssertFalse(kasan.text.contains("segfault"))
        XCTAssertTrue(kasan.text.contains("arm_smmu_mm_release+0x3c/0xf0"))
        XCTAssertEqual(analysis.scenarios.first?.evidence, ["child 212 segfaulted"])
    }

    /// CRLF line endings (serial consoles), ANSI colours and NUL bytes change nothing.
    func testSerialConsoleNoiseChangesNothing() throws {
        let file = try ArmLogs.file("null-deref.log")
        var noisy = Data()
        for line in file.log.split(separator: 0x0A, omittingEmptySubsequences: false) {
            noisy.append(contentsOf: [0x1B] + Array("[0m".utf8))
            noisy.append(line)
            noisy.append(contentsOf: [0x00, 0x0D, 0x0A])
        }
        var classifier = ConsoleClassifier()
        classifier.feed(noisy)
        let analysis = classifier.finish()
        // The title is the header's, so a deliberate title change is an update of the header.
        XCTAssertEqual(analysis.reports.map(\.title), [try XCTUnwrap(file.title)])
        XCTAssertEqual(analysis.reports.first?.signature, ArmLogs.analyze(file.log).reports.first?.signature)
    }

    /// The same bug at other addresses, offsets, PIDs, CPUs, timestamps and line numbers
    /// keeps its signature.
    func testSignatureIgnoresAddressesPIDsCPUsTimestampsAndLineNumbers() throws {
        for name in ["kasan-uaf.log", "warning.log", "hung-task.log", "kernel-bug.log"] {
            let original = String(decoding: try ArmLogs.log(name), as: UTF8.self)
            var changed = original
            for (from, to) in [
                ("ffff0000c", "ffff0000d"), ("ffff80000a", "ffff80000b"), ("+0x", "+0x1"), ("PID: ", "PID: 9"),
                ("CPU: 1 PID", "CPU: 0 PID"), ("task 211", "task 377"), ("[   ", "[ 1"),
                ("mmap.c:3222", "mmap.c:3301"), ("iommu-sva.c:64", "iommu-sva.c:71"), ("sva-exit:241", "sva-exit:999"),
            ] {
                changed = changed.replacingOccurrences(of: from, with: to)
            }
            XCTAssertNotEqual(changed, original)
            var a = ConsoleClassifier()
            a.feed(Array(original.utf8))
            var b = ConsoleClassifier()
            b.feed(Array(changed.utf8))
            let ra = try XCTUnwrap(a.finish().reports.first, name)
            let rb = try XCTUnwrap(b.finish().reports.first, name)
            XCTAssertEqual(ra.title, rb.title, name)
            XCTAssertEqual(ra.signature, rb.signature, name)
        }
        // Different bugs differ.
        let sigs = try ["kasan-uaf.log", "warning.log", "hung-task.log", "kernel-bug.log", "refcount.log"]
            .map { try ArmLogs.analyze($0).reports.first?.signature }
        XCTAssertEqual(Set(sigs).count, sigs.count)
    }

    /// A report cut off by the end of the log is marked corrupted.
    func testCutOffReportIsCorrupted() throws {
        let text = String(decoding: try ArmLogs.log("null-deref.log"), as: UTF8.self)
        let cut = text.components(separatedBy: "\n").prefix(10).joined(separator: "\n")
        var classifier = ConsoleClassifier()
        classifier.feed(Array(cut.utf8))
        let report = try XCTUnwrap(classifier.finish().reports.first)
        XCTAssertEqual(report.category, .oops)
        XCTAssertTrue(report.corrupted)
    }
}
