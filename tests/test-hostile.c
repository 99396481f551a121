/*
 * test-hostile.c — the hostile set of issue 6, generated at run time (no
 * big files in the tree): a 50 MB message, a MIME tree 10,000 parts deep,
 * a 1 MB header, base64 bombs and a regular-expression bomb. Each must
 * come back (a watchdog kills a hang) with CANDOR_ELIMIT or with a clear
 * `errors` entry; the time each took is printed, never asserted (the
 * machine's speed is not the library's). Default limits throughout unless
 * the row says otherwise. Parsed messages are triaged too, when triage is
 * there.
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

#define WATCHDOG_SECONDS 600   /* a hang, not a slow machine */

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

static struct candor_ctx *make_ctx(const char *config, size_t max_decoded)
{
    candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
    o.config_path = config ? config : datadir_file("candor.xml");
    o.max_decoded_bytes = max_decoded;
    struct candor_ctx *ctx = NULL;
    if (candor_ctx_new(&ctx, &o) != CANDOR_OK)
        fprintf(stderr, "ctx: %s\n", candor_errmsg());
    return ctx;
}

static bool parser_missing, triage_missing;

static void head(struct candor_buf *b, const char *ctype)
{
    candor__buf_puts(b, "From: Mallory <mallory@attacker.example>\n"
                        "To: support@shop.example\n"
                        "Subject: hostile\n"
                        "Date: Thu, 26 Nov 2026 10:00:00 +0000\n"
                        "Message-ID: <hostile@attacker.example>\n"
                        "MIME-Version: 1.0\n");
    candor__buf_printf(b, "Content-Type: %s\n\n", ctype);
}

/* Parse (and triage) B with CTX under the watchdog; print the time and the
 * outcome; the outcome must be ELIMIT or an errors entry. */
static void run_case(const char *what, struct candor_ctx *ctx, struct candor_buf *b)
{
    CU_ASSERT_FATAL(!b->oom);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    if (parser_missing) {
        printf("  SKIP %s: the message parser is not implemented yet\n", what);
        return;
    }
    /* an exact-size copy: no NUL after it */
    char *raw = malloc(b->len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
    memcpy(raw, b->data, b->len);
    size_t len = b->len;
    candor__buf_free(b);

    alarm(WATCHDOG_SECONDS);
    double t0 = now_s();
    struct candor_message *m = NULL;
    candor_status_t st = candor_message_parse(&m, ctx, raw, len);
    double t1 = now_s();
    double t2 = t1;
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
        printf("  %-44s %9zu bytes  parse %6.2f s  triage %6.2f s  intent %s\n"
               "  %-44s errors[0]: \"%s\" (%zu in all)\n",
               what, len, t1 - t0, t2 - t1, intent ? intent : "(null)", "",
               n ? candor_message_error(m, 0) : "(none)", n);
        if (!n)
            fprintf(stderr, "%s: parsed without an errors entry\n", what);
        CU_ASSERT(n > 0);
        const char *text = candor_message_text(m);
        if (text)
            CU_ASSERT(strlen(text) <= CANDOR_DEFAULT_MAX_TEXT_BYTES);
    } else {
        printf("  %-44s %9zu bytes  parse %6.2f s  %s: \"%s\"\n", what, len, t1 - t0,
               candor_status_str(st), candor_errmsg());
        CU_ASSERT_EQUAL(st, CANDOR_ELIMIT);
        CU_ASSERT_PTR_NULL(m);
    }
    fflush(stdout);
    candor_result_free(res);
    candor_message_free(m);
    free(raw);
}

/* 50 MB of plain text: under the 64 MB message limit, over the 1 MB text
 * limit. */
