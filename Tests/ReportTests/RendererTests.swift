import Classify
import Foundation
import FoundationXML
import Store
import Support
import XCTest
@testable import Report

final class RendererTests: XCTestCase {
    var root = ""

    override func setUp() {
        root = NSTemporaryDirectory() + "report-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
    }

    func testJUnitIsWellFormedAndCarriesHostileTextVerbatim() throws {
        let report = try Fixtures.matrix(root: root)
        let xml = JUnitReport.render(report)
        let document = try XMLDocument(xmlString: xml)
        let suites = try document.nodes(forXPath: "/testsuites/testsuite")
        // kernel+config+machine: debian/stock, 6.12/sva, 6.12/stock, 6.12(smmuv3,kasan)/nosmmu.
        XCTAssertEqual(suites.count, 4)
        let top = try XCTUnwrap(document.rootElement())
        // 5 runs + 2 scenarios in each of the two sva runs.
        XCTAssertEqual(top.attribute(forName: "tests")?.stringValue, "9")
        XCTAssertEqual(top.attribute(forName: "failures")?.stringValue, "3")
        XCTAssertEqual(top.attribute(forName: "errors")?.stringValue, "1")
        let failures = try document.nodes(forXPath: "//testcase[@name='sva']/failure") as! [XMLElement]
        XCTAssertEqual(failures.count, 1)
        XCTAssertEqual(failures[0].attribute(forName: "message")?.stringValue,
                       "KASAN: slab-use-after-free Read in mm_pasid_drop")
        XCTAssertTrue(failures[0].stringValue?.contains("Read of size 4 at addr ffff000012345678") ?? false)
        // The hostile reason comes back as text, markup and all, minus the controls XML cannot carry.
        let error = try XCTUnwrap((try document.nodes(forXPath: "//testcase/error") as! [XMLElement]).first)
        let message = try XCTUnwrap(error.attribute(forName: "message")?.stringValue)
        XCTAssertTrue(message.contains("</script><script>document.body.setAttribute('data-pwned','1')</script>"))
        XCTAssertTrue(message.contains("<img src=x onerror=\"document.body"))
        XCTAssertFalse(message.unicodeScalars.contains { $0.value < 0x20 })
        let scenario = try document.nodes(forXPath: "//testcase[@name='sva.pasid-reuse']/failure") as! [XMLElement]
        XCTAssertEqual(scenario.count, 1)
        let skipped = try document.nodes(forXPath: "//testcase/skipped")
        XCTAssertEqual(skipped.count, 0)
        let properties = try document.nodes(forXPath: "//property[@name='patchset_hash']/@value").map { $0.stringValue }
        XCTAssertTrue(properties.contains(Fixtures.patchsetHash))
    }

    func testJUnitTellsMissFromSkip() throws {
        var report = MatrixReport(id: "m", cells: [
            ReportCell(result: Fixtures.result(id: "a", status: "FAIL", reason: "PASID 2 freed while still bound to pid 87",
                                               reports: [Fixtures.kasan()],
                                               scenarios: [Fixtures.scenario("pasid-reuse", "MISS", "began but gave no result")],
                                               violations: [["title": "PASID 2 freed while still bound to pid 87", "evidence": []]])),
            ReportCell(result: Fixtures.result(id: "b", status: "SKIP", reason: "no SVA", build: nil)),
        ])
        Regressions.annotate(&report)
        let document = try XMLDocument(xmlString: JUnitReport.render(report))
        let top = try XCTUnwrap(document.rootElement())
        XCTAssertEqual(top.attribute(forName: "tests")?.stringValue, "3")
        XCTAssertEqual(top.attribute(forName: "errors")?.stringValue, "1", "a scenario that never finished is an error")
        XCTAssertEqual(top.attribute(forName: "skipped")?.stringValue, "1")
        let miss = try XCTUnwrap((try document.nodes(forXPath: "//testcase[@name='sva.pasid-reuse']/error") as? [XMLElement])?.first)
        XCTAssertEqual(miss.attribute(forName: "type")?.stringValue, "MISS")
        let failure = try XCTUnwrap((try document.nodes(forXPath: "//testcase[@name='sva']/failure") as? [XMLElement])?.first)
        XCTAssertEqual(failure.attribute(forName: "type")?.stringValue, "pasid-lifetime", "the violation is the cause, the oops its evidence")
        XCTAssertEqual(failure.attribute(forName: "message")?.stringValue, "PASID 2 freed while still bound to pid 87")
    }

