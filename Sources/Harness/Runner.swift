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
public final class Runner: Sendable {
    public let cache: CacheDirectory
    private let events: @Sendable (RunEvent) -> Void
    /// The backend a request's machine runs on: libvirt at the request's URI
    /// for every real run; tests pass ``ReplayMachines``.
    private let machines: @Sendable (RunRequest) -> any MachineBackend

    /// Every real run's backend: libvirt at the request's connection. The
    /// matrix's default too, so the two cannot come to disagree.
    public static let libvirtMachines: @Sendable (RunRequest) -> any MachineBackend = { LibvirtMachines(uri: $0.connectionURI) }

    public init(cache: CacheDirectory = .fromEnvironment(), events: @escaping @Sendable (RunEvent) -> Void = { _ in },
                machines: @escaping @Sendable (RunRequest) -> any MachineBackend = Runner.libvirtMachines) {
        self.cache = cache
        self.events = events
        self.machines = machines
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
        try SvaWorkloadBuilder.validate(cmdline: request.extraCmdline)
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

    /// The run's stages in order, each taking values and returning values:
    /// kernel, guest image, machine plan, then the machine itself, watched
    /// until it ends, its evidence judged, and the verdict (``observe``). Only what is
    /// recorded goes into `result`, as soon as it is known, so a stage that
    /// fails later still leaves it in `result.json`.
    private func execute(_ request: RunRequest, directory: String, clock: PhaseClock,
                         signals: SignalWatch, result: inout RunResult) async throws -> Outcome {
        // Inputs first: a bad suppression file is found before a kernel build or a domain start.
        let suppressions = try Self.suppressions(for: request)
        events(.phase("kernel \(request.kernel)"))
        let kernel = try await clock.measure("kernel") { try await prepareKernel(request, directory: directory) }
        result.build = kernel.build
        result.kernelIdentity = kernel.artifacts.identity
        if let signal = signals.received { return interrupted(signal, result: &result) }

        let guest = try GuestAssets.directory()
        let initramfs = try await guestImage(request, guest: guest, kernel: kernel, directory: directory, clock: clock)
        let plan = try await machinePlan(request, runID: result.runID, guest: guest, kernel: kernel.artifacts,
                                         initramfs: initramfs, directory: directory, clock: clock)
        try plan.keep(in: directory)
        if let signal = signals.received { return interrupted(signal, result: &result) }

        events(.phase("start \(plan.description.name)"))
        let backend = machines(request)
        try clock.measure("connect") { try backend.connect() }
        let machine = try clock.measure("start") { try backend.start(plan.description) }
        return try await Self.observe(machine, plan: plan, request: request, suppressions: suppressions,
                                      directory: directory, clock: clock, signals: signals, events: events,
                                      result: &result)
    }

    /// A started machine to its verdict: watch it until it ends and stop it
    /// (nothing before that throws, so no machine outlives its run), judge
    /// the evidence, keep the trace, decide. Whatever any backend started
    /// goes through here; the replay tests drive it the same way.
    static func observe(_ machine: any MachineInstance, plan: MachinePlan, request: RunRequest,
                        suppressions: Suppressions, directory: String, clock: PhaseClock, signals: SignalWatch,
                        events: @escaping @Sendable (RunEvent) -> Void, result: inout RunResult) async throws -> Outcome {
        let watched = await watch(machine, plan: plan, request: request, suppressions: suppressions,
                                  directory: directory, clock: clock, signals: signals, events: events)
        watched.record(in: &result)
        let evidence = try judgeEvidence(watched, deviceRecords: plan.deviceRecords, directory: directory,
                                         bindingsTraced: SvaWorkloadBuilder.bindingPattern(request.extraCmdline) != "uio")
        evidence.record(in: &result)
        try keepTrace(watched.trace, in: directory)
        if let notes = result.build?.coverageDirectory {
            events(.phase("coverage (lcov)"))
            result.coverage = await clock.measure("coverage") {
                await CoverageRenderer(notes: notes).render(watched.gcov, into: directory + "/coverage")
            }
            if let problem = result.coverage?.problem { events(.phase(problem)) }
        }
        return verdict(watched, evidence, expected: plan.expectations)
    }

    /// The user's suppressions, plus the faults the sva workload provokes on purpose.
    static func suppressions(for request: RunRequest) throws -> Suppressions {
        var suppressions = Suppressions(rules: [], machine: request.machine)
        if let file = request.suppressionsFile {
            suppressions = try Suppressions.load(path: file, machine: request.machine)
        }
        if request.runsSvaWorkload {
            suppressions.rules += Self.svaExpectedFaults
        }
        return suppressions
    }

    /// The guest image stage: the sva driver and program when the workload
    /// needs them, then the initramfs (its manifest kept in the run directory).
    private func guestImage(_ request: RunRequest, guest: String, kernel: PreparedKernel, directory: String,
                            clock: PhaseClock) async throws -> Initramfs {
        events(.phase("initramfs"))
        var extraFiles: [InitramfsSpec.HostFile] = []
        if request.runsSvaWorkload {
            events(.phase("sva driver and workload"))
            let sva = try await clock.measure("workload-build") {
                try await SvaWorkloadBuilder(cache: cache, guest: guest)
                    .build(kernel: kernel.artifacts, build: kernel.build, logDirectory: directory)
            }
            extraFiles.append(.init(hostPath: sva.program, guestPath: "/usr/bin/kharness-sva", mode: 0o755))
            if let module = sva.module {
                extraFiles.append(.init(hostPath: module, guestPath: "/lib/modules/kharness/sva_accel.ko"))
            } else if let why = sva.moduleMissing {
                events(.phase(why))
            }
        }
        let initramfs = try clock.measure("initramfs") {
            try buildInitramfs(request, guest: guest, kernel: kernel.artifacts, extraFiles: extraFiles)
        }
        try Files.writeAtomically(initramfs.manifest, to: "\(directory)/initramfs.manifest")
        return initramfs
    }

    /// What the machine will be, decided before anything starts it: the
    /// profile and its QEMU, the kernel command line, the streams' files.
    struct MachinePlan {
        var description: DomainDescription
        /// sva-accel's records file in the cache's spool, when the machine has the device.
        var deviceRecords: DeviceRecordsFile?
        var expectations: RunExpectations

        /// `domain.xml` and `cmdline` in the run directory: what was started, for whoever reads the run.
        func keep(in directory: String) throws {
            try Files.writeAtomically(description.xml, to: "\(directory)/domain.xml")
            try Files.writeAtomically(description.cmdline + "\n", to: "\(directory)/cmdline")
        }
    }

    private func machinePlan(_ request: RunRequest, runID: String, guest: String, kernel: KernelArtifacts,
                             initramfs: Initramfs, directory: String, clock: PhaseClock) async throws -> MachinePlan {
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
        var description = DomainDescription(
            name: "kharness-\(runID)", emulator: profile.emulator, kernel: kernel.image, initrd: initramfs.path,
            cmdline: cmdline.joined(separator: " "), consoleLog: "\(directory)/console.log")
        description.vcpus = request.vcpus
        description.memoryMiB = request.memoryMiB
        description.smmuv3 = profile.smmuv3
        description.devices = profile.devices
        description.globals = profile.globals
        // The sva workload streams its trace to a virtio console port that
        // libvirt logs to this file (the console stays the fallback).
        description.traceLog = request.runsSvaWorkload ? "\(directory)/trace-port.log" : nil
        let hasDevice = request.runsSvaWorkload && profile.devices.contains { $0.driver == "sva-accel" }
        let deviceRecords = request.deviceRecords && hasDevice
            ? try DeviceRecordsFile.create(spool: try cache.directory("device-records"), runID: runID) : nil
        description.deviceRecordsLog = deviceRecords?.path
        return MachinePlan(
            description: description, deviceRecords: deviceRecords,
            expectations: RunExpectations(workload: request.workload, scenarios: request.scenarios,
                                          machineHasDevice: hasDevice))
    }

    /// What the watch saw, once the machine is gone and the console and the
    /// trace are read to their ends.
    struct Watched {
        var end: RunEnd
        var analysis: ConsoleAnalysis
        var consoleBytes: Int
        var trace: TraceCollector
        var gcov: GcovSection
        var lifecycle: PasidLifecycleOracle

        func record(in result: inout RunResult) {
            result.consoleBytes = consoleBytes
            result.kernelRelease = analysis.kernelRelease
            result.scenarios = analysis.scenarios
            result.reports = analysis.reports
            result.unsuppressedReportCounts = analysis.unsuppressedReportCounts
            result.reportsDropped = analysis.reportsDropped
            result.end = RunResult.End(end)
        }
    }

    /// The watch stage: follows a started machine until it ends, stops it
    /// (whatever the end: this never throws, so no started machine outlives
    /// its run), keeps the emulator's log, and reads what is left of the
    /// console and the trace.
    static func watch(_ machine: any MachineInstance, plan: MachinePlan, request: RunRequest,
                      suppressions: Suppressions, directory: String, clock: PhaseClock, signals: SignalWatch,
                      events: @escaping @Sendable (RunEvent) -> Void) async -> Watched {
        let watch = GuestWatch(request: request, consoleLog: plan.description.consoleLog,
                               traceLog: plan.description.traceLog, suppressions: suppressions, events: events)
        watch.deviceRecords = plan.deviceRecords
        let end = await watch.follow(machine: machine, clock: clock, signals: signals)
        await stop(machine, after: end, clock: clock)
        if let log = machine.emulatorLog {
            try? FileManager.default.copyItem(atPath: log, toPath: "\(directory)/qemu.log")
        }
        let analysis = await watch.finish()
        return Watched(end: end, analysis: analysis, consoleBytes: watch.consoleBytes, trace: watch.trace,
                       gcov: watch.gcov, lifecycle: watch.lifecycle())
    }

    /// A guest that said done powers itself off: wait a moment for that
    /// (``MachineInstance/awaitPowerOff(within:)``), else destroy the machine.
    static func stop(_ machine: any MachineInstance, after end: RunEnd, clock: PhaseClock) async {
        var poweredOff = false
        if case .guestFinished = end {
            let powerOffStart = Date()
            if let exited = await machine.awaitPowerOff(within: .seconds(1)) {
                poweredOff = exited
                clock.record("poweroff", since: powerOffStart)
            }
        }
        let teardownStart = Date()
        if !poweredOff { await machine.destroy() }
        clock.record("teardown", since: teardownStart)
    }

    /// What the device's records and the trace say about PASID lifetimes.
    struct Evidence {
        var violations: [PasidLifecycleOracle.Violation]
        var traceUntrusted: Bool
        /// The device oracle's notes, kept as evidence whatever the verdict.
        var deviceNotes: [String]
        /// The records file's size when the device flooded it.
        var deviceFloodBytes: Int?

        func record(in result: inout RunResult) {
            result.lifecycleViolations = violations
            if traceUntrusted { result.traceUntrusted = true }
        }
    }

    /// The evidence stage: keeps the device's records in the run directory
    /// and runs the lifecycle and device oracles over them and the trace.
    static func judgeEvidence(_ watched: Watched, deviceRecords: DeviceRecordsFile?,
                              directory: String, bindingsTraced: Bool = true) throws -> Evidence {
        try deviceRecords?.keep(in: directory)
        let device = DeviceRecordsFile.oracle(deviceRecords, trace: watched.trace, directory: directory,
                                              bindingsTraced: bindingsTraced)
        // The SMMU's own word (the console's events) on a descriptor deactivated under DMA;
        // only where the sva workload's driver binds (its trace says which PASIDs are whose).
        let descriptors = bindingsTraced && !watched.trace.isEmpty
            ? ContextDescriptorOracle.judge(smmuEvents: watched.analysis.smmuEvents, events: watched.trace.events) : []
        return Evidence(violations: watched.lifecycle.violations + device.violations + descriptors,
                        traceUntrusted: watched.trace.untrusted, deviceNotes: device.notes,
                        deviceFloodBytes: deviceRecords.flatMap { $0.sawFlood ? $0.size : nil })
    }

    /// The verdict stage, no I/O: the classifier's verdict on the console and
    /// how the run ended, then the device's flood, the oracles' violations.
    static func verdict(_ watched: Watched, _ evidence: Evidence, expected: RunExpectations) -> Outcome {
        var outcome = decideOutcome(analysis: watched.analysis, end: watched.end, expected: expected)
        if let bytes = evidence.deviceFloodBytes { outcome = DeviceRecordsFile.floodOutcome(outcome, recordsBytes: bytes) }
        outcome.evidence += evidence.deviceNotes
        outcome = Self.applyLifecycle(evidence.violations, to: outcome)
        if evidence.traceUntrusted, !evidence.violations.isEmpty {
            outcome.evidence.append("trace: some records came from the console, which any guest process can write")
        }
        return outcome
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
    /// still fail the run. C_BAD_CD is not one the workload provokes: it stays
    /// here as a report because `ContextDescriptorOracle` judges it, with the
    /// PASID's bindings, under its own title.
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

    /// A kernel ready to boot, and for `git:` kernels the build's record
    /// (base, patches, hashes), which the result keeps and the sva module is built against.
    struct PreparedKernel {
        var artifacts: KernelArtifacts
        var build: KernelBuild?
    }

    private func prepareKernel(_ request: RunRequest, directory: String) async throws -> PreparedKernel {
        switch request.kernel {
        case .debian(let version):
            return PreparedKernel(artifacts: try await DebianKernelFetcher(cache: cache).fetch(version: version))
        case .image(let path, let modules):
            try KernelImageFile.validate(path)
            if let modules, !Files.isDirectory(modules) {
                throw HarnessError.badInput(modules, "modules directory does not exist")
            }
            return PreparedKernel(artifacts: KernelArtifacts(
                image: Files.absolute(path), modulesDirectory: modules.map(Files.absolute),
                identity: try KernelImageFile.identity(of: path)))
        case .git:
            let throttle = BuildProgress.Throttle(interval: 10)
            let builder = KernelBuilder(cache: cache, configDirectory: try KernelBuilder.defaultConfigDirectory()) {
                [events] progress in
                if throttle.due(progress) { events(.phase("build: \(progress.line)")) }
            }
            let build = try await builder.build(
                SourceKernelRequest(spec: request.kernel, series: request.series, fragments: request.kernelFragments),
                logPath: "\(directory)/build.log")
            return PreparedKernel(artifacts: build.artifacts, build: build)
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

/// Seconds spent per phase, in the order they ran.
/// Not Sendable: a run's stages use it one after another, and the compiler keeps it in that one task.
final class PhaseClock {
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
