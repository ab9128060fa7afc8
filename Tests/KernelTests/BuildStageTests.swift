import Foundation
import Support
import Synchronization
import VCS
import XCTest

@testable import Kernel

/// `KernelBuilder.build`'s stages: the cache key every stored kernel is found
/// by, bad input found before any lock or clone, and whole builds (a miss, a
/// hit, a rebuild, a series, a compiler error, a cache removed during make)
/// around a stand-in make that writes a kernel's artifacts without compiling,
/// so build.json is checked field by field.
final class BuildStageTests: XCTestCase {
    var root = ""
    var savedPath = ""

    override func setUp() async throws {
        root = NSTemporaryDirectory() + "kharness-stages-\(UUID().uuidString)"
        try Files.createDirectory(root)
        savedPath = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    }

    override func tearDown() async throws {
        setenv("PATH", savedPath, 1)
        try? FileManager.default.removeItem(atPath: root)
    }

    /// The key is the SHA-256 of a fixed text; these are `printf '...' | sha256sum`
    /// of it. A change here is a rebuild of every kernel in every cache.
    func testTheCacheKeyIsTheOneEveryStoredKernelIsFoundBy() {
        let commit = "0123456789abcdef0123456789abcdef01234567"
        XCTAssertEqual(KernelBuilder.cacheKey(baseCommit: commit, patchsetHash: "", configHash: "c0ffee",
                                              toolchain: "gcc 14; ld 2.44"),
                       "a828b4e4ab96ffb9ae1da82b9216c46c88b3cd2262760ace21750deb2234f080")
        XCTAssertEqual(KernelBuilder.cacheKey(baseCommit: commit, patchsetHash: "9f86d081884c7d65", configHash: "c0ffee",
                                              toolchain: "gcc 14; ld 2.44"),
                       "1aefac3e1936c96d348271d75363a039326f76a7700c92ae66442b3df918d76f")
    }

    /// The resolve stage refuses a missing tree, a directory that is no
    /// repository and an unknown revision as bad input, and touches no work directory.
    func testBadInputIsRefusedBeforeAnyWorkDirectory() async throws {
        let cache = CacheDirectory(root: root + "/cache")
        let configs = root + "/configs"
        try Files.createDirectory(configs)
        try Files.writeAtomically("CONFIG_FOO=y\n", to: configs + "/base.config")
        let builder = KernelBuilder(cache: cache, configDirectory: configs)
        let plain = root + "/plain"
        try Files.createDirectory(plain)
        let tree = root + "/linux"
        try Files.createDirectory(tree)
        let git = GitRepository(path: tree)
        try await git.check(["init", "--quiet"])
        try Files.writeAtomically("x\n", to: tree + "/Makefile")
        try await git.check(["add", "."])
        try await git.check(["-c", "user.name=k", "-c", "user.email=k@example.invalid", "commit", "--quiet", "-m", "tree"])
        let cases = [
            (root + "/missing", "HEAD", "tree '\(root)/missing' is not a directory"),
            (plain, "HEAD", "tree '\(plain)' is not a git repository"),
            (tree, "no-such-tag", "unknown revision 'no-such-tag' in \(tree)"),
        ]
        for (path, revision, reason) in cases {
            do {
                _ = try await builder.build(SourceKernelRequest(tree: path, revision: revision))
                XCTFail("\(path)@\(revision) was built")
            } catch let error as HarnessError {
                XCTAssertEqual(error.kind, .badInput)
                XCTAssertEqual(error.input, "git:\(path)@\(revision)")
                XCTAssertEqual(error.reason, reason)
            }
        }
        XCTAssertFalse(Files.exists(cache.root + "/kernel-work"))
        XCTAssertFalse(Files.exists(cache.root + "/kernel-repos"))
    }

    func executable(_ text: String, at path: String) throws {
        try Files.writeAtomically(text, to: path)
        XCTAssertEqual(chmod(path, 0o755), 0)
    }

