/* rules.c — STUB: to be written (issue 3). */
#include "ctx.h"
candor_status_t candor__rules_load(struct candor_ctx *ctx, struct _xmlNode *section) { (void)ctx; (void)section; return CANDOR_OK; }
void candor__rules_free(struct candor_rules *rules) { (void)rules; }
