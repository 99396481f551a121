/*
 * cli.h — what the `candor` subcommands share: common options, the
 * context, reading mail, writing JSON lines, exit statuses (sysexits).
 * Uses nothing but candor.h.
 */
#ifndef CANDOR_CLI_H
#define CANDOR_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "candor.h"

#define EXIT_OK 0
#define EXIT_PROBLEM 1      /* ran, found a problem it reports */
#define EXIT_USAGE 2        /* bad usage or configuration */
#define EXIT_TEMPFAIL 75    /* EX_TEMPFAIL: retry later */

/* Options every subcommand that touches mail understands. */
struct cli_common {
    const char *config;
    const char *state;
    const char *model;
    const char *addresses[64];
    size_t n_addresses;
    const char *trusted_authserv;
    const char *sender;
    const char *recipient;
    int64_t now;               /* 0: the clock */
    bool now_set;
    unsigned int ctx_flags;    /* CANDOR_CTX_* for cli_ctx() (parse: parse only) */
    size_t max_config_bytes;   /* --max-config-bytes; 0: cli_max_config_bytes */
};

/* getopt_long ids for the common options (above any short option). */
enum {
    OPT_CONFIG = 1000, OPT_STATE, OPT_NOW, OPT_ADDRESS, OPT_TRUSTED_AUTHSERV,
    OPT_SENDER, OPT_RECIPIENT, OPT_MODEL, OPT_HELP, OPT_VERSION, OPT_MAX_CONFIG_BYTES,
    OPT_FIRST_FREE = 1100
};

/* The common long options, to copy into a subcommand's table:
 *   { "config", required_argument, NULL, OPT_CONFIG }, ... */
#define CLI_COMMON_OPTIONS \
    { "config", required_argument, NULL, OPT_CONFIG }, \
    { "state", required_argument, NULL, OPT_STATE }, \
    { "now", required_argument, NULL, OPT_NOW }, \
    { "address", required_argument, NULL, OPT_ADDRESS }, \
    { "trusted-authserv", required_argument, NULL, OPT_TRUSTED_AUTHSERV }, \
    { "sender", required_argument, NULL, OPT_SENDER }, \
    { "recipient", required_argument, NULL, OPT_RECIPIENT }, \
    { "model", required_argument, NULL, OPT_MODEL }, \
    { "help", no_argument, NULL, OPT_HELP }, \
    { "version", no_argument, NULL, OPT_VERSION }, \
    { "max-config-bytes", required_argument, NULL, OPT_MAX_CONFIG_BYTES }

extern const char *cli_prog;   /* "candor" */
extern const char *cli_cmd;    /* the subcommand name */
/* The global --max-config-bytes (before the subcommand); 0: the library's
 * default (CANDOR_DEFAULT_MAX_CONFIG_BYTES). */
extern size_t cli_max_config_bytes;

/* Handle a common option id C with OPTARG. Returns 1 if handled, 0 if not a
 * common option, -1 on a bad value (message printed). HELP is the
 * subcommand's usage text (printed for --help, then exit 0). */
int cli_common_option(struct cli_common *co, int c, const char *optarg, const char *help);

/* Print "candor CMD: MSG" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print usage error plus a hint to try --help; returns EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Map a library status to an exit status (ETEMPFAIL -> 75, ECONFIG/EINVAL
 * -> 2, else 1). */
int cli_exit_for(candor_status_t st);

/* Create the context from the common options; prints the error and returns
 * NULL on failure (*STATUS set). */
struct candor_ctx *cli_ctx(const struct cli_common *co, candor_status_t *status);

/* Open the state: --state, else the config's path. READONLY as for triage
 * and check. Prints the error and returns NULL on failure. */
struct candor_store *cli_store(const struct cli_common *co, const struct candor_ctx *ctx,
                               bool readonly, candor_status_t *status);

/* Fill an envelope from the common options. */
void cli_envelope(const struct cli_common *co, candor_envelope_t *env);

/* Write one line (JSON + "\n") to stdout; false when stdout fails. */
bool cli_put_line(const char *s);

/* Read standard input up to MAX bytes. 1: all of it in *DATA (*LEN
 * bytes, yours to free); 0: more than MAX (the first MAX + 1 bytes in
 * *DATA, the rest unread); -1: read error or out of memory (errno). */
int cli_read_stdin(size_t max, char **data, size_t *len);

/* Parse FILE ("-": standard input) with CTX's limits: a file through
 * candor_message_parse_file(); standard input read here and refused past
 * the context's max-message-bytes with CANDOR_ELIMIT, as a file is. On
 * failure REASON gets the message for the "errors" of the output. */
candor_status_t cli_parse_message(const struct candor_ctx *ctx, const char *file,
                                  struct candor_message **msg, char *reason,
                                  size_t reason_len);

#endif
