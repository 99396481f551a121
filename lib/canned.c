/*
 * canned.c — the canned-reply check (issue 5): does a support reply
 * answer the customer, or is it a canned paste?
 *
 * Inputs: the customer's parsed mail, the parsed reply, and (read only)
 * the history of sent replies in the store. The reply's OWN text is what
 * counts: quotations (">" lines, "On ... wrote:" attributions in four
 * languages, Outlook "Original Message" and header blocks, which quote
 * without ">"), the "-- " signature, the greeting and the sign-off are set
 * apart before anything is judged. Findings (CONTRACT.md):
 *   template_reuse  paragraphs that also stand in replies to >= N other
 *                   recipients (fingerprint.c, store-history.c); a
 *                   paragraph every reply of the business carries (footer)
 *                   and single standard lines do not count
 *   unresponsive    the customer's questions/requests and specifics
 *                   (numbers, amounts, ids, names of things) left untouched
 *   stock_phrase    configured stock phrases (per language)
 *   impersonal      generic greeting although the name is known; team-only
 *                   sign-off
 *   deflection      links, phone lines, "visit/call/contact" pointers
 *                   standing in for an answer
 *   no_empathy      a complaint or harm, and no apology or acknowledgement
 *   no_next_step    a request or problem, and no action reported nor
 *                   commitment with a time
 *   repeat_send     >= N replies to the same address in the window before
 * Score: 1 - prod(1 - weight) over the findings; verdict by thresholds.
 * All word lists and numbers come from the <canned> section of the
 * configuration. Limits: texts are cut at CANNED_MAX_TEXT bytes, word
 * lists at CANNED_MAX_WORDS words, paragraphs at CANNED_MAX_PARAS.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include <libxml/tree.h>
#include "ctx.h"
#include "canned.h"
#include "fingerprint.h"
#include "message.h"
#include "store.h"
#include "triage.h"

#define CANNED_MAX_TEXT (256u * 1024u)
#define CANNED_MAX_WORDS 20000u
#define CANNED_MAX_PARAS 200u
#define CANNED_MAX_LINES 20000u
#define CANNED_MAX_PHRASE 16u

/* ------------------------------------------------------------------ */
/* Configuration                                                       */
/* ------------------------------------------------------------------ */

enum kind {
    K_TEMPLATE, K_UNRESPONSIVE, K_STOCK, K_IMPERSONAL, K_DEFLECTION, K_NO_EMPATHY,
    K_NO_NEXT_STEP, K_REPEAT, K_COUNT
};
static const char *const kind_names[K_COUNT] = {
    "template_reuse", "unresponsive", "stock_phrase", "impersonal", "deflection",
    "no_empathy", "no_next_step", "repeat_send",
};

/* Word lists of the configuration, one per element name. */
enum list {
    L_STOCK, L_GENERIC_GREETING, L_GREETING, L_CLOSING, L_TEAM, L_DEFLECT, L_APOLOGY,
    L_ACKNOWLEDGE, L_PROBLEM, L_REQUEST, L_ACTION, L_NONACTION, L_FUTURE, L_TIME,
    L_GENERIC_WORD, L_CONDITION, L_ANSWER, L_QUANTITY, L_INQUIRY, L_SYNONYM, L_COUNT
};
static const char *const list_names[L_COUNT] = {
    "stock", "generic-greeting", "greeting", "closing", "team", "deflect", "apology",
    "acknowledge", "problem", "request", "action", "nonaction", "future", "time",
    "generic-word", "condition", "answer", "quantity", "inquiry", "synonyms",
};

/* A phrase: folded tokens. "*" alone is a gap of 0..3 words, "x*" a
 * prefix, "*x" a suffix, "#" any word with a digit. */
struct phrase {
    char *text;                      /* as configured, for the evidence */
    char *tok[CANNED_MAX_PHRASE];
    size_t n;
};

struct plist {
    struct phrase *v;
    size_t n;
    /* index: the phrases whose first word starts with byte B are
     * idx[start[B] .. start[B + 1]); bucket 256 holds the phrases that
     * open with a marker ("*", "?", "^", "$", "#", "*suffix") */
    size_t *idx;
    size_t start[258];
};

struct candor_canned_conf {
    double review, canned;           /* verdict thresholds on the score */
    double weight[K_COUNT];
    double stock_each;               /* stock_phrase weight per phrase, up to weight */
    double tpl_similarity;           /* a paragraph matches a cluster at this */
    double tpl_join;                 /* recording: joins a cluster at this */
    int tpl_min_tokens;              /* shorter paragraphs are never templates */
    int tpl_recipients;              /* other recipients needed */
    double tpl_share;                /* of the body's tokens in matched paragraphs */
    int tpl_body_tokens;             /* matched tokens needed in all */
    double footer_share;             /* a cluster in this share of a business's replies is a footer */
    int footer_min_replies;
    int64_t repeat_window;
    int repeat_count;
    double cover;                    /* an ask is addressed when this share of its words is */
    double overlap;                  /* below this share of the customer's words nothing is engaged */
    double tpl_unresponsive;         /* a reply this much template answers no one */
    double full_overlap;             /* every ask covered and this share of the words: answered */
    int terse_words;                 /* a reply of facts this short ... */
    double terse_overlap;            /* ... using this share of the customer's words answers */
    struct plist lists[L_COUNT];
};

static void phrase_free(struct phrase *p)
{
    free(p->text);
    for (size_t i = 0; i < p->n; i++)
        free(p->tok[i]);
}

void candor__canned_conf_free(struct candor_canned_conf *conf)
{
    if (!conf)
        return;
    for (int l = 0; l < L_COUNT; l++) {
        for (size_t i = 0; i < conf->lists[l].n; i++)
            phrase_free(&conf->lists[l].v[i]);
        free(conf->lists[l].v);
        free(conf->lists[l].idx);
    }
    free(conf);
}

/* Fold TEXT into phrase tokens, keeping "*" and "#" markers. */
static bool phrase_parse(struct phrase *p, const char *text)
{
    memset(p, 0, sizeof *p);
    p->text = candor__strdup(text);
    if (!p->text)
        return false;
    const char *s = text;
    while (*s && p->n < CANNED_MAX_PHRASE) {
        while (*s && (candor__is_space((unsigned char)*s)))
            s++;
        if (!*s)
            break;
        const char *e = s;
        while (*e && !candor__is_space((unsigned char)*e))
            e++;
        /* a configured word may hold punctuation ("sir/madam", "don't"):
         * split it as the text splitter would, keeping * and # markers */
        if ((e - s == 1 && (*s == '*' || *s == '#' || *s == '?' || *s == '^' || *s == '$'))) {
            p->tok[p->n++] = candor__strndup(s, 1);
        } else {
            bool pre = *s == '*', post = e[-1] == '*';
            const char *a = s + pre, *b = e - post;
            struct candor_words w = { 0 };
            if (b > a && !candor__words_split(&w, a, (size_t)(b - a), CANNED_MAX_PHRASE)) {
                candor__words_free(&w);
                return false;
            }
            for (size_t i = 0; i < w.n && p->n < CANNED_MAX_PHRASE; i++) {
                struct candor_buf t = CANDOR_BUF_INIT;
                if (pre && i == 0)
                    candor__buf_putc(&t, '*');
                candor__buf_puts(&t, candor__word_fold(&w, i));
                if (post && i + 1 == w.n)
                    candor__buf_putc(&t, '*');
                p->tok[p->n++] = candor__buf_steal(&t);
            }
            candor__words_free(&w);
        }
        s = e;
    }
    for (size_t i = 0; i < p->n; i++)
        if (!p->tok[i])
            return false;
    return p->n > 0;
}

static bool plist_add(struct plist *l, const char *text)
{
    struct phrase *v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v)
        return false;
    l->v = v;
    if (!phrase_parse(&l->v[l->n], text)) {
        phrase_free(&l->v[l->n]);
        return false;
    }
    l->n++;
    return true;
}

static size_t phrase_bucket(const struct phrase *p)
{
    unsigned char b = (unsigned char)p->tok[0][0];
    return (b == '*' || b == '?' || b == '^' || b == '$' || b == '#') ? 256 : b;
}

static bool plist_index(struct plist *l)
{
    free(l->idx);
    l->idx = malloc((l->n + 1) * sizeof *l->idx);
    if (!l->idx)
        return false;
    size_t count[257] = { 0 };
    for (size_t k = 0; k < l->n; k++)
        count[phrase_bucket(&l->v[k])]++;
    l->start[0] = 0;
    for (size_t b = 0; b < 257; b++)
        l->start[b + 1] = l->start[b] + count[b];
    size_t fill[257];
    memcpy(fill, l->start, sizeof fill);
    for (size_t k = 0; k < l->n; k++)
        l->idx[fill[phrase_bucket(&l->v[k])]++] = k;
    return true;
}

static bool attr_num(xmlNodePtr n, const char *name, double *v, const char *file)
{
    return candor__config_attr_double(n, name, *v, v, file);
}

