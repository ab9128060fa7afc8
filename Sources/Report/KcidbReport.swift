import Classify
import Foundation
import Support

/// KCIDB JSON (schema 5.3, the newest kcidb-io knows): one checkout per kernel
/// source and patch series, one build per checkout and config, one test per run
/// and per scenario, one issue per report signature and one incident per
/// issue seen in a run. IDs are `kharness:<...>` and stable across renderings,
/// so submitting a report twice updates rather than duplicates.
public enum KcidbReport {
    public static let origin = "kharness"
    public static let schemaVersion = (major: 5, minor: 3)
    /// KCIDB's limit on log excerpts (characters).
    static let maxExcerpt = 16384
    /// Issues are reported once, at this version; a later report of the same
    /// signature describes the same issue.
    static let issueVersion = 1

    /// `artifactBaseURL`: where the results directory is published (log_url is
    /// `<base>/<run-id>/console.log`); KCIDB wants URLs, so without it the
    /// local paths go in `misc` only.
    public static func render(_ report: MatrixReport, artifactBaseURL: String? = nil) throws -> Data {
        var checkouts: [String: [String: Any]] = [:], builds: [String: [String: Any]] = [:]
        var checkoutOrder: [String] = [], buildOrder: [String] = []
        var tests: [[String: Any]] = [], incidents: [[String: Any]] = []
        let base = artifactBaseURL.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }

        for (index, cell) in report.cells.enumerated() {
            let result = cell.result
            let checkoutID = id("checkout-" + hash(checkoutKey(cell)))
            if checkouts[checkoutID] == nil {
                checkouts[checkoutID] = checkout(cell, id: checkoutID)
                checkoutOrder.append(checkoutID)
            }
            let buildID = id("build-" + hash(checkoutID + "|" + (result.build?.configHash ?? result.kernelIdentity ?? result.kernel)))
            if builds[buildID] == nil {
                builds[buildID] = build(cell, id: buildID, checkoutID: checkoutID)
                buildOrder.append(buildID)
            } else if result.status == .buildFail {
                builds[buildID]?["status"] = "FAIL"
            }
            guard result.status != .buildFail else {
                // Nothing ran: the build carries the failure and its incidents.
                for issue in report.issues where issue.cells.contains(index) {
                    incidents.append([
                        "id": id(result.runID + ":" + issue.signature), "origin": origin,
                        "issue_id": id(issue.signature), "issue_version": issueVersion,
                        "build_id": buildID, "present": true,
                    ])
                }
                continue
            }

            let testID = id(result.runID)
            var test: [String: Any] = [
                "id": testID, "build_id": buildID, "origin": origin,
                "path": path(result.workload), "status": result.status.rawValue,
                "environment": ["comment": clean("QEMU TCG arm64, machine \(result.machine)"),
                                "misc": ["machine": clean(result.machine)]],
                "misc": misc(cell, matrix: report.id),
            ]
            if let excerpt = failureExcerpt(cell) { test["log_excerpt"] = excerpt }
            if let comment = comment(cell) { test["comment"] = comment }
            if isTimestamp(result.startedAt) { test["start_time"] = result.startedAt }
            if let total = result.timings["total"] { test["duration"] = total }
            if let base {
                let directory = base + "/" + percentEncoded(result.runID)
                test["log_url"] = directory + "/console.log"
                test["output_files"] = ["console.log", "result.json", "trace-events.jsonl"]
                    .filter { name in cell.artifact(name).map(Files.exists) ?? false }
                    .map { ["name": $0, "url": directory + "/" + $0] }
            }
            tests.append(test)
            for scenario in result.scenarios {
                var scenarioTest: [String: Any] = [
                    "id": id(result.runID + "." + scenario.name), "build_id": buildID, "origin": origin,
                    "path": path(result.workload) + "." + pathComponent(scenario.name),
                    "status": scenario.status.rawValue,
                ]
                let text = ([scenario.reason] + scenario.evidence).filter { !$0.isEmpty }.joined(separator: "\n")
                if !text.isEmpty { scenarioTest["log_excerpt"] = excerpt(text) }
                if isTimestamp(result.startedAt) { scenarioTest["start_time"] = result.startedAt }
                tests.append(scenarioTest)
            }
            for issue in report.issues where issue.cells.contains(index) {
                incidents.append([
                    "id": id(result.runID + ":" + issue.signature), "origin": origin,
                    "issue_id": id(issue.signature), "issue_version": issueVersion,
                    "test_id": testID, "build_id": buildID, "present": true,
                ])
            }
        }

        let issues: [[String: Any]] = report.issues.map { issue in
            var object: [String: Any] = [
                "id": id(issue.signature), "version": issueVersion, "origin": origin,
                "report_subject": clean(issue.title),
                "culprit": ["code": true, "tool": false, "harness": false],  // ERROR (harness) never makes an issue
                "categories": ["runtime." + pathComponent(issue.category.rawValue)],
            ]
            var misc: [String: Any] = ["signature": clean(issue.signature), "category": clean(issue.category.rawValue)]
            if let frame = issue.guiltyFrame {
                object["comment"] = clean("in \(frame)")
                misc["guilty_frame"] = clean(frame)
            }
            if let seen = issue.firstSeen {
                misc["first_seen"] = ["run": clean(seen.runID), "time": clean(seen.time), "kernel": clean(seen.kernel)]
            }
            object["misc"] = misc
            return object
        }

