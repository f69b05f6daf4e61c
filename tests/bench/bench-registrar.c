/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registrar enrolments per second for many simulated agents, against the RSA
 * operations at the core of an enrolment measured in the same run.
 *
 * An agent here is a fresh id with a software-held RSA-2048 EK (TCG default
 * template, EK certificate signed by a vendor CA the registrar trusts) and a
 * software-held RSA-2048 AK. Key generation is slow, so a pool of EK/AK pairs
 * is made before any timing and every enrolment takes a new agent id with the
 * next pair: each enrolment is a first one (a new row), with the EK
 * certificate chain checked as the registrar does by default.
 *
 *  (a) in-process, one thread: reg_enrol_begin (EK and EK certificate checks,
 *      AK checks, MakeCredential, challenge stored) + ActivateCredential in
 *      software (test_activate, the agent's side) + reg_enrol_activate, on a
 *      registrar with its SQLite database in a temp dir;
 *  (b) over real HTTPS on 127.0.0.1: the registrar's routes served in-process
 *      by lib/http (the daemon's defaults), client threads each doing
 *      POST /v1/agents then POST /v1/agents/{id}/activate with
 *      http_request_json (a new TLS connection per request, as agents do).
 *      First the same clients send only bodies the field table refuses (400),
 *      which gives what a request costs in TLS, HTTP and JSON alone.
 *
 * Baselines: RSA-2048 OAEP-SHA256 encryptions/s (the registrar's
 * MakeCredential core) and decryptions/s (the agent's side, done here in
 * software by test_activate, in a TPM by ActivateCredential), one core.
 * Per-enrolment CPU is split by thread CPU time: in (a) per step, with the EK
 * certificate check and MakeCredential measured alone; in (b) client threads
 * against the rest of the process (the server).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "api.h"
#include "benchlib.h"
#include "json/json.h"
#include "log/log.h"
#include "testtpm.h"
#include "x509/x509.h"

#define CLIENT_THREADS 8
#define SLICES 3

/*
 * As BENCH_RATE, but in SLICES slices of bench_seconds() / SLICES and keeping
 * the best: on a shared machine a neighbour's burst then costs one slice, not
 * the figure.
 */
#define BEST_RATE(rate, batch, body)                                           \
	do {                                                                   \
		*(rate) = 0;                                                   \
		for (int s_ = 0; s_ < SLICES; s_++) {                          \
			double t0_ = bench_now(), t_;                          \
			unsigned long n_ = 0;                                  \
			do {                                                   \
				for (int i_ = 0; i_ < (batch); i_++) {         \
					body;                                  \
				}                                              \
				n_ += (batch);                                 \
			} while ((t_ = bench_now() - t0_) < bench_seconds() / SLICES); \
			if ((double)n_ / t_ > *(rate))                         \
				*(rate) = (double)n_ / t_;                     \
		}                                                              \
	} while (0)

struct pair {
	EVP_PKEY *ek_key, *ak_key;
	TPMT_PUBLIC ek, ak;
	TPM2B_NAME ak_name;
	uint8_t ek_pub[1024], ak_pub[1024];
	size_t ek_len, ak_len;
	uint8_t *cert;
	size_t cert_len;
	char *ek_pub_b64, *ak_pub_b64, *cert_b64;
};

static char dir[] = "/tmp/kq-bench-reg-XXXXXX";
static bool have_dir;
static EVP_PKEY *vendor_key;
static X509 *vendor_ca;
static struct pair *pairs;
static size_t n_pairs, n_gen_threads;
static atomic_ulong next_id;
static volatile int sink;
static int real_stderr = STDERR_FILENO; /* stderr itself goes to /dev/null during (b) */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void cleanup(void)
{
	if (have_dir)
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static _Noreturn void die(const char *what)
{
	dprintf(real_stderr, "bench-registrar: %s: %s\n", what, kq_errmsg());
	exit(1);
}

static double cpu_now(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double process_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* A fresh agent id, unique in this run. */
static void new_id(char id[REG_ID_MAX + 1])
{
	unsigned long n = atomic_fetch_add(&next_id, 1);

	snprintf(id, REG_ID_MAX + 1, "b0000000-0000-4000-8000-%012lx", n);
}

/* ---- the test PKI ---- */


static void *gen_pairs(void *arg)
{
	for (size_t i = (size_t)(uintptr_t)arg; i < n_pairs; i += n_gen_threads) {
		struct pair *p = &pairs[i];

		p->ek_key = EVP_RSA_gen(2048);
		p->ak_key = EVP_RSA_gen(2048);
		if (!p->ek_key || !p->ak_key)
			abort();
	}
	return NULL;
}

static void make_pairs(size_t n)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	pthread_t th[64];
	size_t nth = cpus < 1 ? 1 : cpus > 64 ? 64 : (size_t)cpus;

	n_pairs = n;
	n_gen_threads = nth;
	pairs = calloc(n, sizeof(*pairs));
	if (!pairs)
		abort();
	for (size_t t = 0; t < nth; t++)
		pthread_create(&th[t], NULL, gen_pairs, (void *)(uintptr_t)t);
	for (size_t t = 0; t < nth; t++)
		pthread_join(th[t], NULL);
	for (size_t i = 0; i < n; i++) {
		struct pair *p = &pairs[i];
		unsigned char *der = NULL;
		X509 *c;
		int len;

		test_rsa_public(p->ek_key, 0, &p->ek, true);
		test_rsa_public(p->ak_key, TEST_AK_ATTRS, &p->ak, false);
		if (tpm_public_name(&p->ak, &p->ak_name) < 0)
			die("AK name");
		p->ek_len = test_marshal_public(&p->ek, p->ek_pub, sizeof(p->ek_pub));
		p->ak_len = test_marshal_public(&p->ak, p->ak_pub, sizeof(p->ak_pub));
		c = test_make_cert(p->ek_key, vendor_key, vendor_ca, "");
		len = i2d_X509(c, &der);
		X509_free(c);
		if (len <= 0)
			die("EK certificate");
		p->cert = der;
		p->cert_len = (size_t)len;
		if (kq_base64_encode(p->ek_pub, p->ek_len, &p->ek_pub_b64) < 0 ||
		    kq_base64_encode(p->ak_pub, p->ak_len, &p->ak_pub_b64) < 0 ||
		    kq_base64_encode(p->cert, p->cert_len, &p->cert_b64) < 0)
			die("base64");
	}
}

static void free_pairs(void)
{
	for (size_t i = 0; i < n_pairs; i++) {
		EVP_PKEY_free(pairs[i].ek_key);
		EVP_PKEY_free(pairs[i].ak_key);
		OPENSSL_free(pairs[i].cert);
		free(pairs[i].ek_pub_b64);
		free(pairs[i].ak_pub_b64);
		free(pairs[i].cert_b64);
	}
	free(pairs);
}

static void write_pem(const char *path, X509 *c)
{
	FILE *f = fopen(path, "we");

	if (!f || PEM_write_X509(f, c) != 1 || fclose(f) != 0)
		die(path);
}

/* The server's TLS PKI with the openssl CLI, as tests/unit/http/gen-certs.sh; false if it failed. */
static bool make_tls_pki(void)
{
	char cmd[4096];

	snprintf(cmd, sizeof(cmd),
		 "set -e; cd '%s'; exec 2>/dev/null;"
		 "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key;"
		 "openssl req -x509 -new -sha256 -key ca.key -out ca.pem -days 30 -subj '/CN=bench CA'"
		 " -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign';"
		 "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key;"
		 "openssl req -new -sha256 -key server.key -subj '/CN=localhost' -out server.csr;"
		 "printf 'basicConstraints=CA:FALSE\\nsubjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n'"
		 " >server.ext;"
		 "openssl x509 -req -sha256 -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30"
		 " -out server.pem -extfile server.ext",
		 dir);
	return system(cmd) == 0;
}

/* ---- baselines ---- */

static int oaep(EVP_PKEY *key, bool encrypt, const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
	int ok;

	ok = ctx && (encrypt ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx)) == 1 &&
	     EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1 &&
	     EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) == 1 &&
	     EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1 &&
	     EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, OPENSSL_memdup("IDENTITY", 9), 9) == 1 &&
	     (encrypt ? EVP_PKEY_encrypt(ctx, out, out_len, in, in_len)
		      : EVP_PKEY_decrypt(ctx, out, out_len, in, in_len)) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* ---- (a) in-process ---- */

struct split {
	double begin, agent, activate; /* thread CPU seconds, summed */
};

/* db_path must stay valid until registrar_close (the registrar keeps the config). */
static struct registrar *open_registrar(char *db_path, char *ca_dir)
{
	struct registrar_config cfg = {
		.database = db_path, .ek_ca_dir = ca_dir,
		.require_ek_cert = true, .challenge_ttl = 300, .max_body = 1u << 20,
	};
	struct registrar *rg;

	if (registrar_open(&cfg, &rg) < 0)
		die("registrar_open");
	return rg;
}

static void enrol_in_process(struct registrar *rg, struct pair *p, struct split *sp)
{
	char id[REG_ID_MAX + 1];
	struct reg_enrol_req req = {
		.id = id, .kind = "host",
		.ek_pub = { p->ek_pub, p->ek_len }, .ek_cert = { p->cert, p->cert_len },
		.ak_pub = { p->ak_pub, p->ak_len }, .contact = "https://10.0.0.5:8892",
	};
	uint8_t *cred = NULL, secret[64], proof[32], handle[REG_HANDLE_LEN];
	size_t len, slen = 0;
	const char *code = NULL;
	double t0, t1, t2, t3;

	new_id(id);
	t0 = cpu_now(CLOCK_THREAD_CPUTIME_ID);
	if (reg_enrol_begin(rg, &req, &cred, &len, handle, &code) < 0)
		die(code);
	t1 = cpu_now(CLOCK_THREAD_CPUTIME_ID);
	if (test_activate(p->ek_key, &p->ek, &p->ak_name, cred, len, secret, &slen) < 0 ||
	    tpm_activation_proof(secret, slen, id, proof) < 0)
		die("software activation");
	t2 = cpu_now(CLOCK_THREAD_CPUTIME_ID);
	if (reg_enrol_activate(rg, id, handle, proof, sizeof(proof), &code) < 0)
		die(code);
	t3 = cpu_now(CLOCK_THREAD_CPUTIME_ID);
	free(cred);
	sp->begin += t1 - t0;
	sp->agent += t2 - t1;
	sp->activate += t3 - t2;
}

/* What reg_enrol_begin does for the EK certificate. */
static int ek_cert_check(X509_STORE *store, struct pair *p)
{
	X509 *cert = NULL;
	EVP_PKEY *pkey = NULL;
	int r = x509_load(p->cert, p->cert_len, &cert);

	if (r == 0)
		r = tpm_public_to_pkey(&p->ek, &pkey);
	if (r == 0)
		r = x509_matches_pkey(cert, pkey);
	if (r == 0)
		r = x509_verify_chain(cert, NULL, store, 0);
	EVP_PKEY_free(pkey);
	X509_free(cert);
	return r;
}

/* What reg_enrol_begin does for the challenge. */
static int make_challenge(struct pair *p, const char *id)
{
	TPM2B_ID_OBJECT blob;
	TPM2B_ENCRYPTED_SECRET seed;
	uint8_t secret[32], proof[32], *cred = NULL;
	size_t len;
	int r;

	if (RAND_priv_bytes(secret, sizeof(secret)) != 1)
		return -EIO;
	r = tpm_make_credential(&p->ek, &p->ak_name, secret, sizeof(secret), &blob, &seed);
	if (r == 0)
		r = tpm_activation_proof(secret, sizeof(secret), id, proof);
	if (r == 0)
		r = tpm_credfile_write(&blob, &seed, &cred, &len);
	free(cred);
	return r;
}

/* ---- (b) over HTTPS ---- */

struct client {
	pthread_t th;
	unsigned idx;
	uint16_t port;
	bool bare;      /* only refused requests: what HTTPS alone costs */
	double deadline;
	unsigned long done;
	double cpu;
};

static struct http_client_config client_cfg;

static struct json_object *enrol_body(struct pair *p, const char *id)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "kind", json_object_new_string("host"));
	json_object_object_add(o, "ek_pub", json_object_new_string(p->ek_pub_b64));
	json_object_object_add(o, "ek_cert", json_object_new_string(p->cert_b64));
	json_object_object_add(o, "ak_pub", json_object_new_string(p->ak_pub_b64));
	json_object_object_add(o, "contact", json_object_new_string("https://10.0.0.5:8892"));
	return o;
}

