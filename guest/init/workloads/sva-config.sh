# SPDX-License-Identifier: GPL-2.0
#
# Is SVA built into this kernel? Looks for the bind entry point in kallsyms
# and the options in /proc/config.gz, and reports what the SMMU advertises.

name=sva-config
echo "@@kharness begin $name"
evidence() { echo "@@kharness evidence $name $*"; }
result() { echo "@@kharness result $name $*"; echo "@@kharness end $name"; exit 0; }

for opt in CONFIG_ARM_SMMU_V3 CONFIG_ARM_SMMU_V3_SVA CONFIG_IOMMU_SVA CONFIG_PCI_PASID; do
	line=$(zcat /proc/config.gz 2>/dev/null | grep "^$opt=")
	evidence "${line:-$opt is not set}"
done
features=$(dmesg | grep -m 1 'arm-smmu-v3.*features 0x')
[ -n "$features" ] && evidence "smmu ${features#*] }"
grep -qw iommu_sva_bind_device /proc/kallsyms ||
	result FAIL "iommu_sva_bind_device is not in kallsyms: the kernel has no SVA"
evidence "iommu_sva_bind_device in kallsyms"
result PASS "SVA is built in"
