/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registrar enrolment logic with software-held keys (the integration test does
 * the same with swtpm and the real host agent): the happy path, every refusal
 * with its reason and nothing stored, re-enrolment rules, the vTPM-CA and
 * payload-key certifications, and state that survives a restart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "registrar.h"
#include "testlib.h"
#include "testtpm.h"
#include "x509/x509.h"

static char dir[] = "/tmp/kq-reg-XXXXXX";
static char db_path[128], ca_dir[128];
static EVP_PKEY *vendor_key, *other_ca_key;
static X509 *vendor_ca, *other_ca;


static uint8_t *der(X509 *c, size_t *len)
{
	unsigned char *p = NULL;
	int n = i2d_X509(c, &p);

	assert_true(n > 0);
	*len = (size_t)n;
	return p;
}

struct agent {
	char id[37];
	EVP_PKEY *ek_key, *ak_key;
	TPMT_PUBLIC ek, ak;
	TPM2B_NAME ak_name;
	uint8_t ek_pub[1024], ak_pub[1024];
	size_t ek_len, ak_len;
	uint8_t *cert;
	size_t cert_len;
	char vm[37]; /* guests */
};

static void new_agent(struct agent *a, EVP_PKEY *ca_key, X509 *ca)
{
	uint8_t u[16];

	RAND_bytes(u, sizeof(u));
	snprintf(a->id, sizeof(a->id), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
	a->ek_key = EVP_RSA_gen(2048);
	a->ak_key = EVP_RSA_gen(2048);
	test_rsa_public(a->ek_key, 0, &a->ek, true);
	test_rsa_public(a->ak_key, TEST_AK_ATTRS, &a->ak, false);
	assert_int_equal(tpm_public_name(&a->ak, &a->ak_name), 0);
	a->ek_len = test_marshal_public(&a->ek, a->ek_pub, sizeof(a->ek_pub));
	a->ak_len = test_marshal_public(&a->ak, a->ak_pub, sizeof(a->ak_pub));
	a->cert = NULL;
	a->cert_len = 0;
	a->vm[0] = '\0';
	if (ca_key) {
		X509 *c = test_make_cert(a->ek_key, ca_key, ca, "");
		a->cert = der(c, &a->cert_len);
		X509_free(c);
	}
}

/* A guest whose vTPM EK certificate the vTPM-CA (ca_key, ca) issued for vm on host. */
static void new_guest(struct agent *g, EVP_PKEY *ca_key, X509 *ca, const char *vm, const char *host)
{
	struct x509_tpm_cert_spec spec = {
		.manufacturer = "id:00001014", .model = "swtpm", .version = "id:20191023", .spec_family = "2.0",
		.spec_revision = 164, .vm_uuid = vm, .host_id = host,
	};
	X509 *c = NULL;

	new_agent(g, NULL, NULL);
	assert_int_equal(x509_tpm_cert_new(&spec, g->ek_key, ca, &c), 0);
	assert_true(X509_sign(c, ca_key, EVP_sha256()) > 0);
	g->cert = der(c, &g->cert_len);
	X509_free(c);
	snprintf(g->vm, sizeof(g->vm), "%s", vm);
}

/* The agent's TPM makes a new AK (the next enrolment is an AK change). */
static void new_ak(struct agent *a)
{
	EVP_PKEY_free(a->ak_key);
	a->ak_key = EVP_RSA_gen(2048);
	test_rsa_public(a->ak_key, TEST_AK_ATTRS, &a->ak, false);
	assert_int_equal(tpm_public_name(&a->ak, &a->ak_name), 0);
	a->ak_len = test_marshal_public(&a->ak, a->ak_pub, sizeof(a->ak_pub));
}

static void free_agent(struct agent *a)
{
	EVP_PKEY_free(a->ek_key);
	EVP_PKEY_free(a->ak_key);
	OPENSSL_free(a->cert);
}

static struct reg_enrol_req req_of(struct agent *a, const char *kind)
{
	return (struct reg_enrol_req){
		.id = a->id, .kind = (char *)kind,
		.ek_pub = { a->ek_pub, a->ek_len }, .ek_cert = { a->cert, a->cert_len },
		.ak_pub = { a->ak_pub, a->ak_len }, .contact = "https://127.0.0.1:9999",
		.vm_uuid = a->vm[0] ? a->vm : NULL,
	};
}

static struct registrar *open_rg(bool require_cert)
{
	struct registrar_config cfg = {
		.database = db_path, .ek_ca_dir = ca_dir, .require_ek_cert = require_cert,
		.challenge_ttl = 60,
	};
	struct registrar *rg;

	assert_int_equal(registrar_open(&cfg, &rg), 0);
	return rg;
}

/* begin + software ActivateCredential + activate */
static int enrol(struct registrar *rg, struct agent *a, const char *kind, const char **code)
{
	struct reg_enrol_req req = req_of(a, kind);
	_cleanup_free_ uint8_t *cred = NULL;
	uint8_t secret[64], proof[32], handle[REG_HANDLE_LEN];
	size_t len, slen = 0;
	int r;

	r = reg_enrol_begin(rg, &req, &cred, &len, handle, code);
	if (r < 0)
		return r;
	assert_int_equal(test_activate(a->ek_key, &a->ek, &a->ak_name, cred, len, secret, &slen), 0);
	assert_int_equal(tpm_activation_proof(secret, slen, a->id, proof), 0);
	return reg_enrol_activate(rg, a->id, handle, proof, sizeof(proof), code);
}

static int n_agents(struct registrar *rg)
{
	struct json_object *l;
	int n;

	assert_int_equal(reg_list_json(rg, &l), 0);
	n = (int)json_object_array_length(l);
	json_object_put(l);
	return n;
}

static int setup(void **state)
{
	FILE *f;
	char p[160];

	assert_non_null(mkdtemp(dir));
	snprintf(db_path, sizeof(db_path), "%s/registrar.db", dir);
	snprintf(ca_dir, sizeof(ca_dir), "%s/ek-ca", dir);
	mkdir(ca_dir, 0700);
	vendor_key = EVP_RSA_gen(2048);
	other_ca_key = EVP_RSA_gen(2048);
	vendor_ca = test_make_cert(vendor_key, vendor_key, NULL, "TPM vendor CA");
	other_ca = test_make_cert(other_ca_key, other_ca_key, NULL, "Someone else");
	snprintf(p, sizeof(p), "%s/vendor.pem", ca_dir);
	f = fopen(p, "we");
	PEM_write_X509(f, vendor_ca);
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return -1;
	EVP_PKEY_free(vendor_key);
	EVP_PKEY_free(other_ca_key);
	X509_free(vendor_ca);
	X509_free(other_ca);
	return 0;
}

static void test_enrol_and_restart(void **state)
{
	struct registrar *rg = open_rg(true);
	struct agent a;
	const char *code = NULL;
	struct json_object *o;

	new_agent(&a, vendor_key, vendor_ca);
	assert_int_equal(enrol(rg, &a, "host", &code), 0);
	assert_int_equal(reg_agent_json(rg, a.id, &o), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(o, "kind")), "host");
	json_object_put(o);
	registrar_close(rg);

	/* a restart keeps it; re-enrolment with the same EK and a new AK is counted */
	rg = open_rg(true);
	assert_int_equal(reg_agent_json(rg, a.id, &o), 0);
	json_object_put(o);
	new_ak(&a);
	assert_int_equal(enrol(rg, &a, "host", &code), 0);
	assert_int_equal(reg_agent_json(rg, a.id, &o), 0);
	assert_int_equal(json_object_get_int(json_object_object_get(o, "ak_changes")), 1);
	assert_int_equal(json_object_get_int(json_object_object_get(o, "enrolments")), 2);
	json_object_put(o);

	/* another EK under the same id: refused */
	{
		struct agent b;
		new_agent(&b, vendor_key, vendor_ca);
		memcpy(b.id, a.id, sizeof(b.id));
		assert_int_equal(enrol(rg, &b, "host", &code), -EPERM);
		assert_string_equal(code, "ek_mismatch");
		free_agent(&b);
	}
	assert_int_equal(reg_delete(rg, a.id), 0);
	assert_int_equal(reg_delete(rg, a.id), -ENOENT);
	registrar_close(rg);
	free_agent(&a);
}

