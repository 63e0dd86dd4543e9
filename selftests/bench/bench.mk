# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The benchmark's build rules, included by the top-level Makefile: the
# calibration program (calibrate.bpf.c) and its loader, and the TCP load
# generator of the churn and scale sections (loadgen.c), the oap section's
# fixed-rate HTTP client (pace.c) and OAP transport floor (grpc_floor.c,
# linked with the shipper's code), and the k8s section's
# resolver measurement (k8s_scale.c, linked with the shipper's code), into
# $(OUTPUT)/bench/.
# `make bench` builds them through bench-tools and runs bench.sh.

BENCH_DIR := selftests/bench
BENCH_OUTPUT := $(OUTPUT)/bench
BENCH_CALIBRATE := $(BENCH_OUTPUT)/calibrate
BENCH_LOADGEN := $(BENCH_OUTPUT)/loadgen
BENCH_K8S_SCALE := $(BENCH_OUTPUT)/k8s_scale
BENCH_PACE := $(BENCH_OUTPUT)/pace
BENCH_GRPC_FLOOR := $(BENCH_OUTPUT)/grpc_floor

.PHONY: bench-tools

bench-tools: $(BENCH_CALIBRATE) $(BENCH_LOADGEN) $(BENCH_PACE) $(BENCH_K8S_SCALE) $(BENCH_GRPC_FLOOR) ## build the benchmark's calibration program, load generators, k8s_scale and grpc_floor

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

$(BENCH_LOADGEN): $(BENCH_DIR)/loadgen.c $(BENCH_DIR)/bench_cli.h | $(BENCH_OUTPUT)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< -o $@

$(BENCH_PACE): $(BENCH_DIR)/pace.c $(BENCH_DIR)/bench_cli.h | $(BENCH_OUTPUT)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< -o $@

$(BENCH_K8S_SCALE): $(BENCH_DIR)/k8s_scale.c $(BENCH_DIR)/bench_cli.h selftests/k8s/fake_api.h selftests/k8s/scale.h $(SHIPPER_LIB_OBJS) | $(BENCH_OUTPUT)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(INCLUDES) -Iselftests -I$(BENCH_DIR) $< $(SHIPPER_LIB_OBJS) $(LDLIBS) $(TEST_LDLIBS) -o $@

$(BENCH_GRPC_FLOOR): $(BENCH_DIR)/grpc_floor.c $(BENCH_DIR)/bench_cli.h $(SHIPPER_LIB_OBJS) | $(BENCH_OUTPUT)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(INCLUDES) -I$(BENCH_DIR) $< $(SHIPPER_LIB_OBJS) $(LDLIBS) -o $@
