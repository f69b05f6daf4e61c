/* SPDX-License-Identifier: Apache-2.0 */
#include "registrar.h"

#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "tpm/tpm.h"
#include "util/util.h"
#include "x509/x509.h"

#define EK_CERT_MAX 8192

static const char *const migrations[] = {
	/* 1 */
	"CREATE TABLE agents ("
	"  id TEXT PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('host', 'guest')),"
	"  ek_pub BLOB NOT NULL, ek_name BLOB NOT NULL, ek_cert BLOB,"
	"  ak_pub BLOB NOT NULL, ak_name BLOB NOT NULL, contact TEXT,"
	"  created INTEGER NOT NULL, activated INTEGER NOT NULL,"
	"  enrolments INTEGER NOT NULL DEFAULT 1, ak_changes INTEGER NOT NULL DEFAULT 0,"
	"  vtpm_ca_pub BLOB, vtpm_ca_name BLOB, vtpm_ca_at INTEGER);"
	"CREATE TABLE challenges ("
	"  id TEXT NOT NULL, handle BLOB NOT NULL, kind TEXT NOT NULL, ek_pub BLOB NOT NULL,"
	"  ek_name BLOB NOT NULL, ek_cert BLOB, ak_pub BLOB NOT NULL, ak_name BLOB NOT NULL, contact TEXT,"
	"  proof_hash BLOB NOT NULL, expires INTEGER NOT NULL, PRIMARY KEY (id, handle));"
	"CREATE TABLE nonces ("
	"  id TEXT NOT NULL, purpose TEXT NOT NULL, nonce BLOB NOT NULL, expires INTEGER NOT NULL,"
	"  PRIMARY KEY (id, purpose, nonce));",
	/* 2: guests name their VM and the host whose vTPM-CA certified their EK; revocation */
	"ALTER TABLE agents ADD COLUMN vm_uuid TEXT;"
	"ALTER TABLE agents ADD COLUMN host_id TEXT;"
	"ALTER TABLE agents ADD COLUMN revoked INTEGER;"
	"ALTER TABLE challenges ADD COLUMN vm_uuid TEXT;"
	"ALTER TABLE challenges ADD COLUMN host_id TEXT;",
	/* 3: every agent's payload key, a decryption key its AK certified */
	"ALTER TABLE agents ADD COLUMN payload_pub BLOB;"
	"ALTER TABLE agents ADD COLUMN payload_name BLOB;"
	"ALTER TABLE agents ADD COLUMN payload_at INTEGER;",
	/* 4: revocation follows the TPM (its EK), whatever the id */
	("CREATE INDEX agents_ek_name ON agents (ek_name);"
	 "CREATE INDEX challenges_ek_name ON challenges (ek_name);"),
};

static void x509_freep(X509 **p) { X509_free(*p); }

bool reg_valid_id(const char *s)
{
	char lower[37];

	/* lowercase only: one spelling per UUID, so one agent per UUID */
	return kq_uuid_normalize(s, lower) && strcmp(lower, s) == 0;
}

int registrar_open(const struct registrar_config *cfg, struct registrar **ret)
{
	struct registrar *rg = calloc(1, sizeof(*rg));
	int r;

	if (!rg)
		return kq_err(-ENOMEM, "out of memory");
	rg->cfg = *cfg;
	r = db_open(cfg->database, migrations, ARRAY_SIZE(migrations), &rg->db);
	if (r < 0)
		goto fail;
	if (cfg->ek_ca_dir && cfg->ek_ca_dir[0]) {
		r = x509_store_from_dir(cfg->ek_ca_dir, &rg->ek_store);
		if (r < 0) {
			kq_err_ctx(r, "EK CA directory %s: ", cfg->ek_ca_dir);
			goto fail;
		}
	}
	*ret = rg;
	return 0;
fail:
	db_close(rg->db);
	free(rg);
	return r;
}

void registrar_close(struct registrar *rg)
{
	if (!rg)
		return;
	db_close(rg->db);
	X509_STORE_free(rg->ek_store);
	free(rg);
}

static int fail(const char **code, const char *c, int r)
{
	*code = c;
	return r;
}

static void sha256(const uint8_t *in, size_t len, uint8_t out[32])
{
	if (kq_hash(KQ_ALG_SHA256, in, len, out) < 0)
		memset(out, 0, 32); /* never matches a real proof's hash */
}

/* An EK is a restricted decryption key that never leaves its TPM. */
static int check_ek_public(const TPMT_PUBLIC *p)
{
	const TPMA_OBJECT need = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
				 TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;

	if (p->type != TPM2_ALG_RSA && p->type != TPM2_ALG_ECC)
		return kq_err(-EPERM, "the EK is neither RSA nor ECC");
	if ((p->objectAttributes & need) != need || (p->objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT))
		return kq_err(-EPERM, "the EK is not a restricted decryption key bound to its TPM "
			      "(attributes 0x%08x)", p->objectAttributes);
	return 0;
}

struct begin_ctx {
	const struct reg_enrol_req *req;
	const TPM2B_NAME *ek_name, *ak_name;
	const uint8_t *proof_hash, *handle;
	int64_t expires;
	const char *code;
	/* guests: the vTPM EK certificate and the host it names */
	X509 *guest_cert;
	const char *host_id;
};

/*
 * A guest's EK certificate must be signed by the vTPM-CA key of an active,
 * unrevoked host, the key that host's AK certified at enrolment.
 */
