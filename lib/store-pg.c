/*
 * store-pg.c — the PostgreSQL backend of the store seam (store-db.h),
 * through libpq, so that several mail hosts share one state.
 *
 * Input: a libpq connection string, either a URI ("postgresql://...",
 * "postgres://...") or keywords ("host=... dbname=..."); connect_timeout
 * defaults to 10 s and application_name to "candor" (the string wins).
 *
 * Statements: the shared SQL of the modules, with "?"/"?N" rewritten to
 * $N. A statement is PQprepare'd on its first execution, with the types of
 * the values then bound (int8, float8, bytea; text and NULL left to the
 * server), and cached per connection by its text: preparing the same SQL
 * again costs no round trip. Parameters go as text (bytea as binary),
 * results come back as text and are fetched whole (every query that can
 * return many rows has a LIMIT or is a bounded export).
 *
 * Atomic decisions across hosts. The acknowledgement decision reads
 * "has this thread been acknowledged?" (every Message-ID of In-Reply-To
 * and References, possibly from several senders) and "how many
 * acknowledgements did this sender get in the window?" (a configurable N
 * per period), then writes. Neither check is a single-row uniqueness that
 * a constraint or an upsert could decide (N per period is a count, a
 * thread is a set of ids learnt over time), and under READ COMMITTED two
 * hosts would both read "none" and both acknowledge. So a write
 * transaction takes pg_advisory_xact_lock(CANDOR, 1) first: the same
 * one-writer-at-a-time rule as SQLite's BEGIN IMMEDIATE, across hosts,
 * released by COMMIT/ROLLBACK or when the connection dies. A per-sender
 * lock would let unrelated senders decide in parallel, but a thread
 * crosses senders (Cc) and its ids are only known inside the decision,
 * so it could not be taken first in a deadlock-free order. (A finer
 * scheme would take this lock in shared mode plus exclusive locks on the
 * hashes of the sender and of each thread id of the message, ascending,
 * in the BEGIN round trip, other writers keeping the exclusive global
 * lock; it needs the rate-limit key, the normalised acknowledgement
 * recipient, before the decision derives it, and it only pays across
 * processes: candor-lmtpd's group commit runs one decision transaction at
 * a time anyway.) The lock is
 * held for the few statements of one decision (well under a millisecond
 * on a LAN; tests/bench/store-bench.py measures it). Each statement after
 * the lock takes a new snapshot (READ COMMITTED), so it sees what the
 * previous holder committed. Beneath the lock, constraints still refuse
 * what must never happen: acks.ticket is a primary key (one
 * acknowledgement per ticket), tickets.id is an identity column (a
 * sequence: no number twice, whatever the host; numbers of rolled-back
 * decisions are skipped, never reused).
 *
 * Failures. A refused or lost connection, and the server errors that
 * mean "try again" (SQLSTATE classes 08 connection, 40 rollback, 53
 * resources, 57 operator intervention such as a shutdown, 58 system, and
 * 55P03 lock not available), are CANDOR_ETEMPFAIL; the daemon answers
 * 451 4.3.0 and the CLI exits 75. A lost connection is noticed by
 * PQstatus() and reset (PQreset) on the next call; outside a transaction
 * a statement that failed because the connection had died is retried
 * once on the new connection (every such statement of the store is a
 * read or an idempotent upsert), so a server restart costs no message.
 * Inside a transaction nothing is retried: the transaction is gone and
 * the caller's whole decision fails with ETEMPFAIL and is retried by the
 * MTA.
 * libpq's notices (e.g. "relation already exists, skipping") are dropped:
 * no stderr from lib/.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include "store-db.h"

#define INT8OID 20
#define FLOAT8OID 701
#define BYTEAOID 17
#define BOOLOID 16
#define MAX_PARAMS 32
#define MAX_SQL (64 * 1024)
/* pg_advisory_xact_lock(DECISION_LOCK_CLASS, 1): "CAND" */
#define DECISION_LOCK_CLASS 0x43414e44

