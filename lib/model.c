/*
 * model.c — the statistical intent classifier: features, scoring, the
 * model file, and training (struct candor_trainer).
 *
 * Features. The subject and the new text (quoted history and signature
 * already removed by the parser) are case-folded (candor__utf8_fold, so
 * "ÉCHEC" and "échec" are one word), cut to CANDOR_MODEL_MAX_TEXT_BYTES, and
 * split into words: runs of Unicode letters and digits, an apostrophe inside
 * a word kept ("don't", "l'adresse" -> "l", "adresse" is not done: "l'adresse"
 * stays one token, and its parts are added too). Numbers become a shape
 * ("#5" for five digits, "#a" for a letter-digit code such as A12345). The
 * features are: every word ("u:"), every pair of adjacent words ("b:"), and
 * every subject word once more ("s:"); function words of the four
 * languages are left out (a fixed list, part of the format). Features are hashed with FNV-1a to 2^20 buckets,
 * and counted once per message (binary presence). Extraction costs no
 * allocation per token: ASCII is classified inline, stop words are one
 * integer-keyed table probe, FNV runs over each token once per feature
 * (the prefixes and "b:PREV " are carried as running hashes), and the
 * hashes are sorted by two 10-bit counting passes.
 *
 * Classifier. Multinomial naive Bayes with additive smoothing ALPHA over the
 * features seen in training and uniform class priors (so a class with many
 * training rows is not favoured). The logit of intent c is
 *     L_c = sum over features f of the message known to the model of
 *           log((n_fc + alpha) / (N_c + alpha * V))
 * and triage turns logits and rule scores R_c (the sum of the weights of
 * the matching rules for c, rules.c) into probabilities:
 *     p_c = softmax_c(L_c / T + S * R_c)
 * T (temperature) and S (rule scale) are fitted when training: the training
 * set is split into 5 stratified folds, each fold is scored by a model
 * trained on the other four, and T and S minimise the negative
 * log-likelihood of those held-out predictions (ALPHA is picked the same
 * way, by held-out macro-F1). So "confidence 0.9" is right about 9 times in
 * 10 on mail like the training mail; the reliability table is in the
 * training report (candor train prints it).
 *
 * Model file format, version 1 (UTF-8 text, one record a line, '#' starts a
 * comment line):
 *     candor-model 1
 *     buckets 1048576                    number of hash buckets (power of 2)
 *     classes complaint refund ...       the ten intents, in this order
 *     alpha 0.1
 *     temperature 9.5
 *     rule-scale 0.8
 *     totals N_0 ... N_9                 feature counts per class
 *     f BUCKET c:n c:n ...               per feature: its counts per class
 *                                        (classes by index; absent = 0)
 * Unknown keywords are an error (a newer format must change the version).
 * Readers refuse another version with CANDOR_ECONFIG.
 *
 * Limits: model files up to 64 MiB, at most 4,000,000 features.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/tree.h>
#include "ctx.h"
#include "model.h"
#include "message.h"
#include "triage.h"

#define MODEL_BUCKETS (1u << 20)
#define MAX_MODEL_BYTES (64u << 20)
#define MAX_FEATURES 4000000u
#define MAX_TOKEN_BYTES 48u
#define MAX_TOKENS 4000u
#define N_FOLDS 5

#define MAX_HK 4
static const int head_K[CANDOR_N_HEADS] = { CANDOR_N_URGENCY, CANDOR_N_SENTIMENT };
static const int head_D[CANDOR_N_HEADS] = { CANDOR_N_URGENCY + CANDOR_N_INTENTS, 1 + CANDOR_N_INTENTS };
static const char *const head_names[CANDOR_N_HEADS] = { "urgency", "sentiment" };

/* A naive Bayes over the same features for one attribute, and its
 * combination z_k = invT * L_k + sum_j W[k][j] x_j + b_k. */
struct head {
    bool present;
    size_t n;
    uint32_t *keys;
    float *dev;          /* n * K */
    int32_t *tab;
    size_t tab_mask;
    double alpha, invT;
    double W[MAX_HK][CANDOR_HEAD_MAX_INPUTS];
    double b[MAX_HK];
};

struct candor_model {
    struct head heads[CANDOR_N_HEADS];
    float *hdev[CANDOR_N_HEADS];   /* head deviations aligned with keys (n * K) */
    uint32_t mask;
    size_t n;            /* features */
    uint32_t *keys;
    float *logp;         /* n * CANDOR_N_INTENTS */
    float *dev;          /* n * CANDOR_N_INTENTS: logp minus the mean over classes */
    int32_t *tab;        /* open addressing: index into keys, -1 empty */
    size_t tab_mask;
    double alpha, temperature, rule_scale;
    /* the combination: z_c = L_c / T + sum_j W[c][j] R_j + b_c */
    double W[CANDOR_N_INTENTS][CANDOR_N_INTENTS];
    double bias[CANDOR_N_INTENTS];
    bool have_W;
};

struct calib {
    double invT;
    double W[CANDOR_N_INTENTS][CANDOR_N_INTENTS];
    double b[CANDOR_N_INTENTS];
};

static void calib_simple(struct calib *k, double T, double S)
{
    memset(k, 0, sizeof *k);
    k->invT = 1.0 / T;
    for (int c = 0; c < CANDOR_N_INTENTS; c++)
        k->W[c][c] = S;
}

/* ------------------------------------------------------------------ */
/* Features                                                            */
/* ------------------------------------------------------------------ */

static uint32_t fnv(uint32_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

struct ftmp {
    uint32_t h;
    char *text;
};

/* The features of one message while they are collected: hashes only
 * (H, the usual case), or hashes with their text (V, for explain). */
struct fbuild {
    struct ftmp *v;
    uint32_t *h;
    size_t n, cap;
    bool with_text;
    bool oom;
};

#define FNV_BASIS 2166136261u

/* Add the feature PREFIX A [" " C] whose hash is H (FNV-1a of that text). */
static void feat_add(struct fbuild *b, uint32_t h, const char *prefix, const char *a, size_t alen,
                     const char *c, size_t clen)
{
    if (b->oom)
        return;
    if (!b->with_text) {
        if (b->n == b->cap) {
            size_t nc = b->cap ? b->cap * 2 : 512;
            uint32_t *nv = realloc(b->h, nc * sizeof *nv);
            if (!nv) {
                b->oom = true;
                return;
            }
            b->h = nv;
            b->cap = nc;
        }
        b->h[b->n++] = h & (MODEL_BUCKETS - 1);
        return;
    }
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        struct ftmp *nv = realloc(b->v, nc * sizeof *nv);
        if (!nv) {
            b->oom = true;
            return;
        }
        b->v = nv;
        b->cap = nc;
    }
    struct ftmp *f = &b->v[b->n++];
    f->h = h & (MODEL_BUCKETS - 1);
    f->text = NULL;
    if (b->with_text) {
        struct candor_buf t = CANDOR_BUF_INIT;
        candor__buf_puts(&t, prefix);
        candor__buf_append(&t, a, alen);
        if (c) {
            candor__buf_putc(&t, ' ');
            candor__buf_append(&t, c, clen);
        }
        f->text = candor__buf_steal(&t);
        if (!f->text)
            b->oom = true;
    }
}

/* The next word of S at *POS (LEN bytes), normalised into TOK (at most
 * MAX_TOKEN_BYTES). Returns its length, 0 at the end. */
/* An ASCII word character (what candor__unicode_is_wordchar says for
 * code points below 0x80). */
static inline bool ascii_word(unsigned char c)
{
    return candor__is_alnum(c) || c == '_';
}

static size_t next_token(const char *s, size_t len, size_t *pos, char *tok)
{
    size_t i = *pos;
    for (;;) {
        while (i < len) {
            unsigned char c0 = (unsigned char)s[i];
            if (c0 < 0x80) {
                if (ascii_word(c0))
                    break;
                i++;
                continue;
            }
            uint32_t cp;
            size_t k = candor__utf8_decode(s + i, len - i, &cp);
            if (candor__unicode_is_wordchar(cp))
                break;
            i += k;
        }
        if (i >= len) {
            *pos = i;
            return 0;
        }
        size_t n = 0;
        bool digits = false, letters = false;
        while (i < len) {
            unsigned char c0 = (unsigned char)s[i];
            if (c0 < 0x80 && c0 != '\'') {   /* ASCII: the same steps, inline */
                if (!ascii_word(c0))
                    break;
                if (candor__is_digit(c0))
                    digits = true;
                else
                    letters = true;
                if (n + 1 < MAX_TOKEN_BYTES)
                    tok[n++] = (char)c0;
                i++;
                continue;
            }
            uint32_t cp;
            size_t k = candor__utf8_decode(s + i, len - i, &cp);
            bool apos = (cp == '\'' || cp == 0x2019) && n > 0;
            if (apos) {
                /* keep an apostrophe between two word characters */
                uint32_t nx = 0;
                if (i + k < len)
                    candor__utf8_decode(s + i + k, len - i - k, &nx);
                if (!candor__unicode_is_wordchar(nx))
                    break;
                if (n + 1 < MAX_TOKEN_BYTES)
                    tok[n++] = '\'';
                i += k;
                continue;
            }
            if (!candor__unicode_is_wordchar(cp))
                break;
            if (cp < 0x80 && candor__is_digit((unsigned char)cp))
                digits = true;
            else
                letters = true;
            if (n + k < MAX_TOKEN_BYTES) {
                memcpy(tok + n, s + i, k);
                n += k;
            }
            i += k;
        }
        *pos = i;
        if (digits) {
            if (letters)
                n = (size_t)snprintf(tok, MAX_TOKEN_BYTES, "#a");
            else
                n = (size_t)snprintf(tok, MAX_TOKEN_BYTES, "#%zu", n > 9 ? (size_t)9 : n);
        }
        if (n)
            return n;
    }
}

