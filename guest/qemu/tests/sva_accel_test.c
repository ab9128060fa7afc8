// SPDX-License-Identifier: GPL-2.0
/*
 * Guest-side check of kharness's QEMU patches: drives the sva-accel device
 * through the emulated SMMUv3 and reports each check on the console as
 *   sva-accel-test: PASS|FAIL|SKIP <check> <detail>
 *
 * Checks:
 *   dma   jobs without PASID through the DMA API (default domain)
 *   pasid two paging domains attached to two PASIDs: each job sees only
 *         its domain's pages; unmapped and read-only addresses fault with
 *         the right status; a repeating job runs until aborted, and faults
 *         as soon as its PASID is detached; a detached PASID faults
 *   sva   (kernels with SVA) binds the mm of the process loading the
 *         module and copies between two of its own pages by virtual
 *         address; an address it never mapped faults
 *   iopf  (stall=1: the SMMU runs with arm-smmuv3.stall=force) I/O page
 *         faults through Linux's IOPF path: a job touching pages the
 *         process never touched stalls (the device's STALLED bit), other
 *         slots keep going, Linux faults the pages in and resumes with
 *         CMD_RESUME(retry), the job completes with the right data; an
 *         unmapped address is resumed with an abort and the job faults;
 *         CMD_STALL_TERM (the next CMD_RESUME Linux builds is rewritten
 *         into one by a kretprobe) terminates both stalls of the stream;
 *         and the cost of a resolved fault
 * Everything runs from module init, in the context of insmod.
 */
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/interrupt.h>
#include <linux/iommu.h>
#include <linux/kprobes.h>
#include <linux/ktime.h>
#include <linux/mmap_lock.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/wait.h>

#define SVA_ACCEL_VENDOR	0x1234
#define SVA_ACCEL_DEVICE	0x5356
#define SVA_ACCEL_ID_VALUE	0x53564131

#define REG_ID			0x000
#define REG_CAPS		0x008
#define REG_STATUS		0x00c
#define REG_INT_STATUS		0x010
#define REG_INT_ENABLE		0x014
#define REG_STALLED		0x01c
#define SLOT(n)			(0x1000 + 0x40 * (n))
#define SLOT_OP			0x00
#define SLOT_PASID		0x04
#define SLOT_SRC		0x08
#define SLOT_DST		0x10
#define SLOT_LEN		0x18
#define SLOT_PATTERN		0x20
#define SLOT_RESULT		0x28
#define SLOT_STATUS		0x30
#define SLOT_DOORBELL		0x34
#define SLOT_FAULT_ADDR		0x38

#define OP_COPY			1
#define OP_FILL			2
#define OP_CHECKSUM		3
#define OP_REPEAT		BIT(30)
#define OP_USE_PASID		BIT(31)

#define ST_BUSY			0x01
#define ST_DONE			0x02
#define ST_FAULT_READ		0x10
#define ST_FAULT_WRITE		0x11
#define ST_BAD_OP		0x20
#define ST_ABORTED		0x30

#define NO_PASID		(~0U)
#define TEST_IOVA		0x10000000UL

struct accel {
	struct pci_dev *pdev;
	void __iomem *regs;
	wait_queue_head_t wait;
	atomic_t irqs;
};

struct job_result {
	u32 status;
	u64 result;
	u64 fault_addr;
};

static int failures;

static bool stall;
module_param(stall, bool, 0444);
MODULE_PARM_DESC(stall, "the SMMU forces stall: check I/O page faults");

#define report(ok, check, fmt, ...) do {				\
	if (!(ok))							\
		failures++;						\
	pr_info("sva-accel-test: %s %s " fmt "\n", (ok) ? "PASS" : "FAIL", \
		check, ##__VA_ARGS__);					\
} while (0)

static irqreturn_t accel_irq(int irq, void *data)
{
	struct accel *a = data;
	u32 pending = readl(a->regs + REG_INT_STATUS);

	if (!pending)
		return IRQ_NONE;
	writel(pending, a->regs + REG_INT_STATUS);
	atomic_inc(&a->irqs);
	wake_up_all(&a->wait);
	return IRQ_HANDLED;
}

