/* store.c — STUB: to be written (issue 4). */
#include <stdlib.h>
#include "ctx.h"
candor_status_t candor_store_open(struct candor_store **out, const struct candor_ctx *ctx, const char *path, unsigned int flags)
{ (void)ctx; (void)path; (void)flags; *out = NULL; return candor__fail(CANDOR_ERROR, "store: not implemented"); }
void candor_store_free(struct candor_store *store) { (void)store; }
candor_status_t candor_store_ack_sent(struct candor_store *store, const char *ticket, int64_t now) { (void)store; (void)ticket; (void)now; return CANDOR_ERROR; }
candor_status_t candor_store_pending_acks(struct candor_store *store, char **json) { (void)store; *json = NULL; return CANDOR_ERROR; }
#include "store.h"
struct sqlite3 *candor__store_sqlite(struct candor_store *store) { (void)store; return NULL; }
bool candor__store_readonly(const struct candor_store *store) { (void)store; return true; }
candor_status_t candor__store_begin(struct candor_store *store) { (void)store; return CANDOR_ERROR; }
candor_status_t candor__store_commit(struct candor_store *store) { (void)store; return CANDOR_ERROR; }
void candor__store_rollback(struct candor_store *store) { (void)store; }
