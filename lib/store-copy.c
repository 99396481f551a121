/*
 * store-copy.c — candor_store_copy(): move a whole state from one store to
 * another, e.g. an SQLite file to the PostgreSQL server of several hosts
 * (`candor store copy`, issue 11).
 *
 * Every table of the schema (store.c, store-history.c) and the delivery
 * log (store-delivery.c) when the source has one, in an order that keeps
 * the references valid (tickets first). Ids are kept, so ticket numbers
 * and the links between tables survive; the target's id sequences are
 * then moved past the largest copied id, so the next ticket is new.
 * The target is written in one transaction (on PostgreSQL under the
 * decision lock of store-pg.c: no host decides anything half-way through
 * a copy); on any failure nothing of the copy remains. A target that
 * already holds rows is refused unless CANDOR_STORE_COPY_FORCE, which
 * empties it first (inside the same transaction).
 * Limits: the copy reads and writes row by row; memory stays small except
 * that the PostgreSQL backend fetches one table's rows at a time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "store.h"

/* Column kinds: i integer, t text, b bytes. */
static const struct table {
    const char *name;
    const char *columns;
    const char *kinds;
    const char *id;        /* the column an id sequence feeds, or NULL */
    bool optional;         /* created on first use (the delivery log) */
} tables[] = {
    { "tickets", "id, created, sender, intent, subject, message_id", "iittt" "t", "id", false },
    { "threads", "message_id, ticket, created", "tii", NULL, false },
    { "acks", "ticket, recipient, rcpt, created, status, sent_at, message_id, message",
      "ittitit" "t", NULL, false },
    { "promises", "ticket, intent, made, due, measured, basis", "itiiit", NULL, false },
    { "first_replies", "ticket, intent, replied, wait, business_wait, kept", "itiiii", NULL, false },
    { "replies", "id, ticket, sent, recipient, message_id", "iiitt", "id", false },
    { "decisions", "id, decided, sender, message_id, reason, ticket", "iittti", "id", false },
    { "canned_reply", "id, recipient, domain, message_id, sent_at", "ittti", "id", false },
    { "canned_para", "id, ntok, sig", "iib", "id", false },
    { "canned_band", "key, para", "ii", NULL, false },
    { "canned_use", "para, recipient, reply", "iti", NULL, false },
    { "canned_para_domain", "para, domain, n", "iti", NULL, false },
    { "canned_domain", "domain, n", "ti", NULL, false },
    { "canned_exact", "key, para", "ii", NULL, false },
    { "candor_delivery", "key, message_id, path, delivered, at", "tttii", NULL, true },
};
#define N_TABLES (sizeof tables / sizeof *tables)

static candor_status_t count_rows(struct candor_db *db, const char *table, int64_t *n)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    struct candor_stmt *q;
    *n = 0;
    candor_status_t st = candor__db_prepare(db, "copy: count", sql, &q);
    if (st != CANDOR_OK)
        return st;
    int rc = candor__stmt_step(q);
    if (rc == CANDOR_DB_ROW)
        *n = candor__stmt_int64(q, 0);
    else
        st = rc == CANDOR_DB_DONE ? CANDOR_OK : (candor_status_t)rc;
    candor__stmt_free(q);
    return st;
}

static candor_status_t copy_table(struct candor_db *from, struct candor_db *to,
                                  const struct table *t, int64_t *copied)
{
    char sel[512], ins[640], marks[64] = "";
    size_t ncol = strlen(t->kinds);
    for (size_t i = 0; i < ncol; i++)
        strcat(marks, i ? ", ?" : "?");
    snprintf(sel, sizeof sel, "SELECT %s FROM %s", t->columns, t->name);
    snprintf(ins, sizeof ins, "INSERT INTO %s(%s) VALUES (%s)", t->name, t->columns, marks);
    struct candor_stmt *q = NULL, *w = NULL;
    candor_status_t st = candor__db_prepare(from, "copy: read", sel, &q);
    if (st == CANDOR_OK)
        st = candor__db_prepare(to, "copy: write", ins, &w);
    *copied = 0;
    int rc = CANDOR_DB_DONE;
    while (st == CANDOR_OK && (rc = candor__stmt_step(q)) == CANDOR_DB_ROW) {
        for (size_t i = 0; i < ncol; i++) {
            int c = (int)i;
            if (candor__stmt_null(q, c))
                candor__stmt_bind_null(w, c + 1);
            else if (t->kinds[i] == 'i')
                candor__stmt_bind_int64(w, c + 1, candor__stmt_int64(q, c));
            else if (t->kinds[i] == 'b') {
                size_t n;
                const void *p = candor__stmt_blob(q, c, &n);
                candor__stmt_bind_blob(w, c + 1, p, n);
            } else
                candor__stmt_bind_text(w, c + 1, candor__stmt_text(q, c));
        }
        st = candor__stmt_run(w);
        candor__stmt_reset(w);
        (*copied)++;
    }
    if (st == CANDOR_OK && rc != CANDOR_DB_DONE)
        st = (candor_status_t)rc;
    if (st == CANDOR_OK && t->id)
        st = candor__db_sync_sequence(to, t->name, t->id);
    candor__stmt_free(q);
    candor__stmt_free(w);
    return st;
}