/* Runs one job in slot 0 and waits for its completion interrupt. */
static int run_job(struct accel *a, u32 op, u32 pasid, u64 src, u64 dst,
		   u64 len, u64 pattern, struct job_result *res)
{
	void __iomem *slot = a->regs + SLOT(0);
	int irqs = atomic_read(&a->irqs);
	long left;

	if (pasid != NO_PASID) {
		op |= OP_USE_PASID;
		writel(pasid, slot + SLOT_PASID);
	}
	writel(op, slot + SLOT_OP);
	writeq(src, slot + SLOT_SRC);
	writeq(dst, slot + SLOT_DST);
	writeq(len, slot + SLOT_LEN);
	writeq(pattern, slot + SLOT_PATTERN);
	writel(1, slot + SLOT_DOORBELL);

	left = wait_event_timeout(a->wait,
				  readl(slot + SLOT_STATUS) != ST_BUSY &&
				  atomic_read(&a->irqs) != irqs, 5 * HZ);
	res->status = readl(slot + SLOT_STATUS);
	res->result = readq(slot + SLOT_RESULT);
	res->fault_addr = readq(slot + SLOT_FAULT_ADDR);
	return left ? 0 : -ETIMEDOUT;
}

static u64 fnv1a(const u8 *buf, size_t len)
{
	u64 hash = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		hash ^= buf[i];
		hash *= 0x100000001b3ULL;
	}
	return hash;
}

static void fill_pattern(u8 *buf, size_t len, u8 seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = seed + i * 7 + (i >> 8);
}

static void test_dma(struct accel *a)
{
	struct device *dev = &a->pdev->dev;
	size_t size = 3 * PAGE_SIZE, len = size - 100;
	struct job_result res;
	dma_addr_t src_dma, dst_dma;
	u8 *src, *dst;
	size_t i;
	int ret;

	src = dma_alloc_coherent(dev, size, &src_dma, GFP_KERNEL);
	dst = dma_alloc_coherent(dev, size, &dst_dma, GFP_KERNEL);
	if (!src || !dst) {
		report(false, "dma", "dma_alloc_coherent failed");
		goto out;
	}
	fill_pattern(src, size, 3);
	memset(dst, 0, size);

	ret = run_job(a, OP_COPY, NO_PASID, src_dma + 50, dst_dma + 50, len, 0,
		      &res);
	report(!ret && res.status == ST_DONE && !memcmp(src + 50, dst + 50, len) &&
	       !dst[49] && !dst[50 + len],
	       "dma-copy", "ret=%d status=0x%x iova=%pad", ret, res.status,
	       &dst_dma);

	ret = run_job(a, OP_FILL, NO_PASID, 0, dst_dma + 1, len, 0x0123456789abcdefULL,
		      &res);
	for (i = 0; i < len; i++)
		if (dst[1 + i] != (u8)(0x0123456789abcdefULL >> (8 * (i % 8))))
			break;
	report(!ret && res.status == ST_DONE && i == len, "dma-fill",
	       "ret=%d status=0x%x first-mismatch=%zu", ret, res.status, i);

	ret = run_job(a, OP_CHECKSUM, NO_PASID, src_dma + 7, 0, len, 0, &res);
	report(!ret && res.status == ST_DONE && res.result == fnv1a(src + 7, len),
	       "dma-checksum", "ret=%d status=0x%x device=%llx cpu=%llx", ret,
	       res.status, res.result, fnv1a(src + 7, len));
out:
	if (src)
		dma_free_coherent(dev, size, src, src_dma);
	if (dst)
		dma_free_coherent(dev, size, dst, dst_dma);
}

struct pasid_space {
	struct iommu_domain *domain;
	struct page *pages[3];	/* source, destination, read-only */
	ioasid_t pasid;
	bool attached;
};

