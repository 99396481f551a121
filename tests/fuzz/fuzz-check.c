/*
 * fuzz-check.c — libFuzzer target: the canned-reply check on two messages
 * cut from one input at the first FUZZ_SPLIT line ("\n--8<--\n"; without
 * one, at the middle): the customer's original, then the reply. No store
 * (no history), a fixed clock.
 */
#include "fuzz-common.h"

#define FUZZ_SPLIT "\n--8<--\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct candor_ctx *ctx = fuzz_ctx();
    const uint8_t *cut = memmem(data, size, FUZZ_SPLIT, sizeof FUZZ_SPLIT - 1);
    size_t a_len = cut ? (size_t)(cut - data) : size / 2;
    size_t b_off = cut ? a_len + sizeof FUZZ_SPLIT - 1 : a_len;
    struct candor_message *orig = NULL, *reply = NULL;
    if (candor_message_parse(&orig, ctx, data, a_len) == CANDOR_OK &&
        candor_message_parse(&reply, ctx, data + b_off, size - b_off) == CANDOR_OK) {
        struct candor_check *chk = NULL;
        if (candor_check(&chk, ctx, NULL, orig, reply, 1790000000) == CANDOR_OK) {
            double s = candor_check_score(chk);
            FUZZ_CHECK(s >= 0.0 && s <= 1.0, "score in [0, 1]");
            const char *v = candor_check_verdict(chk);
            FUZZ_CHECK(v && (!strcmp(v, "ok") || !strcmp(v, "review") || !strcmp(v, "canned")),
                       "verdict is ok, review or canned");
            char *json = NULL;
            if (candor_check_to_json(chk, &json) == CANDOR_OK)
                fuzz_check_json(json, "check JSON parses back");
            candor_free(json);
        }
        candor_check_free(chk);
    }
    candor_message_free(orig);
    candor_message_free(reply);
    return 0;
}
