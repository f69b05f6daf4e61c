/* SPDX-License-Identifier: Apache-2.0 */
/* kumquat eventlog replay|show: offline tools over a UEFI event log. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "evlog/evlog.h"

static const char usage_text[] =
	"usage: kumquat eventlog replay FILE [--json] [--strict]\n"
	"       kumquat eventlog show FILE [--json]\n"
	"\n"
	"Reads a TCG PC Client UEFI event log (binary_bios_measurements; '-' is stdin),\n"
	"SHA-1 or crypto-agile format.\n"
	"\n"
	"  replay   replay the log into final PCR values for every bank, and list the\n"
	"           events whose digest must be the hash of their data but is not\n"
	"  show     decode every event: PCR, type, digests, whether the digests were\n"
	"           checked against the data, and the decoded data\n"
	"\n"
	"options:\n"
	"  --json     machine-readable output\n"
	"  --strict   (replay) mismatched events make the evidence invalid (exit 1)\n"
	"  --help     this text\n"
	"\n"
	"exit status: 0 success, 1 evidence invalid (the log does not parse, or\n"
	"mismatches with --strict), 2 usage error or unreadable file\n";

struct opts {
	const char *file;
	bool json, strict;
};

static const char *type_name(uint32_t type, char buf[11])
{
	const char *n = evlog_event_type_name(type);

	if (n)
		return n;
	snprintf(buf, 11, "0x%08" PRIx32, type);
	return buf;
}

static const char *bank_name(uint16_t alg, char buf[7])
{
	const char *n = kq_hash_name(alg);

	if (n)
		return n;
	snprintf(buf, 7, "0x%04x", alg);
	return buf;
}

static const char *form_name(enum evlog_form f)
{
	switch (f) {
	case EVLOG_FORM_FULL: return "event-data";
	case EVLOG_FORM_VAR_DATA: return "variable-data";
	case EVLOG_FORM_SHIM_EXTRA_BYTE: return "event-data-but-last-byte";
	case EVLOG_FORM_IPL_STRING: return "ipl-text";
	case EVLOG_FORM_NONE: break;
	}
	return "none";
}

/*
 * Text from the log, printed with control characters escaped (it is hostile);
 * inside quotes, backslashes and quotes are escaped too.
 */
static void print_text(FILE *f, const char *s, bool quoted)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '\n')
			fputs("\\n", f);
		else if (ch == '\t')
			fputs("\\t", f);
		else if (quoted && (ch == '\\' || ch == '"'))
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\x%02x", ch);
		else
			fputc(ch, f);
	}
}

static void print_escaped(FILE *f, const char *s)
{
	print_text(f, s, true);
}

static void print_plain(FILE *f, const char *s)
{
	print_text(f, s, false);
}

static void print_hex(FILE *f, const uint8_t *p, size_t n, size_t max)
{
	for (size_t i = 0; i < n && i < max; i++)
		fprintf(f, "%02x", p[i]);
	if (n > max)
		fprintf(f, "... (%zu bytes)", n);
}

