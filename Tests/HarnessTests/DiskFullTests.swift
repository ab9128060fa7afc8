import Foundation
import GuestImage
import KernelTestSupport
import RunModel
import Support
import XCTest

/// The machine failing under a run (a full disk, a cache that is gone) is
/// ERROR, exit 3: one line naming the path and the system's reason, and
/// nothing half-written left behind. Through the built executable, so the line
/// and the exit code are what a user sees; no kernel is booted, the run fails
/// before that.
final class DiskFullTests: XCTestCase {
    var scratch = ""

    override func setUp() {
        scratch = Checkout.scratchDirectory("kharness-disk-full")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: scratch)
    }

    /// The results directory on a tmpfs of 64 KiB, filled up before the run:
    /// mounted in a user and mount namespace of its own (`unshare`), so the test
    /// needs no privilege and the mount goes away with the namespace.
    func testAFullResultsDirectoryIsOneLineErrorAndLeavesNoTemporaryFile() async throws {
        guard let kharness = Checkout.builtExecutable else { throw XCTSkip(Checkout.missingExecutable) }
        let results = scratch + "/results"
        try Files.createDirectory(results)
        let script = """
            mount -t tmpfs -o size=64k kharness-full "$1" || exit 97
            dd if=/dev/zero of="$1/filler" bs=4k 2>/dev/null
            "$2" run --kernel image:/nonexistent/Image --results "$1/runs" --quiet >"$3/stdout" 2>"$3/stderr"
            echo "exit $?"
            find "$1" -name '.*.tmp-*' -printf 'temporary %P\\n'
            find "$1/runs" -type f -printf 'file %P\\n' 2>/dev/null
            """
        let result = try await Command.run(
            "unshare", ["--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", results, kharness, scratch],
            environment: ["KHARNESS_GUEST_DIR": Checkout.path("guest"), "KHARNESS_CACHE": scratch + "/cache"])
        guard result.succeeded, result.stdout.hasPrefix("exit ") else {
            throw XCTSkip("no tmpfs in a user namespace here: \(result.lastErrorLine)")
        }
        let report = result.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(report.first, "exit \(ExitStatus.error)", "\(report)")
        XCTAssertEqual(report.dropFirst().filter { $0.hasPrefix("temporary ") }, [], "a temporary file was left")

        let stderr = try String(contentsOfFile: scratch + "/stderr", encoding: .utf8)
        let lines = stderr.split(separator: "\n").map(String.init)
        let errors = lines.filter { !$0.hasPrefix("kharness: run ") }
        XCTAssertEqual(errors.count, 1, stderr)
        let line = try XCTUnwrap(errors.first)
        XCTAssertTrue(line.hasPrefix("kharness: error: \(results)/runs/"), line)
        XCTAssertTrue(line.hasSuffix(": No space left on device"), line)
        XCTAssertEqual(try String(contentsOfFile: scratch + "/stdout", encoding: .utf8), "", "a run ID for a run not recorded")
    }

    /// The cache is gone and a file is where it was: the run is recorded as ERROR
    /// (end `infrastructure`) with the one line, and exits 3. The busybox comes from
    /// the real cache, so the run gets as far as the initramfs cache.
    func testACacheThatIsGoneIsOneLineError() async throws {
        guard let kharness = Checkout.builtExecutable else { throw XCTSkip(Checkout.missingExecutable) }
        let busybox = InitramfsSpec.busybox(in: .fromEnvironment())
        guard Files.exists(busybox) else { throw XCTSkip("no arm64 busybox (scripts/setup)") }
        let image = scratch + "/Image"
        // Only the header an arm64 Image is recognized by: the run fails before it boots.
        var header = Data(count: 64)
        header.replaceSubrange(56..<60, with: Array("ARM\u{64}".utf8))
        try Files.writeAtomically(header, to: image)
        try Files.writeAtomically("the cache was here\n", to: scratch + "/cache")
        let results = scratch + "/results"
        let result = try await Command.run(
            kharness, ["run", "--kernel", "image:" + image, "--results", results, "--quiet"],
            environment: ["KHARNESS_GUEST_DIR": Checkout.path("guest"), "KHARNESS_CACHE": scratch + "/cache/kharness",
                          "KHARNESS_BUSYBOX": busybox])
        XCTAssertEqual(result.status, ExitStatus.error, result.stderr)
        let line = try XCTUnwrap(result.stderr.split(separator: "\n").last.map(String.init))
        XCTAssertEqual(line, "kharness: ERROR: \(scratch)/cache/kharness: Not a directory", result.stderr)
        XCTAssertFalse(result.stderr.contains("Error Domain"), result.stderr)

        let runID = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(results)/\(runID)/result.json"))
        let record = try JSONDecoder().decode(RunResult.self, from: data)
        XCTAssertEqual(record.status, .error)
        XCTAssertEqual(record.end, .infrastructure)
        XCTAssertEqual(record.reason, "\(scratch)/cache/kharness: Not a directory")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(results)/\(runID)")
            .filter { $0.contains(".tmp-") }, [])
    }

    /// The busybox scripts/setup put into the cache is gone with the cache: ERROR, not
    /// the user's input, since the user named no busybox.
    func testABusyboxGoneWithTheCacheIsError() async throws {
        guard let kharness = Checkout.builtExecutable else { throw XCTSkip(Checkout.missingExecutable) }
        let image = scratch + "/Image"
        var header = Data(count: 64)
        header.replaceSubrange(56..<60, with: Array("ARM\u{64}".utf8))
        try Files.writeAtomically(header, to: image)
        let cache = scratch + "/empty-cache"
        let result = try await Command.run(
            kharness, ["run", "--kernel", "image:" + image, "--results", scratch + "/results", "--quiet"],
            environment: ["KHARNESS_GUEST_DIR": Checkout.path("guest"), "KHARNESS_CACHE": cache, "KHARNESS_BUSYBOX": ""])
        XCTAssertEqual(result.status, ExitStatus.error, result.stderr)
        XCTAssertEqual(result.stderr.split(separator: "\n").last.map(String.init),
                       "kharness: ERROR: \(cache)/busybox-arm64/bin/busybox: busybox not found (scripts/setup extracts busybox-static:arm64 there)")
    }
}
