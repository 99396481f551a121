/*
 * triage.c — one result per message: intent (rules + model), urgency,
 * sentiment, churn risk, entities, language, and the auto-reply decision;
 * the `candor triage` JSON object and the X-Candor-* header block.
 *
 * How the parts combine (also in README.md, "How triage decides"):
 *  - Intent: p = softmax(L / T + S * R) over the ten intents, where L are
 *    the model's log-likelihoods (model.c), R the summed weights of the
 *    matching <rules> for each intent, and T, S were fitted on held-out
 *    folds when the model was trained, so p is calibrated. The intent is
 *    the argmax; confidence its p. Without a model file, p = softmax(R).
 *  - Urgency: the rules' urgency scores: critical if its score reaches the
 *    threshold, else high, else low; otherwise the intent's default
 *    (<intent name=... urgency=...>, e.g. praise -> low), else normal.
 *  - Sentiment: a lexicon score over the new text and subject (words of
 *    <words kind="positive|negative">, each +-1, times 1.8 after an
 *    intensifier or in CAPITALS, flipped and damped within three words after
 *    a negator: "not happy" counts as negative, "VERY disappointed" twice), plus
 *    the rules' sentiment weights, plus the intent's bias, times 1.3 with
 *    "!!" or more; positive/negative past the thresholds, else neutral.
 *  - Churn risk: rules' churn weights plus the intent's churn bias, at or
 *    over the threshold (default 1).
 *  - Language (en, fr, de, es): stop-word counts (<words kind="stopword"
 *    lang=...>) and accented letters; English when nothing is known.
 *  - Entities: built-in PCRE2 patterns (order numbers, ticket references,
 *    tracking numbers, phone numbers, amounts with currency, dates) over the
 *    subject and the new text, without overlaps, in order of appearance.
 * All text work is bounded by CANDOR_MODEL_MAX_TEXT_BYTES of new text.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <json-c/json.h>
#include <libxml/tree.h>
#include "ctx.h"
#include "rules.h"
#include "model.h"
#include "message.h"
#include "triage.h"
#include "autoreply.h"

#define N_LANG 4
static const char *const lang_names[N_LANG] = { "en", "fr", "de", "es" };

enum wkind { W_POS, W_NEG, W_NEGATOR, W_INTENS, W_FRUST, W_STOP_EN, W_STOP_FR, W_STOP_DE, W_STOP_ES, W_COUNT };

struct wordset {
    char **v;     /* sorted, folded */
    size_t n, cap;
};

enum ekind { E_TRACKING, E_TICKET, E_ORDER, E_PHONE, E_AMOUNT, E_DATE, E_COUNT };
static const char *const entity_names[E_COUNT] = {
    "tracking_number", "ticket", "order_number", "phone", "amount", "date",
};

/* Every configured word -> the kinds it belongs to (bit 1 << W_*): one
 * hash lookup per token instead of one search per list. */
struct wordmap {
    char **word;
    unsigned *kinds;
    size_t mask;         /* table size - 1; 0: empty */
};

struct candor_triage_conf {
    struct wordset words[W_COUNT];
    struct wordmap map;
    double pos_thr, neg_thr, urg_thr, churn_thr;
    int intent_urgency[CANDOR_N_INTENTS];     /* -1: none */
    double intent_sentiment[CANDOR_N_INTENTS];
    double intent_churn[CANDOR_N_INTENTS];
    pcre2_code *ent[E_COUNT][4];
    size_t n_ent[E_COUNT];
};

struct candor_result {
    int intent;
    double confidence;
    double scores[CANDOR_N_INTENTS];
    int urgency, sentiment;
    bool churn;
    const char *lang;
    struct candor_entity *ents;
    size_t n_ents;
    const char *reason;
    bool send;
    struct json_object *explain;
    size_t n_limited;   /* rule matches stopped by the PCRE2 limits */
};

/* ------------------------------------------------------------------ */
/* Entities                                                             */
/* ------------------------------------------------------------------ */

#define MONTHS "jan(?:uary|vier|uar|\\.)?|feb(?:ruary|ruar|\\.)?|f[ée]v(?:rier|\\.)?|mar(?:ch|s|\\.)?|m[äa]rz|apr(?:il|\\.)?|avr(?:il|\\.)?" \
    "|may|mai|jun(?:e|i|\\.)?|juin|jul(?:y|i|\\.)?|juil(?:let|\\.)?|aug(?:ust|\\.)?|ao[ûu]t|sep(?:t(?:ember|embre)?|\\.)?" \
    "|oct(?:ober|obre|\\.)?|okt(?:ober)?|nov(?:ember|embre|\\.)?|dec(?:ember|\\.)?|d[ée]c(?:embre)?|dez(?:ember)?" \
    "|enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre"

