/*
 * bench-check.c — the canned check against a large reply history.
 *
 *   bench-check [--replies N] [--checks M] [--batch B] [--state FILE]
 *
 * Synthesises N earlier replies (default 100,000) to N/3 customers of 20
 * businesses: genuine replies built from word pools, 40 templates pasted
 * with names and numbers filled in, a footer per business, closings.
 * Ingests them through candor__canned_record() on a real state file
 * (candor_store_open, B replies per transaction) and reports replies/s;
 * then times M checks (default 300) of fresh replies against the full
 * history and, in the same run, M checks against an empty history (the
 * baseline: the text analysis alone), reporting median and p90 of each,
 * and the peak resident memory. Timing is reported, never asserted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include "store-db.h"
#include "candor.h"
#include "canned.h"
#include "message.h"
#include "store.h"

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }
static size_t pick(size_t n) { return (size_t)(next() % n); }

static const char *const words[] = {
    "order", "parcel", "invoice", "refund", "account", "delivery", "router", "meter", "card",
    "flight", "booking", "subscription", "plan", "payment", "charge", "address", "sofa",
    "lamp", "helmet", "prescription", "reading", "bill", "seat", "bag", "workspace", "export",
    "today", "tomorrow", "Monday", "Friday", "morning", "courier", "engineer", "team", "credit",
    "checked", "booked", "sent", "moved", "changed", "reversed", "added", "arrives", "collect",
    "replacement", "screws", "cushion", "tariff", "discount", "voucher", "luggage", "gate",
    "firmware", "password", "login", "report", "column", "project", "client", "tracking",
    "warehouse", "driver", "window", "slot", "label", "photo", "statement", "limit", "fee",
};
static const char *const names[] = { "Anna", "Ben", "Cara", "Dev", "Eli", "Fay", "Gus", "Hana",
    "Ivo", "Jo", "Kai", "Lea", "Max", "Nia", "Oli", "Pia", "Raj", "Sam", "Tia", "Uma" };

/* A vocabulary of 4,000 made-up words drawn with a Zipf-like skew, so
 * that paragraphs share common words as real replies do. */
static char vocab[4000][16];

static void make_vocab(void)
{
    static const char *const syl[] = { "ka", "ro", "mi", "ten", "sul", "pa", "ver", "lo", "di",
        "an", "es", "tor", "bel", "ny", "ga", "ru", "si", "mon", "te", "qua" };
    for (int i = 0; i < 4000; i++) {
        int x = i;
        size_t o = 0;
        for (int k = 0; k < 3; k++) {
            o += (size_t)snprintf(vocab[i] + o, sizeof vocab[i] - o, "%s", syl[x % 20]);
            x /= 20;
        }
    }
}

static const char *word(void)
{
    double u = (double)(next() % 1000000) / 1e6;
    size_t i = (size_t)(u * u * u * 4000);   /* skewed towards the first words */
    if (pick(4) == 0)
        return words[pick(sizeof words / sizeof *words)];
    return vocab[i % 4000];
}

static void sentence(char *buf, size_t size)
{
    size_t n = 8 + pick(10), o = 0;
    for (size_t i = 0; i < n && o + 40 < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? " " : "", word());
    if (pick(3) == 0 && o + 20 < size)
        o += (size_t)snprintf(buf + o, size - o, " %u", (unsigned)(pick(90000) + 100));
    snprintf(buf + o, size - o, ". ");
}

static char templates[40][1024];

static void make_templates(void)
{
    for (int t = 0; t < 40; t++) {
        size_t o = 0;
        for (int s = 0; s < 4; s++) {
            char sn[256];
            sentence(sn, sizeof sn);
            o += (size_t)snprintf(templates[t] + o, sizeof templates[t] - o, "%s", sn);
        }
    }
}

