/* test-canned.c — the canned-reply check (lib/canned.c, lib/store-history.c).
 * Messages are built in memory (struct candor_message) so that the check
 * is tested on its own; the history lives in an in-memory SQLite database. */
#include <stdlib.h>
#include <string.h>
#include "store-db.h"
#include "common.h"
#include "canned.h"
#include "message.h"
#include "store.h"

static struct candor_ctx *ctx;

static void set_addr(struct candor_addr *a, const char *name, const char *addr)
{
    a->name = name ? candor__strdup(name) : NULL;
    a->address = addr ? candor__strdup(addr) : NULL;
}

static struct candor_message *mk(const char *from_name, const char *from, const char *to_name,
                                 const char *to, int64_t date, const char *text)
{
    struct candor_message *m = calloc(1, sizeof *m);
    m->ctx = ctx;
    set_addr(&m->from, from_name, from);
    m->to.v = calloc(1, sizeof *m->to.v);
    m->to.n = 1;
    set_addr(&m->to.v[0], to_name, to);
    m->date = date;
    m->has_date = date != 0;
    m->text = candor__strdup(text);
    m->new_text = candor__strdup(text);
    return m;
}

static void freemsg(struct candor_message *m)
{
    if (!m)
        return;
    free(m->from.name);
    free(m->from.address);
    for (size_t i = 0; i < m->to.n; i++) {
        free(m->to.v[i].name);
        free(m->to.v[i].address);
    }
    free(m->to.v);
    free(m->text);
    free(m->new_text);
    free(m->message_id);
    free(m);
}

#define T0 1793613600   /* 2026-11-02T10:00:00Z */

static struct candor_check *check(struct candor_db *db, const char *orig_text, const char *orig_name,
                                  const char *reply_text, const char *signer, int64_t now)
{
    struct candor_message *o = mk(orig_name, "anna.berg@example.org", "Support",
                                  "help@shop.example", T0 - 7200, orig_text);
    struct candor_message *r = mk(signer, "help@shop.example", orig_name,
                                  "anna.berg@example.org", T0 - 60, reply_text);
    struct candor_check *chk = NULL;
    CU_ASSERT_EQUAL(candor__canned_check_db(&chk, ctx, db, o, r, now), CANDOR_OK);
    freemsg(o);
    freemsg(r);
    return chk;
}

static const char q_order[] =
    "Hello,\n\nMy order A10442 arrived with the lamp shade cracked. Can you send a "
    "replacement shade, and do I need to return the broken one?\n\nAnna Berg\n";

static void test_own_text(void)
{
    static const struct { const char *name, *in, *want_in, *want_out; } rows[] = {
        { "gmail_quote", "Thanks, done.\n\nOn Tue, 3 Nov 2026 at 10:00, Anna <a@b.example> wrote:\n> old text\n",
          "Thanks, done.", "old text" },
        { "wrapped_attribution", "Done.\n\nOn Thu, 22 Oct 2026 at 17:30, Marek Horvath\n<marek@x.example> wrote:\n> q\n",
          "Done.", "Marek" },
        { "outlook_unquoted", "Sorted for you.\n\n-----Original Message-----\nFrom: A\nSent: today\n\nOrder A10442 broke\n",
          "Sorted for you.", "A10442" },
        { "outlook_header_block", "Sorted.\n\nFrom: Anna <a@b.example>\nSent: Monday\nTo: us\nSubject: x\n\nOrder A10442\n",
          "Sorted.", "A10442" },
        { "signature", "Refunded today.\n\n-- \nShop Ltd, 1 High St\n", "Refunded today.", "High St" },
        { "inline_answers", "On Mon, Anna wrote:\n> Do you ship to Spain?\nYes, in 3 days.\n> And the price?\nFree.\n",
          "Free.", "ship to Spain" },
        { "french_attribution", "C'est fait.\n\nLe 3 nov. 2026 à 10:00, Anna a écrit :\n> vieux\n", "fait", "vieux" },
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        char *own = candor__canned_own_text(rows[i].in);
        CU_ASSERT_PTR_NOT_NULL_FATAL(own);
        bool ok = strstr(own, rows[i].want_in) && !strstr(own, rows[i].want_out);
        if (!ok)
            fprintf(stderr, "row %s: own text [%s]\n", rows[i].name, own);
        CU_ASSERT_TRUE(ok);
        free(own);
    }
}

/* Rows: the customer's text, the reply, and what must (not) be found. */
struct row {
    const char *name, *orig, *orig_name, *reply, *signer;
    bool flagged;
    const char *has[4], *hasnt[4];
};