static int check_guest_cert(struct begin_ctx *c, sqlite3 *h)
{
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	TPM2B_PUBLIC ca;
	EVP_PKEY *pkey = NULL;
	int r, rc, ok;

	r = db_prepare(h, "SELECT kind, vtpm_ca_pub, revoked FROM agents WHERE id = ?", &s);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, c->host_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		c->code = "unknown_host";
		return kq_err(-EPERM, "the vTPM EK certificate names host %s, which is not enrolled", c->host_id);
	}
	if (rc != SQLITE_ROW)
		return db_err(h, rc, "host lookup");
	if (strcmp((const char *)sqlite3_column_text(s, 0), "host") != 0) {
		c->code = "unknown_host";
		return kq_err(-EPERM, "the vTPM EK certificate names %s, which is not a host", c->host_id);
	}
	if (sqlite3_column_type(s, 2) != SQLITE_NULL) {
		c->code = "host_revoked";
		return kq_err(-EPERM, "host %s is revoked", c->host_id);
	}
	if (sqlite3_column_type(s, 1) == SQLITE_NULL ||
	    tpm_public_unmarshal(sqlite3_column_blob(s, 1), (size_t)sqlite3_column_bytes(s, 1), &ca) < 0 ||
	    tpm_public_to_pkey(&ca.publicArea, &pkey) < 0) {
		c->code = "host_not_active";
		return kq_err(-EPERM, "host %s has no certified vTPM-CA key", c->host_id);
	}
	ok = X509_verify(c->guest_cert, pkey);
	EVP_PKEY_free(pkey);
	if (ok != 1) {
		c->code = "ek_cert_untrusted";
		return kq_err(-EPERM, "the vTPM EK certificate is not signed by host %s's vTPM-CA key", c->host_id);
	}
	if (X509_cmp_current_time(X509_get0_notBefore(c->guest_cert)) > 0 ||
	    X509_cmp_current_time(X509_get0_notAfter(c->guest_cert)) < 0) {
		c->code = "ek_cert_untrusted";
		return kq_err(-EPERM, "the vTPM EK certificate is not valid now");
	}
	return 0;
}

static int begin_tx(struct db *db, sqlite3 *h, void *ud)
{
	struct begin_ctx *c = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int r, rc;

	/* an id is bound to its first EK for good */
	r = db_prepare(h, "SELECT ek_name, kind, revoked FROM agents WHERE id = ?", &s);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, c->req->id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const void *name = sqlite3_column_blob(s, 0);
		int n = sqlite3_column_bytes(s, 0);

		if (n != c->ek_name->size || CRYPTO_memcmp(name, c->ek_name->name, (size_t)n) != 0) {
			c->code = "ek_mismatch";
			return kq_err(-EPERM, "agent %s is enrolled with another EK", c->req->id);
		}
		if (strcmp((const char *)sqlite3_column_text(s, 1), c->req->kind) != 0) {
			c->code = "kind_mismatch";
			return kq_err(-EPERM, "agent %s is enrolled as a %s", c->req->id,
				      (const char *)sqlite3_column_text(s, 1));
		}
		if (sqlite3_column_type(s, 2) != SQLITE_NULL) {
			c->code = "revoked";
			return kq_err(-EPERM, "agent %s is revoked", c->req->id);
		}
	} else if (rc != SQLITE_DONE) {
		return db_err(h, rc, "agent lookup");
	}
	sqlite3_finalize(s);
	s = NULL;
	/* nor under another id: a revoked TPM stays revoked */
	r = db_prepare(h, "SELECT id FROM agents WHERE ek_name = ? AND revoked IS NOT NULL AND id != ? LIMIT 1", &s);
	if (r < 0)
		return r;
	sqlite3_bind_blob(s, 1, c->ek_name->name, c->ek_name->size, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, c->req->id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		c->code = "revoked";
		return kq_err(-EPERM, "this TPM's EK is the one of revoked agent %s", (const char *)sqlite3_column_text(s, 0));
	}
	if (rc != SQLITE_DONE)
		return db_err(h, rc, "agent lookup");
	sqlite3_finalize(s);
	s = NULL;
	if (c->guest_cert && (r = check_guest_cert(c, h)) < 0)
		return r;

	/* anyone may ask (EK certificates are public), so pending challenges are bounded */
	if ((r = db_prepare(h, "DELETE FROM challenges WHERE expires < ?", &s)) < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)time(NULL));
	if ((r = db_err(h, sqlite3_step(s), "purge challenges")) < 0)
		return r;
	sqlite3_finalize(s);
	s = NULL;
	if ((r = db_prepare(h, "SELECT (SELECT count(*) FROM challenges WHERE id = ?),"
			       " (SELECT count(*) FROM challenges)", &s)) < 0)
		return r;
	sqlite3_bind_text(s, 1, c->req->id, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(s)) != SQLITE_ROW)
		return db_err(h, rc, "count challenges");
	if (sqlite3_column_int64(s, 0) >= REG_MAX_PENDING_PER_ID ||
	    sqlite3_column_int64(s, 1) >= REG_MAX_PENDING) {
		c->code = "too_many_pending";
		return kq_err(-EAGAIN, "too many enrolments are pending; try again later");
	}
	sqlite3_finalize(s);
	s = NULL;

	r = db_prepare(h,
		       "INSERT INTO challenges (id, handle, kind, ek_pub, ek_name, ek_cert, ak_pub, ak_name,"
		       " contact, proof_hash, expires, vm_uuid, host_id)"
		       " VALUES (?1, ?11, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?12, ?13)",
		       &s);
	if (r < 0)
		return r;
	sqlite3_bind_blob(s, 11, c->handle, REG_HANDLE_LEN, SQLITE_STATIC);
	sqlite3_bind_text(s, 1, c->req->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, c->req->kind, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, c->req->ek_pub.data, (int)c->req->ek_pub.len, SQLITE_STATIC);
	sqlite3_bind_blob(s, 4, c->ek_name->name, c->ek_name->size, SQLITE_STATIC);
	if (c->req->ek_cert.len)
		sqlite3_bind_blob(s, 5, c->req->ek_cert.data, (int)c->req->ek_cert.len, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 5);
	sqlite3_bind_blob(s, 6, c->req->ak_pub.data, (int)c->req->ak_pub.len, SQLITE_STATIC);
	sqlite3_bind_blob(s, 7, c->ak_name->name, c->ak_name->size, SQLITE_STATIC);
	if (c->req->contact)
		sqlite3_bind_text(s, 8, c->req->contact, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 8);
	sqlite3_bind_blob(s, 9, c->proof_hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s, 10, c->expires);
	if (c->guest_cert) {
		sqlite3_bind_text(s, 12, c->req->vm_uuid, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 13, c->host_id, -1, SQLITE_STATIC);
	} else {
		sqlite3_bind_null(s, 12);
		sqlite3_bind_null(s, 13);
	}
	return db_err(h, sqlite3_step(s), "store challenge");
}

