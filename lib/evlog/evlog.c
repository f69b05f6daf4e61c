/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/evlog: framing of TCG PC Client event logs, digest checks and replay.
 * References: TCG PC Client Platform Firmware Profile (PFP) 1.05 r23, 10.2
 * (event structures), 10.4 (event types), 3.3.4 / 9.4.5.3 (StartupLocality);
 * TPM 2.0 Library Part 1, 34.3 (H-CRTM).
 */
#include <string.h>

#include <openssl/crypto.h>

#include "evlog/evlog-priv.h"
#include "util/util.h"

struct evlog {
	uint8_t *buf; /* private copy of the log: events point into it */
	size_t len;
	enum evlog_format format;
	size_t n_banks;
	uint16_t bank_alg[EVLOG_MAX_BANKS];
	uint16_t bank_size[EVLOG_MAX_BANKS];
	bool bank_hashable[EVLOG_MAX_BANKS]; /* kumquat implements this hash */
	struct evlog_event *events;
	size_t n_events, cap_events;
	uint8_t locality;
	bool locality_set;   /* a StartupLocality or H-CRTM event was seen */
	bool pcr0_extended;
	size_t n_mismatched;
	struct arena arena;
};

static const char spec_id_sig[16] = "Spec ID Event03";
static const char startup_locality_sig[16] = "StartupLocality";

static const struct {
	uint32_t type;
	const char *name;
} type_names[] = {
	{ EVLOG_EV_PREBOOT_CERT, "EV_PREBOOT_CERT" },
	{ EVLOG_EV_POST_CODE, "EV_POST_CODE" },
	{ EVLOG_EV_UNUSED, "EV_UNUSED" },
	{ EVLOG_EV_NO_ACTION, "EV_NO_ACTION" },
	{ EVLOG_EV_SEPARATOR, "EV_SEPARATOR" },
	{ EVLOG_EV_ACTION, "EV_ACTION" },
	{ EVLOG_EV_EVENT_TAG, "EV_EVENT_TAG" },
	{ EVLOG_EV_S_CRTM_CONTENTS, "EV_S_CRTM_CONTENTS" },
	{ EVLOG_EV_S_CRTM_VERSION, "EV_S_CRTM_VERSION" },
	{ EVLOG_EV_CPU_MICROCODE, "EV_CPU_MICROCODE" },
	{ EVLOG_EV_PLATFORM_CONFIG_FLAGS, "EV_PLATFORM_CONFIG_FLAGS" },
	{ EVLOG_EV_TABLE_OF_DEVICES, "EV_TABLE_OF_DEVICES" },
	{ EVLOG_EV_COMPACT_HASH, "EV_COMPACT_HASH" },
	{ EVLOG_EV_IPL, "EV_IPL" },
	{ EVLOG_EV_IPL_PARTITION_DATA, "EV_IPL_PARTITION_DATA" },
	{ EVLOG_EV_NONHOST_CODE, "EV_NONHOST_CODE" },
	{ EVLOG_EV_NONHOST_CONFIG, "EV_NONHOST_CONFIG" },
	{ EVLOG_EV_NONHOST_INFO, "EV_NONHOST_INFO" },
	{ EVLOG_EV_OMIT_BOOT_DEVICE_EVENTS, "EV_OMIT_BOOT_DEVICE_EVENTS" },
	{ EVLOG_EV_POST_CODE2, "EV_POST_CODE2" },
	{ EVLOG_EV_EFI_EVENT_BASE, "EV_EFI_EVENT_BASE" },
	{ EVLOG_EV_EFI_VARIABLE_DRIVER_CONFIG, "EV_EFI_VARIABLE_DRIVER_CONFIG" },
	{ EVLOG_EV_EFI_VARIABLE_BOOT, "EV_EFI_VARIABLE_BOOT" },
	{ EVLOG_EV_EFI_BOOT_SERVICES_APPLICATION, "EV_EFI_BOOT_SERVICES_APPLICATION" },
	{ EVLOG_EV_EFI_BOOT_SERVICES_DRIVER, "EV_EFI_BOOT_SERVICES_DRIVER" },
	{ EVLOG_EV_EFI_RUNTIME_SERVICES_DRIVER, "EV_EFI_RUNTIME_SERVICES_DRIVER" },
	{ EVLOG_EV_EFI_GPT_EVENT, "EV_EFI_GPT_EVENT" },
	{ EVLOG_EV_EFI_ACTION, "EV_EFI_ACTION" },
	{ EVLOG_EV_EFI_PLATFORM_FIRMWARE_BLOB, "EV_EFI_PLATFORM_FIRMWARE_BLOB" },
	{ EVLOG_EV_EFI_HANDOFF_TABLES, "EV_EFI_HANDOFF_TABLES" },
	{ EVLOG_EV_EFI_PLATFORM_FIRMWARE_BLOB2, "EV_EFI_PLATFORM_FIRMWARE_BLOB2" },
	{ EVLOG_EV_EFI_HANDOFF_TABLES2, "EV_EFI_HANDOFF_TABLES2" },
	{ EVLOG_EV_EFI_VARIABLE_BOOT2, "EV_EFI_VARIABLE_BOOT2" },
	{ EVLOG_EV_EFI_GPT_EVENT2, "EV_EFI_GPT_EVENT2" },
	{ EVLOG_EV_EFI_HCRTM_EVENT, "EV_EFI_HCRTM_EVENT" },
	{ EVLOG_EV_EFI_VARIABLE_AUTHORITY, "EV_EFI_VARIABLE_AUTHORITY" },
	{ EVLOG_EV_EFI_SPDM_FIRMWARE_BLOB, "EV_EFI_SPDM_FIRMWARE_BLOB" },
	{ EVLOG_EV_EFI_SPDM_FIRMWARE_CONFIG, "EV_EFI_SPDM_FIRMWARE_CONFIG" },
};

