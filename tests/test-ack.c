/* test-ack.c — acknowledgements end to end on a real state file: the
 * composed message parsed back by our parser (every header CONTRACT.md
 * and the issue name), no stacked prefixes, RFC 2047, no header
 * injection, languages; tickets; the outbox; record-reply and stats;
 * a property test (random sequences: at most one acknowledgement per
 * thread, at most one per sender per window); and several processes
 * acknowledging concurrently on one state file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <json-c/json.h>
#include "common.h"
#include "message.h"
#include "store.h"

/* A string equality that fails (instead of crashing) on NULL. */
#define CHECK_STR(a, b) do { const char *a_ = (a); CU_ASSERT_PTR_NOT_NULL(a_); \
    if (a_) CU_ASSERT_STRING_EQUAL(a_, b); } while (0)

static struct candor_ctx *ctx;
static const int64_t T0 = 1795504500;   /* Tue 2026-11-24T07:15:00Z */

static struct candor_message *parse_mem(const char *data, size_t len)
{
    struct candor_message *msg = NULL;
    if (candor_message_parse(&msg, ctx, data, len) != CANDOR_OK)
        fprintf(stderr, "parse: %s\n", candor_errmsg());
    return msg;
}

static struct candor_message *load(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "ack/%s.eml", name);
    size_t len = 0;
    void *data = test_read(test_data_path(rel), &len);
    if (!data)
        return NULL;
    struct candor_message *msg = parse_mem(data, len);
    free(data);
    return msg;
}

static char *new_state(void)
{
    static int n;
    char *p = malloc(512);
    char name[64];
    snprintf(name, sizeof name, "ack-%d-%d.db", (int)getpid(), n++);
    const char *where = test_state(name);   /* SQLite file or PostgreSQL schema */
    snprintf(p, 512, "%s", where ? where : "/nonexistent-dir/no-state");
    return p;
}

static struct candor_ack *ack_msg(struct candor_store *st, struct candor_message *msg,
                                  const char *sender, int64_t now)
{
    candor_envelope_t env = CANDOR_ENVELOPE_INIT;
    env.sender = sender;
    env.now = now;
    struct candor_ack *a = NULL;
    if (candor_ack(&a, ctx, st, msg, &env) != CANDOR_OK)
        fprintf(stderr, "ack: %s\n", candor_errmsg());
    return a;
}

static struct candor_ack *ack_file(struct candor_store *st, const char *name, int64_t now)
{
    struct candor_message *msg = load(name);
    if (!msg)
        return NULL;
    struct candor_ack *a = ack_msg(st, msg, NULL, now);
    candor_message_free(msg);
    return a;
}

/* The header section of RAW (up to the blank line). */
static char *header_of(const char *raw)
{
    const char *e = strstr(raw, "\r\n\r\n");
    return e ? strndup(raw, (size_t)(e - raw) + 2) : NULL;
}

/* Every header line is a "Name: " line of a known field or a folded
 * continuation; nothing else (no injected field). */
static bool headers_clean(const char *hdr)
{
    static const char *const known[] = {
        "From", "To", "Subject", "Date", "Message-ID", "In-Reply-To", "References",
        "Auto-Submitted", "X-Loop", "Precedence", "X-Auto-Response-Suppress",
        "X-Candor-Ticket", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
        "Content-Language", NULL
    };
    for (const char *p = hdr; *p;) {
        const char *e = strstr(p, "\r\n");
        if (!e)
            return false;
        for (const char *q = p; q < e; q++)
            if ((unsigned char)*q < 0x20 && *q != '\t')
                return false;
            else if ((unsigned char)*q >= 0x80)
                return false;   /* headers are 7-bit: RFC 2047 did its job */
        if ((size_t)(e - p) > 998)
            return false;
        if (*p != ' ' && *p != '\t') {
            bool ok = false;
            for (int i = 0; known[i] && !ok; i++) {
                size_t n = strlen(known[i]);
                ok = strncmp(p, known[i], n) == 0 && p[n] == ':';
            }
            if (!ok) {
                fprintf(stderr, "  unexpected header line: %.*s\n", (int)(e - p), p);
                return false;
            }
        }
        p = e + 2;
    }
    return true;
}

