#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# kumquat-registrar and kumquat-host-agent over real HTTPS on 127.0.0.1, with
# swtpm as the host's TPM provisioned by swtpm_setup --create-ek-cert (its
# local CA plays the TPM vendor CA): enrolment, vTPM-CA certification,
# restarts, admin API auth, and refusals that store nothing.
. "$(dirname "$0")/lib.sh"
need swtpm swtpm_setup curl openssl jq
: "${KQ_BUILD:?}"
REG=$KQ_BUILD/registrar/kumquat-registrar
AGENT=$KQ_BUILD/host-agent/kumquat-host-agent
cd "$KQ_TMP"

provision_swtpm "$KQ_TMP/host"
start_swtpm "$KQ_TMP/host/state"
mkdir -p ek-ca tls
cp host/localca/issuercert.pem host/localca/swtpm-localca-rootca-cert.pem ek-ca/

expect 0 "$KUMQUAT" ca init --dir tls
expect 0 "$KUMQUAT" ca issue --dir tls --name registrar --server
expect 0 "$KUMQUAT" ca issue --dir tls --name admin --client

write_registrar_conf() { # ek_ca_dir
	cat >registrar.conf <<EOC
[server]
listen = 127.0.0.1
port = 0
cert = $KQ_TMP/tls/registrar.pem
key = $KQ_TMP/tls/registrar-key.pem
client_ca = $KQ_TMP/tls/ca.pem
[registrar]
database = $KQ_TMP/registrar.db
ek_ca_dir = $1
require_ek_cert = true
EOC
}
REG_PID=
restart_registrar() {
	: >registrar.log
	"$REG" --config registrar.conf >registrar.log 2>&1 &
	REG_PID=$!
	KQ_PIDS+=("$REG_PID")
	PORT=$(wait_listening registrar.log)
	URL=https://127.0.0.1:$PORT
}
# a clean stop exits 0 (under ASan a leak would make it fail)
stop_registrar() {
	local rc=0
	kill "$REG_PID"
	wait "$REG_PID" 2>/dev/null || rc=$?
	[ $rc = 0 ] || fail "the registrar exited with $rc on SIGTERM: $(tail -5 registrar.log)"
}
write_agent_conf() { # id
	cat >agent.conf <<EOC
[agent]
id = $1
state_dir = $KQ_TMP/agent-state
contact = https://127.0.0.1:1
[tpm]
tcti = $KQ_TCTI
ak_handle = 0x81010010
ca_key_handle = 0x81010020
[registrar]
url = $URL
ca = $KQ_TMP/tls/ca.pem
EOC
}
admin() { # method path
	curl -sS --cacert tls/ca.pem --cert tls/admin.pem --key tls/admin-key.pem -X "$1" "$URL$2"
}
anon() { # method path [body] -> prints "STATUS BODY"
	curl -sS --cacert tls/ca.pem -X "$1" -o body.json -w '%{http_code}' \
		${3:+-H 'Content-Type: application/json' --data-binary "$3"} "$URL$2"
}
count_agents() { admin GET /v1/agents | jq '.agents | length'; }

# the shipped example configs are valid (the daemons get past config and fail
# later, on files this machine does not have)
for d in "$REG registrar" "$AGENT host-agent"; do
	set -- $d
	# nothing may be written outside the test's folder: the database goes there
	sed "s|^database = .*|database = $KQ_TMP/example.db|" "$KQ_SOURCE/$2/$2.conf.example" >example.conf
	rc=0; timeout 10 "$1" --config example.conf >/dev/null 2>example.err || rc=$?
	[ $rc = 1 ] || fail "$2 with its example config: exit $rc"
	grep -q "config:" example.err && fail "$2 example config: $(cat example.err)"
done

