import Foundation
import XCTest

@testable import Classify

/// The PASID lifetime oracle over traces recorded from real guests here
/// (6.12 on the SVA machine, with and without 701fac40384f brought back),
/// and over small hand-made sequences for each rule.
final class PasidLifecycleTests: XCTestCase {
    static let directory = Bundle.module.resourceURL!.appendingPathComponent("testdata/traces")

    /// The oracle as a run uses it: the console's trace, the workload's
    /// reports, and the end of a whole trace.
    private func oracle(over file: String) throws -> PasidLifecycleOracle {
        var trace = TraceCollector()
        let lines = try TraceEventTests.lines(file)
        for line in lines { trace.addConsoleLine(line) }
        var oracle = PasidLifecycleOracle()
        for event in trace.events { oracle.observe(event) }
        for line in lines { oracle.observeWorkload(line) }
        oracle.finish(complete: trace.complete)
        return oracle
    }

    /// No freed-while-bound, no second binder, no refused bind, no stray
    /// write, and no leak: the clean trace is whole, so a PASID left
    /// allocated after its mm was dropped would show.
    func testCleanKernelTraceHasNoViolation() throws {
        let oracle = try oracle(over: "sva-6.12-clean.log")
        XCTAssertGreaterThan(oracle.eventsSeen, 100, "the recorded trace has binds, unbinds and frees")
        XCTAssertEqual(oracle.violations, [])
    }

    /// The clean trace with one free removed: the PASID of an address space
    /// that was dropped stays allocated to the end.
    func testCleanTraceWithAFreeRemovedLeaks() throws {
        var lines = try TraceEventTests.lines("sva-6.12-clean.log")
        let free = try XCTUnwrap(lines.lastIndex { $0.contains("free_global_pasid: ") && $0.contains("pasid=2") })
        lines.remove(at: free)
        var trace = TraceCollector()
        for line in lines { trace.addConsoleLine(line) }
        var oracle = PasidLifecycleOracle()
        for event in trace.events { oracle.observe(event) }
        oracle.finish(complete: true)
        let titles = oracle.violations.map(\.title)
        XCTAssertEqual(titles.count, 1, "\(titles)")
        XCTAssertTrue(titles[0].hasPrefix("PASID 2 never freed after every holder was gone: its address space 0x"), titles[0])
        XCTAssertTrue(oracle.violations[0].evidence.last!.contains("mmdrop"), "\(oracle.violations[0].evidence)")
    }

    /// The planted kernel frees PASID 1 at mmput while pid 85's binding still
    /// holds it (ftrace_dump_on_oops format, through the console).
    func testPlantedKernelFreesAPasidStillBound() throws {
        let oracle = try oracle(over: "sva-6.12-planted-pasid-uaf.log")
        let first = try XCTUnwrap(oracle.violations.first)
        XCTAssertEqual(first.title, "PASID 1 freed while still bound to pid 85")
        XCTAssertEqual(first.evidence.count, 2)
        XCTAssertTrue(first.evidence[0].contains("sva_accel_bind: pid=85"), first.evidence[0])
        XCTAssertTrue(first.evidence[1].contains("free_global_pasid"), first.evidence[1])
    }

    private func run(_ lines: [String], workload: [String] = [], complete: Bool = true) -> [String] {
        var oracle = PasidLifecycleOracle()
        for line in lines { oracle.observe(line) }
        for line in workload { oracle.observeWorkload(line) }
        oracle.finish(complete: complete)
        return oracle.violations.map(\.title)
    }

    private func record(_ pid: Int, _ event: String, at ts: Double = 1.0) -> String {
        "  kharness-sva-\(pid) [000] ..... \(ts): \(event)"
    }

    private func fork(_ parent: Int, _ child: Int) -> String {
        record(parent, "sched_process_fork: comm=kharness-sva pid=\(parent) child_comm=kharness-sva child_pid=\(child)")
    }

