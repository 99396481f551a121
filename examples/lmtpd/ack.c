/*
 * ack.c — acknowledgements leave through the sendmail command:
 *   CMD ARGS... -f <> -i -- RECIPIENT   (message on stdin, LF line ends)
 * The null envelope sender (RFC 3834 section 3.3) keeps bounces of an
 * acknowledgement from coming back to us. No shell: the command is split on
 * blanks. The child gets sendmail-timeout seconds, then SIGKILL; it reads
 * the complete message from an anonymous file and outlives a crash of the
 * daemon. The MTA offers no way to ask whether it already has a message,
 * so an acknowledgement whose hand-over a crash interrupted is taken as
 * sent (marker below): at most once, never twice.
 *
 * The acknowledgements the store lists as pending (recorded, never marked
 * sent: a crash or a sendmail failure) are handed over at start-up and then
 * periodically with a backoff (below), and marked sent after sendmail
 * exits 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>
#include "lmtpd.h"

extern char **environ;

int lmtpd_handover(const struct lmtpd_conf *conf, struct candor_store *store, const char *ticket,
                   const char *recipient, const char *message)
{
    if (!conf->sendmail_argv || !store || !recipient || !*recipient || recipient[0] == '-')
        return -1;
    /* The whole message goes into an anonymous file first and becomes
     * sendmail's stdin: sendmail never sees a half-written message, even if
     * this process dies while handing it over (a pipe would give it an
     * early EOF, and sendmail -i would queue the truncated text). */
    int mfd = memfd_create("candor-ack", MFD_CLOEXEC);
    if (mfd < 0) {
        lmtpd_log("-: sendmail: memfd: %s", strerror(errno));
        return -1;
    }
    bool ok = true;
    for (const char *p = message; *p && ok;) {
        /* CRLF -> LF: the local submission convention */
        const char *e = strstr(p, "\r\n");
        size_t k = e ? (size_t)(e - p) : strlen(p);
        const char *parts[2] = { p, "\n" };
        size_t lens[2] = { k, e ? 1 : 0 };
        for (int j = 0; j < 2 && ok; j++) {
            size_t off = 0;
            while (off < lens[j]) {
                ssize_t w = write(mfd, parts[j] + off, lens[j] - off);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0) {
                    ok = false;
                    break;
                }
                off += (size_t)w;
            }
        }
        p = e ? e + 2 : p + k;
    }
    if (!ok || lseek(mfd, 0, SEEK_SET) != 0) {
        close(mfd);
        return -1;
    }
    size_t n = 0;
    while (conf->sendmail_argv[n])
        n++;
    char **argv = calloc(n + 6, sizeof *argv);
    if (!argv) {
        close(mfd);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        argv[i] = conf->sendmail_argv[i];
    argv[n] = "-f";
    argv[n + 1] = "<>";
    argv[n + 2] = "-i";
    argv[n + 3] = "--";
    argv[n + 4] = (char *)recipient;
    /* Everything that can take time is done: only now the marker, then
     * the spawn (posix_spawn: no copy of this process's page tables, so
     * the window between the two, where a crash loses this one
     * acknowledgement rather than ever sending it twice, stays tiny). */
    posix_spawn_file_actions_t fa;
    pid_t pid = -1;
    int rc = -1;
    int claim = lmtpd_handover_begin(conf, store, ticket);
    if (claim <= 0) {
        close(mfd);
        free(argv);
        return claim < 0 ? -1 : -2;
    }
    if (posix_spawn_file_actions_init(&fa) == 0) {
        /* sendmail outlives this process if it is killed meanwhile: it has
         * the whole message, so it finishes queueing it */
        if (posix_spawn_file_actions_adddup2(&fa, mfd, 0) == 0)
            rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
    }
    close(mfd);
    free(argv);
    if (rc != 0) {
        lmtpd_log("-: sendmail %s: cannot start: %s", conf->sendmail_argv[0],
                  strerror(rc > 0 ? rc : errno));
        lmtpd_handover_failed(conf, store, ticket);
        return 0;
    }
    int status = 0;
    long waited_ms = 0, limit_ms = conf->sendmail_timeout * 1000;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            lmtpd_handover_failed(conf, store, ticket);
            return 0;
        }
        if (waited_ms >= limit_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            lmtpd_log("-: sendmail: timed out after %ld s", conf->sendmail_timeout);
            lmtpd_handover_failed(conf, store, ticket);
            return 0;
        }
        struct timespec ts = { 0, 2 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        waited_ms += 2;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        lmtpd_log("-: sendmail %s: exited with status %d", conf->sendmail_argv[0],
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        lmtpd_handover_failed(conf, store, ticket);
        return 0;
    }
    return 1;
}

