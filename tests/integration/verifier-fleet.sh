#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The verifier attests a fleet concurrently, and dead hosts do not slow the
# others down (docs/verifier.md, "Attestation rounds"): fleet-sim serves 20
# simulated host agents (software AKs, real evidence) enrolled at a real
# registrar, 4 of them dead (`fleet-sim serve --hang`: their requests are
# taken and never answered). With [attest] interval 1, timeout_ms 2000,
# retries 0 and 2 evaluation workers, over a 10 s window every healthy host
# keeps attesting at about its interval with only passing verdicts while each
# dead host holds a round open for 2 s at a time, and the dead hosts are
# unreachable with reason transport/timeout. Both daemons then stop promptly
# on SIGTERM with dead hosts' rounds in flight.
. "$(dirname "$0")/lib.sh"
need jq
: "${KQ_BUILD:?}" "${KQ_TESTDATA:?}"
[ -n "${KQ_FLEET_SIM:-}" ] && [ -x "$KQ_FLEET_SIM" ] || skip "KQ_FLEET_SIM (tests/bench/fleet-sim) is not built"
REG=$KQ_BUILD/registrar/kumquat-registrar
VERIFIER=$KQ_BUILD/verifier/kumquat-verifier
[ -x "$REG" ] && [ -x "$VERIFIER" ] || skip "kumquat-registrar or kumquat-verifier is not built"
cd "$KQ_TMP"

N=20        # simulated hosts
DEAD=4      # hosts 0..DEAD-1 never answer
WINDOW=10   # seconds over which the healthy hosts' verdicts are counted
MIN_VERDICTS=6 # of about 10 at interval 1: slack for a loaded 2-core machine
T0=$SECONDS
step() { echo "== [$((SECONDS - T0)) s] $*"; }
# dump: the daemons' last lines, for a failure
dump() { for f in registrar.log fleet.log verifier.log; do echo "--- $f" >&2; tail -15 "$f" >&2; done; }
die() { dump; fail "$@"; }

# ---- keys, TLS, policies ----
step "keys for $N hosts, TLS"
# RSA keys take a while to make: meson keeps them in the build dir (shared with bench-verifier)
KEYS=${KQ_FLEET_KEYS:-$KQ_TMP/fleet-keys}
"$KQ_FLEET_SIM" keygen --dir "$KEYS" --hosts $N >keygen.log 2>&1 || { cat keygen.log >&2; fail "fleet-sim keygen"; }
cp "$KEYS/pcr-policy.json" "$KEYS/ima-policy.json" .
ids=()
for i in $(seq 0 $((N - 1))); do ids+=("$(printf 'f1ee7000-0000-4000-8000-%012x' "$i")"); done
for id in "${ids[@]}"; do
	grep -qx "$id" "$KEYS/ids" || fail "fleet-sim's host ids are not the expected ones: $KEYS/ids"
done
dead=("${ids[@]:0:DEAD}")
healthy=("${ids[@]:DEAD}")

expect 0 "$KUMQUAT" ca init --dir tls
for n in registrar fleet verifier; do expect 0 "$KUMQUAT" ca issue --dir tls --name $n --server; done
for n in verifier-client admin; do expect 0 "$KUMQUAT" ca issue --dir tls --name $n --client; done

# ---- daemons ----
step "registrar, fleet-sim, verifier"
start_registrar "$KEYS/ek-ca"

"$KQ_FLEET_SIM" serve --dir "$KEYS" --hosts $N --hang $DEAD --hang-ms 5000 \
	--cert tls/fleet.pem --key tls/fleet-key.pem --client-ca tls/ca.pem \
	--registrar "$REG_URL" --registrar-ca tls/ca.pem >fleet.log 2>&1 &
FLEET_PID=$!
KQ_PIDS+=($FLEET_PID)
FLEET_PORT=$(wait_listening fleet.log)
for i in $(seq 300); do
	grep -q 'ready:' fleet.log && break
	kill -0 $FLEET_PID 2>/dev/null || die "fleet-sim exited"
	sleep 0.1