static void test_refusals(void **state)
{
	struct registrar *rg = open_rg(true);
	struct agent a;
	const char *code = NULL;
	_cleanup_free_ uint8_t *cred = NULL;
	size_t len;
	uint8_t proof[32] = { 0 }, handle[REG_HANDLE_LEN], other[REG_HANDLE_LEN] = { 0 };
	int before = n_agents(rg);
	struct reg_enrol_req req;

	/* wrong activation proof: refused, challenge dropped, nothing stored */
	new_agent(&a, vendor_key, vendor_ca);
	req = req_of(&a, "host");
	assert_int_equal(reg_enrol_begin(rg, &req, &cred, &len, handle, &code), 0);
	free(cred);
	cred = NULL;
	/* a stranger without the handle cannot consume (or even find) the challenge */
	assert_int_equal(reg_enrol_activate(rg, a.id, other, proof, sizeof(proof), &code), -ENOENT);
	assert_int_equal(reg_enrol_activate(rg, a.id, handle, proof, sizeof(proof), &code), -EPERM);
	assert_string_equal(code, "bad_proof");
	assert_int_equal(reg_enrol_activate(rg, a.id, handle, proof, sizeof(proof), &code), -ENOENT);
	assert_string_equal(code, "no_challenge");
	/* pending challenges per id are bounded */
	for (int i = 0; i < REG_MAX_PENDING_PER_ID; i++) {
		assert_int_equal(reg_enrol_begin(rg, &req, &cred, &len, handle, &code), 0);
		free(cred);
		cred = NULL;
	}
	assert_int_equal(reg_enrol_begin(rg, &req, &cred, &len, handle, &code), -EAGAIN);
	assert_string_equal(code, "too_many_pending");
	free_agent(&a);

	/* one spelling per UUID: uppercase is refused (the API lowercases first) */
	new_agent(&a, vendor_key, vendor_ca);
	for (char *p = a.id; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	req = req_of(&a, "host");
	assert_int_equal(reg_enrol_begin(rg, &req, &cred, &len, handle, &code), -EINVAL);
	free_agent(&a);

	/* the EK public area must be the default template of the certified key */
	new_agent(&a, vendor_key, vendor_ca);
	a.ek.authPolicy.buffer[0] ^= 1;
	a.ek_len = test_marshal_public(&a.ek, a.ek_pub, sizeof(a.ek_pub));
	req = req_of(&a, "host");
	assert_int_equal(reg_enrol_begin(rg, &req, &cred, &len, handle, &code), -EPERM);
	assert_string_equal(code, "bad_ek");
	free_agent(&a);

	/* a contact that is not an https URL */
	new_agent(&a, vendor_key, vendor_ca);
	req = req_of(&a, "host");
	req.contact = "http://plain";
	assert_int_equal(reg_enrol_begin(rg, &req, &cred, &len, handle, &code), -EINVAL);
	free_agent(&a);

	/* EK certificate from an untrusted CA */
	new_agent(&a, other_ca_key, other_ca);
	assert_int_equal(enrol(rg, &a, "host", &code), -EPERM);
	assert_string_equal(code, "ek_cert_untrusted");
	free_agent(&a);

	/* EK certificate for another key */
	{
		struct agent b;
		new_agent(&a, vendor_key, vendor_ca);
		new_agent(&b, vendor_key, vendor_ca);
		OPENSSL_free(a.cert);
		a.cert = b.cert;
		a.cert_len = b.cert_len;
		b.cert = NULL;
		assert_int_equal(enrol(rg, &a, "host", &code), -EPERM);
		assert_string_equal(code, "ek_cert_mismatch");
		free_agent(&a);
		free_agent(&b);
	}

	/* no EK certificate while one is required */
	new_agent(&a, NULL, NULL);
	assert_int_equal(enrol(rg, &a, "host", &code), -EPERM);
	assert_string_equal(code, "ek_cert_required");
	free_agent(&a);

	/* an AK that is not a restricted signing key */
	new_agent(&a, vendor_key, vendor_ca);
	test_rsa_public(a.ak_key, TEST_AK_ATTRS & ~TPMA_OBJECT_RESTRICTED, &a.ak, false);
	a.ak_len = test_marshal_public(&a.ak, a.ak_pub, sizeof(a.ak_pub));
	assert_int_equal(enrol(rg, &a, "host", &code), -EPERM);
	assert_string_equal(code, "bad_ak");
	/* an AK that is the EK */
	memcpy(a.ak_pub, a.ek_pub, a.ek_len);
	a.ak_len = a.ek_len;
	assert_int_equal(enrol(rg, &a, "host", &code), -EPERM);
	assert_string_equal(code, "bad_ak");
	free_agent(&a);

	/* malformed input */
	new_agent(&a, vendor_key, vendor_ca);
	req = req_of(&a, "host");
	req.id = "not-a-uuid";
	assert_int_equal(reg_enrol_begin(rg, &req, &cred, &len, handle, &code), -EINVAL);
	req = req_of(&a, "martian");
	assert_int_equal(reg_enrol_begin(rg, &req, &cred, &len, handle, &code), -EINVAL);
	req = req_of(&a, "host");
	req.ek_pub.len = 10;
	assert_int_equal(reg_enrol_begin(rg, &req, &cred, &len, handle, &code), -EINVAL);
	req = req_of(&a, "host");
	req.ek_cert.len = 100;
	assert_int_equal(reg_enrol_begin(rg, &req, &cred, &len, handle, &code), -EINVAL);
	free_agent(&a);

	assert_int_equal(n_agents(rg), before);
	registrar_close(rg);
}

static void test_vtpm_ca(void **state)
{
	struct registrar *rg = open_rg(true);
	struct agent a, g;
	const char *code = NULL;
	uint8_t nonce[32], ca_pub[1024], attest[4096], sig[1024];
	size_t ca_len, attest_len, sig_len;
	EVP_PKEY *ca_key = EVP_RSA_gen(2048), *stranger = EVP_RSA_gen(2048);
	TPMT_PUBLIC ca;
	TPMS_ATTEST at = { .magic = TPM2_GENERATED_VALUE, .type = TPM2_ST_ATTEST_CERTIFY };
	struct json_object *o;

	new_agent(&a, vendor_key, vendor_ca);
	assert_int_equal(enrol(rg, &a, "host", &code), 0);
	test_rsa_public(ca_key, TEST_CA_ATTRS, &ca, false);
	ca.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
	ca_len = test_marshal_public(&ca, ca_pub, sizeof(ca_pub));
	assert_int_equal(tpm_public_name(&ca, &at.attested.certify.name), 0);

	/* right: signed by the host AK over a fresh nonce */
	assert_int_equal(reg_ca_nonce(rg, a.id, nonce, &code), 0);
	at.extraData.size = 32;
	memcpy(at.extraData.buffer, nonce, 32);
	attest_len = test_sign_attest(a.ak_key, &at, attest, sizeof(attest), sig, sizeof(sig), &sig_len);
	assert_int_equal(reg_ca_submit(rg, a.id, ca_pub, ca_len, attest, attest_len, sig, sig_len, &code), 0);
	assert_int_equal(reg_agent_json(rg, a.id, &o), 0);
	assert_non_null(json_object_object_get(o, "vtpm_ca_name"));
	json_object_put(o);

	/* the same nonce again: stale */
	assert_int_equal(reg_ca_submit(rg, a.id, ca_pub, ca_len, attest, attest_len, sig, sig_len, &code), -EPERM);
	assert_string_equal(code, "stale_nonce");

	/* signed by another key */
	assert_int_equal(reg_ca_nonce(rg, a.id, nonce, &code), 0);
	memcpy(at.extraData.buffer, nonce, 32);
	attest_len = test_sign_attest(stranger, &at, attest, sizeof(attest), sig, sizeof(sig), &sig_len);
	assert_int_equal(reg_ca_submit(rg, a.id, ca_pub, ca_len, attest, attest_len, sig, sig_len, &code), -EPERM);
	assert_string_equal(code, "bad_certification");

	/* over an old nonce */
	assert_int_equal(reg_ca_nonce(rg, a.id, nonce, &code), 0);
	at.extraData.buffer[0] ^= 1;
	attest_len = test_sign_attest(a.ak_key, &at, attest, sizeof(attest), sig, sizeof(sig), &sig_len);
	assert_int_equal(reg_ca_submit(rg, a.id, ca_pub, ca_len, attest, attest_len, sig, sig_len, &code), -EPERM);
	assert_string_equal(code, "stale_nonce");

	/* certifying another key than the one submitted */
	assert_int_equal(reg_ca_nonce(rg, a.id, nonce, &code), 0);
	memcpy(at.extraData.buffer, nonce, 32);
	at.attested.certify.name.name[5] ^= 1;
	attest_len = test_sign_attest(a.ak_key, &at, attest, sizeof(attest), sig, sizeof(sig), &sig_len);
	assert_int_equal(reg_ca_submit(rg, a.id, ca_pub, ca_len, attest, attest_len, sig, sig_len, &code), -EPERM);
	assert_string_equal(code, "bad_certification");

	/* a restricted key cannot be a CA key */
	assert_int_equal(reg_ca_nonce(rg, a.id, nonce, &code), 0);
	ca.objectAttributes |= TPMA_OBJECT_RESTRICTED;
	ca_len = test_marshal_public(&ca, ca_pub, sizeof(ca_pub));
	assert_int_equal(tpm_public_name(&ca, &at.attested.certify.name), 0);
	memcpy(at.extraData.buffer, nonce, 32);
	attest_len = test_sign_attest(a.ak_key, &at, attest, sizeof(attest), sig, sizeof(sig), &sig_len);
	assert_int_equal(reg_ca_submit(rg, a.id, ca_pub, ca_len, attest, attest_len, sig, sig_len, &code), -EPERM);
	assert_string_equal(code, "bad_ca_key");

	/* a stranger asking for nonces cannot cancel the host's own: several may be pending */
	{
		uint8_t mine[32], theirs[32];
		ca.objectAttributes &= ~TPMA_OBJECT_RESTRICTED;
		ca_len = test_marshal_public(&ca, ca_pub, sizeof(ca_pub));
		assert_int_equal(tpm_public_name(&ca, &at.attested.certify.name), 0);
		assert_int_equal(reg_ca_nonce(rg, a.id, mine, &code), 0);
		assert_int_equal(reg_ca_nonce(rg, a.id, theirs, &code), 0);
		memcpy(at.extraData.buffer, mine, 32);
		attest_len = test_sign_attest(a.ak_key, &at, attest, sizeof(attest), sig, sizeof(sig), &sig_len);
		assert_int_equal(reg_ca_submit(rg, a.id, ca_pub, ca_len, attest, attest_len, sig, sig_len, &code), 0);
	}

	/* guests: a vTPM EK certificate from this host's vTPM-CA, naming the VM they claim */
	{
		static const char vm[] = "7c9d9a4e-0000-4000-8000-000000000001";
		X509 *ca_cert = NULL;
		struct agent other_host;

		assert_int_equal(x509_ca_cert_new(&(struct x509_name_spec){ .cn = "kumquat vTPM CA" }, 3650, ca_key,
						  &ca_cert), 0);
		assert_true(X509_sign(ca_cert, ca_key, EVP_sha256()) > 0);

		new_guest(&g, ca_key, ca_cert, vm, a.id);
		assert_int_equal(enrol(rg, &g, "guest", &code), 0);
		assert_int_equal(reg_agent_json(rg, g.id, &o), 0);
		assert_string_equal(json_object_get_string(json_object_object_get(o, "vm_uuid")), vm);
		assert_string_equal(json_object_get_string(json_object_object_get(o, "host_id")), a.id);
		json_object_put(o);
		/* guests have no vTPM CA */
		assert_int_equal(reg_ca_nonce(rg, g.id, nonce, &code), -EPERM);
		assert_string_equal(code, "not_a_host");
		free_agent(&g);

		/* claiming another VM than the certificate names */
		new_guest(&g, ca_key, ca_cert, vm, a.id);
		snprintf(g.vm, sizeof(g.vm), "7c9d9a4e-0000-4000-8000-000000000002");
		assert_int_equal(enrol(rg, &g, "guest", &code), -EPERM);
		assert_string_equal(code, "vm_uuid_mismatch");
		/* no VM at all, or a VM for a host */
		g.vm[0] = '\0';
		assert_int_equal(enrol(rg, &g, "guest", &code), -EINVAL);
		snprintf(g.vm, sizeof(g.vm), "%s", vm);
		assert_int_equal(enrol(rg, &g, "host", &code), -EINVAL);
		free_agent(&g);

		/* signed by another key under the same CA name */
		new_guest(&g, stranger, ca_cert, vm, a.id);
		assert_int_equal(enrol(rg, &g, "guest", &code), -EPERM);
		assert_string_equal(code, "ek_cert_untrusted");
		free_agent(&g);

		/* a vendor-issued EK certificate (a hardware TPM claiming to be a vTPM) */
		new_agent(&g, vendor_key, vendor_ca);
		snprintf(g.vm, sizeof(g.vm), "%s", vm);
		assert_int_equal(enrol(rg, &g, "guest", &code), -EPERM);
		assert_string_equal(code, "ek_cert_untrusted");
		free_agent(&g);

		/* naming a host that is not enrolled */
		new_guest(&g, ca_key, ca_cert, vm, "7c9d9a4e-0000-4000-8000-0000000000ff");
		assert_int_equal(enrol(rg, &g, "guest", &code), -EPERM);
		assert_string_equal(code, "unknown_host");
		free_agent(&g);

		/* a host that never had its vTPM-CA certified */
		new_agent(&other_host, vendor_key, vendor_ca);
		assert_int_equal(enrol(rg, &other_host, "host", &code), 0);
		new_guest(&g, ca_key, ca_cert, vm, other_host.id);
		assert_int_equal(enrol(rg, &g, "guest", &code), -EPERM);
		assert_string_equal(code, "host_not_active");
		free_agent(&g);

		/* a revoked host vouches for nobody, and cannot enrol again */
		assert_int_equal(reg_revoke(rg, a.id), 0);
		new_guest(&g, ca_key, ca_cert, vm, a.id);
		assert_int_equal(enrol(rg, &g, "guest", &code), -EPERM);
		assert_string_equal(code, "host_revoked");
		free_agent(&g);
		assert_int_equal(enrol(rg, &a, "host", &code), -EPERM);
		assert_string_equal(code, "revoked");
		/* not under another id either, and the record that says so cannot be deleted */
		{
			char revoked_id[37];

			memcpy(revoked_id, a.id, sizeof(revoked_id));
			snprintf(a.id, sizeof(a.id), "7c9d9a4e-0000-4000-8000-0000000000aa");
			assert_int_equal(enrol(rg, &a, "host", &code), -EPERM);
			assert_string_equal(code, "revoked");
			assert_int_equal(reg_agent_json(rg, a.id, &o), -ENOENT);
			memcpy(a.id, revoked_id, sizeof(revoked_id));
			assert_int_equal(reg_delete(rg, a.id), -EKEYREVOKED);
		}
		assert_int_equal(reg_agent_json(rg, a.id, &o), 0);
		assert_string_equal(json_object_get_string(json_object_object_get(o, "state")), "revoked");
		json_object_put(o);
		assert_int_equal(reg_revoke(rg, "7c9d9a4e-0000-4000-8000-0000000000ff"), -ENOENT);
		free_agent(&other_host);
		X509_free(ca_cert);
		/* the rest of this test needs a host that may enrol: start from a fresh one */
		free_agent(&a);
		new_agent(&a, vendor_key, vendor_ca);
		assert_int_equal(enrol(rg, &a, "host", &code), 0);
		assert_int_equal(reg_ca_nonce(rg, a.id, nonce, &code), 0);
		memcpy(at.extraData.buffer, nonce, 32);
		assert_int_equal(tpm_public_name(&ca, &at.attested.certify.name), 0);
		attest_len = test_sign_attest(a.ak_key, &at, attest, sizeof(attest), sig, sizeof(sig), &sig_len);
		assert_int_equal(reg_ca_submit(rg, a.id, ca_pub, ca_len, attest, attest_len, sig, sig_len, &code), 0);
	}

	/* a new AK forgets the vTPM CA certified by the old one */
	new_ak(&a);
	assert_int_equal(enrol(rg, &a, "host", &code), 0);
	assert_int_equal(reg_agent_json(rg, a.id, &o), 0);
	assert_null(json_object_object_get(o, "vtpm_ca_name"));
	json_object_put(o);

	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(stranger);
	free_agent(&a);
	registrar_close(rg);
}

/* The payload key as tpmdev_payload_key makes it: RSA-2048 decrypt-only, RSAES-OAEP-SHA256. */
#define PAYLOAD_ATTRS (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | \
		       TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_DECRYPT)

