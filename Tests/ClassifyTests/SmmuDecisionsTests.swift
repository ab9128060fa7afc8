import XCTest
@testable import Classify

/// The SMMU's records (QEMU patch 0007) in the records file beside the device's,
/// and the oracle over them: a translation served from a TLB entry another
/// address space filled.
final class SmmuDecisionsTests: XCTestCase {
    static let deviceHeader = "# sva-accel records v1 counter-hz=62500000"
    static let smmuHeader = "# arm-smmuv3 records v1 counter-hz=62500000"
    static let title = "SMMU translated PASID 2 through a TLB entry cached for another address space "
        + "(ASID 5 reused without invalidation)"

    static func parse(_ lines: [String]) -> DeviceLog {
        DeviceLog.parse(Array((lines.joined(separator: "\n") + "\n").utf8))
    }

    static func oracle(_ lines: [String]) -> DeviceOracle {
        DeviceOracle(log: parse(lines), traceLines: [], events: [])
    }

    /// Process A (PASID 1) reads a page through ASID 5, unbinds without the ASID's
    /// invalidation; process B (PASID 2) gets ASID 5 and reads the same address.
    /// The SMMU writes its lines at once, the device after each engine run.
    static let reuse = [
        smmuHeader, deviceHeader,
        "t=1000 smmu=cfgi kind=cd sid=0x20 ssid=1",
        "t=1010 smmu=cd sid=0x20 ssid=1 asid=5 ttb0=0x4a000000 valid=1",
        "t=1005 slot=0 pasid=1 dir=r iova=0xffff9000 len=4096 pa=0x41000000",
        "t=2000 smmu=cfgi kind=cd sid=0x20 ssid=1",
        "t=2001 smmu=tlbi kind=asid asid=7 iova=- num=-",
        "t=2002 smmu=tlbi kind=va asid=5 iova=0x1000 num=1",
        "t=3000 smmu=cfgi kind=cd sid=0x20 ssid=2",
        "t=3010 smmu=cd sid=0x20 ssid=2 asid=5 ttb0=0x4b000000 valid=1",
        "t=3011 smmu=stale-hit sid=0x20 ssid=2 asid=5 iova=0xffff9000 ttb0=0x4b000000 filled-ssid=1 filled-ttb0=0x4a000000",
        "t=3020 smmu=stale-hit sid=0x20 ssid=2 asid=5 iova=0xffffa000 ttb0=0x4b000000 filled-ssid=1 filled-ttb0=0x4a000000",
        "t=3008 slot=1 pasid=2 dir=r iova=0xffff9000 len=4096 pa=0x41000000",
        "t=3018 slot=1 pasid=2 dir=r iova=0xffffa000 len=4096 pa=0x41001000",
    ]

    func testParsesEverySmmuShapeApartFromTheDevicesRecords() {
        let lines = [
            "t=1 smmu=cd sid=0x20 ssid=- asid=65535 ttb0=0xffffffffffff0 valid=0",
            "t=2 smmu=cfgi kind=ste sid=0xffffffff ssid=-",
            "t=3 smmu=cfgi kind=ste_range sid=0x0 ssid=-",
            "t=4 smmu=cfgi kind=all sid=0x0 ssid=-",
            "t=5 smmu=cfgi kind=cd sid=0x8 ssid=1048575",
            "t=6 smmu=cfgi kind=cd_all sid=0x8 ssid=-",
            "t=7 smmu=tlbi kind=asid asid=3 iova=- num=-",
            "t=8 smmu=tlbi kind=va asid=3 iova=0xffff0000 num=16",
            "t=9 smmu=tlbi kind=vaa asid=- iova=0x0 num=1",
            "t=10 smmu=tlbi kind=all asid=- iova=- num=-",
            "t=11 smmu=tlbi kind=nsnh_all asid=- iova=- num=-",
            "t=12 smmu=tlbi kind=s12_vmall asid=- iova=- num=-",
            "t=13 smmu=tlbi kind=s2_ipa asid=- iova=0x8000 num=2",
            "t=14 smmu=stale-hit sid=0x20 ssid=- asid=0 iova=0x1 ttb0=0x2 filled-ssid=7 filled-ttb0=0x3",
        ]
        let log = Self.parse([Self.smmuHeader, Self.deviceHeader] + lines
            + ["t=5 slot=0 pasid=1 dir=r iova=0x1000 len=4096 pa=0x1"])
        XCTAssertEqual(log.smmuCounterHz, 62_500_000)
        XCTAssertEqual(log.counterHz, 62_500_000)
        XCTAssertEqual(log.smmuRejectedLines, 0)
        XCTAssertEqual(log.rejectedLines, 0)
        XCTAssertEqual(log.records.count, 1)
        XCTAssertEqual(log.outOfOrder, 0, "the SMMU's counters are not the device's")
        XCTAssertEqual(log.smmuOutOfOrder, 0)
        XCTAssertEqual(log.smmuRecords.map(\.line), lines)
        XCTAssertEqual(log.smmuRecords[0].decision, .cd(sid: 0x20, ssid: nil, asid: 65535, ttb0: 0xffffffffffff0, valid: false))
        XCTAssertEqual(log.smmuRecords[7].decision, .tlbi(.va, asid: 3, iova: 0xffff0000, pages: 16))
        XCTAssertEqual(log.smmuRecords[13].decision, .staleHit(sid: 0x20, ssid: nil, asid: 0, iova: 1, ttb0: 2,
                                                               filledSsid: 7, filledTtb0: 3))
        // Which commands drop an entry of ASID 3 at 0xffff5000.
        XCTAssertEqual(log.smmuRecords.map { $0.invalidatesTlb(asid: 3, iova: 0xffff5000) },
                       [false, false, false, false, false, false, true, true, false, true, true, true, false, false])
        XCTAssertFalse(log.smmuRecords[7].invalidatesTlb(asid: 3, iova: 0xfffff000 + 0x1000), "past the 16 pages")
        XCTAssertFalse(log.smmuRecords[7].invalidatesTlb(asid: 4, iova: 0xffff5000))
    }

