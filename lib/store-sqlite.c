/*
 * store-sqlite.c — the SQLite backend of the store seam (store-db.h).
 *
 * One file in WAL mode (readers never block the writer) with a busy
 * timeout, so the CLI, the daemon and other processes share it. A write
 * transaction is BEGIN IMMEDIATE: the write lock is taken before the first
 * read, so two processes can never both decide "not yet acknowledged".
 * SQLITE_BUSY/LOCKED past the timeout and SQLITE_FULL are
 * CANDOR_ETEMPFAIL (exit 75 / LMTP 451: the MTA retries).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>
#include "store-db.h"

#define BUSY_TIMEOUT_MS 15000
/* Prepared statements kept for reuse per handle (the store prepares the
 * same few dozen statements for every message: compiling them again cost
 * candor-lmtpd 7% of its CPU) */
#define STMT_CACHE 48

struct sqlite_stmt;

struct sqlite_db {
    struct candor_db base;
    sqlite3 *h;
    int saved_sync;       /* PRAGMA synchronous before candor__db_relaxed(), -1 none */
    int own_sync;         /* the handle's PRAGMA synchronous, read once; -1 not yet */
    struct sqlite_stmt *idle[STMT_CACHE];   /* reset, unbound, oldest first */
    size_t n_idle;
};

struct sqlite_stmt {
    struct candor_stmt base;
    sqlite3_stmt *q;
    int64_t changes;
};

#define DB(d) ((struct sqlite_db *)(d))
#define ST(s) ((struct sqlite_stmt *)(s))

static candor_status_t fail(sqlite3 *h, int rc, const char *what)
{
    const char *m = h ? sqlite3_errmsg(h) : sqlite3_errstr(rc);
    int prim = rc & 0xff;
    if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
        return candor__fail(CANDOR_ETEMPFAIL, "store: %s: state busy (%s)", what, m);
    if (prim == SQLITE_FULL)
        return candor__fail(CANDOR_ETEMPFAIL, "store: %s: %s", what, m);
    if (prim == SQLITE_NOMEM)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    return candor__fail(CANDOR_EIO, "store: %s: %s", what, m);
}

