#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Guests attested through their host's deep quote, end to end on 127.0.0.1:
# swtpm as the host's TPM with a real UEFI log and IMA list in its PCRs; three
# VMs, each with a vTPM made by Debian's swtpm_setup with kumquat's cert tool
# and reported running through the vTPM manager's hook; each guest agent
# enrolled and serving its own evidence (its own IMA list in its vTPM's PCR
# 10); the host agent serving /v1/quote and /v1/deep-quote; the verifier
# judging each guest with its host every second. Then each failure is
# reported at its own layer: a guest's IMA entry (that guest only), a VM the
# host says is not running (host/vm_not_running), deep quotes forged between
# the verifier and the host agent (a replayed answer, proofs swapped or
# reordered, a tree over another quote, no root, another host's TPM: the host
# fails or deep_quote/bad_proof for the guests concerned), a guest's replayed
# evidence (its own quote/nonce), and a host whose PCR was extended outside
# its log (it fails, and its guests with host/host_failed).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hypervisor-lib.sh"
need swtpm swtpm_setup tpm2_pcrextend tpm2_getcap tpm2_flushcontext curl openssl jq python3
: "${KQ_BUILD:?}" "${KQ_TESTDATA:?}" "${KQ_HTTP_STUB:?}"
AGENT=$KQ_BUILD/host-agent/kumquat-host-agent
GUEST=$KQ_BUILD/guest-agent/kumquat-guest-agent
VMGR=$KQ_BUILD/vtpm-mgr/kumquat-vtpm-mgr
VERIFIER=$KQ_BUILD/verifier/kumquat-verifier
[ -x "$VMGR" ] || skip "kumquat-vtpm-mgr was not built"
cd "$KQ_TMP"

T0=$SECONDS
step() { echo "== $* ($((SECONDS - T0)) s)"; }

# ---- the host: a TPM whose PCRs hold a real boot and a real IMA list ----
step "host TPM, CA, registrar"
provision_swtpm "$KQ_TMP/host"
# a second host, used in step 4f; the registrar reads its TPM vendor CAs when it starts
provision_swtpm "$KQ_TMP/host2"
start_swtpm "$KQ_TMP/host/state"
HOST_TCTI=$KQ_TCTI
mkdir -p ek-ca tls logs
cp host/localca/issuercert.pem host/localca/swtpm-localca-rootca-cert.pem ek-ca/
cp host2/localca/issuercert.pem ek-ca/host2-issuer.pem
cp host2/localca/swtpm-localca-rootca-cert.pem ek-ca/host2-root.pem
expect 0 "$KUMQUAT" ca init --dir tls
for n in registrar host-agent verifier guest1 guest2 guest3; do expect 0 "$KUMQUAT" ca issue --dir tls --name $n --server; done
for n in verifier-client admin; do expect 0 "$KUMQUAT" ca issue --dir tls --name $n --client; done

measure_host_boot


start_registrar

step "host agent"
host_agent_conf host "$HOST_TCTI"
start_host_agent

# ---- three VMs: vTPMs certified by the host, reported running, guest agents serving ----
vtpm_mgr_setup

declare -a VM VTCTI GID GPORT GPID
declare -A NAME
NAME[$HOST_ID]=host
EVIL=$(awk '!/boot_aggregate/ { print; exit }' "$KQ_TESTDATA/ima/rust-keylime-ima-ng-sha1.txt")
for i in 1 2 3; do start_guest $i; done
export TPM2TOOLS_TCTI=$HOST_TCTI KQ_TCTI=$HOST_TCTI

# ---- the verifier ----
step "verifier, policies, agents"
verifier_conf >verifier.conf
cat >>verifier.conf <<EOC
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
G1=${GID[1]} G2=${GID[2]} G3=${GID[3]}

"$KUMQUAT" eventlog replay --json "$UEFI" >/dev/null || fail "replaying the HPE log"
ima_policy "$IMA" >host-ima.json
expect 0 "$KUMQUAT" policy add hpe-mb --kind mb --file "$KQ_TESTDATA/policy/keylime-mb-refstate-hpe.json"
expect 0 "$KUMQUAT" policy add hpe-ima --kind ima --file host-ima.json
for i in 1 2 3; do
	ima_policy logs/guest$i-ima.txt >g$i-ima.json
	expect 0 "$KUMQUAT" policy add guest$i-ima --kind ima --file g$i-ima.json
