# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# kaccess: the single build entry. `make help` lists the targets.
# Quiet by default; `make V=1` shows every command.

KACCESS_VERSION := 0.1.0
GIT_REV := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

OUTPUT ?= .output
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
CLANG ?= clang
LLVM_STRIP ?= llvm-strip
BPFTOOL ?= $(shell command -v bpftool || echo /usr/sbin/bpftool)
CC ?= gcc
PKG_CONFIG ?= pkg-config

VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
VMLINUX_H := $(OUTPUT)/vmlinux/$(ARCH)/vmlinux.h
KSFT_DIR := $(OUTPUT)/ksft
KSFT_HEADERS := $(KSFT_DIR)/kselftest.h $(KSFT_DIR)/kselftest_harness.h
LINUX_SOURCE_TARBALL ?= /usr/src/linux-source-6.1.tar.xz

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/bpf/%.bpf.o,$(BPF_SRCS))
BPF_HDRS := $(wildcard bpf/*.bpf.h) $(wildcard maps/*.h)
SKEL := $(OUTPUT)/kaccess.skel.h

# shipper/<feature>/ holds a feature's sources (oap, k8s); its <feature>.mk adds
# the rest (generated code, packages).
SHIPPER_SRCS := $(wildcard shipper/*.c shipper/*/*.c)
SHIPPER_HDRS := $(wildcard shipper/*.h shipper/*/*.h maps/*.h)
SHIPPER_OBJS := $(patsubst shipper/%.c,$(OUTPUT)/shipper/%.o,$(SHIPPER_SRCS))
# Everything but main(), for unit tests that link shipper code.
SHIPPER_LIB_OBJS := $(filter-out $(OUTPUT)/shipper/main.o,$(SHIPPER_OBJS))
KACCESS := $(OUTPUT)/kaccess

TEST_LIB_SRCS := $(wildcard selftests/lib/*.c)
TEST_LIB_OBJS := $(patsubst selftests/lib/%.c,$(OUTPUT)/selftests/lib/%.o,$(TEST_LIB_SRCS))
TEST_SRCS := $(wildcard selftests/test_*.c)
TEST_BINS := $(patsubst selftests/%.c,$(OUTPUT)/selftests/%,$(TEST_SRCS))
TEST_TOOL_SRCS := $(wildcard selftests/tools/*.c)
TEST_TOOLS := $(patsubst selftests/tools/%.c,$(OUTPUT)/selftests/tools/%,$(TEST_TOOL_SRCS))

CFLAGS ?= -g -O2
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wformat=2 \
	  -D_GNU_SOURCE -DKACCESS_VERSION='"$(KACCESS_VERSION)"' -DKACCESS_GIT_REV='"$(GIT_REV)"'
INCLUDES := -I$(OUTPUT) -Imaps -Ishipper
# pkg-config modules the agent links; feature fragments append theirs.
SHIPPER_PKGS := libbpf
LDLIBS = $(shell $(PKG_CONFIG) --libs $(SHIPPER_PKGS) 2>/dev/null || echo -lbpf) -lelf -lz -lm
SHIPPER_PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(SHIPPER_PKGS) 2>/dev/null)
# The tests' HTTP clients and the fake API server's controls are libcurl's;
# the agent does not link it.
TEST_LDLIBS := $(shell $(PKG_CONFIG) --libs json-c libcurl 2>/dev/null || echo -ljson-c -lcurl)
# The harness compares literals with unsigned counters, as the kernel's own tests do,
# and passes printf formats on (kselftest.h), which clang would refuse.
TEST_CFLAGS := $(shell $(PKG_CONFIG) --cflags json-c 2>/dev/null) -Wno-sign-compare -Wno-format-nonliteral

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror -Wno-unused-function \
	      -I$(dir $(VMLINUX_H)) -Imaps

# Debian packages: to build and run, and additionally to run the selftests
# and the benchmark. `make deps` installs what is missing (as root on
# Debian/Ubuntu) or prints it.
DEPS_BUILD := make gcc clang llvm pkg-config libbpf-dev bpftool libelf-dev zlib1g-dev
DEPS_TEST := linux-source-6.1 xz-utils libjson-c-dev libcurl4-openssl-dev iproute2 procps util-linux \
	     nginx-light curl wrk nftables python3-yaml prometheus libcap2-bin cpio

# Feature fragments. Each may append to SHIPPER_OBJS and SHIPPER_LIB_OBJS
# (generated code), SHIPPER_PKGS, INCLUDES, DEPS_BUILD, DEPS_TEST and
# TEST_TOOLS, and add its own rules.
-include shipper/oap/oap.mk
-include shipper/k8s/k8s.mk
-include shipper/http2/http2.mk

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DEFAULT_GOAL := all
.PHONY: all help deps deps-test run test selftests bench vmtest install clean mounts vmlinux FORCE

help: ## show this list
	@echo "kaccess $(KACCESS_VERSION): eBPF access-log and metrics agent"
	@echo
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -e 's/:.*## /\t/' | \
		awk -F'\t' '{ printf "  make %-12s %s\n", $$1, $$2 }'
	@echo
	@echo "  V=1 shows commands; OUTPUT=dir moves build output (default .output)"

all: $(KACCESS) ## build the agent (.output/kaccess)

define install_missing
	@missing=""; for p in $(1); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' \
			|| missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "  DEPS     installing:$$missing"; \
		apt-get update -q >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	else \
		echo "missing packages:$$missing"; \
		echo "install them as root, e.g.: sudo apt-get install$$missing"; \
		exit 1; \
	fi
endef

deps: ## install (as root) or list the packages needed to build and run
	$(call install_missing,$(DEPS_BUILD))

deps-test: deps ## install (as root) or list the packages the selftests and bench need
	$(call install_missing,$(DEPS_TEST))

mounts: ## mount bpffs and tracefs when absent (root)
	$(Q)mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
	$(Q)mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing

run: deps mounts all ## install, build and start the agent with config/kaccess.conf
	$(Q)exec $(KACCESS) --config config/kaccess.conf $(ARGS)

test: deps-test mounts all selftests ## install, build and run every selftest (root)
	$(Q)selftests/run.sh $(OUTPUT)

selftests: $(TEST_BINS) $(TEST_TOOLS) ## build the selftests without running them

bench: deps-test mounts all selftests bench-tools ## A/B benchmark: wrk -> nginx and h2load -> nghttpd over a veth pair, with and without the agent
	$(Q)selftests/bench/bench.sh $(OUTPUT)

vmtest: deps-test deps-vm all selftests vm-tools ## run the selftests on Debian's 6.1 and 6.12 kernels under QEMU
	$(Q)selftests/vm/vmtest.sh $(OUTPUT)

vmlinux: $(VMLINUX_H) ## generate vmlinux.h from the running kernel's BTF

clean: ## remove all build output
	$(call msg,CLEAN,$(OUTPUT))
	$(Q)rm -rf $(OUTPUT)

$(OUTPUT) $(OUTPUT)/bpf $(OUTPUT)/shipper $(OUTPUT)/selftests/lib $(OUTPUT)/selftests/tools $(dir $(VMLINUX_H)) $(KSFT_DIR):
	$(Q)mkdir -p $@

# vmlinux.h is generated, never edited or committed (see vmlinux/README.md).
$(VMLINUX_H): | $(dir $(VMLINUX_H))
	$(call msg,VMLINUX,$@)
	$(Q)test -r $(VMLINUX_BTF) || { echo "no kernel BTF at $(VMLINUX_BTF): kaccess needs CONFIG_DEBUG_INFO_BTF (set VMLINUX_BTF=file)"; exit 1; }
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@.tmp && mv $@.tmp $@

$(OUTPUT)/bpf/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS) $(VMLINUX_H) | $(OUTPUT)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# Loss locations claim a reason slot with compare-and-exchange (ISA v3, Linux 5.1+).
$(OUTPUT)/bpf/drops.bpf.o: BPF_CFLAGS += -mcpu=v3

# One object, one skeleton: the static linker merges the __weak maps.
$(OUTPUT)/kaccess.bpf.o: $(BPF_OBJS)
	$(call msg,LINK-BPF,$@)
	$(Q)$(BPFTOOL) gen object $@ $^

$(SKEL): $(OUTPUT)/kaccess.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name kaccess_bpf > $@.tmp && mv $@.tmp $@

$(OUTPUT)/shipper/%.o: shipper/%.c $(SHIPPER_HDRS) $(SKEL) | $(OUTPUT)/shipper
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(SHIPPER_PKG_CFLAGS) $(INCLUDES) -c $< -o $@

$(KACCESS): $(SHIPPER_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

# The kernel's own kselftest framework, taken from Debian's linux-source-6.1.
$(KSFT_HEADERS): | $(KSFT_DIR)
	$(call msg,KSFT,$@)
	$(Q)test -r $(LINUX_SOURCE_TARBALL) || { echo "$(LINUX_SOURCE_TARBALL) missing: run 'make deps-test'"; exit 1; }
	$(Q)tar -xJf $(LINUX_SOURCE_TARBALL) -O linux-source-6.1/tools/testing/selftests/$(notdir $@) > $@.tmp && mv $@.tmp $@

$(OUTPUT)/selftests/lib/%.o: selftests/lib/%.c $(wildcard selftests/lib/*.h) $(KSFT_HEADERS) | $(OUTPUT)/selftests/lib
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(TEST_CFLAGS) $(INCLUDES) -I$(KSFT_DIR) -Iselftests/lib -c $< -o $@

$(OUTPUT)/selftests/test_%: selftests/test_%.c $(TEST_LIB_OBJS) $(SHIPPER_LIB_OBJS) $(KSFT_HEADERS)
	$(call msg,TEST,$@)
	$(Q)$(CC) $(CFLAGS) $(TEST_CFLAGS) $(INCLUDES) -I$(KSFT_DIR) -Iselftests/lib $< \
		$(TEST_LIB_OBJS) $(SHIPPER_LIB_OBJS) $(LDLIBS) $(TEST_LDLIBS) -o $@

$(OUTPUT)/selftests/tools/%: selftests/tools/%.c | $(OUTPUT)/selftests/tools
	$(call msg,TOOL,$@)
	$(Q)$(CC) $(CFLAGS) $< -o $@

# The benchmark's own build rules (calibration program and its loader).
-include selftests/bench/bench.mk
# The VM runner's rules: guest root, kernels, initramfs (deps-vm, vm-tools).
-include selftests/vm/vm.mk
# Installation and the deployment files' checks (install, uninstall).
-include deploy/deploy.mk

.DELETE_ON_ERROR:
.SECONDARY:
