/* store.c — STUB: to be written (issue 4). */
#include <stdlib.h>
#include "ctx.h"
candor_status_t candor_store_open(struct candor_store **out, const struct candor_ctx *ctx, const char *path, unsigned int flags)
{ (void)ctx; (void)path; (void)flags; *out = NULL; return candor__fail(CANDOR_ERROR, "store: not implemented"); }
void candor_store_free(struct candor_store *store) { (void)store; }
candor_status_t candor_store_ack_sent(struct candor_store *store, const char *ticket, int64_t now) { (void)store; (void)ticket; (void)now; return CANDOR_ERROR; }
candor_status_t candor_store_pending_acks(struct candor_store *store, char **json) { (void)store; *json = NULL; return CANDOR_ERROR; }
