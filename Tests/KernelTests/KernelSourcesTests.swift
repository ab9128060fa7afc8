import KernelTestSupport
import XCTest

/// The release the source-kernel tests expect is read from the tree's
/// Makefile as kbuild composes KERNELVERSION.
final class KernelSourcesTests: XCTestCase {
    func makefile(_ sublevel: String, _ extraversion: String) -> String {
        "# SPDX-License-Identifier: GPL-2.0\nVERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = \(sublevel)\n"
            + "EXTRAVERSION =\(extraversion)\nNAME = Baby Opossum Posse\n\n# *DOCUMENTATION*\nVERSION = 7\n"
    }

    func testKernelVersionFollowsTheMakefile() throws {
        XCTAssertEqual(try KernelSources.kernelVersion(makefile: makefile("118", "")), "6.12.118")
        XCTAssertEqual(try KernelSources.kernelVersion(makefile: makefile("0", " -rc3")), "6.12.0-rc3")
        XCTAssertEqual(try KernelSources.kernelVersion(makefile: "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL =\nEXTRAVERSION =\n"), "6.1")
        XCTAssertThrowsError(try KernelSources.kernelVersion(makefile: "all:\n\ttrue\n"))
    }
}