static void s_close(struct candor_db *d)
{
    for (size_t i = 0; i < DB(d)->n_idle; i++) {
        sqlite3_finalize(DB(d)->idle[i]->q);
        free(DB(d)->idle[i]);
    }
    DB(d)->n_idle = 0;
    if (DB(d)->h) {
        if (!sqlite3_get_autocommit(DB(d)->h))
            sqlite3_exec(DB(d)->h, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close_v2(DB(d)->h);
    }
    free(d);
}

static candor_status_t s_exec(struct candor_db *d, const char *what, const char *sql)
{
    int rc = sqlite3_exec(DB(d)->h, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? CANDOR_OK : fail(DB(d)->h, rc, what);
}

/* SQL's statement from the idle ones, taken out of the cache (the newest
 * first: a statement prepared twice before either is freed gets two). */
static struct sqlite_stmt *take_idle(struct sqlite_db *db, const char *sql)
{
    for (size_t i = db->n_idle; i-- > 0;) {
        struct sqlite_stmt *s = db->idle[i];
        const char *t = sqlite3_sql(s->q);
        if (t && strcmp(t, sql) == 0) {
            memmove(&db->idle[i], &db->idle[i + 1], (db->n_idle - i - 1) * sizeof db->idle[0]);
            db->n_idle--;
            return s;
        }
    }
    return NULL;
}

static candor_status_t s_prepare(struct candor_db *d, const char *what, const char *sql,
                                 struct candor_stmt **out)
{
    struct sqlite_stmt *s = take_idle(DB(d), sql);
    if (s) {   /* reset and unbound when it was put back */
        s->base.what = what;
        s->base.pure = false;
        s->changes = 0;
        *out = &s->base;
        return CANDOR_OK;
    }
    s = calloc(1, sizeof *s);
    if (!s)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    int rc = sqlite3_prepare_v3(DB(d)->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->q, NULL);
    if (rc != SQLITE_OK) {
        candor_status_t st = fail(DB(d)->h, rc, what);
        sqlite3_finalize(s->q);
        free(s);
        return st;
    }
    s->base.db = d;
    s->base.what = what;
    *out = &s->base;
    return CANDOR_OK;
}

static void s_bind_null(struct candor_stmt *s, int i) { sqlite3_bind_null(ST(s)->q, i); }
static void s_bind_text(struct candor_stmt *s, int i, const char *v)
{
    sqlite3_bind_text(ST(s)->q, i, v, -1, SQLITE_TRANSIENT);
}
static void s_bind_int64(struct candor_stmt *s, int i, int64_t v) { sqlite3_bind_int64(ST(s)->q, i, v); }
static void s_bind_double(struct candor_stmt *s, int i, double v) { sqlite3_bind_double(ST(s)->q, i, v); }
static void s_bind_blob(struct candor_stmt *s, int i, const void *v, size_t n)
{
    sqlite3_bind_blob64(ST(s)->q, i, v, n, SQLITE_TRANSIENT);
}

static int s_step(struct candor_stmt *s)
{
    int rc = sqlite3_step(ST(s)->q);
    if (rc == SQLITE_ROW)
        return CANDOR_DB_ROW;
    if (rc == SQLITE_DONE) {
        ST(s)->changes = sqlite3_changes(DB(s->db)->h);
        return CANDOR_DB_DONE;
    }
    return fail(DB(s->db)->h, rc, s->what);
}

static bool s_col_null(struct candor_stmt *s, int c) { return sqlite3_column_type(ST(s)->q, c) == SQLITE_NULL; }
static int64_t s_col_int64(struct candor_stmt *s, int c) { return sqlite3_column_int64(ST(s)->q, c); }
static double s_col_double(struct candor_stmt *s, int c) { return sqlite3_column_double(ST(s)->q, c); }
static const char *s_col_text(struct candor_stmt *s, int c)
{
    return (const char *)sqlite3_column_text(ST(s)->q, c);
}
static const void *s_col_blob(struct candor_stmt *s, int c, size_t *n)
{
    const void *p = sqlite3_column_blob(ST(s)->q, c);
    *n = (size_t)sqlite3_column_bytes(ST(s)->q, c);
    return p;
}
static int s_columns(struct candor_stmt *s) { return sqlite3_column_count(ST(s)->q); }
static const char *s_column_name(struct candor_stmt *s, int c) { return sqlite3_column_name(ST(s)->q, c); }
static int64_t s_changes(struct candor_stmt *s) { return ST(s)->changes; }
static void s_reset(struct candor_stmt *s)
{
    sqlite3_reset(ST(s)->q);
    sqlite3_clear_bindings(ST(s)->q);
}
/* Back into the handle's cache, reset and unbound (the oldest idle one is
 * finalized when the cache is full). */
static void s_free(struct candor_stmt *s)
{
    struct sqlite_db *db = DB(s->db);
    sqlite3_reset(ST(s)->q);
    sqlite3_clear_bindings(ST(s)->q);
    if (db->n_idle == STMT_CACHE) {
        sqlite3_finalize(db->idle[0]->q);
        free(db->idle[0]);
        memmove(&db->idle[0], &db->idle[1], (STMT_CACHE - 1) * sizeof db->idle[0]);
        db->n_idle--;
    }
    db->idle[db->n_idle++] = ST(s);
}

/* Run one statement without parameters or rows through the cache (BEGIN,
 * COMMIT, PRAGMA ...): exec would compile it every time. */
static candor_status_t run_once(struct candor_db *d, const char *what, const char *sql)
{
    struct candor_stmt *s;
    candor_status_t st = s_prepare(d, what, sql, &s);
    if (st != CANDOR_OK)
        return st;
    int rc;
    while ((rc = s_step(s)) == CANDOR_DB_ROW)
        ;
    s_free(s);
    return rc == CANDOR_DB_DONE ? CANDOR_OK : (candor_status_t)rc;
}

static candor_status_t s_begin(struct candor_db *d, bool write)
{
    return run_once(d, "begin", write ? "BEGIN IMMEDIATE" : "BEGIN");
}

static candor_status_t s_commit(struct candor_db *d)
{
    candor_status_t st = run_once(d, "commit", "COMMIT");
    if (st != CANDOR_OK && !sqlite3_get_autocommit(DB(d)->h))
        sqlite3_exec(DB(d)->h, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

static void s_rollback(struct candor_db *d)
{
    if (!sqlite3_get_autocommit(DB(d)->h))
        sqlite3_exec(DB(d)->h, "ROLLBACK", NULL, NULL, NULL);
}

static bool s_in_transaction(struct candor_db *d) { return !sqlite3_get_autocommit(DB(d)->h); }

static candor_status_t pragma_int(struct candor_db *d, const char *sql, int *v)
{
    sqlite3_stmt *q = NULL;
    *v = 0;
    int rc = sqlite3_prepare_v2(DB(d)->h, sql, -1, &q, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            *v = sqlite3_column_int(q, 0);
            rc = SQLITE_OK;
        }
    }
    candor_status_t st = rc == SQLITE_OK ? CANDOR_OK : fail(DB(d)->h, rc, sql);
    sqlite3_finalize(q);
    return st;
}

static candor_status_t s_schema_version(struct candor_db *d, int *v)
{
    return pragma_int(d, "PRAGMA user_version", v);
}

static candor_status_t s_set_schema_version(struct candor_db *d, int v)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version=%d", v);
    return s_exec(d, "user_version", sql);
}

static candor_status_t s_table_exists(struct candor_db *d, const char *name, bool *exists)
{
    *exists = false;
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(DB(d)->h, "SELECT 1 FROM sqlite_master WHERE type = 'table' "
                                "AND name = ?1", -1, &q, NULL);
    if (rc != SQLITE_OK)
        return fail(DB(d)->h, rc, "schema");
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc == SQLITE_ROW)
        *exists = true;
    else if (rc != SQLITE_DONE)
        return fail(DB(d)->h, rc, "schema");
    return CANDOR_OK;
}

/* synchronous=NORMAL in WAL mode: a commit survives a crash of the
 * process at once and reaches the disk with the next synchronous commit
 * or checkpoint; the handle's own setting is restored afterwards. Inside
 * a transaction nothing changes (SQLite refuses to there): its commit
 * decides for everything written in it. The handle's setting is read once
 * (only this function changes it). */
static void s_relaxed(struct candor_db *d, bool on)
{
    struct sqlite_db *db = DB(d);
    if (on) {
        db->saved_sync = -1;
        if (!sqlite3_get_autocommit(db->h))
            return;
        if (db->own_sync < 0 && pragma_int(d, "PRAGMA synchronous", &db->own_sync) != CANDOR_OK)
            db->own_sync = -1;
        if (db->own_sync > 1 &&
            run_once(d, "synchronous", "PRAGMA synchronous=NORMAL") == CANDOR_OK)
            db->saved_sync = db->own_sync;
    } else if (db->saved_sync > 1) {
        static const char *const restore[] = { NULL, NULL, "PRAGMA synchronous=FULL",
                                               "PRAGMA synchronous=EXTRA" };
        if (db->saved_sync < 4)
            run_once(d, "synchronous", restore[db->saved_sync]);
        db->saved_sync = -1;
    }
}

/* AUTOINCREMENT keeps sqlite_sequence at the largest id ever inserted,
 * explicit ids included: nothing to do. */
static candor_status_t s_sync_sequence(struct candor_db *d, const char *table, const char *column)
{
    return CANDOR_OK;
}

static const char *const tokens[] = {
    "@SERIAL", "INTEGER PRIMARY KEY AUTOINCREMENT",
    "@ID", "INTEGER PRIMARY KEY",
    "@INTPK", "INTEGER PRIMARY KEY",
    "@INT", "INTEGER",
    "@BLOB", "BLOB",
    "@NOROWID", " WITHOUT ROWID",
    NULL
};

static const struct candor_db_ops sqlite_ops = {
    .kind = CANDOR_DB_SQLITE,
    .close = s_close, .exec = s_exec, .ddl_tokens = tokens, .prepare = s_prepare,
    .bind_null = s_bind_null, .bind_text = s_bind_text, .bind_int64 = s_bind_int64,
    .bind_double = s_bind_double, .bind_blob = s_bind_blob, .step = s_step,
    .col_null = s_col_null, .col_int64 = s_col_int64, .col_double = s_col_double,
    .col_text = s_col_text, .col_blob = s_col_blob, .columns = s_columns,
    .column_name = s_column_name, .changes = s_changes, .reset = s_reset, .free = s_free,
    .begin = s_begin, .commit = s_commit, .rollback = s_rollback,
    .in_transaction = s_in_transaction, .schema_version = s_schema_version,
    .set_schema_version = s_set_schema_version, .table_exists = s_table_exists,
    .relaxed = s_relaxed, .sync_sequence = s_sync_sequence,
};

candor_status_t candor__db_open_sqlite(struct candor_db **out, const char *path,
                                       enum candor_db_mode mode)
{
    *out = NULL;
    struct sqlite_db *db = calloc(1, sizeof *db);
    if (!db)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    db->base.ops = &sqlite_ops;
    db->saved_sync = -1;
    db->own_sync = -1;
    int oflags = SQLITE_OPEN_NOMUTEX;   /* a handle belongs to one thread */
    if (mode == CANDOR_DB_MEMORY)
        oflags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY;
    else if (mode == CANDOR_DB_RO)
        oflags |= SQLITE_OPEN_READONLY;
    else
        oflags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(mode == CANDOR_DB_MEMORY ? ":memory:" : path, &db->h, oflags, NULL);
    if (rc != SQLITE_OK) {
        candor_status_t st = mode == CANDOR_DB_MEMORY && rc == SQLITE_NOMEM
            ? candor__fail(CANDOR_ENOMEM, "out of memory")
            : candor__fail(CANDOR_EIO, "store: %s: %s", path,
                           db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
        s_close(&db->base);
        return st;
    }
    sqlite3_busy_timeout(db->h, BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(db->h, 1);
    /* A 32 MiB page cache (the default is 2 MiB): the reply-history index
     * is read at random, and bulk imports of a Sent folder were bound by
     * cache misses (tests/bench/bench-check). Memory is only taken as
     * pages are read. */
    sqlite3_exec(db->h, "PRAGMA cache_size=-32768", NULL, NULL, NULL);
    if (mode == CANDOR_DB_RW) {
        /* WAL: readers never block the writer; persistent in the file.
         * When several handles open a new file at once, the switch can
         * fail with SQLITE_BUSY without the busy handler being called:
         * try again for up to the busy timeout (a file already in WAL
         * mode answers at once). */
        candor_status_t st;
        for (int i = 0;; i++) {
            st = s_exec(&db->base, "journal_mode", "PRAGMA journal_mode=WAL");
            if (st != CANDOR_ETEMPFAIL || i >= BUSY_TIMEOUT_MS / 10)
                break;
            struct timespec ts = { 0, 10 * 1000 * 1000 };
            nanosleep(&ts, NULL);
        }
        if (st != CANDOR_OK) {
            s_close(&db->base);
            return st;
        }
    }
    *out = &db->base;
    return CANDOR_OK;
}