static void payload_public(EVP_PKEY *key, TPMA_OBJECT attrs, TPMT_PUBLIC *p)
{
	test_rsa_public(key, attrs, p, false);
	p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_OAEP;
	p->parameters.rsaDetail.scheme.details.oaep.hashAlg = TPM2_ALG_SHA256;
}

/*
 * A TPM2_Certify of the key named by certified (NULL: pub) by signer over
 * nonce, submitted with pub: to the payload-key route, or the vTPM-CA's.
 */
static int certify(struct registrar *rg, bool ca, const char *id, const TPMT_PUBLIC *pub, EVP_PKEY *signer,
		   const uint8_t nonce[32], const TPMT_PUBLIC *certified, const char **code)
{
	TPMS_ATTEST at = { .magic = TPM2_GENERATED_VALUE, .type = TPM2_ST_ATTEST_CERTIFY };
	uint8_t key_pub[1024], attest[4096], sig[1024];
	size_t key_len, attest_len, sig_len;

	key_len = test_marshal_public(pub, key_pub, sizeof(key_pub));
	assert_int_equal(tpm_public_name(certified ? certified : pub, &at.attested.certify.name), 0);
	at.extraData.size = 32;
	memcpy(at.extraData.buffer, nonce, 32);
	attest_len = test_sign_attest(signer, &at, attest, sizeof(attest), sig, sizeof(sig), &sig_len);
	if (ca)
		return reg_ca_submit(rg, id, key_pub, key_len, attest, attest_len, sig, sig_len, code);
	return reg_payload_submit(rg, id, key_pub, key_len, attest, attest_len, sig, sig_len, code);
}

