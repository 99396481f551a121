/*
 * cmd-parse.c — `candor parse FILE...`: one JSON object per file on
 * stdout (CONTRACT.md). An unreadable file still gets its object, with
 * "errors"; the exit status is then 1 after every file was tried.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "commands.h"

static const char help[] =
"Usage: candor parse [OPTION]... FILE...\n"
"\n"
"Parse each mail FILE (\"-\" reads standard input) and print one JSON object per\n"
"file on standard output (JSON Lines): addresses, decoded subject, date in UTC,\n"
"threading ids, the readable text (text/plain preferred, else HTML turned into\n"
"text), the new text without quoted history and signature, attachments, and\n"
"\"errors\" listing whatever could not be read.\n"
"\n"
"Options:\n"
"      --config FILE   configuration (default: $CANDOR_CONFIG, else the installed one)\n"
"      --help          show this help and exit\n"
"      --version       show the version and exit\n"
"\n"
"Exit status: 0 all files parsed cleanly, 1 some file had errors or could not be\n"
"read, 2 bad usage or configuration.\n";

int cmd_parse(int argc, char **argv)
{
    static const struct option opts[] = { CLI_COMMON_OPTIONS, { NULL, 0, NULL, 0 } };
    struct cli_common co = {0};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int r = cli_common_option(&co, c, optarg, help);
        if (r < 0)
            return EXIT_USAGE;
        if (r == 0)
            return cli_usage_error("unknown option");
    }
    if (optind >= argc)
        return cli_usage_error("no FILE given");
    candor_status_t st;
    co.ctx_flags = CANDOR_CTX_PARSE_ONLY;   /* no rules or model to load */
    struct candor_ctx *ctx = cli_ctx(&co, &st);
    if (!ctx)
        return cli_exit_for(st);

    int status = EXIT_OK;
    for (int i = optind; i < argc; i++) {
        const char *file = argv[i];
        struct candor_message *msg = NULL;
        char reason[1024];
        st = cli_parse_message(ctx, file, &msg, reason, sizeof reason);
        if (st != CANDOR_OK) {
            /* Unreadable: still one object for the file, with "errors". */
            char *json = NULL;
            if (candor_message_unreadable_json(file, reason, &json) == CANDOR_OK) {
                cli_put_line(json);
                candor_free(json);
            }
            status = EXIT_PROBLEM;
            continue;
        }
        char *json = NULL;
        if (candor_message_to_json(msg, file, &json) != CANDOR_OK) {
            cli_error("%s: %s", file, candor_errmsg());
            status = EXIT_PROBLEM;
        } else {
            cli_put_line(json);
            candor_free(json);
        }
        if (candor_message_error_count(msg) > 0)
            status = EXIT_PROBLEM;
        candor_message_free(msg);
    }
    candor_ctx_free(ctx);
    if (fflush(stdout) != 0) {
        cli_error("standard output: write error");
        return EXIT_PROBLEM;
    }
    return status;
}
