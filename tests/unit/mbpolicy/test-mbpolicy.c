/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/mbpolicy: golden tests on real logs ($KQ_TESTDATA/eventlog) and the
 * real Keylime reference state for one of them, plus hostile policies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "evlog/evlog.h"
#include "json/json.h"
#include "mbpolicy/mbpolicy.h"
#include "testlib.h"
#include "util/util.h"

#define SB_LOG "eventlog/keylime-secureboot.bin"
#define HPE_LOG "eventlog/hpe-perf-uefi.bin"
#define HPE_REF "policy/keylime-mb-refstate-hpe.json"

static void json_putp(struct json_object **p)
{
	json_object_put(*p);
}

static struct evlog *parse_log(const uint8_t *buf, size_t len)
{
	struct evlog *log = NULL;

	if (evlog_parse(buf, len, &log) < 0)
		fail_msg("evlog_parse: %s", kq_errmsg());
	return log;
}

static struct evlog *load_log(const char *rel)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;

	buf = testdata_load(rel, &len);
	return parse_log(buf, len);
}

static struct mbpolicy *parse_policy_json(struct json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	struct mbpolicy *p = NULL;

	if (mbpolicy_parse((const uint8_t *)s, strlen(s), &p) < 0)
		fail_msg("mbpolicy_parse: %s", kq_errmsg());
	return p;
}

static int parse_str(const char *s)
{
	struct mbpolicy *p = NULL;
	int r = mbpolicy_parse((const uint8_t *)s, strlen(s), &p);

	if (r == 0)
		mbpolicy_free(p);
	return r;
}

static void dump(const struct mbpolicy_result *r)
{
	for (size_t i = 0; i < r->n_failures; i++)
		fprintf(stderr, "  %s event %zd: %s\n", r->failures[i].reason,
			r->failures[i].event == MBPOLICY_NO_EVENT ? (ssize_t)-1 : (ssize_t)r->failures[i].event,
			r->failures[i].message);
}

static void check(const struct mbpolicy *p, const struct evlog *log, struct mbpolicy_result *r)
{
	assert_int_equal(mbpolicy_check(p, log, r), 0);
	assert_true(r->ok == (r->n_failures == 0));
}

static void expect_ok(const struct mbpolicy *p, const struct evlog *log)
{
	struct mbpolicy_result r = { 0 };

	check(p, log, &r);
	if (!r.ok) {
		dump(&r);
		fail_msg("policy failed, expected ok");
	}
	mbpolicy_result_free(&r);
}

static void expect_fail(const struct mbpolicy *p, const struct evlog *log, const char *reason, size_t event)
{
	struct mbpolicy_result r = { 0 };

	check(p, log, &r);
	if (!mbpolicy_result_has(&r, reason, event)) {
		dump(&r);
		fail_msg("expected failure %s at event %zd", reason, (ssize_t)event);
	}
	mbpolicy_result_free(&r);
}

/* ---- a kumquat-form policy built from a log's own variables and boot applications ---- */

static struct json_object *siglist_json(const struct evlog_event *ev)
{
	struct json_object *a = json_object_new_array();
	struct evlog_siglist_iter it;
	struct evlog_efi_signature s;
	int r;

	evlog_siglist_init(&it, ev->dec.var.data, ev->dec.var.data_len);
	while ((r = evlog_siglist_next(&it, &s)) > 0) {
		struct json_object *e = json_object_new_object();
		char g[EVLOG_GUID_STRLEN];
		_cleanup_free_ char *hex = kq_hex_dup(s.data, s.data_len);

		evlog_guid_to_string(s.owner, g);
		json_object_object_add(e, "SignatureOwner", json_object_new_string(g));
		json_object_object_add(e, "SignatureData", json_object_new_string(hex));
		json_object_array_add(a, e);
	}
	assert_int_equal(r, 0);
	return a;
}

static struct json_object *own_policy(const struct evlog *log)
{
	struct json_object *o = json_object_new_object(), *apps = json_object_new_array();
	static const char *const names[] = { "PK", "KEK", "db", "dbx" };
	static const char *const keys[] = { "pk", "kek", "db", "dbx" };

