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
 *   exact(key, para)             signature hash -> cluster: a paragraph sent
 *                                again word for word costs one lookup
 * Storing clusters instead of every paragraph keeps the index small when
 * the history is full of templates, footers and closings, and makes a
 * lookup cost a few indexed reads whatever the history size.
 */
#include <stdio.h>
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
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS canned_exact(key INTEGER PRIMARY KEY, para INTEGER NOT NULL);";

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
    S_ADD_PARA_DOMAIN, S_RECIPIENTS, S_PARA_DOMAIN, S_DOMAIN, S_RECENT, S_RECENT_ALL, S_EXAMPLE,
    S_EXACT_FIND, S_EXACT_ADD, S_COUNT
};

static const char *const sql[S_COUNT] = {
    [S_ADD_REPLY] = "INSERT INTO canned_reply(recipient, domain, message_id, sent_at) VALUES(?,?,?,?)",
    [S_ADD_DOMAIN] = "INSERT INTO canned_domain(domain, n) VALUES(?, 1)"
                     " ON CONFLICT(domain) DO UPDATE SET n = n + 1",
    [S_BAND_FIND] = "SELECT para FROM canned_band WHERE key = ? LIMIT 16",
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
    [S_EXAMPLE] = "SELECT r.message_id, r.sent_at FROM canned_use u JOIN canned_reply r ON r.id = u.reply"
                   " WHERE u.para = ? AND u.recipient <> ? ORDER BY u.reply DESC LIMIT 1",
    [S_EXACT_FIND] = "SELECT para FROM canned_exact WHERE key = ?",
    [S_EXACT_ADD] = "INSERT OR IGNORE INTO canned_exact(key, para) VALUES(?, ?)",
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
    /* the tables must exist (a state written before the history) */
    sqlite3_stmt *probe;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM canned_reply LIMIT 0", -1, &probe, NULL) != SQLITE_OK)
        return candor__fail(CANDOR_EIO, "history: %s", sqlite3_errmsg(db));
    sqlite3_finalize(probe);
    struct candor_history *h = calloc(1, sizeof *h);
    if (!h)
        return candor__fail(CANDOR_ENOMEM, "history: out of memory");
    h->db = db;   /* statements are prepared on first use */
    *out = h;
    return CANDOR_OK;
}

/* The statement I, prepared on first use; NULL (error set) on failure. */
static sqlite3_stmt *stmt(struct candor_history *h, int i)
{
    if (!h->st[i]
        && sqlite3_prepare_v3(h->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &h->st[i], NULL) != SQLITE_OK) {
        h->st[i] = NULL;
        db_fail(h, "prepare");
    }
    return h->st[i];
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
    sqlite3_stmt *s = stmt(h, S_ADD_REPLY);
    if (!s)
        return CANDOR_EIO;   /* message set by stmt() */
    sqlite3_bind_text(s, 1, recipient ? recipient : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, domain ? domain : "", -1, SQLITE_STATIC);
    if (message_id)
        sqlite3_bind_text(s, 3, message_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, sent_at);
    candor_status_t st = run(h, s, "add reply");
    if (st != CANDOR_OK)
        return st;
    *id = sqlite3_last_insert_rowid(h->db);
    s = stmt(h, S_ADD_DOMAIN);
    if (!s)
        return CANDOR_EIO;   /* message set by stmt() */
    sqlite3_bind_text(s, 1, domain ? domain : "", -1, SQLITE_STATIC);
    return run(h, s, "add domain");
}

/* Best cluster for FP among the LSH candidates. Candidates sharing two or
 * more bands with FP are verified first (a true near-duplicate shares
 * several); single-band candidates only while few have been verified, so
 * that the very common words of a business cannot make a lookup slow. */
#define MAX_CANDIDATES 256
#define MAX_VERIFY 12
#define MAX_VERIFY_SINGLE 4

