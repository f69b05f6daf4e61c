#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# kumquat quote check against quotes made by tpm2_quote in swtpm: RSA (RSASSA,
# RSAPSS) and ECC AKs, several hashes, random nonces, PCR selections and
# extends; every tampering must be rejected; tpm2_checkquote must accept the
# same quotes.
. "$(dirname "$0")/lib.sh"
need swtpm tpm2_quote tpm2_checkquote tpm2_createak od xxd
start_swtpm
cd "$KQ_TMP"

ROUNDS=${KQ_QUOTE_ROUNDS:-6}
t tpm2_createek -c ek.ctx -G rsa -u ek.pub >/dev/null
t tpm2_createek -c ek-other.ctx -G ecc -u ek-other.pub >/dev/null

checked=0
for ak in "rsa rsassa sha256" "rsa rsapss sha256" "rsa rsassa sha1" "rsa rsassa sha384" \
	  "ecc ecdsa sha256" "ecc ecdsa sha384"; do
	set -- $ak
	alg=$1 scheme=$2 hash=$3
	echo "AK: $alg $scheme $hash"
	t tpm2_createak -C ek.ctx -c ak.ctx -G "$alg" -g "$hash" -s "$scheme" -u ak.pub -n ak.name >/dev/null
	t tpm2_readpublic -c ak.ctx -f pem -o ak.pem >readpub.txt
	qname=$(awk '/qualified name/{print $3}' readpub.txt)
	t tpm2_createak -C ek-other.ctx -c other.ctx -G "$alg" -g "$hash" -s "$scheme" -u other.pub >/dev/null

	for round in $(seq "$ROUNDS"); do
		# random extends into PCRs 8-16 and 23 (the others need a locality)
		for n in 1 2 3; do
			p=$((RANDOM % 10 + 8)); [ $p = 17 ] && p=23
			t tpm2_pcrextend "$p:sha1=$(randhex 20),sha256=$(randhex 32)"
		done
		# a random selection over one or two banks
		sel1=$(shuf -i 0-23 -n $((RANDOM % 6 + 1)) | sort -n | paste -sd,)
		sel2=$(shuf -i 0-23 -n $((RANDOM % 4 + 1)) | sort -n | paste -sd,)
		case $((RANDOM % 3)) in
		0) sel="sha256:$sel1" ;;
		1) sel="sha1:$sel1+sha256:$sel2" ;;
		*) sel="sha256:$sel1+sha384:$sel2" ;;
		esac
		nonce=$(randhex $((RANDOM % 32 + 1)))
		t tpm2_quote -c ak.ctx -l "$sel" -q "$nonce" -m msg -s sig -o pcrs -g "$hash" --scheme "$scheme" >/dev/null

		expect 0 "$KUMQUAT" quote check --ak ak.pub --message msg --signature sig --pcrs pcrs --nonce "$nonce"
		expect 0 "$KUMQUAT" quote check --ak ak.pem --message msg --signature sig --pcrs pcrs \
			--nonce "$nonce" --signer-name "$qname" --json
		grep -q '"valid":true' last.out || fail "JSON does not say valid"
		if [ "$scheme" = rsapss ]; then
			# tpm2_checkquote 5.4 cannot verify RSAPSS quotes (tpm2-tools issue
			# 3283); check the signature with OpenSSL instead
			tail -c +7 sig >sig.raw
			expect 0 openssl dgst "-$hash" -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:auto \
				-verify ak.pem -signature sig.raw msg
		else
			expect 0 tpm2_checkquote -u ak.pem -m msg -s sig -f pcrs -q "$nonce" -g "$hash"
		fi

		# tampering
		expect 1 "$KUMQUAT" quote check --ak ak.pub --message "$(flip msg)" --signature sig --pcrs pcrs --nonce "$nonce"
		expect 1 "$KUMQUAT" quote check --ak ak.pub --message msg --signature "$(flip sig 6)" --pcrs pcrs --nonce "$nonce"
		# a byte of the first PCR value (after the 132-byte selection, u32 count, u32 list count, u16 size)
		first=$((132 + 4 + 4 + 2))
		cp pcrs pcrs.bad
		printf '\xAA' | dd of=pcrs.bad bs=1 seek=$((first + RANDOM % 20)) conv=notrunc status=none
		expect 1 "$KUMQUAT" quote check --ak ak.pub --message msg --signature sig --pcrs pcrs.bad --nonce "$nonce"
		grep -q "PCR" last.err || fail "PCR tampering reason missing: $(cat last.err)"
		expect 1 "$KUMQUAT" quote check --ak ak.pub --message msg --signature sig --pcrs pcrs --nonce "${nonce}00"
		grep -q "nonce" last.err || fail "nonce reason missing: $(cat last.err)"
		expect 1 "$KUMQUAT" quote check --ak other.pub --message msg --signature sig --pcrs pcrs --nonce "$nonce"
		grep -q "signature" last.err || fail "wrong-AK reason missing: $(cat last.err)"
		expect 1 "$KUMQUAT" quote check --ak ak.pub --message msg --signature sig --pcrs pcrs --nonce "$nonce" \
			--signer-name "000b$(randhex 32)"
		checked=$((checked + 1))
	done
done
echo "$checked quotes checked, each with 6 tamperings rejected"
