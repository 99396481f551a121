/* test-rules.c — the rules module: literal extraction for the prefilter,
 * matching per field with weights, the prefilter never changing a result,
 * bad and pathological patterns refused with file:line, limits. */
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "ctx.h"
#include "message.h"
#include "rules.h"

static const struct {
    const char *name, *pattern;
    const char *lits;       /* '|'-separated expected set, "" = none */
} lit_rows[] = {
    { "plain word", "\\brefund\\b", "refund" },
    { "alternation", "\\b(refund|rembours\\w*)\\b", "refund|rembours" },
    { "longest run wins", "\\bmoney\\s+back\\b", "money" },
    { "optional char cut", "colou?r", "colo" },
    { "optional group dropped", "(please )?cancel", "cancel" },
    { "case folded", "R\xc3\x89SILIATION", "r\xc3\xa9siliation" },
    { "class breaks run", "r[\xc3\xa9" "e]silier", "silier" },
    { "short literal: none", "\\bab\\b", "" },
    { "top-level alt with a class branch", "refund|\\d+", "" },
    { "inline option: none", "(?i)refund", "" },
    { "lookahead ignored", "(?=x)refund", "refund" },
    { "escaped dot literal", "a\\.s\\.a\\.p", "a.s.a.p" },
    { "nested groups", "\\b(charged|billed) (twice|double)\\b", "charged|billed" },
    { "plus keeps one", "(ab)+cdef", "cdef" },
    { "backreference: none", "(abc)\\1", "" },
    { NULL, NULL, NULL }
};

static void test_literals(void)
{
    for (size_t i = 0; lit_rows[i].name; i++) {
        char **v = NULL;
        size_t n = 0;
        CU_ASSERT_TRUE(candor__rules_literals(lit_rows[i].pattern, &v, &n));
        char got[512] = "";
        for (size_t k = 0; k < n; k++) {
            if (k)
                strcat(got, "|");
            strncat(got, v[k], sizeof got - strlen(got) - 1);
            free(v[k]);
        }
        free(v);
        if (strcmp(got, lit_rows[i].lits) != 0)
            fprintf(stderr, "row \"%s\": got \"%s\", want \"%s\"\n", lit_rows[i].name, got,
                    lit_rows[i].lits);
        CU_ASSERT_STRING_EQUAL(got, lit_rows[i].lits);
    }
}

static struct candor_ctx *basic_ctx(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", test_data_path("rules/basic.xml"));
    return test_ctx(path);
}

