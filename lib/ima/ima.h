/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/ima: Linux IMA measurement lists — parsing, template-hash checks,
 * per-bank PCR replay (full or incremental) and IMA v2 file signatures.
 *
 * Every byte of a list is hostile: it comes from a machine that may be
 * compromised. The parsers read through bounds-checked cursors, enforce the
 * limits below and fail with -EBADMSG (malformed) or -E2BIG (over a limit)
 * and a message naming the entry (kq_errmsg()). Nothing in a list is trusted
 * until the replay matches a quoted PCR; even then an entry is only as good
 * as its template_hash_ok flag.
 *
 * Formats: the kernel's ascii_runtime_measurements (one line per entry) and
 * binary_runtime_measurements (little-endian, or big-endian from a big-endian
 * machine without ima_canonical_fmt). The per-bank files of newer kernels
 * (ascii/binary_runtime_measurements_sha256, ...) record the template hash in
 * that bank's algorithm: see ima_parse_opts.template_hash_alg.
 *
 * Templates: ima (d|n), ima-ng (d-ng|n-ng), ima-sig (d-ng|n-ng|sig), ima-buf
 * (d-ng|n-ng|buf), ima-ngv2, ima-sigv2, ima-modsig, evm-sig, and custom
 * formats named by their field list ("d-ng|n-ng|sig"), as the kernel names
 * them. An unknown template in a binary list is kept (its data is what the
 * kernel hashed, so its template hash is still checked and every bank still
 * replayed) but its fields are not interpreted (tmpl->id is
 * IMA_TEMPLATE_UNKNOWN). An unknown template in an ascii list is an error:
 * its data cannot be rebuilt from the text, so neither checked nor replayed
 * in any bank but the recorded one — use the binary list.
 *
 * All functions are reentrant; a keyring may be shared by threads once
 * loaded. Library code never prints.
 */
#ifndef KQ_IMA_H
#define KQ_IMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"

/* ---- limits (over a limit: -E2BIG with a message) ---- */

#define IMA_MAX_LIST_SIZE     (128u << 20) /* bytes of one parsed input */
#define IMA_MAX_ENTRIES       (1u << 20)   /* entries per ima_list (default) */
#define IMA_MAX_LINE          (288u << 10) /* bytes of one ascii line */
#define IMA_MAX_TEMPLATE_NAME 255          /* bytes of a template name */
#define IMA_MAX_TEMPLATE_DATA (128u << 10) /* bytes of one entry's template data */
#define IMA_MAX_FIELD         (64u << 10)  /* bytes of one template field */
#define IMA_MAX_FIELDS        15           /* fields per template (kernel's limit) */
#define IMA_MAX_PATH          4095         /* bytes of a path / event name, NUL excluded */
#define IMA_MAX_TEMPLATES     16           /* distinct template names in one input */
#define IMA_NUM_PCRS          24           /* entries must name PCR 0..23 */
#define IMA_PCR               10           /* the PCR IMA uses unless policy says pcr= */
#define IMA_MAX_KEYS          1024         /* keys in one keyring */
#define IMA_MIN_RSA_BITS      2048         /* smaller RSA keys are refused */

/* ---- hash algorithms as the kernel numbers them (enum hash_algo) ---- */

enum ima_hash_algo {
	IMA_HASH_MD4 = 0,
	IMA_HASH_MD5,
	IMA_HASH_SHA1,
	IMA_HASH_RIPEMD160,
	IMA_HASH_SHA256,
	IMA_HASH_SHA384,
	IMA_HASH_SHA512,
	IMA_HASH_SHA224,
	IMA_HASH_RIPEMD128,
	IMA_HASH_RIPEMD256,
	IMA_HASH_RIPEMD320,
	IMA_HASH_WP256,
	IMA_HASH_WP384,
	IMA_HASH_WP512,
	IMA_HASH_TGR128,
	IMA_HASH_TGR160,
	IMA_HASH_TGR192,
	IMA_HASH_SM3_256,
	IMA_HASH_STREEBOG256,
	IMA_HASH_STREEBOG512,
	IMA_HASH_SHA3_256,
	IMA_HASH_SHA3_384,
	IMA_HASH_SHA3_512,
	IMA_HASH_ASCON256,
	IMA_HASH__LAST,
	IMA_HASH_UNKNOWN = 0xff, /* a name the kernel table does not hold */
};

