import Foundation
import XCTest

@testable import Classify

/// The PASID lifetime oracle over traces recorded from real guests here
/// (6.12 on the SVA machine, with and without 701fac40384f brought back),
/// and over small hand-made sequences for each rule.
final class PasidLifecycleTests: XCTestCase {
    static let directory = Bundle.module.resourceURL!.appendingPathComponent("testdata/traces")

    private func oracle(over file: String) throws -> PasidLifecycleOracle {
        let text = try String(contentsOf: Self.directory.appendingPathComponent(file), encoding: .utf8)
        var oracle = PasidLifecycleOracle()
        for line in text.split(whereSeparator: \.isNewline) { oracle.observe(String(line)) }
        return oracle
    }

    func testCleanKernelTraceHasNoViolation() throws {
        let oracle = try oracle(over: "sva-6.12-clean.log")
        XCTAssertGreaterThan(oracle.eventsSeen, 100, "the recorded trace has binds, unbinds and frees")
        XCTAssertEqual(oracle.violations, [])
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

    private func run(_ lines: [String]) -> [String] {
        var oracle = PasidLifecycleOracle()
        for line in lines { oracle.observe(line) }
        return oracle.violations.map(\.title)
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
}
