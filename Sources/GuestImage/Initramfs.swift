import Foundation
import Support

/// What goes into a guest's initramfs: busybox, the harness's /init, the
/// workload scripts and binaries, and optionally a kernel's modules.
public struct InitramfsSpec: Sendable {
    /// A file from the host placed at `guestPath`.
    public struct HostFile: Sendable, Equatable {
        public var hostPath: String
        public var guestPath: String
        public var mode: UInt32
        public init(hostPath: String, guestPath: String, mode: UInt32 = 0o644) {
            self.hostPath = hostPath
            self.guestPath = guestPath
            self.mode = mode
        }
    }

    /// Kernel modules to carry: the named ones and what they depend on,
    /// taken from a `lib/modules/<release>` directory with a modules.dep.
    public struct Modules: Sendable, Equatable {
        public var directory: String
        public var names: [String]
        public init(directory: String, names: [String]) {
            self.directory = directory
            self.names = names
        }
    }

    public var busybox: String
    public var files: [HostFile]
    public var modules: Modules?

    /// The guests' busybox: `$KHARNESS_BUSYBOX`, else the arm64 static
    /// busybox that scripts/setup extracts from Debian's busybox-static:arm64
    /// into the cache. Not installed: the package would replace the host's
    /// own /bin/busybox, which initramfs-tools copies into the host's
    /// initramfs.
    public static func busybox(in cache: CacheDirectory) -> String {
        if let path = ProcessInfo.processInfo.environment["KHARNESS_BUSYBOX"], !path.isEmpty { return path }
        return cache.root + "/busybox-arm64/bin/busybox"
    }

    public init(busybox: String, files: [HostFile], modules: Modules? = nil) {
        self.busybox = busybox
        self.files = files
        self.modules = modules
    }
}

/// A built initramfs in the cache, with the manifest that names its contents.
public struct Initramfs: Sendable {
    public var path: String
    public var manifest: String
    public var cacheHit: Bool
}

public struct InitramfsBuilder: Sendable {
    public var cache: CacheDirectory

    public init(cache: CacheDirectory) { self.cache = cache }

    /// Builds the archive, or returns the cached one with the same contents.
    /// The cache key is the manifest's hash, and the manifest lists each
    /// file's own hash, so any change of content makes a new image.
    public func build(_ spec: InitramfsSpec) throws -> Initramfs {
        try Self.checkBusybox(spec.busybox, inCache: spec.busybox.hasPrefix(cache.root + "/"))
        // Fast path: the same files, unchanged on disk since the last build
        // (same size, mtime, inode), need not be read and hashed again.
        let statKey = try Self.statKey(spec)
        let dir = try cache.directory("initramfs")
        let memo = "\(dir)/stat-\(statKey)"
        if let text = try? String(contentsOfFile: memo, encoding: .utf8),
           let newline = text.firstIndex(of: "\n") {
            let path = "\(dir)/\(text[..<newline]).cpio"
            if Files.exists(path) {
                return Initramfs(path: path, manifest: String(text[text.index(after: newline)...]), cacheHit: true)
            }
        }
        let built = try buildFromContents(spec, directory: dir)
        let key = ((built.path as NSString).lastPathComponent as NSString).deletingPathExtension
        try Files.writeAtomically(key + "\n" + built.manifest, to: memo)
        return built
    }

    /// Identifies the inputs by name and file metadata only.
    static func statKey(_ spec: InitramfsSpec) throws -> String {
        var lines: [String] = []
        func add(_ host: String, _ guest: String, _ mode: UInt32) throws {
            var st = stat()
            guard stat(host, &st) == 0 else { throw HarnessError.badInput(host, "cannot read file for the initramfs") }
            lines.append("\(guest) \(String(mode, radix: 8)) \(host) \(st.st_dev) \(st.st_ino) \(st.st_size) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)")
        }
        try add(spec.busybox, "/bin/busybox", 0o755)
        for file in spec.files { try add(file.hostPath, file.guestPath, file.mode) }
        if let modules = spec.modules, !modules.names.isEmpty {
            for relative in try moduleFiles(modules) { try add("\(modules.directory)/\(relative)", relative, 0o644) }
        }
        return Digest.sha256(lines.joined(separator: "\n"))
    }

    private func buildFromContents(_ spec: InitramfsSpec, directory dir: String) throws -> Initramfs {
        var entries: [CpioWriter.Entry] = []
        for dir in ["/bin", "/sbin", "/usr", "/usr/bin", "/usr/sbin", "/dev", "/proc", "/sys",
                    "/tmp", "/run", "/mnt", "/lib", "/lib/modules", "/etc", "/usr/share",
                    "/usr/share/kharness"] {
            entries.append(.directory(path: dir, mode: 0o755))
        }
        entries.append(.characterDevice(path: "/dev/console", mode: 0o600, major: 5, minor: 1))
        entries.append(.characterDevice(path: "/dev/null", mode: 0o666, major: 1, minor: 3))
        entries.append(.file(path: "/bin/busybox", mode: 0o755, contents: try read(spec.busybox)))
        entries.append(.symlink(path: "/bin/sh", target: "busybox"))

        var directories = Set(entries.compactMap { entry -> String? in
            if case .directory(let p, _) = entry { return p } else { return nil }
        })
        func ensureParents(_ path: String) {
            var parents: [String] = []
            var current = (path as NSString).deletingLastPathComponent
            while current != "/" && !current.isEmpty && !directories.contains(current) {
                parents.append(current)
                current = (current as NSString).deletingLastPathComponent
            }
            for p in parents.reversed() {
                directories.insert(p)
                entries.append(.directory(path: p, mode: 0o755))
            }
        }
        for file in spec.files {
            ensureParents(file.guestPath)
            entries.append(.file(path: file.guestPath, mode: file.mode, contents: try read(file.hostPath)))
        }
        if let modules = spec.modules, !modules.names.isEmpty {
            let release = (modules.directory as NSString).lastPathComponent
            for relative in try Self.moduleFiles(modules) {
                let guestPath = "/lib/modules/\(release)/\(relative)"
                ensureParents(guestPath)
                entries.append(.file(path: guestPath, mode: 0o644,
                                     contents: try read("\(modules.directory)/\(relative)")))
            }
        }

        let manifest = entries.map(Self.manifestLine).joined(separator: "\n") + "\n"
        let key = Digest.sha256(manifest)
        let path = "\(dir)/\(key).cpio"
        if Files.exists(path) {
            return Initramfs(path: path, manifest: manifest, cacheHit: true)
        }
        var writer = CpioWriter()
        for entry in entries { writer.append(entry) }
        try Files.writeAtomically(writer.finish(), to: path)
        return Initramfs(path: path, manifest: manifest, cacheHit: false)
    }

