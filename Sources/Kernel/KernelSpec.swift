import Support

/// Which kernel a run boots, as the user writes it on the command line or in
/// a matrix file.
public enum KernelSpec: Hashable, Sendable, CustomStringConvertible {
    /// Debian's prebuilt arm64 kernel, e.g. `debian:6.1`, `debian:6.12`.
    case debian(version: String)
    /// A user's own Image, e.g. `image:/tmp/Image,modules=/tmp/mods`.
    case image(path: String, modules: String?)
    /// A revision of a kernel git tree, e.g. `git:/src/linux@v6.12`.
    case git(tree: String, revision: String)

    public init(parsing text: String) throws {
        guard let colon = text.firstIndex(of: ":") else {
            throw HarnessError.badInput(text, "kernel must be debian:<version>, image:<path>[,modules=<dir>] or git:<tree>@<rev>")
        }
        let kind = text[..<colon]
        let rest = String(text[text.index(after: colon)...])
        switch kind {
        case "debian":
            guard !rest.isEmpty, rest.allSatisfy({ $0.isNumber || $0 == "." }) else {
                throw HarnessError.badInput(text, "debian: takes a version like 6.1 or 6.12")
            }
            self = .debian(version: rest)
        case "image":
            var parts = rest.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let path = parts.removeFirst()
            guard !path.isEmpty else { throw HarnessError.badInput(text, "image: needs a path") }
            var modules: String?
            for option in parts {
                if option.hasPrefix("modules="), option.count > "modules=".count {
                    modules = String(option.dropFirst("modules=".count))
                } else {
                    throw HarnessError.badInput(text, "unknown image option '\(option)' (known: modules=<dir>)")
                }
            }
            self = .image(path: path, modules: modules)
        case "git":
            guard let at = rest.lastIndex(of: "@"), at != rest.startIndex,
                  rest.index(after: at) != rest.endIndex
            else {
                throw HarnessError.badInput(text, "git: takes <tree>@<rev>, e.g. git:/src/linux@v6.12")
            }
            self = .git(tree: String(rest[..<at]), revision: String(rest[rest.index(after: at)...]))
        default:
            throw HarnessError.badInput(text, "unknown kernel kind '\(kind)' (known: debian, image, git)")
        }
    }

    public var description: String {
        switch self {
        case .debian(let version): return "debian:\(version)"
        case .image(let path, let modules): return "image:\(path)" + (modules.map { ",modules=\($0)" } ?? "")
        case .git(let tree, let revision): return "git:\(tree)@\(revision)"
        }
    }
}

/// A kernel ready to boot: what the machine and the guest image need from
/// whichever source produced it.
public struct KernelArtifacts: Sendable, Codable, Equatable {
    /// An uncompressed arm64 `Image`.
    public var image: String
    /// `lib/modules/<release>` root to copy into the guest, if any.
    public var modulesDirectory: String?
    /// The kernel's `.config`, when known.
    public var config: String?
    /// `uname -r` as the package or build says it, when known.
    public var release: String?
    public var systemMap: String?
    public var vmlinux: String?
    /// A stable identity for reports and caches (package version, tree@commit+series).
    public var identity: String

    public init(image: String, modulesDirectory: String? = nil, config: String? = nil,
                release: String? = nil, systemMap: String? = nil, vmlinux: String? = nil,
                identity: String) {
        self.image = image
        self.modulesDirectory = modulesDirectory
        self.config = config
        self.release = release
        self.systemMap = systemMap
        self.vmlinux = vmlinux
        self.identity = identity
    }
}
