#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The verifier attesting a host end to end on 127.0.0.1: swtpm as the host's
# TPM with a real UEFI event log and IMA list measured into its PCRs, the
# registrar, the host agent, the verifier and a webhook receiver, all over
# mutual TLS. The host attests with matching policies; then each tampering is
# detected within an interval with its reason; a killed host agent is
# unreachable and comes back; a verifier killed with SIGKILL resumes with the
# same agents, states and IMA position; state changes reach the webhook as
# signed events; malformed and unauthenticated API calls get 4xx.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hypervisor-lib.sh"
need swtpm swtpm_setup tpm2_pcrextend tpm2_createak curl openssl jq
: "${KQ_BUILD:?}" "${KQ_TESTDATA:?}" "${KQ_HTTP_STUB:?}"
AGENT=$KQ_BUILD/host-agent/kumquat-host-agent
VERIFIER=$KQ_BUILD/verifier/kumquat-verifier
cd "$KQ_TMP"

step() { echo "== $*"; }

# ---- the host: a TPM whose PCRs hold a real boot and a real IMA list ----
provision_swtpm "$KQ_TMP/host"
start_swtpm "$KQ_TMP/host/state"
mkdir -p ek-ca tls logs events
cp host/localca/issuercert.pem host/localca/swtpm-localca-rootca-cert.pem ek-ca/
expect 0 "$KUMQUAT" ca init --dir tls
for n in registrar host-agent verifier webhook; do expect 0 "$KUMQUAT" ca issue --dir tls --name $n --server; done
for n in verifier-client admin; do expect 0 "$KUMQUAT" ca issue --dir tls --name $n --client; done
openssl ecparam -name prime256v1 -genkey -noout -out notify-key.pem 2>/dev/null
openssl ec -in notify-key.pem -pubout -out notify-pub.pem 2>/dev/null

measure_host_boot

# extend_ima LINE...: appends ascii IMA entries to the host's list and measures them
extend_ima() {
	printf '%s\n' "$@" >new.txt
	"$KUMQUAT" ima replay --extends sha256 new.txt >new.ext || fail "new IMA entries: $(cat new.ext)"
	tflush
	xargs -a new.ext tpm2_pcrextend || fail "extending PCR 10"
	cat new.txt >>logs/ima.txt
}

# ---- policies ----
"$KUMQUAT" eventlog replay --json "$UEFI" >replay.json
jq '{sha256: {"0": .pcrs.sha256["0"], "7": .pcrs.sha256["7"]}}' replay.json >pcr-policy.json
cp "$KQ_TESTDATA/policy/keylime-mb-refstate-hpe.json" mb-policy.json
echo '{"secure_boot": true}' >mb-sb.json
ima_policy "$IMA" >ima-policy.json

# ---- daemons ----
start_registrar

AGENT_PORT=$((20000 + RANDOM % 20000 * 2 + 1))
cat >agent.conf <<EOC
[agent]
state_dir = $KQ_TMP/agent-state
contact = https://127.0.0.1:$AGENT_PORT
[tpm]
tcti = $KQ_TCTI
[registrar]
url = $REG_URL
ca = $KQ_TMP/tls/ca.pem
[server]
port = $AGENT_PORT
cert = $KQ_TMP/tls/host-agent.pem
key = $KQ_TMP/tls/host-agent-key.pem
client_ca = $KQ_TMP/tls/ca.pem
[vtpm]
socket =
[logs]
uefi = $KQ_TMP/logs/uefi.bin
ima = $KQ_TMP/logs/ima.txt
boot_id = $KQ_TMP/logs/boot_id
EOC
start_agent() {
	tflush
	"$AGENT" --config agent.conf >>agent.log 2>&1 &
	AGENT_PID=$!
	KQ_PIDS+=($AGENT_PID)
	wait_listening agent.log >/dev/null
}
stop_agent() { kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true; : >agent.log; }
start_agent
ID=$(cat agent-state/id)