/* Function words of English, French, German and Spanish: no evidence of an
 * intent, but with few training mails per language they would make the
 * language itself look like evidence. Part of the feature definition of
 * format version 1 (sorted, folded). */
static const char *const stopwords[] = {
    "a", "about", "after", "al", "als", "also", "am", "an", "and", "any", "are", "as", "at",
    "au", "auch", "auf", "aus", "aux", "be", "been", "bei", "bin", "but", "by", "ce", "ces",
    "cette", "con", "da", "dans", "das", "dass", "de", "dei", "del", "dem", "den", "der", "des",
    "die", "do", "du", "ein", "eine", "einen", "einer", "el", "en", "er", "es", "est", "et",
    "for", "from", "für", "ha", "had", "has", "have", "he", "her", "his", "i", "ich", "if",
    "il", "im", "in", "into", "is", "ist", "it", "its", "je", "la", "las", "le", "les", "lo",
    "los", "ma", "me", "mes", "mi", "mis", "mit", "mon", "my", "nous", "of", "on", "or", "our",
    "par", "para", "por", "pour", "que", "qui", "se", "she", "sie", "so", "son", "su", "sur",
    "sus", "that", "the", "their", "them", "there", "they", "this", "to", "um", "un", "una",
    "und", "une", "uno", "us", "vom", "von", "vos", "votre", "vous", "was", "we", "were", "wir",
    "with", "y", "yo", "you", "your", "zu", "zum", "zur",
};

#define N_STOPWORDS (sizeof stopwords / sizeof stopwords[0])
#define STOP_SLOTS 512u          /* a power of two, over 2 x N_STOPWORDS */
#define STOP_MAX_BYTES 7u        /* the longest stop word fits a key */

/* A stop word (at most STOP_MAX_BYTES bytes) packed into one integer:
 * its bytes, and its length in the top byte. */
static uint64_t stop_key(const char *w, size_t n)
{
    uint64_t k = (uint64_t)n << 56;
    for (size_t i = 0; i < n; i++)
        k |= (uint64_t)(unsigned char)w[i] << (8 * i);
    return k;
}

static uint64_t stop_table[STOP_SLOTS];   /* 0: empty */
static pthread_once_t stop_once = PTHREAD_ONCE_INIT;

static void stop_build(void)
{
    for (size_t i = 0; i < N_STOPWORDS; i++) {
        uint64_t k = stop_key(stopwords[i], strlen(stopwords[i]));
        size_t j = (size_t)((k * 0x9E3779B97F4A7C15u) >> 55) & (STOP_SLOTS - 1);
        while (stop_table[j])
            j = (j + 1) & (STOP_SLOTS - 1);
        stop_table[j] = k;
    }
}

static bool is_stopword(const char *tok, size_t n)
{
    if (n == 0 || n > STOP_MAX_BYTES)
        return false;
    uint64_t k = stop_key(tok, n);
    for (size_t j = (size_t)((k * 0x9E3779B97F4A7C15u) >> 55) & (STOP_SLOTS - 1);;
         j = (j + 1) & (STOP_SLOTS - 1)) {
        if (stop_table[j] == k)
            return true;
        if (!stop_table[j])
            return false;
    }
}

static void add_field(struct fbuild *b, const char *s, size_t max, bool subject)
{
    if (!s)
        return;
    size_t len = strlen(s);
    if (len > max) {
        len = max;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
    }
    char prev[MAX_TOKEN_BYTES], tok[MAX_TOKEN_BYTES];
    size_t plen = 0, pos = 0, count = 0, n;
    /* FNV-1a is a running hash: the prefixes, and "b:PREV ", are hashed once */
    const uint32_t hu = fnv(FNV_BASIS, "u:", 2), hs = fnv(FNV_BASIS, "s:", 2);
    const uint32_t hb = fnv(FNV_BASIS, "b:", 2);
    uint32_t hprev = 0;   /* the hash of "b:PREV " */
    while ((n = next_token(s, len, &pos, tok)) > 0 && count++ < MAX_TOKENS) {
        if (is_stopword(tok, n))
            continue;
        feat_add(b, fnv(hu, tok, n), "u:", tok, n, NULL, 0);
        if (subject)
            feat_add(b, fnv(hs, tok, n), "s:", tok, n, NULL, 0);
        if (plen)
            feat_add(b, fnv(hprev, tok, n), "b:", prev, plen, tok, n);
        memcpy(prev, tok, n);
        plen = n;
        hprev = fnv(fnv(hb, tok, n), " ", 1);
    }
}

static int ftmp_cmp(const void *a, const void *b)
{
    uint32_t x = ((const struct ftmp *)a)->h, y = ((const struct ftmp *)b)->h;
    return x < y ? -1 : x > y;
}

void candor__features_free(struct candor_features *f)
{
    if (!f)
        return;
    if (f->text)
        for (size_t i = 0; i < f->n; i++)
            free(f->text[i]);
    free(f->text);
    free(f->h);
    free(f->idx);
    memset(f, 0, sizeof *f);
}

/* Sort the N hashes at V (below MODEL_BUCKETS) with TMP (N more) as
 * scratch: two counting passes of 10 bits each. */
_Static_assert(MODEL_BUCKETS == 1u << 20, "sort_hashes sorts 20-bit hashes");
static void sort_hashes(uint32_t *v, uint32_t *tmp, size_t n)
{
    size_t count[1024];
    for (int pass = 0; pass < 2; pass++) {
        unsigned shift = pass ? 10 : 0;
        uint32_t *from = pass ? tmp : v, *to = pass ? v : tmp;
        memset(count, 0, sizeof count);
        for (size_t i = 0; i < n; i++)
            count[(from[i] >> shift) & 1023]++;
        size_t sum = 0;
        for (size_t k = 0; k < 1024; k++) {
            size_t c = count[k];
            count[k] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            to[count[(from[i] >> shift) & 1023]++] = from[i];
    }
}

candor_status_t candor__features(const char *folded_subject, const char *folded_text,
                                 size_t max_bytes, bool with_text, struct candor_features *out)
{
    memset(out, 0, sizeof *out);
    struct fbuild b = { NULL, NULL, 0, 0, with_text, false };
    pthread_once(&stop_once, stop_build);
    add_field(&b, folded_subject, 1024, true);
    add_field(&b, folded_text, max_bytes, false);
    if (!with_text) {
        uint32_t *tmp = b.oom ? NULL : malloc((b.n ? b.n : 1) * sizeof *tmp);
        if (!tmp) {
            free(b.h);
            return candor__fail(CANDOR_ENOMEM, "out of memory");
        }
        sort_hashes(b.h, tmp, b.n);
        size_t n = 0;
        for (size_t i = 0; i < b.n; i++)   /* unique, into TMP */
            if (!n || tmp[n - 1] != b.h[i])
                tmp[n++] = b.h[i];
        free(b.h);
        out->h = tmp;
        out->n = out->cap = n;
        return CANDOR_OK;
    }
    if (b.n)
        qsort(b.v, b.n, sizeof *b.v, ftmp_cmp);
    out->h = malloc((b.n ? b.n : 1) * sizeof *out->h);
    if (with_text)
        out->text = calloc(b.n ? b.n : 1, sizeof *out->text);
    if (b.oom || !out->h || (with_text && !out->text)) {
        for (size_t i = 0; i < b.n; i++)
            free(b.v[i].text);
        free(b.v);
        candor__features_free(out);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    size_t n = 0;
    for (size_t i = 0; i < b.n; i++) {
        if (n && out->h[n - 1] == b.v[i].h) {
            free(b.v[i].text);
            continue;
        }
        out->h[n] = b.v[i].h;
        if (with_text)
            out->text[n] = b.v[i].text;
        n++;
    }
    out->n = out->cap = n;
    free(b.v);
    return CANDOR_OK;
}

/* ------------------------------------------------------------------ */
/* The model in memory                                                  */
/* ------------------------------------------------------------------ */

static int32_t model_find(const struct candor_model *m, uint32_t key)
{
    if (!m->tab)
        return -1;
    size_t i = (key * 2654435761u) & m->tab_mask;
    for (;;) {
        int32_t x = m->tab[i];
        if (x < 0)
            return -1;
        if (m->keys[x] == key)
            return x;
        i = (i + 1) & m->tab_mask;
    }
}

static void head_free(struct head *h)
{
    free(h->keys);
    free(h->dev);
    free(h->tab);
    memset(h, 0, sizeof *h);
}

void candor__model_free(struct candor_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < CANDOR_N_HEADS; i++) {
        head_free(&m->heads[i]);
        free(m->hdev[i]);
    }
    free(m->keys);
    free(m->logp);
    free(m->dev);
    free(m->tab);
    free(m);
}

/* Build the lookup table and log-probabilities from KEYS/COUNTS (n x C). */
static candor_status_t model_finish(struct candor_model *m, const float *counts,
                                    const double totals[CANDOR_N_INTENTS])
{
    size_t ts = 16;
    while (ts < m->n * 2)
        ts <<= 1;
    m->tab = malloc(ts * sizeof *m->tab);
    m->logp = malloc((m->n ? m->n : 1) * CANDOR_N_INTENTS * sizeof *m->logp);
    m->dev = malloc((m->n ? m->n : 1) * CANDOR_N_INTENTS * sizeof *m->dev);
    if (!m->tab || !m->logp || !m->dev)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    m->tab_mask = ts - 1;
    memset(m->tab, 0xff, ts * sizeof *m->tab);
    double V = (double)(m->n ? m->n : 1);
    double denom[CANDOR_N_INTENTS];
    for (int c = 0; c < CANDOR_N_INTENTS; c++)
        denom[c] = log(totals[c] + m->alpha * V);
    for (size_t i = 0; i < m->n; i++) {
        size_t j = (m->keys[i] * 2654435761u) & m->tab_mask;
        while (m->tab[j] >= 0)
            j = (j + 1) & m->tab_mask;
        m->tab[j] = (int32_t)i;
        double mean = 0;
        for (int c = 0; c < CANDOR_N_INTENTS; c++) {
            double lp = log(counts[i * CANDOR_N_INTENTS + c] + m->alpha) - denom[c];
            m->logp[i * CANDOR_N_INTENTS + c] = (float)lp;
            mean += lp;
        }
        mean /= CANDOR_N_INTENTS;
        for (int c = 0; c < CANDOR_N_INTENTS; c++)
            m->dev[i * CANDOR_N_INTENTS + c] = (float)(m->logp[i * CANDOR_N_INTENTS + c] - mean);
    }
    return CANDOR_OK;
}

/* Lookup table and per-class deviations for a head; COUNTS is n x K. */
static candor_status_t head_finish(struct head *h, int K, const float *counts, const double *totals)
{
    size_t ts = 16;
    while (ts < h->n * 2)
        ts <<= 1;
    h->tab = malloc(ts * sizeof *h->tab);
    h->dev = malloc((h->n ? h->n : 1) * (size_t)K * sizeof *h->dev);
    if (!h->tab || !h->dev)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    h->tab_mask = ts - 1;
    memset(h->tab, 0xff, ts * sizeof *h->tab);
    double V = (double)(h->n ? h->n : 1), denom[MAX_HK];
    for (int k = 0; k < K; k++)
        denom[k] = log(totals[k] + h->alpha * V);
    for (size_t i = 0; i < h->n; i++) {
        size_t j = (h->keys[i] * 2654435761u) & h->tab_mask;
        while (h->tab[j] >= 0)
            j = (j + 1) & h->tab_mask;
        h->tab[j] = (int32_t)i;
        double lp[MAX_HK], mean = 0;
        for (int k = 0; k < K; k++) {
            lp[k] = log(counts[i * (size_t)K + (size_t)k] + h->alpha) - denom[k];
            mean += lp[k];
        }
        mean /= K;
        for (int k = 0; k < K; k++)
            h->dev[i * (size_t)K + (size_t)k] = (float)(lp[k] - mean);
    }
    h->present = true;
    return CANDOR_OK;
}

static void head_logits(const struct head *h, int K, const uint32_t *f, size_t n, double *out)
{
    for (int k = 0; k < K; k++)
        out[k] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = (f[i] * 2654435761u) & h->tab_mask;
        for (;;) {
            int32_t x = h->tab[j];
            if (x < 0)
                break;
            if (h->keys[x] == f[i]) {
                for (int k = 0; k < K; k++)
                    out[k] += h->dev[(size_t)x * (size_t)K + (size_t)k];
                break;
            }
            j = (j + 1) & h->tab_mask;
        }
    }
}