    private func exit(_ pid: Int) -> String {
        record(pid, "sched_process_exit: comm=kharness-sva pid=\(pid) prio=120")
    }

    private func mmdrop(_ mm: String) -> String {
        "     kworker/0:0-8       [000] D.... 4.0: mmdrop: (__mmdrop+0x0/0x130) comm=\"kworker/0:0\" mm=\(mm)"
    }

    private func job(_ pid: Int, bindPid: Int, mm: String, pasid: Int, status: Int = 2) -> String {
        record(pid, "sva_accel_job: pid=\(pid) bind_pid=\(bindPid) mm=\(mm) pasid=\(pasid) op=2 len=4096 status=0x\(String(status, radix: 16)) result=0x1000 fault_addr=0x0")
    }

    private func bind(_ pid: Int, mm: String, pasid: Int, ret: Int = 0) -> String {
        "  kharness-sva-\(pid) [000] ..... 1.0: sva_accel_bind: pid=\(pid) comm=kharness-sva mm=\(mm) pasid=\(pasid) mode=sva ret=\(ret)"
    }

    private func unbind(_ pid: Int, mm: String, pasid: Int) -> String {
        "  kharness-sva-\(pid) [000] ..... 2.0: sva_accel_unbind: pid=\(pid) comm=kharness-sva bind_pid=\(pid) mm=\(mm) pasid=\(pasid) by=release"
    }

    private func free(_ pasid: Int) -> String {
        "  kharness-sva-1 [000] d.... 3.0: free_global_pasid: (iommu_free_global_pasid+0x0/0x48) comm=\"kharness-sva\" pasid=\(pasid)"
    }

    func testRules() {
        // Bound, unbound, freed, reused: the correct order.
        XCTAssertEqual(run([bind(10, mm: "0xa", pasid: 1), unbind(10, mm: "0xa", pasid: 1), free(1),
                            bind(11, mm: "0xb", pasid: 1)]), [])
        // Threads of one mm bind the same PASID; one unbind leaves the other binding.
        XCTAssertEqual(run([bind(10, mm: "0xa", pasid: 1), bind(12, mm: "0xa", pasid: 1), unbind(10, mm: "0xa", pasid: 1), free(1)]),
                       ["PASID 1 freed while still bound to pid 10"])
        // A second address space gets a PASID another still holds.
        XCTAssertEqual(run([bind(10, mm: "0xa", pasid: 3), bind(11, mm: "0xb", pasid: 3)]),
                       ["PASID 3 bound by pid 11 while still bound to pid 10"])
        // A refused bind (ret != 0) binds nothing.
        XCTAssertEqual(run([bind(10, mm: "0xa", pasid: -1, ret: -16), free(1)]), [])
        // Lines that merely mention the words are not events.
        XCTAssertEqual(run(["sva_accel_bind: pasid=", "free_global_pasid", "random pasid=7 text"]), [])
    }

    /// A PASID never freed after every holder is gone: its mm was dropped
    /// (so nothing can use it), and a whole trace ends without the free.
    func testLeakAfterTheAddressSpaceIsDropped() {
        let life = [fork(1, 10), bind(10, mm: "0xa", pasid: 1), unbind(10, mm: "0xa", pasid: 1), exit(10), mmdrop("0xa")]
        XCTAssertEqual(run(life), ["PASID 1 never freed after every holder was gone: its address space 0xa (pid 10) was dropped"])
        // Freed as the mm goes (6.12: __mmdrop -> mm_pasid_drop -> free).
        XCTAssertEqual(run(life + [free(1)]), [])
        // A trace cut short (a panic, lost events) cannot show an absence.
        XCTAssertEqual(run(life, complete: false), [])
        // An mm still referenced at the end (a lazy TLB user, an async drop
        // not run yet) has not lost its PASID.
        XCTAssertEqual(run(Array(life.dropLast())), [])
        // The same PASID handed out again: it was freed, the free is just not in the trace.
        XCTAssertEqual(run(life + [record(11, "alloc_global_pasid_ret: (iommu_sva_bind_device+0xf0/0x2f8 <- iommu_alloc_global_pasid) ret=0x1")]), [])
    }

