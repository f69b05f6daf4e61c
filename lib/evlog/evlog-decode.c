/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/evlog: decoding event data by event type. The data is hostile and the
 * type is only a claim: every structure is read with bounds-checked cursors,
 * and data that does not fit its type's format becomes EVLOG_KIND_MALFORMED
 * with a reason, never a parse failure (its digests still replay).
 */
#include <stdio.h>
#include <string.h>

#include "evlog/evlog-priv.h"
#include "util/util.h"

/* Copies a finished strbuf into the arena as a C string; NULL on ENOMEM. */
static const char *sb_to_arena(struct arena *a, const struct strbuf *sb)
{
	char *s = arena_alloc(a, sb->len + 1);

	if (s && sb->len)
		memcpy(s, sb->s, sb->len);
	return s;
}

static int set_error(struct arena *a, struct evlog_decoded *dec, bool malformed, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int set_error(struct arena *a, struct evlog_decoded *dec, bool malformed, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dec->error = arena_memdup(a, msg, strlen(msg) + 1);
	if (!dec->error)
		return -ENOMEM;
	if (malformed) {
		enum evlog_kind k = EVLOG_KIND_MALFORMED;
		const char *e = dec->error;

		memset(dec, 0, sizeof(*dec));
		dec->kind = k;
		dec->error = e;
	}
	return 0;
}

/* Maps a failed strbuf to a decode error (or -ENOMEM). */
static int sb_failed(struct arena *a, struct evlog_decoded *dec, const struct strbuf *sb, const char *what)
{
	if (sb->err == -ENOMEM)
		return -ENOMEM;
	return set_error(a, dec, true, "%s longer than %u bytes as text", what, EVLOG_MAX_TEXT);
}

static bool is_ctrl(uint32_t c)
{
	return (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f;
}

/*
 * Whether p[0..n) is text, and how to read it: 1 = UTF-8/ASCII, 2 = UTF-16LE
 * (only if allow_utf16). *ret_n gets the length without trailing NULs (bytes
 * for UTF-8, code units for UTF-16). Text has no control characters except
 * tab/newline/CR and no NUL except at the end.
 */
static int text_kind(const uint8_t *p, size_t n, bool allow_utf16, size_t *ret_n)
{
	size_t m;

	if (allow_utf16 && n >= 2 && p[1] == 0 && p[0] != 0 && (n % 2 == 0 || p[n - 1] == 0)) {
		size_t units = n / 2, end;

		for (end = 0; end < units; end++) {
			uint32_t u = (uint32_t)p[2 * end] | (uint32_t)p[2 * end + 1] << 8;

			if (u == 0)
				break;
			if (is_ctrl(u))
				return 0;
		}
		for (size_t i = end; i < units; i++)
			if (p[2 * i] || p[2 * i + 1])
				return 0;
		*ret_n = end;
		return 2;
	}
	m = n;
	while (m > 0 && p[m - 1] == 0)
		m--;
	for (size_t i = 0; i < m; i++)
		if (is_ctrl(p[i]))
			return 0;
	/* valid UTF-8 only: anything else is more likely binary than text */
	for (size_t i = 0; i < m;) {
		size_t k;

		if (p[i] < 0x80) {
			i++;
			continue;
		}
		k = p[i] >= 0xc2 && p[i] <= 0xdf ? 2 : p[i] >= 0xe0 && p[i] <= 0xef ? 3
			: p[i] >= 0xf0 && p[i] <= 0xf4 ? 4 : 0;
		if (!k || m - i < k)
			return 0;
		for (size_t j = 1; j < k; j++)
			if ((p[i + j] & 0xc0) != 0x80)
				return 0;
		i += k;
	}
	*ret_n = m;
	return 1;
}

/* Decodes data as EVLOG_KIND_STRING if it is text; returns 1 if it did, 0 if not text. */
static int try_string(struct arena *a, struct evlog_event *ev, bool allow_utf16)
{
	struct strbuf sb = { 0 };
	size_t n;
	int k = text_kind(ev->data, ev->data_len, allow_utf16, &n), r = 1;

	if (!k)
		return 0;
	if (k == 2)
		sb_utf16(&sb, ev->data, n);
	else
		sb_utf8(&sb, ev->data, n);
	sb_add(&sb, "", 0);
	if (sb.err) {
		r = sb_failed(a, &ev->dec, &sb, "string");
		r = r < 0 ? r : 1;
		goto out;
	}
	ev->dec.kind = EVLOG_KIND_STRING;
	ev->dec.string = sb_to_arena(a, &sb);
	if (!ev->dec.string)
		r = -ENOMEM;
out:
	sb_done(&sb);
	return r;
}

static int decode_string(struct arena *a, struct evlog_event *ev, bool allow_utf16, bool required)
{
	int r = try_string(a, ev, allow_utf16);

	if (r != 0)
		return r < 0 ? r : 0;
	if (required)
		return set_error(a, &ev->dec, true, "data is not a text string");
	return 0;
}

static int decode_blob(struct arena *a, struct evlog_event *ev)
{
	struct kq_cur c = kq_cur_init(ev->data, ev->data_len);

	if (ev->data_len != 16)
		return set_error(a, &ev->dec, true, "UEFI_PLATFORM_FIRMWARE_BLOB is %zu bytes, not 16", ev->data_len);
	(void)kq_cur_u64le(&c, &ev->dec.blob.base);
	(void)kq_cur_u64le(&c, &ev->dec.blob.length);
	ev->dec.kind = EVLOG_KIND_FIRMWARE_BLOB;
	return 0;
}

/* A one-byte-length-prefixed ASCII description (BLOB2, HANDOFF_TABLES2). */
static int read_description(struct arena *a, struct kq_cur *c, const char **ret)
{
	struct strbuf sb = { 0 };
	const uint8_t *p;
	uint8_t n;
	int r = 0;

	if (kq_cur_u8(c, &n) < 0 || kq_cur_bytes(c, n, &p) < 0)
		return -EBADMSG;
	sb_utf8(&sb, p, strnlen((const char *)p, n));
	sb_add(&sb, "", 0);
	if (sb.err)
		r = -ENOMEM; /* 255 bytes cannot exceed the text limit */
	else if (!(*ret = sb_to_arena(a, &sb)))
		r = -ENOMEM;
	sb_done(&sb);
	return r;
}

static int decode_blob2(struct arena *a, struct evlog_event *ev)
{
	struct kq_cur c = kq_cur_init(ev->data, ev->data_len);
	struct evlog_firmware_blob b = { 0 };
	int r = read_description(a, &c, &b.description);

	if (r == -ENOMEM)
		return r;
	if (r < 0 || kq_cur_u64le(&c, &b.base) < 0 || kq_cur_u64le(&c, &b.length) < 0)
		return set_error(a, &ev->dec, true, "UEFI_PLATFORM_FIRMWARE_BLOB2 truncated");
	if (kq_cur_left(&c))
		return set_error(a, &ev->dec, true, "%zu bytes follow UEFI_PLATFORM_FIRMWARE_BLOB2",
				 kq_cur_left(&c));
	ev->dec.kind = EVLOG_KIND_FIRMWARE_BLOB;
	ev->dec.blob = b;
	return 0;
}

/* EV_POST_CODE, EV_S_CRTM_CONTENTS: a name string, or a firmware blob. */
static int decode_string_or_blob(struct arena *a, struct evlog_event *ev)
{
	int r = try_string(a, ev, false);

	if (r != 0)
		return r < 0 ? r : 0;
	if (ev->data_len == 16)
		return decode_blob(a, ev);
	return 0; /* neither: raw */
}

static int decode_load_option(struct arena *a, struct evlog_efi_variable *v)
{
	struct kq_cur c = kq_cur_init(v->data, v->data_len);
	struct evlog_load_option lo = { 0 };
	struct strbuf desc = { 0 }, text = { 0 }, file = { 0 };
	const uint8_t *d, *fpl;
	uint16_t fpl_len;
	size_t units = 0;
	int r = 0;

	if (kq_cur_u32le(&c, &lo.attributes) < 0 || kq_cur_u16le(&c, &fpl_len) < 0)
		return 0;
	/* the description: UTF-16, NUL-terminated, inside the data */
	d = c.buf + c.off;
	for (;;) {
		uint16_t u;

		if (kq_cur_u16le(&c, &u) < 0)
			return 0;
		if (u == 0)
			break;
		units++;
	}
	if (kq_cur_bytes(&c, fpl_len, &fpl) < 0)
		return 0;
	lo.optional_data = c.buf + c.off;
	lo.optional_data_len = kq_cur_left(&c);

	sb_utf16(&desc, d, units);
	sb_add(&desc, "", 0);
	if (desc.err) {
		r = desc.err == -ENOMEM ? -ENOMEM : 0;
		goto out;
	}
	if (!(lo.description = sb_to_arena(a, &desc))) {
		r = -ENOMEM;
		goto out;
	}
	if (devpath_decode(fpl, fpl_len, &text, &file) == 0) {
		sb_add(&text, "", 0);
		if (text.err || file.err) {
			r = -ENOMEM;
			goto out;
		}
		lo.device_path = sb_to_arena(a, &text);
		lo.file_path = file.len ? sb_to_arena(a, &file) : NULL;
		if (!lo.device_path || (file.len && !lo.file_path)) {
			r = -ENOMEM;
			goto out;
		}
	} else if (text.err == -ENOMEM || file.err == -ENOMEM) {
		r = -ENOMEM;
		goto out;
	}
	v->load_option = lo;
	v->has_load_option = true;
out:
	sb_done(&desc);
	sb_done(&text);
	sb_done(&file);
	return r;
}

static bool is_load_option_name(const char *name)
{
	static const char *const prefixes[] = { "Boot", "Driver", "SysPrep", "PlatformRecovery" };

	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
		size_t n = strlen(prefixes[i]);

		if (strncmp(name, prefixes[i], n) == 0 && strlen(name + n) == 4 &&
		    strspn(name + n, "0123456789ABCDEFabcdef") == 4)
			return true;
	}
	return false;
}

static int decode_variable(struct arena *a, struct evlog_event *ev)
{
	struct kq_cur c = kq_cur_init(ev->data, ev->data_len);
	struct evlog_efi_variable v = { 0 };
	struct strbuf name = { 0 };
	uint64_t name_units, data_len;
	const uint8_t *np;
	int r = 0;

	if (kq_cur_copy(&c, v.guid, 16) < 0 || kq_cur_u64le(&c, &name_units) < 0 ||
	    kq_cur_u64le(&c, &data_len) < 0)
		return set_error(a, &ev->dec, true, "UEFI_VARIABLE_DATA header truncated (%zu bytes)",
				 ev->data_len);
	if (name_units > kq_cur_left(&c) / 2)
		return set_error(a, &ev->dec, true, "variable name of %llu characters overruns the event",
				 (unsigned long long)name_units);
	(void)kq_cur_bytes(&c, (size_t)name_units * 2, &np);
	if (data_len > kq_cur_left(&c))
		return set_error(a, &ev->dec, true, "variable data of %llu bytes overruns the event (%zu left)",
				 (unsigned long long)data_len, kq_cur_left(&c));
	(void)kq_cur_bytes(&c, (size_t)data_len, &v.data);
	v.data_len = (size_t)data_len;

	sb_utf16(&name, np, (size_t)name_units);
	sb_add(&name, "", 0);
	if (name.err) {
		r = sb_failed(a, &ev->dec, &name, "variable name");
		goto out;
	}
	if (!(v.name = sb_to_arena(a, &name))) {
		r = -ENOMEM;
		goto out;
	}
	if (memcmp(v.guid, EVLOG_GUID_EFI_GLOBAL_VARIABLE, 16) == 0 && is_load_option_name(v.name)) {
		r = decode_load_option(a, &v);
		if (r < 0)
			goto out;
	}
	ev->dec.kind = EVLOG_KIND_EFI_VARIABLE;
	ev->dec.var = v;
	if (kq_cur_left(&c))
		r = set_error(a, &ev->dec, false, "%zu bytes follow the UEFI_VARIABLE_DATA", kq_cur_left(&c));
out:
	sb_done(&name);
	return r;
}

static int decode_image_load(struct arena *a, struct evlog_event *ev)
{
	struct kq_cur c = kq_cur_init(ev->data, ev->data_len);
	struct evlog_image_load im = { 0 };
	struct strbuf text = { 0 }, file = { 0 };
	uint64_t dp_len;
	int r = 0;

	if (kq_cur_u64le(&c, &im.location) < 0 || kq_cur_u64le(&c, &im.length) < 0 ||
	    kq_cur_u64le(&c, &im.link_time_address) < 0 || kq_cur_u64le(&c, &dp_len) < 0)
		return set_error(a, &ev->dec, true, "UEFI_IMAGE_LOAD_EVENT truncated (%zu bytes)", ev->data_len);
	if (dp_len > kq_cur_left(&c))
		return set_error(a, &ev->dec, true, "device path of %llu bytes overruns the event (%zu left)",
				 (unsigned long long)dp_len, kq_cur_left(&c));
	(void)kq_cur_bytes(&c, (size_t)dp_len, &im.device_path);
	im.device_path_len = (size_t)dp_len;
	ev->dec.kind = EVLOG_KIND_IMAGE_LOAD;

	if (devpath_decode(im.device_path, im.device_path_len, &text, &file) < 0) {
		if (text.err == -ENOMEM || file.err == -ENOMEM) {
			r = -ENOMEM;
			goto out;
		}
		ev->dec.image = im;
		r = set_error(a, &ev->dec, false, "device path: %s", kq_errmsg());
		goto out;
	}
	sb_add(&text, "", 0);
	if (text.err) {
		r = -ENOMEM;
		goto out;
	}
	im.device_path_text = sb_to_arena(a, &text);
	im.file_path = file.len ? sb_to_arena(a, &file) : NULL;
	if (!im.device_path_text || (file.len && !im.file_path)) {
		r = -ENOMEM;
		goto out;
	}
	ev->dec.image = im;
	/* some firmware pads the event; the padding is harmless but worth a note */
	if (kq_cur_left(&c))
		r = set_error(a, &ev->dec, false, "%zu bytes follow the device path", kq_cur_left(&c));
out:
	sb_done(&text);
	sb_done(&file);
	return r;
}

#define GPT_HEADER_SIZE 92u
#define GPT_MIN_ENTRY 128u

static int decode_gpt(struct arena *a, struct evlog_event *ev)
{
	struct kq_cur c = kq_cur_init(ev->data, ev->data_len);
	struct evlog_gpt g = { 0 };
	struct evlog_gpt_partition *parts;
	uint64_t sig, n_parts;
	uint32_t hsize, u32, n_entries, entry_size;
	const uint8_t *p;
	int r = 0;

	if (kq_cur_bytes(&c, GPT_HEADER_SIZE, &p) < 0 || kq_cur_u64le(&c, &n_parts) < 0)
		return set_error(a, &ev->dec, true, "UEFI_GPT_DATA truncated (%zu bytes)", ev->data_len);
	{
		struct kq_cur h = kq_cur_init(p, GPT_HEADER_SIZE);

		(void)kq_cur_u64le(&h, &sig);
		(void)kq_cur_u32le(&h, &g.revision);
		(void)kq_cur_u32le(&h, &hsize);
		(void)kq_cur_u32le(&h, &u32); /* header CRC */
		(void)kq_cur_u32le(&h, &u32); /* reserved */
		(void)kq_cur_u64le(&h, &g.my_lba);
		(void)kq_cur_u64le(&h, &g.alternate_lba);
		(void)kq_cur_u64le(&h, &g.first_usable_lba);
		(void)kq_cur_u64le(&h, &g.last_usable_lba);
		(void)kq_cur_copy(&h, g.disk_guid, 16);
		(void)kq_cur_skip(&h, 8); /* partition entry LBA */
		(void)kq_cur_u32le(&h, &n_entries);
		(void)kq_cur_u32le(&h, &entry_size);
	}
	if (memcmp(p, "EFI PART", 8) != 0)
		return set_error(a, &ev->dec, true, "GPT header signature is not \"EFI PART\"");
	if (entry_size < GPT_MIN_ENTRY)
		return set_error(a, &ev->dec, true, "GPT partition entry size %u is below %u", entry_size,
				 GPT_MIN_ENTRY);
	if (n_parts > kq_cur_left(&c) / entry_size)
		return set_error(a, &ev->dec, true, "%llu GPT partitions of %u bytes overrun the event",
				 (unsigned long long)n_parts, entry_size);
	parts = arena_alloc(a, (size_t)n_parts * sizeof(*parts));
	if (!parts)
		return -ENOMEM;
	for (size_t i = 0; i < n_parts; i++) {
		struct kq_cur e;
		struct strbuf name = { 0 };
		const uint8_t *np;

		(void)kq_cur_bytes(&c, entry_size, &p);
		e = kq_cur_init(p, entry_size);
		(void)kq_cur_copy(&e, parts[i].type_guid, 16);
		(void)kq_cur_copy(&e, parts[i].unique_guid, 16);
		(void)kq_cur_u64le(&e, &parts[i].start_lba);
		(void)kq_cur_u64le(&e, &parts[i].end_lba);
		(void)kq_cur_u64le(&e, &parts[i].attributes);
		(void)kq_cur_bytes(&e, 72, &np);
		sb_utf16(&name, np, 36);
		sb_add(&name, "", 0);
		parts[i].name = name.err ? NULL : sb_to_arena(a, &name);
		sb_done(&name);
		if (!parts[i].name)
			return -ENOMEM;
	}
	g.n_partitions = (size_t)n_parts;
	g.partitions = parts;
	ev->dec.kind = EVLOG_KIND_GPT;
	ev->dec.gpt = g;
	if (kq_cur_left(&c))
		r = set_error(a, &ev->dec, false, "%zu bytes follow the GPT partitions", kq_cur_left(&c));
	return r;
}

static int decode_handoff(struct arena *a, struct evlog_event *ev, bool v2)
{
	struct kq_cur c = kq_cur_init(ev->data, ev->data_len);
	struct evlog_handoff_tables h = { 0 };
	struct evlog_handoff_table *t;
	uint64_t n;
	int r;

	if (v2) {
		r = read_description(a, &c, &h.description);
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			return set_error(a, &ev->dec, true, "UEFI_HANDOFF_TABLE_POINTERS2 truncated");
	}
	if (kq_cur_u64le(&c, &n) < 0)
		return set_error(a, &ev->dec, true, "UEFI_HANDOFF_TABLE_POINTERS truncated");
	if (n > kq_cur_left(&c) / 24)
		return set_error(a, &ev->dec, true, "%llu handoff tables overrun the event",
				 (unsigned long long)n);
	t = arena_alloc(a, (size_t)n * sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		(void)kq_cur_copy(&c, t[i].guid, 16);
		(void)kq_cur_u64le(&c, &t[i].table);
	}
	h.n_tables = (size_t)n;
	h.tables = t;
	ev->dec.kind = EVLOG_KIND_HANDOFF_TABLES;
	ev->dec.handoff = h;
	if (kq_cur_left(&c))
		return set_error(a, &ev->dec, false, "%zu bytes follow the handoff tables", kq_cur_left(&c));
	return 0;
}

static int decode_tagged(struct arena *a, struct evlog_event *ev)
{
	struct kq_cur c = kq_cur_init(ev->data, ev->data_len);
	struct evlog_tagged t = { 0 };
	uint32_t n;

	if (kq_cur_u32le(&c, &t.id) < 0 || kq_cur_u32le(&c, &n) < 0)
		return set_error(a, &ev->dec, true, "TCG_PCClientTaggedEvent truncated");
	if (n != kq_cur_left(&c))
		return set_error(a, &ev->dec, true, "tagged event says %u data bytes, the event has %zu", n,
				 kq_cur_left(&c));
	(void)kq_cur_bytes(&c, n, &t.data);
	t.data_len = n;
	ev->dec.kind = EVLOG_KIND_TAGGED;
	ev->dec.tagged = t;
	return 0;
}

static const char startup_locality_sig[16] = "StartupLocality";

static int decode_no_action(struct arena *a, struct evlog_event *ev)
{
	if (ev->data_len >= 16 && memcmp(ev->data, startup_locality_sig, 16) == 0) {
		if (ev->data_len != 17)
			return set_error(a, &ev->dec, true, "StartupLocality event of %zu bytes, not 17",
					 ev->data_len);
		ev->dec.kind = EVLOG_KIND_STARTUP_LOCALITY;
		ev->dec.startup_locality = ev->data[16];
		return 0;
	}
	/* other EV_NO_ACTION payloads (SP800-155 reference manifests, NV index
	 * records, TCG 1.2 "Spec ID Event00" headers) are binary: left raw unless text */
	return decode_string(a, ev, false, false);
}

int evlog_decode_event(struct arena *a, struct evlog_event *ev)
{
	switch (ev->type) {
	case EVLOG_EV_NO_ACTION:
		return decode_no_action(a, ev);
	case EVLOG_EV_SEPARATOR: {
		struct kq_cur c = kq_cur_init(ev->data, ev->data_len);

		if (ev->data_len != 4 || kq_cur_u32le(&c, &ev->dec.separator) < 0)
			return set_error(a, &ev->dec, true, "separator of %zu bytes, not 4", ev->data_len);
		ev->dec.kind = EVLOG_KIND_SEPARATOR;
		return 0;
	}
	case EVLOG_EV_ACTION:
	case EVLOG_EV_EFI_ACTION:
		return decode_string(a, ev, false, true);
	case EVLOG_EV_S_CRTM_VERSION:
		/* a UCS-2 string, or (some firmware) a binary version GUID: raw */
		return decode_string(a, ev, true, false);
	case EVLOG_EV_IPL:
		/* loader-defined: GRUB logs ASCII, systemd-boot UTF-16; else raw */
		return decode_string(a, ev, true, false);
	case EVLOG_EV_POST_CODE:
	case EVLOG_EV_S_CRTM_CONTENTS:
		return decode_string_or_blob(a, ev);
	case EVLOG_EV_PLATFORM_CONFIG_FLAGS:
	case EVLOG_EV_TABLE_OF_DEVICES:
	case EVLOG_EV_COMPACT_HASH:
	case EVLOG_EV_NONHOST_INFO:
	case EVLOG_EV_NONHOST_CONFIG:
	case EVLOG_EV_OMIT_BOOT_DEVICE_EVENTS:
	case EVLOG_EV_EFI_HCRTM_EVENT:
		return decode_string(a, ev, false, false);
	case EVLOG_EV_EVENT_TAG:
		return decode_tagged(a, ev);
	case EVLOG_EV_EFI_VARIABLE_DRIVER_CONFIG:
	case EVLOG_EV_EFI_VARIABLE_BOOT:
	case EVLOG_EV_EFI_VARIABLE_BOOT2:
	case EVLOG_EV_EFI_VARIABLE_AUTHORITY:
		return decode_variable(a, ev);
	case EVLOG_EV_EFI_BOOT_SERVICES_APPLICATION:
	case EVLOG_EV_EFI_BOOT_SERVICES_DRIVER:
	case EVLOG_EV_EFI_RUNTIME_SERVICES_DRIVER:
		return decode_image_load(a, ev);
	case EVLOG_EV_EFI_PLATFORM_FIRMWARE_BLOB:
		return decode_blob(a, ev);
	case EVLOG_EV_EFI_PLATFORM_FIRMWARE_BLOB2:
		return decode_blob2(a, ev);
	case EVLOG_EV_EFI_GPT_EVENT:
		return decode_gpt(a, ev);
	case EVLOG_EV_EFI_HANDOFF_TABLES:
		return decode_handoff(a, ev, false);
	case EVLOG_EV_EFI_HANDOFF_TABLES2:
		return decode_handoff(a, ev, true);
	}
	return 0;
}

/* ---- EFI_SIGNATURE_LIST ---- */

void evlog_siglist_init(struct evlog_siglist_iter *it, const uint8_t *buf, size_t len)
{
	*it = (struct evlog_siglist_iter){ .buf = buf, .len = len };
}

int evlog_siglist_next(struct evlog_siglist_iter *it, struct evlog_efi_signature *ret)
{
	struct kq_cur c = { .buf = it->buf, .len = it->len, .off = it->off };

	/* skip lists with no (more) signatures */
	while (c.off >= it->list_end) {
		uint32_t list_size, header_size, sig_size;

		if (kq_cur_left(&c) == 0)
			return 0;
		if (kq_cur_copy(&c, it->type, 16) < 0 || kq_cur_u32le(&c, &list_size) < 0 ||
		    kq_cur_u32le(&c, &header_size) < 0 || kq_cur_u32le(&c, &sig_size) < 0)
			return kq_err(-EBADMSG, "EFI_SIGNATURE_LIST header truncated at offset %zu", it->off);
		/* 28 = the list header read above */
		if (list_size < 28 || list_size - 28 > it->len - it->off - 28)
			return kq_err(-EBADMSG, "EFI_SIGNATURE_LIST at offset %zu: size %u does not fit", it->off,
				      list_size);
		if (header_size > list_size - 28 || sig_size < 16 ||
		    (list_size - 28 - header_size) % sig_size != 0)
			return kq_err(-EBADMSG, "EFI_SIGNATURE_LIST at offset %zu: sizes do not add up "
				      "(list %u, header %u, signature %u)", it->off, list_size, header_size,
				      sig_size);
		(void)kq_cur_skip(&c, header_size);
		it->list_end = it->off + list_size;
		it->sig_size = sig_size;
		it->off = c.off;
	}
	memcpy(ret->type, it->type, 16);
	memcpy(ret->owner, it->buf + it->off, 16);
	ret->data = it->buf + it->off + 16;
	ret->data_len = it->sig_size - 16;
	it->off += it->sig_size;
	return 1;
}
