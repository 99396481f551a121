/* test-lmtpd-ack.c — the entry points candor-lmtpd decides with:
 * candor_ack_with_result() (the daemon's own triage result, no second
 * triage) and candor_ack_batch() (several sessions' decisions in one
 * transaction: group commit) must give exactly what candor_ack() gives —
 * decision, reason, ticket, recipient, promise, the acknowledgement's bytes
 * (its random Message-ID part aside) and the outbox — message after message
 * on the same state; also inside the caller's write group
 * (candor_store_begin), where a rollback keeps no decision. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common.h"

static struct candor_ctx *ctx;
static const int64_t T0 = 1795504500;   /* Tue 2026-11-24T07:15:00Z */

/* Named rows: the order matters (same sender, same thread, robots). */
static const struct row {
    const char *name, *sender, *text;
    int64_t dt;   /* seconds after T0 */
} rows[] = {
    { "order question with order number", "alice@customer.example",
      "From: Alice <alice@customer.example>\nTo: support@shop.example\n"
      "Subject: Where is my order A10442?\nMessage-ID: <a1@customer.example>\n"
      "Date: Tue, 24 Nov 2026 07:10:00 +0000\n\n"
      "Hello, my order A10442 has not arrived. It was due last week. Where is it?\n", 0 },
    { "same sender again (rate limit)", "alice@customer.example",
      "From: Alice <alice@customer.example>\nTo: support@shop.example\n"
      "Subject: also: can I change my address\nMessage-ID: <a2@customer.example>\n"
      "Date: Tue, 24 Nov 2026 07:20:00 +0000\n\n"
      "Please send future orders to my new address.\n", 600 },
    { "reply in the first thread", "alice@customer.example",
      "From: Alice <alice@customer.example>\nTo: support@shop.example\n"
      "Subject: Re: Where is my order A10442?\nMessage-ID: <a3@customer.example>\n"
      "In-Reply-To: <a1@customer.example>\nReferences: <a1@customer.example>\n"
      "Date: Tue, 24 Nov 2026 08:00:00 +0000\n\nAny news?\n", 2700 },
    { "french refund", "bruno@client.example",
      "From: Bruno <bruno@client.example>\nTo: support@shop.example\n"
      "Subject: Remboursement de ma commande B20931\nMessage-ID: <b1@client.example>\n"
      "Date: Tue, 24 Nov 2026 07:30:00 +0000\n\n"
      "Bonjour, je voudrais être remboursé pour la commande B20931, le produit est "
      "arrivé cassé. Merci de me répondre rapidement.\n", 900 },
    { "robot (auto-submitted)", "noreply@robot.example",
      "From: Robot <noreply@robot.example>\nTo: support@shop.example\n"
      "Subject: Your weekly report\nMessage-ID: <r1@robot.example>\n"
      "Auto-Submitted: auto-generated\nDate: Tue, 24 Nov 2026 07:40:00 +0000\n\n"
      "Report attached.\n", 1500 },
    { "list mail", "news@list.example",
      "From: News <news@list.example>\nTo: support@shop.example\n"
      "Subject: Newsletter\nMessage-ID: <l1@list.example>\nList-Id: <news.list.example>\n"
      "Precedence: bulk\nDate: Tue, 24 Nov 2026 07:45:00 +0000\n\nNews.\n", 1800 },
    { "billing question, second customer", "carol@customer.example",
      "From: Carol <carol@customer.example>\nTo: support@shop.example\n"
      "Subject: I was charged twice\nMessage-ID: <c1@customer.example>\n"
      "Date: Tue, 24 Nov 2026 08:10:00 +0000\n\n"
      "My card was charged twice for invoice 5521. Please fix this.\n", 3300 },
};
#define N_ROWS (sizeof rows / sizeof rows[0])

static char *new_state(void)
{
    static int n;
    char *p = malloc(512);
    snprintf(p, 512, "%s/lmtpd-ack-%d-%d.db", test_tmpdir(), (int)getpid(), n++);
    return p;
}

static struct candor_store *open_store(char **path)
{
    *path = new_state();
    struct candor_store *st = NULL;
    if (candor_store_open(&st, ctx, *path, 0) != CANDOR_OK)
        fprintf(stderr, "store: %s\n", candor_errmsg());
    CU_ASSERT_PTR_NOT_NULL(st);
    return st;
}

static struct candor_message *parse_row(const struct row *r)
{
    struct candor_message *m = NULL;
    CU_ASSERT_EQUAL(candor_message_parse(&m, ctx, r->text, strlen(r->text)), CANDOR_OK);
    return m;
}

