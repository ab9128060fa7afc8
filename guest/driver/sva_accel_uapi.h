/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * User interface of the sva-accel driver (guest/driver/sva_accel.c), shared
 * with the kharness workload (guest/workload/).
 *
 * A process opens /dev/sva-accel<N>, binds its address space with
 * SVA_ACCEL_IOCTL_BIND and submits jobs on its own virtual addresses. The
 * binding belongs to the open file, as in uacce: it lasts until UNBIND or
 * until the last reference to the file is released, whichever comes first,
 * and never ends just because the binding process exits. Jobs always run in
 * the bound address space, whichever process submits them.
 */
#ifndef SVA_ACCEL_UAPI_H
#define SVA_ACCEL_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define SVA_ACCEL_ABI_VERSION	1

/* How the device reaches process memory (struct sva_accel_info.mode). */
#define SVA_ACCEL_MODE_SVA	1	/* PASID-tagged DMA on the bound mm */
#define SVA_ACCEL_MODE_DMA	2	/* pinned pages mapped with the DMA API */

/* A PASID that is not there: DMA-API mode, or no binding. */
#define SVA_ACCEL_NO_PASID	0xffffffffU

/* Job operations, as in the device's OP register. */
#define SVA_ACCEL_OP_COPY	1	/* src -> dst */
#define SVA_ACCEL_OP_FILL	2	/* pattern -> dst */
#define SVA_ACCEL_OP_CHECKSUM	3	/* FNV-1a 64 of src into result */

/*
 * Job flags. NO_PREFAULT hands the addresses to the device untouched: the
 * driver neither faults in nor pins the pages, so the device sees exactly
 * what the SMMU's page tables hold (stale IOTLB checks). SVA mode only:
 * DMA-API mode always pins.
 */
#define SVA_ACCEL_JOB_NO_PREFAULT	(1U << 0)
/*
 * REPEAT: the device runs the job pass after pass until it faults or the
 * driver stops it, as a streaming engine does: it never completes by
 * itself. Only with SVA_ACCEL_SUBMIT_ASYNC and a length above 0. WAIT
 * stops it before collecting it (status ABORTED, result = bytes moved over
 * all passes), and so does the release of the file, before it unbinds.
 */
#define SVA_ACCEL_JOB_REPEAT		(1U << 1)

/*
 * Job status: the device's status codes, plus codes from the driver for jobs
 * the device never saw (0x100 and up).
 */
#define SVA_ACCEL_ST_DONE		0x02
#define SVA_ACCEL_ST_FAULT_READ		0x10
#define SVA_ACCEL_ST_FAULT_WRITE	0x11
#define SVA_ACCEL_ST_BAD_OP		0x20
#define SVA_ACCEL_ST_PASID_DISABLED	0x21
#define SVA_ACCEL_ST_BAD_PASID		0x22
#define SVA_ACCEL_ST_ABORTED		0x30
/* The bound address space is gone (DMA-API mode cannot pin in it). */
#define SVA_ACCEL_ST_NO_MM		0x100
/* Pinning the job's pages failed; result holds the positive errno. */
#define SVA_ACCEL_ST_PIN_FAULT		0x101
/* The device did not complete the job in time and it was aborted. */
#define SVA_ACCEL_ST_TIMEOUT		0x102
/* DMA-API mode could not map the buffer as one contiguous range. */
#define SVA_ACCEL_ST_MAP_FAILED		0x103

/* Longest job the driver accepts. */
#define SVA_ACCEL_MAX_JOB_LEN	(64ULL << 20)
/* Most jobs one SUBMIT carries (the device has 32 slots). */
#define SVA_ACCEL_MAX_JOBS	32

struct sva_accel_info {
	__u32 abi_version;	/* SVA_ACCEL_ABI_VERSION */
	__u32 mode;		/* SVA_ACCEL_MODE_* */
	__u32 slots;		/* job slots of the device */
	__u32 pasid_bits;	/* PASID width, 0 without PASID */
	__s32 sva_error;	/* why SVA is unavailable (negative errno), 0 */
	__u32 bound;		/* this file holds a binding */
	__u32 pasid;		/* its PASID, SVA_ACCEL_NO_PASID */
	__s32 bind_pid;		/* the process (tgid) that bound, 0 */
	__u32 mm_pasid;		/* the caller's mm PASID as the kernel sees it */
	__u32 inflight;		/* this file's jobs not yet collected */
	__u64 bind_mm;		/* kernel address of the bound mm (trace key) */
	__u64 caller_mm;	/* kernel address of the caller's mm */
	__u32 finished;		/* of those, already completed (a repeating
				 * job only by a fault): polled, not waited */
	__u32 iopf;		/* the kernel resolves the device's page
				 * faults (I/O page faults): jobs not pinned */
};

struct sva_accel_bind {
	__u32 pasid;		/* out: PASID, SVA_ACCEL_NO_PASID in DMA mode */
	__u32 mode;		/* out: SVA_ACCEL_MODE_* */
	__u64 mm;		/* out: kernel address of the bound mm */
};

struct sva_accel_job {
	__u32 op;		/* SVA_ACCEL_OP_* */
	__u32 flags;		/* SVA_ACCEL_JOB_* */
	__u64 src;		/* user virtual address */
	__u64 dst;		/* user virtual address */
	__u64 len;		/* bytes, at most SVA_ACCEL_MAX_JOB_LEN */
	__u64 pattern;		/* FILL: byte i is byte (i mod 8), little endian */
	__u64 cookie;		/* opaque, returned as is */
	/* Filled in on completion. */
	__u32 status;		/* SVA_ACCEL_ST_* */
	__u32 pasid;		/* PASID the device used, SVA_ACCEL_NO_PASID */
	__u64 result;		/* checksum, else bytes done (or errno) */
	__u64 fault_addr;	/* FAULT_*: start of the failing chunk */
};

/* Submit: run count jobs. Wait: collect finished async jobs. */
struct sva_accel_submit {
	__u32 count;		/* submit: jobs; wait: in capacity, out filled */
	__u32 flags;		/* SVA_ACCEL_SUBMIT_* */
	__u64 jobs;		/* user pointer to struct sva_accel_job[count] */
};

/*
 * ASYNC: return once the jobs are started; they stay with the file until
 * SVA_ACCEL_IOCTL_WAIT collects them or the file is released (which waits
 * for them, aborting after a timeout). Without it SUBMIT waits, and a fatal
 * signal leaves the jobs in flight with the file the same way.
 */
#define SVA_ACCEL_SUBMIT_ASYNC	(1U << 0)

#define SVA_ACCEL_IOCTL_MAGIC	0xb5
#define SVA_ACCEL_IOCTL_INFO	_IOR(SVA_ACCEL_IOCTL_MAGIC, 0, struct sva_accel_info)
#define SVA_ACCEL_IOCTL_BIND	_IOR(SVA_ACCEL_IOCTL_MAGIC, 1, struct sva_accel_bind)
#define SVA_ACCEL_IOCTL_UNBIND	_IO(SVA_ACCEL_IOCTL_MAGIC, 2)
#define SVA_ACCEL_IOCTL_SUBMIT	_IOWR(SVA_ACCEL_IOCTL_MAGIC, 3, struct sva_accel_submit)
#define SVA_ACCEL_IOCTL_WAIT	_IOWR(SVA_ACCEL_IOCTL_MAGIC, 4, struct sva_accel_submit)

#endif /* SVA_ACCEL_UAPI_H */
