/* SPDX-License-Identifier: Apache-2.0 */
/* kumquat ima replay|verify-sigs: offline checks of an IMA measurement list. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "crypto/crypto.h"
#include "ima/ima.h"

static void usage_replay(FILE *f)
{
	fputs("usage: kumquat ima replay FILE [--json] [options]\n"
	      "\n"
	      "Replays an IMA measurement list (ascii_runtime_measurements or\n"
	      "binary_runtime_measurements, detected) into PCR values per bank, and\n"
	      "checks every entry's template hash against its data.\n"
	      "\n"
	      "  --json                   print {\"entries\", \"pcr10\", \"bad_entries\", ...}\n"
	      "  --banks LIST             banks to replay, comma-separated\n"
	      "                           (sha1,sha256,sha384,sha512; default sha1,sha256)\n"
	      "  --format ascii|binary    do not detect the format\n"
	      "  --template-hash-alg ALG  algorithm of the recorded template hashes\n"
	      "                           (binary default sha1; ascii: by hex length)\n"
	      "  --big-endian             binary list from a big-endian machine\n"
	      "                           without ima_canonical_fmt\n"
	      "  --extends BANK           instead, print what the kernel extended for\n"
	      "                           each entry into BANK, one \"PCR:BANK=HEX\" line\n"
	      "                           each (tpm2_pcrextend's argument form)\n"
	      "\n"
	      "exit status: 0 every entry matches its template hash, 1 a bad entry or a\n"
	      "malformed list, 2 usage or unreadable file\n", f);
}

static void usage_verify(FILE *f)
{
	fputs("usage: kumquat ima verify-sigs FILE --key FILE [--key FILE...] [--json] [options]\n"
	      "\n"
	      "Checks the IMA v2 file signatures (sig field of ima-sig and similar\n"
	      "templates) against the given keys: PEM public keys or X.509\n"
	      "certificates (PEM or DER), RSA or EC. Key ids are the last 4 bytes\n"
	      "of the SHA-1 of the public key, as evmctl computes them.\n"
	      "\n"
	      "  --key FILE               a key or certificate file (repeatable)\n"
	      "  --json                   print every entry's status as JSON\n"
	      "  --format, --template-hash-alg, --big-endian   as for 'ima replay'\n"
	      "\n"
	      "Each entry of a template with a sig field is valid, invalid, unknown-key\n"
	      "or no-signature.\n"
	      "exit status: 0 no signature is invalid or from an unknown key, 1 one is\n"
	      "(or the list is malformed), 2 usage, unreadable file or unusable key\n", f);
}

static void usage(FILE *f)
{
	fputs("usage: kumquat ima replay FILE [--json] [options]\n"
	      "       kumquat ima verify-sigs FILE --key FILE... [--json] [options]\n"
	      "run 'kumquat ima replay --help' or 'kumquat ima verify-sigs --help' for details\n", f);
}

/* Text safe for a terminal: bytes outside printable ASCII become \xHH. */
static char *printable(const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char *out = malloc(4 * len + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\') {
			*o++ = (char)c;
		} else {
			*o++ = '\\';
			*o++ = 'x';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	return out;
}

static bool valid_utf8(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t k;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else
			return false;
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		i += k + 1;
	}
	return true;
}

/* Adds "path" (UTF-8) or "path_hex" (anything else) to obj. */
static void json_add_path(struct json_object *obj, const struct ima_entry *e)
{
	if (!e->path)
		return;
	if (valid_utf8((const unsigned char *)e->path, e->path_len))
		json_object_object_add(obj, "path", json_object_new_string_len(e->path, (int)e->path_len));
	else
		json_object_object_add(obj, "path_hex",
				       cli_json_hex((const uint8_t *)e->path, e->path_len));
}

static const char *entry_path(const struct ima_entry *e, char **tofree)
{
	*tofree = e->path ? printable(e->path, e->path_len) : NULL;
	return *tofree ? *tofree : "?";
}

struct common_opts {
	struct ima_parse_opts parse;
	bool json;
	const char *file;
};

enum { OPT_FORMAT = 0x100, OPT_TH_ALG, OPT_BIG_ENDIAN, OPT_BANKS, OPT_JSON, OPT_KEY, OPT_HELP, OPT_EXTENDS };

