#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The man pages (man/*.in, as the build fills them in, in $KQ_MAN) against the
# binaries and the code, so that they cannot drift apart:
#  1. every page renders without a warning (groff -man -ww), is plain ASCII,
#     has every @VAR@ filled in, a .TH naming the page and a NAME line
#     "name \- what" (which mandb reads);
#  2. every installed binary, every command of kumquat's command table and of
#     kumquat-vtpm-mgr's has a page (a section of it for kumquat-vtpm-mgr's), each
#     verb of a kumquat command ("kumquat policy add") is in its page, and
#     man/meson.build installs exactly the pages there are;
#  3. every long option that a binary's or a command's --help prints for it is
#     in its page;
#  4. every long option of the code's option tables (struct option, strcmp) is
#     in a page of that code, and every option a page defines (a .TP tag) exists
#     in the code or the --help.
# Without groff, 2-4 still run and the test then skips, saying so.
set -euo pipefail

: "${KQ_BUILD:?run through meson test}" "${KQ_SOURCE:?run through meson test}"
: "${KQ_MAN:?run through meson test}" "${KUMQUAT:?run through meson test}"
: "${KQ_MAN_PAGES:?run through meson test}"

FAILED=0
fail() { echo "FAIL: $*" >&2; FAILED=1; }

T=$(mktemp -d /tmp/kq-man.XXXXXX)
trap 'rm -rf "$T"' EXIT
export LC_ALL=C

# The text of a page's source with roff's escapes taken out: "\-" is "-", font
# changes, "\&", "\%" and "\c" go, comments go.
page_text() {
	sed -e '/^\.\\"/d' -e "/^'\\\\\"/d" \
		-e 's/\\-/-/g' -e 's/\\f[BIRPC]//g' -e 's/\\f(..//g' -e 's/\\f\[[^]]*\]//g' \
		-e 's/\\&//g' -e 's/\\%//g' -e 's/\\c$//' -e 's/\\e/\\/g' "$1"
}

# The long options in the text on stdin, one per line ("--tpm-*" families are
# not options).
long_opts() {
	grep -oE -- '--[a-z0-9][a-z0-9-]*\*?' | grep -v '\*$' | sed 's/-*$//' | grep -E -- '^--..' || true
}

# has_opt TEXTFILE OPT: OPT is in the text as a whole option.
has_opt() {
	grep -qE -- "(^|[^A-Za-z0-9-])$2([^A-Za-z0-9-]|\$)" "$1"
}

