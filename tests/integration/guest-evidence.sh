#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The guest agent's evidence endpoint over mTLS on 127.0.0.1: a VM's vTPM
# (swtpm, its EK certificate issued through the host agent's vTPM socket by
# kumquat's cert tool) enrols with the registrar, and the guest agent then
# serves POST /v1/quote like the host agent: a quote by the guest's AK as the
# registrar recorded it (kumquat quote check), the UEFI log, IMA entries from
# an offset, the boot id, refusals. --enrol-only, and a config without
# [server] cert, enrol and exit.
. "$(dirname "$0")/lib.sh"
need swtpm swtpm_setup curl openssl jq
: "${KQ_BUILD:?}" "${KQ_TESTDATA:?}"
AGENT=$KQ_BUILD/host-agent/kumquat-host-agent
GUEST=$KQ_BUILD/guest-agent/kumquat-guest-agent
VMGR=$KQ_BUILD/vtpm-mgr/kumquat-vtpm-mgr
[ -x "$VMGR" ] || skip "kumquat-vtpm-mgr was not built"
cd "$KQ_TMP"
step() { echo "== $*"; }
VM=7c9d9a4e-1111-4000-8000-000000000001

# ---- the host: its TPM, the registrar, the host agent with its vTPM socket ----
provision_swtpm "$KQ_TMP/host"
start_swtpm "$KQ_TMP/host/state"
HOST_TCTI=$KQ_TCTI
mkdir -p ek-ca tls logs
cp host/localca/issuercert.pem host/localca/swtpm-localca-rootca-cert.pem ek-ca/
expect 0 "$KUMQUAT" ca init --dir tls
expect 0 "$KUMQUAT" ca issue --dir tls --name registrar --server
expect 0 "$KUMQUAT" ca issue --dir tls --name guest-agent --server
expect 0 "$KUMQUAT" ca issue --dir tls --name verifier --client
cp "$KQ_TESTDATA/eventlog/hpe-perf-uefi.bin" logs/uefi.bin
cp "$KQ_TESTDATA/ima/ibm-acs-ima-sig.bin" logs/ima.bin
echo 5d6c7b8a-1111-4222-8333-944455556666 >logs/boot_id

start_registrar

cat >host.conf <<EOC
[agent]
state_dir = $KQ_TMP/host-state
[tpm]
tcti = $HOST_TCTI
[registrar]
url = $REG_URL
ca = $KQ_TMP/tls/ca.pem
[vtpm]
socket = $KQ_TMP/host.sock
EOC
tflush
"$AGENT" --config host.conf >host.log 2>&1 &
HOST_PID=$!
KQ_PIDS+=($HOST_PID)
for i in $(seq 100); do
	[ -S host.sock ] && grep -q "vTPM socket" host.log && break
	kill -0 $HOST_PID 2>/dev/null || fail "host agent exited: $(tail -3 host.log)"
	sleep 0.1
done
[ -S host.sock ] || fail "the host agent did not open its socket: $(tail -3 host.log)"

# ---- the VM's vTPM: reported by the hook, made by swtpm_setup with kumquat's cert tool ----
step "the vTPM"
cat >vmgr.conf <<EOC
[vtpm-mgr]
database = $KQ_TMP/vmgr.db
[host-agent]
socket = $KQ_TMP/host.sock
EOC
cat <<EOX | "$VMGR" --config vmgr.conf hook vm1 prepare begin - || fail "the hook failed"
<domain type='kvm'>
  <name>vm1</name>
  <uuid>$VM</uuid>
  <memory unit='KiB'>1048576</memory>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices><tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm></devices>
</domain>
EOX
cat >certtool <<EOS
#!/bin/sh
exec "$VMGR" cert-tool "\$@"
EOS
chmod +x certtool
echo "socket = $KQ_TMP/host.sock" >certtool.conf
: >certtool.options
cat >swtpm_setup.conf <<EOC
create_certs_tool = $KQ_TMP/certtool
create_certs_tool_config = $KQ_TMP/certtool.conf
create_certs_tool_options = $KQ_TMP/certtool.options
EOC
mkdir -p vtpm
swtpm_setup --tpm2 --tpmstate vtpm --createek --create-ek-cert --lock-nvram --config swtpm_setup.conf \
	--vmid "vm1:$VM" --overwrite >vtpm.log 2>&1 || fail "swtpm_setup: $(tail -5 vtpm.log)"
start_swtpm "$KQ_TMP/vtpm"
tflush

# ---- the guest agent: enrols, then serves ----
guest_conf() { # NAME [server]: writes NAME.conf, with the evidence endpoint if a second argument is given
	cat >"$1.conf" <<EOC
[agent]
state_dir = $KQ_TMP/guest-state
vm_uuid = $VM
[tpm]
tcti = $KQ_TCTI
[registrar]
url = $REG_URL
ca = $KQ_TMP/tls/ca.pem
[logs]
uefi = $KQ_TMP/logs/uefi.bin
ima = $KQ_TMP/logs/ima.bin
boot_id = $KQ_TMP/logs/boot_id
EOC
	[ -z "${2:-}" ] || cat >>"$1.conf" <<EOC
[server]
port = 0
cert = $KQ_TMP/tls/guest-agent.pem
key = $KQ_TMP/tls/guest-agent-key.pem
client_ca = $KQ_TMP/tls/ca.pem
EOC
}
step "enrol only"
guest_conf plain
expect 0 timeout 60 "$GUEST" --config plain.conf
grep -q "enrolled as" last.err || fail "no enrolment: $(cat last.err)"
grep -q "listening" last.err && fail "a guest agent without [server] cert listened"
guest_conf serving server
tflush
expect 0 timeout 60 "$GUEST" --config serving.conf --enrol-only
grep -q "listening" last.err && fail "--enrol-only listened"
GUEST_ID=$(cat guest-state/id)

