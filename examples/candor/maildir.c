/*
 * maildir.c — `candor triage --maildir DIR` (issue 9).
 *
 * Walk:    DIR/new and DIR/cur (and, with --recursive, every maildir++
 *          folder DIR/.NAME/{new,cur}); hidden names and non-files are
 *          ignored. The listing is sorted (folder, then file name, then
 *          new/ before cur/), which fixes the output order.
 * Work:    worker threads share the one read-only ctx; each has its own
 *          store handle. At most --jobs of them parse and triage at a time
 *          (a semaphore); with --apply there are 4 x --jobs threads, so
 *          that fsync waits overlap with the CPU work. A worker takes the
 *          next index only while it is within WINDOW of the next line to
 *          print, so at most WINDOW messages are in memory whatever the
 *          size of the maildir; the main thread prints them in listing
 *          order (a reorder buffer). Memory that grows with the maildir:
 *          the sorted name list only (about 60 bytes a message). With one
 *          job and no disk writes to overlap (--jobs 1 without --apply,
 *          or with --ack or --dry-run) no thread is started: the main
 *          thread reads, triages and prints each message in turn (the
 *          hand-over to a worker cost about a tenth of the CPU time).
 * Apply:   headers — the new version is written to tmp/, fsynced, given
 *          the old file's mode, owner and times, then exchanged with the
 *          old name (renameat2 RENAME_EXCHANGE: fails if the old name went
 *          away, so a concurrent flag change never yields two copies), the
 *          old content left in tmp/ is unlinked and the directory fsynced.
 *          A crash leaves the old or the new message under the name, never
 *          neither, never both. Dovecot's ",S=" and ",W=" sizes in the
 *          name are brought up to date by a second rename (a re-run
 *          repairs a crash between the two).
 *          move — renameat2 RENAME_NOREPLACE into DIR/.<intent>/new|cur
 *          (the folder made with tmp/ new/ cur/ and maildirfolder first),
 *          then both directories fsynced.
 * Acks:    with --ack, triage and acknowledgement run in the printing
 *          thread in listing order (the state changes as we go, so this
 *          keeps the decisions the same for any --jobs); workers parse.
 * Signals: SIGINT/SIGTERM stop taking new messages; those in hand are
 *          finished and printed, then a line says how far it got.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <json.h>
#include "maildir.h"

#define MAX_FOLDERS 100000u
#define MAX_ENTRIES 50000000u

static const char *const intent_names[] = {
    "complaint", "refund", "cancellation", "billing", "order_status",
    "technical_support", "account_change", "sales_inquiry", "praise", "general_question",
};
#define N_INTENTS (sizeof intent_names / sizeof intent_names[0])
static const char *const urgency_names[] = { "low", "normal", "high", "critical" };
#define N_URGENCIES 4
static const char *const reason_names[] = {
    "ok", "no_sender", "loop", "auto_submitted", "precedence", "mailing_list",
    "system_sender", "spoofed", "suspected_spam", "not_addressed_to_us",
    "already_acknowledged", "rate_limited",
};
#define N_REASONS (sizeof reason_names / sizeof reason_names[0])

static int name_index(const char *const *names, size_t n, const char *s)
{
    if (!s)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

/* ------------------------------------------------------------------ */
/* Message bytes: header scanning and rewriting (shared with filter)   */
/* ------------------------------------------------------------------ */

static bool ascii_prefix_ci(const char *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    if (n < k)
        return false;
    for (size_t i = 0; i < k; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        if (c != (unsigned char)prefix[i])
            return false;
    }
    return true;
}

/* Length of the line at P (up to and including its LF, or to END). */
static size_t line_len(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    return nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
}

static bool blank_line(const char *p, size_t n)
{
    return (n == 1 && p[0] == '\n') || (n == 2 && p[0] == '\r' && p[1] == '\n') ||
           (n == 0);
}

/* Offset of the first header field: after an mbox "From " line if any. */
static size_t header_start(const char *data, size_t len)
{
    if (len >= 5 && memcmp(data, "From ", 5) == 0)
        return line_len(data, data + len);
    return 0;
}

bool mail_has_candor_fields(const char *data, size_t len)
{
    const char *end = data + len;
    const char *p = data + header_start(data, len);
    while (p < end) {
        size_t n = line_len(p, end);
        if (blank_line(p, n))
            break;
        if (p[0] != ' ' && p[0] != '\t' && ascii_prefix_ci(p, n, "x-candor-"))
            return true;
        p += n;
    }
    return false;
}

bool mail_is_labelled(const char *data, size_t len)
{
    const char *end = data + len;
    const char *p = data + header_start(data, len);
    while (p < end) {
        size_t n = line_len(p, end);
        if (blank_line(p, n))
            break;
        if (p[0] != ' ' && p[0] != '\t') {
            if (ascii_prefix_ci(p, n, "x-candor-intent:"))
                return true;
            if (ascii_prefix_ci(p, n, "received:"))
                return false;   /* below a hop's trace: the sender wrote it */
        }
        p += n;
    }
    return false;
}

const char *mail_eol(const char *data, size_t len)
{
    size_t off = header_start(data, len);
    const char *nl = memchr(data + off, '\n', len - off);
    return nl && nl > data + off && nl[-1] == '\r' ? "\r\n" : "\n";
}

