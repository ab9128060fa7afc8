import ArgumentParser
import Foundation
import Report
import Store
import Support

/// `kharness report <matrix-run-id>`: a matrix run from the store as a
/// terminal table, JUnit XML, KCIDB JSON, a static HTML page or the mails
/// for its new regressions.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Report a matrix run: table, junit, kcidb, html or email.",
        discussion: """
            --baseline compares each cell with the same cell of another matrix run (new failure, \
            fixed, still failing, flaky). Without it, an issue is new when the store has never \
            seen its signature before this run. Output goes to standard output, or to --out, \
            written atomically.
            """
    )

    @Argument(help: "The matrix run's ID.")
    var runID: String

    @Option(help: "table, junit, kcidb, html or email.")
    var format: String = "table"

    @Option(help: "A matrix run to compare with.")
    var baseline: String?

    @Option(help: "Write here instead of standard output.")
    var out: String?

    @OptionGroup var store: StoreOptions

    @Option(help: "KCIDB: URL where the results directory is published, for log_url.")
    var artifactURL: String?

    func run() async throws {
        try await exitOnError {
            guard let format = ReportFormat(rawValue: format) else {
                throw HarnessError.badInput("--format \(format)",
                                            "unknown format (known: \(ReportFormat.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            // Reporting reads: it must not leave an empty database behind.
            let path = store.db.map(Files.absolute) ?? Store.defaultPath(results: store.results)
            guard Files.exists(path) else { throw HarnessError.badInput(path, "no kharness store here (run a matrix first)") }
            let store = try self.store.open()
            let report = try MatrixReport.load(from: store, runID: runID, baselineID: baseline)
            let data = try format.render(report, outputPath: out, artifactBaseURL: artifactURL)
            if let out {
                try Files.createDirectory(URL(fileURLWithPath: Files.absolute(out)).deletingLastPathComponent().path)
                try Files.writeAtomically(data, to: out)
            } else {
                FileHandle.standardOutput.write(data)
            }
        }
    }
}
