import Foundation

/// Reads a console log as untrusted bytes and finds kernel reports, SMMU events,
/// boot banners and the guest's `@@kharness` protocol lines.
///
/// Streaming with bounded memory: bytes may arrive in any chunking; a line is cut at
/// ``maxLineBytes``, a report at ``maxReportLines``/``maxReportBytes``, and only the
/// first ``maxStoredReports`` kernel reports' texts and ``maxStoredSmmuEvents`` events
/// are kept. No cap changes the verdict: every report past the stored ones is still
/// named and judged against the suppressions (counted by how its suppression depends on
/// the kernel release, which may be learnt later), and the first one no rule suppresses
/// is kept. Workload failures are kept apart, one per scenario, and never take a kernel
/// report's place. The hot path looks at bytes only; a line becomes a `String`
/// only when a cheap prefix check says it matters or a report is being collected.
public struct ConsoleClassifier {
    public static let maxLineBytes = 4096
    public static let maxStoredReports = 64
    public static let maxReportLines = 400
    public static let maxReportBytes = 64 * 1024
    public static let maxStoredSmmuEvents = 256
    public static let lastLineCount = 20
    static let maxScenarios = 256
    static let maxEvidence = 32
    /// More SMMU events than this in one run is reported as an event storm.
    public static let smmuStormThreshold = 100

    private let suppressions: Suppressions
    private var partial: [UInt8] = []
    private var partialTruncated = false
    private var result = ConsoleAnalysis()
    private var lineNumber = 0

    private var ring: [[UInt8]] = Array(repeating: [], count: ConsoleClassifier.lastLineCount)
    private var ringNext = 0

    private var open: ReportDraft?
    private var openCaller = 0
    private var openEndsWithSeparator = false
    /// Reports of other printk callers, set aside while a report of another caller started:
    /// two CPUs can print reports at once, their lines interleaved, and each keeps its own.
    private var parked: [(caller: Int, draft: ReportDraft)] = []
    static let maxParkedReports = 4
    private var reportsSeen = 0
    private var storedKernelReports = 0
    /// Kernel reports past the stored ones, grouped by how their suppression is decided.
    private var unstored: [Suppressions.Judgement: UnstoredGroup] = [:]

    /// Reports past the stored ones that share a ``Suppressions/Judgement``: how many of
    /// each category, and the first one (its text cut to what a verdict shows).
    private struct UnstoredGroup {
        var counts: [String: Int] = [:]
        var first: KernelReport
    }

    private var noteLine = -1_000_000
    private var noteText: String?
    private var lastBootingLine = -1_000_000

    private var smmu = SmmuTracker()
    private var smmuTitles: Set<String> = []
    private var smmuStormReported = false
    private var scenarioIndex: [String: Int] = [:]

    public init(suppressions: Suppressions = Suppressions()) {
        self.suppressions = suppressions
        partial.reserveCapacity(Self.maxLineBytes)
    }

    /// Reads the next bytes of the console, in any chunking.
    public mutating func feed(_ bytes: some Collection<UInt8>) {
        let done: Void? = bytes.withContiguousStorageIfAvailable { self.feedBuffer($0) }
        if done == nil {
            let copy = Array(bytes)
            copy.withUnsafeBufferPointer { self.feedBuffer($0) }
        }
    }

    /// Ends the log: an unterminated last line counts, an open report is closed as cut off.
    public mutating func finish() -> ConsoleAnalysis {
        if !partial.isEmpty || partialTruncated { flushPartialLine() }
        if open != nil { closeOpen(cutOff: true) }
        closeParked(cutOff: true)
        commitSmmu(smmu.flush())
        result.lineCount = lineNumber
        var last: [String] = []
        for k in 0..<Self.lastLineCount {
            let entry = ring[(ringNext + k) % Self.lastLineCount]
            if !entry.isEmpty { last.append(Bytes.sanitize(entry, limit: 512)) }
        }
        result.lastLines = last
        // SMMU events are committed a few lines late; keep console order.
        result.reports = result.reports.enumerated()
            .sorted { ($0.element.line, $0.offset) < ($1.element.line, $1.offset) }
            .map(\.element)
        var analysis = result
        suppressions.apply(to: &analysis)
        for report in analysis.reports where report.isKernelReport && !report.suppressed {
            analysis.unsuppressedReportCounts[report.category.rawValue, default: 0] += 1
        }
        // The reports past the stored ones, judged now that the release is final.
        var firstUnstored: KernelReport?
        for (judgement, group) in unstored where !suppressions.resolve(judgement, kernel: analysis.kernelRelease) {
            for (category, count) in group.counts {
                analysis.unsuppressedReportCounts[category] = analysis.unsuppressedReportCounts[category, default: 0]
                    .saturatingAdd(count)
            }
            if firstUnstored.map({ group.first.line < $0.line }) ?? true { firstUnstored = group.first }
        }
        // Kept when the stored reports do not already show its issue: it may be the
        // one that decides the verdict, and comparisons see it.
        if let firstUnstored, !analysis.reports.contains(where: {
            $0.isKernelReport && !$0.suppressed && $0.signature == firstUnstored.signature
        }) {
            analysis.reports.append(firstUnstored)
        }
        return analysis
    }

