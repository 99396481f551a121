/*
 * autoreply.c — may this message get an automatic acknowledgement?
 *
 * Inputs: the parsed message (message.h), the envelope (CLI/LMTP, else the
 * message's Return-Path/Sender/From and topmost Delivered-To), the ctx's
 * own addresses and trusted authserv-id, and (optionally) the state store
 * for the thread and per-sender limits. Output: one reason of CONTRACT.md,
 * checked in exactly this order, the first that applies wins:
 *
 *   1 no_sender        null/missing/unusable envelope sender (RFC 3834 2, RFC 5321 4.5.5)
 *   2 loop             sender or From is ours; X-Loop ours or "yes"; one of
 *                      our addresses in Delivered-To more than once
 *   3 auto_submitted   Auto-Submitted other than "no" (RFC 3834 5: case,
 *                      comments, parameters); X-Auto-Response-Suppress All,
 *                      OOF or AutoReply; X-Autoreply, X-Autorespond(er);
 *                      multipart/report (RFC 6522) or a bare DSN/MDN;
 *                      an out-of-office subject on a reply
 *   4 precedence       Precedence bulk, junk, list, auto_reply
 *   5 mailing_list     any List-* field (RFC 2369/2919), ezmlm Mailing-List
 *   6 system_sender    MAILER-DAEMON, LISTSERV, majordomo, postmaster,
 *                      owner-*, *-request, noreply and its spellings
 *   7 spoofed          Authentication-Results (RFC 8601) from the trusted
 *                      authserv-id only, saying dmarc=fail
 *   8 suspected_spam   X-Spam-Flag / X-Spam-Status / X-Spam: yes
 *   9 not_addressed_to_us  none of our addresses among the parsed To, Cc,
 *                      Bcc, Resent-To/Cc/Bcc (addresses, never substrings)
 *  10 already_acknowledged  the message id, In-Reply-To or References reach
 *                      a thread whose ticket was acknowledged — automatically
 *                      or by a person's reply (no time limit)
 *  11 rate_limited     the sender got N acknowledgements within the window
 *  12 ok
 *
 * "Sent" for the rate limit: an acknowledgement counts from the moment the
 * decision allowed it (send=true) and it was composed and recorded in the
 * store's outbox — pending or already handed to sendmail. Decisions with
 * send=false (robots, lists, rate-limited or already acknowledged mail)
 * never start or extend the window. A pending acknowledgement counts
 * because it is on its way: the outbox (candor_store_pending_acks) keeps
 * it until it is handed over.
 *
 * Hostile input: every header is bounded by the parser's limits; the scans
 * here are linear, and comment nesting is capped.
 */
#include <stdlib.h>
#include <string.h>
#include <libxml/tree.h>
#include "ctx.h"
#include "message.h"
#include "autoreply.h"
#include "store.h"

#define DEFAULT_WINDOW (24 * 3600)
#define MAX_IDS 64          /* ids of References checked against the store */
#define MAX_HEADER_SCAN 64  /* instances of one field examined */

struct candor_autoreply_conf {
    int64_t window;        /* seconds */
    int64_t per_sender;    /* acknowledgements allowed per window */
};

candor_status_t candor__autoreply_load(struct candor_ctx *ctx, xmlNodePtr section)
{
    struct candor_autoreply_conf *c = calloc(1, sizeof *c);
    if (!c)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    ctx->autoreply = c;
    c->window = DEFAULT_WINDOW;
    c->per_sender = 1;
    xmlNodePtr rl = candor__config_child(section, "rate-limit");
    if (rl) {
        double hours, n;
        if (!candor__config_attr_double(rl, "window-hours", 24, &hours, ctx->config_path) ||
            !candor__config_attr_double(rl, "per-sender", 1, &n, ctx->config_path))
            return CANDOR_ECONFIG;
        if (hours < 0 || hours > 24 * 3660)
            return candor__config_fail(ctx->config_path, rl, "window-hours out of range");
        if (n < 1 || n > 1000)
            return candor__config_fail(ctx->config_path, rl, "per-sender must be 1..1000");
        c->window = (int64_t)(hours * 3600);
        c->per_sender = (int64_t)n;
    }
    return CANDOR_OK;
}

