/* test-store-delivery.c — the delivery log (lib/store-delivery.c): rows by
 * key within a window, begun vs delivered, lookup by Message-ID, read-only
 * and missing-table behaviour, bad arguments, synchronous mode restored,
 * claims (once among handles), PostgreSQL's relaxed writes, the caller's
 * write groups (candor_store_begin/commit/rollback) and the SQLite
 * backend's reuse of prepared statements. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "store.h"

static struct candor_store *open_store(const char *name, unsigned int flags)
{
    static char path[4096];
    static const char *dir;
    static char dirbuf[2048];
    if (!dir) {   /* one directory for the whole run: a store is reopened */
        snprintf(dirbuf, sizeof dirbuf, "%s", test_tmpdir());
        dir = dirbuf;
    }
    if (test_state_pg()) {   /* one schema per name, made on first use */
        static char names[8][64], where[8][2048];
        int i;
        for (i = 0; i < 8 && names[i][0] && strcmp(names[i], name) != 0; i++)
            ;
        if (i == 8)
            return NULL;
        if (!names[i][0]) {
            const char *w = test_state(name);
            if (!w)
                return NULL;
            snprintf(names[i], sizeof names[i], "%s", name);
            snprintf(where[i], sizeof where[i], "%s", w);
        }
        snprintf(path, sizeof path, "%s", where[i]);
    } else {
        snprintf(path, sizeof path, "%s/%s", dir, name);
    }
    struct candor_ctx *ctx = test_ctx(NULL);
    struct candor_store *s = NULL;
    CU_ASSERT_EQUAL(candor_store_open(&s, ctx, path, flags), CANDOR_OK);
    candor_ctx_free(ctx);
    return s;
}

static void test_find_window(void)
{
    struct candor_store *s = open_store("window.db", 0);
    if (!s)
        return;
    int delivered = -1;
    char *path = (char *)"x";
    /* nothing yet: the table does not even exist */
    CU_ASSERT_EQUAL(candor_store_delivery_find(s, "k1", 1000, 100, &delivered, &path),
                    CANDOR_ENOTFOUND);
    CU_ASSERT_PTR_NULL(path);
    CU_ASSERT_EQUAL(candor_store_delivery_record(s, "k1", "id1@x", "/m/new/a", 0, 1000, 0), CANDOR_OK);
    struct { const char *name; int64_t now, window; candor_status_t want; } rows[] = {
        { "same time", 1000, 100, CANDOR_OK },
        { "inside the window", 1099, 100, CANDOR_OK },
        { "at the edge", 1100, 100, CANDOR_OK },
        { "past the window", 1101, 100, CANDOR_ENOTFOUND },
        { "no window: any age", 999999, 0, CANDOR_OK },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        candor_status_t st = candor_store_delivery_find(s, "k1", rows[i].now, rows[i].window,
                                                        &delivered, &path);
        if (st != rows[i].want)
            fprintf(stderr, "row %s: got %d\n", rows[i].name, st);
        CU_ASSERT_EQUAL(st, rows[i].want);
        if (st == CANDOR_OK) {
            CU_ASSERT_STRING_EQUAL(path, "/m/new/a");
            CU_ASSERT_EQUAL(delivered, 0);
        }
        candor_free(path);
        path = NULL;
    }
    /* marked delivered: overwrites the row */
    CU_ASSERT_EQUAL(candor_store_delivery_record(s, "k1", "id1@x", "/m/new/a", 1, 1001, 0), CANDOR_OK);
    CU_ASSERT_EQUAL(candor_store_delivery_find(s, "k1", 1001, 10, &delivered, &path), CANDOR_OK);
    CU_ASSERT_EQUAL(delivered, 1);
    candor_free(path);
    path = NULL;
    CU_ASSERT_EQUAL(candor_store_delivery_find(s, "other", 1001, 10, &delivered, &path),
                    CANDOR_ENOTFOUND);
    candor_store_free(s);
}