static const char *const entity_patterns[E_COUNT][4] = {
    [E_TRACKING] = {
        "\\b(1Z[0-9A-Z]{16}|JD\\d{16,18}|[A-Z]{2}\\d{9}[A-Z]{2})\\b",
        "(?i:tracking|suivi|sendungs(?:nummer|verfolgung)|seguimiento|rastreo)(?i:\\s*(?:n(?:o|°|º|r|um(?:ber|[ée]ro)?)\\.?|number|code|id|#))?\\s*[:#]?\\s*([A-Z0-9]{10,30})\\b",
        NULL },
    [E_TICKET] = {
        "\\b(?i:ticket|case|incident|r[ée]clamation|dossier|vorgang|vorgangsnummer|caso|incidencia|request|demande)(?i:\\s*(?:n(?:o|°|º|r|um(?:ber|[ée]ro|ero)?)\\.?|id|ref(?:erence)?\\.?))?\\s*[:#]?\\s*([A-Z]{0,6}-?\\d{3,12})\\b",
        "\\b((?:CND|TKT|TICKET|CASE|INC|SR|REQ|CS)-?\\d{3,10})\\b",
        NULL },
    [E_ORDER] = {
        "\\b(?i:order|commande|bestellung|pedido|auftrag|purchase|invoice|facture|rechnung|factura|booking|r[ée]servation|buchung|reserva)(?i:\\s*(?:n(?:o|°|º|r|um(?:ber|[ée]ro|ero|mer)?)\\.?|id|ref(?:erence)?\\.?|#))?\\s*[:#]?\\s*((?=[A-Z-]{0,6}\\d)[A-Z0-9][A-Z0-9-]{3,19})\\b",
        "(?<![\\w#])#\\s?(\\d{4,12})\\b",
        NULL },
    [E_PHONE] = {
        "(?<![\\w+])(\\+\\d{1,3}[\\s.-]?(?:\\(0?\\d{1,4}\\)[\\s.-]?)?\\d{1,4}(?:[\\s.-]?\\d{2,4}){1,4})(?!\\w)",
        "(?<![\\w(])(\\(\\d{3}\\)\\s?\\d{3}[\\s.-]\\d{4}|\\d{3}[.-]\\d{3}[.-]\\d{4})(?!\\w)",
        "(?i:phone|tel|t[ée]l[ée]phone|telefon|tel[ée]fono|mobile|cell|portable|handy|m[óo]vil|call me(?: on| at)?|number)\\s*(?:no\\.?|n[°º]|nr\\.?)?\\s*[:\\-]?\\s*(0\\d{1,4}(?:[\\s.-]?\\d{2,4}){2,4})(?!\\w)",
        NULL },
    [E_AMOUNT] = {
        "((?:[$€£]|(?:USD|EUR|GBP|CHF|CAD|AUD)\\s?)\\s?\\d{1,3}(?:[,.\\s\\x{a0}\\x{202f}]\\d{3})*(?:[.,]\\d{1,2})?)(?!\\d)",
        "(?<![\\d.,])(\\d{1,3}(?:[,.\\s\\x{a0}\\x{202f}]?\\d{3})*(?:[.,]\\d{1,2})?\\s?(?:€|\\$|£|(?i:EUR|USD|GBP|CHF|CAD|AUD|euros?|dollars?|pounds?|francs?)\\b))",
        NULL },
    [E_DATE] = {
        "\\b(\\d{4}-\\d{2}-\\d{2}|\\d{1,2}[./]\\d{1,2}[./](?:\\d{4}|\\d{2})|\\d{1,2}/\\d{1,2})\\b",
        "(?i)\\b(\\d{1,2}(?:st|nd|rd|th|er|\\.|º)?\\s+(?:of\\s+|de\\s+)?(?:" MONTHS ")\\b(?:\\.?,?\\s+(?:de\\s+)?\\d{4})?)",
        "(?i)\\b((?:" MONTHS ")\\s+\\d{1,2}(?:st|nd|rd|th)?\\b(?:,?\\s+\\d{4})?)",
        NULL },
};

struct span {
    size_t a, b;
    int kind;
    char *value;
};

static int span_cmp(const void *x, const void *y)
{
    const struct span *a = x, *b = y;
    return a->a < b->a ? -1 : a->a > b->a;
}

/* Collapse white space runs to one space and trim. */
static char *norm_value(const char *s, size_t n)
{
    struct candor_buf b = CANDOR_BUF_INIT;
    bool sp = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (candor__is_space(c)) {
            sp = b.len > 0;
            continue;
        }
        if (sp)
            candor__buf_putc(&b, ' ');
        sp = false;
        candor__buf_putc(&b, (char)c);
    }
    return candor__buf_steal(&b);
}

#define MAX_ENTITIES 64

static candor_status_t find_entities(const struct candor_triage_conf *tc, const char *text,
                                     size_t len, struct span **spans, size_t *ns)
{
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    if (!md || !mc) {
        pcre2_match_data_free(md);
        pcre2_match_context_free(mc);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    pcre2_set_match_limit(mc, 100000);
    pcre2_set_depth_limit(mc, 1000);
    candor_status_t st = CANDOR_OK;
    /* Every entity contains a digit, and its keyword (if any) comes at
     * most a few dozen bytes before it: skip the text before. */
    bool digit = false;
    size_t first = 0;
    for (size_t i = 0; i < len && !digit; i++)
        if (candor__is_digit((unsigned char)text[i])) {
            digit = true;
            first = i;
        }
    size_t start = first > 80 ? first - 80 : 0;
    while (start > 0 && ((unsigned char)text[start] & 0xC0) == 0x80)
        start--;
    for (int k = 0; digit && k < E_COUNT && st == CANDOR_OK; k++) {
        for (size_t p = 0; p < tc->n_ent[k] && st == CANDOR_OK; p++) {
            size_t off = start;
            for (int guard = 0; guard < 200 && off < len && *ns < MAX_ENTITIES; guard++) {
                int rc = pcre2_match(tc->ent[k][p], (PCRE2_SPTR)text, len, off, 0, md, mc);
                if (rc < 0)
                    break;
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                size_t a = ov[0], b = ov[1];
                if (rc >= 2 && ov[2] != PCRE2_UNSET) {
                    a = ov[2];
                    b = ov[3];
                }
                off = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
                bool overlap = false;
                for (size_t i = 0; i < *ns && !overlap; i++)
                    overlap = a < (*spans)[i].b && (*spans)[i].a < b;
                if (overlap || b <= a)
                    continue;
                struct span *nv = realloc(*spans, (*ns + 1) * sizeof *nv);
                if (!nv) {
                    st = candor__fail(CANDOR_ENOMEM, "out of memory");
                    break;
                }
                *spans = nv;
                nv[*ns].a = a;
                nv[*ns].b = b;
                nv[*ns].kind = k;
                nv[*ns].value = norm_value(text + a, b - a);
                if (!nv[*ns].value) {
                    st = candor__fail(CANDOR_ENOMEM, "out of memory");
                    break;
                }
                (*ns)++;
            }
        }
    }
    pcre2_match_data_free(md);
    pcre2_match_context_free(mc);
    if (*ns)
        qsort(*spans, *ns, sizeof **spans, span_cmp);
    return st;
}

/* Append the entities of TEXT to *V, skipping (kind, value) already there. */
static candor_status_t entities_add(const struct candor_triage_conf *tc, const char *text,
                                    struct candor_entity **v, size_t *n)
{
    if (!text || !tc)
        return CANDOR_OK;
    size_t len = strlen(text);
    if (len > CANDOR_MODEL_MAX_TEXT_BYTES) {
        len = CANDOR_MODEL_MAX_TEXT_BYTES;
        while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
            len--;
    }
    struct span *sp = NULL;
    size_t ns = 0;
    candor_status_t st = find_entities(tc, text, len, &sp, &ns);
    for (size_t i = 0; i < ns; i++) {
        bool dup = false;
        for (size_t j = 0; j < *n && !dup; j++)
            dup = strcmp((*v)[j].kind, entity_names[sp[i].kind]) == 0 &&
                  strcmp((*v)[j].value, sp[i].value) == 0;
        if (dup || st != CANDOR_OK || *n >= MAX_ENTITIES) {
            free(sp[i].value);
            continue;
        }
        struct candor_entity *nv = realloc(*v, (*n + 1) * sizeof *nv);
        if (!nv) {
            free(sp[i].value);
            st = candor__fail(CANDOR_ENOMEM, "out of memory");
            continue;
        }
        *v = nv;
        nv[*n].kind = entity_names[sp[i].kind];
        nv[*n].value = sp[i].value;
        (*n)++;
    }
    free(sp);
    return st;
}

void candor__entities_free(struct candor_entity *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i].value);
    free(v);
}