/* Handles the options both subcommands share; 1 if consumed, 0 if not, <0 on error. */
static int common_opt(int c, struct common_opts *o)
{
	switch (c) {
	case OPT_JSON:
		o->json = true;
		return 1;
	case OPT_FORMAT:
		if (strcmp(optarg, "ascii") == 0)
			o->parse.format = IMA_FORMAT_ASCII;
		else if (strcmp(optarg, "binary") == 0)
			o->parse.format = IMA_FORMAT_BINARY;
		else
			return cli_fail(-1, "ima: --format must be ascii or binary");
		return 1;
	case OPT_TH_ALG:
		o->parse.template_hash_alg = kq_hash_from_name(optarg);
		if (!o->parse.template_hash_alg)
			return cli_fail(-1, "ima: unknown hash algorithm '%s'", optarg);
		return 1;
	case OPT_BIG_ENDIAN:
		o->parse.big_endian = true;
		return 1;
	}
	return 0;
}

static int parse_banks(const char *s, unsigned *ret)
{
	unsigned banks = 0;

	for (const char *p = s;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char name[16];
		unsigned b = 0;

		if (n > 0 && n < sizeof(name)) {
			memcpy(name, p, n);
			name[n] = '\0';
			b = ima_bank_from_alg(kq_hash_from_name(name));
		}
		if (!b)
			return cli_fail(-1, "ima: unknown bank '%.*s' (sha1, sha256, sha384, sha512)",
					(int)n, p);
		banks |= b;
		if (!comma)
			break;
		p = comma + 1;
	}
	*ret = banks;
	return 0;
}

static int load_list(const struct common_opts *o, struct ima_list **ret)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;
	int r;

	if (cli_read(o->file, &buf, &len) < 0)
		return KQ_EXIT_USAGE;
	r = ima_list_parse(buf, len, &o->parse, ret);
	if (r == -ENOMEM)
		return cli_fail(KQ_EXIT_USAGE, "%s: %s", o->file, kq_errmsg());
	if (r < 0)
		return cli_fail(KQ_EXIT_INVALID, "%s: %s", o->file, kq_errmsg());
	return KQ_EXIT_OK;
}

static struct json_object *json_banks(const struct ima_replay_state *st, unsigned pcr)
{
	struct json_object *o = json_object_new_object();

	for (unsigned i = 0; i < IMA_NUM_BANKS; i++) {
		uint16_t alg = ima_bank_alg(i);
		const uint8_t *v = ima_replay_pcr(st, pcr, alg);

		if (v)
			json_object_object_add(o, kq_hash_name(alg), cli_json_hex(v, kq_hash_size(alg)));
	}
	return o;
}

static void print_banks(const struct ima_replay_state *st, unsigned pcr)
{
	for (unsigned i = 0; i < IMA_NUM_BANKS; i++) {
		uint16_t alg = ima_bank_alg(i);
		const uint8_t *v = ima_replay_pcr(st, pcr, alg);
		char hex[2 * KQ_MAX_DIGEST + 1];

		if (!v)
			continue;
		kq_hex_encode(v, kq_hash_size(alg), hex);
		printf("pcr%u %s: %s\n", pcr, kq_hash_name(alg), hex);
	}
}

