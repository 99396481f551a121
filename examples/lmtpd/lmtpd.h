/*
 * lmtpd.h — what the parts of candor-lmtpd share. Uses nothing but candor.h
 * (and json-c to read the JSON the library hands back).
 *
 * Concurrency model: a bounded pool of session threads (main.c), one
 * thread per LMTP session while it lasts, at most max-connections sessions
 * (connections over the bound get 421 4.3.2 and are closed); threads are
 * pre-started and reused, not created per connection. Each delivery blocks
 * on fsync() and on the store, so an event loop would have to hand every
 * message to worker threads anyway; with a thread per session the protocol
 * code stays straight-line, a slow client only ever blocks its own thread,
 * and each session uses its own store handle (candor.h: a store belongs to
 * one thread at a time) while the candor_ctx is shared read-only (candor.h:
 * immutable, any number of threads).
 */
#ifndef LMTPD_H
#define LMTPD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "candor.h"

/* Named defaults of the <daemon> settings (lib/data/candor.xml). */
#define LMTPD_DEFAULT_MAX_CONNECTIONS 100
#define LMTPD_DEFAULT_IDLE_TIMEOUT 300        /* s waiting for a command */
#define LMTPD_DEFAULT_COMMAND_TIMEOUT 300     /* s for one read or write inside DATA */
#define LMTPD_DEFAULT_MAX_LINE_BYTES 4096     /* one command line */
#define LMTPD_DEFAULT_MAX_DATA_LINE_BYTES 1048576  /* one line of message text */
#define LMTPD_DEFAULT_MAX_MESSAGE_BYTES (25L * 1024 * 1024)
#define LMTPD_DEFAULT_MAX_RECIPIENTS 1000
#define LMTPD_DEFAULT_REDELIVERY_WINDOW 604800L  /* s: 7 days */
#define LMTPD_DEFAULT_SENDMAIL_TIMEOUT 60     /* s */
#define LMTPD_DEFAULT_ACK_RETRY_INTERVAL 60   /* s between retry rounds of pending acks */
#define LMTPD_DEFAULT_ACK_RETRY_MAX_INTERVAL 3600  /* s: the backoff's ceiling per ack */

#define LMTPD_MAX_ADDRESSES 64

/* The command line. */
struct lmtpd_opts {
    const char *listen;
    const char *maildir;
    const char *config;
    const char *state;
    const char *addresses[LMTPD_MAX_ADDRESSES];
    size_t n_addresses;
    const char *trusted_authserv;
    const char *sendmail;
    const char *pid_file;
    const char *user;
    bool no_ack;
    size_t max_config_bytes;      /* --max-config-bytes; 0: the library's 4 MiB */
};

/* One loaded configuration: the ctx plus the daemon settings read from it.
 * Reference-counted, so SIGHUP can swap in a new one while sessions finish
 * their transactions on the old one. */
struct lmtpd_conf {
    atomic_int refs;
    struct candor_ctx *ctx;
    long max_connections, idle_timeout, command_timeout;
    long max_line_bytes, max_data_line_bytes, max_message_bytes, max_recipients;
    long redelivery_window, sendmail_timeout;
    long ack_retry_interval, ack_retry_max_interval;
    bool folder_per_intent;       /* deliver into DIR/.<intent>/ */
    char *accept;                 /* accept-recipients: "*" or list of addr / @domain */
    char *sent_address;           /* copies of our replies arrive here, normalised */
    char *sent_folder;            /* sent-folder: reserved, not used yet */
    char *review_folder;          /* flagged replies copied here (NULL: none) */
    char *state;                  /* store path (NULL: the config's) */
    bool state_server;            /* the state is a PostgreSQL server (lmtpd_state_is_server) */
    char **sendmail_argv;         /* NULL: no sendmail configured */
};

struct lmtpd {
    struct lmtpd_opts opts;
    char hostname[256];           /* for maildir names (/ and : escaped) and greetings */
    int pid;                      /* set before the threads start (0: ask getpid) */
    pthread_mutex_t lock;
    pthread_cond_t idle;
    _Atomic(struct lmtpd_conf *) conf;  /* current; swapped under lock */
    int sessions;                 /* under lock */
    atomic_bool draining;
    int drain_fd;                 /* readable (EOF) once draining */
    atomic_ulong seq;             /* Q<n> of maildir names, queue ids */
};

extern struct lmtpd lmtpd;

/* main.c */
struct lmtpd_conf *lmtpd_conf_get(void);        /* a reference to the current one */
void lmtpd_conf_put(struct lmtpd_conf *conf);
/* CONF itself while it is still the current one (no lock taken), else
 * CONF released and a reference to the current one. */
struct lmtpd_conf *lmtpd_conf_refresh(struct lmtpd_conf *conf);
/* One log line to stderr, written with a single write(). */
void lmtpd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* session.c: serve one connection (owns FD; closes it). */
void lmtpd_session(int fd);

/* deliver.c */
struct lmtpd_envelope {
    const char *sender;           /* "" for <> */
    const char *const *rcpts;     /* accepted recipients, normalised */
    size_t n_rcpts;
};

