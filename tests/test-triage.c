/* test-triage.c — triage end to end on messages written for this test
 * (never corpus files): intent in four languages, attributes (negation,
 * intensity, "!!!", churn, urgency), entities, language, the JSON object,
 * the X-Candor-* header block, explain, and one ctx shared by threads. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "ctx.h"
#include "triage.h"

static struct candor_ctx *ctx;

static struct candor_message *mail(const char *subject, const char *body)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fprintf(f, "From: Pat Doe <pat@customer.example>\nTo: support@shop.example\n"
               "Message-ID: <t1@customer.example>\nSubject: %s\n"
               "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n%s\n",
            subject, body);
    fclose(f);
    struct candor_message *msg = NULL;
    CU_ASSERT_EQUAL(candor_message_parse(&msg, ctx, buf, len), CANDOR_OK);
    free(buf);
    return msg;
}

static struct candor_result *triage(const char *subject, const char *body, unsigned flags,
                                    struct candor_message **keep)
{
    struct candor_message *msg = mail(subject, body);
    if (!msg)
        return NULL;
    struct candor_result *res = NULL;
    CU_ASSERT_EQUAL(candor_triage(&res, ctx, msg, NULL, NULL, flags), CANDOR_OK);
    if (keep)
        *keep = msg;
    else
        candor_message_free(msg);
    return res;
}

static const struct {
    const char *name, *subject, *body, *intent, *lang;
} intent_rows[] = {
    { "en refund", "Money back please",
      "Hello, the blender I bought stopped working after two days. I returned it last week and would like a full refund to my card.", "refund", "en" },
    { "en cancellation", "Cancel my subscription",
      "Please cancel my subscription at the end of this month and close my account. Thanks.", "cancellation", "en" },
    { "en order status", "Where is my order?",
      "I ordered a desk on the 3rd and it still has not arrived. The tracking page has not changed for a week. When will it be delivered?", "order_status", "en" },
    { "en technical", "App crashes",
      "Since the last update the app crashes every time I try to log in. I get an error message and cannot access my account.", "technical_support", "en" },
    { "en account change", "New address",
      "Hi, we moved house. Could you please update my delivery address to 12 Elm Road and change my phone number too?", "account_change", "en" },
    { "en billing", "Charged twice",
      "I was charged twice for my March invoice. There are two identical payments on my card statement.", "billing", "en" },
    { "en sales", "Quote for 40 chairs",
      "We are a small school interested in buying 40 of your stacking chairs. Could you send a quote with a bulk discount?", "sales_inquiry", "en" },
    { "en praise", "Thank you!",
      "Just wanted to say thank you so much to Maria in your team, she went above and beyond to help me. Excellent service!", "praise", "en" },
    { "fr refund", "Remboursement",
      "Bonjour, j'ai renvoyé le colis il y a trois semaines et je n'ai toujours pas reçu mon remboursement. Merci de me rembourser.", "refund", "fr" },
    { "fr cancellation", "Résiliation",
      "Bonjour, je souhaite résilier mon abonnement à compter du mois prochain. Merci de confirmer la résiliation.", "cancellation", "fr" },
    { "de order status", "Wo ist meine Bestellung?",
      "Guten Tag, meine Bestellung ist nach zwei Wochen noch nicht angekommen. Können Sie mir die Sendungsnummer schicken?", "order_status", "de" },
    { "de technical", "Fehler beim Anmelden",
      "Hallo, ich kann mich seit gestern nicht anmelden. Die App zeigt nur eine Fehlermeldung und funktioniert nicht.", "technical_support", "de" },
    { "es refund", "Reembolso",
      "Hola, devolví el producto hace dos semanas y todavía no he recibido el reembolso. Quiero que me devuelvan mi dinero.", "refund", "es" },
    { "es cancellation", "Baja",
      "Hola, quiero darme de baja y cancelar mi suscripción este mes. Gracias.", "cancellation", "es" },
    { NULL, NULL, NULL, NULL, NULL }
};

static void test_intents(void)
{
    for (size_t i = 0; intent_rows[i].name; i++) {
        struct candor_result *res = triage(intent_rows[i].subject, intent_rows[i].body, 0, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(res);
        bool ok = strcmp(candor_result_intent(res), intent_rows[i].intent) == 0 &&
                  strcmp(candor_result_language(res), intent_rows[i].lang) == 0;
        if (!ok)
            fprintf(stderr, "row \"%s\": intent %s (%.2f), language %s\n", intent_rows[i].name,
                    candor_result_intent(res), candor_result_confidence(res),
                    candor_result_language(res));
        CU_ASSERT_TRUE(ok);
        CU_ASSERT_TRUE(candor_result_confidence(res) > 0 && candor_result_confidence(res) <= 1);
        candor_result_free(res);
    }
}

static const struct {
    const char *name, *subject, *body, *sentiment, *urgency;
    int churn;   /* -1: not checked */
} attr_rows[] = {
    { "negation: not happy", "My order",
      "I am not happy at all with how this was handled.", "negative", NULL, -1 },
    { "intensity and bangs", "Order",
      "I am VERY disappointed!!! Nobody answered my three emails.", "negative", NULL, -1 },
    { "plain request is neutral", "Invoice copy",
      "Could you send me a copy of my April invoice? Thanks.", "neutral", NULL, 0 },
    { "praise is positive", "Great service",
      "Thank you so much, your team was wonderful and the delivery was perfect.", "positive", "low", 0 },
    { "lawyer means churn", "Unacceptable",
      "If this is not fixed by Friday I will contact my lawyer.", NULL, NULL, 1 },
    { "chargeback means churn", "Charge",
      "I will file a chargeback with my bank if I don't get the money back.", NULL, NULL, 1 },
    { "competitor means churn", "Leaving",
      "I am switching to another provider next month, please close my account.", NULL, NULL, 1 },
    { "not leaving is no churn", "Plan question",
      "We are NOT planning to leave, we just want to know what a cheaper plan costs.", NULL, NULL, 0 },
    { "urgent today", "URGENT: site down",
      "Our online shop is down and we cannot take orders. Please help immediately, this is urgent.", NULL, "high", -1 },
    { "medication is critical", "Refill",
      "I am running out of my insulin today and the refill has not shipped.", NULL, "critical", -1 },
    { "french negative", "Colis",
      "Je suis très déçu, c'est inacceptable. Toujours pas de colis.", "negative", NULL, -1 },
    { NULL, NULL, NULL, NULL, NULL, 0 }
};

