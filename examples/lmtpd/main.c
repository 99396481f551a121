/*
 * main.c — `candor-lmtpd`: command line, configuration (and its reload),
 * listening sockets, the accept loop, signals, privileges.
 *
 *   candor-lmtpd --listen 127.0.0.1:2424 | --listen unix:/run/candor/lmtp.sock
 *                --maildir DIR [--config FILE] [--state FILE] [--address ADDR]...
 *                [--trusted-authserv ID] [--sendmail "COMMAND ARGS"] [--no-ack]
 *                [--pid-file FILE] [--user NAME] [--max-config-bytes N]
 *
 * Stays in the foreground and logs to stderr, one line per message. Under
 * systemd socket activation (LISTEN_FDS) the inherited socket is used and
 * --listen may be omitted. SIGTERM/SIGINT: stop accepting, let each session
 * finish the transaction in flight (a waiting session gets 421 4.3.2), exit
 * 0 once all are gone. SIGHUP: load the configuration again; sessions pick
 * up the new one at their next transaction, and none is dropped (a bad new
 * configuration is logged and the old one kept).
 * Exit statuses: 0 after SIGTERM, 2 bad usage or configuration, 1 a
 * failure to start (cannot listen, cannot change user).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include "lmtpd.h"
#include "../bytecount.h"

struct lmtpd lmtpd;

static int sig_pipe[2] = { -1, -1 };
static int drain_wfd = -1;

void lmtpd_log(const char *fmt, ...)
{
    static _Atomic int pid;       /* the daemon never forks */
    if (!atomic_load(&pid))
        atomic_store(&pid, (int)getpid());
    char line[4096];
    int n = snprintf(line, sizeof line, "candor-lmtpd[%d]: ", atomic_load(&pid));
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    for (size_t i = (size_t)n; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[len++] = '\n';
    ssize_t w;
    do
        w = write(2, line, len);
    while (w < 0 && errno == EINTR);
}

double lmtpd_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double lmtpd_wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *lmtpd_addr_norm(const char *addr)
{
    while (*addr == ' ' || *addr == '<')
        addr++;
    size_t n = strcspn(addr, ">");
    while (n && addr[n - 1] == ' ')
        n--;
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    const char *at = memrchr(addr, '@', n);
    size_t j = 0;
    bool in_tag = false;
    for (size_t i = 0; i < n; i++) {
        char c = addr[i];
        if (at && addr + i < at && c == '+' && i > 0)
            in_tag = true;
        if (at && addr + i == at)
            in_tag = false;
        if (in_tag)
            continue;
        s[j++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    s[j] = '\0';
    return s;
}

/* ---- configuration ---- */

static void conf_free(struct lmtpd_conf *c)
{
    if (!c)
        return;
    candor_ctx_free(c->ctx);
    free(c->accept);
    free(c->sent_address);
    free(c->sent_folder);
    free(c->review_folder);
    free(c->state);
    if (c->sendmail_argv)
        for (char **p = c->sendmail_argv; *p; p++)
            free(*p);
    free(c->sendmail_argv);
    free(c);
}

struct lmtpd_conf *lmtpd_conf_get(void)
{
    pthread_mutex_lock(&lmtpd.lock);
    struct lmtpd_conf *c = lmtpd.conf;
    atomic_fetch_add(&c->refs, 1);
    pthread_mutex_unlock(&lmtpd.lock);
    return c;
}

void lmtpd_conf_put(struct lmtpd_conf *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1)
        conf_free(c);
}

/* Sessions call this between commands: the common case (no reload) takes
 * no lock. C is referenced by the caller, so it cannot be freed and its
 * address cannot come back as a new configuration's. */
struct lmtpd_conf *lmtpd_conf_refresh(struct lmtpd_conf *c)
{
    if (c && atomic_load(&lmtpd.conf) == c)
        return c;
    lmtpd_conf_put(c);
    return lmtpd_conf_get();
}

static void ctx_log(candor_log_level_t level, const char *line, void *data)
{
    (void)data;
    if (level <= CANDOR_LOG_WARN)
        lmtpd_log("-: %s: %s", level == CANDOR_LOG_ERROR ? "error" : "warning", line);
}

static char *dup_setting(const struct candor_ctx *ctx, const char *name)
{
    const char *v = candor_ctx_setting_str(ctx, name);
    return v && *v ? strdup(v) : NULL;
}

static char **split_blanks(const char *s)
{
    size_t cap = 8, n = 0;
    char **v = calloc(cap, sizeof *v);
    while (v && *s) {
        while (*s == ' ' || *s == '\t')
            s++;
        size_t k = strcspn(s, " \t");
        if (!k)
            break;
        if (n + 2 > cap) {
            char **nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv)
                break;
            v = nv;
        }
        v[n++] = strndup(s, k);
        v[n] = NULL;
        s += k;
    }
    if (v && n == 0) {
        free(v);
        return NULL;
    }
    return v;
}

