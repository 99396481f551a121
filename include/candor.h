/*
 * candor.h — the whole public API of libcandor.
 *
 * Candor reads support mail: it parses a message (any MIME shape, any
 * charset), triages it (intent, urgency, sentiment, churn risk, entities),
 * decides whether an automatic acknowledgement may be sent (RFC 3834) and
 * composes an honest one, and checks a human reply for canned-looking text.
 *
 * Conventions (see README.md, "Conventions"):
 *  - Every fallible call returns candor_status_t. On failure, a readable
 *    one-line message is kept for the calling thread; read it with
 *    candor_errmsg() before the next call that can fail on that thread.
 *  - Constructors (_new, _open, _parse) write their result to *out, which is
 *    the caller's to free with the matching _free(); on failure *out is NULL.
 *    Every _free() accepts NULL.
 *  - An accessor returning `const char *` lends memory owned by its parent
 *    object; it stays valid until that object is freed. A returned `char *`
 *    is the caller's and is freed with candor_free().
 *  - All strings in and out are NUL-terminated UTF-8, except raw mail, which
 *    enters as (data, len) bytes in any charset.
 *  - Times are seconds since the Unix epoch (UTC), int64_t. A `now` of 0
 *    means "the system clock".
 *
 * Threads: a struct candor_ctx is immutable once candor_ctx_new() returns and
 * may be used from any number of threads at once. Every other object
 * (message, result, ack, check, store, trainer) belongs to one thread at a
 * time: open one store per thread. Callbacks may run on any thread that
 * calls into Candor. The error message slot is per thread.
 *
 * This header includes no header of Candor's dependencies.
 */
#ifndef CANDOR_H
#define CANDOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Version and export                                                  */
/* ------------------------------------------------------------------ */

#if defined(CANDOR_BUILDING) && defined(__GNUC__)
#define CANDOR_API __attribute__((visibility("default")))
#else
#define CANDOR_API
#endif

#define CANDOR_VERSION_MAJOR 0
#define CANDOR_VERSION_MINOR 1
#define CANDOR_VERSION_PATCH 0
#define CANDOR_VERSION_STRING "0.1.0"
#define CANDOR_VERSION_NUMBER (CANDOR_VERSION_MAJOR * 10000 + \
                               CANDOR_VERSION_MINOR * 100 + CANDOR_VERSION_PATCH)

/* The version of the library actually loaded (compare with
 * CANDOR_VERSION_NUMBER to catch a header/library mismatch). Since 0.1 */
CANDOR_API int candor_version_number(void);
CANDOR_API const char *candor_version_string(void);

/* ------------------------------------------------------------------ */
/* Status codes and errors                                             */
/* ------------------------------------------------------------------ */

typedef enum candor_status {
    CANDOR_OK = 0,
    CANDOR_ERROR = -1,     /* unexpected: the message says what */
    CANDOR_ENOMEM = -2,    /* out of memory */
    CANDOR_EINVAL = -3,    /* misuse: NULL handle, bad option or argument */
    CANDOR_EIO = -4,       /* a file or the state could not be read/written */
    CANDOR_ECONFIG = -5,   /* bad configuration; message starts "file:line: " */
    CANDOR_ELIMIT = -6,    /* input over a configured limit */
    CANDOR_ETEMPFAIL = -7, /* temporary failure, retry later (sysexits 75) */
    CANDOR_ENOTFOUND = -8  /* the thing asked for does not exist */
} candor_status_t;

/* The calling thread's message for its last failure ("what: why"), or "" if
 * none. Valid until the next failing call on this thread. Since 0.1 */
CANDOR_API const char *candor_errmsg(void);

/* A static name for a status code ("CANDOR_EIO"). Since 0.1 */
CANDOR_API const char *candor_status_str(candor_status_t status);

/* Free a `char *` returned by Candor. NULL is fine. Since 0.1 */
CANDOR_API void candor_free(void *ptr);

/* One-time initialisation of the dependencies; idempotent and thread-safe.
 * Called by candor_ctx_new(), so calling it yourself is optional. Since 0.1 */
CANDOR_API candor_status_t candor_init(void);

/* ------------------------------------------------------------------ */
/* Logging                                                             */
/* ------------------------------------------------------------------ */

typedef enum candor_log_level {
    CANDOR_LOG_ERROR = 0,
    CANDOR_LOG_WARN = 1,
    CANDOR_LOG_INFO = 2,
    CANDOR_LOG_DEBUG = 3
} candor_log_level_t;