"$KQ_HTTP_STUB" --cert tls/webhook.pem --key tls/webhook-key.pem --record events >webhook.log 2>&1 &
KQ_PIDS+=($!)
HOOK_URL=https://127.0.0.1:$(wait_listening webhook.log)/events

verifier_conf >verifier.conf
cat >>verifier.conf <<EOC
[attest]
interval = 1
timeout_ms = 5000
retries = 1
max_evidence = 1048576
[notify]
webhooks = $HOOK_URL
signing_key = $KQ_TMP/notify-key.pem
[log]
level = debug
EOC
start_verifier() {
	[ -f verifier.log ] && cat verifier.log >>verifier.old.log && rm verifier.log
	"$VERIFIER" --config verifier.conf >verifier.log 2>&1 &
	VERIFIER_PID=$!
	KQ_PIDS+=($VERIFIER_PID)
	export KUMQUAT_VERIFIER_URL=https://127.0.0.1:$(wait_listening verifier.log)
}
start_verifier
export KUMQUAT_CA=$KQ_TMP/tls/ca.pem KUMQUAT_CERT=$KQ_TMP/tls/admin.pem KUMQUAT_KEY=$KQ_TMP/tls/admin-key.pem

status() { "$KUMQUAT" status "$ID" --json >st.json 2>st.err || true; }
# wait_state STATE [SECONDS]: until the agent is in STATE (default 20 s)
wait_state() {
	local want=$1 i
	for i in $(seq $((${2:-20} * 5))); do
		status
		[ "$(jq -r .state st.json 2>/dev/null)" = "$want" ] && return 0
		sleep 0.2
	done
	echo "--- status" >&2; cat st.json st.err >&2
	echo "--- verifier log" >&2; tail -20 verifier.log >&2
	echo "--- agent log" >&2; tail -5 agent.log >&2
	fail "agent not $want after ${2:-20} s"
}
# has_reason COMPONENT CODE [INDEX]: the current status lists that reason
has_reason() {
	jq -e --arg c "$1" --arg k "$2" --arg i "${3:-any}" \
		'[.reasons[] | select(.component == $c and .code == $k and ($i == "any" or (.index | tostring) == $i))] | length > 0' \
		st.json >/dev/null || fail "no reason $1/$2 ${3:-}: $(jq -c .reasons st.json)"
}
resume() { expect 0 "$KUMQUAT" update "$ID" --resume "$@"; }

# ---- 1. a host that matches its policies attests ----
step "policies and agent"
expect 0 "$KUMQUAT" policy add hpe-pcrs --kind pcr --file pcr-policy.json
expect 0 "$KUMQUAT" policy add hpe-mb --kind mb --file mb-policy.json
expect 0 "$KUMQUAT" policy add hpe-ima --kind ima --file ima-policy.json
expect 0 "$KUMQUAT" policy add sb-on --kind mb --file mb-sb.json
expect 0 "$KUMQUAT" policy list
grep -q hpe-ima last.out || fail "policy list: $(cat last.out)"
expect 1 "$KUMQUAT" policy add hpe-ima --kind ima --file ima-policy.json   # exists: immutable
expect 1 "$KUMQUAT" policy add broken --kind mb --file ima-policy.json     # not a reference state
expect 0 "$KUMQUAT" add "$ID" --address "127.0.0.1:$AGENT_PORT" --interval 1 \
	--pcr-policy hpe-pcrs --mb-policy hpe-mb --ima-policy hpe-ima
expect 1 "$KUMQUAT" add "$ID" --address "127.0.0.1:$AGENT_PORT"             # already added
expect 1 "$KUMQUAT" add 00000000-0000-4000-8000-000000000000 --address 127.0.0.1:1  # not enrolled
wait_state attesting
for i in $(seq 50); do status; [ "$(jq -r .verdicts st.json)" -ge 2 ] && break; sleep 0.2; done
[ "$(jq -r .passes st.json)" -ge 2 ] || fail "no passing verdicts: $(cat st.json)"
[ "$(jq -r .ima_offset st.json)" = 780 ] || fail "IMA offset after the first rounds: $(jq .ima_offset st.json)"
expect 0 "$KUMQUAT" status "$ID"
expect 0 "$KUMQUAT" list
grep -q "$ID" last.out || fail "list: $(cat last.out)"
expect 1 "$KUMQUAT" policy delete hpe-ima   # in use

