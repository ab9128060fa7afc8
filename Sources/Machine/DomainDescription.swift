import Foundation
import Support

/// A PCI device QEMU adds on the root bus `pcie.0` at a fixed slot.
///
/// Passed as JSON `-device` rather than as libvirt `<hostdev>`-style XML
/// because libvirt puts its own devices behind root ports, which merges
/// IOMMU groups; each device here must get a group of its own behind the SMMU.
public struct RootBusDevice: Sendable, Equatable {
    public var driver: String
    public var slot: Int
    public var properties: [String: String]

    public init(driver: String, slot: Int, properties: [String: String] = [:]) {
        self.driver = driver
        self.slot = slot
        self.properties = properties
    }

    /// The `-device` argument, e.g. `{"addr":"0x3","bus":"pcie.0","driver":"edu"}`.
    public var qemuJSON: String {
        var object: [String: String] = properties
        object["driver"] = driver
        object["bus"] = "pcie.0"
        object["addr"] = "0x" + String(slot, radix: 16)
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }
}

/// Everything that decides how a guest is started: typed, then rendered to
/// libvirt domain XML with every value escaped.
public struct DomainDescription: Sendable, Equatable {
    public var name: String
    public var emulator: String
    public var memoryMiB: Int = 1024
    public var vcpus: Int = 1
    public var cpuModel: String = "cortex-a57"
    public var gicVersion: Int = 3
    public var kernel: String
    public var initrd: String
    public var cmdline: String
    public var consoleLog: String
    /// Second serial port for traces, logged to a file (a virtio console port).
    public var traceLog: String?
    public var smmuv3: Bool = true
    public var devices: [RootBusDevice] = []
    /// `-global` settings, e.g. `arm-smmuv3.ssidsize=16` for the SVA machine.
    public var globals: [String] = []
    /// The file sva-accel writes its access records to (a `file` chardev
    /// named by the device's `records` property), and the SMMU its decisions
    /// (QEMU patch 0007, its own `records` property, set with `-global` when
    /// the machine has an SMMUv3). A chardev backend has one frontend, so
    /// each gets a chardev of its own on the same path, both opened with
    /// `append=on`: every record is one `write()` of a whole line, which
    /// `O_APPEND` keeps whole, and the harness watches and reads one bounded
    /// file. QEMU opens it itself, so it must exist and be writable by QEMU's
    /// user before the start (append mode also keeps what is in it).
    public var deviceRecordsLog: String?

    /// The chardev id sva-accel's records go to.
    public static let recordsChardev = "kharness-records"
    /// The chardev id the SMMU's records go to (the same file).
    public static let smmuRecordsChardev = "kharness-smmu-records"

    public init(name: String, emulator: String, kernel: String, initrd: String, cmdline: String,
                consoleLog: String) {
        self.name = name
        self.emulator = emulator
        self.kernel = kernel
        self.initrd = initrd
        self.cmdline = cmdline
        self.consoleLog = consoleLog
    }

    public var xml: String {
        let e: (String) -> String = { Markup.escape($0, .exact) }
        var qemuArgs: [String] = []
        var devices = self.devices
        var globals = self.globals
        if let deviceRecordsLog, let index = devices.firstIndex(where: { $0.driver == "sva-accel" }) {
            // QEMU's option syntax: a comma in a value is written twice.
            let path = deviceRecordsLog.replacingOccurrences(of: ",", with: ",,")
            qemuArgs += ["-chardev", "file,id=\(Self.recordsChardev),path=\(path),append=on"]
            devices[index].properties["records"] = Self.recordsChardev
            if smmuv3 {
                qemuArgs += ["-chardev", "file,id=\(Self.smmuRecordsChardev),path=\(path),append=on"]
                globals.append("arm-smmuv3.records=\(Self.smmuRecordsChardev)")
            }
        }
        for device in devices { qemuArgs += ["-device", device.qemuJSON] }
        for global in globals { qemuArgs += ["-global", global] }
        var lines: [String] = []
        lines.append("<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>")
        lines.append("  <name>\(e(name))</name>")
        lines.append("  <memory unit='MiB'>\(memoryMiB)</memory>")
        lines.append("  <vcpu>\(vcpus)</vcpu>")
        lines.append("  <os>")
        lines.append("    <type arch='aarch64' machine='virt'>hvm</type>")
        lines.append("    <kernel>\(e(kernel))</kernel>")
        lines.append("    <initrd>\(e(initrd))</initrd>")
        lines.append("    <cmdline>\(e(cmdline))</cmdline>")
        lines.append("  </os>")
        lines.append("  <features><gic version='\(gicVersion)'/></features>")
        lines.append("  <cpu mode='custom' match='exact'><model fallback='forbid'>\(e(cpuModel))</model></cpu>")
        lines.append("  <clock offset='utc'/>")
        lines.append("  <on_poweroff>destroy</on_poweroff>")
        lines.append("  <on_reboot>destroy</on_reboot>")
        lines.append("  <on_crash>destroy</on_crash>")
        lines.append("  <devices>")
        lines.append("    <emulator>\(e(emulator))</emulator>")
        lines.append("    <controller type='usb' model='none'/>")
        lines.append("    <serial type='file'>")
        lines.append("      <source path='\(e(consoleLog))' append='off'/>")
        lines.append("      <target port='0'/>")
        lines.append("    </serial>")
        if let traceLog {
            lines.append("    <channel type='file'>")
            lines.append("      <source path='\(e(traceLog))' append='off'/>")
            lines.append("      <target type='virtio' name='org.kharness.trace'/>")
            lines.append("    </channel>")
        }
        if smmuv3 { lines.append("    <iommu model='smmuv3'/>") }
        lines.append("    <memballoon model='none'/>")
        lines.append("  </devices>")
        if !qemuArgs.isEmpty {
            lines.append("  <qemu:commandline>")
            for arg in qemuArgs { lines.append("    <qemu:arg value='\(e(arg))'/>") }
            lines.append("  </qemu:commandline>")
        }
        lines.append("</domain>")
        return lines.joined(separator: "\n") + "\n"
    }
}

