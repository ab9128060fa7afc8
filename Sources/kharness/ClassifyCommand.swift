import ArgumentParser
import Classify
import Foundation
import Support

/// `kharness classify <console-log>`: the verdict and kernel reports of any console log.
///
/// A bare log carries no harness knowledge (deadlines, done marker), so it is judged
/// by ``decideLogOutcome(analysis:)``: a kernel report or failed scenario is FAIL, all-SKIP
/// scenarios are SKIP, anything else PASS. Exit status 0 whatever the verdict; 2 when
/// the log or suppression file cannot be read.
struct ClassifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Classify a kernel console log; prints the verdict and reports as JSON.",
        discussion: """
            Prints {"status", "reason", "reports": [{"category", "title", "signature", \
            "corrupted", "suppressed"}]} with reports in console order. Reads '-' as standard input.
            """
    )

    @Argument(help: "The console log file ('-' for standard input).")
    var log: String

    @Option(name: .customLong("suppressions"), help: "YAML file of known-benign reports.")
    var suppressionsPath: String?

    @Option(help: "Machine name that suppression rules' 'machine' globs match.")
    var machine: String?

    @Flag(help: "Print the whole analysis (report texts, scenarios, SMMU events) as well.")
    var full = false

    func run() async throws {
        try await exitOnError {
            let suppressions = try suppressionsPath.map { try Suppressions.load(path: $0, machine: machine) }
                ?? Suppressions(machine: machine)
            let analysis = try Self.classify(path: log, suppressions: suppressions)
            let outcome = decideLogOutcome(analysis: analysis)
            var out = Self.summaryJSON(outcome: outcome, analysis: analysis)
            if full {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                let whole = String(decoding: try encoder.encode(analysis), as: UTF8.self)
                out.removeLast(2)  // "\n}"
                out += ",\n  \"analysis\": \(whole)\n}"
            }
            FileHandle.standardOutput.write(Data((TerminalText.json(out) + "\n").utf8))
        }
    }

    /// `{"status", "reason", "reports": [...]}` with keys in that order, one report per line.
    static func summaryJSON(outcome: Outcome, analysis: ConsoleAnalysis) -> String {
        func quoted(_ s: String) -> String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .withoutEscapingSlashes
            return String(decoding: (try? encoder.encode(s)) ?? Data("\"\"".utf8), as: UTF8.self)
        }
        let reports = analysis.reports.map { r in
            "    {\"category\": \(quoted(r.category.rawValue)), \"title\": \(quoted(r.title)), "
                + "\"signature\": \(quoted(r.signature)), \"corrupted\": \(r.corrupted), \"suppressed\": \(r.suppressed)}"
        }
        return """
            {
              "status": \(quoted(outcome.status.rawValue)),
              "reason": \(quoted(outcome.reason)),
              "reports": [\(reports.isEmpty ? "" : "\n" + reports.joined(separator: ",\n") + "\n  ")]
            }
            """
    }

    /// Streams the file through the classifier in 1 MiB reads.
    static func classify(path: String, suppressions: Suppressions) throws -> ConsoleAnalysis {
        let fd = path == "-" ? 0 : open(path, O_RDONLY)
        guard fd >= 0 else { throw HarnessError.badInput(path, "cannot open: \(String(cString: strerror(errno)))") }
        defer { if fd != 0 { close(fd) } }
        var classifier = ConsoleClassifier(suppressions: suppressions)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw HarnessError.badInput(path, "cannot read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            buffer.withUnsafeBufferPointer { classifier.feed(UnsafeBufferPointer(rebasing: $0[0..<n])) }
        }
        return classifier.finish()
    }
}
