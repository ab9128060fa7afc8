import Classify
import Foundation
import Harness
import Kernel
import Machine
import RunModel
import Store
import Support

/// What a matrix run tells whoever watches it (the CLI draws progress from these).
public enum MatrixEvent: Sendable {
    case created(runID: String, cells: Int, parallelism: Int, why: String, database: String)
    /// A cell to run this time (resume runs only the unfinished ones).
    case resuming(runID: String, cells: Int)
    /// Kernel preparation (builds, downloads), one line at a time.
    case kernel(String)
    case cellStarted(CellRecord, connection: String)
    case cellFinished(CellRecord, OutcomeRecord)
    case progress(MatrixProgress)
}

/// Counts for the live progress line.
public struct MatrixProgress: Sendable, Equatable {
    public var total: Int
    public var done: Int
    public var running: Int
    /// Cells whose outcome is not PASS or SKIP.
    public var failed: Int
    /// Seconds until the last cell is expected to finish; nil until one has.
    public var eta: Double?

    /// `3/8 done, 2 running, 1 failed, ETA 0:40`.
    public var line: String {
        var text = "\(done)/\(total) done, \(running) running, \(failed) failed"
        if let eta {
            let seconds = Int(eta.rounded())
            text += ", ETA \(seconds / 60):" + String(format: "%02d", seconds % 60)
        }
        return text
    }
}

/// How a matrix run ended.
public struct MatrixOutcome: Sendable {
    public var run: MatrixRunRecord
    public var results: [CellResult]
    /// The signal that stopped it, if one did.
    public var interruptedBy: Int32?

    /// 130/143 when interrupted; else 1 if a cell failed (FAIL, BUILD_FAIL),
    /// else 3 if a cell is ERROR (bad input included: the matrix was valid) or
    /// has no outcome, else 0.
    public var exitCode: Int32 {
        if let interruptedBy { return ExitStatus.interrupted(by: interruptedBy) }
        let statuses = results.compactMap(\.outcome?.status)
        if statuses.contains(where: { $0 == .fail || $0 == .buildFail }) { return ExitStatus.failure }
        if statuses.contains(.error) || statuses.count < results.count { return ExitStatus.error }
        return ExitStatus.success
    }
}

/// Choices for one `matrix run` or `matrix resume`.
public struct MatrixOptions: Sendable {
    /// Where run directories go: `<results>/<matrix run id>/<harness run id>`.
    public var results: String = "results"
    /// The database; nil: `<results>/kharness.db`.
    public var database: String?
    /// Cells at once; nil: the matrix's `parallel`, else ``Parallelism/derived(guestMemoryMiB:)``.
    public var parallelism: Int?
    /// libvirt URIs to spread cells over instead of the matrix's `connections`.
    public var connections: [String] = []
    /// Drop every kernel's series: the baseline "same matrix without the series".
    public var withoutSeries = false
    /// The matrix run's ID; nil: a new one.
    public var runID: String?

    public init() {}

    public var databasePath: String { database.map(Files.absolute) ?? Store.defaultPath(results: results) }
}

/// Expands a matrix into cells, prepares each distinct kernel once, runs the
/// cells through `Harness.Runner` up to the parallelism limit spread over
/// the libvirt connections, and records every step in the store.
///
/// Console logs are written by QEMU through libvirt's file chardev into the
/// run directory, so every connection must reach a daemon on this host (or
/// one that sees the results directory at the same path).
public final class MatrixRunner: Sendable {
    public let store: Store
    let cache: CacheDirectory
    let events: @Sendable (MatrixEvent) -> Void
    /// The backend each cell's machine runs on, given to the cell's `Runner`:
    /// libvirt at the cell's connection for every real matrix; tests pass
    /// ``ReplayMachines`` and run whole matrices without QEMU.
    let machines: @Sendable (RunRequest) -> any MachineBackend

    public init(store: Store, cache: CacheDirectory = .fromEnvironment(),
                events: @escaping @Sendable (MatrixEvent) -> Void = { _ in },
                machines: @escaping @Sendable (RunRequest) -> any MachineBackend = Runner.libvirtMachines) {
        self.store = store
        self.cache = cache
        self.events = events
        self.machines = machines
    }

