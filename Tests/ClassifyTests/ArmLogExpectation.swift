import Foundation

@testable import Classify

/// Our arm64 logs in testdata/arm64, each headed (`TestdataFile`) by what the harness must
/// make of it. Every reader of these logs goes through here, so none feeds the header to
/// the classifier.
enum ArmLogs {
    static var directory: URL { Testdata.directory.appendingPathComponent("arm64") }

    /// The logs' file names, sorted; the per-log test's arguments.
    static func names() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".log") }.sorted()
    }

    static func file(_ name: String) throws -> TestdataFile {
        try TestdataFile.load(directory.appendingPathComponent(name))
    }

    /// The console log alone, header stripped.
    static func log(_ name: String) throws -> Data { try file(name).log }

    /// The header's expectations.
    static func expectation(_ name: String) throws -> ArmLogExpectation { try ArmLogExpectation(header: file(name)) }

    static func analyze(_ name: String, chunk: Int = 4096) throws -> ConsoleAnalysis {
        analyze(try log(name), chunk: chunk)
    }

    /// Feeds `log` in `chunk`-byte pieces, as the harness does while the guest runs.
    static func analyze(_ log: Data, chunk: Int = 4096) -> ConsoleAnalysis {
        var classifier = ConsoleClassifier()
        var offset = log.startIndex
        while offset < log.endIndex {
            let end = min(offset + chunk, log.endIndex)
            classifier.feed(log[offset..<end])
            offset = end
        }
        return classifier.finish()
    }

    /// How the run ended, as RUN-END gives it: `finished`, `timeout:<phase>`, `boot-failed:<reason>`.
    static func runEnd(_ text: String) -> RunEnd {
        if text.hasPrefix("timeout:") { return .timeout(phase: String(text.dropFirst(8))) }
        if text.hasPrefix("boot-failed:") { return .bootFailed(String(text.dropFirst(12))) }
        return .guestFinished
    }
}

/// The header of an arm64 log (testdata/arm64/README.md has the keys): syzkaller's
/// TITLE / ALT / TYPE / CORRUPTED for the first crash, as in the corpus, plus what only a
/// kharness run has: how the run ended, the verdict, every report, scenarios, SMMU events.
///
/// What a header leaves out is not checked (RELEASE, SCENARIO, SMMU-EVENT-COUNT,
/// SMMU-EVENT, a report's `frame=`, an event's `address=`/`read=`); everything else is
/// always checked, an absent KREPORT meaning "no reports". Unknown or repeated keys are
/// errors, so a typo cannot quietly drop a check.
struct ArmLogExpectation: Equatable {
    struct Report: Equatable {
        var category: String
        var title: String
        var corrupted: Bool = false
        /// Checked only when given.
        var guiltyFrame: String?
    }

    struct Scenario: Equatable {
        var name: String
        var status: String
    }

    struct Event: Equatable {
        var name: String
        var id: Int?
        var streamID: UInt32?
        var substreamID: UInt32?
        /// Checked only when given (id, sid, ssid and client are always checked: absent means none).
        var address: UInt64?
        /// Checked only when given.
        var read: Bool?
        var client: String?
    }

    struct HeaderError: Error, CustomStringConvertible {
        var description: String
    }

    /// `#` lines, kept at the top when the header is rewritten.
    var comments: [String] = []
    var title: String?
    var alternatives: [String] = []
    /// syzkaller's crash type for TITLE; documentation, not checked (the classifier has no such notion).
    var type: String?
    var corrupted = false
    var end = "finished"
    var status = ""
    var reason = ""
    var release: String?
    var bootBanners = 1
    var reports: [Report] = []
    var scenarios: [Scenario]?
    var smmuEventCount: Int?
    var smmuEvents: [Event]?

    static let singleKeys = [
        "TITLE", "TYPE", "CORRUPTED", "RUN-END", "STATUS", "REASON", "RELEASE", "BOOT-BANNERS", "SMMU-EVENT-COUNT",
    ]
    static let repeatableKeys = ["ALT", "KREPORT", "SCENARIO", "SMMU-EVENT"]
    static let requiredKeys = ["RUN-END", "STATUS", "REASON", "BOOT-BANNERS"]