static int pasid_space_init(struct accel *a, struct pasid_space *ps, u8 seed)
{
	struct device *dev = &a->pdev->dev;
	int i, ret;

	ps->domain = iommu_paging_domain_alloc(dev);
	if (IS_ERR(ps->domain)) {
		ret = PTR_ERR(ps->domain);
		ps->domain = NULL;
		return ret;
	}
	for (i = 0; i < 3; i++) {
		ps->pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!ps->pages[i])
			return -ENOMEM;
		ret = iommu_map(ps->domain, TEST_IOVA + i * PAGE_SIZE,
				page_to_phys(ps->pages[i]), PAGE_SIZE,
				i == 2 ? IOMMU_READ : IOMMU_READ | IOMMU_WRITE,
				GFP_KERNEL);
		if (ret)
			return ret;
	}
	fill_pattern(page_address(ps->pages[0]), PAGE_SIZE, seed);

	ps->pasid = iommu_alloc_global_pasid(dev);
	if (ps->pasid == IOMMU_PASID_INVALID)
		return -ENOSPC;
	ret = iommu_attach_device_pasid(ps->domain, dev, ps->pasid, NULL);
	if (ret)
		return ret;
	ps->attached = true;
	return 0;
}

static void pasid_space_exit(struct accel *a, struct pasid_space *ps)
{
	struct device *dev = &a->pdev->dev;
	int i;

	if (ps->attached)
		iommu_detach_device_pasid(ps->domain, dev, ps->pasid);
	if (ps->pasid && ps->pasid != IOMMU_PASID_INVALID)
		iommu_free_global_pasid(ps->pasid);
	if (ps->domain)
		iommu_domain_free(ps->domain);
	for (i = 0; i < 3; i++)
		if (ps->pages[i])
			__free_page(ps->pages[i]);
}

/* Starts a repeating job in @slot_nr without waiting for it. */
static void start_repeat(struct accel *a, int slot_nr, u32 op, u32 pasid,
			 u64 src, u64 dst, u64 len)
{
	void __iomem *slot = a->regs + SLOT(slot_nr);

	writel(pasid, slot + SLOT_PASID);
	writel(op | OP_REPEAT | OP_USE_PASID, slot + SLOT_OP);
	writeq(src, slot + SLOT_SRC);
	writeq(dst, slot + SLOT_DST);
	writeq(len, slot + SLOT_LEN);
	writeq(0x5a5a5a5a5a5a5a5aULL, slot + SLOT_PATTERN);
	writel(1, slot + SLOT_DOORBELL);
}

/* Polls @slot_nr for up to a second; returns its status. */
static u32 wait_not_busy(struct accel *a, int slot_nr)
{
	u32 status = ST_BUSY;
	int i;

	for (i = 0; i < 1000 && status == ST_BUSY; i++) {
		status = readl(a->regs + SLOT(slot_nr) + SLOT_STATUS);
		if (status == ST_BUSY)
			usleep_range(1000, 2000);
	}
	return status;
}

/*
 * A repeating job is still running long after one pass would have ended,
 * and stops on abort having moved whole passes.
 */
static void test_repeat(struct accel *a, u32 pasid)
{
	void __iomem *slot = a->regs + SLOT(1);
	u64 len = 256, moved;
	u32 before, after;

	start_repeat(a, 1, OP_FILL, pasid, 0, TEST_IOVA + PAGE_SIZE, len);
	msleep(20);
	before = readl(slot + SLOT_STATUS);
	writel(2, slot + SLOT_DOORBELL);
	after = readl(slot + SLOT_STATUS);
	moved = readq(slot + SLOT_RESULT);
	report(before == ST_BUSY && after == ST_ABORTED && moved >= 2 * len &&
	       moved % len == 0, "pasid-repeat",
	       "status 0x%x after 20 ms, 0x%x after abort, %llu bytes moved",
	       before, after, moved);
}

