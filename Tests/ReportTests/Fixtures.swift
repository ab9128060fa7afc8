import Classify
import Foundation
import Kernel
import RunModel
@testable import Report

/// Report inputs built the way the harness records them: RunResult values
/// (their parts from result.json-shaped JSON), run directories with real files.
enum Fixtures {
    static let hostile = "</script><script>document.body.setAttribute('data-pwned','1')</script>"
        + "<img src=x onerror=\"document.body.setAttribute('data-pwned','2')\"> ]]> & \u{1b}[31mred\u{1b}[0m \u{0}nul \u{202e}bidi"

    static let baseCommit = "3f0b5ad1e8e2c6c06f3c5d6a8b0f5ee2a1d2c3b4"
    static let patchsetHash = String(repeating: "ab", count: 32)

    static func build(patches: [String] = ["iommu/arm-smmu-v3: drop the PASID in __mmput()"]) -> [String: Any] {
        [
            "artifacts": ["image": "/cache/Image", "identity": "linux@\(baseCommit)+series"],
            "tree": "/src/linux", "revision": "v6.12", "baseCommit": baseCommit,
            "builtCommit": "9" + baseCommit.dropFirst(),
            "patches": patches.map { ["subject": $0, "sha256": String(repeating: "cd", count: 32), "files": ["kernel/fork.c"]] },
            "patchsetHash": patches.isEmpty ? "" : patchsetHash,
            "configFragments": ["smmuv3", "trace", "modules"], "configHash": String(repeating: "ef", count: 32),
            "toolchain": "aarch64-linux-gnu-gcc 12.2.0", "cacheKey": "k123", "cacheHit": true,
            "buildLog": "/cache/build.log", "timings": ["compile": 20.5], "objectsBuilt": 0,
        ]
    }

    static func kasan(title: String = "KASAN: slab-use-after-free Read in mm_pasid_drop", signature: String = "0123456789abcdef") -> [String: Any] {
        ["category": "kasan", "title": title, "signature": signature, "guiltyFrame": "mm_pasid_drop",
         "text": "BUG: KASAN: slab-use-after-free in mm_pasid_drop+0x2c/0x60\nRead of size 4 at addr ffff000012345678 by task nginx/85\nCall trace:\n mm_pasid_drop+0x2c/0x60\n __mmput+0x80/0x150",
         "corrupted": false, "suppressed": false, "line": 120]
    }

    static func kasanReport() -> KernelReport {
        let data = try! JSONSerialization.data(withJSONObject: kasan())
        return try! JSONDecoder().decode(KernelReport.self, from: data)
    }

    static func result(
        id: String, kernel: String = "git:/src/linux@v6.12", status: String, reason: String = "",
        machine: String = "sva", workload: String = "sva", build: [String: Any]? = Fixtures.build(),
        reports: [[String: Any]] = [], scenarios: [[String: Any]] = [], violations: [[String: Any]] = [],
        startedAt: String = "2026-11-25T01:00:00Z", identity: String? = nil
    ) -> RunResult {
        RunResult(
            runID: id, status: RunStatus(rawValue: status)!, reason: reason, evidence: [], kernel: kernel,
            kernelIdentity: identity, build: build.map { decoded(KernelBuild.self, $0) },
            kernelRelease: "6.12.0-kharness", machine: machine, workload: workload, end: .finished,
            scenarios: scenarios.map { decoded(ScenarioResult.self, $0) },
            reports: reports.map { decoded(KernelReport.self, $0) },
            lifecycleViolations: violations.map { decoded(PasidLifecycleOracle.Violation.self, $0) },
            timings: ["total": 12.5, "boot": 3.2], consoleBytes: 1000, startedAt: startedAt, finishedAt: startedAt)
    }

    /// A part of a record from the JSON-shaped dictionary the tests edit (hostile
    /// strings in any field); KernelBuild has no public initializer.
    static func decoded<T: Decodable>(_ type: T.Type, _ object: [String: Any]) -> T {
        try! JSONDecoder().decode(type, from: try! JSONSerialization.data(withJSONObject: object))
    }

    static func scenario(_ name: String, _ status: String, _ reason: String = "") -> [String: Any] {
        ["name": name, "status": status, "reason": reason, "evidence": [], "ended": true]
    }