/* The hand-over marker: written (and committed) before sendmail runs,
 * cleared when sendmail fails. A pending acknowledgement whose marker is
 * still set was being handed over when the daemon died; sendmail had the
 * complete message (from an anonymous file, not a pipe) and is not killed
 * with the daemon, so it finishes queueing it: the acknowledgement is marked
 * sent, not sent again. Never twice; lost only if that sendmail failed.
 * The marker is also the claim among daemons that share a PostgreSQL
 * state (candor_store_delivery_claim: written only where none is set):
 * the in-process claims (lmtpd_ack_claim) cannot see another host, which
 * may reach the same pending acknowledgement through a reply in the
 * thread (already_acknowledged) or its retry round. It is durable when
 * written, also against a crash of the database server: a marker lost
 * while sendmail had the message would let the retry send it again. */
static void marker_key(char *buf, size_t size, const char *ticket)
{
    snprintf(buf, size, "ack-handover:%s", ticket);
}

/* Who holds a marker: "started:HOST:PID" (its path field). The retry
 * round takes a marker for an interrupted hand-over only when its holder
 * is certainly gone: a process of this host that no longer exists, or,
 * for a holder it cannot see (another host, a live pid that may be a
 * reused one, a marker without a holder), once the marker is older than
 * any hand-over can last (sendmail-timeout, plus a margin for the clocks
 * of two hosts). Before that the holder may still be running sendmail,
 * and may yet fail and release the marker: taking it for sent then would
 * lose the acknowledgement. */
#define MARKER_MARGIN 30   /* s */

static void marker_holder(char *buf, size_t size)
{
    char host[128];
    if (gethostname(host, sizeof host) != 0)
        host[0] = '\0';
    host[sizeof host - 1] = '\0';
    snprintf(buf, size, "started:%s:%ld", host, (long)getpid());
}

int lmtpd_handover_begin(const struct lmtpd_conf *conf, struct candor_store *store, const char *ticket)
{
    char key[256];
    int claimed = 0;
    char holder[200];
    marker_key(key, sizeof key, ticket);
    marker_holder(holder, sizeof holder);
    lmtpd_store_write_begin(conf);
    candor_status_t st = candor_store_delivery_claim(store, key, NULL, holder, 0, &claimed);
    lmtpd_store_write_end(conf);
    if (st != CANDOR_OK) {
        lmtpd_log("-: ack ticket=%s: cannot mark the hand-over: %s", ticket, candor_errmsg());
        return -1;
    }
    return claimed ? 1 : 0;
}

void lmtpd_handover_failed(const struct lmtpd_conf *conf, struct candor_store *store, const char *ticket)
{
    char key[256];
    marker_key(key, sizeof key, ticket);
    lmtpd_store_write_begin(conf);
    /* durable: a release lost to a crash would leave the marker standing,
     * and the retry would take the acknowledgement for sent */
    if (candor_store_delivery_release(store, key, "failed", 0) != CANDOR_OK)
        lmtpd_log("-: ack ticket=%s: cannot clear the hand-over mark: %s", ticket, candor_errmsg());
    lmtpd_store_write_end(conf);
}

/* Whether a process of this host with the pid named in HOLDER
 * ("started:HOST:PID") is certainly gone. */
