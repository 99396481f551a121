/*
 * store-db.c — the backend seam (store-db.h): picks the backend from the
 * look of the state location, dispatches every call to it, and turns the
 * dialect tokens of a schema into the backend's DDL.
 * Limits: DDL text up to 64 KiB.
 */
#include <stdlib.h>
#include <string.h>
#include "store-db.h"

bool candor__db_is_pg(const char *where)
{
    if (!where)
        return false;
    if (candor__strncasecmp(where, "postgresql://", 13) == 0 ||
        candor__strncasecmp(where, "postgres://", 11) == 0)
        return true;
    /* a libpq keyword string: "key=value ..." — a lower-case word of
     * letters and underscores directly followed by '=' (a file name with
     * '=' before any '/' is vanishingly rare and can be given as ./name) */
    const char *p = where;
    while (*p == ' ')
        p++;
    const char *w = p;
    while ((*p >= 'a' && *p <= 'z') || *p == '_')
        p++;
    return p > w && *p == '=';
}

candor_status_t candor__db_open(struct candor_db **out, const char *where)
{
    if (candor__db_is_pg(where))
        return candor__db_open_pg(out, where);
    return candor__db_open_sqlite(out, where, CANDOR_DB_RW);
}

void candor__db_close(struct candor_db *db)
{
    if (db)
        db->ops->close(db);
}

enum candor_db_kind candor__db_kind(const struct candor_db *db)
{
    return db->ops->kind;
}

candor_status_t candor__db_exec(struct candor_db *db, const char *what, const char *sql)
{
    db->steps++;
    return db->ops->exec(db, what, sql);
}

void candor__stmt_set_pure(struct candor_stmt *s) { if (s) s->pure = true; }
unsigned long candor__db_steps(const struct candor_db *db) { return db ? db->steps : 0; }

#define MAX_DDL (64 * 1024)

candor_status_t candor__db_ddl(struct candor_db *db, const char *what, const char *ddl)
{
    const char *const *tok = db->ops->ddl_tokens;
    struct candor_buf b = CANDOR_BUF_INIT;
    const char *p = ddl;
    bool oom = false;
    while (*p && !oom) {
        const char *at = strchr(p, '@');
        if (!at) {
            oom = !candor__buf_puts(&b, p);
            break;
        }
        oom = !candor__buf_append(&b, p, (size_t)(at - p));
        size_t i, best = 0;
        const char *rep = NULL;
        /* the longest token that matches (@ID vs @INTPK vs @INT) */
        for (i = 0; tok[i]; i += 2) {
            size_t n = strlen(tok[i]);
            if (n > best && strncmp(at, tok[i], n) == 0) {
                best = n;
                rep = tok[i + 1];
            }
        }
        if (!rep) {
            candor__buf_free(&b);
            return candor__fail(CANDOR_ERROR, "store: %s: unknown schema token at \"%.12s\"",
                                what, at);
        }
        if (!oom)
            oom = !candor__buf_puts(&b, rep);
        p = at + best;
        if (b.len > MAX_DDL) {
            candor__buf_free(&b);
            return candor__fail(CANDOR_ERROR, "store: %s: schema too long", what);
        }
    }
    if (oom || !candor__buf_append(&b, "", 0)) {
        candor__buf_free(&b);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    db->steps++;
    candor_status_t st = db->ops->exec(db, what, b.data);
    candor__buf_free(&b);
    return st;
}

candor_status_t candor__db_prepare(struct candor_db *db, const char *what, const char *sql,
                                   struct candor_stmt **out)
{
    *out = NULL;
    if (!db)
        return candor__fail(CANDOR_EINVAL, "store: %s: no database", what);
    return db->ops->prepare(db, what, sql, out);
}

void candor__stmt_bind_null(struct candor_stmt *s, int i) { s->db->ops->bind_null(s, i); }
void candor__stmt_bind_text(struct candor_stmt *s, int i, const char *v)
{
    if (v)
        s->db->ops->bind_text(s, i, v);
    else
        s->db->ops->bind_null(s, i);
}
void candor__stmt_bind_int64(struct candor_stmt *s, int i, int64_t v) { s->db->ops->bind_int64(s, i, v); }
void candor__stmt_bind_double(struct candor_stmt *s, int i, double v) { s->db->ops->bind_double(s, i, v); }
void candor__stmt_bind_blob(struct candor_stmt *s, int i, const void *v, size_t n)
{
    s->db->ops->bind_blob(s, i, v, n);
}
int candor__stmt_step(struct candor_stmt *s)
{
    if (!s->pure)
        s->db->steps++;
    return s->db->ops->step(s);
}

candor_status_t candor__stmt_run(struct candor_stmt *s)
{
    int rc;
    if (!s->pure)
        s->db->steps++;
    while ((rc = s->db->ops->step(s)) == CANDOR_DB_ROW)
        ;
    return rc == CANDOR_DB_DONE ? CANDOR_OK : (candor_status_t)rc;
}

bool candor__stmt_null(struct candor_stmt *s, int col) { return s->db->ops->col_null(s, col); }
int64_t candor__stmt_int64(struct candor_stmt *s, int col) { return s->db->ops->col_int64(s, col); }
double candor__stmt_double(struct candor_stmt *s, int col) { return s->db->ops->col_double(s, col); }
const char *candor__stmt_text(struct candor_stmt *s, int col) { return s->db->ops->col_text(s, col); }
const void *candor__stmt_blob(struct candor_stmt *s, int col, size_t *n)
{
    return s->db->ops->col_blob(s, col, n);
}
int candor__stmt_columns(struct candor_stmt *s) { return s->db->ops->columns(s); }
const char *candor__stmt_column_name(struct candor_stmt *s, int col)
{
    return s->db->ops->column_name(s, col);
}
int64_t candor__stmt_changes(struct candor_stmt *s) { return s->db->ops->changes(s); }
void candor__stmt_reset(struct candor_stmt *s) { if (s) s->db->ops->reset(s); }
void candor__stmt_free(struct candor_stmt *s) { if (s) s->db->ops->free(s); }

candor_status_t candor__db_begin(struct candor_db *db, bool write)
{
    db->steps++;
    return db->ops->begin(db, write);
}
candor_status_t candor__db_commit(struct candor_db *db)
{
    db->steps++;
    return db->ops->commit(db);
}
void candor__db_rollback(struct candor_db *db)
{
    db->steps++;
    db->ops->rollback(db);
}
bool candor__db_in_transaction(struct candor_db *db) { return db->ops->in_transaction(db); }

candor_status_t candor__db_schema_version(struct candor_db *db, int *version)
{
    return db->ops->schema_version(db, version);
}
candor_status_t candor__db_set_schema_version(struct candor_db *db, int version)
{
    db->steps++;
    return db->ops->set_schema_version(db, version);
}
candor_status_t candor__db_table_exists(struct candor_db *db, const char *name, bool *exists)
{
    return db->ops->table_exists(db, name, exists);
}
void candor__db_relaxed(struct candor_db *db, bool on) { db->ops->relaxed(db, on); }
candor_status_t candor__db_sync_sequence(struct candor_db *db, const char *table,
                                         const char *column)
{
    db->steps++;
    return db->ops->sync_sequence(db, table, column);
}