candor_status_t candor__canned_load(struct candor_ctx *ctx, struct _xmlNode *section)
{
    struct candor_canned_conf *c = calloc(1, sizeof *c);
    if (!c)
        return candor__fail(CANDOR_ENOMEM, "canned: out of memory");
    c->review = 0.45;
    c->canned = 0.7;
    static const double w[K_COUNT] = { 0.4, 0.5, 0.2, 0.15, 0.3, 0.2, 0.25, 0.35 };
    memcpy(c->weight, w, sizeof w);
    c->stock_each = 0.08;
    c->tpl_similarity = 0.5;
    c->tpl_join = 0.75;
    c->tpl_min_tokens = 8;
    c->tpl_recipients = 3;
    c->tpl_share = 0.4;
    c->tpl_body_tokens = 15;
    c->footer_share = 0.8;
    c->footer_min_replies = 5;
    c->repeat_window = 12 * 3600;
    c->repeat_count = 3;
    c->cover = 0.25;
    c->overlap = 0.2;
    c->tpl_unresponsive = 0.6;
    c->terse_words = 60;
    c->full_overlap = 0.3;
    c->terse_overlap = 0.1;
    const char *file = ctx->config_path ? ctx->config_path : "config";
    candor_status_t st = CANDOR_OK;
    for (xmlNodePtr n = section ? section->children : NULL; n && st == CANDOR_OK; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        const char *name = (const char *)n->name;
        if (strcmp(name, "verdict") == 0) {
            if (!attr_num(n, "review", &c->review, file) || !attr_num(n, "canned", &c->canned, file))
                st = CANDOR_ECONFIG;
            else if (!(c->review > 0 && c->review <= c->canned && c->canned <= 1))
                st = candor__config_fail(file, n, "canned: need 0 < review <= canned <= 1");
        } else if (strcmp(name, "weight") == 0) {
            char *k = candor__config_attr(n, "kind");
            int found = -1;
            for (int i = 0; k && i < K_COUNT; i++)
                if (strcmp(k, kind_names[i]) == 0)
                    found = i;
            free(k);
            if (found < 0)
                st = candor__config_fail(file, n, "canned: unknown finding kind");
            else if (!attr_num(n, "value", &c->weight[found], file))
                st = CANDOR_ECONFIG;
            else if (found == K_STOCK && !attr_num(n, "each", &c->stock_each, file))
                st = CANDOR_ECONFIG;
        } else if (strcmp(name, "template") == 0) {
            double mt = c->tpl_min_tokens, rc = c->tpl_recipients, bt = c->tpl_body_tokens,
                   fm = c->footer_min_replies;
            if (!attr_num(n, "similarity", &c->tpl_similarity, file)
                || !attr_num(n, "join", &c->tpl_join, file)
                || !attr_num(n, "min-tokens", &mt, file)
                || !attr_num(n, "recipients", &rc, file)
                || !attr_num(n, "share", &c->tpl_share, file)
                || !attr_num(n, "body-tokens", &bt, file)
                || !attr_num(n, "footer-share", &c->footer_share, file)
                || !attr_num(n, "footer-min-replies", &fm, file))
                st = CANDOR_ECONFIG;
            c->tpl_min_tokens = (int)mt;
            c->tpl_recipients = (int)rc;
            c->tpl_body_tokens = (int)bt;
            c->footer_min_replies = (int)fm;
        } else if (strcmp(name, "repeat") == 0) {
            double win = (double)c->repeat_window, cnt = c->repeat_count;
            if (!attr_num(n, "window", &win, file) || !attr_num(n, "count", &cnt, file))
                st = CANDOR_ECONFIG;
            c->repeat_window = (int64_t)win;
            c->repeat_count = (int)cnt;
        } else if (strcmp(name, "responsive") == 0) {
            double tw = c->terse_words;
            if (!attr_num(n, "cover", &c->cover, file) || !attr_num(n, "overlap", &c->overlap, file)
                || !attr_num(n, "template", &c->tpl_unresponsive, file)
                || !attr_num(n, "terse-words", &tw, file)
                || !attr_num(n, "terse-overlap", &c->terse_overlap, file)
                || !attr_num(n, "full-overlap", &c->full_overlap, file))
                st = CANDOR_ECONFIG;
            c->terse_words = (int)tw;
        } else {
            int l;
            for (l = 0; l < L_COUNT; l++)
                if (strcmp(name, list_names[l]) == 0)
                    break;
            if (l == L_COUNT) {
                st = candor__config_fail(file, n, "canned: unknown element <%s>", name);
                break;
            }
            char *t = candor__config_text(n);
            if (!t || !*t) {
                free(t);
                st = candor__config_fail(file, n, "canned: empty <%s>", name);
                break;
            }
            /* one element may hold several phrases separated by "|" */
            char *save = NULL;
            for (char *p = strtok_r(t, "|", &save); p && st == CANDOR_OK; p = strtok_r(NULL, "|", &save)) {
                while (candor__is_space((unsigned char)*p))
                    p++;
                if (*p && !plist_add(&c->lists[l], p))
                    st = candor__config_fail(file, n, "canned: bad phrase in <%s>", name);
            }
            free(t);
        }
    }
    for (int l = 0; l < L_COUNT && st == CANDOR_OK; l++)
        if (!plist_index(&c->lists[l]))
            st = candor__fail(CANDOR_ENOMEM, "canned: out of memory");
    if (st != CANDOR_OK) {
        candor__canned_conf_free(c);
        return st;
    }
    candor__canned_conf_free(ctx->canned);
    ctx->canned = c;
    return CANDOR_OK;
}

/* ------------------------------------------------------------------ */
/* Own text: quotation and signature removed                           */
/* ------------------------------------------------------------------ */

struct line {
    const char *s;
    size_t len;
};

static size_t split_lines(const char *text, struct line **out)
{
    size_t n = 0, cap = 0;
    struct line *v = NULL;
    const char *p = text;
    while (*p && n < CANNED_MAX_LINES) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        size_t l = len;
        while (l && (p[l - 1] == '\r'))
            l--;
        if (!candor__array_grow(&v, &cap, n, sizeof *v, 64)) {
            free(v);
            *out = NULL;
            return 0;
        }
        v[n].s = p;
        v[n].len = l;
        n++;
        p += len + (e ? 1 : 0);
        if (!e)
            break;
    }
    *out = v;
    return n;
}

static bool line_blank(const struct line *l)
{
    for (size_t i = 0; i < l->len; i++)
        if (!candor__is_space((unsigned char)l->s[i]))
            return false;
    return true;
}

/* Line with leading space skipped; *LEN its length. */
static const char *line_trim(const struct line *l, size_t *len)
{
    size_t a = 0, b = l->len;
    while (a < b && candor__is_space((unsigned char)l->s[a]))
        a++;
    while (b > a && candor__is_space((unsigned char)l->s[b - 1]))
        b--;
    *len = b - a;
    return l->s + a;
}

static bool starts_ci(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && candor__strncasecmp(s, prefix, n) == 0;
}

static bool contains_ci(const char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (candor__strncasecmp(s + i, needle, n) == 0)
            return true;
    return false;
}

/* "-----Original Message-----" and its translations, "_____" dividers. */
static bool is_outlook_separator(const char *s, size_t len)
{
    if (len >= 5 && s[0] == '-' && s[1] == '-' && s[2] == '-')
        return contains_ci(s, len, "original") || contains_ci(s, len, "ursprüngliche")
               || contains_ci(s, len, "origine") || contains_ci(s, len, "mensaje")
               || contains_ci(s, len, "forwarded") || contains_ci(s, len, "weitergeleitet");
    if (len >= 10) {
        size_t u = 0;
        while (u < len && s[u] == '_')
            u++;
        return u == len;
    }
    return false;
}

static bool is_header_line(const char *s, size_t len)
{
    static const char *const names[] = { "from:", "sent:", "to:", "subject:", "date:", "cc:",
        "de :", "de:", "envoyé :", "envoyé:", "à :", "objet :", "von:", "gesendet:", "an:",
        "betreff:", "enviado:", "para:", "asunto:", "fecha:" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (starts_ci(s, len, names[i]))
            return true;
    return false;
}

/* A "From:" line followed within a few lines by other header lines. */
static bool is_header_block(const struct line *v, size_t n, size_t i)
{
    size_t len;
    const char *s = line_trim(&v[i], &len);
    if (!(starts_ci(s, len, "from:") || starts_ci(s, len, "de:") || starts_ci(s, len, "de :")
          || starts_ci(s, len, "von:")))
        return false;
    int more = 0;
    for (size_t j = i + 1; j < n && j < i + 5; j++) {
        s = line_trim(&v[j], &len);
        if (is_header_line(s, len))
            more++;
    }
    return more >= 2;
}

/* "On <date>, <name> wrote:" and its French/German/Spanish forms, over up
 * to three lines starting at I. Returns the number of lines, 0 if none. */
static size_t attribution_lines(const struct line *v, size_t n, size_t i)
{
    size_t len;
    const char *s = line_trim(&v[i], &len);
    if (!(starts_ci(s, len, "on ") || starts_ci(s, len, "le ") || starts_ci(s, len, "am ")
          || starts_ci(s, len, "el ") || starts_ci(s, len, "il ")))
        return 0;
    for (size_t j = i; j < n && j < i + 3; j++) {
        const char *t = line_trim(&v[j], &len);
        if (len && t[len - 1] == ':'
            && (contains_ci(t, len, "wrote") || contains_ci(t, len, "écrit")
                || contains_ci(t, len, "schrieb") || contains_ci(t, len, "escribió")
                || contains_ci(t, len, "scritto")))
            return j - i + 1;
        if (j > i && line_blank(&v[j]))
            break;
    }
    return 0;
}

char *candor__canned_own_text(const char *text)
{
    if (!text)
        return candor__strdup("");
    struct line *v;
    size_t n = split_lines(text, &v);
    if (!v && *text)
        return NULL;
    struct candor_buf b = CANDOR_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *s = line_trim(&v[i], &len);
        if (is_outlook_separator(s, len) || is_header_block(v, n, i))
            break;                                   /* the unquoted original follows */
        if (v[i].len == 3 && memcmp(v[i].s, "-- ", 3) == 0)
            break;                                   /* RFC 3676 signature separator */
        if (len == 2 && memcmp(s, "--", 2) == 0)
            break;
        size_t a = attribution_lines(v, n, i);
        if (a) {
            i += a - 1;
            continue;
        }
        if (len && s[0] == '>')
            continue;
        if (starts_ci(s, len, "sent from my ") || starts_ci(s, len, "envoyé de mon")
            || starts_ci(s, len, "von meinem"))
            continue;
        candor__buf_append(&b, v[i].s, v[i].len);
        candor__buf_putc(&b, '\n');
    }
    free(v);
    if (b.oom) {
        candor__buf_free(&b);
        return NULL;
    }
    return candor__buf_steal(&b);
}

