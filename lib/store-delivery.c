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
 * store.c's versioned migrations, so this file can evolve on its own.
 * Limits: keys, ids and paths are bounded by the caller's sizes (checked
 * here at 4096 bytes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include "internal.h"
#include "store.h"

#define MAX_FIELD 4096

static candor_status_t db_fail(sqlite3 *db, const char *what)
{
    int rc = sqlite3_errcode(db);
    candor_status_t st = (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) ? CANDOR_ETEMPFAIL
                         : (rc == SQLITE_FULL) ? CANDOR_ETEMPFAIL : CANDOR_EIO;
    return candor__fail(st, "store: delivery log: %s: %s", what, sqlite3_errmsg(db));
}

/* Step ST once: the row's path (column 0) into *PATH and, when DELIVERED is
 * not NULL, column 1 into it; ENOTFOUND when there is no row. Finalizes ST. */
static candor_status_t fetch_path(sqlite3 *db, sqlite3_stmt *st, char **path, int *delivered,
                                  const char *what)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *p = (const char *)sqlite3_column_text(st, 0);
        if (delivered)
            *delivered = sqlite3_column_int(st, 1) != 0;
        *path = candor__strdup(p ? p : "");
        sqlite3_finalize(st);
        return *path ? CANDOR_OK : candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, what);
    return candor__fail(CANDOR_ENOTFOUND, "store: delivery log: not found");
}

static candor_status_t get_db(struct candor_store *store, bool write, sqlite3 **out)
{
    *out = NULL;
    if (!store)
        return candor__fail(CANDOR_EINVAL, "store: delivery log: no store");
    sqlite3 *db = candor__store_sqlite(store);
    if (!db)
        return candor__fail(CANDOR_EIO, "store: delivery log: no database");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' "
                           "AND name = 'candor_delivery'", -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, "schema");
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) {
        *out = db;
        return CANDOR_OK;
    }
    if (rc != SQLITE_DONE)
        return db_fail(db, "schema");
    if (!write || candor__store_readonly(store))
        return CANDOR_ENOTFOUND;   /* no table: nothing was ever delivered */
    if (sqlite3_exec(db,
            "CREATE TABLE IF NOT EXISTS candor_delivery ("
            " key TEXT PRIMARY KEY,"
            " message_id TEXT,"
            " path TEXT NOT NULL,"
            " delivered INTEGER NOT NULL,"
            " at INTEGER NOT NULL);"
            "CREATE INDEX IF NOT EXISTS candor_delivery_mid"
            " ON candor_delivery(message_id, at);",
            NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(db, "create");
    *out = db;
    return CANDOR_OK;
}

static candor_status_t insert_row(sqlite3 *db, const char *key, const char *message_id,
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
    sqlite3 *db;
    candor_status_t s = get_db(store, false, &db);
    if (s == CANDOR_ENOTFOUND)
        return candor__fail(CANDOR_ENOTFOUND, "store: delivery log: not found");
    if (s != CANDOR_OK)
        return s;
    now = candor__now(now);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT path, delivered FROM candor_delivery "
                           "WHERE key = ?1 AND at >= ?2", -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, "find");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, window > 0 ? now - window : INT64_MIN);
    return fetch_path(db, st, path, delivered, "find");
}

candor_status_t candor_store_delivery_record(struct candor_store *store, const char *key,
        const char *message_id, const char *path, int delivered, int64_t now, int64_t keep)
{
    if (!key || !path || too_long(key) || too_long(path) || too_long(message_id))
        return candor__fail(CANDOR_EINVAL, "store: delivery log: bad argument");
    if (candor__store_readonly(store))
        return candor__fail(CANDOR_EINVAL, "store: delivery log: store is read-only");
    sqlite3 *db;
    candor_status_t s = get_db(store, true, &db);
    if (s != CANDOR_OK)
        return s;
    now = candor__now(now);
    /* Written without waiting for the disk (synchronous=NORMAL in WAL mode):
     * the row survives a crash of the process at once, and reaches the disk
     * with the store's next synchronous commit or checkpoint. A row lost to
     * a power failure can only cause a second copy, never a lost message,
     * and saves a serialised fsync per message. The handle's own setting is
     * restored afterwards. */
    int sync_mode = -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA synchronous", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            sync_mode = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    if (sync_mode > 1)
        sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    candor_status_t result = insert_row(db, key, message_id, path, delivered, now, keep);
    if (sync_mode > 1) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA synchronous=%d", sync_mode);
        sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    return result;
}

static candor_status_t insert_row(sqlite3 *db, const char *key, const char *message_id,
                                  const char *path, int delivered, int64_t now, int64_t keep)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT INTO candor_delivery(key, message_id, path, delivered, at) "
                           "VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(key) DO UPDATE SET "
                           "message_id = ?2, path = ?3, delivered = ?4, at = ?5",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, "record");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (message_id)
        sqlite3_bind_text(st, 2, message_id, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_text(st, 3, path, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, delivered ? 1 : 0);
    sqlite3_bind_int64(st, 5, now);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, "record");
    if (keep > 0 && now % 64 == 0) {   /* prune now and then, not on every message */
        if (sqlite3_prepare_v2(db, "DELETE FROM candor_delivery WHERE at < ?1",
                               -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, now - keep);
            sqlite3_step(st);
            sqlite3_finalize(st);
        }
    }
    return CANDOR_OK;
}

candor_status_t candor_store_delivery_path(struct candor_store *store,
        const char *message_id, char **path)
{
    if (path)
        *path = NULL;
    if (!message_id || !path || too_long(message_id))
        return candor__fail(CANDOR_EINVAL, "store: delivery log: bad argument");
    sqlite3 *db;
    candor_status_t s = get_db(store, false, &db);
    if (s == CANDOR_ENOTFOUND)
        return candor__fail(CANDOR_ENOTFOUND, "store: delivery log: not found");
    if (s != CANDOR_OK)
        return s;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT path FROM candor_delivery WHERE message_id = ?1 "
                           "ORDER BY delivered DESC, at DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, "path");
    sqlite3_bind_text(st, 1, message_id, -1, SQLITE_STATIC);
    return fetch_path(db, st, path, NULL, "path");
}