	json_object_object_add(o, "secure_boot", json_object_new_boolean(1));
	for (size_t i = 0; i < evlog_n_events(log); i++) {
		const struct evlog_event *ev = evlog_event(log, i);

		if (ev->pcr == 7 && ev->type == EVLOG_EV_EFI_VARIABLE_DRIVER_CONFIG &&
		    ev->dec.kind == EVLOG_KIND_EFI_VARIABLE)
			for (size_t k = 0; k < ARRAY_SIZE(names); k++)
				if (strcmp(ev->dec.var.name, names[k]) == 0)
					json_object_object_add(o, keys[k], siglist_json(ev));
		if (ev->pcr == 4 && ev->type == EVLOG_EV_EFI_BOOT_SERVICES_APPLICATION) {
			char hex[65];

			kq_hex_encode(evlog_event_digest(log, ev, KQ_ALG_SHA256), 32, hex);
			json_object_array_add(apps, json_object_new_string(hex));
		}
	}
	assert_int_equal(json_object_array_length(apps), 3);
	json_object_object_add(o, "boot_loaders", apps);
	return o;
}

static size_t find_var(const struct evlog *log, const char *name)
{
	for (size_t i = 0; i < evlog_n_events(log); i++) {
		const struct evlog_event *ev = evlog_event(log, i);

		if (ev->type == EVLOG_EV_EFI_VARIABLE_DRIVER_CONFIG && ev->dec.kind == EVLOG_KIND_EFI_VARIABLE &&
		    strcmp(ev->dec.var.name, name) == 0)
			return i;
	}
	fail_msg("no %s variable", name);
	return 0;
}

static void test_own_policy_passes(void **state)
{
	_cleanup_(evlog_freep) struct evlog *log = load_log(SB_LOG);
	_cleanup_(json_putp) struct json_object *o = own_policy(log);
	_cleanup_(mbpolicy_freep) struct mbpolicy *p = parse_policy_json(o);

	expect_ok(p, log);
}

/* SecureBoot 01 -> 00 in a copy: the digest no longer matches, so the event is untrusted. */
static void test_secureboot_flipped(void **state)
{
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_(evlog_freep) struct evlog *log = load_log(SB_LOG);
	_cleanup_(evlog_freep) struct evlog *bad = NULL;
	_cleanup_(json_putp) struct json_object *o = own_policy(log);
	_cleanup_(mbpolicy_freep) struct mbpolicy *p = parse_policy_json(o);
	size_t len, i = find_var(log, "SecureBoot"), at;

	buf = testdata_load(SB_LOG, &len);
	/* the variable's single data byte is the last byte of the event */
	at = evlog_event(log, i + 1)->offset - 1;
	assert_int_equal(buf[at], 1);
	buf[at] = 0;
	bad = parse_log(buf, len);
	assert_int_equal(evlog_event(bad, i)->verify, EVLOG_VERIFY_MISMATCH);
	expect_fail(p, bad, MBPOLICY_UNVERIFIED_EVENT, i);
	expect_fail(p, bad, MBPOLICY_SECURE_BOOT_OFF, MBPOLICY_NO_EVENT);
}

static void test_secureboot_expected_off(void **state)
{
	_cleanup_(evlog_freep) struct evlog *log = load_log(SB_LOG);
	_cleanup_(json_putp) struct json_object *o = own_policy(log);
	_cleanup_(mbpolicy_freep) struct mbpolicy *p = NULL;

	json_object_object_add(o, "secure_boot", json_object_new_boolean(0));
	p = parse_policy_json(o);
	expect_fail(p, log, MBPOLICY_SECURE_BOOT_ON, find_var(log, "SecureBoot"));
}

static void test_other_db(void **state)
{
	_cleanup_(evlog_freep) struct evlog *log = load_log(SB_LOG);
	_cleanup_(json_putp) struct json_object *o = own_policy(log);
	_cleanup_(mbpolicy_freep) struct mbpolicy *p = NULL;
	struct json_object *kek;

	/* the log's KEK entries as the allowed db: the real db entries are then not allowed */
	assert_true(json_object_object_get_ex(o, "kek", &kek));
	json_object_object_add(o, "db", json_object_get(kek));
	p = parse_policy_json(o);
	expect_fail(p, log, MBPOLICY_DB_MISMATCH, find_var(log, "db"));
}

