#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The host agent's deep quote over mTLS on 127.0.0.1 (docs/deep-quote.md):
# swtpm as the host's TPM, four VMs reported by the vTPM manager's hook
# (three running, one stopped). The quote verifies with kumquat quote check
# over SHA-256("kumquat-deepquote-v1" || nonce || root); every proof
# recomputes the root (lib/merkle, tests/integration/merkle-check.c); the
# stopped VM, an unknown VM and malformed leaves are refused in their place;
# malformed requests get 400. Concurrent requests within [deep-quote]
# window_ms share one quote (same message, a nonce leaf each, one log line);
# with window_ms = 0 they do not. With the vTPM socket off every leaf is
# refused, saying why.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hypervisor-lib.sh"
need swtpm swtpm_setup curl openssl jq xxd
: "${KQ_BUILD:?}" "${KQ_TESTDATA:?}" "${KQ_MERKLE_CHECK:?}"
AGENT=$KQ_BUILD/host-agent/kumquat-host-agent
VMGR=$KQ_BUILD/vtpm-mgr/kumquat-vtpm-mgr
[ -x "$VMGR" ] || skip "kumquat-vtpm-mgr was not built"
cd "$KQ_TMP"
step() { echo "== $*"; }

provision_swtpm "$KQ_TMP/host"
start_swtpm "$KQ_TMP/host/state"
mkdir -p ek-ca tls logs
cp host/localca/issuercert.pem host/localca/swtpm-localca-rootca-cert.pem ek-ca/
expect 0 "$KUMQUAT" ca init --dir tls
expect 0 "$KUMQUAT" ca issue --dir tls --name registrar --server
expect 0 "$KUMQUAT" ca issue --dir tls --name host-agent --server
expect 0 "$KUMQUAT" ca issue --dir tls --name verifier --client
cp "$KQ_TESTDATA/eventlog/hpe-perf-uefi.bin" logs/uefi.bin
cp "$KQ_TESTDATA/ima/ibm-acs-ima-sig.bin" logs/ima.bin
echo 3f1f6c1e-8a4b-4c55-9d2e-7b6a5f4e3d2c >logs/boot_id

start_registrar

start_agent() { # WINDOW_MS SOCKET: the host agent, serving on $URL
	cat >agent.conf <<EOC
[agent]
state_dir = $KQ_TMP/agent-state
[tpm]
tcti = $KQ_TCTI
[registrar]
url = $REG_URL
ca = $KQ_TMP/tls/ca.pem
[server]
port = 0
cert = $KQ_TMP/tls/host-agent.pem
key = $KQ_TMP/tls/host-agent-key.pem
client_ca = $KQ_TMP/tls/ca.pem
[logs]
uefi = $KQ_TMP/logs/uefi.bin
ima = $KQ_TMP/logs/ima.bin
boot_id = $KQ_TMP/logs/boot_id
[deep-quote]
window_ms = $1
[vtpm]
socket = $2
EOC
	: >agent.log
	tflush
	"$AGENT" --config agent.conf >agent.log 2>&1 &
	AGENT_PID=$!
	KQ_PIDS+=($AGENT_PID)
	URL=https://127.0.0.1:$(wait_listening agent.log)
}
stop_agent() {
	kill "$AGENT_PID"
	wait "$AGENT_PID" || fail "the host agent did not stop cleanly on SIGTERM: $(tail -3 agent.log)"
}
start_agent 1000 "$KQ_TMP/host.sock"
HOST_ID=$(cat agent-state/id)
"$KUMQUAT" registrar show "$HOST_ID" --json --url "$REG_URL" --ca tls/ca.pem \
	--cert tls/verifier.pem --key tls/verifier-key.pem >agent.json || fail "registrar show"
jq -r .ak_pub agent.json | base64 -d >ak.pub

# ---- the VMs, as libvirt's hook reports them ----
vtpm_mgr_setup
VMS=(7c9d9a4e-1111-4000-8000-000000000001 7c9d9a4e-2222-4000-8000-000000000002
     7c9d9a4e-3333-4000-8000-000000000003 7c9d9a4e-4444-4000-8000-000000000004)
for i in 0 1 2 3; do
	domain_xml "vm$i" "${VMS[$i]}" | "$VMGR" --config vmgr.conf hook "vm$i" started begin - || fail "hook"
done
domain_xml vm3 "${VMS[3]}" | "$VMGR" --config vmgr.conf hook vm3 stopped end - || fail "hook"
grep -q "VM ${VMS[3]} (vm3) is stopped" agent.log || fail "the host agent did not learn vm3 stopped: $(tail -3 agent.log)"
grep -q "VM ${VMS[2]} (vm2) is running" agent.log || fail "vm2 not running: $(tail -3 agent.log)"
UNKNOWN=7c9d9a4e-5555-4000-8000-000000000005