enum lmtpd_outcome {
    LMTPD_DELIVERED = 0,          /* 250 2.0.0 */
    LMTPD_TEMPFAIL,               /* 451 4.3.0 */
    LMTPD_DISKFULL,               /* 452 4.3.1 */
};

/* What is left to do after the 250s: the delivery-log row to mark
 * delivered=1 (KEY NULL: none) and an acknowledgement recorded in the
 * store to hand over (TICKET NULL: none). */
struct lmtpd_pending {
    char *key, *msgid, *path;
    char *ticket, *recipient, *message;
};

/* Per-thread state of the delivery side (the store handle is per thread). */
struct lmtpd_worker {
    struct candor_store *store;
    struct lmtpd_conf *store_conf;  /* the conf the store was opened with */
};
/* Give the store handle back to the pool (or close it). */
void lmtpd_worker_close(struct lmtpd_worker *w);
/* Whether CONF's state location names a PostgreSQL server (computed once,
 * into conf->state_server, when CONF is loaded). */
bool lmtpd_state_is_server(const struct lmtpd_conf *conf);
/* Around every call that writes the store of CONF: one writer at a time
 * for an SQLite file; nothing for a PostgreSQL server (see deliver.c). */
void lmtpd_store_write_begin(const struct lmtpd_conf *conf);
void lmtpd_store_write_end(const struct lmtpd_conf *conf);

/* Deliver one message (LF line ends, dot-unstuffed) for ENV. RESULT[i] is
 * the outcome for recipient i. Logs its line. */
void lmtpd_deliver(struct lmtpd_worker *w, struct lmtpd_conf *conf, const char *qid,
                   const char *data, size_t len, const struct lmtpd_envelope *env,
                   enum lmtpd_outcome *result, double cpu_start, double wall_start,
                   struct lmtpd_pending *out);
/* After the replies are out: mark the delivery delivered=1 and hand P's
 * acknowledgement (if any) over; frees P's strings. */
void lmtpd_deliver_finish(struct lmtpd_worker *w, struct lmtpd_conf *conf, const char *qid,
                          struct lmtpd_pending *p);
/* Hand P's acknowledgement to sendmail, mark it sent in the store. */
void lmtpd_ack_handover(struct lmtpd_worker *w, struct lmtpd_conf *conf, const char *qid,
                        struct lmtpd_pending *p);
void lmtpd_pending_free(struct lmtpd_pending *p);
/* Write the delivered marks still queued for the next commit (at exit,
 * once the sessions have ended). */
void lmtpd_deliver_flush(void);

/* ack.c */
/* Hand TICKET's acknowledgement MESSAGE to the sendmail command for
 * RECIPIENT with envelope sender <>: the message is put in an anonymous
 * file, then the hand-over marker is written to STORE, then sendmail is
 * spawned on that file. Returns 1 when sendmail exited 0; 0 when it failed
 * (the marker is cleared again: retry later); -1 when nothing was started
 * (no marker written); -2 when another hand-over (another daemon on the
 * same PostgreSQL state) holds the marker: nothing started, not ours. */
int lmtpd_handover(const struct lmtpd_conf *conf, struct candor_store *store, const char *ticket,
                   const char *recipient, const char *message);
/* Mark in STORE that TICKET's acknowledgement is being handed over: 1
 * done; 0 another hand-over holds the mark; -1 failed (do not hand it
 * over either way); after a sendmail failure, clear it. */
int lmtpd_handover_begin(const struct lmtpd_conf *conf, struct candor_store *store,
                          const char *ticket);
void lmtpd_handover_failed(const struct lmtpd_conf *conf, struct candor_store *store,
                           const char *ticket);
/* Retry the acknowledgements the store lists as pending (start-up, before
 * any session); one whose hand-over was interrupted by a crash is not sent
 * again, one whose message is not durably delivered waits. */
void lmtpd_retry_pending(struct lmtpd_conf *conf);
/* The thread that retries them every ack-retry-interval seconds (with a
 * backoff per ack) until the daemon drains; stop joins it. */
void lmtpd_retry_start(void);
void lmtpd_retry_stop(void);
/* Hold TICKET's acknowledgement (false: someone else holds it); release. */
bool lmtpd_ack_claim(const char *ticket);
void lmtpd_ack_release(const char *ticket);

/* deliver.c: is the message delivered at PATH (…/new/NAME) still in the
 * maildir (in new/, or moved by a reader into cur/ as NAME:2,FLAGS)? */
bool lmtpd_still_delivered(const char *path);

/* sha256.c */
void lmtpd_sha256(const void *data, size_t len, unsigned char out[32]);
void lmtpd_hex(const unsigned char *in, size_t n, char *out);   /* out: 2n+1 */

/* util */
double lmtpd_cpu_now(void);     /* thread CPU seconds */
double lmtpd_wall_now(void);    /* monotonic seconds */
/* Lower-case copy of an address without <> and a +tag; NULL on OOM. */
char *lmtpd_addr_norm(const char *addr);

#endif
