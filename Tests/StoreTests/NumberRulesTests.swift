import Bisect
import Foundation
import RunModel
import XCTest

@testable import Classify
@testable import Store

/// The rules that take the numbers out of a title before it becomes a signature, run
/// over real titles and reasons, with their outputs as recorded before the rules were
/// brought together in ``NumberMask``. Signatures are stored (the database, result.json, bisect and
/// nightly state), so none of these may change; where the rules disagree they do so
/// on purpose, and this table shows where:
///
/// - lifecycle (`PasidLifecycleOracle.Violation.signature`): digit runs → N, no notion
///   of hex ("0xa" → "Nxa" before hashing); hashed as `lifecycle-<12 hex>`.
/// - report (`NumberMask.reportTitle`, was `ReportAnalyzer.stripNumbers`; inside `KernelReport.signature`): one pass,
///   a `0x…` that starts a number and its hex digits → N, other digit runs → N.
/// - verdict (`FailureIssue.verdict`): every `0x<hex>` → N, then digit runs → N, so a
///   `0x` inside a number ("10x5") or with no hex digits ("0x") goes another way.
/// - bisect (`FailureSignature.normalise`): only whole-word numbers, decimal or `0x`
///   hex, → `#`; identifiers with digits stay; surrounding whitespace trimmed.
final class NumberRulesTests: XCTestCase {
    /// Title or reason; then lifecycle, report, verdict (title, signature), bisect.
    static let recorded: [(String, String, String, String, String, String)] = [
        ("PASID 1 freed while still bound to pid 68", "lifecycle-838edfb8f0af", "PASID N freed while still bound to pid N", "PASID N freed while still bound to pid N", "verdict-21da73d8fe2327c9", "PASID # freed while still bound to pid #"),
        ("PASID 1 freed while still bound to pid 85", "lifecycle-838edfb8f0af", "PASID N freed while still bound to pid N", "PASID N freed while still bound to pid N", "verdict-21da73d8fe2327c9", "PASID # freed while still bound to pid #"),
        ("device DMA through PASID 1 of pid 166 faulted while its binding was live", "lifecycle-18d65a632add", "device DMA through PASID N of pid N faulted while its binding was live", "device DMA through PASID N of pid N faulted while its binding was live", "verdict-7223572fe086e8bf", "device DMA through PASID # of pid # faulted while its binding was live"),
        ("device DMA through PASID 1 of pid 67 faulted while its binding was live", "lifecycle-18d65a632add", "device DMA through PASID N of pid N faulted while its binding was live", "device DMA through PASID N of pid N faulted while its binding was live", "verdict-7223572fe086e8bf", "device DMA through PASID # of pid # faulted while its binding was live"),
        ("device DMA through PASID 1 reached a page pid 67 had unmapped", "lifecycle-6cdd0cd948ca", "device DMA through PASID N reached a page pid N had unmapped", "device DMA through PASID N reached a page pid N had unmapped", "verdict-3887c3495e3f356e", "device DMA through PASID # reached a page pid # had unmapped"),
        ("bind by pid 12 refused (-16): PASID 3 still held by dead pid 10", "lifecycle-5ea05534df54", "bind by pid N refused (-N): PASID N still held by dead pid N", "bind by pid N refused (-N): PASID N still held by dead pid N", "verdict-299c7d3229d6f0de", "bind by pid # refused (-#): PASID # still held by dead pid #"),
        ("PASID 1 never freed after every holder was gone: its address space 0xa (pid 10) was dropped", "lifecycle-fccab2d2bd01", "PASID N never freed after every holder was gone: its address space N (pid N) was dropped", "PASID N never freed after every holder was gone: its address space N (pid N) was dropped", "verdict-43d7a9b09d3cf981", "PASID # never freed after every holder was gone: its address space # (pid #) was dropped"),
        ("BUG: KASAN: slab-use-after-free in iommu_sva_bind_device", "lifecycle-a0374a40c53b", "BUG: KASAN: slab-use-after-free in iommu_sva_bind_device", "BUG: KASAN: slab-use-after-free in iommu_sva_bind_device", "verdict-992fabdb14ca837e", "BUG: KASAN: slab-use-after-free in iommu_sva_bind_device"),
        ("BUG: KASAN: slab-use-after-free in mm_pasid_drop+0x2c/0x60", "lifecycle-a4715cdd8916", "BUG: KASAN: slab-use-after-free in mm_pasid_drop+N/N", "BUG: KASAN: slab-use-after-free in mm_pasid_drop+N/N", "verdict-435c0b0ba9658b03", "BUG: KASAN: slab-use-after-free in mm_pasid_drop+#/#"),
        ("WARNING in arm_smmu_write_ctx_desc", "lifecycle-647e418f04fc", "WARNING in arm_smmu_write_ctx_desc", "WARNING in arm_smmu_write_ctx_desc", "verdict-6c90771c2f0f091a", "WARNING in arm_smmu_write_ctx_desc"),
        ("kernel BUG at mm/mmap.c:3390!", "lifecycle-d7395d101df9", "kernel BUG at mm/mmap.c:N!", "kernel BUG at mm/mmap.c:N!", "verdict-14e8207cd31e710f", "kernel BUG at mm/mmap.c:#!"),
        ("BUG: soft lockup in mmu_notifier2 on CPU 0x3", "lifecycle-c3f04ee97ffa", "BUG: soft lockup in mmu_notifierN on CPU N", "BUG: soft lockup in mmu_notifierN on CPU N", "verdict-4c0a0ceeeb0cf51f", "BUG: soft lockup in mmu_notifier2 on CPU #"),
        ("Unable to handle kernel NULL pointer dereference at virtual address 0000000000000011", "lifecycle-50ff6f617fdb", "Unable to handle kernel NULL pointer dereference at virtual address N", "Unable to handle kernel NULL pointer dereference at virtual address N", "verdict-4a5bb55d5bf945ac", "Unable to handle kernel NULL pointer dereference at virtual address #"),
        ("Unable to handle kernel paging request at virtual address ffff800080a3c000", "lifecycle-ba2ce4aca427", "Unable to handle kernel paging request at virtual address ffffNaNcN", "Unable to handle kernel paging request at virtual address ffffNaNcN", "verdict-2131d7f18ef09181", "Unable to handle kernel paging request at virtual address ffff800080a3c000"),
        ("SMMU event F_TRANSLATION id 0x10 sid 0x20 ssid 0x1 address 0xffffab371000 read", "lifecycle-0784982f5a7f", "SMMU event F_TRANSLATION id N sid N ssid N address N read", "SMMU event F_TRANSLATION id N sid N ssid N address N read", "verdict-1f1d91bb12892937", "SMMU event F_TRANSLATION id # sid # ssid # address # read"),
        ("UNKNOWN(0x7f)", "lifecycle-b7dec26a0457", "UNKNOWN(N)", "UNKNOWN(N)", "verdict-d5fcba81dcdd2ac8", "UNKNOWN(#)"),
        ("IMPDEF_EVENT_0xe3", "lifecycle-ffff593c7a39", "IMPDEF_EVENT_N", "IMPDEF_EVENT_N", "verdict-809ce8063e3bd14a", "IMPDEF_EVENT_0xe3"),
        ("general protection fault in ext4_fill_super", "lifecycle-5eed362ab4ae", "general protection fault in extN_fill_super", "general protection fault in extN_fill_super", "verdict-76be7a38d9f05151", "general protection fault in ext4_fill_super"),
        ("workload timed out after 600 s; last console line: [   12.345678] kharness-sva: 3 jobs", "lifecycle-402548e22c77", "workload timed out after N s; last console line: [   N.N] kharness-sva: N jobs", "workload timed out after N s", "verdict-c48be62a3243200f", "workload timed out after # s; last console line: [   #.#] kharness-sva: # jobs"),
        ("workload exited with status 139", "lifecycle-7864b63d4aae", "workload exited with status N", "workload exited with status N", "verdict-cbefe8fea7b74cdd", "workload exited with status #"),
        ("build failure", "lifecycle-85e64f9a8f6e", "build failure", "build failure", "verdict-439ccf600dd7f051", "build failure"),
        ("  padded 7  ", "lifecycle-54fe63baf1d6", "  padded N  ", "  padded N  ", "verdict-54cff058b0ffe5a0", "padded #"),
        ("10x5 0x 0xg 0x1fg", "lifecycle-2afdc7a3e500", "NxN N Ng Ng", "NN Nx Nxg Ng", "verdict-46724ee763ea1cd7", "10x5 # 0xg 0x1fg"),
    ]

