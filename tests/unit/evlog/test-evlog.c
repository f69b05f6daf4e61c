/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/evlog: golden tests over the real logs in $KQ_TESTDATA/eventlog (and the
 * logs inside the quote evidence), plus hand-built hostile logs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto/crypto.h"
#include "evlog/evlog.h"
#include "testlib.h"
#include "util/util.h"

/* ---- helpers ---- */

static void json_object_putp(struct json_object **p)
{
	json_object_put(*p);
}

static struct evlog *load_log(const char *rel)
{
	_cleanup_free_ uint8_t *buf = NULL;
	struct evlog *log = NULL;
	size_t len;
	int r;

	buf = testdata_load(rel, &len);
	r = evlog_parse(buf, len, &log);
	if (r < 0)
		fail_msg("%s: %s", rel, kq_errmsg());
	return log;
}

static void hex_of(const uint8_t *p, size_t n, char *out)
{
	kq_hex_encode(p, n, out);
}

/* Compares a replayed bank with a {"0": "hex", ...} object: same PCR set, same values. */
static void check_bank(const char *what, const struct evlog_pcr_bank *bank, struct json_object *pcrs,
		       uint32_t only_mask)
{
	uint32_t listed = 0;
	char hex[2 * KQ_MAX_DIGEST + 1];

	json_object_object_foreach(pcrs, key, val) {
		uint64_t p;

		assert_int_equal(kq_parse_uint(key, EVLOG_NUM_PCRS - 1, &p), 0);
		if (!(only_mask & (1u << p)))
			continue;
		listed |= 1u << p;
		if (!(bank->touched & (1u << p)))
			fail_msg("%s: PCR %llu listed but not touched by the log", what, (unsigned long long)p);
		hex_of(bank->pcrs[p], bank->digest_size, hex);
		if (strcmp(hex, json_object_get_string(val)) != 0)
			fail_msg("%s PCR %llu: replay %s, expected %s", what, (unsigned long long)p, hex,
				 json_object_get_string(val));
	}
	if ((bank->touched & only_mask) != listed)
		fail_msg("%s: replay touches PCRs 0x%x, the expected file lists 0x%x", what,
			 bank->touched & only_mask, listed);
}

/* Growable byte buffer for building logs. */
struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void put(struct buf *b, const void *d, size_t n)
{
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap - b->len < n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		assert_non_null(b->p);
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void put_u8(struct buf *b, uint8_t v) { put(b, &v, 1); }
static void put_u16(struct buf *b, uint16_t v) { uint8_t x[2] = { (uint8_t)v, (uint8_t)(v >> 8) }; put(b, x, 2); }
static void put_u32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	put(b, x, 4);
}
static void put_u64(struct buf *b, uint64_t v) { put_u32(b, (uint32_t)v); put_u32(b, (uint32_t)(v >> 32)); }

/* A crypto-agile header (the TCG_PCR_EVENT holding "Spec ID Event03"). */
static void put_specid_n(struct buf *b, uint32_t n_declared, const uint16_t *algs, const uint16_t *sizes, size_t n)
{
	static const uint8_t zero[20];
	struct buf d = { 0 };

	put(&d, "Spec ID Event03", 16);
	put_u32(&d, 0);      /* platform class */
	put_u8(&d, 0);       /* minor */
	put_u8(&d, 2);       /* major */
	put_u8(&d, 0);       /* errata */
	put_u8(&d, 2);       /* uintn size */
	put_u32(&d, n_declared);
	for (size_t i = 0; i < n; i++) {
		put_u16(&d, algs[i]);
		put_u16(&d, sizes[i]);
	}
	put_u8(&d, 0); /* vendor info size */
	put_u32(b, 0);
	put_u32(b, EVLOG_EV_NO_ACTION);
	put(b, zero, 20);
	put_u32(b, (uint32_t)d.len);
	put(b, d.p, d.len);
	free(d.p);
}

static void put_specid(struct buf *b, const uint16_t *algs, const uint16_t *sizes, size_t n)
{
	put_specid_n(b, (uint32_t)n, algs, sizes, n);
}

/* A TCG_PCR_EVENT2 whose digests are the hashes of data (zeros for algs kumquat lacks). */
static void put_event2(struct buf *b, uint32_t pcr, uint32_t type, const uint16_t *algs, const uint16_t *sizes,
		       size_t n, const void *data, size_t len)
{
	put_u32(b, pcr);
	put_u32(b, type);
	put_u32(b, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		uint8_t md[KQ_MAX_DIGEST] = { 0 };

		if (kq_hash_size(algs[i]))
			assert_int_equal(kq_hash(algs[i], data, len, md), 0);
		put_u16(b, algs[i]);
		put(b, md, sizes[i]);
	}
	put_u32(b, (uint32_t)len);
	put(b, data, len);
}

static const uint16_t alg256[] = { KQ_ALG_SHA256 };
static const uint16_t size256[] = { 32 };

/* Parses b and expects failure with code and a message containing needle. */
static void expect_fail(const struct buf *b, int code, const char *needle)
{
	struct evlog *log = NULL;
	int r = evlog_parse(b->p, b->len, &log);

	if (r != code)
		fail_msg("expected %d, got %d (%s)", code, r, kq_errmsg());
	assert_null(log);
	if (needle && !strstr(kq_errmsg(), needle))
		fail_msg("message '%s' lacks '%s'", kq_errmsg(), needle);
}

static struct evlog *expect_ok(const struct buf *b)
{
	struct evlog *log = NULL;

	if (evlog_parse(b->p, b->len, &log) < 0)
		fail_msg("parse failed: %s", kq_errmsg());
	return log;
}

/* ---- golden ---- */

static void test_golden_replay(void **state)
{
	_cleanup_(json_object_putp) struct json_object *exp = testdata_json("eventlog/expected-pcrs.json");
	unsigned n = 0;

	json_object_object_foreach(exp, file, banks) {
		_cleanup_free_ char *rel = NULL;
		_cleanup_(evlog_freep) struct evlog *log = NULL;
		struct evlog_replay rp;
		size_t n_banks = 0;

		assert_true(asprintf(&rel, "eventlog/%s", file) > 0);
		log = load_log(rel);
		assert_int_equal(evlog_replay(log, &rp), 0);
		json_object_object_foreach(banks, bank, pcrs) {
			const struct evlog_pcr_bank *rb = evlog_replay_bank(&rp, kq_hash_from_name(bank));
			char what[160];

			snprintf(what, sizeof(what), "%s %s", file, bank);
			if (!rb)
				fail_msg("%s: bank missing from the replay", what);
			check_bank(what, rb, pcrs, 0xffffffu);
			n_banks++;
		}
		/* and no bank beyond those listed */
		assert_int_equal(rp.n_banks, n_banks);
		n++;
	}
	assert_int_equal(n, 9);
}