    /// A binding never released although every process that could hold its
    /// file exited: its mm (and PASID) can never go.
    func testLeakOfABindingNobodyReleased() {
        let bound = [fork(1, 10), bind(10, mm: "0xa", pasid: 4), fork(10, 11)]
        XCTAssertEqual(run(bound + [exit(11), exit(10), exit(1)]),
                       ["PASID 4 never freed after every holder was gone: the binding of pid 10 was never released"])
        // The child that inherited the file still runs: it holds the binding.
        XCTAssertEqual(run(bound + [exit(10), exit(1)]), [])
        XCTAssertEqual(run(bound + [exit(11), exit(10), exit(1)], complete: false), [])
        XCTAssertEqual(run(bound + [unbind(11, mm: "0xa", pasid: 4), exit(11), exit(10), exit(1)]), [])
    }

    /// The nginx shape gone wrong: the master's binding lives on in its
    /// daemon, and a newcomer's bind fails because the kernel tried to give
    /// it that PASID.
    func testBindRefusedBecauseADeadProcessHoldsThePasid() {
        let held = [fork(1, 10), bind(10, mm: "0xa", pasid: 3), fork(10, 11), exit(10)]
        let attempt = [
            record(12, "sva_bind: (iommu_sva_bind_device+0x0/0x2f8) comm=\"kharness-sva\" mm=0xb"),
            record(12, "alloc_global_pasid_ret: (iommu_sva_bind_device+0xf0/0x2f8 <- iommu_alloc_global_pasid) ret=0x3"),
            record(12, "sva_accel_bind: pid=12 comm=kharness-sva mm=0xb pasid=-1 mode=sva ret=-16"),
        ]
        XCTAssertEqual(run(held + attempt, complete: false), ["PASID 3 handed out to pid 12 while still bound to pid 10",
                                                              "bind by pid 12 refused (-16): PASID 3 still held by dead pid 10"])
        // The holder of the binding is alive: the refusal is no lifetime
        // violation (the workload reports the bind error itself), the
        // allocation that caused it is.
        XCTAssertEqual(run(Array(held.dropLast()) + attempt, complete: false),
                       ["PASID 3 handed out to pid 12 while still bound to pid 10"])
        // A refusal for another PASID (say, the PASID space is full).
        XCTAssertEqual(run(held + [attempt[0], attempt[2]], complete: false), [])
        // The allocator hands out a PASID whose binding was released: fine.
        XCTAssertEqual(run([fork(1, 10), bind(10, mm: "0xa", pasid: 3), unbind(10, mm: "0xa", pasid: 3), free(3)] + attempt,
                           complete: false), [])
    }

    /// The allocator hands a PASID to a second address space while the first
    /// still has it: bound, or unbound but not yet dropped (an mm keeps its
    /// PASID until __mmdrop).
    func testPasidHandedOutWhileAnotherAddressSpaceHoldsIt() {
        let allocFor11 = [
            record(11, "sva_bind: (iommu_sva_bind_device+0x0/0x2f8) comm=\"kharness-sva\" mm=0xb"),
            record(11, "alloc_global_pasid_ret: (iommu_sva_bind_device+0xf0/0x2f8 <- iommu_alloc_global_pasid) ret=0x1"),
        ]
        let held = [fork(1, 10), bind(10, mm: "0xa", pasid: 1), unbind(10, mm: "0xa", pasid: 1)]
        XCTAssertEqual(run(held + allocFor11, complete: false),
                       ["PASID 1 handed out to pid 11 while the address space of pid 10 still holds it"])
        XCTAssertEqual(run(Array(held.dropLast()) + allocFor11, complete: false),
                       ["PASID 1 handed out to pid 11 while still bound to pid 10"])
        // Dropped (and freed) first: the ID was free to hand out.
        XCTAssertEqual(run(held + [exit(10), mmdrop("0xa"), free(1)] + allocFor11, complete: false), [])
        XCTAssertEqual(run(held + [free(1)] + allocFor11, complete: false), [])
    }

