/*
 * buf.c — growable buffers, string vectors and ASCII string helpers used
 * throughout lib/. Every append reports OOM instead of aborting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

static bool buf_grow(struct candor_buf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (extra > SIZE_MAX - b->len - 1) {
        b->oom = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

bool candor__buf_append(struct candor_buf *b, const void *data, size_t len)
{
    if (!buf_grow(b, len))
        return false;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return true;
}

bool candor__buf_puts(struct candor_buf *b, const char *s)
{
    return candor__buf_append(b, s, strlen(s));
}

bool candor__buf_putc(struct candor_buf *b, char c)
{
    return candor__buf_append(b, &c, 1);
}

bool candor__buf_printf(struct candor_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_grow(b, (size_t)n))
        return false;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

char *candor__buf_steal(struct candor_buf *b)
{
    if (b->oom) {
        candor__buf_free(b);
        return NULL;
    }
    char *p = b->data;
    if (!p)
        p = calloc(1, 1);
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void candor__buf_free(struct candor_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

bool candor__strv_push_owned(struct candor_strv *sv, char *s)
{
    if (!s)
        return false;
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 8;
        char **v = realloc(sv->v, cap * sizeof *v);
        if (!v) {
            free(s);
            return false;
        }
        sv->v = v;
        sv->cap = cap;
    }
    sv->v[sv->n++] = s;
    return true;
}

bool candor__strv_push(struct candor_strv *sv, const char *s)
{
    return candor__strv_push_owned(sv, candor__strdup(s));
}

void candor__strv_free(struct candor_strv *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        free(sv->v[i]);
    free(sv->v);
    sv->v = NULL;
    sv->n = sv->cap = 0;
}

bool candor__array_grow(void *vp, size_t *cap, size_t n, size_t elem, size_t first)
{
    void **v = vp;
    if (n < *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : first;
    if (ncap < *cap || ncap > SIZE_MAX / elem)
        return false;
    void *nv = realloc(*v, ncap * elem);
    if (!nv)
        return false;
    *v = nv;
    *cap = ncap;
    return true;
}

char *candor__strdup(const char *s)
{
    return s ? candor__strndup(s, strlen(s)) : NULL;
}

char *candor__strndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

int candor__strcasecmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = candor__lower((unsigned char)*a);
        unsigned char y = candor__lower((unsigned char)*b);
        if (x != y || !x)
            return (int)x - (int)y;
    }
}

int candor__strncasecmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++) {
        unsigned char x = candor__lower((unsigned char)*a);
        unsigned char y = candor__lower((unsigned char)*b);
        if (x != y || !x)
            return (int)x - (int)y;
    }
    return 0;
}

const char *candor__strcasestr(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    if (!n)
        return hay;
    for (; *hay; hay++)
        if (candor__strncasecmp(hay, needle, n) == 0)
            return hay;
    return NULL;
}

char *candor__addr_normalize(const char *addr)
{
    if (!addr)
        return NULL;
    struct candor_buf b = CANDOR_BUF_INIT;
    const char *s = addr;
    while (candor__is_space((unsigned char)*s) || *s == '<')
        s++;
    const char *e = s + strlen(s);
    while (e > s && (candor__is_space((unsigned char)e[-1]) || e[-1] == '>'))
        e--;
    const char *at = NULL;
    for (const char *p = e; p > s; p--)
        if (p[-1] == '@') {
            at = p - 1;
            break;
        }
    const char *local_end = at ? at : e;
    const char *plus = memchr(s, '+', (size_t)(local_end - s));
    const char *lend = plus ? plus : local_end;
    for (const char *p = s; p < lend; p++)
        candor__buf_putc(&b, (char)candor__lower((unsigned char)*p));
    if (at)
        for (const char *p = at; p < e; p++)
            candor__buf_putc(&b, (char)candor__lower((unsigned char)*p));
    return candor__buf_steal(&b);
}

void candor_free(void *ptr) { free(ptr); }