/* ------------------------------------------------------------------ */
/* Words and phrases                                                   */
/* ------------------------------------------------------------------ */

struct text {
    const char *s;                   /* the text the words index */
    struct candor_words w;
};

static bool text_init(struct text *t, const char *s)
{
    memset(t, 0, sizeof *t);
    t->s = s;
    size_t len = strlen(s);
    if (len > CANNED_MAX_TEXT)
        len = CANNED_MAX_TEXT;
    return candor__words_split(&t->w, s, len, CANNED_MAX_WORDS);
}

static void text_free(struct text *t) { candor__words_free(&t->w); }

static bool tok_match(const char *pat, const char *word, bool digits)
{
    size_t pl = strlen(pat), wl = strlen(word);
    if (pl == 1 && pat[0] == '#')
        return digits;
    if (pl > 1 && pat[pl - 1] == '*')
        return wl >= pl - 1 && strncmp(pat, word, pl - 1) == 0;
    if (pl > 1 && pat[0] == '*')
        return wl >= pl - 1 && strcmp(word + wl - (pl - 1), pat + 1) == 0;
    return strcmp(pat, word) == 0;
}

/* Does phrase P match at word I (words [FROM, TO))? *END: the word after. */
static bool phrase_at_from(const struct phrase *p, size_t pi, const struct candor_words *w,
                           size_t i, size_t w_from, size_t to, size_t *end);
static bool phrase_at(const struct phrase *p, size_t pi, const struct candor_words *w, size_t i,
                      size_t to, size_t *end)
{
    return phrase_at_from(p, pi, w, i, i, to, end);
}

static bool phrase_at_from(const struct phrase *p, size_t pi, const struct candor_words *w,
                           size_t i, size_t w_from, size_t to, size_t *end)
{
    if (pi == p->n) {
        *end = i;
        return true;
    }
    if (strcmp(p->tok[pi], "*") == 0 || strcmp(p->tok[pi], "?") == 0) {
        size_t max = p->tok[pi][0] == '*' ? 3 : 1;
        for (size_t gap = 0; gap <= max && i + gap <= to; gap++)
            if (phrase_at_from(p, pi + 1, w, i + gap, w_from, to, end))
                return true;
        return false;
    }
    if (strcmp(p->tok[pi], "$") == 0) {  /* the previous word closes a clause */
        if (i == to)
            return phrase_at_from(p, pi + 1, w, i, w_from, to, end);
        if (i == 0 || !w->src)
            return false;
        size_t k = w->v[i - 1].off + w->v[i - 1].len;
        while (k < w->src_len && (w->src[k] == ' ' || w->src[k] == '\t'))
            k++;
        if (k >= w->src_len || !strchr(",.-!:;\n", w->src[k]) || w->src[k] == '\0')
            return false;
        return phrase_at_from(p, pi + 1, w, i, w_from, to, end);
    }
    if (strcmp(p->tok[pi], "^") == 0)   /* only at the start of the span */
        return i == w_from && phrase_at_from(p, pi + 1, w, i, w_from, to, end);
    if (i >= to || !tok_match(p->tok[pi], candor__word_fold(w, i), w->v[i].digits))
        return false;
    return phrase_at_from(p, pi + 1, w, i + 1, w_from, to, end);
}

/* First match of any phrase of L in words [FROM, TO): index of the
 * phrase, -1 if none; *AT and *END the words matched. */
static int plist_find(const struct plist *l, const struct candor_words *w, size_t from, size_t to,
                      size_t *at, size_t *end)
{
    if (!l->idx)
        return -1;
    for (size_t i = from; i < to; i++) {
        unsigned char b = (unsigned char)candor__word_fold(w, i)[0];
        for (int pass = 0; pass < 2; pass++) {
            size_t bucket = pass ? 256 : b;
            for (size_t j = l->start[bucket]; j < l->start[bucket + 1]; j++) {
                size_t k = l->idx[j];
                if (phrase_at_from(&l->v[k], 0, w, i, from, to, end)) {
                    if (at)
                        *at = i;
                    return (int)k;
                }
            }
        }
    }
    return -1;
}

static bool plist_any(const struct plist *l, const struct candor_words *w, size_t from, size_t to)
{
    size_t at, end;
    return plist_find(l, w, from, to, &at, &end) >= 0;
}

/* A sentence: words [a, b) and the bytes [s, e) of the text. */
struct sent {
    size_t a, b;
    size_t s, e;
    bool question;
};

/* Split into sentences at . ! ? and at blank lines/line ends that close a
 * short line (greetings, list items). */
static size_t sentences(const struct text *t, struct sent **out)
{
    size_t n = 0, cap = 0;
    struct sent *v = NULL;
    size_t wi = 0, start = 0;
    const char *s = t->s;
    size_t len = strlen(s);
    if (len > CANNED_MAX_TEXT)
        len = CANNED_MAX_TEXT;
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? s[i] : '\0';
        bool end = c == '\0' || c == '?' || c == '!'
                   || (c == '.' && (i + 1 >= len || candor__is_space((unsigned char)s[i + 1])))
                   || (c == '\n' && i + 1 < len && (s[i + 1] == '\n' || s[i + 1] == '\r'))
                   || (c == '\n' && i + 1 < len && (s[i + 1] == '-' || s[i + 1] == '*'
                                                    || candor__is_digit((unsigned char)s[i + 1])))
                   || c == ';' || c == ':';
        if (!end)
            continue;
        /* words fully inside [start, i] */
        size_t a = wi;
        while (wi < t->w.n && t->w.v[wi].off < i)
            wi++;
        if (wi > a || c == '\0') {
            if (wi > a) {
                if (!candor__array_grow(&v, &cap, n, sizeof *v, 32)) {
                    free(v);
                    *out = NULL;
                    return 0;
                }
                v[n].a = a;
                v[n].b = wi;
                v[n].s = start;
                v[n].e = i;
                v[n].question = c == '?';
                n++;
            }
        }
        start = i + 1;
        if (c == '\0')
            break;
    }
    *out = v;
    return n;
}

/* ------------------------------------------------------------------ */
/* The check                                                           */
/* ------------------------------------------------------------------ */

struct finding {
    enum kind kind;
    char *detail;
    double weight;
};

struct candor_check {
    double score;
    const char *verdict;
    struct finding f[K_COUNT];
    size_t n;
};

void candor_check_free(struct candor_check *chk)
{
    if (!chk)
        return;
    for (size_t i = 0; i < chk->n; i++)
        free(chk->f[i].detail);
    free(chk);
}

double candor_check_score(const struct candor_check *chk) { return chk ? chk->score : 0; }
const char *candor_check_verdict(const struct candor_check *chk) { return chk ? chk->verdict : NULL; }
size_t candor__check_findings(const struct candor_check *chk) { return chk ? chk->n : 0; }
const char *candor__check_kind(const struct candor_check *chk, size_t i)
{ return chk && i < chk->n ? kind_names[chk->f[i].kind] : NULL; }
const char *candor__check_detail(const struct candor_check *chk, size_t i)
{ return chk && i < chk->n ? chk->f[i].detail : NULL; }
bool candor__check_has(const struct candor_check *chk, const char *kind)
{
    for (size_t i = 0; chk && i < chk->n; i++)
        if (strcmp(kind_names[chk->f[i].kind], kind) == 0)
            return true;
    return false;
}

candor_status_t candor_check_to_json(const struct candor_check *chk, char **json)
{
    if (json)
        *json = NULL;
    if (!chk || !json)
        return candor__fail(CANDOR_EINVAL, "check: no result");
    json_object *o = json_object_new_object();
    json_object *fs = json_object_new_array();
    if (!o || !fs) {
        json_object_put(o);
        json_object_put(fs);
        return candor__fail(CANDOR_ENOMEM, "check: out of memory");
    }
    json_object_object_add(o, "score", json_object_new_double(round(chk->score * 100) / 100));
    json_object_object_add(o, "verdict", json_object_new_string(chk->verdict));
    for (size_t i = 0; i < chk->n; i++) {
        json_object *f = json_object_new_object();
        json_object_object_add(f, "kind", json_object_new_string(kind_names[chk->f[i].kind]));
        json_object_object_add(f, "detail", json_object_new_string(chk->f[i].detail ? chk->f[i].detail : ""));
        json_object_object_add(f, "weight", json_object_new_double(round(chk->f[i].weight * 100) / 100));
        json_object_array_add(fs, f);
    }
    json_object_object_add(o, "findings", fs);
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    *json = s ? candor__strdup(s) : NULL;
    json_object_put(o);
    return *json ? CANDOR_OK : candor__fail(CANDOR_ENOMEM, "check: out of memory");
}

