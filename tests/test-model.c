/* test-model.c — the model module: features (folding, numbers, function
 * words, bigrams), training and the model file (round trip, calibration
 * report, heads), malformed model files refused with path:line. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common.h"
#include "ctx.h"
#include "model.h"
#include "rules.h"

static bool has_feature(const struct candor_features *f, const char *text)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->text[i] && strcmp(f->text[i], text) == 0)
            return true;
    return false;
}

static const struct {
    const char *name, *subject, *text, *want, *absent;
} feat_rows[] = {
    { "unigram", NULL, "refund please", "u:refund", NULL },
    { "bigram over content words", NULL, "I want the refund", "b:want refund", "u:the" },
    { "subject word twice", "Refund", NULL, "s:refund", NULL },
    { "digits become a shape", NULL, "order 12345", "u:#5", "u:12345" },
    { "codes become a shape", NULL, "order A12345", "u:#a", NULL },
    { "apostrophe kept inside a word", NULL, "i can't log in", "u:can't", NULL },
    { "typographic apostrophe", NULL, "i can\xe2\x80\x99t", "u:can't", NULL },
    { "french accents kept", NULL, "r\xc3\xa9siliation", "u:r\xc3\xa9siliation", NULL },
    { "german function word left out", NULL, "die bestellung", "u:bestellung", "u:die" },
    { NULL, NULL, NULL, NULL, NULL }
};

static void test_features(void)
{
    for (size_t i = 0; feat_rows[i].name; i++) {
        char *fs = feat_rows[i].subject ? candor__utf8_fold(feat_rows[i].subject, strlen(feat_rows[i].subject)) : NULL;
        char *ft = feat_rows[i].text ? candor__utf8_fold(feat_rows[i].text, strlen(feat_rows[i].text)) : NULL;
        struct candor_features f;
        CU_ASSERT_EQUAL_FATAL(candor__features(fs, ft, 8192, true, &f), CANDOR_OK);
        bool ok = has_feature(&f, feat_rows[i].want) &&
                  (!feat_rows[i].absent || !has_feature(&f, feat_rows[i].absent));
        if (!ok)
            fprintf(stderr, "row \"%s\" failed\n", feat_rows[i].name);
        CU_ASSERT_TRUE(ok);
        for (size_t k = 1; k < f.n; k++)
            CU_ASSERT_TRUE(f.h[k - 1] < f.h[k]);   /* sorted, unique */
        candor__features_free(&f);
        free(fs);
        free(ft);
    }
    /* bounded: text past max_bytes is not read */
    struct candor_features f;
    CU_ASSERT_EQUAL(candor__features(NULL, "aaaa bbbb cccc dddd", 9, true, &f), CANDOR_OK);
    CU_ASSERT_TRUE(has_feature(&f, "u:bbbb"));
    CU_ASSERT_FALSE(has_feature(&f, "u:dddd"));
    candor__features_free(&f);
}

/* Train on a small synthetic set and check that held-out style texts get
 * the right intent through the saved and reloaded file. */
static const struct { const char *label, *text; } train_rows[] = {
    { "refund", "I would like my money back for the broken kettle" },
    { "refund", "please send me back my money for the return" },
    { "refund", "where is the money you owe me for the cancelled trip" },
    { "refund", "money back for the damaged chair please" },
    { "refund", "I returned the lamp, I want my money back" },
    { "order_status", "my parcel has not arrived yet where is it" },
    { "order_status", "the parcel still shows in transit after ten days" },
    { "order_status", "when will my parcel be delivered" },
    { "order_status", "tracking says the parcel is lost" },
    { "order_status", "parcel delivered to the wrong house" },
    { "praise", "wonderful service thank you so much team" },
    { "praise", "the team was wonderful, great job" },
    { "praise", "just wanted to say your team is wonderful" },
    { "praise", "wonderful staff, thank you" },
    { "praise", "a wonderful experience with your team" },
};

