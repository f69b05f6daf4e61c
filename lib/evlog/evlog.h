/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/evlog: TCG PC Client UEFI event logs (Linux `binary_bios_measurements`).
 *
 * Both formats are read:
 *  - SHA-1 ("TCG 1.2") logs: every event a TCG_PCR_EVENT with one SHA-1 digest;
 *  - crypto-agile logs: a first TCG_PCR_EVENT of type EV_NO_ACTION holding the
 *    "Spec ID Event03" structure, whose algorithm table names the PCR banks and
 *    their digest sizes, then TCG_PCR_EVENT2 entries with one digest per bank.
 *
 * evlog_parse() checks the framing, re-hashes the event data of every event
 * whose digest is defined as a hash of its data, and decodes the event data a
 * policy needs. evlog_replay() computes the final PCR values per bank.
 *
 * TRUST. The whole log is attacker-controlled until its replay has been
 * compared with a quote. Even then, the quote only binds the *digests* and
 * their order per PCR: the event type, the event data and every EV_NO_ACTION
 * event are not covered by any PCR. So:
 *  - event types are only the log's claim; never base a security decision on
 *    the type alone;
 *  - decoded content is bound to the quoted PCRs only when
 *    `verify == EVLOG_VERIFY_OK`, and then only the bytes in
 *    `measured`/`measured_len` are (for example, for an EV_EFI_VARIABLE_BOOT
 *    event checked in the EVLOG_FORM_VAR_DATA form the variable's GUID and name
 *    are NOT covered, only its data);
 *  - for EVLOG_VERIFY_NA events (images, firmware blobs, ...) the digest is of
 *    something outside the log (the code itself), and the decoded fields (device
 *    path, blob address, ...) are unauthenticated hints. Compare such digests
 *    with reference values instead.
 *
 * Memory: a `struct evlog` owns a private copy of the log and everything
 * decoded from it; every pointer reached from it (events, strings, spans) stays
 * valid until evlog_free(). Nothing here prints; errors follow lib/util's
 * convention (negative errno, message in kq_errmsg()). A parsed log is
 * read-only and may be shared between threads.
 */
#ifndef KQ_EVLOG_H
#define KQ_EVLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"

/* ---- limits: going over any of them makes evlog_parse() fail ---- */

#define EVLOG_MAX_LOG_SIZE (16u << 20)   /* whole log, bytes (-EFBIG) */
#define EVLOG_MAX_EVENT_DATA (1u << 20)  /* one event's data, bytes (-EBADMSG) */
#define EVLOG_MAX_EVENTS 131072u         /* events, the header included (-E2BIG) */
#define EVLOG_MAX_BANKS 8u               /* algorithms in the Spec ID event (-EBADMSG) */
#define EVLOG_NUM_PCRS 24u               /* PCR indices an extending event may use: 0..23 */
#define EVLOG_MAX_TEXT (64u << 10)       /* one decoded text (device path, ...); longer = decode error */

/* ---- event types (TCG PC Client Platform Firmware Profile, 10.4.1) ---- */