candor_status_t candor__entities_find(const struct candor_ctx *ctx, const char *text,
                                      struct candor_entity **out, size_t *n)
{
    if (!out || !n)
        return candor__fail(CANDOR_EINVAL, "entities_find: no output");
    *out = NULL;
    *n = 0;
    if (!ctx || !ctx->triage)
        return candor__fail(CANDOR_EINVAL, "entities_find: no context");
    candor_status_t st = entities_add(ctx->triage, text, out, n);
    if (st != CANDOR_OK) {
        candor__entities_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return st;
}

const struct candor_entity *candor__result_entities(const struct candor_result *res, size_t *n)
{
    *n = res ? res->n_ents : 0;
    return res ? res->ents : NULL;
}

/* ------------------------------------------------------------------ */
/* Configuration                                                        */
/* ------------------------------------------------------------------ */

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}


static uint32_t word_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

static unsigned word_kinds(const struct candor_triage_conf *tc, const char *w)
{
    const struct wordmap *m = &tc->map;
    if (!m->mask)
        return 0;
    for (size_t i = word_hash(w) & m->mask;; i = (i + 1) & m->mask) {
        if (!m->word[i])
            return 0;
        if (strcmp(m->word[i], w) == 0)
            return m->kinds[i];
    }
}

static bool wordmap_build(struct candor_triage_conf *tc)
{
    size_t total = 0;
    for (int k = 0; k < W_COUNT; k++)
        total += tc->words[k].n;
    size_t ts = 16;
    while (ts < total * 2)
        ts <<= 1;
    tc->map.word = calloc(ts, sizeof *tc->map.word);
    tc->map.kinds = calloc(ts, sizeof *tc->map.kinds);
    if (!tc->map.word || !tc->map.kinds)
        return false;
    tc->map.mask = ts - 1;
    for (int k = 0; k < W_COUNT; k++)
        for (size_t j = 0; j < tc->words[k].n; j++) {
            const char *w = tc->words[k].v[j];
            size_t i = word_hash(w) & tc->map.mask;
            while (tc->map.word[i] && strcmp(tc->map.word[i], w) != 0)
                i = (i + 1) & tc->map.mask;
            tc->map.word[i] = tc->words[k].v[j];   /* borrowed from the lists */
            tc->map.kinds[i] |= 1u << k;
        }
    return true;
}

static bool ws_add_list(struct wordset *w, const char *list)
{
    const char *p = list;
    while (*p) {
        while (*p && candor__is_space((unsigned char)*p))
            p++;
        const char *s = p;
        while (*p && !candor__is_space((unsigned char)*p))
            p++;
        if (p == s)
            break;
        char *f = candor__utf8_fold(s, (size_t)(p - s));
        if (!f)
            return false;
        for (char *q = f; *q; q++)   /* typographic apostrophe as ASCII */
            if ((unsigned char)q[0] == 0xE2 && (unsigned char)q[1] == 0x80 && (unsigned char)q[2] == 0x99) {
                q[0] = '\'';
                memmove(q + 1, q + 3, strlen(q + 3) + 1);
            }
        if (w->n == w->cap) {
            size_t nc = w->cap ? w->cap * 2 : 64;
            char **nv = realloc(w->v, nc * sizeof *nv);
            if (!nv) {
                free(f);
                return false;
            }
            w->v = nv;
            w->cap = nc;
        }
        w->v[w->n++] = f;
    }
    return true;
}

void candor__triage_conf_free(struct candor_triage_conf *tc)
{
    if (!tc)
        return;
    for (int k = 0; k < W_COUNT; k++) {
        for (size_t i = 0; i < tc->words[k].n; i++)
            free(tc->words[k].v[i]);
        free(tc->words[k].v);
    }
    free(tc->map.word);
    free(tc->map.kinds);
    for (int k = 0; k < E_COUNT; k++)
        for (size_t i = 0; i < tc->n_ent[k]; i++)
            pcre2_code_free(tc->ent[k][i]);
    free(tc);
}

