/*
 * store-history.c — the reply history behind template_reuse and
 * repeat_send (issue 5), in the store's SQLite database.
 *
 * Tables (all "canned_"):
 *   reply(id, recipient, domain, message_id, sent_at)  one row per sent reply
 *   para(id, ntok, sig)          clusters of near-identical paragraphs: the
 *                                MinHash signature of the first member
 *   band(key, para)              LSH index: band keys of each cluster
 *   use(para, recipient, reply)  which replies carry a cluster, to whom
 *   para_domain(para, domain, n) per-business use counts (footers)
 *   domain(domain, n)            replies per business
 * Storing clusters instead of every paragraph keeps the index small when
 * the history is full of templates, footers and closings, and makes a
 * lookup cost a few indexed reads whatever the history size.
 */
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include "store.h"
#include "fingerprint.h"

static const char *const schema_v1 =
    "CREATE TABLE IF NOT EXISTS canned_reply(id INTEGER PRIMARY KEY, recipient TEXT NOT NULL,"
    " domain TEXT NOT NULL, message_id TEXT, sent_at INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS canned_reply_rcpt ON canned_reply(recipient, sent_at);"
    "CREATE TABLE IF NOT EXISTS canned_para(id INTEGER PRIMARY KEY, ntok INTEGER NOT NULL,"
    " sig BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS canned_band(key INTEGER NOT NULL, para INTEGER NOT NULL,"
    " PRIMARY KEY(key, para)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS canned_use(para INTEGER NOT NULL, recipient TEXT NOT NULL,"
    " reply INTEGER NOT NULL, PRIMARY KEY(para, recipient, reply)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS canned_para_domain(para INTEGER NOT NULL, domain TEXT NOT NULL,"
    " n INTEGER NOT NULL, PRIMARY KEY(para, domain)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS canned_domain(domain TEXT PRIMARY KEY, n INTEGER NOT NULL)"
    " WITHOUT ROWID;";

candor_status_t candor__store_history_migrate(struct sqlite3 *db, int from_version)
{
    (void)from_version;   /* v1 is the first history schema; IF NOT EXISTS makes it idempotent */
    char *err = NULL;
    if (sqlite3_exec(db, schema_v1, NULL, NULL, &err) != SQLITE_OK) {
        candor_status_t st = candor__fail(CANDOR_EIO, "history: schema: %s",
                                          err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        return st;
    }
    return CANDOR_OK;
}

enum {
    S_ADD_REPLY, S_ADD_DOMAIN, S_BAND_FIND, S_PARA_SIG, S_ADD_PARA, S_ADD_BAND, S_ADD_USE,
    S_ADD_PARA_DOMAIN, S_RECIPIENTS, S_PARA_DOMAIN, S_DOMAIN, S_RECENT, S_RECENT_ALL, S_COUNT
};

static const char *const sql[S_COUNT] = {
    [S_ADD_REPLY] = "INSERT INTO canned_reply(recipient, domain, message_id, sent_at) VALUES(?,?,?,?)",
    [S_ADD_DOMAIN] = "INSERT INTO canned_domain(domain, n) VALUES(?, 1)"
                     " ON CONFLICT(domain) DO UPDATE SET n = n + 1",
    [S_BAND_FIND] = "SELECT para FROM canned_band WHERE key = ? LIMIT 64",
    [S_PARA_SIG] = "SELECT ntok, sig FROM canned_para WHERE id = ?",
    [S_ADD_PARA] = "INSERT INTO canned_para(ntok, sig) VALUES(?, ?)",
    [S_ADD_BAND] = "INSERT OR IGNORE INTO canned_band(key, para) VALUES(?, ?)",
    [S_ADD_USE] = "INSERT OR IGNORE INTO canned_use(para, recipient, reply) VALUES(?, ?, ?)",
    [S_ADD_PARA_DOMAIN] = "INSERT INTO canned_para_domain(para, domain, n) VALUES(?, ?, 1)"
                          " ON CONFLICT(para, domain) DO UPDATE SET n = n + 1",
    [S_RECIPIENTS] = "SELECT COUNT(*) FROM (SELECT DISTINCT recipient FROM canned_use"
                     " WHERE para = ? AND recipient <> ? LIMIT ?)",
    [S_PARA_DOMAIN] = "SELECT n FROM canned_para_domain WHERE para = ? AND domain = ?",
    [S_DOMAIN] = "SELECT n FROM canned_domain WHERE domain = ?",
    [S_RECENT] = "SELECT COUNT(*) FROM canned_reply WHERE recipient = ? AND sent_at >= ?"
                 " AND sent_at < ? AND (message_id IS NULL OR message_id <> ?)",
    [S_RECENT_ALL] = "SELECT COUNT(*) FROM canned_reply WHERE recipient = ? AND sent_at >= ?"
                     " AND sent_at < ?",
};

struct candor_history {
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
};

static candor_status_t db_fail(struct candor_history *h, const char *what)
{
    int rc = sqlite3_errcode(h->db);
    return candor__fail(rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? CANDOR_ETEMPFAIL : CANDOR_EIO,
                        "history: %s: %s", what, sqlite3_errmsg(h->db));
}

candor_status_t candor__history_open(struct candor_history **out, struct sqlite3 *db)
{
    *out = NULL;
    if (!db)
        return candor__fail(CANDOR_EINVAL, "history: no database");
    struct candor_history *h = calloc(1, sizeof *h);
    if (!h)
        return candor__fail(CANDOR_ENOMEM, "history: out of memory");
    h->db = db;
    for (int i = 0; i < S_COUNT; i++) {
        if (sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &h->st[i], NULL) != SQLITE_OK) {
            candor_status_t st = db_fail(h, "prepare");
            candor__history_close(h);
            return st;
        }
    }
    *out = h;
    return CANDOR_OK;
}

