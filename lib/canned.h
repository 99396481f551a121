/* canned.h — the canned-reply module's entry points for other modules
 * (canned.c, issue 5). */
#ifndef CANDOR_CANNED_H
#define CANDOR_CANNED_H
#include "internal.h"

struct candor_message;
struct candor_store;

/* Add REPLY, sent at SENT_AT to RECIPIENT (normalised address), to the
 * history used by template_reuse and repeat_send (fingerprints of its own
 * paragraphs). Called by candor_record_reply() inside its transaction. */
CANDOR_HIDDEN candor_status_t candor__canned_record(const struct candor_ctx *ctx,
        struct candor_store *store, const struct candor_message *reply,
        const char *recipient, int64_t sent_at);
#endif