static const struct row rows[] = {
    { "terse_complete", q_order, "Anna Berg",
      "Hi Anna,\n\nSorry about that - I've sent a new shade for A10442 by courier today, it "
      "arrives Thursday. No need to return the cracked one, just recycle it.\n\nTom\n",
      "Tom Hale", false, { NULL }, { "unresponsive", "no_next_step", "no_empathy", "impersonal" } },
    { "generic_paste", q_order, "Anna Berg",
      "Dear Valued Customer,\n\nThank you for contacting us. We apologize for any inconvenience "
      "this may have caused. Your satisfaction is our top priority.\n\nFor information about "
      "returns, please visit our Help Center at shop.example/help.\n\nKind regards,\n"
      "Customer Care Team\n",
      "Customer Care", true, { "unresponsive", "stock_phrase", "impersonal", "deflection" },
      { NULL } },
    { "warm_but_empty", q_order, "Anna Berg",
      "Hi Anna,\n\nThank you so much for reaching out, and I'm truly sorry to hear about your "
      "experience. We care deeply about every customer and your feedback really matters to "
      "us.\n\nI've made a note on your account so the whole team is aware.\n\nTake care,\nTom\n",
      "Tom Hale", true, { "unresponsive", "no_next_step" }, { "impersonal", "no_empathy" } },
    { "one_stock_closing_is_fine", q_order, "Anna Berg",
      "Hi Anna,\n\nI'm sorry the shade cracked. I've sent a replacement shade for order A10442 "
      "today by courier; it will arrive on Thursday. You don't need to return the broken one.\n\n"
      "Please do not hesitate to contact me if anything else comes up.\n\nTom\n",
      "Tom Hale", false, { "stock_phrase" }, { "unresponsive" } },
    { "no_empathy_procedure", q_order, "Anna Berg",
      "Hi Anna,\n\nReturns are accepted within 30 days. Print the returns form from your "
      "account and drop the parcel at any post office.\n\nTom\n",
      "Tom Hale", true, { "no_empathy", "unresponsive", "no_next_step" }, { NULL } },
    { "empty_reply", q_order, "Anna Berg", "", NULL, true, { "unresponsive" }, { NULL } },
    { "all_quoted", q_order, "Anna Berg",
      "On Mon, 2 Nov 2026 at 08:00, Anna Berg <anna.berg@example.org> wrote:\n> My order A10442 "
      "arrived with the lamp shade cracked.\n", "Tom Hale", true, { "unresponsive" }, { NULL } },
    { "other_language", q_order, "Anna Berg",
      "Hallo Anna,\n\nvielen Dank für Ihre Nachricht. Wir haben die Ersatzlieferung für die "
      "Bestellung veranlasst und sie ist in der Post.\n\nTom\n",
      "Tom Hale", true, { "unresponsive" }, { NULL } },
    { "phone_number_is_no_fact", q_order, "Anna Berg",
      "Hi Anna,\n\nThanks for your message. Returns can be arranged by phone: call us on "
      "0800 555 0142.\n\nTom\n", "Tom Hale", true, { "unresponsive", "deflection" }, { NULL } },
    { "terse_facts_answer", "Do the Hayden stools come assembled? Thinking of ordering four.\nLewis\n",
      "Lewis Grant", "Hi Lewis - they arrive with the legs off: four bolts each, key included, "
      "about ten minutes per stool.\nIdris\n", "Idris Khan", false, { NULL }, { "unresponsive" } },
    { "conditional_is_no_action", q_order, "Anna Berg",
      "Hi Anna,\n\nOnce a parcel has been delivered, claims are handled by the carrier. "
      "Please contact the courier with your tracking number.\n\nTom\n", "Tom Hale", true,
      { "no_next_step", "deflection" }, { NULL } },
    { "link_after_full_answer", q_order, "Anna Berg",
      "Hi Anna,\n\nSorry about the shade. I've sent a replacement for A10442 today, arriving "
      "Thursday; keep the broken one. Our care guide is at shop.example/care if useful.\n\nTom\n",
      "Tom Hale", false, { NULL }, { "deflection", "unresponsive" } },
    { "action_on_the_customers_subject_in_other_words",
      "Hi,\n\nMy router died last night - the power light won't come on at all. Can you send a new one?\n\nAnna\n",
      "Anna Berg", "Hi Anna,\n\nA replacement router was dispatched today by courier and arrives "
      "Thursday; plug it in and it sets itself up.\n\nTom\n", "Tom Hale", false, { NULL },
      { "unresponsive" } },
    { "praise_needs_no_answer",
      "Hello,\n\nJust wanted to say the crew on CA 221 yesterday were wonderful, especially Priyanka "
      "who looked after my nervous son.\n\nAnna\n", "Anna Berg",
      "Hi Anna,\n\nThank you - that's lovely to hear. I've passed your message to Priyanka and her "
      "manager so it goes on her record.\n\nTom\n", "Tom Hale", false, { NULL }, { "unresponsive" } },
    { "no_with_an_alternative",
      "Hi,\n\nCan I get a refund on my Saver fare for booking K7TP2Q? My plans changed.\n\nAnna\n",
      "Anna Berg", "Hi Anna,\n\nI'm afraid not - Saver fares can't be refunded, but you can move the "
      "date once for free before 20 November. Just reply with the new date and I'll rebook it.\n\nTom\n",
      "Tom Hale", false, { NULL }, { "unresponsive" } },
    { "facts_beside_the_point",
      "Hello,\n\nYour meter reader left our gate open again and the dog escaped onto the road. "
      "Please fix the gate latch and tell me how you will stop this happening again.\n\nAnna Berg\n",
      "Anna Berg", "Hi Anna,\n\nYour meter was read on 27 October 2026 and the reading has been "
      "added to your account.\n\nTom\n", "Tom Hale", true, { "unresponsive", "no_empathy" }, { NULL } },
    { "generic_greeting_no_name_known",
      "Hello,\n\nWhat is the lead time for 40 Hayden chairs, and is there a trade price?\n\n"
      "Purchasing\nNorthwind Cafes Ltd\n", "Purchasing Team",
      "Hello,\n\nThe lead time for 40 Hayden chairs is three weeks and the trade price is "
      "£79 each instead of £99; I've attached a quote valid until 30 November.\n\nTom Hale\n",
      "Tom Hale", false, { NULL }, { "impersonal", "unresponsive" } },
};

