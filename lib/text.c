/*
 * text.c — turning a decoded body into the text people read.
 *
 * Owns: HTML to text with libxml2's HTML parser (no script/style/head,
 * block elements become line breaks, entities decoded by libxml2, links
 * keep their text, blockquote becomes "> " lines so quoted history in HTML
 * mail is recognised like plain text quoting); RFC 3676 format=flowed
 * undone; the split of a reply into new text, quoted history and
 * signature, for English, French, German and Spanish mail clients
 * (attributions "On ... wrote:", "Le ... a écrit :", "Am ... schrieb ...:",
 * "El ... escribió:"; "> " lines; "-----Original Message-----" and its
 * translations; Outlook's "From:/Sent:" header blocks; "-- " and
 * "Sent from my ..." signatures).
 *
 * Inputs are valid UTF-8 (message.c converts). Limits: HTML nesting depth
 * and output size (callers pass the ctx limits); every loop is linear in
 * its input, attribution look-ahead is bounded to a few lines.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/HTMLparser.h>
#include <libxml/tree.h>
#include "text.h"

/* ------------------------------------------------------------------ */
/* HTML to text                                                        */
/* ------------------------------------------------------------------ */

enum tag_kind { TAG_INLINE, TAG_SKIP, TAG_LINE, TAG_PARA, TAG_BR, TAG_LI, TAG_CELL,
                TAG_QUOTE, TAG_PRE };

static enum tag_kind classify(const char *name)
{
    static const struct { const char *name; enum tag_kind kind; } tags[] = {
        { "script", TAG_SKIP }, { "style", TAG_SKIP }, { "head", TAG_SKIP },
        { "title", TAG_SKIP }, { "template", TAG_SKIP }, { "object", TAG_SKIP },
        { "br", TAG_BR },
        { "p", TAG_PARA }, { "h1", TAG_PARA }, { "h2", TAG_PARA }, { "h3", TAG_PARA },
        { "h4", TAG_PARA }, { "h5", TAG_PARA }, { "h6", TAG_PARA }, { "ul", TAG_PARA },
        { "ol", TAG_PARA }, { "table", TAG_PARA }, { "dl", TAG_PARA }, { "hr", TAG_PARA },
        { "blockquote", TAG_QUOTE }, { "pre", TAG_PRE },
        { "li", TAG_LI },
        { "td", TAG_CELL }, { "th", TAG_CELL },
        { "div", TAG_LINE }, { "tr", TAG_LINE }, { "dt", TAG_LINE }, { "dd", TAG_LINE },
        { "section", TAG_LINE }, { "article", TAG_LINE }, { "header", TAG_LINE },
        { "footer", TAG_LINE }, { "nav", TAG_LINE }, { "aside", TAG_LINE },
        { "address", TAG_LINE }, { "form", TAG_LINE }, { "fieldset", TAG_LINE },
        { "center", TAG_LINE }, { "main", TAG_LINE }, { "figure", TAG_LINE },
        { "figcaption", TAG_LINE }, { "caption", TAG_LINE }, { "body", TAG_LINE },
        { "html", TAG_LINE }, { "caption", TAG_LINE }, { "details", TAG_LINE },
        { "summary", TAG_LINE }, { "legend", TAG_LINE }, { "option", TAG_LINE },
    };
    if (!name)
        return TAG_INLINE;
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++)
        if (strcmp(name, tags[i].name) == 0)
            return tags[i].kind;
    return TAG_INLINE;
}

struct render {
    struct candor_buf out;
    size_t max_out;
    unsigned need_nl;      /* line breaks owed before the next text (0-2) */
    bool space;            /* a space owed before the next text */
    bool line_start;       /* nothing written on the current line yet */
    unsigned quote;        /* blockquote depth */
    unsigned pre;          /* inside <pre> */
    bool cell_seen;        /* a cell was written in this row */
};

static void put_prefix(struct render *r, bool blank)
{
    for (unsigned i = 0; i < r->quote && i < 16; i++)
        candor__buf_putc(&r->out, '>');
    if (r->quote && !blank)
        candor__buf_putc(&r->out, ' ');
}

