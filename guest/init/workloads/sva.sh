# SPDX-License-Identifier: GPL-2.0
#
# The sva workload: load the sva-accel driver, trace PASID and mm lifetimes
# with ftrace, run kharness-sva's scenarios ($KHARNESS_SCENARIOS, all when
# empty), and hand the trace to the host: streamed from trace_pipe to the
# virtio console port named org.kharness.trace when the machine has one
# (between "# kharness trace-begin" and "# kharness trace-end overruns=N"),
# else printed on the console at the end between "@@kharness trace-begin
# overruns=N" and "@@kharness trace-end". If the kernel dies, what was not
# streamed yet is dumped on the console by ftrace_dump_on_oops.
#
# Kernel command line options read here:
#   kharness.sva.force_dma=1   run the driver in DMA-API mode even with SVA
#   kharness.sva.pattern=P     how the driver binds: careful (default), uacce
#                              or deferred (guest/driver/sva_accel.c's header),
#                              or uio: no sva_accel driver, the in-tree
#                              uio_pci_generic_sva (7.x, the uio fragment)
#                              and the workload's uio scenarios
#   kharness.sva.trace=0       no ftrace set-up (and no trace hand-over)

module=/lib/modules/kharness/sva_accel.ko
workload=/usr/bin/kharness-sva
port_name=org.kharness.trace

note() { echo "kharness-sva: $*"; }

force_dma=0
pattern=careful
trace=1
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	kharness.sva.force_dma=*) force_dma=${arg#kharness.sva.force_dma=} ;;
	kharness.sva.pattern=*) pattern=${arg#kharness.sva.pattern=} ;;
	kharness.sva.trace=*) trace=${arg#kharness.sva.trace=} ;;
	esac
done

tracing=
for dir in /sys/kernel/tracing /sys/kernel/debug/tracing; do
	if [ -e "$dir/trace" ]; then
		tracing=$dir
		break
	fi
done
[ "$trace" = 1 ] || tracing=

# Kernel functions that allocate, attach, detach and free PASIDs and end
# mm lifetimes, with the argument that names the PASID or mm. Names changed
# across 6.1 (ioasid, sva_bind ops), 6.2 (set_dev_pasid), 6.4 (global
# PASID allocator), 6.8 (iommu_mm) and 6.11; only those this kernel has
# are probed. Format: event function fetch-args.
kprobes='
sva_bind iommu_sva_bind_device mm=$arg2:x64
sva_unbind iommu_sva_unbind_device handle=$arg1:x64
attach_pasid iommu_attach_device_pasid domain=$arg1:x64 pasid=$arg3:u32
detach_pasid iommu_detach_device_pasid domain=$arg1:x64 pasid=$arg3:u32
free_global_pasid iommu_free_global_pasid pasid=$arg1:u32
sva_alloc_pasid iommu_sva_alloc_pasid mm=$arg1:x64
mm_pasid_drop mm_pasid_drop mm=$arg1:x64
ioasid_free ioasid_free pasid=$arg1:u32
ioasid_put ioasid_put pasid=$arg1:u32
smmu_sva_bind arm_smmu_sva_bind mm=$arg2:x64
smmu_sva_unbind arm_smmu_sva_unbind handle=$arg1:x64
smmu_set_dev_pasid arm_smmu_sva_set_dev_pasid domain=$arg1:x64 pasid=$arg3:u32
smmu_remove_dev_pasid arm_smmu_remove_dev_pasid pasid=$arg2:u32
smmu_sva_remove_dev_pasid arm_smmu_sva_remove_dev_pasid pasid=$arg2:u32
smmu_mm_release arm_smmu_mm_release mm=$arg2:x64
mmput __mmput mm=$arg1:x64
exit_mmap exit_mmap mm=$arg1:x64
mmdrop __mmdrop mm=$arg1:x64
'
# Functions whose return value is the PASID (or an error), and
# __mmu_notifier_release, whose return says every release notifier of the
# exiting mm ran (the IOMMU has stopped translating for it).
kretprobes='
alloc_global_pasid iommu_alloc_global_pasid
sva_alloc_pasid iommu_sva_alloc_pasid
ioasid_alloc ioasid_alloc
sva_bind iommu_sva_bind_device
mmu_notifier_release __mmu_notifier_release
'

# The probed functions this kernel has, found in one pass over
# available_filter_functions and, for those not there, one over kallsyms:
# a grep per function took 0.4-0.5 s each under TCG, 10-15 s a run.
find_functions() {
	wanted=$(printf '%s\n%s\n' "$kprobes" "$kretprobes" | awk 'NF >= 2 { print $2 }' | sort -u | tr '\n' ' ')
	found=$(awk -v names="$wanted" 'BEGIN { n = split(names, a, " "); for (i = 1; i <= n; i++) w[a[i]] = 1 }
		($1 in w) && !($1 in seen) { seen[$1] = 1; print $1 }' \
		"$tracing/available_filter_functions" 2>/dev/null | tr '\n' ' ')
	missing=
	for fn in $wanted; do
		case " $found " in *" $fn "*) ;; *) missing="$missing $fn" ;; esac
	done
	[ -n "$missing" ] && found="$found $(awk -v names="$missing" \
		'BEGIN { n = split(names, a, " "); for (i = 1; i <= n; i++) w[a[i]] = 1 }
		($2 == "t" || $2 == "T") && ($3 in w) { print $3 }' /proc/kallsyms 2>/dev/null | tr '\n' ' ')"
	known_functions=" $found "
}

