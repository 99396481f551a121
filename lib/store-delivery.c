/*
 * store-delivery.c — the delivery log of candor-lmtpd (issue 8), kept in the
 * state store beside the acknowledgement tables.
 *
 * One row per message delivered into a maildir, keyed by a caller-made
 * digest (Message-ID + body digest + target). It lets the daemon recognise
 * a message that the MTA sends again after a crash (no 250 was seen) and
 * not deliver it twice, and lets the "sent" copy of a reply find the
 * customer's original by Message-ID. A row is written (delivered = 0) with
 * the final path before the rename into new/, then marked delivered = 1
 * once the directory is fsynced: a row with 0 means "look whether the file
 * is there".
 *
 * The table is created on first use (CREATE TABLE IF NOT EXISTS), outside
 * store.c's versioned migrations, so this file can evolve on its own. On
 * PostgreSQL the log is shared by every host's daemon, so a redelivery to
 * another host is recognised too (the digest is the key).
 * Limits: keys, ids and paths are bounded by the caller's sizes (checked
 * here at 4096 bytes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "store.h"

#define MAX_FIELD 4096

/* Step ST once: the row's path (column 0) into *PATH and, when DELIVERED is
 * not NULL, column 1 into it; ENOTFOUND when there is no row. Frees ST. */
