import Foundation
import KernelTestSupport

/// A console log with its expectations in a header, in the layout of syzkaller's report
/// test data (`pkg/report/testdata/linux/report/`):
///
///     TITLE: <title>            (absent: no crash expected)
///     ALT: <alternative title>  (zero or more)
///     TYPE: <syzkaller's crash type>
///     CORRUPTED: Y              (optional)
///     <KEY>: <value>            (any other keys; a key may repeat, order is kept)
///     # a comment
///     <blank line>
///     <the console log>
///
/// One layout for both the syzkaller corpus and our own arm64 logs, so one parser reads
/// both and the expectation of a log travels with the log: a new log cannot be added
/// without one, and a reviewed diff of a header is the whole change to what is expected.
///
/// Syzkaller's files may carry its own expected report after a `REPORT:` or
/// `TAIL REPORTS:` line. That text is not console output and would be classified as a
/// second copy of the crash, so it is cut off the log (and kept in `trailer`, so that
/// rendering a file back loses nothing).
struct TestdataFile: Equatable, Sendable {
    /// One header line: `key` is nil for a `#` comment, whose whole line is `value`.
    struct Field: Equatable, Sendable {
        var key: String?
        var value: String

        init(_ key: String?, _ value: String) {
            self.key = key
            self.value = value
        }
    }

    enum ParseError: Error, Equatable, CustomStringConvertible {
        /// A line before the blank line that is neither `KEY: value` nor a `#` comment,
        /// typically a log someone added without a header.
        case notAHeaderLine(line: Int, text: String)

        var description: String {
            switch self {
            case .notAHeaderLine(let line, let text):
                return "header line \(line) is neither \"KEY: value\" nor \"# comment\" (a log without a header?): \(text.prefix(80))"
            }
        }
    }

    /// The lines that end the console part of a syzkaller file.
    static let sectionMarkers = ["REPORT:", "TAIL REPORTS:"]

    var fields: [Field]
    /// The console log, to be fed to the classifier.
    var log: Data
    /// From a `REPORT:` / `TAIL REPORTS:` line on, or empty.
    var trailer: Data

    init(fields: [Field], log: Data, trailer: Data = Data()) {
        self.fields = fields
        self.log = log
        self.trailer = trailer
    }

    // MARK: Header fields

    /// Every value of `key`, in file order.
    func values(_ key: String) -> [String] { fields.filter { $0.key == key }.map(\.value) }

    /// The first value of `key`.
    func value(_ key: String) -> String? { fields.first { $0.key == key }?.value }

    /// nil when absent or empty: syzkaller's own test (`expectCrash := test.Title != ""`)
    /// reads `TITLE: ` with nothing after it as "no crash expected", and the corpus has one.
    var title: String? { value("TITLE").flatMap { $0.isEmpty ? nil : $0 } }
    var alternatives: [String] { values("ALT") }
    var type: String? { value("TYPE") }
    var corrupted: Bool { value("CORRUPTED") == "Y" }
    /// The keys of the header, without comments, first occurrence order.
    var keys: [String] {
        var seen = Set<String>()
        return fields.compactMap(\.key).filter { seen.insert($0).inserted }
    }

    // MARK: Parsing

    static func load(_ url: URL) throws -> TestdataFile {
        try parse(Data(contentsOf: url))
    }

    /// Splits `data` into header, log and trailer. A header ended by the end of the file
    /// (no blank line) leaves an empty log.
    static func parse(_ data: Data) throws -> TestdataFile {
        let bytes = [UInt8](data)
        var fields: [Field] = []
        var offset = 0
        var lineNumber = 0
        while offset < bytes.count {
            let end = bytes[offset...].firstIndex(of: 0x0A) ?? bytes.count
            var line = String(decoding: bytes[offset..<end], as: UTF8.self)
            if line.hasSuffix("\r") { line.removeLast() }
            offset = min(end + 1, bytes.count)
            lineNumber += 1
            if line.isEmpty { break }
            guard let field = headerField(line) else { throw ParseError.notAHeaderLine(line: lineNumber, text: line) }
            fields.append(field)
        }
        let rest = Data(bytes[offset...])
        let cut = sectionStart(in: rest) ?? rest.count
        return TestdataFile(fields: fields, log: Data(rest[..<cut]), trailer: Data(rest[cut...]))
    }

