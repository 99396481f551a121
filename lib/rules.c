/*
 * rules.c — the <rules> section: PCRE2 patterns, each applied to one named
 * field of a message (subject, new_text, text or header:NAME) and adding a
 * weight to an intent and/or an attribute when it matches.
 *
 *   <rules max-match-bytes="8192" match-limit="200000">
 *     <rule id="refund-money-back" intent="refund" weight="2">\bmoney back\b</rule>
 *     <rule field="subject" urgency="high" weight="1.5">\burgent\b</rule>
 *     <rule churn="true" weight="2">\b(lawyer|attorney|avocat|anwalt|abogado)\b</rule>
 *   </rules>
 *
 * Fields: "message" (the default: the subject, a blank line, the new
 * text), "subject", "new_text" (the customer's new words, without quoted
 * history and signature), "text" (everything readable), "header:NAME" (each
 * of the first 8 fields of that name, raw).
 *
 * Patterns are compiled once, with JIT, when the ctx is loaded, and live in
 * the ctx (read-only afterwards); match data is per call. Matching is
 * bounded three ways: each field is cut to max-match-bytes (at a UTF-8
 * boundary), every match runs under a match limit and a depth limit, and a
 * pattern that blows a limit on a short probe at load time is refused with
 * file:line.
 *
 * The depth limit under JIT: PCRE2's JIT code ignores pcre2_set_depth_limit()
 * and backtracks on a JIT stack of its own (32 kB unless one is assigned).
 * So depth-limit sizes that stack: JIT_BYTES_PER_DEPTH bytes a level, one
 * stack per thread (PCRE2: a JIT stack serves one match at a time), made
 * on the thread's first match and freed when the thread exits. Measured
 * (PCRE2 10.42, x86-64): on (a|b)*c, (?:a|b)*c, ((a)|b)+c and
 * \b(\w+ ?)+\. the interpreter under depth-limit d and JIT on 16 * d bytes
 * stop at the same subject length within 3% (d = 1000, 2000). The default,
 * 2,000, gives PCRE2's own 32 kB. A JIT stack is never smaller than about
 * 8 kB (some 500 levels), so a depth-limit below JIT_MIN_DEPTH runs every
 * match in the interpreter (PCRE2_NO_JIT), which honours it exactly: a
 * config that asks for so little depth gets it, at the interpreter's speed.
 *
 * The prefilter: for each pattern, sets of literals are derived such that
 * every match must contain one literal of each set (e.g. {"money back"} for
 * \bmoney back\b, {"refund","rembours"} for (refund|rembours), {"new",
 * "updated"} and {"address","card"} for (new|updated) (address|card)). All
 * literals of all rules go into one Aho-Corasick automaton over byte
 * classes; one pass over each case-folded field finds which rules can
 * possibly match (every set seen), and only those run their PCRE2 pattern. Rules without a derivable literal run
 * always. So the cost per message grows with the rules that nearly match,
 * not with the number of rules.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <libxml/tree.h>
#include "ctx.h"
#include "rules.h"
#include "message.h"

const char *const candor__intent_names[CANDOR_N_INTENTS] = {
    "complaint", "refund", "cancellation", "billing", "order_status",
    "technical_support", "account_change", "sales_inquiry", "praise", "general_question",
};
const char *const candor__urgency_names[CANDOR_N_URGENCY] = { "low", "normal", "high", "critical" };
const char *const candor__sentiment_names[CANDOR_N_SENTIMENT] = { "negative", "neutral", "positive" };

int candor__name_index(const char *const *names, size_t n, const char *name)
{
    if (!name)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return (int)i;
    return -1;
}

enum field { F_MESSAGE, F_SUBJECT, F_NEW_TEXT, F_TEXT, F_HEADER, F_COUNT };

#define DEFAULT_MAX_MATCH_BYTES 8192u
#define DEFAULT_MATCH_LIMIT 200000u
#define DEFAULT_DEPTH_LIMIT 2000u
#define JIT_BYTES_PER_DEPTH 16u  /* JIT stack per level of depth-limit (above) */
#define JIT_MIN_DEPTH 512u       /* below: the interpreter (above) */
#define MAX_PATTERN_BYTES 4000u
#define MAX_LITERALS_PER_RULE 64u
#define MIN_LITERAL_BYTES 3u
#define MAX_HEADER_VALUES 8u
#define UNBOUNDED SIZE_MAX       /* a match width without a bound */

struct rule {
    char *id;
    char *effect;
    enum field field;
    char *header;              /* F_HEADER: the field name */
    pcre2_code *code;
    double weight;
    int intent, urgency, sentiment, churn;   /* -1: none */
    size_t first_unit, n_units;
};

/* A top-level alternative of a rule's pattern, compiled on its own so the
 * prefilter can skip it by its own literals ("refund|money back" runs the
 * "money back" branch only where "money" occurs). */
struct unit {
    pcre2_code *code;
    size_t rule;
    bool prefiltered;          /* has literals in the automaton */
    bool owned;                /* code is its own (else the rule's) */
    size_t width;              /* the widest match in bytes, or UNBOUNDED */
    uint8_t all;               /* prefiltered: the bits of its literal sets */
};

struct candor_rules {
    struct rule *v;
    size_t n;
    size_t max_match_bytes;
    uint32_t match_limit, depth_limit;
    size_t jit_stack_bytes;    /* 0: no JIT (platform, or depth-limit < JIT_MIN_DEPTH) */
    uint32_t match_opts;       /* PCRE2_NO_JIT when depth-limit < JIT_MIN_DEPTH */
    bool has_field[F_COUNT];
    bool prefilter_off;        /* tests: every rule's whole pattern on the whole field */

    /* Aho-Corasick over all literals */
    char **lits;               /* folded literal strings */
    size_t n_lits;
    struct unit *units;
    size_t n_units, cap_units;
    size_t **lit_rules;        /* per literal: unit index << 3 | literal set */
    size_t *lit_nrules;
    size_t *lit_len;           /* strlen of each literal */
    /* per unit and literal set (unit << 3 | set): its literals, at
     * set_lits[set_start[us] .. set_start[us + 1]) */
    size_t *set_start;
    uint32_t *set_lits;
    /* lit_rules flattened for the walk: literal l's entries are
     * lit_units[lit_start[l] .. lit_start[l + 1]) */
    uint32_t *lit_start, *lit_units;
    uint8_t cls[256];          /* byte -> class (0: in no literal) */
    size_t n_cls;
    int32_t *delta;            /* n_states * n_cls (while building) */
    int32_t *out;              /* state -> literal ending here, or -1 */
    int32_t *dict;             /* state -> nearest proper suffix state with an output, or 0 */
    /* The walk's table: states numbered in breadth-first order (the
     * shallow states the walk mostly visits lie together), each entry
     * the next state with AC_EMIT set when that state ends a literal
     * (itself or by its dictionary link). 16-bit entries while the states
     * fit, else 32-bit. */
    uint16_t *walk16;
    uint32_t *walk32;
    size_t n_states;
};

/* ------------------------------------------------------------------ */
/* Literal extraction: a conservative reading of PCRE2 syntax.          */
/* ------------------------------------------------------------------ */

struct litset {
    bool ok;        /* false: no requirement could be derived */
    char **v;
    size_t n;
};

struct lparse {
    const char *p;
    size_t i, len;
    bool fail;      /* syntax we do not model: no prefilter for this rule */
    int depth;
    /* With COLLECT: every literal set a match requires (not only the best
     * one): those of the top-level sequence and of the groups on it that
     * have one alternative and are not optional. */
    bool collect;
    struct litset *col;
    size_t n_col;
};

static void litset_free(struct litset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

static size_t litset_minlen(const struct litset *s)
{
    size_t m = SIZE_MAX;
    for (size_t i = 0; i < s->n; i++) {
        size_t l = strlen(s->v[i]);
        if (l < m)
            m = l;
    }
    return s->n ? m : 0;
}

static bool litset_add(struct litset *s, const char *str, size_t len)
{
    char *f = candor__utf8_fold(str, len);
    if (!f)
        return false;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], f) == 0) {
            free(f);
            return true;
        }
    char **nv = realloc(s->v, (s->n + 1) * sizeof *nv);
    if (!nv) {
        free(f);
        return false;
    }
    s->v = nv;
    s->v[s->n++] = f;
    return true;
}

#define MAX_CLAUSES 8u           /* literal sets used per unit */
#define MAX_COLLECT 64u          /* literal sets gathered while parsing */

static bool litset_same(const struct litset *a, const struct litset *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0)
            return false;
    return true;
}

