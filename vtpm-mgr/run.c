/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kumquat-vtpm-mgr run: follows libvirt's domain lifecycle events.
 *
 * One thread runs libvirt's default event loop: lifecycle events, the
 * connection's close callback, a reconnect timer, SIGTERM/SIGINT through a
 * signalfd, and (tests only) the --script file. Each event becomes one map
 * update; a second thread reports unreported rows to the host agent, woken
 * by every change and every retry_interval, so a slow host agent never holds
 * up libvirt's events.
 *
 * At start, and after every reconnect, all domains are listed and recorded
 * (events missed while disconnected are not replayed by libvirt), and rows
 * of domains libvirt no longer has become undefined.
 *
 * --script FILE exists for the integration test: libvirt's test driver
 * (test:///default) keeps its domains inside one connection, so another
 * process cannot define or start a domain this daemon would hear about. The
 * script's commands (define FILE, create FILE, start/shutdown/destroy/
 * undefine NAME, reconnect, echo TEXT, stop) run on the daemon's own connection from the
 * event loop, and their events come back through the same
 * virConnectDomainEventRegisterAny callback as real ones. It is refused for
 * any URI but test:///... A FIFO works as the script: commands run as they
 * are written.
 */
#include "vtpm-mgr.h"

#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "log/log.h"

#define MOD "vtpm-mgr"
#define BACKOFF_MAX 60 /* seconds between reconnect attempts, at most */
#define SCRIPT_LINE_MAX 4096

struct mgr {
	struct vtpm_config cfg;
	struct vm_map *map;
	bool read_write; /* --script defines and starts domains */
	virConnectPtr conn;
	int lifecycle_id;
	bool stopping;
	int sig_fd, sig_watch;
	int reconnect_timer;
	unsigned backoff;

	int script_fd, script_watch;
	char line[SCRIPT_LINE_MAX];
	size_t line_len;
	bool line_too_long;

	pthread_t reporter;
	bool reporter_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool kick, quit;
};

static void quiet(void *ud, virErrorPtr e)
{
	/* libvirt would print every error on stderr; we log the ones we handle */
	(void)ud;
	(void)e;
}

static const char *virt_err(void)
{
	const char *msg = virGetLastErrorMessage();

	return msg ? msg : "unknown libvirt error";
}

/* ---- the reporter thread ---- */

