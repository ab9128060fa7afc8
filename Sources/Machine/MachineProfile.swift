import Foundation
import Support

/// A named kind of guest machine: which QEMU, whether there is an SMMU, and
/// which devices sit behind it.
public struct MachineProfile: Sendable, Equatable {
    public var name: String
    public var emulator: String
    public var smmuv3: Bool
    public var devices: [RootBusDevice]
    public var globals: [String]
    /// Appended to the kernel command line, e.g. `iommu.strict=0`.
    public var cmdline: [String]

    public init(name: String, emulator: String, smmuv3: Bool, devices: [RootBusDevice],
                globals: [String] = [], cmdline: [String] = []) {
        self.name = name
        self.emulator = emulator
        self.smmuv3 = smmuv3
        self.devices = devices
        self.globals = globals
        self.cmdline = cmdline
    }

    public static let stockEmulator = "/usr/bin/qemu-system-aarch64"

    /// QEMU's `edu` device: a PCI device with DMA that needs no driver to be
    /// placed in an IOMMU group, so the SMMU has something to translate for.
    static let edu = RootBusDevice(driver: "edu", slot: 3)

    public static let names = ["stock", "stock-lazy", "nosmmu", "sva"]

    /// Whether the machine needs kharness's patched QEMU (scripts/build-qemu).
    public static func needsPatchedQemu(_ name: String) -> Bool { name == "sva" }

    /// The emulated accelerator with PASID support (guest/qemu/README.md).
    static let svaAccel = RootBusDevice(driver: "sva-accel", slot: 4)

    /// `patchedEmulator` is the binary scripts/build-qemu printed; only the
    /// SVA machine uses it.
    public static func named(_ name: String, patchedEmulator: String? = nil) throws -> MachineProfile {
        switch name {
        case "sva":
            guard let patchedEmulator else {
                throw HarnessError.badInput(name, "the sva machine needs the patched QEMU (scripts/build-qemu)")
            }
            // 16 substream ID bits, as many PASIDs as Linux's default pasid space needs here.
            return MachineProfile(name: name, emulator: patchedEmulator, smmuv3: true, devices: [edu, svaAccel],
                                  globals: ["arm-smmuv3.ssidsize=16"], cmdline: ["iommu.strict=1"])
        case "stock":
            return MachineProfile(name: name, emulator: stockEmulator, smmuv3: true, devices: [edu],
                                  cmdline: ["iommu.strict=1"])
        case "stock-lazy":
            return MachineProfile(name: name, emulator: stockEmulator, smmuv3: true, devices: [edu],
                                  cmdline: ["iommu.strict=0"])
        case "nosmmu":
            return MachineProfile(name: name, emulator: stockEmulator, smmuv3: false, devices: [edu])
        default:
            throw HarnessError.badInput(name, "unknown machine (known: \(names.joined(separator: ", ")))")
        }
    }
}

/// The QEMU process behind a domain, for the one case libvirt cannot clean
/// up after: the daemon itself died and did not come back.
public enum QemuProcess {
    public static func pidFile(domain: String) -> String { "/run/libvirt/qemu/\(domain).pid" }

    public static func pid(domain: String) -> pid_t? {
        guard let text = try? String(contentsOfFile: pidFile(domain: domain), encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1
        else { return nil }
        return pid
    }

    /// Kills `pid` only if it still is QEMU running this domain, so a reused
    /// PID never takes down an unrelated process.
    @discardableResult
    public static func kill(pid: pid_t, domain: String) -> Bool {
        guard let cmdline = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")) else { return false }
        let args = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard args.contains(where: { $0.contains("guest=\(domain),") || $0 == "guest=\(domain)" }) else { return false }
        return Glibc.kill(pid, SIGKILL) == 0
    }

    /// libvirt's log of the domain's QEMU (qemu:///system only).
    public static func logFile(domain: String) -> String { "/var/log/libvirt/qemu/\(domain).log" }

    /// Why libvirt says the domain's QEMU stopped: "shutdown" (the guest
    /// powered off or reset), "destroyed" (the harness), "crashed" or
    /// "failed" (QEMU itself), with the last line QEMU printed.
    public static func endReason(domain: String) -> (reason: String, lastQemuLine: String?)? {
        guard let handle = FileHandle(forReadingAtPath: logFile(domain: domain)) else { return nil }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: size > 8192 ? size - 8192 : 0)
        let tail = String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
        let lines = tail.split(separator: "\n").map(String.init)
        guard let end = lines.last(where: { $0.contains("shutting down, reason=") }),
              let range = end.range(of: "reason=")
        else { return nil }
        // QEMU's own messages ("...Z qemu-system-aarch64: ..."), not its command line.
        let qemuLine = lines.last { $0.contains("qemu-system-aarch64: ") && !$0.contains("terminating on signal") }
        return (String(end[range.upperBound...].prefix { !$0.isWhitespace }), qemuLine)
    }

    /// True when `pid` has exited: gone, or a zombie its reaper has not
    /// collected yet (it runs nothing any more, but `kill(pid, 0)` still
    /// finds it).
    public static func hasExited(pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")")
        else { return true }
        // "pid (comm) S ...": the state follows the command name, which may hold spaces.
        let state = stat[stat.index(after: close)...].drop { $0 == " " }.first
        return state == "Z" || state == "X"
    }

    public static func isRunning(domain: String) -> Bool {
        guard let pid = pid(domain: domain) else { return false }
        return Glibc.kill(pid, 0) == 0
    }
}