    /// A small tree with the tree's scripts/kconfig/merge_config.sh stood in,
    /// a make first in PATH that configures by copying and "compiles" by
    /// writing the artifacts, and a `base` fragment. The cache is `<root>/cache`;
    /// a `<root>/break` file makes the compile fail, `<root>/vanish` makes it
    /// remove the cache first.
    func standIns() async throws -> (tree: String, builder: KernelBuilder, makeCalls: String) {
        for tool in ["aarch64-linux-gnu-gcc", "aarch64-linux-gnu-ld"] {
            guard (try? await Command.run(tool, ["--version"]))?.succeeded == true else {
                throw XCTSkip("no \(tool) (scripts/setup)")
            }
        }
        let tree = root + "/linux"
        try Files.createDirectory(tree + "/scripts/kconfig")
        try Files.createDirectory(tree + "/kernel")
        try executable("#!/bin/sh\nshift 2\ndir=$1\nshift\ncat \"$@\" > \"$dir/.config\"\n",
                       at: tree + "/scripts/kconfig/merge_config.sh")
        try Files.writeAtomically("int a;\n", to: tree + "/kernel/fork.c")
        let git = GitRepository(path: tree)
        try await git.check(["init", "--quiet"])
        try await git.check(["add", "."])
        try await git.check(["-c", "user.name=k", "-c", "user.email=k@example.invalid", "commit", "--quiet", "-m", "tree"])
        try await git.check(["tag", "v0.1"])

        let bin = root + "/bin"
        let calls = root + "/make-calls"
        try Files.createDirectory(bin)
        try executable("""
            #!/bin/sh
            obj= kconfig= all= target=
            for a; do
                case $a in
                O=*) obj=${a#O=} ;;
                KCONFIG_CONFIG=*) kconfig=${a#KCONFIG_CONFIG=} ;;
                KCONFIG_ALLCONFIG=*) all=${a#KCONFIG_ALLCONFIG=} ;;
                -*|*=*) ;;
                *) target=$a ;;
                esac
            done
            echo "$target" >> '\(calls)'
            case $target in
            allnoconfig) cat "$all" > "$obj/$kconfig" ;;
            olddefconfig) ;;
            Image)
                echo "  CC      kernel/fork.o"
                if [ -e '\(root)/vanish' ]; then
                    rm -rf '\(root)/cache'
                    echo "kernel/fork.c:1: fatal error: opening dependency file kernel/.fork.o.d: No such file or directory"
                    exit 2
                fi
                if [ -e '\(root)/break' ]; then
                    echo "kernel/fork.c:1:5: error: expected ';' before 'int'"
                    exit 2
                fi
                echo "  LD      vmlinux"
                mkdir -p "$obj/arch/arm64/boot" "$obj/include/config"
                echo image > "$obj/arch/arm64/boot/Image"
                echo map > "$obj/System.map"
                echo elf > "$obj/vmlinux"
                echo 6.12.0-test > "$obj/include/config/kernel.release" ;;
            esac
            """, at: bin + "/make")
        setenv("PATH", bin + ":" + savedPath, 1)

        let configs = root + "/configs"
        try Files.createDirectory(configs)
        try Files.writeAtomically("CONFIG_FOO=y\n", to: configs + "/base.config")
        let builder = KernelBuilder(cache: CacheDirectory(root: root + "/cache"), configDirectory: configs)
        return (tree, builder, calls)
    }

