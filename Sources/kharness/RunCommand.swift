import ArgumentParser
import Foundation
import Harness
import Kernel
import RunModel
import Support

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Boot a kernel on an emulated arm64 machine, run a workload, record a verdict.",
        discussion: "Exit status: 0 PASS (or SKIP), 1 FAIL, 2 bad usage or input, 3 ERROR (infrastructure), 130/143 interrupted.")

    @Option(help: "debian:<version>, image:<path>[,modules=<dir>] or git:<tree>@<rev>.")
    var kernel: String

    @Option(help: "A patch series for git: kernels (directory of format-patch files or an mbox).")
    var series: String?

    @Option(help: "Config fragments for git: kernels, comma-separated (from guest/configs).")
    var config: String?

    @Option(help: "Workload to run in the guest.")
    var workload = "boot"

    @Option(help: "Run this shell script in the guest as the workload instead.")
    var workloadScript: String?

    @Option(help: "Scenarios of the workload, comma-separated (default: all).")
    var scenarios: String?

    @Option(help: "Machine: stock, stock-lazy, nosmmu, sva (patched QEMU: SMMUv3 substreams and sva-accel), sva-stall (sva with SMMUv3 stall: I/O page faults).")
    var machine = "stock"

    @Option(help: "A qemu-system-aarch64 to use instead of the machine's own.")
    var qemu: String?

    @Option(help: "Seconds from start until the guest's init must speak.")
    var bootTimeout: Double = 120

    @Option(help: "Seconds from start until the workload must be done.")
    var timeout: Double = 600

    @Option(help: "Guest vCPUs.")
    var vcpus = 1

    @Option(help: "Extra kernel command line argument (repeatable).")
    var append: [String] = []

    @Option(help: "sva workload: how the driver binds: careful (default), uacce, deferred, or uio (7.x, with the uio config fragment).")
    var svaPattern: String?

    @Option(help: "A YAML file of known-benign kernel reports to suppress (by title or signature).")
    var suppressions: String?

    @Option(help: "Directory for run directories.")
    var results = "results"

    @Option(help: "libvirt connection URI.")
    var connect = "qemu:///system"

    @Flag(help: "Do not echo the guest console.")
    var quiet = false

    @Flag(help: "sva machine: no device DMA records (to measure their cost; the device oracle is off).")
    var noDeviceRecords = false

    @Flag(help: "git: kernels: build with gcov for the IOMMU/SVA code (the coverage fragment) and report its coverage.")
    var coverage = false

    func run() async throws {
        let result = try await exitOnError {
            var request = RunRequest(kernel: try KernelSpec(parsing: kernel))
            request.series = series
            request.configFragments = config.map { $0.split(separator: ",").map(String.init) } ?? []
            if coverage {
                guard case .git = request.kernel else {
                    throw HarnessError.badInput("--coverage", "needs a git: kernel (kharness builds it with gcov)")
                }
                if !request.configFragments.contains("coverage") { request.configFragments.append("coverage") }
            }
            request.workload = workload
            request.workloadScript = workloadScript.map(Files.absolute)
            request.scenarios = scenarios.map { $0.split(separator: ",").map(String.init) } ?? []
            request.machine = machine
            request.emulator = qemu.map(Files.absolute)
            request.bootTimeout = bootTimeout
            request.totalTimeout = timeout
            request.vcpus = vcpus
            request.extraCmdline = append + (svaPattern.map { ["kharness.sva.pattern=\($0)"] } ?? [])
            request.resultsRoot = results
            request.suppressionsFile = suppressions
            request.connectionURI = connect
            request.deviceRecords = !noDeviceRecords
            let quiet = self.quiet
            let runner = Runner(events: { event in
                switch event {
                case .started(let id, let dir): stderrLine("kharness: run \(id) in \(dir)")
                case .phase(let p): stderrLine("kharness: \(p)")
                case .console(let line): if !quiet { stderrLine("  | \(line)") }
                }
            })
            return try await runner.run(request)
        }
        stderrLine("kharness: \(result.status.rawValue): \(result.reason)")
        if let coverage = result.coverage {
            for file in coverage.files {
                stderrLine("kharness: coverage \(file.path): \(file.lineText), \(file.branchText)")
            }
            if let html = coverage.html { stderrLine("kharness: coverage report \(results)/\(result.runID)/\(html)") }
            if let problem = coverage.problem { stderrLine("kharness: coverage: \(problem)") }
        }
        print(result.runID)
        if result.exitCode != ExitStatus.success { throw ExitCode(result.exitCode) }
    }
}

/// One line on stderr, with what a terminal would act on made visible (the text
/// may be the guest's: console lines, reasons).
func stderrLine(_ text: String) {
    FileHandle.standardError.write(Data((TerminalText.plain(text) + "\n").utf8))
}

/// `print` for text that may hold the guest's words (reasons, titles, tables).
func printSafe(_ text: String, terminator: String = "\n") {
    print(TerminalText.plain(text), terminator: terminator)
}

/// `print` for JSON that may hold the guest's words: the same JSON, escaped.
func printJSON(_ text: String) {
    print(TerminalText.json(text))
}
