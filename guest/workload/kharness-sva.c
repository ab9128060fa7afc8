// SPDX-License-Identifier: GPL-2.0
/*
 * kharness-sva: the accelerator workload. Processes bind their address
 * space to the sva-accel device (guest/driver), fork, exec, pass the device
 * file around and exit in every order, while the device copies, fills and
 * checksums their memory by virtual address.
 *
 * Every job's result is checked byte for byte, every buffer sits between
 * guard bytes, and every process keeps canary pages at one fixed virtual
 * address: a job that runs with another process's (stale or reused) PASID
 * lands there, and the owner of those pages notices.
 *
 * Output follows the kharness console protocol:
 *   @@kharness begin <scenario>
 *   @@kharness evidence <scenario> <kind> key=value ...
 *   @@kharness result <scenario> PASS|FAIL|SKIP <reason>
 *   @@kharness end <scenario>
 * Evidence kinds: device, bind, bind-error, work, job, unbind, exit, canary,
 * check, note. Keys: pid, pasid (-1 for none), mm (kernel address of the
 * bound mm, as in the driver's trace events), status (job status name).
 *
 * Usage: kharness-sva [--list] [--device PATH] [scenario ...]
 * Scenarios default to $KHARNESS_SCENARIOS (comma separated), else all.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "sva_accel_uapi.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define NO_PASID	SVA_ACCEL_NO_PASID

/*
 * Canary pages at the same address in every process of the workload, below
 * 2^38: a 4K-page arm64 kernel may have 39-bit user addresses (6.1's
 * default), and mmap() hands out the top of that space first.
 */
#define CANARY_VA	0x3a5a000000UL
#define CANARY_PAGES	16
/* A scenario that has not finished by then is killed and fails. */
#define SCENARIO_TIMEOUT_S	60

static const char *device_path = "/dev/sva-accel0";
static const char *scenario;	/* the one running, for evidence lines */
static size_t page_size;
static struct sva_accel_info device_info;

/* Shared by every process of a scenario (MAP_SHARED, survives fork). */
struct board {
	int failures;
	int skips;
	char fail_reason[400];
	char skip_reason[400];
	char pass_note[400];
	int holder_pid;		/* holder forked by a master */
	int leak_pid, leak_fd;	/* fd-leak: the file to take */
	/* Bindings recorded by processes, for cross-process checks. */
	int nr_binds;
	struct {
		int pid;
		int group;
		unsigned int pasid;
	} binds[512];
};

static struct board *board;

/* ---------------------------------------------------------------- output */

/* One write per line, so lines of concurrent processes never mix. */
static void emit(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDOUT_FILENO, line, n) < 0)
		_exit(3);
}

#define evidence(fmt, ...) \
	emit("@@kharness evidence %s " fmt, scenario, ##__VA_ARGS__)

static void vrecord(int *count, char *reason, size_t size, const char *fmt,
		    va_list ap)
{
	char text[400];

	vsnprintf(text, sizeof(text), fmt, ap);
	if (__atomic_fetch_add(count, 1, __ATOMIC_SEQ_CST) == 0)
		snprintf(reason, size, "%s", text);
}

/* A check failed: the scenario fails with the first such reason. */
static void fail(const char *fmt, ...)
{
	char text[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	evidence("check pid=%d failed: %s", getpid(), text);
	if (board) {
		va_start(ap, fmt);
		vrecord(&board->failures, board->fail_reason,
			sizeof(board->fail_reason), fmt, ap);
		va_end(ap);
	}
}

/* The scenario cannot run here; a failure still wins over this. */
static void skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vrecord(&board->skips, board->skip_reason, sizeof(board->skip_reason),
		fmt, ap);
	va_end(ap);
}

static void pass_note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(board->pass_note, sizeof(board->pass_note), fmt, ap);
	va_end(ap);
}

static int pasid_int(unsigned int pasid)
{
	return pasid == NO_PASID ? -1 : (int)pasid;
}

static bool sva_mode(void)
{
	return device_info.mode == SVA_ACCEL_MODE_SVA;
}


static const char *status_name(unsigned int status)
{
	switch (status) {
	case 0x00: return "idle";
	case 0x01: return "busy";
	case SVA_ACCEL_ST_DONE: return "done";
	case SVA_ACCEL_ST_FAULT_READ: return "fault-read";
	case SVA_ACCEL_ST_FAULT_WRITE: return "fault-write";
	case SVA_ACCEL_ST_BAD_OP: return "bad-op";
	case SVA_ACCEL_ST_PASID_DISABLED: return "pasid-disabled";
	case SVA_ACCEL_ST_BAD_PASID: return "bad-pasid";
	case SVA_ACCEL_ST_ABORTED: return "aborted";
	case SVA_ACCEL_ST_NO_MM: return "no-mm";
	case SVA_ACCEL_ST_PIN_FAULT: return "pin-fault";
	case SVA_ACCEL_ST_TIMEOUT: return "timeout";
	case SVA_ACCEL_ST_MAP_FAILED: return "map-failed";
	default: return "unknown";
	}
}

static const char *op_name(unsigned int op)
{
	switch (op) {
	case SVA_ACCEL_OP_COPY: return "copy";
	case SVA_ACCEL_OP_FILL: return "fill";
	case SVA_ACCEL_OP_CHECKSUM: return "checksum";
	default: return "unknown";
	}
}

/* A fault status: the device (or the driver, for it) refused cleanly. */
static bool status_is_fault(unsigned int status)
{
	return status == SVA_ACCEL_ST_FAULT_READ ||
	       status == SVA_ACCEL_ST_FAULT_WRITE ||
	       status == SVA_ACCEL_ST_NO_MM ||
	       status == SVA_ACCEL_ST_PIN_FAULT;
}

/* ------------------------------------------------------------- patterns */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static void fill_random(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t x = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		if (i % 8 == 0)
			x = mix64(seed + i);
		buf[i] = x >> (8 * (i % 8));
	}
}

static uint64_t fnv1a(const uint8_t *buf, size_t len)
{
	uint64_t hash = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		hash ^= buf[i];
		hash *= 0x100000001b3ULL;
	}
	return hash;
}

static uint8_t canary_byte(pid_t pid, size_t i)
{
	return mix64(((uint64_t)pid << 32) ^ (i / 8)) >> (8 * (i % 8));
}

/* -------------------------------------------------------------- canaries */

static void canary_map(void)
{
	void *p = mmap((void *)CANARY_VA, CANARY_PAGES * page_size,
		       PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (p != (void *)CANARY_VA) {
		emit("kharness-sva: cannot map the canary pages at 0x%lx: %s",
		     CANARY_VA, strerror(errno));
		exit(2);
	}
}

/* Makes the canary pages this process's own: its pid is in the pattern. */
static void canary_claim(void)
{
	uint8_t *c = (uint8_t *)CANARY_VA;
	pid_t pid = getpid();
	size_t i;

	for (i = 0; i < CANARY_PAGES * page_size; i++)
		c[i] = canary_byte(pid, i);
}

static bool canary_check(const char *when)
{
	const uint8_t *c = (const uint8_t *)CANARY_VA;
	pid_t pid = getpid();
	size_t i, bad = 0, first = 0;

	for (i = 0; i < CANARY_PAGES * page_size; i++) {
		if (c[i] != canary_byte(pid, i)) {
			if (!bad++)
				first = i;
		}
	}
	if (!bad)
		return true;
	evidence("canary pid=%d corrupt bytes=%zu first=0x%lx got=0x%02x want=0x%02x when=%s",
		 pid, bad, CANARY_VA + first, c[first],
		 canary_byte(pid, first), when);
	fail("a device write landed in the canary pages of pid %d (%zu bytes from 0x%lx, %s)",
	     pid, bad, CANARY_VA + first, when);
	return false;
}

/* --------------------------------------------------------------- buffers */

/*
 * A job buffer: len bytes at offset off into a mapping that has a guard
 * page on each side, all filled with a background byte, so a write a byte
 * too far is noticed.
 */
struct buf {
	uint8_t *map;
	size_t map_len;
	uint8_t *data;
	size_t len;
	uint8_t bg;
};

static bool buf_new(struct buf *b, size_t len, size_t off, uint8_t bg)
{
	size_t data_pages = (off + len + page_size - 1) / page_size;

	b->map_len = (data_pages + 2) * page_size;
	b->map = mmap(NULL, b->map_len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b->map == MAP_FAILED) {
		fail("mmap of %zu bytes: %s", b->map_len, strerror(errno));
		b->map = NULL;
		return false;
	}
	b->data = b->map + page_size + off;
	b->len = len;
	b->bg = bg;
	memset(b->map, bg, b->map_len);
	return true;
}

static void buf_free(struct buf *b)
{
	if (b->map)
		munmap(b->map, b->map_len);
	b->map = NULL;
}

/*
 * Checks the whole mapping: the data bytes equal want (NULL: untouched),
 * every other byte is still the background. Returns whether it matched.
 */
static bool buf_check(const struct buf *b, const uint8_t *want,
		      const char *what)
{
	size_t start = b->data - b->map, i;

	for (i = 0; i < b->map_len; i++) {
		uint8_t expect = b->bg;

		if (want && i >= start && i < start + b->len)
			expect = want[i - start];
		if (b->map[i] != expect) {
			long at = (long)i - (long)start;

			fail("%s: byte %ld of %zu is 0x%02x, expected 0x%02x (%s)",
			     what, at, b->len, b->map[i], expect,
			     at < 0 || at >= (long)b->len ? "guard" : "data");
			return false;
		}
	}
	return true;
}

/* ---------------------------------------------------------------- device */

static int dev_open(void)
{
	int fd = open(device_path, O_RDWR);

	if (fd < 0)
		fail("open %s: %s", device_path, strerror(errno));
	return fd;
}

static int dev_info(int fd, struct sva_accel_info *info)
{
	memset(info, 0, sizeof(*info));
	if (ioctl(fd, SVA_ACCEL_IOCTL_INFO, info) < 0)
		return -errno;
	return 0;
}

/*
 * Binds this process to the device through fd; an error is a failure
 * unless the caller expects one. Returns 0 or -errno.
 */
static int dev_bind(int fd, unsigned int *pasid, int group, bool may_fail)
{
	struct sva_accel_bind bind = { 0 };
	int ret = 0, i;

	if (ioctl(fd, SVA_ACCEL_IOCTL_BIND, &bind) < 0)
		ret = -errno;
	if (ret) {
		struct sva_accel_info info;
		unsigned int mm_pasid = NO_PASID;

		/* The kernel may have given the mm a PASID before refusing. */
		if (!dev_info(fd, &info))
			mm_pasid = info.mm_pasid;
		evidence("bind-error pid=%d errno=%d error=%s mm_pasid=%d",
			 getpid(), -ret, strerror(-ret), pasid_int(mm_pasid));
		if (may_fail)
			return ret;
		if (ret == -EBUSY && sva_mode() && mm_pasid != NO_PASID)
			fail("PASID %d handed to pid %d while still bound: its bind was refused with EBUSY",
			     pasid_int(mm_pasid), getpid());
		else
			fail("bind by pid %d: %s", getpid(), strerror(-ret));
		return ret;
	}
	*pasid = bind.pasid;
	evidence("bind pid=%d pasid=%d mode=%s mm=0x%llx", getpid(),
		 pasid_int(bind.pasid), bind.mode == SVA_ACCEL_MODE_SVA ?
		 "sva" : "dma", (unsigned long long)bind.mm);
	if (sva_mode() && bind.pasid == NO_PASID)
		fail("bind by pid %d in SVA mode returned no PASID", getpid());
	if (board) {
		i = __atomic_fetch_add(&board->nr_binds, 1, __ATOMIC_SEQ_CST);
		if (i < (int)ARRAY_SIZE(board->binds)) {
			board->binds[i].pid = getpid();
			board->binds[i].group = group;
			board->binds[i].pasid = bind.pasid;
		}
	}
	return 0;
}

/*
 * The driver's binding pattern (KHARNESS_SVA_PATTERN, the sva_accel module's
 * "pattern"): with uacce's, open() binds and only the file's release
 * unbinds, so BIND by the opener returns the open's binding and UNBIND is
 * not there: the scenarios close the file where they would unbind.
 */
static bool binds_at_open(void)
{
	const char *pattern = getenv("KHARNESS_SVA_PATTERN");

	return pattern && !strcmp(pattern, "uacce");
}

/*
 * BIND again on @fd, bound to this process as @pasid: EBUSY, or with uacce's
 * pattern the open's binding once more.
 */
static void expect_second_bind(int fd, unsigned int pasid, int group,
			       const char *what)
{
	unsigned int again = NO_PASID;
	int ret = dev_bind(fd, &again, group, true);

	if (binds_at_open()) {
		if (ret || again != pasid)
			fail("%s: BIND by the opener returned %s (PASID %d), expected its binding (PASID %d)",
			     what, ret ? strerror(-ret) : "success",
			     pasid_int(again), pasid_int(pasid));
	} else if (ret != -EBUSY) {
		fail("%s returned %s, expected EBUSY", what,
		     ret ? strerror(-ret) : "success");
	}
}

/*
 * Ends the binding of *@fd: UNBIND, or with uacce's pattern the file's
 * release (*@fd is then -1). Returns 0 or -errno.
 */
static int dev_unbind(int *fd)
{
	if (binds_at_open()) {
		close(*fd);
		*fd = -1;
		return 0;
	}
	return ioctl(*fd, SVA_ACCEL_IOCTL_UNBIND) < 0 ? -errno : 0;
}

static int dev_submit(int fd, struct sva_accel_job *jobs, unsigned int count,
		      unsigned int flags)
{
	struct sva_accel_submit sub = {
		.count = count,
		.flags = flags,
		.jobs = (uintptr_t)jobs,
	};

	if (ioctl(fd, SVA_ACCEL_IOCTL_SUBMIT, &sub) < 0)
		return -errno;
	return 0;
}

static uint64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Polls until one of the file's jobs has completed by itself (a repeating
 * job: faulted), for at most @ms milliseconds of the guest's clock; true
 * if one did. The device model runs in QEMU's main loop, which a busy
 * guest can hold off for milliseconds (7 ms seen): a check that expects a
 * fault gives it this long rather than a fixed sleep. Not longer: a
 * kernel that never stops the job leaves it streaming, and every access
 * is a device record (about 60,000 a second).
 */
static bool wait_finished(int fd, unsigned int ms)
{
	uint64_t deadline = monotonic_ms() + ms;
	struct sva_accel_info info;

	do {
		if (!dev_info(fd, &info) && info.finished)
			return true;
		usleep(1000);
	} while (monotonic_ms() < deadline);
	return false;
}

