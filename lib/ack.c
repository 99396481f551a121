/*
 * ack.c — the acknowledgement, the record of human replies, and stats.
 *
 * candor_ack(): triage (intent, language, entities; candor_ack_with_result()
 * and candor_ack_batch() take the caller's result instead), then in ONE
 * IMMEDIATE store transaction: the auto-reply decision (autoreply.c), the
 * ticket (a known thread's, else a new CND-nnnnnn), the promise (eta.c)
 * and, when the decision allows, the composed acknowledgement put into
 * the outbox (acks, status "pending"). Concurrent processes serialise on
 * the store's write lock, so no thread and no sender is acknowledged
 * twice and ticket numbers are unique. candor_ack_batch() decides several
 * messages in one such transaction (one commit, one disk flush: a daemon's
 * group commit) and falls back to one transaction each if any fails.
 *
 * Tickets: mail that a person should answer gets one (reasons ok,
 * rate_limited, already_acknowledged — the last two reuse the thread's
 * ticket when there is one); mail from robots, lists, spoofed or spam
 * senders and mail not addressed to us gets none.
 *
 * The acknowledgement (RFC 5322, RFC 2045-2047, RFC 3834 section 3):
 * From our first address with the team as display name, To the envelope
 * sender, "Subject: Auto: <original>" with the original's Re:/Fwd:/Auto:
 * prefixes removed (no stacking), In-Reply-To and References (so mail
 * clients thread it under the customer's message), Auto-Submitted:
 * auto-replied, X-Loop, Precedence: bulk, X-Auto-Response-Suppress: All,
 * Message-ID, Date, X-Candor-Ticket; text/plain UTF-8 quoted-printable.
 * Header injection: text from the incoming mail (subject, message ids,
 * address) has every control character (C0, DEL, C1, U+2028/2029)
 * removed, message ids that are not plain id-left@id-right are dropped,
 * and any subject that is not short printable ASCII is RFC 2047-encoded,
 * so nothing the customer wrote can start a header line.
 *
 * The text: from the <ack> section of the configuration, one <language>
 * per customer language (candor_result_language; English when unknown),
 * a <body> per intent or the default one, with {placeholders}: team,
 * ticket, subject, intent (the request in plain words), orders (the order
 * numbers sentence), promise ("we will" when measured, "we aim to" for a
 * target), by, basis, calendar.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <json-c/json.h>
#include <libxml/tree.h>
#include "ctx.h"
#include "message.h"
#include "triage.h"
#include "autoreply.h"
#include "store.h"
#include "eta.h"
#include "canned.h"

#define MAX_SUBJECT_CHARS 250
#define MAX_REFERENCES 20
#define MAX_ORDERS 5
#define WRAP 72

static const char *const intents[] = {
    "complaint", "refund", "cancellation", "billing", "order_status",
    "technical_support", "account_change", "sales_inquiry", "praise", "general_question",
};
#define N_INTENTS (sizeof intents / sizeof intents[0])

static int intent_index(const char *name)
{
    for (size_t i = 0; name && i < N_INTENTS; i++)
        if (strcmp(intents[i], name) == 0)
            return (int)i;
    return -1;
}

enum { T_BODY, T_ORDERS, T_WILL, T_AIM, T_BASIS_MEASURED, T_BASIS_TARGET, T_NO_SUBJECT, T_COUNT };
static const char *const text_names[T_COUNT] = {
    "body", "orders", "will", "aim", "basis-measured", "basis-target", "no-subject",
};

struct lang {
    char code[8];
    char *text[T_COUNT];
    char *body[N_INTENTS];      /* per-intent bodies, NULL: the default */
    char *intent[N_INTENTS];    /* the request in plain words */
};

struct candor_ack_conf {
    struct lang *langs;
    size_t n_langs;
};

/* Built-in English, used when the configuration has no <language code="en">
 * (or lacks an element of it). */
static const char *const en_text[T_COUNT] = {
    "Hello,\n\n"
    "This is an automatic acknowledgement: your message has arrived, and no "
    "person has read it yet.\n\n"
    "We understood your message \"{subject}\" as {intent}.{orders} Your ticket "
    "reference is {ticket}; please keep it in the subject if you write again.\n\n"
    "{team} will answer you. {promise}\n\n"
    "How we chose this time: {basis}\n\n"
    "You do not need to reply to this message.\n\n"
    "{team}",
    " You mentioned {orders}.",
    "We will answer by {by}.",
    "We aim to answer by {by}.",
    "{pct}% of our last {n} first replies to requests like yours came within {hours} "
    "business hours (business hours: {calendar}).",
    "we do not have enough recent replies to measure our response time yet, so this "
    "is our target of {hours} business hours (business hours: {calendar}).",
    "your message",
};
static const char *const en_intent[N_INTENTS] = {
    "a complaint", "a request for a refund", "a request to cancel",
    "a question about billing", "a question about your order or delivery",
    "a request for technical help", "a request to change your account details",
    "a question about our products or prices", "kind feedback",
    "a general question",
};

/* ---- configuration ---- */

/* Template text from the XML: each line trimmed of its indentation, blank
 * lines kept as paragraph breaks. */
static char *template_text(xmlNodePtr n)
{
    char *raw = candor__config_text(n);
    if (!raw)
        return NULL;
    struct candor_buf b = CANDOR_BUF_INIT;
    const char *p = raw;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *s = p;
        while (len && (*s == ' ' || *s == '\t')) {
            s++;
            len--;
        }
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
            len--;
        candor__buf_append(&b, s, len);
        if (e)
            candor__buf_putc(&b, '\n');
        p = e ? e + 1 : p + strlen(p);
    }
    free(raw);
    return candor__buf_steal(&b);
}

candor_status_t candor__ack_load(struct candor_ctx *ctx, xmlNodePtr section)
{
    struct candor_ack_conf *c = calloc(1, sizeof *c);
    if (!c)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    ctx->ack = c;
    size_t n = 0;
    for (xmlNodePtr l = candor__config_child(section, "language"); l; l = candor__config_next(l))
        n++;
    c->langs = calloc(n + 1, sizeof *c->langs);
    if (!c->langs)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    for (xmlNodePtr l = candor__config_child(section, "language"); l; l = candor__config_next(l)) {
        struct lang *lg = &c->langs[c->n_langs++];
        char *code = candor__config_attr(l, "code");
        if (!code || !*code || strlen(code) >= sizeof lg->code) {
            free(code);
            return candor__config_fail(ctx->config_path, l, "language: want code=\"en\"");
        }
        for (size_t i = 0; code[i]; i++)
            lg->code[i] = (char)candor__lower((unsigned char)code[i]);
        free(code);
        for (xmlNodePtr e = l->children; e; e = e->next) {
            if (e->type != XML_ELEMENT_NODE)
                continue;
            const char *name = (const char *)e->name;
            char *which = candor__config_attr(e, "intent");
            if (strcmp(name, "intent") == 0 || (strcmp(name, "body") == 0 && which)) {
                char *nm = strcmp(name, "intent") == 0 ? candor__config_attr(e, "name") : NULL;
                const char *key = nm ? nm : which;
                int ix = intent_index(key);
                free(which);
                if (ix < 0) {
                    candor_status_t st = candor__config_fail(ctx->config_path, e,
                        "%s: unknown intent \"%.40s\"", name, key ? key : "");
                    free(nm);
                    return st;
                }
                free(nm);
                char **slot = strcmp(name, "intent") == 0 ? &lg->intent[ix] : &lg->body[ix];
                free(*slot);
                *slot = template_text(e);
                continue;
            }
            free(which);
            for (int t = 0; t < T_COUNT; t++)
                if (strcmp(name, text_names[t]) == 0) {
                    free(lg->text[t]);
                    lg->text[t] = template_text(e);
                }
        }
    }
    return CANDOR_OK;
}

