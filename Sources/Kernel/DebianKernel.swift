import Foundation
import Support

/// Debian's prebuilt arm64 kernels, fetched with apt into the cache and
/// unpacked once per package version.
public struct DebianKernelFetcher: Sendable {
    public var cache: CacheDirectory

    public init(cache: CacheDirectory) { self.cache = cache }

    /// One version of the `linux-image-arm64` metapackage as apt knows it.
    struct Candidate: Equatable, Codable {
        var metaVersion: String
        var imagePackage: String
        var extraPackages: [String]

        /// `6.1.192-2` -> `6.1.192`; `7.3.4-1~bpo13+1` -> `7.3.4`.
        var upstream: String {
            String(metaVersion.prefix { $0 != "-" && $0 != "~" && $0 != "+" })
        }
    }

    /// Parses `apt-cache show linux-image-arm64:arm64` into the kernels it offers.
    static func candidates(fromAptShow text: String) -> [Candidate] {
        var result: [Candidate] = []
        for paragraph in text.components(separatedBy: "\n\n") {
            var version: String?
            var depends: String?
            for line in paragraph.split(separator: "\n") {
                if line.hasPrefix("Version: ") { version = String(line.dropFirst(9)) }
                if line.hasPrefix("Depends: ") { depends = String(line.dropFirst(9)) }
            }
            guard let version, let depends else { continue }
            let names = depends.split(separator: ",").map {
                String($0.trimmingCharacters(in: .whitespaces).prefix { $0 != " " && $0 != "(" })
            }
            guard let image = names.first(where: { $0.hasPrefix("linux-image-") }) else { continue }
            // From 7.3 on, modules come in their own package beside the image.
            let splitModules = names.contains("linux-modules-arm64")
            let extras = splitModules ? [image.replacingOccurrences(of: "linux-image-", with: "linux-modules-")] : []
            result.append(Candidate(metaVersion: version, imagePackage: image, extraPackages: extras))
        }
        return result
    }

    /// The newest candidate whose upstream version is `requested` or starts with `requested.`.
    static func choose(_ requested: String, from candidates: [Candidate]) -> Candidate? {
        candidates
            .filter { $0.upstream == requested || $0.upstream.hasPrefix(requested + ".") }
            .max { compareVersions($0.upstream, $1.upstream) < 0 }
    }

    static func compareVersions(_ a: String, _ b: String) -> Int {
        let x = a.split(separator: ".").map { Int($0) ?? 0 }
        let y = b.split(separator: ".").map { Int($0) ?? 0 }
        for i in 0..<max(x.count, y.count) {
            let l = i < x.count ? x[i] : 0, r = i < y.count ? y[i] : 0
            if l != r { return l < r ? -1 : 1 }
        }
        return 0
    }

    public func fetch(version requested: String) async throws -> KernelArtifacts {
        let spec = "debian:\(requested)"
        let root = try cache.directory("debian-kernels")
        let chosen = try await resolve(requested, spec: spec, root: root)
        let key = "\(chosen.imagePackage)_\(chosen.metaVersion)".replacingOccurrences(of: "/", with: "_")
        let final = "\(root)/\(key)"
        if let cached = try? Self.loadArtifacts(final) { return cached }
        return try await unpack(chosen, spec: spec, root: root, key: key)
    }

    /// Asking apt takes seconds; its answer only changes when the package
    /// lists do, so it is remembered per version and lists timestamp.
    private func resolve(_ requested: String, spec: String, root: String) async throws -> Candidate {
        let lists = (try? FileManager.default.attributesOfItem(atPath: "/var/lib/apt/lists")[.modificationDate] as? Date)?
            .timeIntervalSince1970 ?? 0
        let memo = "\(root)/resolve-\(requested)-\(Int(lists)).json"
        if let data = try? Data(contentsOf: URL(fileURLWithPath: memo)),
           let candidate = try? JSONDecoder().decode(Candidate.self, from: data) {
            return candidate
        }
        let show = try await Command.run("apt-cache", ["show", "linux-image-arm64:arm64"])
        let all = Self.candidates(fromAptShow: show.stdout)
        guard !all.isEmpty else {
            throw HarnessError.infrastructure(spec, "apt knows no linux-image-arm64:arm64; run scripts/setup (enables arm64 and the kernel suites)")
        }
        guard let chosen = Self.choose(requested, from: all) else {
            let known = Set(all.map { $0.upstream.split(separator: ".").prefix(2).joined(separator: ".") })
                .sorted { Self.compareVersions($0, $1) < 0 }
            throw HarnessError.badInput(spec, "no such Debian arm64 kernel; available: \(known.joined(separator: ", "))")
        }
        try? Files.writeAtomically(try JSONEncoder().encode(chosen), to: memo)
        return chosen
    }

