import Classify
import Support
import Foundation
import RunModel
import XCTest

@testable import Harness

/// Inputs are checked before anything expensive starts: no run directory, no kernel
/// build, no domain.
final class RunValidationTests: XCTestCase {
    func testBadSuppressionFileIsRefusedBeforeTheRunStarts() async throws {
        let directory = NSTemporaryDirectory() + "kharness-validate-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = "\(directory)/supp.yaml"
        try "- titel: typo\n".write(toFile: file, atomically: true, encoding: .utf8)
        // A kernel that would take a build: the refusal must come first.
        var request = RunRequest(kernel: .git(tree: "/nonexistent/linux", revision: "HEAD"))
        request.suppressionsFile = file
        request.resultsRoot = "\(directory)/results"
        XCTAssertThrowsError(try Runner.validate(request)) { error in
            XCTAssertEqual("\(error)", "\(file): rule 1: unknown key 'titel' (known: title, signature, kernel, machine, reason)")
        }
        do {
            _ = try await Runner(cache: CacheDirectory(root: "\(directory)/cache")).run(request)
            XCTFail("the run started")
        } catch {
            XCTAssertTrue("\(error)".hasPrefix(file), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(directory)/results"), "no run directory")
    }

    /// A binding pattern the driver does not know would fail insmod in the guest and read as
    /// the kernel's failure; it is refused up front with one line naming it.
    func testUnknownBindingPatternIsRefused() throws {
        var request = RunRequest(kernel: .git(tree: "/nonexistent/linux", revision: "HEAD"))
        request.machine = "sva"
        request.workload = "sva"
        request.extraCmdline = ["quiet", "kharness.sva.pattern=uace"]
        XCTAssertThrowsError(try Runner.validate(request)) { error in
            XCTAssertEqual("\(error)", "kharness.sva.pattern=uace: unknown binding pattern (known: careful, uacce, deferred, uio)")
        }
        for pattern in SvaWorkloadBuilder.bindingPatterns {
            request.extraCmdline = ["kharness.sva.pattern=\(pattern)"]
            XCTAssertNoThrow(try Runner.validate(request), pattern)
        }
    }
}
