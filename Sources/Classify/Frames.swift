/// Stack-frame parsing and the list of generic frames that never get the blame.
///
/// A kernel report's stack starts in the machinery that noticed the bug
/// (dump_stack, the sanitizer, the WARN handler, the allocator, a lock) and only
/// further down reaches the code that has it. The guilty frame is the first one
/// that is not such machinery; that is what syzbot puts in a title.
enum Frames {
    /// The function of a stack-trace line such as ` foo+0x1c/0x40`,
    /// ` [<ffffffff8123>] foo+0x1c/0x40 [mod]`, ` foo+0x1c/0x40 (C)` or a
    /// symbolized inline frame ` foo net/x.c:12 [inline]`. Unreliable frames
    /// (`? foo+…`) and anything else give nil.
    static func function(inTraceLine line: Substring) -> String? {
        var s = line.drop(while: { $0 == " " || $0 == "\t" || $0 == "|" })
        if s.hasPrefix("[<") {
            guard let close = s.firstIndex(of: "]") else { return nil }
            s = s[s.index(after: close)...].drop(while: { $0 == " " })
        }
        if s.hasPrefix("?") { return nil }
        let token = s.prefix(while: { $0 != " " && $0 != "\t" })
        if let plus = token.range(of: "+0x") {
            let name = token[..<plus.lowerBound]
            guard isSymbol(name), token[plus.upperBound...].contains("/") else { return nil }
            return String(name)
        }
        if s.hasSuffix("[inline]"), isSymbol(token), s.dropFirst(token.count).contains(":") {
            return String(token)
        }
        return nil
    }

    /// The function in `foo+0x1c/0x40` at the start of `text` (after `pc : `, `RIP: 0010:` …).
    static func function(atStartOf text: Substring) -> String? {
        var s = text.drop(while: { $0 == " " })
        // RIP: 0010:[<ffffffff82d4e304>]  [<ffffffff82d4e304>] __memset+0x24/0x30
        while s.hasPrefix("[<") {
            guard let close = s.firstIndex(of: "]") else { return nil }
            s = s[s.index(after: close)...].drop(while: { $0 == " " })
        }
        let token = s.prefix(while: { $0 != " " && $0 != "\t" })
        guard let plus = token.range(of: "+0x") else { return nil }
        let name = token[..<plus.lowerBound]
        return isSymbol(name) ? String(name) : nil
    }

