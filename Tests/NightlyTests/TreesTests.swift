import Foundation
import Support
import XCTest

@testable import Nightly

/// A revision from a config file is a revision, never a git option.
final class TreesTests: XCTestCase {
    func testARevisionThatLooksLikeAnOptionIsNotOne() async throws {
        let tree = NSTemporaryDirectory() + "kharness-trees-\(UUID().uuidString)"
        try Files.createDirectory(tree)
        defer { try? FileManager.default.removeItem(atPath: tree) }
        for args in [["init", "--quiet"], ["-c", "user.name=k", "-c", "user.email=k@example.invalid",
                                           "commit", "--quiet", "--allow-empty", "-m", "first"]] {
            try await Command.check("git", ["-C", tree] + args)
        }
        let head = try await Trees.resolve(tree, "HEAD")
        XCTAssertEqual(head.subject, "first")
        let written = tree + "/written-by-git"
        do {
            _ = try await Trees.resolve(tree, "--output=\(written)")
            XCTFail("resolved an option")
        } catch let error as HarnessError {
            XCTAssertEqual(error.kind, .badInput)
            XCTAssertTrue(error.description.hasPrefix("\(tree)@--output=\(written): not a commit in that tree"), error.description)
        }
        // Without --end-of-options git log writes its output to "written-by-git^{commit}".
        let files = try FileManager.default.contentsOfDirectory(atPath: tree)
        XCTAssertFalse(files.contains { $0.hasPrefix("written-by-git") }, "git took the revision for an option: \(files)")
    }
}
