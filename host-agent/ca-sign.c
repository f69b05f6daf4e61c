/* SPDX-License-Identifier: Apache-2.0 */
/* X.509 certificates signed by the host's vTPM-CA key inside the hardware TPM. */
#include "host-agent.h"

#include "util/util.h"
#include "x509/x509.h"

struct sign_ctx {
	struct tpmdev *tpm;
	TPM2_HANDLE key;
};

static int sign_digest(void *userdata, uint16_t hash_alg, const uint8_t *digest, size_t dlen,
		       uint8_t **ret_sig, size_t *ret_len)
{
	struct sign_ctx *c = userdata;

	return tpmdev_sign_digest(c->tpm, c->key, hash_alg, digest, dlen, ret_sig, ret_len);
}

int host_ca_sign(struct tpmdev *tpm, TPM2_HANDLE key, EVP_PKEY *ca_pub, X509 *cert)
{
	struct sign_ctx c = { .tpm = tpm, .key = key };

	return x509_sign_with(cert, ca_pub, sign_digest, &c);
}