done
expect 0 "$KUMQUAT" add "$HOST_ID" --address "127.0.0.1:$AGENT_PORT" --interval 1 --mb-policy hpe-mb --ima-policy hpe-ima
for i in 1 2 3; do
	expect 0 "$KUMQUAT" add "${GID[$i]}" --address "127.0.0.1:${GPORT[$i]}" --host "$HOST_ID" --interval 1 \
		--ima-policy guest$i-ima
done
# a guest names the host the registrar says it is on, and a host is no guest
expect 1 "$KUMQUAT" add "$G1" --address 127.0.0.1:1 --host 00000000-0000-4000-8000-000000000000
grep -q "belongs to host $HOST_ID" last.err || fail "a guest added under another host: $(cat last.err)"
expect 1 "$KUMQUAT" add "$HOST_ID" --address 127.0.0.1:1 --host "$HOST_ID"

# ---- 1. everything passes ----
step "1. host and three guests attest"
wait_state "$HOST_ID" attesting 30
for id in "$G1" "$G2" "$G3"; do wait_state "$id" attesting 30; done
passing "$HOST_ID" "$G1" "$G2" "$G3"
status "$HOST_ID"
jq -e --arg a "$G1" --arg b "$G2" --arg c "$G3" '.guests | length == 3 and
	([.[] | select(.state == "attesting" and .verdicts > 0 and .passes > 0) | .id] | sort == ([$a, $b, $c] | sort))' \
	st.json >/dev/null || fail "status --json of the host: $(jq -c .guests st.json)"
for i in 1 2 3; do
	status "${GID[$i]}"
	jq -e --arg h "$HOST_ID" --arg vm "${VM[$i]}" '.kind == "guest" and .host_id == $h and .vm_uuid == $vm and
		.verdicts > 0 and .ima_offset == 5' st.json >/dev/null || fail "guest $i: $(cat st.json)"
done
expect 0 "$KUMQUAT" status "$HOST_ID"
grep -q '^guests:' last.out || fail "kumquat status shows no guests: $(cat last.out)"
for id in "$G1" "$G2" "$G3"; do
	grep -q "^  $id .*attesting" last.out || fail "kumquat status does not show $id attesting under the host: $(cat last.out)"
done
grep -q "1 TPM quote for 1 request, 3 leaves" host.log || fail "no deep quote over three leaves: $(tail -5 host.log)"

# ---- 2. a guest runs a file its allowlist does not know: that guest only ----
step "2. guest 2 runs a file outside its allowlist"
echo "$EVIL" >evil.txt
guest_ext 2 evil.txt
fails_with ima not_in_allowlist "$G2"
has_reason "$G2" ima not_in_allowlist 5
passing "$HOST_ID" "$G1" "$G3"
still_failed not_in_allowlist "$G2"
# allowlisted under a new policy, resumed: the entry is judged again and passes
ima_policy logs/guest2-ima.txt >g2-ima-2.json
expect 0 "$KUMQUAT" policy add guest2-ima-2 --kind ima --file g2-ima-2.json
expect 0 "$KUMQUAT" update "$G2" --ima-policy guest2-ima-2 --resume
passing "$HOST_ID" "$G1" "$G2" "$G3"

# ---- 3. a VM the host says is not running ----
step "3. vm3 stopped on the host"
hook 3 stopped end
fails_with host vm_not_running "$G3"
passing "$HOST_ID" "$G1" "$G2"
hook 3 started begin
resume "$G3"
passing "$HOST_ID" "$G1" "$G2" "$G3"

# ---- 4. forged deep quotes between the verifier and the host agent ----
# A TLS man in the middle with the host agent's certificate: it forwards each
# request to the host agent and edits the deep quote as mitm.mode says, so the
# host's TPM signs a fresh quote and only the edited part is forged.
cat >mitm.py <<'PY'
import http.server, json, os, ssl, sys, urllib.error, urllib.request

upstream, cert, key, ca, ccert, ckey, modefile, recdir = sys.argv[1:]
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
sctx.load_cert_chain(cert, key)
sctx.load_verify_locations(ca)
sctx.verify_mode = ssl.CERT_REQUIRED
cctx = ssl.create_default_context(cafile=ca)
cctx.load_cert_chain(ccert, ckey)
seq = [0]

