/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VM map in SQLite. `run` and the hook (run by libvirt, a process per
 * call) write it concurrently: every change is a read-modify-write inside one
 * BEGIN IMMEDIATE transaction, so the state transition always starts from
 * what is stored. A row's generation tells the reporter whether the row
 * changed again while its report was on the way.
 */
#include "vtpm-mgr.h"

#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "db/db.h"
#include "json/json.h"

struct vm_map {
	struct db *db;
};

static const char *const migrations[] = {
	/* 1 */
	"CREATE TABLE vms ("
	"  uuid TEXT PRIMARY KEY, name TEXT NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN ('defined', 'running', 'stopped', 'undefined',"
	"                                       'migrating_in', 'migrated_out')),"
	"  vtpm_dir TEXT, ek_pub BLOB, ek_cert BLOB, updated INTEGER NOT NULL,"
	"  gen INTEGER NOT NULL DEFAULT 1, reported INTEGER NOT NULL DEFAULT 0);",
};

bool vm_name_valid(const char *s)
{
	size_t n = s ? strnlen(s, VM_NAME_MAX + 1) : 0;

	if (n == 0 || n > VM_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '/')
			return false;
	return true;
}

bool vm_path_valid(const char *s)
{
	size_t n = s ? strnlen(s, VM_PATH_MAX + 1) : 0;

	if (n == 0 || n > VM_PATH_MAX || s[0] != '/')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

void vm_row_clear(struct vm_row *r)
{
	if (!r)
		return;
	free(r->name);
	free(r->vtpm_dir);
	free(r->ek_pub);
	free(r->ek_cert);
	memset(r, 0, sizeof(*r));
}

void vm_rows_free(struct vm_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		vm_row_clear(&rows[i]);
	free(rows);
}

int vm_map_open(const char *path, struct vm_map **ret)
{
	struct vm_map *m;
	int r;

	/* the hook may run, from libvirt, before the service has ever started:
	 * db_open makes the map's directory */
	m = calloc(1, sizeof(*m));
	if (!m)
		return kq_err(-ENOMEM, "out of memory");
	r = db_open(path, migrations, ARRAY_SIZE(migrations), &m->db);
	if (r < 0) {
		free(m);
		return r;
	}
	*ret = m;
	return 0;
}

void vm_map_close(struct vm_map *m)
{
	if (!m)
		return;
	db_close(m->db);
	free(m);
}

static int dup_blob(sqlite3_stmt *s, int col, uint8_t **ret, size_t *ret_len)
{
	const void *p = sqlite3_column_blob(s, col);
	int n = sqlite3_column_bytes(s, col);

	*ret = NULL;
	*ret_len = 0;
	if (!p || n <= 0)
		return 0;
	*ret = malloc((size_t)n);
	if (!*ret)
		return kq_err(-ENOMEM, "out of memory");
	memcpy(*ret, p, (size_t)n);
	*ret_len = (size_t)n;
	return 0;
}

#define ROW_COLUMNS "uuid, name, state, vtpm_dir, ek_pub, ek_cert, updated, gen, reported"

/* Fills r from a row selected with ROW_COLUMNS. */
static int read_row(sqlite3_stmt *s, struct vm_row *r)
{
	const char *uuid = (const char *)sqlite3_column_text(s, 0);
	const char *name = (const char *)sqlite3_column_text(s, 1);
	const char *dir = (const char *)sqlite3_column_text(s, 3);

	memset(r, 0, sizeof(*r));
	if (!uuid || !kq_uuid_normalize(uuid, r->uuid) || !name ||
	    vm_state_from_name((const char *)sqlite3_column_text(s, 2), &r->state) < 0)
		return kq_err(-EBADMSG, "the map holds a malformed row");
	r->name = strdup(name);
	r->vtpm_dir = dir ? strdup(dir) : NULL;
	if (!r->name || (dir && !r->vtpm_dir) || dup_blob(s, 4, &r->ek_pub, &r->ek_pub_len) < 0 ||
	    dup_blob(s, 5, &r->ek_cert, &r->ek_cert_len) < 0) {
		vm_row_clear(r);
		return kq_err(-ENOMEM, "out of memory");
	}
	r->updated = sqlite3_column_int64(s, 6);
	r->gen = sqlite3_column_int64(s, 7);
	r->reported = sqlite3_column_int(s, 8) != 0;
	return 0;
}

static int get_row(sqlite3 *h, const char *uuid, struct vm_row *ret)
{
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int r, rc;

	r = db_prepare(h, "SELECT " ROW_COLUMNS " FROM vms WHERE uuid = ?", &s);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, uuid, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return db_err(h, rc, "vms");
	return read_row(s, ret);
}

struct update_ctx {
	const struct vm_update *u;
	enum vm_state state;
	int changed;
};

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int update_tx(struct db *db, sqlite3 *h, void *ud)
{
	struct update_ctx *c = ud;
	const struct vm_update *u = c->u;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	struct vm_row cur = {};
	const char *name, *dir;
	enum vm_state next;
	int r, rc;

	(void)db;
	r = get_row(h, u->uuid, &cur);
	if (r == -ENOENT)
		r = 0; /* a VM the map has not seen: cur.state is VM_NONE */
	else if (r < 0)
		return r;
	next = u->next(cur.state, u->ud);
	c->state = next == VM_NONE ? cur.state : next;
	if (next == VM_NONE)
		goto out;
	name = u->name ? u->name : cur.name;
	dir = u->set_dir ? u->dir : cur.vtpm_dir;
	if (!name) {
		r = kq_err(-EINVAL, "VM %s: a new row needs a name", u->uuid);
		goto out;
	}
	if (cur.state != VM_NONE && next == cur.state && strcmp(name, cur.name) == 0 && same(dir, cur.vtpm_dir))
		goto out; /* nothing to record, nothing to report */
	r = db_prepare(h,
		       "INSERT INTO vms (uuid, name, state, vtpm_dir, updated) VALUES (?1, ?2, ?3, ?4, ?5) "
		       "ON CONFLICT (uuid) DO UPDATE SET name = ?2, state = ?3, vtpm_dir = ?4, updated = ?5,"
		       "  gen = gen + 1, reported = 0",
		       &s);
	if (r < 0)
		goto out;
	sqlite3_bind_text(s, 1, u->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, vm_state_name(next), -1, SQLITE_STATIC);
	if (dir)
		sqlite3_bind_text(s, 4, dir, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 4);
	sqlite3_bind_int64(s, 5, (int64_t)time(NULL));
	rc = sqlite3_step(s);
	if (rc != SQLITE_DONE) {
		r = db_err(h, rc, "vms");
		goto out;
	}
	c->changed = 1;
	r = 0;
out:
	vm_row_clear(&cur);
	return r;
}

int vm_map_update(struct vm_map *m, const struct vm_update *u, enum vm_state *ret_state)
{
	struct update_ctx c = { .u = u };
	char lower[37];
	int r;

	if (!kq_uuid_normalize(u->uuid, lower) || strcmp(lower, u->uuid) != 0)
		return kq_err(-EINVAL, "'%.40s' is not a lowercase UUID", u->uuid);
	if ((u->name && !vm_name_valid(u->name)) || (u->set_dir && u->dir && !vm_path_valid(u->dir)))
		return kq_err(-EINVAL, "VM %s: the name or the vTPM state location is not valid", u->uuid);
	r = db_tx(m->db, update_tx, &c);
	if (r < 0)
		return r;
	if (ret_state)
		*ret_state = c.state;
	return c.changed;
}

struct get_ctx {
	const char *uuid;
	struct vm_row *row;
};

static int get_tx(struct db *db, sqlite3 *h, void *ud)
{
	struct get_ctx *c = ud;

	(void)db;
	return get_row(h, c->uuid, c->row);
}

int vm_map_get(struct vm_map *m, const char *uuid, struct vm_row *ret)
{
	int r = db_tx(m->db, get_tx, &(struct get_ctx){ .uuid = uuid, .row = ret });

	if (r == -ENOENT)
		return kq_err(-ENOENT, "no VM %.40s in the map", uuid);
	return r;
}

struct list_ctx {
	bool unreported;
	struct vm_row *rows;
	size_t n;
};

static int list_tx(struct db *db, sqlite3 *h, void *ud)
{
	struct list_ctx *c = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	size_t cap = 0;
	int r, rc;

	(void)db;
	r = db_prepare(h,
		       c->unreported ? "SELECT " ROW_COLUMNS " FROM vms WHERE reported = 0 ORDER BY updated, rowid"
				     : "SELECT " ROW_COLUMNS " FROM vms ORDER BY updated, rowid",
		       &s);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (c->n == VM_MAP_MAX_ROWS)
			return kq_err(-E2BIG, "the map holds more than %u VMs", VM_MAP_MAX_ROWS);
		if (c->n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct vm_row *p = reallocarray(c->rows, ncap, sizeof(*p));

			if (!p)
				return kq_err(-ENOMEM, "out of memory");
			c->rows = p;
			cap = ncap;
		}
		if ((r = read_row(s, &c->rows[c->n])) < 0)
			return r;
		c->n++;
	}
	return rc == SQLITE_DONE ? 0 : db_err(h, rc, "vms");
}

