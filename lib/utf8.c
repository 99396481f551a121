/*
 * utf8.c — UTF-8 validation, sanitising (invalid bytes -> U+FFFD, never
 * dropped), decoding, and a locale-independent simple case folding for the
 * scripts support mail is written in (Latin, Greek, Cyrillic).
 */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

size_t candor__utf8_decode(const char *str, size_t len, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)str;
    if (!len) {
        *cp = 0xFFFD;
        return 1;
    }
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t need;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) { need = 1; v = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { need = 2; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 3; v = c & 0x07; min = 0x10000; }
    else { *cp = 0xFFFD; return 1; }
    if (len < need + 1) {
        *cp = 0xFFFD;
        return 1;
    }
    for (size_t i = 1; i <= need; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = 0xFFFD;
        return 1;
    }
    *cp = v;
    return need + 1;
}

size_t candor__utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF)
        cp = 0xFFFD;
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp > 0x10FFFF)
        return candor__utf8_encode(0xFFFD, out);
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

bool candor__utf8_valid(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if ((unsigned char)s[i] < 0x80) {
            if (!s[i])
                return false;
            i++;
            continue;
        }
        uint32_t cp;
        size_t n = candor__utf8_decode(s + i, len - i, &cp);
        if (cp == 0xFFFD && !(n == 3 && memcmp(s + i, "\xEF\xBF\xBD", 3) == 0))
            return false;
        i += n;
    }
    return true;
}

char *candor__utf8_sanitize(const char *s, size_t len, size_t *replaced)
{
    size_t bad = 0;
    if (candor__utf8_valid(s, len)) {
        if (replaced)
            *replaced = 0;
        return candor__strndup(s, len);
    }
    struct candor_buf b = CANDOR_BUF_INIT;
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c && c < 0x80) {
            size_t j = i;
            while (j < len && (unsigned char)s[j] && (unsigned char)s[j] < 0x80)
                j++;
            candor__buf_append(&b, s + i, j - i);
            i = j;
            continue;
        }
        uint32_t cp;
        size_t n = c ? candor__utf8_decode(s + i, len - i, &cp) : 1;
        if (!c || (cp == 0xFFFD && !(n == 3 && memcmp(s + i, "\xEF\xBF\xBD", 3) == 0))) {
            candor__buf_append(&b, "\xEF\xBF\xBD", 3);
            bad++;
        } else {
            candor__buf_append(&b, s + i, n);
        }
        i += n;
    }
    if (replaced)
        *replaced = bad;
    return candor__buf_steal(&b);
}

uint32_t candor__unicode_fold(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7)          /* Latin-1 */
        return c + 32;
    if (c >= 0x100 && c <= 0x137)                     /* Latin Ext-A pairs */
        return c | 1u;
    if (c >= 0x139 && c <= 0x148)
        return (c & 1u) ? c + 1 : c;
    if (c >= 0x14A && c <= 0x177)
        return c | 1u;
    if (c == 0x178)
        return 0xFF;
    if (c >= 0x179 && c <= 0x17E)
        return (c & 1u) ? c + 1 : c;
    if (c >= 0x391 && c <= 0x3AB && c != 0x3A2)       /* Greek */
        return c + 32;
    if (c == 0x3C2)
        return 0x3C3;
    if (c >= 0x400 && c <= 0x40F)                     /* Cyrillic */
        return c + 80;
    if (c >= 0x410 && c <= 0x42F)
        return c + 32;
    if (c >= 0x460 && c <= 0x4FF && c != 0x482 && !(c >= 0x483 && c <= 0x489))
        return c | 1u;
    if (c == 0x1E9E)                                  /* capital sharp s */
        return 0xDF;
    if (c >= 0xFF21 && c <= 0xFF3A)                   /* fullwidth A-Z */
        return c + 32;
    return c;
}

char *candor__utf8_fold(const char *s, size_t len)
{
    struct candor_buf b = CANDOR_BUF_INIT;
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            candor__buf_putc(&b, (char)candor__lower(c));
            i++;
            continue;
        }
        uint32_t cp;
        i += candor__utf8_decode(s + i, len - i, &cp);
        char out[4];
        candor__buf_append(&b, out, candor__utf8_encode(candor__unicode_fold(cp), out));
    }
    return candor__buf_steal(&b);
}

bool candor__unicode_is_wordchar(uint32_t c)
{
    if (c < 0x80)
        return candor__is_alnum((unsigned char)c) || c == '_';
    if (c == 0xD7 || c == 0xF7 || c < 0xC0)
        return c == 0xAA || c == 0xB5 || c == 0xBA;
    if (c >= 0x2000 && c <= 0x2BFF)                   /* punctuation, symbols, arrows */
        return false;
    if (c >= 0x3000 && c <= 0x303F)                   /* CJK punctuation */
        return false;
    if (c >= 0xFE00 && c <= 0xFE0F)                   /* variation selectors */
        return false;
    if (c >= 0xFF00 && c <= 0xFF0F)
        return false;
    if (c == 0xFFFD || c == 0xFEFF)
        return false;
    if (c >= 0x1F000 && c <= 0x1FAFF)                 /* emoji */
        return false;
    return true;
}
