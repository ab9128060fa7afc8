import Classify
import Collect
import Foundation
import GuestImage
import Kernel
import Machine
import RunModel
import Support

/// What a run tells whoever watches it (the CLI prints these).
public enum RunEvent: Sendable {
    case started(runID: String, directory: String)
    case phase(String)
    case console(String)
}

/// Runs one kernel on one machine with one workload, and always records an
/// outcome: the provisional result.json written at the start is replaced on
/// every path out, including signals and a dead libvirt.
public final class Runner: @unchecked Sendable {
    public let cache: CacheDirectory
    private let events: @Sendable (RunEvent) -> Void
    public init(cache: CacheDirectory = .fromEnvironment(), events: @escaping @Sendable (RunEvent) -> Void = { _ in }) {
        self.cache = cache
        self.events = events
    }

    public static func newRunID() -> String { RunID.new() }

    /// Usage errors (an unknown machine or workload) are refused before a run
    /// directory exists; what can only be found out by trying (an image that
    /// is not a kernel, a build that fails) becomes a recorded outcome.
    public static func validate(_ request: RunRequest) throws {
        guard MachineProfile.names.contains(request.machine) else {
            throw HarnessError.badInput(request.machine, "unknown machine (known: \(MachineProfile.names.joined(separator: ", ")))")
        }
        if let script = request.workloadScript {
            guard Files.exists(script) else { throw HarnessError.badInput(script, "workload script does not exist") }
        } else {
            let workloads = try GuestAssets.directory() + "/init/workloads"
            let known = ((try? FileManager.default.contentsOfDirectory(atPath: workloads)) ?? [])
                .filter { $0.hasSuffix(".sh") }.map { String($0.dropLast(3)) }.sorted()
            guard known.contains(request.workload) else {
                throw HarnessError.badInput(request.workload, "unknown workload (known: \(known.joined(separator: ", ")))")
            }
        }
        guard request.vcpus >= 1, request.vcpus <= 8 else {
            throw HarnessError.badInput("--vcpus \(request.vcpus)", "must be 1 to 8")
        }
        guard request.bootTimeout > 0, request.totalTimeout > 0 else {
            throw HarnessError.badInput("timeout", "timeouts must be positive")
        }
        // A bad suppression file is a usage error found before any kernel build or domain start.
        if let file = request.suppressionsFile {
            _ = try Suppressions.load(path: file, machine: request.machine)
        }
    }

    public func run(_ request: RunRequest, runID: String = Runner.newRunID()) async throws -> RunResult {
        try Self.validate(request)
        let directory = Files.absolute("\(request.resultsRoot)/\(runID)")
        try Files.createDirectory(directory)
        events(.started(runID: runID, directory: directory))
        let clock = PhaseClock()
        var result = RunResult(
            runID: runID, status: .error,
            reason: "run did not finish: the harness stopped before recording an outcome",
            kernel: request.kernel.description, machine: request.machine,
            workload: request.workloadScript ?? request.workload, end: .harnessDied,
            startedAt: ISO8601DateFormatter().string(from: Date()))
        try record(result, in: directory)

        let signals = SignalWatch(signals: [SIGINT, SIGTERM])
        defer { signals.stop() }
        do {
            let outcome = try await execute(request, directory: directory, clock: clock, signals: signals, result: &result)
            result.status = outcome.status
            result.reason = outcome.reason
            result.evidence = outcome.evidence
        } catch where signals.received != nil {
            // Ctrl-C reaches make and apt too; what fails after it is the interruption.
            let outcome = interrupted(signals.received!, result: &result)
            result.status = outcome.status
            result.reason = outcome.reason
        } catch let failure as KernelBuildFailure {
            result.status = .buildFail
            result.reason = failure.reason
            result.evidence = ["build log: \(failure.logPath)"]
            result.end = .buildFailed
        } catch {
            // git's errors, a full disk's, Foundation's: one line and the right end.
            let error = HarnessError(error)
            result.status = .error
            result.reason = error.description
            result.end = RunResult.End(error.kind)
        }
        result.timings = clock.timings
        result.finishedAt = ISO8601DateFormatter().string(from: Date())
        try record(result, in: directory)
        return result
    }

    private func record(_ result: RunResult, in directory: String) throws {
        try Files.writeAtomically(try result.json(), to: "\(directory)/result.json")
    }