static void head_combine(const struct head *h, int K, int D, const double *L, const double *x,
                         double *prob);

void candor__head_inputs(int head, const struct candor_rule_scores *rs, double sentiment_signal,
                         int intent, double x[CANDOR_HEAD_MAX_INPUTS])
{
    memset(x, 0, CANDOR_HEAD_MAX_INPUTS * sizeof *x);
    int o = 0;
    if (head == CANDOR_HEAD_URGENCY) {
        for (int k = 0; k < CANDOR_N_URGENCY; k++)
            x[k] = rs ? rs->urgency[k] : 0;
        o = CANDOR_N_URGENCY;
    } else {
        x[0] = sentiment_signal;
        o = 1;
    }
    if (intent >= 0 && intent < CANDOR_N_INTENTS)
        x[o + intent] = 1;
}

bool candor__model_head(const struct candor_model *m, int head, const struct candor_features *f,
                        const double *x, double *prob)
{
    if (!m || head < 0 || head >= CANDOR_N_HEADS || !m->heads[head].present)
        return false;
    double L[MAX_HK];
    int K = head_K[head];
    if (f->idx && m->hdev[head]) {
        for (int k = 0; k < K; k++)
            L[k] = 0;
        for (size_t i = 0; i < f->n; i++)
            if (f->idx[i] >= 0)
                for (int k = 0; k < K; k++)
                    L[k] += m->hdev[head][(size_t)f->idx[i] * (size_t)K + (size_t)k];
    } else {
        head_logits(&m->heads[head], K, f->h, f->n, L);
    }
    head_combine(&m->heads[head], head_K[head], head_D[head], L, x, prob);
    return true;
}

bool candor__model_logits(const struct candor_model *m, struct candor_features *f,
                          double logit[CANDOR_N_INTENTS])
{
    for (int c = 0; c < CANDOR_N_INTENTS; c++)
        logit[c] = 0;
    if (!m)
        return false;
    if (!f->idx && f->n)
        f->idx = malloc(f->n * sizeof *f->idx);   /* a cache for the heads; optional */
    for (size_t i = 0; i < f->n; i++) {
        int32_t x = model_find(m, f->h[i]);
        if (f->idx)
            f->idx[i] = x;
        if (x < 0)
            continue;
        /* deviations from the per-feature mean: the same argmax and
         * softmax as the raw log-probabilities, smaller numbers */
        const float *d = &m->dev[(size_t)x * CANDOR_N_INTENTS];
        for (int c = 0; c < CANDOR_N_INTENTS; c++)
            logit[c] += d[c];
    }
    return true;
}

static void softmax(double *z, int n)
{
    double mx = z[0];
    for (int i = 1; i < n; i++)
        if (z[i] > mx)
            mx = z[i];
    double s = 0;
    for (int i = 0; i < n; i++) {
        z[i] = exp(z[i] - mx);
        s += z[i];
    }
    for (int i = 0; i < n; i++)
        z[i] /= s;
}

static void combine(const struct calib *k, const double *logit, const double *rules, double *prob)
{
    for (int c = 0; c < CANDOR_N_INTENTS; c++) {
        double z = logit[c] * k->invT + k->b[c];
        for (int j = 0; j < CANDOR_N_INTENTS; j++)
            z += k->W[c][j] * rules[j];
        prob[c] = z;
    }
    softmax(prob, CANDOR_N_INTENTS);
}

static void head_combine(const struct head *h, int K, int D, const double *L, const double *x,
                         double *prob)
{
    for (int k = 0; k < K; k++) {
        double z = h->invT * L[k] + h->b[k];
        for (int j = 0; j < D; j++)
            z += h->W[k][j] * x[j];
        prob[k] = z;
    }
    softmax(prob, K);
}

void candor__model_combine(const struct candor_model *m, const double logit[CANDOR_N_INTENTS],
                           const double rules[CANDOR_N_INTENTS], double prob[CANDOR_N_INTENTS])
{
    struct calib k;
    /* Without a model, rules alone decide (scale 1). */
    calib_simple(&k, m ? m->temperature : 1.0, m ? m->rule_scale : 1.0);
    if (m && m->have_W) {
        memcpy(k.W, m->W, sizeof k.W);
        memcpy(k.b, m->bias, sizeof k.b);
    }
    combine(&k, logit, rules, prob);
}

double candor__model_feature_weight(const struct candor_model *m, uint32_t h, int c)
{
    if (!m || c < 0 || c >= CANDOR_N_INTENTS)
        return 0;
    int32_t x = model_find(m, h);
    if (x < 0)
        return 0;
    return m->dev[(size_t)x * CANDOR_N_INTENTS + c] / m->temperature;
}

/* ------------------------------------------------------------------ */
/* Model file                                                          */
/* ------------------------------------------------------------------ */

static candor_status_t bad(const char *path, size_t line, const char *what)
{
    return candor__fail(CANDOR_ECONFIG, "%s:%zu: %s", path, line, what);
}

/* " class:count class:count ..." after a feature key, into ROW (K classes). */
static candor_status_t parse_counts(const char *q, float *row, long k, const char *path,
                                    size_t lineno)
{
    while (*q == ' ') {
        q++;
        char *e2;
        long c = strtol(q, &e2, 10);
        if (e2 == q || *e2 != ':' || c < 0 || c >= k)
            return bad(path, lineno, "bad class:count");
        q = e2 + 1;
        double v = strtod(q, &e2);
        if (e2 == q || !(v >= 0) || v > 1e9)
            return bad(path, lineno, "bad count");
        row[c] = (float)v;
        q = e2;
    }
    return *q ? bad(path, lineno, "junk after the counts") : CANDOR_OK;
}

