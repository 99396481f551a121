/* test-store.c — the state store: open, migrate, read-only behaviour,
 * transactions, the outbox. (Concurrent writers: test-ack.c.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common.h"
#include "store.h"

static struct candor_ctx *ctx;

/* A fresh state location (SQLite file or PostgreSQL schema: common.h). */
static const char *tmp_state(const char *name)
{
    const char *p = test_state(name);
    return p ? p : "/nonexistent-dir/no-state";
}

static int user_version(struct candor_store *s)
{
    int v = -1;
    if (candor__db_schema_version(candor__store_db(s), &v) != CANDOR_OK)
        return -1;
    return v;
}

/* One integer from SQL on the store's database (-1 on failure). */
static int64_t query_int(struct candor_store *s, const char *sql)
{
    struct candor_stmt *q;
    int64_t v = -1;
    if (candor__db_prepare(candor__store_db(s), "test", sql, &q) != CANDOR_OK)
        return -1;
    if (candor__stmt_step(q) == CANDOR_DB_ROW)
        v = candor__stmt_int64(q, 0);
    candor__stmt_free(q);
    return v;
}

/* unlink() for an SQLite file; nothing for a PostgreSQL schema */
static void drop_state(const char *path)
{
    if (!test_state_pg())
        unlink(path);
}

static void test_create_and_migrate(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_state("state.db"));
    struct candor_store *s = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&s, ctx, path, 0), CANDOR_OK);
    CU_ASSERT_EQUAL(user_version(s), CANDOR_STORE_SCHEMA_VERSION);
    CU_ASSERT_FALSE(candor__store_readonly(s));
    if (!test_state_pg()) {
        /* WAL mode is persistent in the file */
        struct candor_stmt *q;
        CU_ASSERT_EQUAL_FATAL(candor__db_prepare(candor__store_db(s), "test", "PRAGMA journal_mode",
                                                 &q), CANDOR_OK);
        CU_ASSERT_EQUAL(candor__stmt_step(q), CANDOR_DB_ROW);
        CU_ASSERT_STRING_EQUAL(candor__stmt_text(q, 0), "wal");
        candor__stmt_free(q);
    } else {
        CU_ASSERT_EQUAL(candor__db_kind(candor__store_db(s)), CANDOR_DB_PG);
    }
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
    drop_state(path);
}

static void test_readonly_missing_is_empty(void)
{
    if (test_state_pg())
        return;   /* a file that does not exist: SQLite only */
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
    struct candor_db *db;
    CU_ASSERT_EQUAL_FATAL(candor__db_open(&db, path), CANDOR_OK);
    CU_ASSERT_EQUAL(candor__db_set_schema_version(db, 999), CANDOR_OK);
    candor__db_close(db);
    struct candor_store *s = (struct candor_store *)1;
    CU_ASSERT_EQUAL(candor_store_open(&s, ctx, path, 0), CANDOR_EIO);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(candor_errmsg(), "newer"));
    drop_state(path);
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
    struct candor_db *db = candor__store_db(s);
    CU_ASSERT_EQUAL(candor__store_begin(s), CANDOR_OK);
    CU_ASSERT_EQUAL(candor__store_begin(s), CANDOR_OK);
    CU_ASSERT_EQUAL(candor__db_exec(db, "test", "INSERT INTO tickets(created, intent) VALUES (1, 'refund')"), CANDOR_OK);
    CU_ASSERT_EQUAL(candor__store_commit(s), CANDOR_OK);   /* inner: nothing yet */
    CU_ASSERT_TRUE(candor__db_in_transaction(db));
    CU_ASSERT_EQUAL(candor__store_commit(s), CANDOR_OK);
    CU_ASSERT_FALSE(candor__db_in_transaction(db));
    /* a nested rollback undoes everything and the outer commit says so */
    CU_ASSERT_EQUAL(candor__store_begin(s), CANDOR_OK);
    CU_ASSERT_EQUAL(candor__store_begin(s), CANDOR_OK);
    CU_ASSERT_EQUAL(candor__db_exec(db, "test", "INSERT INTO tickets(created, intent) VALUES (2, 'refund')"), CANDOR_OK);
    candor__store_rollback(s);
    CU_ASSERT_EQUAL(candor__store_commit(s), CANDOR_ERROR);
    CU_ASSERT_EQUAL(query_int(s, "SELECT count(*) FROM tickets"), 1);
    CU_ASSERT_EQUAL(candor_store_ack_sent(s, "CND-000001", 5), CANDOR_ENOTFOUND);
    CU_ASSERT_EQUAL(candor_store_ack_sent(s, "nonsense", 5), CANDOR_EINVAL);
    candor_store_free(s);
    drop_state(path);
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
    drop_state(path);
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
