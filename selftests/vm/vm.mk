# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The VM runner's build rules, included by the top-level Makefile. `make vmtest`
# boots Debian's cloud kernels under QEMU (TCG, no KVM needed) and runs the
# selftests inside each guest; see selftests/vm/vmtest.sh.
#
#   deps-vm   the Debian packages the runner needs
#   vm-tools  into $(OUTPUT)/vm/: the guest root (busybox, kaccess and the
#             kernel-facing selftests, the real peers, each with the
#             libraries ldd lists), and per kernel of VMTEST_KERNELS its
#             vmlinuz and initramfs (the newest package of the series from
#             Debian's archive, cached in $(OUTPUT)/vm/debs)

VM_DIR := selftests/vm
VM_OUTPUT := $(OUTPUT)/vm
# Tests of userspace alone give the same result on every kernel: the host
# runs them, the guests do not (they also need python3, which guests lack).
VM_HOST_ONLY_TESTS := test_k8s test_oap test_rollup test_records
VM_TEST_NAMES := $(filter-out $(VM_HOST_ONLY_TESTS),$(patsubst selftests/%.c,%,$(TEST_SRCS)))
VM_TEST_BINS := $(addprefix $(OUTPUT)/selftests/,$(VM_TEST_NAMES))
export VM_TEST_NAMES

# qemu-system-x86: the emulator; busybox-static: the guest's shell and tools;
# cpio: the initramfs; kmod: depmod/modprobe to order the guest's modules.
DEPS_VM := qemu-system-x86 busybox-static cpio kmod xz-utils
# Kernel series to boot, newest Debian cloud package of each.
VMTEST_KERNELS ?= 6.1 6.12
export VMTEST_KERNELS

.PHONY: deps-vm vm-tools

deps-vm: ## install (as root) or list the packages `make vmtest` needs
	$(call install_missing,$(DEPS_VM))

# The runner's own test (a script with a stand-in for QEMU, host only, as
# test_manifests): "built" by copying it where run.sh runs every test.
selftests: $(OUTPUT)/selftests/test_vmtest

$(OUTPUT)/selftests/test_vmtest: selftests/test_vmtest.py
	$(call msg,TEST,$@)
	$(Q)install -D -m 0755 $< $@

vm-tools: $(KACCESS) $(VM_TEST_BINS) ## build the guest root, fetch the kernels, build the initramfs
	$(call msg,VM-ROOT,$(VM_OUTPUT)/root)
	$(Q)$(VM_DIR)/mkroot.sh $(OUTPUT)
	$(Q)for series in $(VMTEST_KERNELS); do \
		$(VM_DIR)/mkkernel.sh $(OUTPUT) $$series || exit 1; \
	done