static bool holder_gone(const char *holder)
{
    char mine[200];
    marker_holder(mine, sizeof mine);
    const char *colon = strrchr(mine, ':');
    size_t prefix = colon ? (size_t)(colon - mine) + 1 : 0;   /* "started:HOST:" */
    if (!prefix || strncmp(holder, mine, prefix) != 0)
        return false;   /* another host (or no holder named) */
    char *end;
    errno = 0;
    long pid = strtol(holder + prefix, &end, 10);
    if (errno || *end || pid <= 1 || pid == (long)getpid())
        return false;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* 0: no marker (or released): hand it over; 1: a hand-over was under way
 * and its holder is gone: taken as sent; 2: a holder may still be handing
 * it over: leave it for a later round. */
static int handover_state(const struct lmtpd_conf *conf, struct candor_store *store,
                          const char *ticket)
{
    char key[256], *path = NULL;
    int started = 0;
    marker_key(key, sizeof key, ticket);
    if (candor_store_delivery_find(store, key, 0, 0, &started, &path) != CANDOR_OK || !started) {
        candor_free(path);
        return 0;
    }
    int r = 1;
    if (!holder_gone(path ? path : "")) {
        int young = 0;
        char *p2 = NULL;
        /* found again within the lease: its holder may still be at it */
        if (candor_store_delivery_find(store, key, conf->sendmail_timeout + MARKER_MARGIN, 0,
                                       &young, &p2) == CANDOR_OK && young)
            r = 2;
        candor_free(p2);
    }
    candor_free(path);
    return r;
}

/* ---- who holds an acknowledgement: never two hands at once ----
 * A session claims its ticket as soon as its decision says send (before
 * the file is even written) and releases it after the hand-over (or the
 * failed delivery); the retry thread skips claimed tickets and claims the
 * ones it hands over. */
static pthread_mutex_t claim_lock = PTHREAD_MUTEX_INITIALIZER;
static char (*claims)[32];
static size_t n_claims, cap_claims;

bool lmtpd_ack_claim(const char *ticket)
{
    if (!ticket || strlen(ticket) >= 32)
        return false;
    bool ok = true;
    pthread_mutex_lock(&claim_lock);
    for (size_t i = 0; i < n_claims && ok; i++)
        if (strcmp(claims[i], ticket) == 0)
            ok = false;
    if (ok && n_claims == cap_claims) {
        size_t cap = cap_claims ? cap_claims * 2 : 64;
        char (*p)[32] = realloc(claims, cap * sizeof *p);
        if (p) {
            claims = p;
            cap_claims = cap;
        } else {
            ok = false;
        }
    }
    if (ok)
        snprintf(claims[n_claims++], 32, "%s", ticket);
    pthread_mutex_unlock(&claim_lock);
    return ok;
}

void lmtpd_ack_release(const char *ticket)
{
    if (!ticket)
        return;
    pthread_mutex_lock(&claim_lock);
    for (size_t i = 0; i < n_claims; i++)
        if (strcmp(claims[i], ticket) == 0) {
            memcpy(claims[i], claims[--n_claims], 32);
            break;
        }
    pthread_mutex_unlock(&claim_lock);
}

/* ---- retrying pending acknowledgements ----
 * At start-up (before any session runs) and then every ack-retry-interval
 * seconds, the acknowledgements the store lists as pending are handed
 * over, oldest first, each at most once at a time (claims), with a backoff
 * per ticket after a failed sendmail (interval, 2x, 4x... up to
 * ack-retry-max-interval). Only acknowledgements of mail this daemon
 * durably delivered go: the original (the acknowledgement's In-Reply-To)
 * must be in the delivery log and still in the maildir — a decision whose
 * delivery failed (451) waits for the MTA's retry. In the periodic rounds
 * a ticket must also have been pending in the round before (a session
 * claims its ticket right after its decision; this is a second belt). */
struct retry_state {
    char ticket[32];
    int attempts;
    double next_at;     /* monotonic seconds: not before */
    bool seen, listed;
};
static struct retry_state *rstate;
static size_t n_rstate, cap_rstate;

static struct retry_state *rstate_get(const char *ticket)
{
    for (size_t i = 0; i < n_rstate; i++)
        if (strcmp(rstate[i].ticket, ticket) == 0)
            return &rstate[i];
    if (strlen(ticket) >= sizeof rstate[0].ticket)
        return NULL;
    if (n_rstate == cap_rstate) {
        size_t cap = cap_rstate ? cap_rstate * 2 : 64;
        struct retry_state *p = realloc(rstate, cap * sizeof *p);
        if (!p)
            return NULL;
        rstate = p;
        cap_rstate = cap;
    }
    struct retry_state *r = &rstate[n_rstate++];
    memset(r, 0, sizeof *r);
    snprintf(r->ticket, sizeof r->ticket, "%s", ticket);
    return r;
}

/* The id in the acknowledgement's In-Reply-To (new string), or NULL. */
static char *in_reply_to(const char *message)
{
    const char *end = strstr(message, "\r\n\r\n");
    if (!end)
        end = message + strlen(message);
    for (const char *p = message; p && p < end; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncasecmp(p, "In-Reply-To: <", 14) == 0) {
            const char *id = p + 14, *gt = strchr(id, '>');
            if (gt && gt < end && gt - id < 1000)
                return strndup(id, (size_t)(gt - id));
            return NULL;
        }
    }
    return NULL;
}