# --- enrolment ---------------------------------------------------------------
write_registrar_conf "$KQ_TMP/ek-ca"
restart_registrar
ID=7f3c2a10-5b4e-4c1d-9a8b-0123456789ab
write_agent_conf $ID
expect 0 "$AGENT" --config agent.conf --enrol-only
admin GET /v1/agents/$ID >show.json
[ "$(jq -r .kind show.json)" = host ] || fail "not enrolled as a host: $(cat show.json)"
[ "$(jq -r .ek_cert show.json)" = true ] || fail "EK certificate not recorded"
[ "$(jq -r .vtpm_ca_name show.json)" != null ] || fail "vTPM CA not recorded: $(cat show.json)"
AK1=$(jq -r .ak_name show.json)
echo "enrolled: AK $AK1, vTPM CA $(jq -r .vtpm_ca_name show.json)"
# the vTPM-CA key in the TPM signs X.509 certificates, and it is the key the registrar recorded
"$KQ_CA_SIGN" >tpm-signed.pem 2>ca-name.txt || fail "signing through the TPM: $(cat ca-name.txt)"
openssl x509 -in tpm-signed.pem -noout -subject | grep -q "vTPM EK test" || fail "no certificate"
[ "$(cat ca-name.txt)" = "$(jq -r .vtpm_ca_name show.json)" ] ||
	fail "the TPM signed with $(cat ca-name.txt), the registrar recorded $(jq -r .vtpm_ca_name show.json)"

# the tenant CLI over the admin API
export KUMQUAT_REGISTRAR_URL=$URL KUMQUAT_CA=$KQ_TMP/tls/ca.pem KUMQUAT_CERT=$KQ_TMP/tls/admin.pem \
	KUMQUAT_KEY=$KQ_TMP/tls/admin-key.pem
expect 0 "$KUMQUAT" registrar list
grep -q "^$ID  host" last.out || fail "registrar list: $(cat last.out)"
expect 0 "$KUMQUAT" registrar list --json
[ "$(jq -r '.agents[0].id' last.out)" = $ID ] || fail "registrar list --json: $(cat last.out)"
expect 0 "$KUMQUAT" registrar show $ID
grep -q "^ak_name *$AK1" last.out || fail "registrar show: $(cat last.out)"
expect 1 "$KUMQUAT" registrar show 00000000-0000-4000-8000-000000000000
grep -q "404" last.err || fail "show of an unknown id: $(cat last.err)"
expect 2 "$KUMQUAT" registrar show '../../etc'
expect 1 env KUMQUAT_CERT= KUMQUAT_KEY= "$KUMQUAT" registrar list --cert /dev/null --key /dev/null

# --- restarts: state kept, keys reused, re-enrolment works ---------------------
stop_registrar
restart_registrar
write_agent_conf $ID
[ "$(admin GET /v1/agents/$ID | jq -r .ak_name)" = "$AK1" ] || fail "agent lost across a registrar restart"
expect 0 "$AGENT" --config agent.conf --enrol-only
admin GET /v1/agents/$ID >show.json
[ "$(jq -r .ak_name show.json)" = "$AK1" ] || fail "the persisted AK was not reused"
[ "$(jq -r .enrolments show.json)" = 2 ] || fail "re-enrolment not counted: $(cat show.json)"
[ "$(jq -r .ak_changes show.json)" = 0 ] || fail "AK change counted though the AK is the same"

# --- admin API needs a client certificate from the deployment CA --------------
[ "$(anon GET /v1/agents)" = 401 ] || fail "list without a client certificate: $(cat body.json)"
jq -e .error.code body.json >/dev/null || fail "no JSON error body"
[ "$(anon DELETE /v1/agents/$ID)" = 401 ] || fail "delete without a client certificate"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout rogue-key.pem -out rogue.pem \
	-subj /CN=rogue -days 1 2>/dev/null
code=$(curl -sS --cacert tls/ca.pem --cert rogue.pem --key rogue-key.pem -o body.json -w '%{http_code}' \
	"$URL/v1/agents" || echo 000)
case $code in 401|403|000) ;; *) fail "a client certificate from another CA got $code";; esac
[ "$(count_agents)" = 1 ] || fail "agent count"

