import Foundation
import XCTest

@testable import Classify

/// The trace parser and the channel merger over traces recorded from real
/// guests here (6.12 on the SVA machine): the console hand-over format, the
/// `ftrace_dump_on_oops` format of a planted kernel's panic, and a
/// `trace_pipe` stream from the virtio trace port.
final class TraceEventTests: XCTestCase {
    static let directory = Bundle.module.resourceURL!.appendingPathComponent("testdata/traces")

    static func lines(_ file: String) throws -> [String] {
        let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
        // The console's lines end in CR LF (one Character in Swift).
        return text.split(whereSeparator: \.isNewline).map(String.init)
    }

    func testTraceFormatRecords() throws {
        let fork = try XCTUnwrap(TraceEvent.parse(
            "              sh-38      [000] .....     7.203349: sched_process_fork: comm=sh pid=38 child_comm=sh child_pid=82"))
        XCTAssertEqual(fork.kind, .fork)
        XCTAssertEqual(fork.ts, 7.203349)
        XCTAssertEqual(fork.pid, 38)
        XCTAssertEqual(fork.child, 82)
        XCTAssertEqual(fork.comm, "sh")

        let bind = try XCTUnwrap(TraceEvent.parse(
            "    kharness-sva-83      [000] .N...     7.235876: sva_accel_bind: pid=83 comm=kharness-sva mm=0xffff000000fec440 pasid=1 mode=sva ret=0"))
        XCTAssertEqual(bind.kind, .bind)
        XCTAssertEqual(bind.pid, 83)
        XCTAssertEqual(bind.pasid, 1)
        XCTAssertEqual(bind.mm, "0xffff000000fec440")
        XCTAssertEqual(bind.comm, "kharness-sva")

        // A kworker's name holds a colon and a slash; the PASID is the kprobe's argument.
        let free = try XCTUnwrap(TraceEvent.parse(
            "     kworker/0:0-8       [000] D....     7.315958: free_global_pasid: (iommu_free_global_pasid+0x0/0x48) comm=\"kworker/0:0\" pasid=1"))
        XCTAssertEqual(free.kind, .pasidFree)
        XCTAssertEqual(free.pid, 8)
        XCTAssertEqual(free.comm, "kworker/0:0")
        XCTAssertEqual(free.pasid, 1)

        let alloc = try XCTUnwrap(TraceEvent.parse(
            "    kharness-sva-83      [000] d....     7.234979: alloc_global_pasid_ret: (iommu_sva_bind_device+0xf0/0x2f8 <- iommu_alloc_global_pasid) ret=0x1"))
        XCTAssertEqual(alloc.kind, .pasidAlloc)
        XCTAssertEqual(alloc.pasid, 1)
        XCTAssertEqual(alloc.thread, 83)
        // An allocation that failed returned a negative errno: no PASID.
        XCTAssertNil(TraceEvent.parse(
            "    kharness-sva-83      [000] d....     7.234979: alloc_global_pasid_ret: (iommu_sva_bind_device+0xf0/0x2f8 <- iommu_alloc_global_pasid) ret=0xffffffffffffffe4"))
        // 6.1: iommu_sva_alloc_pasid returns 0 for success; the PASID is ioasid_alloc's.
        XCTAssertNil(TraceEvent.parse(
            "    kharness-sva-62      [000] .N...     1.156745: sva_alloc_pasid_ret: (arm_smmu_sva_bind+0x150/0x6cc <- iommu_sva_alloc_pasid) ret=0x0"))
        XCTAssertEqual(TraceEvent.parse(
            "    kharness-sva-62      [000] .N...     1.156426: ioasid_alloc_ret: (iommu_sva_alloc_pasid+0xa0/0xc0 <- ioasid_alloc) ret=0x1")?.pasid, 1)

        let refused = try XCTUnwrap(TraceEvent.parse(
            "    kharness-sva-90      [000] .....     9.0: sva_accel_bind: pid=90 comm=kharness-sva mm=0xffff000000fec440 pasid=-1 mode=sva ret=-16"))
        XCTAssertEqual(refused.kind, .bindRefused)
        XCTAssertNil(refused.pasid)
        XCTAssertEqual(refused.ret, -16)

        let job = try XCTUnwrap(TraceEvent.parse(
            "    kharness-sva-83      [000] .N...     7.249376: sva_accel_job: pid=83 bind_pid=83 mm=0xffff000000fec440 pasid=1 op=1 len=1 status=0x2 result=0x1 fault_addr=0x0"))
        XCTAssertEqual(job.kind, .job)
        XCTAssertEqual(job.ret, 2)
        XCTAssertEqual(job.bindPid, 83)
    }

