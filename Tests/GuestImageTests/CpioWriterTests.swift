import Foundation
import Support
import XCTest

@testable import GuestImage

final class CpioWriterTests: XCTestCase {
    private func tempDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "kharness-cpio-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    /// The archive must be readable by GNU cpio, which is as strict as the
    /// kernel's unpacker about the newc header and padding.
    func testArchiveListsBackWithCpio() async throws {
        var writer = CpioWriter()
        writer.append(.directory(path: "/bin", mode: 0o755))
        writer.append(.file(path: "/bin/hello", mode: 0o755, contents: Data("#!/bin/sh\necho hi\n".utf8)))
        writer.append(.file(path: "/odd", mode: 0o644, contents: Data([1, 2, 3])))
        writer.append(.symlink(path: "/bin/sh", target: "busybox"))
        writer.append(.characterDevice(path: "/console", mode: 0o600, major: 5, minor: 1))
        let archive = writer.finish()
        XCTAssertEqual(archive.count % 4, 0)

        let dir = try tempDirectory()
        let path = dir + "/a.cpio"
        try archive.write(to: URL(fileURLWithPath: path))
        let listing = try await Command.check("sh", ["-c", "cpio -itv < \"$1\"", "sh", path])
        let lines = listing.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 5, listing.stdout)
        XCTAssertTrue(lines[0].hasPrefix("drwxr-xr-x") && lines[0].hasSuffix(" bin"), lines[0])
        XCTAssertTrue(lines[1].hasPrefix("-rwxr-xr-x") && lines[1].hasSuffix(" bin/hello"), lines[1])
        XCTAssertTrue(lines[3].hasPrefix("lrwxrwxrwx") && lines[3].hasSuffix("bin/sh -> busybox"), lines[3])
        XCTAssertTrue(lines[4].hasPrefix("crw-------") && lines[4].contains("5,") && lines[4].hasSuffix(" console"), lines[4])

        // Extract and compare contents byte for byte.
        let out = dir + "/out"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try await Command.check("sh", ["-c", "cd \"$1\" && cpio -id --no-absolute-filenames bin/hello odd < \"$2\"", "sh", out, path])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out + "/bin/hello")), Data("#!/bin/sh\necho hi\n".utf8))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out + "/odd")), Data([1, 2, 3]))
    }

    func testInitramfsIsCachedByContent() throws {
        let dir = try tempDirectory()
        let script = dir + "/init"
        try "#!/bin/sh\n".write(toFile: script, atomically: true, encoding: .utf8)
        let builder = InitramfsBuilder(cache: CacheDirectory(root: dir + "/cache"))
        let spec = InitramfsSpec(busybox: InitramfsSpec.busybox(in: .fromEnvironment()), files: [.init(hostPath: script, guestPath: "/init", mode: 0o755)])
        let first = try builder.build(spec)
        XCTAssertFalse(first.cacheHit)
        let second = try builder.build(spec)
        XCTAssertTrue(second.cacheHit)
        XCTAssertEqual(first.path, second.path)
        try "#!/bin/sh\necho changed\n".write(toFile: script, atomically: true, encoding: .utf8)
        let third = try builder.build(spec)
        XCTAssertFalse(third.cacheHit)
        XCTAssertNotEqual(third.path, first.path)
        XCTAssertTrue(third.manifest.contains("file 755 /init"))
    }

    func testRejectsNonArmBusybox() throws {
        let dir = try tempDirectory()
        let builder = InitramfsBuilder(cache: CacheDirectory(root: dir))
        // /bin/true is an x86-64 binary on the test host.
        XCTAssertThrowsError(try builder.build(InitramfsSpec(busybox: "/usr/bin/true", files: []))) { error in
            XCTAssertTrue("\(error)".contains("not an arm64 ELF"), "\(error)")
        }
    }

    func testModuleSelectionFollowsModulesDep() throws {
        let dir = try tempDirectory()
        let modules = dir + "/6.1.0-test"
        try FileManager.default.createDirectory(atPath: modules + "/kernel/a", withIntermediateDirectories: true)
        for name in ["x.ko", "y-dep.ko.xz", "z.ko"] {
            try "m".write(toFile: modules + "/kernel/a/" + name, atomically: true, encoding: .utf8)
        }
        try "kernel/a/x.ko: kernel/a/y-dep.ko.xz\nkernel/a/y-dep.ko.xz:\nkernel/a/z.ko:\n"
            .write(toFile: modules + "/modules.dep", atomically: true, encoding: .utf8)
        let files = try InitramfsBuilder.moduleFiles(.init(directory: modules, names: ["x"]))
        XCTAssertEqual(files, ["kernel/a/y-dep.ko.xz", "kernel/a/x.ko", "modules.dep"])
        XCTAssertThrowsError(try InitramfsBuilder.moduleFiles(.init(directory: modules, names: ["nope"])))
        try "kernel/drivers/pci/pci-stub.ko\n".write(toFile: modules + "/modules.builtin", atomically: true, encoding: .utf8)
        XCTAssertEqual(try InitramfsBuilder.moduleFiles(.init(directory: modules, names: ["pci-stub", "x"])),
                       ["kernel/a/y-dep.ko.xz", "kernel/a/x.ko", "modules.dep", "modules.builtin"])
        // modprobe's names: '-' and '_' alike; every dependency of a line, each once.
        try "kernel/a/x.ko: kernel/a/y-dep.ko.xz kernel/a/z.ko\nkernel/a/y-dep.ko.xz: kernel/a/z.ko\nkernel/a/z.ko:\n"
            .write(toFile: modules + "/modules.dep", atomically: true, encoding: .utf8)
        XCTAssertEqual(try InitramfsBuilder.moduleFiles(.init(directory: modules, names: ["x", "y_dep"])),
                       ["kernel/a/z.ko", "kernel/a/y-dep.ko.xz", "kernel/a/x.ko", "modules.dep", "modules.builtin"])
        XCTAssertEqual(InitramfsBuilder.moduleName("kernel/drivers/pci/pci-stub.ko.xz"), "pci_stub")
        XCTAssertEqual(InitramfsBuilder.moduleName("plain"), "plain")
    }
}
