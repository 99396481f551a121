/* text.c — STUB: to be written (issue 2). */
#include "text.h"
char *candor__html_to_text(const char *html, size_t len, size_t max_depth, size_t max_out, bool *truncated)
{ (void)max_depth; (void)max_out; if (truncated) *truncated = false; return candor__strndup(html, len); }
bool candor__text_split(const char *text, char **new_text, char **quoted, char **signature)
{ *new_text = candor__strdup(text); *quoted = candor__strdup(""); *signature = NULL; return *new_text && *quoted; }
