import Classify
import Foundation
import XCTest
@testable import RunModel

/// result.json stays readable, and what is read is written back unchanged: the
/// typed record must not change the files runs already left behind.
final class RecordFormatTests: XCTestCase {
    /// result.json files recorded by real runs (one per way a run ends that the
    /// test machine produced; older ones without `unsuppressed_report_counts`).
    static func recorded() throws -> [(name: String, data: Data)] {
        let directory = try XCTUnwrap(Bundle.module.resourceURL).appendingPathComponent("testdata/results")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }.sorted()
        XCTAssertGreaterThanOrEqual(names.count, 8)
        return try names.map { ($0, try Data(contentsOf: directory.appendingPathComponent($0))) }
    }

    func testRecordedResultsDecodeAndEncodeToTheSameJSON() throws {
        for (name, data) in try Self.recorded() {
            let result = try JSONDecoder().decode(RunResult.self, from: data)
            XCTAssertFalse(result.end.isOther, "\(name): \(result.end)")
            let again = try result.json()
            let before = try JSONSerialization.jsonObject(with: data) as? NSDictionary
            let after = try JSONSerialization.jsonObject(with: again) as? NSDictionary
            XCTAssertNotNil(before, name)
            XCTAssertEqual(before, after, name)
            // The writer sorts keys and pretty-prints: the very bytes come back.
            XCTAssertEqual(String(decoding: again, as: UTF8.self), String(decoding: data, as: UTF8.self), name)
        }
    }

    func testRecordedEndsAreTyped() throws {
        var ends: [String: RunResult.End] = [:]
        for (name, data) in try Self.recorded() { ends[name] = try JSONDecoder().decode(RunResult.self, from: data).end }
        XCTAssertEqual(ends["finished-pass.json"], .finished)
        XCTAssertEqual(ends["timeout.json"], .timeout)
        XCTAssertEqual(ends["interrupted.json"], .interrupted)
        XCTAssertEqual(ends["infrastructure-build.json"], .infrastructure)
        XCTAssertEqual(ends["bad-input.json"], .badInput)
        XCTAssertEqual(ends["console-flood.json"], .consoleFlood)
    }

    /// A record from a harness that knew an end this one does not: readable, and
    /// written back with the same string.
    func testUnknownEndDecodesAndRoundTrips() throws {
        let (_, data) = try XCTUnwrap(Self.recorded().first { $0.name == "finished-pass.json" })
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        object["end"] = "guest-rebooted-itself"
        let result = try JSONDecoder().decode(RunResult.self, from: JSONSerialization.data(withJSONObject: object))
        XCTAssertEqual(result.end, .other("guest-rebooted-itself"))
        XCTAssertEqual(result.end.rawValue, "guest-rebooted-itself")
        let back = try XCTUnwrap(JSONSerialization.jsonObject(with: result.json()) as? [String: Any])
        XCTAssertEqual(back["end"] as? String, "guest-rebooted-itself")
        XCTAssertEqual(result.exitCode, ExitStatus.success, "a PASS is a PASS whatever the end")
    }

    /// The strings every end is recorded as, which old files and databases hold.
    func testEndStrings() throws {
        XCTAssertEqual(RunResult.End.known.map(\.rawValue), [
            "finished", "timeout", "interrupted", "infrastructure", "bad-input", "build-failed", "boot-failed",
            "console-flood", "trace-flood", "harness-died",
        ])
        for end in RunResult.End.known {
            XCTAssertEqual(RunResult.End(rawValue: end.rawValue), end)
            let encoded = try JSONEncoder().encode([end])
            XCTAssertEqual(String(decoding: encoded, as: UTF8.self), "[\"\(end.rawValue)\"]")
            XCTAssertEqual(try JSONDecoder().decode([RunResult.End].self, from: encoded), [end])
        }
        XCTAssertEqual(RunResult.End(rawValue: ""), .other(""))
    }

    /// What the runner records of the end it told the classifier.
    func testEndFromTheClassifiersEnd() {
        XCTAssertEqual(RunResult.End(RunEnd.guestFinished), .finished)
        XCTAssertEqual(RunResult.End(RunEnd.timeout(phase: "boot")), .timeout)
        XCTAssertEqual(RunResult.End(RunEnd.interrupted(signal: "SIGTERM")), .interrupted)
        XCTAssertEqual(RunResult.End(RunEnd.infrastructure("qemu died")), .infrastructure)
        XCTAssertEqual(RunResult.End(RunEnd.bootFailed("init never ran")), .bootFailed)
        XCTAssertEqual(RunResult.End(RunEnd.consoleFlood(limitBytes: 1)), .consoleFlood)
        XCTAssertEqual(RunResult.End(RunEnd.traceFlood(limitBytes: 1)), .traceFlood)
    }

    /// The provisional record a run writes first, built with the public initializer,
    /// has the keys the runner always wrote (optional ones absent).
    func testProvisionalRecordKeys() throws {
        let result = RunResult(runID: "r", status: .error, reason: "run did not finish", kernel: "debian:6.1",
                               machine: "stock", workload: "boot", end: .harnessDied, startedAt: "2026-12-05T00:00:00Z")
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: result.json()) as? [String: Any])
        XCTAssertEqual(Set(object.keys), [
            "run_id", "status", "reason", "evidence", "kernel", "machine", "workload", "end", "scenarios",
            "reports", "lifecycle_violations", "timings", "console_bytes", "started_at",
        ])
        XCTAssertEqual(object["end"] as? String, "harness-died")
        XCTAssertEqual(result.exitCode, ExitStatus.error)
    }
}