/* A reply text: greeting, 1-3 paragraphs (templates or genuine), closing, footer. */
static void reply_text(char *buf, size_t size, const char *name, int business, bool tpl)
{
    size_t o = (size_t)snprintf(buf, size, "Hi %s,\n\n", name);
    size_t paras = 1 + pick(3);
    for (size_t p = 0; p < paras; p++) {
        if (tpl && p == 0) {
            o += (size_t)snprintf(buf + o, size - o, "%s\n\n", templates[(business * 2 + (int)pick(2)) % 40]);
            continue;
        }
        for (int s = 0; s < 3; s++) {
            char sn[256];
            sentence(sn, sizeof sn);
            o += (size_t)snprintf(buf + o, size - o, "%s", sn);
        }
        o += (size_t)snprintf(buf + o, size - o, "\n\n");
    }
    snprintf(buf + o, size - o, "Kind regards,\n%s\n\nBusiness %d Ltd, registered in England no. %d. "
             "This email is confidential and intended only for the addressee.\n",
             names[pick(20)], business, 1000 + business);
}

static struct candor_message *msg(const char *from, const char *to, const char *toname,
                                  int64_t date, const char *text)
{
    struct candor_message *m = calloc(1, sizeof *m);
    m->from.address = strdup(from);
    m->to.v = calloc(1, sizeof *m->to.v);
    m->to.n = 1;
    m->to.v[0].address = strdup(to);
    m->to.v[0].name = strdup(toname);
    m->date = date;
    m->has_date = true;
    m->text = strdup(text);
    m->new_text = strdup(text);
    return m;
}

