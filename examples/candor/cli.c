/* cli.c — shared helpers of the candor subcommands (see cli.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
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

bool cli_read_all(const char *path, size_t max, char **data, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        cli_error("%s: %s", path, strerror(errno));
        return false;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            if (cap > max) {
                cli_error("%s: larger than %zu bytes", path, max);
                free(buf);
                buf = NULL;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                cli_error("%s: read error", path);
                free(buf);
                buf = NULL;
            }
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    if (!buf)
        return false;
    *data = buf;
    *len = n;
    return true;
}
