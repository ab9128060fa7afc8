import XCTest
@testable import Classify

/// The oracle of a DMA that reached a page other than its process's own, over traces and
/// device records shaped like a real run's (20261205-224750: 6.12 with asid-reuse-6.12.patch,
/// the asid-reuse scenario: pid 67 read its pages at 0xffff99c13000 and unbound, pid 68 mapped
/// its own at the same address, bound with the same ASID and read pid 67's).
final class PageOwnershipTests: XCTestCase {
    typealias T = DeviceOracleTests
    static let va: UInt64 = 0xffff_99c1_3000
    static let mineA: UInt64 = 0x4078_e000
    static let mineB: UInt64 = 0x4077_5000

    static func line(_ pid: Int, _ ts: Double, _ text: String) -> String {
        "    kharness-sva-\(pid)      [000] .....     \(String(format: "%.6f", ts)): \(text)"
    }

    static func owned(_ pid: Int, _ ts: Double, va: UInt64 = va, pa: UInt64, len: Int = 4096, writer: Int? = nil) -> String {
        line(writer ?? pid, ts, "tracing_mark_write: kharness-owned pid=\(pid) va=0x\(String(va, radix: 16)) "
            + "pa=0x\(String(pa, radix: 16)) len=\(len)")
    }

    static func bind(_ pid: Int, _ ts: Double, pasid: Int, mm: String) -> String {
        line(pid, ts, "sva_accel_bind: pid=\(pid) comm=kharness-sva mm=\(mm) pasid=\(pasid) mode=sva ret=0")
    }

    static func unbind(_ pid: Int, _ ts: Double, pasid: Int, mm: String) -> String {
        line(pid, ts, "sva_accel_unbind: pid=\(pid) comm=kharness-sva bind_pid=\(pid) mm=\(mm) pasid=\(pasid) by=ioctl")
    }

    static func access(_ ts: Double, pasid: Int, va: UInt64 = va, pa: UInt64) -> String {
        "t=\(T.tick(ts)) slot=0 pasid=\(pasid) dir=r iova=0x\(String(va, radix: 16)) len=4096 pa=0x\(String(pa, radix: 16))"
    }

    static let mmA = "0xffff0000017f8440", mmB = "0xffff0000017f9980"

    /// pid 67 claims, binds PASID 1, reads its page, unbinds; pid 68 claims its own page at
    /// the same address and binds PASID 2. `between` goes after 67's unbind, `extra` at the end.
    static func trace(between: [String] = [], extra: [String] = []) -> [String] {
        T.markers + [
            owned(67, 1.256199, pa: mineA),
            bind(67, 1.260000, pasid: 1, mm: mmA),
            unbind(67, 1.264000, pasid: 1, mm: mmA),
        ] + between + [
            owned(68, 1.266993, pa: mineB),
            bind(68, 1.267291, pasid: 2, mm: mmB),
            unbind(68, 1.270917, pasid: 2, mm: mmB),
        ] + extra
    }

    func oracle(_ records: [String], trace: [String] = trace(), complete: Bool = true) -> DeviceOracle {
        let log = DeviceLog.parse(Array(([T.header] + records).joined(separator: "\n").utf8) + [0x0a])
        return DeviceOracle(log: log, traceLines: trace, events: trace.compactMap { TraceEvent.parse($0) },
                            traceComplete: complete)
    }

    static let title = "device DMA through PASID 2 of pid 68 reached a page other than its own"

    static let stale = [access(1.262556, pasid: 1, pa: mineA), access(1.268821, pasid: 2, pa: mineA)]