static void test_dbx_missing_entry(void **state)
{
	_cleanup_(evlog_freep) struct evlog *log = load_log(SB_LOG);
	_cleanup_(json_putp) struct json_object *o = own_policy(log);
	_cleanup_(mbpolicy_freep) struct mbpolicy *p = NULL;
	struct json_object *e = json_object_new_object();
	struct json_object *dbx;

	assert_true(json_object_object_get_ex(o, "dbx", &dbx));
	json_object_object_add(e, "SignatureOwner", json_object_new_string("77fa9abd-0359-4d32-bd60-28f4e78f784b"));
	json_object_object_add(e, "SignatureData",
			       json_object_new_string("0000000000000000000000000000000000000000000000000000000000000001"));
	json_object_array_add(dbx, e);
	p = parse_policy_json(o);
	expect_fail(p, log, MBPOLICY_DBX_MISMATCH, find_var(log, "dbx"));
}

/* Drops the allowlist entry of event idx's digest. */
static void drop_app(const struct evlog *log, struct json_object *o, size_t idx)
{
	struct json_object *apps, *keep = json_object_new_array();
	char hex[65];

	kq_hex_encode(evlog_event_digest(log, evlog_event(log, idx), KQ_ALG_SHA256), 32, hex);
	assert_true(json_object_object_get_ex(o, "boot_loaders", &apps));
	for (size_t i = 0; i < json_object_array_length(apps); i++) {
		struct json_object *a = json_object_array_get_idx(apps, i);

		if (strcmp(json_object_get_string(a), hex) != 0)
			json_object_array_add(keep, json_object_get(a));
	}
	assert_int_equal(json_object_array_length(keep), json_object_array_length(apps) - 1);
	json_object_object_add(o, "boot_loaders", keep);
}

static size_t grub_event(const struct evlog *log)
{
	for (size_t i = 0; i < evlog_n_events(log); i++) {
		const struct evlog_event *ev = evlog_event(log, i);

		if (ev->dec.kind == EVLOG_KIND_IMAGE_LOAD && ev->dec.image.file_path &&
		    strstr(ev->dec.image.file_path, "grubx64.efi"))
			return i;
	}
	fail_msg("no grub");
	return 0;
}

static void test_boot_app_not_allowed(void **state)
{
	_cleanup_(evlog_freep) struct evlog *log = load_log(SB_LOG);
	_cleanup_(json_putp) struct json_object *o = own_policy(log);
	_cleanup_(mbpolicy_freep) struct mbpolicy *p = NULL;
	size_t g = grub_event(log);
	struct mbpolicy_result r = { 0 };

	drop_app(log, o, g);
	p = parse_policy_json(o);
	check(p, log, &r);
	assert_false(r.ok);
	assert_int_equal(r.n_failures, 1);
	assert_string_equal(r.failures[0].reason, MBPOLICY_BOOT_APP_NOT_ALLOWED);
	assert_int_equal(r.failures[0].event, g);
	assert_non_null(strstr(r.failures[0].message, "grubx64.efi"));
	mbpolicy_result_free(&r);
}

/* Relabelling the grub image as EV_EFI_ACTION does not hide it from the allowlist. */
static void test_boot_app_relabelled(void **state)
{
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_(evlog_freep) struct evlog *log = load_log(SB_LOG);
	_cleanup_(evlog_freep) struct evlog *bad = NULL;
	_cleanup_(json_putp) struct json_object *o = own_policy(log);
	_cleanup_(mbpolicy_freep) struct mbpolicy *p = NULL;
	size_t len, g = grub_event(log), at;

	buf = testdata_load(SB_LOG, &len);
	at = evlog_event(log, g)->offset + 4; /* TCG_PCR_EVENT2: PCRIndex, EventType */
	buf[at] = 0x07; /* EV_EFI_BOOT_SERVICES_APPLICATION -> EV_EFI_ACTION */
	bad = parse_log(buf, len);
	assert_int_equal(evlog_event(bad, g)->type, EVLOG_EV_EFI_ACTION);
	drop_app(log, o, g);
	p = parse_policy_json(o);
	expect_fail(p, bad, MBPOLICY_BOOT_APP_NOT_ALLOWED, g);
}

/* ---- Keylime reference state, golden ---- */

static struct json_object *hpe_ref(void)
{
	_cleanup_free_ uint8_t *buf = NULL;
	struct json_object *o = NULL;
	size_t len;

	buf = testdata_load(HPE_REF, &len);
	assert_int_equal(json_parse_body(buf, len, MBPOLICY_MAX_SIZE, 16, &o), 0);
	return o;
}

