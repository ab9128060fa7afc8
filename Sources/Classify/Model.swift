/// What the classifier found in one console log.
public struct ConsoleAnalysis: Codable, Sendable, Equatable {
    /// Reports in console order: the first `ConsoleClassifier.maxStoredReports` kernel
    /// reports, then the first unsuppressed kernel report after them (if any: it decides
    /// the verdict), and one workload failure per failed scenario (these never take a
    /// kernel report's place).
    public var reports: [KernelReport] = []
    /// Kernel reports seen after the stored ones were full: judged and counted, their
    /// texts not kept.
    public var reportsDropped: Int = 0
    /// Every kernel report the log showed that no suppression matched, stored or not, by
    /// category: a cap on stored texts never hides one from the verdict.
    public var unsuppressedReportCounts: [String: Int] = [:]
    /// Scenarios announced after `ConsoleClassifier.maxScenarios` others: not kept, and
    /// the verdict does not pass a workload that announces so many.
    public var scenariosDropped: Int = 0
    /// The workload's exit status from `@@kharness exit <status>` (init prints it when the
    /// workload script returns), nil when the log has none.
    public var workloadExitStatus: Int?
    /// From `@@kharness probe-failed <reason>`: the workload found its device absent or
    /// without a driver (the first such line).
    public var probeFailure: String?
    /// Scenarios announced with the `@@kharness` protocol, in order of first mention.
    public var scenarios: [ScenarioResult] = []
    /// From `@@kharness release`, else from the `Linux version` banner.
    public var kernelRelease: String?
    /// `@@kharness done` was seen: the guest's workload ran to its end.
    public var sawDone: Bool = false
    /// Boot banners seen; 2 or more means the guest rebooted unexpectedly.
    public var bootBanners: Int = 0
    /// The last console lines, sanitized, for timeout reasons.
    public var lastLines: [String] = []
    /// Decoded Arm SMMUv3 event records (at most `ConsoleClassifier.maxStoredSmmuEvents`).
    public var smmuEvents: [SmmuEvent] = []
    /// Every SMMU event the log showed or the kernel said it suppressed.
    public var smmuEventCount: Int = 0
    /// Total console lines read.
    public var lineCount: Int = 0

    public init() {}

    /// How many kernel reports no suppression matched, over the whole log.
    public var unsuppressedReportCount: Int { unsuppressedReportCounts.values.reduce(0) { $0.saturatingAdd($1) } }

    /// True when the console shows that a Linux kernel started at all.
    public var sawKernelOutput: Bool { bootBanners > 0 }
}

/// One kernel report (oops, sanitizer report, WARNING, hang, …) found in the console.
public struct KernelReport: Codable, Sendable, Equatable {
    /// What kind of report it is, written as the string it always was ("kasan", "hang").
    public var category: Category
    /// The title the way syzbot names Linux crashes, e.g. "KASAN: slab-use-after-free Read in foo".
    public var title: String
    /// 16 hex digits from the category, title and the frames from the guilty one on,
    /// with addresses, offsets, PIDs, CPUs, timestamps and line numbers left out, so the
    /// same bug gets the same signature from run to run.
    public var signature: String
    /// The function blamed, after skipping generic frames (reporting, locking, allocation, …).
    public var guiltyFrame: String?
    /// The report's lines, printk prefixes removed, capped in size.
    public var text: String
    /// The report was cut off, interleaved with other output or lacks the parts its kind always has.
    public var corrupted: Bool
    /// A suppression rule matched: the report is known-benign and does not decide the outcome.
    public var suppressed: Bool = false
    /// Console line number (1-based) where the report starts.
    public var line: Int = 0

    public init(
        category: Category, title: String, signature: String, guiltyFrame: String?, text: String,
        corrupted: Bool, suppressed: Bool = false, line: Int = 0
    ) {
        self.category = category
        self.title = title
        self.signature = signature
        self.guiltyFrame = guiltyFrame
        self.text = text
        self.corrupted = corrupted
        self.suppressed = suppressed
        self.line = line
    }

    /// The report categories: what the console classifier names a report (the
    /// kinds of `ReportKinds.swift`), and the PASID lifetime violations the trace
    /// oracle reports beside them.
    ///
    /// Records are read back from files and databases written by other versions, so
    /// a string this version does not know decodes to ``unrecognized(_:)`` and
    /// encodes back unchanged, instead of making the whole record unreadable.
    public enum Category: Hashable, Sendable, CaseIterable, OpenStringSet {
        case kasan, kfence, kmsan, kcsan, ubsan, oops, bug, warning, refcount, lockdep
        /// "atomic-sleep"
        case atomicSleep
        case hang, panic, leak, reboot
        /// "smmu-event"
        case smmuEvent
        /// A failure the guest's workload reported, not the kernel.
        case workload
        case other
        /// "pasid-lifetime": ``PasidLifecycleOracle``'s, from the trace, not the console.
        case pasidLifetime
        /// A string this version does not write.
        case unrecognized(String)