static void test_path_by_message_id(void)
{
    struct candor_store *s = open_store("byid.db", 0);
    if (!s)
        return;
    char *path = NULL;
    CU_ASSERT_EQUAL(candor_store_delivery_path(s, "none@x", &path), CANDOR_ENOTFOUND);
    CU_ASSERT_EQUAL(candor_store_delivery_record(s, "a", "m@x", "/old", 1, 10, 0), CANDOR_OK);
    CU_ASSERT_EQUAL(candor_store_delivery_record(s, "b", "m@x", "/begun", 0, 30, 0), CANDOR_OK);
    CU_ASSERT_EQUAL(candor_store_delivery_record(s, "c", "m@x", "/newer", 1, 20, 0), CANDOR_OK);
    CU_ASSERT_EQUAL(candor_store_delivery_record(s, "d", NULL, "/noid", 1, 20, 0), CANDOR_OK);
    /* delivered rows first, newest of them */
    CU_ASSERT_EQUAL(candor_store_delivery_path(s, "m@x", &path), CANDOR_OK);
    CU_ASSERT_STRING_EQUAL(path ? path : "", "/newer");
    candor_free(path);
    candor_store_free(s);
}

static void test_readonly_and_args(void)
{
    struct candor_store *s = open_store("ro.db", 0);
    if (!s)
        return;
    CU_ASSERT_EQUAL(candor_store_delivery_record(s, "k", NULL, "/p", 1, 5, 0), CANDOR_OK);
    candor_store_free(s);
    s = open_store("ro.db", CANDOR_STORE_READONLY);
    if (!s)
        return;
    int d;
    char *path = NULL;
    candor_status_t st = candor_store_delivery_find(s, "k", 5, 0, &d, &path);
    if (st != CANDOR_OK)
        fprintf(stderr, "read-only find: %s\n", candor_errmsg());
    CU_ASSERT_EQUAL(st, CANDOR_OK);
    candor_free(path);
    path = NULL;
    CU_ASSERT_EQUAL(candor_store_delivery_record(s, "k2", NULL, "/p", 1, 5, 0), CANDOR_EINVAL);
    candor_store_free(s);
    /* a read-only store without the table: found nothing, created nothing */
    s = open_store("ro-empty.db", CANDOR_STORE_READONLY);
    if (!s)
        return;
    CU_ASSERT_EQUAL(candor_store_delivery_find(s, "k", 5, 0, &d, &path), CANDOR_ENOTFOUND);
    candor_store_free(s);
    /* bad arguments */
    CU_ASSERT_EQUAL(candor_store_delivery_find(NULL, "k", 0, 0, &d, &path), CANDOR_EINVAL);
    s = open_store("args.db", 0);
    if (!s)
        return;
    CU_ASSERT_EQUAL(candor_store_delivery_find(s, NULL, 0, 0, &d, &path), CANDOR_EINVAL);
    CU_ASSERT_EQUAL(candor_store_delivery_record(s, "k", NULL, NULL, 1, 0, 0), CANDOR_EINVAL);
    char *huge = malloc(5000);
    if (huge) {
        memset(huge, 'a', 4999);
        huge[4999] = '\0';
        CU_ASSERT_EQUAL(candor_store_delivery_record(s, huge, NULL, "/p", 1, 0, 0), CANDOR_EINVAL);
        free(huge);
    }
    candor_store_free(s);
}

static void test_sync_mode_restored(void)
{
    if (test_state_pg())
        return;   /* PRAGMA synchronous: SQLite only */
    struct candor_store *s = open_store("sync.db", 0);
    if (!s)
        return;
    struct candor_db *db = candor__store_db(s);
    candor__db_exec(db, "test", "PRAGMA synchronous=FULL");
    CU_ASSERT_EQUAL(candor_store_delivery_record(s, "k", NULL, "/p", 1, 0, 0), CANDOR_OK);
    struct candor_stmt *q;
    int mode = -1;
    if (candor__db_prepare(db, "test", "PRAGMA synchronous", &q) == CANDOR_OK) {
        if (candor__stmt_step(q) == CANDOR_DB_ROW)
            mode = (int)candor__stmt_int64(q, 0);
        candor__stmt_free(q);
    }
    CU_ASSERT_EQUAL(mode, 2);   /* FULL, as the store had it */
    candor_store_free(s);
}

/* candor_store_delivery_claim(): once among every handle on the state
 * (two handles stand for two hosts), taken over after a give-up (a row
 * with delivered=0), never over a held claim. */