const char *evlog_event_type_name(uint32_t type)
{
	for (size_t i = 0; i < ARRAY_SIZE(type_names); i++)
		if (type_names[i].type == type)
			return type_names[i].name;
	return NULL;
}

/* ---- accessors ---- */

enum evlog_format evlog_format(const struct evlog *log) { return log->format; }
size_t evlog_n_banks(const struct evlog *log) { return log->n_banks; }
size_t evlog_n_events(const struct evlog *log) { return log->n_events; }
uint8_t evlog_startup_locality(const struct evlog *log) { return log->locality; }
size_t evlog_n_mismatched(const struct evlog *log) { return log->n_mismatched; }

uint16_t evlog_bank_alg(const struct evlog *log, size_t bank)
{
	return bank < log->n_banks ? log->bank_alg[bank] : 0;
}

size_t evlog_bank_digest_size(const struct evlog *log, size_t bank)
{
	return bank < log->n_banks ? log->bank_size[bank] : 0;
}

int evlog_bank_index(const struct evlog *log, uint16_t alg)
{
	for (size_t b = 0; b < log->n_banks; b++)
		if (log->bank_alg[b] == alg)
			return (int)b;
	return -ENOENT;
}

const struct evlog_event *evlog_event(const struct evlog *log, size_t i)
{
	return i < log->n_events ? &log->events[i] : NULL;
}

const uint8_t *evlog_event_digest(const struct evlog *log, const struct evlog_event *ev, uint16_t alg)
{
	int b = evlog_bank_index(log, alg);

	return b < 0 ? NULL : ev->digests[b];
}

void evlog_free(struct evlog *log)
{
	if (!log)
		return;
	arena_free(&log->arena);
	free(log->events);
	free(log->buf);
	free(log);
}

/* ---- hashing ---- */

/*
 * One reusable digest context per bank: EVP_Digest() allocates and frees a
 * context on every call, which costs more than hashing a 64-byte extend.
 */
struct hasher {
	EVP_MD_CTX *ctx[EVLOG_MAX_BANKS];
};

static void hasher_done(struct hasher *h)
{
	for (size_t b = 0; b < EVLOG_MAX_BANKS; b++)
		EVP_MD_CTX_free(h->ctx[b]);
}