    init() {}

    init(header file: TestdataFile) throws {
        func fail(_ message: String) -> HeaderError { HeaderError(description: message) }
        for key in file.keys {
            if !Self.singleKeys.contains(key) && !Self.repeatableKeys.contains(key) { throw fail("unknown header key \(key):") }
            if Self.singleKeys.contains(key) && file.values(key).count > 1 { throw fail("\(key): given more than once") }
        }
        for key in Self.requiredKeys where file.value(key) == nil { throw fail("\(key): missing") }
        comments = file.fields.filter { $0.key == nil }.map(\.value)
        title = file.title
        alternatives = file.alternatives
        type = file.type
        if let c = file.value("CORRUPTED"), c != "Y" { throw fail("CORRUPTED: is Y or absent, not \(c)") }
        corrupted = file.corrupted
        if title == nil && (!alternatives.isEmpty || type != nil || corrupted) {
            throw fail("ALT:, TYPE: and CORRUPTED: describe TITLE:, which is missing")
        }
        end = file.value("RUN-END")!
        status = file.value("STATUS")!
        reason = file.value("REASON")!
        release = file.value("RELEASE")
        bootBanners = try Self.integer(file.value("BOOT-BANNERS")!, "BOOT-BANNERS")
        reports = try file.values("KREPORT").map(Self.report)
        let scenarioLines = file.values("SCENARIO")
        if !scenarioLines.isEmpty {
            scenarios = try scenarioLines.map { line in
                let words = line.split(separator: " ")
                guard words.count == 2 else { throw fail("SCENARIO: want \"<name> <status>\": \(line)") }
                return Scenario(name: String(words[0]), status: String(words[1]))
            }
            if Set(scenarios!.map(\.name)).count != scenarios!.count { throw fail("SCENARIO: a name is given twice") }
        }
        smmuEventCount = try file.value("SMMU-EVENT-COUNT").map { try Self.integer($0, "SMMU-EVENT-COUNT") }
        let eventLines = file.values("SMMU-EVENT")
        if !eventLines.isEmpty { smmuEvents = try eventLines.map(Self.event) }
    }

    // MARK: Values

    static func integer(_ text: String, _ key: String) throws -> Int {
        guard let n = Int(text) else { throw HeaderError(description: "\(key): not a number: \(text)") }
        return n
    }

    /// `0x`-prefixed hexadecimal or decimal.
    static func unsigned(_ text: Substring) -> UInt64? {
        text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
    }

    /// `<category> | <title>[ | corrupted][ | frame=<function>]`.
    static func report(_ value: String) throws -> Report {
        var parts = value.components(separatedBy: " | ")
        guard parts.count >= 2 else { throw HeaderError(description: "KREPORT: want \"<category> | <title> ...\": \(value)") }
        var report = Report(category: parts.removeFirst(), title: "")
        while parts.count > 1, let last = parts.last {
            if last == "corrupted" {
                report.corrupted = true
            } else if last.hasPrefix("frame=") {
                report.guiltyFrame = String(last.dropFirst(6))
            } else {
                break
            }
            parts.removeLast()
        }
        report.title = parts.joined(separator: " | ")
        return report
    }

    static func render(_ r: Report) -> String {
        "\(r.category) | \(r.title)" + (r.corrupted ? " | corrupted" : "") + (r.guiltyFrame.map { " | frame=\($0)" } ?? "")
    }

    /// `<name>[ id=0x..][ sid=0x..][ ssid=0x..][ address=0x..][ read=true|false][ client=..]`.
    static func event(_ value: String) throws -> Event {
        let words = value.split(separator: " ")
        guard let name = words.first else { throw HeaderError(description: "SMMU-EVENT: empty") }
        var event = Event(name: String(name))
        for word in words.dropFirst() {
            let kv = word.split(separator: "=", maxSplits: 1)
            let bad = HeaderError(description: "SMMU-EVENT: bad \(word) in: \(value)")
            guard kv.count == 2 else { throw bad }
            func need<T>(_ value: T?) throws -> T {
                guard let value else { throw bad }
                return value
            }
            switch kv[0] {
            case "id": event.id = try need(unsigned(kv[1]).flatMap { Int(exactly: $0) })
            case "sid": event.streamID = try need(unsigned(kv[1]).flatMap { UInt32(exactly: $0) })
            case "ssid": event.substreamID = try need(unsigned(kv[1]).flatMap { UInt32(exactly: $0) })
            case "address": event.address = try need(unsigned(kv[1]))
            case "read": event.read = try need(Bool(String(kv[1])))
            case "client": event.client = String(kv[1])
            default: throw bad
            }
        }
        return event
    }