    /// An SMMU that lies: shapes of one kind with another's fields, numbers past their
    /// widths, a stale hit between two equal TTB0s. Counted as the SMMU's, never trapping.
    func testLyingSmmuLinesAreCountedApart() {
        let lies = [
            "t=1 smmu=cfgi kind=cd sid=0x8 ssid=-",
            "t=1 smmu=cfgi kind=ste sid=0x8 ssid=1",
            "t=1 smmu=cfgi kind=bogus sid=0x8 ssid=-",
            "t=1 smmu=cfgi kind=ste sid=0x100000000 ssid=-",
            "t=1 smmu=cd sid=0x8 ssid=1048576 asid=1 ttb0=0x1 valid=1",
            "t=1 smmu=cd sid=0x8 ssid=1 asid=65536 ttb0=0x1 valid=1",
            "t=1 smmu=cd sid=0x8 ssid=1 asid=1 ttb0=0x1 valid=2",
            "t=1 smmu=cd sid=0x8 ssid=1 asid=1 ttb0=0x1 valid=1 extra",
            "t=1 smmu=tlbi kind=asid asid=- iova=- num=-",
            "t=1 smmu=tlbi kind=all asid=1 iova=- num=-",
            "t=1 smmu=tlbi kind=va asid=1 iova=0x1000 num=0",
            "t=1 smmu=tlbi kind=va asid=1 iova=- num=-",
            "t=1 smmu=tlbi kind=asid asid=1 iova=0x1000 num=1",
            "t=1 smmu=stale-hit sid=0x8 ssid=1 asid=1 iova=0x1 ttb0=0x5 filled-ssid=2 filled-ttb0=0x5",
            "t=1 smmu=stale-hit sid=0x8 ssid=1 asid=1 iova=0x1 ttb0=0x5 filled-ssid=2",
            "t=1 smmu=",
            "t=1 smmu=cd",
            "t=99999999999999999999 smmu=tlbi kind=all asid=- iova=- num=-",
            "# arm-smmuv3 records v1 counter-hz=1",
            "# arm-smmuv3 records v2 counter-hz=1",
            "t=1 smmu=" + String(repeating: "x", count: 300),
        ]
        // Not attributable to the SMMU (its second word is empty): the device's count.
        let deviceLies = ["t=1 slot=32 pasid=1 dir=r iova=0x1 len=1 pa=0x1", "t=1  smmu=tlbi kind=all asid=- iova=- num=-"]
        let log = Self.parse([Self.smmuHeader, Self.deviceHeader] + lies + deviceLies)
        XCTAssertEqual(log.smmuRecords, [])
        XCTAssertEqual(log.smmuRejectedLines, lies.count)
        XCTAssertEqual(log.rejectedLines, deviceLies.count, "the device's lies are the device's")
        XCTAssertEqual(log.smmuCounterHz, 62_500_000, "the first header counts")
        let oracle = DeviceOracle(log: log, traceLines: [], events: [])
        XCTAssertEqual(oracle.violations.count, 0)
        XCTAssertTrue(oracle.notes.contains("SMMU records: \(lies.count) malformed lines skipped"), "\(oracle.notes)")
        XCTAssertTrue(oracle.notes.contains("device records: 2 malformed lines skipped"), "\(oracle.notes)")
    }

