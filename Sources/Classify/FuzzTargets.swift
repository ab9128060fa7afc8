import Foundation

/// The entry points `scripts/fuzz` drives with libFuzzer, one per parser of guest
/// output, and the unit tests replay the inputs it found (testdata/fuzz-regressions).
/// They live here, not in the fuzzer's own file, so a replayed input runs exactly
/// the code that failed. Each takes any bytes and must neither trap nor hang.
public enum FuzzTargets {
    public static let names = ["console", "trace", "smmu", "lifecycle"]

    /// Runs target `name` on `data`; false for an unknown name.
    @discardableResult
    public static func run(_ name: String, _ data: [UInt8]) -> Bool {
        switch name {
        case "console": console(data)
        case "trace": trace(data)
        case "smmu": smmu(data)
        case "lifecycle": lifecycle(data)
        default: return false
        }
        return true
    }

    /// Rules with every kind of condition, so judging and resolving suppressions runs too.
    static let suppressions = Suppressions(rules: [
        .init(title: "WARNING in *"),
        .init(title: "KASAN: *", kernel: "6.1.*"),
        .init(title: "INFO: rcu detected stall in *", machine: "fuzz*"),
        .init(signature: "0123456789abcdef", kernel: "[56].*"),
        .init(title: "workload failure in s*"),
    ], machine: "fuzz")

    /// The console classifier fed in chunks the input's first byte sizes, then both verdicts.
    public static func console(_ data: [UInt8]) {
        var classifier = ConsoleClassifier(suppressions: suppressions)
        let chunk = max(1, Int(data.first ?? 0) * 16)
        var offset = data.isEmpty ? 0 : 1
        while offset < data.count {
            let end = min(offset + chunk, data.count)
            classifier.feed(data[offset..<end])
            offset = end
        }
        let analysis = classifier.finish()
        _ = decideLogOutcome(analysis: analysis)
        for end in [RunEnd.guestFinished, .timeout(phase: "workload"), .bootFailed("x")] {
            _ = decideOutcome(analysis: analysis, end: end,
                              expected: RunExpectations(workload: "sva", scenarios: ["baseline"], machineHasDevice: true))
        }
        _ = try? JSONEncoder().encode(analysis)
    }

    /// The trace collector: a line whose first byte is odd goes to the port, else to the console.
    public static func trace(_ data: [UInt8]) {
        var collector = TraceCollector(limitBytes: 1 << 20, hasPort: data.first.map { $0 & 0x80 != 0 } ?? false)
        for line in lines(data) {
            let toPort = line.utf8.first.map { $0 & 1 == 1 } ?? false
            if toPort {
                collector.addPortLine(line)
            } else {
                collector.addConsoleLine(line, afterKernelDied: line.utf8.count & 1 == 0)
            }
        }
        for event in collector.events { _ = event.jsonLine }
        _ = collector.text
        _ = collector.complete
    }

    /// SMMU output: every line as an `arm-smmu-v3` message of the tracker and the
    /// classifier, and the input's 8-byte words as a raw event record.
    public static func smmu(_ data: [UInt8]) {
        var tracker = SmmuTracker()
        var events: [SmmuEvent] = []
        var console: [UInt8] = []
        for (index, line) in lines(data).enumerated() {
            for action in tracker.handle(message: Substring(line), line: index) {
                if case .event(let e) = action { events.append(e) }
            }
            console += Array("[    1.000000] arm-smmu-v3 9050000.smmuv3: ".utf8) + Array(line.utf8) + [0x0A]
        }
        for action in tracker.flush() {
            if case .event(let e) = action { events.append(e) }
        }
        var words: [UInt64] = []
        var i = 0
        while i + 8 <= data.count, words.count < 4 {
            words.append(data[i..<i + 8].reduce(0) { $0 << 8 | UInt64($1) })
            i += 8
        }
        events.append(Smmu.decode(raw: words, line: 1))
        for e in events { _ = Smmu.describe(e) }
        var classifier = ConsoleClassifier()
        classifier.feed(console)
        _ = decideLogOutcome(analysis: classifier.finish())
    }

    /// The lifecycle oracle over the input's lines as trace records and workload reports.
    public static func lifecycle(_ data: [UInt8]) {
        var oracle = PasidLifecycleOracle()
        for line in lines(data) {
            if line.hasPrefix("@@") {
                oracle.observeWorkload(line)
            } else {
                oracle.observe(line)
            }
        }
        oracle.finish(complete: true)
        for v in oracle.violations { _ = v.report }
    }

    private static func lines(_ data: [UInt8]) -> [String] {
        data.split(separator: 0x0A, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    }
}