# one leaf per VM (the guest's vTPM EK name and the hash of its quote, made up)
leaves=()
for u in "${VMS[@]}" $UNKNOWN; do
	leaves+=("{\"vm_uuid\":\"$u\",\"ek_name\":\"000b$(randhex 32)\",\"attest_sha256\":\"$(randhex 32)\"}")
done
LEAVES="[$(IFS=,; echo "${leaves[*]}")]"

dq() { # BODY [OUT]: POST /v1/deep-quote -> status; answer in OUT (default dq.json)
	curl -sS --cacert tls/ca.pem --cert tls/verifier.pem --key tls/verifier-key.pem -o "${2:-dq.json}" \
		-w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$1" "$URL/v1/deep-quote"
}
# qd NONCE-HEX ROOT-HEX: SHA-256("kumquat-deepquote-v1" || nonce || root) as hex
qd() { { printf 'kumquat-deepquote-v1'; printf '%s' "$1" | xxd -r -p; printf '%s' "$2" | xxd -r -p; } |
	openssl dgst -sha256 -binary | xxd -p -c 64; }
check_quote() { # ANSWER QUALIFYING-HEX: the host AK signed it over that qualifying data
	jq -r .quote.message "$1" | base64 -d >msg
	jq -r .quote.signature "$1" | base64 -d >sig
	jq -r .quote.pcrs "$1" | base64 -d >pcrs
	expect 0 "$KUMQUAT" quote check --ak ak.pub --message msg --signature sig --pcrs pcrs --nonce "$2"
}
check_leaf() { # ANSWER LEAF-JSON ANSWER-INDEX: its proof recomputes the root
	local a=$1 l=$2 k=$3
	"$KQ_MERKLE_CHECK" leaf "$(jq -r .vm_uuid <<<"$l")" "$(jq -r .ek_name <<<"$l")" "$(jq -r .attest_sha256 <<<"$l")" \
		"$(jq -r ".leaves[$k].index" "$a")" "$(jq -r .tree_size "$a")" "$(jq -r .root "$a")" \
		$(jq -r ".leaves[$k].proof[]" "$a") || fail "leaf $k does not prove to the root: $(jq -c ".leaves[$k]" "$a")"
}
check_nonce_leaf() { # ANSWER NONCE-HEX
	"$KQ_MERKLE_CHECK" nonce "$2" "$(jq -r .nonce_leaf.index "$1")" "$(jq -r .tree_size "$1")" "$(jq -r .root "$1")" \
		$(jq -r '.nonce_leaf.proof[]' "$1") || fail "the nonce leaf does not prove to the root: $(jq -c .nonce_leaf "$1")"
}

