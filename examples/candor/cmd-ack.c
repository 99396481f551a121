/*
 * cmd-ack.c — `candor ack [--send] IN.eml`, `candor record-reply REPLY.eml`,
 * `candor stats [--json]` (CONTRACT.md "State, time and the
 * acknowledgement commands"). Uses nothing but candor.h.
 *
 * --send hands the acknowledgement to the configured sendmail command
 * (`COMMAND -f '<>' -i -- RECIPIENT`, run without a shell, the message on
 * its stdin) and marks it sent in the state only when sendmail exits 0;
 * otherwise it stays pending in the state's outbox and the exit status is
 * 75 so that the caller retries.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <json-c/json.h>
#include "cli.h"
#include "commands.h"

enum { OPT_SEND = OPT_FIRST_FREE, OPT_JSON };

static const char ack_help[] =
    "Usage: candor ack [--send] [OPTIONS] IN.eml\n"
    "Decide whether IN.eml gets an automatic acknowledgement, compose it, record\n"
    "the decision, ticket and promise in the state, print one JSON object.\n"
    "  --send                 hand the acknowledgement to the configured sendmail\n"
    "                         (envelope sender <>); without it nothing leaves\n"
    "  --state FILE           state file (default: the config's)\n"
    "  --now TIME             RFC 3339 time to act at (default: the clock)\n"
    "  --config FILE          XML configuration\n"
    "  --address ADDR         one of our addresses (repeatable)\n"
    "  --trusted-authserv ID  authserv-id whose Authentication-Results count\n"
    "  --sender ADDR          envelope sender (default: Return-Path, Sender, From)\n"
    "  --recipient ADDR       envelope recipient (default: topmost Delivered-To)\n";

static const char record_help[] =
    "Usage: candor record-reply [OPTIONS] REPLY.eml\n"
    "Record a human reply that went out: its ticket (by In-Reply-To/References,\n"
    "else by recipient), whether it was the first response and whether the\n"
    "promise was kept. The reply's Date is its time when not later than --now.\n"
    "  --state FILE  --now TIME  --config FILE\n";

static const char stats_help[] =
    "Usage: candor stats [--json] [OPTIONS]\n"
    "Per intent and overall: tickets, acknowledged, first replies, median and\n"
    "90th-percentile time to first reply, share of promises kept.\n"
    "  --json  one JSON object instead of a table\n"
    "  --state FILE  --now TIME  --config FILE\n";

static const struct option ack_opts[] = {
    CLI_COMMON_OPTIONS,
    { "send", no_argument, NULL, OPT_SEND },
    { "json", no_argument, NULL, OPT_JSON },
    { NULL, 0, NULL, 0 }
};

/* Split COMMAND on blanks (no shell, no quoting) into ARGV (room for MAX). */
static size_t split_command(char *command, char **argv, size_t max)
{
    size_t n = 0;
    for (char *tok = strtok(command, " \t"); tok && n < max; tok = strtok(NULL, " \t"))
        argv[n++] = tok;
    return n;
}

