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
#include "store.h"
#include "fingerprint.h"

/* Both backends (the @ tokens: candor__db_ddl()). */
static const char *const schema_v1 =
    "CREATE TABLE IF NOT EXISTS canned_reply(id @ID, recipient TEXT NOT NULL,"
    " domain TEXT NOT NULL, message_id TEXT, sent_at @INT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS canned_reply_rcpt ON canned_reply(recipient, sent_at);"
    "CREATE TABLE IF NOT EXISTS canned_para(id @ID, ntok @INT NOT NULL,"
    " sig @BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS canned_band(key @INT NOT NULL, para @INT NOT NULL,"
    " PRIMARY KEY(key, para))@NOROWID;"
    "CREATE TABLE IF NOT EXISTS canned_use(para @INT NOT NULL, recipient TEXT NOT NULL,"
    " reply @INT NOT NULL, PRIMARY KEY(para, recipient, reply))@NOROWID;"
    "CREATE TABLE IF NOT EXISTS canned_para_domain(para @INT NOT NULL, domain TEXT NOT NULL,"
    " n @INT NOT NULL, PRIMARY KEY(para, domain))@NOROWID;"
    "CREATE TABLE IF NOT EXISTS canned_domain(domain TEXT PRIMARY KEY, n @INT NOT NULL)"
    "@NOROWID;"
    "CREATE TABLE IF NOT EXISTS canned_exact(key @INTPK, para @INT NOT NULL);";

candor_status_t candor__store_history_migrate(struct candor_db *db, int from_version)
{
    (void)from_version;   /* v1 is the first history schema; IF NOT EXISTS makes it idempotent */
    if (!db)
        return candor__fail(CANDOR_EINVAL, "history: no database");
    return candor__db_ddl(db, "history: schema", schema_v1);
}

enum {
    S_ADD_REPLY, S_ADD_DOMAIN, S_BAND_FIND, S_PARA_SIG, S_ADD_PARA, S_ADD_BAND, S_ADD_USE,
    S_ADD_PARA_DOMAIN, S_RECIPIENTS, S_PARA_DOMAIN, S_DOMAIN, S_RECENT, S_RECENT_ALL, S_EXAMPLE,
    S_EXACT_FIND, S_EXACT_ADD, S_COUNT
};

static const char *const sql[S_COUNT] = {
    [S_ADD_REPLY] = "INSERT INTO canned_reply(recipient, domain, message_id, sent_at) VALUES(?,?,?,?)"
                    " RETURNING id",
    [S_ADD_DOMAIN] = "INSERT INTO canned_domain(domain, n) VALUES(?, 1)"
                     " ON CONFLICT(domain) DO UPDATE SET n = canned_domain.n + 1",
    [S_BAND_FIND] = "SELECT para FROM canned_band WHERE key = ? LIMIT 16",
    [S_PARA_SIG] = "SELECT ntok, sig FROM canned_para WHERE id = ?",
    [S_ADD_PARA] = "INSERT INTO canned_para(ntok, sig) VALUES(?, ?) RETURNING id",
    [S_ADD_BAND] = "INSERT INTO canned_band(key, para) VALUES(?, ?) ON CONFLICT DO NOTHING",
    [S_ADD_USE] = "INSERT INTO canned_use(para, recipient, reply) VALUES(?, ?, ?)"
                  " ON CONFLICT DO NOTHING",
    [S_ADD_PARA_DOMAIN] = "INSERT INTO canned_para_domain(para, domain, n) VALUES(?, ?, 1)"
                          " ON CONFLICT(para, domain) DO UPDATE SET n = canned_para_domain.n + 1",
    [S_RECIPIENTS] = "SELECT COUNT(*) FROM (SELECT DISTINCT recipient FROM canned_use"
                     " WHERE para = ? AND recipient <> ? LIMIT ?) AS d",
    [S_PARA_DOMAIN] = "SELECT n FROM canned_para_domain WHERE para = ? AND domain = ?",
    [S_DOMAIN] = "SELECT n FROM canned_domain WHERE domain = ?",
    [S_RECENT] = "SELECT COUNT(*) FROM canned_reply WHERE recipient = ? AND sent_at >= ?"
                 " AND sent_at < ? AND (message_id IS NULL OR message_id <> ?)",
    [S_EXAMPLE] = "SELECT r.message_id, r.sent_at FROM canned_use u JOIN canned_reply r ON r.id = u.reply"
                   " WHERE u.para = ? AND u.recipient <> ? ORDER BY u.reply DESC LIMIT 1",
    [S_EXACT_FIND] = "SELECT para FROM canned_exact WHERE key = ?",
    [S_EXACT_ADD] = "INSERT INTO canned_exact(key, para) VALUES(?, ?) ON CONFLICT DO NOTHING",
    [S_RECENT_ALL] = "SELECT COUNT(*) FROM canned_reply WHERE recipient = ? AND sent_at >= ?"
                     " AND sent_at < ?",
};