static struct lmtpd_conf *conf_load(void)
{
    struct lmtpd_conf *c = calloc(1, sizeof *c);
    if (!c) {
        lmtpd_log("-: out of memory");
        return NULL;
    }
    candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
    o.config_path = lmtpd.opts.config;
    o.addresses = lmtpd.opts.addresses;
    o.n_addresses = lmtpd.opts.n_addresses;
    o.trusted_authserv = lmtpd.opts.trusted_authserv;
    o.max_config_bytes = lmtpd.opts.max_config_bytes;   /* at start and on SIGHUP */
    o.log_fn = ctx_log;
    if (candor_ctx_new(&c->ctx, &o) != CANDOR_OK) {
        lmtpd_log("-: configuration: %s", candor_errmsg());
        free(c);
        return NULL;
    }
    const struct candor_ctx *x = c->ctx;
    c->max_connections = candor_ctx_setting_int(x, "max-connections", LMTPD_DEFAULT_MAX_CONNECTIONS);
    c->idle_timeout = candor_ctx_setting_int(x, "idle-timeout", LMTPD_DEFAULT_IDLE_TIMEOUT);
    c->command_timeout = candor_ctx_setting_int(x, "command-timeout", LMTPD_DEFAULT_COMMAND_TIMEOUT);
    c->max_line_bytes = candor_ctx_setting_int(x, "max-line-bytes", LMTPD_DEFAULT_MAX_LINE_BYTES);
    c->max_data_line_bytes = candor_ctx_setting_int(x, "max-data-line-bytes",
                                                    LMTPD_DEFAULT_MAX_DATA_LINE_BYTES);
    c->max_message_bytes = candor_ctx_setting_int(x, "max-message-bytes",
                                                  LMTPD_DEFAULT_MAX_MESSAGE_BYTES);
    c->max_recipients = candor_ctx_setting_int(x, "max-recipients", LMTPD_DEFAULT_MAX_RECIPIENTS);
    c->redelivery_window = candor_ctx_setting_int(x, "redelivery-window",
                                                  LMTPD_DEFAULT_REDELIVERY_WINDOW);
    c->sendmail_timeout = candor_ctx_setting_int(x, "sendmail-timeout", LMTPD_DEFAULT_SENDMAIL_TIMEOUT);
    c->ack_retry_interval = candor_ctx_setting_int(x, "ack-retry-interval",
                                                   LMTPD_DEFAULT_ACK_RETRY_INTERVAL);
    c->ack_retry_max_interval = candor_ctx_setting_int(x, "ack-retry-max-interval",
                                                       LMTPD_DEFAULT_ACK_RETRY_MAX_INTERVAL);
    const char *fpi = candor_ctx_setting_str(x, "folder-per-intent");
    c->folder_per_intent = fpi && (strcmp(fpi, "yes") == 0 || strcmp(fpi, "true") == 0 ||
                                   strcmp(fpi, "1") == 0);
    c->accept = dup_setting(x, "accept-recipients");
    const char *sent = candor_ctx_setting_str(x, "sent-address");
    c->sent_address = sent && *sent ? lmtpd_addr_norm(sent) : NULL;
    c->sent_folder = dup_setting(x, "sent-folder");
    c->review_folder = dup_setting(x, "review-folder");
    c->state = lmtpd.opts.state ? strdup(lmtpd.opts.state) : NULL;
    c->state_server = lmtpd_state_is_server(c);
    const char *sm = lmtpd.opts.sendmail ? lmtpd.opts.sendmail : candor_ctx_sendmail(x);
    c->sendmail_argv = sm ? split_blanks(sm) : NULL;
    const char *bad = NULL;
    if (c->max_connections < 1) bad = "max-connections";
    else if (c->idle_timeout < 1) bad = "idle-timeout";
    else if (c->command_timeout < 1) bad = "command-timeout";
    else if (c->ack_retry_interval < 1 || c->ack_retry_interval > 86400)
        bad = "ack-retry-interval (1 to 86400)";
    else if (c->ack_retry_max_interval < c->ack_retry_interval)
        bad = "ack-retry-max-interval (at least ack-retry-interval)";
    else if (c->max_line_bytes < 512) bad = "max-line-bytes (at least 512)";
    else if (c->max_data_line_bytes < 1000) bad = "max-data-line-bytes (at least 1000)";
    else if (c->max_message_bytes < 1024) bad = "max-message-bytes";
    else if (c->max_recipients < 1) bad = "max-recipients";
    else if (c->redelivery_window < 0) bad = "redelivery-window";
    else if (c->sendmail_timeout < 1) bad = "sendmail-timeout";
    for (const char *f = c->review_folder; !bad && f && *f; f++)
        if (*f == '/' || (f == c->review_folder && *f == '.'))
            bad = "review-folder (a folder name, not a path)";
    if (bad) {
        lmtpd_log("-: configuration %s: bad <daemon> setting %s",
                  candor_ctx_config_path(x) ? candor_ctx_config_path(x) : "?", bad);
        conf_free(c);
        return NULL;
    }
    atomic_store(&c->refs, 1);
    return c;
}