    static func isSymbol(_ s: Substring) -> Bool {
        guard let first = s.first, first == "_" || first.isLetter else { return false }
        return s.allSatisfy { $0 == "_" || $0 == "." || $0 == "$" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
    }

    /// `foo.isra.0`, `foo.constprop.3`, `foo.part.1`, `foo.cold` → `foo`.
    static func normalized(_ name: String) -> String {
        guard let dot = name.firstIndex(of: ".") else { return name }
        return String(name[..<dot])
    }

    /// True for reporting, sanitizer, WARN/BUG, fault-handling, locking,
    /// allocation, printk, scheduling and string/copy helpers.
    static func isGeneric(_ name: String) -> Bool {
        let n = normalized(name)
        if genericExact.contains(n) { return true }
        for p in genericPrefixes where n.hasPrefix(p) { return true }
        return false
    }

    /// Frames where an interrupt or exception entered the kernel: in a stall or
    /// lockup report the code that was running is below the last of these.
    static func isInterruptEntry(_ name: String) -> Bool {
        let n = normalized(name)
        return interruptEntries.contains(n) || n.hasPrefix("asm_sysvec_") || n.hasPrefix("asm_common_interrupt")
    }

    /// Additional generic frames for memory-leak backtraces (the allocation path).
    static func isAllocation(_ name: String) -> Bool {
        let n = normalized(name)
        for p in allocationPrefixes where n.hasPrefix(p) { return true }
        return false
    }

    private static let interruptEntries: Set<String> = [
        "el1h_64_irq", "el1_irq", "el0_irq", "el1h_64_irq_handler", "el1_interrupt",
        "el0t_64_irq", "el0t_64_irq_handler", "el0_interrupt",
        "apic_timer_interrupt", "smp_apic_timer_interrupt", "sysvec_apic_timer_interrupt",
        "common_interrupt", "ret_from_intr", "irq_exit_rcu", "__irq_exit_rcu", "irq_exit",
    ]

    private static let genericExact: Set<String> = [
        "die", "__die", "panic", "nmi_panic", "bug_handler", "kfree", "kvfree", "kfree_sensitive",
        "kzfree", "kfree_const", "vfree", "kmemdup", "kstrdup", "kstrndup", "kstrdup_const",
        "kzalloc", "kcalloc", "kvzalloc", "krealloc", "vzalloc", "vmalloc", "kmalloc",
        "schedule", "__schedule", "invalid_op", "page_fault", "general_protection",
        "do_invalid_op", "do_trap", "do_error_trap", "fixup_bug", "handle_bug",
        "no_context", "bad_area", "__bad_area", "__bad_area_nosemaphore", "bad_area_nosemaphore",
        "do_page_fault", "__do_page_fault", "do_kern_addr_fault", "handle_page_fault",
        "async_page_fault", "do_general_protection", "page_fault_oops", "kernelmode_fixup_or_oops",
        "spin_lock", "spin_unlock", "spin_lock_irq", "spin_lock_irqsave", "spin_lock_bh",
        "spin_unlock_irq", "spin_unlock_irqrestore", "spin_unlock_bh", "read_lock", "write_lock",
        "read_unlock", "write_unlock", "rcu_read_lock", "rcu_read_unlock", "rcu_lock_acquire",
        "rcu_lock_release", "might_sleep", "might_fault", "memcpy", "memmove", "memset", "memcmp",
        "strlen", "strnlen", "strcmp", "strncmp", "strcpy", "strncpy", "strscpy", "strlcpy",
        "strcat", "strchr", "strrchr", "strstr", "memchr", "bcmp", "kthread", "ret_from_fork",
        "ret_from_fork_asm", "worker_thread", "process_one_work", "process_scheduled_works",
        "smpboot_thread_fn", "invoke_syscall", "el0_svc", "do_el0_svc", "el0_svc_common",
        "el0t_64_sync", "el0t_64_sync_handler", "do_syscall_64", "do_syscall_x64", "x64_sys_call",
        "entry_SYSCALL_64", "entry_SYSCALL_64_after_hwframe", "entry_SYSCALL_64_fastpath",
        "el0_da", "el0_ia", "do_notify_resume", "exit_to_user_mode_prepare", "syscall_exit_to_user_mode",
        "fail_dump", "should_fail", "should_fail_ex", "should_failslab", "__should_failslab",
        "check_stack_object", "trace_hardirqs_on", "trace_hardirqs_off", "arch_local_irq_restore",
    ]

    private static let genericPrefixes: [String] = [
        "dump_stack", "__dump_stack", "show_stack", "dump_backtrace", "arch_stack_walk",
        "stack_trace_", "save_stack", "kasan_", "__kasan_", "kmsan_", "__kmsan_", "__msan_",
        "kcsan_", "__kcsan_", "__tsan_", "kfence_", "__kfence_", "__asan_", "asan_", "ubsan_",
        "__ubsan_", "print_report", "print_address_description", "print_trailer", "print_tainted",
        "check_memory_region", "memory_is_", "report_bug", "__report_bug", "__warn", "warn_slowpath",
        "__might_sleep", "___might_sleep", "__might_resched", "__might_fault", "refcount_",
        "__refcount_", "lock_acquire", "__lock_acquire", "lock_release", "__lock_release",
        "lock_acquired", "lock_contended", "lockdep_", "debug_lockdep", "check_noncircular",
        "check_prev_add", "check_prevs_add", "validate_chain", "print_circular_bug",
        "print_usage_bug", "mark_lock", "do_raw_spin", "_raw_spin_", "__raw_spin_", "_raw_read_",
        "_raw_write_", "__raw_read_", "__raw_write_", "queued_spin_lock", "queued_read_lock",
        "queued_write_lock", "native_queued_spin", "__pv_queued", "spin_bug", "spin_dump",
        "rwlock_bug", "mutex_lock", "__mutex_lock", "mutex_unlock", "__mutex_unlock",
        "mutex_trylock", "down_read", "down_write", "__down", "up_read", "up_write", "rwsem_",
        "__rwsem", "percpu_down", "percpu_up", "rt_mutex", "__rt_mutex", "rt_spin_",
        "kmalloc_", "__kmalloc", "kmem_cache_alloc", "kmem_cache_free", "__kmem_cache_",
        "kvmalloc", "__kvmalloc", "slab_", "__slab_", "___slab_", "__cache_free", "cache_free_",
        "free_pages", "__free_pages", "free_unref_page", "alloc_pages", "__alloc_pages",
        "folio_alloc", "__vmalloc", "kmemleak_", "printk", "_printk", "vprintk", "__printk",
        "preempt_schedule", "io_schedule", "context_switch", "__switch_to", "cpu_switch_to",
        "finish_task_switch", "wait_for_completion", "__wait_for_common", "wait_for_common",
        "do_wait_for_common", "schedule_", "__flush_work", "flush_work", "__synchronize_srcu",
        "synchronize_rcu", "synchronize_srcu", "__wait_rcu_gp", "wait_rcu_gp", "rcu_barrier",
        "bit_wait", "out_of_line_wait_on_bit", "__wait_on_bit", "wait_on_bit", "__wait_on_",
        "wait_on_page", "folio_wait", "__folio_lock", "__lock_page", "__cond_resched",
        "_cond_resched", "__memcpy", "__memmove", "__memset", "__memcmp", "copy_to_user",
        "copy_from_user", "_copy_to_user", "_copy_from_user", "__copy_to_user", "__copy_from_user",
        "raw_copy_", "__arch_copy_", "copy_user_", "__arch_clear_user", "clear_user",
        "strncpy_from_user", "do_strncpy_from_user", "instrument_", "check_object_size",
        "__check_object_size", "usercopy_", "check_heap_object", "die_kernel_fault",
        "__die_kernel_fault", "exc_", "asm_exc_", "__do_kernel_fault", "do_mem_abort",
        "do_translation_fault", "do_bad_area", "do_alignment_fault", "el1_abort", "el1_da",
        "el1_ia", "el1_undef", "el1_dbg", "el1_inv", "el1_pc", "el1_sync", "el1h_64_sync",
        "el1h_64_error", "el1_brk64", "el1_bti", "do_debug_exception", "brk_handler",
        "call_break_hook", "call_el1_break_hook", "bug_brk_handler", "arm64_notify_die",
        "do_undefinstr", "do_el1_", "do_sp_pc_abort", "debug_object", "debug_print_object",
        "__debug_object", "debug_check_no_obj_freed", "__list_add_valid", "__list_del_entry_valid",
        "list_add_valid", "__sanitizer_", "lockdep_rcu_suspicious", "__lockdep_",
        "rcu_dump_cpu_stacks", "print_cpu_stall", "check_cpu_stall", "rcu_pending",
        "rcu_sched_clock_irq", "update_process_times", "tick_sched", "tick_nohz",
        "__hrtimer_run_queues", "hrtimer_interrupt", "arch_timer_handler", "handle_percpu_devid_irq",
        "generic_handle_domain_irq", "handle_domain_irq", "gic_handle_irq", "call_on_irq_stack",
        "do_interrupt_handler", "nmi_cpu_backtrace", "nmi_trigger_cpumask_backtrace",
        "arch_trigger_cpumask_backtrace", "trigger_single_cpu_backtrace", "dump_cpu_task",
        "watchdog_timer_fn", "watchdog_hardlockup", "watchdog_overflow_callback",
        "__perf_event_overflow", "check_hung_uninterruptible_tasks", "watchdog", "hungtask",
        "sched_show_task", "show_regs", "__show_regs", "lapic_", "__sysvec_", "sysvec_",
        "handle_irq", "__handle_irq", "irq_exit", "__irq_exit", "asm_sysvec_", "native_safe_halt",
        "test_and_set_bit", "test_and_clear_bit", "test_and_change_bit", "set_bit", "clear_bit",
        "change_bit", "__set_bit", "__clear_bit", "test_bit", "atomic_", "atomic64_", "arch_atomic",
        "raw_atomic", "dev_vprintk", "dev_printk", "__dev_printk", "_dev_info", "_dev_err", "_dev_warn",
        "__netdev_printk", "netdev_info", "netdev_err", "netdev_warn", "netdev_printk",
    ]

    private static let allocationPrefixes: [String] = [
        "kmemleak_", "kmalloc", "__kmalloc", "kzalloc", "kcalloc", "kmem_cache_alloc",
        "slab_post_alloc_hook", "slab_alloc", "__slab_alloc", "kmemdup", "kstrdup", "krealloc",
        "__krealloc", "kvmalloc", "__kvmalloc", "kvzalloc", "vmalloc", "__vmalloc", "vzalloc",
        "alloc_pages", "__alloc_pages", "folio_alloc", "alloc_slab_page", "allocate_slab",
        "new_slab", "__alloc_skb", "__kmem_cache_alloc", "kmalloc_trace", "__do_kmalloc",
        "___kmalloc", "kmem_cache_zalloc", "memdup_user", "pcpu_alloc", "__alloc_percpu",
        "alloc_percpu", "__kmalloc_node_track_caller", "kmalloc_reserve", "kstrndup",
        "__kmem_cache_alloc_node", "trace_kmalloc", "kasan_", "__kasan_",
    ]
}
