/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The verifier's evaluation of a host agent's evidence (verifier/attest) on
 * hostile documents. So that mutations reach past the signature into the
 * PCR, event-log and IMA checks, the harness re-signs the quote: when
 * quote.message unmarshals, it is marshalled again and signed with the
 * harness's own AK, and the nonce and PCR selection asked for are taken
 * from it. Whatever the verdict, attest_host must return 0 (or -ENOMEM),
 * and the state must change only on a pass.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "attest.h"
#include "fuzz.h"
#include "json/json.h"
#include "testtpm.h"

static EVP_PKEY *ak;
static struct mbpolicy *mb;

static void setup(void)
{
	static const char sb[] = "{\"secure_boot\": true}";

	if (ak)
		return;
	ak = EVP_RSA_gen(2048);
	if (!ak || mbpolicy_parse((const uint8_t *)sb, sizeof(sb) - 1, &mb) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *ev = NULL, *q, *m;
	struct attest_state st = {}, before;
	struct attest_verdict v;
	struct attest_policy pol = {};
	TPML_PCR_SELECTION asked = { .count = 1 };
	uint8_t nonce[64] = { 1 };
	size_t nonce_len = 20;
	uint8_t *msg = NULL;
	size_t msg_len;
	int r;

	setup();
	asked.pcrSelections[0].hash = TPM2_ALG_SHA256;
	asked.pcrSelections[0].sizeofSelect = 3;
	asked.pcrSelections[0].pcrSelect[0] = 0xff;
	if (json_parse_body(data, size, size + 1, 16, &ev) < 0)
		return 0;
	if (json_object_object_get_ex(ev, "quote", &q) && json_object_object_get_ex(q, "message", &m) &&
	    json_object_is_type(m, json_type_string) &&
	    kq_base64_decode(json_object_get_string(m), TPM_MAX_BLOB, &msg, &msg_len) == 0) {
		TPMS_ATTEST a;
		static uint8_t out[TPM_MAX_BLOB], sig[1024];
		size_t out_len, sig_len;

		if (tpm_attest_unmarshal(msg, msg_len, &a) == 0 && a.type == TPM2_ST_ATTEST_QUOTE &&
		    a.extraData.size > 0 && a.extraData.size <= sizeof(nonce)) {
			out_len = test_sign_attest(ak, &a, out, sizeof(out), sig, sizeof(sig), &sig_len);
			json_object_object_add(q, "message", json_new_base64(out, out_len));
			json_object_object_add(q, "signature", json_new_base64(sig, sig_len));
			memcpy(nonce, a.extraData.buffer, a.extraData.size);
			nonce_len = a.extraData.size;
			asked = a.attested.quote.pcrSelect;
		}
		free(msg);
	}
	/* odd inputs evaluate against a state from an earlier round of the same boot */
	if (size & 1) {
		st.have_quote = true;
		st.clock = 1;
		snprintf(st.boot_id, sizeof(st.boot_id), "3f1f6c1e-0000-4000-8000-000000000001");
		ima_replay_init(&st.ima, 0, 0);
	}
	pol.mb = (size & 2) ? mb : NULL;
	before = st;
	r = attest_host(&pol, ak, nonce, nonce_len, &asked, ev, &st, &v);
	if (r < 0 && r != -ENOMEM)
		abort();
	if (r == 0 && !v.pass && memcmp(&st, &before, sizeof(st)) != 0)
		abort();
	if (r == 0 && v.n_failures > ATTEST_MAX_FAILURES)
		abort();
	json_object_put(ev);
	return 0;
}