struct candor_history {
    struct candor_db *db;
    struct candor_stmt *st[S_COUNT];
};

candor_status_t candor__history_open(struct candor_history **out, struct candor_db *db)
{
    *out = NULL;
    if (!db)
        return candor__fail(CANDOR_EINVAL, "history: no database");
    /* the tables must exist (a state written before the history) */
    bool exists;
    candor_status_t st = candor__db_table_exists(db, "canned_reply", &exists);
    if (st != CANDOR_OK)
        return st;
    if (!exists)
        return candor__fail(CANDOR_EIO, "history: no such table: canned_reply");
    struct candor_history *h = calloc(1, sizeof *h);
    if (!h)
        return candor__fail(CANDOR_ENOMEM, "history: out of memory");
    h->db = db;   /* statements are prepared on first use */
    *out = h;
    return CANDOR_OK;
}

/* The statement I, prepared on first use; NULL (error set) on failure. */
static struct candor_stmt *stmt(struct candor_history *h, int i)
{
    if (!h->st[i] && candor__db_prepare(h->db, "history", sql[i], &h->st[i]) != CANDOR_OK)
        h->st[i] = NULL;
    return h->st[i];
}

void candor__history_close(struct candor_history *h)
{
    if (!h)
        return;
    for (int i = 0; i < S_COUNT; i++)
        candor__stmt_free(h->st[i]);
    free(h);
}

/* Run a statement that returns nothing (or ignore its rows). */
static candor_status_t run(struct candor_stmt *s)
{
    candor_status_t st = candor__stmt_run(s);
    candor__stmt_reset(s);
    return st;
}

/* Run a statement returning one integer (0 when no row). */
static candor_status_t run_int(struct candor_stmt *s, int64_t *v)
{
    int rc = candor__stmt_step(s);
    *v = 0;
    if (rc == CANDOR_DB_ROW) {
        *v = candor__stmt_int64(s, 0);
        rc = CANDOR_DB_DONE;
    }
    candor__stmt_reset(s);
    return rc == CANDOR_DB_DONE ? CANDOR_OK : (candor_status_t)rc;
}