static void want_nl(struct render *r, unsigned n)
{
    if (r->need_nl < n)
        r->need_nl = n;
    r->space = false;
}

/* Write the owed line breaks (never at the start of the output). */
static void flush_breaks(struct render *r)
{
    if (r->need_nl && r->out.len) {
        if (!r->line_start)
            candor__buf_putc(&r->out, '\n');
        if (r->need_nl > 1) {
            put_prefix(r, true);
            candor__buf_putc(&r->out, '\n');
        }
        r->line_start = true;
        r->space = false;
    }
    r->need_nl = 0;
}

static void put_text(struct render *r, const char *s)
{
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        bool ws = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
        bool nbsp = c == 0xC2 && (unsigned char)p[1] == 0xA0;
        if (r->pre) {
            if (c == '\r')
                continue;
            flush_breaks(r);
            if (c == '\n') {
                candor__buf_putc(&r->out, '\n');
                r->line_start = true;
                continue;
            }
            if (r->line_start)
                put_prefix(r, false);
            r->line_start = false;
            candor__buf_putc(&r->out, (char)c);
            continue;
        }
        if (ws || nbsp) {
            if (nbsp)
                p++;
            r->space = true;
            continue;
        }
        flush_breaks(r);
        if (r->line_start) {
            put_prefix(r, false);
            r->line_start = false;
        } else if (r->space) {
            candor__buf_putc(&r->out, ' ');
        }
        r->space = false;
        candor__buf_putc(&r->out, (char)c);
    }
}

static void open_tag(struct render *r, enum tag_kind k)
{
    switch (k) {
    case TAG_BR:
        /* a hard break: consecutive <br> make blank lines */
        if (r->need_nl)
            flush_breaks(r);
        if (r->line_start && r->out.len)
            put_prefix(r, true);
        candor__buf_putc(&r->out, '\n');
        r->line_start = true;
        r->space = false;
        break;
    case TAG_PARA: case TAG_QUOTE: case TAG_PRE:
        want_nl(r, 2);
        if (k == TAG_QUOTE) {
            flush_breaks(r);   /* the blank line before is not quoted */
            r->quote++;
        }
        if (k == TAG_PRE)
            r->pre++;
        break;
    case TAG_LINE:
        want_nl(r, 1);
        r->cell_seen = false;
        break;
    case TAG_LI:
        want_nl(r, 1);
        flush_breaks(r);
        put_text(r, "-");
        r->space = true;
        break;
    case TAG_CELL:
        if (r->cell_seen)
            r->space = true;
        r->cell_seen = true;
        break;
    default:
        break;
    }
}

static void close_tag(struct render *r, enum tag_kind k)
{
    switch (k) {
    case TAG_PARA:
        want_nl(r, 2);
        break;
    case TAG_QUOTE:
        want_nl(r, 1);
        flush_breaks(r);   /* end the last quoted line */
        if (r->quote)
            r->quote--;
        r->need_nl = 2;
        break;
    case TAG_PRE:
        want_nl(r, 2);
        if (r->pre)
            r->pre--;
        break;
    case TAG_LINE: case TAG_LI:
        want_nl(r, 1);
        break;
    case TAG_CELL:
        r->space = true;
        break;
    default:
        break;
    }
}