static void add_finding(struct candor_check *chk, const struct candor_canned_conf *c, enum kind k,
                        double weight, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void add_finding(struct candor_check *chk, const struct candor_canned_conf *c, enum kind k,
                        double weight, const char *fmt, ...)
{
    (void)c;
    for (size_t i = 0; i < chk->n; i++)
        if (chk->f[i].kind == k)
            return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* the evidence quotes mail: keep it valid UTF-8 after the cut */
    char *d = candor__utf8_sanitize(buf, strlen(buf), NULL);
    chk->f[chk->n].kind = k;
    chk->f[chk->n].detail = d;
    chk->f[chk->n].weight = weight;
    chk->n++;
}

/* Copy words [A, B) of T as they stand in the text, quoted, at most MAX bytes. */
static void quote_words(char *buf, size_t size, const struct text *t, size_t a, size_t b)
{
    if (a >= b || a >= t->w.n) {
        snprintf(buf, size, "\"\"");
        return;
    }
    size_t s = t->w.v[a].off, e = t->w.v[b - 1].off + t->w.v[b - 1].len;
    size_t len = e - s, o = 0;
    if (size < 8) {
        buf[0] = '\0';
        return;
    }
    if (len > size - 6)
        len = size - 6;
    /* do not cut a UTF-8 sequence */
    while (len > 0 && s + len < e && ((unsigned char)t->s[s + len] & 0xC0) == 0x80)
        len--;
    buf[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        char c = t->s[s + i];
        if (c == '\n' || c == '\r' || c == '\t')
            c = ' ';
        if (c == ' ' && buf[o - 1] == ' ')
            continue;                     /* one space for a line break and its indent */
        buf[o++] = c;
    }
    if (s + len < e) {
        buf[o++] = '.';
        buf[o++] = '.';
    }
    buf[o++] = '"';
    buf[o] = '\0';
}

/* The parts of a mail's own text. */
struct parts {
    char *own;                       /* quotation and "-- " signature removed */
    char *body;                      /* own text minus greeting and sign-off */
    char *greeting;                  /* the greeting line, or NULL */
    char *signoff;                   /* the closing + name block, or NULL */
    char *signer;                    /* first line after the closing: a name or a team */
};

static void parts_free(struct parts *p)
{
    free(p->own);
    free(p->body);
    free(p->greeting);
    free(p->signoff);
    free(p->signer);
    memset(p, 0, sizeof *p);
}

/* Does L (a line) match phrase list PL as a whole (all its words)? */
static bool line_is(const struct plist *pl, const char *s, size_t len, size_t max_words)
{
    char *tmp = candor__strndup(s, len);
    if (!tmp)
        return false;
    struct candor_words w = { 0 };
    bool r = false;
    if (candor__words_split(&w, tmp, len, 64) && w.n > 0 && w.n <= max_words) {
        size_t end;
        for (size_t k = 0; k < pl->n && !r; k++)
            if (phrase_at(&pl->v[k], 0, &w, 0, w.n, &end) && end == w.n)
                r = true;
    }
    candor__words_free(&w);
    free(tmp);
    return r;
}

static bool line_starts(const struct plist *pl, const char *s, size_t len, size_t *words_used)
{
    char *tmp = candor__strndup(s, len);
    if (!tmp)
        return false;
    struct candor_words w = { 0 };
    bool r = false;
    if (candor__words_split(&w, tmp, len, 64) && w.n > 0) {
        size_t end;
        for (size_t k = 0; k < pl->n && !r; k++)
            if (phrase_at(&pl->v[k], 0, &w, 0, w.n, &end)) {
                r = true;
                *words_used = end;
            }
    }
    candor__words_free(&w);
    free(tmp);
    return r;
}

/* A short line that looks like a name or a team: 1-5 words, no sentence
 * punctuation at its end, starting with a capital letter. */
static bool name_like(const char *s, size_t len)
{
    if (!len || len > 60)
        return false;
    char last = s[len - 1];
    if (last == '.' || last == '?' || last == '!' || last == ':' || last == ';' || last == ',')
        return false;
    uint32_t cp;
    candor__utf8_decode(s, len, &cp);
    if (candor__unicode_fold(cp) == cp && !(cp >= 0x80))   /* not upper-case ASCII */
        return false;
    size_t words = 1;
    for (size_t i = 0; i < len; i++)
        if (s[i] == ' ')
            words++;
    return words <= 5;
}

/* A "." at I ends a greeting only after three words ("Hi Mr. Aldana," is one). */
static bool dot_ok(const char *s, size_t i)
{
    size_t words = 1;
    for (size_t k = 0; k < i; k++)
        words += s[k] == ' ';
    return words >= 3;
}

static void split_parts(const struct candor_canned_conf *c, const char *text, struct parts *p)
{
    memset(p, 0, sizeof *p);
    p->own = candor__canned_own_text(text ? text : "");
    if (!p->own)
        return;
    struct line *v;
    size_t n = split_lines(p->own, &v);
    if (!v) {
        p->body = candor__strdup(p->own);
        return;
    }
    while (n && line_blank(&v[n - 1]))
        n--;
    size_t first = 0;
    while (first < n && line_blank(&v[first]))
        first++;
    /* greeting: the first line, when it starts with a greeting word */
    size_t body_from = first, body_skip = 0;
    if (first < n) {
        size_t len, used = 0;
        const char *s = line_trim(&v[first], &len);
        if (line_starts(&c->lists[L_GREETING], s, len, &used)) {
            /* the greeting ends at the first "," "!" " - " or the line end */
            size_t cut = len;
            for (size_t i = 0; i < len; i++) {
                if (s[i] == ',' || s[i] == '!' || s[i] == ':'
                    || (s[i] == '-' && i > 0 && s[i - 1] == ' ')
                    || (s[i] == '.' && i + 1 < len && s[i + 1] == ' ' && dot_ok(s, i))) {
                    cut = i + 1;
                    break;
                }
            }
            p->greeting = candor__strndup(s, cut);
            if (cut >= len)
                body_from = first + 1;
            else
                body_skip = (size_t)(s - v[first].s) + cut;
        }
    }
    /* sign-off: the last closing line among the last lines, else a short
     * name-like line opening one of the last paragraphs */
    size_t sig = n;
    for (size_t i = n; i > body_from && i + 14 > n; i--) {
        size_t len;
        const char *s = line_trim(&v[i - 1], &len);
        if (line_is(&c->lists[L_CLOSING], s, len, 7)) {
            sig = i - 1;
            break;
        }
    }
    if (sig == n) {
        int paras = 0;
        size_t lowest = body_skip ? first + 1 : body_from;
        for (size_t i = n; i > lowest && paras < 3; i--) {
            bool para_start = i - 1 == lowest || line_blank(&v[i - 2]);
            if (line_blank(&v[i - 1]))
                continue;
            if (!para_start)
                continue;
            paras++;
            size_t len;
            const char *s = line_trim(&v[i - 1], &len);
            if (name_like(s, len))
                sig = i - 1;
        }
    }
    if (sig == n && n > body_from + 1) {
        /* "...text\nLeo": a name on the last line right under the text */
        size_t len;
        const char *s = line_trim(&v[n - 1], &len);
        if (name_like(s, len) && len < 30 && !memchr(s, ',', len))
            sig = n - 1;
    }
    struct candor_buf body = CANDOR_BUF_INIT, so = CANDOR_BUF_INIT;
    for (size_t i = body_from; i < sig; i++) {
        if (i == first && body_skip)
            candor__buf_append(&body, v[i].s + body_skip, v[i].len - body_skip);
        else
            candor__buf_append(&body, v[i].s, v[i].len);
        candor__buf_putc(&body, '\n');
    }
    for (size_t i = sig; i < n; i++) {
        candor__buf_append(&so, v[i].s, v[i].len);
        candor__buf_putc(&so, '\n');
    }
    /* the signer: the first non-blank line after the closing line */
    if (sig < n) {
        size_t i = sig, len;
        const char *s = line_trim(&v[i], &len);
        if (line_is(&c->lists[L_CLOSING], s, len, 7)) {
            i++;
            while (i < n && line_blank(&v[i]))
                i++;
        }
        if (i < n) {
            s = line_trim(&v[i], &len);
            /* "Kevin\nPatient Care": keep two lines when the first is a name */
            struct candor_buf sg = CANDOR_BUF_INIT;
            candor__buf_append(&sg, s, len);
            if (i + 1 < n && !line_blank(&v[i + 1])) {
                size_t l2;
                const char *s2 = line_trim(&v[i + 1], &l2);
                if (name_like(s2, l2)) {
                    candor__buf_putc(&sg, '\n');
                    candor__buf_append(&sg, s2, l2);
                }
            }
            p->signer = candor__buf_steal(&sg);
        }
    }
    p->body = candor__buf_steal(&body);
    p->signoff = sig < n ? candor__buf_steal(&so) : NULL;
    candor__buf_free(&so);
    free(v);
}

/* Language guess from function words: "en", "fr", "de", "es" or NULL. */
static const char *language(const struct text *t)
{
    static const char *const en[] = { "the", "and", "you", "your", "is", "to", "for", "we", "it", "of", "have", "this" };
    static const char *const fr[] = { "le", "la", "les", "vous", "votre", "est", "et", "nous", "pour", "des", "une", "pas" };
    static const char *const de[] = { "der", "die", "das", "und", "sie", "ist", "ihre", "wir", "nicht", "mit", "ein", "für" };
    static const char *const es[] = { "el", "los", "las", "usted", "su", "es", "y", "para", "con", "una", "por", "que" };
    static const char *const *const langs[] = { en, fr, de, es };
    static const char *const names[] = { "en", "fr", "de", "es" };
    size_t score[4] = { 0 };
    for (size_t i = 0; i < t->w.n; i++) {
        const char *f = candor__word_fold(&t->w, i);
        for (size_t l = 0; l < 4; l++)
            for (size_t k = 0; k < 12; k++)
                if (strcmp(f, langs[l][k]) == 0)
                    score[l]++;
    }
    size_t best = 0;
    for (size_t l = 1; l < 4; l++)
        if (score[l] > score[best])
            best = l;
    if (score[best] < 3)
        return NULL;
    return names[best];
}

/* Is the display name NAME a person's (not a team, a company or a form)? */
static bool person_name(const struct candor_canned_conf *c, const char *name)
{
    if (!name || !*name)
        return false;
    struct text t;
    if (!text_init(&t, name)) {
        text_free(&t);
        return false;
    }
    bool team = plist_any(&c->lists[L_TEAM], &t.w, 0, t.w.n);
    bool digits = false, upper = true;
    for (size_t i = 0; i < t.w.n; i++) {
        digits |= t.w.v[i].digits;
        upper &= t.w.v[i].upper || t.w.v[i].flen <= 3;
    }
    /* "The Brew House", "The Vela Crew": a business, not a person */
    bool article = t.w.n > 1 && (strcmp(candor__word_fold(&t.w, 0), "the") == 0
                                 || strcmp(candor__word_fold(&t.w, 0), "ihr") == 0
                                 || strcmp(candor__word_fold(&t.w, 0), "le") == 0
                                 || strcmp(candor__word_fold(&t.w, 0), "el") == 0);
    bool r = t.w.n >= 1 && t.w.n <= 4 && !team && !digits && !article && (upper || t.w.n == 1);
    text_free(&t);
    return r;
}

/* First word of a person's name, folded (for masking and greetings). */
static void name_words(const char *name, struct candor_strv *out)
{
    if (!name)
        return;
    struct candor_words w = { 0 };
    if (candor__words_split(&w, name, strlen(name), 8))
        for (size_t i = 0; i < w.n; i++)
            if (w.v[i].flen >= 2)
                candor__strv_push(out, candor__word_fold(&w, i));
    candor__words_free(&w);
}

static const char *domain_of(const char *addr)
{
    const char *at = addr ? strrchr(addr, '@') : NULL;
    return at ? at + 1 : "";
}

/* The reply's recipient: the first To address, normalised. */
static char *reply_recipient(const struct candor_message *reply)
{
    for (size_t i = 0; i < reply->to.n; i++)
        if (reply->to.v[i].address)
            return candor__addr_normalize(reply->to.v[i].address);
    return candor__strdup("");
}

/* The customer's personal name, if known: From (or Reply-To for a web
 * form), else a short name line closing their text. */
static char *customer_name(const struct candor_canned_conf *c, const struct candor_message *orig,
                           const struct parts *op)
{
    if (orig) {
        for (size_t i = 0; i < orig->reply_to.n; i++)
            if (person_name(c, orig->reply_to.v[i].name))
                return candor__strdup(orig->reply_to.v[i].name);
        if (person_name(c, orig->from.name))
            return candor__strdup(orig->from.name);
    }
    if (op && op->signer && person_name(c, op->signer))
        return candor__strdup(op->signer);
    /* "Thanks, Zoe" on the last line */
    if (op && op->signoff) {
        const char *comma = strrchr(op->signoff, ',');
        if (comma) {
            char *nm = candor__strdup(comma + 1);
            if (nm) {
                char *e = nm + strlen(nm);
                while (e > nm && candor__is_space((unsigned char)e[-1]))
                    *--e = '\0';
                char *s = nm;
                while (candor__is_space((unsigned char)*s))
                    s++;
                if (person_name(c, s)) {
                    memmove(nm, s, strlen(s) + 1);
                    return nm;
                }
            }
            free(nm);
        }
    }
    return NULL;
}

/* Stems (first CANDOR_FP_STEM bytes) of the content words of a text. */
struct stems {
    uint64_t *v;
    size_t n, cap;
};

static uint64_t stem_hash(const char *f, size_t len)
{
    if (len > 5)
        len = 5;
    return candor__fp_hash(f, len, 7);
}

static bool stems_has(const struct stems *s, uint64_t h)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] == h)
            return true;
    return false;
}