static void test_mismatches(void **state)
{
	static const char *const clean[] = {
		"arch-workstation-zero-len-var.bin", "gce-rhel8-secureboot.bin", "gce-ubuntu2404-sevsnp.bin",
		"hirs-pc-client.bin", "hpe-perf-uefi.bin", "intel-bootguard.bin",
		"keylime-fedora41-startuplocality.bin", "keylime-secureboot.bin",
	};
	_cleanup_(evlog_freep) struct evlog *gdc = load_log("eventlog/gdc-baremetal-host.bin");
	const struct evlog_event *ev;
	size_t found = 0;

	/* gdc: exactly one event, the S-CRTM version string, does not hash to its digest */
	assert_int_equal(evlog_n_mismatched(gdc), 1);
	for (size_t i = 0; i < evlog_n_events(gdc); i++) {
		ev = evlog_event(gdc, i);
		if (ev->verify != EVLOG_VERIFY_MISMATCH)
			continue;
		found++;
		assert_int_equal(ev->index, 3);
		assert_int_equal(ev->pcr, 0);
		assert_int_equal(ev->type, EVLOG_EV_S_CRTM_VERSION);
		assert_int_equal(ev->mismatch_banks, 1u << evlog_bank_index(gdc, KQ_ALG_SHA256));
		assert_int_equal(ev->dec.kind, EVLOG_KIND_STRING);
		assert_string_equal(ev->dec.string, "2.3.5");
	}
	assert_int_equal(found, 1);

	for (size_t i = 0; i < ARRAY_SIZE(clean); i++) {
		_cleanup_free_ char *rel = NULL;
		_cleanup_(evlog_freep) struct evlog *log = NULL;

		assert_true(asprintf(&rel, "eventlog/%s", clean[i]) > 0);
		log = load_log(rel);
		if (evlog_n_mismatched(log) != 0)
			fail_msg("%s: %zu mismatched events", clean[i], evlog_n_mismatched(log));
	}
}

/* Every event type the module treats as checkable is in fact checked in the real logs. */
static void test_verified_coverage(void **state)
{
	static const char *const files[] = {
		"arch-workstation-zero-len-var.bin", "gce-rhel8-secureboot.bin", "gce-ubuntu2404-sevsnp.bin",
		"gdc-baremetal-host.bin", "hirs-pc-client.bin", "hpe-perf-uefi.bin", "intel-bootguard.bin",
		"keylime-fedora41-startuplocality.bin", "keylime-secureboot.bin",
	};
	size_t forms[EVLOG_FORM_IPL_STRING + 1] = { 0 }, unverified_checkable = 0;

	for (size_t f = 0; f < ARRAY_SIZE(files); f++) {
		_cleanup_free_ char *rel = NULL;
		_cleanup_(evlog_freep) struct evlog *log = NULL;

		assert_true(asprintf(&rel, "eventlog/%s", files[f]) > 0);
		log = load_log(rel);
		for (size_t i = 0; i < evlog_n_events(log); i++) {
			const struct evlog_event *ev = evlog_event(log, i);

			if (ev->verify == EVLOG_VERIFY_OK) {
				forms[ev->form]++;
				/* measured is a span of the event data */
				assert_true(ev->measured >= ev->data);
				assert_true(ev->measured + ev->measured_len <= ev->data + ev->data_len);
			}
			switch (ev->type) {
			case EVLOG_EV_SEPARATOR:
			case EVLOG_EV_EFI_ACTION:
			case EVLOG_EV_EFI_VARIABLE_DRIVER_CONFIG:
			case EVLOG_EV_EFI_VARIABLE_BOOT:
			case EVLOG_EV_EFI_VARIABLE_AUTHORITY:
			case EVLOG_EV_EFI_GPT_EVENT:
			case EVLOG_EV_S_CRTM_VERSION:
				if (ev->verify != EVLOG_VERIFY_OK)
					unverified_checkable++;
				break;
			case EVLOG_EV_EFI_BOOT_SERVICES_APPLICATION:
			case EVLOG_EV_EFI_PLATFORM_FIRMWARE_BLOB:
			case EVLOG_EV_NO_ACTION:
				assert_int_equal(ev->verify, EVLOG_VERIFY_NA);
				break;
			}
		}
	}
	assert_int_equal(unverified_checkable, 1); /* gdc's S-CRTM version */
	/* both forms of boot variable measurement are in the test logs */
	assert_true(forms[EVLOG_FORM_FULL] > 100);
	assert_true(forms[EVLOG_FORM_VAR_DATA] >= 66);
	assert_true(forms[EVLOG_FORM_IPL_STRING] > 400);
}

static void test_hpe_quote(void **state)
{
	_cleanup_(json_object_putp) struct json_object *q = testdata_json("quote/hpe-real-quote-with-logs.json");
	_cleanup_(evlog_freep) struct evlog *log = load_log("eventlog/hpe-perf-uefi.bin");
	struct json_object *exp, *o, *match;
	struct evlog_replay rp;
	uint32_t mask = 0;

	assert_true(json_object_object_get_ex(q, "expected", &exp));
	assert_int_equal(evlog_replay(log, &rp), 0);
	assert_true(json_object_object_get_ex(exp, "uefi_log_events", &o));
	assert_int_equal(evlog_n_events(log), json_object_get_int(o));
	assert_true(json_object_object_get_ex(exp, "uefi_replay_sha256", &o));
	check_bank("hpe sha256", evlog_replay_bank(&rp, KQ_ALG_SHA256), o, 0xffffffu);
	assert_true(json_object_object_get_ex(exp, "uefi_replay_sha384", &o));
	check_bank("hpe sha384", evlog_replay_bank(&rp, KQ_ALG_SHA384), o, 0xffffffu);

	/* and against the PCR values of the real quote, for the PCRs the log covers */
	assert_true(json_object_object_get_ex(exp, "uefi_replay_matches_quote_pcrs", &match));
	for (size_t i = 0; i < json_object_array_length(match); i++)
		mask |= 1u << json_object_get_int(json_object_array_get_idx(match, i));
	assert_int_equal(mask, evlog_replay_bank(&rp, KQ_ALG_SHA256)->touched);
	assert_true(json_object_object_get_ex(exp, "pcrs_sha256", &o));
	check_bank("hpe quote", evlog_replay_bank(&rp, KQ_ALG_SHA256), o, mask);
}

static uint8_t *b64_decode(const char *s, size_t *ret_len)
{
	size_t n = strlen(s), pad = 0;
	uint8_t *out = malloc(n / 4 * 3 + 3);
	int r;

	assert_non_null(out);
	assert_int_equal(n % 4, 0);
	r = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
	assert_true(r >= 0);
	while (n > 0 && s[n - 1] == '=') {
		pad++;
		n--;
	}
	*ret_len = (size_t)r - pad;
	return out;
}

/* The GCE COS 85 attestation: its event log replays to the PCRs of its three quotes. */
static void test_gce_cos85_quotes(void **state)
{
	_cleanup_(json_object_putp) struct json_object *a = testdata_json("quote/gce-cos85-vtpm-attestation.json");
	_cleanup_(evlog_freep) struct evlog *log = NULL;
	_cleanup_free_ uint8_t *bin = NULL;
	struct json_object *o, *quotes;
	struct evlog_replay rp;
	size_t len, n_quotes;

	assert_true(json_object_object_get_ex(a, "event_log_b64", &o));
	bin = b64_decode(json_object_get_string(o), &len);
	assert_int_equal(evlog_parse(bin, len, &log), 0);
	assert_int_equal(evlog_format(log), EVLOG_FORMAT_CRYPTO_AGILE);
	assert_int_equal(evlog_n_banks(log), 3);
	assert_int_equal(evlog_replay(log, &rp), 0);
	/* shim's one-byte-too-long authority events are accepted, nothing else is off */
	assert_int_equal(evlog_n_mismatched(log), 0);
	assert_int_equal(evlog_event(log, 24)->form, EVLOG_FORM_SHIM_EXTRA_BYTE);
	assert_int_equal(evlog_event(log, 41)->form, EVLOG_FORM_SHIM_EXTRA_BYTE);
	assert_int_equal(evlog_event(log, 24)->measured_len, evlog_event(log, 24)->data_len - 1);

	assert_true(json_object_object_get_ex(a, "quotes", &quotes));
	n_quotes = json_object_array_length(quotes);
	assert_int_equal(n_quotes, 3);
	for (size_t i = 0; i < n_quotes; i++) {
		struct json_object *q = json_object_array_get_idx(quotes, i), *h, *pcrs;
		const struct evlog_pcr_bank *rb;
		char what[64];

		assert_true(json_object_object_get_ex(q, "hash", &h));
		assert_true(json_object_object_get_ex(q, "pcrs", &pcrs));
		rb = evlog_replay_bank(&rp, kq_hash_from_name(json_object_get_string(h)));
		assert_non_null(rb);
		/* PCRs 0-9 all come from the log */
		assert_int_equal(rb->touched & 0x3ff, 0x3ff);
		snprintf(what, sizeof(what), "gce cos85 %s", json_object_get_string(h));
		check_bank(what, rb, pcrs, rb->touched);
	}
}

