# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The VM runner's build rules, included by the top-level Makefile. `make vmtest`
# boots Debian's cloud kernels under QEMU (TCG, no KVM needed) and runs the
# selftests inside each guest; see selftests/vm/vmtest.sh.
#
#   deps-vm   the Debian packages the runner needs
#   vm-tools  into $(OUTPUT)/vm/: static builds of kaccess and of every
#             selftest, the guest root (busybox, the real peers and their
#             libraries), and per kernel of VMTEST_KERNELS its vmlinuz and
#             initramfs (the newest package of the series from Debian's
#             archive, cached in $(OUTPUT)/vm/debs)

VM_DIR := selftests/vm
VM_OUTPUT := $(OUTPUT)/vm
VM_STATIC := $(VM_OUTPUT)/static
VM_KACCESS := $(VM_STATIC)/kaccess
VM_TEST_BINS := $(patsubst selftests/%.c,$(VM_STATIC)/selftests/%,$(TEST_SRCS))

# qemu-system-x86: the emulator; busybox-static: the guest's shell and tools;
# cpio: the initramfs; kmod: depmod/modprobe to order the guest's modules.
DEPS_VM := qemu-system-x86 busybox-static cpio kmod xz-utils
# Kernel series to boot, newest Debian cloud package of each.
VMTEST_KERNELS ?= 6.1 6.12
export VMTEST_KERNELS

# Everything static: the guest carries no libbpf, libelf or json-c.
VM_STATIC_LDLIBS = -static $(shell $(PKG_CONFIG) --static --libs $(SHIPPER_PKGS) json-c 2>/dev/null || \
			echo -lbpf -lelf -lz -ljson-c)

.PHONY: deps-vm vm-tools

deps-vm: ## install (as root) or list the packages `make vmtest` needs
	$(call install_missing,$(DEPS_VM))

vm-tools: $(VM_KACCESS) $(VM_TEST_BINS) ## build the static binaries, fetch the kernels, build the initramfs
	$(call msg,VM-ROOT,$(VM_OUTPUT)/root)
	$(Q)$(VM_DIR)/mkroot.sh $(OUTPUT)
	$(Q)for series in $(VMTEST_KERNELS); do \
		$(VM_DIR)/mkkernel.sh $(OUTPUT) $$series || exit 1; \
	done

$(VM_STATIC) $(VM_STATIC)/selftests:
	$(Q)mkdir -p $@

$(VM_KACCESS): $(SHIPPER_OBJS) | $(VM_STATIC)
	$(call msg,LINK-ST,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(VM_STATIC_LDLIBS) -o $@

$(VM_STATIC)/selftests/test_%: selftests/test_%.c $(TEST_LIB_OBJS) $(SHIPPER_LIB_OBJS) $(KSFT_HEADERS) | $(VM_STATIC)/selftests
	$(call msg,TEST-ST,$@)
	$(Q)$(CC) $(CFLAGS) $(TEST_CFLAGS) $(INCLUDES) -I$(KSFT_DIR) -Iselftests/lib $< \
		$(TEST_LIB_OBJS) $(SHIPPER_LIB_OBJS) $(VM_STATIC_LDLIBS) -o $@
