/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IMA measurement lists: parsing (ascii and binary), template-hash checks and
 * per-bank replay. The layouts follow the kernel's ima_fs.c (list formats),
 * ima_template_lib.c (field data) and ima_crypto.c (template hashing).
 */
#include "ima/ima.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "util/util.h"

/* ---- hash algorithms (crypto/hash_info.c) ---- */

static const struct {
	const char *name;
	uint8_t size;
	uint16_t tpm;
} hash_algos[] = {
	[IMA_HASH_MD4] = { "md4", 16, 0 },
	[IMA_HASH_MD5] = { "md5", 16, 0 },
	[IMA_HASH_SHA1] = { "sha1", 20, KQ_ALG_SHA1 },
	[IMA_HASH_RIPEMD160] = { "rmd160", 20, 0 },
	[IMA_HASH_SHA256] = { "sha256", 32, KQ_ALG_SHA256 },
	[IMA_HASH_SHA384] = { "sha384", 48, KQ_ALG_SHA384 },
	[IMA_HASH_SHA512] = { "sha512", 64, KQ_ALG_SHA512 },
	[IMA_HASH_SHA224] = { "sha224", 28, 0 },
	[IMA_HASH_RIPEMD128] = { "rmd128", 16, 0 },
	[IMA_HASH_RIPEMD256] = { "rmd256", 32, 0 },
	[IMA_HASH_RIPEMD320] = { "rmd320", 40, 0 },
	[IMA_HASH_WP256] = { "wp256", 32, 0 },
	[IMA_HASH_WP384] = { "wp384", 48, 0 },
	[IMA_HASH_WP512] = { "wp512", 64, 0 },
	[IMA_HASH_TGR128] = { "tgr128", 16, 0 },
	[IMA_HASH_TGR160] = { "tgr160", 20, 0 },
	[IMA_HASH_TGR192] = { "tgr192", 24, 0 },
	[IMA_HASH_SM3_256] = { "sm3", 32, KQ_ALG_SM3_256 },
	[IMA_HASH_STREEBOG256] = { "streebog256", 32, 0 },
	[IMA_HASH_STREEBOG512] = { "streebog512", 64, 0 },
	[IMA_HASH_SHA3_256] = { "sha3-256", 32, 0 },
	[IMA_HASH_SHA3_384] = { "sha3-384", 48, 0 },
	[IMA_HASH_SHA3_512] = { "sha3-512", 64, 0 },
	[IMA_HASH_ASCON256] = { "ascon-hash256", 32, 0 },
};
_Static_assert(ARRAY_SIZE(hash_algos) == IMA_HASH__LAST, "hash table out of step with the enum");

const char *ima_hash_algo_name(unsigned algo)
{
	return algo < IMA_HASH__LAST ? hash_algos[algo].name : NULL;
}

size_t ima_hash_algo_size(unsigned algo)
{
	return algo < IMA_HASH__LAST ? hash_algos[algo].size : 0;
}

uint16_t ima_hash_algo_to_tpm(unsigned algo)
{
	return algo < IMA_HASH__LAST ? hash_algos[algo].tpm : 0;
}

unsigned ima_hash_algo_from_name(const char *name, size_t len)
{
	for (unsigned i = 0; i < IMA_HASH__LAST; i++)
		if (strlen(hash_algos[i].name) == len && memcmp(hash_algos[i].name, name, len) == 0)
			return i;
	/* kernels before 5.6 called sm3 "sm3-256" */
	if (len == 7 && memcmp(name, "sm3-256", 7) == 0)
		return IMA_HASH_SM3_256;
	return IMA_HASH_UNKNOWN;
}

/* ---- template fields and descriptors ---- */

enum field_kind {
	KIND_DIGEST,    /* d: raw digest */
	KIND_DIGEST_NG, /* "<prefix>:\0" + digest */
	KIND_STRING,    /* NUL-terminated string */
	KIND_HEX,       /* raw bytes, hex in ascii */
	KIND_UINT,      /* native integer, decimal in ascii */
};

static const struct {
	const char *id;
	enum field_kind kind;
	uint8_t uint_size; /* KIND_UINT: bytes the kernel writes */
} fields[IMA_FIELD__COUNT] = {
	[IMA_FIELD_D] = { "d", KIND_DIGEST, 0 },
	[IMA_FIELD_N] = { "n", KIND_STRING, 0 },
	[IMA_FIELD_D_NG] = { "d-ng", KIND_DIGEST_NG, 0 },
	[IMA_FIELD_D_NGV2] = { "d-ngv2", KIND_DIGEST_NG, 0 },
	[IMA_FIELD_N_NG] = { "n-ng", KIND_STRING, 0 },
	[IMA_FIELD_SIG] = { "sig", KIND_HEX, 0 },
	[IMA_FIELD_BUF] = { "buf", KIND_HEX, 0 },
	[IMA_FIELD_D_MODSIG] = { "d-modsig", KIND_DIGEST_NG, 0 },
	[IMA_FIELD_MODSIG] = { "modsig", KIND_HEX, 0 },
	[IMA_FIELD_EVMSIG] = { "evmsig", KIND_HEX, 0 },
	[IMA_FIELD_IUID] = { "iuid", KIND_UINT, 4 },
	[IMA_FIELD_IGID] = { "igid", KIND_UINT, 4 },
	[IMA_FIELD_IMODE] = { "imode", KIND_UINT, 2 },
	[IMA_FIELD_XATTRNAMES] = { "xattrnames", KIND_HEX, 0 },
	[IMA_FIELD_XATTRLENGTHS] = { "xattrlengths", KIND_HEX, 0 },
	[IMA_FIELD_XATTRVALUES] = { "xattrvalues", KIND_HEX, 0 },
};

const char *ima_field_name(enum ima_field_id id)
{
	return (unsigned)id < IMA_FIELD__COUNT ? fields[id].id : NULL;
}

