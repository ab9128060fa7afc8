// SPDX-License-Identifier: GPL-2.0
/*
 * Driver for kharness's emulated sva-accel PCIe device (guest/qemu/README.md):
 * a character device through which processes bind their address space to
 * the device with Shared Virtual Addressing and run copy, fill and checksum
 * jobs on their own virtual addresses.
 *
 * The binding belongs to the open file, as with uacce: BIND binds current's
 * mm, and the binding lasts until UNBIND or until the file is released. A
 * process that exits without closing the file therefore loses its mm (at
 * exit_mm) before the binding goes (at exit_files), and a forked child that
 * inherited the file keeps the binding alive after its parent is gone. This
 * is the lifetime the 2022 PASID use-after-free got wrong, which is why
 * kharness drives it.
 *
 * How a file binds is the module parameter "pattern", after the drivers
 * that ship, because a careful driver masks lifetime bugs in the IOMMU core
 * that only show when the core's own references are the last ones:
 * - careful (default): BIND and UNBIND ioctls, and the driver holds its own
 *   mm_count reference (mmgrab) for the life of the binding;
 * - uacce: as drivers/misc/uacce: open() binds the opener's mm, release()
 *   stops the device and then unbinds, no UNBIND ioctl (BIND returns the
 *   open's binding to its own process), and in SVA mode no reference of the
 *   driver's own: the SVA domain's hold on the mm is what keeps it;
 * - deferred: BIND and UNBIND as careful, but release() stops the device and
 *   leaves the unbind to a workqueue, after the file and often the process
 *   are gone, and in SVA mode without a reference of its own.
 * In DMA-API mode there is no binding in the core to hold the mm, so every
 * pattern grabs it.
 *
 * Without SVA (kernel without IOMMU_SVA, SMMU without substreams, device
 * without PASID) the driver runs in DMA-API mode: jobs pin the pages of the
 * bound mm and map them with the DMA API, so the same scenarios still have
 * the device holding process pages across fork and exit. The mode is in
 * dmesg, in the sysfs attribute "mode" and in SVA_ACCEL_IOCTL_INFO.
 *
 * In SVA mode the driver faults in and pins the pages of each job in the
 * bound mm for the job's duration, unless the job asks for
 * SVA_ACCEL_JOB_NO_PREFAULT or the IOMMU resolves the device's page faults
 * itself (I/O page faults: a stalling SMMU, the sva-stall machine; the
 * driver enables IOMMU_DEV_FEAT_IOPF first where the kernel still has the
 * feature calls): then nothing is pinned and the device faults pages in as
 * it goes (pin_always=1 pins anyway).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/dma-mapping.h>
#include <linux/idr.h>
#include <linux/interrupt.h>
#include <linux/iommu.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/scatterlist.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "sva_accel_uapi.h"

#define CREATE_TRACE_POINTS
#include "sva_accel_trace.h"

#define SVA_ACCEL_VENDOR	0x1234
#define SVA_ACCEL_DEVICE	0x5356
#define SVA_ACCEL_ID_VALUE	0x53564131	/* "SVA1" */

#define REG_ID			0x000
#define REG_CAPS		0x008
#define  CAPS_SLOTS(c)		((c) & 0xff)
#define  CAPS_PASID_BITS(c)	(((c) >> 16) & 0x1f)
#define REG_STATUS		0x00c
#define REG_INT_STATUS		0x010
#define REG_INT_ENABLE		0x014
#define REG_CTRL		0x018
#define  CTRL_ABORT_ALL		BIT(0)
#define REG_SLOT(n)		(0x1000 + 0x40 * (n))
#define SLOT_OP			0x00
#define  OP_REPEAT		BIT(30)
#define  OP_USE_PASID		BIT(31)
#define SLOT_PASID		0x04
#define SLOT_SRC		0x08
#define SLOT_DST		0x10
#define SLOT_LEN		0x18
#define SLOT_PATTERN		0x20
#define SLOT_RESULT		0x28
#define SLOT_STATUS		0x30
#define  ST_BUSY		0x01
#define SLOT_DOORBELL		0x34
#define  DOORBELL_START		1
#define  DOORBELL_ABORT		2
#define SLOT_FAULT_ADDR		0x38

#define SVA_ACCEL_MAX_SLOTS	32
/* A job the device has not finished by then is aborted. */
#define SVA_ACCEL_JOB_TIMEOUT	(10 * HZ)

/*
 * SVA API shims. The API changed under drivers several times:
 * - 6.2 dropped the drvdata argument of iommu_sva_bind_device();
 * - PASIDs came from the ioasid allocator (INVALID_IOASID) until 6.4 and
 *   from the IOMMU core (IOMMU_PASID_INVALID) after; both are ~0U;
 * - an mm's PASID lived in mm->pasid until 6.8, then in mm->iommu_mm;
 * - devices had to enable IOMMU_DEV_FEAT_SVA before binding until 6.15;
 *   6.16 removed the feature calls.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 2, 0)
#define sva_accel_bind_mm(dev, mm)	iommu_sva_bind_device(dev, mm, NULL)
#else
#define sva_accel_bind_mm(dev, mm)	iommu_sva_bind_device(dev, mm)
#endif

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 16, 0) && IS_ENABLED(CONFIG_IOMMU_SVA)
#define SVA_ACCEL_NEEDS_DEV_FEAT_SVA	1
#endif

static u32 sva_accel_mm_pasid(struct mm_struct *mm)
{
	if (!mm)
		return SVA_ACCEL_NO_PASID;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
#ifdef CONFIG_IOMMU_MM_DATA
	{
		struct iommu_mm_data *iommu_mm = READ_ONCE(mm->iommu_mm);

		return iommu_mm ? iommu_mm->pasid : SVA_ACCEL_NO_PASID;
	}
#endif
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(5, 18, 0)
#ifdef CONFIG_IOMMU_SVA
	return READ_ONCE(mm->pasid);
#endif
#endif
	return SVA_ACCEL_NO_PASID;
}

/*
 * Whether the IOMMU core resolves this device's page faults (I/O page
 * faults: PRI, or SMMUv3 stall): it has a fault queue for the device then.
 */
