import Classify
import Foundation
import KernelTestSupport
import Support
import XCTest

@testable import Matrix
@testable import Store

final class MatrixFileTests: XCTestCase {

    func parse(_ text: String) throws -> MatrixFile { try MatrixFile.parse(text, file: "/m/matrix.yaml") }

    /// The one line a malformed file gets: file:line:column: field: reason.
    func error(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            _ = try parse(text)
            XCTFail("parsed", file: file, line: line)
            return ""
        } catch let error as HarnessError {
            XCTAssertEqual(error.kind, .badInput, file: file, line: line)
            XCTAssertFalse(error.description.contains("\n"), error.description, file: file, line: line)
            return error.description
        } catch {
            XCTFail("\(error)", file: file, line: line)
            return ""
        }
    }

    func testTheExampleExpandsKernelsConfigsMachinesWorkloadsAndRepeats() async throws {
        // The example names the tree where scripts/kernel-source puts it with the default cache.
        let example = Checkout.root + "/examples/matrix.yaml"
        var text = try String(contentsOfFile: example, encoding: .utf8)
        for version in ["6.12", "7.3"] {
            text = text.replacingOccurrences(of: "/var/cache/kharness/kernel-source/linux-\(version)@",
                                             with: try await KernelSources.tree(version) + "@")
        }
        let matrix = try MatrixFile.parse(text, file: example)
        XCTAssertEqual(matrix.name, "smmu-smoke")
        XCTAssertEqual(matrix.kernels.map(\.name), ["debian:6.1", "6.12", "7.3"])
        XCTAssertEqual(matrix.machines.map(\.name), ["stock", "lazy", "nosmmu"])
        XCTAssertEqual(matrix.machines[1].profile, "stock")
        XCTAssertEqual(matrix.machines[1].cmdline, ["iommu.strict=0"])
        let cells = matrix.expand(runID: "r")
        // 3 kernels x 1 config (prebuilt kernels take none) x 3 machines x 1 workload x 2 repeats.
        XCTAssertEqual(cells.count, 18)
        XCTAssertEqual(cells.map(\.ordinal), Array(0..<18))
        XCTAssertEqual(cells[0].configFragments, [])
        XCTAssertEqual(cells[6].configFragments, ["smmuv3", "trace", "modules"])
        XCTAssertEqual(cells[12].configFragments, ["smmuv3", "trace", "modules"])
        XCTAssertEqual(cells.prefix(2).map(\.repeatIndex), [1, 2])
        XCTAssertEqual(Set(cells.map(\.key)).count, 9)
    }

    /// The binding-pattern example: four kernels clean and seeded, the device-side plants of
    /// 6.12, 7.x and 6.1, three patterns as machines.
    func testThePatternExampleCrossesKernelsSeedsAndPatterns() async throws {
        let example = Checkout.root + "/examples/sva-patterns.yaml"
        var text = try String(contentsOfFile: example, encoding: .utf8)
        for version in ["6.1", "6.12", "7.2", "7.3"] {
            text = text.replacingOccurrences(of: "/var/cache/kharness/kernel-source/linux-\(version)@",
                                             with: try await KernelSources.tree(version) + "@")
        }
        let matrix = try MatrixFile.parse(text, file: example)
        XCTAssertEqual(matrix.kernels.map(\.name), ["6.1", "6.1+seed", "6.12", "6.12+seed", "7.2", "7.2+seed", "7.3", "7.3+seed",
                                                    "6.12+dma-after-release", "6.12+stale-iotlb", "6.12+sva-detach-early",
                                                    "6.12+cd-deactivate", "6.12+asid-reuse", "7.2+asid-reuse", "7.3+asid-reuse",
                                                    "6.1+dma-after-release", "6.1+stale-iotlb", "6.1+sva-detach-early",
                                                    "6.1+cd-deactivate"])
        XCTAssertEqual(matrix.kernels.compactMap(\.series).map { URL(fileURLWithPath: $0).lastPathComponent },
                       ["pasid-uaf-6.1.patch", "pasid-uaf-6.12.patch", "pasid-uaf-7.x.patch", "pasid-uaf-7.x.patch",
                        "dma-after-release-6.12.patch", "stale-iotlb-6.12.patch", "sva-detach-early-6.12.patch",
                        "cd-deactivate-6.12.patch", "asid-reuse-6.12.patch", "asid-reuse-7.x.patch", "asid-reuse-7.x.patch",
                        "dma-after-release-6.1.patch", "stale-iotlb-6.1.patch", "sva-detach-early-6.1.patch",
                        "cd-deactivate-6.1.patch"])
        for series in matrix.kernels.compactMap(\.series) {
            XCTAssertTrue(FileManager.default.fileExists(atPath: series), series)
        }
        XCTAssertEqual(matrix.machines.map(\.cmdline), [[], ["kharness.sva.pattern=uacce"], ["kharness.sva.pattern=deferred"]])
        XCTAssertEqual(matrix.expand(runID: "r").count, 57)
    }

    func testScenarioSetsAreCellsAndSeriesCanBeDropped() throws {
        let dir = NSTemporaryDirectory() + "kharness-matrix-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/patches", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/linux", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = """
            kernels:
              - name: tip
                spec: git:linux@v6.12
                series: patches
                configs: ["smmuv3,trace", []]
            machines: [sva]
            workloads:
              - name: sva
                scenarios: [baseline, "nginx, pasid-reuse"]
            repeat: 3
            connections: [qemu:///system, "qemu+ssh://root@localhost/system"]
            """
        let matrix = try MatrixFile.parse(text, file: dir + "/m.yaml")
        XCTAssertEqual(matrix.kernels[0].spec, .git(tree: dir + "/linux", revision: "v6.12"), "relative to the file")
        XCTAssertEqual(matrix.kernels[0].series, dir + "/patches")
        let cells = matrix.expand(runID: "r")
        XCTAssertEqual(cells.count, 2 * 2 * 3)
        XCTAssertEqual(Set(cells.map(\.scenarios)), [["baseline"], ["nginx", "pasid-reuse"]])
        XCTAssertEqual(Set(cells.map(\.configFragments)), [["smmuv3", "trace"], []])
        XCTAssertTrue(cells.allSatisfy { $0.series == dir + "/patches" })
        XCTAssertTrue(matrix.expand(runID: "r", withoutSeries: true).allSatisfy { $0.series == nil })
        XCTAssertEqual(matrix.connections.count, 2)
    }

    func testMalformedFilesNameFileLineAndField() {
        XCTAssertEqual(error("""
            kernels: [debian:6.1]
            machines: [stock]
            workloads: [boot]
            repeat: two
            """), "/m/matrix.yaml:4:9: repeat: must be a whole number from 1 to 100")
        XCTAssertEqual(error("""
            kernels:
              - debian:6.1
              - spec: foo:bar
            machines: [stock]
            workloads: [boot]
            """), "/m/matrix.yaml:3:11: kernels[1].spec: unknown kernel kind 'foo' (known: debian, image, git)")
        XCTAssertEqual(error("""
            kernels: [debian:6.1]
            machines:
              - name: lazy
                profile: stock
                invalidation: sloppy
            workloads: [boot]
            """), "/m/matrix.yaml:5:19: machines[0].invalidation: 'sloppy' is neither strict nor lazy")
        XCTAssertEqual(error("""
            kernels: [debian:6.1]
            machines: [stock, smmu9]
            workloads: [boot]
            """), "/m/matrix.yaml:2:19: machines[1]: unknown machine 'smmu9' (known: stock, stock-lazy, nosmmu, sva, sva-stall)")
        XCTAssertEqual(error("""
            kernels: [debian:6.1]
            machines: [stock]
            workload: [boot]
            """).prefix(45), "/m/matrix.yaml:3:1: workload: unknown field (")
        XCTAssertEqual(error("""
            kernels: [debian:6.1]
            machines: [stock]
            """), "/m/matrix.yaml:1:1: workloads: missing (a matrix needs kernels, machines and workloads)")
        XCTAssertEqual(error("""
            kernels: [debian:6.1, debian:6.1]
            machines: [stock]
            workloads: [boot]
            """), "/m/matrix.yaml:1:1: kernels: kernel name 'debian:6.1' appears twice (give one a name:)")
        XCTAssertEqual(error("""
            kernels:
              - spec: debian:6.1
                series: x.mbox
            machines: [stock]
            workloads: [boot]
            """), "/m/matrix.yaml:3:13: kernels[0].series: '/m/x.mbox' does not exist")
        XCTAssertEqual(error("""
            kernels:
              - git:/nonexistent/linux@v6.12
            machines: [stock]
            workloads: [boot]
            """), "/m/matrix.yaml:2:5: kernels[0]: tree '/nonexistent/linux' is not a directory")
        XCTAssertEqual(error("""
            kernels: [debian:6.1]
            machines: [stock]
            workloads: [boot]
            connections: [localhost]
            """), "/m/matrix.yaml:4:15: connections[0]: 'localhost' is not a libvirt URI (e.g. qemu+ssh://host/system)")
    }

    func testYAMLSyntaxErrorsNameTheLine() {
        let message = error("kernels: [debian:6.1\nmachines: [stock]\n")
        XCTAssertTrue(message.hasPrefix("/m/matrix.yaml:"), message)
        XCTAssertTrue(message.contains("YAML:"), message)
        let duplicate = error("kernels: [debian:6.1]\nkernels: [debian:6.12]\nmachines: [stock]\nworkloads: [boot]\n")
        XCTAssertTrue(duplicate.contains("duplicated key kernels"), duplicate)
        XCTAssertTrue(duplicate.hasPrefix("/m/matrix.yaml:"), duplicate)
        XCTAssertEqual(error(""), "/m/matrix.yaml:1:1: the matrix file is empty")
        XCTAssertEqual(error("- a\n- b\n"), "/m/matrix.yaml:1:1: : must be a mapping")
    }

    func testAnUnknownWorkloadIsRefusedWhereItIsWritten() throws {
        let matrix = try parse("kernels: [debian:6.1]\nmachines: [stock]\nworkloads:\n  - boot\n  - name: fuzz\n")
        Checkout.useGuestAssets()
        XCTAssertThrowsError(try MatrixRunner.validate(matrix)) { error in
            let message = (error as? HarnessError)?.description ?? "\(error)"
            XCTAssertTrue(message.hasPrefix("/m/matrix.yaml:5:5: workloads[1]: unknown workload"), message)
        }
    }

    func testTheProgressLineCountsAndEstimates() {
        let tracker = ProgressTracker(total: 4, alreadyDone: 0, parallelism: 2, connections: ["a", "b"])
        XCTAssertEqual(tracker.acquireConnection(), "a")
        XCTAssertEqual(tracker.acquireConnection(), "b")
        tracker.releaseConnection("a")
        XCTAssertEqual(tracker.acquireConnection(), "a", "the least busy connection")
        tracker.started()
        tracker.started()
        XCTAssertNil(tracker.snapshot().eta)
        tracker.stopped()
        tracker.finished(OutcomeRecord(cellID: 1, attempt: 1, harnessRunID: nil, status: .fail, reason: "", end: .finished,
                                       wallSeconds: 10))
        let progress = tracker.snapshot()
        // 2.5 cells left (the running one counts half) x 10 s / 2 at once.
        XCTAssertEqual(progress.line, "1/4 done, 1 running, 1 failed, ETA 0:13")
    }
}

/// Cells run in parallel threads of one process and may write the same
/// cache file (an initramfs, its memo) at the same moment.
final class ParallelWriteTests: XCTestCase {
    func testAtomicWritesOfOneFileFromManyThreadsAllSucceed() throws {
        let directory = NSTemporaryDirectory() + "kharness-writes-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/entry"
        let failures = Counter()
        DispatchQueue.concurrentPerform(iterations: 400) { i in
            do {
                try Files.writeAtomically(String(repeating: "\(i % 10)", count: 4096), to: path)
            } catch {
                failures.add()
            }
        }
        XCTAssertEqual(failures.value, 0)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertEqual(Set(text).count, 1, "one writer's whole content, never a mix")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["entry"], "no temporary left")
    }

    /// `@unchecked`: `count` is read and written only with `lock` held.
    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0
        func add() { lock.lock(); count += 1; lock.unlock() }
        var value: Int { lock.lock(); defer { lock.unlock() }; return count }
    }
}

extension MatrixFileTests {
    /// An alias bomb: each anchor a list of nine aliases to the one before (9^9
    /// nodes once followed). Refused in one line without building it.
    static let aliasBomb = """
        a: &a [x, x, x, x, x, x, x, x, x]
        b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
        c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
        d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
        e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
        f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
        g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
        h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
        kernels: [*h, *h, *h, *h, *h, *h, *h, *h, *h]
        """

    func testAliasBombAndHugeCrossProductsAreRefusedInOneLine() throws {
        let start = Date()
        XCTAssertEqual(error(Self.aliasBomb), "/m/matrix.yaml: more than 100000 YAML nodes once aliases are followed")
        // Few nodes, many cells: 120 x 100 machines x 100 repeats would be 1.2 million cells.
        let machines = (0..<120).map { "  - {name: m\($0), profile: stock}" }.joined(separator: "\n")
        let text = "kernels: [debian:6.1]\nmachines:\n\(machines)\nworkloads: [boot]\nrepeat: 100\n"
        XCTAssertEqual(error(text), "/m/matrix.yaml: 12000 cells, more than the limit of 10000")
        XCTAssertEqual(try parse(text.replacingOccurrences(of: "repeat: 100", with: "repeat: 80")).cellCount, 9600)
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
        XCTAssertThrowsError(try Suppressions.parse(Self.aliasBomb.replacingOccurrences(of: "kernels:", with: "rules:"),
                                                    source: "s.yaml")) {
            XCTAssertEqual("\($0)", "s.yaml: more than 100000 YAML nodes once aliases are followed")
        }
    }

    func testRunIDsNameOneDirectoryUnderTheResults() async throws {
        for bad in ["../x", "/etc", "a/b", "..", ".hidden", "-rf", "", String(repeating: "x", count: 65), "x y", "é"] {
            XCTAssertThrowsError(try MatrixRunner.validate(runID: bad), bad) { error in
                XCTAssertTrue("\(error)".hasPrefix("--id \(bad): a run id is"), "\(error)")
            }
        }
        for good in ["m20261205-150000-abcdef", "nightly.2026-12-05", "A_b-1"] { XCTAssertNoThrow(try MatrixRunner.validate(runID: good)) }
        // Refused before anything is read or written.
        let directory = NSTemporaryDirectory() + "kharness-id-\(UUID().uuidString)"
        try Files.createDirectory(directory)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try Store.open(path: directory + "/results/kharness.db")
        var options = MatrixOptions()
        options.results = directory + "/results"
        options.runID = "../escape"
        do {
            _ = try await MatrixRunner(store: store).run(matrixPath: directory + "/none.yaml", options: options)
            XCTFail("ran")
        } catch {
            XCTAssertTrue("\(error)".hasPrefix("--id ../escape:"), "\(error)")
        }
        XCTAssertFalse(Files.exists(directory + "/escape"))
        XCTAssertFalse(Files.exists(directory + "/results/../escape"))
    }
}