static void test_compose(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    char *path = new_state();
    struct candor_store *st = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&st, ctx, path, 0), CANDOR_OK);
    struct candor_ack *a = ack_file(st, "ok", T0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_TRUE(candor_ack_send(a));
    CHECK_STR(candor_ack_reason(a), "ok");
    CHECK_STR(candor_ack_ticket(a), "CND-000001");
    CHECK_STR(candor_ack_recipient(a), "alice@customer.example");
    const char *raw = candor_ack_message(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
    char *hdr = header_of(raw);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hdr);
    CU_ASSERT_TRUE(headers_clean(hdr));
    free(hdr);
    /* parsed back by our own parser */
    struct candor_message *m = parse_mem(raw, strlen(raw));
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CHECK_STR(m->from.address, "support@shop.example");
    CU_ASSERT_EQUAL(m->to.n, 1);
    if (m->to.n)
        CHECK_STR(m->to.v[0].address, "alice@customer.example");
    CHECK_STR(m->subject, "Auto: Where is my order A12345?");
    CHECK_STR(m->in_reply_to, "ok@customer.example");
    CU_ASSERT_EQUAL(m->references.n, 1);
    if (m->references.n)
        CHECK_STR(m->references.v[0], "ok@customer.example");
    CU_ASSERT_PTR_NOT_NULL(m->message_id);
    CU_ASSERT_TRUE(m->has_date);
    CU_ASSERT_EQUAL(m->date, T0);
    const char *v;
    CU_ASSERT_PTR_NOT_NULL(v = candor__message_header(m, "Auto-Submitted", 0));
    if (v) CHECK_STR(v, "auto-replied");
    CU_ASSERT_PTR_NOT_NULL(v = candor__message_header(m, "X-Loop", 0));
    if (v) CHECK_STR(v, "support@shop.example");
    CU_ASSERT_PTR_NOT_NULL(v = candor__message_header(m, "Precedence", 0));
    if (v) CHECK_STR(v, "bulk");
    CU_ASSERT_PTR_NOT_NULL(v = candor__message_header(m, "X-Auto-Response-Suppress", 0));
    if (v) CHECK_STR(v, "All");
    CU_ASSERT_PTR_NOT_NULL(v = candor__message_header(m, "X-Candor-Ticket", 0));
    if (v) CHECK_STR(v, "CND-000001");
    /* the text: automatic, what was understood, ticket, team, time */
    const char *text = m->text ? m->text : "";
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "automatic acknowledgement"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "Where is my order A12345?"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "CND-000001"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "Customer Support will answer you"));
    /* no history yet: a target, worded "we aim to" */
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "We aim to answer by 2026-11-24 17:00"));
    CU_ASSERT_PTR_NULL(strstr(text, "We will answer"));
    /* our own acknowledgement, if it came back, is a loop */
    struct candor_ack *again = ack_msg(st, m, "support@shop.example", T0 + 5);
    CU_ASSERT_PTR_NOT_NULL(again);
    CU_ASSERT_EQUAL(candor_ack_send(again), 0);
    CHECK_STR(candor_ack_reason(again), "loop");
    candor_ack_free(again);
    /* a reply to the acknowledgement alone (In-Reply-To our Message-ID),
     * from someone else: the thread is acknowledged already */
    char reply[512];
    int rl = snprintf(reply, sizeof reply, "From: bob@customer.example\nTo: support@shop.example\n"
                      "Subject: Re: Auto: Where is my order A12345?\nMessage-ID: <bob-1@customer.example>\n"
                      "In-Reply-To: <%s>\n\nThanks, but when exactly?\n", m->message_id ? m->message_id : "");
    struct candor_message *rm = parse_mem(reply, (size_t)rl);
    struct candor_ack *ra = rm ? ack_msg(st, rm, NULL, T0 + 60) : NULL;
    CU_ASSERT_PTR_NOT_NULL(ra);
    CHECK_STR(ra ? candor_ack_reason(ra) : NULL, "already_acknowledged");
    CHECK_STR(ra ? candor_ack_ticket(ra) : NULL, "CND-000001");
    candor_ack_free(ra);
    candor_message_free(rm);
    /* the JSON object */
    char *json = NULL;
    CU_ASSERT_EQUAL(candor_ack_to_json(a, &json), CANDOR_OK);
    json_object *o = json_tokener_parse(json), *x, *p;
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "send", &x) && json_object_get_boolean(x));
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "promise", &p) && p);
    CU_ASSERT_TRUE(json_object_object_get_ex(p, "by", &x) &&
                   strcmp(json_object_get_string(x), "2026-11-24T17:00:00Z") == 0);
    CU_ASSERT_TRUE(json_object_object_get_ex(p, "basis", &x) && json_object_get_string_len(x) > 20);
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "message", &x) &&
                   strcmp(json_object_get_string(x), raw) == 0);
    json_object_put(o);
    candor_free(json);
    candor_message_free(m);
    candor_ack_free(a);
    candor_store_free(st);
    unlink(path);
    free(path);
}