candor_status_t candor__triage_load(struct candor_ctx *ctx, struct _xmlNode *section)
{
    struct candor_triage_conf *tc = calloc(1, sizeof *tc);
    if (!tc)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    ctx->triage = tc;
    const char *file = ctx->config_path;
    if (!candor__config_attr_double(section, "sentiment-positive", 1.5, &tc->pos_thr, file) ||
        !candor__config_attr_double(section, "sentiment-negative", -1.5, &tc->neg_thr, file) ||
        !candor__config_attr_double(section, "urgency-threshold", 1.0, &tc->urg_thr, file) ||
        !candor__config_attr_double(section, "churn-threshold", 1.0, &tc->churn_thr, file))
        return CANDOR_ECONFIG;
    for (int c = 0; c < CANDOR_N_INTENTS; c++)
        tc->intent_urgency[c] = -1;
    for (xmlNodePtr n = candor__config_child(section, "intent"); n; n = candor__config_next(n)) {
        char *name = candor__config_attr(n, "name");
        int c = candor__name_index(candor__intent_names, CANDOR_N_INTENTS, name);
        free(name);
        if (c < 0)
            return candor__config_fail(file, n, "intent: unknown name");
        char *u = candor__config_attr(n, "urgency");
        if (u) {
            tc->intent_urgency[c] = candor__name_index(candor__urgency_names, CANDOR_N_URGENCY, u);
            free(u);
            if (tc->intent_urgency[c] < 0)
                return candor__config_fail(file, n, "intent: unknown urgency");
        }
        if (!candor__config_attr_double(n, "sentiment", 0, &tc->intent_sentiment[c], file) ||
            !candor__config_attr_double(n, "churn", 0, &tc->intent_churn[c], file))
            return CANDOR_ECONFIG;
    }
    static const char *const kinds[] = { "positive", "negative", "negator", "intensifier",
                                         "frustration" };
    for (xmlNodePtr n = candor__config_child(section, "words"); n; n = candor__config_next(n)) {
        char *kind = candor__config_attr(n, "kind");
        char *lang = candor__config_attr(n, "lang");
        int k = candor__name_index(kinds, 5, kind);
        if (kind && strcmp(kind, "stopword") == 0) {
            int l = candor__name_index(lang_names, N_LANG, lang);
            k = l < 0 ? -2 : W_STOP_EN + l;
        }
        free(kind);
        free(lang);
        if (k == -2)
            return candor__config_fail(file, n, "words kind=\"stopword\" needs lang en, fr, de or es");
        if (k < 0)
            return candor__config_fail(file, n, "words: unknown kind");
        char *t = candor__config_text(n);
        bool ok = !t || ws_add_list(&tc->words[k], t);
        free(t);
        if (!ok)
            return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    for (int k = 0; k < W_COUNT; k++)
        if (tc->words[k].n)
            qsort(tc->words[k].v, tc->words[k].n, sizeof *tc->words[k].v, str_cmp);
    if (!wordmap_build(tc))
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    for (int k = 0; k < E_COUNT; k++)
        for (size_t i = 0; entity_patterns[k][i]; i++) {
            pcre2_code *code = candor__rules_compile_opts(entity_patterns[k][i], false, false);
            if (!code)
                return candor__fail(CANDOR_ERROR, "entity pattern %s/%zu: %s", entity_names[k], i,
                                    candor_errmsg());
            tc->ent[k][tc->n_ent[k]++] = code;
        }
    return CANDOR_OK;
}

/* ------------------------------------------------------------------ */
/* Sentiment and language                                               */
/* ------------------------------------------------------------------ */

#define TOKMAX 48

/* Next word of S (original case) at *POS: folded into TOK, *CAPS set when
 * it is written in capitals (3 letters or more). Returns the folded length,
 * 0 at the end. *BREAK is set when a clause boundary (.,;:!? or a line
 * break) came before the word; *BANGS counts '!' seen. */
static size_t sent_token(const char *s, size_t len, size_t *pos, char *tok, bool *caps,
                         bool *brk, int *bangs, int *accents, size_t *letters, size_t *uppers)
{
    size_t i = *pos;
    *brk = false;
    int run = 0;
    while (i < len) {
        uint32_t cp;
        size_t k = 1;
        unsigned char c0 = (unsigned char)s[i];
        if (c0 < 0x80) {   /* ASCII: no decoding */
            if (candor__is_alnum(c0) || c0 == '_')
                break;
            cp = c0;
        } else {
            k = candor__utf8_decode(s + i, len - i, &cp);
            if (candor__unicode_is_wordchar(cp))
                break;
        }
        if (cp == '!') {
            if (++run >= 2)
                (*bangs)++;
        } else {
            run = 0;
        }
        if (cp == '.' || cp == ',' || cp == ';' || cp == ':' || cp == '!' || cp == '?' ||
            cp == '\n' || cp == 0xBF || cp == 0xA1)
            *brk = true;
        i += k;
    }
    size_t n = 0, upper = 0, lower = 0;
    while (i < len) {
        unsigned char c0 = (unsigned char)s[i];
        if (c0 < 0x80 && c0 != '\'') {   /* ASCII: the same steps, inline */
            if (!candor__is_alnum(c0) && c0 != '_')
                break;
            if (c0 >= 'A' && c0 <= 'Z') {
                upper++;
                c0 += 32;
            } else if (c0 >= 'a') {
                lower++;
            }
            if (n + 1 < TOKMAX)
                tok[n++] = (char)c0;
            i++;
            continue;
        }
        uint32_t cp;
        size_t k = candor__utf8_decode(s + i, len - i, &cp);
        if ((cp == '\'' || cp == 0x2019) && n > 0 && i + k < len) {
            uint32_t nx;
            candor__utf8_decode(s + i + k, len - i - k, &nx);
            if (candor__unicode_is_wordchar(nx)) {
                if (n + 1 < TOKMAX)
                    tok[n++] = '\'';
                i += k;
                continue;
            }
        }
        if (!candor__unicode_is_wordchar(cp))
            break;
        uint32_t f = candor__unicode_fold(cp);
        if (f != cp)
            upper++;
        else if (cp >= 'a')
            lower++;
        if (cp >= 0xC0 && cp < 0x250)
            (*accents)++;
        char enc[4];
        size_t el = candor__utf8_encode(f, enc);
        if (n + el < TOKMAX) {
            memcpy(tok + n, enc, el);
            n += el;
        }
        i += k;
    }
    *pos = i;
    tok[n] = '\0';
    *caps = upper >= 3 && lower == 0;
    *letters += upper + lower;
    *uppers += upper;
    return n;
}

static bool is_negator(unsigned kinds, const char *t, size_t n)
{
    if (kinds & (1u << W_NEGATOR))
        return true;
    return n > 3 && strcmp(t + n - 3, "n't") == 0;
}

struct textsig {
    double sentiment;
    double frustration;  /* signs of a problem dragging on: "again", "nobody", "weeks" */
    size_t letters, upper;
    int lang_hits[N_LANG];
    int accents;
    int bangs;
    struct candor_strv *why;   /* explain: the words that counted */
};

static void sentiment_pass(const struct candor_triage_conf *tc, const char *s, struct textsig *sig)
{
    if (!s)
        return;
    size_t len = strlen(s);
    if (len > CANDOR_MODEL_MAX_TEXT_BYTES) {
        len = CANDOR_MODEL_MAX_TEXT_BYTES;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
    }
    char tok[TOKMAX];
    size_t pos = 0, n;
    bool caps, brk;
    int since_neg = 100, since_int = 100, count = 0;
    while ((n = sent_token(s, len, &pos, tok, &caps, &brk, &sig->bangs, &sig->accents,
                           &sig->letters, &sig->upper)) > 0 &&
           count++ < 3000) {
        if (brk) {
            since_neg = 100;
            since_int = 100;
        }
        unsigned kinds = word_kinds(tc, tok);
        for (int l = 0; l < N_LANG; l++)
            if (kinds & (1u << (W_STOP_EN + l)))
                sig->lang_hits[l]++;
        since_neg++;
        since_int++;
        if (is_negator(kinds, tok, n)) {
            since_neg = 0;
            continue;
        }
        if (kinds & (1u << W_INTENS)) {
            since_int = 0;
            if (caps)
                since_int = -1;   /* "VERY": stronger still */
            continue;
        }
        if (kinds & (1u << W_FRUST)) {
            sig->frustration += 1;
            if (sig->why) {
                char w[120];
                snprintf(w, sizeof w, "%s (frustration)", tok);
                candor__strv_push(sig->why, w);
            }
        }
        int pol = (kinds & (1u << W_POS)) ? 1 : (kinds & (1u << W_NEG)) ? -1 : 0;
        if (!pol)
            continue;
        double v = pol;
        if (since_int <= 2)
            v *= since_int < 0 ? 2.2 : 1.8;
        if (caps)
            v *= 1.8;
        if (since_neg <= 3)
            v = -0.8 * v;   /* "not happy" < 0; "not bad" mildly > 0 */
        sig->sentiment += v;
        if (sig->why) {
            char w[120];
            snprintf(w, sizeof w, "%s%s %+.2f", since_neg <= 3 ? "not " : "", tok, v);
            candor__strv_push(sig->why, w);
        }
    }
}

/* Written in capitals: at least 30 letters, 60% of them capitals. */
static bool shouting(const char *subject, const char *body)
{
    size_t letters = 0, upper = 0;
    const char *parts[2] = { subject, body };
    for (int k = 0; k < 2; k++) {
        const char *s = parts[k];
        size_t len = s ? strlen(s) : 0;
        if (len > CANDOR_MODEL_MAX_TEXT_BYTES)
            len = CANDOR_MODEL_MAX_TEXT_BYTES;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c >= 'A' && c <= 'Z') {
                upper++;
                letters++;
            } else if (c >= 'a' && c <= 'z') {
                letters++;
            }
        }
    }
    return letters >= 30 && upper * 10 >= letters * 6;
}

