#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Truncated, oversized, empty and garbage inputs to every offline command:
# exit 1 or 2 with a one-line reason, never a crash (run it under ASan too).
. "$(dirname "$0")/lib.sh"
need python3 od
: "${KQ_TESTDATA:?}"
cd "$KQ_TMP"

python3 - "$KQ_TESTDATA" <<'PY'
import base64, json, sys
d = json.load(open(sys.argv[1] + "/quote/hpe-real-quote-with-logs.json"))
for k, f in [("ak_tpm_b64", "ak.pub"), ("message_b64", "msg"), ("signature_b64", "sig"), ("subject_data_b64", "pcrs")]:
    open(f, "wb").write(base64.b64decode(d[k]))
PY
NONCE=536237744e6c71736433327549315a5057744473

# runs a command that must fail cleanly: exit 1 or 2, one line on stderr, no signal
clean_fail() {
	local rc=0
	"$@" >out.txt 2>err.txt || rc=$?
	case $rc in
	1|2) ;;
	*) echo "command: $*" >&2; cat err.txt >&2; fail "exit $rc (expected 1 or 2)";;
	esac
	[ "$(wc -l <err.txt)" -ge 1 ] || fail "no reason printed for: $*"
	grep -q '^kumquat: ' err.txt || fail "reason not in 'kumquat: ...' form for: $*: $(head -1 err.txt)"
	grep -qi 'sanitizer\|runtime error' err.txt && fail "sanitizer report for: $*"
	return 0
}

truncate -s 65M huge
: >empty
head -c 4096 /dev/urandom >garbage

# quote check: each input in turn replaced
expect 0 "$KUMQUAT" quote check --ak ak.pub --message msg --signature sig --pcrs pcrs --nonce $NONCE
for bad in empty garbage huge missing-file; do
	clean_fail "$KUMQUAT" quote check --ak $bad --message msg --signature sig --pcrs pcrs --nonce $NONCE
	clean_fail "$KUMQUAT" quote check --ak ak.pub --message $bad --signature sig --pcrs pcrs --nonce $NONCE
	clean_fail "$KUMQUAT" quote check --ak ak.pub --message msg --signature $bad --pcrs pcrs --nonce $NONCE
	clean_fail "$KUMQUAT" quote check --ak ak.pub --message msg --signature sig --pcrs $bad --nonce $NONCE
done
for f in ak.pub msg sig pcrs; do
	size=$(stat -c %s $f)
	for n in 0 1 2 $((size / 3)) $((size / 2)) $((size - 1)); do
		head -c $n $f >cut
		args=(--ak ak.pub --message msg --signature sig --pcrs pcrs)
		case $f in ak.pub) args[1]=cut;; msg) args[3]=cut;; sig) args[5]=cut;; pcrs) args[7]=cut;; esac
		clean_fail "$KUMQUAT" quote check "${args[@]}" --nonce $NONCE
	done
done
clean_fail "$KUMQUAT" quote check --ak ak.pub --message msg --signature sig --nonce zz
clean_fail "$KUMQUAT" quote check --ak ak.pub --message msg
clean_fail "$KUMQUAT" quote nonsense
clean_fail "$KUMQUAT" nonsense

