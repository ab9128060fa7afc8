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
    /// A `refcount_t:` or `ODEBUG:` line printed just before a WARNING.
    var note: String?
    /// Set for reports made directly (reboot, SMMU): no title derivation needed.
    var fixed: (category: KernelReport.Category, title: String)?
}

/// Names a collected report: category, syzbot-style title, guilty frame, signature.
///
/// Titles follow the forms syzbot uses for Linux so a report here can be looked up
/// there: "KASAN: <bug> <Read|Write> in <fn>", "WARNING in <fn>", "kernel BUG in <fn>",
/// "INFO: task hung in <fn>", "possible deadlock in <fn>", … `<fn>` is the guilty frame.
enum ReportAnalyzer {
    static func analyze(_ draft: ReportDraft) -> KernelReport {
        let lines = draft.lines
        let text = lines.joined(separator: "\n")
        if let fixed = draft.fixed {
            return KernelReport(
                category: fixed.category.rawValue, title: fixed.title,
                signature: signature(category: fixed.category, title: fixed.title, frames: []),
                guiltyFrame: nil, text: text, corrupted: draft.damaged, line: draft.startLine)
        }
        let first = lines.first ?? ""
        let trace = TraceInfo(lines)
        var naming = name(first: first, lines: lines, trace: trace, note: draft.note)
        var corrupted = draft.damaged
        if naming.expectsTrace && trace.frames.isEmpty { corrupted = true }
        if naming.incomplete { corrupted = true }
        naming.title = naming.title.replacingOccurrences(of: "  ", with: " ")
        var sigFrames: [String] = []
        if let guilty = naming.guilty {
            sigFrames.append(Frames.normalized(guilty))
            if let at = trace.frames.firstIndex(of: guilty) {
                for f in trace.frames[(at + 1)...] where !Frames.isGeneric(f) {
                    sigFrames.append(Frames.normalized(f))
                    if sigFrames.count == 3 { break }
                }
            }
        }
        return KernelReport(
            category: naming.category.rawValue, title: naming.title,
            signature: signature(category: naming.category, title: naming.title, frames: sigFrames),
            guiltyFrame: naming.guilty.map(Frames.normalized), text: text, corrupted: corrupted,
            line: draft.startLine)
    }

    static func signature(category: KernelReport.Category, title: String, frames: [String]) -> String {
        let material = ([category.rawValue, stripNumbers(title)] + frames).joined(separator: "\n")
        return String(Digest.sha256(Data(material.utf8)).prefix(16))
    }