/* LINE is one finished line without CR, LF or control bytes. */
typedef void (*candor_log_fn_t)(candor_log_level_t level, const char *line,
                                void *data);

/* ------------------------------------------------------------------ */
/* Context: configuration, model and limits, shared read-only           */
/* ------------------------------------------------------------------ */

struct candor_ctx;

/* Default limits for hostile input (see README.md "Limits"). */
#define CANDOR_DEFAULT_MAX_MESSAGE_BYTES (64u * 1024u * 1024u)
#define CANDOR_DEFAULT_MAX_HEADER_BYTES (1024u * 1024u)
#define CANDOR_DEFAULT_MAX_HEADERS 1000u
#define CANDOR_DEFAULT_MAX_MIME_DEPTH 20u
#define CANDOR_DEFAULT_MAX_MIME_PARTS 500u
#define CANDOR_DEFAULT_MAX_LINE_BYTES (1024u * 1024u)
#define CANDOR_DEFAULT_MAX_DECODED_BYTES (128u * 1024u * 1024u)
#define CANDOR_DEFAULT_MAX_TEXT_BYTES (1024u * 1024u)
#define CANDOR_DEFAULT_MAX_HTML_DEPTH 256u
#define CANDOR_DEFAULT_MAX_CONFIG_BYTES (4u * 1024u * 1024u)

/* 2 appended max_config_bytes, 3 flags; callers of an older version
 * (a shorter struct) are still accepted. */
#define CANDOR_CTX_OPTIONS_VERSION 3

/* candor_ctx_options_t.flags: a context for parsing only. The rules and
 * the model are not loaded (the configuration is still read and
 * validated whole): start-up is faster and smaller, and candor_triage(),
 * candor_ack() and candor_trainer_new() on such a context fail with
 * CANDOR_EINVAL. Since 0.1 */
#define CANDOR_CTX_PARSE_ONLY 1u

typedef struct candor_ctx_options {
    unsigned int version;          /* CANDOR_CTX_OPTIONS_VERSION */
    const char *config_path;       /* NULL: $CANDOR_CONFIG, else the installed default */
    const char *model_path;        /* NULL: the config's model, else the installed default */
    /* Our own addresses, overriding the config's when n_addresses > 0
     * (`local+tag@domain` matches `local@domain`). Copied. */
    const char *const *addresses;
    size_t n_addresses;
    const char *trusted_authserv;  /* NULL: the config's */
    /* Limits; 0 means the CANDOR_DEFAULT_* value. */
    size_t max_message_bytes;
    size_t max_header_bytes;
    size_t max_headers;
    size_t max_mime_depth;
    size_t max_mime_parts;
    size_t max_line_bytes;
    size_t max_decoded_bytes;
    size_t max_text_bytes;         /* text kept for triage and output */
    size_t max_html_depth;
    candor_log_fn_t log_fn;        /* NULL: silent */
    void *log_data;
    /* Version 2. The configuration file (and the schema) are refused when
     * larger: 0 means CANDOR_DEFAULT_MAX_CONFIG_BYTES. Since 0.1 */
    size_t max_config_bytes;
    /* Version 3. CANDOR_CTX_* flags (0: a full context). Since 0.1 */
    unsigned int flags;
} candor_ctx_options_t;

#define CANDOR_CTX_OPTIONS_INIT { CANDOR_CTX_OPTIONS_VERSION, NULL, NULL, NULL, 0, \
        NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, 0, 0 }

/* Function twin of CANDOR_CTX_OPTIONS_INIT (for bindings): VERSION 1, 2
 * or 3; it fills only the fields that version has (1: up to log_data, 2:
 * up to max_config_bytes). Since 0.1 */
CANDOR_API candor_status_t candor_ctx_options_init(candor_ctx_options_t *opts,
                                                   unsigned int version);

/* Load the configuration (validated against the shipped schema) and the
 * model. OPTS may be NULL (all defaults).
 * Fails: CANDOR_ECONFIG (message "file:line: what"), CANDOR_EIO,
 * CANDOR_EINVAL (unknown options version), CANDOR_ENOMEM.
 * Owns: *OUT is yours, free with candor_ctx_free(). Since 0.1 */
CANDOR_API candor_status_t candor_ctx_new(struct candor_ctx **out,
                                          const candor_ctx_options_t *opts);
