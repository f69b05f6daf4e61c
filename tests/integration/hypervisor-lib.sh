# SPDX-License-Identifier: Apache-2.0
# For the integration tests of a hypervisor with guests on swtpm vTPMs
# (sourced after lib.sh, in $KQ_TMP, with $REG_URL set and TLS in $KQ_TMP/tls):
#
#   measure_host_boot          the HPE server's UEFI log and IMA list (UEFI, IMA)
#                              in logs/ and extended into the TPM of $KQ_TCTI
#   host_agent_conf NAME TCTI  NAME.conf: evidence over mTLS on a free port,
#                              the vTPM socket NAME.sock, the logs in logs/
#                              (callers append further sections)
#   start_host_agent           runs host.conf; sets HOST_PID, AGENT_PORT, HOST_ID
#   vtpm_mgr_setup             vmgr.conf, kumquat's cert tool for swtpm_setup
#                              (swtpm_setup.conf), domain_xml and hook
#   start_guest N              VM[N], a vTPM made by swtpm_setup with the cert
#                              tool and reported by the hook, five entries of
#                              $IMA measured into it, its guest agent serving;
#                              sets VTCTI[N], GPID[N], GPORT[N], GID[N],
#                              NAME[GID[N]]; a caller's guest_conf_extra N
#                              prints more config sections
#   guest_ext N FILE           appends FILE's IMA entries to guest N's list
#                              and measures them into its vTPM

measure_host_boot() {
	UEFI=$KQ_TESTDATA/eventlog/hpe-perf-uefi.bin
	IMA=$KQ_TESTDATA/ima/hpe-perf-ima-ng-sha256.txt
	mkdir -p logs
	cp "$UEFI" logs/uefi.bin
	cp "$IMA" logs/ima.txt
	echo 3f1f6c1e-8a4b-4c55-9d2e-7b6a5f4e3d2c >logs/boot_id
	"$KUMQUAT" eventlog show --json "$UEFI" |
		jq -r '.events[] | select(.type != "EV_NO_ACTION") | "\(.pcr):sha256=\(.digests.sha256)"' >extends
	"$KUMQUAT" ima replay --extends sha256 "$IMA" >>extends
	tflush
	xargs -a extends -n 64 tpm2_pcrextend || fail "extending the host's PCRs"
}

host_agent_conf() {
	cat >"$1.conf" <<EOC
[agent]
state_dir = $KQ_TMP/$1-state
[tpm]
tcti = $2
[registrar]
url = $REG_URL
ca = $KQ_TMP/tls/ca.pem
[server]
port = 0
cert = $KQ_TMP/tls/host-agent.pem
key = $KQ_TMP/tls/host-agent-key.pem
client_ca = $KQ_TMP/tls/ca.pem
[vtpm]
socket = $KQ_TMP/$1.sock
[logs]
uefi = $KQ_TMP/logs/uefi.bin
ima = $KQ_TMP/logs/ima.txt
boot_id = $KQ_TMP/logs/boot_id
EOC
}

start_host_agent() {
	tflush
	"$KQ_BUILD/host-agent/kumquat-host-agent" --config host.conf >host.log 2>&1 &
	HOST_PID=$!
	KQ_PIDS+=($HOST_PID)
	AGENT_PORT=$(wait_listening host.log)
	[ -S host.sock ] || fail "the host agent has no vTPM socket: $(tail -3 host.log)"
	HOST_ID=$(cat host-state/id)
}