/* The contact is where the verifier will connect: an https URL of printable ASCII. */
static bool valid_contact(const char *s)
{
	if (strncmp(s, "https://", 8) != 0 || strlen(s) > 512 || strlen(s) < 9)
		return false;
	for (const char *p = s; *p; p++)
		if (*p <= ' ' || *p >= 0x7f)
			return false;
	return true;
}

int reg_enrol_begin(struct registrar *rg, const struct reg_enrol_req *req, uint8_t **ret_cred,
		    size_t *ret_len, uint8_t ret_handle[REG_HANDLE_LEN], const char **code)
{
	TPM2B_PUBLIC ek, ak;
	TPM2B_NAME ek_name, ak_name;
	TPM2B_ID_OBJECT blob;
	TPM2B_ENCRYPTED_SECRET seed;
	uint8_t secret[32], proof[32], proof_hash[32], handle[REG_HANDLE_LEN];
	struct begin_ctx c = { .req = req };
	_cleanup_(x509_freep) X509 *guest_cert = NULL;
	char guest_vm[37], guest_host[37];
	int r;

	*code = "bad_request";
	if (!req->id || !reg_valid_id(req->id))
		return kq_err(-EINVAL, "id must be a UUID");
	if (!req->kind || (strcmp(req->kind, "host") != 0 && strcmp(req->kind, "guest") != 0))
		return kq_err(-EINVAL, "kind must be \"host\" or \"guest\"");
	if (req->contact && !valid_contact(req->contact))
		return kq_err(-EINVAL, "contact must be an https:// URL of printable characters, at most 512");

	/* the EK */
	if ((r = tpm_public_unmarshal(req->ek_pub.data, req->ek_pub.len, &ek)) < 0)
		return kq_err_ctx(-EINVAL, "ek_pub: ");
	if ((r = check_ek_public(&ek.publicArea)) < 0)
		return fail(code, "bad_ek", r);
	if ((r = tpm_public_name(&ek.publicArea, &ek_name)) < 0)
		return fail(code, "bad_ek", -EINVAL);
	if (strcmp(req->kind, "guest") == 0) {
		if (!req->ek_cert.len)
			return fail(code, "ek_cert_required",
				    kq_err(-EPERM, "a guest enrols with its vTPM EK certificate"));
		if (!req->vm_uuid || !kq_uuid_normalize(req->vm_uuid, req->vm_uuid))
			return kq_err(-EINVAL, "vm_uuid: a guest names its VM's UUID");
	} else if (req->vm_uuid) {
		return kq_err(-EINVAL, "vm_uuid is for guests only");
	}
	if (req->ek_cert.len) {
		_cleanup_(x509_freep) X509 *cert = NULL;
		EVP_PKEY *pkey = NULL;

		if (req->ek_cert.len > EK_CERT_MAX)
			return kq_err(-EINVAL, "ek_cert is over %d bytes", EK_CERT_MAX);
		if ((r = x509_load(req->ek_cert.data, req->ek_cert.len, &cert)) < 0)
			return kq_err_ctx(-EINVAL, "ek_cert: ");
		if ((r = tpm_public_to_pkey(&ek.publicArea, &pkey)) < 0)
			return fail(code, "bad_ek", kq_err_ctx(-EINVAL, "ek_pub: "));
		r = x509_matches_pkey(cert, pkey);
		EVP_PKEY_free(pkey);
		if (r < 0)
			return fail(code, "ek_cert_mismatch",
				    kq_err(-EPERM, "the EK certificate is for another key than the EK"));
		/*
		 * The certificate covers the key only; the rest of the public area
		 * (policy, attributes, symmetric scheme) must be the TCG default EK
		 * template for that key, so one TPM has one EK name.
		 */
		{
			TPMT_PUBLIC want;
			TPM2B_NAME want_name;

			pkey = X509_get0_pubkey(cert);
			if (!pkey || tpm_ek_default_public(pkey, &want) < 0 ||
			    tpm_public_name(&want, &want_name) < 0)
				return fail(code, "bad_ek",
					    kq_err(-EPERM, "the EK is not an RSA-2048 or ECC P-256 key of the TCG "
						   "default templates (L-1, L-2)"));
			if (tpm_public_name(&ek.publicArea, &ek_name) < 0 || want_name.size != ek_name.size ||
			    CRYPTO_memcmp(want_name.name, ek_name.name, ek_name.size) != 0)
				return fail(code, "bad_ek",
					    kq_err(-EPERM, "the EK public area is not the TCG default EK template "
						   "for the certified key"));
		}
		if (strcmp(req->kind, "guest") == 0) {
			/* a vTPM: its certificate comes from its host's vTPM-CA, never a vendor CA */
			r = x509_vtpm_identity(cert, guest_vm, guest_host);
			if (r < 0)
				return fail(code, "ek_cert_untrusted", kq_err_ctx(-EPERM, "vTPM EK certificate: "));
			if (strcmp(guest_vm, req->vm_uuid) != 0)
				return fail(code, "vm_uuid_mismatch",
					    kq_err(-EPERM, "the guest claims VM %s but its EK certificate names VM %s",
						   req->vm_uuid, guest_vm));
			c.guest_cert = guest_cert = TAKE_PTR(cert);
			c.host_id = guest_host;
		} else {
			if (!rg->ek_store)
				return fail(code, "ek_cert_untrusted",
					    kq_err(-EPERM, "no TPM vendor CA is configured (ek_ca_dir)"));
			if ((r = x509_verify_chain(cert, NULL, rg->ek_store, 0)) < 0)
				return fail(code, "ek_cert_untrusted", kq_err_ctx(-EPERM, "EK certificate: "));
		}
	} else if (rg->cfg.require_ek_cert) {
		return fail(code, "ek_cert_required",
			    kq_err(-EPERM, "an EK certificate is required (require_ek_cert = true)"));
	}

	/* the AK */
	if ((r = tpm_public_unmarshal(req->ak_pub.data, req->ak_pub.len, &ak)) < 0)
		return kq_err_ctx(-EINVAL, "ak_pub: ");
	if ((r = tpm_public_check_ak(&ak.publicArea)) < 0)
		return fail(code, "bad_ak", r);
	{
		EVP_PKEY *pkey = NULL;
		if ((r = tpm_public_to_pkey(&ak.publicArea, &pkey)) < 0)
			return fail(code, "bad_ak", kq_err_ctx(-EPERM, "ak_pub: "));
		EVP_PKEY_free(pkey);
	}
	if ((r = tpm_public_name(&ak.publicArea, &ak_name)) < 0)
		return fail(code, "bad_ak", -EINVAL);

	/* the challenge: only the TPM with this EK can open it, and only for this AK */
	if (RAND_priv_bytes(secret, sizeof(secret)) != 1)
		return fail(code, "internal", kq_err(-EIO, "no random bytes"));
	r = tpm_make_credential(&ek.publicArea, &ak_name, secret, sizeof(secret), &blob, &seed);
	if (r == -ENOTSUP || r == -EINVAL)
		return fail(code, "bad_ek", kq_err_ctx(-EPERM, "EK: "));
	if (r == 0)
		r = tpm_activation_proof(secret, sizeof(secret), req->id, proof);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (r < 0)
		return fail(code, "internal", r);
	/* only a hash of the expected proof is stored: reading the database is not enough to activate */
	sha256(proof, sizeof(proof), proof_hash);
	OPENSSL_cleanse(proof, sizeof(proof));
	if (RAND_bytes(handle, sizeof(handle)) != 1)
		return fail(code, "internal", kq_err(-EIO, "no random bytes"));

	c.ek_name = &ek_name;
	c.ak_name = &ak_name;
	c.proof_hash = proof_hash;
	c.handle = handle;
	c.expires = (int64_t)time(NULL) + (int64_t)rg->cfg.challenge_ttl;
	r = db_tx(rg->db, begin_tx, &c);
	if (r < 0)
		return fail(code, c.code ? c.code : "internal", r);
	r = tpm_credfile_write(&blob, &seed, ret_cred, ret_len);
	if (r < 0)
		return fail(code, "internal", r);
	memcpy(ret_handle, handle, sizeof(handle));
	return 0;
}

