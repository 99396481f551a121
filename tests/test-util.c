/* test-util.c — the foundation helpers: errors, buffers, UTF-8, time,
 * addresses. */
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

static const struct test_case cases[] = {
    { "errmsg", test_errmsg },
    { "buf", test_buf },
    { "utf8 sanitize", test_utf8 },
    { "unicode fold", test_fold },
    { "rfc3339", test_time },
    { "address normalize", test_addr },
    { NULL, NULL }
};

int main(void) { return test_main("util", cases); }
