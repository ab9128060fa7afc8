import XCTest
@testable import Classify

/// The SMMU's stalls (QEMU patch 0008) in the records file, and the oracle of a stall the
/// kernel never answered, over records shaped like a real run's (20261205-232530: 6.12 with
/// iopf-no-response-6.12.patch on the sva-stall machine, exit-inflight-dma: the exiting
/// process's read stalled at 1.3674, its binding was released at 1.3786 and the stall was
/// aborted only when the SMMU was disabled at shutdown).
final class StallTests: XCTestCase {
    typealias T = DeviceOracleTests
    static let smmuHeader = "# arm-smmuv3 records v1 counter-hz=62500000"

    static let trace = T.markers + [
        "    kharness-sva-67      [000] .N...     1.239497: sva_accel_bind: pid=67 comm=kharness-sva mm=0xffff0000017f8cc0 pasid=1 mode=sva ret=0",
        "    kharness-sva-67      [000] .N...     1.378550: sva_accel_unbind: pid=67 comm=kharness-sva bind_pid=67 mm=0xffff0000017f8cc0 pasid=1 by=release",
    ]

    static func stall(_ ts: Double, stag: Int = 0) -> [String] {
        ["t=\(T.tick(ts)) slot=0 pasid=1 dir=r iova=0xffff8ccc9000 len=4096 stall stag=\(stag)",
         "t=\(T.tick(ts) + 9) smmu=stall sid=0x20 ssid=1 iova=0xffff8ccc9000 stag=\(stag) recorded=1"]
    }

    static func resume(_ ts: Double, stag: Int = 0, action: String = "abort") -> String {
        "t=\(T.tick(ts)) smmu=resume sid=0x20 stag=\(stag) action=\(action)"
    }

    func oracle(_ lines: [String], complete: Bool = true) -> DeviceOracle {
        let text = ([T.header, Self.smmuHeader] + lines).joined(separator: "\n") + "\n"
        return DeviceOracle(log: DeviceLog.parse(Array(text.utf8)), traceLines: Self.trace,
                            events: Self.trace.compactMap { TraceEvent.parse($0) }, traceComplete: complete)
    }

    func testStallLinesParse() throws {
        let log = DeviceLog.parse(Array(([T.header, Self.smmuHeader] + Self.stall(1.3674) + [Self.resume(1.37)])
            .joined(separator: "\n").utf8) + [0x0a])
        XCTAssertEqual(log.records.map(\.outcome), [.stalled(stag: 0)])
        XCTAssertFalse(log.records[0].succeeded)
        XCTAssertEqual(log.records[0].line, Self.stall(1.3674)[0])
        XCTAssertEqual(log.smmuRecords.map(\.line), [Self.stall(1.3674)[1], Self.resume(1.37)])
        XCTAssertEqual(log.rejectedLines + log.smmuRejectedLines, 0)
        for lie in ["t=1 slot=0 pasid=1 dir=r iova=0x1000 len=4096 stall stag=65536",
                    "t=1 slot=0 pasid=1 dir=r iova=0x1000 len=4096 stall",
                    "t=1 slot=0 pasid=1 dir=r iova=0x1000 len=4096 fault stag=1",
                    "t=1 smmu=stall sid=0x20 ssid=1 iova=0x1000 stag=1 recorded=2",
                    "t=1 smmu=stall sid=0x20 ssid=1 iova=0x1000 stag=1",
                    "t=1 smmu=resume sid=0x20 stag=1 action=later",
                    "t=1 smmu=resume sid=0x20 stag=70000 action=retry"] {
            let bad = DeviceLog.parse(Array(([T.header, Self.smmuHeader, lie]).joined(separator: "\n").utf8) + [0x0a])
            XCTAssertEqual(bad.records.count + bad.smmuRecords.count, 0, lie)
        }
    }

    /// Answered by the fault handler (an abort: the address space is gone) before the unbind: clean.
    func testAStallAnsweredBeforeTheUnbindIsClean() {
        XCTAssertEqual(oracle(Self.stall(1.3674) + [Self.resume(1.3680)]).violations, [])
    }

    func testAStallAnsweredOnlyAfterTheUnbindIsAViolation() throws {
        let o = oracle(Self.stall(1.3674) + [Self.resume(1.4825)])
        XCTAssertEqual(o.violations.map(\.title),
                       ["device access through PASID 1 stalled in the SMMU and was not answered before its unbind"])
        let evidence = try XCTUnwrap(o.violations.first).evidence
        XCTAssertEqual(evidence.first, "smmu: " + Self.stall(1.3674)[1])
        XCTAssertTrue(evidence.contains("device: " + Self.stall(1.3674)[0]), "\(evidence)")
        XCTAssertTrue(evidence.contains { $0.contains("sva_accel_unbind") && $0.hasSuffix("(the binding's unbind, before any answer)") })
        XCTAssertTrue(evidence.contains("smmu: " + Self.resume(1.4825) + " (the first answer, after the unbind)"))
    }

    /// Never answered at all: the device waits forever. Judged only in a whole run (a kernel
    /// that died leaves stalls nobody could answer, and its crash is the verdict).
    func testAStallNeverAnsweredIsAViolationOnlyInAWholeRun() {
        XCTAssertEqual(oracle(Self.stall(1.3674)).violations.map(\.title),
                       ["device access through PASID 1 stalled in the SMMU and was never resumed"])
        XCTAssertEqual(oracle(Self.stall(1.3674), complete: false).violations, [])
    }

    /// Tags come back once answered; a tag stalled again while pending means the first stall
    /// was lost.
    func testTagsAreMatchedInOrder() {
        let reused = Self.stall(1.30) + [Self.resume(1.301, action: "retry")] + Self.stall(1.31) + [Self.resume(1.311)]
        XCTAssertEqual(oracle(reused).violations, [])
        let lost = Self.stall(1.30) + Self.stall(1.31) + [Self.resume(1.311)]
        XCTAssertEqual(oracle(lost).violations.map(\.title),
                       ["device access through PASID 1 stalled in the SMMU and was never resumed"])
    }
}
