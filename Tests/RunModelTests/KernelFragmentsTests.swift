import RunModel
import XCTest

/// The one rule for the fragments a `git:` kernel is built with, which the
/// runner builds by and the matrix prepares (and groups cells) by.
final class KernelFragmentsTests: XCTestCase {
    func testTheSvaWorkloadAddsModulesOnce() {
        XCTAssertEqual(RunRequest.kernelFragments(["smmuv3"], workload: "sva"), ["smmuv3", "modules"])
        XCTAssertEqual(RunRequest.kernelFragments(["modules", "smmuv3"], workload: "sva"), ["modules", "smmuv3"])
        XCTAssertEqual(RunRequest.kernelFragments([], workload: "sva"), ["modules"])
    }

    func testOtherWorkloadsAndScriptsKeepTheirFragments() {
        XCTAssertEqual(RunRequest.kernelFragments(["smmuv3"], workload: "boot"), ["smmuv3"])
        XCTAssertEqual(RunRequest.kernelFragments(["smmuv3"], workload: "sva", workloadScript: "/tmp/sva.sh"), ["smmuv3"])
        XCTAssertFalse(RunRequest.runsSvaWorkload(workload: "sva", workloadScript: "/tmp/sva.sh"))
        XCTAssertTrue(RunRequest.runsSvaWorkload(workload: "sva", workloadScript: nil))
    }
}