    /// The guest's `@@kharness done` line has been read: the workload ran to its end.
    public var sawDone: Bool { result.sawDone }

    /// The kernel died: an oops (`Internal error: Oops …`, `invalid opcode`) or a panic
    /// line has been read. Only then does `ftrace_dump_on_oops` dump the trace on the
    /// console; a forged dump needs a forged oops, which is a report that fails the run.
    public private(set) var sawKernelDeath = false

    /// Some `@@kharness` protocol line has been read: the guest's init is running.
    public private(set) var sawProtocol = false

    // MARK: - Lines

    private mutating func feedBuffer(_ buf: UnsafeBufferPointer<UInt8>) {
        guard let base = buf.baseAddress else { return }
        let n = buf.count
        var start = 0
        while start < n {
            guard let hit = memchr(base + start, 0x0A, n - start) else {
                appendPartial(UnsafeBufferPointer(rebasing: buf[start..<n]))
                return
            }
            let end = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            if partial.isEmpty && !partialTruncated {
                let len = min(end - start, Self.maxLineBytes)
                processRawLine(UnsafeBufferPointer(start: base + start, count: len), truncated: end - start > len)
            } else {
                appendPartial(UnsafeBufferPointer(rebasing: buf[start..<end]))
                flushPartialLine()
            }
            start = end + 1
        }
    }

