import Foundation
import Support

/// What a coverage run reached of the profiled files (result.json's `coverage`).
public struct CoverageSummary: Codable, Sendable, Equatable {
    public struct File: Codable, Sendable, Equatable {
        /// The tree path, e.g. `drivers/iommu/iommu-sva.c`.
        public var path: String
        public var linesFound: Int
        public var linesHit: Int
        public var branchesFound: Int
        public var branchesHit: Int
        public var functionsFound: Int
        public var functionsHit: Int
        /// Functions that ran at least once, and those that never did, by name.
        public var functionsReached: [String]
        public var functionsNotReached: [String]
        /// Lines with code that never ran, in order.
        public var linesNotReached: [Int]

        public init(path: String, linesFound: Int = 0, linesHit: Int = 0, branchesFound: Int = 0, branchesHit: Int = 0,
                    functionsFound: Int = 0, functionsHit: Int = 0, functionsReached: [String] = [],
                    functionsNotReached: [String] = [], linesNotReached: [Int] = []) {
            self.path = path
            self.linesFound = linesFound
            self.linesHit = linesHit
            self.branchesFound = branchesFound
            self.branchesHit = branchesHit
            self.functionsFound = functionsFound
            self.functionsHit = functionsHit
            self.functionsReached = functionsReached
            self.functionsNotReached = functionsNotReached
            self.linesNotReached = linesNotReached
        }

        /// "412/1130 lines (36.5%)".
        public var lineText: String { Self.ratio(linesHit, linesFound, "lines") }
        public var branchText: String { Self.ratio(branchesHit, branchesFound, "branches") }

        static func ratio(_ hit: Int, _ found: Int, _ what: String) -> String {
            found == 0 ? "0/0 \(what)" : String(format: "%d/%d %@ (%.1f%%)", hit, found, what, 100 * Double(hit) / Double(found))
        }
    }

    /// Per file, by path.
    public var files: [File]
    /// The HTML page, relative to the run directory (`coverage/html/index.html`).
    public var html: String?
    /// Why there is no (or only part of the) coverage; nil when all went well.
    public var problem: String?

    public init(files: [File] = [], html: String? = nil, problem: String? = nil) {
        self.files = files
        self.html = html
        self.problem = problem
    }

    public func file(_ path: String) -> File? { files.first { $0.path == path } }
}

/// lcov's tracefile (`geninfo(1)`): `SF:`, `FN:`, `FNDA:`, `BRDA:`, `DA:`, `end_of_record`.
/// Read from our own lcov run on the guest's counters, but still bounded: at most
/// `maxFiles` records, and unknown or malformed lines are skipped.
public enum LcovInfo {
    public static let maxFiles = 512

    /// Per source file as the tracefile names it.
    public static func parse(_ text: String) -> [String: CoverageSummary.File] {
        var result: [String: CoverageSummary.File] = [:]
        var path: String?
        var functionLines: [String: Int] = [:]
        var functionHits: [String: Int] = [:]
        var lines: [Int: Int] = [:]
        var branches: [String: Int] = [:]
        func close() {
            guard let file = path, result.count < maxFiles else { return }
            var entry = result[file] ?? CoverageSummary.File(path: file)
            entry.linesFound = lines.count
            entry.linesHit = lines.values.filter { $0 > 0 }.count
            entry.linesNotReached = lines.filter { $0.value == 0 }.map(\.key).sorted()
            entry.branchesFound = branches.count
            entry.branchesHit = branches.values.filter { $0 > 0 }.count
            let names = Set(functionLines.keys).union(functionHits.keys)
            let order = names.sorted { (functionLines[$0] ?? 0, $0) < (functionLines[$1] ?? 0, $1) }
            entry.functionsFound = names.count
            entry.functionsReached = order.filter { (functionHits[$0] ?? 0) > 0 }
            entry.functionsNotReached = order.filter { (functionHits[$0] ?? 0) == 0 }
            entry.functionsHit = entry.functionsReached.count
            result[file] = entry
            path = nil
            functionLines = [:]; functionHits = [:]; lines = [:]; branches = [:]
        }
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line == "end_of_record" { close(); continue }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon]
            let value = line[line.index(after: colon)...]
            let fields = value.split(separator: ",", omittingEmptySubsequences: false)
            switch key {
            case "SF":
                close()
                path = String(value)
            case "FN" where fields.count >= 2:
                if let number = Int(fields[0]) { functionLines[String(fields[1]), default: number] = number }
            case "FNDA" where fields.count >= 2:
                if let count = Int(fields[0]) { functionHits[String(fields[1]), default: 0] += count }
            case "DA" where fields.count >= 2:
                if let number = Int(fields[0]), let count = Int(fields[1]) { lines[number, default: 0] += count }
            case "BRDA" where fields.count >= 4:
                let id = fields[0...2].joined(separator: ",")
                branches[id, default: 0] += Int(fields[3]) ?? 0   // "-": the block never ran
            default:
                continue
            }
        }
        close()
        return result
    }
}