/* Collects up to @count finished jobs; returns how many, or -errno. */
static int dev_wait(int fd, struct sva_accel_job *jobs, unsigned int count)
{
	struct sva_accel_submit sub = {
		.count = count,
		.jobs = (uintptr_t)jobs,
	};

	if (ioctl(fd, SVA_ACCEL_IOCTL_WAIT, &sub) < 0)
		return -errno;
	return sub.count;
}

/*
 * A line in the kernel's trace (the trace_marker file), where the host
 * orders it against the device's records: the oracles read the markers
 * kharness-unmapping (written before munmap(), madvise(), mremap() or
 * mprotect() takes pages away), kharness-unmapped, kharness-readonly
 * (after the call returned) and kharness-remapping (before the range is
 * mapped or made writable again). Nothing happens without a trace.
 */
static void trace_mark(const char *fmt, ...)
{
	const char *path = getenv("KHARNESS_TRACE_MARKER");
	char buf[160];
	va_list ap;
	int fd, n;

	if (!path || !*path)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n <= 0 || n >= (int)sizeof(buf))
		return;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, buf, n) != n)
		evidence("note trace marker not written: %s", strerror(errno));
	close(fd);
}

/* The range [@va, @va + @len) of this process is @what for PASID @pasid. */
static void mark_range(const char *what, unsigned int pasid, const void *va,
		       size_t len)
{
	if (pasid != NO_PASID)
		trace_mark("kharness-%s pid=%d pasid=%u va=0x%lx len=%zu", what,
			   getpid(), pasid, (unsigned long)va, len);
}

/*
 * Tells the host which physical pages back [@va, @va + @len) of this
 * process, read from /proc/self/pagemap (root sees the frame numbers):
 * one "kharness-owned pid=<pid> va=0x<hex> pa=0x<hex> len=<dec>" marker
 * per physically contiguous run. The pages must be present (written), and
 * stay this process's until it unmaps them, forks or exits: the guest
 * kernel has no page migration, compaction, KSM or swap. The device
 * oracle then knows whose page each of the device's accesses reached.
 */
static void claim_pages(const void *va, size_t len)
{
	uintptr_t start = (uintptr_t)va, run_va = 0;
	uint64_t run_pa = 0, entry;
	size_t run_len = 0, i, pages = len / page_size;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		evidence("note pagemap: %s: no page ownership markers",
			 strerror(errno));
		return;
	}
	for (i = 0; i <= pages; i++) {
		uint64_t pa = 0;

		if (i < pages) {
			off_t off = (off_t)((start / page_size + i) * 8);

			if (pread(fd, &entry, 8, off) != 8 ||
			    !(entry & (1ULL << 63)) ||
			    !(entry & ((1ULL << 55) - 1)))
				pa = 0;
			else
				pa = (entry & ((1ULL << 55) - 1)) * page_size;
		}
		if (run_len && pa == run_pa + run_len) {
			run_len += page_size;
			continue;
		}
		if (run_len)
			trace_mark("kharness-owned pid=%d va=0x%lx pa=0x%llx len=%zu",
				   getpid(), (unsigned long)run_va,
				   (unsigned long long)run_pa, run_len);
		run_len = 0;
		if (pa) {
			run_va = start + i * page_size;
			run_pa = pa;
			run_len = page_size;
		}
	}
	close(fd);
}

static struct sva_accel_job job_copy(const void *src, void *dst, size_t len)
{
	struct sva_accel_job job = {
		.op = SVA_ACCEL_OP_COPY,
		.src = (uintptr_t)src,
		.dst = (uintptr_t)dst,
		.len = len,
	};
	return job;
}

static struct sva_accel_job job_fill(void *dst, size_t len, uint64_t pattern)
{
	struct sva_accel_job job = {
		.op = SVA_ACCEL_OP_FILL,
		.dst = (uintptr_t)dst,
		.len = len,
		.pattern = pattern,
	};
	return job;
}

static struct sva_accel_job job_checksum(const void *src, size_t len)
{
	struct sva_accel_job job = {
		.op = SVA_ACCEL_OP_CHECKSUM,
		.src = (uintptr_t)src,
		.len = len,
	};
	return job;
}

/* @len bytes of fresh anonymous memory, every byte @byte; NULL (failed) if none. */
static uint8_t *map_filled(size_t len, uint8_t byte)
{
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		fail("mmap of %zu bytes: %s", len, strerror(errno));
		return NULL;
	}
	memset(p, byte, len);
	return p;
}

/*
 * Starts a repeating checksum on @fd over @len fresh bytes of @byte;
 * returns the buffer, or NULL when it could not (the scenario failed).
 */
static uint8_t *start_stream(int fd, size_t len, uint8_t byte)
{
	struct sva_accel_job job;
	uint8_t *buf = map_filled(len, byte);
	int ret;

	if (!buf)
		return NULL;
	job = job_checksum(buf, len);
	job.flags |= SVA_ACCEL_JOB_REPEAT;
	ret = dev_submit(fd, &job, 1, SVA_ACCEL_SUBMIT_ASYNC);
	if (ret) {
		fail("async submit of a repeating read: %s", strerror(-ret));
		return NULL;
	}
	return buf;
}

static void job_evidence(const struct sva_accel_job *job, const char *expect)
{
	evidence("job pid=%d pasid=%d op=%s len=%llu status=%s code=0x%x result=0x%llx fault_addr=0x%llx expect=%s",
		 getpid(), pasid_int(job->pasid), op_name(job->op),
		 (unsigned long long)job->len, status_name(job->status),
		 job->status, (unsigned long long)job->result,
		 (unsigned long long)job->fault_addr, expect);
}

/*
 * The standard work of a bound process: copy, fill and checksum jobs of
 * several lengths and alignments in one submission, every byte checked.
 * Returns the number of jobs that went wrong.
 */
static int work_and_verify(int fd, unsigned int pasid, unsigned int rounds,
			   const char *who)
{
	static const size_t lengths[] = { 1, 100, 4096, 3 * 4096 + 123,
					  65536 + 7 };
	static const size_t offsets[] = { 0, 1, 4095, 2048, 17 };
	enum { PER_ROUND = 3 * ARRAY_SIZE(lengths) };
	struct sva_accel_job jobs[PER_ROUND];
	struct buf src[ARRAY_SIZE(lengths)], dst[ARRAY_SIZE(lengths)];
	struct buf fill[ARRAY_SIZE(lengths)];
	unsigned int round, i, n, bad = 0, done = 0;
	unsigned int pasid_seen = NO_PASID;
	char what[128];
	int ret;

	for (round = 0; round < rounds; round++) {
		uint64_t seed = ((uint64_t)getpid() << 24) ^ (round << 8) ^
				(uintptr_t)who;
		uint64_t pattern = mix64(seed);
		uint8_t *want;

		memset(src, 0, sizeof(src));
		memset(dst, 0, sizeof(dst));
		memset(fill, 0, sizeof(fill));
		n = 0;
		for (i = 0; i < ARRAY_SIZE(lengths); i++) {
			size_t len = lengths[i], off = offsets[i];

			if (!buf_new(&src[i], len, off, 0x5c) ||
			    !buf_new(&dst[i], len, (off * 7) % page_size,
				     0xee) ||
			    !buf_new(&fill[i], len, (off + 3) % page_size,
				     0x11)) {
				bad++;
				goto free;
			}
			fill_random(src[i].data, len, seed + i);
			jobs[n++] = job_copy(src[i].data, dst[i].data, len);
			jobs[n++] = job_fill(fill[i].data, len, pattern + i);
			jobs[n++] = job_checksum(src[i].data, len);
		}
		ret = dev_submit(fd, jobs, n, 0);
		if (ret) {
			fail("%s: submit by pid %d: %s", who, getpid(),
			     strerror(-ret));
			bad++;
			goto free;
		}
		for (i = 0; i < n; i++) {
			struct sva_accel_job *job = &jobs[i];
			struct buf *b = NULL;
			size_t k, len = job->len;

			pasid_seen = job->pasid;
			if (sva_mode() && job->pasid != pasid) {
				fail("%s: job ran with PASID %d, bound PASID is %d",
				     who, pasid_int(job->pasid),
				     pasid_int(pasid));
				bad++;
			}
			if (job->status != SVA_ACCEL_ST_DONE) {
				job_evidence(job, "done");
				fail("%s: %s of %zu bytes by pid %d ended %s",
				     who, op_name(job->op), len, getpid(),
				     status_name(job->status));
				bad++;
				continue;
			}
			snprintf(what, sizeof(what), "%s: %s of %zu bytes",
				 who, op_name(job->op), len);
			switch (job->op) {
			case SVA_ACCEL_OP_COPY:
				b = &dst[i / 3];
				if (!buf_check(b, src[i / 3].data, what))
					bad++;
				break;
			case SVA_ACCEL_OP_FILL:
				b = &fill[i / 3];
				want = malloc(len);
				if (!want) {
					bad++;
					break;
				}
				for (k = 0; k < len; k++)
					want[k] = job->pattern >> (8 * (k % 8));
				if (!buf_check(b, want, what))
					bad++;
				free(want);
				break;
			case SVA_ACCEL_OP_CHECKSUM:
				if (job->result != fnv1a(src[i / 3].data, len)) {
					fail("%s: device checksum 0x%llx, CPU 0x%llx",
					     what,
					     (unsigned long long)job->result,
					     (unsigned long long)fnv1a(src[i / 3].data, len));
					bad++;
				}
				/* The source must be untouched too. */
				if (!buf_check(&src[i / 3], src[i / 3].data,
					       what))
					bad++;
				break;
			}
			done++;
		}
free:
		for (i = 0; i < ARRAY_SIZE(lengths); i++) {
			buf_free(&src[i]);
			buf_free(&dst[i]);
			buf_free(&fill[i]);
		}
	}
	evidence("work pid=%d who=%s pasid=%d pasid_seen=%d jobs_ok=%u bad=%u",
		 getpid(), who, pasid_int(pasid), pasid_int(pasid_seen), done,
		 bad);
	return bad;
}

/*
 * Jobs through a file whose binding belongs to an address space that is
 * gone (its processes exited or exec'd): aimed at the canary pages, which
 * exist at the same address in every process of the workload. They must
 * fault; if the PASID reached another process's page tables they land in
 * its canaries.
 */
static void stale_jobs(int fd, const char *who)
{
	uint8_t *canary = (uint8_t *)CANARY_VA;
	struct sva_accel_job jobs[4];
	struct buf src = { 0 };
	unsigned int i;
	int ret;

	if (!buf_new(&src, 2 * page_size, 0, 0x77))
		return;
	fill_random(src.data, src.len, getpid());
	jobs[0] = job_copy(src.data, canary, 2 * page_size);
	jobs[1] = job_fill(canary + 4 * page_size, 3 * page_size,
			   0xdeadbeefcafef00dULL);
	jobs[2] = job_checksum(canary, page_size);
	jobs[3] = job_fill(canary + 8 * page_size, page_size,
			   0x0badc0de0badc0deULL);
	jobs[3].flags = sva_mode() ? SVA_ACCEL_JOB_NO_PREFAULT : 0;
	ret = dev_submit(fd, jobs, ARRAY_SIZE(jobs), 0);
	if (ret) {
		fail("%s: submit on the stale binding: %s", who,
		     strerror(-ret));
		goto out;
	}
	for (i = 0; i < ARRAY_SIZE(jobs); i++) {
		job_evidence(&jobs[i], "fault");
		if (!status_is_fault(jobs[i].status))
			fail("%s: %s on the binding of an exited address space (PASID %d) ended %s instead of faulting",
			     who, op_name(jobs[i].op),
			     pasid_int(jobs[i].pasid),
			     status_name(jobs[i].status));
	}
out:
	buf_free(&src);
}

/* ------------------------------------------------------------- processes */

/* A byte-sized gate between processes: a pipe. */
struct gate {
	int fd[2];
};

static void gate_init(struct gate *g)
{
	if (pipe(g->fd) < 0) {
		emit("kharness-sva: pipe: %s", strerror(errno));
		exit(2);
	}
}

static void gate_open(struct gate *g, int n)
{
	char c = 'g';

	while (n-- > 0)
		if (write(g->fd[1], &c, 1) != 1)
			return;
}

/* Waits until the gate opens; false if every opener is gone. */
static bool gate_pass(struct gate *g)
{
	char c;

	return read(g->fd[0], &c, 1) == 1;
}

static void gate_close(struct gate *g)
{
	close(g->fd[0]);
	close(g->fd[1]);
}

typedef void (*child_fn)(void *arg);

/* Forks a process of the scenario: it owns its canaries and checks them. */
static pid_t spawn(child_fn fn, void *arg)
{
	pid_t pid = fork();

	if (pid < 0) {
		fail("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		canary_claim();
		fn(arg);
		canary_check("at exit");
		_exit(0);
	}
	return pid;
}

static int reap(pid_t pid, const char *who)
{
	int status;

	if (pid <= 0)
		return -1;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			fail("waitpid %d (%s): %s", pid, who, strerror(errno));
			return -1;
		}
	}
	if (WIFSIGNALED(status)) {
		evidence("exit pid=%d who=%s signal=%d", pid, who,
			 WTERMSIG(status));
		return 128 + WTERMSIG(status);
	}
	evidence("exit pid=%d who=%s code=%d", pid, who, WEXITSTATUS(status));
	return WEXITSTATUS(status);
}

/* A child that must end normally. */
static void reap_ok(pid_t pid, const char *who)
{
	int code = reap(pid, who);

	if (code != 0 && code != -1)
		fail("%s (pid %d) ended with %s %d", who, pid,
		     code > 128 ? "signal" : "status",
		     code > 128 ? code - 128 : code);
}

/* Distinct PASIDs among the bindings recorded for a group. */
static void check_distinct(int group, const char *what)
{
	int i, j, n = board->nr_binds;

	if (!sva_mode())
		return;
	if (n > (int)ARRAY_SIZE(board->binds))
		n = ARRAY_SIZE(board->binds);
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (board->binds[i].group == group &&
			    board->binds[j].group == group &&
			    board->binds[i].pasid == board->binds[j].pasid)
				fail("PASID %d bound to two processes at once (%s): pids %d and %d",
				     pasid_int(board->binds[i].pasid), what,
				     board->binds[i].pid,
				     board->binds[j].pid);
}

static unsigned int pasid_of(int pid)
{
	int i, n = board->nr_binds;

	if (n > (int)ARRAY_SIZE(board->binds))
		n = ARRAY_SIZE(board->binds);
	for (i = n - 1; i >= 0; i--)
		if (board->binds[i].pid == pid)
			return board->binds[i].pasid;
	return NO_PASID;
}

