import Foundation

/// The kinds of kernel report the classifier knows, one table entry each.
///
/// An entry says how the report's first line is recognised (`starts`, `requires`), what its
/// title is before " in <function>" (`head`), which part of the report names the function to
/// blame (`culprit`) and which frames are skipped for it beyond ``Frames/generic`` (`skip`), and
/// when the report counts as corrupted. ``ReportAnalyzer`` is the one engine that reads it; the
/// console classifier uses the same `starts` to know where a report begins. Adding a kind is
/// adding an entry. Titles are the ones syzbot gives Linux reports, so a report here can be
/// looked up there; the rules are our own, written from the reports in the syzkaller corpus.
struct ReportKind: Sendable {
    /// Prefixes of the printk message that begin this kind of report.
    var starts: [String]
    /// Text the first line must also contain.
    var requires: [String] = []
    /// Text the first line must not contain.
    var excludes: [String] = []
    /// The line continues an open report (arm64's "Internal error:" after "Unable to handle
    /// kernel …") and starts one only when none is open.
    var continues = false
    var category: KernelReport.Category
    /// The title before " in <culprit>", from the report; nil when the report is not this
    /// kind after all (the next entry is tried).
    var head: @Sendable (ReportText) -> Head?
    /// Where the function to blame comes from.
    var culprit: Culprit
    /// Frames skipped for this kind on top of the generic ones.
    var skip = FrameSet()
    /// Frames that the generic lists skip but that name the culprit for this kind.
    var keep: Set<String> = []
    /// The report is corrupted unless it has a stack trace (most kinds print one).
    var needsStack = true
    /// The report is its first line alone: printed in the middle of another report, it is
    /// a report of its own and the other one goes on.
    var oneLine = false
    /// Culprits named otherwise in this kind's titles (a hung task's
    /// `synchronize_rcu_expedited` is a wait for `synchronize_rcu`).
    var renames: [String: String] = [:]

    /// The fixed part of a title, with what the header itself says about the culprit.
    struct Head {
        var text: String
        /// The culprit named by the header itself, overriding `culprit` (e.g. "stack is
        /// corrupted in: foo+0x…").
        var function: String?
        /// Appended after the culprit: old KASAN reports end their titles in "at addr ADDR".
        var suffix = ""
        /// The header shows the report is incomplete (a KASAN report without its access line).
        var corrupted = false
        /// Use this culprit rule instead of the kind's.
        var culprit: Culprit?
        /// The line looked like this kind's start but the report shows it is not a kernel
        /// report at all (a pr_warn() that starts with "WARNING:"): it is dropped.
        var notAReport = false
        /// `function` is used as printed, compiler suffixes and all.
        var verbatim = false
        /// The report's category when it differs from the kind's (a refcount WARNING).
        var category: KernelReport.Category?
        /// Whether a stack trace is part of the report, when this differs from the kind's.
        var needsStack: Bool?

        init(
            _ text: String, function: String? = nil, suffix: String = "", corrupted: Bool = false, culprit: Culprit? = nil,
            notAReport: Bool = false, verbatim: Bool = false, category: KernelReport.Category? = nil
        ) {
            self.category = category
            self.verbatim = verbatim
            self.notAReport = notAReport
            self.text = text
            self.function = function
            self.suffix = suffix
            self.corrupted = corrupted
            self.culprit = culprit
        }
    }

    enum Culprit: Sendable, Equatable {
        /// No function in the title.
        case none
        /// The first frame of the stack trace that is not skipped.
        case stack
        /// The faulting pc when it is not skipped, else the stack.
        case pcThenStack
        /// The function in the header (`BUG: KASAN: … in foo+0x…`, where the bad access was)
        /// unless it is skipped, else the stack. The header is the sanitizer's own word; a stack
        /// may be cut off or mixed with another task's.
        case headerThenStack
        /// A WARNING: the pc where it fired, else the stack. The header's function is not
        /// enough alone: without the stack a WARN site in a helper many callers reach names
        /// none of them, and the report is "in corrupted".
        case warning
        /// The function at which lockdep saw the lock taken (`…, at: foo+0x…`), else the stack.
        case lockSite
        /// What the stalled CPU or task was doing: the first anchor frame (a syscall, a packet
        /// receive, an ioctl …) of the interrupted code, else its first frame not skipped.
        case stall
        /// The allocation backtrace of a leaked object, past the allocator.
        case allocation
        /// An irq-safety inversion: where the lock became irq-safe (the first trace lockdep
        /// prints, "... which became HARDIRQ-irq-safe at:").
        case irqSafeSite
    }

    /// Does the first line start this kind?
    func recognises(_ first: Substring) -> Bool {
        guard starts.contains(where: { first.hasPrefix($0) }) else { return false }
        for r in requires where !Title.has(first, r) { return false }
        for e in excludes where Title.has(first, e) { return false }
        return true
    }
}