static void test_50mb(void)
{
    struct candor_ctx *ctx = make_ctx(NULL, 0);
    struct candor_buf b = CANDOR_BUF_INIT;
    head(&b, "text/plain; charset=utf-8");
    candor__buf_puts(&b, "I want a refund for order A12345.\n\n");
    while (b.len < 50u * 1024 * 1024)
        candor__buf_puts(&b, "> and again and again, the same quoted line of a long thread\n");
    run_case("50 MB message", ctx, &b);
    candor_ctx_free(ctx);
}

/* multipart nested 10,000 deep (limit: 20). */
static void test_mime_10000_deep(void)
{
    struct candor_ctx *ctx = make_ctx(NULL, 0);
    struct candor_buf b = CANDOR_BUF_INIT;
    head(&b, "multipart/mixed; boundary=\"z0\"");
    for (unsigned i = 1; i <= 10000; i++)
        candor__buf_printf(&b, "--z%u\nContent-Type: multipart/mixed; boundary=\"z%u\"\n\n",
                           i - 1, i);
    candor__buf_puts(&b, "--z10000\nContent-Type: text/plain\n\nWhere is my order?\n");
    for (unsigned i = 10001; i-- > 0;)
        candor__buf_printf(&b, "--z%u--\n", i);
    run_case("MIME tree 10,000 parts deep", ctx, &b);
    candor_ctx_free(ctx);
}

/* The same depth without boundaries' help: message/rfc822 inside
 * message/rfc822, 10,000 times. */
static void test_rfc822_10000_deep(void)
{
    struct candor_ctx *ctx = make_ctx(NULL, 0);
    struct candor_buf b = CANDOR_BUF_INIT;
    head(&b, "message/rfc822");
    for (unsigned i = 0; i < 10000; i++)
        candor__buf_puts(&b, "Subject: inner\nContent-Type: message/rfc822\n\n");
    candor__buf_puts(&b, "Subject: bottom\n\nWhere is my order?\n");
    run_case("message/rfc822 10,000 deep", ctx, &b);
    candor_ctx_free(ctx);
}

/* One header field of more than 1 MB (limit: 1 MB of header). */
static void test_1mb_header(void)
{
    struct candor_ctx *ctx = make_ctx(NULL, 0);
    struct candor_buf b = CANDOR_BUF_INIT;
    candor__buf_puts(&b, "Subject: =?utf-8?q?");
    for (size_t i = 0; b.len < 1100u * 1024; i++)
        candor__buf_puts(&b, "=C3=A9t=C3=A9?= =?utf-8?q?");
    candor__buf_puts(&b, "end?=\n");
    head(&b, "text/plain");
    candor__buf_puts(&b, "Where is my order?\n");
    run_case("1 MB header field (RFC 2047 words)", ctx, &b);
    candor_ctx_free(ctx);
}

