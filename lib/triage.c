/* triage.c — STUB: to be written (issue 3). */
#include <stdlib.h>
#include "ctx.h"
candor_status_t candor__triage_load(struct candor_ctx *ctx, struct _xmlNode *section) { (void)ctx; (void)section; return CANDOR_OK; }
void candor__triage_conf_free(struct candor_triage_conf *conf) { (void)conf; }
candor_status_t candor_triage(struct candor_result **out, const struct candor_ctx *ctx, const struct candor_message *msg,
        struct candor_store *store, const candor_envelope_t *env, unsigned int flags)
{ (void)ctx; (void)msg; (void)store; (void)env; (void)flags; *out = NULL; return candor__fail(CANDOR_ERROR, "triage: not implemented"); }
void candor_result_free(struct candor_result *res) { (void)res; }
const char *candor_result_intent(const struct candor_result *res) { (void)res; return NULL; }
double candor_result_confidence(const struct candor_result *res) { (void)res; return 0; }
const char *candor_result_urgency(const struct candor_result *res) { (void)res; return NULL; }
const char *candor_result_sentiment(const struct candor_result *res) { (void)res; return NULL; }
int candor_result_churn_risk(const struct candor_result *res) { (void)res; return 0; }
const char *candor_result_language(const struct candor_result *res) { (void)res; return NULL; }
int candor_result_autoreply_send(const struct candor_result *res) { (void)res; return 0; }
const char *candor_result_autoreply_reason(const struct candor_result *res) { (void)res; return NULL; }
candor_status_t candor_result_to_json(const struct candor_result *res, const struct candor_message *msg, const char *file, char **json)
{ (void)res; (void)msg; (void)file; *json = NULL; return CANDOR_ERROR; }
candor_status_t candor_result_headers(const struct candor_result *res, const char *ticket, const char *eol, char **out)
{ (void)res; (void)ticket; (void)eol; *out = NULL; return CANDOR_ERROR; }
#include "triage.h"
const struct candor_entity *candor__result_entities(const struct candor_result *res, size_t *n)
{ (void)res; *n = 0; return NULL; }
candor_status_t candor__entities_find(const struct candor_ctx *ctx, const char *text, struct candor_entity **out, size_t *n)
{ (void)ctx; (void)text; *out = NULL; *n = 0; return CANDOR_OK; }
void candor__entities_free(struct candor_entity *v, size_t n) { (void)v; (void)n; }