/// What a kind's `head` reads: the report's lines and the note printed just before it.
struct ReportText {
    /// The first line, printk prefix removed.
    var first: String
    var lines: [String]
    /// A line that explains the report and was printed just before it (`refcount_t: …`,
    /// `ODEBUG: …`, `usercopy: …`, `list_del corruption …`).
    var note: String?

    /// The first line among the first `limit` that starts with one of `prefixes` (after indentation).
    func line(startingWith prefixes: [String], limit: Int = 40) -> Substring? {
        for l in lines.prefix(limit) {
            let t = l.drop(while: { $0 == " " || $0 == "\t" })
            if prefixes.contains(where: { t.hasPrefix($0) }) { return t }
        }
        return nil
    }

    /// The report has a stack trace header.
    var hasTrace: Bool {
        lines.contains { l in
            let t = l.drop(while: { $0 == " " })
            return t.hasPrefix("Call Trace") || t.hasPrefix("Call trace") || t.hasPrefix("Backtrace")
        }
    }

    /// The header's text after `prefix`.
    func after(_ prefix: String) -> Substring { first.dropFirst(prefix.count) }
}

extension ReportKind {
    /// Every kind, most specific first: the first entry that recognises a report names it.
    static let all: [ReportKind] = sanitizers + oopses + bugs + warnings + lockdep + hangs + panics + others

    // MARK: Sanitizers

    static let sanitizers: [ReportKind] = [
        ReportKind(
            starts: ["BUG: KASAN: "], category: .kasan,
            head: { r in
                let rest = r.after("BUG: KASAN: ")
                let kind = Title.word(before: [" in ", " on address", " at addr", " range"], in: rest)
                let bug = kind == "double-free or invalid-free" || kind == "double-free" ? "invalid-free" : kind
                if bug == "invalid-free" { return Head("KASAN: \(bug)") }
                let access = r.line(startingWith: ["Read of size", "Read at addr", "Write of size", "Write at addr"], limit: 16)
                    .map { $0.hasPrefix("Read") ? "Read" : "Write" }
                if let access {
                    // "… on address ffe7…": no function in the header; without a stack, none at all.
                    if !rest.contains(" in "), !r.hasTrace { return Head("KASAN: \(bug) \(access)", corrupted: true, culprit: Culprit.none) }
                    return Head("KASAN: \(bug) \(access)")
                }
                // Old reports: "… in foo+0x…/0x… at addr ffff…", named after the header's function.
                // These keep the header's name as printed (".part.N" and all), numbers replaced.
                let fn = rest.range(of: " in ").flatMap { Frames.function(atStartOf: rest[$0.upperBound...]) }
                let suffix = rest.contains(" at addr ") ? " at addr ADDR" : ""
                return Head("KASAN: \(bug)", function: fn.map(NumberMask.titleNumbers), suffix: suffix, corrupted: true, verbatim: true)
            },
            culprit: .headerThenStack, skip: FrameSet(exact: ["do_tag_check_fault", "do_mem_abort", "el1_abort", "el1h_64_sync_handler"])
        ),
        ReportKind(
            starts: ["BUG: KFENCE: "], category: .kfence,
            head: { r in Head("KFENCE: " + Title.word(before: [" in ", " on address"], in: r.after("BUG: KFENCE: "))) },
            culprit: .stack
        ),
        ReportKind(
            starts: ["BUG: KMSAN: "], category: .kmsan,
            head: { r in Head("KMSAN: " + Title.word(before: [" in ", " on address"], in: r.after("BUG: KMSAN: "))) },
            culprit: .stack,
            skip: FrameSet(
                exact: ["aes_encrypt", "aes_decrypt", "rng_setkey", "crypto_aes_encrypt", "usb_submit_urb", "kernel_sendmsg",
                        "sock_sendmsg", "__sock_sendmsg", "copyout", "simple_read_from_buffer"],
                prefixes: ["crc32", "__crc32", "_copy_to_iter", "copy_to_user", "crypto_", "sha", "blake2", "drbg_"])
        ),
        ReportKind(
            starts: ["BUG: KCSAN: "], category: .kcsan,
            head: { r in
                // "data-race in foo / bar": the racing functions, as printed.
                let words = r.after("BUG: KCSAN: ").split(separator: " ").map { w -> String in
                    if let plus = w.range(of: "+0x") { return Frames.normalized(String(w[..<plus.lowerBound])) }
                    return String(w)
                }
                return Head("KCSAN: " + words.joined(separator: " "), culprit: Culprit.none)
            },
            culprit: .none, needsStack: false
        ),
        ReportKind(
            starts: ["UBSAN: "], category: .ubsan,
            head: { r in
                var kind = Title.word(before: [" in "], in: r.after("UBSAN: "))
                if kind.lowercased() == "undefined behaviour" { kind = "undefined-behaviour" }
                return Head("UBSAN: \(kind)")
            },
            culprit: .stack, skip: FrameSet(exact: ["handle_overflow", "handle_null_ptr_deref"])
        ),
        ReportKind(
            starts: ["BUG: memory leak", "unreferenced object 0x"], category: .leak,
            head: { _ in Head("memory leak") }, culprit: .allocation
        ),
    ]

