import Foundation
import Support

/// Debian's kernel sources for the tests that build and boot them, and the
/// release a kharness build of such a tree reports.
///
/// The source is whatever `linux-source-<version>` Debian serves today
/// (scripts/kernel-source), and its point release changes under the tests
/// (6.12.117, 6.12.118, ...): a test never names it, it asks `release` for
/// what the tree it built must report.
public enum KernelSources {
    /// The config fragments the tests build with (the builder's `configDirectory`).
    public static let configDirectory = Checkout.path("guest/configs")

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Debian's source of `version` ("6.1", "6.12") as a git tree:
    /// `$KHARNESS_KERNEL_TREE_<version with _ for .>` (e.g. `KHARNESS_KERNEL_TREE_6_12`)
    /// when set, else the repository scripts/kernel-source makes (or finds in the cache).
    public static func tree(_ version: String) async throws -> String {
        let variable = "KHARNESS_KERNEL_TREE_" + version.replacingOccurrences(of: ".", with: "_")
        if let tree = ProcessInfo.processInfo.environment[variable], !tree.isEmpty { return tree }
        let result = try await Command.check(Checkout.path("scripts/kernel-source"), [version])
        guard let tree = result.stdout.split(separator: "\n").last.map(String.init), !tree.isEmpty else {
            throw Failure(description: "scripts/kernel-source \(version) printed no tree")
        }
        return tree
    }

    /// The release (`make kernelrelease`, `uname -r`, the `lib/modules/<release>` name) of
    /// the kernel kharness builds from `revision` of `tree` with `fragments`, worked out
    /// from the tree itself as kbuild's scripts/setlocalversion does: the Makefile's
    /// VERSION.PATCHLEVEL.SUBLEVEL and EXTRAVERSION, the tree's `localversion*` files,
    /// CONFIG_LOCALVERSION from the fragments, then `LOCALVERSION`, which the builder
    /// sets empty (`MakeInvocation.variables`), so no "+" and no git suffix.
    /// `fragments` as a request gives them or as a build records them ("base" first).
    public static func release(tree: String, revision: String = "HEAD", fragments: [String]) async throws -> String {
        let commit = try await git(tree, ["rev-parse", "--verify", "\(revision)^{commit}"])
        let makefile = try await git(tree, ["show", "\(commit):Makefile"])
        var release = try kernelVersion(makefile: makefile)

        // setlocalversion: `collect_files localversion*` in the source tree,
        // sorted as the shell's glob sorts them, skipping backups (`*~*`).
        let files = try await git(tree, ["ls-tree", "--name-only", commit]).split(separator: "\n")
            .map(String.init).filter { $0.hasPrefix("localversion") && !$0.contains("~") }.sorted()
        for file in files {
            var text = try await git(tree, ["show", "\(commit):\(file)"], trim: false)
            while text.hasSuffix("\n") { text.removeLast() }  // as `$(cat file)` does
            release += text
        }

        let names = fragments.first == "base" ? fragments : ["base"] + fragments
        var values: [String: String] = [:]
        for name in names {
            let path = configDirectory + "/\(name).config"
            let text = try String(contentsOfFile: path, encoding: .utf8)
            for line in text.split(separator: "\n") {
                for option in ["CONFIG_LOCALVERSION", "CONFIG_LOCALVERSION_AUTO"] {
                    if line.hasPrefix(option + "=") {
                        values[option] = String(line.dropFirst(option.count + 1))
                    } else if line == "# \(option) is not set" {
                        values[option] = nil
                    }
                }
            }
        }
        // The fragments start from allnoconfig, so the automatic git suffix is off
        // unless one turns it on, and this does not work the suffix out.
        if values["CONFIG_LOCALVERSION_AUTO"] == "y" {
            throw Failure(description: "\(names): CONFIG_LOCALVERSION_AUTO=y appends a git suffix this helper does not compute")
        }
        if var local = values["CONFIG_LOCALVERSION"] {
            if local.count >= 2, local.hasPrefix("\""), local.hasSuffix("\"") { local = String(local.dropFirst().dropLast()) }
            release += local
        }
        return release
    }

    /// Makefile's `KERNELVERSION`:
    /// `$(VERSION)$(if $(PATCHLEVEL),.$(PATCHLEVEL)$(if $(SUBLEVEL),.$(SUBLEVEL)))$(EXTRAVERSION)`.
    public static func kernelVersion(makefile: String) throws -> String {
        var fields: [String: String] = [:]
        for line in makefile.split(separator: "\n", omittingEmptySubsequences: false).prefix(20) {
            let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { continue }
            let name = parts[0].trimmingCharacters(in: .whitespaces)
            if ["VERSION", "PATCHLEVEL", "SUBLEVEL", "EXTRAVERSION"].contains(name), fields[name] == nil {
                fields[name] = parts[1].trimmingCharacters(in: .whitespaces)
            }
        }
        guard let version = fields["VERSION"], !version.isEmpty else {
            throw Failure(description: "Makefile: no VERSION in its first lines")
        }
        var release = version
        if let patchlevel = fields["PATCHLEVEL"], !patchlevel.isEmpty {
            release += "." + patchlevel
            if let sublevel = fields["SUBLEVEL"], !sublevel.isEmpty { release += "." + sublevel }
        }
        return release + (fields["EXTRAVERSION"] ?? "")
    }

    private static func git(_ tree: String, _ arguments: [String], trim: Bool = true) async throws -> String {
        let output = try await Command.check("git", ["-C", tree] + arguments).stdout
        return trim ? output.trimmingCharacters(in: .whitespacesAndNewlines) : output
    }
}
