/* canned.c — STUB: to be written (issue 5). */
#include "ctx.h"
candor_status_t candor__canned_load(struct candor_ctx *ctx, struct _xmlNode *section) { (void)ctx; (void)section; return CANDOR_OK; }
void candor__canned_conf_free(struct candor_canned_conf *conf) { (void)conf; }
candor_status_t candor_check(struct candor_check **out, const struct candor_ctx *ctx, struct candor_store *store,
        const struct candor_message *original, const struct candor_message *reply, int64_t now)
{ (void)ctx; (void)store; (void)original; (void)reply; (void)now; *out = NULL; return candor__fail(CANDOR_ERROR, "check: not implemented"); }
void candor_check_free(struct candor_check *chk) { (void)chk; }
double candor_check_score(const struct candor_check *chk) { (void)chk; return 0; }
const char *candor_check_verdict(const struct candor_check *chk) { (void)chk; return NULL; }
candor_status_t candor_check_to_json(const struct candor_check *chk, char **json) { (void)chk; *json = NULL; return CANDOR_ERROR; }
#include "canned.h"
candor_status_t candor__canned_record(const struct candor_ctx *ctx, struct candor_store *store,
        const struct candor_message *reply, const char *recipient, int64_t sent_at)
{ (void)ctx; (void)store; (void)reply; (void)recipient; (void)sent_at; return CANDOR_OK; }
