import Foundation
import Kernel
import Support
import XCTest

/// Series parsing on its own: a b4-style mbox, folded headers, tags.
final class PatchSeriesTests: XCTestCase {
    func testB4MboxGivesSubjectsMessageIdsAndFiles() throws {
        let mbox = """
            From git@z Thu Jan  1 00:00:00 1970
            Subject: [PATCH v3 1/2] iommu/sva: first change with a
             folded subject
            From: A Developer <a@example.invalid>
            Message-Id: <20220101-first@example.invalid>

            Body.

            ---
            diff --git a/drivers/iommu/iommu-sva.c b/drivers/iommu/iommu-sva.c
            --- a/drivers/iommu/iommu-sva.c
            +++ b/drivers/iommu/iommu-sva.c
            @@ -1,3 +1,4 @@
             a
            +b
             c
             d

            From git@z Thu Jan  1 00:00:00 1970
            Subject: [PATCH v3 2/2] mm: second change
            Message-ID: <20220101-second@example.invalid>

            From this line on, a body line starting with From must not split.
            ---
            diff --git a/kernel/fork.c b/kernel/fork.c
            --- a/kernel/fork.c
            +++ b/kernel/fork.c
            @@ -10,3 +10,4 @@
             a
            +b
             c
             d

            """
        let path = NSTemporaryDirectory() + "kharness-\(UUID().uuidString).mbx"
        try Files.writeAtomically(mbox, to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let series = try PatchSeries(path: path)
        XCTAssertEqual(series.patches.map(\.subject),
                       ["iommu/sva: first change with a folded subject", "mm: second change"])
        XCTAssertEqual(series.patches.map(\.messageId),
                       ["20220101-first@example.invalid", "20220101-second@example.invalid"])
        XCTAssertEqual(series.patches.map(\.files), [["drivers/iommu/iommu-sva.c"], ["kernel/fork.c"]])
        XCTAssertEqual(series.patchsetHash.count, 64)
        XCTAssertNotEqual(series.patches[0].sha256, series.patches[1].sha256)
    }

    func testNoPatchesIsBadInput() throws {
        let path = NSTemporaryDirectory() + "kharness-\(UUID().uuidString).mbx"
        try Files.writeAtomically("Subject: just a mail\n\nno diff here\n", to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try PatchSeries(path: path)) { error in
            XCTAssertEqual((error as? HarnessError)?.kind, .badInput)
        }
    }
}