/// The exit codes, from the typed values only.
final class ExitStatusTests: XCTestCase {
    func result(_ status: RunStatus, _ end: RunResult.End, reason: String = "") -> RunResult {
        RunResult(runID: "r", status: status, reason: reason, kernel: "k", machine: "stock", workload: "boot",
                  end: end, startedAt: "")
    }

    func testRunExitCodes() {
        XCTAssertEqual(result(.pass, .finished).exitCode, 0)
        XCTAssertEqual(result(.skip, .finished).exitCode, 0)
        XCTAssertEqual(result(.miss, .finished).exitCode, 0)
        XCTAssertEqual(result(.fail, .timeout).exitCode, 1)
        XCTAssertEqual(result(.buildFail, .buildFailed).exitCode, 1)
        XCTAssertEqual(result(.error, .badInput).exitCode, 2)
        XCTAssertEqual(result(.error, .infrastructure).exitCode, 3)
        XCTAssertEqual(result(.error, .harnessDied).exitCode, 3)
        XCTAssertEqual(result(.error, .interrupted, reason: "interrupted by SIGINT").exitCode, 130)
        XCTAssertEqual(result(.error, .interrupted, reason: "interrupted by SIGTERM").exitCode, 143)
        XCTAssertEqual(result(.error, .interrupted, reason: "interrupted by SIGTERM; reports: 2").exitCode, 143)
    }

    func testInterruptingSignal() {
        XCTAssertEqual(result(.error, .interrupted, reason: "interrupted by SIGTERM").interruptingSignal, "SIGTERM")
        XCTAssertNil(result(.error, .infrastructure, reason: "interrupted by SIGTERM").interruptingSignal)
        XCTAssertNil(result(.error, .interrupted, reason: "something else").interruptingSignal)
    }

    func testSignalsAndErrors() {
        XCTAssertEqual(ExitStatus.interrupted(by: SIGINT), 130)
        XCTAssertEqual(ExitStatus.interrupted(by: SIGTERM), 143)
        XCTAssertEqual(ExitStatus.interrupted(bySignalNamed: "SIGTERM"), 143)
        XCTAssertEqual(ExitStatus.interrupted(bySignalNamed: "SIGINT"), 130)
        XCTAssertEqual(ExitStatus.of(.badInput), 2)
        XCTAssertEqual(ExitStatus.of(.infrastructure), 3)
    }
}