struct activate_ctx {
	const char *id;
	const uint8_t *handle;
	const uint8_t *proof;
	size_t len;
	const char *code;
	bool new_ak;
};

static int activate_tx(struct db *db, sqlite3 *h, void *ud)
{
	struct activate_ctx *c = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL, *del = NULL, *up = NULL;
	int r, rc;
	bool ok;

	uint8_t hash[32];

	r = db_prepare(h, "SELECT proof_hash, expires FROM challenges WHERE id = ? AND handle = ?", &s);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, c->handle, REG_HANDLE_LEN, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		c->code = "no_challenge";
		return kq_err(-ENOENT, "no pending enrolment for %s with that handle", c->id);
	}
	if (rc != SQLITE_ROW)
		return db_err(h, rc, "challenge lookup");
	sha256(c->proof, c->len, hash);
	ok = c->len == 32 && sqlite3_column_bytes(s, 0) == 32 &&
	     CRYPTO_memcmp(sqlite3_column_blob(s, 0), hash, 32) == 0;
	if (sqlite3_column_int64(s, 1) < (int64_t)time(NULL)) {
		c->code = "challenge_expired";
		ok = false;
	}
	sqlite3_finalize(s);
	s = NULL;

	/* one attempt per challenge, right or wrong */
	if ((r = db_prepare(h, "DELETE FROM challenges WHERE id = ? AND handle = ? RETURNING kind, ek_pub,"
				" ek_name, ek_cert, ak_pub, ak_name, contact, vm_uuid, host_id", &del)) < 0)
		return r;
	sqlite3_bind_text(del, 1, c->id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(del, 2, c->handle, REG_HANDLE_LEN, SQLITE_STATIC);
	if ((rc = sqlite3_step(del)) != SQLITE_ROW)
		return db_err(h, rc, "challenge removal");
	if (!ok) {
		/* the refusal must still drop the challenge: commit, report the failure after */
		return 1;
	}

	r = db_prepare(h,
		       "INSERT INTO agents (id, kind, ek_pub, ek_name, ek_cert, ak_pub, ak_name, contact,"
		       " vm_uuid, host_id, created, activated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?10, ?11, ?9, ?9)"
		       " ON CONFLICT (id) DO UPDATE SET"
		       "  ak_changes = ak_changes + (ak_name != excluded.ak_name),"
		       "  vtpm_ca_pub = CASE WHEN ak_name = excluded.ak_name THEN vtpm_ca_pub END,"
		       "  vtpm_ca_name = CASE WHEN ak_name = excluded.ak_name THEN vtpm_ca_name END,"
		       "  vtpm_ca_at = CASE WHEN ak_name = excluded.ak_name THEN vtpm_ca_at END,"
		       "  payload_pub = CASE WHEN ak_name = excluded.ak_name THEN payload_pub END,"
		       "  payload_name = CASE WHEN ak_name = excluded.ak_name THEN payload_name END,"
		       "  payload_at = CASE WHEN ak_name = excluded.ak_name THEN payload_at END,"
		       "  enrolments = enrolments + 1,"
		       "  ek_cert = coalesce(excluded.ek_cert, ek_cert),"
		       "  ak_pub = excluded.ak_pub, ak_name = excluded.ak_name,"
		       "  contact = excluded.contact, activated = excluded.activated,"
		       "  vm_uuid = excluded.vm_uuid, host_id = excluded.host_id"
		       " WHERE ek_name = excluded.ek_name",
		       &up);
	if (r < 0)
		return r;
	sqlite3_bind_text(up, 1, c->id, -1, SQLITE_STATIC);
	for (int i = 0; i < 9; i++) {
		/* kind, ek_pub, ek_name, ek_cert, ak_pub, ak_name, contact -> ?2..?8; vm_uuid, host_id -> ?10, ?11 */
		int col = i, param = i < 7 ? i + 2 : i + 3;

		switch (sqlite3_column_type(del, col)) {
		case SQLITE_NULL: sqlite3_bind_null(up, param); break;
		case SQLITE_TEXT:
			sqlite3_bind_text(up, param, (const char *)sqlite3_column_text(del, col), -1, SQLITE_TRANSIENT);
			break;
		default:
			sqlite3_bind_blob(up, param, sqlite3_column_blob(del, col), sqlite3_column_bytes(del, col),
					  SQLITE_TRANSIENT);
		}
	}
	sqlite3_bind_int64(up, 9, (int64_t)time(NULL));
	rc = sqlite3_step(up);
	if (rc != SQLITE_DONE)
		return db_err(h, rc, "store agent");
	if (sqlite3_changes(h) != 1) {
		c->code = "ek_mismatch";
		return kq_err(-EPERM, "agent %s is enrolled with another EK", c->id);
	}
	return 0;
}

