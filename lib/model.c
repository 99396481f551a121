/* model.c — STUB: to be written (issue 3). */
#include <stdlib.h>
#include "ctx.h"
candor_status_t candor__model_load_ctx(struct candor_ctx *ctx, struct _xmlNode *section) { (void)ctx; (void)section; return CANDOR_OK; }
void candor__model_free(struct candor_model *model) { (void)model; }
candor_status_t candor_trainer_new(struct candor_trainer **out, const struct candor_ctx *ctx) { (void)ctx; *out = NULL; return candor__fail(CANDOR_ERROR, "trainer: not implemented"); }
void candor_trainer_free(struct candor_trainer *tr) { (void)tr; }
candor_status_t candor_trainer_add(struct candor_trainer *tr, const struct candor_message *msg, const char *label) { (void)tr; (void)msg; (void)label; return CANDOR_ERROR; }
candor_status_t candor_trainer_add_text(struct candor_trainer *tr, const char *s, const char *t, const char *label) { (void)tr; (void)s; (void)t; (void)label; return CANDOR_ERROR; }
candor_status_t candor_trainer_save(struct candor_trainer *tr, const char *path) { (void)tr; (void)path; return CANDOR_ERROR; }