/* ---- decoding ---- */

static const struct evlog_event *find_var(const struct evlog *log, uint32_t type, const char *name)
{
	for (size_t i = 0; i < evlog_n_events(log); i++) {
		const struct evlog_event *ev = evlog_event(log, i);

		if (ev->type == type && ev->dec.kind == EVLOG_KIND_EFI_VARIABLE &&
		    strcmp(ev->dec.var.name, name) == 0)
			return ev;
	}
	return NULL;
}

static size_t count_sigs(const struct evlog_efi_variable *v, const uint8_t type[16], size_t want_len)
{
	struct evlog_siglist_iter it;
	struct evlog_efi_signature sig;
	size_t n = 0;
	int r;

	evlog_siglist_init(&it, v->data, v->data_len);
	while ((r = evlog_siglist_next(&it, &sig)) > 0) {
		if (memcmp(sig.type, type, 16) != 0)
			continue;
		if (want_len)
			assert_int_equal(sig.data_len, want_len);
		n++;
	}
	assert_int_equal(r, 0);
	return n;
}

static void test_decode_secureboot(void **state)
{
	_cleanup_(evlog_freep) struct evlog *log = load_log("eventlog/keylime-secureboot.bin");
	static const char *const keys[] = { "PK", "KEK", "db", "dbx" };
	const struct evlog_event *ev;
	bool app_with_file = false, boot_option = false;

	assert_int_equal(evlog_n_events(log), 99);
	ev = find_var(log, EVLOG_EV_EFI_VARIABLE_DRIVER_CONFIG, "SecureBoot");
	assert_non_null(ev);
	assert_int_equal(ev->pcr, 7);
	assert_int_equal(ev->verify, EVLOG_VERIFY_OK);
	assert_int_equal(ev->form, EVLOG_FORM_FULL);
	assert_memory_equal(ev->dec.var.guid, EVLOG_GUID_EFI_GLOBAL_VARIABLE, 16);
	assert_int_equal(ev->dec.var.data_len, 1);
	assert_int_equal(ev->dec.var.data[0], 1);

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		ev = find_var(log, EVLOG_EV_EFI_VARIABLE_DRIVER_CONFIG, keys[i]);
		if (!ev)
			fail_msg("%s missing", keys[i]);
		assert_int_equal(ev->verify, EVLOG_VERIFY_OK);
		assert_true(ev->dec.var.data_len > 0);
	}
	ev = find_var(log, EVLOG_EV_EFI_VARIABLE_DRIVER_CONFIG, "db");
	assert_memory_equal(ev->dec.var.guid, EVLOG_GUID_IMAGE_SECURITY_DATABASE, 16);
	assert_true(count_sigs(&ev->dec.var, EVLOG_GUID_CERT_X509, 0) >= 2);
	ev = find_var(log, EVLOG_EV_EFI_VARIABLE_DRIVER_CONFIG, "dbx");
	assert_true(count_sigs(&ev->dec.var, EVLOG_GUID_CERT_SHA256, 32) > 100);
	/* the authority event names the db certificate that verified shim */
	ev = find_var(log, EVLOG_EV_EFI_VARIABLE_AUTHORITY, "db");
	assert_non_null(ev);
	assert_int_equal(ev->verify, EVLOG_VERIFY_OK);

	for (size_t i = 0; i < evlog_n_events(log); i++) {
		ev = evlog_event(log, i);
		if (ev->type == EVLOG_EV_EFI_BOOT_SERVICES_APPLICATION && ev->dec.kind == EVLOG_KIND_IMAGE_LOAD &&
		    ev->dec.image.file_path) {
			assert_non_null(ev->dec.image.device_path_text);
			assert_non_null(strstr(ev->dec.image.device_path_text, ev->dec.image.file_path));
			if (strcmp(ev->dec.image.file_path, "\\EFI\\redhat\\shimx64.efi") == 0) {
				assert_string_equal(ev->dec.image.device_path_text,
						    "PciRoot(0x0)/Pci(0x2,0x3)/Pci(0x0,0x0)/HD(1,GPT,a88ed452-9a52-45c4-91ce-"
						    "3da7707caaab,0x800,0x12c000)/\\EFI\\redhat\\shimx64.efi");
				app_with_file = true;
			}
		}
		if (ev->dec.kind == EVLOG_KIND_EFI_VARIABLE && strcmp(ev->dec.var.name, "Boot0001") == 0) {
			assert_true(ev->dec.var.has_load_option);
			assert_string_equal(ev->dec.var.load_option.description, "Red Hat Enterprise Linux");
			assert_string_equal(ev->dec.var.load_option.file_path, "\\EFI\\redhat\\shimx64.efi");
			/* data-only measurement: the name is not covered by the digest */
			assert_int_equal(ev->form, EVLOG_FORM_VAR_DATA);
			assert_ptr_equal(ev->measured, ev->dec.var.data);
			boot_option = true;
		}
	}
	assert_true(app_with_file);
	assert_true(boot_option);
}