/* Is the original of this acknowledgement durably in the maildir? */
static bool original_delivered(struct candor_store *store, const char *message)
{
    char *id = in_reply_to(message);
    if (!id)
        return true;    /* no Message-ID to go by: as at any start-up before */
    char *path = NULL;
    bool ok = candor_store_delivery_path(store, id, &path) == CANDOR_OK && path &&
              lmtpd_still_delivered(path);
    candor_free(path);
    free(id);
    return ok;
}

static void retry_round(struct lmtpd_conf *conf, struct candor_store *store, bool startup)
{
    char *json = NULL;
    if (candor_store_pending_acks(store, &json) != CANDOR_OK || !json) {
        lmtpd_log("-: pending acknowledgements: %s", candor_errmsg());
        return;
    }
    struct json_object *arr = json_tokener_parse(json);
    candor_free(json);
    size_t n = arr && json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
    size_t sent = 0, tried = 0;
    double now = lmtpd_wall_now();
    for (size_t i = 0; i < n_rstate; i++)
        rstate[i].listed = false;
    for (size_t i = 0; i < n && !atomic_load(&lmtpd.draining); i++) {
        struct json_object *o = json_object_array_get_idx(arr, i), *t, *r, *m;
        if (!json_object_object_get_ex(o, "ticket", &t) ||
            !json_object_object_get_ex(o, "recipient", &r) ||
            !json_object_object_get_ex(o, "message", &m) ||
            !json_object_is_type(m, json_type_string))
            continue;
        const char *ticket = json_object_get_string(t), *to = json_object_get_string(r);
        const char *text = json_object_get_string(m);
        struct retry_state *rs = rstate_get(ticket);
        if (!rs)
            continue;
        rs->listed = true;
        bool seen = rs->seen;
        rs->seen = true;
        if ((!startup && !seen) || now < rs->next_at)
            continue;
        if (!lmtpd_ack_claim(ticket))
            continue;   /* a session is handing it over */
        if (!original_delivered(store, text)) {
            lmtpd_ack_release(ticket);
            continue;   /* its delivery has not completed: the MTA retries it */
        }
        tried++;
        int h, hs = handover_state(conf, store, ticket);
        if (hs == 2) {
            lmtpd_ack_release(ticket);
            lmtpd_log("-: pending ack ticket=%s is being handed over by another daemon", ticket);
            continue;
        }
        if (hs == 1) {
            lmtpd_store_write_begin(conf);
            candor_store_ack_sent(store, ticket, 0);
            lmtpd_store_write_end(conf);
            lmtpd_log("-: pending ack ticket=%s to=<%s> not sent again: its hand-over to sendmail "
                      "was under way when the daemon stopped (sendmail had the whole message)", ticket, to);
            rs->listed = false;
        } else if ((h = lmtpd_handover(conf, store, ticket, to, text)) < 0) {
            lmtpd_log(h == -2 ? "-: pending ack ticket=%s is being handed over by another daemon"
                              : "-: pending ack ticket=%s still pending", ticket);
        } else if (h > 0) {
            lmtpd_store_write_begin(conf);
            if (candor_store_ack_sent(store, ticket, 0) == CANDOR_OK)
                sent++;
            lmtpd_store_write_end(conf);
            lmtpd_log("-: pending ack ticket=%s sent to=<%s>", ticket, to);
            rs->listed = false;
        } else {
            rs->attempts++;
            double wait = (double)conf->ack_retry_interval;
            for (int k = 1; k < rs->attempts && wait < conf->ack_retry_max_interval; k++)
                wait *= 2;
            if (wait > conf->ack_retry_max_interval)
                wait = (double)conf->ack_retry_max_interval;
            rs->next_at = lmtpd_wall_now() + wait;
            lmtpd_log("-: pending ack ticket=%s still pending (attempt %d; next in %.0f s)",
                      ticket, rs->attempts, wait);
        }
        lmtpd_ack_release(ticket);
    }
    if (tried)
        lmtpd_log("-: pending acknowledgements: %zu of %zu handed over", sent, tried);
    /* forget tickets no longer pending (sent, here or elsewhere) */
    for (size_t i = 0; i < n_rstate;)
        if (!rstate[i].listed)
            rstate[i] = rstate[--n_rstate];
        else
            i++;
    json_object_put(arr);
}

