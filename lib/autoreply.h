/* autoreply.h — the RFC 3834 auto-reply decision (autoreply.c, issue 4).
 * Used by triage.c (the "autoreply" member) and ack.c. */
#ifndef CANDOR_AUTOREPLY_H
#define CANDOR_AUTOREPLY_H
#include "internal.h"

struct candor_message;
struct candor_store;

/* Decide whether MSG may get an automatic acknowledgement. Returns the
 * reason, a static string from CONTRACT.md's list ("ok" means send).
 * STORE may be NULL: then already_acknowledged and rate_limited are not
 * checked. ENV may be NULL. When RECIPIENT is not NULL, *RECIPIENT gets
 * the address the acknowledgement would go to (new string, free()), or
 * NULL for the null sender. On a store failure it returns NULL with the
 * error set (CANDOR_ETEMPFAIL when busy), so that callers can answer
 * 451 / exit 75 instead of guessing. */
CANDOR_HIDDEN const char *candor__autoreply_decide(const struct candor_ctx *ctx,
        const struct candor_message *msg, struct candor_store *store,
        const candor_envelope_t *env, char **recipient);

/* The same with the status returned: CANDOR_OK and *REASON set, or the
 * store's failure. */
CANDOR_HIDDEN candor_status_t candor__autoreply_decide_status(const struct candor_ctx *ctx,
        const struct candor_message *msg, struct candor_store *store,
        const candor_envelope_t *env, char **recipient, const char **reason);

/* The rate-limit window in seconds (config <autoreply><rate-limit>). */
CANDOR_HIDDEN int64_t candor__autoreply_window(const struct candor_ctx *ctx);
/* The envelope sender as given (ENV, else Return-Path, Sender, From);
 * *IS_NULL when it is the null sender or missing. Borrowed. */
CANDOR_HIDDEN const char *candor__autoreply_sender(const struct candor_message *msg,
        const candor_envelope_t *env, bool *is_null);
/* The ids that tie MSG to a thread: its own Message-ID, In-Reply-To and
 * References (both ends first), at most MAX. Borrowed from MSG. */
CANDOR_HIDDEN size_t candor__autoreply_thread_ids(const struct candor_message *msg,
        const char **ids, size_t max);
#endif