/*
 * A process binding while the binding of an exited process is still held
 * elsewhere must get another PASID: the old one is still in use.
 */
static void check_not_reused(unsigned int pasid, unsigned int held,
			     int holder, const char *what)
{
	if (!sva_mode() || pasid == NO_PASID)
		return;
	if (pasid == held)
		fail("PASID %d reused while still bound: %s by pid %d got it, still bound through the file held by pid %d",
		     pasid_int(pasid), what, getpid(), holder);
}

/* ------------------------------------------------- the in-tree uio driver */

/*
 * With kharness.sva.pattern=uio the device belongs to Linux 7.x's
 * uio_pci_generic_sva: open() of /dev/uioN binds the opener's mm (the PASID
 * is the PCI device's sysfs attribute "pasid"), release() unbinds, and the
 * process programs sva-accel's registers itself through the mapped BAR 0.
 * Nothing pins: the pages a job touches are faulted in first (no IOPF).
 */
static bool binds_via_uio(void)
{
	const char *pattern = getenv("KHARNESS_SVA_PATTERN");

	return pattern && !strcmp(pattern, "uio");
}

#define UIO_REG_ID		0x000
#define UIO_REG_SLOT(n)		(0x1000 + 0x40 * (n))
#define UIO_OP_USE_PASID	(1u << 31)
#define UIO_ST_BUSY		0x01

struct uio_dev {
	int fd;
	volatile uint8_t *regs;
	size_t size;
	unsigned int pasid;
};

static const char *uio_path(void)
{
	const char *path = getenv("KHARNESS_UIO");

	return path && *path ? path : "/dev/uio0";
}

static unsigned long read_number(const char *path, int base)
{
	char buf[64] = { 0 };
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return ~0UL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtoul(buf, NULL, base) : ~0UL;
}

/* Opens (and so binds) the device and maps its registers. */
static int uio_open(struct uio_dev *dev)
{
	char path[128];
	const char *name = strrchr(uio_path(), '/');
	unsigned long size;

	dev->fd = open(uio_path(), O_RDWR | O_CLOEXEC);
	if (dev->fd < 0) {
		fail("open %s by pid %d: %s", uio_path(), getpid(),
		     strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "/sys/class/uio%s/maps/map0/size", name);
	size = read_number(path, 16);
	if (size == ~0UL || size < UIO_REG_SLOT(32)) {
		fail("%s: no register map (map0 size %#lx)", path, size);
		close(dev->fd);
		return -ENODEV;
	}
	dev->size = size;
	dev->regs = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 dev->fd, 0);
	if (dev->regs == MAP_FAILED) {
		fail("mmap of %s's registers: %s", uio_path(), strerror(errno));
		close(dev->fd);
		return -ENODEV;
	}
	/* The driver keeps the PASID of the last open, per device. */
	snprintf(path, sizeof(path), "/sys/class/uio%s/device/pasid", name);
	dev->pasid = read_number(path, 10);
	evidence("bind pid=%d pasid=%d mode=uio", getpid(),
		 pasid_int(dev->pasid));
	return 0;
}

static void uio_close(struct uio_dev *dev, const char *how)
{
	munmap((void *)dev->regs, dev->size);
	close(dev->fd);
	evidence("unbind pid=%d pasid=%d how=%s", getpid(),
		 pasid_int(dev->pasid), how);
	dev->fd = -1;
}

static void reg32(struct uio_dev *dev, size_t off, uint32_t value)
{
	*(volatile uint32_t *)(dev->regs + off) = value;
}

static void reg64(struct uio_dev *dev, size_t off, uint64_t value)
{
	*(volatile uint32_t *)(dev->regs + off) = (uint32_t)value;
	*(volatile uint32_t *)(dev->regs + off + 4) = (uint32_t)(value >> 32);
}

static uint32_t rd32(struct uio_dev *dev, size_t off)
{
	return *(volatile uint32_t *)(dev->regs + off);
}

/*
 * Runs @job on slot @slot through @pasid and waits (polling, 2 s of the
 * guest's clock) for its status; fills in status, result and fault_addr.
 */
static void uio_run(struct uio_dev *dev, int slot, unsigned int pasid,
		    struct sva_accel_job *job)
{
	size_t base = UIO_REG_SLOT(slot);
	struct timespec t0, now;
	uint32_t status;

	reg32(dev, base + 0x00, job->op | UIO_OP_USE_PASID);
	reg32(dev, base + 0x04, pasid);
	reg64(dev, base + 0x08, job->src);
	reg64(dev, base + 0x10, job->dst);
	reg64(dev, base + 0x18, job->len);
	reg64(dev, base + 0x20, job->pattern);
	reg32(dev, base + 0x34, 1);	/* DOORBELL_START */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		status = rd32(dev, base + 0x30);
		if (status != UIO_ST_BUSY)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec >= 2) {
			reg32(dev, base + 0x34, 2);	/* DOORBELL_ABORT */
			status = SVA_ACCEL_ST_TIMEOUT;
			break;
		}
		usleep(100);
	}
	job->status = status;
	job->pasid = pasid;
	job->result = rd32(dev, base + 0x28) |
		      (uint64_t)rd32(dev, base + 0x2c) << 32;
	job->fault_addr = rd32(dev, base + 0x38) |
			  (uint64_t)rd32(dev, base + 0x3c) << 32;
	job_evidence(job, "done");
}

/* Fill, copy and checksum through the binding, every byte checked. */
static bool uio_work(struct uio_dev *dev, const char *who)
{
	const size_t len = 4 * page_size;
	struct sva_accel_job job;
	/* map_filled's memset faults every page in: nothing pins for uio. */
	uint8_t *src = map_filled(len, 0x11), *dst = map_filled(len, 0);
	bool ok = false;
	size_t i;

	if (!src || !dst)
		goto out;
	for (i = 0; i < len; i++)
		src[i] = (uint8_t)(i * 7 + 3);
	job = job_fill(dst, len, 0x5a5a5a5a5a5a5a5aULL);
	uio_run(dev, 0, dev->pasid, &job);
	if (job.status != SVA_ACCEL_ST_DONE) {
		fail("%s: fill through PASID %d by pid %d ended %s", who,
		     pasid_int(dev->pasid), getpid(), status_name(job.status));
		goto out;
	}
	for (i = 0; i < len; i++)
		if (dst[i] != 0x5a) {
			fail("%s: fill left byte %zu at %#x", who, i, dst[i]);
			goto out;
		}
	job = job_copy(src, dst, len);
	uio_run(dev, 1, dev->pasid, &job);
	if (job.status != SVA_ACCEL_ST_DONE || memcmp(src, dst, len)) {
		fail("%s: copy through PASID %d by pid %d ended %s%s", who,
		     pasid_int(dev->pasid), getpid(), status_name(job.status),
		     job.status == SVA_ACCEL_ST_DONE ? " with wrong data" : "");
		goto out;
	}
	job = job_checksum(src, len);
	uio_run(dev, 2, dev->pasid, &job);
	if (job.status != SVA_ACCEL_ST_DONE || job.result != fnv1a(src, len)) {
		fail("%s: checksum through PASID %d ended %s", who,
		     pasid_int(dev->pasid), status_name(job.status));
		goto out;
	}
	ok = true;
out:
	if (src)
		munmap(src, len);
	if (dst)
		munmap(dst, len);
	return ok;
}

static void scenario_uio_baseline(void)
{
	struct uio_dev dev;

	if (uio_open(&dev))
		return;
	if (rd32(&dev, UIO_REG_ID) != 0x53564131)
		fail("%s's BAR 0 is not sva-accel's (ID %#x)", uio_path(),
		     rd32(&dev, UIO_REG_ID));
	else if (dev.pasid == NO_PASID || dev.pasid == 0)
		fail("uio_pci_generic_sva gave pid %d no PASID (%d)", getpid(),
		     pasid_int(dev.pasid));
	else if (uio_work(&dev, "uio-baseline"))
		pass_note("pid %d bound PASID %d through uio_pci_generic_sva's open, every byte of fill/copy/checksum checked",
			  getpid(), pasid_int(dev.pasid));
	uio_close(&dev, "close");
}

/* Binds in open, works, exits with the file open: exit_mm, then release. */
static void uio_work_exit(void *arg)
{
	struct uio_dev dev;

	(void)arg;
	if (uio_open(&dev))
		return;
	uio_work(&dev, "uio-exit-open child");
	evidence("unbind pid=%d pasid=%d how=exit", getpid(),
		 pasid_int(dev.pasid));
}

static void scenario_uio_exit_open(void)
{
	struct uio_dev dev;
	pid_t pid = spawn(uio_work_exit, NULL);

	reap_ok(pid, "exits with /dev/uio open");
	if (uio_open(&dev))
		return;
	if (uio_work(&dev, "uio-exit-open"))
		pass_note("pid %d exited with the uio file open; pid %d then bound PASID %d and worked",
			  pid, getpid(), pasid_int(dev.pasid));
	uio_close(&dev, "close");
}

struct uio_second {
	struct gate go, opened, closed;
};

/*
 * The second opener, forked before the first opens (so it holds no copy of
 * the first's file): binds, works, waits until the first has closed, works.
 */
static void uio_second_opener(void *arg)
{
	struct uio_second *u = arg;
	struct uio_dev dev;

	gate_pass(&u->go);
	if (uio_open(&dev)) {
		gate_open(&u->opened, 1);
		return;
	}
	uio_work(&dev, "second opener");
	gate_open(&u->opened, 1);
	gate_pass(&u->closed);
	if (!uio_work(&dev, "second opener after the first closed"))
		fail("pid %d's binding (PASID %d) stopped translating when another process closed its own /dev/uio file",
		     getpid(), pasid_int(dev.pasid));
	uio_close(&dev, "close");
}

/*
 * Two processes hold their own uio files at once, each with its own binding;
 * the first closes; the second must keep working. (A driver that keeps one
 * handle per device unbinds the second's binding at the first's release.)
 */
static void scenario_uio_two_openers(void)
{
	struct uio_second u;
	struct uio_dev dev;
	pid_t pid;

	gate_init(&u.go);
	gate_init(&u.opened);
	gate_init(&u.closed);
	pid = spawn(uio_second_opener, &u);
	if (uio_open(&dev)) {
		gate_open(&u.go, 1);
		gate_open(&u.closed, 1);
		reap(pid, "second opener");
		goto out;
	}
	uio_work(&dev, "first opener");
	gate_open(&u.go, 1);
	gate_pass(&u.opened);
	uio_close(&dev, "close first-of-two");
	gate_open(&u.closed, 1);
	reap_ok(pid, "second opener");
	pass_note("two processes bound /dev/uio at once; the second kept working after the first closed");
out:
	gate_close(&u.go);
	gate_close(&u.opened);
	gate_close(&u.closed);
}

/* -------------------------------------------------------------- scenarios */

static void scenario_baseline(void)
{
	struct sva_accel_info info;
	struct sva_accel_job job;
	unsigned int pasid, again;
	int fd, ret;

	fd = dev_open();
	if (fd < 0)
		return;
	if (dev_bind(fd, &pasid, 0, false))
		goto out;
	if (!dev_info(fd, &info)) {
		evidence("check pid=%d mm_pasid=%d bound_pasid=%d bind_pid=%d",
			 getpid(), pasid_int(info.mm_pasid), pasid_int(pasid),
			 info.bind_pid);
		if (sva_mode() && info.mm_pasid != pasid)
			fail("the kernel's PASID of the bound mm is %d, bind returned %d",
			     pasid_int(info.mm_pasid), pasid_int(pasid));
		if (info.bind_pid != getpid())
			fail("INFO names pid %d as the binder, not %d",
			     info.bind_pid, getpid());
	}
	work_and_verify(fd, pasid, 2, "baseline");
	expect_second_bind(fd, pasid, 0, "a second BIND on a bound file");
	ret = dev_unbind(&fd);
	if (ret) {
		fail("UNBIND: %s", strerror(-ret));
		goto out;
	}
	evidence("unbind pid=%d pasid=%d how=%s", getpid(), pasid_int(pasid),
		 fd < 0 ? "close" : "ioctl");
	if (fd >= 0) {
		job = job_fill((void *)CANARY_VA, 8, 1);
		ret = dev_submit(fd, &job, 1, 0);
		if (ret != -ENOENT)
			fail("SUBMIT after UNBIND returned %s, expected ENOENT",
			     ret ? strerror(-ret) : "success");
	} else {
		fd = dev_open();
		if (fd < 0)
			return;
	}
	if (dev_bind(fd, &again, 0, false))
		goto out;
	evidence("check rebind pid=%d pasid=%d before=%d", getpid(),
		 pasid_int(again), pasid_int(pasid));
	work_and_verify(fd, again, 1, "baseline-rebound");
	pass_note("bound PASID %d, every byte of 3 rounds of copy/fill/checksum jobs checked, unbound, rebound as PASID %d",
		  pasid_int(pasid), pasid_int(again));
out:
	close(fd);
	evidence("unbind pid=%d how=close", getpid());
}

/* A process that binds, works and then leaves its binding to exit(). */
static void bind_work_exit(void *arg)
{
	const char *who = arg;
	unsigned int pasid;
	int fd = dev_open();

	if (fd < 0 || dev_bind(fd, &pasid, 0, false))
		return;
	work_and_verify(fd, pasid, 1, who);
	evidence("unbind pid=%d pasid=%d how=exit", getpid(), pasid_int(pasid));
	/* No close, no unbind: exit_mm, then exit_files releases it. */
}

/* A process that binds, works, unbinds by close and exits. */
static void bind_work_close(void *arg)
{
	const char *who = arg;
	unsigned int pasid;
	int fd = dev_open();

	if (fd < 0)
		return;
	if (!dev_bind(fd, &pasid, 1, false))
		work_and_verify(fd, pasid, 1, who);
	close(fd);
	evidence("unbind pid=%d pasid=%d how=close", getpid(),
		 pasid_int(pasid));
}

static void scenario_exit_no_unbind(void)
{
	pid_t first, second;

	first = spawn(bind_work_exit, "exiting");
	reap_ok(first, "exiting");
	second = spawn(bind_work_close, "next");
	reap_ok(second, "next");
	evidence("check first_pasid=%d next_pasid=%d", pasid_int(pasid_of(first)),
		 pasid_int(pasid_of(second)));
	pass_note("pid %d exited bound to PASID %d; pid %d then bound PASID %d and worked",
		  first, pasid_int(pasid_of(first)), second,
		  pasid_int(pasid_of(second)));
}

