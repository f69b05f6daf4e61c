/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleet-sim: many host agents in one process, for the verifier benchmark
 * (bench-verifier) and for trying a verifier against a fleet without TPMs.
 *
 * Each simulated host has a software RSA-2048 EK (TCG default template, an
 * EK certificate from a simulated TPM vendor CA) and a software RSA-2048 AK
 * (a restricted signing key, as tpm2_createak makes it under the EK). It
 * enrols with a real kumquat-registrar as the host agent does (POST
 * /v1/agents, ActivateCredential in software, POST /v1/agents/{id}/activate)
 * and is served on the host agent's evidence endpoint (docs/host-agent.md,
 * "Evidence endpoint"): one HTTPS port for the whole fleet, the host chosen
 * by the request's agent_id (absent: 409 wrong_agent; unknown: 404).
 *
 * The evidence is a real machine's: PCRs 0-9 and 14 are the replay of its
 * UEFI event log (testdata eventlog/hpe-perf-uefi.bin, banks sha256 and
 * sha384), PCR 10 the replay of its IMA list (ima/hpe-perf-ima-ng-sha256.txt,
 * served binary as binary_runtime_measurements is, or ascii), PCRs 17-22 all
 * ones and the others zero, as after a TPM reset. Each answer carries a
 * byte-exact TPM2_Quote: a TPMS_ATTEST with TPM_GENERATED magic, type QUOTE,
 * the AK's qualified name (EK parent, endorsement hierarchy) as signer, the
 * caller's nonce, a clock that advances with every quote, fixed reset and
 * restart counts, the selection asked and the SHA-256 digest of those PCR
 * values — signed RSASSA-SHA256 by the host's AK. Every --ima-append-every
 * quotes a host measures one more file (a copy of an entry of the list other
 * than boot_aggregate, so the same runtime policy allows it) and extends PCR
 * 10, so a verifier replays the list incrementally as on a live host.
 *
 *   fleet-sim keygen --dir DIR --hosts N
 *       keys for N hosts (kept: a second run only adds missing ones), the
 *       vendor CA in DIR/ek-ca/ (a registrar's ek_ca_dir), the host ids in
 *       DIR/ids, and policies that fit the evidence: DIR/pcr-policy.json
 *       (sha256 PCRs 0-9) and DIR/ima-policy.json (a Keylime runtime policy
 *       allowing every entry of the list);
 *   fleet-sim serve --dir DIR --hosts N --cert F --key F --client-ca F
 *                   --registrar URL --registrar-ca F [options]
 *       enrols hosts 0..N-1, then serves until SIGINT or SIGTERM; logs
 *       "listening on https://ADDR:PORT" once serving and "ready: N hosts"
 *       once every host is enrolled. With --hang K, hosts 0..K-1 are dead
 *       host agents: they enrol with a second port as their contact, logged
 *       as "hung hosts on https://ADDR:PORT", which takes every request and
 *       never answers it (held --hang-ms, default 5000, or until the process
 *       stops; by then the client has given up). They have a port of their
 *       own, as a dead machine has its own address: libmicrohttpd ties each
 *       connection to one worker thread, and a verifier reuses connections
 *       across hosts with the same address, so a request held on the shared
 *       port could stall healthy hosts' requests on the same thread, however
 *       many threads there are. On the main port they get 409 wrong_agent;
 *       With --guests G (and --registrar), each host also gets an RSA-2048
 *       vTPM-CA key (DIR/keys/host-NNNNN-vtpm-ca.pem, kept), certified through
 *       the registrar by a TPM2_Certify its AK signs over the registrar's
 *       nonce, and G guests with ECC P-256 EKs (their EK certificates signed
 *       by that key, naming the VM and the host) and ECC P-256 AKs, enrolled
 *       as kind "guest"; --guest-ids FILE gets "GUEST-ID HOST-ID" lines. Ids
 *       end in their index, guests' carry a per-run tag. Guests answer
 *       POST /v1/quote (ECDSA-signed quotes, no UEFI log, a list that never
 *       grows), hosts POST /v1/deep-quote (docs/deep-quote.md: a Merkle tree
 *       over the leaves asked for, every VM running, one quote per request);
 *   fleet-sim selftest
 *       checks the evidence against the real quote in the test data, checks
 *       quotes with `kumquat quote check` ($KUMQUAT) and the endpoint over
 *       HTTPS with a client certificate (exit 77 if $KUMQUAT is unset).
 *
 * Test code: the keys are software keys, nothing here is for production.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <tss2/tss2_mu.h>

#include "benchlib.h"
#include "evlog/evlog.h"
#include "http/http.h"
#include "ima/ima.h"
#include "evidence/evidence.h"
#include "json/json.h"
#include "log/log.h"
#include "merkle/merkle.h"
#include "testlib.h"
#include "testtpm.h"
#include "x509/x509.h"

#define MOD "fleet-sim"
#define MAX_HOSTS 10000
#define MAX_GUESTS 1000     /* per host */
#define MAX_THREADS 64
#define N_BANKS 2
#define RESET_COUNT 3
#define RESTART_COUNT 0
#define FIRMWARE_VERSION 0x0007005500020000ull
#define UEFI_LOG "eventlog/hpe-perf-uefi.bin"
#define IMA_LIST "ima/hpe-perf-ima-ng-sha256.txt"

/* The simulated TPM's PCR banks: those of the event log. */
static const uint16_t bank_alg[N_BANKS] = { KQ_ALG_SHA256, KQ_ALG_SHA384 };

static _Noreturn void die(const char *what)
{
	fprintf(stderr, "fleet-sim: %s: %s\n", what, kq_errmsg());
	exit(1);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p)
		abort();
	return p;
}

/* ---- the evidence every host shares ---- */

struct evidence {
	char *uefi_b64;           /* the UEFI event log, base64 */
	size_t uefi_b64_len;
	/* PCR values after the boot, per bank; PCR 10 is each host's own */
	uint8_t pcr[N_BANKS][TPM_NUM_PCRS][KQ_MAX_DIGEST];
	uint8_t pcr10[N_BANKS][KQ_MAX_DIGEST]; /* PCR 10 after the list as shipped */
	bool binary;
	uint8_t *ima;             /* the IMA list in the format served */
	size_t ima_len, n_ima;
	size_t *ima_off;          /* entry i is ima[ima_off[i] .. ima_off[i + 1]) */
	uint8_t (*ext)[N_BANKS][KQ_MAX_DIGEST]; /* what entry i extends PCR 10 by, per bank */
	struct ima_list *list;    /* the list as parsed from the test data */
};

static int bank_index(uint16_t alg)
{
	for (int b = 0; b < N_BANKS; b++)
		if (bank_alg[b] == alg)
			return b;
	return -1;
}

/* One binary_runtime_measurements record for e (little-endian, SHA-1 template hash). */
static size_t put_binary_entry(const struct ima_entry *e, uint8_t *out)
{
	size_t name_len = strlen(e->template_name), off = 0;
	uint32_t v;

	v = e->pcr;
	memcpy(out + off, &v, 4);
	off += 4;
	memcpy(out + off, e->template_hash, 20);
	off += 20;
	v = (uint32_t)name_len;
	memcpy(out + off, &v, 4);
	off += 4;
	memcpy(out + off, e->template_name, name_len);
	off += name_len;
	v = (uint32_t)e->template_data_len;
	memcpy(out + off, &v, 4);
	off += 4;
	memcpy(out + off, e->template_data, e->template_data_len);
	return off + e->template_data_len;
}

static void load_evidence(bool binary, struct evidence *ev)
{
	_cleanup_free_ uint8_t *uefi = NULL, *ascii = NULL;
	struct evlog *log = NULL;
	struct evlog_replay rp;
	struct ima_list *check = NULL;
	struct ima_replay_state st;
	size_t len, alen, n;

	memset(ev, 0, sizeof(*ev));
	ev->binary = binary;

	uefi = testdata_load(UEFI_LOG, &len);
	if (evlog_parse(uefi, len, &log) < 0 || evlog_replay(log, &rp) < 0)
		die(UEFI_LOG);
	evlog_free(log);
	for (int b = 0; b < N_BANKS; b++) {
		const struct evlog_pcr_bank *eb = evlog_replay_bank(&rp, bank_alg[b]);
		size_t sz = kq_hash_size(bank_alg[b]);

		if (!eb || eb->touched & (1u << IMA_PCR)) {
			kq_err(-EINVAL, "no %s bank, or PCR 10 extended", kq_hash_name(bank_alg[b]));
			die(UEFI_LOG);
		}
		for (unsigned p = 0; p < TPM_NUM_PCRS; p++) {
			if (eb->touched & (1u << p))
				memcpy(ev->pcr[b][p], eb->pcrs[p], sz);
			else
				memset(ev->pcr[b][p], p >= 17 && p <= 22 ? 0xff : 0, sz);
		}
	}
	if (kq_base64_encode(uefi, len, &ev->uefi_b64) < 0)
		die("base64");
	ev->uefi_b64_len = strlen(ev->uefi_b64);

	ascii = testdata_load(IMA_LIST, &alen);
	if (ima_list_parse(ascii, alen, NULL, &ev->list) < 0)
		die(IMA_LIST);
	n = ev->n_ima = ev->list->n_entries;
	if (n < 2) {
		kq_err(-EINVAL, "too few entries");
		die(IMA_LIST);
	}
	ev->ima_off = xcalloc(n + 1, sizeof(*ev->ima_off));
	ev->ext = xcalloc(n, sizeof(*ev->ext));
	for (size_t i = 0; i < n; i++) {
		const struct ima_entry *e = &ev->list->entries[i];

		if (ima_entry_is_bad(e) || e->violation || e->pcr != IMA_PCR ||
		    e->template_hash_alg != KQ_ALG_SHA1) {
			kq_err(-EINVAL, "entry %zu is not a good SHA-1 ima-ng entry on PCR 10", i);
			die(IMA_LIST);
		}
		for (int b = 0; b < N_BANKS; b++)
			if (ima_entry_bank_digest(e, bank_alg[b], ev->ext[i][b]) < 0)
				die(IMA_LIST);
	}
	if (binary) {
		size_t total = 0, off = 0;

		for (size_t i = 0; i < n; i++)
			total += 32 + strlen(ev->list->entries[i].template_name) +
				 ev->list->entries[i].template_data_len;
		ev->ima = xcalloc(total, 1);
		for (size_t i = 0; i < n; i++) {
			ev->ima_off[i] = off;
			off += put_binary_entry(&ev->list->entries[i], ev->ima + off);
		}
		ev->ima_len = off;
	} else {
		for (size_t i = 0; i < n; i++)
			ev->ima_off[i] = ev->list->entries[i].offset;
		ev->ima_len = alen;
		ev->ima = TAKE_PTR(ascii);
	}
	ev->ima_off[n] = ev->ima_len;

	/* what is served must parse and replay, in every bank, to what the hosts extend */
	for (int b = 0; b < N_BANKS; b++) {
		memset(ev->pcr10[b], 0, sizeof(ev->pcr10[b]));
		for (size_t i = 0; i < n; i++)
			kq_extend(bank_alg[b], ev->pcr10[b], ev->ext[i][b]);
	}
	ima_replay_init(&st, IMA_BANK_SHA256 | IMA_BANK_SHA384, 0);
	if (ima_list_parse(ev->ima, ev->ima_len, NULL, &check) < 0 || check->n_entries != n ||
	    ima_replay_list(&st, check) < 0)
		die("the IMA list as served");
	ima_list_free(check);
	for (int b = 0; b < N_BANKS; b++)
		if (memcmp(ima_replay_pcr(&st, IMA_PCR, bank_alg[b]), ev->pcr10[b], kq_hash_size(bank_alg[b]))) {
			kq_err(-EINVAL, "replay differs in %s", kq_hash_name(bank_alg[b]));
			die("the IMA list as served");
		}
}