/* The kernel's name ("sha256", "sha3-256", ...) or NULL. */
const char *ima_hash_algo_name(unsigned algo);
/* Digest size in bytes, 0 if unknown. */
size_t ima_hash_algo_size(unsigned algo);
/* IMA_HASH_* for a kernel name, IMA_HASH_UNKNOWN if none. */
unsigned ima_hash_algo_from_name(const char *name, size_t len);
/* The TPM_ALG_ID of the same hash (KQ_ALG_*), 0 if kumquat has none. */
uint16_t ima_hash_algo_to_tpm(unsigned algo);

/* ---- templates ---- */

enum ima_field_id {
	IMA_FIELD_D,            /* 20-byte digest ('ima' template) */
	IMA_FIELD_N,            /* event name, at most 255 bytes */
	IMA_FIELD_D_NG,         /* "<algo>:\0" + digest */
	IMA_FIELD_D_NGV2,       /* "<ima|verity>:<algo>:\0" + digest */
	IMA_FIELD_N_NG,         /* event name, NUL-terminated */
	IMA_FIELD_SIG,          /* security.ima signature (or EVM portable sig) */
	IMA_FIELD_BUF,          /* measured buffer (ima-buf) */
	IMA_FIELD_D_MODSIG,     /* digest of the file without its appended sig */
	IMA_FIELD_MODSIG,       /* appended signature (PKCS#7) */
	IMA_FIELD_EVMSIG,       /* EVM portable signature */
	IMA_FIELD_IUID,         /* inode uid (4 bytes) */
	IMA_FIELD_IGID,         /* inode gid (4 bytes) */
	IMA_FIELD_IMODE,        /* inode mode (2 bytes) */
	IMA_FIELD_XATTRNAMES,
	IMA_FIELD_XATTRLENGTHS,
	IMA_FIELD_XATTRVALUES,
	IMA_FIELD__COUNT,
};

/* The kernel's field id ("d-ng", ...) or NULL. */
const char *ima_field_name(enum ima_field_id id);

enum ima_template_id {
	IMA_TEMPLATE_UNKNOWN = 0, /* binary lists only: fields not interpreted */
	IMA_TEMPLATE_IMA,         /* legacy d|n, hashed with the name padded */
	IMA_TEMPLATE_IMA_NG,
	IMA_TEMPLATE_IMA_SIG,
	IMA_TEMPLATE_IMA_BUF,
	IMA_TEMPLATE_IMA_NGV2,
	IMA_TEMPLATE_IMA_SIGV2,
	IMA_TEMPLATE_IMA_MODSIG,
	IMA_TEMPLATE_EVM_SIG,
	IMA_TEMPLATE_CUSTOM,      /* named by its format, e.g. "d-ng|n-ng|sig" */
};

struct ima_template {
	char name[IMA_MAX_TEMPLATE_NAME + 1];
	enum ima_template_id id;
	unsigned n_fields; /* 0 for IMA_TEMPLATE_UNKNOWN */
	enum ima_field_id fields[IMA_MAX_FIELDS];
	bool big_endian;   /* field lengths in template_data are big-endian */
};

/* ---- entries ---- */

enum ima_digest_type {
	IMA_DIGEST_FILE = 0, /* hash of the file contents (d, d-ng, d-ngv2 "ima:") */
	IMA_DIGEST_VERITY,   /* fs-verity file digest (d-ngv2 "verity:") */
};

/*
 * One measurement. All pointers point into memory owned by the list (or, for
 * ima_reader, valid until the next ima_reader_next()).
 */