char *candor__html_to_text(const char *html, size_t len, size_t max_depth, size_t max_out,
                           bool *truncated)
{
    bool trunc = false;
    if (len > INT_MAX) {
        len = INT_MAX;
        trunc = true;
    }
    struct render r = { .out = CANDOR_BUF_INIT, .max_out = max_out, .line_start = true };
    htmlDocPtr doc = NULL;
    if (len)
        doc = htmlReadMemory(html, (int)len, NULL, "UTF-8",
                             HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING
                             | HTML_PARSE_RECOVER | HTML_PARSE_IGNORE_ENC | HTML_PARSE_COMPACT);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    xmlNodePtr n = root;
    size_t depth = 0;
    while (n) {
        bool descend = false;
        if (n->type == XML_ELEMENT_NODE) {
            enum tag_kind k = classify((const char *)n->name);
            if (k != TAG_SKIP) {
                open_tag(&r, k);
                if (n->children) {
                    if (depth < max_depth)
                        descend = true;
                    else
                        trunc = true;
                }
                if (!descend)
                    close_tag(&r, k);
            }
        } else if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
            if (n->content)
                put_text(&r, (const char *)n->content);
        }
        if (r.out.len > max_out || r.out.oom) {
            trunc = true;
            break;
        }
        if (descend) {
            n = n->children;
            depth++;
            continue;
        }
        while (n != root && !n->next) {
            n = n->parent;
            depth--;
            if (n->type == XML_ELEMENT_NODE)
                close_tag(&r, classify((const char *)n->name));
        }
        if (n == root)
            break;
        n = n->next;
    }
    if (doc)
        xmlFreeDoc(doc);
    if (r.out.oom) {
        candor__buf_free(&r.out);
        return NULL;
    }
    /* trim trailing white space and lone quote markers */
    while (r.out.len && (candor__is_space((unsigned char)r.out.data[r.out.len - 1])))
        r.out.data[--r.out.len] = '\0';
    if (r.out.len > max_out) {
        size_t cut = max_out;
        while (cut > 0 && ((unsigned char)r.out.data[cut] & 0xC0) == 0x80)
            cut--;
        r.out.len = cut;
        r.out.data[cut] = '\0';
    }
    if (truncated)
        *truncated = trunc;
    return candor__buf_steal(&r.out);
}

/* ------------------------------------------------------------------ */
/* format=flowed (RFC 3676)                                            */
/* ------------------------------------------------------------------ */

char *candor__text_unflow(const char *text, bool delsp)
{
    struct candor_buf b = CANDOR_BUF_INIT;
    const char *p = text;
    bool open = false;          /* the previous line was flowed */
    size_t open_depth = 0;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        const char *next = nl ? nl + 1 : p + len;
        if (len && p[len - 1] == '\r')
            len--;
        size_t depth = 0;
        while (depth < len && p[depth] == '>')
            depth++;
        const char *c = p + depth;
        size_t clen = len - depth;
        if (clen && c[0] == ' ') {     /* space-stuffing (section 4.4) */
            c++;
            clen--;
        }
        bool sig = clen == 3 && memcmp(c, "-- ", 3) == 0;
        bool flowed = !sig && clen && c[clen - 1] == ' ';
        if (open && depth == open_depth && !sig) {
            /* continue the paragraph */
        } else {
            if (b.len)
                candor__buf_putc(&b, '\n');
            for (size_t i = 0; i < depth; i++)
                candor__buf_putc(&b, '>');
            if (depth && clen)
                candor__buf_putc(&b, ' ');
        }
        size_t keep = clen;
        if (flowed && delsp)
            keep--;
        candor__buf_append(&b, c, keep);
        open = flowed;
        open_depth = depth;
        p = next;
    }
    if (b.oom) {
        candor__buf_free(&b);
        return NULL;
    }
    return candor__buf_steal(&b);
}

/* ------------------------------------------------------------------ */
/* new text / quoted history / signature                               */
/* ------------------------------------------------------------------ */

struct line {
    const char *s;
    size_t len;       /* without the line break */
};