/* Drop the gathered sets from MARK on (they were inside an alternative or
 * an optional group). */
static void collect_truncate(struct lparse *lp, size_t mark)
{
    while (lp->n_col > mark)
        litset_free(&lp->col[--lp->n_col]);
}

/* Keep a copy of C among the required sets of the top-level sequence
 * (sets with a literal shorter than MIN_LITERAL_BYTES would pass almost
 * any text: not kept). */
static void collect(struct lparse *lp, const struct litset *c)
{
    if (!c->ok || c->n == 0 || litset_minlen(c) < MIN_LITERAL_BYTES || lp->n_col >= MAX_COLLECT)
        return;
    for (size_t i = 0; i < lp->n_col; i++)
        if (litset_same(&lp->col[i], c))
            return;
    struct litset d = { true, NULL, 0 };
    for (size_t i = 0; i < c->n; i++)
        if (!litset_add(&d, c->v[i], strlen(c->v[i]))) {
            litset_free(&d);
            lp->fail = true;
            return;
        }
    struct litset *nv = realloc(lp->col, (lp->n_col + 1) * sizeof *nv);
    if (!nv) {
        litset_free(&d);
        lp->fail = true;
        return;
    }
    lp->col = nv;
    lp->col[lp->n_col++] = d;
}

/* Is the quantifier at the parse position one that allows zero
 * repetitions? Consumes it (and a lazy/possessive suffix). Returns 0: no
 * quantifier, 1: at least one required, 2: optional. */
static int take_quantifier(struct lparse *lp)
{
    if (lp->i >= lp->len)
        return 0;
    char c = lp->p[lp->i];
    int r = 0;
    if (c == '?' || c == '*') {
        lp->i++;
        r = 2;
    } else if (c == '+') {
        lp->i++;
        r = 1;
    } else if (c == '{') {
        size_t j = lp->i + 1;
        size_t min = 0;
        bool digits = false;
        while (j < lp->len && candor__is_digit((unsigned char)lp->p[j])) {
            min = min * 10 + (size_t)(lp->p[j] - '0');
            if (min > 100000)
                min = 100000;
            digits = true;
            j++;
        }
        if (!digits)
            return 0;   /* a literal '{' in PCRE2 10.42 */
        while (j < lp->len && (candor__is_digit((unsigned char)lp->p[j]) || lp->p[j] == ','))
            j++;
        if (j >= lp->len || lp->p[j] != '}')
            return 0;
        lp->i = j + 1;
        r = min == 0 ? 2 : 1;
    } else {
        return 0;
    }
    if (lp->i < lp->len && (lp->p[lp->i] == '?' || lp->p[lp->i] == '+'))
        lp->i++;
    return r;
}

static struct litset parse_alt(struct lparse *lp, int *nalts);

static void collect(struct lparse *lp, const struct litset *c);

/* Offer candidate set C for the sequence: keep the better of BEST and C. */
static void offer_lp(struct lparse *lp, struct litset *best, struct litset *c)
{
    if (lp && lp->collect)
        collect(lp, c);
    if (!c->ok || c->n == 0) {
        litset_free(c);
        return;
    }
    size_t mc = litset_minlen(c), mb = best->ok ? litset_minlen(best) : 0;
    if (!best->ok || mc > mb || (mc == mb && c->n < best->n)) {
        litset_free(best);
        *best = *c;
        best->ok = true;
    } else {
        litset_free(c);
    }
}

static void flush_run(struct lparse *lp, struct candor_buf *run, struct litset *best)
{
    if (run->len == 0)
        return;
    struct litset c = { true, NULL, 0 };
    if (!litset_add(&c, run->data, run->len))
        lp->fail = true;
    offer_lp(lp, best, &c);
    run->len = 0;
    if (run->data)
        run->data[0] = '\0';
}

static struct litset parse_seq(struct lparse *lp)
{
    struct litset best = { false, NULL, 0 };
    struct candor_buf run = CANDOR_BUF_INIT;
    while (!lp->fail && lp->i < lp->len) {
        unsigned char c = (unsigned char)lp->p[lp->i];
        if (c == '|' || c == ')')
            break;
        if (c == '(') {
            lp->i++;
            bool lookaround = false;
            if (lp->i < lp->len && lp->p[lp->i] == '*') {
                lp->fail = true;
                break;
            }
            if (lp->i < lp->len && lp->p[lp->i] == '?') {
                const char *q = lp->p + lp->i + 1;
                size_t left = lp->len - lp->i - 1;
                if (left >= 1 && (q[0] == ':' || q[0] == '>')) {
                    lp->i += 2;
                } else if (left >= 1 && (q[0] == '=' || q[0] == '!')) {
                    lp->i += 2;
                    lookaround = true;
                } else if (left >= 2 && q[0] == '<' && (q[1] == '=' || q[1] == '!')) {
                    lp->i += 3;
                    lookaround = true;
                } else if (left >= 1 && (q[0] == '<' || q[0] == '\'' || q[0] == 'P')) {
                    size_t j = lp->i + 1;
                    while (j < lp->len && lp->p[j] != '>' && lp->p[j] != '\'' && lp->p[j] != ')')
                        j++;
                    if (j >= lp->len || lp->p[j] == ')' || (q[0] == 'P' && left >= 2 && q[1] != '<')) {
                        lp->fail = true;
                        break;
                    }
                    lp->i = j + 1;
                } else if (left >= 1 && q[0] == '#') {
                    while (lp->i < lp->len && lp->p[lp->i] != ')')
                        lp->i++;
                    if (lp->i < lp->len)
                        lp->i++;
                    continue;
                } else {
                    lp->fail = true;   /* inline options, conditionals, recursion */
                    break;
                }
            }
            if (++lp->depth > 50) {
                lp->fail = true;
                break;
            }
            size_t mark = lp->n_col;
            int nalts = 0;
            struct litset g = parse_alt(lp, &nalts);
            lp->depth--;
            if (lp->i >= lp->len || lp->p[lp->i] != ')') {
                litset_free(&g);
                lp->fail = true;
                break;
            }
            lp->i++;
            if (lookaround) {
                collect_truncate(lp, mark);
                litset_free(&g);
                take_quantifier(lp);
                continue;
            }
            int q = take_quantifier(lp);
            if (q == 2 || nalts > 1)
                collect_truncate(lp, mark);
            flush_run(lp, &run, &best);
            if (q == 2)
                litset_free(&g);
            else
                offer_lp(lp, &best, &g);
            continue;
        }
        if (c == '[') {
            /* a class: skip to its end (']' right after '[' or '[^' is literal) */
            size_t j = lp->i + 1;
            if (j < lp->len && lp->p[j] == '^')
                j++;
            if (j < lp->len && lp->p[j] == ']')
                j++;
            while (j < lp->len && lp->p[j] != ']') {
                if (lp->p[j] == '\\')
                    j++;
                else if (lp->p[j] == '[' && j + 1 < lp->len && lp->p[j + 1] == ':') {
                    const char *e = strstr(lp->p + j + 2, ":]");
                    if (!e) {
                        lp->fail = true;
                        break;
                    }
                    j = (size_t)(e - lp->p) + 1;
                }
                j++;
            }
            if (lp->fail || j >= lp->len) {
                lp->fail = true;
                break;
            }
            lp->i = j + 1;
            flush_run(lp, &run, &best);
            take_quantifier(lp);
            continue;
        }
        if (c == '.') {
            lp->i++;
            flush_run(lp, &run, &best);
            take_quantifier(lp);
            continue;
        }
        if (c == '^' || c == '$') {
            lp->i++;
            continue;
        }
        if (c == '?' || c == '*' || c == '+' || c == '{' || c == '}' || c == ']') {
            if (c == '{' || c == '}' || c == ']') {
                /* literal in PCRE2 when not a quantifier */
            } else {
                lp->fail = true;
                break;
            }
        }
        const char *lit = lp->p + lp->i;
        size_t litlen = 1;
        if (c == '\\') {
            if (lp->i + 1 >= lp->len) {
                lp->fail = true;
                break;
            }
            unsigned char e = (unsigned char)lp->p[lp->i + 1];
            if (e == 'b' || e == 'B' || e == 'A' || e == 'z' || e == 'Z' || e == 'G') {
                lp->i += 2;
                continue;
            }
            if (strchr("dDwWsShHvVRXN", e)) {
                lp->i += 2;
                flush_run(lp, &run, &best);
                take_quantifier(lp);
                continue;
            }
            if (candor__is_alnum(e) || e >= 0x80) {
                lp->fail = true;   /* \x, \p, \Q, backreferences ... */
                break;
            }
            lit = lp->p + lp->i + 1;
            lp->i += 2;
        } else if (c >= 0x80) {
            uint32_t cp;
            litlen = candor__utf8_decode(lp->p + lp->i, lp->len - lp->i, &cp);
            lp->i += litlen;
        } else {
            lp->i++;
        }
        int q = take_quantifier(lp);
        if (q == 2) {
            flush_run(lp, &run, &best);
        } else {
            candor__buf_append(&run, lit, litlen);
            if (q == 1)
                flush_run(lp, &run, &best);
        }
    }
    flush_run(lp, &run, &best);
    if (run.oom)
        lp->fail = true;
    candor__buf_free(&run);
    return best;
}