    private func execute(_ request: RunRequest, directory: String, clock: PhaseClock,
                         signals: SignalWatch, result: inout RunResult) async throws -> Outcome {
        // Inputs first: a bad suppression file is found before a kernel build or a domain start.
        var suppressions = Suppressions(rules: [], machine: request.machine)
        if let file = request.suppressionsFile {
            suppressions = try Suppressions.load(path: file, machine: request.machine)
        }
        if request.runsSvaWorkload {
            suppressions.rules += Self.svaExpectedFaults
        }
        events(.phase("kernel \(request.kernel)"))
        let kernel = try await clock.measure("kernel") { try await prepareKernel(request, directory: directory, result: &result) }
        result.kernelIdentity = kernel.identity
        if let signal = signals.received { return interrupted(signal, result: &result) }

        events(.phase("initramfs"))
        let guest = try GuestAssets.directory()
        var extraFiles: [InitramfsSpec.HostFile] = []
        if request.runsSvaWorkload {
            events(.phase("sva driver and workload"))
            let sva = try await clock.measure("workload-build") {
                try await SvaWorkloadBuilder(cache: cache, guest: guest)
                    .build(kernel: kernel, build: result.build, logDirectory: directory)
            }
            extraFiles.append(.init(hostPath: sva.program, guestPath: "/usr/bin/kharness-sva", mode: 0o755))
            if let module = sva.module {
                extraFiles.append(.init(hostPath: module, guestPath: "/lib/modules/kharness/sva_accel.ko"))
            } else if let why = sva.moduleMissing {
                events(.phase(why))
            }
        }
        let initramfs = try clock.measure("initramfs") {
            try buildInitramfs(request, guest: guest, kernel: kernel, extraFiles: extraFiles)
        }
        try Files.writeAtomically(initramfs.manifest, to: "\(directory)/initramfs.manifest")

        var patchedQemu: String?
        if MachineProfile.needsPatchedQemu(request.machine) {
            events(.phase("patched QEMU (scripts/build-qemu)"))
            patchedQemu = try await clock.measure("qemu") { try await PatchedQemu.path(guest: guest) }
        }
        var profile = try MachineProfile.named(request.machine, patchedEmulator: patchedQemu)
        if let emulator = request.emulator {
            guard FileManager.default.isExecutableFile(atPath: emulator) else {
                throw HarnessError.badInput(emulator, "not an executable QEMU")
            }
            profile.emulator = emulator
        }
        var cmdline = ["console=ttyAMA0", "earlycon", "printk.time=1", "panic=-1", "oops=panic",
                       "rdinit=/init", "kharness.workload=\(request.workloadScript == nil ? request.workload : "custom")"]
        if !request.scenarios.isEmpty { cmdline.append("kharness.scenarios=\(request.scenarios.joined(separator: ","))") }
        cmdline += profile.cmdline + request.extraCmdline
        let consoleLog = "\(directory)/console.log"
        let domainName = "kharness-\(result.runID)"
        var description = DomainDescription(
            name: domainName, emulator: profile.emulator, kernel: kernel.image, initrd: initramfs.path,
            cmdline: cmdline.joined(separator: " "), consoleLog: consoleLog)
        description.vcpus = request.vcpus
        description.memoryMiB = request.memoryMiB
        description.smmuv3 = profile.smmuv3
        description.devices = profile.devices
        description.globals = profile.globals
        // The sva workload streams its trace to a virtio console port that
        // libvirt logs to this file (the console stays the fallback).
        let traceLog = request.runsSvaWorkload ? "\(directory)/trace-port.log" : nil
        description.traceLog = traceLog
        let deviceRecords = request.deviceRecords && request.runsSvaWorkload
            && profile.devices.contains { $0.driver == "sva-accel" }
            ? try DeviceRecordsFile.create(spool: try cache.directory("device-records"), runID: result.runID) : nil
        description.deviceRecordsLog = deviceRecords?.path
        try Files.writeAtomically(description.xml, to: "\(directory)/domain.xml")
        try Files.writeAtomically(description.cmdline + "\n", to: "\(directory)/cmdline")

        if let signal = signals.received { return interrupted(signal, result: &result) }
        events(.phase("start \(domainName)"))
        let connection = try clock.measure("connect") { try LibvirtConnection.shared(uri: request.connectionURI) }
        let domain = try clock.measure("start") { try connection.startTransient(description) }
        let qemuPID = QemuProcess.pid(domain: domainName)

        let watch = GuestWatch(request: request, consoleLog: consoleLog, traceLog: traceLog,
                               suppressions: suppressions, events: events)
        watch.deviceRecords = deviceRecords
        let end = await watch.follow(domain: domain, clock: clock, signals: signals)

        var poweredOff = false
        if case .guestFinished = end, let qemuPID {
            let powerOffStart = Date()
            poweredOff = await Self.awaitPowerOff(qemuPID)
            clock.record("poweroff", since: powerOffStart)
        }
        let teardownStart = Date()
        if !poweredOff, !domain.destroy() || QemuProcess.isRunning(domain: domainName) {
            try? await reap(domainName: domainName, uri: request.connectionURI, pid: qemuPID)
        }
        clock.record("teardown", since: teardownStart)
        try? FileManager.default.copyItem(atPath: QemuProcess.logFile(domain: domainName), toPath: "\(directory)/qemu.log")

        let analysis = watch.finish()
        result.consoleBytes = watch.consoleBytes
        result.kernelRelease = analysis.kernelRelease
        result.scenarios = analysis.scenarios
        result.reports = analysis.reports
        result.unsuppressedReportCounts = analysis.unsuppressedReportCounts
        result.reportsDropped = analysis.reportsDropped
        result.end = RunResult.End(end)
        let lifecycle = watch.lifecycle()
        try deviceRecords?.keep(in: directory)
        let device = watch.deviceOracle(directory: directory)
        let violations = lifecycle.violations + device.violations
        result.lifecycleViolations = violations
        if watch.trace.untrusted { result.traceUntrusted = true }
        try Self.keepTrace(watch.trace, in: directory)
        let expected = RunExpectations(
            workload: request.workload, scenarios: request.scenarios,
            machineHasDevice: request.runsSvaWorkload && profile.devices.contains { $0.driver == "sva-accel" })
        var outcome = decideOutcome(analysis: analysis, end: end, expected: expected)
        if let deviceRecords, deviceRecords.sawFlood { outcome = deviceRecords.floodOutcome(outcome) }
        outcome.evidence += device.notes
        outcome = Self.applyLifecycle(violations, to: outcome)
        if watch.trace.untrusted, !violations.isEmpty {
            outcome.evidence.append("trace: some records came from the console, which any guest process can write")
        }
        return outcome
    }

