/*
 * fingerprint.h — word tokens and MinHash fingerprints of paragraphs, for
 * the template_reuse finding (fingerprint.c, issue 5).
 *
 * A paragraph becomes a set of "content tokens": words case-folded, with
 * apostrophes dropped, stop words left out, placeholders ({{first_name}},
 * [name], numbers, order ids) masked as "#", the recipient's own names
 * masked, and each word cut to a short stem so that light edits and
 * rewordings keep most of the set. The set's MinHash signature estimates
 * Jaccard similarity; its bands are the keys of the LSH index kept in the
 * store (store-history.c).
 */
#ifndef CANDOR_FINGERPRINT_H
#define CANDOR_FINGERPRINT_H

#include "internal.h"

#define CANDOR_FP_K 32          /* MinHash values per signature */
#define CANDOR_FP_BANDS 8       /* LSH bands ... */
#define CANDOR_FP_ROWS 2        /* ... of this many values each */
#define CANDOR_FP_MAX_TOKENS 4096  /* tokens looked at per paragraph */
#define CANDOR_FP_STEM 6        /* bytes kept of a word */

struct candor_fp {
    uint32_t sig[CANDOR_FP_K];
    uint32_t ntok;              /* distinct content tokens */
};

/* One word of a text: byte offset and length in the source, and its
 * folded form (apostrophes removed) in a shared buffer. */
struct candor_word {
    uint32_t off, len;          /* in the source text */
    uint32_t fold;              /* offset of the folded form in the words' buffer */
    uint16_t flen;
    uint8_t digits;             /* contains a digit */
    uint8_t upper;              /* first letter upper-case */
};

struct candor_words {
    const char *src;            /* the text split (borrowed) */
    size_t src_len;
    struct candor_word *v;
    size_t n, cap;
    struct candor_buf folded;   /* NUL-separated folded words */
};

/* Split UTF-8 TEXT (LEN bytes) into words (letters/digits of any script;
 * "-" "." "/" inside a word containing a digit keep it whole, so
 * "LP-2297730" and "64.20" are one word; an apostrophe splits, so
 * "we'll" is "we" "ll", never "well"). At most MAX words. Returns false on OOM. */
CANDOR_HIDDEN bool candor__words_split(struct candor_words *w, const char *text, size_t len,
                                       size_t max);
CANDOR_HIDDEN void candor__words_free(struct candor_words *w);
static inline const char *candor__word_fold(const struct candor_words *w, size_t i)
{ return w->folded.data + w->v[i].fold; }

/* True for an English/French/German/Spanish function word (folded). */
CANDOR_HIDDEN bool candor__fp_stopword(const char *folded);

/* Fingerprint the paragraph TEXT (LEN bytes). MASK: folded words to mask
 * (the recipient's names), may be NULL. */
CANDOR_HIDDEN bool candor__fp_compute(struct candor_fp *fp, const char *text, size_t len,
                                      const struct candor_strv *mask);
/* Estimated Jaccard similarity of two signatures, in [0,1]. */
CANDOR_HIDDEN double candor__fp_similarity(const struct candor_fp *a, const struct candor_fp *b);
/* The LSH band keys of a signature (63-bit, non-negative, band number mixed in). */
CANDOR_HIDDEN void candor__fp_bands(const struct candor_fp *fp, int64_t keys[CANDOR_FP_BANDS]);
/* 64-bit FNV-1a. */
CANDOR_HIDDEN uint64_t candor__fp_hash(const void *data, size_t len, uint64_t seed);

#endif