# help_opts WHO < help: the options a --help text gives for WHO ("kumquat add",
# "kumquat-vtpm-mgr"): those on WHO's usage lines and their continuation lines
# ("[...", "(..."), and those of the option tables (lines starting with --).
# Usage lines of other commands (one text serves kumquat add, update, ...)
# and the prose are left out.
help_opts() {
	awk -v who="$1" '
	function emit(s) {
		while (match(s, /--[a-z0-9][a-z0-9*-]*/)) {
			print substr(s, RSTART, RLENGTH)
			s = substr(s, RSTART + RLENGTH)
		}
	}
	{
		line = $0
		if (line ~ /^usage: / || line ~ /^ +kumquat[a-z-]*( |$)/) {
			sub(/^usage: +/, "", line)
			sub(/^ +/, "", line)
			mine = substr(line, 1, length(who)) == who && \
				(length(line) == length(who) || substr(line, length(who) + 1, 1) == " ")
			inusage = 1
			if (mine) emit(line)
		} else if (inusage && line ~ /^ +[[(]/) {
			if (mine) emit(line)
		} else if (line ~ /^ +--/) {
			inusage = 0
			emit(line)
		} else {
			inusage = 0
		}
	}' | long_opts | sort -u
}

# help_verbs WHO < help: the verbs of WHO's usage lines ("kumquat policy add").
help_verbs() {
	sed -nE "s/^(usage: +| +)$1 ([a-z][a-z-]*)( .*)?\$/\\2/p" | sort -u
}

# src_opts FILE...: the long options of the code's option tables: struct option
# entries, CLIENT_OPTIONS (tenant/client.h), and strcmp'd "--name" literals.
src_opts() {
	local tables=("$@")
	if grep -q 'CLIENT_OPTIONS' "$@"; then
		tables+=("$KQ_SOURCE/tenant/client.h")
	fi
	{
		{ grep -hoE '\{ *"[a-z0-9][a-z0-9-]*", *(no|required|optional)_argument' "${tables[@]}" || true; } |
			sed -E 's/\{ *"([^"]*)".*/--\1/'
		{ grep -hoE 'str(n)?cmp\([^;]*"--[a-z0-9][a-z0-9-]*' "$@" || true; } |
			sed -nE 's/.*"(--[a-z0-9][a-z0-9-]*)$/\1/p'
	} | sort -u
}

# tp_opts TEXTFILE: the options the page defines, those of its .TP tags.
tp_opts() {
	awk 'tag { print; tag = 0; next } /^\.TP/ { tag = 1 }' "$1" | long_opts | sort -u
}

# run_help NAME ARGS...: the --help text of a binary or command into $T/help.
run_help() {
	local what=$1 rc=0
	shift
	"$@" >"$T/help" 2>"$T/help.err" || rc=$?
	if [ "$rc" != 0 ] || [ ! -s "$T/help" ]; then
		fail "'$what' exits $rc and prints $(wc -c <"$T/help") bytes: $(head -c 300 "$T/help.err")"
		return 1
	fi
}

# --- the pages there are, and the ones man/meson.build installs
SRC_PAGES=()
for f in "$KQ_SOURCE"/man/*.in; do
	SRC_PAGES+=("$(basename "$f" .in)")
done
[ ${#SRC_PAGES[@]} -gt 0 ] || { echo "FAIL: no man/*.in" >&2; exit 1; }
diff <(printf '%s\n' "${SRC_PAGES[@]}" | sort) <(tr ' ' '\n' <<<"$KQ_MAN_PAGES" | sort) >"$T/d" ||
	fail "man/meson.build installs other pages than man/ has (< only in man/, > only in meson.build):
$(cat "$T/d")"

# --- 1. each page renders cleanly and reads as a man page
GROFF=$(command -v groff || true)
for p in "${SRC_PAGES[@]}"; do
	src=man/$p.in
	f=$KQ_MAN/$p
	[ -f "$f" ] || { fail "$src: not generated in $KQ_MAN ($p)"; continue; }
	if grep -n '[^ -~	]' "$KQ_SOURCE/$src" >"$T/na"; then
		fail "$src: characters that are not ASCII (use roff escapes): $(head -3 "$T/na")"
	fi
	if grep -n '@[A-Z_]*@' "$f" >"$T/at"; then
		fail "$src: not filled in by man/meson.build: $(head -3 "$T/at")"
	fi
	name=${p%.*}
	sec=${p##*.}
	th=$(page_text "$f" | sed -n 's/^\.TH \([^ ]*\) \([^ ]*\).*/\1 \2/p' | head -1)
	want="$(tr '[:lower:]' '[:upper:]' <<<"$name") $sec"
	[ "$th" = "$want" ] || fail "$src: .TH says '$th', not '$want'"
	# the NAME section: "name \- what", on the line after .SH NAME
	nl=$(sed -n '/^\.SH NAME/{n;p;q}' "$f")
	page_text <(printf '%s\n' "$nl") | grep -qE "^$name - [^ ]" ||
		fail "$src: the line after .SH NAME is '$nl', not '${name//-/\\-} \\- ...'"
	if [ -n "$GROFF" ]; then
		"$GROFF" -man -ww -z -Tutf8 "$f" >"$T/w" 2>&1 || true
		[ ! -s "$T/w" ] || fail "$src: groff warns:
$(cat "$T/w")"
		"$GROFF" -man -Tutf8 "$f" 2>/dev/null | grep -q . || fail "$src: renders empty"
	fi
done

# --- the binaries meson installs: NAME -> the folder it is built in
declare -A BIN_DIR
while IFS=: read -r mb name; do
	BIN_DIR[$name]=$(basename "$(dirname "$mb")")
done < <(grep -oE "executable\('kumquat[a-z-]*'" "$KQ_SOURCE"/*/meson.build |
	sed -E "s/executable\('([^']*)'/\1/")
[ "${BIN_DIR[kumquat]:-}" = tenant ] || fail "no kumquat executable found in tenant/meson.build"
[ ${#BIN_DIR[@]} -ge 6 ] || fail "only ${#BIN_DIR[@]} binaries found in */meson.build: ${!BIN_DIR[*]}"

# page_of BINARY: kumquat.1, kumquat-DAEMON.8
page_of() { if [ "$1" = kumquat ]; then echo kumquat.1; else echo "$1.8"; fi; }

# check_page PAGE WHO HELP_FILES...: 3. every option the help texts give WHO is in PAGE.
check_page() {
	local p=$1 who=$2
	shift 2
	local text=$T/text.$p
	cat "$@" | help_opts "$who" >"$T/helpopts.$p"
	while read -r o; do
		has_opt "$text" "$o" || fail "man/$p.in: $o is in '$who ... --help' but not in the page"
	done <"$T/helpopts.$p"
}

for p in "${SRC_PAGES[@]}"; do
	[ -f "$KQ_MAN/$p" ] && page_text "$KQ_MAN/$p" >"$T/text.$p"
done

# --- 2, 3. kumquat and its commands
KQ_CMDS=$( (grep -oE '\{ *"[a-z][a-z-]*", *cmd_[a-z_]+' "$KQ_SOURCE/tenant/kumquat.c" |
	sed -E 's/\{ *"([^"]*)".*/\1/'
	"$KUMQUAT" --help | sed -n '/^commands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p') | sort -u)
[ -n "$KQ_CMDS" ] || fail "no commands found in tenant/kumquat.c or kumquat --help"
if [ -f "$T/text.kumquat.1" ]; then
	run_help "kumquat --help" "$KUMQUAT" --help && check_page kumquat.1 kumquat "$T/help"
	for o in --help --version; do
		has_opt "$T/text.kumquat.1" "$o" || fail "man/kumquat.1.in: $o is not in the page"
	done
else
	fail "kumquat has no page man/kumquat.1.in"
fi
for c in $KQ_CMDS; do
	p=kumquat-$c.1
	if [ ! -f "$T/text.$p" ]; then
		fail "'kumquat $c' (in kumquat's command table) has no page man/$p.in"
		continue
	fi
	[ -f "$T/text.kumquat.1" ] && ! grep -q "kumquat-$c(1)" <(sed 's/\.BR \([^ ]*\) (\([0-9]\))/\1(\2)/' "$T/text.kumquat.1") &&
		fail "man/kumquat.1.in does not refer to kumquat-$c(1)"
	run_help "kumquat $c --help" "$KUMQUAT" "$c" --help || continue
	cp "$T/help" "$T/help.$c"
	helps=("$T/help.$c")
	for v in $(help_verbs "kumquat $c" <"$T/help.$c"); do
		grep -qE "(^|[^a-z-])kumquat $c $v([^a-z-]|\$)" "$T/text.$p" ||
			fail "man/$p.in: 'kumquat $c $v' (from 'kumquat $c --help') is not in the page"
		run_help "kumquat $c $v --help" "$KUMQUAT" "$c" "$v" --help || continue
		cp "$T/help" "$T/help.$c.$v"
		helps+=("$T/help.$c.$v")
	done
	check_page "$p" "kumquat $c" "${helps[@]}"
done

# --- 2, 3. the daemons and kumquat-vtpm-mgr
for b in "${!BIN_DIR[@]}"; do
	[ "$b" = kumquat ] && continue
	p=$(page_of "$b")
	bin=$KQ_BUILD/${BIN_DIR[$b]}/$b
	if [ ! -f "$T/text.$p" ]; then
		fail "$b has no page man/$p.in"
		continue
	fi
	[ -x "$bin" ] || { fail "$bin is not built"; continue; }
	run_help "$b --help" "$bin" --help || continue
	cp "$T/help" "$T/help.$b"
	helps=("$T/help.$b")
	# a binary with commands: each has a section (.SS) and its own --help
	sed -n '/^commands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p' "$T/help.$b" >"$T/cmds.$b"
	while read -r c; do
		grep -qE "^\.SS \"?$c( |\"|\$)" "$T/text.$p" ||
			fail "man/$p.in: '$b $c' has no section (.SS $c)"
		run_help "$b $c --help" "$bin" "$c" --help || continue
		cp "$T/help" "$T/help.$b.$c"
		helps+=("$T/help.$b.$c")
	done <"$T/cmds.$b"
	check_page "$p" "$b" "${helps[@]}"
done
# kumquat-vtpm-mgr's table in the code, in case --help lost one
if [ -f "$T/text.kumquat-vtpm-mgr.8" ]; then
	while read -r c; do
		grep -qE "^\.SS \"?$c( |\"|\$)" "$T/text.kumquat-vtpm-mgr.8" ||
			fail "man/kumquat-vtpm-mgr.8.in: '$c' (in vtpm-mgr/main.c's command table) has no section (.SS $c)"
	done < <(grep -oE '\{ *"[a-z][a-z-]*", *vtpm_[a-z_]+' "$KQ_SOURCE/vtpm-mgr/main.c" | sed -E 's/\{ *"([^"]*)".*/\1/')
fi

# --- 4. the code's option tables and the pages' .TP tags
# code -> pages: a daemon's folder (all its .c files) -> its page; each
# tenant/*.c -> the pages of the kumquat commands whose cmd_ function it defines.
declare -A CODE_PAGES
for b in "${!BIN_DIR[@]}"; do
	[ "$b" = kumquat ] || CODE_PAGES[${BIN_DIR[$b]}]=$(page_of "$b")
done
CODE_PAGES[tenant/kumquat.c]=kumquat.1
while read -r c fn; do
	f=$(grep -lE "^int $fn\(" "$KQ_SOURCE"/tenant/*.c | head -1 || true)
	[ -n "$f" ] || { fail "tenant: no file defines $fn (kumquat $c)"; continue; }
	k=tenant/$(basename "$f")
	CODE_PAGES[$k]="${CODE_PAGES[$k]:+${CODE_PAGES[$k]} }kumquat-$c.1"
done < <(grep -oE '\{ *"[a-z][a-z-]*", *cmd_[a-z_]+' "$KQ_SOURCE/tenant/kumquat.c" |
	sed -E 's/\{ *"([^"]*)", *(cmd_[a-z_]+)/\1 \2/')

declare -A KNOWN # page -> the options its code and its --help know
for k in "${!CODE_PAGES[@]}"; do
	if [[ $k == *.c ]]; then
		src_opts "$KQ_SOURCE/$k" >"$T/srcopts"
	else
		src_opts "$KQ_SOURCE/$k"/*.c >"$T/srcopts"
	fi
	read -ra pages <<<"${CODE_PAGES[$k]}"
	while read -r o; do
		found=0
		for p in "${pages[@]}"; do
			[ -f "$T/text.$p" ] && has_opt "$T/text.$p" "$o" && found=1
		done
		[ "$found" = 1 ] || fail "$o (in the option tables of $k) is in none of its pages: ${pages[*]/%/.in}"
	done <"$T/srcopts"
	for p in "${pages[@]}"; do
		KNOWN[$p]="${KNOWN[$p]:-} $(cat "$T/srcopts" "$T/helpopts.$p" 2>/dev/null | tr '\n' ' ')"
	done
done
for p in "${SRC_PAGES[@]}"; do
	[ -f "$T/text.$p" ] || continue
	for o in $(tp_opts "$T/text.$p"); do
		# shellcheck disable=SC2086 # a list of words
		printf '%s\n' ${KNOWN[$p]:-} | grep -qxF -- "$o" ||
			fail "man/$p.in defines $o (a .TP tag), which neither the code nor the --help of $p knows"
	done
done

if [ "$FAILED" != 0 ]; then
	echo "FAIL: the man pages and the binaries disagree; see above" >&2
	exit 1
fi
if [ -z "$GROFF" ]; then
	echo "SKIP: groff is not installed (Debian: groff-base): ${#SRC_PAGES[@]} pages checked against the code but not rendered"
	exit 77
fi
echo "ok: ${#SRC_PAGES[@]} pages render cleanly and list every command and option of the binaries"
