/* message.c — STUB: to be written (issue 2). */
#include <stdlib.h>
#include "message.h"
#include "ctx.h"

candor_status_t candor_message_parse(struct candor_message **out, const struct candor_ctx *ctx,
                                     const void *data, size_t len)
{ (void)ctx; (void)data; (void)len; if (out) *out = NULL; return candor__fail(CANDOR_ERROR, "message: not implemented"); }
candor_status_t candor_message_parse_file(struct candor_message **out, const struct candor_ctx *ctx, const char *path)
{ (void)ctx; (void)path; if (out) *out = NULL; return candor__fail(CANDOR_ERROR, "message: not implemented"); }
void candor_message_free(struct candor_message *msg) { free(msg); }
const char *candor_message_id(const struct candor_message *m) { return m ? m->message_id : NULL; }
const char *candor_message_subject(const struct candor_message *m) { return m ? m->subject : NULL; }
const char *candor_message_from_address(const struct candor_message *m) { return m ? m->from.address : NULL; }
const char *candor_message_from_name(const struct candor_message *m) { return m ? m->from.name : NULL; }
const char *candor_message_text(const struct candor_message *m) { return m ? m->text : NULL; }
const char *candor_message_new_text(const struct candor_message *m) { return m ? m->new_text : NULL; }
int64_t candor_message_date(const struct candor_message *m) { return m && m->has_date ? m->date : 0; }
size_t candor_message_error_count(const struct candor_message *m) { return m ? m->errors.n : 0; }
const char *candor_message_error(const struct candor_message *m, size_t i) { return m && i < m->errors.n ? m->errors.v[i] : NULL; }
size_t candor_message_body_offset(const struct candor_message *m) { return m ? m->body_offset : 0; }
candor_status_t candor_message_to_json(const struct candor_message *msg, const char *file, char **json)
{ (void)msg; (void)file; if (json) *json = NULL; return candor__fail(CANDOR_ERROR, "message: not implemented"); }
const char *candor__message_header(const struct candor_message *msg, const char *name, size_t nth)
{ (void)msg; (void)name; (void)nth; return NULL; }
bool candor__message_add_error(struct candor_message *msg, const char *fmt, ...)
{ (void)msg; (void)fmt; return false; }
void *candor__message_json(const struct candor_message *msg, const char *file, bool with_text)
{ (void)msg; (void)file; (void)with_text; return NULL; }
candor_status_t candor_message_unreadable_json(const char *file, const char *reason, char **json)
{ (void)file; (void)reason; if (json) *json = NULL; return candor__fail(CANDOR_ERROR, "message: not implemented"); }