candor_status_t candor__model_load(const char *path, struct candor_model **out)
{
    *out = NULL;
    char *data;
    size_t len;
    candor_status_t st = candor__read_file(path, MAX_MODEL_BYTES, &data, &len);
    if (st != CANDOR_OK)
        return st;
    struct candor_model *m = calloc(1, sizeof *m);
    float *counts = NULL;
    size_t cap = 0;
    double totals[CANDOR_N_INTENTS] = {0};
    bool have_version = false, have_classes = false, have_totals = false;
    float *hcounts[CANDOR_N_HEADS] = { NULL, NULL };
    size_t hcap[CANDOR_N_HEADS] = { 0, 0 };
    double htotals[CANDOR_N_HEADS][MAX_HK];
    bool hseen[CANDOR_N_HEADS] = { false, false };
    m->alpha = 0.1;
    m->temperature = 1;
    m->rule_scale = 1;
    m->mask = MODEL_BUCKETS - 1;
    if (!m) {
        free(data);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    size_t lineno = 0;
    char *p = data, *end = data + len;
    st = CANDOR_OK;
    while (p < end && st == CANDOR_OK) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        *le = '\0';
        lineno++;
        char *line = p;
        p = le + 1;
        if (le > line && le[-1] == '\r')
            le[-1] = '\0';
        if (!*line || *line == '#')
            continue;
        if (!have_version) {
            int v;
            if (sscanf(line, "candor-model %d", &v) != 1) {
                st = bad(path, lineno, "not a candor model file (no \"candor-model 1\" line)");
            } else if (v != CANDOR_MODEL_FORMAT_VERSION) {
                char w[80];
                snprintf(w, sizeof w, "model format version %d, this library reads %d", v,
                         CANDOR_MODEL_FORMAT_VERSION);
                st = bad(path, lineno, w);
            }
            have_version = true;
            continue;
        }
        char *sp = line;
        while (*sp && *sp != ' ')
            sp++;
        size_t kl = (size_t)(sp - line);
        char *rest = *sp ? sp + 1 : sp;
        if (kl == 1 && line[0] == 'f') {
            if (!have_totals || !have_classes) {
                st = bad(path, lineno, "feature before classes/totals");
                break;
            }
            char *e;
            unsigned long key = strtoul(rest, &e, 10);
            if (e == rest || key >= MODEL_BUCKETS) {
                st = bad(path, lineno, "bad feature bucket");
                break;
            }
            if (m->n == cap) {
                size_t nc = cap ? cap * 2 : 4096;
                if (nc > MAX_FEATURES) {
                    st = bad(path, lineno, "too many features");
                    break;
                }
                uint32_t *nk = realloc(m->keys, nc * sizeof *nk);
                if (nk)
                    m->keys = nk;
                float *ncn = realloc(counts, nc * CANDOR_N_INTENTS * sizeof *ncn);
                if (ncn)
                    counts = ncn;
                if (!nk || !ncn) {
                    st = candor__fail(CANDOR_ENOMEM, "out of memory");
                    break;
                }
                cap = nc;
            }
            float *row = &counts[m->n * CANDOR_N_INTENTS];
            memset(row, 0, CANDOR_N_INTENTS * sizeof *row);
            m->keys[m->n] = (uint32_t)key;
            st = parse_counts(e, row, CANDOR_N_INTENTS, path, lineno);
            m->n++;
        } else if (kl == 7 && strncmp(line, "buckets", 7) == 0) {
            if (strtoul(rest, NULL, 10) != MODEL_BUCKETS)
                st = bad(path, lineno, "unsupported number of buckets");
        } else if (kl == 7 && strncmp(line, "classes", 7) == 0) {
            char *save = NULL, *tok = strtok_r(rest, " ", &save);
            for (int c = 0; c < CANDOR_N_INTENTS; c++) {
                if (!tok || strcmp(tok, candor__intent_names[c]) != 0) {
                    st = bad(path, lineno, "classes must be the ten intents in CONTRACT.md order");
                    break;
                }
                tok = strtok_r(NULL, " ", &save);
            }
            if (st == CANDOR_OK && tok)
                st = bad(path, lineno, "too many classes");
            have_classes = true;
        } else if ((kl == 5 && strncmp(line, "alpha", 5) == 0) ||
                   (kl == 11 && strncmp(line, "temperature", 11) == 0) ||
                   (kl == 10 && strncmp(line, "rule-scale", 10) == 0)) {
            char *e;
            double v = strtod(rest, &e);
            if (e == rest || *e || !(v >= 0) || v > 1e6 || (kl != 10 && v == 0)) {
                st = bad(path, lineno, "bad number");
                break;
            }
            if (kl == 5)
                m->alpha = v;
            else if (kl == 11)
                m->temperature = v;
            else
                m->rule_scale = v;
        } else if (kl == 4 && strncmp(line, "head", 4) == 0) {
            /* head NAME ALPHA INVT W[K*D] B[K] TOTALS[K] */
            char *q = rest;
            int hi = -1;
            for (int i = 0; i < CANDOR_N_HEADS; i++) {
                size_t hl = strlen(head_names[i]);
                if (strncmp(q, head_names[i], hl) == 0 && q[hl] == ' ') {
                    hi = i;
                    q += hl;
                }
            }
            if (hi < 0 || hseen[hi]) {
                st = bad(path, lineno, "unknown or repeated head");
                break;
            }
            struct head *h = &m->heads[hi];
            int K = head_K[hi], D = head_D[hi];
            double vals[2 + MAX_HK * CANDOR_HEAD_MAX_INPUTS + 2 * MAX_HK];
            int want = 2 + K * D + 2 * K;
            for (int i = 0; i < want && st == CANDOR_OK; i++) {
                char *e;
                vals[i] = strtod(q, &e);
                if (e == q || !(fabs(vals[i]) < 1e9))
                    st = bad(path, lineno, "bad head parameters");
                q = e;
            }
            if (st != CANDOR_OK)
                break;
            h->alpha = vals[0];
            h->invT = vals[1];
            if (!(h->alpha > 0)) {
                st = bad(path, lineno, "bad head alpha");
                break;
            }
            for (int k = 0; k < K; k++)
                for (int j = 0; j < D; j++)
                    h->W[k][j] = vals[2 + k * D + j];
            for (int k = 0; k < K; k++) {
                h->b[k] = vals[2 + K * D + k];
                htotals[hi][k] = vals[2 + K * D + K + k];
            }
            hseen[hi] = true;
        } else if (kl == 2 && line[0] == 'h' && (line[1] == 'u' || line[1] == 's')) {
            int hi = line[1] == 'u' ? CANDOR_HEAD_URGENCY : CANDOR_HEAD_SENTIMENT;
            if (!hseen[hi]) {
                st = bad(path, lineno, "head feature before its head line");
                break;
            }
            struct head *h = &m->heads[hi];
            int K = head_K[hi];
            char *e;
            unsigned long key = strtoul(rest, &e, 10);
            if (e == rest || key >= MODEL_BUCKETS) {
                st = bad(path, lineno, "bad feature bucket");
                break;
            }
            if (h->n == hcap[hi]) {
                size_t nc = hcap[hi] ? hcap[hi] * 2 : 4096;
                if (nc > MAX_FEATURES) {
                    st = bad(path, lineno, "too many features");
                    break;
                }
                uint32_t *nk = realloc(h->keys, nc * sizeof *nk);
                if (nk)
                    h->keys = nk;
                float *ncn = realloc(hcounts[hi], nc * (size_t)K * sizeof *ncn);
                if (ncn)
                    hcounts[hi] = ncn;
                if (!nk || !ncn) {
                    st = candor__fail(CANDOR_ENOMEM, "out of memory");
                    break;
                }
                hcap[hi] = nc;
            }
            float *row = &hcounts[hi][h->n * (size_t)K];
            memset(row, 0, (size_t)K * sizeof *row);
            h->keys[h->n] = (uint32_t)key;
            if (st == CANDOR_OK)
                st = parse_counts(e, row, K, path, lineno);
            h->n++;
        } else if ((kl == 12 && strncmp(line, "rule-weights", 12) == 0) ||
                   (kl == 4 && strncmp(line, "bias", 4) == 0)) {
            double *dst = kl == 4 ? m->bias : &m->W[0][0];
            int want = kl == 4 ? CANDOR_N_INTENTS : CANDOR_N_INTENTS * CANDOR_N_INTENTS;
            char *q = rest;
            for (int i = 0; i < want; i++) {
                char *e;
                dst[i] = strtod(q, &e);
                if (e == q || !(fabs(dst[i]) < 1e6)) {
                    st = bad(path, lineno, kl == 4 ? "bad bias" : "bad rule-weights");
                    break;
                }
                q = e;
            }
            if (kl == 12)
                m->have_W = true;
        } else if (kl == 6 && strncmp(line, "totals", 6) == 0) {
            char *q = rest;
            for (int c = 0; c < CANDOR_N_INTENTS; c++) {
                char *e;
                totals[c] = strtod(q, &e);
                if (e == q || !(totals[c] >= 0)) {
                    st = bad(path, lineno, "bad totals");
                    break;
                }
                q = e;
            }
            have_totals = true;
        } else {
            st = bad(path, lineno, "unknown keyword");
        }
    }
    if (st == CANDOR_OK && !have_version)
        st = bad(path, lineno, "empty model file");
    if (st == CANDOR_OK && (!have_classes || !have_totals))
        st = bad(path, lineno, "classes or totals missing");
    if (st == CANDOR_OK)
        st = model_finish(m, counts, totals);
    for (int i = 0; i < CANDOR_N_HEADS; i++) {
        if (st == CANDOR_OK && hseen[i])
            st = head_finish(&m->heads[i], head_K[i], hcounts[i], htotals[i]);
        free(hcounts[i]);
        /* align the head with the intent table: one lookup per feature */
        struct head *h = &m->heads[i];
        if (st == CANDOR_OK && h->present) {
            size_t K = (size_t)head_K[i];
            m->hdev[i] = calloc((m->n ? m->n : 1) * K, sizeof *m->hdev[i]);
            if (!m->hdev[i])
                st = candor__fail(CANDOR_ENOMEM, "out of memory");
            for (size_t j = 0; m->hdev[i] && j < h->n; j++) {
                int32_t x = model_find(m, h->keys[j]);
                if (x >= 0)
                    memcpy(&m->hdev[i][(size_t)x * K], &h->dev[j * K], K * sizeof *h->dev);
            }
        }
    }
    free(counts);
    free(data);
    if (st != CANDOR_OK) {
        candor__model_free(m);
        return st;
    }
    *out = m;
    return CANDOR_OK;
}

