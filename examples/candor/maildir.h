/*
 * maildir.h — `candor triage --maildir DIR` (maildir.c, issue 9): walk
 * new/ and cur/ (and maildir++ subfolders with --recursive), triage in
 * parallel with output in a stable order, and apply headers or moves the
 * maildir-safe way. cmd-triage.c parses the options and calls this.
 */
#ifndef CANDOR_MAILDIR_H
#define CANDOR_MAILDIR_H
#include <stdbool.h>
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
#endif