    // MARK: Oopses

    static let oopses: [ReportKind] = [
        ReportKind(
            starts: ["BUG: unable to handle kernel", "BUG: unable to handle page fault", "BUG: kernel NULL pointer dereference",
                     "Unable to handle kernel ", "BUG: Unable to handle kernel "],
            category: .oops,
            head: { r in
                let f = r.first
                if f.contains("NULL pointer dereference") { return Head("BUG: unable to handle kernel NULL pointer dereference") }
                if f.contains("access to user memory") { return Head("BUG: unable to handle kernel access to user memory") }
                if f.contains("paging request") || f.contains("page fault") || f.contains("data access")
                    || f.contains("instruction fetch") || f.contains("execute from non-executable")
                    || f.contains("read from unreadable") || f.contains("write to read-only")
                {
                    return Head("BUG: unable to handle kernel paging request")
                }
                // The line was cut (another message glued to it): no more than syzbot can tell.
                return Head("BUG: unable to handle kernel", corrupted: true, culprit: Culprit.none)
            },
            culprit: .pcThenStack
        ),
        ReportKind(
            starts: ["general protection fault", "segment-related general protection fault"], category: .oops,
            head: { _ in Head("general protection fault") }, culprit: .pcThenStack
        ),
        ReportKind(starts: ["divide error: "], category: .oops, head: { _ in Head("divide error") }, culprit: .pcThenStack),
        ReportKind(starts: ["stack segment: "], category: .oops, head: { _ in Head("stack segment fault") }, culprit: .pcThenStack),
        ReportKind(
            starts: ["PANIC: double fault"], category: .oops, head: { _ in Head("PANIC: double fault") },
            culprit: .pcThenStack
        ),
        ReportKind(
            starts: ["invalid opcode: "], requires: [" [#"], continues: true, category: .oops,
            head: { _ in Head("invalid opcode") }, culprit: .pcThenStack
        ),
        ReportKind(
            starts: ["Unhandled fault: "], category: .oops, head: { _ in Head("Unhandled fault") }, culprit: .pcThenStack
        ),
        ReportKind(
            starts: ["Alignment trap: "], category: .oops, head: { _ in Head("Alignment trap") }, culprit: .pcThenStack
        ),
        ReportKind(
            starts: ["Internal error: "], continues: true, category: .oops,
            head: { r in
                if r.first.hasPrefix("Internal error: Oops - BUG") { return Head("kernel BUG") }
                return Head("Internal error")
            },
            culprit: .pcThenStack
        ),
        ReportKind(
            starts: ["Oops: ", "Oops "], requires: [" [#"], continues: true, category: .oops,
            head: { _ in Head("Oops") }, culprit: .pcThenStack
        ),
    ]

    // MARK: BUG() and BUG: lines

