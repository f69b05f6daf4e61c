#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Secure payloads and revocation notices end to end on 127.0.0.1
# (docs/payloads.md, docs/revocation.md): one swtpm host
# TPM, two guests on their own swtpm vTPMs, each agent with a TPM payload key
# its AK certified at the registrar. A payload sealed by `kumquat payload send`
# reaches a guest only once the guest and its host pass, byte for byte, into
# its tmpfs directory, and its script runs; the agent refuses, with a reason
# the tenant sees, a changed U, a changed auth tag and another agent's V; with
# its host failing a guest never gets one; and neither K, U, V nor the
# payload is found on disk or in any log. Then a guest fails: the other guest,
# subscribed to its host's notices, runs its revocation action within an
# interval; a notice signed by another key and a replayed notice are ignored
# and logged.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hypervisor-lib.sh"
need swtpm swtpm_setup tpm2_pcrextend tpm2_getcap tpm2_flushcontext curl openssl jq python3
: "${KQ_BUILD:?}" "${KQ_TESTDATA:?}" "${KQ_HTTP_STUB:?}"

VMGR=$KQ_BUILD/vtpm-mgr/kumquat-vtpm-mgr
VERIFIER=$KQ_BUILD/verifier/kumquat-verifier
[ -x "$VMGR" ] || skip "kumquat-vtpm-mgr was not built"
cd "$KQ_TMP"
[ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] || skip "/dev/shm is not a tmpfs (payloads are only written to memory)"
OUT=$(mktemp -d /dev/shm/kq-payload.XXXXXX)
chmod 700 "$OUT"
trap 'kq_cleanup; rm -rf "$OUT"' EXIT
cat >payload-script <<EOS
#!/bin/sh
# a payload script: runs in the payload's directory
echo "\$KUMQUAT_PAYLOAD_ID \$(sha256sum luks.key | cut -c1-64)" >>$KQ_TMP/script-ran
EOS
chmod 700 payload-script
# the verifier's signing key (events and revocation notices), and another
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out notify-key.pem 2>/dev/null
openssl pkey -in notify-key.pem -pubout -out notify-pub.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other-key.pem 2>/dev/null
for i in 1 2; do
	mkdir -p actions$i
	cat >actions$i/10-record <<EOS
#!/bin/sh
# a revocation action: the notice comes on stdin
{ cat; echo; } >>$KQ_TMP/revoked$i.json
EOS
	chmod 700 actions$i/10-record
done

T0=$SECONDS
step() { echo "== $* ($((SECONDS - T0)) s)"; }

# ---- the host: a TPM whose PCRs hold a real boot and a real IMA list ----
step "host TPM, CA, registrar"
provision_swtpm "$KQ_TMP/host"
start_swtpm "$KQ_TMP/host/state"
HOST_TCTI=$KQ_TCTI
mkdir -p ek-ca tls logs
cp host/localca/issuercert.pem host/localca/swtpm-localca-rootca-cert.pem ek-ca/
expect 0 "$KUMQUAT" ca init --dir tls
for n in registrar host-agent verifier guest1 guest2 webhook; do expect 0 "$KUMQUAT" ca issue --dir tls --name $n --server; done
for n in verifier-client admin; do expect 0 "$KUMQUAT" ca issue --dir tls --name $n --client; done

measure_host_boot


start_registrar

step "host agent"
host_agent_conf host "$HOST_TCTI"
printf '[payload]\ndir = %s\n' "$OUT/host" >>host.conf
start_host_agent

# ---- three VMs: vTPMs certified by the host, reported running, guest agents serving ----
vtpm_mgr_setup

declare -a VM VTCTI GID GPORT GPID
declare -A NAME
NAME[$HOST_ID]=host
EVIL=$(awk '!/boot_aggregate/ { print; exit }' "$KQ_TESTDATA/ima/rust-keylime-ima-ng-sha1.txt")
guest_conf_extra() { # N: payloads and revocation notices
	cat <<EOC
[payload]
dir = $OUT/guest$1
script = $KQ_TMP/payload-script
[revocation]
verifier_key = $KQ_TMP/notify-pub.pem
actions_dir = $KQ_TMP/actions$1
EOC
}
for i in 1 2; do start_guest $i; done
export TPM2TOOLS_TCTI=$HOST_TCTI KQ_TCTI=$HOST_TCTI

