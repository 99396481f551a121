/*
 * deliver.c — one message from DATA into the maildir, the durable way.
 *
 * Order of events for a message (the whole safety argument; INTEGRATION.md):
 *  1. incoming X-Candor-* fields are removed (a stranger cannot pre-label);
 *  2. the redelivery key (SHA-256 of Message-ID, body digest, envelope
 *     sender and target maildir; the whole message's digest when there is
 *     no Message-ID) is looked up in the store's delivery log: a message already
 *     delivered within redelivery-window answers 250 without a second copy;
 *  3. parse, triage, and (unless --no-ack) candor_ack(), which records the
 *     decision, ticket and pending acknowledgement in the store;
 *  4. the file is written under a unique name in tmp/, fsynced, its final
 *     path logged in the store (delivered=0), renamed into new/ (or the
 *     per-intent maildir++ folder), and the directory fsynced; the log row
 *     is marked delivered=1;
 *  5. only then the caller answers 250 2.0.0; any failure before that is
 *     451 4.3.0 (452 4.3.1 when the disk is full), the tmp/ file removed;
 *  6. after the replies, the acknowledgement goes to sendmail with sender
 *     <> and, once sendmail exits 0, is marked sent in the store
 *     (candor_store_ack_sent). One that fails stays pending and is retried
 *     at the next start (ack.c).
 * Mail for the configured "sent" address is a copy of a reply the team sent:
 * it is recorded (candor_record_reply), checked against the customer's
 * original (found through the delivery log by In-Reply-To/References) with
 * candor_check(), logged, and copied to the review folder when flagged.
 *
 * If parsing or triage fail, the message is still delivered (without
 * X-Candor-* fields): the mail matters more than its labels. A temporary
 * failure of the state in triage or the acknowledgement (CANDOR_ETEMPFAIL:
 * busy, or the PostgreSQL server away) is 451 4.3.0 instead: the MTA
 * retries, and no message is delivered without its decision.
 */
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>
#include "lmtpd.h"

struct strbuf {
    char *p;
    size_t n, cap;
    bool oom;
};

static void sb_add(struct strbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_puts(struct strbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* Length of the header section including its final LF (the blank line
 * not included), i.e. the offset of the blank line. */
static size_t header_len(const char *data, size_t len)
{
    if (len && data[0] == '\n')
        return 0;
    for (size_t i = 0; i + 1 < len; i++)
        if (data[i] == '\n' && data[i + 1] == '\n')
            return i + 1;
    return len;
}

static bool name_is(const char *line, size_t n, const char *name)
{
    size_t k = strlen(name);
    if (n < k)
        return false;
    return strncasecmp(line, name, k) == 0;
}

/* Copy DATA without any X-Candor-* field (with its continuation lines). */
static void strip_candor(const char *data, size_t len, size_t hlen, struct strbuf *out)
{
    size_t i = 0;
    bool skipping = false;
    while (i < hlen) {
        const char *nl = memchr(data + i, '\n', hlen - i);
        size_t e = nl ? (size_t)(nl - data) + 1 : hlen;
        bool cont = data[i] == ' ' || data[i] == '\t';
        if (!cont)
            skipping = name_is(data + i, e - i, "X-Candor-");
        if (!skipping)
            sb_add(out, data + i, e - i);
        i = e;
    }
    sb_add(out, data + hlen, len - hlen);
}

/* The unfolded value of the first field NAME (e.g. "Message-ID") in the
 * header, trimmed, without angle brackets. New string or NULL. */
static char *header_value(const char *data, size_t hlen, const char *name)
{
    size_t k = strlen(name);
    size_t i = 0;
    while (i < hlen) {
        const char *nl = memchr(data + i, '\n', hlen - i);
        size_t e = nl ? (size_t)(nl - data) + 1 : hlen;
        if (e - i > k && strncasecmp(data + i, name, k) == 0 && data[i + k] == ':') {
            struct strbuf v = { 0 };
            size_t j = i + k + 1;
            for (;;) {
                size_t stop = e;
                while (stop > j && (data[stop - 1] == '\n' || data[stop - 1] == '\r'))
                    stop--;
                sb_add(&v, data + j, stop - j);
                if (e < hlen && (data[e] == ' ' || data[e] == '\t')) {
                    j = e;
                    nl = memchr(data + e, '\n', hlen - e);
                    e = nl ? (size_t)(nl - data) + 1 : hlen;
                    continue;
                }
                break;
            }
            if (!v.p || v.oom) {
                free(v.p);
                return NULL;
            }
            char *s = v.p, *t = s + strlen(s);
            while (*s == ' ' || *s == '\t')
                s++;
            while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
                t--;
            if (t > s && *s == '<' && t[-1] == '>') {
                s++;
                t--;
            }
            char *r = strndup(s, (size_t)(t - s));
            free(v.p);
            return r;
        }
        i = e;
    }
    return NULL;
}

static bool fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = fsync(fd) == 0;
    int e = errno;
    close(fd);
    errno = e;
    return ok;
}

/* fsync of a directory after a rename, shared between sessions (group
 * commit): every session that renamed into DIR waits for one fsync that
 * started after its rename; while one runs, the next waiters gather and the
 * first of them runs the next one for all. Same guarantee as an fsync per
 * message, a fraction of the disk flushes under load. */
#define SYNC_DIRS 16
static pthread_mutex_t sync_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sync_cond = PTHREAD_COND_INITIALIZER;
static struct dirsync {
    char path[4096];
    unsigned long requests, done;
    bool running;
    int err;
    bool have_fd;      /* fd kept open between fsyncs */
    int fd;
    dev_t dev;
    ino_t ino;
} syncs[SYNC_DIRS];

/* fsync of the directory DS names through its kept descriptor (opened on
 * first use). The path is looked up again (stat) each time and the
 * descriptor replaced when it no longer names the same directory (the
 * maildir removed and re-created), so the fsync always reaches the
 * directory the renames went into. Called by the leader only, without
 * sync_lock (one leader per slot at a time). */
static bool fsync_dir_kept(struct dirsync *ds)
{
    struct stat st;
    if (stat(ds->path, &st) != 0)
        return false;
    if (ds->have_fd && (st.st_dev != ds->dev || st.st_ino != ds->ino)) {
        close(ds->fd);
        ds->have_fd = false;
    }
    if (!ds->have_fd) {
        int fd = open(ds->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return false;
        struct stat fst;
        if (fstat(fd, &fst) != 0) {
            int e = errno;
            close(fd);
            errno = e;
            return false;
        }
        /* (replaced between the stat and the open: the fd names the
         * current one, as a plain open-and-fsync would) */
        ds->fd = fd;
        ds->have_fd = true;
        ds->dev = fst.st_dev;
        ds->ino = fst.st_ino;
    }
    return fsync(ds->fd) == 0;
}

static bool fsync_dir_shared(const char *dir)
{
    pthread_mutex_lock(&sync_lock);
    struct dirsync *ds = NULL;
    for (int i = 0; i < SYNC_DIRS && !ds; i++)
        if (strcmp(syncs[i].path, dir) == 0)
            ds = &syncs[i];
    for (int i = 0; i < SYNC_DIRS && !ds; i++)
        if (!syncs[i].path[0] && strlen(dir) < sizeof syncs[i].path) {
            ds = &syncs[i];
            strcpy(ds->path, dir);
        }
    if (!ds) {   /* more folders than slots: sync alone */
        pthread_mutex_unlock(&sync_lock);
        return fsync_dir(dir);
    }
    unsigned long ticket = ++ds->requests;
    bool ok = true;
    while (ds->done < ticket) {
        if (!ds->running) {
            ds->running = true;
            unsigned long covered = ds->requests;
            pthread_mutex_unlock(&sync_lock);
            bool r = fsync_dir_kept(ds);
            int e = errno;
            pthread_mutex_lock(&sync_lock);
            ds->running = false;
            ds->done = covered;
            ds->err = r ? 0 : (e ? e : EIO);
            pthread_cond_broadcast(&sync_cond);
        } else {
            pthread_cond_wait(&sync_cond, &sync_lock);
        }
    }
    /* the fsync that covered us failed: report it (conservatively, any
     * later failure also counts) */
    if (ds->err) {
        ok = false;
        errno = ds->err;
    }
    pthread_mutex_unlock(&sync_lock);
    return ok;
}

/* Make sure DIR is a maildir (tmp, new, cur); for a maildir++ folder also
 * the maildirfolder marker. */
static bool ensure_maildir(const char *dir, bool folder)
{
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s/new", dir);
    if (stat(p, &st) == 0)
        return true;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return false;
    static const char *const subs[] = { "tmp", "new", "cur" };
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, subs[i]);
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            return false;
    }
    if (folder) {
        snprintf(p, sizeof p, "%s/maildirfolder", dir);
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
            return false;
        close(fd);
    }
    if (!fsync_dir(dir))
        return false;
    char parent[4096];
    snprintf(parent, sizeof parent, "%s/..", dir);
    return fsync_dir(parent);
}