CANDOR_API void candor_ctx_free(struct candor_ctx *ctx);

/* The state path from the configuration (NULL: none). Borrowed. Since 0.1 */
CANDOR_API const char *candor_ctx_state_path(const struct candor_ctx *ctx);
/* The sendmail command from the configuration (NULL: none). Borrowed. */
CANDOR_API const char *candor_ctx_sendmail(const struct candor_ctx *ctx);
/* The path of the configuration file that was loaded. Borrowed. */
CANDOR_API const char *candor_ctx_config_path(const struct candor_ctx *ctx);
/* An integer setting of the daemon section of the configuration, by name
 * ("max_connections", "idle_timeout", ...); DEFAULT when absent. */
CANDOR_API long candor_ctx_setting_int(const struct candor_ctx *ctx,
                                       const char *name, long dflt);
/* A string setting of the daemon section (NULL when absent). Borrowed. */
CANDOR_API const char *candor_ctx_setting_str(const struct candor_ctx *ctx,
                                              const char *name);
/* A limit in force in CTX (the default, else the <limits> attribute, else
 * the option), by the attribute's name: "max-message-bytes",
 * "max-header-bytes", "max-headers", "max-mime-depth", "max-mime-parts",
 * "max-line-bytes", "max-decoded-bytes", "max-text-bytes",
 * "max-html-depth", or "max-config-bytes" ('_' for '-' works too). For a
 * caller that reads a message itself, e.g. from a pipe, and must stop where
 * candor_message_parse_file() would. 0 for an unknown name or NULL. */
CANDOR_API size_t candor_ctx_limit(const struct candor_ctx *ctx, const char *name);

/* ------------------------------------------------------------------ */
/* Message: parsing                                                    */
/* ------------------------------------------------------------------ */

struct candor_message;

/* Parse one message from LEN bytes at DATA (any charset, LF or CRLF).
 * Damaged mail still succeeds: what could not be read is listed by
 * candor_message_error(). Over-limit input also succeeds with an error
 * entry when something useful could be read, else fails with CANDOR_ELIMIT.
 * Fails: CANDOR_ELIMIT, CANDOR_ENOMEM, CANDOR_EINVAL.
 * Owns: *OUT is yours, free with candor_message_free(). Since 0.1 */
CANDOR_API candor_status_t candor_message_parse(struct candor_message **out,
        const struct candor_ctx *ctx, const void *data, size_t len);
/* Read and parse a file (a limit check on its size comes first). */
CANDOR_API candor_status_t candor_message_parse_file(struct candor_message **out,
        const struct candor_ctx *ctx, const char *path);
CANDOR_API void candor_message_free(struct candor_message *msg);

/* Accessors: borrowed from MSG; NULL when absent. */
CANDOR_API const char *candor_message_id(const struct candor_message *msg);
CANDOR_API const char *candor_message_subject(const struct candor_message *msg);
CANDOR_API const char *candor_message_from_address(const struct candor_message *msg);
CANDOR_API const char *candor_message_from_name(const struct candor_message *msg);
CANDOR_API const char *candor_message_text(const struct candor_message *msg);
CANDOR_API const char *candor_message_new_text(const struct candor_message *msg);
/* Date as Unix time; 0 when absent or unreadable. */
CANDOR_API int64_t candor_message_date(const struct candor_message *msg);
CANDOR_API size_t candor_message_error_count(const struct candor_message *msg);
CANDOR_API const char *candor_message_error(const struct candor_message *msg, size_t i);
/* Byte offset of the body in the raw message (after the blank line), and
 * the length of the raw message as given. */
CANDOR_API size_t candor_message_body_offset(const struct candor_message *msg);

/* The `candor parse` JSON object (CONTRACT.md). FILE is the "file" member
 * (NULL: null). Owns: *JSON is yours, candor_free(). Since 0.1 */
CANDOR_API candor_status_t candor_message_to_json(const struct candor_message *msg,
        const char *file, char **json);

/* The `candor parse` object for a file that could not be read at all:
 * every field null or empty and "errors": [REASON]. FILE may be NULL.
 * Owns: *JSON is yours, candor_free(). Since 0.1 */
CANDOR_API candor_status_t candor_message_unreadable_json(const char *file,
        const char *reason, char **json);

/* ------------------------------------------------------------------ */
/* Envelope: who sent the message to whom, and when                    */
/* ------------------------------------------------------------------ */