static int cmd_replay(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "template-hash-alg", required_argument, NULL, OPT_TH_ALG },
		{ "big-endian", no_argument, NULL, OPT_BIG_ENDIAN },
		{ "banks", required_argument, NULL, OPT_BANKS },
		{ "extends", required_argument, NULL, OPT_EXTENDS },
		{ "help", no_argument, NULL, OPT_HELP },
		{ 0 }
	};
	_cleanup_(ima_list_freep) struct ima_list *l = NULL;
	struct common_opts o = { 0 };
	uint16_t extends = 0;
	struct ima_replay_state st;
	unsigned banks = IMA_BANKS_DEFAULT;
	const struct ima_entry *first_bad = NULL;
	int c, r;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if ((r = common_opt(c, &o)) < 0)
			return KQ_EXIT_USAGE;
		if (r)
			continue;
		switch (c) {
		case OPT_BANKS:
			if (parse_banks(optarg, &banks) < 0)
				return KQ_EXIT_USAGE;
			break;
		case OPT_EXTENDS:
			extends = kq_hash_from_name(optarg);
			if (!extends)
				return cli_fail(KQ_EXIT_USAGE, "ima replay: unknown bank '%s'", optarg);
			break;
		case 'h':
		case OPT_HELP:
			usage_replay(stdout);
			return KQ_EXIT_OK;
		default:
			usage_replay(stderr);
			return KQ_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage_replay(stderr);
		return KQ_EXIT_USAGE;
	}
	o.file = argv[optind];

	if ((r = load_list(&o, &l)) != KQ_EXIT_OK)
		return r;
	if (extends) {
		uint8_t d[KQ_MAX_DIGEST];
		char hex[2 * KQ_MAX_DIGEST + 1];

		for (size_t i = 0; i < l->n_entries; i++) {
			if (ima_entry_bank_digest(&l->entries[i], extends, d) < 0)
				return cli_fail_lib(KQ_EXIT_USAGE, "ima replay");
			kq_hex_encode(d, kq_hash_size(extends), hex);
			printf("%u:%s=%s\n", l->entries[i].pcr, kq_hash_name(extends), hex);
		}
		return KQ_EXIT_OK;
	}
	ima_replay_init(&st, banks, l->first_index);
	if (ima_replay_list(&st, l) < 0)
		return cli_fail_lib(KQ_EXIT_USAGE, "ima replay");
	for (size_t i = 0; i < l->n_entries && !first_bad; i++)
		if (ima_entry_is_bad(&l->entries[i]))
			first_bad = &l->entries[i];

	if (o.json) {
		struct json_object *out = json_object_new_object(), *bad = json_object_new_array();
		struct json_object *viol = json_object_new_array();

		json_object_object_add(out, "entries", json_object_new_uint64(l->n_entries));
		json_object_object_add(out, "format", json_object_new_string(
			l->format == IMA_FORMAT_BINARY ? "binary" : "ascii"));
		json_object_object_add(out, "pcr10", json_banks(&st, IMA_PCR));
		for (size_t i = 0; i < l->n_entries; i++) {
			const struct ima_entry *e = &l->entries[i];

			if (ima_entry_is_bad(e))
				json_object_array_add(bad, json_object_new_uint64(e->index));
			if (e->violation)
				json_object_array_add(viol, json_object_new_uint64(e->index));
		}
		json_object_object_add(out, "bad_entries", bad);
		json_object_object_add(out, "violations", viol);
		if (st.pcrs_used & ~(1u << IMA_PCR)) {
			struct json_object *other = json_object_new_object();

			for (unsigned p = 0; p < IMA_NUM_PCRS; p++) {
				char key[8];

				if (p == IMA_PCR || !(st.pcrs_used & (1u << p)))
					continue;
				snprintf(key, sizeof(key), "%u", p);
				json_object_object_add(other, key, json_banks(&st, p));
			}
			json_object_object_add(out, "other_pcrs", other);
		}
		cli_print_json(out);
	} else {
		printf("entries: %zu\n", l->n_entries);
		print_banks(&st, IMA_PCR);
		for (unsigned p = 0; p < IMA_NUM_PCRS; p++)
			if (p != IMA_PCR && (st.pcrs_used & (1u << p)))
				print_banks(&st, p);
		printf("violations: %llu\n", (unsigned long long)st.violations);
		printf("bad entries: %llu\n", (unsigned long long)st.bad_entries);
	}

	if (first_bad) {
		_cleanup_free_ char *p = NULL;

		return cli_fail(KQ_EXIT_INVALID,
				"entry %llu (%s): template hash does not match the template data%s",
				(unsigned long long)first_bad->index, entry_path(first_bad, &p),
				st.bad_entries > 1 ? " (and more bad entries)" : "");
	}
	return KQ_EXIT_OK;
}

static bool has_sig_field(const struct ima_entry *e)
{
	for (unsigned i = 0; i < e->tmpl->n_fields; i++)
		if (e->tmpl->fields[i] == IMA_FIELD_SIG)
			return true;
	return false;
}