static bool sva_accel_iopf_active(struct device *dev)
{
	return dev->iommu && rcu_access_pointer(dev->iommu->fault_param);
}

/* pin_user_pages_remote() lost its vmas argument in 6.5. */
static long sva_accel_pin_remote(struct mm_struct *mm, unsigned long start,
				 unsigned long nr_pages, unsigned int gup_flags,
				 struct page **pages)
{
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 5, 0)
	return pin_user_pages_remote(mm, start, nr_pages, gup_flags, pages,
				     NULL, NULL);
#else
	return pin_user_pages_remote(mm, start, nr_pages, gup_flags, pages,
				     NULL);
#endif
}

struct sva_accel_dev {
	struct kref ref;
	struct pci_dev *pdev;
	void __iomem *regs;
	struct miscdevice misc;
	char name[32];
	int id;
	int irq;
	bool enabled;
	bool removed;

	int mode;		/* SVA_ACCEL_MODE_* */
	int sva_error;		/* why not SVA mode */
	bool feat_sva;		/* IOMMU_DEV_FEAT_SVA enabled by us */
	bool feat_iopf;		/* IOMMU_DEV_FEAT_IOPF enabled by us */
	bool iopf;		/* the kernel resolves the device's page faults */
	unsigned int nr_slots;
	unsigned int pasid_bits;

	spinlock_t lock;	/* slots and their jobs */
	DECLARE_BITMAP(busy, SVA_ACCEL_MAX_SLOTS);
	struct sva_accel_work *slot_work[SVA_ACCEL_MAX_SLOTS];
	wait_queue_head_t slot_free;
	wait_queue_head_t job_done;
};

/* One open file: at most one binding, and the jobs it has in flight. */
struct sva_accel_ctx {
	struct sva_accel_dev *adev;
	struct mutex lock;	/* everything below */
	bool bound;
	struct iommu_sva *handle;	/* SVA mode */
	struct mm_struct *mm;	/* while bound; see own_mm */
	bool own_mm;		/* mm grabbed (mm_count) by the driver */
	u32 pasid;		/* cached: the kernel's copy may be freed */
	pid_t bind_pid;
	struct list_head inflight;	/* struct sva_accel_work */
	unsigned int nr_inflight;
	struct delayed_work unbind_work;	/* the deferred pattern */
};

/* A job on its way through the device. */
struct sva_accel_work {
	struct list_head node;
	struct sva_accel_job job;
	int slot;		/* -1 when the device never saw it */
	bool started;		/* doorbell rung; under adev->lock */
	bool done;		/* under adev->lock */
	bool wedged;		/* the device never completed it */
	struct page **src_pages;
	struct page **dst_pages;
	long nr_src, nr_dst;	/* pages pinned */
	struct sg_table src_sgt, dst_sgt;
	bool src_mapped, dst_mapped;
};

static DEFINE_IDA(sva_accel_ida);

static bool force_dma;
module_param(force_dma, bool, 0444);
MODULE_PARM_DESC(force_dma, "Use DMA-API mode even when SVA is available");

static bool pin_always;
module_param(pin_always, bool, 0444);
MODULE_PARM_DESC(pin_always, "Pin a job's pages even when the kernel resolves the device's page faults (IOPF)");

enum sva_accel_pattern {
	SVA_ACCEL_CAREFUL,
	SVA_ACCEL_UACCE,
	SVA_ACCEL_DEFERRED,
};

static const char *const sva_accel_patterns[] = {
	[SVA_ACCEL_CAREFUL] = "careful",
	[SVA_ACCEL_UACCE] = "uacce",
	[SVA_ACCEL_DEFERRED] = "deferred",
};

static char *pattern = "careful";
module_param(pattern, charp, 0444);
MODULE_PARM_DESC(pattern, "How files bind: careful, uacce or deferred (see the source's header)");
static enum sva_accel_pattern sva_accel_pattern;

/* The deferred pattern's unbinds; drained before the module goes. */
static struct workqueue_struct *sva_accel_wq;
/* How long after release the deferred pattern unbinds. */
#define SVA_ACCEL_DEFERRED_UNBIND	msecs_to_jiffies(20)

/* The values of sva_accel_unbind's "by". */
enum {
	SVA_ACCEL_BY_IOCTL,
	SVA_ACCEL_BY_RELEASE,
	SVA_ACCEL_BY_WORK,
};

static void sva_accel_dev_free(struct kref *ref)
{
	struct sva_accel_dev *adev = container_of(ref, struct sva_accel_dev, ref);

	/* Registers stay mapped until the last open file is gone. */
	if (adev->regs) {
		pci_iounmap(adev->pdev, adev->regs);
		pci_release_region(adev->pdev, 0);
	}
	if (adev->enabled)
		pci_disable_device(adev->pdev);
	pci_dev_put(adev->pdev);
	kfree(adev);
}

static inline void sva_accel_dev_put(struct sva_accel_dev *adev)
{
	kref_put(&adev->ref, sva_accel_dev_free);
}

/*
 * Records a finished job and gives its slot back at once: a submitter may
 * be waiting for a slot while holding others whose jobs are done.
 */
static bool sva_accel_complete_locked(struct sva_accel_dev *adev,
				      unsigned int n)
{
	struct sva_accel_work *work = adev->slot_work[n];
	void __iomem *slot = adev->regs + REG_SLOT(n);
	u32 status;

	lockdep_assert_held(&adev->lock);
	if (!work || !work->started || work->done)
		return false;
	status = readl(slot + SLOT_STATUS);
	if (status == ST_BUSY)
		return false;
	work->job.status = status;
	work->job.result = readq(slot + SLOT_RESULT);
	work->job.fault_addr = readq(slot + SLOT_FAULT_ADDR);
	work->done = true;
	adev->slot_work[n] = NULL;
	__clear_bit(n, adev->busy);
	return true;
}