#define CANDOR_ENVELOPE_VERSION 1

typedef struct candor_envelope {
    unsigned int version;      /* CANDOR_ENVELOPE_VERSION */
    /* Envelope sender: NULL = take it from the message (Return-Path, else
     * Sender, else From); "" or "<>" = the null sender. */
    const char *sender;
    /* Envelope recipient: NULL = the topmost Delivered-To of the message. */
    const char *recipient;
    int64_t now;               /* 0: the clock */
} candor_envelope_t;

#define CANDOR_ENVELOPE_INIT { CANDOR_ENVELOPE_VERSION, NULL, NULL, 0 }
CANDOR_API candor_status_t candor_envelope_init(candor_envelope_t *env,
                                                unsigned int version);

/* ------------------------------------------------------------------ */
/* State store (SQLite or PostgreSQL; one handle per thread)           */
/* ------------------------------------------------------------------ */

struct candor_store;

#define CANDOR_STORE_READONLY 1u   /* triage and check only read */

/* Open (creating and migrating as needed unless READONLY) the state at PATH
 * (NULL: the config's state path). PATH is an SQLite file, or a PostgreSQL
 * server shared by several hosts: a libpq connection string, either a URI
 * ("postgresql://user@host/db", "postgres://...") or keywords ("host=...
 * dbname=..."). A READONLY open of a missing file succeeds and behaves as
 * an empty state; a READONLY open of a PostgreSQL database without the
 * schema creates it.
 * Fails: CANDOR_EIO, CANDOR_ETEMPFAIL (locked/busy past the timeout; the
 * PostgreSQL server unreachable, restarting or lost: then every later call
 * fails so too until the connection comes back, which the handle retries by
 * itself), CANDOR_EINVAL. Owns: *OUT is yours, candor_store_free(). Since 0.1 */
CANDOR_API candor_status_t candor_store_open(struct candor_store **out,
        const struct candor_ctx *ctx, const char *path, unsigned int flags);
CANDOR_API void candor_store_free(struct candor_store *store);

/* Group the writes that follow on STORE into one transaction, made
 * durable by one commit (one disk flush instead of one per write): every
 * library call that writes the store (the delivery log, candor_ack,
 * candor_ack_batch, ...) joins it instead of committing on its own. Calls
 * nest; only the outermost commit counts. A write transaction: on SQLite
 * the file's write lock is held until the commit or rollback (other
 * handles wait, up to the busy timeout); on PostgreSQL the decision lock.
 * Keep groups short.
 * candor_store_commit: when a call inside the group failed in a way that
 * rolled it back (or the commit itself fails), nothing of the group is
 * kept and CANDOR_ERROR (or the commit's status) is returned: the caller
 * must treat every write of the group as not done. A library call that
 * fails inside a group may have rolled it back; call candor_store_rollback
 * after any failure you do not retry (harmless when already rolled back).
 * Fails: CANDOR_EINVAL (no handle; commit without begin), CANDOR_ETEMPFAIL
 * (busy past the timeout, server away), CANDOR_EIO, CANDOR_ERROR. Since 0.1 */
CANDOR_API candor_status_t candor_store_begin(struct candor_store *store);
CANDOR_API candor_status_t candor_store_commit(struct candor_store *store);
CANDOR_API void candor_store_rollback(struct candor_store *store);

#define CANDOR_STORE_COPY_FORCE 1u   /* replace what the target holds */

/* Copy the whole state at FROM (any store PATH as for candor_store_open)
 * into the state at TO: every table, ids kept, the target's id sequences
 * moved past the copied ids (the next ticket number is new), all in one
 * transaction on TO (nothing is left of a failed copy). A TO that already
 * holds rows is refused (CANDOR_EINVAL) unless FLAGS has
 * CANDOR_STORE_COPY_FORCE, which empties it first. FROM is only read.
 * *JSON (may be NULL) gets {"table": rows copied, ...}.
 * Fails: CANDOR_EINVAL, CANDOR_EIO, CANDOR_ETEMPFAIL, CANDOR_ENOMEM.
 * Owns: *JSON is yours, candor_free(); NULL on failure. Since 0.1 */
CANDOR_API candor_status_t candor_store_copy(const struct candor_ctx *ctx, const char *from,
        const char *to, unsigned int flags, char **json);

