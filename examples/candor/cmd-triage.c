/*
 * cmd-triage.c — `candor triage [--maildir DIR | FILE...]`: one JSON object
 * per message (CONTRACT.md): the parse fields without "text", plus intent,
 * confidence, scores, urgency, sentiment, churn_risk, entities and the
 * auto-reply decision. An unreadable message still gets its object with
 * "errors"; the run goes on and the exit status is 1 at the end.
 * --maildir is handed to maildir_triage() (maildir.c).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "commands.h"
#include "maildir.h"

static const char help[] =
"Usage: candor triage [OPTION]... FILE...\n"
"       candor triage [OPTION]... --maildir DIR\n"
"\n"
"Triage each mail FILE (\"-\" reads standard input), or every message of the\n"
"maildir DIR, and print one JSON object per message (JSON Lines): the fields of\n"
"`candor parse` except \"text\", plus intent, confidence, scores of the ten\n"
"intents, urgency, sentiment, churn_risk, entities and autoreply {send, reason}.\n"
"The state is only read.\n"
"\n"
"Options:\n"
"      --explain            add an \"explain\" member: the rules and model\n"
"                           features that decided\n"
"      --maildir DIR        triage the maildir DIR (new/ and cur/)\n"
"      --recursive          with --maildir: also its maildir++ subfolders\n"
"      --jobs N             with --maildir: N parallel workers (output order is\n"
"                           the same for every N; default: the number of cores)\n"
"      --apply headers|move with --maildir: write the X-Candor-* fields into each\n"
"                           message in place, or move it to the folder .<intent>/\n"
"      --dry-run            with --apply: say what would change, change nothing\n"
"      --force              with --apply: also messages already carrying X-Candor-*\n"
"      --ack                with --maildir: acknowledge messages in new/\n"
"      --config FILE        configuration (default: $CANDOR_CONFIG, else the installed one)\n"
"      --model FILE         intent model (default: the configuration's)\n"
"      --state FILE         state database (read only; default: the configuration's)\n"
"      --now TIME           the time, RFC 3339 (default: the clock)\n"
"      --address ADDR       our own address (repeatable; overrides the configuration)\n"
"      --trusted-authserv ID  the authserv-id whose Authentication-Results are believed\n"
"      --sender ADDR        envelope sender (default: from Return-Path, Sender, From)\n"
"      --recipient ADDR     envelope recipient (default: the topmost Delivered-To)\n"
"      --help               show this help and exit\n"
"      --version            show the version and exit\n"
"\n"
"Exit status: 0 all messages triaged cleanly, 1 some message had errors or could\n"
"not be read, 2 bad usage or configuration, 75 temporary failure (state busy).\n";

enum {
    OPT_EXPLAIN = OPT_FIRST_FREE, OPT_MAILDIR, OPT_RECURSIVE, OPT_JOBS, OPT_APPLY,
    OPT_DRY_RUN, OPT_FORCE, OPT_ACK
};

/* The unreadable-message object of `parse`, without "text" (triage
 * objects carry every parse field but that one). */
static void put_unreadable(const char *file, const char *reason)
{
    char *json = NULL;
    if (candor_message_unreadable_json(file, reason, &json) != CANDOR_OK) {
        cli_error("%s: %s", file, reason);
        return;
    }
    char *t = strstr(json, ",\"text\":null");
    if (t)
        memmove(t, t + 12, strlen(t + 12) + 1);
    cli_put_line(json);
    candor_free(json);
}

static int triage_one(struct candor_ctx *ctx, struct candor_store *store,
                      const candor_envelope_t *env, const char *file, unsigned flags)
{
    struct candor_message *msg = NULL;
    char reason[1024];
    candor_status_t st = cli_parse_message(ctx, file, &msg, reason, sizeof reason);
    if (st != CANDOR_OK) {
        put_unreadable(file, reason);
        return EXIT_PROBLEM;
    }
    int status = candor_message_error_count(msg) > 0 ? EXIT_PROBLEM : EXIT_OK;
    struct candor_result *res = NULL;
    st = candor_triage(&res, ctx, msg, store, env, flags);
    if (st != CANDOR_OK) {
        cli_error("%s: %s", file, candor_errmsg());
        candor_message_free(msg);
        return st == CANDOR_ETEMPFAIL ? EXIT_TEMPFAIL : EXIT_PROBLEM;
    }
    char *json = NULL;
    if (candor_result_to_json(res, msg, file, &json) != CANDOR_OK) {
        cli_error("%s: %s", file, candor_errmsg());
        status = EXIT_PROBLEM;
    } else {
        cli_put_line(json);
        candor_free(json);
    }
    candor_result_free(res);
    candor_message_free(msg);
    return status;
}