    /// The SMMU's line for an access comes before the device's in the file; each source
    /// counts only its own counters going backwards.
    func testOutOfOrderIsCountedPerSource() {
        let log = Self.parse(Self.reuse + ["t=2500 smmu=tlbi kind=all asid=- iova=- num=-"])
        XCTAssertEqual(log.outOfOrder, 0, "\(log.records)")
        XCTAssertEqual(log.smmuOutOfOrder, 1)
        XCTAssertTrue(Self.oracle(Self.reuse + ["t=2500 smmu=tlbi kind=all asid=- iova=- num=-"]).notes
            .contains("SMMU records: 1 records out of time order"))
    }

    func testAReusedAsidWithoutInvalidationIsAViolation() throws {
        let oracle = Self.oracle(Self.reuse)
        XCTAssertEqual(oracle.violations.map(\.title), [Self.title])
        let evidence = oracle.violations[0].evidence
        XCTAssertEqual(evidence, [
            "smmu: t=1010 smmu=cd sid=0x20 ssid=1 asid=5 ttb0=0x4a000000 valid=1 (the context that filled the entry)",
            "smmu: t=2000 smmu=cfgi kind=cd sid=0x20 ssid=1",
            "smmu: t=3000 smmu=cfgi kind=cd sid=0x20 ssid=2",
            "smmu: no TLB invalidation of ASID 5 between",
            "smmu: t=3010 smmu=cd sid=0x20 ssid=2 asid=5 ttb0=0x4b000000 valid=1 (the context served, same ASID)",
            "smmu: t=3011 smmu=stale-hit sid=0x20 ssid=2 asid=5 iova=0xffff9000 ttb0=0x4b000000 filled-ssid=1 filled-ttb0=0x4a000000",
            "device: t=3008 slot=1 pasid=2 dir=r iova=0xffff9000 len=4096 pa=0x41000000 (the access it served, 3 counter ticks before the SMMU's record)",
            "smmu: 2 TLB entries of ASID 5 cached for TTB0 0x4a000000 served TTB0 0x4b000000 (the SMMU records each entry once)",
        ])
        // The same bug with other numbers has the same signature; another kind does not.
        let other = "SMMU translated PASID 17 through a TLB entry cached for another address space "
            + "(ASID 301 reused without invalidation)"
        XCTAssertEqual(PasidLifecycleOracle.Violation.signature(title: Self.title),
                       PasidLifecycleOracle.Violation.signature(title: other))
        XCTAssertNotEqual(PasidLifecycleOracle.Violation.signature(title: Self.title),
                          PasidLifecycleOracle.Violation.signature(title: "device DMA through PASID 2 reached memory while no binding held it"))
    }

    /// A clean kernel's records: contexts come and go, the ASID is invalidated before
    /// it is reused, and the SMMU records no stale hit (hits under the filling
    /// context are not recorded at all).
    func testCleanReuseIsNoViolation() {
        let clean = Self.reuse.filter { !$0.contains("stale-hit") }
            .map { $0.replacingOccurrences(of: "kind=asid asid=7", with: "kind=asid asid=5") }
        let oracle = Self.oracle(clean)
        XCTAssertEqual(oracle.violations.count, 0)
        XCTAssertEqual(oracle.notes.filter { $0.hasPrefix("SMMU") }, [])
    }

    /// A stale hit after the ASID's invalidation cannot come from a correct model (the
    /// entry was filled after the invalidation, then): judged, the invalidation quoted.
    func testStaleHitAfterAnInvalidationIsStillJudged() throws {
        let lines = Self.reuse.map { $0.replacingOccurrences(of: "kind=asid asid=7", with: "kind=asid asid=5") }
        let oracle = Self.oracle(lines)
        let v = try XCTUnwrap(oracle.violations.first)
        XCTAssertEqual(v.title, Self.title)
        XCTAssertTrue(v.evidence.contains("smmu: t=2001 smmu=tlbi kind=asid asid=5 iova=- num=-"), "\(v.evidence)")
        XCTAssertTrue(v.evidence.contains { $0.contains("1 TLB invalidations of ASID 5 at 0xffff9000 between") }, "\(v.evidence)")
        XCTAssertFalse(v.evidence.contains("smmu: no TLB invalidation of ASID 5 between"))
    }

