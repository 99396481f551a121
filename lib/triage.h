/* triage.h — triage results for other modules (triage.c, issue 3). */
#ifndef CANDOR_TRIAGE_H
#define CANDOR_TRIAGE_H
#include "internal.h"

struct candor_entity {
    const char *kind;   /* "order_number", "ticket", "amount", "date", "phone", "tracking_number" */
    char *value;        /* as written in the text (normalised spacing) */
};

/* The entities found in the message, in order of appearance. Borrowed. */
CANDOR_HIDDEN const struct candor_entity *candor__result_entities(const struct candor_result *res,
                                                                  size_t *n);
/* Find entities in UTF-8 TEXT (the same detector triage uses), for the
 * canned check. *OUT is a malloc'd array; free with candor__entities_free(). */
CANDOR_HIDDEN candor_status_t candor__entities_find(const struct candor_ctx *ctx, const char *text,
                                                    struct candor_entity **out, size_t *n);
CANDOR_HIDDEN void candor__entities_free(struct candor_entity *v, size_t n);

struct candor_rule_scores;
/* The sentiment score triage computes for SUBJECT and BODY (lexicon with
 * negation and intensity, frustration signs, capitals, sentiment rules of
 * RS, "!!"), before the intent's bias. For the trainer (model.c). */
CANDOR_HIDDEN double candor__triage_sentiment_signal(const struct candor_ctx *ctx,
        const char *subject, const char *body, const struct candor_rule_scores *rs);
#endif