    /// New matrix run: parse and check the file (nothing is recorded when it
    /// is malformed), create the run and its cells, run them.
    public func run(matrixPath: String, options: MatrixOptions) async throws -> MatrixOutcome {
        if let id = options.runID { try Self.validate(runID: id) }
        let (matrix, text) = try MatrixFile.load(path: matrixPath)
        try Self.validate(matrix)
        let runID = options.runID ?? "m" + RunID.new()
        let (parallelism, why) = Self.parallelism(options, matrix)
        let record = MatrixRunRecord(
            id: runID, name: matrix.name, matrixFile: Files.absolute(matrixPath), matrixText: text,
            matrixHash: Digest.sha256(text), withoutSeries: options.withoutSeries,
            resultsDirectory: Files.absolute(options.results) + "/" + runID, parallelism: parallelism)
        let ownership = try store.own(runID: runID)
        defer { ownership.release() }
        let cells = try store.createRun(record, cells: matrix.expand(runID: runID, withoutSeries: options.withoutSeries))
        events(.created(runID: runID, cells: cells.count, parallelism: parallelism, why: why, database: store.path))
        return try await execute(record, matrix: matrix, cells: cells, total: cells.count, parallelism: parallelism,
                                 connections: options.connections.isEmpty ? matrix.connections : options.connections)
    }

    /// The cells `run` would create, for `matrix run --dry-run`.
    public static func plan(matrixPath: String, withoutSeries: Bool) throws -> [CellRecord] {
        let (matrix, _) = try MatrixFile.load(path: matrixPath)
        try validate(matrix)
        return matrix.expand(runID: "dry-run", withoutSeries: withoutSeries)
    }

    /// Finishes an interrupted run: its pending and interrupted cells run
    /// (interrupted ones as a new attempt); done cells keep their outcome.
    /// `runID` nil: the newest interrupted run.
    public func resume(runID: String?, options: MatrixOptions) async throws -> MatrixOutcome {
        let id: String
        if let runID {
            try Self.validate(runID: runID)
            id = runID
        } else {
            guard let latest = try store.runs().first(where: { $0.state == .interrupted }) else {
                throw HarnessError.badInput(store.path, "no interrupted matrix run to resume")
            }
            id = latest.id
        }
        _ = try store.existingRun(id: id)
        let ownership = try store.own(runID: id)
        defer { ownership.release() }
        var record = try store.existingRun(id: id)
        if record.state == .running {
            // Its owner died between our open and now: recover it ourselves.
            try store.recoverAbandonedRuns()
            record = try store.existingRun(id: id)
        }
        let matrix = try MatrixFile.parse(record.matrixText, file: record.matrixFile)
        let all = try store.cells(ofRun: id)
        let todo = all.filter { $0.state == .pending || $0.state == .interrupted }
        var parallelismOptions = options
        if options.parallelism == nil { parallelismOptions.parallelism = record.parallelism }
        let (parallelism, _) = Self.parallelism(parallelismOptions, matrix)
        try store.setRunState(id, .running)
        record.state = .running
        events(.resuming(runID: id, cells: todo.count))
        return try await execute(record, matrix: matrix, cells: todo, total: all.count, parallelism: parallelism,
                                 connections: options.connections.isEmpty ? matrix.connections : options.connections)
    }

    static func parallelism(_ options: MatrixOptions, _ matrix: MatrixFile) -> (Int, String) {
        if let given = options.parallelism { return (max(1, given), "given") }
        if let given = matrix.parallel { return (given, "from the matrix file") }
        return Parallelism.derived()
    }

