#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# kumquat ca: a deployment CA and the components' TLS certificates from nothing
# (usable by OpenSSL for a mutual-TLS handshake), refusals, hostile input; then
# a real swtpm EK certificate (swtpm_setup + swtpm_localca, read out of TPM NV
# with tpm2-tools) verifies against its swtpm-localca issuer and certifies the
# TPM's EK, and is refused by the deployment CA.
. "$(dirname "$0")/lib.sh"
need python3 openssl
cd "$KQ_TMP"
K=$KUMQUAT

mode() { stat -c %a "$1"; }
# json FILE PYTHON-EXPR: evaluates EXPR with d = the JSON in FILE; fails unless true
json() {
	python3 - "$1" "$2" <<'PY' || fail "$2 does not hold for $(cat "$1")"
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}
# refuse RC CMD...: exit RC with one "kumquat: ..." line on stderr, no sanitizer report
refuse() {
	local want=$1; shift
	expect "$want" "$@"
	[ "$(wc -l <last.err)" -eq 1 ] || fail "not one line of reason for: $* :: $(cat last.err)"
	grep -q '^kumquat: ' last.err || fail "reason not in 'kumquat: ...' form: $(cat last.err)"
}

# ---- init ----
expect 0 "$K" ca init --dir pki/ca
[ "$(mode pki)" = 700 ] && [ "$(mode pki/ca)" = 700 ] || fail "CA directory not created 0700"
[ "$(mode pki/ca/ca-key.pem)" = 600 ] || fail "CA key mode $(mode pki/ca/ca-key.pem)"
[ "$(mode pki/ca/ca.pem)" = 644 ] || fail "CA cert mode $(mode pki/ca/ca.pem)"
openssl x509 -in pki/ca/ca.pem -noout -ext basicConstraints | grep -q 'CA:TRUE, pathlen:0' || fail "CA flags"
cp pki/ca/ca.pem ca-before.pem
refuse 2 "$K" ca init --dir pki/ca
grep -q 'already holds a CA' last.err || fail "refusal reason: $(cat last.err)"
cmp -s ca-before.pem pki/ca/ca.pem || fail "a refused init changed the CA"
rm pki/ca/ca.pem
refuse 2 "$K" ca init --dir pki/ca # the key alone also counts
expect 0 "$K" ca init --dir pki/ca --force --cn "Example deployment" --org "Example Org" --days 100
cmp -s ca-before.pem pki/ca/ca.pem && fail "--force did not replace the CA"
expect 0 "$K" ca show --json pki/ca/ca.pem
json last.out 'd[0]["subject"] == "O=Example Org, CN=Example deployment" and d[0]["is_ca"] and d[0]["path_len"] == 0 and d[0]["key_type"] == "EC P-256"'
expect 0 "$K" ca init --dir rsa --rsa
expect 0 "$K" ca show --json rsa/ca.pem
json last.out 'd[0]["key_type"] == "RSA 3072"'
refuse 2 "$K" ca init
refuse 2 "$K" ca init --dir x --days 0
refuse 2 "$K" ca init --dir x --days 36501
refuse 2 "$K" ca init --dir x --days 12abc
refuse 2 "$K" ca init --dir x --cn ""
refuse 2 "$K" ca init --dir x extra
expect 2 "$K" ca init --dir x --bogus
refuse 2 "$K" ca init --dir /proc/kq-no-such/ca
[ -e x ] && fail "a refused init left a directory behind"