has_function() {
	case "$known_functions" in *" $1 "*) return 0 ;; esac
	return 1
}

setup_tracing() {
	echo 0 > "$tracing/tracing_on"
	echo 8192 > "$tracing/buffer_size_kb" 2>/dev/null
	echo 1 > /proc/sys/kernel/ftrace_dump_on_oops 2>/dev/null
	find_functions
	echo "$kprobes" | while read -r event fn args; do
		[ -n "$fn" ] || continue
		has_function "$fn" || continue
		echo "p:kharness/$event $fn comm=\$comm $args" >> "$tracing/kprobe_events" 2>/dev/null ||
			note "kprobe on $fn refused"
	done
	echo "$kretprobes" | while read -r event fn; do
		[ -n "$fn" ] || continue
		has_function "$fn" || continue
		echo "r:kharness/${event}_ret $fn ret=\$retval:x64" >> "$tracing/kprobe_events" 2>/dev/null ||
			note "kretprobe on $fn refused"
	done
	[ -d "$tracing/events/kharness" ] && echo 1 > "$tracing/events/kharness/enable"
	for event in sched/sched_process_fork sched/sched_process_exit \
		     sched/sched_process_exec iommu sva_accel; do
		[ -e "$tracing/events/$event/enable" ] &&
			echo 1 > "$tracing/events/$event/enable"
	done
	note "tracing: $(sed -n 's/^[pr]:kharness\/\([^ ]*\) \([^ ]*\).*/\1=\2/p' "$tracing/kprobe_events" | tr '\n' ' ')"
	# The clock change resets the buffer, and ftrace_dump_on_oops prints
	# times relative to that reset: the marker right after it tells the
	# host where the dump's zero is on the trace's clock.
	echo global > "$tracing/trace_clock" 2>/dev/null
	echo > "$tracing/trace"
	echo 1 > "$tracing/tracing_on"
	echo kharness-clock > "$tracing/trace_marker"
}

# The virtio console port the host named for the trace, if any.
trace_port() {
	for port in /sys/class/virtio-ports/*; do
		[ -r "$port/name" ] || continue
		if [ "$(cat "$port/name")" = "$port_name" ]; then
			echo "/dev/${port##*/}"
			return
		fi
	done
}

# Streams the trace to the port while the workload runs, so a guest that
# hangs or dies has handed over everything up to that point; trace_pipe
# consumes what it reads, so the oops dump prints only the rest.
stream_pid=
port=
start_stream() {
	port=$(trace_port)
	[ -n "$port" ] && [ -c "$port" ] || return
	echo "# kharness trace-begin" > "$port"
	cat "$tracing/trace_pipe" > "$port" &
	stream_pid=$!
}

# Unread events left in the ring buffer.
unread() {
	cat "$tracing"/per_cpu/cpu*/stats 2>/dev/null |
		awk '/^entries:/ { n += $2 } END { print n + 0 }'
}

# A kernel built with kharness's coverage fragment has gcov counters in
# debugfs: each .gcda goes to the port, before the trace's footer, as
#   # kharness gcov-begin
#   # kharness gcov-file path=<path under debugfs gcov/> bytes=<n>
#   <base64 lines>
#   # kharness gcov-end files=<count>
# (the host takes the object's tree path from the end of the path and
# caps what it reads). Without the port there is no coverage.
send_gcov() {
	gcov=/sys/kernel/debug/gcov
	[ -d "$gcov" ] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
	[ -d "$gcov" ] || return 0
	files=0
	{
		echo "# kharness gcov-begin"
		for f in $(find "$gcov" -name '*.gcda'); do
			# debugfs gives these files no size: copy, then count.
			cat "$f" > /tmp/kharness.gcda 2>/dev/null || continue
			echo "# kharness gcov-file path=${f#$gcov/} bytes=$(wc -c < /tmp/kharness.gcda)"
			base64 /tmp/kharness.gcda
			files=$((files + 1))
		done
		echo "# kharness gcov-end files=$files"
	} > "$port"
	rm -f /tmp/kharness.gcda
	note "gcov counters of $files objects sent to $port"
}

# Workload processes still exiting, waited for at most 2 s.
wait_for_stragglers() {
	tries=0
	while pidof kharness-sva > /dev/null && [ $tries -lt 40 ]; do
		sleep 0.05
		tries=$((tries + 1))
	done
}

# Unloading the driver disables SVA (and I/O page faults) on the device once
# every file is closed: the IOMMU's teardown of a master, in the trace and the
# coverage. Not under uio (the in-tree driver stays bound).
unload_driver() {
	[ "$pattern" = uio ] && return
	grep -q '^sva_accel ' /proc/modules 2>/dev/null || return
	wait_for_stragglers
	if out=$(rmmod sva_accel 2>&1); then
		note "sva_accel unloaded"
	else
		note "rmmod sva_accel: $out"
	fi
}