/* The sentiment score of the subject and new text without the intent's
 * bias: lexicon (negation, intensity, capitals), frustration signs, a mail
 * in capitals, sentiment rules, "!!". */
static double sentiment_signal(const struct candor_triage_conf *tc, const char *subject,
                               const char *body, const struct candor_rule_scores *rs,
                               struct candor_strv *why, struct textsig *sig)
{
    memset(sig, 0, sizeof *sig);
    sig->why = why;
    if (tc) {
        sentiment_pass(tc, subject, sig);
        sentiment_pass(tc, body, sig);
    }
    double s = sig->sentiment + rs->sentiment[2] - rs->sentiment[0];
    /* signs of a problem dragging on count half a negative word each, at
     * most two words' worth */
    s -= 0.5 * (sig->frustration > 4 ? 4 : sig->frustration);
    /* a mail written in capitals is shouting */
    if (sig->letters >= 30 && sig->upper * 10 >= sig->letters * 6)
        s -= 2;
    if (sig->bangs > 0)
        s *= 1.3;
    return s;
}

double candor__triage_sentiment_signal(const struct candor_ctx *ctx, const char *subject,
                                       const char *body, const struct candor_rule_scores *rs)
{
    struct textsig sig;
    return sentiment_signal(ctx ? ctx->triage : NULL, subject, body, rs, NULL, &sig);
}

