/*
 * store.h — the state store behind one narrow interface (store.c, issue 4;
 * the reply-history part in store-history.c, issue 5; the PostgreSQL
 * backend, issue 11). The database is reached only through the seam of
 * store-db.h (SQLite or PostgreSQL); schema versioned and migrated in
 * store.c, which calls candor__store_history_migrate() for the history
 * tables. Everything here is per handle; a handle belongs to one thread.
 */
#ifndef CANDOR_STORE_H
#define CANDOR_STORE_H
#include "internal.h"
#include "store-db.h"

/* The database handle, for the modules that own tables of their own
 * (store-history.c, store-delivery.c). */
CANDOR_HIDDEN struct candor_db *candor__store_db(struct candor_store *store);
CANDOR_HIDDEN bool candor__store_readonly(const struct candor_store *store);
/* Begin/commit a write transaction (candor__db_begin(); busy or server
 * gone -> CANDOR_ETEMPFAIL). Nested begin/commit pairs are counted: only
 * the outermost pair talks to the database. A rollback at any depth rolls the whole transaction back; the
 * outer commit then fails with CANDOR_ERROR. */
CANDOR_HIDDEN candor_status_t candor__store_begin(struct candor_store *store);
CANDOR_HIDDEN candor_status_t candor__store_commit(struct candor_store *store);
CANDOR_HIDDEN void candor__store_rollback(struct candor_store *store);
/* Whether a transaction (the caller's candor_store_begin() or a library
 * call's) is open on STORE. */
CANDOR_HIDDEN bool candor__store_in_group(const struct candor_store *store);

/* ---- reply history (store-history.c, issue 5) ---- */
/* Create or upgrade the history tables from schema version FROM to the
 * current one, inside store.c's migration transaction. */
CANDOR_HIDDEN candor_status_t candor__store_history_migrate(struct candor_db *db, int from_version);

struct candor_fp;
struct candor_history;   /* prepared statements on one database handle */

/* Prepare the history statements on DB (tables must exist). */
CANDOR_HIDDEN candor_status_t candor__history_open(struct candor_history **out, struct candor_db *db);
CANDOR_HIDDEN void candor__history_close(struct candor_history *h);
/* Add one sent reply; *ID is its row id. RECIPIENT normalised address,
 * DOMAIN the sender's domain (the business), MESSAGE_ID may be NULL. */
CANDOR_HIDDEN candor_status_t candor__history_add_reply(struct candor_history *h,
        const char *recipient, const char *domain, const char *message_id,
        int64_t sent_at, int64_t *id);
/* Add a paragraph fingerprint of reply ID: joins the most similar stored
 * paragraph cluster (similarity >= JOIN) or starts a new one. */
CANDOR_HIDDEN candor_status_t candor__history_add_para(struct candor_history *h, int64_t reply,
        const char *recipient, const char *domain, const struct candor_fp *fp, double join);

struct candor_history_match {
    double similarity;      /* of the best stored cluster, 0 when none */
    int64_t cluster;
    int recipients;         /* distinct recipients other than the one asked, capped at CAP */
    int64_t domain_uses;    /* replies of DOMAIN that carry the cluster */
    int64_t domain_replies; /* replies of DOMAIN in the history */
    char example_id[256];   /* Message-ID of the latest such reply to another recipient ("" none) */
    int64_t example_sent;
};
/* Look FP up: the best cluster with similarity >= MIN, with its use counts. */
CANDOR_HIDDEN candor_status_t candor__history_match(struct candor_history *h,
        const struct candor_fp *fp, const char *recipient, const char *domain, double min,
        int cap, struct candor_history_match *m);
/* Replies to RECIPIENT sent in [SINCE, UNTIL), not counting MESSAGE_ID
 * (NULL: count all). */
CANDOR_HIDDEN candor_status_t candor__history_recent(struct candor_history *h,
        const char *recipient, int64_t since, int64_t until, const char *message_id,
        int *count);

/* ---- helpers for the modules of issue 4 (autoreply.c, ack.c, eta.c) ---- */

/* The schema version store.c migrates to. */
#define CANDOR_STORE_SCHEMA_VERSION 1

/* Prepare SQL on the store's database (candor__db_prepare()). */
CANDOR_HIDDEN candor_status_t candor__store_prepare(struct candor_store *store, const char *what,
                                                    const char *sql, struct candor_stmt **out);

/* Ticket id (>0) of the thread that one of the message ids IDS belongs to,
 * preferring an acknowledged one; 0 when none. *ACKED tells whether that
 * ticket was acknowledged: an automatic acknowledgement was decided
 * (send=true), or a person already answered it (record-reply). */
CANDOR_HIDDEN candor_status_t candor__store_thread_find(struct candor_store *store,
        const char *const *ids, size_t n, int64_t *ticket, bool *acked);
/* Number of acknowledgements decided for SENDER (normalised) at or after SINCE. */
CANDOR_HIDDEN candor_status_t candor__store_acks_since(struct candor_store *store,
        const char *sender, int64_t since, int64_t *count);

/* Whether the delivery log's table is known to exist on this handle
 * (store-delivery.c asks the database only until it has been seen once:
 * a table is never dropped under a running store). */
CANDOR_HIDDEN bool candor__store_delivery_known(const struct candor_store *store);
CANDOR_HIDDEN void candor__store_set_delivery_known(struct candor_store *store);
/* Create the delivery log's table when missing (store-delivery.c; for
 * store-copy.c). The store must be open read-write. */
CANDOR_HIDDEN candor_status_t candor__store_delivery_ensure(struct candor_store *store);

/* "CND-000123" for ticket id 123 into BUF (at least 24 bytes). */
CANDOR_HIDDEN void candor__ticket_format(char *buf, size_t size, int64_t id);
/* The id of "CND-000123" (any number of digits), 0 when not one. */
CANDOR_HIDDEN int64_t candor__ticket_parse(const char *ref);
#endif