# ---- issue ----
expect 0 "$K" ca issue --dir pki/ca --name registrar --server --san registrar.example --san 192.0.2.7 --san 2001:db8::7
[ "$(mode pki/ca/registrar-key.pem)" = 600 ] || fail "leaf key mode"
[ "$(mode pki/ca/registrar.pem)" = 644 ] || fail "leaf cert mode"
expect 0 "$K" ca show --json pki/ca/registrar.pem
json last.out 'd[0]["sans"] == ["DNS:localhost", "IP:127.0.0.1", "IP:::1", "DNS:registrar.example", "IP:192.0.2.7", "IP:2001:db8::7"]'
json last.out 'd[0]["eku"] == ["serverAuth"] and not d[0]["is_ca"] and d[0]["subject"] == "CN=registrar" and d[0]["issuer"] == "O=Example Org, CN=Example deployment"'
json last.out 'd[0]["key_usage"] == ["digitalSignature"] and "keyUsage" in d[0]["critical"] and len(d[0]["serial"]) >= 30'
expect 0 "$K" ca issue --dir pki/ca --name tenant --client --cn "operator alice"
expect 0 "$K" ca show --json pki/ca/tenant.pem
json last.out 'd[0]["sans"] == [] and d[0]["eku"] == ["clientAuth"] and d[0]["subject"] == "CN=operator alice"'
expect 0 "$K" ca issue --dir pki/ca --name agent-1.host_a --both --days 1
expect 0 "$K" ca show --json pki/ca/agent-1.host_a.pem
json last.out 'sorted(d[0]["eku"]) == ["clientAuth", "serverAuth"] and "DNS:localhost" in d[0]["sans"]'
expect 0 "$K" ca issue --dir rsa --name verifier --server
expect 0 "$K" ca show --json rsa/verifier.pem
json last.out 'd[0]["key_type"] == "RSA 3072" and d[0]["key_usage"] == ["digitalSignature", "keyEncipherment"]'
# refusals: existing files, names that leave the directory or hit the CA, missing or conflicting options
cp pki/ca/registrar.pem reg-before.pem
refuse 2 "$K" ca issue --dir pki/ca --name registrar --server
grep -q 'already exists' last.err || fail "overwrite reason: $(cat last.err)"
cmp -s reg-before.pem pki/ca/registrar.pem || fail "a refused issue changed the certificate"
expect 0 "$K" ca issue --dir pki/ca --name registrar --server --force
for bad in ../evil a/b "" .hidden -x ca ca-key "sp ace" 'semi;colon' "$(printf 'a%.0s' {1..65})"; do
	refuse 2 "$K" ca issue --dir pki/ca --name "$bad" --server
done
[ -e pki/evil.pem ] || [ -e evil.pem ] && fail "a name escaped the CA directory"
openssl x509 -in pki/ca/ca.pem -noout -ext basicConstraints | grep -q CA:TRUE || fail "the CA was overwritten"
refuse 2 "$K" ca issue --dir pki/ca --name x
refuse 2 "$K" ca issue --dir pki/ca --server
refuse 2 "$K" ca issue --name x --server
refuse 2 "$K" ca issue --dir pki/ca --name x --server --client
refuse 2 "$K" ca issue --dir pki/ca --name x --server --san "bad name"
refuse 2 "$K" ca issue --dir pki/ca --name x --server --san 300.1.2.3.4
refuse 2 "$K" ca issue --dir pki/ca --name x --server --days 0
refuse 2 "$K" ca issue --dir no-ca-here --name x --server
grep -q 'ca init' last.err || fail "no hint to run ca init: $(cat last.err)"
[ -e pki/ca/x.pem ] && fail "a refused issue wrote a certificate"
refuse 2 "$K" ca nonsense
refuse 2 "$K" ca
for c in "" init issue show verify; do
	expect 0 "$K" ca $c --help
	grep -q '^usage: kumquat ca' last.out || fail "ca $c --help"
done

# ---- verify ----
expect 0 "$K" ca verify pki/ca/registrar.pem --ca-dir pki/ca
grep -q '^certificate valid: CN=registrar' last.out || fail "verify output: $(cat last.out)"
refuse 1 "$K" ca verify pki/ca/registrar.pem --ca-dir rsa
refuse 1 "$K" ca verify reg-before.pem --ca-dir rsa
now=$(date +%s)
expect 0 "$K" ca verify pki/ca/agent-1.host_a.pem --ca-dir pki/ca --at $((now + 3600))
refuse 1 "$K" ca verify pki/ca/agent-1.host_a.pem --ca-dir pki/ca --at $((now + 3 * 86400))
grep -q 'expired' last.err || fail "expiry reason: $(cat last.err)"
expect 1 "$K" ca verify pki/ca/agent-1.host_a.pem --ca-dir pki/ca --at $((now + 3 * 86400)) --json
json last.out 'd["valid"] is False and "expired" in d["reason"]'
openssl pkey -in pki/ca/registrar-key.pem -pubout -out registrar.pub 2>/dev/null
openssl pkey -in pki/ca/tenant-key.pem -pubout -out tenant.pub 2>/dev/null
expect 0 "$K" ca verify pki/ca/registrar.pem --ca-dir pki/ca --key registrar.pub --json
json last.out 'd["valid"] and d["key_checked"] and d["anchors"] == 1 and d["certificate"]["subject"] == "CN=registrar"'
refuse 1 "$K" ca verify pki/ca/registrar.pem --ca-dir pki/ca --key tenant.pub
refuse 2 "$K" ca verify pki/ca/registrar.pem
refuse 2 "$K" ca verify --ca-dir pki/ca
refuse 2 "$K" ca verify pki/ca/registrar.pem --ca-dir empty-dir-missing
mkdir empty && refuse 2 "$K" ca verify pki/ca/registrar.pem --ca-dir empty
refuse 2 "$K" ca verify pki/ca/registrar.pem --ca-dir pki/ca --at yesterday
# other tools agree
openssl verify -CAfile pki/ca/ca.pem pki/ca/registrar.pem pki/ca/tenant.pem >/dev/null || fail "openssl verify"
openssl verify -purpose sslserver -CAfile pki/ca/ca.pem pki/ca/registrar.pem >/dev/null || fail "openssl: not a server cert"
openssl verify -purpose sslclient -CAfile pki/ca/ca.pem pki/ca/tenant.pem >/dev/null || fail "openssl: not a client cert"