        /// Every category this version writes (not ``unrecognized(_:)``).
        public static let allCases: [Category] = [
            .kasan, .kfence, .kmsan, .kcsan, .ubsan, .oops, .bug, .warning, .refcount, .lockdep, .atomicSleep,
            .hang, .panic, .leak, .reboot, .smmuEvent, .workload, .other, .pasidLifetime,
        ]

        private static let byName = Dictionary(uniqueKeysWithValues: allCases.map { ($0.rawValue, $0) })

        public init(rawValue: String) {
            self = Self.byName[rawValue] ?? .unrecognized(rawValue)
        }

        public var rawValue: String {
            switch self {
            case .kasan: "kasan"
            case .kfence: "kfence"
            case .kmsan: "kmsan"
            case .kcsan: "kcsan"
            case .ubsan: "ubsan"
            case .oops: "oops"
            case .bug: "bug"
            case .warning: "warning"
            case .refcount: "refcount"
            case .lockdep: "lockdep"
            case .atomicSleep: "atomic-sleep"
            case .hang: "hang"
            case .panic: "panic"
            case .leak: "leak"
            case .reboot: "reboot"
            case .smmuEvent: "smmu-event"
            case .workload: "workload"
            case .other: "other"
            case .pasidLifetime: "pasid-lifetime"
            case .unrecognized(let text): text
            }
        }
    }

    /// Reports made by the kernel, as opposed to the guest's workload.
    public var isKernelReport: Bool { category != .workload }
}

/// A scenario's result from the `@@kharness` console protocol.
public struct ScenarioResult: Codable, Sendable, Equatable {
    public var name: String
    /// PASS, FAIL or SKIP as the guest said; MISS when it began but never gave a result.
    public var status: RunStatus
    public var reason: String
    public var evidence: [String]
    /// `@@kharness end` was seen for it.
    public var ended: Bool

    public init(name: String, status: RunStatus, reason: String = "", evidence: [String] = [], ended: Bool = false) {
        self.name = name
        self.status = status
        self.reason = reason
        self.evidence = evidence
        self.ended = ended
    }
}

/// One Arm SMMUv3 event record, from either console format.
public struct SmmuEvent: Codable, Sendable, Equatable {
    /// Event name from the SMMUv3 architecture (F_TRANSLATION, C_BAD_CD, …), or "UNKNOWN(0xNN)".
    public var name: String
    /// The event number (bits [7:0] of the record's first doubleword).
    public var id: Int?
    public var streamID: UInt32?
    /// Present when the record says a SubstreamID (PASID) is valid.
    public var substreamID: UInt32?
    /// Input address (IOVA) for translation faults, or the fetch address for fetch faults.
    public var address: UInt64?
    /// Intermediate physical address, for stage-2 faults.
    public var ipa: UInt64?
    /// The access was a read (true) or a write (false), when the record says.
    public var read: Bool?
    /// The device the kernel named ("client:" in 6.14+ kernels).
    public var client: String?
    /// The raw record doublewords, when the kernel printed them.
    public var raw: [UInt64]
    /// Console line number of the record's first line.
    public var line: Int

    public init(
        name: String, id: Int? = nil, streamID: UInt32? = nil, substreamID: UInt32? = nil,
        address: UInt64? = nil, ipa: UInt64? = nil, read: Bool? = nil, client: String? = nil,
        raw: [UInt64] = [], line: Int = 0
    ) {
        self.name = name
        self.id = id
        self.streamID = streamID
        self.substreamID = substreamID
        self.address = address
        self.ipa = ipa
        self.read = read
        self.client = client
        self.raw = raw
        self.line = line
    }
}

/// A closed set of names with a catch-all for names another version wrote: every
/// string is a value (``init(rawValue:)`` never fails), and records spell a value as
/// the bare string, so result.json and the database read as they always have. The
/// catch-all's payload rules out the standard library's RawRepresentable Codable.
public protocol OpenStringSet: RawRepresentable, Codable, CustomStringConvertible where RawValue == String {
    init(rawValue: String)
}

extension OpenStringSet {
    public var description: String { rawValue }

    public init(from decoder: Decoder) throws {
        self.init(rawValue: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