static candor_status_t copy_all(struct candor_store *src, struct candor_store *dst,
                                unsigned int flags, json_object *report)
{
    struct candor_db *from = candor__store_db(src), *to = candor__store_db(dst);
    bool present[N_TABLES];
    candor_status_t st = CANDOR_OK;
    for (size_t i = 0; st == CANDOR_OK && i < N_TABLES; i++) {
        present[i] = true;
        if (tables[i].optional)
            st = candor__db_table_exists(from, tables[i].name, &present[i]);
    }
    if (st == CANDOR_OK && present[N_TABLES - 1])
        st = candor__store_delivery_ensure(dst);
    /* the target must be empty, or is emptied (children first) */
    for (size_t k = N_TABLES; st == CANDOR_OK && k > 0; k--) {
        const struct table *t = &tables[k - 1];
        bool exists = true;
        if (t->optional)
            st = candor__db_table_exists(to, t->name, &exists);
        if (st != CANDOR_OK || !exists)
            continue;
        int64_t n;
        st = count_rows(to, t->name, &n);
        if (st == CANDOR_OK && n > 0) {
            if (!(flags & CANDOR_STORE_COPY_FORCE))
                st = candor__fail(CANDOR_EINVAL, "store copy: the target is not empty (%lld "
                                  "rows in %s); --force replaces its contents",
                                  (long long)n, t->name);
            else {
                char sql[128];
                snprintf(sql, sizeof sql, "DELETE FROM %s", t->name);
                st = candor__db_exec(to, "copy: empty the target", sql);
            }
        }
    }
    for (size_t i = 0; st == CANDOR_OK && i < N_TABLES; i++) {
        if (!present[i])
            continue;
        int64_t n;
        st = copy_table(from, to, &tables[i], &n);
        if (st == CANDOR_OK)
            json_object_object_add(report, tables[i].name, json_object_new_int64(n));
    }
    return st;
}

candor_status_t candor_store_copy(const struct candor_ctx *ctx, const char *from,
                                  const char *to, unsigned int flags, char **json)
{
    if (json)
        *json = NULL;
    if (!from || !to || !*from || !*to)
        return candor__fail(CANDOR_EINVAL, "store copy: want a source and a target");
    if (strcmp(from, to) == 0)
        return candor__fail(CANDOR_EINVAL, "store copy: source and target are the same");
    if (!candor__db_is_pg(from)) {
        FILE *f = fopen(from, "rb");   /* a missing file would read as an empty state */
        if (!f)
            return candor__fail(CANDOR_EINVAL, "store copy: %s: cannot read the source", from);
        fclose(f);
    }
    struct candor_store *src = NULL, *dst = NULL;
    candor_status_t st = candor_store_open(&src, ctx, from, CANDOR_STORE_READONLY);
    if (st == CANDOR_OK)
        st = candor_store_open(&dst, ctx, to, 0);
    json_object *report = st == CANDOR_OK ? json_object_new_object() : NULL;
    if (st == CANDOR_OK && !report)
        st = candor__fail(CANDOR_ENOMEM, "out of memory");
    if (st == CANDOR_OK)
        st = candor__store_begin(src);   /* one consistent snapshot of the source */
    if (st == CANDOR_OK) {
        st = candor__store_begin(dst);
        if (st == CANDOR_OK) {
            st = copy_all(src, dst, flags, report);
            if (st == CANDOR_OK)
                st = candor__store_commit(dst);
            else
                candor__store_rollback(dst);
        }
        candor__store_rollback(src);   /* read only */
    }
    if (st == CANDOR_OK && json) {
        *json = candor__strdup(json_object_to_json_string_ext(report, JSON_C_TO_STRING_PLAIN));
        if (!*json)
            st = candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    json_object_put(report);
    candor_store_free(src);
    candor_store_free(dst);
    return st;
}