static void stems_add(struct stems *s, uint64_t h)
{
    if (stems_has(s, h))
        return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 128;
        uint64_t *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = h;
}

/* Digits and letters only, folded: "LP-2297730" -> "lp2297730". */
static void alnum_key(const char *f, char *out, size_t size)
{
    size_t o = 0;
    for (const char *p = f; *p && o + 1 < size; p++)
        if (candor__is_alnum((unsigned char)*p) || (unsigned char)*p >= 0x80)
            out[o++] = *p;
    out[o] = '\0';
}

static bool is_month_or_day(const char *f)
{
    static const char *const w[] = { "january", "february", "march", "april", "may", "june", "july",
        "august", "september", "october", "november", "december", "jan", "feb", "mar", "apr",
        "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "monday", "tuesday",
        "wednesday", "thursday", "friday", "saturday", "sunday", NULL };
    for (size_t i = 0; w[i]; i++)
        if (strcmp(f, w[i]) == 0)
            return true;
    return false;
}

/* Is the word at I a specific of the customer's: an id, an amount, a
 * number of 3+ characters, or a capitalised name of a thing inside a
 * sentence? */
static bool specific_word(const struct text *t, size_t i, const struct sent *se,
                          const struct candor_strv *skip)
{
    const struct candor_word *w = &t->w.v[i];
    const char *f = candor__word_fold(&t->w, i);
    if (w->digits) {
        char k[64];
        alnum_key(f, k, sizeof k);
        size_t nd = 0;
        for (const char *p = k; *p; p++)
            nd += candor__is_digit((unsigned char)*p);
        bool money = w->off > 0 && (t->s[w->off - 1] == '$' || (unsigned char)t->s[w->off - 1] >= 0x80);
        return nd >= 3 || money || strlen(k) >= 4;
    }
    if (!w->upper || i == se->a || w->flen < 3 || candor__fp_stopword(f) || is_month_or_day(f))
        return false;
    /* a capital after a sentence-like break (a line start) is no name */
    if (w->off > 0 && (t->s[w->off - 1] == '\n' || t->s[w->off - 1] == '"'))
        return false;
    for (size_t k = 0; skip && k < skip->n; k++)
        if (strcmp(skip->v[k], f) == 0)
            return false;
    return true;
}

struct analysis {
    /* the customer's mail */
    size_t asks, asks_missed, asks_touched;
    char missed_ask[300];
    size_t specifics, specifics_missed;
    char missed_specific[120];
    bool problem;                    /* complaint or harm reported */
    char problem_word[80];
    bool request;                    /* asked for something to be done */
    const char *lang_orig, *lang_reply;
    /* the reply */
    size_t body_words;
    bool apology, acknowledge, action, commitment, pointer, answer;
    bool deed_engaged;               /* an action or commitment names the customer's subject */
    char pointer_text[200];
    char action_text[200];
    size_t concrete;                 /* numbers, dates, times new to the reply */
    double overlap;                  /* share of the customer's content words used */
};

/* Do only phone punctuation and spaces stand between words A and B? */
static bool phone_gap(const struct text *t, size_t a, size_t b)
{
    size_t s = t->w.v[a].off + t->w.v[a].len, e = t->w.v[b].off;
    if (e < s || e - s > 3)
        return false;
    for (size_t k = s; k < e; k++)
        if (!strchr(" -().+/", t->s[k]))
            return false;
    return true;
}

/* Is word I a URL/domain piece or phone number in T? */
static bool pointer_word(const struct text *t, size_t i)
{
    const struct candor_word *w = &t->w.v[i];
    const char *f = candor__word_fold(&t->w, i);
    /* "example.com/help", "www.x", "http" */
    size_t e = w->off + w->len;
    if (strcmp(f, "http") == 0 || strcmp(f, "https") == 0 || strcmp(f, "www") == 0)
        return true;
    if (t->s[e] == '.' && candor__is_alpha((unsigned char)t->s[e + (t->s[e] ? 1 : 0)])
        && i + 1 < t->w.n && t->w.v[i + 1].off == e + 1) {
        const char *nf = candor__word_fold(&t->w, i + 1);
        static const char *const tld[] = { "com", "org", "net", "example", "co", "uk", "de", "fr",
                                           "es", "io", "eu", "ie", "info", NULL };
        for (size_t k = 0; tld[k]; k++)
            if (strcmp(nf, tld[k]) == 0)
                return true;
    }
    /* phone: a run of digit groups ("0800 555 0142", "+44 (0)20 7946 0018")
     * with 9 or more digits and no letters */
    if (w->digits) {
        size_t lo = i, hi = i;
        while (lo > 0 && i - lo < 8 && t->w.v[lo - 1].digits && phone_gap(t, lo - 1, lo))
            lo--;
        while (hi + 1 < t->w.n && hi - i < 8 && t->w.v[hi + 1].digits && phone_gap(t, hi, hi + 1))
            hi++;
        size_t nd = 0;
        for (size_t j = lo; j <= hi; j++)
            for (size_t k = 0; k < t->w.v[j].len; k++) {
                unsigned char ch = (unsigned char)t->s[t->w.v[j].off + k];
                if (candor__is_alpha(ch))
                    return false;          /* an id such as "LP-2297730" */
                nd += candor__is_digit(ch);
            }
        if (lo > 0 && t->w.v[lo].off > 0 && (unsigned char)t->s[t->w.v[lo].off - 1] >= 0x80)
            return false;                  /* "£1 234 567" is money */
        if (t->w.v[lo].off > 0 && t->s[t->w.v[lo].off - 1] == '$')
            return false;
        return nd >= 9;
    }
    return false;
}