    /// Replaces digit runs (and 0x… hex) with `N`, for text that may carry line numbers or counts.
    static func stripNumbers(_ s: String) -> String {
        var out = ""
        var inNumber = false
        let chars = Array(s)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "0", i + 1 < chars.count, chars[i + 1] == "x", !inNumber {
                i += 2
                while i < chars.count, chars[i].isHexDigit { i += 1 }
                out.append("N")
                inNumber = false
                continue
            }
            if c.isASCII && c.isNumber {
                if !inNumber { out.append("N") }
                inNumber = true
            } else {
                inNumber = false
                out.append(c)
            }
            i += 1
        }
        return out
    }

    struct Naming {
        var category: KernelReport.Category
        var title: String
        var guilty: String?
        var expectsTrace = true
        var incomplete = false
    }

    /// Appends " in <fn>" when a function is known.
    private static func titled(_ head: String, _ fn: String?) -> String {
        guard let fn else { return head }
        return "\(head) in \(Frames.normalized(fn))"
    }

    private static func name(first: String, lines: [String], trace: TraceInfo, note: String?) -> Naming {
        let stackGuilty = trace.firstNonGeneric
        let pcOrStack = trace.pcFunction ?? stackGuilty

        if let rest = first.after("BUG: KASAN: ") {
            let (kind, headerFn) = splitKind(rest)
            var bug = kind
            var access: String?
            if bug == "double-free or invalid-free" { bug = "invalid-free" }
            if !["invalid-free", "double-free"].contains(bug) {
                for l in lines.prefix(12) {
                    let t = l.trimmingCharacters(in: .whitespaces)
                    if t.hasPrefix("Read of size") || t.hasPrefix("Read at addr") { access = "Read"; break }
                    if t.hasPrefix("Write of size") || t.hasPrefix("Write at addr") { access = "Write"; break }
                }
            }
            let guilty = stackGuilty ?? headerFn
            let head = access.map { "KASAN: \(bug) \($0)" } ?? "KASAN: \(bug)"
            var n = Naming(category: .kasan, title: titled(head, guilty), guilty: guilty)
            if access == nil && !["invalid-free", "double-free"].contains(bug) && !bug.hasPrefix("invalid-access") {
                n.incomplete = true
            }
            return n
        }
        if let rest = first.after("BUG: KFENCE: ") {
            let (kind, headerFn) = splitKind(rest)
            let guilty = stackGuilty ?? headerFn
            return Naming(category: .kfence, title: titled("KFENCE: \(kind)", guilty), guilty: guilty)
        }
        if let rest = first.after("BUG: KMSAN: ") {
            let (kind, headerFn) = splitKind(rest)
            let guilty = stackGuilty ?? headerFn
            return Naming(category: .kmsan, title: titled("KMSAN: \(kind)", guilty), guilty: guilty)
        }
        if let rest = first.after("BUG: KCSAN: ") {
            // "data-race in foo / bar": the two racing functions, as printed.
            let stripped = rest.split(separator: " ").map { word -> String in
                if let plus = word.range(of: "+0x") { return String(word[..<plus.lowerBound]) }
                return String(word)
            }.joined(separator: " ")
            let guilty = stripped.range(of: " in ").flatMap { stripped[$0.upperBound...].split(separator: " ").first.map(String.init) }
            return Naming(category: .kcsan, title: "KCSAN: \(stripped)", guilty: guilty)
        }
        if let rest = first.after("UBSAN: ") {
            let kind = rest.components(separatedBy: " in ").first ?? rest
            return Naming(category: .ubsan, title: titled("UBSAN: \(kind)", stackGuilty), guilty: stackGuilty)
        }
        if first.hasPrefix("BUG: memory leak") || first.hasPrefix("unreferenced object") {
            let guilty = trace.frames.first { !Frames.isGeneric($0) && !Frames.isAllocation($0) }
            return Naming(category: .leak, title: titled("memory leak", guilty), guilty: guilty)
        }
        if first.contains("unable to handle kernel") || first.hasPrefix("BUG: kernel NULL pointer dereference")
            || first.hasPrefix("BUG: unable to handle page fault")
        {
            let what: String
            if first.contains("NULL pointer dereference") {
                what = "NULL pointer dereference"
            } else if first.contains("paging request") || first.contains("page fault") {
                what = "paging request"
            } else {
                what = first.after("unable to handle kernel ")?.components(separatedBy: " at ").first ?? "paging request"
            }
            return Naming(category: .oops, title: titled("BUG: unable to handle kernel \(what)", pcOrStack), guilty: pcOrStack)
        }
        if let rest = first.after("Unable to handle kernel ") {
            let what = rest.components(separatedBy: " at ").first ?? rest
            return Naming(category: .oops, title: titled("Unable to handle kernel \(what)", pcOrStack), guilty: pcOrStack)
        }
        if first.hasPrefix("general protection fault") {
            return Naming(category: .oops, title: titled("general protection fault", pcOrStack), guilty: pcOrStack)
        }
        if first.hasPrefix("divide error: ") {
            return Naming(category: .oops, title: titled("divide error", pcOrStack), guilty: pcOrStack)
        }
        if first.hasPrefix("invalid opcode: ") {
            return Naming(category: .oops, title: titled("invalid opcode", pcOrStack), guilty: pcOrStack)
        }
        if first.hasPrefix("kernel BUG at ") || first.hasPrefix("Kernel BUG at ") {
            if let fn = pcOrStack {
                return Naming(category: .bug, title: titled("kernel BUG", fn), guilty: fn)
            }
            let file = first.dropFirst("kernel BUG at ".count).components(separatedBy: ":").first ?? ""
            return Naming(category: .bug, title: "kernel BUG at \(file)", guilty: nil)
        }
        if let rest = first.after("Internal error: ") {
            let what = (rest.components(separatedBy: " [#").first ?? rest)
            if what.hasPrefix("Oops - BUG") {
                return Naming(category: .bug, title: titled("kernel BUG", pcOrStack), guilty: pcOrStack)
            }
            let head = what.hasPrefix("Oops:") ? "Internal error: Oops" : "Internal error: \(what.components(separatedBy: ":").first ?? what)"
            return Naming(category: .oops, title: titled(head, pcOrStack), guilty: pcOrStack)
        }
        if first.hasPrefix("Oops: ") || first.hasPrefix("Oops ") {
            return Naming(category: .oops, title: titled("Oops", pcOrStack), guilty: pcOrStack)
        }
        if first.hasPrefix("INFO: task "), first.contains("blocked for more than") {
            return Naming(category: .hang, title: titled("INFO: task hung", stackGuilty), guilty: stackGuilty)
        }
        if first.contains("detected stall") || first.contains("detected expedited stall") {
            let guilty = trace.stallGuilty
            return Naming(category: .hang, title: titled("INFO: rcu detected stall", guilty), guilty: guilty)
        }
        if first.contains("BUG: soft lockup") {
            let guilty = trace.stallGuilty
            return Naming(category: .hang, title: titled("BUG: soft lockup", guilty), guilty: guilty)
        }
        if first.contains("hard LOCKUP") {
            let guilty = trace.stallGuilty
            return Naming(category: .hang, title: titled("BUG: hard lockup", guilty), guilty: guilty)
        }
        if let rest = first.after("WARNING: ") ?? first.after("INFO: ") {
            if let lockdep = lockdepNaming(rest, lines: lines, trace: trace) { return lockdep }
        }
        if first.hasPrefix("WARNING:") {
            let header = Frames.function(inHeader: first)
            let noteGuilty = stackGuilty ?? header
            if let note, note.hasPrefix("refcount_t") || header.map({ $0.hasPrefix("refcount_") }) == true {
                let guilty = trace.frames.first { !Frames.isGeneric($0) } ?? header
                return Naming(category: .refcount, title: titled("WARNING: refcount bug", guilty), guilty: guilty)
            }
            if let note, note.hasPrefix("ODEBUG") {
                return Naming(category: .warning, title: titled("WARNING: ODEBUG bug", noteGuilty), guilty: noteGuilty)
            }
            if first.hasPrefix("WARNING: CPU: ") || header != nil {
                var guilty = header
                if let h = header, Frames.isGeneric(h) { guilty = stackGuilty ?? h }
                if guilty == nil { guilty = stackGuilty }
                return Naming(category: .warning, title: titled("WARNING", guilty), guilty: guilty)
            }
            let what = cleanedHead(String(first.dropFirst("WARNING: ".count)))
            return Naming(category: .warning, title: titled("WARNING: \(what)", stackGuilty), guilty: stackGuilty)
        }
        if let rest = first.after("BUG: ") {
            let what = cleanedHead(rest)
            let category: KernelReport.Category
            var guilty = stackGuilty
            var expectsTrace = true
            if what.hasPrefix("sleeping function called from invalid context")
                || what.hasPrefix("scheduling while atomic")
                || what.hasPrefix("using smp_processor_id() in preemptible")
                || what.hasPrefix("using __this_cpu_")
                || what.hasPrefix("workqueue leaked lock")
            {
                category = .atomicSleep
            } else if what.hasPrefix("workqueue lockup") || what.hasPrefix("spinlock lockup") {
                category = .hang
            } else if what.hasPrefix("stack guard page") {
                category = .oops
                guilty = pcOrStack
            } else if what.contains("lock") || what.hasPrefix("MAX_LOCK") || what.contains("lockdep") {
                category = .lockdep
            } else {
                category = .bug
            }
            if what.hasPrefix("Bad rss-counter") || what.hasPrefix("MAX_LOCK") || what.hasPrefix("workqueue lockup") {
                expectsTrace = false
                guilty = nil
            }
            var n = Naming(category: category, title: titled("BUG: \(what)", guilty), guilty: guilty)
            n.expectsTrace = expectsTrace
            return n
        }
        if let rest = first.after("Kernel panic - not syncing: ") {
            var n = Naming(category: .panic, title: "kernel panic: \(cleanedPanic(rest))", guilty: nil)
            n.expectsTrace = false
            return n
        }
        var n = Naming(category: .other, title: cleanedHead(first), guilty: stackGuilty)
        n.expectsTrace = false
        return n
    }

    private static func lockdepNaming(_ rest: String, lines: [String], trace: TraceInfo) -> Naming? {
        let deadlock = [
            "possible circular locking dependency", "possible recursive locking",
            "-safe -> ", "possible irq lock inversion",
        ]
        let atFunction = lines.lazy.compactMap { line -> String? in
            guard let r = line.range(of: ", at: ") ?? line.range(of: "}, at: ") else { return nil }
            return Frames.function(atStartOf: line[r.upperBound...])
        }.first
        if deadlock.contains(where: { rest.contains($0) }) {
            // The lock being acquired when lockdep noticed: "(&lock){+.+.}, at: foo+0x…".
            let guilty = atFunction ?? trace.firstNonGeneric
            return Naming(category: .lockdep, title: titled("possible deadlock", guilty), guilty: guilty)
        }
        if rest.hasPrefix("inconsistent lock state") {
            let guilty = atFunction ?? trace.firstNonGeneric
            return Naming(category: .lockdep, title: titled("inconsistent lock state", guilty), guilty: guilty)
        }
        if rest.hasPrefix("suspicious RCU usage") {
            let guilty = trace.firstNonGeneric
            return Naming(category: .lockdep, title: titled("WARNING: suspicious RCU usage", guilty), guilty: guilty)
        }
        for what in [
            "bad unlock balance", "held lock freed", "lock held when returning to user space",
            "nested lock was not taken", "lock held at task exit time", "still has locks held",
        ] where rest.hasPrefix(what) {
            let guilty = what == "bad unlock balance" || what.hasPrefix("lock held") ? (atFunction ?? trace.firstNonGeneric) : trace.firstNonGeneric
            return Naming(category: .lockdep, title: titled("WARNING: \(what)", guilty), guilty: guilty)
        }
        if rest.hasPrefix("trying to register non-static key") {
            let guilty = trace.firstNonGeneric
            return Naming(category: .lockdep, title: titled("INFO: trying to register non-static key", guilty), guilty: guilty)
        }
        return nil
    }

    /// "use-after-free in foo+0x1/0x2" → ("use-after-free", "foo"); also "… on address …".
    private static func splitKind(_ rest: String) -> (String, String?) {
        if let r = rest.range(of: " in ") {
            let fn = Frames.function(atStartOf: rest[r.upperBound...])
            return (String(rest[..<r.lowerBound]), fn)
        }
        if let r = rest.range(of: " on address") { return (String(rest[..<r.lowerBound]), nil) }
        return (cleanedHead(rest), nil)
    }

    /// A report head without the parts that change from run to run: addresses,
    /// "at file:line", CPU and task details.
    static func cleanedHead(_ s: String) -> String {
        var t = s
        for sep in [" at ", ", ", " - ", " on CPU", " for address", " in process", ": 0x", " [", " (", " pid:", "!"] {
            if let r = t.range(of: sep), r.lowerBound > t.startIndex { t = String(t[..<r.lowerBound]) }
        }
        if s.hasSuffix("!") && !t.hasSuffix("!") && !s.dropLast().contains("!") && t.count == s.count - 1 { t += "!" }
        return t.trimmingCharacters(in: CharacterSet(charactersIn: " .:"))
    }

    /// The panic message without exit codes and addresses.
    static func cleanedPanic(_ s: String) -> String {
        var t = s
        for sep in [" exitcode=", " - ", ": 0x", " 0x"] {
            if let r = t.range(of: sep) { t = String(t[..<r.lowerBound]) }
        }
        return t.trimmingCharacters(in: .whitespaces)
    }
}