/* H(a || b) for bank's alg into out; b may be NULL. */
static int bank_hash(struct hasher *h, size_t bank, uint16_t alg, const void *a, size_t na, const void *b2,
		     size_t nb, uint8_t *out)
{
	const EVP_MD *md = kq_md(alg);

	if (!md)
		return kq_err(-ENOTSUP, "unsupported hash algorithm 0x%04x", alg);
	if (!h->ctx[bank] && !(h->ctx[bank] = EVP_MD_CTX_new()))
		return kq_err(-ENOMEM, "out of memory");
	if (EVP_DigestInit_ex2(h->ctx[bank], md, NULL) != 1 || EVP_DigestUpdate(h->ctx[bank], a, na) != 1 ||
	    (b2 && EVP_DigestUpdate(h->ctx[bank], b2, nb) != 1) ||
	    EVP_DigestFinal_ex(h->ctx[bank], out, NULL) != 1)
		return kq_err(-EIO, "%s digest failed", kq_hash_name(alg));
	return 0;
}

/* ---- digest checks ---- */

struct span {
	const uint8_t *p;
	size_t n;
	enum evlog_form form;
};

/*
 * Tries each form in turn: the first whose hash equals the digest in every
 * bank kumquat can hash makes the event EVLOG_VERIFY_OK. If none does, the
 * event is a mismatch (banks as for the first form) when mismatch_if_none,
 * else not checkable.
 */
static int check_forms(const struct evlog *log, struct hasher *h, struct evlog_event *ev,
		       const struct span *forms, size_t n_forms, bool mismatch_if_none)
{
	uint32_t first_mask = 0;
	bool checked = false;

	for (size_t f = 0; f < n_forms; f++) {
		uint32_t mask = 0;

		for (size_t b = 0; b < log->n_banks; b++) {
			uint8_t md[KQ_MAX_DIGEST];
			int r;

			if (!log->bank_hashable[b] || !ev->digests[b])
				continue;
			r = bank_hash(h, b, log->bank_alg[b], forms[f].p, forms[f].n, NULL, 0, md);
			if (r < 0)
				return r;
			checked = true;
			if (CRYPTO_memcmp(md, ev->digests[b], log->bank_size[b]) != 0)
				mask |= 1u << b;
		}
		if (!checked)
			return 0; /* no bank we can hash: stays EVLOG_VERIFY_NA */
		if (mask == 0) {
			ev->verify = EVLOG_VERIFY_OK;
			ev->form = forms[f].form;
			ev->measured = forms[f].p;
			ev->measured_len = forms[f].n;
			return 0;
		}
		if (f == 0)
			first_mask = mask;
	}
	if (mismatch_if_none) {
		ev->verify = EVLOG_VERIFY_MISMATCH;
		ev->mismatch_banks = first_mask;
	}
	return 0;
}

/*
 * GRUB measures its commands and the kernel command line into PCR 8 as EV_IPL
 * "<prefix> <text>\0" and hashes only <text> (grub 2.04+: without the NUL;
 * RHEL 8's grub: "grub_cmd" with it). Returns the text's offset or 0.
 */
static size_t grub_ipl_text(const struct evlog_event *ev)
{
	static const char *const prefixes[] = {
		"grub_cmd: ", "kernel_cmdline: ", "grub_cmd ", "grub_kernel_cmdline ",
	};

	if (ev->pcr != 8 || ev->data_len == 0 || ev->data[ev->data_len - 1] != 0)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
		size_t n = strlen(prefixes[i]);

		if (ev->data_len > n && memcmp(ev->data, prefixes[i], n) == 0)
			return n;
	}
	return 0;
}