    static func render(_ e: Event) -> String {
        func hex<T: BinaryInteger>(_ v: T) -> String { "0x" + String(v, radix: 16) }
        var words = [e.name]
        if let id = e.id { words.append("id=" + hex(id)) }
        if let sid = e.streamID { words.append("sid=" + hex(sid)) }
        if let ssid = e.substreamID { words.append("ssid=" + hex(ssid)) }
        if let address = e.address { words.append("address=" + hex(address)) }
        if let read = e.read { words.append("read=\(read)") }
        if let client = e.client { words.append("client=" + client) }
        return words.joined(separator: " ")
    }

    // MARK: Writing

    /// The header, in a fixed key order so that rewriting it gives small diffs.
    var fields: [TestdataFile.Field] {
        typealias F = TestdataFile.Field
        var f = comments.map { F(nil, $0) }
        if let title { f.append(F("TITLE", title)) }
        f += alternatives.map { F("ALT", $0) }
        if let type { f.append(F("TYPE", type)) }
        if corrupted { f.append(F("CORRUPTED", "Y")) }
        f += [F("RUN-END", end), F("STATUS", status), F("REASON", reason)]
        if let release { f.append(F("RELEASE", release)) }
        f.append(F("BOOT-BANNERS", String(bootBanners)))
        f += reports.map { F("KREPORT", Self.render($0)) }
        f += (scenarios ?? []).map { F("SCENARIO", "\($0.name) \($0.status)") }
        if let smmuEventCount { f.append(F("SMMU-EVENT-COUNT", String(smmuEventCount))) }
        f += (smmuEvents ?? []).map { F("SMMU-EVENT", Self.render($0)) }
        return f
    }

    /// What this header becomes when rewritten from what the classifier produced now
    /// (`KHARNESS_UPDATE_TESTDATA=1`). It keeps the header's shape: RUN-END (an input),
    /// TYPE, ALT and comments stay; the optional checks (RELEASE, SCENARIO, SMMU-EVENT-COUNT,
    /// SMMU-EVENT, `frame=`) are rewritten only where the header had them, so an update
    /// changes values, never what is checked. To check more, add the line and update.
    func updated(analysis: ConsoleAnalysis, outcome: Outcome) -> ArmLogExpectation {
        var next = self
        let crash = FirstCrash.report(in: analysis)
        next.title = crash?.title
        next.alternatives = crash == nil ? [] : alternatives.filter { $0 != crash?.title }
        next.type = crash == nil ? nil : type
        next.corrupted = crash?.corrupted ?? false
        next.status = outcome.status.rawValue
        next.reason = outcome.reason
        if release != nil { next.release = analysis.kernelRelease }
        next.bootBanners = analysis.bootBanners
        next.reports = analysis.reports.enumerated().map { index, r in
            let keepFrame = index < reports.count && reports[index].guiltyFrame != nil
            return Report(category: r.category.rawValue, title: r.title, corrupted: r.corrupted, guiltyFrame: keepFrame ? r.guiltyFrame : nil)
        }
        if scenarios != nil { next.scenarios = analysis.scenarios.map { Scenario(name: $0.name, status: $0.status.rawValue) } }
        if smmuEventCount != nil { next.smmuEventCount = analysis.smmuEventCount }
        if let old = smmuEvents {
            next.smmuEvents = analysis.smmuEvents.enumerated().map { index, e in
                let shape = index < old.count ? old[index] : nil
                return Event(
                    name: e.name, id: e.id, streamID: e.streamID, substreamID: e.substreamID,
                    address: shape == nil || shape?.address != nil ? e.address : nil,
                    read: shape == nil || shape?.read != nil ? e.read : nil, client: e.client)
            }
        }
        return next
    }
}
