# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Kubernetes identity (shipper/k8s): the API client speaks HTTP/1.1 itself,
# over OpenSSL (shared with the OAP sender: tls_client.c), and parses with json-c; kubeconfig
# files are read with libyaml. Conntrack is plain netlink (linux-libc-dev
# headers), no library.
# The selftest's fake API server is Debian's python3 (stdlib only); openssl
# makes its TLS certificates.

SHIPPER_PKGS += libssl libcrypto json-c yaml-0.1
DEPS_BUILD += libssl-dev libjson-c-dev libyaml-dev linux-libc-dev
DEPS_TEST += python3 nftables iproute2 openssl

# Selftests that drive the fake API server rebuild when its C helper changes.
$(OUTPUT)/selftests/test_k8s: selftests/k8s/fake_api.h selftests/k8s/scale.h