void candor__autoreply_conf_free(struct candor_autoreply_conf *conf)
{
    free(conf);
}

int64_t candor__autoreply_window(const struct candor_ctx *ctx)
{
    return ctx && ctx->autoreply ? ctx->autoreply->window : DEFAULT_WINDOW;
}

/* ---- small parsing helpers ---- */

/* Copy VALUE without RFC 5322 comments and with white space collapsed to
 * single spaces, trimmed. New string (NULL on OOM). */
static char *strip_cfws(const char *value)
{
    struct candor_buf b = CANDOR_BUF_INIT;
    int depth = 0;
    bool quoted = false, space = false;
    for (const char *p = value; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\\' && (depth > 0 || quoted) && p[1]) {
            p++;
            if (depth == 0)
                candor__buf_putc(&b, p[0]);
            continue;
        }
        if (!quoted && c == '(') {
            if (depth < 64)
                depth++;
            continue;
        }
        if (!quoted && c == ')' && depth > 0) {
            depth--;
            continue;
        }
        if (depth > 0)
            continue;
        if (c == '"') {
            quoted = !quoted;
            continue;
        }
        if (candor__is_space(c)) {
            space = b.len > 0;
            continue;
        }
        if (space) {
            candor__buf_putc(&b, ' ');
            space = false;
        }
        candor__buf_putc(&b, (char)c);
    }
    if (b.oom) {
        candor__buf_free(&b);
        return NULL;
    }
    return candor__buf_steal(&b);
}

/* The first token of a structured value (before ';', ',' or space),
 * lower-cased, comments removed. New string or NULL on OOM. */
static char *first_token(const char *value)
{
    char *s = strip_cfws(value);
    if (!s)
        return NULL;
    size_t i = 0;
    while (s[i] && s[i] != ';' && s[i] != ',' && s[i] != ' ')
        i++;
    s[i] = '\0';
    for (char *p = s; *p; p++)
        *p = (char)candor__lower((unsigned char)*p);
    return s;
}

static bool is_ours(const struct candor_ctx *ctx, const char *addr)
{
    if (!addr || !*addr)
        return false;
    char *n = candor__addr_normalize(addr);
    if (!n)
        return false;
    bool r = false;
    for (size_t i = 0; i < ctx->addresses.n && !r; i++)
        r = strcmp(ctx->addresses.v[i], n) == 0;
    free(n);
    return r;
}

static bool list_has_ours(const struct candor_ctx *ctx, const struct candor_addrlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (is_ours(ctx, l->v[i].address))
            return true;
    return false;
}

/* An address we can write to: local@domain, no white space, no controls,
 * no characters that would break an address or a command line. */
static bool usable_address(const char *a)
{
    if (!a || !*a)
        return false;
    const char *at = strrchr(a, '@');
    if (!at || at == a || !at[1] || a[0] == '-')   /* "-oQ...": never an option to sendmail */
        return false;
    for (const char *p = a; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == '(' || c == ')' ||
            c == ',' || c == ';' || c == ':' || c == '\\' || c == '"' || c == '[' || c == ']')
            return false;
    }
    return strlen(a) <= 320;
}

/* ---- the individual checks ---- */

static bool check_loop(const struct candor_ctx *ctx, const struct candor_message *msg,
                       const char *sender)
{
    if (is_ours(ctx, sender) || is_ours(ctx, msg->from.address))
        return true;
    for (size_t i = 0; i < MAX_HEADER_SCAN; i++) {
        const char *v = candor__message_header(msg, "X-Loop", i);
        if (!v)
            break;
        char *s = strip_cfws(v);
        if (!s)
            continue;
        bool hit = candor__strcasecmp(s, "yes") == 0 || is_ours(ctx, s);
        free(s);
        if (hit)
            return true;
    }
    /* the same one of our addresses in Delivered-To twice: the message
     * went round (RFC 3834 2, Postfix's own Delivered-To loop check) */
    size_t n = msg->delivered_to.n < 256 ? msg->delivered_to.n : 256;
    for (size_t i = 0; i < n; i++) {
        if (!is_ours(ctx, msg->delivered_to.v[i]))
            continue;
        char *a = candor__addr_normalize(msg->delivered_to.v[i]);
        for (size_t j = i + 1; a && j < n; j++) {
            char *b = candor__addr_normalize(msg->delivered_to.v[j]);
            bool same = b && strcmp(a, b) == 0;
            free(b);
            if (same) {
                free(a);
                return true;
            }
        }
        free(a);
    }
    return false;
}

