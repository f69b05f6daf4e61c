# SPDX-License-Identifier: Apache-2.0
# Shared by the integration tests: temp dirs, a swtpm on 127.0.0.1, assertions.
# Tests exit 77 (meson: skipped) with the reason when a peer is missing.

set -euo pipefail

: "${KUMQUAT:?run through meson test}"
KQ_TMP=$(mktemp -d /tmp/kq-it.XXXXXX)
KQ_PIDS=()
kq_cleanup() {
	local p
	for p in "${KQ_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$KQ_TMP"
}
trap kq_cleanup EXIT

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
need() { local c; for c in "$@"; do command -v "$c" >/dev/null || skip "$c is not installed"; done; }

# expect RC CMD...: runs CMD and fails the test unless it exits with RC.
expect() {
	local want=$1 rc=0; shift
	"$@" >"$KQ_TMP/last.out" 2>"$KQ_TMP/last.err" || rc=$?
	if [ "$rc" != "$want" ]; then
		echo "command: $*" >&2
		cat "$KQ_TMP/last.out" "$KQ_TMP/last.err" >&2
		fail "exit $rc, expected $want"
	fi
}

# Starts swtpm (TPM 2.0) on a free loopback port; sets TPM2TOOLS_TCTI, KQ_TCTI
# and SWTPM_PID. $1: an existing state dir (e.g. from provision_swtpm), optional.
start_swtpm() {
	local dir=${1:-$KQ_TMP/swtpm-$RANDOM} port i
	mkdir -p "$dir"
	for i in 1 2 3 4 5 6 7 8 9 10; do
		port=$((20000 + RANDOM % 20000 * 2))
		swtpm socket --tpm2 --tpmstate dir="$dir" \
			--server type=tcp,port=$port,bindaddr=127.0.0.1 \
			--ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 \
			--flags not-need-init,startup-clear >"$dir/log" 2>&1 &
		local pid=$!
		sleep 0.3
		if kill -0 "$pid" 2>/dev/null; then
			KQ_PIDS+=("$pid")
			SWTPM_PID=$pid
			export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port"
			export KQ_TCTI=$TPM2TOOLS_TCTI
			tpm2_getcap properties-fixed >/dev/null 2>&1 && return 0
		fi
		kill "$pid" 2>/dev/null || true
	done
	fail "could not start swtpm: $(cat "$dir/log")"
}

# Without a resource manager, transient objects and sessions stay loaded in the
# TPM after each tool exits; flush them so the next tool has room.
tflush() { tpm2_flushcontext -t >/dev/null 2>&1 || true; tpm2_flushcontext -s >/dev/null 2>&1 || true; }
t() { tflush; "$@"; local rc=$?; tflush; return $rc; }

randhex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# flip FILE: copy of FILE with one byte (random offset >= $2, default 0) inverted
flip() {
	local src=$1 min=${2:-0} size off
	size=$(stat -c %s "$src")
	off=$((min + RANDOM % (size - min)))
	cp "$src" "$src.flip"
	printf "$(printf '\\%03o' $(( $(od -An -tu1 -j "$off" -N1 "$src") ^ 0xff )))" |
		dd of="$src.flip" bs=1 seek="$off" conv=notrunc status=none
	echo "$src.flip"
}

# provision_swtpm DIR: a TPM state like a real machine's, made by swtpm_setup
# with an EK certificate signed by a local CA kept in DIR/localca (its
# issuercert.pem and swtpm-localca-rootca-cert.pem play the TPM vendor's CAs).
provision_swtpm() {
	local dir=$1
	mkdir -p "$dir/state" "$dir/localca"
	cat >"$dir/localca.conf" <<EOC
statedir = $dir/localca
signingkey = $dir/localca/signkey.pem
issuercert = $dir/localca/issuercert.pem
certserial = $dir/localca/certserial
EOC
	cat >"$dir/setup.conf" <<EOC
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $dir/localca.conf
create_certs_tool_options = /etc/swtpm-localca.options
EOC
	swtpm_setup --tpm2 --tpmstate "$dir/state" --create-ek-cert --lock-nvram \
		--config "$dir/setup.conf" --overwrite >"$dir/setup.log" 2>&1 ||
		fail "swtpm_setup: $(cat "$dir/setup.log")"
}

# wait_listening LOG: waits for a daemon's "listening on https://ADDR:PORT" line; prints PORT.
wait_listening() {
	local log=$1 i
	for i in $(seq 100); do
		if grep -q 'listening on https://' "$log" 2>/dev/null; then
			sed -n 's/.*listening on https:\/\/[^:]*:\([0-9]*\).*/\1/p' "$log" | head -1
			return 0
		fi
		sleep 0.1
	done
	cat "$log" >&2
	fail "daemon did not start"
}

# start_registrar [EK_CA_DIR]: the registrar on a free port of 127.0.0.1,
# TLS from $KQ_TMP/tls (registrar.pem, ca.pem), its database in $KQ_TMP, the
# EK CAs of EK_CA_DIR (default $KQ_TMP/ek-ca), its log in registrar.log; sets
# REG_PID, REG_PORT and REG_URL.
start_registrar() {
	cat >"$KQ_TMP/registrar.conf" <<EOC
[server]
port = 0
cert = $KQ_TMP/tls/registrar.pem
key = $KQ_TMP/tls/registrar-key.pem
client_ca = $KQ_TMP/tls/ca.pem
[registrar]
database = $KQ_TMP/registrar.db
ek_ca_dir = ${1:-$KQ_TMP/ek-ca}
EOC
	"$KQ_BUILD/registrar/kumquat-registrar" --config "$KQ_TMP/registrar.conf" >"$KQ_TMP/registrar.log" 2>&1 &
	REG_PID=$!
	KQ_PIDS+=($REG_PID)
	REG_PORT=$(wait_listening "$KQ_TMP/registrar.log")
	REG_URL=https://127.0.0.1:$REG_PORT
}

# verifier_conf: the verifier's [server], [client], [registrar] and
# [verifier] sections (TLS from $KQ_TMP/tls: verifier.pem, verifier-client.pem,
# ca.pem; $REG_URL; its database in $KQ_TMP); callers append the rest.
verifier_conf() {
	cat <<EOC
[server]
port = 0
cert = $KQ_TMP/tls/verifier.pem
key = $KQ_TMP/tls/verifier-key.pem
client_ca = $KQ_TMP/tls/ca.pem
[client]
ca = $KQ_TMP/tls/ca.pem
cert = $KQ_TMP/tls/verifier-client.pem
key = $KQ_TMP/tls/verifier-client-key.pem
[registrar]
url = $REG_URL
[verifier]
database = $KQ_TMP/verifier.db
EOC
}

# ima_policy LIST...: a Keylime runtime policy allowing every file of the
# given ascii IMA lists, on stdout
ima_policy() {
	cat "$@" | awk '{ split($4, d, ":"); print $5 "\t" d[2] }' |
		jq -R -s '{meta: {version: 1, generator: 0}, release: 0,
			digests: (split("\n") | map(select(length > 0) | split("\t")) |
				reduce .[] as $e ({}; .[$e[0]] += [$e[1]])),
			excludes: [], keyrings: {}, ima: {ignored_keyrings: [], log_hash_alg: "sha1", dm_policy: null},
			"ima-buf": {}, "verification-keys": ""}'
}
