/*
 * fuzz-ack.c — libFuzzer target: one raw message through candor_ack()
 * (triage, the auto-reply decision, ticket, promise and the composed
 * acknowledgement) on a real state file (SQLite on tmpfs), then
 * candor_record_reply() of the same message, as if it were a reply. The
 * clock moves two days per input so the rate limit does not hide the
 * composer. The acknowledgement is checked for header injection: CRLF
 * line ends only, no control bytes, no line over 998 bytes (RFC 5322
 * 2.1.1), every header line a continuation or one of the fields Candor
 * writes, each of those at most once; the recipient a bare address.
 */
#include <sys/stat.h>
#include <unistd.h>
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct candor_store *store;
static int64_t clock_now = 1790000000;

static const char *const fields[] = {
    "From", "To", "Subject", "Date", "Message-ID", "In-Reply-To", "References",
    "Auto-Submitted", "X-Loop", "Precedence", "X-Auto-Response-Suppress",
    "X-Candor-Ticket", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
    "Content-Language",
};
#define N_FIELDS (sizeof fields / sizeof fields[0])

static void check_ack(const char *m, const char *rcpt)
{
    FUZZ_CHECK(rcpt && strchr(rcpt, '@'), "an acknowledgement has a recipient");
    for (const unsigned char *p = (const unsigned char *)rcpt; *p; p++)
        FUZZ_CHECK(*p > ' ' && *p != 0x7f && *p != '<' && *p != '>' && *p != ',',
                   "the recipient is a bare address");
    fuzz_check_utf8(m, "acknowledgement is UTF-8");
    const char *end = strstr(m, "\r\n\r\n");
    FUZZ_CHECK(end != NULL, "acknowledgement has a header and a body");
    int seen[N_FIELDS] = {0};
    for (const char *line = m; line <= end;) {
        const char *eol = strstr(line, "\r\n");
        FUZZ_CHECK(eol != NULL, "header line ends with CRLF");
        size_t len = (size_t)(eol - line);
        FUZZ_CHECK(len <= 998, "header line at most 998 bytes");
        for (const char *p = line; p < eol; p++)
            FUZZ_CHECK((unsigned char)*p >= 0x20 || *p == '\t', "no control byte in the header");
        if (*line == ' ' || *line == '\t') {
            FUZZ_CHECK(line != m, "the header does not start with a continuation");
        } else {
            const char *colon = memchr(line, ':', len);
            FUZZ_CHECK(colon != NULL, "a header line is a field");
            size_t k = 0;
            while (k < N_FIELDS && !(strlen(fields[k]) == (size_t)(colon - line) &&
                                     strncmp(fields[k], line, (size_t)(colon - line)) == 0))
                k++;
            if (k == N_FIELDS)
                fprintf(stderr, "fuzz-ack: unexpected header line \"%.*s\"\n", (int)len, line);
            FUZZ_CHECK(k < N_FIELDS, "only the fields Candor writes");
            FUZZ_CHECK(!seen[k]++, "each field once");
        }
        line = eol + 2;
    }
    for (const char *p = end + 4; *p; p++) {
        if (*p == '\n')
            FUZZ_CHECK(p > end + 4 && p[-1] == '\r', "body lines end with CRLF");
        if (*p == '\r')
            FUZZ_CHECK(p[1] == '\n', "no bare CR in the body");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct candor_ctx *ctx = fuzz_ctx();
    if (!store) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        char dir[128], path[192];
        snprintf(dir, sizeof dir, "%s/candor-fuzz-ack-XXXXXX", base);
        FUZZ_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
        snprintf(path, sizeof path, "%s/state.db", dir);
        FUZZ_CHECK(candor_store_open(&store, ctx, path, 0) == CANDOR_OK, "store_open");
    }
    struct candor_message *msg = NULL;
    if (candor_message_parse(&msg, ctx, data, size) != CANDOR_OK)
        return 0;
    clock_now += 2 * 86400;
    candor_envelope_t env = CANDOR_ENVELOPE_INIT;
    env.now = clock_now;
    struct candor_ack *ack = NULL;
    if (candor_ack(&ack, ctx, store, msg, &env) == CANDOR_OK) {
        const char *m = candor_ack_message(ack);
        if (candor_ack_send(ack)) {
            FUZZ_CHECK(m != NULL, "send has a message");
            check_ack(m, candor_ack_recipient(ack));
        } else {
            FUZZ_CHECK(m == NULL, "no message when send is false");
        }
        fuzz_check_utf8(candor_ack_reason(ack), "reason is UTF-8");
        char *json = NULL;
        if (candor_ack_to_json(ack, &json) == CANDOR_OK)
            fuzz_check_json(json, "ack JSON parses back");
        candor_free(json);
        if (candor_ack_send(ack) && candor_ack_ticket(ack))
            (void)candor_store_ack_sent(store, candor_ack_ticket(ack), clock_now);
    }
    candor_ack_free(ack);
    char *json = NULL;
    if (candor_record_reply(ctx, store, msg, clock_now + 3600, &json) == CANDOR_OK)
        fuzz_check_json(json, "record-reply JSON parses back");
    candor_free(json);
    candor_message_free(msg);
    return 0;
}
