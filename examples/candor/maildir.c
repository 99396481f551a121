/* maildir.c — STUB: to be written (issue 9). */
#include "maildir.h"
int maildir_triage(struct candor_ctx *ctx, const char *dir, const struct triage_opts *o)
{ (void)ctx; (void)dir; (void)o; cli_error("--maildir: not implemented yet"); return EXIT_USAGE; }