    static let bugs: [ReportKind] = [
        ReportKind(
            starts: ["kernel BUG at ", "Kernel BUG at ", "------------[ cut here ]------------ kernel BUG"],
            category: .bug,
            head: { r in
                if r.first.contains("lib/list_debug.c") { return Head("BUG: corrupted list") }
                if r.first.contains("mm/usercopy.c") { return Head("BUG: bad usercopy") }
                if let note = r.note {
                    if note.contains("usercopy:") || note.hasPrefix("usercopy") { return Head("BUG: bad usercopy") }
                    if note.hasPrefix("list_del corruption") || note.hasPrefix("list_add corruption")
                        || note.hasPrefix("list_add double add") || note.hasPrefix("list_del double")
                    {
                        return Head("BUG: corrupted list")
                    }
                }
                return Head("kernel BUG")
            },
            culprit: .pcThenStack
        ),
        ReportKind(
            starts: ["BUG: sleeping function called from invalid context", "BUG: scheduling while atomic",
                     "BUG: using smp_processor_id() in preemptible", "BUG: using __this_cpu_",
                     "BUG: workqueue leaked lock or atomic", "BUG: using this_cpu_"],
            category: .atomicSleep,
            head: { r in
                let rest = r.after("BUG: ")
                if rest.hasPrefix("sleeping function") { return Head("BUG: sleeping function called from invalid context") }
                if rest.hasPrefix("scheduling while atomic") { return Head("BUG: scheduling while atomic") }
                if rest.hasPrefix("workqueue leaked lock") {
                    let fn = r.line(startingWith: ["last function: "]).flatMap { Frames.function(atStartOf: $0.dropFirst("last function: ".count) + "+0x0/0x0") }
                    var head = Head("BUG: workqueue leaked lock or atomic", function: fn)
                    head.needsStack = false
                    return head
                }
                let what = Title.word(before: [" in preemptible"], in: rest)
                return Head("BUG: \(what) in preemptible code")
            },
            culprit: .stack,
            skip: FrameSet(exact: ["__schedule_bug", "schedule_debug", "debug_smp_processor_id", "check_preemption_disabled"],
                           prefixes: ["__this_cpu_preempt_check"]),
            // Allocating with a sleeping GFP in atomic context is the bug itself.
            keep: ["__alloc_skb", "alloc_skb"]
        ),
        ReportKind(
            starts: ["BUG: soft lockup", "NMI watchdog: BUG: soft lockup", "watchdog: BUG: soft lockup"],
            category: .hang, head: { _ in Head("BUG: soft lockup") }, culprit: .stall
        ),
        ReportKind(
            starts: ["Watchdog detected hard LOCKUP", "NMI watchdog: Watchdog detected hard LOCKUP",
                     "watchdog: Watchdog detected hard LOCKUP", "watchdog: watchdog0: Watchdog detected hard LOCKUP"],
            category: .hang, head: { _ in Head("BUG: hard lockup") }, culprit: .stall
        ),
        ReportKind(
            starts: ["BUG: spinlock lockup", "BUG: workqueue lockup"], category: .hang,
            head: { r in
                if r.first.hasPrefix("BUG: workqueue lockup") { return Head("BUG: workqueue lockup", culprit: Culprit.none) }
                return Head("BUG: spinlock lockup suspected")
            },
            culprit: .stack, needsStack: true
        ),
        ReportKind(
            starts: ["BUG: stack guard page was hit", "BUG: TASK stack guard page was hit", "BUG: IRQ stack guard page was hit"],
            // A stack overflow is a recursion: where it overflowed is chance, the entry point that
            // recursed is not.
            category: .oops, head: { _ in Head("BUG: stack guard page was hit") }, culprit: .stall
        ),
        ReportKind(
            starts: ["BUG: Bad page state", "BUG: Bad page map", "BUG: Bad page cache"], category: .bug,
            head: { r in
                let what = "BUG: " + Title.word(before: [" in process", ":", " in "], in: r.after("BUG: "))
                // A bad page map is found walking page tables: the stack is the walker's, not the bug's.
                return Head(what, culprit: what == "BUG: Bad page map" ? Culprit.none : nil)
            },
            // A page found bad when allocated: the allocator's caller took it.
            culprit: .allocation, skip: FrameSet(exact: ["bad_page", "free_pages_check_bad", "free_page_is_bad", "check_new_page_bad"])
        ),
        ReportKind(
            starts: ["BUG: Dentry "], requires: ["still in use"], category: .bug,
            head: { r in Head("BUG: Dentry still in use", function: r.first.contains("[unmount of") ? "unmount" : nil, culprit: Culprit.none) },
            culprit: .none, needsStack: false
        ),
        ReportKind(
            starts: ["BUG: Bad rss-counter state", "BUG: MAX_LOCK", "BUG: MAX_STACK_TRACE_ENTRIES", "BUG: MAX_LOCKDEP",
                     "BUG: non-zero pgtables_bytes"],
            category: .lockdep,
            head: { r in
                let rest = String(r.first.dropFirst("BUG: ".count))
                if rest.hasPrefix("Bad rss-counter") { return Head("BUG: Bad rss-counter state") }
                if rest.hasPrefix("non-zero pgtables") { return Head("BUG: non-zero pgtables_bytes on freeing mm") }
                return Head("BUG: " + Title.cleaned(rest, keepBang: true))
            },
            culprit: .none, needsStack: false
        ),
        ReportKind(
            starts: ["BUG: spinlock ", "BUG: rwlock ", "BUG: held lock freed", "BUG: bad unlock balance",
                     "BUG: looking up invalid subclass", "BUG: lock held when returning", "BUG: still has locks held"],
            category: .lockdep,
            head: { r in Head("BUG: " + Title.lockProblem(r.after("BUG: "))) },
            culprit: .lockSite
        ),
    ]

    // MARK: WARNINGs

