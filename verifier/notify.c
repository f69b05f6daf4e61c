/* SPDX-License-Identifier: Apache-2.0 */
/* Webhook events: the event JSON in a DSSE envelope signed with the verifier's key. */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "json/json.h"
#include "log/log.h"
#include "verifier.h"

#define EVENT_PAYLOAD_TYPE "application/vnd.kumquat.event+json"
#define MAX_WEBHOOKS 16

struct notifier {
	char *hooks_buf;
	const char *hooks[MAX_WEBHOOKS];
	size_t n_hooks;
	EVP_PKEY *key;
	char keyid[65];
};

static int load_key(const char *path, EVP_PKEY **ret, char keyid[65])
{
	_cleanup_free_ uint8_t *pem = NULL;
	_cleanup_free_ uint8_t *der = NULL;
	uint8_t md[32];
	size_t len;
	BIO *bio;
	EVP_PKEY *k;
	int n, r;

	r = kq_read_file(path, 64 * 1024, &pem, &len);
	if (r < 0)
		return r;
	bio = BIO_new_mem_buf(pem, (int)len);
	k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	OPENSSL_cleanse(pem, len);
	if (!k)
		return kq_err(-EINVAL, "%s: not a PEM private key", path);
	if (!(EVP_PKEY_is_a(k, "EC") && EVP_PKEY_get_bits(k) == 256) &&
	    !(EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) >= 2048)) {
		EVP_PKEY_free(k);
		return kq_err(-EINVAL, "%s: the signing key must be ECDSA P-256 or RSA >= 2048 bits", path);
	}
	n = i2d_PUBKEY(k, &der);
	if (n <= 0 || !EVP_Digest(der, (size_t)n, md, NULL, EVP_sha256(), NULL)) {
		EVP_PKEY_free(k);
		return kq_err(-EIO, "%s: cannot encode the public key", path);
	}
	OPENSSL_free(TAKE_PTR(der));
	kq_hex_encode(md, sizeof(md), keyid);
	*ret = k;
	return 0;
}

int notifier_new(const struct verifier_config *cfg, struct notifier **ret)
{
	struct notifier *n = calloc(1, sizeof(*n));
	char *tok;
	int r;

	if (!n)
		return kq_err(-ENOMEM, "out of memory");
	if (cfg->webhooks && cfg->webhooks[0]) {
		n->hooks_buf = strdup(cfg->webhooks);
		if (!n->hooks_buf) {
			notifier_free(n);
			return kq_err(-ENOMEM, "out of memory");
		}
		for (char *p = n->hooks_buf; (tok = strsep(&p, ", ")) != NULL;) {
			if (!tok[0])
				continue;
			if (n->n_hooks == MAX_WEBHOOKS) {
				notifier_free(n);
				return kq_err(-EINVAL, "[notify] webhooks: at most %d URLs", MAX_WEBHOOKS);
			}
			if (strncmp(tok, "https://", 8) != 0) {
				r = kq_err(-EINVAL, "[notify] webhooks: '%s' is not an https:// URL", tok);
				notifier_free(n);
				return r;
			}
			n->hooks[n->n_hooks++] = tok;
		}
	}
	if (cfg->signing_key) {
		r = load_key(cfg->signing_key, &n->key, n->keyid);
		if (r < 0) {
			notifier_free(n);
			return kq_err_ctx(r, "[notify] signing_key: ");
		}
	} else if (n->n_hooks) {
		notifier_free(n);
		return kq_err(-EINVAL, "[notify] webhooks need a signing_key");
	}
	*ret = n;
	return 0;
}

void notifier_free(struct notifier *n)
{
	if (!n)
		return;
	EVP_PKEY_free(n->key);
	free(n->hooks_buf);
	free(n);
}

const char *const *notifier_webhooks(const struct notifier *n, size_t *ret_n)
{
	*ret_n = n ? n->n_hooks : 0;
	return n ? n->hooks : NULL;
}

/* DSSE v1 pre-authentication encoding of the payload. */
static char *pae(const char *type, const char *payload, size_t len, size_t *ret_len)
{
	char *out = NULL;
	int n = asprintf(&out, "DSSEv1 %zu %s %zu ", strlen(type), type, len);
	char *full;

	if (n < 0)
		return NULL;
	full = realloc(out, (size_t)n + len);
	if (!full) {
		free(out);
		return NULL;
	}
	memcpy(full + n, payload, len);
	*ret_len = (size_t)n + len;
	return full;
}

int notifier_envelope(struct notifier *n, struct json_object *event, char **ret)
{
	const char *payload = json_object_to_json_string_ext(event, JSON_C_TO_STRING_PLAIN);
	size_t plen = strlen(payload), msg_len = 0, sig_len = 0;
	_cleanup_free_ char *msg = NULL;
	_cleanup_free_ uint8_t *sig = NULL;
	struct json_object *env, *sigs, *s;
	EVP_MD_CTX *ctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	int r = 0;

	env = json_object_new_object();
	json_object_object_add(env, "payloadType", json_object_new_string(EVENT_PAYLOAD_TYPE));
	json_object_object_add(env, "payload", json_new_base64((const uint8_t *)payload, plen));
	sigs = json_object_new_array();
	json_object_object_add(env, "signatures", sigs);
	if (n && n->key) {
		msg = pae(EVENT_PAYLOAD_TYPE, payload, plen, &msg_len);
		ctx = EVP_MD_CTX_new();
		if (!msg || !ctx || EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, n->key) != 1 ||
		    (EVP_PKEY_is_a(n->key, "RSA") && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) ||
		    EVP_DigestSign(ctx, NULL, &sig_len, (const uint8_t *)msg, msg_len) != 1 ||
		    !(sig = malloc(sig_len)) ||
		    EVP_DigestSign(ctx, sig, &sig_len, (const uint8_t *)msg, msg_len) != 1) {
			r = kq_err(-EIO, "cannot sign the event");
		} else {
			s = json_object_new_object();
			json_object_object_add(s, "keyid", json_object_new_string(n->keyid));
			json_object_object_add(s, "sig", json_new_base64(sig, sig_len));
			json_object_array_add(sigs, s);
		}
		EVP_MD_CTX_free(ctx);
	}
	if (r >= 0) {
		*ret = strdup(json_object_to_json_string_ext(env, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		if (!*ret)
			r = kq_err(-ENOMEM, "out of memory");
	}
	json_object_put(env);
	return r;
}
