/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kumquat-vtpm-mgr cert-tool: swtpm_setup's create_certs_tool. swtpm_setup
 * (run by libvirt on a VM's first start) calls it as
 *
 *   cert-tool --type ek|platform --ek EK --dir DIR --vmid NAME:UUID
 *             --tpm-spec-family 2.0 --tpm-spec-level 0 --tpm-spec-revision 164
 *             --tpm-manufacturer id:00001014 --tpm-model swtpm --tpm-version id:20191023
 *             --tpm2 --configfile FILE --optsfile FILE [--logfile FILE]
 *
 * and expects DIR/ek.cert (or platform.cert), DER. The certificate comes from
 * the host agent over its local socket, signed by the vTPM-CA key in the
 * host's TPM (docs/vtpm.md). Nothing is written unless the host agent issued
 * it; any failure exits non-zero with one line on stderr, and swtpm_setup
 * then fails the VM's vTPM creation rather than falling back to another CA.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "json/json.h"
#include "local/local.h"
#include "util/util.h"
#include "vtpm-mgr.h"

#define DEFAULT_SOCKET "/run/kumquat/host-agent.sock"
#define MAX_CERT (16u * 1024)

static int fail(const char *fmt, ...) _printf_(1, 2);

static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("kumquat cert-tool: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* Our config file (create_certs_tool_config): "socket = PATH" lines, '#' comments. */
static int read_config(const char *path, char *socket, size_t n)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;
	char *line, *save;

	if (kq_read_file(path, 64 * 1024, &buf, &len) < 0)
		return -1;
	for (line = (char *)buf; line && *line; line = save) {
		char *nl = strchr(line, '\n'), *eq, *k, *v, *end;

		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		k = line + strspn(line, " \t");
		if (*k == '#' || *k == ';' || !*k || !(eq = strchr(k, '=')))
			continue;
		*eq = '\0';
		v = eq + 1 + strspn(eq + 1, " \t");
		for (end = eq; end > k && (end[-1] == ' ' || end[-1] == '\t'); end--)
			*--end = '\0';
		for (end = v + strlen(v); end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'); end--)
			end[-1] = '\0';
		if (strcmp(k, "socket") == 0)
			snprintf(socket, n, "%s", v);
	}
	return 0;
}

/* create_certs_tool_options: "--platform-manufacturer X" lines, as swtpm-localca.options has. */
static void read_opts(const char *path, struct json_object *req)
{
	static const char *const keys[][2] = {
		{ "--platform-manufacturer", "platform_manufacturer" },
		{ "--platform-model", "platform_model" },
		{ "--platform-version", "platform_version" },
	};
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;
	char *line, *save;

	if (!path || kq_read_file(path, 64 * 1024, &buf, &len) < 0)
		return;
	for (line = (char *)buf; line && *line; line = save) {
		char *nl = strchr(line, '\n');

		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		line += strspn(line, " \t");
		for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
			size_t kl = strlen(keys[i][0]);
			char *v, *end;

			if (strncmp(line, keys[i][0], kl) != 0 || (line[kl] != ' ' && line[kl] != '\t'))
				continue;
			v = line + kl + strspn(line + kl, " \t");
			for (end = v + strlen(v); end > v && (end[-1] == ' ' || end[-1] == '\r'); end--)
				end[-1] = '\0';
			if (*v && strlen(v) <= 64)
				json_object_object_add(req, keys[i][1], json_object_new_string(v));
		}
	}
}

int vtpm_cert_tool(int argc, char **argv)
{
	enum {
		O_TYPE = 0x100, O_EK, O_DIR, O_VMID, O_FAMILY, O_LEVEL, O_REVISION, O_MANUF, O_MODEL, O_VERSION,
		O_TPM2, O_CONFIG, O_OPTS, O_LOG, O_SOCKET, O_HELP, O_IGNORED_FLAG,
	};
	static const struct option opts[] = {
		{ "type", required_argument, NULL, O_TYPE },
		{ "ek", required_argument, NULL, O_EK },
		{ "dir", required_argument, NULL, O_DIR },
		{ "vmid", required_argument, NULL, O_VMID },
		{ "tpm-spec-family", required_argument, NULL, O_FAMILY },
		{ "tpm-spec-level", required_argument, NULL, O_LEVEL },
		{ "tpm-spec-revision", required_argument, NULL, O_REVISION },
		{ "tpm-manufacturer", required_argument, NULL, O_MANUF },
		{ "tpm-model", required_argument, NULL, O_MODEL },
		{ "tpm-version", required_argument, NULL, O_VERSION },
		{ "tpm2", no_argument, NULL, O_TPM2 },
		{ "configfile", required_argument, NULL, O_CONFIG },
		{ "optsfile", required_argument, NULL, O_OPTS },
		{ "logfile", required_argument, NULL, O_LOG },
		{ "socket", required_argument, NULL, O_SOCKET },
		/* flags swtpm_setup may pass that change nothing here */
		{ "allow-signing", no_argument, NULL, O_IGNORED_FLAG },
		{ "decryption", no_argument, NULL, O_IGNORED_FLAG },
		{ "help", no_argument, NULL, O_HELP },
		{ 0 },
	};
	const char *type = NULL, *ek = NULL, *dir = NULL, *vmid = NULL, *config = NULL, *optsfile = NULL;
	const char *family = NULL, *manuf = NULL, *model = NULL, *version = NULL, *sock_opt = NULL;
	uint64_t level = 0, revision = 164;
	bool tpm2 = false;
	char socket[256] = DEFAULT_SOCKET, uuid[37], name[256] = "";
	struct json_object *req, *ans = NULL, *cert;
	_cleanup_free_ uint8_t *der = NULL;
	_cleanup_free_ char *out = NULL;
	size_t der_len;
	int c, r;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_TYPE: type = optarg; break;
		case O_EK: ek = optarg; break;
		case O_DIR: dir = optarg; break;
		case O_VMID: vmid = optarg; break;
		case O_FAMILY: family = optarg; break;
		case O_LEVEL:
			if (kq_parse_uint(optarg, 127, &level) < 0)
				return fail("--tpm-spec-level: '%.20s' is not 0-127", optarg);
			break;
		case O_REVISION:
			if (kq_parse_uint(optarg, 0x7fff, &revision) < 0)
				return fail("--tpm-spec-revision: '%.20s' is not a number", optarg);
			break;
		case O_MANUF: manuf = optarg; break;
		case O_MODEL: model = optarg; break;
		case O_VERSION: version = optarg; break;
		case O_TPM2: tpm2 = true; break;
		case O_CONFIG: config = optarg; break;
		case O_OPTS: optsfile = optarg; break;
		case O_LOG: break;
		case O_SOCKET: sock_opt = optarg; break;
		case O_IGNORED_FLAG: break;
		case O_HELP:
			puts("usage: kumquat-vtpm-mgr cert-tool --type ek|platform --ek EK --dir DIR --vmid NAME:UUID\n"
			     "       [--tpm-* FIELD...] --tpm2 [--configfile FILE] [--optsfile FILE] [--socket PATH]\n"
			     "swtpm_setup's create_certs_tool: the certificate is issued by the host agent (see docs/vtpm.md).");
			return 0;
		default:
			/* an option swtpm_setup added later: better to stop than to sign something unexpected */
			return fail("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc)
		return fail("unexpected argument '%s'", argv[optind]);
	if (!type || !ek || !dir || !vmid)
		return fail("--type, --ek, --dir and --vmid are required");
	if (!tpm2)
		return fail("only TPM 2.0 vTPMs are supported (--tpm2)");
	if (strcmp(type, "ek") != 0 && strcmp(type, "platform") != 0)
		return fail("--type %s: only ek and platform certificates are issued", type);
	{
		/* libvirt passes NAME:UUID; the name may contain ':', the UUID cannot */
		const char *colon = strrchr(vmid, ':');
		const char *u = colon ? colon + 1 : vmid;

		if (!kq_uuid_normalize(u, uuid))
			return fail("--vmid '%.80s' does not end in the VM's UUID", vmid);
		if (colon)
			snprintf(name, sizeof(name), "%.*s", (int)(colon - vmid < 255 ? colon - vmid : 255), vmid);
	}
	if (config && read_config(config, socket, sizeof(socket)) < 0)
		return fail("cannot read %s", config);
	if (sock_opt)
		snprintf(socket, sizeof(socket), "%s", sock_opt);

	req = json_object_new_object();
	json_object_object_add(req, "op", json_object_new_string("ek_cert"));
	json_object_object_add(req, "type", json_object_new_string(type));
	json_object_object_add(req, "ek", json_object_new_string(ek));
	json_object_object_add(req, "vm_uuid", json_object_new_string(uuid));
	if (name[0])
		json_object_object_add(req, "vm_name", json_object_new_string(name));
	if (manuf)
		json_object_object_add(req, "tpm_manufacturer", json_object_new_string(manuf));
	if (model)
		json_object_object_add(req, "tpm_model", json_object_new_string(model));
	if (version)
		json_object_object_add(req, "tpm_version", json_object_new_string(version));
	if (family)
		json_object_object_add(req, "tpm_spec_family", json_object_new_string(family));
	json_object_object_add(req, "tpm_spec_level", json_object_new_int64((int64_t)level));
	json_object_object_add(req, "tpm_spec_revision", json_object_new_int64((int64_t)revision));
	read_opts(optsfile, req);
	r = local_call(socket, req, &ans);
	json_object_put(req);
	if (r < 0)
		return fail("the host agent (%s) did not issue the %s certificate for VM %s: %s", socket, type, uuid,
			    kq_errmsg());
	if (!json_object_object_get_ex(ans, "cert", &cert) || !json_object_is_type(cert, json_type_string) ||
	    kq_base64_decode(json_object_get_string(cert), MAX_CERT, &der, &der_len) < 0 || der_len == 0) {
		json_object_put(ans);
		return fail("the host agent's answer holds no certificate");
	}
	json_object_put(ans);
	if (asprintf(&out, "%s/%s.cert", dir, type) < 0)
		return fail("out of memory");
	if (kq_write_file(out, der, der_len) < 0)
		return fail("%s", kq_errmsg());
	return 0;
}