static candor_envelope_t env_of(const struct row *r)
{
    candor_envelope_t e = CANDOR_ENVELOPE_INIT;
    e.sender = r->sender;
    e.recipient = "support@shop.example";
    e.now = T0 + r->dt;
    return e;
}

/* Everything an acknowledgement says, as one string; the 12 random hex
 * digits of its Message-ID ("candor.CND-n.TIME.RANDOM@") replaced. */
static char *describe(const struct candor_ack *a)
{
    if (!a)
        return strdup("(none)");
    char *json = NULL;
    CU_ASSERT_EQUAL(candor_ack_to_json(a, &json), CANDOR_OK);
    const char *rcpt = candor_ack_recipient(a);
    size_t n = (json ? strlen(json) : 0) + (rcpt ? strlen(rcpt) : 0) + 64;
    char *s = malloc(n);
    snprintf(s, n, "send=%d rcpt=%s %s", candor_ack_send(a), rcpt ? rcpt : "-",
             json ? json : "-");
    candor_free(json);
    for (char *p = s; (p = strstr(p, "candor.CND-")); p++) {
        char *at = strchr(p, '@');
        if (at && at - p > 12)
            memset(at - 12, 'x', 12);
    }
    return s;
}

static char *pending(struct candor_store *st)
{
    char *json = NULL;
    CU_ASSERT_EQUAL(candor_store_pending_acks(st, &json), CANDOR_OK);
    char *s = strdup(json ? json : "");
    candor_free(json);
    for (char *p = s; (p = strstr(p, "candor.CND-")); p++) {
        char *at = strchr(p, '@');
        if (at && at - p > 12)
            memset(at - 12, 'x', 12);
    }
    return s;
}

/* The reference: candor_ack() row after row on a fresh state. */
static char **reference(char **outbox)
{
    char *path;
    struct candor_store *st = open_store(&path);
    char **out = calloc(N_ROWS, sizeof *out);
    for (size_t i = 0; st && i < N_ROWS; i++) {
        struct candor_message *m = parse_row(&rows[i]);
        candor_envelope_t e = env_of(&rows[i]);
        struct candor_ack *a = NULL;
        CU_ASSERT_EQUAL(candor_ack(&a, ctx, st, m, &e), CANDOR_OK);
        out[i] = describe(a);
        if (getenv("LMTPD_ACK_SHOW"))
            fprintf(stderr, "%s: %.300s\n", rows[i].name, out[i]);
        candor_ack_free(a);
        candor_message_free(m);
    }
    *outbox = st ? pending(st) : strdup("");
    candor_store_free(st);
    unlink(path);
    free(path);
    return out;
}

static void free_strs(char **v)
{
    for (size_t i = 0; v && i < N_ROWS; i++)
        free(v[i]);
    free(v);
}

static void check_same(const char *how, size_t i, const char *want, const char *got)
{
    CU_ASSERT_STRING_EQUAL(got, want);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "%s, row \"%s\":\n  want %s\n  got  %s\n", how, rows[i].name, want, got);
}

/* candor_ack_with_result() with the daemon's triage (on the store, with
 * the envelope, as candor-lmtpd calls it) gives what candor_ack() gives. */
static void test_with_result_same_output(void)
{
    char *ref_outbox;
    char **ref = reference(&ref_outbox);
    char *path;
    struct candor_store *st = open_store(&path);
    for (size_t i = 0; st && i < N_ROWS; i++) {
        struct candor_message *m = parse_row(&rows[i]);
        candor_envelope_t e = env_of(&rows[i]);
        struct candor_result *res = NULL;
        CU_ASSERT_EQUAL(candor_triage(&res, ctx, m, st, &e, 0), CANDOR_OK);
        struct candor_ack *a = NULL;
        CU_ASSERT_EQUAL(candor_ack_with_result(&a, ctx, st, m, res, &e), CANDOR_OK);
        char *got = describe(a);
        check_same("with_result", i, ref[i], got);
        free(got);
        candor_ack_free(a);
        candor_result_free(res);
        candor_message_free(m);
    }
    char *outbox = st ? pending(st) : strdup("");
    CU_ASSERT_STRING_EQUAL(outbox, ref_outbox);
    free(outbox);
    free(ref_outbox);
    free_strs(ref);
    candor_store_free(st);
    unlink(path);
    free(path);
}