/// The stack information in a report: frames of its first trace, the faulting pc.
struct TraceInfo {
    /// Reliable frames of the first stack trace (or of every frame-looking line when there is no trace header).
    var frames: [String] = []
    /// Index in `frames` just past the last interrupt-entry frame, for stalls.
    var afterInterrupt: Int?
    /// The function in `pc : `, `RIP: 0010:`, `IP: ` or `PC is at`.
    var pcFunction: String?

    init(_ lines: [String]) {
        var inTrace = false
        var sawTraceHeader = false
        var traceDone = false
        var loose: [String] = []
        var lastInterrupt: Int?
        for line in lines {
            let t = line.drop(while: { $0 == " " || $0 == "\t" })
            if pcFunction == nil {
                if let r = t.range(of: "pc : "), r.lowerBound == t.startIndex {
                    pcFunction = Frames.function(atStartOf: t[r.upperBound...])
                } else if t.hasPrefix("RIP: 0010:") {
                    pcFunction = Frames.function(atStartOf: t.dropFirst("RIP: 0010:".count))
                } else if t.hasPrefix("IP: ") {
                    pcFunction = Frames.function(atStartOf: t.dropFirst("IP: ".count))
                } else if t.hasPrefix("PC is at ") {
                    pcFunction = Frames.function(atStartOf: t.dropFirst("PC is at ".count))
                } else if t.hasPrefix("EIP: ") {
                    pcFunction = Frames.function(atStartOf: t.dropFirst(5).drop(while: { $0 != ":" }).dropFirst())
                }
            }
            if t.hasPrefix("Call Trace:") || t.hasPrefix("Call trace:") || t.hasPrefix("backtrace:")
                || t.hasPrefix("backtrace (crc")
            {
                if sawTraceHeader && !frames.isEmpty { traceDone = true }
                sawTraceHeader = true
                inTrace = !traceDone
                continue
            }
            if t == "<IRQ>" || t == "</IRQ>" || t == "<TASK>" || t == "</TASK>" || t == "<NMI>" || t == "</NMI>"
                || t == "<EOI>" || t.hasPrefix("<IRQ>") || t.hasPrefix("</IRQ>")
            {
                if inTrace, t.hasPrefix("</IRQ>") || t == "<EOI>" { lastInterrupt = frames.count }
                continue
            }
            let fn = Frames.function(inTraceLine: line[...])
            if let fn {
                if inTrace {
                    if Frames.isInterruptEntry(fn) { lastInterrupt = frames.count + 1 }
                    frames.append(fn)
                } else if !sawTraceHeader {
                    loose.append(fn)
                }
                continue
            }
            if inTrace && !frames.isEmpty && isSectionBreak(t) { inTrace = false; traceDone = true }
        }
        if frames.isEmpty { frames = loose }
        afterInterrupt = lastInterrupt
    }

