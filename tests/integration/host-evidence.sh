#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The host agent's evidence endpoint over mTLS on 127.0.0.1: a quote by the
# enrolled AK over the caller's nonce and PCRs (checked with kumquat quote
# check), the UEFI event log byte for byte, IMA entries from an offset, the
# boot id; refusals for callers without a client certificate and bad requests.
. "$(dirname "$0")/lib.sh"
need swtpm swtpm_setup curl openssl jq
: "${KQ_BUILD:?}" "${KQ_TESTDATA:?}"
AGENT=$KQ_BUILD/host-agent/kumquat-host-agent
cd "$KQ_TMP"

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

cat >agent.conf <<EOC
[agent]
state_dir = $KQ_TMP/agent-state
contact = https://127.0.0.1:1
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
[vtpm]
socket =
[logs]
uefi = $KQ_TMP/logs/uefi.bin
ima = $KQ_TMP/logs/ima.bin
boot_id = $KQ_TMP/logs/boot_id
EOC
"$AGENT" --config agent.conf >agent.log 2>&1 &
AGENT_PID=$!
KQ_PIDS+=($AGENT_PID)
URL=https://127.0.0.1:$(wait_listening agent.log)

quote() { # body -> status, answer in q.json
	curl -sS --cacert tls/ca.pem --cert tls/verifier.pem --key tls/verifier-key.pem -o q.json -w '%{http_code}' \
		-H 'Content-Type: application/json' --data-binary "$1" "$URL/v1/quote"
}
b64file() { jq -r "$1" q.json | base64 -d >"$2"; }

NONCE=$(randhex 20)
[ "$(quote "{\"nonce\":\"$NONCE\",\"pcrs\":{\"sha256\":[0,1,2,3,4,5,6,7,10]},\"ima_offset\":0}")" = 200 ] ||
	fail "quote: $(cat q.json)"
b64file .quote.message msg
b64file .quote.signature sig
b64file .quote.pcrs pcrs
# the AK the registrar enrolled signed it
"$KUMQUAT" registrar show "$(cat agent-state/id)" --json --url "$REG_URL" --ca tls/ca.pem \
	--cert tls/verifier.pem --key tls/verifier-key.pem >agent.json || fail "registrar show"
jq -r .ak_pub agent.json | base64 -d >ak.pub
expect 0 "$KUMQUAT" quote check --ak ak.pub --message msg --signature sig --pcrs pcrs --nonce "$NONCE"
expect 1 "$KUMQUAT" quote check --ak ak.pub --message msg --signature sig --pcrs pcrs --nonce "$(randhex 20)"
# logs: the event log byte for byte, IMA from the offset, the boot id
b64file .uefi_log uefi.out
cmp -s uefi.out logs/uefi.bin || fail "UEFI log differs"
[ "$(jq -r .boot_id q.json)" = "$(cat logs/boot_id)" ] || fail "boot id"
[ "$(jq -r .ima.entries q.json)" = 1083 ] || fail "IMA entries from 0: $(jq -c .ima.entries q.json)"
b64file .ima.data ima.out
cmp -s ima.out logs/ima.bin || fail "IMA list from 0 differs"
[ "$(quote "{\"nonce\":\"$NONCE\",\"pcrs\":{\"sha256\":[10]},\"ima_offset\":1000}")" = 200 ] || fail "offset 1000"
[ "$(jq -r .ima.entries q.json)" = 83 ] || fail "IMA entries from 1000: $(jq -c .ima.entries q.json)"
b64file .ima.data tail.bin
expect 1 "$KUMQUAT" ima replay --json tail.bin   # entry 1079 (0-based) is bad: it is in the tail
[ "$(jq -r .entries last.out)" = 83 ] || fail "the tail does not parse as 83 entries: $(cat last.out)"
# an offset past the list (a reboot) is reported, not answered with nothing
[ "$(quote "{\"nonce\":\"$NONCE\",\"pcrs\":{\"sha256\":[10]},\"ima_offset\":5000}")" = 409 ] || fail "offset ahead"
[ "$(jq -r .error.code q.json)" = ima_offset_ahead ] || fail "reason: $(cat q.json)"

# refusals
code=$(curl -sS --cacert tls/ca.pem -o q.json -w '%{http_code}' -H 'Content-Type: application/json' \
	--data-binary "{\"nonce\":\"00\",\"pcrs\":{\"sha256\":[0]}}" "$URL/v1/quote")
[ "$code" = 401 ] || fail "a quote without a client certificate got $code"
for body in '{' '{"nonce":"zz","pcrs":{"sha256":[0]}}' '{"nonce":"00","pcrs":{"sha999":[0]}}' \
	'{"nonce":"00","pcrs":{"sha256":[24]}}' '{"nonce":"00","pcrs":{}}' '{"nonce":"","pcrs":{"sha256":[0]}}' \
	'{"nonce":"00","pcrs":{"sha256":[0]},"ima_offset":-1}' "{\"nonce\":\"$(randhex 65)\",\"pcrs\":{\"sha256\":[0]}}"; do
	[ "$(quote "$body")" = 400 ] || fail "bad request not refused: $body -> $(cat q.json)"
	jq -e .error.message q.json >/dev/null || fail "no reason for $body"
done
# still serving
[ "$(quote "{\"nonce\":\"$NONCE\",\"pcrs\":{\"sha256\":[0,10]}}")" = 200 ] || fail "after refusals: $(cat q.json)"
# a bank the TPM does not have: 400 with the reason
[ "$(quote "{\"nonce\":\"$NONCE\",\"pcrs\":{\"sha1\":[0]}}")" = 400 ] || fail "unallocated bank: $(cat q.json)"
kill $AGENT_PID
wait $AGENT_PID || fail "the host agent did not stop cleanly on SIGTERM: $(tail -3 agent.log)"
echo "host agent evidence: quotes, logs, IMA offsets, refusals"
