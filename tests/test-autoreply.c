/* test-autoreply.c — the auto-reply decision: each reason of CONTRACT.md
 * with its own fixture (tests/data/autoreply/), the precedence between
 * reasons, the envelope options, and the reasons that need the state
 * (already_acknowledged, rate_limited, what starts the window). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common.h"
#include "autoreply.h"
#include "message.h"

static struct candor_ctx *ctx;

static struct candor_message *load(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "autoreply/%s.eml", name);
    size_t len = 0;
    void *data = test_read(test_data_path(rel), &len);
    if (!data)
        return NULL;
    struct candor_message *msg = NULL;
    candor_status_t st = candor_message_parse(&msg, ctx, data, len);
    free(data);
    if (st != CANDOR_OK)
        fprintf(stderr, "%s: %s\n", name, candor_errmsg());
    return msg;
}

/* Without a store: one fixture per reason, and pairs where the earlier
 * reason of CONTRACT.md's list must win. */
static const struct row { const char *file, *reason; } rows[] = {
    { "auto-oof-reply-de", "auto_submitted" },
    { "auto-oof-reply", "auto_submitted" },
    { "auto-report", "auto_submitted" },
    { "auto-submitted-comment", "auto_submitted" },
    { "auto-submitted-replied", "auto_submitted" },
    { "auto-suppress-all", "auto_submitted" },
    { "auto-suppress-oof", "auto_submitted" },
    { "auto-x-autoreply", "auto_submitted" },
    { "auto-x-autorespond", "auto_submitted" },
    { "inject-subject", "ok" },
    { "list-ezmlm", "mailing_list" },
    { "list-id", "mailing_list" },
    { "list-post", "mailing_list" },
    { "list-unsubscribe", "mailing_list" },
    { "loop-delivered-to-twice", "loop" },
    { "loop-from-header", "loop" },
    { "loop-from-ours", "loop" },
    { "loop-x-loop-yes", "loop" },
    { "loop-x-loop", "loop" },
    { "no-sender-garbage", "no_sender" },
    { "no-sender-missing", "no_sender" },
    { "no-sender-null", "no_sender" },
    { "nonascii-subject", "ok" },
    { "not-addressed-display-name", "not_addressed_to_us" },
    { "not-addressed-lookalike", "not_addressed_to_us" },
    { "not-addressed", "not_addressed_to_us" },
    { "ok-auto-submitted-no", "ok" },
    { "ok-auto-submitted-upper-no-param", "ok" },
    { "ok-cc", "ok" },
    { "ok-delivered-to-once", "ok" },
    { "ok-dmarc-pass", "ok" },
    { "ok-no-return-path", "ok" },
    { "ok-oof-subject-not-reply", "ok" },
    { "ok-precedence-first-class", "ok" },
    { "ok-resent", "ok" },
    { "ok-spam-no", "ok" },
    { "ok-subaddress", "ok" },
    { "ok-suppress-dr", "ok" },
    { "ok-untrusted-dmarc", "ok" },
    { "ok-x-loop-other", "ok" },
    { "ok", "ok" },
    { "prec-auto-and-precedence", "auto_submitted" },
    { "prec-list-and-system", "mailing_list" },
    { "prec-loop-and-auto", "loop" },
    { "prec-null-and-loop", "no_sender" },
    { "prec-precedence-and-list", "precedence" },
    { "prec-spam-and-not-addressed", "suspected_spam" },
    { "prec-spoofed-and-spam", "spoofed" },
    { "prec-system-and-spoofed", "system_sender" },
    { "precedence-auto-reply", "precedence" },
    { "precedence-bulk", "precedence" },
    { "precedence-junk", "precedence" },
    { "precedence-list", "precedence" },
    { "spam-flag", "suspected_spam" },
    { "spam-status", "suspected_spam" },
    { "spam-x", "suspected_spam" },
    { "spoofed-second-header", "spoofed" },
    { "spoofed", "spoofed" },
    { "system-do-not-reply", "system_sender" },
    { "system-donotreply", "system_sender" },
    { "system-listserv", "system_sender" },
    { "system-mailer-daemon", "system_sender" },
    { "system-majordomo", "system_sender" },
    { "system-no-reply", "system_sender" },
    { "system-no_reply", "system_sender" },
    { "system-noreply-suffix", "system_sender" },
    { "system-noreply", "system_sender" },
    { "system-owner", "system_sender" },
    { "system-postmaster", "system_sender" },
    { "system-request", "system_sender" },
    { NULL, NULL }
};

