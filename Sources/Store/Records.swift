import Classify
import Foundation
import GRDB
import RunModel

// The rows of the kharness database. Column names are the properties in
// snake_case (`run_id`, `kernel_identity`, ...), so the file reads well from
// `sqlite3` too. Lists and dictionaries are stored as JSON text.

/// Property names to column names and back: `harnessRunID` <-> `harness_run_id`,
/// `connectionURI` <-> `connection_uri` (GRDB's own snake-case conversion
/// would look for `harnessRunId`).
enum ColumnNames {
    static let encoding = DatabaseColumnEncodingStrategy.custom { key in snake(key.stringValue) }
    static let decoding = DatabaseColumnDecodingStrategy.custom { column in Key(stringValue: camel(column)) }

    static let acronyms = ["id": "ID", "uri": "URI"]

    static func snake(_ name: String) -> String {
        var out = ""
        var previousUpper = true
        for ch in name {
            if ch.isUppercase {
                if !previousUpper { out += "_" }
                out += ch.lowercased()
                previousUpper = true
            } else {
                out.append(ch)
                previousUpper = false
            }
        }
        return out
    }

    static func camel(_ column: String) -> String {
        let words = column.split(separator: "_").map(String.init)
        guard let first = words.first else { return column }
        return first + words.dropFirst().map { acronyms[$0] ?? $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

/// One `kharness matrix run`: a matrix expanded into cells.
///
/// The matrix text is kept, not just its path, so `matrix resume` finishes
/// exactly what was started even if the file changed since.
public struct MatrixRunRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "runs"
    public static let databaseColumnDecodingStrategy = ColumnNames.decoding
    public static let databaseColumnEncodingStrategy = ColumnNames.encoding

    /// The matrix run's ID, e.g. `m20261125-010203-1a2b3c`; also its directory under the results root.
    public var id: String
    /// The matrix's `name:`.
    public var name: String
    /// The matrix file as given on the command line, made absolute.
    public var matrixFile: String
    /// The matrix file's text when the run was created.
    public var matrixText: String
    /// SHA-256 of `matrixText`.
    public var matrixHash: String
    /// The run dropped every kernel's series (a baseline of "the same matrix without the series").
    public var withoutSeries: Bool
    /// Where the cells' run directories go (`<results>/<matrix run id>/<harness run id>`).
    public var resultsDirectory: String
    /// Cells run at once (the limit, not what was reached).
    public var parallelism: Int
    public var state: RunState
    public var createdAt: Date
    public var finishedAt: Date?

    public init(id: String, name: String, matrixFile: String, matrixText: String, matrixHash: String,
                withoutSeries: Bool, resultsDirectory: String, parallelism: Int, state: RunState = .running,
                createdAt: Date = Date(), finishedAt: Date? = nil) {
        self.id = id
        self.name = name
        self.matrixFile = matrixFile
        self.matrixText = matrixText
        self.matrixHash = matrixHash
        self.withoutSeries = withoutSeries
        self.resultsDirectory = resultsDirectory
        self.parallelism = parallelism
        self.state = state
        self.createdAt = createdAt
        self.finishedAt = finishedAt
    }
}

/// Where a matrix run stands.
public enum RunState: String, Codable, Sendable, CaseIterable {
    /// A harness process owns it now (or died owning it; the next `Store.open` finds out).
    case running
    /// Every cell has an outcome.
    case finished
    /// The harness stopped (a signal, SIGKILL, a crash) before every cell had an outcome;
    /// `kharness matrix resume` finishes it.
    case interrupted
}

/// Where a cell stands.
public enum CellState: String, Codable, Sendable, CaseIterable {
    /// Not started yet.
    case pending
    /// A harness process is running it.
    case running
    /// Its latest attempt has an outcome.
    case done
    /// Its latest attempt was cut short: by SIGINT/SIGTERM (outcome ERROR "interrupted by ..."),
    /// or by the harness dying (outcome ERROR with end `harness-died`, written by the next
    /// `Store.open`). `matrix resume` runs it again as a new attempt.
    case interrupted
}

/// One cell of a matrix: a kernel, a config, a machine, a workload with its
/// scenarios, and which repeat it is. The identity fields are what comparisons
/// match on (see ``CellKey``); the rest says how and where it ran.
public struct CellRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "cells"
    public static let databaseColumnDecodingStrategy = ColumnNames.decoding
    public static let databaseColumnEncodingStrategy = ColumnNames.encoding

    /// Assigned by the database.
    public var id: Int64?
    public var runID: String
    /// The cell's position in the matrix's expansion (0-based); cells run in this order.
    public var ordinal: Int
    /// The kernel's name in the matrix (`name:`, else its spec).
    public var kernelName: String
    /// The kernel spec, e.g. `debian:6.1` or `git:/src/linux@v6.12`.
    public var kernel: String
    /// The patch series applied on top (git kernels), as given in the matrix.
    public var series: String?
    /// Which kernel this really was: Debian's package version, or tree@commit with the
    /// series' patchset hash (`KernelArtifacts.identity`). Known once the kernel is prepared.
    public var kernelIdentity: String?
    /// Config fragments besides `base` (git kernels; empty for prebuilt ones).
    public var configFragments: [String]
    /// SHA-256 of the kernel's final .config (git kernels), once built.
    public var configHash: String?
    /// The machine's name in the matrix (e.g. `stock`, `lazy`).
    public var machine: String
    /// The harness machine profile it uses (stock, stock-lazy, nosmmu, sva).
    public var machineProfile: String
    /// Extra kernel command line of the machine (e.g. `iommu.strict=0`).
    public var cmdline: [String]
    public var workload: String
    /// Scenarios asked for (empty: the workload's default, all of them).
    public var scenarios: [String]
    /// 1-based repeat number.
    public var repeatIndex: Int
    public var state: CellState
    /// Attempts started so far; the latest one's rows are the cell's result.
    public var attempts: Int
    /// The libvirt connection the latest attempt used.
    public var connectionURI: String?
    /// The harness run ID of the latest attempt (its `result.json` says the same).
    public var harnessRunID: String?
    /// The latest attempt's run directory (console.log, result.json, ...).
    public var directory: String?
    public var startedAt: Date?
    public var finishedAt: Date?

    public init(runID: String, ordinal: Int, kernelName: String, kernel: String, series: String? = nil,
                configFragments: [String] = [], machine: String, machineProfile: String, cmdline: [String] = [],
                workload: String, scenarios: [String] = [], repeatIndex: Int) {
        self.runID = runID
        self.ordinal = ordinal
        self.kernelName = kernelName
        self.kernel = kernel
        self.series = series
        self.configFragments = configFragments
        self.machine = machine
        self.machineProfile = machineProfile
        self.cmdline = cmdline
        self.workload = workload
        self.scenarios = scenarios
        self.repeatIndex = repeatIndex
        self.state = .pending
        self.attempts = 0
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    /// What a comparison matches cells on: everything but the series and the repeat.
    public var key: CellKey {
        CellKey(kernel: kernelName, configFragments: configFragments, machine: machine,
                workload: workload, scenarios: scenarios)
    }
}

/// A cell's identity across runs. The series is left out on purpose: a run
/// with the series is compared against the same matrix without it (or an
/// earlier run of the same matrix), and the repeat is what flakiness is
/// measured over.
public struct CellKey: Codable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public var kernel: String
    public var configFragments: [String]
    public var machine: String
    public var workload: String
    public var scenarios: [String]

    public init(kernel: String, configFragments: [String], machine: String, workload: String, scenarios: [String]) {
        self.kernel = kernel
        self.configFragments = configFragments
        self.machine = machine
        self.workload = workload
        self.scenarios = scenarios
    }

    /// `kernel [fragments] machine workload[:scenarios]`.
    public var description: String {
        var text = kernel
        if !configFragments.isEmpty { text += " [\(configFragments.joined(separator: ","))]" }
        text += " \(machine) \(workload)"
        if !scenarios.isEmpty { text += ":\(scenarios.joined(separator: ","))" }
        return text
    }

    public static func < (a: CellKey, b: CellKey) -> Bool { a.description < b.description }
}

/// The verdict of one attempt of one cell (the harness's `RunResult`, flattened).
public struct OutcomeRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "outcomes"
    public static let databaseColumnDecodingStrategy = ColumnNames.decoding
    public static let databaseColumnEncodingStrategy = ColumnNames.encoding

