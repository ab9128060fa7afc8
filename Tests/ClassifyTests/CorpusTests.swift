import Foundation
import XCTest

@testable import Classify

/// Scores the classifier against syzkaller's own report test data: real console logs
/// headed by the title and type syzkaller gives (no TITLE: no crash expected).
///
/// The corpus is not committed; it is looked for in $KHARNESS_SYZ_CORPUS, then
/// /work/shared/corpus/syzkaller-reports, then ../shared/corpus/syzkaller-reports next
/// to the repository. The test reports how many it gets right and asserts minimum rates.
final class CorpusTests: XCTestCase {
    struct Entry {
        var name: String
        var title: String?
        var alternatives: [String]
        var type: String?
        var corrupted: Bool
        var log: Data
    }

    static func corpusDirectory() -> URL? {
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["KHARNESS_SYZ_CORPUS"], !env.isEmpty { candidates.append(env) }
        candidates.append("/work/shared/corpus/syzkaller-reports")
        // Tests/ClassifyTests/CorpusTests.swift → repository root → ../shared/…
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        candidates.append(repo.deletingLastPathComponent().appendingPathComponent("shared/corpus/syzkaller-reports").path)
        for c in candidates {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: c, isDirectory: &isDir), isDir.boolValue { return URL(fileURLWithPath: c) }
        }
        return nil
    }

    /// Splits a corpus file into its header and console log. Syzkaller's files may also
    /// carry its expected output after a "REPORT:" line; that is not console.
    static func parse(name: String, data: Data) -> Entry {
        let bytes = [UInt8](data)
        var entry = Entry(name: name, title: nil, alternatives: [], type: nil, corrupted: false, log: Data())
        var offset = 0
        while offset < bytes.count {
            let end = bytes[offset...].firstIndex(of: 0x0A) ?? bytes.count
            let line = String(decoding: bytes[offset..<end], as: UTF8.self)
            offset = min(end + 1, bytes.count)
            if line.isEmpty { break }
            if line.hasPrefix("TITLE: ") { entry.title = String(line.dropFirst(7)) }
            if line.hasPrefix("ALT: ") { entry.alternatives.append(String(line.dropFirst(5))) }
            if line.hasPrefix("TYPE: ") { entry.type = String(line.dropFirst(6)) }
            if line.hasPrefix("CORRUPTED: Y") { entry.corrupted = true }
        }
        var log = Array(bytes[offset...])
        for marker in ["\nREPORT:\n", "\nTAIL REPORTS:\n"] {
            let m = Array(marker.utf8)
            if log.count >= m.count, let cut = (0...(log.count - m.count)).first(where: { log[$0..<$0 + m.count].elementsEqual(m) }) {
                log = Array(log[..<(cut + 1)])
            }
        }
        entry.log = Data(log)
        return entry
    }

    /// syzkaller's crash type → our category, where they name the same thing.
    static func expectedCategory(type: String?, title: String) -> String? {
        let t = title
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

    func testSyzkallerCorpus() throws {
        guard let dir = Self.corpusDirectory() else {
            throw XCTSkip(
                "syzkaller corpus not found: set KHARNESS_SYZ_CORPUS or provide /work/shared/corpus/syzkaller-reports "
                    + "or ../shared/corpus/syzkaller-reports beside the repository")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
            .filter { !$0.hasPrefix(".") && !$0.hasSuffix(".md") }
            .sorted { (Int($0) ?? Int.max, $0) < (Int($1) ?? Int.max, $1) }
        var total = 0, crashRight = 0, withTitle = 0, titleRight = 0, categoryKnown = 0, categoryRight = 0
        var corruptedRight = 0
        var misses: [String] = []
        let verbose = ProcessInfo.processInfo.environment["KHARNESS_SYZ_VERBOSE"] != nil
        for name in names {
            let data = try Data(contentsOf: dir.appendingPathComponent(name))
            let entry = Self.parse(name: name, data: data)
            var classifier = ConsoleClassifier()
            classifier.feed(entry.log)
            let analysis = classifier.finish()
            let first = analysis.reports.first { $0.category != "reboot" }
            total += 1
            let expectCrash = entry.title != nil
            if expectCrash == (first != nil) { crashRight += 1 }
            if let title = entry.title {
                withTitle += 1
                let got = first?.title ?? "(none)"
                if got == title || entry.alternatives.contains(got) {
                    titleRight += 1
                } else {
                    misses.append("\(name): want \"\(title)\" got \"\(got)\"")
                }
                if let category = Self.expectedCategory(type: entry.type, title: title) {
                    categoryKnown += 1
                    if first?.category == category { categoryRight += 1 }
                }
                if first?.corrupted == entry.corrupted { corruptedRight += 1 }
            } else if let first {
                misses.append("\(name): want no crash, got \"\(first.title)\"")
            }
        }
        print("syzkaller corpus \(dir.path): \(total) logs")
        print("  crash found or not right: \(crashRight)/\(total)")
        print("  exact title right:        \(titleRight)/\(withTitle)")
        print("  category right:           \(categoryRight)/\(categoryKnown)")
        print("  corrupted flag right:     \(corruptedRight)/\(withTitle)")
        for m in misses.prefix(verbose ? misses.count : 40) { print("  miss \(m)") }
        XCTAssertGreaterThan(total, 0, "corpus directory \(dir.path) has no logs")
        XCTAssertGreaterThanOrEqual(Double(crashRight), 0.85 * Double(total), "crash detection below 85%")
        XCTAssertGreaterThanOrEqual(Double(titleRight), 0.55 * Double(withTitle), "exact titles below 55%")
        XCTAssertGreaterThanOrEqual(Double(categoryRight), 0.80 * Double(categoryKnown), "categories below 80%")
    }
}