    /// A trace of the planted bug: two processes, the first's PASID freed
    /// while bound, then rebound by the second.
    static let traceEvents = """
    {"ts": 10.000100, "pid": 84, "comm": "kharness-sva", "event": "fork", "child": 85}
    {"ts": 10.000200, "pid": 85, "comm": "nginx", "event": "pasid_alloc", "pasid": 1, "mm": "ffff0000c0a1b000"}
    {"ts": 10.000300, "pid": 85, "comm": "nginx", "event": "bind", "pasid": 1, "mm": "ffff0000c0a1b000"}
    not json at all
    {"ts": 10.000350, "pid": 85, "event": "sched_switch"}
    {"ts": "x", "pid": 85, "event": "bind"}
    {"ts": 10.000400, "pid": 85, "comm": "nginx", "event": "exit"}
    {"ts": 10.000450, "pid": 85, "comm": "nginx", "event": "mm_pasid_drop", "pasid": 1, "mm": "ffff0000c0a1b000"}
    {"ts": 10.000460, "pid": 85, "comm": "nginx", "event": "mm_drop", "mm": "ffff0000c0a1b000"}
    {"ts": 10.000500, "pid": 85, "comm": "nginx", "event": "pasid_free", "pasid": 1}
    {"ts": 10.000600, "pid": 84, "comm": "kharness-sva", "event": "fork", "child": 86}
    {"ts": 10.000700, "pid": 86, "comm": \(String(decoding: try! JSONEncoder().encode(hostile), as: UTF8.self)), "event": "pasid_alloc", "pasid": 1}
    {"ts": 10.000800, "pid": 86, "event": "bind", "pasid": 1, "mm": "ffff0000c0a2c000"}
    {"ts": 10.000900, "pid": 86, "event": "unbind", "pasid": 1, "mm": "ffff0000c0a2c000"}
    {"ts": 10.001000, "pid": 86, "event": "exit"}

    """

    /// A matrix run with every outcome, hostile guest text, and run
    /// directories under `root`.
    static func matrix(root: String) throws -> MatrixReport {
        func directory(_ id: String, trace: String? = nil) throws -> String {
            let path = "\(root)/results/\(id)"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            try "[    0.000000] Booting Linux\n".write(toFile: "\(path)/console.log", atomically: true, encoding: .utf8)
            try "{}".write(toFile: "\(path)/result.json", atomically: true, encoding: .utf8)
            if let trace { try trace.write(toFile: "\(path)/trace-events.jsonl", atomically: true, encoding: .utf8) }
            return path
        }
        func buildFailed() throws -> String {
            let path = "\(root)/results/run-nosmmu-buildfail"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            try "drivers/iommu/foo.c:12:3: error: expected ';'\n".write(toFile: "\(path)/build.log", atomically: true, encoding: .utf8)
            return path
        }
        let violation: [String: Any] = ["title": "PASID 1 freed while still bound to pid 85",
                                        "evidence": ["sva_accel_bind: pasid=1 mm=ffff0000c0a1b000 pid=85 ret=0", "free_global_pasid: pasid=1"]]
        var hostileReport = kasan(title: "WARNING in " + hostile, signature: "fedcba9876543210")
        hostileReport["category"] = "warning"
        hostileReport["text"] = "WARNING: CPU: 0 PID: 85 at " + hostile + "\nline two"
        let cells = [
            ReportCell(result: result(id: "run-debian-pass", kernel: "debian:6.1", status: "PASS", reason: "booted",
                                      machine: "stock", workload: "boot", build: nil, identity: "6.1.0-27-arm64 6.1.115-1"),
                       runDirectory: try directory("run-debian-pass")),
            ReportCell(result: result(id: "run-sva-fail", status: "FAIL", reason: "KASAN: slab-use-after-free Read in mm_pasid_drop",
                                      reports: [kasan(), hostileReport],
                                      scenarios: [scenario("nginx", "PASS"), scenario("pasid-reuse", "FAIL", "canary page changed: " + hostile)],
                                      violations: [violation], startedAt: "2026-11-25T01:01:00Z"),
                       repeatIndex: 1, runDirectory: try directory("run-sva-fail", trace: traceEvents),
                       series: "/tmp/pasid fix.mbox", scenarios: ["nginx", "pasid-reuse"]),
            ReportCell(result: result(id: "run-sva-pass", status: "PASS", reason: "12 of 12 scenarios passed",
                                      scenarios: [scenario("nginx", "PASS"), scenario("pasid-reuse", "PASS")],
                                      startedAt: "2026-11-25T01:02:00Z"),
                       repeatIndex: 2, runDirectory: try directory("run-sva-pass", trace: traceEvents),
                       series: "/tmp/pasid fix.mbox", scenarios: ["nginx", "pasid-reuse"]),
            ReportCell(result: result(id: "run-stock-error", status: "ERROR", reason: "libvirt: connection lost " + hostile,
                                      machine: "stock", workload: "boot"),
                       runDirectory: try directory("run-stock-error")),
            ReportCell(result: result(id: "run-nosmmu-buildfail", status: "BUILD_FAIL",
                                      reason: "drivers/iommu/foo.c:12:3: error: expected ';'", machine: "nosmmu",
                                      workload: "boot", build: nil),
                       runDirectory: try buildFailed(), configFragments: ["smmuv3", "kasan"]),
        ]
        var report = MatrixReport(id: "matrix-20261125-0100", startedAt: "2026-11-25T01:00:00Z", cells: cells)
        Regressions.annotate(&report)
        return report
    }
}
