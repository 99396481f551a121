/* test-config.c — the context and its XML configuration: defaults,
 * options, validation against the schema, errors as file:line. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"

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

static void test_config_too_large(void)
{
    const char *d = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/big.xml", d);
    FILE *f = fopen(path, "w");
    fputs("<candor version=\"1\">\n<!--", f);
    char dots[1024];
    memset(dots, '.', sizeof dots);
    for (int i = 0; i < 5 * 1024; i++)      /* 5 MiB, over the 4 MiB limit */
        fwrite(dots, 1, sizeof dots, f);
    fputs("-->\n</candor>\n", f);
    fclose(f);
    candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
    o.config_path = path;
    struct candor_ctx *ctx = NULL;
    CU_ASSERT_EQUAL(candor_ctx_new(&ctx, &o), CANDOR_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(candor_errmsg(), "larger than"));
    CU_ASSERT_PTR_NULL(ctx);
}

static void test_options_init(void)
{
    candor_ctx_options_t o;
    CU_ASSERT_EQUAL(candor_ctx_options_init(&o, CANDOR_CTX_OPTIONS_VERSION), CANDOR_OK);
    CU_ASSERT_EQUAL(o.version, CANDOR_CTX_OPTIONS_VERSION);
    CU_ASSERT_PTR_NULL(o.config_path);
    CU_ASSERT_EQUAL(o.max_message_bytes, 0);
    CU_ASSERT_EQUAL(candor_ctx_options_init(&o, 77), CANDOR_EINVAL);
    candor_envelope_t e;
    CU_ASSERT_EQUAL(candor_envelope_init(&e, CANDOR_ENVELOPE_VERSION), CANDOR_OK);
    CU_ASSERT_PTR_NULL(e.sender);
    CU_ASSERT_EQUAL(candor_envelope_init(&e, 0), CANDOR_EINVAL);
}

/* CANDOR_CTX_PARSE_ONLY: parsing works, triage and training are refused
 * (never a silent rules-less result); a version 2 caller's struct ends
 * before flags, which is then not read. */
static void test_parse_only(void)
{
    static const char mail[] = "From: a@example.com\nSubject: refund please\n\nI want my money back.\n";
    union { candor_ctx_options_t o; unsigned char bytes[sizeof(candor_ctx_options_t)]; } u;
    for (unsigned int version = 2; version <= 3; version++) {
        memset(&u, 0xFF, sizeof u);
        CU_ASSERT_EQUAL_FATAL(candor_ctx_options_init(&u.o, version), CANDOR_OK);
        if (version == 2) {
            CU_ASSERT_EQUAL(u.bytes[offsetof(candor_ctx_options_t, flags)], 0xFF);
        } else {
            u.o.flags = CANDOR_CTX_PARSE_ONLY;
        }
        struct candor_ctx *c = NULL;
        CU_ASSERT_EQUAL_FATAL(candor_ctx_new(&c, &u.o), CANDOR_OK);
        struct candor_message *m = NULL;
        CU_ASSERT_EQUAL(candor_message_parse(&m, c, mail, sizeof mail - 1), CANDOR_OK);
        struct candor_result *r = NULL;
        candor_status_t want = version == 3 ? CANDOR_EINVAL : CANDOR_OK;
        CU_ASSERT_EQUAL(candor_triage(&r, c, m, NULL, NULL, 0), want);
        CU_ASSERT_EQUAL(r == NULL, version == 3);
        if (version == 3)
            CU_ASSERT_PTR_NOT_NULL(strstr(candor_errmsg(), "parsing only"));
        struct candor_trainer *t = NULL;
        CU_ASSERT_EQUAL(candor_trainer_new(&t, c), want);
        candor_trainer_free(t);
        candor_result_free(r);
        candor_message_free(m);
        candor_ctx_free(c);
    }
}

static const struct test_case cases[] = {
    { "ctx default config", test_ctx_default },
    { "ctx bad options version", test_ctx_bad_version },
    { "config errors file:line", test_config_errors },
    { "ctx address override", test_ctx_address_override },
    { "config too large", test_config_too_large },
    { "options init twins", test_options_init },
    { "parse-only context", test_parse_only },
    { NULL, NULL }
};

int main(void) { return test_main("config", cases); }
