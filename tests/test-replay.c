/* test-replay.c — are the promises honest? 1,000 tickets over six weeks
 * go through candor_ack() and candor_record_reply() (what `candor ack`
 * and `candor record-reply --now` call) in time order, with first-reply
 * times that drift: a normal start, a slow week (x1.8), a week with a
 * holiday, a fast week (x0.5). Each ticket's true first-reply time is
 * drawn in business hours (log-normal around a per-kind median) and laid
 * onto the same calendar, so replies happen in business hours only.
 *
 * Pass: at least 90% of the promises made after the first week are kept,
 * and the median promised wait is at most twice the median actual wait
 * (an honest promise must also be a useful one). Both figures are
 * printed. The seed is fixed (CANDOR_REPLAY_SEED overrides it). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "store-db.h"
#include "common.h"
#include "eta.h"
#include "store.h"

#define TICKETS 1000
#define DAYS 42

static struct candor_ctx *ctx;
static uint64_t rng;

static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static double normal(void)
{
    double u = uniform(), v = uniform();
    if (u < 1e-12)
        u = 1e-12;
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

static const struct kind {
    const char *subject, *body;
    double median_hours;   /* business hours to the first reply */
} kinds[] = {
    { "Where is my order %s?", "Hello, I ordered %s ten days ago and it has not arrived. "
      "The tracking page shows nothing. Where is my parcel?", 2.5 },
    { "Refund for order %s", "Hello, the blender from order %s arrived broken. I returned it "
      "last week and I want my money back, please refund me.", 5.0 },
    { "Cannot log in", "Hi, since yesterday the app says 'invalid password' although I reset "
      "it twice. I cannot log in to my account at all. Order %s is stuck.", 4.0 },
    { "Charged twice", "Hello, my credit card was charged twice for order %s. Please check "
      "the invoice and remove the double charge.", 3.0 },
    { "Opening hours", "Hello, what are your opening hours during the holidays? And do you "
      "ship to Switzerland? (about %s)", 2.0 },
};
#define KINDS (sizeof kinds / sizeof kinds[0])

static double week_factor(int week)
{
    static const double f[6] = { 1.0, 1.0, 1.8, 1.0, 0.5, 1.1 };
    return f[week < 0 ? 0 : week > 5 ? 5 : week];
}

struct event {
    int64_t at;
    int ticket;
    bool reply;
};