    /// Without the CD records (the cache was filled before the log began), without the
    /// device's records, without any header: judged all the same, and says what is missing.
    func testStaleHitAloneIsJudged() throws {
        let v = try XCTUnwrap(Self.oracle([Self.reuse[10]]).violations.first)
        XCTAssertEqual(v.title, Self.title)
        XCTAssertEqual(v.evidence.first, "smmu: no record of the CD (ASID 5, TTB0 0x4a000000) that filled the entry")
        XCTAssertFalse(v.evidence.contains { $0.hasPrefix("device:") }, "\(v.evidence)")
        let withoutPasid = Self.oracle([
            "t=3011 smmu=stale-hit sid=0x20 ssid=- asid=5 iova=0x9000 ttb0=0x2 filled-ssid=- filled-ttb0=0x1",
            "t=3000 slot=0 pasid=1 dir=r iova=0x9000 len=4096 pa=0x1",
        ])
        XCTAssertEqual(withoutPasid.violations.map(\.title), [
            "SMMU translated DMA without PASID through a TLB entry cached for another address space "
                + "(ASID 5 reused without invalidation)",
        ])
        XCTAssertTrue(withoutPasid.violations[0].evidence.contains("device: no access through DMA without PASID to page 0x9000 in the records"),
                      "\(withoutPasid.violations[0].evidence)")
    }

    /// A flood of stale hits, each a different reuse: at most 16 violations, the rest noted.
    func testFloodOfStaleHitsIsBounded() {
        var lines = [Self.smmuHeader]
        for i in 0..<5000 {
            lines.append("t=\(i) smmu=stale-hit sid=0x20 ssid=\(i % 1000) asid=\(i % 65536) iova=0x\(String(i << 12, radix: 16)) "
                + "ttb0=0x\(String(i + 1, radix: 16)) filled-ssid=1 filled-ttb0=0x0")
        }
        let oracle = Self.oracle(lines)
        XCTAssertEqual(oracle.violations.count, DeviceOracle.maxStaleTlbViolations)
        XCTAssertTrue(oracle.notes.contains("SMMU records: 4984 stale-hit records past 16 reuses not judged"), "\(oracle.notes)")
    }

    /// Past the SMMU's cap its records are dropped and counted; the device's go on.
    func testSmmuCapLeavesTheDevicesRecords() {
        var text = Self.smmuHeader + "\n" + Self.deviceHeader + "\n"
        text.reserveCapacity((DeviceLog.maxSmmuRecords + 10) * 48)
        for i in 0..<(DeviceLog.maxSmmuRecords + 5) { text += "t=\(i) smmu=tlbi kind=all asid=- iova=- num=-\n" }
        text += "t=1 slot=0 pasid=1 dir=r iova=0x1000 len=4096 pa=0x1\n"
        let log = DeviceLog.parse(Array(text.utf8))
        XCTAssertEqual(log.smmuRecords.count, DeviceLog.maxSmmuRecords)
        XCTAssertTrue(log.smmuTruncated)
        XCTAssertFalse(log.truncated)
        XCTAssertEqual(log.records.count, 1)
    }

    /// Random SMMU-shaped lines mixed with the device's never trap.
    func testRandomSmmuInputNeverTraps() {
        var generator = HostileInputTests.SplitMix64(state: 12)
        let words = ["t=", "1", "smmu=", "cd", "cfgi", "tlbi", "stale-hit", "sid=0x", "ssid=", "asid=", "ttb0=0x",
                     "filled-ssid=", "filled-ttb0=0x", "iova=0x", "num=", "kind=", "all", "va", "valid=1", "-", "ffff",
                     "99999999999999999999", " ", " ", " ", "\n", "# arm-smmuv3 records v1 counter-hz=", "slot=0"]
        for _ in 0..<300 {
            let text = (0..<Int(generator.next() % 200)).map { _ in words[Int(generator.next() % UInt64(words.count))] }.joined()
            let oracle = Self.oracle(Self.reuse + [text])
            XCTAssertLessThanOrEqual(oracle.violations.count, DeviceOracle.maxStaleTlbViolations)
        }
    }
}
