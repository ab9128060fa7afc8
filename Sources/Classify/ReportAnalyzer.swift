import Foundation
import Support

/// The lines of one report as collected from the console, before it is named.
struct ReportDraft {
    /// Messages with printk prefixes removed and sanitized; the first one started the report.
    var lines: [String] = []
    var byteCount = 0
    var startLine = 0
    /// The report's kind-specific end marker (`---[ end trace`, the closing `=====`) was seen.
    var sawEndMarker = false
    /// A line of the report was longer than the console line cap, or a different report cut in.
    var damaged = false
    /// The log ended a few lines into the report: damage for a kind that prints a stack,
    /// the whole report for one-line kinds.
    var cutShort = false
    /// A `refcount_t:` or `ODEBUG:` line printed just before a WARNING.
    var note: String?
    /// Set for reports made directly (reboot, SMMU): no title derivation needed.
    var fixed: (category: KernelReport.Category, title: String)?

    /// Adds a line; true when the draft has reached the report caps and must be closed.
    mutating func append(_ text: String, damaged: Bool) -> Bool {
        lines.append(text)
        byteCount += text.utf8.count + 1
        if damaged { self.damaged = true }
        return lines.count >= ConsoleClassifier.maxReportLines || byteCount >= ConsoleClassifier.maxReportBytes
    }
}

/// Names a collected report: category, syzbot-style title, guilty frame, signature.
///
/// The one engine over ``ReportKind/all``: the first kind that recognises the report's
/// first line and gives a head names it. The title is the head, then " in <culprit>" when
/// the kind blames a function, then the head's suffix. A kind that blames a function but
/// finds none in the report gets syzbot's "in corrupted", and the report is corrupted.
enum ReportAnalyzer {
    /// The report named, or nil when the text turned out not to be a kernel report.
    static func analyze(_ draft: ReportDraft) -> KernelReport? {
        let lines = draft.lines
        let text = lines.joined(separator: "\n")
        if let fixed = draft.fixed {
            return KernelReport(
                category: fixed.category, title: fixed.title,
                signature: signature(category: fixed.category, title: fixed.title, frames: []),
                guiltyFrame: nil, text: text, corrupted: draft.damaged || draft.cutShort, line: draft.startLine)
        }
        let report = ReportText(first: lines.first ?? "", lines: lines, note: draft.note)
        let stack = Stack(lines)
        var named: Naming?
        for kind in ReportKind.all where kind.recognises(report.first[...]) {
            guard let head = kind.head(report) else { continue }
            if head.notAReport { return nil }
            let needsStack = head.needsStack ?? (kind.needsStack && (head.culprit ?? kind.culprit) != .none)
            named = name(kind, head, report, stack, damaged: draft.damaged || (draft.cutShort && needsStack))
            break
        }
        let naming = named
            ?? Naming(category: .other, title: Title.cleaned(report.first), guilty: nil, corrupted: draft.damaged || draft.cutShort)
        var sigFrames: [String] = []
        if let guilty = naming.guilty {
            sigFrames.append(Frames.normalized(guilty))
            let frames = stack.mainFrames.map(\.name)
            if let at = frames.firstIndex(of: guilty) {
                for f in frames[(at + 1)...] where !Frames.isGeneric(f) {
                    sigFrames.append(Frames.normalized(f))
                    if sigFrames.count == 3 { break }
                }
            }
        }
        return KernelReport(
            category: naming.category, title: naming.title,
            signature: signature(category: naming.category, title: naming.title, frames: sigFrames),
            guiltyFrame: naming.guilty.map(Frames.normalized), text: text, corrupted: naming.corrupted,
            line: draft.startLine)
    }

    struct Naming {
        var category: KernelReport.Category
        var title: String
        var guilty: String?
        var corrupted: Bool
    }

    /// Applies one kind's rules to a report.
    static func name(_ kind: ReportKind, _ head: ReportKind.Head, _ report: ReportText, _ stack: Stack, damaged: Bool) -> Naming {
        var rule = head.culprit ?? kind.culprit
        var corrupted = damaged || head.corrupted || stack.lostLines
        if rule != .none, stack.mainFrames.contains(where: { Stack.faultInjection.contains(Frames.normalized($0.name)) }) {
            // Fault injection dumps its own stack; interleaved with this report, its frames
            // would name the wrong function. syzbot calls such a report corrupted, and so do we;
            // only a faulting pc still says where this report happened.
            corrupted = true
            if rule == .pcThenStack || rule == .warning, let pc = stack.pc,
               !Frames.isGeneric(pc), !kind.skip.matches(pc)
            {
                return finish(kind, head, guilty: pc, rule: rule, corrupted: corrupted)
            }
            rule = .none
        }
        var guilty = head.function
        if guilty == nil, rule != .none {
            guilty = culprit(rule, kind: kind, report: report, stack: stack)
        }
        if let g = guilty, let renamed = kind.renames[Frames.normalized(g)] { guilty = renamed }
        if head.needsStack ?? kind.needsStack, rule != .none, !stack.hasFrames { corrupted = true }
        return finish(kind, head, guilty: guilty, rule: rule, corrupted: corrupted)
    }

