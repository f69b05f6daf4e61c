# SPDX-License-Identifier: Apache-2.0
# For the integration tests that run a verifier over agents (sourced after
# lib.sh): waiting for states and reasons with `kumquat status`. Expects
# KUMQUAT_VERIFIER_URL and KUMQUAT_CA/CERT/KEY exported, NAME[id] = a name
# for messages, and verifier.log / host.log in the current directory.

status() { "$KUMQUAT" status "$1" --json >st.json 2>st.err || true; }
snapshot() {
	echo "--- status of ${NAME[$1]:-$1}" >&2; cat st.json st.err >&2
	echo "--- verifier log" >&2; tail -25 verifier.log >&2
	echo "--- host agent log" >&2; tail -8 host.log >&2
}
# wait_state ID STATE [SECONDS]: until the agent is in STATE (default 20 s); st.json holds its status
wait_state() {
	local i
	for i in $(seq $((${3:-20} * 5))); do
		status "$1"
		[ "$(jq -r .state st.json 2>/dev/null)" = "$2" ] && return 0
		sleep 0.2
	done
	snapshot "$1"
	fail "${NAME[$1]:-$1} not $2 after ${3:-20} s"
}
# has_reason ID COMPONENT CODE [INDEX]: the agent's current status lists that reason
has_reason() {
	status "$1"
	jq -e --arg c "$2" --arg k "$3" --arg i "${4:-any}" \
		'[.reasons[] | select(.component == $c and .code == $k and ($i == "any" or (.index | tostring) == $i))] | length > 0' \
		st.json >/dev/null || fail "${NAME[$1]}: no reason $2/$3 ${4:-}: $(jq -c .reasons st.json)"
}
# fails_with COMPONENT CODE ID...: each agent fails, with that reason
fails_with() {
	local c=$1 k=$2 id
	shift 2
	for id; do
		wait_state "$id" failed 20
		has_reason "$id" "$c" "$k"
		jq -r --arg n "${NAME[$id]}" '.reasons[] | "   \($n): \(.component)/\(.code) [\(.index)] \(.message)"' st.json
	done
}
# passing ID...: each agent is attesting and has passed two more rounds since this was called
passing() {
	local id i ok s p bad=
	declare -A before
	for id; do status "$id"; before[$id]=$(jq -r '.passes // 0' st.json); done
	for i in $(seq 150); do
		ok=1
		for id; do
			status "$id"
			s=$(jq -r .state st.json 2>/dev/null)
			p=$(jq -r '.passes // 0' st.json 2>/dev/null)
			if [ "$s" = failed ]; then snapshot "$id"; fail "${NAME[$id]} failed: $(jq -c .reasons st.json)"; fi
			[ "$s" = attesting ] && [ "$p" -ge $((before[$id] + 2)) ] || { ok=0; bad=$id; }
		done
		[ $ok = 1 ] && return 0
		sleep 0.2
	done
	status "$bad"
	snapshot "$bad"
	fail "${NAME[$bad]} did not pass two more rounds in 30 s"
}
# still_failed CODE ID...: agents that stay failed with that reason code
still_failed() {
	local k=$1 id
	shift
	for id; do
		status "$id"
		[ "$(jq -r .state st.json)" = failed ] || fail "${NAME[$id]} is no longer failed: $(cat st.json)"
		jq -e --arg k "$k" '[.reasons[] | select(.code == $k)] | length > 0' st.json >/dev/null ||
			fail "${NAME[$id]}: reasons changed: $(jq -c .reasons st.json)"
	done
}
resume() { local id; for id; do expect 0 "$KUMQUAT" update "$id" --resume; done; }