static int json_add(struct json_object *o, const char *key, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

/* json-c represents JSON null as a NULL object */
static int json_add_null(struct json_object *o, const char *key)
{
	return json_object_object_add(o, key, NULL) < 0 ? -ENOMEM : 0;
}

static int json_add_str_or_null(struct json_object *o, const char *key, const char *s)
{
	return s ? json_add(o, key, json_object_new_string(s)) : json_add_null(o, key);
}

static struct json_object *json_u64hex(uint64_t v)
{
	char buf[19];

	snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
	return json_object_new_string(buf);
}

static struct json_object *json_guid(const uint8_t g[16])
{
	char s[EVLOG_GUID_STRLEN];

	evlog_guid_to_string(g, s);
	return json_object_new_string(s);
}

static struct json_object *json_banks_of_mask(const struct evlog *log, uint32_t mask)
{
	struct json_object *a = json_object_new_array();
	char nb[7];

	if (!a)
		return NULL;
	for (size_t b = 0; b < evlog_n_banks(log); b++)
		if (mask & (1u << b))
			json_object_array_add(a, json_object_new_string(bank_name(evlog_bank_alg(log, b), nb)));
	return a;
}

/* ---- replay ---- */

static struct json_object *json_mismatch(const struct evlog *log, const struct evlog_event *ev)
{
	struct json_object *o = json_object_new_object();
	char tn[11];

	if (!o)
		return NULL;
	if (json_add(o, "index", json_object_new_uint64(ev->index)) < 0 ||
	    json_add(o, "pcr", json_object_new_uint64(ev->pcr)) < 0 ||
	    json_add(o, "type", json_object_new_string(type_name(ev->type, tn))) < 0 ||
	    json_add(o, "banks", json_banks_of_mask(log, ev->mismatch_banks)) < 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static int replay_json(const struct evlog *log, const struct evlog_replay *rp)
{
	struct json_object *root = json_object_new_object(), *pcrs = json_object_new_object(),
			   *mm = json_object_new_array();
	char key[4], nb[7];

	if (!root || !pcrs || !mm)
		goto oom;
	for (size_t b = 0; b < rp->n_banks; b++) {
		const struct evlog_pcr_bank *bank = &rp->banks[b];
		struct json_object *bo = json_object_new_object();

		if (json_add(pcrs, bank_name(bank->alg, nb), bo) < 0)
			goto oom;
		for (unsigned p = 0; p < EVLOG_NUM_PCRS; p++) {
			if (!(bank->touched & (1u << p)))
				continue;
			snprintf(key, sizeof(key), "%u", p);
			if (json_add(bo, key, cli_json_hex(bank->pcrs[p], bank->digest_size)) < 0)
				goto oom;
		}
	}
	for (size_t i = 0; i < evlog_n_events(log); i++) {
		const struct evlog_event *ev = evlog_event(log, i);

		if (ev->verify == EVLOG_VERIFY_MISMATCH) {
			struct json_object *m = json_mismatch(log, ev);

			if (!m || json_object_array_add(mm, m) < 0) {
				json_object_put(m);
				goto oom;
			}
		}
	}
	if (json_add(root, "pcrs", pcrs) < 0) {
		pcrs = NULL;
		goto oom;
	}
	pcrs = NULL;
	if (json_add(root, "events", json_object_new_uint64(evlog_n_events(log))) < 0)
		goto oom;
	if (json_add(root, "mismatched_events", mm) < 0) {
		mm = NULL;
		goto oom;
	}
	cli_print_json(root);
	return 0;
oom:
	json_object_put(root);
	json_object_put(pcrs);
	json_object_put(mm);
	return cli_fail(KQ_EXIT_USAGE, "out of memory");
}

static void print_banks(const struct evlog *log, uint32_t mask, bool all)
{
	char nb[7];
	bool first = true;

	for (size_t b = 0; b < evlog_n_banks(log); b++) {
		if (!all && !(mask & (1u << b)))
			continue;
		printf("%s%s", first ? "" : ", ", bank_name(evlog_bank_alg(log, b), nb));
		first = false;
	}
}

static void replay_text(const struct evlog *log, const struct evlog_replay *rp)
{
	char nb[7], tn[11];

	printf("format: %s (banks: ", evlog_format(log) == EVLOG_FORMAT_SHA1 ? "sha1" : "crypto-agile");
	print_banks(log, 0, true);
	printf(")\nevents: %zu\n", evlog_n_events(log));
	if (evlog_startup_locality(log))
		printf("startup locality: %u\n", evlog_startup_locality(log));
	for (size_t b = 0; b < rp->n_banks; b++) {
		const struct evlog_pcr_bank *bank = &rp->banks[b];

		printf("%s:\n", bank_name(bank->alg, nb));
		for (unsigned p = 0; p < EVLOG_NUM_PCRS; p++) {
			if (!(bank->touched & (1u << p)))
				continue;
			printf("  %2u: ", p);
			print_hex(stdout, bank->pcrs[p], bank->digest_size, SIZE_MAX);
			putchar('\n');
		}
	}
	printf("mismatched events: %zu\n", evlog_n_mismatched(log));
	for (size_t i = 0; i < evlog_n_events(log); i++) {
		const struct evlog_event *ev = evlog_event(log, i);

		if (ev->verify != EVLOG_VERIFY_MISMATCH)
			continue;
		printf("  event %zu: PCR %" PRIu32 " %s, digest is not the hash of the data (", ev->index,
		       ev->pcr, type_name(ev->type, tn));
		print_banks(log, ev->mismatch_banks, false);
		printf(")\n");
	}
}

static int do_replay(const struct opts *o, const struct evlog *log)
{
	struct evlog_replay rp;
	int r;

	r = evlog_replay(log, &rp);
	if (r < 0)
		return cli_fail_lib(KQ_EXIT_INVALID, "replay failed");
	if (o->json) {
		if (replay_json(log, &rp) != 0)
			return KQ_EXIT_USAGE;
	} else {
		replay_text(log, &rp);
	}
	if (o->strict && evlog_n_mismatched(log) > 0) {
		const struct evlog_event *ev = NULL;
		char tn[11];

		for (size_t i = 0; !ev && i < evlog_n_events(log); i++)
			if (evlog_event(log, i)->verify == EVLOG_VERIFY_MISMATCH)
				ev = evlog_event(log, i);
		return cli_fail(KQ_EXIT_INVALID, "%s: %zu event%s with a digest that does not match the data "
				"(first: event %zu, PCR %" PRIu32 ", %s)", o->file, evlog_n_mismatched(log),
				evlog_n_mismatched(log) == 1 ? "" : "s", ev->index, ev->pcr,
				type_name(ev->type, tn));
	}
	return KQ_EXIT_OK;
}

/* ---- show ---- */

/* The variable's EFI_SIGNATURE_LISTs; *malformed if they do not parse (returns NULL then). */
static struct json_object *json_signatures(const struct evlog_efi_variable *v, bool *malformed)
{
	struct evlog_siglist_iter it;
	struct evlog_efi_signature sig;
	struct json_object *a = json_object_new_array();
	int r;

	if (!a)
		return NULL;
	evlog_siglist_init(&it, v->data, v->data_len);
	while ((r = evlog_siglist_next(&it, &sig)) > 0) {
		struct json_object *s = json_object_new_object();
		const char *tn = evlog_guid_name(sig.type);

		if (!s || json_object_array_add(a, s) < 0) {
			json_object_put(s);
			goto fail;
		}
		if (json_add(s, "type", tn ? json_object_new_string(tn) : json_guid(sig.type)) < 0 ||
		    json_add(s, "owner", json_guid(sig.owner)) < 0)
			goto fail;
		if (memcmp(sig.type, EVLOG_GUID_CERT_X509, 16) == 0) {
			uint8_t fp[32];

			if (kq_hash(KQ_ALG_SHA256, sig.data, sig.data_len, fp) < 0 ||
			    json_add(s, "size", json_object_new_uint64(sig.data_len)) < 0 ||
			    json_add(s, "sha256", cli_json_hex(fp, sizeof(fp))) < 0)
				goto fail;
		} else if (json_add(s, "data", cli_json_hex(sig.data, sig.data_len)) < 0) {
			goto fail;
		}
	}
	if (r < 0) {
		json_object_put(a);
		*malformed = true;
		return NULL;
	}
	return a;
fail:
	json_object_put(a);
	return NULL;
}

static bool is_siglist_var(const struct evlog_efi_variable *v)
{
	static const char *const names[] = { "PK", "KEK", "db", "dbx", "dbt", "dbr", "MokList", "MokListX" };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(v->name, names[i]) == 0)
			return true;
	return false;
}

static struct json_object *json_decoded(const struct evlog *log, const struct evlog_event *ev)
{
	const struct evlog_decoded *d = &ev->dec;
	struct json_object *o = json_object_new_object();
	char nb[7];
	int r = 0;

	if (!o)
		return NULL;
	switch (d->kind) {
	case EVLOG_KIND_RAW:
	case EVLOG_KIND_MALFORMED:
		r = json_add(o, "data", cli_json_hex(ev->data, ev->data_len));
		break;
	case EVLOG_KIND_SPEC_ID: {
		struct json_object *algs = json_object_new_array();

		r = json_add(o, "algorithms", algs);
		for (size_t b = 0; r == 0 && b < evlog_n_banks(log); b++) {
			struct json_object *a = json_object_new_object();

			if (!a || json_object_array_add(algs, a) < 0) {
				json_object_put(a);
				r = -ENOMEM;
				break;
			}
			r = json_add(a, "algorithm", json_object_new_string(bank_name(evlog_bank_alg(log, b), nb)));
			if (r == 0)
				r = json_add(a, "digest_size", json_object_new_uint64(evlog_bank_digest_size(log, b)));
		}
		if (r == 0)
			r = json_add(o, "platform_class", json_object_new_uint64(d->spec_id.platform_class));
		if (r == 0) {
			char v[32];

			snprintf(v, sizeof(v), "%u.%u errata %u", d->spec_id.version_major,
				 d->spec_id.version_minor, d->spec_id.errata);
			r = json_add(o, "spec_version", json_object_new_string(v));
		}
		if (r == 0)
			r = json_add(o, "uintn_size", json_object_new_uint64(d->spec_id.uintn_size));
		break;
	}
	case EVLOG_KIND_STARTUP_LOCALITY:
		r = json_add(o, "startup_locality", json_object_new_uint64(d->startup_locality));
		break;
	case EVLOG_KIND_STRING:
		r = json_add(o, "string", json_object_new_string(d->string));
		break;
	case EVLOG_KIND_SEPARATOR:
		r = json_add(o, "separator", json_object_new_uint64(d->separator));
		break;
	case EVLOG_KIND_EFI_VARIABLE: {
		const struct evlog_efi_variable *v = &d->var;

		r = json_add(o, "guid", json_guid(v->guid));
		if (r == 0)
			r = json_add(o, "name", json_object_new_string(v->name));
		if (r == 0)
			r = json_add(o, "data_size", json_object_new_uint64(v->data_len));
		if (r == 0)
			r = json_add(o, "data", cli_json_hex(v->data, v->data_len));
		if (r == 0 && v->has_load_option) {
			struct json_object *lo = json_object_new_object();

			r = json_add(o, "load_option", lo);
			if (r == 0)
				r = json_add(lo, "attributes", json_object_new_uint64(v->load_option.attributes));
			if (r == 0)
				r = json_add(lo, "description", json_object_new_string(v->load_option.description));
			if (r == 0)
				r = json_add_str_or_null(lo, "device_path", v->load_option.device_path);
			if (r == 0 && v->load_option.file_path)
				r = json_add(lo, "file_path", json_object_new_string(v->load_option.file_path));
		}
		if (r == 0 && is_siglist_var(v)) {
			bool malformed = false;
			struct json_object *sigs = json_signatures(v, &malformed);

			r = malformed ? json_add_null(o, "signatures") : json_add(o, "signatures", sigs);
		}
		break;
	}
	case EVLOG_KIND_IMAGE_LOAD: {
		const struct evlog_image_load *im = &d->image;

		r = json_add(o, "location", json_u64hex(im->location));
		if (r == 0)
			r = json_add(o, "length", json_object_new_uint64(im->length));
		if (r == 0)
			r = json_add(o, "link_time_address", json_u64hex(im->link_time_address));
		if (r == 0)
			r = json_add_str_or_null(o, "device_path", im->device_path_text);
		if (r == 0 && im->file_path)
			r = json_add(o, "file_path", json_object_new_string(im->file_path));
		if (r == 0 && !im->device_path_text)
			r = json_add(o, "device_path_data", cli_json_hex(im->device_path, im->device_path_len));
		break;
	}
	case EVLOG_KIND_FIRMWARE_BLOB:
		if (d->blob.description)
			r = json_add(o, "description", json_object_new_string(d->blob.description));
		if (r == 0)
			r = json_add(o, "base", json_u64hex(d->blob.base));
		if (r == 0)
			r = json_add(o, "length", json_object_new_uint64(d->blob.length));
		break;
	case EVLOG_KIND_GPT: {
		struct json_object *parts = json_object_new_array();

		r = json_add(o, "disk_guid", json_guid(d->gpt.disk_guid));
		if (r == 0)
			r = json_add(o, "partitions", parts);
		else
			json_object_put(parts);
		for (size_t i = 0; r == 0 && i < d->gpt.n_partitions; i++) {
			const struct evlog_gpt_partition *p = &d->gpt.partitions[i];
			struct json_object *po = json_object_new_object();

			if (!po || json_object_array_add(parts, po) < 0) {
				json_object_put(po);
				r = -ENOMEM;
				break;
			}
			r = json_add(po, "type_guid", json_guid(p->type_guid));
			if (r == 0)
				r = json_add(po, "unique_guid", json_guid(p->unique_guid));
			if (r == 0)
				r = json_add(po, "start_lba", json_object_new_uint64(p->start_lba));
			if (r == 0)
				r = json_add(po, "end_lba", json_object_new_uint64(p->end_lba));
			if (r == 0)
				r = json_add(po, "attributes", json_u64hex(p->attributes));
			if (r == 0)
				r = json_add(po, "name", json_object_new_string(p->name));
		}
		break;
	}
	case EVLOG_KIND_HANDOFF_TABLES: {
		struct json_object *tabs = json_object_new_array();

		r = json_add(o, "tables", tabs);
		if (r == 0 && d->handoff.description)
			r = json_add(o, "description", json_object_new_string(d->handoff.description));
		for (size_t i = 0; r == 0 && i < d->handoff.n_tables; i++) {
			const struct evlog_handoff_table *t = &d->handoff.tables[i];
			struct json_object *to = json_object_new_object();
			const char *gn = evlog_guid_name(t->guid);

			if (!to || json_object_array_add(tabs, to) < 0) {
				json_object_put(to);
				r = -ENOMEM;
				break;
			}
			r = json_add(to, "guid", json_guid(t->guid));
			if (r == 0 && gn)
				r = json_add(to, "name", json_object_new_string(gn));
			if (r == 0)
				r = json_add(to, "table", json_u64hex(t->table));
		}
		break;
	}
	case EVLOG_KIND_TAGGED:
		r = json_add(o, "tag_id", json_object_new_uint64(d->tagged.id));
		if (r == 0)
			r = json_add(o, "data", cli_json_hex(d->tagged.data, d->tagged.data_len));
		break;
	}
	if (r == 0 && d->error)
		r = json_add(o, d->kind == EVLOG_KIND_MALFORMED ? "error" : "warning",
			     json_object_new_string(d->error));
	if (r < 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static const char *kind_name(enum evlog_kind k)
{
	switch (k) {
	case EVLOG_KIND_RAW: return "raw";
	case EVLOG_KIND_MALFORMED: return "malformed";
	case EVLOG_KIND_SPEC_ID: return "spec_id";
	case EVLOG_KIND_STARTUP_LOCALITY: return "startup_locality";
	case EVLOG_KIND_STRING: return "string";
	case EVLOG_KIND_SEPARATOR: return "separator";
	case EVLOG_KIND_EFI_VARIABLE: return "efi_variable";
	case EVLOG_KIND_IMAGE_LOAD: return "image_load";
	case EVLOG_KIND_FIRMWARE_BLOB: return "firmware_blob";
	case EVLOG_KIND_GPT: return "gpt";
	case EVLOG_KIND_HANDOFF_TABLES: return "handoff_tables";
	case EVLOG_KIND_TAGGED: return "tagged";
	}
	return "raw";
}

static struct json_object *json_event(const struct evlog *log, const struct evlog_event *ev)
{
	struct json_object *o = json_object_new_object(), *dg = json_object_new_object(), *v;
	char tn[11], nb[7];

	if (!o || !dg)
		goto fail;
	if (json_add(o, "index", json_object_new_uint64(ev->index)) < 0 ||
	    json_add(o, "offset", json_object_new_uint64(ev->offset)) < 0 ||
	    json_add(o, "pcr", json_object_new_uint64(ev->pcr)) < 0 ||
	    json_add(o, "type", json_object_new_string(type_name(ev->type, tn))) < 0)
		goto fail;
	for (size_t b = 0; b < evlog_n_banks(log); b++)
		if (ev->digests[b] &&
		    json_add(dg, bank_name(evlog_bank_alg(log, b), nb),
			     cli_json_hex(ev->digests[b], evlog_bank_digest_size(log, b))) < 0)
			goto fail;
	if (json_add(o, "digests", dg) < 0) {
		dg = NULL;
		goto fail;
	}
	dg = NULL;
	if (ev->verify == EVLOG_VERIFY_NA)
		v = NULL;
	else if (!(v = json_object_new_boolean(ev->verify == EVLOG_VERIFY_OK)))
		goto fail;
	if (json_object_object_add(o, "digest_verified", v) < 0) {
		json_object_put(v);
		goto fail;
	}
	if (ev->verify == EVLOG_VERIFY_OK &&
	    json_add(o, "verified_form", json_object_new_string(form_name(ev->form))) < 0)
		goto fail;
	if (ev->verify == EVLOG_VERIFY_MISMATCH &&
	    json_add(o, "mismatched_banks", json_banks_of_mask(log, ev->mismatch_banks)) < 0)
		goto fail;
	if (json_add(o, "data_size", json_object_new_uint64(ev->data_len)) < 0 ||
	    json_add(o, "kind", json_object_new_string(kind_name(ev->dec.kind))) < 0 ||
	    json_add(o, "decoded", json_decoded(log, ev)) < 0)
		goto fail;
	return o;
fail:
	json_object_put(o);
	json_object_put(dg);
	return NULL;
}

static int show_json(const struct evlog *log)
{
	struct json_object *root = json_object_new_object(), *banks = json_object_new_array(),
			   *events = json_object_new_array();
	char nb[7];

	if (!root || !banks || !events)
		goto oom;
	for (size_t b = 0; b < evlog_n_banks(log); b++)
		if (json_object_array_add(banks, json_object_new_string(bank_name(evlog_bank_alg(log, b), nb))) < 0)
			goto oom;
	for (size_t i = 0; i < evlog_n_events(log); i++) {
		struct json_object *e = json_event(log, evlog_event(log, i));

		if (!e || json_object_array_add(events, e) < 0) {
			json_object_put(e);
			goto oom;
		}
	}
	if (json_add(root, "format", json_object_new_string(evlog_format(log) == EVLOG_FORMAT_SHA1
							     ? "sha1" : "crypto-agile")) < 0)
		goto oom;
	if (json_add(root, "banks", banks) < 0) {
		banks = NULL;
		goto oom;
	}
	banks = NULL;
	if (json_add(root, "startup_locality", json_object_new_uint64(evlog_startup_locality(log))) < 0)
		goto oom;
	if (json_add(root, "events", events) < 0) {
		events = NULL;
		goto oom;
	}
	cli_print_json(root);
	return KQ_EXIT_OK;
oom:
	json_object_put(root);
	json_object_put(banks);
	json_object_put(events);
	return cli_fail(KQ_EXIT_USAGE, "out of memory");
}

static void show_text_decoded(const struct evlog_event *ev)
{
	const struct evlog_decoded *d = &ev->dec;
	char g[EVLOG_GUID_STRLEN];

	switch (d->kind) {
	case EVLOG_KIND_RAW:
	case EVLOG_KIND_MALFORMED:
		if (ev->data_len) {
			fputs("    data: ", stdout);
			print_hex(stdout, ev->data, ev->data_len, 64);
			putchar('\n');
		}
		break;
	case EVLOG_KIND_SPEC_ID:
		printf("    spec id: platform class %" PRIu32 ", spec %u.%u errata %u, uintn size %u\n",
		       d->spec_id.platform_class, d->spec_id.version_major, d->spec_id.version_minor,
		       d->spec_id.errata, d->spec_id.uintn_size);
		break;
	case EVLOG_KIND_STARTUP_LOCALITY:
		printf("    startup locality: %u\n", d->startup_locality);
		break;
	case EVLOG_KIND_STRING:
		fputs("    string: \"", stdout);
		print_escaped(stdout, d->string);
		fputs("\"\n", stdout);
		break;
	case EVLOG_KIND_SEPARATOR:
		printf("    separator: 0x%08" PRIx32 "%s\n", d->separator, d->separator ? " (error)" : "");
		break;
	case EVLOG_KIND_EFI_VARIABLE:
		evlog_guid_to_string(d->var.guid, g);
		fputs("    variable: ", stdout);
		print_plain(stdout, d->var.name);
		printf(" (%s), %zu bytes: ", g, d->var.data_len);
		print_hex(stdout, d->var.data, d->var.data_len, 32);
		putchar('\n');
		if (d->var.has_load_option) {
			fputs("    load option: \"", stdout);
			print_escaped(stdout, d->var.load_option.description);
			fputs("\" ", stdout);
			print_plain(stdout, d->var.load_option.device_path ? d->var.load_option.device_path
									    : "(undecodable device path)");
			putchar('\n');
		}
		break;
	case EVLOG_KIND_IMAGE_LOAD:
		printf("    image: location 0x%" PRIx64 ", length %" PRIu64 "\n", d->image.location,
		       d->image.length);
		if (d->image.device_path_text) {
			fputs("    device path: ", stdout);
			print_plain(stdout, d->image.device_path_text);
			putchar('\n');
		}
		break;
	case EVLOG_KIND_FIRMWARE_BLOB:
		fputs("    blob: ", stdout);
		if (d->blob.description) {
			putchar('"');
			print_escaped(stdout, d->blob.description);
			fputs("\" ", stdout);
		}
		printf("base 0x%" PRIx64 ", length 0x%" PRIx64 "\n", d->blob.base, d->blob.length);
		break;
	case EVLOG_KIND_GPT:
		evlog_guid_to_string(d->gpt.disk_guid, g);
		printf("    gpt: disk %s, %zu partitions\n", g, d->gpt.n_partitions);
		for (size_t i = 0; i < d->gpt.n_partitions; i++) {
			const struct evlog_gpt_partition *p = &d->gpt.partitions[i];

			evlog_guid_to_string(p->unique_guid, g);
			printf("      %s lba %" PRIu64 "-%" PRIu64 " \"", g, p->start_lba, p->end_lba);
			print_escaped(stdout, p->name);
			fputs("\"\n", stdout);
		}
		break;
	case EVLOG_KIND_HANDOFF_TABLES:
		printf("    handoff tables: %zu\n", d->handoff.n_tables);
		for (size_t i = 0; i < d->handoff.n_tables; i++) {
			const char *n = evlog_guid_name(d->handoff.tables[i].guid);

			evlog_guid_to_string(d->handoff.tables[i].guid, g);
			printf("      %s%s%s%s at 0x%" PRIx64 "\n", g, n ? " (" : "", n ? n : "", n ? ")" : "",
			       d->handoff.tables[i].table);
		}
		break;
	case EVLOG_KIND_TAGGED:
		printf("    tagged event 0x%08" PRIx32 ": ", d->tagged.id);
		print_hex(stdout, d->tagged.data, d->tagged.data_len, 64);
		putchar('\n');
		break;
	}
	if (d->error) {
		printf("    %s: ", d->kind == EVLOG_KIND_MALFORMED ? "error" : "warning");
		print_escaped(stdout, d->error);
		putchar('\n');
	}
}

static void show_text(const struct evlog *log)
{
	char tn[11], nb[7];

	printf("format: %s (banks: ", evlog_format(log) == EVLOG_FORMAT_SHA1 ? "sha1" : "crypto-agile");
	print_banks(log, 0, true);
	printf("), %zu events\n", evlog_n_events(log));
	for (size_t i = 0; i < evlog_n_events(log); i++) {
		const struct evlog_event *ev = evlog_event(log, i);

		printf("#%zu PCR %" PRIu32 " %s, %zu bytes, ", ev->index, ev->pcr, type_name(ev->type, tn),
		       ev->data_len);
		if (ev->verify == EVLOG_VERIFY_OK) {
			printf("digest verified (%s)\n", form_name(ev->form));
		} else if (ev->verify == EVLOG_VERIFY_MISMATCH) {
			printf("DIGEST MISMATCH (");
			print_banks(log, ev->mismatch_banks, false);
			printf(")\n");
		} else {
			printf("%s\n", ev->extends ? "digest not checkable" : "not extended");
		}
		for (size_t b = 0; b < evlog_n_banks(log); b++) {
			if (!ev->digests[b])
				continue;
			printf("    %s: ", bank_name(evlog_bank_alg(log, b), nb));
			print_hex(stdout, ev->digests[b], evlog_bank_digest_size(log, b), SIZE_MAX);
			putchar('\n');
		}
		show_text_decoded(ev);
	}
}

/* ---- entry ---- */

static int parse_opts(int argc, char **argv, bool replay, struct opts *o)
{
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--json") == 0)
			o->json = true;
		else if (replay && strcmp(a, "--strict") == 0)
			o->strict = true;
		else if (strcmp(a, "--") == 0 && i + 1 < argc && !o->file && i + 2 == argc)
			o->file = argv[++i];
		else if (a[0] == '-' && a[1] != '\0')
			return cli_fail(KQ_EXIT_USAGE, "eventlog %s: unknown option '%s' (try --help)", argv[1], a);
		else if (!o->file)
			o->file = a;
		else
			return cli_fail(KQ_EXIT_USAGE, "eventlog %s: unexpected argument '%s'", argv[1], a);
	}
	if (!o->file)
		return cli_fail(KQ_EXIT_USAGE, "eventlog %s: missing FILE (try --help)", argv[1]);
	return 0;
}

static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

int cmd_eventlog(int argc, char **argv)
{
	_cleanup_(evlog_freep) struct evlog *log = NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	struct opts o = { 0 };
	bool replay;
	size_t len;
	int r;

	if (wants_help(argc, argv)) {
		fputs(usage_text, stdout);
		return KQ_EXIT_OK;
	}
	if (argc < 2) {
		fputs(usage_text, stderr);
		return KQ_EXIT_USAGE;
	}
	if (strcmp(argv[1], "replay") == 0)
		replay = true;
	else if (strcmp(argv[1], "show") == 0)
		replay = false;
	else
		return cli_fail(KQ_EXIT_USAGE, "eventlog: unknown subcommand '%s' (try --help)", argv[1]);
	r = parse_opts(argc, argv, replay, &o);
	if (r != 0)
		return r;
	if (cli_read(o.file, &buf, &len) < 0)
		return KQ_EXIT_USAGE;
	r = evlog_parse(buf, len, &log);
	if (r < 0)
		return cli_fail(KQ_EXIT_INVALID, "%s: not a valid event log: %s", o.file, kq_errmsg());
	if (replay)
		return do_replay(&o, log);
	if (o.json)
		return show_json(log);
	show_text(log);
	return KQ_EXIT_OK;
}
