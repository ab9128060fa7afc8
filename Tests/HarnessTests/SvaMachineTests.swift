import Classify
import Foundation
import RunModel
import Kernel
import KernelTestSupport
import Support
import XCTest

@testable import Harness

/// The SVA machine on the real stack: kharness's patched QEMU (built by
/// scripts/build-qemu), a 6.12 kernel built from Debian's source with SVA,
/// the sva-accel driver and the workload's scenarios.
final class SvaMachineTests: XCTestCase {

    static let patchedQemu = Task { () throws -> String in
        let result = try await Command.check(Checkout.path("scripts/build-qemu"), [])
        return try XCTUnwrap(result.stdout.split(separator: "\n").last.map(String.init))
    }

    private var resultsRoot = ""

    override func setUp() async throws {
        resultsRoot = NSTemporaryDirectory() + "kharness-sva-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: resultsRoot, withIntermediateDirectories: true)
    }

    private func smmuFeatures(_ result: RunResult) -> String? {
        result.scenarios.first?.evidence.first { $0.contains("features 0x") }
    }

    /// With the substream property at its default (0) the patched SMMU
    /// advertises exactly what stock QEMU's does.
    func testPatchedQemuWithoutSubstreamsHasStockIDRegisters() async throws {
        var stock = RunRequest(kernel: .debian(version: "6.1"))
        stock.resultsRoot = resultsRoot
        var patched = stock
        patched.emulator = try await Self.patchedQemu.value
        let a = try await Runner().run(stock)
        let b = try await Runner().run(patched)
        XCTAssertEqual(a.status, .pass, a.reason)
        XCTAssertEqual(b.status, .pass, b.reason)
        let stockLine = try XCTUnwrap(smmuFeatures(a))
        XCTAssertEqual(smmuFeatures(b), stockLine)
    }

    /// `tree`: Debian's 6.12 source unless given.
    private func svaRun(tree: String? = nil, series: String? = nil, scenarios: [String] = [],
                        kasan: Bool = false, coverage: Bool = false, fragments: [String] = [],
                        cmdline: [String] = [], machine: String = "sva") async throws -> RunResult {
        setenv("KHARNESS_QEMU", try await Self.patchedQemu.value, 1)
        let source: String
        if let tree { source = tree } else { source = try await KernelSources.tree("6.12") }
        var request = RunRequest(kernel: .git(tree: source, revision: "HEAD"))
        request.series = series
        request.configFragments = ["smmuv3", "trace", "modules"] + (kasan ? ["kasan"] : []) + (coverage ? ["coverage"] : []) + fragments
        request.machine = machine
        request.workload = "sva"
        request.scenarios = scenarios
        request.extraCmdline = cmdline
        request.resultsRoot = resultsRoot
        return try await Runner().run(request)
    }

    /// `scenario` alone on the clean kernel: PASS, no lifetime or device violation.
    private func expectClean(_ scenario: String) async throws {
        let clean = try await svaRun(scenarios: [scenario])
        XCTAssertEqual(clean.status, .pass, clean.reason)
        XCTAssertTrue(clean.lifecycleViolations.isEmpty, "\(clean.lifecycleViolations.map(\.title))")
    }

    /// A device-side plant (`guest/patches/<patch>.patch`) with `scenario` alone: FAIL with a
    /// device oracle's title starting with `titlePrefix` and ending in `titleSuffix`. Returns
    /// the run for its evidence.
    private func plantedDeviceRun(_ patch: String, scenario: String, titleSuffix: String,
                                  titlePrefix: String = "device DMA through PASID ",
                                  tree: String? = nil) async throws -> RunResult {
        let run = try await svaRun(tree: tree, series: Checkout.root + "/guest/patches/\(patch).patch",
                                   scenarios: [scenario])
        XCTAssertEqual(run.status, .fail, "\(patch): \(run.reason)")
        XCTAssertTrue(run.reason.hasPrefix(titlePrefix) && run.reason.hasSuffix(titleSuffix),
                      "\(patch): \(run.reason)")
        return run
    }

    /// The SMMU's own title for an ASID reused without invalidation (its `stale-hit` record).
    static let staleTlbPrefix = "SMMU translated PASID "
    static let staleTlbSuffix = " reused without invalidation)"

