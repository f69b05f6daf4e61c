/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/evidence without a TPM: reading evidence requests (fields, PCR
 * selections, agent id, extra fields of the deep quote), and the answer's
 * logs -- the UEFI log byte for byte, IMA entries from an offset, the boot id.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "evidence/evidence.h"
#include "evidence/services.h"
#include "testlib.h"

static const char agent[] = "3f1f6c1e-8a4b-4c55-9d2e-7b6a5f4e3d2c";

static struct evidence_config cfg = { .agent_id = agent };

/* Reads body as a request; returns the status it was refused with (0 if accepted). */
static unsigned read_req(const char *body, const struct json_field *extra, void *extra_target,
			 struct evidence_request *er, char *code, size_t code_len)
{
	struct http_request req = { .method = "POST", .path = "/v1/quote", .body = (const uint8_t *)body,
				    .body_len = strlen(body) };
	struct http_response resp = { 0 };
	unsigned status;
	int r;

	r = evidence_request_read(&cfg, &req, 16 * 1024, 4, extra, extra_target, er, &resp);
	if (r == 0) {
		assert_null(resp.body);
		return 0;
	}
	assert_non_null(resp.body);
	status = resp.status;
	if (code) {
		struct json_object *e, *c;

		assert_true(json_object_object_get_ex(resp.body, "error", &e));
		assert_true(json_object_object_get_ex(e, "code", &c));
		snprintf(code, code_len, "%s", json_object_get_string(c));
	}
	json_object_put(resp.body);
	return status;
}