static void test_rows(void)
{
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        const struct row *r = &rows[i];
        struct candor_check *chk = check(NULL, r->orig, r->orig_name, r->reply, r->signer, T0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(chk);
        bool flagged = strcmp(candor_check_verdict(chk), "ok") != 0;
        bool ok = flagged == r->flagged;
        for (size_t k = 0; k < 4 && r->has[k]; k++)
            ok &= candor__check_has(chk, r->has[k]);
        for (size_t k = 0; k < 4 && r->hasnt[k]; k++)
            ok &= !candor__check_has(chk, r->hasnt[k]);
        CU_ASSERT_TRUE(candor_check_score(chk) >= 0 && candor_check_score(chk) <= 1);
        if (!ok) {
            char *json = NULL;
            candor_check_to_json(chk, &json);
            fprintf(stderr, "row %s: %s\n", r->name, json);
            candor_free(json);
        }
        CU_ASSERT_TRUE(ok);
        candor_check_free(chk);
    }
}

static void test_json(void)
{
    struct candor_check *chk = check(NULL, q_order, "Anna Berg", rows[1].reply, "Customer Care", T0);
    char *json = NULL;
    CU_ASSERT_EQUAL(candor_check_to_json(chk, &json), CANDOR_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(json);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"score\":"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"verdict\":\"canned\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"kind\":\"stock_phrase\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"weight\":"));
    candor_free(json);
    candor_check_free(chk);
    CU_ASSERT_EQUAL(candor_check_to_json(NULL, &json), CANDOR_EINVAL);
}

/* ---- history: template_reuse and repeat_send ---- */

/* A fresh, empty database: an SQLite file, or a PostgreSQL schema when the
 * run is against PostgreSQL (common.h). */
static struct candor_db *empty_db(void)
{
    struct candor_db *db = NULL;
    const char *where = test_state("history.db");
    CU_ASSERT_PTR_NOT_NULL_FATAL(where);
    CU_ASSERT_EQUAL_FATAL(candor__db_open(&db, where), CANDOR_OK);
    return db;
}

static struct candor_db *history(void)
{
    struct candor_db *db = empty_db();
    CU_ASSERT_EQUAL(candor__store_history_migrate(db, 0), CANDOR_OK);
    CU_ASSERT_EQUAL(candor__store_history_migrate(db, 1), CANDOR_OK);   /* idempotent */
    return db;
}

static const char tpl_body[] =
    "Thank you for contacting Shop. We understand how important it is to receive your order "
    "on time.\n\nPlease be advised that orders are processed in the order in which they are "
    "received and may be subject to checks by our warehouse team. Processing times can vary "
    "depending on courier response and stock availability, so you can check the status of "
    "any order at any time in your account.\n\n";
static const char footer[] =
    "Shop Ltd, 1 High Street, Leeds. Registered in England no. 01234567. This email is "
    "confidential and intended only for the person it is addressed to.\n";

