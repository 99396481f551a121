/*
 * session.c — one LMTP session (RFC 2033), in its own thread.
 *
 * Commands: LHLO, MAIL FROM (SIZE, BODY=7BIT/8BITMIME), RCPT TO, DATA, RSET,
 * NOOP, VRFY (refused), QUIT; HELO/EHLO are refused as RFC 2033 section 4.1
 * asks. Extensions advertised: PIPELINING (RFC 2920), ENHANCEDSTATUSCODES
 * (RFC 2034, every reply carries one), 8BITMIME (RFC 6152), SIZE (RFC 1870).
 *
 * Pipelining: replies are queued and flushed only when the input buffer is
 * empty (before a read could block) and after DATA's 354, so a client that
 * sends MAIL, RCPT... DATA in one packet gets its replies in one packet.
 *
 * Limits (config <daemon>): a command line over max-line-bytes gets
 * 500 5.5.2 and is skipped; a message line over max-data-line-bytes or a
 * message over max-message-bytes is read to its end and refused per
 * recipient (552 5.3.4, 554 5.6.0), nothing is kept; idle-timeout while
 * waiting for a command, command-timeout for each read inside DATA, then
 * 421 4.4.2 and the connection is closed. When the daemon drains
 * (SIGTERM), a session waiting for a command gets 421 4.3.2.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "lmtpd.h"

#define INBUF 65536

struct conn {
    int fd;
    char in[INBUF];
    size_t start, end;
    char *out;
    size_t out_len, out_cap;
    bool dead;                    /* write failed or peer gone */
};

struct bigline { char *p; size_t n, cap; };

enum rd { RD_LINE, RD_TOOLONG, RD_TIMEOUT, RD_EOF, RD_DRAIN };

static void out_add(struct conn *c, const char *s, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap * 2 : 1024;
        while (cap < c->out_len + n)
            cap *= 2;
        char *p = realloc(c->out, cap);
        if (!p) {
            c->dead = true;
            return;
        }
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
}

static void reply(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(struct conn *c, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 3)
        n = (int)sizeof line - 3;
    line[n++] = '\r';
    line[n++] = '\n';
    out_add(c, line, (size_t)n);
}

static void flush(struct conn *c)
{
    size_t off = 0;
    while (off < c->out_len && !c->dead) {
        ssize_t w = send(c->fd, c->out + off, c->out_len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            c->dead = true;
            break;
        }
        off += (size_t)w;
    }
    c->out_len = 0;
}

/* Fill the input buffer: TIMEOUT seconds; WATCH_DRAIN: also wake when the
 * daemon starts draining. */
