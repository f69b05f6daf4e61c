/* SPDX-License-Identifier: Apache-2.0 */
/* kumquat ca init|issue|show|verify: a deployment CA and TLS certificates for each component. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "tpm/tpm.h"
#include "x509/x509.h"

static inline void X509_freep(X509 **p) { X509_free(*p); }
static inline void EVP_PKEY_freep(EVP_PKEY **p) { EVP_PKEY_free(*p); }
static inline void X509_STORE_freep(X509_STORE **p) { X509_STORE_free(*p); }
static inline void sk_X509_freep(STACK_OF(X509) **p) { sk_X509_pop_free(*p, X509_free); }

#define CA_DEFAULT_DAYS 3650u
#define LEAF_DEFAULT_DAYS 397u
#define CA_DEFAULT_CN "kumquat deployment CA"
#define NAME_MAX_LEN 64

static const char ca_usage[] =
	"usage: kumquat ca init   --dir DIR [--cn NAME] [--org ORG] [--days N] [--rsa] [--force]\n"
	"       kumquat ca issue  --dir DIR --name NAME (--server|--client|--both)\n"
	"                         [--san DNS|IP]... [--cn CN] [--days N] [--force]\n"
	"       kumquat ca show   FILE [--json]\n"
	"       kumquat ca verify CERT --ca-dir DIR [--intermediate FILE]... [--key FILE]\n"
	"                         [--at UNIX_TIME] [--json]\n"
	"\n"
	"A deployment CA and the TLS certificates of the kumquat components, so that no\n"
	"other tool is needed. 'kumquat ca COMMAND --help' describes each command.\n"
	"Exit: 0 success/valid, 1 invalid certificate, 2 usage error or unreadable input.\n";

static const char init_usage[] =
	"usage: kumquat ca init --dir DIR [--cn NAME] [--org ORG] [--days N] [--rsa] [--force]\n"
	"\n"
	"Creates a deployment CA: DIR/ca.pem (the certificate) and DIR/ca-key.pem (its\n"
	"private key, mode 0600). DIR is created with mode 0700 if missing.\n"
	"  --dir DIR     the CA directory\n"
	"  --cn NAME     the CA's common name (default \"" CA_DEFAULT_CN "\")\n"
	"  --org ORG     an organization name for the CA's subject\n"
	"  --days N      validity in days (default 3650, at most 36500)\n"
	"  --rsa         an RSA-3072 key instead of ECDSA P-256 (leaves follow the CA)\n"
	"  --force       replace an existing CA (every certificate it issued stops verifying)\n";

static const char issue_usage[] =
	"usage: kumquat ca issue --dir DIR --name NAME (--server|--client|--both)\n"
	"                        [--san DNS|IP]... [--cn CN] [--days N] [--force]\n"
	"\n"
	"Issues a TLS certificate from the CA in DIR: DIR/NAME.pem and DIR/NAME-key.pem\n"
	"(mode 0600), with a fresh key of the CA's type.\n"
	"  --name NAME   file name, letters, digits, '.', '_' and '-' (not 'ca' or 'ca-key')\n"
	"  --server      serverAuth; SANs localhost, 127.0.0.1 and ::1 are added\n"
	"  --client      clientAuth\n"
	"  --both        serverAuth and clientAuth (with the server SANs)\n"
	"  --san NAME    a DNS name or an IPv4/IPv6 address; repeatable\n"
	"  --cn CN       the subject's common name (default NAME)\n"
	"  --days N      validity in days (default 397), never past the CA's end\n"
	"  --force       replace an existing NAME.pem / NAME-key.pem\n";

static const char show_usage[] =
	"usage: kumquat ca show FILE [--json]\n"
	"\n"
	"Shows each certificate in FILE (PEM or DER, e.g. an EK certificate read from TPM\n"
	"NV): subject, issuer, serial, validity, key type, CA flag, SANs (with the TCG\n"
	"TPM manufacturer, model and version of an EK certificate), EKU, key usage,\n"
	"critical extensions, key identifiers, SHA-256 fingerprint. --json prints an\n"
	"array with one object per certificate.\n";

static const char verify_usage[] =
	"usage: kumquat ca verify CERT --ca-dir DIR [--intermediate FILE]... [--key FILE]\n"
	"                         [--at UNIX_TIME] [--json]\n"
	"\n"
	"Verifies that CERT chains to a CA certificate in DIR, as the registrar does for\n"
	"EK certificates (TPM vendor CAs) and the daemons for TLS peers.\n"
	"  CERT               PEM or DER; further certificates in it are intermediates\n"
	"  --ca-dir DIR       trusted CAs: every CA certificate in DIR's *.pem, *.crt and\n"
	"                     *.der files (a kumquat CA directory, a vendor CA directory, a\n"
	"                     swtpm-localca state directory)\n"
	"  --intermediate F   untrusted intermediate certificates; repeatable\n"
	"  --key FILE         the certified key must be this one: PEM/DER public key or a\n"
	"                     TPM2B_PUBLIC (tpm2_createek -u / tpm2_readpublic -o)\n"
	"  --at UNIX_TIME     check validity at that time instead of now\n"
	"  --json             machine-readable output\n"
	"Exit: 0 valid, 1 invalid (reason on stderr), 2 usage error or unreadable input.\n";

static bool help_arg(int argc, char **argv)
{
	return argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
}

static int parse_days(const char *s, unsigned *ret)
{
	uint64_t v;

	if (kq_parse_uint(s, X509_MAX_DAYS, &v) < 0 || v == 0)
		return cli_fail(-EINVAL, "--days: expected 1 to %u, got '%s'", X509_MAX_DAYS, s);
	*ret = (unsigned)v;
	return 0;
}

/* mkdir -p; directories created here get mode 0700. */
static int make_dir(const char *dir)
{
	_cleanup_free_ char *p = strdup(dir);
	struct stat st;

	if (!p)
		return cli_fail(-ENOMEM, "out of memory");
	for (char *s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return cli_fail(-errno, "cannot create %s: %s", p, strerror(errno));
		*s = c;
		if (c == '\0')
			break;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return cli_fail(-ENOTDIR, "%s is not a directory", dir);
	return 0;
}

static char *path_in(const char *dir, const char *name, const char *suffix)
{
	char *p;

	if (asprintf(&p, "%s/%s%s", dir, name, suffix) < 0)
		return NULL;
	return p;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* An EK certificate's subject is often empty; its identity is in the SAN. */
static const char *subject_text(struct json_object *d)
{
	const char *s = json_object_get_string(json_object_object_get(d, "subject"));

	return s && *s ? s : "(empty)";
}

static void print_summary(const char *what, const char *path, X509 *x)
{
	struct json_object *d = NULL;

	if (x509_describe(x, &d) < 0)
		return;
	printf("%s: %s\n  subject %s, %s, valid until %s\n", what, path, subject_text(d),
	       json_object_get_string(json_object_object_get(d, "key_type")),
	       json_object_get_string(json_object_object_get(d, "not_after")));
	json_object_put(d);
}

/* ---- init ---- */

static int ca_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "cn", required_argument, NULL, 'c' },
		{ "org", required_argument, NULL, 'o' },
		{ "days", required_argument, NULL, 'n' },
		{ "rsa", no_argument, NULL, 'r' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *dir = NULL, *cn = CA_DEFAULT_CN, *org = NULL;
	_cleanup_free_ char *cert_path = NULL, *key_path = NULL;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
	_cleanup_(X509_freep) X509 *cert = NULL;
	unsigned days = CA_DEFAULT_DAYS;
	bool rsa = false, force = false;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'c': cn = optarg; break;
		case 'o': org = optarg; break;
		case 'n': if (parse_days(optarg, &days) < 0) return KQ_EXIT_USAGE; break;
		case 'r': rsa = true; break;
		case 'f': force = true; break;
		case 'h': fputs(init_usage, stdout); return KQ_EXIT_OK;
		default: fputs(init_usage, stderr); return KQ_EXIT_USAGE;
		}
	}
	if (optind != argc || !dir || !*dir)
		return cli_fail(KQ_EXIT_USAGE, "ca init needs --dir (see 'kumquat ca init --help')");
	cert_path = path_in(dir, "ca", ".pem");
	key_path = path_in(dir, "ca-key", ".pem");
	if (!cert_path || !key_path)
		return cli_fail(KQ_EXIT_USAGE, "out of memory");
	if (!force && (exists(cert_path) || exists(key_path)))
		return cli_fail(KQ_EXIT_USAGE, "%s already holds a CA (%s); --force replaces it and "
				"invalidates every certificate it issued", dir,
				exists(cert_path) ? "ca.pem" : "ca-key.pem");
	if (x509_keygen(rsa ? X509_KEY_RSA3072 : X509_KEY_EC_P256, &key) < 0 ||
	    x509_make_ca_with_key(&(struct x509_name_spec){ .cn = cn, .org = org }, days, key, &cert) < 0)
		return cli_fail_lib(KQ_EXIT_USAGE, "ca init");
	if (make_dir(dir) < 0)
		return KQ_EXIT_USAGE;
	/* the key first: a CA certificate without its key would be a dead end */
	if (x509_write_key_pem(key_path, key) < 0 || x509_write_pem(cert_path, cert) < 0)
		return cli_fail_lib(KQ_EXIT_USAGE, "ca init");
	print_summary("CA certificate", cert_path, cert);
	printf("  private key %s (keep it secret; it can issue certificates every component trusts)\n", key_path);
	return KQ_EXIT_OK;
}