int cmd_triage(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        { "explain", no_argument, NULL, OPT_EXPLAIN },
        { "maildir", required_argument, NULL, OPT_MAILDIR },
        { "recursive", no_argument, NULL, OPT_RECURSIVE },
        { "jobs", required_argument, NULL, OPT_JOBS },
        { "apply", required_argument, NULL, OPT_APPLY },
        { "dry-run", no_argument, NULL, OPT_DRY_RUN },
        { "force", no_argument, NULL, OPT_FORCE },
        { "ack", no_argument, NULL, OPT_ACK },
        { NULL, 0, NULL, 0 }
    };
    struct cli_common co = {0};
    struct triage_opts to = {0};
    const char *maildir = NULL;
    bool maildir_only = false;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case OPT_EXPLAIN: to.explain = true; continue;
        case OPT_MAILDIR: maildir = optarg; continue;
        case OPT_RECURSIVE: to.recursive = true; maildir_only = true; continue;
        case OPT_JOBS: {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (end == optarg || *end || n < 1 || n > 1024)
                return cli_usage_error("--jobs %s: not a number from 1 to 1024", optarg);
            to.jobs = (int)n;
            maildir_only = true;
            continue;
        }
        case OPT_APPLY:
            if (strcmp(optarg, "headers") == 0)
                to.apply = APPLY_HEADERS;
            else if (strcmp(optarg, "move") == 0)
                to.apply = APPLY_MOVE;
            else
                return cli_usage_error("--apply %s: expected headers or move", optarg);
            maildir_only = true;
            continue;
        case OPT_DRY_RUN: to.dry_run = true; maildir_only = true; continue;
        case OPT_FORCE: to.force = true; maildir_only = true; continue;
        case OPT_ACK: to.ack = true; maildir_only = true; continue;
        }
        int r = cli_common_option(&co, c, optarg, help);
        if (r < 0)
            return EXIT_USAGE;
        if (r == 0)
            return cli_usage_error("unknown option");
    }
    if (maildir && optind < argc)
        return cli_usage_error("--maildir and FILE arguments exclude each other");
    if (!maildir && optind >= argc)
        return cli_usage_error("no FILE given (or --maildir DIR)");
    if (!maildir && maildir_only)
        return cli_usage_error("--recursive, --jobs, --apply, --dry-run, --force and --ack need --maildir");
    if ((to.dry_run || to.force) && to.apply == APPLY_NONE)
        return cli_usage_error("--dry-run and --force need --apply");

    candor_status_t st;
    struct candor_ctx *ctx = cli_ctx(&co, &st);
    if (!ctx)
        return cli_exit_for(st);
    if (maildir) {
        to.co = &co;
        int r = maildir_triage(ctx, maildir, &to);
        candor_ctx_free(ctx);
        return r;
    }

    /* The state is only read. An explicit --state must open; the
     * configuration's default may be absent (then no thread/rate checks). */
    struct candor_store *store = NULL;
    if (co.state) {
        store = cli_store(&co, ctx, true, &st);
        if (!store) {
            candor_ctx_free(ctx);
            return cli_exit_for(st);
        }
    } else if (candor_store_open(&store, ctx, NULL, CANDOR_STORE_READONLY) != CANDOR_OK) {
        store = NULL;
    }
    candor_envelope_t env;
    cli_envelope(&co, &env);
    unsigned flags = to.explain ? CANDOR_TRIAGE_EXPLAIN : 0;
    int status = EXIT_OK;
    for (int i = optind; i < argc; i++) {
        int r = triage_one(ctx, store, &env, argv[i], flags);
        if (r == EXIT_TEMPFAIL) {
            status = r;
            break;
        }
        if (r != EXIT_OK && status == EXIT_OK)
            status = r;
    }
    candor_store_free(store);
    candor_ctx_free(ctx);
    if (fflush(stdout) != 0) {
        cli_error("standard output: write error");
        return EXIT_PROBLEM;
    }
    return status;
}