enum {
	EVLOG_EV_PREBOOT_CERT = 0x00000000,
	EVLOG_EV_POST_CODE = 0x00000001,
	EVLOG_EV_UNUSED = 0x00000002,
	EVLOG_EV_NO_ACTION = 0x00000003,
	EVLOG_EV_SEPARATOR = 0x00000004,
	EVLOG_EV_ACTION = 0x00000005,
	EVLOG_EV_EVENT_TAG = 0x00000006,
	EVLOG_EV_S_CRTM_CONTENTS = 0x00000007,
	EVLOG_EV_S_CRTM_VERSION = 0x00000008,
	EVLOG_EV_CPU_MICROCODE = 0x00000009,
	EVLOG_EV_PLATFORM_CONFIG_FLAGS = 0x0000000A,
	EVLOG_EV_TABLE_OF_DEVICES = 0x0000000B,
	EVLOG_EV_COMPACT_HASH = 0x0000000C,
	EVLOG_EV_IPL = 0x0000000D,
	EVLOG_EV_IPL_PARTITION_DATA = 0x0000000E,
	EVLOG_EV_NONHOST_CODE = 0x0000000F,
	EVLOG_EV_NONHOST_CONFIG = 0x00000010,
	EVLOG_EV_NONHOST_INFO = 0x00000011,
	EVLOG_EV_OMIT_BOOT_DEVICE_EVENTS = 0x00000012,
	EVLOG_EV_POST_CODE2 = 0x00000013,
	EVLOG_EV_EFI_EVENT_BASE = 0x80000000,
	EVLOG_EV_EFI_VARIABLE_DRIVER_CONFIG = 0x80000001,
	EVLOG_EV_EFI_VARIABLE_BOOT = 0x80000002,
	EVLOG_EV_EFI_BOOT_SERVICES_APPLICATION = 0x80000003,
	EVLOG_EV_EFI_BOOT_SERVICES_DRIVER = 0x80000004,
	EVLOG_EV_EFI_RUNTIME_SERVICES_DRIVER = 0x80000005,
	EVLOG_EV_EFI_GPT_EVENT = 0x80000006,
	EVLOG_EV_EFI_ACTION = 0x80000007,
	EVLOG_EV_EFI_PLATFORM_FIRMWARE_BLOB = 0x80000008,
	EVLOG_EV_EFI_HANDOFF_TABLES = 0x80000009,
	EVLOG_EV_EFI_PLATFORM_FIRMWARE_BLOB2 = 0x8000000A,
	EVLOG_EV_EFI_HANDOFF_TABLES2 = 0x8000000B,
	EVLOG_EV_EFI_VARIABLE_BOOT2 = 0x8000000C,
	EVLOG_EV_EFI_GPT_EVENT2 = 0x8000000D,
	EVLOG_EV_EFI_HCRTM_EVENT = 0x80000010,
	EVLOG_EV_EFI_VARIABLE_AUTHORITY = 0x800000E0,
	EVLOG_EV_EFI_SPDM_FIRMWARE_BLOB = 0x800000E1,
	EVLOG_EV_EFI_SPDM_FIRMWARE_CONFIG = 0x800000E2,
};

/* "EV_EFI_ACTION", ... or NULL for a type this module does not know. Static. */
const char *evlog_event_type_name(uint32_t type);

/* ---- GUIDs ---- */

#define EVLOG_GUID_STRLEN 37 /* "8be4df61-93ca-11d2-aa0d-00e098032b8c" + NUL */

/* Formats an EFI_GUID (mixed-endian, as stored in UEFI structures) in lowercase. */
void evlog_guid_to_string(const uint8_t guid[16], char out[EVLOG_GUID_STRLEN]);
/* A short name for well-known GUIDs ("EFI_GLOBAL_VARIABLE", "EFI_CERT_X509", ...) or NULL. */
const char *evlog_guid_name(const uint8_t guid[16]);
/* Parses "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into EFI_GUID byte order. -EINVAL if malformed. */
int evlog_guid_from_string(const char *s, uint8_t ret[16]);

extern const uint8_t EVLOG_GUID_EFI_GLOBAL_VARIABLE[16];
extern const uint8_t EVLOG_GUID_IMAGE_SECURITY_DATABASE[16]; /* db, dbx */
extern const uint8_t EVLOG_GUID_CERT_X509[16];
extern const uint8_t EVLOG_GUID_CERT_SHA256[16];

/* ---- a parsed log ---- */

enum evlog_format {
	EVLOG_FORMAT_SHA1,         /* TCG_PCR_EVENT only */
	EVLOG_FORMAT_CRYPTO_AGILE, /* Spec ID Event03 + TCG_PCR_EVENT2 */
};

/*
 * Whether an event's digests were checked against its data.
 * EVLOG_VERIFY_NA: not checkable — the digest is not defined as a hash of the
 *   event data (images, firmware, POST code, EV_NO_ACTION, unknown types, and
 *   EV_IPL strings in a format not known here). Decoded content is a hint.
 * EVLOG_VERIFY_OK: in every bank whose hash kumquat implements, the digest is
 *   the hash of `measured` (a span of the event data).
 * EVLOG_VERIFY_MISMATCH: the digest must be a hash of the data, and is not in
 *   the banks of `mismatch_banks`. The event is still replayed with its logged
 *   digests (that is what the TPM saw), but its content must not be trusted.
 */
enum evlog_verify {
	EVLOG_VERIFY_NA = 0,
	EVLOG_VERIFY_OK,
	EVLOG_VERIFY_MISMATCH,
};

