/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host agent's local socket (docs/vtpm.md): the vTPM manager reports the
 * VMs on this host, and swtpm_setup's cert tool asks for vTPM EK and platform
 * certificates, which the vTPM-CA key in the hardware TPM signs — only for
 * VMs reported as being on this host.
 */
#include "host-agent.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "db/db.h"
#include "json/json.h"
#include "local/local.h"
#include "log/log.h"
#include "tpm/tpm.h"
#include "util/util.h"
#include "x509/x509.h"

#define MOD "vtpm"
#define MAX_UIDS 16
#define CA_DAYS 36500u

struct vtpm_ctx {
	const struct host_agent_config *cfg;
	struct tpmdev *tpm;
	char host_id[37];
	EVP_PKEY *ca_pub;
	X509 *ca_cert;
	uint8_t *ca_der;
	size_t ca_der_len;
	struct db *db;
	uid_t uids[MAX_UIDS];
	size_t n_uids;
	struct local_server *srv;
};

static const char *const migrations[] = {
	"CREATE TABLE vms (uuid TEXT PRIMARY KEY, name TEXT NOT NULL, state TEXT NOT NULL,"
	"  vtpm_dir TEXT, updated INTEGER NOT NULL);"
	"CREATE TABLE issued (serial TEXT PRIMARY KEY, vm_uuid TEXT NOT NULL, type TEXT NOT NULL,"
	"  key_sha256 TEXT NOT NULL, time INTEGER NOT NULL);",
};

static const char *const vm_states[] = { "defined", "running", "stopped", "undefined", "migrating_in",
					 "migrated_out" };

static inline void X509_freep(X509 **p) { X509_free(*p); }
static inline void EVP_PKEY_freep(EVP_PKEY **p) { EVP_PKEY_free(*p); }
static inline void BN_freep(BIGNUM **p) { BN_free(*p); }

/* ---- the vTPM-CA certificate ---- */

/* The CA certificate in state_dir/vtpm-ca.pem for the current CA key, made (signed in the TPM) if needed. */
static int load_ca_cert(struct vtpm_ctx *c)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_(X509_freep) X509 *x = NULL;
	char org[64];
	BIO *b;
	int r;

	if (asprintf(&path, "%s/vtpm-ca.pem", c->cfg->state_dir) < 0)
		return kq_err(-ENOMEM, "out of memory");
	if (x509_read(path, &x) == 0 && x509_matches_pkey(x, c->ca_pub) == 0) {
		c->ca_cert = TAKE_PTR(x);
	} else {
		snprintf(org, sizeof(org), "host %s", c->host_id);
		r = x509_ca_cert_new(&(struct x509_name_spec){ .cn = "kumquat vTPM CA", .org = org }, CA_DAYS, c->ca_pub,
				     &x);
		if (r < 0)
			return r;
		pthread_mutex_lock(&evidence_tpm_lock);
		r = host_ca_sign(c->tpm, (TPM2_HANDLE)c->cfg->ca_key_handle, c->ca_pub, x);
		pthread_mutex_unlock(&evidence_tpm_lock);
		if (r < 0)
			return kq_err_ctx(r, "signing the vTPM-CA certificate: ");
		b = BIO_new(BIO_s_mem());
		if (!b || !PEM_write_bio_X509(b, x)) {
			BIO_free(b);
			return kq_err(-ENOMEM, "out of memory");
		}
		{
			char *data;
			long n = BIO_get_mem_data(b, &data);

			r = kq_write_file(path, data, (size_t)n);
		}
		BIO_free(b);
		if (r < 0)
			return r;
		log_info(MOD, "made the vTPM-CA certificate %s", path);
		c->ca_cert = TAKE_PTR(x);
	}
	{
		int n = i2d_X509(c->ca_cert, &c->ca_der);

		if (n <= 0)
			return kq_err(-EIO, "cannot encode the vTPM-CA certificate");
		c->ca_der_len = (size_t)n;
	}
	return 0;
}

/* ---- the EK from swtpm_setup's --ek ---- */