static void test_decode_misc(void **state)
{
	_cleanup_(evlog_freep) struct evlog *arch = load_log("eventlog/arch-workstation-zero-len-var.bin");
	_cleanup_(evlog_freep) struct evlog *fed = load_log("eventlog/keylime-fedora41-startuplocality.bin");
	_cleanup_(evlog_freep) struct evlog *gdc = load_log("eventlog/gdc-baremetal-host.bin");
	const struct evlog_event *ev;
	bool cmdline = false, separator = false;

	/* arch: SecureBoot with zero-length data, verified; boot variables hashed whole */
	ev = find_var(arch, EVLOG_EV_EFI_VARIABLE_DRIVER_CONFIG, "SecureBoot");
	assert_non_null(ev);
	assert_int_equal(ev->dec.var.data_len, 0);
	assert_int_equal(ev->verify, EVLOG_VERIFY_OK);
	ev = find_var(arch, EVLOG_EV_EFI_VARIABLE_BOOT, "BootOrder");
	assert_non_null(ev);
	assert_int_equal(ev->form, EVLOG_FORM_FULL);
	/* systemd-boot's UTF-16 command line: decoded, not checkable */
	ev = evlog_event(arch, 24);
	assert_int_equal(ev->type, EVLOG_EV_IPL);
	assert_int_equal(ev->dec.kind, EVLOG_KIND_STRING);
	assert_int_equal(ev->verify, EVLOG_VERIFY_NA);
	assert_true(strncmp(ev->dec.string, "initrd=\\intel-ucode.img", 23) == 0);

	/* fedora: StartupLocality 3, GRUB's kernel command line verified on its text */
	assert_int_equal(evlog_startup_locality(fed), 3);
	assert_int_equal(evlog_event(fed, 1)->dec.kind, EVLOG_KIND_STARTUP_LOCALITY);
	assert_int_equal(evlog_event(fed, 1)->dec.startup_locality, 3);
	assert_int_equal(evlog_event(fed, 0)->dec.kind, EVLOG_KIND_SPEC_ID);
	for (size_t i = 0; i < evlog_n_events(fed); i++) {
		ev = evlog_event(fed, i);
		if (ev->type == EVLOG_EV_IPL && ev->dec.kind == EVLOG_KIND_STRING &&
		    strncmp(ev->dec.string, "kernel_cmdline: ", 16) == 0) {
			assert_int_equal(ev->verify, EVLOG_VERIFY_OK);
			assert_int_equal(ev->form, EVLOG_FORM_IPL_STRING);
			assert_int_equal(ev->measured_len, strlen(ev->dec.string) - 16);
			assert_memory_equal(ev->measured, ev->dec.string + 16, ev->measured_len);
			cmdline = true;
		}
		if (ev->type == EVLOG_EV_SEPARATOR) {
			assert_int_equal(ev->dec.kind, EVLOG_KIND_SEPARATOR);
			assert_int_equal(ev->dec.separator, 0);
			separator = true;
		}
	}
	assert_true(cmdline && separator);

	/* gdc: an S-CRTM contents *string* (not a blob), firmware blobs, a GPT */
	ev = evlog_event(gdc, 2);
	assert_int_equal(ev->type, EVLOG_EV_S_CRTM_CONTENTS);
	assert_int_equal(ev->dec.kind, EVLOG_KIND_STRING);
	assert_string_equal(ev->dec.string, "Boot Guard Measured S-CRTM");
	ev = evlog_event(gdc, 4);
	assert_int_equal(ev->dec.kind, EVLOG_KIND_FIRMWARE_BLOB);
	assert_int_equal(ev->dec.blob.base, 0xffdc0000);
	assert_int_equal(ev->dec.blob.length, 0x230000);
	for (size_t i = 0; i < evlog_n_events(gdc); i++) {
		ev = evlog_event(gdc, i);
		if (ev->type == EVLOG_EV_EFI_GPT_EVENT) {
			assert_int_equal(ev->dec.kind, EVLOG_KIND_GPT);
			assert_true(ev->dec.gpt.n_partitions > 0);
			assert_int_equal(ev->verify, EVLOG_VERIFY_OK);
		}
	}
}

/* The SHA-1 log format, built from the SHA-1 bank of crypto-agile logs. */
static void sha1_format_case(const char *file)
{
	_cleanup_(json_object_putp) struct json_object *exp = testdata_json("eventlog/expected-pcrs.json");
	_cleanup_(evlog_freep) struct evlog *src = NULL, *log = NULL;
	_cleanup_free_ char *rel = NULL;
	struct json_object *banks, *sha1;
	struct evlog_replay rp;
	struct buf b = { 0 };

	assert_true(asprintf(&rel, "eventlog/%s", file) > 0);
	src = load_log(rel);
	for (size_t i = 1; i < evlog_n_events(src); i++) {
		const struct evlog_event *ev = evlog_event(src, i);
		const uint8_t *d = evlog_event_digest(src, ev, KQ_ALG_SHA1);
		static const uint8_t zero[20];

		put_u32(&b, ev->pcr);
		put_u32(&b, ev->type);
		put(&b, d ? d : zero, 20);
		put_u32(&b, (uint32_t)ev->data_len);
		put(&b, ev->data, ev->data_len);
	}
	log = expect_ok(&b);
	assert_int_equal(evlog_format(log), EVLOG_FORMAT_SHA1);
	assert_int_equal(evlog_n_banks(log), 1);
	assert_int_equal(evlog_bank_alg(log, 0), KQ_ALG_SHA1);
	assert_int_equal(evlog_n_events(log), evlog_n_events(src) - 1);
	assert_int_equal(evlog_n_mismatched(log), 0);
	assert_int_equal(evlog_replay(log, &rp), 0);
	assert_true(json_object_object_get_ex(exp, file, &banks));
	assert_true(json_object_object_get_ex(banks, "sha1", &sha1));
	check_bank(file, evlog_replay_bank(&rp, KQ_ALG_SHA1), sha1, 0xffffffu);
	free(b.p);
}

static void test_sha1_format(void **state)
{
	sha1_format_case("gce-rhel8-secureboot.bin");
	sha1_format_case("keylime-fedora41-startuplocality.bin"); /* with StartupLocality */
	sha1_format_case("arch-workstation-zero-len-var.bin");
}

/* ---- hostile input ---- */

static void test_truncations(void **state)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len, ok = 0;

	buf = testdata_load("eventlog/hirs-pc-client.bin", &len);
	for (size_t n = 0; n < len; n++) {
		struct evlog *log = NULL;
		int r = evlog_parse(buf, n, &log);

		if (r == 0) {
			ok++; /* cut exactly at an event boundary */
			evlog_free(log);
			continue;
		}
		assert_int_equal(r, -EBADMSG);
		assert_null(log);
		assert_true(strlen(kq_errmsg()) > 0);
	}
	assert_int_equal(ok, 55); /* after each of the 55 events but the last */
}

static void test_bad_digests(void **state)
{
	static const uint8_t sep[4];
	struct buf b = { 0 };

	/* a digest count of 0xffffffff */
	put_specid(&b, alg256, size256, 1);
	put_u32(&b, 0);
	put_u32(&b, EVLOG_EV_SEPARATOR);
	put_u32(&b, 0xffffffffu);
	put(&b, sep, sizeof(sep));
	expect_fail(&b, -EBADMSG, "4294967295 digests");
	assert_non_null(strstr(kq_errmsg(), "event 1 at offset"));

	/* an algorithm that is not in the Spec ID table */
	b.len = 0;
	put_specid(&b, alg256, size256, 1);
	put_u32(&b, 0);
	put_u32(&b, EVLOG_EV_SEPARATOR);
	put_u32(&b, 1);
	put_u16(&b, KQ_ALG_SHA384);
	expect_fail(&b, -EBADMSG, "0x000c is not in the Spec ID event");

	/* the same algorithm twice */
	{
		static const uint16_t algs[] = { KQ_ALG_SHA1, KQ_ALG_SHA256 }, sizes[] = { 20, 32 };
		static const uint16_t twice[] = { KQ_ALG_SHA256, KQ_ALG_SHA256 };

		b.len = 0;
		put_specid(&b, algs, sizes, 2);
		put_u32(&b, 0);
		put_u32(&b, EVLOG_EV_SEPARATOR);
		put_u32(&b, 2);
		for (int i = 0; i < 2; i++) {
			uint8_t md[32] = { 0 };

			put_u16(&b, twice[i]);
			put(&b, md, 32);
		}
		put_u32(&b, 4);
		put(&b, sep, 4);
		expect_fail(&b, -EBADMSG, "two digests");

		/* an extending event that lacks a bank */
		b.len = 0;
		put_specid(&b, algs, sizes, 2);
		put_event2(&b, 0, EVLOG_EV_SEPARATOR, alg256, size256, 1, sep, 4);
		expect_fail(&b, -EBADMSG, "no sha1 digest");

		/* ...which an EV_NO_ACTION event may */
		b.len = 0;
		put_specid(&b, algs, sizes, 2);
		put_event2(&b, 0, EVLOG_EV_NO_ACTION, alg256, size256, 1, "hello", 5);
		put_event2(&b, 0, EVLOG_EV_NO_ACTION, alg256, size256, 0, "", 0);
		{
			_cleanup_(evlog_freep) struct evlog *log = expect_ok(&b);

			assert_int_equal(evlog_n_events(log), 3);
			assert_null(evlog_event(log, 1)->digests[0]);
			assert_false(evlog_event(log, 1)->extends);
			assert_int_equal(evlog_event(log, 1)->verify, EVLOG_VERIFY_NA);
		}
	}
	free(b.p);
}