# ---- the verifier ----
step "verifier, policies, agents"
"$KQ_HTTP_STUB" --cert tls/webhook.pem --key tls/webhook-key.pem --record events >webhook.log 2>&1 &
KQ_PIDS+=($!)
mkdir -p events
HOOK_URL=https://127.0.0.1:$(wait_listening webhook.log)/events
verifier_conf >verifier.conf
cat >>verifier.conf <<EOC
[notify]
webhooks = $HOOK_URL
signing_key = $KQ_TMP/notify-key.pem
[attest]
interval = 1
timeout_ms = 10000
retries = 2
max_evidence = 4194304
[log]
level = debug
EOC
"$VERIFIER" --config verifier.conf >verifier.log 2>&1 &
VERIFIER_PID=$!
KQ_PIDS+=($VERIFIER_PID)
export KUMQUAT_VERIFIER_URL=https://127.0.0.1:$(wait_listening verifier.log)
export KUMQUAT_CA=$KQ_TMP/tls/ca.pem KUMQUAT_CERT=$KQ_TMP/tls/admin.pem KUMQUAT_KEY=$KQ_TMP/tls/admin-key.pem

. "$(dirname "$0")/verifier-lib.sh"
G1=${GID[1]} G2=${GID[2]}
export KUMQUAT_REGISTRAR_URL=$REG_URL

"$KUMQUAT" eventlog replay --json "$UEFI" >/dev/null || fail "replaying the HPE log"
ima_policy "$IMA" >host-ima.json
expect 0 "$KUMQUAT" policy add hpe-mb --kind mb --file "$KQ_TESTDATA/policy/keylime-mb-refstate-hpe.json"
expect 0 "$KUMQUAT" policy add hpe-ima --kind ima --file host-ima.json
expect 0 "$KUMQUAT" add "$HOST_ID" --address "127.0.0.1:$AGENT_PORT" --interval 1 --mb-policy hpe-mb --ima-policy hpe-ima
for i in 1 2; do
	expect 0 "$KUMQUAT" add "${GID[$i]}" --address "127.0.0.1:${GPORT[$i]}" --host "$HOST_ID" --interval 1
done

# ---- 0. every agent's payload key is certified at the registrar ----
step "0. payload keys certified by each AK"
for id in "$HOST_ID" "$G1" "$G2"; do
	expect 0 "$KUMQUAT" registrar show "$id" --json
	jq -e '.payload_key_name | length == 68' last.out >/dev/null || fail "${NAME[$id]}: no payload key: $(cat last.out)"
done