static void test_request(void **state)
{
	struct evidence_request er;
	char code[32];

	assert_int_equal(read_req("{\"nonce\":\"00ff\",\"pcrs\":{\"sha256\":[0,1,10,23],\"sha1\":[7]},"
				  "\"ima_offset\":12,\"agent_id\":\"3F1F6C1E-8A4B-4C55-9D2E-7B6A5F4E3D2C\"}",
				  NULL, NULL, &er, code, sizeof(code)), 0);
	assert_int_equal(er.nonce_len, 2);
	assert_int_equal(er.nonce[1], 0xff);
	assert_int_equal(er.ima_offset, 12);
	assert_int_equal(er.sel.count, 2);
	assert_int_equal(er.sel.pcrSelections[0].hash, TPM2_ALG_SHA256);
	assert_int_equal(er.sel.pcrSelections[0].pcrSelect[0], 0x03);
	assert_int_equal(er.sel.pcrSelections[0].pcrSelect[1], 0x04);
	assert_int_equal(er.sel.pcrSelections[0].pcrSelect[2], 0x80);
	assert_int_equal(er.sel.pcrSelections[1].hash, TPM2_ALG_SHA1);
	/* ima_offset defaults to 0 */
	assert_int_equal(read_req("{\"nonce\":\"01\",\"pcrs\":{\"sha256\":[10]}}", NULL, NULL, &er, NULL, 0), 0);
	assert_int_equal(er.ima_offset, 0);

	static const char *const bad[] = {
		"{", "[]", "{\"nonce\":\"zz\",\"pcrs\":{\"sha256\":[0]}}", "{\"nonce\":\"00\",\"pcrs\":{\"sha999\":[0]}}",
		"{\"nonce\":\"00\",\"pcrs\":{\"sha256\":[24]}}", "{\"nonce\":\"00\",\"pcrs\":{}}",
		"{\"nonce\":\"\",\"pcrs\":{\"sha256\":[0]}}", "{\"nonce\":\"00\",\"pcrs\":{\"sha256\":[0]},\"ima_offset\":-1}",
		"{\"nonce\":\"00\",\"pcrs\":{\"sha256\":[]}}", "{\"nonce\":\"00\",\"pcrs\":{\"sha256\":[0]},\"x\":1}",
		"{\"pcrs\":{\"sha256\":[0]}}", "{\"nonce\":\"00\",\"pcrs\":{\"sha256\":[\"0\"]}}",
		"{\"nonce\":\"00\",\"pcrs\":[0]}",
		"{\"nonce\":\"00\",\"pcrs\":{\"sha256\":[0]},\"leaves\":[]}", /* only with the deep quote's table */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(read_req(bad[i], NULL, NULL, &er, NULL, 0), 400);
	{
		char big[200] = "{\"nonce\":\"";
		size_t n = strlen(big);

		for (int i = 0; i < 65; i++, n += 2)
			memcpy(big + n, "ab", 2);
		snprintf(big + n, sizeof(big) - n, "\",\"pcrs\":{\"sha256\":[0]}}");
		assert_int_equal(read_req(big, NULL, NULL, &er, code, sizeof(code)), 400);
		assert_string_equal(code, "bad_request");
	}
	assert_int_equal(read_req("{", NULL, NULL, &er, code, sizeof(code)), 400);
	assert_string_equal(code, "bad_json");
	/* another agent's id */
	assert_int_equal(read_req("{\"nonce\":\"00\",\"pcrs\":{\"sha256\":[0]},\"agent_id\":\"someone-else\"}", NULL, NULL,
				  &er, code, sizeof(code)), 409);
	assert_string_equal(code, "wrong_agent");
}

struct extra {
	struct json_object *leaves;
};

static void test_request_extra(void **state)
{
	static const struct json_field fields[] = {
		{ "leaves", JSON_ARRAY, true, 3, offsetof(struct extra, leaves) },
		{ 0 },
	};
	struct evidence_request er;
	struct extra x = { 0 };

	assert_int_equal(read_req("{\"nonce\":\"00\",\"pcrs\":{\"sha256\":[0]},\"leaves\":[1,2]}", fields, &x, &er, NULL,
				  0), 0);
	assert_int_equal(json_object_array_length(x.leaves), 2);
	json_dispatch_free(fields, &x);
	assert_null(x.leaves);
	/* a required extra field, too many elements, an unknown field; failures leave nothing to free */
	assert_int_equal(read_req("{\"nonce\":\"00\",\"pcrs\":{\"sha256\":[0]}}", fields, &x, &er, NULL, 0), 400);
	assert_int_equal(read_req("{\"nonce\":\"00\",\"pcrs\":{\"sha256\":[0]},\"leaves\":[1,2,3,4]}", fields, &x, &er,
				  NULL, 0), 400);
	assert_int_equal(read_req("{\"nonce\":\"00\",\"pcrs\":{\"sha256\":[0]},\"leaves\":[],\"y\":0}", fields, &x, &er,
				  NULL, 0), 400);
	assert_int_equal(read_req("{\"nonce\":\"00\",\"pcrs\":{\"sha256\":[99]},\"leaves\":[]}", fields, &x, &er, NULL,
				  0), 400);
	assert_int_equal(read_req("{\"nonce\":\"00\",\"pcrs\":{\"sha256\":[0]},\"leaves\":[],\"agent_id\":\"x\"}", fields,
				  &x, &er, NULL, 0), 409);
	assert_null(x.leaves);
}

static void test_handler_refusals(void **state)
{
	/* refused before the TPM (cfg.tpm is NULL) is touched */
	_cleanup_free_ char *big = malloc(EVIDENCE_MAX_BODY + 2);
	struct http_request req = { .method = "POST", .path = "/v1/quote" };
	struct http_response resp = { 0 };

	assert_non_null(big);
	memset(big, ' ', EVIDENCE_MAX_BODY + 1);
	big[EVIDENCE_MAX_BODY + 1] = 0;
	req.body = (const uint8_t *)big;
	req.body_len = EVIDENCE_MAX_BODY + 1;
	evidence_handle_quote(&req, &resp, &cfg);
	assert_int_equal(resp.status, 413);
	json_object_put(resp.body);
	resp = (struct http_response){ 0 };
	req.body = (const uint8_t *)"{\"nonce\":\"00\"}";
	req.body_len = strlen((const char *)req.body);
	evidence_handle_quote(&req, &resp, &cfg);
	assert_int_equal(resp.status, 400);
	json_object_put(resp.body);
}

static const uint8_t *b64_of(struct json_object *o, const char *key, size_t *len)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	return test_b64(json_object_get_string(v), len);
}

static int64_t int_of(struct json_object *o, const char *key)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	return json_object_get_int64(v);
}

