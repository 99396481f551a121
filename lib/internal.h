/*
 * internal.h — helpers shared across lib/ (never installed).
 *
 * Symbols shared between lib/ files are named candor__module_verb and are
 * hidden from the shared object by the version script and visibility.
 */
#ifndef CANDOR_INTERNAL_H
#define CANDOR_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "candor.h"

#define CANDOR_HIDDEN __attribute__((visibility("hidden")))

/* ---- errors (error.c) ---- */
/* Set the calling thread's message and return STATUS. Allocates nothing. */
CANDOR_HIDDEN candor_status_t candor__fail(candor_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
CANDOR_HIDDEN void candor__clear_error(void);

/* ---- logging (log.c) ---- */
CANDOR_HIDDEN void candor__log(const struct candor_ctx *ctx, candor_log_level_t level,
                               const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- ASCII, locale-independent (never tolower()/isspace() on mail) ---- */
static inline unsigned char candor__lower(unsigned char c)
{ return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c; }
static inline bool candor__is_space(unsigned char c)
{ return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }
static inline bool candor__is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static inline bool candor__is_alpha(unsigned char c)
{ return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static inline bool candor__is_alnum(unsigned char c)
{ return candor__is_alpha(c) || candor__is_digit(c); }
CANDOR_HIDDEN int candor__strcasecmp(const char *a, const char *b);
CANDOR_HIDDEN int candor__strncasecmp(const char *a, const char *b, size_t n);
/* Case-insensitive (ASCII) substring search; NULL when absent. */
CANDOR_HIDDEN const char *candor__strcasestr(const char *hay, const char *needle);

/* ---- growable byte buffer, always NUL-terminated (buf.c) ---- */
struct candor_buf {
    char *data;      /* NULL until the first append */
    size_t len;
    size_t cap;
    bool oom;        /* an append failed: the buffer is truncated */
};
#define CANDOR_BUF_INIT { NULL, 0, 0, false }
CANDOR_HIDDEN bool candor__buf_append(struct candor_buf *b, const void *data, size_t len);
CANDOR_HIDDEN bool candor__buf_puts(struct candor_buf *b, const char *s);
CANDOR_HIDDEN bool candor__buf_putc(struct candor_buf *b, char c);
CANDOR_HIDDEN bool candor__buf_printf(struct candor_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Hand the data over (never NULL unless OOM: "" for an empty buffer). */
CANDOR_HIDDEN char *candor__buf_steal(struct candor_buf *b);
CANDOR_HIDDEN void candor__buf_free(struct candor_buf *b);

/* ---- string vector ---- */
struct candor_strv {
    char **v;
    size_t n;
    size_t cap;
};
#define CANDOR_STRV_INIT { NULL, 0, 0 }
/* Appends a copy of S. */
CANDOR_HIDDEN bool candor__strv_push(struct candor_strv *sv, const char *s);
/* Appends S itself (takes ownership; frees it on failure). */
CANDOR_HIDDEN bool candor__strv_push_owned(struct candor_strv *sv, char *s);
CANDOR_HIDDEN void candor__strv_free(struct candor_strv *sv);

/* Make room for one more element in *V (N used, *CAP allocated, ELEM bytes
 * each), doubling from FIRST. On failure *V is left as it was. */
CANDOR_HIDDEN bool candor__array_grow(void *v, size_t *cap, size_t n, size_t elem, size_t first);

CANDOR_HIDDEN char *candor__strdup(const char *s);
CANDOR_HIDDEN char *candor__strndup(const char *s, size_t n);

/* ---- UTF-8 (utf8.c) ---- */
/* Copy LEN bytes of possibly invalid UTF-8, replacing each invalid sequence
 * with U+FFFD; *REPLACED (may be NULL) counts replacements. NUL bytes
 * become U+FFFD too. Returns NULL only on OOM. */
CANDOR_HIDDEN char *candor__utf8_sanitize(const char *s, size_t len, size_t *replaced);
CANDOR_HIDDEN bool candor__utf8_valid(const char *s, size_t len);
/* Decode one code point at S (LEN bytes left); returns bytes used (>= 1),
 * *CP = 0xFFFD for an invalid sequence. */
CANDOR_HIDDEN size_t candor__utf8_decode(const char *s, size_t len, uint32_t *cp);
CANDOR_HIDDEN size_t candor__utf8_encode(uint32_t cp, char out[4]);
/* Simple Unicode case folding (Latin, Greek, Cyrillic, common ranges) of
 * one code point. */
CANDOR_HIDDEN uint32_t candor__unicode_fold(uint32_t cp);
/* Fold a whole UTF-8 string into a new string (caller frees with free()). */
CANDOR_HIDDEN char *candor__utf8_fold(const char *s, size_t len);
/* True for letters and digits of any script (approximate, no tables). */
CANDOR_HIDDEN bool candor__unicode_is_wordchar(uint32_t cp);

/* ---- time (time.c) ---- */
CANDOR_HIDDEN int64_t candor__now(int64_t now_or_zero);
/* The proleptic Gregorian date of DAYS since 1970-01-01. */
CANDOR_HIDDEN void candor__civil_from_days(int64_t days, int64_t *year, unsigned *month,
                                           unsigned *day);

/* ---- files (file.c) ---- */
/* Read a whole file, refusing more than MAX bytes (CANDOR_ELIMIT). */
CANDOR_HIDDEN candor_status_t candor__read_file(const char *path, size_t max,
                                                char **data, size_t *len);
/* The same into *BUF of *CAP bytes (NULL/0 at first), grown with realloc
 * as needed and kept by the caller, also on failure, so that one buffer
 * serves many files. *BUF is NUL-terminated after the *LEN bytes. */
CANDOR_HIDDEN candor_status_t candor__read_file_into(const char *path, size_t max,
                                                     char **buf, size_t *cap, size_t *len);
/* Write DATA to PATH atomically: temporary file in the same directory,
 * fsync, rename, fsync of the directory. */
CANDOR_HIDDEN candor_status_t candor__write_file_atomic(const char *path,
                                                        const void *data, size_t len);

/* ---- address helpers ---- */
/* Normalise an address for comparison: lower-case, drop a "+tag" from the
 * local part, strip angle brackets and spaces. Returns a new string. */
CANDOR_HIDDEN char *candor__addr_normalize(const char *addr);

#endif
