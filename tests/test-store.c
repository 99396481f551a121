/* test-store.c — the state store: open, migrate, read-only behaviour,
 * transactions, the outbox. (Concurrent writers: test-ack.c.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include "common.h"
#include "store.h"

static struct candor_ctx *ctx;

static char *tmp_state(const char *name)
{
    static char buf[512];
    const char *d = test_tmpdir();
    snprintf(buf, sizeof buf, "%s/%s", d ? d : "/tmp", name);
    return buf;
}

static int user_version(struct candor_store *s)
{
    sqlite3_stmt *q;
    int v = -1;
    if (sqlite3_prepare_v2(candor__store_sqlite(s), "PRAGMA user_version", -1, &q, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    return v;
}

static void test_create_and_migrate(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_state("state.db"));
    struct candor_store *s = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&s, ctx, path, 0), CANDOR_OK);
    CU_ASSERT_EQUAL(user_version(s), CANDOR_STORE_SCHEMA_VERSION);
    CU_ASSERT_FALSE(candor__store_readonly(s));
    /* WAL mode is persistent in the file */
    sqlite3_stmt *q;
    CU_ASSERT_EQUAL(sqlite3_prepare_v2(candor__store_sqlite(s), "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_step(q), SQLITE_ROW);
    CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    candor_store_free(s);
    /* reopening keeps the version, migrates nothing */
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&s, ctx, path, 0), CANDOR_OK);
    CU_ASSERT_EQUAL(user_version(s), CANDOR_STORE_SCHEMA_VERSION);
    candor_store_free(s);
    /* read-only open of the existing file */
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&s, ctx, path, CANDOR_STORE_READONLY), CANDOR_OK);
    CU_ASSERT_TRUE(candor__store_readonly(s));
    char *json = NULL;
    CU_ASSERT_EQUAL(candor_store_pending_acks(s, &json), CANDOR_OK);
    CU_ASSERT_STRING_EQUAL(json, "[]");
    candor_free(json);
    CU_ASSERT_EQUAL(candor_store_ack_sent(s, "CND-000001", 0), CANDOR_EINVAL);
    candor_store_free(s);
    unlink(path);
}

static void test_readonly_missing_is_empty(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_state("never-created.db"));
    struct candor_store *s = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&s, ctx, path, CANDOR_STORE_READONLY), CANDOR_OK);
    CU_ASSERT_EQUAL(access(path, F_OK), -1);   /* nothing created */
    int64_t t = -1;
    bool acked = true;
    const char *ids[] = { "a@b" };
    CU_ASSERT_EQUAL(candor__store_thread_find(s, ids, 1, &t, &acked), CANDOR_OK);
    CU_ASSERT_EQUAL(t, 0);
    CU_ASSERT_FALSE(acked);
    int64_t n = -1;
    CU_ASSERT_EQUAL(candor__store_acks_since(s, "x@y", 0, &n), CANDOR_OK);
    CU_ASSERT_EQUAL(n, 0);
    candor_store_free(s);
    CU_ASSERT_EQUAL(access(path, F_OK), -1);
}

static void test_newer_schema_refused(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_state("newer.db"));
    sqlite3 *db;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(path, &db), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(db, "PRAGMA user_version=999", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    struct candor_store *s = (struct candor_store *)1;
    CU_ASSERT_EQUAL(candor_store_open(&s, ctx, path, 0), CANDOR_EIO);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(candor_errmsg(), "newer"));
    unlink(path);
}

static void test_bad_path(void)
{
    struct candor_store *s = (struct candor_store *)1;
    CU_ASSERT_EQUAL(candor_store_open(&s, ctx, "/nonexistent-dir/x/state.db", 0), CANDOR_EIO);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_EQUAL(candor_store_open(NULL, ctx, "x", 0), CANDOR_EINVAL);
}