        let document: [String: Any] = [
            "version": ["major": schemaVersion.major, "minor": schemaVersion.minor],
            "checkouts": checkoutOrder.compactMap { checkouts[$0] },
            "builds": buildOrder.compactMap { builds[$0] },
            "tests": tests, "issues": issues, "incidents": incidents,
        ]
        return try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys])
    }

    /// What identifies the source: the base commit and the patchset for
    /// built kernels, the package version for prebuilt ones.
    private static func checkoutKey(_ cell: ReportCell) -> String {
        if let build = cell.result.build { return "\(build.tree)|\(build.baseCommit)|\(build.patchsetHash)" }
        return cell.result.kernelIdentity ?? cell.result.kernel
    }

    private static func checkout(_ cell: ReportCell, id: String) -> [String: Any] {
        let result = cell.result
        var object: [String: Any] = ["id": id, "origin": origin, "valid": result.status != .buildFail]
        var misc: [String: Any] = ["kernel": clean(result.kernel)]
        if let identity = result.kernelIdentity { misc["kernel_identity"] = clean(identity) }
        if let build = result.build {
            if isCommit(build.baseCommit) { object["git_commit_hash"] = build.baseCommit }
            object["git_commit_name"] = clean(build.revision)
            if isPatchsetHash(build.patchsetHash) { object["patchset_hash"] = build.patchsetHash }
            if build.tree.hasPrefix("https://") { object["git_repository_url"] = clean(build.tree) }
            misc["tree"] = clean(build.tree)
            misc["built_commit"] = clean(build.builtCommit)
            misc["patches"] = build.patches.map { clean($0.subject) }
            if let series = cell.series { misc["series"] = clean(series) }
            if !build.patches.isEmpty {
                object["comment"] = clean("\(build.revision) + \(build.patches.count) patches: " +
                                          build.patches.map(\.subject).joined(separator: "; "))
            }
        } else {
            object["patchset_hash"] = ""
            object["comment"] = clean("prebuilt kernel \(result.kernelIdentity ?? result.kernel)")
        }
        if isTimestamp(result.startedAt) { object["start_time"] = result.startedAt }
        object["misc"] = misc
        return object
    }

    private static func build(_ cell: ReportCell, id: String, checkoutID: String) -> [String: Any] {
        let result = cell.result
        var object: [String: Any] = [
            "id": id, "checkout_id": checkoutID, "origin": origin, "architecture": "arm64",
            "status": result.status == .buildFail ? "FAIL" : "PASS",
        ]
        if let build = result.build {
            let fragments = build.configFragments.first == "base" ? build.configFragments : ["base"] + build.configFragments
            object["config_name"] = clean(fragments.joined(separator: "+"))
            object["compiler"] = clean(build.toolchain)
            if let total = build.timings["total"] ?? Optional(build.timings.values.reduce(0, +)), total > 0 {
                object["duration"] = total
            }
            object["misc"] = ["config_hash": clean(build.configHash), "cache_key": clean(build.cacheKey),
                              "cache_hit": build.cacheHit]
        } else {
            object["config_name"] = result.status == .buildFail ? clean(cell.configLabel) : "prebuilt"
            object["misc"] = ["kernel_identity": clean(result.kernelIdentity ?? result.kernel)]
        }
        if result.status == .buildFail { object["log_excerpt"] = excerpt(result.reason) }
        if isTimestamp(result.startedAt) { object["start_time"] = result.startedAt }
        return object
    }

    private static func misc(_ cell: ReportCell, matrix: String) -> [String: Any] {
        let result = cell.result
        var misc: [String: Any] = [
            "matrix_run": clean(matrix), "run_id": clean(result.runID), "repeat": cell.repeatIndex,
            "machine": clean(result.machine), "reason": clean(result.reason), "end": clean(result.end.rawValue),
            "reproducer": clean(cell.reproducer),
        ]
        if let release = result.kernelRelease { misc["kernel_release"] = clean(release) }
        if let directory = cell.runDirectory { misc["run_directory"] = clean(directory) }
        if let change = cell.change { misc["change"] = change.rawValue }
        return misc
    }

    private static func comment(_ cell: ReportCell) -> String? {
        cell.result.reason.isEmpty ? nil : clean(Escape.truncate(Escape.line(cell.result.reason), 400))
    }

    private static func failureExcerpt(_ cell: ReportCell) -> String? {
        cell.status == .pass ? nil : excerpt(cell.excerpt(maxLines: 400))
    }

    static func excerpt(_ text: String) -> String {
        let cleaned = clean(text)
        let scalars = cleaned.unicodeScalars
        guard scalars.count > maxExcerpt else { return cleaned }
        var cut = String.UnicodeScalarView()
        cut.append(contentsOf: scalars.prefix(maxExcerpt - 20))
        return String(cut) + "\n[... cut]"
    }

    /// KCIDB strings may not contain NUL.
    static func clean(_ text: String) -> String { text.replacingOccurrences(of: "\u{0}", with: "\u{fffd}") }

    static func id(_ text: String) -> String { origin + ":" + clean(text) }

    static func hash(_ text: String) -> String { String(Digest.sha256(text).prefix(16)) }

    /// KCIDB paths are dot-separated names of `[a-zA-Z0-9_-]`.
    static func pathComponent(_ text: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
        let mapped = String(text.prefix(100).map { allowed.contains($0) ? $0 : "_" })
        return mapped.isEmpty ? "_" : mapped
    }

    static func path(_ workload: String) -> String {
        // A workload script is named by its path: keep its file name.
        pathComponent(workload.contains("/") ? URL(fileURLWithPath: workload).lastPathComponent : workload)
    }

    private static func isCommit(_ text: String) -> Bool {
        text.count == 40 && text.allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }

    private static func isPatchsetHash(_ text: String) -> Bool {
        text.isEmpty || (text.count == 64 && text.allSatisfy { $0.isHexDigit && !$0.isUppercase })
    }

    private static func isTimestamp(_ text: String) -> Bool {
        ISO8601DateFormatter().date(from: text) != nil
    }

    private static func percentEncoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? text
    }
}