static int verify_event(const struct evlog *log, struct hasher *h, struct evlog_event *ev)
{
	struct span forms[3] = { { ev->data, ev->data_len, EVLOG_FORM_FULL } };
	size_t n = 1;

	if (!ev->extends)
		return 0;
	switch (ev->type) {
	case EVLOG_EV_SEPARATOR:
	case EVLOG_EV_ACTION:
	case EVLOG_EV_EFI_ACTION:
	case EVLOG_EV_S_CRTM_VERSION:
	case EVLOG_EV_EFI_GPT_EVENT:
	case EVLOG_EV_EFI_VARIABLE_DRIVER_CONFIG:
	case EVLOG_EV_EFI_VARIABLE_BOOT2:
		return check_forms(log, h, ev, forms, 1, true);
	case EVLOG_EV_EFI_VARIABLE_BOOT:
		if (ev->dec.kind == EVLOG_KIND_EFI_VARIABLE)
			forms[n++] = (struct span){ ev->dec.var.data, ev->dec.var.data_len, EVLOG_FORM_VAR_DATA };
		return check_forms(log, h, ev, forms, n, true);
	case EVLOG_EV_EFI_VARIABLE_AUTHORITY:
		if (ev->dec.kind == EVLOG_KIND_EFI_VARIABLE &&
		    ev->dec.var.data + ev->dec.var.data_len < ev->data + ev->data_len)
			forms[n++] = (struct span){ ev->data, ev->data_len - 1, EVLOG_FORM_SHIM_EXTRA_BYTE };
		return check_forms(log, h, ev, forms, n, true);
	case EVLOG_EV_IPL: {
		size_t t = grub_ipl_text(ev);

		if (!t) /* loader-defined format: only a whole-data match means anything */
			return check_forms(log, h, ev, forms, 1, false);
		forms[0] = (struct span){ ev->data + t, ev->data_len - t - 1, EVLOG_FORM_IPL_STRING };
		forms[1] = (struct span){ ev->data + t, ev->data_len - t, EVLOG_FORM_IPL_STRING };
		forms[2] = (struct span){ ev->data, ev->data_len, EVLOG_FORM_FULL };
		return check_forms(log, h, ev, forms, 3, true);
	}
	}
	return 0;
}

/* ---- framing ---- */

static int new_event(struct evlog *log, size_t offset, struct evlog_event **ret)
{
	struct evlog_event *ev;

	if (log->n_events >= EVLOG_MAX_EVENTS)
		return kq_err(-E2BIG, "more than %u events", EVLOG_MAX_EVENTS);
	if (log->n_events == log->cap_events) {
		size_t cap = log->cap_events ? log->cap_events * 2 : 256;
		struct evlog_event *ne;

		if (cap > EVLOG_MAX_EVENTS)
			cap = EVLOG_MAX_EVENTS;
		ne = realloc(log->events, cap * sizeof(*ne));
		if (!ne)
			return kq_err(-ENOMEM, "out of memory");
		log->events = ne;
		log->cap_events = cap;
	}
	ev = &log->events[log->n_events];
	*ev = (struct evlog_event){ .index = log->n_events, .offset = offset };
	log->n_events++;
	*ret = ev;
	return 0;
}