# mutual TLS with the issued certificates: OpenSSL's server and client on 127.0.0.1
need timeout
for i in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 20000))
	timeout 20 openssl s_server -quiet -naccept 1 -accept 127.0.0.1:$port \
		-cert pki/ca/registrar.pem -key pki/ca/registrar-key.pem -CAfile pki/ca/ca.pem \
		-Verify 1 -verify_return_error >s_server.log 2>&1 &
	spid=$!
	KQ_PIDS+=("$spid")
	sleep 0.5
	kill -0 $spid 2>/dev/null && break
done
echo | timeout 10 openssl s_client -connect 127.0.0.1:$port -servername localhost \
	-cert pki/ca/tenant.pem -key pki/ca/tenant-key.pem -CAfile pki/ca/ca.pem \
	-verify_return_error -verify_hostname localhost >s_client.log 2>&1 || {
	cat s_client.log s_server.log >&2; fail "mutual TLS with the issued certificates"; }
grep -q 'Verify return code: 0 (ok)' s_client.log || fail "TLS: $(cat s_client.log)"

# ---- show: hostile input ----
: >empty.pem
head -c 3000 /dev/urandom >garbage.der
printf '\x30\x82\x10\x00' >short.der
head -c 200 pki/ca/registrar.pem >cut.pem
openssl x509 -in pki/ca/registrar.pem -outform der -out registrar.der
head -c 300 registrar.der >cut.der
for bad in empty.pem garbage.der short.der cut.pem cut.der pki/ca/registrar-key.pem; do
	refuse 1 "$K" ca show $bad
	refuse 1 "$K" ca verify $bad --ca-dir pki/ca
done
refuse 2 "$K" ca show missing-file
refuse 2 "$K" ca show
expect 0 "$K" ca show registrar.der
grep -q '^subject: *CN=registrar' last.out || fail "show DER: $(cat last.out)"
cat pki/ca/registrar.pem pki/ca/ca.pem >chain.pem
expect 0 "$K" ca show chain.pem --json
json last.out 'len(d) == 2 and d[1]["is_ca"]'

# ---- a real EK certificate: swtpm_setup with a private swtpm-localca ----
command -v swtpm_setup >/dev/null || skip "CA CLI checks passed; swtpm_setup is not installed for the EK certificate part"
need swtpm swtpm_localca tpm2_nvread tpm2_readpublic tpm2_getcap
mkdir -p lca state
cat >lca.conf <<EOF
statedir = $KQ_TMP/lca
signingkey = $KQ_TMP/lca/signkey.pem
issuercert = $KQ_TMP/lca/issuercert.pem
certserial = $KQ_TMP/lca/certserial
EOF
printf -- '--platform-manufacturer kumquat\n--platform-version 2.1\n--platform-model test\n' >lca.options
cat >swtpm_setup.conf <<EOF
create_certs_tool = $(command -v swtpm_localca)
create_certs_tool_config = $KQ_TMP/lca.conf
create_certs_tool_options = $KQ_TMP/lca.options
active_pcr_banks = sha256
EOF
swtpm_setup --tpm2 --tpmstate "$KQ_TMP/state" --create-ek-cert --config "$KQ_TMP/swtpm_setup.conf" \
	>swtpm_setup.log 2>&1 || { cat swtpm_setup.log >&2; fail "swtpm_setup"; }