struct cached_stmt {
    char *sql;            /* rewritten text */
    unsigned gen;         /* connection generation it was prepared on; 0 never */
};

struct pg_db {
    struct candor_db base;
    PGconn *conn;
    unsigned gen;         /* bumped on every (re)connection */
    bool in_txn;
    bool relaxed;         /* candor__db_relaxed(): commits do not wait for the WAL flush */
    struct cached_stmt *cache;
    size_t n_cache, cap_cache;
};

struct pg_stmt {
    struct candor_stmt base;
    char *sql;
    int nparams;
    size_t cache_idx;     /* index in the db's cache, or SIZE_MAX before the first run */
    char *vals[MAX_PARAMS];
    int lens[MAX_PARAMS];
    int fmts[MAX_PARAMS];
    unsigned int types[MAX_PARAMS];
    PGresult *res;
    int row, nrows;
    int64_t changes;
    unsigned char *blob;  /* the last bytea read, PQfreemem'd */
};

#define DB(d) ((struct pg_db *)(d))
#define ST(s) ((struct pg_stmt *)(s))

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* The first line of libpq's message (messages end in "\n" and may carry
 * DETAIL lines). */
static const char *first_line(const char *m, char *buf, size_t size)
{
    if (!m || !*m)
        return "unknown error";
    size_t n = strcspn(m, "\n");
    if (n >= size)
        n = size - 1;
    memcpy(buf, m, n);
    buf[n] = '\0';
    return buf;
}

static bool sqlstate_temporary(const char *code)
{
    if (!code || strlen(code) != 5)
        return false;
    return strncmp(code, "08", 2) == 0 || strncmp(code, "40", 2) == 0 ||
           strncmp(code, "53", 2) == 0 || strncmp(code, "57", 2) == 0 ||
           strncmp(code, "58", 2) == 0 || strcmp(code, "55P03") == 0;
}

/* The failure of a command that gave RES (may be NULL) on DB. */
static candor_status_t fail(struct pg_db *db, const PGresult *res, const char *what)
{
    char buf[400];
    if (!db->conn || PQstatus(db->conn) != CONNECTION_OK)
        return candor__fail(CANDOR_ETEMPFAIL, "store: %s: PostgreSQL connection lost: %s", what,
                            first_line(db->conn ? PQerrorMessage(db->conn) : NULL, buf, sizeof buf));
    const char *code = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn);
    if (!res && !code)   /* no result at all: out of memory or a lost connection */
        return candor__fail(CANDOR_ETEMPFAIL, "store: %s: PostgreSQL: %s", what,
                            first_line(msg, buf, sizeof buf));
    if (code && strcmp(code, "53200") == 0)
        return candor__fail(CANDOR_ETEMPFAIL, "store: %s: PostgreSQL out of memory", what);
    return candor__fail(sqlstate_temporary(code) ? CANDOR_ETEMPFAIL : CANDOR_EIO,
                        "store: %s: PostgreSQL: %s", what, first_line(msg, buf, sizeof buf));
}

static bool result_ok(const PGresult *res)
{
    ExecStatusType t = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    return t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK;
}

/* Make sure the connection is up: reset it when it was lost (never inside
 * a transaction: that transaction is gone). */
static candor_status_t ensure(struct pg_db *db, const char *what)
{
    if (PQstatus(db->conn) == CONNECTION_OK)
        return CANDOR_OK;
    if (db->in_txn)
        return fail(db, NULL, what);
    PQreset(db->conn);
    db->gen++;
    if (PQstatus(db->conn) != CONNECTION_OK) {
        char buf[400];
        return candor__fail(CANDOR_ETEMPFAIL, "store: %s: cannot reach PostgreSQL: %s", what,
                            first_line(PQerrorMessage(db->conn), buf, sizeof buf));
    }
    return CANDOR_OK;
}

/* Whether a failed command may be retried on a fresh connection: the
 * connection died and no transaction was open. */
