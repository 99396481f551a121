/*
 * fuzz-message.c — libFuzzer target: one raw message, any bytes.
 * Parses it (headers, MIME walk, decoding, charset conversion, HTML to
 * text, quote and signature splitting) and renders the `candor parse`
 * JSON, checking that everything that comes out is valid UTF-8 and that
 * the JSON parses back.
 */
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct candor_message *msg = NULL;
    candor_status_t st = candor_message_parse(&msg, fuzz_ctx(), data, size);
    if (st != CANDOR_OK) {
        FUZZ_CHECK(msg == NULL, "*out is NULL on failure");
        FUZZ_CHECK(st == CANDOR_ELIMIT || st == CANDOR_ENOMEM || st == CANDOR_ERROR,
                   "parse fails only with ELIMIT/ENOMEM");
        return 0;
    }
    fuzz_check_message(msg);
    candor_message_free(msg);
    return 0;
}