    static let warnings: [ReportKind] = [
        ReportKind(
            starts: ["WARNING: CPU: ", "WARNING: at ", "WARNING: "],
            excludes: ["possible circular locking", "possible recursive locking", "inconsistent lock state",
                       "suspicious RCU usage", "bad unlock balance", "held lock freed", "lock held when returning",
                       "Nested lock was not taken", "nested lock was not taken", "still has locks held",
                       "possible irq lock inversion", "-safe -> ", "kernel stack", "lock held at task exit",
                       "bad contention detected", "locking bug"],
            category: .warning,
            head: { r in
                let header = Frames.function(inHeader: r.first)
                // Which warning this is: the note before it or where it fired.
                if let note = r.note {
                    if note.hasPrefix("refcount_t") { return Head("WARNING: refcount bug", culprit: .stack, category: .refcount) }
                    if note.hasPrefix("ODEBUG") { return Head("WARNING: ODEBUG bug", culprit: .stack) }
                    if note.contains("usercopy") { return Head("WARNING: bad usercopy", culprit: .stack) }
                }
                if let h = header {
                    let n = Frames.normalized(h)
                    if n.hasPrefix("refcount_") { return Head("WARNING: refcount bug", culprit: .stack, category: .refcount) }
                    if n.hasPrefix("debug_print_object") { return Head("WARNING: ODEBUG bug", culprit: .stack) }
                    if Warnings.lockdepFiles.contains(where: { Title.has(r.first[...], $0) }) || Warnings.lockdepFunctions.contains(n) {
                        return Head("WARNING: locking bug", culprit: .stack, category: .lockdep)
                    }
                    if n == "kvmalloc_node" || n == "kmalloc_slab" || n == "__kvmalloc_node" || n == "kvmalloc_node_noprof" {
                        return Head("WARNING: kmalloc bug", culprit: .stack)
                    }
                    if n == "__vmalloc_node_range" && Title.has(r.first[...], "mm/vmalloc.c") {
                        return Head("WARNING: zero-size vmalloc", culprit: .stack)
                    }
                    if n.hasPrefix("kobject_") { return Head("WARNING: kobject bug", culprit: .stack) }
                    if n == "proc_register" { return Head("WARNING: proc registration bug", culprit: .stack) }
                    if n.hasPrefix("__check_heap_object") || n.hasPrefix("usercopy_warn") { return Head("WARNING: bad usercopy", culprit: .stack) }
                    if n == "usb_submit_urb" { return Head("WARNING", suffix: "/usb_submit_urb", culprit: .stack) }
                }
                if r.first.hasPrefix("WARNING: CPU: ") || r.first.hasPrefix("WARNING: at ") || header != nil
                    || Title.isFileLine(r.first.dropFirst("WARNING: ".count))
                {
                    return Head("WARNING")
                }
                // A message of its own: "WARNING: <text>" without a location. pr_warn() text and
                // user space print these too; only one that comes with a stack trace is a report.
                guard r.lines.contains(where: { $0.hasPrefix("Call Trace") || $0.hasPrefix("Call trace") }) else {
                    return Head("", notAReport: true)
                }
                return Head("WARNING: " + Title.cleaned(String(r.first.dropFirst("WARNING: ".count))), culprit: .stack)
            },
            culprit: .warning,
            skip: FrameSet(
                exact: ["usb_submit_urb", "drop_nlink", "mark_buffer_dirty", "fast_dput", "cleanup_srcu_struct",
                        "ref_tracker_free", "ref_tracker_dir_exit", "add_uevent_var", "sysfs_remove_group",
                        "device_del", "kobject_del", "device_unregister", "proc_register", "__proc_create"],
                prefixes: ["kobject_", "debug_print_object", "__vmalloc_node", "refcount_warn_saturate"])
        ),
        ReportKind(
            starts: ["WARNING: kernel stack "], category: .warning,
            head: { r in
                // "kernel stack regs at … in proc:123 has bad 'bp' value …": keep the words, drop the values.
                let f = r.first
                let what = f.contains("kernel stack frame pointer") ? "WARNING: kernel stack frame pointer" : "WARNING: kernel stack regs"
                let tail = f.contains("has bad 'bp' value") && !f.contains("(ptrval)") ? " has bad 'bp' value" : " has bad value"
                return Head(what + tail, culprit: Culprit.none)
            },
            culprit: .none, needsStack: false
        ),
    ]

    // MARK: lockdep