static enum rd fill(struct conn *c, long timeout, bool watch_drain)
{
    if (c->out_len)
        flush(c);
    if (c->dead)
        return RD_EOF;
    if (c->start > 0) {
        memmove(c->in, c->in + c->start, c->end - c->start);
        c->end -= c->start;
        c->start = 0;
    }
    struct pollfd p[2] = { { c->fd, POLLIN, 0 }, { lmtpd.drain_fd, POLLIN, 0 } };
    for (;;) {
        int r = poll(p, watch_drain ? 2 : 1, (int)(timeout > 0 ? timeout * 1000 : -1));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return RD_EOF;
        if (r == 0)
            return RD_TIMEOUT;
        if (watch_drain && p[1].revents)
            return RD_DRAIN;
        break;
    }
    ssize_t n;
    do
        n = recv(c->fd, c->in + c->end, sizeof c->in - c->end, 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return RD_EOF;
    c->end += (size_t)n;
    return RD_LINE;
}

/* Read one line (without its CRLF or LF) into *LINE and *LEN, pointing into a
 * buffer valid until the next read. A line longer than MAX is consumed to
 * its end and reported as RD_TOOLONG. */
static enum rd read_line(struct conn *c, size_t max, long timeout, bool watch_drain,
                         char **line, size_t *len, struct bigline *big)
{
    bool toolong = false;
    big->n = 0;
    for (;;) {
        char *s = c->in + c->start;
        size_t avail = c->end - c->start;
        char *nl = memchr(s, '\n', avail);
        if (nl) {
            size_t n = (size_t)(nl - s);
            c->start += n + 1;
            if (toolong || big->n + n > max)
                return RD_TOOLONG;
            if (big->n) {   /* a line longer than the input buffer */
                if (big->n + n > big->cap) {
                    size_t cap = big->n + n;
                    char *p = realloc(big->p, cap + 1);
                    if (!p)
                        return RD_EOF;
                    big->p = p;
                    big->cap = cap;
                }
                memcpy(big->p + big->n, s, n);
                big->n += n;
                s = big->p;
                n = big->n;
            }
            if (n && s[n - 1] == '\r')
                n--;
            s[n] = '\0';
            *line = s;
            *len = n;
            return RD_LINE;
        }
        /* no end of line yet */
        if (avail == sizeof c->in || (c->start == 0 && avail > max)) {
            /* keep what fits the limit, drop the rest */
            if (!toolong && big->n + avail <= max) {
                if (big->n + avail > big->cap) {
                    size_t cap = big->cap ? big->cap * 2 : 2 * INBUF;
                    while (cap < big->n + avail)
                        cap *= 2;
                    char *p = realloc(big->p, cap + 1);
                    if (!p)
                        return RD_EOF;
                    big->p = p;
                    big->cap = cap;
                }
                memcpy(big->p + big->n, s, avail);
                big->n += avail;
            } else {
                toolong = true;
            }
            c->start = c->end = 0;
        }
        enum rd r = fill(c, timeout, watch_drain && !toolong && big->n == 0);
        if (r != RD_LINE)
            return r;
    }
}

/* Extract the address between < and > after a "FROM:"/"TO:" prefix.
 * Returns a pointer past '>' (parameters follow) or NULL on a syntax error. */
static char *parse_path(char *arg, char **addr)
{
    while (*arg == ' ')
        arg++;
    if (*arg != '<')
        return NULL;
    char *end = strchr(arg, '>');
    if (!end)
        return NULL;
    *end = '\0';
    *addr = arg + 1;
    for (char *p = *addr; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p == 0x7f)
            return NULL;
    return end + 1;
}

static bool ieq_prefix(const char *s, const char *prefix)
{
    for (; *prefix; s++, prefix++) {
        unsigned char a = (unsigned char)*s, b = (unsigned char)*prefix;
        if (a >= 'a' && a <= 'z')
            a = (unsigned char)(a - 32);
        if (a != b)
            return false;
    }
    return true;
}

static bool accepted(const struct lmtpd_conf *conf, const char *norm)
{
    if (conf->sent_address && strcmp(norm, conf->sent_address) == 0)
        return true;
    const char *list = conf->accept ? conf->accept : "*";
    const char *at = strrchr(norm, '@');
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        size_t n = strcspn(p, " ,\t");
        if (n == 0)
            break;
        if (n == 1 && *p == '*')
            return true;
        if (*p == '@' && at && strlen(at) == n && strncasecmp(at, p, n) == 0)
            return true;
        if (strlen(norm) == n && strncasecmp(norm, p, n) == 0)
            return true;
        p += n;
    }
    return false;
}

struct txn {
    bool mail;
    char *sender;
    char **rcpts;
    size_t n_rcpts;
};

static void txn_reset(struct txn *t)
{
    free(t->sender);
    for (size_t i = 0; i < t->n_rcpts; i++)
        free(t->rcpts[i]);
    free(t->rcpts);
    memset(t, 0, sizeof *t);
}

static unsigned long next_qid(char *buf, size_t size)
{
    unsigned long n = atomic_fetch_add(&lmtpd.seq, 1) + 1;
    snprintf(buf, size, "%08lX%06lX", (unsigned long)time(NULL), n & 0xffffff);
    return n;
}

/* Read the message after 354 up to the lone dot; returns false when the
 * connection must be dropped (timeout, EOF). *DATA gets the message with
 * LF line ends, dot-unstuffed, unless it was over a limit (*OVER: 1 size,
 * 2 line length). */
static bool read_data(struct conn *c, const struct lmtpd_conf *conf, char **data,
                      size_t *len, int *over, bool *timed_out)
{
    struct bigline big = { NULL, 0, 0 };
    size_t cap = 0, n = 0;
    char *buf = NULL;
    *over = 0;
    *timed_out = false;
    size_t maxmsg = (size_t)conf->max_message_bytes;
    for (;;) {
        char *line;
        size_t ll;
        enum rd r = read_line(c, (size_t)conf->max_data_line_bytes, conf->command_timeout,
                              false, &line, &ll, &big);
        if (r == RD_TOOLONG) {
            if (!*over)
                *over = 2;
            continue;
        }
        if (r != RD_LINE) {
            *timed_out = r == RD_TIMEOUT;
            free(buf);
            free(big.p);
            return false;
        }
        if (ll == 1 && line[0] == '.')
            break;
        if (ll && line[0] == '.') {   /* RFC 5321 4.5.2 transparency */
            line++;
            ll--;
        }
        if (*over)
            continue;
        if (n + ll + 1 > maxmsg) {
            *over = 1;
            continue;
        }
        if (n + ll + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 16384;
            while (ncap < n + ll + 1)
                ncap *= 2;
            char *p = realloc(buf, ncap + 1);
            if (!p) {
                *over = 1;   /* treat as too big for us now */
                continue;
            }
            buf = p;
            cap = ncap;
        }
        memcpy(buf + n, line, ll);
        n += ll;
        buf[n++] = '\n';
    }
    free(big.p);
    if (*over) {
        free(buf);
        buf = NULL;
        n = 0;
    }
    if (!*over && !buf) {
        buf = malloc(1);
        if (!buf)
            *over = 1;
    }
    if (buf)
        buf[n] = '\0';
    *data = buf;
    *len = n;
    return true;
}

