/* commands.h — the candor subcommands, one file each (cmd-*.c). Each gets
 * argv with argv[0] = the subcommand name and returns an exit status. */
#ifndef CANDOR_COMMANDS_H
#define CANDOR_COMMANDS_H
int cmd_parse(int argc, char **argv);         /* cmd-parse.c */
int cmd_triage(int argc, char **argv);        /* cmd-triage.c */
int cmd_train(int argc, char **argv);         /* cmd-train.c */
int cmd_ack(int argc, char **argv);           /* cmd-ack.c */
int cmd_record_reply(int argc, char **argv);  /* cmd-ack.c */
int cmd_stats(int argc, char **argv);         /* cmd-ack.c */
int cmd_check(int argc, char **argv);         /* cmd-check.c */
int cmd_filter(int argc, char **argv);        /* cmd-filter.c */
int cmd_store(int argc, char **argv);         /* cmd-store.c */
#endif