static irqreturn_t sva_accel_irq(int irq, void *data)
{
	struct sva_accel_dev *adev = data;
	unsigned long pending;
	unsigned int n;
	bool woke = false;

	pending = readl(adev->regs + REG_INT_STATUS);
	if (!pending)
		return IRQ_NONE;
	writel(pending, adev->regs + REG_INT_STATUS);

	spin_lock(&adev->lock);
	for_each_set_bit(n, &pending, SVA_ACCEL_MAX_SLOTS)
		woke |= sva_accel_complete_locked(adev, n);
	spin_unlock(&adev->lock);
	if (woke) {
		wake_up_all(&adev->job_done);
		wake_up_all(&adev->slot_free);
	}
	return IRQ_HANDLED;
}

/*
 * Whether a started job has completed. Once the device is removed its
 * interrupt is gone, so the slot's status register is read instead.
 */
static bool sva_accel_work_done(struct sva_accel_dev *adev,
				struct sva_accel_work *work)
{
	unsigned long flags;
	bool done;

	spin_lock_irqsave(&adev->lock, flags);
	if (!work->done && READ_ONCE(adev->removed) && work->slot >= 0)
		sva_accel_complete_locked(adev, work->slot);
	done = work->done;
	spin_unlock_irqrestore(&adev->lock, flags);
	return done;
}

static int sva_accel_get_slot(struct sva_accel_dev *adev,
			      struct sva_accel_work *work)
{
	unsigned long flags;
	int slot = -1;
	int ret;

	ret = wait_event_killable(adev->slot_free, ({
		spin_lock_irqsave(&adev->lock, flags);
		slot = find_first_zero_bit(adev->busy, adev->nr_slots);
		if (slot < adev->nr_slots) {
			__set_bit(slot, adev->busy);
			adev->slot_work[slot] = work;
		} else {
			slot = -1;
		}
		spin_unlock_irqrestore(&adev->lock, flags);
		slot >= 0 || READ_ONCE(adev->removed);
	}));
	if (ret)
		return ret;
	if (slot < 0)
		return -ENODEV;
	return slot;
}