void candor__ack_conf_free(struct candor_ack_conf *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_langs; i++) {
        for (int t = 0; t < T_COUNT; t++)
            free(c->langs[i].text[t]);
        for (size_t k = 0; k < N_INTENTS; k++) {
            free(c->langs[i].body[k]);
            free(c->langs[i].intent[k]);
        }
    }
    free(c->langs);
    free(c);
}

static const struct lang *find_lang(const struct candor_ctx *ctx, const char *code)
{
    const struct candor_ack_conf *c = ctx->ack;
    if (!c || !code)
        return NULL;
    for (size_t i = 0; i < c->n_langs; i++)
        if (candor__strncasecmp(c->langs[i].code, code, 2) == 0)
            return &c->langs[i];
    return NULL;
}

/* The text T in LANG, else in the configured English, else built in. */
static const char *lang_text(const struct candor_ctx *ctx, const struct lang *lg, int t)
{
    if (lg && lg->text[t])
        return lg->text[t];
    const struct lang *en = find_lang(ctx, "en");
    if (en && en->text[t])
        return en->text[t];
    return en_text[t];
}

static const char *lang_intent(const struct candor_ctx *ctx, const struct lang *lg, int ix)
{
    if (ix < 0)
        ix = (int)N_INTENTS - 1;
    if (lg && lg->intent[ix])
        return lg->intent[ix];
    const struct lang *en = find_lang(ctx, "en");
    if (en && en->intent[ix])
        return en->intent[ix];
    return en_intent[ix];
}

static const char *lang_body(const struct candor_ctx *ctx, const struct lang *lg, int ix)
{
    if (lg && ix >= 0 && lg->body[ix])
        return lg->body[ix];
    if (lg && lg->text[T_BODY])
        return lg->text[T_BODY];
    return lang_text(ctx, NULL, T_BODY);
}

/* ---- sanitising what came from the mail ---- */

/* Copy S without control characters (C0 incl. CR/LF/TAB -> space, DEL,
 * C1, U+2028/U+2029), white space collapsed, at most MAX characters
 * (an ellipsis marks a cut). New string. */
static char *clean_text(const char *s, size_t max)
{
    struct candor_buf b = CANDOR_BUF_INIT;
    size_t len = s ? strlen(s) : 0, chars = 0;
    bool space = false;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = candor__utf8_decode(s + i, len - i, &cp);
        i += k;
        if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) || cp == 0x2028 ||
            cp == 0x2029 || cp == ' ' || cp == 0xfeff) {
            space = b.len > 0;
            continue;
        }
        if (chars >= max) {
            candor__buf_puts(&b, "\xe2\x80\xa6");
            break;
        }
        if (space) {
            candor__buf_putc(&b, ' ');
            chars++;
            space = false;
        }
        char out[4];
        candor__buf_append(&b, out, candor__utf8_encode(cp, out));
        chars++;
    }
    if (b.oom) {
        candor__buf_free(&b);
        return NULL;
    }
    return candor__buf_steal(&b);
}

/* A message id we may write between <>: printable ASCII without white
 * space or <>, with an @, at most 250 bytes. */
static bool clean_id(const char *id)
{
    if (!id || !*id || strlen(id) > 250 || !strchr(id, '@'))
        return false;
    for (const char *p = id; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '"' || c == '\\' ||
            c == '(' || c == ')' || c == ',')
            return false;
    }
    return true;
}

/* Remove reply/forward/auto prefixes: "Re: AW: Fwd: Auto: x" -> "x". */
static const char *strip_prefixes(const char *s)
{
    static const char *const pre[] = {
        "re", "aw", "sv", "vs", "antw", "antwort", "r", "ref", "rif", "fw", "fwd", "wg",
        "tr", "rv", "enc", "auto", "automatic reply", "réf", NULL
    };
    for (int guard = 0; guard < 20; guard++) {
        while (*s == ' ')
            s++;
        const char *next = NULL;
        for (const char *const *p = pre; *p && !next; p++) {
            size_t n = strlen(*p);
            if (candor__strncasecmp(s, *p, n) != 0)
                continue;
            const char *q = s + n;
            if (*q == '[') {          /* "Re[2]:" */
                while (candor__is_digit((unsigned char)*++q))
                    ;
                if (*q != ']')
                    continue;
                q++;
            }
            while (*q == ' ')
                q++;
            if (*q == ':')
                next = q + 1;
        }
        if (!next)
            break;
        s = next;
    }
    while (*s == ' ')
        s++;
    return s;
}

/* ---- MIME helpers ---- */

static bool ascii_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

/* Append TEXT as RFC 2047 B encoded-words of UTF-8, each at most 75
 * characters, split only between characters, folded with CRLF SP. */
static void put_encoded_words(struct candor_buf *b, const char *text)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = strlen(text), i = 0;
    bool first = true;
    while (i < len) {
        /* at most 45 bytes per word: 60 base64 + 12 = 72 characters */
        size_t end = i, take;
        while (end < len) {
            uint32_t cp;
            size_t k = candor__utf8_decode(text + end, len - end, &cp);
            if (end + k - i > 45)
                break;
            end += k;
        }
        if (end == i)
            end = i + 1;
        take = end - i;
        if (!first)
            candor__buf_puts(b, "\r\n ");
        first = false;
        candor__buf_puts(b, "=?UTF-8?B?");
        const unsigned char *p = (const unsigned char *)text + i;
        for (size_t k = 0; k < take; k += 3) {
            uint32_t v = (uint32_t)p[k] << 16;
            if (k + 1 < take) v |= (uint32_t)p[k + 1] << 8;
            if (k + 2 < take) v |= p[k + 2];
            char o[4] = { b64[v >> 18 & 63], b64[v >> 12 & 63],
                          k + 1 < take ? b64[v >> 6 & 63] : '=',
                          k + 2 < take ? b64[v & 63] : '=' };
            candor__buf_append(b, o, 4);
        }
        candor__buf_puts(b, "?=");
        i = end;
    }
}

/* Quoted-printable body (RFC 2045 6.7), LF in TEXT -> CRLF. */
static void put_qp(struct candor_buf *b, const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        size_t col = 0;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)p[i];
            bool last = i + 1 == len;
            bool lit = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last);
            /* a leading "." or "From " would be safe in QP, but encode
             * them anyway: some transports mangle them */
            if (col == 0 && (c == '.' || (c == 'F' && strncmp(p + i, "From ", 5) == 0)))
                lit = false;
            size_t w = lit ? 1 : 3;
            if (col + w > 75) {
                candor__buf_puts(b, "=\r\n");
                col = 0;
            }
            if (lit)
                candor__buf_putc(b, (char)c);
            else {
                char o[3] = { '=', hex[c >> 4], hex[c & 15] };
                candor__buf_append(b, o, 3);
            }
            col += w;
        }
        candor__buf_puts(b, "\r\n");
        if (!e)
            break;
        p = e + 1;
    }
}

