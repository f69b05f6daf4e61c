/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kumquat-guest-agent: runs inside a VM and owns its vTPM. It enrols the
 * guest with the registrar -- its vTPM EK certificate (signed by its host's
 * vTPM-CA key), an AK activated by MakeCredential/ActivateCredential, and the
 * VM UUID it claims, which must be the one the certificate names -- has the
 * AK certify its payload key (a decryption key in the vTPM), and then,
 * when [server] cert is set, serves the evidence the verifier asks for
 * (POST /v1/quote, lib/evidence) until SIGTERM (docs/guest-agent.md).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "conf/conf.h"
#include "enrol/enrol.h"
#include "evidence/evidence.h"
#include "evidence/services.h"
#include "http/http.h"
#include "kq-config.h"
#include "log/log.h"
#include "tpm/tpm.h"
#include "tpmdev/tpmdev.h"
#include "util/util.h"

#define DEFAULT_CONFIG "/etc/kumquat/guest-agent.conf"

struct guest_config {
	char *id, *state_dir, *vm_uuid, *vm_uuid_file, *contact;
	char *tcti, *ek_alg, *ak_handle_s, *payload_key_handle_s;
	char *registrar_url, *registrar_ca;
	uint64_t timeout_ms;
	/* evidence endpoint (mTLS); off when cert is unset */
	char *listen;
	uint16_t port;
	char *cert, *key, *client_ca;
	char *uefi_log, *ima_log, *boot_id_path;
	struct services_config svc;
	char *log_level;
	bool log_json;
};

#define O(sec, key, type, field, max) { sec, key, type, offsetof(struct guest_config, field), max }
static const struct conf_option options[] = {
	O("agent", "id", CONF_STRING, id, 36),
	O("agent", "state_dir", CONF_PATH, state_dir, 0),
	O("agent", "vm_uuid", CONF_STRING, vm_uuid, 36),
	O("agent", "vm_uuid_file", CONF_PATH, vm_uuid_file, 0),
	O("agent", "contact", CONF_STRING, contact, 512),
	O("tpm", "tcti", CONF_STRING, tcti, 512),
	O("tpm", "ek_alg", CONF_STRING, ek_alg, 8),
	O("tpm", "ak_handle", CONF_STRING, ak_handle_s, 16),
	O("tpm", "payload_key_handle", CONF_STRING, payload_key_handle_s, 16),
	O("registrar", "url", CONF_STRING, registrar_url, 512),
	O("registrar", "ca", CONF_PATH, registrar_ca, 0),
	O("registrar", "timeout_ms", CONF_UINT, timeout_ms, 600000),
	O("server", "listen", CONF_STRING, listen, 64),
	O("server", "port", CONF_PORT, port, 65535),
	O("server", "cert", CONF_PATH, cert, 0),
	O("server", "key", CONF_PATH, key, 0),
	O("server", "client_ca", CONF_PATH, client_ca, 0),
	O("logs", "uefi", CONF_STRING, uefi_log, 4096), /* empty: none (SeaBIOS guests have no UEFI log) */
	O("logs", "ima", CONF_STRING, ima_log, 4096),
	O("logs", "boot_id", CONF_PATH, boot_id_path, 0),
	SERVICES_OPTIONS(struct guest_config, svc),
	O("log", "level", CONF_STRING, log_level, 0),
	O("log", "json", CONF_BOOL, log_json, 0),
	{ 0 },
};

static void usage(FILE *f)
{
	fputs("usage: kumquat-guest-agent [--config FILE] [--enrol-only] [--help] [--version]\n"
	      "Enrols this VM's vTPM with the registrar (EK certificate from the host's vTPM-CA,\n"
	      "AK by MakeCredential/ActivateCredential) and its payload key (certified by the AK),\n"
	      "then serves its evidence (POST /v1/quote) if [server] cert is set. --enrol-only exits\n"
	      "once enrolled. Default config: " DEFAULT_CONFIG "\n", f);
}

static const struct http_route routes[] = {
	{ "POST", "/v1/quote", true, evidence_handle_quote },
	SERVICES_ROUTES,
};