# ---- 2. new IMA entries: allowed ones advance the offset, another one fails ----
step "IMA: incremental, then an entry not in the allowlist"
extend_ima "$(sed -n 100p "$IMA")" "$(sed -n 200p "$IMA")"   # files the allowlist knows
for i in $(seq 50); do status; [ "$(jq -r .ima_offset st.json)" = 782 ] && break; sleep 0.2; done
[ "$(jq -r .ima_offset st.json)" = 782 ] || fail "IMA offset did not advance: $(cat st.json)"
[ "$(jq -r .state st.json)" = attesting ] || fail "allowed entries: $(cat st.json)"
EVIL=$(awk '!/boot_aggregate/ { print; exit }' "$KQ_TESTDATA/ima/rust-keylime-ima-ng-sha1.txt")
extend_ima "$EVIL"
wait_state failed 5
has_reason ima not_in_allowlist 782
# the operator allowlists it under a new policy name and resumes: the entry is judged again
ima_policy "$IMA" <(echo "$EVIL") >ima-policy2.json
expect 0 "$KUMQUAT" policy add hpe-ima-2 --kind ima --file ima-policy2.json
resume --ima-policy hpe-ima-2
wait_state attesting 5
for i in $(seq 50); do status; [ "$(jq -r .ima_offset st.json)" = 783 ] && break; sleep 0.2; done
[ "$(jq -r .ima_offset st.json)" = 783 ] || fail "offset after resume: $(jq .ima_offset st.json)"

# ---- 3. an IMA entry changed after it was measured ----
step "IMA: a measured entry rewritten in the list"
cp logs/ima.txt ima.good
LINE=$(sed -n 300p "$IMA")
extend_ima "$LINE"
# the list now shows another digest for the file than the one measured
D=$(echo "$LINE" | awk '{print $4}')
C=${D:7:1}; [ "$C" = a ] && N=b || N=a
{ cat ima.good; echo "${LINE/sha256:$C/sha256:$N}"; } >logs/ima.txt
tail -1 logs/ima.txt | grep -q "$D" && fail "the entry was not changed"
wait_state failed 5
has_reason ima template_hash_mismatch 783
has_reason ima pcr10_mismatch 10
{ cat ima.good; echo "$LINE"; } >logs/ima.txt
resume
wait_state attesting 5

# ---- 4. the UEFI event log edited by one byte ----
step "event log: one byte changed"
cp logs/uefi.bin uefi.good
# a byte in the middle of the log (inside an event's data or digests)
printf '\xff' | dd of=logs/uefi.bin bs=1 seek=$(( $(stat -c %s uefi.good) / 2 )) conv=notrunc status=none
cmp -s logs/uefi.bin uefi.good && printf '\x00' | dd of=logs/uefi.bin bs=1 seek=$(( $(stat -c %s uefi.good) / 2 )) conv=notrunc status=none
wait_state failed 5
# a changed digest no longer replays to the quoted PCRs; changed event data no
# longer matches its digest, so the measured-boot policy cannot trust it
jq -e '[.reasons[] | select((.component == "eventlog" and .code == "replay_mismatch") or
	(.component == "mb" and .code == "unverified_event"))] | length > 0' st.json >/dev/null ||
	fail "event log edit: $(jq -c .reasons st.json)"
cp uefi.good logs/uefi.bin
resume
wait_state attesting 5

# ---- 5. Secure Boot off while the policy requires it ----
step "measured boot: Secure Boot required"
resume --mb-policy sb-on
wait_state failed 5
jq -e '[.reasons[] | select(.component == "mb" and (.code | test("secure")))] | length > 0' st.json >/dev/null ||
	fail "Secure Boot: $(jq -c .reasons st.json)"
resume --mb-policy hpe-mb
wait_state attesting 5