/* ------------------------------------------------------------------ */
/* Delivery log (store-delivery.c; used by candor-lmtpd)               */
/* ------------------------------------------------------------------ */

/* The delivery log lives in the state store: one row per message put into
 * a maildir, under a KEY the caller derives (candor-lmtpd: Message-ID, a
 * digest of the body and the target folder). It recognises a message an MTA
 * sends again after a crash, and finds a customer's original by Message-ID.
 * The table is created on the first write.
 *
 * Find KEY among rows written within WINDOW seconds before NOW (WINDOW <= 0:
 * any age; NOW 0: the clock). Found: CANDOR_OK, *DELIVERED = 1 when the
 * delivery was completed, 0 when it was begun (the file may or may not be at
 * *PATH), *PATH the recorded path. Not found: CANDOR_ENOTFOUND.
 * Fails: CANDOR_EIO, CANDOR_ETEMPFAIL (busy), CANDOR_EINVAL, CANDOR_ENOMEM.
 * Owns: *PATH is yours, candor_free(); NULL unless CANDOR_OK. Since 0.1 */
CANDOR_API candor_status_t candor_store_delivery_find(struct candor_store *store,
        const char *key, int64_t now, int64_t window, int *delivered, char **path);
/* Write (or overwrite) the row of KEY: MESSAGE_ID (may be NULL), PATH, and
 * DELIVERED (0: begun, before the rename; 1: durable). KEEP > 0 lets it
 * now and then drop rows older than KEEP seconds. The store must be opened
 * read-write. The row survives a crash of the process at once but is not
 * waited onto the disk (it gets there with the store's next synchronous
 * commit): a power failure, or on PostgreSQL a crash of the server, may
 * lose the latest rows, which can only cause a second copy of a message,
 * never a lost one.
 * Fails: CANDOR_EIO, CANDOR_ETEMPFAIL, CANDOR_EINVAL. Since 0.1 */
CANDOR_API candor_status_t candor_store_delivery_record(struct candor_store *store,
        const char *key, const char *message_id, const char *path, int delivered,
        int64_t now, int64_t keep);
/* Claim KEY for this caller, once among every process and host sharing the
 * store: write its row (MESSAGE_ID may be NULL, PATH, delivered=1) unless a
 * row of KEY with delivered=1 is already there; a row with delivered=0 (a
 * claim given up) is taken over. *CLAIMED = 1 when this call wrote the row,
 * 0 when another claim holds it (then nothing is written). The row
 * survives a crash of any process, this one or a PostgreSQL server, once
 * the call returns (candor-lmtpd's hand-over marker of an acknowledgement:
 * written before sendmail runs, it must outlive whatever could make the
 * acknowledgement be sent again): on PostgreSQL the commit waits for the
 * server's WAL flush; an SQLite file writes it as
 * candor_store_delivery_record() does. The store must be opened read-write.
 * Fails: CANDOR_EIO, CANDOR_ETEMPFAIL, CANDOR_EINVAL. Since 0.1 */
CANDOR_API candor_status_t candor_store_delivery_claim(struct candor_store *store,
        const char *key, const char *message_id, const char *path, int64_t now, int *claimed);
/* Give up a claim of KEY (or write KEY as given up): its row becomes
 * delivered=0 with PATH, so the next candor_store_delivery_claim() of KEY
 * takes it. As durable as the claim once the call returns (PostgreSQL:
 * the commit waits for the WAL flush): a release lost to a crash would
 * leave the claim standing. The store must be opened read-write.
 * Fails: CANDOR_EIO, CANDOR_ETEMPFAIL, CANDOR_EINVAL. Since 0.1 */
CANDOR_API candor_status_t candor_store_delivery_release(struct candor_store *store,
        const char *key, const char *path, int64_t now);
/* The path of the newest delivery of MESSAGE_ID (without angle brackets).
 * Not found: CANDOR_ENOTFOUND. Owns: *PATH is yours, candor_free(). Since 0.1 */
CANDOR_API candor_status_t candor_store_delivery_path(struct candor_store *store,
        const char *message_id, char **path);

/* ------------------------------------------------------------------ */
/* Triage                                                              */
/* ------------------------------------------------------------------ */

struct candor_result;

#define CANDOR_TRIAGE_EXPLAIN 1u   /* keep the rules and features that decided */