/* ---- issue ---- */

static int check_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > NAME_MAX_LEN)
		return cli_fail(-EINVAL, "--name: 1 to %d characters", NAME_MAX_LEN);
	if (strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != n)
		return cli_fail(-EINVAL, "--name '%s': only letters, digits, '.', '_' and '-' are allowed", name);
	if (name[0] == '.' || name[0] == '-')
		return cli_fail(-EINVAL, "--name '%s': must not start with '.' or '-'", name);
	if (strcmp(name, "ca") == 0 || strcmp(name, "ca-key") == 0)
		return cli_fail(-EINVAL, "--name '%s' would overwrite the CA's own files", name);
	return 0;
}

static int ca_issue(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "name", required_argument, NULL, 'N' },
		{ "server", no_argument, NULL, 's' },
		{ "client", no_argument, NULL, 'c' },
		{ "both", no_argument, NULL, 'b' },
		{ "san", required_argument, NULL, 'a' },
		{ "cn", required_argument, NULL, 'C' },
		{ "days", required_argument, NULL, 'n' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const char *const server_sans[] = { "localhost", "127.0.0.1", "::1" };
	const char *dir = NULL, *name = NULL, *cn = NULL;
	const char *sans[X509_MAX_SANS];
	size_t n_sans = 0, n_given = 0;
	_cleanup_free_ char *ca_path = NULL, *ca_key_path = NULL, *cert_path = NULL, *key_path = NULL;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *ca_key = NULL, *key = NULL;
	_cleanup_(X509_freep) X509 *ca = NULL, *cert = NULL;
	const char *given[X509_MAX_SANS];
	unsigned days = LEAF_DEFAULT_DAYS;
	int usage = -1, c;
	bool force = false;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'N': name = optarg; break;
		case 's':
		case 'c':
		case 'b': {
			int u = c == 's' ? X509_USAGE_SERVER : c == 'c' ? X509_USAGE_CLIENT : X509_USAGE_BOTH;
			if (usage >= 0 && usage != u)
				return cli_fail(KQ_EXIT_USAGE, "give one of --server, --client and --both");
			usage = u;
			break;
		}
		case 'a':
			if (n_given >= ARRAY_SIZE(given))
				return cli_fail(KQ_EXIT_USAGE, "too many --san (at most %d SANs in all)", X509_MAX_SANS);
			given[n_given++] = optarg;
			break;
		case 'C': cn = optarg; break;
		case 'n': if (parse_days(optarg, &days) < 0) return KQ_EXIT_USAGE; break;
		case 'f': force = true; break;
		case 'h': fputs(issue_usage, stdout); return KQ_EXIT_OK;
		default: fputs(issue_usage, stderr); return KQ_EXIT_USAGE;
		}
	}
	if (optind != argc || !dir || !name || usage < 0)
		return cli_fail(KQ_EXIT_USAGE, "ca issue needs --dir, --name and one of --server, --client, --both "
				"(see 'kumquat ca issue --help')");
	if (check_name(name) < 0)
		return KQ_EXIT_USAGE;
	if (usage != X509_USAGE_CLIENT)
		for (size_t i = 0; i < ARRAY_SIZE(server_sans); i++)
			sans[n_sans++] = server_sans[i];
	if (n_sans + n_given > ARRAY_SIZE(sans))
		return cli_fail(KQ_EXIT_USAGE, "too many --san (at most %d SANs in all, with localhost, "
				"127.0.0.1 and ::1 for server certificates)", X509_MAX_SANS);
	for (size_t i = 0; i < n_given; i++)
		sans[n_sans++] = given[i];

	ca_path = path_in(dir, "ca", ".pem");
	ca_key_path = path_in(dir, "ca-key", ".pem");
	cert_path = path_in(dir, name, ".pem");
	key_path = path_in(dir, name, "-key.pem");
	if (!ca_path || !ca_key_path || !cert_path || !key_path)
		return cli_fail(KQ_EXIT_USAGE, "out of memory");
	if (!force && (exists(cert_path) || exists(key_path)))
		return cli_fail(KQ_EXIT_USAGE, "%s already exists; --force replaces it",
				exists(cert_path) ? cert_path : key_path);
	if (x509_read(ca_path, &ca) < 0 || x509_read_key(ca_key_path, &ca_key) < 0)
		return cli_fail(KQ_EXIT_USAGE, "no usable CA in %s (run 'kumquat ca init --dir %s' first): %s",
				dir, dir, kq_errmsg());
	if (x509_issue(ca_key, ca, &(struct x509_name_spec){ .cn = cn ? cn : name }, sans, n_sans,
		       (enum x509_usage)usage, days, &key, &cert) < 0)
		return cli_fail_lib(KQ_EXIT_USAGE, "ca issue");
	if (x509_write_key_pem(key_path, key) < 0 || x509_write_pem(cert_path, cert) < 0)
		return cli_fail_lib(KQ_EXIT_USAGE, "ca issue");
	print_summary("certificate", cert_path, cert);
	printf("  private key %s\n", key_path);
	return KQ_EXIT_OK;
}

