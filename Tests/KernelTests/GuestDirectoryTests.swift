import Foundation
import Harness
import Kernel
import KernelTestSupport
import Support
import XCTest

/// The one walk that finds guest/: its limits, and both users finding this checkout's.
final class GuestDirectoryTests: XCTestCase {
    func testTheWalkStopsWhereItIsTold() throws {
        let root = Checkout.scratchDirectory("kharness-guest-walk")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/guest/init", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: root + "/guest/init/init", contents: Data())
        let deep = root + "/a/b/c"
        try FileManager.default.createDirectory(atPath: deep, withIntermediateDirectories: true)

        let start = URL(fileURLWithPath: deep)
        XCTAssertEqual(GuestDirectory.find(holding: "init/init", walkingUpFrom: start, includingRoot: false), root + "/guest")
        XCTAssertEqual(GuestDirectory.find(holding: "init/init", walkingUpFrom: start, levels: 4, includingRoot: true), root + "/guest")
        XCTAssertNil(GuestDirectory.find(holding: "init/init", walkingUpFrom: start, levels: 3, includingRoot: true))
        XCTAssertNil(GuestDirectory.find(holding: "configs/base.config", walkingUpFrom: start, includingRoot: true))
        XCTAssertEqual(GuestDirectory.find(holding: "init/init", walkingUpFrom: URL(fileURLWithPath: root), levels: 1,
                                           includingRoot: true), root + "/guest")
    }

    func testTheAssetsAndTheConfigFragmentsAreThisCheckouts() throws {
        let saved = ["KHARNESS_GUEST_DIR", "KHARNESS_CONFIG_DIR"].map { ($0, ProcessInfo.processInfo.environment[$0]) }
        defer { for (name, value) in saved { if let value { setenv(name, value, 1) } else { unsetenv(name) } } }
        for (name, _) in saved { unsetenv(name) }
        XCTAssertEqual(try GuestAssets.directory(), Checkout.path("guest"))
        XCTAssertEqual(try KernelBuilder.defaultConfigDirectory(), Checkout.path("guest/configs"))
    }
}