static void test_subject_and_injection(void)
{
    char *path = new_state();
    struct candor_store *st = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&st, ctx, path, 0), CANDOR_OK);
    static const struct { const char *file, *subject; } rows[] = {
        { "stacked", "Auto: Refund for my broken kettle" },
        { "nonascii-subject", "Auto: Commande n\xc2\xb0 A12345 pas re\xc3\xa7ue \xe2\x80\x94 o\xc3\xb9 est-elle ?" },
        { "inject-subject", "Auto: Help Bcc: victim@evil.example body" },
        { NULL, NULL }
    };
    for (int i = 0; rows[i].file; i++) {
        struct candor_message *in = load(rows[i].file);
        CU_ASSERT_PTR_NOT_NULL(in);
        if (!in)
            continue;
        /* distinct senders, so the rate limit stays out of the way */
        char sender[64];
        snprintf(sender, sizeof sender, "s%d@customer.example", i);
        struct candor_ack *a = ack_msg(st, in, sender, T0 + i);
        CU_ASSERT_PTR_NOT_NULL(a);
        const char *raw = a ? candor_ack_message(a) : NULL;
        CU_ASSERT_PTR_NOT_NULL(raw);
        if (raw) {
            char *hdr = header_of(raw);
            CU_ASSERT_TRUE(hdr && headers_clean(hdr));
            CU_ASSERT_PTR_NULL(hdr ? strstr(hdr, "\r\nBcc:") : "x");
            free(hdr);
            struct candor_message *m = parse_mem(raw, strlen(raw));
            CU_ASSERT_PTR_NOT_NULL(m);
            if (m && m->subject && strcmp(m->subject, rows[i].subject) != 0) {
                fprintf(stderr, "  %s: subject \"%s\"\n", rows[i].file, m->subject);
                CU_FAIL("subject");
            }
            CU_ASSERT_EQUAL(m ? candor__message_header(m, "Bcc", 0) : "x", NULL);
            candor_message_free(m);
        }
        candor_ack_free(a);
        candor_message_free(in);
    }
    candor_store_free(st);
    unlink(path);
    free(path);
}

/* The customer's language picks the template (triage's language). */
static void test_french(void)
{
    char *path = new_state();
    struct candor_store *st = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&st, ctx, path, 0), CANDOR_OK);
    struct candor_ack *a = ack_file(st, "fr", T0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    const char *raw = candor_ack_message(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
    struct candor_message *m = parse_mem(raw, strlen(raw));
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    const char *text = m->text ? m->text : "";
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "accus\xc3\xa9 de r\xc3\xa9" "ception automatique"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "A77881"));      /* the order number, understood */
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "Nous nous efforçons de vous répondre"));
    candor_message_free(m);
    candor_ack_free(a);
    candor_store_free(st);
    unlink(path);
    free(path);
}

/* A non-ASCII team name with quotes becomes encoded words; the From
 * address is our first address as configured; the config's templates
 * replace the built-in text, per intent when there is one. */
static void test_team_and_templates(void)
{
    struct candor_ctx *c2 = test_ctx(test_data_path("ack/team.xml"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
    struct candor_ctx *saved = ctx;
    ctx = c2;
    char *path = new_state();
    struct candor_store *st = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&st, ctx, path, 0), CANDOR_OK);
    char buf[512];
    int n = snprintf(buf, sizeof buf, "From: kim@customer.example\nTo: support@laden.example\n"
                     "Subject: money back\nMessage-ID: <kim-1@customer.example>\n\n"
                     "I want a refund for my order, please give me my money back.\n");
    struct candor_message *in = parse_mem(buf, (size_t)n);
    struct candor_ack *a = in ? ack_msg(st, in, NULL, T0) : NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    const char *raw = candor_ack_message(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
    char *hdr = header_of(raw);
    CU_ASSERT_TRUE(hdr && headers_clean(hdr));
    CU_ASSERT_PTR_NOT_NULL(hdr ? strstr(hdr, "From: =?UTF-8?B?") : NULL);
    CU_ASSERT_PTR_NOT_NULL(hdr ? strstr(hdr, "X-Loop: Hilfe+ack@Laden.example\r\n") : NULL);
    free(hdr);
    struct candor_message *m = parse_mem(raw, strlen(raw));
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CHECK_STR(m->from.name, "\xc3\x89quipe \"Caf\xc3\xa9\" M\xc3\xbcller");
    CHECK_STR(m->from.address, "Hilfe+ack@Laden.example");
    const char *text = m->text ? m->text : "";
    bool refund = strstr(text, "Refund template: a request for a refund.") != NULL;
    bool generic = strstr(text, "Automatic.") != NULL;
    CU_ASSERT_TRUE(refund || generic);   /* per-intent body when triage says refund */
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "CND-000001"));
    candor_message_free(m);
    candor_ack_free(a);
    candor_message_free(in);
    candor_store_free(st);
    unlink(path);
    free(path);
    ctx = saved;
    candor_ctx_free(c2);
}

