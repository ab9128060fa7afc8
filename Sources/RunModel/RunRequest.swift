import Kernel

/// One run as the user asked for it: what the run stage (Harness) takes in, as
/// ``RunResult`` is what it gives back.
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
}

extension RunRequest {
    /// The built-in sva workload: it needs the accelerator driver (so a
    /// kernel with modules), the workload program, and tolerates the SMMU
    /// faults it provokes. A user's script is not it, whatever the workload's name.
    public static func runsSvaWorkload(workload: String, workloadScript: String?) -> Bool {
        workload == "sva" && workloadScript == nil
    }

    public var runsSvaWorkload: Bool { Self.runsSvaWorkload(workload: workload, workloadScript: workloadScript) }

    /// The fragments a `git:` kernel is built with for this workload: the sva
    /// workload loads its driver as a module, so it adds `modules`. The runner
    /// builds with these and the matrix prepares its kernels with them, so the
    /// kernel a matrix built is the one its cells' runs find in the cache.
    public static func kernelFragments(_ fragments: [String], workload: String, workloadScript: String? = nil) -> [String] {
        guard runsSvaWorkload(workload: workload, workloadScript: workloadScript), !fragments.contains("modules") else {
            return fragments
        }
        return fragments + ["modules"]
    }

    public var kernelFragments: [String] {
        Self.kernelFragments(configFragments, workload: workload, workloadScript: workloadScript)
    }
}
