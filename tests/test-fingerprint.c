/* test-fingerprint.c — words and MinHash fingerprints (lib/fingerprint.c). */
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "fingerprint.h"

static void test_words(void)
{
    static const struct { const char *name, *text; size_t n; const char *first, *last; } rows[] = {
        { "order_id_one_word", "order LP-2297730 today", 3, "order", "today" },
        { "amount_one_word", "charged $64.20 twice", 3, "charged", "twice" },
        { "apostrophe_splits", "we'll", 2, "we", "ll" },
        { "case_folded", "Hello WORLD", 2, "hello", "world" },
        { "accents_kept", "Grüße Été", 2, "grüße", "été" },
        { "trailing_dot", "the end.", 2, "the", "end" },
        { "empty", "", 0, NULL, NULL },
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        struct candor_words w = { 0 };
        CU_ASSERT_TRUE_FATAL(candor__words_split(&w, rows[i].text, strlen(rows[i].text), 100));
        CU_ASSERT_EQUAL(w.n, rows[i].n);
        if (w.n == rows[i].n && w.n) {
            CU_ASSERT_STRING_EQUAL(candor__word_fold(&w, 0), rows[i].first);
            CU_ASSERT_STRING_EQUAL(candor__word_fold(&w, w.n - 1), rows[i].last);
        }
        if (w.n != rows[i].n)
            fprintf(stderr, "row %s: %zu words\n", rows[i].name, w.n);
        candor__words_free(&w);
    }
}

static void test_words_limit(void)
{
    struct candor_words w = { 0 };
    const char *t = "one two three four five six";
    CU_ASSERT_TRUE(candor__words_split(&w, t, strlen(t), 4));
    CU_ASSERT_EQUAL(w.n, 4);
    candor__words_free(&w);
}

static double sim(const char *a, const char *b, const struct candor_strv *mask)
{
    struct candor_fp fa, fb;
    CU_ASSERT_TRUE(candor__fp_compute(&fa, a, strlen(a), mask));
    CU_ASSERT_TRUE(candor__fp_compute(&fb, b, strlen(b), mask));
    return candor__fp_similarity(&fa, &fb);
}

static const char tpl[] =
    "Please be advised that prescription orders are processed in the order in which "
    "they are received and may be subject to verification by our pharmacists. "
    "Processing times can vary depending on prescriber response and stock availability.";

static void test_similarity(void)
{
    static const struct { const char *name, *other; double lo, hi; } rows[] = {
        { "identical", tpl, 1.0, 1.0 },
        { "case_and_spacing", "PLEASE be advised that  prescription orders are processed in the order in which "
          "they are received and may be subject to verification by our pharmacists.\n"
          "Processing times can vary depending on prescriber response and stock availability.", 1.0, 1.0 },
        { "light_edit", "Please note that prescription orders are processed in the order in which "
          "they arrive and may be subject to checks by our pharmacists. "
          "Processing times can vary depending on prescriber response and stock availability.", 0.5, 1.0 },
        { "unrelated", "Your four cushions are now Rust, same price, still dispatching tomorrow "
          "for delivery on Thursday with the two-person team.", 0.0, 0.25 },
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        double s = sim(tpl, rows[i].other, NULL);
        if (s < rows[i].lo || s > rows[i].hi)
            fprintf(stderr, "row %s: similarity %.2f\n", rows[i].name, s);
        CU_ASSERT_TRUE(s >= rows[i].lo && s <= rows[i].hi);
    }
}

static void test_placeholders(void)
{
    struct candor_strv mask = CANDOR_STRV_INIT;
    candor__strv_push(&mask, "harriet");
    const char *a = "Dear {{first_name}}, your ticket {{ticket.id}} about the invoice has been "
                    "received and our billing specialists will review the reverse charge soon.";
    const char *b = "Dear Harriet, your ticket 48812 about the invoice has been "
                    "received and our billing specialists will review the reverse charge soon.";
    CU_ASSERT_DOUBLE_EQUAL(sim(a, b, &mask), 1.0, 0.001);
    candor__strv_free(&mask);
}

static void test_bands(void)
{
    struct candor_fp a, b;
    candor__fp_compute(&a, tpl, strlen(tpl), NULL);
    candor__fp_compute(&b, tpl, strlen(tpl), NULL);
    int64_t ka[CANDOR_FP_BANDS], kb[CANDOR_FP_BANDS];
    candor__fp_bands(&a, ka);
    candor__fp_bands(&b, kb);
    CU_ASSERT_EQUAL(memcmp(ka, kb, sizeof ka), 0);
    for (size_t i = 0; i < CANDOR_FP_BANDS; i++)
        CU_ASSERT_TRUE(ka[i] >= 0);
    /* distinct bands get distinct keys even for equal values */
    CU_ASSERT_NOT_EQUAL(ka[0], ka[1]);
    CU_ASSERT_TRUE(a.ntok >= 10);
}

static void test_empty(void)
{
    struct candor_fp a;
    CU_ASSERT_TRUE(candor__fp_compute(&a, "", 0, NULL));
    CU_ASSERT_EQUAL(a.ntok, 0);
    CU_ASSERT_DOUBLE_EQUAL(candor__fp_similarity(&a, &a), 0.0, 0.001);
    /* an unterminated placeholder is text, not a placeholder */
    CU_ASSERT_TRUE(candor__fp_compute(&a, "{{never closed", 14, NULL));
    CU_ASSERT_EQUAL(a.ntok, 2);
}

static const struct test_case cases[] = {
    { "words", test_words },
    { "words_limit", test_words_limit },
    { "similarity", test_similarity },
    { "placeholders", test_placeholders },
    { "bands", test_bands },
    { "empty", test_empty },
    { NULL, NULL },
};

int main(void) { return test_main("fingerprint", cases); }
