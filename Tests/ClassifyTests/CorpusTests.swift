import Foundation
import KernelTestSupport
import Testing

@testable import Classify

/// syzkaller's report test data: real console logs, each headed by the title syzkaller
/// gives it (see ../shared/corpus/README.md). Not committed here; found by `CorpusFiles`.
enum CorpusFiles {
    static let environmentVariable = "KHARNESS_SYZ_CORPUS"

    /// `$KHARNESS_SYZ_CORPUS` when set.
    static var explicit: String? {
        guard let path = ProcessInfo.processInfo.environment[environmentVariable], !path.isEmpty else { return nil }
        return path
    }

    /// `$KHARNESS_SYZ_CORPUS`, else `../shared/corpus/syzkaller-reports` beside the
    /// repository, which is where CI checks the shared data out (no absolute path: clones
    /// live in different places on different machines).
    static var candidate: URL {
        if let explicit { return URL(fileURLWithPath: explicit) }
        return Checkout.rootURL.deletingLastPathComponent().appendingPathComponent("shared/corpus/syzkaller-reports")
    }

    /// The corpus directory, nil when it is not there.
    static var directory: URL? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), isDirectory.boolValue
        else { return nil }
        return candidate
    }

    /// A missing corpus fails instead of skipping under CI (CI=true), which always has
    /// ../shared beside the clone, so the corpus cannot silently drop out of CI, and when
    /// $KHARNESS_SYZ_CORPUS names one, since asking for a corpus that is not there is a mistake.
    static var required: Bool {
        let ci = ProcessInfo.processInfo.environment["CI"]?.lowercased()
        return ci == "true" || ci == "1" || explicit != nil
    }

    static var missingMessage: String {
        "syzkaller corpus not found at \(candidate.path): set \(environmentVariable) or check out the shared data "
            + "as ../shared beside the repository"
    }

    /// The corpus's file names, numerically sorted; empty when there is no corpus (then the
    /// per-file test has no cases and the aggregate test says why).
    static func all() -> [String] {
        guard let directory, let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return [] }
        return names.filter { !$0.hasPrefix(".") && !$0.hasSuffix(".md") }.sorted(by: numerically)
    }

    static func numerically(_ a: String, _ b: String) -> Bool {
        (Int(a) ?? Int.max, a) < (Int(b) ?? Int.max, b)
    }

    /// Classifies one corpus file and checks every aspect of its header.
    static func evaluate(_ name: String) throws -> Verdict {
        let directory = try #require(directory, Comment(rawValue: missingMessage))
        let file = try TestdataFile.load(directory.appendingPathComponent(name))
        var classifier = ConsoleClassifier()
        classifier.feed(file.log)
        let analysis = classifier.finish()
        return Verdict(name: name, title: file.title, results: FirstCrash.check(file, against: analysis))
    }

    struct Verdict: Sendable {
        var name: String
        var title: String?
        var results: [FirstCrash.Result]
    }
}

/// The corpus expectations the classifier is known not to meet, from
/// testdata/corpus-known-misses.txt: lines `<file> <aspect> # why`.
///
/// The goal is a rate (95 % of exact titles), not every file, so some misses are accepted;
/// listing them one by one keeps every other file a hard test, and wrapping exactly the
/// listed ones in a non-intermittent `withKnownIssue` makes a listed miss that starts to
/// pass fail too, so the list cannot rot. `KHARNESS_UPDATE_TESTDATA=1` rewrites it.
struct KnownMisses: Equatable {
    struct Key: Hashable, Comparable {
        var file: String
        var aspect: FirstCrash.Aspect

        static func < (a: Key, b: Key) -> Bool {
            a.file != b.file ? CorpusFiles.numerically(a.file, b.file) : a.aspect < b.aspect
        }
    }

    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    /// Why each listed miss is accepted ("" when the line gives no reason).
    var entries: [Key: String] = [:]

    /// In the checkout, where an update writes it and the next run reads it.
    static var url: URL { Testdata.sourceDirectory.appendingPathComponent("testdata/corpus-known-misses.txt") }

    static func load() throws -> KnownMisses {
        try parse(String(contentsOf: url, encoding: .utf8))
    }

    static func parse(_ text: String) throws -> KnownMisses {
        var misses = KnownMisses()
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let entry = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
            let why = entry.count > 1 ? entry[1].trimmingCharacters(in: .whitespaces) : ""
            let words = entry[0].split(separator: " ", omittingEmptySubsequences: true)
            guard words.count == 2, let aspect = FirstCrash.Aspect(rawValue: String(words[1])) else {
                throw ParseError(
                    description: "corpus-known-misses.txt:\(index + 1): want \"<file> <aspect> # why\" with aspect one of "
                        + "\(FirstCrash.Aspect.allCases.map(\.rawValue).joined(separator: ", ")): \(line)")
            }
            let key = Key(file: String(words[0]), aspect: aspect)
            guard misses.entries.updateValue(why, forKey: key) == nil else {
                throw ParseError(description: "corpus-known-misses.txt:\(index + 1): listed twice: \(line)")
            }
        }
        return misses
    }

    subscript(file: String, aspect: FirstCrash.Aspect) -> String? { entries[Key(file: file, aspect: aspect)] }

    static let preamble = """
        # syzkaller corpus expectations the classifier does not meet yet, one per line:
        #   <file> <aspect> # why          aspect: crash, title, corrupted or category
        # CorpusTests wraps exactly these in withKnownIssue; a listed miss that starts to pass
        # fails too, so keep the list exact. Regenerate from the current classifier with
        #   KHARNESS_UPDATE_TESTDATA=1 swift test --filter CorpusTests
        # It keeps the "why" of entries that remain; "unexplained: <want/got>" is its own and
        # is rewritten each time: replace it with the reason to keep a reason.

        """

    /// Marks a "why" the update wrote (what was wanted and got) rather than a person: it is
    /// rewritten on every update, so it never goes stale; replace it with a reason to keep it.
    static let unexplained = "unexplained: "

    /// The file for `misses` (current misses with what was wanted and got), keeping this
    /// list's reason for every entry that remains.
    func rendered(misses: [Key: String]) -> String {
        var text = Self.preamble
        for key in misses.keys.sorted() {
            var why = Self.unexplained + misses[key]!
            if let kept = entries[key], !kept.isEmpty, !kept.hasPrefix(Self.unexplained) { why = kept }
            text += "\(key.file) \(key.aspect.rawValue) # \(why)\n"
        }
        return text
    }
}