char *mail_relabel(const char *data, size_t len, const char *fields, size_t *out_len)
{
    size_t flen = fields ? strlen(fields) : 0;
    char *out = malloc(len + flen + 1);
    if (!out)
        return NULL;
    size_t o = 0, start = header_start(data, len);
    memcpy(out, data, start);
    o = start;
    memcpy(out + o, fields, flen);
    o += flen;
    const char *end = data + len, *p = data + start;
    bool dropping = false;   /* inside an X-Candor-* field (continuations too) */
    while (p < end) {
        size_t n = line_len(p, end);
        if (blank_line(p, n))
            break;
        if (p[0] != ' ' && p[0] != '\t')
            dropping = ascii_prefix_ci(p, n, "x-candor-");
        if (!dropping) {
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
    }
    memcpy(out + o, p, (size_t)(end - p));   /* the blank line and the body */
    o += (size_t)(end - p);
    *out_len = o;
    return out;
}

/* ------------------------------------------------------------------ */
/* Acknowledgements through sendmail                                   */
/* ------------------------------------------------------------------ */

int mail_send_ack(const struct candor_ctx *ctx, struct candor_store *store,
                  const struct candor_ack *ack, int64_t now)
{
    const char *cmd = candor_ctx_sendmail(ctx);
    const char *rcpt = candor_ack_recipient(ack);
    const char *msg = candor_ack_message(ack);
    const char *ticket = candor_ack_ticket(ack);
    if (!candor_ack_send(ack) || !msg)
        return 0;
    if (!cmd || !*cmd) {
        cli_error("no sendmail command configured: acknowledgement %s left pending",
                  ticket ? ticket : "");
        return -1;
    }
    if (!rcpt || !*rcpt || rcpt[0] == '-') {
        cli_error("acknowledgement %s: no usable recipient", ticket ? ticket : "");
        return -1;
    }
    /* As `candor ack --send`: the command split on blanks (no shell), then
     * -f '<>' -i -- RCPT; the recipient is one argument, never parsed. */
    char *script = strdup(cmd);
    if (!script)
        return -1;
    char *argv[40];
    size_t argc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(script, " \t", &save); tok && argc < 32;
         tok = strtok_r(NULL, " \t", &save))
        argv[argc++] = tok;
    if (argc == 0) {
        free(script);
        cli_error("empty sendmail command: acknowledgement %s left pending", ticket ? ticket : "");
        return -1;
    }
    argv[argc++] = "-f";
    argv[argc++] = "<>";
    argv[argc++] = "-i";
    argv[argc++] = "--";
    argv[argc++] = (char *)rcpt;
    argv[argc] = NULL;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        free(script);
        cli_error("sendmail: pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGINT, SIG_IGN);   /* Ctrl-C on candor must not cut a submission */
        signal(SIGPIPE, SIG_DFL);
        if (dup2(fds[0], 0) < 0)
            _exit(75);
        execvp(argv[0], argv);
        _exit(127);
    }
    free(script);
    close(fds[0]);
    if (pid < 0) {
        close(fds[1]);
        cli_error("sendmail: fork: %s", strerror(errno));
        return -1;
    }
    /* Local submission wants LF line ends. */
    bool ok = true;
    char buf[8192];
    size_t b = 0;
    for (const char *p = msg;; p++) {
        if (*p == '\r' && p[1] == '\n')
            continue;
        if (*p)
            buf[b++] = *p;
        if (b == sizeof buf || (!*p && b)) {
            for (size_t w = 0; w < b;) {
                ssize_t r = write(fds[1], buf + w, b - w);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r <= 0) {
                    ok = false;
                    break;
                }
                w += (size_t)r;
            }
            b = 0;
        }
        if (!*p || !ok)
            break;
    }
    close(fds[1]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!ok || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        if (!ok && WIFEXITED(st) && WEXITSTATUS(st) == 0)
            cli_error("sendmail (%s) exited without reading the message: "
                      "acknowledgement %s left pending", cmd, ticket ? ticket : "");
        else
            cli_error("sendmail (%s) failed (%s %d): acknowledgement %s left pending", cmd,
                      WIFEXITED(st) ? "exit" : "signal",
                      WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), ticket ? ticket : "");
        return -1;
    }
    if (ticket && candor_store_ack_sent(store, ticket, now) != CANDOR_OK) {
        cli_error("acknowledgement %s sent but not marked: %s", ticket, candor_errmsg());
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Listing                                                             */
/* ------------------------------------------------------------------ */

struct entry {
    uint32_t folder;   /* index into walk.folders */
    uint32_t sub;      /* 0 new/, 1 cur/ */
    size_t name;       /* offset into walk.arena */
};

struct walk {
    char *dir;                 /* as given, without trailing slashes */
    char **folders;            /* "" (DIR itself), then ".NAME", sorted */
    size_t n_folders;
    char *arena;
    size_t arena_len, arena_cap;
    struct entry *v;
    size_t n, cap;
};

static const char *const sub_names[2] = { "new", "cur" };

static void walk_free(struct walk *w)
{
    for (size_t i = 0; i < w->n_folders; i++)
        free(w->folders[i]);
    free(w->folders);
    free(w->arena);
    free(w->v);
    free(w->dir);
}

static bool path_join(char *out, size_t size, const char *dir, const char *folder,
                      const char *sub, const char *name)
{
    int n = snprintf(out, size, "%s%s%s%s%s%s%s", dir, *folder ? "/" : "", folder,
                     sub ? "/" : "", sub ? sub : "", name ? "/" : "", name ? name : "");
    return n >= 0 && (size_t)n < size;
}

static bool is_dir_at(int dfd, const char *name)
{
    struct stat st;
    return fstatat(dfd, name, &st, 0) == 0 && S_ISDIR(st.st_mode);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_entry(const void *a, const void *b, void *arg)
{
    const struct entry *x = a, *y = b;
    const char *arena = arg;
    if (x->folder != y->folder)
        return x->folder < y->folder ? -1 : 1;
    int c = strcmp(arena + x->name, arena + y->name);
    if (c)
        return c;
    return (x->sub > y->sub) - (x->sub < y->sub);
}

/* List DIR/FOLDER/SUB into W. Missing SUB is fine. -1 with a message. */
static int list_sub(struct walk *w, uint32_t folder, uint32_t sub)
{
    char path[PATH_MAX];
    if (!path_join(path, sizeof path, w->dir, w->folders[folder], sub_names[sub], NULL)) {
        cli_error("%s: path too long", w->dir);
        return -1;
    }
    DIR *d = opendir(path);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        cli_error("%s: %s", path, strerror(errno));
        return -1;
    }
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (de->d_type != DT_REG) {
            struct stat st;
            if (de->d_type != DT_UNKNOWN && de->d_type != DT_LNK)
                continue;
            if (fstatat(dirfd(d), de->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode))
                continue;
        }
        size_t nl = strlen(de->d_name) + 1;
        if (w->n == MAX_ENTRIES) {
            cli_error("%s: more than %u messages", w->dir, MAX_ENTRIES);
            closedir(d);
            return -1;
        }
        if (w->arena_len + nl > w->arena_cap) {
            size_t cap = w->arena_cap ? w->arena_cap * 2 : 65536;
            while (cap < w->arena_len + nl)
                cap *= 2;
            char *a = realloc(w->arena, cap);
            if (!a)
                goto oom;
            w->arena = a;
            w->arena_cap = cap;
        }
        if (w->n == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 1024;
            struct entry *v = realloc(w->v, cap * sizeof *v);
            if (!v)
                goto oom;
            w->v = v;
            w->cap = cap;
        }
        memcpy(w->arena + w->arena_len, de->d_name, nl);
        w->v[w->n++] = (struct entry){ folder, sub, w->arena_len };
        w->arena_len += nl;
        errno = 0;
    }
    if (errno) {
        cli_error("%s: %s", path, strerror(errno));
        closedir(d);
        return -1;
    }
    closedir(d);
    return 0;
oom:
    cli_error("out of memory listing %s", path);
    closedir(d);
    return -1;
}

/* Remove files in TMPDIR whose inode changed last more than 36 hours ago:
 * the maildir rule for what a crashed writer (us included) left behind.
 * ctime, not mtime: our own tmp files carry the old message's mtime. */