    func testOopsDumpFormatRecords() throws {
        // The dump cuts the task name to 8 characters and prints microseconds.
        let drop = try XCTUnwrap(TraceEvent.parse(
            "[    6.344666] kharness-82        0d.... 5522993us : mm_pasid_drop: (mm_pasid_drop+0x0/0x40) comm=\"sh\" mm=0xffff000000fed100"))
        XCTAssertEqual(drop.kind, .mmPasidDrop)
        XCTAssertEqual(drop.ts, 5.522993, accuracy: 1e-9)
        XCTAssertEqual(drop.pid, 82)
        XCTAssertEqual(drop.mm, "0xffff000000fed100")
        XCTAssertEqual(drop.comm, "sh")
        let mmdrop = try XCTUnwrap(TraceEvent.parse(
            "[    6.374144] kworker/-8         0D.... 5609012us : mmdrop: (__mmdrop+0x0/0x128) comm=\"kworker/0:0\" mm=0xffff000000fed100"))
        XCTAssertEqual(mmdrop.kind, .mmDrop)
        XCTAssertEqual(mmdrop.pid, 8)
    }

    func testLinesThatAreNotRecords() {
        for line in [
            "", "sva_accel_bind: pasid=", "free_global_pasid", "random pasid=7: text",
            "@@kharness evidence baseline bind pid=83 pasid=1 mode=sva mm=0xffff000000fed100",
            "[    6.341446] ---------------------------------",
            "# tracer: nop",
            "              sh-38      [000] .....     7.203349: sched_process_fork: comm=sh",
            "    x-1 [000] ..... nan.: sva_accel_bind: pid=1 ret=0",
            "    x-1 [000] ..... 1.0: sched_switch: prev_comm=a prev_pid=1",
            String(repeating: "a-1 [000] ..... 1.0: mmdrop: mm=0x1 ", count: 200),
        ] {
            XCTAssertNil(TraceEvent.parse(line), line)
        }
    }

