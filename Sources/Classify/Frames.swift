/// Stack-frame parsing, and the one place that says which frames never get the blame.
///
/// A kernel report's stack starts in the machinery that noticed the bug (dump_stack, the
/// sanitizer, the WARN handler, the allocator, a lock) and only further down reaches the
/// code that has it. The guilty frame is the first one that is not such machinery; that
/// is what syzbot puts in a title, and what the signature keys on. The groups below are
/// the machinery, written from the reports in the syzkaller corpus and our own arm64 logs.
enum Frames {
    /// The function of a stack-trace line: ` foo+0x1c/0x40`, ` [<ffffffff8123>] foo+0x1c/0x40 [mod]`,
    /// ` foo+0x1c/0x40 (P)`, an arm32 ` [<80b10c70>] (memset) from [<8062eec8>] (caller+0x154/0x3c4)`
    /// or a powerpc ` [c0000000f2ef3b10] [c000000000b7f2b8] foo+0x1c/0x40 (unreliable)`.
    /// Unreliable frames (`? foo+…`) and anything else give nil, and so does a symbolizer's
    /// inline line (` foo net/x.c:12 [inline]`): that code was compiled into the next frame,
    /// which is the one a title names (as syzbot's do).
    static func function(inTraceLine line: Substring) -> String? {
        traceLineFunction(line)
    }

    /// The caller an arm32 backtrace line names after "from": `(memset) from [<…>] (caller+0x…)`.
    static func arm32Caller(inTraceLine line: Substring) -> String? {
        guard let from = line.range(of: ") from [<") else { return nil }
        let rest = line[from.upperBound...]
        guard let open = rest.firstIndex(of: "("), let close = rest[open...].firstIndex(of: ")") else { return nil }
        let name = rest[rest.index(after: open)..<close]
        let bare = name.range(of: "+0x").map { name[..<$0.lowerBound] } ?? name
        return isSymbol(bare) ? String(bare) : nil
    }