/* Checks and applies what an event means for the log as a whole, then decodes and verifies it. */
static int finish_event(struct evlog *log, struct hasher *h, struct evlog_event *ev)
{
	int r;

	ev->extends = ev->type != EVLOG_EV_NO_ACTION;
	if (ev->extends) {
		if (ev->pcr >= EVLOG_NUM_PCRS)
			return kq_err(-EBADMSG, "PCR index %u out of range 0-%u", ev->pcr, EVLOG_NUM_PCRS - 1);
		for (size_t b = 0; b < log->n_banks; b++)
			if (!ev->digests[b])
				return kq_err(-EBADMSG, "no %s digest (alg 0x%04x) in an event that extends PCR %u",
					      kq_hash_name(log->bank_alg[b]) ? kq_hash_name(log->bank_alg[b]) : "",
					      log->bank_alg[b], ev->pcr);
	}

	/* PFP 10.4.5.3: PCR 0 starts at the locality the TPM was started from */
	if (ev->type == EVLOG_EV_NO_ACTION && ev->pcr == 0 && ev->data_len >= 16 &&
	    memcmp(ev->data, startup_locality_sig, 16) == 0) {
		if (ev->data_len != 17)
			return kq_err(-EBADMSG, "StartupLocality event of %zu bytes, not 17", ev->data_len);
		if (log->locality_set)
			return kq_err(-EBADMSG, "a second StartupLocality (or H-CRTM) event");
		if (log->pcr0_extended)
			return kq_err(-EBADMSG, "StartupLocality event after PCR 0 was extended");
		if (ev->data[16] > 4)
			return kq_err(-EBADMSG, "StartupLocality %u is not a TPM locality", ev->data[16]);
		log->locality = ev->data[16];
		log->locality_set = true;
	}
	/* TPM 2.0 Part 1, 34.3: an H-CRTM sequence resets PCR 0 to 00..04 before its extend */
	if (ev->type == EVLOG_EV_EFI_HCRTM_EVENT && ev->pcr == 0) {
		if (log->pcr0_extended)
			return kq_err(-EBADMSG, "H-CRTM event after PCR 0 was extended");
		if (log->locality_set && log->locality != 4)
			return kq_err(-EBADMSG, "H-CRTM event but StartupLocality %u", log->locality);
		log->locality = 4;
		log->locality_set = true;
	}
	if (ev->extends && ev->pcr == 0)
		log->pcr0_extended = true;

	r = evlog_decode_event(&log->arena, ev);
	if (r < 0)
		return kq_err(r, "out of memory");
	r = verify_event(log, h, ev);
	if (r < 0)
		return r;
	if (ev->verify == EVLOG_VERIFY_MISMATCH)
		log->n_mismatched++;
	return 0;
}

/* A TCG_PCR_EVENT (SHA-1 format): PCRIndex, EventType, SHA-1 digest, EventSize, Event. */
static int read_pcr_event(struct kq_cur *c, uint32_t *pcr, uint32_t *type, const uint8_t **digest,
			  const uint8_t **data, uint32_t *size)
{
	int r;

	if ((r = kq_cur_u32le(c, pcr)) < 0 || (r = kq_cur_u32le(c, type)) < 0 ||
	    (r = kq_cur_bytes(c, 20, digest)) < 0 || (r = kq_cur_u32le(c, size)) < 0)
		return r;
	if (*size > EVLOG_MAX_EVENT_DATA)
		return kq_err(-EBADMSG, "event data of %u bytes exceeds the limit of %u", *size,
			      EVLOG_MAX_EVENT_DATA);
	return kq_cur_bytes(c, *size, data);
}

/* The TCG_EfiSpecIDEvent (PFP 10.2.1.1) of a crypto-agile log: fills the bank table. */
static int parse_spec_id(struct evlog *log, struct evlog_event *ev)
{
	struct kq_cur c = kq_cur_init(ev->data, ev->data_len);
	struct evlog_spec_id *s = &ev->dec.spec_id;
	uint32_t n;
	uint8_t vendor_len;

	(void)kq_cur_skip(&c, 16); /* the signature, already matched */
	if (kq_cur_u32le(&c, &s->platform_class) < 0 || kq_cur_u8(&c, &s->version_minor) < 0 ||
	    kq_cur_u8(&c, &s->version_major) < 0 || kq_cur_u8(&c, &s->errata) < 0 ||
	    kq_cur_u8(&c, &s->uintn_size) < 0 || kq_cur_u32le(&c, &n) < 0)
		return kq_err(-EBADMSG, "Spec ID event truncated");
	if (n == 0 || n > EVLOG_MAX_BANKS)
		return kq_err(-EBADMSG, "Spec ID event lists %u algorithms (1-%u allowed)", n, EVLOG_MAX_BANKS);
	for (uint32_t i = 0; i < n; i++) {
		uint16_t alg, size;
		size_t known;

		if (kq_cur_u16le(&c, &alg) < 0 || kq_cur_u16le(&c, &size) < 0)
			return kq_err(-EBADMSG, "Spec ID event truncated in its algorithm table");
		if (evlog_bank_index(log, alg) >= 0)
			return kq_err(-EBADMSG, "Spec ID event lists algorithm 0x%04x twice", alg);
		if (size == 0 || size > KQ_MAX_DIGEST)
			return kq_err(-EBADMSG, "Spec ID event gives algorithm 0x%04x a digest size of %u",
				      alg, size);
		known = kq_hash_size(alg);
		if (known && known != size)
			return kq_err(-EBADMSG, "Spec ID event gives %s a digest size of %u, not %zu",
				      kq_hash_name(alg), size, known);
		log->bank_alg[log->n_banks] = alg;
		log->bank_size[log->n_banks] = size;
		log->bank_hashable[log->n_banks] = known != 0;
		log->n_banks++;
	}
	if (kq_cur_u8(&c, &vendor_len) < 0 || kq_cur_bytes(&c, vendor_len, &s->vendor_info) < 0)
		return kq_err(-EBADMSG, "Spec ID event truncated in its vendor info");
	s->vendor_info_len = vendor_len;
	if (kq_cur_left(&c))
		return kq_err(-EBADMSG, "%zu bytes follow the Spec ID event's vendor info", kq_cur_left(&c));
	ev->dec.kind = EVLOG_KIND_SPEC_ID;
	return 0;
}