    func testDmaToAnotherLiveProcesssPageNamesBothAndTheTranslationsOrigin() throws {
        let o = oracle(Self.stale)
        XCTAssertEqual(o.violations.map(\.title), [Self.title])
        let evidence = try XCTUnwrap(o.violations.first).evidence
        XCTAssertEqual(evidence.first, "owner: the page reached (pa 0x4078e000) is pid 67's, claimed and still mapped")
        for expected in ["sva_accel_bind: pid=68", "kharness-owned pid=68", "pa=0x4078e000 (trace time 1.268",
                         "pid 68's page at iova 0xffff99c13000 is pa 0x40775000",
                         "kharness-owned pid=67 va=0xffff99c13000 pa=0x4078e000 len=4096 (the page it reached)",
                         "pasid=1 dir=r iova=0xffff99c13000 len=4096 pa=0x4078e000 (trace time 1.262",
                         "sva_accel_bind: pid=67 comm=kharness-sva mm=\(Self.mmA) pasid=1 mode=sva ret=0 (the binding",
                         "sva_accel_unbind: pid=67 comm=kharness-sva bind_pid=67 mm=\(Self.mmA) pasid=1 by=ioctl (its unbind",
                         "1 accesses (4096 bytes)", "sva_accel_unbind: pid=68", "clock: "] {
            XCTAssertTrue(evidence.contains { $0.contains(expected) }, "\(expected) not in \(evidence)")
        }
        let signature = PasidLifecycleOracle.Violation.signature(title: o.violations[0].title)
        XCTAssertFalse(signature.contains("67") || signature.contains("68"), signature)
        XCTAssertNotEqual(signature, PasidLifecycleOracle.Violation.signature(
            title: "device DMA through PASID 1 reached a page pid 67 had unmapped"))
    }

    func testEachProcessReachingItsOwnPagesIsClean() {
        let o = oracle([Self.access(1.262556, pasid: 1, pa: Self.mineA), Self.access(1.268821, pasid: 2, pa: Self.mineB),
                        Self.access(1.268900, pasid: 2, va: Self.va + 0x1000, pa: 0x1234_5000)])
        XCTAssertEqual(o.violations, [], "an address the process never claimed is not judged")
    }

    /// Whose the page the access reached was opens the evidence: a page freed with its
    /// owner's exit or exec, one it had unmapped, one nobody claimed. The title stays the
    /// same: a bisect follows it, and which it is depends on what the workload claimed.
    func testWhoseThePageReachedWasOpensTheEvidence() {
        func owner(_ between: [String], _ records: [String] = PageOwnershipTests.stale) -> [String] {
            let o = oracle(records, trace: Self.trace(between: between))
            XCTAssertEqual(o.violations.map(\.title), [Self.title])
            return o.violations.compactMap(\.evidence.first)
        }
        let exit = Self.line(67, 1.265000, "sched_process_exit: comm=kharness-sva pid=67 prio=120")
        XCTAssertEqual(owner([exit]), ["owner: the page reached (pa 0x4078e000) was freed by the exit of pid 67"])
        let exec = Self.line(67, 1.265000, "sched_process_exec: filename=/bin/sh pid=67 old_pid=67")
        XCTAssertEqual(owner([exec]), ["owner: the page reached (pa 0x4078e000) was freed by the exec of pid 67"])
        let unmapping = Self.line(67, 1.265000, "tracing_mark_write: kharness-unmapping pid=67 pasid=1 va=0xffff99c13000 len=4096")
        XCTAssertEqual(owner([unmapping]), ["owner: the page reached (pa 0x4078e000) was unmapped by pid 67"])
        let fork = Self.line(67, 1.265000, "sched_process_fork: comm=kharness-sva pid=67 child_comm=kharness-sva child_pid=71")
        XCTAssertEqual(owner([fork]), ["owner: the page reached (pa 0x4078e000) was pid 67's, shared with a child since its fork"])
        XCTAssertEqual(owner([], [Self.access(1.268821, pasid: 2, pa: 0x5000_0000)]),
                       ["owner: no process claimed the page reached (pa 0x50000000)"])
    }

    /// A fork shares the claimant's pages copy-on-write, so its next write moves them:
    /// the claim ends there. An access not wholly after the claim's marker, or outside every
    /// binding of the claimant, is not judged.
    func testWhatEndsOrPrecedesAClaimIsNotJudged() {
        let fork = Self.line(68, 1.268000, "sched_process_fork: comm=kharness-sva pid=68 child_comm=kharness-sva child_pid=70")
        XCTAssertEqual(oracle(Self.stale, trace: Self.trace(between: [fork])).violations, [])
        // Bound first, then the claim: an access within the marker's microsecond may precede it.
        let boundFirst = T.markers + [
            Self.bind(68, 1.266000, pasid: 2, mm: Self.mmB),
            Self.owned(68, 1.266993, pa: Self.mineB),
            Self.unbind(68, 1.270917, pasid: 2, mm: Self.mmB),
        ]
        XCTAssertEqual(oracle([Self.access(1.266993, pasid: 2, pa: Self.mineA)], trace: boundFirst).violations, [])
        XCTAssertEqual(oracle([Self.access(1.268821, pasid: 2, pa: Self.mineA)], trace: boundFirst).violations.map(\.title),
                       [Self.title])
        // After the unbind only the unbound-DMA oracle speaks.
        let afterUnbind = oracle([Self.access(1.271500, pasid: 2, pa: Self.mineA)])
        XCTAssertEqual(afterUnbind.violations.map(\.title), ["device DMA through PASID 2 reached memory while no binding held it"])
    }

