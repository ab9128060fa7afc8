import Foundation
import Support
import XCTest

/// The outside checkers scripts/setup installs: kcidb-io's validator (PyPI,
/// in a venv in the cache) and Debian's chromium. Missing ones fail the
/// test: a report nobody validated is not a tested report.
enum Tools {
    static var kcidbPython: String { CacheDirectory.fromEnvironment().root + "/venv-kcidb/bin/python" }
    static let chromium = "/usr/bin/chromium"

    static func require(_ path: String) throws -> String {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            XCTFail("\(path) is missing: run scripts/setup")
            throw XCTSkip("\(path) missing")
        }
        return path
    }

    /// Validates a KCIDB document with kcidb-io's own schema (the newest it
    /// ships, with its format checks); returns the schema version checked.
    static func validateKcidb(_ data: Data, file: StaticString = #filePath, line: UInt = #line) async throws -> String {
        let python = try require(kcidbPython)
        let path = NSTemporaryDirectory() + "kcidb-\(UUID().uuidString).json"
        try data.write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let script = """
        import json, sys, kcidb_io
        schema = kcidb_io.schema.LATEST
        with open(sys.argv[1]) as f:
            data = json.load(f)
        schema.validate_exactly(data)
        print(f"{schema.major}.{schema.minor}")
        """
        let result = try await Command.run(python, ["-c", script, path])
        XCTAssertEqual(result.status, 0, "kcidb-io rejected the report: \(result.stderr.suffix(3000))", file: file, line: line)
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Renders a page in headless Chromium and returns the DOM after its
    /// scripts ran, with the browser's console messages.
    static func renderInChromium(_ htmlPath: String, screenshot: String? = nil) async throws -> (dom: String, log: String) {
        let chromium = try require(chromium)
        let profile = NSTemporaryDirectory() + "chromium-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: profile) }
        var arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile)",
                         "--enable-logging=stderr", "--v=0", "--no-first-run", "--disable-extensions",
                         "--virtual-time-budget=2000"]
        if let screenshot {
            arguments += ["--screenshot=\(screenshot)", "--window-size=1280,1600"]
        } else {
            arguments.append("--dump-dom")
        }
        arguments.append(URL(fileURLWithPath: htmlPath).absoluteString)
        let result = try await Command.run(chromium, arguments)
        XCTAssertEqual(result.status, 0, "chromium failed: \(result.stderr.suffix(2000))")
        return (result.stdout, result.stderr)
    }
}