static _Noreturn void client_fail(const char *what, long status, struct json_object *o)
{
	dprintf(real_stderr, "bench-registrar: %s: HTTP %ld %s (%s)\n", what, status,
		o ? json_object_to_json_string(o) : "", kq_errmsg());
	exit(1);
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	char url[256], id[REG_ID_MAX + 1];
	size_t k = c->idx;

	/* an empty object: refused with 400 by the field table, after TLS, HTTP and the JSON parse */
	while (c->bare && bench_now() < c->deadline) {
		struct json_object *body = json_object_new_object(), *out = NULL;
		long status = 0;
		int r;

		snprintf(url, sizeof(url), "https://127.0.0.1:%u/v1/agents", c->port);
		r = http_request_json(&client_cfg, "POST", url, body, &status, &out);
		json_object_put(body);
		if (r < 0 || status != 400)
			client_fail("POST /v1/agents {}", status, out);
		json_object_put(out);
		c->done++;
	}
	while (!c->bare && bench_now() < c->deadline) {
		struct pair *p = &pairs[k % n_pairs];
		struct json_object *body, *out = NULL, *v, *h;
		uint8_t *cred = NULL, secret[64], proof[32];
		size_t len, slen = 0;
		long status = 0;
		int r;

		k += CLIENT_THREADS;
		new_id(id);
		body = enrol_body(p, id);
		snprintf(url, sizeof(url), "https://127.0.0.1:%u/v1/agents", c->port);
		r = http_request_json(&client_cfg, "POST", url, body, &status, &out);
		json_object_put(body);
		if (r < 0 || status != 200 || !json_object_object_get_ex(out, "credential", &v) ||
		    !json_object_object_get_ex(out, "handle", &h) ||
		    kq_base64_decode(json_object_get_string(v), 4096, &cred, &len) < 0)
			client_fail("POST /v1/agents", status, out);
		if (test_activate(p->ek_key, &p->ek, &p->ak_name, cred, len, secret, &slen) < 0 ||
		    tpm_activation_proof(secret, slen, id, proof) < 0)
			client_fail("software activation", 0, NULL);
		free(cred);
		body = json_object_new_object();
		json_object_object_add(body, "handle", json_object_get(h));
		json_object_object_add(body, "proof", json_new_base64(proof, sizeof(proof)));
		json_object_put(out);
		out = NULL;
		snprintf(url, sizeof(url), "https://127.0.0.1:%u/v1/agents/%s/activate", c->port, id);
		r = http_request_json(&client_cfg, "POST", url, body, &status, &out);
		json_object_put(body);
		if (r < 0 || status != 200)
			client_fail("POST /v1/agents/{id}/activate", status, out);
		json_object_put(out);
		c->done++;
	}
	c->cpu = cpu_now(CLOCK_THREAD_CPUTIME_ID);
	return NULL;
}