static const struct {
	const char *name;
	enum ima_template_id id;
	const char *fmt;
} builtin_templates[] = {
	{ "ima", IMA_TEMPLATE_IMA, "d|n" },
	{ "ima-ng", IMA_TEMPLATE_IMA_NG, "d-ng|n-ng" },
	{ "ima-sig", IMA_TEMPLATE_IMA_SIG, "d-ng|n-ng|sig" },
	{ "ima-buf", IMA_TEMPLATE_IMA_BUF, "d-ng|n-ng|buf" },
	{ "ima-ngv2", IMA_TEMPLATE_IMA_NGV2, "d-ngv2|n-ng" },
	{ "ima-sigv2", IMA_TEMPLATE_IMA_SIGV2, "d-ngv2|n-ng|sig" },
	{ "ima-modsig", IMA_TEMPLATE_IMA_MODSIG, "d-ng|n-ng|sig|d-modsig|modsig" },
	{ "evm-sig", IMA_TEMPLATE_EVM_SIG,
	  "d-ng|n-ng|evmsig|xattrnames|xattrlengths|xattrvalues|iuid|igid|imode" },
};

/* Splits "f1|f2|..." into field ids; false if any is unknown or too many. */
static bool parse_fmt(const char *fmt, struct ima_template *t)
{
	const char *p = fmt;

	t->n_fields = 0;
	for (;;) {
		const char *bar = strchr(p, '|');
		size_t n = bar ? (size_t)(bar - p) : strlen(p);
		unsigned f;

		if (t->n_fields == IMA_MAX_FIELDS)
			return false;
		for (f = 0; f < IMA_FIELD__COUNT; f++)
			if (strlen(fields[f].id) == n && memcmp(fields[f].id, p, n) == 0)
				break;
		if (f == IMA_FIELD__COUNT)
			return false;
		t->fields[t->n_fields++] = (enum ima_field_id)f;
		if (!bar)
			return true;
		p = bar + 1;
	}
}

/* Fills t for a template name (already checked: 1..255 printable bytes). */
static void resolve_template(struct ima_template *t, const char *name, size_t len, bool big_endian)
{
	memcpy(t->name, name, len);
	t->name[len] = '\0';
	t->big_endian = big_endian;
	t->id = IMA_TEMPLATE_UNKNOWN;
	t->n_fields = 0;
	for (size_t i = 0; i < ARRAY_SIZE(builtin_templates); i++)
		if (strcmp(t->name, builtin_templates[i].name) == 0) {
			t->id = builtin_templates[i].id;
			parse_fmt(builtin_templates[i].fmt, t);
			return;
		}
	/* A custom ima_template_fmt= shows its format as the name. */
	if (parse_fmt(t->name, t))
		t->id = IMA_TEMPLATE_CUSTOM;
	else
		t->n_fields = 0;
}

/* The template descriptors met in one input; owned by a reader, then its list. */
struct tmpl_cache {
	size_t n;
	struct ima_template t[IMA_MAX_TEMPLATES];
};

static int tmpl_lookup(struct tmpl_cache *c, const char *name, size_t len, bool big_endian,
		       const struct ima_template **ret)
{
	for (size_t i = 0; i < c->n; i++)
		if (strlen(c->t[i].name) == len && memcmp(c->t[i].name, name, len) == 0) {
			*ret = &c->t[i];
			return 0;
		}
	if (c->n == IMA_MAX_TEMPLATES)
		return kq_err(-E2BIG, "more than %u distinct template names", IMA_MAX_TEMPLATES);
	resolve_template(&c->t[c->n], name, len, big_endian);
	*ret = &c->t[c->n++];
	return 0;
}

