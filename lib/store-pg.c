/*
 * store-pg.c — the PostgreSQL backend of the store seam (store-db.h).
 * (First step of issue 11: not yet built in; the libpq backend follows.)
 */
#include "store-db.h"

candor_status_t candor__db_open_pg(struct candor_db **out, const char *conninfo)
{
    (void)conninfo;
    *out = NULL;
    return candor__fail(CANDOR_EINVAL, "store: PostgreSQL support is not built in");
}