/* ---- show ---- */

static void print_list(const char *label, struct json_object *a, const char *sep)
{
	size_t n = a ? json_object_array_length(a) : 0;

	if (n == 0)
		return;
	printf("%-14s", label);
	for (size_t i = 0; i < n; i++)
		printf("%s%s", i ? sep : "", json_object_get_string(json_object_array_get_idx(a, i)));
	putchar('\n');
}

static void print_field(const char *label, struct json_object *d, const char *key)
{
	struct json_object *v;

	if (json_object_object_get_ex(d, key, &v))
		printf("%-14s%s\n", label, json_object_get_string(v));
}

static void print_cert(struct json_object *d)
{
	struct json_object *v, *tpm;

	printf("%-14s%s\n", "subject:", subject_text(d));
	print_field("issuer:", d, "issuer");
	print_field("serial:", d, "serial");
	print_field("not before:", d, "not_before");
	print_field("not after:", d, "not_after");
	print_field("key:", d, "key_type");
	if (json_object_get_boolean(json_object_object_get(d, "is_ca"))) {
		if (json_object_object_get_ex(d, "path_len", &v))
			printf("%-14syes (path length %d)\n", "CA:", json_object_get_int(v));
		else
			printf("%-14syes\n", "CA:");
	} else {
		printf("%-14sno\n", "CA:");
	}
	print_list("SANs:", json_object_object_get(d, "sans"), ", ");
	if (json_object_object_get_ex(d, "tpm", &tpm)) {
		printf("%-14s", "TPM:");
		json_object_object_foreach(tpm, k, val)
			printf("%s %s  ", k, json_object_get_string(val));
		putchar('\n');
	}
	print_list("EKU:", json_object_object_get(d, "eku"), ", ");
	print_list("key usage:", json_object_object_get(d, "key_usage"), ", ");
	print_list("critical:", json_object_object_get(d, "critical"), ", ");
	print_field("signature:", d, "signature_algorithm");
	print_field("subject key:", d, "subject_key_id");
	print_field("issuer key:", d, "authority_key_id");
	print_field("SHA-256:", d, "sha256_fingerprint");
}

