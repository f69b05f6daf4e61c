#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The README's first command, on this build: ./quickstart with guests
# without VMs (quickstart.sh novm) or with real VMs (quickstart.sh vm). It must
# print the host and its three guests attesting, deliver a payload, catch
# guest 2's unlisted binary on guest 2 alone, catch the host's IMA tampering
# on the host and its guests, and leave it all running until
# `./quickstart stop`, which must end every process it started and remove its
# folders. The vm run skips, with the reason, where real VMs cannot run here.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/libvirtd-lib.sh"
: "${KQ_BUILD:?}" "${KQ_SOURCE:?}"
[ "$(id -u)" = 0 ] || skip "not root: the quickstart runs as root"
need swtpm swtpm_setup tpm2_pcrextend jq python3 xxd setsid
export KQ_QUICKSTART_BUILD=$KQ_BUILD KQ_QUICKSTART_DIR=$KQ_TMP/qs
QS=$KQ_SOURCE/quickstart
trap '"$QS" stop >/dev/null 2>&1 || true; kq_cleanup' EXIT
cd "$KQ_TMP"

check() { # MODE: the quickstart's output in MODE.out
	local out=$1.out
	sed 's/\x1b\[[0-9;]*m//g' "$out" >"$1.txt"
	# the first list: the host and three guests under it, all attesting
	awk '/\$ kumquat list/ { n++; next } n == 1 && / attesting / { a++ } END { print a + 0 }' "$1.txt" >"$1.n"
	[ "$(cat "$1.n")" = 4 ] || fail "$1: the first list does not show four agents attesting: $(cat "$1.txt")"
	grep -q 'payload [0-9a-f]\+: delivered' "$1.txt" || fail "$1: no payload delivered"
	grep -q 'ok     only guest 2 failed' "$1.txt" || fail "$1: guest 2's tampering: $(cat "$1.txt")"
	grep -A1 'caught the host ran a program outside its allowlist' "$1.txt" | grep -q 'ima/not_in_allowlist' ||
		fail "$1: the host's tampering: $(cat "$1.txt")"
	grep -A1 'caught so did its guests' "$1.txt" | grep -q 'host/host_failed' || fail "$1: the guests: $(cat "$1.txt")"
	# the last list: everything failed, guests 1 and 3 for their host
	awk '/\$ kumquat list/ { n++ } n == 2' "$1.txt" >"$1.last"
	[ "$(grep -c ' failed ' "$1.last")" = 4 ] || fail "$1: the last list: $(cat "$1.last")"
	[ "$(grep -c 'host/host_failed' "$1.last")" = 2 ] || fail "$1: the last list: $(cat "$1.last")"
	grep -q 'stop it:  ./quickstart stop' "$1.txt" || fail "$1: it does not say how to stop it"
}
stopped() { # MODE
	local p left=
	cat "$KQ_QUICKSTART_DIR"/pids "$KQ_QUICKSTART_DIR"/ns.pid "$KQ_QUICKSTART_DIR"/unshare.pid 2>/dev/null >"$1.pids" || true
	[ -s "$1.pids" ] || fail "$1: the quickstart recorded no processes"
	shm=$(cat "$KQ_QUICKSTART_DIR/payloads.dir")
	expect 0 "$QS" stop
	[ ! -e "$KQ_QUICKSTART_DIR" ] || fail "$1: ./quickstart stop left $KQ_QUICKSTART_DIR"
	[ ! -e "$shm" ] || fail "$1: ./quickstart stop left $shm"
	sleep 0.5
	# gone, or a zombie its new parent has not reaped yet
	for p in $(cat "$1.pids"); do
		[ -e "/proc/$p/stat" ] && [ "$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null)" != Z ] && left="$left $p"
	done
	[ -z "$left" ] || fail "$1: processes left after ./quickstart stop: $(ps -o pid,args -p "${left# }")"
	if pgrep -f "$KQ_QUICKSTART_DIR" >"$1.left"; then
		fail "$1: processes left after ./quickstart stop: $(xargs -r ps -o pid,args -p <"$1.left")"
	fi
}

case ${1:-} in
novm)
	KQ_QUICKSTART_VMS=0 "$QS" >novm.out 2>&1 || fail "the quickstart failed: $(tail -20 novm.out)"
	grep -q 'three guests: swtpm vTPMs and guest agents without VMs (KQ_QUICKSTART_VMS=0)' novm.out ||
		fail "it does not say the guests have no VM"
	check novm
	# it keeps running: the CLI settings it wrote reach the verifier
	(. "$KQ_QUICKSTART_DIR/env" && "$KUMQUAT" list >list.out 2>&1) ||
		fail "kumquat list on the running quickstart: $(cat list.out)"
	stopped novm
	sed -n 's/^\(.*caught.*\)$/   \1/p' novm.txt
	;;
vm)
	libvirtd_need
	ls /var/cache/kumquat-e2e/linux-image-[0-9]*-amd64_*.deb /var/cache/kumquat-e2e/busybox-static_*.deb >/dev/null 2>&1 ||
		skip "Debian's kernel and busybox-static are not in /var/cache/kumquat-e2e (.ci/install-deps downloads them)"
	"$QS" >vm.out 2>&1 || fail "the quickstart failed: $(tail -20 vm.out)"
	grep -q 'three guests: real VMs' vm.out || fail "real VMs can run here, but: $(grep 'three guests' vm.out)"
	check vm
	grep -q 'ima/not_in_allowlist: entry [0-9]* (/tmp/unlisted)' vm.txt || fail "guest 2's reason does not name /tmp/unlisted"
	stopped vm
	sed -n 's/^\(.*caught.*\)$/   \1/p' vm.txt
	;;
*) fail "usage: quickstart.sh novm|vm" ;;
esac
