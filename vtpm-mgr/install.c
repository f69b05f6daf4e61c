/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kumquat-vtpm-mgr install / uninstall: plugs kumquat into libvirt and swtpm.
 *
 *  - swtpm_setup's config (/etc/swtpm_setup.conf) gets create_certs_tool =
 *    LIBEXEC/kumquat-cert-tool, a two-line script exec'ing `kumquat-vtpm-mgr
 *    --config CONF cert-tool "$@"`: swtpm_setup calls the tool with arguments
 *    of its own (--type, --ek, --dir, ...), and a script is where our --config
 *    fits. create_certs_tool_config is the vtpm-mgr config itself (written
 *    from the defaults if missing; never overwritten or removed), and
 *    create_certs_tool_options a file of platform certificate options. The
 *    other lines of the old file (active_pcr_banks, ...) are kept; the old
 *    file itself is kept as FILE.kumquat-orig and put back by uninstall.
 *  - libvirt's qemu hook HOOKS/qemu.d/kumquat, a script exec'ing
 *    `kumquat-vtpm-mgr --config CONF hook "$@"` (exit 0 if the binary is
 *    gone, so that removing kumquat never blocks VMs).
 *
 * Files we write carry MARKER, and uninstall removes only those. meson
 * installs the same two scripts for its prefix (qemu-hook.in and
 * kumquat-cert-tool.in here): tests/packaging/install.sh checks that they
 * match what write_script() makes.
 */
#include "vtpm-mgr.h"

#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MARKER "kumquat-vtpm-mgr install"
#define CERT_TOOL "kumquat-cert-tool"
#define SMALL_FILE_MAX (64u * 1024)

static const char options_text[] =
	"--platform-manufacturer kumquat\n"
	"--platform-model QEMU\n"
	"--platform-version 2.1\n";

static const char config_text[] =
	"# kumquat-vtpm-mgr configuration, written by `" MARKER "` with the defaults;\n"
	"# see /usr/share/doc/kumquat/examples/vtpm-mgr.conf.example.\n"
	"[libvirt]\n"
	"#uri = qemu:///system\n"
	"[vtpm-mgr]\n"
	"#database = /var/lib/kumquat/vtpm-mgr/vtpm-mgr.db\n"
	"#swtpm_dir = /var/lib/libvirt/swtpm\n"
	"#retry_interval = 30\n"
	"[host-agent]\n"
	"#socket = /run/kumquat/host-agent.sock\n";

struct paths {
	const char *swtpm_conf, *hooks_dir, *libexec_dir, *options, *binary, *config;
	char *backup, *hook, *cert_tool; /* derived, malloc'd */
	char *binary_buf, *config_buf;
};

static void paths_free(struct paths *p)
{
	free(p->backup);
	free(p->hook);
	free(p->cert_tool);
	free(p->binary_buf);
	free(p->config_buf);
}

/* A path we write into a shell script between single quotes. */
static bool script_safe(const char *s)
{
	if (!vm_path_valid(s))
		return false;
	return !strchr(s, '\'');
}

/* 0 to go on, -1 after --help, else the exit code of a usage error. */
static int parse_args(int argc, char **argv, const char *usage, struct paths *p)
{
	static const struct option opts[] = {
		{ "swtpm-setup-conf", required_argument, NULL, 's' },
		{ "hooks-dir", required_argument, NULL, 'k' },
		{ "libexec-dir", required_argument, NULL, 'l' },
		{ "cert-tool-options", required_argument, NULL, 'o' },
		{ "binary", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	*p = (struct paths){
		.swtpm_conf = "/etc/swtpm_setup.conf",
		.hooks_dir = "/etc/libvirt/hooks",
		.libexec_dir = "/usr/libexec/kumquat",
		.options = "/etc/kumquat/vtpm-cert-tool.options",
		.config = vtpm_config_path ? vtpm_config_path : VTPM_DEFAULT_CONFIG,
	};
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': p->swtpm_conf = optarg; break;
		case 'k': p->hooks_dir = optarg; break;
		case 'l': p->libexec_dir = optarg; break;
		case 'o': p->options = optarg; break;
		case 'b': p->binary = optarg; break;
		case 'h': fputs(usage, stdout); return -1;
		default: return vtpm_fail(VTPM_EXIT_USAGE, "%s: bad option (see %s --help)", argv[0], argv[0]);
		}
	}
	if (optind != argc)
		return vtpm_fail(VTPM_EXIT_USAGE, "%s takes no arguments", argv[0]);
	if (!p->binary) {
		p->binary = p->binary_buf = realpath("/proc/self/exe", NULL);
		if (!p->binary)
			return vtpm_fail(VTPM_EXIT_FAIL, "cannot find this program (/proc/self/exe): %m");
	}
	if (asprintf(&p->backup, "%s.kumquat-orig", p->swtpm_conf) < 0)
		p->backup = NULL;
	if (asprintf(&p->hook, "%s/qemu.d/kumquat", p->hooks_dir) < 0)
		p->hook = NULL;
	if (asprintf(&p->cert_tool, "%s/" CERT_TOOL, p->libexec_dir) < 0)
		p->cert_tool = NULL;
	if (!p->backup || !p->hook || !p->cert_tool)
		return vtpm_fail(VTPM_EXIT_FAIL, "out of memory");
	{
		const char *all[] = { p->swtpm_conf, p->hooks_dir, p->libexec_dir, p->options, p->binary, p->config };

		for (size_t i = 0; i < ARRAY_SIZE(all); i++)
			if (!script_safe(all[i]))
				return vtpm_fail(VTPM_EXIT_USAGE,
						 "'%s' must be an absolute path without quotes or control characters",
						 all[i]);
	}
	return 0;
}

/* mkdir -p, mode 0755 for what it creates. */
static int make_dirs(const char *dir)
{
	char buf[PATH_MAX];
	size_t n = strlen(dir);

	if (n >= sizeof(buf))
		return kq_err(-ENAMETOOLONG, "%s: path too long", dir);
	memcpy(buf, dir, n + 1);
	for (char *s = buf + 1;; s++) {
		if (*s == '/' || !*s) {
			char c = *s;

			*s = 0;
			if (mkdir(buf, 0755) < 0 && errno != EEXIST)
				return kq_err(-errno, "%s: %m", buf);
			*s = c;
			if (!c)
				break;
		}
	}
	return 0;
}

static int parent_dirs(const char *path)
{
	_cleanup_free_ char *dir = strdup(path);
	char *slash;

	if (!dir)
		return kq_err(-ENOMEM, "out of memory");
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = 0;
	return make_dirs(dir);
}

/* Writes path atomically with mode, creating its directory. */
static int write_mode(const char *path, const char *text, size_t len, mode_t mode)
{
	int r;

	if ((r = parent_dirs(path)) < 0 || (r = kq_write_file(path, text, len)) < 0)
		return r;
	if (chmod(path, mode) < 0)
		return kq_err(-errno, "%s: %m", path);
	return 0;
}

/* Reads a small text file; 0 with *ret NULL if it does not exist. */
static int read_small(const char *path, char **ret)
{
	uint8_t *buf = NULL;
	size_t len;
	int r = kq_read_file(path, SMALL_FILE_MAX, &buf, &len);

	*ret = NULL;
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (strlen((char *)buf) != len) {
		free(buf);
		return kq_err(-EBADMSG, "%s: not a text file", path);
	}
	*ret = (char *)buf;
	return 0;
}

static bool ours(const char *text)
{
	return text && strstr(text, MARKER);
}

/* True for the create_certs_tool* keys we own in swtpm_setup.conf. */
static bool cert_tool_line(const char *line, size_t n)
{
	static const char *const keys[] = { "create_certs_tool", "create_certs_tool_config",
					    "create_certs_tool_options" };
	size_t k = strspn(line, " \t"), e;

	line += k;
	n -= k;
	e = strcspn(line, " \t=");
	if (e > n)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (e == strlen(keys[i]) && strncmp(line, keys[i], e) == 0)
			return true;
	return false;
}

/* missing_rc: the script's exit status when the binary is gone. */
static int write_script(const char *path, const struct paths *p, const char *what, const char *cmd, int missing_rc)
{
	_cleanup_free_ char *old = NULL, *text = NULL;
	int r, n;

	if ((r = read_small(path, &old)) < 0)
		return r;
	if (old && !ours(old))
		return kq_err(-EEXIST, "%s exists and was not written by " VTPM_MGR "; move it away first", path);
	n = asprintf(&text,
		     "#!/bin/sh\n"
		     "# %s, as `" MARKER "` writes it (`kumquat-vtpm-mgr uninstall` removes it)\n"
		     "[ -x '%s' ] || exit %d\n"
		     "exec '%s' --config '%s' %s \"$@\"\n",
		     what, p->binary, missing_rc, p->binary, p->config, cmd);
	if (n < 0) {
		text = NULL;
		return kq_err(-ENOMEM, "out of memory");
	}
	return write_mode(path, text, (size_t)n, 0755);
}

static int install_swtpm_conf(const struct paths *p)
{
	_cleanup_free_ char *cur = NULL, *base = NULL, *text = NULL;
	size_t len = 0;
	FILE *f;
	int r;

	if ((r = read_small(p->swtpm_conf, &cur)) < 0)
		return r;
	if (ours(cur)) {
		/* installed before: start again from what was there then */
		if ((r = read_small(p->backup, &base)) < 0)
			return r;
	} else if (cur) {
		struct stat st;

		if (stat(p->swtpm_conf, &st) < 0)
			return kq_err(-errno, "%s: %m", p->swtpm_conf);
		if ((r = write_mode(p->backup, cur, strlen(cur), st.st_mode & 07777)) < 0)
			return r;
		printf("kept the previous %s as %s\n", p->swtpm_conf, p->backup);
		base = TAKE_PTR(cur);
	}
	f = open_memstream(&text, &len);
	if (!f)
		return kq_err(-ENOMEM, "out of memory");
	fprintf(f,
		"# swtpm_setup asks kumquat's host agent for vTPM EK certificates: written by\n"
		"# `" MARKER "`; `kumquat-vtpm-mgr uninstall` puts back %s.\n"
		"create_certs_tool = %s\n"
		"create_certs_tool_config = %s\n"
		"create_certs_tool_options = %s\n",
		p->backup, p->cert_tool, p->config, p->options);
	for (const char *s = base; s && *s;) {
		size_t n = strcspn(s, "\n");

		if (!cert_tool_line(s, n))
			fprintf(f, "%.*s\n", (int)n, s);
		s += n + (s[n] == '\n');
	}
	if (fclose(f) != 0 || !text)
		return kq_err(-ENOMEM, "out of memory");
	return write_mode(p->swtpm_conf, text, len, 0644);
}

static const char install_usage[] =
	"usage: " VTPM_MGR " [--config FILE] install [--swtpm-setup-conf PATH] [--hooks-dir DIR]\n"
	"           [--libexec-dir DIR] [--cert-tool-options PATH] [--binary PATH]\n"
	"Makes swtpm_setup get vTPM EK certificates from kumquat and installs libvirt's qemu hook:\n"
	"  --swtpm-setup-conf PATH   swtpm_setup's config (/etc/swtpm_setup.conf); the old one is\n"
	"                            kept as PATH.kumquat-orig\n"
	"  --hooks-dir DIR           libvirt's hooks (/etc/libvirt/hooks): DIR/qemu.d/kumquat\n"
	"  --libexec-dir DIR         where the cert tool script goes (/usr/libexec/kumquat)\n"
	"  --cert-tool-options PATH  the cert tool's options (/etc/kumquat/vtpm-cert-tool.options)\n"
	"  --binary PATH             the kumquat-vtpm-mgr the scripts run (this one)\n"
	"The config (--config, " VTPM_DEFAULT_CONFIG ") is written with the defaults if missing.\n"
	"libvirtd reads hooks at its start: restart it afterwards.\n";

int vtpm_install(int argc, char **argv)
{
	struct paths p;
	_cleanup_free_ char *opts_old = NULL;
	struct stat st;
	int r, rc = VTPM_EXIT_FAIL;

	r = parse_args(argc, argv, install_usage, &p);
	if (r != 0) {
		paths_free(&p);
		return r < 0 ? VTPM_EXIT_OK : r;
	}
	if (stat(p.config, &st) < 0) {
		if (errno != ENOENT) {
			vtpm_fail(VTPM_EXIT_FAIL, "%s: %m", p.config);
			goto out;
		}
		if (write_mode(p.config, config_text, sizeof(config_text) - 1, 0644) < 0) {
			vtpm_fail(VTPM_EXIT_FAIL, "%s", kq_errmsg());
			goto out;
		}
		printf("wrote %s\n", p.config);
	}
	if (read_small(p.options, &opts_old) < 0) {
		vtpm_fail(VTPM_EXIT_FAIL, "%s", kq_errmsg());
		goto out;
	}
	if (!opts_old) {
		if (write_mode(p.options, options_text, sizeof(options_text) - 1, 0644) < 0) {
			vtpm_fail(VTPM_EXIT_FAIL, "%s", kq_errmsg());
			goto out;
		}
		printf("wrote %s\n", p.options);
	}
	/* no certificate without the binary; but a hook that fails would stop every VM */
	if (write_script(p.cert_tool, &p, "swtpm_setup's create_certs_tool", "cert-tool", 1) < 0 ||
	    write_script(p.hook, &p, "libvirt's qemu hook (it never fails: a failing hook stops VMs)", "hook", 0) < 0 ||
	    install_swtpm_conf(&p) < 0) {
		vtpm_fail(VTPM_EXIT_FAIL, "%s", kq_errmsg());
		goto out;
	}
	printf("wrote %s\nwrote %s\nwrote %s\n", p.cert_tool, p.hook, p.swtpm_conf);
	printf("restart libvirtd (or virtqemud) so that it runs the hook\n");
	rc = VTPM_EXIT_OK;
out:
	paths_free(&p);
	return rc;
}

/* Removes path if we wrote it; says so. */
static int remove_ours(const char *path, const char *expect)
{
	_cleanup_free_ char *cur = NULL;
	int r = read_small(path, &cur);

	if (r < 0)
		return r;
	if (!cur)
		return 0;
	if (expect ? strcmp(cur, expect) != 0 : !ours(cur)) {
		printf("left %s: not written by " VTPM_MGR " (or changed since)\n", path);
		return 0;
	}
	if (unlink(path) < 0)
		return kq_err(-errno, "%s: %m", path);
	printf("removed %s\n", path);
	return 0;
}

static const char uninstall_usage[] =
	"usage: " VTPM_MGR " uninstall [--swtpm-setup-conf PATH] [--hooks-dir DIR] [--libexec-dir DIR]\n"
	"           [--cert-tool-options PATH]\n"
	"Undoes install: puts back the previous swtpm_setup config, removes the hook and the cert\n"
	"tool script. The vtpm-mgr config and the map stay.\n";

int vtpm_uninstall(int argc, char **argv)
{
	struct paths p;
	_cleanup_free_ char *cur = NULL;
	int r, rc = VTPM_EXIT_FAIL;

	r = parse_args(argc, argv, uninstall_usage, &p);
	if (r != 0) {
		paths_free(&p);
		return r < 0 ? VTPM_EXIT_OK : r;
	}
	if ((r = read_small(p.swtpm_conf, &cur)) < 0)
		goto fail;
	if (ours(cur)) {
		if (access(p.backup, F_OK) == 0) {
			if (rename(p.backup, p.swtpm_conf) < 0) {
				r = kq_err(-errno, "%s: %m", p.backup);
				goto fail;
			}
			printf("put back %s\n", p.swtpm_conf);
		} else if ((r = remove_ours(p.swtpm_conf, NULL)) < 0) {
			goto fail;
		}
	} else if (cur) {
		printf("left %s: not written by " VTPM_MGR "\n", p.swtpm_conf);
	}
	if ((r = remove_ours(p.hook, NULL)) < 0 || (r = remove_ours(p.cert_tool, NULL)) < 0 ||
	    (r = remove_ours(p.options, options_text)) < 0)
		goto fail;
	(void)rmdir(p.libexec_dir); /* if it is empty now */
	rc = VTPM_EXIT_OK;
	goto out;
fail:
	vtpm_fail(VTPM_EXIT_FAIL, "%s", kq_errmsg());
out:
	paths_free(&p);
	return rc;
}
