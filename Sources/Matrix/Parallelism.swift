import Foundation

/// How many cells run at once by default: a TCG guest keeps about one host
/// core busy (its vCPU thread), and needs its RAM plus QEMU's own (measured
/// below the per-guest allowance here), so the limit is whichever of cores
/// and available memory runs out first.
public enum Parallelism {
    /// Host memory QEMU needs beyond the guest's RAM (translation cache, device
    /// models, libvirt's per-domain processes), in MiB.
    public static let qemuOverheadMiB = 512
    /// Memory left to the rest of the machine (builds, the harness), in MiB.
    public static let reserveMiB = 2048

    /// The default limit and the reason, e.g. `(2, "2 cores; memory for 21 guests")`.
    public static func derived(guestMemoryMiB: Int = 1024) -> (limit: Int, why: String) {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let available = availableMemoryMiB() ?? Int(ProcessInfo.processInfo.physicalMemory >> 20)
        let byMemory = max(0, available - reserveMiB) / (guestMemoryMiB + qemuOverheadMiB)
        let limit = max(1, min(cores, byMemory))
        return (limit, "\(cores) core(s); memory for \(byMemory) guest(s) of \(guestMemoryMiB) MiB")
    }

    /// MemAvailable from /proc/meminfo.
    static func availableMemoryMiB() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.split(separator: " ")
            if fields.count >= 2, let kib = Int(fields[1]) { return kib >> 10 }
        }
        return nil
    }
}
