#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# kumquat-vtpm-mgr against libvirt's test driver and a stand-in host agent
# (local-sink, which records every request on lib/local's socket):
#  - run: domains are defined, started, shut down, destroyed, undefined,
#    created transient; each lifecycle event reaches the map and the host
#    agent; changes made while the host agent is down are delivered when it
#    comes back; a dropped connection is re-established and reconciled;
#    SIGTERM stops it cleanly.
#    test:///default keeps its domains inside one connection (every virsh
#    gets a fresh copy), so the domain operations are given to the daemon
#    through `run --script FIFO` and run on its own connection: their events
#    come back through its virConnectDomainEventRegisterAny callback like
#    real ones (the log shows each "event ..." it handled).
#  - hook: the same map changes from libvirt's qemu hook with the domain XML on
#    stdin; it exits 0 and prints nothing whatever happens, within its deadline
#    even against a host agent that never answers.
#  - enable: a TPM is added (the result passes virt-xml-validate), a domain
#    with one is left as it is.
#  - install / uninstall in a scratch /etc: swtpm_setup.conf is replaced and
#    put back byte for byte; the hook script works.
. "$(dirname "$0")/lib.sh"
need virsh virt-xml-validate jq python3
: "${KQ_BUILD:?}" "${KQ_SOURCE:?}" "${KQ_LOCAL_SINK:?}"
MGR=$KQ_BUILD/vtpm-mgr/kumquat-vtpm-mgr
DATA=$KQ_SOURCE/tests/unit/vtpm-mgr/data
cd "$KQ_TMP"
virsh -c test:///default list --all >/dev/null 2>&1 || skip "libvirt's test driver (test:///default) does not work here"

step() { echo "== $*"; }

TEST_UUID=6695eb01-f6a4-8304-79aa-97f2502e193f  # the test driver's own domain, running
G1=5c0ffee0-1234-4abc-8def-0123456789ab          # guest-01 (libvirt-tpm2-crb.xml)
G2=9e3c1f7a-55d2-4b8e-9f10-2a4b6c8d0e1f          # guest-02, made from it
G3=7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6          # transient-03
SWTPM=$KQ_TMP/swtpm

sed -e "s/guest-01/guest-02/; s/$G1/$G2/" "$DATA/libvirt-tpm2-crb.xml" >guest-02.xml
sed -e "s/guest-01/transient-03/; s/$G1/$G3/" "$DATA/libvirt-tpm2-crb.xml" >transient-03.xml

start_sink() {
	"$KQ_LOCAL_SINK" "$KQ_TMP/agent.sock" "$KQ_TMP/reports.jsonl" >sink.log 2>&1 &
	SINK_PID=$!
	KQ_PIDS+=("$SINK_PID")
	for _ in $(seq 50); do grep -q listening sink.log && return 0; sleep 0.1; done
	fail "local-sink did not start: $(cat sink.log)"
}
stop_sink() { kill "$SINK_PID"; wait "$SINK_PID" 2>/dev/null || true; }

write_conf() { # FILE DB
	cat >"$1" <<EOC
[libvirt]
uri = test:///default
[vtpm-mgr]
database = $2
swtpm_dir = $SWTPM
retry_interval = 1
[host-agent]
socket = $KQ_TMP/agent.sock
[log]
level = debug
EOC
}