int vm_map_list(struct vm_map *m, bool unreported_only, struct vm_row **ret, size_t *ret_n)
{
	struct list_ctx c = { .unreported = unreported_only };
	int r = db_tx(m->db, list_tx, &c);

	if (r < 0) {
		vm_rows_free(c.rows, c.n);
		return r;
	}
	*ret = c.rows;
	*ret_n = c.n;
	return 0;
}

struct mark_ctx {
	const char *uuid;
	int64_t gen;
};

static int mark_tx(struct db *db, sqlite3 *h, void *ud)
{
	struct mark_ctx *c = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int r, rc;

	(void)db;
	r = db_prepare(h, "UPDATE vms SET reported = 1 WHERE uuid = ? AND gen = ?", &s);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, c->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, c->gen);
	rc = sqlite3_step(s);
	return rc == SQLITE_DONE ? 0 : db_err(h, rc, "vms");
}

int vm_map_mark_reported(struct vm_map *m, const char *uuid, int64_t gen)
{
	return db_tx(m->db, mark_tx, &(struct mark_ctx){ .uuid = uuid, .gen = gen });
}

struct ek_ctx {
	const char *uuid;
	const uint8_t *pub, *cert;
	size_t pub_len, cert_len;
};

static int ek_tx(struct db *db, sqlite3 *h, void *ud)
{
	struct ek_ctx *c = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int r, rc;

	(void)db;
	r = db_prepare(h,
		       "UPDATE vms SET ek_pub = coalesce(?2, ek_pub), ek_cert = coalesce(?3, ek_cert) WHERE uuid = ?1",
		       &s);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, c->uuid, -1, SQLITE_STATIC);
	if (c->pub)
		sqlite3_bind_blob(s, 2, c->pub, (int)c->pub_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 2);
	if (c->cert)
		sqlite3_bind_blob(s, 3, c->cert, (int)c->cert_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 3);
	rc = sqlite3_step(s);
	if (rc != SQLITE_DONE)
		return db_err(h, rc, "vms");
	return sqlite3_changes(h) == 1 ? 0 : kq_err(-ENOENT, "no VM %.40s in the map", c->uuid);
}

