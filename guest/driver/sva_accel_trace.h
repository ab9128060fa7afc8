/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Trace events of the sva-accel driver: when a binding starts and ends and
 * which PASID each job ran with. The host's lifecycle oracles match these
 * against the kernel's own PASID allocate/free events, keyed by mm and PASID.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM sva_accel

#if !defined(SVA_ACCEL_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define SVA_ACCEL_TRACE_H

#include <linux/sched.h>
#include <linux/tracepoint.h>

TRACE_EVENT(sva_accel_bind,
	TP_PROTO(struct mm_struct *mm, u32 pasid, int mode, int ret),
	TP_ARGS(mm, pasid, mode, ret),
	TP_STRUCT__entry(
		__field(pid_t, pid)
		__array(char, comm, TASK_COMM_LEN)
		__field(unsigned long, mm)
		__field(u32, pasid)
		__field(int, mode)
		__field(int, ret)
	),
	TP_fast_assign(
		__entry->pid = current->tgid;
		memcpy(__entry->comm, current->comm, TASK_COMM_LEN);
		__entry->mm = (unsigned long)mm;
		__entry->pasid = pasid;
		__entry->mode = mode;
		__entry->ret = ret;
	),
	TP_printk("pid=%d comm=%s mm=0x%lx pasid=%d mode=%s ret=%d",
		  __entry->pid, __entry->comm, __entry->mm, (int)__entry->pasid,
		  __entry->mode == 1 ? "sva" : "dma", __entry->ret)
);

TRACE_EVENT(sva_accel_unbind,
	TP_PROTO(struct mm_struct *mm, u32 pasid, pid_t bind_pid, u8 by),
	TP_ARGS(mm, pasid, bind_pid, by),
	TP_STRUCT__entry(
		__field(pid_t, pid)
		__array(char, comm, TASK_COMM_LEN)
		__field(pid_t, bind_pid)
		__field(unsigned long, mm)
		__field(u32, pasid)
		__field(u8, by)
	),
	TP_fast_assign(
		__entry->pid = current->tgid;
		memcpy(__entry->comm, current->comm, TASK_COMM_LEN);
		__entry->bind_pid = bind_pid;
		__entry->mm = (unsigned long)mm;
		__entry->pasid = pasid;
		__entry->by = by;
	),
	TP_printk("pid=%d comm=%s bind_pid=%d mm=0x%lx pasid=%d by=%s",
		  __entry->pid, __entry->comm, __entry->bind_pid, __entry->mm,
		  (int)__entry->pasid,
		  __print_symbolic(__entry->by, { 0, "ioctl" }, { 1, "release" },
				   { 2, "work" }))
);

TRACE_EVENT(sva_accel_job,
	TP_PROTO(struct mm_struct *mm, u32 pasid, pid_t bind_pid, u32 op,
		 u64 len, u32 status, u64 result, u64 fault_addr),
	TP_ARGS(mm, pasid, bind_pid, op, len, status, result, fault_addr),
	TP_STRUCT__entry(
		__field(pid_t, pid)
		__field(pid_t, bind_pid)
		__field(unsigned long, mm)
		__field(u32, pasid)
		__field(u32, op)
		__field(u32, status)
		__field(u64, len)
		__field(u64, result)
		__field(u64, fault_addr)
	),
	TP_fast_assign(
		__entry->pid = current->tgid;
		__entry->bind_pid = bind_pid;
		__entry->mm = (unsigned long)mm;
		__entry->pasid = pasid;
		__entry->op = op;
		__entry->status = status;
		__entry->len = len;
		__entry->result = result;
		__entry->fault_addr = fault_addr;
	),
	TP_printk("pid=%d bind_pid=%d mm=0x%lx pasid=%d op=%u len=%llu status=0x%x result=0x%llx fault_addr=0x%llx",
		  __entry->pid, __entry->bind_pid, __entry->mm,
		  (int)__entry->pasid, __entry->op, __entry->len,
		  __entry->status, __entry->result, __entry->fault_addr)
);

#endif /* SVA_ACCEL_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE sva_accel_trace
#include <trace/define_trace.h>