/* Triage MSG: intent with confidence and scores, urgency, sentiment,
 * churn risk, entities, and the auto-reply decision. STORE may be NULL (no
 * thread/rate state: those reasons are then not checked); ENV may be NULL
 * (all from the message). Only reads the store.
 * Owns: *OUT is yours, candor_result_free(). Since 0.1 */
CANDOR_API candor_status_t candor_triage(struct candor_result **out,
        const struct candor_ctx *ctx, const struct candor_message *msg,
        struct candor_store *store, const candor_envelope_t *env,
        unsigned int flags);
CANDOR_API void candor_result_free(struct candor_result *res);

CANDOR_API const char *candor_result_intent(const struct candor_result *res);
CANDOR_API double candor_result_confidence(const struct candor_result *res);
CANDOR_API const char *candor_result_urgency(const struct candor_result *res);
CANDOR_API const char *candor_result_sentiment(const struct candor_result *res);
CANDOR_API int candor_result_churn_risk(const struct candor_result *res);
CANDOR_API const char *candor_result_language(const struct candor_result *res);
CANDOR_API int candor_result_autoreply_send(const struct candor_result *res);
CANDOR_API const char *candor_result_autoreply_reason(const struct candor_result *res);

/* The `candor triage` JSON object (CONTRACT.md) for RES of MSG; with
 * CANDOR_TRIAGE_EXPLAIN at triage time an "explain" member is added.
 * Owns: *JSON is yours, candor_free(). Since 0.1 */
CANDOR_API candor_status_t candor_result_to_json(const struct candor_result *res,
        const struct candor_message *msg, const char *file, char **json);

/* Parse, triage and JSON in one call: what candor_message_parse (DATA, LEN;
 * DATA NULL: candor_message_parse_file of PATH), candor_triage (STORE, ENV,
 * FLAGS as there) and candor_result_to_json (FILE: the "file" member, may
 * be NULL) give, for bindings that pay per foreign call. N_ERRORS (may be
 * NULL) receives candor_message_error_count() of the message.
 * Fails as those three do; *JSON is then NULL.
 * Owns: *JSON is yours, candor_free(). Since 0.1 */
CANDOR_API candor_status_t candor_triage_json(char **json, size_t *n_errors,
        const struct candor_ctx *ctx, struct candor_store *store,
        const char *path, const void *data, size_t len, const char *file,
        const candor_envelope_t *env, unsigned int flags);

/* The X-Candor-* header block (CONTRACT.md "candor filter"), CRLF- or
 * LF-terminated lines as EOL says ("\r\n" or "\n"), ready to prepend.
 * TICKET may be NULL. Owns: *OUT is yours, candor_free(). Since 0.1 */
CANDOR_API candor_status_t candor_result_headers(const struct candor_result *res,
        const char *ticket, const char *eol, char **out);
struct candor_ack;   /* (the acknowledgements' section, below) */
/* candor_result_headers() for a message whose acknowledgement ACK was
 * decided with RES (candor_ack_with_result, candor_ack_batch): the
 * X-Candor-Ticket is ACK's ticket (none when it has none) and
 * X-Candor-Autoreply says ACK's decision and reason, the ones recorded in
 * the store, in place of triage's (which a caller may then compute without
 * the store: candor_triage with STORE NULL). ACK NULL: as
 * candor_result_headers(RES, NULL, EOL, OUT). Fails as that does.
 * Owns: *OUT is yours, candor_free(). Since 0.1 */
CANDOR_API candor_status_t candor_result_headers_ack(const struct candor_result *res,
        const struct candor_ack *ack, const char *eol, char **out);

/* ------------------------------------------------------------------ */
/* Training the statistical model                                      */
/* ------------------------------------------------------------------ */

struct candor_trainer;

CANDOR_API candor_status_t candor_trainer_new(struct candor_trainer **out,
        const struct candor_ctx *ctx);
CANDOR_API void candor_trainer_free(struct candor_trainer *tr);
/* Add one labelled message (LABEL: one of the ten intents). */
CANDOR_API candor_status_t candor_trainer_add(struct candor_trainer *tr,
        const struct candor_message *msg, const char *label);
/* Add one message with its intent and, when known, its urgency ("low",
 * "normal", "high", "critical") and sentiment ("negative", "neutral",
 * "positive"); NULL for an unknown attribute. With enough such labels
 * the model also learns urgency and sentiment. Since 0.1 */
CANDOR_API candor_status_t candor_trainer_add_labels(struct candor_trainer *tr,
        const struct candor_message *msg, const char *intent, const char *urgency,
        const char *sentiment);
