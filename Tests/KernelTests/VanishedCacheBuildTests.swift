import Foundation
import Support
import VCS
import XCTest

@testable import Kernel

/// The cache removed while make runs: the build ends as an infrastructure error
/// naming the object directory, not as the kernel's BUILD_FAIL. make is a
/// stand-in first in PATH (and the tree's merge_config.sh one too), so the
/// builder's real steps run around it without compiling anything.
final class VanishedCacheBuildTests: XCTestCase {
    var root = ""
    var savedPath = ""

    override func setUp() async throws {
        root = NSTemporaryDirectory() + "kharness-vanish-\(UUID().uuidString)"
        try Files.createDirectory(root)
        savedPath = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    }

    override func tearDown() async throws {
        setenv("PATH", savedPath, 1)
        try? FileManager.default.removeItem(atPath: root)
    }

    func executable(_ text: String, at path: String) throws {
        try Files.writeAtomically(text, to: path)
        XCTAssertEqual(chmod(path, 0o755), 0)
    }

    func testACacheRemovedDuringMakeIsAnInfrastructureErrorNotBuildFail() async throws {
        for tool in ["aarch64-linux-gnu-gcc", "aarch64-linux-gnu-ld"] {
            guard (try? await Command.run(tool, ["--version"]))?.succeeded == true else {
                throw XCTSkip("no \(tool) (scripts/setup)")
            }
        }
        let cache = root + "/cache"
        let tree = root + "/linux"
        try Files.createDirectory(tree + "/scripts/kconfig")
        // merge_config.sh -m -O <dir> <fragments...>: the fragments, concatenated.
        try executable("#!/bin/sh\nshift 2\ndir=$1\nshift\ncat \"$@\" > \"$dir/.config\"\n",
                       at: tree + "/scripts/kconfig/merge_config.sh")
        let git = GitRepository(path: tree)
        try await git.check(["init", "--quiet"])
        try await git.check(["add", "."])
        try await git.check(["-c", "user.name=k", "-c", "user.email=k@example.invalid", "commit", "--quiet", "-m", "tree"])

        let bin = root + "/bin"
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
            case $target in
            allnoconfig) cat "$all" > "$obj/$kconfig" ;;
            olddefconfig) ;;
            Image)
                echo "  CC      kernel/fork.o"
                rm -rf '\(cache)'
                echo "kernel/fork.c:1: fatal error: opening dependency file kernel/.fork.o.d: No such file or directory"
                exit 2 ;;
            esac
            """, at: bin + "/make")
        setenv("PATH", bin + ":" + savedPath, 1)

        let configs = root + "/configs"
        try Files.createDirectory(configs)
        try Files.writeAtomically("CONFIG_FOO=y\n", to: configs + "/base.config")
        let builder = KernelBuilder(cache: CacheDirectory(root: cache), configDirectory: configs)
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
}
