import Foundation
import Support
import Yams

/// Known-benign reports that users list so they do not fail runs.
///
/// The file is YAML, a list of rules; each needs `title` or `signature` and may narrow
/// itself to kernels or machines (shell-style globs: `*`, `?`, `[…]`):
///
/// ```yaml
/// # Seen on every 6.1 kernel under QEMU TCG; not our bug.
/// - title: "WARNING in arch_timer_check_ool_workaround"
///   kernel: "6.1.*"
///   reason: "QEMU timer erratum workaround"
/// - signature: "3fa2c1d09be4e5a7"
///   machine: "virt-smmuv3"
/// - title: "INFO: rcu detected stall in *"   # globs work in titles too
///   machine: "tcg-*"
/// ```
///
/// A suppressed report stays in the analysis (marked `suppressed`) but does not decide
/// the outcome.
public struct Suppressions: Sendable, Equatable {
    public struct Rule: Sendable, Equatable {
        /// Exact report title, or a glob when it contains `*`, `?` or `[`.
        public var title: String?
        /// Exact report signature.
        public var signature: String?
        /// Glob on the kernel release (`uname -r`); nil for every kernel.
        public var kernel: String?
        /// Glob on the machine name the harness runs; nil for every machine.
        public var machine: String?
        /// Why the report is benign, for people reading the file and the result.
        public var reason: String?

        public init(title: String? = nil, signature: String? = nil, kernel: String? = nil, machine: String? = nil, reason: String? = nil) {
            self.title = title
            self.signature = signature
            self.kernel = kernel
            self.machine = machine
            self.reason = reason
        }
    }

    public var rules: [Rule]
    /// The machine this run uses, matched against rules' `machine`.
    public var machine: String?

    public init(rules: [Rule] = [], machine: String? = nil) {
        self.rules = rules
        self.machine = machine
    }

    /// Reads a suppression file; a bad file is a one-line `badInput` error naming it.
    public static func load(path: String, machine: String? = nil) throws -> Suppressions {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HarnessError.badInput(path, "cannot read suppression file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw HarnessError.badInput(path, "suppression file is not UTF-8 text")
        }
        return try parse(text, source: path, machine: machine)
    }

    public static func parse(_ text: String, source: String, machine: String? = nil) throws -> Suppressions {
        let node: Any?
        do {
            // Composed (aliases shared) and counted before it is built: an alias
            // bomb would build exponentially many values.
            if let composed = try Yams.compose(yaml: text), YAMLBudget.exceeded(composed) {
                throw HarnessError.badInput(source, "more than \(YAMLBudget.maxNodes) YAML nodes once aliases are followed")
            }
            node = try Yams.load(yaml: text)
        } catch let error as HarnessError {
            throw error
        } catch {
            let detail = "\(error)".split(separator: "\n").first.map(String.init) ?? "invalid YAML"
            throw HarnessError.badInput(source, "invalid YAML: \(detail)")
        }
        guard let node else { return Suppressions(machine: machine) }
        guard let list = node as? [Any] else {
            throw HarnessError.badInput(source, "expected a list of rules (lines starting with '- ')")
        }
        let known: Set<String> = ["title", "signature", "kernel", "machine", "reason"]
        var rules: [Rule] = []
        for (index, item) in list.enumerated() {
            let where_ = "rule \(index + 1)"
            guard let map = item as? [String: Any] else {
                throw HarnessError.badInput(source, "\(where_): expected keys such as 'title:' or 'signature:'")
            }
            for key in map.keys where !known.contains(key) {
                throw HarnessError.badInput(source, "\(where_): unknown key '\(key)' (known: title, signature, kernel, machine, reason)")
            }
            func string(_ key: String) throws -> String? {
                guard let value = map[key] else { return nil }
                if let s = value as? String { return s }
                if value is Int || value is Double { return "\(value)" }
                throw HarnessError.badInput(source, "\(where_): '\(key)' must be text")
            }
            let rule = Rule(
                title: try string("title"), signature: try string("signature"), kernel: try string("kernel"),
                machine: try string("machine"), reason: try string("reason"))
            if rule.title == nil && rule.signature == nil {
                throw HarnessError.badInput(source, "\(where_): needs 'title' or 'signature'")
            }
            rules.append(rule)
        }
        return Suppressions(rules: rules, machine: machine)
    }

