import Foundation
import GRDB
import RunModel
import XCTest

@testable import Store

/// Databases in the field stay readable: the schema a fresh database gets is the one
/// recorded here (migrations are only ever appended; changing this text means a new
/// migration, not an edit), and rows written by other versions still decode.
final class SchemaTests: XCTestCase {
    var directory = ""

    override func setUp() {
        directory = NSTemporaryDirectory() + "kharness-schema-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    /// `sqlite_master` of a fresh database, as migration v1 created it.
    static let recordedSchema = """
        index cells_on_run_id on cells: CREATE INDEX "cells_on_run_id" ON "cells"("run_id")
        index reports_on_signature on reports: CREATE INDEX "reports_on_signature" ON "reports"("signature")
        table artifacts on artifacts: CREATE TABLE "artifacts" ("cell_id" INTEGER NOT NULL REFERENCES "cells"("id") ON DELETE CASCADE, "attempt" INTEGER NOT NULL, "name" TEXT NOT NULL, "path" TEXT NOT NULL, "bytes" INTEGER NOT NULL, PRIMARY KEY ("cell_id", "attempt", "name"))
        table cells on cells: CREATE TABLE "cells" ("id" INTEGER PRIMARY KEY AUTOINCREMENT, "run_id" TEXT NOT NULL REFERENCES "runs"("id") ON DELETE CASCADE, "ordinal" INTEGER NOT NULL, "kernel_name" TEXT NOT NULL, "kernel" TEXT NOT NULL, "series" TEXT, "kernel_identity" TEXT, "config_fragments" TEXT NOT NULL, "config_hash" TEXT, "machine" TEXT NOT NULL, "machine_profile" TEXT NOT NULL, "cmdline" TEXT NOT NULL, "workload" TEXT NOT NULL, "scenarios" TEXT NOT NULL, "repeat_index" INTEGER NOT NULL, "state" TEXT NOT NULL, "attempts" INTEGER NOT NULL, "connection_uri" TEXT, "harness_run_id" TEXT, "directory" TEXT, "started_at" DATETIME, "finished_at" DATETIME, UNIQUE ("run_id", "ordinal"))
        table grdb_migrations on grdb_migrations: CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY)
        table outcomes on outcomes: CREATE TABLE "outcomes" ("cell_id" INTEGER NOT NULL REFERENCES "cells"("id") ON DELETE CASCADE, "attempt" INTEGER NOT NULL, "harness_run_id" TEXT, "status" TEXT NOT NULL, "reason" TEXT NOT NULL, "evidence" TEXT NOT NULL, "end" TEXT NOT NULL, "kernel_release" TEXT, "timings" TEXT NOT NULL, "wall_seconds" DOUBLE NOT NULL, "guest_seconds" DOUBLE NOT NULL, "console_bytes" INTEGER NOT NULL, "recorded_at" DATETIME NOT NULL, PRIMARY KEY ("cell_id", "attempt"))
        table reports on reports: CREATE TABLE "reports" ("cell_id" INTEGER NOT NULL REFERENCES "cells"("id") ON DELETE CASCADE, "attempt" INTEGER NOT NULL, "ordinal" INTEGER NOT NULL, "category" TEXT NOT NULL, "title" TEXT NOT NULL, "signature" TEXT NOT NULL, "guilty_frame" TEXT, "text" TEXT NOT NULL, "corrupted" BOOLEAN NOT NULL, "suppressed" BOOLEAN NOT NULL, "line" INTEGER NOT NULL, PRIMARY KEY ("cell_id", "attempt", "ordinal"))
        table runs on runs: CREATE TABLE "runs" ("id" TEXT PRIMARY KEY NOT NULL, "name" TEXT NOT NULL, "matrix_file" TEXT NOT NULL, "matrix_text" TEXT NOT NULL, "matrix_hash" TEXT NOT NULL, "without_series" BOOLEAN NOT NULL, "results_directory" TEXT NOT NULL, "parallelism" INTEGER NOT NULL, "state" TEXT NOT NULL, "created_at" DATETIME NOT NULL, "finished_at" DATETIME)
        table scenarios on scenarios: CREATE TABLE "scenarios" ("cell_id" INTEGER NOT NULL REFERENCES "cells"("id") ON DELETE CASCADE, "attempt" INTEGER NOT NULL, "ordinal" INTEGER NOT NULL, "name" TEXT NOT NULL, "status" TEXT NOT NULL, "reason" TEXT NOT NULL, "evidence" TEXT NOT NULL, PRIMARY KEY ("cell_id", "attempt", "ordinal"))
        migrations: v1
        """

    static func schema(of path: String) throws -> String {
        let queue = try DatabaseQueue(path: path)
        return try queue.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT type, name, tbl_name, sql FROM sqlite_master
                WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name
                """)
            let objects = rows.map { row -> String in
                let sql: String? = row["sql"]
                return "\(row["type"] as String) \(row["name"] as String) on \(row["tbl_name"] as String): \(sql ?? "-")"
            }
            let migrations = try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier")
            return (objects + ["migrations: " + migrations.joined(separator: ", ")]).joined(separator: "\n")
        }
    }

    func testAFreshDatabaseHasTheRecordedSchema() throws {
        let path = directory + "/k.db"
        _ = try Store.open(path: path)
        let schema = try Self.schema(of: path)
        XCTAssertEqual(schema, Self.recordedSchema, "the schema changed; it now reads:\n\(schema)")
    }

    /// An outcome row whose end this version does not know (written by another
    /// version) is read back with its string, and the cell's result with it.
    func testAnOutcomeWithAnUnknownEndIsRead() throws {
        let path = directory + "/k.db"
        let store = try Store.open(path: path)
        let run = MatrixRunRecord(id: "m1", name: "t", matrixFile: "/m.yaml", matrixText: "name: t\n", matrixHash: "h",
                                  withoutSeries: false, resultsDirectory: directory, parallelism: 1)
        let cell = CellRecord(runID: "m1", ordinal: 0, kernelName: "debian:6.1", kernel: "debian:6.1", machine: "stock",
                              machineProfile: "stock", workload: "boot", repeatIndex: 1)
        let id = try XCTUnwrap(store.createRun(run, cells: [cell]).first?.id)
        _ = try store.startCell(id, harnessRunID: "h1", directory: directory, connectionURI: nil)
        try store.recordFailure(id, attempt: 1, reason: "x", end: .infrastructure, wallSeconds: 1)
        try store.write { db in
            try db.execute(sql: "UPDATE outcomes SET end = 'guest-rebooted-itself' WHERE cell_id = ?", arguments: [id])
        }
        XCTAssertEqual(try store.outcome(ofCell: id)?.end, .other("guest-rebooted-itself"))
        XCTAssertEqual(try store.results(ofRun: "m1").first?.outcome?.end.rawValue, "guest-rebooted-itself")
        // And the known ends are stored as the strings older versions wrote.
        try store.write { db in
            try db.execute(sql: "UPDATE outcomes SET end = 'harness-died' WHERE cell_id = ?", arguments: [id])
        }
        XCTAssertEqual(try store.outcome(ofCell: id)?.end, .harnessDied)
        _ = try store.startCell(id, harnessRunID: "h2", directory: directory, connectionURI: nil)
        try store.recordFailure(id, attempt: 2, reason: "x", end: .badInput, wallSeconds: 1)
        let stored = try store.read { db in
            try String.fetchAll(db, sql: "SELECT end FROM outcomes WHERE cell_id = ? ORDER BY attempt", arguments: [id])
        }
        XCTAssertEqual(stored, ["harness-died", "bad-input"])
    }
}