void candor__history_close(struct candor_history *h)
{
    if (!h)
        return;
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(h->st[i]);
    free(h);
}

/* Run a statement that returns nothing (or ignore its rows). */
static candor_status_t run(struct candor_history *h, sqlite3_stmt *s, const char *what)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        ;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? CANDOR_OK : db_fail(h, what);
}

/* Run a statement returning one integer (0 when no row). */
static candor_status_t run_int(struct candor_history *h, sqlite3_stmt *s, int64_t *v, const char *what)
{
    int rc = sqlite3_step(s);
    *v = 0;
    if (rc == SQLITE_ROW) {
        *v = sqlite3_column_int64(s, 0);
        rc = SQLITE_DONE;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? CANDOR_OK : db_fail(h, what);
}

candor_status_t candor__history_add_reply(struct candor_history *h, const char *recipient,
        const char *domain, const char *message_id, int64_t sent_at, int64_t *id)
{
    sqlite3_stmt *s = h->st[S_ADD_REPLY];
    sqlite3_bind_text(s, 1, recipient ? recipient : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, domain ? domain : "", -1, SQLITE_STATIC);
    if (message_id)
        sqlite3_bind_text(s, 3, message_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, sent_at);
    candor_status_t st = run(h, s, "add reply");
    if (st != CANDOR_OK)
        return st;
    *id = sqlite3_last_insert_rowid(h->db);
    s = h->st[S_ADD_DOMAIN];
    sqlite3_bind_text(s, 1, domain ? domain : "", -1, SQLITE_STATIC);
    return run(h, s, "add domain");
}

/* Best cluster for FP among the LSH candidates. */
static candor_status_t best_cluster(struct candor_history *h, const struct candor_fp *fp,
                                    int64_t *best, double *best_sim)
{
    int64_t keys[CANDOR_FP_BANDS];
    int64_t tried[256];
    size_t ntried = 0;
    candor__fp_bands(fp, keys);
    *best = 0;
    *best_sim = 0;
    for (size_t b = 0; b < CANDOR_FP_BANDS; b++) {
        sqlite3_stmt *s = h->st[S_BAND_FIND];
        sqlite3_bind_int64(s, 1, keys[b]);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            int64_t para = sqlite3_column_int64(s, 0);
            bool seen = false;
            for (size_t i = 0; i < ntried; i++)
                if (tried[i] == para) { seen = true; break; }
            if (seen || ntried == sizeof tried / sizeof *tried)
                continue;
            tried[ntried++] = para;
            sqlite3_stmt *q = h->st[S_PARA_SIG];
            sqlite3_bind_int64(q, 1, para);
            if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_bytes(q, 1) == (int)sizeof fp->sig) {
                struct candor_fp other;
                other.ntok = (uint32_t)sqlite3_column_int(q, 0);
                memcpy(other.sig, sqlite3_column_blob(q, 1), sizeof other.sig);
                double sim = candor__fp_similarity(fp, &other);
                if (sim > *best_sim) {
                    *best_sim = sim;
                    *best = para;
                }
            }
            sqlite3_reset(q);
            sqlite3_clear_bindings(q);
        }
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        if (rc != SQLITE_DONE)
            return db_fail(h, "band lookup");
    }
    return CANDOR_OK;
}

