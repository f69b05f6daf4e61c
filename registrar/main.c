/* SPDX-License-Identifier: Apache-2.0 */
/* kumquat-registrar: parses options and config, opens state, serves until SIGTERM. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "conf/conf.h"
#include "kq-config.h"
#include "log/log.h"
#include "registrar.h"
#include "tpm/tpm.h"
#include "util/util.h"

#define DEFAULT_CONFIG "/etc/kumquat/registrar.conf"

static const struct conf_option options[] = {
	{ "server", "listen", CONF_STRING, offsetof(struct registrar_config, listen), 0 },
	{ "server", "port", CONF_PORT, offsetof(struct registrar_config, port), 65535 },
	{ "server", "cert", CONF_PATH, offsetof(struct registrar_config, cert), 0 },
	{ "server", "key", CONF_PATH, offsetof(struct registrar_config, key), 0 },
	{ "server", "client_ca", CONF_PATH, offsetof(struct registrar_config, client_ca), 0 },
	{ "server", "max_body", CONF_UINT, offsetof(struct registrar_config, max_body), 16u << 20 },
	{ "registrar", "database", CONF_PATH, offsetof(struct registrar_config, database), 0 },
	{ "registrar", "ek_ca_dir", CONF_PATH, offsetof(struct registrar_config, ek_ca_dir), 0 },
	{ "registrar", "require_ek_cert", CONF_BOOL, offsetof(struct registrar_config, require_ek_cert), 0 },
	{ "registrar", "challenge_ttl", CONF_UINT, offsetof(struct registrar_config, challenge_ttl), 86400 },
	{ "log", "level", CONF_STRING, offsetof(struct registrar_config, log_level), 0 },
	{ "log", "json", CONF_BOOL, offsetof(struct registrar_config, log_json), 0 },
	{ 0 },
};

static void usage(FILE *f)
{
	fputs("usage: kumquat-registrar [--config FILE] [--help] [--version]\n"
	      "Enrols TPMs: EK (and EK certificate) -> AK by MakeCredential/ActivateCredential,\n"
	      "and records each host's vTPM-CA key. Default config: " DEFAULT_CONFIG "\n", f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	const char *config = DEFAULT_CONFIG;
	struct registrar_config cfg = {
		.port = 8891, .max_body = 1u << 20, .require_ek_cert = true, .challenge_ttl = 300,
	};
	struct registrar *rg = NULL;
	struct http_server *srv = NULL; /* http_server_stop accepts NULL */
	const struct http_route *routes;
	size_t n_routes;
	enum log_level level = LOG_INFO;
	sigset_t set;
	int c, r, rc, sig;

	while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("kumquat-registrar %s\n", KQ_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	tpm_quiet_tss_log();
	/* defaults; conf_load replaces them with malloc'd copies (freed by conf_free) */
	cfg.listen = (char *)"127.0.0.1";
	cfg.database = (char *)"/var/lib/kumquat/registrar/registrar.db";
	cfg.log_level = (char *)"info";
	r = conf_load(config, options, &cfg);
	if (r < 0) {
		fprintf(stderr, "kumquat-registrar: config: %s\n", kq_errmsg());
		return 1;
	}
	rc = 1;
	if (log_level_from_string(cfg.log_level, &level) < 0) {
		fprintf(stderr, "kumquat-registrar: config: log level '%s' is not error, warn, info or debug\n",
			cfg.log_level);
		goto out;
	}
	log_setup(level, cfg.log_json);
	if (!cfg.cert || !cfg.key) {
		fprintf(stderr, "kumquat-registrar: config: [server] cert and key are required (TLS only)\n");
		goto out;
	}
	if (!cfg.client_ca)
		log_warn("registrar", "no [server] client_ca: the admin API (list, show, delete) is unreachable");
	if (!cfg.ek_ca_dir)
		log_warn("registrar", "no [registrar] ek_ca_dir: every EK certificate will be refused");

	/* signals are taken synchronously below; block them before any thread starts */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	r = registrar_open(&cfg, &rg);
	if (r < 0) {
		fprintf(stderr, "kumquat-registrar: %s\n", kq_errmsg());
		goto out;
	}
	routes = registrar_routes(&n_routes);
	r = http_server_start(&(struct http_server_config){
				      .bind_addr = cfg.listen, .port = (uint16_t)cfg.port,
				      .cert_file = cfg.cert, .key_file = cfg.key,
				      .client_ca_file = cfg.client_ca, .max_body = cfg.max_body },
			      routes, n_routes, rg, &srv);
	if (r < 0) {
		fprintf(stderr, "kumquat-registrar: cannot listen on %s:%u: %s\n", cfg.listen,
			(unsigned)cfg.port, kq_errmsg());
		goto out;
	}
	log_info("registrar", "listening on https://%s:%u", cfg.listen, http_server_port(srv));
	kq_sd_notify("READY=1");
	while (sigwait(&set, &sig) == 0 && sig != SIGTERM && sig != SIGINT)
		;
	log_info("registrar", "stopping");
	rc = 0;
out:
	http_server_stop(srv);
	registrar_close(rg);
	conf_free(options, &cfg);
	return rc;
}