# field CONF UUID KEY: a field of the VM's row in `list --json` ("" if no row)
field() { "$MGR" --config "$1" list --json | jq -r --arg u "$2" --arg k "$3" '.vms[] | select(.uuid == $u) | .[$k] | tostring'; }
# wait_state CONF UUID STATE [DIR]: the map says STATE (and vtpm_dir DIR, "null" for none)
wait_state() {
	local s=""
	for _ in $(seq 100); do
		s=$(field "$1" "$2" state)
		[ "$s" = "$3" ] && break
		sleep 0.1
	done
	[ "$s" = "$3" ] || fail "VM $2: map says '$s', expected $3"
	if [ $# -ge 4 ]; then
		[ "$(field "$1" "$2" vtpm_dir)" = "$4" ] || fail "VM $2: vtpm_dir $(field "$1" "$2" vtpm_dir), expected $4"
	fi
}
# last_report UUID: the state in the host agent's last report for UUID
last_report() { jq -r -s --arg u "$1" '[.[] | select(.op == "vm" and .vm_uuid == $u)] | last | .state // ""' reports.jsonl; }
# wait_report UUID STATE [DIR]: the host agent's last report for UUID says STATE (and vtpm_dir DIR)
wait_report() {
	local s=""
	for _ in $(seq 100); do
		s=$(last_report "$1")
		[ "$s" = "$2" ] && break
		sleep 0.1
	done
	[ "$s" = "$2" ] || fail "VM $1: the host agent's last report says '$s', expected $2"
	if [ $# -ge 3 ]; then
		local d
		d=$(jq -r -s --arg u "$1" '[.[] | select(.vm_uuid == $u)] | last | .vtpm_dir // "null"' reports.jsonl)
		[ "$d" = "$3" ] || fail "VM $1: reported vtpm_dir $d, expected $3"
	fi
}
# check CONF UUID STATE DIR: map and host agent agree on STATE, DIR; the row is reported
check() {
	wait_state "$1" "$2" "$3" "$4"
	wait_report "$2" "$3" "$4"
	for _ in $(seq 50); do [ "$(field "$1" "$2" reported)" = true ] && return 0; sleep 0.1; done
	fail "VM $2: not marked reported"
}

# ---------------------------------------------------------------- run
step "run: reconciles at start"
start_sink
write_conf run.conf "$KQ_TMP/run.db"
mkfifo script
"$MGR" --config run.conf run --script script >run.log 2>&1 &
RUN_PID=$!
KQ_PIDS+=("$RUN_PID")
exec 3>script # keeps a writer open: the script goes on as long as the test writes
cmd() { echo "$*" >&3; }
for _ in $(seq 100); do grep -q 'following test:///default' run.log && break; sleep 0.1; done
grep -q 'following test:///default' run.log || fail "run did not start: $(cat run.log)"
check run.conf $TEST_UUID running null

step "run: define, start, shutdown, start, destroy"
cmd define "$DATA/libvirt-tpm2-crb.xml"
check run.conf $G1 defined "$SWTPM/$G1/tpm2"
cmd start guest-01
check run.conf $G1 running "$SWTPM/$G1/tpm2"
cmd shutdown guest-01
check run.conf $G1 stopped "$SWTPM/$G1/tpm2"
cmd start guest-01
check run.conf $G1 running "$SWTPM/$G1/tpm2"
cmd destroy guest-01
check run.conf $G1 stopped "$SWTPM/$G1/tpm2"
# the changes came through the lifecycle callback, one event each
for e in defined/0 started/0 stopped/0 stopped/1; do
	grep -q "event $e for $G1 (guest-01)" run.log || fail "no '$e' event in the log"
done
[ "$(jq -s --arg u $G1 '[.[] | select(.vm_uuid == $u)] | map(.state) | join(",")' reports.jsonl)" = \
	'"defined,running,stopped,running,stopped"' ] || fail "reports for guest-01: $(grep $G1 reports.jsonl)"
grep $G1 reports.jsonl | head -1 | jq -e '.name == "guest-01" and .op == "vm"' >/dev/null || fail "report fields"

step "run: a transient domain is undefined once it stops"
cmd create "$KQ_TMP/transient-03.xml"
check run.conf $G3 running "$SWTPM/$G3/tpm2"
cmd destroy transient-03
check run.conf $G3 undefined "$SWTPM/$G3/tpm2"

step "run: changes wait while the host agent is down"
stop_sink
cmd define "$KQ_TMP/guest-02.xml"
wait_state run.conf $G2 defined "$SWTPM/$G2/tpm2"
sleep 1.5 # a retry or two against nobody
[ "$(field run.conf $G2 reported)" = false ] || fail "guest-02 reported while the host agent is down"
start_sink
check run.conf $G2 defined "$SWTPM/$G2/tpm2"

step "run: undefine"
cmd undefine guest-01
check run.conf $G1 undefined "$SWTPM/$G1/tpm2"

step "run: a dropped connection is reopened and the map reconciled"
# the new connection is a fresh test:///default: only its own domain is there
cmd reconnect
for _ in $(seq 100); do grep -q 'connected to test:///default again' run.log && break; sleep 0.1; done
grep -q 'connected to test:///default again' run.log || fail "no reconnect: $(tail run.log)"
check run.conf $G2 undefined "$SWTPM/$G2/tpm2"
check run.conf $TEST_UUID running null
[ "$(field run.conf $G3 state)" = undefined ] || fail "transient-03 changed on reconnect"
# and the new connection's events flow
cmd define "$KQ_TMP/guest-02.xml"
check run.conf $G2 defined "$SWTPM/$G2/tpm2"

step "run: SIGTERM stops it"
kill -TERM "$RUN_PID"
rc=0
wait "$RUN_PID" || rc=$?
[ "$rc" = 0 ] || fail "run exited $rc on SIGTERM: $(tail run.log)"
grep -q 'stopping (signal 15)' run.log || fail "no stop message"
exec 3>&-
expect 2 "$MGR" --config run.conf run --script /nonexistent --bogus
expect 2 "$MGR" --config run.conf run extra
sed 's|uri = test:///default|uri = qemu:///system|' run.conf >qemu.conf
expect 2 "$MGR" --config qemu.conf run --script script # --script is for test:/// only
sed 's|uri = test:///default|uri = test:///nonexistent.xml|' run.conf >bad-uri.conf
expect 1 "$MGR" --config bad-uri.conf run
grep -q 'cannot connect to test:///nonexistent.xml' "$KQ_TMP/last.err" || fail "no reason on a bad URI"

# ---------------------------------------------------------------- hook
step "hook: prepare, started, stopped, release"
write_conf hook.conf "$KQ_TMP/hook.db"
XML=$DATA/libvirt-tpm2-crb.xml
hook() { # OP SUBOP [XML]: runs the hook; it must exit 0 and print nothing on stdout
	local rc=0
	"$MGR" --config hook.conf hook guest-01 "$1" "$2" - <"${3:-$XML}" >hook.out 2>hook.err || rc=$?
	[ "$rc" = 0 ] || fail "hook $1 $2 exited $rc: $(cat hook.err)"
	[ ! -s hook.out ] || fail "hook $1 $2 wrote on stdout: $(cat hook.out)"
}
hook prepare begin
check hook.conf $G1 defined "$SWTPM/$G1/tpm2"
hook start begin
hook started begin
check hook.conf $G1 running "$SWTPM/$G1/tpm2"
hook stopped end
check hook.conf $G1 stopped "$SWTPM/$G1/tpm2"
hook release end
check hook.conf $G1 stopped "$SWTPM/$G1/tpm2"
step "hook: an incoming migration"
hook migrate begin
check hook.conf $G1 migrating_in "$SWTPM/$G1/tpm2"
hook prepare begin
check hook.conf $G1 migrating_in "$SWTPM/$G1/tpm2"
hook started begin
check hook.conf $G1 running "$SWTPM/$G1/tpm2"

step "hook: the host agent down, then never answering"
stop_sink
t0=$(date +%s)
hook stopped end
wait_state hook.conf $G1 stopped "$SWTPM/$G1/tpm2"
[ "$(field hook.conf $G1 reported)" = false ] || fail "reported to nobody"
[ $(($(date +%s) - t0)) -le 3 ] || fail "the hook took over 3 s with the host agent down"
grep -q 'host agent unreachable' hook.err || fail "no reason on stderr: $(cat hook.err)"
# a host agent that accepts and never answers: the hook gives up at its deadline (10 s)
python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8)
print("listening", flush=True)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
' "$KQ_TMP/agent.sock" >hung.log 2>&1 &
HUNG_PID=$!
KQ_PIDS+=("$HUNG_PID")
for _ in $(seq 50); do grep -q listening hung.log && break; sleep 0.1; done
t0=$(date +%s)
hook started begin
t1=$(date +%s)
[ $((t1 - t0)) -le 13 ] || fail "the hook took $((t1 - t0)) s against a hung host agent"
grep -q 'deadline reached' hook.err || fail "the hook did not stop at its deadline: $(cat hook.err)"
wait_state hook.conf $G1 running "$SWTPM/$G1/tpm2"
kill "$HUNG_PID"; wait "$HUNG_PID" 2>/dev/null || true
rm -f "$KQ_TMP/agent.sock"
# back: the next call delivers what waited, even one that changes nothing
start_sink
hook restore begin
check hook.conf $G1 running "$SWTPM/$G1/tpm2"

step "hook: bad input changes nothing and still exits 0"
printf '<!DOCTYPE domain [<!ENTITY x SYSTEM "file:///etc/passwd">]><domain><name>&x;</name></domain>' >evil.xml
hook stopped end evil.xml
grep -q 'DOCTYPE is not allowed' hook.err || fail "no reason for the hostile XML: $(cat hook.err)"
hook stopped end /dev/null
head -c $((5 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >huge.xml
hook stopped end huge.xml
grep -q 'larger than the limit' hook.err || fail "no reason for the huge XML: $(cat hook.err)"
hook stopped end "$KQ_TMP/guest-02.xml" # it names another domain
grep -q "names 'guest-02'" hook.err || fail "no reason for the other domain: $(cat hook.err)"
[ "$(field hook.conf $G1 state)" = running ] || fail "bad input changed the map"
[ -z "$(field hook.conf $G2 state)" ] || fail "the other domain was recorded"
hook some-future-op begin
[ "$(field hook.conf $G1 state)" = running ] || fail "an unknown operation changed the map"
expect 2 "$MGR" --config hook.conf hook guest-01 prepare
# an unwritable map: logged, exit 0
: >"$KQ_TMP/not-a-dir"
write_conf broken.conf "$KQ_TMP/not-a-dir/map.db"
rc=0
"$MGR" --config broken.conf hook guest-01 prepare begin - <"$XML" >hook.out 2>hook.err || rc=$?
[ "$rc" = 0 ] || fail "hook exited $rc on an unwritable map"
grep -q "map $KQ_TMP/not-a-dir/map.db" hook.err || fail "no reason for the unwritable map: $(cat hook.err)"

# ---------------------------------------------------------------- enable
step "enable: adds a TPM that libvirt's schema accepts"
for f in libvirt-test-notpm.xml aarch64-notpm.xml no-devices.xml; do
	expect 0 "$MGR" enable --xml "$DATA/$f" --output "enabled-$f"
	virt-xml-validate "enabled-$f" domain >/dev/null || fail "$f with a TPM does not validate: $(cat "enabled-$f")"
	grep -q '<backend type="emulator" version="2.0"/>' "enabled-$f" || fail "$f: no TPM added"
done
grep -q '<tpm model="tpm-crb">' enabled-libvirt-test-notpm.xml || fail "x86: not tpm-crb"
grep -q '<tpm model="tpm-tis">' enabled-aarch64-notpm.xml || fail "aarch64: not tpm-tis"
# to stdout without --output; a second run changes nothing
expect 0 "$MGR" enable --xml "$DATA/libvirt-test-notpm.xml"
cmp -s "$KQ_TMP/last.out" enabled-libvirt-test-notpm.xml || fail "stdout differs from --output"
expect 0 "$MGR" enable --xml enabled-libvirt-test-notpm.xml --output twice.xml
cmp -s twice.xml enabled-libvirt-test-notpm.xml || fail "a second enable changed the XML"
step "enable: a domain with a TPM is left unchanged"
for f in libvirt-tpm2-crb.xml tpm-passthrough.xml; do
	expect 0 "$MGR" enable --xml "$DATA/$f" --output "same-$f"
	grep -q 'has a TPM already' "$KQ_TMP/last.err" || fail "$f: no note"
	cmp -s "$DATA/$f" "same-$f" || fail "$f was changed"
done
step "enable: through libvirt"
expect 0 "$MGR" --config run.conf enable test --output lv.xml
virt-xml-validate lv.xml domain >/dev/null || fail "the test domain with a TPM does not validate"
grep -q '<tpm model="tpm-crb">' lv.xml || fail "no TPM in the test domain's XML"
expect 0 "$MGR" --config run.conf enable $TEST_UUID
grep -q 'added a TPM 2.0 emulator to test (from its next start)' "$KQ_TMP/last.out" || fail "$(cat "$KQ_TMP/last.out")"
expect 1 "$MGR" --config run.conf enable no-such-domain
expect 2 "$MGR" enable --xml evil.xml
expect 2 "$MGR" enable
expect 2 "$MGR" enable test --xml "$XML"

# ---------------------------------------------------------------- install
step "install / uninstall"
ETC=$KQ_TMP/etc
mkdir -p "$ETC/kumquat"
printf '# Program invoked for creating certificates\ncreate_certs_tool= /usr/bin/swtpm_localca\ncreate_certs_tool_config = /etc/swtpm-localca.conf\ncreate_certs_tool_options = /etc/swtpm-localca.options\n# Comma-separated list (no spaces) of PCR banks to activate by default\nactive_pcr_banks = sha256\n' >"$ETC/swtpm_setup.conf"
cp "$ETC/swtpm_setup.conf" orig.conf
write_conf "$ETC/kumquat/vtpm-mgr.conf" "$KQ_TMP/installed.db"
INSTALL=(--swtpm-setup-conf "$ETC/swtpm_setup.conf" --hooks-dir "$ETC/libvirt/hooks"
	--libexec-dir "$KQ_TMP/libexec/kumquat" --cert-tool-options "$ETC/kumquat/vtpm-cert-tool.options")
for round in 1 2; do # a second install changes nothing
	expect 0 "$MGR" --config "$ETC/kumquat/vtpm-mgr.conf" install "${INSTALL[@]}"
	cmp -s "$ETC/swtpm_setup.conf.kumquat-orig" orig.conf || fail "round $round: the backup differs"
	grep -qx "create_certs_tool = $KQ_TMP/libexec/kumquat/kumquat-cert-tool" "$ETC/swtpm_setup.conf" ||
		fail "no create_certs_tool: $(cat "$ETC/swtpm_setup.conf")"
	grep -qx "create_certs_tool_config = $ETC/kumquat/vtpm-mgr.conf" "$ETC/swtpm_setup.conf" || fail "no config"
	grep -qx "create_certs_tool_options = $ETC/kumquat/vtpm-cert-tool.options" "$ETC/swtpm_setup.conf" ||
		fail "no options"
	grep -qx "active_pcr_banks = sha256" "$ETC/swtpm_setup.conf" || fail "active_pcr_banks lost"
	! grep -q swtpm_localca "$ETC/swtpm_setup.conf" || fail "the old cert tool is still there"
	[ "$(grep -c '^create_certs_tool' "$ETC/swtpm_setup.conf")" = 3 ] || fail "round $round: duplicate keys"
done
[ -x "$ETC/libvirt/hooks/qemu.d/kumquat" ] && [ -x "$KQ_TMP/libexec/kumquat/kumquat-cert-tool" ] ||
	fail "scripts missing or not executable"
grep -q -- '--platform-manufacturer' "$ETC/kumquat/vtpm-cert-tool.options" || fail "no options file"
grep -q 'socket = ' "$ETC/kumquat/vtpm-mgr.conf" || fail "the existing config was replaced"
# the installed hook, as libvirt runs it
rc=0
"$ETC/libvirt/hooks/qemu.d/kumquat" guest-01 prepare begin - <"$XML" >hook.out 2>hook.err || rc=$?
[ "$rc" = 0 ] && [ ! -s hook.out ] || fail "the installed hook: exit $rc, $(cat hook.out hook.err)"
check "$ETC/kumquat/vtpm-mgr.conf" $G1 defined "$SWTPM/$G1/tpm2"
# the cert tool script runs our cert-tool
rc=0
"$KQ_TMP/libexec/kumquat/kumquat-cert-tool" --help >ct.out 2>&1 || rc=$?
grep -q 'cert-tool' ct.out || fail "the cert tool script did not run cert-tool: $(cat ct.out)"
# a hook of someone else's is not overwritten
cp "$ETC/libvirt/hooks/qemu.d/kumquat" saved-hook
echo '#!/bin/sh' >"$ETC/libvirt/hooks/qemu.d/kumquat"
expect 1 "$MGR" --config "$ETC/kumquat/vtpm-mgr.conf" install "${INSTALL[@]}"
grep -q 'was not written by' "$KQ_TMP/last.err" || fail "no reason: $(cat "$KQ_TMP/last.err")"
cp saved-hook "$ETC/libvirt/hooks/qemu.d/kumquat"
expect 0 "$MGR" uninstall "${INSTALL[@]}"
cmp -s "$ETC/swtpm_setup.conf" orig.conf || fail "swtpm_setup.conf not put back: $(cat "$ETC/swtpm_setup.conf")"
[ ! -e "$ETC/swtpm_setup.conf.kumquat-orig" ] || fail "the backup is still there"
[ ! -e "$ETC/libvirt/hooks/qemu.d/kumquat" ] || fail "the hook is still there"
[ ! -e "$KQ_TMP/libexec/kumquat" ] || fail "the cert tool is still there"
[ ! -e "$ETC/kumquat/vtpm-cert-tool.options" ] || fail "the options file is still there"
[ -e "$ETC/kumquat/vtpm-mgr.conf" ] || fail "uninstall removed the config"
# without a swtpm_setup.conf (and without a config) before: both made, the first removed again
rm "$ETC/swtpm_setup.conf"
expect 0 "$MGR" --config "$ETC/kumquat/new.conf" install "${INSTALL[@]}"
[ -e "$ETC/swtpm_setup.conf" ] && [ ! -e "$ETC/swtpm_setup.conf.kumquat-orig" ] || fail "install without a config"
grep -q '^\[vtpm-mgr\]' "$ETC/kumquat/new.conf" || fail "no config written"
# the written config loads; (the hook stops at the empty XML, before the default map in /var/lib)
"$MGR" --config "$ETC/kumquat/new.conf" hook guest-01 prepare begin - </dev/null >/dev/null 2>new.err
grep -q 'the domain XML is empty' new.err && ! grep -q 'config' new.err || fail "the written config: $(cat new.err)"
expect 0 "$MGR" uninstall "${INSTALL[@]}"
[ ! -e "$ETC/swtpm_setup.conf" ] || fail "swtpm_setup.conf left behind"
expect 2 "$MGR" install --hooks-dir relative/dir
expect 2 "$MGR" install --libexec-dir "/tmp/it's"

# ---------------------------------------------------------------- the CLI
step "command line"
expect 0 "$MGR" --version
grep -q '^kumquat-vtpm-mgr ' "$KQ_TMP/last.out" || fail "--version"
expect 0 "$MGR" --help
for c in run hook list enable install uninstall; do expect 0 "$MGR" "$c" --help; done
expect 2 "$MGR"
expect 2 "$MGR" frobnicate
expect 2 "$MGR" --bogus list
expect 1 "$MGR" --config /nonexistent.conf list
expect 0 "$MGR" --config run.conf list
grep -q "^$G2  defined       yes" "$KQ_TMP/last.out" || fail "list: $(cat "$KQ_TMP/last.out")"
echo "OK"
