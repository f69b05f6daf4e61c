/* SPDX-License-Identifier: Apache-2.0 */
/* kumquat quote check, kumquat makecredential: offline TPM evidence tools. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "tpm/tpm.h"

static const char quote_usage[] =
	"usage: kumquat quote check --ak FILE --message FILE --signature FILE\n"
	"                           [--pcrs FILE] [--nonce HEX] [--signer-name HEX] [--json]\n"
	"\n"
	"Verifies a TPM 2.0 quote as written by `tpm2_quote -m FILE -s FILE -o FILE`.\n"
	"  --ak FILE           the AK public key: TPM2B_PUBLIC (tpm2_createak -u), TPMT_PUBLIC,\n"
	"                      PEM or DER (tpm2_createak -f pem)\n"
	"  --message FILE      the TPMS_ATTEST that was signed (tpm2_quote -m)\n"
	"  --signature FILE    the TPMT_SIGNATURE (tpm2_quote -s)\n"
	"  --pcrs FILE         the PCR values (tpm2_quote -o); their digest must match the quote\n"
	"  --nonce HEX         the expected qualifying data (tpm2_quote -q); must equal extraData\n"
	"  --signer-name HEX   the expected qualified name of the AK (tpm2_readpublic's\n"
	"                      \"qualified name\")\n"
	"  --json              machine-readable output\n"
	"Without --nonce a replayed quote cannot be told from a fresh one; without --pcrs\n"
	"the PCR values are not checked. Exit: 0 valid, 1 invalid, 2 usage or unreadable input.\n";

static struct json_object *pcrs_json(const struct tpm_pcrs *pcrs)
{
	struct json_object *o = json_object_new_object();

	for (size_t b = 0; b < pcrs->nbanks; b++) {
		const struct tpm_pcr_bank *bank = &pcrs->bank[b];
		struct json_object *jb = json_object_new_object();

		for (unsigned i = 0; i < TPM_NUM_PCRS; i++) {
			char k[4];
			if (!(bank->mask & (1u << i)))
				continue;
			snprintf(k, sizeof(k), "%u", i);
			json_object_object_add(jb, k, cli_json_hex(bank->value[i], kq_hash_size(bank->alg)));
		}
		json_object_object_add(o, kq_hash_name(bank->alg), jb);
	}
	return o;
}

static struct json_object *selection_json(const TPML_PCR_SELECTION *sel)
{
	struct json_object *o = json_object_new_object();

	for (uint32_t i = 0; i < sel->count && i < TPM2_NUM_PCR_BANKS; i++) {
		const TPMS_PCR_SELECTION *s = &sel->pcrSelections[i];
		struct json_object *a = json_object_new_array();
		const char *name = kq_hash_name(s->hash);
		char alt[16];

		for (unsigned k = 0; k < s->sizeofSelect && k < 4; k++)
			for (unsigned bit = 0; bit < 8; bit++)
				if (s->pcrSelect[k] & (1u << bit))
					json_object_array_add(a, json_object_new_int((int)(8 * k + bit)));
		if (!name) {
			snprintf(alt, sizeof(alt), "0x%04x", s->hash);
			name = alt;
		}
		json_object_object_add(o, name, a);
	}
	return o;
}

static const char *check_name(int r)
{
	switch (r) {
	case TPM_E_MALFORMED: return "malformed";
	case TPM_E_NOT_QUOTE: return "not_a_quote";
	case TPM_E_SIGNATURE: return "signature";
	case TPM_E_NONCE: return "nonce";
	case TPM_E_PCRS: return "pcr_digest";
	case TPM_E_SIGNER: return "signer";
	default: return "error";
	}
}

static int quote_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ak", required_argument, NULL, 'a' },
		{ "message", required_argument, NULL, 'm' },
		{ "signature", required_argument, NULL, 's' },
		{ "pcrs", required_argument, NULL, 'p' },
		{ "nonce", required_argument, NULL, 'n' },
		{ "signer-name", required_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *ak_path = NULL, *msg_path = NULL, *sig_path = NULL, *pcr_path = NULL;
	const char *nonce_hex = NULL, *signer_hex = NULL;
	_cleanup_free_ uint8_t *ak_buf = NULL, *msg = NULL, *sigbuf = NULL, *pcrbuf = NULL;
	size_t ak_len, msg_len, sig_len, pcr_len, nonce_len = 0;
	uint8_t nonce[sizeof(((TPM2B_DATA *)0)->buffer)];
	struct tpm_key key = { 0 };
	struct tpm_pcrs pcrs;
	TPM2B_NAME signer;
	TPMT_SIGNATURE sig;
	TPMS_ATTEST attest;
	bool json = false;
	int c, r, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'a': ak_path = optarg; break;
		case 'm': msg_path = optarg; break;
		case 's': sig_path = optarg; break;
		case 'p': pcr_path = optarg; break;
		case 'n': nonce_hex = optarg; break;
		case 'q': signer_hex = optarg; break;
		case 'j': json = true; break;
		case 'h': fputs(quote_usage, stdout); return KQ_EXIT_OK;
		default: fputs(quote_usage, stderr); return KQ_EXIT_USAGE;
		}
	}
	if (optind != argc || !ak_path || !msg_path || !sig_path)
		return cli_fail(KQ_EXIT_USAGE, "quote check needs --ak, --message and --signature (see --help)");
	if (nonce_hex && kq_hex_decode(nonce_hex, nonce, sizeof(nonce), &nonce_len) < 0)
		return cli_fail_lib(KQ_EXIT_USAGE, "--nonce");
	if (signer_hex) {
		size_t n;
		if (kq_hex_decode(signer_hex, signer.name, sizeof(signer.name), &n) < 0)
			return cli_fail_lib(KQ_EXIT_USAGE, "--signer-name");
		signer.size = (UINT16)n;
	}
	if (cli_read(ak_path, &ak_buf, &ak_len) < 0 || cli_read(msg_path, &msg, &msg_len) < 0 ||
	    cli_read(sig_path, &sigbuf, &sig_len) < 0 ||
	    (pcr_path && cli_read(pcr_path, &pcrbuf, &pcr_len) < 0))
		return KQ_EXIT_USAGE;

	/* what the files hold is evidence: a malformed file makes the quote invalid */
	r = tpm_key_load(ak_buf, ak_len, &key);
	if (r < 0) {
		rc = cli_fail_lib(r == -ENOTSUP ? KQ_EXIT_USAGE : KQ_EXIT_INVALID, "AK");
		goto out_json;
	}
	r = tpm_signature_unmarshal(sigbuf, sig_len, &sig);
	if (r < 0) {
		rc = cli_fail_lib(KQ_EXIT_INVALID, "signature");
		goto out_json;
	}
	if (pcr_path) {
		r = tpm_pcrfile_parse(pcrbuf, pcr_len, &pcrs);
		if (r < 0) {
			rc = cli_fail_lib(KQ_EXIT_INVALID, "PCR file");
			goto out_json;
		}
	}
	r = tpm_quote_verify(&(struct tpm_quote_check){
				     .attest = msg, .attest_len = msg_len, .sig = &sig, .key = key.pkey,
				     .nonce = nonce_hex ? nonce : NULL, .nonce_len = nonce_len,
				     .pcrs = pcr_path ? &pcrs : NULL,
				     .signer = signer_hex ? &signer : NULL },
			     &attest);
	if (r < 0) {
		rc = cli_fail_lib(KQ_EXIT_INVALID, "quote invalid");
		goto out_json;
	}
	rc = KQ_EXIT_OK;
	if (!json) {
		char *s;
		printf("quote valid: %s/%s signature", tpm_sig_scheme_name(sig.sigAlg), kq_hash_name(tpm_sig_hash(&sig)));
		printf(", nonce %s", nonce_hex ? "matches" : "NOT CHECKED");
		printf(", PCRs %s", pcr_path ? "match" : "NOT CHECKED");
		if (signer_hex)
			printf(", signer matches");
		putchar('\n');
		s = kq_hex_dup(attest.extraData.buffer, attest.extraData.size);
		printf("extraData: %s\n", s ? s : "");
		free(s);
		printf("clock: %llu resetCount: %u restartCount: %u safe: %s\n",
		       (unsigned long long)attest.clockInfo.clock, attest.clockInfo.resetCount,
		       attest.clockInfo.restartCount, attest.clockInfo.safe ? "yes" : "no");
		if (pcr_path)
			for (size_t b = 0; b < pcrs.nbanks; b++)
				for (unsigned i = 0; i < TPM_NUM_PCRS; i++)
					if (pcrs.bank[b].mask & (1u << i)) {
						s = kq_hex_dup(pcrs.bank[b].value[i], kq_hash_size(pcrs.bank[b].alg));
						printf("%s:%-2u %s\n", kq_hash_name(pcrs.bank[b].alg), i, s ? s : "");
						free(s);
					}
	}
