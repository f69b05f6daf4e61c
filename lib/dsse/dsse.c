/* SPDX-License-Identifier: Apache-2.0 */
#include "dsse/dsse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "json/json.h"
#include "util/util.h"

#define MAX_SIGNATURES 8

uint8_t *dsse_pae(const char *type, const uint8_t *payload, size_t len, size_t *ret_len)
{
	char head[128 + 64];
	size_t tl = strlen(type);
	int n;
	uint8_t *out;

	if (tl > 128)
		return NULL;
	n = snprintf(head, sizeof(head), "DSSEv1 %zu %s %zu ", tl, type, len);
	if (n < 0 || (size_t)n >= sizeof(head) || !(out = malloc((size_t)n + len + 1)))
		return NULL;
	memcpy(out, head, (size_t)n);
	memcpy(out + n, payload, len);
	*ret_len = (size_t)n + len;
	return out;
}

int dsse_keyid(EVP_PKEY *key, char ret[65])
{
	uint8_t *der = NULL, md[32];
	int n = i2d_PUBKEY(key, &der);

	if (n <= 0 || !EVP_Digest(der, (size_t)n, md, NULL, EVP_sha256(), NULL)) {
		OPENSSL_free(der);
		return kq_err(-EIO, "cannot encode the public key");
	}
	OPENSSL_free(der);
	kq_hex_encode(md, sizeof(md), ret);
	return 0;
}

static EVP_MD_CTX *md_init(EVP_PKEY *key, bool sign)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;

	if (!ctx || (sign ? EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, key)
			  : EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL, key)) != 1 ||
	    (EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)) {
		EVP_MD_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int dsse_sign(EVP_PKEY *key, const char *keyid, const char *type, const uint8_t *payload, size_t len, char **ret)
{
	_cleanup_free_ uint8_t *msg = NULL, *sig = NULL;
	struct json_object *env, *sigs, *s;
	size_t msg_len = 0, sig_len = 0;
	EVP_MD_CTX *ctx = NULL;
	int r = 0;

	env = json_object_new_object();
	json_object_object_add(env, "payloadType", json_object_new_string(type));
	json_object_object_add(env, "payload", json_new_base64(payload, len));
	sigs = json_object_new_array();
	json_object_object_add(env, "signatures", sigs);
	if (key) {
		msg = dsse_pae(type, payload, len, &msg_len);
		ctx = msg ? md_init(key, true) : NULL;
		if (!ctx || EVP_DigestSign(ctx, NULL, &sig_len, msg, msg_len) != 1 || !(sig = malloc(sig_len)) ||
		    EVP_DigestSign(ctx, sig, &sig_len, msg, msg_len) != 1) {
			r = kq_err(-EIO, "cannot sign the envelope");
		} else {
			s = json_object_new_object();
			json_object_object_add(s, "keyid", json_object_new_string(keyid ? keyid : ""));
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

int dsse_verify(EVP_PKEY *pub, const char *type, const uint8_t *env, size_t len, uint8_t **ret, size_t *ret_len)
{
	struct json_object *o = NULL, *t, *p, *sigs;
	_cleanup_free_ uint8_t *msg = NULL;
	uint8_t *payload = NULL;
	size_t plen = 0, msg_len = 0, n;
	bool ok = false;
	int r;

	r = json_parse_body(env, len, DSSE_MAX_ENVELOPE, 4, &o);
	if (r < 0)
		return kq_err(-EBADMSG, "not a DSSE envelope: %s", kq_errmsg());
	if (!json_object_object_get_ex(o, "payloadType", &t) || !json_object_is_type(t, json_type_string) ||
	    strcmp(json_object_get_string(t), type) != 0 || !json_object_object_get_ex(o, "payload", &p) ||
	    !json_object_is_type(p, json_type_string) ||
	    kq_base64_decode(json_object_get_string(p), DSSE_MAX_ENVELOPE, &payload, &plen) < 0 ||
	    !json_object_object_get_ex(o, "signatures", &sigs) || !json_object_is_type(sigs, json_type_array) ||
	    (n = json_object_array_length(sigs)) == 0 || n > MAX_SIGNATURES) {
		json_object_put(o);
		free(payload);
		return kq_err(-EBADMSG, "not a DSSE envelope of type %s with 1 to %d signatures", type, MAX_SIGNATURES);
	}
	msg = dsse_pae(type, payload, plen, &msg_len);
	for (size_t i = 0; msg && i < n && !ok; i++) {
		struct json_object *s = json_object_array_get_idx(sigs, i), *sv;
		_cleanup_free_ uint8_t *sig = NULL;
		size_t slen;
		EVP_MD_CTX *ctx;

		if (!json_object_object_get_ex(s, "sig", &sv) || !json_object_is_type(sv, json_type_string) ||
		    kq_base64_decode(json_object_get_string(sv), 1024, &sig, &slen) < 0)
			continue;
		ctx = md_init(pub, false);
		ok = ctx && EVP_DigestVerify(ctx, sig, slen, msg, msg_len) == 1;
		EVP_MD_CTX_free(ctx);
	}
	json_object_put(o);
	if (!ok) {
		free(payload);
		return kq_err(-EKEYREJECTED, "no signature of the envelope verifies with the key");
	}
	*ret = malloc(plen + 1);
	if (!*ret) {
		free(payload);
		return kq_err(-ENOMEM, "out of memory");
	}
	memcpy(*ret, payload, plen);
	(*ret)[plen] = '\0';
	free(payload);
	*ret_len = plen;
	return 0;
}