struct ima_entry {
	uint64_t index;          /* absolute, 0-based position in the kernel's list */
	size_t offset;           /* byte offset of the entry in the parsed input */
	uint32_t pcr;            /* the PCR the kernel extended, < IMA_NUM_PCRS */
	uint16_t template_hash_alg;           /* KQ_ALG_* of template_hash */
	uint8_t template_hash[KQ_MAX_DIGEST]; /* as recorded in the list */
	const struct ima_template *tmpl;
	const char *template_name;            /* == tmpl->name */
	/*
	 * The kernel's template data. For every template but 'ima' these are
	 * the exact bytes it hashed: each field as a u32 length + data. For
	 * 'ima' it is d (20 bytes) then the NUL-terminated name; the kernel
	 * hashes the name zero-padded to 256 bytes (ima_entry_template_digest
	 * does that).
	 */
	const uint8_t *template_data;
	size_t template_data_len;
	/* Recorded template hash is all zero: a ToMToU/open-writers violation.
	 * The kernel extended 0xff..ff; the data says nothing trustworthy. */
	bool violation;
	/* The recorded template hash equals the hash of template_data. An entry
	 * with neither violation nor template_hash_ok is bad (ima_entry_is_bad). */
	bool template_hash_ok;

	/* Interpreted fields, NULL / 0 when the template has none (or is unknown). */
	unsigned digest_algo;             /* IMA_HASH_*; IMA_HASH_UNKNOWN for a name
					     outside the kernel's table or no digest */
	enum ima_digest_type digest_type;
	/* File digest (d, d-ng or d-ngv2). digest_len is digest_algo's size,
	 * except for a violation's 20 zero bytes (the kernel writes those
	 * whatever the algorithm; refused outside a violation) and for
	 * unknown algorithms (1..64 bytes). */
	const uint8_t *digest;
	size_t digest_len;
	const char *path;                 /* n or n-ng: NUL-terminated, no inner NUL */
	size_t path_len;                  /* strlen(path) */
	const uint8_t *sig;               /* sig field; NULL when empty or absent */
	size_t sig_len;
	const uint8_t *buf;               /* buf field (ima-buf); NULL when empty or absent */
	size_t buf_len;
};

static inline bool ima_entry_is_bad(const struct ima_entry *e)
{
	return !e->violation && !e->template_hash_ok;
}

/*
 * Finds the first field with the given id in the entry's template data.
 * *ret_data points into the entry (NULL for an empty field). -ENOENT if the
 * template has no such field or is unknown.
 */
int ima_entry_field(const struct ima_entry *e, enum ima_field_id id,
		    const uint8_t **ret_data, size_t *ret_len);

/*
 * What the kernel extended into a bank of hash alg (KQ_ALG_*) for this entry:
 * 0xff.. for a violation, the recorded hash for the recorded bank, else the
 * template data hashed with alg. out receives kq_hash_size(alg) bytes.
 * -ENOTSUP for an unsupported alg.
 */
int ima_entry_bank_digest(const struct ima_entry *e, uint16_t alg, uint8_t *out);
/* The hash of the template data with alg, as the kernel computes it. */
int ima_entry_template_digest(const struct ima_entry *e, uint16_t alg, uint8_t *out);

/* ---- parsing ---- */

enum ima_format {
	IMA_FORMAT_AUTO = 0, /* ascii if the input starts with a digit or space */
	IMA_FORMAT_ASCII,
	IMA_FORMAT_BINARY,
};

struct ima_parse_opts {
	enum ima_format format;
	/* KQ_ALG_* of the recorded template hashes. 0: sha1 for binary lists,
	 * and for ascii lists guessed from the first line's hex length (40
	 * sha1, 64 sha256, 96 sha384, 128 sha512). */
	uint16_t template_hash_alg;
	/* Absolute index of the first entry in the input (a verifier that
	 * fetched entries from index N onwards passes N). */
	uint64_t first_index;
	/* Binary lists from big-endian machines without ima_canonical_fmt. */
	bool big_endian;
	/* Entries allowed in one ima_list; 0 or above IMA_MAX_ENTRIES means
	 * IMA_MAX_ENTRIES. */
	size_t max_entries;
};

/* Streaming: one entry at a time, constant memory. */
struct ima_reader;