struct https_result {
	double rate, client_cpu, server_cpu; /* operations/s; CPU seconds per operation */
	unsigned long n;
};

/* CLIENT_THREADS clients for secs against the server; false if nothing was done. */
static bool run_clients(uint16_t port, bool bare, double secs, struct https_result *res)
{
	struct client cl[CLIENT_THREADS];
	double t0, t1, cpu0, cpu1, client_cpu = 0;
	unsigned long total = 0;

	cpu0 = process_cpu();
	t0 = bench_now();
	for (unsigned i = 0; i < CLIENT_THREADS; i++) {
		cl[i] = (struct client){ .idx = i, .port = port, .bare = bare, .deadline = t0 + secs };
		if (pthread_create(&cl[i].th, NULL, client_main, &cl[i]) != 0)
			abort();
	}
	for (unsigned i = 0; i < CLIENT_THREADS; i++) {
		pthread_join(cl[i].th, NULL);
		total += cl[i].done;
		client_cpu += cl[i].cpu;
	}
	t1 = bench_now();
	cpu1 = process_cpu();
	if (total == 0)
		return false;
	res->n = total;
	res->rate = (double)total / (t1 - t0);
	res->client_cpu = client_cpu / (double)total;
	res->server_cpu = (cpu1 - cpu0 - client_cpu) / (double)total;
	return true;
}

