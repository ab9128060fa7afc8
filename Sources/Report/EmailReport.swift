import Classify
import Foundation
import RunModel

/// The mail a kernel developer expects about a new regression, in the shape
/// syzbot and the kernel test robot use: a subject that is the report's title,
/// then what broke, which kernel and config, when it was first seen, the
/// command that reproduces it, and the report itself. Prose is wrapped at 72
/// columns; the report excerpt and the command are kept as they are, because
/// a rewrapped oops or command line is useless.
public enum EmailReport {
    public static let columns = 72
    static let excerptLines = 80

    /// One message per new issue (see ``ReportIssue/isNew(in:)``), as an mbox
    /// (`From ` separator lines), so a mail client or `git send-email` can take
    /// them. Empty when the run has no new regression.
    public static func render(_ report: MatrixReport) -> String {
        report.issues.filter { $0.isNew(in: report) }.map { message(for: $0, in: report) }.joined(separator: "\n")
    }

    public static func message(for issue: ReportIssue, in report: MatrixReport) -> String {
        let cells = issue.cells.map { report.cells[$0] }
        let cell = cells[0]
        let result = cell.result
        var header = "From kharness Mon Sep 17 00:00:00 2001\n"
        // Escape.line leaves no CR, LF or other control: the title cannot add a header.
        header += "Subject: \(encodedHeader(Escape.truncate("[kharness] " + Escape.line(issue.title), 200)))\n"
        header += "Content-Type: text/plain; charset=utf-8\n\n"

        var out = wrap("Hello,") + "\n\n"
        let kind = [.verdict, .build].contains(issue.category) ? "failure"
            : issue.category == .pasidLifetime ? "PASID lifetime violation" : "kernel report"
        var what = "kharness found a new \(kind), \"\(Escape.line(issue.title))\", "
        what += "in \(cells.count) of \(report.cells.count) runs of matrix run \(Escape.line(report.id))"
        if let baseline = report.baselineID { what += "; the baseline run \(Escape.line(baseline)) did not show it" }
        out += wrap(what + ".") + "\n\n"

        var facts: [(String, String)] = [("what", "\(issue.title) (\(issue.category), signature \(issue.signature))")]
        if let frame = issue.guiltyFrame { facts.append(("in", frame)) }
        facts.append(("kernel", result.kernel))
        if let build = result.build {
            facts.append(("base", "\(build.revision) (\(build.baseCommit.prefix(12)))"))
            for (index, patch) in build.patches.enumerated() {
                facts.append(("patch \(index + 1)/\(build.patches.count)", patch.subject))
            }
            if !build.patchsetHash.isEmpty { facts.append(("patchset", "sha256 \(build.patchsetHash.prefix(16))")) }
        }
        if result.build == nil, let identity = result.kernelIdentity { facts.append(("identity", identity)) }
        if let release = result.kernelRelease { facts.append(("release", release)) }
        var config = cell.configFragments.isEmpty ? "the kernel's own" : "base + " + cell.configFragments.joined(separator: ", ")
        if let hash = result.build?.configHash { config += " (config \(hash.prefix(12)))" }
        facts.append(("config", config))
        facts.append(("machine", "\(result.machine) (arm64 guest, QEMU TCG)"))
        facts.append(("workload", result.workload + (cell.scenarios.isEmpty ? "" : ", scenarios " + cell.scenarios.joined(separator: ","))))
        if let seen = issue.firstSeen { facts.append(("first seen", "\(seen.time) in run \(seen.runID) (\(seen.kernel))")) }
        let failing = cells.filter { Regressions.isFailure($0.status) }.count
        facts.append(("runs", "\(cells.count) showed it, \(failing) failed; run \(result.runID)"))
        out += factBlock(facts) + "\n"

        out += wrap("To reproduce:") + "\n\n"
        out += commandLines(cell.reproducerWords).joined(separator: "\n") + "\n\n"
        if let console = cell.artifact("console.log") {
            // A path is copied, not read: it stays whole on its own line.
            out += wrap("The console log:") + "\n\n  " + Escape.line(console) + "\n\n"
        }
        out += wrap("The report:") + "\n\n"
        // A violation or a bare failure is shown with what the console adds (the
        // oops a freed PASID causes); a kernel report is its own text.
        let text = [.pasidLifetime, .verdict].contains(issue.category) ? cell.excerpt(maxLines: .max) : issue.text
        let lines = Escape.plain(text).split(separator: "\n", omittingEmptySubsequences: false)
        for line in lines.prefix(excerptLines) { out += line + "\n" }
        if lines.count > excerptLines { out += "[... \(lines.count - excerptLines) more lines in the console log]\n" }
        out += "\n-- \n" + wrap("kharness, the arm64 IOMMU regression harness. Reply to this mail to discuss the report.") + "\n"
        // Every body line, prose included: wrapping can put any word of a title first.
        return header + out.split(separator: "\n", omittingEmptySubsequences: false).map { mboxSafe(String($0)) }
            .joined(separator: "\n")
    }

