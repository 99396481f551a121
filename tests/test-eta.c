/* test-eta.c — the business-hours calendar (zone from the TZ database,
 * lunch breaks, weekends, holidays, DST) and the promise: target when
 * there is too little history, the percentile of measured first replies
 * otherwise, pushed out by tickets still waiting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "store-db.h"
#include "common.h"
#include "eta.h"
#include "store.h"

static struct candor_ctx *paris;

static int64_t T(const char *rfc3339)
{
    int64_t t = 0;
    CU_ASSERT_EQUAL(candor_time_parse(&t, rfc3339), CANDOR_OK);
    return t;
}

static void test_calendar_words(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(paris);
    CU_ASSERT_STRING_EQUAL(candor__eta_calendar(paris),
                           "Mon-Fri 09:00-12:00, 13:00-17:00 [Europe/Paris]");
    struct candor_ctx *d = test_ctx(NULL);   /* the shipped default */
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_PTR_NOT_NULL(strstr(candor__eta_calendar(d), "Mon-Fri 09:00-17:00"));
    candor_ctx_free(d);
    struct candor_ctx *w = test_ctx(test_data_path("eta/weekend.xml"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_STRING_EQUAL(candor__eta_calendar(w),
                           "Wed 08:30-20:00, Sat-Sun 10:00-14:00 [America/New_York]");
    candor_ctx_free(w);
}

static const struct span_row {
    const char *name, *from, *to;
    int64_t secs;
} spans[] = {
    /* 16:00 CET Friday to 10:00 CET Monday: 1 h + 1 h */
    { "over-weekend", "2026-11-27T15:00:00Z", "2026-11-30T09:00:00Z", 7200 },
    /* 11:00 to 14:00 local: the lunch break does not count */
    { "lunch", "2026-11-24T10:00:00Z", "2026-11-24T13:00:00Z", 7200 },
    /* Christmas is a holiday: Thu 16:00 -> Mon 10:00 local = 2 h */
    { "holiday", "2026-12-24T15:00:00Z", "2026-12-28T09:00:00Z", 7200 },
    /* across the spring DST change (29 March 2026): Fri 16:00 CET ->
     * Mon 10:00 CEST */
    { "dst", "2026-03-27T15:00:00Z", "2026-03-30T08:00:00Z", 7200 },
    { "night", "2026-11-24T17:00:00Z", "2026-11-25T07:00:00Z", 0 },
    { "backwards", "2026-11-25T10:00:00Z", "2026-11-24T10:00:00Z", 0 },
    { "full-week", "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z", 5 * 7 * 3600 },
    { NULL, NULL, NULL, 0 }
};

static void test_business_seconds(void)
{
    for (const struct span_row *r = spans; r->name; r++) {
        int64_t got = candor__eta_business_seconds(paris, T(r->from), T(r->to));
        if (got != r->secs) {
            fprintf(stderr, "  %s: want %lld, got %lld\n", r->name, (long long)r->secs,
                    (long long)got);
            CU_FAIL("business seconds");
        }
        /* laying the business time back onto the calendar lands on the
         * end when the end is inside business hours */
        if (r->secs > 0 && strcmp(r->name, "full-week") != 0) {
            int64_t back = candor__eta_add_business(paris, T(r->from), r->secs);
            if (back != T(r->to)) {
                fprintf(stderr, "  %s: add_business gave %lld\n", r->name, (long long)back);
                CU_FAIL("add_business");
            }
        }
    }
}

static void test_add_business(void)
{
    /* Saturday noon + 30 min -> Monday 09:30 local (08:30Z) */
    CU_ASSERT_EQUAL(candor__eta_add_business(paris, T("2026-11-28T11:00:00Z"), 1800),
                    T("2026-11-30T08:30:00Z"));
    /* 0 seconds outside hours -> the next opening */
    CU_ASSERT_EQUAL(candor__eta_add_business(paris, T("2026-11-24T11:30:00Z"), 0),
                    T("2026-11-24T12:00:00Z"));
    /* 8 business hours from Monday 09:00 local: 7 on Monday (lunch
     * 12-13), 1 on Tuesday -> Tuesday 10:00 local */
    CU_ASSERT_EQUAL(candor__eta_add_business(paris, T("2026-11-30T08:00:00Z"), 8 * 3600),
                    T("2026-12-01T09:00:00Z"));
    CU_ASSERT_EQUAL(candor__eta_add_business(paris, T("2026-11-30T08:00:00Z"), 7 * 3600),
                    T("2026-11-30T16:00:00Z"));
}

static void test_format_local(void)
{
    char buf[64];
    candor__eta_format_local(paris, T("2026-11-30T16:00:00Z"), buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "2026-11-30 17:00 CET");
    candor__eta_format_local(paris, T("2026-07-01T07:15:00Z"), buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "2026-07-01 09:15 CEST");
    CU_ASSERT_EQUAL(candor__eta_utc_offset(paris, T("2026-07-01T07:15:00Z")), 7200);
}

static void test_bad_config(void)
{
    candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
    struct candor_ctx *c = NULL;
    char p[512];
    snprintf(p, sizeof p, "%s", test_data_path("eta/bad-zone.xml"));
    o.config_path = p;
    CU_ASSERT_EQUAL(candor_ctx_new(&c, &o), CANDOR_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(candor_errmsg(), "Nowhere/Atlantis"));
    snprintf(p, sizeof p, "%s", test_data_path("eta/bad-hours.xml"));
    CU_ASSERT_EQUAL(candor_ctx_new(&c, &o), CANDOR_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(candor_errmsg(), "bad-hours.xml:"));
    CU_ASSERT_PTR_NULL(c);
}

/* ---- promises ---- */

static void add_reply(struct candor_db *db, const char *intent, int64_t created, int64_t replied,
                      int64_t business)
{
    struct candor_stmt *q;
    int64_t id = 0;
    CU_ASSERT_EQUAL_FATAL(candor__db_prepare(db, "test", "INSERT INTO tickets(created, intent) "
                                             "VALUES (?1, ?2) RETURNING id", &q), CANDOR_OK);
    candor__stmt_bind_int64(q, 1, created);
    candor__stmt_bind_text(q, 2, intent);
    CU_ASSERT_EQUAL(candor__stmt_step(q), CANDOR_DB_ROW);
    id = candor__stmt_int64(q, 0);
    candor__stmt_free(q);
    CU_ASSERT_EQUAL_FATAL(candor__db_prepare(db, "test",
        "INSERT INTO first_replies(ticket, intent, replied, wait, business_wait) "
        "VALUES (?1, ?2, ?3, ?4, ?5)", &q), CANDOR_OK);
    candor__stmt_bind_int64(q, 1, id);
    candor__stmt_bind_text(q, 2, intent);
    candor__stmt_bind_int64(q, 3, replied);
    candor__stmt_bind_int64(q, 4, replied - created);
    candor__stmt_bind_int64(q, 5, business);
    CU_ASSERT_EQUAL(candor__stmt_run(q), CANDOR_OK);
    candor__stmt_free(q);
}

static void test_promise(void)
{
    char path[512];
    const char *where = test_state("eta.db");   /* SQLite file or PostgreSQL schema */
    CU_ASSERT_PTR_NOT_NULL_FATAL(where);
    snprintf(path, sizeof path, "%s", where);
    struct candor_store *st = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&st, paris, path, 0), CANDOR_OK);
    struct candor_db *db = candor__store_db(st);
    int64_t now = T("2026-11-30T08:00:00Z");   /* Monday 09:00 local */
    struct candor_eta_promise p;

    /* no history: the target, "we aim to" */
    CU_ASSERT_EQUAL(candor__eta_promise(paris, st, "billing", now, &p), CANDOR_OK);
    CU_ASSERT_FALSE(p.measured);
    CU_ASSERT_EQUAL(p.by, T("2026-12-01T09:00:00Z"));            /* 8 h: Tue 10:00 local */
    CU_ASSERT_EQUAL(candor__eta_promise(paris, st, "refund", now, &p), CANDOR_OK);
    CU_ASSERT_FALSE(p.measured);
    CU_ASSERT_EQUAL(p.by, T("2026-12-02T10:00:00Z"));            /* 16 h: Wed 11:00 local */
    char *basis = candor__eta_basis(paris, &p, "refund");
    CU_ASSERT_PTR_NOT_NULL(strstr(basis, "target"));
    free(basis);

    /* 10 billing replies of 1..10 business hours in the last days */
    for (int i = 1; i <= 10; i++)
        add_reply(db, "billing", now - 5 * 86400, now - 86400 - i * 60, i * 3600);
    CU_ASSERT_EQUAL(candor__eta_promise(paris, st, "billing", now, &p), CANDOR_OK);
    CU_ASSERT_TRUE(p.measured);
    CU_ASSERT_FALSE(p.pooled);
    CU_ASSERT_EQUAL(p.samples, 10);
    /* the 90th percentile of 1..10 h is 9 h; with only 10 samples its
     * upper confidence bound is the longest, 10 h */
    CU_ASSERT_DOUBLE_EQUAL(p.business_hours, 10.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(p.correction, 1.0, 1e-9);
    /* 10 business hours from Monday 09:00: Tuesday 12:00 local */
    CU_ASSERT_EQUAL(p.by, T("2026-12-01T11:00:00Z"));
    basis = candor__eta_basis(paris, &p, "billing");
    CU_ASSERT_PTR_NOT_NULL(strstr(basis, "measured"));
    free(basis);

    /* an intent with too few replies is measured over all intents */
    add_reply(db, "refund", now - 5 * 86400, now - 86400, 30 * 3600);
    CU_ASSERT_EQUAL(candor__eta_promise(paris, st, "refund", now, &p), CANDOR_OK);
    CU_ASSERT_TRUE(p.measured);
    CU_ASSERT_TRUE(p.pooled);
    CU_ASSERT_EQUAL(p.samples, 11);

    /* old history (beyond history-days) does not count */
    struct candor_eta_promise later;
    CU_ASSERT_EQUAL(candor__eta_promise(paris, st, "billing", now + 30 * 86400, &later), CANDOR_OK);
    CU_ASSERT_FALSE(later.measured);

    /* 20 more billing tickets, answered within 1..2 h: the estimate
     * comes down ... */
    for (int i = 0; i < 20; i++)
        add_reply(db, "billing", now - 3 * 86400, now - 3 * 86400 + 3600, 3600 + i * 180);
    CU_ASSERT_EQUAL(candor__eta_promise(paris, st, "billing", now, &p), CANDOR_OK);
    CU_ASSERT_TRUE(p.measured);
    double before = p.business_hours;
    CU_ASSERT_TRUE(before < 10.0);
    /* ... and tickets still waiting for a long time push it out again */
    for (int i = 0; i < 12; i++) {
        char sql[256];
        snprintf(sql, sizeof sql, "INSERT INTO tickets(created, intent) VALUES (%lld, 'billing')",
                 (long long)(now - 5 * 86400));   /* Wednesday: 21 business hours ago */
        CU_ASSERT_EQUAL(candor__db_exec(db, "test", sql), CANDOR_OK);
    }
    CU_ASSERT_EQUAL(candor__eta_promise(paris, st, "billing", now, &p), CANDOR_OK);
    CU_ASSERT_TRUE(p.measured);
    CU_ASSERT_TRUE(p.business_hours > before);
    double waiting = p.business_hours;
    /* promises that ran late stretch the next ones: made on Friday 10:00
     * for 11:00, still unanswered on Monday morning */
    for (int i = 0; i < 12; i++) {
        char sql[512];
        /* their tickets arrived long before the cohort window, so only the
         * promises count (PostgreSQL enforces promises.ticket's reference) */
        snprintf(sql, sizeof sql, "INSERT INTO tickets(id, created, intent) "
                 "VALUES (%d, %lld, 'billing');"
                 "INSERT INTO promises(ticket, intent, made, due, measured, basis) "
                 "VALUES (%d, 'billing', %lld, %lld, 1, 'x')", 1000 + i,
                 (long long)(now - 400 * 86400), 1000 + i,
                 (long long)(now - 3 * 86400 + 3600), (long long)(now - 3 * 86400 + 7200));
        CU_ASSERT_EQUAL(candor__db_exec(db, "test", sql), CANDOR_OK);
    }
    CU_ASSERT_EQUAL(candor__eta_promise(paris, st, "billing", now, &p), CANDOR_OK);
    CU_ASSERT_TRUE(p.correction > 1.5);
    CU_ASSERT_TRUE(p.business_hours > waiting);
    basis = candor__eta_basis(paris, &p, "billing");
    CU_ASSERT_PTR_NOT_NULL(strstr(basis, "ran late"));
    free(basis);
    candor_store_free(st);
    unlink(path);
}

static const struct test_case cases[] = {
    { "calendar_words", test_calendar_words },
    { "business_seconds", test_business_seconds },
    { "add_business", test_add_business },
    { "format_local", test_format_local },
    { "bad_config", test_bad_config },
    { "promise", test_promise },
    { NULL, NULL }
};

int main(void)
{
    paris = test_ctx(test_data_path("eta/paris.xml"));
    int r = test_main("eta", cases);
    candor_ctx_free(paris);
    return r;
}