static int hex_bn(const char *hex, size_t max_bytes, BIGNUM **ret)
{
	_cleanup_free_ uint8_t *buf = malloc(max_bytes);
	size_t n;

	if (!buf)
		return kq_err(-ENOMEM, "out of memory");
	if (kq_hex_decode(hex, buf, max_bytes, &n) < 0 || n == 0)
		return kq_err(-EINVAL, "field 'ek': not a hex number of at most %zu bytes", max_bytes);
	*ret = BN_bin2bn(buf, (int)n, NULL);
	return *ret ? 0 : kq_err(-ENOMEM, "out of memory");
}

int host_vtpm_parse_ek(const char *ek, EVP_PKEY **ret)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	int r = 0, sel;

	if (!bld)
		return kq_err(-ENOMEM, "out of memory");
	if (strncmp(ek, "x=", 2) != 0) {
		_cleanup_(BN_freep) BIGNUM *n = NULL, *e = BN_new();

		if ((r = hex_bn(ek, 512, &n)) < 0)
			goto out;
		if (BN_num_bits(n) != 2048 && BN_num_bits(n) != 3072 && BN_num_bits(n) != 4096) {
			r = kq_err(-EINVAL, "field 'ek': an RSA modulus of %d bits (2048, 3072 or 4096 expected)",
				   BN_num_bits(n));
			goto out;
		}
		if (!e || !BN_set_word(e, 65537) || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) || !(params = OSSL_PARAM_BLD_to_param(bld)) ||
		    !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL))) {
			r = kq_err(-ENOMEM, "out of memory");
			goto out;
		}
		sel = EVP_PKEY_PUBLIC_KEY;
	} else {
		char xs[200], ys[200], id[16];
		uint8_t pt[1 + 2 * 66];
		size_t xl, yl, cs;
		const char *group;

		if (sscanf(ek, "x=%199[0-9a-fA-F],y=%199[0-9a-fA-F],id=%15[a-z0-9]", xs, ys, id) != 3) {
			r = kq_err(-EINVAL, "field 'ek': expected x=HEX,y=HEX,id=CURVE");
			goto out;
		}
		if (strcmp(id, "secp256r1") == 0) {
			group = "P-256";
			cs = 32;
		} else if (strcmp(id, "secp384r1") == 0) {
			group = "P-384";
			cs = 48;
		} else {
			r = kq_err(-EINVAL, "field 'ek': curve '%s' is not secp256r1 or secp384r1", id);
			goto out;
		}
		pt[0] = 0x04;
		if (kq_hex_decode(xs, pt + 1, cs, &xl) < 0 || kq_hex_decode(ys, pt + 1 + cs, cs, &yl) < 0 || xl != cs ||
		    yl != cs) {
			r = kq_err(-EINVAL, "field 'ek': x and y must be %zu bytes each", cs);
			goto out;
		}
		if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * cs) ||
		    !(params = OSSL_PARAM_BLD_to_param(bld)) || !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL))) {
			r = kq_err(-ENOMEM, "out of memory");
			goto out;
		}
		sel = EVP_PKEY_PUBLIC_KEY;
	}
	if (EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &pkey, sel, params) != 1) {
		r = kq_err(-EINVAL, "field 'ek': not a valid public key");
		goto out;
	}
	if (EVP_PKEY_is_a(pkey, "EC")) {
		/* a point off the curve would be a certificate for no key at all */
		EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new(pkey, NULL);
		bool ok = chk && EVP_PKEY_public_check(chk) == 1;

		EVP_PKEY_CTX_free(chk);
		if (!ok) {
			r = kq_err(-EINVAL, "field 'ek': the point is not on the curve");
			goto out;
		}
	}
	*ret = TAKE_PTR(pkey);
out:
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return r;
}

/* ---- the VM map ---- */

struct vm_ctx {
	const char *uuid, *name, *state, *dir;
	char found_state[16];
};

static int vm_put_fn(struct db *db, sqlite3 *h, void *ud)
{
	struct vm_ctx *v = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int r;

	(void)db;
	r = db_prepare(h, "INSERT INTO vms (uuid, name, state, vtpm_dir, updated) VALUES (?1, ?2, ?3, ?4, ?5)"
			  " ON CONFLICT(uuid) DO UPDATE SET name = ?2, state = ?3,"
			  " vtpm_dir = COALESCE(?4, vtpm_dir), updated = ?5", &s);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, v->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, v->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, v->state, -1, SQLITE_STATIC);
	if (v->dir)
		sqlite3_bind_text(s, 4, v->dir, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 4);
	sqlite3_bind_int64(s, 5, (int64_t)time(NULL));
	r = sqlite3_step(s);
	return r == SQLITE_DONE ? 0 : db_err(h, r, "vm");
}

