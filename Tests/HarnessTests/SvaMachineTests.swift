import Classify
import Foundation
import Kernel
import Support
import XCTest

@testable import Harness

/// The SVA machine on the real stack: kharness's patched QEMU (built by
/// scripts/build-qemu), a 6.12 kernel built from Debian's source with SVA,
/// the sva-accel driver and the workload's scenarios.
final class SvaMachineTests: XCTestCase {
    static let repositoryRoot = SourceKernelRunTests.repositoryRoot

    static let patchedQemu = Task { () throws -> String in
        let result = try await Command.check(repositoryRoot + "/scripts/build-qemu", [])
        return try XCTUnwrap(result.stdout.split(separator: "\n").last.map(String.init))
    }

    private var resultsRoot = ""

    override func setUp() async throws {
        resultsRoot = NSTemporaryDirectory() + "kharness-sva-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: resultsRoot, withIntermediateDirectories: true)
    }

    private func smmuFeatures(_ result: RunResult) -> String? {
        result.scenarios.first?.evidence.first { $0.contains("features 0x") }
    }

    /// With the substream property at its default (0) the patched SMMU
    /// advertises exactly what stock QEMU's does.
    func testPatchedQemuWithoutSubstreamsHasStockIDRegisters() async throws {
        var stock = RunRequest(kernel: .debian(version: "6.1"))
        stock.resultsRoot = resultsRoot
        var patched = stock
        patched.emulator = try await Self.patchedQemu.value
        let a = try await Runner().run(stock)
        let b = try await Runner().run(patched)
        XCTAssertEqual(a.status, .pass, a.reason)
        XCTAssertEqual(b.status, .pass, b.reason)
        let stockLine = try XCTUnwrap(smmuFeatures(a))
        XCTAssertEqual(smmuFeatures(b), stockLine)
    }

    private func svaRun(series: String? = nil, scenarios: [String] = []) async throws -> RunResult {
        setenv("KHARNESS_QEMU", try await Self.patchedQemu.value, 1)
        var request = RunRequest(kernel: .git(tree: try await SourceKernelRunTests.tree612(), revision: "HEAD"))
        request.series = series
        request.configFragments = ["smmuv3", "trace", "modules"]
        request.machine = "sva"
        request.workload = "sva"
        request.scenarios = scenarios
        request.resultsRoot = resultsRoot
        return try await Runner().run(request)
    }

    /// Every scenario binds, forks and exits with every byte checked; the
    /// faults it provokes show up as SMMU events naming a substream.
    func testEveryScenarioPassesOnACleanKernel() async throws {
        let result = try await svaRun()
        XCTAssertEqual(result.status, .pass, result.reason)
        let names = result.scenarios.map(\.name)
        for expected in ["baseline", "exit-no-unbind", "sigkill-inflight", "fork-before-bind", "fork-after-bind-use",
                         "fork-after-bind-hold", "nginx", "pasid-reuse", "threads", "munmap-dma", "exec-after-bind", "fd-leak"] {
            XCTAssertTrue(names.contains(expected), "scenario \(expected) missing from \(names)")
        }
        XCTAssertTrue(result.scenarios.allSatisfy { $0.status == .pass }, "\(result.scenarios.map { "\($0.name) \($0.status)" })")
        let faults = result.reports.filter { $0.title == "arm-smmu-v3: F_TRANSLATION event" }
        XCTAssertFalse(faults.isEmpty, "munmap-dma should provoke a translation fault")
        XCTAssertTrue(faults.allSatisfy(\.suppressed))
        let console = try String(contentsOfFile: "\(resultsRoot)/\(result.runID)/console.log", encoding: .utf8)
        XCTAssertTrue(console.contains("mode sva"), "the driver did not run in SVA mode")
        XCTAssertEqual(result.lifecycleViolations, [])
        XCTAssertTrue(console.contains("sva_accel_bind: pid="), "the trace reached the host")
        let trace = try String(contentsOfFile: "\(resultsRoot)/\(result.runID)/trace.log", encoding: .utf8)
        XCTAssertTrue(trace.contains("sva_accel_bind: pid="), "trace.log holds the trace section")
        XCTAssertFalse(trace.contains("@@kharness"), "trace.log holds only the trace")
    }

    /// 701fac40384f brought back: the PASID is freed at mmput while the
    /// device still holds it, and the run fails.
    func testPlantedPasidUseAfterFreeFails() async throws {
        let result = try await svaRun(series: Self.repositoryRoot + "/guest/patches/pasid-uaf-6.12.patch")
        XCTAssertEqual(result.status, .fail, result.reason)
        XCTAssertEqual(result.build?.patches.count, 1)
        XCTAssertFalse(result.scenarios.allSatisfy { $0.status == .pass })
        // The verdict names the root cause, not the oops that follows it.
        XCTAssertTrue(result.reason.hasPrefix("PASID ") && result.reason.contains("while still bound to pid"), result.reason)
        XCTAssertFalse(result.lifecycleViolations.isEmpty)
    }
}