static void free_evidence(struct evidence *ev)
{
	free(ev->uefi_b64);
	free(ev->ima);
	free(ev->ima_off);
	free(ev->ext);
	ima_list_free(ev->list);
}

/* ---- one simulated host ---- */

struct host {
	char id[37], boot_id[37];
	bool guest;               /* a VM's vTPM (--guests): ECC P-256 EK and AK, no UEFI log, a list that never grows */
	EVP_PKEY *ek, *ak;
	TPMT_PUBLIC ek_pub, ak_pub;
	TPM2B_NAME ak_name, ak_qn;

	pthread_mutex_t lock;     /* guards everything below */
	uint64_t clock;           /* TPM clock of the last quote, ms */
	uint64_t quotes;
	uint8_t pcr10[N_BANKS][KQ_MAX_DIGEST];
	uint8_t *app;             /* entries measured since start, in the list's format */
	size_t app_len, app_cap;
	size_t *app_off;          /* appended entry i is app[app_off[i] .. app_off[i + 1]) */
	size_t n_app;
};

struct fleet {
	struct evidence ev;
	struct host *hosts;       /* hosts 0..n_hosts-1, then host i's guests at n_hosts + i * n_guests + g */
	size_t n_hosts, n_guests, n_all;
	atomic_ulong deep, leaves;
	size_t n_hang;            /* hosts 0..n_hang-1 never answer (--hang) */
	unsigned hang_ms;         /* how long a request to them is held */
	uint16_t hang_port;
	pthread_mutex_t hang_lock; /* guards stopping; hang_cond uses CLOCK_MONOTONIC */
	pthread_cond_t hang_cond;
	bool stopping;
	atomic_ulong held;
	unsigned append_every;    /* 0: the lists never grow */
	size_t max_append;        /* entries a host may add, bounding memory */
	double t0;
	atomic_ulong served, refused;
};

static void random_uuid(char out[37])
{
	uint8_t u[16];

	if (RAND_bytes(u, sizeof(u)) != 1)
		abort();
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
		 u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* The public area of an ECC P-256 signing key (ECDSA-SHA256), as TPM2_Create makes it. */
static void ecc_public(EVP_PKEY *key, TPMA_OBJECT attrs, TPMT_PUBLIC *p)
{
	uint8_t buf[65];
	size_t len = 0;

	memset(p, 0, sizeof(*p));
	p->type = TPM2_ALG_ECC;
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = attrs;
	p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
	p->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
	p->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf, sizeof(buf), &len) != 1 ||
	    len != 65 || buf[0] != 4)
		abort();
	p->unique.ecc.x.size = 32;
	memcpy(p->unique.ecc.x.buffer, buf + 1, 32);
	p->unique.ecc.y.size = 32;
	memcpy(p->unique.ecc.y.buffer, buf + 33, 32);
}

/* TPM2_Quote's signature: RSASSA-SHA256 (RSA AKs) or ECDSA-SHA256 (ECC AKs). */
static size_t sign_attest(EVP_PKEY *key, TPMS_ATTEST *a, uint8_t *out, size_t cap, uint8_t *sig_out, size_t sig_cap,
			  size_t *sig_len)
{
	TPMT_SIGNATURE s = { .sigAlg = TPM2_ALG_ECDSA };
	uint8_t der[128];
	const unsigned char *p = der;
	size_t off = 0, dlen = sizeof(der), soff = 0;
	EVP_MD_CTX *md;
	ECDSA_SIG *es;
	const BIGNUM *r, *sv;

	if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC)
		return test_sign_attest(key, a, out, cap, sig_out, sig_cap, sig_len);
	if (Tss2_MU_TPMS_ATTEST_Marshal(a, out, cap, &off) != TSS2_RC_SUCCESS)
		abort();
	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, der, &dlen, out, off) != 1 || !(es = d2i_ECDSA_SIG(NULL, &p, (long)dlen)))
		abort();
	EVP_MD_CTX_free(md);
	ECDSA_SIG_get0(es, &r, &sv);
	s.signature.ecdsa.hash = TPM2_ALG_SHA256;
	s.signature.ecdsa.signatureR.size = 32;
	s.signature.ecdsa.signatureS.size = 32;
	if (BN_bn2binpad(r, s.signature.ecdsa.signatureR.buffer, 32) != 32 ||
	    BN_bn2binpad(sv, s.signature.ecdsa.signatureS.buffer, 32) != 32)
		abort();
	ECDSA_SIG_free(es);
	if (Tss2_MU_TPMT_SIGNATURE_Marshal(&s, sig_out, sig_cap, &soff) != TSS2_RC_SUCCESS)
		abort();
	*sig_len = soff;
	return off;
}

/* Takes ownership of ek and ak. */
static void host_init(struct fleet *f, struct host *h, const char *id, EVP_PKEY *ek, EVP_PKEY *ak)
{
	TPM2B_NAME ek_name, hier, ek_qn;

	memset(h, 0, sizeof(*h));
	snprintf(h->id, sizeof(h->id), "%s", id);
	random_uuid(h->boot_id);
	h->ek = ek;
	h->ak = ak;
	h->guest = EVP_PKEY_get_base_id(ak) == EVP_PKEY_EC;
	if (tpm_ek_default_public(ek, &h->ek_pub) < 0)
		die("EK template");
	if (h->guest)
		ecc_public(ak, TEST_AK_ATTRS, &h->ak_pub);
	else
		test_rsa_public(ak, TEST_AK_ATTRS, &h->ak_pub, false);
	/* TPM2_Quote signs with the AK's qualified name: its parent is the EK, in the endorsement hierarchy */
	tpm_hierarchy_qn(TPM2_RH_ENDORSEMENT, &hier);
	if (tpm_public_name(&h->ek_pub, &ek_name) < 0 || tpm_public_name(&h->ak_pub, &h->ak_name) < 0 ||
	    tpm_qualified_name(&hier, &ek_name, &ek_qn) < 0 || tpm_qualified_name(&ek_qn, &h->ak_name, &h->ak_qn) < 0)
		die("names");
	memcpy(h->pcr10, f->ev.pcr10, sizeof(h->pcr10));
	RAND_bytes((uint8_t *)&h->clock, 4);
	h->app_off = xcalloc(h->guest ? 1 : f->max_append + 1, sizeof(*h->app_off));
	pthread_mutex_init(&h->lock, NULL);
}

static void host_free(struct host *h)
{
	EVP_PKEY_free(h->ek);
	EVP_PKEY_free(h->ak);
	free(h->app);
	free(h->app_off);
	pthread_mutex_destroy(&h->lock);
}

/* The host measures one more file: a copy of entry 1, 2, ... of the list, extended into PCR 10. */
static void host_append(const struct fleet *f, struct host *h)
{
	const struct evidence *ev = &f->ev;
	size_t src = 1 + h->n_app % (ev->n_ima - 1), len = ev->ima_off[src + 1] - ev->ima_off[src];

	if (h->guest || h->n_app >= f->max_append || kq_buf_reserve(&h->app, &h->app_cap, h->app_len + len, SIZE_MAX / 2) < 0)
		return;
	memcpy(h->app + h->app_len, ev->ima + ev->ima_off[src], len);
	h->app_off[h->n_app++] = h->app_len;
	h->app_len += len;
	h->app_off[h->n_app] = h->app_len;
	for (int b = 0; b < N_BANKS; b++)
		kq_extend(bank_alg[b], h->pcr10[b], ev->ext[src][b]);
}

struct quote_out {
	uint8_t attest[sizeof(TPMS_ATTEST)];
	size_t attest_len;
	uint8_t sig[sizeof(TPMT_SIGNATURE)];
	size_t sig_len;
	uint8_t *pcrfile;
	size_t pcrfile_len;
	uint8_t *ima;             /* the list from the offset asked on */
	size_t ima_len;
	uint64_t ima_entries;
};

static void quote_out_free(struct quote_out *q)
{
	free(q->pcrfile);
	free(q->ima);
	q->pcrfile = q->ima = NULL;
}

/*
 * What the host agent does for one request: TPM2_Quote over sel with nonce,
 * and the IMA list from ima_offset on, as of that quote. Takes h->lock.
 * -ENOENT for a bank the simulated TPM lacks, -ERANGE for an offset past the
 * end of the list; q is then untouched. Caller frees q with quote_out_free.
 */