/* Files left in tmp/ by a crash (never visible to readers) are removed
 * once older than 36 hours, the maildir convention; younger ones may still
 * belong to another delivery agent writing into the same maildir. */
static void clean_tmp(const char *maildir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tmp", maildir);
    DIR *d = opendir(path);
    if (!d)
        return;
    time_t limit = time(NULL) - 36 * 3600;
    struct dirent *de;
    int removed = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode) && st.st_mtime < limit &&
            unlinkat(dirfd(d), de->d_name, 0) == 0)
            removed++;
    }
    closedir(d);
    if (removed)
        lmtpd_log("-: removed %d stale file(s) from %s", removed, path);
}

/* ---- listening ---- */

static int listen_on(const char *spec)
{
    int fd = -1;
    if (strncmp(spec, "unix:", 5) == 0) {
        const char *path = spec + 5;
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof sun.sun_path) {
            fprintf(stderr, "candor-lmtpd: socket path too long: %s\n", path);
            return -1;
        }
        strcpy(sun.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
            unlink(path);   /* stale socket of an earlier run */
        if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
            fprintf(stderr, "candor-lmtpd: bind %s: %s\n", path, strerror(errno));
            close(fd);
            return -1;
        }
        /* Postfix's lmtp client runs as another user */
        chmod(path, 0666);
    } else {
        char host[256];
        const char *colon = strrchr(spec, ':');
        if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof host) {
            fprintf(stderr, "candor-lmtpd: --listen wants HOST:PORT or unix:PATH, not %s\n", spec);
            return -1;
        }
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
        char *h = host;
        if (*h == '[' && h[strlen(h) - 1] == ']') {
            h[strlen(h) - 1] = '\0';
            h++;
        }
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
        struct addrinfo *ai;
        int rc = getaddrinfo(h, colon + 1, &hints, &ai);
        if (rc != 0) {
            fprintf(stderr, "candor-lmtpd: %s: %s\n", spec, gai_strerror(rc));
            return -1;
        }
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd >= 0)
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            fprintf(stderr, "candor-lmtpd: bind %s: %s\n", spec, strerror(errno));
            if (fd >= 0)
                close(fd);
            freeaddrinfo(ai);
            return -1;
        }
        freeaddrinfo(ai);
    }
    if (listen(fd, 128) != 0) {
        fprintf(stderr, "candor-lmtpd: listen %s: %s\n", spec, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* systemd socket activation: LISTEN_PID/LISTEN_FDS (sd_listen_fds(3)). */
static int inherited_socket(void)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    if (!pid || !fds || atol(pid) != (long)getpid() || atoi(fds) < 1)
        return -1;
    int fd = 3;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return fd;
}

static void on_signal(int sig)
{
    int e = errno;
    char c = sig == SIGHUP ? 'H' : 'T';
    ssize_t r = write(sig_pipe[1], &c, 1);
    (void)r;
    errno = e;
}

/* ---- the session threads: a bounded pool of pre-started threads ----
 * Each LMTP connection is served by one thread from start to end (the
 * protocol code stays straight-line, and every delivery blocks in fsync()
 * and the store anyway, so an event loop would hand each message to
 * worker threads all the same). The threads are not created per
 * connection: POOL_START are started before the first accept, more are
 * added on demand up to max-connections, and a thread waits for the next
 * connection when its session ends. Postfix's lmtp client opens one
 * connection per message unless it caches connections; a thread created
 * per connection costs a clone() and a cold stack and malloc cache each
 * time (small next to the fsyncs: tests/bench/README.md has the figures).
 * Threads beyond POOL_START that stay idle for POOL_IDLE_EXIT seconds exit
 * again, so a burst does not pin memory.
 * Connections over max-connections still get 421 4.3.2 at once. */
#define POOL_START 8
#define POOL_IDLE_EXIT 60

static struct {
    pthread_cond_t work;          /* a queued connection, or draining */
    int *queue;                   /* accepted fds not yet taken (ring) */
    size_t cap, head, n;
    int threads, idle;            /* all under lmtpd.lock */
} pool;

static void *session_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lmtpd.lock);
    for (;;) {
        while (pool.n == 0 && !atomic_load(&lmtpd.draining)) {
            pool.idle++;
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += POOL_IDLE_EXIT;
            int rc = pthread_cond_timedwait(&pool.work, &lmtpd.lock, &until);
            pool.idle--;
            if (rc == ETIMEDOUT && pool.n == 0 && pool.threads > POOL_START)
                goto out;
        }
        if (pool.n == 0)          /* draining and nothing queued */
            break;
        int fd = pool.queue[pool.head];
        pool.head = (pool.head + 1) % pool.cap;
        pool.n--;
        pthread_mutex_unlock(&lmtpd.lock);
        lmtpd_session(fd);        /* drains itself: 421 4.3.2 to a waiting client */
        pthread_mutex_lock(&lmtpd.lock);
        lmtpd.sessions--;
        pthread_cond_broadcast(&lmtpd.idle);
    }
