/* SPDX-License-Identifier: Apache-2.0 */
#include "vtpm-mgr.h"

#include <stdio.h>
#include <string.h>

#include "conf/conf.h"
#include "log/log.h"

const char *vtpm_config_path;

static const struct conf_option options[] = {
	{ "libvirt", "uri", CONF_STRING, offsetof(struct vtpm_config, uri), 1024 },
	{ "vtpm-mgr", "database", CONF_PATH, offsetof(struct vtpm_config, database), 0 },
	{ "vtpm-mgr", "swtpm_dir", CONF_PATH, offsetof(struct vtpm_config, swtpm_dir), 0 },
	{ "vtpm-mgr", "retry_interval", CONF_UINT, offsetof(struct vtpm_config, retry_interval), 86400 },
	{ "host-agent", "socket", CONF_PATH, offsetof(struct vtpm_config, socket), 0 },
	{ "log", "level", CONF_STRING, offsetof(struct vtpm_config, log_level), 0 },
	{ "log", "json", CONF_BOOL, offsetof(struct vtpm_config, log_json), 0 },
	{ 0 },
};

int vtpm_config_load(const char *path, struct vtpm_config *cfg)
{
	enum log_level level;
	int r;

	/* defaults; conf_load replaces them with malloc'd copies */
	*cfg = (struct vtpm_config){
		.uri = (char *)"qemu:///system",
		.database = (char *)"/var/lib/kumquat/vtpm-mgr/vtpm-mgr.db",
		.swtpm_dir = (char *)"/var/lib/libvirt/swtpm",
		.retry_interval = 30,
		.socket = (char *)"/run/kumquat/host-agent.sock",
		.log_level = (char *)"info",
	};
	r = conf_load(path ? path : VTPM_DEFAULT_CONFIG, options, cfg);
	/* libvirt runs the hook with its own arguments: no file means the defaults */
	if (r == -ENOENT && !path)
		r = conf_load("/dev/null", options, cfg);
	if (r < 0) {
		*cfg = (struct vtpm_config){ 0 }; /* the defaults are literals: nothing to free */
		return r;
	}
	if (cfg->retry_interval == 0) {
		vtpm_config_free(cfg);
		return kq_err(-EINVAL, "%s: [vtpm-mgr] retry_interval must be at least 1 second",
			      path ? path : VTPM_DEFAULT_CONFIG);
	}
	if (log_level_from_string(cfg->log_level, &level) < 0) {
		r = kq_err(-EINVAL, "%s: [log] level '%s' is not error, warn, info or debug",
			   path ? path : VTPM_DEFAULT_CONFIG, cfg->log_level);
		vtpm_config_free(cfg);
		return r;
	}
	log_setup(level, cfg->log_json);
	return 0;
}

void vtpm_config_free(struct vtpm_config *cfg)
{
	conf_free(options, cfg);
}

int vtpm_fail(int code, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0) {
		msg = NULL;
		fputs(VTPM_MGR ": out of memory\n", stderr);
		return code;
	}
	/* one line whatever the message quotes (a VM's name, libvirt's words) */
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	fprintf(stderr, VTPM_MGR ": %s\n", msg);
	return code;
}