/* A fresh payload-key nonce for id, then certify() of pub by signer over it. */
static int submit_payload(struct registrar *rg, const char *id, const TPMT_PUBLIC *pub, EVP_PKEY *signer,
			  const TPMT_PUBLIC *certified, const char **code)
{
	uint8_t nonce[32];

	assert_int_equal(reg_payload_nonce(rg, id, nonce, code), 0);
	return certify(rg, false, id, pub, signer, nonce, certified, code);
}

static void test_payload_key(void **state)
{
	struct registrar *rg = open_rg(true);
	struct agent a, g;
	const char *code = NULL;
	uint8_t nonce[32];
	EVP_PKEY *pk = EVP_RSA_gen(2048), *other = EVP_RSA_gen(2048), *stranger = EVP_RSA_gen(2048);
	EVP_PKEY *ca_key = EVP_RSA_gen(2048), *small = EVP_RSA_gen(1024);
	TPMT_PUBLIC key, bad, ca;
	TPM2B_NAME name;
	struct json_object *o;

	new_agent(&a, vendor_key, vendor_ca);
	assert_int_equal(enrol(rg, &a, "host", &code), 0);
	payload_public(pk, PAYLOAD_ATTRS, &key);
	assert_int_equal(tpm_public_name(&key, &name), 0);

	/* unknown agents get no nonce */
	assert_int_equal(reg_payload_nonce(rg, "7c9d9a4e-0000-4000-8000-0000000000fe", nonce, &code), -ENOENT);
	assert_string_equal(code, "not_found");

	/* right: the key certified by the agent's AK over a fresh nonce */
	assert_int_equal(reg_payload_nonce(rg, a.id, nonce, &code), 0);
	assert_int_equal(certify(rg, false, a.id, &key, a.ak_key, nonce, NULL, &code), 0);
	assert_int_equal(reg_agent_json(rg, a.id, &o), 0);
	{
		_cleanup_free_ char *hex = kq_hex_dup(name.name, name.size);

		assert_string_equal(json_object_get_string(json_object_object_get(o, "payload_key_name")), hex);
	}
	assert_true(json_object_get_int64(json_object_object_get(o, "payload_key_at")) > 0);
	assert_non_null(json_object_object_get(o, "payload_key_pub"));
	assert_null(json_object_object_get(o, "vtpm_ca_name"));
	json_object_put(o);
	/* the list shows the name, not the public area */
	assert_int_equal(reg_list_json(rg, &o), 0);
	for (size_t i = 0; i < json_object_array_length(o); i++) {
		struct json_object *e = json_object_array_get_idx(o, i), *v;

		assert_true(json_object_object_get_ex(e, "payload_key_name", &v));
		assert_true(json_object_object_get_ex(e, "payload_key_at", &v));
		assert_false(json_object_object_get_ex(e, "payload_key_pub", &v));
	}
	json_object_put(o);

	/* the same nonce again: stale */
	assert_int_equal(certify(rg, false, a.id, &key, a.ak_key, nonce, NULL, &code), -EPERM);
	assert_string_equal(code, "stale_nonce");
	/* over a nonce the registrar never gave */
	assert_int_equal(reg_payload_nonce(rg, a.id, nonce, &code), 0);
	nonce[0] ^= 1;
	assert_int_equal(certify(rg, false, a.id, &key, a.ak_key, nonce, NULL, &code), -EPERM);
	assert_string_equal(code, "stale_nonce");
	/* a vTPM-CA nonce is not a payload-key nonce, nor the other way round */
	assert_int_equal(reg_ca_nonce(rg, a.id, nonce, &code), 0);
	assert_int_equal(certify(rg, false, a.id, &key, a.ak_key, nonce, NULL, &code), -EPERM);
	assert_string_equal(code, "stale_nonce");
	test_rsa_public(ca_key, TEST_CA_ATTRS, &ca, false);
	assert_int_equal(reg_payload_nonce(rg, a.id, nonce, &code), 0);
	assert_int_equal(certify(rg, true, a.id, &ca, a.ak_key, nonce, NULL, &code), -EPERM);
	assert_string_equal(code, "stale_nonce");

	/* keys of the wrong kind */
	payload_public(pk, PAYLOAD_ATTRS | TPMA_OBJECT_SIGN_ENCRYPT, &bad);
	assert_int_equal(submit_payload(rg, a.id, &bad, a.ak_key, NULL, &code), -EPERM);
	assert_string_equal(code, "bad_payload_key");
	payload_public(pk, PAYLOAD_ATTRS | TPMA_OBJECT_RESTRICTED, &bad);
	assert_int_equal(submit_payload(rg, a.id, &bad, a.ak_key, NULL, &code), -EPERM);
	assert_string_equal(code, "bad_payload_key");
	payload_public(pk, PAYLOAD_ATTRS & ~TPMA_OBJECT_FIXEDTPM, &bad);
	assert_int_equal(submit_payload(rg, a.id, &bad, a.ak_key, NULL, &code), -EPERM);
	assert_string_equal(code, "bad_payload_key");
	payload_public(pk, PAYLOAD_ATTRS, &bad);
	bad.parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSAES;
	assert_int_equal(submit_payload(rg, a.id, &bad, a.ak_key, NULL, &code), -EPERM);
	assert_string_equal(code, "bad_payload_key");
	bad.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
	assert_int_equal(submit_payload(rg, a.id, &bad, a.ak_key, NULL, &code), -EPERM);
	assert_string_equal(code, "bad_payload_key");
	payload_public(pk, PAYLOAD_ATTRS, &bad);
	bad.parameters.rsaDetail.scheme.details.oaep.hashAlg = TPM2_ALG_SHA1;
	assert_int_equal(submit_payload(rg, a.id, &bad, a.ak_key, NULL, &code), -EPERM);
	assert_string_equal(code, "bad_payload_key");
	payload_public(small, PAYLOAD_ATTRS, &bad);
	bad.parameters.rsaDetail.keyBits = 1024;
	assert_int_equal(submit_payload(rg, a.id, &bad, a.ak_key, NULL, &code), -EPERM);
	assert_string_equal(code, "bad_payload_key");
	/* the nonce is used up by a refusal: the right key over it is now stale */
	payload_public(pk, PAYLOAD_ATTRS | TPMA_OBJECT_SIGN_ENCRYPT, &bad);
	assert_int_equal(reg_payload_nonce(rg, a.id, nonce, &code), 0);
	assert_int_equal(certify(rg, false, a.id, &bad, a.ak_key, nonce, NULL, &code), -EPERM);
	assert_string_equal(code, "bad_payload_key");
	assert_int_equal(certify(rg, false, a.id, &key, a.ak_key, nonce, NULL, &code), -EPERM);
	assert_string_equal(code, "stale_nonce");

	/* signed by another key than the agent's AK */
	assert_int_equal(submit_payload(rg, a.id, &key, stranger, NULL, &code), -EPERM);
	assert_string_equal(code, "bad_certification");
	/* certifying another key than the one submitted */
	payload_public(other, PAYLOAD_ATTRS, &bad);
	assert_int_equal(submit_payload(rg, a.id, &key, a.ak_key, &bad, &code), -EPERM);
	assert_string_equal(code, "bad_certification");
	/* none of the refusals replaced the recorded key */
	assert_int_equal(reg_agent_json(rg, a.id, &o), 0);
	{
		_cleanup_free_ char *hex = kq_hex_dup(name.name, name.size);

		assert_string_equal(json_object_get_string(json_object_object_get(o, "payload_key_name")), hex);
	}
	json_object_put(o);

	assert_int_equal(reg_ca_nonce(rg, a.id, nonce, &code), 0);
	assert_int_equal(certify(rg, true, a.id, &ca, a.ak_key, nonce, NULL, &code), 0);

	/* guests have a payload key too (but no vTPM CA) */
	{
		static const char vm[] = "7c9d9a4e-0000-4000-8000-000000000003";
		X509 *ca_cert = NULL;

		assert_int_equal(x509_ca_cert_new(&(struct x509_name_spec){ .cn = "kumquat vTPM CA" }, 3650, ca_key,
						  &ca_cert), 0);
		assert_true(X509_sign(ca_cert, ca_key, EVP_sha256()) > 0);
		new_guest(&g, ca_key, ca_cert, vm, a.id);
		X509_free(ca_cert);
		assert_int_equal(enrol(rg, &g, "guest", &code), 0);
		assert_int_equal(reg_ca_nonce(rg, g.id, nonce, &code), -EPERM);
		assert_string_equal(code, "not_a_host");
		payload_public(other, PAYLOAD_ATTRS, &bad);
		assert_int_equal(submit_payload(rg, g.id, &bad, g.ak_key, NULL, &code), 0);
		/* another agent's AK does not vouch for it */
		assert_int_equal(submit_payload(rg, g.id, &bad, a.ak_key, NULL, &code), -EPERM);
		assert_string_equal(code, "bad_certification");
		assert_int_equal(reg_agent_json(rg, g.id, &o), 0);
		assert_non_null(json_object_object_get(o, "payload_key_name"));
		json_object_put(o);

		/* revoked: no nonce, and a nonce from before is refused */
		assert_int_equal(reg_payload_nonce(rg, g.id, nonce, &code), 0);
		assert_int_equal(reg_revoke(rg, g.id), 0);
		assert_int_equal(certify(rg, false, g.id, &bad, g.ak_key, nonce, NULL, &code), -EPERM);
		assert_string_equal(code, "revoked");
		assert_int_equal(reg_payload_nonce(rg, g.id, nonce, &code), -EPERM);
		assert_string_equal(code, "revoked");
		free_agent(&g);
	}

	/* the payload key survives a restart; a new AK forgets it */
	registrar_close(rg);
	rg = open_rg(true);
	assert_int_equal(reg_agent_json(rg, a.id, &o), 0);
	assert_non_null(json_object_object_get(o, "payload_key_name"));
	json_object_put(o);
	new_ak(&a);
	assert_int_equal(enrol(rg, &a, "host", &code), 0);
	assert_int_equal(reg_agent_json(rg, a.id, &o), 0);
	assert_null(json_object_object_get(o, "payload_key_name"));
	assert_null(json_object_object_get(o, "payload_key_at"));
	assert_null(json_object_object_get(o, "vtpm_ca_name"));
	json_object_put(o);
	/* the old AK's certification is no good any more; the new one's is */
	assert_int_equal(submit_payload(rg, a.id, &key, stranger, NULL, &code), -EPERM);
	assert_int_equal(submit_payload(rg, a.id, &key, a.ak_key, NULL, &code), 0);

	/* nonces are bounded per agent and purpose: payload-key ones do not block the vTPM-CA's */
	{
		int n = 0; /* two are pending already: the wrong-nonce tests above left theirs unused */

		while (reg_payload_nonce(rg, a.id, nonce, &code) == 0)
			n++;
		assert_int_equal(n, REG_MAX_PENDING_PER_ID - 2);
		assert_string_equal(code, "too_many_pending");
	}
	assert_int_equal(reg_ca_nonce(rg, a.id, nonce, &code), 0);

	EVP_PKEY_free(pk);
	EVP_PKEY_free(other);
	EVP_PKEY_free(stranger);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(small);
	free_agent(&a);
	registrar_close(rg);
}