static int host_evidence(struct fleet *f, struct host *h, const TPML_PCR_SELECTION *sel, const uint8_t *nonce,
			 size_t nonce_len, uint64_t ima_offset, struct quote_out *q)
{
	const struct evidence *ev = &f->ev;
	struct tpm_pcrs pcrs = { 0 };
	TPMS_ATTEST a = { 0 };
	uint64_t total, now;
	size_t dlen, start, app_start;
	int r = 0;

	if (nonce_len > sizeof(a.extraData.buffer))
		return -EINVAL;
	for (uint32_t s = 0; s < sel->count; s++) {
		const TPMS_PCR_SELECTION *ps = &sel->pcrSelections[s];
		int b = bank_index(ps->hash);
		struct tpm_pcr_bank *pb;

		if (b < 0)
			return kq_err(-ENOENT, "PCR bank %s is not allocated",
				      kq_hash_name(ps->hash) ? kq_hash_name(ps->hash) : "?");
		if (tpm_pcrs_add_bank(&pcrs, ps->hash, &pb) < 0)
			return -ENOENT;
		pb->mask = (uint32_t)ps->pcrSelect[0] | (uint32_t)ps->pcrSelect[1] << 8 |
			   (uint32_t)ps->pcrSelect[2] << 16;
	}

	pthread_mutex_lock(&h->lock);
	if (f->append_every && h->quotes && h->quotes % f->append_every == 0)
		host_append(f, h);
	total = ev->n_ima + h->n_app;
	if (ima_offset > total) {
		pthread_mutex_unlock(&h->lock);
		return kq_err(-ERANGE, "ima_offset %llu is beyond the list's %llu entries",
			      (unsigned long long)ima_offset, (unsigned long long)total);
	}
	for (size_t i = 0; i < pcrs.nbanks; i++) {
		struct tpm_pcr_bank *pb = &pcrs.bank[i];
		int b = bank_index(pb->alg);

		for (unsigned p = 0; p < TPM_NUM_PCRS; p++)
			if (pb->mask & (1u << p))
				memcpy(pb->value[p], p == IMA_PCR ? h->pcr10[b] : ev->pcr[b][p], kq_hash_size(pb->alg));
	}

	a.magic = TPM2_GENERATED_VALUE;
	a.type = TPM2_ST_ATTEST_QUOTE;
	a.qualifiedSigner = h->ak_qn;
	a.extraData.size = (UINT16)nonce_len;
	memcpy(a.extraData.buffer, nonce, nonce_len);
	/* milliseconds, as the TPM counts, never the same twice */
	now = (uint64_t)((bench_now() - f->t0) * 1000) + 1000000;
	h->clock = now > h->clock ? now : h->clock + 1;
	a.clockInfo.clock = h->clock;
	a.clockInfo.resetCount = RESET_COUNT;
	a.clockInfo.restartCount = RESTART_COUNT;
	a.clockInfo.safe = TPM2_YES;
	a.firmwareVersion = FIRMWARE_VERSION;
	a.attested.quote.pcrSelect = *sel;
	if (tpm_pcrs_digest(&pcrs, sel, KQ_ALG_SHA256, a.attested.quote.pcrDigest.buffer, &dlen) < 0)
		r = -EIO;
	a.attested.quote.pcrDigest.size = (UINT16)dlen;
	if (r == 0) {
		q->attest_len = sign_attest(h->ak, &a, q->attest, sizeof(q->attest), q->sig, sizeof(q->sig),
						 &q->sig_len);
		r = tpm_pcrfile_write(&pcrs, &q->pcrfile, &q->pcrfile_len);
	}
	if (r == 0) {
		/* the list as the quote saw it: the shipped part, then what was measured since */
		start = ima_offset < ev->n_ima ? ev->ima_off[ima_offset] : ev->ima_len;
		app_start = ima_offset <= ev->n_ima ? 0 : h->app_off[ima_offset - ev->n_ima];
		q->ima_len = ev->ima_len - start + h->app_len - app_start;
		q->ima = xcalloc(q->ima_len, 1);
		memcpy(q->ima, ev->ima + start, ev->ima_len - start);
		if (h->app_len > app_start)
			memcpy(q->ima + ev->ima_len - start, h->app + app_start, h->app_len - app_start);
		q->ima_entries = total - ima_offset;
		h->quotes++;
	}
	pthread_mutex_unlock(&h->lock);
	if (r < 0)
		quote_out_free(q);
	return r;
}

/* ---- the evidence endpoint ---- */

struct quote_req {
	struct json_bytes nonce;
	struct json_object *pcrs;
	uint64_t ima_offset;
	char *agent_id;
};

struct deep_req {
	struct json_bytes nonce;
	struct json_object *pcrs, *leaves;
	uint64_t ima_offset;
	char *agent_id;
};

/* The answer of POST /v1/quote (and the host part of /v1/deep-quote); guests have no UEFI log. */
static struct json_object *evidence_json(const struct fleet *f, const struct host *h, const struct quote_out *q,
					 uint64_t ima_offset)
{
	struct json_object *out = json_object_new_object(), *o = json_object_new_object();

	json_object_object_add(o, "message", json_new_base64(q->attest, q->attest_len));
	json_object_object_add(o, "signature", json_new_base64(q->sig, q->sig_len));
	json_object_object_add(o, "pcrs", json_new_base64(q->pcrfile, q->pcrfile_len));
	json_object_object_add(out, "quote", o);
	json_object_object_add(out, "boot_id", json_object_new_string(h->boot_id));
	if (!h->guest)
		json_object_object_add(out, "uefi_log",
				       json_object_new_string_len(f->ev.uefi_b64, (int)f->ev.uefi_b64_len));
	o = json_object_new_object();
	json_object_object_add(o, "offset", json_object_new_int64((int64_t)ima_offset));
	json_object_object_add(o, "entries", json_object_new_int64((int64_t)q->ima_entries));
	json_object_object_add(o, "format", json_object_new_string(f->ev.binary ? "binary" : "ascii"));
	json_object_object_add(o, "data", json_new_base64(q->ima, q->ima_len));
	json_object_object_add(out, "ima", o);
	return out;
}

/* Ids end in their index in f->hosts (12 hex digits): no search, even for 10,000 guests. */
static struct host *find_host(struct fleet *f, const char *id)
{
	uint64_t i = 0;

	if (strlen(id) != 36)
		return NULL;
	for (int k = 24; k < 36; k++) {
		int c = id[k], v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
				  : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;

		if (v < 0)
			return NULL;
		i = i << 4 | (uint64_t)v;
	}
	if (i >= f->n_all || strcasecmp(f->hosts[i].id, id) != 0)
		return NULL;
	return &f->hosts[i];
}

static void handle_quote(const struct http_request *req, struct http_response *resp, void *ud)
{
	static const struct json_field fields[] = {
		{ "nonce", JSON_HEX, true, 64, offsetof(struct quote_req, nonce) },
		{ "pcrs", JSON_OBJECT, true, 0, offsetof(struct quote_req, pcrs) },
		{ "ima_offset", JSON_UINT64, false, 0, offsetof(struct quote_req, ima_offset) },
		{ "agent_id", JSON_STRING, false, 64, offsetof(struct quote_req, agent_id) },
		{ 0 },
	};
	struct fleet *f = ud;
	struct quote_req qr = { 0 };
	struct quote_out q = { 0 };
	struct json_object *body = NULL;
	TPML_PCR_SELECTION sel;
	struct host *h;
	int r;

	if (json_parse_body(req->body, req->body_len, 16 * 1024, 4, &body) < 0) {
		http_error(resp, 400, "bad_json", "%s", kq_errmsg());
		goto out;
	}
	r = json_dispatch(body, fields, &qr, false);
	json_object_put(body);
	if (r < 0 || (r = evidence_parse_selection(qr.pcrs, &sel)) < 0) {
		http_error(resp, 400, "bad_request", "%s", kq_errmsg());
		goto out;
	}
	if (qr.nonce.len == 0) {
		http_error(resp, 400, "bad_request", "field 'nonce': must not be empty");
		goto out;
	}
	/* one port serves the whole fleet: the caller must say which host it means */
	if (!qr.agent_id) {
		http_error(resp, 409, "wrong_agent", "this fleet simulator serves %zu hosts: name one in agent_id",
			   f->n_hosts);
		goto out;
	}
	h = find_host(f, qr.agent_id);
	if (!h) {
		http_error(resp, 404, "not_found", "no simulated host %s", qr.agent_id);
		goto out;
	}
	if ((size_t)(h - f->hosts) < f->n_hang) {
		http_error(resp, 409, "wrong_agent", "host %s is a dead host agent (--hang): its port is %u", h->id,
			   (unsigned)f->hang_port);
		goto out;
	}
	r = host_evidence(f, h, &sel, qr.nonce.data, qr.nonce.len, qr.ima_offset, &q);
	if (r == 0)
		resp->body = evidence_json(f, h, &q, qr.ima_offset);
	if (r == -ERANGE) {
		http_error(resp, 409, "ima_offset_ahead", "%s", kq_errmsg());
		goto out;
	} else if (r < 0) {
		http_error(resp, r == -ENOENT ? 400 : 500, r == -ENOENT ? "bad_request" : "tpm_error", "%s",
			   r == -ENOENT ? kq_errmsg() : "the TPM could not quote");
		goto out;
	}
	resp->status = 200;
	quote_out_free(&q);
out:
	atomic_fetch_add(resp->status == 200 ? &f->served : &f->refused, 1);
	json_dispatch_free(fields, &qr);
}

/* The 16 bytes of a UUID in its text form. */
static int uuid_bytes(const char *s, uint8_t out[16])
{
	char hex[33];
	size_t n = 0, len;

	if (!s || strlen(s) != 36)
		return -EINVAL;
	for (size_t i = 0; i < 36 && n < 32; i++)
		if (s[i] != '-')
			hex[n++] = s[i];
	hex[n] = '\0';
	return n == 32 && kq_hex_decode(hex, out, 16, &len) == 0 && len == 16 ? 0 : -EINVAL;
}

/*
 * POST /v1/deep-quote (docs/deep-quote.md): every leaf's VM is running here;
 * one quote per request, its qualifying data binding the nonce and the root.
 */
