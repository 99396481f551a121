/*
 * test-limits.c — hostile input against every limit (issue 6), table-driven.
 * Inputs are generated at run time (no big files in the tree). Four tables:
 *
 *   limit_rows    each limit on a message: a named default (CANDOR_DEFAULT_*
 *                 in candor.h), an option (candor_ctx_options_t) and a
 *                 <limits> attribute; the input just over a small value is
 *                 refused with CANDOR_ELIMIT or parsed with an `errors`
 *                 entry, while the same input under the defaults parses
 *                 cleanly (so the limit, not the input, is what is seen);
 *   config_rows   the configuration's own size (max_config_bytes, an option
 *                 only: it is read before the config) and <limits> values
 *                 out of range;
 *   rule_rows     PCRE2's limits, set by <rules match-limit depth-limit
 *                 max-match-bytes> (named defaults in rules.c), and the
 *                 regular-expression bombs: refused at load, or stopped at
 *                 a limit with a "rules: ..." entry in the triage errors,
 *                 while the same input under a higher limit is not (the
 *                 depth limit under JIT, too: it sizes the JIT stack);
 *   hostile_rows  the big inputs at the default limits: a 50 MB message, a
 *                 MIME tree 10,000 parts deep, a 1 MB header, base64 bombs.
 *
 * Every row prints how long it took (never asserted: the machine's speed
 * is not the library's); a watchdog turns a hang into a failure.
 * `test-limits` runs all but the big inputs (suite unit, also under ASan
 * and valgrind); `test-limits hostile` runs hostile_rows (suite hostile).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include "common.h"
#include "internal.h"
#include "ctx.h"
#include "text.h"

#define WATCHDOG_SECONDS 600   /* a hang, not a slow machine */

static bool parser_missing, triage_missing, text_missing;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *datadir_file(const char *name)
{
    static char buf[1024];
    const char *d = getenv("CANDOR_DATADIR");
    snprintf(buf, sizeof buf, "%s/%s", d ? d : "lib/data", name);
    return buf;
}

/* A context on CONFIG (NULL: the shipped one) with the options in O (NULL:
 * none); NULL and the error printed when it does not load. */
static struct candor_ctx *ctx_with(const char *config, const candor_ctx_options_t *o)
{
    candor_ctx_options_t opts = CANDOR_CTX_OPTIONS_INIT;
    if (o)
        opts = *o;
    opts.config_path = config ? config : datadir_file("candor.xml");
    struct candor_ctx *ctx = NULL;
    if (candor_ctx_new(&ctx, &opts) != CANDOR_OK)
        fprintf(stderr, "ctx: %s\n", candor_errmsg());
    return ctx;
}

/* A configuration file in a fresh directory: BODY inside <candor>, from
 * line 2 on. Free with config_remove(). */
struct config_file {
    char dir[400];
    char path[512];
};

static bool config_write(struct config_file *cf, const char *body)
{
    const char *dir = test_tmpdir();
    if (!dir)
        return false;
    snprintf(cf->dir, sizeof cf->dir, "%s", dir);
    snprintf(cf->path, sizeof cf->path, "%s/limits.xml", dir);
    FILE *f = fopen(cf->path, "w");
    if (!f)
        return false;
    fprintf(f, "<candor version=\"1\">\n%s</candor>\n", body);
    return fclose(f) == 0;
}

static void config_remove(struct config_file *cf)
{
    unlink(cf->path);
    rmdir(cf->dir);
}

/* ---- inputs: each generator appends one message to B, sized by N ---- */

static void put_head(struct candor_buf *b, const char *ctype)
{
    candor__buf_puts(b, "From: Mallory <mallory@attacker.example>\n"
                        "To: support@shop.example\n"
                        "Subject: limits\n"
                        "Date: Thu, 26 Nov 2026 10:00:00 +0000\n"
                        "Message-ID: <limits@attacker.example>\n"
                        "MIME-Version: 1.0\n");
    candor__buf_printf(b, "Content-Type: %s\n\n", ctype);
}

/* N extra header fields. */
static void gen_headers(struct candor_buf *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        candor__buf_printf(b, "X-Filler-%zu: value %zu\n", i, i);
    put_head(b, "text/plain");
    candor__buf_puts(b, "Where is my order?\n");
}

/* N bytes of Received fields (many fields and a big header at once). */
static void gen_received(struct candor_buf *b, size_t n)
{
    for (unsigned i = 0; b->len < n; i++)
        candor__buf_printf(b, "Received: from a%u.example by b.example; "
                              "Thu, 26 Nov 2026 10:00:00 +0000\n", i);
    put_head(b, "text/plain");
    candor__buf_puts(b, "Where is my order?\n");
}

/* One field of N bytes, folded into 70-byte lines. */
static void gen_long_header(struct candor_buf *b, size_t n)
{
    candor__buf_puts(b, "X-Long:");
    for (size_t i = 0; i < n; i += 70)
        candor__buf_puts(b, " aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n");
    put_head(b, "text/plain");
    candor__buf_puts(b, "Where is my order?\n");
}

/* A Subject of N bytes of RFC 2047 words on one line. */
static void gen_encoded_subject(struct candor_buf *b, size_t n)
{
    candor__buf_puts(b, "Subject: =?utf-8?q?");
    while (b->len < n)
        candor__buf_puts(b, "=C3=A9t=C3=A9?= =?utf-8?q?");
    candor__buf_puts(b, "end?=\n");
    put_head(b, "text/plain");
    candor__buf_puts(b, "Where is my order?\n");
}

/* multipart nested N deep, text at the bottom. */
static void gen_depth(struct candor_buf *b, size_t n)
{
    put_head(b, "multipart/mixed; boundary=\"d0\"");
    for (size_t i = 1; i <= n; i++)
        candor__buf_printf(b, "--d%zu\nContent-Type: multipart/mixed; boundary=\"d%zu\"\n\n",
                           i - 1, i);
    candor__buf_printf(b, "--d%zu\nContent-Type: text/plain\n\nWhere is my order?\n", n);
    for (size_t i = n + 1; i-- > 0;)
        candor__buf_printf(b, "--d%zu--\n", i);
}