static int vm_get_fn(struct db *db, sqlite3 *h, void *ud)
{
	struct vm_ctx *v = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int r;

	(void)db;
	r = db_prepare(h, "SELECT state FROM vms WHERE uuid = ?", &s);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, v->uuid, -1, SQLITE_STATIC);
	r = sqlite3_step(s);
	if (r == SQLITE_DONE)
		return -ENOENT;
	if (r != SQLITE_ROW)
		return db_err(h, r, "vm");
	snprintf(v->found_state, sizeof(v->found_state), "%s", (const char *)sqlite3_column_text(s, 0));
	return 0;
}

struct states_ctx {
	const char *const *uuids;
	size_t n;
	const char **states;
};

static int vm_states_fn(struct db *db, sqlite3 *h, void *ud)
{
	struct states_ctx *c = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int r;

	(void)db;
	r = db_prepare(h, "SELECT state FROM vms WHERE uuid = ?", &s);
	if (r < 0)
		return r;
	for (size_t i = 0; i < c->n; i++) {
		const char *st;

		c->states[i] = NULL;
		if (!c->uuids[i])
			continue;
		sqlite3_reset(s);
		sqlite3_bind_text(s, 1, c->uuids[i], -1, SQLITE_STATIC);
		r = sqlite3_step(s);
		if (r == SQLITE_DONE)
			continue;
		if (r != SQLITE_ROW)
			return db_err(h, r, "vm");
		st = (const char *)sqlite3_column_text(s, 0);
		for (size_t k = 0; st && k < ARRAY_SIZE(vm_states); k++)
			if (strcmp(st, vm_states[k]) == 0)
				c->states[i] = vm_states[k];
	}
	return 0;
}

int host_vtpm_vm_states(struct host_vtpm *v, const char *const *uuids, size_t n, const char **ret_states)
{
	struct vtpm_ctx *c = (struct vtpm_ctx *)v;

	return db_tx(c->db, vm_states_fn, &(struct states_ctx){ .uuids = uuids, .n = n, .states = ret_states });
}

static int issued_fn(struct db *db, sqlite3 *h, void *ud)
{
	const char *const *f = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int r;

	(void)db;
	r = db_prepare(h, "INSERT OR REPLACE INTO issued (serial, vm_uuid, type, key_sha256, time) VALUES (?, ?, ?, ?, ?)",
		       &s);
	if (r < 0)
		return r;
	for (int i = 0; i < 4; i++)
		sqlite3_bind_text(s, i + 1, f[i], -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, (int64_t)time(NULL));
	r = sqlite3_step(s);
	return r == SQLITE_DONE ? 0 : db_err(h, r, "issued");
}

/* ---- requests ---- */

