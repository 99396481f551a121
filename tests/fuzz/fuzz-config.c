/*
 * fuzz-config.c — libFuzzer target: a whole configuration file. The input
 * is written to an in-memory file (memfd) and loaded through its
 * /proc/self/fd path with candor_ctx_new(): XML parse, schema validation,
 * the general part (addresses, limits, daemon settings) and every module's
 * loader (rules compiled with PCRE2, triage, autoreply, eta, ack, canned).
 * The model path is pinned to the shipped model so a fuzzed <model path>
 * cannot make the target read arbitrary files.
 */
#include <sys/mman.h>
#include <unistd.h>
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int mem_fd = -1;
static char mem_path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (mem_fd < 0) {
        mem_fd = memfd_create("candor-fuzz-config", MFD_CLOEXEC);
        FUZZ_CHECK(mem_fd >= 0, "memfd_create");
        snprintf(mem_path, sizeof mem_path, "/proc/self/fd/%d", mem_fd);
    }
    FUZZ_CHECK(ftruncate(mem_fd, 0) == 0, "ftruncate");
    FUZZ_CHECK(pwrite(mem_fd, data, size, 0) == (ssize_t)size, "pwrite");

    candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
    o.config_path = mem_path;
    o.model_path = fuzz_data("model.txt");
    struct candor_ctx *ctx = NULL;
    candor_status_t st = candor_ctx_new(&ctx, &o);
    if (st != CANDOR_OK) {
        FUZZ_CHECK(ctx == NULL, "*out is NULL on failure");
        const char *e = candor_errmsg();
        FUZZ_CHECK(e && *e, "a failure has a message");
        fuzz_check_utf8(e, "error message is UTF-8");
        FUZZ_CHECK(strchr(e, '\n') == NULL, "error message is one line");
        return 0;
    }
    (void)candor_ctx_state_path(ctx);
    (void)candor_ctx_sendmail(ctx);
    (void)candor_ctx_setting_int(ctx, "max-connections", 1);
    (void)candor_ctx_setting_str(ctx, "max-line-bytes");
    candor_ctx_free(ctx);
    return 0;
}