step "serving evidence"
tflush
"$GUEST" --config serving.conf >guest.log 2>&1 &
GUEST_PID=$!
KQ_PIDS+=($GUEST_PID)
URL=https://127.0.0.1:$(wait_listening guest.log)
"$KUMQUAT" registrar show "$GUEST_ID" --json --url "$REG_URL" --ca tls/ca.pem \
	--cert tls/verifier.pem --key tls/verifier-key.pem >guest.json || fail "registrar show"
jq -e --arg vm $VM '.kind == "guest" and .vm_uuid == $vm' guest.json >/dev/null || fail "record: $(cat guest.json)"
jq -r .ak_pub guest.json | base64 -d >ak.pub

quote() { # body -> status, answer in q.json
	curl -sS --cacert tls/ca.pem --cert tls/verifier.pem --key tls/verifier-key.pem -o q.json -w '%{http_code}' \
		-H 'Content-Type: application/json' --data-binary "$1" "$URL/v1/quote"
}
b64file() { jq -r "$1" q.json | base64 -d >"$2"; }

NONCE=$(randhex 32)
[ "$(quote "{\"nonce\":\"$NONCE\",\"pcrs\":{\"sha256\":[0,1,2,3,4,5,6,7,10]},\"ima_offset\":0,\"agent_id\":\"$GUEST_ID\"}")" = 200 ] ||
	fail "quote: $(cat q.json)"
b64file .quote.message msg
b64file .quote.signature sig
b64file .quote.pcrs pcrs
expect 0 "$KUMQUAT" quote check --ak ak.pub --message msg --signature sig --pcrs pcrs --nonce "$NONCE"
expect 1 "$KUMQUAT" quote check --ak ak.pub --message msg --signature sig --pcrs pcrs --nonce "$(randhex 32)"
# not the host's AK
HOST_ID=$(cat host-state/id)
"$KUMQUAT" registrar show "$HOST_ID" --json --url "$REG_URL" --ca tls/ca.pem \
	--cert tls/verifier.pem --key tls/verifier-key.pem | jq -r .ak_pub | base64 -d >host-ak.pub
expect 1 "$KUMQUAT" quote check --ak host-ak.pub --message msg --signature sig --pcrs pcrs --nonce "$NONCE"
b64file .uefi_log uefi.out
cmp -s uefi.out logs/uefi.bin || fail "UEFI log differs"
[ "$(jq -r .boot_id q.json)" = "$(cat logs/boot_id)" ] || fail "boot id"
[ "$(jq -r .ima.entries q.json)" = 1083 ] || fail "IMA entries from 0: $(jq -c .ima.entries q.json)"
b64file .ima.data ima.out
cmp -s ima.out logs/ima.bin || fail "IMA list from 0 differs"
[ "$(quote "{\"nonce\":\"$NONCE\",\"pcrs\":{\"sha256\":[10]},\"ima_offset\":1000}")" = 200 ] || fail "offset 1000"
[ "$(jq -r .ima.entries q.json)" = 83 ] || fail "IMA entries from 1000: $(jq -c .ima.entries q.json)"
[ "$(quote "{\"nonce\":\"$NONCE\",\"pcrs\":{\"sha256\":[10]},\"ima_offset\":5000}")" = 409 ] || fail "offset ahead"
[ "$(jq -r .error.code q.json)" = ima_offset_ahead ] || fail "reason: $(cat q.json)"

step "refusals"
code=$(curl -sS --cacert tls/ca.pem -o q.json -w '%{http_code}' -H 'Content-Type: application/json' \
	--data-binary "{\"nonce\":\"00\",\"pcrs\":{\"sha256\":[0]}}" "$URL/v1/quote")
[ "$code" = 401 ] || fail "a quote without a client certificate got $code"
[ "$(quote "{\"nonce\":\"00\",\"pcrs\":{\"sha256\":[0]},\"agent_id\":\"$HOST_ID\"}")" = 409 ] || fail "wrong agent"
[ "$(jq -r .error.code q.json)" = wrong_agent ] || fail "reason: $(cat q.json)"
for body in '{' '{"nonce":"zz","pcrs":{"sha256":[0]}}' '{"nonce":"00","pcrs":{"sha999":[0]}}' \
	'{"nonce":"00","pcrs":{"sha256":[24]}}' '{"nonce":"","pcrs":{"sha256":[0]}}' \
	'{"nonce":"00","pcrs":{"sha256":[0]},"leaves":[]}' "{\"nonce\":\"$(randhex 65)\",\"pcrs\":{\"sha256\":[0]}}"; do
	[ "$(quote "$body")" = 400 ] || fail "bad request not refused: $body -> $(cat q.json)"
	jq -e .error.message q.json >/dev/null || fail "no reason for $body"
done
code=$(curl -sS --cacert tls/ca.pem --cert tls/verifier.pem --key tls/verifier-key.pem -o q.json -w '%{http_code}' \
	--data-binary "{\"nonce\":\"00\",\"pcrs\":{\"sha256\":[0]},\"leaves\":[]}" "$URL/v1/deep-quote")
[ "$code" = 404 ] || fail "a guest agent serving deep quotes: $code"
[ "$(quote "{\"nonce\":\"$NONCE\",\"pcrs\":{\"sha256\":[0,10]}}")" = 200 ] || fail "after refusals: $(cat q.json)"
kill $GUEST_PID
wait $GUEST_PID || fail "the guest agent did not stop cleanly on SIGTERM: $(tail -3 guest.log)"
echo "guest agent evidence: vTPM quotes by the enrolled AK, logs, IMA offsets, refusals"
