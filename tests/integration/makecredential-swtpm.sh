#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# kumquat makecredential output must be opened by tpm2_activatecredential in
# swtpm, for RSA and ECC EKs given as TPM2B_PUBLIC or PEM, and only for the AK
# whose name it was made for.
. "$(dirname "$0")/lib.sh"
need swtpm tpm2_activatecredential tpm2_createek xxd
start_swtpm
cd "$KQ_TMP"

activate() { # ak.ctx ek.ctx cred out
	tflush
	tpm2_startauthsession --policy-session -S session.ctx >/dev/null
	tpm2_policysecret -S session.ctx -c e >/dev/null
	local rc=0
	tpm2_activatecredential -c "$1" -C "$2" -i "$3" -o "$4" -P "session:session.ctx" >/dev/null 2>&1 || rc=$?
	tflush
	return $rc
}

for ekalg in rsa ecc; do
	t tpm2_createek -c ek.ctx -G "$ekalg" -u ek.pub >/dev/null
	t tpm2_readpublic -c ek.ctx -f pem -o ek.pem >/dev/null
	t tpm2_createak -C ek.ctx -c ak.ctx -G rsa -g sha256 -s rsassa -u ak.pub -n ak.name >/dev/null
	t tpm2_createak -C ek.ctx -c ak2.ctx -G ecc -g sha256 -s ecdsa -u ak2.pub -n ak2.name >/dev/null
	for ekfile in ek.pub ek.pem; do
		for len in 1 16 32; do
			head -c "$len" /dev/urandom >secret
			expect 0 "$KUMQUAT" makecredential --ek "$ekfile" --name "$(xxd -p -c 256 ak.name)" \
				--secret secret --output cred
			activate ak.ctx ek.ctx cred out || fail "$ekalg EK ($ekfile): tpm2_activatecredential refused"
			cmp -s secret out || fail "$ekalg EK ($ekfile): activated secret differs"
		done
		# the same credential cannot be activated for another key
		if activate ak2.ctx ek.ctx cred out2; then fail "credential activated for the wrong AK"; fi
		# a tampered credential is refused by the TPM
		if activate ak.ctx ek.ctx "$(flip cred 8)" out3; then
			cmp -s secret out3 && fail "tampered credential yielded the secret"
		fi
	done
	# bad inputs: secret too long, malformed name, garbage EK
	head -c 33 /dev/urandom >long
	expect 2 "$KUMQUAT" makecredential --ek ek.pub --name "$(xxd -p -c 256 ak.name)" --secret long --output c
	expect 2 "$KUMQUAT" makecredential --ek ek.pub --name 000b12 --secret secret --output c
	head -c 100 /dev/urandom >garbage
	expect 2 "$KUMQUAT" makecredential --ek garbage --name "$(xxd -p -c 256 ak.name)" --secret secret --output c
done
echo "makecredential: RSA and ECC EKs, TPM2B_PUBLIC and PEM, activated by the TPM"
