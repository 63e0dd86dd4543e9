#!/bin/sh
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Test PKI for the OAP TLS selftests, into DIR (created if needed):
#   ca.pem ca.key              the test CA
#   server.pem server.key      signed by it, for 127.0.0.1, ::1 and localhost
#   client.pem client.key      signed by it, for mutual TLS
#   wrong-ca.pem               an unrelated CA (must make verification fail)
# Keys are unencrypted EC P-256; certificates are valid for one day.
#
# usage: selftests/oap/mkcerts.sh DIR
set -eu

dir=${1:?usage: mkcerts.sh DIR}
mkdir -p "$dir"
cd "$dir"

ca() { # name subject
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
		-subj "/CN=$2" -keyout "$1.key" -out "$1.pem" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		2>/dev/null
}

leaf() { # name subject extensions
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
		-keyout "$1.key" -out "$1.csr" 2>/dev/null
	printf '%s\n' "$3" > "$1.ext"
	openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
		-extfile "$1.ext" -out "$1.pem" 2>/dev/null
	rm -f "$1.csr" "$1.ext"
}

ca ca "kaccess test CA"
ca wrong-ca "kaccess unrelated CA"
leaf server "fake-oap" "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost
extendedKeyUsage=serverAuth"
leaf client "kaccess-agent" "extendedKeyUsage=clientAuth"
rm -f wrong-ca.key ca.srl