static bool retry_after_reset(struct pg_db *db)
{
    return !db->in_txn && PQstatus(db->conn) != CONNECTION_OK;
}

static void p_close(struct candor_db *d)
{
    struct pg_db *db = DB(d);
    if (db->conn)
        PQfinish(db->conn);
    for (size_t i = 0; i < db->n_cache; i++)
        free(db->cache[i].sql);
    free(db->cache);
    free(db);
}

/* Run SQL once, and once more on a fresh connection when the first try
 * lost it outside a transaction. With PARAMS, PQexecParams with at most one
 * text parameter PARAM; else PQexec (several statements allowed). On
 * success *OUT is the result, yours to PQclear(). */
static candor_status_t run(struct pg_db *db, const char *what, const char *sql, bool params,
                           const char *param, PGresult **out)
{
    *out = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        candor_status_t st = ensure(db, what);
        if (st != CANDOR_OK)
            return st;
        const char *vals[1] = { param };
        PGresult *res = params
            ? PQexecParams(db->conn, sql, param ? 1 : 0, NULL, vals, NULL, NULL, 0)
            : PQexec(db->conn, sql);
        if (result_ok(res)) {
            *out = res;
            return CANDOR_OK;
        }
        st = fail(db, res, what);
        PQclear(res);
        if (attempt > 0 || !retry_after_reset(db))
            return st;
    }
    return CANDOR_ERROR;   /* not reached */
}

/* Run SQL (no parameters; several statements allowed). */
static candor_status_t p_exec(struct candor_db *d, const char *what, const char *sql)
{
    PGresult *res;
    candor_status_t st = run(DB(d), what, sql, false, NULL, &res);
    PQclear(res);
    return st;
}

/* "?" and "?N" to $N, outside quoted strings and identifiers. */
static candor_status_t rewrite(const char *sql, char **out, int *nparams)
{
    struct candor_buf b = CANDOR_BUF_INIT;
    int next = 0, max = 0;
    char quote = 0;
    *out = NULL;
    *nparams = 0;
    if (strlen(sql) > MAX_SQL)
        return candor__fail(CANDOR_EINVAL, "store: statement too long");
    for (const char *p = sql; *p; p++) {
        if (quote) {
            if (*p == quote)
                quote = 0;
            candor__buf_putc(&b, *p);
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
            candor__buf_putc(&b, *p);
        } else if (*p == '?') {
            int n = 0;
            while (candor__is_digit((unsigned char)p[1]) && n < 1000)
                n = n * 10 + (*++p - '0');
            if (!n)
                n = ++next;
            else if (n > next)
                next = n;
            if (n > max)
                max = n;
            candor__buf_printf(&b, "$%d", n);
        } else {
            candor__buf_putc(&b, *p);
        }
    }
    if (max > MAX_PARAMS) {
        candor__buf_free(&b);
        return candor__fail(CANDOR_EINVAL, "store: more than %d parameters", MAX_PARAMS);
    }
    char *s = candor__buf_steal(&b);
    if (!s || b.oom) {
        free(s);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    *out = s;
    *nparams = max;
    return CANDOR_OK;
}

static candor_status_t p_prepare(struct candor_db *d, const char *what, const char *sql,
                                 struct candor_stmt **out)
{
    struct pg_stmt *s = calloc(1, sizeof *s);
    if (!s)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    candor_status_t st = rewrite(sql, &s->sql, &s->nparams);
    if (st != CANDOR_OK) {
        free(s);
        return st;
    }
    s->base.db = d;
    s->base.what = what;
    s->cache_idx = SIZE_MAX;
    s->row = -1;
    *out = &s->base;
    return CANDOR_OK;
}

static void clear_result(struct pg_stmt *s)
{
    PQclear(s->res);
    s->res = NULL;
    s->row = -1;
    s->nrows = 0;
    if (s->blob) {
        PQfreemem(s->blob);
        s->blob = NULL;
    }
}

static void set_param(struct pg_stmt *s, int i, char *v, int len, int fmt, unsigned int type)
{
    if (i < 1 || i > s->nparams) {
        free(v);
        return;
    }
    free(s->vals[i - 1]);
    s->vals[i - 1] = v;
    s->lens[i - 1] = len;
    s->fmts[i - 1] = fmt;
    s->types[i - 1] = type;
}

static void p_bind_null(struct candor_stmt *s, int i) { set_param(ST(s), i, NULL, 0, 0, 0); }

static void p_bind_text(struct candor_stmt *s, int i, const char *v)
{
    /* NULL on out-of-memory: the statement then fails on a NOT NULL
     * column or finds nothing, never writes a wrong value */
    set_param(ST(s), i, candor__strdup(v), 0, 0, 0);
}

static void p_bind_int64(struct candor_stmt *s, int i, int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    set_param(ST(s), i, candor__strdup(buf), 0, 0, INT8OID);
}

static void p_bind_double(struct candor_stmt *s, int i, double v)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.17g", v);
    set_param(ST(s), i, candor__strdup(buf), 0, 0, FLOAT8OID);
}