/* <model path="model.txt"/>: the path was resolved by ctx.c. A missing
 * model is not fatal: triage then runs on the rules alone (logged). */
candor_status_t candor__model_load_ctx(struct candor_ctx *ctx, struct _xmlNode *section)
{
    (void)section;
    if (!ctx->model_path)
        return CANDOR_OK;
    struct candor_model *m = NULL;
    candor_status_t st = candor__model_load(ctx->model_path, &m);
    if (st == CANDOR_EIO) {
        candor__log(ctx, CANDOR_LOG_WARN, "model %s: %s; triage uses the rules alone",
                    ctx->model_path, candor_errmsg());
        return CANDOR_OK;
    }
    if (st != CANDOR_OK)
        return st;
    ctx->model = m;
    return CANDOR_OK;
}

/* ------------------------------------------------------------------ */
/* Training                                                            */
/* ------------------------------------------------------------------ */

struct tdoc {
    uint32_t *h;
    size_t n;
    double rules[CANDOR_N_INTENTS];
    int label;
    bool is_msg;
    int hl[CANDOR_N_HEADS];          /* head labels, -1: none */
    double urg[CANDOR_N_URGENCY];    /* the rules' urgency scores */
    double sent;                     /* the sentiment signal */
};

struct candor_trainer {
    const struct candor_ctx *ctx;
    struct tdoc *docs;
    size_t n, cap;
    char *report;
};

/* A growable map bucket -> row of counts. */
struct cmap {
    uint32_t *keys;
    float *counts;
    int32_t *tab;
    size_t n, cap, tab_mask;
};

static void cmap_free(struct cmap *c)
{
    free(c->keys);
    free(c->counts);
    free(c->tab);
    memset(c, 0, sizeof *c);
}

static bool cmap_grow(struct cmap *c)
{
    size_t nc = c->cap ? c->cap * 2 : 8192;
    uint32_t *nk = realloc(c->keys, nc * sizeof *nk);
    if (!nk)
        return false;
    c->keys = nk;
    float *ncn = realloc(c->counts, nc * CANDOR_N_INTENTS * sizeof *ncn);
    if (!ncn)
        return false;
    c->counts = ncn;
    size_t ts = nc * 2;
    int32_t *nt = malloc(ts * sizeof *nt);
    if (!nt)
        return false;
    memset(nt, 0xff, ts * sizeof *nt);
    for (size_t i = 0; i < c->n; i++) {
        size_t j = (c->keys[i] * 2654435761u) & (ts - 1);
        while (nt[j] >= 0)
            j = (j + 1) & (ts - 1);
        nt[j] = (int32_t)i;
    }
    free(c->tab);
    c->tab = nt;
    c->tab_mask = ts - 1;
    c->cap = nc;
    return true;
}

static float *cmap_row(struct cmap *c, uint32_t key)
{
    if (c->n + 1 > c->cap / 2 * 2 - c->cap / 4 && !cmap_grow(c))
        return NULL;
    size_t j = (key * 2654435761u) & c->tab_mask;
    while (c->tab[j] >= 0) {
        if (c->keys[c->tab[j]] == key)
            return &c->counts[(size_t)c->tab[j] * CANDOR_N_INTENTS];
        j = (j + 1) & c->tab_mask;
    }
    c->tab[j] = (int32_t)c->n;
    c->keys[c->n] = key;
    float *row = &c->counts[c->n * CANDOR_N_INTENTS];
    memset(row, 0, CANDOR_N_INTENTS * sizeof *row);
    c->n++;
    return row;
}

candor_status_t candor_trainer_new(struct candor_trainer **out, const struct candor_ctx *ctx)
{
    if (!out)
        return candor__fail(CANDOR_EINVAL, "trainer_new: no output pointer");
    *out = NULL;
    if (ctx && ctx->parse_only)
        return candor__fail(CANDOR_EINVAL, "trainer_new: the context was opened for parsing only");
    struct candor_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    t->ctx = ctx;
    *out = t;
    return CANDOR_OK;
}

void candor_trainer_free(struct candor_trainer *tr)
{
    if (!tr)
        return;
    for (size_t i = 0; i < tr->n; i++)
        free(tr->docs[i].h);
    free(tr->docs);
    free(tr->report);
    free(tr);
}

static candor_status_t add_doc(struct candor_trainer *tr, const char *subject, const char *new_text,
                               const char *text, const struct candor_message *msg,
                               const char *label, bool is_msg, const char *urgency,
                               const char *sentiment)
{
    int hu = -1, hs = -1;
    if (urgency && (hu = candor__name_index(candor__urgency_names, CANDOR_N_URGENCY, urgency)) < 0)
        return candor__fail(CANDOR_EINVAL, "trainer_add: unknown urgency \"%.40s\"", urgency);
    if (sentiment &&
        (hs = candor__name_index(candor__sentiment_names, CANDOR_N_SENTIMENT, sentiment)) < 0)
        return candor__fail(CANDOR_EINVAL, "trainer_add: unknown sentiment \"%.40s\"", sentiment);
    if (!tr || !label)
        return candor__fail(CANDOR_EINVAL, "trainer_add: no trainer or label");
    int c = candor__name_index(candor__intent_names, CANDOR_N_INTENTS, label);
    if (c < 0)
        return candor__fail(CANDOR_EINVAL, "trainer_add: unknown intent \"%.40s\"", label);
    if (tr->n == tr->cap) {
        size_t nc = tr->cap ? tr->cap * 2 : 256;
        struct tdoc *nv = realloc(tr->docs, nc * sizeof *nv);
        if (!nv)
            return candor__fail(CANDOR_ENOMEM, "out of memory");
        tr->docs = nv;
        tr->cap = nc;
    }
    char *fs = subject ? candor__utf8_fold(subject, strlen(subject)) : NULL;
    size_t nl = new_text ? strlen(new_text) : 0;
    if (nl > CANDOR_MODEL_MAX_TEXT_BYTES + 64)
        nl = CANDOR_MODEL_MAX_TEXT_BYTES + 64;
    char *ft = new_text ? candor__utf8_fold(new_text, nl) : NULL;
    if ((subject && !fs) || (new_text && !ft)) {
        free(fs);
        free(ft);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    struct candor_features f;
    candor_status_t st = candor__features(fs, ft, CANDOR_MODEL_MAX_TEXT_BYTES, false, &f);
    struct tdoc *d = &tr->docs[tr->n];
    memset(d, 0, sizeof *d);
    if (st == CANDOR_OK) {
        struct candor_rule_input in = { subject, new_text, text, fs, ft, NULL, msg };
        struct candor_rule_scores rs;
        memset(&rs, 0, sizeof rs);
        st = candor__rules_apply(tr->ctx, &in, false, &rs);
        memcpy(d->rules, rs.intent, sizeof d->rules);
        memcpy(d->urg, rs.urgency, sizeof d->urg);
        d->sent = candor__triage_sentiment_signal(tr->ctx, subject, new_text, &rs);
        candor__rule_scores_free(&rs);
    }
    free(fs);
    free(ft);
    if (st != CANDOR_OK) {
        candor__features_free(&f);
        return st;
    }
    d->h = f.h;
    d->n = f.n;
    d->label = c;
    d->is_msg = is_msg;
    d->hl[CANDOR_HEAD_URGENCY] = hu;
    d->hl[CANDOR_HEAD_SENTIMENT] = hs;
    tr->n++;
    return CANDOR_OK;
}

candor_status_t candor_trainer_add(struct candor_trainer *tr, const struct candor_message *msg,
                                   const char *label)
{
    if (!msg)
        return candor__fail(CANDOR_EINVAL, "trainer_add: no message");
    return add_doc(tr, msg->subject, msg->new_text ? msg->new_text : msg->text, msg->text, msg,
                   label, true, NULL, NULL);
}

candor_status_t candor_trainer_add_labels(struct candor_trainer *tr,
                                          const struct candor_message *msg, const char *intent,
                                          const char *urgency, const char *sentiment)
{
    if (!msg)
        return candor__fail(CANDOR_EINVAL, "trainer_add: no message");
    return add_doc(tr, msg->subject, msg->new_text ? msg->new_text : msg->text, msg->text, msg,
                   intent, true, urgency, sentiment);
}

candor_status_t candor_trainer_add_text(struct candor_trainer *tr, const char *subject,
                                        const char *text, const char *label)
{
    return add_doc(tr, subject, text ? text : "", text, NULL, label, false, NULL, NULL);
}

/* Fit a model on the documents whose fold is not HOLD (HOLD < 0: all). */
static candor_status_t fit(const struct candor_trainer *tr, const int *fold, int hold, double alpha,
                           struct candor_model **out, struct cmap *keep)
{
    struct cmap cm;
    memset(&cm, 0, sizeof cm);
    double totals[CANDOR_N_INTENTS] = {0};
    for (size_t i = 0; i < tr->n; i++) {
        if (hold >= 0 && fold[i] == hold)
            continue;
        const struct tdoc *d = &tr->docs[i];
        for (size_t k = 0; k < d->n; k++) {
            float *row = cmap_row(&cm, d->h[k]);
            if (!row) {
                cmap_free(&cm);
                return candor__fail(CANDOR_ENOMEM, "out of memory");
            }
            row[d->label] += 1;
            totals[d->label] += 1;
        }
    }
    struct candor_model *m = calloc(1, sizeof *m);
    if (!m) {
        cmap_free(&cm);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    m->alpha = alpha;
    m->temperature = 1;
    m->rule_scale = 1;
    m->mask = MODEL_BUCKETS - 1;
    m->n = cm.n;
    m->keys = cm.keys;
    cm.keys = NULL;
    candor_status_t st = model_finish(m, cm.counts, totals);
    if (st == CANDOR_OK && keep) {
        *keep = cm;   /* the caller writes the counts */
        keep->keys = malloc((m->n ? m->n : 1) * sizeof *keep->keys);
        if (!keep->keys)
            st = candor__fail(CANDOR_ENOMEM, "out of memory");
        else if (m->n)   /* m->keys is NULL when no document had a token */
            memcpy(keep->keys, m->keys, m->n * sizeof *m->keys);
    } else {
        cmap_free(&cm);
    }
    if (st != CANDOR_OK) {
        candor__model_free(m);
        return st;
    }
    *out = m;
    return CANDOR_OK;
}

struct heldout {
    double logit[CANDOR_N_INTENTS];
    double rules[CANDOR_N_INTENTS];
    int label;
    bool use;
};

static double nll(const struct heldout *h, size_t n, const struct calib *k)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        if (!h[i].use)
            continue;
        double p[CANDOR_N_INTENTS];
        combine(k, h[i].logit, h[i].rules, p);
        s -= log(p[h[i].label] > 1e-12 ? p[h[i].label] : 1e-12);
    }
    return s;
}