static void handle_deep_quote(const struct http_request *req, struct http_response *resp, void *ud)
{
	static const struct json_field fields[] = {
		{ "nonce", JSON_HEX, true, 64, offsetof(struct deep_req, nonce) },
		{ "pcrs", JSON_OBJECT, true, 0, offsetof(struct deep_req, pcrs) },
		{ "ima_offset", JSON_UINT64, false, 0, offsetof(struct deep_req, ima_offset) },
		{ "agent_id", JSON_STRING, false, 64, offsetof(struct deep_req, agent_id) },
		{ "leaves", JSON_ARRAY, true, 65536, offsetof(struct deep_req, leaves) },
		{ 0 },
	};
	struct fleet *f = ud;
	struct deep_req dr = { 0 };
	struct quote_out q = { 0 };
	struct json_object *body = NULL, *answers = NULL;
	_cleanup_free_ uint8_t(*lv)[MERKLE_HASH] = NULL;
	_cleanup_free_ long *index = NULL;
	struct merkle_tree *t = NULL;
	uint8_t root[MERKLE_HASH], qd[MERKLE_HASH], path[MERKLE_MAX_PROOF][MERKLE_HASH];
	TPML_PCR_SELECTION sel;
	size_t n, good = 0, plen;
	struct host *h;
	int r;

	if (json_parse_body(req->body, req->body_len, 16u << 20, 5, &body) < 0) {
		http_error(resp, 400, "bad_json", "%s", kq_errmsg());
		goto out;
	}
	r = json_dispatch(body, fields, &dr, false);
	json_object_put(body);
	if (r < 0 || (r = evidence_parse_selection(dr.pcrs, &sel)) < 0) {
		http_error(resp, 400, "bad_request", "%s", kq_errmsg());
		goto out;
	}
	if (dr.nonce.len == 0 || !dr.agent_id || !(h = find_host(f, dr.agent_id)) || h->guest) {
		http_error(resp, dr.nonce.len == 0 ? 400 : 404, dr.nonce.len == 0 ? "bad_request" : "not_found",
			   "an empty nonce, or no simulated host %s", dr.agent_id ? dr.agent_id : "");
		goto out;
	}
	n = json_object_array_length(dr.leaves);
	lv = xcalloc(n, sizeof(*lv));
	index = xcalloc(n, sizeof(*index));
	for (size_t i = 0; i < n; i++) {
		struct json_object *l = json_object_array_get_idx(dr.leaves, i), *v;
		uint8_t uuid[16], name[MERKLE_MAX_EK_NAME], att[32];
		size_t name_len = 0, att_len = 0;

		index[i] = -1;
		if (!json_object_is_type(l, json_type_object) || !json_object_object_get_ex(l, "vm_uuid", &v) ||
		    uuid_bytes(json_object_get_string(v), uuid) < 0 || !json_object_object_get_ex(l, "ek_name", &v) ||
		    kq_hex_decode(json_object_get_string(v), name, sizeof(name), &name_len) < 0 ||
		    !json_object_object_get_ex(l, "attest_sha256", &v) ||
		    kq_hex_decode(json_object_get_string(v), att, sizeof(att), &att_len) < 0 || att_len != 32 ||
		    merkle_leaf(uuid, name, name_len, att, lv[good]) < 0)
			continue;
		index[i] = (long)good++;
	}
	if (merkle_build((const uint8_t(*)[MERKLE_HASH])lv, good, &t) < 0) {
		http_error(resp, 500, "internal", "merkle tree: %s", kq_errmsg());
		goto out;
	}
	merkle_root(t, root);
	if (merkle_qualifying_data(dr.nonce.data, dr.nonce.len, root, qd) < 0) {
		http_error(resp, 400, "bad_request", "%s", kq_errmsg());
		goto out;
	}
	r = host_evidence(f, h, &sel, qd, sizeof(qd), dr.ima_offset, &q);
	if (r == -ERANGE) {
		http_error(resp, 409, "ima_offset_ahead", "%s", kq_errmsg());
		goto out;
	} else if (r < 0) {
		http_error(resp, r == -ENOENT ? 400 : 500, r == -ENOENT ? "bad_request" : "tpm_error", "%s",
			   r == -ENOENT ? kq_errmsg() : "the TPM could not quote");
		goto out;
	}
	resp->body = evidence_json(f, h, &q, dr.ima_offset);
	quote_out_free(&q);
	answers = json_object_new_array_ext((int)n);
	for (size_t i = 0; i < n; i++) {
		struct json_object *a = json_object_new_object(), *p;

		if (index[i] < 0 || merkle_proof(t, (size_t)index[i], path, &plen) < 0) {
			struct json_object *e = json_object_new_object();

			json_object_object_add(e, "code", json_object_new_string("bad_leaf"));
			json_object_object_add(e, "message", json_object_new_string("malformed leaf"));
			json_object_object_add(a, "error", e);
		} else {
			json_object_object_add(a, "index", json_object_new_int64(index[i]));
			p = json_object_new_array_ext((int)plen);
			for (size_t k = 0; k < plen; k++)
				json_object_array_add(p, json_new_hex(path[k], MERKLE_HASH));
			json_object_object_add(a, "proof", p);
		}
		json_object_array_add(answers, a);
	}
	json_object_object_add(resp->body, "tree_size", json_object_new_int64((int64_t)good));
	json_object_object_add(resp->body, "root", json_new_hex(root, MERKLE_HASH));
	json_object_object_add(resp->body, "leaves", answers);
	resp->status = 200;
	atomic_fetch_add(&f->deep, 1);
	atomic_fetch_add(&f->leaves, good);
out:
	merkle_free(t);
	atomic_fetch_add(resp->status == 200 ? &f->served : &f->refused, 1);
	json_dispatch_free(fields, &dr);
}

static const struct http_route routes[] = {
	{ "POST", "/v1/quote", true, handle_quote },
	{ "POST", "/v1/deep-quote", true, handle_deep_quote },
};

/*
 * The dead host agents' port: every request is held on its worker thread
 * until f->hang_ms pass or the process stops, then refused (a client still
 * there sees a 503). Connections that arrive while every thread holds one
 * wait unaccepted: to the client that is the same silence.
 */
static void handle_hang(const struct http_request *req, struct http_response *resp, void *ud)
{
	struct fleet *f = ud;
	struct timespec until;

	(void)req;
	atomic_fetch_add(&f->held, 1);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += f->hang_ms / 1000;
	until.tv_nsec += (long)(f->hang_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&f->hang_lock);
	while (!f->stopping && pthread_cond_timedwait(&f->hang_cond, &f->hang_lock, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&f->hang_lock);
	http_error(resp, 503, "hung", "a simulated dead host agent (fleet-sim --hang)");
}

static const struct http_route hang_routes[] = {
	{ "POST", "/v1/quote", true, handle_hang },
};

/* ---- files ---- */

static void path_of(char *out, size_t size, const char *dir, const char *name)
{
	if ((size_t)snprintf(out, size, "%s/%s", dir, name) >= size) {
		kq_err(-ENAMETOOLONG, "%s", dir);
		die("path");
	}
}

static void key_path(char *out, size_t size, const char *dir, size_t i, const char *which)
{
	char name[64];

	snprintf(name, sizeof(name), "keys/host-%05zu-%s.pem", i, which);
	path_of(out, size, dir, name);
}

static void write_bio(const char *path, BIO *b)
{
	char *data;
	long len = BIO_get_mem_data(b, &data);

	if (len <= 0 || kq_write_file(path, data, (size_t)len) < 0)
		die(path);
	BIO_free(b);
}

static void write_key(const char *path, EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());

	if (!b || PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) != 1)
		die("PEM");
	write_bio(path, b);
}

static void write_cert(const char *path, X509 *c)
{
	BIO *b = BIO_new(BIO_s_mem());

	if (!b || PEM_write_bio_X509(b, c) != 1)
		die("PEM");
	write_bio(path, b);
}

static EVP_PKEY *read_key(const char *path)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;
	BIO *b;
	EVP_PKEY *k;

	if (kq_read_file(path, 64 * 1024, &buf, &len) < 0)
		die(path);
	b = BIO_new_mem_buf(buf, (int)len);
	k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (!k) {
		kq_err(-EBADMSG, "not a PEM private key");
		die(path);
	}
	return k;
}

static X509 *read_cert(const char *path)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;
	BIO *b;
	X509 *c;

	if (kq_read_file(path, 64 * 1024, &buf, &len) < 0)
		die(path);
	b = BIO_new_mem_buf(buf, (int)len);
	c = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (!c) {
		kq_err(-EBADMSG, "not a PEM certificate");
		die(path);
	}
	return c;
}

static void write_json(const char *path, struct json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	if (kq_write_file(path, s, strlen(s)) < 0)
		die(path);
}

/* Host i's id: fixed, so that keys, ids and registrations line up across runs. */
static void host_id(size_t i, char out[37])
{
	snprintf(out, 37, "f1ee7000-0000-4000-8000-%012x", (unsigned)(i % MAX_HOSTS));
}

/* ---- keygen ---- */

struct keygen {
	const char *dir;
	size_t n, next;
	pthread_mutex_t lock;
};

static void *keygen_thread(void *arg)
{
	struct keygen *kg = arg;
	char ek_path[4096], ak_path[4096];

	for (;;) {
		size_t i;

		pthread_mutex_lock(&kg->lock);
		i = kg->next++;
		pthread_mutex_unlock(&kg->lock);
		if (i >= kg->n)
			return NULL;
		key_path(ek_path, sizeof(ek_path), kg->dir, i, "ek");
		key_path(ak_path, sizeof(ak_path), kg->dir, i, "ak");
		if (access(ak_path, R_OK) == 0 && access(ek_path, R_OK) == 0)
			continue;
		for (int k = 0; k < 2; k++) {
			EVP_PKEY *key = EVP_RSA_gen(2048);

			if (!key)
				abort();
			write_key(k ? ak_path : ek_path, key);
			EVP_PKEY_free(key);
		}
	}
}

/* A Keylime runtime policy allowing every entry of the list (boot_aggregate included). */
static struct json_object *ima_policy(const struct ima_list *l)
{
	struct json_object *o = json_object_new_object(), *meta = json_object_new_object(),
			   *digests = json_object_new_object();

	json_object_object_add(meta, "version", json_object_new_int(1));
	json_object_object_add(meta, "generator", json_object_new_string("kumquat fleet-sim"));
	json_object_object_add(o, "meta", meta);
	for (size_t i = 0; i < l->n_entries; i++) {
		const struct ima_entry *e = &l->entries[i];
		struct json_object *list, *d = json_new_hex(e->digest, e->digest_len);
		bool dup = false;

		if (!json_object_object_get_ex(digests, e->path, &list)) {
			list = json_object_new_array();
			json_object_object_add(digests, e->path, list);
		}
		for (size_t k = 0; k < json_object_array_length(list); k++)
			dup |= strcmp(json_object_get_string(json_object_array_get_idx(list, k)),
				      json_object_get_string(d)) == 0;
		if (dup)
			json_object_put(d);
		else
			json_object_array_add(list, d);
	}
	json_object_object_add(o, "digests", digests);
	return o;
}

/* Static PCR values a host keeps for its whole boot: sha256 PCRs 0-9. */
static struct json_object *pcr_policy(const struct evidence *ev)
{
	struct json_object *o = json_object_new_object(), *bank = json_object_new_object();

	for (unsigned p = 0; p < 10; p++) {
		char key[4];

		snprintf(key, sizeof(key), "%u", p);
		json_object_object_add(bank, key, json_new_hex(ev->pcr[0][p], kq_hash_size(bank_alg[0])));
	}
	json_object_object_add(o, "sha256", bank);
	return o;
}