    /// The JSON form is read by the HTML report: exactly these keys.
    func testJSONLineKeys() throws {
        let fork = try XCTUnwrap(TraceEvent.parse(
            "              sh-38      [000] .....     7.203349: sched_process_fork: comm=sh pid=38 child_comm=sh child_pid=82"))
        XCTAssertEqual(fork.jsonLine, #"{"child":82,"comm":"sh","event":"fork","pid":38,"ts":7.203349}"#)
        let bind = try XCTUnwrap(TraceEvent.parse(
            "    kharness-sva-83      [000] .N...     7.235876: sva_accel_bind: pid=83 comm=kharness-sva mm=0xffff000000fec440 pasid=1 mode=sva ret=0"))
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bind.jsonLine.utf8)) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["ts", "pid", "comm", "event", "pasid", "mm"])
        XCTAssertEqual(object["mm"] as? String, "0xffff000000fec440")
        XCTAssertEqual(object["event"] as? String, "bind")
    }

    /// The console hand-over of a clean run: a whole trace, in order.
    func testCleanConsoleTrace() throws {
        var trace = TraceCollector()
        for line in try Self.lines("sva-6.12-clean.log") { trace.addConsoleLine(line) }
        XCTAssertTrue(trace.complete)
        let events = trace.events
        let raw = try Self.lines("sva-6.12-clean.log")
        XCTAssertEqual(events.filter { $0.kind == .bind }.count, raw.filter { $0.contains("sva_accel_bind: ") }.count)
        XCTAssertEqual(events.filter { $0.kind == .pasidFree }.count, raw.filter { $0.contains("free_global_pasid: ") }.count)
        XCTAssertEqual(events.filter { $0.kind == .fork }.count, raw.filter { $0.contains("sched_process_fork: ") }.count)
        XCTAssertEqual(zip(events, events.dropFirst()).filter { $0.ts > $1.ts }.count, 0)
        XCTAssertFalse(trace.text.contains("@@kharness"))
        XCTAssertFalse(trace.text.contains("# tracer"))
    }

    /// A clean run's stream from the virtio trace port (trace_pipe format,
    /// with the guest's header and footer lines).
    func testCleanPortTrace() throws {
        let lines = try Self.lines("sva-6.12-clean-port.log")
        var trace = TraceCollector()
        for line in lines { trace.addPortLine(line) }
        XCTAssertTrue(trace.complete)
        let events = trace.events
        XCTAssertEqual(events.filter { $0.kind == .bind }.count, lines.filter { $0.contains("sva_accel_bind: ") }.count)
        XCTAssertEqual(events.filter { $0.kind == .unbind }.count, lines.filter { $0.contains("sva_accel_unbind: ") }.count)
        XCTAssertEqual(events.filter { $0.kind == .pasidAlloc }.count, lines.filter { $0.contains("alloc_global_pasid_ret: ") }.count)
        XCTAssertEqual(events.filter { $0.kind == .exit }.count, lines.filter { $0.contains("sched_process_exit: ") }.count)
        XCTAssertGreaterThan(events.filter { $0.kind == .job }.count, 1000)
        XCTAssertEqual(trace.portLines.count, lines.count - 2, "every record but the header and footer is kept")

        var oracle = PasidLifecycleOracle()
        for event in events { oracle.observe(event) }
        oracle.finish(complete: trace.complete)
        XCTAssertEqual(oracle.violations, [])
    }

    /// The planted kernel's panic: the trace comes only from the oops dump,
    /// which is not a whole trace.
    func testOopsDumpIsReadButNotWhole() throws {
        var trace = TraceCollector()
        for line in try Self.lines("sva-6.12-planted-pasid-uaf.log") { trace.addConsoleLine(line) }
        XCTAssertFalse(trace.complete)
        let events = trace.events
        XCTAssertEqual(events.first?.kind, .fork)
        XCTAssertEqual(events.last?.kind, .bind)
        XCTAssertEqual(events.filter { $0.kind == .pasidFree }.map(\.pasid), [1, 1])
        XCTAssertFalse(trace.text.contains("Modules linked in"), "the dump section ends at its rule")
    }

    /// The port streams the first part, the oops dump prints the rest, and a
    /// record the guest happened to send on both channels counts once.
    func testChannelsMergeInTimestampOrder() throws {
        let dump = try Self.lines("sva-6.12-planted-pasid-uaf.log")
        let records = dump.filter { TraceEvent.parse($0) != nil }
        XCTAssertGreaterThan(records.count, 90)
        // The same records as trace_pipe prints them.
        let streamed = records.prefix(60).map { line -> String in
            let event = TraceEvent.parse(line)!
            let payload = line[line.range(of: "us : ")!.upperBound...]
            return "  kharness-sva-\(event.thread)   [000] .....  \(String(format: "%.6f", event.ts)): \(payload)"
        }
        var trace = TraceCollector()
        for line in dump.prefix(200) { trace.addConsoleLine(line) }  // the console is read first here
        trace.addPortLine(TraceCollector.portBegin)
        for line in streamed { trace.addPortLine(line) }
        for line in dump.dropFirst(200) { trace.addConsoleLine(line) }
        var reference = TraceCollector()
        for line in dump { reference.addConsoleLine(line) }
        XCTAssertEqual(trace.events.map(\.ts), reference.events.map(\.ts))
        XCTAssertEqual(trace.events.map(\.event), reference.events.map(\.event))
        XCTAssertFalse(trace.complete, "no footer: the guest died")
    }

    /// The dump's times count from the buffer's reset; the clock marker the
    /// guest wrote just after it puts them on the port's clock, after the
    /// port's records.
    func testDumpTimesMoveToThePortClock() throws {
        var trace = TraceCollector()
        trace.addPortLine(TraceCollector.portBegin)
        trace.addPortLine("              sh-38      [000] .....     9.100000: tracing_mark_write: kharness-clock")
        trace.addPortLine("              sh-38      [000] .....     9.107615: sched_process_fork: comm=sh pid=38 child_comm=sh child_pid=82")
        trace.addPortLine("    kharness-sva-82      [000] .....    12.500000: sched_process_exit: comm=kharness-sva pid=82 prio=120")
        for line in try Self.lines("sva-6.12-planted-pasid-uaf.log") { trace.addConsoleLine(line) }
        XCTAssertEqual(trace.dumpClockOffset, 9.1)
        let events = trace.events
        XCTAssertEqual(events.prefix(2).map(\.kind), [.fork, .exit])
        // The dump's first record, "5521005us", is 5.521005 s after the reset.
        XCTAssertEqual(events[2].ts, 9.1 + 5.521005, accuracy: 1e-6)
        XCTAssertEqual(events[2].kind, .fork)
    }

    func testPortFooterAndLimits() {
        let record = "    kharness-sva-83      [000] .....     7.282940: sva_accel_unbind: pid=83 comm=kharness-sva bind_pid=83 mm=0xffff000000fec440 pasid=1 by=ioctl"
        var whole = TraceCollector()
        whole.addPortLine(TraceCollector.portBegin)
        whole.addPortLine(record)
        XCTAssertFalse(whole.complete)
        whole.addPortLine("# kharness trace-end overruns=0")
        XCTAssertTrue(whole.complete)
        XCTAssertEqual(whole.events.count, 1)
        XCTAssertEqual(whole.text, record + "\n")

        var lossy = TraceCollector()
        lossy.addPortLine(record)
        lossy.addPortLine("# kharness trace-end overruns=12")
        XCTAssertEqual(lossy.overruns, 12)
        XCTAssertFalse(lossy.complete, "a trace that lost events cannot show an absence")

        var small = TraceCollector(limitBytes: 1000)
        for _ in 0..<100 { small.addPortLine(record) }
        small.addPortLine("# kharness trace-end overruns=0")
        XCTAssertTrue(small.truncated)
        XCTAssertFalse(small.complete)
        XCTAssertLessThan(small.text.utf8.count, 1000)
    }
}