static const struct {
    const char *name, *subject, *new_text, *text;
    double refund, praise, cancellation, billing, order;
    double urg_high, sent_neg, churn;
} match_rows[] = {
    { "refund in new text", "hello", "I want a refund please", NULL, 2, 0, 0, 0, 0, 0, 0, 0 },
    { "french, upper case", NULL, "JE VEUX UN REMBOURSEMENT", NULL, 2, 0, 0, 0, 0, 0, 0, 0 },
    { "subject rule only on subject", "urgent", "urgent", NULL, 0, 0, 0, 0, 0, 1, 0, 0 },
    { "always-run rule", NULL, "order 12345", NULL, 0, 0.5, 0, 0, 0, 0, 0, 0 },
    { "negative weight", NULL, "we are not leaving", NULL, 0, 0, -1, 0, 0, 0, 0, -1 },
    { "case-sensitive rule matches", NULL, "the VAT line", NULL, 0, 0, 0, 1, 0, 0, 0, 0 },
    { "case-sensitive rule skips", NULL, "the vat line", NULL, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "text field", NULL, "nothing", "> quoted words", 0, 0, 0, 0, 0, 0, 1, 0 },
    { "past max-match-bytes ignored", NULL,
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaa colis", NULL, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "within max-match-bytes", NULL, "mon colis", NULL, 0, 0, 0, 0, 1, 0, 0, 0 },
    { NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, 0 }
};

static void test_match(void)
{
    struct candor_ctx *ctx = basic_ctx();
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    CU_ASSERT_EQUAL(candor__rules_count(ctx), 8);
    for (size_t i = 0; match_rows[i].name; i++) {
        struct candor_rule_input in = { match_rows[i].subject, match_rows[i].new_text,
                                        match_rows[i].text, NULL, NULL, NULL, NULL };
        struct candor_rule_scores s;
        memset(&s, 0, sizeof s);
        CU_ASSERT_EQUAL(candor__rules_apply(ctx, &in, true, &s), CANDOR_OK);
        bool ok = s.intent[1] == match_rows[i].refund && s.intent[8] == match_rows[i].praise &&
                  s.intent[2] == match_rows[i].cancellation && s.intent[3] == match_rows[i].billing &&
                  s.intent[4] == match_rows[i].order && s.urgency[2] == match_rows[i].urg_high &&
                  s.sentiment[0] == match_rows[i].sent_neg && s.churn == match_rows[i].churn;
        if (!ok)
            fprintf(stderr, "row \"%s\": refund %g praise %g cancel %g billing %g order %g high %g neg %g churn %g\n",
                    match_rows[i].name, s.intent[1], s.intent[8], s.intent[2], s.intent[3],
                    s.intent[4], s.urgency[2], s.sentiment[0], s.churn);
        CU_ASSERT_TRUE(ok);
        CU_ASSERT_EQUAL(s.n_limited, 0);
        candor__rule_scores_free(&s);
    }
    candor_ctx_free(ctx);
}

static void test_header_and_explain(void)
{
    struct candor_ctx *ctx = basic_ctx();
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    struct candor_header h[2] = { { "Subject", "x" }, { "x-priority", "1 (Highest)" } };
    struct candor_message msg;
    memset(&msg, 0, sizeof msg);
    msg.headers = h;
    msg.n_headers = 2;
    struct candor_rule_input in = { NULL, "refund", NULL, NULL, NULL, NULL, &msg };
    struct candor_rule_scores s;
    memset(&s, 0, sizeof s);
    CU_ASSERT_EQUAL(candor__rules_apply(ctx, &in, true, &s), CANDOR_OK);
    /* header rules need candor__message_header(); only check when it works */
    if (candor__message_header(&msg, "X-Priority", 0))
        CU_ASSERT_DOUBLE_EQUAL(s.urgency[2], 0.5, 1e-9);
    CU_ASSERT_TRUE(s.n_hits >= 1);
    if (s.n_hits >= 1) {
        CU_ASSERT_STRING_EQUAL(candor__rule_id(ctx, s.hits[0]), "r-refund");
        CU_ASSERT_STRING_EQUAL(candor__rule_effect(ctx, s.hits[0]), "intent=refund +2");
    }
    candor__rule_scores_free(&s);
    candor_ctx_free(ctx);
}

/* Units and the prefilter must never change what matches: every text is
 * matched as triage does and again with every rule's whole pattern run on
 * the whole field (candor__rules_set_prefilter), and the hits and scores
 * must agree. The
 * words include the pieces the literal sets are made of, so that texts
 * hold some but not all of a rule's required literals. */
static void test_prefilter_equivalence(void)
{
    struct candor_ctx *ctx = test_ctx(NULL);   /* the shipped rules */
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    static const char *const words[] = {
        "refund", "money back", "cancel my subscription", "charged twice", "where is my order",
        "not working", "change my address", "how much does", "thank you so much", "unacceptable",
        "urgent", "lawyer", "R\xc3\x89SILIER mon abonnement", "K\xc3\x9cNDIGUNG", "reembolso", "no funciona",
        "the", "and", "invoice", "tracking", "colis", "?", "!!!", "\xc3\xa9t\xc3\xa9", "Bestellung",
        "new", "updated", "card", "address", "e-mail", "you", "rock", "you guys rock", "can't",
        "cannot", "make", "receive", "calls", "still", "not", "fixed", "third time", "please",
        "would you", "cancel", "close", "account", "my", "leaving", "switching to", "competitor",
        "no reply needed", "whenever you can", "by friday", "asap", "down", "locked out",
        "did not help", "your fix", "failed", "again", "weeks", "nobody", "parcel", "delivered",
        "\xe2\x80\x99", "won\xe2\x80\x99t", "doesn't", "start", "log in", "password",
        "pas", "besoin", "de", "r\xc3\xa9pondre", "keine", "Antwort", "n\xc3\xb6tig", "\xc2\xbf",
    };
    size_t nw = sizeof words / sizeof words[0];
    unsigned seed = 12345;
    size_t total_hits = 0, total_run_on = 0, total_run_off = 0;
    for (int t = 0; t < 600; t++) {
        char subject[256] = "", text[2048] = "";
        int k = 1 + (int)(seed % 16);
        for (int j = 0; j < k; j++) {
            seed = seed * 1103515245u + 12345u;
            strcat(text, words[(seed >> 8) % nw]);
            strcat(text, (seed >> 4) % 3 ? " " : (seed >> 6) % 2 ? ". " : "\n");
        }
        seed = seed * 1103515245u + 12345u;
        strcat(subject, words[(seed >> 8) % nw]);
        strcat(subject, " ");
        strcat(subject, words[(seed >> 16) % nw]);
        struct candor_rule_input in = { subject, text, text, NULL, NULL, NULL, NULL };
        struct candor_rule_scores on, off;
        memset(&on, 0, sizeof on);
        memset(&off, 0, sizeof off);
        candor__rules_set_prefilter(ctx, true);
        CU_ASSERT_EQUAL(candor__rules_apply(ctx, &in, true, &on), CANDOR_OK);
        candor__rules_set_prefilter(ctx, false);
        CU_ASSERT_EQUAL(candor__rules_apply(ctx, &in, true, &off), CANDOR_OK);
        bool same = on.n_hits == off.n_hits &&
                    memcmp(on.hits, off.hits, on.n_hits * sizeof *on.hits) == 0 &&
                    memcmp(on.intent, off.intent, sizeof on.intent) == 0 &&
                    memcmp(on.urgency, off.urgency, sizeof on.urgency) == 0 &&
                    memcmp(on.sentiment, off.sentiment, sizeof on.sentiment) == 0 &&
                    on.churn == off.churn;
        if (!same)
            fprintf(stderr, "prefilter changed the result of subject \"%s\", text \"%s\"\n",
                    subject, text);
        CU_ASSERT_TRUE(same);
        total_hits += on.n_hits;
        total_run_on += on.n_run;
        total_run_off += off.n_run;
        candor__rule_scores_free(&on);
        candor__rule_scores_free(&off);
    }
    candor__rules_set_prefilter(ctx, true);
    CU_ASSERT_TRUE(total_hits > 600);              /* the texts do match rules */
    CU_ASSERT_TRUE(total_run_on * 2 < total_run_off);   /* and the prefilter skips */
    candor_ctx_free(ctx);
}

static void expect_config_error(const char *file, const char *needle)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", test_data_path(file));
    candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
    o.config_path = path;
    struct candor_ctx *ctx = NULL;
    candor_status_t st = candor_ctx_new(&ctx, &o);
    CU_ASSERT_EQUAL(st, CANDOR_ECONFIG);
    CU_ASSERT_PTR_NULL(ctx);
    const char *msg = candor_errmsg();
    /* "file:line: ..." */
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, file));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, needle));
    if (!strstr(msg, needle))
        fprintf(stderr, "%s: %s\n", file, msg);
    candor_ctx_free(ctx);
}