/* Does the reply (stems RS) use the customer's word F, or a word of the
 * same synonym group ("send" / "dispatch", "new" / "replacement")? */
static bool stem_hit(const struct candor_canned_conf *c, const struct stems *rs, const char *f,
                     size_t flen)
{
    if (stems_has(rs, stem_hash(f, flen)))
        return true;
    const struct plist *l = &c->lists[L_SYNONYM];
    for (size_t g = 0; g < l->n; g++) {
        bool in = false;
        for (size_t k = 0; k < l->v[g].n && !in; k++)
            in = tok_match(l->v[g].tok[k], f, false);
        if (!in)
            continue;
        for (size_t k = 0; k < l->v[g].n; k++) {
            const char *t = l->v[g].tok[k];
            size_t tl = strlen(t);
            if (tl && t[tl - 1] == '*')
                tl--;
            if (tl && stems_has(rs, stem_hash(t, tl)))
                return true;
        }
    }
    return false;
}

static bool generic_word(const struct candor_canned_conf *c, const char *f)
{
    const struct plist *l = &c->lists[L_GENERIC_WORD];
    for (size_t g = 0; g < l->n; g++)
        if (l->v[g].n == 1 && tok_match(l->v[g].tok[0], f, false))
            return true;
    return false;
}

/* Count the content words of CUST in [A, B) (not stop words, generic
 * words or names) and how many the reply uses (stems RS, numbers RKEYS). */
static void count_words(const struct candor_canned_conf *c, const struct text *cust, size_t a,
                        size_t b, const struct candor_strv *skip, const struct stems *rs,
                        const struct candor_strv *rkeys, size_t *words, size_t *hits)
{
    for (size_t i = a; i < b; i++) {
        const char *f = candor__word_fold(&cust->w, i);
        if (cust->w.v[i].flen < 3 || candor__fp_stopword(f))
            continue;
        bool generic = false;
        /* generic words ("please", "know", "order") carry no ask */
        for (size_t g = 0; g < c->lists[L_GENERIC_WORD].n && !generic; g++)
            generic = c->lists[L_GENERIC_WORD].v[g].n == 1
                      && tok_match(c->lists[L_GENERIC_WORD].v[g].tok[0], f, false);
        for (size_t s2 = 0; skip && s2 < skip->n && !generic; s2++)
            generic = strcmp(skip->v[s2], f) == 0;
        if (generic)
            continue;
        (*words)++;
        bool hit = false;
        if (cust->w.v[i].digits) {
            char key[64];
            alnum_key(f, key, sizeof key);
            for (size_t r = 0; r < rkeys->n && !hit; r++)
                hit = strcmp(rkeys->v[r], key) == 0;
        } else {
            hit = stem_hit(c, rs, f, cust->w.v[i].flen);
        }
        *hits += hit;
    }
}

static void analyse(const struct candor_canned_conf *c, const struct text *cust,
                    const struct text *body, const struct candor_strv *skip, struct analysis *a)
{
    /* reply stems and digit keys */
    struct stems rs = { 0 };
    struct candor_strv rkeys = CANDOR_STRV_INIT;
    for (size_t i = 0; i < body->w.n; i++) {
        const char *f = candor__word_fold(&body->w, i);
        if (body->w.v[i].digits) {
            char k[64];
            alnum_key(f, k, sizeof k);
            candor__strv_push(&rkeys, k);
            /* "$64.20" also as "64": amounts are often rounded in words */
        }
        stems_add(&rs, stem_hash(f, body->w.v[i].flen));
    }
    a->body_words = body->w.n;
    struct stems cs_stems = { 0 };                 /* the customer's content words */
    for (size_t i = 0; i < cust->w.n; i++) {
        const char *f = candor__word_fold(&cust->w, i);
        if (cust->w.v[i].flen >= 3 && !candor__fp_stopword(f) && !generic_word(c, f))
            stems_add(&cs_stems, stem_hash(f, cust->w.v[i].flen));
    }
    struct candor_strv ckeys = CANDOR_STRV_INIT;   /* the customer's numbers */
    for (size_t i = 0; i < cust->w.n; i++)
        if (cust->w.v[i].digits) {
            char k[64];
            alnum_key(candor__word_fold(&cust->w, i), k, sizeof k);
            candor__strv_push(&ckeys, k);
        }

    /* the customer's asks: questions and requests, and their words */
    struct sent *cs;
    size_t ncs = sentences(cust, &cs);
    for (size_t k = 0; k < ncs; k++) {
        const struct sent *se = &cs[k];
        bool req = plist_any(&c->lists[L_REQUEST], &cust->w, se->a, se->b);
        bool prob = plist_any(&c->lists[L_PROBLEM], &cust->w, se->a, se->b);
        if (prob && !a->problem) {
            size_t at = se->a, end = se->a;
            plist_find(&c->lists[L_PROBLEM], &cust->w, se->a, se->b, &at, &end);
            quote_words(a->problem_word, sizeof a->problem_word, cust, at, end);
            a->problem = true;
        }
        if (req)
            a->request = true;
        /* specifics anywhere in the customer's text */
        for (size_t i = se->a; i < se->b; i++) {
            if (!specific_word(cust, i, se, skip))
                continue;
            a->specifics++;
            const char *f = candor__word_fold(&cust->w, i);
            bool hit;
            if (cust->w.v[i].digits) {
                char key[64];
                alnum_key(f, key, sizeof key);
                hit = false;
                for (size_t r = 0; r < rkeys.n && !hit; r++)
                    hit = strcmp(rkeys.v[r], key) == 0
                          || (strlen(key) >= 3 && strstr(rkeys.v[r], key) != NULL);
            } else {
                hit = stem_hit(c, &rs, f, cust->w.v[i].flen);
            }
            if (!hit) {
                a->specifics_missed++;
                if (!a->missed_specific[0])
                    quote_words(a->missed_specific, sizeof a->missed_specific, cust, i, i + 1);
            }
        }
        bool inquiry = plist_any(&c->lists[L_INQUIRY], &cust->w, se->a, se->b);
        if (!se->question && !req && !inquiry)
            continue;
        /* content words of the ask; a short question ("Is that normal?")
         * points back at the sentence before it */
        size_t words = 0, hits = 0;
        count_words(c, cust, se->a, se->b, skip, &rs, &rkeys, &words, &hits);
        bool short_ask = words < 3 && k > 0;
        if (short_ask)
            count_words(c, cust, cs[k - 1].a, cs[k - 1].b, skip, &rs, &rkeys, &words, &hits);
        if (!words)
            continue;
        a->asks++;
        a->asks_touched += hits > 0;
        /* a short question is about the sentence before it: any of those
         * words taken up answers it */
        if (!hits || (!short_ask && (double)hits / (double)words < c->cover)) {
            a->asks_missed++;
            if (!a->missed_ask[0])
                quote_words(a->missed_ask, sizeof a->missed_ask, cust, se->a, se->b);
        }
    }
    /* overall: the share of all the customer's content words the reply uses */
    size_t all_words = 0, all_hits = 0;
    count_words(c, cust, 0, cust->w.n, skip, &rs, &rkeys, &all_words, &all_hits);
    a->overlap = all_words ? (double)all_hits / (double)all_words : 0;
    free(cs);

    /* the reply: apology, acknowledgement, action, commitment, pointers */
    struct sent *rsent;
    size_t nrs = sentences(body, &rsent);
    for (size_t k = 0; k < nrs; k++) {
        const struct sent *se = &rsent[k];
        size_t at, end;
        if (plist_any(&c->lists[L_APOLOGY], &body->w, se->a, se->b))
            a->apology = true;
        if (plist_any(&c->lists[L_ACKNOWLEDGE], &body->w, se->a, se->b))
            a->acknowledge = true;
        bool nonaction = plist_any(&c->lists[L_NONACTION], &body->w, se->a, se->b);
        /* an action inside a condition ("once it has been delivered",
         * "if you have changed") is none */
        bool act = false;
        for (size_t from = se->a, guard = 0; !nonaction && !act && from < se->b && guard < 32; guard++) {
            if (plist_find(&c->lists[L_ACTION], &body->w, from, se->b, &at, &end) < 0)
                break;
            size_t lo = at > se->a + 3 ? at - 3 : se->a;
            act = !plist_any(&c->lists[L_CONDITION], &body->w, lo, at);
            from = at + 1;
        }
        bool committed = !nonaction && plist_any(&c->lists[L_FUTURE], &body->w, se->a, se->b)
                         && plist_any(&c->lists[L_TIME], &body->w, se->a, se->b);
        if ((act || committed) && !a->deed_engaged) {
            /* the deed is about something the customer wrote about */
            for (size_t i = se->a; i < se->b && !a->deed_engaged; i++) {
                const char *f = candor__word_fold(&body->w, i);
                if (body->w.v[i].flen >= 3 && !candor__fp_stopword(f) && !generic_word(c, f))
                    a->deed_engaged = stems_has(&cs_stems, stem_hash(f, body->w.v[i].flen));
            }
        }
        if (act) {
            if (!a->action)
                quote_words(a->action_text, sizeof a->action_text, body, se->a, se->b);
            a->action = true;
        }
        if (!nonaction && plist_any(&c->lists[L_FUTURE], &body->w, se->a, se->b)
            && plist_any(&c->lists[L_TIME], &body->w, se->a, se->b)) {
            if (!a->action && !a->commitment)
                quote_words(a->action_text, sizeof a->action_text, body, se->a, se->b);
            a->commitment = true;
        }
        if (plist_find(&c->lists[L_ANSWER], &body->w, se->a, se->b, &at, &end) >= 0 && at == se->a)
            a->answer = true;
        bool ptr = plist_find(&c->lists[L_DEFLECT], &body->w, se->a, se->b, &at, &end) >= 0;
        for (size_t i = se->a; i < se->b && !ptr; i++)
            if (pointer_word(body, i)) {
                ptr = true;
                at = i;
                end = i + 1;
            }
        if (ptr && !a->pointer) {
            a->pointer = true;
            quote_words(a->pointer_text, sizeof a->pointer_text, body, se->a, se->b);
        }
        /* concrete facts new to the reply: numbers, quantities, times,
         * dates that the customer did not write (a template with the
         * order number pasted in states nothing new) */
        for (size_t i = se->a; i < se->b; i++) {
            const char *f = candor__word_fold(&body->w, i);
            bool num = body->w.v[i].digits && !pointer_word(body, i);
            if (num) {
                char key[64];
                alnum_key(f, key, sizeof key);
                for (size_t q = 0; q < ckeys.n && num; q++)
                    num = strcmp(ckeys.v[q], key) != 0;
            }
            size_t qe;
            bool qty = !num && (is_month_or_day(f)
                                || (plist_find(&c->lists[L_QUANTITY], &body->w, i, i + 1, NULL, &qe) >= 0));
            if (num || qty)
                a->concrete++;
        }
    }
    free(rsent);
    free(rs.v);
    candor__strv_free(&rkeys);
    candor__strv_free(&ckeys);
    free(cs_stems.v);
}

