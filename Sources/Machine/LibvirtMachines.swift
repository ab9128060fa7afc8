import Foundation
import Support

/// Guests run by QEMU under a libvirt daemon: what every real run uses.
///
/// libvirt's per-domain run and log directories are properties rather than
/// constants because they are the daemon's (a session daemon or another
/// prefix keeps them elsewhere); the defaults are qemu:///system's on Debian.
public struct LibvirtMachines: MachineBackend {
    public static let defaultRunDirectory = "/run/libvirt/qemu"
    public static let defaultLogDirectory = "/var/log/libvirt/qemu"

    public var uri: String
    /// Where libvirt keeps `<domain>.pid` (the QEMU process, for the case
    /// libvirt itself cannot clean up after).
    public var runDirectory: String
    /// Where libvirt keeps `<domain>.log` (QEMU's messages and why it stopped).
    public var logDirectory: String

    public init(uri: String = "qemu:///system", runDirectory: String = LibvirtMachines.defaultRunDirectory,
                logDirectory: String = LibvirtMachines.defaultLogDirectory) {
        self.uri = uri
        self.runDirectory = runDirectory
        self.logDirectory = logDirectory
    }

    public func connect() throws {
        _ = try LibvirtConnection.shared(uri: uri)
    }

    /// A transient domain on the process's shared connection (see
    /// ``LibvirtConnection/shared(uri:)``), destroyed by libvirt if the harness dies.
    public func start(_ description: DomainDescription) throws -> any MachineInstance {
        let domain = try LibvirtConnection.shared(uri: uri).startTransient(description)
        let process = QemuProcess(domain: description.name, runDirectory: runDirectory, logDirectory: logDirectory)
        return LibvirtMachine(domain: domain, uri: uri, process: process, pid: process.pid())
    }
}

/// One libvirt domain and the QEMU process behind it.
final class LibvirtMachine: MachineInstance {
    private let domain: Domain
    private let uri: String
    private let process: QemuProcess
    /// Read right after the start: once libvirt forgets the domain, its pid
    /// file goes too.
    private let pid: pid_t?

    init(domain: Domain, uri: String, process: QemuProcess, pid: pid_t?) {
        self.domain = domain
        self.uri = uri
        self.process = process
        self.pid = pid
    }

    var name: String { domain.name }
    var emulatorLog: String? { process.logFile }

    func state() -> MachineState {
        let state = domain.state()
        if case .unknown(let message) = state {
            return .unknown("libvirt stopped answering during the run: \(message)")
        }
        return state
    }

    /// libvirt's `shutting down, reason=` line: "shutdown" (the guest powered
    /// off or reset) and "destroyed" (the harness) are the guest's ends,
    /// anything else ("crashed", "failed") is QEMU's.
    func end() async -> MachineEnd {
        var found = process.endReason()
        for _ in 0..<20 where found == nil {
            // libvirt writes the line as it cleans up; give it a moment.
            try? await Task.sleep(for: .milliseconds(50))
            found = process.endReason()
        }
        guard let (reason, qemuLine) = found, reason != "shutdown", reason != "destroyed" else { return .stopped }
        return .emulatorFailed(detail: "libvirt: reason=\(reason)", lastLine: qemuLine)
    }

    /// A guest that said done powers itself off at once (init's `poweroff
    /// -f`): libvirt sees the power-off and QEMU exits within milliseconds.
    ///
    /// The harness does not wait for libvirt's own bookkeeping after that:
    /// libvirt checks that the exited QEMU is gone, finds it not yet reaped,
    /// and pauses 200 ms before looking again (the same pause costs a
    /// destroy at least 200 ms). The domain leaves libvirt's list by itself
    /// then; there is nothing left to stop.
    func awaitPowerOff(within limit: Duration) async -> Bool? {
        guard let pid else { return nil }
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if QemuProcess.hasExited(pid: pid) { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return QemuProcess.hasExited(pid: pid)
    }

    func destroy() async {
        if !domain.destroy() || process.isRunning() {
            try? await reap()
        }
    }

    /// libvirt lost track of the domain (the daemon died): reconnect and
    /// destroy it, or kill the QEMU process directly when the daemon stays away.
    private func reap() async throws {
        let name = domain.name
        log.warning("libvirt lost track of the domain; reconnecting to destroy it", metadata: ["domain": "\(name)"])
        for _ in 0..<100 {
            if let connection = try? LibvirtConnection(uri: uri) {
                if let domain = connection.domain(named: name) { domain.destroy() }
                connection.close()
                if !process.isRunning() {
                    log.info("domain destroyed after reconnecting", metadata: ["domain": "\(name)"])
                    return
                }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        guard let pid else {
            log.error("libvirt did not come back and the QEMU pid is unknown", metadata: ["domain": "\(name)"])
            return
        }
        let killed = QemuProcess.kill(pid: pid, domain: name)
        log.warning("libvirt did not come back; killed QEMU directly", metadata: ["domain": "\(name)", "pid": "\(pid)", "killed": "\(killed)"])
    }
}

/// The QEMU process behind a domain, as libvirt's files describe it: its pid
/// (for the one case libvirt cannot clean up after: the daemon itself died
/// and did not come back) and its log (why it stopped).
public struct QemuProcess: Sendable, Equatable {
    public var domain: String
    public var runDirectory: String
    public var logDirectory: String

    public init(domain: String, runDirectory: String = LibvirtMachines.defaultRunDirectory,
                logDirectory: String = LibvirtMachines.defaultLogDirectory) {
        self.domain = domain
        self.runDirectory = runDirectory
        self.logDirectory = logDirectory
    }

    public var pidFile: String { "\(runDirectory)/\(domain).pid" }

    /// libvirt's log of the domain's QEMU.
    public var logFile: String { "\(logDirectory)/\(domain).log" }

    public func pid() -> pid_t? {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1
        else { return nil }
        return pid
    }

    public func isRunning() -> Bool {
        guard let pid = pid() else { return false }
        return Glibc.kill(pid, 0) == 0
    }

    /// Why libvirt says the domain's QEMU stopped: "shutdown" (the guest
    /// powered off or reset), "destroyed" (the harness), "crashed" or
    /// "failed" (QEMU itself), with the last line QEMU printed. nil until
    /// libvirt wrote it.
    public func endReason() -> (reason: String, lastQemuLine: String?)? {
        guard let handle = FileHandle(forReadingAtPath: logFile) else { return nil }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: size > 8192 ? size - 8192 : 0)
        return Self.endReason(logTail: String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self))
    }

    /// ``endReason()`` over the end of libvirt's log.
    public static func endReason(logTail tail: String) -> (reason: String, lastQemuLine: String?)? {
        let lines = tail.split(separator: "\n").map(String.init)
        guard let end = lines.last(where: { $0.contains("shutting down, reason=") }),
              let range = end.range(of: "reason=")
        else { return nil }
        // QEMU's own messages ("...Z qemu-system-aarch64: ..."), not its command line.
        let qemuLine = lines.last { $0.contains("qemu-system-aarch64: ") && !$0.contains("terminating on signal") }
        return (String(end[range.upperBound...].prefix { !$0.isWhitespace }), qemuLine)
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
}
