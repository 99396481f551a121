/*
 * text.h — text module: HTML to text, quote/signature splitting, token
 * and sentence helpers. Owned by text.c.
 */
#ifndef CANDOR_TEXT_H
#define CANDOR_TEXT_H

#include "internal.h"

/* Turn HTML (UTF-8) into readable text with libxml2's HTML parser: no
 * script/style, block elements become line breaks, entities decoded, links
 * keep their text. MAX_DEPTH bounds element nesting. Returns a new string
 * (free()) or NULL on OOM; *TRUNCATED set when a limit cut it short. */
CANDOR_HIDDEN char *candor__html_to_text(const char *html, size_t len,
                                         size_t max_depth, size_t max_out,
                                         bool *truncated);

/* Split TEXT into the new text, the quoted history and the signature
 * (English, French, German, Spanish attributions; "> " lines; Outlook
 * "-----Original Message-----" and "From:/Sent:" blocks; "-- " and
 * "Sent from my ..."). Outputs are new strings (free()); SIGNATURE may be
 * set to NULL when there is none. Returns false on OOM. */
CANDOR_HIDDEN bool candor__text_split(const char *text, char **new_text,
                                      char **quoted, char **signature);

/* Undo RFC 3676 format=flowed: a line ending in a space is joined with
 * the next line of the same quote depth (DELSP: the space is removed);
 * space-stuffing is removed; "-- " stays a signature separator. Returns a
 * new string (free()) or NULL on OOM. */
CANDOR_HIDDEN char *candor__text_unflow(const char *text, bool delsp);

#endif
