import Foundation
import XCTest

@testable import Classify

/// arm64 console logs in the exact format kernels print, with the expected verdict,
/// reports and SMMU events in testdata/arm64/expected.json.
final class ArmLogTests: XCTestCase {
    static let directory = Bundle.module.resourceURL!.appendingPathComponent("testdata/arm64")

    struct Expectation: Decodable {
        struct Report: Decodable {
            var category: String
            var title: String
            var corrupted: Bool?
            var guiltyFrame: String?
        }
        struct Event: Decodable {
            var name: String
            var id: Int?
            var streamID: UInt32?
            var substreamID: UInt32?
            var address: UInt64?
            var read: Bool?
            var client: String?
        }
        var end: String
        var status: String
        var reason: String
        var release: String?
        var bootBanners: Int?
        var reports: [Report]
        var scenarios: [String: String]?
        var smmuEventCount: Int?
        var smmuEvents: [Event]?
    }

    static func expectations() throws -> [String: Expectation] {
        let data = try Data(contentsOf: directory.appendingPathComponent("expected.json"))
        return try JSONDecoder().decode([String: Expectation].self, from: data)
    }

    static func runEnd(_ text: String) -> RunEnd {
        if text.hasPrefix("timeout:") { return .timeout(phase: String(text.dropFirst(8))) }
        if text.hasPrefix("boot-failed:") { return .bootFailed(String(text.dropFirst(12))) }
        return .guestFinished
    }

    static func analyze(_ name: String, chunk: Int = 4096) throws -> ConsoleAnalysis {
        let data = try Data(contentsOf: directory.appendingPathComponent(name))
        var classifier = ConsoleClassifier()
        var offset = 0
        while offset < data.count {
            let end = min(offset + chunk, data.count)
            classifier.feed(data[offset..<end])
            offset = end
        }
        return classifier.finish()
    }

    func testEveryLogHasAnExpectation() throws {
        let logs = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path).filter { $0.hasSuffix(".log") }
        let expected = try Self.expectations()
        XCTAssertEqual(Set(logs), Set(expected.keys))
        XCTAssertGreaterThanOrEqual(logs.count, 20)
    }

    func testLogsGiveTheExpectedReportsAndVerdicts() throws {
        for (name, want) in try Self.expectations().sorted(by: { $0.key < $1.key }) {
            let analysis = try Self.analyze(name)
            let got = analysis.reports.map { "\($0.category) | \($0.title)" }
            XCTAssertEqual(got, want.reports.map { "\($0.category) | \($0.title)" }, name)
            for (report, expected) in zip(analysis.reports, want.reports) {
                XCTAssertEqual(report.corrupted, expected.corrupted ?? false, "\(name): \(report.title) corrupted")
                if let frame = expected.guiltyFrame { XCTAssertEqual(report.guiltyFrame, frame, name) }
                XCTAssertEqual(report.signature.count, 16, name)
            }
            let outcome = decideOutcome(analysis: analysis, end: Self.runEnd(want.end), workload: "sva")
            XCTAssertEqual(outcome.status.rawValue, want.status, "\(name): \(outcome.reason)")
            XCTAssertEqual(outcome.reason, want.reason, name)
            if let release = want.release { XCTAssertEqual(analysis.kernelRelease, release, name) }
            XCTAssertEqual(analysis.bootBanners, want.bootBanners ?? 1, name)
            if let scenarios = want.scenarios {
                XCTAssertEqual(
                    Dictionary(uniqueKeysWithValues: analysis.scenarios.map { ($0.name, $0.status.rawValue) }), scenarios, name)
            }
            if let count = want.smmuEventCount { XCTAssertEqual(analysis.smmuEventCount, count, name) }
            if let events = want.smmuEvents {
                XCTAssertEqual(analysis.smmuEvents.count, events.count, name)
                for (e, w) in zip(analysis.smmuEvents, events) {
                    XCTAssertEqual(e.name, w.name, name)
                    XCTAssertEqual(e.id, w.id, "\(name) \(w.name) id")
                    XCTAssertEqual(e.streamID, w.streamID, "\(name) \(w.name) sid")
                    XCTAssertEqual(e.substreamID, w.substreamID, "\(name) \(w.name) ssid")
                    if let a = w.address { XCTAssertEqual(e.address, a, "\(name) \(w.name) address") }
                    if let r = w.read { XCTAssertEqual(e.read, r, "\(name) \(w.name) read") }
                    XCTAssertEqual(e.client, w.client, "\(name) \(w.name) client")
                }
            }
        }
    }

    /// Chunking must not matter: one byte at a time gives the same analysis.
    func testByteAtATimeFeedingGivesTheSameAnalysis() throws {
        for name in ["kasan-uaf.log", "smmu-6.14.log", "interleaved-caller-id.log", "lockdep-circular.log"] {
            XCTAssertEqual(try Self.analyze(name, chunk: 1), try Self.analyze(name), name)
        }
    }

    /// Lines another CPU or task printed into a report (other printk caller id) stay out of it.
    func testCallerIDsKeepInterleavedLinesOutOfTheReport() throws {
        let analysis = try Self.analyze("interleaved-caller-id.log")
        let kasan = try XCTUnwrap(analysis.reports.first)
        XCTAssertFalse(kasan.text.contains("completion irq"))
        XCTAssertFalse(kasan.text.contains("segfault"))
        XCTAssertTrue(kasan.text.contains("arm_smmu_mm_release+0x3c/0xf0"))
        XCTAssertEqual(analysis.scenarios.first?.evidence, ["child 212 segfaulted"])
    }

    /// CRLF line endings (serial consoles), ANSI colours and NUL bytes change nothing.
    func testSerialConsoleNoiseChangesNothing() throws {
        let data = try Data(contentsOf: Self.directory.appendingPathComponent("null-deref.log"))
        var noisy = Data()
        for line in data.split(separator: 0x0A, omittingEmptySubsequences: false) {
            noisy.append(contentsOf: [0x1B] + Array("[0m".utf8))
            noisy.append(line)
            noisy.append(contentsOf: [0x00, 0x0D, 0x0A])
        }
        var classifier = ConsoleClassifier()
        classifier.feed(noisy)
        let analysis = classifier.finish()
        XCTAssertEqual(analysis.reports.map(\.title), ["Unable to handle kernel NULL pointer dereference in arm_smmu_write_ctx_desc"])
        XCTAssertEqual(analysis.reports.first?.signature, try Self.analyze("null-deref.log").reports.first?.signature)
    }

    /// The same bug at other addresses, offsets, PIDs, CPUs, timestamps and line numbers
    /// keeps its signature.
    func testSignatureIgnoresAddressesPIDsCPUsTimestampsAndLineNumbers() throws {
        for name in ["kasan-uaf.log", "warning.log", "hung-task.log", "kernel-bug.log"] {
            let original = try String(contentsOf: Self.directory.appendingPathComponent(name), encoding: .utf8)
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
            .map { try Self.analyze($0).reports.first?.signature }
        XCTAssertEqual(Set(sigs).count, sigs.count)
    }

    /// A report cut off by the end of the log is marked corrupted.
    func testCutOffReportIsCorrupted() throws {
        let text = try String(contentsOf: Self.directory.appendingPathComponent("null-deref.log"), encoding: .utf8)
        let cut = text.components(separatedBy: "\n").prefix(10).joined(separator: "\n")
        var classifier = ConsoleClassifier()
        classifier.feed(Array(cut.utf8))
        let report = try XCTUnwrap(classifier.finish().reports.first)
        XCTAssertEqual(report.category, "oops")
        XCTAssertTrue(report.corrupted)
    }
}