static bool starts(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

static bool starts_ci(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && candor__strncasecmp(s, prefix, n) == 0;
}

static bool ends_ci(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && candor__strncasecmp(s + len - n, suffix, n) == 0;
}

static void rtrim(const char *s, size_t *len)
{
    while (*len && candor__is_space((unsigned char)s[*len - 1]))
        (*len)--;
}

static void ltrim(const char **s, size_t *len)
{
    while (*len && candor__is_space((unsigned char)**s)) {
        (*s)++;
        (*len)--;
    }
}

static bool blank(const struct line *l)
{
    for (size_t i = 0; i < l->len; i++)
        if (!candor__is_space((unsigned char)l->s[i]))
            return false;
    return true;
}

static bool quoted(const struct line *l)
{
    size_t i = 0;
    while (i < l->len && i < 3 && l->s[i] == ' ')
        i++;
    return i < l->len && l->s[i] == '>';
}

/* Does the text end like an attribution verb ("wrote:", "a écrit :", ...)?
 * Non-breaking spaces before the colon (French typography) count. */
static bool attribution_end(const char *s, size_t len)
{
    static const char *const ends[] = {
        "wrote:", "writes:", "a écrit :", "a écrit:", "a écrit\xC2\xA0:", "a écrit\xE2\x80\xAF:",
        "schrieb:", "geschrieben:", "escribió:", "escribio:", "ha scritto:", "schreef:",
        "escreveu:", "skrev:",
    };
    rtrim(s, &len);
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++)
        if (ends_ci(s, len, ends[i]))
            return true;
    return false;
}

/* An attribution that starts at line I ("On ... wrote:", possibly wrapped
 * over up to three lines). Returns the number of lines it spans, 0 if
 * none. *STRONG: it begins with the usual opening word, so it marks
 * history even without "> " lines after it. */
static bool ends_colon(const struct line *l)
{
    size_t len = l->len;
    rtrim(l->s, &len);
    return len && l->s[len - 1] == ':';
}

static size_t attribution(const struct line *lines, size_t n, size_t i, bool *strong)
{
    bool colon = false;
    for (size_t k = i; k < n && k < i + 3 && !colon; k++)
        colon = ends_colon(&lines[k]);
    if (!colon)
        return 0;
    const char *s = lines[i].s;
    size_t len = lines[i].len;
    ltrim(&s, &len);
    static const char *const opens[] = { "On ", "Le ", "Am ", "El ", "Il ", "Op ", "Em ", "Den " };
    bool opener = false;
    for (size_t k = 0; k < sizeof opens / sizeof opens[0]; k++)
        if (starts(s, len, opens[k]))
            opener = true;
    /* German clients also write "Am 05.02.2019 um 14:03 schrieb X <x@y>:" */
    for (size_t span = 1; span <= 3 && i + span <= n; span++) {
        const struct line *last = &lines[i + span - 1];
        if (span > 1 && (blank(last) || quoted(last)))
            break;
        size_t llen = last->len;
        rtrim(last->s, &llen);
        bool end = attribution_end(last->s, llen);
        if (!end && opener && starts(s, len, "Am ") && llen && last->s[llen - 1] == ':') {
            /* "Am ... schrieb Name <addr>:" */
            for (size_t j = i; j < i + span && !end; j++)
                if (memmem(lines[j].s, lines[j].len, "schrieb", 7))
                    end = true;
        }
        if (end) {
            if (span > 1 && !opener)
                return 0;
            if (llen > 400 * span)
                return 0;
            *strong = opener;
            return span;
        }
        if (!opener)
            break;
    }
    return 0;
}

/* "-----Original Message-----" and its relatives. */
static bool separator(const struct line *l)
{
    const char *s = l->s;
    size_t len = l->len;
    ltrim(&s, &len);
    rtrim(s, &len);
    if (!len || !strchr("-_=BbDdAa", s[0]))
        return false;
    if (starts_ci(s, len, "Begin forwarded message:") || starts_ci(s, len, "Début du message réexpédié")
        || starts_ci(s, len, "Anfang der weitergeleiteten"))
        return true;
    if (len < 6 || (s[0] != '-' && s[0] != '_' && s[0] != '='))
        return false;
    size_t a = 0;
    while (a < len && (s[a] == '-' || s[a] == ' ' || s[a] == '_' || s[a] == '='))
        a++;
    size_t b = len;
    while (b > a && (s[b - 1] == '-' || s[b - 1] == ' ' || s[b - 1] == '_' || s[b - 1] == '='))
        b--;
    if (a < 3)
        return false;
    static const char *const names[] = {
        "original message", "message d'origine", "message d’origine", "message original",
        "ursprüngliche nachricht", "original-nachricht", "originalnachricht",
        "mensaje original", "messaggio originale", "oorspronkelijk bericht",
        "forwarded message", "message transféré", "weitergeleitete nachricht",
        "mensaje reenviado", "reply message", "antwort-nachricht",
    };
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (b - a == strlen(names[k]) && candor__strncasecmp(s + a, names[k], b - a) == 0)
            return true;
    return false;
}

