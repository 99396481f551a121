/*
 * triage-json.c — candor_triage_json(): parse, triage and the `candor
 * triage` JSON object in one call, for bindings that pay per foreign call
 * (Python's ctypes hands its interpreter lock over at every call: one call
 * a message instead of three). Built on the public API only; the result is
 * byte for byte what the three calls give.
 */
#include "internal.h"

candor_status_t candor_triage_json(char **json, size_t *n_errors,
                                   const struct candor_ctx *ctx, struct candor_store *store,
                                   const char *path, const void *data, size_t len,
                                   const char *file, const candor_envelope_t *env,
                                   unsigned int flags)
{
    if (json)
        *json = NULL;
    if (n_errors)
        *n_errors = 0;
    if (!json || !ctx || (!data && !path))
        return candor__fail(CANDOR_EINVAL, "triage_json: NULL argument");
    struct candor_message *msg = NULL;
    candor_status_t st = data ? candor_message_parse(&msg, ctx, data, len)
                              : candor_message_parse_file(&msg, ctx, path);
    if (st != CANDOR_OK)
        return st;
    struct candor_result *res = NULL;
    st = candor_triage(&res, ctx, msg, store, env, flags);
    if (st == CANDOR_OK)
        st = candor_result_to_json(res, msg, file, json);
    if (st == CANDOR_OK && n_errors)
        *n_errors = candor_message_error_count(msg);
    candor_result_free(res);
    candor_message_free(msg);
    return st;
}