    func testJUnitPassesXmllint() async throws {
        let report = try Fixtures.matrix(root: root)
        let path = root + "/junit.xml"
        try Files.writeAtomically(JUnitReport.render(report), to: path)
        let lint = try await Command.run("xmllint", ["--noout", path])
        XCTAssertEqual(lint.status, 0, lint.stderr)
    }

    func testKcidbValidatesWithKcidbIo() async throws {
        let report = try Fixtures.matrix(root: root)
        let data = try KcidbReport.render(report, artifactBaseURL: "https://ci.example.org/results/")
        let version = try await Tools.validateKcidb(data)
        XCTAssertEqual(version, "\(KcidbReport.schemaVersion.major).\(KcidbReport.schemaVersion.minor)")

        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let checkouts = try XCTUnwrap(json["checkouts"] as? [[String: Any]])
        let builds = try XCTUnwrap(json["builds"] as? [[String: Any]])
        let tests = try XCTUnwrap(json["tests"] as? [[String: Any]])
        let issues = try XCTUnwrap(json["issues"] as? [[String: Any]])
        let incidents = try XCTUnwrap(json["incidents"] as? [[String: Any]])
        // debian package; 6.12 + series; 6.12 without a series (the build-failed cell has no build record).
        XCTAssertEqual(checkouts.count, 3)
        let patched = try XCTUnwrap(checkouts.first { $0["patchset_hash"] as? String == Fixtures.patchsetHash })
        XCTAssertEqual(patched["git_commit_hash"] as? String, Fixtures.baseCommit)
        XCTAssertEqual(builds.first { $0["status"] as? String == "FAIL" }?["log_excerpt"] as? String,
                       "drivers/iommu/foo.c:12:3: error: expected ';'")
        // 4 runs that booted (the build failure ran nothing) + 4 scenarios.
        XCTAssertEqual(tests.count, 8)
        XCTAssertEqual(Set(tests.compactMap { $0["status"] as? String }), ["PASS", "FAIL", "ERROR"])
        XCTAssertTrue(tests.allSatisfy { ($0["id"] as? String)?.hasPrefix("kharness:") ?? false })
        let failed = try XCTUnwrap(tests.first { $0["id"] as? String == "kharness:run-sva-fail" })
        XCTAssertEqual(failed["log_url"] as? String, "https://ci.example.org/results/run-sva-fail/console.log")
        XCTAssertEqual((failed["output_files"] as? [[String: Any]])?.count, 3)
        XCTAssertEqual(failed["path"] as? String, "sva")
        XCTAssertTrue((failed["log_excerpt"] as? String)?.hasPrefix("PASID 1 freed while still bound to pid 85\nsva_accel_bind: ") ?? false)
        XCTAssertEqual(issues.count, 4)
        XCTAssertEqual(Set(issues.compactMap { $0["id"] as? String }), Set(report.issues.map { "kharness:" + $0.signature }))
        XCTAssertTrue(issues.contains { $0["id"] as? String == "kharness:0123456789abcdef"
            && $0["report_subject"] as? String == "KASAN: slab-use-after-free Read in mm_pasid_drop" })
        // Every incident links an issue that exists to a test (or, for the build failure, a build) that exists.
        let testIDs = Set(tests.compactMap { $0["id"] as? String }), issueIDs = Set(issues.compactMap { $0["id"] as? String })
        let buildIDs = Set(builds.compactMap { $0["id"] as? String })
        XCTAssertEqual(incidents.count, 4)
        for incident in incidents {
            if let test = incident["test_id"] as? String {
                XCTAssertTrue(testIDs.contains(test))
            } else {
                XCTAssertTrue(buildIDs.contains(incident["build_id"] as? String ?? ""))
            }
            XCTAssertTrue(issueIDs.contains(incident["issue_id"] as? String ?? ""))
        }
        // Rendering again gives the same IDs (resubmission updates, not duplicates).
        XCTAssertEqual(try KcidbReport.render(report, artifactBaseURL: "https://ci.example.org/results/"), data)
    }