/* The VM UUID: configured, or the firmware's system UUID (libvirt sets it to the domain's). */
static int vm_uuid(const struct guest_config *cfg, char ret[37])
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;
	int r;

	if (cfg->vm_uuid && cfg->vm_uuid[0]) {
		if (!kq_uuid_normalize(cfg->vm_uuid, ret))
			return kq_err(-EINVAL, "[agent] vm_uuid '%.40s' is not a UUID", cfg->vm_uuid);
		return 0;
	}
	r = kq_read_file(cfg->vm_uuid_file, 64, &buf, &len);
	if (r < 0)
		return kq_err_ctx(r, "the VM UUID ([agent] vm_uuid_file): ");
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	if (!kq_uuid_normalize((const char *)buf, ret))
		return kq_err(-EINVAL, "%s does not hold a UUID", cfg->vm_uuid_file);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "enrol-only", no_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	const char *config = DEFAULT_CONFIG;
	struct guest_config cfg = { .timeout_ms = 30000 };
	struct tpmdev *tpm = NULL;
	struct enrol_config ec = { .kind = "guest" };
	struct enrol_result er;
	struct evidence_config ev;
	struct services svc = { 0 };
	struct http_server *srv = NULL;
	enum log_level level = LOG_INFO;
	char id[37], vm[37];
	uint64_t ak_handle = TPMDEV_AK_HANDLE, payload_key_handle = TPMDEV_PAYLOAD_KEY_HANDLE;
	TPM2B_NAME payload_name;
	bool once = false;
	sigset_t set;
	int c, r, sig, rc = 1;

	while ((c = getopt_long(argc, argv, "c:ohV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'o': once = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("kumquat-guest-agent %s\n", KQ_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	tpm_quiet_tss_log();
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* blocked before any thread starts, so only sigwait below takes them */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	cfg.state_dir = (char *)"/var/lib/kumquat/guest-agent";
	cfg.vm_uuid_file = (char *)"/sys/class/dmi/id/product_uuid";
	cfg.tcti = (char *)"device:/dev/tpmrm0";
	cfg.ek_alg = (char *)"rsa";
	cfg.log_level = (char *)"info";
	cfg.listen = (char *)"127.0.0.1";
	cfg.port = 8893;
	cfg.uefi_log = (char *)"/sys/kernel/security/tpm0/binary_bios_measurements";
	cfg.ima_log = (char *)"/sys/kernel/security/ima/binary_runtime_measurements";
	cfg.boot_id_path = (char *)"/proc/sys/kernel/random/boot_id";
	if (conf_load(config, options, &cfg) < 0) {
		fprintf(stderr, "kumquat-guest-agent: config: %s\n", kq_errmsg());
		return 1;
	}
	if (log_level_from_string(cfg.log_level, &level) < 0) {
		fprintf(stderr, "kumquat-guest-agent: config: bad log level '%s'\n", cfg.log_level);
		goto out;
	}
	log_setup(level, cfg.log_json);
	if ((cfg.uefi_log && cfg.uefi_log[0] && cfg.uefi_log[0] != '/') ||
	    (cfg.ima_log && cfg.ima_log[0] && cfg.ima_log[0] != '/')) {
		fprintf(stderr, "kumquat-guest-agent: config: [logs] uefi and ima must be absolute paths or empty\n");
		goto out;
	}
	if (!cfg.registrar_url || !cfg.registrar_ca) {
		fprintf(stderr, "kumquat-guest-agent: config: [registrar] url and ca are required\n");
		goto out;
	}
	if (strcmp(cfg.ek_alg, "rsa") != 0 && strcmp(cfg.ek_alg, "ecc") != 0) {
		fprintf(stderr, "kumquat-guest-agent: config: [tpm] ek_alg must be rsa or ecc\n");
		goto out;
	}
	if (!once && cfg.cert && (!cfg.key || !cfg.client_ca)) {
		fprintf(stderr, "kumquat-guest-agent: config: [server] needs cert, key and client_ca\n");
		goto out;
	}
	if ((cfg.ak_handle_s && enrol_parse_handle("ak_handle", cfg.ak_handle_s, &ak_handle) < 0) ||
	    (cfg.payload_key_handle_s &&
	     enrol_parse_handle("payload_key_handle", cfg.payload_key_handle_s, &payload_key_handle) < 0)) {
		fprintf(stderr, "kumquat-guest-agent: config: %s\n", kq_errmsg());
		goto out;
	}
	if (ak_handle == payload_key_handle) {
		fprintf(stderr, "kumquat-guest-agent: config: [tpm] ak_handle and payload_key_handle must differ\n");
		goto out;
	}
	if (cfg.id && cfg.id[0]) {
		if (!kq_uuid_normalize(cfg.id, id)) {
			fprintf(stderr, "kumquat-guest-agent: config: [agent] id is not a UUID\n");
			goto out;
		}
	} else if (enrol_agent_id(cfg.state_dir, id) < 0) {
		fprintf(stderr, "kumquat-guest-agent: %s\n", kq_errmsg());
		goto out;
	}
	if (vm_uuid(&cfg, vm) < 0) {
		fprintf(stderr, "kumquat-guest-agent: %s\n", kq_errmsg());
		goto out;
	}
	r = tpmdev_open(cfg.tcti, &tpm);
	if (r < 0) {
		fprintf(stderr, "kumquat-guest-agent: vTPM %s: %s\n", cfg.tcti, kq_errmsg());
		goto out;
	}
	ec.registrar_url = cfg.registrar_url;
	ec.registrar_ca = cfg.registrar_ca;
	ec.timeout_ms = (unsigned)cfg.timeout_ms;
	ec.id = id;
	ec.contact = cfg.contact;
	ec.vm_uuid = vm;
	ec.alg = strcmp(cfg.ek_alg, "ecc") == 0 ? TPMDEV_ECC_P256 : TPMDEV_RSA2048;
	ec.ak_handle = (TPM2_HANDLE)ak_handle;
	r = enrol_agent(&ec, tpm, &er);
	if (r < 0) {
		fprintf(stderr, "kumquat-guest-agent: enrolment failed: %s\n", kq_errmsg());
		goto out;
	}
	r = enrol_payload_key(&ec, tpm, (TPM2_HANDLE)payload_key_handle, &payload_name);
	if (r < 0) {
		fprintf(stderr, "kumquat-guest-agent: enrolment failed: payload key: %s\n", kq_errmsg());
		goto out;
	}
	{
		_cleanup_free_ char *ak = kq_hex_dup(er.ak_name.name, er.ak_name.size);
		_cleanup_free_ char *pk = kq_hex_dup(payload_name.name, payload_name.size);

		log_info("guest-agent", "enrolled as %s, VM %s (AK %s, payload key %s)", id, vm, ak ? ak : "?",
			 pk ? pk : "?");
	}
	if (!once && cfg.cert) {
		ev = (struct evidence_config){
			.tpm = tpm, .ak_handle = (TPM2_HANDLE)ak_handle, .agent_id = id,
			.uefi_log = cfg.uefi_log, .ima_log = cfg.ima_log, .boot_id = cfg.boot_id_path,
		};
		if (services_setup(&cfg.svc, id, (TPM2_HANDLE)payload_key_handle, cfg.state_dir, &svc, &ev) < 0) {
			fprintf(stderr, "kumquat-guest-agent: config: %s\n", kq_errmsg());
			goto out;
		}
		r = http_server_start(&(struct http_server_config){
					      .bind_addr = cfg.listen, .port = cfg.port, .cert_file = cfg.cert,
					      .key_file = cfg.key, .client_ca_file = cfg.client_ca,
					      .max_body = SERVICES_MAX_BODY, .threads = 2 },
				      routes, ARRAY_SIZE(routes), &ev, &srv);
		if (r < 0) {
			fprintf(stderr, "kumquat-guest-agent: cannot listen on %s:%u: %s\n", cfg.listen,
				(unsigned)cfg.port, kq_errmsg());
			goto out;
		}
		log_info("guest-agent", "evidence endpoint listening on https://%s:%u", cfg.listen,
			 http_server_port(srv));
	}
	/* a notify service with RemainAfterExit: ready once enrolled, and serving if it serves */
	kq_sd_notify("READY=1");
	if (srv)
		while (sigwait(&set, &sig) == 0 && sig != SIGTERM && sig != SIGINT)
			;
	rc = 0;
out:
	http_server_stop(srv);
	services_clear(&svc);
	tpmdev_close(tpm);
	conf_free(options, &cfg);
	return rc;
}