static void test_tickets_and_outbox(void)
{
    char *path = new_state();
    struct candor_store *st = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&st, ctx, path, 0), CANDOR_OK);
    struct candor_ack *a = ack_file(st, "list-id", T0);       /* a list: no ticket */
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_FALSE(candor_ack_send(a));
    CU_ASSERT_PTR_NULL(candor_ack_ticket(a));
    CU_ASSERT_PTR_NULL(candor_ack_message(a));
    candor_ack_free(a);
    a = ack_file(st, "ok", T0 + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CHECK_STR(candor_ack_ticket(a), "CND-000001");
    candor_ack_free(a);
    a = ack_file(st, "ok", T0 + 2);                           /* same thread: same ticket */
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CHECK_STR(candor_ack_reason(a), "already_acknowledged");
    CHECK_STR(candor_ack_ticket(a), "CND-000001");
    candor_ack_free(a);
    a = ack_file(st, "nonascii-subject", T0 + 3);             /* same sender: rate limited, new ticket */
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CHECK_STR(candor_ack_reason(a), "rate_limited");
    CHECK_STR(candor_ack_ticket(a), "CND-000002");
    char *json = NULL;
    CU_ASSERT_EQUAL(candor_ack_to_json(a, &json), CANDOR_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"message\":null"));
    candor_free(json);
    candor_ack_free(a);
    /* the outbox: one pending, then sent */
    CU_ASSERT_EQUAL(candor_store_pending_acks(st, &json), CANDOR_OK);
    json_object *arr = json_tokener_parse(json);
    CU_ASSERT_EQUAL(json_object_array_length(arr), 1);
    json_object_put(arr);
    candor_free(json);
    CU_ASSERT_EQUAL(candor_store_ack_sent(st, "CND-000001", T0 + 5), CANDOR_OK);
    CU_ASSERT_EQUAL(candor_store_pending_acks(st, &json), CANDOR_OK);
    CHECK_STR(json, "[]");
    candor_free(json);
    CU_ASSERT_EQUAL(candor_store_ack_sent(st, "CND-000002", T0 + 5), CANDOR_ENOTFOUND);
    candor_store_free(st);
    /* read-only handles refuse to acknowledge */
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&st, ctx, path, CANDOR_STORE_READONLY), CANDOR_OK);
    struct candor_message *m = load("ok");
    CU_ASSERT_EQUAL(candor_ack(&a, ctx, st, m, NULL), CANDOR_EINVAL);
    CU_ASSERT_PTR_NULL(a);
    candor_message_free(m);
    candor_store_free(st);
    unlink(path);
    free(path);
}

/* candor_result_headers_ack: the X-Candor-Ticket and X-Candor-Autoreply
 * fields say what the acknowledgement decided, not triage's view; triage
 * without the store cannot see the rate limit, the decision can. */
static void test_headers_follow_decision(void)
{
    char *path = new_state();
    struct candor_store *st = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&st, ctx, path, 0), CANDOR_OK);
    static const char *const names[] = { "ok", "nonascii-subject" };   /* one sender */
    static const char *const want[] = {
        "X-Candor-Ticket: CND-000001\nX-Candor-Autoreply: yes; reason=ok\n",
        "X-Candor-Ticket: CND-000002\nX-Candor-Autoreply: no; reason=rate_limited\n",
    };
    for (int i = 0; i < 2; i++) {
        struct candor_message *m = load(names[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        candor_envelope_t env = CANDOR_ENVELOPE_INIT;
        env.now = T0 + i;
        struct candor_result *res = NULL;
        CU_ASSERT_EQUAL_FATAL(candor_triage(&res, ctx, m, NULL, &env, 0), CANDOR_OK);
        CU_ASSERT_TRUE(candor_result_autoreply_send(res));   /* no state: no rate limit seen */
        struct candor_ack *a = NULL;
        CU_ASSERT_EQUAL_FATAL(candor_ack_with_result(&a, ctx, st, m, res, &env), CANDOR_OK);
        char *h = NULL;
        CU_ASSERT_EQUAL(candor_result_headers_ack(res, a, "\n", &h), CANDOR_OK);
        CU_ASSERT_TRUE(h && strstr(h, want[i]));
        CU_ASSERT_TRUE(h && strstr(h, "X-Candor-Intent: "));
        candor_free(h);
        /* no decision: triage's fields, no ticket */
        CU_ASSERT_EQUAL(candor_result_headers_ack(res, NULL, "\r\n", &h), CANDOR_OK);
        CU_ASSERT_TRUE(h && strstr(h, "X-Candor-Autoreply: yes; reason=ok\r\n"));
        CU_ASSERT_TRUE(h && !strstr(h, "X-Candor-Ticket"));
        candor_free(h);
        CU_ASSERT_EQUAL(candor_result_headers_ack(res, a, "\r", &h), CANDOR_EINVAL);
        CU_ASSERT_PTR_NULL(h);
        CU_ASSERT_EQUAL(candor_result_headers_ack(NULL, a, "\n", &h), CANDOR_EINVAL);
        candor_ack_free(a);
        candor_result_free(res);
        candor_message_free(m);
    }
    candor_store_free(st);
    unlink(path);
    free(path);
}

static json_object *record(struct candor_store *st, const char *name, int64_t now)
{
    struct candor_message *m = load(name);
    if (!m)
        return NULL;
    char *json = NULL;
    candor_status_t s = candor_record_reply(ctx, st, m, now, &json);
    candor_message_free(m);
    CU_ASSERT_EQUAL(s, CANDOR_OK);
    json_object *o = json ? json_tokener_parse(json) : NULL;
    candor_free(json);
    return o;
}

static const char *jstr(json_object *o, const char *k)
{
    json_object *v;
    return o && json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : NULL;
}

/* -1 null, 0 false, 1 true, -2 absent */
static int jbool(json_object *o, const char *k)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, k, &v))
        return -2;
    return v ? json_object_get_boolean(v) : -1;
}

