import Collect
import Foundation
import XCTest

/// The follower over a file rolled over the way virtlogd does it (rename to
/// `.0`, new file at the path), which happens to consoles and the trace port
/// past 2 MiB.
final class ConsoleFollowerTests: XCTestCase {
    func testFollowsAFileAcrossRollovers() throws {
        let directory = NSTemporaryDirectory() + "kharness-follower-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/trace-port.log"
        let follower = ConsoleFollower(path: path, chunkSize: 4)
        XCTAssertEqual(follower.read(), Data(), "no file yet")

        var writer = try XCTUnwrap(FileHandle(forWritingAtPath: { FileManager.default.createFile(atPath: path, contents: nil); return path }()))
        var seen = Data()
        func drain() { while true { let data = follower.read(); if data.isEmpty { break }; seen += data } }
        writer.write(Data("first ".utf8))
        drain()
        for round in 0..<3 {
            // The last write to the old file lands after the follower saw its end.
            writer.write(Data("tail\(round) ".utf8))
            try writer.close()
            try? FileManager.default.removeItem(atPath: path + ".1")
            if FileManager.default.fileExists(atPath: path + ".0") {
                try FileManager.default.moveItem(atPath: path + ".0", toPath: path + ".1")
            }
            try FileManager.default.moveItem(atPath: path, toPath: path + ".0")
            FileManager.default.createFile(atPath: path, contents: nil)
            writer = try XCTUnwrap(FileHandle(forWritingAtPath: path))
            writer.write(Data("new\(round) ".utf8))
            drain()
        }
        try writer.close()
        XCTAssertEqual(String(decoding: seen, as: UTF8.self), "first tail0 new0 tail1 new1 tail2 new2 ")
        XCTAssertEqual(follower.bytesRead, seen.count)
        XCTAssertEqual(follower.rollovers, 3)
    }
}
