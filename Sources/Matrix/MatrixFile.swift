import Classify
import Foundation
import Kernel
import Machine
import Store
import Support
import Yams

/// A matrix file: which kernels, configs, machines and workloads to cross,
/// how often, in how many guests at once and over which libvirt daemons.
///
///     name: smmu-smoke
///     repeat: 2
///     kernels:
///       - debian:6.1
///       - name: "6.12"
///         spec: git:/var/cache/kharness/kernel-source/linux-6.12@HEAD
///         series: patches/          # optional, relative to this file
///     configs:                      # fragment sets for git kernels
///       - [smmuv3, trace, modules]
///     machines:
///       - stock
///       - name: lazy
///         profile: stock
///         invalidation: lazy        # iommu.strict=0
///       - nosmmu
///     workloads:
///       - boot
///       - name: sva
///         scenarios: [baseline, "nginx,pasid-reuse"]   # one cell per entry
///     parallel: 2                   # optional; default from cores and memory
///     connections: [qemu:///system]
///
/// Every error is one line naming the file, the line and column, and the
/// field (`matrix.yaml:7:11: kernels[1].spec: ...`).
public struct MatrixFile: Sendable, Equatable {
    public struct Kernel: Sendable, Equatable {
        /// How cells and comparisons name it: `name:`, else the spec as written.
        public var name: String
        public var spec: KernelSpec
        /// Absolute path of a patch series (git kernels).
        public var series: String?
        /// Fragment sets for this kernel; nil: the matrix's `configs`.
        public var configs: [[String]]?
    }

    public struct MachineEntry: Sendable, Equatable {
        public var name: String
        /// A harness machine profile: stock, stock-lazy, nosmmu, sva.
        public var profile: String
        /// Extra kernel command line (strict/lazy invalidation goes here as `iommu.strict=`).
        public var cmdline: [String]
    }

    public struct Workload: Sendable, Equatable {
        public var name: String
        /// Scenario sets, one cell each; `[[]]`: one cell running the workload's default set.
        public var scenarioSets: [[String]]
        /// Where it was written, for errors found later (an unknown workload).
        public var location: String
    }

    public var name: String
    public var kernels: [Kernel]
    public var configs: [[String]]
    public var machines: [MachineEntry]
    public var workloads: [Workload]
    public var repeatCount: Int
    /// Cells at once; nil: derived from cores and memory (``Parallelism``).
    public var parallel: Int?
    /// libvirt URIs cells are spread over.
    public var connections: [String]
    public var bootTimeout: Double?
    public var timeout: Double?

    /// More cells than this is refused with one line: a matrix multiplies its lists
    /// (and YAML aliases repeat them), so a short file could ask for billions.
    public static let maxCells = 10_000

    /// The cells ``expand(runID:withoutSeries:)`` would make, counted without
    /// making them; saturates at `Int.max`.
    public var cellCount: Int {
        var total = 0
        let perKernel = [machines.count, workloads.reduce(0) { $0 + $1.scenarioSets.count }, repeatCount]
            .reduce(1) { product(of: $0, $1) }
        for kernel in kernels {
            let configSets: Int
            if case .git = kernel.spec { configSets = (kernel.configs ?? configs).count } else { configSets = 1 }
            let (sum, overflow) = total.addingReportingOverflow(product(of: configSets, perKernel))
            total = overflow ? .max : sum
        }
        return total
    }

    private func product(of a: Int, _ b: Int) -> Int {
        let (p, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? .max : p
    }

    /// Reads and checks a matrix file.
    public static func load(path: String) throws -> (file: MatrixFile, text: String) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HarnessError.badInput(path, "cannot read the matrix file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw HarnessError.badInput(path, "the matrix file is not UTF-8")
        }
        return (try parse(text, file: path), text)
    }