static struct litset parse_alt(struct lparse *lp, int *nalts)
{
    struct litset all = { true, NULL, 0 };
    for (;;) {
        ++*nalts;
        struct litset s = parse_seq(lp);
        if (lp->fail || !s.ok) {
            litset_free(&s);
            all.ok = false;
        }
        if (all.ok) {
            for (size_t i = 0; i < s.n; i++)
                if (!litset_add(&all, s.v[i], strlen(s.v[i])))
                    lp->fail = true;
            if (all.n > MAX_LITERALS_PER_RULE)
                all.ok = false;
        }
        litset_free(&s);
        if (lp->fail || lp->i >= lp->len || lp->p[lp->i] != '|')
            break;
        lp->i++;
    }
    if (!all.ok || lp->fail)
        litset_free(&all), all.ok = false;
    return all;
}

bool candor__rules_literals(const char *pattern, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct lparse lp = { pattern, 0, strlen(pattern), false, 0, false, NULL, 0 };
    int nalts = 0;
    struct litset s = parse_alt(&lp, &nalts);
    if (lp.fail || !s.ok || lp.i != lp.len || litset_minlen(&s) < MIN_LITERAL_BYTES) {
        litset_free(&s);
        return true;
    }
    *out = s.v;
    *n = s.n;
    return true;
}

/* Every literal set that a match of PATTERN must contain one of (folded),
 * for a pattern without top-level alternatives: "\\b(new|updated)
 * (address|card)\\b" needs one of {new, updated} AND one of {address,
 * card}. *N = 0 when none could be derived. Free with clauses_free(). */
static void clauses_free(struct litset *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        litset_free(&v[i]);
    free(v);
}

static void rules_clauses(const char *pattern, struct litset **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct lparse lp = { pattern, 0, strlen(pattern), false, 0, true, NULL, 0 };
    int nalts = 0;
    struct litset s = parse_alt(&lp, &nalts);
    litset_free(&s);
    if (lp.fail || lp.i != lp.len || nalts != 1) {
        clauses_free(lp.col, lp.n_col);
        return;
    }
    if (lp.n_col > MAX_CLAUSES)
        collect_truncate(&lp, MAX_CLAUSES);
    *out = lp.col;
    *n = lp.n_col;
}

/* ------------------------------------------------------------------ */
/* Aho-Corasick automaton                                               */
/* ------------------------------------------------------------------ */

#define AC_EMIT16 0x8000u
#define AC_EMIT32 0x80000000u

static candor_status_t ac_build(struct candor_rules *r)
{
    memset(r->cls, 0, sizeof r->cls);
    r->n_cls = 1;
    size_t total = 1;
    for (size_t i = 0; i < r->n_lits; i++)
        for (const unsigned char *s = (const unsigned char *)r->lits[i]; *s; s++) {
            if (!r->cls[*s])
                r->cls[*s] = (uint8_t)r->n_cls++;
            total++;
        }
    /* ASCII upper-case bytes share their lower-case class (the text is
     * folded already, but a case-sensitive field costs nothing this way). */
    for (int c = 'A'; c <= 'Z'; c++)
        r->cls[c] = r->cls[c + 32];
    size_t K = r->n_cls;
    r->delta = malloc(total * K * sizeof *r->delta);
    r->out = malloc(total * sizeof *r->out);
    r->dict = calloc(total, sizeof *r->dict);
    int32_t *fail = calloc(total, sizeof *fail);
    int32_t *queue = malloc(total * sizeof *queue);
    if (!r->delta || !r->out || !r->dict || !fail || !queue) {
        free(fail);
        free(queue);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < total * K; i++)
        r->delta[i] = -1;
    for (size_t i = 0; i < total; i++)
        r->out[i] = -1;
    size_t ns = 1;
    for (size_t i = 0; i < r->n_lits; i++) {
        int32_t s = 0;
        for (const unsigned char *p = (const unsigned char *)r->lits[i]; *p; p++) {
            int32_t *t = &r->delta[(size_t)s * K + r->cls[*p]];
            if (*t < 0)
                *t = (int32_t)ns++;
            s = *t;
        }
        r->out[s] = (int32_t)i;
    }
    r->n_states = ns;
    /* BFS: complete the transitions, failure and dictionary links. */
    size_t qh = 0, qt = 0;
    for (size_t k = 0; k < K; k++) {
        int32_t t = r->delta[k];
        if (t < 0) {
            r->delta[k] = 0;
        } else {
            fail[t] = 0;
            queue[qt++] = t;
        }
    }
    while (qh < qt) {
        int32_t s = queue[qh++];
        int32_t f = fail[s];
        r->dict[s] = r->out[f] >= 0 ? f : r->dict[f];
        for (size_t k = 0; k < K; k++) {
            int32_t *t = &r->delta[(size_t)s * K + k];
            if (*t < 0) {
                *t = r->delta[(size_t)f * K + k];
            } else {
                fail[*t] = r->delta[(size_t)f * K + k];
                queue[qt++] = *t;
            }
        }
    }
    free(fail);
    /* Renumber breadth-first (QUEUE holds every state but the root in
     * that order) into the walk's table. */
    uint32_t *id = malloc(ns * sizeof *id);
    int32_t *nout = malloc(ns * sizeof *nout), *ndict = malloc(ns * sizeof *ndict);
    bool small = ns < AC_EMIT16;
    if (small)
        r->walk16 = malloc(ns * K * sizeof *r->walk16);
    else
        r->walk32 = malloc(ns * K * sizeof *r->walk32);
    if (!id || !nout || !ndict || (small ? !r->walk16 : !r->walk32)) {
        free(id);
        free(nout);
        free(ndict);
        free(queue);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    id[0] = 0;
    for (size_t i = 0; i < qt; i++)
        id[queue[i]] = (uint32_t)i + 1;
    free(queue);
    for (size_t o = 0; o < ns; o++) {
        size_t n = id[o];
        nout[n] = r->out[o];
        ndict[n] = r->dict[o] > 0 ? (int32_t)id[r->dict[o]] : 0;
        for (size_t k = 0; k < K; k++) {
            int32_t t = r->delta[o * K + k];
            bool emit = r->out[t] >= 0 || r->dict[t] > 0;
            if (small)
                r->walk16[n * K + k] = (uint16_t)(id[t] | (emit ? AC_EMIT16 : 0));
            else
                r->walk32[n * K + k] = id[t] | (emit ? AC_EMIT32 : 0);
        }
    }
    free(id);
    free(r->out);
    free(r->dict);
    free(r->delta);
    r->delta = NULL;
    r->out = nout;
    r->dict = ndict;
    r->lit_len = malloc((r->n_lits ? r->n_lits : 1) * sizeof *r->lit_len);
    if (!r->lit_len)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    for (size_t i = 0; i < r->n_lits; i++)
        r->lit_len[i] = strlen(r->lits[i]);
    /* the literals of each unit's sets (the reverse of lit_rules) */
    size_t nus = (r->n_units << 3) + 1, total_refs = 0;
    r->set_start = calloc(nus + 1, sizeof *r->set_start);
    if (!r->set_start)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    for (size_t i = 0; i < r->n_lits; i++)
        for (size_t k = 0; k < r->lit_nrules[i]; k++) {
            r->set_start[r->lit_rules[i][k] + 1]++;
            total_refs++;
        }
    for (size_t us = 0; us < nus; us++)
        r->set_start[us + 1] += r->set_start[us];
    r->set_lits = malloc((total_refs ? total_refs : 1) * sizeof *r->set_lits);
    size_t *fill = malloc(nus * sizeof *fill);
    if (!r->set_lits || !fill) {
        free(fill);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    memcpy(fill, r->set_start, nus * sizeof *fill);
    for (size_t i = 0; i < r->n_lits; i++)
        for (size_t k = 0; k < r->lit_nrules[i]; k++)
            r->set_lits[fill[r->lit_rules[i][k]]++] = (uint32_t)i;
    free(fill);
    r->lit_start = malloc((r->n_lits + 1) * sizeof *r->lit_start);
    r->lit_units = malloc((total_refs ? total_refs : 1) * sizeof *r->lit_units);
    if (!r->lit_start || !r->lit_units || total_refs > UINT32_MAX || nus > UINT32_MAX)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    size_t at = 0;
    for (size_t i = 0; i < r->n_lits; i++) {
        r->lit_start[i] = (uint32_t)at;
        for (size_t k = 0; k < r->lit_nrules[i]; k++)
            r->lit_units[at++] = (uint32_t)r->lit_rules[i][k];
    }
    r->lit_start[r->n_lits] = (uint32_t)at;
    return CANDOR_OK;
}

/* ------------------------------------------------------------------ */
/* Loading                                                             */
/* ------------------------------------------------------------------ */

void *candor__rules_compile(const char *pattern, bool caseless)
{
    return candor__rules_compile_opts(pattern, caseless, true);
}

static pcre2_code *compile_pattern(const char *pattern, bool caseless, bool ucp, uint32_t extra);

void *candor__rules_compile_opts(const char *pattern, bool caseless, bool ucp)
{
    return compile_pattern(pattern, caseless, ucp, 0);
}

/* A rule's pattern: an offset limit may be set when it is matched. */
static pcre2_code *rule_compile(const char *pattern, bool caseless)
{
    return compile_pattern(pattern, caseless, true, PCRE2_USE_OFFSET_LIMIT);
}

static pcre2_code *compile_pattern(const char *pattern, bool caseless, bool ucp, uint32_t extra)
{
    int err;
    PCRE2_SIZE off;
    uint32_t opts = PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C | PCRE2_MATCH_INVALID_UTF | extra;
    if (ucp)
        opts |= PCRE2_UCP;
    if (caseless)
        opts |= PCRE2_CASELESS;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts,
                                     &err, &off, NULL);
    if (!code) {
        PCRE2_UCHAR buf[160];
        pcre2_get_error_message(err, buf, sizeof buf);
        candor__fail(CANDOR_ECONFIG, "bad pattern at offset %zu: %s", (size_t)off, (char *)buf);
        return NULL;
    }
    /* JIT when the platform has it; the interpreter otherwise (same limits). */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    return code;
}

static void rules_free(struct candor_rules *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].id);
        free(r->v[i].effect);
        free(r->v[i].header);
        pcre2_code_free(r->v[i].code);
    }
    free(r->v);
    for (size_t i = 0; i < r->n_units; i++)
        if (r->units[i].owned)
            pcre2_code_free(r->units[i].code);
    free(r->units);
    for (size_t i = 0; i < r->n_lits; i++) {
        free(r->lits[i]);
        free(r->lit_rules[i]);
    }
    free(r->lits);
    free(r->lit_rules);
    free(r->lit_nrules);
    free(r->lit_len);
    free(r->set_start);
    free(r->set_lits);
    free(r->lit_start);
    free(r->lit_units);
    free(r->delta);
    free(r->out);
    free(r->dict);
    free(r->walk16);
    free(r->walk32);
    free(r);
}