/*
 * A process exits while the device still reads its memory: a repeating
 * checksum job (the device runs it pass after pass until it faults or is
 * stopped) is running when exit_mmap() starts, and a 32 MiB ballast
 * mapped below the buffer makes the teardown of the mappings last
 * milliseconds, while the device runs on. The file's release stops the
 * job and unbinds, after the address space is gone. A kernel must stop
 * the device's accesses at the address space's release (mmu_notifier
 * .release); only the device's records show whether it did, so the
 * scenario itself only checks that the process and the next binding are
 * fine. Because the job repeats, it is in flight across the whole window
 * on every run, not only when a fixed-length job happens to last.
 */
static void bind_checksum_exit(void *arg)
{
	const size_t len = 16 << 10, ballast_len = 32 << 20;
	struct sva_accel_job job;
	unsigned int pasid;
	uint8_t *src, *ballast;
	int fd, ret;

	(void)arg;
	fd = dev_open();
	if (fd < 0 || dev_bind(fd, &pasid, 0, false))
		return;
	src = map_filled(len, 0x5a);
	ballast = map_filled(ballast_len, 0x11);
	if (!src || !ballast)
		return;
	job = job_checksum(src, len);
	job.flags |= SVA_ACCEL_JOB_REPEAT;
	/* Said before submitting: a console line takes longer than the exit. */
	evidence("note pid=%d pasid=%d repeating checksum of %zu bytes, ballast=%zu",
		 getpid(), pasid_int(pasid), len, ballast_len);
	ret = dev_submit(fd, &job, 1, SVA_ACCEL_SUBMIT_ASYNC);
	if (ret)
		fail("async submit: %s", strerror(-ret));
	_exit(0);
}

static void scenario_exit_inflight_dma(void)
{
	pid_t first, second;

	first = spawn(bind_checksum_exit, NULL);
	reap_ok(first, "exiting");
	second = spawn(bind_work_close, "next");
	reap_ok(second, "next");
	pass_note("pid %d exited with a repeating job on PASID %d; pid %d then bound PASID %d and worked",
		  first, pasid_int(pasid_of(first)), second,
		  pasid_int(pasid_of(second)));
}

/*
 * Runs @job (made repeating and unpinned) while @change takes its pages
 * away, then stops and collects it: once @change has returned, the
 * device's next access must fault (@want), never reach the old pages
 * through a translation the SMMU kept. The markers let the host's oracle
 * name any access after the change.
 */
static void stream_across(int fd, unsigned int pasid, struct sva_accel_job job,
			  unsigned int want, const char *what,
			  int (*change)(void *, size_t), void *va, size_t len,
			  const char *mark)
{
	struct sva_accel_job done;
	int ret, n;

	job.flags |= SVA_ACCEL_JOB_REPEAT | SVA_ACCEL_JOB_NO_PREFAULT;
	ret = dev_submit(fd, &job, 1, SVA_ACCEL_SUBMIT_ASYNC);
	if (ret) {
		fail("%s: async submit: %s", what, strerror(-ret));
		return;
	}
	/* Passes are 20 us apart: the SMMU's TLB holds every page by now. */
	usleep(2000);
	mark_range("unmapping", pasid, va, len);
	if (change(va, len)) {
		fail("%s: %s", what, strerror(errno));
		dev_wait(fd, &done, 1);
		return;
	}
	mark_range(mark, pasid, va, len);
	if (want != SVA_ACCEL_ST_ABORTED)
		wait_finished(fd, 200);
	n = dev_wait(fd, &done, 1);
	if (n != 1) {
		fail("%s: wait: %s", what, n < 0 ? strerror(-n) : "no job");
		return;
	}
	job_evidence(&done, status_name(want));
	if (done.status != want)
		fail("%s: the repeating job ended %s after %llu bytes, expected %s",
		     what, status_name(done.status),
		     (unsigned long long)done.result, status_name(want));
}

static int unmap_range(void *va, size_t len)
{
	return munmap(va, len);
}

static int make_read_only(void *va, size_t len)
{
	return mprotect(va, len, PROT_READ);
}

static int zap_range(void *va, size_t len)
{
	return madvise(va, len, MADV_DONTNEED);
}

/* Where move_range() puts the range: reserved by the caller. */
static void *move_target;

static int move_range(void *va, size_t len)
{
	return mremap(va, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
		      move_target) == MAP_FAILED ? -1 : 0;
}

/*
 * The device streams from (and to) buffers while the process takes them
 * away: munmap(), madvise(MADV_DONTNEED) (the pages are zapped, the range
 * stays), mremap() to another address, and mprotect(PROT_READ) under a
 * streaming write. The mm notifier's invalidation must reach the SMMU's
 * TLB before each call returns. A kernel that skips or narrows it leaves
 * the device reading freed pages and writing read-only ones through stale
 * entries. Unpinned pages, so the calls really free them; SVA mode only
 * (DMA-API mode pins every job).
 */
static void scenario_munmap_inflight_dma(void)
{
	const size_t len = 4 * page_size;
	unsigned int pasid;
	uint8_t *x, *y, *z, *w;
	int fd;

	if (!sva_mode()) {
		skip("needs SVA mode: in DMA-API mode every job's pages are pinned");
		return;
	}
	fd = dev_open();
	if (fd < 0)
		return;
	if (dev_bind(fd, &pasid, 0, false))
		goto out;
	x = map_filled(len, 0x77);
	y = map_filled(len, 0x11);
	z = map_filled(len, 0x33);
	w = mmap(NULL, 2 * len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w == MAP_FAILED)
		fail("mmap: %s", strerror(errno));
	if (!x || !y || !z || w == MAP_FAILED)
		goto out;
	memset(w, 0x44, len);
	/* mremap() moves w's first half onto its (never touched) second. */
	move_target = w + len;
	evidence("note pid=%d pasid=%d streams over x=0x%lx y=0x%lx len=%zu",
		 getpid(), pasid_int(pasid), (unsigned long)x,
		 (unsigned long)y, len);
	stream_across(fd, pasid, job_checksum(x, len), SVA_ACCEL_ST_FAULT_READ,
		      "streaming read across munmap", unmap_range, x, len,
		      "unmapped");
	/*
	 * With I/O page faults the device faults the zapped range in again
	 * (zero-filled pages, as the CPU would), so the stream goes on until
	 * collected; the range is then one the process maps again.
	 */
	stream_across(fd, pasid, job_checksum(z, len),
		      device_info.iopf ? SVA_ACCEL_ST_ABORTED :
					 SVA_ACCEL_ST_FAULT_READ,
		      "streaming read across madvise(MADV_DONTNEED)", zap_range,
		      z, len, device_info.iopf ? "remapping" : "unmapped");
	stream_across(fd, pasid, job_checksum(w, len), SVA_ACCEL_ST_FAULT_READ,
		      "streaming read across mremap", move_range, w, len,
		      "unmapped");
	stream_across(fd, pasid, job_fill(y, len, 0x2222222222222222ULL),
		      SVA_ACCEL_ST_FAULT_WRITE,
		      "streaming write across mprotect(PROT_READ)",
		      make_read_only, y, len, "readonly");
	for (size_t i = 0; i < len; i++) {
		if (y[i] != 0x11 && y[i] != 0x22) {
			fail("byte %zu of the stream's buffer is 0x%x", i, y[i]);
			break;
		}
	}
	pass_note(device_info.iopf ?
		  "streaming reads faulted once munmap and mremap returned (after madvise(DONTNEED) the device faulted zero pages in), a streaming write once mprotect returned" :
		  "streaming reads faulted once munmap, madvise(DONTNEED) and mremap returned, a streaming write once mprotect returned");
out:
	close(fd);
}

/*
 * The parent binds, starts a repeating read and forks; the child keeps the
 * file and the parent exits. The parent's address space is torn down while
 * the binding lives on in the child's file, so nothing but the mm release
 * notifier stops the device: the child waits until the read has faulted
 * (or 200 ms have passed), then collects it, and only then does the
 * file's release unbind. Unlike exit-inflight-dma the window between the
 * release and the unbind is as long as the check needs, on every run.
 */
struct parent_arg {
	struct gate done;
	int fd;
	pid_t parent;	/* the binding process: it may be gone before the child runs */
};

static void holder_after_parent(void *arg)
{
	struct parent_arg *pa = arg;
	pid_t parent = pa->parent;
	unsigned int want = sva_mode() ? SVA_ACCEL_ST_FAULT_READ :
					 SVA_ACCEL_ST_ABORTED;
	struct sva_accel_job done;
	int i, n;

	for (i = 0; i < 2000 && getppid() == parent; i++)
		usleep(1000);
	if (getppid() == parent) {
		fail("the parent (pid %d) that bound did not exit", parent);
		goto out;
	}
	/* DMA-API mode: pinned pages stay valid until the driver stops it. */
	if (sva_mode())
		wait_finished(pa->fd, 200);
	n = dev_wait(pa->fd, &done, 1);
	if (n != 1) {
		fail("wait for the parent's stream: %s", n < 0 ? strerror(-n) : "no job");
		goto out;
	}
	job_evidence(&done, status_name(want));
	if (done.status != want)
		fail("the exited parent's repeating read ended %s after %llu bytes, expected %s",
		     status_name(done.status), (unsigned long long)done.result,
		     status_name(want));
out:
	close(pa->fd);
	evidence("unbind pid=%d how=holder-close", getpid());
	gate_open(&pa->done, 1);
}

static void bind_stream_fork_exit(void *arg)
{
	struct parent_arg *pa = arg;
	unsigned int pasid;

	pa->fd = dev_open();
	if (pa->fd < 0 || dev_bind(pa->fd, &pasid, 0, false))
		return;
	if (!start_stream(pa->fd, 16 << 10, 0x3d))
		return;
	evidence("note pid=%d pasid=%d repeating read, the child keeps the file",
		 getpid(), pasid_int(pasid));
	pa->parent = getpid();
	spawn(holder_after_parent, pa);
}

static void scenario_exit_parent_inflight_dma(void)
{
	struct parent_arg pa = { .fd = -1 };
	pid_t parent;
	int status;

	gate_init(&pa.done);
	parent = spawn(bind_stream_fork_exit, &pa);
	close(pa.done.fd[1]);
	reap_ok(parent, "parent");
	if (!gate_pass(&pa.done))
		fail("the holder of the file ended without collecting the stream");
	close(pa.done.fd[0]);
	/* The holder was reparented to this scenario's process. */
	while (waitpid(-1, &status, 0) > 0 || errno == EINTR)
		;
	pass_note("pid %d exited with a repeating read on PASID %d; it faulted before its child released the file",
		  parent, pasid_int(pasid_of(parent)));
}

/*
 * One process opens the device twice and binds both files: one address
 * space, one PASID, two bindings (the IOMMU core counts them on one
 * handle). A repeating read runs on the second while the first unbinds:
 * the PASID must keep translating for the binding that is left, so the
 * read is still running when it is stopped. A core that tears down the
 * PASID's attachment on the first unbind leaves the second binding live
 * with its context descriptor gone; only the device sees that.
 */
static void scenario_unbind_one_of_two(void)
{
	const size_t len = 4 * page_size;
	struct sva_accel_job job, done;
	unsigned int first, second;
	uint8_t *buf;
	int a, b, ret, n;

	a = dev_open();
	b = dev_open();
	if (a < 0 || b < 0)
		goto out;
	if (dev_bind(a, &first, 0, false) || dev_bind(b, &second, 0, false))
		goto out;
	if (first != second) {
		fail("two binds of one address space got PASIDs %d and %d",
		     pasid_int(first), pasid_int(second));
		goto out;
	}
	buf = start_stream(b, len, 0x5c);
	if (!buf)
		goto out;
	usleep(2000);
	ret = dev_unbind(&a);
	if (ret)
		fail("unbind of the first file: %s", strerror(-ret));
	evidence("unbind pid=%d pasid=%d how=%s first-of-two", getpid(),
		 pasid_int(first), a < 0 ? "close" : "ioctl");
	usleep(5000);
	n = dev_wait(b, &done, 1);
	if (n != 1) {
		fail("wait on the second file: %s", n < 0 ? strerror(-n) : "no job");
		goto out;
	}
	job_evidence(&done, "aborted");
	if (done.status != SVA_ACCEL_ST_ABORTED)
		fail("the second binding's repeating read ended %s after %llu bytes once the first binding of PASID %d was gone",
		     status_name(done.status), (unsigned long long)done.result,
		     pasid_int(first));
	/*
	 * The same pages once more, whatever the stream saw (the device
	 * model may not have run between the unbind and the wait).
	 */
	job = job_checksum(buf, len);
	ret = dev_submit(b, &job, 1, 0);
	job_evidence(&job, "done");
	if (ret || job.status != SVA_ACCEL_ST_DONE || job.result != fnv1a(buf, len))
		fail("checksum on the second binding after the first unbound: %s, status %s",
		     ret ? strerror(-ret) : "ok", status_name(job.status));
	else if (work_and_verify(b, second, 1, "second-binding"))
		fail("the second binding's jobs went wrong after the first unbound");
	else
		pass_note("PASID %d kept translating for the second binding after the first unbound",
			  pasid_int(first));
out:
	if (a >= 0)
		close(a);
	if (b >= 0)
		close(b);
}

/*
 * asid-reuse: two processes use the device one after the other with their
 * buffers at the same address, the first still alive. The first's SVA
 * domain is freed at its unbind and its ASID goes back to the SMMU
 * driver's allocator; the second's domain gets the same ASID. The SMMU's
 * TLB is tagged by ASID alone, so a kernel that frees the ASID without
 * invalidating it leaves the first's translations cached, and the second's
 * reads at the same address reach the first's pages. Each writes its own
 * pages and claims them (kharness-owned markers), and checks every byte.
 */
struct reuse_arg {
	uint8_t *va;
	size_t len;
	uint8_t byte;
	struct gate *unbound;	/* opened once this process has unbound */
	struct gate *leave;	/* NULL, or passed before it exits */
};