static void test_bad_sizes(void **state)
{
	static const uint8_t sep[4];
	struct buf b = { 0 };

	/* huge event data sizes */
	put_specid(&b, alg256, size256, 1);
	put_event2(&b, 0, EVLOG_EV_SEPARATOR, alg256, size256, 1, sep, 4);
	b.len -= 8;
	put_u32(&b, 0xffffffffu);
	expect_fail(&b, -EBADMSG, "exceeds the limit");
	b.len -= 4;
	put_u32(&b, EVLOG_MAX_EVENT_DATA);
	expect_fail(&b, -EBADMSG, "truncated");

	/* the same in a SHA-1 log, and in the very first event */
	b.len = 0;
	put_u32(&b, 0);
	put_u32(&b, EVLOG_EV_SEPARATOR);
	put(&b, sep, 4);
	put(&b, sep, 4);
	put(&b, sep, 4);
	put(&b, sep, 4);
	put(&b, sep, 4);
	put_u32(&b, 0x7fffffffu);
	expect_fail(&b, -EBADMSG, "event 0 at offset 0: event data of 2147483647 bytes exceeds");

	/* empty, and over the size limit */
	b.len = 0;
	expect_fail(&b, -EBADMSG, "empty");
	{
		struct evlog *log = NULL;
		uint8_t *big = calloc(1, EVLOG_MAX_LOG_SIZE + 1u);

		assert_non_null(big);
		assert_int_equal(evlog_parse(big, EVLOG_MAX_LOG_SIZE + 1u, &log), -EFBIG);
		assert_null(log);
		free(big);
	}
	free(b.p);
}

static void test_too_many_events(void **state)
{
	static const uint8_t zero[20];
	struct buf b = { 0 };

	for (uint32_t i = 0; i <= EVLOG_MAX_EVENTS; i++) {
		put_u32(&b, 0);
		put_u32(&b, EVLOG_EV_NO_ACTION);
		put(&b, zero, 20);
		put_u32(&b, 0);
	}
	expect_fail(&b, -E2BIG, "more than");
	b.len -= 32;
	{
		_cleanup_(evlog_freep) struct evlog *log = expect_ok(&b);

		assert_int_equal(evlog_n_events(log), EVLOG_MAX_EVENTS);
	}
	free(b.p);
}

static void test_bad_spec_id(void **state)
{
	static const uint16_t algs9[9] = { 4, 0xb, 0xc, 0xd, 0x12, 0x27, 0x28, 0x29, 0x2a };
	static const uint16_t sizes9[9] = { 20, 32, 48, 64, 32, 32, 48, 64, 32 };
	struct buf b = { 0 };
	uint16_t size;

	put_specid_n(&b, 0xffffffffu, alg256, size256, 1);
	expect_fail(&b, -EBADMSG, "4294967295 algorithms");
	b.len = 0;
	put_specid(&b, alg256, size256, 0);
	expect_fail(&b, -EBADMSG, "0 algorithms");
	b.len = 0;
	put_specid(&b, algs9, sizes9, 9);
	expect_fail(&b, -EBADMSG, "9 algorithms");
	b.len = 0;
	size = 31;
	put_specid(&b, alg256, &size, 1);
	expect_fail(&b, -EBADMSG, "sha256 a digest size of 31");
	b.len = 0;
	size = 65;
	put_specid(&b, &algs9[5], &size, 1);
	expect_fail(&b, -EBADMSG, "digest size of 65");
	b.len = 0;
	put_specid(&b, algs9, sizes9, 2);
	b.len -= 3; /* cut into the table */
	b.p[28] -= 3;
	expect_fail(&b, -EBADMSG, "Spec ID event truncated");
	/* a Spec ID header claiming PCR 1 */
	b.len = 0;
	put_specid(&b, alg256, size256, 1);
	b.p[0] = 1;
	expect_fail(&b, -EBADMSG, "Spec ID event with PCR 1");
	free(b.p);
}

/* A bank kumquat does not implement (sha3-256) is parsed and left out of replay and checks. */
static void test_unknown_bank(void **state)
{
	static const uint16_t algs[] = { KQ_ALG_SHA256, 0x0027 }, sizes[] = { 32, 32 };
	static const uint16_t only3[] = { 0x0027 }, size3[] = { 32 };
	static const uint8_t sep[4];
	_cleanup_(evlog_freep) struct evlog *log = NULL;
	struct evlog_replay rp;
	struct buf b = { 0 };

	put_specid(&b, algs, sizes, 2);
	put_event2(&b, 4, EVLOG_EV_SEPARATOR, algs, sizes, 2, sep, 4);
	log = expect_ok(&b);
	assert_int_equal(evlog_n_banks(log), 2);
	assert_int_equal(evlog_event(log, 1)->verify, EVLOG_VERIFY_OK);
	assert_int_equal(evlog_replay(log, &rp), 0);
	assert_int_equal(rp.n_banks, 1);
	assert_null(evlog_replay_bank(&rp, 0x0027));
	assert_int_equal(evlog_replay_bank(&rp, KQ_ALG_SHA256)->touched, 1u << 4);
	evlog_free(TAKE_PTR(log));

	/* only an unimplemented bank: nothing can be checked */
	b.len = 0;
	put_specid(&b, only3, size3, 1);
	put_event2(&b, 4, EVLOG_EV_SEPARATOR, only3, size3, 1, sep, 4);
	log = expect_ok(&b);
	assert_int_equal(evlog_event(log, 1)->verify, EVLOG_VERIFY_NA);
	assert_int_equal(evlog_replay(log, &rp), 0);
	assert_int_equal(rp.n_banks, 0);
	free(b.p);
}