static void test_pasid(struct accel *a)
{
	struct pasid_space ps[2] = {};
	struct job_result res;
	bool running;
	u32 status;
	int i, ret;

	if (!a->pdev->pasid_enabled) {
		pr_info("sva-accel-test: SKIP pasid PASID not enabled on the device\n");
		return;
	}
	for (i = 0; i < 2; i++) {
		ret = pasid_space_init(a, &ps[i], 0x40 * (i + 1));
		if (ret) {
			report(false, "pasid-attach", "space %d: %d", i, ret);
			goto out;
		}
	}
	report(true, "pasid-attach", "pasids %u %u", ps[0].pasid, ps[1].pasid);

	/* Same addresses, two PASIDs: each job must use its own pages. */
	for (i = 0; i < 2; i++) {
		ret = run_job(a, OP_COPY, ps[i].pasid, TEST_IOVA,
			      TEST_IOVA + PAGE_SIZE, PAGE_SIZE, 0, &res);
		report(!ret && res.status == ST_DONE &&
		       !memcmp(page_address(ps[i].pages[0]),
			       page_address(ps[i].pages[1]), PAGE_SIZE),
		       "pasid-copy", "pasid=%u ret=%d status=0x%x", ps[i].pasid,
		       ret, res.status);
	}
	report(memcmp(page_address(ps[0].pages[1]), page_address(ps[1].pages[1]),
		      PAGE_SIZE) != 0, "pasid-isolation",
	       "destination pages of the two PASIDs differ");

	ret = run_job(a, OP_CHECKSUM, ps[1].pasid, TEST_IOVA, 0, PAGE_SIZE, 0,
		      &res);
	report(!ret && res.status == ST_DONE &&
	       res.result == fnv1a(page_address(ps[1].pages[0]), PAGE_SIZE),
	       "pasid-checksum", "status=0x%x", res.status);

	/* Faults: never mapped, read-only, across the end of a mapping. */
	ret = run_job(a, OP_COPY, ps[0].pasid, TEST_IOVA + 16 * PAGE_SIZE,
		      TEST_IOVA + PAGE_SIZE, 64, 0, &res);
	report(!ret && res.status == ST_FAULT_READ &&
	       res.fault_addr == TEST_IOVA + 16 * PAGE_SIZE, "pasid-fault-unmapped",
	       "pasid=%u status=0x%x fault_addr=0x%llx", ps[0].pasid, res.status,
	       res.fault_addr);
	ret = run_job(a, OP_FILL, ps[0].pasid, 0, TEST_IOVA + 2 * PAGE_SIZE, 64,
		      0, &res);
	report(!ret && res.status == ST_FAULT_WRITE &&
	       res.fault_addr == TEST_IOVA + 2 * PAGE_SIZE, "pasid-fault-readonly",
	       "status=0x%x fault_addr=0x%llx", res.status, res.fault_addr);
	/* Starts 64 bytes before the end of the writable page 1. */
	ret = run_job(a, OP_FILL, ps[1].pasid, 0, TEST_IOVA + 2 * PAGE_SIZE - 64,
		      128, 0x1111111111111111ULL, &res);
	report(!ret && res.status == ST_FAULT_WRITE && res.result == 64 &&
	       res.fault_addr == TEST_IOVA + 2 * PAGE_SIZE, "pasid-fault-partial",
	       "status=0x%x done=%llu fault_addr=0x%llx", res.status, res.result,
	       res.fault_addr);

	test_repeat(a, ps[1].pasid);
	ret = run_job(a, OP_FILL | OP_REPEAT, ps[1].pasid, 0, TEST_IOVA, 0, 0,
		      &res);
	report(!ret && res.status == ST_BAD_OP, "pasid-repeat-empty",
	       "status=0x%x", res.status);

	/*
	 * A detached PASID no longer reaches its pages, not even for a job
	 * that was already running through it.
	 */
	start_repeat(a, 1, OP_CHECKSUM, ps[0].pasid, TEST_IOVA, 0, PAGE_SIZE);
	msleep(5);
	running = readl(a->regs + SLOT(1) + SLOT_STATUS) == ST_BUSY;
	iommu_detach_device_pasid(ps[0].domain, &a->pdev->dev, ps[0].pasid);
	ps[0].attached = false;
	status = wait_not_busy(a, 1);
	report(running && status == ST_FAULT_READ, "pasid-repeat-detached",
	       "pasid=%u running before=%d status after=0x%x", ps[0].pasid,
	       running, status);
	ret = run_job(a, OP_COPY, ps[0].pasid, TEST_IOVA, TEST_IOVA + PAGE_SIZE,
		      64, 0, &res);
	report(!ret && res.status == ST_FAULT_READ, "pasid-fault-detached",
	       "pasid=%u status=0x%x", ps[0].pasid, res.status);
	ret = run_job(a, OP_COPY, ps[1].pasid, TEST_IOVA, TEST_IOVA + PAGE_SIZE,
		      64, 0, &res);
	report(!ret && res.status == ST_DONE, "pasid-other-still-works",
	       "pasid=%u status=0x%x", ps[1].pasid, res.status);
out:
	for (i = 0; i < 2; i++)
		pasid_space_exit(a, &ps[i]);
}

