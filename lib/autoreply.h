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
#endif