static bool has_header(const struct candor_message *msg, const char *name)
{
    return candor__message_header(msg, name, 0) != NULL;
}

/* Subjects of out-of-office and other automatic replies, lower-case,
 * matched anywhere in the (case-folded ASCII) subject. */
static const char *const oof_subjects[] = {
    "out of office", "out of the office", "out-of-office", "automatic reply",
    "auto reply", "auto-reply", "autoreply", "auto response", "autoresponse",
    "away from the office", "away from office", "vacation reply",
    "abwesenheitsnotiz", "automatische antwort", "nicht im b\xc3\xbc" "ro",
    "absence du bureau", "absent du bureau", "r\xc3\xa9ponse automatique",
    "reponse automatique", "respuesta autom\xc3\xa1tica", "respuesta automatica",
    "fuera de la oficina", "fuera de oficina",
    NULL
};

static bool oof_subject(const char *subject)
{
    if (!subject)
        return false;
    for (const char *const *p = oof_subjects; *p; p++)
        if (candor__strcasestr(subject, *p))
            return true;
    /* "Automatic reply:" and Outlook's "Auto:" prefix on a reply to us */
    return candor__strncasecmp(subject, "auto:", 5) == 0;
}

static bool check_auto_submitted(const struct candor_message *msg)
{
    const char *as = msg->auto_submitted ? msg->auto_submitted
                                         : candor__message_header(msg, "Auto-Submitted", 0);
    if (as) {
        char *t = first_token(as);
        bool no = t && strcmp(t, "no") == 0;
        free(t);
        if (!no)
            return true;
    }
    for (size_t i = 0; i < MAX_HEADER_SCAN; i++) {
        const char *v = candor__message_header(msg, "X-Auto-Response-Suppress", i);
        if (!v)
            break;
        char *s = strip_cfws(v);
        if (!s)
            continue;
        bool hit = false;
        for (char *tok = s; tok && *tok && !hit;) {
            char *end = tok + strcspn(tok, ",; ");
            char save = *end;
            *end = '\0';
            hit = candor__strcasecmp(tok, "all") == 0 || candor__strcasecmp(tok, "oof") == 0 ||
                  candor__strcasecmp(tok, "autoreply") == 0;
            tok = save ? end + 1 : NULL;
        }
        free(s);
        if (hit)
            return true;
    }
    if (has_header(msg, "X-Autoreply") || has_header(msg, "X-Autorespond") ||
        has_header(msg, "X-Autoresponder") || has_header(msg, "X-AutoReply-From") ||
        has_header(msg, "X-Mail-Autoreply"))
        return true;
    if (msg->content_type && (strcmp(msg->content_type, "multipart/report") == 0 ||
                              strcmp(msg->content_type, "message/delivery-status") == 0 ||
                              strcmp(msg->content_type, "message/disposition-notification") == 0))
        return true;
    bool is_reply = (msg->in_reply_to && *msg->in_reply_to) || msg->references.n > 0;
    return is_reply && oof_subject(msg->subject);
}

static bool check_precedence(const struct candor_message *msg)
{
    for (size_t i = 0; i < MAX_HEADER_SCAN; i++) {
        const char *v = candor__message_header(msg, "Precedence", i);
        if (!v)
            break;
        char *t = first_token(v);
        bool hit = t && (strcmp(t, "bulk") == 0 || strcmp(t, "junk") == 0 ||
                         strcmp(t, "list") == 0 || strcmp(t, "auto_reply") == 0 ||
                         strcmp(t, "auto-reply") == 0);
        free(t);
        if (hit)
            return true;
    }
    return false;
}

static bool check_mailing_list(const struct candor_message *msg)
{
    if (msg->list_id)
        return true;
    for (size_t i = 0; i < msg->n_headers; i++) {
        const char *n = msg->headers[i].name;
        if (!n)
            continue;
        if (candor__strncasecmp(n, "List-", 5) == 0 && n[5])
            return true;
        if (candor__strcasecmp(n, "Mailing-List") == 0)
            return true;
    }
    return false;
}