# --- refusals store nothing --------------------------------------------------
EK=$(admin GET /v1/agents/$ID | jq -r .ek_pub)
AK=$(admin GET /v1/agents/$ID | jq -r .ak_pub)
NEW=11111111-2222-4333-8444-555555555555
# no EK certificate while one is required
[ "$(anon POST /v1/agents "{\"id\":\"$NEW\",\"kind\":\"host\",\"ek_pub\":\"$EK\",\"ak_pub\":\"$AK\"}")" = 403 ] ||
	fail "enrolment without EK certificate: $(cat body.json)"
[ "$(jq -r .error.code body.json)" = ek_cert_required ] || fail "reason: $(cat body.json)"
# a wrong activation proof
CERT=$(admin GET /v1/agents/$ID | jq -r .ek_cert_der)
[ "$(anon POST /v1/agents "{\"id\":\"$NEW\",\"kind\":\"host\",\"ek_pub\":\"$EK\",\"ek_cert\":\"$CERT\",\"ak_pub\":\"$AK\"}")" = 200 ] ||
	fail "begin: $(cat body.json)"
HANDLE=$(jq -r .handle body.json)
# without the challenge's handle nobody can use it up
[ "$(anon POST /v1/agents/$NEW/activate "{\"handle\":\"$(head -c 16 /dev/urandom | xxd -p)\",\"proof\":\"$(head -c 32 /dev/urandom | base64)\"}")" = 404 ] ||
	fail "a proof for an unknown handle: $(cat body.json)"
[ "$(anon POST /v1/agents/$NEW/activate "{\"handle\":\"$HANDLE\",\"proof\":\"$(head -c 32 /dev/urandom | base64)\"}")" = 403 ] ||
	fail "a wrong proof was not refused: $(cat body.json)"
[ "$(jq -r .error.code body.json)" = bad_proof ] || fail "reason: $(cat body.json)"
# the EK as the AK (not a restricted signing key)
[ "$(anon POST /v1/agents "{\"id\":\"$NEW\",\"kind\":\"host\",\"ek_pub\":\"$EK\",\"ek_cert\":\"$CERT\",\"ak_pub\":\"$EK\"}")" = 403 ] ||
	fail "EK as AK: $(cat body.json)"
[ "$(jq -r .error.code body.json)" = bad_ak ] || fail "reason: $(cat body.json)"
# malformed bodies: 400 with a reason, and the daemon keeps serving
for body in '{' '[]' '{"id":5}' '{"id":"'$NEW'","kind":"host"}' \
	'{"id":"'$NEW'","kind":"host","ek_pub":"%%%","ak_pub":"AAAA"}' \
	'{"id":"'$NEW'","kind":"host","ek_pub":"'$EK'","ak_pub":"'$AK'","extra":1}' "$(head -c 3000 /dev/urandom | base64 -w0)"; do
	[ "$(anon POST /v1/agents "$body")" = 400 ] || fail "malformed body not refused with 400: $body -> $(cat body.json)"
	jq -e .error.message body.json >/dev/null || fail "no reason for: $body"
done
head -c 2000000 /dev/zero | tr '\0' 'a' >big.json
code=$(curl -sS --cacert tls/ca.pem -o body.json -w '%{http_code}' -H 'Content-Type: application/json' \
	--data-binary @big.json "$URL/v1/agents" || true)
[ "$code" = 413 ] || fail "oversized body got $code"
[ "$(count_agents)" = 1 ] || fail "a refused enrolment was stored"

# another EK under the same id (a second TPM)
stop_registrar
restart_registrar
provision_swtpm "$KQ_TMP/other"
cp other/localca/issuercert.pem ek-ca/other-issuer.pem
cp other/localca/swtpm-localca-rootca-cert.pem ek-ca/other-root.pem
stop_registrar
restart_registrar
FIRST_TCTI=$KQ_TCTI
start_swtpm "$KQ_TMP/other/state"
write_agent_conf $ID
expect 1 "$AGENT" --config agent.conf --enrol-only
grep -q ek_mismatch last.err || fail "re-enrolment with another EK: $(cat last.err)"

# an EK certificate from a CA the registrar does not trust
stop_registrar
rm ek-ca/other-*.pem
restart_registrar
write_agent_conf 22222222-3333-4444-8555-666666666666
expect 1 "$AGENT" --config agent.conf --enrol-only
grep -q ek_cert_untrusted last.err || fail "untrusted EK CA: $(cat last.err)"
[ "$(count_agents)" = 1 ] || fail "a refused host was stored"

# delete through the tenant CLI (the registrar now listens on another port)
export KUMQUAT_REGISTRAR_URL=$URL
expect 0 "$KUMQUAT" registrar delete $ID
expect 1 "$KUMQUAT" registrar delete $ID
[ "$(count_agents)" = 0 ] || fail "delete did not remove the agent"
echo "registrar + host agent: enrolment, vTPM CA, restarts, admin auth and refusals behave"
