/*
 * store.c — the persistent state: tickets, threads, acknowledgements (with
 * a pending/sent outbox), promises and first replies; the reply-history
 * tables of the canned check are created through
 * candor__store_history_migrate() (store-history.c).
 *
 * SQLite file in WAL mode with a busy timeout, so the CLI, the daemon and
 * any number of other processes share one state file: every change of
 * state is one IMMEDIATE transaction (the write lock is taken before the
 * first read, so two processes can never both decide "not yet
 * acknowledged" for the same thread or sender). Busy past the timeout is
 * CANDOR_ETEMPFAIL (exit 75 / LMTP 451: the MTA retries).
 *
 * Schema versions (PRAGMA user_version), migrated forward at open inside
 * one transaction:
 *   1  tickets, threads, acks, promises, first_replies, replies, decisions
 * A READONLY open of a missing file gives an empty in-memory state, so
 * `triage` and `check` work before anything was ever acknowledged; a
 * READONLY open never creates or migrates a file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include <json-c/json.h>
#include "ctx.h"
#include "store.h"

#define BUSY_TIMEOUT_MS 15000

struct candor_store {
    sqlite3 *db;
    const struct candor_ctx *ctx;
    bool readonly;
    int depth;            /* nesting of candor__store_begin() */
    bool rolled_back;     /* a nested rollback happened */
    /* statements of the per-message lookups, prepared once (reset after
     * each use, so no read transaction stays open) */
    sqlite3_stmt *q_thread, *q_acks;
};