    func testKcidbEdgeCasesStayValid() async throws {
        // No runs at all.
        let empty = MatrixReport(id: "empty", cells: [])
        _ = try await Tools.validateKcidb(try KcidbReport.render(empty))

        // Odd workloads, a non-commit base, a huge excerpt with NULs, a timestamp that is not one,
        // a scenario name KCIDB paths cannot hold, MISS and SKIP.
        var build = Fixtures.build(patches: [])
        build["baseCommit"] = "not-a-commit"
        build["tree"] = "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git"
        var huge = Fixtures.kasan()
        huge["text"] = String(repeating: "x\u{0}é", count: 20000)
        let cells = [
            ReportCell(result: Fixtures.result(id: "r1", status: "MISS", workload: "/home/me/my workload.sh",
                                               build: build, reports: [huge],
                                               scenarios: [Fixtures.scenario("weird name/ü.x", "SKIP", "no SVA")],
                                               startedAt: "yesterday")),
            ReportCell(result: Fixtures.result(id: "r 2 \u{0}", status: "SKIP", build: nil)),
        ]
        var report = MatrixReport(id: "edge", cells: cells)
        Regressions.annotate(&report)
        let data = try KcidbReport.render(report)
        _ = try await Tools.validateKcidb(data)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let tests = try XCTUnwrap(json["tests"] as? [[String: Any]])
        XCTAssertEqual(tests.first?["path"] as? String, "my_workload_sh")
        XCTAssertEqual(tests.dropFirst().first?["path"] as? String, "my_workload_sh.weird_name___x")
        XCTAssertNil(tests.first?["start_time"])
        XCTAssertLessThanOrEqual((tests.first?["log_excerpt"] as? String)?.unicodeScalars.count ?? 0, 16384)
        let checkout = try XCTUnwrap((json["checkouts"] as? [[String: Any]])?.first)
        XCTAssertNil(checkout["git_commit_hash"])
        XCTAssertEqual(checkout["git_repository_url"] as? String, "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git")
    }