/* The registrar served as the daemon serves it; bare requests first, then enrolments. */
static bool run_https(struct registrar *rg, double secs, struct https_result *bare, struct https_result *enrol)
{
	char cert[300], key[300], ca[300];
	const struct http_route *routes;
	struct http_server *srv;
	size_t n_routes;
	int devnull;
	bool ok;

	snprintf(cert, sizeof(cert), "%s/server.pem", dir);
	snprintf(key, sizeof(key), "%s/server.key", dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	routes = registrar_routes(&n_routes);
	/* the daemon's defaults: worker threads, limits; an admin client CA set */
	if (http_server_start(&(struct http_server_config){ .bind_addr = "127.0.0.1", .cert_file = cert,
							    .key_file = key, .client_ca_file = ca,
							    .max_body = 1u << 20 },
			      routes, n_routes, rg, &srv) < 0)
		die("http_server_start");
	client_cfg = (struct http_client_config){ .ca_file = ca, .timeout_ms = 30000 };

	/* the registrar logs a line or two per request: keep writing them, to /dev/null */
	fflush(stderr);
	real_stderr = dup(STDERR_FILENO);
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (real_stderr < 0 || devnull < 0 || dup2(devnull, STDERR_FILENO) < 0)
		die("/dev/null");
	close(devnull);

	ok = run_clients(http_server_port(srv), true, secs, bare) &&
	     run_clients(http_server_port(srv), false, secs, enrol);
	http_server_stop(srv);

	dup2(real_stderr, STDERR_FILENO);
	close(real_stderr);
	real_stderr = STDERR_FILENO;
	return ok;
}

int main(void)
{
	double secs = bench_seconds(), enc_rate, dec_rate, rate_a, chk_rate, mc_rate;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct registrar *rg;
	struct split sp = { 0 };
	unsigned long n_a = 0;
	X509_STORE *store;
	char ca_dir[300], path[400], db_a[300], db_b[300];
	bool https;
	struct https_result hb = { 0 }, h0 = { 0 };

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	have_dir = true;
	atexit(cleanup);
	log_setup(LOG_INFO, false);

	/* the vendor CA and the agents' keys, before any timing */
	snprintf(ca_dir, sizeof(ca_dir), "%s/ek-ca", dir);
	if (mkdir(ca_dir, 0700) < 0)
		die("mkdir");
	vendor_key = EVP_RSA_gen(2048);
	if (!vendor_key)
		die("vendor key");
	vendor_ca = test_make_cert(vendor_key, vendor_key, NULL, "TPM vendor CA");
	snprintf(path, sizeof(path), "%s/vendor.pem", ca_dir);
	write_pem(path, vendor_ca);
	make_pairs(secs < 0.5 ? 4 : 16);
	https = make_tls_pki();
	if (x509_store_from_dir(ca_dir, &store) < 0)
		die("EK CA store");

	printf("# registrar enrolments: %zu RSA-2048 EK/AK pairs with EK certificates from an RSA-2048 vendor CA,"
	       " a new agent id per enrolment; %.2g s per figure (one-core figures: best of %d slices), %ld CPUs\n",
	       n_pairs, secs, SLICES, cpus);

	/* baselines, one core */
	{
		uint8_t in[32], ct[512], pt[512];
		size_t ct_len = sizeof(ct), pt_len;
		EVP_PKEY *k = pairs[0].ek_key;

		RAND_bytes(in, sizeof(in));
		if (oaep(k, true, in, sizeof(in), ct, &ct_len) < 0)
			die("OAEP encrypt");
		BEST_RATE(&enc_rate, 20, {
			size_t l = sizeof(ct);
			if (oaep(k, true, in, sizeof(in), ct, &l) < 0)
				die("OAEP encrypt");
			sink += ct[0];
		});
		BEST_RATE(&dec_rate, 5, {
			pt_len = sizeof(pt);
			if (oaep(k, false, ct, ct_len, pt, &pt_len) < 0)
				die("OAEP decrypt");
			sink += pt[0];
		});
	}

	/* (a) in-process; the CPU split sums over every slice */
	snprintf(db_a, sizeof(db_a), "%s/in-process.db", dir);
	rg = open_registrar(db_a, ca_dir);
	BEST_RATE(&rate_a, 5, enrol_in_process(rg, &pairs[n_a++ % n_pairs], &sp));
	registrar_close(rg);

	/* the parts of reg_enrol_begin, for the split */
	{
		unsigned long k = 0;
		char id[REG_ID_MAX + 1];

		BEST_RATE(&chk_rate, 10, {
			if (ek_cert_check(store, &pairs[k++ % n_pairs]) < 0)
				die("EK certificate check");
		});
		new_id(id);
		BEST_RATE(&mc_rate, 10, {
			if (make_challenge(&pairs[k++ % n_pairs], id) < 0)
				die("MakeCredential");
		});
	}

	/* (b) HTTPS */
	if (https) {
		snprintf(db_b, sizeof(db_b), "%s/https.db", dir);
		rg = open_registrar(db_b, ca_dir);
		https = run_https(rg, secs, &h0, &hb);
		registrar_close(rg);
	}

	printf("\n%-58s %10s\n", "baseline (one core)", "ops/s");
	printf("%-58s %10.0f\n", "RSA-2048 OAEP-SHA256 encrypt (MakeCredential core)", enc_rate);
	printf("%-58s %10.0f\n", "RSA-2048 OAEP-SHA256 decrypt (agent's activation core)", dec_rate);
	if (https)
		printf("%-58s %10.0f   (%d clients, all cores; CPU per request: client %.0f us, server %.0f us)\n",
		       "HTTPS POST /v1/agents refused with 400, new TLS connection", h0.rate, CLIENT_THREADS,
		       h0.client_cpu * 1e6, h0.server_cpu * 1e6);

	printf("\n%-32s %10s %8s %12s %12s\n", "enrolments", "enrol/s", "n", "vs encrypt", "vs decrypt");
	printf("%-32s %10.0f %8lu %12.4f %12.3f\n", "(a) in-process, 1 thread", rate_a, n_a, rate_a / enc_rate,
	       rate_a / dec_rate);
	if (https)
		printf("%-32s %10.0f %8lu %12.4f %12.3f   (2 requests each: %.2f of the bare request rate / 2)\n",
		       "(b) HTTPS, 8 clients, all cores", hb.rate, hb.n, hb.rate / enc_rate, hb.rate / dec_rate,
		       hb.rate / (h0.rate / 2));
	else
		printf("%-32s %10s   (skipped: the openssl CLI could not make the TLS certificates)\n",
		       "(b) HTTPS, 8 clients", "-");

	{
		double n = (double)n_a, begin = sp.begin / n * 1e6, agent = sp.agent / n * 1e6,
		       act = sp.activate / n * 1e6, total = begin + agent + act;
		double chk = 1e6 / chk_rate, mc = 1e6 / mc_rate, rest = begin - chk - mc;

		printf("\nCPU per enrolment, (a) in-process                    us   share\n");
		printf("  registrar begin                              %8.0f %6.1f%%\n", begin, 100 * begin / total);
		printf("    EK certificate: load, match the EK, chain  %8.0f %6.1f%%\n", chk, 100 * chk / total);
		printf("    MakeCredential + expected proof            %8.0f %6.1f%%\n", mc, 100 * mc / total);
		printf("    the rest: EK/AK parse and checks, SQLite   %8.0f %6.1f%%\n", rest, 100 * rest / total);
		printf("  agent: ActivateCredential in software, proof %8.0f %6.1f%%\n", agent, 100 * agent / total);
		printf("  registrar activate (SQLite)                  %8.0f %6.1f%%\n", act, 100 * act / total);
		printf("  total                                        %8.0f          -> %.0f enrolments/s per core\n",
		       total, 1e6 / total);
		if (https) {
			double cl = hb.client_cpu * 1e6, sv = hb.server_cpu * 1e6, all = cl + sv;
			double bare = (h0.client_cpu + h0.server_cpu) * 1e6;

			double reg = begin + act, other = all - 2 * bare - reg - agent;

			printf("\nCPU per enrolment, (b) HTTPS                         us   share\n");
			printf("  client threads: 2 requests + activation      %8.0f %6.1f%%\n", cl, 100 * cl / all);
			printf("  server threads: 2 requests                   %8.0f %6.1f%%\n", sv, 100 * sv / all);
			printf("  the same total, by what it buys:\n");
			printf("    2 bare HTTPS requests, client + server     %8.0f %6.1f%%\n", 2 * bare,
			       100 * 2 * bare / all);
			printf("    registrar work, as in (a)                  %8.0f %6.1f%%\n", reg, 100 * reg / all);
			printf("    agent activation, as in (a)                %8.0f %6.1f%%\n", agent, 100 * agent / all);
			printf("    the rest: bigger bodies, base64, noise     %8.0f %6.1f%%\n", other, 100 * other / all);
			printf("  total                                        %8.0f          -> %.0f enrolments/s per core\n",
			       all, 1e6 / all);
		}
	}

	X509_STORE_free(store);
	X509_free(vendor_ca);
	EVP_PKEY_free(vendor_key);
	free_pairs();
	return 0;
}