/* Pins the pages under [addr, addr + len) of the bound mm. */
static long sva_accel_pin(struct sva_accel_ctx *ctx, u64 addr, u64 len,
			  bool write, struct page ***pagesp)
{
	unsigned long first = addr >> PAGE_SHIFT;
	unsigned long last = (addr + len - 1) >> PAGE_SHIFT;
	unsigned long nr = last - first + 1;
	unsigned int gup_flags = write ? FOLL_WRITE : 0;
	struct page **pages;
	long pinned;

	pages = kvcalloc(nr, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	if (current->mm == ctx->mm) {
		pinned = pin_user_pages_fast(addr & PAGE_MASK, nr, gup_flags,
					     pages);
	} else {
		/* The binding outlives the process that made it. */
		if (!mmget_not_zero(ctx->mm)) {
			kvfree(pages);
			return -ESRCH;
		}
		mmap_read_lock(ctx->mm);
		pinned = sva_accel_pin_remote(ctx->mm, addr & PAGE_MASK, nr,
					      gup_flags, pages);
		mmap_read_unlock(ctx->mm);
		mmput(ctx->mm);
	}
	if (pinned >= 0 && pinned < nr) {
		unpin_user_pages(pages, pinned);
		pinned = -EFAULT;
	}
	if (pinned < 0) {
		kvfree(pages);
		return pinned;
	}
	*pagesp = pages;
	return pinned;
}

static int sva_accel_map(struct sva_accel_dev *adev, struct sg_table *sgt,
			 struct page **pages, long nr, u64 addr, u64 len,
			 enum dma_data_direction dir, u64 *dma)
{
	int ret;

	ret = sg_alloc_table_from_pages(sgt, pages, nr, offset_in_page(addr),
					len, GFP_KERNEL);
	if (ret)
		return ret;
	ret = dma_map_sgtable(&adev->pdev->dev, sgt, dir, 0);
	if (ret) {
		sg_free_table(sgt);
		return ret;
	}
	/* The device takes one address range per buffer. */
	if (sgt->nents != 1) {
		dma_unmap_sgtable(&adev->pdev->dev, sgt, dir, 0);
		sg_free_table(sgt);
		return -E2BIG;
	}
	*dma = sg_dma_address(sgt->sgl);
	return 0;
}

static void sva_accel_release_pages(struct sva_accel_dev *adev,
				    struct sva_accel_work *work)
{
	struct device *dev = &adev->pdev->dev;

	if (work->src_mapped)
		dma_unmap_sgtable(dev, &work->src_sgt, DMA_TO_DEVICE, 0);
	if (work->dst_mapped)
		dma_unmap_sgtable(dev, &work->dst_sgt, DMA_FROM_DEVICE, 0);
	if (work->src_mapped)
		sg_free_table(&work->src_sgt);
	if (work->dst_mapped)
		sg_free_table(&work->dst_sgt);
	work->src_mapped = false;
	work->dst_mapped = false;
	if (work->nr_src > 0)
		unpin_user_pages(work->src_pages, work->nr_src);
	if (work->nr_dst > 0)
		unpin_user_pages_dirty_lock(work->dst_pages, work->nr_dst, true);
	kvfree(work->src_pages);
	kvfree(work->dst_pages);
	work->src_pages = NULL;
	work->dst_pages = NULL;
	work->nr_src = 0;
	work->nr_dst = 0;
}

static void sva_accel_fail_work(struct sva_accel_work *work, u32 status,
				u64 result)
{
	work->job.status = status;
	work->job.result = result;
	work->done = true;
}

/*
 * Pins (and in DMA-API mode maps) the job's buffers and starts it on a slot.
 * Returns 0 when the job is on the device or already completed by the
 * driver with a status, a negative errno when the caller must stop.
 */
static int sva_accel_start(struct sva_accel_ctx *ctx,
			   struct sva_accel_work *work)
{
	struct sva_accel_dev *adev = ctx->adev;
	struct sva_accel_job *job = &work->job;
	bool sva = adev->mode == SVA_ACCEL_MODE_SVA;
	/*
	 * With I/O page faults (a stalling SMMU) the device faults pages in
	 * itself, as accelerators that do not pin do; otherwise every page is
	 * made present and pinned first.
	 */
	bool pin = !sva || (!(job->flags & SVA_ACCEL_JOB_NO_PREFAULT) &&
			    (!adev->iopf || pin_always));
	bool reads = job->op == SVA_ACCEL_OP_COPY ||
		     job->op == SVA_ACCEL_OP_CHECKSUM;
	bool writes = job->op == SVA_ACCEL_OP_COPY ||
		      job->op == SVA_ACCEL_OP_FILL;
	u64 src = job->src, dst = job->dst;
	unsigned long flags;
	void __iomem *slot;
	long ret;
	u32 op;

	job->pasid = sva ? ctx->pasid : SVA_ACCEL_NO_PASID;
	job->result = 0;
	job->fault_addr = 0;
	work->slot = -1;

	if (pin && job->len) {
		if (reads) {
			ret = sva_accel_pin(ctx, job->src, job->len, false,
					    &work->src_pages);
			if (ret < 0)
				goto pin_failed;
			work->nr_src = ret;
		}
		if (writes) {
			ret = sva_accel_pin(ctx, job->dst, job->len, true,
					    &work->dst_pages);
			if (ret < 0)
				goto pin_failed;
			work->nr_dst = ret;
		}
	}
	if (!sva && job->len) {
		if (reads) {
			ret = sva_accel_map(adev, &work->src_sgt,
					    work->src_pages, work->nr_src,
					    job->src, job->len, DMA_TO_DEVICE,
					    &src);
			if (ret)
				goto map_failed;
			work->src_mapped = true;
		}
		if (writes) {
			ret = sva_accel_map(adev, &work->dst_sgt,
					    work->dst_pages, work->nr_dst,
					    job->dst, job->len, DMA_FROM_DEVICE,
					    &dst);
			if (ret)
				goto map_failed;
			work->dst_mapped = true;
		}
	}

start:
	ret = sva_accel_get_slot(adev, work);
	if (ret < 0) {
		sva_accel_release_pages(adev, work);
		sva_accel_fail_work(work, SVA_ACCEL_ST_ABORTED, 0);
		return ret;
	}
	work->slot = ret;
	slot = adev->regs + REG_SLOT(work->slot);
	op = job->op;
	if (job->flags & SVA_ACCEL_JOB_REPEAT)
		op |= OP_REPEAT;
	if (sva) {
		op |= OP_USE_PASID;
		writel(ctx->pasid, slot + SLOT_PASID);
	}
	writel(op, slot + SLOT_OP);
	writeq(src, slot + SLOT_SRC);
	writeq(dst, slot + SLOT_DST);
	writeq(job->len, slot + SLOT_LEN);
	writeq(job->pattern, slot + SLOT_PATTERN);
	spin_lock_irqsave(&adev->lock, flags);
	work->started = true;
	writel(DOORBELL_START, slot + SLOT_DOORBELL);
	spin_unlock_irqrestore(&adev->lock, flags);
	return 0;

pin_failed:
	sva_accel_release_pages(adev, work);
	/*
	 * The bound mm is gone (its last user exited while the binding
	 * lives on in another process's file). In SVA mode the device still
	 * gets the job, to show what the PASID now reaches: it must fault.
	 */
	if (ret == -ESRCH && sva)
		goto start;
	if (ret == -ESRCH)
		sva_accel_fail_work(work, SVA_ACCEL_ST_NO_MM, 0);
	else
		sva_accel_fail_work(work, SVA_ACCEL_ST_PIN_FAULT, -ret);
	return 0;
map_failed:
	sva_accel_release_pages(adev, work);
	sva_accel_fail_work(work, SVA_ACCEL_ST_MAP_FAILED, -ret);
	return 0;
}

/*
 * Stops a repeating job, which would otherwise run until it faults: the
 * device must be quiet before its job is collected or its binding goes.
 */
static void sva_accel_stop(struct sva_accel_dev *adev,
			   struct sva_accel_work *work)
{
	unsigned long flags;

	if (!(work->job.flags & SVA_ACCEL_JOB_REPEAT))
		return;
	/* Under the lock: a completed job's slot may be reused. */
	spin_lock_irqsave(&adev->lock, flags);
	if (work->started && !work->done && !READ_ONCE(adev->removed))
		writel(DOORBELL_ABORT, adev->regs + REG_SLOT(work->slot) +
		       SLOT_DOORBELL);
	spin_unlock_irqrestore(&adev->lock, flags);
}

/* Waits for a started job; aborts it if the device takes too long. */
static void sva_accel_wait_hard(struct sva_accel_dev *adev,
				struct sva_accel_work *work)
{
	unsigned long flags;
	bool done;

	if (!work->started)
		return;
	if (wait_event_timeout(adev->job_done, sva_accel_work_done(adev, work),
			       SVA_ACCEL_JOB_TIMEOUT))
		return;
	if (!READ_ONCE(adev->removed)) {
		dev_warn(&adev->pdev->dev, "job on slot %d timed out, aborting\n",
			 work->slot);
		/* Under the lock: a completed job's slot may be reused. */
		spin_lock_irqsave(&adev->lock, flags);
		if (!work->done)
			writel(DOORBELL_ABORT, adev->regs +
			       REG_SLOT(work->slot) + SLOT_DOORBELL);
		spin_unlock_irqrestore(&adev->lock, flags);
		if (wait_event_timeout(adev->job_done,
				       sva_accel_work_done(adev, work), HZ)) {
			work->job.status = SVA_ACCEL_ST_TIMEOUT;
			return;
		}
	}
	/*
	 * The device may still use the slot and the pages: keep the slot busy
	 * and the pages pinned for good rather than let it write freed memory.
	 */
	spin_lock_irqsave(&adev->lock, flags);
	done = work->done;
	if (!done)
		adev->slot_work[work->slot] = NULL;
	spin_unlock_irqrestore(&adev->lock, flags);
	if (done)
		return;
	dev_err(&adev->pdev->dev, "slot %d does not complete\n", work->slot);
	work->wedged = true;
	work->job.status = SVA_ACCEL_ST_TIMEOUT;
}

/* Releases what a completed job holds and reports it. */
static void sva_accel_finish(struct sva_accel_ctx *ctx,
			     struct sva_accel_work *work)
{
	struct sva_accel_dev *adev = ctx->adev;
	struct sva_accel_job *job = &work->job;

	if (!work->wedged)
		sva_accel_release_pages(adev, work);
	trace_sva_accel_job(ctx->mm, job->pasid, ctx->bind_pid, job->op,
			    job->len, job->status, job->result,
			    job->fault_addr);
}

static void sva_accel_unbind(struct sva_accel_ctx *ctx, u8 by)
{
	trace_sva_accel_unbind(ctx->mm, ctx->pasid, ctx->bind_pid, by);
	if (ctx->handle)
		iommu_sva_unbind_device(ctx->handle);
	if (ctx->own_mm)
		mmdrop(ctx->mm);
	ctx->handle = NULL;
	ctx->mm = NULL;
	ctx->own_mm = false;
	ctx->pasid = SVA_ACCEL_NO_PASID;
	ctx->bind_pid = 0;
	ctx->bound = false;
}

static void sva_accel_ctx_free(struct sva_accel_ctx *ctx)
{
	mutex_destroy(&ctx->lock);
	sva_accel_dev_put(ctx->adev);
	kfree(ctx);
}

/* The deferred pattern: the file is gone, its device quiet; now unbind. */
static void sva_accel_deferred_unbind(struct work_struct *work)
{
	struct sva_accel_ctx *ctx = container_of(to_delayed_work(work),
						 struct sva_accel_ctx,
						 unbind_work);

	sva_accel_unbind(ctx, SVA_ACCEL_BY_WORK);
	sva_accel_ctx_free(ctx);
}

static int sva_accel_do_bind(struct sva_accel_ctx *ctx, struct mm_struct *mm);

static int sva_accel_open(struct inode *inode, struct file *file)
{
	struct sva_accel_dev *adev = container_of(file->private_data,
						  struct sva_accel_dev, misc);
	struct sva_accel_ctx *ctx;

	if (READ_ONCE(adev->removed))
		return -ENODEV;
	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);
	if (!ctx)
		return -ENOMEM;
	kref_get(&adev->ref);
	ctx->adev = adev;
	ctx->pasid = SVA_ACCEL_NO_PASID;
	mutex_init(&ctx->lock);
	INIT_LIST_HEAD(&ctx->inflight);
	INIT_DELAYED_WORK(&ctx->unbind_work, sva_accel_deferred_unbind);
	if (sva_accel_pattern == SVA_ACCEL_UACCE) {
		int ret;

		if (!current->mm) {
			ret = -EINVAL;
		} else {
			mutex_lock(&ctx->lock);
			ret = sva_accel_do_bind(ctx, current->mm);
			mutex_unlock(&ctx->lock);
		}
		if (ret) {
			sva_accel_ctx_free(ctx);
			return ret;
		}
	}
	file->private_data = ctx;
	return 0;
}

