/*
 * rules.h — the <rules> of the configuration: PCRE2 patterns with weights
 * for intents and attributes, compiled once (JIT) when the ctx is loaded
 * and matched with limits (rules.c, issue 3). Used by triage.c and model.c.
 */
#ifndef CANDOR_RULES_H
#define CANDOR_RULES_H

#include "internal.h"

struct candor_message;
struct candor_rules;

/* The ten intents of CONTRACT.md, in its table order; indexes are used by
 * rules, model and triage alike. */
#define CANDOR_N_INTENTS 10
#define CANDOR_N_URGENCY 4     /* low normal high critical */
#define CANDOR_N_SENTIMENT 3   /* negative neutral positive */
CANDOR_HIDDEN extern const char *const candor__intent_names[CANDOR_N_INTENTS];
CANDOR_HIDDEN extern const char *const candor__urgency_names[CANDOR_N_URGENCY];
CANDOR_HIDDEN extern const char *const candor__sentiment_names[CANDOR_N_SENTIMENT];
/* Index of NAME in NAMES[N], or -1. */
CANDOR_HIDDEN int candor__name_index(const char *const *names, size_t n, const char *name);

/* What a rule pass reads. FOLDED_* are the same fields case-folded with
 * candor__utf8_fold() (used by the literal prefilter); any may be NULL
 * ("" is assumed), and a missing folded field is folded here. MSG (may be
 * NULL) gives the header fields. */
struct candor_rule_input {
    const char *subject, *new_text, *text;
    const char *folded_subject, *folded_new_text, *folded_text;
    const struct candor_message *msg;
};

/* The sum of the weights of the rules that matched. */
struct candor_rule_scores {
    double intent[CANDOR_N_INTENTS];
    double urgency[CANDOR_N_URGENCY];
    double sentiment[CANDOR_N_SENTIMENT];
    double churn;
    size_t *hits;        /* with explain: indexes of the rules that matched */
    size_t n_hits;
    size_t cap_hits;
    size_t n_run;        /* patterns actually run (after the prefilter) */
    size_t n_limited;    /* matches stopped by the match/depth/JIT limits */
};

/* Apply every rule of CTX to IN, adding into *OUT (which the caller
 * zeroes; free its hits with candor__rule_scores_free()). With EXPLAIN the
 * matching rules' indexes are listed. Fails only with CANDOR_ENOMEM. */
CANDOR_HIDDEN candor_status_t candor__rules_apply(const struct candor_ctx *ctx,
        const struct candor_rule_input *in, bool explain, struct candor_rule_scores *out);
CANDOR_HIDDEN void candor__rule_scores_free(struct candor_rule_scores *s);

CANDOR_HIDDEN size_t candor__rules_count(const struct candor_ctx *ctx);
/* The rule's id (as configured, else "line N"), and a short text saying
 * what it adds ("refund +2", "churn +1.5"). Borrowed from the ctx. */
CANDOR_HIDDEN const char *candor__rule_id(const struct candor_ctx *ctx, size_t i);
CANDOR_HIDDEN const char *candor__rule_effect(const struct candor_ctx *ctx, size_t i);

/* Compile PATTERN the way rules are compiled (caseless unless CASELESS is
 * false, UTF, UCP, JIT). Returns NULL with the error set (CANDOR_ECONFIG,
 * "what") on a bad pattern. The result is a pcre2_code_8 *. */
CANDOR_HIDDEN void *candor__rules_compile(const char *pattern, bool caseless);
/* The same with UCP off (\b, \w, \d ASCII only: faster, for patterns
 * whose boundaries are ASCII anyway, such as the entity patterns). */
CANDOR_HIDDEN void *candor__rules_compile_opts(const char *pattern, bool caseless, bool ucp);

/* The literal strings of which any match of PATTERN must contain one
 * (folded), or none (*N = 0) when no such set could be derived. Exposed for
 * tests. *OUT: malloc'd strings, free each and the array. */
CANDOR_HIDDEN bool candor__rules_literals(const char *pattern, char ***out, size_t *n);

/* For tests only: with ON false every rule's whole pattern runs on the
 * whole field, as if there were neither units nor a literal prefilter
 * (they must never change a result). Not for a ctx other threads use. */
CANDOR_HIDDEN void candor__rules_set_prefilter(struct candor_ctx *ctx, bool on);

#endif
