/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kumquat-vtpm-mgr's core: domain XML read as untrusted input (libvirt's own
 * output from its test driver, hand-written variants, hostile documents),
 * adding a TPM, what each libvirt event and hook call does to a VM's state,
 * the SQLite map across a restart, and reporting to a host agent that is up,
 * down, or refusing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libxml/parser.h>

#include "local/local.h"
#include "log/log.h"
#include "testlib.h"
#include "vtpm-mgr.h"

static char tmpdir[] = "/tmp/kq-vtpm-mgr-XXXXXX";

static char *data_path(const char *name)
{
	const char *src = getenv("KQ_SOURCE");
	char *p;

	if (!src) {
		fprintf(stderr, "SKIP: KQ_SOURCE not set (run through meson test)\n");
		exit(KQ_TEST_SKIP);
	}
	if (asprintf(&p, "%s/tests/unit/vtpm-mgr/data/%s", src, name) < 0)
		abort();
	return p;
}

static char *load(const char *name, size_t *len)
{
	_cleanup_free_ char *p = data_path(name);
	uint8_t *buf;

	if (kq_read_file(p, DOMXML_MAX, &buf, len) < 0) {
		fprintf(stderr, "%s: %s\n", p, kq_errmsg());
		abort();
	}
	return (char *)buf;
}

static int parse_str(const char *xml, struct dom_info *d)
{
	return domxml_parse(xml, strlen(xml), "/var/lib/libvirt/swtpm", d);
}

/* ---- domain XML ---- */