hand_over_trace() {
	# Every workload process has released its files before tracing stops,
	# so a binding still live at the end of the trace was never released
	# (the workload reaps its own; this waits for stragglers, briefly).
	wait_for_stragglers
	# The deferred pattern unbinds from a workqueue 20 ms after the last
	# release: its unbinds belong in the trace, or they read as leaks.
	[ "$pattern" = deferred ] && sleep 0.2
	echo 0 > "$tracing/tracing_on"
	overruns=$(cat "$tracing"/per_cpu/cpu*/stats 2>/dev/null |
		   awk '/^overrun:/ { n += $2 } END { print n + 0 }')
	if [ -n "$stream_pid" ]; then
		# A trace_pipe reader that has read something sees the end of
		# file once tracing is off and the buffer is drained; one the
		# kernel does not wake for that is stopped once the buffer is
		# empty, while it waits for more (never in the middle of a write).
		tries=0
		while kill -0 "$stream_pid" 2>/dev/null && [ $tries -lt 40 ]; do
			[ $tries -ge 4 ] && [ "$(unread)" = 0 ] && break
			sleep 0.05
			tries=$((tries + 1))
		done
		kill "$stream_pid" 2>/dev/null
		wait "$stream_pid" 2>/dev/null
		left=$(unread)
		send_gcov
		echo "# kharness trace-end overruns=$((overruns + left))" > "$port"
		note "trace streamed to $port ($port_name), $overruns events lost, $left unread"
	else
		echo "@@kharness trace-begin overruns=$overruns"
		cat "$tracing/trace"
		echo "@@kharness trace-end"
	fi
}

# The uio pattern: sva-accel goes to uio_pci_generic_sva (it has no ID
# table: new_id gives it the device), which binds each opener in open().
uio_setup() {
	drv=/sys/bus/pci/drivers/uio_pci_sva
	if [ ! -d "$drv" ]; then
		setup_error="no uio_pci_generic_sva in this kernel (the uio config fragment, Linux 7.x)"
		return
	fi
	echo "1234 5356" > "$drv/new_id" 2>/dev/null
	tries=0
	while [ -z "$(ls /sys/class/uio 2>/dev/null)" ] && [ $tries -lt 40 ]; do
		sleep 0.05
		tries=$((tries + 1))
	done
	uio=$(ls /sys/class/uio 2>/dev/null | head -n 1)
	if [ -z "$uio" ] || [ ! -e "/dev/$uio" ]; then
		setup_error="uio_pci_generic_sva did not take sva-accel: $(dmesg | grep -m 1 'uio' || echo 'see dmesg')"
		return
	fi
	export KHARNESS_UIO="/dev/$uio"
	note "sva-accel on $KHARNESS_UIO ($(readlink "/sys/class/uio/$uio/device" | sed 's,.*/,,'))"
}

# The driver: a missing device or module is reported by the workload as
# the reason every scenario is skipped.
setup_error=
if [ "$pattern" = uio ]; then
	uio_setup
elif [ ! -e "$module" ]; then
	setup_error="$module is missing from the initramfs"
elif ! grep -q '^sva_accel ' /proc/modules 2>/dev/null; then
	params="pattern=$pattern"
	[ "$force_dma" = 1 ] && params="$params force_dma=1"
	if ! out=$(insmod "$module" $params 2>&1); then
		setup_error="insmod $module failed: $out"
	fi
fi
if [ -z "$setup_error" ] && [ "$pattern" != uio ] && [ ! -e /dev/sva-accel0 ]; then
	setup_error="no sva-accel PCI device (1234:5356) on this machine"
	for dev in /sys/bus/pci/devices/*; do
		if [ "$(cat "$dev/vendor"):$(cat "$dev/device")" = "0x1234:0x5356" ]; then
			setup_error="sva-accel at ${dev##*/} has no driver: $(dmesg | grep -m 1 'sva.accel' || echo 'see dmesg')"
		fi
	done
fi
export KHARNESS_SVA_SETUP_ERROR="$setup_error"
export KHARNESS_SVA_PATTERN="$pattern"
[ -z "$setup_error" ] || note "$setup_error"
# The driver is here but the device did not come up: on the sva machine, which
# has the device, that is the kernel's failure, not a reason to skip.
if [ -n "$setup_error" ] && [ -e "$module" ] && [ "$pattern" != uio ]; then
	echo "@@kharness probe-failed $setup_error"
fi
for dev in /sys/bus/pci/drivers/sva_accel/0*; do
	[ -e "$dev/mode" ] && note "${dev##*/} mode $(cat "$dev/mode")"
done

if [ -n "$tracing" ]; then
	setup_tracing
	start_stream
	# The workload brackets trace timestamps with counter reads here, so the
	# host can put the device's records (timed with the counter) on the trace's clock.
	export KHARNESS_TRACE_MARKER="$tracing/trace_marker"
fi
"$workload"
status=$?
[ "$status" = 0 ] || note "$workload exited with status $status"
unload_driver
[ -n "$tracing" ] && hand_over_trace
exit "$status"
