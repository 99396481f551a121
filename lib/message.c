/*
 * message.c — reading one mail message into struct candor_message.
 *
 * Owns: the raw header scan (headers[] unfolded, limits on count, size and
 * line length), the decoding of the fields the rest of Candor reads
 * (addresses, ids, date, subject; RFC 2047 words through libetpan's
 * mailmime_encoded_word_parse, RFC 2231 parameters), the MIME walk over
 * libetpan's mailmime_parse tree (bodies decoded by mailmime_part_parse),
 * charset conversion to UTF-8 with iconv, the choice of the readable body
 * (text/plain preferred, else text/html through text.c), the attachment
 * list, and the `candor parse` JSON object (json-c).
 *
 * Inputs: raw bytes in any charset with LF or CRLF line ends, possibly
 * hostile. Limits (struct candor_limits): message bytes, header bytes and
 * count, line bytes, MIME depth and parts, decoded bytes, text bytes, HTML
 * depth. Whatever cannot be read becomes an entry in msg->errors; the parse
 * itself only fails on ENOMEM, EINVAL or an unreadable file.
 *
 * RFCs: 5322 (fields, dates), 2045-2049 (MIME, RFC 2047 encoded words),
 * 2231 (parameter continuations and charsets), 3676 (format=flowed, in
 * text.c), 3462/6522 (multipart/report).
 */
#include <errno.h>
#include <iconv.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <libetpan/charconv.h>
#include <libetpan/mailimf.h>
#include <libetpan/mailmime.h>
#include <json-c/json.h>
#include "message.h"
#include "ctx.h"
#include "text.h"

/* At most this many RFC 2231 continuation segments are joined. */
#define MAX_PARAM_SEGMENTS 64
/* At most this many errors are listed per message (then one "more" line). */
#define MAX_ERRORS 50

/* ------------------------------------------------------------------ */
/* errors and small helpers                                            */
/* ------------------------------------------------------------------ */

bool candor__message_add_error(struct candor_message *msg, const char *fmt, ...)
{
    if (!msg)
        return false;
    if (msg->errors.n >= MAX_ERRORS) {
        if (msg->errors.n == MAX_ERRORS)
            return candor__strv_push(&msg->errors, "more errors not listed");
        return true;
    }
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* The text is ours, but may quote a charset or field name from the
     * mail: keep it valid UTF-8. */
    char *s = candor__utf8_sanitize(line, strlen(line), NULL);
    if (!s)
        return false;
    return candor__strv_push_owned(&msg->errors, s);
}

const char *candor__message_header(const struct candor_message *msg,
                                   const char *name, size_t nth)
{
    if (!msg || !name)
        return NULL;
    unsigned char first = candor__lower((unsigned char)name[0]);
    for (size_t i = 0; i < msg->n_headers; i++) {
        if (candor__lower((unsigned char)msg->headers[i].name[0]) == first
            && candor__strcasecmp(msg->headers[i].name, name) == 0) {
            if (nth == 0)
                return msg->headers[i].value;
            nth--;
        }
    }
    return NULL;
}

static bool is_wsp(char c) { return c == ' ' || c == '\t'; }

static void trim(const char **s, size_t *len)
{
    while (*len && candor__is_space((unsigned char)**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len && candor__is_space((unsigned char)(*s)[*len - 1]))
        (*len)--;
}

/* True when S[0..N) is plain ASCII without NUL: valid UTF-8 as it is.
 * Most header values and many bodies are; this looks at 8 bytes a time
 * before the full UTF-8 check. */
static bool plain_ascii(const char *s, size_t n)
{
    const uint64_t high = 0x8080808080808080ull, ones = 0x0101010101010101ull;
    size_t i = 0;
    for (; n - i >= 8; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        if ((x & high) || ((x - ones) & ~x & high))
            return false;
    }
    for (; i < n; i++)
        if (!s[i] || (unsigned char)s[i] >= 0x80)
            return false;
    return true;
}

/* candor__utf8_valid (same answer) for text that is mostly ASCII: runs of
 * ASCII go 8 bytes at a time, each other sequence through
 * candor__utf8_decode as there. */
static bool utf8_valid(const char *s, size_t n)
{
    const uint64_t high = 0x8080808080808080ull, ones = 0x0101010101010101ull;
    size_t i = 0;
    while (i < n) {
        while (n - i >= 8) {
            uint64_t x;
            memcpy(&x, s + i, 8);
            if ((x & high) || ((x - ones) & ~x & high))
                break;
            i += 8;
        }
        if (i >= n)
            break;
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            if (!c)
                return false;
            i++;
            continue;
        }
        uint32_t cp;
        size_t k = candor__utf8_decode(s + i, n - i, &cp);
        if (cp == 0xFFFD && !(k == 3 && memcmp(s + i, "\xEF\xBF\xBD", 3) == 0))
            return false;
        i += k;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* charsets                                                            */
/* ------------------------------------------------------------------ */

/* The iconv name for a MIME charset label. Labels that name a subset of a
 * common superset are read with the superset, as mail clients and the
 * WHATWG Encoding standard do (iso-8859-1 -> windows-1252, gb2312 -> GB18030,
 * shift_jis -> CP932, ks_c_5601-1987 -> CP949). "" means UTF-8/ASCII. */
static const char *iconv_name(const char *label, char *tmp, size_t tmpsz)
{
    size_t n = 0;
    for (const char *p = label; *p && n + 1 < tmpsz; p++) {
        if (*p == '*')      /* RFC 2231 section 5: charset*language */
            break;
        if (*p == '"' || *p == '\'' || candor__is_space((unsigned char)*p))
            continue;
        tmp[n++] = (char)candor__lower((unsigned char)*p);
    }
    tmp[n] = '\0';
    static const struct { const char *label, *name; } map[] = {
        { "", "" }, { "utf-8", "" }, { "utf8", "" }, { "us-ascii", "" },
        { "ascii", "" }, { "us_ascii", "" }, { "ansi_x3.4-1968", "" },
        { "x-unknown", "" }, { "unknown-8bit", "" }, { "default", "" },
        { "iso-8859-1", "WINDOWS-1252" }, { "iso8859-1", "WINDOWS-1252" },
        { "iso_8859-1", "WINDOWS-1252" }, { "latin1", "WINDOWS-1252" },
        { "latin-1", "WINDOWS-1252" }, { "l1", "WINDOWS-1252" },
        { "gb2312", "GB18030" }, { "gbk", "GB18030" }, { "x-gbk", "GB18030" },
        { "euc-cn", "GB18030" }, { "cp936", "GB18030" }, { "gb_2312-80", "GB18030" },
        { "shift_jis", "CP932" }, { "shift-jis", "CP932" }, { "sjis", "CP932" },
        { "x-sjis", "CP932" }, { "windows-31j", "CP932" }, { "ms_kanji", "CP932" },
        { "iso-2022-jp", "ISO-2022-JP-2" },
        { "ks_c_5601-1987", "CP949" }, { "euc-kr", "CP949" }, { "ks_c_5601", "CP949" },
        { "unicode-1-1-utf-7", "UTF-7" }, { "x-mac-roman", "MACINTOSH" },
        { "iso-8859-8-i", "ISO-8859-8" }, { "windows-874", "CP874" },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(tmp, map[i].label) == 0)
            return map[i].name;
    return tmp;
}

static bool buf_fffd(struct candor_buf *b) { return candor__buf_append(b, "\xEF\xBF\xBD", 3); }

/* Convert LEN bytes in the charset LABEL (NULL/"" = UTF-8 or ASCII) to a
 * new UTF-8 string. Invalid sequences become U+FFFD, counted in *BAD.
 * *UNKNOWN is set (and NULL returned) when iconv does not know the
 * charset. NULL with !*UNKNOWN means out of memory. Text declared ASCII
 * (or undeclared) that is not valid UTF-8 is read as windows-1252. */
static char *to_utf8(const char *label, const char *s, size_t len, size_t *bad, bool *unknown)
{
    char tmp[64];
    const char *name = iconv_name(label ? label : "", tmp, sizeof tmp);
    *bad = 0;
    *unknown = false;
    if (!*name) {
        if (utf8_valid(s, len))
            return candor__strndup(s, len);
        bool ascii_label = label && *label && strcmp(tmp, "utf-8") && strcmp(tmp, "utf8");
        if (!ascii_label)
            return candor__utf8_sanitize(s, len, bad);
        name = "WINDOWS-1252";
    }
    iconv_t cd = iconv_open("UTF-8", name);
    if (cd == (iconv_t)-1) {
        *unknown = true;
        return NULL;
    }
    struct candor_buf b = CANDOR_BUF_INIT;
    char *in = (char *)s;
    size_t inleft = len;
    char out[8192];
    while (inleft > 0) {
        char *o = out;
        size_t oleft = sizeof out;
        size_t r = iconv(cd, &in, &inleft, &o, &oleft);
        int e = errno;
        candor__buf_append(&b, out, (size_t)(o - out));
        if (r != (size_t)-1)
            continue;
        if (e == E2BIG)
            continue;
        /* EILSEQ, EINVAL (truncated sequence): one replacement, skip a byte. */
        buf_fffd(&b);
        (*bad)++;
        in++;
        inleft--;
    }
    char *o = out;
    size_t oleft = sizeof out;
    iconv(cd, NULL, NULL, &o, &oleft);
    candor__buf_append(&b, out, (size_t)(o - out));
    iconv_close(cd);
    if (b.oom) {
        candor__buf_free(&b);
        return NULL;
    }
    size_t olen = b.len;
    char *r = candor__buf_steal(&b);
    /* iconv's output may hold NUL (from the input), and glibc's UTF-8
     * decoder lets through sequences beyond U+10FFFF ("\xf5\xa9\x9a\x93",
     * found by fuzz-triage): check it, never assume it. */
    if (r && !utf8_valid(r, olen)) {
        size_t extra = 0;
        char *c = candor__utf8_sanitize(r, olen, &extra);
        free(r);
        r = c;
        *bad += extra;
    }
    return r;
}

/* libetpan (1.9.4) reads every Content-Type value as an RFC 2047 phrase
 * before parsing it, and converts each plain word from us-ascii to UTF-8
 * with its own iconv_open, iconv and iconv_close (glibc allocates 32 kB
 * for each descriptor): a tenth of the parse time went there. libetpan has
 * a hook for its conversions, the process-wide pointer extended_charconv;
 * unless someone else has set it, message.c sets it once to this function,
 * which copies plain ASCII declared us-ascii or UTF-8 into UTF-8 unchanged
 * (what iconv gives) and sends everything else on to iconv as before. */
static bool ascii_or_utf8_label(const char *l)
{
    return candor__strcasecmp(l, "us-ascii") == 0 || candor__strcasecmp(l, "utf-8") == 0
        || candor__strcasecmp(l, "ascii") == 0 || candor__strcasecmp(l, "utf8") == 0;
}

static int ascii_charconv(const char *tocode, const char *fromcode, const char *str, size_t length,
                          char *result, size_t *result_len)
{
    if (!tocode || !fromcode || !str || !result || !result_len || *result_len < length
        || candor__strcasecmp(tocode, "utf-8") != 0 || !ascii_or_utf8_label(fromcode)
        || !plain_ascii(str, length))
        return MAIL_CHARCONV_ERROR_UNKNOWN_CHARSET;
    memcpy(result, str, length);
    *result_len = length;
    return MAIL_CHARCONV_NO_ERROR;
}

static pthread_once_t charconv_once = PTHREAD_ONCE_INIT;
static void charconv_hook(void)
{
    if (!extended_charconv)
        extended_charconv = ascii_charconv;
}

/* libcandor unloaded before libetpan: leave no pointer into it behind */
__attribute__((destructor)) static void charconv_unhook(void)
{
    if (extended_charconv == ascii_charconv)
        extended_charconv = NULL;
}

/* ------------------------------------------------------------------ */
/* RFC 2047 encoded words                                              */
/* ------------------------------------------------------------------ */

/* Longest encoded word read (RFC 2047 allows 75 bytes; mailers exceed it). */
#define MAX_WORD 4096

/* The end (after "?=") of the encoded word "=?charset?X?text?=" at AT in
 * S, or 0 when there is none within MAX_WORD bytes. */
static size_t word_end(const char *s, size_t len, size_t at)
{
    size_t lim = len - at > MAX_WORD ? at + MAX_WORD : len;
    size_t i = at + 2, q = 0;
    for (; i < lim && q < 2; i++)          /* charset?encoding? */
        if (s[i] == '?')
            q++;
        else if (candor__is_space((unsigned char)s[i]))
            return 0;
    if (q < 2)
        return 0;
    for (; i + 1 < lim; i++)
        if (s[i] == '?' && s[i + 1] == '=')
            return i + 2 + (i + 2 < len && s[i + 2] == '"');
    return 0;
}

/* A run of adjacent encoded words in one charset, decoded but not yet
 * converted: a character may be split between two words (RFC 2047 6.3
 * forbids it, mailers do it), so the bytes are joined first. */
struct word_run {
    struct candor_buf bytes;
    char charset[64];
    size_t raw_start, raw_end;   /* the words as written, for an unknown charset */
    bool open;
};

static void run_flush(struct candor_message *msg, const char *what, const char *s,
                      struct word_run *run, struct candor_buf *b, bool *noted_bad,
                      bool *noted_unknown)
{
    if (!run->open)
        return;
    size_t nbad = 0;
    bool unknown = false;
    char *u = to_utf8(run->charset, run->bytes.data ? run->bytes.data : "", run->bytes.len,
                      &nbad, &unknown);
    if (unknown) {
        candor__buf_append(b, s + run->raw_start, run->raw_end - run->raw_start);
        if (!*noted_unknown)
            candor__message_add_error(msg, "%s: unknown charset \"%.40s\" in encoded word, kept as written",
                                      what, run->charset);
        *noted_unknown = true;
    } else if (u) {
        candor__buf_puts(b, u);
        if (nbad && !*noted_bad)
            candor__message_add_error(msg, "%s: %zu invalid byte sequence(s) in encoded word replaced",
                                      what, nbad);
        if (nbad)
            *noted_bad = true;
    } else {
        b->oom = true;
    }
    free(u);
    if (run->bytes.oom)
        b->oom = true;
    run->bytes.len = 0;
    run->bytes.oom = false;
    run->open = false;
}

/* Decode the encoded words in the (unfolded, UTF-8-sanitised) header text
 * S into a new UTF-8 string. libetpan's mailmime_encoded_word_parse does
 * the B/Q decoding; we convert the charsets ourselves so that bad bytes
 * become U+FFFD (libetpan writes "?"), an unknown charset keeps the words
 * as written (libetpan reads them as iso-8859-1), and adjacent words in
 * one charset are converted together. White space between two encoded
 * words is dropped (RFC 2047 section 6.2). Encoded words inside quoted
 * strings and words are decoded too (Outlook). */
static char *decode_words(struct candor_message *msg, const char *what,
                          const char *s, size_t len)
{
    if (!memmem(s, len, "=?", 2))
        return candor__strndup(s, len);
    struct candor_buf b = CANDOR_BUF_INIT;
    struct word_run run = { .bytes = CANDOR_BUF_INIT };
    size_t i = 0;
    bool last_ew = false;
    bool noted_bad = false, noted_unknown = false;
    while (i < len) {
        const char *p = memmem(s + i, len - i, "=?", 2);
        if (!p) {
            run_flush(msg, what, s, &run, &b, &noted_bad, &noted_unknown);
            candor__buf_append(&b, s + i, len - i);
            break;
        }
        size_t at = (size_t)(p - s);
        size_t idx = at;
        struct mailmime_encoded_word *w = NULL;
        int has_fwd = 0, missing_quote = 0;
        /* libetpan looks for the closing "?=" as far as the text goes, so
         * many unclosed words would cost quadratic time: the word (at most
         * MAX_WORD bytes, RFC 2047 says 75) is found here first and
         * libetpan sees only it. */
        size_t wend = word_end(s, len, at);
        int r = wend ? mailmime_encoded_word_parse(s, wend, &idx, &w, &has_fwd, &missing_quote)
                     : MAILIMF_ERROR_PARSE;
        /* libetpan also accepts a word that never closes: not ours */
        size_t end = idx;
        if (end > at && s[end - 1] == '"')
            end--;
        bool closed = end >= at + 4 && s[end - 2] == '?' && s[end - 1] == '=';
        if (r != MAILIMF_NO_ERROR || !w || idx <= at || !closed) {
            if (w)
                mailmime_encoded_word_free(w);
            run_flush(msg, what, s, &run, &b, &noted_bad, &noted_unknown);
            candor__buf_append(&b, s + i, at + 2 - i);
            i = at + 2;
            last_ew = false;
            continue;
        }
        bool only_ws = true;
        for (size_t k = i; k < at; k++)
            if (!candor__is_space((unsigned char)s[k]))
                only_ws = false;
        const char *cs = w->wd_charset ? w->wd_charset : "";
        bool joins = last_ew && only_ws && run.open && candor__strcasecmp(run.charset, cs) == 0;
        if (!joins) {
            run_flush(msg, what, s, &run, &b, &noted_bad, &noted_unknown);
            if (!(last_ew && only_ws))
                candor__buf_append(&b, s + i, at - i);
            snprintf(run.charset, sizeof run.charset, "%s", cs);
            run.raw_start = at;
            run.open = true;
        }
        const char *text = w->wd_text ? w->wd_text : "";
        candor__buf_append(&run.bytes, text, strlen(text));
        run.raw_end = idx;
        mailmime_encoded_word_free(w);
        i = idx;
        last_ew = true;
    }
    run_flush(msg, what, s, &run, &b, &noted_bad, &noted_unknown);
    candor__buf_free(&run.bytes);
    if (b.oom) {
        candor__buf_free(&b);
        return NULL;
    }
    return candor__buf_steal(&b);
}

/* ------------------------------------------------------------------ */
/* header scan                                                         */
/* ------------------------------------------------------------------ */

static bool header_name_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 32 || c >= 127 || c == ':')
            return false;
    }
    return true;
}