    private static func traceLineFunction(_ line: Substring) -> String? {
        var s = line.drop(while: { $0 == " " || $0 == "\t" || $0 == "|" })
        var sawAddress = false
        while s.hasPrefix("[<") || (s.hasPrefix("[c") && s.count > 12) || s.hasPrefix("[0") || s.hasPrefix("[f") {
            guard let close = s.firstIndex(of: "]") else { return nil }
            s = s[s.index(after: close)...].drop(while: { $0 == " " })
            sawAddress = true
        }
        if s.hasPrefix("?") { return nil }
        if sawAddress, s.hasPrefix("("), let close = s.firstIndex(of: ")") {
            // arm32: "(memset) from [<…>] (caller+0x…)": the first name is the frame.
            let name = s[s.index(after: s.startIndex)..<close]
            let bare = name.range(of: "+0x").map { name[..<$0.lowerBound] } ?? name
            return isSymbol(bare) ? String(bare) : nil
        }
        let token = s.prefix(while: { $0 != " " && $0 != "\t" })
        if let plus = token.range(of: "+0x") {
            let name = token[..<plus.lowerBound]
            guard isSymbol(name), token[plus.upperBound...].contains("/") else { return nil }
            return String(name)
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
        let token = s.prefix(while: { $0 != " " && $0 != "\t" && $0 != "," })
        guard let plus = token.range(of: "+0x") else { return nil }
        let name = token[..<plus.lowerBound]
        return isSymbol(name) ? String(name) : nil
    }

    static func isSymbol(_ s: Substring) -> Bool {
        guard let first = s.first, first == "_" || first.isLetter else { return false }
        return s.allSatisfy { $0 == "_" || $0 == "." || $0 == "$" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
    }

    /// `foo.isra.0`, `foo.constprop.3`, `foo.part.1`, `foo.cold` → `foo`; syscall entry
    /// wrappers (`__x64_sys_foo`, `__se_sys_foo`, `__do_sys_foo`, `SyS_foo`, `SYSC_foo`,
    /// `__arm64_sys_foo`, `ksys_foo`) → `sys_foo`, the name syzbot's titles use.
    static func normalized(_ name: String) -> String {
        var n = name
        if let dot = n.firstIndex(of: ".") { n = String(n[..<dot]) }
        // Old kernels' 32-bit compat entry points: syzbot names these by the call alone.
        if n.hasPrefix("compat_SyS_") { return String(n.dropFirst("compat_SyS_".count)) }
        for p in syscallWrappers where n.hasPrefix(p) {
            return "sys_" + n.dropFirst(p.count)
        }
        return n
    }

    private static let syscallWrappers = [
        "__x64_sys_", "__ia32_sys_", "__ia32_compat_sys_", "__x32_compat_sys_", "__se_sys_", "__do_sys_",
        "__arm64_sys_", "__arm64_compat_sys_", "__riscv_sys_", "__s390x_sys_", "__se_compat_sys_",
        "__do_compat_sys_", "SyS_", "SYSC_", "C_SYSC_",
    ]

    /// True when the frame is machinery in every kind of report (see ``generic``).
    static func isGeneric(_ name: String) -> Bool { generic.matches(name) }

    /// Frames where an interrupt or exception entered the kernel: in a stall or lockup
    /// report the code that was running is below the last of these.
    static func isInterruptEntry(_ name: String) -> Bool { interruptEntries.matches(name) }

    // MARK: - The groups

    /// Frames skipped for every kind of report.
    static let generic = FrameSet.union([
        reporting, sanitizers, locking, allocation, listAndTrees, printk, stringsAndCopies,
        entryCode, deferredWork, scheduling, bitsAndAtomics, faultHandling, helpers,
    ])

    /// Reporting itself: stack dumps, WARN/BUG/panic, oops printing.
    static let reporting = FrameSet(
        exact: [
            "die", "__die", "panic", "nmi_panic", "bug_handler", "fixup_bug", "handle_bug", "do_trap",
            "do_error_trap", "do_invalid_op", "invalid_op", "report_bug", "__report_bug", "show_regs",
            "__show_regs", "sched_show_task", "oops_end", "die_body", "__warn_printk", "warn_slowpath_fmt",
            "warn_slowpath_null", "warn_slowpath_common", "__warn", "arch_stack_walk", "walk_stackframe",
            "unwind_next_frame", "unwind_frame", "unwind_backtrace", "arm64_notify_die", "do_undefinstr",
            "bug_brk_handler", "brk_handler", "call_break_hook", "call_el1_break_hook", "do_debug_exception",
            "rust_helper_BUG", "assertfail", "get_taint", "null", "__die_kernel_fault", "die_kernel_fault", "check_panic_on_warn",
            "__read_once_word_nocheck", "timer_is_static_object", "work_is_static_object", "free_page_is_bad_report",
            "free_page_is_bad", "folios_put_refs", "folio_unlock", "__try_to_del_timer_sync", "device_destroy",
            "va_format", "reacquire_held_locks", "mark_lock_irq", "find_lock_entries", "release_pages", "__folio_put",
        ],
        prefixes: [
            "dump_stack", "__dump_stack", "show_stack", "dump_backtrace", "stack_trace_", "save_stack",
            "print_address_description", "print_report", "print_trailer", "print_tainted", "print_circular_bug",
            "print_usage_bug", "print_unlock_imbalance_bug", "print_bad_irq_dependency", "print_deadlock_bug",
            "print_lock", "print_irqtrace_events", "nmi_cpu_backtrace", "nmi_trigger_cpumask_backtrace",
            "arch_trigger_cpumask_backtrace", "trigger_single_cpu_backtrace", "dump_cpu_task", "rcu_dump_cpu_stacks",
            "print_cpu_stall", "print_other_cpu_stall", "check_cpu_stall", "rcu_check_callbacks", "rcu_pending",
            "rcu_sched_clock_irq", "watchdog_timer_fn", "watchdog_hardlockup", "watchdog_overflow_callback",
            "check_hung_uninterruptible_tasks", "check_hung_task", "watchdog", "hungtask",
            "__warn_", "kunit_", "fortify_panic", "__fortify_panic", "skb_panic", "skb_over_panic",
            "skb_under_panic", "__reiserfs_panic", "usercopy_abort", "__bad_page", "bad_page", "__schedule_bug",
            "check_preemption_disabled", "debug_smp_processor_id", "__this_cpu_preempt_check",
            "__list_add_valid_or_report", "__list_del_entry_valid_or_report",
        ]
    )

    /// Sanitizers, debug objects, coverage and fault injection.
    static let sanitizers = FrameSet(
        exact: [
            "check_memory_region", "check_memory_region_inline", "handle_overflow", "do_tag_check_fault",
            "create_object", "lockdep_rcu_suspicious", "fail_dump", "should_fail",
            "should_fail_ex", "should_failslab", "__should_failslab", "qlink_free",
            "quarantine_put", "debug_object_free", "free_obj_work",
        ],
        prefixes: [
            "kasan_", "__kasan_", "kmsan_", "__kmsan_", "__msan_", "kcsan_", "__kcsan_", "__tsan_", "kfence_",
            "__kfence_", "__asan_", "asan_", "ubsan_", "__ubsan_", "memory_is_", "__hwasan_", "hwasan_",
            "__sanitizer_", "debug_object", "debug_print_object", "__debug_object", "debug_check_no_obj_freed",
            "kmemleak_", "__kmemleak",
        ]
    )

    /// Locks, lockdep, RCU read sections, preemption and softirq toggling.
    static let locking = FrameSet(
        exact: [
            "lock_acquire", "__lock_acquire", "lock_release", "__lock_release", "lock_acquired", "lock_contended",
            "register_lock_class", "look_up_lock_class", "hlock_class", "check_noncircular", "check_prev_add",
            "check_prevs_add", "validate_chain", "mark_lock", "mark_usage", "mark_held_locks", "lock_downgrade", "check_usage", "check_irq_usage",
            "check_usage_backwards", "check_usage_forwards",
            "lock_is_held_type", "__lock_is_held", "lock_is_held", "down", "up", "down_trylock",
            "spin_lock", "spin_unlock", "spin_lock_irq", "spin_lock_irqsave", "spin_lock_bh", "spin_unlock_irq",
            "spin_unlock_irqrestore", "spin_unlock_bh", "read_lock", "write_lock", "read_unlock", "write_unlock",
            "osq_lock", "mutex_optimistic_spin", "might_sleep", "might_fault", "__local_bh_enable_ip",
            "local_bh_enable", "_local_bh_enable", "__local_bh_disable_ip", "local_bh_disable",
            "debug_check_no_locks_held", "debug_check_no_locks_freed", "lockdep_hardirqs_on",
            "trace_hardirqs_on", "trace_hardirqs_off", "arch_local_irq_restore", "preempt_count_add",
            "preempt_count_sub", "finish_wait", "prepare_to_wait", "prepare_to_wait_event",
            "prepare_to_wait_exclusive", "lock_timer_base", "mutex_remove_waiter",
            "task_blocks_on_rt_mutex", "__task_rq_lock", "task_rq_lock",
        ],
        prefixes: [
            "lockdep_", "__lockdep", "debug_lockdep", "do_raw_spin", "_raw_spin_", "__raw_spin_", "_raw_read_",
            "_raw_write_", "__raw_read_", "__raw_write_", "do_raw_read", "do_raw_write", "queued_spin_lock",
            "queued_read_lock", "queued_write_lock", "native_queued_spin", "__pv_queued", "pv_queued", "spin_bug",
            "spin_dump", "rwlock_bug", "mutex_lock", "__mutex_lock", "mutex_unlock", "__mutex_unlock",
            "mutex_trylock", "__mutex_trylock", "ww_mutex_", "__ww_mutex_", "down_read", "down_write", "__down",
            "up_read", "up_write", "__up_", "down_interruptible", "down_killable", "down_timeout", "rwsem_",
            "__rwsem", "call_rwsem_", "percpu_down", "percpu_up", "percpu_rwsem", "__percpu_down", "__percpu_up",
            "rt_mutex", "__rt_mutex", "rt_spin_", "rcu_read_lock", "rcu_read_unlock", "__rcu_read_",
            "rcu_lock_acquire", "rcu_lock_release", "__might_sleep", "___might_sleep", "__might_resched",
            "__might_fault", "_atomic_dec_and_lock", "atomic_dec_and_", "refcount_dec_and_lock",
            "refcount_dec_and_mutex_lock", "__seqprop", "seqcount_", "read_seqcount", "write_seqcount",
            "__read_seqcount", "__write_seqcount", "raw_spin_", "raw_read_", "raw_write_", "bit_spin_",
            "__bit_spin_", "preempt_schedule", "__preempt_schedule", "lock_sock_nested", "__lock_sock",
            "srcu_read_", "__srcu_read_", "release_sock", "lock_sock",
        ]
    )

    /// Allocating and freeing memory: a bug found there belongs to its caller.
    static let allocation = FrameSet(
        exact: [
            "kfree", "kvfree", "kfree_sensitive", "kzfree", "kfree_const", "vfree", "kmemdup", "kmemdup_nul",
            "kstrdup", "kstrndup", "kstrdup_const", "kzalloc", "kcalloc", "kvzalloc", "krealloc", "vzalloc",
            "vmalloc", "kmalloc", "new_slab", "allocate_slab", "alloc_slab_page", "memdup_user", "memdup_user_nul",
            "vmemdup_user", "strndup_user", "kvasprintf", "kvasprintf_const", "kasprintf", "alloc_page_interleave",
            "free_pcppages_bulk", "free_unref_page_commit", "put_page", "__put_page", "kfree_skb", "kfree_skbmem",
            "__kfree_skb", "kfree_skb_list", "kfree_skb_reason", "skb_release_data",
            "skb_release_all", "__alloc_skb", "alloc_skb", "__netdev_alloc_skb", "kfree_rcu_work", "kvfree_call_rcu",
            "pcpu_alloc", "__alloc_percpu", "__alloc_percpu_gfp", "free_percpu", "kmalloc_slab",
        ],
        prefixes: [
            "kmalloc_", "__kmalloc", "___kmalloc", "kmem_cache_alloc", "kmem_cache_free", "kmem_cache_zalloc",
            "__kmem_cache_", "kvmalloc", "__kvmalloc", "kvrealloc", "slab_", "__slab_", "___slab_", "__cache_free",
            "cache_free_", "cache_alloc", "____cache_alloc", "__cache_alloc", "free_pages", "__free_pages",
            "free_unref_page", "free_unref_folio", "__free_one_page", "free_one_page", "alloc_pages", "__alloc_pages",
            "__alloc_frozen_pages", "alloc_frozen_pages", "folio_alloc", "__folio_alloc", "__vmalloc", "vmalloc_",
            "__vfree", "vfree_", "vzalloc_", "kvfree_", "kfree_", "__kfree", "__do_kmalloc", "do_kmalloc",
            "trace_kmalloc", "kmalloc_trace", "__kmalloc_node_track_caller", "kmalloc_reserve", "krealloc_",
            "__krealloc", "kmalloc_array", "kcalloc_", "kzalloc_", "kmemdup_", "__kmemdup", "free_page_and_swap",
            "__free_slab", "discard_slab", "mempool_", "__mempool_", "get_page_from_freelist",
            "prep_new_page", "post_alloc_hook", "free_pages_prepare", "__free_pages_ok", "dma_pool_",
            "kmem_cache_destroy",
        ]
    )

    /// Socket-buffer helpers that BUG on a caller's bad length, and the driver core that a
    /// driver's bug reaches through (device_del on a freed device, a kobject added twice).
    static let helpers = FrameSet(
        exact: [
            "skb_put", "skb_push", "skb_pull", "__skb_pull", "__skb_push", "skb_over_panic", "skb_under_panic",
            "skb_panic", "pskb_expand_head", "__pskb_pull_tail", "skb_copy_bits", "device_del", "device_add",
            "device_unregister", "kobject_del", "get_device_parent", "dpm_sysfs_remove", "device_create_file",
            "sysfs_remove_group", "sysfs_create_group", "internal_create_group", "proc_create_data", "proc_register",
            "__stack_chk_fail", "__stack_chk_guard", "destroy_workqueue", "try_to_grab_pending", "put_device",
            "tty_unregister_device", "hwrng_unregister", "i2c_del_adapter", "rollback_registered_many",
            "unregister_netdevice_many", "iput", "dput", "truncate_inode_pages_range", "truncate_inode_pages_final",
            "folio_batch_move_lru", "reiserfs_write_lock", "program_check_exception", "do_trap_break",
            "strnstr", "aesti_encrypt", "aesti_decrypt", "cipher_crypt_one", "program_check_common", "folio_add_lru",
            "lru_add_fn", "sk_stop_timer_sync", "sk_stop_timer", "logic_inb", "logic_inw", "logic_inl", "logic_outb",
            "logic_outw", "logic_outl", "__raw_readb", "__raw_readw", "__raw_readl",
            "__raw_readq", "__raw_writeb", "__raw_writew", "__raw_writel", "__raw_writeq",
        ],
        prefixes: ["kobject_", "__kobject_", "sysfs_remove_", "kernfs_remove", "__kernfs_remove", "perf_trace_",
                   "__timer_delete", "timer_delete", "__del_timer", "trace_event_raw_event_", "__traceiter_", "__trace_"]
    )

    /// List debugging and the generic trees and tables that a corrupted caller breaks.
    static let listAndTrees = FrameSet(
        exact: [
            "__list_add_valid", "__list_del_entry_valid", "list_add_valid", "__list_del_entry", "__list_add",
            "list_del", "list_del_init", "list_add", "list_add_tail", "list_move", "list_move_tail",
            "__list_del", "hlist_del", "__hlist_del", "hlist_del_init", "hlist_add_head", "hlist_del_rcu",
            "list_del_rcu", "rb_erase", "rb_next", "rb_prev", "rb_first", "rb_last", "rb_insert_color",
            "__rb_insert_augmented", "__rb_erase_color", "rb_erase_cached", "rb_insert_color_cached",
            "rb_replace_node", "klist_next", "klist_prev", "klist_iter_exit", "klist_del", "klist_remove",
            "xas_start", "xas_load", "xas_store", "xas_find", "xa_load", "xa_erase",
        ],
        prefixes: ["rhashtable_", "__rhashtable_", "rht_", "__rht_", "radix_tree_", "__radix_tree_", "idr_", "ida_"]
    )

    /// printk and its device and network wrappers.
    static let printk = FrameSet(
        exact: [
            "printk", "_printk", "vprintk", "vprintk_emit", "vprintk_default", "vprintk_func", "console_unlock",
            "dev_printk", "__dev_printk", "dev_printk_emit", "dev_vprintk_emit", "_dev_info", "_dev_err",
            "_dev_warn", "_dev_notice", "netdev_info", "netdev_err", "netdev_warn", "netdev_printk",
            "__netdev_printk", "hex_dump_to_buffer", "print_hex_dump", "vsnprintf", "snprintf", "sprintf",
            "scnprintf", "vscnprintf", "vsprintf", "string", "hex_string", "pointer", "format_decode", "number",
            "widen_string", "string_nocheck", "dentry_name", "ip6_addr_string", "ip4_addr_string",
            "bstr_printf", "kvasprintf", "seq_printf", "seq_vprintf",
        ],
        prefixes: ["printk_", "__printk", "vprintk_", "console_emit", "console_flush", "dev_warn", "dev_err", "dev_info"]
    )

    /// String, memory, copy and checksum helpers.
    static let stringsAndCopies = FrameSet(
        exact: [
            "strlen", "strnlen", "strcmp", "strncmp", "strcpy", "strncpy", "strlcpy", "strcat", "strncat",
            "strlcat", "strchr", "strrchr", "strstr", "strsep", "strnchr", "strpbrk", "strspn", "strcspn", "memchr",
            "memchr_inv", "bcmp", "memcmp", "memscan", "read_word_at_a_time", "check_object_size",
            "__check_object_size", "check_heap_object", "__check_heap_object", "check_stack_object",
            "strncpy_from_user", "do_strncpy_from_user", "strnlen_user", "clear_user", "__arch_clear_user",
            "_copy_to_iter", "_copy_from_iter", "copy_to_iter", "copy_from_iter", "copy_page_to_iter",
            "copy_page_from_iter", "copyout", "copyin", "_copy_from_iter_full", "copy_from_iter_full",
            "csum_partial", "csum_partial_copy_generic", "__phys_addr", "__virt_addr_valid", "__virt_to_phys",
            "virt_to_phys", "phys_to_virt", "jhash", "jhash2", "__jhash_nwords", "siphash", "prandom_u32",
            "get_random_u32", "memzero_explicit", "strscpy", "sized_strscpy", "__strscpy",
        ],
        prefixes: [
            "memcpy", "memmove", "memset", "__memcpy", "__memmove", "__memset", "memcpy_", "copy_to_user",
            "copy_from_user", "_copy_to_user", "_copy_from_user", "__copy_to_user", "__copy_from_user",
            "raw_copy_", "__arch_copy_", "copy_user_", "__copy_user", "instrument_", "usercopy_", "__x86_indirect_",
            "__x86_return_thunk", "crc32", "__crc32", "crc_", "crc16", "crc_itu", "crc_t10dif", "crc64", "__strscpy",
            "strscpy_", "__fortify_", "fortify_", "copy_mc_", "__get_user_", "__put_user_", "get_user_",
        ]
    )

    /// Kernel entry and exit: syscalls, exceptions and interrupts.
    static let entryCode = FrameSet(
        exact: [
            "kthread", "ret_from_fork", "ret_from_fork_asm", "invoke_syscall", "el0_svc", "do_el0_svc",
            "el0_svc_common", "el0t_64_sync", "el0t_64_sync_handler", "el0t_32_sync", "el0t_32_sync_handler",
            "do_syscall_64", "do_syscall_x64", "do_syscall_32_irqs_on", "do_fast_syscall_32", "x64_sys_call",
            "ia32_sys_call", "do_int80_syscall_32", "el0_da", "el0_ia", "do_notify_resume",
            "exit_to_user_mode_prepare", "syscall_exit_to_user_mode", "exit_to_user_mode_loop",
            "syscall_exit_to_user_mode_work", "ret_fast_syscall", "handle_exception",
            "do_trap_ecall_u", "resume_user_mode_work", "ret_to_user", "work_pending", "do_work_pending",
            "vector_swi", "system_call_exception", "system_call_common",
        ],
        prefixes: [
            "entry_SYSCALL", "entry_SYSENTER", "entry_INT80", "syscall_exit_", "__syscall_exit", "el0_svc_common",
            "el1h_64_", "el1_", "el0_sync", "el0_irq", "el0_error", "el0_fiq", "el0_dbg", "el0_undef", "el0_inv",
            "el0_fpsimd", "el0_sve", "el0_sp", "el0_pc", "el0_interrupt", "el1t_", "el0t_", "do_el1_", "do_el0_", "asm_exc_", "asm_sysvec_", "asm_common_",
            "__sysvec_", "sysvec_", "apic_timer_interrupt", "smp_apic_timer_interrupt", "common_interrupt",
            "ret_from_intr", "irq_exit", "__irq_exit", "do_IRQ", "handle_irq", "__handle_irq", "handle_domain_irq",
            "generic_handle_", "gic_handle_irq", "call_on_irq_stack", "do_interrupt_handler", "handle_percpu_devid_irq",
            "arch_timer_handler", "hrtimer_interrupt", "__hrtimer_run_queues", "hrtimer_run_queues",
            "tick_sched", "tick_nohz", "update_process_times", "lapic_", "native_safe_halt", "default_idle",
            "arch_cpu_idle", "do_idle", "cpu_startup_entry", "cpuidle_", "irq_enter", "__irq_enter", "__do_softirq",
            "do_softirq", "__softirqentry", "handle_softirqs", "run_ksoftirqd", "smpboot_thread_fn", "irq_thread",
        ]
    )

    /// Deferred work: workqueues, timers, RCU callbacks, tasklets.
    static let deferredWork = FrameSet(
        exact: [
            "worker_thread", "process_scheduled_works", "rescuer_thread", "call_timer_fn",
            "expire_timers", "run_timer_base", "tasklet_action",
            "tasklet_action_common", "tasklet_hi_action", "rcu_do_batch", "rcu_core", "rcu_core_si",
            "rcu_process_callbacks", "__rcu_reclaim", "rcu_cpu_kthread", "queue_work_on", "__queue_work",
            "insert_work", "delayed_work_timer_fn", "queue_delayed_work_on", "__queue_delayed_work",
            "mod_timer", "__mod_timer", "add_timer", "del_timer", "del_timer_sync", "try_to_del_timer_sync",
            "timer_delete_sync", "timer_delete", "kfree_call_rcu", "flush_workqueue",
            "__flush_workqueue", "drain_workqueue", "flush_work", "__flush_work", "cancel_work_sync",
            "__cancel_work_timer", "__cancel_work_sync", "cancel_delayed_work_sync", "__cancel_work",
            "kthread_stop", "kthread_flush_work", "kthread_worker_fn", "task_work_run", "irq_work_run",
            "irq_work_single", "schedule_work", "queue_work",
        ],
        prefixes: ["rcu_nocb_", "hrtimer_start", "hrtimer_cancel", "hrtimer_try_to_cancel"]
    )

    /// Sleeping and waiting: a hung task is stuck in its caller, not in these.
    static let scheduling = FrameSet(
        exact: [
            "schedule", "__schedule", "context_switch", "__switch_to", "__switch_to_asm", "cpu_switch_to",
            "finish_task_switch", "schedule_timeout", "schedule_preempt_disabled", "io_schedule", "io_schedule_timeout",
            "wait_for_completion", "__wait_for_common", "wait_for_common", "do_wait_for_common",
            "wait_for_completion_timeout", "wait_for_completion_interruptible", "wait_for_completion_killable",
            "wait_for_completion_io", "wait_for_completion_state", "__synchronize_srcu", "synchronize_srcu",
            "synchronize_srcu_expedited", "synchronize_net", "__wait_rcu_gp", "wait_rcu_gp", "rcu_barrier",
            "bit_wait", "bit_wait_io", "out_of_line_wait_on_bit", "out_of_line_wait_on_bit_lock", "__wait_on_bit",
            "__wait_on_bit_lock", "wait_on_bit", "__cond_resched", "_cond_resched", "__wait_on_buffer",
            "wait_on_page_bit", "wait_on_page_bit_common", "__lock_page", "__folio_lock", "folio_wait_bit_common",
            "folio_wait_bit", "folio_wait_writeback", "wait_on_page_writeback", "__filemap_fdatawait_range",
            "filemap_fdatawait_range", "filemap_fdatawait", "filemap_fdatawait_keep_errors", "filemap_write_and_wait",
            "filemap_write_and_wait_range", "usb_start_wait_urb", "usb_bulk_msg", "usb_interrupt_msg",
            "usb_control_msg", "__wake_up", "__wake_up_common", "__wake_up_common_lock", "__wake_up_sync_key",
            "wake_up_process", "try_to_wake_up", "autoremove_wake_function", "default_wake_function",
            "woken_wake_function", "wait_woken", "do_nanosleep", "hrtimer_nanosleep",
        ],
        prefixes: ["schedule_timeout_", "schedule_hrtimeout", "__wait_event", "wait_event_", "__wake_up_locked", "wake_up_bit", "__wake_up_bit", "wake_up_var", "wait_var_event", "__lock_page_", "folio_wait"]
    )

    /// Bit operations, atomics and refcount helpers.
    static let bitsAndAtomics = FrameSet(
        exact: [
            "test_and_set_bit", "test_and_clear_bit", "test_and_change_bit", "set_bit", "clear_bit", "change_bit",
            "__set_bit", "__clear_bit", "test_bit", "find_next_bit", "find_first_bit", "__bitmap_weight",
        ],
        prefixes: ["atomic_", "atomic64_", "arch_atomic", "raw_atomic", "refcount_", "__refcount_", "percpu_ref_", "__percpu_ref_", "kref_", "kobject_put", "kobject_release"]
    )

    /// Page-fault and exception handling code that runs on behalf of the faulting code.
    static let faultHandling = FrameSet(
        exact: [
            "page_fault", "general_protection", "do_general_protection", "no_context", "bad_area", "__bad_area",
            "bad_area_nosemaphore", "do_page_fault", "__do_page_fault",
            "do_kern_addr_fault", "do_user_addr_fault", "handle_page_fault", "async_page_fault", "page_fault_oops",
            "kernelmode_fixup_or_oops", "do_mem_abort", "do_translation_fault", "__do_kernel_fault", "do_bad_area",
            "do_alignment_fault", "do_sp_pc_abort", "do_DataAbort", "do_PrefetchAbort", "__do_user_fault",
            "do_bad", "spurious_kernel_fault", "fixup_exception", "ex_handler_default", "do_kernel_fault",
            "do_sea", "do_serror", "bad_mode", "__bad_stack", "handle_bad_stack", "do_double_fault",
            "exc_double_fault", "do_stack_segment", "do_divide_error",
        ],
        prefixes: ["exc_", "do_el1_", "el1_abort", "el1_da", "el1_ia", "el1_undef", "el1_dbg", "el1_inv", "el1_pc", "el1_sync", "el1h_64_sync", "el1h_64_error", "el1_brk64", "el1_bti"]
    )

    /// Interrupt and exception entry frames, for finding the interrupted code of a stall.
    static let interruptEntries = FrameSet(
        exact: [
            "el1h_64_irq", "el1_irq", "el0_irq", "el1h_64_irq_handler", "el1_interrupt", "el0t_64_irq",
            "el0t_64_irq_handler", "el0_interrupt", "apic_timer_interrupt", "smp_apic_timer_interrupt",
            "sysvec_apic_timer_interrupt", "common_interrupt", "ret_from_intr", "irq_exit_rcu", "__irq_exit_rcu",
            "irq_exit", "__irq_svc", "__irq_usr", "handle_exception",
        ],
        prefixes: ["asm_sysvec_", "asm_common_interrupt", "smp_apic_timer_interrupt", "apic_timer_interrupt"]
    )
}

/// A set of function names given as exact names and prefixes; matched on the name
/// without compiler suffixes (`.isra.0`, `.cold`).
struct FrameSet: Sendable {
    var exact: Set<String>
    var prefixes: [String]

    init(exact: Set<String> = [], prefixes: [String] = []) {
        self.exact = exact
        self.prefixes = prefixes
    }

    static func union(_ sets: [FrameSet]) -> FrameSet {
        FrameSet(exact: sets.reduce(into: Set<String>()) { $0.formUnion($1.exact) }, prefixes: sets.flatMap(\.prefixes))
    }

    func matches(_ name: String) -> Bool {
        var n = Substring(name)
        if let dot = n.firstIndex(of: ".") { n = n[..<dot] }
        if exact.contains(String(n)) { return true }
        for p in prefixes where n.hasPrefix(p) { return true }
        return false
    }
}

/// The entry points that name what a stalled task was doing.
enum Stall {
    /// Functions that call a handler chosen at run time; the handler they called is the anchor.
    static let dispatchers: Set<String> = [
        "vfs_read", "__vfs_read", "vfs_write", "__vfs_write", "new_sync_read", "new_sync_write", "do_iter_readv_writev",
        "do_iter_read", "do_iter_write", "vfs_iter_write", "vfs_iter_read", "vfs_ioctl", "do_vfs_ioctl", "sys_ioctl",
        "compat_sys_ioctl", "sys_compat_ioctl", "sock_sendmsg", "__sock_sendmsg", "sock_sendmsg_nosec",
        "____sys_sendmsg", "sock_common_setsockopt", "__sys_setsockopt", "sock_common_getsockopt", "__sys_getsockopt", "sock_setsockopt", "__netif_receive_skb_core",
        "__netif_receive_skb_one_core", "__netif_receive_skb_list_core", "__netif_receive_skb", "call_timer_fn",
        "__hrtimer_run_queues", "process_one_work", "__fput", "do_dentry_open", "__do_fault", "mmap_region",
        "rtnetlink_rcv_msg", "nfnetlink_rcv_msg", "tasklet_action_common", "__do_softirq", "handle_softirqs",
        "__sys_sendto", "__sys_recvfrom", "sock_write_iter", "sock_read_iter", "sock_ioctl", "__sys_connect",
        "__sys_bind", "__sys_accept4", "__sys_listen", "sock_close", "__sock_release", "call_write_iter",
        "call_read_iter", "smp_call_function_many", "flush_smp_call_function_queue",
        "generic_smp_call_function_single_interrupt",
    ]
    /// Functions that are the anchor themselves wherever they are found.
    static let anchors: Set<String> = [
        "kvm_vcpu_ioctl", "kvm_vm_ioctl", "ipv6_rcv", "ip_rcv", "ip_list_rcv", "br_handle_frame", "smp_call_function",
        "smp_call_function_many", "smp_call_function_single", "smp_call_function_many_cond", "on_each_cpu",
        "on_each_cpu_mask", "on_each_cpu_cond_mask",
    ]
    /// Anchors named by what they are for: the cross-CPU call helpers are all "smp_call_function".
    static let anchorNames: [String: String] = [
        "smp_call_function_many": "smp_call_function", "smp_call_function_single": "smp_call_function",
        "smp_call_function_many_cond": "smp_call_function", "on_each_cpu": "smp_call_function",
        "on_each_cpu_mask": "smp_call_function", "on_each_cpu_cond_mask": "smp_call_function",
    ]
    /// `sys_`-named helpers that are not system calls.
    static let notSyscalls: Set<String> = ["sys_call", "sys_ni_syscall"]
    /// Allocation wrappers a leak's backtrace passes through before its caller.
    static let leakWrappers: Set<String> = ["kvasprintf_const", "kvasprintf", "kasprintf", "create_object", "alloc_inode"]
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
