/// The stack information in one report: the faulting pc and the frames of each trace.
///
/// A report may hold several traces (lockdep prints the chain, a stall prints the grace-period
/// kthread and then each CPU, KASAN prints where the object was allocated and freed). They are
/// kept apart as sections so a kind can say which one names the culprit.
struct Stack {
    struct Frame {
        var name: String
        /// Printed between `<IRQ>` and `</IRQ>` (or above an interrupt-entry frame).
        var inInterrupt: Bool
    }

    enum SectionKind {
        /// Frames printed before any trace header (KFENCE, some WARNINGs print them bare).
        case loose
        /// The trace of the task that hit the report.
        case trace
        /// A trace the report prints for context only: the RCU grace-period kthread, where an
        /// object was allocated or freed, lockdep's dependency chain.
        case context
    }

    struct Section {
        var kind: SectionKind
        var frames: [Frame] = []
        /// Index just past the last interrupt frame (the interrupted code starts there).
        var afterInterrupt: Int?
        /// The line (index into the report) where the section began.
        var line: Int
        /// A pc printed with this trace (x86 prints the interrupted `RIP:` inside it; a
        /// soft lockup prints it just before), and the frame index it stands at.
        var pc: (index: Int, name: String)?

        /// The frames with the section's pc in its place: the innermost frame of the code
        /// that was running where the trace was taken.
        var framesWithPC: [Frame] {
            guard let pc, pc.index <= frames.count else { return frames }
            var f = frames
            if f.indices.contains(pc.index), f[pc.index].name == pc.name { return f }
            f.insert(Frame(name: pc.name, inInterrupt: false), at: pc.index)
            return f
        }
    }

    /// The function in `pc : `, `RIP: 0010:`, `IP: `, `PC is at`, `EIP: `, `NIP [..]`, `epc : `.
    var pc: String?
    var sections: [Section] = []
    /// A line said frames were lost (`printk messages dropped`, `lost … messages`).
    var lostLines = false

    init(_ lines: [String]) {
        var current: Section?
        /// A trace interrupted by a register dump (x86 prints the trace of the panic, then
        /// `RIP:` and the registers, then the rest of the same trace): frames resume it.
        var suspended: Section?
        var context = false
        var inIRQ = false
        var pendingCaller: String?
        var pendingPC: String?
        func open(_ kind: SectionKind, _ index: Int) -> Section {
            var s = Section(kind: kind, line: index)
            if let p = pendingPC, kind != .context { s.pc = (0, p) }
            pendingPC = nil
            return s
        }
        func close() {
            if var c = current ?? suspended, !c.frames.isEmpty {
                if let p = pendingCaller, c.frames.last?.name != p { c.frames.append(Frame(name: p, inInterrupt: false)) }
                sections.append(c)
            }
            pendingCaller = nil
            current = nil
            suspended = nil
        }
        for (index, line) in lines.enumerated() {
            let t = line.drop(while: { $0 == " " || $0 == "\t" })
            if let fn = Self.pcFunction(t) {
                if pc == nil { pc = fn }
                if var c = current ?? suspended {
                    if c.pc == nil { c.pc = (c.frames.count, fn) }
                    suspended = c
                    current = nil
                } else {
                    pendingPC = fn
                }
                continue
            }
            if t.hasPrefix("** ") || Title.has(t, "printk messages dropped") { lostLines = true }
            // What the next trace is about.
            if t.hasPrefix("Allocated by task") || Title.has(t, "grace-period kthread stack dump")
                || t.hasPrefix("Freed by task") || t.hasPrefix("Last potentially related")
                || t.hasPrefix("Second to last potentially") || t.hasPrefix("the existing dependency chain")
                || t.hasPrefix("-> #") || t.hasPrefix("other info that might help")
                || t.hasPrefix("Uninit was stored") || t.hasPrefix("Uninit was created")
                || t.hasPrefix("Memory state around") || t.hasPrefix("page last ") || t.hasPrefix("Allocated in ")
                || t.hasPrefix("Freed in ") || t.hasPrefix("allocated by task") || t.hasPrefix("freed by task")
                || t.hasPrefix("INFO: Allocated in") || t.hasPrefix("INFO: Freed in")
                || t.hasPrefix("Preemption disabled at")
            {
                close()
                context = true
                continue
            }
            if t.hasPrefix("NMI backtrace for cpu") || t.hasPrefix("Task dump for CPU") || t.hasPrefix("CPU: ")
                || t.hasPrefix("Sending NMI") || t.hasPrefix("stack backtrace:")
            {
                close()
                context = false
            }
            if t.hasPrefix("Call Trace:") || t.hasPrefix("Call trace:") || t.hasPrefix("Backtrace:")
                || t.hasPrefix("backtrace:") || t.hasPrefix("backtrace (crc") || t.hasPrefix("Call Trace")
                || t.hasPrefix("Stack trace:")
            {
                close()
                current = open(context ? .context : .trace, index)
                inIRQ = false
                continue
            }
            if t.hasPrefix("<IRQ>") || t.hasPrefix("<NMI>") || t.hasPrefix("<SOFTIRQ>") {
                inIRQ = true
                continue
            }
            if t.hasPrefix("</IRQ>") || t.hasPrefix("</NMI>") || t.hasPrefix("<EOI>") || t.hasPrefix("</SOFTIRQ>") {
                inIRQ = false
                if var c = current, c.afterInterrupt == nil { c.afterInterrupt = c.frames.count; current = c }
                continue
            }
            if t == "<TASK>" || t == "</TASK>" { continue }
            // powerpc: "--- interrupt: 700 at foo+0x28/0x40": the interrupted function is a frame.
            if t.hasPrefix("--- interrupt:"), let r = t.range(of: " at "), let fn = Frames.function(atStartOf: t[r.upperBound...]) {
                if current == nil { current = suspended ?? open(context ? .context : .loose, index) }
                suspended = nil
                current!.frames.append(Frame(name: fn, inInterrupt: false))
                continue
            }
            if let fn = Frames.function(inTraceLine: line[...]) {
                if current == nil, let resumed = suspended {
                    current = resumed
                    suspended = nil
                }
                if current == nil { current = open(context ? .context : .loose, index) }
                if current!.frames.last?.name != fn || pendingCaller == fn {
                    current!.frames.append(Frame(name: fn, inInterrupt: inIRQ))
                }
                if Frames.isInterruptEntry(fn), current!.afterInterrupt == nil { current!.afterInterrupt = current!.frames.count }
                // arm32 names each frame's caller on its line: the last caller is a frame too.
                if let caller = Frames.arm32Caller(inTraceLine: line[...]) {
                    if let p = pendingCaller, p != fn { current!.frames.append(Frame(name: p, inInterrupt: inIRQ)) }
                    pendingCaller = caller
                } else {
                    pendingCaller = nil
                }
                continue
            }
            if current != nil, t.hasPrefix("Code: ") || t.hasPrefix("RSP: ") || t.hasPrefix("R") && t.dropFirst(3).hasPrefix(": ") {
                suspended = current
                current = nil
                continue
            }
            if current != nil || suspended != nil, Self.endsTrace(t) { close() }
        }
        close()
    }

