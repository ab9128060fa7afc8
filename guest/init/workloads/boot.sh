# SPDX-License-Identifier: GPL-2.0
#
# The boot workload: did arm-smmu-v3 probe, and does a PCI device sit in an
# IOMMU group behind it? Reports what the SMMU advertises.
# kharness-modules: pci-stub

name=boot
echo "@@kharness begin $name"

evidence() { echo "@@kharness evidence $name $*"; }
result() { echo "@@kharness result $name $*"; echo "@@kharness end $name"; exit 0; }

smmus=
for dev in /sys/bus/platform/drivers/arm-smmu-v3/*; do
	[ -L "$dev/driver" ] || [ -d "$dev/iommu" ] || continue
	smmus="$smmus ${dev##*/}"
done
features=$(dmesg | grep -m 1 'arm-smmu-v3.*features 0x')
[ -n "$features" ] && evidence "smmu ${features#*] }"
ssid=$(dmesg | grep -m 1 -i 'arm-smmu-v3.*ssid')
[ -n "$ssid" ] && evidence "smmu ${ssid#*] }"

if [ -z "$smmus" ]; then
	if ls /sys/bus/platform/devices 2>/dev/null | grep -q smmu; then
		result FAIL "an SMMUv3 is present but arm-smmu-v3 did not bind to it"
	fi
	result SKIP "no SMMUv3 on this machine"
fi
evidence "arm-smmu-v3 bound:$smmus"

# Before 6.x kernels attach a device to its IOMMU only when a driver binds
# (of_dma_configure runs at probe), so give driverless endpoints pci-stub.
ids=
for dev in /sys/bus/pci/devices/*; do
	[ -e "$dev/iommu_group" ] || [ -e "$dev/driver" ] && continue
	case "$(cat "$dev/class")" in 0x06*) continue ;; esac
	ids="$ids${ids:+,}$(sed s/0x// "$dev/vendor"):$(sed s/0x// "$dev/device")"
done
if [ -n "$ids" ]; then
	if [ -e /sys/bus/pci/drivers/pci-stub/new_id ]; then
		# Built in (or already loaded): a module parameter would be ignored.
		for id in $(echo "$ids" | tr , ' '); do
			echo "${id%:*} ${id#*:}" > /sys/bus/pci/drivers/pci-stub/new_id
		done
		evidence "bound built-in pci-stub to $ids"
	elif modprobe pci-stub ids="$ids" 2>/dev/null; then
		evidence "bound pci-stub to $ids"
	else
		evidence "pci-stub not available for $ids"
	fi
fi

grouped=0
for dev in /sys/bus/pci/devices/*; do
	[ -e "$dev/iommu_group" ] || continue
	class=$(cat "$dev/class")
	case "$class" in 0x0604*|0x0600*) continue ;; esac
	group=$(readlink "$dev/iommu_group")
	iommu=$(readlink "$dev/iommu")
	evidence "pci ${dev##*/} $(sed s/0x// "$dev/vendor"):$(sed s/0x// "$dev/device") class $class iommu_group ${group##*/} iommu ${iommu##*/}"
	grouped=$((grouped + 1))
done
[ "$grouped" -gt 0 ] || result FAIL "no PCI endpoint is in an IOMMU group behind the SMMU"
result PASS "arm-smmu-v3 probed; $grouped PCI endpoint(s) in IOMMU groups"