static bool check_system_sender(const char *sender)
{
    char *n = candor__addr_normalize(sender);
    if (!n)
        return false;
    char *at = strrchr(n, '@');
    if (at)
        *at = '\0';
    /* the local part without separators, for the many noreply spellings */
    char squeezed[128];
    size_t k = 0;
    for (const char *p = n; *p && k + 1 < sizeof squeezed; p++)
        if (*p != '-' && *p != '_' && *p != '.')
            squeezed[k++] = *p;
    squeezed[k] = '\0';
    size_t len = strlen(n);
    bool hit = strcmp(squeezed, "mailerdaemon") == 0 || strcmp(n, "listserv") == 0 ||
               strcmp(n, "majordomo") == 0 || strcmp(n, "postmaster") == 0 ||
               strncmp(n, "owner-", 6) == 0 ||
               (len > 8 && strcmp(n + len - 8, "-request") == 0) ||
               strncmp(squeezed, "noreply", 7) == 0 || strncmp(squeezed, "donotreply", 10) == 0 ||
               strncmp(squeezed, "dontreply", 9) == 0 ||
               (k > 7 && strcmp(squeezed + k - 7, "noreply") == 0) ||
               (k > 10 && strcmp(squeezed + k - 10, "donotreply") == 0);
    free(n);
    return hit;
}

/* dmarc=fail in an Authentication-Results field whose authserv-id is the
 * trusted one (RFC 8601 section 5: results from other ids are ignored). */
static bool check_spoofed(const struct candor_ctx *ctx, const struct candor_message *msg)
{
    if (!ctx->trusted_authserv || !*ctx->trusted_authserv)
        return false;
    for (size_t i = 0; i < MAX_HEADER_SCAN; i++) {
        const char *v = candor__message_header(msg, "Authentication-Results", i);
        if (!v)
            break;
        char *s = strip_cfws(v);
        if (!s)
            continue;
        size_t idlen = strcspn(s, "; ");
        bool trusted = idlen == strlen(ctx->trusted_authserv) &&
                       candor__strncasecmp(s, ctx->trusted_authserv, idlen) == 0;
        bool fail = false;
        for (char *r = strchr(s, ';'); trusted && r && !fail; r = strchr(r + 1, ';')) {
            const char *p = r + 1;
            while (*p == ' ')
                p++;
            if (candor__strncasecmp(p, "dmarc", 5) != 0)
                continue;
            p += 5;
            while (*p == ' ')
                p++;
            if (*p != '=')
                continue;
            p++;
            while (*p == ' ')
                p++;
            fail = candor__strncasecmp(p, "fail", 4) == 0 &&
                   !candor__is_alnum((unsigned char)p[4]);
        }
        free(s);
        if (fail)
            return true;
    }
    return false;
}

static bool yes_value(const char *v)
{
    while (v && candor__is_space((unsigned char)*v))
        v++;
    return v && candor__strncasecmp(v, "yes", 3) == 0 && !candor__is_alnum((unsigned char)v[3]);
}

static bool check_spam(const struct candor_message *msg)
{
    static const char *const names[] = { "X-Spam-Flag", "X-Spam-Status", "X-Spam", NULL };
    for (const char *const *n = names; *n; n++)
        for (size_t i = 0; i < MAX_HEADER_SCAN; i++) {
            const char *v = candor__message_header(msg, *n, i);
            if (!v)
                break;
            if (yes_value(v))
                return true;
        }
    return false;
}

static bool check_addressed(const struct candor_ctx *ctx, const struct candor_message *msg)
{
    if (ctx->addresses.n == 0)
        return true;   /* no identity configured: nothing to compare with */
    return list_has_ours(ctx, &msg->to) || list_has_ours(ctx, &msg->cc) ||
           list_has_ours(ctx, &msg->bcc) || list_has_ours(ctx, &msg->resent_to) ||
           list_has_ours(ctx, &msg->resent_cc) || list_has_ours(ctx, &msg->resent_bcc);
}