static int sva_accel_release(struct inode *inode, struct file *file)
{
	struct sva_accel_ctx *ctx = file->private_data;
	struct sva_accel_work *work, *next;

	/*
	 * Jobs left in flight (async, or a fatal signal) may still be using
	 * the binding: they finish, or are stopped, before it goes.
	 */
	list_for_each_entry_safe(work, next, &ctx->inflight, node) {
		sva_accel_stop(ctx->adev, work);
		sva_accel_wait_hard(ctx->adev, work);
		sva_accel_finish(ctx, work);
		list_del(&work->node);
		kfree(work);
	}
	if (ctx->bound && sva_accel_pattern == SVA_ACCEL_DEFERRED) {
		queue_delayed_work(sva_accel_wq, &ctx->unbind_work,
				   SVA_ACCEL_DEFERRED_UNBIND);
		return 0;
	}
	if (ctx->bound)
		sva_accel_unbind(ctx, SVA_ACCEL_BY_RELEASE);
	sva_accel_ctx_free(ctx);
	return 0;
}

static int sva_accel_ioctl_info(struct sva_accel_ctx *ctx, void __user *arg)
{
	struct sva_accel_dev *adev = ctx->adev;
	struct sva_accel_work *work;
	struct sva_accel_info info = {
		.abi_version = SVA_ACCEL_ABI_VERSION,
		.mode = adev->mode,
		.slots = adev->nr_slots,
		.pasid_bits = adev->pasid_bits,
		.sva_error = adev->sva_error,
		.bound = ctx->bound,
		.pasid = ctx->pasid,
		.bind_pid = ctx->bind_pid,
		.mm_pasid = sva_accel_mm_pasid(current->mm),
		.inflight = ctx->nr_inflight,
		.bind_mm = (unsigned long)ctx->mm,
		.caller_mm = (unsigned long)current->mm,
		.iopf = adev->iopf && !pin_always,
	};

	list_for_each_entry(work, &ctx->inflight, node)
		if (!work->started || sva_accel_work_done(adev, work))
			info.finished++;

	return copy_to_user(arg, &info, sizeof(info)) ? -EFAULT : 0;
}

/* Binds @mm to the file's device; the caller holds ctx->lock. */
static int sva_accel_do_bind(struct sva_accel_ctx *ctx, struct mm_struct *mm)
{
	struct sva_accel_dev *adev = ctx->adev;
	struct iommu_sva *handle = NULL;
	u32 pasid = SVA_ACCEL_NO_PASID;

	if (adev->mode == SVA_ACCEL_MODE_SVA) {
		handle = sva_accel_bind_mm(&adev->pdev->dev, mm);
		if (IS_ERR(handle)) {
			trace_sva_accel_bind(mm, pasid, adev->mode,
					     PTR_ERR(handle));
			return PTR_ERR(handle);
		}
		pasid = iommu_sva_get_pasid(handle);
		if (pasid == SVA_ACCEL_NO_PASID) {
			iommu_sva_unbind_device(handle);
			trace_sva_accel_bind(mm, pasid, adev->mode, -ENODEV);
			return -ENODEV;
		}
	}
	ctx->own_mm = !handle || sva_accel_pattern == SVA_ACCEL_CAREFUL;
	if (ctx->own_mm)
		mmgrab(mm);
	ctx->mm = mm;
	ctx->handle = handle;
	ctx->pasid = pasid;
	ctx->bind_pid = current->tgid;
	ctx->bound = true;
	trace_sva_accel_bind(mm, pasid, adev->mode, 0);
	return 0;
}

