/*
 * cmd-filter.c — `candor filter`: one message on stdin, the same message
 * with X-Candor-* fields at the top on stdout (CONTRACT.md), for delivery
 * agents: Dovecot Sieve (vnd.dovecot.filter), procmail (:0 fw), maildrop
 * (xfilter).
 *
 * The safety argument: nothing is written before the whole message is in
 * memory and labelled, so stdout gets the complete message or nothing;
 * every failure exits non-zero, and the delivery agent then goes on with
 * the message as it was (Sieve, procmail) or keeps it for a retry
 * (maildrop, or procmail with an `:0 e` recipe). Existing X-Candor-*
 * fields are removed, so a sender cannot pre-label their own mail.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "commands.h"
#include "maildir.h"

static const char help[] =
"Usage: candor filter [OPTION]... < MESSAGE > LABELLED\n"
"\n"
"Read one message on standard input and write it to standard output with\n"
"these fields added at the top (after an mbox \"From \" line, if any):\n"
"X-Candor-Intent, -Confidence, -Urgency, -Sentiment, -Churn-Risk, -Ticket (when\n"
"the state assigned one) and -Autoreply. Any X-Candor-* field already in the\n"
"message is removed first; every other byte, the body included, is unchanged.\n"
"The message is read completely before anything is written: standard output\n"
"gets the whole labelled message or nothing. A message over the configuration's\n"
"<limits max-message-bytes> (default 64 MiB) is passed through unlabelled.\n"
"\n"
"Options:\n"
"      --config FILE   configuration (default: $CANDOR_CONFIG, else the installed one)\n"
"      --state FILE    state database (default: the configuration's)\n"
"      --ack           decide on an acknowledgement, record it in the state and,\n"
"                      once the message is written out, hand it to the configured\n"
"                      sendmail command (envelope sender <>)\n"
"      --address ADDR  one of our own addresses (repeatable; overrides the config)\n"
"      --trusted-authserv ID  the authserv-id whose Authentication-Results count\n"
"      --sender ADDR   envelope sender (default: Return-Path, Sender, then From)\n"
"      --recipient ADDR  envelope recipient (default: the topmost Delivered-To)\n"
"      --now TIME      the time to use (RFC 3339; default: the clock)\n"
"      --model FILE    intent model (default: the configuration's)\n"
"      --help          show this help and exit\n"
"      --version       show the version and exit\n"
"\n"
"Delivery agents:\n"
"  Dovecot Sieve:  filter \"candor-filter\";   (vnd.dovecot.filter, global script)\n"
"  procmail:       :0 fw\n"
"                  | candor filter\n"
"  maildrop:       exception {\n"
"                      xfilter \"candor filter\"\n"
"                  }\n"
"\n"
"Exit status: 0 the labelled message was written; 2 bad usage or an invalid\n"
"configuration; 75 a temporary failure (unreadable configuration or state, state\n"
"busy, out of memory, read or write error). On any non-zero status Sieve and\n"
"procmail deliver the message as it was; maildrop's xfilter keeps it for a\n"
"retry unless it runs inside `exception { }`.\n";

enum { OPT_ACK = OPT_FIRST_FREE };

/* Passing a message over the limit through (unlabelled but with any
 * X-Candor-* fields removed): the header is in the first part. */
static int pass_through(const char *head, size_t hlen, size_t max)
{
    size_t olen = 0;
    char *out = mail_relabel(head, hlen, "", &olen);
    if (!out)
        return EXIT_TEMPFAIL;
    bool ok = fwrite(out, 1, olen, stdout) == olen;
    free(out);
    char buf[65536];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, stdin)) > 0)
        ok = fwrite(buf, 1, n, stdout) == n;
    if (ferror(stdin) || fflush(stdout) != 0 || !ok) {
        cli_error("passing a large message through failed: %s", strerror(errno));
        return EXIT_TEMPFAIL;
    }
    cli_error("message larger than %zu bytes (max-message-bytes): passed through unlabelled",
              max);
    return EXIT_OK;
}