    /// A miss compiles and stores a whole entry whose build.json is the
    /// returned build up to the store's last moment; the next request is a hit
    /// that runs no make; `rebuild` compiles again under the same key.
    func testAMissStoresTheEntryAndTheNextRequestHitsIt() async throws {
        let (tree, builder, calls) = try await standIns()
        let head = try await GitRepository(path: tree).resolve("HEAD")
        let phases = PhaseLog()
        var reporting = builder
        reporting.progress = { phases.append($0.phase) }

        let built = try await reporting.build(SourceKernelRequest(tree: tree, revision: "HEAD"))
        XCTAssertEqual(phases.all, [.cacheLookup, .checkout, .configuring, .compiling, .storing, .done])
        let key = KernelBuilder.cacheKey(baseCommit: head, patchsetHash: "", configHash: built.configHash,
                                         toolchain: try await KernelBuilder.toolchainVersion())
        let entry = root + "/cache/kernel-builds/" + key
        XCTAssertEqual(built.cacheKey, key)
        XCTAssertFalse(built.cacheHit)
        XCTAssertEqual(built.baseCommit, head)
        XCTAssertEqual(built.builtCommit, head)
        XCTAssertEqual(built.revision, "HEAD")
        XCTAssertEqual(built.tree, tree)
        XCTAssertEqual(built.configFragments, ["base"])
        XCTAssertEqual(built.objectsBuilt, 2)
        XCTAssertEqual(built.artifacts.image, entry + "/Image")
        XCTAssertEqual(built.artifacts.release, "6.12.0-test")
        XCTAssertNil(built.artifacts.modulesDirectory)
        XCTAssertNil(built.coverageDirectory)
        XCTAssertEqual(built.artifacts.identity, "git:\(tree)@\(head) config:base")
        XCTAssertEqual(built.buildLog, entry + "/build.log")
        XCTAssertEqual(Set(built.timings.keys), ["cache", "checkout", "config", "compile", "store"])
        for file in ["Image", "System.map", "vmlinux", "config", "build.log", "build.json", ".last-used"] {
            XCTAssertTrue(Files.exists(entry + "/" + file), file)
        }
        let stored = try JSONDecoder().decode(KernelBuild.self,
                                              from: try Data(contentsOf: URL(fileURLWithPath: entry + "/build.json")))
        var expected = built
        expected.timings = stored.timings
        XCTAssertEqual(stored, expected)
        XCTAssertEqual(Set(stored.timings.keys), Set(built.timings.keys))
        XCTAssertLessThanOrEqual(stored.timings["store"]!, built.timings["store"]!)
        let buildsDirectory = try FileManager.default.contentsOfDirectory(atPath: root + "/cache/kernel-builds")
        XCTAssertEqual(buildsDirectory, [key], "a staging directory was left behind")
        XCTAssertEqual(try String(contentsOfFile: built.objectDirectory! + "/" + KernelBuilder.builtStamp, encoding: .utf8), key)
        // The work directory's lock is free again.
        let workDir = root + "/cache/kernel-work/" + KernelBuilder.treeKey(tree)
        XCTAssertNoThrow(try FileLock(path: workDir + "/.lock", wait: false).unlock())

        let makesBefore = try String(contentsOfFile: calls, encoding: .utf8)
        phases.clear()
        let hit = try await reporting.build(SourceKernelRequest(tree: tree, revision: "v0.1"))
        XCTAssertEqual(phases.all, [.cacheLookup, .done])
        XCTAssertTrue(hit.cacheHit)
        XCTAssertEqual(hit.cacheKey, key)
        XCTAssertEqual(hit.revision, "v0.1")
        XCTAssertEqual(hit.objectsBuilt, 0)
        XCTAssertEqual(Array(hit.timings.keys), ["cache"])
        XCTAssertEqual(hit.objectDirectory, built.objectDirectory)
        XCTAssertEqual(try String(contentsOfFile: calls, encoding: .utf8), makesBefore, "a cache hit ran make")

        let rebuilt = try await builder.build(SourceKernelRequest(tree: tree, revision: "HEAD", rebuild: true))
        XCTAssertFalse(rebuilt.cacheHit)
        XCTAssertEqual(rebuilt.cacheKey, key)
        XCTAssertTrue(try String(contentsOfFile: calls, encoding: .utf8).hasSuffix("Image\n"))
    }