/* Which bytes were found to be the hashed ones when verify == EVLOG_VERIFY_OK. */
enum evlog_form {
	EVLOG_FORM_NONE = 0,
	EVLOG_FORM_FULL,           /* the whole event data (what the spec defines) */
	EVLOG_FORM_VAR_DATA,       /* EV_EFI_VARIABLE_BOOT only: just VariableData, as EDK2-derived
	                            * firmware measures boot variables (GUID and name not covered) */
	EVLOG_FORM_SHIM_EXTRA_BYTE,/* EV_EFI_VARIABLE_AUTHORITY only: the data without its last
	                            * byte — shim before commit 8a27a48 logged one byte more than it
	                            * hashed; only tried when bytes trail the UEFI_VARIABLE_DATA */
	EVLOG_FORM_IPL_STRING,     /* EV_IPL on PCR 8 written by GRUB ("grub_cmd: X", "kernel_cmdline: X",
	                            * "grub_kernel_cmdline X"): the text after the first space, with or
	                            * without its NUL terminator */
};

/* What an event's data decoded to. Event types are untrusted: see the top of this file. */
enum evlog_kind {
	EVLOG_KIND_RAW = 0,          /* no decoder for this type: only data/data_len */
	EVLOG_KIND_MALFORMED,        /* the data does not have its type's format; dec.error says why */
	EVLOG_KIND_SPEC_ID,          /* EV_NO_ACTION "Spec ID Event03" (the crypto-agile header) */
	EVLOG_KIND_STARTUP_LOCALITY, /* EV_NO_ACTION "StartupLocality" */
	EVLOG_KIND_STRING,           /* actions, EV_IPL, S-CRTM version, POST code names, ... */
	EVLOG_KIND_SEPARATOR,
	EVLOG_KIND_EFI_VARIABLE,     /* EV_EFI_VARIABLE_* (UEFI_VARIABLE_DATA) */
	EVLOG_KIND_IMAGE_LOAD,       /* EV_EFI_BOOT_SERVICES_*, EV_EFI_RUNTIME_SERVICES_DRIVER */
	EVLOG_KIND_FIRMWARE_BLOB,    /* EV_EFI_PLATFORM_FIRMWARE_BLOB(2), blob-form S-CRTM/POST code */
	EVLOG_KIND_GPT,              /* EV_EFI_GPT_EVENT (UEFI_GPT_DATA) */
	EVLOG_KIND_HANDOFF_TABLES,   /* EV_EFI_HANDOFF_TABLES(2) */
	EVLOG_KIND_TAGGED,           /* EV_EVENT_TAG */
};

struct evlog_spec_id {
	uint32_t platform_class;
	uint8_t version_major, version_minor, errata;
	uint8_t uintn_size; /* 1: UINTN is 32-bit, 2: 64-bit */
	const uint8_t *vendor_info;
	size_t vendor_info_len;
};

/*
 * An EFI_LOAD_OPTION (the value of Boot#### / Driver#### / SysPrep####),
 * decoded when the variable has one of those names and the data parses.
 */
struct evlog_load_option {
	uint32_t attributes;
	const char *description;      /* UTF-8 */
	const char *device_path;      /* text (UEFI 2.10 chapter 10.6 style), NULL if undecodable */
	const char *file_path;        /* the device path's file-path nodes joined, or NULL */
	const uint8_t *optional_data;
	size_t optional_data_len;
};

struct evlog_efi_variable {
	uint8_t guid[16];
	const char *name;             /* UTF-8 from the UTF-16 name (U+FFFD for bad code units) */
	const uint8_t *data;          /* VariableData, a span of the event data */
	size_t data_len;
	bool has_load_option;
	struct evlog_load_option load_option;
};

struct evlog_image_load {
	uint64_t location;            /* ImageLocationInMemory */
	uint64_t length;              /* ImageLengthInMemory */
	uint64_t link_time_address;
	const uint8_t *device_path;   /* raw EFI_DEVICE_PATH bytes */
	size_t device_path_len;
	const char *device_path_text; /* NULL if it could not be decoded (dec.error says why) */
	const char *file_path;        /* file-path nodes joined ("\EFI\BOOT\BOOTX64.EFI"), or NULL */
};

struct evlog_firmware_blob {
	const char *description;      /* EV_EFI_PLATFORM_FIRMWARE_BLOB2 only, else NULL */
	uint64_t base;
	uint64_t length;
};

struct evlog_gpt_partition {
	uint8_t type_guid[16];
	uint8_t unique_guid[16];
	uint64_t start_lba, end_lba, attributes;
	const char *name;             /* UTF-8 */
};