    /// The title from a head and a culprit: "in corrupted" when the kind blames a function
    /// and none was found.
    private static func finish(_ kind: ReportKind, _ head: ReportKind.Head, guilty: String?, rule: ReportKind.Culprit, corrupted: Bool) -> Naming {
        var corrupted = corrupted
        var title = head.text
        if guilty != nil || rule != .none || (corrupted && (head.culprit ?? kind.culprit) != .none) {
            if let g = guilty {
                title += " in " + (head.verbatim ? g : Frames.normalized(g))
            } else {
                title += " in corrupted"
                corrupted = true
            }
        }
        title += head.suffix
        return Naming(category: head.category ?? kind.category, title: Title.has(title[...], "  ") ? title.replacingOccurrences(of: "  ", with: " ") : title, guilty: guilty, corrupted: corrupted)
    }

    /// The function a rule blames, or nil when the report does not show one.
    static func culprit(_ rule: ReportKind.Culprit, kind: ReportKind, report: ReportText, stack: Stack) -> String? {
        func skipped(_ f: String) -> Bool {
            let n = Frames.normalized(f)
            if kind.keep.contains(n) { return false }
            return Frames.isGeneric(f) || kind.skip.matches(f)
        }
        func firstOfStack() -> String? {
            for section in stack.mainSections {
                if let f = section.frames.first(where: { !skipped($0.name) }) { return f.name }
            }
            return nil
        }
        switch rule {
        case .none:
            return nil
        case .stack:
            return firstOfStack()
        case .pcThenStack:
            if let pc = stack.pc, !skipped(pc) { return pc }
            return firstOfStack()
        case .headerThenStack:
            let header = report.first.range(of: " in ").flatMap { Frames.function(atStartOf: report.first[$0.upperBound...]) }
            if let h = header, !skipped(h) { return h }
            return firstOfStack()
        case .warning:
            if let pc = stack.pc, !skipped(pc) { return pc }
            return firstOfStack()
        case .lockSite:
            // The lock sites lockdep names first ("(&lock){+.+.}, at: foo+0x…", or "at:" at a
            // line's end and the function on the next): the lock being taken or released,
            // then the one held.
            let lines = Array(report.lines.dropFirst().prefix(80))
            var sites = 0
            for (i, line) in lines.enumerated() {
                var site: String?
                if let r = line.range(of: "at: ") {
                    let rest = line[r.upperBound...]
                    site = Frames.function(atStartOf: rest) ?? Frames.function(inTraceLine: rest)
                } else if line.hasSuffix(" at:"), i + 1 < lines.count {
                    site = Frames.function(inTraceLine: lines[i + 1][...]) ?? Frames.function(atStartOf: lines[i + 1][...])
                }
                guard let site else { continue }
                if !skipped(site) { return site }
                sites += 1
                if sites == 2 { break }
            }
            // Then the task's stack, then the dependency chain lockdep printed.
            return firstOfStack() ?? stack.sections.lazy.compactMap { $0.frames.first(where: { !skipped($0.name) })?.name }.first
        case .stall:
            return stallCulprit(stack: stack, skipped: skipped)
        case .irqSafeSite:
            for section in stack.sections where section.kind != .context {
                if let f = section.frames.first(where: { !skipped($0.name) }) { return f.name }
            }
            return nil
        case .allocation:
            let frames = stack.sections.first(where: { $0.kind != .context })?.frames ?? []
            return frames.first { f in
                let n = Frames.normalized(f.name)
                return !skipped(f.name) && !Frames.allocation.matches(f.name) && !n.contains("alloc")
                    && !Stall.leakWrappers.contains(n)
            }?.name
        }
    }

    /// What a stalled CPU or task was doing: in the code the timer interrupt found running,
    /// the innermost entry point (a syscall, or the handler a dispatcher called: a file
    /// operation, a socket operation, a packet receive, a timer or work callback), else the
    /// first frame that is not skipped. Entry points are stable from stall to stall of one bug,
    /// where the exact interrupted instruction is not.
    static func stallCulprit(stack: Stack, skipped: (String) -> Bool) -> String? {
        for section in stack.sections where section.kind != .context {
            var frames = section.framesWithPC
            let pcShift = frames.count - section.frames.count
            // A trace printed from inside the report's own interrupt (an NMI backtrace, the
            // watchdog's panic): the interrupted code is below the interrupt entry.
            if let after = section.afterInterrupt, after < section.frames.count,
               section.frames[..<after].contains(where: { Frames.reporting.matches($0.name) })
            {
                // The pc printed after the interrupt entry is the interrupted code's.
                let split = section.pc.map { $0.index >= after ? after : after + pcShift } ?? after
                frames = Array(frames[min(split, frames.count)...])
            } else if frames.allSatisfy({ skipped($0.name) }) {
                continue
            }
            let names = frames.map { Frames.normalized($0.name) }
            for (i, n) in names.enumerated() {
                if n.hasPrefix("sys_") && !Stall.notSyscalls.contains(n) || frames[i].name.hasPrefix("compat_SyS_") { return n }
                if Stall.anchors.contains(n) { return Stall.anchorNames[n] ?? n }
                if i + 1 < names.count, Stall.dispatchers.contains(names[i + 1]), !skipped(frames[i].name) { return frames[i].name }
            }
            if let f = frames.first(where: { !skipped($0.name) }) { return f.name }
        }
        return nil
    }

    static func signature(category: KernelReport.Category, title: String, frames: [String]) -> String {
        let material = ([category.rawValue, NumberMask.reportTitle(title)] + frames).joined(separator: "\n")
        return String(Digest.sha256(Data(material.utf8)).prefix(16))
    }
}