static bool printable(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

struct vm_req {
	char *op, *vm_uuid, *name, *state, *vtpm_dir;
};

static const struct json_field vm_fields[] = {
	{ "op", JSON_STRING, true, 16, offsetof(struct vm_req, op) },
	{ "vm_uuid", JSON_STRING, true, 36, offsetof(struct vm_req, vm_uuid) },
	{ "name", JSON_STRING, true, 255, offsetof(struct vm_req, name) },
	{ "state", JSON_STRING, true, 16, offsetof(struct vm_req, state) },
	{ "vtpm_dir", JSON_STRING, false, 4096, offsetof(struct vm_req, vtpm_dir) },
	{}
};

static struct json_object *op_vm(struct vtpm_ctx *c, struct json_object *body)
{
	struct vm_req q = {};
	struct json_object *ans;
	bool state_ok = false;
	char uuid[37];
	int r;

	if (json_dispatch(body, vm_fields, &q, false) < 0) {
		ans = local_error("bad_request", "%s", kq_errmsg());
		goto out;
	}
	for (size_t i = 0; i < ARRAY_SIZE(vm_states); i++)
		state_ok |= strcmp(q.state, vm_states[i]) == 0;
	if (!kq_uuid_normalize(q.vm_uuid, uuid) || !printable(q.name, 255) || !state_ok ||
	    (q.vtpm_dir && (q.vtpm_dir[0] != '/' || !printable(q.vtpm_dir, 4096)))) {
		ans = local_error("bad_request", "vm_uuid must be a UUID, name printable, state one of defined, running, "
				  "stopped, undefined, migrating_in, migrated_out, vtpm_dir an absolute path");
		goto out;
	}
	r = db_tx(c->db, vm_put_fn,
		  &(struct vm_ctx){ .uuid = uuid, .name = q.name, .state = q.state, .dir = q.vtpm_dir });
	if (r < 0) {
		log_error(MOD, "%s", kq_errmsg());
		ans = local_error("internal", "cannot record the VM");
		goto out;
	}
	log_info(MOD, "VM %s (%s) is %s", uuid, q.name, q.state);
	ans = json_object_new_object();
	json_object_object_add(ans, "ok", json_object_new_boolean(true));
out:
	json_dispatch_free(vm_fields, &q);
	return ans;
}

struct cert_req {
	char *op, *type, *ek, *vm_uuid, *vm_name;
	char *tpm_manufacturer, *tpm_model, *tpm_version, *tpm_spec_family;
	int64_t tpm_spec_level, tpm_spec_revision;
	char *platform_manufacturer, *platform_model, *platform_version;
};

static const struct json_field cert_fields[] = {
	{ "op", JSON_STRING, true, 16, offsetof(struct cert_req, op) },
	{ "type", JSON_STRING, true, 16, offsetof(struct cert_req, type) },
	{ "ek", JSON_STRING, true, 1200, offsetof(struct cert_req, ek) },
	{ "vm_uuid", JSON_STRING, true, 36, offsetof(struct cert_req, vm_uuid) },
	{ "vm_name", JSON_STRING, false, 255, offsetof(struct cert_req, vm_name) },
	{ "tpm_manufacturer", JSON_STRING, false, 64, offsetof(struct cert_req, tpm_manufacturer) },
	{ "tpm_model", JSON_STRING, false, 64, offsetof(struct cert_req, tpm_model) },
	{ "tpm_version", JSON_STRING, false, 64, offsetof(struct cert_req, tpm_version) },
	{ "tpm_spec_family", JSON_STRING, false, 8, offsetof(struct cert_req, tpm_spec_family) },
	{ "tpm_spec_level", JSON_INT64, false, 0, offsetof(struct cert_req, tpm_spec_level) },
	{ "tpm_spec_revision", JSON_INT64, false, 0, offsetof(struct cert_req, tpm_spec_revision) },
	{ "platform_manufacturer", JSON_STRING, false, 64, offsetof(struct cert_req, platform_manufacturer) },
	{ "platform_model", JSON_STRING, false, 64, offsetof(struct cert_req, platform_model) },
	{ "platform_version", JSON_STRING, false, 64, offsetof(struct cert_req, platform_version) },
	{}
};

static struct json_object *op_ek_cert(struct vtpm_ctx *c, const struct local_request *lr)
{
	struct cert_req q = { .tpm_spec_level = 0, .tpm_spec_revision = 164 };
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *ek = NULL;
	_cleanup_(X509_freep) X509 *x = NULL;
	struct x509_tpm_cert_spec spec = {};
	struct vm_ctx vm = {};
	struct json_object *ans;
	uint8_t *der = NULL;
	char uuid[37];
	bool platform;
	int r, n;

	if (json_dispatch(lr->body, cert_fields, &q, false) < 0) {
		ans = local_error("bad_request", "%s", kq_errmsg());
		goto out;
	}
	platform = strcmp(q.type, "platform") == 0;
	if (!platform && strcmp(q.type, "ek") != 0) {
		ans = local_error("bad_request", "type must be ek or platform");
		goto out;
	}
	if (!kq_uuid_normalize(q.vm_uuid, uuid)) {
		ans = local_error("bad_request", "vm_uuid is not a UUID");
		goto out;
	}
	if (q.tpm_spec_level < 0 || q.tpm_spec_level > 127 || q.tpm_spec_revision < 0 || q.tpm_spec_revision > 0x7fff) {
		ans = local_error("bad_request", "tpm_spec_level or tpm_spec_revision out of range");
		goto out;
	}
	/* vouch only for VMs the vTPM manager reported as being on this host */
	vm.uuid = uuid;
	r = db_tx(c->db, vm_get_fn, &vm);
	if (r == -ENOENT || (r == 0 && strcmp(vm.found_state, "defined") != 0 && strcmp(vm.found_state, "running") != 0 &&
			     strcmp(vm.found_state, "migrating_in") != 0)) {
		log_warn(MOD, "refused a %s certificate for VM %s (uid %u): %s", q.type, uuid, (unsigned)lr->uid,
			 r == -ENOENT ? "not reported on this host" : vm.found_state);
		ans = local_error("unknown_vm", "VM %s is %s on this host", uuid,
				  r == -ENOENT ? "not known" : vm.found_state);
		goto out;
	}
	if (r < 0) {
		ans = local_error("internal", "cannot read the VM map");
		goto out;
	}
	if ((r = host_vtpm_parse_ek(q.ek, &ek)) < 0) {
		ans = local_error("bad_request", "%s", kq_errmsg());
		goto out;
	}
	spec.platform = platform;
	spec.manufacturer = platform ? (q.platform_manufacturer ? q.platform_manufacturer : "kumquat")
				     : (q.tpm_manufacturer ? q.tpm_manufacturer : "id:00001014");
	spec.model = platform ? (q.platform_model ? q.platform_model : "KVM") : (q.tpm_model ? q.tpm_model : "swtpm");
	spec.version = platform ? (q.platform_version ? q.platform_version : "1")
				: (q.tpm_version ? q.tpm_version : "id:20191023");
	spec.spec_family = q.tpm_spec_family ? q.tpm_spec_family : "2.0";
	spec.spec_level = (unsigned)q.tpm_spec_level;
	spec.spec_revision = (unsigned)q.tpm_spec_revision;
	spec.vm_uuid = uuid;
	spec.host_id = c->host_id;
	if ((r = x509_tpm_cert_new(&spec, ek, c->ca_cert, &x)) < 0) {
		ans = local_error("bad_request", "%s", kq_errmsg());
		goto out;
	}
	pthread_mutex_lock(&evidence_tpm_lock);
	r = host_ca_sign(c->tpm, (TPM2_HANDLE)c->cfg->ca_key_handle, c->ca_pub, x);
	pthread_mutex_unlock(&evidence_tpm_lock);
	if (r < 0) {
		log_error(MOD, "signing a certificate for VM %s: %s", uuid, kq_errmsg());
		ans = local_error("tpm_error", "the TPM could not sign the certificate");
		goto out;
	}
	n = i2d_X509(x, &der);
	if (n <= 0) {
		ans = local_error("internal", "cannot encode the certificate");
		goto out;
	}
	{
		uint8_t md[32];
		char keyhex[65], *serial = NULL;
		unsigned char *spki = NULL;
		int sl = i2d_PUBKEY(ek, &spki);
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);

		if (sl > 0 && EVP_Digest(spki, (size_t)sl, md, NULL, EVP_sha256(), NULL) && bn && (serial = BN_bn2hex(bn))) {
			const char *f[4] = { serial, uuid, q.type, keyhex };

			kq_hex_encode(md, sizeof(md), keyhex);
			if (db_tx(c->db, issued_fn, (void *)f) < 0)
				log_warn(MOD, "cannot record the issued certificate: %s", kq_errmsg());
			log_info(MOD, "issued a %s certificate for VM %s (serial %s, key sha256 %.16s...) to uid %u", q.type,
				 uuid, serial, keyhex, (unsigned)lr->uid);
		}
		OPENSSL_free(spki);
		OPENSSL_free(serial);
		BN_free(bn);
	}
	ans = json_object_new_object();
	json_object_object_add(ans, "cert", json_new_base64(der, (size_t)n));
	OPENSSL_free(der);
out:
	json_dispatch_free(cert_fields, &q);
	return ans;
}