static bool valid_template_name(const uint8_t *s, size_t len)
{
	if (len == 0 || len > IMA_MAX_TEMPLATE_NAME)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

/* ---- template hashing ---- */

static const uint8_t zeros[256];

static int digest_data(EVP_MD_CTX *ctx, const struct ima_entry *e, const EVP_MD *md, uint8_t *out)
{
	if (EVP_DigestInit_ex(ctx, md, NULL) != 1)
		goto fail;
	if (e->tmpl->id == IMA_TEMPLATE_IMA) {
		/* d, then the name zero-padded to IMA_EVENT_NAME_LEN_MAX + 1 */
		size_t nlen = e->template_data_len - 20 - 1;

		if (EVP_DigestUpdate(ctx, e->template_data, 20) != 1 ||
		    EVP_DigestUpdate(ctx, e->template_data + 20, nlen) != 1 ||
		    EVP_DigestUpdate(ctx, zeros, 256 - nlen) != 1)
			goto fail;
	} else if (EVP_DigestUpdate(ctx, e->template_data, e->template_data_len) != 1)
		goto fail;
	if (EVP_DigestFinal_ex(ctx, out, NULL) != 1)
		goto fail;
	return 0;
fail:
	return kq_err(-EIO, "%s digest failed", EVP_MD_get0_name(md));
}

int ima_entry_template_digest(const struct ima_entry *e, uint16_t alg, uint8_t *out)
{
	const EVP_MD *md = kq_md(alg);
	EVP_MD_CTX *ctx;
	int r;

	if (!md)
		return kq_err(-ENOTSUP, "unsupported hash algorithm 0x%04x", alg);
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return kq_err(-ENOMEM, "out of memory");
	r = digest_data(ctx, e, md, out);
	EVP_MD_CTX_free(ctx);
	return r;
}

static int bank_digest(EVP_MD_CTX *ctx, const struct ima_entry *e, uint16_t alg, const EVP_MD *md,
		       uint8_t *out)
{
	size_t n = kq_hash_size(alg);

	if (e->violation) {
		memset(out, 0xff, n);
		return 0;
	}
	if (alg == e->template_hash_alg) {
		memcpy(out, e->template_hash, n);
		return 0;
	}
	return digest_data(ctx, e, md, out);
}

int ima_entry_bank_digest(const struct ima_entry *e, uint16_t alg, uint8_t *out)
{
	const EVP_MD *md = kq_md(alg);
	EVP_MD_CTX *ctx;
	int r;

	if (!md)
		return kq_err(-ENOTSUP, "unsupported hash algorithm 0x%04x", alg);
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return kq_err(-ENOMEM, "out of memory");
	r = bank_digest(ctx, e, alg, md, out);
	EVP_MD_CTX_free(ctx);
	return r;
}

/* ---- field interpretation (shared by both formats) ---- */

static void put_u32(uint8_t *p, uint32_t v, bool be)
{
	for (int i = 0; i < 4; i++)
		p[be ? 3 - i : i] = (uint8_t)(v >> (8 * i));
}

/*
 * Walks the template data of a non-'ima' template as (u32 len, data) fields,
 * requiring exactly n_fields of them and nothing after (the kernel's
 * ENFORCE_FIELDS | ENFORCE_BUFEND). Calls back per field.
 */
struct field_ref {
	const uint8_t *data;
	uint32_t len;
};

static int split_fields(const struct ima_template *t, const uint8_t *data, size_t len,
			struct field_ref *out)
{
	struct kq_cur c = kq_cur_init(data, len);

	for (unsigned i = 0; i < t->n_fields; i++) {
		uint32_t flen;
		int r = t->big_endian ? kq_cur_u32be(&c, &flen) : kq_cur_u32le(&c, &flen);

		if (r < 0)
			return kq_err(-EBADMSG, "template data ends before field %u (%s)", i,
				      fields[t->fields[i]].id);
		if (flen > IMA_MAX_FIELD)
			return kq_err(-E2BIG, "field %s of %u bytes exceeds the limit of %u",
				      fields[t->fields[i]].id, flen, IMA_MAX_FIELD);
		if (kq_cur_bytes(&c, flen, &out[i].data) < 0)
			return kq_err(-EBADMSG, "field %s of %u bytes overruns the template data",
				      fields[t->fields[i]].id, flen);
		out[i].len = flen;
	}
	if (kq_cur_left(&c))
		return kq_err(-EBADMSG, "%zu bytes after the last field of template %s",
			      kq_cur_left(&c), t->name);
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static bool valid_algo_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* "<algo>:\0<digest>" or, for d-ngv2, "<ima|verity>:<algo>:\0<digest>". */
static int check_digest_ng(struct ima_entry *e, enum ima_field_id id, const uint8_t *d, size_t len,
			   bool set)
{
	const uint8_t *nul = memchr(d, '\0', len), *algo = d;
	enum ima_digest_type type = IMA_DIGEST_FILE;
	size_t plen, alen, dlen;
	unsigned a;

	if (!nul || nul == d || nul[-1] != ':')
		return kq_err(-EBADMSG, "%s field lacks the \"<algo>:\\0\" prefix", fields[id].id);
	plen = (size_t)(nul - d) - 1;
	if (plen > 40)
		return kq_err(-EBADMSG, "%s field: algorithm prefix too long", fields[id].id);
	if (id == IMA_FIELD_D_NGV2) {
		if (plen > 4 && memcmp(d, "ima:", 4) == 0)
			algo = d + 4;
		else if (plen > 7 && memcmp(d, "verity:", 7) == 0) {
			algo = d + 7;
			type = IMA_DIGEST_VERITY;
		} else
			return kq_err(-EBADMSG, "d-ngv2 field: digest type is neither ima nor verity");
	}
	alen = plen - (size_t)(algo - d);
	if (alen == 0)
		return kq_err(-EBADMSG, "%s field: empty algorithm name", fields[id].id);
	for (size_t i = 0; i < alen; i++)
		if (!valid_algo_char(algo[i]))
			return kq_err(-EBADMSG, "%s field: invalid character in algorithm name",
				      fields[id].id);
	a = ima_hash_algo_from_name((const char *)algo, alen);
	dlen = len - plen - 2;
	if (dlen == 0 || dlen > KQ_MAX_DIGEST)
		return kq_err(-EBADMSG, "%s field: digest of %zu bytes", fields[id].id, dlen);
	/* A violation records a 20-byte zero digest whatever the algorithm
	 * (ima_reader_next allows it only for violations). */
	if (a != IMA_HASH_UNKNOWN && dlen != hash_algos[a].size && !(dlen == 20 && all_zero(nul + 1, 20)))
		return kq_err(-EBADMSG, "%s field: %s digest of %zu bytes, expected %u", fields[id].id,
			      hash_algos[a].name, dlen, hash_algos[a].size);
	if (set) {
		e->digest_algo = a;
		e->digest_type = type;
		e->digest = nul + 1;
		e->digest_len = dlen;
	}
	return 0;
}

static int check_string(struct ima_entry *e, enum ima_field_id id, const uint8_t *d, size_t len,
			bool set)
{
	size_t max = id == IMA_FIELD_N ? 255 : IMA_MAX_PATH;

	if (len == 0 || d[len - 1] != '\0')
		return kq_err(-EBADMSG, "%s field is not NUL-terminated", fields[id].id);
	if (memchr(d, '\0', len - 1))
		return kq_err(-EBADMSG, "%s field has a NUL byte inside", fields[id].id);
	if (len - 1 > max)
		return kq_err(-E2BIG, "%s field of %zu bytes exceeds the limit of %zu", fields[id].id,
			      len - 1, max);
	if (set) {
		e->path = (const char *)d;
		e->path_len = len - 1;
	}
	return 0;
}

/* Validates the fields of a known template and points the entry at them. */
static int interpret(struct ima_entry *e)
{
	const struct ima_template *t = e->tmpl;
	struct field_ref f[IMA_MAX_FIELDS];
	bool have_digest = false, have_path = false, have_sig = false, have_buf = false;
	int r;

	if (t->id == IMA_TEMPLATE_UNKNOWN)
		return 0;
	if (t->id == IMA_TEMPLATE_IMA) {
		/* built by the parsers: d (20) + name + NUL */
		e->digest_algo = IMA_HASH_SHA1;
		e->digest = e->template_data;
		e->digest_len = 20;
		return check_string(e, IMA_FIELD_N, e->template_data + 20, e->template_data_len - 20, true);
	}
	r = split_fields(t, e->template_data, e->template_data_len, f);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < t->n_fields; i++) {
		enum ima_field_id id = t->fields[i];

		switch (id) {
		case IMA_FIELD_D:
			if (f[i].len != 20 && f[i].len != 16)
				return kq_err(-EBADMSG, "d field of %u bytes (expected 20)", f[i].len);
			if (!have_digest) {
				e->digest_algo = f[i].len == 20 ? IMA_HASH_SHA1 : IMA_HASH_MD5;
				e->digest = f[i].data;
				e->digest_len = f[i].len;
				have_digest = true;
			}
			break;
		case IMA_FIELD_D_NG:
		case IMA_FIELD_D_NGV2:
			r = check_digest_ng(e, id, f[i].data, f[i].len, !have_digest);
			if (r < 0)
				return r;
			have_digest = true;
			break;
		case IMA_FIELD_D_MODSIG:
			/* empty when the file has no appended signature */
			if (f[i].len && (r = check_digest_ng(e, id, f[i].data, f[i].len, false)) < 0)
				return r;
			break;
		case IMA_FIELD_N:
		case IMA_FIELD_N_NG:
			r = check_string(e, id, f[i].data, f[i].len, !have_path);
			if (r < 0)
				return r;
			have_path = true;
			break;
		case IMA_FIELD_SIG:
			if (!have_sig && f[i].len) {
				e->sig = f[i].data;
				e->sig_len = f[i].len;
			}
			have_sig = true;
			break;
		case IMA_FIELD_BUF:
			if (!have_buf && f[i].len) {
				e->buf = f[i].data;
				e->buf_len = f[i].len;
			}
			have_buf = true;
			break;
		case IMA_FIELD_IUID:
		case IMA_FIELD_IGID:
		case IMA_FIELD_IMODE:
			if (f[i].len != 0 && f[i].len != 1 && f[i].len != 2 && f[i].len != 4 && f[i].len != 8)
				return kq_err(-EBADMSG, "%s field of %u bytes", fields[id].id, f[i].len);
			break;
		default:
			break;
		}
	}
	return 0;
}

int ima_entry_field(const struct ima_entry *e, enum ima_field_id id, const uint8_t **ret_data,
		    size_t *ret_len)
{
	const struct ima_template *t = e->tmpl;
	struct field_ref f[IMA_MAX_FIELDS];
	int r;

	if (!t || t->id == IMA_TEMPLATE_UNKNOWN)
		return kq_err(-ENOENT, "template %s is not interpreted", t ? t->name : "?");
	if (t->id == IMA_TEMPLATE_IMA) {
		if (id == IMA_FIELD_D) {
			*ret_data = e->template_data;
			*ret_len = 20;
			return 0;
		}
		if (id == IMA_FIELD_N) {
			*ret_data = e->template_data + 20;
			*ret_len = e->template_data_len - 20;
			return 0;
		}
		return kq_err(-ENOENT, "template ima has no %s field", ima_field_name(id) ?: "such");
	}
	r = split_fields(t, e->template_data, e->template_data_len, f);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < t->n_fields; i++)
		if (t->fields[i] == id) {
			*ret_data = f[i].len ? f[i].data : NULL;
			*ret_len = f[i].len;
			return 0;
		}
	return kq_err(-ENOENT, "template %s has no %s field", t->name, ima_field_name(id) ?: "such");
}

