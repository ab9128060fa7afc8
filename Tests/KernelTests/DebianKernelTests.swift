import Foundation
import Support
import XCTest

@testable import Kernel

final class DebianKernelTests: XCTestCase {
    /// The shape `apt-cache show linux-image-arm64:arm64` prints, trimmed.
    static let aptShow = """
        Package: linux-image-arm64
        Architecture: arm64
        Version: 7.3.4-1~bpo13+1
        Depends: linux-base-arm64 (= 7.3.4-1~bpo13+1), linux-image-7.3.4+deb13-arm64 (= 7.3.4-1~bpo13+1), linux-modules-arm64 (= 7.3.4-1~bpo13+1)

        Package: linux-image-arm64
        Version: 6.12.95-1~bpo12+1
        Depends: linux-image-6.12.95+deb12-arm64 (= 6.12.95-1~bpo12+1)

        Package: linux-image-arm64
        Version: 6.1.192-2
        Depends: linux-image-6.1.0-56-arm64 (= 6.1.192-2)

        Package: linux-image-arm64
        Version: 6.1.176-1
        Depends: linux-image-6.1.0-44-arm64 (= 6.1.176-1)
        """

    func testChoosesTheNewestPackageOfTheRequestedSeries() throws {
        let all = DebianKernelFetcher.candidates(fromAptShow: Self.aptShow)
        XCTAssertEqual(all.count, 4)
        let six1 = try XCTUnwrap(DebianKernelFetcher.choose("6.1", from: all))
        XCTAssertEqual(six1.imagePackage, "linux-image-6.1.0-56-arm64")
        XCTAssertEqual(six1.metaVersion, "6.1.192-2")
        XCTAssertEqual(six1.extraPackages, [])
        XCTAssertEqual(DebianKernelFetcher.choose("6.1.176", from: all)?.imagePackage, "linux-image-6.1.0-44-arm64")
        // 6.1 must not match 6.12.
        XCTAssertEqual(DebianKernelFetcher.choose("6.12", from: all)?.upstream, "6.12.95")
        XCTAssertNil(DebianKernelFetcher.choose("6.2", from: all))
    }

    func testSplitModulesPackageIsFetchedToo() throws {
        let all = DebianKernelFetcher.candidates(fromAptShow: Self.aptShow)
        let seven = try XCTUnwrap(DebianKernelFetcher.choose("7.3", from: all))
        XCTAssertEqual(seven.imagePackage, "linux-image-7.3.4+deb13-arm64")
        XCTAssertEqual(seven.extraPackages, ["linux-modules-7.3.4+deb13-arm64"])
    }

    /// Against the machine's real apt: an unknown version names the ones that exist.
    func testUnknownVersionListsTheAvailableOnes() async throws {
        let cache = CacheDirectory(root: NSTemporaryDirectory() + "kharness-debian-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: cache.root) }
        do {
            _ = try await DebianKernelFetcher(cache: cache).fetch(version: "4.19")
            XCTFail("debian:4.19 should not exist")
        } catch let error as HarnessError {
            XCTAssertEqual(error.kind, .badInput)
            XCTAssertTrue(error.description.hasPrefix("debian:4.19: no such Debian arm64 kernel; available: "), error.description)
            XCTAssertTrue(error.description.contains("6.1"), error.description)
        }
    }

    func testKernelSpecParsing() throws {
        XCTAssertEqual(try KernelSpec(parsing: "debian:6.1"), .debian(version: "6.1"))
        XCTAssertEqual(try KernelSpec(parsing: "image:/a/Image,modules=/m"), .image(path: "/a/Image", modules: "/m"))
        XCTAssertEqual(try KernelSpec(parsing: "git:/src/linux@v6.12"), .git(tree: "/src/linux", revision: "v6.12"))
        XCTAssertEqual(try KernelSpec(parsing: "git:git@host:linux@abc"), .git(tree: "git@host:linux", revision: "abc"))
        for bad in ["6.1", "debian:", "debian:six", "image:", "image:/a,bogus=1", "git:/src/linux", "git:@v1", "rpm:x"] {
            XCTAssertThrowsError(try KernelSpec(parsing: bad), bad) { error in
                XCTAssertEqual((error as? HarnessError)?.kind, .badInput, bad)
            }
        }
    }

    func testImageValidationRecognisesKernels() throws {
        let dir = NSTemporaryDirectory() + "kharness-img-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var header = [UInt8](repeating: 0, count: 64)
        header[56...59] = [0x41, 0x52, 0x4d, 0x64]
        try Data(header).write(to: URL(fileURLWithPath: dir + "/Image"))
        XCTAssertEqual(try KernelImageFile.format(of: dir + "/Image"), .arm64Image)
        XCTAssertNoThrow(try KernelImageFile.validate(dir + "/Image"))
        try Data("hello".utf8).write(to: URL(fileURLWithPath: dir + "/text"))
        XCTAssertThrowsError(try KernelImageFile.validate(dir + "/text"))
        XCTAssertThrowsError(try KernelImageFile.validate(dir + "/missing"))
    }
}
