# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The benchmark's build rules, included by the top-level Makefile: the
# calibration program (calibrate.bpf.c) and its loader, and the TCP load
# generator of the churn and scale sections (loadgen.c), into $(OUTPUT)/bench/.
# `make bench` builds them through bench-tools and runs bench.sh.

BENCH_DIR := selftests/bench
BENCH_OUTPUT := $(OUTPUT)/bench
BENCH_CALIBRATE := $(BENCH_OUTPUT)/calibrate
BENCH_LOADGEN := $(BENCH_OUTPUT)/loadgen

.PHONY: bench-tools

bench-tools: $(BENCH_CALIBRATE) $(BENCH_LOADGEN) ## build the benchmark's calibration program and load generator

$(BENCH_OUTPUT):
	$(Q)mkdir -p $@

$(BENCH_OUTPUT)/calibrate.bpf.o: $(BENCH_DIR)/calibrate.bpf.c $(BENCH_DIR)/calibrate.h $(VMLINUX_H) | $(BENCH_OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BENCH_OUTPUT)/calibrate.skel.h: $(BENCH_OUTPUT)/calibrate.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name calibrate_bpf > $@.tmp && mv $@.tmp $@

$(BENCH_CALIBRATE): $(BENCH_DIR)/calibrate.c $(BENCH_DIR)/calibrate.h $(BENCH_OUTPUT)/calibrate.skel.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -I$(BENCH_OUTPUT) -I$(BENCH_DIR) $< $(LDLIBS) -o $@

$(BENCH_LOADGEN): $(BENCH_DIR)/loadgen.c | $(BENCH_OUTPUT)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< -o $@