static void test_record_reply_and_stats(void)
{
    char *path = new_state();
    struct candor_store *st = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&st, ctx, path, 0), CANDOR_OK);
    candor_ack_free(ack_file(st, "ok", T0));          /* promise: 2026-11-24 17:00 */
    candor_ack_free(ack_file(st, "stacked", T0));     /* Erin: promise Tue 17:00 */
    /* the reply in the thread, Date 10:30 (before --now): first, kept */
    json_object *o = record(st, "reply-human", T0 + 86400);
    CHECK_STR(jstr(o, "ticket"), "CND-000001");
    CU_ASSERT_EQUAL(jbool(o, "first_response"), 1);
    CU_ASSERT_EQUAL(jbool(o, "promise_kept"), 1);
    json_object_put(o);
    o = record(st, "reply-second", T0 + 86400);
    CHECK_STR(jstr(o, "ticket"), "CND-000001");
    CU_ASSERT_EQUAL(jbool(o, "first_response"), 0);
    CU_ASSERT_EQUAL(jbool(o, "promise_kept"), -1);
    json_object_put(o);
    /* matched by recipient, a week late: promise broken */
    o = record(st, "reply-by-recipient", T0 + 30 * 86400);
    CHECK_STR(jstr(o, "ticket"), "CND-000002");
    CU_ASSERT_EQUAL(jbool(o, "first_response"), 1);
    CU_ASSERT_EQUAL(jbool(o, "promise_kept"), 0);
    json_object_put(o);
    /* a thread a person has answered counts as acknowledged: Alice's
     * second thread was rate limited (no automatic acknowledgement), then
     * answered by a person; her reply to that, days later, gets none */
    {
        static const char second[] = "Return-Path: <alice@customer.example>\n"
            "From: alice@customer.example\nTo: support@shop.example\nSubject: another thing\n"
            "Message-ID: <alice-2@customer.example>\n\nAnd my invoice is wrong.\n";
        static const char human[] = "From: support@shop.example\nTo: alice@customer.example\n"
            "Subject: Re: another thing\nMessage-ID: <human-2@shop.example>\n"
            "In-Reply-To: <alice-2@customer.example>\n\nWe corrected the invoice.\n";
        static const char again[] = "Return-Path: <alice@customer.example>\n"
            "From: alice@customer.example\nTo: support@shop.example\nSubject: Re: another thing\n"
            "Message-ID: <alice-3@customer.example>\nIn-Reply-To: <human-2@shop.example>\n\n"
            "Thank you!\n";
        struct candor_message *m1 = parse_mem(second, sizeof second - 1);
        struct candor_ack *a1 = m1 ? ack_msg(st, m1, NULL, T0 + 3600) : NULL;
        CHECK_STR(a1 ? candor_ack_reason(a1) : NULL, "rate_limited");
        CHECK_STR(a1 ? candor_ack_ticket(a1) : NULL, "CND-000003");
        struct candor_message *m2 = parse_mem(human, sizeof human - 1);
        char *js = NULL;
        CU_ASSERT_EQUAL(m2 ? candor_record_reply(ctx, st, m2, T0 + 7200, &js) : CANDOR_ERROR, CANDOR_OK);
        CU_ASSERT_PTR_NOT_NULL(js ? strstr(js, "CND-000003") : NULL);
        candor_free(js);
        struct candor_message *m3 = parse_mem(again, sizeof again - 1);
        struct candor_ack *a3 = m3 ? ack_msg(st, m3, NULL, T0 + 3 * 86400) : NULL;
        CHECK_STR(a3 ? candor_ack_reason(a3) : NULL, "already_acknowledged");
        CHECK_STR(a3 ? candor_ack_ticket(a3) : NULL, "CND-000003");
        candor_ack_free(a1);
        candor_ack_free(a3);
        candor_message_free(m1);
        candor_message_free(m2);
        candor_message_free(m3);
    }
    o = record(st, "reply-unknown", T0 + 30 * 86400);
    CU_ASSERT_EQUAL(jbool(o, "first_response"), 0);
    CU_ASSERT_EQUAL(jbool(o, "promise_kept"), -1);
    CU_ASSERT_PTR_NULL(jstr(o, "ticket"));
    json_object_put(o);

    char *json = NULL;
    CU_ASSERT_EQUAL(candor_stats_json(ctx, st, T0 + 30 * 86400, &json), CANDOR_OK);
    json_object *s = json ? json_tokener_parse(json) : NULL, *all = NULL, *v;
    CU_ASSERT_TRUE_FATAL(s && json_object_object_get_ex(s, "overall", &all));
    CU_ASSERT_TRUE(json_object_object_get_ex(all, "tickets", &v) && json_object_get_int(v) == 3);
    CU_ASSERT_TRUE(json_object_object_get_ex(all, "acknowledged", &v) && json_object_get_int(v) == 2);
    CU_ASSERT_TRUE(json_object_object_get_ex(all, "first_replies", &v) && json_object_get_int(v) == 3);
    CU_ASSERT_TRUE(json_object_object_get_ex(all, "promises_kept", &v) && json_object_get_int(v) == 1);
    CU_ASSERT_TRUE(json_object_object_get_ex(all, "promises_kept_share", &v) &&
                   json_object_get_double(v) == 0.5);
    /* first reply to Alice after 3h15 (07:15 -> 10:30) */
    CU_ASSERT_TRUE(json_object_object_get_ex(all, "p90_first_reply_seconds", &v) && v);
    CU_ASSERT_TRUE(json_object_object_get_ex(s, "intents", &v));
    json_object_put(s);
    candor_free(json);
    candor_store_free(st);
    unlink(path);
    free(path);
}