/* All rows in one candor_ack_batch() call (in chunks of SIZE) give what
 * candor_ack() gives one by one; BAD (an index or -1) gets no result and
 * must fail alone with CANDOR_EINVAL. GROUP: each call inside the
 * caller's write group (candor_store_begin/commit), as candor-lmtpd makes
 * it with the delivery log's rows. */
static void batch_case(size_t size, int bad, bool group)
{
    char *ref_outbox;
    char **ref = reference(&ref_outbox);
    char *path;
    struct candor_store *st = open_store(&path);
    struct candor_message *msgs[N_ROWS];
    struct candor_result *res[N_ROWS];
    candor_envelope_t envs[N_ROWS];
    const candor_envelope_t *envp[N_ROWS];
    for (size_t i = 0; i < N_ROWS; i++) {
        msgs[i] = parse_row(&rows[i]);
        envs[i] = env_of(&rows[i]);
        envp[i] = &envs[i];
        res[i] = NULL;
        if ((int)i != bad)
            CU_ASSERT_EQUAL(candor_triage(&res[i], ctx, msgs[i], NULL, &envs[i], 0), CANDOR_OK);
    }
    for (size_t at = 0; st && at < N_ROWS; at += size) {
        size_t k = N_ROWS - at < size ? N_ROWS - at : size;
        struct candor_ack *outs[N_ROWS];
        candor_status_t sts[N_ROWS];
        if (group)
            CU_ASSERT_EQUAL(candor_store_begin(st), CANDOR_OK);
        CU_ASSERT_EQUAL(candor_ack_batch(outs, sts, ctx, st,
                                         (const struct candor_message *const *)msgs + at,
                                         (const struct candor_result *const *)res + at,
                                         envp + at, k), CANDOR_OK);
        if (group)
            CU_ASSERT_EQUAL(candor_store_commit(st), CANDOR_OK);
        for (size_t j = 0; j < k; j++) {
            size_t i = at + j;
            if ((int)i == bad) {
                CU_ASSERT_EQUAL(sts[j], CANDOR_EINVAL);
                CU_ASSERT_PTR_NULL(outs[j]);
                continue;
            }
            CU_ASSERT_EQUAL(sts[j], CANDOR_OK);
            char *got = describe(outs[j]);
            /* with a bad row, the rows after it differ from the reference
             * only if the bad one had changed the state: it is a robot */
            check_same("batch", i, ref[i], got);
            free(got);
            candor_ack_free(outs[j]);
        }
    }
    if (bad < 0) {
        char *outbox = st ? pending(st) : strdup("");
        CU_ASSERT_STRING_EQUAL(outbox, ref_outbox);
        free(outbox);
    }
    for (size_t i = 0; i < N_ROWS; i++) {
        candor_result_free(res[i]);
        candor_message_free(msgs[i]);
    }
    free(ref_outbox);
    free_strs(ref);
    candor_store_free(st);
    unlink(path);
    free(path);
}

static void test_batch_all_at_once(void) { batch_case(N_ROWS, -1, false); }
static void test_batch_in_pairs(void) { batch_case(2, -1, false); }
static void test_batch_of_one(void) { batch_case(1, -1, false); }
/* row 4 is the robot: it records nothing, so the others are unchanged */
static void test_batch_bad_item_alone(void) { batch_case(N_ROWS, 4, false); }
static void test_batch_in_group(void) { batch_case(N_ROWS, -1, true); }
static void test_batch_of_one_in_group(void) { batch_case(1, -1, true); }
static void test_batch_bad_item_in_group(void) { batch_case(2, 4, true); }

/* Decisions made inside a write group that is rolled back are not kept:
 * the same mail decided again afterwards gets the first decision (an
 * acknowledgement), not "already acknowledged", and the outbox is empty
 * in between. */