/* A TCG_PCR_EVENT2: PCRIndex, EventType, TPML_DIGEST_VALUES, EventSize, Event. */
static int parse_event2(struct evlog *log, struct hasher *h, struct kq_cur *c)
{
	struct evlog_event *ev;
	uint32_t count, size;
	int r;

	r = new_event(log, c->off, &ev);
	if (r < 0)
		return r;
	if ((r = kq_cur_u32le(c, &ev->pcr)) < 0 || (r = kq_cur_u32le(c, &ev->type)) < 0 ||
	    (r = kq_cur_u32le(c, &count)) < 0)
		return r;
	if (count > log->n_banks)
		return kq_err(-EBADMSG, "%u digests, but the Spec ID event declares %zu bank%s", count,
			      log->n_banks, log->n_banks == 1 ? "" : "s");
	for (uint32_t i = 0; i < count; i++) {
		uint16_t alg;
		int b;

		if ((r = kq_cur_u16le(c, &alg)) < 0)
			return r;
		b = evlog_bank_index(log, alg);
		if (b < 0)
			return kq_err(-EBADMSG, "digest algorithm 0x%04x is not in the Spec ID event", alg);
		if (ev->digests[b])
			return kq_err(-EBADMSG, "two digests for algorithm 0x%04x", alg);
		if ((r = kq_cur_bytes(c, log->bank_size[b], &ev->digests[b])) < 0)
			return r;
	}
	if ((r = kq_cur_u32le(c, &size)) < 0)
		return r;
	if (size > EVLOG_MAX_EVENT_DATA)
		return kq_err(-EBADMSG, "event data of %u bytes exceeds the limit of %u", size,
			      EVLOG_MAX_EVENT_DATA);
	if ((r = kq_cur_bytes(c, size, &ev->data)) < 0)
		return r;
	ev->data_len = size;
	return finish_event(log, h, ev);
}

static int parse_sha1_event(struct evlog *log, struct hasher *h, struct kq_cur *c)
{
	struct evlog_event *ev;
	uint32_t size;
	int r;

	r = new_event(log, c->off, &ev);
	if (r < 0)
		return r;
	r = read_pcr_event(c, &ev->pcr, &ev->type, &ev->digests[0], &ev->data, &size);
	if (r < 0)
		return r;
	ev->data_len = size;
	return finish_event(log, h, ev);
}

