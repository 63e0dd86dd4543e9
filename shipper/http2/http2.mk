# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# HTTP/2 (shipper/http2): header blocks are decoded with libnghttp2's HPACK
# inflater. The selftests drive real HTTP/2 peers: nghttpd (nghttp2-server),
# nghttp and h2load (nghttp2-client), and curl --http2-prior-knowledge.

SHIPPER_PKGS += libnghttp2
DEPS_BUILD += libnghttp2-dev
DEPS_TEST += nghttp2-server nghttp2-client curl
