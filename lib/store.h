/*
 * store.h — the state store behind one narrow interface (store.c, issue 4;
 * the reply-history part in store-history.c, issue 5). SQLite in WAL mode
 * with a busy timeout; schema versioned and migrated in store.c, which
 * calls candor__store_history_migrate() for the history tables.
 * Everything here is per handle; a handle belongs to one thread.
 */
#ifndef CANDOR_STORE_H
#define CANDOR_STORE_H
#include "internal.h"

struct sqlite3;

/* The SQLite handle, for the modules that own tables of their own
 * (store-history.c). */
CANDOR_HIDDEN struct sqlite3 *candor__store_sqlite(struct candor_store *store);
CANDOR_HIDDEN bool candor__store_readonly(const struct candor_store *store);
/* Begin/commit an IMMEDIATE transaction (busy -> CANDOR_ETEMPFAIL). */
CANDOR_HIDDEN candor_status_t candor__store_begin(struct candor_store *store);
CANDOR_HIDDEN candor_status_t candor__store_commit(struct candor_store *store);
CANDOR_HIDDEN void candor__store_rollback(struct candor_store *store);

/* ---- reply history (store-history.c, issue 5) ---- */
/* Create or upgrade the history tables from schema version FROM to the
 * current one, inside store.c's migration transaction. */
CANDOR_HIDDEN candor_status_t candor__store_history_migrate(struct sqlite3 *db, int from_version);
#endif