/* Header names and values are copied into a few large blocks the message
 * owns (freed with it) rather than two allocations a field. */
struct str_block {
    struct str_block *next;
    size_t used, cap;
    char data[];
};

#define STR_BLOCK 4096

/* N bytes from MSG's blocks, or NULL on OOM. */
static char *str_alloc(struct candor_message *msg, size_t n)
{
    struct str_block *b = msg->strings;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > STR_BLOCK ? n : STR_BLOCK;
        struct str_block *nb = malloc(sizeof *nb + cap);
        if (!nb)
            return NULL;
        nb->used = 0;
        nb->cap = cap;
        /* a block that would leave the current one mostly unused goes
         * behind it */
        if (b && n > STR_BLOCK / 2) {
            nb->next = b->next;
            b->next = nb;
            nb->used = n;
            return nb->data;
        }
        nb->next = b;
        msg->strings = b = nb;
    }
    char *p = b->data + b->used;
    b->used += n;
    return p;
}

static char *str_copy(struct candor_message *msg, const char *s, size_t n)
{
    char *p = str_alloc(msg, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static bool push_header(struct candor_message *msg, size_t *cap, const char *name, size_t nlen,
                        const char *value, size_t vlen)
{
    if (msg->n_headers == *cap) {
        size_t nc = *cap ? *cap * 2 : 32;
        struct candor_header *h = realloc(msg->headers, nc * sizeof *h);
        if (!h)
            return false;
        msg->headers = h;
        *cap = nc;
    }
    trim(&value, &vlen);
    size_t bad = 0;
    char *n = str_copy(msg, name, nlen), *v;
    if (plain_ascii(value, vlen)) {
        v = str_copy(msg, value, vlen);
    } else {
        char *u = candor__utf8_sanitize(value, vlen, &bad);
        v = u ? str_copy(msg, u, strlen(u)) : NULL;
        free(u);
    }
    if (!n || !v)
        return false;
    if (bad)
        candor__message_add_error(msg, "header %.60s: %zu byte(s) not UTF-8 replaced", n, bad);
    msg->headers[msg->n_headers].name = n;
    msg->headers[msg->n_headers].value = v;
    msg->n_headers++;
    return true;
}

/* Split the header section of D (LEN bytes) into msg->headers, unfolding
 * continuation lines. Returns the offset of the body, or (size_t)-1 on
 * OOM. The header ends at the first empty line, or (like Python's parser
 * and libetpan) at the first line that is neither a field nor a
 * continuation. */
static size_t scan_headers(struct candor_message *msg, const char *d, size_t len, size_t start)
{
    const struct candor_limits *lim = &msg->ctx->limits;
    size_t cap = 0, pos = start, total = 0;
    bool over_count = false, over_bytes = false, long_line = false;
    struct candor_buf val = CANDOR_BUF_INIT;
    const char *cur_name = NULL;
    size_t cur_nlen = 0;
    bool have = false;
    size_t body = len;

    while (pos < len) {
        const char *nl = memchr(d + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - d) : len;
        size_t next = nl ? end + 1 : len;
        size_t llen = end - pos;
        if (llen && d[pos + llen - 1] == '\r')
            llen--;
        const char *line = d + pos;
        if (llen == 0) {
            body = next;
            break;
        }
        if (llen > lim->max_line_bytes) {
            if (!long_line)
                candor__message_add_error(msg, "header: line longer than %zu bytes cut",
                                          lim->max_line_bytes);
            long_line = true;
            llen = lim->max_line_bytes;
        }
        total += next - pos;
        if (is_wsp(line[0])) {
            if (have && !over_bytes && !over_count)
                candor__buf_append(&val, line, llen);
            else if (!have && pos == start) {
                /* A first line that is a continuation: malformed, skip it. */
                candor__message_add_error(msg, "header: continuation line without a field");
            }
            pos = next;
            continue;
        }
        const char *colon = memchr(line, ':', llen);
        size_t nlen = colon ? (size_t)(colon - line) : 0;
        while (nlen && is_wsp(line[nlen - 1]))   /* "Subject :" (obsolete syntax) */
            nlen--;
        if (!colon || !header_name_ok(line, nlen)) {
            if (msg->n_headers || have)
                candor__message_add_error(msg, "header: line without a field name ends the header");
            else
                candor__message_add_error(msg, "header: no header fields");
            body = pos;
            break;
        }
        if (have && !over_bytes && !over_count) {
            if (!push_header(msg, &cap, cur_name, cur_nlen, val.data ? val.data : "", val.len))
                goto oom;
        }
        have = false;
        val.len = 0;
        if (val.data)
            val.data[0] = '\0';
        if (total > lim->max_header_bytes) {
            if (!over_bytes)
                candor__message_add_error(msg, "header: more than %zu bytes, rest ignored",
                                          lim->max_header_bytes);
            over_bytes = true;
        } else if (msg->n_headers >= lim->max_headers) {
            if (!over_count)
                candor__message_add_error(msg, "header: more than %zu fields, rest ignored",
                                          lim->max_headers);
            over_count = true;
        }
        cur_name = line;
        cur_nlen = nlen;
        have = true;
        candor__buf_append(&val, colon + 1, llen - (size_t)(colon - line) - 1);
        pos = next;
    }
    if (pos >= len && body == len && have)
        body = len;
    if (have && !over_bytes && !over_count)
        if (!push_header(msg, &cap, cur_name, cur_nlen, val.data ? val.data : "", val.len))
            goto oom;
    if (val.oom)
        goto oom;
    candor__buf_free(&val);
    return body;
oom:
    candor__buf_free(&val);
    return (size_t)-1;
}

/* ------------------------------------------------------------------ */
/* structured fields                                                   */
/* ------------------------------------------------------------------ */

static bool addrlist_push(struct candor_addrlist *l, size_t *cap, struct candor_addr a)
{
    if (l->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        struct candor_addr *v = realloc(l->v, nc * sizeof *v);
        if (!v)
            return false;
        l->v = v;
        *cap = nc;
    }
    l->v[l->n++] = a;
    return true;
}

static void addr_free(struct candor_addr *a)
{
    free(a->name);
    free(a->address);
    a->name = a->address = NULL;
}

/* A last resort for an address field libetpan cannot read: every <...>
 * or word with an '@' becomes an address (no name). */
static bool lax_addresses(struct candor_addrlist *l, size_t *cap, const char *v)
{
    size_t n = strlen(v);
    size_t i = 0;
    while (i < n && l->n < 1000) {
        while (i < n && (candor__is_space((unsigned char)v[i]) || v[i] == ',' || v[i] == ';'))
            i++;
        size_t j = i;
        const char *lt = NULL;
        while (j < n && v[j] != ',' && v[j] != ';') {
            if (v[j] == '<' && !lt)
                lt = v + j;
            j++;
        }
        const char *a = NULL;
        size_t alen = 0;
        if (lt) {
            const char *gt = memchr(lt, '>', (size_t)(v + j - lt));
            a = lt + 1;
            alen = gt ? (size_t)(gt - a) : (size_t)(v + j - a);
        } else if (memchr(v + i, '@', j - i)) {
            a = v + i;
            alen = j - i;
        }
        if (a) {
            trim(&a, &alen);
            if (alen && memchr(a, '@', alen)) {
                struct candor_addr ad = { NULL, candor__strndup(a, alen) };
                if (!ad.address || !addrlist_push(l, cap, ad)) {
                    free(ad.address);
                    return false;
                }
            }
        }
        i = j + 1;
    }
    return true;
}

/* Skip white space and (nested) comments from *I; bounded by LEN. */
static void skip_cfws(const char *s, size_t len, size_t *i)
{
    while (*i < len) {
        if (candor__is_space((unsigned char)s[*i])) {
            (*i)++;
        } else if (s[*i] == '(') {
            size_t depth = 0;
            while (*i < len) {
                if (s[*i] == '\\' && *i + 1 < len)
                    (*i)++;
                else if (s[*i] == '(')
                    depth++;
                else if (s[*i] == ')' && --depth == 0) {
                    (*i)++;
                    break;
                }
                (*i)++;
            }
        } else {
            break;
        }
    }
}

/* The display name of one raw name-addr S[0..LEN): the text before the
 * first '<' outside quotes, quotes and escapes removed, comments dropped.
 * libetpan's own display names lose text when a quoted string holds
 * encoded words and escaped quotes, so the name is read from the raw text
 * (the words are then decoded by decode_words). NULL when none. */
static char *raw_display_name(const char *s, size_t len)
{
    struct candor_buf b = CANDOR_BUF_INIT;
    bool inq = false, found = false;
    size_t i = 0;
    while (i < len) {
        char c = s[i];
        if (inq) {
            if (c == '\\' && i + 1 < len) {
                candor__buf_putc(&b, s[i + 1]);
                i += 2;
                continue;
            }
            if (c == '"')
                inq = false;
            else
                candor__buf_putc(&b, c);
            i++;
            continue;
        }
        if (c == '"') {
            inq = true;
            i++;
        } else if (c == '(') {
            skip_cfws(s, len, &i);
            candor__buf_putc(&b, ' ');
        } else if (c == '<') {
            found = true;
            break;
        } else {
            candor__buf_putc(&b, c);
            i++;
        }
    }
    if (!found || b.oom) {
        candor__buf_free(&b);
        return NULL;
    }
    /* trim and collapse runs of white space */
    struct candor_buf o = CANDOR_BUF_INIT;
    bool sp = false;
    for (size_t k = 0; k < b.len; k++) {
        if (candor__is_space((unsigned char)b.data[k])) {
            sp = o.len > 0;
            continue;
        }
        if (sp)
            candor__buf_putc(&o, ' ');
        sp = false;
        candor__buf_putc(&o, b.data[k]);
    }
    candor__buf_free(&b);
    if (o.oom || o.len == 0) {
        candor__buf_free(&o);
        return NULL;
    }
    return candor__buf_steal(&o);
}

static bool push_mailbox(struct candor_message *msg, const char *what, struct candor_addrlist *l,
                         size_t *cap, const char *raw_name, const char *spec)
{
    struct candor_addr a = { NULL, NULL };
    if (raw_name) {
        a.name = decode_words(msg, what, raw_name, strlen(raw_name));
        if (!a.name)
            return false;
        if (!*a.name) {
            free(a.name);
            a.name = NULL;
        }
    }
    if (spec) {
        const char *sp = spec;
        /* "Foo <foo@bar" comes back from libetpan as "Foo<foo@bar" */
        const char *lt = strrchr(sp, '<');
        if (lt)
            sp = lt + 1;
        size_t n = strlen(sp);
        trim(&sp, &n);
        if (n && sp[n - 1] == '>')
            n--;
        a.address = candor__strndup(sp, n);
        if (!a.address) {
            addr_free(&a);
            return false;
        }
        if (lt)
            candor__message_add_error(msg, "%s: malformed address read leniently", what);
    }
    if (!addrlist_push(l, cap, a)) {
        addr_free(&a);
        return false;
    }
    return true;
}

/* Parse the address-list field VALUE (may be NULL) into L, one address at
 * a time with libetpan's mailimf_address_parse. */
static bool parse_addrlist(struct candor_message *msg, const char *what, const char *value,
                           struct candor_addrlist *l)
{
    if (!value)
        return true;
    size_t cap = l->n, len = strlen(value), idx = 0;
    while (idx < len && l->n < 1000) {
        skip_cfws(value, len, &idx);
        while (idx < len && value[idx] == ',') {   /* empty list elements */
            idx++;
            skip_cfws(value, len, &idx);
        }
        if (idx >= len)
            break;
        size_t start = idx;
        struct mailimf_address *ad = NULL;
        int r = mailimf_address_parse(value, len, &idx, &ad);
        if (r == MAILIMF_ERROR_MEMORY)
            return false;
        if (r != MAILIMF_NO_ERROR || !ad || idx <= start) {
            if (ad)
                mailimf_address_free(ad);
            candor__message_add_error(msg, "%s: cannot parse the address list", what);
            return lax_addresses(l, &cap, value + start);
        }
        bool ok = true;
        if (ad->ad_type == MAILIMF_ADDRESS_MAILBOX && ad->ad_data.ad_mailbox) {
            char *name = raw_display_name(value + start, idx - start);
            ok = push_mailbox(msg, what, l, &cap, name, ad->ad_data.ad_mailbox->mb_addr_spec);
            free(name);
        } else if (ad->ad_type == MAILIMF_ADDRESS_GROUP && ad->ad_data.ad_group
                   && ad->ad_data.ad_group->grp_mb_list) {
            clist *mbs = ad->ad_data.ad_group->grp_mb_list->mb_list;
            for (clistiter *j = clist_begin(mbs); j && ok; j = clist_next(j)) {
                struct mailimf_mailbox *mb = clist_content(j);
                ok = push_mailbox(msg, what, l, &cap, mb->mb_display_name, mb->mb_addr_spec);
            }
        }
        mailimf_address_free(ad);
        if (!ok)
            return false;
        skip_cfws(value, len, &idx);
        if (idx < len && value[idx] != ',') {
            candor__message_add_error(msg, "%s: text after an address ignored", what);
            return lax_addresses(l, &cap, value + idx);
        }
        if (idx < len)
            idx++;
    }
    return true;
}

/* Strip CFWS and angle brackets from a message id. */
static char *clean_id(const char *s, size_t n)
{
    trim(&s, &n);
    if (n && s[0] == '<') {
        s++;
        n--;
        const char *gt = memchr(s, '>', n);
        if (gt)
            n = (size_t)(gt - s);
    }
    trim(&s, &n);
    return candor__strndup(s, n);
}

/* The ids of VALUE ("<a@b> <c@d>"), at most MAX: every <...> in order,
 * with only white space and comments between them (RFC 5322 3.6.4); else
 * read leniently (bare words when there are no brackets) with an errors
 * entry. (A plain scan: libetpan's msg-id list parser spent more than the
 * rest of the header work on long References fields, for the same ids.) */
static bool parse_ids(struct candor_message *msg, const char *what, const char *value,
                      struct candor_strv *out, size_t max)
{
    size_t len = strlen(value), i = 0;
    bool ok = true, any = false, junk = false;
    while (i < len && ok) {
        size_t before = i;
        skip_cfws(value, len, &i);
        if (i >= len)
            break;
        if (value[i] != '<') {
            junk = true;
            const char *lt = memchr(value + i, '<', len - i);
            if (!lt)
                break;
            i = (size_t)(lt - value);
        }
        const char *gt = memchr(value + i, '>', len - i);
        if (!gt) {
            junk = true;
            break;
        }
        char *id = clean_id(value + i, (size_t)(gt - value) - i + 1);
        if (!id)
            return false;
        if (*id && out->n < max)
            ok = candor__strv_push_owned(out, id);
        else
            free(id);
        any = true;
        i = (size_t)(gt - value) + 1;
        if (i <= before)
            break;
    }
    if (!any && ok) {
        /* No brackets at all: white-space separated words. */
        i = 0;
        while (i < len && ok && out->n < max) {
            while (i < len && candor__is_space((unsigned char)value[i]))
                i++;
            size_t j = i;
            while (j < len && !candor__is_space((unsigned char)value[j]))
                j++;
            if (j > i)
                ok = candor__strv_push_owned(out, candor__strndup(value + i, j - i));
            i = j;
        }
        junk = out->n > 0;
    }
    if (ok && junk)
        candor__message_add_error(msg, "%s: malformed message id(s) read leniently", what);
    return ok;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void parse_date(struct candor_message *msg, const char *value)
{
    size_t len = strlen(value), idx = 0;
    struct mailimf_date_time *dt = NULL;
    int r = mailimf_date_time_parse(value, len, &idx, &dt);
    if (r != MAILIMF_NO_ERROR || !dt) {
        candor__message_add_error(msg, "date: cannot parse \"%.60s\"", value);
        return;
    }
    int year = dt->dt_year;
    if (year >= 0 && year < 50)      /* RFC 5322 4.3: obsolete 2-digit years */
        year += 2000;
    else if (year >= 50 && year < 1000)
        year += 1900;
    int zone = dt->dt_zone;
    int zsign = zone < 0 ? -1 : 1;
    int zabs = zone < 0 ? -zone : zone;
    if (year < 1 || year > 9999 || dt->dt_month < 1 || dt->dt_month > 12 || dt->dt_day < 1
        || dt->dt_day > 31 || dt->dt_hour < 0 || dt->dt_hour > 23 || dt->dt_min < 0
        || dt->dt_min > 59 || dt->dt_sec < 0 || dt->dt_sec > 60 || zabs % 100 > 59
        || zabs > 9959) {
        candor__message_add_error(msg, "date: out of range \"%.60s\"", value);
        mailimf_date_time_free(dt);
        return;
    }
    int64_t days = days_from_civil(year, (unsigned)dt->dt_month, (unsigned)dt->dt_day);
    int64_t t = days * 86400 + dt->dt_hour * 3600 + dt->dt_min * 60 + dt->dt_sec;
    t -= (int64_t)zsign * ((zabs / 100) * 3600 + (zabs % 100) * 60);
    msg->date = t;
    msg->has_date = true;
    mailimf_date_time_free(dt);
}

static bool parse_fields(struct candor_message *msg)
{
    const char *v;
    bool ok = true;
    if ((v = candor__message_header(msg, "Message-ID", 0))) {
        msg->message_id = clean_id(v, strlen(v));
        ok = ok && msg->message_id;
        if (ok && !*msg->message_id) {
            free(msg->message_id);
            msg->message_id = NULL;
        }
    }
    struct candor_addrlist tmp = { NULL, 0 };
    if (ok && (v = candor__message_header(msg, "From", 0))) {
        ok = parse_addrlist(msg, "From", v, &tmp);
        if (ok && tmp.n) {
            msg->from = tmp.v[0];
            for (size_t i = 1; i < tmp.n; i++)
                addr_free(&tmp.v[i]);
        }
        free(tmp.v);
        tmp.v = NULL;
        tmp.n = 0;
    }
    if (ok && (v = candor__message_header(msg, "Sender", 0))) {
        ok = parse_addrlist(msg, "Sender", v, &tmp);
        if (ok && tmp.n) {
            msg->sender = tmp.v[0];
            for (size_t i = 1; i < tmp.n; i++)
                addr_free(&tmp.v[i]);
        }
        free(tmp.v);
        tmp.v = NULL;
        tmp.n = 0;
    }
    static const struct { const char *name; size_t off; } lists[] = {
        { "To", offsetof(struct candor_message, to) },
        { "Cc", offsetof(struct candor_message, cc) },
        { "Bcc", offsetof(struct candor_message, bcc) },
        { "Reply-To", offsetof(struct candor_message, reply_to) },
        { "Resent-To", offsetof(struct candor_message, resent_to) },
        { "Resent-Cc", offsetof(struct candor_message, resent_cc) },
        { "Resent-Bcc", offsetof(struct candor_message, resent_bcc) },
    };
    for (size_t i = 0; ok && i < sizeof lists / sizeof lists[0]; i++) {
        struct candor_addrlist *l = (struct candor_addrlist *)((char *)msg + lists[i].off);
        /* Resent-* blocks may repeat (RFC 5322 3.6.6): take them all. */
        size_t maxn = strncmp(lists[i].name, "Resent-", 7) == 0 ? 100 : 1;
        for (size_t k = 0; ok && k < maxn && (v = candor__message_header(msg, lists[i].name, k)); k++)
            ok = parse_addrlist(msg, lists[i].name, v, l);
    }
    if (ok && (v = candor__message_header(msg, "Return-Path", 0))) {
        const char *s = v;
        size_t n = strlen(v);
        trim(&s, &n);
        const char *lt = memchr(s, '<', n);
        if (lt) {
            const char *gt = memchr(lt, '>', (size_t)(s + n - lt));
            size_t an = gt ? (size_t)(gt - lt - 1) : (size_t)(s + n - lt - 1);
            const char *a = lt + 1;
            trim(&a, &an);
            msg->return_path = candor__strndup(a, an);
        } else {
            msg->return_path = candor__strndup(s, n);
        }
        ok = msg->return_path != NULL;
    }
    for (size_t k = 0; ok && k < 100 && (v = candor__message_header(msg, "Delivered-To", k)); k++) {
        const char *s = v;
        size_t n = strlen(v);
        trim(&s, &n);
        if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
            s++;
            n -= 2;
        }
        ok = candor__strv_push_owned(&msg->delivered_to, candor__strndup(s, n));
    }
    if (ok && (v = candor__message_header(msg, "Subject", 0))) {
        msg->subject = decode_words(msg, "Subject", v, strlen(v));
        ok = msg->subject != NULL;
    }
    if ((v = candor__message_header(msg, "Date", 0)))
        parse_date(msg, v);
    if (ok && (v = candor__message_header(msg, "In-Reply-To", 0))) {
        struct candor_strv ids = CANDOR_STRV_INIT;
        ok = parse_ids(msg, "In-Reply-To", v, &ids, 1);
        if (ok && ids.n) {
            msg->in_reply_to = ids.v[0];
            ids.v[0] = NULL;
        }
        candor__strv_free(&ids);
    }
    if (ok && (v = candor__message_header(msg, "References", 0)))
        ok = parse_ids(msg, "References", v, &msg->references, 1000);
    if (ok && (v = candor__message_header(msg, "Auto-Submitted", 0)))
        ok = (msg->auto_submitted = candor__strdup(v)) != NULL;
    if (ok && (v = candor__message_header(msg, "List-Id", 0)))
        ok = (msg->list_id = candor__strdup(v)) != NULL;
    return ok;
}

/* ------------------------------------------------------------------ */
/* MIME walk                                                           */
/* ------------------------------------------------------------------ */

struct walk {
    struct candor_message *msg;
    const struct candor_limits *lim;
    size_t parts;
    size_t decoded;
    bool parts_noted, depth_noted, decoded_noted, close_noted;
    struct mailmime *body;     /* the chosen readable part */
    int body_prio;             /* 0 text/plain, 1 text/html */
    size_t att_cap;
    bool oom;
};

/* "type/subtype", lower-case, of a content type (text/plain when none). */
static void content_type_str(const struct mailmime_content *ct, char *out, size_t outsz)
{
    const char *type = "text", *sub = "plain";
    if (ct && ct->ct_type) {
        const struct mailmime_type *t = ct->ct_type;
        if (t->tp_type == MAILMIME_TYPE_DISCRETE_TYPE && t->tp_data.tp_discrete_type) {
            switch (t->tp_data.tp_discrete_type->dt_type) {
            case MAILMIME_DISCRETE_TYPE_TEXT: type = "text"; break;
            case MAILMIME_DISCRETE_TYPE_IMAGE: type = "image"; break;
            case MAILMIME_DISCRETE_TYPE_AUDIO: type = "audio"; break;
            case MAILMIME_DISCRETE_TYPE_VIDEO: type = "video"; break;
            case MAILMIME_DISCRETE_TYPE_APPLICATION: type = "application"; break;
            default:
                type = t->tp_data.tp_discrete_type->dt_extension
                     ? t->tp_data.tp_discrete_type->dt_extension : "application";
            }
        } else if (t->tp_type == MAILMIME_TYPE_COMPOSITE_TYPE && t->tp_data.tp_composite_type) {
            switch (t->tp_data.tp_composite_type->ct_type) {
            case MAILMIME_COMPOSITE_TYPE_MESSAGE: type = "message"; break;
            case MAILMIME_COMPOSITE_TYPE_MULTIPART: type = "multipart"; break;
            default:
                type = t->tp_data.tp_composite_type->ct_token
                     ? t->tp_data.tp_composite_type->ct_token : "application";
            }
        }
        if (ct->ct_subtype)
            sub = ct->ct_subtype;
    }
    snprintf(out, outsz, "%s/%s", type, sub);
    for (char *p = out; *p; p++)
        *p = (char)candor__lower((unsigned char)*p);
}

static const struct mailmime_disposition *part_disposition(const struct mailmime *m)
{
    if (!m->mm_mime_fields)
        return NULL;
    for (clistiter *it = clist_begin(m->mm_mime_fields->fld_list); it; it = clist_next(it)) {
        struct mailmime_field *f = clist_content(it);
        if (f->fld_type == MAILMIME_FIELD_DISPOSITION)
            return f->fld_data.fld_disposition;
    }
    return NULL;
}

static const char *part_content_id(const struct mailmime *m)
{
    if (!m->mm_mime_fields)
        return NULL;
    for (clistiter *it = clist_begin(m->mm_mime_fields->fld_list); it; it = clist_next(it)) {
        struct mailmime_field *f = clist_content(it);
        if (f->fld_type == MAILMIME_FIELD_ID)
            return f->fld_data.fld_id;
    }
    return NULL;
}

/* The Content-Transfer-Encoding of a part (MAILMIME_MECHANISM_*). */
static int part_encoding(const struct mailmime *m)
{
    if (!m->mm_mime_fields)
        return MAILMIME_MECHANISM_7BIT;
    for (clistiter *it = clist_begin(m->mm_mime_fields->fld_list); it; it = clist_next(it)) {
        struct mailmime_field *f = clist_content(it);
        if (f->fld_type == MAILMIME_FIELD_TRANSFER_ENCODING && f->fld_data.fld_encoding)
            return f->fld_data.fld_encoding->enc_type;
    }
    return MAILMIME_MECHANISM_7BIT;
}

static bool is_attachment(const struct mailmime *m)
{
    const struct mailmime_disposition *d = part_disposition(m);
    return d && d->dsp_type && d->dsp_type->dsp_type == MAILMIME_DISPOSITION_TYPE_ATTACHMENT;
}

/* A parameter list flattened to name/value pairs. */
struct params {
    const char *name[128];
    const char *value[128];
    size_t n;
};

static void params_from_content(const struct mailmime_content *ct, struct params *p)
{
    p->n = 0;
    if (!ct || !ct->ct_parameters)
        return;
    for (clistiter *it = clist_begin(ct->ct_parameters); it && p->n < 128; it = clist_next(it)) {
        struct mailmime_parameter *pa = clist_content(it);
        if (pa && pa->pa_name && pa->pa_value) {
            p->name[p->n] = pa->pa_name;
            p->value[p->n++] = pa->pa_value;
        }
    }
}

static void params_from_disposition(const struct mailmime_disposition *d, struct params *p)
{
    p->n = 0;
    if (!d || !d->dsp_parms)
        return;
    for (clistiter *it = clist_begin(d->dsp_parms); it && p->n < 128; it = clist_next(it)) {
        struct mailmime_disposition_parm *pa = clist_content(it);
        if (pa->pa_type == MAILMIME_DISPOSITION_PARM_FILENAME && pa->pa_data.pa_filename) {
            p->name[p->n] = "filename";
            p->value[p->n++] = pa->pa_data.pa_filename;
        } else if (pa->pa_type == MAILMIME_DISPOSITION_PARM_PARAMETER && pa->pa_data.pa_parameter
                   && pa->pa_data.pa_parameter->pa_name && pa->pa_data.pa_parameter->pa_value) {
            p->name[p->n] = pa->pa_data.pa_parameter->pa_name;
            p->value[p->n++] = pa->pa_data.pa_parameter->pa_value;
        }
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void pct_decode(struct candor_buf *b, const char *s)
{
    for (; *s; s++) {
        int h, l;
        if (*s == '%' && (h = hexval(s[1])) >= 0 && (l = hexval(s[2])) >= 0) {
            candor__buf_putc(b, (char)(h * 16 + l));
            s += 2;
        } else {
            candor__buf_putc(b, *s);
        }
    }
}

/* Strip one pair of surrounding double quotes (libetpan may keep them). */
static const char *unquote(const char *v, char *tmp, size_t tmpsz)
{
    size_t n = strlen(v);
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"' && n - 2 < tmpsz) {
        memcpy(tmp, v + 1, n - 2);
        tmp[n - 2] = '\0';
        return tmp;
    }
    return v;
}

/* The value of parameter NAME, decoded: RFC 2231 (name*, name*0*, ...
 * continuations with a charset) when present, else the plain value with
 * any RFC 2047 words in it decoded (Outlook writes them inside quotes).
 * New string, NULL when absent; *OOM on allocation failure. */
static char *param_get(struct candor_message *msg, const struct params *p, const char *name,
                       bool *oom)
{
    size_t nlen = strlen(name);
    /* RFC 2231: collect name*N[*] and name* segments by index. */
    const char *seg[MAX_PARAM_SEGMENTS] = {0};
    bool seg_ext[MAX_PARAM_SEGMENTS] = {0};
    size_t nseg = 0;
    for (size_t i = 0; i < p->n; i++) {
        const char *pn = p->name[i];
        if (candor__strncasecmp(pn, name, nlen) != 0 || pn[nlen] != '*')
            continue;
        const char *rest = pn + nlen + 1;
        long idx = 0;
        bool ext;
        if (!*rest) {
            ext = true;                                 /* name*=charset'lang'value */
        } else {
            char *end;
            idx = strtol(rest, &end, 10);
            if (end == rest || idx < 0 || idx >= MAX_PARAM_SEGMENTS
                || (*end && strcmp(end, "*") != 0))
                continue;
            ext = *end == '*';
        }
        if (!seg[idx]) {
            seg[idx] = p->value[i];
            seg_ext[idx] = ext;
            if ((size_t)idx + 1 > nseg)
                nseg = (size_t)idx + 1;
        }
    }
    if (nseg && seg[0]) {
        struct candor_buf raw = CANDOR_BUF_INIT;
        char charset[64] = "";
        for (size_t k = 0; k < nseg && seg[k]; k++) {
            char qtmp[1024];
            const char *v = unquote(seg[k], qtmp, sizeof qtmp);
            if (seg_ext[k]) {
                if (k == 0) {
                    const char *q1 = strchr(v, '\'');
                    const char *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
                    if (q1 && q2) {
                        size_t cl = (size_t)(q1 - v);
                        if (cl >= sizeof charset)
                            cl = sizeof charset - 1;
                        memcpy(charset, v, cl);
                        charset[cl] = '\0';
                        v = q2 + 1;
                    }
                }
                pct_decode(&raw, v);
            } else {
                candor__buf_puts(&raw, v);
            }
        }
        if (raw.oom) {
            candor__buf_free(&raw);
            *oom = true;
            return NULL;
        }
        size_t bad = 0;
        bool unknown = false;
        char *r = to_utf8(charset, raw.data ? raw.data : "", raw.len, &bad, &unknown);
        if (unknown) {
            candor__message_add_error(msg, "parameter %s: unknown charset \"%.40s\"", name, charset);
            r = candor__utf8_sanitize(raw.data ? raw.data : "", raw.len, &bad);
        }
        if (r && bad)
            candor__message_add_error(msg, "parameter %s: %zu invalid byte sequence(s) replaced",
                                      name, bad);
        candor__buf_free(&raw);
        if (!r)
            *oom = true;
        return r;
    }
    for (size_t i = 0; i < p->n; i++) {
        if (candor__strcasecmp(p->name[i], name) != 0)
            continue;
        char qtmp[1024];
        const char *v = unquote(p->value[i], qtmp, sizeof qtmp);
        size_t bad = 0;
        char *s = candor__utf8_sanitize(v, strlen(v), &bad);
        if (!s) {
            *oom = true;
            return NULL;
        }
        if (bad)
            candor__message_add_error(msg, "parameter %s: %zu byte(s) not UTF-8 replaced", name, bad);
        char *d = decode_words(msg, name, s, strlen(s));
        free(s);
        if (!d)
            *oom = true;
        return d;
    }
    return NULL;
}

static char *part_filename(struct walk *w, const struct mailmime *m)
{
    struct params p;
    bool oom = false;
    params_from_disposition(part_disposition(m), &p);
    char *f = param_get(w->msg, &p, "filename", &oom);
    if (!f && !oom) {
        params_from_content(m->mm_content_type, &p);
        f = param_get(w->msg, &p, "name", &oom);
    }
    if (oom)
        w->oom = true;
    if (f && !*f) {
        free(f);
        f = NULL;
    }
    return f;
}

static char *part_charset(const struct mailmime *m)
{
    struct params p;
    params_from_content(m->mm_content_type, &p);
    for (size_t i = 0; i < p.n; i++)
        if (candor__strcasecmp(p.name[i], "charset") == 0) {
            char tmp[128];
            return candor__strdup(unquote(p.value[i], tmp, sizeof tmp));
        }
    return NULL;
}

static const char *part_param(const struct mailmime *m, const char *name)
{
    struct params p;
    params_from_content(m->mm_content_type, &p);
    for (size_t i = 0; i < p.n; i++)
        if (candor__strcasecmp(p.name[i], name) == 0)
            return p.value[i];
    return NULL;
}

/* Decode the transfer encoding of a part's body. *OUT is an mmap_string
 * from libetpan (free with mailmime_decoded_part_free) when *OWNED, else
 * the part's own bytes (7bit, 8bit, binary: nothing to decode, so no
 * copy); NULL with *LEN = 0 when the decoded-bytes budget is spent.
 * Returns false on OOM. */
static bool decode_part(struct walk *w, const struct mailmime_data *data, char **out, size_t *len,
                        bool *owned)
{
    *out = NULL;
    *len = 0;
    *owned = false;
    if (!data || data->dt_type != MAILMIME_DATA_TEXT || !data->dt_data.dt_text.dt_data)
        return true;
    const char *src = data->dt_data.dt_text.dt_data;
    size_t slen = data->dt_data.dt_text.dt_length;
    size_t left = w->lim->max_decoded_bytes - w->decoded;
    if (slen > left) {
        /* Decoding never grows the data, so the first LEFT encoded bytes
         * fit in what is left of the budget. */
        if (!w->decoded_noted)
            candor__message_add_error(w->msg, "MIME: more than %zu decoded bytes, rest not decoded",
                                      w->lim->max_decoded_bytes);
        w->decoded_noted = true;
        slen = left;
        if (!slen)
            return true;
    }
    int enc = data->dt_encoded ? data->dt_encoding : MAILMIME_MECHANISM_8BIT;
    if (enc != MAILMIME_MECHANISM_BASE64 && enc != MAILMIME_MECHANISM_QUOTED_PRINTABLE) {
        *out = (char *)src;
        *len = slen;
        w->decoded += slen;
        return true;
    }
    /* libetpan's quoted-printable decoder reads two bytes after a '='
     * without checking the length, so "=X" at the very end of the input
     * read past the caller's buffer (fuzz-message, ASan): decode a copy
     * with NUL padding instead. */
    char *pad = malloc(slen + 4);
    if (!pad)
        return false;
    memcpy(pad, src, slen);
    memset(pad + slen, 0, 4);
    size_t idx = 0;
    int r = mailmime_part_parse(pad, slen, &idx, enc, out, len);
    free(pad);
    if (r == MAILIMF_ERROR_MEMORY)
        return false;
    if (r != MAILIMF_NO_ERROR) {
        *out = NULL;
        *len = 0;
        candor__message_add_error(w->msg, "MIME: a part could not be decoded");
        return true;
    }
    *owned = true;
    w->decoded += *len;
    return true;
}

/* RFC 2045 6.8: the 64 characters of the base64 alphabet. */
#define B64_ROW(a) a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a
static const unsigned char b64_alpha[256] = {
    B64_ROW(0), B64_ROW(0),
    /* 0x20 */ 0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,1,            /* '+' '/' */
    /* 0x30 */ 1,1,1,1,1,1,1,1,1,1,0,0,0,0,0,0,            /* digits */
    /* 0x40 */ 0,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    /* 0x50 */ 1,1,1,1,1,1,1,1,1,1,1,0,0,0,0,0,
    /* 0x60 */ 0,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    /* 0x70 */ 1,1,1,1,1,1,1,1,1,1,1,0,0,0,0,0,
    B64_ROW(0), B64_ROW(0), B64_ROW(0), B64_ROW(0),
    B64_ROW(0), B64_ROW(0), B64_ROW(0), B64_ROW(0),
};

/* The decoded size of base64 text: 3 bytes per 4 alphabet characters,
 * everything else ignored (as libetpan's decoder does). Attachments are
 * most of the bytes of support mail, so the count goes 32 bytes at a time
 * (GNU C vector extensions: one AVX2 register where the CPU has AVX2,
 * chosen at load time by target_clones, else two SSE2 or NEON registers,
 * else plain C). */
typedef unsigned char v32u8 __attribute__((vector_size(32)));
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
__attribute__((target_clones("avx2", "default")))
#endif
#endif
static size_t base64_size(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t count = 0, i = 0;
    while (n - i >= 32) {
        /* at most 255 rounds per byte lane before the lanes are summed */
        v32u8 acc = { 0 };
        size_t rounds = 0;
        for (; n - i >= 32 && rounds < 255; i += 32, rounds++) {
            v32u8 v;
            memcpy(&v, u + i, 32);
            v32u8 up = v & (unsigned char)0xDF;                  /* a-z -> A-Z */
            /* lanes are 0 or 0xFF (-1): subtracting counts the hits */
            acc -= (v32u8)((v32u8)(up - (unsigned char)'A') < (unsigned char)26)
                 | (v32u8)((v32u8)(v - (unsigned char)'0') < (unsigned char)10)
                 | (v32u8)((v32u8)(v | (unsigned char)4) == (unsigned char)'/');  /* + or / */
        }
        for (int k = 0; k < 32; k++)
            count += acc[k];
    }
    for (; i < n; i++)
        count += b64_alpha[u[i]];
    size_t rem = count % 4;
    return count / 4 * 3 + (rem == 2 ? 1 : rem == 3 ? 2 : 0);
}

static bool add_attachment(struct walk *w, struct mailmime *m, const char *type)
{
    struct candor_message *msg = w->msg;
    size_t size = 0;
    const struct mailmime_data *data = m->mm_type == MAILMIME_SINGLE ? m->mm_data.mm_single
                                                                     : m->mm_body;
    if (data && data->dt_type == MAILMIME_DATA_TEXT) {
        if (data->dt_encoded && data->dt_encoding == MAILMIME_MECHANISM_BASE64) {
            /* The decoded size of base64 follows from the number of
             * alphabet characters (RFC 2045 6.8: others are ignored); no
             * need to decode what nobody reads. It still counts against
             * the decoded-bytes budget. */
            size = base64_size(data->dt_data.dt_text.dt_data, data->dt_data.dt_text.dt_length);
            if (w->decoded + size > w->lim->max_decoded_bytes) {
                if (!w->decoded_noted)
                    candor__message_add_error(w->msg, "MIME: more than %zu decoded bytes, rest not decoded",
                                              w->lim->max_decoded_bytes);
                w->decoded_noted = true;
                size = w->lim->max_decoded_bytes - w->decoded;
            }
            w->decoded += size;
        } else if (data->dt_encoded && data->dt_encoding == MAILMIME_MECHANISM_QUOTED_PRINTABLE) {
            char *dec;
            size_t dlen;
            bool owned;
            if (!decode_part(w, data, &dec, &dlen, &owned))
                return false;
            size = dlen;
            if (dec && owned)
                mailmime_decoded_part_free(dec);
        } else {
            size = data->dt_data.dt_text.dt_length;
        }
    }
    if (msg->n_attachments == w->att_cap) {
        size_t nc = w->att_cap ? w->att_cap * 2 : 4;
        struct candor_attachment *a = realloc(msg->attachments, nc * sizeof *a);
        if (!a)
            return false;
        msg->attachments = a;
        w->att_cap = nc;
    }
    struct candor_attachment *a = &msg->attachments[msg->n_attachments];
    a->filename = part_filename(w, m);
    a->content_type = candor__strdup(type);
    a->size = size;
    msg->n_attachments++;
    return a->content_type && !w->oom;
}

/* Python's email.message.MIMEPart._find_body, the reference for "the
 * preferred body": attachments are skipped, text/plain beats text/html,
 * multipart/related looks at its start part only, message/rfc822 is not
 * entered. */
static void find_body(struct walk *w, struct mailmime *m, size_t depth)
{
    if (!m || depth > w->lim->max_mime_depth || (w->body && w->body_prio == 0))
        return;
    if (is_attachment(m))
        return;
    char type[160];
    content_type_str(m->mm_content_type, type, sizeof type);
    if (m->mm_type == MAILMIME_SINGLE) {
        int prio = strcmp(type, "text/plain") == 0 ? 0 : strcmp(type, "text/html") == 0 ? 1 : -1;
        if (prio >= 0 && (!w->body || prio < w->body_prio)) {
            w->body = m;
            w->body_prio = prio;
        }
        return;
    }
    if (m->mm_type != MAILMIME_MULTIPLE)
        return;
    clist *parts = m->mm_data.mm_multipart.mm_mp_list;
    if (strcmp(type, "multipart/related") != 0) {
        for (clistiter *it = clist_begin(parts); it; it = clist_next(it))
            find_body(w, clist_content(it), depth + 1);
        return;
    }
    struct mailmime *cand = NULL;
    const char *start = part_param(m, "start");
    if (start) {
        char tmp[512];
        char *sid = clean_id(unquote(start, tmp, sizeof tmp), strlen(unquote(start, tmp, sizeof tmp)));
        for (clistiter *it = clist_begin(parts); it && sid && !cand; it = clist_next(it)) {
            const char *cid = part_content_id(clist_content(it));
            if (cid) {
                char *c = clean_id(cid, strlen(cid));
                if (c && strcmp(c, sid) == 0)
                    cand = clist_content(it);
                free(c);
            }
        }
        free(sid);
    }
    if (!cand && clist_begin(parts))
        cand = clist_content(clist_begin(parts));
    find_body(w, cand, depth + 1);
}

/* List the attachments: every leaf part but the chosen body that is an
 * attachment, has a file name, or is not text/plain or text/html; a
 * message/rfc822 part is one attachment (its own parts are not listed).
 * Counts parts and enforces the depth and part limits. */
static bool walk_parts(struct walk *w, struct mailmime *m, size_t depth)
{
    if (!m)
        return true;
    if (depth > w->lim->max_mime_depth) {
        if (!w->depth_noted)
            candor__message_add_error(w->msg, "MIME: nested deeper than %zu, inner parts ignored",
                                      w->lim->max_mime_depth);
        w->depth_noted = true;
        return true;
    }
    if (++w->parts > w->lim->max_mime_parts) {
        if (!w->parts_noted)
            candor__message_add_error(w->msg, "MIME: more than %zu parts, rest ignored",
                                      w->lim->max_mime_parts);
        w->parts_noted = true;
        return true;
    }
    char type[160];
    content_type_str(m->mm_content_type, type, sizeof type);
    if (m->mm_type == MAILMIME_MULTIPLE) {
        /* libetpan accepts a multipart that never closes; say so */
        const char *bd = part_param(m, "boundary");
        const struct mailmime_data *body = m->mm_body;
        if (bd && body && body->dt_type == MAILMIME_DATA_TEXT && body->dt_data.dt_text.dt_data
            && !w->close_noted) {
            char tmp[256], delim[300];
            const char *b = unquote(bd, tmp, sizeof tmp);
            int dl = snprintf(delim, sizeof delim, "--%s--", b);
            /* the close delimiter is near the end (before any epilogue):
             * look at the tail first, the whole body only if need be */
            const char *bp = body->dt_data.dt_text.dt_data;
            size_t bl = body->dt_data.dt_text.dt_length;
            size_t tail = bl > 4096 ? 4096 : bl;
            if (dl > 4 && (size_t)dl < sizeof delim
                && !memmem(bp + bl - tail, tail, delim, (size_t)dl)
                && !memmem(bp, bl, delim, (size_t)dl)) {
                candor__message_add_error(w->msg, "MIME: a multipart without its closing boundary (truncated?)");
                w->close_noted = true;
            }
        }
        for (clistiter *it = clist_begin(m->mm_data.mm_multipart.mm_mp_list); it; it = clist_next(it))
            if (!walk_parts(w, clist_content(it), depth + 1))
                return false;
        return true;
    }
    if (m == w->body)
        return true;
    if (m->mm_type == MAILMIME_MESSAGE || strcmp(type, "message/rfc822") == 0) {
        int enc = part_encoding(m);
        if (enc == MAILMIME_MECHANISM_BASE64 || enc == MAILMIME_MECHANISM_QUOTED_PRINTABLE)
            /* RFC 2046 5.2.1: only 7bit, 8bit or binary; not read inside */
            candor__message_add_error(w->msg, "MIME: %s part with a base64 or quoted-printable "
                                      "encoding, its content not read", type);
        return add_attachment(w, m, type);
    }
    bool textual = strcmp(type, "text/plain") == 0 || strcmp(type, "text/html") == 0;
    if (!textual || is_attachment(m))
        return add_attachment(w, m, type);
    char *fn = part_filename(w, m);
    bool named = fn != NULL;
    free(fn);
    if (w->oom)
        return false;
    return named ? add_attachment(w, m, type) : true;
}

/* One pass over the raw message before libetpan sees it: count the
 * Content-Type fields that open a container (multipart or message types)
 * and cut the input before the one that passes LIMIT (libetpan recurses
 * once per container, so this bounds its stack and time whatever the
 * nesting), and find the longest line. Returns the length to parse. */
static size_t prescan(const char *d, size_t len, size_t limit, size_t line_limit,
                      size_t *longest)
{
    size_t count = 0, cut = len;
    *longest = 0;
    /* Line lengths: only a message longer than the line limit can hold a
     * line longer than it; the others skip this pass. */
    if (len > line_limit) {
        size_t pos = 0;
        while (pos < len) {
            const char *nl = memchr(d + pos, '\n', len - pos);
            size_t next = nl ? (size_t)(nl - d) + 1 : len;
            if (next - pos - (nl ? 1 : 0) > *longest)
                *longest = next - pos - (nl ? 1 : 0);
            pos = next;
        }
    }
    /* Container Content-Type fields, found from their colon (base64
     * attachments, most of the bytes, have none): the colon, optional
     * white space before it, "content-type" at the start of a line. */
    size_t pos = 0;
    while (pos < len) {
        const char *c = memchr(d + pos, ':', len - pos);
        if (!c)
            break;
        size_t at = (size_t)(c - d);
        pos = at + 1;
        size_t k = at;
        while (k > 0 && is_wsp(d[k - 1]))
            k--;
        if (k < 12 || candor__strncasecmp(d + k - 12, "content-type", 12) != 0
            || (k > 12 && d[k - 13] != '\n'))
            continue;
        size_t i = at + 1;
        /* white space, including one folded line break */
        while (i < len && candor__is_space((unsigned char)d[i]))
            i++;
        if ((len - i >= 9 && candor__strncasecmp(d + i, "multipart", 9) == 0)
            || (len - i >= 7 && candor__strncasecmp(d + i, "message", 7) == 0)) {
            if (++count > limit) {
                cut = k - 12;
                break;
            }
        }
    }
    return cut;
}

/* ------------------------------------------------------------------ */
/* runs of lines libetpan need not scan                                */
/* ------------------------------------------------------------------ */

/* libetpan finds multipart delimiters one byte at a time, and reads the
 * last part of a multipart twice (and a nested part once more for every
 * level): on mail with attachments most of its time went into base64 text
 * that cannot hold a delimiter. So the copy mailmime_parse reads leaves
 * out long runs of lines that cannot change the structure it finds, and
 * afterwards every pointer of its tree is moved back onto the same bytes
 * of the real message: libetpan still parses every header, and the bodies
 * are decoded (or counted) from the real bytes.
 *
 * A run R left out is whole lines (it starts after a '\n' and ends after
 * one) with no '-' among the first two bytes of a line or the two after a
 * CR (see dash_matters): no delimiter line ("--" boundary) starts in it
 * for either of libetpan's scans (the preamble's and the parts'), both are
 * in the same state after R as before it (at the start of a line), and the
 * rest keeps the same line starts, so no delimiter is made either. The
 * line just before R (K1) is kept and is not empty, does not start with
 * white space and has no ':': no header (of a part or of an enclosed
 * message) goes on past it, so R is body, preamble or epilogue text, and
 * nothing starts where R was. The line just after R (K2) is kept and starts
 * with neither CR nor LF, so nothing ends where R was either: an end is a
 * line break before a delimiter, or an enclosing end with its line breaks
 * taken off, and a break taken off at K2 would then take K1's along,
 * leaving R out of the part (a fuzz input showed it). elide_pos checks
 * this for every position and the message is parsed whole if it fails. */

#define ELIDE_MIN 2048      /* shortest run worth leaving out */
#define ELIDE_MAX 64        /* most runs left out of one message */
#define ELIDE_K_TRIES 8     /* lines tried as K1 and as K2 in a span */

/* candor__message_set_elide_min (tests only) */
static size_t elide_min = ELIDE_MIN;

void candor__message_set_elide_min(size_t n)
{
    elide_min = n ? n : 1;
}

struct elided {
    struct {
        size_t at;          /* offset in the copy where the run was */
        size_t orig;        /* offset of the run in the message */
        size_t len;         /* its length */
    } v[ELIDE_MAX];
    size_t n, total;
};

/* A '-' at D[Q] may start a delimiter for libetpan when it is one of the
 * first two bytes of a line (its preamble scan takes "x--" at the start of
 * a line for one) or follows a CR. Any other '-' is text to both of
 * libetpan's scans and may be left out. */
static bool dash_matters(const char *d, size_t q)
{
    return q < 2 || d[q - 1] == '\n' || d[q - 1] == '\r' || d[q - 2] == '\n' || d[q - 2] == '\r';
}

/* K1 (see above), without its '\n'. */
static bool elide_k1(const char *s, size_t n)
{
    if (n && s[n - 1] == '\r')
        n--;
    return n > 0 && !is_wsp(s[0]) && !memchr(s, ':', n);
}

/* 1 + the offset of the last '\n' in D[FROM..TO), or 0 when none. */
static size_t last_nl(const char *d, size_t from, size_t to)
{
    if (to <= from)
        return 0;
    const char *p = memrchr(d + from, '\n', to - from);
    return p ? (size_t)(p - d) + 1 : 0;
}

/* The runs of D[0..LEN) to leave out, in order. Linear in LEN: every span
 * between two '-' is looked at once. */
static void elide_find(const char *d, size_t len, struct elided *e)
{
    e->n = e->total = 0;
    if (!d)
        return;
    size_t pos = 0;
    while (pos < len && e->n < ELIDE_MAX) {
        /* the span ends at the next '-' that may matter */
        size_t q = pos;
        for (;;) {
            const char *dash = memchr(d + q, '-', len - q);
            q = dash ? (size_t)(dash - d) : len;
            if (!dash || dash_matters(d, q))
                break;
            q++;
        }
        if (q - pos >= elide_min) {
            /* K1: the first complete line in the span that qualifies */
            const char *nl = memchr(d + pos, '\n', q - pos);
            size_t r0 = 0;
            for (int t = 0; nl && t < ELIDE_K_TRIES; t++) {
                size_t ls = (size_t)(nl - d) + 1;
                nl = memchr(d + ls, '\n', q - ls);
                if (nl && elide_k1(d + ls, (size_t)(nl - d) - ls)) {
                    r0 = (size_t)(nl - d) + 1;
                    break;
                }
            }
            /* R ends where K2 starts: a complete line before the line
             * that holds the '-' (or the last line) whose first byte is
             * neither CR nor LF, the nearest of a few */
            size_t end = r0 ? last_nl(d, r0, q) : 0, r1 = 0;
            for (int t = 0; end > r0 && t < ELIDE_K_TRIES; t++) {
                size_t ks = last_nl(d, r0, end - 1);
                if (!ks)
                    break;
                if (d[ks] != '\r' && d[ks] != '\n') {
                    r1 = ks;
                    break;
                }
                end = ks;
            }
            if (r0 && r1 > r0 && r1 - r0 >= elide_min) {
                e->v[e->n].orig = r0;
                e->v[e->n].len = r1 - r0;
                e->n++;
                e->total += r1 - r0;
            }
        }
        pos = q + 1;
    }
}

/* The copy of D[0..LEN) without the runs of E (sets E->v[].at). */
static bool elide_copy(const char *d, size_t len, struct elided *e, struct candor_buf *out)
{
    size_t from = 0;
    for (size_t i = 0; i < e->n; i++) {
        candor__buf_append(out, d + from, e->v[i].orig - from);
        e->v[i].at = out->len;
        from = e->v[i].orig + e->v[i].len;
    }
    candor__buf_append(out, d + from, len - from);
    return !out->oom;
}

struct elide_map {
    const struct elided *e;
    const char *copy, *orig;
    size_t copy_len;
    bool bad;
};

/* Where the copy's position P is in the message. No part, body or
 * preamble can start or end at the place of a run (see above): if one
 * does, BAD is set and the caller parses the message itself. */
static const char *elide_pos(struct elide_map *m, const char *p)
{
    if (p < m->copy || p > m->copy + m->copy_len) {
        m->bad = true;
        return p;
    }
    size_t x = (size_t)(p - m->copy), add = 0;
    for (size_t i = 0; i < m->e->n && m->e->v[i].at <= x; i++) {
        if (m->e->v[i].at == x) {
            m->bad = true;
            break;
        }
        add += m->e->v[i].len;
    }
    return m->orig + x + add;
}

/* Whether [P, P+LEN) lies in the copy. libetpan can report a length that
 * runs past the end of its input (one computed as a difference can be
 * "negative"): never form that pointer; BAD makes the caller parse the
 * message itself. */
static bool elide_span_ok(struct elide_map *m, const char *p, size_t len)
{
    if (p < m->copy || p > m->copy + m->copy_len || len > (size_t)(m->copy + m->copy_len - p)) {
        m->bad = true;
        return false;
    }
    return true;
}

static void elide_data(struct elide_map *m, struct mailmime_data *data)
{
    if (!data || data->dt_type != MAILMIME_DATA_TEXT || !data->dt_data.dt_text.dt_data)
        return;
    const char *s = data->dt_data.dt_text.dt_data;
    if (!elide_span_ok(m, s, data->dt_data.dt_text.dt_length))
        return;
    const char *e = elide_pos(m, s + data->dt_data.dt_text.dt_length);
    s = elide_pos(m, s);
    data->dt_data.dt_text.dt_data = s;
    data->dt_data.dt_text.dt_length = (size_t)(e - s);
}

/* Move every pointer of the tree ROOT (parsed from the copy) onto the
 * message. Iterative (parent and sibling links): any depth. False when a
 * position cannot be mapped (then the caller parses the message itself). */
static bool elide_fix(struct mailmime *root, const struct elided *e, const char *copy,
                      size_t copy_len, const char *orig)
{
    struct elide_map m = { e, copy, orig, copy_len, false };
    struct mailmime *n = root;
    while (n && !m.bad) {
        if (n->mm_mime_start && elide_span_ok(&m, n->mm_mime_start, n->mm_length)) {
            const char *s = n->mm_mime_start;
            const char *end = elide_pos(&m, s + n->mm_length);
            n->mm_mime_start = elide_pos(&m, s);
            n->mm_length = (size_t)(end - n->mm_mime_start);
        }
        elide_data(&m, n->mm_body);   /* for a single part, mm_single too */
        struct mailmime *child = NULL;
        if (n->mm_type == MAILMIME_MULTIPLE) {
            elide_data(&m, n->mm_data.mm_multipart.mm_preamble);
            elide_data(&m, n->mm_data.mm_multipart.mm_epilogue);
            clistiter *it = clist_begin(n->mm_data.mm_multipart.mm_mp_list);
            child = it ? clist_content(it) : NULL;
        } else if (n->mm_type == MAILMIME_MESSAGE) {
            child = n->mm_data.mm_message.mm_msg_mime;
        }
        if (child) {
            n = child;
            continue;
        }
        /* the next sibling of N or of its nearest ancestor that has one */
        while (n && n != root) {
            if (n->mm_parent_type == MAILMIME_MULTIPLE && n->mm_multipart_pos
                && clist_next(n->mm_multipart_pos)) {
                n = clist_content(clist_next(n->mm_multipart_pos));
                break;
            }
            n = n->mm_parent;
        }
        if (n == root)
            n = NULL;
    }
    return !m.bad;
}

static bool choose_text(struct walk *w)
{
    struct candor_message *msg = w->msg;
    struct mailmime *m = w->body;
    char *text = NULL;
    if (m) {
        char *dec = NULL;
        size_t dlen = 0;
        bool owned = false;
        if (!decode_part(w, m->mm_data.mm_single, &dec, &dlen, &owned))
            return false;
        char *cs = part_charset(m);
        size_t bad = 0;
        bool unknown = false;
        char *u = to_utf8(cs, dec ? dec : "", dlen, &bad, &unknown);
        if (unknown) {
            candor__message_add_error(msg, "body: unknown charset \"%.40s\", read as UTF-8", cs);
            u = candor__utf8_sanitize(dec ? dec : "", dlen, &bad);
            if (u && bad) {
                /* Not UTF-8 either: windows-1252 loses nothing. */
                free(u);
                u = to_utf8("windows-1252", dec ? dec : "", dlen, &bad, &unknown);
            }
        } else if (bad) {
            candor__message_add_error(msg, "body: %zu invalid byte sequence(s) in %.40s replaced",
                                      bad, cs ? cs : "UTF-8");
        }
        free(cs);
        if (dec && owned)
            mailmime_decoded_part_free(dec);
        if (!u)
            return false;
        /* one line ending: LF (libetpan's QP decoder writes CRLF): a lone
         * CR becomes LF, a CR before LF goes */
        char *o = strchr(u, '\r');
        if (o) {
            const char *q = o;
            while (*q) {                  /* at a CR */
                if (q[1] != '\n')
                    *o++ = '\n';
                q++;
                const char *cr = strchr(q, '\r');
                size_t seg = cr ? (size_t)(cr - q) : strlen(q);
                memmove(o, q, seg);
                o += seg;
                q += seg;
            }
            *o = '\0';
        }
        if (w->body_prio == 1) {
            bool trunc = false;
            text = candor__html_to_text(u, strlen(u), w->lim->max_html_depth,
                                        w->lim->max_text_bytes, &trunc);
            free(u);
            if (!text)
                return false;
            if (trunc)
                candor__message_add_error(msg, "body: HTML cut at the depth or size limit");
            msg->text_from_html = true;
        } else {
            const char *fmt = part_param(m, "format");
            const char *delsp = part_param(m, "delsp");
            char t1[32], t2[32];
            if (fmt && candor__strcasecmp(unquote(fmt, t1, sizeof t1), "flowed") == 0) {
                bool ds = delsp && candor__strcasecmp(unquote(delsp, t2, sizeof t2), "yes") == 0;
                text = candor__text_unflow(u, ds);
                free(u);
                if (!text)
                    return false;
            } else {
                text = u;
            }
        }
    } else {
        text = candor__strdup("");
        if (!text)
            return false;
    }
    size_t tl = strlen(text);
    if (tl > w->lim->max_text_bytes) {
        /* cut on a character boundary */
        size_t cut = w->lim->max_text_bytes;
        while (cut > 0 && ((unsigned char)text[cut] & 0xC0) == 0x80)
            cut--;
        text[cut] = '\0';
        candor__message_add_error(msg, "body: text longer than %zu bytes cut", w->lim->max_text_bytes);
    }
    msg->text = text;
    return candor__text_split(text, &msg->new_text, &msg->quoted_text, &msg->signature);
}

/* ------------------------------------------------------------------ */
/* parse                                                               */
/* ------------------------------------------------------------------ */

/* Bodies up to this size are handed to libetpan behind a header of only
 * the MIME fields (see parse_body). */
#define MIME_COPY_MAX (1024u * 1024u)

/* D/LEN: the message from its header on; BODY: offset of the body in D.
 * WD: D itself when the caller lets us write into it (then the MIME-only
 * header is written over the end of the real one, no copy), else NULL. */
static candor_status_t parse_body(struct candor_message *msg, const char *d, size_t len,
                                  size_t body, char *wd)
{
    const struct candor_limits *lim = &msg->ctx->limits;
    /* mailmime_parse reads the top-level header with libetpan's full
     * RFC 5322 field parsers, which we have already done our way: for the
     * usual size of mail it gets a copy with only the MIME fields (about a
     * tenth of the parse time). */
    struct candor_buf mini = CANDOR_BUF_INIT;
    if (body <= len && (wd || len - body <= MIME_COPY_MAX)) {
        for (size_t i = 0; i < msg->n_headers; i++) {
            const struct candor_header *h = &msg->headers[i];
            if (candor__strncasecmp(h->name, "content-", 8) == 0
                || candor__strcasecmp(h->name, "mime-version") == 0) {
                candor__buf_puts(&mini, h->name);
                candor__buf_append(&mini, ": ", 2);
                candor__buf_puts(&mini, h->value);
                candor__buf_putc(&mini, '\n');
            }
        }
        candor__buf_putc(&mini, '\n');
        if (mini.oom) {
            candor__buf_free(&mini);
            return candor__fail(CANDOR_ENOMEM, "message: out of memory");
        }
        if (wd && mini.len <= body) {
            /* the subset of the fields, unfolded, fits where they were */
            memcpy(wd + body - mini.len, mini.data, mini.len);
            d = wd + body - mini.len;
            len -= body - mini.len;
            candor__buf_free(&mini);
        } else if (len - body <= MIME_COPY_MAX) {
            candor__buf_append(&mini, d + body, len - body);
            if (mini.oom) {
                candor__buf_free(&mini);
                return candor__fail(CANDOR_ENOMEM, "message: out of memory");
            }
            d = mini.data;
            len = mini.len;
        } else {
            candor__buf_free(&mini);
        }
    }
    /* libetpan recursion and part count are bounded by cutting the input. */
    size_t longest = 0;
    size_t plen = prescan(d, len, lim->max_mime_parts, lim->max_line_bytes, &longest);
    if (longest > lim->max_line_bytes)
        candor__message_add_error(msg, "message: a line longer than %zu bytes", lim->max_line_bytes);
    if (plen < len)
        candor__message_add_error(msg, "MIME: more than %zu multipart or message parts, rest ignored",
                                  lim->max_mime_parts);
    size_t idx = 0;
    struct mailmime *mime = NULL;
    /* long runs of lines without a delimiter left out of libetpan's copy */
    struct elided el;
    struct candor_buf copy = CANDOR_BUF_INIT;
    elide_find(d, plen, &el);
    int r;
    if (el.n && elide_copy(d, plen, &el, &copy)) {
        r = mailmime_parse(copy.data, copy.len, &idx, &mime);
        if (r == MAILIMF_NO_ERROR && mime && !elide_fix(mime, &el, copy.data, copy.len, d)) {
            mailmime_free(mime);
            mime = NULL;
            idx = 0;
            r = mailmime_parse(d, plen, &idx, &mime);
        }
    } else {
        r = mailmime_parse(d, plen, &idx, &mime);
    }
    candor__buf_free(&copy);
    if (r == MAILIMF_ERROR_MEMORY) {
        candor__buf_free(&mini);
        return candor__fail(CANDOR_ENOMEM, "message: out of memory");
    }
    struct walk w = { .msg = msg, .lim = lim };
    struct mailmime *root = NULL;
    if (r != MAILIMF_NO_ERROR || !mime) {
        candor__message_add_error(msg, "MIME: cannot parse the message structure");
    } else {
        root = mime;
        if (root->mm_type == MAILMIME_MESSAGE && root->mm_data.mm_message.mm_msg_mime)
            root = root->mm_data.mm_message.mm_msg_mime;
        char type[160];
        content_type_str(root->mm_content_type, type, sizeof type);
        msg->content_type = candor__strdup(type);
        find_body(&w, root, 0);
        if (!w.body) {
            /* Nothing readable at the top: a forward as a lone attachment
             * (or a digest) still has text, in its first inner message. */
            struct mailmime *stack[64];
            size_t sp = 0;
            stack[sp++] = root;
            while (sp && !w.body) {
                struct mailmime *m = stack[--sp];
                if (m->mm_type == MAILMIME_MESSAGE && m->mm_data.mm_message.mm_msg_mime) {
                    find_body(&w, m->mm_data.mm_message.mm_msg_mime, 1);
                } else if (m->mm_type == MAILMIME_MULTIPLE) {
                    /* push in reverse so the first part is looked at first */
                    clist *l = m->mm_data.mm_multipart.mm_mp_list;
                    for (clistiter *it = clist_end(l); it && sp < 64; it = clist_previous(it))
                        stack[sp++] = clist_content(it);
                }
            }
        }
    }
    if (!msg->content_type)
        msg->content_type = candor__strdup("text/plain");
    /* the body first, so that attachments cannot spend its decoding budget */
    bool ok = msg->content_type && choose_text(&w);
    if (ok && root && (!walk_parts(&w, root, 0) || w.oom))
        ok = false;
    if (mime)
        mailmime_free(mime);
    candor__buf_free(&mini);
    if (!ok)
        return candor__fail(CANDOR_ENOMEM, "message: out of memory");
    return CANDOR_OK;
}

/* WRITABLE: DATA may be changed (parse_file's own buffer). */
static candor_status_t parse_impl(struct candor_message **out, const struct candor_ctx *ctx,
                                  const void *data, size_t len, bool writable)
{
    if (out)
        *out = NULL;
    if (!out || !ctx || (!data && len))
        return candor__fail(CANDOR_EINVAL, "message_parse: NULL argument");
    pthread_once(&charconv_once, charconv_hook);
    struct candor_message *msg = calloc(1, sizeof *msg);
    if (!msg)
        return candor__fail(CANDOR_ENOMEM, "message: out of memory");
    msg->ctx = ctx;
    msg->raw_len = len;
    const char *d = data ? data : "";
    if (len > ctx->limits.max_message_bytes) {
        candor__message_add_error(msg, "message: %zu bytes, over the limit of %zu; the rest ignored",
                                  len, ctx->limits.max_message_bytes);
        len = ctx->limits.max_message_bytes;
    }
    /* An mbox "From " line before the header is not a field. */
    size_t start = 0;
    if (len >= 5 && memcmp(d, "From ", 5) == 0) {
        const char *nl = memchr(d, '\n', len);
        start = nl ? (size_t)(nl - d) + 1 : len;
    }
    size_t body = scan_headers(msg, d, len, start);
    if (body == (size_t)-1) {
        candor_message_free(msg);
        return candor__fail(CANDOR_ENOMEM, "message: out of memory");
    }
    msg->body_offset = body;
    if (!msg->n_headers && len == 0)
        candor__message_add_error(msg, "message: empty");
    if (!parse_fields(msg)) {
        candor_message_free(msg);
        return candor__fail(CANDOR_ENOMEM, "message: out of memory");
    }
    candor_status_t st = parse_body(msg, d + start, len - start, body - start,
                                    writable && data ? (char *)data + start : NULL);
    if (st != CANDOR_OK) {
        candor_message_free(msg);
        return st;
    }
    *out = msg;
    return CANDOR_OK;
}

candor_status_t candor_message_parse(struct candor_message **out, const struct candor_ctx *ctx,
                                     const void *data, size_t len)
{
    return parse_impl(out, ctx, data, len, false);
}

/* parse_file reads into buffers kept from one call to the next (two of
 * them, so that two threads each find one; a thread that finds none
 * allocates its own): a fresh buffer a message meant a large malloc, often
 * an mmap and its page faults. A buffer over READ_KEEP bytes is not kept. */
#define READ_KEEP (4u << 20)
struct read_buf {
    char *data;
    size_t cap;
};
static _Atomic(struct read_buf *) read_bufs[2];

static struct read_buf *read_buf_take(void)
{
    for (size_t i = 0; i < sizeof read_bufs / sizeof read_bufs[0]; i++) {
        struct read_buf *b = atomic_exchange(&read_bufs[i], NULL);
        if (b)
            return b;
    }
    return calloc(1, sizeof(struct read_buf));
}

static void read_buf_give(struct read_buf *b)
{
    if (b->cap > READ_KEEP) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
    for (size_t i = 0; i < sizeof read_bufs / sizeof read_bufs[0]; i++) {
        struct read_buf *none = NULL;
        if (atomic_compare_exchange_strong(&read_bufs[i], &none, b))
            return;
    }
    free(b->data);
    free(b);
}

__attribute__((destructor)) static void read_bufs_free(void)
{
    for (size_t i = 0; i < sizeof read_bufs / sizeof read_bufs[0]; i++) {
        struct read_buf *b = atomic_exchange(&read_bufs[i], NULL);
        if (b) {
            free(b->data);
            free(b);
        }
    }
}

candor_status_t candor_message_parse_file(struct candor_message **out, const struct candor_ctx *ctx,
                                          const char *path)
{
    if (out)
        *out = NULL;
    if (!out || !ctx || !path)
        return candor__fail(CANDOR_EINVAL, "message_parse_file: NULL argument");
    struct read_buf *b = read_buf_take();
    if (!b)
        return candor__fail(CANDOR_ENOMEM, "message: out of memory");
    size_t len = 0;
    candor_status_t st = candor__read_file_into(path, ctx->limits.max_message_bytes, &b->data,
                                                &b->cap, &len);
    if (st == CANDOR_OK)
        st = parse_impl(out, ctx, b->data, len, true);
    read_buf_give(b);
    return st;
}

static void addrlist_free(struct candor_addrlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        addr_free(&l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

void candor_message_free(struct candor_message *msg)
{
    if (!msg)
        return;
    free(msg->headers);
    for (struct str_block *b = msg->strings, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(msg->message_id);
    addr_free(&msg->from);
    addr_free(&msg->sender);
    addrlist_free(&msg->to);
    addrlist_free(&msg->cc);
    addrlist_free(&msg->bcc);
    addrlist_free(&msg->reply_to);
    addrlist_free(&msg->resent_to);
    addrlist_free(&msg->resent_cc);
    addrlist_free(&msg->resent_bcc);
    free(msg->return_path);
    candor__strv_free(&msg->delivered_to);
    free(msg->subject);
    free(msg->in_reply_to);
    candor__strv_free(&msg->references);
    free(msg->auto_submitted);
    free(msg->list_id);
    free(msg->content_type);
    free(msg->text);
    free(msg->new_text);
    free(msg->quoted_text);
    free(msg->signature);
    for (size_t i = 0; i < msg->n_attachments; i++) {
        free(msg->attachments[i].filename);
        free(msg->attachments[i].content_type);
    }
    free(msg->attachments);
    candor__strv_free(&msg->errors);
    free(msg);
}

/* ------------------------------------------------------------------ */
/* accessors                                                           */
/* ------------------------------------------------------------------ */

const char *candor_message_id(const struct candor_message *m) { return m ? m->message_id : NULL; }
const char *candor_message_subject(const struct candor_message *m) { return m ? m->subject : NULL; }
const char *candor_message_from_address(const struct candor_message *m) { return m ? m->from.address : NULL; }
const char *candor_message_from_name(const struct candor_message *m) { return m ? m->from.name : NULL; }
const char *candor_message_text(const struct candor_message *m) { return m ? m->text : NULL; }
const char *candor_message_new_text(const struct candor_message *m) { return m ? m->new_text : NULL; }
int64_t candor_message_date(const struct candor_message *m) { return m && m->has_date ? m->date : 0; }
size_t candor_message_error_count(const struct candor_message *m) { return m ? m->errors.n : 0; }
const char *candor_message_error(const struct candor_message *m, size_t i)
{ return m && i < m->errors.n ? m->errors.v[i] : NULL; }
size_t candor_message_body_offset(const struct candor_message *m) { return m ? m->body_offset : 0; }

/* ------------------------------------------------------------------ */
/* JSON                                                                */
/* ------------------------------------------------------------------ */

/* Add KEY (a string literal: json-c neither copies nor looks it up). */
static void jadd(json_object *o, const char *key, json_object *v)
{
    json_object_object_add_ex(o, key, v, JSON_C_OBJECT_ADD_KEY_IS_NEW
                                         | JSON_C_OBJECT_KEY_IS_CONSTANT);
}

static json_object *jstr(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

static json_object *jaddr(const struct candor_addr *a)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    jadd(o, "name", jstr(a ? a->name : NULL));
    jadd(o, "address", jstr(a ? a->address : NULL));
    return o;
}

static json_object *jaddrs(const struct candor_addrlist *l)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; a && l && i < l->n; i++)
        json_object_array_add(a, jaddr(&l->v[i]));
    return a;
}

static json_object *jstrv(const struct candor_strv *sv)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; a && sv && i < sv->n; i++)
        json_object_array_add(a, json_object_new_string(sv->v[i]));
    return a;
}

static void format_date(int64_t t, char out[64])
{
    int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    int64_t secs = t - days * 86400;
    int64_t y;
    unsigned m, d;
    candor__civil_from_days(days, &y, &m, &d);
    snprintf(out, 64, "%04lld-%02u-%02uT%02d:%02d:%02dZ", (long long)y, m, d,
             (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
}

void *candor__message_json(const struct candor_message *msg, const char *file, bool with_text)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    jadd(o, "file", jstr(file));
    jadd(o, "message_id", jstr(msg ? msg->message_id : NULL));
    jadd(o, "from", jaddr(msg ? &msg->from : NULL));
    jadd(o, "to", jaddrs(msg ? &msg->to : NULL));
    jadd(o, "cc", jaddrs(msg ? &msg->cc : NULL));
    jadd(o, "reply_to", jaddrs(msg ? &msg->reply_to : NULL));
    jadd(o, "subject", jstr(msg ? msg->subject : NULL));
    if (msg && msg->has_date) {
        char d[64];
        format_date(msg->date, d);
        jadd(o, "date", json_object_new_string(d));
    } else {
        jadd(o, "date", NULL);
    }
    jadd(o, "in_reply_to", jstr(msg ? msg->in_reply_to : NULL));
    jadd(o, "references", jstrv(msg ? &msg->references : NULL));
    if (with_text)
        jadd(o, "text", jstr(msg ? msg->text : NULL));
    jadd(o, "new_text", jstr(msg ? msg->new_text : NULL));
    json_object *atts = json_object_new_array();
    for (size_t i = 0; atts && msg && i < msg->n_attachments; i++) {
        const struct candor_attachment *a = &msg->attachments[i];
        json_object *ao = json_object_new_object();
        if (!ao)
            break;
        jadd(ao, "filename", jstr(a->filename));
        jadd(ao, "content_type", jstr(a->content_type));
        jadd(ao, "size", json_object_new_int64((int64_t)a->size));
        json_object_array_add(atts, ao);
    }
    jadd(o, "attachments", atts);
    jadd(o, "auto_submitted", jstr(msg ? msg->auto_submitted : NULL));
    jadd(o, "list_id", jstr(msg ? msg->list_id : NULL));
    jadd(o, "errors", jstrv(msg ? &msg->errors : NULL));
    return o;
}

static candor_status_t json_out(json_object *o, char **json)
{
    if (!o)
        return candor__fail(CANDOR_ENOMEM, "message: out of memory");
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN
                                                      | JSON_C_TO_STRING_NOSLASHESCAPE);
    *json = s ? candor__strdup(s) : NULL;
    json_object_put(o);
    if (!*json)
        return candor__fail(CANDOR_ENOMEM, "message: out of memory");
    return CANDOR_OK;
}

candor_status_t candor_message_to_json(const struct candor_message *msg, const char *file, char **json)
{
    if (json)
        *json = NULL;
    if (!msg || !json)
        return candor__fail(CANDOR_EINVAL, "message_to_json: NULL argument");
    return json_out(candor__message_json(msg, file, true), json);
}

candor_status_t candor_message_unreadable_json(const char *file, const char *reason, char **json)
{
    if (json)
        *json = NULL;
    if (!json)
        return candor__fail(CANDOR_EINVAL, "message_unreadable_json: NULL argument");
    json_object *o = candor__message_json(NULL, file, true);
    if (!o)
        return candor__fail(CANDOR_ENOMEM, "message: out of memory");
    json_object *errs = json_object_new_array();
    char *r = candor__utf8_sanitize(reason ? reason : "unreadable", strlen(reason ? reason : "unreadable"), NULL);
    if (errs && r)
        json_object_array_add(errs, json_object_new_string(r));
    free(r);
    json_object_object_add(o, "errors", errs);
    return json_out(o, json);
}
