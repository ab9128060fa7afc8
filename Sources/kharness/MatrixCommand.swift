import ArgumentParser
import Foundation
import Matrix
import RunModel
import Store
import Support

struct MatrixCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matrix",
        abstract: "Run a matrix of kernels x configs x machines x workloads, recorded in SQLite.",
        subcommands: [MatrixRunCommand.self, MatrixResumeCommand.self, MatrixListCommand.self, MatrixShowCommand.self])
}

/// Options every matrix command shares.
struct StoreOptions: ParsableArguments {
    @Option(help: "Directory for run directories (and the database, unless --db).")
    var results = "results"

    @Option(help: "The SQLite database (default: <results>/kharness.db).")
    var db: String?

    func open() throws -> Store { try Store.open(path: db.map(Files.absolute) ?? Store.defaultPath(results: results)) }
}

struct MatrixRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Expand a matrix file and run its cells.",
        discussion: "Exit status: 0 all PASS/SKIP, 1 a cell FAIL or BUILD_FAIL, 2 bad input, 3 a cell ERROR, 130/143 interrupted (resume with `matrix resume`).")

    @Argument(help: "The matrix file (YAML).")
    var file: String

    @OptionGroup var store: StoreOptions

    @Option(name: [.customShort("j"), .long], help: "Cells at once (default: the matrix's parallel, else from cores and memory).")
    var parallel: Int?

    @Option(help: "libvirt URI to spread cells over, instead of the matrix's connections (repeatable).")
    var connect: [String] = []

    @Flag(help: "Drop every kernel's series (the baseline: the same matrix without the series).")
    var withoutSeries = false

    @Option(help: "The matrix run's ID (default: a new one).")
    var id: String?

    @Flag(help: "Check the file and print the cells without running or recording anything.")
    var dryRun = false

    func run() async throws {
        if dryRun {
            let cells = try await exitOnError { try MatrixRunner.plan(matrixPath: file, withoutSeries: withoutSeries) }
            var table = TextTable(header: ["cell", "kernel", "series", "config", "machine", "cmdline", "workload", "repeat"])
            for cell in cells {
                table.add(["\(cell.ordinal)", cell.kernelName, cell.series ?? "", cell.configFragments.joined(separator: ","),
                           "\(cell.machine) (\(cell.machineProfile))", cell.cmdline.joined(separator: " "),
                           cell.workload + (cell.scenarios.isEmpty ? "" : ":" + cell.scenarios.joined(separator: ",")),
                           "\(cell.repeatIndex)"])
            }
            printSafe(table.render() + "\(cells.count) cell(s)")
            return
        }
        let outcome = try await exitOnError {
            var options = MatrixOptions()
            options.results = store.results
            options.database = store.db
            options.parallelism = parallel
            options.connections = connect
            options.withoutSeries = withoutSeries
            options.runID = id
            return try await MatrixRunner(store: try store.open(), events: MatrixConsole().show).run(matrixPath: file, options: options)
        }
        try finish(outcome)
    }
}

struct MatrixResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Finish an interrupted matrix run: its pending and interrupted cells.")

    @Argument(help: "The matrix run's ID (default: the newest interrupted run).")
    var id: String?

    @OptionGroup var store: StoreOptions

    @Option(name: [.customShort("j"), .long], help: "Cells at once (default: as the run was started).")
    var parallel: Int?

    @Option(help: "libvirt URI to spread cells over (repeatable).")
    var connect: [String] = []

    func run() async throws {
        let outcome = try await exitOnError {
            var options = MatrixOptions()
            options.results = store.results
            options.database = store.db
            options.parallelism = parallel
            options.connections = connect
            return try await MatrixRunner(store: try store.open(), events: MatrixConsole().show).resume(runID: id, options: options)
        }
        try finish(outcome)
    }
}

