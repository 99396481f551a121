/* common.c — shared test helpers and the runner (see common.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <CUnit/Basic.h>
#include "common.h"

const char *test_data_path(const char *rel)
{
    static _Thread_local char buf[4096];
    const char *d = getenv("CANDOR_TEST_DATA");
    snprintf(buf, sizeof buf, "%s/%s", d ? d : "tests/data", rel);
    return buf;
}

const char *test_shared_path(const char *rel)
{
    static _Thread_local char buf[4096];
    const char *d = getenv("CANDOR_SHARED");
    snprintf(buf, sizeof buf, "%s/%s", d ? d : "../shared", rel);
    return access(buf, R_OK) == 0 ? buf : NULL;
}

void *test_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        CU_FAIL("fixture missing");
        fprintf(stderr, "fixture missing: %s\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(n > 0 ? (size_t)n : 1);
    size_t r = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    *len = r;
    return buf;
}

struct candor_ctx *test_ctx(const char *config)
{
    candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
    o.config_path = config;
    struct candor_ctx *ctx = NULL;
    if (candor_ctx_new(&ctx, &o) != CANDOR_OK) {
        fprintf(stderr, "ctx: %s\n", candor_errmsg());
        return NULL;
    }
    return ctx;
}

const char *test_tmpdir(void)
{
    static char buf[256];
    const char *base = getenv("TMPDIR");
    snprintf(buf, sizeof buf, "%s/candor-test-XXXXXX", base ? base : "/tmp");
    return mkdtemp(buf);
}

int test_main(const char *suite_name, const struct test_case *cases)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite suite = CU_add_suite(suite_name, NULL, NULL);
    for (const struct test_case *c = cases; suite && c->name; c++)
        CU_add_test(suite, c->name, c->fn);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned run = CU_get_number_of_tests_run();
    unsigned bad = CU_get_number_of_tests_failed();
    printf("%u passed, %u failed\n", run - bad, bad);
    CU_cleanup_registry();
    return bad ? 1 : 0;
}
