/*
 * store.c — the persistent state: tickets, threads, acknowledgements (with
 * a pending/sent outbox), promises and first replies; the reply-history
 * tables of the canned check are created through
 * candor__store_history_migrate() (store-history.c).
 *
 * Two backends behind the seam of store-db.h: an SQLite file (a plain
 * path: WAL mode, busy timeout, store-sqlite.c) so the CLI, the daemon and
 * other processes on one host share one file; or a PostgreSQL server (a
 * "postgresql://" URI or a libpq "key=value" string, store-pg.c) so that
 * several mail hosts share one state. Every change of state is one write
 * transaction during which no other writer can decide anything (SQLite:
 * BEGIN IMMEDIATE; PostgreSQL: the decision lock of store-pg.c), so two
 * processes can never both decide "not yet acknowledged" for the same
 * thread or sender. Busy past the timeout, or the server unreachable, is
 * CANDOR_ETEMPFAIL (exit 75 / LMTP 451: the MTA retries).
 *
 * Schema versions (SQLite: PRAGMA user_version; PostgreSQL: the table
 * candor_schema), migrated forward at open inside one write transaction,
 * from one description for both backends (the @ tokens of
 * candor__db_ddl() cover where the dialects differ):
 *   1  tickets, threads, acks, promises, first_replies, replies, decisions
 * A READONLY open of a missing SQLite file gives an empty in-memory state,
 * so `triage` and `check` work before anything was ever acknowledged; a
 * READONLY open never creates or migrates a file. A READONLY open of a
 * PostgreSQL database does create the schema when it is missing (a server
 * database is shared, not a file left behind), then only reads.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>
#include "ctx.h"
#include "store.h"

/* ids looked up in one statement by candor__store_thread_find() */
#define THREAD_BATCH 8

struct candor_store {
    struct candor_db *db;
    const struct candor_ctx *ctx;
    bool readonly;
    int depth;            /* nesting of candor__store_begin() */
    bool rolled_back;     /* a nested rollback happened */
    bool delivery_known;  /* the delivery log's table was seen (store-delivery.c) */
    /* statements of the per-message lookups, prepared once (reset after
     * each use, so no read transaction stays open) */
    struct candor_stmt *q_thread[THREAD_BATCH], *q_acks;   /* q_thread[k]: k + 1 ids */
    /* the last candor__store_thread_find() inside a write transaction: the
     * acknowledgement decision asks twice for the same ids (the autoreply
     * check, then the ticket) with nothing written in between; the second
     * answer is this one while candor__db_steps() has not moved */
    struct {
        bool valid;
        unsigned long steps;
        char *key;            /* the ids, each followed by a NUL */
        size_t key_len;
        int64_t ticket;
        bool acked;
    } memo;
};

/* The cached statement *SLOT for SQL, prepared on first use. */
static candor_status_t cached(struct candor_store *store, struct candor_stmt **slot,
                              const char *what, const char *sql, struct candor_stmt **out)
{
    if (!*slot) {
        candor_status_t st = candor__db_prepare(store->db, what, sql, slot);
        if (st != CANDOR_OK)
            return st;
    }
    *out = *slot;
    return CANDOR_OK;
}

candor_status_t candor__store_prepare(struct candor_store *store, const char *what,
                                      const char *sql, struct candor_stmt **out)
{
    *out = NULL;
    if (!store)
        return candor__fail(CANDOR_EINVAL, "store: no handle");
    return candor__db_prepare(store->db, what, sql, out);
}

static const char *const schema_v1 =
    "CREATE TABLE tickets("
    " id @SERIAL,"
    " created @INT NOT NULL,"             /* arrival (ack time), Unix s */
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
    " ticket @INT NOT NULL REFERENCES tickets(id),"
    " created @INT NOT NULL);"
    "CREATE INDEX threads_ticket ON threads(ticket);"
    /* acknowledgements whose decision was send=true: the outbox */
    "CREATE TABLE acks("
    " ticket @INTPK REFERENCES tickets(id),"
    " recipient TEXT NOT NULL,"           /* normalised, for the rate limit */
    " rcpt TEXT NOT NULL,"                /* as the envelope gave it */
    " created @INT NOT NULL,"
    " status TEXT NOT NULL CHECK (status IN ('pending', 'sent')),"
    " sent_at @INT,"
    " message_id TEXT,"
    " message TEXT NOT NULL);"
    "CREATE INDEX acks_recipient ON acks(recipient, created);"
    "CREATE INDEX acks_status ON acks(status, created);"
    "CREATE TABLE promises("
    " ticket @INTPK REFERENCES tickets(id),"
    " intent TEXT NOT NULL,"
    " made @INT NOT NULL,"
    " due @INT NOT NULL,"
    " measured @INT NOT NULL,"            /* 1 \"we will\", 0 \"we aim to\" */
    " basis TEXT NOT NULL);"
    "CREATE TABLE first_replies("
    " ticket @INTPK REFERENCES tickets(id),"
    " intent TEXT NOT NULL,"
    " replied @INT NOT NULL,"
    " wait @INT NOT NULL,"                /* seconds, wall clock */
    " business_wait @INT NOT NULL,"       /* seconds of business time */
    " kept @INT);"                        /* NULL: no promise was made */
    "CREATE INDEX first_replies_intent ON first_replies(intent, replied);"
    "CREATE INDEX first_replies_replied ON first_replies(replied);"
    "CREATE TABLE replies("
    " id @ID,"
    " ticket @INT,"
    " sent @INT NOT NULL,"
    " recipient TEXT,"
    " message_id TEXT);"
    /* every decision, for audit and stats */
    "CREATE TABLE decisions("
    " id @ID,"
    " decided @INT NOT NULL,"
    " sender TEXT,"
    " message_id TEXT,"
    " reason TEXT NOT NULL,"
    " ticket @INT);";