#ifdef CONFIG_IOMMU_SVA
/* Starts a job in @slot_nr without waiting for it. */
static void start_job(struct accel *a, int slot_nr, u32 op, u32 pasid,
		      u64 src, u64 dst, u64 len, u64 pattern)
{
	void __iomem *slot = a->regs + SLOT(slot_nr);

	writel(pasid, slot + SLOT_PASID);
	writel(op | OP_USE_PASID, slot + SLOT_OP);
	writeq(src, slot + SLOT_SRC);
	writeq(dst, slot + SLOT_DST);
	writeq(len, slot + SLOT_LEN);
	writeq(pattern, slot + SLOT_PATTERN);
	writel(1, slot + SLOT_DOORBELL);
}

/* Polls STALLED for up to a second until it has every bit of @mask. */
static u32 wait_stalled(struct accel *a, u32 mask)
{
	u32 stalled = 0;
	int i;

	for (i = 0; i < 1000; i++) {
		stalled = readl(a->regs + REG_STALLED);
		if ((stalled & mask) == mask)
			break;
		usleep_range(1000, 2000);
	}
	return stalled;
}

/*
 * CMD_STALL_TERM: Linux never issues it, so while armed the next
 * CMD_RESUME that arm_smmu_cmdq_build_cmd() builds becomes a
 * CMD_STALL_TERM of the same StreamID (dword 0: opcode [7:0], StreamID
 * [63:32] in both commands).
 */
#define CMDQ_OP_RESUME		0x44
#define CMDQ_OP_STALL_TERM	0x45

static atomic_t stall_term_armed = ATOMIC_INIT(0);
static atomic_t stall_terms = ATOMIC_INIT(0);

struct build_cmd_call {
	u64 *cmd;
	u8 opcode;
};

static int build_cmd_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct build_cmd_call *call = (void *)ri->data;

	call->cmd = (u64 *)regs->regs[0];
	/* struct arm_smmu_cmdq_ent starts with the u8 opcode */
	call->opcode = *(u8 *)regs->regs[1];
	return 0;
}

static int build_cmd_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct build_cmd_call *call = (void *)ri->data;

	if (call->opcode != CMDQ_OP_RESUME || regs_return_value(regs))
		return 0;
	if (atomic_cmpxchg(&stall_term_armed, 1, 0) != 1)
		return 0;
	call->cmd[0] = (call->cmd[0] & GENMASK_ULL(63, 32)) | CMDQ_OP_STALL_TERM;
	call->cmd[1] = 0;
	atomic_inc(&stall_terms);
	return 0;
}

static struct kretprobe build_cmd_probe = {
	.kp.symbol_name = "arm_smmu_cmdq_build_cmd",
	.entry_handler = build_cmd_entry,
	.handler = build_cmd_return,
	.data_size = sizeof(struct build_cmd_call),
	.maxactive = 8,
};

