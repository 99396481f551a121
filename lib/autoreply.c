/* autoreply.c — STUB: to be written (issue 4). */
#include "ctx.h"
candor_status_t candor__autoreply_load(struct candor_ctx *ctx, struct _xmlNode *section) { (void)ctx; (void)section; return CANDOR_OK; }
void candor__autoreply_conf_free(struct candor_autoreply_conf *conf) { (void)conf; }
#include "autoreply.h"
const char *candor__autoreply_decide(const struct candor_ctx *ctx, const struct candor_message *msg,
        struct candor_store *store, const candor_envelope_t *env, char **recipient)
{ (void)ctx; (void)msg; (void)store; (void)env; if (recipient) *recipient = NULL; return "no_sender"; }
