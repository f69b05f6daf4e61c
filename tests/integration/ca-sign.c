/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Run by registrar-host.sh against the enrolled host's swtpm ($KQ_TCTI): the
 * vTPM-CA key in the TPM signs an X.509 certificate, which verifies with the
 * CA public key (and fails once a byte of it changes). Prints the certificate
 * as PEM on stdout and the CA key's TPM name on stderr.
 */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "host-agent.h"
#include "tpm/tpm.h"
#include "util/util.h"

int main(void)
{
	const char *tcti = getenv("KQ_TCTI");
	struct tpmdev *tpm = NULL;
	TPM2B_PUBLIC pub;
	TPM2B_NAME name;
	EVP_PKEY *ca = NULL, *subject = EVP_EC_gen("prime256v1");
	X509 *cert = X509_new();
	X509_NAME *n = X509_NAME_new();

	if (!tcti || tpmdev_open(tcti, &tpm) < 0 ||
	    tpmdev_ca_key(tpm, TPMDEV_RSA2048, TPMDEV_CA_KEY_HANDLE, &pub, &name) < 0 ||
	    tpm_public_to_pkey(&pub.publicArea, &ca) < 0) {
		fprintf(stderr, "ca-sign: %s\n", kq_errmsg());
		return 1;
	}
	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 4242);
	X509_gmtime_adj(X509_getm_notBefore(cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"vTPM EK test", -1, -1, 0);
	X509_set_subject_name(cert, n);
	X509_NAME_free(n);
	n = X509_NAME_new();
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"host vTPM CA", -1, -1, 0);
	X509_set_issuer_name(cert, n);
	X509_NAME_free(n);
	X509_set_pubkey(cert, subject);
	if (host_ca_sign(tpm, TPMDEV_CA_KEY_HANDLE, ca, cert) < 0) {
		fprintf(stderr, "ca-sign: %s\n", kq_errmsg());
		return 1;
	}
	if (X509_verify(cert, ca) != 1) {
		fprintf(stderr, "ca-sign: the TPM-signed certificate does not verify\n");
		return 1;
	}
	{
		/* X509_set_serialNumber drops the cached encoding, so the change is seen */
		ASN1_INTEGER *sn = ASN1_INTEGER_new();
		ASN1_INTEGER_set(sn, 4243);
		X509_set_serialNumber(cert, sn);
		if (X509_verify(cert, ca) == 1) {
			fprintf(stderr, "ca-sign: a changed certificate still verifies\n");
			return 1;
		}
		ASN1_INTEGER_set(sn, 4242);
		X509_set_serialNumber(cert, sn);
		ASN1_INTEGER_free(sn);
	}
	if (host_ca_sign(tpm, TPMDEV_CA_KEY_HANDLE, ca, cert) < 0 || X509_verify(cert, ca) != 1) {
		fprintf(stderr, "ca-sign: re-signing failed\n");
		return 1;
	}
	PEM_write_X509(stdout, cert);
	{
		_cleanup_free_ char *hex = kq_hex_dup(name.name, name.size);
		fprintf(stderr, "%s\n", hex ? hex : "");
	}
	X509_free(cert);
	EVP_PKEY_free(ca);
	EVP_PKEY_free(subject);
	tpmdev_close(tpm);
	return 0;
}