void lmtpd_session(int fd)
{
    struct conn *c = calloc(1, sizeof *c);
    struct lmtpd_worker worker = { NULL, NULL };
    if (!c) {
        close(fd);
        return;
    }
    c->fd = fd;
    struct txn t = { 0 };
    bool lhlo = false;
    struct bigline big = { NULL, 0, 0 };
    struct lmtpd_conf *conf = lmtpd_conf_get();
    /* a client that stops reading its replies cannot hold us either */
    struct timeval snd = { conf->command_timeout, 0 };
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd);
    reply(c, "220 %s LMTP candor-lmtpd ready", lmtpd.hostname);

    while (!c->dead) {
        char *line;
        size_t ll;
        /* between commands: pick up a reloaded configuration */
        if (!t.mail)
            conf = lmtpd_conf_refresh(conf);
        if (atomic_load(&lmtpd.draining)) {
            reply(c, "421 4.3.2 %s shutting down, try again later", lmtpd.hostname);
            break;
        }
        enum rd r = read_line(c, (size_t)conf->max_line_bytes, conf->idle_timeout, true,
                              &line, &ll, &big);
        if (r == RD_DRAIN) {
            reply(c, "421 4.3.2 %s shutting down, try again later", lmtpd.hostname);
            break;
        }
        if (r == RD_TIMEOUT) {
            reply(c, "421 4.4.2 %s idle timeout, closing connection", lmtpd.hostname);
            break;
        }
        if (r == RD_EOF)
            break;
        if (r == RD_TOOLONG) {
            reply(c, "500 5.5.2 line too long");
            continue;
        }
        if (atomic_load(&lmtpd.draining)) {
            reply(c, "421 4.3.2 %s shutting down, try again later", lmtpd.hostname);
            break;
        }
        if (ieq_prefix(line, "LHLO") && (line[4] == ' ' || line[4] == '\0')) {
            if (line[4] == '\0' || line[5] == '\0') {
                reply(c, "501 5.5.4 LHLO needs a host name");
                continue;
            }
            txn_reset(&t);
            lhlo = true;
            reply(c, "250-%s", lmtpd.hostname);
            reply(c, "250-PIPELINING");
            reply(c, "250-ENHANCEDSTATUSCODES");
            reply(c, "250-8BITMIME");
            reply(c, "250 SIZE %ld", conf->max_message_bytes);
        } else if (ieq_prefix(line, "HELO") || ieq_prefix(line, "EHLO")) {
            reply(c, "500 5.5.1 this is an LMTP server: use LHLO");
        } else if (ieq_prefix(line, "MAIL FROM:")) {
            if (!lhlo) {
                reply(c, "503 5.5.1 LHLO first");
                continue;
            }
            if (t.mail) {
                reply(c, "503 5.5.1 nested MAIL command");
                continue;
            }
            char *addr, *params = parse_path(line + 10, &addr);
            if (!params) {
                reply(c, "501 5.1.7 bad sender address syntax");
                continue;
            }
            bool bad = false, toobig = false;
            char *save = NULL;   /* strtok_r: sessions run in parallel threads */
            for (char *tok = strtok_r(params, " ", &save); tok;
                 tok = strtok_r(NULL, " ", &save)) {
                if (ieq_prefix(tok, "SIZE=")) {
                    char *e;
                    unsigned long long v = strtoull(tok + 5, &e, 10);
                    if (*e || e == tok + 5)
                        bad = true;
                    else if (v > (unsigned long long)conf->max_message_bytes)
                        toobig = true;
                } else if (ieq_prefix(tok, "BODY=")) {
                    if (strcasecmp(tok + 5, "7BIT") != 0 && strcasecmp(tok + 5, "8BITMIME") != 0)
                        bad = true;
                } else {
                    bad = true;
                }
            }
            if (bad) {
                reply(c, "555 5.5.4 unsupported MAIL parameter");
                continue;
            }
            if (toobig) {
                reply(c, "552 5.3.4 message size exceeds the limit of %ld bytes",
                      conf->max_message_bytes);
                continue;
            }
            t.sender = strdup(addr);
            if (!t.sender) {
                reply(c, "451 4.3.0 out of memory");
                continue;
            }
            t.mail = true;
            reply(c, "250 2.1.0 sender ok");
        } else if (ieq_prefix(line, "RCPT TO:")) {
            if (!t.mail) {
                reply(c, "503 5.5.1 MAIL first");
                continue;
            }
            char *addr, *params = parse_path(line + 8, &addr);
            if (!params || !*addr || !strchr(addr, '@')) {
                reply(c, "501 5.1.3 bad recipient address syntax");
                continue;
            }
            while (*params == ' ')
                params++;
            if (*params) {
                reply(c, "555 5.5.4 unsupported RCPT parameter");
                continue;
            }
            if ((long)t.n_rcpts >= conf->max_recipients) {
                reply(c, "452 4.5.3 too many recipients");
                continue;
            }
            char *norm = lmtpd_addr_norm(addr);
            if (!norm) {
                reply(c, "451 4.3.0 out of memory");
                continue;
            }
            if (!accepted(conf, norm)) {
                free(norm);
                reply(c, "550 5.1.1 <%s>: no such mailbox here", addr);
                continue;
            }
            char **v = realloc(t.rcpts, (t.n_rcpts + 1) * sizeof *v);
            if (!v) {
                free(norm);
                reply(c, "451 4.3.0 out of memory");
                continue;
            }
            t.rcpts = v;
            t.rcpts[t.n_rcpts++] = norm;
            reply(c, "250 2.1.5 recipient ok");
        } else if (ieq_prefix(line, "DATA") && line[4] == '\0') {
            if (!t.mail) {
                reply(c, "503 5.5.1 MAIL first");
                continue;
            }
            if (t.n_rcpts == 0) {
                reply(c, "503 5.5.1 no valid recipients");
                continue;
            }
            double cpu0 = lmtpd_cpu_now(), wall0 = lmtpd_wall_now();
            reply(c, "354 2.0.0 send the message, end with a line holding only a dot");
            flush(c);
            char *data;
            size_t len;
            int over;
            bool timed_out;
            if (!read_data(c, conf, &data, &len, &over, &timed_out)) {
                if (timed_out) {
                    reply(c, "421 4.4.2 %s timeout during DATA, closing connection",
                          lmtpd.hostname);
                    lmtpd_log("-: connection dropped during DATA: timeout");
                }
                break;
            }
            char qid[32];
            next_qid(qid, sizeof qid);
            if (over) {
                for (size_t i = 0; i < t.n_rcpts; i++) {
                    if (over == 1)
                        reply(c, "552 5.3.4 message size exceeds the limit of %ld bytes",
                              conf->max_message_bytes);
                    else
                        reply(c, "554 5.6.0 message has a line longer than %ld bytes",
                              conf->max_data_line_bytes);
                }
                lmtpd_log("%s: from=<%s> nrcpt=%zu status=refused reason=%s", qid, t.sender,
                          t.n_rcpts, over == 1 ? "too_big" : "line_too_long");
            } else {
                enum lmtpd_outcome *res = calloc(t.n_rcpts, sizeof *res);
                if (!res) {
                    for (size_t i = 0; i < t.n_rcpts; i++)
                        reply(c, "451 4.3.0 out of memory");
                } else {
                    struct lmtpd_envelope env = { t.sender, (const char *const *)t.rcpts,
                                                  t.n_rcpts };
                    struct lmtpd_pending ack;
                    lmtpd_deliver(&worker, conf, qid, data, len, &env, res, cpu0, wall0, &ack);
                    for (size_t i = 0; i < t.n_rcpts; i++) {
                        if (res[i] == LMTPD_DELIVERED)
                            reply(c, "250 2.0.0 <%s> delivered as %s", t.rcpts[i], qid);
                        else if (res[i] == LMTPD_DISKFULL)
                            reply(c, "452 4.3.1 <%s> insufficient disk space, try again later",
                                  t.rcpts[i]);
                        else
                            reply(c, "451 4.3.0 <%s> temporary local failure, try again later",
                                  t.rcpts[i]);
                    }
                    free(res);
                    if (ack.key || ack.ticket) {
                        flush(c);
                        lmtpd_deliver_finish(&worker, conf, qid, &ack);
                    }
                }
            }
            free(data);
            txn_reset(&t);
        } else if (ieq_prefix(line, "RSET") && line[4] == '\0') {
            txn_reset(&t);
            reply(c, "250 2.0.0 ok");
        } else if (ieq_prefix(line, "NOOP")) {
            reply(c, "250 2.0.0 ok");
        } else if (ieq_prefix(line, "VRFY")) {
            reply(c, "502 5.5.1 VRFY is disabled");
        } else if (ieq_prefix(line, "QUIT") && line[4] == '\0') {
            reply(c, "221 2.0.0 %s closing connection", lmtpd.hostname);
            break;
        } else {
            reply(c, "500 5.5.2 command not recognised");
        }
    }
    flush(c);
    txn_reset(&t);
    lmtpd_worker_close(&worker);
    lmtpd_conf_put(conf);
    free(big.p);
    free(c->out);
    close(fd);
    free(c);
}
