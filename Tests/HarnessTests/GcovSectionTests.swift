import Collect
import Foundation
import XCTest

/// The guest's gcov section on the trace port: what a well-behaved guest sends is
/// kept whole; whatever else it sends ends in one clear problem and nothing kept.
final class GcovSectionTests: XCTestCase {
    static let prefix = "var/cache/kharness/kernel-work/ab/obj-cd/"

    /// `files` as sva.sh's send_gcov writes them (base64 wrapped at 76 columns).
    static func section(_ files: [(String, Data)], count: Int? = nil, announce: ((Data) -> Int)? = nil) -> [String] {
        var lines = [GcovSection.begin]
        for (path, data) in files {
            lines.append("# kharness gcov-file path=\(path) bytes=\(announce?(data) ?? data.count)")
            let text = data.base64EncodedString()
            var start = text.startIndex
            while start < text.endIndex {
                let end = text.index(start, offsetBy: 76, limitedBy: text.endIndex) ?? text.endIndex
                lines.append(String(text[start..<end]))
                start = end
            }
        }
        lines.append("# kharness gcov-end files=\(count ?? files.count)")
        return lines
    }

    static func read(_ lines: [String], finish: Bool = true) -> (GcovSection, [String]) {
        var section = GcovSection()
        var rest: [String] = []
        for line in lines where !section.take(line) { rest.append(line) }
        if finish { section.finish() }
        return (section, rest)
    }

    func testAWellFormedSectionIsKeptWholeAndNeverReachesTheTrace() {
        let a = Data((0..<300).map { UInt8($0 % 251) }), b = Data()
        let trace = ["    kharness-sva-67  [000] ..... 1.0: sva_accel_bind: pid=67", "# kharness trace-end overruns=0"]
        let lines = [trace[0]] + Self.section([(Self.prefix + "drivers/iommu/iommu-sva.gcda", a),
                                              (Self.prefix + "kernel/fork.gcda", b)]) + [trace[1]]
        let (section, rest) = Self.read(lines)
        XCTAssertNil(section.problem)
        XCTAssertTrue(section.began && section.ended)
        XCTAssertEqual(section.files.map(\.path), [Self.prefix + "drivers/iommu/iommu-sva.gcda", Self.prefix + "kernel/fork.gcda"])
        XCTAssertEqual(section.files.map(\.data), [a, b])
        XCTAssertEqual(rest, trace)
    }

    func testEveryMalformedSectionIsOneProblemAndNothingKept() {
        let data = Data(repeating: 7, count: 100)
        let good = Self.prefix + "drivers/iommu/iommu.gcda"
        let cases: [([String], String)] = [
            (Self.section([("../../etc/passwd.gcda", data)]), "'../../etc/passwd.gcda' is not a relative .gcda path"),
            (Self.section([("/abs/x.gcda", data)]), "is not a relative .gcda path"),
            (Self.section([("a/./x.gcda", data)]), "is not a relative .gcda path"),
            (Self.section([("drivers/iommu/iommu.gcno", data)]), "is not a relative .gcda path"),
            (Self.section([("drivers/x y.gcda", data)]), "expected path=<path> bytes=<n>"),
            (Self.section([(good, data)], announce: { $0.count + 1 }), "\(good): 100 bytes, the guest announced 101"),
            (Self.section([(good, data)], announce: { $0.count - 10 }), "more than the 90 bytes it announced"),
            (Self.section([(good, data)], announce: { _ in GcovSection.maxFileBytes + 1 }), "more than \(GcovSection.maxFileBytes)"),
            (Self.section([(good, data)], count: 2), "the guest said 2 files, sent 1"),
            ([GcovSection.begin, "# kharness gcov-file path=\(good) bytes=3", "!!!!", "# kharness gcov-end files=1"], "not base64"),
            ([GcovSection.begin, "AAAA"], "'AAAA' outside a gcov-file"),
            (Array(Self.section([(good, data)]).dropLast()), "the section did not end"),
            (Self.section([(good, data)]) + Self.section([(good, data)]), "a second gcov section"),
            ([GcovSection.begin, "# kharness gcov-end"], "no files= count"),
        ]
        for (lines, expected) in cases {
            let (section, rest) = Self.read(lines)
            let problem = section.problem ?? ""
            XCTAssertTrue(problem.hasPrefix("gcov data from the guest: ") && problem.contains(expected),
                          "\(lines.prefix(3)): \(problem)")
            XCTAssertEqual(section.files, [], expected)
            XCTAssertFalse(problem.contains("\n"), expected)
            XCTAssertEqual(rest, [], "every line of a section is the section's: \(expected)")
        }
    }

