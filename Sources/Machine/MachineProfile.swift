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

    public static let names = ["stock", "stock-lazy", "nosmmu", "sva", "sva-stall"]

    /// Whether the machine needs kharness's patched QEMU (scripts/build-qemu).
    public static func needsPatchedQemu(_ name: String) -> Bool { name == "sva" || name == "sva-stall" }

    /// The emulated accelerator with PASID support (guest/qemu/README.md).
    static let svaAccel = RootBusDevice(driver: "sva-accel", slot: 4)
    /// A second one, so one process can bind two devices (one SVA domain and PASID shared
    /// between them); only the first reports its accesses (`records`).
    static let svaAccel2 = RootBusDevice(driver: "sva-accel", slot: 5)

    /// `patchedEmulator` is the binary scripts/build-qemu printed; only the
    /// SVA machine uses it.
    public static func named(_ name: String, patchedEmulator: String? = nil) throws -> MachineProfile {
        switch name {
        case "sva", "sva-stall":
            guard let patchedEmulator else {
                throw HarnessError.badInput(name, "the \(name) machine needs the patched QEMU (scripts/build-qemu)")
            }
            // 16 substream ID bits, as many PASIDs as Linux's default pasid space needs here.
            // sva-stall: the SMMU forces stall (QEMU patch 0008), so Linux resolves the device's
            // page faults through its I/O page-fault path instead of the driver pinning pages
            // (forced, not "supported": QEMU's device tree describes no PCI device, so no
            // `dma-can-stall` property can make Linux stall-enable one).
            let stall = name == "sva-stall" ? ["arm-smmuv3.stall=force"] : []
            return MachineProfile(name: name, emulator: patchedEmulator, smmuv3: true, devices: [edu, svaAccel, svaAccel2],
                                  globals: ["arm-smmuv3.ssidsize=16"] + stall, cmdline: ["iommu.strict=1"])
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