static void test_bad_configs(void)
{
    expect_config_error("rules/bad-pattern.xml", ":5: rule broken: bad pattern");
    expect_config_error("rules/pathological.xml", ":4: rule evil: pattern backtracks");
    expect_config_error("rules/no-target.xml", ":4: rule nothing: needs at least one");
    expect_config_error("rules/bad-field.xml", ":4:");
}

/* A slow pattern that survives the load-time probe is still bounded by
 * the match limit: the match stops and is counted, and triage goes on. */
static void test_match_limit(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", test_data_path("rules/bounded.xml"));
    struct candor_ctx *ctx = test_ctx(path);
    if (!ctx) {
        /* refused at load time is the other acceptable outcome */
        CU_ASSERT_EQUAL(strstr(candor_errmsg(), "backtracks") != NULL, 1);
        return;
    }
    char text[4096];
    for (size_t i = 0; i < sizeof text - 1; i++)
        text[i] = "abcde "[i % 6];
    text[sizeof text - 1] = '\0';
    struct candor_rule_input in = { NULL, text, NULL, NULL, NULL, NULL, NULL };
    struct candor_rule_scores s;
    memset(&s, 0, sizeof s);
    CU_ASSERT_EQUAL(candor__rules_apply(ctx, &in, false, &s), CANDOR_OK);
    CU_ASSERT_EQUAL(s.intent[1], 0);
    CU_ASSERT_EQUAL(s.n_limited, 1);
    candor__rule_scores_free(&s);
    candor_ctx_free(ctx);
}

static void test_shipped_rules_load(void)
{
    struct candor_ctx *ctx = test_ctx(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    CU_ASSERT_TRUE(candor__rules_count(ctx) >= 40);
    candor_ctx_free(ctx);
}

static const struct test_case cases[] = {
    { "literals", test_literals },
    { "match per field with weights", test_match },
    { "header rules and explain", test_header_and_explain },
    { "prefilter runs few patterns", test_prefilter_equivalence },
    { "bad configs refused with file:line", test_bad_configs },
    { "match limit bounds a slow pattern", test_match_limit },
    { "shipped rules load", test_shipped_rules_load },
    { NULL, NULL }
};

int main(void) { return test_main("rules", cases); }