static void reuse_member(void *arg)
{
	struct reuse_arg *ra = arg;
	struct sva_accel_job job;
	unsigned int pasid;
	uint8_t *buf, *bad;
	int fd, ret;

	buf = mmap(ra->va, ra->len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (buf != ra->va) {
		fail("mmap at %p: %s", ra->va,
		     buf == MAP_FAILED ? strerror(errno) : "elsewhere");
		gate_open(ra->unbound, 1);
		return;
	}
	memset(buf, ra->byte, ra->len);
	claim_pages(buf, ra->len);
	fd = dev_open();
	if (fd < 0 || dev_bind(fd, &pasid, 0, false))
		goto out;
	job = job_checksum(buf, ra->len);
	ret = dev_submit(fd, &job, 1, 0);
	job_evidence(&job, "done");
	if (ret || job.status != SVA_ACCEL_ST_DONE)
		fail("checksum at %p: %s, status %s", buf,
		     ret ? strerror(-ret) : "ok", status_name(job.status));
	else if (job.result != fnv1a(buf, ra->len))
		fail("the device read other data than this process's at %p (PASID %d): checksum 0x%llx, expected 0x%llx",
		     buf, pasid_int(pasid), (unsigned long long)job.result,
		     (unsigned long long)fnv1a(buf, ra->len));
	ret = dev_unbind(&fd);
	if (ret)
		fail("unbind: %s", strerror(-ret));
out:
	gate_open(ra->unbound, 1);
	if (ra->leave)
		gate_pass(ra->leave);
	for (bad = buf; bad < buf + ra->len && *bad == ra->byte; bad++)
		;
	if (bad < buf + ra->len)
		fail("byte %td of this process's buffer changed to 0x%02x",
		     bad - buf, *bad);
	if (fd >= 0)
		close(fd);
}

static void scenario_asid_reuse(void)
{
	const size_t len = 4 * page_size;
	struct gate unbound, leave;
	struct reuse_arg first, second;
	pid_t a, b;
	void *va;

	if (!sva_mode()) {
		skip("DMA-API mode (SVA unavailable: %d): no ASIDs of processes",
		     device_info.sva_error);
		return;
	}
	/*
	 * Earlier scenarios' deferred unbinds (20 ms after a release, with
	 * the deferred pattern) free their ASIDs when they run: let them, so
	 * that the ASID the first process frees is the one the second gets.
	 */
	usleep(60 * 1000);
	/* An address free in this process is free in its children. */
	va = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (va == MAP_FAILED) {
		fail("mmap of %zu bytes: %s", len, strerror(errno));
		return;
	}
	munmap(va, len);
	gate_init(&unbound);
	gate_init(&leave);
	first = (struct reuse_arg){ va, len, 0xa1, &unbound, &leave };
	second = (struct reuse_arg){ va, len, 0xb2, &unbound, NULL };
	a = spawn(reuse_member, &first);
	if (a > 0 && gate_pass(&unbound)) {
		b = spawn(reuse_member, &second);
		reap_ok(b, "second");
	}
	gate_open(&leave, 1);
	reap_ok(a, "first");
	gate_close(&unbound);
	gate_close(&leave);
	pass_note("two processes read their own pages at %p one after the other, the first still alive",
		  va);
}

/*
 * iopf-demand: with I/O page faults (a stalling SMMU, the sva-stall
 * machine) the driver pins nothing and the device faults pages in itself,
 * as accelerators that do not pin do: it writes into memory the process
 * never touched, reads untouched memory (zero-filled), writes a page shared
 * copy-on-write with a child (the fault must give the writer its own copy
 * and leave the child's alone) and reads a range after madvise(DONTNEED)
 * (zeros again). Every byte is checked on both sides.
 */
static int iopf_job(int fd, struct sva_accel_job *job, const char *what)
{
	int ret = dev_submit(fd, job, 1, 0);

	job_evidence(job, "done");
	if (ret || job->status != SVA_ACCEL_ST_DONE) {
		fail("%s: %s, status %s", what, ret ? strerror(-ret) : "ok",
		     status_name(job->status));
		return -1;
	}
	return 0;
}

static bool all_bytes(const uint8_t *p, size_t len, uint8_t byte)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != byte)
			return false;
	return true;
}

static void scenario_iopf_demand(void)
{
	const size_t len = 8 * page_size;
	struct sva_accel_job job;
	struct gate wrote, checked;
	unsigned int pasid;
	uint8_t *fresh, *zero, *shared, *zapped;
	pid_t child;
	int fd;

	if (!sva_mode() || !device_info.iopf) {
		skip("needs I/O page faults (the sva-stall machine): the driver pins every page here");
		return;
	}
	fd = dev_open();
	if (fd < 0)
		return;
	if (dev_bind(fd, &pasid, 0, false))
		goto out;
	fresh = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	zero = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fresh == MAP_FAILED || zero == MAP_FAILED) {
		fail("mmap: %s", strerror(errno));
		goto out;
	}
	/* Untouched pages: the device's write faults them in. */
	job = job_fill(fresh, len, 0x5555555555555555ULL);
	if (!iopf_job(fd, &job, "fill of untouched pages") && !all_bytes(fresh, len, 0x55))
		fail("the device's fill of untouched pages is not what the process reads");
	/* Untouched pages read: zero-filled, as the CPU would see them. */
	job = job_checksum(zero, len);
	if (!iopf_job(fd, &job, "read of untouched pages")) {
		uint8_t *copy = map_filled(len, 0);

		if (copy && job.result != fnv1a(copy, len))
			fail("the device read untouched pages as other than zeros");
		if (copy)
			munmap(copy, len);
	}

	/* Copy-on-write: the child shares the page until the device writes it. */
	shared = map_filled(len, 0x21);
	if (!shared)
		goto out;
	gate_init(&wrote);
	gate_init(&checked);
	child = fork();
	if (child < 0) {
		fail("fork: %s", strerror(errno));
		goto out;
	}
	if (child == 0) {
		gate_pass(&wrote);
		if (!all_bytes(shared, len, 0x21))
			fail("the child's copy-on-write page changed when the parent's device wrote its own");
		gate_open(&checked, 1);
		_exit(0);
	}
	job = job_fill(shared, len, 0x6767676767676767ULL);
	if (!iopf_job(fd, &job, "fill of pages shared copy-on-write with a child") &&
	    !all_bytes(shared, len, 0x67))
		fail("the device's write to a copy-on-write page is not what the process reads");
	gate_open(&wrote, 1);
	gate_pass(&checked);
	reap_ok(child, "copy-on-write child");
	gate_close(&wrote);
	gate_close(&checked);

	/* DONTNEED: the pages go; the device's read faults zero pages in. */
	zapped = map_filled(len, 0x99);
	if (!zapped)
		goto out;
	mark_range("unmapping", pasid, zapped, len);
	if (madvise(zapped, len, MADV_DONTNEED)) {
		fail("madvise: %s", strerror(errno));
		goto out;
	}
	mark_range("remapping", pasid, zapped, len);
	job = job_copy(zapped, fresh, len);
	if (!iopf_job(fd, &job, "copy from pages after madvise(DONTNEED)") && !all_bytes(fresh, len, 0))
		fail("the device read old data after madvise(DONTNEED)");
	/* A storm: jobs on every slot fault untouched pages in at once. */
	{
		enum { STORM = 16 };
		const size_t each = 16 * page_size;
		struct sva_accel_job jobs[STORM];
		uint8_t *storm = mmap(NULL, STORM * each, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		int k, ret;

		if (storm == MAP_FAILED) {
			fail("mmap: %s", strerror(errno));
			goto out;
		}
		for (k = 0; k < STORM; k++)
			jobs[k] = job_fill(storm + k * each, each,
					   0x0101010101010101ULL * (k + 1));
		ret = dev_submit(fd, jobs, STORM, 0);
		if (ret)
			fail("storm submit: %s", strerror(-ret));
		for (k = 0; !ret && k < STORM; k++) {
			if (jobs[k].status != SVA_ACCEL_ST_DONE ||
			    !all_bytes(storm + k * each, each, k + 1)) {
				job_evidence(&jobs[k], "done");
				fail("storm job %d of %d: %s", k, STORM,
				     status_name(jobs[k].status));
				break;
			}
		}
	}
	pass_note("the device faulted in untouched, zero, copy-on-write and zapped pages through PASID %d, and 256 pages in a storm of 16 jobs at once; every byte as the CPU sees it",
		  pasid_int(pasid));
out:
	close(fd);
}

/*
 * bind-fail-nth: the error paths of binding, as syzkaller reaches them:
 * the n-th kmalloc of one BIND fails (/proc/thread-self/fail-nth, the
 * faults config fragment), for n = 1, 2, ... until a BIND goes through
 * without the failure being injected. Each injected failure must make
 * BIND fail with an errno and leave nothing behind (the next BIND on a
 * fresh file works and its jobs are right), or be absorbed (BIND works).
 */
static bool write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
	close(fd);
	return ok;
}

/* One try of bind-fail-nth in a fresh process: 2 = no failure injected. */
static int bind_fail_try(int n)
{
	static const char nth_path[] = "/proc/thread-self/fail-nth";
	int fd = -1, ret, nth, result;
	unsigned int pasid;
	char text[16];

	nth = open(nth_path, O_RDWR | O_CLOEXEC);
	if (nth < 0) {
		fail("%s: %s", nth_path, strerror(errno));
		return -1;
	}
	snprintf(text, sizeof(text), "%d", n);
	/* With uacce's pattern open() binds: arm the failure before it. */
	if (binds_at_open() && write(nth, text, strlen(text)) < 0)
		fail("arming %s: %s", nth_path, strerror(errno));
	fd = open(device_path, O_RDWR | O_CLOEXEC);
	ret = fd < 0 ? -errno : 0;
	if (!binds_at_open() && fd >= 0) {
		if (write(nth, text, strlen(text)) < 0)
			fail("arming %s: %s", nth_path, strerror(errno));
		ret = dev_bind(fd, &pasid, 0, true);
	}
	memset(text, 0, sizeof(text));
	if (pread(nth, text, sizeof(text) - 1, 0) < 0)
		text[0] = '?';
	/* Not consumed: disarm, or a later allocation of this thread fails. */
	if (write(nth, "0", 1) < 0)
		fail("disarming %s: %s", nth_path, strerror(errno));
	close(nth);
	if (text[0] != '0') {
		/* Fewer than n allocations: every one has been failed once. */
		if (ret)
			fail("BIND failed (%s) with no failure injected", strerror(-ret));
		result = 2;
	} else if (ret) {
		if (ret != -ENOMEM && ret != -ENOSPC && ret != -ENODEV)
			fail("BIND with allocation %d failed ended %s", n, strerror(-ret));
		result = 0;
	} else {
		result = 1;
	}
	if (fd >= 0)
		close(fd);
	/* Nothing left behind: a fresh file of the same process binds and works. */
	fd = dev_open();
	if (fd < 0 || dev_bind(fd, &pasid, 0, binds_at_open()))
		fail("BIND after failing allocation %d", n);
	else if (work_and_verify(fd, pasid, 1, "after-failed-bind"))
		fail("jobs went wrong after failing allocation %d of a BIND", n);
	if (fd >= 0)
		close(fd);
	return result;
}

static void scenario_bind_fail_nth(void)
{
	int n, injected = 0, absorbed = 0, pipefd[2], result;
	pid_t child;

	if (!sva_mode()) {
		skip("DMA-API mode (SVA unavailable: %d): no SVA bind to fail",
		     device_info.sva_error);
		return;
	}
	if (access("/proc/thread-self/fail-nth", W_OK)) {
		skip("needs fault injection (the faults config fragment)");
		return;
	}
	if (!write_text("/sys/kernel/debug/failslab/ignore-gfp-wait", "N") ||
	    !write_text("/sys/kernel/debug/failslab/verbose", "0")) {
		skip("failslab's debugfs knobs are missing");
		return;
	}
	/* Each try in a new process: its first BIND allocates the mm's PASID too. */
	for (n = 1; n <= 256; n++) {
		if (pipe(pipefd) < 0) {
			fail("pipe: %s", strerror(errno));
			return;
		}
		child = fork();
		if (child < 0) {
			fail("fork: %s", strerror(errno));
			return;
		}
		if (child == 0) {
			close(pipefd[0]);
			result = bind_fail_try(n);
			if (write(pipefd[1], &result, sizeof(result)) < 0)
				_exit(1);
			_exit(0);
		}
		close(pipefd[1]);
		if (read(pipefd[0], &result, sizeof(result)) != sizeof(result))
			result = -1;
		close(pipefd[0]);
		reap_ok(child, "bind-fail-nth try");
		if (result < 0 || result == 2)
			break;
		injected++;
		absorbed += result;
	}
	pass_note("%d allocations of a first BIND failed one at a time: %d failed it cleanly, %d were absorbed; each time the next BIND worked",
		  injected, injected - absorbed, absorbed);
}

/*
 * two-devices: one process bound to two sva-accel devices at once shares
 * one PASID and one SVA domain between them (the second device attaches
 * to the domain the first allocated; a fix in v6.8-rc6 was for that
 * sharing). Both work at once; one device's unbind, in either order, must
 * leave the other translating (a repeating read on it runs across the
 * unbind and must still be running when stopped); a child that exits with
 * both bound and a read in flight on each must see both fault.
 */
static const char second_device[] = "/dev/sva-accel1";