static void test_claim(void)
{
    struct candor_store *a = open_store("claim.db", 0);
    struct candor_store *b = open_store("claim.db", 0);
    if (!a || !b) {
        candor_store_free(a);
        candor_store_free(b);
        return;
    }
    static const struct {
        const char *name;
        int host;          /* 0: a, 1: b */
        const char *key, *path;
        int give_up;       /* first give KEY up: 1 record (delivered=0), 2 release */
        int claimed;       /* expected */
        const char *held;  /* the path the row holds afterwards */
    } rows[] = {
        { "fresh key", 0, "ack-handover:CND-000001", "started-a", 0, 1, "started-a" },
        { "same key, other host", 1, "ack-handover:CND-000001", "started-b", 0, 0, "started-a" },
        { "same key, same host", 0, "ack-handover:CND-000001", "again", 0, 0, "started-a" },
        { "other key, other host", 1, "ack-handover:CND-000002", "started-b", 0, 1, "started-b" },
        { "given up, then claimed", 0, "ack-handover:CND-000002", "retry-a", 1, 1, "retry-a" },
        { "released, then claimed by the other host", 1, "ack-handover:CND-000002", "retry-b", 2,
          1, "retry-b" },
        { "released unclaimed key, then claimed", 0, "ack-handover:CND-000003", "started-a", 2, 1,
          "started-a" },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct candor_store *s = rows[i].host ? b : a;
        if (rows[i].give_up == 1)
            CU_ASSERT_EQUAL(candor_store_delivery_record(s, rows[i].key, NULL, "failed", 0, 10, 0),
                            CANDOR_OK);
        if (rows[i].give_up == 2) {
            int delivered = -1;
            char *path = NULL;
            CU_ASSERT_EQUAL(candor_store_delivery_release(rows[i].host ? a : b, rows[i].key,
                                                          "failed", 10), CANDOR_OK);
            /* seen given up from the other handle */
            CU_ASSERT_EQUAL(candor_store_delivery_find(s, rows[i].key, 0, 0, &delivered, &path),
                            CANDOR_OK);
            CU_ASSERT_EQUAL(delivered, 0);
            CU_ASSERT_STRING_EQUAL(path ? path : "", "failed");
            candor_free(path);
        }
        int claimed = -1;
        candor_status_t st = candor_store_delivery_claim(s, rows[i].key, NULL, rows[i].path, 10,
                                                         &claimed);
        if (st != CANDOR_OK || claimed != rows[i].claimed)
            fprintf(stderr, "claim row \"%s\": status %d claimed %d (%s)\n", rows[i].name, st,
                    claimed, st != CANDOR_OK ? candor_errmsg() : "");
        CU_ASSERT_EQUAL(st, CANDOR_OK);
        CU_ASSERT_EQUAL(claimed, rows[i].claimed);
        int delivered = -1;
        char *path = NULL;
        CU_ASSERT_EQUAL(candor_store_delivery_find(rows[i].host ? a : b, rows[i].key, 10, 0,
                                                   &delivered, &path), CANDOR_OK);
        CU_ASSERT_EQUAL(delivered, 1);
        CU_ASSERT_STRING_EQUAL(path ? path : "", rows[i].held);
        candor_free(path);
    }
    int claimed = -1;
    CU_ASSERT_EQUAL(candor_store_delivery_claim(a, NULL, NULL, "/p", 0, &claimed), CANDOR_EINVAL);
    CU_ASSERT_EQUAL(candor_store_delivery_claim(a, "k", NULL, "/p", 0, NULL), CANDOR_EINVAL);
    CU_ASSERT_EQUAL(candor_store_delivery_release(a, NULL, "/p", 0), CANDOR_EINVAL);
    CU_ASSERT_EQUAL(candor_store_delivery_release(a, "k", NULL, 0), CANDOR_EINVAL);
    candor_store_free(a);
    candor_store_free(b);
    a = open_store("claim.db", CANDOR_STORE_READONLY);
    if (a)
    {
        CU_ASSERT_EQUAL(candor_store_delivery_claim(a, "k", NULL, "/p", 0, &claimed),
                        CANDOR_EINVAL);
        CU_ASSERT_EQUAL(candor_store_delivery_release(a, "k", "/p", 0), CANDOR_EINVAL);
    }
    candor_store_free(a);
}

/* PostgreSQL: a relaxed write (candor__db_relaxed(): one pipeline, its
 * own implicit transaction with synchronous_commit off) leaves the
 * connection's setting as it was, and a relaxed statement that fails
 * fails alone, leaving a usable connection. */