struct evlog_gpt {
	uint8_t disk_guid[16];
	uint64_t my_lba, alternate_lba, first_usable_lba, last_usable_lba;
	uint32_t revision;
	size_t n_partitions;
	const struct evlog_gpt_partition *partitions;
};

struct evlog_handoff_table {
	uint8_t guid[16];
	uint64_t table;
};

struct evlog_handoff_tables {
	const char *description;      /* EV_EFI_HANDOFF_TABLES2 only, else NULL */
	size_t n_tables;
	const struct evlog_handoff_table *tables;
};

struct evlog_tagged {
	uint32_t id;
	const uint8_t *data;
	size_t data_len;
};

struct evlog_decoded {
	enum evlog_kind kind;
	/*
	 * Set (UTF-8) when the data, or a part of it, could not be decoded: the
	 * reason for EVLOG_KIND_MALFORMED, or a partial failure (an undecodable
	 * device path in an otherwise good image load event). NULL otherwise.
	 */
	const char *error;
	union {
		struct evlog_spec_id spec_id;         /* EVLOG_KIND_SPEC_ID */
		uint8_t startup_locality;             /* EVLOG_KIND_STARTUP_LOCALITY */
		const char *string;                   /* EVLOG_KIND_STRING: UTF-8, NULs trimmed */
		uint32_t separator;                   /* EVLOG_KIND_SEPARATOR: 0 normal, 1 or ~0 error */
		struct evlog_efi_variable var;        /* EVLOG_KIND_EFI_VARIABLE */
		struct evlog_image_load image;        /* EVLOG_KIND_IMAGE_LOAD */
		struct evlog_firmware_blob blob;      /* EVLOG_KIND_FIRMWARE_BLOB */
		struct evlog_gpt gpt;                 /* EVLOG_KIND_GPT */
		struct evlog_handoff_tables handoff;  /* EVLOG_KIND_HANDOFF_TABLES */
		struct evlog_tagged tagged;           /* EVLOG_KIND_TAGGED */
	};
};

/* One event; read-only, owned by its struct evlog. */
struct evlog_event {
	size_t index;                 /* 0-based; in a crypto-agile log event 0 is the Spec ID event */
	size_t offset;                /* byte offset of the event in the log */
	uint32_t pcr;
	uint32_t type;                /* EVLOG_EV_* — the log's claim, not authenticated */
	bool extends;                 /* false for EV_NO_ACTION: not extended into any PCR */
	/*
	 * digests[b] is this event's digest for bank b (evlog_bank_alg(log, b)),
	 * evlog_bank_digest_size() bytes; NULL only for an EV_NO_ACTION event that
	 * omits that bank (and for the crypto-agile header event).
	 */
	const uint8_t *digests[EVLOG_MAX_BANKS];
	const uint8_t *data;
	size_t data_len;
	enum evlog_verify verify;
	uint32_t mismatch_banks;      /* EVLOG_VERIFY_MISMATCH: bit b set = bank b differs */
	enum evlog_form form;         /* EVLOG_VERIFY_OK: which bytes matched */
	const uint8_t *measured;      /* EVLOG_VERIFY_OK: the bytes the digests are the hash of */
	size_t measured_len;
	struct evlog_decoded dec;
};

struct evlog;

/*
 * Parses a whole event log (the bytes of binary_bios_measurements). The buffer
 * is copied; the caller keeps ownership of buf. On success *ret is a new log
 * the caller frees with evlog_free().
 *
 * Errors: -EFBIG over EVLOG_MAX_LOG_SIZE; -E2BIG over EVLOG_MAX_EVENTS;
 * -EBADMSG for a truncated or malformed log (the message names the event and
 * its offset): an empty log, event data over EVLOG_MAX_EVENT_DATA, a bad Spec
 * ID event (no or too many algorithms, a digest size that contradicts the
 * algorithm), a digest count above the number of banks or an algorithm not in
 * the Spec ID table, an extending event missing a bank, a PCR index above 23,
 * a StartupLocality or H-CRTM event after PCR 0 was extended;
 * -ENOMEM. Malformed event *data* is not an error: that event decodes as
 * EVLOG_KIND_MALFORMED (its digests still replay).
 */
int evlog_parse(const void *buf, size_t len, struct evlog **ret);

/* Frees a log and everything decoded from it. NULL is fine. */
void evlog_free(struct evlog *log);
static inline void evlog_freep(struct evlog **p)
{
	evlog_free(*p);
}

enum evlog_format evlog_format(const struct evlog *log);

