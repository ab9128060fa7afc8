import Foundation
import XCTest
@testable import Classify

/// A context descriptor deactivated while its device could still issue DMA (the SVA
/// maintainer's rule: quiesce, do not deactivate), judged from the SMMU's C_BAD_CD events as
/// a real 6.12 console prints them (20261205-230355: cd-deactivate-6.12.patch, the whole set).
final class ContextDescriptorOracleTests: XCTestCase {
    static let console = """
        [    1.483513] arm-smmu-v3 9050000.smmuv3: event 0x0a received:
        [    1.483799] arm-smmu-v3 9050000.smmuv3: \t0x000000200000180a
        [    1.483901] arm-smmu-v3 9050000.smmuv3: \t0x0000000000000000
        [    1.483993] arm-smmu-v3 9050000.smmuv3: \t0x0000000000000000
        [    1.484082] arm-smmu-v3 9050000.smmuv3: \t0x0000000000000000
        [    1.490000] arm-smmu-v3 9050000.smmuv3: event 0x10 received:
        [    1.490001] arm-smmu-v3 9050000.smmuv3: \t0x0000002000002810
        [    1.490002] arm-smmu-v3 9050000.smmuv3: \t0x0000000800000000
        [    1.490003] arm-smmu-v3 9050000.smmuv3: \t0x0000ffffa136c000
        [    1.490004] arm-smmu-v3 9050000.smmuv3: \t0x0000000000000000

        """

    static let trace = [
        "    kharness-sva-70      [000] .....     1.400000: sva_accel_bind: pid=70 comm=kharness-sva mm=0xffff0000017f9000 pasid=1 mode=sva ret=0",
        "    kharness-sva-70      [000] .....     1.410000: sva_accel_unbind: pid=70 comm=kharness-sva bind_pid=70 mm=0xffff0000017f9000 pasid=1 by=ioctl",
        "    kharness-sva-71      [000] .N...     1.470000: sva_accel_bind: pid=71 comm=kharness-sva mm=0xffff0000017f8440 pasid=1 mode=sva ret=0",
        "    kharness-sva-71      [000] d....     1.483000: exit_mmap: (exit_mmap+0x0/0x438) comm=\"kharness-sva\" mm=0xffff0000017f8440",
        "    kharness-sva-72      [000] .....     1.500000: sva_accel_unbind: pid=72 comm=kharness-sva bind_pid=71 mm=0xffff0000017f8440 pasid=1 by=release",
    ]

    func events(_ console: String) -> [SmmuEvent] {
        var classifier = ConsoleClassifier()
        classifier.feed(Data(console.utf8))
        return classifier.finish().smmuEvents
    }

    func testAnInvalidDescriptorMetByDmaIsAViolationWithTheBindingTornDownFirst() throws {
        let smmu = events(Self.console)
        XCTAssertEqual(smmu.map(\.name), ["C_BAD_CD", "F_TRANSLATION"])
        let violations = ContextDescriptorOracle.judge(smmuEvents: smmu, events: Self.trace.compactMap { TraceEvent.parse($0) })
        XCTAssertEqual(violations.map(\.title), ["context descriptor of PASID 1 deactivated while its device still used it (C_BAD_CD)"])
        let evidence = try XCTUnwrap(violations.first).evidence
        XCTAssertEqual(evidence.first, "smmu: C_BAD_CD sid 0x20 ssid 0x1 at console line 1")
        XCTAssertTrue(evidence.contains("smmu: 1 C_BAD_CD events through PASID 1 in the console"), "\(evidence)")
        // The binding whose address space went while bound is the story, not the one before it.
        XCTAssertEqual(evidence.filter { $0.hasPrefix("trace: ") }, [
            "trace: " + Self.trace[2].trimmingCharacters(in: .whitespaces),
            "trace: " + Self.trace[3].trimmingCharacters(in: .whitespaces) + " (the address space torn down while still bound)",
            "trace: " + Self.trace[4].trimmingCharacters(in: .whitespaces),
        ])
        XCTAssertFalse(PasidLifecycleOracle.Violation.signature(title: violations[0].title).contains("1 "))
    }

    /// A quiesced descriptor gives translation faults, which the workload provokes: clean.
    /// An invalid descriptor with no SubstreamID, or a PASID nobody bound, is judged as it can be.
    func testTranslationFaultsAreCleanAndAPasidNobodyBoundSaysSo() {
        let faults = events(Self.console).filter { $0.name != "C_BAD_CD" }
        XCTAssertEqual(ContextDescriptorOracle.judge(smmuEvents: faults, events: []), [])
        let noSsid = SmmuEvent(name: "C_BAD_CD", id: 0x0a, streamID: 0x20, substreamID: nil)
        XCTAssertEqual(ContextDescriptorOracle.judge(smmuEvents: [noSsid], events: []), [])
        let stray = SmmuEvent(name: "C_BAD_CD", id: 0x0a, streamID: 0x20, substreamID: 7, line: 3)
        let violations = ContextDescriptorOracle.judge(smmuEvents: [stray], events: Self.trace.compactMap { TraceEvent.parse($0) })
        XCTAssertEqual(violations.first?.evidence.last, "trace: no bind of PASID 7")
    }

    /// A console full of events: one violation per PASID, at most 16, whatever the guest prints.
    func testAFloodOfEventsIsBounded() {
        let flood = (0..<10_000).map { SmmuEvent(name: "C_BAD_CD", id: 0x0a, substreamID: UInt32($0 % 1000), line: $0) }
        let violations = ContextDescriptorOracle.judge(smmuEvents: flood, events: [])
        XCTAssertEqual(violations.count, ContextDescriptorOracle.maxViolations)
        XCTAssertTrue(violations[0].evidence.contains("smmu: 10 C_BAD_CD events through PASID 0 in the console"))
    }
}
