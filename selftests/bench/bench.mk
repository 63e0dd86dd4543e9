# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The benchmark's build rules, included by the top-level Makefile: the
# calibration program (calibrate.bpf.c) and its loader, into $(OUTPUT)/bench/.
# `make bench` builds them through bench-tools and runs bench.sh.

BENCH_DIR := selftests/bench
BENCH_OUTPUT := $(OUTPUT)/bench
BENCH_CALIBRATE := $(BENCH_OUTPUT)/calibrate

.PHONY: bench-tools

bench-tools: $(BENCH_CALIBRATE) ## build the benchmark's calibration program

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