    /// A line that ends a stack trace (as opposed to register dumps inside x86 traces).
    private static func endsTrace(_ t: Substring) -> Bool {
        if t.isEmpty { return false }
        let breaks = [
            "Allocated by", "Freed by", "The buggy address", "Memory state", "Last potentially", "Showing all locks",
            "NMI backtrace", "Sending NMI", "---[ end",
            "irq event stamp", "other info that might help", "the existing dependency chain", "Possible unsafe locking",
            "Task dump", "==========", "Second to last", "page last", "Kernel Offset", "Rebooting in",
            "Uninit was", "Local variable", "Bytes ", "Memory access", "Mem abort info", "Data abort info",
        ]
        return breaks.contains(where: { t.hasPrefix($0) })
    }

    static func pcFunction(_ t: Substring) -> String? {
        for p in ["pc : ", "RIP: 0010:", "RIP: 0033:", "IP: ", "PC is at ", "epc : ", "NIP: ", "NIP ["] where t.hasPrefix(p) {
            if p == "RIP: 0033:" { return nil }
            var rest = t.dropFirst(p.count)
            if p == "NIP [" { rest = rest.drop(while: { $0 != "]" }).dropFirst() }
            if p == "epc : " || p == "NIP: " { rest = rest.drop(while: { $0 != " " }) }
            return Frames.function(atStartOf: rest)
        }
        if t.hasPrefix("EIP: ") {
            return Frames.function(atStartOf: t.dropFirst(5).drop(while: { $0 != ":" }).dropFirst())
        }
        if t.hasPrefix("RIP: ") {
            return Frames.function(atStartOf: t.dropFirst(5).drop(while: { $0 != ":" }).dropFirst())
        }
        return nil
    }

    /// The sections that show the task that hit the report: its traces, else bare frames.
    /// The traces of the task that hit the report. Bare frames count when the report has no
    /// trace header at all (old kernels), or right under the header (KFENCE prints its stack
    /// there); elsewhere they belong to other output interleaved with the report.
    var mainSections: [Section] {
        let traces = sections.filter { $0.kind == .trace }
        if traces.isEmpty { return sections.filter { $0.kind == .loose } }
        return sections.filter { $0.kind == .trace || ($0.kind == .loose && $0.line <= 3) }
    }

    /// The frames of the first trace of the task that hit the report.
    var mainFrames: [Frame] { mainSections.first?.frames ?? [] }

    var hasFrames: Bool { !mainFrames.isEmpty }

    /// The frames of a fault-injection stack dump (`FAULT_INJECTION: forcing a failure`).
    static let faultInjection: Set<String> = ["should_fail", "should_failslab", "should_fail_ex", "fail_dump", "should_fail_alloc_page", "should_fail_usercopy"]
}
