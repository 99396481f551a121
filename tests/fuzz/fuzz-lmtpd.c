/*
 * fuzz-lmtpd.c — libFuzzer target: one whole LMTP session of
 * candor-lmtpd (examples/lmtpd/session.c) fed the input as the client's
 * bytes over a socketpair: command parsing (LHLO, MAIL FROM with SIZE and
 * BODY, RCPT TO, DATA with dot-stuffing, RSET, NOOP, VRFY, QUIT), the line
 * and size limits, pipelining, and each delivery (parse, triage, the
 * state, maildir write) into a scratch maildir on tmpfs. The daemon's
 * command parser is not a separate function, so the session is the unit.
 * Every reply line must be "NNN" + " " or "-" + text + CRLF.
 *
 * Small limits (512-byte command lines, 1000-byte message lines, 16 kB
 * messages, 5 recipients) so the fuzzer reaches them. No acknowledgements
 * leave (no_ack). The daemon logs to stderr by design: run the campaign
 * with -close_fd_mask=2.
 */
#include <dirent.h>
#include <stdbool.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fuzz-common.h"
#include "../../examples/lmtpd/lmtpd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[128];
static char maildir[192];

static void setup(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(root, sizeof root, "%s/candor-fuzz-lmtpd-XXXXXX", base);
    FUZZ_CHECK(mkdtemp(root) != NULL, "mkdtemp");
    snprintf(maildir, sizeof maildir, "%s/Maildir", root);
    FUZZ_CHECK(mkdir(maildir, 0700) == 0, "mkdir maildir");
    static const char *const subs[] = { "tmp", "new", "cur" };
    for (int i = 0; i < 3; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s/%s", maildir, subs[i]);
        FUZZ_CHECK(mkdir(p, 0700) == 0, "mkdir maildir sub");
    }
    lmtpd.opts.maildir = maildir;
    lmtpd.opts.no_ack = true;
    snprintf(lmtpd.hostname, sizeof lmtpd.hostname, "fuzz.example");
    pthread_mutex_init(&lmtpd.lock, NULL);
    pthread_cond_init(&lmtpd.idle, NULL);
    int p[2];
    FUZZ_CHECK(pipe(p) == 0, "pipe");
    lmtpd.drain_fd = p[0];          /* never readable: p[1] stays open */

    struct lmtpd_conf *c = calloc(1, sizeof *c);
    FUZZ_CHECK(c != NULL, "calloc");
    c->ctx = fuzz_ctx();
    c->max_connections = 4;
    c->idle_timeout = 5;
    c->command_timeout = 5;
    c->max_line_bytes = 512;
    c->max_data_line_bytes = 1000;
    c->max_message_bytes = 16384;
    c->max_recipients = 5;
    c->redelivery_window = 604800;
    c->sendmail_timeout = 1;
    c->accept = strdup("support@shop.example @help.example");
    c->sent_address = lmtpd_addr_norm("sent@shop.example");
    c->sent_folder = strdup("Sent");
    c->review_folder = strdup("Review");
    char st[256];
    snprintf(st, sizeof st, "%s/state.db", root);
    c->state = strdup(st);
    /* one reference for lmtpd.conf and one held for ever, so the conf
     * (and the shared ctx in it) is never freed under the sessions */
    atomic_store(&c->refs, 2);
    lmtpd.conf = c;
}

/* Remove the delivered files (keep the folders). */
static void clean_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            clean_dir(p);
        else
            unlink(p);
    }
    closedir(d);
}

struct io {
    int fd;
    const uint8_t *data;
    size_t size;
    char *out;
    size_t out_len, out_cap;
};

static void *writer(void *arg)
{
    struct io *io = arg;
    size_t off = 0;
    while (off < io->size) {
        ssize_t w = send(io->fd, io->data + off, io->size - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    shutdown(io->fd, SHUT_WR);
    return NULL;
}

static void *reader(void *arg)
{
    struct io *io = arg;
    char buf[4096];
    for (;;) {
        ssize_t r = recv(io->fd, buf, sizeof buf, 0);
        if (r <= 0)
            break;
        if (io->out_len + (size_t)r > io->out_cap) {
            size_t cap = io->out_cap ? io->out_cap * 2 : 8192;
            while (cap < io->out_len + (size_t)r)
                cap *= 2;
            char *p = realloc(io->out, cap);
            FUZZ_CHECK(p != NULL, "realloc");
            io->out = p;
            io->out_cap = cap;
        }
        memcpy(io->out + io->out_len, buf, (size_t)r);
        io->out_len += (size_t)r;
    }
    return NULL;
}

static void check_replies(const char *s, size_t n)
{
    size_t i = 0;
    FUZZ_CHECK(n >= 5 && memcmp(s, "220 ", 4) == 0, "the session starts with 220");
    while (i < n) {
        const char *eol = memchr(s + i, '\n', n - i);
        FUZZ_CHECK(eol != NULL, "every reply ends with a line end");
        size_t len = (size_t)(eol - (s + i));
        bool ok = len >= 5 && s[i + len - 1] == '\r' && (s[i + 3] == ' ' || s[i + 3] == '-');
        ok = ok && s[i] >= '2' && s[i] <= '5' && candor__is_digit((unsigned char)s[i + 1]) &&
             candor__is_digit((unsigned char)s[i + 2]);
        if (!ok)
            fprintf(stderr, "fuzz-lmtpd: bad reply line at %zu of %zu (len %zu): \"%.*s\"\n", i, n, len,
                    (int)len, s + i);
        FUZZ_CHECK(ok, "reply line is a code 2xx-5xx, then space or hyphen, text, CRLF");
        for (size_t k = 0; k + 1 < len; k++)
            FUZZ_CHECK((unsigned char)s[i + k] >= 0x20 && s[i + k] != 0x7f,
                       "no control byte in a reply");
        i += len + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!lmtpd.conf)
        setup();
    int sv[2];
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    struct io in = { sv[0], data, size, NULL, 0, 0 };
    struct io out = { sv[0], NULL, 0, NULL, 0, 0 };
    pthread_t tw, tr;
    FUZZ_CHECK(pthread_create(&tw, NULL, writer, &in) == 0, "writer thread");
    FUZZ_CHECK(pthread_create(&tr, NULL, reader, &out) == 0, "reader thread");
    lmtpd_session(sv[1]);           /* closes sv[1] */
    pthread_join(tw, NULL);
    pthread_join(tr, NULL);
    close(sv[0]);
    check_replies(out.out ? out.out : "", out.out_len);
    free(out.out);
    clean_dir(maildir);
    return 0;
}