# the secret: a LUKS key file and an unlock script
mkdir -p secret
head -c 4096 /dev/urandom >secret/luks.key
printf '#!/bin/sh\ncryptsetup open --key-file luks.key /dev/vdb data\n' >secret/unlock.sh
chmod 700 secret/unlock.sh
# payload_status ID STATE [SECONDS]: until the agent's payload is in STATE; ps.json holds it
payload_status() {
	local i
	for i in $(seq $((${3:-20} * 5))); do
		"$KUMQUAT" payload status "$1" --json >ps.json 2>ps.err || true
		[ "$(jq -r .state ps.json 2>/dev/null)" = "$2" ] && return 0
		sleep 0.2
	done
	cat ps.json ps.err >&2; tail -20 verifier.log >&2; tail -5 guest*.log >&2
	fail "${NAME[$1]}'s payload not $2 after ${3:-20} s"
}
# send ID: kumquat payload send ID secret; PID holds the payload id
send() {
	expect 0 "$KUMQUAT" payload send "$1" secret
	PID=$(awk '{ print $2; exit }' last.out)
	[ ${#PID} = 32 ] || fail "no payload id: $(cat last.out)"
}

# ---- 1. both layers pass: the payload arrives, byte for byte, and its script runs ----
step "1. a payload reaches a guest whose guest and host layers pass"
wait_state "$HOST_ID" attesting 30
for id in "$G1" "$G2"; do wait_state "$id" attesting 30; done
passing "$HOST_ID" "$G1" "$G2"
# the fleet's counters without listing it
curl -sS --cacert tls/ca.pem --cert tls/admin.pem --key tls/admin-key.pem "$KUMQUAT_VERIFIER_URL/v1/summary" >summary.json
jq -e '.agents == 3 and .states.attesting == 3 and .kinds.guest.agents == 2 and .kinds.host.agents == 1 and
	.kinds.guest.passes > 0 and .clean == 3 and .first_not_clean == null' summary.json >/dev/null ||
	fail "summary: $(cat summary.json)"
send "$G1"
payload_status "$G1" delivered
for f in luks.key unlock.sh; do
	cmp secret/$f "$OUT/guest1/$PID/$f" || fail "$f arrived changed"
done
[ "$(stat -c %a "$OUT/guest1/$PID")" = 700 ] || fail "the payload directory is not 0700"
[ "$(stat -c %a "$OUT/guest1/$PID/unlock.sh")" = 700 ] || fail "unlock.sh lost its mode"
grep -q "^$PID $(sha256sum secret/luks.key | cut -c1-64)\$" script-ran || fail "the payload script did not run: $(cat script-ran 2>&1)"
grep -q "payload $PID delivered" guest1.log || fail "the guest did not log the delivery"
echo "   delivered to guest 1: $(ls "$OUT/guest1/$PID" | tr '\n' ' ')"
FIRST=$PID

# ---- 2. refusals: a changed U, a changed auth tag, another agent's V ----
step "2. the agent refuses a changed U, a changed auth tag, another agent's V"
# tamper TARGET_JSON_FIELD: the guest holds U while the verifier holds V back (guest stopped)
tamper() {
	expect 0 "$KUMQUAT" update "$G1" --stop
	send "$G1"
	python3 - guest1-state/payload-u.json "$1" <<'EOP'
import base64, json, sys
p, field = sys.argv[1], sys.argv[2]
d = json.load(open(p))
b = bytearray(base64.b64decode(d[field]))
b[len(b) // 2] ^= 0x01
d[field] = base64.b64encode(bytes(b)).decode()
json.dump(d, open(p, "w"))
EOP
	expect 0 "$KUMQUAT" update "$G1" --resume
}
tamper enc_u
payload_status "$G1" refused
jq -e '.reason[0].code == "u_undecryptable"' ps.json >/dev/null || fail "changed U: $(cat ps.json)"
expect 1 "$KUMQUAT" payload status "$G1"
echo "   changed U: $(cat last.out)"
[ ! -e "$OUT/guest1/$PID" ] || fail "a refused payload was written"
tamper auth_tag
payload_status "$G1" refused
jq -e '.reason[0].code == "auth_tag_mismatch"' ps.json >/dev/null || fail "changed tag: $(cat ps.json)"
echo "   changed auth tag: $(jq -r '.reason[0] | "\(.code): \(.message)"' ps.json)"
# V of a payload for guest 2, presented to guest 1 under guest 1's payload id
expect 0 "$KUMQUAT" update "$G1" --stop
expect 0 "$KUMQUAT" update "$G2" --stop
send "$G2"
P2=$PID
cp guest2-state/payload-u.json g2-u.json
send "$G1"
python3 - verifier.db "$G2" >v2.b64 <<'EOP'
import base64, sqlite3, sys
row = sqlite3.connect(sys.argv[1]).execute("SELECT enc_v FROM payloads WHERE agent_id = ?", (sys.argv[2],)).fetchone()
print(base64.b64encode(row[0]).decode())
EOP
curl -sS --cacert tls/ca.pem --cert tls/admin.pem --key tls/admin-key.pem -H 'Content-Type: application/json' \
	-d "{\"payload_id\": \"$PID\", \"enc_v\": \"$(cat v2.b64)\"}" "$KUMQUAT_VERIFIER_URL/v1/agents/$G1/payload" >/dev/null ||
	fail "posting guest 2's V for guest 1"
expect 0 "$KUMQUAT" update "$G1" --resume
payload_status "$G1" refused
jq -e '.reason[0].code == "v_undecryptable"' ps.json >/dev/null || fail "another agent's V: $(cat ps.json)"
echo "   guest 2's V for guest 1: $(jq -r '.reason[0] | "\(.code): \(.message)"' ps.json)"
grep -q "refused: v_undecryptable" guest1.log || fail "guest 1 did not log the refusal"
# guest 2's own payload is still good
expect 0 "$KUMQUAT" update "$G2" --resume
payload_status "$G2" delivered
cmp secret/luks.key "$OUT/guest2/$P2/luks.key" || fail "guest 2's payload arrived changed"

# ---- 3. no secret on disk or in a log ----
step "3. neither K, U, V nor the payload is on disk or in a log"
# U and V of guest 2's delivered payload, decrypted here with its vTPM as only it can, and K = U xor V
python3 - verifier.db "$G2" >v.bin.b64 <<'EOP'
import base64, sqlite3, sys
row = sqlite3.connect(sys.argv[1]).execute("SELECT enc_v FROM payloads WHERE agent_id = ?", (sys.argv[2],)).fetchone()
print(base64.b64encode(row[0]).decode())
EOP
base64 -d v.bin.b64 >v.enc
tflush
TPM2TOOLS_TCTI=${VTCTI[2]} tpm2_rsadecrypt -c 0x81010030 -s oaep -l kumquat-payload-v -o v.bin v.enc 2>/dev/null ||
	fail "the test cannot decrypt V with guest 2's vTPM"
jq -r .enc_u g2-u.json | base64 -d >u.enc
tflush
TPM2TOOLS_TCTI=${VTCTI[2]} tpm2_rsadecrypt -c 0x81010030 -s oaep -l kumquat-payload-u -o u.bin u.enc 2>/dev/null ||
	fail "the test cannot decrypt U with guest 2's vTPM"
[ "$(stat -c %s v.bin)" = 32 ] && [ "$(stat -c %s u.bin)" = 32 ] || fail "U or V is not 32 bytes"
V_HEX=$(od -An -tx1 v.bin | tr -d ' \n')
U_HEX=$(od -An -tx1 u.bin | tr -d ' \n')
K_HEX=$(python3 -c "import sys; print(bytes(a ^ b for a, b in zip(bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2]))).hex())" "$U_HEX" "$V_HEX")
LUKS_HEX=$(head -c 32 secret/luks.key | od -An -tx1 | tr -d ' \n')
for f in registrar.db* verifier.db* *-state/* guest*-state/* *.log hook.log; do
	[ -f "$f" ] || continue
	python3 - "$f" "$K_HEX" "$U_HEX" "$V_HEX" "$LUKS_HEX" <<'EOP' || fail "a secret is in $f"
import base64, sys
data = open(sys.argv[1], "rb").read()
for h in sys.argv[2:]:
    b = bytes.fromhex(h)
    for form in (b, h.encode(), base64.b64encode(b)[:40]):
        if form in data:
            sys.exit(1)
EOP
done
echo "   K, U and V (decrypted with the vTPM) and the payload's bytes: in none of the state files, databases or logs"

# ---- 4. a guest fails: the subscribed guest runs its revocation action; forged and replayed notices are ignored ----
step "4. revocation: a failing guest is announced to the agents subscribed to its host"
expect 0 "$KUMQUAT" update "$G2" --revocations host
expect 0 "$KUMQUAT" status "$G2" --json
jq -e '.revocations == "host"' last.out >/dev/null || fail "guest 2 is not subscribed: $(cat last.out)"
passing "$G1" "$G2"
rm -f revoked1.json revoked2.json
# guest 1's vTPM PCR 10 extended outside its IMA list
tflush
TPM2TOOLS_TCTI=${VTCTI[1]} tpm2_pcrextend 10:sha256=$(randhex 32) || fail "extending vm1's PCR 10"
fails_with ima pcr10_mismatch "$G1"
T_FAIL=$(date +%s.%N)
for i in $(seq 50); do [ -s revoked2.json ] && break; sleep 0.1; done
[ -s revoked2.json ] || { tail -20 verifier.log >&2; tail -5 guest2.log >&2; fail "guest 2's revocation action did not run"; }
echo "   guest 2's action ran $(echo "$(date +%s.%N) - $T_FAIL" | bc 2>/dev/null || echo '<5') s after guest 1 was seen failed"
jq -e --arg g "$G1" --arg h "$HOST_ID" --arg vm "${VM[1]}" \
	'.event == "revocation" and .agent_id == $g and .host_id == $h and .vm_uuid == $vm and .kind == "guest" and
	 .reason.code == "pcr10_mismatch"' revoked2.json >/dev/null || fail "the notice guest 2 got: $(cat revoked2.json)"
[ ! -e revoked1.json ] || fail "the failed guest was sent its own notice"
grep -q "agent $G1 revoked by the verifier" guest2.log || fail "guest 2 did not log the revocation"
echo "   notice: $(jq -c '{event, agent_id, vm_uuid, host_id, reason: .reason.code}' revoked2.json)"
# the webhook got the same notice, signed by the verifier's key
ENV=$(grep -l 'vnd.kumquat.revocation+json' events/*.json | head -1)
[ -n "$ENV" ] || fail "the webhook got no revocation notice"
# a replayed notice (the one the webhook got) and a notice signed by another key: ignored and logged
post_notice() { # FILE: POSTs it to guest 2's /v1/revocation; the HTTP status in code
	curl -sS -o resp.json -w '%{http_code}' --cacert tls/ca.pem --cert tls/admin.pem --key tls/admin-key.pem \
		-H 'Content-Type: application/json' --data-binary @"$1" "https://127.0.0.1:${GPORT[2]}/v1/revocation" >code || true
}
post_notice "$ENV"
[ "$(cat code)" = 409 ] || fail "a replayed notice: $(cat code) $(cat resp.json)"
grep -q "ignored: replayed" guest2.log || fail "the replay was not logged"
# a fresh notice about guest 2's host itself, signed by another key
TYPE=application/vnd.kumquat.revocation+json
printf '{"event":"revocation","seq":999999,"unix_time":%s,"agent_id":"%s","kind":"host","vm_uuid":null,"host_id":"%s","reason":{"code":"forged"}}' \
	"$(date +%s)" "$HOST_ID" "$HOST_ID" >forged.json
printf 'DSSEv1 %s %s %s ' ${#TYPE} "$TYPE" "$(stat -c %s forged.json)" >forged.pae
cat forged.json >>forged.pae
openssl dgst -sha256 -sign other-key.pem -out forged.sig forged.pae
jq -n --arg t "$TYPE" --arg p "$(base64 -w0 forged.json)" --arg s "$(base64 -w0 forged.sig)" \
	'{payloadType: $t, payload: $p, signatures: [{keyid: "", sig: $s}]}' >forged-env.json
post_notice forged-env.json
[ "$(cat code)" = 403 ] || fail "a notice signed by another key: $(cat code) $(cat resp.json)"
grep -q "signature does not verify" guest2.log || fail "the forged notice was not logged"
# the same, signed by the verifier's key, is taken (so the refusal above was the signature's)
openssl dgst -sha256 -sign notify-key.pem -out forged.sig forged.pae
jq -n --arg t "$TYPE" --arg p "$(base64 -w0 forged.json)" --arg s "$(base64 -w0 forged.sig)" \
	'{payloadType: $t, payload: $p, signatures: [{keyid: "", sig: $s}]}' >signed-env.json
post_notice signed-env.json
[ "$(cat code)" = 200 ] || fail "a notice signed by the verifier's key: $(cat code) $(cat resp.json)"
[ "$(grep -c '"event":"revocation"' revoked2.json)" = 2 ] || fail "guest 2's actions: $(cat revoked2.json)"
echo "   replayed notice: 409 replayed; another key's signature: 403 bad_signature; both logged, no action run"

# ---- 5. a failing host: its guests get nothing ----
step "5. with its host failing, a guest never gets its payload"
tflush
TPM2TOOLS_TCTI=$HOST_TCTI tpm2_pcrextend 4:sha256=$(randhex 32) || fail "extending the host's PCR 4"
fails_with host host_failed "$G2"
send "$G2"
sleep 4
payload_status "$G2" pending 1
[ ! -e "$OUT/guest2/$PID" ] || fail "a payload reached a guest of a failed host"
grep -q "payload $PID delivered" guest2.log && fail "delivered under a failed host"
echo "   guest 2 under a failed host: payload $PID still pending after 4 s"

# bad input at the agent: not JSON, a bad id, V before U
curl -sS -o resp.json -w '%{http_code}' --cacert tls/ca.pem --cert tls/admin.pem --key tls/admin-key.pem \
	-d 'not json' "https://127.0.0.1:${GPORT[2]}/v1/payload/u" >code || true
[ "$(cat code)" = 400 ] || fail "non-JSON payload: $(cat code) $(cat resp.json)"
curl -sS -o resp.json -w '%{http_code}' --cacert tls/ca.pem --cert tls/admin.pem --key tls/admin-key.pem \
	-d '{"payload_id": "00000000000000000000000000000000", "enc_v": "AAAA"}' \
	"https://127.0.0.1:${GPORT[2]}/v1/payload/v" >code || true
[ "$(cat code)" = 409 ] || fail "V without U: $(cat code) $(cat resp.json)"
curl -sS -o resp.json -w '%{http_code}' --cacert tls/ca.pem -d '{}' \
	"https://127.0.0.1:${GPORT[2]}/v1/payload/v" >code 2>/dev/null || true
[ "$(cat code)" = 401 ] || [ "$(cat code)" = 000 ] || fail "V without a client certificate: $(cat code)"
kill -0 "${GPID[2]}" || fail "guest 2 died"
echo "PASS"