/* A unique maildir name <seconds>.M<usec>P<pid>Q<n>.<host> into NAME. */
static void maildir_name(char *name, size_t size)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    unsigned long q = atomic_fetch_add(&lmtpd.seq, 1) + 1;
    snprintf(name, size, "%ld.M%06ldP%dQ%lu.%s", (long)tv.tv_sec, (long)tv.tv_usec,
             lmtpd.pid ? lmtpd.pid : (int)getpid(), q, lmtpd.hostname);
}

/* Create NAME in DIR/tmp/ (O_EXCL) into *FD: invisible to readers until
 * maildir_commit() renames it. Returns 0 or an errno value. */
static int maildir_create(const char *dir, const char *name, int *fd)
{
    char tmp[4096 + 600];
    snprintf(tmp, sizeof tmp, "%s/tmp/%s", dir, name);
    *fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    return *fd < 0 ? (errno ? errno : EIO) : 0;
}

/* Give up the tmp/ file of maildir_create(). */
static void maildir_abandon(const char *dir, const char *name, int fd)
{
    char tmp[4096 + 600];
    snprintf(tmp, sizeof tmp, "%s/tmp/%s", dir, name);
    close(fd);
    unlink(tmp);
}

/* Write HEAD and BODY into FD (DIR/tmp/NAME, from maildir_create), the
 * durable way: fsync, rename into new/, fsync of new/. FD is closed in any
 * case, the tmp/ file removed on failure. On success *FINAL gets the path
 * in new/. Returns 0 or an errno value. */
static int maildir_commit(int fd, const char *dir, const char *name, const char *head,
                          size_t head_len, const char *body, size_t body_len, char **final)
{
    char tmp[4096 + 600], dst[4096 + 600];
    snprintf(tmp, sizeof tmp, "%s/tmp/%s", dir, name);
    snprintf(dst, sizeof dst, "%s/new/%s", dir, name);
    int err = 0;
    /* head and body in one call (a short write goes on from where it
     * stopped) */
    struct iovec iov[2] = { { (void *)head, head_len }, { (void *)body, body_len } };
    int k = 0;
    while (k < 2 && !err) {
        if (iov[k].iov_len == 0) {
            k++;
            continue;
        }
        ssize_t w = writev(fd, iov + k, 2 - k);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            err = w < 0 ? errno : EIO;
            break;
        }
        for (size_t left = (size_t)w; k < 2 && left;) {
            size_t t = left < iov[k].iov_len ? left : iov[k].iov_len;
            iov[k].iov_base = (char *)iov[k].iov_base + t;
            iov[k].iov_len -= t;
            left -= t;
            if (iov[k].iov_len == 0)
                k++;
        }
    }
    if (!err && fsync(fd) != 0)
        err = errno;
    if (close(fd) != 0 && !err)
        err = errno;
    if (!err && rename(tmp, dst) != 0)
        err = errno;
    if (err) {
        unlink(tmp);
        return err;
    }
    char newdir[4096];
    snprintf(newdir, sizeof newdir, "%s/new", dir);
    if (!fsync_dir_shared(newdir)) {
        /* the file is in new/ but not known durable: take it back out so
         * the MTA's retry cannot make a second copy */
        err = errno ? errno : EIO;
        unlink(dst);
        return err;
    }
    *final = strdup(dst);
    if (!*final)
        return ENOMEM;
    return 0;
}

/* Write HEAD and BODY into DIR's maildir the durable way, under a new
 * unique name: tmp/, fsync, rename into new/, fsync of new/. On success
 * *FINAL gets the path in new/. Returns 0 or an errno value. */
static int maildir_write(const char *dir, const char *head, size_t head_len,
                         const char *body, size_t body_len, char **final)
{
    char name[512];
    maildir_name(name, sizeof name);
    int fd;
    int err = maildir_create(dir, name, &fd);
    if (err)
        return err;
    return maildir_commit(fd, dir, name, head, head_len, body, body_len, final);
}

bool lmtpd_still_delivered(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return true;
    const char *slash = strrchr(path, '/');
    if (!slash || slash - path < 4 || strncmp(slash - 4, "/new", 4) != 0)
        return false;
    char cur[4096];
    snprintf(cur, sizeof cur, "%.*s/cur", (int)(slash - 4 - path), path);
    const char *name = slash + 1;
    size_t n = strlen(name);
    DIR *d = opendir(cur);
    if (!d)
        return false;
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d)))
        if (strncmp(de->d_name, name, n) == 0 && de->d_name[n] == ':')
            found = true;
    closedir(d);
    return found;
}

/* The redelivery check: was the message of KEY delivered within the
 * window, and is its file still there (in new/, or moved on to cur/)?
 * CANDOR_OK: yes, *PREV is that file (yours; a delivered=0 row is marked
 * delivered=1 on the way); CANDOR_ENOTFOUND: deliver it; else the
 * lookup's error. LOCKED: the caller holds the daemon's write lock. */
static candor_status_t redelivered(struct candor_store *store, const struct lmtpd_conf *conf,
                                   const char *key, const char *msgid, bool locked, char **prev)
{
    int delivered = 0;
    *prev = NULL;
    candor_status_t s = candor_store_delivery_find(store, key, 0, conf->redelivery_window,
                                                   &delivered, prev);
    if (s == CANDOR_OK && (delivered || lmtpd_still_delivered(*prev))) {
        if (!delivered) {
            if (!locked)
                lmtpd_store_write_begin(conf);
            candor_store_delivery_record(store, key, msgid, *prev, 1, 0, 0);
            if (!locked)
                lmtpd_store_write_end(conf);
        }
        return CANDOR_OK;
    }
    free(*prev);
    *prev = NULL;
    return s == CANDOR_OK ? CANDOR_ENOTFOUND : s;
}