    public var cellID: Int64
    /// 1-based; the cell's latest attempt is `CellRecord.attempts`.
    public var attempt: Int
    /// The harness run ID (the run directory's name).
    public var harnessRunID: String?
    /// PASS, FAIL, ERROR, MISS, SKIP or BUILD_FAIL (KCIDB's words).
    public var status: RunStatus
    public var reason: String
    public var evidence: [String]
    /// How the harness saw the run end (`RunResult.End`'s strings in the column:
    /// finished, timeout, interrupted, infrastructure, bad-input, build-failed,
    /// boot-failed, console-flood, trace-flood, harness-died).
    public var end: RunResult.End
    /// `uname -r` as the guest reported it.
    public var kernelRelease: String?
    /// The harness's seconds per phase (kernel, initramfs, start, boot, workload, teardown, total).
    public var timings: [String: Double]
    /// Wall-clock seconds of the whole cell as the matrix runner saw it.
    public var wallSeconds: Double
    /// Seconds the guest itself ran: from domain start to the guest being done (boot + workload).
    public var guestSeconds: Double
    public var consoleBytes: Int
    public var recordedAt: Date

    public init(cellID: Int64, attempt: Int, harnessRunID: String?, status: RunStatus, reason: String,
                evidence: [String] = [], end: RunResult.End, kernelRelease: String? = nil, timings: [String: Double] = [:],
                wallSeconds: Double = 0, guestSeconds: Double = 0, consoleBytes: Int = 0, recordedAt: Date = Date()) {
        self.cellID = cellID
        self.attempt = attempt
        self.harnessRunID = harnessRunID
        self.status = status
        self.reason = reason
        self.evidence = evidence
        self.end = end
        self.kernelRelease = kernelRelease
        self.timings = timings
        self.wallSeconds = wallSeconds
        self.guestSeconds = guestSeconds
        self.consoleBytes = consoleBytes
        self.recordedAt = recordedAt
    }
}

