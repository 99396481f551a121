/* cmd-ack.c — STUB: to be written (issue 4). */
#include "cli.h"
#include "commands.h"
int cmd_ack(int argc, char **argv) { (void)argc; (void)argv; cli_error("not implemented yet"); return EXIT_USAGE; }
int cmd_record_reply(int argc, char **argv) { (void)argc; (void)argv; cli_error("not implemented yet"); return EXIT_USAGE; }
int cmd_stats(int argc, char **argv) { (void)argc; (void)argv; cli_error("not implemented yet"); return EXIT_USAGE; }