    private mutating func appendPartial(_ bytes: UnsafeBufferPointer<UInt8>) {
        let room = Self.maxLineBytes - partial.count
        if bytes.count > room {
            if room > 0 { partial.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[0..<room])) }
            partialTruncated = true
        } else {
            partial.append(contentsOf: bytes)
        }
    }

    private mutating func flushPartialLine() {
        var line: [UInt8] = []
        swap(&line, &partial)
        let truncated = partialTruncated
        partialTruncated = false
        line.withUnsafeBufferPointer { processRawLine($0, truncated: truncated) }
        line.removeAll(keepingCapacity: true)
        swap(&line, &partial)
    }

    /// Splits at carriage returns (`\r\n` endings, progress output) and drops NUL-only noise.
    private mutating func processRawLine(_ raw: UnsafeBufferPointer<UInt8>, truncated: Bool) {
        var line = raw
        while let last = line.last, last == 0x0D { line = UnsafeBufferPointer(rebasing: line.dropLast()) }
        guard let base = line.baseAddress, !line.isEmpty else {
            processLine(UnsafeBufferPointer(start: nil, count: 0), truncated: truncated)
            return
        }
        guard memchr(base, 0x0D, line.count) != nil else {
            processLine(line, truncated: truncated)
            return
        }
        var start = 0
        while start <= line.count {
            let rest = line.count - start
            let hit = rest > 0 ? memchr(base + start, 0x0D, rest) : nil
            let end = hit.map { base.distance(to: $0.assumingMemoryBound(to: UInt8.self)) } ?? line.count
            if end > start { processLine(UnsafeBufferPointer(start: base + start, count: end - start), truncated: truncated) }
            start = end + 1
        }
    }

    private mutating func remember(_ line: UnsafeBufferPointer<UInt8>) {
        let keep = min(line.count, 512)
        ring[ringNext].removeAll(keepingCapacity: true)
        ring[ringNext].append(contentsOf: UnsafeBufferPointer(rebasing: line[0..<keep]))
        ringNext = (ringNext + 1) % Self.lastLineCount
    }

    private enum LineKind {
        case none, start, secondary, panic, endMarker, separator, note, booting, linuxVersion, smmu, firmware, oneLine
        case smmuSuppressed, leakObject
    }

    private mutating func processLine(_ line: UnsafeBufferPointer<UInt8>, truncated: Bool) {
        lineNumber += 1
        if !smmu.isIdle, lineNumber - smmu.pendingSince > 8 { commitSmmu(smmu.flush()) }
        if line.isEmpty {
            if open != nil { appendToOpen("", damaged: false) }
            return
        }
        remember(line)
        var m = Bytes.messageStart(line)
        guard m < line.count else { return }
        // Kernel reports first: no protocol text can hide one (a soft lockup naming a
        // task "@@kharness done" stays a soft lockup).
        var kind = detect(line, m)
        if kind == .none, m < line.count, line[m] == UInt8(ascii: " ") {
            // Some reports are printed indented ("  BUG: KCSAN: …" under a KCSAN banner).
            var s = m
            while s < line.count, s - m < 8, line[s] == UInt8(ascii: " ") { s += 1 }
            let k = detect(line, s)
            if k == .start || k == .secondary {
                kind = k
                m = s
            }
        }
        if kind == .none, Bytes.hasPrefix(line, at: m, "kasan: GPF could be caused"),
           let g = Bytes.find(line, "general protection fault", from: m + 26)
        {
            // Old KASAN printed its hint without a newline before the fault's own line.
            kind = .start
            m = g
        }
        if kind == .none, let e = Bytes.embeddedMessageStart(line, after: m) {
            let k = detect(line, e)
            if k == .start || k == .panic || k == .secondary || k == .booting || k == .linuxVersion || k == .note {
                kind = k
                m = e
            }
        }
        // The protocol only where the guest's init and workload print it: at the start
        // of a line, never inside one, and never in the kernel's log (see protocolStart).
        if kind == .none, let at = Self.protocolStart(line) {
            handleProtocol(Bytes.sanitize(UnsafeBufferPointer(rebasing: line[at...]), limit: 1024))
            return
        }
        switch kind {
        case .none:
            if open != nil { appendIfSameCaller(line, m, truncated) }
        case .start, .leakObject:
            if let o = open, o.lines.count <= 3, let first = o.lines.first,
               first.hasPrefix("general protection fault")
                   && (Bytes.hasPrefix(line, at: m, "BUG: KASAN: null-ptr-deref") || Bytes.hasPrefix(line, at: m, "KASAN: "))
                   || first.hasPrefix("BUG: KASAN: ") && Bytes.hasPrefix(line, at: m, "general protection fault")
            {
                // KASAN and the fault it explains (or its inline check faulting) are one report.
                appendIfSameCaller(line, m, truncated)
                return
            }
            if kind == .leakObject, let o = open, o.lines.count <= 2, o.lines.first?.hasPrefix("BUG: memory leak") == true {
                appendIfSameCaller(line, m, truncated)
                return
            }
            startReport(line, m, truncated)
        case .secondary:
            sawKernelDeath = true
            if open != nil { appendIfSameCaller(line, m, truncated) } else { startReport(line, m, truncated) }
        case .panic:
            sawKernelDeath = true
            handlePanic(line, m, truncated)
        case .endMarker:
            let caller = Bytes.callerID(line, end: m)
            if let i = parked.firstIndex(where: { $0.caller == caller && caller != 0 }) {
                var p = parked.remove(at: i)
                _ = p.draft.append(message(line, m), damaged: false)
                p.draft.sawEndMarker = true
                store(p.draft)
            } else if open != nil, caller == 0 || openCaller == 0 || caller == openCaller {
                appendIfSameCaller(line, m, truncated)
                open?.sawEndMarker = true
                closeOpen(cutOff: false)
            }
        case .separator:
            if open != nil, openEndsWithSeparator, (open?.lines.count ?? 0) > 1 {
                open?.sawEndMarker = true
                closeOpen(cutOff: false)
            }
        case .note:
            noteLine = lineNumber
            noteText = Bytes.sanitize(UnsafeBufferPointer(rebasing: line[m...]), limit: 256)
            if open != nil { appendIfSameCaller(line, m, truncated) }
        case .booting, .linuxVersion:
            handleBanner(line, m, isBooting: kind == .booting)
        case .oneLine:
            if open == nil {
                startReport(line, m, truncated)
            } else {
                // A one-line report printed into another report: both stand.
                var draft = ReportDraft()
                draft.startLine = lineNumber
                draft.lines = [message(line, m)]
                draft.damaged = truncated
                store(draft)
            }
        case .firmware:
            if open != nil { closeOpen(cutOff: true) }
            if !sawFirmware {
                sawFirmware = true
                storeFixed(.reboot, "unexpected kernel reboot", text: message(line, m), line: lineNumber)
            }
        case .smmu:
            handleSmmu(line, m)
        case .smmuSuppressed:
            let text = Bytes.sanitize(UnsafeBufferPointer(rebasing: line[m...]), limit: 256)
            if let colon = text.range(of: ": "),
               let count = Int.saturatingDecimal(prefixOf: text[colon.upperBound...])
            {
                result.smmuEventCount = result.smmuEventCount.saturatingAdd(count)
                checkSmmuStorm()
            }
        }
    }

    /// Cheap classification on the bytes at the message start: the lines that are not
    /// reports (banners, notes, end markers, SMMU output) here, report starts from the
    /// kinds' table (``ReportStarts``).
    private func detect(_ line: UnsafeBufferPointer<UInt8>, _ m: Int) -> LineKind {
        guard m < line.count else { return .none }
        switch line[m] {
        case UInt8(ascii: "B"):
            if Bytes.hasPrefix(line, at: m, "Booting Linux on physical CPU") { return .booting }
            if Bytes.hasPrefix(line, at: m, "Bad or missing usercopy") { return .note }
        case UInt8(ascii: "K"):
            if Bytes.hasPrefix(line, at: m, "Kernel panic - not syncing") { return .panic }
        case UInt8(ascii: "L"):
            if Bytes.hasPrefix(line, at: m, "Linux version ") { return .linuxVersion }
        case UInt8(ascii: "S"):
            // PC firmware starting again: the machine was reset under the kernel.
            if Bytes.hasPrefix(line, at: m, "SeaBIOS (version ") { return .firmware }
        case UInt8(ascii: "r"):
            if Bytes.hasPrefix(line, at: m, "refcount_t: ") { return .note }
        case UInt8(ascii: "O"):
            if Bytes.hasPrefix(line, at: m, "ODEBUG: ") { return .note }
        case UInt8(ascii: "l"):
            if Bytes.hasPrefix(line, at: m, "list_del corruption") || Bytes.hasPrefix(line, at: m, "list_add corruption")
                || Bytes.hasPrefix(line, at: m, "list_add double add")
            {
                return .note
            }
        case UInt8(ascii: "a"):
            if Bytes.hasPrefix(line, at: m, "arm-smmu-v3 ") { return .smmu }
            if Bytes.hasPrefix(line, at: m, "arm_smmu_"), Bytes.find(line, "callbacks suppressed", from: m) != nil {
                return .smmuSuppressed
            }
        case UInt8(ascii: "u"):
            if Bytes.hasPrefix(line, at: m, "unreferenced object 0x") { return .leakObject }
            if Bytes.hasPrefix(line, at: m, "usercopy: ") { return .note }
        case UInt8(ascii: "-"):
            if Bytes.hasPrefix(line, at: m, "---[ end ") { return .endMarker }
        case UInt8(ascii: "="):
            if Bytes.hasPrefix(line, at: m, "====================") { return .separator }
        default:
            break
        }
        switch ReportStarts.match(line, at: m) {
        case .start: return .start
        case .continuation: return .secondary
        case .oneLine: return .oneLine
        case nil: return .none
        }
    }

    // MARK: - Reports

    private func message(_ line: UnsafeBufferPointer<UInt8>, _ m: Int) -> String {
        Bytes.sanitize(UnsafeBufferPointer(rebasing: line[m...]), limit: 1024)
    }

    private mutating func startReport(_ line: UnsafeBufferPointer<UInt8>, _ m: Int, _ truncated: Bool) {
        let caller = Bytes.callerID(line, end: m)
        if let i = parked.firstIndex(where: { $0.caller == caller && caller != 0 }) {
            // The caller's earlier report ends where its next one starts.
            store(parked.remove(at: i).draft)
        }
        if let o = open {
            if openCaller != 0, caller != 0, caller != openCaller {
                open = nil
                if parked.count == Self.maxParkedReports { store(parked.removeFirst().draft) }
                parked.append((openCaller, o))
            } else {
                closeOpen(cutOff: false)
            }
        }
        let first = message(line, m)
        var draft = ReportDraft()
        draft.startLine = lineNumber
        draft.lines = [first]
        draft.byteCount = first.utf8.count
        draft.damaged = truncated
        if lineNumber - noteLine <= 4, first.hasPrefix("WARNING") || first.hasPrefix("kernel BUG") { draft.note = noteText }
        open = draft
        openCaller = Bytes.callerID(line, end: m)
        openEndsWithSeparator = first.hasPrefix("BUG: KASAN") || first.hasPrefix("BUG: KFENCE")
            || first.hasPrefix("BUG: KMSAN") || first.hasPrefix("BUG: KCSAN") || first.hasPrefix("UBSAN")
    }

    private mutating func appendIfSameCaller(_ line: UnsafeBufferPointer<UInt8>, _ m: Int, _ truncated: Bool) {
        if openCaller != 0 {
            let caller = Bytes.callerID(line, end: m)
            if caller != 0 && caller != openCaller {
                if let i = parked.firstIndex(where: { $0.caller == caller }),
                   parked[i].draft.append(message(line, m), damaged: truncated && m > 0)
                {
                    store(parked.remove(at: i).draft)
                }
                return
            }
        }
        // A cut line damages the report only when it is the kernel's (printk prefixed):
        // user space's long lines on the same console are not part of it.
        appendToOpen(message(line, m), damaged: truncated && m > 0)
    }

    private mutating func appendToOpen(_ text: String, damaged: Bool) {
        guard var draft = open else { return }
        open = nil
        let full = draft.append(text, damaged: damaged)
        open = draft
        if full { closeOpen(cutOff: false) }
    }

    /// Panics caused by an earlier report (panic_on_warn, "Fatal exception") belong to it.
    private mutating func handlePanic(_ line: UnsafeBufferPointer<UInt8>, _ m: Int, _ truncated: Bool) {
        if open != nil {
            appendIfSameCaller(line, m, truncated)
            return
        }
        let text = message(line, m)
        let consequences = [
            "Fatal exception", "panic_on_warn", "panic_on_oops", "hung_task", "softlockup", "hardlockup",
            "Hard LOCKUP", "RCU Stall", "rcu_stall", "kfence", "KASAN", "Aiee, killing interrupt handler",
            "Oops", "panic_on_taint",
        ]
        if reportsSeen > 0, consequences.contains(where: { text.contains($0) }) { return }
        startReport(line, m, truncated)
    }

    private mutating func closeParked(cutOff: Bool) {
        while !parked.isEmpty {
            var draft = parked.removeFirst().draft
            if cutOff && !draft.sawEndMarker && draft.lines.count < 4 { draft.cutShort = true }
            store(draft)
        }
    }

    private mutating func closeOpen(cutOff: Bool) {
        guard var draft = open else { return }
        open = nil
        if cutOff && !draft.sawEndMarker && draft.lines.count < 4 { draft.cutShort = true }
        store(draft)
    }

    private mutating func store(_ draft: ReportDraft) {
        if draft.fixed?.category == .workload {
            // At most one per scenario (a FAIL is final), so bounded by maxScenarios.
            if let report = ReportAnalyzer.analyze(draft) { result.reports.append(report) }
            return
        }
        if storedKernelReports < Self.maxStoredReports {
            // A "WARNING:" line of pr_warn() or user space is no report and takes no place.
            guard let report = ReportAnalyzer.analyze(draft) else { return }
            reportsSeen += 1
            storedKernelReports += 1
            result.reports.append(report)
            return
        }
        guard var report = analyzeRepeated(draft) else { return }
        reportsSeen += 1
        result.reportsDropped = result.reportsDropped.saturatingAdd(1)
        let judgement = suppressions.judge(report)
        if unstored[judgement] == nil {
            report.text = report.text.split(separator: "\n", maxSplits: 12, omittingEmptySubsequences: false)
                .prefix(12).joined(separator: "\n")
            unstored[judgement] = UnstoredGroup(first: report)
        }
        unstored[judgement]!.counts[report.category.rawValue, default: 0] += 1
    }

    /// What a report draft's analysis depends on: a flood repeats one report (the same
    /// RCU stall or WARNING, printk prefixes already gone), and naming it again for each
    /// of a million repeats would cost more than reading them.
    private struct DraftKey: Hashable {
        var lines: [String]
        var damaged: Bool
        var cutShort: Bool
        var sawEndMarker: Bool
        var note: String?
        var fixedTitle: String?
    }

    private var recentlyAnalyzed: [DraftKey: KernelReport?] = [:]

    /// `ReportAnalyzer.analyze`, remembered for the last distinct reports past the cap
    /// (nil, "not a report", is remembered too).
    private mutating func analyzeRepeated(_ draft: ReportDraft) -> KernelReport? {
        let key = DraftKey(lines: draft.lines, damaged: draft.damaged, cutShort: draft.cutShort,
                           sawEndMarker: draft.sawEndMarker, note: draft.note,
                           fixedTitle: draft.fixed.map { "\($0.category.rawValue) \($0.title)" })
        if let known = recentlyAnalyzed[key] {
            guard var report = known else { return nil }
            report.line = draft.startLine
            return report
        }
        let report = ReportAnalyzer.analyze(draft)
        if recentlyAnalyzed.count >= 64 { recentlyAnalyzed.removeAll(keepingCapacity: true) }
        recentlyAnalyzed[key] = .some(report)
        return report
    }

    private mutating func storeFixed(_ category: KernelReport.Category, _ title: String, text: String, line: Int) {
        var draft = ReportDraft()
        draft.startLine = line
        draft.lines = [text]
        draft.fixed = (category, title)
        store(draft)
    }

    // MARK: - Banners, protocol, SMMU

    private mutating func handleBanner(_ line: UnsafeBufferPointer<UInt8>, _ m: Int, isBooting: Bool) {
        if open != nil { closeOpen(cutOff: true) }
        closeParked(cutOff: true)
        let text = message(line, m)
        if isBooting {
            lastBootingLine = lineNumber
            result.bootBanners += 1
        } else {
            if lineNumber - lastBootingLine > 10 { result.bootBanners += 1 }
            let release = text.dropFirst("Linux version ".count).prefix(while: { $0 != " " })
            if !release.isEmpty, result.kernelRelease == nil || result.bootBanners > 1 {
                if !sawProtocolRelease { result.kernelRelease = String(release.prefix(128)) }
            }
        }
        if result.bootBanners == 2, isBooting || lineNumber - lastBootingLine > 10 {
            storeFixed(.reboot, "unexpected kernel reboot", text: text, line: lineNumber)
        }
    }

    private var sawProtocolRelease = false
    private var sawFirmware = false

    /// Where a protocol message's verb starts, when the line is one: just after
    /// `@@kharness ` at the very start of the line (control bytes and colour escapes
    /// skipped). Init and the workloads write to the console device, which adds no
    /// prefix; the harness boots with `printk.time=1`, so every line of the kernel's log
    /// has a timestamp. A line with one is the kernel's, whatever follows it: messages
    /// that start with a task's name (`drop_caches`' "comm (pid): …") or `/dev/kmsg`
    /// writes cannot pass for the protocol.
    static func protocolStart(_ line: UnsafeBufferPointer<UInt8>) -> Int? {
        let start = Bytes.skipNoise(line, from: 0)
        return Bytes.hasPrefix(line, at: start, "@@kharness ") ? start + 11 : nil
    }

    /// The protocol message of a console line (the text after `@@kharness `), or nil
    /// when the line is not a protocol line by the classifier's rule
    /// (``protocolStart(_:)``). For whoever else reads the console: the harness's
    /// watcher, trace collector and lifecycle oracle believe what the classifier believes.
    public static func protocolMessage(_ line: String) -> Substring? {
        var copy = line
        let at: Int? = copy.withUTF8 { buffer in
            protocolStart(buffer)
        }
        guard let at else { return nil }
        let utf8 = line.utf8
        return Substring(utf8[utf8.index(utf8.startIndex, offsetBy: at)...])
    }

    private mutating func handleProtocol(_ text: String) {
        sawProtocol = true
        let parts = text.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: true)
        guard let verb = parts.first else { return }
        func scenario(_ name: Substring) -> Int? {
            let key = String(name.prefix(128))
            if let i = scenarioIndex[key] { return i }
            guard result.scenarios.count < Self.maxScenarios else {
                result.scenariosDropped = result.scenariosDropped.saturatingAdd(1)
                return nil
            }
            result.scenarios.append(ScenarioResult(name: key, status: .miss, reason: "began but gave no result"))
            scenarioIndex[key] = result.scenarios.count - 1
            return result.scenarios.count - 1
        }
        switch verb {
        case "release" where parts.count >= 2:
            // The first one: a later line cannot change what suppression rules match.
            guard !sawProtocolRelease else { return }
            result.kernelRelease = String(parts[1].prefix(128))
            sawProtocolRelease = true
        case "begin" where parts.count >= 2:
            _ = scenario(parts[1])
        case "evidence" where parts.count >= 2:
            if let i = scenario(parts[1]), result.scenarios[i].evidence.count < Self.maxEvidence {
                result.scenarios[i].evidence.append(parts.dropFirst(2).joined(separator: " "))
            }
        case "result" where parts.count >= 3:
            guard let i = scenario(parts[1]) else { return }
            let status: RunStatus
            switch parts[2].uppercased() {
            case "PASS": status = .pass
            case "FAIL": status = .fail
            case "SKIP": status = .skip
            default:
                status = .fail
            }
            var reason = parts.count > 3 ? String(parts[3]) : ""
            if !["PASS", "FAIL", "SKIP"].contains(parts[2].uppercased()) {
                reason = "unknown result \"\(parts[2])\"" + (reason.isEmpty ? "" : ": \(reason)")
            }
            // FAIL is final: a later PASS or SKIP of the same scenario does not undo it.
            guard result.scenarios[i].status != .fail else { return }
            result.scenarios[i].status = status
            result.scenarios[i].reason = reason
            if status == .fail {
                let name = result.scenarios[i].name
                let body = ([reason] + result.scenarios[i].evidence).joined(separator: "\n")
                storeFixed(.workload, "workload failure in \(name)", text: body, line: lineNumber)
            }
        case "end" where parts.count >= 2:
            if let i = scenario(parts[1]) { result.scenarios[i].ended = true }
        case "exit" where parts.count >= 2:
            // init prints it once, when the workload script returns.
            if result.workloadExitStatus == nil {
                result.workloadExitStatus = Int.saturatingDecimal(prefixOf: parts[1].drop { $0 == "-" })
                    .map { parts[1].hasPrefix("-") ? -$0 : $0 } ?? -1
            }
        case "probe-failed" where parts.count >= 2:
            if result.probeFailure == nil { result.probeFailure = parts.dropFirst().joined(separator: " ") }
        case "done":
            result.sawDone = true
        default:
            break
        }
    }

    private mutating func handleSmmu(_ line: UnsafeBufferPointer<UInt8>, _ m: Int) {
        let text = message(line, m)
        // "arm-smmu-v3 <device>: <message>"
        let afterDriver = text.dropFirst("arm-smmu-v3 ".count)
        guard let colon = afterDriver.range(of: ": ") else { return }
        commitSmmu(smmu.handle(message: afterDriver[colon.upperBound...], line: lineNumber))
    }

    private mutating func commitSmmu(_ actions: [SmmuTracker.Action]) {
        for action in actions {
            switch action {
            case .event(let event):
                result.smmuEventCount = result.smmuEventCount.saturatingAdd(1)
                if result.smmuEvents.count < Self.maxStoredSmmuEvents { result.smmuEvents.append(event) }
                let title = "arm-smmu-v3: \(event.name) event"
                if smmuTitles.insert(title).inserted {
                    storeFixed(.smmuEvent, title, text: Smmu.describe(event), line: event.line)
                }
                checkSmmuStorm()
            case .report(let title, let text, let line):
                if smmuTitles.insert(title).inserted { storeFixed(.smmuEvent, title, text: text, line: line) }
            }
        }
    }

    private mutating func checkSmmuStorm() {
        if !smmuStormReported, result.smmuEventCount > Self.smmuStormThreshold {
            smmuStormReported = true
            storeFixed(
                .smmuEvent, "arm-smmu-v3: event storm",
                text: "more than \(Self.smmuStormThreshold) SMMU events", line: lineNumber)
        }
    }
}