static const char *detect_language(const struct textsig *sig)
{
    int best = 0;
    double score[N_LANG];
    for (int l = 0; l < N_LANG; l++)
        score[l] = sig->lang_hits[l];
    /* accented letters are rare in English */
    if (sig->accents > 0)
        score[0] -= 0.5 * sig->accents;
    for (int l = 1; l < N_LANG; l++)
        if (score[l] > score[best])
            best = l;
    return score[best] > 0 ? lang_names[best] : "en";
}

/* ------------------------------------------------------------------ */
/* Triage                                                              */
/* ------------------------------------------------------------------ */

static size_t cut(const char *s, size_t max)
{
    size_t len = strlen(s);
    if (len <= max)
        return len;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

void candor_result_free(struct candor_result *res)
{
    if (!res)
        return;
    candor__entities_free(res->ents, res->n_ents);
    if (res->explain)
        json_object_put(res->explain);
    free(res);
}

static struct json_object *jnum(double v, int decimals)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.*f", decimals, v);
    /* shortest form: 0.8700 -> 0.87, 1.0000 -> 1.0 */
    char *dot = strchr(buf, '.');
    if (dot) {
        char *e = buf + strlen(buf) - 1;
        while (e > dot + 1 && *e == '0')
            *e-- = '\0';
    }
    return json_object_new_double_s(v, buf);
}

struct explain_feat {
    const char *text;
    double w;
};

static int feat_cmp(const void *a, const void *b)
{
    double x = ((const struct explain_feat *)a)->w, y = ((const struct explain_feat *)b)->w;
    return x < y ? 1 : x > y ? -1 : 0;
}

static candor_status_t build_explain(const struct candor_ctx *ctx, struct candor_result *res,
                                     const struct candor_rule_scores *rs,
                                     const struct candor_features *f, const double *logit,
                                     const struct candor_strv *words, double sent_total)
{
    struct json_object *ex = json_object_new_object();
    struct json_object *rules = json_object_new_array();
    if (!ex || !rules) {
        json_object_put(ex);
        json_object_put(rules);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    json_object_object_add(ex, "rules", rules);
    for (size_t i = 0; i < rs->n_hits; i++) {
        struct json_object *r = json_object_new_object();
        json_object_object_add(r, "id", json_object_new_string(candor__rule_id(ctx, rs->hits[i])));
        json_object_object_add(r, "effect",
                               json_object_new_string(candor__rule_effect(ctx, rs->hits[i])));
        json_object_array_add(rules, r);
    }
    struct json_object *feats = json_object_new_array();
    json_object_object_add(ex, "features", feats);
    if (ctx->model && f->n) {
        struct explain_feat *v = malloc(f->n * sizeof *v);
        if (v) {
            size_t n = 0;
            for (size_t i = 0; i < f->n; i++) {
                double w = candor__model_feature_weight(ctx->model, f->h[i], res->intent);
                if (w > 0 && f->text && f->text[i])
                    v[n++] = (struct explain_feat){ f->text[i], w };
            }
            qsort(v, n, sizeof *v, feat_cmp);
            for (size_t i = 0; i < n && i < 8; i++) {
                struct json_object *o = json_object_new_object();
                json_object_object_add(o, "feature", json_object_new_string(v[i].text));
                json_object_object_add(o, "weight", jnum(v[i].w, 3));
                json_object_array_add(feats, o);
            }
            free(v);
        }
    }
    struct json_object *parts = json_object_new_object();
    json_object_object_add(ex, "intent_parts", parts);
    for (int c = 0; c < CANDOR_N_INTENTS; c++) {
        if (rs->intent[c] == 0 && c != res->intent)
            continue;
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "model", jnum(ctx->model ? logit[c] : 0, 3));
        json_object_object_add(o, "rules", jnum(rs->intent[c], 3));
        json_object_object_add(parts, candor__intent_names[c], o);
    }
    json_object_object_add(ex, "model", json_object_new_boolean(ctx->model != NULL));
    struct json_object *sw = json_object_new_array();
    for (size_t i = 0; words && i < words->n; i++)
        json_object_array_add(sw, json_object_new_string(words->v[i]));
    json_object_object_add(ex, "sentiment_words", sw);
    json_object_object_add(ex, "sentiment_score", jnum(sent_total, 3));
    json_object_object_add(ex, "churn_score", jnum(rs->churn, 3));
    json_object_object_add(ex, "language", json_object_new_string(res->lang ? res->lang : "en"));
    res->explain = ex;
    return CANDOR_OK;
}

