/*
 * main.c — `candor`: the command-line front end of libcandor.
 * One subcommand per file (cmd-*.c); this file only dispatches.
 */
#include <stdio.h>
#include <string.h>
#include "../bytecount.h"
#include "cli.h"
#include "commands.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} commands[] = {
    { "parse", cmd_parse, "parse messages, print JSON Lines" },
    { "triage", cmd_triage, "classify messages or a maildir, print JSON Lines" },
    { "train", cmd_train, "train the intent model from labelled mail" },
    { "ack", cmd_ack, "decide on and compose an acknowledgement" },
    { "record-reply", cmd_record_reply, "record a human reply that went out" },
    { "stats", cmd_stats, "response times and promises kept" },
    { "check", cmd_check, "check a reply for canned-looking text" },
    { "filter", cmd_filter, "add X-Candor-* fields to a message on stdin" },
    { "store", cmd_store, "store copy: move a state, e.g. to PostgreSQL" },
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: candor [--max-config-bytes N] COMMAND [OPTION]... [ARG]...\n\n"
               "Triage support mail, acknowledge it honestly, and catch canned replies.\n\n"
               "Commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nGlobal options (before COMMAND; every command takes them too):\n"
               "  --max-config-bytes N  refuse a configuration file larger than N bytes\n"
               "                        (suffix k, M or G; default 4M)\n");
    fprintf(f, "\n'candor COMMAND --help' describes each command; man candor(1) has the rest.\n"
               "Exit status: 0 success, 1 a problem was found and reported, 2 bad usage or\n"
               "configuration, 75 a temporary failure (retry later).\n");
}

int main(int argc, char **argv)
{
    /* global options, before the command */
    while (argc > 1 && strncmp(argv[1], "--max-config-bytes", 18) == 0) {
        const char *arg = NULL;
        int used = 1;
        if (argv[1][18] == '=') {
            arg = argv[1] + 19;
        } else if (argv[1][18] == '\0' && argc > 2) {
            arg = argv[2];
            used = 2;
        } else if (argv[1][18] != '\0') {
            break;   /* some other word: an unknown command below */
        }
        if (!arg || !parse_byte_count(arg, &cli_max_config_bytes))
            return cli_usage_error("--max-config-bytes %s: not a byte count "
                                   "(N, Nk, NM or NG, above 0)", arg ? arg : "(missing)");
        argc -= used;
        argv += used;
    }
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("candor %s\n", candor_version_string());
        return EXIT_OK;
    }
    if (candor_version_number() != CANDOR_VERSION_NUMBER) {
        fprintf(stderr, "candor: libcandor %s does not match this program (%s)\n",
                candor_version_string(), CANDOR_VERSION_STRING);
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) {
            cli_cmd = commands[i].name;
            return commands[i].fn(argc - 1, argv + 1);
        }
    fprintf(stderr, "candor: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