static int sva_accel_ioctl_bind(struct sva_accel_ctx *ctx, void __user *arg)
{
	struct mm_struct *mm = current->mm;
	struct sva_accel_bind out = {};
	int ret;

	if (!mm)
		return -EINVAL;
	/* The uacce pattern bound at open: that binding is the opener's. */
	if (ctx->bound && (sva_accel_pattern != SVA_ACCEL_UACCE ||
			   ctx->mm != mm))
		return -EBUSY;
	if (!ctx->bound) {
		ret = sva_accel_do_bind(ctx, mm);
		if (ret)
			return ret;
	}
	out.pasid = ctx->pasid;
	out.mode = ctx->adev->mode;
	out.mm = (unsigned long)mm;
	return copy_to_user(arg, &out, sizeof(out)) ? -EFAULT : 0;
}

static int sva_accel_ioctl_unbind(struct sva_accel_ctx *ctx)
{
	/* uacce has no unbind but the file's release. */
	if (sva_accel_pattern == SVA_ACCEL_UACCE)
		return -EOPNOTSUPP;
	if (!ctx->bound)
		return -ENOENT;
	if (ctx->nr_inflight)
		return -EBUSY;
	sva_accel_unbind(ctx, SVA_ACCEL_BY_IOCTL);
	return 0;
}

static bool sva_accel_valid_job(const struct sva_accel_job *job)
{
	if (job->op < SVA_ACCEL_OP_COPY || job->op > SVA_ACCEL_OP_CHECKSUM)
		return false;
	if (job->flags & ~(SVA_ACCEL_JOB_NO_PREFAULT | SVA_ACCEL_JOB_REPEAT))
		return false;
	if (job->flags & SVA_ACCEL_JOB_REPEAT && !job->len)
		return false;
	if (job->len > SVA_ACCEL_MAX_JOB_LEN)
		return false;
	if (job->src + job->len < job->src || job->dst + job->len < job->dst)
		return false;
	return true;
}

static int sva_accel_copy_out(struct sva_accel_job __user *ujobs,
			      unsigned int index, struct sva_accel_work *work)
{
	if (copy_to_user(&ujobs[index], &work->job, sizeof(work->job)))
		return -EFAULT;
	return 0;
}

/*
 * Waits until @work completes, or for SVA_ACCEL_JOB_TIMEOUT before
 * aborting it. Returns 0, or -ERESTARTSYS / -EINTR when the caller is
 * killed (the work then stays with the file).
 */
static long sva_accel_wait_work(struct sva_accel_dev *adev,
				struct sva_accel_work *work)
{
	long left;

	if (!work->started)
		return 0;
	left = wait_event_killable_timeout(adev->job_done,
					   sva_accel_work_done(adev, work),
					   SVA_ACCEL_JOB_TIMEOUT);
	if (left < 0)
		return left;
	if (!left)
		sva_accel_wait_hard(adev, work);
	return 0;
}

/*
 * Takes a completed @work off the file, reports it as the caller's job @idx
 * unless an earlier job already failed (@ret), and frees it.
 */
static int sva_accel_retire(struct sva_accel_ctx *ctx,
			    struct sva_accel_work *work,
			    struct sva_accel_job __user *ujobs, unsigned int idx,
			    int ret)
{
	sva_accel_finish(ctx, work);
	list_del(&work->node);
	ctx->nr_inflight--;
	if (!ret)
		ret = sva_accel_copy_out(ujobs, idx, work);
	kfree(work);
	return ret;
}

static int sva_accel_ioctl_submit(struct sva_accel_ctx *ctx, void __user *arg)
{
	struct sva_accel_dev *adev = ctx->adev;
	struct sva_accel_work *works[SVA_ACCEL_MAX_JOBS] = {};
	struct sva_accel_job __user *ujobs;
	struct sva_accel_submit sub;
	unsigned int i, started = 0;
	int ret = 0;

	if (copy_from_user(&sub, arg, sizeof(sub)))
		return -EFAULT;
	if (!sub.count || sub.count > SVA_ACCEL_MAX_JOBS ||
	    sub.flags & ~SVA_ACCEL_SUBMIT_ASYNC)
		return -EINVAL;
	if (!ctx->bound)
		return -ENOENT;
	if (READ_ONCE(adev->removed))
		return -ENODEV;
	ujobs = u64_to_user_ptr(sub.jobs);

	for (i = 0; i < sub.count; i++) {
		works[i] = kzalloc(sizeof(*works[i]), GFP_KERNEL);
		if (!works[i]) {
			ret = -ENOMEM;
			goto free;
		}
		if (copy_from_user(&works[i]->job, &ujobs[i],
				   sizeof(works[i]->job))) {
			ret = -EFAULT;
			goto free;
		}
		if (!sva_accel_valid_job(&works[i]->job) ||
		    (works[i]->job.flags & SVA_ACCEL_JOB_REPEAT &&
		     !(sub.flags & SVA_ACCEL_SUBMIT_ASYNC))) {
			ret = -EINVAL;
			goto free;
		}
	}

	/* From here on every job belongs to the file until it completes. */
	for (i = 0; i < sub.count; i++) {
		ret = sva_accel_start(ctx, works[i]);
		list_add_tail(&works[i]->node, &ctx->inflight);
		ctx->nr_inflight++;
		started++;
		if (ret)
			break;
	}
	for (i = started; i < sub.count; i++) {
		kfree(works[i]);
		works[i] = NULL;
	}
	if (ret || sub.flags & SVA_ACCEL_SUBMIT_ASYNC)
		return ret;

	for (i = 0; i < started; i++) {
		struct sva_accel_work *work = works[i];
		long left = sva_accel_wait_work(adev, work);

		/* Killed: the jobs stay with the file. */
		if (left)
			return left;
		ret = sva_accel_retire(ctx, work, ujobs, i, ret);
	}
	return ret;

free:
	for (i = 0; i < sub.count; i++)
		kfree(works[i]);
	return ret;
}

