/*
 * fuzz-triage.c — libFuzzer target: parse a message and triage it (rules,
 * model, attributes, entities, the auto-reply decision without a store),
 * then render the `candor triage` JSON and the X-Candor-* header block,
 * which must be free of CR/LF injection: every line is "X-Candor-...: "
 * and nothing from the message may add a line. The auto-reply decision is
 * also asked directly: when it says "ok", the address the acknowledgement
 * would go to must be a bare local@domain (no space, control byte, angle
 * bracket or comma: it becomes a To: field and a sendmail argument).
 */
#include "fuzz-common.h"
#include "autoreply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_headers(const char *h)
{
    fuzz_check_utf8(h, "headers are UTF-8");
    for (const char *line = h; *line;) {
        const char *eol = strchr(line, '\n');
        FUZZ_CHECK(eol != NULL, "header block ends with a line end");
        FUZZ_CHECK(strncmp(line, "X-Candor-", 9) == 0, "every header line is X-Candor-*");
        for (const char *p = line; p < eol; p++)
            FUZZ_CHECK(*p != '\r' || p + 1 == eol, "no bare CR inside a header line");
        line = eol + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct candor_ctx *ctx = fuzz_ctx();
    struct candor_message *msg = NULL;
    if (candor_message_parse(&msg, ctx, data, size) != CANDOR_OK)
        return 0;
    candor_envelope_t env = CANDOR_ENVELOPE_INIT;
    env.now = 1790000000;   /* fixed, so a crash reproduces */
    char *rcpt = NULL;
    const char *reason = candor__autoreply_decide(ctx, msg, NULL, &env, &rcpt);
    FUZZ_CHECK(reason != NULL, "a decision without a store always has a reason");
    if (strcmp(reason, "ok") == 0) {
        FUZZ_CHECK(rcpt && strchr(rcpt, '@'), "ok has a recipient");
        for (const unsigned char *p = (const unsigned char *)rcpt; *p; p++)
            FUZZ_CHECK(*p > ' ' && *p != 0x7f && *p != '<' && *p != '>' && *p != ',',
                       "the recipient is a bare address");
    }
    free(rcpt);
    struct candor_result *res = NULL;
    if (candor_triage(&res, ctx, msg, NULL, &env, CANDOR_TRIAGE_EXPLAIN) == CANDOR_OK) {
        fuzz_check_utf8(candor_result_intent(res), "intent is UTF-8");
        double c = candor_result_confidence(res);
        FUZZ_CHECK(c >= 0.0 && c <= 1.0, "confidence in [0, 1]");
        fuzz_check_utf8(candor_result_urgency(res), "urgency is UTF-8");
        fuzz_check_utf8(candor_result_sentiment(res), "sentiment is UTF-8");
        fuzz_check_utf8(candor_result_autoreply_reason(res), "reason is UTF-8");
        char *json = NULL;
        if (candor_result_to_json(res, msg, "fuzz.eml", &json) == CANDOR_OK)
            fuzz_check_json(json, "triage JSON parses back");
        candor_free(json);
        char *h = NULL;
        if (candor_result_headers(res, "CND-000001", "\r\n", &h) == CANDOR_OK)
            check_headers(h);
        candor_free(h);
    }
    candor_result_free(res);
    candor_message_free(msg);
    return 0;
}