    /// Refuses a matrix whose workloads the harness does not know, naming where it says so.
    /// A run id names a directory under the results directory (and a lock file):
    /// one path component of letters, digits, `.`, `_` and `-`, not starting with
    /// `.` or `-`, so `--id ../x` or `--id /etc` can write nowhere else.
    public static func validate(runID: String) throws {
        let allowed = runID.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)
        }
        guard !runID.isEmpty, runID.count <= 64, allowed, !runID.hasPrefix("."), !runID.hasPrefix("-") else {
            throw HarnessError.badInput("--id \(runID)",
                "a run id is 1 to 64 letters, digits, '.', '_' or '-', not starting with '.' or '-'")
        }
    }

    static func validate(_ matrix: MatrixFile) throws {
        for workload in matrix.workloads {
            var request = RunRequest(kernel: .debian(version: "6.1"))
            request.workload = workload.name
            do {
                try Runner.validate(request)
            } catch let error as HarnessError where error.kind == .badInput {
                throw HarnessError.badInput(workload.location, error.reason)
            }
        }
    }

    // MARK: Running

    private func execute(_ record: MatrixRunRecord, matrix: MatrixFile, cells: [CellRecord], total: Int,
                         parallelism: Int, connections: [String]) async throws -> MatrixOutcome {
        let signals = SignalWatch(signals: [SIGINT, SIGTERM])
        defer { signals.stop() }
        let tracker = ProgressTracker(total: total, alreadyDone: total - cells.count, parallelism: parallelism,
                                      connections: connections)
        for result in try store.results(ofRun: record.id) where result.cell.state == .done {
            tracker.countExisting(result.outcome?.status)
        }
        events(.progress(tracker.snapshot()))

        let kernels = KernelPreparation(cache: cache, directory: record.resultsDirectory, signals: signals, events: events)
        let prepared = kernels.schedule(cells)

        await withTaskGroup(of: Void.self) { group in
            var inFlight = 0
            for cell in cells {
                if inFlight >= parallelism {
                    await group.next()
                    inFlight -= 1
                }
                if signals.received != nil { break }
                inFlight += 1
                let task = prepared[KernelPreparation.key(cell)]!
                group.addTask {
                    await self.runCell(cell, record: record, matrix: matrix, kernel: task, tracker: tracker, signals: signals)
                }
            }
            await group.waitForAll()
        }

        let results = try store.results(ofRun: record.id)
        let complete = results.allSatisfy { $0.cell.state == .done }
        let state: RunState = signals.received == nil && complete ? .finished : .interrupted
        try store.setRunState(record.id, state)
        var finished = record
        finished.state = state
        return MatrixOutcome(run: finished, results: results, interruptedBy: signals.received)
    }

    private func runCell(_ cell: CellRecord, record: MatrixRunRecord, matrix: MatrixFile,
                         kernel: Task<PreparedKernel, Never>, tracker: ProgressTracker, signals: SignalWatch) async {
        guard let cellID = cell.id else { return }
        let prepared = await kernel.value
        if signals.received != nil { return }
        do {
            switch prepared {
            case .interrupted:
                return
            case .failed(let status, let reason, let evidence, let end, let log):
                try store.recordWithoutRun(cellID, status: status, reason: reason, evidence: evidence, end: end,
                                           artifacts: log.map { [(name: "build.log", path: $0)] } ?? [])
                if let outcome = try store.outcome(ofCell: cellID) { finished(cell, outcome, tracker) }
                return
            case .ready(let identity, let configHash):
                try store.setKernelIdentity(cellIDs: [cellID], identity: identity, configHash: configHash)
            }
            let connection = tracker.acquireConnection()
            defer { tracker.releaseConnection(connection) }
            var request = RunRequest(kernel: try KernelSpec(parsing: cell.kernel))
            request.series = cell.series
            request.configFragments = cell.configFragments
            request.workload = cell.workload
            request.scenarios = cell.scenarios
            request.machine = cell.machineProfile
            request.extraCmdline = cell.cmdline
            request.connectionURI = connection
            request.resultsRoot = record.resultsDirectory
            if let boot = matrix.bootTimeout { request.bootTimeout = boot }
            if let total = matrix.timeout { request.totalTimeout = total }
            let harnessRunID = Runner.newRunID()
            let directory = record.resultsDirectory + "/" + harnessRunID
            let attempt = try store.startCell(cellID, harnessRunID: harnessRunID, directory: directory, connectionURI: connection)
            tracker.started()
            events(.cellStarted(cell, connection: connection))
            events(.progress(tracker.snapshot()))
            let start = Date()
            do {
                let result = try await Runner(cache: cache, machines: machines).run(request, runID: harnessRunID)
                try store.finishCell(cellID, attempt: attempt, result: result, wallSeconds: Date().timeIntervalSince(start))
            } catch {
                let error = HarnessError(error)
                try store.recordFailure(cellID, attempt: attempt, reason: error.description,
                                        end: RunResult.End(error.kind),
                                        wallSeconds: Date().timeIntervalSince(start))
            }
            tracker.stopped()
            if let outcome = try store.outcome(ofCell: cellID) { finished(cell, outcome, tracker) }
        } catch {
            // The store itself failed: nothing more can be recorded for this cell;
            // the next open marks it interrupted if it was started.
            events(.kernel("cell \(cell.ordinal): cannot record: \(HarnessError(error))"))
        }
    }

    private func finished(_ cell: CellRecord, _ outcome: OutcomeRecord, _ tracker: ProgressTracker) {
        tracker.finished(outcome)
        events(.cellFinished(cell, outcome))
        events(.progress(tracker.snapshot()))
    }
}

