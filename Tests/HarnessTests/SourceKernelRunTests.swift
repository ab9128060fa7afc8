import Classify
import Foundation
import RunModel
import Kernel
import KernelTestSupport
import Support
import XCTest

@testable import Harness

/// A kernel built from Debian's 6.12 source with base + smmuv3 + trace,
/// booted through the run pipeline: SVA must be built in, seen from inside.
final class SourceKernelRunTests: XCTestCase {


    private func run(_ workload: String) async throws -> RunResult {
        let results = NSTemporaryDirectory() + "kharness-src-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: results) }
        var request = RunRequest(kernel: .git(tree: try await KernelSources.tree("6.12"), revision: "HEAD"))
        request.configFragments = ["smmuv3", "trace", "modules"]
        request.workload = workload
        request.resultsRoot = results
        return try await Runner().run(request)
    }

    func testSVAIsBuiltIntoTheSourceKernel() async throws {
        let result = try await run("sva-config")
        XCTAssertEqual(result.status, .pass, result.reason)
        let build = try XCTUnwrap(result.build)
        // Whatever point release Debian serves: the one the built tree's Makefile names.
        let release = try await KernelSources.release(tree: try await KernelSources.tree("6.12"), revision: build.builtCommit,
                                                      fragments: build.configFragments)
        XCTAssertEqual(result.kernelRelease, release)
        let evidence = result.scenarios.first?.evidence ?? []
        XCTAssertTrue(evidence.contains("CONFIG_ARM_SMMU_V3_SVA=y"), "\(evidence)")
        XCTAssertTrue(evidence.contains("iommu_sva_bind_device in kallsyms"), "\(evidence)")
        XCTAssertEqual(build.configFragments, ["base", "smmuv3", "trace", "modules"])
        XCTAssertFalse(build.baseCommit.isEmpty)
    }

    func testSourceKernelPassesTheBootWorkload() async throws {
        let result = try await run("boot")
        XCTAssertEqual(result.status, .pass, result.reason)
        let evidence = result.scenarios.first?.evidence ?? []
        XCTAssertTrue(evidence.contains { $0.contains("1234:11e8") && $0.contains("iommu_group") }, "\(evidence)")
    }
}