step "one deep quote"
NONCE=$(randhex 20)
[ "$(dq "{\"nonce\":\"$NONCE\",\"pcrs\":{\"sha256\":[0,1,2,3,4,5,6,7,10]},\"leaves\":$LEAVES}")" = 200 ] ||
	fail "deep quote: $(cat dq.json)"
[ "$(jq -r .tree_size dq.json)" = 3 ] || fail "tree size: $(jq -c .tree_size dq.json)"
jq -e 'has("nonce_leaf") | not' dq.json >/dev/null || fail "a request alone has no nonce leaf"
ROOT=$(jq -r .root dq.json)
check_quote dq.json "$(qd "$NONCE" "$ROOT")"
expect 1 "$KUMQUAT" quote check --ak ak.pub --message msg --signature sig --pcrs pcrs --nonce "$(qd "$(randhex 20)" "$ROOT")"
expect 1 "$KUMQUAT" quote check --ak ak.pub --message msg --signature sig --pcrs pcrs --nonce "$NONCE"
for k in 0 1 2; do check_leaf dq.json "${leaves[$k]}" $k; done
[ "$(jq -r '.leaves[3].error.code' dq.json)" = vm_not_running ] || fail "the stopped VM: $(jq -c '.leaves[3]' dq.json)"
jq -r '.leaves[3].error.message' dq.json | grep -q stopped || fail "no reason: $(jq -c '.leaves[3]' dq.json)"
[ "$(jq -r '.leaves[4].error.code' dq.json)" = vm_not_running ] || fail "an unknown VM: $(jq -c '.leaves[4]' dq.json)"
# a leaf's proof does not prove another leaf
if "$KQ_MERKLE_CHECK" leaf "${VMS[1]}" "$(jq -r .ek_name <<<"${leaves[0]}")" "$(jq -r .attest_sha256 <<<"${leaves[0]}")" \
	0 3 "$ROOT" $(jq -r '.leaves[0].proof[]' dq.json); then fail "a leaf with another VM UUID proves"; fi
# the evidence is the same as /v1/quote's
cmp -s <(jq -r .uefi_log dq.json | base64 -d) logs/uefi.bin || fail "UEFI log differs"
[ "$(jq -r .boot_id dq.json)" = "$(cat logs/boot_id)" ] || fail "boot id"
[ "$(jq -r .ima.entries dq.json)" = 1083 ] || fail "IMA entries: $(jq -c .ima.entries dq.json)"
grep -q "1 TPM quote for 1 request, 3 leaves (tree of 3)" agent.log || fail "no log line: $(tail -3 agent.log)"

step "leaves refused in their place"
BAD="[${leaves[0]},{\"vm_uuid\":\"not-a-uuid\",\"ek_name\":\"000b00\",\"attest_sha256\":\"$(randhex 32)\"},
{\"vm_uuid\":\"${VMS[1]}\",\"ek_name\":\"0b\",\"attest_sha256\":\"$(randhex 32)\"},
{\"vm_uuid\":\"${VMS[1]}\",\"ek_name\":\"000b$(randhex 65)\",\"attest_sha256\":\"$(randhex 32)\"},
{\"vm_uuid\":\"${VMS[1]}\",\"ek_name\":\"000b00\",\"attest_sha256\":\"$(randhex 31)\"},
{\"vm_uuid\":\"${VMS[1]}\",\"ek_name\":\"000b00\"},\"leaf\",${leaves[2]}]"
[ "$(dq "{\"nonce\":\"$NONCE\",\"pcrs\":{\"sha256\":[10]},\"ima_offset\":1000,\"leaves\":$BAD}")" = 200 ] ||
	fail "with bad leaves: $(cat dq.json)"
[ "$(jq -r '[.leaves[1:7][].error.code] | unique | join(",")' dq.json)" = bad_leaf ] ||
	fail "bad leaves: $(jq -c .leaves dq.json)"
[ "$(jq -r .tree_size dq.json)" = 2 ] || fail "tree size with bad leaves: $(jq -c .tree_size dq.json)"
check_leaf dq.json "${leaves[0]}" 0
check_leaf dq.json "${leaves[2]}" 7
check_quote dq.json "$(qd "$NONCE" "$(jq -r .root dq.json)")"
[ "$(jq -r .ima.entries dq.json)" = 83 ] || fail "IMA from 1000: $(jq -c .ima.entries dq.json)"

step "malformed requests"
code=$(curl -sS --cacert tls/ca.pem -o dq.json -w '%{http_code}' -H 'Content-Type: application/json' \
	--data-binary "{\"nonce\":\"00\",\"pcrs\":{\"sha256\":[0]},\"leaves\":[]}" "$URL/v1/deep-quote")
[ "$code" = 401 ] || fail "a deep quote without a client certificate got $code"
printf '{"nonce":"00","pcrs":{"sha256":[0]},"leaves":[0' >many.json
for i in $(seq 65536); do printf ',0'; done >>many.json
printf ']}' >>many.json
for body in '{' '{"nonce":"00","pcrs":{"sha256":[0]}}' '{"nonce":"00","pcrs":{"sha256":[0]},"leaves":{}}' \
	'{"nonce":"00","pcrs":{"sha256":[0]},"leaves":"x"}' '{"nonce":"","pcrs":{"sha256":[0]},"leaves":[]}' \
	'{"nonce":"00","pcrs":{"sha256":[24]},"leaves":[]}' '{"nonce":"00","pcrs":{"sha256":[0]},"leaves":[],"x":1}' \
	"{\"nonce\":\"$(randhex 65)\",\"pcrs\":{\"sha256\":[0]},\"leaves\":[]}" "@many.json"; do
	[ "$(dq "$body")" = 400 ] || fail "bad request not refused: ${body:0:80} -> $(head -c 300 dq.json)"
	jq -e .error.message dq.json >/dev/null || fail "no reason for ${body:0:80}"
done
grep -q "65536" dq.json || fail "too many leaves: $(cat dq.json)"
[ "$(dq "{\"nonce\":\"00\",\"pcrs\":{\"sha256\":[0]},\"leaves\":[],\"agent_id\":\"$(cat /proc/sys/kernel/random/uuid)\"}")" = 409 ] ||
	fail "another agent's id: $(cat dq.json)"
[ "$(dq "{\"nonce\":\"00\",\"pcrs\":{\"sha1\":[0]},\"leaves\":[]}")" = 400 ] || fail "unallocated bank: $(cat dq.json)"
# no leaves: a plain host quote in the deep-quote form (the empty tree's root is SHA-256(""))
[ "$(dq "{\"nonce\":\"$NONCE\",\"pcrs\":{\"sha256\":[0]},\"leaves\":[],\"agent_id\":\"$HOST_ID\"}")" = 200 ] ||
	fail "no leaves: $(cat dq.json)"
[ "$(jq -r .tree_size dq.json)" = 0 ] || fail "empty tree size"
[ "$(jq -r .root dq.json)" = "$(printf '' | openssl dgst -sha256 -binary | xxd -p -c 64)" ] || fail "empty root"
check_quote dq.json "$(qd "$NONCE" "$(jq -r .root dq.json)")"

step "concurrent requests share one quote"
N=4
for i in $(seq $N); do
	n=$(randhex 16)
	echo "$n" >nonce.$i
	sleep 0.05
	dq "{\"nonce\":\"$n\",\"pcrs\":{\"sha256\":[0,7,10]},\"leaves\":[${leaves[$((i % 3))]},${leaves[3]}]}" "c$i.json" \
		>"c$i.code" &
done
wait_all() { local i; for i in $(seq $N); do while [ ! -s "c$i.code" ]; do sleep 0.1; done; done; }
wait_all
for i in $(seq $N); do
	[ "$(cat c$i.code)" = 200 ] || fail "concurrent request $i: $(cat c$i.json)"
	[ "$(jq -r .quote.message c$i.json)" = "$(jq -r .quote.message c1.json)" ] || fail "request $i has a quote of its own"
	[ "$(jq -r .root c$i.json)" = "$(jq -r .root c1.json)" ] || fail "request $i has a root of its own"
	check_nonce_leaf "c$i.json" "$(cat nonce.$i)"
	check_leaf "c$i.json" "${leaves[$((i % 3))]}" 0
	[ "$(jq -r '.leaves[1].error.code' c$i.json)" = vm_not_running ] || fail "stopped VM in a batch"
done
# batched: the nonce is in the tree, not in the qualifying data
check_quote c1.json "$(qd "" "$(jq -r .root c1.json)")"
[ "$(jq -r .tree_size c1.json)" = $((2 * N)) ] || fail "batched tree size: $(jq -c .tree_size c1.json)"
grep -q "1 TPM quote for $N requests, $N leaves (tree of $((2 * N)))" agent.log ||
	fail "the log does not say one quote for $N requests: $(grep 'TPM quote' agent.log)"
stop_agent

step "window_ms = 0: a quote each"
start_agent 0 "$KQ_TMP/host.sock"
for i in $(seq $N); do rm -f "c$i.code"; done
for i in $(seq $N); do
	dq "{\"nonce\":\"$(cat nonce.$i)\",\"pcrs\":{\"sha256\":[0,7,10]},\"leaves\":[${leaves[0]}]}" "c$i.json" >"c$i.code" &
done
wait_all
for i in $(seq $N); do
	[ "$(cat c$i.code)" = 200 ] || fail "unbatched request $i: $(cat c$i.json)"
	jq -e 'has("nonce_leaf") | not' "c$i.json" >/dev/null || fail "unbatched request $i has a nonce leaf"
	check_quote "c$i.json" "$(qd "$(cat nonce.$i)" "$(jq -r .root c$i.json)")"
done
[ "$(grep -c "1 TPM quote for 1 request, 1 leaves" agent.log)" = $N ] || fail "not one quote each: $(grep 'TPM quote' agent.log)"
stop_agent

step "no vTPM socket: no VM map"
start_agent 20 ""
[ "$(dq "{\"nonce\":\"$NONCE\",\"pcrs\":{\"sha256\":[10]},\"leaves\":[${leaves[0]}]}")" = 200 ] || fail "$(cat dq.json)"
[ "$(jq -r '.leaves[0].error.code' dq.json)" = vm_not_running ] || fail "without a map: $(jq -c .leaves dq.json)"
jq -r '.leaves[0].error.message' dq.json | grep -q "vTPM socket is off" || fail "reason: $(jq -c .leaves dq.json)"
# the plain quote still works
[ "$(curl -sS --cacert tls/ca.pem --cert tls/verifier.pem --key tls/verifier-key.pem -o q.json -w '%{http_code}' \
	--data-binary "{\"nonce\":\"$NONCE\",\"pcrs\":{\"sha256\":[10]}}" "$URL/v1/quote")" = 200 ] || fail "quote: $(cat q.json)"
check_quote q.json "$NONCE"
stop_agent
echo "deep quote: quote over the root, proofs, refusals, batching"