static void p_bind_blob(struct candor_stmt *s, int i, const void *v, size_t n)
{
    char *copy = malloc(n ? n : 1);
    if (copy && n)
        memcpy(copy, v, n);
    set_param(ST(s), i, copy, (int)n, 1, BYTEAOID);
}

/* The cache slot of S's text on DB (added on first use). */
static candor_status_t cache_slot(struct pg_db *db, struct pg_stmt *s)
{
    if (s->cache_idx != SIZE_MAX)
        return CANDOR_OK;
    for (size_t i = 0; i < db->n_cache; i++)
        if (strcmp(db->cache[i].sql, s->sql) == 0) {
            s->cache_idx = i;
            return CANDOR_OK;
        }
    if (db->n_cache == db->cap_cache) {
        size_t cap = db->cap_cache ? db->cap_cache * 2 : 64;
        struct cached_stmt *c = realloc(db->cache, cap * sizeof *c);
        if (!c)
            return candor__fail(CANDOR_ENOMEM, "out of memory");
        db->cache = c;
        db->cap_cache = cap;
    }
    char *copy = candor__strdup(s->sql);
    if (!copy)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    db->cache[db->n_cache] = (struct cached_stmt){ copy, 0 };
    s->cache_idx = db->n_cache++;
    return CANDOR_OK;
}

/* Execute S (already prepared as NAME) outside a transaction without
 * waiting for the server's WAL flush, in one round trip: a pipeline of
 * set_config('synchronous_commit', 'off', true) and S, then a Sync. Both
 * run in the pipeline's one implicit transaction, committed at the Sync
 * (all or nothing), and the setting is local to that transaction, so the
 * connection's other commits still wait for the flush. The caller has
 * entered pipeline mode; it is left here. The result of S (or the first
 * failure), yours to PQclear(); NULL when the connection broke. */