candor_status_t candor_triage(struct candor_result **out, const struct candor_ctx *ctx,
                              const struct candor_message *msg, struct candor_store *store,
                              const candor_envelope_t *env, unsigned int flags)
{
    if (!out)
        return candor__fail(CANDOR_EINVAL, "triage: no output pointer");
    *out = NULL;
    if (!ctx || !msg)
        return candor__fail(CANDOR_EINVAL, "triage: no context or message");
    if (ctx->parse_only)
        return candor__fail(CANDOR_EINVAL, "triage: the context was opened for parsing only");
    const struct candor_triage_conf *tc = ctx->triage;
    bool explain = (flags & CANDOR_TRIAGE_EXPLAIN) != 0;
    struct candor_result *res = calloc(1, sizeof *res);
    if (!res)
        return candor__fail(CANDOR_ENOMEM, "out of memory");

    const char *subject = msg->subject ? msg->subject : "";
    const char *body = msg->new_text ? msg->new_text : msg->text ? msg->text : "";
    char *fsub = candor__utf8_fold(subject, cut(subject, 1024));
    char *fbody = candor__utf8_fold(body, cut(body, CANDOR_MODEL_MAX_TEXT_BYTES));
    struct candor_features f;
    memset(&f, 0, sizeof f);
    struct candor_rule_scores rs;
    memset(&rs, 0, sizeof rs);
    struct candor_strv why = CANDOR_STRV_INIT;
    candor_status_t st = (fsub && fbody) ? CANDOR_OK : candor__fail(CANDOR_ENOMEM, "out of memory");
    if (st == CANDOR_OK)
        st = candor__features(fsub, fbody, CANDOR_MODEL_MAX_TEXT_BYTES, explain, &f);
    if (st == CANDOR_OK) {
        /* The folded subject is cut to 1 KiB: a longer one is folded
         * whole by the rules (a subject rule reads up to max-match-bytes). */
        struct candor_rule_input in = { subject, body, msg->text ? msg->text : body,
                                        strlen(subject) <= 1024 ? fsub : NULL, fbody, NULL, msg };
        st = candor__rules_apply(ctx, &in, explain, &rs);
        res->n_limited = rs.n_limited;
    }
    double logit[CANDOR_N_INTENTS] = {0};
    double sent_total = 0;
    if (st == CANDOR_OK) {
        candor__model_logits(ctx->model, &f, logit);
        candor__model_combine(ctx->model, logit, rs.intent, res->scores);
        res->intent = 0;
        for (int c = 1; c < CANDOR_N_INTENTS; c++)
            if (res->scores[c] > res->scores[res->intent])
                res->intent = c;
        res->confidence = res->scores[res->intent];

        /* urgency; a mail in capitals counts as half an urgency cue */
        double thr = tc ? tc->urg_thr : 1.0;
        if (shouting(subject, body))
            rs.urgency[2] += 0.6;
        if (rs.urgency[3] >= thr)
            res->urgency = 3;
        else if (rs.urgency[2] >= thr)
            res->urgency = 2;
        else if (rs.urgency[0] >= thr)
            res->urgency = 0;
        else if (tc && tc->intent_urgency[res->intent] >= 0)
            res->urgency = tc->intent_urgency[res->intent];
        else
            res->urgency = 1;

        /* sentiment and language */
        struct textsig sig;
        double s = sentiment_signal(tc, subject, body, &rs, explain ? &why : NULL, &sig);
        double x[CANDOR_HEAD_MAX_INPUTS], hp[CANDOR_N_URGENCY];
        bool head = false;
        candor__head_inputs(CANDOR_HEAD_SENTIMENT, &rs, s, res->intent, x);
        if (candor__model_head(ctx->model, CANDOR_HEAD_SENTIMENT, &f, x, hp)) {
            head = true;
            res->sentiment = 0;
            for (int k = 1; k < CANDOR_N_SENTIMENT; k++)
                if (hp[k] > hp[res->sentiment])
                    res->sentiment = k;
        }
        s += tc ? tc->intent_sentiment[res->intent] : 0;
        sent_total = s;
        if (head)
            ;
        else if (s >= (tc ? tc->pos_thr : 1.5))
            res->sentiment = 2;
        else if (s <= (tc ? tc->neg_thr : -1.5))
            res->sentiment = 0;
        else
            res->sentiment = 1;

        /* urgency: a rule score at the threshold decides (critical, then
         * high, then low); otherwise the trained head when the model has
         * one, else the intent's default */
        candor__head_inputs(CANDOR_HEAD_URGENCY, &rs, s, res->intent, x);
        if (candor__model_head(ctx->model, CANDOR_HEAD_URGENCY, &f, x, hp)) {
            int u = 0;
            for (int k = 1; k < CANDOR_N_URGENCY; k++)
                if (hp[k] > hp[u])
                    u = k;
            /* strong rule evidence wins; otherwise the head */
            if (rs.urgency[3] >= thr)
                u = 3;
            else if (rs.urgency[2] >= thr)
                u = 2;
            else if (rs.urgency[0] >= thr)
                u = 0;
            res->urgency = u;
        }
        res->lang = detect_language(&sig);

        /* churn */
        double ch = rs.churn + (tc ? tc->intent_churn[res->intent] : 0);
        res->churn = ch >= (tc ? tc->churn_thr : 1.0);
    }
    if (st == CANDOR_OK && tc) {
        st = entities_add(tc, subject, &res->ents, &res->n_ents);
        if (st == CANDOR_OK)
            st = entities_add(tc, body, &res->ents, &res->n_ents);
    }
    if (st == CANDOR_OK) {
        const char *reason = candor__autoreply_decide(ctx, msg, store, env, NULL);
        if (!reason) {
            st = CANDOR_ETEMPFAIL;   /* the store failed; its message is set */
        } else {
            res->reason = reason;
            res->send = strcmp(reason, "ok") == 0;
        }
    }
    if (st == CANDOR_OK && explain)
        st = build_explain(ctx, res, &rs, &f, logit, &why, sent_total);
    free(fsub);
    free(fbody);
    candor__features_free(&f);
    candor__rule_scores_free(&rs);
    candor__strv_free(&why);
    if (st != CANDOR_OK) {
        candor_result_free(res);
        return st;
    }
    *out = res;
    return CANDOR_OK;
}

const char *candor_result_intent(const struct candor_result *res)
{
    return res ? candor__intent_names[res->intent] : NULL;
}
double candor_result_confidence(const struct candor_result *res) { return res ? res->confidence : 0; }
const char *candor_result_urgency(const struct candor_result *res)
{
    return res ? candor__urgency_names[res->urgency] : NULL;
}
const char *candor_result_sentiment(const struct candor_result *res)
{
    return res ? candor__sentiment_names[res->sentiment] : NULL;
}
int candor_result_churn_risk(const struct candor_result *res) { return res ? res->churn : 0; }
const char *candor_result_language(const struct candor_result *res) { return res ? res->lang : NULL; }
int candor_result_autoreply_send(const struct candor_result *res) { return res ? res->send : 0; }
const char *candor_result_autoreply_reason(const struct candor_result *res)
{
    return res ? res->reason : NULL;
}