void candor__rules_free(struct candor_rules *rules) { rules_free(rules); }

static bool push_index(size_t **v, size_t *n, size_t x)
{
    size_t *nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return false;
    nv[(*n)++] = x;
    *v = nv;
    return true;
}

static candor_status_t add_literal(struct candor_rules *r, const char *lit, size_t rule)
{
    size_t i;
    for (i = 0; i < r->n_lits; i++)
        if (strcmp(r->lits[i], lit) == 0)
            break;
    if (i == r->n_lits) {
        char **nl = realloc(r->lits, (r->n_lits + 1) * sizeof *nl);
        if (!nl)
            return candor__fail(CANDOR_ENOMEM, "out of memory");
        r->lits = nl;
        size_t **nr = realloc(r->lit_rules, (r->n_lits + 1) * sizeof *nr);
        if (!nr)
            return candor__fail(CANDOR_ENOMEM, "out of memory");
        r->lit_rules = nr;
        size_t *nn = realloc(r->lit_nrules, (r->n_lits + 1) * sizeof *nn);
        if (!nn)
            return candor__fail(CANDOR_ENOMEM, "out of memory");
        r->lit_nrules = nn;
        r->lits[i] = candor__strdup(lit);
        r->lit_rules[i] = NULL;
        r->lit_nrules[i] = 0;
        if (!r->lits[i])
            return candor__fail(CANDOR_ENOMEM, "out of memory");
        r->n_lits++;
    }
    if (r->lit_nrules[i] && r->lit_rules[i][r->lit_nrules[i] - 1] == rule)
        return CANDOR_OK;
    if (!push_index(&r->lit_rules[i], &r->lit_nrules[i], rule))
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    return CANDOR_OK;
}

/* The top-level alternatives of PATTERN (new strings), or 0 when it has
 * none or uses syntax whose meaning would change when split (inline
 * options, back references, \Q...\E). */
static size_t split_top(const char *p, char ***out)
{
    *out = NULL;
    size_t len = strlen(p), start = 0, n = 0;
    int depth = 0;
    char **v = NULL;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (c == '\\') {
            char e = p[i + 1];
            if (e == 'Q' || e == 'g' || e == 'k' || (e >= '1' && e <= '9'))
                goto nosplit;
            i++;
            continue;
        }
        if (c == '[') {
            size_t j = i + 1;
            if (j < len && p[j] == '^')
                j++;
            if (j < len && p[j] == ']')
                j++;
            while (j < len && p[j] != ']') {
                if (p[j] == '\\')
                    j++;
                j++;
            }
            i = j;
            continue;
        }
        if (c == '(') {
            if (p[i + 1] == '?' && p[i + 2] && strchr(":=!<>#P'", p[i + 2]) == NULL)
                goto nosplit;   /* (?i) and friends */
            if (p[i + 1] == '*')
                goto nosplit;
            depth++;
        } else if (c == ')') {
            depth--;
        } else if (c == '|' && depth == 0) {
            char **nv = realloc(v, (n + 2) * sizeof *nv);
            if (!nv)
                goto nosplit;
            v = nv;
            v[n++] = candor__strndup(p + start, i - start);
            start = i + 1;
        }
    }
    if (n == 0)
        return 0;
    v[n++] = candor__strdup(p + start);
    for (size_t i = 0; i < n; i++)
        if (!v[i] || !*v[i])
            goto nosplit;
    *out = v;
    return n;
nosplit:
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
    return 0;
}

/* The end of the character class opening at P[I] (the index of its ']'),
 * or 0 when it does not end. */
static size_t class_end(const char *p, size_t i)
{
    size_t j = i + 1;
    if (p[j] == '^')
        j++;
    if (p[j] == ']')
        j++;
    while (p[j] && p[j] != ']') {
        if (p[j] == '\\' && p[j + 1]) {
            j++;
        } else if (p[j] == '[' && p[j + 1] == ':') {
            const char *e = strstr(p + j + 2, ":]");
            if (!e)
                return 0;
            j = (size_t)(e - p) + 1;
        }
        j++;
    }
    return p[j] ? j : 0;
}

/* Does P refer to groups by number or name, or quote with \Q? Then
 * making a group non-capturing or copying text around would change it. */
static bool has_group_refs(const char *p)
{
    for (size_t i = 0; p[i]; i++) {
        if (p[i] == '\\') {
            char e = p[i + 1];
            if (e == 'g' || e == 'k' || e == 'Q' || (e >= '1' && e <= '9'))
                return true;
            if (e)
                i++;
        } else if (p[i] == '(' && p[i + 1] == '?') {
            char e = p[i + 2];
            if (e == '&' || e == 'R' || e == '(' || e == '+' || e == '-' || e == '|' ||
                (e >= '0' && e <= '9') || (e == 'P' && (p[i + 3] == '=' || p[i + 3] == '>')))
                return true;
        }
    }
    return false;
}

static size_t max_width(const char *pattern);

/* Is the text before P[I] of bounded width? (Distributing a group after
 * an unbounded prefix would run that prefix once per alternative.) */
static bool prefix_bounded(const char *p, size_t i)
{
    char *pre = candor__strndup(p, i);
    if (!pre)
        return false;
    bool ok = max_width(pre) != UNBOUNDED;
    free(pre);
    return ok;
}

