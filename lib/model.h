/*
 * model.h — the trainable intent classifier (model.c, issue 3): hashed
 * unigram and bigram features of the case-folded subject and new text, a
 * multinomial naive Bayes over binary feature presence, and a calibration
 * (temperature of the model, scale of the rules) fitted on cross-validation
 * folds when the model is trained. Used by triage.c.
 */
#ifndef CANDOR_MODEL_H
#define CANDOR_MODEL_H

#include "internal.h"
#include "rules.h"

struct candor_model;

#define CANDOR_MODEL_FORMAT_VERSION 1

/* Features of one message: hashes (sorted, unique) and, when wanted, the
 * token text of each (for --explain). */
struct candor_features {
    uint32_t *h;
    char **text;         /* NULL unless asked for; parallel to h */
    int32_t *idx;        /* set by candor__model_logits: index in the model, -1 unknown */
    size_t n;
    size_t cap;
};

/* Extract the features of FOLDED_SUBJECT and FOLDED_TEXT (both already
 * folded with candor__utf8_fold; either may be NULL). At most MAX_BYTES of
 * the text are read. WITH_TEXT keeps each feature's text. */
CANDOR_HIDDEN candor_status_t candor__features(const char *folded_subject,
        const char *folded_text, size_t max_bytes, bool with_text,
        struct candor_features *out);
CANDOR_HIDDEN void candor__features_free(struct candor_features *f);

/* Per-intent log-likelihood sums for F (uncalibrated), into LOGIT. False
 * when the ctx has no model (LOGIT zeroed). */
CANDOR_HIDDEN bool candor__model_logits(const struct candor_model *m,
        struct candor_features *f, double logit[CANDOR_N_INTENTS]);

/* Combine model logits and rule intent scores into calibrated
 * probabilities: p = softmax(logit / T + s * rules). */
CANDOR_HIDDEN void candor__model_combine(const struct candor_model *m,
        const double logit[CANDOR_N_INTENTS], const double rules[CANDOR_N_INTENTS],
        double prob[CANDOR_N_INTENTS]);

/* How much feature I of F pushed intent C over the average intent (log
 * units, after the temperature). 0 when unknown to the model. */
CANDOR_HIDDEN double candor__model_feature_weight(const struct candor_model *m,
        uint32_t h, int c);

/* Load a model file (CANDOR_EIO when missing, CANDOR_ECONFIG "path:line:
 * what" when malformed). */
CANDOR_HIDDEN candor_status_t candor__model_load(const char *path, struct candor_model **out);

/* Attribute heads: urgency and sentiment are learned too when the training
 * data has those labels (naive Bayes on the same features, combined with
 * the rule and lexicon signals and the predicted intent by a small softmax
 * fitted on held-out folds). */
#define CANDOR_HEAD_URGENCY 0
#define CANDOR_HEAD_SENTIMENT 1
#define CANDOR_N_HEADS 2
#define CANDOR_HEAD_MAX_INPUTS 14
/* The head's inputs: urgency = the rules' 4 urgency scores + the intent
 * (one-hot); sentiment = the sentiment signal + the intent (one-hot). */
CANDOR_HIDDEN void candor__head_inputs(int head, const struct candor_rule_scores *rs,
        double sentiment_signal, int intent, double x[CANDOR_HEAD_MAX_INPUTS]);
/* Probabilities of HEAD's classes (urgency: low..critical; sentiment:
 * negative, neutral, positive) into PROB; false when M has no such head. */
CANDOR_HIDDEN bool candor__model_head(const struct candor_model *m, int head,
        const struct candor_features *f, const double *x, double *prob);

/* Bytes of new text the features read (bounded work per message). */
#define CANDOR_MODEL_MAX_TEXT_BYTES 8192u

#endif