candor_status_t candor__history_add_para(struct candor_history *h, int64_t reply,
        const char *recipient, const char *domain, const struct candor_fp *fp, double join)
{
    int64_t para;
    double sim;
    candor_status_t st = best_cluster(h, fp, &para, &sim);
    if (st != CANDOR_OK)
        return st;
    if (!para || sim < join) {
        sqlite3_stmt *s = h->st[S_ADD_PARA];
        sqlite3_bind_int(s, 1, (int)fp->ntok);
        sqlite3_bind_blob(s, 2, fp->sig, sizeof fp->sig, SQLITE_STATIC);
        if ((st = run(h, s, "add paragraph")) != CANDOR_OK)
            return st;
        para = sqlite3_last_insert_rowid(h->db);
        int64_t keys[CANDOR_FP_BANDS];
        candor__fp_bands(fp, keys);
        for (size_t b = 0; b < CANDOR_FP_BANDS; b++) {
            s = h->st[S_ADD_BAND];
            sqlite3_bind_int64(s, 1, keys[b]);
            sqlite3_bind_int64(s, 2, para);
            if ((st = run(h, s, "add band")) != CANDOR_OK)
                return st;
        }
    }
    sqlite3_stmt *s = h->st[S_ADD_USE];
    sqlite3_bind_int64(s, 1, para);
    sqlite3_bind_text(s, 2, recipient ? recipient : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, reply);
    if ((st = run(h, s, "add use")) != CANDOR_OK)
        return st;
    s = h->st[S_ADD_PARA_DOMAIN];
    sqlite3_bind_int64(s, 1, para);
    sqlite3_bind_text(s, 2, domain ? domain : "", -1, SQLITE_STATIC);
    return run(h, s, "add paragraph domain");
}

candor_status_t candor__history_match(struct candor_history *h, const struct candor_fp *fp,
        const char *recipient, const char *domain, double min, int cap,
        struct candor_history_match *m)
{
    memset(m, 0, sizeof *m);
    int64_t para;
    double sim;
    candor_status_t st = best_cluster(h, fp, &para, &sim);
    if (st != CANDOR_OK || !para || sim < min)
        return st;
    m->similarity = sim;
    m->cluster = para;
    int64_t v;
    sqlite3_stmt *s = h->st[S_RECIPIENTS];
    sqlite3_bind_int64(s, 1, para);
    sqlite3_bind_text(s, 2, recipient ? recipient : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, cap);
    if ((st = run_int(h, s, &v, "recipients")) != CANDOR_OK)
        return st;
    m->recipients = (int)v;
    s = h->st[S_PARA_DOMAIN];
    sqlite3_bind_int64(s, 1, para);
    sqlite3_bind_text(s, 2, domain ? domain : "", -1, SQLITE_STATIC);
    if ((st = run_int(h, s, &m->domain_uses, "paragraph domain")) != CANDOR_OK)
        return st;
    s = h->st[S_DOMAIN];
    sqlite3_bind_text(s, 1, domain ? domain : "", -1, SQLITE_STATIC);
    return run_int(h, s, &m->domain_replies, "domain");
}

candor_status_t candor__history_recent(struct candor_history *h, const char *recipient,
        int64_t since, int64_t until, const char *message_id, int *count)
{
    sqlite3_stmt *s = h->st[message_id ? S_RECENT : S_RECENT_ALL];
    sqlite3_bind_text(s, 1, recipient ? recipient : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, since);
    sqlite3_bind_int64(s, 3, until);
    if (message_id)
        sqlite3_bind_text(s, 4, message_id, -1, SQLITE_STATIC);
    int64_t v;
    candor_status_t st = run_int(h, s, &v, "recent replies");
    *count = (int)v;
    return st;
}