/* Store handles are kept in a small pool between sessions: Postfix opens a
 * connection per message, and opening SQLite (and checking its schema) for
 * each would cost more than the message. A handle is used by one session
 * thread at a time (candor.h), taken from and returned to the pool under a
 * mutex. Handles of a configuration replaced by SIGHUP are closed. */
#define POOL_MAX 32
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { struct candor_store *store; struct lmtpd_conf *conf; } pool[POOL_MAX];
static int pool_n;

/* Writes to an SQLite state are serialised inside the daemon: SQLite
 * allows one writer at a time, and its busy handler sleeps in steps of up
 * to 100 ms, so letting sessions collide there costs far more than waiting
 * here. A PostgreSQL server needs no such lock, and must not have one:
 *  - each session has its own connection, and every write is either one
 *    statement (an upsert of a delivery-log row, an UPDATE of the outbox:
 *    atomic on its own) or a decision transaction, which takes the
 *    server's decision lock (store-pg.c) and so is serialised against
 *    every session of every host anyway;
 *  - the server waits for the commits of concurrent sessions with one WAL
 *    flush, while a lock here would make each session's commit wait for
 *    the previous one's flush (that was PostgreSQL's bottleneck).
 * The backend is told by the look of the state location, the rule of
 * candor_store_open(): a "postgresql://" or "postgres://" URI, or libpq
 * keywords ("host=..."). Guessing wrong costs speed, never correctness. */
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

bool lmtpd_state_is_server(const struct lmtpd_conf *conf)
{
    const char *s = conf->state ? conf->state : candor_ctx_state_path(conf->ctx);
    if (!s)
        return false;
    if (strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0)
        return true;
    while (*s == ' ')
        s++;
    const char *w = s;
    while ((*s >= 'a' && *s <= 'z') || *s == '_')
        s++;
    return s > w && *s == '=';
}

void lmtpd_store_write_begin(const struct lmtpd_conf *conf)
{
    if (!conf || !conf->state_server)
        pthread_mutex_lock(&write_lock);
}

void lmtpd_store_write_end(const struct lmtpd_conf *conf)
{
    if (!conf || !conf->state_server)
        pthread_mutex_unlock(&write_lock);
}

void lmtpd_worker_close(struct lmtpd_worker *w)
{
    if (!w->store)
        return;
    struct lmtpd_conf *cur = lmtpd_conf_get();
    bool kept = false;
    pthread_mutex_lock(&pool_lock);
    if (w->store_conf == cur && pool_n < POOL_MAX) {
        pool[pool_n].store = w->store;
        pool[pool_n].conf = w->store_conf;   /* the reference moves to the pool */
        pool_n++;
        kept = true;
    }
    pthread_mutex_unlock(&pool_lock);
    lmtpd_conf_put(cur);
    if (!kept) {
        candor_store_free(w->store);
        lmtpd_conf_put(w->store_conf);
    }
    w->store = NULL;
    w->store_conf = NULL;
}

static struct candor_store *worker_store(struct lmtpd_worker *w, struct lmtpd_conf *conf)
{
    if (w->store && w->store_conf == conf)
        return w->store;
    lmtpd_worker_close(w);
    struct candor_store *stale[POOL_MAX];
    struct lmtpd_conf *stale_conf[POOL_MAX];
    int n_stale = 0;
    pthread_mutex_lock(&pool_lock);
    for (int i = pool_n - 1; i >= 0; i--) {
        if (pool[i].conf == conf && !w->store) {
            w->store = pool[i].store;
            w->store_conf = pool[i].conf;
        } else if (pool[i].conf != conf) {
            stale[n_stale] = pool[i].store;
            stale_conf[n_stale++] = pool[i].conf;
        } else {
            continue;
        }
        pool[i] = pool[--pool_n];
    }
    pthread_mutex_unlock(&pool_lock);
    for (int i = 0; i < n_stale; i++) {
        candor_store_free(stale[i]);
        lmtpd_conf_put(stale_conf[i]);
    }
    if (w->store)
        return w->store;
    if (candor_store_open(&w->store, conf->ctx, conf->state, 0) != CANDOR_OK) {
        lmtpd_log("-: cannot open the state: %s", candor_errmsg());
        w->store = NULL;
        return NULL;
    }
    atomic_fetch_add(&conf->refs, 1);
    w->store_conf = conf;
    return w->store;
}

static void find_pending(struct candor_store *store, const char *ticket,
                         struct lmtpd_pending *out);
static void log_clean(char *s, bool blanks);

/* ---- group commit of the delivery path's store writes ----
 * Each message needs, before its file is written, its redelivery check,
 * its acknowledgement decision (a synchronous commit: one disk flush) and
 * its delivery-log row (delivered=0, with the final path); after its 250,
 * the row marked delivered=1. Sessions queue these as jobs; whichever
 * session finds no commit under way becomes the leader: it takes every
 * queued job of its configuration, checks them, writes the rows, and
 * decides all the messages in ONE
 * transaction (candor_ack_batch), then wakes the others. While it runs,
 * the next jobs gather for the next leader. So N concurrent messages cost
 * one flush instead of N serialised ones, and nothing ever waits in
 * SQLite's sleeping busy handler (the leader holds the daemon's write
 * lock). No extra thread: the leader is a session that has to wait anyway. */
#define GC_MAX 64

struct gc_job {
    struct lmtpd_conf *conf;      /* a reference for async jobs */
    /* the decision (MSG NULL: none) */
    const struct candor_message *msg;
    const struct candor_result *res;
    const candor_envelope_t *env;
    struct candor_ack *ack;
    candor_status_t ack_st;
    /* the redelivery check first (LOOKUP): a message delivered before
     * gets no row and no decision, DUP and its file DUP_PATH instead */
    bool lookup, dup;
    char *dup_path;
    /* the delivery-log row (KEY NULL: none) */
    const char *key, *msgid, *path;
    int delivered;
    long keep;
    candor_status_t rec_st;
    char err[200];
    bool done, async;
    char *owned;                  /* async: the strings above, one block */
    pthread_cond_t cond;          /* sync: its session waits on it */
    struct gc_job *next;
};

static pthread_mutex_t gc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gc_job *gc_head, **gc_tail = &gc_head;
static bool gc_running;
static atomic_int gc_inflight;    /* sessions inside lmtpd_deliver() */
static int gc_waiters;            /* queued synchronous jobs */

/* Every job of a batch gets status ST (and the message in candor_errmsg()):
 * none of the batch's writes were kept. */
static void gc_fail_all(struct gc_job **jobs, size_t n, candor_status_t st, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        candor_ack_free(jobs[i]->ack);
        jobs[i]->ack = NULL;
        jobs[i]->ack_st = jobs[i]->rec_st = st;
        snprintf(jobs[i]->err, sizeof jobs[i]->err, "%s: %s", what, candor_errmsg());
    }
}

