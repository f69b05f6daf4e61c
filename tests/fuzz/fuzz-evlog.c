/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for lib/evlog: parse, replay, and walk everything decoded
 * (strings, device paths, signature lists), so out-of-bounds reads anywhere in
 * the decoders show up under ASan.
 */
#include <string.h>

#include "evlog/evlog.h"
#include "fuzz.h"

static volatile size_t sink;

static void touch(const char *s)
{
	if (s)
		sink += strlen(s);
}

static void touch_bytes(const uint8_t *p, size_t n)
{
	size_t x = 0;

	for (size_t i = 0; i < n; i++)
		x += p[i];
	sink += x;
}

static void walk_event(const struct evlog *log, const struct evlog_event *ev)
{
	const struct evlog_decoded *d = &ev->dec;

	for (size_t b = 0; b < evlog_n_banks(log); b++)
		if (ev->digests[b])
			touch_bytes(ev->digests[b], evlog_bank_digest_size(log, b));
	touch_bytes(ev->data, ev->data_len);
	if (ev->verify == EVLOG_VERIFY_OK)
		touch_bytes(ev->measured, ev->measured_len);
	touch(d->error);
	touch(evlog_event_type_name(ev->type));
	switch (d->kind) {
	case EVLOG_KIND_STRING:
		touch(d->string);
		break;
	case EVLOG_KIND_EFI_VARIABLE: {
		struct evlog_siglist_iter it;
		struct evlog_efi_signature sig;

		touch(d->var.name);
		touch_bytes(d->var.data, d->var.data_len);
		if (d->var.has_load_option) {
			touch(d->var.load_option.description);
			touch(d->var.load_option.device_path);
			touch(d->var.load_option.file_path);
			touch_bytes(d->var.load_option.optional_data, d->var.load_option.optional_data_len);
		}
		evlog_siglist_init(&it, d->var.data, d->var.data_len);
		while (evlog_siglist_next(&it, &sig) > 0)
			touch_bytes(sig.data, sig.data_len);
		break;
	}
	case EVLOG_KIND_IMAGE_LOAD:
		touch(d->image.device_path_text);
		touch(d->image.file_path);
		touch_bytes(d->image.device_path, d->image.device_path_len);
		break;
	case EVLOG_KIND_FIRMWARE_BLOB:
		touch(d->blob.description);
		break;
	case EVLOG_KIND_GPT:
		for (size_t i = 0; i < d->gpt.n_partitions; i++)
			touch(d->gpt.partitions[i].name);
		break;
	case EVLOG_KIND_HANDOFF_TABLES:
		touch(d->handoff.description);
		for (size_t i = 0; i < d->handoff.n_tables; i++)
			sink += d->handoff.tables[i].table;
		break;
	case EVLOG_KIND_TAGGED:
		touch_bytes(d->tagged.data, d->tagged.data_len);
		break;
	case EVLOG_KIND_SPEC_ID:
		touch_bytes(d->spec_id.vendor_info, d->spec_id.vendor_info_len);
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evlog *log = NULL;
	struct evlog_replay rp;

	/* the raw device path and signature list decoders, over the input itself */
	{
		char *text = NULL, *file = NULL;
		struct evlog_siglist_iter it;
		struct evlog_efi_signature sig;

		if (evlog_devpath_to_text(data, size, &text, &file) == 0) {
			touch(text);
			touch(file);
			free(text);
			free(file);
		}
		evlog_siglist_init(&it, data, size);
		while (evlog_siglist_next(&it, &sig) > 0)
			touch_bytes(sig.data, sig.data_len);
	}

	if (evlog_parse(data, size, &log) < 0)
		return 0;
	for (size_t i = 0; i < evlog_n_events(log); i++)
		walk_event(log, evlog_event(log, i));
	if (evlog_replay(log, &rp) == 0)
		for (size_t b = 0; b < rp.n_banks; b++)
			touch_bytes(rp.banks[b].pcrs[0], rp.banks[b].digest_size);
	evlog_free(log);
	return 0;
}