done
grep -q 'ready:' fleet.log || die "fleet-sim did not enrol its hosts in 30 s"
DEAD_PORT=$(sed -n 's/.*hung hosts on https:\/\/[^:]*:\([0-9]*\).*/\1/p' fleet.log | head -1)
[ -n "$DEAD_PORT" ] || die "fleet-sim did not say where the hung hosts are"

verifier_conf >verifier.conf
cat >>verifier.conf <<EOC
[attest]
interval = 1
timeout_ms = 2000
retries = 0
workers = 2
[log]
level = info
EOC
"$VERIFIER" --config verifier.conf >verifier.log 2>&1 &
VERIFIER_PID=$!
KQ_PIDS+=($VERIFIER_PID)
export KUMQUAT_VERIFIER_URL=https://127.0.0.1:$(wait_listening verifier.log)
export KUMQUAT_CA=$KQ_TMP/tls/ca.pem KUMQUAT_CERT=$KQ_TMP/tls/admin.pem KUMQUAT_KEY=$KQ_TMP/tls/admin-key.pem

# ---- the fleet ----
step "policies and $N agents ($DEAD dead)"
expect 0 "$KUMQUAT" policy add fleet-pcr --kind pcr --file pcr-policy.json
expect 0 "$KUMQUAT" policy add fleet-ima --kind ima --file ima-policy.json
for i in "${!ids[@]}"; do
	port=$FLEET_PORT
	[ $i -lt $DEAD ] && port=$DEAD_PORT
	expect 0 "$KUMQUAT" add "${ids[$i]}" --address "127.0.0.1:$port" --interval 1 \
		--pcr-policy fleet-pcr --ima-policy fleet-ima
done

# list: all agents as JSON in list.json
list() { "$KUMQUAT" list --json >list.json 2>list.err || die "kumquat list --json: $(cat list.err)"; }
DEAD_JSON=$(printf '%s\n' "${dead[@]}" | jq -R . | jq -s -c .)
# q FILTER: jq over list.json, with $dead (the dead hosts' ids) and healthy/dead_agents defined
q() {
	jq -r --argjson dead "$DEAD_JSON" '
		def dead_agents: [.agents[] | select(.id | IN($dead[]))];
		def healthy: [.agents[] | select((.id | IN($dead[])) | not)];
		'"$1" list.json
}
# healthy hosts attesting with only passing verdicts, and dead hosts unreachable: "H D"
counts() {
	q '"\(healthy | map(select(.state == "attesting" and .verdicts > 0 and .passes == .verdicts)) | length)" +
		" \(dead_agents | map(select(.state == "unreachable")) | length)"'
}
agent() { q ".agents[] | select(.id == \"$1\") | tojson"; }

step "every healthy host attesting, every dead host unreachable"
ok=
for i in $(seq 150); do
	list
	[ "$(counts)" = "$((N - DEAD)) $DEAD" ] && { ok=1; break; }
	kill -0 $VERIFIER_PID 2>/dev/null || die "the verifier exited"
	sleep 0.2
done
if [ -z "$ok" ]; then
	q '.agents[] | {id, state, verdicts, passes, reasons} | tojson' >&2
	die "fleet not settled in 30 s: $(counts)"
fi
step "settled: $(counts)"

# ---- the window: healthy hosts keep their interval while the dead ones time out ----
step "counting verdicts over $WINDOW s"
list
cp list.json list0.json
t_start=$(date +%s%N)
t_end=$((t_start + WINDOW * 1000000000))
samples=0
while :; do
	sleep 0.5
	list
	samples=$((samples + 1))
	# at every sample: no healthy host has left attesting or failed a verdict, no dead one has come back
	[ "$(counts)" = "$((N - DEAD)) $DEAD" ] || die "after $samples samples: $(q '.agents[] |
		select(.state != "attesting" or .passes != .verdicts) | tojson')"
	[ "$(date +%s%N)" -ge $t_end ] && break