int reg_enrol_activate(struct registrar *rg, const char *id, const uint8_t handle[REG_HANDLE_LEN],
		       const uint8_t *proof, size_t len, const char **code)
{
	struct activate_ctx c = { .id = id, .handle = handle, .proof = proof, .len = len };
	int r;

	*code = "bad_request";
	if (!reg_valid_id(id))
		return kq_err(-EINVAL, "id must be a UUID");
	r = db_tx(rg->db, activate_tx, &c);
	if (r == 1) {
		if (c.code && strcmp(c.code, "challenge_expired") == 0)
			return fail(code, c.code, kq_err(-EPERM, "the challenge for %s has expired; enrol again", id));
		return fail(code, "bad_proof",
			    kq_err(-EPERM, "the activation proof is wrong: the AK is not in the TPM of this EK"));
	}
	if (r < 0)
		return fail(code, c.code ? c.code : "internal", r);
	return 0;
}

/*
 * Keys an agent has its AK certify (TPM2_Certify) over a fresh single-use
 * nonce: which agents have one, what the key must be, and where it is kept.
 */
struct certified_key {
	const char *purpose;  /* nonces.purpose */
	const char *what;     /* for messages */
	const char *field;    /* the request's field with the public area */
	bool hosts_only;
	const char *bad_key;  /* the refusal code for a key of the wrong kind */
	int (*check)(const TPMT_PUBLIC *p); /* -EPERM with the reason */
	const char *store;    /* ?1 public area, ?2 name, ?3 now, ?4 id */
};

/* The vTPM-CA key signs certificates (so is unrestricted) and never leaves the TPM. */
static int check_ca_key(const TPMT_PUBLIC *p)
{
	const TPMA_OBJECT need = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
				 TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_SIGN_ENCRYPT;
	TPMA_OBJECT at = p->objectAttributes;

	if ((at & need) != need || (at & (TPMA_OBJECT_DECRYPT | TPMA_OBJECT_RESTRICTED)))
		return kq_err(-EPERM, "the vTPM-CA key must be an unrestricted signing key that never leaves the TPM "
			      "(attributes 0x%08x)", at);
	return 0;
}

/*
 * The payload key decrypts with RSAES-OAEP-SHA256 only, inside its TPM: what
 * is encrypted to it can be read nowhere else, and it can sign nothing (so a
 * padding oracle or a signature made with it proves nothing about the TPM).
 */
static int check_payload_key(const TPMT_PUBLIC *p)
{
	const TPMA_OBJECT need = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
				 TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_DECRYPT;
	const TPMS_RSA_PARMS *rsa = &p->parameters.rsaDetail;
	TPMA_OBJECT at = p->objectAttributes;

	if (p->type != TPM2_ALG_RSA || rsa->keyBits < 2048)
		return kq_err(-EPERM, "the payload key must be an RSA key of 2048 bits or more");
	if ((at & need) != need || (at & (TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_RESTRICTED)))
		return kq_err(-EPERM, "the payload key must be an unrestricted decryption key that cannot sign and "
			      "never leaves the TPM (attributes 0x%08x)", at);
	if (rsa->scheme.scheme != TPM2_ALG_OAEP || rsa->scheme.details.oaep.hashAlg != TPM2_ALG_SHA256 ||
	    rsa->symmetric.algorithm != TPM2_ALG_NULL)
		return kq_err(-EPERM, "the payload key must be for RSAES-OAEP with SHA-256 only "
			      "(scheme 0x%04x, hash 0x%04x)", rsa->scheme.scheme, rsa->scheme.details.oaep.hashAlg);
	return 0;
}

static const struct certified_key vtpm_ca_key = {
	.purpose = "vtpm-ca", .what = "vTPM-CA key", .field = "ca_pub", .hosts_only = true,
	.bad_key = "bad_ca_key", .check = check_ca_key,
	.store = "UPDATE agents SET vtpm_ca_pub = ?1, vtpm_ca_name = ?2, vtpm_ca_at = ?3 WHERE id = ?4",
};

static const struct certified_key payload_key = {
	.purpose = "payload-key", .what = "payload key", .field = "key_pub", .hosts_only = false,
	.bad_key = "bad_payload_key", .check = check_payload_key,
	.store = "UPDATE agents SET payload_pub = ?1, payload_name = ?2, payload_at = ?3 WHERE id = ?4",
};

/*
 * Whether agent id may have key k: active (agents holds only activated
 * agents), not revoked, of a kind that has one. ret_ak (optional): its AK.
 */
static int lookup_agent(sqlite3 *h, const char *id, const struct certified_key *k, TPM2B_PUBLIC *ret_ak,
			const char **code)
{
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int r = db_prepare(h, "SELECT kind, revoked, ak_pub FROM agents WHERE id = ?", &s), rc;

	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		*code = "not_found";
		return kq_err(-ENOENT, "no active agent %s", id);
	}
	if (rc != SQLITE_ROW)
		return db_err(h, rc, "agent lookup");
	if (k->hosts_only && strcmp((const char *)sqlite3_column_text(s, 0), "host") != 0) {
		*code = "not_a_host";
		return kq_err(-EPERM, "only hosts have a %s", k->what);
	}
	if (sqlite3_column_type(s, 1) != SQLITE_NULL) {
		*code = "revoked";
		return kq_err(-EPERM, "agent %s is revoked", id);
	}
	if (ret_ak && tpm_public_unmarshal(sqlite3_column_blob(s, 2), (size_t)sqlite3_column_bytes(s, 2), ret_ak) < 0)
		return kq_err(-EIO, "stored AK of %s is unreadable", id);
	return 0;
}

struct nonce_ctx {
	const struct certified_key *k;
	const char *id;
	uint8_t *nonce;
	int64_t expires;
	const char *code;
};