/* Run N jobs of one configuration on STORE, in one transaction when GROUP.
 * Returns the status that made the group fail (every job failed with it),
 * else CANDOR_OK. */
static candor_status_t gc_run_store(struct candor_store *store, struct lmtpd_conf *conf,
                                    struct gc_job **jobs, size_t n, bool group)
{
    const struct candor_message *msgs[GC_MAX];
    const struct candor_result *ress[GC_MAX];
    const candor_envelope_t *envs[GC_MAX];
    struct candor_ack *outs[GC_MAX];
    candor_status_t sts[GC_MAX];
    size_t idx[GC_MAX], k = 0;
    for (size_t i = 0; i < n; i++) {   /* (again, after a failed group) */
        jobs[i]->ack_st = jobs[i]->rec_st = CANDOR_OK;
        jobs[i]->dup = false;
        free(jobs[i]->dup_path);
        jobs[i]->dup_path = NULL;
    }
    lmtpd_store_write_begin(conf);
    candor_status_t gst = group ? candor_store_begin(store) : CANDOR_OK;
    if (gst != CANDOR_OK) {
        gc_fail_all(jobs, n, gst, "state");
        lmtpd_store_write_end(conf);
        return gst;
    }
    for (size_t i = 0; i < n; i++) {
        struct gc_job *j = jobs[i];
        if (j->lookup && j->key) {
            candor_status_t fs = redelivered(store, conf, j->key, j->msgid, true, &j->dup_path);
            if (fs == CANDOR_OK) {
                j->dup = true;
                continue;
            }
            if (fs != CANDOR_ENOTFOUND) {
                j->rec_st = fs;
                snprintf(j->err, sizeof j->err, "delivery log: %s", candor_errmsg());
                continue;
            }
        }
        if (j->key) {
            j->rec_st = candor_store_delivery_record(store, j->key, j->msgid, j->path,
                                                     j->delivered, 0, j->keep);
            if (j->rec_st != CANDOR_OK) {
                if (group) {   /* the transaction may be gone: none of it counts */
                    gst = j->rec_st;
                    gc_fail_all(jobs, n, gst, "delivery log");
                    candor_store_rollback(store);
                    lmtpd_store_write_end(conf);
                    return gst;
                }
                snprintf(j->err, sizeof j->err, "delivery log: %s", candor_errmsg());
                continue;
            }
        }
        if (j->msg) {
            msgs[k] = j->msg;
            ress[k] = j->res;
            envs[k] = j->env;
            idx[k++] = i;
        }
    }
    if (k) {   /* one transaction, one commit, one flush for all of them */
        candor_status_t st = candor_ack_batch(outs, sts, conf->ctx, store, msgs, ress, envs, k);
        for (size_t m = 0; m < k; m++) {
            struct gc_job *j = jobs[idx[m]];
            j->ack_st = st == CANDOR_OK ? sts[m] : st;
            j->ack = st == CANDOR_OK ? outs[m] : NULL;
            if (j->ack_st != CANDOR_OK)
                snprintf(j->err, sizeof j->err, "%s", candor_errmsg());
        }
    }
    if (group && (gst = candor_store_commit(store)) != CANDOR_OK) {
        /* nothing was kept: no row, no decision (an acknowledgement
         * decided in it must not go out), so every waiting session
         * answers 451 and the MTA retries */
        gc_fail_all(jobs, n, gst, "state commit");
        candor_store_rollback(store);
    }
    lmtpd_store_write_end(conf);
    return gst;
}

/* Run N jobs of one configuration on W's store for it. When a session
 * waits for one of them and the state is an SQLite file, all of their
 * writes (delivery-log rows, the delivered=1 marks of earlier messages,
 * the decisions) go into one transaction and one commit: the commit waits
 * for the disk anyway, and one commit writes each changed page once (one
 * commit each made three per message: the row, the decisions, the mark).
 * Jobs nobody waits for (marks only) are written each on its own without
 * waiting for the disk.
 * A group that fails for another reason than a busy or absent state is
 * run again write by write, as before there were groups: one message
 * whose decision cannot be made then costs only its own acknowledgement
 * (delivered without a ticket), never the 451 of the whole group. */
static void gc_run_conf(struct lmtpd_worker *w, struct gc_job **jobs, size_t n)
{
    struct lmtpd_conf *conf = jobs[0]->conf;
    struct candor_store *store = worker_store(w, conf);
    if (!store) {
        for (size_t i = 0; i < n; i++) {
            jobs[i]->ack_st = jobs[i]->rec_st = CANDOR_EIO;
            snprintf(jobs[i]->err, sizeof jobs[i]->err, "state unavailable");
        }
        return;
    }
    /* SQLite only: there one writer at a time commits anyway, and one
     * transaction halves the pages written. On PostgreSQL the rows are
     * asynchronous commits of their own, outside the decision lock, and
     * putting them inside made every group hold it longer (store-bench:
     * 578 against 621 msg/s) */
    bool group = false;
    for (size_t i = 0; i < n && !conf->state_server; i++)
        group |= !jobs[i]->async;
    candor_status_t st = gc_run_store(store, conf, jobs, n, group);
    if (group && st != CANDOR_OK && st != CANDOR_ETEMPFAIL) {
        /* every job has the group's error (gc_fail_all); the sessions
         * waiting are the deliveries, the others delivered=1 marks */
        size_t waiting = 0;
        for (size_t i = 0; i < n; i++)
            waiting += !jobs[i]->async;
        char why[sizeof jobs[0]->err];
        snprintf(why, sizeof why, "%s", jobs[0]->err);
        log_clean(why, false);
        lmtpd_log("-: state group of %zu (sessions waiting: %zu) failed (%s): run again one by one",
                  n, waiting, why);
        gc_run_store(store, conf, jobs, n, false);
    }
}

/* The commits' own store handle, used by one leader at a time
 * (gc_running, under gc_lock). One handle for every commit rather than the
 * leader's session handle: SQLite keeps its page cache only while no other
 * handle wrote, so with the sessions taking turns to lead, every commit
 * began by reading back the pages the previous one had changed. */
static struct lmtpd_worker gc_w;

/* Lead one commit: take up to GC_MAX queued jobs (in order), run them per
 * configuration, mark them done. An SQLite state's on gc_w (a
 * configuration left by a SIGHUP swaps the handle, rare); a PostgreSQL
 * state's on the leader W's own handle when it is OWN's (W may be NULL),
 * else on a handle of its own (measured: with every commit on one
 * connection, PostgreSQL ran 5-8% slower). Called and returns with
 * gc_lock held. */
