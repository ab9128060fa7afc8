import Foundation

/// The checkout's `guest/` directory (the harness's init, workloads, drivers, config
/// fragments): the one walk up the file system that the harness's assets
/// (`GuestAssets.directory`) and the kernel config fragments
/// (`KernelBuilder.defaultConfigDirectory`) both look for it with.
public enum GuestDirectory {
    /// The `guest` directory of the first directory, walking up from `start` (itself
    /// first), whose `guest/` holds `marker` (a path inside guest/: "init/init",
    /// "configs/base.config"); at most `levels` directories, and `/` itself only
    /// `includingRoot`. Nil when none does.
    public static func find(holding marker: String, walkingUpFrom start: URL, levels: Int = .max,
                            includingRoot: Bool) -> String? {
        var url = start
        var left = levels
        while left > 0 {
            let isRoot = url.path == "/"
            if isRoot && !includingRoot { return nil }
            let guest = url.appendingPathComponent("guest").path
            if Files.exists(guest + "/" + marker) { return guest }
            if isRoot { return nil }
            url.deleteLastPathComponent()
            left -= 1
        }
        return nil
    }
}
