/* common.h — helpers for the CUnit test programs (tests/common.c). */
#ifndef CANDOR_TEST_COMMON_H
#define CANDOR_TEST_COMMON_H

#include <stddef.h>
#include <CUnit/CUnit.h>
#include "candor.h"

/* Path of a fixture under tests/data (static buffer per call site: copy it). */
const char *test_data_path(const char *rel);
/* Path of a file under ../shared (the corpus), or NULL when absent. */
const char *test_shared_path(const char *rel);
/* Read a fixture into an exact-size malloc'd buffer (no NUL after it, so
 * ASan sees over-reads). Fails the current test and returns NULL if absent. */
void *test_read(const char *path, size_t *len);
/* A context on the shipped default config (lib/data), or CONFIG if given. */
struct candor_ctx *test_ctx(const char *config);
/* A fresh temporary directory; test_main() removes it when every test
 * passed (CANDOR_TEST_KEEP=1 keeps it). */
const char *test_tmpdir(void);

/* The state location of a test store: a new SQLite file NAME in a fresh
 * temporary directory; or, when the tests run against PostgreSQL (see
 * test_state_pg()), a connection string to a fresh schema of its own on
 * that server, so tests never see each other's rows. Static buffer per
 * call: copy it. NULL (and a failed test) when the schema cannot be made. */
const char *test_state(const char *name);
/* 1 when stores of this run are PostgreSQL: CANDOR_TEST_STATE names a
 * server (a conninfo), or CANDOR_TEST_BACKEND=pg and CANDOR_TEST_PG (set by
 * tests/pg/with-pg.sh) names one. */
int test_state_pg(void);

struct test_case {
    const char *name;
    void (*fn)(void);
};

/* Register SUITE with CASES (NULL-terminated), run, print the CUnit summary
 * and then the plain line "N passed, N failed"; returns the exit status. */
int test_main(const char *suite, const struct test_case *cases);

#endif
