/* SPDX-License-Identifier: Apache-2.0 */
/* kumquat-verifier: parses options and config, opens state, attests and serves until SIGTERM. */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "conf/conf.h"
#include "kq-config.h"
#include "log/log.h"
#include "tpm/tpm.h"
#include "verifier.h"

#define DEFAULT_CONFIG "/etc/kumquat/verifier.conf"
#define C(sec, key, type, field, max) { sec, key, type, offsetof(struct verifier_config, field), max }

static const struct conf_option options[] = {
	C("server", "listen", CONF_STRING, listen, 0),
	C("server", "port", CONF_UINT, port, 65535),
	C("server", "cert", CONF_PATH, cert, 0),
	C("server", "key", CONF_PATH, key, 0),
	C("server", "client_ca", CONF_PATH, client_ca, 0),
	C("server", "max_body", CONF_UINT, max_body, 256u << 20),
	C("client", "ca", CONF_PATH, tls_ca, 0),
	C("client", "cert", CONF_PATH, tls_cert, 0),
	C("client", "key", CONF_PATH, tls_key, 0),
	C("registrar", "url", CONF_STRING, registrar_url, 512),
	C("verifier", "database", CONF_PATH, database, 0),
	C("verifier", "history_max", CONF_UINT, history_max, 1000000),
	C("attest", "interval", CONF_UINT, interval, VERIFIER_MAX_INTERVAL),
	C("attest", "timeout_ms", CONF_UINT, timeout_ms, 600000),
	C("attest", "retries", CONF_UINT, retries, 100),
	C("attest", "max_concurrent", CONF_UINT, max_concurrent, 10000),
	C("attest", "max_evidence", CONF_UINT, max_evidence, VERIFIER_MAX_EVIDENCE),
	C("attest", "workers", CONF_UINT, workers, 64),
	C("policy", "dsse_key", CONF_PATH, dsse_key, 0),
	C("policy", "require_signed_ima", CONF_BOOL, require_signed_ima, 0),
	C("policy", "allow_ima_violations", CONF_BOOL, allow_ima_violations, 0),
	C("notify", "webhooks", CONF_STRING, webhooks, 0),
	C("notify", "ca", CONF_PATH, notify_ca, 0),
	C("notify", "signing_key", CONF_PATH, signing_key, 0),
	C("notify", "max_attempts", CONF_UINT, max_attempts, 1000),
	C("log", "level", CONF_STRING, log_level, 0),
	C("log", "json", CONF_BOOL, log_json, 0),
	{ 0 },
};

int64_t verifier_now(void)
{
	return (int64_t)time(NULL);
}

int64_t verifier_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(FILE *f)
{
	fputs("usage: kumquat-verifier [--config FILE] [--help] [--version]\n"
	      "Attests hosts continuously: quotes, measured boot and IMA against named policies,\n"
	      "with state in SQLite. Default config: " DEFAULT_CONFIG "\n", f);
}