out:
    pool.threads--;
    pthread_cond_broadcast(&lmtpd.idle);
    pthread_mutex_unlock(&lmtpd.lock);
    return NULL;
}

/* Start one more pool thread (under lmtpd.lock). */
static bool pool_grow(void)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    bool ok = pthread_create(&t, &attr, session_main, NULL) == 0;
    pthread_attr_destroy(&attr);
    if (ok)
        pool.threads++;
    return ok;
}

/* Hand FD to the pool, counted as a session (under lmtpd.lock). False:
 * no thread could take it. */
static bool pool_submit(int fd)
{
    if (pool.n == pool.cap) {
        size_t cap = pool.cap ? pool.cap * 2 : 64;
        int *q = malloc(cap * sizeof *q);
        if (!q)
            return false;
        for (size_t i = 0; i < pool.n; i++)
            q[i] = pool.queue[(pool.head + i) % pool.cap];
        free(pool.queue);
        pool.queue = q;
        pool.cap = cap;
        pool.head = 0;
    }
    /* every queued connection needs a thread of its own: the sessions in
     * flight hold theirs until they end */
    if (pool.idle < (int)pool.n + 1 && !pool_grow() && pool.idle == 0)
        return false;
    pool.queue[(pool.head + pool.n) % pool.cap] = fd;
    pool.n++;
    lmtpd.sessions++;
    pthread_cond_signal(&pool.work);
    return true;
}

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: candor-lmtpd --listen 127.0.0.1:PORT|unix:PATH --maildir DIR [OPTION]...\n\n"
        "LMTP server (RFC 2033) that triages support mail, delivers it into a maildir\n"
        "with X-Candor-* fields, and acknowledges it honestly.\n\n"
        "  --listen ADDR          127.0.0.1:2424, [::1]:2424 or unix:/run/candor/lmtp.sock\n"
        "                         (optional under systemd socket activation)\n"
        "  --maildir DIR          where mail is delivered (created if missing)\n"
        "  --config FILE          the XML configuration (<daemon> holds the settings)\n"
        "  --state FILE           the state store (default: the config's)\n"
        "  --address ADDR         our own address (repeatable; overrides the config)\n"
        "  --trusted-authserv ID  whose Authentication-Results are believed\n"
        "  --sendmail \"CMD ARGS\"  how acknowledgements leave (default: the config's)\n"
        "  --no-ack               never send acknowledgements (no ticket is recorded)\n"
        "  --pid-file FILE        write the process id there\n"
        "  --user NAME            switch to this user after binding\n"
        "  --max-config-bytes N   refuse a configuration file larger than N bytes, at\n"
        "                         start and on reload (suffix k, M or G; default 4M)\n"
        "  --help, --version\n\n"
        "Signals: TERM finishes the sessions in flight and exits 0; HUP reloads the\n"
        "configuration. See candor-lmtpd(8).\n");
}

