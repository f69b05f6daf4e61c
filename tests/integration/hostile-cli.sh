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
echo "hostile inputs rejected cleanly"