/* Run SENDMAIL -f '<>' -i -- RCPT with MESSAGE on stdin; 0 on exit 0. */
static int run_sendmail(const char *sendmail, const char *rcpt, const char *message)
{
    char *cmd = strdup(sendmail);
    if (!cmd)
        return -1;
    char *argv[40];
    size_t n = split_command(cmd, argv, 32);
    if (n == 0) {
        free(cmd);
        cli_error("empty sendmail command");
        return -1;
    }
    argv[n++] = "-f";
    argv[n++] = "<>";
    argv[n++] = "-i";
    argv[n++] = "--";
    argv[n++] = (char *)rcpt;
    argv[n] = NULL;
    int fd[2];
    if (pipe(fd) != 0) {
        free(cmd);
        cli_error("pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        free(cmd);
        close(fd[0]);
        close(fd[1]);
        cli_error("fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        dup2(fd[0], 0);
        close(fd[0]);
        close(fd[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fd[0]);
    free(cmd);
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    size_t len = strlen(message), off = 0;
    bool ok = true;
    while (off < len) {
        ssize_t w = write(fd[1], message + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            ok = false;
            break;
        }
        off += (size_t)w;
    }
    close(fd[1]);
    signal(SIGPIPE, old);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!ok || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        cli_error("sendmail failed (%s, status %d); the acknowledgement stays pending",
                  sendmail, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return -1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, struct cli_common *co, bool *send, bool *json,
                      const char *help)
{
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", ack_opts, NULL)) != -1) {
        int r = cli_common_option(co, c, optarg, help);
        if (r < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        if (c == OPT_SEND && send)
            *send = true;
        else if (c == OPT_JSON && json)
            *json = true;
        else
            return cli_usage_error("unknown option");
    }
    return -1;
}

static struct candor_message *read_message(const struct candor_ctx *ctx, const char *path,
                                           int *rc)
{
    struct candor_message *msg = NULL;
    char reason[1024];
    candor_status_t st = cli_parse_message(ctx, path, &msg, reason, sizeof reason);
    if (st != CANDOR_OK) {
        /* a read error or a limit names the file (or standard input) already */
        size_t pl = strlen(path);
        if (strcmp(path, "-") == 0 || (strncmp(reason, path, pl) == 0 && reason[pl] == ':'))
            cli_error("%s", reason);
        else
            cli_error("%s: %s", path, reason);
        *rc = st == CANDOR_ENOMEM ? EXIT_TEMPFAIL : EXIT_PROBLEM;
        return NULL;
    }
    return msg;
}

int cmd_ack(int argc, char **argv)
{
    struct cli_common co = { 0 };
    bool send = false;
    int rc = parse_args(argc, argv, &co, &send, NULL, ack_help);
    if (rc >= 0)
        return rc;
    if (optind + 1 != argc)
        return cli_usage_error("want exactly one message file");
    const char *path = argv[optind];
    candor_status_t st;
    struct candor_ctx *ctx = cli_ctx(&co, &st);
    if (!ctx)
        return cli_exit_for(st);
    if (send && !candor_ctx_sendmail(ctx)) {
        candor_ctx_free(ctx);
        return cli_usage_error("--send: no sendmail command in the configuration");
    }
    rc = EXIT_OK;
    struct candor_message *msg = read_message(ctx, path, &rc);
    struct candor_store *store = msg ? cli_store(&co, ctx, false, &st) : NULL;
    if (msg && !store)
        rc = cli_exit_for(st);
    struct candor_ack *ack = NULL;
    if (store) {
        candor_envelope_t env;
        cli_envelope(&co, &env);
        st = candor_ack(&ack, ctx, store, msg, &env);
        if (st != CANDOR_OK) {
            cli_error("%s: %s", path, candor_errmsg());
            rc = cli_exit_for(st);
        }
    }
    if (ack && send && candor_ack_send(ack)) {
        if (run_sendmail(candor_ctx_sendmail(ctx), candor_ack_recipient(ack),
                         candor_ack_message(ack)) == 0) {
            st = candor_store_ack_sent(store, candor_ack_ticket(ack), co.now);
            if (st != CANDOR_OK) {
                cli_error("%s", candor_errmsg());
                rc = cli_exit_for(st);
            }
        } else {
            rc = EXIT_TEMPFAIL;
        }
    }
    if (ack) {
        char *json = NULL;
        if (candor_ack_to_json(ack, &json) == CANDOR_OK) {
            if (!cli_put_line(json))
                rc = EXIT_TEMPFAIL;
        } else {
            cli_error("%s", candor_errmsg());
            rc = EXIT_PROBLEM;
        }
        candor_free(json);
    }
    candor_ack_free(ack);
    candor_store_free(store);
    candor_message_free(msg);
    candor_ctx_free(ctx);
    return rc;
}

int cmd_record_reply(int argc, char **argv)
{
    struct cli_common co = { 0 };
    int rc = parse_args(argc, argv, &co, NULL, NULL, record_help);
    if (rc >= 0)
        return rc;
    if (optind + 1 != argc)
        return cli_usage_error("want exactly one reply file");
    const char *path = argv[optind];
    candor_status_t st;
    struct candor_ctx *ctx = cli_ctx(&co, &st);
    if (!ctx)
        return cli_exit_for(st);
    rc = EXIT_OK;
    struct candor_message *msg = read_message(ctx, path, &rc);
    struct candor_store *store = msg ? cli_store(&co, ctx, false, &st) : NULL;
    if (msg && !store)
        rc = cli_exit_for(st);
    if (store) {
        char *json = NULL;
        st = candor_record_reply(ctx, store, msg, co.now, &json);
        if (st == CANDOR_OK) {
            if (!cli_put_line(json))
                rc = EXIT_TEMPFAIL;
        } else {
            cli_error("%s: %s", path, candor_errmsg());
            rc = cli_exit_for(st);
        }
        candor_free(json);
    }
    candor_store_free(store);
    candor_message_free(msg);
    candor_ctx_free(ctx);
    return rc;
}

static void print_duration(const char *label, json_object *v)
{
    if (!v || json_object_get_type(v) == json_type_null) {
        printf("  %-28s -\n", label);
        return;
    }
    int64_t s = json_object_get_int64(v);
    printf("  %-28s %lldh%02lldm\n", label, (long long)(s / 3600), (long long)(s % 3600 / 60));
}

static void print_group(const char *name, json_object *g)
{
    json_object *v;
    printf("%s\n", name);
    const char *counts[] = { "tickets", "acknowledged", "first_replies", "promises",
                             "promises_kept", "promises_broken", NULL };
    for (const char **c = counts; *c; c++)
        if (json_object_object_get_ex(g, *c, &v))
            printf("  %-28s %lld\n", *c, (long long)json_object_get_int64(v));
    json_object_object_get_ex(g, "median_first_reply_seconds", &v);
    print_duration("median first reply", v);
    json_object_object_get_ex(g, "p90_first_reply_seconds", &v);
    print_duration("90th pct first reply", v);
    json_object_object_get_ex(g, "median_promised_seconds", &v);
    print_duration("median promised wait", v);
    if (json_object_object_get_ex(g, "promises_kept_share", &v) && v)
        printf("  %-28s %.1f%%\n", "promises kept", 100.0 * json_object_get_double(v));
    else
        printf("  %-28s -\n", "promises kept");
}

int cmd_stats(int argc, char **argv)
{
    struct cli_common co = { 0 };
    bool json = false;
    int rc = parse_args(argc, argv, &co, NULL, &json, stats_help);
    if (rc >= 0)
        return rc;
    if (optind != argc)
        return cli_usage_error("stats takes no file");
    candor_status_t st;
    struct candor_ctx *ctx = cli_ctx(&co, &st);
    if (!ctx)
        return cli_exit_for(st);
    rc = EXIT_OK;
    struct candor_store *store = cli_store(&co, ctx, true, &st);
    if (!store)
        rc = cli_exit_for(st);
    char *out = NULL;
    if (store) {
        st = candor_stats_json(ctx, store, co.now, &out);
        if (st != CANDOR_OK) {
            cli_error("%s", candor_errmsg());
            rc = cli_exit_for(st);
        }
    }
    if (out && json) {
        if (!cli_put_line(out))
            rc = EXIT_TEMPFAIL;
    } else if (out) {
        json_object *root = json_tokener_parse(out), *g, *intents;
        if (root && json_object_object_get_ex(root, "overall", &g))
            print_group("overall", g);
        if (root && json_object_object_get_ex(root, "intents", &intents)) {
            json_object_object_foreach(intents, key, val) {
                json_object *t;
                if (json_object_object_get_ex(val, "tickets", &t) && json_object_get_int64(t))
                    print_group(key, val);
            }
        }
        json_object_put(root);
    }
    candor_free(out);
    candor_store_free(store);
    candor_ctx_free(ctx);
    return rc;
}