# ---- 6. a replayed quote (wrong nonce) and a quote by another AK ----
step "replayed evidence and another AK"
NONCE=$(randhex 32)
curl -sS --cacert tls/ca.pem --cert tls/verifier-client.pem --key tls/verifier-client-key.pem -o old.json \
	-H 'Content-Type: application/json' "https://127.0.0.1:$AGENT_PORT/v1/quote" \
	--data-binary "{\"nonce\":\"$NONCE\",\"pcrs\":{\"sha256\":[0,1,2,3,4,5,6,7,8,9,10]},\"ima_offset\":783}"
jq -e .quote old.json >/dev/null || fail "recording evidence: $(head -c 300 old.json)"
"$KQ_HTTP_STUB" --cert tls/host-agent.pem --key tls/host-agent-key.pem --client-ca tls/ca.pem \
	--serve old.json >replay.log 2>&1 &
KQ_PIDS+=($!)
REPLAY_PORT=$(wait_listening replay.log)
resume --address "127.0.0.1:$REPLAY_PORT"
wait_state failed 5
has_reason quote nonce
# the same evidence signed by another AK of the same TPM
stop_agent
tflush
t tpm2_createek -c ek2.ctx -G rsa -u ek2.pub >/dev/null
t tpm2_createak -C ek2.ctx -c ak2.ctx -G rsa -g sha256 -s rsassa -u ak2.pub -n ak2.name >/dev/null
tflush
tpm2_quote -c ak2.ctx -l sha256:0,1,2,3,4,5,6,7,8,9,10 -q "$NONCE" -m q2.msg -s q2.sig -o q2.pcrs -g sha256 >/dev/null
tflush
jq --arg m "$(base64 -w0 q2.msg)" --arg s "$(base64 -w0 q2.sig)" --arg p "$(base64 -w0 q2.pcrs)" \
	'.quote = {message: $m, signature: $s, pcrs: $p}' old.json >other-ak.json
"$KQ_HTTP_STUB" --cert tls/host-agent.pem --key tls/host-agent-key.pem --client-ca tls/ca.pem \
	--serve other-ak.json >other.log 2>&1 &
KQ_PIDS+=($!)
OTHER_PORT=$(wait_listening other.log)
resume --address "127.0.0.1:$OTHER_PORT"
wait_state failed 5
has_reason quote signature
# hostile host agents: evidence that is not evidence, and answers over [attest] max_evidence
serve_stub() { # FILE: a stub host agent answering FILE, its port in STUB_PORT
	"$KQ_HTTP_STUB" --cert tls/host-agent.pem --key tls/host-agent-key.pem --client-ca tls/ca.pem \
		--serve "$1" >"$1.log" 2>&1 &
	KQ_PIDS+=($!)
	STUB_PORT=$(wait_listening "$1.log")
}
echo '{"quote": 1, "boot_id": "x"}' >garbage.json
serve_stub garbage.json
resume --address "127.0.0.1:$STUB_PORT"
wait_state failed 5
has_reason quote malformed
{ printf '{"quote": {}, "boot_id": "'; head -c 1500000 /dev/zero | tr '\0' A; printf '"}'; } >big.json
serve_stub big.json
resume --address "127.0.0.1:$STUB_PORT"
wait_state unreachable 10
has_reason transport bad_response
start_agent
resume --address "127.0.0.1:$AGENT_PORT"
wait_state attesting 10

# ---- 7. the host agent killed: unreachable, then back ----
step "host agent down and back"
stop_agent
wait_state unreachable 15
has_reason transport connect
start_agent
wait_state attesting 15