done
elapsed_ms=$((($(date +%s%N) - t_start) / 1000000))
# per healthy host: verdicts in the window
jq -r --slurpfile before list0.json --argjson dead "$DEAD_JSON" '
	($before[0].agents | map({(.id): .verdicts}) | add) as $v0 |
	.agents[] | select((.id | IN($dead[])) | not) | "\(.id) \(.verdicts - $v0[.id])"' list.json >window.txt
read -r min max total < <(awk 'NR == 1 { min = $2; max = $2 }
	{ if ($2 < min) min = $2; if ($2 > max) max = $2; t += $2 } END { print min, max, t }' window.txt)
echo "healthy hosts: $min to $max verdicts each (total $total) in $elapsed_ms ms, $samples samples, at interval 1"
[ "$(wc -l <window.txt)" = $((N - DEAD)) ] || die "window: $(cat window.txt)"
[ "$min" -ge $MIN_VERDICTS ] ||
	die "a healthy host got only $min verdicts in $WINDOW s (at least $MIN_VERDICTS expected): $(cat window.txt)"

for id in "${dead[@]}"; do
	q ".agents[] | select(.id == \"$id\") | .state == \"unreachable\" and .verdicts == 0 and
		.reasons[0].component == \"transport\" and .reasons[0].code == \"timeout\"" | grep -qx true ||
		die "dead host $id: $(agent "$id")"
done
# the healthy hosts' history holds no other state than attesting
for id in "${healthy[@]}"; do
	"$KUMQUAT" status "$id" --json --history >st.json 2>st.err || die "status $id: $(cat st.json st.err)"
	jq -e '.state == "attesting" and
		([.history[] | select(.state != "attesting" or .pass != true)] | length == 0)' st.json >/dev/null ||
		die "host $id history: $(jq -c .history st.json)"
done

# ---- the CLI's list names them all ----
expect 0 "$KUMQUAT" list
for id in "${ids[@]}"; do grep -q "$id" last.out || fail "kumquat list does not show $id: $(cat last.out)"; done
[ "$(grep -c unreachable last.out)" = $DEAD ] || fail "kumquat list: not $DEAD unreachable: $(cat last.out)"
[ "$(grep -c attesting last.out)" = $((N - DEAD)) ] || fail "kumquat list: not $((N - DEAD)) attesting: $(cat last.out)"

# ---- stopping, with dead hosts' rounds and held requests in flight ----
step "SIGTERM to the verifier and fleet-sim"
stop() { # NAME PID: SIGTERM, a clean exit within 5 s
	local t=$(date +%s%N) rc=0 ms
	kill "$2"
	wait "$2" || rc=$?
	ms=$((($(date +%s%N) - t) / 1000000))
	[ $rc = 0 ] || die "$1 did not stop cleanly on SIGTERM (exit $rc)"
	[ $ms -le 5000 ] || die "$1 took $ms ms to stop"
	echo "$1 stopped in $ms ms"
}
stop verifier $VERIFIER_PID
stop fleet-sim $FLEET_PID
# the verifier kept trying the dead hosts: a round about every timeout + 1 s backoff each
held=$(sed -n 's/.*refused [0-9]*, held \([0-9]*\),.*/\1/p' fleet.log)
[ -n "$held" ] && [ "$held" -ge $((DEAD * 3)) ] || die "the dead hosts were asked only ${held:-?} times"
grep -E '^error |runtime error|Sanitizer' verifier.log fleet.log && die "errors in the logs"
for id in "${healthy[@]}"; do
	grep "$id" verifier.log | grep -v -e 'added by admin' -e '-> attesting' &&
		die "the verifier logged about healthy host $id"
done
echo "verifier: $((N - DEAD)) hosts attesting at their interval alongside $DEAD dead ones ($held requests held);" \
	"$((SECONDS - T0)) s"