/* ---- the reader ---- */

struct ima_reader {
	const uint8_t *buf;
	size_t len;
	size_t off;
	struct ima_parse_opts opts;
	uint16_t th_alg;     /* 0 until known (ascii auto-detection) */
	size_t th_size;
	const EVP_MD *th_md;
	uint64_t next_index;
	size_t line_no;
	struct tmpl_cache *tc;
	uint8_t *scratch;    /* template data rebuilt from ascii, or for 'ima' */
	EVP_MD_CTX *ctx;
	struct ima_entry cur;
	int error;           /* sticky: once failed, always failed */
};

#define SCRATCH_SIZE (IMA_MAX_TEMPLATE_DATA + 64)

int ima_reader_new(const uint8_t *buf, size_t len, const struct ima_parse_opts *opts,
		   struct ima_reader **ret)
{
	_cleanup_(ima_reader_freep) struct ima_reader *r = NULL;
	struct ima_parse_opts o = { 0 };

	if (opts)
		o = *opts;
	if (len > IMA_MAX_LIST_SIZE)
		return kq_err(-E2BIG, "measurement list of %zu bytes exceeds the limit of %u", len,
			      IMA_MAX_LIST_SIZE);
	if (!buf && len)
		return kq_err(-EINVAL, "no buffer");
	if (o.format != IMA_FORMAT_AUTO && o.format != IMA_FORMAT_ASCII && o.format != IMA_FORMAT_BINARY)
		return kq_err(-EINVAL, "unknown list format %d", (int)o.format);
	/* a binary list starts with a small PCR index: never an ASCII digit */
	if (o.format == IMA_FORMAT_AUTO && len)
		o.format = (buf[0] >= '0' && buf[0] <= '9') || buf[0] == ' ' ? IMA_FORMAT_ASCII
									     : IMA_FORMAT_BINARY;
	if (o.template_hash_alg == 0 && o.format == IMA_FORMAT_BINARY)
		o.template_hash_alg = KQ_ALG_SHA1;
	if (o.template_hash_alg && !kq_md(o.template_hash_alg))
		return kq_err(-ENOTSUP, "unsupported template hash algorithm 0x%04x", o.template_hash_alg);

	r = calloc(1, sizeof(*r));
	if (!r)
		return kq_err(-ENOMEM, "out of memory");
	r->opts = o;
	r->buf = buf;
	r->len = len;
	r->next_index = o.first_index;
	if (o.template_hash_alg) {
		r->th_alg = o.template_hash_alg;
		r->th_md = kq_md(r->th_alg);
		r->th_size = kq_hash_size(r->th_alg);
	}
	r->tc = calloc(1, sizeof(*r->tc));
	r->scratch = malloc(SCRATCH_SIZE);
	r->ctx = EVP_MD_CTX_new();
	if (!r->tc || !r->scratch || !r->ctx)
		return kq_err(-ENOMEM, "out of memory");
	*ret = TAKE_PTR(r);
	return 0;
}

void ima_reader_free(struct ima_reader *r)
{
	if (!r)
		return;
	free(r->tc);
	free(r->scratch);
	EVP_MD_CTX_free(r->ctx);
	free(r);
}

enum ima_format ima_reader_format(const struct ima_reader *r)
{
	return r->opts.format;
}