    /// Many files each under the per-file cap are stopped at the total, and a
    /// flood of small files at the file count.
    func testTheTotalAndTheFileCountAreCapped() {
        let data = Data(repeating: 1, count: 600)
        let big = Self.section((0..<4).map { ("f\($0).gcda", data) })
        var section = GcovSection(maxFiles: 10, maxFileBytes: 1000, maxTotalBytes: 2000)
        for line in big { XCTAssertTrue(section.take(line)) }
        section.finish()
        XCTAssertEqual(section.problem, "gcov data from the guest: more than 2000 bytes in all")
        XCTAssertEqual(section.files, [])

        var many = GcovSection(maxFiles: 3, maxFileBytes: 1000, maxTotalBytes: 2000)
        for line in Self.section((0..<4).map { ("f\($0).gcda", Data([1])) }) { _ = many.take(line) }
        XCTAssertEqual(many.problem, "gcov data from the guest: more than 3 files")
        // The defaults: 4 MiB a file, 32 MiB in all, 256 files.
        XCTAssertEqual([GcovSection().maxFileBytes, GcovSection().maxTotalBytes, GcovSection().maxFiles],
                       [4 << 20, 32 << 20, 256])
    }

    func testRandomInputNeverTraps() {
        var generator = SystemRandomNumberGenerator()
        let pieces = [GcovSection.begin, "# kharness gcov-end files=", "# kharness gcov-file path=", "bytes=", "a.gcda",
                      "../", "AAAA", "====", " ", "9999999999999999999", "-1", "\u{0}", "é"]
        for _ in 0..<2000 {
            var section = GcovSection()
            for _ in 0..<Int.random(in: 0..<12, using: &generator) {
                let line = (0..<Int.random(in: 1..<5, using: &generator))
                    .map { _ in pieces.randomElement(using: &generator)! }.joined()
                _ = section.take(line)
            }
            section.finish()
            XCTAssertTrue(section.problem == nil || section.files.isEmpty)
        }
    }

    /// lcov's tracefile as lcov 1.16 writes it with branch coverage.
    func testLcovTracefileSummary() throws {
        let text = """
            TN:
            SF:/src/drivers/iommu/iommu-sva.c
            FN:60,iommu_sva_bind_device
            FN:200,iommu_sva_unbind_device
            FN:250,mm_pasid_drop
            FNDA:12,iommu_sva_bind_device
            FNDA:0,mm_pasid_drop
            FNDA:3,iommu_sva_unbind_device
            FNF:3
            FNH:2
            BRDA:61,0,0,12
            BRDA:61,0,1,0
            BRDA:251,0,0,-
            BRDA:251,0,1,-
            BRF:4
            BRH:1
            DA:60,12
            DA:61,12
            DA:200,3
            DA:250,0
            DA:251,0
            LF:5
            LH:3
            end_of_record
            SF:/src/kernel/fork.c
            DA:10,1
            end_of_record
            garbage line
            """
        let files = LcovInfo.parse(text)
        let sva = try XCTUnwrap(files["/src/drivers/iommu/iommu-sva.c"])
        XCTAssertEqual([sva.linesFound, sva.linesHit, sva.branchesFound, sva.branchesHit, sva.functionsFound, sva.functionsHit],
                       [5, 3, 4, 1, 3, 2])
        XCTAssertEqual(sva.functionsReached, ["iommu_sva_bind_device", "iommu_sva_unbind_device"])
        XCTAssertEqual(sva.functionsNotReached, ["mm_pasid_drop"])
        XCTAssertEqual(sva.linesNotReached, [250, 251])
        XCTAssertEqual(sva.lineText, "3/5 lines (60.0%)")
        XCTAssertEqual(files["/src/kernel/fork.c"]?.linesHit, 1)
        XCTAssertEqual(files.count, 2)
    }
}
