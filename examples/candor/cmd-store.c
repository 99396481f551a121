/*
 * cmd-store.c — `candor store copy --from STATE --to STATE [--force]`: move
 * a whole state between stores, e.g. an SQLite file to the PostgreSQL
 * server that several mail hosts share (README "Running on several
 * hosts"). Uses nothing but candor.h (candor_store_copy()).
 */
#include <getopt.h>
#include <string.h>
#include "cli.h"
#include "commands.h"

enum { OPT_FROM = OPT_FIRST_FREE, OPT_TO, OPT_FORCE };

static const char store_help[] =
    "Usage: candor store copy --from STATE --to STATE [--force] [--config FILE]\n"
    "Copy every table of the state FROM into the state TO, in one transaction on\n"
    "TO: tickets (their numbers kept; the next ticket number follows the largest\n"
    "copied), threads, acknowledgements, promises, first replies, the reply\n"
    "history and the delivery log. A STATE is an SQLite file or a PostgreSQL\n"
    "connection string (postgresql://user@host/db, or \"host=... dbname=...\").\n"
    "Prints one JSON object: rows copied per table.\n"
    "  --from STATE   the state to read (never written)\n"
    "  --to STATE     the state to fill; created and migrated when new\n"
    "  --force        replace what TO already holds (else a non-empty TO is refused)\n"
    "  --config FILE  XML configuration\n"
    "Exit status: 0 copied, 1 failed (nothing copied), 2 bad usage or a\n"
    "non-empty target without --force, 75 temporary failure (server unreachable,\n"
    "state busy).\n";

static const struct option store_opts[] = {
    CLI_COMMON_OPTIONS,
    { "from", required_argument, NULL, OPT_FROM },
    { "to", required_argument, NULL, OPT_TO },
    { "force", no_argument, NULL, OPT_FORCE },
    { NULL, 0, NULL, 0 }
};

int cmd_store(int argc, char **argv)
{
    struct cli_common co = { 0 };
    const char *from = NULL, *to = NULL;
    bool force = false;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", store_opts, NULL)) != -1) {
        int r = cli_common_option(&co, c, optarg, store_help);
        if (r < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        if (c == OPT_FROM)
            from = optarg;
        else if (c == OPT_TO)
            to = optarg;
        else if (c == OPT_FORCE)
            force = true;
        else
            return cli_usage_error("unknown option");
    }
    if (optind >= argc || strcmp(argv[optind], "copy") != 0)
        return cli_usage_error("want the action: copy");
    if (optind + 1 != argc)
        return cli_usage_error("copy takes no other argument");
    if (!from || !to)
        return cli_usage_error("copy wants --from STATE and --to STATE");
    candor_status_t st;
    struct candor_ctx *ctx = cli_ctx(&co, &st);
    if (!ctx)
        return cli_exit_for(st);
    char *json = NULL;
    st = candor_store_copy(ctx, from, to, force ? CANDOR_STORE_COPY_FORCE : 0, &json);
    int rc = EXIT_OK;
    if (st != CANDOR_OK) {
        cli_error("%s", candor_errmsg());
        rc = cli_exit_for(st);
    } else if (!cli_put_line(json)) {
        rc = EXIT_TEMPFAIL;
    }
    candor_free(json);
    candor_ctx_free(ctx);
    return rc;
}