static void test_pcr_and_locality(void **state)
{
	static const uint8_t sep[4];
	uint8_t loc[17] = "StartupLocality";
	struct buf b = { 0 };

	put_specid(&b, alg256, size256, 1);
	put_event2(&b, 24, EVLOG_EV_SEPARATOR, alg256, size256, 1, sep, 4);
	expect_fail(&b, -EBADMSG, "PCR index 24");
	b.len = 0;
	put_specid(&b, alg256, size256, 1);
	put_event2(&b, 0xffffffffu, EVLOG_EV_NO_ACTION, alg256, size256, 1, sep, 4);
	evlog_free(expect_ok(&b)); /* not extended: any index */

	/* StartupLocality after PCR 0 was extended, twice, or out of range */
	loc[16] = 3;
	b.len = 0;
	put_specid(&b, alg256, size256, 1);
	put_event2(&b, 0, EVLOG_EV_SEPARATOR, alg256, size256, 1, sep, 4);
	put_event2(&b, 0, EVLOG_EV_NO_ACTION, alg256, size256, 1, loc, 17);
	expect_fail(&b, -EBADMSG, "after PCR 0 was extended");
	b.len = 0;
	put_specid(&b, alg256, size256, 1);
	put_event2(&b, 0, EVLOG_EV_NO_ACTION, alg256, size256, 1, loc, 17);
	put_event2(&b, 0, EVLOG_EV_NO_ACTION, alg256, size256, 1, loc, 17);
	expect_fail(&b, -EBADMSG, "second StartupLocality");
	loc[16] = 5;
	b.len = 0;
	put_specid(&b, alg256, size256, 1);
	put_event2(&b, 0, EVLOG_EV_NO_ACTION, alg256, size256, 1, loc, 17);
	expect_fail(&b, -EBADMSG, "not a TPM locality");
	b.len = 0;
	put_specid(&b, alg256, size256, 1);
	put_event2(&b, 0, EVLOG_EV_NO_ACTION, alg256, size256, 1, loc, 16);
	expect_fail(&b, -EBADMSG, "StartupLocality event of 16 bytes");

	/* StartupLocality 3: PCR 0 = H(00..03 || digest) */
	loc[16] = 3;
	b.len = 0;
	put_specid(&b, alg256, size256, 1);
	put_event2(&b, 0, EVLOG_EV_NO_ACTION, alg256, size256, 1, loc, 17);
	put_event2(&b, 0, EVLOG_EV_SEPARATOR, alg256, size256, 1, sep, 4);
	{
		_cleanup_(evlog_freep) struct evlog *log = expect_ok(&b);
		uint8_t pcr[32] = { 0 }, d[32];
		struct evlog_replay rp;

		pcr[31] = 3;
		assert_int_equal(kq_hash(KQ_ALG_SHA256, sep, 4, d), 0);
		assert_int_equal(kq_extend(KQ_ALG_SHA256, pcr, d), 0);
		assert_int_equal(evlog_replay(log, &rp), 0);
		assert_memory_equal(rp.banks[0].pcrs[0], pcr, 32);
		assert_int_equal(evlog_startup_locality(log), 3);
	}

	/* H-CRTM: PCR 0 = H(00..04 || digest of the H-CRTM event) */
	b.len = 0;
	put_specid(&b, alg256, size256, 1);
	put_event2(&b, 0, EVLOG_EV_EFI_HCRTM_EVENT, alg256, size256, 1, "HCRTM", 5);
	{
		_cleanup_(evlog_freep) struct evlog *log = expect_ok(&b);
		uint8_t pcr[32] = { 0 }, d[32];
		struct evlog_replay rp;

		pcr[31] = 4;
		assert_int_equal(kq_hash(KQ_ALG_SHA256, "HCRTM", 5, d), 0);
		assert_int_equal(kq_extend(KQ_ALG_SHA256, pcr, d), 0);
		assert_int_equal(evlog_replay(log, &rp), 0);
		assert_memory_equal(rp.banks[0].pcrs[0], pcr, 32);
		assert_int_equal(evlog_startup_locality(log), 4);
		assert_int_equal(evlog_event(log, 1)->dec.kind, EVLOG_KIND_STRING);
	}
	b.len = 0;
	put_specid(&b, alg256, size256, 1);
	put_event2(&b, 0, EVLOG_EV_NO_ACTION, alg256, size256, 1, loc, 17);
	put_event2(&b, 0, EVLOG_EV_EFI_HCRTM_EVENT, alg256, size256, 1, "HCRTM", 5);
	expect_fail(&b, -EBADMSG, "H-CRTM event but StartupLocality 3");
	free(b.p);
}

/* UEFI_VARIABLE_DATA with the given name units and data. */
static void put_var(struct buf *d, const uint8_t guid[16], const uint16_t *name, size_t units, uint64_t claim_units,
		    const void *data, size_t len, uint64_t claim_len)
{
	put(d, guid, 16);
	put_u64(d, claim_units);
	put_u64(d, claim_len);
	for (size_t i = 0; i < units; i++)
		put_u16(d, name[i]);
	put(d, data, len);
}

static void test_hostile_data(void **state)
{
	static const uint16_t name[] = { 'd', 'b', 0xd83d, 0xde00, 0xdc00, 'x' }; /* "db😀\uFFFDx" */
	_cleanup_(evlog_freep) struct evlog *log = NULL;
	struct buf b = { 0 }, d = { 0 };
	const struct evlog_event *ev;
	struct evlog_replay rp;

	put_specid(&b, alg256, size256, 1);
	/* 1: a variable with a surrogate pair and a lone surrogate in its name */
	put_var(&d, EVLOG_GUID_IMAGE_SECURITY_DATABASE, name, 6, 6, "\x01", 1, 1);
	put_event2(&b, 7, EVLOG_EV_EFI_VARIABLE_DRIVER_CONFIG, alg256, size256, 1, d.p, d.len);
	/* 2: a variable whose name length overruns the event */
	d.len = 0;
	put_var(&d, EVLOG_GUID_EFI_GLOBAL_VARIABLE, name, 2, UINT64_MAX / 2, "", 0, 0);
	put_event2(&b, 7, EVLOG_EV_EFI_VARIABLE_DRIVER_CONFIG, alg256, size256, 1, d.p, d.len);
	/* 3: a variable whose data length overruns the event */
	d.len = 0;
	put_var(&d, EVLOG_GUID_EFI_GLOBAL_VARIABLE, name, 2, 2, "ab", 2, UINT64_MAX);
	put_event2(&b, 7, EVLOG_EV_EFI_VARIABLE_DRIVER_CONFIG, alg256, size256, 1, d.p, d.len);
	/* 4: an image load whose device path length overruns the event */
	d.len = 0;
	put_u64(&d, 0x1000);
	put_u64(&d, 0x2000);
	put_u64(&d, 0);
	put_u64(&d, 0xffffffffffffffffull);
	put_event2(&b, 4, EVLOG_EV_EFI_BOOT_SERVICES_APPLICATION, alg256, size256, 1, d.p, d.len);
	/* 5: an image load with a device path node of length 2 */
	d.len = 0;
	put_u64(&d, 0x1000);
	put_u64(&d, 0x2000);
	put_u64(&d, 0);
	put_u64(&d, 4);
	put_u8(&d, 4);
	put_u8(&d, 4);
	put_u16(&d, 2);
	put_event2(&b, 4, EVLOG_EV_EFI_BOOT_SERVICES_APPLICATION, alg256, size256, 1, d.p, d.len);
	/* 6: a 5-byte separator, 7: a binary EV_EFI_ACTION, 8: a GPT with a huge partition count */
	put_event2(&b, 4, EVLOG_EV_SEPARATOR, alg256, size256, 1, "\0\0\0\0\0", 5);
	put_event2(&b, 4, EVLOG_EV_EFI_ACTION, alg256, size256, 1, "\x01\x02\x03", 3);
	d.len = 0;
	put(&d, "EFI PART", 8);
	while (d.len < 80)
		put_u8(&d, 0);
	put_u32(&d, 128);     /* n entries */
	put_u32(&d, 128);     /* entry size */
	put_u32(&d, 0);       /* crc */
	put_u64(&d, 1u << 30); /* partitions */
	put_event2(&b, 5, EVLOG_EV_EFI_GPT_EVENT, alg256, size256, 1, d.p, d.len);
	/* 9: a tagged event with a wrong size, 10: a blob2 with a description overrunning */
	d.len = 0;
	put_u32(&d, 1);
	put_u32(&d, 0xffffffffu);
	put_event2(&b, 0, EVLOG_EV_EVENT_TAG, alg256, size256, 1, d.p, d.len);
	put_event2(&b, 0, EVLOG_EV_EFI_PLATFORM_FIRMWARE_BLOB2, alg256, size256, 1, "\xff" "abc", 4);
	/* 11: a handoff table count overrunning */
	d.len = 0;
	put_u64(&d, UINT64_MAX);
	put_event2(&b, 1, EVLOG_EV_EFI_HANDOFF_TABLES, alg256, size256, 1, d.p, d.len);

	log = expect_ok(&b);
	assert_int_equal(evlog_n_events(log), 12);
	ev = evlog_event(log, 1);
	assert_int_equal(ev->dec.kind, EVLOG_KIND_EFI_VARIABLE);
	assert_string_equal(ev->dec.var.name, "db\xf0\x9f\x98\x80\xef\xbf\xbdx");
	assert_int_equal(ev->verify, EVLOG_VERIFY_OK);
	for (size_t i = 2; i <= 4; i++) {
		ev = evlog_event(log, i);
		assert_int_equal(ev->dec.kind, EVLOG_KIND_MALFORMED);
		assert_non_null(ev->dec.error);
		assert_non_null(strstr(ev->dec.error, "overruns"));
	}
	/* malformed data is still hashed where the type says so */
	assert_int_equal(evlog_event(log, 2)->verify, EVLOG_VERIFY_OK);
	ev = evlog_event(log, 5);
	assert_int_equal(ev->dec.kind, EVLOG_KIND_IMAGE_LOAD);
	assert_null(ev->dec.image.device_path_text);
	assert_non_null(strstr(ev->dec.error, "length 2"));
	assert_int_equal(evlog_event(log, 6)->dec.kind, EVLOG_KIND_MALFORMED);
	assert_int_equal(evlog_event(log, 7)->dec.kind, EVLOG_KIND_MALFORMED);
	assert_int_equal(evlog_event(log, 7)->verify, EVLOG_VERIFY_OK);
	assert_int_equal(evlog_event(log, 8)->dec.kind, EVLOG_KIND_MALFORMED);
	assert_int_equal(evlog_event(log, 9)->dec.kind, EVLOG_KIND_MALFORMED);
	assert_int_equal(evlog_event(log, 10)->dec.kind, EVLOG_KIND_MALFORMED);
	assert_int_equal(evlog_event(log, 11)->dec.kind, EVLOG_KIND_MALFORMED);
	assert_int_equal(evlog_replay(log, &rp), 0);
	assert_int_equal(evlog_n_mismatched(log), 0);
	evlog_free(TAKE_PTR(log));

	/* a verifiable event whose data was altered is a mismatch, and still replays */
	b.len = 0;
	put_specid(&b, alg256, size256, 1);
	put_event2(&b, 4, EVLOG_EV_EFI_ACTION, alg256, size256, 1, "Calling EFI Application", 23);
	b.p[b.len - 1] = 'X';
	log = expect_ok(&b);
	assert_int_equal(evlog_event(log, 1)->verify, EVLOG_VERIFY_MISMATCH);
	assert_int_equal(evlog_event(log, 1)->mismatch_banks, 1);
	assert_null(evlog_event(log, 1)->measured);
	assert_int_equal(evlog_n_mismatched(log), 1);
	assert_int_equal(evlog_replay(log, &rp), 0);
	assert_int_equal(rp.banks[0].touched, 1u << 4);
	free(b.p);
	free(d.p);
}