/*
 * I/O page faults with stall. Holding the mm's mmap lock keeps Linux's
 * IOPF handler (iommu_sva_handle_mm() takes it for reading) from resolving
 * a fault, so the test sees the stall before it is resumed.
 */
static void test_iopf(struct accel *a, u32 pasid, unsigned long present)
{
	struct mm_struct *mm = current->mm;
	size_t len = 64 * PAGE_SIZE, i;
	unsigned long buf, buf2, gone;
	u64 t_fault, t_present;
	u32 stalled, s1, s2;
	struct job_result res;
	u8 *kbuf;
	int ret;

	buf = vm_mmap(NULL, 0, 2 * len, PROT_READ | PROT_WRITE,
		      MAP_ANONYMOUS | MAP_PRIVATE, 0);
	buf2 = vm_mmap(NULL, 0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_ANONYMOUS | MAP_PRIVATE, 0);
	kbuf = kmalloc(PAGE_SIZE, GFP_KERNEL);
	if (IS_ERR_VALUE(buf) || IS_ERR_VALUE(buf2) || !kbuf) {
		report(false, "iopf", "no memory");
		goto out;
	}

	/*
	 * Retry: copy a present page into one the process never touched.
	 * While the copy is stalled, a job on another slot completes.
	 */
	mmap_write_lock(mm);
	start_job(a, 3, OP_COPY, pasid, present, buf, PAGE_SIZE, 0);
	stalled = wait_stalled(a, BIT(3));
	ret = run_job(a, OP_COPY, pasid, present, present + PAGE_SIZE, 64, 0,
		      &res);
	s2 = readl(a->regs + REG_STALLED);
	report(!ret && res.status == ST_DONE && (stalled & BIT(3)) &&
	       (s2 & BIT(3)), "iopf-other-slot",
	       "STALLED=0x%x, job in slot 0 status=0x%x, STALLED after=0x%x",
	       stalled, res.status, s2);
	mmap_write_unlock(mm);
	s1 = wait_not_busy(a, 3);
	ret = copy_from_user(kbuf, (void __user *)buf, PAGE_SIZE);
	for (i = 0; i < PAGE_SIZE; i++)
		if (kbuf[i] != (u8)(0x99 + i * 7 + (i >> 8)))
			break;
	report((stalled & BIT(3)) && s1 == ST_DONE && !ret && i == PAGE_SIZE,
	       "iopf-retry", "stalled=0x%x status=0x%x first-mismatch=%zu",
	       stalled, s1, i);

	/*
	 * Abort: Linux cannot fault in an address nothing is mapped at (a
	 * fresh hole: the caller's may have been reused by the mappings
	 * above).
	 */
	gone = vm_mmap(NULL, 0, PAGE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_ANONYMOUS | MAP_PRIVATE, 0);
	if (!IS_ERR_VALUE(gone))
		vm_munmap(gone, PAGE_SIZE);
	mmap_write_lock(mm);
	start_job(a, 0, OP_CHECKSUM, pasid, gone, 0, 64, 0);
	stalled = wait_stalled(a, BIT(0));
	mmap_write_unlock(mm);
	s1 = wait_not_busy(a, 0);
	report((stalled & BIT(0)) && s1 == ST_FAULT_READ &&
	       readq(a->regs + SLOT(0) + SLOT_FAULT_ADDR) == gone, "iopf-abort",
	       "stalled=0x%x status=0x%x", stalled, s1);

	/* CMD_STALL_TERM ends both stalls of the stream at once. */
	ret = register_kretprobe(&build_cmd_probe);
	if (ret) {
		pr_info("sva-accel-test: SKIP stall-term kretprobe on arm_smmu_cmdq_build_cmd: %d\n",
			ret);
	} else {
		mmap_write_lock(mm);
		start_job(a, 1, OP_FILL, pasid, 0, buf2, 64, 1);
		start_job(a, 2, OP_FILL, pasid, 0, buf2 + PAGE_SIZE, 64, 2);
		stalled = wait_stalled(a, BIT(1) | BIT(2));
		atomic_set(&stall_term_armed, 1);
		mmap_write_unlock(mm);
		s1 = wait_not_busy(a, 1);
		s2 = wait_not_busy(a, 2);
		atomic_set(&stall_term_armed, 0);
		unregister_kretprobe(&build_cmd_probe);
		report((stalled & 6) == 6 && atomic_read(&stall_terms) == 1 &&
		       s1 == ST_FAULT_WRITE && s2 == ST_FAULT_WRITE,
		       "stall-term", "stalled=0x%x stall_terms=%d status=0x%x,0x%x",
		       stalled, atomic_read(&stall_terms), s1, s2);
	}

	/* Cost: 64 pages never touched, then the same 64 pages again. */
	t_fault = ktime_get_ns();
	ret = run_job(a, OP_FILL, pasid, 0, buf + len, len, 0x77, &res);
	t_fault = ktime_get_ns() - t_fault;
	s1 = res.status;
	t_present = ktime_get_ns();
	ret |= run_job(a, OP_FILL, pasid, 0, buf + len, len, 0x77, &res);
	t_present = ktime_get_ns() - t_present;
	report(!ret && s1 == ST_DONE && res.status == ST_DONE, "iopf-cost",
	       "64 faults: %llu us, present: %llu us, %llu us per resolved fault",
	       t_fault / 1000, t_present / 1000,
	       t_fault > t_present ? (t_fault - t_present) / 64000 : 0);
out:
	kfree(kbuf);
	if (!IS_ERR_VALUE(buf))
		vm_munmap(buf, 2 * len);
	if (!IS_ERR_VALUE(buf2))
		vm_munmap(buf2, 2 * PAGE_SIZE);
}
#endif