# ---- 8. the verifier killed with SIGKILL mid-round: same agents, states, IMA position ----
step "verifier SIGKILL and restart"
status
before=$(jq -r .ima_offset st.json)
kill -9 "$VERIFIER_PID"
wait "$VERIFIER_PID" 2>/dev/null || true
extend_ima "$(sed -n 400p "$IMA")"
start_verifier
status
[ "$(jq -r .state st.json)" = attesting ] || fail "state after restart: $(cat st.json)"
for i in $(seq 50); do status; [ "$(jq -r .ima_offset st.json)" = $((before + 1)) ] && break; sleep 0.2; done
[ "$(jq -r .ima_offset st.json)" = $((before + 1)) ] || fail "IMA did not continue from $before: $(cat st.json)"
[ "$(jq -r .state st.json)" = attesting ] || fail "after restart: $(cat st.json)"
grep -q "IMA list from its start" verifier.log && fail "the restarted verifier fetched the whole IMA list"

# ---- 9. a PCR extended with no log entry ----
step "PCR 4 extended outside the event log"
stop_agent
tflush
tpm2_pcrextend "4:sha256=$(randhex 32)"
start_agent
wait_state failed 10
has_reason eventlog replay_mismatch 4

# ---- 10. history, stop, webhook events ----
step "history, stop, events"
curl -sS --cacert tls/ca.pem --cert tls/admin.pem --key tls/admin-key.pem -o hist.json \
	"$KUMQUAT_VERIFIER_URL/v1/agents/$ID/history"
jq -e '(.history | length >= 10) and ([.history[] | select(.state == "failed")] | length >= 5)
	and .history[0].reasons[0].code == "replay_mismatch"' hist.json >/dev/null || fail "history: $(head -c 600 hist.json)"