static void kick(struct mgr *m)
{
	pthread_mutex_lock(&m->lock);
	m->kick = true;
	pthread_cond_signal(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

static void *reporter(void *ud)
{
	struct mgr *m = ud;
	bool unreachable = false;

	pthread_mutex_lock(&m->lock);
	while (!m->quit) {
		struct timespec until;

		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += (time_t)m->cfg.retry_interval;
		while (!m->kick && !m->quit)
			if (pthread_cond_timedwait(&m->cond, &m->lock, &until) == ETIMEDOUT)
				break;
		if (m->quit)
			break;
		m->kick = false;
		pthread_mutex_unlock(&m->lock);
		(void)vm_report_pending(m->map, m->cfg.socket, &unreachable);
		pthread_mutex_lock(&m->lock);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

/* ---- domains ---- */

/* The domain's UUID (lowercase) and name, if the name is one we record. */
static int identify(virDomainPtr dom, char uuid[37], const char **ret_name)
{
	char u[VIR_UUID_STRING_BUFLEN];
	const char *name = virDomainGetName(dom);

	uuid[0] = 0;
	if (virDomainGetUUIDString(dom, u) < 0 || !kq_uuid_normalize(u, uuid)) {
		uuid[0] = 0;
		log_error(MOD, "a domain without a readable UUID: %s", virt_err());
		return -EIO;
	}
	if (!vm_name_valid(name)) {
		log_warn(MOD, "domain %s: its name is over %u bytes or has control characters; not recorded", uuid,
			 VM_NAME_MAX);
		return -EINVAL;
	}
	*ret_name = name;
	return 0;
}

/* The vTPM state location from the domain's XML; false if the XML could not be read. */
static bool state_dir(struct mgr *m, virDomainPtr dom, const char *uuid, char **ret)
{
	_cleanup_free_ char *xml = virDomainGetXMLDesc(dom, 0);
	struct dom_info d = {};

	*ret = NULL;
	if (!xml) {
		log_debug(MOD, "domain %s: no XML (%s)", uuid, virt_err());
		return false;
	}
	if (domxml_parse(xml, strlen(xml), m->cfg.swtpm_dir, &d) < 0) {
		log_warn(MOD, "domain %s: %s", uuid, kq_errmsg());
		return false;
	}
	*ret = TAKE_PTR(d.vtpm_dir);
	dom_info_free(&d);
	return true;
}

static void changed(struct mgr *m, int r, const char *uuid, const char *name, enum vm_state state, const char *why)
{
	if (r < 0)
		log_error(MOD, "VM %s (%s): %s", uuid, name, kq_errmsg());
	else if (r > 0) {
		log_info(MOD, "VM %s (%s) is %s (%s)", uuid, name, vm_state_name(state), why);
		kick(m);
	}
}

struct listing {
	bool active, paused;
};

static enum vm_state listing_next(enum vm_state cur, const void *ud)
{
	const struct listing *l = ud;

	return vm_state_after_listing(cur, l->active, l->paused);
}

/*
 * Records a domain as libvirt lists it now. Its UUID goes to uuid (for
 * reconcile) as soon as it is known, even if recording fails later.
 */
static int record_domain(struct mgr *m, virDomainPtr dom, char uuid[37])
{
	_cleanup_free_ char *dir = NULL;
	struct listing l = {};
	const char *name;
	enum vm_state state;
	bool set_dir;
	int st, reason, r;

	if ((r = identify(dom, uuid, &name)) < 0)
		return r;
	if (virDomainGetState(dom, &st, &reason, 0) < 0) {
		log_warn(MOD, "domain %s: no state: %s", uuid, virt_err());
		return -EIO;
	}
	l.active = virDomainIsActive(dom) == 1;
	l.paused = st == VIR_DOMAIN_PAUSED;
	set_dir = state_dir(m, dom, uuid, &dir);
	r = vm_map_update(m->map,
			  &(struct vm_update){ .uuid = uuid, .name = name, .set_dir = set_dir, .dir = dir,
					       .next = listing_next, .ud = &l },
			  &state);
	changed(m, r, uuid, name, state, "listed");
	return r;
}

static enum vm_state gone_next(enum vm_state cur, const void *ud)
{
	(void)ud;
	return cur == VM_MIGRATED_OUT || cur == VM_UNDEFINED ? cur : VM_UNDEFINED;
}

static int cmp_uuid(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Records every domain libvirt has, and marks undefined those it no longer has. */
static void reconcile(struct mgr *m)
{
	virDomainPtr *doms = NULL;
	struct vm_row *rows = NULL;
	char (*seen)[37] = NULL;
	size_t n_rows = 0, n_seen = 0;
	int n, r;

	n = virConnectListAllDomains(m->conn, &doms, 0);
	if (n < 0) {
		log_error(MOD, "listing the domains: %s", virt_err());
		return;
	}
	seen = calloc((size_t)n + 1, sizeof(*seen));
	for (int i = 0; i < n; i++) {
		/* a domain that could not be recorded still exists: its row stays */
		if (seen) {
			(void)record_domain(m, doms[i], seen[n_seen]);
			if (seen[n_seen][0])
				n_seen++;
		}
		virDomainFree(doms[i]);
	}
	free(doms);
	if (!seen) {
		log_error(MOD, "out of memory");
		return;
	}
	qsort(seen, n_seen, sizeof(*seen), cmp_uuid);
	r = vm_map_list(m->map, false, &rows, &n_rows);
	if (r < 0)
		log_error(MOD, "map: %s", kq_errmsg());
	for (size_t i = 0; r >= 0 && i < n_rows; i++) {
		enum vm_state state;
		int c;

		if (rows[i].state == VM_UNDEFINED || rows[i].state == VM_MIGRATED_OUT ||
		    bsearch(rows[i].uuid, seen, n_seen, sizeof(*seen), cmp_uuid))
			continue;
		c = vm_map_update(m->map, &(struct vm_update){ .uuid = rows[i].uuid, .next = gone_next }, &state);
		changed(m, c, rows[i].uuid, rows[i].name, state, "no longer listed");
	}
	vm_rows_free(rows, n_rows);
	free(seen);
	log_info(MOD, "%s lists %d domain(s)", m->cfg.uri, n);
}

/* ---- events ---- */

static const char *event_name(int event)
{
	static const char *const names[] = { "defined", "undefined", "started", "suspended", "resumed",
					     "stopped", "shutdown", "pmsuspended", "crashed" };

	return event >= 0 && (size_t)event < ARRAY_SIZE(names) ? names[event] : "event";
}

struct event {
	int event, detail, persistent;
};

static enum vm_state event_next(enum vm_state cur, const void *ud)
{
	const struct event *e = ud;

	return vm_state_after_event(cur, e->event, e->detail, e->persistent);
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
	struct mgr *m = opaque;
	_cleanup_free_ char *dir = NULL;
	struct event e = { .event = event, .detail = detail, .persistent = -1 };
	bool set_dir = false;
	const char *name;
	enum vm_state state;
	char uuid[37], why[48];
	int r;

	(void)conn;
	if (identify(dom, uuid, &name) < 0)
		return 0;
	log_debug(MOD, "event %s/%d for %s (%s)", event_name(event), detail, uuid, name);
	/* a new definition or a start may bring another TPM (or none) */
	if (event == VIR_DOMAIN_EVENT_DEFINED || event == VIR_DOMAIN_EVENT_STARTED)
		set_dir = state_dir(m, dom, uuid, &dir);
	if (event == VIR_DOMAIN_EVENT_STOPPED && detail != VIR_DOMAIN_EVENT_STOPPED_MIGRATED) {
		e.persistent = virDomainIsPersistent(dom);
		if (e.persistent < 0) {
			virErrorPtr err = virGetLastError();

			/* a transient domain is gone by the time its STOPPED event arrives */
			e.persistent = err && err->code == VIR_ERR_NO_DOMAIN ? 0 : -1;
		}
	}
	r = vm_map_update(m->map,
			  &(struct vm_update){ .uuid = uuid, .name = name, .set_dir = set_dir, .dir = dir,
					       .next = event_next, .ud = &e },
			  &state);
	if (r == 0 && state == VM_NONE) {
		/* an event that says nothing about a domain we have not seen: look at it */
		char u[37];

		(void)record_domain(m, dom, u);
		return 0;
	}
	snprintf(why, sizeof(why), "event %s/%d", event_name(event), detail);
	changed(m, r, uuid, name, state, why);
	return 0;
}

/* ---- the connection ---- */

static void schedule_reconnect(struct mgr *m, unsigned seconds)
{
	virEventUpdateTimeout(m->reconnect_timer, (int)(seconds * 1000));
}

static void on_close(virConnectPtr conn, int reason, void *opaque)
{
	static const char *const reasons[] = { "error", "end of file", "keepalive timeout", "client" };
	struct mgr *m = opaque;

	(void)conn;
	log_warn(MOD, "the connection to %s closed (%s); reconnecting", m->cfg.uri,
		 reason >= 0 && (size_t)reason < ARRAY_SIZE(reasons) ? reasons[reason] : "unknown");
	/* not here: libvirt still holds the connection while it calls us */
	schedule_reconnect(m, 0);
}

static void drop_connection(struct mgr *m)
{
	if (!m->conn)
		return;
	if (m->lifecycle_id >= 0)
		virConnectDomainEventDeregisterAny(m->conn, m->lifecycle_id);
	virConnectUnregisterCloseCallback(m->conn, on_close);
	virConnectClose(m->conn);
	m->conn = NULL;
	m->lifecycle_id = -1;
}

static int connect_libvirt(struct mgr *m)
{
	virConnectPtr c = m->read_write ? virConnectOpen(m->cfg.uri) : virConnectOpenReadOnly(m->cfg.uri);
	int id;

	if (!c)
		return kq_err(-ECONNREFUSED, "cannot connect to %s: %s", m->cfg.uri, virt_err());
	/* local drivers (test:///) have neither: their connection cannot drop */
	if (virConnectRegisterCloseCallback(c, on_close, m, NULL) < 0)
		log_debug(MOD, "no close callback: %s", virt_err());
	if (virConnectSetKeepAlive(c, 5, 3) < 0)
		log_debug(MOD, "no keepalive: %s", virt_err());
	id = virConnectDomainEventRegisterAny(c, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
					      VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), m, NULL);
	if (id < 0) {
		int r = kq_err(-EIO, "cannot follow %s's domain events: %s", m->cfg.uri, virt_err());

		virConnectUnregisterCloseCallback(c, on_close);
		virConnectClose(c);
		return r;
	}
	m->conn = c;
	m->lifecycle_id = id;
	/* events arrive from now on, so a domain changing while we list is seen either way */
	reconcile(m);
	return 0;
}

static void on_reconnect_timer(int timer, void *opaque)
{
	struct mgr *m = opaque;

	drop_connection(m);
	if (connect_libvirt(m) == 0) {
		log_info(MOD, "connected to %s again", m->cfg.uri);
		m->backoff = 0;
		virEventUpdateTimeout(timer, -1);
		return;
	}
	m->backoff = m->backoff ? m->backoff * 2 : 1;
	if (m->backoff > BACKOFF_MAX)
		m->backoff = BACKOFF_MAX;
	log_warn(MOD, "%s; next try in %u s", kq_errmsg(), m->backoff);
	schedule_reconnect(m, m->backoff);
}

static void on_signal(int watch, int fd, int events, void *opaque)
{
	struct mgr *m = opaque;
	struct signalfd_siginfo si;

	(void)watch;
	(void)events;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		log_info(MOD, "stopping (signal %u)", si.ssi_signo);
		m->stopping = true;
	}
}

/* ---- --script (tests) ---- */

static void end_script(struct mgr *m)
{
	if (m->script_watch >= 0)
		virEventRemoveHandle(m->script_watch);
	if (m->script_fd >= 0)
		close(m->script_fd);
	m->script_watch = m->script_fd = -1;
}

static void script_line(struct mgr *m, char *line)
{
	char *arg = strchr(line, ' ');
	virDomainPtr dom = NULL;
	int r = 0;

	if (arg)
		*arg++ = 0;
	if (!line[0] || line[0] == '#')
		return;
	if (strcmp(line, "echo") == 0) {
		log_info(MOD, "script: %s", arg ? arg : "");
		return;
	}
	if (strcmp(line, "stop") == 0) {
		m->stopping = true;
		return;
	}
	if (strcmp(line, "reconnect") == 0) {
		log_info(MOD, "script: dropping the connection");
		schedule_reconnect(m, 0);
		return;
	}
	if (!arg || !m->conn) {
		log_error(MOD, "script: '%s' needs an argument and a connection", line);
		return;
	}
	if (strcmp(line, "define") == 0 || strcmp(line, "create") == 0) {
		_cleanup_free_ uint8_t *xml = NULL;
		size_t len;

		if (kq_read_file(arg, DOMXML_MAX, &xml, &len) < 0) {
			log_error(MOD, "script: %s: %s", line, kq_errmsg());
			return;
		}
		/* create: a transient domain, started at once */
		dom = line[0] == 'd' ? virDomainDefineXML(m->conn, (const char *)xml)
				     : virDomainCreateXML(m->conn, (const char *)xml, 0);
		r = dom ? 0 : -1;
	} else {
		dom = virDomainLookupByName(m->conn, arg);
		if (!dom)
			r = -1;
		else if (strcmp(line, "start") == 0)
			r = virDomainCreate(dom);
		else if (strcmp(line, "shutdown") == 0)
			r = virDomainShutdown(dom);
		else if (strcmp(line, "destroy") == 0)
			r = virDomainDestroy(dom);
		else if (strcmp(line, "undefine") == 0)
			r = virDomainUndefine(dom);
		else {
			log_error(MOD, "script: unknown command '%s'", line);
			virDomainFree(dom);
			return;
		}
	}
	if (r < 0)
		log_error(MOD, "script: %s %s: %s", line, arg, virt_err());
	else
		log_info(MOD, "script: %s %s: done", line, arg);
	if (dom)
		virDomainFree(dom);
}

static void on_script(int watch, int fd, int events, void *opaque)
{
	struct mgr *m = opaque;
	char buf[1024];
	ssize_t n;

	(void)watch;
	(void)events;
	n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		if (n < 0)
			log_error(MOD, "script: %m");
		log_info(MOD, "script: end");
		end_script(m);
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			m->line[m->line_len] = 0;
			if (m->line_too_long)
				log_error(MOD, "script: a line over %u bytes", SCRIPT_LINE_MAX - 1);
			else
				script_line(m, m->line);
			m->line_len = 0;
			m->line_too_long = false;
		} else if (m->line_len < sizeof(m->line) - 1) {
			m->line[m->line_len++] = buf[i];
		} else {
			m->line_too_long = true;
		}
	}
}

static int open_script(struct mgr *m, const char *path)
{
	struct stat st;
	int fd;

	if (stat(path, &st) < 0)
		return kq_err(-errno, "script %s: %m", path);
	/* a FIFO opened for writing too never reads end-of-file when the test's writers come and go */
	fd = open(path, (S_ISFIFO(st.st_mode) ? O_RDWR : O_RDONLY) | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return kq_err(-errno, "script %s: %m", path);
	m->script_fd = fd;
	m->script_watch = virEventAddHandle(fd, VIR_EVENT_HANDLE_READABLE, on_script, m, NULL);
	if (m->script_watch < 0)
		return kq_err(-EIO, "script %s: %s", path, virt_err());
	return 0;
}

/* ---- main ---- */

static const char usage_text[] =
	"usage: " VTPM_MGR " [--config FILE] run [--script FILE]\n"
	"Follows libvirt's domain lifecycle events ([libvirt] uri), keeps the VM map and reports\n"
	"each change to the host agent. Stops on SIGTERM or SIGINT.\n"
	"  --script FILE   tests only (test:/// URIs): run define FILE, create FILE (transient),\n"
	"                  start NAME, shutdown NAME, destroy NAME, undefine NAME, reconnect, echo TEXT,\n"
	"                  stop from FILE (or a FIFO) on the daemon's own connection\n";

int vtpm_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "script", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct mgr m = {
		.lifecycle_id = -1, .sig_fd = -1, .sig_watch = -1, .reconnect_timer = -1,
		.script_fd = -1, .script_watch = -1,
	};
	pthread_condattr_t ca;
	const char *script = NULL;
	sigset_t set;
	int c, r, rc = VTPM_EXIT_FAIL;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 's': script = optarg; break;
		case 'h': fputs(usage_text, stdout); return VTPM_EXIT_OK;
		default: return vtpm_fail(VTPM_EXIT_USAGE, "run: bad option (see run --help)");
		}
	}
	if (optind != argc)
		return vtpm_fail(VTPM_EXIT_USAGE, "run takes no arguments");
	if (vtpm_config_load(vtpm_config_path, &m.cfg) < 0)
		return vtpm_fail(VTPM_EXIT_FAIL, "config: %s", kq_errmsg());
	if (script && strncmp(m.cfg.uri, "test:///", 8) != 0) {
		vtpm_config_free(&m.cfg);
		return vtpm_fail(VTPM_EXIT_USAGE, "run: --script is for tests, with a test:/// URI only");
	}
	m.read_write = script != NULL;

	/* signals are read from a signalfd in the loop; block them before any thread starts */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	virSetErrorFunc(NULL, quiet);
	pthread_mutex_init(&m.lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m.cond, &ca);
	pthread_condattr_destroy(&ca);

	if ((r = vm_map_open(m.cfg.database, &m.map)) < 0) {
		vtpm_fail(VTPM_EXIT_FAIL, "map %s: %s", m.cfg.database, kq_errmsg());
		goto out;
	}
	if (virEventRegisterDefaultImpl() < 0) {
		vtpm_fail(VTPM_EXIT_FAIL, "libvirt's event loop: %s", virt_err());
		goto out;
	}
	m.sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (m.sig_fd < 0 ||
	    (m.sig_watch = virEventAddHandle(m.sig_fd, VIR_EVENT_HANDLE_READABLE, on_signal, &m, NULL)) < 0 ||
	    (m.reconnect_timer = virEventAddTimeout(-1, on_reconnect_timer, &m, NULL)) < 0) {
		vtpm_fail(VTPM_EXIT_FAIL, "setting up the event loop: %m");
		goto out;
	}
	if (script && open_script(&m, script) < 0) {
		vtpm_fail(VTPM_EXIT_FAIL, "%s", kq_errmsg());
		goto out;
	}
	if ((r = pthread_create(&m.reporter, NULL, reporter, &m)) != 0) {
		vtpm_fail(VTPM_EXIT_FAIL, "cannot start the reporter thread: %s", strerror(r));
		goto out;
	}
	m.reporter_started = true;
	/* a daemon that cannot connect at start says so; systemd restarts it */
	if (connect_libvirt(&m) < 0) {
		vtpm_fail(VTPM_EXIT_FAIL, "%s", kq_errmsg());
		goto out;
	}
	kick(&m); /* whatever an earlier run or the hook could not report */
	log_info(MOD, "following %s; map %s; host agent %s", m.cfg.uri, m.cfg.database, m.cfg.socket);
	kq_sd_notify("READY=1");
	while (!m.stopping)
		if (virEventRunDefaultImpl() < 0) {
			log_error(MOD, "libvirt's event loop failed: %s", virt_err());
			goto out;
		}
	rc = VTPM_EXIT_OK;
out:
	drop_connection(&m);
	if (m.reporter_started) {
		pthread_mutex_lock(&m.lock);
		m.quit = true;
		pthread_cond_signal(&m.cond);
		pthread_mutex_unlock(&m.lock);
		pthread_join(m.reporter, NULL);
	}
	end_script(&m);
	if (m.sig_watch >= 0)
		virEventRemoveHandle(m.sig_watch);
	if (m.reconnect_timer >= 0)
		virEventRemoveTimeout(m.reconnect_timer);
	if (m.sig_fd >= 0)
		close(m.sig_fd);
	vm_map_close(m.map);
	pthread_cond_destroy(&m.cond);
	pthread_mutex_destroy(&m.lock);
	vtpm_config_free(&m.cfg);
	return rc;
}
