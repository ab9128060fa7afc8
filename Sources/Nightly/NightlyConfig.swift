import Classify
import Foundation
import Matrix
import Support
import Yams

/// What `kharness nightly --config <file>` reads:
///
///     name: smmu-nightly            # nights are grouped by this name
///     matrix: matrix.yaml           # the matrix to run; git: revisions are
///                                   # branch names (origin/master), pinned per night
///     results: /var/lib/kharness    # run directories and kharness.db (default: results)
///     reports: /var/www/kharness    # junit.xml, kcidb.json, report.html, table.txt,
///                                   # regression-*.txt (default: <results>/<run>/reports)
///     bisect: true                  # bisect each new regression of a git kernel
///     bisect-reruns: 2              # runs per bisect step (flaky failures)
///
/// Relative paths are relative to the config file. Errors name the file, line
/// and field, like the matrix file's.
public struct NightlyConfig: Sendable, Equatable {
    public var name: String
    public var matrix: String
    public var results: String
    public var reports: String?
    public var database: String?
    public var bisect: Bool
    public var bisectReruns: Int

    public static func load(path: String) throws -> NightlyConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HarnessError.badInput(path, "cannot read the nightly config")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw HarnessError.badInput(path, "the nightly config is not UTF-8")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws -> NightlyConfig {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw HarnessError.badInput("\(file):1:1", "the nightly config is empty")
            }
            root = node
        } catch let error as YamlError {
            throw MatrixFile.yamlError(error, file: file)
        }
        if YAMLBudget.exceeded(root) {
            throw HarnessError.badInput(file, "more than \(YAMLBudget.maxNodes) YAML nodes once aliases are followed")
        }
        let reader = MatrixParser(file: file, base: (Files.absolute(file) as NSString).deletingLastPathComponent)
        let fields = ["name", "matrix", "results", "reports", "database", "bisect", "bisect-reruns"]
        var config = NightlyConfig(
            name: ((file as NSString).lastPathComponent as NSString).deletingPathExtension, matrix: "",
            results: reader.path("results"), reports: nil, database: nil, bisect: false, bisectReruns: 1)
        for (key, _, value) in try reader.mapping(root, "", known: fields) {
            switch key {
            case "name": config.name = try reader.string(value, key)
            case "matrix":
                config.matrix = reader.path(try reader.string(value, key))
                guard Files.exists(config.matrix) else {
                    throw reader.fail(value, key, "'\(config.matrix)' does not exist")
                }
            case "results": config.results = reader.path(try reader.string(value, key))
            case "reports": config.reports = reader.path(try reader.string(value, key))
            case "database": config.database = reader.path(try reader.string(value, key))
            case "bisect":
                guard let flag = value.bool else { throw reader.fail(value, key, "must be true or false") }
                config.bisect = flag
            case "bisect-reruns": config.bisectReruns = try reader.int(value, key, in: 1...10)
            default: break
            }
        }
        guard !config.matrix.isEmpty else { throw reader.fail(root, "matrix", "missing (the matrix file to run)") }
        guard config.name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw reader.fail(root, "name", "'\(config.name)' may hold only letters, digits, '-', '_' and '.'")
        }
        return config
    }
}