static candor_status_t check_template(const struct candor_canned_conf *c, struct candor_history *h,
                                      const char *body, const char *recipient, const char *domain,
                                      const struct candor_strv *mask, struct candor_check *chk,
                                      double *share)
{
    *share = 0;
    /* paragraphs of the body */
    struct line *v;
    size_t n = split_lines(body, &v);
    if (!v)
        return CANDOR_OK;
    size_t total = 0, matched = 0, paras = 0;
    int best_rcpt = 0;
    char evidence[200] = "", example[300] = "";
    candor_status_t st = CANDOR_OK;
    for (size_t i = 0; i < n && paras < CANNED_MAX_PARAS && st == CANDOR_OK;) {
        while (i < n && line_blank(&v[i]))
            i++;
        if (i >= n)
            break;
        size_t j = i;
        while (j < n && !line_blank(&v[j]))
            j++;
        const char *ps = v[i].s;
        size_t plen = (size_t)(v[j - 1].s + v[j - 1].len - ps);
        paras++;
        struct candor_fp fp;
        if (!candor__fp_compute(&fp, ps, plen, mask)) {
            free(v);
            return candor__fail(CANDOR_ENOMEM, "check: out of memory");
        }
        total += fp.ntok;
        if ((int)fp.ntok >= c->tpl_min_tokens && h) {
            struct candor_history_match m;
            st = candor__history_match(h, &fp, recipient, domain, c->tpl_similarity,
                                       c->tpl_recipients, &m);
            bool footer = m.domain_replies >= c->footer_min_replies
                          && (double)m.domain_uses >= c->footer_share * (double)m.domain_replies;
            if (st == CANDOR_OK && m.cluster && m.recipients >= c->tpl_recipients && !footer) {
                matched += fp.ntok;
                if (m.recipients > best_rcpt || !evidence[0]) {
                    best_rcpt = m.recipients;
                    if (m.example_id[0]) {
                        char when[32];
                        candor_time_format(when, sizeof when, m.example_sent);
                        snprintf(example, sizeof example, ", e.g. <%s> of %s", m.example_id, when);
                    }
                    struct text t;
                    char *tmp = candor__strndup(ps, plen);
                    if (tmp && text_init(&t, tmp))
                        quote_words(evidence, 120, &t, 0, t.w.n < 12 ? t.w.n : 12);
                    text_free(&t);
                    free(tmp);
                }
            }
        }
        i = j;
    }
    free(v);
    if (st != CANDOR_OK)
        return st;
    if (matched >= (size_t)c->tpl_body_tokens && total)
        *share = (double)matched / (double)total;
    if (matched >= (size_t)c->tpl_body_tokens && total
        && (double)matched / (double)total >= c->tpl_share)
        add_finding(chk, c, K_TEMPLATE, c->weight[K_TEMPLATE],
                    "%s (and %d%% of the reply) also stands in replies to %d or more other recipients%s",
                    evidence, (int)(100.0 * (double)matched / (double)total), c->tpl_recipients, example);
    return CANDOR_OK;
}

static const char *verdict_for(const struct candor_canned_conf *c, double score)
{
    return score >= c->canned ? "canned" : score >= c->review ? "review" : "ok";
}