static double macro_f1(const struct heldout *h, size_t n, const struct calib *k, double *acc)
{
    int tp[CANDOR_N_INTENTS] = {0}, fp[CANDOR_N_INTENTS] = {0}, fn[CANDOR_N_INTENTS] = {0};
    size_t total = 0, right = 0;
    for (size_t i = 0; i < n; i++) {
        if (!h[i].use)
            continue;
        double p[CANDOR_N_INTENTS];
        combine(k, h[i].logit, h[i].rules, p);
        int best = 0;
        for (int c = 1; c < CANDOR_N_INTENTS; c++)
            if (p[c] > p[best])
                best = c;
        total++;
        if (best == h[i].label) {
            right++;
            tp[best]++;
        } else {
            fp[best]++;
            fn[h[i].label]++;
        }
    }
    double f = 0;
    int nc = 0;
    for (int c = 0; c < CANDOR_N_INTENTS; c++) {
        if (tp[c] + fn[c] == 0)
            continue;
        double d = 2.0 * tp[c] + fp[c] + fn[c];
        f += d > 0 ? 2.0 * tp[c] / d : 0;
        nc++;
    }
    if (acc)
        *acc = total ? (double)right / (double)total : 0;
    return nc ? f / nc : 0;
}

/* Refine the combination on the held-out predictions: 1/T, the rule
 * weight matrix W and the biases b by gradient descent (Adam) on the
 * negative log-likelihood, with an L2 pull of W towards S*I and of b
 * towards 0, so a rule for one intent can learn to count for or against
 * another ("refund" words in a billing-error mail) without overfitting. */
#define STACK_L2 2.0
#define STACK_STEPS 400
static void fit_stacker(const struct heldout *h, size_t n, struct calib *k, double S)
{
    enum { NP = 1 + CANDOR_N_INTENTS * CANDOR_N_INTENTS + CANDOR_N_INTENTS };
    double th[NP], m1[NP] = {0}, m2[NP] = {0}, g[NP];
    th[0] = k->invT;
    memcpy(th + 1, k->W, sizeof k->W);
    memcpy(th + 1 + CANDOR_N_INTENTS * CANDOR_N_INTENTS, k->b, sizeof k->b);
    size_t used = 0;
    for (size_t i = 0; i < n; i++)
        used += h[i].use;
    if (used < 20)
        return;
    const double lr = 0.02, b1 = 0.9, b2 = 0.999;
    for (int step = 1; step <= STACK_STEPS; step++) {
        memset(g, 0, sizeof g);
        struct calib cur;
        cur.invT = th[0];
        memcpy(cur.W, th + 1, sizeof cur.W);
        memcpy(cur.b, th + 1 + CANDOR_N_INTENTS * CANDOR_N_INTENTS, sizeof cur.b);
        for (size_t i = 0; i < n; i++) {
            if (!h[i].use)
                continue;
            double p[CANDOR_N_INTENTS];
            combine(&cur, h[i].logit, h[i].rules, p);
            for (int c = 0; c < CANDOR_N_INTENTS; c++) {
                double e = (p[c] - (c == h[i].label)) / (double)used;
                g[0] += e * h[i].logit[c];
                for (int j = 0; j < CANDOR_N_INTENTS; j++)
                    g[1 + c * CANDOR_N_INTENTS + j] += e * h[i].rules[j];
                g[1 + CANDOR_N_INTENTS * CANDOR_N_INTENTS + c] += e;
            }
        }
        for (int c = 0; c < CANDOR_N_INTENTS; c++) {
            for (int j = 0; j < CANDOR_N_INTENTS; j++) {
                int q = 1 + c * CANDOR_N_INTENTS + j;
                g[q] += STACK_L2 / (double)used * (th[q] - (c == j ? S : 0));
            }
            int q = 1 + CANDOR_N_INTENTS * CANDOR_N_INTENTS + c;
            g[q] += STACK_L2 / (double)used * th[q];
        }
        for (int q = 0; q < NP; q++) {
            m1[q] = b1 * m1[q] + (1 - b1) * g[q];
            m2[q] = b2 * m2[q] + (1 - b2) * g[q] * g[q];
            double mh = m1[q] / (1 - pow(b1, step)), vh = m2[q] / (1 - pow(b2, step));
            double rate = q == 0 ? lr * th[0] + 1e-4 : lr;
            th[q] -= rate * mh / (sqrt(vh) + 1e-8);
        }
        if (th[0] < 1e-4)
            th[0] = 1e-4;
    }
    k->invT = th[0];
    memcpy(k->W, th + 1, sizeof k->W);
    memcpy(k->b, th + 1 + CANDOR_N_INTENTS * CANDOR_N_INTENTS, sizeof k->b);
}

static candor_status_t heldout_scores(const struct candor_trainer *tr, const int *fold, double alpha,
                                      struct heldout *h)
{
    for (int k = 0; k < N_FOLDS; k++) {
        struct candor_model *m = NULL;
        candor_status_t st = fit(tr, fold, k, alpha, &m, NULL);
        if (st != CANDOR_OK)
            return st;
        for (size_t i = 0; i < tr->n; i++) {
            if (fold[i] != k)
                continue;
            struct candor_features f = { .h = tr->docs[i].h, .n = tr->docs[i].n, .cap = tr->docs[i].n };
            candor__model_logits(m, &f, h[i].logit);
            free(f.idx);
            memcpy(h[i].rules, tr->docs[i].rules, sizeof h[i].rules);
            h[i].label = tr->docs[i].label;
        }
        candor__model_free(m);
    }
    return CANDOR_OK;
}

/* Naive Bayes of head HI on the labelled documents whose fold is not
 * HOLD (all when HOLD < 0). With KEEP, the counts (stride
 * CANDOR_N_INTENTS) are handed over for writing. */
static candor_status_t fit_head_nb(const struct candor_trainer *tr, const int *fold, int hold, int hi,
                                   double alpha, struct head *out, struct cmap *keep,
                                   double *totals_out)
{
    int K = head_K[hi];
    struct cmap cm;
    memset(&cm, 0, sizeof cm);
    double totals[MAX_HK] = {0};
    for (size_t i = 0; i < tr->n; i++) {
        const struct tdoc *d = &tr->docs[i];
        if (d->hl[hi] < 0 || (hold >= 0 && fold[i] == hold))
            continue;
        for (size_t k = 0; k < d->n; k++) {
            float *row = cmap_row(&cm, d->h[k]);
            if (!row) {
                cmap_free(&cm);
                return candor__fail(CANDOR_ENOMEM, "out of memory");
            }
            row[d->hl[hi]] += 1;
            totals[d->hl[hi]] += 1;
        }
    }
    memset(out, 0, sizeof *out);
    out->alpha = alpha;
    out->n = cm.n;
    out->keys = malloc((cm.n ? cm.n : 1) * sizeof *out->keys);
    float *counts = malloc((cm.n ? cm.n : 1) * (size_t)K * sizeof *counts);
    candor_status_t st = CANDOR_OK;
    if (!out->keys || !counts) {
        st = candor__fail(CANDOR_ENOMEM, "out of memory");
    } else {
        memcpy(out->keys, cm.keys, cm.n * sizeof *cm.keys);
        for (size_t i = 0; i < cm.n; i++)
            for (int k = 0; k < K; k++)
                counts[i * (size_t)K + (size_t)k] = cm.counts[i * CANDOR_N_INTENTS + (size_t)k];
        st = head_finish(out, K, counts, totals);
    }
    free(counts);
    if (totals_out)
        memcpy(totals_out, totals, (size_t)K * sizeof *totals);
    if (st == CANDOR_OK && keep)
        *keep = cm;
    else
        cmap_free(&cm);
    if (st != CANDOR_OK)
        head_free(out);
    return st;
}

