/* eta.c — STUB: to be written (issue 4). */
#include "ctx.h"
candor_status_t candor__eta_load(struct candor_ctx *ctx, struct _xmlNode *section) { (void)ctx; (void)section; return CANDOR_OK; }
void candor__eta_conf_free(struct candor_eta_conf *conf) { (void)conf; }
