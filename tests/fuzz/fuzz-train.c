/*
 * fuzz-train.c — libFuzzer target: training the model on hostile mail.
 * `candor train` learns from a mailbox's messages, whose words a stranger
 * wrote. One input is one raw message: it is parsed, added to a trainer
 * with labels picked by its first bytes (candor_trainer_add_labels) and
 * again as plain text (candor_trainer_add_text, another intent); the model
 * is fitted and saved on tmpfs, its report must be a JSON object, and the
 * saved model must load back into a context (no token of the message can
 * break the model file's format).
 */
#include <unistd.h>
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const intents[] = {
    "complaint", "refund", "cancellation", "billing", "order_status",
    "technical_support", "account_change", "sales_inquiry", "praise", "general_question",
};
static const char *const urgencies[] = { NULL, "low", "normal", "high", "critical" };
static const char *const sentiments[] = { NULL, "negative", "neutral", "positive" };

static const char *model_path(void)
{
    static char path[256];
    if (!path[0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(path, sizeof path, "%s/candor-fuzz-train-%ld.model", dir, (long)getpid());
    }
    return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct candor_message *msg = NULL;
    if (candor_message_parse(&msg, fuzz_ctx(), data, size) != CANDOR_OK)
        return 0;
    unsigned k = size ? data[0] : 0, k2 = size > 1 ? data[1] : 0;
    const char *intent = intents[k % 10];
    struct candor_trainer *tr = NULL;
    FUZZ_CHECK(candor_trainer_new(&tr, fuzz_ctx()) == CANDOR_OK, "trainer_new");
    candor_status_t st = candor_trainer_add_labels(tr, msg, intent, urgencies[k2 % 5],
                                                   sentiments[(k2 / 5) % 4]);
    FUZZ_CHECK(st == CANDOR_OK || st == CANDOR_ENOMEM, "add_labels takes any parsed message");
    const char *text = candor_message_text(msg);
    st = candor_trainer_add_text(tr, candor_message_subject(msg), text ? text : "",
                                 intents[(k + 1) % 10]);
    FUZZ_CHECK(st == CANDOR_OK || st == CANDOR_ENOMEM, "add_text takes any message text");

    const char *path = model_path();
    if (candor_trainer_save(tr, path) == CANDOR_OK) {
        char *json = NULL;
        FUZZ_CHECK(candor_trainer_report(tr, &json) == CANDOR_OK, "report after save");
        fuzz_check_json(json, "trainer report parses back");
        candor_free(json);

        candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
        o.config_path = fuzz_data("candor.xml");
        o.model_path = path;
        struct candor_ctx *ctx = NULL;
        st = candor_ctx_new(&ctx, &o);
        if (st != CANDOR_OK)
            fprintf(stderr, "saved model does not load: %s\n", candor_errmsg());
        FUZZ_CHECK(st == CANDOR_OK, "the saved model loads back");
        candor_ctx_free(ctx);
        unlink(path);
    }
    candor_trainer_free(tr);
    candor_message_free(msg);
    return 0;
}