/* Fit invT, W, b of a head on held-out logits L (n x K) and inputs X
 * (n x D): a grid over T first, then Adam on the NLL with an L2 pull
 * towards W0 and b = 0. */
static void fit_head_comb(struct head *hd, int K, int D, const double *L, const double *X,
                          const int *y, size_t n, const double W0[MAX_HK][CANDOR_HEAD_MAX_INPUTS])
{
    memcpy(hd->W, W0, sizeof hd->W);
    memset(hd->b, 0, sizeof hd->b);
    double bestT = 1, bestv = INFINITY;
    for (double T = 0.25; T < 400; T *= 1.15) {
        hd->invT = 1 / T;
        double v = 0;
        for (size_t i = 0; i < n; i++) {
            double p[MAX_HK];
            head_combine(hd, K, D, L + i * MAX_HK, X + i * CANDOR_HEAD_MAX_INPUTS, p);
            v -= log(p[y[i]] > 1e-12 ? p[y[i]] : 1e-12);
        }
        if (v < bestv) {
            bestv = v;
            bestT = T;
        }
    }
    hd->invT = 1 / bestT;
    enum { NP = 1 + MAX_HK * CANDOR_HEAD_MAX_INPUTS + MAX_HK };
    double m1[NP] = {0}, m2[NP] = {0}, g[NP];
    const double lr = 0.02, b1 = 0.9, b2 = 0.999;
    for (int step = 1; step <= STACK_STEPS && n >= 20; step++) {
        memset(g, 0, sizeof g);
        for (size_t i = 0; i < n; i++) {
            double p[MAX_HK];
            const double *x = X + i * CANDOR_HEAD_MAX_INPUTS;
            head_combine(hd, K, D, L + i * MAX_HK, x, p);
            for (int k = 0; k < K; k++) {
                double e = (p[k] - (k == y[i])) / (double)n;
                g[0] += e * L[i * MAX_HK + (size_t)k];
                for (int j = 0; j < D; j++)
                    g[1 + k * CANDOR_HEAD_MAX_INPUTS + j] += e * x[j];
                g[1 + MAX_HK * CANDOR_HEAD_MAX_INPUTS + k] += e;
            }
        }
        for (int k = 0; k < K; k++) {
            for (int j = 0; j < D; j++)
                g[1 + k * CANDOR_HEAD_MAX_INPUTS + j] +=
                    STACK_L2 / (double)n * (hd->W[k][j] - W0[k][j]);
            g[1 + MAX_HK * CANDOR_HEAD_MAX_INPUTS + k] += STACK_L2 / (double)n * hd->b[k];
        }
        for (int q = 0; q < NP; q++) {
            double *th = q == 0 ? &hd->invT
                       : q <= MAX_HK * CANDOR_HEAD_MAX_INPUTS
                           ? &hd->W[(q - 1) / CANDOR_HEAD_MAX_INPUTS][(q - 1) % CANDOR_HEAD_MAX_INPUTS]
                           : &hd->b[q - 1 - MAX_HK * CANDOR_HEAD_MAX_INPUTS];
            m1[q] = b1 * m1[q] + (1 - b1) * g[q];
            m2[q] = b2 * m2[q] + (1 - b2) * g[q] * g[q];
            double mh = m1[q] / (1 - pow(b1, step)), vh = m2[q] / (1 - pow(b2, step));
            double rate = q == 0 ? lr * hd->invT + 1e-4 : lr;
            *th -= rate * mh / (sqrt(vh) + 1e-8);
        }
        if (hd->invT < 1e-4)
            hd->invT = 1e-4;
    }
}

/* Train head HI: held-out logits per fold, the combination on them, then
 * the naive Bayes on every labelled document; appended to B. Skipped
 * (nothing written) with fewer than 20 labelled documents. */
static candor_status_t train_head(const struct candor_trainer *tr, const int *fold, int hi,
                                  const int *pred_intent, struct candor_buf *b,
                                  struct candor_buf *rep)
{
    int K = head_K[hi], D = head_D[hi];
    size_t nl = 0;
    for (size_t i = 0; i < tr->n; i++)
        nl += tr->docs[i].hl[hi] >= 0;
    if (nl < 20)
        return CANDOR_OK;
    const double alpha = 0.5;
    double *L = calloc(nl, MAX_HK * sizeof *L);
    double *X = calloc(nl, CANDOR_HEAD_MAX_INPUTS * sizeof *X);
    int *y = calloc(nl, sizeof *y);
    size_t *idx = calloc(nl, sizeof *idx);
    candor_status_t st = (L && X && y && idx) ? CANDOR_OK : candor__fail(CANDOR_ENOMEM, "out of memory");
    size_t j = 0;
    for (size_t i = 0; i < tr->n && st == CANDOR_OK; i++) {
        const struct tdoc *d = &tr->docs[i];
        if (d->hl[hi] < 0)
            continue;
        struct candor_rule_scores rs;
        memset(&rs, 0, sizeof rs);
        memcpy(rs.urgency, d->urg, sizeof rs.urgency);
        candor__head_inputs(hi, &rs, d->sent, pred_intent[i], X + j * CANDOR_HEAD_MAX_INPUTS);
        y[j] = d->hl[hi];
        idx[j++] = i;
    }
    for (int k = 0; k < N_FOLDS && st == CANDOR_OK; k++) {
        struct head hd;
        st = fit_head_nb(tr, fold, k, hi, alpha, &hd, NULL, NULL);
        if (st != CANDOR_OK)
            break;
        for (size_t q = 0; q < nl; q++)
            if (fold[idx[q]] == k)
                head_logits(&hd, K, tr->docs[idx[q]].h, tr->docs[idx[q]].n, L + q * MAX_HK);
        head_free(&hd);
    }
    struct head fin;
    memset(&fin, 0, sizeof fin);
    struct cmap cm;
    memset(&cm, 0, sizeof cm);
    double totals[MAX_HK] = {0};
    if (st == CANDOR_OK) {
        double W0[MAX_HK][CANDOR_HEAD_MAX_INPUTS];
        memset(W0, 0, sizeof W0);
        if (hi == CANDOR_HEAD_URGENCY) {
            for (int k = 0; k < K; k++)
                W0[k][k] = 1;
        } else {
            W0[0][0] = -0.5;
            W0[2][0] = 0.5;
        }
        struct head comb;
        memset(&comb, 0, sizeof comb);
        fit_head_comb(&comb, K, D, L, X, y, nl, W0);
        size_t right = 0;
        for (size_t q = 0; q < nl; q++) {
            double p[MAX_HK];
            head_combine(&comb, K, D, L + q * MAX_HK, X + q * CANDOR_HEAD_MAX_INPUTS, p);
            int best = 0;
            for (int k = 1; k < K; k++)
                if (p[k] > p[best])
                    best = k;
            right += best == y[q];
        }
        candor__buf_printf(rep, ", \"%s_heldout_accuracy\": %.4f", head_names[hi],
                           (double)right / (double)nl);
        st = fit_head_nb(tr, fold, -1, hi, alpha, &fin, &cm, totals);
        if (st == CANDOR_OK) {
            candor__buf_printf(b, "head %s %g %.6g", head_names[hi], alpha, comb.invT);
            for (int k = 0; k < K; k++)
                for (int q = 0; q < D; q++)
                    candor__buf_printf(b, " %.4g", comb.W[k][q]);
            for (int k = 0; k < K; k++)
                candor__buf_printf(b, " %.4g", comb.b[k]);
            for (int k = 0; k < K; k++)
                candor__buf_printf(b, " %g", totals[k]);
            candor__buf_putc(b, '\n');
            size_t *order = malloc((cm.n ? cm.n : 1) * sizeof *order);
            if (!order) {
                st = candor__fail(CANDOR_ENOMEM, "out of memory");
            } else {
                for (size_t i = 0; i < cm.n; i++)
                    order[i] = i;
                for (size_t gap = cm.n / 2; gap > 0; gap /= 2)
                    for (size_t i = gap; i < cm.n; i++)
                        for (size_t q = i; q >= gap && cm.keys[order[q - gap]] > cm.keys[order[q]]; q -= gap) {
                            size_t t = order[q];
                            order[q] = order[q - gap];
                            order[q - gap] = t;
                        }
                for (size_t i = 0; i < cm.n; i++) {
                    const float *row = &cm.counts[order[i] * CANDOR_N_INTENTS];
                    candor__buf_printf(b, "h%c %u", hi == CANDOR_HEAD_URGENCY ? 'u' : 's', cm.keys[order[i]]);
                    for (int k = 0; k < K; k++)
                        if (row[k] > 0)
                            candor__buf_printf(b, " %d:%g", k, row[k]);
                    candor__buf_putc(b, '\n');
                }
                free(order);
            }
        }
    }
    head_free(&fin);
    cmap_free(&cm);
    free(L);
    free(X);
    free(y);
    free(idx);
    return st;
}

