/*
 * message.h — the parsed message, shared read-only by the modules that
 * work on it (triage, autoreply, ack, canned). Owned by message.c.
 */
#ifndef CANDOR_MESSAGE_H
#define CANDOR_MESSAGE_H

#include "internal.h"

struct candor_addr {
    char *name;      /* decoded display name, UTF-8, or NULL */
    char *address;   /* local@domain as written (not lower-cased), or NULL */
};

struct candor_addrlist {
    struct candor_addr *v;
    size_t n;
};

struct candor_attachment {
    char *filename;      /* decoded (RFC 2047 / RFC 2231), or NULL */
    char *content_type;  /* "type/subtype", lower-case */
    size_t size;         /* decoded size in bytes */
};

/* A raw header field: NAME as written; VALUE unfolded (CRLF/LF + WSP ->
 * the WSP), not decoded, leading/trailing white space trimmed, sanitised
 * to valid UTF-8. Both live in blocks the message owns (never free them). */
struct candor_header {
    char *name;
    char *value;
};

struct candor_message {
    const struct candor_ctx *ctx;

    /* RFC 5322 header, in order */
    struct candor_header *headers;
    size_t n_headers;

    char *message_id;              /* without <> */
    struct candor_addr from;
    struct candor_addr sender;     /* Sender: field */
    struct candor_addrlist to, cc, bcc, reply_to;
    struct candor_addrlist resent_to, resent_cc, resent_bcc;
    char *return_path;             /* address inside Return-Path; "" for <> ; NULL absent */
    struct candor_strv delivered_to; /* Delivered-To addresses, topmost first */
    char *subject;                 /* decoded UTF-8 */
    int64_t date;                  /* Unix time UTC */
    bool has_date;
    char *in_reply_to;             /* first id, without <> */
    struct candor_strv references; /* ids without <> */
    char *auto_submitted;          /* raw field value */
    char *list_id;                 /* raw field value */
    char *content_type;            /* top-level "type/subtype", lower-case */

    char *text;                    /* readable text, UTF-8 */
    char *new_text;                /* text without quoted history and signature */
    char *quoted_text;             /* the quoted history that was removed ("" if none) */
    char *signature;               /* the signature that was removed, or NULL */
    bool text_from_html;           /* the body came from text/html */

    struct candor_attachment *attachments;
    size_t n_attachments;

    struct candor_strv errors;     /* human-readable problems */

    void *strings;                 /* the blocks headers[] point into (message.c) */

    size_t raw_len;                /* length of the raw message */
    size_t body_offset;            /* offset of the body in the raw message */
};

/* The value of the Nth (from 0) header field named NAME (ASCII
 * case-insensitive), or NULL. */
CANDOR_HIDDEN const char *candor__message_header(const struct candor_message *msg,
                                                 const char *name, size_t nth);
/* Add an error entry (printf-style); false on OOM. */
CANDOR_HIDDEN bool candor__message_add_error(struct candor_message *msg,
                                             const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Tests only, not thread-safe: the shortest run of lines left out of
 * libetpan's copy (message.c; SIZE_MAX: none). */
CANDOR_HIDDEN void candor__message_set_elide_min(size_t n);

/* Build the json-c object of CONTRACT.md's `candor parse` for MSG. WITH_TEXT
 * false leaves out "text" (as `triage` wants). Returns a struct json_object *
 * (declared void * so this header does not need json-c). */
CANDOR_HIDDEN void *candor__message_json(const struct candor_message *msg,
                                         const char *file, bool with_text);

#endif