# event logs and IMA lists
for f in "$KQ_TESTDATA"/eventlog/*.bin "$KQ_TESTDATA"/ima/*.bin "$KQ_TESTDATA"/ima/*.txt; do
	size=$(stat -c %s "$f")
	for n in 7 $((size / 3)) $((size / 2 + 5)); do
		head -c $n "$f" >cut
		for cmd in "eventlog replay" "eventlog show" "ima replay"; do
			rc=0; "$KUMQUAT" $cmd cut >out.txt 2>err.txt || rc=$?
			[ $rc -le 2 ] || fail "$cmd on a truncated $(basename "$f"): exit $rc"
		done
	done
done
for bad in empty garbage huge missing-file; do
	clean_fail "$KUMQUAT" eventlog replay $bad
	clean_fail "$KUMQUAT" eventlog show $bad
done
for bad in garbage huge missing-file; do
	clean_fail "$KUMQUAT" ima replay $bad
done
# an empty IMA list is well-formed: no entries, PCR 10 untouched (a verifier
# then finds it does not explain a quoted PCR 10)
expect 0 "$KUMQUAT" ima replay --json empty
grep -q '"entries":0' last.out || fail "empty IMA list: $(cat last.out)"
clean_fail "$KUMQUAT" ima verify-sigs "$KQ_TESTDATA/ima/ibm-acs-ima-sig.bin" --key garbage
clean_fail "$KUMQUAT" makecredential --ek garbage --name 000b --secret empty --output x

# the verifier's commands (no verifier runs here): bad arguments are refused
# before anything is sent (exit 2), good ones get as far as the network and
# fail there (exit 1); always one "kumquat: " line on stderr
one_line() {
	local want=$1; shift
	expect "$want" "$@"
	[ "$(wc -l <last.err)" = 1 ] && grep -q '^kumquat: ' last.err ||
		fail "not one 'kumquat: ' line for: $*: $(cat last.err)"
}
expect 0 "$KUMQUAT" ca init --dir tls
expect 0 "$KUMQUAT" ca issue --dir tls --name admin --client
export KUMQUAT_VERIFIER_URL=https://127.0.0.1:1 KUMQUAT_CA=$KQ_TMP/tls/ca.pem \
	KUMQUAT_CERT=$KQ_TMP/tls/admin.pem KUMQUAT_KEY=$KQ_TMP/tls/admin-key.pem
ID=0a1b2c3d-0000-4000-8000-00000000000f
echo '{"sha256": {"0": "00"}}' >pol.json
expect 0 "$KUMQUAT" add --help
expect 0 "$KUMQUAT" policy --help
# missing, extra, unknown and contradicting options
one_line 2 "$KUMQUAT" add $ID
one_line 2 "$KUMQUAT" add --address h:1
one_line 2 "$KUMQUAT" add $ID --address h:1 extra
one_line 2 "$KUMQUAT" add $ID --address
one_line 2 "$KUMQUAT" add $ID --address h:1 --bogus
one_line 2 "$KUMQUAT" add $ID --address h:1 --stop
one_line 2 "$KUMQUAT" add $ID --address h:1 --json
one_line 2 "$KUMQUAT" update $ID
one_line 2 "$KUMQUAT" update $ID --stop --resume
one_line 2 "$KUMQUAT" update $ID --ima-policy a --no-ima-policy
one_line 2 "$KUMQUAT" update $ID --history
one_line 2 "$KUMQUAT" delete
one_line 2 "$KUMQUAT" delete $ID $ID
one_line 2 "$KUMQUAT" status
one_line 2 "$KUMQUAT" status $ID --stop
one_line 2 "$KUMQUAT" list extra
one_line 2 "$KUMQUAT" list --address h:1
one_line 2 "$KUMQUAT" policy
one_line 2 "$KUMQUAT" policy frob
one_line 2 "$KUMQUAT" policy add p --kind ima
one_line 2 "$KUMQUAT" policy add p --file pol.json
one_line 2 "$KUMQUAT" policy add --kind ima --file pol.json
one_line 2 "$KUMQUAT" policy show p extra
one_line 2 "$KUMQUAT" policy show p --kind ima
one_line 2 "$KUMQUAT" policy list extra
one_line 2 "$KUMQUAT" policy delete
one_line 2 env -u KUMQUAT_VERIFIER_URL "$KUMQUAT" list
one_line 2 env -u KUMQUAT_KEY "$KUMQUAT" policy list
# bad values
for bad in '' xyz ../../etc 0a1b2c3d-0000-4000-8000-00000000000 0a1b2c3d-0000-4000-8000-00000000000f0 \
	0a1b2c3d00000-4000-8000-00000000000f 0a1b2c3d-0000-4000-8000-00000000000g "$ID/history"; do
	one_line 2 "$KUMQUAT" add "$bad" --address h:1
	one_line 2 "$KUMQUAT" update "$bad" --stop
	one_line 2 "$KUMQUAT" delete "$bad"
	one_line 2 "$KUMQUAT" status "$bad"
done
long=$(printf 'n%.0s' $(seq 65))
for bad in '' . .. a/b 'a b' 'a?b' $'a\nb' "$long" 'caf\xc3\xa9'; do
	one_line 2 "$KUMQUAT" add $ID --address h:1 --pcr-policy "$bad"
	one_line 2 "$KUMQUAT" update $ID --mb-policy "$bad"
	one_line 2 "$KUMQUAT" policy add "$bad" --kind pcr --file pol.json
	one_line 2 "$KUMQUAT" policy show "$bad"
	one_line 2 "$KUMQUAT" policy delete "$bad"
done
for bad in '' -1 86401 1.5 0x10 ' 5' 99999999999999999999999; do
	one_line 2 "$KUMQUAT" add $ID --address h:1 --interval "$bad"
	one_line 2 "$KUMQUAT" update $ID --interval "$bad"
done
for bad in '' h h: :1 h:0 h:65536 h:-1 h:1x ::1:443 '[::1]' '[::1]:' '[zz]:1' '[]:1' '[1.2.3.4]:1' \
	'a b:1' -h:1 h/x:1 'h%0a:1' "$long.$long.$long.$long:1"; do
	one_line 2 "$KUMQUAT" add $ID --address "$bad"
	one_line 2 "$KUMQUAT" update $ID --address "$bad"
done
for bad in '' md5 sha257 sm3_256; do
	one_line 2 "$KUMQUAT" add $ID --address h:1 --bank "$bad"
done
for bad in '' foo PCR 'ima '; do
	one_line 2 "$KUMQUAT" policy add p --kind "$bad" --file pol.json
done
for bad in missing-file huge .; do
	one_line 2 "$KUMQUAT" policy add p --kind ima --file $bad
done
# good values: refused only because nothing listens
for good in "$ID" 0A1B2C3D-0000-4000-8000-00000000000F; do
	one_line 1 "$KUMQUAT" add "$good" --address h:1
	one_line 1 "$KUMQUAT" status "$good"
done
one_line 1 "$KUMQUAT" add $ID --address '[::1]:65535' --interval 86400 --bank sha-1 --pcr-policy "${long:1}" \
	--mb-policy A.b_c-9 --ima-policy ...
one_line 1 "$KUMQUAT" add $ID --address host-1.example:8892 --interval 0
one_line 1 "$KUMQUAT" update $ID --no-pcr-policy --no-mb-policy --no-ima-policy --resume
one_line 1 "$KUMQUAT" update $ID --stop
one_line 1 "$KUMQUAT" delete $ID
one_line 1 "$KUMQUAT" status $ID --json --history
one_line 1 "$KUMQUAT" list --json
one_line 1 "$KUMQUAT" policy add p --kind pcr --file pol.json
one_line 1 "$KUMQUAT" policy add p --kind mb --file empty
one_line 1 env KUMQUAT_VERIFIER_URL= "$KUMQUAT" policy add p --kind ima --file - --url https://127.0.0.1:1 <pol.json
one_line 1 "$KUMQUAT" policy show p --json --document out.json
one_line 1 "$KUMQUAT" policy list
one_line 1 "$KUMQUAT" policy delete p
[ ! -e out.json ] || fail "policy show wrote a document though nothing answered"
echo "hostile inputs rejected cleanly"
