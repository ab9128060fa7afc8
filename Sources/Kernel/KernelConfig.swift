import Foundation
import Support
import VCS

/// The config fragments a build asked for, read from `guest/configs`:
/// `base` always first, then the named ones in the order given.
public struct ConfigFragments: Sendable {
    public struct Fragment: Sendable {
        public var name: String
        public var path: String
        public var text: String
    }

    public var fragments: [Fragment]

    public init(directory: String, names: [String]) throws {
        var ordered = ["base"]
        for name in names where !ordered.contains(name) { ordered.append(name) }
        fragments = try ordered.map { name in
            let path = directory + "/" + name + ".config"
            guard !name.isEmpty, !name.contains("/"), Files.exists(path),
                  let text = try? String(contentsOfFile: path, encoding: .utf8)
            else {
                throw HarnessError.badInput("--config \(name)", "no such config fragment (known: \(ConfigFragments.known(in: directory).joined(separator: ", ")))")
            }
            return Fragment(name: name, path: path, text: text)
        }
    }

    public static func known(in directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".config") }
            .map { String($0.dropLast(".config".count)) }
            .sorted()
    }

    /// Identity of the configuration for cache keys: names and contents.
    public var hash: String {
        Digest.sha256(fragments.map { "\($0.name)\n\($0.text)\n" }.joined())
    }

    public var names: [String] { fragments.map(\.name) }

    /// Objects to build with gcov, from `# kharness-gcov: <dir/file.o>...` lines (tree
    /// paths of built-in objects; a comment to Kconfig, so merge_config ignores it).
    public var gcovObjects: [String] {
        var objects: [String] = []
        for fragment in fragments {
            for raw in fragment.text.split(separator: "\n") {
                let line = raw.trimmingCharacters(in: .whitespaces)
                guard line.hasPrefix("# kharness-gcov:") else { continue }
                for word in line.dropFirst("# kharness-gcov:".count).split(separator: " ") where !objects.contains(String(word)) {
                    objects.append(String(word))
                }
            }
        }
        return objects
    }

    /// The `# kharness-gcov:` objects are tree paths of C objects: `dir/name.o`, no
    /// `..`, nothing make or the shell would read as more than a name.
    public func validateGcovObjects() throws {
        for object in gcovObjects {
            let allowed = object.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "/_-.".contains($0)) }
            guard allowed, object.hasSuffix(".o"), !object.hasPrefix("/"),
                  !object.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) else {
                throw HarnessError.badInput("# kharness-gcov: \(object)", "not a tree path of a C object (dir/name.o)")
            }
        }
    }

    /// The same fragments with every `CONFIG_OLD=` and `# CONFIG_OLD is not set`
    /// line naming the symbol `renames` maps it to (see `KconfigRename`).
    public func renaming(_ renames: [String: String]) -> ConfigFragments {
        guard !renames.isEmpty else { return self }
        var copy = self
        for index in copy.fragments.indices {
            copy.fragments[index].text = copy.fragments[index].text.split(separator: "\n", omittingEmptySubsequences: false)
                .map { raw -> String in
                    let line = raw.trimmingCharacters(in: .whitespaces)
                    for (old, new) in renames {
                        if line.hasPrefix(old + "=") { return new + line.dropFirst(old.count) }
                        if line == "# \(old) is not set" { return "# \(new) is not set" }
                    }
                    return String(raw)
                }
                .joined(separator: "\n")
        }
        return copy
    }

    /// Every option the fragments set, with the fragment that set it last
    /// (later fragments override earlier ones, as in merge_config.sh).
    public var requested: [(symbol: String, value: String, fragment: String)] {
        var order: [String] = []
        var values: [String: (String, String)] = [:]
        for fragment in fragments {
            for (symbol, value) in KernelConfigFile.parse(fragment.text) {
                if values[symbol] == nil { order.append(symbol) }
                values[symbol] = (value, fragment.name)
            }
        }
        return order.map { ($0, values[$0]!.0, values[$0]!.1) }
    }
}

/// Kconfig symbols renamed upstream, old name to new, each with the release that
/// renamed it. The fragments name what 5.10 to 6.x call an option, so a tree that
/// has only the new name gets its lines rewritten before the merge (and its check).
/// A table rather than a second spelling in the fragments: a fragment line that
/// names a symbol the tree lacks is an error, and the old trees' configs (and so
/// their cache keys) stay exactly what they were.
public enum KconfigRename {
    public static let table: [(old: String, new: String, since: String)] = [
        // fs/proc/Kconfig: "config PROC_SYSCTL" became "config SYSCTL" (with a prompt).
        ("CONFIG_PROC_SYSCTL", "CONFIG_SYSCTL", "7.3"),
    ]

    /// The renames that apply to the checked-out tree at `source`: the tree's Kconfig
    /// files define the new name and not the old one.
    public static func applicable(to fragments: ConfigFragments, source: String) async -> [String: String] {
        let requested = Set(fragments.requested.map(\.symbol))
        var renames: [String: String] = [:]
        for entry in table where requested.contains(entry.old) {
            if await !defines(entry.old, in: source), await defines(entry.new, in: source) {
                renames[entry.old] = entry.new
            }
        }
        return renames
    }