static void clean_tmp(const char *tmpdir)
{
    DIR *d = opendir(tmpdir);
    if (!d)
        return;
    time_t limit = time(NULL) - 36 * 3600;
    struct dirent *de;
    unsigned n = 0;
    while ((de = readdir(d)) && n++ < 100000) {
        struct stat st;
        if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISREG(st.st_mode) && st.st_ctime < limit)
            unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

/* Fill W for DIR. Returns 0, or an exit status with the message printed. */
static int walk_list(struct walk *w, const char *dir, bool recursive, bool clean)
{
    memset(w, 0, sizeof *w);
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    w->dir = strndup(dir, dl);
    if (!w->dir)
        return EXIT_TEMPFAIL;
    int dfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        cli_error("--maildir %s: %s", dir, strerror(errno));
        return EXIT_USAGE;
    }
    if (!is_dir_at(dfd, "cur") && !is_dir_at(dfd, "new")) {
        close(dfd);
        cli_error("--maildir %s: not a maildir (no cur/ or new/)", dir);
        return EXIT_USAGE;
    }
    size_t cap = 16;
    w->folders = malloc(cap * sizeof *w->folders);
    if (!w->folders || !(w->folders[0] = strdup(""))) {
        close(dfd);
        return EXIT_TEMPFAIL;
    }
    w->n_folders = 1;
    if (recursive) {
        int dfd2 = dup(dfd);
        DIR *d = dfd2 >= 0 ? fdopendir(dfd2) : NULL;
        if (!d) {
            if (dfd2 >= 0)
                close(dfd2);
            close(dfd);
            cli_error("--maildir %s: %s", dir, strerror(errno));
            return EXIT_USAGE;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
            const char *n = de->d_name;
            if (n[0] != '.' || strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
                continue;
            if (!is_dir_at(dfd, n))
                continue;
            char p[PATH_MAX];
            snprintf(p, sizeof p, "%s/cur", n);
            char q[PATH_MAX];
            snprintf(q, sizeof q, "%s/new", n);
            if (!is_dir_at(dfd, p) && !is_dir_at(dfd, q))
                continue;
            if (w->n_folders == MAX_FOLDERS)
                break;
            if (w->n_folders == cap) {
                cap *= 2;
                char **f = realloc(w->folders, cap * sizeof *f);
                if (!f)
                    break;
                w->folders = f;
            }
            if (!(w->folders[w->n_folders] = strdup(n)))
                break;
            w->n_folders++;
        }
        closedir(d);
        qsort(w->folders + 1, w->n_folders - 1, sizeof *w->folders, cmp_str);
    }
    close(dfd);
    for (uint32_t f = 0; f < w->n_folders; f++) {
        for (uint32_t s = 0; s < 2; s++)
            if (list_sub(w, f, s) != 0)
                return EXIT_PROBLEM;
        char tp[PATH_MAX];
        if (clean && path_join(tp, sizeof tp, w->dir, w->folders[f], "tmp", NULL))
            clean_tmp(tp);
    }
    qsort_r(w->v, w->n, sizeof *w->v, cmp_entry, w->arena);
    return 0;
}

/* ------------------------------------------------------------------ */
/* The run: shared state of workers and the printing thread            */
/* ------------------------------------------------------------------ */

enum action { ACT_NONE, ACT_HEADERS, ACT_MOVE, ACT_SKIP, ACT_FAILED, ACT_VANISHED };
enum slot_state { SLOT_FREE, SLOT_BUSY, SLOT_DONE };

struct slot {
    enum slot_state state;
    size_t index;
    char *line;            /* JSON line to print (malloc'd), NULL: nothing */
    char *err;             /* message for stderr (malloc'd) or NULL */
    int status;            /* exit status contribution */
    enum action act;
    int intent, urgency, reason, send;
    /* --ack: the rest is done by the printing thread */
    char *data;
    size_t len;
    struct candor_message *msg;
    bool labelled;
};

struct run {
    struct candor_ctx *ctx;
    const struct triage_opts *o;
    struct walk *w;
    candor_envelope_t env;
    unsigned int tflags;
    size_t window;
    struct slot *slots;
    sem_t cpu;             /* --jobs: how many parse and triage at once */
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    size_t next, emitted;
    bool stop;
    atomic_ulong seq;
    char host[128];
    pthread_mutex_t folder_mu;
    bool folder_ready[N_INTENTS];
    int intent_folder[N_INTENTS + 1];   /* folder index of .<intent>, or -1 */
};

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}

static void set_err(struct slot *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct slot *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    free(s->err);
    if (vasprintf(&s->err, fmt, ap) < 0)
        s->err = NULL;
    va_end(ap);
}

static void fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static void dir_of(char *out, size_t size, const char *path)
{
    snprintf(out, size, "%s", path);
    char *sl = strrchr(out, '/');
    if (sl && sl != out)
        *sl = '\0';
}

/* Folder index of .<intent> when the message's folder is an intent folder. */
static int folder_intent(const struct run *r, uint32_t folder)
{
    const char *f = r->w->folders[folder];
    if (f[0] != '.')
        return -1;
    return name_index(intent_names, N_INTENTS, f + 1);
}

/* The name with Dovecot's ",S=<size>" and ",W=<vsize>" (in the part before
 * ":2,") set for the new content; NULL when the name has neither or they
 * are right already. */
static char *name_with_sizes(const char *name, size_t size, size_t vsize)
{
    const char *colon = strchr(name, ':');
    size_t base = colon ? (size_t)(colon - name) : strlen(name);
    char out[NAME_MAX + 64];
    size_t o = 0;
    bool changed = false;
    for (size_t i = 0; i < base;) {
        if (name[i] == ',' && i + 2 < base && (name[i + 1] == 'S' || name[i + 1] == 'W') &&
            name[i + 2] == '=') {
            char key = name[i + 1];
            size_t j = i + 3;
            while (j < base && name[j] >= '0' && name[j] <= '9')
                j++;
            char num[32];
            int k = snprintf(num, sizeof num, ",%c=%zu", key, key == 'S' ? size : vsize);
            if ((size_t)k != j - i || memcmp(num, name + i, (size_t)k) != 0)
                changed = true;
            if (o + (size_t)k >= sizeof out)
                return NULL;
            memcpy(out + o, num, (size_t)k);
            o += (size_t)k;
            i = j;
            continue;
        }
        if (o + 1 >= sizeof out)
            return NULL;
        out[o++] = name[i++];
    }
    if (!changed)
        return NULL;
    size_t rest = strlen(name + base);
    if (o + rest >= sizeof out)
        return NULL;
    memcpy(out + o, name + base, rest + 1);
    return strdup(out);
}

/* Size with CRLF line ends (Dovecot's W=). */
static size_t crlf_size(const char *d, size_t n)
{
    size_t v = n;
    for (size_t i = 0; i < n; i++)
        if (d[i] == '\n' && (i == 0 || d[i - 1] != '\r'))
            v++;
    return v;
}

/* Write BUF as a new file in DIR/FOLDER/tmp with the mode, owner and times
 * of ST; fsynced. *TMP receives its path. */