static void record(struct candor_db *db, const char *to, const char *name, int64_t when, const char *body)
{
    char text[4096];
    snprintf(text, sizeof text, "Hi %s,\n\n%s\nKind regards,\nTom\n\n%s", name, body, footer);
    struct candor_message *m = mk("Tom", "help@shop.example", name, to, when, text);
    char *rcpt = candor__addr_normalize(to);
    CU_ASSERT_EQUAL(candor__canned_record_db(ctx, db, m, rcpt, when), CANDOR_OK);
    free(rcpt);
    freemsg(m);
}

static void test_template_reuse(void)
{
    struct candor_db *db = history();
    static const char *const names[] = { "Ben", "Cara", "Dev", "Eli", "Fay", "Gus" };
    /* genuine replies that all carry the footer */
    for (int i = 0; i < 6; i++) {
        char to[64], body[512];
        snprintf(to, sizeof to, "c%d@example.org", i);
        snprintf(body, sizeof body, "Your %s parcel number %d left the depot this morning and "
                 "the driver will ring before arriving on Friday between nine and noon.\n", names[i], i);
        record(db, to, names[i], T0 - 86400 * (10 - i), body);
    }
    /* the template to two other recipients: not yet enough */
    record(db, "x1@example.org", "Hal", T0 - 86400 * 3, tpl_body);
    record(db, "x2@example.org", "Ida", T0 - 86400 * 2, tpl_body);
    char reply[4096];
    snprintf(reply, sizeof reply, "Hi Anna,\n\n%s\nKind regards,\nTom\n\n%s", tpl_body, footer);
    struct candor_check *chk = check(db, q_order, "Anna Berg", reply, "Tom", T0);
    CU_ASSERT_FALSE(candor__check_has(chk, "template_reuse"));
    candor_check_free(chk);
    /* the same template to the customer herself does not count */
    record(db, "anna.berg@example.org", "Anna", T0 - 86400 * 5, tpl_body);
    chk = check(db, q_order, "Anna Berg", reply, "Tom", T0);
    CU_ASSERT_FALSE(candor__check_has(chk, "template_reuse"));
    candor_check_free(chk);
    /* a third other recipient: reuse */
    record(db, "x3@example.org", "Jo", T0 - 86400, tpl_body);
    chk = check(db, q_order, "Anna Berg", reply, "Tom", T0);
    CU_ASSERT_TRUE(candor__check_has(chk, "template_reuse"));
    candor_check_free(chk);
    /* a genuine reply with the business footer is no template */
    chk = check(db, q_order, "Anna Berg", rows[0].reply, "Tom", T0);
    CU_ASSERT_FALSE(candor__check_has(chk, "template_reuse"));
    candor_check_free(chk);
    snprintf(reply, sizeof reply, "%s\n%s", rows[0].reply, footer);   /* footer without "-- " */
    chk = check(db, q_order, "Anna Berg", reply, "Tom", T0);
    CU_ASSERT_FALSE(candor__check_has(chk, "template_reuse"));
    CU_ASSERT_STRING_EQUAL(candor_check_verdict(chk), "ok");
    candor_check_free(chk);
    /* placeholders left unfilled still match */
    snprintf(reply, sizeof reply, "Hi {{first_name}},\n\n%s\nKind regards,\nTom\n", tpl_body);
    chk = check(db, q_order, "Anna Berg", reply, "Tom", T0);
    CU_ASSERT_TRUE(candor__check_has(chk, "template_reuse"));
    candor_check_free(chk);
    candor__db_close(db);
}

static void test_repeat_send(void)
{
    struct candor_db *db = history();
    const char *body = "Your parcel left the depot this morning.\n";
    record(db, "anna.berg@example.org", "Anna", T0 - 13 * 3600, body);   /* outside the window */
    record(db, "anna.berg@example.org", "Anna", T0 - 5 * 3600, body);
    record(db, "Anna.Berg+shop@example.org", "Anna", T0 - 3 * 3600, body); /* same address */
    struct candor_check *chk = check(db, q_order, "Anna Berg", rows[0].reply, "Tom", T0);
    CU_ASSERT_FALSE(candor__check_has(chk, "repeat_send"));
    candor_check_free(chk);
    record(db, "anna.berg@example.org", "Anna", T0 - 2 * 3600, body);
    chk = check(db, q_order, "Anna Berg", rows[0].reply, "Tom", T0);
    CU_ASSERT_TRUE(candor__check_has(chk, "repeat_send"));
    candor_check_free(chk);
    /* the reply's own Date decides (T0 - 60): a check run 20 hours later
     * judges the same window */
    chk = check(db, q_order, "Anna Berg", rows[0].reply, "Tom", T0 + 20 * 3600);
    CU_ASSERT_TRUE(candor__check_has(chk, "repeat_send"));
    candor_check_free(chk);
    /* a Date later than now is not believed: now is used (T0 - 4 h: only 2 before) */
    chk = check(db, q_order, "Anna Berg", rows[0].reply, "Tom", T0 - 4 * 3600);
    CU_ASSERT_FALSE(candor__check_has(chk, "repeat_send"));
    candor_check_free(chk);
    candor__db_close(db);
}