const char *candor__autoreply_sender(const struct candor_message *msg,
                                     const candor_envelope_t *env, bool *is_null)
{
    *is_null = false;
    const char *s = NULL;
    if (env && env->sender) {
        s = env->sender;
    } else if (msg->return_path) {
        s = msg->return_path;
    } else if (msg->sender.address) {
        s = msg->sender.address;
    } else {
        s = msg->from.address;
    }
    if (!s) {
        *is_null = true;
        return NULL;
    }
    const char *p = s;
    while (candor__is_space((unsigned char)*p))
        p++;
    if (!*p || strcmp(p, "<>") == 0)
        *is_null = true;
    return s;
}

size_t candor__autoreply_thread_ids(const struct candor_message *msg, const char **ids, size_t max)
{
    size_t n = 0;
    if (msg->message_id && *msg->message_id && n < max)
        ids[n++] = msg->message_id;
    if (msg->in_reply_to && *msg->in_reply_to && n < max)
        ids[n++] = msg->in_reply_to;
    /* the newest references are at the end; the root at the start */
    size_t r = msg->references.n;
    for (size_t i = 0; i < r && n < max; i++) {
        size_t j = i % 2 ? r - 1 - i / 2 : i / 2;   /* alternate ends */
        ids[n++] = msg->references.v[j];
    }
    return n;
}

const char *candor__autoreply_decide(const struct candor_ctx *ctx, const struct candor_message *msg,
                                     struct candor_store *store, const candor_envelope_t *env,
                                     char **recipient)
{
    const char *reason = NULL;
    if (candor__autoreply_decide_status(ctx, msg, store, env, recipient, &reason) != CANDOR_OK)
        return NULL;
    return reason;
}

candor_status_t candor__autoreply_decide_status(const struct candor_ctx *ctx,
        const struct candor_message *msg, struct candor_store *store,
        const candor_envelope_t *env, char **recipient, const char **out)
{
    *out = NULL;
    if (recipient)
        *recipient = NULL;
    if (!ctx || !msg)
        return candor__fail(CANDOR_EINVAL, "autoreply: no ctx or message");
    bool null_sender;
    const char *raw = candor__autoreply_sender(msg, env, &null_sender);
    char *sender = NULL;
    if (!null_sender) {
        /* strip <> and surrounding space; keep the case of the local part */
        const char *s = raw;
        while (candor__is_space((unsigned char)*s) || *s == '<')
            s++;
        size_t len = strlen(s);
        while (len && (candor__is_space((unsigned char)s[len - 1]) || s[len - 1] == '>'))
            len--;
        sender = candor__strndup(s, len);
        if (!sender)
            return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    const char *reason = NULL;
    if (null_sender || !usable_address(sender))
        reason = "no_sender";
    else if (check_loop(ctx, msg, sender))
        reason = "loop";
    else if (check_auto_submitted(msg))
        reason = "auto_submitted";
    else if (check_precedence(msg))
        reason = "precedence";
    else if (check_mailing_list(msg))
        reason = "mailing_list";
    else if (check_system_sender(sender))
        reason = "system_sender";
    else if (check_spoofed(ctx, msg))
        reason = "spoofed";
    else if (check_spam(msg))
        reason = "suspected_spam";
    else if (!check_addressed(ctx, msg))
        reason = "not_addressed_to_us";

    if (!reason && store) {
        const char *ids[MAX_IDS];
        size_t n = candor__autoreply_thread_ids(msg, ids, MAX_IDS);
        int64_t ticket;
        bool acked;
        candor_status_t st = candor__store_thread_find(store, ids, n, &ticket, &acked);
        if (st != CANDOR_OK) {
            free(sender);
            return st;
        }
        if (acked)
            reason = "already_acknowledged";
    }
    if (!reason && store) {
        char *norm = candor__addr_normalize(sender);
        int64_t count = 0;
        int64_t now = candor__now(env ? env->now : 0);
        candor_status_t st = norm ? candor__store_acks_since(store, norm,
                                                             now - candor__autoreply_window(ctx) + 1,
                                                             &count)
                                  : candor__fail(CANDOR_ENOMEM, "out of memory");
        free(norm);
        if (st != CANDOR_OK) {
            free(sender);
            return st;
        }
        if (count >= (ctx->autoreply ? ctx->autoreply->per_sender : 1))
            reason = "rate_limited";
    }
    if (!reason)
        reason = "ok";
    if (recipient)
        *recipient = sender;
    else
        free(sender);
    *out = reason;
    return CANDOR_OK;
}