candor_status_t candor_trainer_save(struct candor_trainer *tr, const char *path)
{
    if (!tr || !path)
        return candor__fail(CANDOR_EINVAL, "trainer_save: no trainer or path");
    if (tr->n == 0)
        return candor__fail(CANDOR_EINVAL, "trainer_save: no training data");
    /* Stratified folds: the i-th document of each intent, in the order they
     * were added, goes to fold i mod 5 (the corpus README's recipe). */
    int *fold = malloc(tr->n * sizeof *fold);
    struct heldout *h = calloc(tr->n, sizeof *h);
    if (!fold || !h) {
        free(fold);
        free(h);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    int seen[CANDOR_N_INTENTS] = {0};
    size_t n_msg = 0;
    for (size_t i = 0; i < tr->n; i++) {
        fold[i] = seen[tr->docs[i].label]++ % N_FOLDS;
        n_msg += tr->docs[i].is_msg;
    }
    /* Calibrate on mail when there is enough of it: that is what triage
     * sees; short texts (e.g. Banking77 rows) still train the model. */
    for (size_t i = 0; i < tr->n; i++)
        h[i].use = n_msg >= 50 ? tr->docs[i].is_msg : true;

    static const double alphas[] = { 0.02, 0.05, 0.1, 0.2, 0.5, 1.0 };
    static const double scales[] = { 0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 2.5, 3, 4 };
    double best_f1 = -1, best_alpha = 0.1, best_T = 1, best_S = 0, best_nll = INFINITY, acc = 0;
    candor_status_t st = CANDOR_OK;
    for (size_t a = 0; a < sizeof alphas / sizeof alphas[0] && st == CANDOR_OK; a++) {
        st = heldout_scores(tr, fold, alphas[a], h);
        if (st != CANDOR_OK)
            break;
        /* T and S by held-out negative log-likelihood */
        double bT = 1, bS = 0, bn = INFINITY;
        for (double T = 0.25; T < 400; T *= 1.15)
            for (size_t s = 0; s < sizeof scales / sizeof scales[0]; s++) {
                struct calib k;
                calib_simple(&k, T, scales[s]);
                double v = nll(h, tr->n, &k);
                if (v < bn) {
                    bn = v;
                    bT = T;
                    bS = scales[s];
                }
            }
        double ac;
        struct calib k;
        calib_simple(&k, bT, bS);
        double f1 = macro_f1(h, tr->n, &k, &ac);
        if (f1 > best_f1 + 1e-9 || (fabs(f1 - best_f1) <= 1e-9 && bn < best_nll)) {
            best_f1 = f1;
            best_alpha = alphas[a];
            best_T = bT;
            best_S = bS;
            best_nll = bn;
            acc = ac;
        }
    }
    /* The report: held-out quality and a reliability table (10 bins). */
    struct candor_buf rep = CANDOR_BUF_INIT;
    struct calib kal;
    calib_simple(&kal, best_T, best_S);
    if (st == CANDOR_OK)
        st = heldout_scores(tr, fold, best_alpha, h);
    if (st == CANDOR_OK) {
        fit_stacker(h, tr->n, &kal, best_S);
        best_f1 = macro_f1(h, tr->n, &kal, &acc);
        best_nll = nll(h, tr->n, &kal);
        size_t bn[10] = {0}, br[10] = {0};
        double bc[10] = {0}, ece = 0;
        size_t used = 0;
        for (size_t i = 0; i < tr->n; i++) {
            if (!h[i].use)
                continue;
            double p[CANDOR_N_INTENTS];
            combine(&kal, h[i].logit, h[i].rules, p);
            int b = 0;
            for (int c = 1; c < CANDOR_N_INTENTS; c++)
                if (p[c] > p[b])
                    b = c;
            int bin = (int)(p[b] * 10);
            if (bin > 9)
                bin = 9;
            bn[bin]++;
            bc[bin] += p[b];
            br[bin] += b == h[i].label;
            used++;
        }
        candor__buf_printf(&rep, "{\"documents\": %zu, \"messages\": %zu, \"calibrated_on\": %zu, "
                           "\"folds\": %d, \"alpha\": %g, \"temperature\": %.4g, \"rule_scale\": %g, "
                           "\"heldout_accuracy\": %.4f, \"heldout_macro_f1\": %.4f, "
                           "\"heldout_nll\": %.4f, \"reliability\": [",
                           tr->n, n_msg, used, N_FOLDS, best_alpha, 1.0 / kal.invT, best_S, acc, best_f1,
                           used ? best_nll / (double)used : 0);
        bool first = true;
        for (int b = 0; b < 10; b++) {
            if (!bn[b])
                continue;
            double conf = bc[b] / (double)bn[b], ok = (double)br[b] / (double)bn[b];
            ece += (double)bn[b] / (double)(used ? used : 1) * fabs(conf - ok);
            candor__buf_printf(&rep, "%s{\"bin\": \"%.1f-%.1f\", \"n\": %zu, \"confidence\": %.3f, "
                               "\"accuracy\": %.3f}", first ? "" : ", ", b / 10.0, (b + 1) / 10.0,
                               bn[b], conf, ok);
            first = false;
        }
        candor__buf_printf(&rep, "], \"ece\": %.4f", ece);
    }
    /* The intent each document got from a model that did not see it: an
     * input of the attribute heads. */
    int *pred = malloc(tr->n * sizeof *pred);
    if (!pred && st == CANDOR_OK)
        st = candor__fail(CANDOR_ENOMEM, "out of memory");
    for (size_t i = 0; pred && i < tr->n; i++) {
        double p[CANDOR_N_INTENTS];
        combine(&kal, h[i].logit, h[i].rules, p);
        pred[i] = 0;
        for (int c = 1; c < CANDOR_N_INTENTS; c++)
            if (p[c] > p[pred[i]])
                pred[i] = c;
    }
    free(h);
    /* The final model on everything. */
    struct candor_model *m = NULL;
    struct cmap cm;
    memset(&cm, 0, sizeof cm);
    if (st == CANDOR_OK)
        st = fit(tr, fold, -1, best_alpha, &m, &cm);
    if (st != CANDOR_OK) {
        candor__model_free(m);
        cmap_free(&cm);
        free(pred);
        free(fold);
        candor__buf_free(&rep);
        return st;
    }
    double totals[CANDOR_N_INTENTS] = {0};
    for (size_t i = 0; i < cm.n; i++)
        for (int c = 0; c < CANDOR_N_INTENTS; c++)
            totals[c] += cm.counts[i * CANDOR_N_INTENTS + c];
    struct candor_buf b = CANDOR_BUF_INIT;
    candor__buf_printf(&b, "candor-model %d\n# trained by libcandor %s on %zu documents "
                       "(%zu messages); see lib/model.c for the format\n",
                       CANDOR_MODEL_FORMAT_VERSION, CANDOR_VERSION_STRING, tr->n, n_msg);
    candor__buf_printf(&b, "buckets %u\nclasses", MODEL_BUCKETS);
    for (int c = 0; c < CANDOR_N_INTENTS; c++)
        candor__buf_printf(&b, " %s", candor__intent_names[c]);
    candor__buf_printf(&b, "\nalpha %g\ntemperature %.6g\nrule-scale %g\nrule-weights", best_alpha,
                       1.0 / kal.invT, best_S);
    for (int c = 0; c < CANDOR_N_INTENTS; c++)
        for (int j = 0; j < CANDOR_N_INTENTS; j++)
            candor__buf_printf(&b, " %.4g", kal.W[c][j]);
    candor__buf_puts(&b, "\nbias");
    for (int c = 0; c < CANDOR_N_INTENTS; c++)
        candor__buf_printf(&b, " %.4g", kal.b[c]);
    candor__buf_puts(&b, "\ntotals");
    for (int c = 0; c < CANDOR_N_INTENTS; c++)
        candor__buf_printf(&b, " %g", totals[c]);
    candor__buf_putc(&b, '\n');
    /* features in bucket order, so the file is deterministic */
    size_t *order = malloc((cm.n ? cm.n : 1) * sizeof *order);
    if (order) {
        for (size_t i = 0; i < cm.n; i++)
            order[i] = i;
        /* insertion into buckets: counting sort would need 2^20 slots; sort */
        const uint32_t *keys = cm.keys;
        for (size_t gap = cm.n / 2; gap > 0; gap /= 2)   /* shell sort, no qsort context */
            for (size_t i = gap; i < cm.n; i++)
                for (size_t j = i; j >= gap && keys[order[j - gap]] > keys[order[j]]; j -= gap) {
                    size_t t = order[j];
                    order[j] = order[j - gap];
                    order[j - gap] = t;
                }
        for (size_t i = 0; i < cm.n; i++) {
            const float *row = &cm.counts[order[i] * CANDOR_N_INTENTS];
            candor__buf_printf(&b, "f %u", keys[order[i]]);
            for (int c = 0; c < CANDOR_N_INTENTS; c++)
                if (row[c] > 0)
                    candor__buf_printf(&b, " %d:%g", c, row[c]);
            candor__buf_putc(&b, '\n');
        }
    }
    candor__model_free(m);
    cmap_free(&cm);
    for (int hi = 0; hi < CANDOR_N_HEADS && st == CANDOR_OK && order; hi++)
        st = train_head(tr, fold, hi, pred, &b, &rep);
    free(pred);
    free(fold);
    candor__buf_putc(&rep, '}');
    if (st != CANDOR_OK) {
        free(order);
        candor__buf_free(&b);
        candor__buf_free(&rep);
        return st;
    }
    if (!order || b.oom) {
        free(order);
        candor__buf_free(&b);
        candor__buf_free(&rep);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    free(order);
    st = candor__write_file_atomic(path, b.data, b.len);
    candor__buf_free(&b);
    free(tr->report);
    tr->report = candor__buf_steal(&rep);
    return st;
}

candor_status_t candor_trainer_report(const struct candor_trainer *tr, char **json)
{
    if (!tr || !json)
        return candor__fail(CANDOR_EINVAL, "trainer_report: no trainer");
    *json = candor__strdup(tr->report ? tr->report : "{}");
    return *json ? CANDOR_OK : candor__fail(CANDOR_ENOMEM, "out of memory");
}