static PGresult *execute_relaxed(struct pg_db *db, struct pg_stmt *s, const char *name)
{
    PGresult *out = NULL;
    int sent = 0;
    if (PQsendQueryParams(db->conn, "SELECT set_config('synchronous_commit', 'off', true)", 0,
                          NULL, NULL, NULL, NULL, 0))
        sent++;
    if (sent == 1 && PQsendQueryPrepared(db->conn, name, s->nparams,
                                         (const char *const *)s->vals, s->lens, s->fmts, 0))
        sent++;
    if (sent < 2 || !PQpipelineSync(db->conn)) {
        /* libpq could not queue it (out of memory, a broken connection):
         * nothing ran; a query left queued keeps pipeline mode on, so
         * start afresh */
        if (!PQexitPipelineMode(db->conn) && PQstatus(db->conn) == CONNECTION_OK) {
            PQreset(db->conn);
            db->gen++;
        }
        return NULL;
    }
    /* each query gives its result then NULL; then the Sync's own result.
     * A failed query turns the later ones into PGRES_PIPELINE_ABORTED. */
    for (int i = 0; i < sent; i++) {
        PGresult *r = PQgetResult(db->conn);
        if (!r)
            break;   /* the connection failed */
        ExecStatusType t = PQresultStatus(r);
        if (!out && (i == sent - 1 || (t != PGRES_TUPLES_OK && t != PGRES_COMMAND_OK))) {
            out = r;   /* S's result, or the first failure */
        } else {
            PQclear(r);
        }
        while ((r = PQgetResult(db->conn)) != NULL)
            PQclear(r);
    }
    PGresult *r;
    for (int guard = 0; guard < 16 && (r = PQgetResult(db->conn)) != NULL; guard++) {
        ExecStatusType t = PQresultStatus(r);
        PQclear(r);
        if (t == PGRES_PIPELINE_SYNC)
            break;
    }
    if (!PQexitPipelineMode(db->conn)) {
        /* results left unread: the connection broke (the next call resets
         * it, which also ends pipeline mode); on a live one, reset now */
        if (PQstatus(db->conn) == CONNECTION_OK) {
            PQreset(db->conn);
            db->gen++;
        }
        PQclear(out);
        out = NULL;
    }
    if (out && PQresultStatus(out) == PGRES_PIPELINE_ABORTED) {
        PQclear(out);
        out = NULL;
    }
    return out;
}

/* Execute S (prepared on this connection first if needed). */
static candor_status_t execute(struct pg_db *db, struct pg_stmt *s)
{
    candor_status_t st = ensure(db, s->base.what);
    if (st == CANDOR_OK)
        st = cache_slot(db, s);
    if (st != CANDOR_OK)
        return st;
    struct cached_stmt *c = &db->cache[s->cache_idx];
    char name[32];
    snprintf(name, sizeof name, "candor_%zu", s->cache_idx);
    if (c->gen != db->gen) {
        PGresult *res = PQprepare(db->conn, name, s->sql, s->nparams, s->types);
        if (!result_ok(res)) {
            st = fail(db, res, s->base.what);
            PQclear(res);
            return st;
        }
        PQclear(res);
        c->gen = db->gen;
    }
    if (db->relaxed && !db->in_txn &&
        PQtransactionStatus(db->conn) == PQTRANS_IDLE && PQenterPipelineMode(db->conn))
        s->res = execute_relaxed(db, s, name);
    else
        s->res = PQexecPrepared(db->conn, name, s->nparams, (const char *const *)s->vals,
                                s->lens, s->fmts, 0);
    if (!result_ok(s->res)) {
        st = fail(db, s->res, s->base.what);
        clear_result(s);
        return st;
    }
    s->row = -1;
    s->nrows = PQresultStatus(s->res) == PGRES_TUPLES_OK ? PQntuples(s->res) : 0;
    const char *n = PQcmdTuples(s->res);
    s->changes = n && *n ? strtoll(n, NULL, 10) : 0;
    return CANDOR_OK;
}

static int p_step(struct candor_stmt *st)
{
    struct pg_stmt *s = ST(st);
    struct pg_db *db = DB(st->db);
    if (!s->res) {
        candor_status_t rc = execute(db, s);
        if (rc != CANDOR_OK && retry_after_reset(db))
            rc = execute(db, s);   /* the server restarted since the last call */
        if (rc != CANDOR_OK)
            return rc;
    }
    if (s->row + 1 < s->nrows) {
        s->row++;
        if (s->blob) {
            PQfreemem(s->blob);
            s->blob = NULL;
        }
        return CANDOR_DB_ROW;
    }
    s->row = s->nrows;
    return CANDOR_DB_DONE;
}

static bool in_row(struct pg_stmt *s, int c)
{
    return s->res && s->row >= 0 && s->row < s->nrows && c >= 0 && c < PQnfields(s->res);
}

static bool p_col_null(struct candor_stmt *st, int c)
{
    struct pg_stmt *s = ST(st);
    return !in_row(s, c) || PQgetisnull(s->res, s->row, c);
}