static int ca_show(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	_cleanup_(sk_X509_freep) STACK_OF(X509) *sk = NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	struct json_object *all;
	bool json = false;
	size_t len;
	int c, n;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': fputs(show_usage, stdout); return KQ_EXIT_OK;
		default: fputs(show_usage, stderr); return KQ_EXIT_USAGE;
		}
	}
	if (optind != argc - 1)
		return cli_fail(KQ_EXIT_USAGE, "ca show needs one FILE (see 'kumquat ca show --help')");
	if (cli_read(argv[optind], &buf, &len) < 0)
		return KQ_EXIT_USAGE;
	if (x509_load_many(buf, len, &sk) < 0)
		return cli_fail(KQ_EXIT_INVALID, "%s: %s", argv[optind], kq_errmsg());
	all = json_object_new_array();
	n = sk_X509_num(sk);
	for (int i = 0; i < n; i++) {
		struct json_object *d;

		if (x509_describe(sk_X509_value(sk, i), &d) < 0) {
			json_object_put(all);
			return cli_fail_lib(KQ_EXIT_INVALID, argv[optind]);
		}
		json_object_array_add(all, d);
	}
	if (json) {
		cli_print_json(all);
		return KQ_EXIT_OK;
	}
	for (int i = 0; i < n; i++) {
		if (n > 1)
			printf("%scertificate %d of %d\n", i ? "\n" : "", i + 1, n);
		print_cert(json_object_array_get_idx(all, (size_t)i));
	}
	json_object_put(all);
	return KQ_EXIT_OK;
}

