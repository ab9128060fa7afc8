import Classify
import Foundation
import GRDB
import RunModel
import Support

/// The kharness database: matrix runs, their cells, and each cell attempt's
/// outcome, kernel reports, scenarios and artifacts, in one SQLite file.
///
/// Every write is one transaction, so a harness killed at any instant
/// (SIGKILL included) leaves the file consistent: a cell is either still
/// `running` with no outcome for its attempt, or `done` with all of it.
/// What a dead harness could not write itself (its running cells becoming
/// `interrupted`) is written by the next `Store.open`: a run whose owner
/// lock (see ``RunOwnership``) is free while the run says `running` was
/// abandoned.
///
/// The database is in WAL mode, so readers (reports, `compare`) never wait
/// for a running matrix and never see half of a cell.
public final class Store: Sendable {
    /// The database file.
    public let path: String
    private let pool: DatabasePool

    /// Opens (creating and migrating if needed) the database at `path`, then
    /// marks runs abandoned by a dead harness as interrupted.
    public static func open(path: String) throws -> Store {
        let store = try Store(path: path)
        try store.recoverAbandonedRuns()
        return store
    }

    /// The default database of a results directory: `<results>/kharness.db`.
    public static func defaultPath(results: String) -> String { Files.absolute(results) + "/kharness.db" }

    private init(path: String) throws {
        self.path = Files.absolute(path)
        let directory = (self.path as NSString).deletingLastPathComponent
        do {
            try Files.createDirectory(directory)
            var configuration = Configuration()
            configuration.busyMode = .timeout(30)
            pool = try DatabasePool(path: self.path, configuration: configuration)
            try Self.migrator.migrate(pool)
        } catch let error as DatabaseError {
            throw HarnessError.infrastructure(self.path, "cannot open the database: \(error.message ?? "\(error)")")
        }
    }

