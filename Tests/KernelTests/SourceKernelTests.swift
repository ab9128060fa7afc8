import Foundation
import Kernel
import KernelTestSupport
import Support
import XCTest

/// Real builds of Debian's 6.12 source with the real cross toolchain. The
/// base+smmuv3+trace kernel is built once per process (and then comes from
/// the kharness cache in later runs); every other test reuses its tree and
/// object directory, so they cost an incremental build at most.
final class SourceKernelTests: XCTestCase {

    /// The shared 6.12 tree: `$KHARNESS_KERNEL_TREE_6_12`, else made (or
    /// found in the cache) by scripts/kernel-source.
    static let tree: Task<String, Error> = Task { try await KernelSources.tree("6.12") }

    static func builder(configDirectory: String = KernelSources.configDirectory) -> KernelBuilder {
        KernelBuilder(cache: .fromEnvironment(), configDirectory: configDirectory)
    }

    /// The SVA kernel the lead boots: base + smmuv3 + trace at the tree's HEAD.
    static let svaKernel: Task<KernelBuild, Error> = Task {
        let path = try await tree.value
        return try await builder().build(SourceKernelRequest(tree: path, revision: "HEAD",
                                                             fragments: ["smmuv3", "trace", "modules"]))
    }

    func testSVAKernelBuildProducts() async throws {
        let build = try await Self.svaKernel.value
        let artifacts = build.artifacts
        for path in [artifacts.image, artifacts.config, artifacts.systemMap, artifacts.vmlinux, build.buildLog] {
            let path = try XCTUnwrap(path)
            XCTAssertTrue(Files.exists(path), "missing \(path)")
        }
        // An arm64 Image carries "ARM\x64" at offset 56.
        let image = try Data(contentsOf: URL(fileURLWithPath: artifacts.image))
        XCTAssertGreaterThan(image.count, 1 << 20)
        XCTAssertEqual(Array(image[56..<60]), Array("ARMd".utf8))

        let config = try String(contentsOfFile: XCTUnwrap(artifacts.config), encoding: .utf8)
        for option in ["CONFIG_ARM_SMMU_V3=y", "CONFIG_ARM_SMMU_V3_SVA=y", "CONFIG_IOMMU_SVA=y",
                       "CONFIG_PCI_PASID=y", "CONFIG_FUNCTION_TRACER=y", "CONFIG_KPROBE_EVENTS=y",
                       "CONFIG_SERIAL_AMBA_PL011_CONSOLE=y", "CONFIG_PCI_HOST_GENERIC=y"] {
            XCTAssertTrue(config.split(separator: "\n").contains(Substring(option)), "\(option) not in .config")
        }
        let symbols = try String(contentsOfFile: XCTUnwrap(artifacts.systemMap), encoding: .utf8)
        let names = Set(symbols.split(separator: "\n").compactMap { $0.split(separator: " ").last })
        XCTAssertTrue(names.contains("arm_smmu_sva_bind") || names.contains("iommu_sva_bind_device"),
                      "no SVA bind function in System.map")
        XCTAssertTrue(names.contains("iommu_sva_bind_device"))

        // Whatever point release Debian serves: the one this tree's Makefile names.
        let tree = try await Self.tree.value
        let release = try await KernelSources.release(tree: tree, revision: build.builtCommit,
                                                      fragments: build.configFragments)
        XCTAssertEqual(artifacts.release, release)
        XCTAssertEqual(build.configFragments, ["base", "smmuv3", "trace", "modules"])
        XCTAssertEqual(build.baseCommit, build.builtCommit)
        XCTAssertEqual(build.patchsetHash, "")
        // The modules fragment installs the (built-in only) modules index for depmod-aware guests.
        let modules = try XCTUnwrap(artifacts.modulesDirectory, "modules were asked for")
        XCTAssertTrue(modules.hasSuffix("/lib/modules/" + release), modules)
        XCTAssertTrue(FileManager.default.fileExists(atPath: modules + "/modules.builtin"), modules)
        let head = try await Command.check("git", ["-C", tree, "rev-parse", "HEAD"])
        XCTAssertEqual(build.baseCommit, head.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func testSameKernelTwiceCompilesNothing() async throws {
        let first = try await Self.svaKernel.value
        let tree = try await Self.tree.value
        let again = try await Self.builder().build(SourceKernelRequest(tree: tree, revision: first.baseCommit,
                                                                       fragments: ["smmuv3", "trace", "modules"]))
        XCTAssertTrue(again.cacheHit)
        XCTAssertNil(again.timings["compile"], "a cache hit must not run make")
        XCTAssertEqual(again.cacheKey, first.cacheKey)
        XCTAssertEqual(again.artifacts, first.artifacts)
        XCTAssertEqual(try Digest.sha256(file: again.artifacts.image), try Digest.sha256(file: first.artifacts.image))
    }

    // MARK: Series

    /// Commits on top of the tree's HEAD in a scratch clone, written out with
    /// `git format-patch --thread --cover-letter` (so they carry Message-Ids).
    func makeSeries(_ edits: [(subject: String, file: String, transform: (String) -> String)],
                    exportFrom: Int = 0) async throws -> String {
        let tree = try await Self.tree.value
        let scratch = NSTemporaryDirectory() + "kharness-series-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: scratch) }
        let clone = scratch + "/clone"
        try await Command.check("git", ["clone", "--quiet", "--shared", "--no-checkout", tree, clone])
        let files = Set(edits.map(\.file)).map { "/" + $0 }
        try await Command.check("git", ["-C", clone, "sparse-checkout", "set", "--no-cone"] + files)
        try await Command.check("git", ["-C", clone, "checkout", "--quiet", "HEAD"])
        let identity = ["GIT_AUTHOR_NAME": "kharness developers", "GIT_AUTHOR_EMAIL": "kharness@example.invalid",
                        "GIT_COMMITTER_NAME": "kharness developers", "GIT_COMMITTER_EMAIL": "kharness@example.invalid"]
        for edit in edits {
            let path = clone + "/" + edit.file
            let text = try String(contentsOfFile: path, encoding: .utf8)
            try Files.writeAtomically(edit.transform(text), to: path)
            try await Command.check("git", ["-C", clone, "commit", "--quiet", "-a", "-m", edit.subject,
                                            "-m", "Signed-off-by: kharness developers <kharness@example.invalid>"],
                                    environment: identity)
        }
        let directory = scratch + "/series"
        try await Command.check("git", ["-C", clone, "format-patch", "--quiet", "--thread", "--cover-letter",
                                        "-o", directory, "HEAD~\(edits.count - exportFrom)"],
                                environment: identity)
        return directory
    }

    static func insertAfterFirstLine(_ line: String) -> (String) -> String {
        { text in
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            lines.insert(line, at: 1)
            return lines.joined(separator: "\n")
        }
    }

    func testSeriesThatApplies() async throws {
        let base = try await Self.svaKernel.value
        let series = try await makeSeries([
            ("kernel: add a kharness marker function", "kernel/fork.c",
             Self.insertAfterFirstLine("void kharness_series_marker(void);\nnoinline void kharness_series_marker(void) { }")),
            ("mm: add a second kharness marker", "mm/mmap.c",
             Self.insertAfterFirstLine("void kharness_series_marker2(void);\nnoinline void kharness_series_marker2(void) { }")),
        ])
        let tree = try await Self.tree.value
        let build = try await Self.builder().build(SourceKernelRequest(tree: tree, revision: "HEAD", series: series,
                                                                       fragments: ["smmuv3", "trace", "modules"]))
        XCTAssertEqual(build.baseCommit, base.baseCommit)
        XCTAssertNotEqual(build.builtCommit, build.baseCommit)
        XCTAssertEqual(build.patches.map(\.subject),
                       ["kernel: add a kharness marker function", "mm: add a second kharness marker"])
        XCTAssertTrue(build.patches.allSatisfy { $0.messageId?.contains("@") == true })
        XCTAssertEqual(build.patches.map(\.files), [["kernel/fork.c"], ["mm/mmap.c"]])

        // KCIDB: sha256 over the newline-terminated sha256 of each patch file,
        // computed here with coreutils rather than with the harness's code.
        let kcidb = try await Command.check("sh", ["-c", "sha256sum 0001-*.patch 0002-*.patch | cut -c-64 | sha256sum | cut -c-64"],
                                            workingDirectory: series)
        XCTAssertEqual(build.patchsetHash, kcidb.stdout.trimmingCharacters(in: .whitespacesAndNewlines))

        let symbols = try String(contentsOfFile: XCTUnwrap(build.artifacts.systemMap), encoding: .utf8)
        XCTAssertTrue(symbols.contains(" kharness_series_marker\n"), "patch 1 not in the built kernel")
        XCTAssertTrue(symbols.contains(" kharness_series_marker2\n"), "patch 2 not in the built kernel")
        XCTAssertFalse(build.cacheHit)
        XCTAssertNotEqual(build.cacheKey, base.cacheKey)
        try await assertNoScratchWorktrees(tree: tree)
    }

    /// The object directory is shared by every revision of a tree and config: an out-of-tree
    /// module built for a kernel must see that kernel's objects, whatever was built there since.
    func testObjectDirectoryHoldsTheBuildAskedFor() async throws {
        let base = try await Self.svaKernel.value
        let series = try await makeSeries([
            ("kernel: add a kharness marker function", "kernel/fork.c",
             Self.insertAfterFirstLine("void kharness_objdir_marker(void);\nnoinline void kharness_objdir_marker(void) { }")),
        ])
        let tree = try await Self.tree.value
        let patched = try await Self.builder().build(SourceKernelRequest(tree: tree, revision: "HEAD", series: series,
                                                                         fragments: ["smmuv3", "trace", "modules"]))
        XCTAssertEqual(patched.objectDirectory, base.objectDirectory)
        func holds(_ build: KernelBuild) async throws -> (head: String, marker: Bool) {
            try await Self.builder().withObjectDirectory(of: build) { obj in
                let head = try await Command.check("git", ["-C", obj + "/source", "rev-parse", "HEAD"])
                let symbols = try String(contentsOfFile: obj + "/System.map", encoding: .utf8)
                return (head.stdout.trimmingCharacters(in: .whitespacesAndNewlines),
                        symbols.contains(" kharness_objdir_marker\n"))
            }
        }
        // The patched kernel was built last; asking for the base brings its objects back.
        let forBase = try await holds(base)
        XCTAssertEqual(forBase.head, base.builtCommit)
        XCTAssertFalse(forBase.marker, "the object directory still holds the patched kernel")
        let forPatched = try await holds(patched)
        XCTAssertEqual(forPatched.head, patched.builtCommit)
        XCTAssertTrue(forPatched.marker, "the object directory still holds the base kernel")
        try await assertNoScratchWorktrees(tree: tree)
    }

    func testSeriesThatDoesNotApplyLeavesNothing() async throws {
        _ = try await Self.svaKernel.value
        // Patch 2 is exported alone, so its context still holds patch 1's line.
        let series = try await makeSeries([
            ("kernel: first edit", "kernel/exit.c", Self.insertAfterFirstLine("/* kharness first edit */")),
            ("kernel: edit on top of the first", "kernel/exit.c", { text in
                text.replacingOccurrences(of: "/* kharness first edit */\n", with: "/* kharness first edit */\n/* second */\n")
            }),
        ], exportFrom: 1)
        let tree = try await Self.tree.value
        let before = try await Self.worktrees()
        do {
            _ = try await Self.builder().build(SourceKernelRequest(tree: tree, revision: "HEAD", series: series,
                                                                   fragments: ["smmuv3", "trace", "modules"]))
            XCTFail("a series that does not apply was built")
        } catch let error as HarnessError {
            XCTAssertEqual(error.kind, .badInput)
            XCTAssertEqual(error.input, series)
            XCTAssertTrue(error.reason.contains("\"kernel: edit on top of the first\""), error.description)
            XCTAssertTrue(error.reason.contains("kernel/exit.c hunk #1 (@@ -1,"), error.description)
            XCTAssertFalse(error.description.contains("\n"))
        }
        let after = try await Self.worktrees()
        XCTAssertEqual(after, before, "a worktree was left behind")
        try await assertNoScratchWorktrees(tree: tree)
    }

    /// Worktrees of every clone the harness keeps, and leftover am dirs.
    static func worktrees() async throws -> [String] {
        let root = CacheDirectory.fromEnvironment().root
        var all: [String] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root + "/kernel-repos")) ?? []
        where name.hasSuffix(".git") {
            let list = try await Command.check("git", ["-C", root + "/kernel-repos/" + name, "worktree", "list", "--porcelain"])
            all += list.stdout.split(separator: "\n").filter { $0.hasPrefix("worktree ") }.map(String.init)
        }
        return all.sorted()
    }