static struct json_object *handle(const struct local_request *lr, void *ud)
{
	struct vtpm_ctx *c = ud;
	struct json_object *op;
	const char *o;
	bool allowed = false;

	for (size_t i = 0; i < c->n_uids; i++)
		allowed |= c->uids[i] == lr->uid;
	if (!allowed) {
		log_warn(MOD, "refused a request from uid %u (pid %d): not in [vtpm] socket_uids", (unsigned)lr->uid,
			 (int)lr->pid);
		return local_error("forbidden", "uid %u may not use this socket", (unsigned)lr->uid);
	}
	if (!json_object_object_get_ex(lr->body, "op", &op) || !json_object_is_type(op, json_type_string))
		return local_error("bad_request", "field 'op' is missing");
	o = json_object_get_string(op);
	if (strcmp(o, "vm") == 0)
		return op_vm(c, lr->body);
	if (strcmp(o, "ek_cert") == 0)
		return op_ek_cert(c, lr);
	if (strcmp(o, "ca") == 0) {
		struct json_object *ans = json_object_new_object();

		json_object_object_add(ans, "cert", json_new_base64(c->ca_der, c->ca_der_len));
		json_object_object_add(ans, "host_id", json_object_new_string(c->host_id));
		return ans;
	}
	return local_error("bad_request", "unknown op '%.16s' (vm, ek_cert, ca)", o);
}

