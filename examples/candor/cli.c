/* cli.c — shared helpers of the candor subcommands (see cli.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../bytecount.h"
#include "cli.h"

const char *cli_prog = "candor";
const char *cli_cmd = "";
size_t cli_max_config_bytes;

void cli_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s%s%s: ", cli_prog, *cli_cmd ? " " : "", cli_cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s%s%s: ", cli_prog, *cli_cmd ? " " : "", cli_cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s%s%s --help'.\n", cli_prog, *cli_cmd ? " " : "", cli_cmd);
    return EXIT_USAGE;
}

int cli_common_option(struct cli_common *co, int c, const char *arg, const char *help)
{
    switch (c) {
    case OPT_CONFIG: co->config = arg; return 1;
    case OPT_STATE: co->state = arg; return 1;
    case OPT_MODEL: co->model = arg; return 1;
    case OPT_NOW:
        if (candor_time_parse(&co->now, arg) != CANDOR_OK) {
            cli_usage_error("--now %s: %s", arg, candor_errmsg());
            return -1;
        }
        co->now_set = true;
        return 1;
    case OPT_ADDRESS:
        if (co->n_addresses == sizeof co->addresses / sizeof co->addresses[0]) {
            cli_usage_error("too many --address options");
            return -1;
        }
        if (!strchr(arg, '@')) {
            cli_usage_error("--address %s: not local@domain", arg);
            return -1;
        }
        co->addresses[co->n_addresses++] = arg;
        return 1;
    case OPT_TRUSTED_AUTHSERV: co->trusted_authserv = arg; return 1;
    case OPT_MAX_CONFIG_BYTES:
        if (!parse_byte_count(arg, &co->max_config_bytes)) {
            cli_usage_error("--max-config-bytes %s: not a byte count (N, Nk, NM or NG, above 0)", arg);
            return -1;
        }
        return 1;
    case OPT_SENDER: co->sender = arg; return 1;
    case OPT_RECIPIENT: co->recipient = arg; return 1;
    case OPT_HELP:
        fputs(help, stdout);
        exit(EXIT_OK);
    case OPT_VERSION:
        printf("%s %s\n", cli_prog, candor_version_string());
        exit(EXIT_OK);
    }
    return 0;
}

int cli_exit_for(candor_status_t st)
{
    switch (st) {
    case CANDOR_OK: return EXIT_OK;
    case CANDOR_ETEMPFAIL: return EXIT_TEMPFAIL;
    case CANDOR_ECONFIG:
    case CANDOR_EINVAL: return EXIT_USAGE;
    default: return EXIT_PROBLEM;
    }
}

struct candor_ctx *cli_ctx(const struct cli_common *co, candor_status_t *status)
{
    candor_ctx_options_t o = CANDOR_CTX_OPTIONS_INIT;
    o.config_path = co->config;
    o.model_path = co->model;
    o.addresses = co->addresses;
    o.n_addresses = co->n_addresses;
    o.trusted_authserv = co->trusted_authserv;
    o.flags = co->ctx_flags;
    o.max_config_bytes = co->max_config_bytes ? co->max_config_bytes : cli_max_config_bytes;
    struct candor_ctx *ctx = NULL;
    candor_status_t st = candor_ctx_new(&ctx, &o);
    if (status)
        *status = st;
    if (st != CANDOR_OK) {
        cli_error("%s", candor_errmsg());
        return NULL;
    }
    return ctx;
}

struct candor_store *cli_store(const struct cli_common *co, const struct candor_ctx *ctx,
                               bool readonly, candor_status_t *status)
{
    struct candor_store *store = NULL;
    candor_status_t st = candor_store_open(&store, ctx, co->state,
                                           readonly ? CANDOR_STORE_READONLY : 0);
    if (status)
        *status = st;
    if (st != CANDOR_OK) {
        cli_error("%s", candor_errmsg());
        return NULL;
    }
    return store;
}

void cli_envelope(const struct cli_common *co, candor_envelope_t *env)
{
    candor_envelope_t e = CANDOR_ENVELOPE_INIT;
    e.sender = co->sender;
    e.recipient = co->recipient;
    e.now = co->now;
    *env = e;
}

bool cli_put_line(const char *s)
{
    if (fputs(s, stdout) == EOF || fputc('\n', stdout) == EOF)
        return false;
    return true;
}

int cli_read_stdin(size_t max, char **data, size_t *len)
{
    /* one byte past MAX tells "exactly MAX" from "more" */
    size_t want = max < SIZE_MAX ? max + 1 : max;
    size_t cap = want < 65536 ? want : 65536, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -1;
    for (;;) {
        if (n == cap) {
            if (cap == want)
                break;
            size_t nc = cap > want / 2 ? want : cap * 2;
            char *nb = realloc(buf, nc);
            if (!nb) {
                free(buf);
                return -1;
            }
            buf = nb;
            cap = nc;
        }
        ssize_t r = read(STDIN_FILENO, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            errno = e;
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *data = buf;
    *len = n;
    return n > max ? 0 : 1;
}

candor_status_t cli_parse_message(const struct candor_ctx *ctx, const char *file,
                                  struct candor_message **msg, char *reason, size_t reason_len)
{
    *msg = NULL;
    if (strcmp(file, "-") != 0) {
        candor_status_t st = candor_message_parse_file(msg, ctx, file);
        if (st != CANDOR_OK)
            snprintf(reason, reason_len, "%s", candor_errmsg());
        return st;
    }
    /* The context is loaded first, so standard input stops at the same
     * max-message-bytes as a file (<limits> or the default), with the
     * same status (CANDOR_ELIMIT) as candor_message_parse_file(). */
    size_t max = candor_ctx_limit(ctx, "max-message-bytes");
    char *data = NULL;
    size_t len = 0;
    errno = 0;
    int rd = cli_read_stdin(max, &data, &len);
    if (rd < 0) {
        snprintf(reason, reason_len, "standard input: %s", strerror(errno ? errno : ENOMEM));
        return errno && errno != ENOMEM ? CANDOR_EIO : CANDOR_ENOMEM;
    }
    if (rd == 0) {
        free(data);
        snprintf(reason, reason_len, "standard input: over the limit of %zu bytes", max);
        return CANDOR_ELIMIT;
    }
    candor_status_t st = candor_message_parse(msg, ctx, data, len);
    free(data);
    if (st != CANDOR_OK)
        snprintf(reason, reason_len, "%s", candor_errmsg());
    return st;
}