static void gc_lead(struct lmtpd_worker *w, const struct lmtpd_conf *own)
{
    struct gc_job *batch[GC_MAX];
    size_t n = 0;
    while (gc_head && n < GC_MAX) {
        batch[n++] = gc_head;
        gc_head = gc_head->next;
    }
    if (!gc_head)
        gc_tail = &gc_head;
    gc_running = true;
    pthread_mutex_unlock(&gc_lock);
    bool taken[GC_MAX] = { false };
    for (size_t i = 0; i < n; i++) {
        if (taken[i])
            continue;
        struct gc_job *same[GC_MAX] = { NULL };
        size_t m = 0;
        for (size_t k = i; k < n; k++)
            if (!taken[k] && batch[k]->conf == batch[i]->conf) {
                same[m++] = batch[k];
                taken[k] = true;
            }
        struct lmtpd_conf *c = batch[i]->conf;
        if (!c->state_server) {
            gc_run_conf(&gc_w, same, m);
        } else if (w && c == own) {
            gc_run_conf(w, same, m);
        } else {
            struct lmtpd_worker other = { NULL, NULL };
            gc_run_conf(&other, same, m);
            lmtpd_worker_close(&other);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (batch[i]->async) {
            if (batch[i]->rec_st != CANDOR_OK)
                lmtpd_log("-: delivery log (delivered): %s", batch[i]->err);
            lmtpd_conf_put(batch[i]->conf);
            free(batch[i]->owned);
            free(batch[i]);
            batch[i] = NULL;
        }
    }
    pthread_mutex_lock(&gc_lock);
    /* wake only whom it concerns: the sessions whose jobs are done, and
     * the first one still queued, to lead the next commit (a broadcast
     * woke every waiting session for each commit, most of them to sleep
     * again) */
    for (size_t i = 0; i < n; i++)
        if (batch[i]) {
            batch[i]->done = true;
            gc_waiters--;
            pthread_cond_signal(&batch[i]->cond);
        }
    gc_running = false;
    for (struct gc_job *q = gc_head; q; q = q->next)
        if (!q->async) {
            pthread_cond_signal(&q->cond);
            break;
        }
}

/* Queue J and wait until it is done (leading a commit when none runs). */
static void gc_submit(struct lmtpd_worker *w, struct gc_job *j)
{
    j->ack_st = j->rec_st = CANDOR_OK;
    j->ack = NULL;
    j->done = j->async = false;
    j->next = NULL;
    pthread_cond_init(&j->cond, NULL);
    pthread_mutex_lock(&gc_lock);
    *gc_tail = j;
    gc_tail = &j->next;
    gc_waiters++;
    while (!j->done) {
        if (gc_running)
            pthread_cond_wait(&j->cond, &gc_lock);
        else
            gc_lead(w, j->conf);
    }
    /* jobs nobody waits for (async) are left: take them along */
    while (gc_head && gc_waiters == 0 && !gc_running)
        gc_lead(w, j->conf);
    pthread_mutex_unlock(&gc_lock);
    pthread_cond_destroy(&j->cond);   /* signalled under gc_lock: nobody holds it now */
}

/* Queue a job nobody waits for (heap-allocated, freed when run): run it
 * now when no commit is under way, else it goes with the next one. */
static void gc_post(struct lmtpd_worker *w, struct gc_job *j)
{
    j->ack_st = j->rec_st = CANDOR_OK;
    j->ack = NULL;
    j->done = false;
    j->async = true;
    j->next = NULL;
    pthread_mutex_lock(&gc_lock);
    *gc_tail = j;
    gc_tail = &j->next;
    /* SQLite: while a delivery is under way its commit will take J along
     * (one commit for both): lead now only when none is. PostgreSQL: the
     * mark is an asynchronous commit of its own (no group there), better
     * written now than on the next leader's path */
    struct lmtpd_conf *own = j->conf;   /* J may be freed by the first round */
    bool defer = !own->state_server;
    while (gc_head && gc_waiters == 0 && !gc_running &&
           (!defer || atomic_load(&gc_inflight) == 0))
        gc_lead(w, own);
    pthread_mutex_unlock(&gc_lock);
}

void lmtpd_deliver_flush(void)
{
    pthread_mutex_lock(&gc_lock);
    while (gc_head && !gc_running)
        gc_lead(NULL, NULL);
    pthread_mutex_unlock(&gc_lock);
}

/* After the 250s: mark the delivery-log row delivered=1 (a flush is not
 * waited for: a lost update only leaves delivered=0, which with the file in
 * place means the same), then hand the acknowledgement over. */
void lmtpd_deliver_finish(struct lmtpd_worker *w, struct lmtpd_conf *conf, const char *qid,
                          struct lmtpd_pending *p)
{
    if (p->key && p->path) {
        size_t kl = strlen(p->key) + 1, ml = p->msgid ? strlen(p->msgid) + 1 : 0,
               pl = strlen(p->path) + 1;
        struct gc_job *j = calloc(1, sizeof *j);
        char *block = malloc(kl + ml + pl);
        if (j && block) {
            memcpy(block, p->key, kl);
            memcpy(block + kl, p->path, pl);
            if (ml)
                memcpy(block + kl + pl, p->msgid, ml);
            j->owned = block;
            j->key = block;
            j->path = block + kl;
            j->msgid = ml ? block + kl + pl : NULL;
            j->delivered = 1;
            j->keep = conf->redelivery_window * 4;
            atomic_fetch_add(&conf->refs, 1);
            j->conf = conf;
            gc_post(w, j);
        } else {
            free(j);
            free(block);
        }
    }
    if (p->ticket)
        lmtpd_ack_handover(w, conf, qid, p);
    lmtpd_pending_free(p);
}

/* One log line per event: no control bytes (a Message-ID also no blanks). */
static void log_clean(char *s, bool blanks)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f || (blanks && *s == ' '))
            *s = '_';
}