static int cmd_keygen(const char *dir, size_t n)
{
	char path[4096], key_path_ca[4096];
	struct keygen kg = { .dir = dir, .n = n };
	pthread_t th[MAX_THREADS];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t nth = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (size_t)cpus;
	struct evidence ev;
	struct json_object *o;
	FILE *ids;
	double t0 = bench_now();

	if ((mkdir(dir, 0700) < 0 && errno != EEXIST))
		die(dir);
	path_of(path, sizeof(path), dir, "keys");
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		die(path);
	path_of(path, sizeof(path), dir, "ek-ca");
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		die(path);

	/* the TPM vendor CA whose certificate the registrar trusts */
	path_of(key_path_ca, sizeof(key_path_ca), dir, "ek-ca-key.pem");
	path_of(path, sizeof(path), dir, "ek-ca/fleet-vendor-ca.pem");
	if (access(key_path_ca, R_OK) != 0 || access(path, R_OK) != 0) {
		EVP_PKEY *ca_key = EVP_RSA_gen(2048);
		X509 *ca;

		if (!ca_key)
			abort();
		ca = test_make_cert(ca_key, ca_key, NULL, "kumquat fleet-sim TPM vendor CA");
		write_key(key_path_ca, ca_key);
		write_cert(path, ca);
		X509_free(ca);
		EVP_PKEY_free(ca_key);
	}

	pthread_mutex_init(&kg.lock, NULL);
	for (size_t t = 0; t < nth; t++)
		if (pthread_create(&th[t], NULL, keygen_thread, &kg) != 0)
			abort();
	for (size_t t = 0; t < nth; t++)
		pthread_join(th[t], NULL);
	pthread_mutex_destroy(&kg.lock);

	path_of(path, sizeof(path), dir, "ids");
	ids = fopen(path, "we");
	if (!ids)
		die(path);
	for (size_t i = 0; i < n; i++) {
		char id[37];

		host_id(i, id);
		fprintf(ids, "%s\n", id);
	}
	if (fclose(ids) != 0)
		die(path);

	load_evidence(false, &ev);
	o = pcr_policy(&ev);
	path_of(path, sizeof(path), dir, "pcr-policy.json");
	write_json(path, o);
	json_object_put(o);
	o = ima_policy(ev.list);
	path_of(path, sizeof(path), dir, "ima-policy.json");
	write_json(path, o);
	json_object_put(o);
	free_evidence(&ev);
	printf("fleet-sim: keys for %zu hosts in %s (%.1f s)\n", n, dir, bench_now() - t0);
	return 0;
}

/* ---- enrolment, as the host agent does it ---- */

/* TPM2_ActivateCredential with an ECC EK in software: ECDH with the ephemeral point, KDFe, then as for RSA. */
static int ecc_activate(const struct host *h, const uint8_t *credfile, size_t len, uint8_t *secret,
			size_t *secret_len)
{
	TPM2B_ID_OBJECT blob;
	TPM2B_ENCRYPTED_SECRET es;
	TPMS_ECC_POINT pt = { 0 };
	uint8_t pub[65], z[32], seed[32], symkey[16], hmackey[32], hmac[32], plain[2 + 64], msg[512], iv[16] = { 0 };
	size_t off = 0, zlen = sizeof(z), enc_len;
	unsigned int hl;
	int outl, r = -1;
	EVP_PKEY *peer = NULL;
	EVP_PKEY_CTX *pc, *dc;
	EVP_CIPHER_CTX *c;
	OSSL_PARAM params[3];
	const uint8_t *enc;

	if (tpm_credfile_parse(credfile, len, &blob, &es) < 0 ||
	    Tss2_MU_TPMS_ECC_POINT_Unmarshal(es.secret, es.size, &off, &pt) != TSS2_RC_SUCCESS || pt.x.size != 32 ||
	    pt.y.size != 32)
		return -1;
	pub[0] = 4;
	memcpy(pub + 1, pt.x.buffer, 32);
	memcpy(pub + 33, pt.y.buffer, 32);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub));
	params[2] = OSSL_PARAM_construct_end();
	pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!pc || EVP_PKEY_fromdata_init(pc) <= 0 || EVP_PKEY_fromdata(pc, &peer, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		EVP_PKEY_CTX_free(pc);
		return -1;
	}
	EVP_PKEY_CTX_free(pc);
	dc = EVP_PKEY_CTX_new(h->ek, NULL);
	if (!dc || EVP_PKEY_derive_init(dc) <= 0 || EVP_PKEY_derive_set_peer(dc, peer) <= 0 ||
	    EVP_PKEY_derive(dc, z, &zlen) <= 0 ||
	    tpm_kdfe(KQ_ALG_SHA256, z, zlen, "IDENTITY", pt.x.buffer, 32, h->ek_pub.unique.ecc.x.buffer,
		     h->ek_pub.unique.ecc.x.size, 256, seed) < 0) {
		EVP_PKEY_CTX_free(dc);
		EVP_PKEY_free(peer);
		return -1;
	}
	EVP_PKEY_CTX_free(dc);
	EVP_PKEY_free(peer);
	tpm_kdfa(KQ_ALG_SHA256, seed, 32, "STORAGE", h->ak_name.name, h->ak_name.size, NULL, 0, 128, symkey);
	tpm_kdfa(KQ_ALG_SHA256, seed, 32, "INTEGRITY", NULL, 0, NULL, 0, 256, hmackey);
	if ((blob.credential[0] << 8 | blob.credential[1]) != 32 || blob.size < 2 + 32 + 2 ||
	    (size_t)blob.size - 34 + h->ak_name.size > sizeof(msg))
		return -1;
	enc = blob.credential + 2 + 32;
	enc_len = blob.size - 2 - 32;
	memcpy(msg, enc, enc_len);
	memcpy(msg + enc_len, h->ak_name.name, h->ak_name.size);
	HMAC(EVP_sha256(), hmackey, 32, msg, enc_len + h->ak_name.size, hmac, &hl);
	if (CRYPTO_memcmp(hmac, blob.credential + 2, 32) != 0 || enc_len > sizeof(plain))
		return -1;
	c = EVP_CIPHER_CTX_new();
	EVP_DecryptInit_ex(c, EVP_aes_128_cfb128(), NULL, symkey, iv);
	EVP_DecryptUpdate(c, plain, &outl, enc, (int)enc_len);
	EVP_CIPHER_CTX_free(c);
	if (outl >= 2 && (size_t)(plain[0] << 8 | plain[1]) == (size_t)outl - 2) {
		*secret_len = (size_t)outl - 2;
		memcpy(secret, plain + 2, *secret_len);
		r = 0;
	}
	return r;
}

/* POST url with body (taken); dies unless 2xx. The answer, for the caller to put. */
static struct json_object *post_ok(const struct http_client_config *cc, const char *url, struct json_object *body,
				   const char *what)
{
	struct json_object *resp = NULL;
	long status = 0;
	int r = http_request_json(cc, "POST", url, body, &status, &resp);

	json_object_put(body);
	if (r < 0)
		die(url);
	if (status < 200 || status > 299) {
		kq_err(-EPROTO, "HTTP %ld %s", status, resp ? json_object_to_json_string(resp) : "");
		die(what);
	}
	return resp;
}

/*
 * The host's vTPM-CA key, certified as the vTPM manager does it: TPM2_Certify
 * by the host's AK over the registrar's nonce. ca_key is an RSA-2048
 * unrestricted signing key; *ret_cert its self-signed CA certificate.
 */
static void certify_vtpm_ca(const struct host *h, EVP_PKEY *ca_key, const struct http_client_config *cc,
			    const char *registrar, X509 **ret_cert)
{
	TPMS_ATTEST at = { .magic = TPM2_GENERATED_VALUE, .type = TPM2_ST_ATTEST_CERTIFY };
	TPMT_PUBLIC ca;
	uint8_t ca_pub[1024], attest[4096], sig[1024];
	size_t ca_len, attest_len, sig_len, nlen;
	_cleanup_free_ uint8_t *nonce = NULL;
	struct json_object *resp, *body, *v;
	char url[1024];

	test_rsa_public(ca_key, TEST_CA_ATTRS, &ca, false);
	ca.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
	ca_len = test_marshal_public(&ca, ca_pub, sizeof(ca_pub));
	if (tpm_public_name(&ca, &at.attested.certify.name) < 0)
		die("vTPM-CA name");
	at.qualifiedSigner = h->ak_qn;
	snprintf(url, sizeof(url), "%s/v1/agents/%s/vtpm-ca/nonce", registrar, h->id);
	resp = post_ok(cc, url, json_object_new_object(), "vTPM-CA nonce refused");
	if (!json_object_object_get_ex(resp, "nonce", &v) ||
	    kq_base64_decode(json_object_get_string(v), 64, &nonce, &nlen) < 0 || nlen > sizeof(at.extraData.buffer))
		die("vTPM-CA nonce");
	json_object_put(resp);
	at.extraData.size = (UINT16)nlen;
	memcpy(at.extraData.buffer, nonce, nlen);
	attest_len = test_sign_attest(h->ak, &at, attest, sizeof(attest), sig, sizeof(sig), &sig_len);
	body = json_object_new_object();
	json_object_object_add(body, "ca_pub", json_new_base64(ca_pub, ca_len));
	json_object_object_add(body, "attest", json_new_base64(attest, attest_len));
	json_object_object_add(body, "signature", json_new_base64(sig, sig_len));
	snprintf(url, sizeof(url), "%s/v1/agents/%s/vtpm-ca", registrar, h->id);
	json_object_put(post_ok(cc, url, body, "vTPM-CA certification refused"));
	if (x509_ca_cert_new(&(struct x509_name_spec){ .cn = "kumquat fleet-sim vTPM CA" }, 3650, ca_key, ret_cert) < 0 ||
	    X509_sign(*ret_cert, ca_key, EVP_sha256()) <= 0)
		die("vTPM-CA certificate");
}

/* A guest's vTPM EK certificate from its host's vTPM-CA, naming the VM and the host. */
static X509 *guest_ek_cert(const struct host *g, const char *vm, const char *host_id, EVP_PKEY *ca_key, X509 *ca)
{
	struct x509_tpm_cert_spec spec = {
		.manufacturer = "id:00001014", .model = "swtpm", .version = "id:20191023", .spec_family = "2.0",
		.spec_revision = 164, .vm_uuid = vm, .host_id = host_id,
	};
	X509 *c = NULL;

	if (x509_tpm_cert_new(&spec, g->ek, ca, &c) < 0 || X509_sign(c, ca_key, EVP_sha256()) <= 0)
		die("guest EK certificate");
	return c;
}