    private func unpack(_ chosen: Candidate, spec: String, root: String, key: String) async throws -> KernelArtifacts {
        let final = "\(root)/\(key)"
        let staging = "\(root)/.\(key).partial-\(getpid())"
        try? FileManager.default.removeItem(atPath: staging)
        try Files.createDirectory(staging + "/debs")
        defer { try? FileManager.default.removeItem(atPath: staging) }

        for package in [chosen.imagePackage] + chosen.extraPackages {
            try await Command.check("apt-get", ["download", "-q", "\(package):arm64=\(chosen.metaVersion)"],
                                    workingDirectory: staging + "/debs", input: spec)
        }
        let debs = try FileManager.default.contentsOfDirectory(atPath: staging + "/debs").filter { $0.hasSuffix(".deb") }
        for deb in debs {
            try await Command.check("dpkg-deb", ["-x", "\(staging)/debs/\(deb)", "\(staging)/root"], input: deb)
        }
        let boot = "\(staging)/root/boot"
        let bootFiles = (try? FileManager.default.contentsOfDirectory(atPath: boot)) ?? []
        guard let vmlinuz = bootFiles.first(where: { $0.hasPrefix("vmlinuz-") }) else {
            throw HarnessError.infrastructure(spec, "package \(chosen.imagePackage) has no /boot/vmlinuz-*")
        }
        let release = String(vmlinuz.dropFirst("vmlinuz-".count))
        let out = "\(staging)/out"
        try Files.createDirectory(out)
        try await KernelImageFile.decompress("\(boot)/\(vmlinuz)", to: "\(out)/Image")
        if bootFiles.contains("config-\(release)") {
            try FileManager.default.moveItem(atPath: "\(boot)/config-\(release)", toPath: "\(out)/config")
        }
        if bootFiles.contains("System.map-\(release)") {
            try FileManager.default.moveItem(atPath: "\(boot)/System.map-\(release)", toPath: "\(out)/System.map")
        }
        var modules: String?
        let modulesSource = "\(staging)/root/lib/modules/\(release)"
        if Files.isDirectory(modulesSource) {
            try Files.createDirectory("\(out)/modules/lib/modules")
            try FileManager.default.moveItem(atPath: modulesSource, toPath: "\(out)/modules/lib/modules/\(release)")
            try await Command.check("depmod", ["-b", "\(out)/modules", release], input: spec)
            modules = "modules/lib/modules/\(release)"
        }
        let relative = KernelArtifacts(
            image: "Image", modulesDirectory: modules,
            config: Files.exists("\(out)/config") ? "config" : nil,
            release: release,
            systemMap: Files.exists("\(out)/System.map") ? "System.map" : nil,
            identity: "debian:\(chosen.imagePackage)=\(chosen.metaVersion)")
        try Files.writeAtomically(try JSONEncoder().encode(relative), to: "\(out)/artifacts.json")
        if rename(out, final) != 0, !Files.exists(final + "/artifacts.json") {
            throw HarnessError.infrastructure(final, "cannot move unpacked kernel into the cache: \(String(cString: strerror(errno)))")
        }
        return try Self.loadArtifacts(final)
    }

    /// Artifacts are stored with paths relative to their directory so the
    /// cache can move; this makes them absolute again.
    static func loadArtifacts(_ directory: String) throws -> KernelArtifacts {
        let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/artifacts.json"))
        var a = try JSONDecoder().decode(KernelArtifacts.self, from: data)
        let abs = { (p: String) in directory + "/" + p }
        a.image = abs(a.image)
        a.modulesDirectory = a.modulesDirectory.map(abs)
        a.config = a.config.map(abs)
        a.systemMap = a.systemMap.map(abs)
        a.vmlinux = a.vmlinux.map(abs)
        return a
    }
}

/// Recognises what a file claimed to be a kernel really is, so a wrong path
/// fails in seconds with a reason instead of a guest that never prints.
public enum KernelImageFile {
    public enum Format: Equatable { case arm64Image, gzip, efiZboot }

    /// arm64 Image header: "ARM\x64" magic at offset 56; gzip: 1f 8b; EFI
    /// zboot: "MZ" then "zimg" at offset 4.
    public static func format(of path: String) throws -> Format? {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw HarnessError.badInput(path, "cannot open kernel image")
        }
        defer { try? handle.close() }
        let head = [UInt8]((try? handle.read(upToCount: 64)) ?? Data())
        if head.count >= 64, head[56] == 0x41, head[57] == 0x52, head[58] == 0x4d, head[59] == 0x64 {
            return .arm64Image
        }
        if head.count >= 2, head[0] == 0x1f, head[1] == 0x8b { return .gzip }
        if head.count >= 8, head[0] == 0x4d, head[1] == 0x5a, Array(head[4..<8]) == Array("zimg".utf8) {
            return .efiZboot
        }
        return nil
    }

    /// Validates a user-supplied image and says why it is not a kernel.
    public static func validate(_ path: String) throws {
        guard Files.exists(path) else { throw HarnessError.badInput(path, "no such file") }
        guard try format(of: path) != nil else {
            throw HarnessError.badInput(path, "not an arm64 kernel Image (no ARM\\x64 magic at offset 56, not gzip, not EFI zboot)")
        }
    }

    /// An `image:` kernel's identity: `image:<SHA-256 of the file>`, so the same
    /// image under another path is the same kernel and one rebuilt in place
    /// is not. The runner records it and the matrix groups cells by it.
    public static func identity(of path: String) throws -> String {
        "image:\(try Digest.sha256(file: path))"
    }

    /// Puts an uncompressed Image at `destination`, consuming `source`.
    static func decompress(_ source: String, to destination: String) async throws {
        switch try format(of: source) {
        case .gzip:
            let tmp = destination + ".tmp"
            try await Command.check("sh", ["-c", "gzip -dc \"$1\" > \"$2\"", "sh", source, tmp], input: source)
            try FileManager.default.moveItem(atPath: tmp, toPath: destination)
        case .arm64Image, .efiZboot:
            // QEMU unpacks EFI zboot images itself.
            try FileManager.default.moveItem(atPath: source, toPath: destination)
        case nil:
            throw HarnessError.infrastructure(source, "not a kernel image")
        }
    }
}