/* Delivery for the "sent" address: record and check the reply. */
static enum lmtpd_outcome sent_copy(struct lmtpd_conf *conf, struct candor_store *store,
                                    const char *qid, const char *data, size_t len,
                                    char *note, size_t note_size)
{
    struct candor_message *reply = NULL;
    if (candor_message_parse(&reply, conf->ctx, data, len) != CANDOR_OK) {
        snprintf(note, note_size, "sent=unparsed(%s)", candor_errmsg());
        return LMTPD_DELIVERED;   /* nothing can be learnt from it; keep nothing */
    }
    char *json = NULL;
    lmtpd_store_write_begin(conf);
    candor_status_t s = candor_record_reply(conf->ctx, store, reply, 0, &json);
    lmtpd_store_write_end(conf);
    if (s == CANDOR_ETEMPFAIL) {
        candor_message_free(reply);
        snprintf(note, note_size, "sent=tempfail");
        return LMTPD_TEMPFAIL;
    }
    char ticket[64] = "-";
    if (s == CANDOR_OK && json) {
        struct json_object *o = json_tokener_parse(json), *t;
        if (o && json_object_object_get_ex(o, "ticket", &t) && json_object_is_type(t, json_type_string))
            snprintf(ticket, sizeof ticket, "%s", json_object_get_string(t));
        json_object_put(o);
    } else if (s != CANDOR_OK) {
        snprintf(ticket, sizeof ticket, "unrecorded");
    }
    candor_free(json);

    /* the original: In-Reply-To, else the last of References */
    char *mjson = NULL;
    char *orig_path = NULL;
    if (candor_message_to_json(reply, NULL, &mjson) == CANDOR_OK && mjson) {
        struct json_object *o = json_tokener_parse(mjson), *v;
        if (o && json_object_object_get_ex(o, "in_reply_to", &v) && json_object_is_type(v, json_type_string))
            candor_store_delivery_path(store, json_object_get_string(v), &orig_path);
        if (!orig_path && o && json_object_object_get_ex(o, "references", &v) &&
            json_object_is_type(v, json_type_array)) {
            for (size_t i = json_object_array_length(v); i-- > 0 && !orig_path;) {
                struct json_object *r = json_object_array_get_idx(v, i);
                if (json_object_is_type(r, json_type_string))
                    candor_store_delivery_path(store, json_object_get_string(r), &orig_path);
            }
        }
        json_object_put(o);
    }
    candor_free(mjson);
    const char *verdict = "no_original";
    double score = 0;
    struct candor_check *chk = NULL;
    struct candor_message *orig = NULL;
    if (orig_path && candor_message_parse_file(&orig, conf->ctx, orig_path) == CANDOR_OK &&
        candor_check(&chk, conf->ctx, store, orig, reply, 0) == CANDOR_OK) {
        verdict = candor_check_verdict(chk);
        score = candor_check_score(chk);
        if (verdict && strcmp(verdict, "ok") != 0) {
            char *cj = NULL;
            if (candor_check_to_json(chk, &cj) == CANDOR_OK && cj) {
                log_clean(cj, false);
                lmtpd_log("%s: flagged reply ticket=%s verdict=%s findings=%s", qid, ticket,
                          verdict, cj);
            }
            candor_free(cj);
            if (conf->review_folder) {
                char dir[4096], *final = NULL;
                snprintf(dir, sizeof dir, "%s/.%s", lmtpd.opts.maildir, conf->review_folder);
                int err = ensure_maildir(dir, true) ? 0 : errno;
                if (!err)
                    err = maildir_write(dir, "", 0, data, len, &final);
                if (err)
                    lmtpd_log("%s: review copy failed: %s", qid, strerror(err));
                free(final);
            }
        }
    } else if (orig_path) {
        verdict = "unchecked";
    }
    snprintf(note, note_size, "sent ticket=%s verdict=%s score=%.2f", ticket,
             verdict ? verdict : "-", score);
    candor_check_free(chk);
    candor_message_free(orig);
    candor_message_free(reply);
    free(orig_path);
    return LMTPD_DELIVERED;
}

#ifdef LMTPD_ABLATION
/* Benchmark builds only (meson -Dlmtpd_ablation=true; a normal build has
 * none of this): the environment's LMTPD_ABLATION leaves parts of the
 * delivery out, so tests/bench/lmtpd-ablation.py can measure what each
 * part costs behind Postfix. "no-triage": no parsing, triage or decision
 * (the redelivery lookup and the delivery-log rows stay); "no-flush": as
 * no-triage, but the delivery-log row is written by the session without
 * waiting for the disk (candor_store_delivery_record on its own) instead
 * of in the synchronous group commit; "file-only": no state at all (only
 * the LMTP session and the durable maildir file); unset or "full": all of
 * it. Read once; any other value is logged and means "full". */
enum { ABL_NONE, ABL_NO_TRIAGE, ABL_NO_FLUSH, ABL_FILE_ONLY };

static int ablation(void)
{
    static atomic_int level = -1;
    int v = atomic_load(&level);
    if (v < 0) {
        const char *e = getenv("LMTPD_ABLATION");
        v = !e || strcmp(e, "full") == 0 ? ABL_NONE
          : strcmp(e, "file-only") == 0 ? ABL_FILE_ONLY
          : strcmp(e, "no-flush") == 0 ? ABL_NO_FLUSH
          : strcmp(e, "no-triage") == 0 ? ABL_NO_TRIAGE : -2;
        if (v == -2) {   /* a typo must not pass for a measurement of a level */
            char shown[64];
            snprintf(shown, sizeof shown, "%s", e);
            log_clean(shown, true);
            lmtpd_log("-: LMTPD_ABLATION=%s: not a level (full, no-triage, no-flush, "
                      "file-only); doing all the work", shown);
            v = ABL_NONE;
        }
        int unset = -1;   /* the first caller logs, the others take its value */
        if (!atomic_compare_exchange_strong(&level, &unset, v))
            v = unset;
    }
    return v;
}
#endif

void lmtpd_deliver(struct lmtpd_worker *w, struct lmtpd_conf *conf, const char *qid,
                   const char *data, size_t len, const struct lmtpd_envelope *env,
                   enum lmtpd_outcome *result, double cpu_start, double wall_start,
                   struct lmtpd_pending *out)
{
    memset(out, 0, sizeof *out);
    atomic_fetch_add(&gc_inflight, 1);
    char note[512] = "";
    const char *status = "tempfail";
    const char *intent = "-", *reason = "-", *ticket = "-", *decision = "-";
    char *file = NULL;
    struct candor_message *msg = NULL;
    struct candor_result *res = NULL;
    struct candor_ack *ack = NULL;
    struct candor_store *store = NULL;
    char *hdrs = NULL, *msgid = NULL;
    struct strbuf clean = { 0 }, head = { 0 };
    enum lmtpd_outcome outcome = LMTPD_TEMPFAIL;
    bool to_team = false, to_sent = false, claimed = false;
    const char *team_rcpt = NULL;
    int tfd = -1;                 /* the tmp/ file, once created */
    for (size_t i = 0; i < env->n_rcpts; i++) {
        if (conf->sent_address && strcmp(env->rcpts[i], conf->sent_address) == 0) {
            to_sent = true;
        } else {
            to_team = true;
            if (!team_rcpt)
                team_rcpt = env->rcpts[i];
        }
    }

    size_t hlen = header_len(data, len);
    strip_candor(data, len, hlen, &clean);
    if (clean.oom || !clean.p) {
        snprintf(note, sizeof note, "error=out_of_memory");
        goto done;
    }
    size_t chlen = header_len(clean.p, clean.n);
    msgid = header_value(clean.p, chlen, "Message-ID");