static int second_open(void)
{
	int fd = open(second_device, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		fail("open %s: %s", second_device, strerror(errno));
	return fd;
}

/* Unbinds @gone while a repeating read runs on @stays: the read must survive. */
static void unbind_one_device(int *gone, int stays, unsigned int pasid,
			      const char *which)
{
	struct sva_accel_job done;
	uint8_t *buf = start_stream(stays, 4 * page_size, 0x3c);
	int ret, n;

	if (!buf)
		return;
	usleep(2000);
	ret = dev_unbind(gone);
	if (ret)
		fail("unbind of the %s device: %s", which, strerror(-ret));
	usleep(5000);
	n = dev_wait(stays, &done, 1);
	if (n != 1) {
		fail("wait on the other device: %s", n < 0 ? strerror(-n) : "no job");
		return;
	}
	job_evidence(&done, "aborted");
	if (done.status != SVA_ACCEL_ST_ABORTED)
		fail("the other device's repeating read ended %s after %llu bytes once the %s device unbound PASID %d",
		     status_name(done.status), (unsigned long long)done.result,
		     which, pasid_int(pasid));
	else if (work_and_verify(stays, pasid, 1, "other-device"))
		fail("the other device's jobs went wrong after the %s device unbound", which);
}

static void exit_bound_to_both(void *arg)
{
	unsigned int p0, p1;
	int a = dev_open(), b = second_open();

	(void)arg;
	if (a < 0 || b < 0 || dev_bind(a, &p0, 0, false) || dev_bind(b, &p1, 0, false))
		return;
	/*
	 * One stream: two at once can outrun the emulator (each pass is due
	 * 20 us of virtual time after the last, and two streams' passes cost
	 * QEMU's main loop more than that here), which then never lets the
	 * guest's CPU in again: the guest hung with the first device streaming.
	 */
	if (!start_stream(a, 4 * page_size, 0x4d))
		return;
	evidence("note pid=%d pasid=%d exits bound to two devices, a repeating read on the first",
		 getpid(), pasid_int(p0));
	_exit(0);
}

static void scenario_two_devices(void)
{
	unsigned int p0, p1;
	int a = -1, b = -1;
	pid_t child;

	if (!sva_mode()) {
		skip("DMA-API mode (SVA unavailable: %d): no PASIDs to share",
		     device_info.sva_error);
		return;
	}
	if (access(second_device, R_OK | W_OK)) {
		skip("needs a second sva-accel device (%s)", second_device);
		return;
	}
	a = dev_open();
	b = second_open();
	if (a < 0 || b < 0 || dev_bind(a, &p0, 0, false) || dev_bind(b, &p1, 0, false))
		goto out;
	if (p0 != p1) {
		fail("one process bound to two devices got PASIDs %d and %d",
		     pasid_int(p0), pasid_int(p1));
		goto out;
	}
	if (work_and_verify(a, p0, 1, "first-device") ||
	    work_and_verify(b, p1, 1, "second-device"))
		goto out;
	unbind_one_device(&a, b, p0, "first");
	/* The other order: bind the first again, unbind the second. */
	if (a < 0)
		a = dev_open();
	if (a < 0 || dev_bind(a, &p0, 0, binds_at_open()))
		goto out;
	if (p0 != p1) {
		fail("rebinding the first device got PASID %d, the second holds %d",
		     pasid_int(p0), pasid_int(p1));
		goto out;
	}
	unbind_one_device(&b, a, p0, "second");
	child = spawn(exit_bound_to_both, NULL);
	reap_ok(child, "bound to both");
	pass_note("PASID %d shared by two devices; each kept translating while the other unbound, in both orders; a process exited bound to both",
		  pasid_int(p0));
out:
	if (a >= 0)
		close(a);
	if (b >= 0)
		close(b);
}

struct killed_arg {
	struct gate submitted;
};

static void bind_submit_hang(void *arg)
{
	struct killed_arg *ka = arg;
	enum { JOBS = 8 };
	const size_t len = 4 << 20;
	/* And a repeating read, in flight whenever the kill comes. */
	struct sva_accel_job jobs[JOBS + 1];
	unsigned int pasid, i;
	uint8_t *src, *dst;
	int fd, ret;

	fd = dev_open();
	if (fd < 0 || dev_bind(fd, &pasid, 0, false))
		goto out;
	src = mmap(NULL, JOBS * len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	dst = mmap(NULL, JOBS * len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src == MAP_FAILED || dst == MAP_FAILED) {
		fail("mmap: %s", strerror(errno));
		goto out;
	}
	memset(src, 0x3c, JOBS * len);
	memset(dst, 0, JOBS * len);
	for (i = 0; i < JOBS; i++)
		jobs[i] = job_copy(src + i * len, dst + i * len, len);
	jobs[JOBS] = job_checksum(src, 16 << 10);
	jobs[JOBS].flags |= SVA_ACCEL_JOB_REPEAT;
	ret = dev_submit(fd, jobs, JOBS + 1, SVA_ACCEL_SUBMIT_ASYNC);
	if (ret) {
		fail("async submit: %s", strerror(-ret));
		goto out;
	}
	evidence("note pid=%d pasid=%d submitted=%d bytes_each=%zu and a repeating read",
		 getpid(), pasid_int(pasid), JOBS, len);
out:
	gate_open(&ka->submitted, 1);
	for (;;)
		pause();
}

static void scenario_sigkill_inflight(void)
{
	struct killed_arg ka;
	pid_t victim, next;
	int code;

	gate_init(&ka.submitted);
	victim = spawn(bind_submit_hang, &ka);
	if (victim < 0)
		return;
	gate_pass(&ka.submitted);
	kill(victim, SIGKILL);
	code = reap(victim, "killed");
	if (code != 128 + SIGKILL)
		fail("the victim did not die of SIGKILL (%d)", code);
	next = spawn(bind_work_close, "after-kill");
	reap_ok(next, "after-kill");
	canary_check("after the kill");
	gate_close(&ka.submitted);
	pass_note("pid %d killed with 8 copy jobs of 4 MiB submitted on PASID %d; pid %d bound PASID %d and worked",
		  victim, pasid_int(pasid_of(victim)), next,
		  pasid_int(pasid_of(next)));
}

struct group_arg {
	struct gate bound;	/* every member has bound */
	struct gate go;		/* the scenario lets them continue */
	int group;
	bool exit_bound;	/* leave the binding to exit() */
};

/* Binds, waits until the whole group is bound, works, leaves. */
static void wave_member(void *arg)
{
	struct group_arg *ga = arg;
	unsigned int pasid;
	int fd = dev_open();

	if (fd < 0 || dev_bind(fd, &pasid, ga->group, false)) {
		gate_open(&ga->bound, 1);
		return;
	}
	gate_open(&ga->bound, 1);
	gate_pass(&ga->go);
	work_and_verify(fd, pasid, 1, "member");
	if (ga->exit_bound && getpid() % 2)
		return;
	close(fd);
}

static void scenario_fork_before_bind(void)
{
	enum { N = 4 };
	struct group_arg ga = { .group = 1 };
	pid_t pids[N];
	int i;

	gate_init(&ga.bound);
	gate_init(&ga.go);
	for (i = 0; i < N; i++)
		pids[i] = spawn(wave_member, &ga);
	for (i = 0; i < N; i++)
		gate_pass(&ga.bound);
	check_distinct(1, "fork before bind");
	gate_open(&ga.go, N);
	for (i = 0; i < N; i++)
		reap_ok(pids[i], "member");
	gate_close(&ga.bound);
	gate_close(&ga.go);
	pass_note("%d forked children bound at once with distinct PASIDs and worked",
		  N);
}

struct inherit_arg {
	int fd;
	unsigned int pasid;
	struct buf *src, *dst;
};

/* The child of a bound process runs a job through the inherited file. */
static void inherited_user(void *arg)
{
	struct inherit_arg *ia = arg;
	struct sva_accel_info info;
	struct sva_accel_job job;
	int ret;

	if (!dev_info(ia->fd, &info)) {
		evidence("check pid=%d inherited bound=%u pasid=%d bind_pid=%d mm_pasid=%d bind_mm=0x%llx own_mm=0x%llx",
			 getpid(), info.bound, pasid_int(info.pasid),
			 info.bind_pid, pasid_int(info.mm_pasid),
			 (unsigned long long)info.bind_mm,
			 (unsigned long long)info.caller_mm);
		if (info.bind_pid != getppid())
			fail("inherited file names pid %d as binder, parent is %d",
			     info.bind_pid, getppid());
		if (sva_mode() && info.mm_pasid == ia->pasid)
			fail("the child's new mm has its parent's PASID %d",
			     pasid_int(ia->pasid));
	}
	job = job_copy(ia->src->data, ia->dst->data, ia->src->len);
	ret = dev_submit(ia->fd, &job, 1, 0);
	if (ret) {
		fail("submit through the inherited file: %s", strerror(-ret));
		return;
	}
	job_evidence(&job, "done");
	if (job.status != SVA_ACCEL_ST_DONE)
		fail("a copy through the inherited file ended %s",
		     status_name(job.status));
	if (sva_mode() && job.pasid != ia->pasid)
		fail("the inherited file's job ran with PASID %d, not the parent's %d",
		     pasid_int(job.pasid), pasid_int(ia->pasid));
	/* The job runs in the parent's address space, never in ours. */
	buf_check(ia->dst, NULL, "child's copy of the destination");
}

static void scenario_fork_after_bind_use(void)
{
	struct inherit_arg ia = { 0 };
	struct buf src = { 0 }, dst = { 0 };
	pid_t child;
	int fd;

	fd = dev_open();
	if (fd < 0)
		return;
	if (dev_bind(fd, &ia.pasid, 0, false))
		goto out;
	work_and_verify(fd, ia.pasid, 1, "parent");
	if (!buf_new(&src, 5 * page_size + 300, 99, 0x21) ||
	    !buf_new(&dst, 5 * page_size + 300, 1234, 0x43))
		goto out;
	fill_random(src.data, src.len, 4242);
	ia.fd = fd;
	ia.src = &src;
	ia.dst = &dst;
	child = spawn(inherited_user, &ia);
	reap_ok(child, "child");
	/* The child's job ran on our binding: its copy is in our memory. */
	buf_check(&dst, src.data, "parent's destination after the child's job");
	work_and_verify(fd, ia.pasid, 1, "parent-after-child");
	pass_note("child %d's job through the inherited file ran on the parent's PASID %d and landed only in the parent",
		  child, pasid_int(ia.pasid));
out:
	buf_free(&src);
	buf_free(&dst);
	close(fd);
}

/*
 * An exited process's binding kept alive by another process's file, while
 * new processes bind. Shared by fork-after-bind-hold, nginx and fd-leak.
 */
struct holder_arg {
	int fd;			/* the held file, in the holder */
	bool use;		/* run stale jobs on it */
	bool leak;		/* take the master's file with pidfd_getfd */
	struct gate offer;	/* leak: the master's file is up for taking */
	struct gate taken;	/* leak: the holder has it */
	struct gate ready;	/* holder has the file */
	struct gate act;	/* holder may run its jobs and exit */
	struct gate acted;	/* holder ran its jobs */
};

static void holder(void *arg)
{
	struct holder_arg *ha = arg;
	int fd = ha->fd;

	if (ha->leak) {
		/*
		 * An unrelated process takes the bound file out of the master
		 * (pidfd_getfd, 5.6+; needs no socket support in the kernel).
		 */
		int pidfd = -1;

		gate_pass(&ha->offer);
		fd = -1;
		if (board->leak_fd >= 0) {
			pidfd = syscall(SYS_pidfd_open, board->leak_pid, 0);
			if (pidfd >= 0)
				fd = syscall(SYS_pidfd_getfd, pidfd,
					     board->leak_fd, 0);
			if (fd < 0)
				fail("taking fd %d of pid %d: %s",
				     board->leak_fd, board->leak_pid,
				     strerror(errno));
		}
		if (pidfd >= 0)
			close(pidfd);
		gate_open(&ha->taken, 1);
		if (fd < 0) {
			gate_open(&ha->ready, 1);
			gate_open(&ha->acted, 1);
			return;
		}
		evidence("note pid=%d took fd %d of pid %d as fd %d", getpid(),
			 board->leak_fd, board->leak_pid, fd);
	}
	gate_open(&ha->ready, 1);
	gate_pass(&ha->act);
	if (ha->use) {
		struct sva_accel_info info;

		if (!dev_info(fd, &info))
			evidence("check pid=%d holding bound=%u pasid=%d bind_pid=%d bind_mm=0x%llx",
				 getpid(), info.bound, pasid_int(info.pasid),
				 info.bind_pid,
				 (unsigned long long)info.bind_mm);
		stale_jobs(fd, "holder");
	}
	canary_check("after the stale jobs");
	gate_open(&ha->acted, 1);
	evidence("unbind pid=%d how=holder-exit", getpid());
	/* Exit holding the file: the binding ends in exit_files. */
}

/* Binds, works, forks the holder with the file, exits bound. */
static void master(void *arg)
{
	struct holder_arg *ha = arg;
	unsigned int pasid;
	pid_t pid;
	int fd = dev_open();

	if (fd < 0 || dev_bind(fd, &pasid, 0, false)) {
		if (ha->leak) {
			/* No file: the taker learns it and gives up. */
			board->leak_fd = -1;
			gate_open(&ha->offer, 1);
		} else {
			gate_open(&ha->ready, 1);
			gate_open(&ha->acted, 1);
		}
		return;
	}
	work_and_verify(fd, pasid, 1, "master");
	if (ha->leak) {
		board->leak_pid = getpid();
		board->leak_fd = fd;
		gate_open(&ha->offer, 1);
		gate_pass(&ha->taken);
		evidence("note pid=%d had its bound file taken by another process",
			 getpid());
	} else {
		ha->fd = fd;
		pid = spawn(holder, ha);
		board->holder_pid = pid;
		evidence("note pid=%d forked holder pid=%d", getpid(), pid);
	}
	evidence("unbind pid=%d pasid=%d how=exit-with-holder", getpid(),
		 pasid_int(pasid));
	/* Exit without closing: the holder keeps the binding alive. */
}

struct newcomer_arg {
	unsigned int held;	/* PASID of the exited master */
	int holder_hint;
	struct gate ready;
	struct gate go;
};

/* Binds while the old binding is held, works, waits, checks, works. */
static void newcomer(void *arg)
{
	struct newcomer_arg *na = arg;
	unsigned int pasid;
	int fd = dev_open();

	if (fd < 0 || dev_bind(fd, &pasid, 2, false)) {
		gate_open(&na->ready, 1);
		return;
	}
	check_not_reused(pasid, na->held, na->holder_hint, "new binding");
	work_and_verify(fd, pasid, 1, "newcomer");
	gate_open(&na->ready, 1);
	gate_pass(&na->go);
	canary_check("after the holder's jobs");
	work_and_verify(fd, pasid, 1, "newcomer-after");
	close(fd);
}

/*
 * The holder pattern: a master binds and hands the file to a holder (by
 * fork or by SCM_RIGHTS), the master exits, newcomers bind and work while
 * the holder still holds the binding; the holder optionally runs jobs on
 * the dead master's binding (they must fault), then exits; newcomers check
 * their canaries; one last process binds after everything is gone.
 */
static void holder_pattern(bool use, bool leak, int newcomers)
{
	struct holder_arg ha = { .fd = -1, .use = use, .leak = leak };
	struct newcomer_arg na = { 0 };
	pid_t m, h = -1, last, pids[8];
	int i;
	unsigned int held;

	gate_init(&ha.ready);
	gate_init(&ha.act);
	gate_init(&ha.acted);
	gate_init(&na.ready);
	gate_init(&na.go);
	gate_init(&ha.offer);
	gate_init(&ha.taken);
	if (leak)
		h = spawn(holder, &ha);
	m = spawn(master, &ha);
	gate_pass(&ha.ready);
	reap_ok(m, "master");
	held = pasid_of(m);
	na.held = held;
	na.holder_hint = h;
	evidence("note master pid=%d exited, its binding (PASID %d) is held by %s",
		 m, pasid_int(held), leak ? "the receiving process" : "its child");

	for (i = 0; i < newcomers; i++)
		pids[i] = spawn(newcomer, &na);
	for (i = 0; i < newcomers; i++)
		gate_pass(&na.ready);
	check_distinct(2, "newcomers");
	gate_open(&ha.act, 1);
	gate_pass(&ha.acted);
	/* A holder forked by the master is ours now: we are the subreaper. */
	if (h <= 0)
		h = board->holder_pid;
	if (h > 0)
		reap_ok(h, "holder");
	gate_open(&na.go, newcomers);
	for (i = 0; i < newcomers; i++)
		reap_ok(pids[i], "newcomer");
	last = spawn(bind_work_close, "last");
	reap_ok(last, "last");
	evidence("check held_pasid=%d last_pasid=%d", pasid_int(held),
		 pasid_int(pasid_of(last)));
	canary_check("at the end");
	pass_note("master pid %d exited bound to PASID %d; %d newcomers bound other PASIDs%s; the last process bound PASID %d",
		  m, pasid_int(held), newcomers,
		  use ? ", the holder's jobs on the dead binding faulted" : "",
		  pasid_int(pasid_of(last)));
	gate_close(&ha.offer);
	gate_close(&ha.taken);
	gate_close(&ha.ready);
	gate_close(&ha.act);
	gate_close(&ha.acted);
	gate_close(&na.ready);
	gate_close(&na.go);
}

static void scenario_fork_after_bind_hold(void)
{
	holder_pattern(false, false, 1);
}

static void scenario_nginx(void)
{
	holder_pattern(true, false, 3);
}

static void scenario_fd_leak(void)
{
	holder_pattern(true, true, 2);
}

static void scenario_pasid_reuse(void)
{
	enum { WAVES = 6, PER_WAVE = 8 };
	struct group_arg ga[WAVES];
	pid_t pids[WAVES][PER_WAVE];
	int w, i, j, reused = 0, distinct = 0;
	unsigned int seen[WAVES * PER_WAVE];
	int nseen = 0;

	if (!sva_mode()) {
		skip("DMA-API mode (SVA unavailable: %d): no PASIDs to reuse",
		     device_info.sva_error);
		return;
	}
	/*
	 * Waves overlap: wave w+1 binds while wave w exits, half of each wave
	 * leaving its binding to exit().
	 */
	for (w = 0; w < WAVES; w++) {
		ga[w].group = 100 + w;
		ga[w].exit_bound = true;
		gate_init(&ga[w].bound);
		gate_init(&ga[w].go);
		for (i = 0; i < PER_WAVE; i++)
			pids[w][i] = spawn(wave_member, &ga[w]);
		for (i = 0; i < PER_WAVE; i++)
			gate_pass(&ga[w].bound);
		check_distinct(ga[w].group, "one wave");
		gate_open(&ga[w].go, PER_WAVE);
		if (w > 0) {
			for (i = 0; i < PER_WAVE; i++)
				reap_ok(pids[w - 1][i], "member");
		}
	}
	for (i = 0; i < PER_WAVE; i++)
		reap_ok(pids[WAVES - 1][i], "member");
	for (i = 0; i < board->nr_binds && i < (int)ARRAY_SIZE(board->binds);
	     i++) {
		for (j = 0; j < nseen; j++)
			if (seen[j] == board->binds[i].pasid)
				break;
		if (j < nseen) {
			reused++;
		} else if (nseen < (int)ARRAY_SIZE(seen)) {
			seen[nseen++] = board->binds[i].pasid;
			distinct++;
		}
	}
	evidence("check binds=%d distinct_pasids=%d reuses=%d", board->nr_binds,
		 distinct, reused);
	for (w = 0; w < WAVES; w++) {
		gate_close(&ga[w].bound);
		gate_close(&ga[w].go);
	}
	pass_note("%d processes in %d overlapping waves of %d bound %d distinct PASIDs, %d reuses",
		  WAVES * PER_WAVE, WAVES, PER_WAVE, distinct, reused);
}

struct thread_arg {
	int fd;			/* shared file, or -1: open one */
	unsigned int pasid;
	int index;
};

static void *thread_main(void *arg)
{
	struct thread_arg *ta = arg;
	char who[32];
	int fd = ta->fd;

	snprintf(who, sizeof(who), "thread%d", ta->index);
	if (fd < 0) {
		struct sva_accel_info info;

		fd = dev_open();
		if (fd < 0 || dev_bind(fd, &ta->pasid, 3, false))
			return NULL;
		if (!dev_info(fd, &info) && sva_mode() &&
		    info.mm_pasid != ta->pasid)
			fail("%s: the mm's PASID is %d, its bind returned %d",
			     who, pasid_int(info.mm_pasid),
			     pasid_int(ta->pasid));
	}
	work_and_verify(fd, ta->pasid, 1, who);
	if (ta->fd < 0)
		close(fd);
	return NULL;
}

static void scenario_threads(void)
{
	enum { T = 4 };
	struct thread_arg ta[T];
	pthread_t th[T];
	unsigned int shared_pasid;
	int i, fd;

	for (i = 0; i < T; i++) {
		ta[i] = (struct thread_arg){ .fd = -1, .index = i };
		if (pthread_create(&th[i], NULL, thread_main, &ta[i])) {
			fail("pthread_create failed");
			return;
		}
	}
	for (i = 0; i < T; i++)
		pthread_join(th[i], NULL);
	for (i = 1; i < T; i++)
		if (ta[i].pasid != ta[0].pasid)
			fail("threads of one process bound different PASIDs: %d and %d",
			     pasid_int(ta[0].pasid), pasid_int(ta[i].pasid));

	/* One file shared by all threads. */
	fd = dev_open();
	if (fd < 0 || dev_bind(fd, &shared_pasid, 4, false))
		goto out;
	if (sva_mode() && shared_pasid != ta[0].pasid)
		fail("the same mm bound again got PASID %d, before %d",
		     pasid_int(shared_pasid), pasid_int(ta[0].pasid));
	for (i = 0; i < T; i++) {
		ta[i] = (struct thread_arg){ .fd = fd, .pasid = shared_pasid,
					     .index = T + i };
		if (pthread_create(&th[i], NULL, thread_main, &ta[i])) {
			fail("pthread_create failed");
			goto out;
		}
	}
	for (i = 0; i < T; i++)
		pthread_join(th[i], NULL);
	expect_second_bind(fd, shared_pasid, 4, "BIND on a file already bound");
	pass_note("%d threads bound PASID %d on their own files and worked concurrently, then on one shared file",
		  T, pasid_int(ta[0].pasid));
out:
	if (fd >= 0)
		close(fd);
}

/* One job on addr whose outcome must be a fault of the given kind. */
static void expect_fault(int fd, struct sva_accel_job job, unsigned int want,
			 const char *what)
{
	unsigned int want_status = sva_mode() ? want : SVA_ACCEL_ST_PIN_FAULT;
	int ret;

	if (sva_mode())
		job.flags |= SVA_ACCEL_JOB_NO_PREFAULT;
	ret = dev_submit(fd, &job, 1, 0);
	if (ret) {
		fail("%s: submit: %s", what, strerror(-ret));
		return;
	}
	job_evidence(&job, status_name(want_status));
	if (job.status != want_status)
		fail("%s: ended %s, expected %s", what, status_name(job.status),
		     status_name(want_status));
}

static void scenario_munmap_dma(void)
{
	struct buf src = { 0 };
	struct sva_accel_job job;
	unsigned int pasid;
	size_t len = 2 * page_size, big_len;
	uint8_t *x, *y, *big;
	int fd, ret;

	fd = dev_open();
	if (fd < 0)
		return;
	if (dev_bind(fd, &pasid, 0, false) || !buf_new(&src, len, 0, 0x99))
		goto out;
	fill_random(src.data, len, 77);
	x = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	y = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (x == MAP_FAILED || y == MAP_FAILED) {
		fail("mmap: %s", strerror(errno));
		goto out;
	}
	memset(x, 0, len);
	memset(y, 0, len);

	/* Warm the IOTLB with x and y, then take them away. */
	job = job_copy(src.data, x, len);
	ret = dev_submit(fd, &job, 1, 0);
	if (ret || job.status != SVA_ACCEL_ST_DONE || memcmp(x, src.data, len))
		fail("warm-up copy: %s, status %s",
		     ret ? strerror(-ret) : "ok", status_name(job.status));
	job = job_fill(y, len, 0x1111111111111111ULL);
	ret = dev_submit(fd, &job, 1, 0);
	if (ret || job.status != SVA_ACCEL_ST_DONE)
		fail("warm-up fill: %s, status %s",
		     ret ? strerror(-ret) : "ok", status_name(job.status));

	mark_range("unmapping", pasid, x, len);
	if (munmap(x, len)) {
		fail("munmap: %s", strerror(errno));
		goto out;
	}
	mark_range("unmapped", pasid, x, len);
	evidence("note pid=%d unmapped 0x%lx", getpid(), (unsigned long)x);
	expect_fault(fd, job_copy(src.data, x, len), SVA_ACCEL_ST_FAULT_WRITE,
		     "write to an unmapped buffer");
	expect_fault(fd, job_checksum(x, len), SVA_ACCEL_ST_FAULT_READ,
		     "read of an unmapped buffer");

	/* New pages at the same address: the device must see them. */
	mark_range("remapping", pasid, x, len);
	if (mmap(x, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != x) {
		fail("remap: %s", strerror(errno));
		goto out;
	}
	fill_random(x, len, 88);
	job = job_checksum(x, len);
	if (sva_mode())
		job.flags |= SVA_ACCEL_JOB_NO_PREFAULT;
	ret = dev_submit(fd, &job, 1, 0);
	job_evidence(&job, "done");
	if (ret || job.status != SVA_ACCEL_ST_DONE)
		fail("checksum of the remapped buffer: %s, status %s",
		     ret ? strerror(-ret) : "ok", status_name(job.status));
	else if (job.result != fnv1a(x, len))
		fail("the device read stale pages after munmap and mmap at 0x%lx (checksum 0x%llx, CPU 0x%llx)",
		     (unsigned long)x, (unsigned long long)job.result,
		     (unsigned long long)fnv1a(x, len));

	/* Read-only now: a writable IOTLB entry must not survive. */
	mark_range("unmapping", pasid, y, len);
	if (mprotect(y, len, PROT_READ)) {
		fail("mprotect: %s", strerror(errno));
		goto out;
	}
	mark_range("readonly", pasid, y, len);
	expect_fault(fd, job_fill(y, len, 0x2222222222222222ULL),
		     SVA_ACCEL_ST_FAULT_WRITE, "write to a read-only buffer");
	for (size_t i = 0; i < len; i++) {
		if (y[i] != 0x11) {
			fail("the device wrote a read-only page at byte %zu", i);
			break;
		}
	}
	/*
	 * 512 pages or more at once: arm-smmu-v3's notifier invalidates the
	 * whole ASID instead of the range (CMDQ_MAX_TLBI_OPS), a path of its
	 * own that must leave no translation behind either.
	 */
	big_len = 512 * page_size + page_size;
	big = map_filled(big_len, 0x42);
	if (!big)
		goto out;
	job = job_checksum(big, big_len);
	ret = dev_submit(fd, &job, 1, 0);
	if (ret || job.status != SVA_ACCEL_ST_DONE || job.result != fnv1a(big, big_len))
		fail("checksum of %zu bytes: %s, status %s", big_len,
		     ret ? strerror(-ret) : "ok", status_name(job.status));
	mark_range("unmapping", pasid, big, big_len);
	if (munmap(big, big_len)) {
		fail("munmap of %zu bytes: %s", big_len, strerror(errno));
		goto out;
	}
	mark_range("unmapped", pasid, big, big_len);
	expect_fault(fd, job_checksum(big, big_len), SVA_ACCEL_ST_FAULT_READ,
		     "read of an unmapped buffer of 513 pages");
	/* The device is idle; the buffers below may be mapped there. */
	mark_range("remapping", pasid, big, big_len);
	work_and_verify(fd, pasid, 1, "after-munmap");
	pass_note("unmapped (2 and 513 pages) and read-only buffers faulted (%s); remapped pages were read fresh",
		  sva_mode() ? "device faults, no prefault" : "pinning refused");
out:
	buf_free(&src);
	close(fd);
}

/* The process that binds and execs; the new image runs exec_stage(). */
static void exec_binder(void *arg)
{
	int *report = arg;
	char fd_arg[16], pasid_arg[16], report_arg[16];
	unsigned int pasid;
	int fd = dev_open();

	if (fd < 0 || dev_bind(fd, &pasid, 0, false))
		return;
	work_and_verify(fd, pasid, 1, "before-exec");
	/*
	 * A repeating read runs across the exec: the old mm's teardown must
	 * stop it (the new image collects it and expects a fault).
	 */
	if (!start_stream(fd, 4 * page_size, 0x66))
		return;
	snprintf(fd_arg, sizeof(fd_arg), "%d", fd);
	snprintf(pasid_arg, sizeof(pasid_arg), "%u", pasid);
	snprintf(report_arg, sizeof(report_arg), "%d", report[1]);
	evidence("note pid=%d execs with the bound file open, PASID %d",
		 getpid(), pasid_int(pasid));
	execl("/proc/self/exe", "kharness-sva", "--exec-stage", scenario,
	      fd_arg, pasid_arg, report_arg, (char *)NULL);
	fail("exec: %s", strerror(errno));
}

/* After exec: the old binding's mm is gone, the process is the same. */
static int exec_stage(char **argv)
{
	int fd = atoi(argv[1]), report = atoi(argv[3]), nfd;
	unsigned int old = strtoul(argv[2], NULL, 10), pasid = NO_PASID, want;
	struct sva_accel_job stream;
	struct sva_accel_info info;
	struct board local = { 0 };

	scenario = argv[0];
	board = &local;
	canary_map();
	canary_claim();
	if (!dev_info(fd, &info)) {
		evidence("check pid=%d after-exec bound=%u pasid=%d bind_pid=%d mm_pasid=%d bind_mm=0x%llx own_mm=0x%llx",
			 getpid(), info.bound, pasid_int(info.pasid),
			 info.bind_pid, pasid_int(info.mm_pasid),
			 (unsigned long long)info.bind_mm,
			 (unsigned long long)info.caller_mm);
		if (!info.bound || info.pasid != old)
			fail("after exec the file's binding changed: bound=%u PASID %d, was %d",
			     info.bound, pasid_int(info.pasid),
			     pasid_int(old));
		if (info.bind_mm == info.caller_mm)
			fail("after exec the file is bound to the new mm");
	}
	/*
	 * The stream the old image left running stopped when its mm went
	 * (in DMA-API mode its pinned pages stay valid until it is stopped).
	 */
	want = sva_mode() ? SVA_ACCEL_ST_FAULT_READ : SVA_ACCEL_ST_ABORTED;
	if (sva_mode())
		wait_finished(fd, 200);
	if (dev_wait(fd, &stream, 1) != 1) {
		fail("after exec: the stream started before it was not there to collect");
	} else {
		job_evidence(&stream, status_name(want));
		if (stream.status != want)
			fail("after exec: the old image's stream ended %s after %llu bytes, expected %s",
			     status_name(stream.status),
			     (unsigned long long)stream.result,
			     status_name(want));
	}
	stale_jobs(fd, "after-exec");
	nfd = dev_open();
	if (nfd >= 0 && !dev_bind(nfd, &pasid, 0, false)) {
		check_not_reused(pasid, old, getpid(), "bind after exec");
		work_and_verify(nfd, pasid, 1, "after-exec");
	}
	canary_check("after exec");
	close(fd);
	evidence("unbind pid=%d pasid=%d how=close-after-exec", getpid(),
		 pasid_int(old));
	if (nfd >= 0)
		close(nfd);
	if (local.failures) {
		dprintf(report, "%s\n", local.fail_reason);
		return 1;
	}
	dprintf(report, "ok new PASID %d\n", pasid_int(pasid));
	return 0;
}

static void scenario_exec_after_bind(void)
{
	int report[2];
	char line[400] = "";
	ssize_t n;
	pid_t pid;

	if (pipe(report) < 0) {
		fail("pipe: %s", strerror(errno));
		return;
	}
	pid = spawn(exec_binder, report);
	close(report[1]);
	n = read(report[0], line, sizeof(line) - 1);
	if (n > 0) {
		line[n] = 0;
		line[strcspn(line, "\n")] = 0;
	}
	close(report[0]);
	if (reap(pid, "exec") != 0)
		fail("after exec: %s", n > 0 ? line : "no report");
	else if (n <= 0 || strncmp(line, "ok ", 3))
		fail("the exec'd process sent no report");
	else
		pass_note("pid %d exec'd bound to PASID %d: jobs on the old binding faulted, the new mm bound %s",
			  pid, pasid_int(pasid_of(pid)), line + 3);
}

struct scenario {
	const char *name;
	void (*run)(void);
};

static const struct scenario scenarios[] = {
	{ "baseline", scenario_baseline },
	{ "exit-no-unbind", scenario_exit_no_unbind },
	{ "sigkill-inflight", scenario_sigkill_inflight },
	{ "fork-before-bind", scenario_fork_before_bind },
	{ "fork-after-bind-use", scenario_fork_after_bind_use },
	{ "fork-after-bind-hold", scenario_fork_after_bind_hold },
	{ "nginx", scenario_nginx },
	{ "pasid-reuse", scenario_pasid_reuse },
	{ "threads", scenario_threads },
	{ "munmap-dma", scenario_munmap_dma },
	{ "exec-after-bind", scenario_exec_after_bind },
	{ "fd-leak", scenario_fd_leak },
	{ "exit-inflight-dma", scenario_exit_inflight_dma },
	{ "munmap-inflight-dma", scenario_munmap_inflight_dma },
	{ "exit-parent-inflight-dma", scenario_exit_parent_inflight_dma },
	{ "unbind-one-of-two", scenario_unbind_one_of_two },
	{ "asid-reuse", scenario_asid_reuse },
	{ "two-devices", scenario_two_devices },
	{ "iopf-demand", scenario_iopf_demand },
	{ "bind-fail-nth", scenario_bind_fail_nth },
};

/* ---------------------------------------------------------------- runner */

/* The guest's virtual counter, the clock the device times its records with */
static uint64_t read_cntvct(void)
{
	uint64_t v = 0;

#ifdef __aarch64__
	asm volatile("isb\n\tmrs %0, cntvct_el0" : "=r"(v) : : "memory");
#endif
	return v;
}

/*
 * Puts the counter on the trace's clock for the host: each "before" marker
 * is recorded between the two counter reads it and the "after" marker name,
 * so its timestamp brackets the offset between the two clocks. The
 * tightest of several samples wins on the host.
 */
static void mark_counter(void)
{
	const char *path = getenv("KHARNESS_TRACE_MARKER");
	char buf[80];
	uint64_t before, after;
	int fd, i, n;

	if (!path || !*path)
		return;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	for (i = 0; i < 8; i++) {
		before = read_cntvct();
		n = snprintf(buf, sizeof(buf), "kharness-cntvct before=%llu",
			     (unsigned long long)before);
		if (write(fd, buf, n) != n)
			break;
		after = read_cntvct();
		n = snprintf(buf, sizeof(buf), "kharness-cntvct after=%llu",
			     (unsigned long long)after);
		if (write(fd, buf, n) != n)
			break;
	}
	close(fd);
}

static const char *device_problem(void)
{
	static char why[256];
	int fd = open(device_path, O_RDWR);

	if (fd < 0) {
		const char *setup = getenv("KHARNESS_SVA_SETUP_ERROR");

		/* The workload script knows why better than open() does. */
		if (setup && *setup)
			snprintf(why, sizeof(why), "%s", setup);
		else
			snprintf(why, sizeof(why), "no sva-accel device: %s: %s",
				 device_path, strerror(errno));
		return why;
	}
	if (dev_info(fd, &device_info)) {
		snprintf(why, sizeof(why), "%s: INFO failed: %s", device_path,
			 strerror(errno));
		close(fd);
		return why;
	}
	close(fd);
	if (device_info.abi_version != SVA_ACCEL_ABI_VERSION) {
		snprintf(why, sizeof(why), "driver ABI %u, workload ABI %u",
			 device_info.abi_version, SVA_ACCEL_ABI_VERSION);
		return why;
	}
	return NULL;
}

/* The kernel's taint flags; TAINT_DIE (bit 7) is set by every oops. */
#define TAINT_DIE	(1UL << 7)

static unsigned long kernel_taint(void)
{
	char text[32] = "";
	int fd = open("/proc/sys/kernel/tainted", O_RDONLY);

	if (fd < 0)
		return 0;
	if (read(fd, text, sizeof(text) - 1) < 0)
		text[0] = 0;
	close(fd);
	return strtoul(text, NULL, 10);
}

/* The scenario during which the kernel oopsed, if one did. */
static const char *oopsed_in;
static unsigned long initial_taint;
static const char *previous_scenario = "the start of the workload";

static long ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 +
	       (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/*
 * Waits for the scenario process. Gives up when the time limit passes or,
 * a few seconds after the kernel oopsed, since its processes may then be
 * stuck for good. Returns whether it ended.
 */
static bool wait_scenario(pid_t pid, const struct timespec *t0, int *status)
{
	unsigned long taint = kernel_taint();
	long oops_ms = -1;

	for (;;) {
		if (waitpid(pid, status, WNOHANG) == pid)
			return true;
		if (oops_ms < 0 && (kernel_taint() & ~taint & TAINT_DIE)) {
			oops_ms = ms_since(t0);
			oopsed_in = scenario;
		}
		if (oops_ms >= 0 && ms_since(t0) - oops_ms > 3000) {
			fail("the kernel oopsed during the scenario (taint 0x%lx)",
			     kernel_taint());
			return false;
		}
		if (ms_since(t0) > SCENARIO_TIMEOUT_S * 1000L) {
			fail("timed out after %d s", SCENARIO_TIMEOUT_S);
			return false;
		}
		usleep(10000);
	}
}

/* Runs one scenario in its own process group, with a time limit. */
static void run_scenario(const struct scenario *sc, const char *problem)
{
	const char *verdict, *reason;
	struct timespec t0;
	int status = 0, i;
	bool ended;
	pid_t pid;

	scenario = sc->name;
	emit("@@kharness begin %s", sc->name);
	if (problem) {
		emit("@@kharness result %s SKIP %s", sc->name, problem);
		emit("@@kharness end %s", sc->name);
		return;
	}
	/* An oops after the previous scenario ended is its doing too. */
	if (!oopsed_in && (kernel_taint() & ~initial_taint & TAINT_DIE))
		oopsed_in = previous_scenario;
	previous_scenario = sc->name;
	if (oopsed_in) {
		emit("@@kharness result %s SKIP the kernel oopsed during or after %s",
		     sc->name, oopsed_in);
		emit("@@kharness end %s", sc->name);
		return;
	}
	memset(board, 0, sizeof(*board));
	evidence("device mode=%s slots=%u pasid_bits=%u sva_error=%d",
		 sva_mode() ? "sva" : "dma", device_info.slots,
		 device_info.pasid_bits, device_info.sva_error);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		/* Orphaned holders come back to us, to be reaped. */
		prctl(PR_SET_CHILD_SUBREAPER, 1);
		canary_claim();
		sc->run();
		canary_check("scenario end");
		while (wait(NULL) > 0)
			;
		_exit(0);
	}
	if (pid < 0) {
		fail("fork: %s", strerror(errno));
	} else {
		setpgid(pid, pid);
		ended = wait_scenario(pid, &t0, &status);
		/* Whatever is left of the process group goes now. */
		kill(-pid, SIGKILL);
		/* Processes stuck in the kernel may never die: do not hang. */
		for (i = 0; !ended && i < 300; i++) {
			if (waitpid(pid, &status, WNOHANG) == pid)
				ended = true;
			else
				usleep(10000);
		}
		if (!ended)
			evidence("note the scenario process %d does not die", pid);
		else if (WIFSIGNALED(status) && !board->failures)
			fail("the scenario process died of signal %d",
			     WTERMSIG(status));
	}
	evidence("note elapsed_ms=%ld", ms_since(&t0));
	if (board->failures) {
		verdict = "FAIL";
		reason = board->fail_reason;
	} else if (board->skips) {
		verdict = "SKIP";
		reason = board->skip_reason;
	} else {
		verdict = "PASS";
		reason = board->pass_note[0] ? board->pass_note : "all checks passed";
	}
	emit("@@kharness result %s %s %s%s", sc->name, verdict, reason,
	     !strcmp(verdict, "PASS") && !sva_mode() ? " (DMA-API mode)" : "");
	emit("@@kharness end %s", sc->name);
}

/* The uio pattern's own scenarios: the device programmed from user space. */
static const struct scenario uio_scenarios[] = {
	{ "uio-baseline", scenario_uio_baseline },
	{ "uio-exit-open", scenario_uio_exit_open },
	{ "uio-two-openers", scenario_uio_two_openers },
};

static bool is_uio_scenario(const struct scenario *sc)
{
	return sc >= uio_scenarios && sc < uio_scenarios + ARRAY_SIZE(uio_scenarios);
}

static const struct scenario *find_scenario(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(scenarios); i++)
		if (!strcmp(scenarios[i].name, name))
			return &scenarios[i];
	for (i = 0; i < ARRAY_SIZE(uio_scenarios); i++)
		if (!strcmp(uio_scenarios[i].name, name))
			return &uio_scenarios[i];
	return NULL;
}

/* Why @sc cannot run with this device and pattern, or NULL. */
static const char *scenario_problem(const struct scenario *sc,
				    const char *driver_problem)
{
	static char why[256];

	if (is_uio_scenario(sc) != binds_via_uio())
		return binds_via_uio() ?
			"the uio pattern drives the device without the sva_accel driver" :
			"needs the uio pattern (kharness.sva.pattern=uio)";
	if (!binds_via_uio())
		return driver_problem;
	if (access(uio_path(), R_OK | W_OK)) {
		const char *setup = getenv("KHARNESS_SVA_SETUP_ERROR");

		snprintf(why, sizeof(why), "%s",
			 setup && *setup ? setup : "no /dev/uio device");
		return why;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const struct scenario *chosen[64];
	const char *problem, *list = NULL;
	int nchosen = 0, i;
	bool all = false;
	char *copy, *tok, *save;

	setvbuf(stdout, NULL, _IONBF, 0);
	page_size = sysconf(_SC_PAGESIZE);
	if (argc >= 6 && !strcmp(argv[1], "--exec-stage")) {
		int fd = open(device_path, O_RDWR);

		if (fd >= 0) {
			dev_info(fd, &device_info);
			close(fd);
		}
		return exec_stage(argv + 2);
	}
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--list")) {
			for (size_t k = 0; k < ARRAY_SIZE(scenarios); k++)
				printf("%s\n", scenarios[k].name);
			return 0;
		} else if (!strcmp(argv[i], "--device") && i + 1 < argc) {
			device_path = argv[++i];
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "kharness-sva: unknown option '%s'\n",
				argv[i]);
			return 2;
		} else if (nchosen < (int)ARRAY_SIZE(chosen)) {
			chosen[nchosen] = find_scenario(argv[i]);
			if (!chosen[nchosen]) {
				fprintf(stderr, "kharness-sva: unknown scenario '%s'\n",
					argv[i]);
				return 2;
			}
			nchosen++;
		}
	}
	if (!nchosen)
		list = getenv("KHARNESS_SCENARIOS");
	if (list && *list) {
		copy = strdup(list);
		for (tok = strtok_r(copy, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save)) {
			const struct scenario *sc = find_scenario(tok);

			if (!sc) {
				/* Reported like a scenario, so it is seen. */
				emit("@@kharness begin %s", tok);
				emit("@@kharness result %s FAIL no such scenario in kharness-sva",
				     tok);
				emit("@@kharness end %s", tok);
				continue;
			}
			if (nchosen < (int)ARRAY_SIZE(chosen))
				chosen[nchosen++] = sc;
		}
		free(copy);
	} else if (!nchosen && binds_via_uio()) {
		for (i = 0; i < (int)ARRAY_SIZE(uio_scenarios); i++)
			chosen[nchosen++] = &uio_scenarios[i];
	} else if (!nchosen) {
		for (i = 0; i < (int)ARRAY_SIZE(scenarios); i++)
			chosen[nchosen++] = &scenarios[i];
		all = true;
	}

	board = mmap(NULL, sizeof(*board), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (board == MAP_FAILED) {
		perror("kharness-sva: mmap");
		return 2;
	}
	canary_map();
	initial_taint = kernel_taint();
	problem = binds_via_uio() ? NULL : device_problem();
	if (binds_via_uio())
		device_info.mode = SVA_ACCEL_MODE_SVA;
	/*
	 * The whole set has the I/O page-fault scenario only where the kernel
	 * resolves the device's faults (the sva-stall machine), and the
	 * fault-injection one only where the kernel has fault injection;
	 * asked for by name elsewhere, they skip.
	 */
	if (all) {
		bool inject = !access("/proc/thread-self/fail-nth", W_OK);
		int kept = 0;

		for (i = 0; i < nchosen; i++)
			if ((chosen[i]->run != scenario_iopf_demand || device_info.iopf) &&
			    (chosen[i]->run != scenario_bind_fail_nth || inject))
				chosen[kept++] = chosen[i];
		nchosen = kept;
	}
	mark_counter();
	for (i = 0; i < nchosen; i++)
		run_scenario(chosen[i], scenario_problem(chosen[i], problem));
	mark_counter();
	return 0;
}
