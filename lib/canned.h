/* canned.h — the canned-reply module's entry points for other modules
 * (canned.c, issue 5). */
#ifndef CANDOR_CANNED_H
#define CANDOR_CANNED_H
#include "internal.h"

struct candor_message;
struct candor_store;
struct candor_db;

/* Add REPLY, sent at SENT_AT to RECIPIENT (normalised address), to the
 * history used by template_reuse and repeat_send (fingerprints of its own
 * paragraphs). Called by candor_record_reply() inside its transaction. */
CANDOR_HIDDEN candor_status_t candor__canned_record(const struct candor_ctx *ctx,
        struct candor_store *store, const struct candor_message *reply,
        const char *recipient, int64_t sent_at);

/* The same on a bare database handle (store-db.h) whose history tables exist (tests,
 * benchmarks). */
CANDOR_HIDDEN candor_status_t candor__canned_record_db(const struct candor_ctx *ctx,
        struct candor_db *db, const struct candor_message *reply,
        const char *recipient, int64_t sent_at);
/* The same on an open history handle (store.h), to import many replies
 * without preparing the statements again for each. */
struct candor_history;
CANDOR_HIDDEN candor_status_t candor__canned_record_h(const struct candor_ctx *ctx,
        struct candor_history *h, const struct candor_message *reply,
        const char *recipient, int64_t sent_at);
/* candor_check() on a bare database handle (NULL: no history). */
CANDOR_HIDDEN candor_status_t candor__canned_check_db(struct candor_check **out,
        const struct candor_ctx *ctx, struct candor_db *db,
        const struct candor_message *original, const struct candor_message *reply,
        int64_t now);

/* The reply's own text: quotations (">" lines, attributions, Outlook
 * "Original Message" blocks and header blocks) and the "-- " signature
 * removed. New string (free()); NULL on OOM. */
CANDOR_HIDDEN char *candor__canned_own_text(const char *text);

/* Findings of a check, for tests: number of findings, and the kind and
 * detail of the Nth. */
CANDOR_HIDDEN size_t candor__check_findings(const struct candor_check *chk);
CANDOR_HIDDEN const char *candor__check_kind(const struct candor_check *chk, size_t i);
CANDOR_HIDDEN const char *candor__check_detail(const struct candor_check *chk, size_t i);
CANDOR_HIDDEN bool candor__check_has(const struct candor_check *chk, const char *kind);
#endif