static bool header_key(const struct line *l, const char *const *keys, size_t nkeys)
{
    const char *s = l->s;
    size_t len = l->len;
    ltrim(&s, &len);
    while (len && (*s == '*' || *s == '>')) {   /* bold (*From:*) or quoted */
        s++;
        len--;
        ltrim(&s, &len);
    }
    for (size_t k = 0; k < nkeys; k++)
        if (starts_ci(s, len, keys[k]))
            return true;
    return false;
}

/* Outlook's reply header: "From: ..." then, within a few lines, "Sent: ..."
 * (or "Date:"), in English, French, German or Spanish. */
static bool outlook_block(const struct line *lines, size_t n, size_t i)
{
    static const char *const from[] = { "From:", "De :", "De:", "Von:", "Van:", "Da:", "Från:" };
    static const char *const sent[] = {
        "Sent:", "Date:", "Envoyé :", "Envoyé:", "Date :", "Gesendet:", "Datum:", "Enviado:",
        "Enviado el:", "Fecha:", "Inviato:", "Verzonden:", "Skickat:", "To:", "À :", "An:",
        "Para:", "Subject:", "Objet :", "Betreff:", "Asunto:",
    };
    if (!memchr(lines[i].s, ':', lines[i].len)
        || !header_key(&lines[i], from, sizeof from / sizeof from[0]))
        return false;
    size_t hits = 0;
    for (size_t j = i + 1; j < n && j <= i + 5; j++) {
        if (blank(&lines[j]))
            break;
        if (header_key(&lines[j], sent, sizeof sent / sizeof sent[0]))
            hits++;
    }
    return hits >= 2 || (hits == 1 && i + 1 < n
                         && header_key(&lines[i + 1], sent, 3));  /* From: then Sent:/Date: */
}

static bool signature_start(const struct line *l)
{
    const char *s = l->s;
    size_t len = l->len;
    if (len == 3 && memcmp(s, "-- ", 3) == 0)
        return true;
    rtrim(s, &len);
    if (len == 2 && memcmp(s, "--", 2) == 0)
        return true;
    ltrim(&s, &len);
    if (!len || !strchr("SGEVI", s[0]))
        return false;
    static const char *const sent[] = {
        "Sent from my ", "Sent from Mail for ", "Sent from Outlook", "Sent from Yahoo Mail",
        "Sent from Samsung", "Get Outlook for ", "Sent with ProtonMail", "Sent via ",
        "Envoyé de mon ", "Envoyé depuis mon ", "Envoyé à partir de ", "Envoyé depuis ",
        "Von meinem ", "Gesendet von meinem ", "Gesendet mit ", "Gesendet von ",
        "Enviado desde mi ", "Enviado desde ", "Enviado do meu ", "Inviato da ",
    };
    for (size_t k = 0; k < sizeof sent / sizeof sent[0]; k++)
        if (starts(s, len, sent[k]))
            return len < 120;
    return false;
}

static bool put_lines(struct candor_buf *b, const struct line *lines, const bool *take,
                      size_t from, size_t to, bool squeeze)
{
    size_t first = from, last = to;
    while (first < last && (!take[first] || blank(&lines[first])))
        first++;
    while (last > first && (!take[last - 1] || blank(&lines[last - 1])))
        last--;
    bool prev_blank = false, any = false;
    for (size_t i = first; i < last; i++) {
        if (!take[i])
            continue;
        bool bl = blank(&lines[i]);
        if (squeeze && bl && prev_blank)
            continue;
        if (any)
            candor__buf_putc(b, '\n');
        size_t len = lines[i].len;
        rtrim(lines[i].s, &len);
        candor__buf_append(b, lines[i].s, len);
        prev_blank = bl;
        any = true;
    }
    return !b->oom;
}