    func testKcidbValidatorRejectsWhatItShould() async throws {
        // The check can fail: an invalid status must not pass kcidb-io.
        let report = try Fixtures.matrix(root: root)
        let data = try KcidbReport.render(report)
        let text = String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\"BUILD_FAIL\"", with: "\"FAIL\"")
            .replacingOccurrences(of: "\"status\" : \"ERROR\"", with: "\"status\" : \"BROKEN\"")
        XCTAssertNotEqual(text, String(decoding: data, as: UTF8.self))
        let python = try Tools.require(Tools.kcidbPython)
        let path = root + "/bad.json"
        try Files.writeAtomically(text, to: path)
        let result = try await Command.run(python, ["-c", "import json,sys,kcidb_io; kcidb_io.schema.LATEST.validate_exactly(json.load(open(sys.argv[1])))", path])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("BROKEN"), result.stderr)
    }

    func testEmailIsAKernelMail() throws {
        let report = try Fixtures.matrix(root: root)
        let mail = EmailReport.render(report)
        let messages = mail.components(separatedBy: "From kharness Mon Sep 17 00:00:00 2001\n").filter { !$0.isEmpty }
        XCTAssertEqual(messages.count, 4, "one mail per new issue")
        let first = try XCTUnwrap(messages.first { $0.hasPrefix("Subject: [kharness] KASAN") })
        XCTAssertTrue(messages[0].hasPrefix("Subject: [kharness] PASID 1 freed while still bound to pid 85\n"), "the cause first")
        XCTAssertTrue(first.hasPrefix("Subject: [kharness] KASAN: slab-use-after-free Read in mm_pasid_drop\n"))
        let body = first.components(separatedBy: "\n\n").dropFirst().joined(separator: "\n\n")
        for field in ["what:", "kernel:", "base:", "patch 1/1:", "config:", "first seen:", "machine:", "To reproduce:", "The report:"] {
            XCTAssertTrue(body.contains(field), "no \(field)")
        }
        XCTAssertTrue(body.contains("2026-11-25T01:01:00Z in run run-sva-fail"))
        XCTAssertTrue(body.contains("  kharness run --kernel git:/src/linux@v6.12 \\\n      --series '/tmp/pasid fix.mbox' --config smmuv3,trace,modules \\\n"), body)
        XCTAssertTrue(body.contains("\nBUG: KASAN: slab-use-after-free in mm_pasid_drop+0x2c/0x60\n"))
        let report0 = body.components(separatedBy: "The report:\n\n")
        // Everything but the report itself and the console log's path (kept whole) fits 72 columns.
        XCTAssertTrue(report0[0].contains("The console log:\n\n  \(root)/results/run-sva-fail/console.log\n"))
        for line in report0[0].split(separator: "\n") where !line.hasPrefix("  /") {
            XCTAssertLessThanOrEqual(line.count, 72, "too long: \(line)")
        }
        XCTAssertTrue(report0[1].contains("\n-- \n"))

        // The hostile issue's mail has no escape sequences or bidi overrides and one-line subject.
        let hostile = try XCTUnwrap(messages.first { $0.hasPrefix("Subject: [kharness] WARNING in </script>") })
        XCTAssertFalse(hostile.unicodeScalars.contains { $0.value == 0x1b || $0.value == 0 || $0.value == 0x202e })
        let subject = try XCTUnwrap(hostile.split(separator: "\n").first)
        XCTAssertTrue(subject.hasPrefix("Subject: [kharness] WARNING in </script>"))

        // Nothing new: no mail.
        var seen = report
        Regressions.annotate(&seen, firstSeen: { _ in .init(runID: "older", time: "2026-01-01T00:00:00Z", kernel: "v6.11") })
        XCTAssertEqual(EmailReport.render(seen), "")
    }

    func testGuestTextCannotForgeAMessageOrBreakTheSubject() throws {
        var report = try Fixtures.matrix(root: root)
        report.cells[1].result.reports[0].text = "BUG: something\nFrom evil@example.org Mon Sep 17 00:00:00 2001\nSubject: pwned"
        report.cells[1].result.reports[0].title = "WARNING in café_driver"
        Regressions.annotate(&report)
        let mail = EmailReport.render(report)
        XCTAssertEqual(mail.components(separatedBy: "\nFrom ").count, 4, "one separator per message, none from the guest")
        XCTAssertTrue(mail.contains("\n>From evil@example.org"))
        let subject = try XCTUnwrap(mail.split(separator: "\n").first { $0.hasPrefix("Subject: =?UTF-8?B?") })
        let encoded = try XCTUnwrap(subject.split(separator: "?")[safe: 3])
        XCTAssertEqual(String(decoding: try XCTUnwrap(Data(base64Encoded: String(encoded))), as: UTF8.self),
                       "[kharness] WARNING in café_driver")
    }

    /// Python's own mbox and email parsers read the mail as the renderer meant it,
    /// whatever the title: no body line forges a message (wrapped prose included), no
    /// title adds a header (CR, LF, U+2028, NEL), the subject decodes to the title.
    func testMailboxParsesAnyTitleAsOneMessageWithTwoHeaders() async throws {
        var report = try Fixtures.matrix(root: root)
        let title = "WARNING in x From " + String(repeating: "From ", count: 40)
            + "evil\r\nBcc: victim@example.org\u{2028}X-Injected: 1\u{85}\u{202E}gnp.exe"
        report.cells[1].result.reports[0].title = title
        report.cells[1].result.reports[0].text = "From evil\n>From quoted\nplain"
        Regressions.annotate(&report)
        let mail = EmailReport.render(report)
        let path = NSTemporaryDirectory() + "kharness-mail-\(UUID().uuidString).mbox"
        try Files.writeAtomically(mail, to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let script = """
        import json, mailbox, sys
        from email.header import decode_header, make_header
        out = []
        for m in mailbox.mbox(sys.argv[1]):
            body = m.get_payload(decode=True).decode("utf-8")
            out.append({"subject": str(make_header(decode_header(m["Subject"]))), "keys": list(m.keys()),
                        "fromLines": sum(1 for l in body.split("\\n") if l.startswith("From "))})
        print(json.dumps(out))
        """
        let result = try await Command.run("/usr/bin/python3", ["-c", script, path])
        XCTAssertEqual(result.status, 0, result.stderr)
        struct Message: Decodable { var subject: String; var keys: [String]; var fromLines: Int }
        let messages = try JSONDecoder().decode([Message].self, from: Data(result.stdout.utf8))
        XCTAssertEqual(messages.count, mail.components(separatedBy: "Subject: ").count - 1)
        XCTAssertEqual(messages.count, 4)
        for m in messages {
            XCTAssertEqual(m.keys, ["Subject", "Content-Type"], m.subject)
            XCTAssertEqual(m.fromLines, 0, m.subject)
        }
        let hostile = try XCTUnwrap(messages.first { $0.subject.hasPrefix("[kharness] WARNING in x From") })
        XCTAssertEqual(hostile.subject, Escape.truncate("[kharness] " + Escape.line(title), 200))
        XCTAssertFalse(hostile.subject.contains("\n") || hostile.subject.contains("\r"))
        XCTAssertTrue(mail.contains("\n>From evil\n>>From quoted\n"), "mboxrd quoting")
    }

    func testWrapKeepsWordsAndCutsOnlyOverlongOnes() {
        XCTAssertEqual(EmailReport.wrapLines("aaa bbb ccc", width: 7), ["aaa bbb", "ccc"])
        XCTAssertEqual(EmailReport.wrapLines(String(repeating: "h", count: 10), width: 4), ["hhhh", "hhhh", "hh"])
        XCTAssertEqual(EmailReport.wrapLines("", width: 4), [""])
    }

    func testTableHasEveryRunAndNoEscapes() throws {
        var report = try Fixtures.matrix(root: root)
        let table = TableReport.render(report)
        let lines = table.split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.hasPrefix("KERNEL") && $0.contains("STATUS") && !$0.contains("CHANGE") })
        XCTAssertEqual(lines.filter { $0.contains("git:/src/linux@v6.12") || $0.contains("debian:6.1") }.count, 5)
        XCTAssertTrue(table.contains("5 runs: 2 PASS, 1 FAIL, 1 ERROR, 1 BUILD_FAIL"))
        XCTAssertFalse(table.unicodeScalars.contains { $0.value == 0x1b || $0.value == 0 })
        XCTAssertTrue(lines.allSatisfy { $0.count <= 160 })
        let side = SideCount(failing: 1, usable: 1, total: 1, statuses: ["FAIL"])
        let entry = ComparisonEntry(key: report.cells[4].key, change: .new,
                                    issue: FailureIssue(signature: "s", title: "t", category: .build), run: side, baseline: side)
        Regressions.annotate(&report, comparison: Comparison(runID: report.id, baselineID: "base", entries: [entry], passingKeys: 1))
        let compared = TableReport.render(report).split(separator: "\n")
        XCTAssertTrue(compared[0].hasSuffix("compared with base"))
        XCTAssertTrue(compared.contains { $0.hasPrefix("KERNEL") && $0.contains("CHANGE") })
        XCTAssertTrue(compared.contains { $0.contains("BUILD_FAIL  new failure  drivers/iommu/foo.c") }, compared.joined(separator: "\n"))
        XCTAssertTrue(compared.contains { $0.contains("PASS        unchanged    booted") })
    }

    func testTimelineReadsUntrustedTraceBounded() throws {
        let timeline = TraceTimeline.parse(Data(Fixtures.traceEvents.utf8))
        XCTAssertEqual(timeline.events.count, 11)
        XCTAssertEqual(timeline.skippedLines, 2, "text and a string timestamp")
        XCTAssertEqual(timeline.otherEvents, 2, "sched_switch and mm_drop are not drawn")
        XCTAssertEqual(timeline.events.filter { $0.kind == .pasidFree }.map(\.pasid), [1])
        XCTAssertEqual(timeline.lanes(limit: 10).map(\.pid), [84, 85, 86])
        XCTAssertEqual(timeline.lanes(limit: 10)[1].ended, true)

        var many = ""
        for index in 0..<(TraceTimeline.maxEvents + 50) {
            many += "{\"ts\": \(Double(index) / 1000), \"pid\": \(index % 300), \"event\": \"bind\", \"pasid\": \(index)}\n"
        }
        many += String(repeating: "y", count: TraceTimeline.maxLineBytes + 10) + "\n"
        let capped = TraceTimeline.parse(Data(many.utf8))
        XCTAssertEqual(capped.events.count, TraceTimeline.maxEvents)
        XCTAssertEqual(capped.droppedEvents, 50)
        XCTAssertEqual(capped.skippedLines, 1)
        XCTAssertEqual(capped.otherEvents, 0)
        let svg = TimelineSVG.render(capped)
        XCTAssertEqual(svg.components(separatedBy: "class=\"lane\"").count - 1, TimelineSVG.maxLanes)
        XCTAssertTrue(svg.contains("first \(TraceTimeline.maxEvents) events"))

        // Only maxBytes of a huge file are read.
        let path = root + "/huge.jsonl"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: nil))
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        let line = Data("{\"ts\": 1.0, \"pid\": 1, \"event\": \"exit\"}\n".utf8)
        let block = Data(repeating: 0, count: 0) + Array(repeating: line, count: 1 << 14).reduce(Data(), +)
        while (try handle.offset()) <= UInt64(TraceTimeline.maxBytes) { try handle.write(contentsOf: block) }
        try handle.close()
        let read = try XCTUnwrap(TraceTimeline.read(path: path))
        XCTAssertTrue(read.truncated)
        XCTAssertEqual(read.events.count, TraceTimeline.maxEvents)
        XCTAssertNil(TraceTimeline.read(path: root + "/absent.jsonl"))
    }

    func testRelativeLinks() {
        XCTAssertEqual(HtmlReport.link("/r/results/run 1/console.log", from: "/r/reports"), "../results/run%201/console.log")
        XCTAssertEqual(HtmlReport.link("/r/results/a#b/console.log", from: "/r/results"), "a%23b/console.log")
        XCTAssertEqual(HtmlReport.link("/r/x/console.log", from: "/r/x/"), "console.log")
    }
}

final class EscapeTests: XCTestCase {
    func testMarkupAndPlainText() {
        XCTAssertEqual(Escape.markup("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;")
        XCTAssertEqual(Escape.markup("a\u{0}b\u{1b}c\rd\u{202e}e\u{fffe}\tf\ng"), "a\u{fffd}b\u{fffd}c\u{fffd}d\u{fffd}e\u{fffd}\tf\ng")
        XCTAssertEqual(Escape.plain("\u{1b}[2J\u{9b}31m\u{2066}x\r\n"), "?[2J?31m?x?\n")
        XCTAssertEqual(Escape.line("a\nb\tc"), "a b c")
        XCTAssertEqual(Escape.truncate("abcdef", 4), "abc…")
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
