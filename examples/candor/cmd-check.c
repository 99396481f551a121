/*
 * cmd-check.c — `candor check [--state FILE] [--now TIME] [--config FILE]
 * --original IN.eml REPLY.eml`: is REPLY a canned paste? One JSON object
 * (CONTRACT.md); exit 0 for "ok", 1 for "review" or "canned", 2 for bad
 * usage or an unreadable input. Only reads the state.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "commands.h"

static const char help[] =
"Usage: candor check [OPTION]... --original IN.eml REPLY.eml\n"
"\n"
"Check a support REPLY about to go out against the customer's mail IN.eml and\n"
"the history of sent replies in the state: does it answer the customer, or is\n"
"it a canned paste? Prints one JSON object: score in [0,1], verdict (ok, review\n"
"or canned) and findings with their evidence (template_reuse, unresponsive,\n"
"stock_phrase, impersonal, deflection, no_empathy, no_next_step, repeat_send).\n"
"\"-\" reads a message from standard input. The state is only read.\n"
"\n"
"Options:\n"
"      --original FILE the customer's mail the reply answers (required)\n"
"      --state FILE    state database (default: the configuration's)\n"
"      --now TIME      the current time, RFC 3339 (default: the clock)\n"
"      --config FILE   configuration (default: $CANDOR_CONFIG, else the installed one)\n"
"      --help          show this help and exit\n"
"      --version       show the version and exit\n"
"\n"
"Exit status: 0 ok, 1 review or canned, 2 bad usage, configuration or an\n"
"unreadable message.\n";

enum { OPT_ORIGINAL = OPT_FIRST_FREE };

static struct candor_message *read_message(struct candor_ctx *ctx, const char *file)
{
    struct candor_message *msg = NULL;
    char reason[1024];
    if (cli_parse_message(ctx, file, &msg, reason, sizeof reason) != CANDOR_OK) {
        cli_error("%s: %s", file, reason);
        return NULL;
    }
    return msg;
}

int cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        { "original", required_argument, NULL, OPT_ORIGINAL },
        { NULL, 0, NULL, 0 }
    };
    struct cli_common co = {0};
    const char *original = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == OPT_ORIGINAL) {
            original = optarg;
            continue;
        }
        int r = cli_common_option(&co, c, optarg, help);
        if (r < 0)
            return EXIT_USAGE;
        if (r == 0)
            return cli_usage_error("unknown option");
    }
    if (!original)
        return cli_usage_error("--original IN.eml is required");
    if (optind + 1 != argc)
        return cli_usage_error(optind >= argc ? "no REPLY.eml given" : "exactly one REPLY.eml expected");
    if (strcmp(original, "-") == 0 && strcmp(argv[optind], "-") == 0)
        return cli_usage_error("only one message can come from standard input");

    candor_status_t st;
    struct candor_ctx *ctx = cli_ctx(&co, &st);
    if (!ctx)
        return cli_exit_for(st);
    int status = EXIT_USAGE;
    struct candor_message *orig = NULL, *reply = NULL;
    struct candor_store *store = NULL;
    struct candor_check *chk = NULL;
    char *json = NULL;
    if (!(orig = read_message(ctx, original)) || !(reply = read_message(ctx, argv[optind])))
        goto out;
    /* The history is optional: without a usable default state the check
     * still judges the text; an explicit --state must open. */
    if (candor_store_open(&store, ctx, co.state, CANDOR_STORE_READONLY) != CANDOR_OK) {
        if (co.state) {
            cli_error("%s", candor_errmsg());
            status = EXIT_USAGE;   /* an explicit state that cannot be read */
            goto out;
        }
        store = NULL;
    }
    st = candor_check(&chk, ctx, store, orig, reply, co.now);
    if (st != CANDOR_OK) {
        cli_error("%s", candor_errmsg());
        status = cli_exit_for(st);
        goto out;
    }
    if (candor_check_to_json(chk, &json) != CANDOR_OK || !cli_put_line(json)) {
        cli_error("standard output: write error");
        status = EXIT_PROBLEM;
        goto out;
    }
    status = strcmp(candor_check_verdict(chk), "ok") == 0 ? EXIT_OK : EXIT_PROBLEM;
out:
    candor_free(json);
    candor_check_free(chk);
    candor_store_free(store);
    candor_message_free(orig);
    candor_message_free(reply);
    candor_ctx_free(ctx);
    if (fflush(stdout) != 0)
        return EXIT_PROBLEM;
    return status;
}