    /// The named modules, their dependencies from modules.dep, and the
    /// index files modprobe reads, as paths relative to the modules directory.
    static func moduleFiles(_ modules: InitramfsSpec.Modules) throws -> [String] {
        let depPath = modules.directory + "/modules.dep"
        guard let dep = FileManager.default.contents(atPath: depPath) else {
            throw HarnessError.badInput(depPath, "cannot read modules.dep (run depmod)")
        }
        // A distribution kernel lists thousands of modules, and a run needs a
        // few: index the lines by bytes, and split only the ones visited.
        let bytes = [UInt8](dep)
        var dependencies: [String: ArraySlice<UInt8>] = [:]
        var byName: [String: String] = [:]
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            let module = String(decoding: line[..<colon], as: UTF8.self)
            dependencies[module] = line[(colon + 1)...]
            byName[moduleName(line[..<colon])] = module
        }
        var wanted: [String] = []
        var seen = Set<String>()
        func visit(_ module: String) {
            guard seen.insert(module).inserted else { return }
            for d in (dependencies[module] ?? []).split(separator: UInt8(ascii: " ")) {
                visit(String(decoding: d, as: UTF8.self))
            }
            wanted.append(module)
        }
        // A module the kernel has built in needs nothing in the initramfs.
        let builtin = Set([UInt8](FileManager.default.contents(atPath: modules.directory + "/modules.builtin") ?? Data())
            .split(separator: UInt8(ascii: "\n")).map { moduleName($0) })
        for name in modules.names where !builtin.contains(name.replacingOccurrences(of: "-", with: "_")) {
            guard let module = byName[name] ?? byName[name.replacingOccurrences(of: "-", with: "_")] else {
                throw HarnessError.badInput(name, "no such module in \(modules.directory)")
            }
            visit(module)
        }
        let indexes = ["modules.dep", "modules.dep.bin", "modules.alias", "modules.alias.bin",
                       "modules.symbols", "modules.symbols.bin", "modules.builtin", "modules.builtin.bin",
                       "modules.order", "modules.softdep", "modules.devname"]
        return wanted + indexes.filter { Files.exists("\(modules.directory)/\($0)") }
    }

    /// `kernel/drivers/pci/pci-stub.ko.xz` -> `pci_stub`, as modprobe names it.
    static func moduleName(_ path: String) -> String { moduleName(Array(path.utf8)[...]) }

    static func moduleName(_ path: ArraySlice<UInt8>) -> String {
        var base = path
        if let slash = base.lastIndex(of: UInt8(ascii: "/")) { base = base[(slash + 1)...] }
        var end = base.endIndex
        var i = base.startIndex
        while i + 2 < base.endIndex {
            if base[i] == UInt8(ascii: "."), base[i + 1] == UInt8(ascii: "k"), base[i + 2] == UInt8(ascii: "o") {
                end = i
                break
            }
            i += 1
        }
        return String(decoding: base[..<end].map { $0 == UInt8(ascii: "-") ? UInt8(ascii: "_") : $0 }, as: UTF8.self)
    }

    private func read(_ path: String) throws -> Data {
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw HarnessError.badInput(path, "cannot read file for the initramfs")
        }
    }

    static func manifestLine(_ entry: CpioWriter.Entry) -> String {
        switch entry {
        case .directory(let p, let mode): return "dir \(String(mode, radix: 8)) \(p)"
        case .file(let p, let mode, let contents):
            return "file \(String(mode, radix: 8)) \(p) \(contents.count) \(Digest.sha256(contents))"
        case .symlink(let p, let target): return "symlink 777 \(p) -> \(target)"
        case .characterDevice(let p, let mode, let major, let minor):
            return "chardev \(String(mode, radix: 8)) \(p) \(major):\(minor)"
        }
    }

    /// The guest is arm64: an x86 busybox would panic the kernel with
    /// "No working init found", a long way from the cause. A busybox missing
    /// from the cache (`inCache`: scripts/setup put it there, the cache is gone)
    /// is the machine's fault, ERROR; one the user named (`KHARNESS_BUSYBOX`)
    /// is their input.
    static func checkBusybox(_ path: String, inCache: Bool = false) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw HarnessError(inCache ? .infrastructure : .badInput, input: path,
                               reason: "busybox not found (scripts/setup extracts busybox-static:arm64 there)")
        }
        defer { try? handle.close() }
        let head = [UInt8]((try? handle.read(upToCount: 20)) ?? Data())
        let isElf = head.count == 20 && head[0] == 0x7f && head[1] == 0x45 && head[2] == 0x4c && head[3] == 0x46
        guard isElf, head[18] == 183, head[19] == 0 else {
            throw HarnessError.badInput(path, "busybox is not an arm64 ELF binary (scripts/setup extracts busybox-static:arm64)")
        }
    }
}