/* Hex digit value + 1, 0 for anything else. Lists are mostly hex: keep it a table. */
static const uint8_t hexval1[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5,
	['5'] = 6, ['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10,
	['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
	['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

/* Strict hex of exactly n chars (no prefix, no spaces) into out. */
static int hex_decode(const char *what, const uint8_t *s, size_t n, uint8_t *out)
{
	bool bad = false;

	if (n % 2)
		return kq_err(-EBADMSG, "%s: odd number of hex digits", what);
	for (size_t i = 0; i < n / 2; i++) {
		uint8_t hi = hexval1[s[2 * i]], lo = hexval1[s[2 * i + 1]];

		bad |= !hi | !lo;
		out[i] = (uint8_t)(((hi - 1u) & 0x0f) << 4 | ((lo - 1u) & 0x0f));
	}
	if (bad)
		return kq_err(-EBADMSG, "%s: invalid hex digit", what);
	return 0;
}

/* Appends to the scratch template data; -E2BIG past the limit. */
struct builder {
	uint8_t *p;
	size_t len;
};

static int room(struct builder *b, size_t n)
{
	if (n > IMA_MAX_TEMPLATE_DATA - b->len)
		return kq_err(-E2BIG, "template data exceeds the limit of %u bytes", IMA_MAX_TEMPLATE_DATA);
	return 0;
}

/* Rebuilds one field's kernel data from its ascii text into b. */
static int ascii_field(struct builder *b, enum ima_field_id id, const uint8_t *s, size_t n)
{
	const char *fid = fields[id].id;
	uint8_t *out = b->p + b->len;
	int r;

	/*
	 * An empty field (len 0) is shown as nothing. A string field always
	 * holds at least its NUL, so nothing there is the empty string.
	 */
	if (n == 0 && fields[id].kind != KIND_STRING)
		return 0;
	switch (fields[id].kind) {
	case KIND_DIGEST:
	case KIND_HEX:
		if (n / 2 > IMA_MAX_FIELD)
			return kq_err(-E2BIG, "%s field exceeds the limit of %u bytes", fid, IMA_MAX_FIELD);
		if ((r = room(b, n / 2)) < 0 || (r = hex_decode(fid, s, n, out)) < 0)
			return r;
		b->len += n / 2;
		return 0;
	case KIND_DIGEST_NG: {
		const uint8_t *colon = NULL;
		size_t plen, hlen;

		for (size_t i = n; i > 0; i--)
			if (s[i - 1] == ':') {
				colon = s + i - 1;
				break;
			}
		if (!colon)
			return kq_err(-EBADMSG, "%s field has no \"<algo>:\" prefix", fid);
		plen = (size_t)(colon - s);
		hlen = n - plen - 1;
		if (plen > 40 || hlen / 2 > KQ_MAX_DIGEST)
			return kq_err(-EBADMSG, "%s field too long", fid);
		if ((r = room(b, plen + 2 + hlen / 2)) < 0)
			return r;
		memcpy(out, s, plen + 1);
		out[plen + 1] = '\0';
		if ((r = hex_decode(fid, colon + 1, hlen, out + plen + 2)) < 0)
			return r;
		b->len += plen + 2 + hlen / 2;
		return 0;
	}
	case KIND_STRING:
		if (memchr(s, '\0', n))
			return kq_err(-EBADMSG, "%s field has a NUL byte", fid);
		if (n > IMA_MAX_PATH)
			return kq_err(-E2BIG, "%s field of %zu bytes exceeds the limit of %u", fid, n,
				      IMA_MAX_PATH);
		if ((r = room(b, n + 1)) < 0)
			return r;
		memcpy(out, s, n);
		out[n] = '\0';
		b->len += n + 1;
		return 0;
	case KIND_UINT: {
		_cleanup_free_ char *txt = strndup((const char *)s, n);
		uint64_t v, max = fields[id].uint_size == 2 ? UINT16_MAX : UINT32_MAX;
		uint8_t sz = fields[id].uint_size;

		if (!txt)
			return kq_err(-ENOMEM, "out of memory");
		if (kq_parse_uint(txt, max, &v) < 0)
			return kq_err(-EBADMSG, "%s field is not a number in range", fid);
		if ((r = room(b, sz)) < 0)
			return r;
		/* big_endian is applied by the caller's template */
		for (unsigned i = 0; i < sz; i++)
			out[i] = (uint8_t)(v >> (8 * i));
		b->len += sz;
		return 0;
	}
	}
	return kq_err(-EBADMSG, "%s: unhandled field", fid);
}

static void swap_bytes(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n / 2; i++) {
		uint8_t t = p[i];
		p[i] = p[n - 1 - i];
		p[n - 1 - i] = t;
	}
}

/* One ascii line (without its '\n'). */
static int parse_ascii(struct ima_reader *r, const uint8_t *line, size_t n)
{
	struct ima_entry *e = &r->cur;
	const uint8_t *p = line, *end = line + n, *q;
	const uint8_t *tok[IMA_MAX_FIELDS];
	size_t toklen[IMA_MAX_FIELDS];
	struct builder b = { r->scratch, 0 };
	const struct ima_template *t;
	uint32_t pcr = 0;
	unsigned digits = 0, nf;
	int s = -1, r2;

	if (n == 0)
		return kq_err(-EBADMSG, "empty line");
	if (memchr(line, '\0', n))
		return kq_err(-EBADMSG, "NUL byte in line");

	/* PCR: the kernel prints "%2d " */
	if (p < end && *p == ' ')
		p++;
	while (p < end && *p >= '0' && *p <= '9' && digits < 3) {
		pcr = pcr * 10 + (uint32_t)(*p++ - '0');
		digits++;
	}
	if (digits == 0 || p == end || *p != ' ')
		return kq_err(-EBADMSG, "line does not start with a PCR index");
	if (pcr >= IMA_NUM_PCRS)
		return kq_err(-EBADMSG, "PCR index %u out of range", pcr);
	e->pcr = pcr;
	p++;

	/* template hash */
	q = memchr(p, ' ', (size_t)(end - p));
	if (!q)
		return kq_err(-EBADMSG, "no template name after the template hash");
	if (!r->th_alg) {
		static const uint16_t by_len[] = { KQ_ALG_SHA1, KQ_ALG_SHA256, KQ_ALG_SHA384, KQ_ALG_SHA512 };

		for (size_t i = 0; i < ARRAY_SIZE(by_len); i++)
			if ((size_t)(q - p) == 2 * kq_hash_size(by_len[i]))
				r->th_alg = by_len[i];
		if (!r->th_alg)
			return kq_err(-EBADMSG, "template hash of %zu hex digits matches no algorithm",
				      (size_t)(q - p));
		r->th_md = kq_md(r->th_alg);
		r->th_size = kq_hash_size(r->th_alg);
	}
	if ((size_t)(q - p) != 2 * r->th_size)
		return kq_err(-EBADMSG, "template hash of %zu hex digits, expected %zu for %s",
			      (size_t)(q - p), 2 * r->th_size, kq_hash_name(r->th_alg));
	if ((r2 = hex_decode("template hash", p, (size_t)(q - p), e->template_hash)) < 0)
		return r2;
	p = q + 1;

	/* template name */
	q = memchr(p, ' ', (size_t)(end - p));
	if (!q)
		q = end;
	if (!valid_template_name(p, (size_t)(q - p)))
		return kq_err(-EBADMSG, "invalid template name");
	if ((r2 = tmpl_lookup(r->tc, (const char *)p, (size_t)(q - p), r->opts.big_endian, &t)) < 0)
		return r2;
	if (t->id == IMA_TEMPLATE_UNKNOWN)
		return kq_err(-EBADMSG, "unknown template '%s': an ascii list cannot be checked or "
			      "replayed without knowing its fields (use the binary list)", t->name);
	e->tmpl = t;
	p = q;

	/*
	 * Fields: each is " <text>". Only a string field (n, n-ng) may hold
	 * spaces (kernels before 4.13 did not replace them with '_'); with one
	 * such field, split the others off from both ends.
	 */
	nf = t->n_fields;
	for (unsigned i = 0; i < nf; i++)
		if (fields[t->fields[i]].kind == KIND_STRING)
			s = s == -1 ? (int)i : -2;
	if (s < 0)
		s = -1;
	for (unsigned i = 0; i < (s < 0 ? nf : (unsigned)s); i++) {
		if (p == end || *p != ' ')
			return kq_err(-EBADMSG, "template %s needs %u fields, line has %u", t->name, nf, i);
		p++;
		q = memchr(p, ' ', (size_t)(end - p));
		if (!q)
			q = end;
		tok[i] = p;
		toklen[i] = (size_t)(q - p);
		p = q;
	}
	if (s >= 0) {
		for (unsigned i = nf - 1; i > (unsigned)s; i--) {
			q = p < end ? memrchr(p, ' ', (size_t)(end - p)) : NULL;
			if (!q || q == p)
				return kq_err(-EBADMSG, "template %s needs %u fields", t->name, nf);
			tok[i] = q + 1;
			toklen[i] = (size_t)(end - q - 1);
			end = q;
		}
		if (p == end || *p != ' ')
			return kq_err(-EBADMSG, "template %s needs %u fields", t->name, nf);
		p++;
		tok[s] = p;
		toklen[s] = (size_t)(end - p);
		p = end;
	}
	if (p != end)
		return kq_err(-EBADMSG, "template %s has %u fields, line has more", t->name, nf);

	/* rebuild the template data as the kernel holds it */
	if (t->id == IMA_TEMPLATE_IMA) {
		if (toklen[0] != 40)
			return kq_err(-EBADMSG, "d field of %zu hex digits, expected 40", toklen[0]);
		if (toklen[1] > 255)
			return kq_err(-E2BIG, "n field of %zu bytes exceeds the limit of 255", toklen[1]);
		if ((r2 = ascii_field(&b, IMA_FIELD_D, tok[0], toklen[0])) < 0 ||
		    (r2 = ascii_field(&b, IMA_FIELD_N, tok[1], toklen[1])) < 0)
			return r2;
	} else {
		for (unsigned i = 0; i < nf; i++) {
			size_t at = b.len;

			if ((r2 = room(&b, 4)) < 0)
				return r2;
			b.len += 4;
			if ((r2 = ascii_field(&b, t->fields[i], tok[i], toklen[i])) < 0)
				return r2;
			if (r->opts.big_endian && fields[t->fields[i]].kind == KIND_UINT)
				swap_bytes(b.p + at + 4, b.len - at - 4);
			put_u32(b.p + at, (uint32_t)(b.len - at - 4), r->opts.big_endian);
		}
	}
	e->template_data = b.p;
	e->template_data_len = b.len;
	return 0;
}

static int parse_binary(struct ima_reader *r, struct kq_cur *c)
{
	struct ima_entry *e = &r->cur;
	bool be = r->opts.big_endian;
	const struct ima_template *t;
	const uint8_t *name, *p;
	uint32_t pcr, nlen, dlen;
	int rc;

	if ((rc = be ? kq_cur_u32be(c, &pcr) : kq_cur_u32le(c, &pcr)) < 0)
		return rc;
	if (pcr >= IMA_NUM_PCRS)
		return kq_err(-EBADMSG, "PCR index %u out of range", pcr);
	e->pcr = pcr;
	if ((rc = kq_cur_copy(c, e->template_hash, r->th_size)) < 0)
		return rc;
	if ((rc = be ? kq_cur_u32be(c, &nlen) : kq_cur_u32le(c, &nlen)) < 0)
		return rc;
	if (nlen == 0 || nlen > IMA_MAX_TEMPLATE_NAME)
		return kq_err(nlen ? -E2BIG : -EBADMSG, "template name length %u (limit %u)", nlen,
			      IMA_MAX_TEMPLATE_NAME);
	if ((rc = kq_cur_bytes(c, nlen, &name)) < 0)
		return rc;
	if (!valid_template_name(name, nlen))
		return kq_err(-EBADMSG, "invalid template name");
	if ((rc = tmpl_lookup(r->tc, (const char *)name, nlen, be, &t)) < 0)
		return rc;
	e->tmpl = t;

	if (t->id == IMA_TEMPLATE_IMA) {
		/* no data length; d without length; n as u32 strlen + chars */
		if ((rc = kq_cur_copy(c, r->scratch, 20)) < 0)
			return rc;
		if ((rc = be ? kq_cur_u32be(c, &nlen) : kq_cur_u32le(c, &nlen)) < 0)
			return rc;
		if (nlen > 255)
			return kq_err(-E2BIG, "ima template name length %u exceeds the limit of 255", nlen);
		if ((rc = kq_cur_bytes(c, nlen, &p)) < 0)
			return rc;
		if (memchr(p, '\0', nlen))
			return kq_err(-EBADMSG, "n field has a NUL byte");
		memcpy(r->scratch + 20, p, nlen);
		r->scratch[20 + nlen] = '\0';
		e->template_data = r->scratch;
		e->template_data_len = 20 + nlen + 1;
		return 0;
	}
	if ((rc = be ? kq_cur_u32be(c, &dlen) : kq_cur_u32le(c, &dlen)) < 0)
		return rc;
	if (dlen > IMA_MAX_TEMPLATE_DATA)
		return kq_err(-E2BIG, "template data of %u bytes exceeds the limit of %u", dlen,
			      IMA_MAX_TEMPLATE_DATA);
	if ((rc = kq_cur_bytes(c, dlen, &p)) < 0)
		return kq_err(-EBADMSG, "template data of %u bytes overruns the list (%zu bytes left)",
			      dlen, kq_cur_left(c));
	e->template_data = p;
	e->template_data_len = dlen;
	return 0;
}

int ima_reader_next(struct ima_reader *r, const struct ima_entry **ret)
{
	struct ima_entry *e = &r->cur;
	uint8_t computed[KQ_MAX_DIGEST];
	int rc;

	if (r->error)
		return r->error;
	if (r->off == r->len)
		return 0;

	memset(e, 0, sizeof(*e));
	e->index = r->next_index;
	e->offset = r->off;
	e->digest_algo = IMA_HASH_UNKNOWN;

	if (r->opts.format == IMA_FORMAT_ASCII) {
		const uint8_t *line = r->buf + r->off, *nl;
		size_t left = r->len - r->off, n;

		r->line_no++;
		nl = memchr(line, '\n', left < IMA_MAX_LINE + 1 ? left : IMA_MAX_LINE + 1);
		n = nl ? (size_t)(nl - line) : left;
		if (n > IMA_MAX_LINE) {
			rc = kq_err(-E2BIG, "line longer than the limit of %u bytes", IMA_MAX_LINE);
			goto fail;
		}
		if ((rc = parse_ascii(r, line, n)) < 0)
			goto fail;
		r->off += n + (nl ? 1 : 0);
	} else {
		struct kq_cur c = kq_cur_init(r->buf, r->len);

		c.off = r->off;
		if ((rc = parse_binary(r, &c)) < 0)
			goto fail;
		r->off = c.off;
	}
	e->template_name = e->tmpl->name;
	e->template_hash_alg = r->th_alg;

	if ((rc = interpret(e)) < 0)
		goto fail;

	if (all_zero(e->template_hash, r->th_size)) {
		e->violation = true;
	} else if (e->digest_algo < IMA_HASH__LAST && e->digest_len != hash_algos[e->digest_algo].size) {
		/* the short zero digest is a violation's only */
		rc = kq_err(-EBADMSG, "%s digest of %zu bytes outside a violation",
			    hash_algos[e->digest_algo].name, e->digest_len);
		goto fail;
	} else {
		if ((rc = digest_data(r->ctx, e, r->th_md, computed)) < 0)
			goto fail;
		e->template_hash_ok = CRYPTO_memcmp(computed, e->template_hash, r->th_size) == 0;
	}
	r->next_index++;
	*ret = e;
	return 1;

fail:
	if (r->opts.format == IMA_FORMAT_ASCII)
		kq_err_ctx(rc, "entry %llu (line %zu): ", (unsigned long long)e->index, r->line_no);
	else
		kq_err_ctx(rc, "entry %llu (offset %zu): ", (unsigned long long)e->index, e->offset);
	r->error = rc;
	return rc;
}

/* ---- whole lists ---- */

/* Bytes for the copied entries: blocks that never move once handed out. */
struct arena_block {
	struct arena_block *next;
	size_t used, cap;
	uint8_t data[];
};

struct ima_list_priv {
	struct arena_block *blocks;
	struct tmpl_cache *tc;
	size_t cap;
};

#define ARENA_BLOCK (1u << 20)

static uint8_t *arena_alloc(struct ima_list_priv *p, size_t n)
{
	struct arena_block *b = p->blocks;

	if (!b || b->cap - b->used < n) {
		size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;

		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->used = 0;
		b->cap = cap;
		b->next = p->blocks;
		p->blocks = b;
	}
	b->used += n;
	return b->data + b->used - n;
}

void ima_list_free(struct ima_list *l)
{
	if (!l)
		return;
	if (l->priv) {
		struct arena_block *b = l->priv->blocks;

		while (b) {
			struct arena_block *next = b->next;
			free(b);
			b = next;
		}
		free(l->priv->tc);
		free(l->priv);
	}
	free(l->entries);
	free(l);
}

static const uint8_t *rebase(const uint8_t *p, const uint8_t *from, uint8_t *to)
{
	return p ? to + (p - from) : NULL;
}

int ima_list_parse(const uint8_t *buf, size_t len, const struct ima_parse_opts *opts,
		   struct ima_list **ret)
{
	_cleanup_(ima_reader_freep) struct ima_reader *r = NULL;
	_cleanup_(ima_list_freep) struct ima_list *l = NULL;
	size_t max = opts && opts->max_entries && opts->max_entries < IMA_MAX_ENTRIES
			     ? opts->max_entries : IMA_MAX_ENTRIES;
	const struct ima_entry *e;
	int rc;

	if ((rc = ima_reader_new(buf, len, opts, &r)) < 0)
		return rc;
	l = calloc(1, sizeof(*l));
	if (!l || !(l->priv = calloc(1, sizeof(*l->priv))))
		return kq_err(-ENOMEM, "out of memory");
	l->first_index = r->opts.first_index;

	while ((rc = ima_reader_next(r, &e)) > 0) {
		struct ima_entry *d;
		uint8_t *data;

		if (l->n_entries == max)
			return kq_err(-E2BIG, "more than %zu entries", max);
		if (l->n_entries == l->priv->cap) {
			size_t ncap = l->priv->cap ? l->priv->cap * 2 : 256;
			struct ima_entry *ne;

			if (ncap > max)
				ncap = max;
			ne = reallocarray(l->entries, ncap, sizeof(*ne));
			if (!ne)
				return kq_err(-ENOMEM, "out of memory");
			l->entries = ne;
			l->priv->cap = ncap;
		}
		data = arena_alloc(l->priv, e->template_data_len ? e->template_data_len : 1);
		if (!data)
			return kq_err(-ENOMEM, "out of memory");
		if (e->template_data_len)
			memcpy(data, e->template_data, e->template_data_len);
		d = &l->entries[l->n_entries++];
		*d = *e;
		d->template_data = data;
		d->digest = rebase(e->digest, e->template_data, data);
		d->path = (const char *)rebase((const uint8_t *)e->path, e->template_data, data);
		d->sig = rebase(e->sig, e->template_data, data);
		d->buf = rebase(e->buf, e->template_data, data);
	}
	if (rc < 0)
		return rc;
	l->format = r->opts.format;
	/* the descriptors the entries point at move to the list */
	l->priv->tc = TAKE_PTR(r->tc);
	*ret = TAKE_PTR(l);
	return 0;
}

/* ---- replay ---- */

static const uint16_t bank_algs[IMA_NUM_BANKS] = {
	KQ_ALG_SHA1, KQ_ALG_SHA256, KQ_ALG_SHA384, KQ_ALG_SHA512,
};

uint16_t ima_bank_alg(unsigned i)
{
	return i < IMA_NUM_BANKS ? bank_algs[i] : 0;
}

unsigned ima_bank_from_alg(uint16_t alg)
{
	for (unsigned i = 0; i < IMA_NUM_BANKS; i++)
		if (bank_algs[i] == alg)
			return 1u << i;
	return 0;
}

void ima_replay_init(struct ima_replay_state *st, unsigned banks, uint64_t first_index)
{
	memset(st, 0, sizeof(*st));
	st->banks = (banks & ((1u << IMA_NUM_BANKS) - 1)) ?: IMA_BANKS_DEFAULT;
	st->next_index = first_index;
}

const uint8_t *ima_replay_pcr(const struct ima_replay_state *st, unsigned pcr, uint16_t alg)
{
	unsigned b = ima_bank_from_alg(alg);

	if (pcr >= IMA_NUM_PCRS || !(st->banks & b))
		return NULL;
	return st->pcr[pcr][__builtin_ctz(b)];
}

/* Extends e into every bank of st; st is changed only on success. */
static int replay_one(struct ima_replay_state *st, const struct ima_entry *e, EVP_MD_CTX *ctx)
{
	uint8_t next[IMA_NUM_BANKS][KQ_MAX_DIGEST];

	if (e->index != st->next_index)
		return kq_err(-EINVAL, "entry %llu does not follow the replay state (next is %llu)",
			      (unsigned long long)e->index, (unsigned long long)st->next_index);
	if (e->pcr >= IMA_NUM_PCRS)
		return kq_err(-EINVAL, "entry %llu: PCR %u out of range", (unsigned long long)e->index,
			      e->pcr);
	for (unsigned i = 0; i < IMA_NUM_BANKS; i++) {
		uint16_t alg = bank_algs[i];
		const EVP_MD *md = kq_md(alg);
		size_t n = kq_hash_size(alg);
		uint8_t d[KQ_MAX_DIGEST];
		int r;

		if (!(st->banks & (1u << i)))
			continue;
		if (!md)
			return kq_err(-ENOTSUP, "%s is not available", kq_hash_name(alg));
		if ((r = bank_digest(ctx, e, alg, md, d)) < 0)
			return r;
		if (EVP_DigestInit_ex(ctx, md, NULL) != 1 ||
		    EVP_DigestUpdate(ctx, st->pcr[e->pcr][i], n) != 1 ||
		    EVP_DigestUpdate(ctx, d, n) != 1 || EVP_DigestFinal_ex(ctx, next[i], NULL) != 1)
			return kq_err(-EIO, "%s extend failed", kq_hash_name(alg));
	}
	for (unsigned i = 0; i < IMA_NUM_BANKS; i++)
		if (st->banks & (1u << i))
			memcpy(st->pcr[e->pcr][i], next[i], kq_hash_size(bank_algs[i]));
	st->pcrs_used |= 1u << e->pcr;
	if (e->violation)
		st->violations++;
	else if (!e->template_hash_ok && st->bad_entries++ == 0)
		st->first_bad = e->index;
	st->next_index++;
	return 0;
}

int ima_replay_entry(struct ima_replay_state *st, const struct ima_entry *e)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int r;

	if (!ctx)
		return kq_err(-ENOMEM, "out of memory");
	r = replay_one(st, e, ctx);
	EVP_MD_CTX_free(ctx);
	return r;
}

int ima_replay_list(struct ima_replay_state *st, const struct ima_list *l)
{
	_cleanup_free_ struct ima_replay_state *tmp = NULL;
	EVP_MD_CTX *ctx;
	size_t i;
	int r = 0;

	if (l->first_index > st->next_index)
		return kq_err(-EINVAL, "list starts at entry %llu but the replay state is at %llu",
			      (unsigned long long)l->first_index, (unsigned long long)st->next_index);
	i = st->next_index - l->first_index;
	if (i >= l->n_entries)
		return 0;
	tmp = malloc(sizeof(*tmp));
	ctx = EVP_MD_CTX_new();
	if (!tmp || !ctx) {
		EVP_MD_CTX_free(ctx);
		return kq_err(-ENOMEM, "out of memory");
	}
	*tmp = *st;
	for (; i < l->n_entries && r == 0; i++)
		r = replay_one(tmp, &l->entries[i], ctx);
	EVP_MD_CTX_free(ctx);
	if (r == 0)
		*st = *tmp;
	return r;
}