static void test_sva(struct accel *a)
{
#ifdef CONFIG_IOMMU_SVA
	struct device *dev = &a->pdev->dev;
	unsigned long uaddr = 0, gone;
	struct iommu_sva *handle;
	struct job_result res;
	u8 *kbuf = NULL;
	u32 pasid;
	int ret, iopf;

	if (!a->pdev->pasid_enabled) {
		pr_info("sva-accel-test: SKIP sva PASID not enabled on the device\n");
		return;
	}
	/*
	 * As drivers of stall-capable devices do: IOPF first (it fails
	 * without stall), then SVA, which requires IOPF when the SMMU
	 * enabled stall on the device.
	 */
	iopf = iommu_dev_enable_feature(dev, IOMMU_DEV_FEAT_IOPF);
	if (stall)
		report(!iopf, "iopf-enable", "IOMMU_DEV_FEAT_IOPF: %d", iopf);
	ret = iommu_dev_enable_feature(dev, IOMMU_DEV_FEAT_SVA);
	if (ret) {
		report(false, "sva-enable", "IOMMU_DEV_FEAT_SVA: %d", ret);
		goto disable_iopf;
	}
	handle = iommu_sva_bind_device(dev, current->mm);
	if (IS_ERR(handle)) {
		report(false, "sva-bind", "%ld", PTR_ERR(handle));
		goto disable;
	}
	pasid = iommu_sva_get_pasid(handle);
	report(pasid != IOMMU_PASID_INVALID, "sva-bind", "pasid=%u", pasid);

	kbuf = kmalloc(2 * PAGE_SIZE, GFP_KERNEL);
	uaddr = vm_mmap(NULL, 0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE,
			MAP_ANONYMOUS | MAP_PRIVATE, 0);
	gone = vm_mmap(NULL, 0, PAGE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_ANONYMOUS | MAP_PRIVATE, 0);
	if (!kbuf || IS_ERR_VALUE(uaddr) || IS_ERR_VALUE(gone)) {
		report(false, "sva-copy", "no memory");
		goto unbind;
	}
	vm_munmap(gone, PAGE_SIZE);

	/* Both pages must be present: the SMMU has no page request path. */
	fill_pattern(kbuf, PAGE_SIZE, 0x99);
	memset(kbuf + PAGE_SIZE, 0, PAGE_SIZE);
	if (copy_to_user((void __user *)uaddr, kbuf, 2 * PAGE_SIZE)) {
		report(false, "sva-copy", "copy_to_user failed");
		goto unmap;
	}
	ret = run_job(a, OP_COPY, pasid, uaddr, uaddr + PAGE_SIZE, PAGE_SIZE, 0,
		      &res);
	if (copy_from_user(kbuf + PAGE_SIZE, (void __user *)uaddr + PAGE_SIZE,
			   PAGE_SIZE))
		ret = -EFAULT;
	report(!ret && res.status == ST_DONE &&
	       !memcmp(kbuf, kbuf + PAGE_SIZE, PAGE_SIZE), "sva-copy",
	       "pasid=%u va=0x%lx ret=%d status=0x%x", pasid, uaddr, ret,
	       res.status);

	ret = run_job(a, OP_COPY, pasid, gone, uaddr + PAGE_SIZE, 64, 0, &res);
	report(!ret && res.status == ST_FAULT_READ && res.fault_addr == gone,
	       "sva-fault-unmapped", "va=0x%lx status=0x%x fault_addr=0x%llx",
	       gone, res.status, res.fault_addr);
	if (stall && !iopf)
		test_iopf(a, pasid, uaddr);
unmap:
	vm_munmap(uaddr, 2 * PAGE_SIZE);
unbind:
	kfree(kbuf);
	iommu_sva_unbind_device(handle);
disable:
	iommu_dev_disable_feature(dev, IOMMU_DEV_FEAT_SVA);
disable_iopf:
	if (!iopf)
		iommu_dev_disable_feature(dev, IOMMU_DEV_FEAT_IOPF);
#else
	pr_info("sva-accel-test: SKIP sva kernel built without CONFIG_IOMMU_SVA\n");
#endif
}