/* Boot variables: whole-structure and data-only forms; BOOT2 only whole. A GRUB string altered. */
static void test_forms(void **state)
{
	static const uint16_t name[] = { 'B', 'o', 'o', 't', 'O', 'r', 'd', 'e', 'r' };
	static const uint8_t order[] = { 1, 0, 2, 0 };
	_cleanup_(evlog_freep) struct evlog *log = NULL;
	struct buf b = { 0 }, d = { 0 };

	put_specid(&b, alg256, size256, 1);
	put_var(&d, EVLOG_GUID_EFI_GLOBAL_VARIABLE, name, 9, 9, order, 4, 4);
	put_event2(&b, 1, EVLOG_EV_EFI_VARIABLE_BOOT, alg256, size256, 1, d.p, d.len);
	/* data-only digest */
	put_u32(&b, 1);
	put_u32(&b, EVLOG_EV_EFI_VARIABLE_BOOT);
	put_u32(&b, 1);
	put_u16(&b, KQ_ALG_SHA256);
	{
		uint8_t md[32];

		assert_int_equal(kq_hash(KQ_ALG_SHA256, order, 4, md), 0);
		put(&b, md, 32);
		put_u32(&b, (uint32_t)d.len);
		put(&b, d.p, d.len);
		/* the same as BOOT2: must be the whole structure */
		put_u32(&b, 1);
		put_u32(&b, EVLOG_EV_EFI_VARIABLE_BOOT2);
		put_u32(&b, 1);
		put_u16(&b, KQ_ALG_SHA256);
		put(&b, md, 32);
		put_u32(&b, (uint32_t)d.len);
		put(&b, d.p, d.len);
	}
	put_event2(&b, 8, EVLOG_EV_IPL, alg256, size256, 1, "kernel_cmdline: ro quiet", 25);
	b.p[b.len - 2] = 'T'; /* "quieT": its hash no longer matches in any form */
	put_event2(&b, 8, EVLOG_EV_IPL, alg256, size256, 1, "not grub\0", 9);
	b.p[b.len - 2] = 'B'; /* unknown format: a mismatch cannot be told from another hashing rule */

	log = expect_ok(&b);
	assert_int_equal(evlog_event(log, 1)->form, EVLOG_FORM_FULL);
	assert_int_equal(evlog_event(log, 2)->form, EVLOG_FORM_VAR_DATA);
	assert_int_equal(evlog_event(log, 2)->measured_len, 4);
	assert_int_equal(evlog_event(log, 3)->verify, EVLOG_VERIFY_MISMATCH);
	assert_int_equal(evlog_event(log, 4)->verify, EVLOG_VERIFY_MISMATCH);
	assert_int_equal(evlog_event(log, 5)->verify, EVLOG_VERIFY_NA);
	assert_int_equal(evlog_n_mismatched(log), 2);
	free(b.p);
	free(d.p);
}

/* ---- device paths, GUIDs, signature lists ---- */

static void put_node(struct buf *d, uint8_t type, uint8_t sub, const void *p, size_t n)
{
	put_u8(d, type);
	put_u8(d, sub);
	put_u16(d, (uint16_t)(n + 4));
	put(d, p, n);
}

static void put_file_node(struct buf *d, const char *ascii)
{
	struct buf s = { 0 };

	for (const char *c = ascii; *c; c++)
		put_u16(&s, (uint8_t)*c);
	put_u16(&s, 0);
	put_node(d, 4, 4, s.p, s.len);
	free(s.p);
}

