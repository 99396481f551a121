/* ack.c — STUB: to be written (issue 4). */
#include "ctx.h"
candor_status_t candor__ack_load(struct candor_ctx *ctx, struct _xmlNode *section) { (void)ctx; (void)section; return CANDOR_OK; }
void candor__ack_conf_free(struct candor_ack_conf *conf) { (void)conf; }
candor_status_t candor_ack(struct candor_ack **out, const struct candor_ctx *ctx, struct candor_store *store,
        const struct candor_message *msg, const candor_envelope_t *env)
{ (void)ctx; (void)store; (void)msg; (void)env; *out = NULL; return candor__fail(CANDOR_ERROR, "ack: not implemented"); }
void candor_ack_free(struct candor_ack *ack) { (void)ack; }
int candor_ack_send(const struct candor_ack *ack) { (void)ack; return 0; }
const char *candor_ack_reason(const struct candor_ack *ack) { (void)ack; return NULL; }
const char *candor_ack_ticket(const struct candor_ack *ack) { (void)ack; return NULL; }
const char *candor_ack_message(const struct candor_ack *ack) { (void)ack; return NULL; }
const char *candor_ack_recipient(const struct candor_ack *ack) { (void)ack; return NULL; }
candor_status_t candor_ack_to_json(const struct candor_ack *ack, char **json) { (void)ack; *json = NULL; return CANDOR_ERROR; }
candor_status_t candor_record_reply(const struct candor_ctx *ctx, struct candor_store *store, const struct candor_message *reply, int64_t now, char **json)
{ (void)ctx; (void)store; (void)reply; (void)now; *json = NULL; return candor__fail(CANDOR_ERROR, "record-reply: not implemented"); }
candor_status_t candor_stats_json(const struct candor_ctx *ctx, struct candor_store *store, int64_t now, char **json)
{ (void)ctx; (void)store; (void)now; *json = NULL; return candor__fail(CANDOR_ERROR, "stats: not implemented"); }