int vm_map_set_ek(struct vm_map *m, const char *uuid, const uint8_t *ek_pub, size_t ek_pub_len,
		  const uint8_t *ek_cert, size_t ek_cert_len)
{
	/* a TPM2B_PUBLIC and an EK certificate are a few KiB at most */
	if (ek_pub_len > 65536 || ek_cert_len > 65536)
		return kq_err(-E2BIG, "EK or EK certificate over 64 KiB");
	return db_tx(m->db, ek_tx,
		     &(struct ek_ctx){ .uuid = uuid, .pub = ek_pub, .pub_len = ek_pub_len, .cert = ek_cert,
				       .cert_len = ek_cert_len });
}

struct json_object *vm_row_to_json(const struct vm_row *r)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "uuid", json_object_new_string(r->uuid));
	json_object_object_add(o, "name", json_object_new_string(r->name));
	json_object_object_add(o, "state", json_object_new_string(vm_state_name(r->state)));
	json_object_object_add(o, "vtpm_dir", r->vtpm_dir ? json_object_new_string(r->vtpm_dir) : NULL);
	json_object_object_add(o, "reported", json_object_new_boolean(r->reported));
	json_object_object_add(o, "updated", json_object_new_int64(r->updated));
	if (r->ek_pub)
		json_object_object_add(o, "ek_pub", json_new_base64(r->ek_pub, r->ek_pub_len));
	if (r->ek_cert)
		json_object_object_add(o, "ek_cert", json_new_base64(r->ek_cert, r->ek_cert_len));
	return o;
}