static void test_pg_relaxed(void)
{
    if (!test_state_pg())
        return;
    struct candor_store *s = open_store("relaxed.db", 0);
    if (!s)
        return;
    struct candor_db *db = candor__store_db(s);
    CU_ASSERT_EQUAL(candor_store_delivery_record(s, "k", NULL, "/p", 1, 0, 0), CANDOR_OK);
    struct candor_stmt *q;
    char mode[16] = "";
    if (candor__db_prepare(db, "test", "SHOW synchronous_commit", &q) == CANDOR_OK) {
        if (candor__stmt_step(q) == CANDOR_DB_ROW && candor__stmt_text(q, 0))
            snprintf(mode, sizeof mode, "%s", candor__stmt_text(q, 0));
        candor__stmt_free(q);
    }
    CU_ASSERT_STRING_EQUAL(mode, "on");
    candor__db_relaxed(db, true);
    CU_ASSERT_EQUAL(candor__db_prepare(db, "test", "INSERT INTO candor_delivery(key, path, "
                                       "delivered, at) VALUES (?1, NULL, 0, 0)", &q), CANDOR_OK);
    if (q) {
        candor__stmt_bind_text(q, 1, "bad");
        candor_status_t st = candor__stmt_run(q);
        CU_ASSERT_NOT_EQUAL(st, CANDOR_OK);   /* path NOT NULL */
        candor__stmt_free(q);
    }
    /* the same relaxed path works again at once: the pipeline was left */
    CU_ASSERT_EQUAL(candor_store_delivery_record(s, "k2", NULL, "/p2", 1, 0, 0), CANDOR_OK);
    candor__db_relaxed(db, false);
    int delivered = -1;
    char *path = NULL;
    CU_ASSERT_EQUAL(candor_store_delivery_find(s, "k2", 0, 0, &delivered, &path), CANDOR_OK);
    CU_ASSERT_STRING_EQUAL(path ? path : "", "/p2");
    candor_free(path);
    path = NULL;
    CU_ASSERT_EQUAL(candor_store_delivery_find(s, "bad", 0, 0, &delivered, &path),
                    CANDOR_ENOTFOUND);
    candor_free(path);
    candor_store_free(s);
}

/* candor_store_begin/commit/rollback: rows written in a group are seen by
 * another handle only after the commit; a rollback keeps nothing; a
 * library call that rolled the group back makes the commit fail; nested
 * groups count once; the synchronous mode survives a group. */