static int write_tmp(struct run *r, uint32_t folder, const struct stat *st,
                     const char *buf, size_t blen, char *tmp, size_t tmpsize, struct slot *s)
{
    char tdir[PATH_MAX];
    if (!path_join(tdir, sizeof tdir, r->w->dir, r->w->folders[folder], "tmp", NULL)) {
        set_err(s, "path too long");
        return -1;
    }
    int fd = -1;
    for (int tries = 0; tries < 100 && fd < 0; tries++) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        unsigned long q = atomic_fetch_add(&r->seq, 1);
        int n = snprintf(tmp, tmpsize, "%s/%lld.M%06ldP%ldQ%lu.%s", tdir, (long long)tv.tv_sec,
                         (long)tv.tv_usec, (long)getpid(), q, r->host);
        if (n < 0 || (size_t)n >= tmpsize) {
            set_err(s, "path too long");
            return -1;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno == ENOENT) {   /* a folder without tmp/: make it */
            if (mkdir(tdir, 0700) != 0 && errno != EEXIST)
                break;
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        }
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        set_err(s, "%s: %s", tdir, strerror(errno));
        return -1;
    }
    if (geteuid() == 0 && fchown(fd, st->st_uid, st->st_gid) != 0) {
        /* keep going: the content matters more than the owner */
    }
    fchmod(fd, st->st_mode & 07777);
    for (size_t w = 0; w < blen;) {
        ssize_t k = write(fd, buf + w, blen - w);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            set_err(s, "%s: write: %s", tmp, k < 0 ? strerror(errno) : "short write");
            goto fail;
        }
        w += (size_t)k;
    }
    /* Dovecot takes a maildir message's received date from its mtime. */
    struct timespec ts[2] = { st->st_atim, st->st_mtim };
    futimens(fd, ts);
    if (fsync(fd) != 0) {
        set_err(s, "%s: fsync: %s", tmp, strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        set_err(s, "%s: close: %s", tmp, strerror(errno));
        goto fail;
    }
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return -1;
}

/* Replace the message at PATH (which we read as ST) by the new version
 * at TMP. */
static int replace_message(const char *tmp, const char *path, const struct stat *st,
                           struct slot *s)
{
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE) == 0) {
        struct stat old;
        if (stat(tmp, &old) == 0 && (old.st_ino != st->st_ino || old.st_dev != st->st_dev)) {
            /* Someone replaced the file while we worked: put theirs back. */
            renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE);
            unlink(tmp);
            set_err(s, "%s: changed while being labelled; left as it is", path);
            return -1;
        }
        unlink(tmp);   /* the old version, now outside the maildir's view */
        return 0;
    }
    if (errno == EINVAL || errno == ENOSYS || errno == ENOTSUP) {
        /* No exchange on this filesystem: check, then rename over. */
        struct stat now;
        if (stat(path, &now) != 0 || now.st_ino != st->st_ino || now.st_dev != st->st_dev) {
            unlink(tmp);
            set_err(s, "%s: renamed or changed while being labelled; left as it is", path);
            return -1;
        }
        if (rename(tmp, path) == 0)
            return 0;
    }
    int e = errno;
    unlink(tmp);
    if (e == ENOENT)
        set_err(s, "%s: renamed or removed while being labelled; left as it is", path);
    else
        set_err(s, "%s: rename: %s", path, strerror(e));
    return -1;
}

/* Set the name's S=/W= after the content changed (or repair a crash that
 * came between the exchange and this rename). *TO gets the final path. */
static int fix_size_name(const char *path, const char *name, size_t size, size_t vsize,
                         bool dry, char *to, size_t tosize, struct slot *s)
{
    snprintf(to, tosize, "%s", path);
    char *nn = name_with_sizes(name, size, vsize);
    if (!nn)
        return 0;
    char d[PATH_MAX];
    dir_of(d, sizeof d, path);
    int n = snprintf(to, tosize, "%s/%s", d, nn);
    free(nn);
    if (n < 0 || (size_t)n >= tosize) {
        set_err(s, "path too long");
        return -1;
    }
    if (dry)
        return 0;
    if (renameat2(AT_FDCWD, path, AT_FDCWD, to, RENAME_NOREPLACE) != 0) {
        int e = errno;
        if ((e == EINVAL || e == ENOSYS) && access(to, F_OK) != 0 && rename(path, to) == 0)
            goto done;
        set_err(s, "%s: rename to %s: %s", path, to, strerror(e));
        snprintf(to, tosize, "%s", path);
        return -1;
    }
done:
    fsync_dir(d);
    return 0;
}

/* Make DIR/.<intent> a maildir++ folder (idempotent, crash-safe: each
 * step is checked again on the next run). */
static int ensure_folder(struct run *r, int intent, struct slot *s)
{
    pthread_mutex_lock(&r->folder_mu);
    if (r->folder_ready[intent]) {
        pthread_mutex_unlock(&r->folder_mu);
        return 0;
    }
    struct stat dst;
    int rc = -1;
    if (stat(r->w->dir, &dst) != 0) {
        set_err(s, "%s: %s", r->w->dir, strerror(errno));
        goto out;
    }
    char f[PATH_MAX], p[PATH_MAX + 32];
    int fl = snprintf(f, sizeof f, "%s/.%s", r->w->dir, intent_names[intent]);
    if (fl < 0 || (size_t)fl >= sizeof f) {
        set_err(s, "%s: path too long", r->w->dir);
        goto out;
    }
    mode_t mode = dst.st_mode & 0777;
    const char *parts[] = { "", "tmp", "new", "cur" };
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s%s", f, *parts[i] ? "/" : "", parts[i]);
        if (mkdir(p, mode) == 0) {
            if (geteuid() == 0 && chown(p, dst.st_uid, dst.st_gid) != 0) {
                /* best effort */
            }
            if (i == 0)
                fsync_dir(r->w->dir);
        } else if (errno != EEXIST) {
            set_err(s, "%s: mkdir: %s", p, strerror(errno));
            goto out;
        }
    }
    snprintf(p, sizeof p, "%s/maildirfolder", f);
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, mode & 0666);
    if (fd < 0) {
        set_err(s, "%s: %s", p, strerror(errno));
        goto out;
    }
    if (geteuid() == 0 && fchown(fd, dst.st_uid, dst.st_gid) != 0) {
        /* best effort */
    }
    fsync(fd);
    close(fd);
    fsync_dir(f);
    r->folder_ready[intent] = true;
    rc = 0;
out:
    pthread_mutex_unlock(&r->folder_mu);
    return rc;
}

static int move_message(struct run *r, const char *path, const struct entry *e, int intent,
                        bool dry, char *to, size_t tosize, struct slot *s)
{
    const char *name = r->w->arena + e->name;
    char folder[NAME_MAX];
    snprintf(folder, sizeof folder, ".%s", intent_names[intent]);
    if (!path_join(to, tosize, r->w->dir, folder, sub_names[e->sub], name)) {
        set_err(s, "path too long");
        return -1;
    }
    if (dry)
        return 0;
    if (ensure_folder(r, intent, s) != 0)
        return -1;
    if (renameat2(AT_FDCWD, path, AT_FDCWD, to, RENAME_NOREPLACE) != 0) {
        int e2 = errno;
        if (!((e2 == EINVAL || e2 == ENOSYS) && access(to, F_OK) != 0 && rename(path, to) == 0)) {
            if (e2 == EEXIST)
                set_err(s, "%s: %s already exists; left as it is", path, to);
            else if (e2 == ENOENT)
                set_err(s, "%s: renamed or removed meanwhile; left as it is", path);
            else
                set_err(s, "%s: rename to %s: %s", path, to, strerror(e2));
            return -1;
        }
    }
    char d[PATH_MAX];
    dir_of(d, sizeof d, to);
    fsync_dir(d);
    dir_of(d, sizeof d, path);
    fsync_dir(d);
    return 0;
}