static void test_answer(void **state)
{
	_cleanup_free_ char *uefi = testdata_path("eventlog/hpe-perf-uefi.bin");
	_cleanup_free_ char *ima = testdata_path("ima/ibm-acs-ima-sig.bin");
	_cleanup_free_ char *dir = strdup("/tmp/kq-evidence-XXXXXX"), *boot = NULL;
	uint8_t attest[] = { 0xff, 0x54, 0x43, 0x47 }, pcrs[] = { 1, 2, 3 };
	struct evidence_quote q = { .attest = attest, .attest_len = 4, .sig = { 0, 0x14 }, .sig_len = 2,
				    .pcrs = pcrs, .pcrs_len = 3 };
	struct evidence_config c = { .agent_id = agent, .uefi_log = uefi, .ima_log = ima };
	struct json_object *out = NULL, *v, *o;
	size_t len, ref_len;
	_cleanup_free_ uint8_t *ref = NULL;

	assert_non_null(mkdtemp(dir));
	assert_true(asprintf(&boot, "%s/boot_id", dir) > 0);
	assert_int_equal(kq_write_file(boot, "3f1f6c1e-8a4b\n \n", 16), 0);
	c.boot_id = boot;

	assert_int_equal(evidence_answer(&c, &q, 0, &out), 0);
	assert_true(json_object_object_get_ex(out, "quote", &o));
	{
		_cleanup_free_ const uint8_t *m = b64_of(o, "message", &len);

		assert_int_equal(len, 4);
		assert_memory_equal(m, attest, 4);
	}
	{
		_cleanup_free_ const uint8_t *s = b64_of(o, "signature", &len);

		assert_non_null(s);
		assert_int_equal(len, 2);
	}
	assert_true(json_object_object_get_ex(out, "boot_id", &v));
	assert_string_equal(json_object_get_string(v), "3f1f6c1e-8a4b");
	{
		_cleanup_free_ const uint8_t *u = b64_of(out, "uefi_log", &len);

		assert_int_equal(kq_read_file(uefi, 64u << 20, &ref, &ref_len), 0);
		assert_int_equal(len, ref_len);
		assert_memory_equal(u, ref, len);
		free(TAKE_PTR(ref));
	}
	assert_true(json_object_object_get_ex(out, "ima", &o));
	assert_int_equal(int_of(o, "offset"), 0);
	assert_int_equal(int_of(o, "entries"), 1083);
	assert_true(json_object_object_get_ex(o, "format", &v));
	assert_string_equal(json_object_get_string(v), "binary");
	{
		_cleanup_free_ const uint8_t *d = b64_of(o, "data", &len);

		assert_int_equal(kq_read_file(ima, 64u << 20, &ref, &ref_len), 0);
		assert_int_equal(len, ref_len);
		assert_memory_equal(d, ref, len);
	}
	json_object_put(out);

	/* from an offset on: the list's tail, byte for byte */
	assert_int_equal(evidence_answer(&c, &q, 1000, &out), 0);
	assert_true(json_object_object_get_ex(out, "ima", &o));
	assert_int_equal(int_of(o, "entries"), 83);
	{
		_cleanup_free_ const uint8_t *d = b64_of(o, "data", &len);

		assert_true(len < ref_len);
		assert_memory_equal(d, ref + ref_len - len, len);
	}
	json_object_put(out);
	/* the end of the list: no entries; past it: -ERANGE (409 ima_offset_ahead) */
	assert_int_equal(evidence_answer(&c, &q, 1083, &out), 0);
	assert_true(json_object_object_get_ex(out, "ima", &o));
	assert_int_equal(int_of(o, "entries"), 0);
	json_object_put(out);
	assert_int_equal(evidence_answer(&c, &q, 1084, &out), -ERANGE);
	{
		struct http_response resp = { 0 };

		evidence_answer_error(&resp, -ERANGE);
		assert_int_equal(resp.status, 409);
		json_object_put(resp.body);
	}

	/* missing logs are null, not errors */
	c.uefi_log = "/nonexistent/uefi";
	c.ima_log = NULL;
	c.boot_id = "/nonexistent/boot_id";
	assert_int_equal(evidence_answer(&c, &q, 5, &out), 0);
	assert_true(json_object_object_get_ex(out, "uefi_log", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(out, "ima", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(out, "boot_id", &v));
	assert_null(v);
	json_object_put(out);
	unlink(boot);
	rmdir(dir);
}

/* services_setup makes the agent's state directory, and refuses one it cannot use */
static void test_services_state_dir(void **state)
{
	char dir[] = "/tmp/kq-services.XXXXXX", sub[64], file[80];
	struct services_config c = { 0 };
	struct services s;
	struct evidence_config ev = { 0 };
	struct stat st;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/state", dir);
	assert_int_equal(services_setup(&c, "id", 0x81010030, sub, &s, &ev), 0);
	assert_int_equal(stat(sub, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_ptr_equal(ev.payload, &s.payload);
	services_clear(&s);
	/* again: it exists */
	assert_int_equal(services_setup(&c, "id", 0x81010030, sub, &s, &ev), 0);
	services_clear(&s);
	/* a file, a directory under a missing parent */
	snprintf(file, sizeof(file), "%s/file", dir);
	assert_non_null(f = fopen(file, "w"));
	fclose(f);
	assert_true(services_setup(&c, "id", 0x81010030, file, &s, &ev) < 0);
	snprintf(file, sizeof(file), "%s/missing/state", dir);
	assert_true(services_setup(&c, "id", 0x81010030, file, &s, &ev) < 0);
	snprintf(file, sizeof(file), "%s/file", dir);
	unlink(file);
	rmdir(sub);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_request_extra),
		cmocka_unit_test(test_handler_refusals),
		cmocka_unit_test(test_answer),
		cmocka_unit_test(test_services_state_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