/* Banks in Spec ID table order (a SHA-1 log has one, sha1). */
size_t evlog_n_banks(const struct evlog *log);
uint16_t evlog_bank_alg(const struct evlog *log, size_t bank);
size_t evlog_bank_digest_size(const struct evlog *log, size_t bank);
/* The bank index for a TPM hash algorithm id, or -ENOENT. */
int evlog_bank_index(const struct evlog *log, uint16_t alg);

size_t evlog_n_events(const struct evlog *log);
/* Event i, or NULL if i >= evlog_n_events(). */
const struct evlog_event *evlog_event(const struct evlog *log, size_t i);
/* An event's digest for alg, or NULL if the log has no such bank or the event omits it. */
const uint8_t *evlog_event_digest(const struct evlog *log, const struct evlog_event *ev, uint16_t alg);

/* The StartupLocality (0 if the log has none; 4 after an H-CRTM event). */
uint8_t evlog_startup_locality(const struct evlog *log);
/* Number of events with verify == EVLOG_VERIFY_MISMATCH. */
size_t evlog_n_mismatched(const struct evlog *log);

/* ---- replay ---- */

struct evlog_pcr_bank {
	uint16_t alg;                 /* TPM hash algorithm id */
	size_t digest_size;
	uint32_t touched;             /* bit p set: PCR p was extended (or PCR 0 had a StartupLocality) */
	uint8_t pcrs[EVLOG_NUM_PCRS][KQ_MAX_DIGEST]; /* digest_size bytes used; untouched PCRs are zero */
};

struct evlog_replay {
	size_t n_banks;
	struct evlog_pcr_bank banks[EVLOG_MAX_BANKS];
};

/*
 * Replays every extending event into fresh PCRs: all zero, except PCR 0 which
 * starts at 00..00<locality> after a StartupLocality event (H-CRTM: 00..04).
 * Every bank of the log whose hash kumquat implements is replayed (in log
 * order); a bank with an unknown algorithm is left out. Mismatched events are
 * replayed with their logged digests, as the TPM extended them.
 * Fills *ret (no allocation). -EIO if hashing fails.
 */
int evlog_replay(const struct evlog *log, struct evlog_replay *ret);

/* The replayed bank for alg, or NULL. */
const struct evlog_pcr_bank *evlog_replay_bank(const struct evlog_replay *r, uint16_t alg);

/* ---- EFI_SIGNATURE_LIST (the data of PK, KEK, db, dbx, MokList, ...) ---- */

struct evlog_efi_signature {
	uint8_t type[16];             /* EVLOG_GUID_CERT_X509, EVLOG_GUID_CERT_SHA256, ... */
	uint8_t owner[16];
	const uint8_t *data;          /* the signature data: a DER certificate, a hash, ... */
	size_t data_len;
};

struct evlog_siglist_iter {
	const uint8_t *buf;
	size_t len, off;              /* the list being walked */
	size_t list_end, sig_size;    /* the current EFI_SIGNATURE_LIST */
	uint8_t type[16];
};

/* Starts walking the EFI_SIGNATURE_LISTs in buf (not copied; must outlive the iterator). */
void evlog_siglist_init(struct evlog_siglist_iter *it, const uint8_t *buf, size_t len);
/*
 * Next signature: 1 and *ret filled, 0 at the end, -EBADMSG if the lists are
 * malformed (sizes that do not add up). ret points into buf.
 */
int evlog_siglist_next(struct evlog_siglist_iter *it, struct evlog_efi_signature *ret);

/* ---- device paths ---- */

/*
 * Decodes an EFI_DEVICE_PATH_PROTOCOL sequence to text in the UEFI spec's
 * style ("PciRoot(0x0)/Pci(0x1,0x1)/Sata(0x0,0xFFFF,0x0)/HD(1,GPT,...)/\EFI\BOOT\BOOTX64.EFI");
 * unknown nodes as "Path(type,subtype,hex)". *ret_file gets the file-path nodes
 * joined (or NULL if none) when ret_file is not NULL. Both malloc'd, caller
 * frees. Reading stops at the End-Entire node (or the end of buf).
 * -EBADMSG for a malformed path (a node length under 4 or past the end),
 * -E2BIG for text over EVLOG_MAX_TEXT or more than 512 nodes, -ENOMEM.
 */
int evlog_devpath_to_text(const uint8_t *buf, size_t len, char **ret_text, char **ret_file);

#endif