    /// A compiler error is the kernel's BUILD_FAIL, quoting it and naming the
    /// log; nothing is stored, the lock is released, and the same request
    /// compiles again once the tree is fixed.
    func testACompilerErrorIsBuildFailAndStoresNothing() async throws {
        let (tree, builder, _) = try await standIns()
        try Files.writeAtomically("", to: root + "/break")
        let log = root + "/build.log"
        do {
            _ = try await builder.build(SourceKernelRequest(tree: tree, revision: "HEAD"), logPath: log)
            XCTFail("the build succeeded")
        } catch let failure as KernelBuildFailure {
            XCTAssertEqual(failure.kernel, "git:\(tree)@HEAD")
            XCTAssertEqual(failure.reason, "kernel/fork.c:1:5: error: expected ';' before 'int'")
            XCTAssertEqual(failure.logPath, log)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/cache/kernel-builds"), [])
        let workDir = root + "/cache/kernel-work/" + KernelBuilder.treeKey(tree)
        XCTAssertNoThrow(try FileLock(path: workDir + "/.lock", wait: false).unlock())
        try FileManager.default.removeItem(atPath: root + "/break")
        let built = try await builder.build(SourceKernelRequest(tree: tree, revision: "HEAD"), logPath: log)
        XCTAssertFalse(built.cacheHit)
    }

    /// The cache removed while make runs: the build ends as an infrastructure
    /// error naming the object directory, not as the kernel's BUILD_FAIL.
    func testACacheRemovedDuringMakeIsAnInfrastructureErrorNotBuildFail() async throws {
        let (tree, builder, _) = try await standIns()
        let cache = root + "/cache"
        try Files.writeAtomically("", to: root + "/vanish")
        do {
            _ = try await builder.build(SourceKernelRequest(tree: tree, revision: "HEAD"))
            XCTFail("the build succeeded")
        } catch let failure as KernelBuildFailure {
            XCTFail("the kernel was blamed: \(failure)")
        } catch let error as HarnessError {
            XCTAssertEqual(error.kind, .infrastructure)
            XCTAssertTrue(error.input.hasPrefix(cache + "/kernel-work/"), error.description)
            XCTAssertEqual(error.reason, "the build's work tree or object directory disappeared during the build")
        }
        XCTAssertFalse(Files.exists(cache))
    }

    /// A series moves the built commit off the base, adds the patch phase
    /// and the patchset to the key and the identity.
    func testASeriesIsPatchedKeyedAndNamed() async throws {
        let (tree, builder, _) = try await standIns()
        let git = GitRepository(path: tree)
        let base = try await git.resolve("HEAD")
        try Files.writeAtomically("int a;\nint b;\n", to: tree + "/kernel/fork.c")
        try await git.check(["-c", "user.name=k", "-c", "user.email=k@example.invalid", "commit", "--quiet", "-am", "fork: add b"])
        let mbox = root + "/series.mbox"
        try Files.writeAtomically(try await git.check(["format-patch", "--stdout", "-1", "HEAD"]), to: mbox)
        try await git.check(["reset", "--quiet", "--hard", base])
        let series = try PatchSeries(path: mbox)

        let built = try await builder.build(SourceKernelRequest(tree: tree, revision: "HEAD", series: mbox))
        XCTAssertEqual(built.baseCommit, base)
        XCTAssertNotEqual(built.builtCommit, base)
        XCTAssertEqual(built.patchsetHash, series.patchsetHash)
        XCTAssertEqual(built.patches.count, 1)
        let toolchain = try await KernelBuilder.toolchainVersion()
        XCTAssertEqual(built.cacheKey, KernelBuilder.cacheKey(baseCommit: base, patchsetHash: series.patchsetHash,
                                                              configHash: built.configHash, toolchain: toolchain))
        XCTAssertEqual(built.artifacts.identity, "git:\(tree)@\(base)+patchset:\(series.patchsetHash.prefix(16)) config:base")
        XCTAssertEqual(Set(built.timings.keys), ["cache", "patch", "checkout", "config", "compile", "store"])
    }
}

/// Build phases as a progress callback reports them.
final class PhaseLog: Sendable {
    private let phases = Mutex<[BuildProgress.Phase]>([])

    func append(_ phase: BuildProgress.Phase) {
        // The compile phase reports once more per object line.
        phases.withLock { if $0.last != phase { $0.append(phase) } }
    }

    var all: [BuildProgress.Phase] { phases.withLock { $0 } }
    func clear() { phases.withLock { $0 = [] } }
}