/* ---- property test ---- */

static uint64_t rng_state;
static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33) % n;
}

static struct candor_message *make(const char *from, const char *id, const char *irt,
                                   const char *refs, const char *subject)
{
    char buf[2048];
    int n = snprintf(buf, sizeof buf,
        "Return-Path: <%s>\nFrom: <%s>\nTo: support@shop.example\nSubject: %s\n"
        "Message-ID: <%s>\n%s%s%s%s%s%s\nHello, this is about my order, please help.\n",
        from, from, subject, id, irt ? "In-Reply-To: <" : "", irt ? irt : "", irt ? ">\n" : "",
        refs ? "References: " : "", refs ? refs : "", refs ? "\n" : "");
    return parse_mem(buf, (size_t)n);
}

static void test_property_thread(void)
{
    int rounds = 30, total_acks = 0;
    for (int r = 0; r < rounds; r++) {
        rng_state = 0x9e3779b97f4a7c15ULL + (uint64_t)r;
        char *path = new_state();
        struct candor_store *st = NULL;
        CU_ASSERT_EQUAL_FATAL(candor_store_open(&st, ctx, path, 0), CANDOR_OK);
        /* the property is about decisions, not fsync */
        if (!test_state_pg())
            candor__db_exec(candor__store_db(st), "test", "PRAGMA synchronous=OFF");
        int acks = 0, n = 5 + (int)rnd(20);
        int64_t now = T0;
        char ids[40][64];
        for (int i = 0; i < n; i++) {
            snprintf(ids[i], sizeof ids[i], "r%d-m%d@customer.example", r, i);
            char from[64], refs[512] = "";
            snprintf(from, sizeof from, "person%u@customer.example", rnd(4));
            const char *irt = NULL;
            if (i > 0) {
                int parent = (int)rnd((uint32_t)i);
                irt = ids[parent];
                /* References: root .. parent, sometimes missing */
                if (rnd(3))
                    snprintf(refs, sizeof refs, "<%s> <%s>", ids[0], ids[parent]);
            }
            now += rnd(4) ? (int64_t)rnd(7200) : (int64_t)rnd(30 * 86400);
            struct candor_message *m = make(from, ids[i], irt, refs[0] ? refs : NULL,
                                            i ? "Re: my order" : "my order");
            struct candor_ack *a = m ? ack_msg(st, m, NULL, now) : NULL;
            if (a && candor_ack_send(a))
                acks++;
            candor_ack_free(a);
            candor_message_free(m);
        }
        if (acks != 1) {
            fprintf(stderr, "  round %d: %d acknowledgements in one thread\n", r, acks);
            CU_FAIL("one thread, one acknowledgement");
        }
        total_acks += acks;
        candor_store_free(st);
        unlink(path);
        free(path);
    }
    CU_ASSERT_EQUAL(total_acks, rounds);
}

