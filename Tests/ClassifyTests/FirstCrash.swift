import Foundation

@testable import Classify

/// What a test-data header says about a log's first crash (TITLE, ALT, CORRUPTED) checked
/// against what the classifier found. The syzkaller corpus and our arm64 logs share this,
/// so the two agree on what "the crash title is right" means.
enum FirstCrash {
    /// One expectation of a header; also the `<aspect>` column of
    /// testdata/corpus-known-misses.txt.
    enum Aspect: String, CaseIterable, Comparable, Sendable {
        /// A crash is found iff the header has a TITLE.
        case crash
        /// The first crash's title is TITLE or one of the ALTs.
        case title
        /// The first crash's `corrupted` flag is CORRUPTED.
        case corrupted
        /// The first crash's category is the one its TITLE implies (`expectedCategory`).
        case category

        static func < (a: Aspect, b: Aspect) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }
    }

    /// One checked aspect: `miss` is nil when it is right, else says what was wanted and got.
    struct Result: Equatable, Sendable {
        var aspect: Aspect
        var miss: String?
    }

    /// The report a header's TITLE describes: the first one that is neither an unexpected
    /// reboot nor a failure our guest's workload reported (that is not a kernel crash;
    /// syzkaller's logs have no `@@kharness` lines). A reboot is the crash only when there is
    /// nothing else: a machine that reset under the kernel says no more than that.
    static func report(in analysis: ConsoleAnalysis) -> KernelReport? {
        let kernel = analysis.reports.filter(\.isKernelReport)
        return kernel.first { $0.category != .reboot } ?? kernel.first
    }

    /// The aspects that apply to `header` (title, corrupted and category only when it has
    /// a TITLE; category only when the title implies one), each right or missed.
    static func check(_ header: TestdataFile, against analysis: ConsoleAnalysis, aspects: Set<Aspect> = Set(Aspect.allCases))
        -> [Result]
    {
        let got = report(in: analysis)
        var results: [Result] = []
        func add(_ aspect: Aspect, _ right: Bool, _ miss: @autoclosure () -> String) {
            if aspects.contains(aspect) { results.append(Result(aspect: aspect, miss: right ? nil : miss())) }
        }
        let gotText = got.map { "\"\($0.title)\" (\($0.category))" } ?? "no crash"
        guard let title = header.title else {
            add(.crash, got == nil, "want no crash, got \(gotText)")
            return results
        }
        add(.crash, got != nil, "want \"\(title)\", got no crash")
        let accepted = [title] + header.alternatives
        let alternatives = header.alternatives.isEmpty ? "" : " (or \(header.alternatives.map { "\"\($0)\"" }.joined(separator: ", ")))"
        add(.title, got.map { accepted.contains($0.title) } ?? false, "want \"\(title)\"\(alternatives), got \(gotText)")
        add(
            .corrupted, got?.corrupted == header.corrupted,
            "want corrupted \(header.corrupted ? "Y" : "N"), got "
                + (got.map { "\($0.corrupted ? "Y" : "N") for \"\($0.title)\"" } ?? "no crash"))
        if let category = expectedCategory(title: title) {
            add(.category, got?.category.rawValue == category, "want category \(category) for \"\(title)\", got \(gotText)")
        }
        return results
    }

    /// The category of ours that a syzkaller title names, where the two name the same
    /// thing; nil for titles with no counterpart (those are not scored on category).
    static func expectedCategory(title t: String) -> String? {
        if t.hasPrefix("KASAN") { return "kasan" }
        if t.hasPrefix("KFENCE") { return "kfence" }
        if t.hasPrefix("KMSAN") { return "kmsan" }
        if t.hasPrefix("KCSAN") { return "kcsan" }
        if t.hasPrefix("UBSAN") { return "ubsan" }
        if t.hasPrefix("memory leak") { return "leak" }
        if t.hasPrefix("possible deadlock") || t.hasPrefix("inconsistent lock state")
            || t.hasPrefix("WARNING: suspicious RCU") || t.hasPrefix("WARNING: bad unlock balance")
        {
            return "lockdep"
        }
        if t.hasPrefix("WARNING: refcount bug") { return "refcount" }
        if t.hasPrefix("INFO: task hung") || t.hasPrefix("INFO: rcu detected stall") || t.hasPrefix("BUG: soft lockup") {
            return "hang"
        }
        if t.hasPrefix("kernel BUG") { return "bug" }
        if t.hasPrefix("general protection fault") || t.hasPrefix("BUG: unable to handle") || t.hasPrefix("Unable to handle") {
            return "oops"
        }
        if t.hasPrefix("BUG: sleeping function") || t.hasPrefix("BUG: scheduling while atomic") { return "atomic-sleep" }
        if t.hasPrefix("WARNING in") || t.hasPrefix("WARNING: ODEBUG") { return "warning" }
        if t.hasPrefix("kernel panic") { return "panic" }
        return nil
    }
}