/* ---- verify ---- */

static int add_certs(const char *path, STACK_OF(X509) *to)
{
	_cleanup_(sk_X509_freep) STACK_OF(X509) *sk = NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;

	if (cli_read(path, &buf, &len) < 0)
		return -EIO;
	if (x509_load_many(buf, len, &sk) < 0)
		return cli_fail(-EBADMSG, "%s: %s", path, kq_errmsg());
	while (sk_X509_num(sk) > 0) {
		X509 *x = sk_X509_shift(sk);

		if (sk_X509_num(to) >= 4 * X509_MAX_CERTS || !sk_X509_push(to, x)) {
			X509_free(x);
			return cli_fail(-E2BIG, "%s: too many intermediate certificates", path);
		}
	}
	return 0;
}

static int ca_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ca-dir", required_argument, NULL, 'd' },
		{ "intermediate", required_argument, NULL, 'i' },
		{ "key", required_argument, NULL, 'k' },
		{ "at", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	_cleanup_(sk_X509_freep) STACK_OF(X509) *chain = sk_X509_new_null(), *inter = sk_X509_new_null();
	_cleanup_(X509_STORE_freep) X509_STORE *store = NULL;
	_cleanup_free_ uint8_t *key_buf = NULL;
	const char *dir = NULL, *key_path = NULL, *inter_paths[16];
	struct json_object *desc = NULL;
	struct tpm_key key = { 0 };
	size_t n_inter = 0, key_len;
	uint64_t at = 0;
	bool json = false;
	X509 *leaf;
	int c, r, rc, anchors;

	if (!chain || !inter)
		return cli_fail(KQ_EXIT_USAGE, "out of memory");
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'i':
			if (n_inter >= ARRAY_SIZE(inter_paths))
				return cli_fail(KQ_EXIT_USAGE, "at most %zu --intermediate", ARRAY_SIZE(inter_paths));
			inter_paths[n_inter++] = optarg;
			break;
		case 'k': key_path = optarg; break;
		case 't':
			if (kq_parse_uint(optarg, INT64_MAX, &at) < 0 || at == 0)
				return cli_fail(KQ_EXIT_USAGE, "--at: expected seconds since 1970, got '%s'", optarg);
			break;
		case 'j': json = true; break;
		case 'h': fputs(verify_usage, stdout); return KQ_EXIT_OK;
		default: fputs(verify_usage, stderr); return KQ_EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || !dir)
		return cli_fail(KQ_EXIT_USAGE, "ca verify needs CERT and --ca-dir (see 'kumquat ca verify --help')");

	anchors = x509_store_from_dir(dir, &store);
	if (anchors < 0)
		return cli_fail_lib(KQ_EXIT_USAGE, "--ca-dir");
	for (size_t i = 0; i < n_inter; i++)
		if (add_certs(inter_paths[i], inter) < 0)
			return KQ_EXIT_USAGE;
	if (key_path) {
		if (cli_read(key_path, &key_buf, &key_len) < 0)
			return KQ_EXIT_USAGE;
		if (tpm_key_load(key_buf, key_len, &key) < 0)
			return cli_fail_lib(KQ_EXIT_USAGE, "--key");
	}

	/* what CERT holds is what is judged: a malformed certificate is invalid */
	r = add_certs(argv[optind], chain);
	if (r == -EIO) {
		tpm_key_clear(&key);
		return KQ_EXIT_USAGE;
	}
	if (r < 0) {
		rc = KQ_EXIT_INVALID;
		goto out;
	}
	leaf = sk_X509_value(chain, 0);
	for (int i = 1; i < sk_X509_num(chain); i++)
		if (!sk_X509_push(inter, X509_dup(sk_X509_value(chain, i)))) {
			rc = cli_fail(KQ_EXIT_USAGE, "out of memory");
			goto out;
		}
	x509_describe(leaf, &desc);
	r = x509_verify_chain(leaf, inter, store, (time_t)at);
	if (r < 0) {
		rc = cli_fail_lib(KQ_EXIT_INVALID, "certificate invalid");
		goto out;
	}
	if (key_path && (r = x509_matches_pkey(leaf, key.pkey)) < 0) {
		rc = cli_fail_lib(KQ_EXIT_INVALID, "certificate invalid");
		goto out;
	}
	rc = KQ_EXIT_OK;
	if (!json)
		printf("certificate valid: %s, chains to a CA in %s%s\n", subject_text(desc), dir,
		       key_path ? ", certifies the given key" : "");
out:
	if (json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "valid", json_object_new_boolean(rc == KQ_EXIT_OK));
		if (rc != KQ_EXIT_OK)
			json_object_object_add(o, "reason", json_object_new_string(kq_errmsg()));
		if (key_path)
			json_object_object_add(o, "key_checked", json_object_new_boolean(true));
		json_object_object_add(o, "anchors", json_object_new_int(anchors));
		if (desc) {
			json_object_object_add(o, "certificate", desc);
			desc = NULL;
		}
		cli_print_json(o);
	}
	json_object_put(desc);
	tpm_key_clear(&key);
	return rc;
}

int cmd_ca(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv);
	} sub[] = {
		{ "init", ca_init },
		{ "issue", ca_issue },
		{ "show", ca_show },
		{ "verify", ca_verify },
	};

	if (help_arg(argc, argv)) {
		fputs(ca_usage, stdout);
		return KQ_EXIT_OK;
	}
	for (size_t i = 0; argc >= 2 && i < ARRAY_SIZE(sub); i++)
		if (strcmp(argv[1], sub[i].name) == 0)
			return sub[i].run(argc - 1, argv + 1);
	return cli_fail(KQ_EXIT_USAGE, "ca: expected init, issue, show or verify (see 'kumquat ca --help')");
}