/* The versioned description of the schema, for both backends: each step
 * brings a database at VERSION - 1 to VERSION. */
static const struct migration {
    int version;
    const char *what;
    const char *ddl;
} migrations[] = {
    { 1, "create schema", schema_v1 },
    /* later versions: { 2, "what", "ALTER TABLE ..." }, */
};

static candor_status_t migrate(struct candor_store *store)
{
    candor_status_t st = candor__store_begin(store);
    if (st != CANDOR_OK)
        return st;
    int version = 0;
    st = candor__db_schema_version(store->db, &version);
    if (st == CANDOR_OK && version > CANDOR_STORE_SCHEMA_VERSION)
        st = candor__fail(CANDOR_EIO, "store: schema version %d is newer than this "
                          "library's %d", version, CANDOR_STORE_SCHEMA_VERSION);
    if (st == CANDOR_OK && version < CANDOR_STORE_SCHEMA_VERSION) {
        for (size_t i = 0; st == CANDOR_OK && i < sizeof migrations / sizeof *migrations; i++)
            if (migrations[i].version > version)
                st = candor__db_ddl(store->db, migrations[i].what, migrations[i].ddl);
        if (st == CANDOR_OK)
            st = candor__store_history_migrate(store->db, version);
        if (st == CANDOR_OK)
            st = candor__db_set_schema_version(store->db, CANDOR_STORE_SCHEMA_VERSION);
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

/* Migrate a handle that is open read-write underneath, whatever the
 * store's own mode. */
static candor_status_t migrate_rw(struct candor_store *s)
{
    bool was_ro = s->readonly;
    s->readonly = false;
    candor_status_t st = migrate(s);
    s->readonly = was_ro;
    return st;
}

static candor_status_t open_sqlite(struct candor_store *s, const char *path, bool ro)
{
    bool memory = ro && file_missing(path);
    candor_status_t st = candor__db_open_sqlite(&s->db, path, memory ? CANDOR_DB_MEMORY
                                                : ro ? CANDOR_DB_RO : CANDOR_DB_RW);
    if (st != CANDOR_OK)
        return st;
    if (memory || !ro)
        return migrate_rw(s);
    /* read-only: the file must already carry our schema, or be empty
     * (then it behaves as an empty state). */
    int version = 0;
    st = candor__db_schema_version(s->db, &version);
    if (st != CANDOR_OK || version == CANDOR_STORE_SCHEMA_VERSION)
        return st;
    if (version != 0)
        return candor__fail(CANDOR_EIO, "store: %s: schema version %d, this library "
                            "reads %d (open it read-write once to migrate)", path,
                            version, CANDOR_STORE_SCHEMA_VERSION);
    /* empty or foreign file: behave as an empty state */
    candor__db_close(s->db);
    s->db = NULL;
    st = candor__db_open_sqlite(&s->db, path, CANDOR_DB_MEMORY);
    if (st != CANDOR_OK)
        return st;
    return migrate_rw(s);
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
    candor_status_t st;
    if (candor__db_is_pg(path)) {
        st = candor__db_open_pg(&s->db, path);
        /* an up-to-date schema needs no write transaction: opening never
         * waits for another host's decision in progress */
        int version = 0;
        if (st == CANDOR_OK)
            st = candor__db_schema_version(s->db, &version);
        if (st == CANDOR_OK && version != CANDOR_STORE_SCHEMA_VERSION)
            st = migrate_rw(s);
    } else {
        st = open_sqlite(s, path, ro);
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
    for (int i = 0; i < THREAD_BATCH; i++)
        candor__stmt_free(store->q_thread[i]);
    free(store->memo.key);
    candor__stmt_free(store->q_acks);
    if (store->db) {
        if (store->depth > 0)
            candor__db_rollback(store->db);
        candor__db_close(store->db);
    }
    free(store);
}

struct candor_db *candor__store_db(struct candor_store *store)
{
    return store ? store->db : NULL;
}

bool candor__store_delivery_known(const struct candor_store *store)
{
    return store && store->delivery_known;
}

void candor__store_set_delivery_known(struct candor_store *store)
{
    if (store)
        store->delivery_known = true;
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
    candor_status_t st = candor__db_begin(store->db, !store->readonly);
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
    candor_status_t st = candor__db_commit(store->db);   /* rolls back on failure */
    if (st != CANDOR_OK)
        store->rolled_back = false;
    return st;
}

void candor__store_rollback(struct candor_store *store)
{
    if (!store || store->depth == 0)
        return;
    candor__db_rollback(store->db);
    /* an outer commit must notice that its work is gone */
    store->rolled_back = store->depth > 1;
    store->depth = 0;
}

bool candor__store_in_group(const struct candor_store *store)
{
    return store && store->depth > 0;
}

candor_status_t candor_store_begin(struct candor_store *store)
{
    return candor__store_begin(store);
}

candor_status_t candor_store_commit(struct candor_store *store)
{
    return candor__store_commit(store);
}

void candor_store_rollback(struct candor_store *store)
{
    candor__store_rollback(store);
    if (store)
        store->rolled_back = false;   /* the caller knows */
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

/* The statement that looks up K ids (1..THREAD_BATCH) at once: one round
 * trip to a server instead of K. */
static candor_status_t thread_query(struct candor_store *store, size_t k, struct candor_stmt **out)
{
    static const char head[] =
        "SELECT t.message_id, t.ticket, EXISTS(SELECT 1 FROM acks a WHERE a.ticket = t.ticket) "
        " OR EXISTS(SELECT 1 FROM first_replies f WHERE f.ticket = t.ticket) "
        "FROM threads t WHERE t.message_id IN (?1";
    if (store->q_thread[k - 1]) {
        *out = store->q_thread[k - 1];
        return CANDOR_OK;
    }
    char sql[sizeof head + THREAD_BATCH * 8];
    size_t len = (size_t)snprintf(sql, sizeof sql, "%s", head);
    for (size_t i = 2; i <= k && len < sizeof sql; i++)
        len += (size_t)snprintf(sql + len, sizeof sql - len, ", ?%zu", i);
    if (len + 2 > sizeof sql)
        return candor__fail(CANDOR_ERROR, "store: threads: query too long");
    memcpy(sql + len, ")", 2);
    candor_status_t st = cached(store, &store->q_thread[k - 1], "threads", sql, out);
    if (st == CANDOR_OK)
        candor__stmt_set_pure(*out);
    return st;
}

/* The ids IDS[0..N) as one memo key (each followed by a NUL); NULL on
 * out-of-memory. */
static char *memo_key(const char *const *ids, size_t n, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] && *ids[i])
            total += strlen(ids[i]) + 1;
    char *key = malloc(total ? total : 1), *p = key;
    if (!key)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (ids[i] && *ids[i]) {
            size_t l = strlen(ids[i]) + 1;
            memcpy(p, ids[i], l);
            p += l;
        }
    *len = total;
    return key;
}

candor_status_t candor__store_thread_find(struct candor_store *store, const char *const *ids,
                                          size_t n, int64_t *ticket, bool *acked)
{
    *ticket = 0;
    *acked = false;
    candor_status_t st = CANDOR_OK;
    /* inside a write transaction nobody else writes (the write lock), so
     * the same ids with nothing stepped since give the same answer */
    bool memo = store->depth > 0 && !store->readonly && candor__db_in_transaction(store->db);
    size_t key_len = 0;
    char *key = memo ? memo_key(ids, n, &key_len) : NULL;
    if (key && store->memo.valid && store->memo.steps == candor__db_steps(store->db) &&
        store->memo.key_len == key_len && memcmp(store->memo.key, key, key_len) == 0) {
        free(key);
        *ticket = store->memo.ticket;
        *acked = store->memo.acked;
        return CANDOR_OK;
    }
    store->memo.valid = false;
    /* in chunks of up to THREAD_BATCH ids, in order; within a chunk the
     * rows are matched back to the ids, so the answer is the one of asking
     * id by id: the first id whose ticket was acknowledged, else the first
     * id found */
    for (size_t i = 0; i < n && !*acked && st == CANDOR_OK;) {
        const char *chunk[THREAD_BATCH];
        size_t k = 0;
        for (; i < n && k < THREAD_BATCH; i++)
            if (ids[i] && *ids[i])
                chunk[k++] = ids[i];
        if (!k)
            break;
        struct candor_stmt *q = NULL;
        st = thread_query(store, k, &q);
        if (st != CANDOR_OK)
            break;
        for (size_t m = 0; m < k; m++)
            candor__stmt_bind_text(q, (int)m + 1, chunk[m]);
        int64_t found[THREAD_BATCH] = { 0 };
        bool was_acked[THREAD_BATCH] = { false };
        int rc;
        while ((rc = candor__stmt_step(q)) == CANDOR_DB_ROW) {
            const char *id = candor__stmt_text(q, 0);
            for (size_t m = 0; id && m < k; m++)
                if (strcmp(chunk[m], id) == 0) {   /* the same id twice: both */
                    found[m] = candor__stmt_int64(q, 1);
                    was_acked[m] = candor__stmt_int64(q, 2) != 0;
                }
        }
        if (rc != CANDOR_DB_DONE)
            st = (candor_status_t)rc;
        candor__stmt_reset(q);
        for (size_t m = 0; st == CANDOR_OK && m < k && !*acked; m++)
            if (found[m] && (!*ticket || was_acked[m])) {
                *ticket = found[m];
                *acked = was_acked[m];
            }
    }
    if (st == CANDOR_OK && key) {
        free(store->memo.key);
        store->memo.key = key;
        store->memo.key_len = key_len;
        store->memo.steps = candor__db_steps(store->db);
        store->memo.ticket = *ticket;
        store->memo.acked = *acked;
        store->memo.valid = true;
        key = NULL;
    }
    free(key);
    return st;
}

candor_status_t candor__store_acks_since(struct candor_store *store, const char *sender,
                                         int64_t since, int64_t *count)
{
    *count = 0;
    struct candor_stmt *q = NULL;
    candor_status_t st = cached(store, &store->q_acks, "acks",
        "SELECT count(*) FROM acks WHERE recipient = ?1 AND created >= ?2", &q);
    if (st != CANDOR_OK)
        return st;
    candor__stmt_set_pure(q);
    candor__stmt_bind_text(q, 1, sender);
    candor__stmt_bind_int64(q, 2, since);
    int rc = candor__stmt_step(q);
    if (rc == CANDOR_DB_ROW)
        *count = candor__stmt_int64(q, 0);
    else
        st = rc == CANDOR_DB_DONE ? CANDOR_OK : (candor_status_t)rc;
    candor__stmt_reset(q);
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
    struct candor_stmt *q = NULL;
    candor_status_t st = candor__store_prepare(store, "ack_sent",
        "UPDATE acks SET status = 'sent', sent_at = ?2 WHERE ticket = ?1", &q);
    if (st != CANDOR_OK)
        return st;
    candor__stmt_bind_int64(q, 1, id);
    candor__stmt_bind_int64(q, 2, candor__now(now));
    st = candor__stmt_run(q);
    if (st == CANDOR_OK && candor__stmt_changes(q) == 0)
        st = candor__fail(CANDOR_ENOTFOUND, "store_ack_sent: no acknowledgement for %s", ticket);
    candor__stmt_free(q);
    return st;
}

candor_status_t candor_store_pending_acks(struct candor_store *store, char **json)
{
    if (json)
        *json = NULL;
    if (!store || !json)
        return candor__fail(CANDOR_EINVAL, "store_pending_acks: no store or output");
    struct candor_stmt *q = NULL;
    candor_status_t st = candor__store_prepare(store, "pending_acks",
        "SELECT ticket, rcpt, message FROM acks WHERE status = 'pending' "
        "ORDER BY created, ticket", &q);
    if (st != CANDOR_OK)
        return st;
    json_object *arr = json_object_new_array();
    if (!arr) {
        candor__stmt_free(q);
        return candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    int rc;
    while ((rc = candor__stmt_step(q)) == CANDOR_DB_ROW) {
        char ref[32];
        candor__ticket_format(ref, sizeof ref, candor__stmt_int64(q, 0));
        json_object *o = json_object_new_object();
        if (!o) {
            st = candor__fail(CANDOR_ENOMEM, "out of memory");
            break;
        }
        json_object_object_add(o, "ticket", json_object_new_string(ref));
        json_object_object_add(o, "recipient", json_object_new_string(candor__stmt_text(q, 1)));
        json_object_object_add(o, "message", json_object_new_string(candor__stmt_text(q, 2)));
        json_object_array_add(arr, o);
    }
    if (st == CANDOR_OK && rc != CANDOR_DB_DONE)
        st = (candor_status_t)rc;
    candor__stmt_free(q);
    if (st == CANDOR_OK) {
        *json = candor__strdup(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE));
        if (!*json)
            st = candor__fail(CANDOR_ENOMEM, "out of memory");
    }
    json_object_put(arr);
    return st;
}