    func assertNoScratchWorktrees(tree: String) async throws {
        let worktrees = try await Self.worktrees()
        XCTAssertFalse(worktrees.contains { $0.contains("/am-") }, "\(worktrees)")
        // The user's repository gains no worktree.
        let own = try await Command.check("git", ["-C", tree, "worktree", "list", "--porcelain"])
        XCTAssertEqual(own.stdout.split(separator: "\n").filter { $0.hasPrefix("worktree ") }.count, 1)
        let root = CacheDirectory.fromEnvironment().root + "/kernel-work"
        for dir in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
            let leftovers = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/" + dir)) ?? [])
                .filter { $0.hasPrefix("am-") }
            XCTAssertEqual(leftovers, [], "scratch worktree left in \(dir)")
        }
    }

    // MARK: Config

    func testFragmentWithUnknownSymbolIsACleanError() async throws {
        _ = try await Self.svaKernel.value
        let directory = NSTemporaryDirectory() + "kharness-configs-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        try Files.createDirectory(directory)
        for name in ["base", "smmuv3", "trace"] {
            try FileManager.default.copyItem(atPath: KernelSources.configDirectory + "/\(name).config",
                                             toPath: directory + "/\(name).config")
        }
        try Files.writeAtomically("CONFIG_KHARNESS_NO_SUCH_OPTION=y\nCONFIG_PROVE_LOCKING=y\n",
                                  to: directory + "/bogus.config")
        let tree = try await Self.tree.value
        do {
            _ = try await Self.builder(configDirectory: directory)
                .build(SourceKernelRequest(tree: tree, revision: "HEAD", fragments: ["smmuv3", "trace", "bogus"]))
            XCTFail("an unknown option was accepted")
        } catch let error as HarnessError {
            XCTAssertEqual(error.kind, .badInput)
            XCTAssertEqual(error.input, "bogus.config: CONFIG_KHARNESS_NO_SUCH_OPTION=y")
            XCTAssertTrue(error.reason.contains("unknown symbol"), error.description)
        }

        // An option whose dependency is off names the dependency.
        try Files.writeAtomically("CONFIG_PROVE_LOCKING=y\n", to: directory + "/bogus.config")
        do {
            _ = try await Self.builder(configDirectory: directory)
                .build(SourceKernelRequest(tree: tree, revision: "HEAD", fragments: ["smmuv3", "trace", "bogus"]))
            XCTFail("an option with an unmet dependency was accepted")
        } catch let error as HarnessError {
            XCTAssertEqual(error.input, "bogus.config: CONFIG_PROVE_LOCKING=y")
            XCTAssertTrue(error.reason.contains("unmet dependency"), error.description)
            XCTAssertTrue(error.reason.contains("CONFIG_DEBUG_KERNEL"), error.description)
        }
    }

    func testUnknownFragmentRevisionAndTreeAreBadInput() async throws {
        let tree = try await Self.tree.value
        let cases: [(SourceKernelRequest, String)] = [
            (SourceKernelRequest(tree: tree, revision: "HEAD", fragments: ["nosuch"]), "no such config fragment"),
            (SourceKernelRequest(tree: tree, revision: "v0.0-nosuch"), "unknown revision"),
            (SourceKernelRequest(tree: "/nonexistent/linux", revision: "HEAD"), "not a directory"),
            (SourceKernelRequest(tree: tree, revision: "HEAD", series: "/nonexistent/series"), "not found"),
        ]
        for (request, expected) in cases {
            do {
                _ = try await Self.builder().build(request)
                XCTFail("\(request) was accepted")
            } catch let error as HarnessError {
                XCTAssertEqual(error.kind, .badInput)
                XCTAssertTrue(error.reason.contains(expected), error.description)
            }
        }
    }
}