static const char *check_config(const struct verifier_config *cfg)
{
	if (!cfg->cert || !cfg->key)
		return "[server] cert and key are required (TLS only)";
	if (!cfg->client_ca)
		return "[server] client_ca is required: every API call needs a client certificate";
	if (!cfg->tls_ca || !cfg->tls_cert || !cfg->tls_key)
		return "[client] ca, cert and key are required: host agents and the registrar need mutual TLS";
	if (!cfg->registrar_url || strncmp(cfg->registrar_url, "https://", 8) != 0)
		return "[registrar] url is required and must be https://";
	if (cfg->workers == 0)
		return "[attest] workers must be at least 1";
	if (cfg->max_concurrent == 0)
		return "[attest] max_concurrent must be at least 1";
	if (cfg->max_evidence < 4096)
		return "[attest] max_evidence must be at least 4096";
	if (cfg->timeout_ms < 100)
		return "[attest] timeout_ms must be at least 100";
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	const char *config = DEFAULT_CONFIG, *bad;
	struct verifier_config cfg = {
		.port = 8881, .max_body = 16u << 20, .history_max = 100, .interval = 10, .timeout_ms = 10000,
		.retries = 2, .max_concurrent = 256, .max_attempts = 10,
		.max_evidence = 32u << 20,
	};
	struct verifier v = { .cfg = &cfg };
	struct http_server *srv = NULL;
	const struct http_route *routes;
	size_t n_routes;
	enum log_level level = LOG_INFO;
	sigset_t set;
	int c, r, rc, sig;

	/*
	 * The verifier's memory is mostly many short-lived buffers (evidence in
	 * flight) made on one thread and freed on others: few malloc arenas, and
	 * a fixed mmap threshold so large answers go back to the system when
	 * freed instead of fragmenting the heap. The environment
	 * (MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_) still overrides.
	 */
	if (!getenv("MALLOC_ARENA_MAX"))
		mallopt(M_ARENA_MAX, 2);
	if (!getenv("MALLOC_MMAP_THRESHOLD_"))
		mallopt(M_MMAP_THRESHOLD, 128 * 1024);

	while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("kumquat-verifier %s\n", KQ_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	tpm_quiet_tss_log();
	cfg.listen = (char *)"127.0.0.1";
	cfg.database = (char *)"/var/lib/kumquat/verifier/verifier.db";
	cfg.log_level = (char *)"info";
	{
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		cfg.workers = cpus > 0 && cpus <= 64 ? (uint64_t)cpus : 2;
	}
	r = conf_load(config, options, &cfg);
	if (r < 0) {
		fprintf(stderr, "kumquat-verifier: config: %s\n", kq_errmsg());
		return 1;
	}
	rc = 1;
	if (log_level_from_string(cfg.log_level, &level) < 0) {
		fprintf(stderr, "kumquat-verifier: config: log level '%s' is not error, warn, info or debug\n",
			cfg.log_level);
		goto out;
	}
	log_setup(level, cfg.log_json);
	if ((bad = check_config(&cfg))) {
		fprintf(stderr, "kumquat-verifier: config: %s\n", bad);
		goto out;
	}
	v.registrar_client = (struct http_client_config){
		.ca_file = cfg.tls_ca, .cert_file = cfg.tls_cert, .key_file = cfg.tls_key, .timeout_ms = 10000,
	};

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "kumquat-verifier: cannot initialise libcurl\n");
		goto out;
	}

	if ((r = store_open(cfg.database, &v.db)) < 0 ||
	    (r = policies_new(v.db, &cfg, &v.policies)) < 0 ||
	    (r = notifier_new(&cfg, &v.notifier)) < 0 ||
	    (r = loop_new(&cfg, v.db, v.policies, v.notifier, &v.loop)) < 0) {
		fprintf(stderr, "kumquat-verifier: %s\n", kq_errmsg());
		goto out;
	}
	routes = verifier_routes(&n_routes);
	r = http_server_start(&(struct http_server_config){
				      .bind_addr = cfg.listen, .port = (uint16_t)cfg.port,
				      .cert_file = cfg.cert, .key_file = cfg.key,
				      .client_ca_file = cfg.client_ca, .max_body = cfg.max_body },
			      routes, n_routes, &v, &srv);
	if (r < 0) {
		fprintf(stderr, "kumquat-verifier: cannot listen on %s:%u: %s\n", cfg.listen, (unsigned)cfg.port,
			kq_errmsg());
		goto out;
	}
	if ((r = loop_start(v.loop)) < 0) {
		fprintf(stderr, "kumquat-verifier: %s\n", kq_errmsg());
		goto out;
	}
	log_info("verifier", "listening on https://%s:%u", cfg.listen, http_server_port(srv));
	kq_sd_notify("READY=1");
	while (sigwait(&set, &sig) == 0 && sig != SIGTERM && sig != SIGINT)
		;
	log_info("verifier", "stopping");
	rc = 0;
out:
	http_server_stop(srv);
	loop_free(v.loop);
	notifier_free(v.notifier);
	policies_free(v.policies);
	db_close(v.db);
	conf_free(options, &cfg);
	return rc;
}