    /// The first rule that suppresses `report` on `kernel`, if any.
    public func rule(for report: KernelReport, kernel: String?) -> Rule? {
        rules.first { rule in
            if let t = rule.title, !Self.matches(t, report.title) { return false }
            if let s = rule.signature, s != report.signature { return false }
            if let k = rule.kernel, !(kernel.map { Self.glob(k, $0) } ?? false) { return false }
            if let m = rule.machine, !(machine.map { Self.glob(m, $0) } ?? false) { return false }
            return true
        }
    }

    /// What can be said about a report's suppression before the kernel release is
    /// final: only a rule's `kernel` glob depends on it (the release may be learnt
    /// after the report, from `@@kharness release`).
    enum Judgement: Hashable, Sendable {
        case suppressed
        case unsuppressed
        /// Suppressed if the release matches the `kernel` glob of one of these rules
        /// (indices into `rules`), every other condition of which the report meets.
        case ifKernelMatches([Int])
    }

    /// Judges a report now, leaving only the release to be settled by ``resolve(_:kernel:)``:
    /// `resolve(judge(r), kernel: k)` is exactly `rule(for: r, kernel: k) != nil`. Reports
    /// past the stored ones are counted by judgement, so no text needs to be kept to decide
    /// them once the release is known.
    func judge(_ report: KernelReport) -> Judgement {
        var candidates: [Int] = []
        for (index, rule) in rules.enumerated() {
            if let t = rule.title, !Self.matches(t, report.title) { continue }
            if let s = rule.signature, s != report.signature { continue }
            if let m = rule.machine, !(machine.map { Self.glob(m, $0) } ?? false) { continue }
            if rule.kernel == nil { return .suppressed }
            candidates.append(index)
        }
        return candidates.isEmpty ? .unsuppressed : .ifKernelMatches(candidates)
    }

    func resolve(_ judgement: Judgement, kernel: String?) -> Bool {
        switch judgement {
        case .suppressed: return true
        case .unsuppressed: return false
        case .ifKernelMatches(let candidates):
            guard let kernel else { return false }
            return candidates.contains { rules[$0].kernel.map { Self.glob($0, kernel) } ?? true }
        }
    }

    func apply(to analysis: inout ConsoleAnalysis) {
        guard !rules.isEmpty else { return }
        for i in analysis.reports.indices where rule(for: analysis.reports[i], kernel: analysis.kernelRelease) != nil {
            analysis.reports[i].suppressed = true
        }
    }

    private static func matches(_ pattern: String, _ title: String) -> Bool {
        if pattern.contains(where: { "*?[".contains($0) }) { return glob(pattern, title) }
        return pattern == title
    }

    private static func glob(_ pattern: String, _ text: String) -> Bool {
        fnmatch(pattern, text, 0) == 0
    }
}

/// The size a YAML file of the harness's (suppressions, matrix, nightly) may have once its
/// aliases are followed: an alias bomb (each anchor a list of aliases to the one before) is
/// exponential, so files are composed and counted before anything is built from them.
public enum YAMLBudget {
    public static let maxNodes = 100_000

    /// Counts `node`'s nodes with its aliases followed, stopping past `limit` (so counting a
    /// bomb costs no more than the limit).
    public static func exceeded(_ node: Node, limit: Int = maxNodes) -> Bool {
        var count = 0
        var stack = [node]
        while let next = stack.popLast() {
            count += 1
            if count > limit { return true }
            switch next {
            case .sequence(let sequence): stack.append(contentsOf: sequence)
            case .mapping(let mapping):
                for (key, value) in mapping {
                    stack.append(key)
                    stack.append(value)
                }
            case .scalar, .alias: break
            }
        }
        return false
    }
}