def by_vm(req, vm):
    """the index of VM's leaf in the request, or None once its guest is no longer asked for"""
    return next((i for i, l in enumerate(req.get("leaves", [])) if l["vm_uuid"] == vm), None)

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("mitm: " + (fmt % args) + "\n")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        mode = open(modefile).read().split()
        deep = self.path == "/v1/deep-quote"
        req = json.loads(body)
        up = upstream
        if deep and mode[0] == "alter" and by_vm(req, mode[1]) is not None:
            # the host is asked to vouch for another quote than the guest gave
            l = req["leaves"][by_vm(req, mode[1])]
            l["attest_sha256"] = ("0" if l["attest_sha256"][0] != "0" else "1") + l["attest_sha256"][1:]
        if mode[0] == "other":
            up, req["agent_id"] = mode[1], mode[2]
        r = urllib.request.Request("https://" + up + self.path, data=json.dumps(req).encode(),
                                   headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(r, context=cctx, timeout=30) as resp:
                status, out = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, out = e.code, e.read()
        if deep and status == 200:
            ans = json.loads(out)
            if mode[0] == "pass":
                seq[0] += 1
                with open(os.path.join(recdir, "%04d.json" % seq[0]), "wb") as f:
                    f.write(out)
            elif mode[0] == "swap" and None not in (by_vm(req, mode[1]), by_vm(req, mode[2])):
                a, b = by_vm(req, mode[1]), by_vm(req, mode[2])
                ans["leaves"][a], ans["leaves"][b] = ans["leaves"][b], ans["leaves"][a]
            elif mode[0] == "rotate":
                ans["leaves"] = ans["leaves"][1:] + ans["leaves"][:1]
            elif mode[0] == "noroot":
                del ans["root"]
            out = json.dumps(ans).encode()
        sys.stderr.write("mitm: %s %s -> %d (%s)\n" % (self.path, mode[0], status, up))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
srv.socket = sctx.wrap_socket(srv.socket, server_side=True)
print("listening on https://127.0.0.1:%d" % srv.server_address[1], flush=True)
srv.serve_forever()
PY
step "4. forged deep quotes: a transparent proxy first"
mkdir -p mitm-rec
echo pass >mitm.mode
python3 mitm.py "127.0.0.1:$AGENT_PORT" tls/host-agent.pem tls/host-agent-key.pem tls/ca.pem \
	tls/verifier-client.pem tls/verifier-client-key.pem mitm.mode mitm-rec >mitm.log 2>&1 &
KQ_PIDS+=($!)
MITM=127.0.0.1:$(wait_listening mitm.log)
expect 0 "$KUMQUAT" update "$HOST_ID" --address "$MITM"
passing "$HOST_ID" "$G1" "$G2" "$G3"
REC=$(ls mitm-rec/*.json | tail -1)
jq -e '.tree_size == 3 and (.leaves | length == 3) and ([.leaves[] | .proof | length] == [2, 2, 1]) and (.nonce_leaf == null)' \
	"$REC" >/dev/null || fail "the recorded deep quote: $(jq -c 'del(.uefi_log, .ima)' "$REC")"

step "4a. a deep quote replayed from an earlier round"
cp "$REC" replay.json
"$KQ_HTTP_STUB" --cert tls/host-agent.pem --key tls/host-agent-key.pem --client-ca tls/ca.pem \
	--serve replay.json >replay.log 2>&1 &
KQ_PIDS+=($!)
REPLAY=127.0.0.1:$(wait_listening replay.log)
expect 0 "$KUMQUAT" update "$HOST_ID" --address "$REPLAY"
fails_with quote nonce "$HOST_ID"
fails_with host host_failed "$G1" "$G2" "$G3"
resume "$G1" "$G2" "$G3"
expect 0 "$KUMQUAT" update "$HOST_ID" --address "$MITM" --resume
passing "$HOST_ID" "$G1" "$G2" "$G3"

step "4b. guests 1 and 2 given each other's proofs"
echo "swap ${VM[1]} ${VM[2]}" >mitm.mode
fails_with deep_quote bad_proof "$G1" "$G2"
passing "$HOST_ID" "$G3"
still_failed bad_proof "$G1" "$G2"
echo pass >mitm.mode
resume "$G1" "$G2"
passing "$HOST_ID" "$G1" "$G2" "$G3"

step "4c. the answer's leaves reordered"
echo rotate >mitm.mode
fails_with deep_quote bad_proof "$G1" "$G2" "$G3"
passing "$HOST_ID"
echo pass >mitm.mode
resume "$G1" "$G2" "$G3"
passing "$HOST_ID" "$G1" "$G2" "$G3"

step "4d. the host's tree made over another quote than guest 3 gave"
echo "alter ${VM[3]}" >mitm.mode
fails_with deep_quote bad_proof "$G3"
passing "$HOST_ID" "$G1" "$G2"
still_failed bad_proof "$G3"
echo pass >mitm.mode
resume "$G3"
passing "$HOST_ID" "$G1" "$G2" "$G3"

step "4e. a deep quote without its root"
echo noroot >mitm.mode
fails_with deep_quote malformed "$HOST_ID"
fails_with host host_failed "$G1" "$G2" "$G3"
echo pass >mitm.mode
resume "$G1" "$G2" "$G3" "$HOST_ID"
passing "$HOST_ID" "$G1" "$G2" "$G3"

# another host, enrolled at the same registrar, told that the three VMs run
# on it: it answers the same leaves with valid proofs, signed by its own TPM
step "4f. the deep quote of another host"
start_swtpm "$KQ_TMP/host2/state"
HOST2_TCTI=$KQ_TCTI
export TPM2TOOLS_TCTI=$HOST_TCTI KQ_TCTI=$HOST_TCTI
host_agent_conf host2 "$HOST2_TCTI"
TPM2TOOLS_TCTI=$HOST2_TCTI tflush
"$AGENT" --config host2.conf >host2.log 2>&1 &
HOST2_PID=$!
KQ_PIDS+=($HOST2_PID)
AGENT2_PORT=$(wait_listening host2.log)
HOST2_ID=$(cat host2-state/id)
sed "s|$KQ_TMP/vmgr.db|$KQ_TMP/vmgr2.db|; s|host.sock|host2.sock|" vmgr.conf >vmgr2.conf
for i in 1 2 3; do hook $i started begin vmgr2.conf; done
echo "other 127.0.0.1:$AGENT2_PORT $HOST2_ID" >mitm.mode
fails_with quote signature "$HOST_ID"
fails_with host host_failed "$G1" "$G2" "$G3"
grep -q "3 leaves" host2.log || fail "host 2 did not vouch for the leaves: $(tail -3 host2.log)"
echo pass >mitm.mode
resume "$G1" "$G2" "$G3"
expect 0 "$KUMQUAT" update "$HOST_ID" --address "127.0.0.1:$AGENT_PORT" --resume
passing "$HOST_ID" "$G1" "$G2" "$G3"

# ---- 5. a guest's own evidence replayed: its own layer fails ----
step "5. guest 1's evidence replayed"
curl -sS --cacert tls/ca.pem --cert tls/verifier-client.pem --key tls/verifier-client-key.pem -o g1-old.json \
	-H 'Content-Type: application/json' "https://127.0.0.1:${GPORT[1]}/v1/quote" \
	--data-binary "{\"nonce\":\"$(randhex 32)\",\"pcrs\":{\"sha256\":[0,1,2,3,4,5,6,7,8,9,10]},\"ima_offset\":5}"
jq -e .quote g1-old.json >/dev/null || fail "recording guest 1's evidence: $(head -c 300 g1-old.json)"
"$KQ_HTTP_STUB" --cert tls/guest1.pem --key tls/guest1-key.pem --client-ca tls/ca.pem \
	--serve g1-old.json >g1-replay.log 2>&1 &
KQ_PIDS+=($!)
expect 0 "$KUMQUAT" update "$G1" --address "127.0.0.1:$(wait_listening g1-replay.log)"
fails_with quote nonce "$G1"
passing "$HOST_ID" "$G2" "$G3"
expect 0 "$KUMQUAT" update "$G1" --address "127.0.0.1:${GPORT[1]}" --resume
passing "$HOST_ID" "$G1" "$G2" "$G3"

# ---- 6. the host extended outside its log: it fails, and every guest with it ----
step "6. host PCR 4 extended with no log entry"
tpm2_pcrextend "4:sha256=$(randhex 32)" || fail "extending the host's PCR 4"
fails_with eventlog replay_mismatch "$HOST_ID"
has_reason "$HOST_ID" eventlog replay_mismatch 4
fails_with host host_failed "$G1" "$G2" "$G3"
expect 1 "$KUMQUAT" status "$HOST_ID"
grep -q "host_failed" last.out || fail "kumquat status does not show the guests failing with their host: $(cat last.out)"

# ---- the daemons stop cleanly (and, under ASan, without a report) ----
step "shutdown"
stop_daemon() { # PID LOG
	kill "$1"
	wait "$1" || fail "$2 did not stop cleanly on SIGTERM: $(tail -5 "$2")"
}
stop_daemon "$VERIFIER_PID" verifier.log
for i in 1 2 3; do stop_daemon "${GPID[$i]}" guest$i.log; done
stop_daemon "$HOST_PID" host.log
stop_daemon "$HOST2_PID" host2.log
stop_daemon "$REG_PID" registrar.log
grep -l -E 'AddressSanitizer|LeakSanitizer|runtime error' ./*.log && fail "sanitizer reports above"
echo "verifier-guests: deep quotes of three guests, each failure at its own layer ($((SECONDS - T0)) s)"
