/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/db.h"
#include "util/util.h"

static const char *const v1[] = {
	"CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL);",
};
static const char *const v2[] = {
	"CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL);",
	"ALTER TABLE t ADD COLUMN w TEXT;",
};

static int insert(struct db *db, sqlite3 *h, void *ud)
{
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int r = db_prepare(h, "INSERT INTO t (k, v) VALUES (?, ?)", &s);

	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, ud, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, 1);
	return db_err(h, sqlite3_step(s), "insert");
}

static int insert_then_fail(struct db *db, sqlite3 *h, void *ud)
{
	int r = insert(db, h, ud);

	return r < 0 ? r : kq_err(-EPERM, "refused after writing");
}

static int count(struct db *db, sqlite3 *h, void *ud)
{
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int r = db_prepare(h, "SELECT count(*) FROM t", &s);

	if (r < 0)
		return r;
	if (sqlite3_step(s) != SQLITE_ROW)
		return db_err(h, sqlite3_errcode(h), "count");
	return sqlite3_column_int(s, 0);
}

static void test_migrate_and_tx(void **state)
{
	char dir[] = "/tmp/kq-db-XXXXXX", path[64];
	struct db *db;
	struct stat st;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/x.db", dir);
	assert_int_equal(db_open(path, v1, 1, &db), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(db_tx(db, insert, "a"), 0);
	/* a duplicate key is -EEXIST and the transaction is rolled back */
	assert_int_equal(db_tx(db, insert, "a"), -EEXIST);
	/* a refusal after a write leaves nothing behind */
	assert_int_equal(db_tx(db, insert_then_fail, "b"), -EPERM);
	assert_string_equal(kq_errmsg(), "refused after writing");
	assert_int_equal(db_tx(db, count, NULL), 1);
	db_close(db);

	/* reopening with a newer schema migrates and keeps the data */
	assert_int_equal(db_open(path, v2, 2, &db), 0);
	assert_int_equal(db_tx(db, count, NULL), 1);
	db_close(db);
	/* an older program refuses a newer database */
	assert_int_equal(db_open(path, v1, 1, &db), -EPROTO);

	unlink(path);
	snprintf(path, sizeof(path), "%s/x.db-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/x.db-shm", dir);
	unlink(path);
	rmdir(dir);
}

static const char *const SQL_INS = "INSERT INTO t (k, v) VALUES (?, ?)";
static const char *const SQL_SUM = "SELECT coalesce(sum(v), 0) FROM t";

/* The same cached statements across transactions: reset, bindings cleared, no read left open. */
static int cached_round(struct db *db, sqlite3 *h, void *ud)
{
	_cleanup_(db_stmt_resetp) sqlite3_stmt *ins = NULL, *sum = NULL, *again = NULL;
	int r = db_cached(db, SQL_INS, &ins);

	if (r < 0)
		return r;
	sqlite3_bind_text(ins, 1, ud, -1, SQLITE_STATIC);
	sqlite3_bind_int(ins, 2, 2);
	if (sqlite3_step(ins) != SQLITE_DONE)
		return db_err(h, sqlite3_errcode(h), "insert");
	/* the same text from another pointer finds the same statement, reset */
	r = db_cached(db, strdupa(SQL_INS), &again);
	if (r < 0)
		return r;
	assert_ptr_equal(again, ins);
	assert_int_equal(sqlite3_bind_parameter_count(again), 2);
	r = db_cached(db, SQL_SUM, &sum);
	if (r < 0)
		return r;
	if (sqlite3_step(sum) != SQLITE_ROW)
		return db_err(h, sqlite3_errcode(h), "sum");
	return sqlite3_column_int(sum, 0); /* left unreset: the cleanup resets it */
}

static int bind_nothing(struct db *db, sqlite3 *h, void *ud)
{
	_cleanup_(db_stmt_resetp) sqlite3_stmt *ins = NULL;
	int r = db_cached(db, SQL_INS, &ins);

	(void)ud;
	if (r < 0)
		return r;
	/* bindings of the last use are gone: k is NULL, which the primary key allows, v NOT NULL refuses */
	return db_err(h, sqlite3_step(ins), "insert");
}

static void test_cached(void **state)
{
	char dir[] = "/tmp/kq-db-XXXXXX", path[64];
	struct db *db, *other;
	char key[16];

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/c.db", dir);
	assert_int_equal(db_open(path, v1, 1, &db), 0);
	for (int i = 1; i <= 50; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(db_tx(db, cached_round, key), 2 * i);
	}
	assert_true(db_tx(db, bind_nothing, NULL) < 0);
	/* a second connection writes at once: nothing of the first one's cached reads holds a snapshot */
	assert_int_equal(db_open(path, v1, 1, &other), 0);
	assert_int_equal(db_tx(other, insert, "from-other"), 0);
	assert_int_equal(db_tx(db, count, NULL), 51);
	assert_int_equal(db_tx(db, cached_round, "k51"), 2 * 51 + 1);
	db_close(other);
	db_close(db);

	snprintf(path, sizeof(path), "%s/c.db", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/c.db-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/c.db-shm", dir);
	unlink(path);
	rmdir(dir);
}

static int prepare_bad(struct db *db, sqlite3 *h, void *ud)
{
	sqlite3_stmt *s = NULL;

	(void)h;
	(void)ud;
	return db_cached(db, "SELECT k FROM nowhere", &s);
}

static void test_cached_bad_sql(void **state)
{
	struct db *db;

	assert_int_equal(db_open(":memory:", v1, 1, &db), 0);
	assert_true(db_tx(db, prepare_bad, NULL) < 0);
	assert_non_null(strstr(kq_errmsg(), "nowhere"));
	assert_true(db_tx(db, prepare_bad, NULL) < 0);
	db_close(db);
}

static void test_bad_file(void **state)
{
	char dir[] = "/tmp/kq-db-XXXXXX", path[64];
	struct db *db;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/garbage.db", dir);
	f = fopen(path, "we");
	fputs("this is not a database, it is a text file long enough to have a header........", f);
	fclose(f);
	assert_int_equal(db_open(path, v1, 1, &db), -EBADMSG);
	unlink(path);
	/* a missing directory is made (0700); a file in the way is an error */
	snprintf(path, sizeof(path), "%s/state/x.db", dir);
	assert_int_equal(db_open(path, v1, 1, &db), 0);
	db_close(db);
	snprintf(path, sizeof(path), "%s/state/x.db/y.db", dir);
	assert_int_equal(db_open(path, v1, 1, &db), -ENOTDIR);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_migrate_and_tx),
		cmocka_unit_test(test_cached),
		cmocka_unit_test(test_cached_bad_sql),
		cmocka_unit_test(test_bad_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
