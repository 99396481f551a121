/* store-history.c — STUB: the reply history tables (issue 5). */
#include "store.h"
candor_status_t candor__store_history_migrate(struct sqlite3 *db, int from_version)
{ (void)db; (void)from_version; return CANDOR_OK; }