    static let lockdep: [ReportKind] = [
        ReportKind(
            starts: ["WARNING: possible circular locking", "WARNING: possible recursive locking", "[ INFO: possible ",
                     "INFO: possible circular locking", "INFO: possible recursive locking", "WARNING: possible irq lock inversion",
                     "INFO: possible irq lock inversion", "WARNING: SOFTIRQ-safe", "WARNING: HARDIRQ-safe",
                     "WARNING: SOFTIRQ-READ-safe", "WARNING: HARDIRQ-READ-safe", "INFO: SOFTIRQ-safe", "INFO: HARDIRQ-safe"],
            category: .lockdep,
            head: { r in
                // An irq-safety inversion names two locks of equal standing: the stack says who.
                let inversion = r.first.contains("-safe -> ")
                guard r.lines.count > 3 else {
                    // Cut off before lockdep said which locks: all there is is its header.
                    var header = r.first.hasPrefix("[ ") ? String(r.first.dropFirst(2)) : r.first
                    if header.hasSuffix(" ]") { header = String(header.dropLast(2)) }
                    return Head(header.trimmingCharacters(in: .whitespaces), corrupted: true, culprit: Culprit.none)
                }
                return Head("possible deadlock", culprit: inversion ? .irqSafeSite : nil)
            },
            culprit: .lockSite, skip: FrameSet(exact: ["process_one_work", "flush_workqueue", "__flush_workqueue"])
        ),
        ReportKind(
            starts: ["WARNING: inconsistent lock state", "INFO: inconsistent lock state", "[ INFO: inconsistent lock state"], category: .lockdep,
            head: { _ in Head("inconsistent lock state") }, culprit: .lockSite
        ),
        ReportKind(
            starts: ["WARNING: suspicious RCU usage", "INFO: suspicious RCU usage", "[ INFO: suspicious RCU usage"], category: .lockdep,
            head: { r in Head(r.first.hasPrefix("WARNING") ? "WARNING: suspicious RCU usage" : "INFO: suspicious RCU usage") },
            culprit: .stack, skip: FrameSet(exact: ["bpf_prog_array_copy_to_user"])
        ),
        ReportKind(
            starts: ["WARNING: bad unlock balance", "WARNING: held lock freed", "WARNING: lock held when returning",
                     "WARNING: Nested lock was not taken", "WARNING: nested lock was not taken",
                     "WARNING: lock held at task exit", "WARNING: bad contention", "INFO: lockdep: bad unlock",
                     "[ BUG: bad unlock balance", "[ BUG: held lock freed", "[ BUG: lock held when returning",
                     "[ BUG: Nested lock", "[ BUG: nested lock"],
            category: .lockdep,
            head: { r in
                let first = r.first.hasPrefix("[ ") ? String(r.first.dropFirst(2)) : r.first
                let level = first.hasPrefix("INFO") ? "INFO: " : first.hasPrefix("BUG") ? "BUG: " : "WARNING: "
                let rest = first.dropFirst(level.count)
                let known = ["bad unlock balance", "held lock freed", "lock held when returning to user space",
                             "Nested lock was not taken", "nested lock was not taken", "lock held at task exit time",
                             "still has locks held", "bad contention detected", "locking bug"]
                guard known.contains(where: { rest.contains($0) }) else { return nil }
                var head = Head(level + Title.lockProblem(rest))
                // These two print the held locks and no stack: the lock site is the whole story.
                let lower = rest.lowercased()
                if lower.contains("lock held when returning") || lower.contains("nested lock was not taken") { head.needsStack = false }
                return head
            },
            culprit: .lockSite
        ),
        ReportKind(
            starts: ["WARNING: ", "BUG: "], requires: ["still has locks held"], category: .lockdep,
            head: { r in Head((r.first.hasPrefix("BUG") ? "BUG: " : "WARNING: ") + "still has locks held") },
            culprit: .lockSite
        ),
        ReportKind(
            starts: ["INFO: trying to register non-static key"], category: .lockdep,
            head: { _ in Head("INFO: trying to register non-static key") }, culprit: .stack
        ),
    ]

    // MARK: Hangs

    static let hangs: [ReportKind] = [
        ReportKind(
            starts: ["INFO: task "], requires: ["can't die for more than"], category: .hang,
            head: { _ in Head("INFO: task can't die") }, culprit: .stack
        ),
        ReportKind(
            starts: ["INFO: task "], requires: ["blocked", "for more than"], category: .hang,
            head: { _ in Head("INFO: task hung") }, culprit: .stack,
            skip: FrameSet(
                exact: ["synchronize_net", "kthread_stop", "console_lock", "fdatawait_one_bdev", "do_read_cache_folio",
                        "do_read_cache_page", "rcu_barrier"],
                prefixes: ["__rela"]),
            keep: ["synchronize_rcu", "synchronize_rcu_expedited"],
            renames: ["synchronize_rcu_expedited": "synchronize_rcu"]
        ),
        ReportKind(
            starts: ["INFO: rcu_", "INFO: rcu ", "rcu: INFO: ", "INFO: RCU ", "INFO: rcu detected", "INFO: SRCU"],
            requires: ["stall"], category: .hang,
            head: { _ in Head("INFO: rcu detected stall") }, culprit: .stall
        ),
    ]

    // MARK: Panics

