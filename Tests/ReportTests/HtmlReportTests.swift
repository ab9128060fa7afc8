import Foundation
import Support
import XCTest
@testable import Report

/// The HTML page rendered by a real browser (headless Chromium): the page's
/// own script must run under its Content-Security-Policy and find every
/// section the grid links to, and no guest text may turn into markup.
final class HtmlReportTests: XCTestCase {
    var root = ""

    override func setUp() {
        root = NSTemporaryDirectory() + "report-html-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
    }

    func testRendersInChromiumWithoutErrorsAndEscapesGuestText() async throws {
        let report = try Fixtures.matrix(root: root)
        let directory = root + "/reports"
        try Files.createDirectory(directory)
        let html = HtmlReport.render(report, outputDirectory: directory)
        let path = directory + "/report.html"
        try Files.writeAtomically(html, to: path)

        let (dom, log) = try await Tools.renderInChromium(path)
        XCTAssertTrue(dom.contains("data-report-ready=\"ok\""), "the page's script did not finish: \(log.suffix(3000))")
        XCTAssertFalse(dom.contains("data-report-errors=\""), log)
        XCTAssertFalse(dom.contains("data-report-missing=\""))
        XCTAssertTrue(dom.contains("data-report-runs=\"5\""))
        XCTAssertTrue(dom.contains("data-report-timelines=\"2\""))
        XCTAssertFalse(log.contains("Content Security Policy"), log)
        XCTAssertFalse(log.contains("Uncaught"), log)

        // The hostile strings are text: no script ran, no element came from them.
        XCTAssertFalse(dom.contains("data-pwned=\""))
        XCTAssertFalse(dom.contains("<img"))
        XCTAssertEqual(dom.components(separatedBy: "<script").count - 1, 1, "only the page's own script")
        XCTAssertTrue(dom.contains("&lt;/script&gt;&lt;script&gt;document.body.setAttribute('data-pwned','1')&lt;/script&gt;"))
        XCTAssertTrue(dom.contains("&lt;img src=x onerror="))
        XCTAssertFalse(dom.contains("\u{202e}"), "a bidi override from the guest would reorder the page")

        // Grid: coloured by outcome, linked to the sections and to the consoles, relatively.
        XCTAssertEqual(dom.components(separatedBy: "class=\"run st-pass\" href=\"#run-").count - 1, 2)
        XCTAssertEqual(dom.components(separatedBy: "class=\"run st-fail\" href=\"#run-1\"").count - 1, 1)
        XCTAssertTrue(dom.contains("class=\"run st-error\""))
        XCTAssertTrue(dom.contains("class=\"run st-build-fail\""))
        XCTAssertTrue(dom.contains("href=\"../results/run-sva-fail/console.log\""))
        XCTAssertTrue(dom.contains("href=\"../results/run-sva-fail/trace-events.jsonl\""))
        XCTAssertTrue(dom.contains("href=\"../results/run-nosmmu-buildfail/build.log\">build log</a>"), "a kernel that did not build links its build log")
        // The timeline shows the PASID freed while bound: a free mark and a binding bar.
        XCTAssertTrue(dom.contains("class=\"free\""))
        XCTAssertTrue(dom.contains("class=\"bound\""))
        XCTAssertTrue(dom.contains("class=\"drop\""), "mm_pasid_drop is drawn")
        XCTAssertTrue(dom.contains("pasid_free t=10.0005 pid=85 comm=nginx pasid=1"))
    }

    func testChromiumCatchesABrokenPage() async throws {
        // The check can fail: a grid link without its section is reported by the page.
        let report = try Fixtures.matrix(root: root)
        try Files.createDirectory(root)
        let html = HtmlReport.render(report, outputDirectory: root).replacingOccurrences(of: "id=\"run-3\"", with: "id=\"gone\"")
        let path = root + "/broken.html"
        try Files.writeAtomically(html, to: path)
        let (dom, _) = try await Tools.renderInChromium(path)
        XCTAssertTrue(dom.contains("data-report-ready=\"broken\""))
        XCTAssertTrue(dom.contains("data-report-missing=\"run-3\""))
    }
}
