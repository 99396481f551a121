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
} syncs[SYNC_DIRS];

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
            bool r = fsync_dir(dir);
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

/* Write LEN bytes into DIR's maildir the durable way. On success *FINAL gets
 * the path in new/. BEFORE_RENAME (may be NULL) runs after the fsync of the
 * file and before the rename, with the final path; if it fails, so does the
 * delivery. Returns 0 or an errno value. */
static int maildir_write(const char *dir, const char *head, size_t head_len,
                         const char *body, size_t body_len, char **final,
                         bool (*before_rename)(void *, const char *), void *arg)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    unsigned long q = atomic_fetch_add(&lmtpd.seq, 1) + 1;
    char name[512], tmp[4096], dst[4096];
    snprintf(name, sizeof name, "%ld.M%06ldP%dQ%lu.%s", (long)tv.tv_sec, (long)tv.tv_usec,
             (int)getpid(), q, lmtpd.hostname);
    snprintf(tmp, sizeof tmp, "%s/tmp/%s", dir, name);
    snprintf(dst, sizeof dst, "%s/new/%s", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno ? errno : EIO;
    int err = 0;
    const char *parts[2] = { head, body };
    size_t lens[2] = { head_len, body_len };
    for (int k = 0; k < 2 && !err; k++) {
        size_t off = 0;
        while (off < lens[k]) {
            ssize_t w = write(fd, parts[k] + off, lens[k] - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                err = w < 0 ? errno : EIO;
                break;
            }
            off += (size_t)w;
        }
    }
    if (!err && fsync(fd) != 0)
        err = errno;
    if (close(fd) != 0 && !err)
        err = errno;
    if (!err && before_rename && !before_rename(arg, dst))
        err = EAGAIN;
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

/* Is the message recorded at PATH (…/new/NAME) still in the maildir: in
 * new/, or moved by a reader into cur/ as NAME:2,FLAGS? */
static bool still_there(const char *path)
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

/* Store handles are kept in a small pool between sessions: Postfix opens a
 * connection per message, and opening SQLite (and checking its schema) for
 * each would cost more than the message. A handle is used by one session
 * thread at a time (candor.h), taken from and returned to the pool under a
 * mutex. Handles of a configuration replaced by SIGHUP are closed. */
#define POOL_MAX 32
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { struct candor_store *store; struct lmtpd_conf *conf; } pool[POOL_MAX];
static int pool_n;

/* Writes to the store are serialised inside the daemon: SQLite allows one
 * writer at a time, and its busy handler sleeps in steps of up to 100 ms,
 * so letting sessions collide there costs far more than waiting here. */
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;
void lmtpd_store_write_begin(void) { pthread_mutex_lock(&write_lock); }
void lmtpd_store_write_end(void) { pthread_mutex_unlock(&write_lock); }

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

struct begun {
    struct candor_store *store;
    const char *key, *msgid;
    long keep;
};

static void find_pending(struct candor_store *store, const char *ticket,
                         struct lmtpd_pending *out);

static bool record_begun(void *arg, const char *path)
{
    struct begun *b = arg;
    lmtpd_store_write_begin();
    candor_status_t st = candor_store_delivery_record(b->store, b->key, b->msgid, path, 0, 0,
                                                      b->keep);
    lmtpd_store_write_end();
    if (st != CANDOR_OK) {
        lmtpd_log("-: delivery log: %s", candor_errmsg());
        return false;
    }
    return true;
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
    lmtpd_store_write_begin();
    candor_status_t s = candor_record_reply(conf->ctx, store, reply, 0, &json);
    lmtpd_store_write_end();
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
                    err = maildir_write(dir, "", 0, data, len, &final, NULL, NULL);
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

void lmtpd_deliver(struct lmtpd_worker *w, struct lmtpd_conf *conf, const char *qid,
                   const char *data, size_t len, const struct lmtpd_envelope *env,
                   enum lmtpd_outcome *result, double cpu_start, double wall_start,
                   struct lmtpd_pending *out)
{
    memset(out, 0, sizeof *out);
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
    bool to_team = false, to_sent = false;
    const char *team_rcpt = NULL;
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

    store = worker_store(w, conf);
    if (!store) {
        snprintf(note, sizeof note, "error=state_unavailable");
        goto done;
    }
    {
        int delivered = 0;
        char *prev = NULL;
        candor_status_t s = candor_store_delivery_find(store, key, 0, conf->redelivery_window,
                                                       &delivered, &prev);
        if (s == CANDOR_OK && (delivered || still_there(prev))) {
            if (!delivered) {
                lmtpd_store_write_begin();
                candor_store_delivery_record(store, key, msgid, prev, 1, 0, 0);
                lmtpd_store_write_end();
            }
            outcome = LMTPD_DELIVERED;
            status = "duplicate";
            file = prev;
            decision = "none";
            goto done;
        }
        free(prev);
        if (s != CANDOR_OK && s != CANDOR_ENOTFOUND) {
            snprintf(note, sizeof note, "error=delivery_log(%s)", candor_errmsg());
            goto done;
        }
    }

    if (to_sent && !to_team) {
        outcome = sent_copy(conf, store, qid, clean.p, clean.n, note, sizeof note);
        if (outcome == LMTPD_DELIVERED) {
            lmtpd_store_write_begin();
            candor_store_delivery_record(store, key, msgid, "sent", 1, 0, 0);
            lmtpd_store_write_end();
            status = "recorded";
        }
        goto done;
    }

    /* triage and the acknowledgement decision */
    candor_envelope_t cenv = CANDOR_ENVELOPE_INIT;
    cenv.sender = env->sender;
    cenv.recipient = team_rcpt;
    candor_status_t ts = CANDOR_OK;
    if (candor_message_parse(&msg, conf->ctx, clean.p, clean.n) != CANDOR_OK) {
        snprintf(note, sizeof note, "triage=unparsed(%s)", candor_errmsg());
    } else if ((ts = candor_triage(&res, conf->ctx, msg, store, &cenv, 0)) != CANDOR_OK) {
        snprintf(note, sizeof note, "triage=failed(%s)", candor_errmsg());
        if (ts == CANDOR_ETEMPFAIL)
            goto done;   /* the state is away (busy, server down): 451, the MTA retries */
    } else {
        intent = candor_result_intent(res) ? candor_result_intent(res) : "-";
        reason = candor_result_autoreply_reason(res) ? candor_result_autoreply_reason(res) : "-";
        decision = candor_result_autoreply_send(res) ? "ack" : "no_ack";
        if (!lmtpd.opts.no_ack) {
            lmtpd_store_write_begin();
            candor_status_t as = candor_ack(&ack, conf->ctx, store, msg, &cenv);
            lmtpd_store_write_end();
            if (as != CANDOR_OK) {
                snprintf(note, sizeof note, "ack=failed(%s)", candor_errmsg());
                decision = "no_ack";
                if (as == CANDOR_ETEMPFAIL)
                    goto done;   /* never deliver without the decision: 451, retried */
            } else {
                decision = candor_ack_send(ack) && candor_ack_message(ack) ? "ack" : "no_ack";
                if (candor_ack_reason(ack))
                    reason = candor_ack_reason(ack);
                if (candor_ack_ticket(ack))
                    ticket = candor_ack_ticket(ack);
            }
        } else {
            decision = "no_ack";
        }
        if (candor_result_headers(res, strcmp(ticket, "-") ? ticket : NULL, "\n", &hdrs)
            != CANDOR_OK) {
            hdrs = NULL;
            snprintf(note, sizeof note, "headers=failed(%s)", candor_errmsg());
        }
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
        goto done;
    }
    char dir[4096];
    bool folder = conf->folder_per_intent && strcmp(intent, "-") != 0;
    if (folder)
        snprintf(dir, sizeof dir, "%s/.%s", lmtpd.opts.maildir, intent);
    else
        snprintf(dir, sizeof dir, "%s", lmtpd.opts.maildir);
    int err = ensure_maildir(dir, folder) ? 0 : (errno ? errno : EIO);
    struct begun b = { store, key, msgid, conf->redelivery_window * 4 };
    if (!err)
        err = maildir_write(dir, head.p ? head.p : "", head.n, clean.p, clean.n, &file,
                            record_begun, &b);
    if (err) {
        outcome = (err == ENOSPC || err == EDQUOT) ? LMTPD_DISKFULL : LMTPD_TEMPFAIL;
        status = outcome == LMTPD_DISKFULL ? "diskfull" : "tempfail";
        if (!note[0])
            snprintf(note, sizeof note, "error=%s", strerror(err));
        decision = "-";
        goto done;
    }
    lmtpd_store_write_begin();
    if (candor_store_delivery_record(store, key, msgid, file, 1, 0, 0) != CANDOR_OK)
        lmtpd_log("%s: delivery log (delivered): %s", qid, candor_errmsg());
    lmtpd_store_write_end();
    outcome = LMTPD_DELIVERED;
    status = "delivered";
    if (to_sent) {   /* the team's own address and the sent copy in one go */
        char n2[256];
        sent_copy(conf, store, qid, clean.p, clean.n, n2, sizeof n2);
        snprintf(note + strlen(note), sizeof note - strlen(note), "%s%s", note[0] ? " " : "", n2);
    }

done:
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
        if (candor_ack_send(ack) && candor_ack_message(ack) && candor_ack_recipient(ack) && t) {
            out->ticket = strdup(t);
            out->recipient = strdup(candor_ack_recipient(ack));
            out->message = strdup(candor_ack_message(ack));
        } else if (t && candor_ack_reason(ack) &&
                   strcmp(candor_ack_reason(ack), "already_acknowledged") == 0) {
            /* the MTA's retry of a message whose first delivery failed after
             * its acknowledgement was recorded: that one is still pending,
             * and now the message is durable, it may go */
            find_pending(store, t, out);
        }
        if (out->ticket && (!out->recipient || !out->message)) {
            lmtpd_pending_free(out);
            lmtpd_log("%s: out of memory for the acknowledgement of %s (left pending)", qid, t);
        }
    }
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
    if (!conf->sendmail_argv) {
        lmtpd_log("%s: ack ticket=%s left pending: no sendmail command", qid, p->ticket);
    } else if (!w->store || !lmtpd_handover_begin(w->store, p->ticket)) {
        lmtpd_log("%s: ack ticket=%s left pending", qid, p->ticket);
    } else if (lmtpd_sendmail(conf, p->recipient, p->message)) {
        lmtpd_store_write_begin();
        candor_status_t st = w->store ? candor_store_ack_sent(w->store, p->ticket, 0)
                                      : CANDOR_EINVAL;
        lmtpd_store_write_end();
        if (st != CANDOR_OK)
            lmtpd_log("%s: ack ticket=%s sent but not marked sent: %s", qid, p->ticket,
                      candor_errmsg());
        else
            lmtpd_log("%s: ack ticket=%s sent to=<%s>", qid, p->ticket, p->recipient);
    } else {
        lmtpd_handover_failed(w->store, p->ticket);
        lmtpd_log("%s: ack ticket=%s left pending (sendmail failed)", qid, p->ticket);
    }
    lmtpd_pending_free(p);
}