    static let panics: [ReportKind] = [
        ReportKind(
            starts: ["Kernel panic - not syncing: "], category: .panic,
            head: { r in
                let msg = r.after("Kernel panic - not syncing: ")
                if msg.hasPrefix("stack-protector: Kernel stack is corrupted in:") {
                    let fn = Frames.function(atStartOf: msg.dropFirst("stack-protector: Kernel stack is corrupted in:".count))
                    return Head("kernel panic: stack is corrupted", function: fn, culprit: .stack)
                }
                if msg.hasPrefix("corrupted stack end detected inside scheduler") {
                    return Head("kernel panic: corrupted stack end", culprit: .stall)
                }
                // A panic that names a report as its cause, with that report not in the log:
                // what it was is lost.
                let consequence = ["panic_on_warn set", "hung_task: blocked tasks", "Fatal exception", "softlockup: hung tasks",
                                   "Hard LOCKUP", "RCU Stall", "panic_on_oops"].contains(where: { msg.hasPrefix($0) })
                return Head("kernel panic: " + Title.panicMessage(msg), corrupted: consequence, culprit: Culprit.none)
            },
            culprit: .none, needsStack: false
        ),
    ]

    // MARK: Other one-line reports

    static let others: [ReportKind] = [
        ReportKind(
            starts: ["unregister_netdevice: waiting for "], requires: ["to become free"], category: .other,
            head: { _ in Head("unregister_netdevice: waiting for DEV to become free") }, culprit: .none, needsStack: false,
            oneLine: true
        ),
        ReportKind(
            starts: ["VFS: Close: file count is"], category: .bug,
            head: { _ in Head("VFS: Close: file count is zero (use-after-free)") }, culprit: .none, needsStack: false,
            oneLine: true
        ),
        ReportKind(
            starts: ["BUG: "], category: .bug,
            head: { r in Head("BUG: " + Title.cleaned(String(r.first.dropFirst("BUG: ".count)))) }, culprit: .stack
        ),
        ReportKind(
            starts: ["BUG "], requires: ["): Object already free"], category: .bug,
            head: { _ in Head("BUG: Object already free") }, culprit: .none, needsStack: false
        ),
        ReportKind(
            starts: ["BUG "], requires: ["): Poison overwritten"], category: .bug,
            head: { _ in Head("BUG: Poison overwritten") }, culprit: .none, needsStack: false
        ),
        ReportKind(
            // SLUB debugging's allocation record, printed alone when its report was lost.
            starts: ["INFO: Allocated in ", "INFO: Freed in "], continues: true, category: .bug,
            head: { r in
                let words = r.first.split(separator: " ").map { w -> String in
                    if let plus = w.range(of: "+0x") { return String(w[..<plus.lowerBound]) }
                    return String(w)
                }
                return Head(NumberMask.titleNumbers(words.joined(separator: " ")), culprit: Culprit.none)
            },
            culprit: .none, needsStack: false
        ),
        ReportKind(
            starts: ["SYZFAIL: "], category: .other,
            head: { r in Head(r.first.trimmingCharacters(in: .whitespaces)) }, culprit: .none, needsStack: false
        ),
        ReportKind(
            starts: ["trusty: panic"], category: .panic,
            head: { r in
                // "trusty: panic (caller 0x…): <message>"; an assertion is named by its expression.
                var message = r.first.range(of: "): ").map { String(r.first[$0.upperBound...]) } ?? String(r.after("trusty: panic"))
                if message.hasPrefix("ASSERT FAILED") {
                    let expr = message.range(of: "): ").map { String(message[$0.upperBound...]) } ?? ""
                    return Head(("trusty: ASSERT FAILED: " + expr).trimmingCharacters(in: .whitespaces))
                }
                message = message.trimmingCharacters(in: .whitespaces)
                return Head("trusty: panic: " + NumberMask.titleNumbers(message))
            },
            culprit: .none, needsStack: false
        ),
    ]
}

/// The WARNING sites that are lockdep's own.
enum Warnings {
    static let lockdepFiles = ["kernel/locking/lockdep.c", "kernel/locking/mutex", "kernel/locking/rwsem.c"]
    static let lockdepFunctions: Set<String> = [
        "register_lock_class", "look_up_lock_class", "hlock_class", "lock_downgrade", "__lock_acquire",
        "lock_release", "__lock_release", "check_flags", "lockdep_init_map_type", "lockdep_register_key",
        "__lockdep_free_key_range", "lock_acquire",
    ]
}