/// Turns the guest's counters into coverage: the `.gcda` files next to the build's
/// `.gcno` files (`KernelBuild.coverageDirectory`), lcov's capture with the cross
/// gcov, genhtml's pages, and the summary. Everything lands in `<run>/coverage/`:
/// `data/` (notes, counters), `source/` (the profiled sources), `coverage.info`,
/// `html/`.
public struct CoverageRenderer: Sendable {
    public var notes: String
    public var gcovTool: String

    public init(notes: String, gcovTool: String = "aarch64-linux-gnu-gcov") {
        self.notes = notes
        self.gcovTool = gcovTool
    }

    /// The tree paths of the profiled objects (`drivers/iommu/iommu-sva`), from the notes.
    func objects() -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: notes) else { return [] }
        var stems: [String] = []
        while let path = walker.nextObject() as? String {
            if path.hasSuffix(".gcno") { stems.append(String(path.dropLast(".gcno".count))) }
        }
        return stems.sorted()
    }

    /// The tree path of an object whose counters the guest named `path` (the gcov
    /// directory mirrors the build's absolute object directory, unknown here): the
    /// longest profiled object the path ends with.
    static func object(for path: String, among objects: [String]) -> String? {
        let stem = String(path.dropLast(".gcda".count))
        return objects.filter { stem == $0 || stem.hasSuffix("/" + $0) }.max { $0.count < $1.count }
    }

    public func render(_ section: GcovSection, into directory: String) async -> CoverageSummary {
        if let problem = section.problem { return CoverageSummary(problem: problem) }
        guard section.ended else {
            return CoverageSummary(problem: section.began ? "gcov data from the guest: the section did not end"
                                                         : "the guest sent no gcov data (no debugfs gcov, or no trace port)")
        }
        do {
            return try await render(files: section.files, into: directory)
        } catch {
            return CoverageSummary(problem: "coverage: \(error)")
        }
    }

    func render(files: [GcovSection.File], into directory: String) async throws -> CoverageSummary {
        let objects = objects()
        let data = directory + "/data", source = directory + "/source"
        var received = 0
        for file in files {
            guard let object = Self.object(for: file.path, among: objects) else { continue }
            try Files.createDirectory(data + "/" + (object as NSString).deletingLastPathComponent)
            try Files.createDirectory(source + "/" + (object as NSString).deletingLastPathComponent)
            try Files.writeAtomically(file.data, to: data + "/" + object + ".gcda")
            for (from, to) in [(notes + "/" + object + ".gcno", data + "/" + object + ".gcno"),
                               (notes + "/" + object + ".c", source + "/" + object + ".c")] {
                try? FileManager.default.removeItem(atPath: to)
                try FileManager.default.copyItem(atPath: from, toPath: to)
            }
            received += 1
        }
        guard received > 0 else {
            return CoverageSummary(problem: "the guest's \(files.count) gcov files name none of the profiled objects")
        }
        let info = directory + "/coverage.info"
        let captured = directory + "/capture.info"
        let log = directory + "/lcov.log"
        let lcov = try await Command.run("lcov", ["--capture", "--directory", data, "--gcov-tool", gcovTool,
                                                  "--rc", "lcov_branch_coverage=1", "--output-file", captured],
                                         workingDirectory: data)
        try? Files.writeAtomically(lcov.stdout + lcov.stderr, to: log)
        guard lcov.succeeded, let text = try? String(contentsOfFile: captured, encoding: .utf8) else {
            throw HarnessError.infrastructure("lcov", "capture failed (log: \(log))")
        }
        // lcov names sources as gcov found them (paths of the build's worktree, which the
        // next build moves): name them by tree path, with the copies in source/.
        var parsed: [CoverageSummary.File] = []
        var rewritten: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("SF:"), let object = objects.first(where: { line.hasSuffix("/" + $0 + ".c") || line == "SF:\($0).c" }) {
                rewritten.append("SF:" + source + "/" + object + ".c")
            } else {
                rewritten.append(String(line))
            }
        }
        try Files.writeAtomically(rewritten.joined(separator: "\n"), to: info)
        try? FileManager.default.removeItem(atPath: captured)
        for (path, var file) in LcovInfo.parse(rewritten.joined(separator: "\n")) where path.hasPrefix(source + "/") {
            file.path = String(path.dropFirst(source.count + 1))
            parsed.append(file)
        }
        parsed.sort { $0.path < $1.path }
        var summary = CoverageSummary(files: parsed)
        let html = try await Command.run("genhtml", ["--branch-coverage", "--quiet", "--prefix", source,
                                                     "--title", "kharness coverage", "--output-directory",
                                                     directory + "/html", info])
        if html.succeeded {
            summary.html = "coverage/html/index.html"
        } else {
            summary.problem = "genhtml failed: " + (html.stderr.split(separator: "\n").first.map(String.init) ?? "no output")
        }
        return summary
    }
}