static int parse_all(struct evlog *log, struct hasher *h)
{
	struct kq_cur c = kq_cur_init(log->buf, log->len);
	const uint8_t *digest, *data;
	uint32_t pcr, type, size;
	int r;

	/* the first event is always a TCG_PCR_EVENT; it says which format follows */
	r = read_pcr_event(&c, &pcr, &type, &digest, &data, &size);
	if (r < 0)
		return kq_err_ctx(r, "event 0 at offset 0: ");
	if (type == EVLOG_EV_NO_ACTION && size >= 16 && memcmp(data, spec_id_sig, 16) == 0) {
		static const uint8_t zero[20];
		struct evlog_event *ev;

		log->format = EVLOG_FORMAT_CRYPTO_AGILE;
		if (pcr != 0 || memcmp(digest, zero, 20) != 0)
			return kq_err(-EBADMSG, "event 0 at offset 0: Spec ID event with PCR %u or a non-zero digest",
				      pcr);
		r = new_event(log, 0, &ev);
		if (r < 0)
			return r;
		ev->type = type;
		ev->data = data;
		ev->data_len = size;
		r = parse_spec_id(log, ev);
		if (r < 0)
			return kq_err_ctx(r, "event 0 at offset 0: ");
		while (kq_cur_left(&c) > 0) {
			size_t off = c.off, idx = log->n_events;

			r = parse_event2(log, h, &c);
			if (r < 0)
				return kq_err_ctx(r, "event %zu at offset %zu: ", idx, off);
		}
		return 0;
	}

	log->format = EVLOG_FORMAT_SHA1;
	log->n_banks = 1;
	log->bank_alg[0] = KQ_ALG_SHA1;
	log->bank_size[0] = 20;
	log->bank_hashable[0] = true;
	c.off = 0;
	while (kq_cur_left(&c) > 0) {
		size_t off = c.off, idx = log->n_events;

		r = parse_sha1_event(log, h, &c);
		if (r < 0)
			return kq_err_ctx(r, "event %zu at offset %zu: ", idx, off);
	}
	return 0;
}

int evlog_parse(const void *buf, size_t len, struct evlog **ret)
{
	_cleanup_(evlog_freep) struct evlog *log = NULL;
	_cleanup_(hasher_done) struct hasher h = { 0 };
	int r;

	if (len > EVLOG_MAX_LOG_SIZE)
		return kq_err(-EFBIG, "event log of %zu bytes exceeds the limit of %u", len, EVLOG_MAX_LOG_SIZE);
	if (len == 0)
		return kq_err(-EBADMSG, "empty event log");
	log = calloc(1, sizeof(*log));
	if (!log)
		return kq_err(-ENOMEM, "out of memory");
	log->buf = malloc(len);
	if (!log->buf)
		return kq_err(-ENOMEM, "out of memory");
	memcpy(log->buf, buf, len);
	log->len = len;
	r = parse_all(log, &h);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(log);
	return 0;
}

/* ---- replay ---- */

int evlog_replay(const struct evlog *log, struct evlog_replay *ret)
{
	_cleanup_(hasher_done) struct hasher h = { 0 };
	struct evlog_replay r = { 0 };
	size_t map[EVLOG_MAX_BANKS];

	for (size_t b = 0; b < log->n_banks; b++) {
		struct evlog_pcr_bank *rb;

		map[b] = SIZE_MAX;
		if (!log->bank_hashable[b])
			continue;
		rb = &r.banks[r.n_banks];
		rb->alg = log->bank_alg[b];
		rb->digest_size = log->bank_size[b];
		if (log->locality_set) {
			rb->pcrs[0][rb->digest_size - 1] = log->locality;
			rb->touched |= 1u;
		}
		map[b] = r.n_banks++;
	}
	for (size_t i = 0; i < log->n_events; i++) {
		const struct evlog_event *ev = &log->events[i];

		if (!ev->extends)
			continue;
		for (size_t b = 0; b < log->n_banks; b++) {
			struct evlog_pcr_bank *rb;
			int k;

			if (map[b] == SIZE_MAX)
				continue;
			rb = &r.banks[map[b]];
			/* extend: PCR = H(PCR || digest) */
			k = bank_hash(&h, b, rb->alg, rb->pcrs[ev->pcr], rb->digest_size, ev->digests[b],
				      rb->digest_size, rb->pcrs[ev->pcr]);
			if (k < 0)
				return k;
			rb->touched |= 1u << ev->pcr;
		}
	}
	*ret = r;
	return 0;
}

const struct evlog_pcr_bank *evlog_replay_bank(const struct evlog_replay *r, uint16_t alg)
{
	for (size_t b = 0; b < r->n_banks; b++)
		if (r->banks[b].alg == alg)
			return &r->banks[b];
	return NULL;
}