    /// A guest that said done powers itself off at once (init's `poweroff
    /// -f`): libvirt sees the power-off and QEMU exits within milliseconds.
    /// Returns true once QEMU has exited, false when it is still running
    /// after `limit` (then the domain is destroyed as for any other end).
    ///
    /// The harness does not wait for libvirt's own bookkeeping after that:
    /// libvirt checks that the exited QEMU is gone, finds it not yet reaped,
    /// and pauses 200 ms before looking again (the same pause costs a
    /// destroy at least 200 ms). The domain leaves libvirt's list by itself
    /// then; there is nothing left to stop.
    static func awaitPowerOff(_ pid: pid_t, within limit: Duration = .seconds(1)) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if QemuProcess.hasExited(pid: pid) { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return QemuProcess.hasExited(pid: pid)
    }

    /// The trace as text from every channel (`trace.log`) and as parsed
    /// events, one JSON object per line in timestamp order (`trace-events.jsonl`,
    /// the report's input; the format is `TraceEvent`'s).
    static func keepTrace(_ trace: TraceCollector, in directory: String) throws {
        guard !trace.isEmpty else { return }
        try Files.writeAtomically(trace.text, to: "\(directory)/trace.log")
        var jsonl = ""
        for event in trace.events { jsonl += event.jsonLine + "\n" }
        try Files.writeAtomically(jsonl, to: "\(directory)/trace-events.jsonl")
    }