static int sva_accel_ioctl_wait(struct sva_accel_ctx *ctx, void __user *arg)
{
	struct sva_accel_dev *adev = ctx->adev;
	struct sva_accel_job __user *ujobs;
	struct sva_accel_work *work, *next;
	struct sva_accel_submit sub;
	unsigned int filled = 0;
	int ret = 0;

	if (copy_from_user(&sub, arg, sizeof(sub)))
		return -EFAULT;
	if (sub.flags)
		return -EINVAL;
	ujobs = u64_to_user_ptr(sub.jobs);

	list_for_each_entry_safe(work, next, &ctx->inflight, node) {
		long left;

		if (filled == sub.count)
			break;
		sva_accel_stop(adev, work);
		left = sva_accel_wait_work(adev, work);
		if (left)
			return left;
		ret = sva_accel_retire(ctx, work, ujobs, filled, ret);
		filled++;
	}
	sub.count = filled;
	if (!ret && copy_to_user(arg, &sub, sizeof(sub)))
		ret = -EFAULT;
	return ret;
}

static long sva_accel_ioctl(struct file *file, unsigned int cmd,
			    unsigned long arg)
{
	struct sva_accel_ctx *ctx = file->private_data;
	void __user *uarg = (void __user *)arg;
	long ret;

	if (mutex_lock_killable(&ctx->lock))
		return -EINTR;
	switch (cmd) {
	case SVA_ACCEL_IOCTL_INFO:
		ret = sva_accel_ioctl_info(ctx, uarg);
		break;
	case SVA_ACCEL_IOCTL_BIND:
		ret = sva_accel_ioctl_bind(ctx, uarg);
		break;
	case SVA_ACCEL_IOCTL_UNBIND:
		ret = sva_accel_ioctl_unbind(ctx);
		break;
	case SVA_ACCEL_IOCTL_SUBMIT:
		ret = sva_accel_ioctl_submit(ctx, uarg);
		break;
	case SVA_ACCEL_IOCTL_WAIT:
		ret = sva_accel_ioctl_wait(ctx, uarg);
		break;
	default:
		ret = -ENOTTY;
		break;
	}
	mutex_unlock(&ctx->lock);
	return ret;
}

static const struct file_operations sva_accel_fops = {
	.owner = THIS_MODULE,
	.open = sva_accel_open,
	.release = sva_accel_release,
	.unlocked_ioctl = sva_accel_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static ssize_t mode_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	struct sva_accel_dev *adev = pci_get_drvdata(to_pci_dev(dev));

	if (adev->mode == SVA_ACCEL_MODE_SVA)
		return sysfs_emit(buf, "sva\n");
	return sysfs_emit(buf, "dma %d\n", adev->sva_error);
}
static DEVICE_ATTR_RO(mode);

static struct attribute *sva_accel_attrs[] = {
	&dev_attr_mode.attr,
	NULL,
};
ATTRIBUTE_GROUPS(sva_accel);

/*
 * SVA mode needs the kernel's SVA support, PASID enabled on the device by
 * the IOMMU driver, and a bind that works: try one with the probing
 * process's mm (insmod's), since only a bind says whether the IOMMU can.
 */
static int sva_accel_try_sva(struct sva_accel_dev *adev)
{
	struct device *dev = &adev->pdev->dev;
	struct iommu_sva *handle;
	int ret;

	if (!IS_ENABLED(CONFIG_IOMMU_SVA))
		return -EOPNOTSUPP;
	if (force_dma)
		return -EPERM;
	if (!adev->pasid_bits)
		return -ENODEV;
#ifdef CONFIG_PCI_PASID
	if (!adev->pdev->pasid_enabled)
		return -ENXIO;
#else
	return -ENXIO;
#endif
#ifdef SVA_ACCEL_NEEDS_DEV_FEAT_SVA
	/*
	 * A master that can stall must have I/O page faults enabled before
	 * SVA (arm-smmu-v3 refuses SVA otherwise); one that cannot refuses
	 * IOPF, and then the driver pins.
	 */
	adev->feat_iopf = !iommu_dev_enable_feature(dev, IOMMU_DEV_FEAT_IOPF);
	ret = iommu_dev_enable_feature(dev, IOMMU_DEV_FEAT_SVA);
	if (ret)
		goto disable_iopf;
	adev->feat_sva = true;
#endif
	if (!current->mm) {
		adev->iopf = sva_accel_iopf_active(dev);
		return 0;
	}
	handle = sva_accel_bind_mm(dev, current->mm);
	if (IS_ERR(handle)) {
		ret = PTR_ERR(handle);
		goto disable;
	}
	/* 6.16 and later enable IOPF with the SVA domain: look while bound. */
	adev->iopf = sva_accel_iopf_active(dev);
	iommu_sva_unbind_device(handle);
	return 0;
disable:
#ifdef SVA_ACCEL_NEEDS_DEV_FEAT_SVA
	iommu_dev_disable_feature(dev, IOMMU_DEV_FEAT_SVA);
	adev->feat_sva = false;
disable_iopf:
	if (adev->feat_iopf)
		iommu_dev_disable_feature(dev, IOMMU_DEV_FEAT_IOPF);
	adev->feat_iopf = false;
#endif
	return ret;
}