bool candor__text_split(const char *text, char **new_text, char **quoted_out, char **signature)
{
    *new_text = *quoted_out = *signature = NULL;
    size_t n = 0, cap = 64;
    struct line *lines = malloc(cap * sizeof *lines);
    if (!lines)
        return false;
    const char *p = text ? text : "";
    for (;;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (n == cap) {
            cap *= 2;
            struct line *l = realloc(lines, cap * sizeof *l);
            if (!l) {
                free(lines);
                return false;
            }
            lines = l;
        }
        size_t l = len;
        if (l && p[l - 1] == '\r')
            l--;
        lines[n].s = p;
        lines[n].len = l;
        n++;
        if (!nl)
            break;
        p = nl + 1;
    }
    bool *is_quote = calloc(n + 1, sizeof *is_quote);
    bool *is_new = calloc(n + 1, sizeof *is_new);
    bool *is_sig = calloc(n + 1, sizeof *is_sig);
    if (!is_quote || !is_new || !is_sig) {
        free(lines);
        free(is_quote);
        free(is_new);
        free(is_sig);
        return false;
    }
    /* 1. Where the history starts for good. */
    size_t hist = n;
    for (size_t i = 0; i < n && hist == n; i++) {
        if (quoted(&lines[i]))
            continue;
        if (separator(&lines[i]) || outlook_block(lines, n, i)) {
            hist = i;
            /* an Outlook rule line just above belongs to it */
            size_t k = i;
            while (k > 0 && blank(&lines[k - 1]))
                k--;
            if (k > 0) {
                const char *s = lines[k - 1].s;
                size_t len = lines[k - 1].len;
                ltrim(&s, &len);
                rtrim(s, &len);
                bool rule = len >= 10;
                for (size_t j = 0; j < len && rule; j++)
                    rule = s[j] == '_' || s[j] == '-';
                if (rule)
                    hist = k - 1;
            }
            break;
        }
        bool strong = false;
        size_t span = attribution(lines, n, i, &strong);
        if (span) {
            size_t j = i + span;
            while (j < n && blank(&lines[j]))
                j++;
            if (j < n && quoted(&lines[j])) {
                for (size_t k = i; k < i + span; k++)
                    is_quote[k] = true;        /* soft: inline replies may follow */
                i += span - 1;
            } else if (strong) {
                hist = i;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (i >= hist || quoted(&lines[i]))
            is_quote[i] = true;
        is_new[i] = !is_quote[i];
    }
    /* 2. The signature: from its first marker to the end of the new text. */
    for (size_t i = 0; i < hist; i++) {
        if (is_new[i] && signature_start(&lines[i])) {
            for (size_t k = i; k < hist; k++)
                if (is_new[k]) {
                    is_sig[k] = true;
                    is_new[k] = false;
                }
            break;
        }
    }
    struct candor_buf nb = CANDOR_BUF_INIT, qb = CANDOR_BUF_INIT, sb = CANDOR_BUF_INIT;
    bool any_sig = false;
    for (size_t i = 0; i < n; i++)
        any_sig = any_sig || is_sig[i];
    bool ok = put_lines(&nb, lines, is_new, 0, n, true)
              && put_lines(&qb, lines, is_quote, 0, n, false)
              && (!any_sig || put_lines(&sb, lines, is_sig, 0, n, false));
    free(lines);
    free(is_quote);
    free(is_new);
    free(is_sig);
    if (ok) {
        *new_text = candor__buf_steal(&nb);
        *quoted_out = candor__buf_steal(&qb);
        *signature = any_sig ? candor__buf_steal(&sb) : NULL;
        ok = *new_text && *quoted_out && (!any_sig || *signature);
    }
    candor__buf_free(&nb);
    candor__buf_free(&qb);
    candor__buf_free(&sb);
    if (!ok) {
        free(*new_text);
        free(*quoted_out);
        free(*signature);
        *new_text = *quoted_out = *signature = NULL;
    }
    return ok;
}
