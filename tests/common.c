/* common.c — shared test helpers and the runner (see common.h). */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <CUnit/Basic.h>
#include "common.h"
#include "store-db.h"

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

/* Every directory test_tmpdir() made, removed by test_main() once the
 * suite has passed (kept for a look when a test failed). */
#define TMPDIRS_MAX 256
static char tmpdirs[TMPDIRS_MAX][256];
static int ntmpdirs;

const char *test_tmpdir(void)
{
    static char buf[256];
    const char *base = getenv("TMPDIR");
    snprintf(buf, sizeof buf, "%s/candor-test-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(buf))
        return NULL;
    if (ntmpdirs < TMPDIRS_MAX)
        snprintf(tmpdirs[ntmpdirs++], sizeof tmpdirs[0], "%s", buf);
    return buf;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void remove_tmpdirs(void)
{
    for (int i = 0; i < ntmpdirs; i++)
        nftw(tmpdirs[i], remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    ntmpdirs = 0;
}

/* The PostgreSQL server of this run, or NULL: SQLite. */
static const char *pg_base(void)
{
    const char *s = getenv("CANDOR_TEST_STATE");
    if (s && *s)
        return s;
    const char *b = getenv("CANDOR_TEST_BACKEND");
    if (b && strcmp(b, "pg") == 0) {
        s = getenv("CANDOR_TEST_PG");
        return s && *s ? s : NULL;
    }
    return NULL;
}

int test_state_pg(void)
{
    return pg_base() != NULL;
}

const char *test_state(const char *name)
{
    static char buf[2048];
    static int serial;
    const char *base = pg_base();
    if (!base) {
        const char *d = test_tmpdir();
        snprintf(buf, sizeof buf, "%s/%s", d ? d : "/tmp", name);
        return buf;
    }
    char schema[64];
    snprintf(schema, sizeof schema, "candor_t%ld_%d", (long)getpid(), serial++);
    struct candor_db *db = NULL;
    char sql[256];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema, schema);
    if (candor__db_open_pg(&db, base) != CANDOR_OK ||
        candor__db_exec(db, "test schema", sql) != CANDOR_OK) {
        fprintf(stderr, "test_state: %s\n", candor_errmsg());
        candor__db_close(db);
        CU_FAIL("cannot make a PostgreSQL schema for the test");
        return NULL;
    }
    candor__db_close(db);
    if (candor__strncasecmp(base, "postgres", 8) == 0)   /* a URI */
        snprintf(buf, sizeof buf, "%s%coptions=-csearch_path%%3D%s", base,
                 strchr(base, '?') ? '&' : '?', schema);
    else
        snprintf(buf, sizeof buf, "%s options='-csearch_path=%s'", base, schema);
    return buf;
}

int test_main(const char *suite_name, const struct test_case *cases)
{
    const char *b = getenv("CANDOR_TEST_BACKEND");
    if (b && strcmp(b, "pg") == 0 && !pg_base()) {
        printf("skipped: CANDOR_TEST_BACKEND=pg but no CANDOR_TEST_PG server\n");
        return 77;
    }
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
    if (!bad && !getenv("CANDOR_TEST_KEEP"))
        remove_tmpdirs();
    else if (ntmpdirs)
        fprintf(stderr, "temporary files kept in %s%s\n", tmpdirs[0],
                ntmpdirs > 1 ? " (and others)" : "");
    return bad ? 1 : 0;
}