    /// `config NAME` (or `menuconfig NAME`) in one of the tree's Kconfig files.
    static func defines(_ symbol: String, in source: String) async -> Bool {
        await !definitions(of: symbol, in: source).isEmpty
    }

    /// The lines (`file:line:text`) of the tree's Kconfig files that define
    /// `symbol` (`CONFIG_X`) with `config X` or `menuconfig X`; none when git fails.
    static func definitions(of symbol: String, in source: String) async -> [String] {
        let name = String(symbol.dropFirst("CONFIG_".count))
        return (try? await GitRepository(path: source)
            .grep("^[[:space:]]*(menu)?config[[:space:]]+\(name)[[:space:]]*$", in: ["Kconfig*", "*/Kconfig*"])) ?? []
    }
}

/// `.config` syntax: `CONFIG_X=value` and `# CONFIG_X is not set` (value "n").
public enum KernelConfigFile {
    public static func parse(_ text: String) -> [(String, String)] {
        var result: [(String, String)] = []
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("CONFIG_"), let eq = line.firstIndex(of: "=") {
                result.append((String(line[..<eq]), String(line[line.index(after: eq)...])))
            } else if line.hasPrefix("# CONFIG_"), line.hasSuffix(" is not set") {
                let symbol = line.dropFirst(2).dropLast(" is not set".count)
                result.append((String(symbol), "n"))
            }
        }
        return result
    }

    public static func values(_ text: String) -> [String: String] {
        var map: [String: String] = [:]
        for (symbol, value) in parse(text) { map[symbol] = value }
        return map
    }
}

/// Explains why a requested option did not survive olddefconfig, from the
/// tree's own Kconfig files.
struct KconfigExplainer {
    var sourceTree: String
    var finalConfig: [String: String]

    func reason(symbol: String, requested: String, actual: String) async -> String {
        let name = String(symbol.dropFirst("CONFIG_".count))
        let hits = await KconfigRename.definitions(of: symbol, in: sourceTree)
        if hits.isEmpty {
            return "unknown symbol (no 'config \(name)' in this tree's Kconfig files)"
        }
        if requested == "n" { return "forced on (\(actual)) by a select or default" }
        var dependencies: [String] = []
        var hasPrompt = false
        for hit in hits {
            let parts = hit.split(separator: ":", maxSplits: 2)
            guard parts.count == 3, let line = Int(parts[1]) else { continue }
            let file = sourceTree + "/" + parts[0]
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { continue }
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            var index = line
            while index < lines.count {
                let entry = lines[index].trimmingCharacters(in: .whitespaces)
                let keyword = entry.split(separator: " ").first.map(String.init) ?? ""
                if ["config", "menuconfig", "menu", "endmenu", "choice", "endchoice", "if", "endif",
                    "source", "comment", "mainmenu"].contains(keyword) { break }
                if entry.hasPrefix("depends on ") {
                    dependencies.append(String(entry.dropFirst("depends on ".count)))
                }
                if entry.hasPrefix("prompt ") || ((keyword == "bool" || keyword == "tristate"
                    || keyword == "string" || keyword == "int" || keyword == "hex") && entry.contains("\"")) {
                    hasPrompt = true
                }
                index += 1
            }
        }
        let unmet = dependencies.flatMap(Self.symbols).filter { dep in
            let value = finalConfig["CONFIG_" + dep] ?? "n"
            return value == "n"
        }
        var unique: [String] = []
        for dep in unmet where !unique.contains(dep) { unique.append(dep) }
        if !unique.isEmpty {
            return "unmet dependency: depends on \(dependencies.joined(separator: " && ")) "
                + "(not set: \(unique.map { "CONFIG_" + $0 }.joined(separator: ", ")))"
        }
        if !hasPrompt {
            return "has no prompt: it is only set when another option selects it"
        }
        if !dependencies.isEmpty {
            return "unmet dependency: depends on \(dependencies.joined(separator: " && "))"
        }
        return "overridden by olddefconfig (a choice or a select); final value \(actual)"
    }

    /// Kconfig symbol names in a dependency expression.
    static func symbols(in expression: String) -> [String] {
        var names: [String] = []
        var current = ""
        for character in expression + " " {
            if character.isLetter || character.isNumber || character == "_" {
                current.append(character)
            } else {
                if !current.isEmpty, current.first!.isUppercase || current.first == "_",
                   current != "y", current != "m", current != "n", !current.allSatisfy(\.isNumber) {
                    names.append(current)
                }
                current = ""
            }
        }
        return names
    }
}

extension KernelBuilder {
    /// `$KHARNESS_CONFIG_DIR`, else the `guest/configs` of the checkout that
    /// holds the running executable or the current directory.
    public static func defaultConfigDirectory() throws -> String {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["KHARNESS_CONFIG_DIR"], !dir.isEmpty { return dir }
        var starts = [FileManager.default.currentDirectoryPath]
        if let executable = Bundle.main.executablePath {
            starts.append(URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent().path)
        }
        starts.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent().path)
        for start in starts {
            if let guest = GuestDirectory.find(holding: "configs/base.config", walkingUpFrom: URL(fileURLWithPath: start),
                                               includingRoot: false) {
                return guest + "/configs"
            }
        }
        throw HarnessError.badInput("guest/configs", "config fragments not found (set KHARNESS_CONFIG_DIR)")
    }
}