    /// Parses matrix text; `file` names it in errors and anchors relative paths.
    public static func parse(_ text: String, file: String) throws -> MatrixFile {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw HarnessError.badInput("\(file):1:1", "the matrix file is empty")
            }
            root = node
        } catch let error as YamlError {
            throw yamlError(error, file: file)
        }
        if YAMLBudget.exceeded(root) {
            throw HarnessError.badInput(file, "more than \(YAMLBudget.maxNodes) YAML nodes once aliases are followed")
        }
        let matrix = try MatrixParser(file: file, base: (Files.absolute(file) as NSString).deletingLastPathComponent).matrix(root)
        let cells = matrix.cellCount
        guard cells <= maxCells else {
            throw HarnessError.badInput(file, "\(cells == .max ? "too many" : String(cells)) cells, more than the limit of \(maxCells)")
        }
        return matrix
    }

    public static func yamlError(_ error: YamlError, file: String) -> HarnessError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
             .composer(_, let problem, let mark, _):
            return .badInput("\(file):\(mark.line):\(mark.column)", "YAML: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return .badInput("\(file):\(context.mark.line):\(context.mark.column)",
                             "duplicated key \(duplicates.joined(separator: ", "))")
        default:
            return .badInput(file, "YAML: \(String(describing: error).split(separator: "\n").first ?? "")")
        }
    }

    /// The cells of this matrix in run order: kernels, then config sets (git
    /// kernels only; prebuilt ones have one, empty), machines, workloads,
    /// scenario sets, and repeats innermost.
    public func expand(runID: String, withoutSeries: Bool = false) -> [CellRecord] {
        var cells: [CellRecord] = []
        for kernel in kernels {
            let configSets: [[String]]
            if case .git = kernel.spec { configSets = kernel.configs ?? configs } else { configSets = [[]] }
            for fragments in configSets {
                for machine in machines {
                    for workload in workloads {
                        for scenarios in workload.scenarioSets {
                            for r in 1...repeatCount {
                                cells.append(CellRecord(
                                    runID: runID, ordinal: cells.count, kernelName: kernel.name,
                                    kernel: kernel.spec.description, series: withoutSeries ? nil : kernel.series,
                                    configFragments: fragments, machine: machine.name, machineProfile: machine.profile,
                                    cmdline: machine.cmdline, workload: workload.name, scenarios: scenarios,
                                    repeatIndex: r))
                            }
                        }
                    }
                }
            }
        }
        return cells
    }
}

/// Walks the YAML node tree, keeping each node's mark for its error (the
/// nightly config is read with it too, so both name file:line:column: field).
public struct MatrixParser {
    let file: String
    let base: String

    /// `base`: the directory relative paths are resolved against.
    public init(file: String, base: String) {
        self.file = file
        self.base = base
    }

    public func fail(_ node: Node?, _ field: String, _ reason: String) -> HarnessError {
        let mark = node?.mark.map { "\($0.line):\($0.column)" } ?? "1:1"
        return .badInput("\(file):\(mark)", "\(field): \(reason)")
    }

    public func mapping(_ node: Node, _ field: String, known: [String]) throws -> [(String, Node, Node)] {
        guard case .mapping(let mapping) = node else { throw fail(node, field, "must be a mapping") }
        var pairs: [(String, Node, Node)] = []
        for (key, value) in mapping {
            guard let name = key.scalar?.string else { throw fail(key, field, "keys must be plain words") }
            guard known.contains(name) else {
                throw fail(key, field.isEmpty ? name : "\(field).\(name)",
                           "unknown field (known: \(known.joined(separator: ", ")))")
            }
            pairs.append((name, key, value))
        }
        return pairs
    }

    public func string(_ node: Node, _ field: String) throws -> String {
        guard case .scalar(let scalar) = node, !scalar.string.isEmpty else { throw fail(node, field, "must be a non-empty string") }
        return scalar.string
    }

    func sequence(_ node: Node, _ field: String) throws -> [Node] {
        guard case .sequence(let sequence) = node else { throw fail(node, field, "must be a list") }
        guard !sequence.isEmpty else { throw fail(node, field, "must not be empty") }
        return Array(sequence)
    }