out_json:
	if (json) {
		struct json_object *o = json_object_new_object(), *chk = json_object_new_object();

		json_object_object_add(o, "valid", json_object_new_boolean(rc == KQ_EXIT_OK));
		if (rc != KQ_EXIT_OK) {
			json_object_object_add(o, "failed_check", json_object_new_string(check_name(r)));
			json_object_object_add(o, "reason", json_object_new_string(kq_errmsg()));
		} else {
			json_object_object_add(chk, "signature", json_object_new_boolean(true));
			json_object_object_add(chk, "nonce", nonce_hex ? json_object_new_boolean(true) : NULL);
			json_object_object_add(chk, "pcr_digest", pcr_path ? json_object_new_boolean(true) : NULL);
			json_object_object_add(chk, "signer", signer_hex ? json_object_new_boolean(true) : NULL);
			json_object_object_add(o, "checks", chk);
			chk = NULL;
			json_object_object_add(o, "signature_scheme", json_object_new_string(tpm_sig_scheme_name(sig.sigAlg)));
			json_object_object_add(o, "signature_hash", json_object_new_string(kq_hash_name(tpm_sig_hash(&sig))));
			json_object_object_add(o, "qualified_signer", cli_json_hex(attest.qualifiedSigner.name, attest.qualifiedSigner.size));
			json_object_object_add(o, "extra_data", cli_json_hex(attest.extraData.buffer, attest.extraData.size));
			json_object_object_add(o, "clock", json_object_new_uint64(attest.clockInfo.clock));
			json_object_object_add(o, "reset_count", json_object_new_int64(attest.clockInfo.resetCount));
			json_object_object_add(o, "restart_count", json_object_new_int64(attest.clockInfo.restartCount));
			json_object_object_add(o, "safe", json_object_new_boolean(attest.clockInfo.safe));
			json_object_object_add(o, "firmware_version", json_object_new_uint64(attest.firmwareVersion));
			json_object_object_add(o, "pcr_select", selection_json(&attest.attested.quote.pcrSelect));
			json_object_object_add(o, "pcr_digest", cli_json_hex(attest.attested.quote.pcrDigest.buffer, attest.attested.quote.pcrDigest.size));
			if (pcr_path)
				json_object_object_add(o, "pcrs", pcrs_json(&pcrs));
			if (key.has_public)
				json_object_object_add(o, "ak_name", cli_json_hex(key.name.name, key.name.size));
		}
		json_object_put(chk);
		cli_print_json(o);
	}
	tpm_key_clear(&key);
	return rc;
}