static int64_t p_col_int64(struct candor_stmt *st, int c)
{
    struct pg_stmt *s = ST(st);
    if (p_col_null(st, c))
        return 0;
    const char *v = PQgetvalue(s->res, s->row, c);
    if (PQftype(s->res, c) == BOOLOID)
        return v[0] == 't';
    return strtoll(v, NULL, 10);
}

static double p_col_double(struct candor_stmt *st, int c)
{
    struct pg_stmt *s = ST(st);
    if (p_col_null(st, c))
        return 0;
    return strtod(PQgetvalue(s->res, s->row, c), NULL);
}

static const char *p_col_text(struct candor_stmt *st, int c)
{
    struct pg_stmt *s = ST(st);
    if (p_col_null(st, c))
        return NULL;
    return PQgetvalue(s->res, s->row, c);
}

static const void *p_col_blob(struct candor_stmt *st, int c, size_t *n)
{
    struct pg_stmt *s = ST(st);
    *n = 0;
    if (p_col_null(st, c))
        return NULL;
    if (s->blob) {
        PQfreemem(s->blob);
        s->blob = NULL;
    }
    const char *v = PQgetvalue(s->res, s->row, c);
    if (PQftype(s->res, c) != BYTEAOID) {   /* text read as bytes */
        *n = (size_t)PQgetlength(s->res, s->row, c);
        return v;
    }
    s->blob = PQunescapeBytea((const unsigned char *)v, n);
    return s->blob;
}

static int p_columns(struct candor_stmt *st)
{
    struct pg_stmt *s = ST(st);
    return s->res ? PQnfields(s->res) : 0;
}

static const char *p_column_name(struct candor_stmt *st, int c)
{
    struct pg_stmt *s = ST(st);
    return s->res && c >= 0 && c < PQnfields(s->res) ? PQfname(s->res, c) : NULL;
}

static int64_t p_changes(struct candor_stmt *st) { return ST(st)->changes; }

static void p_reset(struct candor_stmt *st)
{
    struct pg_stmt *s = ST(st);
    clear_result(s);
    for (int i = 0; i < s->nparams; i++) {
        free(s->vals[i]);
        s->vals[i] = NULL;
        s->lens[i] = s->fmts[i] = 0;
        /* the types stay: they only matter to the first PQprepare */
    }
    s->changes = 0;
}

static void p_free(struct candor_stmt *st)
{
    struct pg_stmt *s = ST(st);
    clear_result(s);
    for (int i = 0; i < s->nparams; i++)
        free(s->vals[i]);
    free(s->sql);
    free(s);
}

static candor_status_t p_begin(struct candor_db *d, bool write)
{
    struct pg_db *db = DB(d);
    char sql[128];
    if (write)
        snprintf(sql, sizeof sql, "BEGIN; SELECT pg_advisory_xact_lock(%d, 1)",
                 DECISION_LOCK_CLASS);
    else
        snprintf(sql, sizeof sql, "BEGIN");
    candor_status_t st = p_exec(d, "begin", sql);   /* retried once after a reset */
    if (st == CANDOR_OK)
        db->in_txn = true;
    else if (PQstatus(db->conn) == CONNECTION_OK &&
             PQtransactionStatus(db->conn) != PQTRANS_IDLE) {
        PGresult *res = PQexec(db->conn, "ROLLBACK");
        PQclear(res);
    }
    return st;
}

static candor_status_t p_commit(struct candor_db *d)
{
    struct pg_db *db = DB(d);
    candor_status_t st;
    if (PQstatus(db->conn) != CONNECTION_OK) {
        st = fail(db, NULL, "commit");
    } else {
        PGresult *res = PQexec(db->conn, "COMMIT");
        if (!result_ok(res))
            st = fail(db, res, "commit");
        else if (strcmp(PQcmdStatus(res), "ROLLBACK") == 0)   /* an aborted transaction */
            st = candor__fail(CANDOR_EIO, "store: commit: the transaction was rolled back");
        else
            st = CANDOR_OK;
        PQclear(res);
        if (st != CANDOR_OK && PQstatus(db->conn) == CONNECTION_OK &&
            PQtransactionStatus(db->conn) != PQTRANS_IDLE) {
            res = PQexec(db->conn, "ROLLBACK");
            PQclear(res);
        }
    }
    db->in_txn = false;
    return st;
}