static int nonce_tx(struct db *db, sqlite3 *h, void *ud)
{
	struct nonce_ctx *c = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int r;

	if ((r = lookup_agent(h, c->id, c->k, NULL, &c->code)) < 0)
		return r;
	/*
	 * expired nonces go; a few may be pending per agent and key so nobody
	 * can cancel the agent's own, nor its other key's
	 */
	if ((r = db_prepare(h, "DELETE FROM nonces WHERE expires < ?", &s)) < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)time(NULL));
	if ((r = db_err(h, sqlite3_step(s), "purge nonces")) < 0)
		return r;
	sqlite3_finalize(s);
	s = NULL;
	if ((r = db_prepare(h, "SELECT count(*) FROM nonces WHERE id = ? AND purpose = ?", &s)) < 0)
		return r;
	sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, c->k->purpose, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_ROW)
		return db_err(h, sqlite3_errcode(h), "count nonces");
	if (sqlite3_column_int64(s, 0) >= REG_MAX_PENDING_PER_ID) {
		c->code = "too_many_pending";
		return kq_err(-EAGAIN, "too many nonces are pending for %s; try again later", c->id);
	}
	sqlite3_finalize(s);
	s = NULL;
	r = db_prepare(h, "INSERT INTO nonces (id, purpose, nonce, expires) VALUES (?, ?, ?, ?)", &s);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, c->k->purpose, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, c->nonce, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, c->expires);
	return db_err(h, sqlite3_step(s), "store nonce");
}

static int issue_nonce(struct registrar *rg, const struct certified_key *k, const char *id, uint8_t ret_nonce[32],
		       const char **code)
{
	uint8_t nonce[32];
	struct nonce_ctx c = { .k = k, .id = id, .nonce = nonce };
	int r;

	*code = "bad_request";
	if (!reg_valid_id(id))
		return kq_err(-EINVAL, "id must be a UUID");
	if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		return fail(code, "internal", kq_err(-EIO, "no random bytes"));
	c.expires = (int64_t)time(NULL) + (int64_t)rg->cfg.challenge_ttl;
	r = db_tx(rg->db, nonce_tx, &c);
	if (r < 0)
		return fail(code, c.code ? c.code : "internal", r);
	memcpy(ret_nonce, nonce, 32);
	return 0;
}

int reg_ca_nonce(struct registrar *rg, const char *id, uint8_t ret_nonce[32], const char **code)
{
	return issue_nonce(rg, &vtpm_ca_key, id, ret_nonce, code);
}

int reg_payload_nonce(struct registrar *rg, const char *id, uint8_t ret_nonce[32], const char **code)
{
	return issue_nonce(rg, &payload_key, id, ret_nonce, code);
}

struct certify_ctx {
	const struct certified_key *k;
	const char *id;
	const uint8_t *pub, *attest, *sig;
	size_t pub_len, attest_len, sig_len;
	const char *code;
	int verdict; /* negative: refused after consuming the nonce */
};

/*
 * Consumes the nonce the attestation names in its extraData, if it is one of
 * this agent's for this key; *ret_fresh says whether it was there and unexpired.
 */