    public func int(_ node: Node, _ field: String, in range: ClosedRange<Int>) throws -> Int {
        guard let value = node.int, range.contains(value) else {
            throw fail(node, field, "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    func seconds(_ node: Node, _ field: String) throws -> Double {
        guard let value = node.float, value > 0, value <= 86400 else {
            throw fail(node, field, "must be a number of seconds above 0")
        }
        return value
    }

    /// `[a, b]` or `"a,b"`.
    func words(_ node: Node, _ field: String, allowEmpty: Bool) throws -> [String] {
        let words: [String]
        switch node {
        case .scalar(let scalar):
            words = scalar.string.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        case .sequence(let sequence):
            words = try sequence.enumerated().map { i, item in try string(item, "\(field)[\(i)]") }
        default:
            throw fail(node, field, "must be a list or a comma-separated string")
        }
        if words.contains(where: \.isEmpty) || (!allowEmpty && words.isEmpty) {
            throw fail(node, field, "has an empty name")
        }
        return words
    }

    public func path(_ text: String) -> String { text.hasPrefix("/") ? text : Files.absolute(base + "/" + text) }

    func matrix(_ root: Node) throws -> MatrixFile {
        let fields = ["name", "kernels", "configs", "machines", "workloads", "repeat", "parallel", "connections",
                      "boot-timeout", "timeout"]
        var matrix = MatrixFile(name: ((file as NSString).lastPathComponent as NSString).deletingPathExtension,
                                kernels: [], configs: [[]], machines: [], workloads: [], repeatCount: 1, parallel: nil,
                                connections: ["qemu:///system"], bootTimeout: nil, timeout: nil)
        var seen: Set<String> = []
        for (key, _, value) in try mapping(root, "", known: fields) {
            seen.insert(key)
            switch key {
            case "name": matrix.name = try string(value, key)
            case "kernels": matrix.kernels = try sequence(value, key).enumerated().map { try kernel($1, "kernels[\($0)]") }
            case "configs":
                matrix.configs = try sequence(value, key).enumerated().map {
                    try words($1, "configs[\($0)]", allowEmpty: true)
                }
            case "machines": matrix.machines = try sequence(value, key).enumerated().map { try machine($1, "machines[\($0)]") }
            case "workloads": matrix.workloads = try sequence(value, key).enumerated().map { try workload($1, "workloads[\($0)]") }
            case "repeat": matrix.repeatCount = try int(value, key, in: 1...100)
            case "parallel": matrix.parallel = try int(value, key, in: 1...64)
            case "connections":
                matrix.connections = try sequence(value, key).enumerated().map { i, node in
                    let uri = try string(node, "connections[\(i)]")
                    guard uri.contains(":///") || uri.contains("://") else {
                        throw fail(node, "connections[\(i)]", "'\(uri)' is not a libvirt URI (e.g. qemu+ssh://host/system)")
                    }
                    return uri
                }
            case "boot-timeout": matrix.bootTimeout = try seconds(value, key)
            case "timeout": matrix.timeout = try seconds(value, key)
            default: break
            }
        }
        for required in ["kernels", "machines", "workloads"] where !seen.contains(required) {
            throw fail(root, required, "missing (a matrix needs kernels, machines and workloads)")
        }
        try unique(matrix.kernels.map(\.name), root, "kernels", what: "kernel name")
        try unique(matrix.machines.map(\.name), root, "machines", what: "machine name")
        return matrix
    }

    func unique(_ names: [String], _ node: Node, _ field: String, what: String) throws {
        var seen: Set<String> = []
        for name in names where !seen.insert(name).inserted {
            throw fail(node, field, "\(what) '\(name)' appears twice (give one a name:)")
        }
    }

    func kernel(_ node: Node, _ field: String) throws -> MatrixFile.Kernel {
        func parse(_ text: String, _ node: Node, _ field: String) throws -> KernelSpec {
            let spec: KernelSpec
            do {
                spec = try KernelSpec(parsing: text)
            } catch let error as HarnessError {
                throw fail(node, field, error.reason)
            }
            switch spec {
            case .git(let tree, let revision):
                guard Files.isDirectory(path(tree)) else { throw fail(node, field, "tree '\(path(tree))' is not a directory") }
                return .git(tree: path(tree), revision: revision)
            case .image(let image, let modules):
                guard Files.exists(path(image)) else { throw fail(node, field, "image '\(path(image))' does not exist") }
                return .image(path: path(image), modules: modules.map(path))
            case .debian:
                return spec
            }
        }
        if case .scalar(let scalar) = node {
            return MatrixFile.Kernel(name: scalar.string, spec: try parse(scalar.string, node, field), series: nil, configs: nil)
        }
        var name: String?
        var spec: KernelSpec?
        var written = ""
        var series: String?
        var configs: [[String]]?
        for (key, _, value) in try mapping(node, field, known: ["name", "spec", "series", "configs"]) {
            switch key {
            case "name": name = try string(value, "\(field).name")
            case "spec":
                written = try string(value, "\(field).spec")
                spec = try parse(written, value, "\(field).spec")
            case "series":
                let given = path(try string(value, "\(field).series"))
                guard Files.exists(given) else { throw fail(value, "\(field).series", "'\(given)' does not exist") }
                series = given
            case "configs":
                configs = try sequence(value, "\(field).configs").enumerated().map {
                    try words($1, "\(field).configs[\($0)]", allowEmpty: true)
                }
            default: break
            }
        }
        guard let spec else { throw fail(node, "\(field).spec", "missing (e.g. debian:6.1 or git:<tree>@<rev>)") }
        if series != nil || configs != nil, case .git = spec {} else if series != nil || configs != nil {
            throw fail(node, field, "series and configs apply to git: kernels only")
        }
        return MatrixFile.Kernel(name: name ?? written, spec: spec, series: series, configs: configs)
    }

    func machine(_ node: Node, _ field: String) throws -> MatrixFile.MachineEntry {
        func profile(_ name: String, _ node: Node, _ field: String) throws -> String {
            guard MachineProfile.names.contains(name) else {
                throw fail(node, field, "unknown machine '\(name)' (known: \(MachineProfile.names.joined(separator: ", ")))")
            }
            return name
        }
        if case .scalar(let scalar) = node {
            return MatrixFile.MachineEntry(name: scalar.string, profile: try profile(scalar.string, node, field), cmdline: [])
        }
        var name: String?
        var chosen: String?
        var cmdline: [String] = []
        var invalidation: [String] = []
        for (key, _, value) in try mapping(node, field, known: ["name", "profile", "cmdline", "invalidation"]) {
            switch key {
            case "name": name = try string(value, "\(field).name")
            case "profile": chosen = try profile(try string(value, "\(field).profile"), value, "\(field).profile")
            case "cmdline": cmdline = try words(value, "\(field).cmdline", allowEmpty: true).flatMap { $0.split(separator: " ").map(String.init) }
            case "invalidation":
                switch try string(value, "\(field).invalidation") {
                case "strict": invalidation = ["iommu.strict=1"]
                case "lazy": invalidation = ["iommu.strict=0"]
                case let other: throw fail(value, "\(field).invalidation", "'\(other)' is neither strict nor lazy")
                }
            default: break
            }
        }
        guard let chosen else { throw fail(node, "\(field).profile", "missing (stock, stock-lazy, nosmmu or sva)") }
        return MatrixFile.MachineEntry(name: name ?? chosen, profile: chosen, cmdline: cmdline + invalidation)
    }

    func workload(_ node: Node, _ field: String) throws -> MatrixFile.Workload {
        let location = "\(file):\(node.mark.map { "\($0.line):\($0.column)" } ?? "1:1")"
        if case .scalar = node {
            return MatrixFile.Workload(name: try string(node, field), scenarioSets: [[]], location: location + ": \(field)")
        }
        var name: String?
        var sets: [[String]] = [[]]
        for (key, _, value) in try mapping(node, field, known: ["name", "scenarios"]) {
            switch key {
            case "name": name = try string(value, "\(field).name")
            case "scenarios":
                sets = try sequence(value, "\(field).scenarios").enumerated().map {
                    try words($1, "\(field).scenarios[\($0)]", allowEmpty: false)
                }
            default: break
            }
        }
        guard let name else { throw fail(node, "\(field).name", "missing (e.g. boot or sva)") }
        return MatrixFile.Workload(name: name, scenarioSets: sets, location: location + ": \(field)")
    }
}
