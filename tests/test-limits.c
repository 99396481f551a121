/*
 * test-limits.c — every limit on hostile input has a named default
 * (CANDOR_DEFAULT_* in candor.h), an option (candor_ctx_options_t and the
 * config's <limits> element), and a test here that hits it: the input just
 * over the limit is refused with CANDOR_ELIMIT or parsed with an `errors`
 * entry, while the same input under the default limits parses cleanly (so
 * the limit, not the input, is what the test sees). Issue 6.
 * The big inputs (50 MB, 10,000-deep MIME, ...) are in test-hostile.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common.h"
#include "internal.h"
#include "ctx.h"
#include "text.h"

/* ---- building inputs ---- */

static void put_head(struct candor_buf *b, const char *ctype)
{
    candor__buf_puts(b, "From: Ann <ann@customer.example>\n"
                        "To: support@shop.example\n"
                        "Subject: limits\n"
                        "Date: Thu, 26 Nov 2026 10:00:00 +0000\n"
                        "Message-ID: <limits@customer.example>\n"
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

/* One Subject field of N bytes, folded into 70-byte lines. */
static void gen_long_header(struct candor_buf *b, size_t n)
{
    candor__buf_puts(b, "X-Long:");
    for (size_t i = 0; i < n; i += 70)
        candor__buf_puts(b, " aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n");
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

/* A base64 attachment decoding to N bytes (76-character lines). */
static void gen_base64(struct candor_buf *b, size_t n)
{
    put_head(b, "multipart/mixed; boundary=\"b\"");
    candor__buf_puts(b, "--b\nContent-Type: text/plain\n\nWhere is my order?\n"
                        "--b\nContent-Type: application/octet-stream\n"
                        "Content-Disposition: attachment; filename=\"big.bin\"\n"
                        "Content-Transfer-Encoding: base64\n\n");
    /* "AAAA" decodes to 3 zero bytes; 19 groups = 76 characters a line */
    for (size_t done = 0; done < n; done += 57)
        candor__buf_puts(b, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
    candor__buf_puts(b, "--b--\n");
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

/* ---- the table ---- */

struct limit_row {
    const char *name;          /* the <limits> attribute */
    size_t opt_off;            /* the field in candor_ctx_options_t */
    size_t ctx_off;            /* the field in struct candor_limits */
    size_t dflt;               /* the CANDOR_DEFAULT_* value */
    size_t small;              /* the limit the test sets */
    void (*gen)(struct candor_buf *b, size_t n);
    size_t over;               /* GEN's argument that goes over SMALL */
};

#define OPT(f) offsetof(candor_ctx_options_t, f)
#define LIM(f) offsetof(struct candor_limits, f)

static const struct limit_row rows[] = {
    { "max-message-bytes", OPT(max_message_bytes), LIM(max_message_bytes),
      CANDOR_DEFAULT_MAX_MESSAGE_BYTES, 4096, gen_size, 20000 },
    { "max-header-bytes", OPT(max_header_bytes), LIM(max_header_bytes),
      CANDOR_DEFAULT_MAX_HEADER_BYTES, 2048, gen_long_header, 10000 },
    { "max-headers", OPT(max_headers), LIM(max_headers),
      CANDOR_DEFAULT_MAX_HEADERS, 20, gen_headers, 100 },
    { "max-mime-depth", OPT(max_mime_depth), LIM(max_mime_depth),
      CANDOR_DEFAULT_MAX_MIME_DEPTH, 3, gen_depth, 10 },
    { "max-mime-parts", OPT(max_mime_parts), LIM(max_mime_parts),
      CANDOR_DEFAULT_MAX_MIME_PARTS, 5, gen_parts, 40 },
    { "max-line-bytes", OPT(max_line_bytes), LIM(max_line_bytes),
      CANDOR_DEFAULT_MAX_LINE_BYTES, 1000, gen_line, 20000 },
    { "max-decoded-bytes", OPT(max_decoded_bytes), LIM(max_decoded_bytes),
      CANDOR_DEFAULT_MAX_DECODED_BYTES, 10000, gen_base64, 200000 },
    { "max-text-bytes", OPT(max_text_bytes), LIM(max_text_bytes),
      CANDOR_DEFAULT_MAX_TEXT_BYTES, 1000, gen_text, 20000 },
    { "max-html-depth", OPT(max_html_depth), LIM(max_html_depth),
      CANDOR_DEFAULT_MAX_HTML_DEPTH, 10, gen_html, 100 },
};
#define N_ROWS (sizeof rows / sizeof rows[0])

static const char *datadir_file(const char *name)
{
    static char buf[1024];
    const char *d = getenv("CANDOR_DATADIR");
    snprintf(buf, sizeof buf, "%s/%s", d ? d : "lib/data", name);
    return buf;
}

static struct candor_ctx *ctx_with(const struct limit_row *r, size_t value)
{
    candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
    o.config_path = datadir_file("candor.xml");
    if (r)
        *(size_t *)((char *)&o + r->opt_off) = value;
    struct candor_ctx *ctx = NULL;
    if (candor_ctx_new(&ctx, &o) != CANDOR_OK)
        fprintf(stderr, "ctx: %s\n", candor_errmsg());
    return ctx;
}

static size_t ctx_limit(const struct candor_ctx *ctx, const struct limit_row *r)
{
    return *(const size_t *)((const char *)&ctx->limits + r->ctx_off);
}

/* The defaults are the named ones, and the option and the config
 * attribute each move every limit. */
static void test_named_defaults_and_options(void)
{
    struct candor_ctx *d = ctx_with(NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    const char *dir = test_tmpdir();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/limits.xml", dir);
    for (size_t i = 0; i < N_ROWS; i++) {
        const struct limit_row *r = &rows[i];
        CU_ASSERT_EQUAL(ctx_limit(d, r), r->dflt);
        struct candor_ctx *c = ctx_with(r, r->small);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        if (ctx_limit(c, r) != r->small)
            fprintf(stderr, "%s: option not applied\n", r->name);
        CU_ASSERT_EQUAL(ctx_limit(c, r), r->small);
        candor_ctx_free(c);

        FILE *f = fopen(cfg, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fprintf(f, "<candor version=\"1\"><limits %s=\"%zu\"/></candor>\n", r->name, r->small + 1);
        fclose(f);
        candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
        o.config_path = cfg;
        c = NULL;
        CU_ASSERT_EQUAL(candor_ctx_new(&c, &o), CANDOR_OK);
        if (c) {
            CU_ASSERT_EQUAL(ctx_limit(c, r), r->small + 1);
            candor_ctx_free(c);
        }
    }
    unlink(cfg);
    rmdir(dir);
    candor_ctx_free(d);
}

static bool parser_missing;

/* Each row: over the small limit -> ELIMIT or an errors entry; the same
 * input under the defaults -> no error. */
static void test_each_limit_is_hit(void)
{
    if (parser_missing) {
        printf("SKIP: the message parser is not implemented yet\n");
        return;
    }
    struct candor_ctx *d = ctx_with(NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    for (size_t i = 0; i < N_ROWS; i++) {
        const struct limit_row *r = &rows[i];
        struct candor_buf b = CANDOR_BUF_INIT;
        r->gen(&b, r->over);
        CU_ASSERT_FATAL(!b.oom);
        /* an exact-size copy, so ASan sees over-reads */
        char *raw = malloc(b.len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
        memcpy(raw, b.data, b.len);

        struct candor_message *m = NULL;
        candor_status_t st = candor_message_parse(&m, d, raw, b.len);
        CU_ASSERT_EQUAL(st, CANDOR_OK);
        size_t control_errors = m ? candor_message_error_count(m) : 99;
        if (control_errors)
            fprintf(stderr, "%s: the control input has %zu errors (first: %s)\n", r->name,
                    control_errors, m ? candor_message_error(m, 0) : candor_errmsg());
        CU_ASSERT_EQUAL(control_errors, 0);
        candor_message_free(m);

        struct candor_ctx *c = ctx_with(r, r->small);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        m = NULL;
        st = candor_message_parse(&m, c, raw, b.len);
        if (st == CANDOR_OK) {
            size_t n = candor_message_error_count(m);
            printf("  %-18s %zu over %zu: parsed, errors[0] = \"%s\"\n", r->name, r->over,
                   r->small, n ? candor_message_error(m, 0) : "(none)");
            if (!n)
                fprintf(stderr, "%s: limit %zu not hit by %zu\n", r->name, r->small, r->over);
            CU_ASSERT(n > 0);
            const char *text = candor_message_text(m);
            if (r->opt_off == OPT(max_text_bytes) && text)
                CU_ASSERT(strlen(text) <= r->small);
        } else {
            printf("  %-18s %zu over %zu: %s \"%s\"\n", r->name, r->over, r->small,
                   candor_status_str(st), candor_errmsg());
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
    struct candor_ctx *c = ctx_with(&rows[0], 4096);
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
static bool text_missing;

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

/* The configuration has a size limit too (named MAX_CONFIG_BYTES in
 * config.c, 4 MB): a bigger file is refused with ECONFIG, file:0. */
static void test_config_size(void)
{
    const char *dir = test_tmpdir();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char path[512];
    snprintf(path, sizeof path, "%s/huge.xml", dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("<candor version=\"1\">\n", f);
    for (int i = 0; i < 5 * 1024 * 1024 / 64; i++)
        fputs("<!-- padding padding padding padding padding padding pad -->\n", f);
    fputs("</candor>\n", f);
    fclose(f);
    candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
    o.config_path = path;
    struct candor_ctx *c = NULL;
    CU_ASSERT_EQUAL(candor_ctx_new(&c, &o), CANDOR_ECONFIG);
    CU_ASSERT_PTR_NULL(c);
    printf("  config of 5 MB: \"%s\"\n", candor_errmsg());
    CU_ASSERT_PTR_NOT_NULL(strstr(candor_errmsg(), "huge.xml:0:"));
    candor_ctx_free(c);
    unlink(path);
    rmdir(dir);
}

/* A <limits> value that does not fit a size_t is a config error, not a
 * wrapped or undefined conversion (fuzz-config found the UBSan case);
 * 0 and negative values are refused too. */
static void test_config_limit_values(void)
{
    static const char *const bad[] = { "0", "-5", "18446744073709551616000", "1e30", "x" };
    const char *dir = test_tmpdir();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char path[512];
    snprintf(path, sizeof path, "%s/limits.xml", dir);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *f = fopen(path, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fprintf(f, "<candor version=\"1\">\n<limits max-headers=\"%s\"/>\n</candor>\n", bad[i]);
        fclose(f);
        candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
        o.config_path = path;
        struct candor_ctx *c = NULL;
        candor_status_t st = candor_ctx_new(&c, &o);
        if (st != CANDOR_ECONFIG)
            fprintf(stderr, "max-headers=\"%s\": status %d\n", bad[i], st);
        CU_ASSERT_EQUAL(st, CANDOR_ECONFIG);
        CU_ASSERT_PTR_NOT_NULL(strstr(candor_errmsg(), "limits.xml:2:"));
        candor_ctx_free(c);
    }
    unlink(path);
    rmdir(dir);
}

/* PCRE2's limits (<rules match-limit depth-limit max-match-bytes>, named
 * defaults in rules.c): a deep backtracking pattern on a long field stops
 * at the depth limit (interpreter) or the JIT stack (JIT ignores the depth
 * limit), and the triage JSON says so in errors. The match limit is hit in
 * test-hostile.c (regular-expression bomb) and test-rules.c. */
static void test_pcre2_depth(void)
{
    if (parser_missing) {
        printf("SKIP: the message parser is not implemented yet\n");
        return;
    }
    const char *dir = test_tmpdir();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char path[512];
    snprintf(path, sizeof path, "%s/depth.xml", dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("<candor version=\"1\">\n<mailbox><address>support@shop.example</address></mailbox>\n"
          "<rules max-match-bytes=\"200000\" depth-limit=\"10\">\n"
          "<rule id=\"deep\" intent=\"refund\" weight=\"1\">(a|b)*c</rule>\n"
          "</rules>\n</candor>\n", f);
    fclose(f);
    candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
    o.config_path = path;
    struct candor_ctx *c = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_ctx_new(&c, &o), CANDOR_OK);
    struct candor_buf b = CANDOR_BUF_INIT;
    put_head(&b, "text/plain");
    for (int i = 0; i < 50000; i++)
        candor__buf_puts(&b, "ab");
    candor__buf_puts(&b, " c\n");
    struct candor_message *m = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_message_parse(&m, c, b.data, b.len), CANDOR_OK);
    struct candor_result *res = NULL;
    candor_envelope_t env = CANDOR_ENVELOPE_INIT;
    env.now = 1790000000;
    CU_ASSERT_EQUAL_FATAL(candor_triage(&res, c, m, NULL, &env, 0), CANDOR_OK);
    char *json = NULL;
    CU_ASSERT_EQUAL(candor_result_to_json(res, m, NULL, &json), CANDOR_OK);
    const char *e = json ? strstr(json, "\"rules: ") : NULL;
    printf("  depth-limit 10, (a|b)*c on 100 kB: %.*s\n", e ? 90 : 6, e ? e : "(none)");
    CU_ASSERT_PTR_NOT_NULL(e);
    candor_free(json);
    candor_result_free(res);
    candor_message_free(m);
    candor__buf_free(&b);
    candor_ctx_free(c);
    unlink(path);
    rmdir(dir);
}

static const struct test_case cases[] = {
    { "named defaults, options and config attributes", test_named_defaults_and_options },
    { "each limit is hit", test_each_limit_is_hit },
    { "parse_file checks the size first", test_parse_file_size },
    { "HTML nesting depth (converter)", test_html_depth_direct },
    { "configuration size", test_config_size },
    { "config limit values out of range", test_config_limit_values },
    { "PCRE2 depth limit / JIT stack", test_pcre2_depth },
    { NULL, NULL }
};

int main(void)
{
    /* Until the parser lands (issue 2) the tests that need it say so. */
    struct candor_ctx *c = ctx_with(NULL, 0);
    struct candor_message *m = NULL;
    if (c && candor_message_parse(&m, c, "Subject: x\n\nx\n", 14) == CANDOR_ERROR &&
        strstr(candor_errmsg(), "not implemented"))
        parser_missing = true;
    candor_message_free(m);
    candor_ctx_free(c);
    bool cut;
    char *t = candor__html_to_text("<p>x</p>", 8, 10, 100, &cut);
    text_missing = t && strcmp(t, "<p>x</p>") == 0;
    free(t);
    return test_main("limits", cases);
}