static void test_group(void)
{
    struct candor_store *a = open_store("group.db", 0);
    struct candor_store *b = open_store("group.db", 0);
    if (!a || !b) {
        candor_store_free(a);
        candor_store_free(b);
        return;
    }
    int delivered;
    char *path = NULL;
    /* make the table outside the group, so B's lookups find it */
    CU_ASSERT_EQUAL(candor_store_delivery_record(a, "g0", NULL, "/m/0", 1, 1000, 0), CANDOR_OK);
    if (!test_state_pg())
        candor__db_exec(candor__store_db(a), "test", "PRAGMA synchronous=FULL");

    CU_ASSERT_EQUAL(candor_store_begin(a), CANDOR_OK);
    CU_ASSERT_EQUAL(candor_store_delivery_record(a, "g1", NULL, "/m/1", 0, 1000, 0), CANDOR_OK);
    CU_ASSERT_EQUAL(candor_store_delivery_record(a, "g2", NULL, "/m/2", 1, 1000, 0), CANDOR_OK);
    /* A sees its own writes, B not yet */
    CU_ASSERT_EQUAL(candor_store_delivery_find(a, "g1", 1000, 0, &delivered, &path), CANDOR_OK);
    candor_free(path);
    path = NULL;
    CU_ASSERT_EQUAL(candor_store_delivery_find(b, "g2", 1000, 0, &delivered, &path), CANDOR_ENOTFOUND);
    CU_ASSERT_EQUAL(candor_store_commit(a), CANDOR_OK);
    CU_ASSERT_EQUAL(candor_store_delivery_find(b, "g1", 1000, 0, &delivered, &path), CANDOR_OK);
    CU_ASSERT_EQUAL(delivered, 0);
    candor_free(path);
    path = NULL;
    CU_ASSERT_EQUAL(candor_store_delivery_find(b, "g2", 1000, 0, &delivered, &path), CANDOR_OK);
    CU_ASSERT_EQUAL(delivered, 1);
    candor_free(path);
    path = NULL;

    /* rolled back: nothing kept */
    CU_ASSERT_EQUAL(candor_store_begin(a), CANDOR_OK);
    CU_ASSERT_EQUAL(candor_store_delivery_record(a, "g3", NULL, "/m/3", 1, 1000, 0), CANDOR_OK);
    candor_store_rollback(a);
    CU_ASSERT_EQUAL(candor_store_delivery_find(a, "g3", 1000, 0, &delivered, &path), CANDOR_ENOTFOUND);
    CU_ASSERT_EQUAL(candor_store_delivery_find(b, "g3", 1000, 0, &delivered, &path), CANDOR_ENOTFOUND);
    candor_store_rollback(a);   /* harmless without a group */

    /* a call inside that rolled the group back: the commit fails */
    CU_ASSERT_EQUAL(candor_store_begin(a), CANDOR_OK);
    CU_ASSERT_EQUAL(candor_store_delivery_record(a, "g4", NULL, "/m/4", 1, 1000, 0), CANDOR_OK);
    CU_ASSERT_EQUAL(candor__store_begin(a), CANDOR_OK);   /* as candor_ack does */
    candor__store_rollback(a);
    CU_ASSERT_EQUAL(candor_store_commit(a), CANDOR_ERROR);
    CU_ASSERT_EQUAL(candor_store_delivery_find(b, "g4", 1000, 0, &delivered, &path), CANDOR_ENOTFOUND);
    /* and the handle works on */
    CU_ASSERT_EQUAL(candor_store_delivery_record(a, "g5", NULL, "/m/5", 1, 1000, 0), CANDOR_OK);
    CU_ASSERT_EQUAL(candor_store_delivery_find(b, "g5", 1000, 0, &delivered, &path), CANDOR_OK);
    candor_free(path);
    path = NULL;

    /* nested: only the outermost commit counts */
    CU_ASSERT_EQUAL(candor_store_begin(a), CANDOR_OK);
    CU_ASSERT_EQUAL(candor_store_begin(a), CANDOR_OK);
    CU_ASSERT_EQUAL(candor_store_delivery_record(a, "g6", NULL, "/m/6", 1, 1000, 0), CANDOR_OK);
    CU_ASSERT_EQUAL(candor_store_commit(a), CANDOR_OK);
    CU_ASSERT_EQUAL(candor_store_delivery_find(b, "g6", 1000, 0, &delivered, &path), CANDOR_ENOTFOUND);
    CU_ASSERT_EQUAL(candor_store_commit(a), CANDOR_OK);
    CU_ASSERT_EQUAL(candor_store_delivery_find(b, "g6", 1000, 0, &delivered, &path), CANDOR_OK);
    candor_free(path);

    /* misuse */
    CU_ASSERT_EQUAL(candor_store_commit(a), CANDOR_EINVAL);
    CU_ASSERT_EQUAL(candor_store_begin(NULL), CANDOR_EINVAL);
    CU_ASSERT_EQUAL(candor_store_commit(NULL), CANDOR_EINVAL);
    candor_store_rollback(NULL);

    if (!test_state_pg()) {   /* the relaxed writes inside left FULL alone */
        struct candor_stmt *q;
        int mode = -1;
        if (candor__db_prepare(candor__store_db(a), "test", "PRAGMA synchronous", &q) == CANDOR_OK) {
            if (candor__stmt_step(q) == CANDOR_DB_ROW)
                mode = (int)candor__stmt_int64(q, 0);
            candor__stmt_free(q);
        }
        CU_ASSERT_EQUAL(mode, 2);
    }
    candor_store_free(a);
    candor_store_free(b);
}

static int64_t select_int(struct candor_db *db, const char *sql, int64_t bind, bool *null)
{
    struct candor_stmt *q;
    int64_t v = -1;
    *null = false;
    if (candor__db_prepare(db, "test", sql, &q) != CANDOR_OK)
        return -2;
    if (bind >= 0)
        candor__stmt_bind_int64(q, 1, bind);
    if (candor__stmt_step(q) == CANDOR_DB_ROW) {
        *null = candor__stmt_null(q, 0);
        v = candor__stmt_int64(q, 0);
    }
    candor__stmt_free(q);
    return v;
}

/* The SQLite backend keeps freed statements for the next prepare of the
 * same SQL: they come back reset and unbound, two live copies of one SQL
 * are two statements, more SQL than the cache holds still runs, and a
 * schema change in between is seen. */
