#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# gen-certs.sh DIR: the test PKI for the HTTP tests, made fresh in DIR.
#   ca            the CA servers and clients trust
#   server        localhost, SAN IP:127.0.0.1 and DNS:localhost, serverAuth
#   wrong-host    a server cert for other.example only
#   client        CN=agent-1, clientAuth, from ca
#   other-client  CN=agent-1 too, from other-ca (a CA the server does not trust)
#   server-only   CN=agent-2 from ca, but only serverAuth: not a client cert
set -eu
cd "$1"

key() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
}

ca() { # name cn
	key "$1"
	openssl req -x509 -new -sha256 -key "$1.key" -out "$1.pem" -days 30 -subj "/CN=$2" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

leaf() { # name ca cn extensions
	key "$1"
	openssl req -new -sha256 -key "$1.key" -subj "/CN=$3" -out "$1.csr" 2>/dev/null
	printf '%s\n' "$4" >"$1.ext"
	openssl x509 -req -sha256 -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial \
		-days 30 -out "$1.pem" -extfile "$1.ext" 2>/dev/null
}

ca ca "kumquat test CA"
ca other-ca "other test CA"
leaf server ca localhost "basicConstraints=CA:FALSE
subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
leaf wrong-host ca other.example "basicConstraints=CA:FALSE
subjectAltName=DNS:other.example
extendedKeyUsage=serverAuth"
leaf client ca agent-1 "basicConstraints=CA:FALSE
extendedKeyUsage=clientAuth"
leaf other-client other-ca agent-1 "basicConstraints=CA:FALSE
extendedKeyUsage=clientAuth"
leaf server-only ca agent-2 "basicConstraints=CA:FALSE
extendedKeyUsage=serverAuth"