/* RFC 5322 date, locale-free, in UTC. */
static void rfc5322_date(char *buf, size_t size, int64_t t)
{
    static const char *const wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const mo[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
                                      "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm))
        memset(&tm, 0, sizeof tm);
    snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d +0000", wd[tm.tm_wday % 7],
             tm.tm_mday, mo[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ---- templates ---- */

struct vars {
    const char *name[16];
    const char *value[16];
    size_t n;
};

static void var(struct vars *v, const char *name, const char *value)
{
    if (v->n < 16) {
        v->name[v->n] = name;
        v->value[v->n++] = value ? value : "";
    }
}

static void expand(struct candor_buf *b, const char *tpl, const struct vars *v)
{
    for (const char *p = tpl; *p; p++) {
        if (*p == '{') {
            const char *e = strchr(p, '}');
            bool done = false;
            for (size_t i = 0; e && i < v->n && !done; i++)
                if (strlen(v->name[i]) == (size_t)(e - p - 1) &&
                    strncmp(p + 1, v->name[i], (size_t)(e - p - 1)) == 0) {
                    candor__buf_puts(b, v->value[i]);
                    p = e;
                    done = true;
                }
            if (done)
                continue;
        }
        candor__buf_putc(b, *p);
    }
}

/* Re-flow each paragraph of TEXT (paragraphs are separated by blank
 * lines; single newlines join lines) to WRAP columns, counting characters,
 * not bytes. */
static char *wrap(const char *in)
{
    char *text = candor__strdup(in);
    if (!text)
        return NULL;
    for (char *q = text; *q; q++)
        if (*q == '\n' && q[1] != '\n' && (q == text || q[-1] != '\n'))
            *q = ' ';
    struct candor_buf b = CANDOR_BUF_INIT;
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        size_t col = 0, i = 0;
        while (i < len) {
            size_t ws = i;
            while (ws < len && p[ws] != ' ')
                ws++;
            size_t wchars = 0;
            for (size_t k = i; k < ws; k++)
                if (((unsigned char)p[k] & 0xc0) != 0x80)
                    wchars++;
            if (col && col + 1 + wchars > WRAP) {
                candor__buf_putc(&b, '\n');
                col = 0;
            } else if (col) {
                candor__buf_putc(&b, ' ');
                col++;
            }
            candor__buf_append(&b, p + i, ws - i);
            col += wchars;
            i = ws;
            while (i < len && p[i] == ' ')
                i++;
        }
        if (!e)
            break;
        candor__buf_putc(&b, '\n');
        p = e + 1;
    }
    free(text);
    return candor__buf_steal(&b);
}

/* ---- the ack object ---- */

struct candor_ack {
    bool send;
    const char *reason;     /* static */
    char ticket[32];        /* "" none */
    char *recipient;
    char *message;
    bool has_promise;
    int64_t by;
    char *basis;
};

void candor_ack_free(struct candor_ack *ack)
{
    if (!ack)
        return;
    free(ack->recipient);
    free(ack->message);
    free(ack->basis);
    free(ack);
}

int candor_ack_send(const struct candor_ack *ack) { return ack && ack->send; }
const char *candor_ack_reason(const struct candor_ack *ack) { return ack ? ack->reason : NULL; }
const char *candor_ack_ticket(const struct candor_ack *ack)
{ return ack && ack->ticket[0] ? ack->ticket : NULL; }
const char *candor_ack_message(const struct candor_ack *ack) { return ack && ack->send ? ack->message : NULL; }
const char *candor_ack_recipient(const struct candor_ack *ack) { return ack ? ack->recipient : NULL; }

static char *json_dump(json_object *o)
{
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                   JSON_C_TO_STRING_NOSLASHESCAPE);
    return s ? candor__strdup(s) : NULL;
}

static json_object *json_str_or_null(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

candor_status_t candor_ack_to_json(const struct candor_ack *ack, char **json)
{
    if (json)
        *json = NULL;
    if (!ack || !json)
        return candor__fail(CANDOR_EINVAL, "ack_to_json: no ack or output");
    json_object *o = json_object_new_object();
    if (!o)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    json_object_object_add(o, "send", json_object_new_boolean(ack->send));
    json_object_object_add(o, "reason", json_object_new_string(ack->reason));
    json_object_object_add(o, "ticket", json_str_or_null(candor_ack_ticket(ack)));
    if (ack->has_promise) {
        json_object *p = json_object_new_object();
        char by[32];
        candor_time_format(by, sizeof by, ack->by);
        json_object_object_add(p, "by", json_object_new_string(by));
        json_object_object_add(p, "basis", json_str_or_null(ack->basis));
        json_object_object_add(o, "promise", p);
    } else {
        json_object_object_add(o, "promise", NULL);
    }
    json_object_object_add(o, "message", json_str_or_null(candor_ack_message(ack)));
    *json = json_dump(o);
    json_object_put(o);
    return *json ? CANDOR_OK : candor__fail(CANDOR_ENOMEM, "out of memory");
}

/* ---- store writes ---- */

/* Run Q once and free it. */
static candor_status_t run_free(struct candor_stmt *q)
{
    candor_status_t st = candor__stmt_run(q);
    candor__stmt_free(q);
    return st;
}

static candor_status_t new_ticket(struct candor_store *store, int64_t now, const char *sender,
                                  const char *intent, const char *subject, const char *msgid,
                                  int64_t *id)
{
    /* the id comes from the tickets' own sequence (SQLite AUTOINCREMENT,
     * PostgreSQL identity): never handed out twice, whatever the host */
    struct candor_stmt *q;
    candor_status_t st = candor__store_prepare(store, "new ticket",
        "INSERT INTO tickets(created, sender, intent, subject, message_id) "
        "VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id", &q);
    if (st != CANDOR_OK)
        return st;
    candor__stmt_bind_int64(q, 1, now);
    candor__stmt_bind_text(q, 2, sender);
    candor__stmt_bind_text(q, 3, intent);
    candor__stmt_bind_text(q, 4, subject);
    candor__stmt_bind_text(q, 5, msgid);
    int rc = candor__stmt_step(q);
    if (rc == CANDOR_DB_ROW) {
        *id = candor__stmt_int64(q, 0);
        st = candor__stmt_run(q);
    } else {
        st = rc == CANDOR_DB_DONE ? candor__fail(CANDOR_EIO, "store: new ticket: no id")
                                  : (candor_status_t)rc;
    }
    candor__stmt_free(q);
    return st;
}

static candor_status_t add_thread_id(struct candor_store *store, const char *msgid,
                                     int64_t ticket, int64_t now)
{
    if (!msgid || !*msgid)
        return CANDOR_OK;
    struct candor_stmt *q;
    candor_status_t st = candor__store_prepare(store, "thread",
        "INSERT INTO threads(message_id, ticket, created) VALUES (?1, ?2, ?3) "
        "ON CONFLICT DO NOTHING", &q);
    if (st != CANDOR_OK)
        return st;
    candor__stmt_bind_text(q, 1, msgid);
    candor__stmt_bind_int64(q, 2, ticket);
    candor__stmt_bind_int64(q, 3, now);
    return run_free(q);
}

/* The rows per INSERT of add_thread_ids: one statement text per count
 * (1..THREAD_ROWS), each prepared once per connection. */
#define THREAD_ROWS 8

/* IDS (empty ones skipped, duplicates allowed) belong to TICKET: one
 * multi-row INSERT per THREAD_ROWS ids instead of one per id, so a reply
 * costs PostgreSQL one round trip here, not one per reference. */
static candor_status_t add_thread_ids(struct candor_store *store, const char *const *ids,
                                      size_t n, int64_t ticket, int64_t now)
{
    const char *rows[THREAD_ROWS];
    size_t i = 0;
    candor_status_t st = CANDOR_OK;
    while (st == CANDOR_OK && i < n) {
        size_t k = 0;
        for (; i < n && k < THREAD_ROWS; i++)
            if (ids[i] && *ids[i])
                rows[k++] = ids[i];
        if (!k)
            break;
        char sql[512];
        size_t len = (size_t)snprintf(sql, sizeof sql,
                                      "INSERT INTO threads(message_id, ticket, created) VALUES ");
        for (size_t r = 0; r < k && len < sizeof sql; r++)
            len += (size_t)snprintf(sql + len, sizeof sql - len, "%s(?%zu, ?1, ?2)",
                                    r ? ", " : "", r + 3);
        if (len < sizeof sql)
            len += (size_t)snprintf(sql + len, sizeof sql - len, " ON CONFLICT DO NOTHING");
        if (len >= sizeof sql)
            return candor__fail(CANDOR_ERROR, "thread: statement too long");
        struct candor_stmt *q;
        st = candor__store_prepare(store, "thread", sql, &q);
        if (st != CANDOR_OK)
            return st;
        candor__stmt_bind_int64(q, 1, ticket);
        candor__stmt_bind_int64(q, 2, now);
        for (size_t r = 0; r < k; r++)
            candor__stmt_bind_text(q, (int)r + 3, rows[r]);
        st = run_free(q);
    }
    return st;
}

static candor_status_t log_decision(struct candor_store *store, int64_t now, const char *sender,
                                    const char *msgid, const char *reason, int64_t ticket)
{
    struct candor_stmt *q;
    candor_status_t st = candor__store_prepare(store, "decision",
        "INSERT INTO decisions(decided, sender, message_id, reason, ticket) "
        "VALUES (?1, ?2, ?3, ?4, ?5)", &q);
    if (st != CANDOR_OK)
        return st;
    candor__stmt_bind_int64(q, 1, now);
    candor__stmt_bind_text(q, 2, sender);
    candor__stmt_bind_text(q, 3, msgid);
    candor__stmt_bind_text(q, 4, reason);
    if (ticket)
        candor__stmt_bind_int64(q, 5, ticket);
    else
        candor__stmt_bind_null(q, 5);
    return run_free(q);
}

/* ---- composing ---- */

struct understood {
    const char *intent;      /* label */
    char lang[8];
    char *orders;            /* "A12345, B77" or NULL */
};

/* What the acknowledgement needs from a triage RESULT of the message:
 * intent, language, order numbers. */
static void understand_result(const struct candor_result *res, struct understood *u)
{
    memset(u, 0, sizeof *u);
    u->intent = "general_question";
    snprintf(u->lang, sizeof u->lang, "en");
    if (!res)
        return;
    int ix = intent_index(candor_result_intent(res));
    if (ix >= 0)
        u->intent = intents[ix];
    const char *lang = candor_result_language(res);
    if (lang && candor__is_alpha((unsigned char)lang[0]) && candor__is_alpha((unsigned char)lang[1])) {
        u->lang[0] = (char)candor__lower((unsigned char)lang[0]);
        u->lang[1] = (char)candor__lower((unsigned char)lang[1]);
        u->lang[2] = '\0';
    }
    size_t n = 0;
    const struct candor_entity *ents = candor__result_entities(res, &n);
    struct candor_buf b = CANDOR_BUF_INIT;
    size_t kept = 0;
    for (size_t i = 0; ents && i < n && kept < MAX_ORDERS; i++) {
        if (!ents[i].kind || strcmp(ents[i].kind, "order_number") != 0 || !ents[i].value)
            continue;
        char *v = clean_text(ents[i].value, 40);
        if (!v || !*v || (b.data && strstr(b.data, v))) {
            free(v);
            continue;
        }
        if (b.len)
            candor__buf_puts(&b, ", ");
        candor__buf_puts(&b, v);
        free(v);
        kept++;
    }
    u->orders = b.len ? candor__buf_steal(&b) : NULL;
    if (!u->orders)
        candor__buf_free(&b);
}

static void understand(const struct candor_ctx *ctx, const struct candor_message *msg,
                       const candor_envelope_t *env, struct understood *u)
{
    struct candor_result *res = NULL;
    if (candor_triage(&res, ctx, msg, NULL, env, 0) != CANDOR_OK || !res) {
        candor__log(ctx, CANDOR_LOG_WARN, "ack: triage failed (%s); acknowledging as a "
                    "general question", candor_errmsg());
        understand_result(NULL, u);
        return;
    }
    understand_result(res, u);
    candor_result_free(res);
}

static char *domain_of(const char *addr)
{
    const char *at = addr ? strrchr(addr, '@') : NULL;
    return candor__strdup(at && at[1] ? at + 1 : "candor.invalid");
}

static candor_status_t compose(const struct candor_ctx *ctx, const struct candor_message *msg,
                               const struct understood *u, const char *recipient,
                               const char *ticket, const struct candor_eta_promise *pr,
                               int64_t now, const char *ack_id, char **out)
{
    const struct lang *lg = find_lang(ctx, u->lang);
    int ix = intent_index(u->intent);
    char *subject = clean_text(strip_prefixes(msg->subject ? msg->subject : ""),
                               MAX_SUBJECT_CHARS);
    char *team = clean_text(ctx->team_name ? ctx->team_name : "Customer Support", 100);
    if (!subject || !team) {
        free(subject);
        free(team);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    const char *shown_subject = *subject ? subject : lang_text(ctx, lg, T_NO_SUBJECT);

    char by[64], hours[32];
    candor__eta_format_local(ctx, pr->by, by, sizeof by);
    /* "8", "2.5": no trailing ".0", one decimal at most */
    double hr = (double)(int64_t)(pr->business_hours * 10.0 + 0.999) / 10.0;
    if (hr == (double)(int64_t)hr)
        snprintf(hours, sizeof hours, "%lld", (long long)hr);
    else
        snprintf(hours, sizeof hours, "%.1f", hr);
    char nsamples[24], pct[8];
    snprintf(nsamples, sizeof nsamples, "%zu", pr->samples);
    snprintf(pct, sizeof pct, "%d", pr->percentile);

    struct vars v = { .n = 0 };
    var(&v, "by", by);
    var(&v, "hours", hours);
    var(&v, "n", nsamples);
    var(&v, "pct", pct);
    var(&v, "calendar", candor__eta_calendar(ctx));
    struct candor_buf promise = CANDOR_BUF_INIT, basis = CANDOR_BUF_INIT, orders = CANDOR_BUF_INIT;
    expand(&promise, lang_text(ctx, lg, pr->measured ? T_WILL : T_AIM), &v);
    expand(&basis, lang_text(ctx, lg, pr->measured ? T_BASIS_MEASURED : T_BASIS_TARGET), &v);
    struct vars vo = { .n = 0 };
    var(&vo, "orders", u->orders);
    if (u->orders) {
        /* a sentence of its own, after the one before it */
        const char *ot = lang_text(ctx, lg, T_ORDERS);
        while (*ot == ' ')
            ot++;
        candor__buf_putc(&orders, ' ');
        expand(&orders, ot, &vo);
    }

    var(&v, "team", team);
    var(&v, "ticket", ticket);
    var(&v, "subject", shown_subject);
    var(&v, "intent", lang_intent(ctx, lg, ix));
    var(&v, "orders", orders.data);
    var(&v, "promise", promise.data);
    var(&v, "basis", basis.data);
    struct candor_buf body = CANDOR_BUF_INIT;
    expand(&body, lang_body(ctx, lg, ix), &v);
    char *text = body.oom ? NULL : wrap(body.data ? body.data : "");

    struct candor_buf m = CANDOR_BUF_INIT;
    char date[64];
    rfc5322_date(date, sizeof date, now);
    const char *from = ctx->first_address ? ctx->first_address : "support@candor.invalid";
    /* From: team as display name (a quoted string when plain ASCII) */
    candor__buf_puts(&m, "From: ");
    bool plain = ascii_printable(team) && !strpbrk(team, "\"\\") && !strstr(team, "=?");
    if (plain)
        candor__buf_printf(&m, "\"%s\"", team);
    else
        put_encoded_words(&m, team);
    candor__buf_printf(&m, " <%s>\r\n", from);
    candor__buf_printf(&m, "To: <%s>\r\n", recipient);
    char *subj = NULL;
    {
        struct candor_buf s = CANDOR_BUF_INIT;
        candor__buf_printf(&s, "Auto: %s", shown_subject);
        subj = candor__buf_steal(&s);
    }
    if (subj) {
        candor__buf_puts(&m, "Subject: Auto: ");
        const char *orig = subj + 6;
        if (ascii_printable(orig) && !strstr(orig, "=?") && strlen(orig) <= 60)
            candor__buf_puts(&m, orig);
        else
            put_encoded_words(&m, orig);
        candor__buf_puts(&m, "\r\n");
    }
    free(subj);
    candor__buf_printf(&m, "Date: %s\r\n", date);
    candor__buf_printf(&m, "Message-ID: <%s>\r\n", ack_id);
    bool have_id = clean_id(msg->message_id);
    if (have_id)
        candor__buf_printf(&m, "In-Reply-To: <%s>\r\n", msg->message_id);
    /* References: the original's (first one and the newest), then its id
     * (RFC 5322 3.6.4) */
    const char *refs[MAX_REFERENCES + 1];
    size_t nr = 0, total = msg->references.n;
    for (size_t i = 0; i < total && nr < MAX_REFERENCES; i++) {
        size_t j = i == 0 ? 0 : (total > MAX_REFERENCES ? total - MAX_REFERENCES + i : i);
        if (j < total && clean_id(msg->references.v[j]) &&
            !(have_id && strcmp(msg->references.v[j], msg->message_id) == 0))
            refs[nr++] = msg->references.v[j];
    }
    if (have_id)
        refs[nr++] = msg->message_id;
    if (nr) {
        candor__buf_puts(&m, "References:");
        for (size_t i = 0; i < nr; i++)
            candor__buf_printf(&m, "%s<%s>", i ? "\r\n " : " ", refs[i]);
        candor__buf_puts(&m, "\r\n");
    }
    candor__buf_puts(&m, "Auto-Submitted: auto-replied\r\n");
    candor__buf_printf(&m, "X-Loop: %s\r\n", from);
    candor__buf_puts(&m, "Precedence: bulk\r\n");
    candor__buf_puts(&m, "X-Auto-Response-Suppress: All\r\n");
    candor__buf_printf(&m, "X-Candor-Ticket: %s\r\n", ticket);
    candor__buf_puts(&m, "MIME-Version: 1.0\r\n");
    candor__buf_puts(&m, "Content-Type: text/plain; charset=UTF-8\r\n");
    candor__buf_puts(&m, "Content-Transfer-Encoding: quoted-printable\r\n");
    candor__buf_printf(&m, "Content-Language: %s\r\n", lg ? lg->code : "en");
    candor__buf_puts(&m, "\r\n");
    if (text)
        put_qp(&m, text);

    bool oom = m.oom || promise.oom || basis.oom || orders.oom || !text;
    free(text);
    candor__buf_free(&body);
    candor__buf_free(&promise);
    candor__buf_free(&basis);
    candor__buf_free(&orders);
    free(subject);
    free(team);
    if (oom) {
        candor__buf_free(&m);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    *out = candor__buf_steal(&m);
    return CANDOR_OK;
}

static bool ticket_worthy(const char *reason)
{
    return strcmp(reason, "ok") == 0 || strcmp(reason, "rate_limited") == 0 ||
           strcmp(reason, "already_acknowledged") == 0;
}

static candor_status_t ack_locked(struct candor_ack *a, const struct candor_ctx *ctx,
                                  struct candor_store *store, const struct candor_message *msg,
                                  const candor_envelope_t *env, const struct understood *u,
                                  int64_t now)
{
    char *rcpt = NULL;
    const char *reason = NULL;
    candor_status_t dst = candor__autoreply_decide_status(ctx, msg, store, env, &rcpt, &reason);
    if (dst != CANDOR_OK)
        return dst;
    a->reason = reason;
    a->recipient = rcpt;
    char *norm = rcpt ? candor__addr_normalize(rcpt) : NULL;
    const char *msgid = msg->message_id && *msg->message_id ? msg->message_id : NULL;
    candor_status_t st = CANDOR_OK;
    int64_t ticket = 0;
    const char *ids[65];   /* the thread's ids, then the acknowledgement's */
    size_t thread_n = 0;
    char ack_id[400];
    if (ticket_worthy(reason)) {
        size_t n = candor__autoreply_thread_ids(msg, ids, 64);
        bool acked;
        st = candor__store_thread_find(store, ids, n, &ticket, &acked);
        if (st == CANDOR_OK && !ticket) {
            char *subject = clean_text(msg->subject ? msg->subject : "", MAX_SUBJECT_CHARS);
            st = new_ticket(store, now, norm, u->intent, subject, msgid, &ticket);
            free(subject);
        }
        /* the message and everything it refers to belong to the ticket's
         * thread: a reply that arrives before its parent still ties the
         * parent to the same ticket. Recorded below in one statement with
         * the acknowledgement's own id (nothing in between reads threads) */
        thread_n = n;
        if (st == CANDOR_OK)
            candor__ticket_format(a->ticket, sizeof a->ticket, ticket);
    }
    if (st == CANDOR_OK && strcmp(reason, "ok") == 0) {
        struct candor_eta_promise pr;
        st = candor__eta_promise(ctx, store, u->intent, now, &pr);
        if (st == CANDOR_OK) {
            unsigned char rnd[6] = { 0 };
            if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd)
                memset(rnd, 0, sizeof rnd);
            char *dom = domain_of(ctx->first_address);
            snprintf(ack_id, sizeof ack_id, "candor.%s.%lld.%02x%02x%02x%02x%02x%02x@%s",
                     a->ticket, (long long)now, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5],
                     dom && strspn(dom,
                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
                         == strlen(dom) ? dom : "candor.invalid");
            free(dom);
            st = compose(ctx, msg, u, rcpt, a->ticket, &pr, now, ack_id, &a->message);
        }
        if (st == CANDOR_OK) {
            a->basis = candor__eta_basis(ctx, &pr, u->intent);
            a->by = pr.by;
            a->has_promise = true;
            a->send = true;
            struct candor_stmt *q;
            /* acks.ticket is the primary key: a second acknowledgement of
             * one ticket cannot be recorded, whatever the host */
            st = candor__store_prepare(store, "ack",
                "INSERT INTO acks(ticket, recipient, rcpt, created, status, message_id, message) "
                "VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6)", &q);
            if (st == CANDOR_OK) {
                candor__stmt_bind_int64(q, 1, ticket);
                candor__stmt_bind_text(q, 2, norm);
                candor__stmt_bind_text(q, 3, rcpt);
                candor__stmt_bind_int64(q, 4, now);
                candor__stmt_bind_text(q, 5, ack_id);
                candor__stmt_bind_text(q, 6, a->message);
                st = run_free(q);
            }
            if (st == CANDOR_OK)
                st = candor__store_prepare(store, "promise",
                    "INSERT INTO promises(ticket, intent, made, due, measured, basis) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(ticket) DO UPDATE SET "
                    "intent = excluded.intent, made = excluded.made, due = excluded.due, "
                    "measured = excluded.measured, basis = excluded.basis", &q);
            if (st == CANDOR_OK) {
                candor__stmt_bind_int64(q, 1, ticket);
                candor__stmt_bind_text(q, 2, u->intent);
                candor__stmt_bind_int64(q, 3, now);
                candor__stmt_bind_int64(q, 4, pr.by);
                candor__stmt_bind_int64(q, 5, pr.measured);
                candor__stmt_bind_text(q, 6, a->basis ? a->basis : "");
                st = run_free(q);
            }
            if (st == CANDOR_OK)
                ids[thread_n++] = ack_id;
        }
    }
    if (st == CANDOR_OK && thread_n)
        st = add_thread_ids(store, ids, thread_n, ticket, now);
    if (st == CANDOR_OK)
        st = log_decision(store, now, norm, msgid, reason, ticket);
    free(norm);
    return st;
}

/* The checks every entry point makes; *E gets ENV with its time filled in. */
static candor_status_t ack_args(const struct candor_ctx *ctx, struct candor_store *store,
                                const struct candor_message *msg, const candor_envelope_t *env,
                                candor_envelope_t *e)
{
    if (!ctx || !store || !msg)
        return candor__fail(CANDOR_EINVAL, "ack: no output, ctx, store or message");
    if (env && env->version != CANDOR_ENVELOPE_VERSION)
        return candor__fail(CANDOR_EINVAL, "ack: unknown envelope version %u", env->version);
    if (candor__store_readonly(store))
        return candor__fail(CANDOR_EINVAL, "ack: the state is open read-only");
    *e = (candor_envelope_t)CANDOR_ENVELOPE_INIT;
    if (env)
        *e = *env;
    e->now = candor__now(env ? env->now : 0);
    return CANDOR_OK;
}

static void ack_logged(const struct candor_ctx *ctx, const struct candor_ack *a)
{
    candor__log(ctx, CANDOR_LOG_INFO, "ack: %s reason=%s ticket=%s",
                a->send ? "send" : "no", a->reason, a->ticket[0] ? a->ticket : "-");
}

/* One decision in its own transaction. Takes U->orders. */
static candor_status_t ack_one(struct candor_ack **out, const struct candor_ctx *ctx,
                               struct candor_store *store, const struct candor_message *msg,
                               const candor_envelope_t *e, struct understood *u)
{
    struct candor_ack *a = calloc(1, sizeof *a);
    if (!a) {
        free(u->orders);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    candor_status_t st = candor__store_begin(store);
    if (st == CANDOR_OK) {
        st = ack_locked(a, ctx, store, msg, e, u, e->now);
        if (st == CANDOR_OK)
            st = candor__store_commit(store);
        else
            candor__store_rollback(store);
    }
    free(u->orders);
    u->orders = NULL;
    if (st != CANDOR_OK) {
        candor_ack_free(a);
        return st;
    }
    ack_logged(ctx, a);
    *out = a;
    return CANDOR_OK;
}

candor_status_t candor_ack(struct candor_ack **out, const struct candor_ctx *ctx,
                           struct candor_store *store, const struct candor_message *msg,
                           const candor_envelope_t *env)
{
    if (out)
        *out = NULL;
    candor_envelope_t e;
    candor_status_t st = out ? ack_args(ctx, store, msg, env, &e)
                             : candor__fail(CANDOR_EINVAL, "ack: no output, ctx, store or message");
    if (st != CANDOR_OK)
        return st;
    struct understood u;
    understand(ctx, msg, &e, &u);   /* outside the lock: triage is the slow part */
    return ack_one(out, ctx, store, msg, &e, &u);
}

candor_status_t candor_ack_with_result(struct candor_ack **out, const struct candor_ctx *ctx,
                                       struct candor_store *store,
                                       const struct candor_message *msg,
                                       const struct candor_result *result,
                                       const candor_envelope_t *env)
{
    if (out)
        *out = NULL;
    if (!result)
        return candor__fail(CANDOR_EINVAL, "ack: no triage result");
    candor_envelope_t e;
    candor_status_t st = out ? ack_args(ctx, store, msg, env, &e)
                             : candor__fail(CANDOR_EINVAL, "ack: no output, ctx, store or message");
    if (st != CANDOR_OK)
        return st;
    struct understood u;
    understand_result(result, &u);
    return ack_one(out, ctx, store, msg, &e, &u);
}

candor_status_t candor_ack_batch(struct candor_ack **outs, candor_status_t *statuses,
                                 const struct candor_ctx *ctx, struct candor_store *store,
                                 const struct candor_message *const *msgs,
                                 const struct candor_result *const *results,
                                 const candor_envelope_t *const *envs, size_t n)
{
    if (!outs || !statuses || (n && (!msgs || !results)))
        return candor__fail(CANDOR_EINVAL, "ack_batch: no outputs, messages or results");
    for (size_t i = 0; i < n; i++) {
        outs[i] = NULL;
        statuses[i] = CANDOR_ERROR;
    }
    if (n == 0)
        return CANDOR_OK;
    candor_envelope_t *es = calloc(n, sizeof *es);
    struct understood *us = calloc(n, sizeof *us);
    bool *valid = calloc(n, sizeof *valid);
    if (!es || !us || !valid) {
        free(es);
        free(us);
        free(valid);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    size_t n_valid = 0;
    for (size_t i = 0; i < n; i++) {
        statuses[i] = !results[i] ? candor__fail(CANDOR_EINVAL, "ack: no triage result")
                                  : ack_args(ctx, store, msgs[i], envs ? envs[i] : NULL, &es[i]);
        if (statuses[i] == CANDOR_OK) {
            understand_result(results[i], &us[i]);
            valid[i] = true;
            n_valid++;
        }
    }
    /* all decisions in one transaction, in order: a later item sees the
     * earlier ones (same sender, same thread), as if they came one by one.
     * Inside the caller's group (candor_store_begin) always so, and a
     * failure is every item's: the group is gone, one by one would commit
     * decisions the caller is told were not kept */
    bool outer = candor__store_in_group(store);
    bool together = n_valid > 1 || (outer && n_valid > 0);
    if (together) {
        candor_status_t st = candor__store_begin(store);
        if (st != CANDOR_OK) {   /* busy past the timeout: one by one would wait n times */
            for (size_t i = 0; i < n; i++) {
                if (valid[i]) {
                    statuses[i] = st;
                    free(us[i].orders);
                    valid[i] = false;
                }
            }
            together = false;
        }
        for (size_t i = 0; st == CANDOR_OK && i < n; i++) {
            if (!valid[i])
                continue;
            outs[i] = calloc(1, sizeof *outs[i]);
            st = outs[i] ? ack_locked(outs[i], ctx, store, msgs[i], &es[i], &us[i], es[i].now)
                         : candor__fail(CANDOR_ENOMEM, "out of memory");
        }
        if (st == CANDOR_OK)
            st = candor__store_commit(store);
        else
            candor__store_rollback(store);
        if (st != CANDOR_OK) {   /* nothing of it was kept: each one alone below */
            for (size_t i = 0; i < n; i++) {
                candor_ack_free(outs[i]);
                outs[i] = NULL;
                if (outer && valid[i]) {
                    statuses[i] = st;
                    free(us[i].orders);
                    valid[i] = false;
                }
            }
            together = false;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!valid[i])
            continue;
        if (together) {
            ack_logged(ctx, outs[i]);
            free(us[i].orders);
            statuses[i] = CANDOR_OK;
        } else {
            statuses[i] = ack_one(&outs[i], ctx, store, msgs[i], &es[i], &us[i]);
        }
    }
    free(es);
    free(us);
    free(valid);
    return CANDOR_OK;
}

/* ---- record-reply ---- */

static candor_status_t find_ticket_by_recipient(struct candor_store *store, const char *rcpt,
                                                int64_t sent, int64_t *ticket)
{
    *ticket = 0;
    struct candor_stmt *q;
    candor_status_t st = candor__store_prepare(store, "tickets",
        "SELECT t.id FROM tickets t WHERE t.sender = ?1 AND t.created <= ?2 "
        "ORDER BY EXISTS(SELECT 1 FROM first_replies f WHERE f.ticket = t.id), "
        "t.created DESC, t.id DESC LIMIT 1", &q);
    if (st != CANDOR_OK)
        return st;
    candor__stmt_bind_text(q, 1, rcpt);
    candor__stmt_bind_int64(q, 2, sent);
    int rc = candor__stmt_step(q);
    if (rc == CANDOR_DB_ROW)
        *ticket = candor__stmt_int64(q, 0);
    else if (rc != CANDOR_DB_DONE)
        st = (candor_status_t)rc;
    candor__stmt_free(q);
    return st;
}

static candor_status_t record_locked(const struct candor_ctx *ctx, struct candor_store *store,
                                     const struct candor_message *reply, int64_t now,
                                     json_object *o)
{
    int64_t sent = reply->has_date && reply->date <= now && reply->date > 0 ? reply->date : now;
    char *rcpt = NULL;
    for (size_t i = 0; i < reply->to.n && !rcpt; i++)
        if (reply->to.v[i].address && *reply->to.v[i].address)
            rcpt = candor__addr_normalize(reply->to.v[i].address);
    const char *ids[64];
    size_t n = 0;
    if (reply->in_reply_to && *reply->in_reply_to)
        ids[n++] = reply->in_reply_to;
    for (size_t i = reply->references.n; i > 0 && n < 63; i--)
        ids[n++] = reply->references.v[i - 1];
    if (reply->message_id && *reply->message_id && n < 64)
        ids[n++] = reply->message_id;
    int64_t ticket = 0;
    bool acked;
    candor_status_t st = candor__store_thread_find(store, ids, n, &ticket, &acked);
    if (st == CANDOR_OK && !ticket && rcpt)
        st = find_ticket_by_recipient(store, rcpt, sent, &ticket);
    bool first = false;
    int kept = -1;
    if (st == CANDOR_OK && ticket) {
        struct candor_stmt *q;
        st = candor__store_prepare(store, "ticket",
            "SELECT t.created, t.intent, "
            " EXISTS(SELECT 1 FROM first_replies f WHERE f.ticket = t.id), "
            " (SELECT due FROM promises p WHERE p.ticket = t.id) "
            "FROM tickets t WHERE t.id = ?1", &q);
        int64_t created = 0, due = 0;
        bool has_due = false;
        char *intent = NULL;
        if (st == CANDOR_OK) {
            candor__stmt_bind_int64(q, 1, ticket);
            int rc = candor__stmt_step(q);
            if (rc == CANDOR_DB_ROW) {
                created = candor__stmt_int64(q, 0);
                intent = candor__strdup(candor__stmt_text(q, 1));
                first = candor__stmt_int64(q, 2) == 0;
                has_due = !candor__stmt_null(q, 3);
                due = candor__stmt_int64(q, 3);
            } else if (rc != CANDOR_DB_DONE) {
                st = (candor_status_t)rc;
            }
            candor__stmt_free(q);
        }
        if (st == CANDOR_OK && first) {
            int64_t wait = sent > created ? sent - created : 0;
            int64_t bwait = candor__eta_business_seconds(ctx, created, sent);
            if (has_due)
                kept = sent <= due;
            st = candor__store_prepare(store, "first reply",
                "INSERT INTO first_replies(ticket, intent, replied, wait, business_wait, kept) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &q);
            if (st == CANDOR_OK) {
                candor__stmt_bind_int64(q, 1, ticket);
                candor__stmt_bind_text(q, 2, intent ? intent : "general_question");
                candor__stmt_bind_int64(q, 3, sent);
                candor__stmt_bind_int64(q, 4, wait);
                candor__stmt_bind_int64(q, 5, bwait);
                if (kept >= 0)
                    candor__stmt_bind_int64(q, 6, kept);
                else
                    candor__stmt_bind_null(q, 6);
                st = run_free(q);
            }
        }
        free(intent);
        if (st == CANDOR_OK)
            st = add_thread_id(store, reply->message_id, ticket, now);
    }
    if (st == CANDOR_OK) {
        struct candor_stmt *q;
        st = candor__store_prepare(store, "reply",
            "INSERT INTO replies(ticket, sent, recipient, message_id) VALUES (?1, ?2, ?3, ?4)", &q);
        if (st == CANDOR_OK) {
            if (ticket)
                candor__stmt_bind_int64(q, 1, ticket);
            else
                candor__stmt_bind_null(q, 1);
            candor__stmt_bind_int64(q, 2, sent);
            candor__stmt_bind_text(q, 3, rcpt);
            candor__stmt_bind_text(q, 4, reply->message_id);
            st = run_free(q);
        }
    }
    if (st == CANDOR_OK)
        st = candor__canned_record(ctx, store, reply, rcpt, sent);
    if (st == CANDOR_OK) {
        char ref[32];
        candor__ticket_format(ref, sizeof ref, ticket);
        json_object_object_add(o, "ticket", ticket ? json_object_new_string(ref) : NULL);
        json_object_object_add(o, "first_response", json_object_new_boolean(first));
        json_object_object_add(o, "promise_kept", kept >= 0 ? json_object_new_boolean(kept) : NULL);
    }
    free(rcpt);
    return st;
}

candor_status_t candor_record_reply(const struct candor_ctx *ctx, struct candor_store *store,
                                    const struct candor_message *reply, int64_t now, char **json)
{
    if (json)
        *json = NULL;
    if (!ctx || !store || !reply || !json)
        return candor__fail(CANDOR_EINVAL, "record_reply: no ctx, store, reply or output");
    if (candor__store_readonly(store))
        return candor__fail(CANDOR_EINVAL, "record_reply: the state is open read-only");
    now = candor__now(now);
    json_object *o = json_object_new_object();
    if (!o)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    candor_status_t st = candor__store_begin(store);
    if (st == CANDOR_OK) {
        st = record_locked(ctx, store, reply, now, o);
        if (st == CANDOR_OK)
            st = candor__store_commit(store);
        else
            candor__store_rollback(store);
    }
    if (st == CANDOR_OK) {
        *json = json_dump(o);
        if (!*json)
            st = candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    json_object_put(o);
    return st;
}

/* ---- stats ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static json_object *quantile_json(int64_t *v, size_t n, double q)
{
    if (!n)
        return NULL;
    size_t rank = (size_t)((q * (double)n) + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    if (q == 0.5 && n % 2 == 0)
        return json_object_new_int64((v[n / 2 - 1] + v[n / 2]) / 2);
    return json_object_new_int64(v[rank - 1]);
}

static candor_status_t count(struct candor_store *store, const char *sql, const char *intent,
                             int64_t now, int64_t *out)
{
    struct candor_stmt *q;
    candor_status_t st = candor__store_prepare(store, "stats", sql, &q);
    if (st != CANDOR_OK)
        return st;
    candor__stmt_bind_text(q, 1, intent);   /* NULL: all intents */
    candor__stmt_bind_int64(q, 2, now);
    int rc = candor__stmt_step(q);
    *out = rc == CANDOR_DB_ROW ? candor__stmt_int64(q, 0) : 0;
    if (rc != CANDOR_DB_ROW)
        st = rc == CANDOR_DB_DONE ? candor__fail(CANDOR_EIO, "store: stats: no row")
                                  : (candor_status_t)rc;
    candor__stmt_free(q);
    return st;
}

static candor_status_t column(struct candor_store *store, const char *sql, const char *intent,
                              int64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct candor_stmt *q;
    candor_status_t st = candor__store_prepare(store, "stats", sql, &q);
    if (st != CANDOR_OK)
        return st;
    candor__stmt_bind_text(q, 1, intent);   /* NULL: all intents */
    size_t cap = 0;
    int rc;
    while ((rc = candor__stmt_step(q)) == CANDOR_DB_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            int64_t *nv = realloc(*out, cap * sizeof **out);
            if (!nv) {
                st = candor__fail(CANDOR_ENOMEM, "out of memory");
                break;
            }
            *out = nv;
        }
        (*out)[(*n)++] = candor__stmt_int64(q, 0);
    }
    if (st == CANDOR_OK && rc != CANDOR_DB_DONE)
        st = (candor_status_t)rc;
    candor__stmt_free(q);
    if (st == CANDOR_OK && *n)
        qsort(*out, *n, sizeof **out, cmp_i64);
    return st;
}

#define WHERE_INTENT "(CAST(?1 AS TEXT) IS NULL OR intent = ?1)"

static candor_status_t stats_group(struct candor_store *store, const char *intent, int64_t now,
                                   json_object *o)
{
    int64_t tickets, acked, replies, kept, late, overdue, promises;
    candor_status_t st;
    if ((st = count(store, "SELECT count(*) FROM tickets WHERE " WHERE_INTENT " AND ?2 = ?2",
                    intent, now, &tickets)) ||
        (st = count(store, "SELECT count(*) FROM acks a JOIN tickets t ON t.id = a.ticket "
                    "WHERE (CAST(?1 AS TEXT) IS NULL OR t.intent = ?1) AND ?2 = ?2", intent, now, &acked)) ||
        (st = count(store, "SELECT count(*) FROM first_replies WHERE " WHERE_INTENT " AND ?2 = ?2",
                    intent, now, &replies)) ||
        (st = count(store, "SELECT count(*) FROM promises WHERE " WHERE_INTENT " AND ?2 = ?2",
                    intent, now, &promises)) ||
        (st = count(store, "SELECT count(*) FROM first_replies WHERE " WHERE_INTENT
                    " AND kept = 1 AND ?2 = ?2", intent, now, &kept)) ||
        (st = count(store, "SELECT count(*) FROM first_replies WHERE " WHERE_INTENT
                    " AND kept = 0 AND ?2 = ?2", intent, now, &late)) ||
        (st = count(store, "SELECT count(*) FROM promises p WHERE (CAST(?1 AS TEXT) IS NULL OR p.intent = ?1) "
                    "AND p.due < ?2 AND NOT EXISTS (SELECT 1 FROM first_replies f "
                    "WHERE f.ticket = p.ticket)", intent, now, &overdue)))
        return st;
    int64_t *wait = NULL, *bwait = NULL, *promised = NULL;
    size_t nw = 0, nb = 0, np = 0;
    if ((st = column(store, "SELECT wait FROM first_replies WHERE " WHERE_INTENT, intent, &wait, &nw)) ||
        (st = column(store, "SELECT business_wait FROM first_replies WHERE " WHERE_INTENT,
                     intent, &bwait, &nb)) ||
        (st = column(store, "SELECT due - made FROM promises WHERE " WHERE_INTENT,
                     intent, &promised, &np))) {
        free(wait);
        free(bwait);
        free(promised);
        return st;
    }
    json_object_object_add(o, "tickets", json_object_new_int64(tickets));
    json_object_object_add(o, "acknowledged", json_object_new_int64(acked));
    json_object_object_add(o, "first_replies", json_object_new_int64(replies));
    json_object_object_add(o, "median_first_reply_seconds", quantile_json(wait, nw, 0.5));
    json_object_object_add(o, "p90_first_reply_seconds", quantile_json(wait, nw, 0.9));
    json_object_object_add(o, "median_first_reply_business_seconds", quantile_json(bwait, nb, 0.5));
    json_object_object_add(o, "p90_first_reply_business_seconds", quantile_json(bwait, nb, 0.9));
    json_object_object_add(o, "promises", json_object_new_int64(promises));
    json_object_object_add(o, "median_promised_seconds", quantile_json(promised, np, 0.5));
    json_object_object_add(o, "promises_kept", json_object_new_int64(kept));
    json_object_object_add(o, "promises_broken", json_object_new_int64(late + overdue));
    int64_t judged = kept + late + overdue;
    json_object_object_add(o, "promises_kept_share",
                           judged ? json_object_new_double((double)kept / (double)judged) : NULL);
    free(wait);
    free(bwait);
    free(promised);
    return CANDOR_OK;
}

candor_status_t candor_stats_json(const struct candor_ctx *ctx, struct candor_store *store,
                                  int64_t now, char **json)
{
    if (json)
        *json = NULL;
    if (!ctx || !store || !json)
        return candor__fail(CANDOR_EINVAL, "stats: no ctx, store or output");
    now = candor__now(now);
    json_object *root = json_object_new_object(), *by = json_object_new_object(),
                *all = json_object_new_object();
    if (!root || !by || !all) {
        json_object_put(root);
        json_object_put(by);
        json_object_put(all);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    char t[32];
    candor_time_format(t, sizeof t, now);
    json_object_object_add(root, "now", json_object_new_string(t));
    candor_status_t st = candor__store_begin(store);   /* one consistent snapshot */
    if (st == CANDOR_OK)
        st = stats_group(store, NULL, now, all);
    for (size_t i = 0; st == CANDOR_OK && i < N_INTENTS; i++) {
        json_object *g = json_object_new_object();
        if (!g) {
            st = candor__fail(CANDOR_ENOMEM, "out of memory");
            break;
        }
        json_object_object_add(by, intents[i], g);
        st = stats_group(store, intents[i], now, g);
    }
    if (st == CANDOR_OK)
        st = candor__store_commit(store);
    else
        candor__store_rollback(store);
    json_object_object_add(root, "overall", all);
    json_object_object_add(root, "intents", by);
    if (st == CANDOR_OK) {
        *json = json_dump(root);
        if (!*json)
            st = candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    json_object_put(root);
    return st;
}