    func testOnlyAWholeTraceIsJudged() {
        let o = oracle(Self.stale, complete: false)
        XCTAssertFalse(o.violations.contains { $0.title == Self.title })
        XCTAssertTrue(o.notes.contains { $0.contains("DMA to pages other than the process's own are not judged") }, "\(o.notes)")
    }

    func testMarkerShapeIsStrict() {
        XCTAssertEqual(OwnedMarker.parse(payload: "kharness-owned pid=67 va=0xffff99c13000 pa=0x4078e000 len=8192"),
                       OwnedMarker(pid: 67, vaPage: 0xffff_99c13, paPage: 0x4_078e, pages: 2))
        for bad in ["kharness-owned pid=67 va=0xffff99c13001 pa=0x4078e000 len=4096",
                    "kharness-owned pid=67 va=0xffff99c13000 pa=0x4078e800 len=4096",
                    "kharness-owned pid=67 va=0xffff99c13000 pa=0x4078e000 len=0",
                    "kharness-owned pid=67 va=0xffff99c13000 pa=0x4078e000 len=100",
                    "kharness-owned pid=67 va=0xfffffffffffff000 pa=0x4078e000 len=8192",
                    "kharness-owned pid=67 va=0x1000 pa=0xfffffffffffff000 len=8192",
                    "kharness-owned pid=4194305 va=0x1000 pa=0x1000 len=4096",
                    "kharness-owned pid=67 va=0x1000 pa=0x1000 len=4096 x",
                    "kharness-owned pid=67  va=0x1000 pa=0x1000 len=4096",
                    "kharness-owned pid=67 pa=0x1000 va=0x1000 len=4096",
                    "kharness-owned " + String(repeating: "9", count: 200)] {
            XCTAssertNil(OwnedMarker.parse(payload: bad), bad)
        }
    }

    /// Markers a guest lies with: malformed ones, ones naming another process (which could
    /// make any page look another's), and a flood past the cap; counted, and nothing traps.
    func testLyingAndFloodingMarkersAreCountedNotBelieved() {
        let lies = [
            Self.line(68, 1.266000, "tracing_mark_write: kharness-owned pid=68 va=0xffff99c13000 pa=0x4078e000 len=4097"),
            Self.owned(67, 1.266500, pa: Self.mineA + 0x10000, writer: 68),
        ]
        let o = oracle(Self.stale + [Self.access(1.268900, pasid: 2, pa: Self.mineA + 0x10000)],
                       trace: Self.trace(between: lies))
        XCTAssertEqual(o.violations.map(\.title), [Self.title])
        XCTAssertTrue(o.notes.contains("device records: 1 malformed kharness-owned markers skipped"), "\(o.notes)")
        XCTAssertTrue(o.notes.contains("device records: 1 kharness-owned markers naming a pid other than their writer's skipped"),
                      "\(o.notes)")

        let flood = (0..<(DeviceOracle.maxOwnedMarkers + 10)).map {
            Self.owned(69, 1.271 + Double($0) * 1e-7, va: 0x1_0000_0000 + UInt64($0) << 12, pa: 0x8000_0000 + UInt64($0) << 12)
        }
        let flooded = oracle(Self.stale, trace: Self.trace(extra: flood))
        XCTAssertTrue(flooded.notes.contains { $0.contains("kharness-owned markers past the first 4096") }, "\(flooded.notes)")
        XCTAssertEqual(flooded.violations.map(\.title), [Self.title],
                       "the claims before the cap are still judged")
    }
}