static void msg_free(struct candor_message *m)
{
    free(m->from.address);
    free(m->to.v[0].address);
    free(m->to.v[0].name);
    free(m->to.v);
    free(m->text);
    free(m->new_text);
    free(m);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this thread: on a shared machine the wall clock also
 * measures the neighbours, so both are reported. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void time_checks(const char *label, struct candor_ctx *ctx, struct candor_db *db, int m, int64_t t0)
{
    double *t = calloc((size_t)m, sizeof *t), *u = calloc((size_t)m, sizeof *u);
    static const char orig[] = "Hello,\n\nMy order 48812 arrived with the lamp shade cracked. Can you "
                               "send a replacement, and do I need to return the broken one?\n\nAnna\n";
    int flagged = 0;
    for (int i = 0; i < m; i++) {
        char text[8192], to[64];
        int business = (int)pick(20);
        snprintf(to, sizeof to, "c%zu@example.org", pick(1000000));
        reply_text(text, sizeof text, "Anna", business, i % 2 == 0);
        char from[64];
        snprintf(from, sizeof from, "help@business%d.example", business);
        struct candor_message *o = msg(to, from, "Support", t0 - 3600, orig);
        struct candor_message *r = msg(from, to, "Anna", t0, text);
        struct candor_check *chk = NULL;
        double a = now_s(), ac = cpu_s();
        if (candor__canned_check_db(&chk, ctx, db, o, r, t0) != CANDOR_OK) {
            fprintf(stderr, "check: %s\n", candor_errmsg());
            exit(1);
        }
        t[i] = now_s() - a;
        u[i] = cpu_s() - ac;
        flagged += candor__check_has(chk, "template_reuse");
        candor_check_free(chk);
        msg_free(o);
        msg_free(r);
    }
    qsort(t, (size_t)m, sizeof *t, cmp_d);
    qsort(u, (size_t)m, sizeof *u, cmp_d);
    printf("%-24s wall median %.3f ms p90 %.3f ms | cpu median %.3f ms p90 %.3f ms"
           " (template_reuse in %d of %d)\n", label, t[m / 2] * 1e3, t[m * 9 / 10] * 1e3,
           u[m / 2] * 1e3, u[m * 9 / 10] * 1e3, flagged, m);
    free(t);
    free(u);
}

int main(int argc, char **argv)
{
    int n = 100000, m = 300, batch = 1000;
    const char *state = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--replies")) n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--checks")) m = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--state")) state = argv[i + 1];
    }
    if (n < 1 || m < 1 || batch < 1) {
        fprintf(stderr, "usage: bench-check [--replies N] [--checks M] [--batch B] [--state FILE]\n");
        return 2;
    }
    char tmpl[] = "/tmp/bench-check-XXXXXX";
    char path[256];
    if (!state) {
        if (!mkdtemp(tmpl))
            return 1;
        snprintf(path, sizeof path, "%s/state.db", tmpl);
        state = path;
    }
    struct candor_ctx *ctx;
    if (candor_ctx_new(&ctx, NULL) != CANDOR_OK) {
        fprintf(stderr, "ctx: %s\n", candor_errmsg());
        return 1;
    }
    struct candor_store *store;
    if (candor_store_open(&store, ctx, state, 0) != CANDOR_OK) {
        fprintf(stderr, "store: %s\n", candor_errmsg());
        return 1;
    }
    if (getenv("BENCH_CACHE_MB")) { char q[64]; snprintf(q, sizeof q, "PRAGMA cache_size=-%d", atoi(getenv("BENCH_CACHE_MB")) * 1024); candor__db_exec(candor__store_db(store), "bench", q); }
    make_vocab();
    make_templates();
    int64_t t0 = 1793613600;   /* 2026-11-02T10:00:00Z */
    /* the first 2,000 one call each (as candor record-reply does), the rest
     * through one history handle (as an import of a Sent folder would) */
    int single = n < 4000 ? n / 2 : 2000;
    struct candor_history *h = NULL;
    double a = now_s(), a_single = 0, ac = cpu_s(), ac_single = 0;
    for (int i = 0; i < n; i++) {
        if (i == single) {
            a_single = now_s() - a;
            ac_single = cpu_s() - ac;
            ac = cpu_s();
            if (candor__history_open(&h, candor__store_db(store)) != CANDOR_OK)
                return 1;
            a = now_s();
        }
        if (i % batch == 0 && candor__store_begin(store) != CANDOR_OK)
            return 1;
        char text[8192], to[64], from[64], nm[16];
        int business = (int)pick(20);
        snprintf(to, sizeof to, "c%zu@example.org", pick((size_t)n / 3 + 1));
        snprintf(from, sizeof from, "help@business%d.example", business);
        snprintf(nm, sizeof nm, "%s", names[pick(20)]);
        reply_text(text, sizeof text, nm, business, pick(4) == 0);
        int64_t when = t0 - 86400 * 60 + (int64_t)i * (86400 * 60 / n);
        struct candor_message *r = msg(from, to, nm, when, text);
        if ((h ? candor__canned_record_h(ctx, h, r, to, when)
               : candor__canned_record(ctx, store, r, to, when)) != CANDOR_OK) {
            fprintf(stderr, "record: %s\n", candor_errmsg());
            return 1;
        }
        msg_free(r);
        if ((i + 1) % batch == 0 || i + 1 == n)
            if (candor__store_commit(store) != CANDOR_OK)
                return 1;
    }
    double ingest = now_s() - a, ingest_cpu = cpu_s() - ac;
    candor__history_close(h);
    printf("ingest, one call each:     %6d replies: %6.0f replies/s wall, %6.0f replies/s cpu\n",
           single, single / a_single, single / ac_single);
    printf("ingest, one history handle: %6d replies: %6.0f replies/s wall, %6.0f replies/s cpu"
           " (%d per transaction)\n", n - single, (n - single) / ingest, (n - single) / ingest_cpu, batch);
    struct candor_db *db = candor__store_db(store);
    struct candor_db *empty;
    candor__db_open_sqlite(&empty, ":memory:", CANDOR_DB_MEMORY);
    candor__store_history_migrate(empty, 0);
    time_checks("check, empty history:", ctx, empty, m, t0);
    time_checks("check, full history:", ctx, db, m, t0);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak resident memory: %.1f MiB\n", ru.ru_maxrss / 1024.0);
    candor__db_close(empty);
    candor_store_free(store);
    candor_ctx_free(ctx);
    if (state == path) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmpl);
        if (system(cmd) != 0)
            return 1;
    }
    return 0;
}