candor_status_t candor__canned_check_db(struct candor_check **out, const struct candor_ctx *ctx,
                                        struct candor_db *db, const struct candor_message *original,
                                        const struct candor_message *reply, int64_t now)
{
    if (out)
        *out = NULL;
    if (!out || !ctx || !reply)
        return candor__fail(CANDOR_EINVAL, "check: missing argument");
    if (!ctx->canned)
        return candor__fail(CANDOR_ECONFIG, "check: no <canned> configuration");
    const struct candor_canned_conf *c = ctx->canned;
    now = candor__now(now);
    struct candor_check *chk = calloc(1, sizeof *chk);
    if (!chk)
        return candor__fail(CANDOR_ENOMEM, "check: out of memory");

    struct parts rp, op;
    memset(&op, 0, sizeof op);
    split_parts(c, reply->text ? reply->text : "", &rp);
    if (original)
        split_parts(c, original->new_text && *original->new_text ? original->new_text
                       : original->text ? original->text : "", &op);
    char *cname = customer_name(c, original, &op);
    char *recipient = reply_recipient(reply);
    const char *domain = domain_of(reply->from.address);
    struct candor_strv mask = CANDOR_STRV_INIT;   /* the customer's and the signer's names */
    name_words(cname, &mask);
    for (size_t i = 0; i < reply->to.n; i++)
        name_words(reply->to.v[i].name, &mask);
    struct candor_strv skip = CANDOR_STRV_INIT;   /* names that are no specifics */
    name_words(cname, &skip);
    if (original)
        name_words(original->from.name, &skip);
    name_words(reply->from.name, &skip);
    name_words(rp.signer, &skip);
    name_words(op.signer, &skip);

    struct text body, cust;
    candor_status_t st = CANDOR_OK;
    bool ok = rp.own && text_init(&body, rp.body ? rp.body : "")
              && text_init(&cust, op.body ? op.body : op.own ? op.own : "");
    if (!ok)
        st = candor__fail(CANDOR_ENOMEM, "check: out of memory");

    struct analysis a;
    memset(&a, 0, sizeof a);
    struct candor_history *h = NULL;
    double template_share = 0;
    if (st == CANDOR_OK) {
        analyse(c, &cust, &body, &skip, &a);
        a.lang_orig = language(&cust);
        a.lang_reply = language(&body);

        if (db && candor__history_open(&h, db) != CANDOR_OK)
            h = NULL;   /* no history tables yet: an empty history */

        /* repeat_send: the reply's time is its Date unless that is later than now */
        int64_t t = reply->has_date && reply->date <= now ? reply->date : now;
        int recent = 0;
        if (h && *recipient
            && candor__history_recent(h, recipient, t - c->repeat_window, t, reply->message_id,
                                      &recent) == CANDOR_OK
            && recent >= c->repeat_count)
            add_finding(chk, c, K_REPEAT, c->weight[K_REPEAT],
                        "%d replies to %s in the %lld hours before this one", recent, recipient,
                        (long long)(c->repeat_window / 3600));

        if (h && rp.body)
            st = check_template(c, h, rp.body, recipient, domain, &mask, chk, &template_share);
    }
    if (st == CANDOR_OK) {
        /* unresponsive */
        bool other_lang = a.lang_orig && a.lang_reply && strcmp(a.lang_orig, a.lang_reply) != 0;
        bool empty = a.body_words < 3;
        /* substance: the reply does or promises something, answers yes
         * or no, or states facts (numbers, dates, quantities) of its own */
        /* stock phrases */
        size_t nstock = 0;
        char ev[300] = "";
        size_t pos = 0;
        for (size_t guard = 0; pos < body.w.n && guard < 64; guard++) {
            size_t at, end;
            int k = plist_find(&c->lists[L_STOCK], &body.w, pos, body.w.n, &at, &end);
            if (k < 0)
                break;
            if (nstock < 3) {
                char q[120];
                quote_words(q, sizeof q, &body, at, end);
                size_t l = strlen(ev);
                snprintf(ev + l, sizeof ev - l, "%s%s", l ? ", " : "", q);
            }
            nstock++;
            pos = end > at ? end : at + 1;
        }
        if (nstock) {
            double w = c->stock_each * (double)nstock;
            if (w > c->weight[K_STOCK])
                w = c->weight[K_STOCK];
            add_finding(chk, c, K_STOCK, w, "%s", ev);
        }

        bool deed = a.action || a.commitment || a.answer;
        /* every question or request taken up, with the customer's words
         * and most of their specifics: an answer in prose */
        bool full_cover = a.asks && !a.asks_missed && a.overlap >= c->full_overlap
                          && a.specifics_missed * 2 <= a.specifics;
        bool substance = deed || a.concrete >= 2 || full_cover;
        /* a short reply of facts with no boilerplate and no pointer
         * elsewhere answers even when it shares few of the customer's words */
        bool terse = a.body_words <= (size_t)c->terse_words && a.concrete >= 2 && !a.pointer
                     && nstock == 0 && a.overlap >= c->terse_overlap;
        int signs = a.action + a.commitment + a.answer + (a.concrete >= 2);
        bool strong = (signs >= 2 && (a.asks_touched || !a.asks)) || terse;
        /* engagement with what the customer wrote */
        bool asks_missed = a.asks && a.asks_missed * 2 > a.asks;
        bool specs_missed = !a.specifics || a.specifics_missed * 3 >= a.specifics * 2;
        bool nothing_engaged = a.asks_missed == a.asks && a.specifics_missed == a.specifics
                               && (a.asks || a.specifics) && a.overlap < c->overlap
                               && !a.deed_engaged;
        /* no question, no request, no problem (thanks, praise, news): there
         * is nothing to answer, only to acknowledge */
        bool nothing_asked = !a.asks && !a.problem && !a.request;
        /* a reply that is mostly a paste sent to others is not about this customer */
        bool pasted = template_share >= c->tpl_unresponsive;
        bool unresp = empty || other_lang || pasted
                      || (!nothing_asked && (!substance || nothing_engaged
                                             || (asks_missed && specs_missed && !strong)));
        if (empty)
            add_finding(chk, c, K_UNRESPONSIVE, c->weight[K_UNRESPONSIVE],
                        "the reply has no text of its own (empty, only quotation or only a signature)");
        else if (other_lang)
            add_finding(chk, c, K_UNRESPONSIVE, c->weight[K_UNRESPONSIVE],
                        "the reply is in another language (%s) than the customer's mail (%s)",
                        a.lang_reply, a.lang_orig);
        else if (unresp) {
            struct candor_buf why = CANDOR_BUF_INIT;
            if (pasted)
                candor__buf_printf(&why, "%d%% of the reply is a template sent to others; ",
                                   (int)(template_share * 100));
            if (!substance)
                candor__buf_puts(&why, "no action, commitment, answer or fact of its own; ");
            if (a.asks_missed)
                candor__buf_printf(&why, "%zu of %zu questions or requests not taken up, e.g. %s; ",
                                   a.asks_missed, a.asks, a.missed_ask);
            if (a.specifics_missed)
                candor__buf_printf(&why, "%zu of %zu specifics not mentioned, e.g. %s; ",
                                   a.specifics_missed, a.specifics, a.missed_specific);
            if (!why.len)
                candor__buf_printf(&why, "uses %d%% of the customer's words and none of their specifics; ",
                                   (int)(a.overlap * 100));
            while (why.len > 0 && (why.data[why.len - 1] == ' ' || why.data[why.len - 1] == ';'))
                why.data[--why.len] = '\0';
            add_finding(chk, c, K_UNRESPONSIVE, c->weight[K_UNRESPONSIVE], "%s", why.data ? why.data : "");
            candor__buf_free(&why);
        }

        /* impersonal */
        struct text g;
        bool generic_greeting = false;
        if (rp.greeting && text_init(&g, rp.greeting)) {
            size_t end;
            for (size_t k = 0; k < c->lists[L_GENERIC_GREETING].n && !generic_greeting; k++)
                generic_greeting = phrase_at(&c->lists[L_GENERIC_GREETING].v[k], 0, &g.w, 0, g.w.n, &end)
                                   && end == g.w.n;
        }
        if (rp.greeting)
            text_free(&g);
        bool team_signed = false;
        const char *signer = rp.signer ? rp.signer : reply->from.name;
        if (signer) {
            /* a person's name on any of the signer lines makes it personal */
            bool person = false;
            char *tmp = candor__strdup(signer);
            char *save = NULL;
            for (char *ln = tmp ? strtok_r(tmp, "\n", &save) : NULL; ln; ln = strtok_r(NULL, "\n", &save))
                person |= person_name(c, ln);
            free(tmp);
            team_signed = !person;
        }
        if ((generic_greeting && cname) || team_signed) {
            if (generic_greeting && cname)
                add_finding(chk, c, K_IMPERSONAL, c->weight[K_IMPERSONAL],
                            "greets \"%s\" although the customer's name (%s) is known%s%s%s",
                            rp.greeting, cname, team_signed ? "; signed only by \"" : "",
                            team_signed ? signer : "", team_signed ? "\"" : "");
            else
                add_finding(chk, c, K_IMPERSONAL, c->weight[K_IMPERSONAL] * 0.7,
                            "signed only by a team or company: \"%s\"", signer);
        }

        bool unresponsive = candor__check_has(chk, "unresponsive");
        /* deflection: pointers elsewhere standing in for the answer */
        if (a.pointer && unresponsive)
            add_finding(chk, c, K_DEFLECTION, c->weight[K_DEFLECTION],
                        "points elsewhere instead of answering: %s", a.pointer_text);
        /* no_empathy */
        if (a.problem && !a.apology && !a.acknowledge)
            add_finding(chk, c, K_NO_EMPATHY, c->weight[K_NO_EMPATHY],
                        "the customer reports a problem (%s) and the reply neither apologises nor acknowledges it",
                        a.problem_word);
        /* no_next_step */
        if ((a.request || a.problem) && !a.action && !a.commitment)
            add_finding(chk, c, K_NO_NEXT_STEP, c->weight[K_NO_NEXT_STEP],
                        "no action taken and no commitment with an owner and a time%s",
                        a.request ? " although the customer asked for something to be done"
                                  : " although the customer reports a problem");

        double keep = 1;
        for (size_t i = 0; i < chk->n; i++)
            keep *= 1 - chk->f[i].weight;
        chk->score = 1 - keep;
        if (chk->score < 0)
            chk->score = 0;
        if (chk->score > 1)
            chk->score = 1;
        chk->verdict = verdict_for(c, chk->score);
    }

    candor__history_close(h);
    if (ok) {
        text_free(&body);
        text_free(&cust);
    }
    candor__strv_free(&mask);
    candor__strv_free(&skip);
    free(cname);
    free(recipient);
    parts_free(&rp);
    parts_free(&op);
    if (st != CANDOR_OK) {
        candor_check_free(chk);
        return st;
    }
    *out = chk;
    return CANDOR_OK;
}

candor_status_t candor_check(struct candor_check **out, const struct candor_ctx *ctx,
                             struct candor_store *store, const struct candor_message *original,
                             const struct candor_message *reply, int64_t now)
{
    return candor__canned_check_db(out, ctx, store ? candor__store_db(store) : NULL,
                                   original, reply, now);
}

/* ------------------------------------------------------------------ */
/* Recording a sent reply                                              */
/* ------------------------------------------------------------------ */

candor_status_t candor__canned_record_h(const struct candor_ctx *ctx, struct candor_history *h,
                                        const struct candor_message *reply,
                                        const char *recipient, int64_t sent_at)
{
    if (!ctx || !ctx->canned || !h || !reply)
        return candor__fail(CANDOR_EINVAL, "record: missing argument");
    const struct candor_canned_conf *c = ctx->canned;
    candor_status_t st;
    const char *domain = domain_of(reply->from.address);
    int64_t id;
    st = candor__history_add_reply(h, recipient ? recipient : "", domain, reply->message_id,
                                   sent_at, &id);
    struct parts rp;
    split_parts(c, reply->text ? reply->text : "", &rp);
    struct candor_strv mask = CANDOR_STRV_INIT;
    for (size_t i = 0; i < reply->to.n; i++)
        name_words(reply->to.v[i].name, &mask);
    /* fingerprint the paragraphs of the body and of the sign-off block
     * (footers, so that the footer counts of a business are known) */
    const char *texts[2] = { rp.body, rp.signoff };
    for (int k = 0; k < 2 && st == CANDOR_OK; k++) {
        if (!texts[k])
            continue;
        struct line *v;
        size_t n = split_lines(texts[k], &v);
        size_t paras = 0;
        for (size_t i = 0; v && i < n && st == CANDOR_OK && paras < CANNED_MAX_PARAS;) {
            while (i < n && line_blank(&v[i]))
                i++;
            if (i >= n)
                break;
            size_t j = i;
            while (j < n && !line_blank(&v[j]))
                j++;
            paras++;
            struct candor_fp fp;
            const char *ps = v[i].s;
            size_t plen = (size_t)(v[j - 1].s + v[j - 1].len - ps);
            if (!candor__fp_compute(&fp, ps, plen, &mask))
                st = candor__fail(CANDOR_ENOMEM, "record: out of memory");
            else if ((int)fp.ntok >= c->tpl_min_tokens)
                st = candor__history_add_para(h, id, recipient ? recipient : "", domain, &fp,
                                              c->tpl_join);
            i = j;
        }
        free(v);
    }
    candor__strv_free(&mask);
    parts_free(&rp);
    return st;
}

candor_status_t candor__canned_record_db(const struct candor_ctx *ctx, struct candor_db *db,
                                         const struct candor_message *reply,
                                         const char *recipient, int64_t sent_at)
{
    if (!ctx || !ctx->canned || !db || !reply)
        return candor__fail(CANDOR_EINVAL, "record: missing argument");
    struct candor_history *h;
    candor_status_t st = candor__history_open(&h, db);
    if (st == CANDOR_OK)
        st = candor__canned_record_h(ctx, h, reply, recipient, sent_at);
    candor__history_close(h);
    return st;
}

candor_status_t candor__canned_record(const struct candor_ctx *ctx, struct candor_store *store,
                                      const struct candor_message *reply, const char *recipient,
                                      int64_t sent_at)
{
    return candor__canned_record_db(ctx, store ? candor__store_db(store) : NULL, reply,
                                    recipient, sent_at);
}