/* "0, 107" -> uids; root is always allowed. */
static int parse_uids(const char *s, struct vtpm_ctx *c)
{
	c->uids[c->n_uids++] = 0;
	while (s && *s) {
		char num[16];
		size_t n = strcspn(s, ", ");
		uint64_t v;

		if (n == 0) {
			s++;
			continue;
		}
		if (n >= sizeof(num) || c->n_uids == MAX_UIDS)
			return kq_err(-EINVAL, "[vtpm] socket_uids: at most %d numeric uids", MAX_UIDS - 1);
		memcpy(num, s, n);
		num[n] = 0;
		if (kq_parse_uint(num, UINT32_MAX - 1, &v) < 0)
			return kq_err(-EINVAL, "[vtpm] socket_uids: '%s' is not a uid", num);
		c->uids[c->n_uids++] = (uid_t)v;
		s += n;
	}
	return 0;
}

int host_vtpm_start(const struct host_agent_config *cfg, struct tpmdev *tpm, const char *host_id,
		    struct host_vtpm **ret)
{
	struct vtpm_ctx *c = calloc(1, sizeof(*c));
	_cleanup_free_ char *dbpath = NULL;
	TPM2B_PUBLIC pub;
	enum tpmdev_key_alg alg = strcmp(cfg->ek_alg, "ecc") == 0 ? TPMDEV_ECC_P256 : TPMDEV_RSA2048;
	int r;

	if (!c)
		return kq_err(-ENOMEM, "out of memory");
	c->cfg = cfg;
	c->tpm = tpm;
	snprintf(c->host_id, sizeof(c->host_id), "%s", host_id);
	if ((r = parse_uids(cfg->vtpm_socket_uids, c)) < 0)
		goto fail;
	pthread_mutex_lock(&evidence_tpm_lock);
	r = tpmdev_ca_key(tpm, alg, (TPM2_HANDLE)cfg->ca_key_handle, &pub, NULL);
	pthread_mutex_unlock(&evidence_tpm_lock);
	if (r < 0 || (r = tpm_public_to_pkey(&pub.publicArea, &c->ca_pub)) < 0)
		goto fail;
	if ((r = load_ca_cert(c)) < 0)
		goto fail;
	if (asprintf(&dbpath, "%s/vms.db", cfg->state_dir) < 0) {
		r = kq_err(-ENOMEM, "out of memory");
		goto fail;
	}
	if ((r = db_open(dbpath, migrations, ARRAY_SIZE(migrations), &c->db)) < 0)
		goto fail;
	if ((r = local_server_start(cfg->vtpm_socket, handle, c, &c->srv)) < 0)
		goto fail;
	*ret = (struct host_vtpm *)c;
	return 0;
fail:
	host_vtpm_stop((struct host_vtpm *)c);
	return r;
}

void host_vtpm_stop(struct host_vtpm *v)
{
	struct vtpm_ctx *c = (struct vtpm_ctx *)v;

	if (!c)
		return;
	local_server_stop(c->srv);
	db_close(c->db);
	EVP_PKEY_free(c->ca_pub);
	X509_free(c->ca_cert);
	OPENSSL_free(c->ca_der);
	free(c);
}
