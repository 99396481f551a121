/*
 * test-triage-json.c — candor_triage_json() (lib/triage-json.c) gives, in
 * one call, byte for byte what candor_message_parse[_file] +
 * candor_triage + candor_result_to_json give, from a path and from bytes,
 * with and without explain; and fails as they do.
 */
#include <stdlib.h>
#include <string.h>
#include "common.h"

static struct candor_ctx *ctx;

/* The three calls, for comparison. */
static char *three_calls(const char *path, const void *data, size_t len, const char *file,
                         const candor_envelope_t *env, unsigned flags, size_t *n_errors)
{
    struct candor_message *msg = NULL;
    struct candor_result *res = NULL;
    char *json = NULL;
    candor_status_t st = data ? candor_message_parse(&msg, ctx, data, len)
                              : candor_message_parse_file(&msg, ctx, path);
    CU_ASSERT_EQUAL_FATAL(st, CANDOR_OK);
    CU_ASSERT_EQUAL_FATAL(candor_triage(&res, ctx, msg, NULL, env, flags), CANDOR_OK);
    CU_ASSERT_EQUAL_FATAL(candor_result_to_json(res, msg, file, &json), CANDOR_OK);
    *n_errors = candor_message_error_count(msg);
    candor_result_free(res);
    candor_message_free(msg);
    return json;
}

static const struct row {
    const char *name;
    const char *fixture;    /* under tests/data/python */
    int from_bytes;         /* 1: DATA/LEN, 0: the path */
    const char *file;       /* the "file" member */
    unsigned flags;
} rows[] = {
    { "refund_path", "refund.eml", 0, "refund.eml", 0 },
    { "refund_bytes", "refund.eml", 1, NULL, 0 },
    { "html_explain", "html.eml", 0, "x/html.eml", CANDOR_TRIAGE_EXPLAIN },
    { "autoreply_bytes_explain", "autoreply.eml", 1, "a.eml", CANDOR_TRIAGE_EXPLAIN },
    { "reply_canned_path", "reply-canned.eml", 0, NULL, 0 },
};

static void test_same_as_three_calls(void)
{
    candor_envelope_t env;
    CU_ASSERT_EQUAL_FATAL(candor_envelope_init(&env, CANDOR_ENVELOPE_VERSION), CANDOR_OK);
    env.now = 1795000000;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        char rel[128];
        snprintf(rel, sizeof rel, "python/%s", r->fixture);
        char path[4096];
        snprintf(path, sizeof path, "%s", test_data_path(rel));
        size_t len = 0;
        void *data = r->from_bytes ? test_read(path, &len) : NULL;
        size_t want_errors = 99, got_errors = 99;
        char *want = three_calls(path, data, len, r->file, &env, r->flags, &want_errors);
        char *got = NULL;
        CU_ASSERT_EQUAL(candor_triage_json(&got, &got_errors, ctx, NULL, path, data, len,
                                           r->file, &env, r->flags), CANDOR_OK);
        CU_ASSERT_PTR_NOT_NULL(got);
        if (!got || !want || strcmp(got, want) != 0 || got_errors != want_errors)
            CU_FAIL(r->name);
        if (r->flags & CANDOR_TRIAGE_EXPLAIN)
            CU_ASSERT_PTR_NOT_NULL(got ? strstr(got, "\"explain\":") : NULL);
        /* N_ERRORS may be NULL */
        char *again = NULL;
        CU_ASSERT_EQUAL(candor_triage_json(&again, NULL, ctx, NULL, path, data, len,
                                           r->file, &env, r->flags), CANDOR_OK);
        CU_ASSERT(again && got && strcmp(again, got) == 0);
        candor_free(again);
        candor_free(got);
        candor_free(want);
        free(data);
    }
}

static void test_failures(void)
{
    char *json = (char *)"sentinel";
    size_t n = 7;
    /* a missing file: the parse's failure, *JSON NULL, *N_ERRORS 0 */
    CU_ASSERT_EQUAL(candor_triage_json(&json, &n, ctx, NULL, "/nonexistent/m.eml", NULL, 0,
                                       NULL, NULL, 0), CANDOR_EIO);
    CU_ASSERT_PTR_NULL(json);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(candor_errmsg(), "/nonexistent/m.eml"));
    /* neither data nor path, no output pointer, no context */
    CU_ASSERT_EQUAL(candor_triage_json(&json, NULL, ctx, NULL, NULL, NULL, 0, NULL, NULL, 0),
                    CANDOR_EINVAL);
    CU_ASSERT_PTR_NULL(json);
    CU_ASSERT_EQUAL(candor_triage_json(NULL, NULL, ctx, NULL, "x", NULL, 0, NULL, NULL, 0),
                    CANDOR_EINVAL);
    CU_ASSERT_EQUAL(candor_triage_json(&json, NULL, NULL, NULL, "x", NULL, 0, NULL, NULL, 0),
                    CANDOR_EINVAL);
    /* empty bytes are a (damaged) message, not a failure */
    CU_ASSERT_EQUAL(candor_triage_json(&json, &n, ctx, NULL, NULL, "", 0, NULL, NULL, 0),
                    CANDOR_OK);
    CU_ASSERT_PTR_NOT_NULL(json);
    candor_free(json);
}

static const struct test_case cases[] = {
    { "same_as_three_calls", test_same_as_three_calls },
    { "failures", test_failures },
    { NULL, NULL }
};

int main(void)
{
    ctx = test_ctx(NULL);
    int r = test_main("triage-json", cases);
    candor_ctx_free(ctx);
    return r;
}