    /// Canary reports name the process a device write landed in; the trace
    /// names the PASID and the binding whose job wrote there.
    func testDeviceWriteIntoAnotherProcess() {
        let canary = "@@kharness evidence nginx canary pid=12 corrupt bytes=4096 first=0x3a5a00004000 got=0x5a want=0x91 when=at exit"
        let stray = [fork(1, 10), bind(10, mm: "0xa", pasid: 2), fork(10, 11), exit(10),
                     bind(12, mm: "0xb", pasid: 2), job(11, bindPid: 10, mm: "0xa", pasid: 2)]
        XCTAssertEqual(run(stray, workload: [canary], complete: false),
                       ["PASID 2 bound by pid 12 while still bound to pid 10",
                        "device write through PASID 2 of pid 10 landed in pid 12"])
        // A faulted job wrote nothing; the canary report still fails the run.
        var faulted = stray
        faulted[faulted.count - 1] = job(11, bindPid: 10, mm: "0xa", pasid: 2, status: 0x11)
        XCTAssertEqual(run(faulted, workload: [canary], complete: false),
                       ["PASID 2 bound by pid 12 while still bound to pid 10",
                        "device write landed in pid 12, another process's memory"])
        XCTAssertEqual(run([], workload: ["@@kharness evidence nginx note canary pid=x"], complete: false), [])
        // Only a protocol line: the text inside or at the start of a kernel message is not a canary report.
        XCTAssertEqual(run([], workload: ["[  5.0] audit: comm=\"x\" \(canary)"], complete: false), [])
        XCTAssertEqual(run([], workload: ["[  5.0] \(canary)"], complete: false), [])
        XCTAssertEqual(run([], workload: ["\u{1B}[0m\(canary)"], complete: false).count, 1)
    }

    /// The end-of-trace leak check is linear in the process tree: 100k events of one
    /// tree (a chain of 40k forks, 20k bindings never released, every thread exited)
    /// took hours when each binding walked the whole tree.
    func testEndOfTraceCheckIsLinearInTheTree() {
        var oracle = PasidLifecycleOracle()
        let root = 1000, count = 40_000
        var ts = 1.0
        func next() -> Double { ts += 0.000001; return ts }
        oracle.observe(TraceEvent(ts: next(), pid: 1, kind: .fork, child: root))
        for i in 0..<count {
            oracle.observe(TraceEvent(ts: next(), pid: root + i, kind: .fork, child: root + i + 1))
        }
        for i in 0..<count / 2 {
            oracle.observe(TraceEvent(ts: next(), pid: root + i, kind: .bind, pasid: i + 1,
                                      mm: "0x" + String(0xffff_0000_0000_0000 + UInt64(i) * 0x400, radix: 16)))
        }
        for i in 0...count { oracle.observe(TraceEvent(ts: next(), pid: root + i, kind: .exit)) }
        let start = Date()
        oracle.finish(complete: true)
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        XCTAssertEqual(oracle.eventsSeen, 100_002)
        XCTAssertEqual(oracle.violations.count, 32)
        XCTAssertEqual(oracle.violations.first?.title,
                       "PASID 1 never freed after every holder was gone: the binding of pid 1000 was never released")
        // One thread of the tree still running: nothing is gone.
        var live = PasidLifecycleOracle()
        live.observe(TraceEvent(ts: 1, pid: 1, kind: .fork, child: root))
        live.observe(TraceEvent(ts: 2, pid: root, kind: .fork, child: root + 1))
        live.observe(TraceEvent(ts: 3, pid: root + 1, kind: .bind, pasid: 1, mm: "0xffff000000001000"))
        live.observe(TraceEvent(ts: 4, pid: root + 1, kind: .exit))
        live.finish(complete: true)
        XCTAssertEqual(live.violations, [])
    }
}