    /* redelivery key: Message-ID and a digest of the body; without a
     * Message-ID, a digest of the whole message (its Received fields tell
     * two submissions of the same text apart, while the MTA's retry sends
     * the very same bytes); plus the envelope sender and the target. */
    unsigned char dig[32], key_raw[32];
    if (msgid)
        lmtpd_sha256(clean.p + chlen, clean.n - chlen, dig);
    else
        lmtpd_sha256(clean.p, clean.n, dig);
    {
        struct strbuf k = { 0 };
        char hex[65];
        lmtpd_hex(dig, 32, hex);
        sb_puts(&k, msgid ? msgid : "");
        sb_add(&k, "\n", 1);
        sb_puts(&k, hex);
        sb_add(&k, "\n", 1);
        sb_puts(&k, env->sender);
        sb_add(&k, "\n", 1);
        sb_puts(&k, lmtpd.opts.maildir);
        sb_puts(&k, to_team ? "\nteam" : "\nsent");
        if (k.oom || !k.p) {
            free(k.p);
            snprintf(note, sizeof note, "error=out_of_memory");
            goto done;
        }
        lmtpd_sha256(k.p, k.n, key_raw);
        free(k.p);
    }
    char key[65];
    lmtpd_hex(key_raw, 32, key);

#ifdef LMTPD_ABLATION
    if (ablation() == ABL_FILE_ONLY)
        goto place;
#endif
    store = worker_store(w, conf);
    if (!store) {
        snprintf(note, sizeof note, "error=state_unavailable");
        goto done;
    }
    /* the redelivery check: for the team's mail in the group commit below
     * (on the commits' handle, whose pages are current; on SQLite in the
     * same transaction as the row it writes), for a sent copy here */
    if (to_sent && !to_team) {
        char *prev = NULL;
        candor_status_t s = redelivered(store, conf, key, msgid, false, &prev);
        if (s == CANDOR_OK) {
            outcome = LMTPD_DELIVERED;
            status = "duplicate";
            file = prev;
            decision = "none";
            goto done;
        }
        if (s != CANDOR_ENOTFOUND) {
            snprintf(note, sizeof note, "error=delivery_log(%s)", candor_errmsg());
            goto done;
        }
        outcome = sent_copy(conf, store, qid, clean.p, clean.n, note, sizeof note);
        if (outcome == LMTPD_DELIVERED) {
            lmtpd_store_write_begin(conf);
            candor_store_delivery_record(store, key, msgid, "sent", 1, 0, 0);
            lmtpd_store_write_end(conf);
            status = "recorded";
        }
        goto done;
    }

#ifdef LMTPD_ABLATION
    if (ablation() != ABL_NONE)
        goto place;
#endif
    /* triage; without the store when the acknowledgement is decided below:
     * that decision reads the thread and rate state itself, inside its
     * transaction, and the X-Candor-Autoreply field says what it decided
     * (candor_result_headers_ack), so triage's own reads of that state, on
     * this session's handle, would be work thrown away (and could disagree
     * with the decision when another session's message from the same sender
     * is decided first) */
    candor_envelope_t cenv = CANDOR_ENVELOPE_INIT;
    cenv.sender = env->sender;
    cenv.recipient = team_rcpt;
    candor_status_t ts = CANDOR_OK;
    if (candor_message_parse(&msg, conf->ctx, clean.p, clean.n) != CANDOR_OK) {
        snprintf(note, sizeof note, "triage=unparsed(%s)", candor_errmsg());
    } else if ((ts = candor_triage(&res, conf->ctx, msg, lmtpd.opts.no_ack ? store : NULL, &cenv,
                                   0)) != CANDOR_OK) {
        snprintf(note, sizeof note, "triage=failed(%s)", candor_errmsg());
        candor_result_free(res);
        res = NULL;
        if (ts == CANDOR_ETEMPFAIL)
            goto done;   /* the state is away (busy, server down): 451, the MTA retries */
    } else {
        intent = candor_result_intent(res) ? candor_result_intent(res) : "-";
        reason = candor_result_autoreply_reason(res) ? candor_result_autoreply_reason(res) : "-";
        decision = "no_ack";
    }

#ifdef LMTPD_ABLATION
place:;
#endif
    /* where it goes, under which name */
    char dir[4096], name[512], final_path[4096 + 600];
    bool folder = conf->folder_per_intent && strcmp(intent, "-") != 0;
    if (folder)
        snprintf(dir, sizeof dir, "%s/.%s", lmtpd.opts.maildir, intent);
    else
        snprintf(dir, sizeof dir, "%s", lmtpd.opts.maildir);
    int err = ensure_maildir(dir, folder) ? 0 : (errno ? errno : EIO);
    if (err)
        goto failed;
    maildir_name(name, sizeof name);
    snprintf(final_path, sizeof final_path, "%s/new/%s", dir, name);
    /* the file is created in tmp/ before the group commit: the inode's
     * allocation (a scan of the inode bitmap, slow on a busy file system)
     * overlaps the wait for the commit instead of following it; written,
     * fsynced and renamed only once the decision is durable */
    err = maildir_create(dir, name, &tfd);
    if (err)
        goto failed;

    /* one group commit: the delivery-log row (delivered=0, the final path,
     * written before the rename so a crash after it is recognised) and the
     * acknowledgement decision (ticket, outbox), durable before the file is
     * written and long before any acknowledgement is handed over */
    struct gc_job job = { .conf = conf, .lookup = true, .key = key, .msgid = msgid,
                          .path = final_path, .delivered = 0,
                          .keep = conf->redelivery_window * 4 };
    if (res && !lmtpd.opts.no_ack) {
        job.msg = msg;
        job.res = res;
        job.env = &cenv;
    }
#ifdef LMTPD_ABLATION
    if (ablation() == ABL_NO_FLUSH) {
        lmtpd_store_write_begin(conf);
        candor_status_t fs = redelivered(store, conf, key, msgid, true, &job.dup_path);
        job.dup = fs == CANDOR_OK;
        job.rec_st = fs == CANDOR_OK || fs == CANDOR_ENOTFOUND ? CANDOR_OK : fs;
        if (job.rec_st == CANDOR_OK && !job.dup)
            job.rec_st = candor_store_delivery_record(store, key, msgid, final_path, 0, 0,
                                                      job.keep);
        lmtpd_store_write_end(conf);
        if (job.rec_st != CANDOR_OK)
            snprintf(job.err, sizeof job.err, "delivery log: %s", candor_errmsg());
    } else if (ablation() != ABL_FILE_ONLY)
#endif
    gc_submit(w, &job);
    if (job.rec_st != CANDOR_OK) {
        candor_ack_free(job.ack);
        free(job.dup_path);
        snprintf(note, sizeof note, "error=%s", job.err);
        err = EAGAIN;
        goto failed;
    }
    if (job.dup) {   /* delivered before (the MTA's retry): nothing new */
        maildir_abandon(dir, name, tfd);
        tfd = -1;
        candor_ack_free(job.ack);
        outcome = LMTPD_DELIVERED;
        status = "duplicate";
        file = job.dup_path;
        decision = "none";
        goto done;
    }
    if (job.msg) {
        ack = job.ack;
        if (job.ack_st != CANDOR_OK) {
            /* no decision recorded: delivered without a ticket, and no
             * acknowledgement (the mail matters more than its labels);
             * but the state away (busy, server down) is 451: never
             * deliver without the decision when a retry can have one */
            snprintf(note, sizeof note, "ack=failed(%s)", job.err);
            if (job.ack_st == CANDOR_ETEMPFAIL) {
                err = EAGAIN;
                goto failed;
            }
            decision = "no_ack";
        } else {
            decision = candor_ack_send(ack) && candor_ack_message(ack) ? "ack" : "no_ack";
            if (candor_ack_reason(ack))
                reason = candor_ack_reason(ack);
            if (candor_ack_ticket(ack))
                ticket = candor_ack_ticket(ack);
            /* ours to hand over: the retry thread keeps its hands off */
            if (strcmp(decision, "ack") == 0 && candor_ack_ticket(ack))
                claimed = lmtpd_ack_claim(candor_ack_ticket(ack));
        }
    }
    /* the fields: the decision's ticket and autoreply when one was made
     * (ACK NULL: none was, or it failed: triage's) */
    if (res && candor_result_headers_ack(res, ack, "\n", &hdrs) != CANDOR_OK) {
        hdrs = NULL;
        snprintf(note, sizeof note, "headers=failed(%s)", candor_errmsg());
    }

