import ArgumentParser
import Foundation
import Kernel
import RunModel
import Support

/// `kharness build`: builds a kernel from a git tree into the cache and
/// prints where its Image, modules and symbols are.
struct BuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build a kernel from a git tree (optionally with a patch series) into the cache.",
        discussion: """
            Exit status: 0 built or found in the cache, 1 BUILD_FAIL (the kernel does not compile),
            2 bad input (tree, revision, series, fragment, an option the tree cannot set),
            3 infrastructure (git, make, the toolchain).
            """
    )

    @Option(help: "The kernel, as git:<tree>@<rev>.")
    var kernel: String

    @Option(help: "A directory of git format-patch files or a b4 am mbox, applied with git am.")
    var series: String?

    @Option(help: "Config fragments from guest/configs on top of base, comma-separated (e.g. smmuv3,trace).")
    var config: String = ""

    @Option(help: "Directory holding the config fragments (default: guest/configs of this checkout).")
    var configDirectory: String?

    @Option(help: "Also write the full build log here.")
    var log: String?

    @Flag(help: "Run make even when the cache holds this kernel.")
    var rebuild = false

    @Flag(help: "Print the build record as JSON instead of a summary.")
    var json = false

    func run() async throws {
        try await exitOnError {
            let spec = try KernelSpec(parsing: kernel)
            let fragments = config.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
            var request = try SourceKernelRequest(spec: spec, series: series, fragments: fragments)
            request.rebuild = rebuild
            let directory = try configDirectory ?? KernelBuilder.defaultConfigDirectory()
            let status = TerminalStatus()
            let builder = KernelBuilder(cache: .fromEnvironment(), configDirectory: directory) { status.show($0) }
            let build: KernelBuild
            do {
                build = try await builder.build(request, logPath: log)
            } catch let failure as KernelBuildFailure {
                status.clear()
                FileHandle.standardError.write(Data("kharness: \(failure)\n".utf8))
                throw ExitCode(ExitStatus.failure)
            }
            status.clear()
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(build), as: UTF8.self))
                return
            }
            let total = build.timings.values.reduce(0, +)
            print("kernel    \(build.artifacts.identity)")
            print("commit    \(build.builtCommit)\(build.patches.isEmpty ? "" : " (base \(build.baseCommit))")")
            for (index, patch) in build.patches.enumerated() {
                print("patch     \(index + 1)/\(build.patches.count) \(patch.subject)"
                      + (patch.messageId.map { " <\($0)>" } ?? ""))
            }
            if !build.patchsetHash.isEmpty { print("patchset  \(build.patchsetHash)") }
            print("release   \(build.artifacts.release ?? "?")")
            print("image     \(build.artifacts.image)")
            if let modules = build.artifacts.modulesDirectory { print("modules   \(modules)") }
            print("config    \(build.artifacts.config ?? "")")
            print("symbols   \(build.artifacts.systemMap ?? "") \(build.artifacts.vmlinux ?? "")")
            print("log       \(build.buildLog)")
            print(String(format: "%@ %.1f s", build.cacheHit ? "cache hit" : "built in", total)
                  + (build.cacheHit ? "" : ", \(build.objectsBuilt) objects"))
        }
    }
}

/// One self-overwriting status line on a terminal; otherwise (logs, CI) a
/// line per phase and every 30 s.
/// `@unchecked`: its vars change only with `lock` held, which also keeps each stderr write whole.
final class TerminalStatus: @unchecked Sendable {
    private let lock = NSLock()
    private let interactive = isatty(STDERR_FILENO) != 0
    private var lastPhase: BuildProgress.Phase?
    private var lastPrinted = 0.0
    private var shown = false

    func show(_ progress: BuildProgress) {
        lock.lock()
        defer { lock.unlock() }
        if interactive {
            FileHandle.standardError.write(Data("\r\u{1B}[Kbuild: \(progress.line)".utf8))
            shown = true
        } else if progress.phase != .cacheLookup,
                  progress.phase != lastPhase || progress.elapsed - lastPrinted >= 30 {
            FileHandle.standardError.write(Data("build: \(progress.line)\n".utf8))
            lastPrinted = progress.elapsed
        }
        lastPhase = progress.phase
    }

    func clear() {
        lock.lock()
        defer { lock.unlock() }
        if interactive && shown { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        shown = false
    }
}