    /// `KEY: value` (upper-case key: letters, digits, space, `-`, `_`; the value may be
    /// empty) or a `#` comment; nil for anything else.
    static func headerField(_ line: String) -> Field? {
        if line.hasPrefix("#") { return Field(nil, line) }
        guard let colon = line.firstIndex(of: ":") else { return nil }
        let key = line[..<colon]
        guard let first = key.unicodeScalars.first, ("A"..."Z").contains(first),
            key.unicodeScalars.allSatisfy({
                ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == " " || $0 == "-" || $0 == "_"
            })
        else { return nil }
        let rest = line[line.index(after: colon)...]
        if rest.isEmpty { return Field(String(key), "") }
        guard rest.hasPrefix(" ") else { return nil }
        return Field(String(key), String(rest.dropFirst()))
    }

    /// Offset of the first line of `log` that is exactly a section marker (LF or CRLF).
    static func sectionStart(in log: Data) -> Int? {
        var best: Int?
        for marker in sectionMarkers {
            for ending in ["\n", "\r\n"] {
                let line = Data((marker + ending).utf8)
                if log.starts(with: line) { return 0 }
                if let r = log.range(of: Data("\n".utf8) + line) {
                    let start = r.lowerBound - log.startIndex + 1
                    best = min(best ?? start, start)
                }
            }
        }
        return best
    }

    // MARK: Rendering

    /// The header as it is written: one line per field, then the blank line.
    func renderHeader() -> String {
        var text = ""
        for field in fields {
            precondition(!field.value.contains("\n"), "a header value is one line: \(field.value)")
            if let key = field.key {
                text += field.value.isEmpty ? "\(key):\n" : "\(key): \(field.value)\n"
            } else {
                text += field.value + "\n"
            }
        }
        return text + "\n"
    }

    /// The whole file: header, log and trailer. `parse(rendered())` gives back `self`.
    func rendered() -> Data {
        Data(renderHeader().utf8) + log + trailer
    }
}

/// Where the test data lives.
///
/// Read from the checkout (`Checkout`) when it is there, so that a run with
/// `KHARNESS_UPDATE_TESTDATA=1`, which rewrites the checkout's files, and the next
/// `swift test --skip-build` see the same files; SwiftPM's copy in the test bundle
/// (`resources: [.copy("testdata")]`) is only refreshed by a build, and is the fallback for
/// a build that was moved away from its sources.
enum Testdata {
    /// Tests/ClassifyTests in the checkout the tests were compiled from.
    static let sourceDirectory = Checkout.rootURL.appendingPathComponent("Tests/ClassifyTests")

    static let directory: URL = {
        let checkout = sourceDirectory.appendingPathComponent("testdata")
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: checkout.path, isDirectory: &isDirectory), isDirectory.boolValue {
            return checkout
        }
        return Bundle.module.resourceURL!.appendingPathComponent("testdata")
    }()

    /// `KHARNESS_UPDATE_TESTDATA=1`: tests that compare against committed expectations
    /// rewrite them from what the code produces now instead of asserting, so that a
    /// deliberate change of the rules is one command plus a reviewed `git diff`.
    static var updating: Bool { ProcessInfo.processInfo.environment["KHARNESS_UPDATE_TESTDATA"] == "1" }

    /// Writes `data` to `url` unless it already holds exactly that; true when it wrote.
    @discardableResult
    static func write(_ data: Data, to url: URL) throws -> Bool {
        if (try? Data(contentsOf: url)) == data { return false }
        try data.write(to: url, options: .atomic)
        return true
    }
}