static void test_parse_golden(void **state)
{
	static const struct {
		const char *file, *uuid, *name;
		bool has_tpm;
		const char *dir, *version;
	} cases[] = {
		/* libvirt 9.0's own output (test driver: virsh dumpxml) */
		{ "libvirt-test-notpm.xml", "6695eb01-f6a4-8304-79aa-97f2502e193f", "test", false, NULL, "" },
		{ "libvirt-tpm2-crb.xml", "5c0ffee0-1234-4abc-8def-0123456789ab", "guest-01", true,
		  "/var/lib/libvirt/swtpm/5c0ffee0-1234-4abc-8def-0123456789ab/tpm2", "2.0" },
		{ "libvirt-tpm2-crb-live.xml", "5c0ffee0-1234-4abc-8def-0123456789ab", "guest-01", true,
		  "/var/lib/libvirt/swtpm/5c0ffee0-1234-4abc-8def-0123456789ab/tpm2", "2.0" },
		/* libvirt's defaults when the XML has no version: tpm-tis on x86 is a TPM 1.2 */
		{ "tpm-tis-noversion.xml", "0b6f7a53-9c1e-4f0b-a8a4-3f5e6d7c8b9a", "legacy-tis", true,
		  "/var/lib/libvirt/swtpm/0b6f7a53-9c1e-4f0b-a8a4-3f5e6d7c8b9a/tpm1.2", "1.2" },
		{ "ppc64-spapr.xml", "22222222-3333-4444-8555-666666666666", "power-guest", true,
		  "/var/lib/libvirt/swtpm/22222222-3333-4444-8555-666666666666/tpm2", "2.0" },
		/* newer libvirt: the state elsewhere */
		{ "tpm-source-dir.xml", "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "shared-storage", true,
		  "/srv/nfs/vtpm/shared-storage", "2.0" },
		/* the host's TPM: no vTPM state */
		{ "tpm-passthrough.xml", "11111111-2222-4333-8444-555555555555", "host-tpm", true, NULL, "" },
		{ "aarch64-notpm.xml", "33333333-4444-4555-8666-777777777777", "arm-guest", false, NULL, "" },
		{ "no-devices.xml", "44444444-5555-4666-8777-888888888888", "bare", false, NULL, "" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t len;
		_cleanup_free_ char *xml = load(cases[i].file, &len);
		struct dom_info d = {};

		if (domxml_parse(xml, len, "/var/lib/libvirt/swtpm", &d) != 0)
			fail_msg("%s: %s", cases[i].file, kq_errmsg());
		assert_string_equal(d.uuid, cases[i].uuid);
		assert_string_equal(d.name, cases[i].name);
		assert_int_equal(d.has_tpm, cases[i].has_tpm);
		if (cases[i].dir)
			assert_string_equal(d.vtpm_dir, cases[i].dir);
		else
			assert_null(d.vtpm_dir);
		assert_string_equal(d.tpm_version, cases[i].version);
		dom_info_free(&d);
	}
}

static void test_parse_variants(void **state)
{
	struct dom_info d = {};

	(void)state;
	/* uppercase UUID with blanks around it (libvirt accepts it): stored lowercase */
	assert_int_equal(parse_str("<domain type='kvm'><name>a</name><uuid>\n  5C0FFEE0-1234-4ABC-8DEF-0123456789AB  "
				   "</uuid><devices><tpm model='tpm-crb'><backend type='emulator' version='2.0'/>"
				   "</tpm></devices></domain>", &d), 0);
	assert_string_equal(d.uuid, "5c0ffee0-1234-4abc-8def-0123456789ab");
	assert_string_equal(d.vtpm_dir, "/var/lib/libvirt/swtpm/5c0ffee0-1234-4abc-8def-0123456789ab/tpm2");
	dom_info_free(&d);
	/* another swtpm_dir; the first emulator counts; unknown elements are fine */
	{
		const char *x = "<domain><name>two</name><uuid>5c0ffee0-1234-4abc-8def-0123456789ab</uuid>"
				"<metadata><k:x xmlns:k='urn:x'>hello</k:x></metadata><devices>"
				"<tpm model='spapr-tpm-proxy'><backend type='passthrough'/></tpm>"
				"<tpm><backend type='emulator' version='2.0'/></tpm></devices></domain>";

		assert_int_equal(domxml_parse(x, strlen(x), "/srv/swtpm", &d), 0);
		assert_string_equal(d.vtpm_dir, "/srv/swtpm/5c0ffee0-1234-4abc-8def-0123456789ab/tpm2");
		dom_info_free(&d);
	}
	/* a name libvirt allows: spaces, non-ASCII, quotes */
	assert_int_equal(parse_str("<domain><name>web 01 — “prod” &amp; co</name>"
				   "<uuid>5c0ffee0-1234-4abc-8def-0123456789ab</uuid></domain>", &d), 0);
	assert_string_equal(d.name, "web 01 — “prod” & co");
	dom_info_free(&d);
}

static void expect_refused(const char *what, const char *xml, size_t len, int code)
{
	struct dom_info d = {};
	int r = domxml_parse(xml, len, "/var/lib/libvirt/swtpm", &d);

	if (r != code)
		fail_msg("%s: got %d (%s), expected %d", what, r, kq_errmsg(), code);
	assert_null(d.name);
}

#define GOOD_HEAD "<domain><name>x</name><uuid>5c0ffee0-1234-4abc-8def-0123456789ab</uuid>"

static void test_parse_hostile(void **state)
{
	static const struct {
		const char *what, *xml;
	} cases[] = {
		{ "empty", "" },
		{ "not XML", "hello" },
		{ "not well-formed", GOOD_HEAD "<devices></domain>" },
		{ "another root", "<network><name>x</name><uuid>5c0ffee0-1234-4abc-8def-0123456789ab</uuid></network>" },
		{ "a namespaced root", "<d:domain xmlns:d='urn:x'><name>x</name>"
				       "<uuid>5c0ffee0-1234-4abc-8def-0123456789ab</uuid></d:domain>" },
		{ "no uuid", "<domain><name>x</name></domain>" },
		{ "no name", "<domain><uuid>5c0ffee0-1234-4abc-8def-0123456789ab</uuid></domain>" },
		{ "two uuids", GOOD_HEAD "<uuid>00000000-1234-4abc-8def-0123456789ab</uuid></domain>" },
		{ "two names", GOOD_HEAD "<name>y</name></domain>" },
		{ "two devices", GOOD_HEAD "<devices/><devices/></domain>" },
		{ "a UUID without dashes", "<domain><name>x</name><uuid>5c0ffee012344abc8def0123456789ab</uuid></domain>" },
		{ "a UUID with text after it", "<domain><name>x</name>"
					       "<uuid>5c0ffee0-1234-4abc-8def-0123456789ab x</uuid></domain>" },
		{ "an empty name", "<domain><name></name><uuid>5c0ffee0-1234-4abc-8def-0123456789ab</uuid></domain>" },
		{ "a newline in the name", "<domain><name>a&#10;info vtpm-mgr: forged</name>"
					   "<uuid>5c0ffee0-1234-4abc-8def-0123456789ab</uuid></domain>" },
		{ "an escape in the name", "<domain><name>a&#27;[2J</name>"
					   "<uuid>5c0ffee0-1234-4abc-8def-0123456789ab</uuid></domain>" },
		{ "a slash in the name", "<domain><name>../../etc</name>"
					 "<uuid>5c0ffee0-1234-4abc-8def-0123456789ab</uuid></domain>" },
		{ "a relative state path", GOOD_HEAD "<devices><tpm><backend type='emulator' version='2.0'>"
						     "<source type='dir' path='var/lib/x'/></backend></tpm></devices></domain>" },
		{ "a tab in the state path", GOOD_HEAD "<devices><tpm><backend type='emulator' version='2.0'>"
						       "<source type='dir' path='/x&#9;y'/></backend></tpm></devices></domain>" },
		{ "a TPM version 3.0", GOOD_HEAD "<devices><tpm><backend type='emulator' version='3.0'/></tpm>"
						 "</devices></domain>" },
		{ "two backends", GOOD_HEAD "<devices><tpm><backend type='emulator'/><backend type='emulator'/></tpm>"
					    "</devices></domain>" },
		{ "an undefined entity", "<domain><name>&evil;</name>"
					 "<uuid>5c0ffee0-1234-4abc-8def-0123456789ab</uuid></domain>" },
		/* a billion laughs: refused at the DOCTYPE, before any entity exists */
		{ "entity expansion", "<?xml version='1.0'?><!DOCTYPE domain [<!ENTITY a 'aaaaaaaaaa'>"
				      "<!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'><!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>"
				      "<!ENTITY d '&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;'><!ENTITY e '&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;'>"
				      "<!ENTITY f '&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;'><!ENTITY g '&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;'>"
				      "]><domain><name>&g;</name><uuid>5c0ffee0-1234-4abc-8def-0123456789ab</uuid></domain>" },
		/* an external entity: would read a local file */
		{ "an external entity", "<!DOCTYPE domain [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
					"<domain><name>&x;</name><uuid>5c0ffee0-1234-4abc-8def-0123456789ab</uuid></domain>" },
		{ "an external DTD", "<!DOCTYPE domain SYSTEM 'http://192.0.2.1/x.dtd'>"
				     "<domain><name>x</name><uuid>5c0ffee0-1234-4abc-8def-0123456789ab</uuid></domain>" },
		{ "a DOCTYPE alone", "<!DOCTYPE domain><domain><name>x</name>"
				     "<uuid>5c0ffee0-1234-4abc-8def-0123456789ab</uuid></domain>" },
		{ "invalid UTF-8", "<domain><name>\xc3\x28</name><uuid>5c0ffee0-1234-4abc-8def-0123456789ab</uuid></domain>" },
	};
	static const char nul[] = "<domain><name>x\0y</name><uuid>5c0ffee0-1234-4abc-8def-0123456789ab</uuid></domain>";
	_cleanup_free_ char *name = NULL, *many = NULL, *deep = NULL, *huge = NULL;
	size_t off = 0;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		expect_refused(cases[i].what, cases[i].xml, strlen(cases[i].xml), -EBADMSG);
	expect_refused("a NUL byte", nul, sizeof(nul) - 1, -EBADMSG);

	/* a name over 255 bytes */
	name = malloc(1024);
	assert_non_null(name);
	memcpy(name, "<domain><name>", 14);
	memset(name + 14, 'n', 256);
	snprintf(name + 270, 1024 - 270, "</name><uuid>5c0ffee0-1234-4abc-8def-0123456789ab</uuid></domain>");
	expect_refused("a long name", name, strlen(name), -EBADMSG);

	/* 70000 elements: stopped at the count, not turned into a tree */
	many = malloc(strlen(GOOD_HEAD) + 70000 * 4 + 16);
	assert_non_null(many);
	off = strlen(GOOD_HEAD);
	memcpy(many, GOOD_HEAD, off);
	for (int i = 0; i < 70000; i++, off += 4)
		memcpy(many + off, "<a/>", 4);
	memcpy(many + off, "</domain>", 9);
	off += 9;
	assert_true(off < DOMXML_MAX);
	expect_refused("too many elements", many, off, -EBADMSG);
	assert_non_null(strstr(kq_errmsg(), "more than 65536 elements"));

	/* 10000 levels deep: libxml2's depth limit */
	deep = malloc(strlen(GOOD_HEAD) + 10000 * 7 + 16);
	assert_non_null(deep);
	off = strlen(GOOD_HEAD);
	memcpy(deep, GOOD_HEAD, off);
	for (int i = 0; i < 10000; i++, off += 3)
		memcpy(deep + off, "<a>", 3);
	for (int i = 0; i < 10000; i++, off += 4)
		memcpy(deep + off, "</a>", 4);
	memcpy(deep + off, "</domain>", 9);
	off += 9;
	expect_refused("too deep", deep, off, -EBADMSG);

	/* over 4 MiB: refused before parsing */
	huge = malloc(DOMXML_MAX + 2);
	assert_non_null(huge);
	memset(huge, ' ', DOMXML_MAX + 1);
	memcpy(huge, GOOD_HEAD, strlen(GOOD_HEAD));
	expect_refused("too long", huge, DOMXML_MAX + 1, -EFBIG);
}

static void test_add_tpm(void **state)
{
	static const struct {
		const char *file, *model;
	} cases[] = {
		{ "libvirt-test-notpm.xml", "tpm-crb" },
		{ "aarch64-notpm.xml", "tpm-tis" },
		{ "no-devices.xml", "tpm-crb" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t len, out_len, again_len;
		_cleanup_free_ char *xml = load(cases[i].file, &len), *out = NULL, *again = NULL;
		struct dom_info before = {}, after = {};
		char want[96];

		assert_int_equal(domxml_parse(xml, len, NULL, &before), 0);
		if (domxml_add_tpm(xml, len, &out, &out_len) != 1)
			fail_msg("%s: %s", cases[i].file, kq_errmsg());
		assert_int_equal(strlen(out), out_len);
		assert_int_equal(domxml_parse(out, out_len, NULL, &after), 0);
		assert_string_equal(after.uuid, before.uuid);
		assert_string_equal(after.name, before.name);
		assert_true(after.has_tpm);
		assert_string_equal(after.tpm_version, "2.0");
		snprintf(want, sizeof(want), "<tpm model=\"%s\">", cases[i].model);
		assert_non_null(strstr(out, want));
		assert_non_null(strstr(out, "<backend type=\"emulator\" version=\"2.0\"/>"));
		/* re-indented like libvirt's own output, no XML declaration */
		assert_non_null(strstr(out, "\n    <tpm model="));
		assert_null(strstr(out, "<?xml"));
		/* the rest is kept */
		if (strstr(xml, "<memballoon"))
			assert_non_null(strstr(out, "<memballoon model=\"virtio\">"));
		/* a second time: nothing to do */
		assert_int_equal(domxml_add_tpm(out, out_len, &again, &again_len), 0);
		assert_null(again);
		dom_info_free(&before);
		dom_info_free(&after);
	}
	/* domains with a TPM of any kind are left alone */
	{
		const char *with[] = { "libvirt-tpm2-crb.xml", "tpm-passthrough.xml", "ppc64-spapr.xml",
				       "tpm-source-dir.xml" };

		for (size_t i = 0; i < ARRAY_SIZE(with); i++) {
			size_t len, out_len;
			_cleanup_free_ char *xml = load(with[i], &len);
			char *out = NULL;

			assert_int_equal(domxml_add_tpm(xml, len, &out, &out_len), 0);
			assert_null(out);
		}
	}
	/* hostile input is refused the same way; an arch without a TPM model too */
	{
		const char *bomb = "<!DOCTYPE domain [<!ENTITY a 'a'>]><domain><name>&a;</name>"
				   "<uuid>5c0ffee0-1234-4abc-8def-0123456789ab</uuid></domain>";
		const char *s390 = GOOD_HEAD "<os><type arch='s390x'>hvm</type></os></domain>";
		char *out = NULL;
		size_t out_len;

		assert_int_equal(domxml_add_tpm(bomb, strlen(bomb), &out, &out_len), -EBADMSG);
		assert_int_equal(domxml_add_tpm(s390, strlen(s390), &out, &out_len), -ENOTSUP);
		assert_null(out);
	}
}

/* ---- states ---- */

static void test_events(void **state)
{
	static const struct {
		enum vm_state cur;
		int event, detail, persistent;
		enum vm_state want;
	} cases[] = {
		{ VM_NONE, VIR_DOMAIN_EVENT_DEFINED, VIR_DOMAIN_EVENT_DEFINED_ADDED, -1, VM_DEFINED },
		{ VM_UNDEFINED, VIR_DOMAIN_EVENT_DEFINED, VIR_DOMAIN_EVENT_DEFINED_ADDED, -1, VM_DEFINED },
		{ VM_STOPPED, VIR_DOMAIN_EVENT_DEFINED, VIR_DOMAIN_EVENT_DEFINED_UPDATED, -1, VM_DEFINED },
		/* a running domain redefined stays running */
		{ VM_RUNNING, VIR_DOMAIN_EVENT_DEFINED, VIR_DOMAIN_EVENT_DEFINED_UPDATED, -1, VM_RUNNING },
		{ VM_MIGRATING_IN, VIR_DOMAIN_EVENT_DEFINED, VIR_DOMAIN_EVENT_DEFINED_ADDED, -1, VM_MIGRATING_IN },
		{ VM_DEFINED, VIR_DOMAIN_EVENT_UNDEFINED, VIR_DOMAIN_EVENT_UNDEFINED_REMOVED, -1, VM_UNDEFINED },
		{ VM_STOPPED, VIR_DOMAIN_EVENT_UNDEFINED, VIR_DOMAIN_EVENT_UNDEFINED_REMOVED, -1, VM_UNDEFINED },
		/* undefining a running domain makes it transient; it keeps running */
		{ VM_RUNNING, VIR_DOMAIN_EVENT_UNDEFINED, VIR_DOMAIN_EVENT_UNDEFINED_REMOVED, -1, VM_RUNNING },
		/* a rename is UNDEFINED then DEFINED of the same UUID */
		{ VM_DEFINED, VIR_DOMAIN_EVENT_UNDEFINED, VIR_DOMAIN_EVENT_UNDEFINED_RENAMED, -1, VM_DEFINED },
		{ VM_DEFINED, VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_BOOTED, -1, VM_RUNNING },
		{ VM_STOPPED, VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_RESTORED, -1, VM_RUNNING },
		{ VM_NONE, VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_BOOTED, -1, VM_RUNNING },
		/* migration, destination: started paused, then resumed */
		{ VM_NONE, VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_MIGRATED, -1, VM_MIGRATING_IN },
		{ VM_MIGRATING_IN, VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_MIGRATED, -1, VM_RUNNING },
		{ VM_MIGRATING_IN, VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_POSTCOPY, -1, VM_RUNNING },
		/* ... or a failed one: the transient destination domain goes away */
		{ VM_MIGRATING_IN, VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_FAILED, 0, VM_UNDEFINED },
		/* migration, source */
		{ VM_RUNNING, VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_MIGRATED, 1, VM_MIGRATED_OUT },
		{ VM_RUNNING, VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_MIGRATED, -1, VM_RUNNING },
		{ VM_RUNNING, VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN, 1, VM_STOPPED },
		{ VM_RUNNING, VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_DESTROYED, -1, VM_STOPPED },
		{ VM_RUNNING, VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_SAVED, 1, VM_STOPPED },
		{ VM_RUNNING, VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_DESTROYED, 0, VM_UNDEFINED },
		/* no state change: guest shutdown (STOPPED follows unless it is a fake reboot), pauses, crashes */
		{ VM_RUNNING, VIR_DOMAIN_EVENT_SHUTDOWN, VIR_DOMAIN_EVENT_SHUTDOWN_FINISHED, -1, VM_RUNNING },
		{ VM_RUNNING, VIR_DOMAIN_EVENT_SUSPENDED, 0, -1, VM_RUNNING },
		{ VM_RUNNING, VIR_DOMAIN_EVENT_PMSUSPENDED, 0, -1, VM_RUNNING },
		{ VM_RUNNING, VIR_DOMAIN_EVENT_CRASHED, 0, -1, VM_RUNNING },
		{ VM_NONE, VIR_DOMAIN_EVENT_SUSPENDED, 0, -1, VM_NONE },
		{ VM_DEFINED, 42, 0, -1, VM_DEFINED },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		enum vm_state got = vm_state_after_event(cases[i].cur, cases[i].event, cases[i].detail,
							 cases[i].persistent);

		if (got != cases[i].want)
			fail_msg("case %zu: %s + event %d/%d -> %s, expected %s", i, vm_state_name(cases[i].cur),
				 cases[i].event, cases[i].detail, vm_state_name(got), vm_state_name(cases[i].want));
	}
}

static void test_hook_ops(void **state)
{
	static const struct {
		enum vm_state cur;
		const char *op, *subop;
		enum vm_state want;
	} cases[] = {
		/* a start: prepare, start, started; then stopped, release */
		{ VM_NONE, "prepare", "begin", VM_DEFINED },
		{ VM_STOPPED, "prepare", "begin", VM_DEFINED },
		{ VM_DEFINED, "start", "begin", VM_DEFINED },
		{ VM_DEFINED, "started", "begin", VM_RUNNING },
		{ VM_RUNNING, "stopped", "end", VM_STOPPED },
		{ VM_STOPPED, "release", "end", VM_STOPPED },
		{ VM_NONE, "release", "end", VM_STOPPED },
		/* an incoming migration: migrate, prepare, start, started */
		{ VM_NONE, "migrate", "begin", VM_MIGRATING_IN },
		{ VM_MIGRATING_IN, "prepare", "begin", VM_MIGRATING_IN },
		{ VM_MIGRATING_IN, "start", "begin", VM_MIGRATING_IN },
		{ VM_MIGRATING_IN, "started", "begin", VM_RUNNING },
		/* the source after a migration: stopped and release must not claim the VM back */
		{ VM_MIGRATED_OUT, "stopped", "end", VM_MIGRATED_OUT },
		{ VM_MIGRATED_OUT, "release", "end", VM_MIGRATED_OUT },
		{ VM_UNDEFINED, "release", "end", VM_UNDEFINED },
		/* libvirtd restarted with the domain running */
		{ VM_NONE, "reconnect", "begin", VM_RUNNING },
		{ VM_STOPPED, "attach", "begin", VM_RUNNING },
		/* nothing to say */
		{ VM_STOPPED, "restore", "begin", VM_STOPPED },
		{ VM_NONE, "restore", "begin", VM_NONE },
		{ VM_RUNNING, "started", "end", VM_RUNNING },
		{ VM_RUNNING, "prepare", "end", VM_RUNNING },
		{ VM_RUNNING, "stopped", "begin", VM_RUNNING },
		{ VM_RUNNING, "some-future-op", "begin", VM_RUNNING },
		{ VM_RUNNING, NULL, NULL, VM_RUNNING },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		enum vm_state got = vm_state_after_hook(cases[i].cur, cases[i].op, cases[i].subop);

		if (got != cases[i].want)
			fail_msg("case %zu: %s + %s/%s -> %s, expected %s", i, vm_state_name(cases[i].cur),
				 cases[i].op ? cases[i].op : "-", cases[i].subop ? cases[i].subop : "-",
				 vm_state_name(got), vm_state_name(cases[i].want));
	}
	/* listing at start or after a reconnect */
	assert_int_equal(vm_state_after_listing(VM_NONE, true, false), VM_RUNNING);
	assert_int_equal(vm_state_after_listing(VM_STOPPED, true, false), VM_RUNNING);
	assert_int_equal(vm_state_after_listing(VM_MIGRATING_IN, true, true), VM_MIGRATING_IN);
	assert_int_equal(vm_state_after_listing(VM_MIGRATING_IN, true, false), VM_RUNNING);
	assert_int_equal(vm_state_after_listing(VM_NONE, false, false), VM_DEFINED);
	assert_int_equal(vm_state_after_listing(VM_RUNNING, false, false), VM_DEFINED);
	assert_int_equal(vm_state_after_listing(VM_STOPPED, false, false), VM_STOPPED);
	assert_int_equal(vm_state_after_listing(VM_MIGRATED_OUT, false, false), VM_MIGRATED_OUT);
	assert_int_equal(vm_state_after_listing(VM_UNDEFINED, false, false), VM_DEFINED);
	/* names */
	for (enum vm_state s = VM_DEFINED; s <= VM_MIGRATED_OUT; s++) {
		enum vm_state back;

		assert_int_equal(vm_state_from_name(vm_state_name(s), &back), 0);
		assert_int_equal(back, s);
	}
	{
		enum vm_state back;

		assert_int_equal(vm_state_from_name("none", &back), -EINVAL);
		assert_int_equal(vm_state_from_name("Running", &back), -EINVAL);
	}
}

/* ---- the map ---- */

static enum vm_state to(enum vm_state cur, const void *ud)
{
	(void)cur;
	return *(const enum vm_state *)ud;
}

static int put(struct vm_map *m, const char *uuid, const char *name, enum vm_state s, const char *dir)
{
	return vm_map_update(m, &(struct vm_update){ .uuid = uuid, .name = name, .set_dir = true, .dir = dir,
						     .next = to, .ud = &s },
			     NULL);
}

#define U1 "5c0ffee0-1234-4abc-8def-0123456789ab"
#define U2 "0b6f7a53-9c1e-4f0b-a8a4-3f5e6d7c8b9a"

static void test_map(void **state)
{
	char path[128];
	struct vm_map *m = NULL;
	struct vm_row *rows = NULL, row = {};
	size_t n = 0;
	enum vm_state none = VM_NONE, st;
	const uint8_t ek[] = { 1, 2, 3 }, cert[] = { 0x30, 0x00 };
	int64_t gen;

	(void)state;
	snprintf(path, sizeof(path), "%s/map.db", tmpdir);
	assert_int_equal(vm_map_open(path, &m), 0);

	/* refusals: an uppercase UUID, a bad name, a relative path, a new row without a name */
	assert_int_equal(put(m, "5C0FFEE0-1234-4abc-8def-0123456789ab", "a", VM_DEFINED, NULL), -EINVAL);
	assert_int_equal(put(m, U1, "a\nb", VM_DEFINED, NULL), -EINVAL);
	assert_int_equal(put(m, U1, "a", VM_DEFINED, "relative/dir"), -EINVAL);
	assert_int_equal(put(m, U1, NULL, VM_DEFINED, NULL), -EINVAL);
	/* next() saying nothing about an unknown VM writes nothing */
	assert_int_equal(vm_map_update(m, &(struct vm_update){ .uuid = U1, .name = "a", .next = to, .ud = &none }, &st),
			 0);
	assert_int_equal(st, VM_NONE);
	assert_int_equal(vm_map_get(m, U1, &row), -ENOENT);

	assert_int_equal(put(m, U1, "guest-01", VM_DEFINED, "/var/lib/libvirt/swtpm/" U1 "/tpm2"), 1);
	assert_int_equal(put(m, U2, "legacy", VM_RUNNING, NULL), 1);
	/* the same again: no change, nothing to report */
	assert_int_equal(put(m, U1, "guest-01", VM_DEFINED, "/var/lib/libvirt/swtpm/" U1 "/tpm2"), 0);
	assert_int_equal(vm_map_get(m, U1, &row), 0);
	assert_string_equal(row.name, "guest-01");
	assert_int_equal(row.state, VM_DEFINED);
	assert_false(row.reported);
	gen = row.gen;
	vm_row_clear(&row);

	/* reported at its generation; a change in between keeps it pending */
	assert_int_equal(put(m, U1, "guest-01", VM_RUNNING, "/var/lib/libvirt/swtpm/" U1 "/tpm2"), 1);
	assert_int_equal(vm_map_mark_reported(m, U1, gen), 0);
	assert_int_equal(vm_map_get(m, U1, &row), 0);
	assert_false(row.reported);
	assert_int_equal(row.gen, gen + 1);
	assert_int_equal(vm_map_mark_reported(m, U1, row.gen), 0);
	vm_row_clear(&row);
	assert_int_equal(vm_map_list(m, true, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].uuid, U2);
	vm_rows_free(rows, n);

	/* keep the name and the dir unless told; a rename counts as a change */
	assert_int_equal(vm_map_update(m, &(struct vm_update){ .uuid = U1, .next = to, .ud = &(enum vm_state){ VM_STOPPED } },
				       &st), 1);
	assert_int_equal(st, VM_STOPPED);
	assert_int_equal(put(m, U1, "guest-01-renamed", VM_STOPPED, "/var/lib/libvirt/swtpm/" U1 "/tpm2"), 1);
	assert_int_equal(vm_map_get(m, U1, &row), 0);
	assert_string_equal(row.vtpm_dir, "/var/lib/libvirt/swtpm/" U1 "/tpm2");
	assert_string_equal(row.name, "guest-01-renamed");
	vm_row_clear(&row);
	/* the TPM removed from the XML: the dir is cleared */
	assert_int_equal(put(m, U1, "guest-01-renamed", VM_STOPPED, NULL), 1);

	/* the EK, for inspect */
	assert_int_equal(vm_map_set_ek(m, U1, ek, sizeof(ek), NULL, 0), 0);
	assert_int_equal(vm_map_set_ek(m, U1, NULL, 0, cert, sizeof(cert)), 0);
	assert_int_equal(vm_map_set_ek(m, "00000000-0000-4000-8000-000000000000", ek, sizeof(ek), NULL, 0), -ENOENT);
	vm_map_close(m);

	/* everything survives a restart */
	assert_int_equal(vm_map_open(path, &m), 0);
	assert_int_equal(vm_map_list(m, false, &rows, &n), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(rows[i].uuid, U1) == 0) {
			assert_string_equal(rows[i].name, "guest-01-renamed");
			assert_int_equal(rows[i].state, VM_STOPPED);
			assert_null(rows[i].vtpm_dir);
			assert_int_equal(rows[i].ek_pub_len, sizeof(ek));
			assert_memory_equal(rows[i].ek_pub, ek, sizeof(ek));
			assert_int_equal(rows[i].ek_cert_len, sizeof(cert));
			assert_false(rows[i].reported);
		} else {
			assert_string_equal(rows[i].uuid, U2);
			assert_string_equal(rows[i].name, "legacy");
			assert_int_equal(rows[i].state, VM_RUNNING);
		}
	}
	{
		struct json_object *o = vm_row_to_json(&rows[0]);
		struct json_object *req = vm_report_request(&rows[1]);

		assert_non_null(o);
		assert_non_null(req);
		assert_string_equal(jstr(req, "op"), "vm");
		assert_string_equal(jstr(req, "vm_uuid"), rows[1].uuid);
		assert_string_equal(jstr(req, "state"), vm_state_name(rows[1].state));
		json_object_put(o);
		json_object_put(req);
	}
	vm_rows_free(rows, n);
	vm_map_close(m);
}

/* ---- reporting ---- */

struct sink {
	int calls;
	bool refuse;
	char last[256];
};

static struct json_object *sink_handler(const struct local_request *req, void *ud)
{
	struct sink *s = ud;
	struct json_object *ans;

	s->calls++;
	snprintf(s->last, sizeof(s->last), "%s", json_object_to_json_string_ext(req->body, JSON_C_TO_STRING_PLAIN));
	if (s->refuse)
		return local_error("bad_request", "no");
	ans = json_object_new_object();
	json_object_object_add(ans, "ok", json_object_new_boolean(true));
	return ans;
}

static void test_report(void **state)
{
	char path[128], sock[128];
	struct vm_map *m = NULL;
	struct local_server *srv = NULL;
	struct sink sink = {};
	struct vm_row row = {};
	bool down = false;

	(void)state;
	snprintf(path, sizeof(path), "%s/report.db", tmpdir);
	snprintf(sock, sizeof(sock), "%s/agent.sock", tmpdir);
	assert_int_equal(vm_map_open(path, &m), 0);
	assert_int_equal(put(m, U1, "guest-01", VM_RUNNING, "/var/lib/libvirt/swtpm/" U1 "/tpm2"), 1);
	assert_int_equal(put(m, U2, "legacy", VM_DEFINED, NULL), 1);

	/* nobody listens: both wait */
	assert_int_equal(vm_report_pending(m, sock, &down), 2);
	assert_true(down);
	/* a host agent that refuses: still pending, and both were tried */
	assert_int_equal(local_server_start(sock, sink_handler, &sink, &srv), 0);
	sink.refuse = true;
	assert_int_equal(vm_report_pending(m, sock, &down), 2);
	assert_int_equal(sink.calls, 2);
	/* it accepts: both reported, in order */
	sink.refuse = false;
	assert_int_equal(vm_report_pending(m, sock, &down), 0);
	assert_false(down);
	assert_int_equal(sink.calls, 4);
	assert_string_equal(sink.last, "{\"op\":\"vm\",\"vm_uuid\":\"" U2 "\",\"name\":\"legacy\",\"state\":\"defined\"}");
	assert_int_equal(vm_map_get(m, U1, &row), 0);
	assert_true(row.reported);
	vm_row_clear(&row);
	/* nothing left: nothing sent */
	assert_int_equal(vm_report_pending(m, sock, &down), 0);
	assert_int_equal(sink.calls, 4);
	assert_int_equal(put(m, U1, "guest-01", VM_STOPPED, "/var/lib/libvirt/swtpm/" U1 "/tpm2"), 1);
	assert_int_equal(vm_report_pending(m, sock, &down), 0);
	assert_string_equal(sink.last, "{\"op\":\"vm\",\"vm_uuid\":\"" U1 "\",\"name\":\"guest-01\",\"state\":\"stopped\","
				       "\"vtpm_dir\":\"\\/var\\/lib\\/libvirt\\/swtpm\\/" U1 "\\/tpm2\"}");
	local_server_stop(srv);
	vm_map_close(m);
}

/* ---- config ---- */

static void test_config(void **state)
{
	char path[128];
	struct vtpm_config cfg;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/vtpm-mgr.conf", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("[libvirt]\nuri = test:///default\n[vtpm-mgr]\ndatabase = map.db\nretry_interval = 2\n"
	      "[host-agent]\nsocket = /tmp/x.sock\n[log]\nlevel = warn\n", f);
	fclose(f);
	assert_int_equal(vtpm_config_load(path, &cfg), 0);
	assert_string_equal(cfg.uri, "test:///default");
	/* relative to the config file's directory */
	assert_non_null(strstr(cfg.database, "/map.db"));
	assert_int_equal(cfg.database[0], '/');
	assert_string_equal(cfg.swtpm_dir, "/var/lib/libvirt/swtpm");
	assert_int_equal(cfg.retry_interval, 2);
	assert_string_equal(cfg.socket, "/tmp/x.sock");
	vtpm_config_free(&cfg);

	f = fopen(path, "w");
	assert_non_null(f);
	fputs("[vtpm-mgr]\nretry_interval = 0\n", f);
	fclose(f);
	assert_int_equal(vtpm_config_load(path, &cfg), -EINVAL);
	vtpm_config_free(&cfg);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("[vtpm-mgr]\ndatabse = typo\n", f);
	fclose(f);
	assert_int_equal(vtpm_config_load(path, &cfg), -EINVAL);
	vtpm_config_free(&cfg);
	/* a file named explicitly must exist */
	snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
	assert_int_equal(vtpm_config_load(path, &cfg), -ENOENT);
	vtpm_config_free(&cfg);
	log_setup(LOG_ERROR, false);
}

static int setup(void **state)
{
	(void)state;
	xmlInitParser();
	log_setup(LOG_ERROR, false);
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[64];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_golden),
		cmocka_unit_test(test_parse_variants),
		cmocka_unit_test(test_parse_hostile),
		cmocka_unit_test(test_add_tpm),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_hook_ops),
		cmocka_unit_test(test_map),
		cmocka_unit_test(test_report),
		cmocka_unit_test(test_config),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