/// Scores the classifier against the syzkaller corpus: one test case per log, so a failure
/// names the log, and one aggregate test for the rates the classifier is held to.
@Suite("syzkaller corpus")
struct CorpusTests {
    @Test("first crash of a corpus log matches its header", arguments: CorpusFiles.all())
    func corpusLog(_ name: String) throws {
        // The list is being rewritten by the aggregate test; comparing against it is moot.
        if Testdata.updating { return }
        let known = try KnownMisses.load()
        let verdict = try CorpusFiles.evaluate(name)
        let checked = Set(verdict.results.map(\.aspect))
        for result in verdict.results {
            if let why = known[name, result.aspect] {
                withKnownIssue(Comment(rawValue: "\(name) \(result.aspect.rawValue): \(why)")) {
                    if let miss = result.miss { Issue.record(Comment(rawValue: "\(name) \(result.aspect.rawValue): \(miss)")) }
                }
            } else if let miss = result.miss {
                Issue.record(Comment(rawValue: "\(name) \(result.aspect.rawValue): \(miss)"))
            }
        }
        for aspect in FirstCrash.Aspect.allCases where known[name, aspect] != nil && !checked.contains(aspect) {
            Issue.record(
                Comment(rawValue: "\(name) \(aspect.rawValue) is listed in corpus-known-misses.txt but does not apply to this log"))
        }
    }

    @Test(
        "classifier meets the corpus goals",
        .enabled(if: CorpusFiles.directory != nil || CorpusFiles.required, Comment(rawValue: CorpusFiles.missingMessage)))
    func corpusScores() throws {
        guard let directory = CorpusFiles.directory else {
            Issue.record(Comment(rawValue: CorpusFiles.missingMessage + " (required: CI=true or \(CorpusFiles.environmentVariable) set)"))
            return
        }
        let names = CorpusFiles.all()
        try #require(!names.isEmpty, "corpus directory \(directory.path) has no logs")
        let verdicts = try names.map(CorpusFiles.evaluate)

        var checked: [FirstCrash.Aspect: Int] = [:]
        var right: [FirstCrash.Aspect: Int] = [:]
        var misses: [KnownMisses.Key: String] = [:]
        for verdict in verdicts {
            for result in verdict.results {
                checked[result.aspect, default: 0] += 1
                if let miss = result.miss {
                    misses[KnownMisses.Key(file: verdict.name, aspect: result.aspect)] = miss
                } else {
                    right[result.aspect, default: 0] += 1
                }
            }
        }
        let titled = verdicts.filter { $0.title != nil }.count
        let known = try KnownMisses.load()

        print("syzkaller corpus \(directory.path): \(verdicts.count) logs, \(titled) with a TITLE")
        for aspect in FirstCrash.Aspect.allCases {
            let (r, n) = (right[aspect] ?? 0, checked[aspect] ?? 0)
            let percent = n == 0 ? 0 : 100 * Double(r) / Double(n)
            print("  \(aspect.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)) \(r)/\(n) right (\(String(format: "%.1f", percent)) %)")
        }
        for key in misses.keys.sorted() {
            print("  \(known.entries[key] == nil ? "NEW miss  " : "known miss") \(key.file) \(key.aspect.rawValue): \(misses[key]!)")
        }

        if Testdata.updating {
            if try Testdata.write(Data(known.rendered(misses: misses).utf8), to: KnownMisses.url) {
                print("updated \(KnownMisses.url.path): \(misses.count) known misses")
            }
        } else {
            // Entries for logs the corpus does not have would never be checked.
            let present = Set(names)
            for key in known.entries.keys.sorted() where !present.contains(key.file) {
                Issue.record(Comment(rawValue: "corpus-known-misses.txt lists \(key.file), which is not in the corpus"))
            }
        }

        func rate(_ aspect: FirstCrash.Aspect) -> Double {
            Double(right[aspect] ?? 0) / Double(max(checked[aspect] ?? 0, 1))
        }
        // crash is checked on every log; title and corrupted on every titled log; category on
        // the titled logs whose title maps to one of our categories.
        #expect(checked[.crash] == verdicts.count)
        #expect(checked[.title] == titled && checked[.corrupted] == titled)
        #expect(rate(.crash) >= 0.99, "crash found or not right for \(right[.crash] ?? 0)/\(verdicts.count) logs, goal 99 %")
        #expect(rate(.category) >= 0.99, "category right for \(right[.category] ?? 0)/\(checked[.category] ?? 0), goal 99 %")
        #expect(rate(.title) >= 0.95, "exact title right for \(right[.title] ?? 0)/\(titled) titled logs, goal 95 %")
        #expect(rate(.corrupted) >= 0.95, "corrupted flag right for \(right[.corrupted] ?? 0)/\(titled) titled logs, goal 95 %")
    }
}