/* Enrols h (a host when vm is NULL, else a guest in VM vm) with its EK certificate cert (taken). */
static void enrol(struct host *h, X509 *cert, const char *vm, const struct http_client_config *cc,
		  const char *registrar, const char *contact)
{
	uint8_t ek_pub[1024], ak_pub[1024], secret[64], proof[32];
	size_t ek_len = test_marshal_public(&h->ek_pub, ek_pub, sizeof(ek_pub));
	size_t ak_len = test_marshal_public(&h->ak_pub, ak_pub, sizeof(ak_pub)), cred_len, slen = 0;
	unsigned char *der = NULL;
	int der_len = i2d_X509(cert, &der);
	struct json_object *body = json_object_new_object(), *resp = NULL, *v, *handle;
	_cleanup_free_ uint8_t *cred = NULL;
	char url[1024];
	long status = 0;
	int r;

	X509_free(cert);
	if (der_len <= 0)
		die("EK certificate");
	json_object_object_add(body, "id", json_object_new_string(h->id));
	json_object_object_add(body, "kind", json_object_new_string(vm ? "guest" : "host"));
	if (vm)
		json_object_object_add(body, "vm_uuid", json_object_new_string(vm));
	json_object_object_add(body, "ek_pub", json_new_base64(ek_pub, ek_len));
	json_object_object_add(body, "ek_cert", json_new_base64(der, (size_t)der_len));
	json_object_object_add(body, "ak_pub", json_new_base64(ak_pub, ak_len));
	json_object_object_add(body, "contact", json_object_new_string(contact));
	OPENSSL_free(der);
	snprintf(url, sizeof(url), "%s/v1/agents", registrar);
	r = http_request_json(cc, "POST", url, body, &status, &resp);
	json_object_put(body);
	if (r < 0)
		die(url);
	if (status != 200 || !json_object_object_get_ex(resp, "credential", &v) ||
	    !json_object_object_get_ex(resp, "handle", &handle) ||
	    kq_base64_decode(json_object_get_string(v), 4096, &cred, &cred_len) < 0) {
		kq_err(-EPROTO, "HTTP %ld %s", status, resp ? json_object_to_json_string(resp) : "");
		die("enrolment refused");
	}
	if ((h->guest ? ecc_activate(h, cred, cred_len, secret, &slen)
		      : test_activate(h->ek, &h->ek_pub, &h->ak_name, cred, cred_len, secret, &slen)) < 0 ||
	    tpm_activation_proof(secret, slen, h->id, proof) < 0)
		die("ActivateCredential in software");
	OPENSSL_cleanse(secret, sizeof(secret));
	body = json_object_new_object();
	json_object_object_add(body, "handle", json_object_get(handle));
	json_object_object_add(body, "proof", json_new_base64(proof, sizeof(proof)));
	json_object_put(resp);
	resp = NULL;
	snprintf(url, sizeof(url), "%s/v1/agents/%s/activate", registrar, h->id);
	r = http_request_json(cc, "POST", url, body, &status, &resp);
	json_object_put(body);
	if (r < 0)
		die(url);
	if (status != 200) {
		kq_err(-EPROTO, "HTTP %ld %s", status, resp ? json_object_to_json_string(resp) : "");
		die("activation refused");
	}
	json_object_put(resp);
}

/* ---- serve ---- */

struct serve_opts {
	const char *dir, *listen, *cert, *key, *client_ca, *registrar, *registrar_ca, *guest_ids;
	size_t n, hang, guests;
	uint16_t port;
	unsigned threads;
};

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

static int cmd_serve(struct fleet *f, const struct serve_opts *o)
{
	char path[4096], contact[300], hang_contact[300];
	struct http_server *srv, *hang_srv = NULL;
	pthread_condattr_t ca_attr;
	EVP_PKEY *ca_key = NULL;
	X509 *ca = NULL;
	sigset_t sigs;
	int sig;
	double t_ready, cpu_ready;
	unsigned long appended = 0;

	/* the server's threads inherit the mask: only sigwait below sees these */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	/* held requests are answered after their clients have gone */
	signal(SIGPIPE, SIG_IGN);
	pthread_mutex_init(&f->hang_lock, NULL);
	pthread_condattr_init(&ca_attr);
	pthread_condattr_setclock(&ca_attr, CLOCK_MONOTONIC);
	pthread_cond_init(&f->hang_cond, &ca_attr);
	pthread_condattr_destroy(&ca_attr);

	f->n_hosts = o->n;
	f->n_guests = o->guests;
	f->n_all = o->n + o->n * o->guests;
	f->n_hang = o->hang;
	f->hosts = xcalloc(f->n_all, sizeof(*f->hosts));
	for (size_t i = 0; i < o->n; i++) {
		char ek_path[4096], ak_path[4096], id[37];

		key_path(ek_path, sizeof(ek_path), o->dir, i, "ek");
		key_path(ak_path, sizeof(ak_path), o->dir, i, "ak");
		host_id(i, id);
		host_init(f, &f->hosts[i], id, read_key(ek_path), read_key(ak_path));
	}
	if (o->guests) {
		/* ids of this run (a tag that is not a host's 0000), ending in their index */
		uint16_t tag = 0;
		double t0 = bench_now();

		while (tag == 0)
			RAND_bytes((uint8_t *)&tag, sizeof(tag));
		for (size_t i = o->n; i < f->n_all; i++) {
			char id[37];
			EVP_PKEY *ek = EVP_EC_gen("prime256v1"), *ak = EVP_EC_gen("prime256v1");

			if (!ek || !ak)
				abort();
			snprintf(id, sizeof(id), "f1ee7000-%04x-4000-8000-%012x", (unsigned)tag, (unsigned)i);
			host_init(f, &f->hosts[i], id, ek, ak);
		}
		log_info(MOD, "ECC P-256 keys for %zu guests in %.2f s", f->n_all - o->n, bench_now() - t0);
	}
	if (o->registrar) {
		path_of(path, sizeof(path), o->dir, "ek-ca-key.pem");
		ca_key = read_key(path);
		path_of(path, sizeof(path), o->dir, "ek-ca/fleet-vendor-ca.pem");
		ca = read_cert(path);
	}

	if (http_server_start(&(struct http_server_config){ .bind_addr = o->listen, .port = o->port,
							    .cert_file = o->cert, .key_file = o->key,
							    .client_ca_file = o->client_ca, .max_body = 16u << 20,
							    .threads = o->threads, .max_connections = 4096 },
			      routes, ARRAY_SIZE(routes), f, &srv) < 0)
		die("cannot serve");
	log_info(MOD, "listening on https://%s:%u", o->listen, http_server_port(srv));
	if (f->n_hang) {
		/* about a thread per request held at a time (each client retries after its timeout) */
		size_t th = 4 * f->n_hang + 2;
		struct http_server_config hc = {
			.bind_addr = o->listen, .cert_file = o->cert, .key_file = o->key,
			.client_ca_file = o->client_ca, .max_body = 64 * 1024, .max_connections = 4096,
			.threads = th > MAX_THREADS ? MAX_THREADS : (unsigned)th,
		};

		if (http_server_start(&hc, hang_routes, ARRAY_SIZE(hang_routes), f, &hang_srv) < 0)
			die("cannot serve the hung hosts");
		f->hang_port = http_server_port(hang_srv);
		log_info(MOD, "hung hosts on https://%s:%u: the first %zu hosts never answer (held %u ms)", o->listen,
			 (unsigned)f->hang_port, f->n_hang, f->hang_ms);
	}

	if (o->registrar) {
		struct http_client_config cc = { .ca_file = o->registrar_ca, .timeout_ms = 30000 };
		double t0 = bench_now();

		snprintf(contact, sizeof(contact), "https://%s:%u", o->listen, http_server_port(srv));
		snprintf(hang_contact, sizeof(hang_contact), "https://%s:%u", o->listen, (unsigned)f->hang_port);
		for (size_t i = 0; i < o->n; i++)
			enrol(&f->hosts[i], test_make_cert(f->hosts[i].ek, ca_key, ca, ""), NULL, &cc, o->registrar,
			      i < f->n_hang ? hang_contact : contact);
		log_info(MOD, "enrolled %zu hosts with %s in %.2f s", o->n, o->registrar, bench_now() - t0);
		if (o->guests) {
			FILE *out = NULL;

			t0 = bench_now();
			if (o->guest_ids && !(out = fopen(o->guest_ids, "we")))
				die(o->guest_ids);
			for (size_t i = 0; i < o->n; i++) {
				struct host *h = &f->hosts[i];
				char vca_path[4096];
				EVP_PKEY *vca;
				X509 *vca_cert = NULL;

				/* the host's vTPM-CA key: RSA-2048, kept with its other keys */
				key_path(vca_path, sizeof(vca_path), o->dir, i, "vtpm-ca");
				if (access(vca_path, R_OK) == 0) {
					vca = read_key(vca_path);
				} else {
					if (!(vca = EVP_RSA_gen(2048)))
						abort();
					write_key(vca_path, vca);
				}
				certify_vtpm_ca(h, vca, &cc, o->registrar, &vca_cert);
				for (size_t g = 0; g < o->guests; g++) {
					struct host *gh = &f->hosts[o->n + i * o->guests + g];
					char vm[37];

					random_uuid(vm);
					enrol(gh, guest_ek_cert(gh, vm, h->id, vca, vca_cert), vm, &cc, o->registrar,
					      contact);
					if (out)
						fprintf(out, "%s %s\n", gh->id, h->id);
				}
				X509_free(vca_cert);
				EVP_PKEY_free(vca);
			}
			if (out && fclose(out) != 0)
				die(o->guest_ids);
			log_info(MOD, "enrolled %zu guests (%zu per host, vTPM-CA certified) in %.2f s",
				 f->n_all - o->n, o->guests, bench_now() - t0);
		}
	}
	EVP_PKEY_free(ca_key);
	X509_free(ca);
	log_info(MOD, "ready: %zu hosts, %zu guests each, IMA list %s, %zu entries, +1 every %u quotes", o->n, o->guests,
		 f->ev.binary ? "binary" : "ascii", f->ev.n_ima, f->append_every);
	t_ready = bench_now();
	cpu_ready = cpu_seconds();

	while (sigwait(&sigs, &sig) != 0)
		;
	/* release the held requests, or stopping the servers would wait for them */
	pthread_mutex_lock(&f->hang_lock);
	f->stopping = true;
	pthread_cond_broadcast(&f->hang_cond);
	pthread_mutex_unlock(&f->hang_lock);
	http_server_stop(hang_srv);
	http_server_stop(srv);
	for (size_t i = 0; i < o->n; i++)
		appended += f->hosts[i].n_app;
	log_info(MOD, "signal %d: served %lu quotes (%lu deep, %lu leaves), refused %lu, held %lu,"
		      " %lu IMA entries appended; %.1f s, %.2f CPU s",
		 sig, atomic_load(&f->served), atomic_load(&f->deep), atomic_load(&f->leaves),
		 atomic_load(&f->refused), atomic_load(&f->held), appended, bench_now() - t_ready,
		 cpu_seconds() - cpu_ready);
	pthread_cond_destroy(&f->hang_cond);
	pthread_mutex_destroy(&f->hang_lock);
	for (size_t i = 0; i < f->n_all; i++)
		host_free(&f->hosts[i]);
	free(f->hosts);
	return 0;
}

/* ---- selftest ---- */