static void test_transactions_nest(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_state("txn.db"));
    struct candor_store *s = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&s, ctx, path, 0), CANDOR_OK);
    sqlite3 *db = candor__store_sqlite(s);
    CU_ASSERT_EQUAL(candor__store_begin(s), CANDOR_OK);
    CU_ASSERT_EQUAL(candor__store_begin(s), CANDOR_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(db, "INSERT INTO tickets(created, intent) VALUES (1, 'refund')", NULL, NULL, NULL), SQLITE_OK);
    CU_ASSERT_EQUAL(candor__store_commit(s), CANDOR_OK);   /* inner: nothing yet */
    CU_ASSERT_FALSE(sqlite3_get_autocommit(db));
    CU_ASSERT_EQUAL(candor__store_commit(s), CANDOR_OK);
    CU_ASSERT_TRUE(sqlite3_get_autocommit(db));
    /* a nested rollback undoes everything and the outer commit says so */
    CU_ASSERT_EQUAL(candor__store_begin(s), CANDOR_OK);
    CU_ASSERT_EQUAL(candor__store_begin(s), CANDOR_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(db, "INSERT INTO tickets(created, intent) VALUES (2, 'refund')", NULL, NULL, NULL), SQLITE_OK);
    candor__store_rollback(s);
    CU_ASSERT_EQUAL(candor__store_commit(s), CANDOR_ERROR);
    sqlite3_stmt *q;
    sqlite3_prepare_v2(db, "SELECT count(*) FROM tickets", -1, &q, NULL);
    sqlite3_step(q);
    CU_ASSERT_EQUAL(sqlite3_column_int(q, 0), 1);
    sqlite3_finalize(q);
    CU_ASSERT_EQUAL(candor_store_ack_sent(s, "CND-000001", 5), CANDOR_ENOTFOUND);
    CU_ASSERT_EQUAL(candor_store_ack_sent(s, "nonsense", 5), CANDOR_EINVAL);
    candor_store_free(s);
    unlink(path);
}

/* A second writer waits for the first; past the busy timeout it would get
 * CANDOR_ETEMPFAIL. Here: a reader during a write transaction is fine. */
static void test_reader_during_write(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_state("wal.db"));
    struct candor_store *w = NULL, *r = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&w, ctx, path, 0), CANDOR_OK);
    CU_ASSERT_EQUAL(candor__store_begin(w), CANDOR_OK);
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&r, ctx, path, CANDOR_STORE_READONLY), CANDOR_OK);
    int64_t n = -1;
    CU_ASSERT_EQUAL(candor__store_acks_since(r, "x@y", 0, &n), CANDOR_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(candor__store_commit(w), CANDOR_OK);
    candor_store_free(r);
    candor_store_free(w);
    unlink(path);
}

static void test_ticket_format(void)
{
    char b[32];
    candor__ticket_format(b, sizeof b, 123);
    CU_ASSERT_STRING_EQUAL(b, "CND-000123");
    candor__ticket_format(b, sizeof b, 1234567);
    CU_ASSERT_STRING_EQUAL(b, "CND-1234567");
    CU_ASSERT_EQUAL(candor__ticket_parse("CND-000123"), 123);
    CU_ASSERT_EQUAL(candor__ticket_parse("cnd-7"), 7);
    CU_ASSERT_EQUAL(candor__ticket_parse("CND-"), 0);
    CU_ASSERT_EQUAL(candor__ticket_parse("CND-12x"), 0);
    CU_ASSERT_EQUAL(candor__ticket_parse(NULL), 0);
}

static void setup(void) { ctx = test_ctx(NULL); }

static void test_ctx_loaded(void) { CU_ASSERT_PTR_NOT_NULL_FATAL(ctx); }

static const struct test_case cases[] = {
    { "ctx", test_ctx_loaded },
    { "create_and_migrate", test_create_and_migrate },
    { "readonly_missing_is_empty", test_readonly_missing_is_empty },
    { "newer_schema_refused", test_newer_schema_refused },
    { "bad_path", test_bad_path },
    { "transactions_nest", test_transactions_nest },
    { "reader_during_write", test_reader_during_write },
    { "ticket_format", test_ticket_format },
    { NULL, NULL }
};

int main(void)
{
    setup();
    int r = test_main("store", cases);
    candor_ctx_free(ctx);
    return r;
}