/// A kernel as the cells that use it need to know it.
enum PreparedKernel: Sendable {
    case ready(identity: String, configHash: String?)
    /// Every cell of this kernel gets this outcome without running.
    case failed(status: RunStatus, reason: String, evidence: [String], end: RunResult.End, log: String?)
    /// A signal arrived: its cells stay pending for `matrix resume`.
    case interrupted
}

/// Builds (or fetches) each distinct kernel of a matrix once, one after the
/// other (two kernel builds at once only fight over the cores), so cells of
/// the first kernel run while the next one builds. The harness's runner then
/// finds each kernel in the cache.
final class KernelPreparation: Sendable {
    let cache: CacheDirectory
    let directory: String
    let signals: SignalWatch
    let events: @Sendable (MatrixEvent) -> Void

    init(cache: CacheDirectory, directory: String, signals: SignalWatch, events: @escaping @Sendable (MatrixEvent) -> Void) {
        self.cache = cache
        self.directory = directory
        self.signals = signals
        self.events = events
    }

    /// What makes two cells' kernels the same build: the spec, the series,
    /// and the fragments the runner will use (``RunRequest/kernelFragments(_:workload:workloadScript:)``).
    static func key(_ cell: CellRecord) -> String {
        [cell.kernel, cell.series ?? "", effectiveFragments(cell).joined(separator: ",")].joined(separator: "\n")
    }

    static func effectiveFragments(_ cell: CellRecord) -> [String] {
        guard cell.kernel.hasPrefix("git:") else { return [] }
        return RunRequest.kernelFragments(cell.configFragments, workload: cell.workload)
    }

    /// One task per distinct kernel, each starting when the previous one is done.
    func schedule(_ cells: [CellRecord]) -> [String: Task<PreparedKernel, Never>] {
        var tasks: [String: Task<PreparedKernel, Never>] = [:]
        var previous: Task<PreparedKernel, Never>?
        for cell in cells where tasks[Self.key(cell)] == nil {
            let before = previous
            let index = tasks.count
            let task = Task<PreparedKernel, Never> {
                _ = await before?.value
                return await self.prepare(cell, index: index)
            }
            tasks[Self.key(cell)] = task
            previous = task
        }
        return tasks
    }

