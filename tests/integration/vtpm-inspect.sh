#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# kumquat-vtpm-mgr inspect on vTPM states made by Debian's swtpm_setup (with
# swtpm_localca EK certificates): the EKs and EK certificates it reads from
# the saved state with libtpms are those swtpm itself serves to tpm2-tools
# (tpm2_readpublic, tpm2_nvread) from the same state; the state is left
# untouched, also while swtpm runs on it; --expect-cert; an RSA 3072 EK;
# refusals with one line of reason for empty, truncated, corrupt, encrypted
# and TPM 1.2 states, and no crash (or sanitizer report) on any of them.
. "$(dirname "$0")/lib.sh"
need swtpm swtpm_setup swtpm_localca tpm2_readpublic tpm2_nvread tpm2_getcap openssl python3 sha256sum
: "${KQ_BUILD:?}"
VMGR=${KQ_VTPM_MGR:-$KQ_BUILD/vtpm-mgr/kumquat-vtpm-mgr}
[ -x "$VMGR" ] || skip "kumquat-vtpm-mgr was not built"
cd "$KQ_TMP"

step() { echo "== $*"; }
# json FILE PYTHON-EXPR: evaluates EXPR with d = the JSON in FILE; fails unless true
json() {
	python3 - "$1" "$2" <<'PY' || fail "$2 does not hold for $(cat "$1")"
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
# refuse RC WHAT ARGS...: exit RC with one line of reason containing WHAT, no sanitizer report
refuse() {
	local want=$1 what=$2; shift 2
	expect "$want" "$VMGR" inspect "$@"
	[ "$(wc -l <last.err)" -eq 1 ] || fail "not one line of reason for: $* :: $(cat last.err)"
	grep -q '^kumquat-vtpm-mgr inspect: ' last.err || fail "reason form: $(cat last.err)"
	grep -q -- "$what" last.err || fail "reason lacks '$what': $(cat last.err)"
}
# tree DIR: names, sizes and hashes of everything in DIR
tree() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
# setup DIR ARGS...: a vTPM state in DIR/state as provision_swtpm makes it, with more swtpm_setup options
setup() {
	local dir=$1; shift
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
		--config "$dir/setup.conf" --overwrite "$@" >"$dir/setup.log" 2>&1
}

step "a vTPM as libvirt's swtpm_setup leaves it"
provision_swtpm "$KQ_TMP/vm"
S=$KQ_TMP/vm/state
tree "$S" >before.tree
expect 0 "$VMGR" inspect "$S" --json
cp last.out a.json
json a.json 'd["state_dir"] == "'"$S"'"'
json a.json '[e["handle"] for e in d["eks"]] == ["0x81010001", "0x81010016"]'
json a.json '[c["nv_index"] for c in d["ek_certs"]] == ["0x01c00002", "0x01c00016"]'
json a.json 'all(c["matches_ek"] for c in d["ek_certs"]) and "notes" not in d'
json a.json 'd["eks"][0]["public"]["rsa"]["e"] == 65537 and d["eks"][1]["public"]["ecc"]["curve"] == "secp384r1"'
# the state file given directly, text output
expect 0 "$VMGR" inspect "$S/tpm2-00.permall"
grep -q '^EK 0x81010001: rsa 2048, exponent 65537$' last.out || fail "text output: $(cat last.out)"
[ "$(grep -c ': matches the EK$' last.out)" = 2 ] || fail "text output: $(cat last.out)"
tree "$S" >after.tree
cmp -s before.tree after.tree || fail "inspect changed the state directory: $(diff before.tree after.tree)"

step "the same EKs and certificates from swtpm and tpm2-tools"
cp -a "$S" run
start_swtpm "$KQ_TMP/run"
tpm2_getcap handles-persistent | sed -n 's/^- //p' | tr 'A-F' 'a-f' >handles
printf '0x81010001\n0x81010016\n' | cmp -s - handles || fail "persistent handles: $(cat handles)"
tpm2_getcap handles-nv-index | sed -n 's/^- //p' | tr 'A-F' 'a-f' >nv
printf '0x1c00002\n0x1c00016\n' | cmp -s - nv || fail "NV indices: $(cat nv)"
for i in 0 1; do
	h=$(jget a.json "d['eks'][$i]['handle']")
	t tpm2_readpublic -c "$h" -f pem -o "ek$i.pem" >"ek$i.yaml" || fail "tpm2_readpublic $h"
	[ "$(sed -n 's/^name: //p' "ek$i.yaml")" = "$(jget a.json "d['eks'][$i]['name']")" ] ||
		fail "EK $h: name differs from tpm2_readpublic's"
	n=$(jget a.json "d['ek_certs'][$i]['nv_index']")
	t tpm2_nvread "$n" -C "$n" -o "nv$i.bin" 2>/dev/null || fail "tpm2_nvread $n"
	jget a.json "d['ek_certs'][$i]['der_b64']" | openssl base64 -d -A >"cert$i.der"
	cmp -s "cert$i.der" "nv$i.bin" || fail "NV $n: certificate differs from tpm2_nvread's"
	# and the EK public key in the certificate is tpm2_readpublic's
	openssl x509 -inform der -in "cert$i.der" -noout -pubkey | openssl pkey -pubin -outform der >"cert$i.pub"
	openssl pkey -pubin -in "ek$i.pem" -outform der >"ek$i.pub"
	cmp -s "cert$i.pub" "ek$i.pub" || fail "EK $h: key differs from its certificate's"
done
mod=$(openssl rsa -pubin -in ek0.pem -noout -modulus | sed 's/^Modulus=//' | tr 'A-F' 'a-f')
[ "$mod" = "$(jget a.json "d['eks'][0]['public']['rsa']['n']")" ] || fail "RSA modulus differs"
x=$(sed -n 's/^x: //p' ek1.yaml)
[ "$x" = "$(jget a.json "d['eks'][1]['public']['ecc']['x']")" ] || fail "ECC x differs ($x)"
[ "$(sed -n "s/^y: //p" ek1.yaml)" = "$(jget a.json "d['eks'][1]['public']['ecc']['y']")" ] || fail "ECC y differs"
# while swtpm runs on it (and after it has written to it), the state still reads
expect 0 "$VMGR" inspect "$KQ_TMP/run" --json
json last.out '[e["name"] for e in d["eks"]] == [e["name"] for e in json.load(open("a.json"))["eks"]]'
kill -0 "$SWTPM_PID" || fail "swtpm died"
t tpm2_readpublic -c 0x81010001 >/dev/null || fail "swtpm stopped answering"

step "--expect-cert and --state-dir"
VM=5a0c1f8e-0000-4000-8000-00000000beef
openssl x509 -inform der -in cert1.der -out cert1.pem
expect 0 "$VMGR" inspect "$VM" --state-dir "$S" --expect-cert cert0.der --json
json last.out 'd["vm_uuid"] == "'$VM'" and d["expected_cert"] == {"found": True, "matches_ek": True, "nv_index": "0x01c00002"}'
expect 0 "$VMGR" inspect "$S" --expect-cert cert1.pem
grep -q '^expected certificate: in NV 0x01c00016, for its EK$' last.out || fail "$(cat last.out)"
refuse 1 "not in the vTPM's NV" "$S" --expect-cert "$KQ_TMP/vm/localca/issuercert.pem"
# a certificate issued for this vTPM earlier (another swtpm_setup run) is not the one in NV
setup "$KQ_TMP/vm2" || fail "swtpm_setup: $(cat "$KQ_TMP/vm2/setup.log")"
refuse 1 "not in the vTPM's NV" "$KQ_TMP/vm2/state" --expect-cert cert0.der
refuse 2 "expect-cert" "$S" --expect-cert nonexistent.pem
refuse 2 "No such file" 5a0c1f8e-0000-4000-8000-00000000dead
refuse 2 "goes with a VM UUID" "$S" --state-dir "$S"

step "an RSA 3072 EK"
if setup "$KQ_TMP/big" --rsa-keysize 3072; then
	expect 0 "$VMGR" inspect "$KQ_TMP/big/state" --json
	json last.out '[(e["handle"], e.get("bits")) for e in d["eks"]] == [("0x8101001c", 3072), ("0x81010016", None)]'
	json last.out '[c["nv_index"] for c in d["ek_certs"]] == ["0x01c0001c", "0x01c00016"] and all(c["matches_ek"] for c in d["ek_certs"])'
else
	echo "swtpm_setup cannot make RSA 3072 EKs here: $(tail -1 "$KQ_TMP/big/setup.log")"
fi

step "states it refuses"
B=$KQ_TMP/bad
mkdir -p "$B"
F=$B/tpm2-00.permall
: >"$F"
refuse 1 "empty" "$B"
head -c 2000 "$S/tpm2-00.permall" >"$F"
refuse 1 "truncated" "$B"
head -c 7 "$S/tpm2-00.permall" >"$F"
refuse 1 "truncated" "$B"
head -c 4096 /dev/urandom >"$F"
expect 1 "$VMGR" inspect "$B"
# a whole header and record around a truncated libtpms state: libtpms refuses it
python3 - "$S/tpm2-00.permall" "$F" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
blob = d[16:16 + (len(d) - 16) // 2]
open(sys.argv[2], 'wb').write(struct.pack('>BBHHI', 2, 1, 10, 0, 16 + len(blob)) + struct.pack('>HI', 1, len(blob)) + blob)
PY
refuse 1 "cannot load the state" "$B"
# single flipped bytes in libtpms' part (the header is the unit test's): a
# clear refusal or a state libtpms accepts. libtpms 0.9.2 itself crashes on a
# few such states (swtpm too); that stays in the worker, and is a refusal.
for i in $(seq 12); do
	cp "$(flip "$S/tpm2-00.permall" 16)" "$F"
	rc=0
	"$VMGR" inspect "$B" --json >flip.out 2>flip.err || rc=$?
	case $rc in
	0 | 1) ;;
	*) fail "flipped byte: exit $rc: $(cat flip.err)" ;;
	esac
	if grep -q 'Sanitizer\|runtime error' flip.err && ! grep -q 'libtpms worker was killed' flip.err; then
		fail "$(cat flip.err)"
	fi
done
# one of those: libtpms reads out of bounds (SIGSEGV) loading it
python3 - "$S/tpm2-00.permall" "$F" <<'PY'
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
d[1635] ^= 0xff
open(sys.argv[2], 'wb').write(d)
PY
rc=0
"$VMGR" inspect "$B" >flip.out 2>flip.err || rc=$?
[ "$rc" = 1 ] || fail "a state libtpms may crash on: exit $rc: $(cat flip.err)"
tail -1 flip.err | grep -q '^kumquat-vtpm-mgr inspect: ' || fail "no reason given: $(cat flip.err)"
grep -q 'killed by signal' flip.err && echo "libtpms crashed on it, in the worker"
# encrypted by swtpm (--keyfile): refused as unreadable
head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >key
if setup "$KQ_TMP/enc" --keyfile "$KQ_TMP/key"; then
	refuse 2 "encrypted" "$KQ_TMP/enc/state"
else
	echo "swtpm_setup --keyfile failed here: $(tail -1 "$KQ_TMP/enc/setup.log")"
fi
# in a state directory, which swtpm's user may write: no links, FIFOs or devices
ln -sf "$S/tpm2-00.permall" "$F"
refuse 2 "symbolic link" "$B"
expect 0 "$VMGR" inspect "$F" # named by the user, it is followed
rm -f "$F"
mkfifo "$F"
refuse 2 "not a regular file" "$B"
rm -f "$F"
refuse 2 "no tpm2-00.permall" "$B"
: >"$B/tpm-00.permall"
refuse 2 "TPM 1.2" "$B"
refuse 2 "not a directory or a file" /dev/null
echo "OK"
