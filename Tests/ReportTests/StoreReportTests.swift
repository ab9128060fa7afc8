import Foundation
import Harness
import Store
import Support
import XCTest
@testable import Report

/// `kharness report` end to end: real runs of Debian's 6.1 kernel under
/// libvirt (one whose workload crashes the kernel through sysrq), recorded
/// in a real store as two matrix runs, then reported in every format by the
/// command line and checked with kcidb-io, xmllint and headless Chromium.
final class StoreReportTests: XCTestCase {
    var root = ""

    override func setUp() {
        root = NSTemporaryDirectory() + "report-e2e-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
    }

    func kharness() throws -> String {
        let products = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var path = products.appendingPathComponent("kharness").path
        if !FileManager.default.fileExists(atPath: path) {
            path = products.deletingLastPathComponent().appendingPathComponent("kharness").path
        }
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: path), "build the kharness executable first (scripts/test does)")
        return path
    }

    /// One real run; returns its run ID.
    func run(_ arguments: [String]) async throws -> String {
        let result = try await Command.run(try kharness(), ["run", "--kernel", "debian:6.1", "--results", root + "/results",
                                                            "--quiet", "--timeout", "180"] + arguments)
        let runID = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertFalse(runID.isEmpty, result.stderr)
        return runID
    }

    func result(_ runID: String) throws -> RunResult {
        try JSONDecoder().decode(RunResult.self, from: Data(contentsOf: URL(fileURLWithPath: "\(root)/results/\(runID)/result.json")))
    }

    /// Records finished harness runs as one matrix run, the way the matrix runner does.
    func record(_ store: Store, matrix: String, cells: [(workload: String, runID: String)]) throws {
        let records = try store.createRun(
            MatrixRunRecord(id: matrix, name: "report-e2e", matrixFile: root + "/matrix.yaml", matrixText: "", matrixHash: "",
                            withoutSeries: false, resultsDirectory: root + "/results", parallelism: 1),
            cells: cells.enumerated().map { index, cell in
                CellRecord(runID: matrix, ordinal: index, kernelName: "debian-6.1", kernel: "debian:6.1", machine: "stock",
                           machineProfile: "stock", workload: cell.workload, repeatIndex: 1)
            })
        for (record, cell) in zip(records, cells) {
            let id = try XCTUnwrap(record.id)
            let attempt = try store.startCell(id, harnessRunID: cell.runID, directory: "\(root)/results/\(cell.runID)",
                                              connectionURI: "qemu:///system")
            let result = try result(cell.runID)
            try store.finishCell(id, attempt: attempt, result: result, wallSeconds: result.timings["total"] ?? 0)
        }
        try store.setRunState(matrix, .finished)
    }

    func report(_ arguments: [String]) async throws -> CommandResult {
        try await Command.run(try kharness(), ["report"] + arguments + ["--results", root + "/results"])
    }

    func testReportsOfRealRunsFromTheStore() async throws {
        try Files.createDirectory(root)
        let quiet = root + "/quiet.sh", crash = root + "/crash.sh"
        try Files.writeAtomically("#!/bin/sh\necho '@@kharness begin quiet'\necho '@@kharness result quiet PASS'\necho '@@kharness end quiet'\n", to: quiet)
        try Files.writeAtomically("#!/bin/sh\necho '@@kharness begin crash'\necho c > /proc/sysrq-trigger\n", to: crash)
        let baseBoot = try await run(["--workload", "boot"])
        let baseQuiet = try await run(["--workload-script", quiet])
        let newBoot = try await run(["--workload", "boot"])
        let newCrash = try await run(["--workload-script", crash])
        let crashed = try result(newCrash)
        XCTAssertEqual(crashed.status, .fail)
        let title = try XCTUnwrap(crashed.reports.first?.title, "the sysrq crash gave no kernel report")

        let store = try Store.open(path: Store.defaultPath(results: root + "/results"))
        try record(store, matrix: "m-base", cells: [("boot", baseBoot), ("crashy", baseQuiet)])
        try record(store, matrix: "m-new", cells: [("boot", newBoot), ("crashy", newCrash)])

        // Table, with the comparison.
        let table = try await report(["m-new", "--baseline", "m-base"])
        XCTAssertEqual(table.status, 0, table.stderr)
        let rows = table.stdout.split(separator: "\n")
        XCTAssertTrue(rows.contains { $0.contains("crashy") && $0.contains("FAIL") && $0.contains("new failure") }, table.stdout)
        XCTAssertTrue(rows.contains { $0.contains(" boot ") && $0.contains("PASS") && $0.contains("unchanged") }, table.stdout)
        XCTAssertTrue(table.stdout.contains("\(title)  (1 run, new)"), table.stdout)
        let reverse = try await report(["m-base", "--baseline", "m-new"])
        XCTAssertTrue(reverse.stdout.split(separator: "\n").contains { $0.contains("crashy") && $0.contains("fixed") }, reverse.stdout)

        // KCIDB, validated by kcidb-io.
        let kcidbPath = root + "/out/kcidb.json"
        let kcidb = try await report(["m-new", "--baseline", "m-base", "--format", "kcidb", "--out", kcidbPath,
                                      "--artifact-url", "https://ci.example.org/kharness"])
        XCTAssertEqual(kcidb.status, 0, kcidb.stderr)
        XCTAssertEqual(kcidb.stdout, "")
        let data = try Data(contentsOf: URL(fileURLWithPath: kcidbPath))
        _ = try await Tools.validateKcidb(data)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let tests = try XCTUnwrap(json["tests"] as? [[String: Any]])
        let failed = try XCTUnwrap(tests.first { $0["id"] as? String == "kharness:\(newCrash)" })
        XCTAssertEqual(failed["status"] as? String, "FAIL")
        XCTAssertEqual(failed["log_url"] as? String, "https://ci.example.org/kharness/\(newCrash)/console.log")
        XCTAssertEqual(tests.first { $0["id"] as? String == "kharness:\(newBoot)" }?["status"] as? String, "PASS")
        let issues = try XCTUnwrap(json["issues"] as? [[String: Any]])
        XCTAssertEqual(issues.map { $0["report_subject"] as? String }, [title])
        let incidents = try XCTUnwrap(json["incidents"] as? [[String: Any]])
        XCTAssertEqual(incidents.map { $0["test_id"] as? String }, ["kharness:\(newCrash)"])
        let checkouts = try XCTUnwrap(json["checkouts"] as? [[String: Any]])
        XCTAssertEqual(checkouts.count, 1)
        XCTAssertEqual(checkouts.first?["patchset_hash"] as? String, "")

        // JUnit, well-formed.
        let junitPath = root + "/out/junit.xml"
        let junit = try await report(["m-new", "--format", "junit", "--out", junitPath])
        XCTAssertEqual(junit.status, 0, junit.stderr)
        let lint = try await Command.run("xmllint", ["--xpath", "string(//testcase/failure/@message)", junitPath])
        XCTAssertEqual(lint.stdout.trimmingCharacters(in: .whitespacesAndNewlines), title, lint.stderr)

        // HTML, rendered by Chromium, linking the real console logs.
        let htmlPath = root + "/out/report.html"
        let html = try await report(["m-new", "--baseline", "m-base", "--format", "html", "--out", htmlPath])
        XCTAssertEqual(html.status, 0, html.stderr)
        let (dom, log) = try await Tools.renderInChromium(htmlPath)
        XCTAssertTrue(dom.contains("data-report-ready=\"ok\""), log)
        XCTAssertTrue(dom.contains("data-report-runs=\"2\""))
        XCTAssertTrue(dom.contains("href=\"../results/\(newCrash)/console.log\""))
        XCTAssertTrue(Files.exists(root + "/out/../results/\(newCrash)/console.log"))
        XCTAssertTrue(dom.contains("new failure"))

        // The mail: one, about the crash, with a reproducer.
        let email = try await report(["m-new", "--baseline", "m-base", "--format", "email"])
        XCTAssertEqual(email.status, 0, email.stderr)
        XCTAssertEqual(email.stdout.components(separatedBy: "\nSubject: ").count - 1, 1, email.stdout)
        XCTAssertTrue(email.stdout.contains("Subject: [kharness] \(title)\n"))
        XCTAssertTrue(email.stdout.contains("  kharness run --kernel debian:6.1 --machine stock --workload crashy"))
        XCTAssertTrue(email.stdout.contains("first seen:") && email.stdout.contains(" in run \(newCrash)\n"), email.stdout)
        XCTAssertTrue(email.stdout.replacingOccurrences(of: "\n", with: " ").contains("the baseline run m-base did not show it"), email.stdout)
        // Nothing new in the baseline run itself against the new one: no mail.
        let none = try await report(["m-base", "--baseline", "m-new", "--format", "email"])
        XCTAssertEqual(none.status, 0)
        XCTAssertEqual(none.stdout, "")
    }

    /// A store written by `kharness matrix run` itself (Debian's 6.1 booted
    /// on two machines), reported in every format.
    func testReportOfAMatrixRun() async throws {
        try Files.createDirectory(root)
        try Files.writeAtomically("""
            name: report-smoke
            kernels: [debian:6.1]
            machines: [stock, nosmmu]
            workloads: [boot]
            parallel: 1
            """, to: root + "/matrix.yaml")
        let matrix = try await Command.run(try kharness(), ["matrix", "run", root + "/matrix.yaml", "--id", "m-smoke",
                                                            "--results", root + "/results"])
        XCTAssertEqual(matrix.status, 0, matrix.stderr)
        for format in ReportFormat.allCases {
            let out = "\(root)/out/report.\(format.rawValue)"
            let result = try await report(["m-smoke", "--format", format.rawValue, "--out", out])
            XCTAssertEqual(result.status, 0, "\(format): \(result.stderr)")
            XCTAssertTrue(Files.exists(out) || format == .email)
        }
        let table = try String(contentsOfFile: root + "/out/report.table", encoding: .utf8)
        XCTAssertTrue(table.contains("2 runs: 1 PASS, 1 SKIP"), table)
        XCTAssertEqual(try String(contentsOfFile: root + "/out/report.email", encoding: .utf8), "", "no regression, no mail")
        let kcidb = try Data(contentsOf: URL(fileURLWithPath: root + "/out/report.kcidb"))
        _ = try await Tools.validateKcidb(kcidb)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: kcidb) as? [String: Any])
        XCTAssertEqual((json["tests"] as? [[String: Any]])?.compactMap { $0["status"] as? String }, ["PASS", "PASS", "SKIP", "SKIP"], "each run and its one scenario")
        XCTAssertEqual((json["builds"] as? [[String: Any]])?.count, 1)
        let lint = try await Command.run("xmllint", ["--noout", root + "/out/report.junit"])
        XCTAssertEqual(lint.status, 0, lint.stderr)
        let (dom, log) = try await Tools.renderInChromium(root + "/out/report.html")
        XCTAssertTrue(dom.contains("data-report-ready=\"ok\""), log)
        XCTAssertTrue(dom.contains("<th>stock / boot</th>") && dom.contains("<th>nosmmu / boot</th>"))
    }

    func testCellsWithoutOutcomeOrRunDirectoryStillReport() throws {
        var cell = CellRecord(runID: "m", ordinal: 0, kernelName: "mine", kernel: "git:/src/linux@v6.12", series: "/s.mbox",
                              configFragments: ["smmuv3"], machine: "sva", machineProfile: "sva", workload: "sva",
                              scenarios: ["nginx"], repeatIndex: 2)
        cell.id = 7
        let pending = try ReportCell(stored: CellResult(cell: cell, outcome: nil))
        XCTAssertEqual(pending.status, .miss)
        XCTAssertEqual(pending.result.reason, "no outcome yet: the cell is pending")
        XCTAssertEqual(pending.runID, "cell-7")
        XCTAssertEqual(pending.kernelLabel, "mine")
        XCTAssertEqual(pending.reproducer,
                       "kharness run --kernel git:/src/linux@v6.12 --series /s.mbox --config smmuv3 --machine sva --workload sva --scenarios nginx")
        // A result.json that is not one is ignored; the store's rows still make the cell.
        try Files.createDirectory(root + "/run")
        try Files.writeAtomically("{\"run_id\": 12", to: root + "/run/result.json")
        cell.directory = root + "/run"
        cell.harnessRunID = "h1"
        let outcome = OutcomeRecord(cellID: 7, attempt: 1, harnessRunID: "h1", status: .fail, reason: "boom", end: "finished")
        let done = try ReportCell(stored: CellResult(cell: cell, outcome: outcome))
        XCTAssertEqual(done.status, .fail)
        XCTAssertEqual(done.runID, "h1")
        XCTAssertEqual(done.artifact("console.log"), root + "/run/console.log")
    }

    func testBadInputIsOneLineAndExitTwo() async throws {
        try Files.createDirectory(root + "/results")
        let noStore = try await report(["m-none"])
        XCTAssertEqual(noStore.status, 2)
        XCTAssertEqual(noStore.stderr.split(separator: "\n").count, 1, noStore.stderr)
        XCTAssertTrue(noStore.stderr.contains("no kharness store"), noStore.stderr)
        XCTAssertFalse(Files.exists(root + "/results/kharness.db"), "reporting must not create a store")

        _ = try Store.open(path: root + "/results/kharness.db")
        let noRun = try await report(["m-none", "--format", "html", "--out", root + "/out.html"])
        XCTAssertEqual(noRun.status, 2)
        XCTAssertTrue(noRun.stderr.contains("m-none: no such matrix run"), noRun.stderr)
        XCTAssertFalse(Files.exists(root + "/out.html"))
        let badFormat = try await report(["m-none", "--format", "pdf"])
        XCTAssertEqual(badFormat.status, 2)
        XCTAssertTrue(badFormat.stderr.contains("--format pdf: unknown format"), badFormat.stderr)
    }
}