    /// The sva workload aims jobs at unmapped memory and at dead PASIDs on
    /// purpose and checks every job's status itself, so the SMMU's fault
    /// records are its evidence, not kernel failures. Configuration errors
    /// the driver should never provoke (C_BAD_STE, CMD_SYNC timeouts, storms)
    /// still fail the run.
    static let svaExpectedFaults: [Suppressions.Rule] = [
        "arm-smmu-v3: F_TRANSLATION event", "arm-smmu-v3: F_PERMISSION event", "arm-smmu-v3: F_ACCESS event",
        "arm-smmu-v3: F_ADDR_SIZE event", "arm-smmu-v3: C_BAD_SUBSTREAMID event", "arm-smmu-v3: C_BAD_CD event",
    ].map { Suppressions.Rule(title: $0, reason: "provoked and checked by the sva workload") }

    /// A PASID lifetime violation is the root cause of whatever the kernel
    /// and the workload saw after it (a slab corrupted by the early free
    /// oopses somewhere unrelated), so it names the failure; the earlier
    /// verdict stays as evidence. Harness errors keep their ERROR.
    static func applyLifecycle(_ violations: [PasidLifecycleOracle.Violation], to outcome: Outcome) -> Outcome {
        guard let first = violations.first, outcome.status == .pass || outcome.status == .fail else { return outcome }
        let then = outcome.status == .fail ? ["then: \(outcome.reason)"] : []
        return Outcome(status: .fail, reason: first.title,
                       evidence: violations.map(\.title) + first.evidence + then + outcome.evidence)
    }

    private func interrupted(_ signal: Int32, result: inout RunResult) -> Outcome {
        result.end = .interrupted
        return Outcome(status: .error, reason: "interrupted by \(SignalWatch.name(signal))", evidence: [])
    }

    /// libvirt lost track of the domain (the daemon died): reconnect and
    /// destroy it, or kill the QEMU process directly when the daemon stays away.
    private func reap(domainName: String, uri: String, pid: pid_t?) async throws {
        log.warning("libvirt lost track of the domain; reconnecting to destroy it", metadata: ["domain": "\(domainName)"])
        for _ in 0..<100 {
            if let connection = try? LibvirtConnection(uri: uri) {
                if let domain = connection.domain(named: domainName) { domain.destroy() }
                connection.close()
                if !QemuProcess.isRunning(domain: domainName) {
                    log.info("domain destroyed after reconnecting", metadata: ["domain": "\(domainName)"])
                    return
                }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        guard let pid else {
            log.error("libvirt did not come back and the QEMU pid is unknown", metadata: ["domain": "\(domainName)"])
            return
        }
        let killed = QemuProcess.kill(pid: pid, domain: domainName)
        log.warning("libvirt did not come back; killed QEMU directly", metadata: ["domain": "\(domainName)", "pid": "\(pid)", "killed": "\(killed)"])
    }

    private func prepareKernel(_ request: RunRequest, directory: String, result: inout RunResult) async throws -> KernelArtifacts {
        switch request.kernel {
        case .debian(let version):
            return try await DebianKernelFetcher(cache: cache).fetch(version: version)
        case .image(let path, let modules):
            try KernelImageFile.validate(path)
            if let modules, !Files.isDirectory(modules) {
                throw HarnessError.badInput(modules, "modules directory does not exist")
            }
            return KernelArtifacts(image: Files.absolute(path), modulesDirectory: modules.map(Files.absolute),
                                   identity: "image:\(try Digest.sha256(file: path))")
        case .git:
            let throttle = ProgressThrottle(events: events)
            let builder = KernelBuilder(cache: cache, configDirectory: try KernelBuilder.defaultConfigDirectory()) {
                throttle.report($0)
            }
            // The sva workload loads its driver as a module.
            var fragments = request.configFragments
            if request.runsSvaWorkload, !fragments.contains("modules") {
                fragments.append("modules")
            }
            let build = try await builder.build(
                SourceKernelRequest(spec: request.kernel, series: request.series, fragments: fragments),
                logPath: "\(directory)/build.log")
            result.build = build
            return build.artifacts
        }
    }

    private func buildInitramfs(_ request: RunRequest, guest: String, kernel: KernelArtifacts,
                                extraFiles: [InitramfsSpec.HostFile]) throws -> Initramfs {
        var files = [InitramfsSpec.HostFile(hostPath: "\(guest)/init/init", guestPath: "/init", mode: 0o755)] + extraFiles
        let workloads = "\(guest)/init/workloads"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: workloads))?.sorted() ?? [] where name.hasSuffix(".sh") {
            files.append(.init(hostPath: "\(workloads)/\(name)", guestPath: "/usr/share/kharness/workloads/\(name)"))
        }
        if let script = request.workloadScript {
            files.append(.init(hostPath: script, guestPath: "/usr/share/kharness/workloads/custom.sh"))
        }
        let workloadPath = request.workloadScript ?? "\(workloads)/\(request.workload).sh"
        var modules: InitramfsSpec.Modules?
        if let directory = kernel.modulesDirectory {
            let names = Self.declaredModules(in: (try? String(contentsOfFile: workloadPath, encoding: .utf8)) ?? "")
            modules = InitramfsSpec.Modules(directory: directory, names: names)
        }
        return try InitramfsBuilder(cache: cache).build(InitramfsSpec(busybox: InitramfsSpec.busybox(in: cache),
                                                                      files: files, modules: modules))
    }