    /// In an mbox a line starting with "From " starts a new message: the
    /// guest's text must not be able to forge one. Quoted the mboxrd way (one
    /// more `>` before any `>*From `), so a reader can undo it.
    static func mboxSafe(_ line: String) -> String {
        line.drop(while: { $0 == ">" }).hasPrefix("From ") ? ">" + line : line
    }

    /// A header value in RFC 2047 form when it is not plain ASCII.
    static func encodedHeader(_ value: String) -> String {
        guard !value.allSatisfy(\.isASCII) else { return value }
        return "=?UTF-8?B?" + Data(value.utf8).base64EncodedString() + "?="
    }

    /// A command wrapped with backslash continuations, words never split, so
    /// it can be pasted into a shell as it is.
    static func commandLines(_ words: [String]) -> [String] {
        // An option stays on the line of its value.
        var groups: [String] = []
        for word in words {
            if let last = groups.last, last.hasPrefix("--"), !last.contains(" "), !word.hasPrefix("--") {
                groups[groups.count - 1] += " " + word
            } else {
                groups.append(word)
            }
        }
        var lines: [String] = []
        var line = "  "
        for word in groups {
            if line.trimmingCharacters(in: .whitespaces).isEmpty {
                line += word
            } else if line.count + 1 + word.count + 2 <= columns {
                line += " " + word
            } else {
                lines.append(line + " \\")
                line = "      " + word
            }
        }
        lines.append(line)
        return lines
    }

    /// `name: value` lines, values wrapped and indented under each other.
    static func factBlock(_ facts: [(String, String)]) -> String {
        let width = (facts.map { $0.0.count }.max() ?? 0) + 2
        var out = ""
        for (name, value) in facts {
            let prefix = (name + ":").padding(toLength: width, withPad: " ", startingAt: 0)
            let lines = wrapLines(Escape.line(value), width: columns - width - 2)
            for (index, line) in lines.enumerated() {
                out += "  " + (index == 0 ? prefix : String(repeating: " ", count: width)) + line + "\n"
            }
        }
        return out
    }

    static func wrap(_ text: String) -> String { wrapLines(Escape.line(text), width: columns).joined(separator: "\n") }

    /// Greedy word wrap; a word longer than the line (a hash, a path) is cut.
    static func wrapLines(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            var word = Substring(word)
            while word.count > width {
                if !line.isEmpty { lines.append(line); line = "" }
                lines.append(String(word.prefix(width)))
                word = word.dropFirst(width)
            }
            if line.isEmpty {
                line = String(word)
            } else if line.count + 1 + word.count <= width {
                line += " " + word
            } else {
                lines.append(line)
                line = String(word)
            }
        }
        if !line.isEmpty || lines.isEmpty { lines.append(line) }
        return lines
    }
}