/* B has a group "(A1|A2|...)" on its top level, without a quantifier,
 * after a prefix of bounded width:
 * the alternatives distributed, "P(?:Ai)S" each (P and S the text before
 * and after the group, the first such group taken), so that each runs only
 * where its own literals occur and starts with them. A match of B is a
 * match of one of them and back. 0 when B has no such group. */
static size_t distribute(const char *b, char ***out)
{
    *out = NULL;
    if (has_group_refs(b))
        return 0;
    size_t open = 0, close = 0, n = 0;
    char **alts = NULL;
    bool found = false;
    for (size_t i = 0; b[i] && !found; i++) {
        if (b[i] == '\\') {
            if (!b[i + 1])
                return 0;
            i++;
            continue;
        }
        if (b[i] == '[') {
            i = class_end(b, i);
            if (!i)
                return 0;
            continue;
        }
        if (b[i] != '(')
            continue;
        bool plain = true;
        size_t in = i + 1;
        if (b[in] == '?') {
            if (b[in + 1] == ':')
                in += 2;
            else
                plain = false;
        } else if (b[in] == '*') {
            plain = false;
        }
        int depth = 1;
        size_t j = i + 1;
        for (; b[j] && depth > 0; j++) {
            if (b[j] == '\\') {
                if (!b[j + 1])
                    return 0;
                j++;
            } else if (b[j] == '[') {
                j = class_end(b, j);
                if (!j)
                    return 0;
            } else if (b[j] == '(') {
                depth++;
            } else if (b[j] == ')') {
                depth--;
            }
        }
        if (depth)
            return 0;
        char q = b[j];   /* after the ')' */
        bool quantified = q == '?' || q == '*' || q == '+' ||
                          (q == '{' && candor__is_digit((unsigned char)b[j + 1]));
        if (plain && !quantified && prefix_bounded(b, i)) {
            char *text = candor__strndup(b + in, j - 1 - in);
            if (!text)
                return 0;
            n = split_top(text, &alts);
            free(text);
            if (n >= 2) {
                open = i;
                close = j - 1;
                found = true;
            }
        }
        i = j - 1;
    }
    if (!found)
        return 0;
    const char *suffix = b + close + 1;
    char **v = calloc(n, sizeof *v);
    for (size_t k = 0; v && k < n; k++) {
        struct candor_buf t = CANDOR_BUF_INIT;
        candor__buf_append(&t, b, open);
        candor__buf_puts(&t, "(?:");
        candor__buf_puts(&t, alts[k]);
        candor__buf_putc(&t, ')');
        candor__buf_puts(&t, suffix);
        v[k] = candor__buf_steal(&t);
    }
    bool ok = v != NULL;
    for (size_t k = 0; k < n; k++) {
        ok = ok && v[k];
        free(alts[k]);
    }
    free(alts);
    if (!ok) {
        for (size_t k = 0; v && k < n; k++)
            free(v[k]);
        free(v);
        return 0;
    }
    *out = v;
    return n;
}

/* The units of PATTERN: its top-level alternatives, each with a group
 * distributed (see distribute()); 0 when it is one unit. */
static size_t unit_patterns(const char *pattern, char ***out)
{
    char **top = NULL;
    size_t nt = split_top(pattern, &top);
    if (nt == 0) {
        top = malloc(sizeof *top);
        if (!top || !(top[0] = candor__strdup(pattern))) {
            free(top);
            return 0;
        }
        nt = 1;
    }
    char **v = NULL;
    size_t n = 0;
    bool ok = true;
    for (size_t i = 0; i < nt; i++) {
        char **d = NULL;
        size_t nd = distribute(top[i], &d);
        size_t add = nd ? nd : 1;
        char **nv = ok ? realloc(v, (n + add) * sizeof *nv) : NULL;
        if (!nv) {
            ok = false;
            for (size_t k = 0; k < nd; k++)
                free(d[k]);
            free(d);
            free(top[i]);
            continue;
        }
        v = nv;
        if (nd) {
            for (size_t k = 0; k < nd; k++)
                v[n++] = d[k];
            free(d);
            free(top[i]);
        } else {
            v[n++] = top[i];
        }
    }
    free(top);
    if (!ok || n < 2) {
        for (size_t k = 0; k < n; k++)
            free(v[k]);
        free(v);
        return 0;
    }
    *out = v;
    return n;
}

static size_t width_alt(const char *p, size_t *i, size_t len, int depth);

static size_t wadd(size_t a, size_t b) { return a == UNBOUNDED || b == UNBOUNDED ? UNBOUNDED : a + b; }

/* The most bytes a match of the sequence at P+*I can span (4 bytes a
 * character), UNBOUNDED for *, +, {n,} or syntax not modelled. */
static size_t width_seq(const char *p, size_t *i, size_t len, int depth)
{
    size_t w = 0;
    while (*i < len && p[*i] != '|' && p[*i] != ')') {
        size_t atom = 4;
        char c = p[*i];
        if (c == '(') {
            (*i)++;
            bool zero = false;
            if (p[*i] == '?') {
                if (p[*i + 1] == ':' || p[*i + 1] == '>')
                    *i += 2;
                else if (p[*i + 1] == '=' || p[*i + 1] == '!')
                    *i += 2, zero = true;
                else if (p[*i + 1] == '<' && (p[*i + 2] == '=' || p[*i + 2] == '!'))
                    *i += 3, zero = true;
                else
                    return UNBOUNDED;
            }
            if (depth > 50)
                return UNBOUNDED;
            atom = width_alt(p, i, len, depth + 1);
            if (*i >= len || p[*i] != ')')
                return UNBOUNDED;
            (*i)++;
            if (zero)
                atom = 0;
        } else if (c == '[') {
            size_t j = *i + 1;
            if (p[j] == '^')
                j++;
            if (p[j] == ']')
                j++;
            while (j < len && p[j] != ']') {
                if (p[j] == '\\')
                    j++;
                j++;
            }
            if (j >= len)
                return UNBOUNDED;
            *i = j + 1;
        } else if (c == '\\') {
            char e = p[*i + 1];
            if (e == 'b' || e == 'B' || e == 'A' || e == 'z' || e == 'Z' || e == 'G')
                atom = 0;
            else if (e == 'R' || e == 'X' || e == 'Q' || e == 'x' || e == 'p' || e == 'P' ||
                     e == 'g' || e == 'k' || (e >= '0' && e <= '9'))
                return UNBOUNDED;
            *i += 2;
        } else if (c == '^' || c == '$') {
            atom = 0;
            (*i)++;
        } else if (c == '*' || c == '+' || c == '?') {
            return UNBOUNDED;
        } else {
            (*i)++;
            while (*i < len && ((unsigned char)p[*i] & 0xC0) == 0x80)
                (*i)++;
        }
        /* quantifier */
        if (*i < len) {
            char q = p[*i];
            if (q == '*' || q == '+')
                return UNBOUNDED;
            if (q == '?') {
                (*i)++;
            } else if (q == '{') {
                size_t j = *i + 1, lo = 0, hi = 0;
                bool digits = false, comma = false, hid = false;
                while (j < len && candor__is_digit((unsigned char)p[j]))
                    lo = lo * 10 + (size_t)(p[j++] - '0'), digits = true;
                if (j < len && p[j] == ',') {
                    comma = true;
                    j++;
                    while (j < len && candor__is_digit((unsigned char)p[j]))
                        hi = hi * 10 + (size_t)(p[j++] - '0'), hid = true;
                }
                if (digits && j < len && p[j] == '}') {
                    if (comma && !hid)
                        return UNBOUNDED;
                    size_t n = comma ? hi : lo;
                    if (n > 1000)
                        return UNBOUNDED;
                    atom = atom == UNBOUNDED ? UNBOUNDED : atom * n;
                    *i = j + 1;
                }
            }
            if (*i < len && (p[*i] == '?' || p[*i] == '+'))
                (*i)++;
        }
        w = wadd(w, atom);
        if (w == UNBOUNDED)
            return UNBOUNDED;
    }
    return w;
}

static size_t width_alt(const char *p, size_t *i, size_t len, int depth)
{
    size_t best = 0;
    for (;;) {
        size_t w = width_seq(p, i, len, depth);
        if (w == UNBOUNDED)
            return UNBOUNDED;
        if (w > best)
            best = w;
        if (*i < len && p[*i] == '|') {
            (*i)++;
            continue;
        }
        return best;
    }
}

/* The widest a match of PATTERN can be, in bytes, or UNBOUNDED. */
static size_t max_width(const char *pattern)
{
    size_t i = 0, len = strlen(pattern);
    size_t w = width_alt(pattern, &i, len, 0);
    return i == len ? w : UNBOUNDED;
}