static void p_rollback(struct candor_db *d)
{
    struct pg_db *db = DB(d);
    if (PQstatus(db->conn) == CONNECTION_OK &&
        PQtransactionStatus(db->conn) != PQTRANS_IDLE) {
        PGresult *res = PQexec(db->conn, "ROLLBACK");
        PQclear(res);
    }
    db->in_txn = false;
}

static bool p_in_transaction(struct candor_db *d)
{
    struct pg_db *db = DB(d);
    return db->in_txn && PQstatus(db->conn) == CONNECTION_OK &&
           PQtransactionStatus(db->conn) != PQTRANS_IDLE;
}

/* One integer from SQL with at most one text parameter. */
static candor_status_t query_int(struct pg_db *db, const char *what, const char *sql,
                                 const char *param, int64_t *v, bool *found)
{
    *v = 0;
    *found = false;
    PGresult *res;
    candor_status_t st = run(db, what, sql, true, param, &res);
    if (st == CANDOR_OK && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 &&
        !PQgetisnull(res, 0, 0)) {
        const char *s = PQgetvalue(res, 0, 0);
        *v = PQftype(res, 0) == BOOLOID ? s[0] == 't' : strtoll(s, NULL, 10);
        *found = true;
    }
    PQclear(res);
    return st;
}

static candor_status_t p_table_exists(struct candor_db *d, const char *name, bool *exists)
{
    int64_t v;
    bool found;
    /* pg_class read with the statement's snapshot, not to_regclass(): a
     * name looked up through the catalog cache before another host created
     * the table stays "missing" in this session until it next locks a
     * relation, and two hosts would then both create the schema */
    candor_status_t st = query_int(DB(d), "schema",
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
        "ON n.oid = c.relnamespace WHERE c.relname = $1 AND c.relkind IN ('r', 'p') "
        "AND n.nspname = ANY (pg_catalog.current_schemas(false)))", name, &v, &found);
    *exists = st == CANDOR_OK && found && v;
    return st;
}

static candor_status_t p_schema_version(struct candor_db *d, int *version)
{
    bool exists;
    *version = 0;
    candor_status_t st = p_table_exists(d, "candor_schema", &exists);
    if (st != CANDOR_OK || !exists)
        return st;
    int64_t v;
    bool found;
    st = query_int(DB(d), "schema version", "SELECT max(version) FROM candor_schema", NULL,
                   &v, &found);
    if (st == CANDOR_OK && found)
        *version = (int)v;
    return st;
}

static candor_status_t p_set_schema_version(struct candor_db *d, int version)
{
    char sql[256];
    snprintf(sql, sizeof sql, "CREATE TABLE IF NOT EXISTS candor_schema(version INTEGER NOT NULL);"
             "DELETE FROM candor_schema; INSERT INTO candor_schema(version) VALUES (%d)", version);
    return p_exec(d, "schema version", sql);
}

/* Statements run outside a transaction while ON commit without waiting
 * for the server's WAL flush (execute_relaxed(): the same one round trip;
 * inside a transaction the setting has no effect, the transaction's commit
 * decides). A server crash may lose the last such commits (up to three
 * times wal_writer_delay), never half of one, and never one that a later
 * synchronous commit of any connection has flushed. */
static void p_relaxed(struct candor_db *d, bool on)
{
    DB(d)->relaxed = on;
}