/* Add one labelled plain text (subject may be NULL). */
CANDOR_API candor_status_t candor_trainer_add_text(struct candor_trainer *tr,
        const char *subject, const char *text, const char *label);
/* Fit and write the model file to PATH (written to a temporary name,
 * fsynced, renamed). */
CANDOR_API candor_status_t candor_trainer_save(struct candor_trainer *tr,
        const char *path);
/* After a successful candor_trainer_save(): a JSON object describing the
 * held-out quality of the saved model (5-fold cross-validation on the
 * training data: accuracy, macro-F1, the fitted temperature and rule
 * scale, and a reliability table of confidence against accuracy).
 * Owns: *JSON is yours, candor_free(). Since 0.1 */
CANDOR_API candor_status_t candor_trainer_report(const struct candor_trainer *tr,
        char **json);

/* ------------------------------------------------------------------ */
/* Acknowledgements                                                    */
/* ------------------------------------------------------------------ */

struct candor_ack;

/* Decide and, when allowed, compose the acknowledgement for MSG; record the
 * decision, ticket and promise in STORE (opened read-write), so a second
 * mail in the thread or from the sender within the window gets send=0.
 * Decision, ticket and outbox entry are one transaction: processes sharing
 * the state never acknowledge a thread or a sender twice.
 * "Sent", for the per-sender window: an acknowledgement counts from the
 * moment this call decided send=1 and put it in the outbox (pending or
 * marked sent); decisions with send=0 never start the window.
 * Tickets: mail a person should answer gets one (reasons ok, rate_limited,
 * already_acknowledged; a known thread keeps its ticket); robots, lists,
 * spoofed/spam and mail not addressed to us get none (ticket NULL).
 * The promise is NULL in the JSON when send=0.
 * Fails: CANDOR_EIO, CANDOR_ETEMPFAIL (state busy), CANDOR_ENOMEM,
 * CANDOR_EINVAL (read-only store).
 * Owns: *OUT is yours, candor_ack_free(). Since 0.1 */
CANDOR_API candor_status_t candor_ack(struct candor_ack **out,
        const struct candor_ctx *ctx, struct candor_store *store,
        const struct candor_message *msg, const candor_envelope_t *env);
/* candor_ack() for a message the caller has already triaged: RESULT is
 * candor_triage() of MSG with the same CTX (any store and envelope; only
 * its intent, language and entities are used), so the message is not
 * triaged a second time. Same decision, ticket, acknowledgement and store
 * records as candor_ack(MSG, ENV); one transaction. RESULT is only read
 * and stays the caller's.
 * Fails: as candor_ack(); CANDOR_EINVAL also when RESULT is NULL.
 * Owns: *OUT is yours, candor_ack_free(). Since 0.1 */
CANDOR_API candor_status_t candor_ack_with_result(struct candor_ack **out,
        const struct candor_ctx *ctx, struct candor_store *store,
        const struct candor_message *msg, const struct candor_result *result,
        const candor_envelope_t *env);
/* Group commit: candor_ack_with_result() for N messages, decided in order
 * in ONE store transaction (one commit, so one disk flush for all). Item i
 * is MSGS[i], RESULTS[i], ENVS[i] (ENVS may be NULL, or hold NULLs); a
 * later item sees the earlier ones' records exactly as if the calls had
 * been made one after another. If any item fails, nothing of the shared
 * transaction is kept and every item is decided again in a transaction of
 * its own, so one bad item never costs the others their decision; if the
 * store is busy past its timeout, every item fails with CANDOR_ETEMPFAIL.
 * OUTS[i] and STATUSES[i] (arrays of N, written for every i) get each
 * item's acknowledgement and status (OUTS[i] NULL unless STATUSES[i] is
 * CANDOR_OK). Returns CANDOR_OK when the items were attempted (see
 * STATUSES), CANDOR_EINVAL (NULL arrays) or CANDOR_ENOMEM otherwise.
 * The arrays and everything they point to stay the caller's.
 * Owns: each OUTS[i] is yours, candor_ack_free(). Since 0.1 */
CANDOR_API candor_status_t candor_ack_batch(struct candor_ack **outs,
        candor_status_t *statuses, const struct candor_ctx *ctx,
        struct candor_store *store, const struct candor_message *const *msgs,
        const struct candor_result *const *results,
        const candor_envelope_t *const *envs, size_t n);