static char st_dir[] = "/tmp/kq-fleet-sim-XXXXXX";
static bool st_have_dir;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void st_cleanup(void)
{
	if (st_have_dir)
		nftw(st_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static _Noreturn void st_fail(const char *fmt, ...) _printf_(1, 2);
static _Noreturn void st_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("fleet-sim selftest: FAIL: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Runs argv with output to out (or /dev/null); its exit status, or -1. */
static int run(char *const argv[], const char *out)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void st_write(const char *name, const void *data, size_t len, char *path, size_t size)
{
	path_of(path, size, st_dir, name);
	if (kq_write_file(path, data, len) < 0)
		die(path);
}

/* `kumquat quote check` on q; its exit status. */
static int quote_check(const char *kumquat, const struct host *h, const struct quote_out *q, const uint8_t *nonce,
		       size_t nonce_len)
{
	char ak[4096], msg[4096], sig[4096], pcrs[4096], out[4096], nonce_hex[129], qn[2 * sizeof(h->ak_qn.name) + 1];
	uint8_t pub[1024];
	size_t pub_len = test_marshal_public(&h->ak_pub, pub, sizeof(pub));
	int rc;

	st_write("ak.pub", pub, pub_len, ak, sizeof(ak));
	st_write("quote.msg", q->attest, q->attest_len, msg, sizeof(msg));
	st_write("quote.sig", q->sig, q->sig_len, sig, sizeof(sig));
	st_write("quote.pcrs", q->pcrfile, q->pcrfile_len, pcrs, sizeof(pcrs));
	path_of(out, sizeof(out), st_dir, "check.out");
	kq_hex_encode(nonce, nonce_len, nonce_hex);
	kq_hex_encode(h->ak_qn.name, h->ak_qn.size, qn);
	rc = run((char *const[]){ (char *)kumquat, "quote", "check", "--ak", ak, "--message", msg, "--signature", sig,
				  "--pcrs", pcrs, "--nonce", nonce_hex, "--signer-name", qn, NULL },
		 out);
	if (rc != 0 && rc != 1)
		st_fail("kumquat quote check exited %d (see its output in %s)", rc, out);
	return rc;
}

static void sel_pcrs(TPML_PCR_SELECTION *sel, uint16_t alg, uint32_t mask)
{
	TPMS_PCR_SELECTION *s = &sel->pcrSelections[sel->count++];

	s->hash = alg;
	s->sizeofSelect = 3;
	s->pcrSelect[0] = (uint8_t)mask;
	s->pcrSelect[1] = (uint8_t)(mask >> 8);
	s->pcrSelect[2] = (uint8_t)(mask >> 16);
}

static void decode_attest(const struct quote_out *q, TPMS_ATTEST *a)
{
	if (tpm_attest_unmarshal(q->attest, q->attest_len, a) < 0)
		die("own TPMS_ATTEST");
}

/* The evidence's PCRs against the real quote the test data comes from. */
static void st_real_pcrs(const struct evidence *ev)
{
	struct json_object *d = testdata_json("quote/hpe-real-quote-with-logs.json");
	size_t len;
	uint8_t *blob = test_b64(jstr(d, "subject_data_b64"), &len);
	struct tpm_pcrs real;
	const struct tpm_pcr_bank *rb;
	unsigned checked = 0;

	if (tpm_pcrfile_parse(blob, len, &real) < 0 || !(rb = tpm_pcrs_bank(&real, KQ_ALG_SHA256)))
		die("the real quote's PCRs");
	for (unsigned p = 0; p <= 14; p++) {
		const uint8_t *mine = p == IMA_PCR ? ev->pcr10[0] : ev->pcr[0][p];

		if (!(rb->mask & (1u << p)) || (p > IMA_PCR && p != 14))
			continue;
		if (memcmp(rb->value[p], mine, 32) != 0)
			st_fail("sha256 PCR %u differs from the real quote's", p);
		checked++;
	}
	if (checked != 12)
		st_fail("only %u PCRs compared with the real quote", checked);
	free(blob);
	json_object_put(d);
}

struct st_call {
	const struct http_client_config *cc;
	const char *url;
};

static long st_post(const struct st_call *c, const char *nonce_hex, const char *pcrs_json, uint64_t offset,
		    const char *agent_id, struct json_object **ret)
{
	struct json_object *body = json_object_new_object(), *out = NULL;
	long status = 0;

	json_object_object_add(body, "nonce", json_object_new_string(nonce_hex));
	json_object_object_add(body, "pcrs", json_tokener_parse(pcrs_json));
	json_object_object_add(body, "ima_offset", json_object_new_int64((int64_t)offset));
	if (agent_id)
		json_object_object_add(body, "agent_id", json_object_new_string(agent_id));
	if (http_request_json(c->cc, "POST", c->url, body, &status, &out) < 0)
		die(c->url);
	json_object_put(body);
	if (ret)
		*ret = out;
	else
		json_object_put(out);
	return status;
}

static const char *st_code(struct json_object *o)
{
	struct json_object *e, *c;

	return json_object_object_get_ex(o, "error", &e) && json_object_object_get_ex(e, "code", &c)
		       ? json_object_get_string(c)
		       : "";
}

static uint8_t *st_b64(struct json_object *o, const char *key, size_t *len)
{
	struct json_object *v;
	uint8_t *out;

	if (!json_object_object_get_ex(o, key, &v) || kq_base64_decode(json_object_get_string(v), 1u << 24, &out, len) < 0)
		st_fail("answer: field %s missing or not base64", key);
	return out;
}

/* The endpoint over HTTPS, with and without a client certificate. */
static void st_https(struct fleet *f, const char *kumquat)
{
	char tls[4096], cert[4096], key[4096], ca[4096], ccert[4096], ckey[4096], url[256], nonce_hex[65], log[4096];
	struct http_server *srv;
	struct host *h = &f->hosts[0];
	struct json_object *ans, *q, *ima, *v;
	uint8_t nonce[32], *msg, *sigb, *pcrb, *data;
	size_t msg_len, sig_len, pcr_len, data_len;
	TPMT_SIGNATURE sig;
	struct tpm_pcrs pcrs;
	struct ima_list *l;
	const char *sel = "{\"sha256\": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}";

	path_of(tls, sizeof(tls), st_dir, "tls");
	path_of(log, sizeof(log), st_dir, "ca.out");
	if (run((char *const[]){ (char *)kumquat, "ca", "init", "--dir", tls, NULL }, log) != 0 ||
	    run((char *const[]){ (char *)kumquat, "ca", "issue", "--dir", tls, "--name", "fleet", "--server", NULL },
		log) != 0 ||
	    run((char *const[]){ (char *)kumquat, "ca", "issue", "--dir", tls, "--name", "verifier", "--client", NULL },
		log) != 0)
		st_fail("kumquat ca init/issue failed");
	path_of(cert, sizeof(cert), tls, "fleet.pem");
	path_of(key, sizeof(key), tls, "fleet-key.pem");
	path_of(ca, sizeof(ca), tls, "ca.pem");
	path_of(ccert, sizeof(ccert), tls, "verifier.pem");
	path_of(ckey, sizeof(ckey), tls, "verifier-key.pem");
	if (http_server_start(&(struct http_server_config){ .cert_file = cert, .key_file = key, .client_ca_file = ca },
			      routes, ARRAY_SIZE(routes), f, &srv) < 0)
		die("http_server_start");
	snprintf(url, sizeof(url), "https://127.0.0.1:%u/v1/quote", http_server_port(srv));

	struct http_client_config with = { .ca_file = ca, .cert_file = ccert, .key_file = ckey };
	struct http_client_config without = { .ca_file = ca };
	struct st_call c = { &with, url }, anon = { &without, url };
	long st;

	RAND_bytes(nonce, sizeof(nonce));
	kq_hex_encode(nonce, sizeof(nonce), nonce_hex);
	if ((st = st_post(&c, nonce_hex, sel, 0, h->id, &ans)) != 200)
		st_fail("POST /v1/quote: HTTP %ld", st);
	if (!json_object_object_get_ex(ans, "quote", &q) || !json_object_object_get_ex(ans, "ima", &ima))
		st_fail("answer without quote or ima");
	msg = st_b64(q, "message", &msg_len);
	sigb = st_b64(q, "signature", &sig_len);
	pcrb = st_b64(q, "pcrs", &pcr_len);
	if (tpm_signature_unmarshal(sigb, sig_len, &sig) < 0 || tpm_pcrfile_parse(pcrb, pcr_len, &pcrs) < 0 ||
	    tpm_quote_verify(&(struct tpm_quote_check){ .attest = msg, .attest_len = msg_len, .sig = &sig,
							.key = h->ak, .nonce = nonce, .nonce_len = sizeof(nonce),
							.pcrs = &pcrs, .signer = &h->ak_qn },
			     NULL) < 0)
		st_fail("the quote served does not verify: %s", kq_errmsg());
	data = st_b64(ima, "data", &data_len);
	if (!json_object_object_get_ex(ima, "entries", &v) || json_object_get_int64(v) < (int64_t)f->ev.n_ima ||
	    ima_list_parse(data, data_len, NULL, &l) < 0 || l->n_entries != (size_t)json_object_get_int64(v))
		st_fail("the IMA list served does not parse or has the wrong count");
	ima_list_free(l);
	free(data);
	data = st_b64(ans, "uefi_log", &data_len);
	if (!json_object_object_get_ex(ans, "boot_id", &v) || strcmp(json_object_get_string(v), h->boot_id) != 0 ||
	    data_len * 4 / 3 > f->ev.uefi_b64_len + 3 || data_len * 4 / 3 + 4 < f->ev.uefi_b64_len)
		st_fail("boot_id or uefi_log wrong");
	free(data);
	free(msg);
	free(sigb);
	free(pcrb);
	json_object_put(ans);

	if ((st = st_post(&c, nonce_hex, sel, 0, NULL, &ans)) != 409 || strcmp(st_code(ans), "wrong_agent") != 0)
		st_fail("no agent_id: HTTP %ld %s, want 409 wrong_agent", st, st_code(ans));
	json_object_put(ans);
	if ((st = st_post(&c, nonce_hex, sel, 0, "f1ee7000-0000-4000-8000-ffffffffffff", NULL)) != 404)
		st_fail("unknown agent_id: HTTP %ld, want 404", st);
	if ((st = st_post(&c, nonce_hex, sel, 1u << 30, h->id, &ans)) != 409 ||
	    strcmp(st_code(ans), "ima_offset_ahead") != 0)
		st_fail("ima_offset past the end: HTTP %ld %s, want 409 ima_offset_ahead", st, st_code(ans));
	json_object_put(ans);
	if ((st = st_post(&c, nonce_hex, "{\"sha1\": [0]}", 0, h->id, NULL)) != 400)
		st_fail("unallocated bank: HTTP %ld, want 400", st);
	if ((st = st_post(&anon, nonce_hex, sel, 0, h->id, NULL)) != 401)
		st_fail("no client certificate: HTTP %ld, want 401", st);
	http_server_stop(srv);
}

static int cmd_selftest(void)
{
	const char *kumquat = getenv("KUMQUAT");
	struct fleet f = { .append_every = 1, .max_append = 8 };
	struct evidence ascii;
	struct quote_out q = { 0 };
	TPMS_ATTEST a;
	uint8_t nonce[32];
	uint64_t last_clock;
	struct host *h;

	if (!kumquat || access(kumquat, X_OK) != 0) {
		printf("SKIP: KUMQUAT (the kumquat CLI) not set; run through meson test\n");
		return KQ_TEST_SKIP;
	}
	if (!mkdtemp(st_dir))
		die("mkdtemp");
	st_have_dir = true;
	atexit(st_cleanup);

	/* both list formats parse and replay to the same PCR 10, which is the real quote's */
	load_evidence(false, &ascii);
	load_evidence(true, &f.ev);
	if (memcmp(ascii.pcr10, f.ev.pcr10, sizeof(ascii.pcr10)) != 0)
		st_fail("ascii and binary lists replay differently");
	free_evidence(&ascii);
	st_real_pcrs(&f.ev);

	f.t0 = bench_now();
	f.n_hosts = f.n_all = 1;
	f.hosts = h = xcalloc(1, sizeof(*h));
	host_init(&f, h, "f1ee7000-0000-4000-8000-000000000000", EVP_RSA_gen(2048), EVP_RSA_gen(2048));

	/* sha256 PCRs 0-10, as the verifier asks */
	TPML_PCR_SELECTION sel = { 0 };
	sel_pcrs(&sel, KQ_ALG_SHA256, 0x7ff);
	RAND_bytes(nonce, sizeof(nonce));
	if (host_evidence(&f, h, &sel, nonce, sizeof(nonce), 0, &q) < 0)
		die("quote");
	if (quote_check(kumquat, h, &q, nonce, sizeof(nonce)) != 0)
		st_fail("kumquat quote check refused a quote (sha256 0-10)");
	nonce[0] ^= 1;
	if (quote_check(kumquat, h, &q, nonce, sizeof(nonce)) != 1)
		st_fail("kumquat quote check accepted the wrong nonce");
	decode_attest(&q, &a);
	last_clock = a.clockInfo.clock;
	if (q.ima_entries != f.ev.n_ima)
		st_fail("first IMA slice has %llu entries", (unsigned long long)q.ima_entries);
	quote_out_free(&q);

	/* two banks, other PCRs; the list grows by one entry per quote from now on */
	sel = (TPML_PCR_SELECTION){ 0 };
	sel_pcrs(&sel, KQ_ALG_SHA384, 0x7ff | 1u << 14 | 1u << 17);
	sel_pcrs(&sel, KQ_ALG_SHA256, 1u << 10 | 1u << 23);
	for (int i = 0; i < 3; i++) {
		RAND_bytes(nonce, sizeof(nonce));
		if (host_evidence(&f, h, &sel, nonce, sizeof(nonce), f.ev.n_ima, &q) < 0)
			die("quote");
		if (quote_check(kumquat, h, &q, nonce, sizeof(nonce)) != 0)
			st_fail("kumquat quote check refused quote %d (sha384 + sha256)", i + 2);
		decode_attest(&q, &a);
		if (a.clockInfo.clock <= last_clock || a.clockInfo.resetCount != RESET_COUNT)
			st_fail("the clock did not advance, or the reset count changed");
		last_clock = a.clockInfo.clock;
		if (i < 2)
			quote_out_free(&q);
	}

	/* the entries added since the first quote, replayed on top of the shipped list, give the quoted PCR 10 */
	{
		struct ima_replay_state st;
		struct ima_list *l;
		struct tpm_pcrs pcrs;
		struct ima_parse_opts po = { .first_index = f.ev.n_ima };

		ima_replay_init(&st, IMA_BANK_SHA256 | IMA_BANK_SHA384, 0);
		if (ima_list_parse(f.ev.ima, f.ev.ima_len, NULL, &l) < 0 || ima_replay_list(&st, l) < 0)
			die("replay");
		ima_list_free(l);
		if (q.ima_entries != 3 || ima_list_parse(q.ima, q.ima_len, &po, &l) < 0 || l->n_entries != 3 ||
		    ima_replay_list(&st, l) < 0)
			st_fail("the appended IMA entries do not parse (%llu)", (unsigned long long)q.ima_entries);
		ima_list_free(l);
		if (tpm_pcrfile_parse(q.pcrfile, q.pcrfile_len, &pcrs) < 0)
			die("PCR file");
		for (int b = 0; b < N_BANKS; b++)
			if (memcmp(tpm_pcrs_bank(&pcrs, bank_alg[b])->value[IMA_PCR],
				   ima_replay_pcr(&st, IMA_PCR, bank_alg[b]), kq_hash_size(bank_alg[b])) != 0)
				st_fail("quoted PCR 10 (%s) is not the replay of the list served",
					kq_hash_name(bank_alg[b]));
		if (memcmp(tpm_pcrs_bank(&pcrs, KQ_ALG_SHA384)->value[17], (uint8_t[48]){ [0 ... 47] = 0xff }, 48))
			st_fail("PCR 17 is not all ones");
	}
	quote_out_free(&q);

	st_https(&f, kumquat);
	host_free(h);
	free(h);
	free_evidence(&f.ev);
	printf("fleet-sim selftest: OK (PCRs 0-10 and 14 equal the real quote's; quotes accepted by kumquat quote check;"
	       " IMA list grows and replays to PCR 10; endpoint over mTLS)\n");
	return 0;
}

/* ---- main ---- */

static void usage(FILE *out)
{
	fputs("usage: fleet-sim keygen --dir DIR --hosts N\n"
	      "       fleet-sim serve --dir DIR --hosts N --cert PEM --key PEM --client-ca PEM\n"
	      "                       [--registrar URL --registrar-ca PEM] [--listen ADDR] [--port P]\n"
	      "                       [--threads T] [--ima-format binary|ascii] [--ima-append-every K]\n"
	      "                       [--ima-max-append M] [--hang K [--hang-ms MS]]\n"
	      "                       [--guests G [--guest-ids FILE]]\n"
	      "       fleet-sim selftest\n"
	      "Simulated host agents with software TPM keys serving real evidence (see the top of fleet-sim.c).\n"
	      "Reads the test data from $KQ_TESTDATA.\n",
	      out);
}

static uint64_t num_arg(const char *name, const char *s, uint64_t min, uint64_t max)
{
	uint64_t v;

	if (kq_parse_uint(s, max, &v) < 0 || v < min) {
		fprintf(stderr, "fleet-sim: --%s: a number from %llu to %llu\n", name, (unsigned long long)min,
			(unsigned long long)max);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "hosts", required_argument, NULL, 'n' },
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "client-ca", required_argument, NULL, 'C' },
		{ "registrar", required_argument, NULL, 'r' },
		{ "registrar-ca", required_argument, NULL, 'R' },
		{ "listen", required_argument, NULL, 'l' },
		{ "port", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 't' },
		{ "ima-format", required_argument, NULL, 'f' },
		{ "ima-append-every", required_argument, NULL, 'a' },
		{ "ima-max-append", required_argument, NULL, 'm' },
		{ "hang", required_argument, NULL, 'H' },
		{ "hang-ms", required_argument, NULL, 'T' },
		{ "guests", required_argument, NULL, 'G' },
		{ "guest-ids", required_argument, NULL, 'I' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct serve_opts so = { .listen = "127.0.0.1", .threads = 4 };
	struct fleet f = { .append_every = 5, .max_append = 4096, .hang_ms = 5000 };
	const char *cmd;
	bool binary = true;
	int c;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	cmd = argv[1];
	if (strcmp(cmd, "--selftest") == 0)
		cmd = "selftest";
	tpm_quiet_tss_log();
	log_setup(LOG_INFO, false);
	while ((c = getopt_long(argc - 1, argv + 1, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': so.dir = optarg; break;
		case 'n': so.n = num_arg("hosts", optarg, 1, MAX_HOSTS); break;
		case 'c': so.cert = optarg; break;
		case 'k': so.key = optarg; break;
		case 'C': so.client_ca = optarg; break;
		case 'r': so.registrar = optarg; break;
		case 'R': so.registrar_ca = optarg; break;
		case 'l': so.listen = optarg; break;
		case 'p': so.port = (uint16_t)num_arg("port", optarg, 0, 65535); break;
		case 't': so.threads = (unsigned)num_arg("threads", optarg, 1, MAX_THREADS); break;
		case 'a': f.append_every = (unsigned)num_arg("ima-append-every", optarg, 0, 1u << 20); break;
		case 'm': f.max_append = num_arg("ima-max-append", optarg, 0, 1u << 20); break;
		case 'H': so.hang = num_arg("hang", optarg, 0, MAX_HOSTS); break;
		case 'G': so.guests = num_arg("guests", optarg, 0, MAX_GUESTS); break;
		case 'I': so.guest_ids = optarg; break;
		case 'T': f.hang_ms = (unsigned)num_arg("hang-ms", optarg, 1, 3600 * 1000); break;
		case 'f':
			if (strcmp(optarg, "binary") != 0 && strcmp(optarg, "ascii") != 0) {
				fprintf(stderr, "fleet-sim: --ima-format: binary or ascii\n");
				return 2;
			}
			binary = strcmp(optarg, "binary") == 0;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind + 1 != argc) {
		usage(stderr);
		return 2;
	}

	if (strcmp(cmd, "selftest") == 0)
		return cmd_selftest();
	if (strcmp(cmd, "keygen") == 0) {
		if (!so.dir || !so.n) {
			fprintf(stderr, "fleet-sim keygen: --dir and --hosts are required\n");
			return 2;
		}
		return cmd_keygen(so.dir, so.n);
	}
	if (strcmp(cmd, "serve") == 0) {
		int r;

		if (!so.dir || !so.n || !so.cert || !so.key || !so.client_ca || !so.registrar != !so.registrar_ca) {
			fprintf(stderr, "fleet-sim serve: --dir, --hosts, --cert, --key and --client-ca are required,"
					" --registrar with --registrar-ca\n");
			return 2;
		}
		if (so.guests && (!so.registrar || so.n * (so.guests + 1) > 1000000)) {
			fprintf(stderr, "fleet-sim serve: --guests needs --registrar, and at most 1,000,000 agents\n");
			return 2;
		}
		if (so.hang > so.n) {
			fprintf(stderr, "fleet-sim serve: --hang %zu is more than the %zu hosts\n", so.hang, so.n);
			return 2;
		}
		load_evidence(binary, &f.ev);
		f.t0 = bench_now();
		r = cmd_serve(&f, &so);
		free_evidence(&f.ev);
		return r;
	}
	usage(stderr);
	return 2;
}