"$KUMQUAT" status "$ID" --history >hist.txt || true
grep -q replay_mismatch hist.txt || fail "status --history: $(head -20 hist.txt)"
expect 0 "$KUMQUAT" update "$ID" --stop
status
[ "$(jq -r .state st.json)" = stopped ] || fail "stop: $(cat st.json)"
expect 1 "$KUMQUAT" status "$ID"   # exits 0 only when attesting
for i in $(seq 50); do [ "$(ls events | wc -l)" -ge 10 ] && break; sleep 0.2; done
n=0 nrev=0
for f in events/*.json; do
	# state changes, and a revocation notice with each failure (docs/revocation.md)
	type=$(jq -r .payloadType "$f")
	jq -r .payload "$f" | base64 -d >payload.json
	jq -r '.signatures[0].sig' "$f" | base64 -d >sig.der
	plen=$(stat -c %s payload.json)
	{ printf 'DSSEv1 %d %s %d ' ${#type} "$type" "$plen"; cat payload.json; } >pae.bin
	openssl dgst -sha256 -verify notify-pub.pem -signature sig.der pae.bin >/dev/null ||
		fail "event $f: the signature does not verify"
	case $type in
	application/vnd.kumquat.event+json)
		jq -e --arg id "$ID" '.agent_id == $id and .event == "state_changed"' payload.json >/dev/null ||
			fail "event $f: $(cat payload.json)"
		n=$((n + 1)) ;;
	application/vnd.kumquat.revocation+json)
		jq -e --arg id "$ID" '.agent_id == $id and .event == "revocation" and .kind == "host" and
			.host_id == $id and (.reason.code | length > 0)' payload.json >/dev/null ||
			fail "notice $f: $(cat payload.json)"
		nrev=$((nrev + 1)) ;;
	*) fail "event $f of type $type" ;;
	esac
done
[ $n -ge 10 ] || fail "only $n events delivered"
[ $nrev -ge 5 ] || fail "only $nrev revocation notices delivered"
# a tampered event does not verify
jq -r .payload "$(grep -l 'vnd.kumquat.event+json' events/*.json | head -1)" | base64 -d | sed 's/failed/attesting/' >payload.json
plen=$(stat -c %s payload.json)
{ printf 'DSSEv1 34 application/vnd.kumquat.event+json %d ' "$plen"; cat payload.json; } >pae.bin
jq -r '.signatures[0].sig' "$(grep -l 'vnd.kumquat.event+json' events/*.json | head -1)" | base64 -d >sig.der
openssl dgst -sha256 -verify notify-pub.pem -signature sig.der pae.bin >/dev/null 2>&1 &&
	fail "a changed event verified"
grep -q "failed -> \|attesting -> failed" verifier.log || fail "state changes not logged"

# ---- 11. the API refuses what it must ----
step "API refusals"
API=$KUMQUAT_VERIFIER_URL
code=$(curl -sS --cacert tls/ca.pem -o r.json -w '%{http_code}' "$API/v1/agents")
[ "$code" = 401 ] || fail "no client certificate: $code"
jq -e .error.code r.json >/dev/null || fail "no JSON reason without a client certificate: $(cat r.json)"
call() { # METHOD PATH [BODY]
	curl -sS --cacert tls/ca.pem --cert tls/admin.pem --key tls/admin-key.pem -o r.json -w '%{http_code}' \
		-X "$1" -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "$API$2"
}
for req in 'POST /v1/agents {' 'POST /v1/agents []' 'POST /v1/agents {"id":"x","address":"a:1"}' \
	"POST /v1/agents {\"id\":\"$ID\"}" "POST /v1/agents {\"id\":\"$ID\",\"address\":\"no-port\"}" \
	"POST /v1/agents {\"id\":\"$ID\",\"address\":\"h:1\",\"interval\":-1}" \
	"POST /v1/agents {\"id\":\"$ID\",\"address\":\"h:1\",\"bank\":\"md5\"}" \
	"POST /v1/agents {\"id\":\"$ID\",\"address\":\"h:1\",\"extra\":1}" \
	"PATCH /v1/agents/$ID {\"interval\":\"1\"}" "PATCH /v1/agents/$ID {\"stop\":true,\"resume\":true}" \
	"PATCH /v1/agents/$ID {\"ima_policy\":\"../x\"}" \
	'POST /v1/policies {"name":"a/b","kind":"pcr","document":"e30="}' \
	'POST /v1/policies {"name":"p","kind":"tpm","document":"e30="}' \
	'POST /v1/policies {"name":"p","kind":"pcr","document":"%%%"}' \
	'POST /v1/policies {"name":"p","kind":"pcr","document":"e30="}' \
	'POST /v1/policies {"name":"p","kind":"ima","document":"bm90IGpzb24="}'; do
	set -- $req
	code=$(call "$1" "$2" "$3")
	[ "$code" = 400 ] || fail "$req -> $code $(cat r.json)"
	jq -e '.error.code and .error.message' r.json >/dev/null || fail "$req: no reason: $(cat r.json)"
done
[ "$(call GET /v1/agents/not-a-uuid)" = 404 ] || fail "bad id"
[ "$(call GET /v1/agents/00000000-0000-4000-8000-000000000000)" = 404 ] || fail "unknown agent"
[ "$(call PATCH /v1/agents/$ID '{"mb_policy":"nope"}')" = 404 ] || fail "unknown policy: $(cat r.json)"
[ "$(call PATCH /v1/agents/$ID '{"mb_policy":"hpe-ima"}')" = 409 ] || fail "policy of the wrong kind: $(cat r.json)"
[ "$(call PUT /v1/agents/$ID '{}')" = 405 ] || fail "wrong method"
head -c 20000000 /dev/zero | tr '\0' 'a' >big.txt
code=$(curl -sS --cacert tls/ca.pem --cert tls/admin.pem --key tls/admin-key.pem -o r.json -w '%{http_code}' \
	-H 'Content-Type: application/json' --data-binary @big.txt "$API/v1/policies")
[ "$code" = 413 ] || fail "oversized body: $code"
# still serving, state intact
status
[ "$(jq -r .state st.json)" = stopped ] || fail "after refusals: $(cat st.json)"

# ---- 12. delete ----
expect 0 "$KUMQUAT" delete "$ID"
expect 1 "$KUMQUAT" status "$ID"
expect 0 "$KUMQUAT" policy delete hpe-ima
kill "$VERIFIER_PID"
wait "$VERIFIER_PID" || fail "the verifier did not stop cleanly on SIGTERM: $(tail -3 verifier.log)"
echo "verifier: attestation, tamper detection, unreachable, restart, events, refusals"