static void test_no_history_tables(void)
{
    struct candor_db *db = empty_db();
    struct candor_check *chk = check(db, q_order, "Anna Berg", rows[0].reply, "Tom", T0);
    CU_ASSERT_PTR_NOT_NULL(chk);
    candor_check_free(chk);
    candor__db_close(db);
}

static void test_hostile(void)
{
    /* long, odd and broken input: no crash, a verdict */
    size_t n = 300000;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = "ab? >\n\xc3\xa9{[-1$"[i % 13];
    big[n] = '\0';
    struct candor_check *chk = check(NULL, big, "Anna Berg", big, "Tom", T0);
    CU_ASSERT_PTR_NOT_NULL(chk);
    if (chk)
        CU_ASSERT_PTR_NOT_NULL(candor_check_verdict(chk));
    candor_check_free(chk);
    chk = check(NULL, "", NULL, "\n\n\n", NULL, T0);
    CU_ASSERT_PTR_NOT_NULL(chk);
    candor_check_free(chk);
    free(big);
    CU_ASSERT_EQUAL(candor__canned_check_db(&chk, ctx, NULL, NULL, NULL, T0), CANDOR_EINVAL);
    CU_ASSERT_PTR_NULL(chk);
}

/* Whole messages through the parser: the bad inputs of the issue and the
 * quoting styles. */
static void test_fixtures(void)
{
    static const struct { const char *reply; bool flagged; const char *has, *hasnt; } fx[] = {
        { "reply-good.eml", false, NULL, "unresponsive" },
        { "reply-canned.eml", true, "stock_phrase", NULL },
        { "reply-empty.eml", true, "unresponsive", NULL },
        { "reply-quoted.eml", true, "unresponsive", NULL },
        { "reply-html.eml", false, NULL, "unresponsive" },
        { "reply-html-canned.eml", true, "deflection", NULL },
        { "reply-german.eml", true, "unresponsive", NULL },
        { "reply-outlook.eml", true, "unresponsive", NULL },   /* the order number below the separator does not count */
        { "reply-inline.eml", false, NULL, "unresponsive" },
    };
    struct candor_message *orig = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s", test_data_path("canned/original.eml"));
    CU_ASSERT_EQUAL_FATAL(candor_message_parse_file(&orig, ctx, path), CANDOR_OK);
    for (size_t i = 0; i < sizeof fx / sizeof *fx; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "canned/%s", fx[i].reply);
        size_t len;
        void *data = test_read(test_data_path(rel), &len);
        if (!data)
            continue;
        struct candor_message *reply = NULL;
        CU_ASSERT_EQUAL(candor_message_parse(&reply, ctx, data, len), CANDOR_OK);
        free(data);
        struct candor_check *chk = NULL;
        CU_ASSERT_EQUAL(candor_check(&chk, ctx, NULL, orig, reply, T0), CANDOR_OK);
        if (chk) {
            bool ok = (strcmp(candor_check_verdict(chk), "ok") != 0) == fx[i].flagged
                      && (!fx[i].has || candor__check_has(chk, fx[i].has))
                      && (!fx[i].hasnt || !candor__check_has(chk, fx[i].hasnt));
            if (!ok) {
                char *json = NULL;
                candor_check_to_json(chk, &json);
                fprintf(stderr, "fixture %s: %s\n", fx[i].reply, json);
                candor_free(json);
            }
            CU_ASSERT_TRUE(ok);
        }
        candor_check_free(chk);
        candor_message_free(reply);
    }
    candor_message_free(orig);
}

static const struct test_case cases[] = {
    { "own_text", test_own_text },
    { "fixtures", test_fixtures },
    { "rows", test_rows },
    { "json", test_json },
    { "template_reuse", test_template_reuse },
    { "repeat_send", test_repeat_send },
    { "no_history_tables", test_no_history_tables },
    { "hostile", test_hostile },
    { NULL, NULL },
};

int main(void)
{
    ctx = test_ctx(NULL);
    if (!ctx)
        return 1;
    int r = test_main("canned", cases);
    candor_ctx_free(ctx);
    return r;
}
