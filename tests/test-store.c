/* test-store.c — the state store: open, migrate, read-only behaviour,
 * transactions, the outbox. (Concurrent writers: test-ack.c.) */
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
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

/* Run SQL through a prepared statement, marked pure when PURE (a lie
 * for a write: that is how the test sees whether the memo answered). */
static void run_sql(struct candor_store *s, const char *sql, bool pure)
{
    struct candor_stmt *q = NULL;
    CU_ASSERT_EQUAL_FATAL(candor__db_prepare(candor__store_db(s), "test", sql, &q), CANDOR_OK);
    if (pure)
        candor__stmt_set_pure(q);
    CU_ASSERT_EQUAL(candor__stmt_run(q), CANDOR_OK);
    candor__stmt_free(q);
}

/* candor__store_thread_find() inside a write transaction answers the same
 * ids from its memo while nothing but pure lookups ran; any other
 * statement, another id list, or the end of the transaction asks the
 * database again; outside a transaction it always asks. Ids are matched
 * back in order, across chunks of 8: the first acknowledged, else the
 * first found. */
static void test_thread_find(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_state("threads.db"));
    struct candor_store *s = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&s, ctx, path, 0), CANDOR_OK);
    run_sql(s, "INSERT INTO tickets(id, created, intent) VALUES (1, 1, 'refund'), "
               "(2, 1, 'billing'), (3, 1, 'billing')", false);
    run_sql(s, "INSERT INTO threads(message_id, ticket, created) VALUES ('t1a@x', 1, 1), "
               "('t2a@x', 2, 1), ('t3a@x', 3, 1)", false);
    run_sql(s, "INSERT INTO acks(ticket, recipient, rcpt, created, status, message) "
               "VALUES (3, 'c@x', 'c@x', 1, 'pending', 'm')", false);
    static const struct {
        const char *name;
        const char *ids[12];
        size_t n;
        int64_t ticket;
        bool acked;
    } rows[] = {
        { "none found", { "no1@x", "no2@x" }, 2, 0, false },
        { "first found wins", { "no@x", "t2a@x", "t1a@x" }, 3, 2, false },
        { "acknowledged wins", { "t1a@x", "t3a@x" }, 2, 3, true },
        { "empty ids skipped", { "", "t1a@x" }, 2, 1, false },
        { "ninth id, second chunk", { "a@x", "b@x", "c@x", "d@x", "e@x", "f@x", "g@x", "h@x",
                                      "t3a@x" }, 9, 3, true },
        { "first chunk's find kept", { "t2a@x", "b@x", "c@x", "d@x", "e@x", "f@x", "g@x",
                                       "h@x", "t1a@x" }, 9, 2, false },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t t = -1;
        bool acked = !rows[i].acked;
        CU_ASSERT_EQUAL(candor__store_thread_find(s, rows[i].ids, rows[i].n, &t, &acked),
                        CANDOR_OK);
        if (t != rows[i].ticket || acked != rows[i].acked)
            fprintf(stderr, "thread_find row \"%s\": ticket %lld acked %d\n", rows[i].name,
                    (long long)t, acked);
        CU_ASSERT_EQUAL(t, rows[i].ticket);
        CU_ASSERT_EQUAL(acked, rows[i].acked);
    }
    const char *ids[] = { "new@x" };
    int64_t t = -1;
    bool acked = true;
    CU_ASSERT_EQUAL_FATAL(candor__store_begin(s), CANDOR_OK);
    CU_ASSERT_EQUAL(candor__store_thread_find(s, ids, 1, &t, &acked), CANDOR_OK);
    CU_ASSERT_EQUAL(t, 0);
    /* a write disguised as pure: the memo answers, so the row is unseen */
    run_sql(s, "INSERT INTO threads(message_id, ticket, created) VALUES ('new@x', 1, 2)", true);
    CU_ASSERT_EQUAL(candor__store_thread_find(s, ids, 1, &t, &acked), CANDOR_OK);
    CU_ASSERT_EQUAL(t, 0);
    /* any other statement: asked again */
    CU_ASSERT_EQUAL(query_int(s, "SELECT 1"), 1);
    CU_ASSERT_EQUAL(candor__store_thread_find(s, ids, 1, &t, &acked), CANDOR_OK);
    CU_ASSERT_EQUAL(t, 1);
    CU_ASSERT_EQUAL(candor__store_commit(s), CANDOR_OK);
    /* outside a transaction: never from the memo */
    const char *ids2[] = { "late@x" };
    CU_ASSERT_EQUAL(candor__store_thread_find(s, ids2, 1, &t, &acked), CANDOR_OK);
    CU_ASSERT_EQUAL(t, 0);
    run_sql(s, "INSERT INTO threads(message_id, ticket, created) VALUES ('late@x', 2, 3)", true);
    CU_ASSERT_EQUAL(candor__store_thread_find(s, ids2, 1, &t, &acked), CANDOR_OK);
    CU_ASSERT_EQUAL(t, 2);
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