int cmd_quote(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "check") == 0)
		return quote_check(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(quote_usage, stdout);
		return KQ_EXIT_OK;
	}
	return cli_fail(KQ_EXIT_USAGE, "quote: expected the subcommand 'check' (see 'kumquat quote --help')");
}

static const char mkcred_usage[] =
	"usage: kumquat makecredential --ek FILE --name HEX --secret FILE --output FILE\n"
	"\n"
	"Makes in software what TPM2_MakeCredential makes: a challenge that only the TPM\n"
	"holding the EK can open, and only for the object with that name, with\n"
	"`tpm2_activatecredential`.\n"
	"  --ek FILE       the EK public key: TPM2B_PUBLIC (tpm2_createek -u) or PEM/DER\n"
	"                  (then the TCG default template L-1/L-2 is assumed)\n"
	"  --name HEX      the TPM name of the key to be activated (e.g. the AK's)\n"
	"  --secret FILE   the credential, 1 to 32 bytes for a SHA-256 EK\n"
	"  --output FILE   the tpm2-tools credential file to write\n";

int cmd_makecredential(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ek", required_argument, NULL, 'e' },
		{ "name", required_argument, NULL, 'n' },
		{ "secret", required_argument, NULL, 's' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *ek_path = NULL, *name_hex = NULL, *secret_path = NULL, *out_path = NULL;
	_cleanup_free_ uint8_t *ek_buf = NULL, *out = NULL;
	uint8_t *secret = NULL;
	size_t ek_len, secret_len = 0, out_len, n;
	struct tpm_key ek = { 0 };
	TPM2B_ID_OBJECT blob;
	TPM2B_ENCRYPTED_SECRET seed;
	TPM2B_NAME name;
	int c, r, rc = KQ_EXIT_USAGE;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'e': ek_path = optarg; break;
		case 'n': name_hex = optarg; break;
		case 's': secret_path = optarg; break;
		case 'o': out_path = optarg; break;
		case 'h': fputs(mkcred_usage, stdout); return KQ_EXIT_OK;
		default: fputs(mkcred_usage, stderr); return KQ_EXIT_USAGE;
		}
	}
	if (optind != argc || !ek_path || !name_hex || !secret_path || !out_path)
		return cli_fail(KQ_EXIT_USAGE, "makecredential needs --ek, --name, --secret and --output");
	if (kq_hex_decode(name_hex, name.name, sizeof(name.name), &n) < 0)
		return cli_fail_lib(KQ_EXIT_USAGE, "--name");
	name.size = (UINT16)n;
	if (n < 2 || kq_hash_size((uint16_t)(name.name[0] << 8 | name.name[1])) + 2 != n)
		return cli_fail(KQ_EXIT_USAGE, "--name: not a TPM name (algorithm id and digest)");
	if (cli_read(ek_path, &ek_buf, &ek_len) < 0)
		return KQ_EXIT_USAGE;
	r = kq_read_file(secret_path, 1024, &secret, &secret_len);
	if (r < 0)
		return cli_fail_lib(KQ_EXIT_USAGE, "--secret");
	r = tpm_key_load(ek_buf, ek_len, &ek);
	if (r < 0) {
		cli_fail_lib(KQ_EXIT_USAGE, "EK");
		goto out;
	}
	if (!ek.has_public) {
		r = tpm_ek_default_public(ek.pkey, &ek.pub);
		if (r < 0) {
			cli_fail_lib(KQ_EXIT_USAGE, "EK");
			goto out;
		}
	}
	r = tpm_make_credential(&ek.pub, &name, secret, secret_len, &blob, &seed);
	if (r < 0) {
		cli_fail_lib(KQ_EXIT_USAGE, "makecredential");
		goto out;
	}
	r = tpm_credfile_write(&blob, &seed, &out, &out_len);
	if (r < 0 || (r = kq_write_file(out_path, out, out_len)) < 0) {
		cli_fail_lib(KQ_EXIT_USAGE, "output");
		goto out;
	}
	rc = KQ_EXIT_OK;
out:
	kq_free_secret(secret, secret_len);
	OPENSSL_cleanse(&blob, sizeof(blob));
	tpm_key_clear(&ek);
	return rc;
}
