import Foundation
import Support

/// Where the harness's own files are: guest/ in the source tree.
public enum GuestAssets {
    /// `$KHARNESS_GUEST_DIR`, else the `guest/` found walking up from the
    /// executable (a build inside the checkout), else `./guest`.
    public static func directory() throws -> String {
        let fm = FileManager.default
        if let dir = ProcessInfo.processInfo.environment["KHARNESS_GUEST_DIR"], !dir.isEmpty {
            guard fm.fileExists(atPath: dir + "/init/init") else {
                throw HarnessError.badInput(dir, "KHARNESS_GUEST_DIR has no init/init")
            }
            return dir
        }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        if let guest = GuestDirectory.find(holding: "init/init", walkingUpFrom: executable.deletingLastPathComponent(),
                                           levels: 8, includingRoot: true) {
            return guest
        }
        if let guest = GuestDirectory.find(holding: "init/init", walkingUpFrom: URL(fileURLWithPath: fm.currentDirectoryPath),
                                           levels: 1, includingRoot: true) {
            return guest
        }
        throw HarnessError.badInput("guest/", "cannot find the guest directory (set KHARNESS_GUEST_DIR)")
    }
}