candor_status_t candor_result_to_json(const struct candor_result *res,
                                      const struct candor_message *msg, const char *file,
                                      char **json)
{
    if (!json)
        return candor__fail(CANDOR_EINVAL, "result_to_json: no output pointer");
    *json = NULL;
    if (!res || !msg)
        return candor__fail(CANDOR_EINVAL, "result_to_json: no result or message");
    struct json_object *o = candor__message_json(msg, file, false);
    if (!o)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    json_object_object_add(o, "intent", json_object_new_string(candor__intent_names[res->intent]));
    json_object_object_add(o, "confidence", jnum(res->confidence, 4));
    struct json_object *sc = json_object_new_object();
    for (int c = 0; c < CANDOR_N_INTENTS; c++)
        json_object_object_add(sc, candor__intent_names[c], jnum(res->scores[c], 4));
    json_object_object_add(o, "scores", sc);
    json_object_object_add(o, "urgency", json_object_new_string(candor__urgency_names[res->urgency]));
    json_object_object_add(o, "sentiment",
                           json_object_new_string(candor__sentiment_names[res->sentiment]));
    json_object_object_add(o, "churn_risk", json_object_new_boolean(res->churn));
    struct json_object *ents = json_object_new_array();
    for (size_t i = 0; i < res->n_ents; i++) {
        struct json_object *e = json_object_new_object();
        json_object_object_add(e, "kind", json_object_new_string(res->ents[i].kind));
        json_object_object_add(e, "value", json_object_new_string(res->ents[i].value));
        json_object_array_add(ents, e);
    }
    json_object_object_add(o, "entities", ents);
    struct json_object *ar = json_object_new_object();
    json_object_object_add(ar, "send", json_object_new_boolean(res->send));
    json_object_object_add(ar, "reason", json_object_new_string(res->reason ? res->reason : "ok"));
    json_object_object_add(o, "autoreply", ar);
    if (res->explain)
        json_object_object_add(o, "explain", json_object_get(res->explain));
    /* A regular-expression bomb is no error of the message, but the reader
     * of the result must learn that some rules could not decide. */
    struct json_object *errs;
    if (res->n_limited && json_object_object_get_ex(o, "errors", &errs) &&
        json_object_is_type(errs, json_type_array)) {
        char line[160];
        snprintf(line, sizeof line, "rules: %zu pattern match%s stopped at the PCRE2 "
                 "match/depth limit (counted as no match)", res->n_limited,
                 res->n_limited == 1 ? "" : "es");
        json_object_array_add(errs, json_object_new_string(line));
    }
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                   JSON_C_TO_STRING_NOSLASHESCAPE);
    *json = s ? candor__strdup(s) : NULL;
    json_object_put(o);
    return *json ? CANDOR_OK : candor__fail(CANDOR_ENOMEM, "out of memory");
}

/* The header block of RES with TICKET (may be NULL) and the auto-reply
 * decision SEND, REASON (REASON NULL: "ok"). */
static candor_status_t header_block(const struct candor_result *res, const char *ticket,
                                    bool send, const char *reason, const char *eol, char **out)
{
    if (!out)
        return candor__fail(CANDOR_EINVAL, "result_headers: no output pointer");
    *out = NULL;
    if (!res)
        return candor__fail(CANDOR_EINVAL, "result_headers: no result");
    if (!eol)
        eol = "\n";
    if (strcmp(eol, "\n") != 0 && strcmp(eol, "\r\n") != 0)
        return candor__fail(CANDOR_EINVAL, "result_headers: eol must be \"\\n\" or \"\\r\\n\"");
    if (ticket) {
        for (const char *p = ticket; *p; p++)
            if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
                return candor__fail(CANDOR_EINVAL, "result_headers: bad ticket");
    }
    struct candor_buf b = CANDOR_BUF_INIT;
    candor__buf_printf(&b, "X-Candor-Intent: %s%s", candor__intent_names[res->intent], eol);
    candor__buf_printf(&b, "X-Candor-Confidence: %.2f%s", res->confidence, eol);
    candor__buf_printf(&b, "X-Candor-Urgency: %s%s", candor__urgency_names[res->urgency], eol);
    candor__buf_printf(&b, "X-Candor-Sentiment: %s%s", candor__sentiment_names[res->sentiment], eol);
    candor__buf_printf(&b, "X-Candor-Churn-Risk: %s%s", res->churn ? "yes" : "no", eol);
    if (ticket && *ticket)
        candor__buf_printf(&b, "X-Candor-Ticket: %s%s", ticket, eol);
    candor__buf_printf(&b, "X-Candor-Autoreply: %s; reason=%s%s", send ? "yes" : "no",
                       reason ? reason : "ok", eol);
    if (b.oom) {
        candor__buf_free(&b);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    *out = candor__buf_steal(&b);
    return *out ? CANDOR_OK : candor__fail(CANDOR_ENOMEM, "out of memory");
}

candor_status_t candor_result_headers(const struct candor_result *res, const char *ticket,
                                      const char *eol, char **out)
{
    return header_block(res, ticket, res && res->send, res ? res->reason : NULL, eol, out);
}

candor_status_t candor_result_headers_ack(const struct candor_result *res,
                                          const struct candor_ack *ack, const char *eol,
                                          char **out)
{
    if (!ack)
        return candor_result_headers(res, NULL, eol, out);
    const char *ticket = candor_ack_ticket(ack);
    return header_block(res, ticket && *ticket ? ticket : NULL, candor_ack_send(ack) != 0,
                        candor_ack_reason(ack), eol, out);
}