static void test_keylime_hpe_passes(void **state)
{
	_cleanup_(evlog_freep) struct evlog *log = load_log(HPE_LOG);
	_cleanup_(json_putp) struct json_object *o = hpe_ref();
	_cleanup_(mbpolicy_freep) struct mbpolicy *p = parse_policy_json(o);

	expect_ok(p, log);
}

static void test_keylime_hpe_negative(void **state)
{
	_cleanup_(evlog_freep) struct evlog *log = load_log(HPE_LOG);
	struct json_object *k, *db;

	{ /* another kernel command line */
		_cleanup_(json_putp) struct json_object *o = hpe_ref();
		_cleanup_(mbpolicy_freep) struct mbpolicy *p = NULL;

		k = json_object_array_get_idx(json_object_object_get(o, "kernels"), 0);
		json_object_object_add(k, "kernel_cmdline", json_object_new_string("/vmlinuz.* ro quiet"));
		p = parse_policy_json(o);
		expect_fail(p, log, MBPOLICY_KERNEL_MISMATCH, 146);
	}
	{ /* another initrd */
		_cleanup_(json_putp) struct json_object *o = hpe_ref();
		_cleanup_(mbpolicy_freep) struct mbpolicy *p = NULL;

		k = json_object_array_get_idx(json_object_object_get(o, "kernels"), 0);
		json_object_object_add(k, "initrd_plain_sha256",
				       json_object_new_string("0x00000000000000000000000000000000000000000000000000000000000000aa"));
		p = parse_policy_json(o);
		expect_fail(p, log, MBPOLICY_KERNEL_MISMATCH, 148);
	}
	{ /* a db entry the host has is no longer allowed */
		_cleanup_(json_putp) struct json_object *o = hpe_ref();
		_cleanup_(mbpolicy_freep) struct mbpolicy *p = NULL;

		db = json_object_object_get(o, "db");
		json_object_array_del_idx(db, 0, 1);
		p = parse_policy_json(o);
		expect_fail(p, log, MBPOLICY_DB_MISMATCH, 8);
	}
	{ /* Keylime's has_secureboot true on a host without it */
		_cleanup_(json_putp) struct json_object *o = hpe_ref();
		_cleanup_(mbpolicy_freep) struct mbpolicy *p = NULL;

		k = json_object_array_get_idx(json_object_object_get(o, "kernels"), 0);
		json_object_object_add(k, "kernel_authcode_sha256", json_object_get(json_object_object_get(k, "shim_authcode_sha256")));
		json_object_object_add(o, "has_secureboot", json_object_new_boolean(1));
		p = parse_policy_json(o);
		expect_fail(p, log, MBPOLICY_SECURE_BOOT_OFF, 5);
		expect_fail(p, log, MBPOLICY_BOOT_APP_NOT_ALLOWED, MBPOLICY_NO_EVENT);
	}
	{ /* another firmware blob */
		_cleanup_(json_putp) struct json_object *o = hpe_ref();
		_cleanup_(mbpolicy_freep) struct mbpolicy *p = NULL;
		struct json_object *sb = json_object_array_get_idx(json_object_object_get(o, "scrtm_and_bios"), 0);

		json_object_array_del_idx(json_object_object_get(sb, "platform_firmware"), 2, 1);
		p = parse_policy_json(o);
		expect_fail(p, log, MBPOLICY_SCRTM_BIOS_MISMATCH, MBPOLICY_NO_EVENT);
	}
}

/* ---- hostile policies ---- */