/* Every id of a long References chain joins the ticket's thread (they are
 * recorded several to a statement): a later message from someone else that
 * refers to any one of them is already acknowledged, on the same ticket. */
static void test_long_references(void)
{
    static const struct { const char *name; int ref; } rows[] = {
        { "first reference", 0 }, { "last reference", 11 }, { "middle reference", 6 },
        { "second chunk", 5 }, { "near the end", 9 }, { "near the start", 2 },
    };
    char *path = new_state();
    struct candor_store *st = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&st, ctx, path, 0), CANDOR_OK);
    char refs[1024] = "";
    size_t len = 0;
    for (int i = 0; i < 12; i++)
        len += (size_t)snprintf(refs + len, sizeof refs - len, "%s<lr-x%d@customer.example>",
                                i ? " " : "", i);
    struct candor_message *m = make("first@customer.example", "lr-m0@customer.example",
                                    NULL, refs, "my order");
    struct candor_ack *a = m ? ack_msg(st, m, NULL, T0) : NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_TRUE(candor_ack_send(a));
    char ticket[32];
    snprintf(ticket, sizeof ticket, "%s", candor_ack_ticket(a) ? candor_ack_ticket(a) : "");
    candor_ack_free(a);
    candor_message_free(m);
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        char from[64], id[64], irt[64];
        snprintf(from, sizeof from, "other%zu@customer.example", r);
        snprintf(id, sizeof id, "lr-reply%zu@customer.example", r);
        snprintf(irt, sizeof irt, "lr-x%d@customer.example", rows[r].ref);
        m = make(from, id, irt, NULL, "Re: my order");
        a = m ? ack_msg(st, m, NULL, T0 + 60 + (int64_t)r) : NULL;
        CU_ASSERT_PTR_NOT_NULL(a);
        if (a && (strcmp(candor_ack_reason(a), "already_acknowledged") != 0 ||
                  !candor_ack_ticket(a) || strcmp(candor_ack_ticket(a), ticket) != 0)) {
            fprintf(stderr, "  %s: %s %s\n", rows[r].name, candor_ack_reason(a),
                    candor_ack_ticket(a) ? candor_ack_ticket(a) : "-");
            CU_FAIL("a reference of the thread not recorded");
        }
        candor_ack_free(a);
        candor_message_free(m);
    }
    candor_store_free(st);
    unlink(path);
    free(path);
}

static void test_property_sender(void)
{
    int rounds = 20;
    for (int r = 0; r < rounds; r++) {
        rng_state = 0x2545f4914f6cdd1dULL + (uint64_t)r;
        char *path = new_state();
        struct candor_store *st = NULL;
        CU_ASSERT_EQUAL_FATAL(candor_store_open(&st, ctx, path, 0), CANDOR_OK);
        if (!test_state_pg())
            candor__db_exec(candor__store_db(st), "test", "PRAGMA synchronous=OFF");
        int64_t now = T0, sent[64];
        int acks = 0, n = 10 + (int)rnd(30);
        for (int i = 0; i < n; i++) {
            char id[64], subj[64];
            snprintf(id, sizeof id, "s%d-t%d@customer.example", r, i);
            snprintf(subj, sizeof subj, "question number %d", i);
            now += (int64_t)rnd(10 * 3600);
            /* the same person, written in several ways */
            const char *from = rnd(2) ? "Frank@Customer.Example" : "frank+shop@customer.example";
            struct candor_message *m = make(from, id, NULL, NULL, subj);
            struct candor_ack *a = m ? ack_msg(st, m, NULL, now) : NULL;
            if (a && candor_ack_send(a) && acks < 64)
                sent[acks++] = now;
            candor_ack_free(a);
            candor_message_free(m);
        }
        for (int i = 1; i < acks; i++)
            if (sent[i] - sent[i - 1] < 24 * 3600) {
                fprintf(stderr, "  round %d: acks %lld s apart\n", r,
                        (long long)(sent[i] - sent[i - 1]));
                CU_FAIL("one sender, one acknowledgement per window");
            }
        CU_ASSERT_TRUE(acks >= 1);
        candor_store_free(st);
        unlink(path);
        free(path);
    }
}