/* 1 MB header of many short fields (limit: 1,000 fields). */
static void test_many_headers(void)
{
    struct candor_ctx *ctx = make_ctx(NULL, 0);
    struct candor_buf b = CANDOR_BUF_INIT;
    for (unsigned i = 0; b.len < 1100u * 1024; i++)
        candor__buf_printf(&b, "Received: from a%u.example by b.example; Thu, 26 Nov 2026 10:00:00 +0000\n", i);
    head(&b, "text/plain");
    candor__buf_puts(&b, "Where is my order?\n");
    run_case("1 MB header of 14,000 fields", ctx, &b);
    candor_ctx_free(ctx);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

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

/* 16 layers of message/rfc822, each base64-encoded inside the next: 51 MB
 * of raw mail that decodes to about 150 MB in all (limit: 128 MB decoded,
 * depth 20). */
static void test_base64_nested_bomb(void)
{
    struct candor_ctx *ctx = make_ctx(NULL, 0);
    struct candor_buf cur = CANDOR_BUF_INIT;
    candor__buf_puts(&cur, "Subject: core\nContent-Type: text/plain\n\n");
    while (cur.len < 512u * 1024)
        candor__buf_puts(&cur, "Where is my order? Where is my order? Where is my order?\n");
    for (int layer = 0; layer < 16; layer++) {
        struct candor_buf next = CANDOR_BUF_INIT;
        if (layer == 15)
            head(&next, "multipart/mixed; boundary=\"o\"");
        else
            candor__buf_puts(&next, "Subject: layer\nContent-Type: multipart/mixed; boundary=\"o\"\n\n");
        candor__buf_puts(&next, "--o\nContent-Type: message/rfc822\n"
                                "Content-Transfer-Encoding: base64\n\n");
        base64_into(&next, (const unsigned char *)cur.data, cur.len, true);
        candor__buf_puts(&next, "--o--\n");
        candor__buf_free(&cur);
        cur = next;
    }
    run_case("base64 bomb: 16 nested base64 layers", ctx, &cur);
    candor_ctx_free(ctx);
}

/* 40 MB of base64 on one line (limit: 1 MB lines), and the same with
 * lines against an 8 MB decoded-size limit (an option). */
static void test_base64_one_line(void)
{
    struct candor_ctx *ctx = make_ctx(NULL, 0);
    size_t n = 30u * 1024 * 1024;
    unsigned char *zeros = calloc(1, n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(zeros);
    struct candor_buf b = CANDOR_BUF_INIT;
    head(&b, "multipart/mixed; boundary=\"o\"");
    candor__buf_puts(&b, "--o\nContent-Type: text/plain\n\nSee attached.\n"
                         "--o\nContent-Type: application/octet-stream\n"
                         "Content-Disposition: attachment; filename=\"zeros.bin\"\n"
                         "Content-Transfer-Encoding: base64\n\n");
    base64_into(&b, zeros, n, false);
    candor__buf_puts(&b, "--o--\n");
    run_case("base64 bomb: 40 MB on one line", ctx, &b);
    candor_ctx_free(ctx);

    ctx = make_ctx(NULL, 8u * 1024 * 1024);
    head(&b, "multipart/mixed; boundary=\"o\"");
    candor__buf_puts(&b, "--o\nContent-Type: text/plain\n\nSee attached.\n");
    for (int i = 0; i < 4; i++) {
        candor__buf_printf(&b, "--o\nContent-Type: application/octet-stream\n"
                               "Content-Disposition: attachment; filename=\"z%d.bin\"\n"
                               "Content-Transfer-Encoding: base64\n\n", i);
        base64_into(&b, zeros, n / 4, true);
    }
    candor__buf_puts(&b, "--o--\n");
    run_case("base64: 30 MB decoded, max-decoded 8 MB", ctx, &b);
    candor_ctx_free(ctx);
    free(zeros);
}

/* A config whose rule backtracks catastrophically: the obvious kind is
 * refused when the config loads (file:line); one that passes the load-time
 * probe meets a crafted message, and every match stops at the PCRE2 match
 * limit, reported in the triage JSON's errors. */
static void test_regex_bomb(void)
{
    const char *dir = test_tmpdir();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char path[512];
    snprintf(path, sizeof path, "%s/bomb.xml", dir);

    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("<candor version=\"1\">\n<mailbox><address>support@shop.example</address></mailbox>\n"
          "<rules>\n<rule id=\"obvious\" intent=\"refund\" weight=\"1\">^(a+)+$</rule>\n"
          "</rules>\n</candor>\n", f);
    fclose(f);
    candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
    o.config_path = path;
    struct candor_ctx *ctx = NULL;
    double t0 = now_s();
    candor_status_t st = candor_ctx_new(&ctx, &o);
    printf("  %-44s load %6.2f s  %s: \"%s\"\n", "regex bomb (a+)+$ in the config", now_s() - t0,
           candor_status_str(st), st ? candor_errmsg() : "");
    CU_ASSERT_EQUAL(st, CANDOR_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(candor_errmsg(), "bomb.xml:4:"));
    candor_ctx_free(ctx);

    /* Nested quantifiers over x: no x in the load-time probes, so it loads;
     * the crafted text has a long run of x and no y after it. */
    f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("<candor version=\"1\">\n<mailbox><address>support@shop.example</address></mailbox>\n"
          "<rules>\n<rule id=\"subtle\" intent=\"refund\" weight=\"1\">(x+x+)+y</rule>\n"
          "<rule id=\"subtle-subject\" field=\"subject\" intent=\"refund\" weight=\"1\">(x+x+)+y</rule>\n"
          "</rules>\n</candor>\n", f);
    fclose(f);
    ctx = NULL;
    st = candor_ctx_new(&ctx, &o);
    if (st != CANDOR_OK)
        fprintf(stderr, "subtle bomb config: %s\n", candor_errmsg());
    CU_ASSERT_EQUAL_FATAL(st, CANDOR_OK);
    if (parser_missing || triage_missing) {
        printf("  SKIP regex bomb on a message: parser or triage not implemented yet\n");
        candor_ctx_free(ctx);
        unlink(path);
        rmdir(dir);
        return;
    }
    struct candor_buf b = CANDOR_BUF_INIT;
    candor__buf_puts(&b, "From: Mallory <mallory@attacker.example>\nTo: support@shop.example\n"
                         "Subject: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx! y xy\n\n");
    for (int i = 0; i < 100; i++)
        candor__buf_puts(&b, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx! y xy\n");
    CU_ASSERT_FATAL(!b.oom);
    alarm(WATCHDOG_SECONDS);
    t0 = now_s();
    struct candor_message *m = NULL;
    st = candor_message_parse(&m, ctx, b.data, b.len);
    CU_ASSERT_EQUAL_FATAL(st, CANDOR_OK);
    struct candor_result *res = NULL;
    candor_envelope_t env = CANDOR_ENVELOPE_INIT;
    env.now = 1790000000;
    st = candor_triage(&res, ctx, m, NULL, &env, 0);
    double t1 = now_s();
    alarm(0);
    CU_ASSERT_EQUAL_FATAL(st, CANDOR_OK);
    char *json = NULL;
    CU_ASSERT_EQUAL(candor_result_to_json(res, m, NULL, &json), CANDOR_OK);
    const char *e = json ? strstr(json, "\"rules: ") : NULL;
    char shown[160] = "(none)";
    if (e) {
        const char *q = strchr(e + 1, '"');
        snprintf(shown, sizeof shown, "%.*s", q ? (int)(q - e - 1) : 100, e + 1);
    }
    printf("  %-44s %9zu bytes  parse+triage %6.2f s\n  %-44s errors: \"%s\"\n",
           "regex bomb (x+x+)+y on a crafted message", b.len, t1 - t0, "", shown);
    if (!e)
        fprintf(stderr, "regex bomb: no rules entry in errors: %s\n", json ? json : "(no json)");
    CU_ASSERT_PTR_NOT_NULL(e);
    candor_free(json);
    candor_result_free(res);
    candor_message_free(m);
    candor__buf_free(&b);
    candor_ctx_free(ctx);
    unlink(path);
    rmdir(dir);
}

static const struct test_case cases[] = {
    { "50 MB message", test_50mb },
    { "MIME tree 10,000 deep", test_mime_10000_deep },
    { "message/rfc822 10,000 deep", test_rfc822_10000_deep },
    { "1 MB header field", test_1mb_header },
    { "1 MB of header fields", test_many_headers },
    { "base64 bomb, nested", test_base64_nested_bomb },
    { "base64 bomb, one line and decoded limit", test_base64_one_line },
    { "regular-expression bomb", test_regex_bomb },
    { NULL, NULL }
};

int main(void)
{
    struct candor_ctx *c = make_ctx(NULL, 0);
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
    int rc = test_main("hostile", cases);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        fprintf(stderr, "hostile: peak RSS %ld MB\n", ru.ru_maxrss / 1024);
    return rc;
}