static int consume_nonce(sqlite3 *h, const struct certify_ctx *c, const TPMS_ATTEST *a, bool *ret_fresh)
{
	_cleanup_(db_stmt_freep) sqlite3_stmt *n = NULL;
	int r, rc;

	if ((r = db_prepare(h, "DELETE FROM nonces WHERE id = ? AND purpose = ? AND nonce = ? RETURNING expires",
			    &n)) < 0)
		return r;
	sqlite3_bind_text(n, 1, c->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(n, 2, c->k->purpose, -1, SQLITE_STATIC);
	sqlite3_bind_blob(n, 3, a->extraData.buffer, a->extraData.size, SQLITE_STATIC);
	rc = sqlite3_step(n);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_err(h, rc, "nonce lookup");
	*ret_fresh = rc == SQLITE_ROW && a->extraData.size == 32 && sqlite3_column_int64(n, 0) >= (int64_t)time(NULL);
	return 0;
}

static int certify_tx(struct db *db, sqlite3 *h, void *ud)
{
	struct certify_ctx *c = ud;
	const struct certified_key *k = c->k;
	_cleanup_(db_stmt_freep) sqlite3_stmt *up = NULL;
	TPM2B_PUBLIC ak, key;
	TPM2B_NAME key_name;
	TPMT_SIGNATURE sig;
	TPMS_ATTEST a;
	EVP_PKEY *ak_key = NULL, *pkey = NULL;
	bool fresh = false;
	int r;

	if ((r = lookup_agent(h, c->id, k, &ak, &c->code)) < 0)
		return r;
	/*
	 * the attestation names its nonce in extraData; a fresh one of ours equal
	 * to it byte for byte is consumed, and only then is anything else read
	 */
	if (tpm_attest_unmarshal(c->attest, c->attest_len, &a) < 0) {
		c->code = "bad_request";
		return kq_err_ctx(-EINVAL, "attest: ");
	}
	if ((r = consume_nonce(h, c, &a, &fresh)) < 0)
		return r;

#define REFUSE(cd, ...) do { c->code = (cd); c->verdict = kq_err(__VA_ARGS__); goto out; } while (0)
#define REFUSE_CTX(cd, e, ...) do { c->code = (cd); c->verdict = kq_err_ctx((e), __VA_ARGS__); goto out; } while (0)
	if (!fresh)
		REFUSE("stale_nonce", -EPERM, "the certification is not over a fresh nonce from this registrar");
	if (tpm_public_unmarshal(c->pub, c->pub_len, &key) < 0)
		REFUSE_CTX("bad_request", -EINVAL, "%s: ", k->field);
	if ((c->verdict = k->check(&key.publicArea)) < 0) {
		c->code = k->bad_key;
		goto out;
	}
	if (tpm_public_to_pkey(&key.publicArea, &pkey) < 0 || tpm_public_name(&key.publicArea, &key_name) < 0)
		REFUSE_CTX(k->bad_key, -EPERM, "%s: ", k->field);
	if (tpm_signature_unmarshal(c->sig, c->sig_len, &sig) < 0)
		REFUSE_CTX("bad_request", -EINVAL, "signature: ");
	if (tpm_public_to_pkey(&ak.publicArea, &ak_key) < 0)
		REFUSE_CTX("internal", -EIO, "stored AK: ");
	if (tpm_signature_verify(ak_key, &sig, c->attest, c->attest_len) < 0)
		REFUSE("bad_certification", -EPERM, "the certification is not signed by the agent's AK");
	if (a.magic != TPM2_GENERATED_VALUE || a.type != TPM2_ST_ATTEST_CERTIFY)
		REFUSE("bad_certification", -EPERM, "not a TPM2_Certify attestation");
	if (a.attested.certify.name.size != key_name.size ||
	    CRYPTO_memcmp(a.attested.certify.name.name, key_name.name, key_name.size) != 0)
		REFUSE("bad_certification", -EPERM, "the certification is for another key than %s", k->field);
#undef REFUSE
#undef REFUSE_CTX

	r = db_prepare(h, k->store, &up);
	if (r < 0)
		goto out;
	sqlite3_bind_blob(up, 1, c->pub, (int)c->pub_len, SQLITE_STATIC);
	sqlite3_bind_blob(up, 2, key_name.name, key_name.size, SQLITE_STATIC);
	sqlite3_bind_int64(up, 3, (int64_t)time(NULL));
	sqlite3_bind_text(up, 4, c->id, -1, SQLITE_STATIC);
	r = db_err(h, sqlite3_step(up), "store the certified key");
out:
	EVP_PKEY_free(ak_key);
	EVP_PKEY_free(pkey);
	/* a refusal commits the nonce's removal and reports after */
	return c->verdict < 0 ? 1 : r;
}

static int submit_certified(struct registrar *rg, const struct certified_key *k, const char *id, const uint8_t *pub,
			    size_t pub_len, const uint8_t *attest, size_t attest_len, const uint8_t *sig,
			    size_t sig_len, const char **code)
{
	struct certify_ctx c = { .k = k, .id = id, .pub = pub, .pub_len = pub_len, .attest = attest,
				 .attest_len = attest_len, .sig = sig, .sig_len = sig_len };
	int r;

	*code = "bad_request";
	if (!reg_valid_id(id))
		return kq_err(-EINVAL, "id must be a UUID");
	if (pub_len > TPM_MAX_BLOB || attest_len > TPM_MAX_BLOB || sig_len > TPM_MAX_BLOB)
		return kq_err(-EINVAL, "a field is over %u bytes", TPM_MAX_BLOB);
	r = db_tx(rg->db, certify_tx, &c);
	if (r == 1)
		return fail(code, c.code, c.verdict);
	if (r < 0)
		return fail(code, c.code ? c.code : "internal", r);
	return 0;
}

int reg_ca_submit(struct registrar *rg, const char *id, const uint8_t *ca_pub, size_t ca_len,
		  const uint8_t *attest, size_t attest_len, const uint8_t *sig, size_t sig_len,
		  const char **code)
{
	return submit_certified(rg, &vtpm_ca_key, id, ca_pub, ca_len, attest, attest_len, sig, sig_len, code);
}

int reg_payload_submit(struct registrar *rg, const char *id, const uint8_t *key_pub, size_t key_len,
		       const uint8_t *attest, size_t attest_len, const uint8_t *sig, size_t sig_len,
		       const char **code)
{
	return submit_certified(rg, &payload_key, id, key_pub, key_len, attest, attest_len, sig, sig_len, code);
}

static struct json_object *b64_json(const void *data, int len)
{
	_cleanup_free_ char *s = NULL;

	if (!data || len <= 0 || kq_base64_encode(data, (size_t)len, &s) < 0)
		return NULL;
	return json_object_new_string(s);
}

static struct json_object *hex_json(const void *data, int len)
{
	_cleanup_free_ char *s = NULL;

	if (!data || len <= 0 || !(s = kq_hex_dup(data, (size_t)len)))
		return NULL;
	return json_object_new_string(s);
}

#define AGENT_COLS "id, kind, ek_name, ek_cert, ak_name, contact, created, activated, enrolments, ak_changes," \
		   " vtpm_ca_name, vtpm_ca_at, ek_pub, ak_pub, vtpm_ca_pub, vm_uuid, host_id, revoked," \
		   " payload_name, payload_at, payload_pub"

static struct json_object *agent_row_json(sqlite3_stmt *s, bool full)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string((const char *)sqlite3_column_text(s, 0)));
	json_object_object_add(o, "kind", json_object_new_string((const char *)sqlite3_column_text(s, 1)));
	json_object_object_add(o, "state", json_object_new_string(sqlite3_column_type(s, 17) == SQLITE_NULL ? "active"
												     : "revoked"));
	json_object_object_add(o, "ek_name", hex_json(sqlite3_column_blob(s, 2), sqlite3_column_bytes(s, 2)));
	json_object_object_add(o, "ek_cert", json_object_new_boolean(sqlite3_column_type(s, 3) != SQLITE_NULL));
	json_object_object_add(o, "ak_name", hex_json(sqlite3_column_blob(s, 4), sqlite3_column_bytes(s, 4)));
	json_object_object_add(o, "contact", sqlite3_column_type(s, 5) == SQLITE_NULL ? NULL :
				json_object_new_string((const char *)sqlite3_column_text(s, 5)));
	json_object_object_add(o, "created", json_object_new_int64(sqlite3_column_int64(s, 6)));
	json_object_object_add(o, "activated", json_object_new_int64(sqlite3_column_int64(s, 7)));
	json_object_object_add(o, "enrolments", json_object_new_int64(sqlite3_column_int64(s, 8)));
	json_object_object_add(o, "ak_changes", json_object_new_int64(sqlite3_column_int64(s, 9)));
	json_object_object_add(o, "vtpm_ca_name", hex_json(sqlite3_column_blob(s, 10), sqlite3_column_bytes(s, 10)));
	json_object_object_add(o, "vtpm_ca_at", sqlite3_column_type(s, 11) == SQLITE_NULL ? NULL :
				json_object_new_int64(sqlite3_column_int64(s, 11)));
	json_object_object_add(o, "payload_key_name", hex_json(sqlite3_column_blob(s, 18), sqlite3_column_bytes(s, 18)));
	json_object_object_add(o, "payload_key_at", sqlite3_column_type(s, 19) == SQLITE_NULL ? NULL :
				json_object_new_int64(sqlite3_column_int64(s, 19)));
	json_object_object_add(o, "vm_uuid", sqlite3_column_type(s, 15) == SQLITE_NULL ? NULL :
				json_object_new_string((const char *)sqlite3_column_text(s, 15)));
	json_object_object_add(o, "host_id", sqlite3_column_type(s, 16) == SQLITE_NULL ? NULL :
				json_object_new_string((const char *)sqlite3_column_text(s, 16)));
	json_object_object_add(o, "revoked", sqlite3_column_type(s, 17) == SQLITE_NULL ? NULL :
				json_object_new_int64(sqlite3_column_int64(s, 17)));
	if (full) {
		json_object_object_add(o, "ek_pub", b64_json(sqlite3_column_blob(s, 12), sqlite3_column_bytes(s, 12)));
		json_object_object_add(o, "ak_pub", b64_json(sqlite3_column_blob(s, 13), sqlite3_column_bytes(s, 13)));
		json_object_object_add(o, "ek_cert_der", b64_json(sqlite3_column_blob(s, 3), sqlite3_column_bytes(s, 3)));
		json_object_object_add(o, "vtpm_ca_pub", b64_json(sqlite3_column_blob(s, 14), sqlite3_column_bytes(s, 14)));
		json_object_object_add(o, "payload_key_pub", b64_json(sqlite3_column_blob(s, 20), sqlite3_column_bytes(s, 20)));
	}
	return o;
}