/*
 * Starts reading buf (not copied: it must outlive the reader). opts may be
 * NULL for defaults. -E2BIG above IMA_MAX_LIST_SIZE, -EINVAL / -ENOTSUP for
 * bad options. Caller frees with ima_reader_free().
 */
int ima_reader_new(const uint8_t *buf, size_t len, const struct ima_parse_opts *opts,
		   struct ima_reader **ret);
/*
 * Parses the next entry: returns 1 and points *ret at it (valid until the
 * next call or ima_reader_free), 0 at the end, or a negative error (the
 * reader then stays failed). The template hash is checked here.
 */
int ima_reader_next(struct ima_reader *r, const struct ima_entry **ret);
/* The format being read (resolved from AUTO after the first call). */
enum ima_format ima_reader_format(const struct ima_reader *r);
void ima_reader_free(struct ima_reader *r);

/* A whole parsed list. */
struct ima_list {
	enum ima_format format;
	uint64_t first_index;      /* index of entries[0] */
	size_t n_entries;
	struct ima_entry *entries; /* entries[i].index == first_index + i */
	struct ima_list_priv *priv;
};

/*
 * Parses a whole list; all entries are copied (buf may be freed after).
 * Fails on the first malformed entry (nothing is returned then) and above
 * opts->max_entries. An empty input is an empty list. Caller frees with
 * ima_list_free().
 */
int ima_list_parse(const uint8_t *buf, size_t len, const struct ima_parse_opts *opts,
		   struct ima_list **ret);
void ima_list_free(struct ima_list *l);
static inline void ima_list_freep(struct ima_list **l) { ima_list_free(*l); }
static inline void ima_reader_freep(struct ima_reader **r) { ima_reader_free(*r); }

/* ---- replay ---- */

enum ima_bank {
	IMA_BANK_SHA1   = 1u << 0,
	IMA_BANK_SHA256 = 1u << 1,
	IMA_BANK_SHA384 = 1u << 2,
	IMA_BANK_SHA512 = 1u << 3,
};
#define IMA_NUM_BANKS 4
#define IMA_BANKS_DEFAULT (IMA_BANK_SHA1 | IMA_BANK_SHA256)

/* KQ_ALG_* of bank bit i (0..IMA_NUM_BANKS-1); IMA_BANK_* of a KQ_ALG_* (0 if none). */
uint16_t ima_bank_alg(unsigned bank_bit_index);
unsigned ima_bank_from_alg(uint16_t alg);

/*
 * Running PCR values after the entries replayed so far. Plain data with no
 * pointers: a verifier may store it and later feed only the new entries; the
 * result equals a full replay. Entries name their PCR, so one value per PCR
 * per bank is kept: a verifier must compare every PCR in pcrs_used (normally
 * only PCR 10) with the quote, and reject a list that extends a PCR it does
 * not quote.
 */
struct ima_replay_state {
	uint64_t next_index;  /* entries replayed = absolute index of the next one */
	unsigned banks;       /* IMA_BANK_* being replayed */
	uint32_t pcrs_used;   /* bit p set once an entry extended PCR p */
	uint64_t violations;  /* violation entries replayed */
	uint64_t bad_entries; /* entries whose template hash did not match */
	uint64_t first_bad;   /* index of the first bad entry (if bad_entries) */
	uint8_t pcr[IMA_NUM_PCRS][IMA_NUM_BANKS][KQ_MAX_DIGEST];
};

/* Starts from all-zero PCRs at index first_index (normally 0). banks: IMA_BANK_* (0 = default). */
void ima_replay_init(struct ima_replay_state *st, unsigned banks, uint64_t first_index);
/*
 * Extends one entry into every bank of st, as the kernel did: a violation
 * extends 0xff..ff of the bank's size; the bank of the recorded template hash
 * gets the recorded hash (what the kernel extended even if the data was later
 * changed); other banks get the template data hashed with their algorithm.
 * A bad entry is replayed the same way and counted. -EINVAL if e->index is
 * not st->next_index (st unchanged).
 */