static int accel_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct accel *a;
	int ret;

	a = devm_kzalloc(&pdev->dev, sizeof(*a), GFP_KERNEL);
	if (!a)
		return -ENOMEM;
	a->pdev = pdev;
	init_waitqueue_head(&a->wait);

	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	a->regs = pcim_iomap(pdev, 0, 0);
	if (!a->regs)
		return -ENOMEM;
	pci_set_master(pdev);
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (ret)
		return ret;
	ret = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_ALL_TYPES);
	if (ret < 0)
		return ret;
	ret = devm_request_irq(&pdev->dev, pci_irq_vector(pdev, 0), accel_irq,
			       IRQF_SHARED, "sva-accel-test", a);
	if (ret)
		return ret;
	writel(~0U, a->regs + REG_INT_ENABLE);

	pr_info("sva-accel-test: device id=0x%x caps=0x%x status=0x%x msix=%d msi=%d pasid_enabled=%d\n",
		readl(a->regs + REG_ID), readl(a->regs + REG_CAPS),
		readl(a->regs + REG_STATUS), pdev->msix_enabled,
		pdev->msi_enabled, pdev->pasid_enabled);
	report(readl(a->regs + REG_ID) == SVA_ACCEL_ID_VALUE, "id", "");

	test_dma(a);
	test_pasid(a);
	test_sva(a);

	writel(0, a->regs + REG_INT_ENABLE);
	report(atomic_read(&a->irqs) > 0, "interrupts", "%d completions signalled",
	       atomic_read(&a->irqs));
	pr_info("sva-accel-test: done failures=%d\n", failures);
	return 0;
}

static const struct pci_device_id accel_ids[] = {
	{ PCI_DEVICE(SVA_ACCEL_VENDOR, SVA_ACCEL_DEVICE) },
	{ }
};
MODULE_DEVICE_TABLE(pci, accel_ids);

static struct pci_driver accel_driver = {
	.name = "sva-accel-test",
	.id_table = accel_ids,
	.probe = accel_probe,
};

module_pci_driver(accel_driver);
MODULE_DESCRIPTION("Checks the sva-accel device and the SMMUv3 substreams of kharness's QEMU");
MODULE_LICENSE("GPL");