candor_status_t candor__history_add_reply(struct candor_history *h, const char *recipient,
        const char *domain, const char *message_id, int64_t sent_at, int64_t *id)
{
    struct candor_stmt *s = stmt(h, S_ADD_REPLY);
    if (!s)
        return CANDOR_EIO;   /* message set by stmt() */
    candor__stmt_bind_text(s, 1, recipient ? recipient : "");
    candor__stmt_bind_text(s, 2, domain ? domain : "");
    candor__stmt_bind_text(s, 3, message_id);
    candor__stmt_bind_int64(s, 4, sent_at);
    candor_status_t st = run_int(s, id);
    if (st != CANDOR_OK)
        return st;
    s = stmt(h, S_ADD_DOMAIN);
    if (!s)
        return CANDOR_EIO;   /* message set by stmt() */
    candor__stmt_bind_text(s, 1, domain ? domain : "");
    return run(s);
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
    struct candor_stmt *q = stmt(h, S_PARA_SIG);
    if (!q)
        return CANDOR_EIO;   /* message set by stmt() */
    candor__stmt_bind_int64(q, 1, para);
    int rc = candor__stmt_step(q);
    if (rc == CANDOR_DB_ROW) {
        size_t n;
        const void *sig = candor__stmt_blob(q, 1, &n);
        if (sig && n == sizeof fp->sig) {
            struct candor_fp other;
            other.ntok = (uint32_t)candor__stmt_int64(q, 0);
            memcpy(other.sig, sig, sizeof other.sig);
            double sim = candor__fp_similarity(fp, &other);
            if (sim > *best_sim) {
                *best_sim = sim;
                *best = para;
            }
        }
        rc = CANDOR_DB_DONE;
    }
    candor__stmt_reset(q);
    return rc == CANDOR_DB_DONE ? CANDOR_OK : (candor_status_t)rc;
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
    struct candor_stmt *x = stmt(h, S_EXACT_FIND);
    if (!x)
        return CANDOR_EIO;   /* message set by stmt() */
    candor__stmt_bind_int64(x, 1, exact_key(fp));
    int xrc = candor__stmt_step(x);
    if (xrc == CANDOR_DB_ROW) {
        *best = candor__stmt_int64(x, 0);
        *best_sim = 1.0;
        *exact = true;
        xrc = CANDOR_DB_DONE;
    }
    candor__stmt_reset(x);
    if (xrc != CANDOR_DB_DONE)
        return (candor_status_t)xrc;
    if (*best)
        return CANDOR_OK;
    for (size_t b = 0; b < CANDOR_FP_BANDS; b++) {
        struct candor_stmt *s = stmt(h, S_BAND_FIND);
        if (!s)
            return CANDOR_EIO;   /* message set by stmt() */
        candor__stmt_bind_int64(s, 1, keys[b]);
        int rc;
        while ((rc = candor__stmt_step(s)) == CANDOR_DB_ROW) {
            int64_t para = candor__stmt_int64(s, 0);
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
        candor__stmt_reset(s);
        if (rc != CANDOR_DB_DONE)
            return (candor_status_t)rc;
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
        struct candor_stmt *s = stmt(h, S_ADD_PARA);
        if (!s)
            return CANDOR_EIO;   /* message set by stmt() */
        candor__stmt_bind_int64(s, 1, (int64_t)fp->ntok);
        candor__stmt_bind_blob(s, 2, fp->sig, sizeof fp->sig);
        if ((st = run_int(s, &para)) != CANDOR_OK)
            return st;
        int64_t keys[CANDOR_FP_BANDS];
        candor__fp_bands(fp, keys);
        for (size_t b = 0; b < CANDOR_FP_BANDS; b++) {
            s = stmt(h, S_ADD_BAND);
            if (!s)
                return CANDOR_EIO;   /* message set by stmt() */
            candor__stmt_bind_int64(s, 1, keys[b]);
            candor__stmt_bind_int64(s, 2, para);
            if ((st = run(s)) != CANDOR_OK)
                return st;
        }
    }
    if (!exact) {
        struct candor_stmt *e = stmt(h, S_EXACT_ADD);
        if (!e)
            return CANDOR_EIO;   /* message set by stmt() */
        candor__stmt_bind_int64(e, 1, exact_key(fp));
        candor__stmt_bind_int64(e, 2, para);
        if ((st = run(e)) != CANDOR_OK)
            return st;
    }
    struct candor_stmt *s = stmt(h, S_ADD_USE);
    if (!s)
        return CANDOR_EIO;   /* message set by stmt() */
    candor__stmt_bind_int64(s, 1, para);
    candor__stmt_bind_text(s, 2, recipient ? recipient : "");
    candor__stmt_bind_int64(s, 3, reply);
    if ((st = run(s)) != CANDOR_OK)
        return st;
    s = stmt(h, S_ADD_PARA_DOMAIN);
    if (!s)
        return CANDOR_EIO;   /* message set by stmt() */
    candor__stmt_bind_int64(s, 1, para);
    candor__stmt_bind_text(s, 2, domain ? domain : "");
    return run(s);
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
    struct candor_stmt *s = stmt(h, S_RECIPIENTS);
    if (!s)
        return CANDOR_EIO;   /* message set by stmt() */
    candor__stmt_bind_int64(s, 1, para);
    candor__stmt_bind_text(s, 2, recipient ? recipient : "");
    candor__stmt_bind_int64(s, 3, cap);
    if ((st = run_int(s, &v)) != CANDOR_OK)
        return st;
    m->recipients = (int)v;
    s = stmt(h, S_PARA_DOMAIN);
    if (!s)
        return CANDOR_EIO;   /* message set by stmt() */
    candor__stmt_bind_int64(s, 1, para);
    candor__stmt_bind_text(s, 2, domain ? domain : "");
    if ((st = run_int(s, &m->domain_uses)) != CANDOR_OK)
        return st;
    s = stmt(h, S_EXAMPLE);
    if (!s)
        return CANDOR_EIO;   /* message set by stmt() */
    candor__stmt_bind_int64(s, 1, para);
    candor__stmt_bind_text(s, 2, recipient ? recipient : "");
    int rc = candor__stmt_step(s);
    if (rc == CANDOR_DB_ROW) {
        const char *id = candor__stmt_text(s, 0);
        snprintf(m->example_id, sizeof m->example_id, "%s", id ? id : "");
        m->example_sent = candor__stmt_int64(s, 1);
        rc = CANDOR_DB_DONE;
    }
    candor__stmt_reset(s);
    if (rc != CANDOR_DB_DONE)
        return (candor_status_t)rc;
    s = stmt(h, S_DOMAIN);
    if (!s)
        return CANDOR_EIO;   /* message set by stmt() */
    candor__stmt_bind_text(s, 1, domain ? domain : "");
    return run_int(s, &m->domain_replies);
}

candor_status_t candor__history_recent(struct candor_history *h, const char *recipient,
        int64_t since, int64_t until, const char *message_id, int *count)
{
    struct candor_stmt *s = stmt(h, message_id ? S_RECENT : S_RECENT_ALL);
    if (!s)
        return CANDOR_EIO;   /* message set by stmt() */
    candor__stmt_bind_text(s, 1, recipient ? recipient : "");
    candor__stmt_bind_int64(s, 2, since);
    candor__stmt_bind_int64(s, 3, until);
    if (message_id)
        candor__stmt_bind_text(s, 4, message_id);
    int64_t v;
    candor_status_t st = run_int(s, &v);
    *count = (int)v;
    return st;
}
