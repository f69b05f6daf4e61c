/* SPDX-License-Identifier: Apache-2.0 */
#include "db/db.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"

struct db {
	sqlite3 *h;
	pthread_mutex_t lock;
	struct db_cached {
		const char *sql;  /* the caller's string (compared by address, then by text) */
		sqlite3_stmt *s;
	} *cache;             /* one per literal: a fixed set, never evicted */
	size_t n_cache, cap_cache;
};

int db_err(sqlite3 *h, int rc, const char *what)
{
	int code;

	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED: code = -EBUSY; break;
	case SQLITE_NOMEM: code = -ENOMEM; break;
	case SQLITE_CONSTRAINT: code = -EEXIST; break;
	case SQLITE_FULL: code = -ENOSPC; break;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH: code = -EACCES; break;
	case SQLITE_CANTOPEN: code = -ENOENT; break;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB: code = -EBADMSG; break;
	default: code = -EIO; break;
	}
	return kq_err(code, "%s: %s", what, h ? sqlite3_errmsg(h) : sqlite3_errstr(rc));
}

int db_prepare(sqlite3 *h, const char *sql, sqlite3_stmt **ret)
{
	int rc = sqlite3_prepare_v2(h, sql, -1, ret, NULL);

	return rc == SQLITE_OK ? 0 : db_err(h, rc, "prepare");
}

static int exec(sqlite3 *h, const char *sql)
{
	int rc = sqlite3_exec(h, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : db_err(h, rc, "exec");
}

static int user_version(sqlite3 *h, int64_t *ret)
{
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int r = db_prepare(h, "PRAGMA user_version", &s);

	if (r < 0)
		return r;
	if (sqlite3_step(s) != SQLITE_ROW)
		return db_err(h, sqlite3_errcode(h), "user_version");
	*ret = sqlite3_column_int64(s, 0);
	return 0;
}

int db_open(const char *path, const char *const *migrations, size_t n, struct db **ret)
{
	struct db *db;
	int64_t version = 0;
	int rc, r;

	db = calloc(1, sizeof(*db));
	if (!db)
		return kq_err(-ENOMEM, "out of memory");
	pthread_mutex_init(&db->lock, NULL);
	/* create the file 0600 before SQLite does (it would use the umask) */
	if (strcmp(path, ":memory:") != 0) {
		int fd;

		if ((r = kq_mkdir_parents(path)) < 0)
			goto fail;
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0) {
			r = kq_err(-errno, "%s: %s", path, strerror(errno));
			goto fail;
		}
		close(fd);
	}
	rc = sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		r = db_err(db->h, rc, path);
		goto fail;
	}
	sqlite3_busy_timeout(db->h, 5000);
	if ((r = exec(db->h, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")) < 0 ||
	    (r = user_version(db->h, &version)) < 0)
		goto fail;
	if (version > (int64_t)n) {
		r = kq_err(-EPROTO, "%s: schema version %lld is newer than this program knows (%zu)", path,
			   (long long)version, n);
		goto fail;
	}
	for (size_t i = (size_t)version; i < n; i++) {
		char pragma[64];

		snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%zu;", i + 1);
		if ((r = exec(db->h, "BEGIN IMMEDIATE")) < 0)
			goto fail;
		/* another process may have migrated while we waited for the write lock */
		if ((r = user_version(db->h, &version)) < 0) {
			sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
			goto fail;
		}
		if (version > (int64_t)i) {
			sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
			i = (size_t)version - 1;
			continue;
		}
		if ((r = exec(db->h, migrations[i])) < 0 || (r = exec(db->h, pragma)) < 0 ||
		    (r = exec(db->h, "COMMIT")) < 0) {
			kq_err_ctx(r, "%s: migration %zu: ", path, i + 1);
			sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
			goto fail;
		}
	}
	*ret = db;
	return 0;
fail:
	sqlite3_close(db->h);
	pthread_mutex_destroy(&db->lock);
	free(db);
	return r;
}

static void cache_clear(struct db *db)
{
	for (size_t i = 0; i < db->n_cache; i++)
		sqlite3_finalize(db->cache[i].s);
	free(db->cache);
	db->cache = NULL;
	db->n_cache = db->cap_cache = 0;
}

int db_cached(struct db *db, const char *sql, sqlite3_stmt **ret)
{
	sqlite3_stmt *s = NULL;
	size_t i;
	int rc;

	for (i = 0; i < db->n_cache; i++)
		if (db->cache[i].sql == sql || strcmp(db->cache[i].sql, sql) == 0)
			break;
	if (i < db->n_cache) {
		s = db->cache[i].s;
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		*ret = s;
		return 0;
	}
	if (db->n_cache == db->cap_cache) {
		size_t cap = db->cap_cache ? 2 * db->cap_cache : 16;
		struct db_cached *c = reallocarray(db->cache, cap, sizeof(*c));

		if (!c)
			return kq_err(-ENOMEM, "out of memory");
		db->cache = c;
		db->cap_cache = cap;
	}
	rc = sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
	if (rc != SQLITE_OK)
		return db_err(db->h, rc, "prepare");
	db->cache[db->n_cache].sql = sql;
	db->cache[db->n_cache].s = s;
	db->n_cache++;
	*ret = s;
	return 0;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	cache_clear(db);
	sqlite3_close(db->h);
	pthread_mutex_destroy(&db->lock);
	free(db);
}

/* BEGIN / COMMIT run as often as the transactions: from the cache. */
static int step_cached(struct db *db, const char *sql)
{
	sqlite3_stmt *s;
	int rc, r = db_cached(db, sql, &s);

	if (r < 0)
		return r;
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : db_err(db->h, rc, sql);
}

int db_tx(struct db *db, int (*fn)(struct db *db, sqlite3 *h, void *userdata), void *userdata)
{
	int r;

	pthread_mutex_lock(&db->lock);
	r = step_cached(db, "BEGIN IMMEDIATE");
	if (r == 0) {
		r = fn(db, db->h, userdata);
		if (r >= 0) {
			int c = step_cached(db, "COMMIT");
			if (c < 0) {
				sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
				r = c;
			}
		} else {
			/* keep fn's message: rollback errors are secondary */
			sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
		}
	}
	pthread_mutex_unlock(&db->lock);
	return r;
}