void lmtpd_retry_pending(struct lmtpd_conf *conf)
{
    if (lmtpd.opts.no_ack)
        return;
    struct candor_store *store = NULL;
    if (candor_store_open(&store, conf->ctx, conf->state, 0) != CANDOR_OK) {
        lmtpd_log("-: pending acknowledgements: cannot open the state: %s", candor_errmsg());
        return;
    }
    retry_round(conf, store, true);
    candor_store_free(store);
}

static pthread_t retry_thread;
static bool retry_started;

static void *retry_main(void *arg)
{
    (void)arg;
    struct lmtpd_conf *conf = NULL;
    struct candor_store *store = NULL;
    for (;;) {
        struct lmtpd_conf *cur = lmtpd_conf_get();
        struct pollfd p = { lmtpd.drain_fd, POLLIN, 0 };
        int r = poll(&p, 1, (int)(cur->ack_retry_interval * 1000));
        if (r > 0 || atomic_load(&lmtpd.draining)) {
            lmtpd_conf_put(cur);
            break;
        }
        if (cur != conf) {   /* first round, or reloaded: a store for it */
            candor_store_free(store);
            store = NULL;
            if (conf)
                lmtpd_conf_put(conf);
            conf = cur;
            if (candor_store_open(&store, conf->ctx, conf->state, 0) != CANDOR_OK) {
                lmtpd_log("-: pending acknowledgements: cannot open the state: %s",
                          candor_errmsg());
                store = NULL;
            }
        } else {
            lmtpd_conf_put(cur);
        }
        if (store)
            retry_round(conf, store, false);
    }
    candor_store_free(store);
    if (conf)
        lmtpd_conf_put(conf);
    return NULL;
}

void lmtpd_retry_start(void)
{
    if (lmtpd.opts.no_ack)
        return;
    retry_started = pthread_create(&retry_thread, NULL, retry_main, NULL) == 0;
    if (!retry_started)
        lmtpd_log("-: pending acknowledgements: no retry thread (%s); retried at start-up only",
                  strerror(errno));
}

void lmtpd_retry_stop(void)
{
    if (retry_started)
        pthread_join(retry_thread, NULL);
    retry_started = false;
    free(rstate);
    rstate = NULL;
    n_rstate = cap_rstate = 0;
}