/* The cached statement *SLOT for SQL, prepared on first use. */
static candor_status_t cached(struct candor_store *store, sqlite3_stmt **slot, const char *sql,
                              sqlite3_stmt **out)
{
    if (!*slot) {
        int rc = sqlite3_prepare_v3(store->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
        if (rc != SQLITE_OK) {
            *slot = NULL;
            return candor__store_fail(store, rc, "prepare");
        }
    }
    *out = *slot;
    return CANDOR_OK;
}

static void release(sqlite3_stmt *q)
{
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
}

candor_status_t candor__store_fail(struct candor_store *store, int rc, const char *what)
{
    const char *m = store && store->db ? sqlite3_errmsg(store->db) : sqlite3_errstr(rc);
    int prim = rc & 0xff;
    if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
        return candor__fail(CANDOR_ETEMPFAIL, "store: %s: state busy (%s)", what, m);
    if (prim == SQLITE_NOMEM)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    return candor__fail(CANDOR_EIO, "store: %s: %s", what, m);
}

candor_status_t candor__store_prepare(struct candor_store *store, const char *sql,
                                      sqlite3_stmt **out)
{
    int rc = sqlite3_prepare_v2(store->db, sql, -1, out, NULL);
    if (rc != SQLITE_OK) {
        *out = NULL;
        return candor__store_fail(store, rc, "prepare");
    }
    return CANDOR_OK;
}

static candor_status_t exec(struct candor_store *store, const char *sql, const char *what)
{
    int rc = sqlite3_exec(store->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? CANDOR_OK : candor__store_fail(store, rc, what);
}

static const char *const schema_v1 =
    "CREATE TABLE tickets("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " created INTEGER NOT NULL,"          /* arrival (ack time), Unix s */
    " sender TEXT,"                       /* normalised envelope sender */
    " intent TEXT NOT NULL,"
    " subject TEXT,"
    " message_id TEXT);"
    "CREATE INDEX tickets_sender ON tickets(sender, created);"
    /* every message id known to belong to a ticket's thread: the
     * customer's messages, their References, our acknowledgement and the
     * human replies */
    "CREATE TABLE threads("
    " message_id TEXT PRIMARY KEY,"
    " ticket INTEGER NOT NULL REFERENCES tickets(id),"
    " created INTEGER NOT NULL);"
    "CREATE INDEX threads_ticket ON threads(ticket);"
    /* acknowledgements whose decision was send=true: the outbox */
    "CREATE TABLE acks("
    " ticket INTEGER PRIMARY KEY REFERENCES tickets(id),"
    " recipient TEXT NOT NULL,"           /* normalised, for the rate limit */
    " rcpt TEXT NOT NULL,"                /* as the envelope gave it */
    " created INTEGER NOT NULL,"
    " status TEXT NOT NULL CHECK (status IN ('pending', 'sent')),"
    " sent_at INTEGER,"
    " message_id TEXT,"
    " message TEXT NOT NULL);"
    "CREATE INDEX acks_recipient ON acks(recipient, created);"
    "CREATE INDEX acks_status ON acks(status, created);"
    "CREATE TABLE promises("
    " ticket INTEGER PRIMARY KEY REFERENCES tickets(id),"
    " intent TEXT NOT NULL,"
    " made INTEGER NOT NULL,"
    " due INTEGER NOT NULL,"
    " measured INTEGER NOT NULL,"         /* 1 \"we will\", 0 \"we aim to\" */
    " basis TEXT NOT NULL);"
    "CREATE TABLE first_replies("
    " ticket INTEGER PRIMARY KEY REFERENCES tickets(id),"
    " intent TEXT NOT NULL,"
    " replied INTEGER NOT NULL,"
    " wait INTEGER NOT NULL,"             /* seconds, wall clock */
    " business_wait INTEGER NOT NULL,"    /* seconds of business time */
    " kept INTEGER);"                     /* NULL: no promise was made */
    "CREATE INDEX first_replies_intent ON first_replies(intent, replied);"
    "CREATE INDEX first_replies_replied ON first_replies(replied);"
    "CREATE TABLE replies("
    " id INTEGER PRIMARY KEY,"
    " ticket INTEGER,"
    " sent INTEGER NOT NULL,"
    " recipient TEXT,"
    " message_id TEXT);"
    /* every decision, for audit and stats */
    "CREATE TABLE decisions("
    " id INTEGER PRIMARY KEY,"
    " decided INTEGER NOT NULL,"
    " sender TEXT,"
    " message_id TEXT,"
    " reason TEXT NOT NULL,"
    " ticket INTEGER);";

static candor_status_t migrate(struct candor_store *store, bool memory)
{
    candor_status_t st;
    if (!memory) {
        /* WAL: readers never block the writer; persistent in the file. */
        st = exec(store, "PRAGMA journal_mode=WAL", "journal_mode");
        if (st != CANDOR_OK)
            return st;
    }
    st = candor__store_begin(store);
    if (st != CANDOR_OK)
        return st;
    sqlite3_stmt *q = NULL;
    int version = 0;
    st = candor__store_prepare(store, "PRAGMA user_version", &q);
    if (st == CANDOR_OK) {
        int rc = sqlite3_step(q);
        if (rc == SQLITE_ROW)
            version = sqlite3_column_int(q, 0);
        else
            st = candor__store_fail(store, rc, "user_version");
        sqlite3_finalize(q);
    }
    if (st == CANDOR_OK && version > CANDOR_STORE_SCHEMA_VERSION)
        st = candor__fail(CANDOR_EIO, "store: schema version %d is newer than this "
                          "library's %d", version, CANDOR_STORE_SCHEMA_VERSION);
    if (st == CANDOR_OK && version < CANDOR_STORE_SCHEMA_VERSION) {
        if (version < 1)
            st = exec(store, schema_v1, "create schema");
        /* later versions: if (version < 2) ... */
        if (st == CANDOR_OK)
            st = candor__store_history_migrate(store->db, version);
        if (st == CANDOR_OK) {
            char sql[64];
            snprintf(sql, sizeof sql, "PRAGMA user_version=%d", CANDOR_STORE_SCHEMA_VERSION);
            st = exec(store, sql, "user_version");
        }
    }
    if (st != CANDOR_OK) {
        candor__store_rollback(store);
        return st;
    }
    return candor__store_commit(store);
}

static bool file_missing(const char *path)
{
    return access(path, F_OK) != 0 && errno == ENOENT;
}

candor_status_t candor_store_open(struct candor_store **out, const struct candor_ctx *ctx,
                                  const char *path, unsigned int flags)
{
    if (!out)
        return candor__fail(CANDOR_EINVAL, "store_open: no output pointer");
    *out = NULL;
    if (!path)
        path = ctx ? ctx->state_path : NULL;
    if (!path || !*path)
        return candor__fail(CANDOR_EINVAL, "store: no state path (use --state or the "
                            "config's <state path=...>)");
    bool ro = (flags & CANDOR_STORE_READONLY) != 0;
    struct candor_store *s = calloc(1, sizeof *s);
    if (!s)
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    s->ctx = ctx;
    s->readonly = ro;
    bool memory = ro && file_missing(path);
    int oflags = SQLITE_OPEN_NOMUTEX;   /* a handle belongs to one thread */
    if (memory)
        oflags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY;
    else if (ro)
        oflags |= SQLITE_OPEN_READONLY;
    else
        oflags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(memory ? ":memory:" : path, &s->db, oflags, NULL);
    if (rc != SQLITE_OK) {
        candor_status_t st = candor__fail(CANDOR_EIO, "store: %s: %s", path,
                                          s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        candor_store_free(s);
        return st;
    }
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(s->db, 1);
    /* A 32 MiB page cache (the default is 2 MiB): the reply-history index
     * is read at random, and bulk imports of a Sent folder were bound by
     * cache misses (tests/bench/bench-check). Memory is only taken as
     * pages are read. */
    sqlite3_exec(s->db, "PRAGMA cache_size=-32768", NULL, NULL, NULL);
    candor_status_t st = CANDOR_OK;
    if (memory || !ro) {
        bool was_ro = s->readonly;
        s->readonly = false;
        st = migrate(s, memory);
        s->readonly = was_ro;
    } else {
        /* read-only: the file must already carry our schema, or be empty
         * (then it behaves as an empty state). */
        sqlite3_stmt *q = NULL;
        st = candor__store_prepare(s, "PRAGMA user_version", &q);
        int version = 0;
        if (st == CANDOR_OK) {
            rc = sqlite3_step(q);
            if (rc == SQLITE_ROW)
                version = sqlite3_column_int(q, 0);
            else
                st = candor__store_fail(s, rc, path);
            sqlite3_finalize(q);
        }
        if (st == CANDOR_OK && version != CANDOR_STORE_SCHEMA_VERSION) {
            if (version == 0) {
                /* empty or foreign file: behave as an empty state */
                sqlite3_close(s->db);
                s->db = NULL;
                rc = sqlite3_open_v2(":memory:", &s->db, SQLITE_OPEN_READWRITE |
                                     SQLITE_OPEN_MEMORY | SQLITE_OPEN_NOMUTEX, NULL);
                if (rc != SQLITE_OK)
                    st = candor__fail(CANDOR_ENOMEM, "out of memory");
                else {
                    s->readonly = false;
                    st = migrate(s, true);
                    s->readonly = true;
                }
            } else {
                st = candor__fail(CANDOR_EIO, "store: %s: schema version %d, this library "
                                  "reads %d (open it read-write once to migrate)", path,
                                  version, CANDOR_STORE_SCHEMA_VERSION);
            }
        }
    }
    if (st != CANDOR_OK) {
        candor_store_free(s);
        return st;
    }
    *out = s;
    return CANDOR_OK;
}

void candor_store_free(struct candor_store *store)
{
    if (!store)
        return;
    sqlite3_finalize(store->q_thread);
    sqlite3_finalize(store->q_acks);
    if (store->db) {
        if (store->depth > 0)
            sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close_v2(store->db);
    }
    free(store);
}

struct sqlite3 *candor__store_sqlite(struct candor_store *store)
{
    return store ? store->db : NULL;
}

bool candor__store_readonly(const struct candor_store *store)
{
    return !store || store->readonly;
}

candor_status_t candor__store_begin(struct candor_store *store)
{
    if (!store)
        return candor__fail(CANDOR_EINVAL, "store: no handle");
    if (store->depth > 0) {
        store->depth++;
        return CANDOR_OK;
    }
    candor_status_t st = exec(store, store->readonly ? "BEGIN" : "BEGIN IMMEDIATE", "begin");
    if (st == CANDOR_OK) {
        store->depth = 1;
        store->rolled_back = false;
    }
    return st;
}

candor_status_t candor__store_commit(struct candor_store *store)
{
    if (!store)
        return candor__fail(CANDOR_EINVAL, "store: no handle");
    if (store->depth == 0) {
        if (store->rolled_back) {
            store->rolled_back = false;
            return candor__fail(CANDOR_ERROR, "store: transaction was rolled back");
        }
        return candor__fail(CANDOR_EINVAL, "store: commit without begin");
    }
    if (--store->depth > 0)
        return CANDOR_OK;
    candor_status_t st = exec(store, "COMMIT", "commit");
    if (st != CANDOR_OK) {
        sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
        store->rolled_back = false;
    }
    return st;
}

void candor__store_rollback(struct candor_store *store)
{
    if (!store || store->depth == 0)
        return;
    sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
    /* an outer commit must notice that its work is gone */
    store->rolled_back = store->depth > 1;
    store->depth = 0;
}

void candor__ticket_format(char *buf, size_t size, int64_t id)
{
    snprintf(buf, size, "CND-%06lld", (long long)id);
}

int64_t candor__ticket_parse(const char *ref)
{
    if (!ref || candor__strncasecmp(ref, "CND-", 4) != 0)
        return 0;
    int64_t v = 0;
    const char *p = ref + 4;
    if (!*p)
        return 0;
    for (int i = 0; *p; p++, i++) {
        if (!candor__is_digit((unsigned char)*p) || i > 15)
            return 0;
        v = v * 10 + (*p - '0');
    }
    return v;
}

candor_status_t candor__store_thread_find(struct candor_store *store, const char *const *ids,
                                          size_t n, int64_t *ticket, bool *acked)
{
    *ticket = 0;
    *acked = false;
    sqlite3_stmt *q = NULL;
    candor_status_t st = cached(store, &store->q_thread,
        "SELECT t.ticket, EXISTS(SELECT 1 FROM acks a WHERE a.ticket = t.ticket) "
        " OR EXISTS(SELECT 1 FROM first_replies f WHERE f.ticket = t.ticket) "
        "FROM threads t WHERE t.message_id = ?1", &q);
    if (st != CANDOR_OK)
        return st;
    for (size_t i = 0; i < n && !*acked; i++) {
        if (!ids[i] || !*ids[i])
            continue;
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, ids[i], -1, SQLITE_TRANSIENT);
        int rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            int64_t t = sqlite3_column_int64(q, 0);
            bool a = sqlite3_column_int(q, 1) != 0;
            if (!*ticket || a) {
                *ticket = t;
                *acked = a;
            }
        } else if (rc != SQLITE_DONE) {
            st = candor__store_fail(store, rc, "threads");
            break;
        }
    }
    release(q);
    return st;
}

candor_status_t candor__store_acks_since(struct candor_store *store, const char *sender,
                                         int64_t since, int64_t *count)
{
    *count = 0;
    sqlite3_stmt *q = NULL;
    candor_status_t st = cached(store, &store->q_acks,
        "SELECT count(*) FROM acks WHERE recipient = ?1 AND created >= ?2", &q);
    if (st != CANDOR_OK)
        return st;
    sqlite3_bind_text(q, 1, sender, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 2, since);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        *count = sqlite3_column_int64(q, 0);
    else
        st = candor__store_fail(store, rc, "acks");
    release(q);
    return st;
}

candor_status_t candor_store_ack_sent(struct candor_store *store, const char *ticket,
                                      int64_t now)
{
    if (!store || !ticket)
        return candor__fail(CANDOR_EINVAL, "store_ack_sent: no store or ticket");
    if (store->readonly)
        return candor__fail(CANDOR_EINVAL, "store_ack_sent: the state is open read-only");
    int64_t id = candor__ticket_parse(ticket);
    if (!id)
        return candor__fail(CANDOR_EINVAL, "store_ack_sent: \"%.40s\" is not a ticket", ticket);
    sqlite3_stmt *q = NULL;
    candor_status_t st = candor__store_prepare(store,
        "UPDATE acks SET status = 'sent', sent_at = ?2 WHERE ticket = ?1", &q);
    if (st != CANDOR_OK)
        return st;
    sqlite3_bind_int64(q, 1, id);
    sqlite3_bind_int64(q, 2, candor__now(now));
    int rc = sqlite3_step(q);
    if (rc != SQLITE_DONE)
        st = candor__store_fail(store, rc, "ack_sent");
    else if (sqlite3_changes(store->db) == 0)
        st = candor__fail(CANDOR_ENOTFOUND, "store_ack_sent: no acknowledgement for %s", ticket);
    sqlite3_finalize(q);
    return st;
}

candor_status_t candor_store_pending_acks(struct candor_store *store, char **json)
{
    if (json)
        *json = NULL;
    if (!store || !json)
        return candor__fail(CANDOR_EINVAL, "store_pending_acks: no store or output");
    sqlite3_stmt *q = NULL;
    candor_status_t st = candor__store_prepare(store,
        "SELECT ticket, rcpt, message FROM acks WHERE status = 'pending' "
        "ORDER BY created, ticket", &q);
    if (st != CANDOR_OK)
        return st;
    json_object *arr = json_object_new_array();
    if (!arr) {
        sqlite3_finalize(q);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        char ref[32];
        candor__ticket_format(ref, sizeof ref, sqlite3_column_int64(q, 0));
        json_object *o = json_object_new_object();
        if (!o) {
            st = candor__fail(CANDOR_ENOMEM, "out of memory");
            break;
        }
        json_object_object_add(o, "ticket", json_object_new_string(ref));
        json_object_object_add(o, "recipient",
                               json_object_new_string((const char *)sqlite3_column_text(q, 1)));
        json_object_object_add(o, "message",
                               json_object_new_string((const char *)sqlite3_column_text(q, 2)));
        json_object_array_add(arr, o);
    }
    if (st == CANDOR_OK && rc != SQLITE_DONE)
        st = candor__store_fail(store, rc, "pending_acks");
    sqlite3_finalize(q);
    if (st == CANDOR_OK) {
        *json = candor__strdup(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE));
        if (!*json)
            st = candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    json_object_put(arr);
    return st;
}
