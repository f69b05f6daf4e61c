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
	assert_int_equal(db_open("/nonexistent-dir/x.db", v1, 1, &db), -ENOENT);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_migrate_and_tx),
		cmocka_unit_test(test_bad_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