/* Append the members of EXTRA to the JSON object text JSON. */
static char *splice_json(const char *json, struct json_object *extra)
{
    const char *x = json_object_to_json_string_ext(extra,
            JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t jl = strlen(json), xl = strlen(x);
    while (jl && json[jl - 1] != '}')
        jl--;
    if (!jl || xl < 2)
        return strdup(json);
    bool empty_obj = true;
    for (size_t i = 1; i + 1 < jl; i++)
        if (json[i] != ' ')
            empty_obj = false;
    bool empty_extra = xl <= 2 || strspn(x + 1, " ") == xl - 2;
    char *out = malloc(jl + xl + 2);
    if (!out)
        return NULL;
    size_t o = jl - 1;
    memcpy(out, json, o);
    if (!empty_extra) {
        if (!empty_obj)
            out[o++] = ',';
        memcpy(out + o, x + 1, xl - 2);
        o += xl - 2;
    }
    out[o++] = '}';
    out[o] = '\0';
    return out;
}

static const char *action_name(enum action a, bool dry)
{
    switch (a) {
    case ACT_HEADERS: return dry ? "would_write_headers" : "headers_written";
    case ACT_MOVE: return dry ? "would_move" : "moved";
    case ACT_SKIP: return "skipped";
    case ACT_FAILED: return "failed";
    default: return "none";
    }
}

/* Triage is done (RES of MSG): apply, build the line. TICKET and ACKJSON
 * only with --ack. */
static void finish(struct run *r, struct slot *s, const char *path, const struct stat *st,
                   const char *data, size_t len, bool labelled,
                   struct candor_message *msg, struct candor_result *res,
                   const char *ticket, const char *ackjson)
{
    const struct triage_opts *o = r->o;
    const struct entry *e = &r->w->v[s->index];
    char *json = NULL;
    candor_status_t cs = candor_result_to_json(res, msg, path, &json);
    if (cs != CANDOR_OK) {
        set_err(s, "%s: %s", path, candor_errmsg());
        s->status = cli_exit_for(cs) == EXIT_TEMPFAIL ? EXIT_TEMPFAIL : EXIT_PROBLEM;
        s->act = ACT_FAILED;
        return;
    }
    s->intent = name_index(intent_names, N_INTENTS, candor_result_intent(res));
    s->urgency = name_index(urgency_names, N_URGENCIES, candor_result_urgency(res));
    s->reason = name_index(reason_names, N_REASONS, candor_result_autoreply_reason(res));
    s->send = candor_result_autoreply_send(res);

    char to[PATH_MAX];
    to[0] = '\0';
    const char *why = NULL;
    enum action act = ACT_NONE;
    if (o->apply == APPLY_HEADERS) {
        if (labelled && !o->force) {
            act = ACT_SKIP;
            why = "already labelled";
            /* a crash between the exchange and the size rename: repair */
            if (fix_size_name(path, r->w->arena + e->name, len, crlf_size(data, len),
                              o->dry_run, to, sizeof to, s) != 0)
                act = ACT_FAILED;
            if (strcmp(to, path) == 0)
                to[0] = '\0';
        } else {
            act = ACT_HEADERS;
            char *fields = NULL;
            size_t nlen = 0;
            char *nbuf = NULL;
            cs = candor_result_headers(res, ticket, mail_eol(data, len), &fields);
            if (cs == CANDOR_OK)
                nbuf = mail_relabel(data, len, fields, &nlen);
            candor_free(fields);
            if (!nbuf) {
                set_err(s, "%s: %s", path, cs == CANDOR_OK ? "out of memory" : candor_errmsg());
                act = ACT_FAILED;
            } else if (!o->dry_run) {
                char tmp[PATH_MAX];
                if (write_tmp(r, e->folder, st, nbuf, nlen, tmp, sizeof tmp, s) != 0 ||
                    replace_message(tmp, path, st, s) != 0) {
                    act = ACT_FAILED;
                } else {
                    char d[PATH_MAX];
                    dir_of(d, sizeof d, path);
                    fsync_dir(d);
                    if (fix_size_name(path, r->w->arena + e->name, nlen,
                                      crlf_size(nbuf, nlen), false, to, sizeof to, s) != 0)
                        act = ACT_FAILED;
                }
            } else {
                fix_size_name(path, r->w->arena + e->name, nlen, crlf_size(nbuf, nlen),
                              true, to, sizeof to, s);
            }
            free(nbuf);
        }
    } else if (o->apply == APPLY_MOVE) {
        int here = folder_intent(r, e->folder);
        if (here >= 0 && (!o->force || here == s->intent)) {
            act = ACT_SKIP;
            why = "already in its intent folder";
        } else if (s->intent < 0) {
            act = ACT_FAILED;
            set_err(s, "%s: no intent to move by", path);
        } else {
            act = ACT_MOVE;
            if (move_message(r, path, e, s->intent, o->dry_run, to, sizeof to, s) != 0)
                act = ACT_FAILED;
        }
    }
    s->act = act;
    if (act == ACT_FAILED)
        s->status = EXIT_PROBLEM;

    if (o->apply == APPLY_NONE && !ackjson) {   /* nothing to add to the line */
        s->line = strdup(json);
        candor_free(json);
        return;
    }
    struct json_object *extra = json_object_new_object();
    if (o->apply != APPLY_NONE && extra) {
        struct json_object *a = json_object_new_object();
        json_object_object_add(a, "action", json_object_new_string(action_name(act, o->dry_run)));
        if (why)
            json_object_object_add(a, "reason", json_object_new_string(why));
        if (to[0] && strcmp(to, path) != 0)
            json_object_object_add(a, "to", json_object_new_string(to));
        if (act == ACT_FAILED && s->err)
            json_object_object_add(a, "error", json_object_new_string(s->err));
        json_object_object_add(a, "dry_run", json_object_new_boolean(o->dry_run));
        json_object_object_add(extra, "apply", a);
    }
    if (ackjson && extra) {
        struct json_object *aj = json_tokener_parse(ackjson);
        if (aj) {
            json_object_object_del(aj, "message");   /* the whole mail: not for a listing */
            json_object_object_add(extra, "ack", aj);
        }
    }
    s->line = extra ? splice_json(json, extra) : strdup(json);
    json_object_put(extra);
    candor_free(json);
}

/* Read the message file into *DATA, up to MAX bytes (the context's
 * max-message-bytes). 0, or -1 with S filled in. */
static int read_message(const char *path, size_t max, char **data, size_t *len,
                        struct stat *st, struct slot *s)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT) {
            s->act = ACT_VANISHED;
            return -1;
        }
        set_err(s, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, st) != 0) {
        set_err(s, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if ((uint64_t)st->st_size > max) {
        set_err(s, "%s: larger than %zu bytes", path, max);
        close(fd);
        return -1;
    }
    size_t cap = (size_t)st->st_size + 1, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        set_err(s, "%s: out of memory", path);
        close(fd);
        return -1;
    }
    for (;;) {
        if (n == cap) {   /* it grew while we read */
            if (cap > max) {
                set_err(s, "%s: larger than %zu bytes", path, max);
                goto fail;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                goto fail;
            buf = nb;
            cap *= 2;
        }
        ssize_t k = read(fd, buf + n, cap - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            set_err(s, "%s: read: %s", path, strerror(errno));
            goto fail;
        }
        if (k == 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    *data = buf;
    *len = n;
    return 0;
fail:
    free(buf);
    close(fd);
    return -1;
}

static void unreadable(struct slot *s, const char *path, const char *reason)
{
    char *json = NULL;
    if (candor_message_unreadable_json(path, reason, &json) == CANDOR_OK && json) {
        s->line = strdup(json);
        candor_free(json);
    }
    s->status = EXIT_PROBLEM;
    s->act = ACT_FAILED;
}

static void entry_path(const struct run *r, size_t i, char *out, size_t size)
{
    const struct entry *e = &r->w->v[i];
    if (!path_join(out, size, r->w->dir, r->w->folders[e->folder], sub_names[e->sub],
                   r->w->arena + e->name))
        out[0] = '\0';
}

/* A worker's part for message S->index. */
static void process(struct run *r, struct slot *s, struct candor_store *store)
{
    char path[PATH_MAX];
    entry_path(r, s->index, path, sizeof path);
    if (!path[0]) {
        set_err(s, "path too long");
        unreadable(s, r->w->arena + r->w->v[s->index].name, "path too long");
        return;
    }
    char *data = NULL;
    size_t len = 0;
    struct stat st;
    if (read_message(path, candor_ctx_limit(r->ctx, "max-message-bytes"), &data, &len,
                     &st, s) != 0) {
        if (s->act != ACT_VANISHED)
            unreadable(s, path, s->err ? s->err : "unreadable");
        return;
    }
    bool labelled = mail_is_labelled(data, len);
    struct candor_message *msg = NULL;
    while (sem_wait(&r->cpu) != 0 && errno == EINTR)
        ;
    candor_status_t cs = candor_message_parse(&msg, r->ctx, data, len);
    if (cs != CANDOR_OK) {
        sem_post(&r->cpu);
        set_err(s, "%s: %s", path, candor_errmsg());
        unreadable(s, path, candor_errmsg());
        if (cs == CANDOR_ETEMPFAIL || cs == CANDOR_ENOMEM)
            s->status = EXIT_TEMPFAIL;
        free(data);
        return;
    }
    if (r->o->ack) {   /* the printing thread goes on in order */
        sem_post(&r->cpu);
        s->data = data;
        s->len = len;
        s->msg = msg;
        s->labelled = labelled;
        return;
    }
    struct candor_result *res = NULL;
    cs = candor_triage(&res, r->ctx, msg, store, &r->env, r->tflags);
    sem_post(&r->cpu);   /* what follows waits on the disk (fsync), not the CPU */
    if (cs != CANDOR_OK) {
        set_err(s, "%s: triage: %s", path, candor_errmsg());
        unreadable(s, path, candor_errmsg());
        if (cs == CANDOR_ETEMPFAIL || cs == CANDOR_ENOMEM)
            s->status = EXIT_TEMPFAIL;
    } else {
        finish(r, s, path, &st, data, len, labelled, msg, res, NULL, NULL);
    }
    candor_result_free(res);
    candor_message_free(msg);
    free(data);
}

/* The printing thread's part with --ack: triage against the read-write
 * state, acknowledge messages in new/, apply. */
static void process_ack(struct run *r, struct slot *s, struct candor_store *store)
{
    char path[PATH_MAX];
    entry_path(r, s->index, path, sizeof path);
    const struct entry *e = &r->w->v[s->index];
    struct candor_result *res = NULL;
    struct candor_ack *ack = NULL;
    char *ackjson = NULL;
    candor_status_t cs = candor_triage(&res, r->ctx, s->msg, store, &r->env, r->tflags);
    if (cs != CANDOR_OK) {
        set_err(s, "%s: triage: %s", path, candor_errmsg());
        unreadable(s, path, candor_errmsg());
        if (cs == CANDOR_ETEMPFAIL)
            s->status = EXIT_TEMPFAIL;
        goto out;
    }
    /* Acknowledge what is new and not yet handled (a labelled message was
     * seen by a filter or an earlier run). */
    bool skip = r->o->apply == APPLY_HEADERS && s->labelled && !r->o->force;
    if (e->sub == 0 && !skip && !r->o->dry_run) {
        cs = candor_ack(&ack, r->ctx, store, s->msg, &r->env);
        if (cs != CANDOR_OK) {
            set_err(s, "%s: ack: %s", path, candor_errmsg());
            s->status = cs == CANDOR_ETEMPFAIL ? EXIT_TEMPFAIL : EXIT_PROBLEM;
        } else {
            candor_ack_to_json(ack, &ackjson);
        }
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        s->act = ACT_VANISHED;
        goto out;
    }
    finish(r, s, path, &st, s->data, s->len, s->labelled, s->msg, res,
           ack ? candor_ack_ticket(ack) : NULL, ackjson);
    /* Only now, with the message labelled durably, let the ack leave. */
    if (ack && candor_ack_send(ack) &&
        mail_send_ack(r->ctx, store, ack, r->o->co->now) != 0 && s->status == EXIT_OK)
        s->status = EXIT_PROBLEM;
out:
    candor_free(ackjson);
    candor_ack_free(ack);
    candor_result_free(res);
}

struct worker_arg {
    struct run *r;
    struct candor_store *store;
    pthread_t tid;
};

static void *worker(void *p)
{
    struct worker_arg *wa = p;
    struct run *r = wa->r;
    size_t n = r->w->n;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        while (!r->stop && r->next < n && r->next >= r->emitted + r->window)
            pthread_cond_wait(&r->cv_work, &r->mu);
        if (r->stop || r->next >= n) {
            pthread_mutex_unlock(&r->mu);
            break;
        }
        size_t i = r->next++;
        struct slot *s = &r->slots[i % r->window];
        s->state = SLOT_BUSY;
        s->index = i;
        pthread_mutex_unlock(&r->mu);

        process(r, s, wa->store);

        pthread_mutex_lock(&r->mu);
        s->state = SLOT_DONE;
        pthread_cond_broadcast(&r->cv_done);
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Progress and summary (terminal only)                                */
/* ------------------------------------------------------------------ */

struct tally {
    size_t done, errors, vanished;
    size_t by_intent[N_INTENTS + 1];
    size_t by_urgency[N_URGENCIES + 1];
    size_t send, by_reason[N_REASONS + 1];
    size_t by_action[ACT_VANISHED + 1];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fmt_dur(char *b, size_t n, double s)
{
    if (s < 0 || s > 359999)
        snprintf(b, n, "--:--");
    else if (s >= 3600)
        snprintf(b, n, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    else
        snprintf(b, n, "%d:%02d", (int)s / 60, (int)s % 60);
}

static void progress(size_t done, size_t total, double t0, bool stopping)
{
    double el = now_s() - t0;
    double rate = el > 0 ? (double)done / el : 0;
    char left[32];
    fmt_dur(left, sizeof left, rate > 0 ? (double)(total - done) / rate : -1);
    int width = 30, fill = total ? (int)((double)done / (double)total * width) : width;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r\033[K[%s] %zu/%zu %3d%% %.0f msg/s %s left%s", bar, done, total,
            total ? (int)(100.0 * (double)done / (double)total) : 100, rate, left,
            stopping ? " (stopping)" : "");
    fflush(stderr);
}

static void summary(const struct tally *t, size_t total, double secs, const struct triage_opts *o)
{
    fprintf(stderr, "\r\033[K%zu of %zu messages in %.1f s (%.0f msg/s), %zu errors\n",
            t->done, total, secs, secs > 0 ? (double)t->done / secs : 0.0, t->errors);
    const char *col1[N_INTENTS + 1], *col2[N_URGENCIES + 1], *col3[N_REASONS + 1];
    size_t v1[N_INTENTS + 1], v2[N_URGENCIES + 1], v3[N_REASONS + 1];
    size_t n1 = 0, n2 = 0, n3 = 0;
    for (size_t i = 0; i <= N_INTENTS; i++)
        if (t->by_intent[i]) {
            col1[n1] = i < N_INTENTS ? intent_names[i] : "(none)";
            v1[n1++] = t->by_intent[i];
        }
    for (size_t i = 0; i <= N_URGENCIES; i++)
        if (t->by_urgency[i]) {
            col2[n2] = i < N_URGENCIES ? urgency_names[i] : "(none)";
            v2[n2++] = t->by_urgency[i];
        }
    for (size_t i = 0; i <= N_REASONS; i++)
        if (t->by_reason[i]) {
            col3[n3] = i < N_REASONS ? reason_names[i] : "(none)";
            v3[n3++] = t->by_reason[i];
        }
    fprintf(stderr, "  %-18s %7s   %-9s %7s   %-24s %7s\n", "intent", "count", "urgency",
            "count", "auto-reply", "count");
    size_t rows = n1 > n2 ? n1 : n2;
    rows = rows > n3 ? rows : n3;
    for (size_t i = 0; i < rows; i++) {
        char c3[48] = "";
        if (i < n3)
            snprintf(c3, sizeof c3, "%s %s", strcmp(col3[i], "ok") == 0 ? "send:" : "no:",
                     col3[i]);
        fprintf(stderr, "  %-18s ", i < n1 ? col1[i] : "");
        if (i < n1) fprintf(stderr, "%7zu", v1[i]); else fprintf(stderr, "%7s", "");
        fprintf(stderr, "   %-9s ", i < n2 ? col2[i] : "");
        if (i < n2) fprintf(stderr, "%7zu", v2[i]); else fprintf(stderr, "%7s", "");
        fprintf(stderr, "   %-24s ", c3);
        if (i < n3) fprintf(stderr, "%7zu", v3[i]); else fprintf(stderr, "%7s", "");
        fputc('\n', stderr);
    }
    if (o->apply != APPLY_NONE)
        fprintf(stderr, "  %s: %zu %s, %zu skipped, %zu failed\n",
                o->dry_run ? "dry run" : "applied", t->by_action[o->apply == APPLY_MOVE ? ACT_MOVE : ACT_HEADERS],
                o->apply == APPLY_MOVE ? (o->dry_run ? "would move" : "moved")
                                       : (o->dry_run ? "would get headers" : "headers written"),
                t->by_action[ACT_SKIP], t->by_action[ACT_FAILED]);
    if (t->vanished)
        fprintf(stderr, "  %zu messages vanished while we worked (moved by someone else)\n",
                t->vanished);
}

static int default_jobs(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* The printing side: what the main thread does with a finished slot. */
struct emitter {
    bool tty, out_tty, out_failed, any_tempfail, any_problem;
    struct tally t;
    double t0, last;
    struct candor_store *rw_store;
};

static void emit(struct run *r, struct slot *s, struct emitter *em)
{
    const struct triage_opts *o = r->o;
    if (o->ack && s->msg)
        process_ack(r, s, em->rw_store);
    if (s->err) {
        if (em->tty)
            fputs("\r\033[K", stderr);
        cli_error("%s", s->err);
    }
    if (s->line && !em->out_failed) {
        if (em->tty && em->out_tty)
            fputs("\r\033[K", stderr);
        if (!cli_put_line(s->line)) {
            em->out_failed = true;
            cli_error("standard output: %s", strerror(errno));
        }
    }
    if (s->status == EXIT_TEMPFAIL)
        em->any_tempfail = true;
    else if (s->status != EXIT_OK)
        em->any_problem = true;
    struct tally *t = &em->t;
    if (s->act == ACT_VANISHED) {
        t->vanished++;
    } else {
        t->done++;
        if (s->act == ACT_FAILED || s->status != EXIT_OK)
            t->errors++;
        t->by_action[s->act]++;
        if (s->line && s->act != ACT_FAILED) {
            t->by_intent[s->intent >= 0 ? (size_t)s->intent : N_INTENTS]++;
            t->by_urgency[s->urgency >= 0 ? (size_t)s->urgency : N_URGENCIES]++;
            t->by_reason[s->reason >= 0 ? (size_t)s->reason : N_REASONS]++;
            t->send += s->send ? 1 : 0;
        }
    }
    free(s->line);
    free(s->err);
    free(s->data);
    candor_message_free(s->msg);
    size_t idx = s->index;
    memset(s, 0, sizeof *s);
    s->index = idx;

    if (em->tty && now_s() - em->last > 0.1) {
        em->last = now_s();
        progress(t->done, r->w->n, em->t0, r->stop);
    }
}

/* ------------------------------------------------------------------ */
/* maildir_triage                                                      */
/* ------------------------------------------------------------------ */

static struct candor_store *open_store(const struct candor_ctx *ctx, const char *path,
                                       bool readonly, candor_status_t *st)
{
    struct candor_store *store = NULL;
    *st = candor_store_open(&store, ctx, path, readonly ? CANDOR_STORE_READONLY : 0);
    return *st == CANDOR_OK ? store : NULL;
}

int maildir_triage(struct candor_ctx *ctx, const char *dir, const struct triage_opts *o)
{
    if (o->apply == APPLY_NONE && (o->dry_run || o->force))
        return cli_usage_error("--dry-run and --force go with --apply");
    struct walk w;
    int rc = walk_list(&w, dir, o->recursive, o->apply != APPLY_NONE && !o->dry_run);
    if (rc != 0) {
        walk_free(&w);
        return rc;
    }
    int jobs = o->jobs > 0 ? o->jobs : default_jobs();
    if (jobs > 256)
        jobs = 256;
    if ((size_t)jobs > w.n && w.n > 0)
        jobs = (int)w.n;
    if (jobs < 1)
        jobs = 1;
    /* Writing waits for fsync: with --apply, more threads than --jobs keep
     * the disk busy while at most --jobs of them parse and triage. */
    int threads = jobs;
    if (o->apply != APPLY_NONE && !o->dry_run && !o->ack)
        threads = jobs * 4 > 256 ? 256 : jobs * 4;
    if ((size_t)threads > w.n && w.n > 0)
        threads = (int)w.n;

    struct run r;
    memset(&r, 0, sizeof r);
    r.ctx = ctx;
    r.o = o;
    r.w = &w;
    cli_envelope(o->co, &r.env);
    r.tflags = o->explain ? CANDOR_TRIAGE_EXPLAIN : 0;
    r.window = (size_t)jobs * 8 < 16 ? 16 : (size_t)jobs * 8;
    if (r.window < (size_t)threads * 2)
        r.window = (size_t)threads * 2;
    sem_init(&r.cpu, 0, (unsigned)jobs);
    if (gethostname(r.host, sizeof r.host - 1) != 0 || !r.host[0])
        strcpy(r.host, "localhost");
    for (char *h = r.host; *h; h++)   /* maildir: no '/' or ':' in names */
        if (*h == '/' || *h == ':')
            *h = '_';
    pthread_mutex_init(&r.mu, NULL);
    pthread_mutex_init(&r.folder_mu, NULL);
    pthread_cond_init(&r.cv_work, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r.cv_done, &ca);
    pthread_condattr_destroy(&ca);
    r.slots = calloc(r.window, sizeof *r.slots);
    struct worker_arg *wa = calloc((size_t)threads, sizeof *wa);
    struct candor_store *rw_store = NULL;
    int status = EXIT_OK;
    if (!r.slots || !wa) {
        cli_error("out of memory");
        status = EXIT_TEMPFAIL;
        goto done;
    }

    /* Stores: --ack needs one read-write store (printing thread); else
     * one read-only handle per worker. Without an explicit --state, a
     * state that cannot be opened only means no thread/rate checks. */
    candor_status_t cs;
    if (o->ack && !o->dry_run) {
        rw_store = open_store(ctx, o->co->state, false, &cs);
        if (!rw_store) {
            cli_error("state: %s", candor_errmsg());
            status = cli_exit_for(cs) == EXIT_TEMPFAIL ? EXIT_TEMPFAIL : EXIT_USAGE;
            goto done;
        }
    } else {
        bool warned = false;
        for (int i = 0; i < threads; i++) {
            wa[i].store = open_store(ctx, o->co->state, true, &cs);
            if (!wa[i].store) {
                if (o->co->state) {
                    cli_error("state: %s", candor_errmsg());
                    status = cli_exit_for(cs) == EXIT_TEMPFAIL ? EXIT_TEMPFAIL : EXIT_USAGE;
                    goto done;
                }
                if (!warned)
                    cli_error("no state (%s): thread and rate checks skipped", candor_errmsg());
                warned = true;
            }
        }
        if (o->ack) {   /* --ack --dry-run: decisions against the state, read-only */
            rw_store = wa[0].store;
            wa[0].store = NULL;
        }
    }

    struct emitter em;
    memset(&em, 0, sizeof em);
    em.tty = isatty(STDERR_FILENO);
    em.out_tty = isatty(STDOUT_FILENO);
    em.rw_store = rw_store;
    struct sigaction sa, old_int, old_term, old_pipe;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    got_signal = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, &old_pipe);
    em.t0 = now_s();

    if (threads == 1) {
        /* One job and nothing to wait for on the disk: no threads, each
         * message parsed, triaged and printed in turn. */
        for (size_t i = 0; i < w.n && !r.stop; i++) {
            struct slot *s = &r.slots[0];
            memset(s, 0, sizeof *s);
            s->state = SLOT_BUSY;
            s->index = i;
            r.next = i + 1;
            process(&r, s, wa[0].store);
            emit(&r, s, &em);
            r.emitted++;
            if (em.out_failed || got_signal)
                r.stop = true;
        }
        goto finished;
    }

    /* Workers never take the signals: the printing thread stops them. */
    sigset_t block, oldmask;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &oldmask);
    int started = 0;
    for (int i = 0; i < threads; i++) {
        wa[i].r = &r;
        if (pthread_create(&wa[i].tid, NULL, worker, &wa[i]) != 0)
            break;
        started++;
    }
    pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
    if (started == 0) {
        cli_error("cannot start threads");
        status = EXIT_TEMPFAIL;
        r.stop = true;
    }

    pthread_mutex_lock(&r.mu);
    for (;;) {
        if (r.emitted == w.n || (r.stop && r.emitted == r.next))
            break;
        struct slot *s = &r.slots[r.emitted % r.window];
        if (!(s->state == SLOT_DONE && s->index == r.emitted)) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += 100 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&r.cv_done, &r.mu, &ts);
            if (got_signal && !r.stop) {
                r.stop = true;
                pthread_cond_broadcast(&r.cv_work);
            }
            if (em.tty && now_s() - em.last > 0.1) {
                em.last = now_s();
                progress(em.t.done, w.n, em.t0, r.stop);
            }
            continue;
        }
        pthread_mutex_unlock(&r.mu);
        emit(&r, s, &em);
        pthread_mutex_lock(&r.mu);
        r.emitted++;
        if (em.out_failed && !r.stop)
            r.stop = true;
        if (got_signal && !r.stop)
            r.stop = true;
        pthread_cond_broadcast(&r.cv_work);
    }
    r.stop = true;
    pthread_cond_broadcast(&r.cv_work);
    pthread_mutex_unlock(&r.mu);
    for (int i = 0; i < started; i++)
        pthread_join(wa[i].tid, NULL);
finished:;
    size_t total_emitted = r.emitted;
    bool out_failed = em.out_failed;
    if (fflush(stdout) != 0 && !out_failed) {
        out_failed = true;
        cli_error("standard output: %s", strerror(errno));
    }
    if (status == EXIT_OK)
        status = em.any_tempfail ? EXIT_TEMPFAIL
                 : (em.any_problem || out_failed) ? EXIT_PROBLEM : EXIT_OK;
    if (em.tty)
        summary(&em.t, w.n, now_s() - em.t0, o);
    if (total_emitted < w.n && (got_signal || out_failed)) {
        cli_error("%s: stopped after %zu of %zu messages (%zu written, %zu skipped); "
                  "run the same command again to finish",
                  got_signal ? "interrupted" : "output failed", total_emitted, w.n,
                  em.t.by_action[ACT_HEADERS] + em.t.by_action[ACT_MOVE],
                  em.t.by_action[ACT_SKIP]);
    }
    sigaction(SIGPIPE, &old_pipe, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGINT, &old_int, NULL);
    if (got_signal && total_emitted < w.n)   /* the shell's convention for a stopped command */
        status = 128 + got_signal;
    got_signal = 0;

done:
    if (wa)
        for (int i = 0; i < threads; i++)
            candor_store_free(wa[i].store);
    candor_store_free(rw_store);
    free(wa);
    free(r.slots);
    pthread_cond_destroy(&r.cv_work);
    pthread_cond_destroy(&r.cv_done);
    pthread_mutex_destroy(&r.mu);
    pthread_mutex_destroy(&r.folder_mu);
    sem_destroy(&r.cpu);
    walk_free(&w);
    return status;
}