    /* the file: Return-Path, our fields, then the message as it came */
    if (env->sender) {
        sb_puts(&head, "Return-Path: <");
        sb_puts(&head, env->sender);
        sb_puts(&head, ">\n");
    }
    if (hdrs)
        sb_puts(&head, hdrs);
    if (head.oom) {
        snprintf(note, sizeof note, "error=out_of_memory");
        err = ENOMEM;
        goto failed;
    }
    err = maildir_commit(tfd, dir, name, head.p ? head.p : "", head.n, clean.p, clean.n, &file);
    tfd = -1;
failed:
    if (tfd >= 0) {
        maildir_abandon(dir, name, tfd);
        tfd = -1;
    }
    if (err) {
        outcome = (err == ENOSPC || err == EDQUOT) ? LMTPD_DISKFULL : LMTPD_TEMPFAIL;
        status = outcome == LMTPD_DISKFULL ? "diskfull" : "tempfail";
        if (!note[0])
            snprintf(note, sizeof note, "error=%s", strerror(err));
        decision = "-";
        goto done;
    }
    /* the row is marked delivered=1 after the 250 (lmtpd_deliver_finish):
     * until then, delivered=0 and the file in place say the same */
    out->key = strdup(key);
#ifdef LMTPD_ABLATION
    if (ablation() == ABL_FILE_ONLY) {   /* no delivered=1 mark either */
        free(out->key);
        out->key = NULL;
    }
#endif
    out->msgid = msgid ? strdup(msgid) : NULL;
    out->path = strdup(file);
    outcome = LMTPD_DELIVERED;
    status = "delivered";
    if (to_sent) {   /* the team's own address and the sent copy in one go */
        char n2[256];
        sent_copy(conf, store, qid, clean.p, clean.n, n2, sizeof n2);
        snprintf(note + strlen(note), sizeof note - strlen(note), "%s%s", note[0] ? " " : "", n2);
    }

done:
    atomic_fetch_sub(&gc_inflight, 1);
    for (size_t i = 0; i < env->n_rcpts; i++)
        result[i] = outcome;
    {
        double cpu = lmtpd_cpu_now() - cpu_start, wall = lmtpd_wall_now() - wall_start;
        char id[256];
        snprintf(id, sizeof id, "%s", msgid ? msgid : "-");
        log_clean(id, true);
        char nt[512];
        snprintf(nt, sizeof nt, "%s", note);
        for (char *p = nt; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
                *p = '_';
        const char *fname = file ? strrchr(file, '/') : NULL;
        lmtpd_log("%s: from=<%s> to=<%s>%s message-id=<%s> size=%zu intent=%s decision=%s "
                  "reason=%s ticket=%s status=%s file=%s cpu=%.6f time=%.6f%s%s",
                  qid, env->sender, env->n_rcpts ? env->rcpts[0] : "", env->n_rcpts > 1 ? "+" : "",
                  id, len, intent, decision, reason, ticket, status, fname ? fname + 1 : "-",
                  cpu, wall, nt[0] ? " " : "", nt);
    }
    if (outcome == LMTPD_DELIVERED && ack && strcmp(status, "delivered") == 0) {
        const char *t = candor_ack_ticket(ack);
        if (candor_ack_send(ack) && candor_ack_message(ack) && candor_ack_recipient(ack) && t &&
            claimed) {
            out->ticket = strdup(t);
            out->recipient = strdup(candor_ack_recipient(ack));
            out->message = strdup(candor_ack_message(ack));
        } else if (t && candor_ack_reason(ack) &&
                   strcmp(candor_ack_reason(ack), "already_acknowledged") == 0) {
            /* the MTA's retry of a message whose first delivery failed after
             * its acknowledgement was recorded: that one is still pending,
             * and now the message is durable, it may go */
            if (lmtpd_ack_claim(t)) {
                find_pending(store, t, out);
                if (!out->ticket)
                    lmtpd_ack_release(t);
                else
                    claimed = true;
            }
        }
        if (out->ticket && (!out->recipient || !out->message)) {
            free(out->ticket);
            free(out->recipient);
            free(out->message);
            out->ticket = out->recipient = out->message = NULL;   /* the retry sends it */
            lmtpd_log("%s: out of memory for the acknowledgement of %s (left pending)", qid, t);
        }
    }
    /* the claim goes with the hand-over (released there), else now */
    if (claimed && !out->ticket && ack && candor_ack_ticket(ack))
        lmtpd_ack_release(candor_ack_ticket(ack));
    candor_ack_free(ack);
    candor_result_free(res);
    candor_message_free(msg);
    candor_free(hdrs);
    free(msgid);
    free(file);
    free(clean.p);
    free(head.p);
}

void lmtpd_pending_free(struct lmtpd_pending *p)
{
    free(p->key);
    free(p->msgid);
    free(p->path);
    free(p->ticket);
    free(p->recipient);
    free(p->message);
    memset(p, 0, sizeof *p);
}

/* The pending acknowledgement of TICKET, from the store's outbox. */
static void find_pending(struct candor_store *store, const char *ticket, struct lmtpd_pending *out)
{
    char *json = NULL;
    if (candor_store_pending_acks(store, &json) != CANDOR_OK || !json)
        return;
    struct json_object *arr = json_tokener_parse(json);
    candor_free(json);
    size_t n = arr && json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
    for (size_t i = 0; i < n; i++) {
        struct json_object *o = json_object_array_get_idx(arr, i), *t, *r, *m;
        if (json_object_object_get_ex(o, "ticket", &t) &&
            strcmp(json_object_get_string(t), ticket) == 0 &&
            json_object_object_get_ex(o, "recipient", &r) &&
            json_object_object_get_ex(o, "message", &m)) {
            out->ticket = strdup(ticket);
            out->recipient = strdup(json_object_get_string(r));
            out->message = strdup(json_object_get_string(m));
            break;
        }
    }
    json_object_put(arr);
}

void lmtpd_ack_handover(struct lmtpd_worker *w, struct lmtpd_conf *conf, const char *qid,
                        struct lmtpd_pending *p)
{
    int h = -1;
    if (!conf->sendmail_argv) {
        lmtpd_log("%s: ack ticket=%s left pending: no sendmail command", qid, p->ticket);
    } else if (!w->store || (h = lmtpd_handover(conf, w->store, p->ticket, p->recipient,
                                                p->message)) < 0) {
        if (h == -2)
            lmtpd_log("%s: ack ticket=%s is being handed over by another daemon", qid, p->ticket);
        else
            lmtpd_log("%s: ack ticket=%s left pending", qid, p->ticket);
    } else if (h > 0) {
        lmtpd_store_write_begin(conf);
        candor_status_t st = w->store ? candor_store_ack_sent(w->store, p->ticket, 0)
                                      : CANDOR_EINVAL;
        lmtpd_store_write_end(conf);
        if (st != CANDOR_OK)
            lmtpd_log("%s: ack ticket=%s sent but not marked sent: %s", qid, p->ticket,
                      candor_errmsg());
        else
            lmtpd_log("%s: ack ticket=%s sent to=<%s>", qid, p->ticket, p->recipient);
    } else {
        lmtpd_log("%s: ack ticket=%s left pending (sendmail failed)", qid, p->ticket);
    }
    lmtpd_ack_release(p->ticket);
    free(p->ticket);
    free(p->recipient);
    free(p->message);
    p->ticket = p->recipient = p->message = NULL;
}