static candor_status_t verify(struct candor_history *h, const struct candor_fp *fp, int64_t para,
                              int64_t *best, double *best_sim)
{
    sqlite3_stmt *q = stmt(h, S_PARA_SIG);
    if (!q)
        return CANDOR_EIO;   /* message set by stmt() */
    sqlite3_bind_int64(q, 1, para);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW && sqlite3_column_bytes(q, 1) == (int)sizeof fp->sig) {
        struct candor_fp other;
        other.ntok = (uint32_t)sqlite3_column_int(q, 0);
        memcpy(other.sig, sqlite3_column_blob(q, 1), sizeof other.sig);
        double sim = candor__fp_similarity(fp, &other);
        if (sim > *best_sim) {
            *best_sim = sim;
            *best = para;
        }
        rc = SQLITE_DONE;
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return rc == SQLITE_DONE ? CANDOR_OK : db_fail(h, "paragraph");
}

static int64_t exact_key(const struct candor_fp *fp)
{
    return (int64_t)(candor__fp_hash(fp->sig, sizeof fp->sig, 99) >> 1);
}

static candor_status_t best_cluster(struct candor_history *h, const struct candor_fp *fp,
                                    int64_t *best, double *best_sim, bool *exact)
{
    *exact = false;
    int64_t keys[CANDOR_FP_BANDS];
    int64_t cand[MAX_CANDIDATES];
    unsigned char hits[MAX_CANDIDATES];
    size_t n = 0;
    candor__fp_bands(fp, keys);
    *best = 0;
    *best_sim = 0;
    sqlite3_stmt *x = stmt(h, S_EXACT_FIND);
    if (!x)
        return CANDOR_EIO;   /* message set by stmt() */
    sqlite3_bind_int64(x, 1, exact_key(fp));
    int xrc = sqlite3_step(x);
    if (xrc == SQLITE_ROW) {
        *best = sqlite3_column_int64(x, 0);
        *best_sim = 1.0;
        *exact = true;
        xrc = SQLITE_DONE;
    }
    sqlite3_reset(x);
    sqlite3_clear_bindings(x);
    if (xrc != SQLITE_DONE)
        return db_fail(h, "exact lookup");
    if (*best)
        return CANDOR_OK;
    for (size_t b = 0; b < CANDOR_FP_BANDS; b++) {
        sqlite3_stmt *s = stmt(h, S_BAND_FIND);
        if (!s)
            return CANDOR_EIO;   /* message set by stmt() */
        sqlite3_bind_int64(s, 1, keys[b]);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            int64_t para = sqlite3_column_int64(s, 0);
            size_t i;
            for (i = 0; i < n; i++)
                if (cand[i] == para)
                    break;
            if (i < n)
                hits[i]++;
            else if (n < MAX_CANDIDATES) {
                cand[n] = para;
                hits[n++] = 1;
            }
        }
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        if (rc != SQLITE_DONE)
            return db_fail(h, "band lookup");
    }
    /* verify the candidates sharing the most bands first */
    for (size_t v = 0; v < MAX_VERIFY && v < n; v++) {
        size_t top = v;
        for (size_t i = v + 1; i < n; i++)
            if (hits[i] > hits[top])
                top = i;
        int64_t c = cand[top];
        unsigned char hc = hits[top];
        cand[top] = cand[v];
        hits[top] = hits[v];
        cand[v] = c;
        hits[v] = hc;
        if (hc < 2 && v >= MAX_VERIFY_SINGLE)
            break;
        candor_status_t st = verify(h, fp, c, best, best_sim);
        if (st != CANDOR_OK)
            return st;
    }
    return CANDOR_OK;
}