static candor_status_t fetch_path(struct candor_stmt *st, char **path, int *delivered)
{
    int rc = candor__stmt_step(st);
    if (rc == CANDOR_DB_ROW) {
        const char *p = candor__stmt_text(st, 0);
        if (delivered)
            *delivered = candor__stmt_int64(st, 1) != 0;
        *path = candor__strdup(p ? p : "");
        candor__stmt_free(st);
        return *path ? CANDOR_OK : candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    candor__stmt_free(st);
    if (rc != CANDOR_DB_DONE)
        return (candor_status_t)rc;
    return candor__fail(CANDOR_ENOTFOUND, "store: delivery log: not found");
}

static candor_status_t get_db(struct candor_store *store, bool write, struct candor_db **out)
{
    *out = NULL;
    if (!store)
        return candor__fail(CANDOR_EINVAL, "store: delivery log: no store");
    struct candor_db *db = candor__store_db(store);
    if (!db)
        return candor__fail(CANDOR_EIO, "store: delivery log: no database");
    /* one look per handle, not one query per message (a round trip each
     * on PostgreSQL) */
    if (candor__store_delivery_known(store)) {
        *out = db;
        return CANDOR_OK;
    }
    bool exists;
    candor_status_t st = candor__db_table_exists(db, "candor_delivery", &exists);
    if (st != CANDOR_OK)
        return st;
    if (exists) {
        candor__store_set_delivery_known(store);
        *out = db;
        return CANDOR_OK;
    }
    if (!write || candor__store_readonly(store))
        return CANDOR_ENOTFOUND;   /* no table: nothing was ever delivered */
    /* in a write transaction of its own (PostgreSQL: under the decision
     * lock), so that two hosts creating the table at once do not collide
     * in the catalog (CREATE TABLE IF NOT EXISTS is not safe against a
     * concurrent twin there: a unique violation on pg_type) */
    bool own = !candor__db_in_transaction(db);
    if (own && (st = candor__db_begin(db, true)) != CANDOR_OK)
        return st;
    st = candor__db_ddl(db, "delivery log: create",
            "CREATE TABLE IF NOT EXISTS candor_delivery ("
            " key TEXT PRIMARY KEY,"
            " message_id TEXT,"
            " path TEXT NOT NULL,"
            " delivered @INT NOT NULL,"
            " at @INT NOT NULL);"
            "CREATE INDEX IF NOT EXISTS candor_delivery_mid"
            " ON candor_delivery(message_id, at);");
    if (own) {
        if (st == CANDOR_OK)
            st = candor__db_commit(db);
        else
            candor__db_rollback(db);
    }
    if (st != CANDOR_OK)
        return st;
    /* not remembered yet: inside a transaction that is rolled back the
     * table would be gone again */
    *out = db;
    return CANDOR_OK;
}

candor_status_t candor__store_delivery_ensure(struct candor_store *store)
{
    struct candor_db *db;
    return get_db(store, true, &db);
}

static candor_status_t insert_row(struct candor_db *db, const char *key, const char *message_id,
                                  const char *path, int delivered, int64_t now, int64_t keep);

static bool too_long(const char *s) { return s && strnlen(s, MAX_FIELD + 1) > MAX_FIELD; }

candor_status_t candor_store_delivery_find(struct candor_store *store, const char *key,
        int64_t now, int64_t window, int *delivered, char **path)
{
    if (path)
        *path = NULL;
    if (delivered)
        *delivered = 0;
    if (!key || !path || !delivered || too_long(key))
        return candor__fail(CANDOR_EINVAL, "store: delivery log: bad argument");
    struct candor_db *db;
    candor_status_t s = get_db(store, false, &db);
    if (s == CANDOR_ENOTFOUND)
        return candor__fail(CANDOR_ENOTFOUND, "store: delivery log: not found");
    if (s != CANDOR_OK)
        return s;
    now = candor__now(now);
    struct candor_stmt *st;
    s = candor__db_prepare(db, "delivery log: find", "SELECT path, delivered FROM candor_delivery "
                           "WHERE key = ?1 AND at >= ?2", &st);
    if (s != CANDOR_OK)
        return s;
    candor__stmt_bind_text(st, 1, key);
    candor__stmt_bind_int64(st, 2, window > 0 ? now - window : INT64_MIN);
    return fetch_path(st, path, delivered);
}

/* The checks of a write of KEY, MESSAGE_ID (may be NULL) and PATH, then
 * the database, its table created when missing (get_db). */
static candor_status_t write_db(struct candor_store *store, const char *key,
                                const char *message_id, const char *path, struct candor_db **db)
{
    if (!key || !path || too_long(key) || too_long(path) || too_long(message_id))
        return candor__fail(CANDOR_EINVAL, "store: delivery log: bad argument");
    if (candor__store_readonly(store))
        return candor__fail(CANDOR_EINVAL, "store: delivery log: store is read-only");
    return get_db(store, true, db);
}

candor_status_t candor_store_delivery_record(struct candor_store *store, const char *key,
        const char *message_id, const char *path, int delivered, int64_t now, int64_t keep)
{
    struct candor_db *db;
    candor_status_t s = write_db(store, key, message_id, path, &db);
    if (s != CANDOR_OK)
        return s;
    now = candor__now(now);
    /* Written without waiting for the disk (candor__db_relaxed()): on
     * SQLite the row survives a crash of the process at once and reaches
     * the disk with the next synchronous commit or checkpoint; on
     * PostgreSQL the commit does not wait for the WAL flush, so a crash of
     * the server (or a power failure) may lose the latest rows. Either way
     * a lost row can only cause a second copy, never a lost message: a
     * lost delivered=0 row leaves a redelivery after a daemon crash
     * unrecognised (delivered again), a lost delivered=1 leaves
     * delivered=0 with the file in place (the same answer), and the
     * decision that the message's acknowledgement hangs on is never
     * written this way (its commit waits), so a redelivered copy is
     * "already acknowledged", never acknowledged twice. It saves a
     * serialised flush per message. (The hand-over mark of an
     * acknowledgement is not such a row: candor_store_delivery_claim.) */
    candor__db_relaxed(db, true);
    candor_status_t result = insert_row(db, key, message_id, path, delivered, now, keep);
    candor__db_relaxed(db, false);
    return result;
}

static candor_status_t insert_row(struct candor_db *db, const char *key, const char *message_id,
                                  const char *path, int delivered, int64_t now, int64_t keep)
{
    struct candor_stmt *st;
    candor_status_t s = candor__db_prepare(db, "delivery log: record",
        "INSERT INTO candor_delivery(key, message_id, path, delivered, at) "
        "VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(key) DO UPDATE SET "
        "message_id = excluded.message_id, path = excluded.path, "
        "delivered = excluded.delivered, at = excluded.at", &st);
    if (s != CANDOR_OK)
        return s;
    candor__stmt_bind_text(st, 1, key);
    candor__stmt_bind_text(st, 2, message_id);   /* NULL binds NULL */
    candor__stmt_bind_text(st, 3, path);
    candor__stmt_bind_int64(st, 4, delivered ? 1 : 0);
    candor__stmt_bind_int64(st, 5, now);
    s = candor__stmt_run(st);
    candor__stmt_free(st);
    if (s != CANDOR_OK)
        return s;
    if (keep > 0 && now % 64 == 0) {   /* prune now and then, not on every message */
        if (candor__db_prepare(db, "delivery log: prune",
                               "DELETE FROM candor_delivery WHERE at < ?1", &st) == CANDOR_OK) {
            candor__stmt_bind_int64(st, 1, now - keep);
            candor__stmt_run(st);
            candor__stmt_free(st);
        }
    }
    return CANDOR_OK;
}

/* Write a hand-over mark of KEY with the upsert SQL (?1 key, ?2
 * message id, ?3 path, ?4 time) as one statement; *CHANGES (may be NULL)
 * is whether it wrote a row. It must outlive a crash of any process at
 * once: SQLite's relaxed commit does (synchronous=NORMAL in WAL mode: only
 * a power failure can lose it, as delivery_record's rows), PostgreSQL's
 * does not (an asynchronous commit is lost when the server crashes), so
 * there the commit waits for the WAL flush. */
static candor_status_t write_mark(struct candor_store *store, const char *what, const char *sql,
                                  const char *key, const char *message_id, const char *path,
                                  int64_t now, int *changes)
{
    struct candor_db *db;
    candor_status_t s = write_db(store, key, message_id, path, &db);
    if (s != CANDOR_OK)
        return s;
    struct candor_stmt *st;
    if ((s = candor__db_prepare(db, what, sql, &st)) != CANDOR_OK)
        return s;
    bool relaxed = candor__db_kind(db) == CANDOR_DB_SQLITE;
    candor__stmt_bind_text(st, 1, key);
    candor__stmt_bind_text(st, 2, message_id);
    candor__stmt_bind_text(st, 3, path);
    candor__stmt_bind_int64(st, 4, candor__now(now));
    if (relaxed)
        candor__db_relaxed(db, true);
    s = candor__stmt_run(st);
    if (relaxed)
        candor__db_relaxed(db, false);
    if (s == CANDOR_OK && changes)
        *changes = candor__stmt_changes(st) > 0;
    candor__stmt_free(st);
    return s;
}

candor_status_t candor_store_delivery_claim(struct candor_store *store, const char *key,
        const char *message_id, const char *path, int64_t now, int *claimed)
{
    if (!claimed)
        return candor__fail(CANDOR_EINVAL, "store: delivery log: bad argument");
    *claimed = 0;
    /* one statement, so atomic on both backends: a second claimant's
     * upsert waits for the first one's row (PostgreSQL: the unique index;
     * SQLite: the file's write lock), then finds delivered = 1 and changes
     * nothing */
    return write_mark(store, "delivery log: claim",
        "INSERT INTO candor_delivery(key, message_id, path, delivered, at) "
        "VALUES(?1, ?2, ?3, 1, ?4) ON CONFLICT(key) DO UPDATE SET "
        "message_id = excluded.message_id, path = excluded.path, delivered = 1, "
        "at = excluded.at WHERE candor_delivery.delivered = 0",
        key, message_id, path, now, claimed);
}

candor_status_t candor_store_delivery_release(struct candor_store *store, const char *key,
        const char *path, int64_t now)
{
    /* as durable as the claim: a release lost to a server crash would
     * leave the claim standing, and its holder's acknowledgement would be
     * taken for sent */
    return write_mark(store, "delivery log: release",
        "INSERT INTO candor_delivery(key, message_id, path, delivered, at) "
        "VALUES(?1, ?2, ?3, 0, ?4) ON CONFLICT(key) DO UPDATE SET "
        "message_id = excluded.message_id, path = excluded.path, delivered = 0, "
        "at = excluded.at", key, NULL, path, now, NULL);
}

candor_status_t candor_store_delivery_path(struct candor_store *store,
        const char *message_id, char **path)
{
    if (path)
        *path = NULL;
    if (!message_id || !path || too_long(message_id))
        return candor__fail(CANDOR_EINVAL, "store: delivery log: bad argument");
    struct candor_db *db;
    candor_status_t s = get_db(store, false, &db);
    if (s == CANDOR_ENOTFOUND)
        return candor__fail(CANDOR_ENOTFOUND, "store: delivery log: not found");
    if (s != CANDOR_OK)
        return s;
    struct candor_stmt *st;
    s = candor__db_prepare(db, "delivery log: path", "SELECT path FROM candor_delivery "
                           "WHERE message_id = ?1 ORDER BY delivered DESC, at DESC LIMIT 1", &st);
    if (s != CANDOR_OK)
        return s;
    candor__stmt_bind_text(st, 1, message_id);
    return fetch_path(st, path, NULL);
}