static void test_batch_group_rolled_back(void)
{
    char *path;
    struct candor_store *st = open_store(&path);
    if (!st) {
        free(path);
        return;
    }
    struct candor_message *m = parse_row(&rows[0]);
    candor_envelope_t e = env_of(&rows[0]);
    const candor_envelope_t *ep = &e;
    struct candor_result *res = NULL;
    CU_ASSERT_EQUAL(candor_triage(&res, ctx, m, NULL, &e, 0), CANDOR_OK);
    const struct candor_message *ms[1] = { m };
    const struct candor_result *rs[1] = { res };
    struct candor_ack *outs[1] = { NULL };
    candor_status_t sts[1];
    CU_ASSERT_EQUAL(candor_store_begin(st), CANDOR_OK);
    CU_ASSERT_EQUAL(candor_ack_batch(outs, sts, ctx, st, ms, rs, &ep, 1), CANDOR_OK);
    CU_ASSERT_EQUAL(sts[0], CANDOR_OK);
    CU_ASSERT_TRUE(outs[0] && candor_ack_send(outs[0]));
    candor_ack_free(outs[0]);
    candor_store_rollback(st);
    char *box = pending(st);
    CU_ASSERT_STRING_EQUAL(box, "[]");
    if (strcmp(box, "[]") != 0)
        fprintf(stderr, "outbox after the rollback: %s\n", box);
    free(box);
    outs[0] = NULL;
    CU_ASSERT_EQUAL(candor_ack_batch(outs, sts, ctx, st, ms, rs, &ep, 1), CANDOR_OK);
    CU_ASSERT_EQUAL(sts[0], CANDOR_OK);
    CU_ASSERT_TRUE(outs[0] && candor_ack_send(outs[0]));
    if (outs[0] && !candor_ack_send(outs[0]))
        fprintf(stderr, "after the rollback: %s\n", candor_ack_reason(outs[0]));
    candor_ack_free(outs[0]);
    candor_result_free(res);
    candor_message_free(m);
    candor_store_free(st);
    unlink(path);
    free(path);
}

static void test_bad_arguments(void)
{
    char *path;
    struct candor_store *st = open_store(&path);
    struct candor_message *m = parse_row(&rows[0]);
    candor_envelope_t e = env_of(&rows[0]);
    struct candor_ack *a = (struct candor_ack *)1;
    CU_ASSERT_EQUAL(candor_ack_with_result(&a, ctx, st, m, NULL, &e), CANDOR_EINVAL);
    CU_ASSERT_PTR_NULL(a);
    struct candor_result *res = NULL;
    CU_ASSERT_EQUAL(candor_triage(&res, ctx, m, NULL, &e, 0), CANDOR_OK);
    CU_ASSERT_EQUAL(candor_ack_with_result(NULL, ctx, st, m, res, &e), CANDOR_EINVAL);
    CU_ASSERT_EQUAL(candor_ack_with_result(&a, ctx, NULL, m, res, &e), CANDOR_EINVAL);
    candor_status_t sts[1];
    CU_ASSERT_EQUAL(candor_ack_batch(NULL, sts, ctx, st, NULL, NULL, NULL, 1), CANDOR_EINVAL);
    struct candor_ack *outs[1];
    CU_ASSERT_EQUAL(candor_ack_batch(outs, sts, ctx, st, NULL, NULL, NULL, 0), CANDOR_OK);
    /* a read-only store refuses, item by item */
    struct candor_store *ro = NULL;
    CU_ASSERT_EQUAL(candor_store_open(&ro, ctx, path, CANDOR_STORE_READONLY), CANDOR_OK);
    const struct candor_message *ms[1] = { m };
    const struct candor_result *rs[1] = { res };
    CU_ASSERT_EQUAL(candor_ack_batch(outs, sts, ctx, ro, ms, rs, NULL, 1), CANDOR_OK);
    CU_ASSERT_EQUAL(sts[0], CANDOR_EINVAL);
    CU_ASSERT_PTR_NULL(outs[0]);
    candor_store_free(ro);
    candor_result_free(res);
    candor_message_free(m);
    candor_store_free(st);
    unlink(path);
    free(path);
}

int main(void)
{
    ctx = test_ctx(NULL);
    if (!ctx)
        return 1;
    static const struct test_case cases[] = {
        { "with_result gives candor_ack's output", test_with_result_same_output },
        { "batch of all rows gives candor_ack's output", test_batch_all_at_once },
        { "batches of two give candor_ack's output", test_batch_in_pairs },
        { "batches of one give candor_ack's output", test_batch_of_one },
        { "a bad item in a batch fails alone", test_batch_bad_item_alone },
        { "a batch in the caller's write group gives candor_ack's output", test_batch_in_group },
        { "batches of one in write groups give candor_ack's output", test_batch_of_one_in_group },
        { "a bad item in a batch in a write group fails alone", test_batch_bad_item_in_group },
        { "a rolled-back write group keeps no decision", test_batch_group_rolled_back },
        { "bad arguments", test_bad_arguments },
        { NULL, NULL },
    };
    int rc = test_main("lmtpd-ack", cases);
    candor_ctx_free(ctx);
    return rc;
}