static candor_status_t add_unit(struct candor_rules *r, pcre2_code *code, size_t rule, bool owned,
                                const char *pattern)
{
    if (r->n_units == r->cap_units) {
        size_t nc = r->cap_units ? r->cap_units * 2 : 64;
        struct unit *nv = realloc(r->units, nc * sizeof *nv);
        if (!nv) {
            if (owned)
                pcre2_code_free(code);
            return candor__fail(CANDOR_ENOMEM, "out of memory");
        }
        r->units = nv;
        r->cap_units = nc;
    }
    size_t u = r->n_units++;
    r->units[u] = (struct unit){ code, rule, false, owned, max_width(pattern), 0 };
    if (r->v[rule].field == F_HEADER)
        return CANDOR_OK;
    /* Every literal set the unit requires (at most MAX_CLAUSES); else the
     * one set of its alternatives. */
    struct litset *cl = NULL;
    size_t ncl = 0;
    rules_clauses(pattern, &cl, &ncl);
    if (ncl == 0) {
        char **lits = NULL;
        size_t nl = 0;
        candor__rules_literals(pattern, &lits, &nl);
        if (nl) {
            cl = calloc(1, sizeof *cl);
            if (!cl) {
                for (size_t i = 0; i < nl; i++)
                    free(lits[i]);
                free(lits);
                return candor__fail(CANDOR_ENOMEM, "out of memory");
            }
            cl[0] = (struct litset){ true, lits, nl };
            ncl = 1;
        }
    }
    candor_status_t st = CANDOR_OK;
    for (size_t k = 0; k < ncl; k++)
        for (size_t i = 0; i < cl[k].n && st == CANDOR_OK; i++)
            st = add_literal(r, cl[k].v[i], u << 3 | k);
    clauses_free(cl, ncl);
    r->units[u].prefiltered = ncl > 0;
    r->units[u].all = (uint8_t)((1u << ncl) - 1);
    return st;
}

/* The JIT stack of this thread (see the top of the file): one per thread,
 * remade when a context with another depth-limit is used on it. */
struct jit_slot {
    pcre2_jit_stack *stack;
    size_t bytes;
};

static pthread_key_t jit_key;
static pthread_once_t jit_once = PTHREAD_ONCE_INIT;
static bool jit_key_ok;

static void jit_slot_free(void *p)
{
    struct jit_slot *js = p;
    if (js)
        pcre2_jit_stack_free(js->stack);
    free(js);
}

static void jit_key_init(void)
{
    jit_key_ok = pthread_key_create(&jit_key, jit_slot_free) == 0;
}

/* Assign to MC a JIT stack of BYTES (0: none, no JIT). OWN: a stack of
 * the caller's (freed by it) instead of the thread's. */
static candor_status_t jit_stack_assign(pcre2_match_context *mc, size_t bytes,
                                        pcre2_jit_stack **own)
{
    if (!bytes)
        return CANDOR_OK;
    if (own) {
        *own = pcre2_jit_stack_create(bytes, bytes, NULL);
        if (!*own)
            return candor__fail(CANDOR_ENOMEM, "out of memory (JIT stack)");
        pcre2_jit_stack_assign(mc, NULL, *own);
        return CANDOR_OK;
    }
    pthread_once(&jit_once, jit_key_init);
    if (!jit_key_ok)
        return candor__fail(CANDOR_ENOMEM, "out of memory (JIT stack key)");
    struct jit_slot *js = pthread_getspecific(jit_key);
    if (!js || js->bytes != bytes) {
        pcre2_jit_stack *stack = pcre2_jit_stack_create(bytes, bytes, NULL);
        if (!stack)
            return candor__fail(CANDOR_ENOMEM, "out of memory (JIT stack)");
        if (!js) {
            js = calloc(1, sizeof *js);
            if (!js || pthread_setspecific(jit_key, js) != 0) {
                free(js);
                pcre2_jit_stack_free(stack);
                return candor__fail(CANDOR_ENOMEM, "out of memory (JIT stack)");
            }
        }
        pcre2_jit_stack_free(js->stack);
        js->stack = stack;
        js->bytes = bytes;
    }
    pcre2_jit_stack_assign(mc, NULL, js->stack);
    return CANDOR_OK;
}

/* Whether the pcre2_match() result RC means a limit stopped the match. */
static bool limit_hit(int rc)
{
    return rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
           rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT;
}

/* A short adversarial probe: a pattern that exhausts a limit on it
 * (catastrophic backtracking, or recursion deeper than depth-limit on a
 * few dozen bytes) is refused rather than merely bounded. Returns the
 * PCRE2 error it hit, or 0. */
static int probe(pcre2_code *code, pcre2_match_context *mc, uint32_t opts)
{
    static const char *const probes[] = {
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!",
        "a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a!",
        "1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111x",
    };
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md)
        return 0;
    int hit = 0;
    for (size_t i = 0; !hit && i < sizeof probes / sizeof probes[0]; i++) {
        int rc = pcre2_match(code, (PCRE2_SPTR)probes[i], strlen(probes[i]), 0, opts, md, mc);
        if (limit_hit(rc))
            hit = rc;
    }
    pcre2_match_data_free(md);
    return hit;
}

static candor_status_t load_rule(struct candor_ctx *ctx, struct candor_rules *r, xmlNodePtr node,
                                 pcre2_match_context *mc)
{
    const char *file = ctx->config_path;
    struct rule *ru = &r->v[r->n];
    memset(ru, 0, sizeof *ru);
    ru->intent = ru->urgency = ru->sentiment = ru->churn = -1;
    r->n++;

    char *v = candor__config_attr(node, "id");
    if (v) {
        ru->id = v;
    } else {
        struct candor_buf b = CANDOR_BUF_INIT;
        candor__buf_printf(&b, "line %ld", (long)xmlGetLineNo(node));
        ru->id = candor__buf_steal(&b);
    }
    if (!ru->id)
        return candor__fail(CANDOR_ENOMEM, "out of memory");

    v = candor__config_attr(node, "field");
    if (!v || strcmp(v, "message") == 0) {
        ru->field = F_MESSAGE;
    } else if (strcmp(v, "new_text") == 0) {
        ru->field = F_NEW_TEXT;
    } else if (strcmp(v, "subject") == 0) {
        ru->field = F_SUBJECT;
    } else if (strcmp(v, "text") == 0) {
        ru->field = F_TEXT;
    } else if (strncmp(v, "header:", 7) == 0 && v[7]) {
        ru->field = F_HEADER;
        ru->header = candor__strdup(v + 7);
    } else {
        candor_status_t st = candor__config_fail(file, node,
                "rule %s: field \"%.40s\" is not message, subject, new_text, text or header:NAME", ru->id, v);
        free(v);
        return st;
    }
    free(v);
    r->has_field[ru->field] = true;

    if (!candor__config_attr_double(node, "weight", 1.0, &ru->weight, file))
        return CANDOR_ECONFIG;
    if (ru->weight < -100 || ru->weight > 100)
        return candor__config_fail(file, node, "rule %s: weight must be within -100..100", ru->id);

    struct { const char *attr; const char *const *names; size_t n; int *dst; } targets[] = {
        { "intent", candor__intent_names, CANDOR_N_INTENTS, &ru->intent },
        { "urgency", candor__urgency_names, CANDOR_N_URGENCY, &ru->urgency },
        { "sentiment", candor__sentiment_names, CANDOR_N_SENTIMENT, &ru->sentiment },
    };
    struct candor_buf eff = CANDOR_BUF_INIT;
    for (size_t t = 0; t < 3; t++) {
        v = candor__config_attr(node, targets[t].attr);
        if (!v)
            continue;
        *targets[t].dst = candor__name_index(targets[t].names, targets[t].n, v);
        if (*targets[t].dst < 0) {
            candor_status_t st = candor__config_fail(file, node, "rule %s: unknown %s \"%.40s\"",
                                                     ru->id, targets[t].attr, v);
            free(v);
            candor__buf_free(&eff);
            return st;
        }
        candor__buf_printf(&eff, "%s%s=%s", eff.len ? " " : "", targets[t].attr, v);
        free(v);
    }
    v = candor__config_attr(node, "churn");
    if (v) {
        if (strcmp(v, "true") != 0) {
            free(v);
            candor__buf_free(&eff);
            return candor__config_fail(file, node, "rule %s: churn must be \"true\"", ru->id);
        }
        ru->churn = 1;
        candor__buf_printf(&eff, "%schurn", eff.len ? " " : "");
        free(v);
    }
    if (eff.len == 0) {
        candor__buf_free(&eff);
        return candor__config_fail(file, node,
                "rule %s: needs at least one of intent, urgency, sentiment, churn", ru->id);
    }
    candor__buf_printf(&eff, " %+g", ru->weight);
    ru->effect = candor__buf_steal(&eff);
    if (!ru->effect)
        return candor__fail(CANDOR_ENOMEM, "out of memory");

    bool caseless = true;
    v = candor__config_attr(node, "case");
    if (v) {
        caseless = strcmp(v, "sensitive") != 0;
        free(v);
    }
    char *pat = candor__config_text(node);
    if (!pat || !*pat) {
        free(pat);
        return candor__config_fail(file, node, "rule %s: empty pattern", ru->id);
    }
    if (strlen(pat) > MAX_PATTERN_BYTES) {
        free(pat);
        return candor__config_fail(file, node, "rule %s: pattern longer than %u bytes",
                                   ru->id, MAX_PATTERN_BYTES);
    }
    ru->code = rule_compile(pat, caseless);
    if (!ru->code) {
        char why[300];
        snprintf(why, sizeof why, "%s", candor_errmsg());
        free(pat);
        return candor__config_fail(file, node, "rule %s: %s", ru->id, why);
    }
    int hit = probe(ru->code, mc, r->match_opts);
    if (hit) {
        free(pat);
        if (hit == PCRE2_ERROR_MATCHLIMIT)
            return candor__config_fail(file, node,
                    "rule %s: pattern backtracks catastrophically (hits the match limit on a short probe)",
                    ru->id);
        return candor__config_fail(file, node,
                "rule %s: pattern recurses deeper than depth-limit %u on a short probe",
                ru->id, (unsigned)r->depth_limit);
    }
    size_t idx = r->n - 1;
    ru->first_unit = r->n_units;
    char **parts = NULL;
    size_t np = ru->field == F_HEADER ? 0 : unit_patterns(pat, &parts);
    pcre2_code **codes = np ? calloc(np, sizeof *codes) : NULL;
    bool split = np > 0 && codes;
    for (size_t i = 0; split && i < np; i++) {
        codes[i] = rule_compile(parts[i], caseless);
        if (!codes[i])
            split = false;
    }
    candor_status_t st = CANDOR_OK;
    if (split) {
        for (size_t i = 0; i < np; i++) {
            if (st == CANDOR_OK)
                st = add_unit(r, codes[i], idx, true, parts[i]);
            else
                pcre2_code_free(codes[i]);
            codes[i] = NULL;
        }
    } else {
        for (size_t i = 0; codes && i < np; i++)
            pcre2_code_free(codes[i]);
        st = add_unit(r, ru->code, idx, false, pat);
    }
    for (size_t i = 0; i < np; i++)
        free(parts[i]);
    free(parts);
    free(codes);
    free(pat);
    ru->n_units = r->n_units - ru->first_unit;
    if (st == CANDOR_OK)
        candor__clear_error();   /* a branch that did not compile alone */
    return st;
}

