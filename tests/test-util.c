/* test-util.c — the foundation helpers: errors, buffers, UTF-8, time,
 * addresses, the context and its configuration. */
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "internal.h"

static void test_errmsg(void)
{
    CU_ASSERT_EQUAL(candor__fail(CANDOR_EIO, "a: %s\nb", "why"), CANDOR_EIO);
    CU_ASSERT_STRING_EQUAL(candor_errmsg(), "a: why b");   /* one line */
    CU_ASSERT_STRING_EQUAL(candor_status_str(CANDOR_ETEMPFAIL), "CANDOR_ETEMPFAIL");
    candor_free(NULL);
}

static void test_buf(void)
{
    struct candor_buf b = CANDOR_BUF_INIT;
    for (int i = 0; i < 1000; i++)
        CU_ASSERT_TRUE(candor__buf_printf(&b, "%d,", i));
    CU_ASSERT_EQUAL(b.len, strlen(b.data));
    char *s = candor__buf_steal(&b);
    CU_ASSERT_PTR_NOT_NULL(s);
    CU_ASSERT_EQUAL(strncmp(s, "0,1,2,", 6), 0);
    free(s);
    struct candor_buf e = CANDOR_BUF_INIT;
    s = candor__buf_steal(&e);
    CU_ASSERT_STRING_EQUAL(s, "");
    free(s);
}

