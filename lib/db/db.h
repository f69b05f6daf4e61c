/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/db: SQLite for the daemons' state. A database is opened in WAL mode with
 * a busy timeout, foreign keys on, and its schema brought to the latest version
 * by numbered migrations recorded in PRAGMA user_version. SQLite errors become
 * negative errno codes with the SQLite message (lib/util convention).
 *
 * One struct db may be used from several threads: every call takes the
 * handle's mutex, and db_tx() runs a function inside one transaction.
 */
#ifndef KQ_DB_H
#define KQ_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

struct db;

/*
 * Opens (creating, mode 0600) the database at path and applies migrations[i]
 * for every i >= the stored version, each in its own transaction. ":memory:"
 * is fine for tests. Caller frees with db_close.
 */
int db_open(const char *path, const char *const *migrations, size_t n_migrations, struct db **ret);
void db_close(struct db *db);

/* Runs fn(db, sqlite3 handle, userdata) in a transaction (BEGIN IMMEDIATE);
 * commits if it returns >= 0, rolls back otherwise. Returns fn's result. */
int db_tx(struct db *db, int (*fn)(struct db *db, sqlite3 *h, void *userdata), void *userdata);

/* Maps a SQLite result code to -errno with the handle's message; SQLITE_OK/ROW/DONE map to 0. */
int db_err(sqlite3 *h, int rc, const char *what);

/* Prepares sql on h; caller finalizes (sqlite3_finalize accepts NULL). */
int db_prepare(sqlite3 *h, const char *sql, sqlite3_stmt **ret);

static inline void db_stmt_freep(sqlite3_stmt **s) { sqlite3_finalize(*s); }

/*
 * A prepared statement for sql kept with db for reuse, reset and without
 * bindings: for the statements a daemon runs thousands of times a second.
 * Only inside db_tx's fn (the handle's mutex is held); sql must be a string
 * that lives as long as db (a literal). Do not finalize it; reset it when
 * done (db_stmt_resetp) so no read stays open after the transaction.
 */
int db_cached(struct db *db, const char *sql, sqlite3_stmt **ret);

static inline void db_stmt_resetp(sqlite3_stmt **s)
{
	if (*s)
		sqlite3_reset(*s);
}

#endif
