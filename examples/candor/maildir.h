/*
 * maildir.h — `candor triage --maildir DIR` (maildir.c, issue 9): walk
 * new/ and cur/ (and maildir++ subfolders with --recursive), triage in
 * parallel with output in a stable order, and apply headers or moves the
 * maildir-safe way. cmd-triage.c parses the options and calls this.
 *
 * Also the message rewriting that `candor filter` (cmd-filter.c) shares
 * with --apply headers, and handing an acknowledgement to sendmail.
 */
#ifndef CANDOR_MAILDIR_H
#define CANDOR_MAILDIR_H
#include <stdbool.h>
#include <stddef.h>
#include "cli.h"

enum triage_apply { APPLY_NONE = 0, APPLY_HEADERS, APPLY_MOVE };

struct triage_opts {
    const struct cli_common *co;
    bool recursive;
    int jobs;                 /* 0: the number of cores */
    enum triage_apply apply;
    bool dry_run;
    bool force;
    bool explain;
    bool ack;                 /* send acknowledgements for messages in new/ */
};

/* Returns the exit status (0, 1 when some message could not be read, 2, 75). */
int maildir_triage(struct candor_ctx *ctx, const char *dir, const struct triage_opts *o);

/* ---- shared with cmd-filter.c ---- */

/* True when the header section of the message (LEN bytes at DATA) has a
 * field whose name starts with "X-Candor-" (any case). */
bool mail_has_candor_fields(const char *data, size_t len);

/* True when the message carries Candor's label: an X-Candor-Intent field
 * above every Received field (a field below the first Received field was
 * written by the sender or an earlier hop, not by us, and is ignored).
 * --apply headers skips such messages unless --force. */
bool mail_is_labelled(const char *data, size_t len);

/* The line ending the message uses in its header: "\r\n" or "\n". */
const char *mail_eol(const char *data, size_t len);

/* The message with FIELDS (a finished block of header lines, may be "")
 * added at the top -- after a leading mbox "From " line, which stays
 * first -- and every X-Candor-* field of the original removed (with its
 * continuation lines). Every other byte is kept as it was. Returns a
 * malloc'd buffer (*OUT_LEN bytes, not NUL-terminated) or NULL when out
 * of memory. */
char *mail_relabel(const char *data, size_t len, const char *fields, size_t *out_len);

/* Hand the acknowledgement ACK (send=1) to the configured sendmail
 * command (envelope sender <>) and mark it sent in STORE. Returns 0 when
 * handed over; -1 with a message printed when not (the acknowledgement
 * then stays pending in the state). */
int mail_send_ack(const struct candor_ctx *ctx, struct candor_store *store,
                  const struct candor_ack *ack, int64_t now);
#endif