int main(int argc, char **argv)
{
    enum { O_LISTEN = 1000, O_MAILDIR, O_CONFIG, O_STATE, O_ADDRESS, O_TRUSTED, O_SENDMAIL,
           O_NOACK, O_PIDFILE, O_USER, O_HELP, O_VERSION, O_MAXCONFIG };
    static const struct option longopts[] = {
        { "listen", required_argument, NULL, O_LISTEN },
        { "maildir", required_argument, NULL, O_MAILDIR },
        { "config", required_argument, NULL, O_CONFIG },
        { "state", required_argument, NULL, O_STATE },
        { "address", required_argument, NULL, O_ADDRESS },
        { "trusted-authserv", required_argument, NULL, O_TRUSTED },
        { "sendmail", required_argument, NULL, O_SENDMAIL },
        { "no-ack", no_argument, NULL, O_NOACK },
        { "pid-file", required_argument, NULL, O_PIDFILE },
        { "user", required_argument, NULL, O_USER },
        { "max-config-bytes", required_argument, NULL, O_MAXCONFIG },
        { "help", no_argument, NULL, O_HELP },
        { "version", no_argument, NULL, O_VERSION },
        { NULL, 0, NULL, 0 },
    };
    struct lmtpd_opts *o = &lmtpd.opts;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_LISTEN: o->listen = optarg; break;
        case O_MAILDIR: o->maildir = optarg; break;
        case O_CONFIG: o->config = optarg; break;
        case O_STATE: o->state = optarg; break;
        case O_ADDRESS:
            if (o->n_addresses == LMTPD_MAX_ADDRESSES) {
                fprintf(stderr, "candor-lmtpd: too many --address\n");
                return 2;
            }
            o->addresses[o->n_addresses++] = optarg;
            break;
        case O_TRUSTED: o->trusted_authserv = optarg; break;
        case O_SENDMAIL: o->sendmail = optarg; break;
        case O_NOACK: o->no_ack = true; break;
        case O_PIDFILE: o->pid_file = optarg; break;
        case O_USER: o->user = optarg; break;
        case O_MAXCONFIG:
            if (!parse_byte_count(optarg, &o->max_config_bytes)) {
                fprintf(stderr, "candor-lmtpd: --max-config-bytes %s: not a byte count "
                        "(N, Nk, NM or NG, above 0)\n", optarg);
                return 2;
            }
            break;
        case O_HELP: usage(stdout); return 0;
        case O_VERSION: printf("candor-lmtpd %s\n", candor_version_string()); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "candor-lmtpd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (candor_version_number() != CANDOR_VERSION_NUMBER) {
        fprintf(stderr, "candor-lmtpd: libcandor %s does not match this program (%s)\n",
                candor_version_string(), CANDOR_VERSION_STRING);
        return 2;
    }
    int lfd = inherited_socket();
    if (lfd < 0 && !o->listen) {
        fprintf(stderr, "candor-lmtpd: --listen is required\n");
        usage(stderr);
        return 2;
    }
    if (!o->maildir) {
        fprintf(stderr, "candor-lmtpd: --maildir is required\n");
        usage(stderr);
        return 2;
    }
    /* an absolute maildir: the redelivery key and logged paths use it */
    char *md = realpath(o->maildir, NULL);
    if (!md) {
        if (mkdir(o->maildir, 0700) != 0 || !(md = realpath(o->maildir, NULL))) {
            fprintf(stderr, "candor-lmtpd: maildir %s: %s\n", o->maildir, strerror(errno));
            return 2;
        }
    }
    o->maildir = md;

    struct passwd *pw = NULL;
    if (o->user && !(pw = getpwnam(o->user))) {
        fprintf(stderr, "candor-lmtpd: no such user: %s\n", o->user);
        return 2;
    }

    char host[256] = "localhost";
    lmtpd.pid = (int)getpid();
    gethostname(host, sizeof host - 1);
    size_t j = 0;
    for (const char *p = host; *p && j + 5 < sizeof lmtpd.hostname; p++) {
        if (*p == '/') { memcpy(lmtpd.hostname + j, "\\057", 4); j += 4; }
        else if (*p == ':') { memcpy(lmtpd.hostname + j, "\\072", 4); j += 4; }
        else lmtpd.hostname[j++] = *p;
    }
    lmtpd.hostname[j] = '\0';

    pthread_mutex_init(&lmtpd.lock, NULL);
    pthread_cond_init(&lmtpd.idle, NULL);
    int dp[2];
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0 || pipe2(dp, O_CLOEXEC) != 0) {
        perror("candor-lmtpd: pipe");
        return 1;
    }
    lmtpd.drain_fd = dp[0];
    drain_wfd = dp[1];

    lmtpd.conf = conf_load();
    if (!lmtpd.conf)
        return 2;
    {
        /* the maildir itself must exist as one */
        char p[4096];
        static const char *const subs[] = { "tmp", "new", "cur" };
        for (int i = 0; i < 3; i++) {
            snprintf(p, sizeof p, "%s/%s", o->maildir, subs[i]);
            if (mkdir(p, 0700) != 0 && errno != EEXIST) {
                fprintf(stderr, "candor-lmtpd: %s: %s\n", p, strerror(errno));
                return 2;
            }
            if (pw && chown(p, pw->pw_uid, pw->pw_gid) != 0)
                (void)0;
        }
    }

    clean_tmp(o->maildir);

    if (lfd < 0 && (lfd = listen_on(o->listen)) < 0)
        return 1;

    if (o->pid_file) {
        FILE *f = fopen(o->pid_file, "w");
        if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0) {
            fprintf(stderr, "candor-lmtpd: pid file %s: %s\n", o->pid_file, strerror(errno));
            return 1;
        }
    }
    if (pw) {
        if (o->listen && strncmp(o->listen, "unix:", 5) == 0 &&
            chown(o->listen + 5, pw->pw_uid, pw->pw_gid) != 0)
            (void)0;
        if (setgroups(0, NULL) != 0 && initgroups(pw->pw_name, pw->pw_gid) != 0) {
            perror("candor-lmtpd: setgroups");
            return 1;
        }
        if (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
            perror("candor-lmtpd: setuid");
            return 1;
        }
        if (setuid(0) == 0) {   /* must not be able to regain root */
            fprintf(stderr, "candor-lmtpd: could not drop privileges\n");
            return 1;
        }
    }

    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    lmtpd_log("-: listening on %s, delivering into %s (max-connections=%ld idle-timeout=%ld "
              "command-timeout=%ld max-message-bytes=%ld%s)",
              o->listen ? o->listen : "an inherited socket", o->maildir,
              lmtpd.conf->max_connections, lmtpd.conf->idle_timeout,
              lmtpd.conf->command_timeout, lmtpd.conf->max_message_bytes,
              o->no_ack ? ", no acknowledgements" : "");

    /* acknowledgements a crash or a failed sendmail left pending, before
     * any session can record new ones (the socket is bound: the MTA's
     * connections wait in the backlog), so no acknowledgement is in two
     * hands at once */
    if (!o->no_ack) {
        lmtpd_retry_pending(lmtpd.conf);
        lmtpd_retry_start();
    }

    pthread_cond_init(&pool.work, NULL);
    pthread_mutex_lock(&lmtpd.lock);
    for (int i = 0; i < POOL_START; i++)
        pool_grow();
    pthread_mutex_unlock(&lmtpd.lock);
    for (;;) {
        struct pollfd p[2] = { { sig_pipe[0], POLLIN, 0 }, { lfd, POLLIN, 0 } };
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[0].revents) {
            char buf[16];
            ssize_t n = read(sig_pipe[0], buf, sizeof buf);
            bool term = false, hup = false;
            for (ssize_t i = 0; i < n; i++) {
                if (buf[i] == 'T') term = true;
                if (buf[i] == 'H') hup = true;
            }
            if (term)
                break;
            if (hup) {
                struct lmtpd_conf *nc = conf_load();
                if (nc) {
                    pthread_mutex_lock(&lmtpd.lock);
                    struct lmtpd_conf *old = lmtpd.conf;
                    lmtpd.conf = nc;
                    pthread_mutex_unlock(&lmtpd.lock);
                    lmtpd_conf_put(old);
                    lmtpd_log("-: configuration reloaded (max-connections=%ld idle-timeout=%ld "
                              "max-message-bytes=%ld)", nc->max_connections, nc->idle_timeout,
                              nc->max_message_bytes);
                } else {
                    lmtpd_log("-: reload failed; keeping the previous configuration");
                }
            }
            continue;
        }
        if (!(p[1].revents & POLLIN))
            continue;
        int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0)
            continue;
        pthread_mutex_lock(&lmtpd.lock);
        bool full = lmtpd.sessions >= lmtpd.conf->max_connections;
        bool taken = !full && pool_submit(cfd);
        pthread_mutex_unlock(&lmtpd.lock);
        if (full) {
            static const char busy[] = "421 4.3.2 too many connections, try again later\r\n";
            ssize_t w = send(cfd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)w;
            close(cfd);
            lmtpd_log("-: connection refused: max-connections reached");
        } else if (!taken) {
            close(cfd);
            lmtpd_log("-: connection dropped: no thread to serve it");
        }
    }

    /* drain: no new connections, waiting sessions get 421, transactions in
     * flight finish */
    atomic_store(&lmtpd.draining, true);
    close(lfd);
    close(drain_wfd);
    pthread_mutex_lock(&lmtpd.lock);
    lmtpd_log("-: SIGTERM: draining %d session(s)", lmtpd.sessions);
    pthread_cond_broadcast(&pool.work);
    while (lmtpd.sessions > 0 || pool.threads > 0)
        pthread_cond_wait(&lmtpd.idle, &lmtpd.lock);
    pthread_mutex_unlock(&lmtpd.lock);
    free(pool.queue);
    lmtpd_deliver_flush();
    lmtpd_retry_stop();
    if (o->pid_file)
        unlink(o->pid_file);
    if (o->listen && strncmp(o->listen, "unix:", 5) == 0)
        unlink(o->listen + 5);
    lmtpd_log("-: stopped");
    lmtpd_conf_put(lmtpd.conf);
    free(md);
    return 0;
}