/* ---- several processes on one state file ---- */

#define PROCS 4
#define SENDERS 6

static void test_concurrent_processes(void)
{
    char *path = new_state();
    struct candor_store *st = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&st, ctx, path, 0), CANDOR_OK);
    candor_store_free(st);   /* created and migrated; the children share it */
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            int bad = 0;
            struct candor_store *s = NULL;
            if (candor_store_open(&s, ctx, path, 0) != CANDOR_OK)
                _exit(3);
            /* every process sees the same 24 messages in its own order:
             * 6 senders x 2 threads x (first mail + a follow-up) */
            rng_state = 77 + (uint64_t)p;
            int order[24];
            for (int i = 0; i < 24; i++)
                order[i] = i;
            for (int i = 23; i > 0; i--) {
                int j = (int)rnd((uint32_t)i + 1), t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            for (int k = 0; k < 24; k++) {
                int i = order[k], sender = i / 4, thread = (i / 2) % 2, follow = i % 2;
                char from[64], id[64], root[64];
                snprintf(from, sizeof from, "c%d@customer.example", sender);
                snprintf(root, sizeof root, "c%d-t%d@customer.example", sender, thread);
                snprintf(id, sizeof id, "c%d-t%d-%d@customer.example", sender, thread, follow);
                struct candor_message *m = follow ? make(from, id, root, NULL, "Re: help")
                                                  : make(from, root, NULL, NULL, "help");
                struct candor_ack *a = m ? ack_msg(s, m, NULL, T0 + 60) : NULL;
                if (!a)
                    bad++;
                candor_ack_free(a);
                candor_message_free(m);
            }
            candor_store_free(s);
            free(path);   /* valgrind checks the child's leaks at _exit too */
            _exit(bad ? 1 : 0);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int status = 0;
        waitpid(pids[p], &status, 0);
        CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    CU_ASSERT_EQUAL_FATAL(candor_store_open(&st, ctx, path, CANDOR_STORE_READONLY), CANDOR_OK);
    struct candor_db *db = candor__store_db(st);
    static const struct { const char *sql; int want; } checks[] = {
        /* one acknowledgement per sender (the window), none doubled */
        { "SELECT count(*) FROM acks", SENDERS },
        { "SELECT count(DISTINCT recipient) FROM acks", SENDERS },
        /* one ticket per thread, whoever came first */
        { "SELECT count(*) FROM tickets", SENDERS * 2 },
        /* every message id of a thread maps to the thread's one ticket,
         * whichever message of it arrived first */
        { "SELECT count(*) FROM (SELECT substr(message_id, 1, 5) AS th, "
          "count(DISTINCT ticket) AS n FROM threads WHERE message_id LIKE 'c_-t%' "
          "GROUP BY th) AS g WHERE n <> 1", 0 },
        { "SELECT count(DISTINCT substr(message_id, 1, 5)) FROM threads "
          "WHERE message_id LIKE 'c_-t%'", SENDERS * 2 },
        { "SELECT count(*) FROM decisions", PROCS * 24 },
        { NULL, 0 }
    };
    for (int i = 0; checks[i].sql; i++) {
        struct candor_stmt *q;
        int got = -1;
        CU_ASSERT_EQUAL_FATAL(candor__db_prepare(db, "test", checks[i].sql, &q), CANDOR_OK);
        if (candor__stmt_step(q) == CANDOR_DB_ROW)
            got = (int)candor__stmt_int64(q, 0);
        candor__stmt_free(q);
        if (got != checks[i].want) {
            fprintf(stderr, "  %s: want %d, got %d\n", checks[i].sql, checks[i].want, got);
            CU_FAIL("concurrent state");
        }
    }
    candor_store_free(st);
    unlink(path);
    free(path);
}

static const struct test_case cases[] = {
    { "compose", test_compose },
    { "subject_and_injection", test_subject_and_injection },
    { "french", test_french },
    { "team_and_templates", test_team_and_templates },
    { "tickets_and_outbox", test_tickets_and_outbox },
    { "headers_follow_decision", test_headers_follow_decision },
    { "record_reply_and_stats", test_record_reply_and_stats },
    { "property_thread", test_property_thread },
    { "long_references", test_long_references },
    { "property_sender", test_property_sender },
    { "concurrent_processes", test_concurrent_processes },
    { NULL, NULL }
};

int main(void)
{
    ctx = test_ctx(NULL);
    int r = test_main("ack", cases);
    candor_ctx_free(ctx);
    return r;
}