static int cmd_verify_sigs(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "key", required_argument, NULL, OPT_KEY },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "template-hash-alg", required_argument, NULL, OPT_TH_ALG },
		{ "big-endian", no_argument, NULL, OPT_BIG_ENDIAN },
		{ "help", no_argument, NULL, OPT_HELP },
		{ 0 }
	};
	_cleanup_(ima_keyring_freep) struct ima_keyring *kr = NULL;
	_cleanup_(ima_list_freep) struct ima_list *l = NULL;
	struct common_opts o = { 0 };
	struct json_object *out = NULL, *arr = NULL;
	size_t counts[4] = { 0 }, nkeys = 0;
	const struct ima_entry *first_fail = NULL;
	struct ima_sig_result first_res = { 0 };
	int c, r;

	if (ima_keyring_new(&kr) < 0)
		return cli_fail_lib(KQ_EXIT_USAGE, "ima verify-sigs");
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if ((r = common_opt(c, &o)) < 0)
			return KQ_EXIT_USAGE;
		if (r)
			continue;
		switch (c) {
		case OPT_KEY:
			if (ima_keyring_add_file(kr, optarg) < 0)
				return cli_fail(KQ_EXIT_USAGE, "cannot load key %s", kq_errmsg());
			nkeys++;
			break;
		case 'h':
		case OPT_HELP:
			usage_verify(stdout);
			return KQ_EXIT_OK;
		default:
			usage_verify(stderr);
			return KQ_EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || nkeys == 0) {
		if (nkeys == 0 && optind == argc - 1)
			return cli_fail(KQ_EXIT_USAGE, "ima verify-sigs: at least one --key is needed");
		usage_verify(stderr);
		return KQ_EXIT_USAGE;
	}
	o.file = argv[optind];
	if ((r = load_list(&o, &l)) != KQ_EXIT_OK)
		return r;

	if (o.json) {
		out = json_object_new_object();
		arr = json_object_new_array();
	}
	for (size_t i = 0; i < l->n_entries; i++) {
		const struct ima_entry *e = &l->entries[i];
		struct ima_sig_result res;
		_cleanup_free_ char *p = NULL;
		char keyid[16] = "-";

		if (!has_sig_field(e))
			continue;
		ima_sig_verify(kr, e, &res);
		counts[res.status]++;
		if (res.has_keyid)
			snprintf(keyid, sizeof(keyid), "%08x", res.keyid);
		if ((res.status == IMA_SIG_INVALID || res.status == IMA_SIG_UNKNOWN_KEY) && !first_fail) {
			first_fail = e;
			first_res = res;
		}
		if (o.json) {
			struct json_object *j = json_object_new_object();

			json_object_object_add(j, "index", json_object_new_uint64(e->index));
			json_add_path(j, e);
			json_object_object_add(j, "status", json_object_new_string(ima_sig_status_name(res.status)));
			if (res.has_keyid)
				json_object_object_add(j, "keyid", json_object_new_string(keyid));
			if (res.reason)
				json_object_object_add(j, "reason", json_object_new_string(res.reason));
			if (ima_entry_is_bad(e))
				json_object_object_add(j, "template_hash_ok", json_object_new_boolean(false));
			json_object_array_add(arr, j);
		} else if (res.status != IMA_SIG_NONE) {
			printf("%llu %s %s %s%s%s\n", (unsigned long long)e->index,
			       ima_sig_status_name(res.status), keyid, entry_path(e, &p),
			       res.reason ? ": " : "", res.reason ? res.reason : "");
		}
	}
	if (o.json) {
		struct json_object *sum = json_object_new_object();

		json_object_object_add(out, "entries", json_object_new_uint64(l->n_entries));
		json_object_object_add(out, "keys", json_object_new_uint64(ima_keyring_count(kr)));
		json_object_object_add(sum, "valid", json_object_new_uint64(counts[IMA_SIG_VALID]));
		json_object_object_add(sum, "invalid", json_object_new_uint64(counts[IMA_SIG_INVALID]));
		json_object_object_add(sum, "unknown_key", json_object_new_uint64(counts[IMA_SIG_UNKNOWN_KEY]));
		json_object_object_add(sum, "no_signature", json_object_new_uint64(counts[IMA_SIG_NONE]));
		json_object_object_add(out, "summary", sum);
		json_object_object_add(out, "signatures", arr);
		cli_print_json(out);
	} else {
		printf("%zu entries: %zu valid, %zu invalid, %zu unknown key, %zu without signature\n",
		       l->n_entries, counts[IMA_SIG_VALID], counts[IMA_SIG_INVALID],
		       counts[IMA_SIG_UNKNOWN_KEY], counts[IMA_SIG_NONE]);
	}
	if (first_fail) {
		_cleanup_free_ char *p = NULL;

		return cli_fail(KQ_EXIT_INVALID, "entry %llu (%s): signature %s: %s (%zu invalid, %zu unknown key)",
				(unsigned long long)first_fail->index, entry_path(first_fail, &p),
				ima_sig_status_name(first_res.status), first_res.reason,
				counts[IMA_SIG_INVALID], counts[IMA_SIG_UNKNOWN_KEY]);
	}
	return KQ_EXIT_OK;
}

int cmd_ima(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return KQ_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return KQ_EXIT_OK;
	}
	if (strcmp(argv[1], "replay") == 0)
		return cmd_replay(argc - 1, argv + 1);
	if (strcmp(argv[1], "verify-sigs") == 0)
		return cmd_verify_sigs(argc - 1, argv + 1);
	return cli_fail(KQ_EXIT_USAGE, "ima: unknown subcommand '%s' (replay or verify-sigs)", argv[1]);
}