static void test_statement_reuse(void)
{
    if (test_state_pg())
        return;   /* the cache is the SQLite backend's */
    struct candor_store *s = open_store("reuse.db", 0);
    if (!s)
        return;
    struct candor_db *db = candor__store_db(s);
    bool null;
    CU_ASSERT_EQUAL(select_int(db, "SELECT ?1", 7, &null), 7);
    /* the same statement again, unbound: NULL, not the old 7 */
    CU_ASSERT_EQUAL(select_int(db, "SELECT ?1", -1, &null), 0);
    CU_ASSERT_TRUE(null);
    /* two live at once */
    struct candor_stmt *q1, *q2;
    CU_ASSERT_EQUAL(candor__db_prepare(db, "t", "SELECT ?1 + 1", &q1), CANDOR_OK);
    CU_ASSERT_EQUAL(candor__db_prepare(db, "t", "SELECT ?1 + 1", &q2), CANDOR_OK);
    CU_ASSERT_PTR_NOT_EQUAL(q1, q2);
    candor__stmt_bind_int64(q1, 1, 10);
    candor__stmt_bind_int64(q2, 1, 20);
    CU_ASSERT_EQUAL(candor__stmt_step(q1), CANDOR_DB_ROW);
    CU_ASSERT_EQUAL(candor__stmt_step(q2), CANDOR_DB_ROW);
    CU_ASSERT_EQUAL(candor__stmt_int64(q1, 0), 11);
    CU_ASSERT_EQUAL(candor__stmt_int64(q2, 0), 21);
    candor__stmt_free(q1);
    candor__stmt_free(q2);
    /* a statement freed in the middle of its rows starts over */
    CU_ASSERT_EQUAL(candor__db_exec(db, "t", "CREATE TABLE r(v INTEGER);"
                                    "INSERT INTO r VALUES (1),(2),(3)"), CANDOR_OK);
    CU_ASSERT_EQUAL(candor__db_prepare(db, "t", "SELECT v FROM r ORDER BY v", &q1), CANDOR_OK);
    CU_ASSERT_EQUAL(candor__stmt_step(q1), CANDOR_DB_ROW);
    CU_ASSERT_EQUAL(candor__stmt_step(q1), CANDOR_DB_ROW);
    candor__stmt_free(q1);
    CU_ASSERT_EQUAL(select_int(db, "SELECT v FROM r ORDER BY v", -1, &null), 1);
    /* more distinct SQL than the cache keeps */
    char sql[64];
    int bad = 0;
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 200; i++) {
            snprintf(sql, sizeof sql, "SELECT %d + ?1", i);
            if (select_int(db, sql, 1000, &null) != 1000 + i)
                bad++;
        }
    CU_ASSERT_EQUAL(bad, 0);
    /* the schema changes under a kept statement */
    CU_ASSERT_EQUAL(select_int(db, "SELECT count(*) FROM r", -1, &null), 3);
    CU_ASSERT_EQUAL(candor__db_exec(db, "t", "DROP TABLE r; CREATE TABLE r(w TEXT, v INTEGER);"
                                    "INSERT INTO r VALUES ('a', 5)"), CANDOR_OK);
    CU_ASSERT_EQUAL(select_int(db, "SELECT count(*) FROM r", -1, &null), 1);
    CU_ASSERT_EQUAL(select_int(db, "SELECT v FROM r ORDER BY v", -1, &null), 5);
    /* a transaction's BEGIN and COMMIT, kept too, run again and again */
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(candor_store_begin(s), CANDOR_OK);
        CU_ASSERT_EQUAL(candor__db_exec(db, "t", "INSERT INTO r VALUES ('b', 6)"), CANDOR_OK);
        CU_ASSERT_EQUAL(candor_store_commit(s), CANDOR_OK);
    }
    CU_ASSERT_EQUAL(select_int(db, "SELECT count(*) FROM r", -1, &null), 4);
    candor_store_free(s);
}

int main(void)
{
    static const struct test_case cases[] = {
        { "find within the window, begun then delivered", test_find_window },
        { "path by Message-ID", test_path_by_message_id },
        { "read-only store and bad arguments", test_readonly_and_args },
        { "synchronous mode restored", test_sync_mode_restored },
        { "claim once among handles", test_claim },
        { "PostgreSQL relaxed writes", test_pg_relaxed },
        { "write groups: begin, commit, rollback", test_group },
        { "prepared statements reused", test_statement_reuse },
        { NULL, NULL },
    };
    return test_main("store-delivery", cases);
}
