# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The OAP transport, included by the top-level Makefile after its variables:
# protobuf-c code generated from proto/ into $(OUTPUT)/proto/ (never
# committed), the gRPC C core for the sender, and the test-only fake OAP.
#
#   $(OUTPUT)/proto/**/*.pb-c.[cho]       from proto/**/*.proto by protoc-c
#   $(OUTPUT)/selftests/oap/fake_oap      the fake OAP (gRPC C core server)
#   $(OUTPUT)/selftests/test_oap_wire     proto/ checked against skywalking-wire.tsv
#   $(OUTPUT)/selftests/test_oap_rules    config/oap/ (OAP rules, dashboards) checked

PROTOC_C ?= protoc-c
OAP_PROTO_DIR := proto
# SkyWalking's own file names, imports relative to proto/.
OAP_PROTOS := common/Common.proto common/Command.proto language-agent/Meter.proto \
	      ebpf/accesslog.proto
OAP_PB_DIR := $(OUTPUT)/proto
OAP_PB_SRCS := $(patsubst %.proto,$(OAP_PB_DIR)/%.pb-c.c,$(OAP_PROTOS))
OAP_PB_HDRS := $(OAP_PB_SRCS:.c=.h)
OAP_PB_OBJS := $(OAP_PB_SRCS:.c=.o)
OAP_SHIPPER_OBJS := $(patsubst shipper/%.c,$(OUTPUT)/shipper/%.o,$(wildcard shipper/oap/*.c))
FAKE_OAP := $(OUTPUT)/selftests/oap/fake_oap

SHIPPER_OBJS += $(OAP_PB_OBJS)
SHIPPER_LIB_OBJS += $(OAP_PB_OBJS)
SHIPPER_PKGS += grpc libprotobuf-c
INCLUDES += -I$(OAP_PB_DIR)
DEPS_BUILD += libgrpc-dev protobuf-c-compiler libprotobuf-c-dev
# The Python decoder and the wire check (grpc_tools.protoc), the test CA.
DEPS_TEST += python3-grpcio python3-grpc-tools python3-protobuf openssl python3-yaml
TEST_TOOLS += $(FAKE_OAP)

# One protoc-c run writes every file (a grouped target: GNU make >= 4.3).
$(OAP_PB_SRCS) $(OAP_PB_HDRS) &: $(addprefix $(OAP_PROTO_DIR)/,$(OAP_PROTOS))
	$(call msg,PROTOC-C,$(OAP_PB_DIR))
	$(Q)mkdir -p $(OAP_PB_DIR)
	$(Q)$(PROTOC_C) --c_out=$(OAP_PB_DIR) -I$(OAP_PROTO_DIR) $(OAP_PROTOS)

$(OAP_PB_DIR)/%.pb-c.o: $(OAP_PB_DIR)/%.pb-c.c $(OAP_PB_HDRS)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(SHIPPER_PKG_CFLAGS) -I$(OAP_PB_DIR) -c $< -o $@

# Any shipper source may include oap.h, which includes the generated headers.
$(OAP_SHIPPER_OBJS): $(OAP_PB_HDRS)
$(filter-out $(OAP_SHIPPER_OBJS),$(patsubst shipper/%.c,$(OUTPUT)/shipper/%.o,$(SHIPPER_SRCS))): | $(OAP_PB_HDRS)

$(FAKE_OAP): selftests/oap/fake_oap.c $(OAP_PB_OBJS) $(OUTPUT)/shipper/oap/oap_json.o $(OUTPUT)/shipper/oap/pb_pack.o
	$(call msg,TOOL,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(SHIPPER_PKG_CFLAGS) $(INCLUDES) $< $(OAP_PB_OBJS) \
		$(OUTPUT)/shipper/oap/oap_json.o $(OUTPUT)/shipper/oap/pb_pack.o $(LDLIBS) -o $@

# Scripts, "built" like test_manifests: copied where run.sh runs tests (never
# into the QEMU guests, which have no python3).
selftests: $(OUTPUT)/selftests/test_oap_wire $(OUTPUT)/selftests/test_oap_rules

$(OUTPUT)/selftests/test_oap_wire $(OUTPUT)/selftests/test_oap_rules: $(OUTPUT)/selftests/test_%: selftests/test_%.py
	$(call msg,TEST,$@)
	$(Q)install -D -m 0755 $< $@

# gRPC's core is C++: a static link needs the C++ runtime (the shared
# libgrpc pulls it in by itself). Applies to the VM runner's static builds.
OAP_STATIC_LDLIBS := -lstdc++ -lm
$(OUTPUT)/vm/static/kaccess: VM_STATIC_LDLIBS += $(OAP_STATIC_LDLIBS)
$(OUTPUT)/vm/static/selftests/test_%: VM_STATIC_LDLIBS += $(OAP_STATIC_LDLIBS)