candor_status_t candor__history_add_para(struct candor_history *h, int64_t reply,
        const char *recipient, const char *domain, const struct candor_fp *fp, double join)
{
    int64_t para;
    double sim;
    bool exact;
    candor_status_t st = best_cluster(h, fp, &para, &sim, &exact);
    if (st != CANDOR_OK)
        return st;
    if (!para || sim < join) {
        sqlite3_stmt *s = stmt(h, S_ADD_PARA);
        if (!s)
            return CANDOR_EIO;   /* message set by stmt() */
        sqlite3_bind_int(s, 1, (int)fp->ntok);
        sqlite3_bind_blob(s, 2, fp->sig, sizeof fp->sig, SQLITE_STATIC);
        if ((st = run(h, s, "add paragraph")) != CANDOR_OK)
            return st;
        para = sqlite3_last_insert_rowid(h->db);
        int64_t keys[CANDOR_FP_BANDS];
        candor__fp_bands(fp, keys);
        for (size_t b = 0; b < CANDOR_FP_BANDS; b++) {
            s = stmt(h, S_ADD_BAND);
            if (!s)
                return CANDOR_EIO;   /* message set by stmt() */
            sqlite3_bind_int64(s, 1, keys[b]);
            sqlite3_bind_int64(s, 2, para);
            if ((st = run(h, s, "add band")) != CANDOR_OK)
                return st;
        }
    }
    if (!exact) {
        sqlite3_stmt *e = stmt(h, S_EXACT_ADD);
        if (!e)
            return CANDOR_EIO;   /* message set by stmt() */
        sqlite3_bind_int64(e, 1, exact_key(fp));
        sqlite3_bind_int64(e, 2, para);
        if ((st = run(h, e, "add exact")) != CANDOR_OK)
            return st;
    }
    sqlite3_stmt *s = stmt(h, S_ADD_USE);
    if (!s)
        return CANDOR_EIO;   /* message set by stmt() */
    sqlite3_bind_int64(s, 1, para);
    sqlite3_bind_text(s, 2, recipient ? recipient : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, reply);
    if ((st = run(h, s, "add use")) != CANDOR_OK)
        return st;
    s = stmt(h, S_ADD_PARA_DOMAIN);
    if (!s)
        return CANDOR_EIO;   /* message set by stmt() */
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
    bool exact;
    candor_status_t st = best_cluster(h, fp, &para, &sim, &exact);
    if (st != CANDOR_OK || !para || sim < min)
        return st;
    m->similarity = sim;
    m->cluster = para;
    int64_t v;
    sqlite3_stmt *s = stmt(h, S_RECIPIENTS);
    if (!s)
        return CANDOR_EIO;   /* message set by stmt() */
    sqlite3_bind_int64(s, 1, para);
    sqlite3_bind_text(s, 2, recipient ? recipient : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, cap);
    if ((st = run_int(h, s, &v, "recipients")) != CANDOR_OK)
        return st;
    m->recipients = (int)v;
    s = stmt(h, S_PARA_DOMAIN);
    if (!s)
        return CANDOR_EIO;   /* message set by stmt() */
    sqlite3_bind_int64(s, 1, para);
    sqlite3_bind_text(s, 2, domain ? domain : "", -1, SQLITE_STATIC);
    if ((st = run_int(h, s, &m->domain_uses, "paragraph domain")) != CANDOR_OK)
        return st;
    s = stmt(h, S_EXAMPLE);
    if (!s)
        return CANDOR_EIO;   /* message set by stmt() */
    sqlite3_bind_int64(s, 1, para);
    sqlite3_bind_text(s, 2, recipient ? recipient : "", -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const unsigned char *id = sqlite3_column_text(s, 0);
        snprintf(m->example_id, sizeof m->example_id, "%s", id ? (const char *)id : "");
        m->example_sent = sqlite3_column_int64(s, 1);
        rc = SQLITE_DONE;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE)
        return db_fail(h, "example");
    s = stmt(h, S_DOMAIN);
    if (!s)
        return CANDOR_EIO;   /* message set by stmt() */
    sqlite3_bind_text(s, 1, domain ? domain : "", -1, SQLITE_STATIC);
    return run_int(h, s, &m->domain_replies, "domain");
}

candor_status_t candor__history_recent(struct candor_history *h, const char *recipient,
        int64_t since, int64_t until, const char *message_id, int *count)
{
    sqlite3_stmt *s = stmt(h, message_id ? S_RECENT : S_RECENT_ALL);
    if (!s)
        return CANDOR_EIO;   /* message set by stmt() */
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