static void test_hostile(void **state)
{
	_cleanup_free_ char *big = NULL;

	assert_int_equal(parse_str("{"), -EBADMSG);
	assert_int_equal(parse_str("{\"secure_boot\": true} x"), -EBADMSG);
	assert_int_equal(parse_str("{\"db\": [], \"db\": []}"), -EBADMSG);
	assert_int_equal(parse_str("[]"), -EINVAL);
	assert_int_equal(parse_str("{\"secure_boot\": 1}"), -EINVAL);
	assert_int_equal(parse_str("{\"secure_boot\": \"yes\"}"), -EINVAL);
	assert_int_equal(parse_str("{\"sekure_boot\": true}"), -EINVAL);
	assert_non_null(strstr(kq_errmsg(), "unknown field"));
	assert_int_equal(parse_str("{\"db\": {}}"), -EINVAL);
	assert_int_equal(parse_str("{\"db\": [\"aa\"]}"), -EINVAL);
	assert_int_equal(parse_str("{\"db\": [{\"SignatureOwner\": \"nope\", \"SignatureData\": \"aa\"}]}"), -EINVAL);
	assert_int_equal(parse_str("{\"db\": [{\"SignatureOwner\": \"77fa9abd-0359-4d32-bd60-28f4e78f784b\","
				   " \"SignatureData\": \"zz\"}]}"), -EINVAL);
	assert_non_null(strstr(kq_errmsg(), "SignatureData"));
	assert_int_equal(parse_str("{\"db\": [{\"SignatureOwner\": \"77fa9abd-0359-4d32-bd60-28f4e78f784b\","
				   " \"SignatureData\": \"\"}]}"), -EINVAL);
	assert_int_equal(parse_str("{\"boot_loaders\": [\"abcd\"]}"), -EINVAL);
	assert_int_equal(parse_str("{\"boot_loaders\": [7]}"), -EINVAL);
	assert_int_equal(parse_str("{\"boot_loaders\": [\"0xg000000000000000000000000000000000000000000000000000000000000000\"]}"),
			 -EINVAL);
	assert_int_equal(parse_str("{\"secure_boot\": null, \"boot_loaders\": null}"), 0);
	assert_int_equal(parse_str("{}"), 0);

	/* Keylime: missing fields, wrong digest shapes, Python-only regex syntax */
	assert_int_equal(parse_str("{\"scrtm_and_bios\": []}"), -EINVAL);
	assert_non_null(strstr(kq_errmsg(), "missing"));
#define KL_HEAD "{\"scrtm_and_bios\": [], \"pk\": [], \"kek\": [], \"db\": [], \"dbx\": [], " \
		"\"mokdig\": [{\"md5\": \"0x00\"}], \"mokxdig\": [], \"kernels\": []}"
	assert_int_equal(parse_str(KL_HEAD), -EINVAL);
	assert_non_null(strstr(kq_errmsg(), "hash algorithm"));
	{
		static const char *const fmt =
			"{\"has_secureboot\": false, \"scrtm_and_bios\": [], \"pk\": [], \"kek\": [], \"db\": [], "
			"\"dbx\": [], \"mokdig\": [], \"mokxdig\": [], \"kernels\": [{"
			"\"shim_authcode_sha256\": \"0x%064d\", \"grub_authcode_sha256\": \"0x%064d\", "
			"\"vmlinuz_plain_sha256\": \"0x%064d\", \"initrd_plain_sha256\": \"0x%064d\", "
			"\"kernel_cmdline\": \"%s\"}]}";
		static const char *const bad[] = { "\\\\d+", "(?i)root", "a*?", "(" };
		char s[1024];

		snprintf(s, sizeof(s), fmt, 0, 0, 0, 0, "/vmlinuz\\\\-6 ro");
		assert_int_equal(parse_str(s), 0);
		for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
			snprintf(s, sizeof(s), fmt, 0, 0, 0, 0, bad[i]);
			assert_int_equal(parse_str(s), -EINVAL);
		}
	}

	/* oversize document, and a list over MBPOLICY_MAX_ENTRIES */
	big = malloc(MBPOLICY_MAX_SIZE + 2);
	assert_non_null(big);
	memset(big, ' ', MBPOLICY_MAX_SIZE + 1);
	big[0] = '{';
	big[MBPOLICY_MAX_SIZE] = '}';
	big[MBPOLICY_MAX_SIZE + 1] = '\0';
	assert_int_equal(parse_str(big), -E2BIG);
	{
		size_t n = MBPOLICY_MAX_ENTRIES + 1, off = 0;
		_cleanup_free_ char *s = malloc(n * 70 + 64);

		assert_non_null(s);
		off += (size_t)snprintf(s, 64, "{\"boot_loaders\": [");
		for (size_t i = 0; i < n; i++)
			off += (size_t)snprintf(s + off, 70, "%s\"%064zx\"", i ? "," : "", i);
		snprintf(s + off, 4, "]}");
		assert_int_equal(parse_str(s), -E2BIG);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_own_policy_passes),
		cmocka_unit_test(test_secureboot_flipped),
		cmocka_unit_test(test_secureboot_expected_off),
		cmocka_unit_test(test_other_db),
		cmocka_unit_test(test_dbx_missing_entry),
		cmocka_unit_test(test_boot_app_not_allowed),
		cmocka_unit_test(test_boot_app_relabelled),
		cmocka_unit_test(test_keylime_hpe_passes),
		cmocka_unit_test(test_keylime_hpe_negative),
		cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