    static func outputs(_ title: String) -> (String, String, String, String, String) {
        let verdict = FailureIssue.verdict(title, category: .verdict)
        return (PasidLifecycleOracle.Violation.signature(title: title), NumberMask.reportTitle(title),
                verdict.title, verdict.signature, FailureSignature.normalise(title))
    }

    static let titles = [
        "PASID 1 freed while still bound to pid 68",
        "PASID 1 freed while still bound to pid 85",
        "device DMA through PASID 1 of pid 166 faulted while its binding was live",
        "device DMA through PASID 1 of pid 67 faulted while its binding was live",
        "device DMA through PASID 1 reached a page pid 67 had unmapped",
        "bind by pid 12 refused (-16): PASID 3 still held by dead pid 10",
        "PASID 1 never freed after every holder was gone: its address space 0xa (pid 10) was dropped",
        "BUG: KASAN: slab-use-after-free in iommu_sva_bind_device",
        "BUG: KASAN: slab-use-after-free in mm_pasid_drop+0x2c/0x60",
        "WARNING in arm_smmu_write_ctx_desc",
        "kernel BUG at mm/mmap.c:3390!",
        "BUG: soft lockup in mmu_notifier2 on CPU 0x3",
        "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000011",
        "Unable to handle kernel paging request at virtual address ffff800080a3c000",
        "SMMU event F_TRANSLATION id 0x10 sid 0x20 ssid 0x1 address 0xffffab371000 read",
        "UNKNOWN(0x7f)",
        "IMPDEF_EVENT_0xe3",
        "general protection fault in ext4_fill_super",
        "workload timed out after 600 s; last console line: [   12.345678] kharness-sva: 3 jobs",
        "workload exited with status 139",
        "build failure",
        "  padded 7  ",
        "10x5 0x 0xg 0x1fg",
    ]

    func testEachRuleKeepsItsRecordedOutputs() {
        if Self.recorded.isEmpty || ProcessInfo.processInfo.environment["KHARNESS_PRINT_NUMBER_RULES"] == "1" {
            for title in Self.titles {
                let o = Self.outputs(title)
                print("        (\(literal(title)), \(literal(o.0)), \(literal(o.1)), \(literal(o.2)), \(literal(o.3)), \(literal(o.4))),")
            }
        }
        XCTAssertEqual(Self.recorded.map(\.0), Self.titles)
        for row in Self.recorded {
            let o = Self.outputs(row.0)
            XCTAssertEqual(o.0, row.1, "lifecycle: \(row.0)")
            XCTAssertEqual(o.1, row.2, "report: \(row.0)")
            XCTAssertEqual(o.2, row.3, "verdict title: \(row.0)")
            XCTAssertEqual(o.3, row.4, "verdict signature: \(row.0)")
            XCTAssertEqual(o.4, row.5, "bisect: \(row.0)")
        }
    }

    private func literal(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
