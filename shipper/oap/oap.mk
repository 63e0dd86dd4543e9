# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The OAP transport, included by the top-level Makefile after its variables:
# protobuf-c code generated from proto/ into $(OUTPUT)/proto/ (never
# committed), and the test-only fake OAP. The sender speaks gRPC itself
# (grpc_conn.c, on libnghttp2 and OpenSSL, which http2.mk and k8s.mk bring);
# the fake OAP is a real gRPC server, the gRPC C core's, so every test of
# the sender talks to another implementation than its own.
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
SHIPPER_PKGS += libprotobuf-c
INCLUDES += -I$(OAP_PB_DIR)
DEPS_BUILD += protobuf-c-compiler libprotobuf-c-dev
# The fake OAP (the gRPC C core), the Python decoder and the wire check
# (grpc_tools.protoc), the test CA.
DEPS_TEST += libgrpc-dev python3-grpcio python3-grpc-tools python3-protobuf openssl python3-yaml
OAP_GRPC_CFLAGS = $(shell $(PKG_CONFIG) --cflags grpc 2>/dev/null)
OAP_GRPC_LIBS = $(shell $(PKG_CONFIG) --libs grpc 2>/dev/null || echo -lgrpc -lgpr)
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
	$(Q)$(CC) $(CFLAGS) $(SHIPPER_PKG_CFLAGS) $(OAP_GRPC_CFLAGS) $(INCLUDES) $< $(OAP_PB_OBJS) \
		$(OUTPUT)/shipper/oap/oap_json.o $(OUTPUT)/shipper/oap/pb_pack.o $(OAP_GRPC_LIBS) $(LDLIBS) -o $@

# Scripts, "built" like test_manifests: copied where run.sh runs tests (never
# into the QEMU guests, which have no python3).
selftests: $(OUTPUT)/selftests/test_oap_wire $(OUTPUT)/selftests/test_oap_rules

$(OUTPUT)/selftests/test_oap_wire $(OUTPUT)/selftests/test_oap_rules: $(OUTPUT)/selftests/test_%: selftests/test_%.py
	$(call msg,TEST,$@)
	$(Q)install -D -m 0755 $< $@