struct json_ctx {
	const char *id;
	struct json_object *out;
};

static int show_tx(struct db *db, sqlite3 *h, void *ud)
{
	struct json_ctx *c = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int r = db_prepare(h, "SELECT " AGENT_COLS " FROM agents WHERE id = ?", &s), rc;

	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return kq_err(-ENOENT, "no agent %s", c->id);
	if (rc != SQLITE_ROW)
		return db_err(h, rc, "agent lookup");
	c->out = agent_row_json(s, true);
	return 0;
}

int reg_agent_json(struct registrar *rg, const char *id, struct json_object **ret)
{
	struct json_ctx c = { .id = id };
	int r;

	if (!reg_valid_id(id))
		return kq_err(-EINVAL, "id must be a UUID");
	r = db_tx(rg->db, show_tx, &c);
	if (r < 0)
		return r;
	*ret = c.out;
	return 0;
}

static int list_tx(struct db *db, sqlite3 *h, void *ud)
{
	struct json_ctx *c = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int r = db_prepare(h, "SELECT " AGENT_COLS " FROM agents ORDER BY kind, id", &s), rc;

	if (r < 0)
		return r;
	c->out = json_object_new_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_object_array_add(c->out, agent_row_json(s, false));
	if (rc != SQLITE_DONE) {
		json_object_put(c->out);
		c->out = NULL;
		return db_err(h, rc, "agent list");
	}
	return 0;
}

int reg_list_json(struct registrar *rg, struct json_object **ret)
{
	struct json_ctx c = { 0 };
	int r = db_tx(rg->db, list_tx, &c);

	if (r < 0)
		return r;
	*ret = c.out;
	return 0;
}

static int delete_tx(struct db *db, sqlite3 *h, void *ud)
{
	const char *id = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int r = db_prepare(h, "SELECT revoked FROM agents WHERE id = ?", &s), rc;

	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return kq_err(-ENOENT, "no agent %s", id);
	if (rc != SQLITE_ROW)
		return db_err(h, rc, "delete");
	/* the record is what keeps a revoked TPM from enrolling again */
	if (sqlite3_column_type(s, 0) != SQLITE_NULL)
		return kq_err(-EKEYREVOKED, "agent %s is revoked: its record is kept so that its TPM cannot enrol again",
			      id);
	sqlite3_finalize(s);
	s = NULL;
	if ((r = db_prepare(h, "DELETE FROM agents WHERE id = ?", &s)) < 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	if ((r = db_err(h, sqlite3_step(s), "delete")) < 0)
		return r;
	sqlite3_finalize(s);
	s = NULL;
	/* pending state for the id goes too */
	if ((r = db_prepare(h, "DELETE FROM challenges WHERE id = ?1", &s)) < 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	if ((r = db_err(h, sqlite3_step(s), "delete")) < 0)
		return r;
	sqlite3_finalize(s);
	s = NULL;
	if ((r = db_prepare(h, "DELETE FROM nonces WHERE id = ?1", &s)) < 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	return db_err(h, sqlite3_step(s), "delete");
}

int reg_delete(struct registrar *rg, const char *id)
{
	if (!reg_valid_id(id))
		return kq_err(-EINVAL, "id must be a UUID");
	return db_tx(rg->db, delete_tx, (void *)id);
}

/* Revokes the agent and every other id enrolled with the same EK (the TPM is
 * what is revoked), and drops that EK's pending challenges so none of them
 * can still be activated. */
static int revoke_tx(struct db *db, sqlite3 *h, void *ud)
{
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int r;

	(void)db;
	r = db_prepare(h, "UPDATE agents SET revoked = COALESCE(revoked, ?1)"
			  " WHERE ek_name = (SELECT ek_name FROM agents WHERE id = ?2)", &s);
	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)time(NULL));
	sqlite3_bind_text(s, 2, ud, -1, SQLITE_STATIC);
	if ((r = db_err(h, sqlite3_step(s), "revoke")) < 0)
		return r;
	if (!sqlite3_changes(h))
		return kq_err(-ENOENT, "no agent %s", (const char *)ud);
	sqlite3_finalize(s);
	s = NULL;
	r = db_prepare(h, "DELETE FROM challenges WHERE ek_name = (SELECT ek_name FROM agents WHERE id = ?)", &s);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, ud, -1, SQLITE_STATIC);
	return db_err(h, sqlite3_step(s), "revoke");
}

int reg_revoke(struct registrar *rg, const char *id)
{
	if (!reg_valid_id(id))
		return kq_err(-EINVAL, "id must be a UUID");
	return db_tx(rg->db, revoke_tx, (void *)id);
}
