import Foundation
import RunModel
import KernelTestSupport
import Store
import Support
import XCTest
@testable import Report

/// `kharness report` end to end: stores written by real `kharness matrix
/// run`s (the planted PASID bug against its clean base on the SVA machine;
/// Debian's 6.1 on two machines), reported in every format by the command
/// line and checked with kcidb-io, xmllint and headless Chromium.
final class StoreReportTests: XCTestCase {
    var root = ""

    override func setUp() {
        root = NSTemporaryDirectory() + "report-e2e-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
    }

    func kharness() throws -> String {
        guard let path = Checkout.builtExecutable else { throw XCTSkip(Checkout.missingExecutable) }
        return path
    }

    func report(_ arguments: [String]) async throws -> CommandResult {
        try await Command.run(try kharness(), ["report"] + arguments + ["--results", root + "/results"])
    }


    /// The 2022 PASID use-after-free, planted in Debian's 6.12 source
    /// (guest/patches/pasid-uaf-6.12.patch), run by `kharness matrix run` on
    /// the SVA machine, against the same matrix without the series: a new
    /// regression in every format. The two kernels are the ones the SVA
    /// machine tests build (a cache hit when they ran first).
    func testThePlantedPasidBugIsANewRegressionInEveryFormat() async throws {
        let root = Checkout.root
        let tree = try await KernelSources.tree("6.12")
        let qemu = try await Command.check(root + "/scripts/build-qemu", []).stdout
            .split(separator: "\n").last.map(String.init) ?? ""
        let series = root + "/guest/patches/pasid-uaf-6.12.patch"
        try Files.createDirectory(self.root)
        try Files.writeAtomically("""
            name: pasid-uaf
            kernels:
              - name: "6.12"
                spec: git:\(tree)@HEAD
                series: \(series)
            configs:
              - [smmuv3, trace, modules]
            machines: [sva]
            workloads:
              - name: sva
                scenarios: ["baseline,pasid-reuse"]
            parallel: 1
            """, to: self.root + "/matrix.yaml")
        let environment = ["KHARNESS_QEMU": qemu]
        let planted = try await Command.run(try kharness(), ["matrix", "run", self.root + "/matrix.yaml", "--id", "m-planted",
                                                             "--results", self.root + "/results"], environment: environment)
        XCTAssertEqual(planted.status, 1, "the planted bug fails: \(planted.stderr.suffix(2000))")
        let clean = try await Command.run(try kharness(), ["matrix", "run", self.root + "/matrix.yaml", "--id", "m-clean",
                                                           "--without-series", "--results", self.root + "/results"],
                                          environment: environment)
        XCTAssertEqual(clean.status, 0, clean.stderr.suffix(2000).description)

        // What the store holds, as the reports read it.
        let store = try Store.open(path: Store.defaultPath(results: self.root + "/results"))
        let loaded = try MatrixReport.load(from: store, runID: "m-planted")
        let cell = try XCTUnwrap(loaded.cells.first)
        XCTAssertEqual(cell.status, .fail)
        let violation = try XCTUnwrap(cell.result.lifecycleViolations.first?.title, cell.result.reason)
        XCTAssertTrue(violation.hasPrefix("PASID "), violation)
        let build = try XCTUnwrap(cell.result.build)
        XCTAssertEqual(build.patchsetHash.count, 64)
        XCTAssertEqual(cell.series, series)

        // Table: a new failure against the clean run; the reverse is a fix.
        let table = try await report(["m-planted", "--baseline", "m-clean"])
        XCTAssertEqual(table.status, 0, table.stderr)
        let rows = table.stdout.split(separator: "\n")
        XCTAssertTrue(rows.contains { $0.hasPrefix("6.12 + 1 patch") && $0.contains("FAIL") && $0.contains("new failure") }, table.stdout)
        XCTAssertTrue(rows.contains { $0.contains(violation) && $0.hasSuffix("(1 run, new)") }, table.stdout)
        let reverse = try await report(["m-clean", "--baseline", "m-planted"])
        XCTAssertTrue(reverse.stdout.split(separator: "\n").contains { $0.hasPrefix("6.12 ") && $0.contains("PASS") && $0.contains("fixed") },
                      reverse.stdout)

        // KCIDB, validated by kcidb-io: the checkout carries the base commit and the patchset hash.
        let kcidbPath = self.root + "/out/kcidb.json"
        let kcidb = try await report(["m-planted", "--baseline", "m-clean", "--format", "kcidb", "--out", kcidbPath,
                                      "--artifact-url", "https://ci.example.org/kharness"])
        XCTAssertEqual(kcidb.status, 0, kcidb.stderr)
        XCTAssertEqual(kcidb.stdout, "")
        let data = try Data(contentsOf: URL(fileURLWithPath: kcidbPath))
        _ = try await Tools.validateKcidb(data)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let checkouts = try XCTUnwrap(json["checkouts"] as? [[String: Any]])
        XCTAssertEqual(checkouts.count, 1)
        XCTAssertEqual(checkouts[0]["patchset_hash"] as? String, build.patchsetHash)
        XCTAssertEqual(checkouts[0]["git_commit_hash"] as? String, build.baseCommit)
        XCTAssertEqual((json["builds"] as? [[String: Any]])?.first?["config_name"] as? String, "base+smmuv3+trace+modules")
        let tests = try XCTUnwrap(json["tests"] as? [[String: Any]])
        let run = try XCTUnwrap(tests.first { $0["id"] as? String == "kharness:\(cell.runID)" })
        XCTAssertEqual(run["status"] as? String, "FAIL")
        XCTAssertEqual(run["log_url"] as? String, "https://ci.example.org/kharness/\(cell.runID)/console.log")
        XCTAssertEqual(Set(tests.compactMap { $0["path"] as? String }), ["sva", "sva.baseline", "sva.pasid-reuse"])
        let issues = try XCTUnwrap(json["issues"] as? [[String: Any]])
        XCTAssertTrue(issues.contains { $0["report_subject"] as? String == violation })
        let incidents = try XCTUnwrap(json["incidents"] as? [[String: Any]])
        XCTAssertEqual(incidents.count, issues.count)
        XCTAssertTrue(incidents.allSatisfy { $0["test_id"] as? String == "kharness:\(cell.runID)" })

        // JUnit, well-formed, the run's failure named by the violation.
        let junitPath = self.root + "/out/junit.xml"
        let junit = try await report(["m-planted", "--format", "junit", "--out", junitPath])
        XCTAssertEqual(junit.status, 0, junit.stderr)
        let lint = try await Command.run("xmllint", ["--xpath", "string(//testcase[@name='sva']/failure/@message)", junitPath])
        XCTAssertEqual(lint.stdout.trimmingCharacters(in: .whitespacesAndNewlines), violation, lint.stderr)
        let type = try await Command.run("xmllint", ["--xpath", "string(//testcase[@name='sva']/failure/@type)", junitPath])
        XCTAssertEqual(type.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "pasid-lifetime")

        // HTML, rendered by Chromium, linking the real console log, with the
        // timeline of the run's real trace-events.jsonl.
        let htmlPath = self.root + "/out/report.html"
        let html = try await report(["m-planted", "--baseline", "m-clean", "--format", "html", "--out", htmlPath])
        XCTAssertEqual(html.status, 0, html.stderr)
        let (dom, log) = try await Tools.renderInChromium(htmlPath)
        XCTAssertTrue(dom.contains("data-report-ready=\"ok\""), log)
        XCTAssertTrue(dom.contains("data-report-runs=\"1\""))
        let directory = try XCTUnwrap(cell.runDirectory)
        let relative = try XCTUnwrap(HtmlReport.link(directory + "/console.log", from: self.root + "/out"))
        XCTAssertTrue(dom.contains("href=\"\(relative)\""), relative)
        XCTAssertTrue(Files.exists(self.root + "/out/" + relative))
        XCTAssertTrue(Files.exists(directory + "/trace-events.jsonl"), "the sva workload leaves its trace events")
        XCTAssertTrue(dom.contains("data-report-timelines=\"1\""))
        for mark in ["free", "bound", "alloc", "fork", "drop"] {
            XCTAssertTrue(dom.contains("class=\"\(mark)\""), "the real trace draws \(mark) marks")
        }

        // The mail: the violation first, with the patch, the base and a reproducer.
        let email = try await report(["m-planted", "--baseline", "m-clean", "--format", "email"])
        XCTAssertEqual(email.status, 0, email.stderr)
        let messages = email.stdout.components(separatedBy: "From kharness Mon Sep 17 00:00:00 2001\n").filter { !$0.isEmpty }
        XCTAssertEqual(messages.count, issues.count, "every issue is new: \(email.stdout)")
        let first = try XCTUnwrap(messages.first)
        XCTAssertTrue(first.hasPrefix("Subject: [kharness] \(violation)\n"), first)
        let oops = try XCTUnwrap(cell.activeReports.first?.text.split(separator: "\n").first)
        XCTAssertTrue(first.contains("The report:\n\n\(violation)\n"), first)
        XCTAssertTrue(first.contains("\n\n\(oops)\n"), "the oops the violation caused is in the same mail")
        XCTAssertTrue(first.contains("  patch 1/1:  "), first)
        XCTAssertTrue(first.contains("  base:       HEAD (\(build.baseCommit.prefix(12)))"), first)
        // The reproducer, its continuation lines joined, is the cell's command.
        let command = try XCTUnwrap(first.components(separatedBy: "To reproduce:\n\n").last?.components(separatedBy: "\n\n").first)
        XCTAssertEqual(command.replacingOccurrences(of: " \\\n      ", with: " "), "  " + cell.reproducer)
        XCTAssertTrue(cell.reproducer.contains("--series \(series) --config smmuv3,trace,modules --machine sva --workload sva"))
        let prose = first.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "  +", with: " ", options: .regularExpression)
        XCTAssertTrue(prose.contains("the baseline run m-clean did not show it"), first)
        XCTAssertTrue(prose.contains("first seen: ") && prose.contains(" in run \(cell.runID) "), first)
        // Nothing new in the clean run against the planted one: no mail.
        let none = try await report(["m-clean", "--baseline", "m-planted", "--format", "email"])
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
        let outcome = OutcomeRecord(cellID: 7, attempt: 1, harnessRunID: "h1", status: .fail, reason: "boom", end: .finished)
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
