/* cmd-check.c — STUB: to be written. */
#include "cli.h"
#include "commands.h"
int cmd_check(int argc, char **argv) { (void)argc; (void)argv; cli_error("not implemented yet"); return EXIT_USAGE; }
