import Foundation
import GuestImage
import Machine
import Support

/// One prerequisite of a run and whether this machine has it.
public struct Check: Sendable {
    public var name: String
    public var ok: Bool
    public var detail: String
    /// What to do when it is missing.
    public var fix: String
}

public enum Doctor {
    public static func checks(uri: String = "qemu:///system", cache: CacheDirectory = .fromEnvironment()) async -> [Check] {
        var checks: [Check] = []
        let setup = "run scripts/setup as root"

        do {
            let connection = try LibvirtConnection(uri: uri)
            let lib = try connection.libvirtVersion()
            let hv = try connection.hypervisorVersion()
            let major = Int(lib.split(separator: ".").first ?? "0") ?? 0
            checks.append(Check(name: "libvirt", ok: major >= 11, detail: "\(uri) answers, libvirt \(lib), QEMU \(hv)",
                                fix: "libvirt 11 from bookworm-backports is needed with QEMU 10: \(setup)"))
        } catch {
            checks.append(Check(name: "libvirt", ok: false, detail: "\(error)", fix: "\(setup) (starts virtlogd and libvirtd)"))
        }

        let qemu = try? await Command.run(MachineProfile.stockEmulator, ["--version"])
        let qemuLine = qemu?.stdout.split(separator: "\n").first.map(String.init) ?? ""
        let qemuMajor = qemuLine.split(separator: " ").dropFirst(3).first.flatMap { Int($0.split(separator: ".").first ?? "") } ?? 0
        checks.append(Check(name: "qemu", ok: qemu?.succeeded == true && qemuMajor >= 10,
                            detail: qemu?.succeeded == true ? qemuLine : "\(MachineProfile.stockEmulator) not found",
                            fix: "QEMU 10 (qemu-system-arm from bookworm-backports): \(setup)"))

        let busybox = InitramfsSpec.busybox(in: .fromEnvironment())
        let file = try? await Command.run("file", ["-b", busybox])
        let isArm = file?.stdout.contains("ARM aarch64") == true
        checks.append(Check(name: "busybox", ok: isArm, detail: isArm ? "\(busybox): arm64 static" : "\(busybox) is not an arm64 binary",
                            fix: "busybox-static:arm64, extracted into the cache: \(setup)"))

        let gcc = try? await Command.run("aarch64-linux-gnu-gcc", ["-dumpfullversion"])
        checks.append(Check(name: "cross-compiler", ok: gcc?.succeeded == true,
                            detail: gcc?.succeeded == true ? "aarch64-linux-gnu-gcc \(gcc!.stdout.trimmingCharacters(in: .whitespacesAndNewlines))" : "aarch64-linux-gnu-gcc not found",
                            fix: "gcc-aarch64-linux-gnu: \(setup)"))

        let ccache = try? await Command.run("ccache", ["--version"])
        checks.append(Check(name: "ccache", ok: ccache?.succeeded == true, detail: ccache?.succeeded == true ? "ccache present" : "ccache not found",
                            fix: "ccache: \(setup)"))

        let apt = try? await Command.run("apt-cache", ["show", "linux-image-arm64:arm64"])
        checks.append(Check(name: "debian-kernels", ok: apt?.succeeded == true && apt?.stdout.contains("Version:") == true,
                            detail: apt?.succeeded == true ? "apt knows linux-image-arm64:arm64" : "apt knows no arm64 kernels",
                            fix: "enable arm64 and the kernel suites: \(setup)"))

        do {
            let dir = try cache.directory()
            let probe = dir + "/.doctor-\(getpid())"
            try Files.writeAtomically("ok", to: probe)
            try FileManager.default.removeItem(atPath: probe)
            checks.append(Check(name: "cache", ok: true, detail: "\(cache.root) writable", fix: ""))
        } catch {
            checks.append(Check(name: "cache", ok: false, detail: "\(cache.root): \(error)",
                                fix: "set KHARNESS_CACHE to a writable directory"))
        }
        return checks
    }
}