static void test_devpath(void **state)
{
	struct buf d = { 0 }, n = { 0 };
	char *text = NULL, *file = NULL;
	uint8_t guid[16];

	put_u32(&n, 0x0a0341d0);
	put_u32(&n, 0);
	put_node(&d, 2, 1, n.p, n.len);                 /* PciRoot(0x0) */
	put_node(&d, 1, 1, "\x02\x1f", 2);              /* Pci(0x1f,0x2) */
	n.len = 0;
	put_u16(&n, 0);
	put_u16(&n, 0xffff);
	put_u16(&n, 0);
	put_node(&d, 3, 18, n.p, n.len);                /* Sata(0x0,0xffff,0x0) */
	n.len = 0;
	assert_int_equal(evlog_guid_from_string("1a504613-19b5-4b44-a83d-d926d40daa1c", guid), 0);
	put_u32(&n, 1);
	put_u64(&n, 0x800);
	put_u64(&n, 0x80000);
	put(&n, guid, 16);
	put_u8(&n, 2);
	put_u8(&n, 2);
	put_node(&d, 4, 1, n.p, n.len);                 /* HD(1,GPT,...) */
	put_file_node(&d, "\\EFI\\BOOT");
	put_file_node(&d, "BOOTX64.EFI");
	put_node(&d, 0x7f, 0x01, "", 0);                /* end of instance */
	n.len = 0;
	put(&n, "\x52\x54\x00\x12\x34\x56", 6);
	while (n.len < 32)
		put_u8(&n, 0);
	put_u8(&n, 1);
	put_node(&d, 3, 11, n.p, n.len);                /* MAC(525400123456,0x1) */
	put_node(&d, 3, 24, "http://x/a.efi", 14);      /* Uri(...) */
	put_node(&d, 3, 99, "\xab\xcd", 2);             /* unknown messaging node */
	put_node(&d, 1, 1, "\x01", 1);                  /* PCI node too short: generic */
	put_node(&d, 0x99, 7, "", 0);                   /* unknown type */
	put_node(&d, 0x7f, 0xff, "", 0);
	put_node(&d, 1, 1, "\x00\x00", 2);              /* after the end: ignored */

	assert_int_equal(evlog_devpath_to_text(d.p, d.len, &text, &file), 0);
	assert_string_equal(text, "PciRoot(0x0)/Pci(0x1f,0x2)/Sata(0x0,0xffff,0x0)/"
				  "HD(1,GPT,1a504613-19b5-4b44-a83d-d926d40daa1c,0x800,0x80000)/"
				  "\\EFI\\BOOT/BOOTX64.EFI,MAC(525400123456,0x1)/Uri(http://x/a.efi)/Msg(99,abcd)/"
				  "HardwarePath(1,01)/Path(153,7)");
	assert_string_equal(file, "\\EFI\\BOOT\\BOOTX64.EFI");
	free(text);
	free(file);

	/* malformed: a node shorter than its header, a node overrunning the path, a cut header */
	d.len = 0;
	put_u8(&d, 4);
	put_u8(&d, 4);
	put_u16(&d, 3);
	assert_int_equal(evlog_devpath_to_text(d.p, d.len, &text, NULL), -EBADMSG);
	d.len = 0;
	put_node(&d, 4, 4, "ab", 2);
	d.p[2] = 200;
	assert_int_equal(evlog_devpath_to_text(d.p, d.len, &text, NULL), -EBADMSG);
	assert_int_equal(evlog_devpath_to_text(d.p, 3, &text, NULL), -EBADMSG);
	/* empty is fine */
	assert_int_equal(evlog_devpath_to_text(d.p, 0, &text, &file), 0);
	assert_string_equal(text, "");
	assert_null(file);
	free(text);

	/* a path whose text would be huge */
	d.len = 0;
	{
		uint8_t blob[60000] = { 0 };

		put_node(&d, 0x55, 1, blob, sizeof(blob));
		put_node(&d, 0x55, 1, blob, sizeof(blob));
	}
	assert_int_equal(evlog_devpath_to_text(d.p, d.len, &text, NULL), -E2BIG);
	free(d.p);
	free(n.p);
}

static void test_guid_and_siglist(void **state)
{
	char s[EVLOG_GUID_STRLEN];
	uint8_t g[16];
	struct buf b = { 0 };
	struct evlog_siglist_iter it;
	struct evlog_efi_signature sig;
	uint8_t owner[16] = { 1 }, hash[32] = { 2 };

	evlog_guid_to_string(EVLOG_GUID_EFI_GLOBAL_VARIABLE, s);
	assert_string_equal(s, "8be4df61-93ca-11d2-aa0d-00e098032b8c");
	assert_int_equal(evlog_guid_from_string(s, g), 0);
	assert_memory_equal(g, EVLOG_GUID_EFI_GLOBAL_VARIABLE, 16);
	assert_string_equal(evlog_guid_name(g), "EFI_GLOBAL_VARIABLE");
	assert_string_equal(evlog_guid_name(EVLOG_GUID_CERT_SHA256), "EFI_CERT_SHA256");
	assert_int_equal(evlog_guid_from_string("8be4df61-93ca-11d2-aa0d-00e098032b8", g), -EINVAL);
	assert_int_equal(evlog_guid_from_string("8be4df61x93ca-11d2-aa0d-00e098032b8c", g), -EINVAL);
	assert_int_equal(evlog_guid_from_string("8be4df61-93ca-11d2-aa0d-00e098032bzz", g), -EINVAL);

	/* an empty list, then a list of two sha256 hashes */
	put(&b, EVLOG_GUID_CERT_X509, 16);
	put_u32(&b, 28);
	put_u32(&b, 0);
	put_u32(&b, 16);
	put(&b, EVLOG_GUID_CERT_SHA256, 16);
	put_u32(&b, 28 + 2 * 48);
	put_u32(&b, 0);
	put_u32(&b, 48);
	for (int i = 0; i < 2; i++) {
		put(&b, owner, 16);
		put(&b, hash, 32);
	}
	evlog_siglist_init(&it, b.p, b.len);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(evlog_siglist_next(&it, &sig), 1);
		assert_memory_equal(sig.type, EVLOG_GUID_CERT_SHA256, 16);
		assert_memory_equal(sig.owner, owner, 16);
		assert_int_equal(sig.data_len, 32);
		assert_memory_equal(sig.data, hash, 32);
	}
	assert_int_equal(evlog_siglist_next(&it, &sig), 0);
	assert_int_equal(evlog_siglist_next(&it, &sig), 0);

	/* sizes that do not add up, a list overrunning the buffer, a cut header */
	b.p[28 + 16] = 28 + 2 * 48 - 1;
	evlog_siglist_init(&it, b.p, b.len);
	assert_int_equal(evlog_siglist_next(&it, &sig), -EBADMSG);
	b.p[28 + 16] = 0xff;
	b.p[28 + 16 + 3] = 0xff;
	evlog_siglist_init(&it, b.p, b.len);
	assert_int_equal(evlog_siglist_next(&it, &sig), -EBADMSG);
	evlog_siglist_init(&it, b.p, 20);
	assert_int_equal(evlog_siglist_next(&it, &sig), -EBADMSG);
	free(b.p);

	assert_string_equal(evlog_event_type_name(EVLOG_EV_EFI_VARIABLE_AUTHORITY), "EV_EFI_VARIABLE_AUTHORITY");
	assert_null(evlog_event_type_name(0x12345678));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_replay),
		cmocka_unit_test(test_mismatches),
		cmocka_unit_test(test_verified_coverage),
		cmocka_unit_test(test_hpe_quote),
		cmocka_unit_test(test_gce_cos85_quotes),
		cmocka_unit_test(test_decode_secureboot),
		cmocka_unit_test(test_decode_misc),
		cmocka_unit_test(test_sha1_format),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_bad_digests),
		cmocka_unit_test(test_bad_sizes),
		cmocka_unit_test(test_too_many_events),
		cmocka_unit_test(test_bad_spec_id),
		cmocka_unit_test(test_unknown_bank),
		cmocka_unit_test(test_pcr_and_locality),
		cmocka_unit_test(test_hostile_data),
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_devpath),
		cmocka_unit_test(test_guid_and_siglist),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