/* candor_store_copy(): every table, ids kept, the sequence past them, the
 * blob of the history intact; a non-empty target refused unless forced.
 * SQLite to SQLite; under PostgreSQL also SQLite to PostgreSQL and
 * PostgreSQL to PostgreSQL. */
static void fill_source(struct candor_store *s)
{
    struct candor_db *db = candor__store_db(s);
    CU_ASSERT_EQUAL(candor__db_exec(db, "test",
        "INSERT INTO tickets(id, created, sender, intent, subject, message_id) VALUES "
        "(5, 100, 'a@x', 'refund', 'Broken', 'm1@x'), (9, 200, 'b@x', 'billing', NULL, 'm2@x');"
        "INSERT INTO threads(message_id, ticket, created) VALUES ('m1@x', 5, 100), ('m2@x', 9, 200);"
        "INSERT INTO acks(ticket, recipient, rcpt, created, status, message) VALUES "
        "(5, 'a@x', 'A@x', 100, 'pending', 'body');"
        "INSERT INTO decisions(decided, sender, reason, ticket) VALUES (100, 'a@x', 'ok', 5);"
        "INSERT INTO canned_reply(recipient, domain, sent_at) VALUES ('a@x', 'x', 150);"), CANDOR_OK);
    struct candor_stmt *q;
    static const unsigned char sig[6] = { 0, 1, 0xff, 0x80, 0x7f, 0 };   /* NULs, high bytes */
    CU_ASSERT_EQUAL_FATAL(candor__db_prepare(db, "test", "INSERT INTO canned_para(ntok, sig) "
                                             "VALUES (?1, ?2)", &q), CANDOR_OK);
    candor__stmt_bind_int64(q, 1, 7);
    candor__stmt_bind_blob(q, 2, sig, sizeof sig);
    CU_ASSERT_EQUAL(candor__stmt_run(q), CANDOR_OK);
    candor__stmt_free(q);
    CU_ASSERT_EQUAL(candor_store_delivery_record(s, "key1", "m1@x", "/md/new/1", 1, 100, 0),
                    CANDOR_OK);
}

static void check_copy(const char *from, const char *to)
{
    struct candor_store *s = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&s, ctx, from, 0), CANDOR_OK);
    fill_source(s);
    candor_store_free(s);
    char *json = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_store_copy(ctx, from, to, 0, &json), CANDOR_OK);
    CU_ASSERT_PTR_NOT_NULL(json && strstr(json, "\"tickets\":2"));
    CU_ASSERT_PTR_NOT_NULL(json && strstr(json, "\"candor_delivery\":1"));
    candor_free(json);
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&s, ctx, to, 0), CANDOR_OK);
    CU_ASSERT_EQUAL(query_int(s, "SELECT count(*) FROM tickets WHERE id IN (5, 9)"), 2);
    CU_ASSERT_EQUAL(query_int(s, "SELECT count(*) FROM threads"), 2);
    CU_ASSERT_EQUAL(query_int(s, "SELECT count(*) FROM acks WHERE status = 'pending'"), 1);
    CU_ASSERT_EQUAL(query_int(s, "SELECT count(*) FROM tickets WHERE subject IS NULL"), 1);
    int64_t t = 0;
    bool acked = false;
    const char *ids[] = { "m1@x" };
    CU_ASSERT_EQUAL(candor__store_thread_find(s, ids, 1, &t, &acked), CANDOR_OK);
    CU_ASSERT_EQUAL(t, 5);
    CU_ASSERT_TRUE(acked);
    /* the blob, byte for byte */
    struct candor_stmt *q;
    CU_ASSERT_EQUAL_FATAL(candor__db_prepare(candor__store_db(s), "test",
                                             "SELECT ntok, sig FROM canned_para", &q), CANDOR_OK);
    CU_ASSERT_EQUAL(candor__stmt_step(q), CANDOR_DB_ROW);
    size_t n = 0;
    const unsigned char *b = candor__stmt_blob(q, 1, &n);
    CU_ASSERT_EQUAL(candor__stmt_int64(q, 0), 7);
    CU_ASSERT_EQUAL(n, 6);
    CU_ASSERT_TRUE(b && n == 6 && b[0] == 0 && b[2] == 0xff && b[3] == 0x80 && b[5] == 0);
    candor__stmt_free(q);
    /* the delivery log came along */
    int delivered = 0;
    char *path = NULL;
    CU_ASSERT_EQUAL(candor_store_delivery_find(s, "key1", 200, 0, &delivered, &path), CANDOR_OK);
    CU_ASSERT_STRING_EQUAL(path ? path : "", "/md/new/1");
    candor_free(path);
    /* the next ticket number follows the largest copied */
    CU_ASSERT_EQUAL(query_int(s, "INSERT INTO tickets(created, intent) VALUES (300, 'refund') "
                                 "RETURNING id"), 10);
    candor_store_free(s);
    /* a non-empty target: refused, untouched; --force replaces it */
    CU_ASSERT_EQUAL(candor_store_copy(ctx, from, to, 0, &json), CANDOR_EINVAL);
    CU_ASSERT_PTR_NULL(json);
    CU_ASSERT_PTR_NOT_NULL(strstr(candor_errmsg(), "not empty"));
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&s, ctx, to, 0), CANDOR_OK);
    CU_ASSERT_EQUAL(query_int(s, "SELECT count(*) FROM tickets"), 3);
    candor_store_free(s);
    CU_ASSERT_EQUAL(candor_store_copy(ctx, from, to, CANDOR_STORE_COPY_FORCE, NULL), CANDOR_OK);
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&s, ctx, to, 0), CANDOR_OK);
    CU_ASSERT_EQUAL(query_int(s, "SELECT count(*) FROM tickets"), 2);
    CU_ASSERT_EQUAL(query_int(s, "SELECT max(id) FROM tickets"), 9);
    candor_store_free(s);
}