struct MatrixListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List matrix runs, newest first.")

    @OptionGroup var store: StoreOptions

    func run() async throws {
        let runs = try await exitOnError { try store.open().runs() }
        var table = TextTable(header: ["run", "name", "state", "created", "matrix"])
        for run in runs {
            table.add([run.id, run.name, run.state.rawValue, ISO8601DateFormatter().string(from: run.createdAt), run.matrixFile])
        }
        printSafe(table.render(), terminator: "")
    }
}

struct MatrixShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "The summary table of a matrix run.")

    @Argument(help: "The matrix run's ID.")
    var id: String

    @OptionGroup var store: StoreOptions

    func run() async throws {
        let text = try await exitOnError {
            let db = try store.open()
            let run = try db.existingRun(id: id)
            return "run \(run.id) (\(run.name)): \(run.state.rawValue)\n" + RunSummary.table(try db.results(ofRun: id))
        }
        printSafe(text, terminator: "")
    }
}

struct CompareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare", abstract: "Compare a matrix run against a baseline run: new, fixed, still failing, flaky.",
        discussion: "Exit status: 0 no new failure, 1 new failures, 2 bad input.")

    @Argument(help: "The run's ID.")
    var run: String

    @Argument(help: "The baseline run's ID.")
    var baseline: String

    @OptionGroup var store: StoreOptions

    @Flag(help: "Print the comparison as JSON.")
    var json = false

    func run() async throws {
        let comparison = try await exitOnError { try store.open().compare(runID: run, baselineID: baseline) }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            printJSON(String(decoding: try encoder.encode(comparison), as: UTF8.self))
        } else {
            printSafe(comparison.table(), terminator: "")
        }
        if !comparison.entries(.new).isEmpty { throw ExitCode(ExitStatus.failure) }
    }
}

private func finish(_ outcome: MatrixOutcome) throws {
    printSafe(RunSummary.table(outcome.results), terminator: "")
    stderrLine("kharness: matrix run \(outcome.run.id): \(outcome.run.state.rawValue)"
        + (outcome.run.state == .interrupted ? " (kharness matrix resume \(outcome.run.id))" : ""))
    if outcome.exitCode != ExitStatus.success { throw ExitCode(outcome.exitCode) }
}

/// Live progress on stderr: one line rewritten in place on a terminal, a
/// line per finished cell otherwise.
/// `@unchecked`: its vars change only with `lock` held, which also keeps each stderr write whole.
final class MatrixConsole: @unchecked Sendable {
    private let lock = NSLock()
    private let terminal = isatty(STDERR_FILENO) == 1
    private var progress = ""
    private var lastDone = -1

    func show(_ event: MatrixEvent) {
        lock.lock()
        defer { lock.unlock() }
        switch event {
        case .created(let id, let cells, let parallelism, let why, let database):
            line("kharness: matrix run \(id): \(cells) cell(s), \(parallelism) at once (\(why)); database \(database)")
        case .resuming(let id, let cells):
            line("kharness: resuming matrix run \(id): \(cells) cell(s) to run")
        case .kernel(let text):
            line("kharness: \(text)")
        case .cellStarted(let cell, let connection):
            if terminal { return }
            line("kharness: cell \(cell.ordinal) \(Self.name(cell)) started on \(connection)")
        case .cellFinished(let cell, let outcome):
            line("kharness: cell \(cell.ordinal) \(Self.name(cell)): \(outcome.status.rawValue) \(outcome.reason) (\(String(format: "%.1f", outcome.wallSeconds)) s)")
        case .progress(let p):
            progress = "matrix: " + p.line
            if terminal {
                redraw()
            } else if p.done != lastDone {
                lastDone = p.done
                line(progress)
            }
        }
    }

    static func name(_ cell: CellRecord) -> String { "\(cell.key) #\(cell.repeatIndex)" }

    private func line(_ text: String) {
        var out = terminal ? "\r\u{1B}[K" : ""
        out += TerminalText.plain(text) + "\n"
        FileHandle.standardError.write(Data(out.utf8))
        if terminal { redraw() }
    }

    private func redraw() {
        guard terminal, !progress.isEmpty else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K\(progress)".utf8))
    }
}
