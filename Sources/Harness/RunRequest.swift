import Foundation
import Kernel
import Support

/// One run as the user asked for it.
public struct RunRequest: Sendable {
    public var kernel: KernelSpec
    /// For `git:` kernels: a patch series and config fragments.
    public var series: String?
    public var configFragments: [String] = []
    public var workload: String = "boot"
    /// A user's own shell script run as the workload instead of a built-in one.
    public var workloadScript: String?
    public var scenarios: [String] = []
    public var machine: String = "stock"
    /// A qemu-system-aarch64 to use instead of the machine's own.
    public var emulator: String?
    public var vcpus: Int = 1
    public var memoryMiB: Int = 1024
    /// From domain start until the guest's /init speaks.
    public var bootTimeout: Double = 120
    /// From domain start until the guest says it is done.
    public var totalTimeout: Double = 600
    /// A guest printing more than this on its console is stopped.
    public var consoleLimitBytes: Int = 64 << 20
    public var extraCmdline: [String] = []
    /// A suppression file of known-benign kernel reports (see Classify.Suppressions).
    public var suppressionsFile: String?
    public var resultsRoot: String = "results"
    public var connectionURI: String = "qemu:///system"
    /// sva-accel reports its DMA to `device.log` for the device oracle (sva machine only).
    /// Off only to measure what the records cost; the DMA-after-teardown oracle then has
    /// nothing to judge.
    public var deviceRecords = true

    public init(kernel: KernelSpec) { self.kernel = kernel }

    /// The built-in sva workload: it needs the accelerator driver (so a
    /// kernel with modules), the workload program, and tolerates the SMMU
    /// faults it provokes.
    var runsSvaWorkload: Bool { workload == "sva" && workloadScript == nil }
}

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
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for _ in 0..<8 {
            url.deleteLastPathComponent()
            if fm.fileExists(atPath: url.path + "/guest/init/init") { return url.path + "/guest" }
        }
        let cwd = fm.currentDirectoryPath + "/guest"
        if fm.fileExists(atPath: cwd + "/init/init") { return cwd }
        throw HarnessError.badInput("guest/", "cannot find the guest directory (set KHARNESS_GUEST_DIR)")
    }
}