static void test_fixtures(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    for (const struct row *r = rows; r->file; r++) {
        struct candor_message *msg = load(r->file);
        CU_ASSERT_PTR_NOT_NULL(msg);
        if (!msg)
            continue;
        char *rcpt = NULL;
        const char *got = candor__autoreply_decide(ctx, msg, NULL, NULL, &rcpt);
        if (!got || strcmp(got, r->reason) != 0) {
            fprintf(stderr, "  %s: want %s, got %s\n", r->file, r->reason, got ? got : "(error)");
            CU_FAIL("wrong reason");
        }
        /* the recipient of an acknowledgement is the envelope sender */
        if (got && strcmp(got, "ok") == 0)
            CU_ASSERT_PTR_NOT_NULL(rcpt);
        free(rcpt);
        candor_message_free(msg);
    }
}

/* Envelope options override the message; "<>" and "" are the null sender. */
static void test_envelope(void)
{
    static const struct { const char *name, *sender, *file, *want, *rcpt; } env_rows[] = {
        { "sender-null-angle", "<>", "ok", "no_sender", NULL },
        { "sender-null-empty", "", "ok", "no_sender", NULL },
        { "sender-option-like", "-oQ/tmp/x@evil.example", "ok", "no_sender", NULL },
        { "sender-with-space", "a b@evil.example", "ok", "no_sender", NULL },
        { "sender-override-noreply", "no.reply@customer.example", "ok", "system_sender", NULL },
        { "sender-override-ours", "Support@shop.example", "ok", "loop", NULL },
        { "sender-override-ok", "<carol@customer.example>", "no-sender-null", "ok", "carol@customer.example" },
        { "return-path-wins-over-from", NULL, "ok-no-return-path", "ok", "alice@customer.example" },
        { NULL, NULL, NULL, NULL, NULL }
    };
    for (int i = 0; env_rows[i].name; i++) {
        struct candor_message *msg = load(env_rows[i].file);
        CU_ASSERT_PTR_NOT_NULL(msg);
        if (!msg)
            continue;
        candor_envelope_t env = CANDOR_ENVELOPE_INIT;
        env.sender = env_rows[i].sender;
        char *rcpt = NULL;
        const char *got = candor__autoreply_decide(ctx, msg, NULL, &env, &rcpt);
        if (!got || strcmp(got, env_rows[i].want) != 0) {
            fprintf(stderr, "  %s: want %s, got %s\n", env_rows[i].name, env_rows[i].want,
                    got ? got : "(error)");
            CU_FAIL("wrong reason");
        }
        if (env_rows[i].rcpt) {
            CU_ASSERT_PTR_NOT_NULL(rcpt);
            if (rcpt)
                CU_ASSERT_STRING_EQUAL(rcpt, env_rows[i].rcpt);
        }
        free(rcpt);
        candor_message_free(msg);
    }
}