static void test_store_copy(void)
{
    char a[2048], b[2048], c[2048];
    snprintf(a, sizeof a, "%s", tmp_state("copy-from.db"));
    snprintf(b, sizeof b, "%s", tmp_state("copy-to.db"));
    check_copy(a, b);   /* same backend */
    if (test_state_pg()) {
        /* an SQLite file to PostgreSQL: the migration path */
        const char *d = test_tmpdir();
        snprintf(a, sizeof a, "%s/copy-sqlite.db", d ? d : "/tmp");
        snprintf(c, sizeof c, "%s", tmp_state("copy-pg.db"));
        check_copy(a, c);
        unlink(a);
    }
    drop_state(b);
    /* bad arguments: no source file, same source and target */
    CU_ASSERT_EQUAL(candor_store_copy(ctx, "/nonexistent-dir/x.db", b, 0, NULL), CANDOR_EINVAL);
    CU_ASSERT_EQUAL(candor_store_copy(ctx, b, b, 0, NULL), CANDOR_EINVAL);
    CU_ASSERT_EQUAL(candor_store_copy(ctx, NULL, b, 0, NULL), CANDOR_EINVAL);
}

static void setup(void) { ctx = test_ctx(NULL); }

static void test_ctx_loaded(void) { CU_ASSERT_PTR_NOT_NULL_FATAL(ctx); }

/* Several threads opening one new state file at the same moment all get
 * a handle (the switch to WAL used to fail with "state busy" for some). */
#define OPENERS 8
struct opener {
    const char *path;
    pthread_barrier_t *go;
    candor_status_t st;
};

static void *open_one(void *arg)
{
    struct opener *o = arg;
    struct candor_store *s = NULL;
    pthread_barrier_wait(o->go);
    o->st = candor_store_open(&s, ctx, o->path, 0);
    candor_store_free(s);
    return NULL;
}

static void test_concurrent_first_open(void)
{
    if (test_state_pg())
        return;   /* a file-level race: SQLite only */
    for (int round = 0; round < 40; round++) {
        char name[32];
        snprintf(name, sizeof name, "first-open-%d", round);
        const char *path = tmp_state(name);
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, OPENERS);
        pthread_t t[OPENERS];
        struct opener o[OPENERS];
        for (int i = 0; i < OPENERS; i++) {
            o[i] = (struct opener){ path, &go, CANDOR_ERROR };
            pthread_create(&t[i], NULL, open_one, &o[i]);
        }
        for (int i = 0; i < OPENERS; i++) {
            pthread_join(t[i], NULL);
            CU_ASSERT_EQUAL(o[i].st, CANDOR_OK);
        }
        pthread_barrier_destroy(&go);
    }
}

static const struct test_case cases[] = {
    { "ctx", test_ctx_loaded },
    { "create_and_migrate", test_create_and_migrate },
    { "readonly_missing_is_empty", test_readonly_missing_is_empty },
    { "newer_schema_refused", test_newer_schema_refused },
    { "bad_path", test_bad_path },
    { "transactions_nest", test_transactions_nest },
    { "thread_find", test_thread_find },
    { "reader_during_write", test_reader_during_write },
    { "ticket_format", test_ticket_format },
    { "store_copy", test_store_copy },
    { "concurrent_first_open", test_concurrent_first_open },
    { NULL, NULL }
};

int main(void)
{
    setup();
    int r = test_main("store", cases);
    candor_ctx_free(ctx);
    return r;
}