candor_status_t candor__rules_load(struct candor_ctx *ctx, struct _xmlNode *section)
{
    struct candor_rules *r = calloc(1, sizeof *r);
    if (!r)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    ctx->rules = r;
    const char *file = ctx->config_path;
    double d;
    if (!candor__config_attr_double(section, "max-match-bytes", DEFAULT_MAX_MATCH_BYTES, &d, file))
        return CANDOR_ECONFIG;
    if (d < 64 || d > 16 * 1024 * 1024)
        return candor__config_fail(file, section, "max-match-bytes must be within 64..16777216");
    r->max_match_bytes = (size_t)d;
    if (!candor__config_attr_double(section, "match-limit", DEFAULT_MATCH_LIMIT, &d, file))
        return CANDOR_ECONFIG;
    if (d < 100 || d > 100000000)
        return candor__config_fail(file, section, "match-limit must be within 100..100000000");
    r->match_limit = (uint32_t)d;
    if (!candor__config_attr_double(section, "depth-limit", DEFAULT_DEPTH_LIMIT, &d, file))
        return CANDOR_ECONFIG;
    if (d < 10 || d > 1000000)
        return candor__config_fail(file, section, "depth-limit must be within 10..1000000");
    r->depth_limit = (uint32_t)d;
    uint32_t jit = 0;
    if (r->depth_limit < JIT_MIN_DEPTH)
        r->match_opts = PCRE2_NO_JIT;
    else if (pcre2_config(PCRE2_CONFIG_JIT, &jit) >= 0 && jit)
        r->jit_stack_bytes = (size_t)r->depth_limit * JIT_BYTES_PER_DEPTH;

    size_t count = 0;
    for (xmlNodePtr n = candor__config_child(section, "rule"); n; n = candor__config_next(n))
        count++;
    r->v = calloc(count ? count : 1, sizeof *r->v);
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    if (!r->v || !mc) {
        pcre2_match_context_free(mc);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    pcre2_set_match_limit(mc, r->match_limit);
    pcre2_set_depth_limit(mc, r->depth_limit);
    pcre2_jit_stack *stack = NULL;   /* the probes' own: loading may run on any thread */
    candor_status_t st = jit_stack_assign(mc, r->jit_stack_bytes, &stack);
    for (xmlNodePtr n = candor__config_child(section, "rule"); n && st == CANDOR_OK;
         n = candor__config_next(n))
        st = load_rule(ctx, r, n, mc);
    pcre2_match_context_free(mc);
    pcre2_jit_stack_free(stack);
    if (st == CANDOR_OK)
        st = ac_build(r);
    return st;
}

void candor__rules_set_prefilter(struct candor_ctx *ctx, bool on)
{
    if (ctx && ctx->rules)
        ctx->rules->prefilter_off = !on;
}

size_t candor__rules_count(const struct candor_ctx *ctx)
{
    return ctx && ctx->rules ? ctx->rules->n : 0;
}

const char *candor__rule_id(const struct candor_ctx *ctx, size_t i)
{
    return i < candor__rules_count(ctx) ? ctx->rules->v[i].id : NULL;
}

const char *candor__rule_effect(const struct candor_ctx *ctx, size_t i)
{
    return i < candor__rules_count(ctx) ? ctx->rules->v[i].effect : NULL;
}

/* ------------------------------------------------------------------ */
/* Matching                                                            */
/* ------------------------------------------------------------------ */

void candor__rule_scores_free(struct candor_rule_scores *s)
{
    if (!s)
        return;
    free(s->hits);
    s->hits = NULL;
    s->n_hits = s->cap_hits = 0;
}

/* LEN cut to at most MAX bytes, at a UTF-8 character boundary. */
static size_t bounded(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

struct run {
    const struct candor_rules *r;
    pcre2_match_data *md;
    pcre2_match_context *mc;
    uint8_t *cand;             /* per unit: the bits of its literal sets seen */
    uint8_t *lit_seen;
    size_t *lit_first, *lit_last;   /* per literal seen: its first and last start */
    bool explain;
    struct candor_rule_scores *out;
};

static candor_status_t add_hit(struct run *x, size_t i)
{
    const struct rule *ru = &x->r->v[i];
    struct candor_rule_scores *o = x->out;
    if (ru->intent >= 0)
        o->intent[ru->intent] += ru->weight;
    if (ru->urgency >= 0)
        o->urgency[ru->urgency] += ru->weight;
    if (ru->sentiment >= 0)
        o->sentiment[ru->sentiment] += ru->weight;
    if (ru->churn > 0)
        o->churn += ru->weight;
    if (x->explain) {
        if (o->n_hits == o->cap_hits) {
            size_t nc = o->cap_hits ? o->cap_hits * 2 : 16;
            size_t *nv = realloc(o->hits, nc * sizeof *nv);
            if (!nv)
                return candor__fail(CANDOR_ENOMEM, "out of memory");
            o->hits = nv;
            o->cap_hits = nc;
        }
        o->hits[o->n_hits++] = i;
    }
    return CANDOR_OK;
}

/* Match CODE on LEN bytes at S, from FROM, with no match starting after
 * LIMIT (SIZE_MAX: none). */
static candor_status_t run_rule(struct run *x, size_t i, pcre2_code *code, const char *s, size_t len,
                                size_t from, size_t limit, bool *hit)
{
    x->out->n_run++;
    pcre2_set_offset_limit(x->mc, limit == SIZE_MAX ? PCRE2_UNSET : (PCRE2_SIZE)limit);
    int rc = pcre2_match(code, (PCRE2_SPTR)s, len, from, x->r->match_opts, x->md, x->mc);
    if (rc >= 0) {
        *hit = true;
        return add_hit(x, i);
    }
    if (limit_hit(rc))
        x->out->n_limited++;
    return CANDOR_OK;
}

/* One prefilter pass over FOLDED, then the candidate rules of FIELD on
 * LEN bytes at S. */
static candor_status_t run_field_len(struct run *x, enum field f, const char *s, size_t len,
                                     const char *folded, bool aligned)
{
    const struct candor_rules *r = x->r;
    char *own = NULL;
    if (!folded) {
        own = candor__utf8_fold(s, len);
        if (!own)
            return candor__fail(CANDOR_ENOMEM, "out of memory");
        folded = own;
    }
    size_t flen = strlen(folded);
    size_t fmax = len + len / 4 + 16;
    if (flen > fmax)
        flen = fmax;
    memset(x->lit_seen, 0, r->n_lits);
    memset(x->cand, 0, r->n_units);
    /* Offsets in the folded text are offsets in S when folding kept the
     * length (always for ASCII; ALIGNED: the caller knows it did for each
     * piece of S): then the literals' offsets bound where a match starts. */
    bool same = (aligned || own) && (flen == len || strlen(folded) == len);
    size_t K = r->n_cls;
    const unsigned char *p = (const unsigned char *)folded;
    size_t st = 0;
    for (size_t j = 0; j < flen; j++) {
        if (r->walk16) {
            unsigned e = r->walk16[st * K + r->cls[p[j]]];
            st = e & (AC_EMIT16 - 1);
            if (!(e & AC_EMIT16))
                continue;
        } else {
            uint32_t e = r->walk32[st * K + r->cls[p[j]]];
            st = e & (AC_EMIT32 - 1);
            if (!(e & AC_EMIT32))
                continue;
        }
        for (int32_t t = r->out[st] >= 0 ? (int32_t)st : r->dict[st]; t > 0; t = r->dict[t]) {
            int32_t l = r->out[t];
            size_t at = j + 1 - r->lit_len[l];
            x->lit_last[l] = at;
            if (x->lit_seen[l])
                continue;
            x->lit_seen[l] = 1;
            x->lit_first[l] = at;
            for (uint32_t k = r->lit_start[l]; k < r->lit_start[l + 1]; k++) {
                uint32_t uk = r->lit_units[k];
                x->cand[uk >> 3] |= (uint8_t)(1u << (uk & 7));
            }
        }
    }
    free(own);
    candor_status_t rc = CANDOR_OK;
    /* Rules in configuration order, so explain lists them that way; a rule
     * counts once, at its first matching alternative. */
    for (size_t i = 0; i < r->n && rc == CANDOR_OK; i++) {
        const struct rule *ru = &r->v[i];
        if (ru->field != f)
            continue;
        bool hit = false;
        if (r->prefilter_off) {   /* tests: the whole pattern, no units */
            rc = run_rule(x, i, ru->code, s, len, 0, SIZE_MAX, &hit);
            continue;
        }
        for (size_t u = ru->first_unit; u < ru->first_unit + ru->n_units && !hit && rc == CANDOR_OK; u++) {
            const struct unit *un = &r->units[u];
            bool pf = un->prefiltered;
            if (pf && x->cand[u] != un->all)
                continue;
            /* Every match holds a literal of each set: it starts at or
             * before the last start of the set's literals, and (a bounded
             * unit) at most its width before the first. */
            size_t from = 0, first = 0, limit = SIZE_MAX;
            for (size_t k = 0; pf && same && k < MAX_CLAUSES; k++) {
                if (!(un->all >> k & 1))
                    continue;
                size_t us = u << 3 | k, lo = SIZE_MAX, hi = 0;
                for (size_t m = r->set_start[us]; m < r->set_start[us + 1]; m++) {
                    uint32_t lit = r->set_lits[m];
                    if (!x->lit_seen[lit])
                        continue;
                    if (x->lit_first[lit] < lo)
                        lo = x->lit_first[lit];
                    if (x->lit_last[lit] > hi)
                        hi = x->lit_last[lit];
                }
                if (lo > first)
                    first = lo;
                if (hi < limit)
                    limit = hi;
            }
            if (pf && same && un->width != UNBOUNDED && first > un->width) {
                from = first - un->width;
                while (from > 0 && ((unsigned char)s[from] & 0xC0) == 0x80)
                    from--;
            }
            if (limit < from)
                continue;   /* the sets' literals lie too far apart */
            rc = run_rule(x, i, un->code, s, len, from, limit, &hit);
        }
    }
    return rc;
}

static candor_status_t run_field(struct run *x, enum field f, const char *s, const char *folded)
{
    const struct candor_rules *r = x->r;
    if (!r->has_field[f])
        return CANDOR_OK;
    if (!s)
        s = "";
    return run_field_len(x, f, s, bounded(s, strlen(s), r->max_match_bytes), folded, true);
}

candor_status_t candor__rules_apply(const struct candor_ctx *ctx, const struct candor_rule_input *in,
                                    bool explain, struct candor_rule_scores *out)
{
    const struct candor_rules *r = ctx ? ctx->rules : NULL;
    if (!r || r->n == 0)
        return CANDOR_OK;
    struct run x = { .r = r, .explain = explain, .out = out };
    x.md = pcre2_match_data_create(1, NULL);
    x.mc = pcre2_match_context_create(NULL);
    x.cand = calloc(r->n_units + r->n_lits + 1, 1);
    x.lit_first = malloc((2 * r->n_lits + 1) * sizeof *x.lit_first);   /* read where seen */
    candor_status_t st = CANDOR_OK;
    if (!x.md || !x.mc || !x.cand || !x.lit_first) {
        st = candor__fail(CANDOR_ENOMEM, "out of memory");
        goto done;
    }
    x.lit_seen = x.cand + r->n_units;
    x.lit_last = x.lit_first + r->n_lits;
    pcre2_set_match_limit(x.mc, r->match_limit);
    pcre2_set_depth_limit(x.mc, r->depth_limit);
    st = jit_stack_assign(x.mc, r->jit_stack_bytes, NULL);

    if (st == CANDOR_OK && r->has_field[F_MESSAGE]) {
        /* "message": the subject, a blank line, the new text */
        struct candor_buf m = CANDOR_BUF_INIT, fm = CANDOR_BUF_INIT;
        const char *subj = in->subject ? in->subject : "";
        const char *body = in->new_text ? in->new_text : "";
        candor__buf_append(&m, subj, bounded(subj, strlen(subj), 1024));
        candor__buf_puts(&m, "\n\n");
        candor__buf_append(&m, body, bounded(body, strlen(body), r->max_match_bytes));
        size_t msub = bounded(subj, strlen(subj), 1024);   /* the subject's bytes in M */
        bool aligned = false;
        if (in->folded_subject && in->folded_new_text) {
            const char *fs = in->folded_subject, *fb = in->folded_new_text;
            candor__buf_append(&fm, fs, bounded(fs, strlen(fs), 1024));
            aligned = fm.len == msub;   /* and then the whole length decides */
            candor__buf_puts(&fm, "\n\n");
            candor__buf_append(&fm, fb, bounded(fb, strlen(fb), r->max_match_bytes));
        }
        if (m.oom || fm.oom || !m.data) {
            st = candor__fail(CANDOR_ENOMEM, "out of memory");
        } else {
            st = run_field_len(&x, F_MESSAGE, m.data, m.len, fm.data, aligned);
        }
        candor__buf_free(&m);
        candor__buf_free(&fm);
    }
    if (st == CANDOR_OK)
        st = run_field(&x, F_SUBJECT, in->subject, in->folded_subject);
    if (st == CANDOR_OK)
        st = run_field(&x, F_NEW_TEXT, in->new_text, in->folded_new_text);
    if (st == CANDOR_OK)
        st = run_field(&x, F_TEXT, in->text, in->folded_text);
    for (size_t i = 0; st == CANDOR_OK && in->msg && r->has_field[F_HEADER] && i < r->n; i++) {
        const struct rule *ru = &r->v[i];
        if (ru->field != F_HEADER)
            continue;
        for (size_t k = 0; k < MAX_HEADER_VALUES; k++) {
            const char *hv = candor__message_header(in->msg, ru->header, k);
            if (!hv)
                break;
            bool hit = false;
            st = run_rule(&x, i, ru->code, hv, bounded(hv, strlen(hv), r->max_match_bytes), 0,
                          SIZE_MAX, &hit);
            if (hit)
                break;
        }
    }
done:
    pcre2_match_data_free(x.md);
    pcre2_match_context_free(x.mc);
    free(x.cand);
    free(x.lit_first);
    return st;
}