grep -q 'Successfully created RSA 2048 EK' swtpm_setup.log || fail "no RSA EK: $(cat swtpm_setup.log)"

# that manufactured state, served on 127.0.0.1 (as lib.sh's start_swtpm, on our state dir)
for i in 1 2 3 4 5 6 7 8 9 10; do
	port=$((20000 + RANDOM % 20000 * 2))
	swtpm socket --tpm2 --tpmstate dir="$KQ_TMP/state" \
		--server type=tcp,port=$port,bindaddr=127.0.0.1 \
		--ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 \
		--flags not-need-init,startup-clear >swtpm.log 2>&1 &
	pid=$!
	sleep 0.3
	if kill -0 $pid 2>/dev/null; then
		KQ_PIDS+=("$pid")
		export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port"
		tpm2_getcap properties-fixed >/dev/null 2>&1 && break
	fi
	kill $pid 2>/dev/null || true
	[ $i = 10 ] && fail "could not start swtpm: $(cat swtpm.log)"
done

# TCG EK credential profile NV indices: RSA 2048 and ECC EK certificates
t tpm2_nvread 0x1c00002 -o ek-rsa.der 2>/dev/null || fail "no RSA EK certificate in NV"
t tpm2_nvread 0x1c00016 -o ek-ecc.der 2>/dev/null || fail "no ECC EK certificate in NV"
t tpm2_readpublic -c 0x81010001 -f pem -o ek-rsa.pub >/dev/null || fail "no persistent RSA EK"
t tpm2_readpublic -c 0x81010016 -f pem -o ek-ecc.pub >/dev/null || fail "no persistent ECC EK"

expect 0 "$K" ca show ek-rsa.der --json
json last.out 'd[0]["tpm"]["model"] == "swtpm" and d[0]["tpm"]["manufacturer"] == "id:00001014" and d[0]["eku"] == ["tcg-kp-EKCertificate"]'
json last.out '"subjectAltName" in d[0]["critical"] and d[0]["key_usage"] == ["keyEncipherment"] and d[0]["not_after"].startswith("9999")'
expect 0 "$K" ca show ek-rsa.der
grep -q '^TPM: *manufacturer id:00001014' last.out || fail "show EK: $(cat last.out)"

# the swtpm-localca state directory (with its private keys beside the certificates) as trust
expect 0 "$K" ca verify ek-rsa.der --ca-dir lca --key ek-rsa.pub
expect 0 "$K" ca verify ek-ecc.der --ca-dir lca --key ek-ecc.pub
refuse 1 "$K" ca verify ek-rsa.der --ca-dir lca --key ek-ecc.pub
grep -q 'another key' last.err || fail "EK key mismatch reason: $(cat last.err)"
# only the root trusted: the local CA must come as an intermediate
mkdir root-only && cp lca/swtpm-localca-rootca-cert.pem root-only/
refuse 1 "$K" ca verify ek-rsa.der --ca-dir root-only
expect 0 "$K" ca verify ek-rsa.der --ca-dir root-only --intermediate lca/issuercert.pem
# the deployment CA never vouches for an EK
refuse 1 "$K" ca verify ek-rsa.der --ca-dir pki/ca
refuse 1 "$K" ca verify ek-ecc.der --ca-dir pki/ca --intermediate lca/issuercert.pem
# as some TPMs store it: NV padding after the DER, the TCG PC Client header before it
{ cat ek-rsa.der; head -c 500 /dev/zero | tr '\0' '\377'; } >ek-padded.der
expect 0 "$K" ca verify ek-padded.der --ca-dir lca --key ek-rsa.pub
len=$(stat -c %s ek-rsa.der)
{ printf "\\x10\\x01\\x00\\x$(printf %02x $((len >> 8)))\\x$(printf %02x $((len & 255)))"; cat ek-rsa.der; } >ek-tcg.der
expect 0 "$K" ca verify ek-tcg.der --ca-dir lca --key ek-rsa.pub
# a tampered EK certificate fails
bad=$(flip ek-rsa.der 400)
expect 1 "$K" ca verify "$bad" --ca-dir lca
echo "ca-cli: all checks passed"
