/* SPDX-License-Identifier: Apache-2.0 */
/* Webhook events: the event JSON in a DSSE envelope signed with the verifier's key. */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "dsse/dsse.h"
#include "json/json.h"
#include "log/log.h"
#include "verifier.h"

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
	size_t len;
	BIO *bio;
	EVP_PKEY *k;
	int r;

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
	if (dsse_keyid(k, keyid) < 0) {
		EVP_PKEY_free(k);
		return kq_err(-EIO, "%s: cannot encode the public key", path);
	}
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

int notifier_envelope_type(struct notifier *n, const char *type, struct json_object *event, char **ret)
{
	const char *payload = json_object_to_json_string_ext(event, JSON_C_TO_STRING_PLAIN);

	return dsse_sign(n ? n->key : NULL, n ? n->keyid : NULL, type, (const uint8_t *)payload, strlen(payload), ret);
}

int notifier_envelope(struct notifier *n, struct json_object *event, char **ret)
{
	return notifier_envelope_type(n, EVENT_PAYLOAD_TYPE, event, ret);
}