/// A kernel report found in a cell's console (see `Classify.KernelReport`).
public struct ReportRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "reports"
    public static let databaseColumnDecodingStrategy = ColumnNames.decoding
    public static let databaseColumnEncodingStrategy = ColumnNames.encoding

    public var cellID: Int64
    public var attempt: Int
    /// Console order, 0-based.
    public var ordinal: Int
    /// kasan, oops, warning, hang, smmu-event, workload, ... (`KernelReport.Category`).
    public var category: String
    /// syzbot-style title, e.g. "KASAN: slab-use-after-free Read in foo".
    public var title: String
    /// 16 hex digits; the same bug has the same signature from run to run and kernel to kernel.
    public var signature: String
    public var guiltyFrame: String?
    /// The report's text, capped by the classifier.
    public var text: String
    public var corrupted: Bool
    /// A suppression matched: known-benign, did not decide the outcome.
    public var suppressed: Bool
    /// Console line number where it starts.
    public var line: Int

    public init(cellID: Int64, attempt: Int, ordinal: Int, report: KernelReport) {
        self.cellID = cellID
        self.attempt = attempt
        self.ordinal = ordinal
        category = report.category.rawValue
        title = report.title
        signature = report.signature
        guiltyFrame = report.guiltyFrame
        text = report.text
        corrupted = report.corrupted
        suppressed = report.suppressed
        line = report.line
    }

    /// Reports made by the kernel, as opposed to the guest's workload.
    public var isKernelReport: Bool { category != KernelReport.Category.workload.rawValue }
}

/// A workload scenario's result in one cell.
public struct ScenarioRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "scenarios"
    public static let databaseColumnDecodingStrategy = ColumnNames.decoding
    public static let databaseColumnEncodingStrategy = ColumnNames.encoding

    public var cellID: Int64
    public var attempt: Int
    public var ordinal: Int
    public var name: String
    public var status: RunStatus
    public var reason: String
    public var evidence: [String]

    public init(cellID: Int64, attempt: Int, ordinal: Int, scenario: ScenarioResult) {
        self.cellID = cellID
        self.attempt = attempt
        self.ordinal = ordinal
        name = scenario.name
        status = scenario.status
        reason = scenario.reason
        evidence = scenario.evidence
    }
}

/// A file a cell left behind, by path (the database never holds file contents).
public struct ArtifactRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "artifacts"
    public static let databaseColumnDecodingStrategy = ColumnNames.decoding
    public static let databaseColumnEncodingStrategy = ColumnNames.encoding

    public var cellID: Int64
    public var attempt: Int
    /// The file's name in the run directory: console.log, result.json, domain.xml, cmdline,
    /// initramfs.manifest, trace.log, qemu.log, build.log.
    public var name: String
    /// Absolute path.
    public var path: String
    /// Size when recorded.
    public var bytes: Int64

    public init(cellID: Int64, attempt: Int, name: String, path: String, bytes: Int64) {
        self.cellID = cellID
        self.attempt = attempt
        self.name = name
        self.path = path
        self.bytes = bytes
    }
}

/// Everything known about one cell's latest attempt, read in one go: what
/// reports and comparisons consume.
public struct CellResult: Codable, Sendable, Equatable {
    public var cell: CellRecord
    /// Nil while the cell is pending or running.
    public var outcome: OutcomeRecord?
    public var reports: [ReportRecord]
    public var scenarios: [ScenarioRecord]
    public var artifacts: [ArtifactRecord]

    public init(cell: CellRecord, outcome: OutcomeRecord?, reports: [ReportRecord] = [],
                scenarios: [ScenarioRecord] = [], artifacts: [ArtifactRecord] = []) {
        self.cell = cell
        self.outcome = outcome
        self.reports = reports
        self.scenarios = scenarios
        self.artifacts = artifacts
    }

    /// The artifact with this name (e.g. "console.log"), if the cell left one.
    public func artifact(named name: String) -> ArtifactRecord? { artifacts.first { $0.name == name } }
}