static candor_status_t p_sync_sequence(struct candor_db *d, const char *table, const char *column)
{
    struct pg_db *db = DB(d);
    candor_status_t st = ensure(db, "sequence");
    if (st != CANDOR_OK)
        return st;
    char *t = PQescapeIdentifier(db->conn, table, strlen(table));
    char *c = PQescapeIdentifier(db->conn, column, strlen(column));
    char *lit = PQescapeLiteral(db->conn, table, strlen(table));
    char *clit = PQescapeLiteral(db->conn, column, strlen(column));
    if (!t || !c || !lit || !clit) {
        st = candor__fail(CANDOR_ENOMEM, "out of memory");
    } else {
        struct candor_buf b = CANDOR_BUF_INIT;
        /* setval(seq, max, true): the next id is max + 1; an empty table
         * restarts at 1 */
        candor__buf_printf(&b, "SELECT setval(pg_get_serial_sequence(%s, %s), "
                           "COALESCE((SELECT max(%s) FROM %s), 1), "
                           "(SELECT max(%s) FROM %s) IS NOT NULL)",
                           lit, clit, c, t, c, t);
        if (b.oom || !b.data)
            st = candor__fail(CANDOR_ENOMEM, "out of memory");
        else
            st = p_exec(d, "sequence", b.data);
        candor__buf_free(&b);
    }
    PQfreemem(t);
    PQfreemem(c);
    PQfreemem(lit);
    PQfreemem(clit);
    return st;
}

static const char *const tokens[] = {
    "@SERIAL", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    "@ID", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    "@INTPK", "BIGINT PRIMARY KEY",
    "@INT", "BIGINT",
    "@BLOB", "BYTEA",
    "@NOROWID", "",
    NULL
};

static const struct candor_db_ops pg_ops = {
    .kind = CANDOR_DB_PG,
    .close = p_close, .exec = p_exec, .ddl_tokens = tokens, .prepare = p_prepare,
    .bind_null = p_bind_null, .bind_text = p_bind_text, .bind_int64 = p_bind_int64,
    .bind_double = p_bind_double, .bind_blob = p_bind_blob, .step = p_step,
    .col_null = p_col_null, .col_int64 = p_col_int64, .col_double = p_col_double,
    .col_text = p_col_text, .col_blob = p_col_blob, .columns = p_columns,
    .column_name = p_column_name, .changes = p_changes, .reset = p_reset, .free = p_free,
    .begin = p_begin, .commit = p_commit, .rollback = p_rollback,
    .in_transaction = p_in_transaction, .schema_version = p_schema_version,
    .set_schema_version = p_set_schema_version, .table_exists = p_table_exists,
    .relaxed = p_relaxed, .sync_sequence = p_sync_sequence,
};

candor_status_t candor__db_open_pg(struct candor_db **out, const char *conninfo)
{
    *out = NULL;
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
    if (!opts) {
        char buf[400];
        candor_status_t st = candor__fail(CANDOR_EINVAL, "store: bad PostgreSQL connection "
                                          "string: %s", first_line(err, buf, sizeof buf));
        PQfreemem(err);
        return st;
    }
    PQconninfoFree(opts);
    struct pg_db *db = calloc(1, sizeof *db);
    if (!db)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    db->base.ops = &pg_ops;
    /* later entries win: the caller's string overrides these defaults */
    static const char *const keys[] = { "connect_timeout", "fallback_application_name",
                                         "dbname", NULL };
    const char *vals[] = { "10", "candor", conninfo, NULL };
    db->conn = PQconnectdbParams(keys, vals, 1);
    if (!db->conn) {
        free(db);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    PQsetNoticeProcessor(db->conn, quiet, NULL);
    db->gen = 1;
    if (PQstatus(db->conn) != CONNECTION_OK) {
        char buf[400];
        candor_status_t st = candor__fail(CANDOR_ETEMPFAIL, "store: cannot reach PostgreSQL: %s",
                                          first_line(PQerrorMessage(db->conn), buf, sizeof buf));
        p_close(&db->base);
        return st;
    }
    *out = &db->base;
    return CANDOR_OK;
}