vtpm_mgr_setup() {
	cat >vmgr.conf <<EOC
[vtpm-mgr]
database = $KQ_TMP/vmgr.db
[host-agent]
socket = $KQ_TMP/host.sock
EOC
	cat >certtool <<EOS
#!/bin/sh
exec "$KQ_BUILD/vtpm-mgr/kumquat-vtpm-mgr" cert-tool "\$@"
EOS
	chmod +x certtool
	echo "socket = $KQ_TMP/host.sock" >certtool.conf
	: >certtool.options
	cat >swtpm_setup.conf <<EOC
create_certs_tool = $KQ_TMP/certtool
create_certs_tool_config = $KQ_TMP/certtool.conf
create_certs_tool_options = $KQ_TMP/certtool.options
EOC
}
domain_xml() { # NAME UUID
	cat <<EOX
<domain type='kvm'>
  <name>$1</name>
  <uuid>$2</uuid>
  <memory unit='KiB'>1048576</memory>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>
  </devices>
</domain>
EOX
}
hook() { # N OP SUBOP [CONF]: libvirt's qemu hook for VM N
	domain_xml vm$1 "${VM[$1]}" | "$KQ_BUILD/vtpm-mgr/kumquat-vtpm-mgr" --config "${4:-vmgr.conf}" \
		hook vm$1 "$2" "$3" - 2>>hook.log || fail "the hook ($2 $3) for vm$1 failed"
}

start_guest() { # N
	local i=$1
	step "guest $i: vTPM, enrolment, evidence endpoint"
	VM[$i]=7c9d9a4e-$i$i$i$i-4000-8000-00000000000$i
	hook $i prepare begin
	mkdir -p vtpm$i
	swtpm_setup --tpm2 --tpmstate vtpm$i --createek --create-ek-cert --lock-nvram \
		--config swtpm_setup.conf --vmid "vm$i:${VM[$i]}" --overwrite >vtpm$i.log 2>&1 ||
		fail "swtpm_setup for vm$i: $(tail -5 vtpm$i.log)"
	start_swtpm "$KQ_TMP/vtpm$i"
	VTCTI[$i]=$KQ_TCTI
	hook $i started begin
	# its own IMA list: five entries of the HPE list, measured into the vTPM's PCR 10
	sed -n "$((2 + 5 * i)),$((6 + 5 * i))p" "$IMA" >logs/guest$i-ima.txt
	"$KUMQUAT" ima replay --extends sha256 logs/guest$i-ima.txt >g$i.ext || fail "guest $i IMA: $(cat g$i.ext)"
	tflush
	xargs -a g$i.ext tpm2_pcrextend || fail "extending vm$i's PCR 10"
	echo "b0b0b0b0-0000-4000-8000-00000000000$i" >logs/guest$i-boot_id
	cat >guest$i.conf <<EOC
[agent]
state_dir = $KQ_TMP/guest$i-state
vm_uuid = ${VM[$i]}
[tpm]
tcti = ${VTCTI[$i]}
[registrar]
url = $REG_URL
ca = $KQ_TMP/tls/ca.pem
[server]
port = 0
cert = $KQ_TMP/tls/guest$i.pem
key = $KQ_TMP/tls/guest$i-key.pem
client_ca = $KQ_TMP/tls/ca.pem
[logs]
# no UEFI log in these guests (an empty value is refused): answered as null
uefi = $KQ_TMP/logs/guest$i-no-uefi-log
ima = $KQ_TMP/logs/guest$i-ima.txt
boot_id = $KQ_TMP/logs/guest$i-boot_id
EOC
	! declare -F guest_conf_extra >/dev/null || guest_conf_extra $i >>guest$i.conf
	tflush
	"$KQ_BUILD/guest-agent/kumquat-guest-agent" --config guest$i.conf >guest$i.log 2>&1 &
	GPID[$i]=$!
	KQ_PIDS+=(${GPID[$i]})
	GPORT[$i]=$(wait_listening guest$i.log)
	GID[$i]=$(cat guest$i-state/id)
	NAME[${GID[$i]}]="guest $i"
}

guest_ext() { # N FILE
	"$KUMQUAT" ima replay --extends sha256 "$2" >"$2.ext" || fail "IMA entries: $(cat "$2.ext")"
	# the list first: a quote between the two sees entries still to come, never a PCR the list cannot explain
	cat "$2" >>logs/guest$1-ima.txt
	TPM2TOOLS_TCTI=${VTCTI[$1]} xargs -a "$2.ext" tpm2_pcrextend || fail "extending vm$1's PCR 10"
}
