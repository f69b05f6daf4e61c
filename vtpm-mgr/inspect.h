/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kumquat-vtpm-mgr inspect: a vTPM's EKs and EK certificates, read from its
 * saved state with libtpms. The parts below are internal to vtpm-mgr and its
 * tests (tests/unit/vtpm-mgr-inspect); vtpm_inspect() is the subcommand.
 *
 * What is read, and from where:
 *  - swtpm's tpm2-00.permall (src/swtpm/swtpm_nvstore.c, tlv.h): a 10-byte
 *    header {u8 version (2), u8 min_version (1), be16 hdrsize (10), be16 flags,
 *    be32 totlen (header included)}; for version 2 then TLVs {be16 tag, be32
 *    length, value} with the plain libtpms blob in tag 1 (TAG_DATA), or tags
 *    2/3/6 (encrypted data, HMAC, IV) with flag 0x01 when swtpm ran with
 *    --key; version 1 has the blob right after the header. Files written
 *    before swtpm had a header are the bare blob.
 *  - the libtpms blob (libtpms src/tpm2/NVMarshal.c, PERSISTENT_ALL): a be16
 *    version, then the magic 0xab364723; libtpms parses the rest, and
 *    libtpms 0.9.2 (like swtpm on it) crashes on a few corrupt states.
 *  - EKs and their certificates where swtpm_setup puts them (src/swtpm_setup/
 *    swtpm.c): RSA 2048 EK 0x81010001 / cert NV 0x01c00002, RSA 3072
 *    0x8101001c / 0x01c0001c, ECC P-384 0x81010016 / 0x01c00016; and the TCG
 *    provisioning guide's ECC P-256 EK 0x81010002 / 0x01c0000a.
 *
 * libtpms holds one TPM per process, and may crash, so the state is loaded
 * in a forked child that never sees the state directory (the blob is handed
 * over in memory, libtpms' NV writes are dropped) and answers the parent over
 * a pipe with one length-prefixed message, within a time limit. Everything
 * the child sends is parsed again, bounded, by the parent.
 */
#ifndef KQ_VTPM_INSPECT_H
#define KQ_VTPM_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <openssl/x509.h>
#include <tss2/tss2_tpm2_types.h>

/*
 * The subcommand: kumquat-vtpm-mgr inspect VM-UUID|DIR|FILE [--json]
 * [--state-dir DIR] [--expect-cert FILE]; argv[0] is "inspect" (getopt is
 * restarted). A VM UUID means SWTPM_DIR/UUID/tpm2 (SWTPM_DIR: [vtpm-mgr]
 * swtpm_dir of the config, vtpm_config_path; INSPECT_LIBVIRT_DIR by default),
 * or --state-dir DIR; a directory means its tpm2-00.permall. Prints the report on stdout,
 * reasons on stderr, and returns the exit code: 0 ok; 1 a certificate in NV
 * that is not for its EK, --expect-cert not met, or an invalid state (libtpms
 * refuses or crashes on it); 2 usage error, unreadable, encrypted or missing
 * state. Forks (see inspect_run_child).
 */
int vtpm_inspect(int argc, char **argv);

/* Where libvirt keeps a domain's vTPM state by default: INSPECT_LIBVIRT_DIR/UUID/tpm2. */
#define INSPECT_LIBVIRT_DIR "/var/lib/libvirt/swtpm"
#define INSPECT_STATE_FILE "tpm2-00.permall"

/* Largest state file read (libtpms' whole NV is 128 KiB before marshalling). */
#define INSPECT_MAX_STATE (4u << 20)
/* Largest message the child may send, and largest NV certificate read. */
#define INSPECT_MAX_MSG (256u * 1024)
#define INSPECT_MAX_NV 16384u
/* How long the child may take, all commands included. */
#define INSPECT_TIMEOUT_MS 30000u

#define INSPECT_MAX_EKS 4
#define INSPECT_MAX_CERTS 4
#define INSPECT_MAX_NOTES 16
#define INSPECT_MAX_NOTE_LEN 512u

/* Message records (child -> parent): u8 type, be32 handle, be32 length, data. */
enum inspect_rec {
	INSPECT_REC_EK = 1,    /* handle: persistent EK handle; data: TPM2B_PUBLIC */
	INSPECT_REC_CERT = 2,  /* handle: NV index; data: the index's contents */
	INSPECT_REC_NOTE = 3,  /* a non-fatal problem, text */
	INSPECT_REC_ERROR = 4, /* the state could not be loaded, text */
};

/* One EK slot: the persistent handle, its certificate's NV index, a name. */
struct inspect_slot {
	uint32_t ek_handle;
	uint32_t nv_index;
	const char *what; /* "RSA 2048" ... */
};
extern const struct inspect_slot inspect_slots[INSPECT_MAX_EKS];

/*
 * Finds the libtpms permanent-state blob in an swtpm state file (buf, len):
 * *ret points into buf. -EBADMSG (with the reason) for an empty, truncated or
 * malformed file or one that holds no libtpms TPM 2.0 state; -ENOKEY for a
 * state encrypted with swtpm's --key (or a migration key); -ENOTSUP for a
 * header version this code does not know.
 */
int inspect_swtpm_blob(const uint8_t *buf, size_t len, const uint8_t **ret, size_t *ret_len);

/*
 * Runs fn(wfd, arg) in a forked child, which writes one message (be32 length,
 * then that many bytes, at most INSPECT_MAX_MSG) to wfd and exits 0; the
 * child's stdout goes to /dev/null. Waits at most timeout_ms for the whole
 * message and the child's exit, then kills it (the child also dies with
 * the caller: PR_SET_PDEATHSIG). *ret is malloc'd (caller frees).
 * -ETIMEDOUT, -EPROTO (child died, exited non-zero, sent a short, oversized
 * or overlong message), -errno for fork/pipe failures. The caller must be
 * single-threaded and must not ignore SIGCHLD (the child is reaped here).
 */
typedef void (*inspect_child_fn)(int wfd, void *arg);
int inspect_run_child(inspect_child_fn fn, void *arg, unsigned timeout_ms, uint8_t **ret,
		      size_t *ret_len);

/* The child's work: libtpms on blob (an unencrypted libtpms TPM 2.0 state). */
struct inspect_blob {
	const uint8_t *data;
	size_t len;
};
void inspect_child_libtpms(int wfd, void *arg);

/* What the child found. */
struct inspect_result {
	size_t n_eks;
	struct {
		uint32_t handle;
		TPMT_PUBLIC pub;
	} eks[INSPECT_MAX_EKS];
	size_t n_certs;
	struct {
		uint32_t nv_index;
		uint8_t *data;
		size_t len;
	} certs[INSPECT_MAX_CERTS];
	size_t n_notes;
	char *notes[INSPECT_MAX_NOTES];
};
void inspect_result_clear(struct inspect_result *r);

/*
 * Parses the child's message (without its length prefix). Handles must be
 * the slots' and appear once; EK public areas are unmarshalled exactly.
 * -EPROTO with the child's text for an error record, -EBADMSG otherwise.
 */
int inspect_msg_parse(const uint8_t *buf, size_t len, struct inspect_result *ret);

/*
 * The JSON report: {"state_dir", "eks": [{"handle", "alg", "bits"?, "public":
 * {"rsa": {"n", "e"}} | {"ecc": {"curve", "x", "y"}}, "name"}], "ek_certs":
 * [{"nv_index", "ek_handle", "der_b64", "subject", "issuer", "sha256",
 * "matches_ek"} or {..., "error"}], "notes"?}. *ret_ok is false when a
 * certificate in NV does not parse or is not for its slot's EK. Caller puts
 * the reference.
 */
int inspect_report(const char *state_dir, const struct inspect_result *r, struct json_object **ret,
		   bool *ret_ok);

/*
 * --expect-cert: 0 when expected is one of the certificates in NV and it is
 * for its slot's EK (*ret_nv_index then names the index); -ENOENT when it is
 * not in NV, -EKEYREJECTED when it is but the EK differs.
 */
int inspect_check_expected(const struct inspect_result *r, X509 *expected, uint32_t *ret_nv_index);

#endif