static void test_attributes(void)
{
    for (size_t i = 0; attr_rows[i].name; i++) {
        struct candor_result *res = triage(attr_rows[i].subject, attr_rows[i].body, 0, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(res);
        bool ok = (!attr_rows[i].sentiment ||
                   strcmp(candor_result_sentiment(res), attr_rows[i].sentiment) == 0) &&
                  (!attr_rows[i].urgency || strcmp(candor_result_urgency(res), attr_rows[i].urgency) == 0) &&
                  (attr_rows[i].churn < 0 || candor_result_churn_risk(res) == attr_rows[i].churn);
        if (!ok)
            fprintf(stderr, "row \"%s\": sentiment %s urgency %s churn %d\n", attr_rows[i].name,
                    candor_result_sentiment(res), candor_result_urgency(res),
                    candor_result_churn_risk(res));
        CU_ASSERT_TRUE(ok);
        candor_result_free(res);
    }
}

static const struct {
    const char *name, *text, *kind, *value;
} entity_rows[] = {
    { "order number", "My order A12345 is late", "order_number", "A12345" },
    { "order with no.", "commande n° 778812 pas reçue", "order_number", "778812" },
    { "hash order", "about #556677 please", "order_number", "556677" },
    { "ticket ref", "see ticket CND-000123", "ticket", "CND-000123" },
    { "amount dollars", "I paid $1,299.00 yesterday", "amount", "$1,299.00" },
    { "amount euros after", "il coûte 49,90 € maintenant", "amount", "49,90 €" },
    { "amount EUR", "a fee of 12.50 EUR", "amount", "12.50 EUR" },
    { "date numeric", "delivered on 12/03/2024", "date", "12/03/2024" },
    { "date iso", "since 2024-03-12", "date", "2024-03-12" },
    { "date words", "on 3 March 2024", "date", "3 March 2024" },
    { "date words de", "am 2. Oktober bestellt", "date", "2. Oktober" },
    { "phone intl", "call me on +44 20 7946 0958", "phone", "+44 20 7946 0958" },
    { "phone us", "my number is (555) 010-4477", "phone", "(555) 010-4477" },
    { "tracking UPS", "tracking 1Z999AA10123456784", "tracking_number", "1Z999AA10123456784" },
    { "tracking UPU", "parcel RR123456785DE", "tracking_number", "RR123456785DE" },
    { NULL, NULL, NULL, NULL }
};

static void test_entities(void)
{
    for (size_t i = 0; entity_rows[i].name; i++) {
        struct candor_entity *v = NULL;
        size_t n = 0;
        CU_ASSERT_EQUAL(candor__entities_find(ctx, entity_rows[i].text, &v, &n), CANDOR_OK);
        bool found = false;
        for (size_t k = 0; k < n; k++)
            if (strcmp(v[k].kind, entity_rows[i].kind) == 0 && strcmp(v[k].value, entity_rows[i].value) == 0)
                found = true;
        if (!found) {
            fprintf(stderr, "row \"%s\":", entity_rows[i].name);
            for (size_t k = 0; k < n; k++)
                fprintf(stderr, " %s=%s", v[k].kind, v[k].value);
            fprintf(stderr, "\n");
        }
        CU_ASSERT_TRUE(found);
        candor__entities_free(v, n);
    }
    /* no entity in plain words; none invented from a year alone */
    struct candor_entity *v = NULL;
    size_t n = 5;
    CU_ASSERT_EQUAL(candor__entities_find(ctx, "hello there, thanks in 2024", &v, &n), CANDOR_OK);
    CU_ASSERT_EQUAL(n, 0);
    candor__entities_free(v, n);
}

static void test_json_and_headers(void)
{
    struct candor_message *msg = NULL;
    struct candor_result *res = triage("Where is order A12345?",
                                       "My parcel has not arrived. I paid $45.99.",
                                       CANDOR_TRIAGE_EXPLAIN, &msg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res);
    char *json = NULL;
    CU_ASSERT_EQUAL(candor_result_to_json(res, msg, "x.eml", &json), CANDOR_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(json);
    static const char *const keys[] = {
        "\"file\":\"x.eml\"", "\"message_id\"", "\"from\"", "\"subject\"", "\"new_text\"",
        "\"intent\":\"order_status\"", "\"confidence\":", "\"scores\":{\"complaint\":",
        "\"general_question\":", "\"urgency\":", "\"sentiment\":", "\"churn_risk\":false",
        "\"entities\":[", "{\"kind\":\"order_number\",\"value\":\"A12345\"}",
        "{\"kind\":\"amount\",\"value\":\"$45.99\"}", "\"autoreply\":{\"send\":",
        "\"reason\":", "\"explain\":{\"rules\":[", "\"features\":[",
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (!strstr(json, keys[i]))
            fprintf(stderr, "missing %s in %s\n", keys[i], json);
        CU_ASSERT_PTR_NOT_NULL(strstr(json, keys[i]));
    }
    CU_ASSERT_PTR_NULL(strstr(json, "\"text\":"));
    candor_free(json);

    char *h = NULL;
    CU_ASSERT_EQUAL(candor_result_headers(res, "CND-000123", "\r\n", &h), CANDOR_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    char want[512];
    snprintf(want, sizeof want,
             "X-Candor-Intent: order_status\r\nX-Candor-Confidence: %.2f\r\nX-Candor-Urgency: %s\r\n"
             "X-Candor-Sentiment: %s\r\nX-Candor-Churn-Risk: no\r\nX-Candor-Ticket: CND-000123\r\n"
             "X-Candor-Autoreply: %s; reason=%s\r\n",
             candor_result_confidence(res), candor_result_urgency(res), candor_result_sentiment(res),
             candor_result_autoreply_send(res) ? "yes" : "no", candor_result_autoreply_reason(res));
    CU_ASSERT_STRING_EQUAL(h, want);
    candor_free(h);
    CU_ASSERT_EQUAL(candor_result_headers(res, NULL, "\n", &h), CANDOR_OK);
    CU_ASSERT_PTR_NULL(strstr(h, "Ticket"));
    CU_ASSERT_PTR_NULL(strstr(h, "\r"));
    candor_free(h);
    CU_ASSERT_EQUAL(candor_result_headers(res, "bad ticket\n", "\n", &h), CANDOR_EINVAL);
    CU_ASSERT_EQUAL(candor_result_headers(res, NULL, "\r", &h), CANDOR_EINVAL);

    size_t n;
    const struct candor_entity *e = candor__result_entities(res, &n);
    CU_ASSERT_TRUE(n >= 2);
    if (n)
        CU_ASSERT_STRING_EQUAL(e[0].kind, "order_number");
    candor_result_free(res);
    candor_message_free(msg);
    /* NULL-safety */
    candor_result_free(NULL);
    CU_ASSERT_PTR_NULL(candor_result_intent(NULL));
    struct candor_result *r2 = (struct candor_result *)1;
    CU_ASSERT_EQUAL(candor_triage(&r2, ctx, NULL, NULL, NULL, 0), CANDOR_EINVAL);
    CU_ASSERT_PTR_NULL(r2);
}

/* Hostile text: long, repetitive, no spaces; triage stays bounded. */
static void test_hostile(void)
{
    size_t n = 2u << 20;
    char *body = malloc(n + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    for (size_t i = 0; i < n; i++)
        body[i] = "refund!! aaaa(((( 1234 "[i % 23];
    body[n] = '\0';
    struct candor_result *res = triage("x", body, CANDOR_TRIAGE_EXPLAIN, NULL);
    CU_ASSERT_PTR_NOT_NULL(res);
    candor_result_free(res);
    free(body);
}

struct job { const char *subject, *body, *want; int ok; };

static void *worker(void *arg)
{
    struct job *j = arg;
    j->ok = 1;
    for (int k = 0; k < 30; k++) {
        struct candor_message *msg = mail(j->subject, j->body);
        struct candor_result *res = NULL;
        if (!msg || candor_triage(&res, ctx, msg, NULL, NULL, CANDOR_TRIAGE_EXPLAIN) != CANDOR_OK ||
            strcmp(candor_result_intent(res), j->want) != 0)
            j->ok = 0;
        candor_result_free(res);
        candor_message_free(msg);
    }
    return NULL;
}

static void test_threads(void)
{
    struct job jobs[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        jobs[i].subject = intent_rows[i].subject;
        jobs[i].body = intent_rows[i].body;
        jobs[i].want = intent_rows[i].intent;
        pthread_create(&t[i], NULL, worker, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CU_ASSERT_EQUAL(jobs[i].ok, 1);
    }
}

static void setup(void)
{
    ctx = test_ctx(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
}

static void teardown(void) { candor_ctx_free(ctx); ctx = NULL; }

#define T(fn) static void fn##_t(void) { setup(); fn(); teardown(); }
T(test_intents)
T(test_attributes)
T(test_entities)
T(test_json_and_headers)
T(test_hostile)
T(test_threads)

static const struct test_case cases[] = {
    { "intents in four languages", test_intents_t },
    { "sentiment, urgency, churn", test_attributes_t },
    { "entities", test_entities_t },
    { "JSON object and X-Candor headers", test_json_and_headers_t },
    { "hostile text is bounded", test_hostile_t },
    { "one ctx, four threads", test_threads_t },
    { NULL, NULL }
};

int main(void) { return test_main("triage", cases); }
