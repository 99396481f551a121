/*
 * fuzz-common.h — shared by the libFuzzer targets in tests/fuzz/.
 *
 * One context per process, made on first use from the shipped default
 * configuration in the source tree (FUZZ_DATADIR, set by meson.build), so
 * the targets do not depend on what is installed or on $CANDOR_CONFIG.
 * The invariants checked here are the library's promises to its callers
 * (valid UTF-8 out, JSON that parses back); a broken one aborts, which
 * libFuzzer reports as a crash with the input that caused it.
 */
#ifndef CANDOR_FUZZ_COMMON_H
#define CANDOR_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "candor.h"
#include "internal.h"

#ifndef FUZZ_DATADIR
#error "FUZZ_DATADIR must name lib/data of the source tree"
#endif

/* Abort with a message when COND is false (an invariant libFuzzer reports). */
#define FUZZ_CHECK(cond, what) do { \
        if (!(cond)) { \
            fprintf(stderr, "fuzz invariant broken: %s (%s:%d)\n", what, __FILE__, __LINE__); \
            abort(); \
        } \
    } while (0)

/* lib/data of the source tree, or $CANDOR_FUZZ_DATADIR: a long campaign
 * points it at a copy taken with the binary, so data edited in the tree
 * meanwhile (a new model format) cannot break the running target. */
static inline const char *fuzz_data(const char *name)
{
    static char buf[2][4096];
    static int k;
    const char *d = getenv("CANDOR_FUZZ_DATADIR");
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s/%s", d && *d ? d : FUZZ_DATADIR, name);
    return buf[k];
}

static inline struct candor_ctx *fuzz_ctx_new(void)
{
    candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
    o.config_path = fuzz_data("candor.xml");
    o.model_path = fuzz_data("model.txt");
    /* Smaller limits than the defaults keep one execution fast; the
     * limit tests (tests/test-limits.c) cover the default values. */
    o.max_message_bytes = 1u << 20;
    o.max_decoded_bytes = 4u << 20;
    o.max_text_bytes = 256u << 10;
    struct candor_ctx *ctx = NULL;
    if (candor_ctx_new(&ctx, &o) != CANDOR_OK) {
        fprintf(stderr, "fuzz: cannot make a context: %s\n", candor_errmsg());
        abort();
    }
    return ctx;
}

/* The process-wide context (made once, freed at exit by the OS: libFuzzer's
 * leak check runs per input, so a context that lives forever is fine). */
static inline struct candor_ctx *fuzz_ctx(void)
{
    static struct candor_ctx *ctx;
    if (!ctx)
        ctx = fuzz_ctx_new();
    return ctx;
}

static inline void fuzz_check_utf8(const char *s, const char *what)
{
    if (s)
        FUZZ_CHECK(candor__utf8_valid(s, strlen(s)), what);
}

/* JSON text from the library must parse back to an object. */
static inline void fuzz_check_json(const char *json, const char *what)
{
    if (!json)
        return;
    fuzz_check_utf8(json, what);
    struct json_object *o = json_tokener_parse(json);
    FUZZ_CHECK(o && json_object_is_type(o, json_type_object), what);
    json_object_put(o);
}

/* Every accessor and the JSON of a parsed message: the invariants the other
 * modules and the CLI rely on. */
static inline void fuzz_check_message(const struct candor_message *msg)
{
    fuzz_check_utf8(candor_message_id(msg), "message_id is UTF-8");
    fuzz_check_utf8(candor_message_subject(msg), "subject is UTF-8");
    fuzz_check_utf8(candor_message_from_address(msg), "from address is UTF-8");
    fuzz_check_utf8(candor_message_from_name(msg), "from name is UTF-8");
    fuzz_check_utf8(candor_message_text(msg), "text is UTF-8");
    fuzz_check_utf8(candor_message_new_text(msg), "new_text is UTF-8");
    (void)candor_message_date(msg);
    size_t n = candor_message_error_count(msg);
    for (size_t i = 0; i < n; i++) {
        const char *e = candor_message_error(msg, i);
        FUZZ_CHECK(e != NULL, "error entry present");
        fuzz_check_utf8(e, "error entry is UTF-8");
    }
    FUZZ_CHECK(candor_message_error(msg, n) == NULL, "no error past the count");
    char *json = NULL;
    if (candor_message_to_json(msg, "fuzz.eml", &json) == CANDOR_OK)
        fuzz_check_json(json, "parse JSON parses back");
    candor_free(json);
}

#endif