static void test_utf8(void)
{
    static const struct { const char *name, *in; size_t len; const char *out; size_t bad; } rows[] = {
        { "ascii", "abc", 3, "abc", 0 },
        { "valid 2-byte", "caf\xc3\xa9", 5, "caf\xc3\xa9", 0 },
        { "lone continuation", "a\x80" "b", 3, "a\xef\xbf\xbd" "b", 1 },
        { "truncated 3-byte", "a\xe2\x82", 3, "a\xef\xbf\xbd\xef\xbf\xbd", 2 },
        { "overlong", "\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd", 2 },
        { "surrogate", "\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 3 },
        { "NUL", "a\0b", 3, "a\xef\xbf\xbd" "b", 1 },
        { "latin1 byte", "\xe9t\xe9", 3, "\xef\xbf\xbdt\xef\xbf\xbd", 2 },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t bad = 99;
        char *o = candor__utf8_sanitize(rows[i].in, rows[i].len, &bad);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        if (strcmp(o, rows[i].out) != 0 || bad != rows[i].bad)
            fprintf(stderr, "utf8 row %s failed (bad=%zu)\n", rows[i].name, bad);
        CU_ASSERT_STRING_EQUAL(o, rows[i].out);
        CU_ASSERT_EQUAL(bad, rows[i].bad);
        CU_ASSERT_TRUE(candor__utf8_valid(o, strlen(o)));
        free(o);
    }
}

static void test_fold(void)
{
    char *f = candor__utf8_fold("\xc3\x89T\xc3\x89 \xd0\x9f\xd1\x80\xd0\x98 \xce\xa3 \xc5\x81\xc3\x93" "D\xc5\xb9", 23);
    CU_ASSERT_STRING_EQUAL(f, "\xc3\xa9t\xc3\xa9 \xd0\xbf\xd1\x80\xd0\xb8 \xcf\x83 \xc5\x82\xc3\xb3" "d\xc5\xba");
    free(f);
    CU_ASSERT_TRUE(candor__unicode_is_wordchar(0xE9));
    CU_ASSERT_FALSE(candor__unicode_is_wordchar(0x2019));
    CU_ASSERT_FALSE(candor__unicode_is_wordchar(' '));
}

static void test_time(void)
{
    static const struct { const char *in; int64_t t; } rows[] = {
        { "1970-01-01T00:00:00Z", 0 },
        { "2026-11-24T10:00:00Z", 1795514400 },
        { "2026-11-24T11:00:00+01:00", 1795514400 },
        { "2026-11-24T05:00:00.123-05:00", 1795514400 },
        { "2000-02-29T00:00:00Z", 951782400 },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t t = -1;
        CU_ASSERT_EQUAL(candor_time_parse(&t, rows[i].in), CANDOR_OK);
        CU_ASSERT_EQUAL(t, rows[i].t);
    }
    int64_t t;
    CU_ASSERT_EQUAL(candor_time_parse(&t, "yesterday"), CANDOR_EINVAL);
    CU_ASSERT_EQUAL(candor_time_parse(&t, "2026-13-01T00:00:00Z"), CANDOR_EINVAL);
    CU_ASSERT_EQUAL(candor_time_parse(&t, "2026-11-24T10:00:00Zjunk"), CANDOR_EINVAL);
    char buf[32];
    candor_time_format(buf, sizeof buf, 1795514400);
    CU_ASSERT_STRING_EQUAL(buf, "2026-11-24T10:00:00Z");
}

static void test_addr(void)
{
    static const struct { const char *in, *out; } rows[] = {
        { "Support+billing@Shop.Example", "support@shop.example" },
        { " <Help@X.example> ", "help@x.example" },
        { "no-at-sign", "no-at-sign" },
        { "a+b+c@d", "a@d" },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *n = candor__addr_normalize(rows[i].in);
        CU_ASSERT_STRING_EQUAL(n, rows[i].out);
        free(n);
    }
}

static void test_ctx_default(void)
{
    struct candor_ctx *ctx = test_ctx(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    CU_ASSERT_PTR_NOT_NULL(candor_ctx_config_path(ctx));
    CU_ASSERT_EQUAL(candor_ctx_setting_int(ctx, "max_connections", -1), 100);
    CU_ASSERT_EQUAL(candor_ctx_setting_int(ctx, "no-such-setting", 7), 7);
    candor_ctx_free(ctx);
    candor_ctx_free(NULL);
}

static void test_ctx_bad_version(void)
{
    candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
    o.version = 99;
    struct candor_ctx *ctx = (struct candor_ctx *)1;
    CU_ASSERT_EQUAL(candor_ctx_new(&ctx, &o), CANDOR_EINVAL);
    CU_ASSERT_PTR_NULL(ctx);
}

static const char *write_tmp(const char *name, const char *text)
{
    static char path[512];
    const char *d = test_tmpdir();
    snprintf(path, sizeof path, "%s/%s", d, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_config_errors(void)
{
    static const struct { const char *name, *xml, *want; } rows[] = {
        { "not well-formed", "<candor version=\"1\">\n<mailbox>\n</candor>\n", ":4: " },
        { "unknown element", "<candor version=\"1\">\n\n<frobnicate/>\n</candor>\n", ":3: " },
        { "bad limit", "<candor version=\"1\">\n<limits max-mime-depth=\"-4\"/>\n</candor>\n", ":2: " },
        { "bad address", "<candor version=\"1\">\n<mailbox>\n<address>nobody</address>\n</mailbox>\n</candor>\n", ":3: " },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *p = write_tmp("bad.xml", rows[i].xml);
        candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
        o.config_path = p;
        struct candor_ctx *ctx = NULL;
        candor_status_t st = candor_ctx_new(&ctx, &o);
        CU_ASSERT_EQUAL(st, CANDOR_ECONFIG);
        CU_ASSERT_PTR_NULL(ctx);
        if (!strstr(candor_errmsg(), rows[i].want) || strncmp(candor_errmsg(), p, strlen(p)) != 0) {
            fprintf(stderr, "config row '%s': message '%s'\n", rows[i].name, candor_errmsg());
            CU_FAIL("message is not file:line");
        }
    }
    candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
    o.config_path = "/nonexistent/candor.xml";
    struct candor_ctx *ctx = NULL;
    CU_ASSERT_EQUAL(candor_ctx_new(&ctx, &o), CANDOR_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(candor_errmsg(), "/nonexistent/candor.xml"));
}

static void test_ctx_address_override(void)
{
    const char *addrs[] = { "Help+x@Other.example" };
    candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
    o.addresses = addrs;
    o.n_addresses = 1;
    struct candor_ctx *ctx = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_ctx_new(&ctx, &o), CANDOR_OK);
    candor_ctx_free(ctx);
    const char *bad[] = { "nope" };
    o.addresses = bad;
    CU_ASSERT_EQUAL(candor_ctx_new(&ctx, &o), CANDOR_EINVAL);
}

static const struct test_case cases[] = {
    { "errmsg", test_errmsg },
    { "buf", test_buf },
    { "utf8 sanitize", test_utf8 },
    { "unicode fold", test_fold },
    { "rfc3339", test_time },
    { "address normalize", test_addr },
    { "ctx default config", test_ctx_default },
    { "ctx bad options version", test_ctx_bad_version },
    { "config errors file:line", test_config_errors },
    { "ctx address override", test_ctx_address_override },
    { NULL, NULL }
};

int main(void) { return test_main("util", cases); }