    /// Schema history. Only ever append migrations: databases in the field
    /// were created by the earlier ones.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "runs") { t in
                t.primaryKey("id", .text)
                t.column("name", .text).notNull()
                t.column("matrix_file", .text).notNull()
                t.column("matrix_text", .text).notNull()
                t.column("matrix_hash", .text).notNull()
                t.column("without_series", .boolean).notNull()
                t.column("results_directory", .text).notNull()
                t.column("parallelism", .integer).notNull()
                t.column("state", .text).notNull()
                t.column("created_at", .datetime).notNull()
                t.column("finished_at", .datetime)
            }
            try db.create(table: "cells") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("run_id", .text).notNull().indexed().references("runs", onDelete: .cascade)
                t.column("ordinal", .integer).notNull()
                t.column("kernel_name", .text).notNull()
                t.column("kernel", .text).notNull()
                t.column("series", .text)
                t.column("kernel_identity", .text)
                t.column("config_fragments", .text).notNull()
                t.column("config_hash", .text)
                t.column("machine", .text).notNull()
                t.column("machine_profile", .text).notNull()
                t.column("cmdline", .text).notNull()
                t.column("workload", .text).notNull()
                t.column("scenarios", .text).notNull()
                t.column("repeat_index", .integer).notNull()
                t.column("state", .text).notNull()
                t.column("attempts", .integer).notNull()
                t.column("connection_uri", .text)
                t.column("harness_run_id", .text)
                t.column("directory", .text)
                t.column("started_at", .datetime)
                t.column("finished_at", .datetime)
                t.uniqueKey(["run_id", "ordinal"])
            }
            try db.create(table: "outcomes") { t in
                t.column("cell_id", .integer).notNull().references("cells", onDelete: .cascade)
                t.column("attempt", .integer).notNull()
                t.column("harness_run_id", .text)
                t.column("status", .text).notNull()
                t.column("reason", .text).notNull()
                t.column("evidence", .text).notNull()
                t.column("end", .text).notNull()
                t.column("kernel_release", .text)
                t.column("timings", .text).notNull()
                t.column("wall_seconds", .double).notNull()
                t.column("guest_seconds", .double).notNull()
                t.column("console_bytes", .integer).notNull()
                t.column("recorded_at", .datetime).notNull()
                t.primaryKey(["cell_id", "attempt"])
            }
            try db.create(table: "reports") { t in
                t.column("cell_id", .integer).notNull().references("cells", onDelete: .cascade)
                t.column("attempt", .integer).notNull()
                t.column("ordinal", .integer).notNull()
                t.column("category", .text).notNull()
                t.column("title", .text).notNull()
                t.column("signature", .text).notNull().indexed()
                t.column("guilty_frame", .text)
                t.column("text", .text).notNull()
                t.column("corrupted", .boolean).notNull()
                t.column("suppressed", .boolean).notNull()
                t.column("line", .integer).notNull()
                t.primaryKey(["cell_id", "attempt", "ordinal"])
            }
            try db.create(table: "scenarios") { t in
                t.column("cell_id", .integer).notNull().references("cells", onDelete: .cascade)
                t.column("attempt", .integer).notNull()
                t.column("ordinal", .integer).notNull()
                t.column("name", .text).notNull()
                t.column("status", .text).notNull()
                t.column("reason", .text).notNull()
                t.column("evidence", .text).notNull()
                t.primaryKey(["cell_id", "attempt", "ordinal"])
            }
            try db.create(table: "artifacts") { t in
                t.column("cell_id", .integer).notNull().references("cells", onDelete: .cascade)
                t.column("attempt", .integer).notNull()
                t.column("name", .text).notNull()
                t.column("path", .text).notNull()
                t.column("bytes", .integer).notNull()
                t.primaryKey(["cell_id", "attempt", "name"])
            }
        }
        return migrator
    }

    // MARK: Reading

    /// All matrix runs, newest first.
    public func runs() throws -> [MatrixRunRecord] {
        try read { db in try MatrixRunRecord.order(Column("created_at").desc, Column("id").desc).fetchAll(db) }
    }

    /// One matrix run, or nil.
    public func run(id: String) throws -> MatrixRunRecord? {
        try read { db in try MatrixRunRecord.fetchOne(db, key: id) }
    }

    /// The run with this ID, or a bad-input error naming it (for command lines).
    public func existingRun(id: String) throws -> MatrixRunRecord {
        guard let run = try run(id: id) else {
            throw HarnessError.badInput(id, "no such matrix run in \(path)")
        }
        return run
    }

    /// A run's cells in matrix order.
    public func cells(ofRun runID: String) throws -> [CellRecord] {
        try read { db in try CellRecord.filter(Column("run_id") == runID).order(Column("ordinal")).fetchAll(db) }
    }

    /// One cell, or nil.
    public func cell(id: Int64) throws -> CellRecord? {
        try read { db in try CellRecord.fetchOne(db, key: id) }
    }

    /// The outcome of a cell's latest attempt; nil while it is pending or running.
    public func outcome(ofCell cellID: Int64) throws -> OutcomeRecord? {
        try read { db in try Self.latestOutcome(db, cellID: cellID) }
    }

    /// Every attempt's outcome of a cell, oldest first (an interrupted attempt and its rerun).
    public func outcomeHistory(ofCell cellID: Int64) throws -> [OutcomeRecord] {
        try read { db in
            try OutcomeRecord.filter(Column("cell_id") == cellID).order(Column("attempt")).fetchAll(db)
        }
    }

    /// Kernel reports of a cell's latest attempt, in console order.
    public func reports(ofCell cellID: Int64) throws -> [ReportRecord] {
        try read { db in try Self.latest(ReportRecord.self, db, cellID: cellID) }
    }

    /// Scenario results of a cell's latest attempt, in the order the guest gave them.
    public func scenarios(ofCell cellID: Int64) throws -> [ScenarioRecord] {
        try read { db in try Self.latest(ScenarioRecord.self, db, cellID: cellID) }
    }

    /// Files of a cell's latest attempt.
    public func artifacts(ofCell cellID: Int64) throws -> [ArtifactRecord] {
        try read { db in
            guard let attempt = try Self.attempts(db, cellID: cellID), attempt > 0 else { return [] }
            return try ArtifactRecord.filter(Column("cell_id") == cellID && Column("attempt") == attempt)
                .order(Column("name")).fetchAll(db)
        }
    }

    /// Every cell of a run with its latest attempt's outcome, reports,
    /// scenarios and artifacts, read in one transaction (a consistent
    /// snapshot even while the run goes on).
    public func results(ofRun runID: String) throws -> [CellResult] {
        try read { db in
            let cells = try CellRecord.filter(Column("run_id") == runID).order(Column("ordinal")).fetchAll(db)
            return try cells.map { cell in
                guard let id = cell.id, cell.attempts > 0 else { return CellResult(cell: cell, outcome: nil) }
                let mine = Column("cell_id") == id && Column("attempt") == cell.attempts
                return CellResult(
                    cell: cell,
                    outcome: try OutcomeRecord.filter(mine).fetchOne(db),
                    reports: try ReportRecord.filter(mine).order(Column("ordinal")).fetchAll(db),
                    scenarios: try ScenarioRecord.filter(mine).order(Column("ordinal")).fetchAll(db),
                    artifacts: try ArtifactRecord.filter(mine).order(Column("name")).fetchAll(db))
            }
        }
    }

    /// Runs `body` on a read-only snapshot, for queries the API above does
    /// not have (the schema is the documented record types).
    public func read<T: Sendable>(_ body: @Sendable (Database) throws -> T) throws -> T {
        do {
            return try pool.read(body)
        } catch let error as DatabaseError {
            throw HarnessError.infrastructure(path, "database read failed: \(error.message ?? "\(error)")")
        }
    }

    /// `PRAGMA integrity_check` says "ok".
    public func integrityCheck() throws -> [String] {
        try read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
    }

    private static func attempts(_ db: Database, cellID: Int64) throws -> Int? {
        try Int.fetchOne(db, sql: "SELECT attempts FROM cells WHERE id = ?", arguments: [cellID])
    }

    private static func latestOutcome(_ db: Database, cellID: Int64) throws -> OutcomeRecord? {
        guard let attempt = try attempts(db, cellID: cellID), attempt > 0 else { return nil }
        return try OutcomeRecord.fetchOne(db, key: ["cell_id": cellID, "attempt": attempt])
    }

    private static func latest<R: FetchableRecord & TableRecord>(_ type: R.Type, _ db: Database, cellID: Int64) throws -> [R] {
        guard let attempt = try attempts(db, cellID: cellID), attempt > 0 else { return [] }
        return try R.filter(Column("cell_id") == cellID && Column("attempt") == attempt)
            .order(Column("ordinal")).fetchAll(db)
    }

    // MARK: Writing (the matrix runner)

    func write<T: Sendable>(_ body: @Sendable (Database) throws -> T) throws -> T {
        do {
            return try pool.write(body)
        } catch let error as DatabaseError {
            throw HarnessError.infrastructure(path, "database write failed: \(error.message ?? "\(error)")")
        }
    }

    /// Records a new run and all its cells (pending) in one transaction; returns the cells with their IDs.
    public func createRun(_ run: MatrixRunRecord, cells: [CellRecord]) throws -> [CellRecord] {
        try write { db in
            if try MatrixRunRecord.exists(db, key: run.id) {
                throw HarnessError.badInput(run.id, "a matrix run with this ID already exists")
            }
            try run.insert(db)
            return try cells.map { cell in
                var cell = cell
                cell.runID = run.id
                try cell.insert(db)
                return cell
            }
        }
    }

    /// Sets a run's state (and its finish time when it leaves `running`).
    public func setRunState(_ runID: String, _ state: RunState) throws {
        try write { db in
            guard var run = try MatrixRunRecord.fetchOne(db, key: runID) else { return }
            run.state = state
            run.finishedAt = state == .running ? nil : Date()
            try run.update(db)
        }
    }

    /// Fills in which kernel a cell really ran, once it is known (after a build).
    public func setKernelIdentity(cellIDs: [Int64], identity: String?, configHash: String?) throws {
        try write { db in
            for id in cellIDs {
                try db.execute(sql: "UPDATE cells SET kernel_identity = ?, config_hash = ? WHERE id = ?",
                               arguments: [identity, configHash, id])
            }
        }
    }

    /// Marks a cell running as a new attempt; returns the attempt number.
    public func startCell(_ cellID: Int64, harnessRunID: String, directory: String, connectionURI: String?) throws -> Int {
        try write { db in
            guard var cell = try CellRecord.fetchOne(db, key: cellID) else {
                throw HarnessError.infrastructure("cell \(cellID)", "not in the database")
            }
            cell.attempts += 1
            cell.state = .running
            cell.harnessRunID = harnessRunID
            cell.directory = directory
            cell.connectionURI = connectionURI
            cell.startedAt = Date()
            cell.finishedAt = nil
            try cell.update(db)
            return cell.attempts
        }
    }

    /// Records an attempt's outcome with its reports, scenarios and the files
    /// in its run directory, and sets the cell `done` (or `interrupted`, when
    /// a signal cut the attempt short), all in one transaction.
    public func finishCell(_ cellID: Int64, attempt: Int, result: RunResult, wallSeconds: Double) throws {
        let artifacts = cellDirectory(of: result).map(Self.artifactFiles(in:)) ?? []
        let guest = (result.timings["boot"] ?? 0) + (result.timings["workload"] ?? 0)
        let outcome = OutcomeRecord(
            cellID: cellID, attempt: attempt, harnessRunID: result.runID, status: result.status,
            reason: result.reason, evidence: result.evidence, end: result.end, kernelRelease: result.kernelRelease,
            timings: result.timings, wallSeconds: wallSeconds, guestSeconds: guest, consoleBytes: result.consoleBytes)
        let state: CellState = result.end == .interrupted ? .interrupted : .done
        try write { db in
            try Self.insert(outcome: outcome, db)
            // Violations first: they are the cause of the reports that follow.
            for (ordinal, report) in (result.lifecycleViolations.map(\.report) + result.reports).enumerated() {
                try ReportRecord(cellID: cellID, attempt: attempt, ordinal: ordinal, report: report).insert(db)
            }
            for (ordinal, scenario) in result.scenarios.enumerated() {
                try ScenarioRecord(cellID: cellID, attempt: attempt, ordinal: ordinal, scenario: scenario).insert(db)
            }
            for (name, path, bytes) in artifacts {
                try ArtifactRecord(cellID: cellID, attempt: attempt, name: name, path: path, bytes: bytes).insert(db)
            }
            try db.execute(
                sql: """
                    UPDATE cells SET state = ?, finished_at = ?,
                        kernel_identity = coalesce(?, kernel_identity), config_hash = coalesce(?, config_hash)
                    WHERE id = ?
                    """,
                arguments: [state.rawValue, Date(), result.kernelIdentity, result.build?.configHash, cellID])
        }
    }

    /// Records an outcome for a cell that never reached the harness's runner
    /// (its kernel failed to build once for all its cells): a new attempt, done.
    public func recordWithoutRun(_ cellID: Int64, status: RunStatus, reason: String, evidence: [String], end: RunResult.End,
                                 artifacts: [(name: String, path: String)] = []) throws {
        try write { db in
            guard var cell = try CellRecord.fetchOne(db, key: cellID) else { return }
            cell.attempts += 1
            cell.state = .done
            cell.startedAt = cell.startedAt ?? Date()
            cell.finishedAt = Date()
            try cell.update(db)
            try Self.insert(outcome: OutcomeRecord(cellID: cellID, attempt: cell.attempts, harnessRunID: nil,
                                                   status: status, reason: reason, evidence: evidence, end: end), db)
            for artifact in artifacts {
                let attributes = try? FileManager.default.attributesOfItem(atPath: artifact.path)
                let bytes = (attributes?[.size] as? NSNumber)?.int64Value ?? 0
                try ArtifactRecord(cellID: cellID, attempt: cell.attempts, name: artifact.name, path: artifact.path,
                                   bytes: bytes).insert(db)
            }
        }
    }

    /// Records that an attempt started with ``startCell(_:harnessRunID:directory:connectionURI:)``
    /// ended without a harness result (the harness's runner refused or failed
    /// before writing one): ERROR with `reason`, cell `done`.
    public func recordFailure(_ cellID: Int64, attempt: Int, reason: String, end: RunResult.End, wallSeconds: Double) throws {
        try write { db in
            try Self.insert(outcome: OutcomeRecord(cellID: cellID, attempt: attempt, harnessRunID: nil, status: .error,
                                                   reason: reason, end: end, wallSeconds: wallSeconds), db)
            try db.execute(sql: "UPDATE cells SET state = ?, finished_at = ? WHERE id = ?",
                           arguments: [CellState.done.rawValue, Date(), cellID])
        }
    }

    private static func insert(outcome: OutcomeRecord, _ db: Database) throws {
        // A rerun of the same attempt (never expected) replaces rather than fails.
        try db.execute(sql: "DELETE FROM outcomes WHERE cell_id = ? AND attempt = ?", arguments: [outcome.cellID, outcome.attempt])
        for table in ["reports", "scenarios", "artifacts"] {
            try db.execute(sql: "DELETE FROM \(table) WHERE cell_id = ? AND attempt = ?", arguments: [outcome.cellID, outcome.attempt])
        }
        try outcome.insert(db)
    }

    private func cellDirectory(of result: RunResult) -> String? {
        // The directory is recorded on the cell at start; look it up by run ID.
        try? read { db in
            try String.fetchOne(db, sql: "SELECT directory FROM cells WHERE harness_run_id = ?", arguments: [result.runID])
        }
    }

    /// The files a run directory holds (hidden temporaries left out).
    static func artifactFiles(in directory: String) -> [(String, String, Int64)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().compactMap { name in
            let path = directory + "/" + name
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                  attributes[.type] as? FileAttributeType == .typeRegular
            else { return nil }
            return (name, path, (attributes[.size] as? NSNumber)?.int64Value ?? 0)
        }
    }

    // MARK: Ownership and recovery

    /// The lock file a live harness holds while it runs `runID`.
    public func lockPath(runID: String) -> String { path + ".locks/\(runID).lock" }

    /// Takes ownership of a run for this process (held until `release()`
    /// or the process dies, SIGKILL included: the kernel drops flock locks
    /// with the process). Fails when another live harness owns it.
    public func own(runID: String) throws -> RunOwnership {
        try Files.createDirectory(path + ".locks")
        guard let ownership = RunOwnership(path: lockPath(runID: runID)) else {
            throw HarnessError.badInput(runID, "another kharness process is running this matrix run")
        }
        return ownership
    }

    /// Runs that say `running` while nobody holds their lock were abandoned
    /// by a harness that died: their running cells get an ERROR outcome
    /// ("the harness died while the cell ran", end `harness-died`, with the
    /// run directory's files) and become `interrupted`, and the run becomes
    /// `interrupted`. Pending cells stay pending. Returns the runs recovered.
    @discardableResult
    public func recoverAbandonedRuns() throws -> [String] {
        let running = try read { db in
            try String.fetchAll(db, sql: "SELECT id FROM runs WHERE state = ?", arguments: [RunState.running.rawValue])
        }
        var recovered: [String] = []
        for runID in running {
            // Holding the lock while recovering keeps a concurrent resume out.
            guard let ownership = try? own(runID: runID) else { continue }
            defer { ownership.release() }
            try markInterrupted(runID: runID)
            recovered.append(runID)
        }
        return recovered
    }

    /// Marks a run `interrupted` with its running cells as described in
    /// ``recoverAbandonedRuns()``; the caller owns the run.
    func markInterrupted(runID: String) throws {
        let cells = try read { db in
            try CellRecord.filter(Column("run_id") == runID && Column("state") == CellState.running.rawValue).fetchAll(db)
        }
        let files = cells.map { cell in cell.directory.map(Self.artifactFiles(in:)) ?? [] }
        try write { db in
            for (cell, artifacts) in zip(cells, files) {
                guard let id = cell.id else { continue }
                let outcome = OutcomeRecord(
                    cellID: id, attempt: cell.attempts, harnessRunID: cell.harnessRunID, status: .error,
                    reason: "interrupted: the harness died while the cell ran", evidence: [], end: .harnessDied,
                    wallSeconds: cell.startedAt.map { Date().timeIntervalSince($0) } ?? 0)
                try Self.insert(outcome: outcome, db)
                for (name, path, bytes) in artifacts {
                    try ArtifactRecord(cellID: id, attempt: cell.attempts, name: name, path: path, bytes: bytes).insert(db)
                }
                try db.execute(sql: "UPDATE cells SET state = ?, finished_at = ? WHERE id = ?",
                               arguments: [CellState.interrupted.rawValue, Date(), id])
            }
            try db.execute(sql: "UPDATE runs SET state = ?, finished_at = ? WHERE id = ?",
                           arguments: [RunState.interrupted.rawValue, Date(), runID])
        }
    }
}

/// A live harness's claim on a matrix run: an exclusive `flock` on a lock
/// file next to the database. The kernel releases it when the process dies,
/// however it dies, which is how the next `Store.open` tells an abandoned
/// run from one another process is still running.
/// `@unchecked`: `descriptor` changes after init only with `lock` held.
public final class RunOwnership: @unchecked Sendable {
    private let lock = NSLock()
    private var descriptor: Int32

    init?(path: String) {
        descriptor = Glibc.open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return nil }
        if flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            close(descriptor)
            return nil
        }
    }

    /// Gives the run up (idempotent).
    public func release() {
        lock.lock()
        defer { lock.unlock() }
        guard descriptor >= 0 else { return }
        flock(descriptor, LOCK_UN)
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }
}