int cmd_filter(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        { "ack", no_argument, NULL, OPT_ACK },
        { NULL, 0, NULL, 0 },
    };
    struct cli_common co = {0};
    bool ack = false;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int r = cli_common_option(&co, c, optarg, help);
        if (r < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        if (c == OPT_ACK)
            ack = true;
        else
            return cli_usage_error("unknown option");
    }
    if (optind < argc)
        return cli_usage_error("the message comes on standard input, not as '%s'", argv[optind]);
    signal(SIGPIPE, SIG_IGN);   /* a closed stdout is an error status, not a kill */

    int rc = EXIT_TEMPFAIL;
    char *data = NULL;
    size_t len = 0;
    struct candor_ctx *ctx = NULL;
    struct candor_store *store = NULL;
    struct candor_message *msg = NULL;
    struct candor_result *res = NULL;
    struct candor_ack *ak = NULL;
    char *fields = NULL, *out = NULL;
    candor_status_t st;

    /* The configuration first, then the message: standard input is read
     * up to the configuration's max-message-bytes (<limits>, else the
     * default 64 MiB). Nothing is lost by the order: stdout is written
     * only after the whole message is read, so a configuration that fails
     * to load exits non-zero with nothing written, and the delivery agent
     * still holds the message and delivers it as it was (or retries). */
    ctx = cli_ctx(&co, &st);
    if (!ctx) {
        /* An invalid configuration is bad configuration (2); one that
         * cannot be read now may be readable on the retry (75). */
        rc = st == CANDOR_ECONFIG || st == CANDOR_EINVAL ? EXIT_USAGE : EXIT_TEMPFAIL;
        const char *cf = co.config ? co.config : getenv("CANDOR_CONFIG");
        int fd = cf ? open(cf, O_RDONLY | O_CLOEXEC) : -1;
        if (cf && fd < 0)
            rc = EXIT_TEMPFAIL;
        if (fd >= 0)
            close(fd);
        /* Consume the message as before the order changed, so the delivery
         * agent's write into the pipe never fails half-way. */
        char sink[65536];
        errno = 0;
        while (read(STDIN_FILENO, sink, sizeof sink) > 0 || errno == EINTR)
            errno = 0;
        goto out;
    }
    size_t max = candor_ctx_limit(ctx, "max-message-bytes");
    errno = 0;
    int rd = cli_read_stdin(max, &data, &len);
    if (rd < 0) {
        cli_error("standard input: %s", strerror(errno ? errno : ENOMEM));
        goto out;
    }
    if (rd == 0) {
        /* Over the limit: pass it through unlabelled, never lose it. */
        rc = pass_through(data, len, max);
        goto out;
    }
    st = candor_store_open(&store, ctx, co.state, ack ? 0 : CANDOR_STORE_READONLY);
    if (st != CANDOR_OK) {
        if (ack || co.state) {
            cli_error("state: %s", candor_errmsg());
            rc = st == CANDOR_EINVAL ? EXIT_USAGE : EXIT_TEMPFAIL;
            goto out;
        }
        store = NULL;   /* no state configured: no thread or rate checks */
    }
    st = candor_message_parse(&msg, ctx, data, len);
    if (st == CANDOR_ELIMIT) {
        /* Nothing useful could be read: deliver it unlabelled, never lose it. */
        cli_error("%s: passed through unlabelled", candor_errmsg());
        free(fields);
        fields = strdup("");
        goto write;
    }
    if (st != CANDOR_OK) {
        cli_error("parse: %s", candor_errmsg());
        goto out;
    }
    candor_envelope_t env;
    cli_envelope(&co, &env);
    st = candor_triage(&res, ctx, msg, store, &env, 0);
    if (st != CANDOR_OK) {
        cli_error("triage: %s", candor_errmsg());
        goto out;
    }
    if (ack) {
        st = candor_ack(&ak, ctx, store, msg, &env);
        if (st != CANDOR_OK) {
            cli_error("ack: %s", candor_errmsg());
            goto out;
        }
    }
    char *hdr = NULL;
    st = candor_result_headers(res, ak ? candor_ack_ticket(ak) : NULL, mail_eol(data, len), &hdr);
    if (st != CANDOR_OK) {
        cli_error("headers: %s", candor_errmsg());
        goto out;
    }
    fields = strdup(hdr);
    candor_free(hdr);
write:
    if (!fields) {
        cli_error("out of memory");
        goto out;
    }
    size_t olen = 0;
    out = mail_relabel(data, len, fields, &olen);
    if (!out) {
        cli_error("out of memory");
        goto out;
    }
    if (fwrite(out, 1, olen, stdout) != olen || fflush(stdout) != 0) {
        cli_error("standard output: %s", strerror(errno));
        goto out;
    }
    rc = EXIT_OK;
    /* The labelled message is out; now the acknowledgement may leave. If
     * sendmail fails it stays pending in the state (candor ack resends). */
    if (ak && candor_ack_send(ak))
        mail_send_ack(ctx, store, ak, co.now);
out:
    free(out);
    free(fields);
    candor_ack_free(ak);
    candor_result_free(res);
    candor_message_free(msg);
    candor_store_free(store);
    candor_ctx_free(ctx);
    free(data);
    return rc;
}