static void test_train_save_load(void)
{
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s", test_data_path("rules/basic.xml"));
    struct candor_ctx *ctx = test_ctx(cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    struct candor_trainer *tr = NULL;
    CU_ASSERT_EQUAL_FATAL(candor_trainer_new(&tr, ctx), CANDOR_OK);
    for (size_t r = 0; r < 3; r++)   /* repeat so every fold has data */
        for (size_t i = 0; i < sizeof train_rows / sizeof train_rows[0]; i++)
            CU_ASSERT_EQUAL(candor_trainer_add_text(tr, NULL, train_rows[i].text, train_rows[i].label),
                            CANDOR_OK);
    CU_ASSERT_EQUAL(candor_trainer_add_text(tr, NULL, "x", "no_such_intent"), CANDOR_EINVAL);
    const char *dir = test_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/model.txt", dir);
    CU_ASSERT_EQUAL_FATAL(candor_trainer_save(tr, path), CANDOR_OK);
    char *rep = NULL;
    CU_ASSERT_EQUAL(candor_trainer_report(tr, &rep), CANDOR_OK);
    CU_ASSERT_PTR_NOT_NULL(rep);
    if (rep) {
        CU_ASSERT_PTR_NOT_NULL(strstr(rep, "\"heldout_macro_f1\""));
        CU_ASSERT_PTR_NOT_NULL(strstr(rep, "\"reliability\""));
        candor_free(rep);
    }
    candor_trainer_free(tr);

    struct candor_model *m = NULL;
    CU_ASSERT_EQUAL_FATAL(candor__model_load(path, &m), CANDOR_OK);
    static const struct { const char *text; int want; } probes[] = {
        { "can I have my money back", 1 },
        { "is my parcel lost", 4 },
        { "wonderful team", 8 },
    };
    for (size_t i = 0; i < 3; i++) {
        struct candor_features f;
        CU_ASSERT_EQUAL(candor__features(NULL, probes[i].text, 8192, false, &f), CANDOR_OK);
        double logit[CANDOR_N_INTENTS], rules[CANDOR_N_INTENTS] = {0}, p[CANDOR_N_INTENTS];
        CU_ASSERT_TRUE(candor__model_logits(m, &f, logit));
        candor__model_combine(m, logit, rules, p);
        int best = 0;
        double sum = 0;
        for (int c = 0; c < CANDOR_N_INTENTS; c++) {
            sum += p[c];
            if (p[c] > p[best])
                best = c;
        }
        CU_ASSERT_DOUBLE_EQUAL(sum, 1.0, 1e-9);
        CU_ASSERT_EQUAL(best, probes[i].want);
        candor__features_free(&f);
    }
    candor__model_free(m);
    remove(path);
    rmdir(dir);
    candor_ctx_free(ctx);
}

static void expect_bad(const char *file, const char *needle)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", test_data_path(file));
    struct candor_model *m = NULL;
    CU_ASSERT_EQUAL(candor__model_load(path, &m), CANDOR_ECONFIG);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(candor_errmsg(), needle));
    if (!strstr(candor_errmsg(), needle))
        fprintf(stderr, "%s: %s\n", file, candor_errmsg());
}

static void test_bad_files(void)
{
    expect_bad("model/bad-version.txt", "bad-version.txt:1: model format version 2");
    expect_bad("model/bad-count.txt", "bad-count.txt:5: bad count");
    expect_bad("model/not-a-model.txt", "not-a-model.txt:1: not a candor model file");
    expect_bad("model/bad-classes.txt", "bad-classes.txt:3: classes must be");
    struct candor_model *m = NULL;
    CU_ASSERT_EQUAL(candor__model_load("/nonexistent/model.txt", &m), CANDOR_EIO);
}

/* The shipped model loads and has both attribute heads. */
static void test_shipped_model(void)
{
    struct candor_ctx *ctx = test_ctx(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    CU_ASSERT_PTR_NOT_NULL(ctx->model);
    struct candor_features f;
    CU_ASSERT_EQUAL(candor__features(NULL, "where is my parcel", 8192, false, &f), CANDOR_OK);
    double x[CANDOR_HEAD_MAX_INPUTS], p[4];
    candor__head_inputs(CANDOR_HEAD_URGENCY, NULL, 0, 4, x);
    CU_ASSERT_TRUE(candor__model_head(ctx->model, CANDOR_HEAD_URGENCY, &f, x, p));
    candor__head_inputs(CANDOR_HEAD_SENTIMENT, NULL, 0, 4, x);
    CU_ASSERT_TRUE(candor__model_head(ctx->model, CANDOR_HEAD_SENTIMENT, &f, x, p));
    CU_ASSERT_DOUBLE_EQUAL(p[0] + p[1] + p[2], 1.0, 1e-9);
    candor__features_free(&f);
    candor_ctx_free(ctx);
}

static const struct test_case cases[] = {
    { "features", test_features },
    { "train, save, load, score", test_train_save_load },
    { "malformed model files refused", test_bad_files },
    { "shipped model with heads", test_shipped_model },
    { NULL, NULL }
};

int main(void) { return test_main("model", cases); }
