import Foundation
import XCTest

@testable import Support

/// A write that fails (a full disk, a file-size limit, a directory removed
/// under the run) is one line naming the path and the system's reason, an
/// infrastructure error, and leaves no temporary file and no half-written file.
final class WriteFailureTests: XCTestCase {
    var directory = ""

    override func setUp() {
        directory = NSTemporaryDirectory() + "kharness-write-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// /dev/full fails every write with ENOSPC, as a full disk does.
    func testAFullDeviceIsNoSpaceLeftOnDevice() throws {
        let fd = open("/dev/full", O_WRONLY)
        try XCTSkipIf(fd < 0, "no /dev/full")
        defer { close(fd) }
        do {
            try Files.writeAll(Data("{}".utf8), to: fd, path: directory + "/result.json")
            XCTFail("wrote to /dev/full")
        } catch let error as HarnessError {
            XCTAssertEqual(error.kind, .infrastructure)
            XCTAssertEqual(error.description, directory + "/result.json: No space left on device")
        }
    }

    /// Foundation's own error for the same failure says the same line.
    func testFoundationsFileErrorsBecomeThePathAndTheErrnoText() throws {
        do {
            try Data("{}".utf8).write(to: URL(fileURLWithPath: "/dev/full"))
            XCTFail("wrote to /dev/full")
        } catch {
            let line = HarnessError(error)
            XCTAssertEqual(line.kind, .infrastructure)
            XCTAssertEqual(line.description, "/dev/full: No space left on device")
        }
        do {
            _ = try FileManager.default.contentsOfDirectory(atPath: directory + "/vanished")
            XCTFail("listed a directory that does not exist")
        } catch {
            let line = HarnessError(error)
            XCTAssertEqual(line.kind, .infrastructure)
            XCTAssertTrue(line.description.hasPrefix(directory + "/vanished: "), line.description)
            XCTAssertFalse(line.description.contains("\n"), line.description)
        }
    }

    /// The kernel stops the write part-way (RLIMIT_FSIZE, EFBIG): the old file
    /// stays whole and the half-written temporary is removed.
    func testAWriteStoppedPartWayLeavesTheOldFileAndNoTemporary() throws {
        let path = directory + "/result.json"
        try Files.writeAtomically("old\n", to: path)
        var saved = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved), 0)
        let previousHandler = signal(SIGXFSZ, SIG_IGN)
        var limited = saved
        limited.rlim_cur = 4096
        XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limited), 0)
        defer {
            setrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
            signal(SIGXFSZ, previousHandler)
        }
        do {
            try Files.writeAtomically(Data(repeating: UInt8(ascii: "x"), count: 64 << 10), to: path)
            XCTFail("wrote past the file-size limit")
        } catch let error as HarnessError {
            XCTAssertEqual(error.kind, .infrastructure)
            XCTAssertEqual(error.description, path + ": " + String(cString: strerror(EFBIG)))
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "old\n")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["result.json"])
    }

    /// A cache or results directory removed under a run.
    func testAVanishedDirectoryIsOneLineAndLeavesNothing() throws {
        let gone = directory + "/cache/kernel-builds"
        try Files.createDirectory(gone)
        try FileManager.default.removeItem(atPath: directory + "/cache")
        do {
            try Files.writeAtomically("{}", to: gone + "/build.json")
            XCTFail("wrote into a removed directory")
        } catch let error as HarnessError {
            XCTAssertEqual(error.kind, .infrastructure)
            XCTAssertEqual(error.description, gone + "/build.json: No such file or directory")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), [])
    }

    /// A path that cannot be a directory (a file is in the way) names the path.
    func testADirectoryThatCannotBeCreatedIsOneLine() throws {
        try Files.writeAtomically("a file\n", to: directory + "/file")
        do {
            try Files.createDirectory(directory + "/file/cache")
            XCTFail("created a directory under a file")
        } catch let error as HarnessError {
            XCTAssertEqual(error.kind, .infrastructure)
            XCTAssertTrue(error.description.hasPrefix(directory + "/file"), error.description)
            XCTAssertTrue(error.description.hasSuffix(": Not a directory") || error.description.hasSuffix(": File exists"),
                          error.description)
        }
    }

    func testAWriteThatSucceedsReplacesTheFileWhole() throws {
        let path = directory + "/result.json"
        try Files.writeAtomically("old\n", to: path)
        try Files.writeAtomically("new\n", to: path)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "new\n")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["result.json"])
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        XCTAssertEqual(mode.map { $0 & 0o044 }, 0o044, "not readable by libvirt's QEMU user")
    }
}