    /// A line that ends a stack trace (as opposed to register dumps within x86 traces).
    private func isSectionBreak(_ t: Substring) -> Bool {
        if t.isEmpty { return true }
        let breaks = [
            "Allocated by", "Freed by", "The buggy address", "Memory state", "Last potentially",
            "Showing all locks", "NMI backtrace", "Sending NMI", "Kernel panic", "---[ end",
            "Modules linked in", "Code: ", "irq event stamp", "other info that might help",
            "the existing dependency chain", "Possible unsafe locking", "Task dump", "==========",
            "Second to last", "page last", "Kernel Offset", "Dumping ftrace", "Rebooting in",
            "Uninit was", "Local variable", "Bytes ", "Memory access",
        ]
        return breaks.contains(where: { t.hasPrefix($0) })
    }

    var firstNonGeneric: String? { frames.first { !Frames.isGeneric($0) } }

    /// For stalls and lockups: the code that was interrupted, i.e. the pc when it is
    /// not generic, else the first non-generic frame below the interrupt entry.
    var stallGuilty: String? {
        if let pc = pcFunction, !Frames.isGeneric(pc) { return pc }
        if let after = afterInterrupt, after < frames.count,
           let f = frames[after...].first(where: { !Frames.isGeneric($0) })
        {
            return f
        }
        return firstNonGeneric
    }
}

extension Frames {
    /// The function in a WARNING header: `WARNING: CPU: 0 PID: 1 at file.c:12 foo+0x1/0x2`.
    static func function(inHeader line: String) -> String? {
        for word in line.split(separator: " ") where word.contains("+0x") {
            if let fn = function(atStartOf: word) { return fn }
        }
        return nil
    }
}

extension String {
    /// The text after the first occurrence of `prefix` when the string starts with it.
    func after(_ prefix: String) -> String? {
        guard hasPrefix(prefix) else { return nil }
        return String(dropFirst(prefix.count))
    }
}
