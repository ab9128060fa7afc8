import Foundation
import Kernel
import KernelTestSupport
import Matrix
import Store
import Support
import XCTest

@testable import Nightly

/// The nightly flow on the real stack, twice in a row: a kernel tree whose
/// remote gains a commit between the nights, libvirtd, QEMU, a 6.12 kernel
/// built from Debian's source, a real SQLite file, the reports.
final class NightlyTests: XCTestCase {
    var directory = ""

    override func setUp() {
        directory = Checkout.scratchDirectory("kharness-nightly")
        Checkout.useGuestAssets()
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    func write(_ name: String, _ text: String) throws -> String {
        let path = directory + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @discardableResult
    func git(_ arguments: [String], environment: [String: String] = [:]) async throws -> String {
        try await Command.check("git", arguments, environment: environment).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A harmless upstream commit (a new file under Documentation/), made with
    /// plumbing in the bare upstream so nothing is checked out.
    func addUpstreamCommit(_ upstream: String) async throws -> String {
        let index = directory + "/upstream.index"
        let env = ["GIT_INDEX_FILE": index, "GIT_AUTHOR_NAME": "Night Two", "GIT_AUTHOR_EMAIL": "night@example.invalid",
                   "GIT_COMMITTER_NAME": "Night Two", "GIT_COMMITTER_EMAIL": "night@example.invalid"]
        let note = try write("note.txt", "A harmless change between two nights.\n")
        let blob = try await git(["-C", upstream, "hash-object", "-w", note])
        try await git(["-C", upstream, "read-tree", "main"], environment: env)
        try await git(["-C", upstream, "update-index", "--add", "--cacheinfo", "100644,\(blob),Documentation/kharness-night.txt"],
                      environment: env)
        let tree = try await git(["-C", upstream, "write-tree"], environment: env)
        let commit = try await git(["-C", upstream, "commit-tree", tree, "-p", "main", "-m", "Documentation: a note for night two"],
                                   environment: env)
        try await git(["-C", upstream, "update-ref", "refs/heads/main", commit])
        return commit
    }

    func testTwoNightsInARowTheSecondSeesNoNewRegression() async throws {
        let source = try await KernelSources.tree("6.12")
        let upstream = directory + "/upstream.git"
        let tree = directory + "/linux"
        try await git(["clone", "--quiet", "--bare", "--shared", source, upstream])
        try await git(["clone", "--quiet", "--shared", "--no-checkout", upstream, tree])
        let first = try await git(["-C", upstream, "rev-parse", "main"])

        _ = try write("matrix.yaml", """
            name: nightly-test
            kernels:
              - name: mainline
                spec: git:\(tree)@origin/main
            configs: [[smmuv3, trace, modules]]
            machines: [stock]
            workloads: [boot]
            """)
        let configPath = try write("nightly.yaml", """
            name: test-night
            matrix: matrix.yaml
            results: results
            """)
        let config = try NightlyConfig.load(path: configPath)
        XCTAssertEqual(config.results, directory + "/results")

        // Night one: nothing to compare with; the tree is fetched and pinned.
        let one = try await Nightly(config: config, bisector: nil).run()
        XCTAssertEqual(one.exitCode, 0, "\(one.matrix.results.map { $0.outcome?.reason ?? "-" })")
        XCTAssertNil(one.comparison)
        XCTAssertNil(one.night.baselineID)
        XCTAssertEqual(one.night.heads.map(\.commit), [first])
        XCTAssertTrue(one.night.complete)
        let pinned = try MatrixFile.load(path: config.results + "/\(one.night.runID)/matrix.yaml").file
        XCTAssertEqual(pinned.kernels.map(\.name), ["mainline"])
        XCTAssertEqual(pinned.kernels.first?.spec, .git(tree: tree, revision: first))
        for name in ["table.txt", "junit.xml", "kcidb.json", "report.html"] {
            XCTAssertTrue(Files.exists(one.reportsDirectory + "/" + name), name)
        }

        // Upstream moves on with a harmless commit; night two runs through the CLI.
        let second = try await addUpstreamCommit(upstream)
        let reports = directory + "/reports-two"
        let cli = try await Command.run(try Self.executable(), ["nightly", "--config", configPath, "--reports", reports])
        XCTAssertEqual(cli.status, 0, cli.stderr)

        let history = try NightlyHistory.load(results: config.results, name: "test-night")
        XCTAssertEqual(history.nights.count, 2)
        let two = try XCTUnwrap(history.nights.last)
        XCTAssertEqual(two.baselineID, one.night.runID)
        XCTAssertEqual(two.heads.map(\.commit), [second], "night two must test the fetched head")
        XCTAssertEqual(two.heads.first?.subject, "Documentation: a note for night two")
        XCTAssertTrue(two.complete)
        XCTAssertEqual(two.newRegressions, [])
        XCTAssertTrue(cli.stdout.contains("no new regression"), cli.stdout)

        let kcidb = try Data(contentsOf: URL(fileURLWithPath: reports + "/kcidb.json"))
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: kcidb) as? [String: Any])
        let checkouts = try XCTUnwrap(object["checkouts"] as? [[String: Any]])
        XCTAssertTrue(checkouts.contains { ($0["git_commit_hash"] as? String) == second }, "\(checkouts)")
        let junit = try String(contentsOfFile: reports + "/junit.xml", encoding: .utf8)
        XCTAssertTrue(junit.contains("<testsuite"), junit)
    }

    /// A night that brings the 2022 PASID bug: the tree's branch moves from
    /// the clean 6.12 to the head of the bisect fixture's `regression` history
    /// (scripts/bisect-fixture, whose builds the bisect tests share); the
    /// night fails with a new regression, exits 1, and its bisect names the
    /// planted commit with a regzbot line.
    func testANewRegressionFailsTheNightAndIsBisected() async throws {
        let made = try await Command.check(Checkout.root + "/scripts/bisect-fixture", [])
        let fixture = try XCTUnwrap(made.stdout.split(separator: "\n").last.map(String.init))
        // A branch of our own in the fixture: the nightly tests a moving name.
        let branch = "kharness-nightly-test-\(UUID().uuidString.prefix(8))"
        try await git(["-C", fixture, "branch", "-f", branch, "v6.12-debian"])
        addTeardownBlock { _ = try? await Command.run("git", ["-C", fixture, "branch", "-D", branch]) }
        let planted = try await git(["-C", fixture, "rev-parse", "regression~7"])

        _ = try write("matrix.yaml", """
            name: nightly-regression
            kernels:
              - name: sva-tree
                spec: git:\(fixture)@\(branch)
            configs: [[smmuv3, trace, modules]]
            machines: [sva]
            workloads:
              - name: sva
                scenarios: [[exit-no-unbind]]
            """)
        let config = try NightlyConfig.load(path: try write("nightly.yaml", """
            name: regression-night
            matrix: matrix.yaml
            bisect: true
            bisect-reruns: 1
            """))
        let bisector = HarnessBisector(results: directory + "/results")
        let one = try await Nightly(config: config, bisector: bisector).run()
        XCTAssertEqual(one.exitCode, 0, "\(one.matrix.results.map { $0.outcome?.reason ?? "-" })")

        try await git(["-C", fixture, "branch", "-f", branch, "regression"])
        let two = try await Nightly(config: config, bisector: bisector).run()
        XCTAssertEqual(two.exitCode, 1)
        XCTAssertEqual(two.night.newRegressions.count, 1, "\(two.comparison?.entries ?? [])")
        XCTAssertTrue(two.matrix.results.first?.outcome?.reason.hasPrefix("PASID") == true,
                      "\(two.matrix.results.map { $0.outcome?.reason ?? "-" })")
        XCTAssertEqual(two.comparison?.entries(.new).first?.issue?.category, .pasidLifetime,
                       "the violation leads the new issues: \(two.comparison?.entries ?? [])")
        XCTAssertEqual(two.night.culprits, ["#regzbot introduced: \(planted.prefix(12))"], two.bisects.joined(separator: "\n"))
        let mail = try String(contentsOfFile: two.reportsDirectory + "/regressions.txt", encoding: .utf8)
        XCTAssertTrue(mail.contains("Subject:") && mail.contains("PASID"), mail)
        XCTAssertTrue(Files.exists(two.reportsDirectory + "/bisect.txt"))
    }

    func testAMalformedConfigNamesFileLineAndField() throws {
        _ = try write("matrix.yaml", "kernels: [debian:6.1]\nmachines: [stock]\nworkloads: [boot]\n")
        let cases: [(String, String)] = [
            ("matrix: matrix.yaml\nbisect: maybe\n", "nightly.yaml:2:9: bisect: must be true or false"),
            ("matrix: nosuch.yaml\n", "nightly.yaml:1:9: matrix: '\(directory)/nosuch.yaml' does not exist"),
            ("name: x\n", "nightly.yaml:1:1: matrix: missing"),
            ("matrix: matrix.yaml\nrepeat: 2\n", "nightly.yaml:2:1: repeat: unknown field"),
            ("matrix: matrix.yaml\nname: 'a/b'\n", "name: 'a/b' may hold only"),
            ("matrix: [\n", "nightly.yaml:2:1: YAML"),
        ]
        for (text, expected) in cases {
            let path = try write("nightly.yaml", text)
            XCTAssertThrowsError(try NightlyConfig.load(path: path), text) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains(expected), "\(message) does not contain \(expected)")
                XCTAssertEqual((error as? HarnessError)?.kind, .badInput)
                XCTAssertFalse(message.contains("\n"), message)
            }
        }
    }

    /// The pinned matrix a night writes parses back into the same matrix,
    /// with only the git revisions replaced and the kernels' names kept.
    func testAPinnedMatrixRoundTrips() throws {
        let series = try write("fix.patch", "From: a\nSubject: [PATCH] x\n\n---\n")
        let tree = directory + "/src/linux"
        try Files.createDirectory(tree)
        let path = try write("matrix.yaml", """
            name: round-trip
            repeat: 3
            parallel: 2
            kernels:
              - debian:6.1
              - name: next
                spec: git:\(tree)@origin/master
                series: fix.patch
                configs: [[smmuv3], [smmuv3, kasan]]
              - git:\(tree)@v6.12
            configs: [[smmuv3, trace]]
            machines:
              - stock
              - name: lazy
                profile: stock
                invalidation: lazy
            workloads:
              - boot
              - name: sva
                scenarios: [[nginx], [pasid-reuse, threads]]
            connections: [qemu:///system, qemu+unix:///system]
            timeout: 300
            """)
        _ = series
        let matrix = try MatrixFile.load(path: path).file
        let commit = String(repeating: "a", count: 40)
        let pinned = matrix.pinning(["\(tree)@origin/master": commit])
        var reparsed = try MatrixFile.parse(pinned.yaml, file: directory + "/elsewhere/matrix.yaml")
        // Where a workload was written differs by construction.
        for i in reparsed.workloads.indices { reparsed.workloads[i].location = pinned.workloads[i].location }
        XCTAssertEqual(reparsed, pinned)
        XCTAssertEqual(reparsed.kernels.map(\.name), ["debian:6.1", "next", "git:\(tree)@v6.12"])
        XCTAssertEqual(reparsed.kernels[1].spec, .git(tree: tree, revision: commit))
        XCTAssertEqual(reparsed.kernels[2].spec, .git(tree: tree, revision: "v6.12"))
    }

    static func executable() throws -> String {
        guard let kharness = Checkout.builtExecutable else { throw XCTSkip(Checkout.missingExecutable) }
        return kharness
    }
}
