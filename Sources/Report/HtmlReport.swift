import Classify
import Collect
import Foundation
import Store
import Support

/// A static, self-contained HTML page: the matrix grid coloured by outcome,
/// then one section per run with links to its files, the report excerpt and
/// its trace timeline. Nothing is fetched from the network; links to run files
/// are relative to where the page is written, so the results directory and the
/// page can be moved or published together.
///
/// Everything from the guest is escaped, and a Content-Security-Policy allows
/// only the page's own script (by hash), so even a mistake in escaping could
/// not run a guest's markup.
public enum HtmlReport {
    /// `outputDirectory`: where the page will be written, for relative links.
    public static func render(_ report: MatrixReport, outputDirectory: String) -> String {
        let e = Escape.markup
        var rows: [String] = [], columns: [String] = []
        var grid: [String: [String: [Int]]] = [:]
        var repeats: [CellKeyAndKernel: Int] = [:]
        for cell in report.cells { repeats[CellKeyAndKernel(cell), default: 0] += 1 }
        for (index, cell) in report.cells.enumerated() {
            let row = "\(cell.kernelLabel)\u{0}\(cell.configLabel)"
            if !rows.contains(row) { rows.append(row) }
            if !columns.contains(cell.columnLabel) { columns.append(cell.columnLabel) }
            grid[row, default: [:]][cell.columnLabel, default: []].append(index)
        }

        var html = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src '\(scriptHash)'">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>kharness \(e(report.id))</title>
        <style>\(style)</style>
        </head>
        <body>
        <h1>kharness matrix run <code>\(e(report.id))</code></h1>

        """
        var summary: [String: Int] = [:]
        for cell in report.cells { summary[cell.status.rawValue, default: 0] += 1 }
        html += "<p class=\"summary\">\(report.cells.count) runs"
        for status in ["PASS", "FAIL", "ERROR", "SKIP", "MISS", "BUILD_FAIL"] {
            if let count = summary[status] { html += ", <span class=\"badge \(statusClass(status))\">\(count) \(status)</span>" }
        }
        if let started = report.startedAt { html += ". Started \(e(started))" }
        if let baseline = report.baselineID { html += ". Compared with <code>\(e(baseline))</code>" }
        html += ".</p>\n<p><label><input type=\"checkbox\" id=\"failures-only\"> show only runs that did not pass</label></p>\n"

        html += "<table class=\"grid\" id=\"grid\">\n<thead><tr><th>kernel</th><th>config</th>"
        for column in columns { html += "<th>\(e(column))</th>" }
        html += "</tr></thead>\n<tbody>\n"
        for row in rows {
            let parts = row.split(separator: "\u{0}", omittingEmptySubsequences: false).map(String.init)
            html += "<tr><th>\(e(parts[0]))</th><td>\(e(parts[1]))</td>"
            for column in columns {
                guard let indices = grid[row]?[column] else {
                    html += "<td class=\"empty\"></td>"
                    continue
                }
                html += "<td class=\"cell\">"
                for index in indices {
                    let cell = report.cells[index]
                    var tip = "\(cell.status.rawValue) #\(cell.repeatIndex): \(Escape.line(cell.result.reason))"
                    if let change = cell.change { tip += " (\(change.rawValue))" }
                    html += "<div class=\"run-link\"><a class=\"run \(statusClass(cell.status.rawValue))\" href=\"#run-\(index)\" title=\"\(e(Escape.truncate(tip, 300)))\">\(cell.status.rawValue)"
                    if repeats[CellKeyAndKernel(cell), default: 0] > 1 {
                        html += " #\(cell.repeatIndex)"
                    }
                    html += "</a>"
                    if let change = cell.change, change != .unchanged {
                        html += " <span class=\"change \(changeClass(change))\">\(e(change.rawValue))</span>"
                    }
                    if let (name, path) = primaryLog(cell), let href = link(path, from: outputDirectory) {
                        html += " <a class=\"console\" href=\"\(e(href))\">\(name)</a>"
                    }
                    html += "</div>"
                }
                html += "</td>"
            }
            html += "</tr>\n"
        }
        html += "</tbody>\n</table>\n"

        if !report.issues.isEmpty {
            html += "<h2>Issues</h2>\n<table class=\"issues\"><thead><tr><th>signature</th><th>title</th><th>runs</th><th>first seen</th></tr></thead><tbody>\n"
            for issue in report.issues {
                let runs = issue.cells.map { "<a href=\"#run-\($0)\">\(e(report.cells[$0].runID))</a>" }.joined(separator: " ")
                let isNew = issue.isNew(in: report) ? " <span class=\"change new-failure\">new</span>" : ""
                html += "<tr><td><code>\(e(issue.signature))</code></td><td>\(e(issue.title))\(isNew)</td><td>\(runs)</td>"
                html += "<td>\(e(issue.firstSeen.map { "\($0.time) (\($0.runID))" } ?? "-"))</td></tr>\n"
            }
            html += "</tbody></table>\n"
        }

        html += "<h2>Runs</h2>\n"
        for (index, cell) in report.cells.enumerated() {
            html += section(cell, index: index, outputDirectory: outputDirectory)
        }
        html += "<script>\(script)</script>\n</body>\n</html>\n"
        return html
    }

    private static func section(_ cell: ReportCell, index: Int, outputDirectory: String) -> String {
        let e = Escape.markup
        let result = cell.result
        var html = "<section class=\"run \(statusClass(cell.status.rawValue))\" id=\"run-\(index)\" data-status=\"\(cell.status.rawValue)\">\n"
        html += "<h3><span class=\"badge \(statusClass(cell.status.rawValue))\">\(cell.status.rawValue)</span> "
        html += "\(e(cell.kernelLabel)) · \(e(cell.columnLabel)) · #\(cell.repeatIndex)</h3>\n<dl>\n"
        var facts: [(String, String)] = [("run", result.runID), ("reason", result.reason)]
        if let change = cell.change { facts.append(("against baseline", change.rawValue)) }
        facts.append(("config", cell.configLabel))
        if let identity = result.kernelIdentity { facts.append(("kernel identity", identity)) }
        if let release = result.kernelRelease { facts.append(("kernel release", release)) }
        if let build = result.build, !build.patchsetHash.isEmpty { facts.append(("patchset", build.patchsetHash)) }
        if let total = result.timings["total"] { facts.append(("time", String(format: "%.1f s", total))) }
        facts.append(("reproduce", cell.reproducer))
        for (name, value) in facts { html += "<dt>\(e(name))</dt><dd>\(e(value))</dd>\n" }
        html += "</dl>\n<p class=\"files\">"
        for name in ["console.log", "result.json", "trace-events.jsonl", "trace.log", "build.log", "qemu.log"] {
            if let path = cell.artifact(name), Files.exists(path) || name == "console.log",
               let href = link(path, from: outputDirectory) {
                html += "<a href=\"\(e(href))\">\(e(name))</a> "
            }
        }
        html += "</p>\n"
        if let coverage = result.coverage {
            html += coverageTable(coverage, cell: cell, outputDirectory: outputDirectory)
        }
        if !result.scenarios.isEmpty {
            html += "<ul class=\"scenarios\">"
            for scenario in result.scenarios {
                html += "<li><span class=\"badge \(statusClass(scenario.status.rawValue))\">\(scenario.status.rawValue)</span> \(e(scenario.name))"
                if !scenario.reason.isEmpty { html += ": \(e(Escape.truncate(scenario.reason, 300)))" }
                html += "</li>"
            }
            html += "</ul>\n"
        }
        if cell.status != .pass || !cell.activeReports.isEmpty {
            let title = result.lifecycleViolations.first?.title ?? cell.activeReports.first?.title ?? "reason"
            html += "<h4>\(e(title))</h4>\n<pre class=\"excerpt\">\(e(cell.excerpt(maxLines: 80)))</pre>\n"
        }
        if let path = cell.artifact("trace-events.jsonl"), let timeline = TraceTimeline.read(path: path) {
            html += "<figure class=\"timeline\">\(TimelineSVG.render(timeline))<figcaption>trace timeline</figcaption></figure>\n"
        }
        html += "</section>\n"
        return html
    }

    /// Repeats of one experiment on one kernel are numbered in the grid.
    private struct CellKeyAndKernel: Hashable {
        var key: CellKey
        var kernel: String
        init(_ cell: ReportCell) {
            key = cell.key
            kernel = cell.kernelLabel
        }
    }

    /// What a grid cell links to: the console, or the build log of a kernel
    /// that did not build (it has no console).
    private static func primaryLog(_ cell: ReportCell) -> (String, String)? {
        if cell.status == .buildFail, let build = cell.artifact("build.log"), Files.exists(build) {
            return ("build log", build)
        }
        return cell.artifact("console.log").map { ("console", $0) }
    }

    private static func statusClass(_ status: String) -> String { "st-" + status.lowercased().replacingOccurrences(of: "_", with: "-") }

    private static func changeClass(_ change: CellChange) -> String {
        change.rawValue.replacingOccurrences(of: " ", with: "-")
    }

    /// Per profiled file: lines, branches, functions reached, linked to lcov's page.
    static func coverageTable(_ coverage: CoverageSummary, cell: ReportCell, outputDirectory: String) -> String {
        let e = Escape.markup
        var html = "<table class=\"coverage\"><tr><th>coverage</th><th>lines</th><th>branches</th><th>functions</th></tr>\n"
        for file in coverage.files {
            html += "<tr><td>\(e(file.path))</td><td>\(e(file.lineText))</td><td>\(e(file.branchText))</td>"
                + "<td>\(file.functionsHit)/\(file.functionsFound)</td></tr>\n"
        }
        html += "</table>\n"
        if let page = coverage.html, let path = cell.artifact(page), Files.exists(path),
           let href = link(path, from: outputDirectory) {
            html += "<p class=\"files\"><a href=\"\(e(href))\">coverage report</a></p>\n"
        }
        if let problem = coverage.problem { html += "<p class=\"excerpt\">\(e(Escape.truncate(problem, 300)))</p>\n" }
        return html
    }

    /// A relative, percent-encoded href from the page's directory to `path`.
    static func link(_ path: String?, from directory: String) -> String? {
        guard let path else { return nil }
        let target = URL(fileURLWithPath: path).standardizedFileURL.pathComponents
        let base = URL(fileURLWithPath: directory, isDirectory: true).standardizedFileURL.pathComponents
        var common = 0
        while common < min(target.count, base.count), target[common] == base[common] { common += 1 }
        let parts = Array(repeating: "..", count: base.count - common) + target[common...]
        let allowed = CharacterSet.urlPathAllowed.subtracting(CharacterSet(charactersIn: ";?#"))
        return parts.map { $0.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0 }.joined(separator: "/")
    }

    /// The page's only script: the "failures only" switch, and a check that
    /// every grid link has its section, which it states on `<body>` so a
    /// headless browser (and the tests) can tell a page that rendered whole.
    static let script = """
    (function () {
      var errors = [];
      window.addEventListener('error', function (event) {
        errors.push(String(event.message));
        document.body.setAttribute('data-report-errors', errors.join(' | '));
      });
      var missing = [];
      var links = document.querySelectorAll('#grid a.run');
      for (var i = 0; i < links.length; i++) {
        var target = links[i].getAttribute('href').slice(1);
        if (!document.getElementById(target)) missing.push(target);
      }
      var toggle = document.getElementById('failures-only');
      toggle.addEventListener('change', function () {
        document.body.classList.toggle('failures-only', toggle.checked);
      });
      document.body.setAttribute('data-report-runs', String(links.length));
      document.body.setAttribute('data-report-timelines', String(document.querySelectorAll('svg.timeline').length));
      if (missing.length) document.body.setAttribute('data-report-missing', missing.join(' '));
      document.body.setAttribute('data-report-ready', missing.length ? 'broken' : 'ok');
    })();
    """

    /// CSP source for the script: `sha256-<base64>`.
    static let scriptHash: String = {
        let hex = Array(Digest.sha256(script).utf8)
        var bytes = Data()
        var index = 0
        while index + 1 < hex.count {
            bytes.append(UInt8(String(decoding: hex[index...index + 1], as: UTF8.self), radix: 16) ?? 0)
            index += 2
        }
        return "sha256-" + bytes.base64EncodedString()
    }()

    static let style = """
    body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
    code, pre, dd { font-family: ui-monospace, monospace; }
    table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
    th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
    thead th { background: #f0f0f0; }
    td.cell { min-width: 9em; }
    td.empty { background: #fafafa; }
    a.run { display: inline-block; min-width: 5em; padding: 2px 6px; border-radius: 3px; color: #fff; text-decoration: none; font-weight: 600; }
    .badge { display: inline-block; padding: 0 6px; border-radius: 3px; color: #fff; font-weight: 600; }
    .st-pass { background: #2e7d32; } .st-fail { background: #c62828; } .st-build-fail { background: #7f0000; }
    .st-error { background: #ef6c00; } .st-skip { background: #8d8d8d; } .st-miss { background: #6a1b9a; }
    section.run { background: none; border-left: 6px solid #ccc; padding: 0.2em 1em; margin: 1em 0; }
    section.st-pass { border-color: #2e7d32; } section.st-fail { border-color: #c62828; }
    section.st-error { border-color: #ef6c00; } section.st-skip { border-color: #8d8d8d; }
    section.st-miss { border-color: #6a1b9a; } section.st-build-fail { border-color: #7f0000; }
    body.failures-only section[data-status="PASS"] { display: none; }
    .change { font-size: 12px; padding: 0 4px; border-radius: 3px; border: 1px solid #999; }
    .change.new-failure { border-color: #c62828; color: #c62828; font-weight: 700; }
    .change.fixed { border-color: #2e7d32; color: #2e7d32; }
    .change.flaky { border-color: #ef6c00; color: #ef6c00; }
    dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; }
    dt { color: #666; } dd { margin: 0; word-break: break-all; }
    pre.excerpt { background: #f7f7f7; border: 1px solid #ddd; padding: 8px; overflow-x: auto; max-height: 40em; }
    svg.timeline { background: #fcfcfc; border: 1px solid #ddd; }
    svg .lane, svg .axis { font: 11px ui-monospace, monospace; fill: #444; }
    svg .life { stroke: #888; stroke-width: 2; } svg .life.open { stroke-dasharray: 4 3; }
    svg line.fork { stroke: #1565c0; stroke-width: 1; } svg circle.fork { fill: #1565c0; }
    svg .exit { fill: #000; } svg .bind { fill: #2e7d32; } svg .unbind { fill: #fff; stroke: #2e7d32; stroke-width: 1.5; }
    svg .bound { fill: #2e7d32; opacity: 0.25; } svg .alloc { fill: #1e88e5; } svg .free { fill: #c62828; }
    svg .exec { fill: #fff; stroke: #1565c0; stroke-width: 1.5; } svg .refused { stroke: #c62828; stroke-width: 2; }
    svg .drop { fill: #ef6c00; }
    """
}
