import Foundation

/// Where expensive things (kernel packages, builds, QEMU, initramfs images)
/// are kept between runs, keyed by their inputs.
public struct CacheDirectory: Sendable {
    public var root: String

    public init(root: String) { self.root = root }

    /// `$KHARNESS_CACHE`, else `/var/cache/kharness` for root, else
    /// `$XDG_CACHE_HOME/kharness`, else `~/.cache/kharness`.
    ///
    /// Not `/root/.cache` for root: QEMU runs as libvirt's unprivileged user
    /// and must be able to read the kernels and initramfs images kept here.
    public static func fromEnvironment() -> CacheDirectory {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["KHARNESS_CACHE"], !dir.isEmpty { return CacheDirectory(root: dir) }
        if getuid() == 0 { return CacheDirectory(root: "/var/cache/kharness") }
        if let xdg = env["XDG_CACHE_HOME"], !xdg.isEmpty { return CacheDirectory(root: xdg + "/kharness") }
        return CacheDirectory(root: NSHomeDirectory() + "/.cache/kharness")
    }

    /// A subdirectory for one kind of artefact, created on demand.
    public func directory(_ components: String...) throws -> String {
        let path = ([root] + components).joined(separator: "/")
        try Files.createDirectory(path)
        return path
    }
}
