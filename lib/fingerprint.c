/*
 * fingerprint.c — words and MinHash fingerprints of paragraphs (issue 5).
 *
 * Owns the word splitter used by the canned check and the paragraph
 * fingerprints behind template_reuse. Input is UTF-8 (already sanitised by
 * the message module); every loop is bounded by the text length and by
 * CANDOR_FP_MAX_TOKENS / the caller's word limit. MinHash: Broder, "On the
 * resemblance and containment of documents" (1997); banding as in
 * Leskovec, Rajaraman, Ullman, "Mining of Massive Datasets", ch. 3.
 */
#include <stdlib.h>
#include <string.h>
#include "fingerprint.h"

uint64_t candor__fp_hash(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ull ^ (seed * 0x9E3779B97F4A7C15ull);
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    /* final avalanche (splitmix64) so that nearby inputs spread */
    h ^= h >> 30; h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27; h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

static bool is_joiner(uint32_t cp) { return cp == '-' || cp == '.' || cp == '/' || cp == ',' || cp == ':'; }

static bool push_word(struct candor_words *w, const char *text, size_t start, size_t end,
                      const char *fold, size_t flen, bool digits, bool upper)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        struct candor_word *v = realloc(w->v, cap * sizeof *v);
        if (!v)
            return false;
        w->v = v;
        w->cap = cap;
    }
    (void)text;
    if (flen > 0xffff)
        flen = 0xffff;
    struct candor_word *x = &w->v[w->n];
    x->off = (uint32_t)start;
    x->len = (uint32_t)(end - start);
    x->fold = (uint32_t)w->folded.len;
    x->flen = (uint16_t)flen;
    x->digits = digits;
    x->upper = upper;
    if (!candor__buf_append(&w->folded, fold, flen) || !candor__buf_putc(&w->folded, '\0'))
        return false;
    w->n++;
    return true;
}

bool candor__words_split(struct candor_words *w, const char *text, size_t len, size_t max)
{
    struct candor_buf cur = CANDOR_BUF_INIT;
    size_t i = 0, start = 0;
    bool in = false, digits = false, upper = false;
    if (len > UINT32_MAX)
        len = UINT32_MAX;
    w->src = text;
    w->src_len = len;
    while (i < len && w->n < max) {
        uint32_t cp;
        size_t k = candor__utf8_decode(text + i, len - i, &cp);
        bool wc = candor__unicode_is_wordchar(cp);
        if (!wc && in) {
            /* apostrophe or joiner inside a word? look at the next char */
            uint32_t nx = 0;
            if (i + k < len)
                candor__utf8_decode(text + i + k, len - i - k, &nx);
            bool next_wc = candor__unicode_is_wordchar(nx);
            bool next_digit = nx >= '0' && nx <= '9';
            if (is_joiner(cp) && next_wc && (digits || next_digit)) {
                if (cp != ',' || next_digit) {   /* "1,200" but not "3, and" */
                    char c = (char)cp;
                    candor__buf_append(&cur, &c, 1);
                    i += k;
                    continue;
                }
            }
        }
        if (wc) {
            if (!in) {
                in = true;
                start = i;
                digits = false;
                upper = (cp >= 'A' && cp <= 'Z') || (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7);
                cur.len = 0;
            }
            if (cp >= '0' && cp <= '9')
                digits = true;
            char enc[4];
            size_t n = candor__utf8_encode(candor__unicode_fold(cp), enc);
            candor__buf_append(&cur, enc, n);
        } else if (in) {
            in = false;
            if (!push_word(w, text, start, i, cur.data ? cur.data : "", cur.len, digits, upper)) {
                candor__buf_free(&cur);
                return false;
            }
        }
        i += k;
    }
    bool ok = !cur.oom && !w->folded.oom;
    if (in && w->n < max)
        ok = ok && push_word(w, text, start, i, cur.data ? cur.data : "", cur.len, digits, upper);
    candor__buf_free(&cur);
    return ok;
}

void candor__words_free(struct candor_words *w)
{
    free(w->v);
    candor__buf_free(&w->folded);
    memset(w, 0, sizeof *w);
}