    /// Every scenario binds, forks and exits with every byte checked; the
    /// faults it provokes show up as SMMU events naming a substream.
    func testEveryScenarioPassesOnACleanKernel() async throws {
        let result = try await svaRun()
        XCTAssertEqual(result.status, .pass, result.reason)
        let names = result.scenarios.map(\.name)
        for expected in ["baseline", "exit-no-unbind", "sigkill-inflight", "fork-before-bind", "fork-after-bind-use",
                         "fork-after-bind-hold", "nginx", "pasid-reuse", "threads", "munmap-dma", "exec-after-bind", "fd-leak", "exit-inflight-dma",
                         "munmap-inflight-dma", "exit-parent-inflight-dma", "unbind-one-of-two", "asid-reuse", "two-devices"] {
            XCTAssertTrue(names.contains(expected), "scenario \(expected) missing from \(names)")
        }
        XCTAssertTrue(result.scenarios.allSatisfy { $0.status == .pass }, "\(result.scenarios.map { "\($0.name) \($0.status)" })")
        let faults = result.reports.filter { $0.title == "arm-smmu-v3: F_TRANSLATION event" }
        XCTAssertFalse(faults.isEmpty, "munmap-dma should provoke a translation fault")
        XCTAssertTrue(faults.allSatisfy(\.suppressed))
        let console = try String(contentsOfFile: "\(resultsRoot)/\(result.runID)/console.log", encoding: .utf8)
        XCTAssertTrue(console.contains("mode sva"), "the driver did not run in SVA mode")
        XCTAssertEqual(result.lifecycleViolations, [])
        try checkTraceOnThePort(result)
    }