/// Small text rules shared by the kinds' titles.
enum Title {
    /// Byte search: Foundation's `contains` costs microseconds a call, and a flood of
    /// distinct reports makes it the classifier's hot spot (every report past the stored
    /// ones is still named).
    static func has(_ text: Substring, _ needle: String) -> Bool {
        var text = text
        var needle = needle
        return text.withUTF8 { t in
            needle.withUTF8 { n in
                guard n.count > 0, let tb = t.baseAddress, let nb = n.baseAddress else { return n.count == 0 }
                guard t.count >= n.count else { return false }
                let last = t.count - n.count
                var i = 0
                while i <= last {
                    guard let hit = memchr(tb + i, Int32(nb[0]), last - i + 1) else { return false }
                    let at = tb.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                    if memcmp(tb + at, nb, n.count) == 0 { return true }
                    i = at + 1
                }
                return false
            }
        }
    }

    /// The words of `text` before the first of `separators` (or all of it, cleaned).
    static func word(before separators: [String], in text: Substring) -> String {
        var end = text.endIndex
        for s in separators {
            if let r = text.range(of: s), r.lowerBound < end { end = r.lowerBound }
        }
        return cleaned(String(text[..<end]))
    }

    /// A header without what changes from run to run: addresses, "at file:line", CPU and
    /// task details, trailing punctuation.
    static func cleaned(_ s: String, keepBang: Bool = false) -> String {
        var t = s
        for sep in [" at ", ", ", " - ", " on CPU", " for address", " in process", ": 0x", " [", " (", " pid:", "!", ": "] {
            if keepBang && sep == "!" { continue }
            if let r = t.range(of: sep), r.lowerBound > t.startIndex { t = String(t[..<r.lowerBound]) }
        }
        return t.trimmingCharacters(in: CharacterSet(charactersIn: " .:\t"))
    }

    /// A lockdep problem line ("bad unlock balance detected!", "syz/123 still has locks held!")
    /// as syzbot names it, lower-cased first word.
    static func lockProblem(_ rest: Substring) -> String {
        let known = ["bad unlock balance", "held lock freed", "lock held when returning to user space",
                     "nested lock was not taken", "lock held at task exit time", "still has locks held",
                     "bad contention detected", "locking bug", "looking up invalid subclass",
                     "spinlock recursion", "spinlock already unlocked", "spinlock wrong owner", "spinlock wrong CPU",
                     "spinlock bad magic", "spinlock cpu recursion", "rwlock recursion", "rwlock bad magic",
                     "rwlock already unlocked", "rwlock wrong owner", "rwlock wrong CPU"]
        let lower = rest.lowercased()
        for k in known where lower.contains(k.lowercased()) { return k }
        return cleaned(String(rest))
    }

    /// "panic_on_warn set ...", "VFS: Unable to mount root fs on unknown-block(0,0)": numbers
    /// become NUM, addresses and exit codes go.
    static func panicMessage(_ s: Substring) -> String {
        var t = String(s)
        for sep in [" exitcode=", " - ", ": 0x", " 0x", " ..."] {
            if let r = t.range(of: sep) { t = String(t[..<r.lowerBound]) }
        }
        return NumberMask.titleNumbers(t.trimmingCharacters(in: .whitespaces))
    }

    /// "fs/ext4/xattr.c:1058 at …": the new WARNING header that starts with the location.
    static func isFileLine(_ s: Substring) -> Bool {
        let token = s.prefix(while: { $0 != " " })
        guard let colon = token.lastIndex(of: ":") else { return false }
        return token[..<colon].hasSuffix(".c") || token[..<colon].hasSuffix(".h") || token[..<colon].hasSuffix(".rs")
    }
}

/// The byte-level index of the kinds' `starts`, for the console's hot path: a line is
/// looked up by its first byte, so most console lines cost one table read.
enum ReportStarts {
    enum Match { case start, continuation, oneLine }

    struct Entry {
        var prefix: [UInt8]
        var requires: [[UInt8]]
        var excludes: [[UInt8]]
        var continues: Bool
        var oneLine: Bool
    }

    static let byFirstByte: [[Entry]] = {
        var table = Array(repeating: [Entry](), count: 256)
        for kind in ReportKind.all {
            for start in kind.starts {
                let bytes = Array(start.utf8)
                guard let first = bytes.first else { continue }
                table[Int(first)].append(
                    Entry(prefix: bytes, requires: kind.requires.map { Array($0.utf8) },
                          excludes: [], continues: kind.continues, oneLine: kind.oneLine))
            }
        }
        return table
    }()

    /// Whether the line at message offset `m` starts a report (or continues one).
    static func match(_ line: UnsafeBufferPointer<UInt8>, at m: Int) -> Match? {
        let entries = byFirstByte[Int(line[m])]
        guard !entries.isEmpty else { return nil }
        var found: Match?
        for e in entries where Bytes.hasPrefix(line, at: m, e.prefix) {
            if !e.requires.allSatisfy({ Bytes.find(line, $0, from: m) != nil }) { continue }
            if e.oneLine { return .oneLine }
            if !e.continues { return .start }
            found = .continuation
        }
        return found
    }
}