/* Our addresses from the options (as --address does): +tag counts. */
static void test_addresses_option(void)
{
    const char *addrs[] = { "help@other.example", "Orders@Shop.Example" };
    candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
    o.addresses = addrs;
    o.n_addresses = 2;
    o.trusted_authserv = "mx.other.example";
    struct candor_ctx *c2 = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_ctx_new(&c2, &o), CANDOR_OK);
    struct candor_message *msg = load("ok-subaddress");   /* To: support+orders@Shop.Example */
    CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
    const char *got = candor__autoreply_decide(c2, msg, NULL, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL(got);
    if (got)
        CU_ASSERT_STRING_EQUAL(got, "not_addressed_to_us");
    candor_message_free(msg);
    msg = load("spoofed");    /* dmarc=fail from mx.shop.example: not trusted any more */
    CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
    got = candor__autoreply_decide(c2, msg, NULL, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL(got);
    if (got)   /* not addressed to help@ or orders@ either */
        CU_ASSERT_STRING_EQUAL(got, "not_addressed_to_us");
    candor_message_free(msg);
    candor_ctx_free(c2);
}

/* ---- with the state ---- */

static char *state_path(void)
{
    static int n;
    char *p = malloc(512);
    snprintf(p, 512, "%s/autoreply-%d.db", test_tmpdir(), n++);
    return p;
}

static const char *decide_at(struct candor_store *st, const char *file, const char *sender,
                             int64_t now)
{
    struct candor_message *msg = load(file);
    if (!msg)
        return NULL;
    candor_envelope_t env = CANDOR_ENVELOPE_INIT;
    env.sender = sender;
    env.now = now;
    const char *r = candor__autoreply_decide(ctx, msg, st, &env, NULL);
    candor_message_free(msg);
    return r;
}

/* Acknowledge FILE (as `candor ack` does) and return the reason. */
static const char *ack_at(struct candor_store *st, const char *file, const char *sender,
                          int64_t now)
{
    struct candor_message *msg = load(file);
    if (!msg)
        return NULL;
    candor_envelope_t env = CANDOR_ENVELOPE_INIT;
    env.sender = sender;
    env.now = now;
    struct candor_ack *a = NULL;
    const char *r = NULL;
    if (candor_ack(&a, ctx, st, msg, &env) == CANDOR_OK)
        r = candor_ack_reason(a);
    else
        fprintf(stderr, "ack: %s\n", candor_errmsg());
    candor_ack_free(a);
    candor_message_free(msg);
    return r;   /* static strings */
}

#define ASSERT_REASON(expr, want) do { const char *got_ = (expr); \
    if (!got_ || strcmp(got_, want) != 0) { \
        fprintf(stderr, "  line %d: want %s, got %s\n", __LINE__, want, got_ ? got_ : "(error)"); \
        CU_FAIL(#expr); } } while (0)

static const int64_t T0 = 1795508100;   /* 2026-11-24T08:15:00Z */

static void test_thread_and_rate(void)
{
    char *path = state_path();
    struct candor_store *st = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&st, ctx, path, 0), CANDOR_OK);
    /* before anything: ok */
    ASSERT_REASON(decide_at(st, "ok", NULL, T0), "ok");
    ASSERT_REASON(ack_at(st, "ok", NULL, T0), "ok");
    /* the same message again (redelivered): already acknowledged */
    ASSERT_REASON(decide_at(st, "ok", NULL, T0 + 60), "already_acknowledged");
    /* a reply in the thread from someone else, two months later */
    ASSERT_REASON(decide_at(st, "thread-reply", "<bob@customer.example>", T0 + 60 * 86400),
                  "already_acknowledged");
    /* a reply to our acknowledgement only (In-Reply-To our ack) is in the
     * thread too: covered by test-ack. */
    /* a new thread from the same sender within 24 h: rate limited */
    ASSERT_REASON(decide_at(st, "new-thread", NULL, T0 + 3600), "rate_limited");
    ASSERT_REASON(decide_at(st, "new-thread", "<Alice+x@Customer.Example>", T0 + 23 * 3600),
                  "rate_limited");
    /* a rate-limited decision does not extend the window */
    ASSERT_REASON(ack_at(st, "new-thread", NULL, T0 + 23 * 3600), "rate_limited");
    ASSERT_REASON(decide_at(st, "new-thread-2", NULL, T0 + 24 * 3600), "ok");
    /* another sender is not limited */
    ASSERT_REASON(decide_at(st, "new-thread", "<dave@customer.example>", T0 + 3600), "ok");
    /* a robot reason comes before the state: list mail in the thread */
    ASSERT_REASON(decide_at(st, "list-id", NULL, T0 + 60), "mailing_list");
    /* already_acknowledged comes before rate_limited */
    ASSERT_REASON(decide_at(st, "thread-reply", NULL, T0 + 60), "already_acknowledged");
    /* not_addressed_to_us comes before already_acknowledged */
    ASSERT_REASON(decide_at(st, "thread-reply-not-addressed", NULL, T0 + 60),
                  "not_addressed_to_us");
    candor_store_free(st);
    unlink(path);
    free(path);
}

/* Only sent acknowledgements start the window: suppressed mail does not. */
static void test_window_starts_on_ack_only(void)
{
    char *path = state_path();
    struct candor_store *st = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&st, ctx, path, 0), CANDOR_OK);
    ASSERT_REASON(ack_at(st, "precedence-bulk", NULL, T0), "precedence");
    ASSERT_REASON(ack_at(st, "not-addressed", NULL, T0 + 10), "not_addressed_to_us");
    ASSERT_REASON(ack_at(st, "ok", NULL, T0 + 20), "ok");
    candor_store_free(st);
    unlink(path);
    free(path);
}

/* A configured window (here 1 hour, 2 per sender). */
static void test_configured_window(void)
{
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s", test_data_path("autoreply/window.xml"));
    struct candor_ctx *c2 = test_ctx(cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
    struct candor_ctx *saved = ctx;
    ctx = c2;
    char *path = state_path();
    struct candor_store *st = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&st, ctx, path, 0), CANDOR_OK);
    ASSERT_REASON(ack_at(st, "ok", NULL, T0), "ok");
    ASSERT_REASON(ack_at(st, "new-thread", NULL, T0 + 60), "ok");
    ASSERT_REASON(ack_at(st, "new-thread-2", NULL, T0 + 120), "rate_limited");
    ASSERT_REASON(decide_at(st, "new-thread-2", NULL, T0 + 3601), "ok");
    candor_store_free(st);
    unlink(path);
    free(path);
    ctx = saved;
    candor_ctx_free(c2);
}

static void test_bad_args(void)
{
    CU_ASSERT_PTR_NULL(candor__autoreply_decide(NULL, NULL, NULL, NULL, NULL));
}

static const struct test_case cases[] = {
    { "fixtures", test_fixtures },
    { "envelope", test_envelope },
    { "addresses_option", test_addresses_option },
    { "thread_and_rate", test_thread_and_rate },
    { "window_starts_on_ack_only", test_window_starts_on_ack_only },
    { "configured_window", test_configured_window },
    { "bad_args", test_bad_args },
    { NULL, NULL }
};

int main(void)
{
    ctx = test_ctx(NULL);
    int r = test_main("autoreply", cases);
    candor_ctx_free(ctx);
    return r;
}