/* Revocation follows the TPM: every id enrolled with its EK is revoked, a
 * challenge begun before the revocation can no longer be activated. */
static void test_revoke_follows_ek(void **state)
{
	struct registrar *rg = open_rg(true);
	struct agent a;
	const char *code = NULL;
	char id1[37], id2[37];
	_cleanup_free_ uint8_t *cred = NULL;
	uint8_t secret[64], proof[32], handle[REG_HANDLE_LEN];
	size_t len, slen = 0;
	struct reg_enrol_req req;
	struct json_object *o;

	new_agent(&a, vendor_key, vendor_ca);
	memcpy(id1, a.id, sizeof(id1));
	assert_int_equal(enrol(rg, &a, "host", &code), 0);
	/* the same TPM under a second id, and a third one begun */
	snprintf(id2, sizeof(id2), "7c9d9a4e-0000-4000-8000-0000000000b2");
	memcpy(a.id, id2, sizeof(id2));
	assert_int_equal(enrol(rg, &a, "host", &code), 0);
	snprintf(a.id, sizeof(a.id), "7c9d9a4e-0000-4000-8000-0000000000b3");
	req = req_of(&a, "host");
	assert_int_equal(reg_enrol_begin(rg, &req, &cred, &len, handle, &code), 0);

	assert_int_equal(reg_revoke(rg, id1), 0);
	assert_int_equal(reg_agent_json(rg, id2, &o), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(o, "state")), "revoked");
	json_object_put(o);
	assert_int_equal(test_activate(a.ek_key, &a.ek, &a.ak_name, cred, len, secret, &slen), 0);
	assert_int_equal(tpm_activation_proof(secret, slen, a.id, proof), 0);
	assert_true(reg_enrol_activate(rg, a.id, handle, proof, sizeof(proof), &code) < 0);
	assert_int_equal(reg_agent_json(rg, a.id, &o), -ENOENT);
	assert_int_equal(reg_delete(rg, id2), -EKEYREVOKED);
	assert_int_equal(reg_revoke(rg, "7c9d9a4e-0000-4000-8000-0000000000ff"), -ENOENT);
	free_agent(&a);
	registrar_close(rg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_revoke_follows_ek),
		cmocka_unit_test(test_enrol_and_restart),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_vtpm_ca),
		cmocka_unit_test(test_payload_key),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