    /// A workload names the kernel modules it may load in a header line
    /// `# kharness-modules: a b c`; only those go into the initramfs.
    static func declaredModules(in script: String) -> [String] {
        for line in script.split(separator: "\n").prefix(30) where line.hasPrefix("# kharness-modules:") {
            return line.dropFirst("# kharness-modules:".count).split(separator: " ").map(String.init)
        }
        return []
    }
}

/// kharness's patched QEMU for the SVA machine: `$KHARNESS_QEMU`, else what
/// scripts/build-qemu prints (a cached build answers in well under a second).
enum PatchedQemu {
    static func path(guest: String) async throws -> String {
        if let path = ProcessInfo.processInfo.environment["KHARNESS_QEMU"], !path.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw HarnessError.badInput(path, "KHARNESS_QEMU is not an executable")
            }
            return path
        }
        let script = (guest as NSString).deletingLastPathComponent + "/scripts/build-qemu"
        guard Files.exists(script) else {
            throw HarnessError.infrastructure(script, "not found; set KHARNESS_QEMU to a patched qemu-system-aarch64")
        }
        let result = try await Command.check(script, [], input: "scripts/build-qemu")
        guard let path = result.stdout.split(separator: "\n").last.map(String.init),
              FileManager.default.isExecutableFile(atPath: path)
        else {
            throw HarnessError.infrastructure("scripts/build-qemu", "printed no executable path")
        }
        return path
    }
}

/// Passes on a build's progress when its phase changes and every ten
/// seconds in between, so a 3-minute build is a few lines, not thousands.
final class ProgressThrottle: @unchecked Sendable {
    private let lock = NSLock()
    private var lastPhase: BuildProgress.Phase?
    private var lastElapsed = -100.0
    private let events: @Sendable (RunEvent) -> Void

    init(events: @escaping @Sendable (RunEvent) -> Void) { self.events = events }

    func report(_ progress: BuildProgress) {
        lock.lock()
        let due = progress.phase != lastPhase || progress.elapsed - lastElapsed >= 10
        if due {
            lastPhase = progress.phase
            lastElapsed = progress.elapsed
        }
        lock.unlock()
        if due { events(.phase("build: \(progress.line)")) }
    }
}

/// Seconds spent per phase, in the order they ran.
final class PhaseClock: @unchecked Sendable {
    private(set) var timings: [String: Double] = [:]
    private let start = Date()

    func measure<T>(_ phase: String, _ body: () throws -> T) rethrows -> T {
        let t0 = Date()
        defer { record(phase, since: t0) }
        return try body()
    }

    func measure<T>(_ phase: String, _ body: () async throws -> T) async rethrows -> T {
        let t0 = Date()
        defer { record(phase, since: t0) }
        return try await body()
    }

    func record(_ phase: String, since t0: Date) {
        record(phase, seconds: Date().timeIntervalSince(t0))
    }

    func record(_ phase: String, seconds: Double) {
        timings[phase] = (seconds * 1000).rounded() / 1000
        timings["total"] = (Date().timeIntervalSince(start) * 1000).rounded() / 1000
    }
}

extension RunRequest {
    /// The built-in sva workload: it needs the accelerator driver (so a
    /// kernel with modules), the workload program, and tolerates the SMMU
    /// faults it provokes.
    var runsSvaWorkload: Bool { workload == "sva" && workloadScript == nil }
}