int ima_replay_entry(struct ima_replay_state *st, const struct ima_entry *e);
/*
 * Replays the entries of l from st->next_index on; entries before it are
 * skipped (already replayed). -EINVAL if l starts after st->next_index (a
 * gap). On error st is unchanged.
 */
int ima_replay_list(struct ima_replay_state *st, const struct ima_list *l);
/* The running value of pcr in bank alg (KQ_ALG_*), or NULL if not replayed. */
const uint8_t *ima_replay_pcr(const struct ima_replay_state *st, unsigned pcr, uint16_t alg);

/* ---- signatures ---- */

/* IMA signature header (struct signature_v2_hdr) of a sig field. */
struct ima_sig_hdr {
	uint8_t type;      /* 3 = EVM_IMA_XATTR_DIGSIG, 5 = EVM portable, 6 = verity */
	uint8_t version;   /* 2 for the signatures checked here */
	uint8_t hash_algo; /* IMA_HASH_* */
	uint32_t keyid;    /* last 4 bytes of the SHA-1 of the public key */
	const uint8_t *sig;
	size_t sig_len;    /* == the header's sig_size, as the kernel requires */
};

/*
 * Parses the 9-byte header and checks that sig_size equals what follows.
 * -EBADMSG when malformed. Does not judge type or version.
 */
int ima_sig_parse(const uint8_t *buf, size_t len, struct ima_sig_hdr *ret);

/* Public keys by key id, for IMA v2 signatures. */
struct ima_keyring;

int ima_keyring_new(struct ima_keyring **ret);
void ima_keyring_free(struct ima_keyring *k);
static inline void ima_keyring_freep(struct ima_keyring **k) { ima_keyring_free(*k); }
/*
 * Adds every public key and certificate in a PEM buffer ("PUBLIC KEY", "RSA
 * PUBLIC KEY", "CERTIFICATE"), or one DER certificate or SubjectPublicKeyInfo.
 * Keys must be RSA (>= IMA_MIN_RSA_BITS) or EC on a named curve. A cert's
 * validity and chain are not checked here: adding it means trusting its key.
 * Returns the number of keys added (>= 1) or -EBADMSG / -ENOTSUP / -E2BIG.
 */
int ima_keyring_add(struct ima_keyring *k, const uint8_t *buf, size_t len);
/* ima_keyring_add on a file's contents (at most 1 MiB). */
int ima_keyring_add_file(struct ima_keyring *k, const char *path);
size_t ima_keyring_count(const struct ima_keyring *k);
/* The key id of key i: last 4 bytes of SHA-1(subjectPublicKey bits) — for
 * RSA the PKCS#1 RSAPublicKey DER, for EC the encoded point. */
uint32_t ima_keyring_keyid(const struct ima_keyring *k, size_t i);

enum ima_sig_status {
	IMA_SIG_NONE = 0,    /* the entry carries no signature */
	IMA_SIG_VALID,
	IMA_SIG_INVALID,     /* malformed, unsupported, mismatched or wrong */
	IMA_SIG_UNKNOWN_KEY, /* well-formed, but no key in the keyring has its id */
};

/* "no-signature", "valid", "invalid", "unknown-key". */
const char *ima_sig_status_name(enum ima_sig_status s);

struct ima_sig_result {
	enum ima_sig_status status;
	bool has_keyid;
	uint32_t keyid;
	const char *reason; /* static text for INVALID / UNKNOWN_KEY, else NULL */
};

/*
 * Checks the entry's sig field against its file digest, as the kernel's
 * asymmetric_verify does for an IMA v2 signature (type 3, version 2):
 * RSASSA-PKCS1-v1_5 or ECDSA (DER) over the file digest, with the header's
 * hash algorithm, which must be the file digest's. A verity digest or other
 * signature types/versions are INVALID ("unsupported"). keyring may be NULL
 * (every signature is then UNKNOWN_KEY, or INVALID if malformed). The keyid
 * names the key; when several keys share it, any of them may verify.
 */
enum ima_sig_status ima_sig_verify(const struct ima_keyring *keyring, const struct ima_entry *e,
				   struct ima_sig_result *ret);

#endif