    /// The trace came through the virtio port, not the console, and was
    /// kept as text and as events (the report's input).
    private func checkTraceOnThePort(_ result: RunResult) throws {
        let directory = "\(resultsRoot)/\(result.runID)"
        let console = try String(contentsOfFile: "\(directory)/console.log", encoding: .utf8)
        XCTAssertFalse(console.contains("sva_accel_bind: pid="), "the trace went to the console")
        XCTAssertTrue(console.contains("trace streamed to /dev/vport"), "the guest found no trace port")
        let port = try String(contentsOfFile: "\(directory)/trace-port.log", encoding: .utf8)
        XCTAssertTrue(port.contains("sva_accel_bind: pid="), "the port carried the trace")
        XCTAssertTrue(port.contains("# kharness trace-end overruns=0"), "the trace ended whole")
        let trace = try String(contentsOfFile: "\(directory)/trace.log", encoding: .utf8)
        XCTAssertTrue(trace.contains("sva_accel_bind: pid="), "trace.log holds the trace")
        XCTAssertFalse(trace.contains("@@kharness") || trace.contains("# kharness"), "trace.log holds only the trace")
        let jsonl = try String(contentsOfFile: "\(directory)/trace-events.jsonl", encoding: .utf8)
        var kinds: [String: Int] = [:]
        var last = -1.0
        for line in jsonl.split(separator: "\n") {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], String(line))
            XCTAssertTrue(Set(object.keys).isSubset(of: ["ts", "pid", "comm", "event", "pasid", "mm", "child"]), String(line))
            let ts = try XCTUnwrap(object["ts"] as? Double)
            XCTAssertGreaterThanOrEqual(ts, last)
            last = ts
            kinds[try XCTUnwrap(object["event"] as? String), default: 0] += 1
        }
        for kind in ["fork", "exit", "bind", "unbind", "pasid_alloc", "pasid_free", "mm_drop"] {
            XCTAssertGreaterThan(kinds[kind] ?? 0, 0, "no \(kind) event in \(kinds)")
        }
        XCTAssertEqual(kinds["bind"], port.components(separatedBy: "sva_accel_bind: pid=").count - 1 - (kinds["bind_refused"] ?? 0))
    }

    /// The same on a kernel with KASAN: the PASID and mm lifetimes the
    /// workload drives leave no use-after-free behind on a clean kernel.
    func testEveryScenarioPassesWithKasan() async throws {
        let result = try await svaRun(kasan: true)
        XCTAssertEqual(result.status, .pass, result.reason)
        XCTAssertEqual(result.scenarios.count, 18)
        XCTAssertTrue(result.scenarios.allSatisfy { $0.status == .pass }, "\(result.scenarios.map { "\($0.name) \($0.status)" })")
        let console = try String(contentsOfFile: "\(resultsRoot)/\(result.runID)/console.log", encoding: .utf8)
        XCTAssertTrue(console.contains("KernelAddressSanitizer initialized"), "the kernel has no KASAN")
        XCTAssertEqual(result.reports.filter { $0.category == .kasan }, [])
        XCTAssertEqual(result.lifecycleViolations, [])
        try checkTraceOnThePort(result)
    }

    /// 701fac40384f brought back: the PASID is freed at mmput while the
    /// device still holds it, and the run fails.
    func testPlantedPasidUseAfterFreeFails() async throws {
        let result = try await svaRun(series: Checkout.root + "/guest/patches/pasid-uaf-6.12.patch")
        XCTAssertEqual(result.status, .fail, result.reason)
        XCTAssertEqual(result.build?.patches.count, 1)
        XCTAssertFalse(result.scenarios.allSatisfy { $0.status == .pass })
        // The verdict names the root cause, not the oops that follows it.
        XCTAssertTrue(result.reason.hasPrefix("PASID ") && result.reason.contains("while still bound to pid"), result.reason)
        XCTAssertFalse(result.lifecycleViolations.isEmpty)
    }

    /// The driver's version shims and the probes of an older kernel: 6.1
    /// binds with three arguments, enables IOMMU_DEV_FEAT_SVA and frees
    /// PASIDs through ioasid, as the kernels of the 2022 bug did. Every
    /// scenario passes on it, and the bug planted in its form is caught.
    func testDebian61SourcePassesAndTheBugPlantedInItFails() async throws {
        let tree = try await KernelSources.tree("6.1")
        let clean = try await svaRun(tree: tree)
        XCTAssertEqual(clean.status, .pass, clean.reason)
        // Whatever point release Debian serves: the one the built tree's Makefile names.
        let build = try XCTUnwrap(clean.build)
        let release = try await KernelSources.release(tree: tree, revision: build.builtCommit,
                                                      fragments: build.configFragments)
        XCTAssertEqual(clean.kernelRelease, release)
        XCTAssertEqual(clean.scenarios.count, 18)
        XCTAssertTrue(clean.scenarios.allSatisfy { $0.status == .pass }, "\(clean.scenarios.map { "\($0.name) \($0.status)" })")
        let console = try String(contentsOfFile: "\(resultsRoot)/\(clean.runID)/console.log", encoding: .utf8)
        XCTAssertTrue(console.contains("mode sva"), "the driver did not run in SVA mode")
        XCTAssertTrue(console.contains("ioasid_free=ioasid_free"), "6.1 frees PASIDs through ioasid")
        XCTAssertEqual(clean.lifecycleViolations, [])
        try checkTraceOnThePort(clean)

        let planted = try await svaRun(tree: tree, series: Checkout.root + "/guest/patches/pasid-uaf-6.1.patch")
        XCTAssertEqual(planted.status, .fail, planted.reason)
        XCTAssertTrue(planted.reason.hasPrefix("PASID ") && planted.reason.contains("while still bound to pid"), planted.reason)

        // The device-side bugs in 6.1's form, each with the scenario that shows it and its
        // oracle's title (the kernel's own checks see none of them).
        let deviceSide = [
            // Not exit-parent-inflight-dma: there the device's reads after the teardown come only
            // from the SMMU's cached translations, and under load about 1 run in 8 saw none.
            ("dma-after-release-6.1", "exit-inflight-dma", " was torn down"),
            ("stale-iotlb-6.1", "munmap-inflight-dma", " had unmapped"),
            ("sva-detach-early-6.1", "unbind-one-of-two", " faulted while its binding was live"),
        ]
        for (patch, scenario, titleSuffix) in deviceSide {
            _ = try await plantedDeviceRun(patch, scenario: scenario, titleSuffix: titleSuffix, tree: tree)
        }
        let deactivated = try await svaRun(tree: tree, series: Checkout.root + "/guest/patches/cd-deactivate-6.1.patch",
                                           scenarios: ["exit-inflight-dma"])
        XCTAssertEqual(deactivated.status, .fail, deactivated.reason)
        XCTAssertTrue(deactivated.reason.hasPrefix("context descriptor of PASID "), deactivated.reason)
    }

    /// The newest kernels Debian ships: 7.2, and 7.3, whose Kconfig renamed PROC_SYSCTL
    /// (KconfigRename gives it the new name). Each passes every scenario, and the 2022
    /// seed in their form (one patch: `__mmput()` is the same in both) is caught by the
    /// lifecycle oracle.
    func testDebian7SourcesPassAndTheSeedPlantedInThemFails() async throws {
        for version in ["7.2", "7.3"] {
            let tree = try await KernelSources.tree(version)
            let clean = try await svaRun(tree: tree)
            XCTAssertEqual(clean.status, .pass, "\(version): \(clean.reason)")
            let build = try XCTUnwrap(clean.build)
            let release = try await KernelSources.release(tree: tree, revision: build.builtCommit,
                                                          fragments: build.configFragments)
            XCTAssertEqual(clean.kernelRelease, release)
            XCTAssertTrue(release.hasPrefix(version + "."), release)
            XCTAssertEqual(clean.scenarios.count, 18, version)
            XCTAssertTrue(clean.scenarios.allSatisfy { $0.status == .pass },
                          "\(version): \(clean.scenarios.map { "\($0.name) \($0.status)" })")
            XCTAssertEqual(clean.lifecycleViolations, [], version)
            try checkTraceOnThePort(clean)

            let planted = try await svaRun(tree: tree, series: Checkout.root + "/guest/patches/pasid-uaf-7.x.patch")
            XCTAssertEqual(planted.status, .fail, "\(version): \(planted.reason)")
            XCTAssertTrue(planted.reason.hasPrefix("PASID ") && planted.reason.contains("while still bound to pid"),
                          "\(version): \(planted.reason)")
        }
        // 7.x flushes an ASID when its last device detaches (the invalidation arrays), not
        // when the domain is freed: the ASID plant has its own form there.
        _ = try await plantedDeviceRun("asid-reuse-7.x", scenario: "asid-reuse", titleSuffix: Self.staleTlbSuffix,
                                       titlePrefix: Self.staleTlbPrefix, tree: try await KernelSources.tree("7.2"))
    }

    /// The driver binding as the drivers that ship do (`kharness.sva.pattern=`, the
    /// module's `pattern`): uacce's (bind in open, unbind in release, no mm reference of
    /// the driver's own) and a deferred unbind from a workqueue after the file is gone
    /// (no reference either). A clean 6.12 and 7.2 pass every scenario under both, and
    /// the trace shows each pattern's own unbinds (the default's are by ioctl and release).
    func testEveryBindingPatternIsCleanOnACleanKernel() async throws {
        for version in ["6.12", "7.2"] {
            let tree = try await KernelSources.tree(version)
            for (pattern, unbindsBy) in [("uacce", "release"), ("deferred", "work")] {
                let run = try await svaRun(tree: tree, cmdline: ["kharness.sva.pattern=\(pattern)"])
                let what = "\(version) \(pattern)"
                XCTAssertEqual(run.status, .pass, "\(what): \(run.reason)")
                XCTAssertEqual(run.scenarios.count, 18, what)
                XCTAssertTrue(run.scenarios.allSatisfy { $0.status == .pass },
                              "\(what): \(run.scenarios.filter { $0.status != .pass }.map { "\($0.name): \($0.reason)" })")
                XCTAssertEqual(run.lifecycleViolations, [], what)
                let directory = "\(resultsRoot)/\(run.runID)"
                let console = try String(contentsOfFile: "\(directory)/console.log", encoding: .utf8)
                XCTAssertTrue(console.contains("sva_accel: binding pattern \(pattern)"), "\(what): the module took another pattern")
                let trace = try String(contentsOfFile: "\(directory)/trace.log", encoding: .utf8)
                let unbinds = trace.split(separator: "\n").filter { $0.contains("sva_accel_unbind:") }
                XCTAssertFalse(unbinds.isEmpty, what)
                XCTAssertTrue(unbinds.contains { $0.hasSuffix(" by=\(unbindsBy)") }, "\(what): no unbind by \(unbindsBy)")
                if pattern == "uacce" {
                    XCTAssertFalse(unbinds.contains { $0.hasSuffix(" by=ioctl") }, "\(what): uacce has no UNBIND")
                }
            }
        }
    }

    /// Linux 7.x's in-tree uio_pci_generic_sva drives sva-accel from user space (the uio
    /// pattern and fragment): a process binds in open() and programs the device through
    /// the mapped BAR. One opener at a time works on a clean 7.3. Two openers at once do
    /// not: the driver keeps one handle per device, so the first release unbinds the
    /// second opener's binding and the second release unbinds that freed handle again,
    /// which the kernel reports as a refcount underflow or a NULL dereference in
    /// iommu_sva_unbind_device (a bug of the in-tree driver, found here).
    func testInTreeUioDriverBindsOnOpenAndBreaksWithTwoOpeners() async throws {
        let tree = try await KernelSources.tree("7.3")
        let single = try await svaRun(tree: tree, scenarios: ["uio-baseline", "uio-exit-open"], fragments: ["uio"],
                                      cmdline: ["kharness.sva.pattern=uio"])
        XCTAssertEqual(single.status, .pass, single.reason)
        XCTAssertEqual(single.scenarios.map(\.name), ["uio-baseline", "uio-exit-open"])
        XCTAssertTrue(single.scenarios.allSatisfy { $0.status == .pass }, "\(single.scenarios.map(\.reason))")
        XCTAssertTrue(single.scenarios[0].reason.contains("through uio_pci_generic_sva's open"), single.scenarios[0].reason)
        let console = try String(contentsOfFile: "\(resultsRoot)/\(single.runID)/console.log", encoding: .utf8)
        XCTAssertFalse(console.contains("sva_accel: binding pattern"), "the sva_accel driver was loaded")

        let two = try await svaRun(tree: tree, scenarios: ["uio-two-openers"], fragments: ["uio"],
                                   cmdline: ["kharness.sva.pattern=uio"])
        XCTAssertEqual(two.status, .fail, two.reason)
        // The freed handle is used again: a refcount underflow warning, or a NULL
        // dereference when its memory was reused (both seen here).
        XCTAssertTrue(two.reason.hasSuffix(" in iommu_sva_unbind_device"), two.reason)

        // The sva_accel scenarios are not the uio pattern's, and the other way round.
        let mixed = try await svaRun(tree: tree, scenarios: ["baseline", "uio-baseline"])
        XCTAssertEqual(mixed.scenarios.map(\.status), [.pass, .skip])
        XCTAssertEqual(mixed.scenarios.last?.reason, "needs the uio pattern (kharness.sva.pattern=uio)")
    }

    /// A coverage kernel (the `coverage` fragment): the guest's gcov counters come back
    /// over the trace port, and result.json names the SVA code the run reached, with
    /// the numbers gcov itself gives on the same data.
    func testCoverageRunReportsTheSvaCodeItReachedAsGcovDoes() async throws {
        let run = try await svaRun(scenarios: ["baseline", "exit-no-unbind"], coverage: true)
        XCTAssertEqual(run.status, .pass, run.reason)
        XCTAssertNotNil(run.build?.coverageDirectory)
        let coverage = try XCTUnwrap(run.coverage)
        XCTAssertNil(coverage.problem)
        XCTAssertEqual(Set(coverage.files.map(\.path)).isSuperset(of: [
            "drivers/iommu/iommu-sva.c", "drivers/iommu/iommu.c", "drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-sva.c",
            "drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c", "mm/mmu_notifier.c", "kernel/fork.c"]), true,
                       "\(coverage.files.map(\.path))")
        let sva = try XCTUnwrap(coverage.file("drivers/iommu/iommu-sva.c"))
        XCTAssertTrue(sva.functionsReached.contains("iommu_sva_bind_device"), "\(sva.functionsReached)")
        XCTAssertTrue(sva.functionsReached.contains("iommu_sva_unbind_device"), "\(sva.functionsReached)")
        XCTAssertGreaterThan(sva.linesHit, 0)
        XCTAssertLessThan(sva.linesHit, sva.linesFound, "some of iommu-sva.c is never reached (the IOPF handler)")
        XCTAssertEqual(sva.linesNotReached.count, sva.linesFound - sva.linesHit)
        let directory = "\(resultsRoot)/\(run.runID)"
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(directory)/\(try XCTUnwrap(coverage.html))"))

        // gcov by hand on the counters and notes the run kept: the same lines, the same hits.
        let data = "\(directory)/coverage/data/drivers/iommu"
        let gcov = try await Command.run("aarch64-linux-gnu-gcov", ["-n", "-o", data, "\(data)/iommu-sva.gcda"],
                                         workingDirectory: directory)
        XCTAssertTrue(gcov.succeeded, gcov.stderr)
        let lines = gcov.stdout.split(separator: "\n").map(String.init)
        let file = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("File '") && $0.hasSuffix("iommu-sva.c'") }, gcov.stdout)
        let executed = lines[file + 1]  // "Lines executed:61.54% of 130"
        let parts = executed.dropFirst("Lines executed:".count).split(separator: "%")
        let percent = try XCTUnwrap(Double(parts[0]), executed)
        let found = try XCTUnwrap(Int(parts[1].dropFirst(" of ".count)), executed)
        XCTAssertEqual(found, sva.linesFound, executed)
        XCTAssertEqual(Int((percent * Double(found) / 100).rounded()), sva.linesHit, executed)
    }

    /// The allocator forgets what it handed out: the next address space gets
    /// the PASID another one still holds. The verdict names the allocation,
    /// not the refused binds and the early frees that follow from it.
    func testPlantedDoubleHandOutFails() async throws {
        let result = try await svaRun(series: Checkout.root + "/guest/patches/pasid-double-6.12.patch")
        XCTAssertEqual(result.status, .fail, result.reason)
        XCTAssertTrue(result.reason.hasPrefix("PASID ") && result.reason.contains(" handed out to pid "), result.reason)
        let first = try XCTUnwrap(result.lifecycleViolations.first)
        XCTAssertEqual(first.evidence.filter { $0.contains("alloc_global_pasid_ret") }.count, 2,
                       "the evidence is the two allocations of one PASID: \(first.evidence)")
        XCTAssertTrue(result.scenarios.contains { $0.status == .fail && $0.reason.contains("EBUSY") },
                      "the workload sees the refused binds: \(result.scenarios.map(\.reason))")
    }

    /// The opposite mistake: __mmdrop never gives the PASID back. Every
    /// scenario still passes and KASAN would see nothing; only the trace
    /// shows address spaces dropped with their PASIDs still allocated.
    func testPlantedPasidLeakFails() async throws {
        let result = try await svaRun(series: Checkout.root + "/guest/patches/pasid-leak-6.12.patch")
        XCTAssertEqual(result.status, .fail, result.reason)
        XCTAssertEqual(result.scenarios.count, 18)
        XCTAssertTrue(result.scenarios.allSatisfy { $0.status == .pass }, "\(result.scenarios.map { "\($0.name) \($0.status)" })")
        XCTAssertTrue(result.reason.hasPrefix("PASID ") && result.reason.contains("never freed after every holder was gone"),
                      result.reason)
        XCTAssertFalse(result.lifecycleViolations.isEmpty)
        XCTAssertTrue(result.lifecycleViolations.allSatisfy { $0.title.contains("never freed") },
                      "\(result.lifecycleViolations.map(\.title))")
        XCTAssertTrue(result.lifecycleViolations[0].evidence.contains { $0.contains("mmdrop") },
                      "the evidence shows the address space being dropped: \(result.lifecycleViolations[0].evidence)")
    }

    /// The SVA release notifier is gone: the device keeps translating
    /// through the dead address space's cached entries until the unbind.
    /// The kernel's own bookkeeping is intact; only the device's records,
    /// ordered against the trace's mm release, show it. The clean kernel
    /// runs the same scenario: its DMA after the release faults.
    /// QEMU (libvirt's unprivileged user) writes the device records itself, and a user's
    /// results directory may be one it cannot enter: the records still reach the run
    /// directory, and nothing is left in the spool.
    func testDeviceRecordsReachAPrivateResultsDirectory() async throws {
        XCTAssertEqual(chmod(resultsRoot, 0o700), 0)
        let result = try await svaRun(scenarios: ["baseline"])
        XCTAssertEqual(result.status, .pass, result.reason)
        let records = "\(resultsRoot)/\(result.runID)/device.log"
        let size = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: records)[.size] as? Int)
        XCTAssertGreaterThan(size, 0, "the device recorded the scenario's DMA")
        let spool = CacheDirectory.fromEnvironment().root + "/device-records/\(result.runID).log"
        XCTAssertFalse(FileManager.default.fileExists(atPath: spool), "left in the spool: \(spool)")
    }

    func testPlantedDmaAfterReleaseFailsWithTheDeviceTitle() async throws {
        try await expectClean("exit-inflight-dma")
        // The scenario's job repeats until the driver stops it, so it is in flight across
        // the release on every run: one run of the planted kernel must be enough.
        let planted = try await plantedDeviceRun("dma-after-release-6.12", scenario: "exit-inflight-dma",
                                                 titleSuffix: " was torn down")
        let violation = try XCTUnwrap(planted.lifecycleViolations.first)
        XCTAssertTrue(violation.evidence.contains { $0.contains("mmu_notifier_release_ret") }, "\(violation.evidence)")
        XCTAssertTrue(violation.evidence.contains { $0.hasPrefix("device: t=") && $0.contains(" pa=0x") }, "\(violation.evidence)")
        XCTAssertTrue(planted.scenarios.allSatisfy { $0.status == .pass }, "the workload itself sees nothing wrong")
    }

    /// The SVA notifier skips the SMMU's TLB invalidation (coherent walks taken for TLB
    /// coherence): the device keeps streaming from pages the process unmapped and into
    /// pages it made read-only. The device oracle names it, ahead of the workload's own
    /// check, with the marker and the records as evidence; the clean kernel's streams fault
    /// as soon as munmap and mprotect return.
    func testPlantedStaleTlbFailsWithTheUnmappedPageTitle() async throws {
        try await expectClean("munmap-inflight-dma")
        let planted = try await plantedDeviceRun("stale-iotlb-6.12", scenario: "munmap-inflight-dma",
                                                 titleSuffix: " had unmapped")
        let titles = planted.lifecycleViolations.map(\.title)
        XCTAssertTrue(titles.contains { $0.hasSuffix(" had made read-only") }, "\(titles)")
        let violation = try XCTUnwrap(planted.lifecycleViolations.first)
        XCTAssertTrue(violation.evidence.contains { $0.contains("kharness-unmapped pid=") }, "\(violation.evidence)")
        XCTAssertTrue(violation.evidence.contains { $0.hasPrefix("device: t=") && $0.contains(" pa=0x") }, "\(violation.evidence)")
        // The workload saw it too (its stream was still running when collected); the
        // oracle's title is the verdict and the scenario's reason stays as evidence.
        XCTAssertTrue(planted.scenarios.contains { $0.status == .fail }, "\(planted.scenarios.map { "\($0.name) \($0.status)" })")
    }

    /// The SVA domain's ASID is freed without invalidating the SMMU's TLB (a cleared CD
    /// taken for an invalidation): the next process's domain gets the same ASID and its
    /// device reads, at the same address, the pages of the process before it, which is
    /// still alive. The SMMU's records name it first (a translation served from a TLB entry
    /// another address space filled, no TLBI of the ASID between), the page-ownership
    /// oracle after it, on a plain and a KASAN kernel (KASAN sees nothing: the accesses
    /// are the device's), with whose page it was and the binding whose translation it had
    /// been as evidence.
    func testPlantedAsidReuseFailsWithTheStaleTlbAndTheOtherPageTitles() async throws {
        try await expectClean("asid-reuse")
        let planted = try await plantedDeviceRun("asid-reuse-6.12", scenario: "asid-reuse",
                                                 titleSuffix: Self.staleTlbSuffix, titlePrefix: Self.staleTlbPrefix)
        let stale = try XCTUnwrap(planted.lifecycleViolations.first)
        XCTAssertTrue(stale.evidence.contains { $0.hasPrefix("smmu: no TLB invalidation of ASID ") }, "\(stale.evidence)")
        XCTAssertTrue(stale.evidence.contains { $0.hasPrefix("device: ") && $0.contains("(the access it served") },
                      "\(stale.evidence)")
        let violation = try XCTUnwrap(planted.lifecycleViolations.first { $0.title.hasSuffix(" reached a page other than its own") },
                                      "\(planted.lifecycleViolations.map(\.title))")
        XCTAssertTrue(violation.evidence.first?.hasSuffix("'s, claimed and still mapped") == true, "\(violation.evidence)")
        XCTAssertTrue(violation.evidence.contains { $0.contains("(the page it reached)") }, "\(violation.evidence)")
        XCTAssertTrue(violation.evidence.contains { $0.contains("sva_accel_unbind") && $0.hasSuffix("(its unbind, before this access)") },
                      "\(violation.evidence)")
        XCTAssertTrue(planted.scenarios.contains { $0.name == "asid-reuse" && $0.status == .fail })

        let kasan = try await svaRun(series: Checkout.root + "/guest/patches/asid-reuse-6.12.patch",
                                     scenarios: ["asid-reuse"], kasan: true)
        XCTAssertEqual(kasan.status, .fail, kasan.reason)
        XCTAssertTrue(kasan.reason.hasPrefix(Self.staleTlbPrefix) && kasan.reason.hasSuffix(Self.staleTlbSuffix), kasan.reason)
        XCTAssertTrue(kasan.lifecycleViolations.contains { $0.title.hasSuffix(" reached a page other than its own") },
                      "\(kasan.lifecycleViolations.map(\.title))")
        XCTAssertEqual(kasan.reports.filter { $0.category == .kasan }, [])
    }

    /// The release notifier clears the exiting address space's context descriptor instead
    /// of quiescing it (the SVA maintainer's rule of 2022): the DMA still in flight meets an
    /// invalid descriptor and the SMMU reports C_BAD_CD. The DMA faults either way and no
    /// kernel check fires, so before this oracle the planted kernel passed every scenario
    /// (the event was taken for one the workload provokes). Plain and KASAN kernels.
    func testPlantedDeactivatedDescriptorFailsWithTheQuiesceTitle() async throws {
        try await expectClean("exit-inflight-dma")
        for kasan in [false, true] {
            let planted = try await svaRun(series: Checkout.root + "/guest/patches/cd-deactivate-6.12.patch",
                                           scenarios: ["exit-inflight-dma"], kasan: kasan)
            XCTAssertEqual(planted.status, .fail, planted.reason)
            XCTAssertTrue(planted.reason.hasPrefix("context descriptor of PASID ")
                          && planted.reason.hasSuffix(" deactivated while its device still used it (C_BAD_CD)"), planted.reason)
            let violation = try XCTUnwrap(planted.lifecycleViolations.first)
            XCTAssertTrue(violation.evidence.contains { $0.hasSuffix("(the address space torn down while still bound)") },
                          "\(violation.evidence)")
            XCTAssertTrue(planted.scenarios.allSatisfy { $0.status == .pass }, "the workload itself sees nothing wrong")
            XCTAssertEqual(planted.reports.filter { $0.category == .kasan }, [])
        }
    }

    /// The sva-stall machine: the SMMU forces stall (QEMU patch 0008), the driver pins
    /// nothing, and Linux resolves the device's page faults through its I/O page-fault path
    /// (6.12: IOMMU_DEV_FEAT_IOPF enabled by the driver; 7.2: with the SVA domain). Every
    /// scenario passes, iopf-demand among them (untouched, zero, copy-on-write and zapped
    /// pages faulted in by the device), and the records show stalls retried. A fault
    /// handler that drops the page request of an address space that is gone (planted)
    /// leaves the device's access stalled past its unbind, and the stall oracle names it.
    func testStallingSmmuResolvesTheDevicesFaultsAndADroppedAnswerIsNamed() async throws {
        for version in ["6.12", "7.2"] {
            let run = try await svaRun(tree: try await KernelSources.tree(version), machine: "sva-stall")
            XCTAssertEqual(run.status, .pass, "\(version): \(run.reason)")
            XCTAssertEqual(run.scenarios.count, 19, version)
            XCTAssertEqual(run.scenarios.first { $0.name == "iopf-demand" }?.status, .pass, version)
            let directory = "\(resultsRoot)/\(run.runID)"
            let console = try String(contentsOfFile: "\(directory)/console.log", encoding: .utf8)
            XCTAssertTrue(console.contains("mode sva with I/O page faults"), "\(version): the driver pinned")
            let records = try String(contentsOfFile: "\(directory)/device.log", encoding: .utf8)
            XCTAssertTrue(records.contains(" smmu=stall ") && records.contains(" action=retry"), "\(version): no stall retried")
        }
        let planted = try await svaRun(series: Checkout.root + "/guest/patches/iopf-no-response-6.12.patch",
                                       scenarios: ["exit-inflight-dma"], machine: "sva-stall")
        XCTAssertEqual(planted.status, .fail, planted.reason)
        XCTAssertEqual(planted.reason, "device access through PASID 1 stalled in the SMMU and was not answered before its unbind")
        // The plain sva machine never stalls, so the same kernel passes there.
        let unstalled = try await svaRun(series: Checkout.root + "/guest/patches/iopf-no-response-6.12.patch",
                                         scenarios: ["exit-inflight-dma"])
        XCTAssertEqual(unstalled.status, .pass, unstalled.reason)
    }

    /// The IOMMU core detaches the PASID on the first of two bindings' unbinds (one
    /// process, the device opened twice): the second binding is live and its DMA faults
    /// on pages it read a moment before. No kernel check fires and the PASID's bookkeeping
    /// is intact; the device oracle names it.
    func testPlantedEarlyDetachFailsWithTheLiveBindingTitle() async throws {
        try await expectClean("unbind-one-of-two")
        let planted = try await plantedDeviceRun("sva-detach-early-6.12", scenario: "unbind-one-of-two",
                                                 titleSuffix: " faulted while its binding was live")
        let violation = try XCTUnwrap(planted.lifecycleViolations.first)
        XCTAssertEqual(violation.evidence.filter { $0.hasPrefix("trace: ") && $0.contains("sva_accel_bind") }.count, 1,
                       "the second binding's bind: \(violation.evidence)")
        XCTAssertTrue(violation.evidence.contains { $0.hasPrefix("device: t=") && $0.hasSuffix(" fault") == false
                                                    && $0.contains(" fault (trace time") }, "\(violation.evidence)")
        XCTAssertTrue(planted.scenarios.contains { $0.name == "unbind-one-of-two" && $0.status == .fail })
    }
}