CANDOR_API void candor_ack_free(struct candor_ack *ack);

CANDOR_API int candor_ack_send(const struct candor_ack *ack);
CANDOR_API const char *candor_ack_reason(const struct candor_ack *ack);
CANDOR_API const char *candor_ack_ticket(const struct candor_ack *ack);
/* The complete RFC 5322 acknowledgement (CRLF line ends), NULL when send=0. */
CANDOR_API const char *candor_ack_message(const struct candor_ack *ack);
/* The recipient of the acknowledgement (the envelope sender). */
CANDOR_API const char *candor_ack_recipient(const struct candor_ack *ack);
/* The `candor ack` JSON object. Owns: *JSON, candor_free(). */
CANDOR_API candor_status_t candor_ack_to_json(const struct candor_ack *ack, char **json);

/* Mark the acknowledgement of TICKET as handed over to sendmail. Until then
 * it is pending and listed by candor_store_pending_acks().
 * Fails: CANDOR_ENOTFOUND (no acknowledgement for TICKET), CANDOR_EINVAL. */
CANDOR_API candor_status_t candor_store_ack_sent(struct candor_store *store,
        const char *ticket, int64_t now);
/* A JSON array of pending acknowledgements
 * [{"ticket":..., "recipient":..., "message":...}], oldest first.
 * Owns: *JSON, candor_free(). */
CANDOR_API candor_status_t candor_store_pending_acks(struct candor_store *store,
        char **json);

/* Record a human reply that went out: first-response time, promise kept,
 * fingerprints for template_reuse and repeat_send. NOW: 0 = clock.
 * The ticket is found by the reply's In-Reply-To/References (and its own
 * Message-ID, so recording a reply twice is harmless), else by its first
 * To address (that sender's newest unanswered ticket). Its time is its
 * Date when present and not after NOW, else NOW.
 * Prints into *JSON the `candor record-reply` object. Since 0.1 */
CANDOR_API candor_status_t candor_record_reply(const struct candor_ctx *ctx,
        struct candor_store *store, const struct candor_message *reply,
        int64_t now, char **json);

/* The `candor stats --json` object: {"now", "overall": {...}, "intents":
 * {"refund": {...}, ...}}, each with tickets, acknowledged, first_replies,
 * median/p90_first_reply_seconds (wall clock), the same in business
 * seconds, promises, median_promised_seconds, promises_kept,
 * promises_broken (late, or unanswered past due at NOW) and
 * promises_kept_share (null when none could be judged).
 * Owns: *JSON, candor_free(). */
CANDOR_API candor_status_t candor_stats_json(const struct candor_ctx *ctx,
        struct candor_store *store, int64_t now, char **json);

/* ------------------------------------------------------------------ */
/* Canned-reply check                                                  */
/* ------------------------------------------------------------------ */

struct candor_check;

/* Check REPLY (a human reply about to go out) against ORIGINAL (the
 * customer's mail) and, when STORE is not NULL, the history of sent
 * replies. Only reads the store. NOW: 0 = clock.
 * Owns: *OUT is yours, candor_check_free(). Since 0.1 */
CANDOR_API candor_status_t candor_check(struct candor_check **out,
        const struct candor_ctx *ctx, struct candor_store *store,
        const struct candor_message *original, const struct candor_message *reply,
        int64_t now);
CANDOR_API void candor_check_free(struct candor_check *chk);
CANDOR_API double candor_check_score(const struct candor_check *chk);
/* "ok", "review" or "canned". */
CANDOR_API const char *candor_check_verdict(const struct candor_check *chk);
/* The `candor check` JSON object. Owns: *JSON, candor_free(). */
CANDOR_API candor_status_t candor_check_to_json(const struct candor_check *chk,
                                                char **json);

/* ------------------------------------------------------------------ */
/* Time helpers                                                        */
/* ------------------------------------------------------------------ */

/* Parse an RFC 3339 time ("2026-11-24T10:00:00Z", offsets allowed).
 * Fails: CANDOR_EINVAL. Since 0.1 */
CANDOR_API candor_status_t candor_time_parse(int64_t *out, const char *rfc3339);
/* Format T as RFC 3339 UTC into BUF (at least 21 bytes). */
CANDOR_API void candor_time_format(char *buf, size_t size, int64_t t);

#ifdef __cplusplus
}
#endif
#endif /* CANDOR_H */
