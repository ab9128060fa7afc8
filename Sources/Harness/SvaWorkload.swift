import Foundation
import Kernel
import Support

/// The guest-side pieces of the `sva` workload: the accelerator driver built
/// out of tree against the kernel under test, and the static workload
/// program. Both are cached by their inputs.
struct SvaWorkloadBuilder {
    /// How the driver binds (`kharness.sva.pattern=` on the command line, the module's
    /// `pattern`; guest/driver/sva_accel.c's header says what each does).
    static let bindingPatterns = ["careful", "uacce", "deferred", "uio"]

    /// The pattern the command line asks for (the last `kharness.sva.pattern=`, as the
    /// guest's init reads them), `careful` when none does.
    static func bindingPattern(_ cmdline: [String]) -> String {
        cmdline.last { $0.hasPrefix("kharness.sva.pattern=") }.map { String($0.dropFirst("kharness.sva.pattern=".count)) }
            ?? "careful"
    }

    /// A pattern the driver does not know would fail its insmod in the guest, where it
    /// reads as the kernel's failure: refused before anything is built.
    static func validate(cmdline: [String]) throws {
        for word in cmdline where word.hasPrefix("kharness.sva.pattern=") {
            let pattern = String(word.dropFirst("kharness.sva.pattern=".count))
            guard bindingPatterns.contains(pattern) else {
                throw HarnessError.badInput(word, "unknown binding pattern (known: \(bindingPatterns.joined(separator: ", ")))")
            }
        }
    }

    var cache: CacheDirectory
    var guest: String

    struct Output {
        var module: String?
        /// Why there is no module (a Debian kernel has no kbuild tree here).
        var moduleMissing: String?
        var program: String
    }

    func build(kernel: KernelArtifacts, build: KernelBuild?, logDirectory: String) async throws -> Output {
        let program = try await buildProgram(logDirectory: logDirectory)
        guard let build, build.objectDirectory != nil else {
            return Output(module: nil, moduleMissing: "no kbuild tree for \(kernel.identity): the driver is built only for git: kernels",
                          program: program)
        }
        let module = try await buildModule(build: build, logDirectory: logDirectory)
        return Output(module: module, moduleMissing: nil, program: program)
    }

    private func sourcesDigest(_ directory: String, files: [String]) throws -> String {
        try files.map { "\($0) \(try Digest.sha256(file: "\(directory)/\($0)"))" }.joined(separator: "\n")
    }

    private func buildProgram(logDirectory: String) async throws -> String {
        let compiler = try await Command.check("aarch64-linux-gnu-gcc", ["-dumpfullversion"]).stdout
        let inputs = try sourcesDigest("\(guest)/workload", files: ["Makefile", "kharness-sva.c"])
            + (try sourcesDigest("\(guest)/driver", files: ["sva_accel_uapi.h"])) + compiler
        let key = Digest.sha256(inputs)
        let out = try cache.directory("workloads", "sva-\(key)")
        let binary = "\(out)/kharness-sva"
        if Files.exists(binary) { return binary }
        let work = try stage(["workload", "driver"], key: key)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let result = try await Command.run("make", ["-C", "\(work)/workload"])
        try Files.writeAtomically(result.stdout + result.stderr, to: "\(logDirectory)/workload-build.log")
        guard result.succeeded else {
            throw HarnessError.infrastructure("guest/workload", "build failed: \(result.lastErrorLine)")
        }
        try publish("\(work)/workload/kharness-sva", to: binary)
        return binary
    }

    private func buildModule(build: KernelBuild, logDirectory: String) async throws -> String {
        let inputs = try sourcesDigest("\(guest)/driver", files: ["Kbuild", "Makefile", "sva_accel.c", "sva_accel_trace.h", "sva_accel_uapi.h"])
        let key = Digest.sha256(inputs + "\n" + build.cacheKey)
        let out = try cache.directory("modules", "sva_accel-\(key)")
        let module = "\(out)/sva_accel.ko"
        if Files.exists(module) { return module }
        let work = try stage(["driver"], key: key)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let kernels = KernelBuilder(cache: cache, configDirectory: try KernelBuilder.defaultConfigDirectory())
        try await kernels.withObjectDirectory(of: build) { objectDirectory in
            let result = try await Command.run("make", ["-C", "\(work)/driver", "KDIR=\(objectDirectory)",
                                                        "ARCH=arm64", "CROSS_COMPILE=aarch64-linux-gnu-"])
            try Files.writeAtomically(result.stdout + result.stderr, to: "\(logDirectory)/module-build.log")
            guard result.succeeded else {
                throw HarnessError.infrastructure("guest/driver", "module build against \(objectDirectory) failed: \(result.lastErrorLine)")
            }
        }
        try publish("\(work)/driver/sva_accel.ko", to: module)
        return module
    }

    /// Moves a build output into the cache with rename(2), which replaces an
    /// entry another run (a parallel matrix cell) put there meanwhile from
    /// the same inputs, where FileManager.moveItem would fail.
    private func publish(_ source: String, to destination: String) throws {
        guard rename(source, destination) == 0 else {
            throw HarnessError.infrastructure(destination, "cannot move the build into the cache: \(String(cString: strerror(errno)))")
        }
    }

    /// Copies guest sources to a scratch directory, so builds never write
    /// into the checkout and two runs never share a build directory.
    private func stage(_ directories: [String], key: String) throws -> String {
        // Scratch directories of builds killed outright (named <key>-<pid>-<random>).
        Files.reclaimStale(in: cache.root + "/tmp", prefix: "", pidField: 1)
        let work = try cache.directory("tmp", "\(key.prefix(16))-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        for dir in directories {
            try FileManager.default.copyItem(atPath: "\(guest)/\(dir)", toPath: "\(work)/\(dir)")
            // A binary left in the checkout by a manual build is not an input.
            try? FileManager.default.removeItem(atPath: "\(work)/\(dir)/kharness-sva")
        }
        return work
    }
}
