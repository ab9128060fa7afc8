import Foundation
import Support

/// Everything that defines a bisect; a resumed bisect must have the same.
public struct BisectParameters: Codable, Sendable, Equatable {
    /// Absolute path of the user's tree.
    public var tree: String
    /// The revisions as the user named them, and the commits they were.
    public var goodName: String
    public var badName: String
    public var good: String
    public var bad: String
    public var series: String?
    public var workload: String
    public var scenarios: [String]
    public var machine: String
    public var configFragments: [String]
    /// The failure to hunt, as given; nil: the bad revision's failure.
    public var signature: String?
    public var policy: BisectPolicy
    public var checkRevert: Bool

    public init(tree: String, goodName: String, badName: String, good: String, bad: String, series: String?,
                workload: String, scenarios: [String], machine: String, configFragments: [String],
                signature: String?, policy: BisectPolicy, checkRevert: Bool) {
        self.tree = tree
        self.goodName = goodName
        self.badName = badName
        self.good = good
        self.bad = bad
        self.series = series
        self.workload = workload
        self.scenarios = scenarios
        self.machine = machine
        self.configFragments = configFragments
        self.signature = signature
        self.policy = policy
        self.checkRevert = checkRevert
    }
}

/// What a bisect has learnt so far, written atomically after every run so
/// that a bisect stopped by SIGINT or SIGKILL continues where it was: the
/// runs already made are never made again, and git's own bisect state is
/// rebuilt from the recorded decisions (git picks the same commits given the
/// same marks in the same order).
struct BisectState: Codable {
    static let version = 1
    var version = BisectState.version
    var parameters: BisectParameters
    /// The normalised failure hunted, once known.
    var hunted: FailureSignature?
    /// The title it was taken from, as the bad revision showed it.
    var huntedExample: String?
    /// Runs per commit; the revert check's runs are under `revert:<commit>`.
    var runs: [String: [StepRun]] = [:]
    /// Decisions per commit, and the order they were made in.
    var decisions: [String: Decision] = [:]
    var order: [String] = []
    var report: BisectReport?

    init(parameters: BisectParameters) { self.parameters = parameters }

    /// `<cache>/bisect/<tree key>`: one bisect per tree at a time.
    static func directory(cache: CacheDirectory, tree: String) throws -> String {
        try cache.directory("bisect", String(Digest.sha256(Files.absolute(tree)).prefix(16)))
    }

    static func load(from directory: String) throws -> BisectState? {
        let path = directory + "/state.json"
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do {
            let state = try JSONDecoder().decode(BisectState.self, from: data)
            return state.version == version ? state : nil
        } catch {
            throw HarnessError.badInput(path, "unreadable bisect state (\(error)); --restart starts over")
        }
    }

    func save(to directory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try Files.writeAtomically(try encoder.encode(self), to: directory + "/state.json")
    }

    /// Commits known to have the failure: their runs estimate how often it shows.
    var reproduction: ReproductionRate {
        guard let hunted else { return ReproductionRate() }
        var rate = ReproductionRate()
        var known = Set([parameters.bad])
        for (commit, decision) in decisions where decision.verdict == .bad { known.insert(commit) }
        for commit in known {
            for run in runs[commit] ?? [] {
                switch Observation.of(run, hunting: hunted) {
                case .hit: rate.hits += 1; rate.runs += 1
                case .miss: rate.runs += 1
                default: break
                }
            }
        }
        return rate
    }
}

/// An exclusive `flock` on the bisect's directory: two bisects of one tree
/// would fight over git's bisect state.
enum BisectLock {
    static func take(directory: String) throws -> FileLock {
        do {
            return try FileLock(path: directory + "/lock", wait: false)
        } catch let error as HarnessError where error.reason == FileLock.heldElsewhere {
            throw HarnessError.badInput(directory, "another kharness bisect of this tree is running")
        }
    }
}

/// Where the bisect of a tree keeps its state: `<cache>/bisect/<tree key>`.
public enum BisectDriverDirectory {
    public static func `for`(cache: CacheDirectory, tree: String) throws -> String {
        try BisectState.directory(cache: cache, tree: tree)
    }
}