    private func prepare(_ cell: CellRecord, index: Int) async -> PreparedKernel {
        if signals.received != nil { return .interrupted }
        let logPath = directory + "/build-\(index).log"
        do {
            let spec = try KernelSpec(parsing: cell.kernel)
            switch spec {
            case .debian(let version):
                events(.kernel("kernel \(cell.kernel): fetching"))
                let artifacts = try await DebianKernelFetcher(cache: cache).fetch(version: version)
                return .ready(identity: artifacts.identity, configHash: nil)
            case .image(let path, _):
                try KernelImageFile.validate(path)
                return .ready(identity: try KernelImageFile.identity(of: path), configHash: nil)
            case .git:
                try Files.createDirectory(directory)
                let fragments = Self.effectiveFragments(cell)
                let label = "\(cell.kernel)\(cell.series.map { " + \($0)" } ?? "") [\(fragments.joined(separator: ","))]"
                events(.kernel("kernel \(label): building"))
                let throttle = BuildProgress.Throttle(interval: 15)
                let builder = KernelBuilder(cache: cache, configDirectory: try KernelBuilder.defaultConfigDirectory()) {
                    [events] progress in
                    if throttle.due(progress) { events(.kernel("kernel \(label): \(progress.line)")) }
                }
                let build = try await builder.build(
                    SourceKernelRequest(spec: spec, series: cell.series, fragments: fragments), logPath: logPath)
                events(.kernel("kernel \(label): \(build.cacheHit ? "cached" : "built") \(build.artifacts.identity)"))
                return .ready(identity: build.artifacts.identity, configHash: build.configHash)
            }
        } catch _ where signals.received != nil {
            return .interrupted
        } catch let failure as KernelBuildFailure {
            events(.kernel("kernel \(cell.kernel): BUILD_FAIL: \(failure.reason)"))
            return .failed(status: .buildFail, reason: failure.reason, evidence: ["build log: \(failure.logPath)"],
                           end: .buildFailed, log: failure.logPath)
        } catch {
            // git's errors, a full disk's, Foundation's: one line and the right end.
            let error = HarnessError(error)
            events(.kernel("kernel \(cell.kernel): \(error)"))
            return .failed(status: .error, reason: error.description, evidence: [],
                           end: RunResult.End(error.kind),
                           log: Files.exists(logPath) ? logPath : nil)
        }
    }
}

/// Counts for progress and the connection each new cell uses.
/// `@unchecked`: its vars change after init only with `lock` held.
final class ProgressTracker: @unchecked Sendable {
    private let lock = NSLock()
    private let total: Int
    private var done: Int
    private var running = 0
    private var failed = 0
    private var finishedThisTime = 0
    private var wallSum = 0.0
    private let parallelism: Int
    private var load: [(uri: String, running: Int)]

    init(total: Int, alreadyDone: Int, parallelism: Int, connections: [String]) {
        self.total = total
        self.done = alreadyDone
        self.parallelism = parallelism
        self.load = connections.map { ($0, 0) }
    }

    /// A cell done before this invocation (resume): counts toward failed.
    func countExisting(_ status: RunStatus?) {
        lock.lock(); defer { lock.unlock() }
        if let status, status != .pass, status != .skip { failed += 1 }
    }

    /// The least busy connection; ties go to the earliest listed.
    func acquireConnection() -> String {
        lock.lock(); defer { lock.unlock() }
        let index = load.indices.min { load[$0].running < load[$1].running }!
        load[index].running += 1
        return load[index].uri
    }

    func releaseConnection(_ uri: String) {
        lock.lock(); defer { lock.unlock() }
        if let index = load.firstIndex(where: { $0.uri == uri }) { load[index].running -= 1 }
    }

    func started() { lock.lock(); running += 1; lock.unlock() }
    func stopped() { lock.lock(); running -= 1; lock.unlock() }

    func finished(_ outcome: OutcomeRecord) {
        lock.lock(); defer { lock.unlock() }
        done += 1
        if outcome.status != .pass && outcome.status != .skip { failed += 1 }
        if outcome.wallSeconds > 0 {
            finishedThisTime += 1
            wallSum += outcome.wallSeconds
        }
    }

    func snapshot() -> MatrixProgress {
        lock.lock(); defer { lock.unlock() }
        var eta: Double?
        if finishedThisTime > 0 {
            let mean = wallSum / Double(finishedThisTime)
            let remaining = Double(total - done) - Double(running) / 2
            eta = max(0, remaining) * mean / Double(parallelism)
        }
        return MatrixProgress(total: total, done: done, running: running, failed: failed, eta: eta)
    }
}