static int cmp_event(const void *a, const void *b)
{
    const struct event *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    if (x->reply != y->reply)
        return x->reply ? 1 : -1;
    return x->ticket - y->ticket;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* TPL with its one "%s" replaced by ARG. */
static void fill(char *out, size_t n, const char *tpl, const char *arg)
{
    const char *p = strstr(tpl, "%s");
    if (!p)
        snprintf(out, n, "%s", tpl);
    else
        snprintf(out, n, "%.*s%s%s", (int)(p - tpl), tpl, arg, p + 2);
}

static struct candor_message *parse(const char *buf)
{
    struct candor_message *m = NULL;
    if (candor_message_parse(&m, ctx, buf, strlen(buf)) != CANDOR_OK)
        fprintf(stderr, "parse: %s\n", candor_errmsg());
    return m;
}

static void rfc5322(char *buf, size_t n, int64_t t)
{
    static const char *const wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const mo[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
                                      "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    snprintf(buf, n, "%s, %02d %s %04d %02d:%02d:%02d +0000", wd[tm.tm_wday], tm.tm_mday,
             mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void test_replay(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    const char *seed = getenv("CANDOR_REPLAY_SEED");
    rng = seed ? strtoull(seed, NULL, 10) : 20260105;
    if (!rng)
        rng = 1;
    int64_t start;
    CU_ASSERT_EQUAL_FATAL(candor_time_parse(&start, "2026-01-04T23:00:00Z"), CANDOR_OK); /* Mon 00:00 Paris */
    int64_t *arrive = calloc(TICKETS, sizeof *arrive), *replied = calloc(TICKETS, sizeof *replied);
    int *kind = calloc(TICKETS, sizeof *kind);
    struct event *ev = calloc(2 * TICKETS, sizeof *ev);
    /* arrivals: weekdays busier than weekends, mostly in the daytime */
    for (int i = 0; i < TICKETS; i++) {
        int64_t t;
        for (;;) {
            int day = (int)(uniform() * DAYS);
            int wd = day % 7;   /* 0 = Monday */
            if (wd >= 5 && uniform() > 0.3)
                continue;
            double hour = 7.0 + 13.0 * uniform();
            if (uniform() < 0.15)
                hour = 24.0 * uniform();
            t = start + day * 86400 + (int64_t)(hour * 3600);
            break;
        }
        arrive[i] = t;
        kind[i] = (int)(uniform() * KINDS);
    }
    /* time order, as the mailbox and the Sent folder would see them */
    qsort(arrive, TICKETS, sizeof *arrive, cmp_i64);
    for (int i = 0; i < TICKETS; i++) {
        int week = (int)((arrive[i] - start) / (7 * 86400));
        double hours = kinds[kind[i]].median_hours * week_factor(week) * exp(0.45 * normal());
        replied[i] = candor__eta_add_business(ctx, arrive[i], (int64_t)(hours * 3600));
        ev[2 * i] = (struct event){ arrive[i], i, false };
        ev[2 * i + 1] = (struct event){ replied[i], i, true };
    }
    qsort(ev, 2 * TICKETS, sizeof *ev, cmp_event);

    char path[512];
    snprintf(path, sizeof path, "%s/replay.db", test_tmpdir());
    struct candor_store *st = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&st, ctx, path, 0), CANDOR_OK);
    /* the replay measures promises, not fsync: the same SQL, less waiting */
    candor__db_exec(candor__store_db(st), "test", "PRAGMA synchronous=OFF");
    int acked = 0, errors = 0;
    for (int e = 0; e < 2 * TICKETS; e++) {
        int i = ev[e].ticket;
        char order[16], subject[128], body[512], date[64], buf[2048];
        snprintf(order, sizeof order, "A%05d", 10000 + i);
        fill(subject, sizeof subject, kinds[kind[i]].subject, order);
        fill(body, sizeof body, kinds[kind[i]].body, order);
        rfc5322(date, sizeof date, ev[e].at);
        if (!ev[e].reply) {
            snprintf(buf, sizeof buf, "Return-Path: <c%d@customer.example>\n"
                     "From: Customer %d <c%d@customer.example>\nTo: support@shop.example\n"
                     "Subject: %s\nDate: %s\nMessage-ID: <t%d@customer.example>\n\n%s\n",
                     i, i, i, subject, date, i, body);
            struct candor_message *m = parse(buf);
            candor_envelope_t env = CANDOR_ENVELOPE_INIT;
            env.now = ev[e].at;
            struct candor_ack *a = NULL;
            if (!m || candor_ack(&a, ctx, st, m, &env) != CANDOR_OK)
                errors++;
            else if (candor_ack_send(a))
                acked++;
            candor_ack_free(a);
            candor_message_free(m);
        } else {
            snprintf(buf, sizeof buf, "From: Support <support@shop.example>\n"
                     "To: c%d@customer.example\nSubject: Re: %s\nDate: %s\n"
                     "Message-ID: <r%d@shop.example>\nIn-Reply-To: <t%d@customer.example>\n\n"
                     "Hello, about %s: we looked into it and here is what we found.\n",
                     i, subject, date, i, i, order);
            struct candor_message *m = parse(buf);
            char *json = NULL;
            if (!m || candor_record_reply(ctx, st, m, ev[e].at, &json) != CANDOR_OK)
                errors++;
            candor_free(json);
            candor_message_free(m);
        }
    }
    CU_ASSERT_EQUAL(errors, 0);
    CU_ASSERT_EQUAL(acked, TICKETS);

    /* the figures: promises made after the first week */
    struct candor_db *db = candor__store_db(st);
    struct candor_stmt *q;
    CU_ASSERT_EQUAL_FATAL(candor__db_prepare(db, "test",
        "SELECT p.made, p.due - p.made, f.wait, f.kept, p.measured FROM promises p "
        "JOIN first_replies f ON f.ticket = p.ticket ORDER BY p.made", &q), CANDOR_OK);
    int64_t *promised = calloc(TICKETS, sizeof *promised), *actual = calloc(TICKETS, sizeof *actual);
    size_t n = 0;
    int kept = 0, measured = 0, wk_n[6] = { 0 }, wk_kept[6] = { 0 };
    while (candor__stmt_step(q) == CANDOR_DB_ROW) {
        int64_t made = candor__stmt_int64(q, 0);
        int week = (int)((made - start) / (7 * 86400));
        int k = (int)candor__stmt_int64(q, 3);
        if (week >= 0 && week < 6) {
            wk_n[week]++;
            wk_kept[week] += k;
        }
        if (week < 1)
            continue;
        promised[n] = candor__stmt_int64(q, 1);
        actual[n] = candor__stmt_int64(q, 2);
        kept += k;
        measured += (int)candor__stmt_int64(q, 4);
        n++;
    }
    candor__stmt_free(q);
    CU_ASSERT_FATAL(n > 0);
    qsort(promised, n, sizeof *promised, cmp_i64);
    qsort(actual, n, sizeof *actual, cmp_i64);
    double share = (double)kept / (double)n;
    double med_p = (double)promised[n / 2] / 3600.0, med_a = (double)actual[n / 2] / 3600.0;
    printf("\nreplay: %d tickets, %d acknowledged, %zu promises after week 1 (%d measured)\n",
           TICKETS, acked, n, measured);
    printf("replay: per week kept:");
    for (int w = 0; w < 6; w++)
        printf(" w%d %.0f%% (%d)", w + 1, wk_n[w] ? 100.0 * wk_kept[w] / wk_n[w] : 0.0, wk_n[w]);
    printf("\nreplay: promises kept after week 1: %.1f%% (need >= 90%%)\n", 100.0 * share);
    printf("replay: median promised wait %.2f h, median actual wait %.2f h, ratio %.2f "
           "(need <= 2)\n", med_p, med_a, med_a > 0 ? med_p / med_a : 0.0);
    CU_ASSERT(share >= 0.90);
    CU_ASSERT(med_p <= 2.0 * med_a);
    CU_ASSERT(measured > (int)n / 2);   /* the history was actually used */
    free(promised);
    free(actual);
    free(arrive);
    free(replied);
    free(kind);
    free(ev);
    candor_store_free(st);
    unlink(path);
}

static const struct test_case cases[] = {
    { "replay", test_replay },
    { NULL, NULL }
};

/* The shipped configuration (rules, triage, templates) with the <eta>
 * section of tests/data/ack/replay.xml: Paris time and a holiday. */
static char *replay_config(void)
{
    const char *dd = getenv("CANDOR_DATADIR");
    char base[1024];
    snprintf(base, sizeof base, "%s/candor.xml", dd ? dd : "lib/data");
    size_t blen = 0, rlen = 0;
    char *b = test_read(base, &blen), *r = test_read(test_data_path("ack/replay.xml"), &rlen);
    if (!b || !r)
        return NULL;
    b = realloc(b, blen + 1);
    r = realloc(r, rlen + 1);
    b[blen] = r[rlen] = '\0';
    char *be = strstr(b, "<eta "), *bend = be ? strstr(be, "</eta>") : NULL;
    char *re = strstr(r, "<eta "), *rend = re ? strstr(re, "</eta>") : NULL;
    static char path[1024];
    snprintf(path, sizeof path, "%s/replay.xml", test_tmpdir());
    FILE *f = fopen(path, "w");
    if (!be || !bend || !re || !rend || !f) {
        free(b);
        free(r);
        if (f)
            fclose(f);
        return NULL;
    }
    fwrite(b, 1, (size_t)(be - b), f);
    fwrite(re, 1, (size_t)(rend - re), f);
    fputs(bend, f);
    fclose(f);
    free(b);
    free(r);
    return path;
}

int main(void)
{
    const char *cfg = replay_config();
    ctx = cfg ? test_ctx(cfg) : NULL;
    int r = test_main("replay", cases);
    candor_ctx_free(ctx);
    return r;
}