/* Function words of the four configured languages; sorted for bsearch. */
static const char *const stopwords[] = {
    "a", "about", "after", "al", "all", "also", "am", "an", "and", "any", "are", "as", "at",
    "au", "auf", "aus", "be", "been", "bei", "but", "by", "can", "ce", "con", "could",
    "dans", "das", "de", "dem", "den", "der", "des", "die", "do", "du", "ein", "eine",
    "einen", "el", "en", "es", "est", "et", "for", "from", "had", "has", "have", "he",
    "her", "here", "him", "his", "i", "if", "il", "im", "in", "is", "ist", "it", "its",
    "ja", "je", "la", "las", "le", "les", "lo", "los", "me", "mit", "mon", "more", "my",
    "nous", "of", "on", "or", "our", "ours", "para", "pas", "por", "pour", "qu", "que",
    "qui", "se", "she", "sie", "so", "some", "su", "sur", "than", "that", "the", "their",
    "them", "then", "there", "these", "they", "this", "those", "to", "un", "una", "und",
    "une", "us", "von", "vous", "was", "we", "were", "what", "when", "which", "who",
    "will", "with", "would", "y", "you", "your", "yours", "zu",
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

bool candor__fp_stopword(const char *folded)
{
    return bsearch(&folded, stopwords, sizeof stopwords / sizeof *stopwords,
                   sizeof *stopwords, cmp_str) != NULL;
}

static bool masked(const struct candor_strv *mask, const char *f)
{
    if (!mask)
        return false;
    for (size_t i = 0; i < mask->n; i++)
        if (strcmp(mask->v[i], f) == 0)
            return true;
    return false;
}

/* Replace placeholders {{...}}, {...}, [...] and <<...>> by "#": a template
 * sent unfilled is the same template. Returns a new string. */
static char *mask_placeholders(const char *text, size_t len)
{
    char *out = malloc(2 * len + 4);   /* "[]" (2 bytes) becomes " # " (3) */
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        char close = c == '{' ? '}' : c == '[' ? ']' : c == '<' && i + 1 < len && text[i + 1] == '<' ? '>' : 0;
        if (close) {
            size_t j = i + 1, lim = i + 64 < len ? i + 64 : len;
            while (j < lim && text[j] != close && text[j] != '\n')
                j++;
            if (j < lim && text[j] == close) {
                while (j + 1 < len && text[j + 1] == close)
                    j++;
                out[o++] = ' ';
                out[o++] = '0';   /* a digit word: masked like a number */
                out[o++] = ' ';
                i = j;
                continue;
            }
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return out;
}

bool candor__fp_compute(struct candor_fp *fp, const char *text, size_t len,
                        const struct candor_strv *mask)
{
    for (size_t k = 0; k < CANDOR_FP_K; k++)
        fp->sig[k] = UINT32_MAX;
    fp->ntok = 0;
    char *clean = mask_placeholders(text, len);
    if (!clean)
        return false;
    struct candor_words w = { 0 };
    bool ok = candor__words_split(&w, clean, strlen(clean), CANDOR_FP_MAX_TOKENS);
    uint64_t seen[256];
    size_t nseen = 0;
    for (size_t i = 0; ok && i < w.n; i++) {
        const char *f = candor__word_fold(&w, i);
        size_t fl = w.v[i].flen;
        if (w.v[i].digits || masked(mask, f)) {
            f = "#";
            fl = 1;
        } else if (fl < 2 || candor__fp_stopword(f)) {
            continue;
        }
        if (fl > CANDOR_FP_STEM)
            fl = CANDOR_FP_STEM;
        uint64_t h = candor__fp_hash(f, fl, 0);
        bool dup = false;
        for (size_t s = 0; s < nseen; s++)
            if (seen[s] == h) { dup = true; break; }
        if (dup)
            continue;
        if (nseen < sizeof seen / sizeof *seen)
            seen[nseen++] = h;
        fp->ntok++;
        /* K hash functions from one 64-bit hash: h_k = a_k * h + b_k */
        for (size_t k = 0; k < CANDOR_FP_K; k++) {
            uint64_t x = h * (0x9E3779B97F4A7C15ull + 2 * k) + 0x632BE59BD9B4E019ull * (k + 1);
            x ^= x >> 29;
            x *= 0xbf58476d1ce4e5b9ull;
            uint32_t v = (uint32_t)(x >> 32);
            if (v < fp->sig[k])
                fp->sig[k] = v;
        }
    }
    candor__words_free(&w);
    free(clean);
    return ok;
}

double candor__fp_similarity(const struct candor_fp *a, const struct candor_fp *b)
{
    if (!a->ntok || !b->ntok)
        return 0;
    size_t eq = 0;
    for (size_t k = 0; k < CANDOR_FP_K; k++)
        eq += a->sig[k] == b->sig[k];
    return (double)eq / CANDOR_FP_K;
}

void candor__fp_bands(const struct candor_fp *fp, int64_t keys[CANDOR_FP_BANDS])
{
    for (size_t b = 0; b < CANDOR_FP_BANDS; b++) {
        uint64_t h = candor__fp_hash(&fp->sig[b * CANDOR_FP_ROWS],
                                     CANDOR_FP_ROWS * sizeof fp->sig[0], b + 1);
        keys[b] = (int64_t)(h >> 1);
    }
}