/* The same depth without boundaries: message/rfc822 inside message/rfc822. */
static void gen_rfc822_depth(struct candor_buf *b, size_t n)
{
    put_head(b, "message/rfc822");
    for (size_t i = 0; i < n; i++)
        candor__buf_puts(b, "Subject: inner\nContent-Type: message/rfc822\n\n");
    candor__buf_puts(b, "Subject: bottom\n\nWhere is my order?\n");
}

/* multipart/mixed with N sibling parts. */
static void gen_parts(struct candor_buf *b, size_t n)
{
    put_head(b, "multipart/mixed; boundary=\"p\"");
    candor__buf_puts(b, "--p\nContent-Type: text/plain\n\nWhere is my order?\n");
    for (size_t i = 1; i < n; i++)
        candor__buf_printf(b, "--p\nContent-Type: application/octet-stream\n"
                              "Content-Disposition: attachment; filename=\"f%zu.bin\"\n\nxx\n", i);
    candor__buf_puts(b, "--p--\n");
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* S (N bytes) in base64: 76-character lines, or all on one line. */
static void base64_into(struct candor_buf *out, const unsigned char *s, size_t n, bool lines)
{
    char line[80];
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        line[k++] = b64[v >> 18 & 63];
        line[k++] = b64[v >> 12 & 63];
        line[k++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
        line[k++] = i + 2 < n ? b64[v & 63] : '=';
        if (k == 76 || i + 3 >= n) {
            if (lines)
                line[k++] = '\n';
            candor__buf_append(out, line, k);
            k = 0;
        }
    }
    if (!lines)
        candor__buf_putc(out, '\n');
}

static void attachment_head(struct candor_buf *b, int i)
{
    candor__buf_printf(b, "--o\nContent-Type: application/octet-stream\n"
                          "Content-Disposition: attachment; filename=\"z%d.bin\"\n"
                          "Content-Transfer-Encoding: base64\n\n", i);
}

/* Base64 attachments decoding to N zero bytes in all: one in 76-character
 * lines (N < 1 MB), else four of N / 4. */
static void gen_base64(struct candor_buf *b, size_t n)
{
    unsigned char *zeros = calloc(1, n);
    if (!zeros) {
        b->oom = true;
        return;
    }
    put_head(b, "multipart/mixed; boundary=\"o\"");
    candor__buf_puts(b, "--o\nContent-Type: text/plain\n\nWhere is my order?\n");
    int parts = n < (1u << 20) ? 1 : 4;
    for (int i = 0; i < parts; i++) {
        attachment_head(b, i);
        base64_into(b, zeros, n / (size_t)parts, true);
    }
    candor__buf_puts(b, "--o--\n");
    free(zeros);
}

/* One base64 attachment of N zero bytes on a single line. */
static void gen_base64_one_line(struct candor_buf *b, size_t n)
{
    unsigned char *zeros = calloc(1, n);
    if (!zeros) {
        b->oom = true;
        return;
    }
    put_head(b, "multipart/mixed; boundary=\"o\"");
    candor__buf_puts(b, "--o\nContent-Type: text/plain\n\nSee attached.\n");
    attachment_head(b, 0);
    base64_into(b, zeros, n, false);
    candor__buf_puts(b, "--o--\n");
    free(zeros);
}

/* N layers of message/rfc822, each base64-encoded inside the next, around
 * 512 kB of text: 16 layers are 51 MB of mail decoding to about 150 MB. */
static void gen_base64_nested(struct candor_buf *b, size_t n)
{
    struct candor_buf cur = CANDOR_BUF_INIT;
    candor__buf_puts(&cur, "Subject: core\nContent-Type: text/plain\n\n");
    while (cur.len < 512u * 1024)
        candor__buf_puts(&cur, "Where is my order? Where is my order? Where is my order?\n");
    for (size_t layer = 0; layer < n; layer++) {
        struct candor_buf next = CANDOR_BUF_INIT;
        if (layer + 1 == n)
            put_head(&next, "multipart/mixed; boundary=\"o\"");
        else
            candor__buf_puts(&next, "Subject: layer\n"
                                    "Content-Type: multipart/mixed; boundary=\"o\"\n\n");
        candor__buf_puts(&next, "--o\nContent-Type: message/rfc822\n"
                                "Content-Transfer-Encoding: base64\n\n");
        base64_into(&next, (const unsigned char *)cur.data, cur.len, true);
        candor__buf_puts(&next, "--o--\n");
        if (cur.oom)
            next.oom = true;
        candor__buf_free(&cur);
        cur = next;
    }
    candor__buf_append(b, cur.data, cur.len);
    candor__buf_free(&cur);
}

/* A body line of N bytes. */
static void gen_line(struct candor_buf *b, size_t n)
{
    put_head(b, "text/plain");
    candor__buf_puts(b, "Where is my order?\n");
    for (size_t i = 0; i < n; i++)
        candor__buf_putc(b, i % 8 == 7 ? ' ' : 'x');
    candor__buf_puts(b, "\n");
}

/* N bytes of plain text in short lines. */
static void gen_text(struct candor_buf *b, size_t n)
{
    put_head(b, "text/plain");
    for (size_t i = 0; i < n; i += 40)
        candor__buf_puts(b, "Where is my order? It is late again.\n");
}

/* A long thread: N bytes of quoted lines under one request. */
static void gen_thread(struct candor_buf *b, size_t n)
{
    put_head(b, "text/plain; charset=utf-8");
    candor__buf_puts(b, "I want a refund for order A12345.\n\n");
    while (b->len < n)
        candor__buf_puts(b, "> and again and again, the same quoted line of a long thread\n");
}

/* HTML nested N elements deep. */
static void gen_html(struct candor_buf *b, size_t n)
{
    put_head(b, "text/html; charset=utf-8");
    candor__buf_puts(b, "<html><body>");
    for (size_t i = 0; i < n; i++)
        candor__buf_puts(b, "<div>");
    candor__buf_puts(b, "Where is my order?");
    for (size_t i = 0; i < n; i++)
        candor__buf_puts(b, "</div>");
    candor__buf_puts(b, "</body></html>\n");
}

/* A message of N bytes in all. */
static void gen_size(struct candor_buf *b, size_t n)
{
    put_head(b, "text/plain");
    while (b->len < n)
        candor__buf_puts(b, "Where is my order? It is late again.\n");
}

/* N/2 times "ab", then " c" (deep backtracking for (a|b)*c). */
static void gen_ab(struct candor_buf *b, size_t n)
{
    put_head(b, "text/plain");
    for (size_t i = 0; i < n; i += 2)
        candor__buf_puts(b, "ab");
    candor__buf_puts(b, " c\n");
}

/* N/2 times "ab", then "c": (a|b)*c matches at once, one level of
 * backtracking state per letter (a deep match, not a backtracking bomb). */
static void gen_ab_c(struct candor_buf *b, size_t n)
{
    put_head(b, "text/plain");
    for (size_t i = 0; i < n; i += 2)
        candor__buf_puts(b, "ab");
    candor__buf_puts(b, "c\n");
}

/* A header field X-Deep of N/2 times "ab", then "c". */
static void gen_x_deep_header(struct candor_buf *b, size_t n)
{
    candor__buf_puts(b, "X-Deep: ");
    for (size_t i = 0; i < n; i += 2)
        candor__buf_puts(b, "ab");
    candor__buf_puts(b, "c\n");
    put_head(b, "text/plain");
    candor__buf_puts(b, "Where is my order?\n");
}

/* Bait for (x+x+)+y: N lines of a long run of x with no y right after it,
 * and the same in the Subject. */
static void gen_x_run(struct candor_buf *b, size_t n)
{
    candor__buf_puts(b, "From: Mallory <mallory@attacker.example>\nTo: support@shop.example\n"
                        "Subject: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx! y xy\n\n");
    for (size_t i = 0; i < n; i++)
        candor__buf_puts(b, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx! y xy\n");
}

/* A body of N x and no y right after them. */
static void gen_x_short(struct candor_buf *b, size_t n)
{
    put_head(b, "text/plain");
    for (size_t i = 0; i < n; i++)
        candor__buf_putc(b, 'x');
    candor__buf_puts(b, "! y\n");
}

/* An exact-size copy of B (no NUL after it, so ASan sees over-reads). */
static char *exact_copy(const struct candor_buf *b)
{
    char *raw = malloc(b->len ? b->len : 1);
    if (raw)
        memcpy(raw, b->data, b->len);
    return raw;
}

/* ---- table 1: limits on a message ---- */

struct limit_row {
    const char *name;          /* the <limits> attribute */
    size_t opt_off;            /* the field in candor_ctx_options_t */
    size_t ctx_off;            /* the field in struct candor_limits */
    size_t dflt;               /* the CANDOR_DEFAULT_* value */
    size_t small;              /* the limit the test sets */
    void (*gen)(struct candor_buf *b, size_t n);
    size_t over;               /* GEN's argument that goes over SMALL */
};

/* One row: the attribute, the field (option and context), the default's
 * name (CANDOR_DEFAULT_...), the small limit set, the generator and its argument. */
#define LIMIT_ROW(attr, f, dflt, small, gen, over) \
    { attr, offsetof(candor_ctx_options_t, f), offsetof(struct candor_limits, f), \
      CANDOR_DEFAULT_##dflt, small, gen, over }

static const struct limit_row limit_rows[] = {
    LIMIT_ROW("max-message-bytes", max_message_bytes, MAX_MESSAGE_BYTES, 4096, gen_size, 20000),
    LIMIT_ROW("max-header-bytes", max_header_bytes, MAX_HEADER_BYTES, 2048, gen_long_header, 10000),
    LIMIT_ROW("max-headers", max_headers, MAX_HEADERS, 20, gen_headers, 100),
    LIMIT_ROW("max-mime-depth", max_mime_depth, MAX_MIME_DEPTH, 3, gen_depth, 10),
    LIMIT_ROW("max-mime-parts", max_mime_parts, MAX_MIME_PARTS, 5, gen_parts, 40),
    LIMIT_ROW("max-line-bytes", max_line_bytes, MAX_LINE_BYTES, 1000, gen_line, 20000),
    LIMIT_ROW("max-decoded-bytes", max_decoded_bytes, MAX_DECODED_BYTES, 10000, gen_base64, 200000),
    LIMIT_ROW("max-text-bytes", max_text_bytes, MAX_TEXT_BYTES, 1000, gen_text, 20000),
    LIMIT_ROW("max-html-depth", max_html_depth, MAX_HTML_DEPTH, 10, gen_html, 100),
};
#define N_LIMIT_ROWS (sizeof limit_rows / sizeof limit_rows[0])

static struct candor_ctx *ctx_with_limit(const struct limit_row *r, size_t value)
{
    candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
    *(size_t *)((char *)&o + r->opt_off) = value;
    return ctx_with(NULL, &o);
}

static size_t ctx_limit(const struct candor_ctx *ctx, size_t off)
{
    return *(const size_t *)((const char *)&ctx->limits + off);
}

/* The defaults are the named ones, and the option and the config
 * attribute each move every limit. */
static void test_named_defaults_and_options(void)
{
    struct candor_ctx *d = ctx_with(NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(d->limits.max_config_bytes, CANDOR_DEFAULT_MAX_CONFIG_BYTES);
    for (size_t i = 0; i < N_LIMIT_ROWS; i++) {
        const struct limit_row *r = &limit_rows[i];
        CU_ASSERT_EQUAL(ctx_limit(d, r->ctx_off), r->dflt);
        CU_ASSERT_EQUAL(candor_ctx_limit(d, r->name), r->dflt);
        struct candor_ctx *c = ctx_with_limit(r, r->small);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        if (ctx_limit(c, r->ctx_off) != r->small)
            fprintf(stderr, "%s: option not applied\n", r->name);
        CU_ASSERT_EQUAL(ctx_limit(c, r->ctx_off), r->small);
        /* the public getter, by attribute name ('_' for '-' too) */
        CU_ASSERT_EQUAL(candor_ctx_limit(c, r->name), r->small);
        char under[64];
        snprintf(under, sizeof under, "%s", r->name);
        for (char *p = under; *p; p++)
            if (*p == '-')
                *p = '_';
        CU_ASSERT_EQUAL(candor_ctx_limit(c, under), r->small);
        candor_ctx_free(c);

        struct config_file cf;
        char body[200];
        snprintf(body, sizeof body, "<limits %s=\"%zu\"/>\n", r->name, r->small + 1);
        CU_ASSERT_FATAL(config_write(&cf, body));
        c = ctx_with(cf.path, NULL);
        CU_ASSERT_PTR_NOT_NULL(c);
        if (c) {
            CU_ASSERT_EQUAL(ctx_limit(c, r->ctx_off), r->small + 1);
            CU_ASSERT_EQUAL(candor_ctx_limit(c, r->name), r->small + 1);
        }
        candor_ctx_free(c);
        config_remove(&cf);
    }
    CU_ASSERT_EQUAL(candor_ctx_limit(d, "max-config-bytes"), CANDOR_DEFAULT_MAX_CONFIG_BYTES);
    CU_ASSERT_EQUAL(candor_ctx_limit(d, "max-message"), 0);
    CU_ASSERT_EQUAL(candor_ctx_limit(d, "max-message-bytes-"), 0);
    CU_ASSERT_EQUAL(candor_ctx_limit(d, ""), 0);
    CU_ASSERT_EQUAL(candor_ctx_limit(d, NULL), 0);
    CU_ASSERT_EQUAL(candor_ctx_limit(NULL, "max-message-bytes"), 0);
    candor_ctx_free(d);
}

/* Each row: over the small limit -> ELIMIT or an errors entry; the same
 * input under the defaults -> no error. */
static void test_each_limit_is_hit(void)
{
    if (parser_missing) {
        printf("SKIP: the message parser is not implemented yet\n");
        return;
    }
    struct candor_ctx *d = ctx_with(NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    for (size_t i = 0; i < N_LIMIT_ROWS; i++) {
        const struct limit_row *r = &limit_rows[i];
        struct candor_buf b = CANDOR_BUF_INIT;
        r->gen(&b, r->over);
        CU_ASSERT_FATAL(!b.oom);
        char *raw = exact_copy(&b);
        CU_ASSERT_PTR_NOT_NULL_FATAL(raw);

        struct candor_message *m = NULL;
        candor_status_t st = candor_message_parse(&m, d, raw, b.len);
        CU_ASSERT_EQUAL(st, CANDOR_OK);
        size_t control_errors = m ? candor_message_error_count(m) : 99;
        if (control_errors)
            fprintf(stderr, "%s: the control input has %zu errors (first: %s)\n", r->name,
                    control_errors, m ? candor_message_error(m, 0) : candor_errmsg());
        CU_ASSERT_EQUAL(control_errors, 0);
        candor_message_free(m);

        struct candor_ctx *c = ctx_with_limit(r, r->small);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        m = NULL;
        double t0 = now_s();
        st = candor_message_parse(&m, c, raw, b.len);
        double t = now_s() - t0;
        if (st == CANDOR_OK) {
            size_t n = candor_message_error_count(m);
            printf("  %-18s %6zu over %-5zu %6.3f s  parsed, errors[0] = \"%s\"\n", r->name,
                   r->over, r->small, t, n ? candor_message_error(m, 0) : "(none)");
            if (!n)
                fprintf(stderr, "%s: limit %zu not hit by %zu\n", r->name, r->small, r->over);
            CU_ASSERT(n > 0);
            const char *text = candor_message_text(m);
            if (r->opt_off == offsetof(candor_ctx_options_t, max_text_bytes) && text)
                CU_ASSERT(strlen(text) <= r->small);
        } else {
            printf("  %-18s %6zu over %-5zu %6.3f s  %s \"%s\"\n", r->name, r->over, r->small,
                   t, candor_status_str(st), candor_errmsg());
            CU_ASSERT_EQUAL(st, CANDOR_ELIMIT);
            CU_ASSERT_PTR_NULL(m);
        }
        candor_message_free(m);
        candor_ctx_free(c);
        free(raw);
        candor__buf_free(&b);
    }
    candor_ctx_free(d);
}

/* candor_message_parse_file() checks the size before it reads. */
static void test_parse_file_size(void)
{
    if (parser_missing) {
        printf("SKIP: the message parser is not implemented yet\n");
        return;
    }
    const char *dir = test_tmpdir();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char path[512];
    snprintf(path, sizeof path, "%s/big.eml", dir);
    struct candor_buf b = CANDOR_BUF_INIT;
    gen_size(&b, 20000);
    CU_ASSERT_EQUAL(candor__write_file_atomic(path, b.data, b.len), CANDOR_OK);
    struct candor_ctx *c = ctx_with_limit(&limit_rows[0], 4096);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    struct candor_message *m = NULL;
    CU_ASSERT_EQUAL(candor_message_parse_file(&m, c, path), CANDOR_ELIMIT);
    CU_ASSERT_PTR_NULL(m);
    candor_message_free(m);
    candor_ctx_free(c);
    candor__buf_free(&b);
    unlink(path);
    rmdir(dir);
}

/* HTML nesting, straight at the converter: the text is still there and
 * the cut is reported. */
static void test_html_depth_direct(void)
{
    if (text_missing) {
        printf("SKIP: HTML to text is not implemented yet\n");
        return;
    }
    struct candor_buf b = CANDOR_BUF_INIT;
    for (int i = 0; i < 5000; i++)
        candor__buf_puts(&b, "<div><span>");
    candor__buf_puts(&b, "deep text");
    CU_ASSERT_FATAL(!b.oom);
    bool truncated = false;
    char *t = candor__html_to_text(b.data, b.len, 10, 1u << 20, &truncated);
    CU_ASSERT_PTR_NOT_NULL(t);
    CU_ASSERT(truncated);
    free(t);
    truncated = true;
    t = candor__html_to_text("<p>short</p>", 12, 10, 1u << 20, &truncated);
    CU_ASSERT_PTR_NOT_NULL(t);
    CU_ASSERT(!truncated);
    free(t);
    candor__buf_free(&b);
}

/* ---- table 2: the configuration ---- */

/* The config's size (max_config_bytes: an option, not an attribute, since
 * it is read before the config is). A bigger file is ECONFIG, "file:0:". */
struct config_size_row {
    const char *what;
    size_t file_bytes;         /* padded with comments to about this */
    size_t option;             /* max_config_bytes; 0: the default */
    candor_status_t want;
};

static const struct config_size_row config_size_rows[] = {
    { "5 MB config, default 4 MB", 5u << 20, 0, CANDOR_ECONFIG },
    { "5 MB config, max_config_bytes 8 MB", 5u << 20, 8u << 20, CANDOR_OK },
    { "2 kB config, max_config_bytes 1000", 2048, 1000, CANDOR_ECONFIG },
    { "2 kB config, default", 2048, 0, CANDOR_OK },
};

static void test_config_size(void)
{
    for (size_t i = 0; i < sizeof config_size_rows / sizeof config_size_rows[0]; i++) {
        const struct config_size_row *r = &config_size_rows[i];
        struct candor_buf pad = CANDOR_BUF_INIT;
        while (pad.len < r->file_bytes)
            candor__buf_puts(&pad, "<!-- padding padding padding padding padding padding pad -->\n");
        CU_ASSERT_FATAL(!pad.oom);
        struct config_file cf;
        CU_ASSERT_FATAL(config_write(&cf, pad.data));
        candor__buf_free(&pad);
        candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
        o.config_path = cf.path;
        o.max_config_bytes = r->option;
        struct candor_ctx *c = NULL;
        double t0 = now_s();
        candor_status_t st = candor_ctx_new(&c, &o);
        printf("  %-36s %6.3f s  %s \"%s\"\n", r->what, now_s() - t0, candor_status_str(st),
               st ? candor_errmsg() : "");
        CU_ASSERT_EQUAL(st, r->want);
        if (r->want != CANDOR_OK) {
            CU_ASSERT_PTR_NULL(c);
            CU_ASSERT_PTR_NOT_NULL(strstr(candor_errmsg(), "limits.xml:0:"));
        } else if (c) {
            CU_ASSERT_EQUAL(c->limits.max_config_bytes,
                            r->option ? r->option : CANDOR_DEFAULT_MAX_CONFIG_BYTES);
            CU_ASSERT_EQUAL(candor_ctx_limit(c, "max_config_bytes"),
                            r->option ? r->option : CANDOR_DEFAULT_MAX_CONFIG_BYTES);
        }
        candor_ctx_free(c);
        config_remove(&cf);
    }
}

/* A caller built against options version 1 (no max_config_bytes) still
 * works, and the fields it does not have are not read. */
static void test_options_version_1(void)
{
    union { candor_ctx_options_t o; unsigned char bytes[sizeof(candor_ctx_options_t)]; } u;
    memset(&u, 0xA5, sizeof u);
    CU_ASSERT_EQUAL(candor_ctx_options_init(&u.o, 1), CANDOR_OK);
    CU_ASSERT_EQUAL(u.o.version, 1);
    CU_ASSERT_EQUAL(u.bytes[offsetof(candor_ctx_options_t, max_config_bytes)], 0xA5);
    u.o.config_path = datadir_file("candor.xml");
    struct candor_ctx *c = NULL;
    CU_ASSERT_EQUAL(candor_ctx_new(&c, &u.o), CANDOR_OK);
    if (c)
        CU_ASSERT_EQUAL(c->limits.max_config_bytes, CANDOR_DEFAULT_MAX_CONFIG_BYTES);
    candor_ctx_free(c);
    CU_ASSERT_EQUAL(candor_ctx_options_init(&u.o, CANDOR_CTX_OPTIONS_VERSION + 1), CANDOR_EINVAL);
    u.o.version = CANDOR_CTX_OPTIONS_VERSION + 1;
    CU_ASSERT_EQUAL(candor_ctx_new(&c, &u.o), CANDOR_EINVAL);
}

/* A <limits> value that does not fit a size_t is a config error, not a
 * wrapped or undefined conversion (fuzz-config found the UBSan case);
 * 0 and negative values are refused too. */
static void test_config_limit_values(void)
{
    static const char *const bad[] = { "0", "-5", "18446744073709551616000", "1e30", "x" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct config_file cf;
        char body[200];
        snprintf(body, sizeof body, "<limits max-headers=\"%s\"/>\n", bad[i]);
        CU_ASSERT_FATAL(config_write(&cf, body));
        candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
        o.config_path = cf.path;
        struct candor_ctx *c = NULL;
        candor_status_t st = candor_ctx_new(&c, &o);
        if (st != CANDOR_ECONFIG)
            fprintf(stderr, "max-headers=\"%s\": status %d\n", bad[i], st);
        CU_ASSERT_EQUAL(st, CANDOR_ECONFIG);
        CU_ASSERT_PTR_NOT_NULL(strstr(candor_errmsg(), "limits.xml:2:"));
        candor_ctx_free(c);
        config_remove(&cf);
    }
}

/* ---- table 3: PCRE2 limits and regular-expression bombs ---- */

#define MAILBOX "<mailbox><address>support@shop.example</address></mailbox>\n"

struct rule_row {
    const char *what;
    const char *rules;         /* the config's body: line 2 on */
    candor_status_t load;      /* what loading it gives */
    const char *load_error;    /* with this in the message (load fails) */
    void (*gen)(struct candor_buf *b, size_t n);
    size_t n;
    const char *control;       /* the same rules without the small limit: no
                                * rules entry in errors (NULL: no control) */
};

static const struct rule_row rule_rows[] = {
    /* the obvious kind is refused when the config loads (file:line) */
    { "regex bomb ^(a+)+$ in the config",
      MAILBOX "<rules>\n<rule id=\"obvious\" intent=\"refund\" weight=\"1\">^(a+)+$</rule>\n"
      "</rules>\n", CANDOR_ECONFIG, "limits.xml:4:", NULL, 0, NULL },
    /* nested quantifiers over x: no x in the load-time probes, so it
     * loads; the crafted text stops every match at the default match limit */
    { "regex bomb (x+x+)+y, crafted message",
      MAILBOX "<rules>\n<rule id=\"subtle\" intent=\"refund\" weight=\"1\">(x+x+)+y</rule>\n"
      "<rule id=\"subtle-subject\" field=\"subject\" intent=\"refund\" weight=\"1\">"
      "(x+x+)+y</rule>\n</rules>\n", CANDOR_OK, NULL, gen_x_run, 100, NULL },
    /* the match limit, made small */
    { "match-limit 1000, (x+x+)+y on 14 x",
      MAILBOX "<rules match-limit=\"1000\">\n"
      "<rule id=\"subtle\" intent=\"refund\" weight=\"1\">(x+x+)+y</rule>\n</rules>\n",
      CANDOR_OK, NULL, gen_x_short, 14,
      MAILBOX "<rules>\n"
      "<rule id=\"subtle\" intent=\"refund\" weight=\"1\">(x+x+)+y</rule>\n</rules>\n" },
    /* a small depth limit (below 512: matched by the interpreter, rules.c)
     * on 100 kB of backtracking; no control: 100 kB of (a|b)* exceeds any
     * depth-limit the config accepts, or else the match limit */
    { "depth-limit 10, (a|b)*c on 100 kB",
      MAILBOX "<rules max-match-bytes=\"200000\" depth-limit=\"10\">\n"
      "<rule id=\"deep\" intent=\"refund\" weight=\"1\">(a|b)*c</rule>\n</rules>\n",
      CANDOR_OK, NULL, gen_ab, 100000, NULL },
    /* the depth limit on a deep match that succeeds at once: 2,000 letters
     * need 2,000 levels; depth-limit 1000 stops it (interpreter: the depth
     * limit; JIT: a stack of 16 bytes a level, rules.c), 20000 lets it
     * match, under the same match limit: so the depth limit is what stops it */
    { "depth-limit 1000, (a|b)*c on 2,000 letters",
      MAILBOX "<rules depth-limit=\"1000\">\n"
      "<rule id=\"deep\" intent=\"refund\" weight=\"1\">(a|b)*c</rule>\n</rules>\n",
      CANDOR_OK, NULL, gen_ab_c, 2000,
      MAILBOX "<rules depth-limit=\"20000\">\n"
      "<rule id=\"deep\" intent=\"refund\" weight=\"1\">(a|b)*c</rule>\n</rules>\n" },
    /* the default depth-limit, 2000, against 8,000 letters (the default
     * max-match-bytes, 8192, lets them through) */
    { "default depth-limit, (a|b)*c on 8,000 letters",
      MAILBOX "<rules>\n"
      "<rule id=\"deep\" intent=\"refund\" weight=\"1\">(a|b)*c</rule>\n</rules>\n",
      CANDOR_OK, NULL, gen_ab_c, 8000,
      MAILBOX "<rules depth-limit=\"100000\">\n"
      "<rule id=\"deep\" intent=\"refund\" weight=\"1\">(a|b)*c</rule>\n</rules>\n" },
    /* a header rule stopped at a limit is reported too */
    { "depth-limit 1000, header rule on 2,000 letters",
      MAILBOX "<rules depth-limit=\"1000\">\n"
      "<rule id=\"deep-header\" field=\"header:X-Deep\" intent=\"refund\" weight=\"1\">"
      "(a|b)*c</rule>\n</rules>\n",
      CANDOR_OK, NULL, gen_x_deep_header, 2000,
      MAILBOX "<rules depth-limit=\"20000\">\n"
      "<rule id=\"deep-header\" field=\"header:X-Deep\" intent=\"refund\" weight=\"1\">"
      "(a|b)*c</rule>\n</rules>\n" },
    /* a depth-limit too small for a pattern on a few dozen bytes: refused
     * at load, saying so */
    { "depth-limit 10 with (\\w ?)+! in the config",
      MAILBOX "<rules depth-limit=\"10\">\n"
      "<rule id=\"words\" intent=\"refund\" weight=\"1\">(\\w ?)+!</rule>\n</rules>\n",
      CANDOR_ECONFIG, "depth-limit 10", NULL, 0, NULL },
};

/* The first "rules: ..." entry of the triage JSON's errors, in SHOWN. */
static bool rules_error(const char *json, char *shown, size_t size)
{
    const char *e = json ? strstr(json, "\"rules: ") : NULL;
    snprintf(shown, size, "(none)");
    if (!e)
        return false;
    const char *q = strchr(e + 1, '"');
    snprintf(shown, size, "%.*s", q ? (int)(q - e - 1) : 100, e + 1);
    return true;
}

/* Load a config of BODY (status in *LOADED, time in *T_LOAD); then parse
 * and triage GEN(N) with it (time in *T). True when the triage JSON has a
 * "rules: ..." entry in errors (in SHOWN). */
static bool run_rules(const char *body, void (*gen)(struct candor_buf *, size_t), size_t n,
                      candor_status_t *loaded, double *t_load, double *t, size_t *len,
                      char *shown, size_t size)
{
    struct config_file cf;
    snprintf(shown, size, "(none)");
    *t = 0;
    *len = 0;
    CU_ASSERT_FATAL(config_write(&cf, body));
    candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
    o.config_path = cf.path;
    struct candor_ctx *ctx = NULL;
    double t0 = now_s();
    *loaded = candor_ctx_new(&ctx, &o);
    *t_load = now_s() - t0;
    config_remove(&cf);
    if (*loaded != CANDOR_OK || !gen || parser_missing || triage_missing) {
        candor_ctx_free(ctx);
        return false;
    }
    struct candor_buf b = CANDOR_BUF_INIT;
    gen(&b, n);
    CU_ASSERT_FATAL(!b.oom);
    *len = b.len;
    alarm(WATCHDOG_SECONDS);
    t0 = now_s();
    struct candor_message *m = NULL;
    candor_status_t st = candor_message_parse(&m, ctx, b.data, b.len);
    struct candor_result *res = NULL;
    candor_envelope_t env = CANDOR_ENVELOPE_INIT;
    env.now = 1790000000;
    if (st == CANDOR_OK)
        st = candor_triage(&res, ctx, m, NULL, &env, 0);
    *t = now_s() - t0;
    alarm(0);
    CU_ASSERT_EQUAL(st, CANDOR_OK);
    char *json = NULL;
    if (res)
        CU_ASSERT_EQUAL(candor_result_to_json(res, m, NULL, &json), CANDOR_OK);
    bool hit = rules_error(json, shown, size);
    candor_free(json);
    candor_result_free(res);
    candor_message_free(m);
    candor__buf_free(&b);
    candor_ctx_free(ctx);
    return hit;
}

static void test_rule_limits(void)
{
    for (size_t i = 0; i < sizeof rule_rows / sizeof rule_rows[0]; i++) {
        const struct rule_row *r = &rule_rows[i];
        candor_status_t st;
        double t_load, t;
        size_t len;
        char shown[160];
        bool hit = run_rules(r->rules, r->gen, r->n, &st, &t_load, &t, &len, shown, sizeof shown);
        if (st != r->load)
            fprintf(stderr, "%s: load: %s\n", r->what, candor_errmsg());
        CU_ASSERT_EQUAL(st, r->load);
        if (st != CANDOR_OK) {
            printf("  %-40s load %6.3f s  %s: \"%s\"\n", r->what, t_load, candor_status_str(st),
                   candor_errmsg());
            if (r->load_error)
                CU_ASSERT_PTR_NOT_NULL(strstr(candor_errmsg(), r->load_error));
            continue;
        }
        if (parser_missing || triage_missing || !r->gen) {
            printf("  SKIP %s: parser or triage not implemented yet\n", r->what);
            continue;
        }
        printf("  %-40s %7zu bytes  parse+triage %6.3f s  errors: \"%s\"\n", r->what, len, t,
               shown);
        if (!hit)
            fprintf(stderr, "%s: no rules entry in errors\n", r->what);
        CU_ASSERT(hit);
        if (r->control) {
            hit = run_rules(r->control, r->gen, r->n, &st, &t_load, &t, &len, shown, sizeof shown);
            CU_ASSERT_EQUAL(st, CANDOR_OK);
            if (hit)
                fprintf(stderr, "%s: the control (higher limit) hits a limit too: %s\n",
                        r->what, shown);
            CU_ASSERT(!hit);
        }
    }
}

/* The offset limit the prefilter sets for a text rule (no match can start
 * after its literal) must not carry over to a header rule matched after it
 * with the same match context: it did, so "urgent" at offset 38 of X-Tag
 * was missed once "money back" had set a limit of 0. */
static void test_header_rule_offset_limit(void)
{
    if (parser_missing || triage_missing) {
        printf("SKIP: parser or triage not implemented yet\n");
        return;
    }
    struct config_file cf;
    CU_ASSERT_FATAL(config_write(&cf, MAILBOX "<rules>\n"
        "<rule id=\"money\" intent=\"refund\" weight=\"1\">\\bmoney back\\b</rule>\n"
        "<rule id=\"tag\" field=\"header:X-Tag\" intent=\"billing\" weight=\"1\">urgent</rule>\n"
        "</rules>\n"));
    struct candor_ctx *ctx = ctx_with(cf.path, NULL);
    config_remove(&cf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    static const char mail[] = "From: a@customer.example\nTo: support@shop.example\n"
        "X-Tag: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa urgent\nSubject: x\n\n"
        "money back now please\n";
    struct candor_message *m = NULL;
    struct candor_result *res = NULL;
    char *json = NULL;
    CU_ASSERT_EQUAL(candor_message_parse(&m, ctx, mail, sizeof mail - 1), CANDOR_OK);
    if (m)
        CU_ASSERT_EQUAL(candor_triage(&res, ctx, m, NULL, NULL, CANDOR_TRIAGE_EXPLAIN), CANDOR_OK);
    if (res)
        CU_ASSERT_EQUAL(candor_result_to_json(res, m, NULL, &json), CANDOR_OK);
    bool tag = json && strstr(json, "\"id\":\"tag\"");
    if (!tag)
        fprintf(stderr, "header rule not matched after a text rule: %.300s\n",
                json ? json : candor_errmsg());
    CU_ASSERT(tag);
    CU_ASSERT_PTR_NOT_NULL(json && strstr(json, "\"id\":\"money\""));
    candor_free(json);
    candor_result_free(res);
    candor_message_free(m);
    candor_ctx_free(ctx);
}

/* ---- table 4: the big inputs, default limits unless the row says ---- */

struct hostile_row {
    const char *what;
    void (*gen)(struct candor_buf *b, size_t n);
    size_t n;
    size_t max_decoded;        /* option; 0: the default */
};

static const struct hostile_row hostile_rows[] = {
    /* under the 64 MB message limit, over the 1 MB text limit */
    { "50 MB message", gen_thread, 50u << 20, 0 },
    /* limit: depth 20 */
    { "MIME tree 10,000 parts deep", gen_depth, 10000, 0 },
    { "message/rfc822 10,000 deep", gen_rfc822_depth, 10000, 0 },
    /* limit: 1 MB of header */
    { "1 MB header field (RFC 2047 words)", gen_encoded_subject, 1100u << 10, 0 },
    /* limits: 1 MB of header, 1,000 fields */
    { "1 MB header of 14,000 fields", gen_received, 1100u << 10, 0 },
    /* 51 MB decoding to about 150 MB (limits: 128 MB decoded, depth 20) */
    { "base64 bomb: 16 nested base64 layers", gen_base64_nested, 16, 0 },
    /* 40 MB of base64 on one line (limit: 1 MB lines) */
    { "base64 bomb: 40 MB on one line", gen_base64_one_line, 30u << 20, 0 },
    /* an option lowers the decoded limit */
    { "base64: 30 MB decoded, max-decoded 8 MB", gen_base64, 30u << 20, 8u << 20 },
};

/* Parse (and triage) each row under the watchdog; print the time and the
 * outcome, which must be ELIMIT or an errors entry. */
static void test_hostile_inputs(void)
{
    for (size_t i = 0; i < sizeof hostile_rows / sizeof hostile_rows[0]; i++) {
        const struct hostile_row *r = &hostile_rows[i];
        if (parser_missing) {
            printf("  SKIP %s: the message parser is not implemented yet\n", r->what);
            continue;
        }
        candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
        o.max_decoded_bytes = r->max_decoded;
        struct candor_ctx *ctx = ctx_with(NULL, &o);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
        struct candor_buf b = CANDOR_BUF_INIT;
        r->gen(&b, r->n);
        CU_ASSERT_FATAL(!b.oom);
        char *raw = exact_copy(&b);
        CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
        size_t len = b.len;
        candor__buf_free(&b);

        alarm(WATCHDOG_SECONDS);
        double t0 = now_s();
        struct candor_message *m = NULL;
        candor_status_t st = candor_message_parse(&m, ctx, raw, len);
        double t1 = now_s(), t2 = t1;
        const char *intent = "-";
        struct candor_result *res = NULL;
        if (st == CANDOR_OK && !triage_missing) {
            candor_envelope_t env = CANDOR_ENVELOPE_INIT;
            env.now = 1790000000;
            if (candor_triage(&res, ctx, m, NULL, &env, 0) == CANDOR_OK)
                intent = candor_result_intent(res);
            t2 = now_s();
        }
        alarm(0);

        if (st == CANDOR_OK) {
            size_t n = candor_message_error_count(m);
            printf("  %-40s %9zu bytes  parse %6.2f s  triage %6.2f s  intent %s\n"
                   "  %-40s errors[0]: \"%s\" (%zu in all)\n",
                   r->what, len, t1 - t0, t2 - t1, intent ? intent : "(null)", "",
                   n ? candor_message_error(m, 0) : "(none)", n);
            if (!n)
                fprintf(stderr, "%s: parsed without an errors entry\n", r->what);
            CU_ASSERT(n > 0);
            const char *text = candor_message_text(m);
            if (text)
                CU_ASSERT(strlen(text) <= CANDOR_DEFAULT_MAX_TEXT_BYTES);
        } else {
            printf("  %-40s %9zu bytes  parse %6.2f s  %s: \"%s\"\n", r->what, len, t1 - t0,
                   candor_status_str(st), candor_errmsg());
            CU_ASSERT_EQUAL(st, CANDOR_ELIMIT);
            CU_ASSERT_PTR_NULL(m);
        }
        fflush(stdout);
        candor_result_free(res);
        candor_message_free(m);
        free(raw);
        candor_ctx_free(ctx);
    }
}

static const struct test_case cases[] = {
    { "named defaults, options and config attributes", test_named_defaults_and_options },
    { "each limit is hit", test_each_limit_is_hit },
    { "parse_file checks the size first", test_parse_file_size },
    { "HTML nesting depth (converter)", test_html_depth_direct },
    { "configuration size (max_config_bytes)", test_config_size },
    { "options version 1 still accepted", test_options_version_1 },
    { "config limit values out of range", test_config_limit_values },
    { "PCRE2 limits and regular-expression bombs", test_rule_limits },
    { "header rules are not cut by a text rule's offset limit", test_header_rule_offset_limit },
    { NULL, NULL }
};

static const struct test_case hostile_cases[] = {
    { "big hostile inputs at the default limits", test_hostile_inputs },
    { NULL, NULL }
};

int main(int argc, char **argv)
{
    bool hostile = argc > 1 && strcmp(argv[1], "hostile") == 0;
    /* Until the parser and triage land, the tests that need them say so. */
    struct candor_ctx *c = ctx_with(NULL, NULL);
    struct candor_message *m = NULL;
    if (c && candor_message_parse(&m, c, "Subject: x\n\nx\n", 14) == CANDOR_ERROR &&
        strstr(candor_errmsg(), "not implemented"))
        parser_missing = true;
    if (m) {
        struct candor_result *r = NULL;
        if (candor_triage(&r, c, m, NULL, NULL, 0) != CANDOR_OK &&
            strstr(candor_errmsg(), "not implemented"))
            triage_missing = true;
        candor_result_free(r);
    }
    candor_message_free(m);
    candor_ctx_free(c);
    bool cut;
    char *t = candor__html_to_text("<p>x</p>", 8, 10, 100, &cut);
    text_missing = t && strcmp(t, "<p>x</p>") == 0;
    free(t);
    int rc = test_main(hostile ? "limits-hostile" : "limits", hostile ? hostile_cases : cases);
    struct rusage ru;
    if (hostile && getrusage(RUSAGE_SELF, &ru) == 0)
        fprintf(stderr, "hostile: peak RSS %ld MB\n", ru.ru_maxrss / 1024);
    return rc;
}
