import Classify
import Foundation
import KernelTestSupport
import RunModel
import XCTest

@testable import Harness

/// How a run reads the trace port's file, without a guest: a recorded clean
/// stream, the planted kernel's stream cut by its panic with the rest on the
/// console, and a hostile file.
final class GuestWatchTraceTests: XCTestCase {
    private var directory = ""

    override func setUp() async throws {
        directory = NSTemporaryDirectory() + "kharness-watch-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private static let traces = Checkout.root + "/Tests/ClassifyTests/testdata/traces"

    private func watch(console: Data, port: Data?) throws -> GuestWatch {
        try console.write(to: URL(fileURLWithPath: "\(directory)/console.log"))
        if let port { try port.write(to: URL(fileURLWithPath: "\(directory)/trace-port.log")) }
        return GuestWatch(request: RunRequest(kernel: .debian(version: "6.1")), consoleLog: "\(directory)/console.log",
                          traceLog: "\(directory)/trace-port.log", suppressions: Suppressions(), events: { _ in })
    }

    /// A whole clean stream: no violation, and the files a run keeps.
    func testCleanStream() async throws {
        let port = try Data(contentsOf: URL(fileURLWithPath: "\(Self.traces)/sva-6.12-clean-port.log"))
        let watch = try watch(console: Data("@@kharness begin baseline\n@@kharness done\n".utf8), port: port)
        _ = await watch.finish()
        XCTAssertTrue(watch.trace.complete)
        XCTAssertEqual(watch.lifecycle().violations, [])
        try Runner.keepTrace(watch.trace, in: directory)
        let jsonl = try String(contentsOfFile: "\(directory)/trace-events.jsonl", encoding: .utf8)
        XCTAssertEqual(jsonl.split(separator: "\n").count, watch.trace.events.count)
        XCTAssertTrue(try String(contentsOfFile: "\(directory)/trace.log", encoding: .utf8).hasPrefix("  "))
    }

    /// The guest's stream stops at the planted kernel's panic; the oops
    /// dump on the console has the free that names the failure.
    func testPanicSplitsTheTraceBetweenPortAndConsole() async throws {
        let console = try Data(contentsOf: URL(fileURLWithPath: "\(Self.traces)/sva-6.12-planted-pasid-uaf.log"))
        let records = String(decoding: console, as: UTF8.self).split(whereSeparator: \.isNewline)
            .filter { $0.contains("us : ") && TraceEvent.parse($0) != nil }
        // The first records reached the port before the panic (trace_pipe
        // consumed them, so they would not be in the dump).
        let streamed = records.prefix(20).map { line -> String in
            let event = TraceEvent.parse(line)!
            return "  kharness-sva-\(event.thread)  [000] .....  \(String(format: "%.6f", event.ts)): \(line[line.range(of: "us : ")!.upperBound...])"
        }
        let port = Data((["# kharness trace-begin"] + streamed).joined(separator: "\n").utf8 + [0x0a])
        let watch = try watch(console: console, port: port)
        _ = await watch.finish()
        XCTAssertFalse(watch.trace.complete)
        XCTAssertEqual(watch.trace.portLines.count, 20)
        XCTAssertEqual(watch.lifecycle().violations.first?.title, "PASID 1 freed while still bound to pid 85")
    }

    /// NUL bytes, escapes, megabyte lines and fake markers: bounded, no
    /// crash, and never a whole trace.
    func testHostilePortFile() async throws {
        var port = Data("# kharness trace-begin\n".utf8)
        port += Data(repeating: 0, count: 3 << 20)
        port += Data("\u{1b}[2J  x-1 [000] ..... 1.0: sva_accel_bind: pid=1 mm=0x1 pasid=1 ret=0\n".utf8)
        port += Data(repeating: UInt8(ascii: "A"), count: 5 << 20)
        port += Data("\n".utf8)
        let line = Data("  kharness-sva-83 [000] ..... 7.282940: sva_accel_unbind: pid=83 comm=kharness-sva bind_pid=83 mm=0xffff000000fec440 pasid=1 by=ioctl\n".utf8)
        for _ in 0..<(20 << 20) / line.count { port += line }
        port += Data("# kharness trace-end overruns=0\n".utf8)
        let watch = try watch(console: Data("@@kharness done\n".utf8), port: port)
        _ = await watch.finish()
        XCTAssertTrue(watch.trace.truncated)
        XCTAssertFalse(watch.trace.complete)
        XCTAssertLessThanOrEqual(watch.trace.text.utf8.count, GuestWatch.traceLimitBytes + 64)
        XCTAssertEqual(watch.lifecycle().violations, [])
    }

    private static let attacks = Checkout.root + "/Tests/ClassifyTests/testdata/attacks"

    /// The watcher ends the run at init's done line only, as the classifier reads it: a
    /// soft lockup naming a task "@@kharness done" is not one.
    func testDoneInsideAReportDoesNotEndTheRun() async throws {
        let console = try Data(contentsOf: URL(fileURLWithPath: "\(Self.attacks)/soft-lockup-comm-done.log"))
        let watch = try watch(console: console, port: nil)
        let analysis = await watch.finish()
        XCTAssertFalse(watch.sawDone)
        XCTAssertEqual(decideOutcome(analysis: analysis, end: .guestFinished, workload: "sva").reason, analysis.reports.first?.title)
    }

    /// What the guest prints after done is still read: a report there fails the run.
    func testReportAfterDoneIsRead() async throws {
        let console = try Data(contentsOf: URL(fileURLWithPath: "\(Self.attacks)/report-after-done.log"))
        let watch = try watch(console: console, port: nil)
        let analysis = await watch.finish()
        XCTAssertTrue(watch.sawDone)
        XCTAssertEqual(decideOutcome(analysis: analysis, end: .guestFinished, workload: "sva").status, .fail)
    }

    /// With a trace port, a console dump is believed only after a kernel report, and
    /// the console's hand-over markers never.
    func testForgedConsoleTraceIsIgnoredWithAPort() async throws {
        let port = try Data(contentsOf: URL(fileURLWithPath: "\(Self.traces)/sva-6.12-clean-port.log"))
        let console = try Data(contentsOf: URL(fileURLWithPath: "\(Self.attacks)/trace-forged-sections.console.log"))
        let watch = try watch(console: console, port: port)
        _ = await watch.finish()
        XCTAssertTrue(watch.trace.complete)
        XCTAssertFalse(watch.trace.untrusted)
        XCTAssertEqual(watch.trace.consoleLines, [])
    }
}