static int sva_accel_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	struct sva_accel_dev *adev;
	u32 caps;
	int ret;

	adev = kzalloc(sizeof(*adev), GFP_KERNEL);
	if (!adev)
		return -ENOMEM;
	kref_init(&adev->ref);
	adev->pdev = pci_dev_get(pdev);
	spin_lock_init(&adev->lock);
	init_waitqueue_head(&adev->slot_free);
	init_waitqueue_head(&adev->job_done);
	pci_set_drvdata(pdev, adev);

	ret = pci_enable_device(pdev);
	if (ret)
		goto put;
	adev->enabled = true;
	ret = pci_request_region(pdev, 0, KBUILD_MODNAME);
	if (ret)
		goto put;
	adev->regs = pci_iomap(pdev, 0, 0);
	if (!adev->regs) {
		pci_release_region(pdev, 0);
		ret = -ENOMEM;
		goto put;
	}
	if (readl(adev->regs + REG_ID) != SVA_ACCEL_ID_VALUE) {
		dev_err(dev, "unexpected ID register 0x%08x\n",
			readl(adev->regs + REG_ID));
		ret = -ENODEV;
		goto put;
	}
	caps = readl(adev->regs + REG_CAPS);
	adev->nr_slots = min_t(unsigned int, CAPS_SLOTS(caps),
			       SVA_ACCEL_MAX_SLOTS);
	adev->pasid_bits = CAPS_PASID_BITS(caps);
	if (!adev->nr_slots) {
		ret = -ENODEV;
		goto put;
	}
	pci_set_master(pdev);
	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
	if (ret)
		goto put;
	dma_set_max_seg_size(dev, UINT_MAX);

	ret = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_ALL_TYPES);
	if (ret < 0)
		goto put;
	adev->irq = pci_irq_vector(pdev, 0);
	writel(0, adev->regs + REG_INT_ENABLE);
	writel(~0U, adev->regs + REG_INT_STATUS);
	ret = request_irq(adev->irq, sva_accel_irq, IRQF_SHARED, KBUILD_MODNAME,
			  adev);
	if (ret)
		goto free_vectors;
	writel(GENMASK(adev->nr_slots - 1, 0), adev->regs + REG_INT_ENABLE);

	adev->sva_error = sva_accel_try_sva(adev);
	adev->mode = adev->sva_error ? SVA_ACCEL_MODE_DMA : SVA_ACCEL_MODE_SVA;

	ret = ida_alloc(&sva_accel_ida, GFP_KERNEL);
	if (ret < 0)
		goto disable_sva;
	adev->id = ret;
	snprintf(adev->name, sizeof(adev->name), "sva-accel%d", adev->id);
	adev->misc.minor = MISC_DYNAMIC_MINOR;
	adev->misc.name = adev->name;
	adev->misc.fops = &sva_accel_fops;
	adev->misc.parent = dev;
	ret = misc_register(&adev->misc);
	if (ret)
		goto free_id;

	if (adev->mode == SVA_ACCEL_MODE_SVA)
		dev_info(dev, "/dev/%s: mode sva%s, %u slots, PASID width %u\n",
			 adev->name,
			 adev->iopf && !pin_always ? " with I/O page faults" : "",
			 adev->nr_slots, adev->pasid_bits);
	else
		dev_info(dev, "/dev/%s: mode dma-api (SVA unavailable: %d), %u slots\n",
			 adev->name, adev->sva_error, adev->nr_slots);
	return 0;

free_id:
	ida_free(&sva_accel_ida, adev->id);
disable_sva:
#ifdef SVA_ACCEL_NEEDS_DEV_FEAT_SVA
	if (adev->feat_sva)
		iommu_dev_disable_feature(dev, IOMMU_DEV_FEAT_SVA);
	if (adev->feat_iopf)
		iommu_dev_disable_feature(dev, IOMMU_DEV_FEAT_IOPF);
#endif
	writel(0, adev->regs + REG_INT_ENABLE);
	free_irq(adev->irq, adev);
free_vectors:
	pci_free_irq_vectors(pdev);
put:
	sva_accel_dev_put(adev);
	return ret;
}

static void sva_accel_remove(struct pci_dev *pdev)
{
	struct sva_accel_dev *adev = pci_get_drvdata(pdev);

	/*
	 * Open files keep their bindings (and the registers mapped) until
	 * released; running jobs are aborted, and their waiters poll.
	 */
	misc_deregister(&adev->misc);
	writel(0, adev->regs + REG_INT_ENABLE);
	free_irq(adev->irq, adev);
	pci_free_irq_vectors(pdev);
	WRITE_ONCE(adev->removed, true);
	writel(CTRL_ABORT_ALL, adev->regs + REG_CTRL);
	wake_up_all(&adev->slot_free);
	wake_up_all(&adev->job_done);
#ifdef SVA_ACCEL_NEEDS_DEV_FEAT_SVA
	if (adev->feat_sva)
		iommu_dev_disable_feature(&pdev->dev, IOMMU_DEV_FEAT_SVA);
	if (adev->feat_iopf)
		iommu_dev_disable_feature(&pdev->dev, IOMMU_DEV_FEAT_IOPF);
#endif
	ida_free(&sva_accel_ida, adev->id);
	sva_accel_dev_put(adev);
}

static const struct pci_device_id sva_accel_ids[] = {
	{ PCI_DEVICE(SVA_ACCEL_VENDOR, SVA_ACCEL_DEVICE) },
	{ }
};
MODULE_DEVICE_TABLE(pci, sva_accel_ids);

static struct pci_driver sva_accel_driver = {
	.name = KBUILD_MODNAME,
	.id_table = sva_accel_ids,
	.probe = sva_accel_probe,
	.remove = sva_accel_remove,
	.dev_groups = sva_accel_groups,
};
static int __init sva_accel_init(void)
{
	int ret;

	ret = sysfs_match_string(sva_accel_patterns, pattern);
	if (ret < 0) {
		pr_err("pattern=%s: unknown (careful, uacce, deferred)\n",
		       pattern);
		return ret;
	}
	sva_accel_pattern = ret;
	sva_accel_wq = alloc_workqueue("sva_accel", WQ_UNBOUND, 0);
	if (!sva_accel_wq)
		return -ENOMEM;
	ret = pci_register_driver(&sva_accel_driver);
	if (ret) {
		destroy_workqueue(sva_accel_wq);
		return ret;
	}
	pr_info("binding pattern %s\n", sva_accel_patterns[sva_accel_pattern]);
	return 0;
}
module_init(sva_accel_init);

static void __exit sva_accel_exit(void)
{
	pci_unregister_driver(&sva_accel_driver);
	/* Pending deferred unbinds run now, before their code goes. */
	destroy_workqueue(sva_accel_wq);
}
module_exit(sva_accel_exit);

MODULE_DESCRIPTION("kharness sva-accel: SVA/PASID accelerator for lifecycle tests");
MODULE_AUTHOR("kharness developers <kharness@example.invalid>");
MODULE_LICENSE("GPL");
