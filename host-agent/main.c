/* SPDX-License-Identifier: Apache-2.0 */
/* kumquat-host-agent: parses options and config, enrols the host, then runs until SIGTERM. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "conf/conf.h"
#include "enrol/enrol.h"
#include "host-agent.h"
#include "kq-config.h"
#include "log/log.h"
#include "tpm/tpm.h"
#include "util/util.h"

#define DEFAULT_CONFIG "/etc/kumquat/host-agent.conf"

static const struct conf_option options[] = {
	{ "agent", "id", CONF_STRING, offsetof(struct host_agent_config, id), 0 },
	{ "agent", "state_dir", CONF_PATH, offsetof(struct host_agent_config, state_dir), 0 },
	{ "agent", "contact", CONF_STRING, offsetof(struct host_agent_config, contact), 0 },
	{ "tpm", "tcti", CONF_STRING, offsetof(struct host_agent_config, tcti), 0 },
	{ "tpm", "ek_alg", CONF_STRING, offsetof(struct host_agent_config, ek_alg), 0 },
	{ "tpm", "ak_handle", CONF_STRING, offsetof(struct host_agent_config, ak_handle_s), 0 },
	{ "tpm", "ca_key_handle", CONF_STRING, offsetof(struct host_agent_config, ca_key_handle_s), 0 },
	{ "tpm", "payload_key_handle", CONF_STRING, offsetof(struct host_agent_config, payload_key_handle_s), 0 },
	{ "registrar", "url", CONF_STRING, offsetof(struct host_agent_config, registrar_url), 0 },
	{ "registrar", "ca", CONF_PATH, offsetof(struct host_agent_config, registrar_ca), 0 },
	{ "registrar", "timeout_ms", CONF_UINT, offsetof(struct host_agent_config, timeout_ms), 600000 },
	{ "server", "listen", CONF_STRING, offsetof(struct host_agent_config, listen), 0 },
	{ "server", "port", CONF_PORT, offsetof(struct host_agent_config, port), 65535 },
	{ "server", "cert", CONF_PATH, offsetof(struct host_agent_config, cert), 0 },
	{ "server", "key", CONF_PATH, offsetof(struct host_agent_config, key), 0 },
	{ "server", "client_ca", CONF_PATH, offsetof(struct host_agent_config, client_ca), 0 },
	{ "logs", "uefi", CONF_PATH, offsetof(struct host_agent_config, uefi_log), 0 },
	{ "logs", "ima", CONF_PATH, offsetof(struct host_agent_config, ima_log), 0 },
	{ "logs", "boot_id", CONF_PATH, offsetof(struct host_agent_config, boot_id_path), 0 },
	SERVICES_OPTIONS(struct host_agent_config, svc),
	{ "deep-quote", "window_ms", CONF_UINT, offsetof(struct host_agent_config, dq_window_ms), 5000 },
	{ "vtpm", "socket", CONF_STRING, offsetof(struct host_agent_config, vtpm_socket), 107 },
	{ "vtpm", "socket_uids", CONF_STRING, offsetof(struct host_agent_config, vtpm_socket_uids), 200 },
	{ "log", "level", CONF_STRING, offsetof(struct host_agent_config, log_level), 0 },
	{ "log", "json", CONF_BOOL, offsetof(struct host_agent_config, log_json), 0 },
	{ 0 },
};

static void usage(FILE *f)
{
	fputs("usage: kumquat-host-agent [--config FILE] [--enrol-only] [--help] [--version]\n"
	      "Owns the host's TPM: enrols with the registrar and has the TPM certify the host's\n"
	      "vTPM-CA key and payload key. --enrol-only exits once enrolled. Default config: " DEFAULT_CONFIG "\n", f);
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
	struct host_agent_config cfg = {
		.ak_handle = TPMDEV_AK_HANDLE, .ca_key_handle = TPMDEV_CA_KEY_HANDLE,
		.payload_key_handle = TPMDEV_PAYLOAD_KEY_HANDLE, .timeout_ms = 30000,
	};
	struct host_enrolment e;
	struct tpmdev *tpm = NULL;
	struct host_server *srv = NULL;
	struct host_vtpm *vtpm = NULL;
	enum log_level level = LOG_INFO;
	bool once = false;
	sigset_t set;
	int c, r, rc, sig;

	while ((c = getopt_long(argc, argv, "c:ohV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'o': once = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("kumquat-host-agent %s\n", KQ_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	tpm_quiet_tss_log();
	/* defaults; conf_load replaces them with malloc'd copies (freed by conf_free) */
	cfg.state_dir = (char *)"/var/lib/kumquat/host-agent";
	cfg.tcti = (char *)TPMDEV_DEFAULT_TCTI;
	cfg.ek_alg = (char *)"rsa";
	cfg.log_level = (char *)"info";
	cfg.listen = (char *)"127.0.0.1";
	cfg.port = 8892;
	cfg.uefi_log = (char *)"/sys/kernel/security/tpm0/binary_bios_measurements";
	cfg.ima_log = (char *)"/sys/kernel/security/ima/binary_runtime_measurements";
	cfg.boot_id_path = (char *)"/proc/sys/kernel/random/boot_id";
	cfg.vtpm_socket = (char *)"/run/kumquat/host-agent.sock";
	cfg.dq_window_ms = 20;
	r = conf_load(config, options, &cfg);
	if (r < 0) {
		fprintf(stderr, "kumquat-host-agent: config: %s\n", kq_errmsg());
		return 1;
	}
	rc = 1;
	if (log_level_from_string(cfg.log_level, &level) < 0) {
		fprintf(stderr, "kumquat-host-agent: config: bad log level '%s'\n", cfg.log_level);
		goto out;
	}
	log_setup(level, cfg.log_json);
	if ((cfg.ak_handle_s && enrol_parse_handle("ak_handle", cfg.ak_handle_s, &cfg.ak_handle) < 0) ||
	    (cfg.ca_key_handle_s && enrol_parse_handle("ca_key_handle", cfg.ca_key_handle_s, &cfg.ca_key_handle) < 0) ||
	    (cfg.payload_key_handle_s &&
	     enrol_parse_handle("payload_key_handle", cfg.payload_key_handle_s, &cfg.payload_key_handle) < 0)) {
		fprintf(stderr, "kumquat-host-agent: config: %s\n", kq_errmsg());
		goto out;
	}
	if (cfg.ak_handle == cfg.ca_key_handle || cfg.ak_handle == cfg.payload_key_handle ||
	    cfg.ca_key_handle == cfg.payload_key_handle) {
		fprintf(stderr, "kumquat-host-agent: config: [tpm] ak_handle, ca_key_handle and payload_key_handle "
			"must differ\n");
		goto out;
	}
	if (strcmp(cfg.ek_alg, "rsa") != 0 && strcmp(cfg.ek_alg, "ecc") != 0) {
		fprintf(stderr, "kumquat-host-agent: config: [tpm] ek_alg must be rsa or ecc\n");
		goto out;
	}
	if (!cfg.registrar_url || !cfg.registrar_ca) {
		fprintf(stderr, "kumquat-host-agent: config: [registrar] url and ca are required\n");
		goto out;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	r = tpmdev_open(cfg.tcti, &tpm);
	if (r < 0) {
		fprintf(stderr, "kumquat-host-agent: TPM %s: %s\n", cfg.tcti, kq_errmsg());
		goto out;
	}
	r = host_agent_enrol(&cfg, tpm, &e);
	if (r < 0) {
		fprintf(stderr, "kumquat-host-agent: enrolment failed: %s\n", kq_errmsg());
		goto out;
	}
	{
		_cleanup_free_ char *ak = kq_hex_dup(e.ak_name.name, e.ak_name.size);
		_cleanup_free_ char *ca = kq_hex_dup(e.ca_name.name, e.ca_name.size);
		_cleanup_free_ char *pk = kq_hex_dup(e.payload_name.name, e.payload_name.size);
		log_info("host-agent", "enrolled as %s (AK %s, vTPM CA %s, payload key %s)", e.id, ak ? ak : "?",
			 ca ? ca : "?", pk ? pk : "?");
	}
	if (!once && cfg.vtpm_socket && cfg.vtpm_socket[0]) {
		_cleanup_free_ char *dir = strdup(cfg.vtpm_socket);
		char *slash = dir ? strrchr(dir, '/') : NULL;

		if (cfg.vtpm_socket[0] != '/') {
			fprintf(stderr, "kumquat-host-agent: config: [vtpm] socket must be an absolute path\n");
			goto out;
		}
		if (slash && slash != dir) {
			*slash = '\0';
			(void)mkdir(dir, 0755);
		}
		r = host_vtpm_start(&cfg, tpm, e.id, &vtpm);
		if (r < 0) {
			fprintf(stderr, "kumquat-host-agent: vTPM socket %s: %s\n", cfg.vtpm_socket, kq_errmsg());
			goto out;
		}
		log_info("host-agent", "vTPM socket on %s", cfg.vtpm_socket);
	}
	if (!once && cfg.cert) {
		if (!cfg.key || !cfg.client_ca) {
			fprintf(stderr, "kumquat-host-agent: config: [server] needs cert, key and client_ca\n");
			goto out;
		}
		r = host_agent_serve(&cfg, tpm, e.id, vtpm, &srv);
		if (r < 0) {
			fprintf(stderr, "kumquat-host-agent: cannot listen on %s:%u: %s\n", cfg.listen,
				(unsigned)cfg.port, kq_errmsg());
			goto out;
		}
		log_info("host-agent", "evidence endpoint listening on https://%s:%u", cfg.listen,
			 host_agent_serve_port(srv));
	}
	if (!once) {
		kq_sd_notify("READY=1");
		while (sigwait(&set, &sig) == 0 && sig != SIGTERM && sig != SIGINT)
			;
	}
	rc = 0;
out:
	/* the server first: deep quotes read the VM map */
	host_agent_serve_stop(srv);
	host_vtpm_stop(vtpm);
	tpmdev_close(tpm);
	conf_free(options, &cfg);
	return rc;
}
