/*
 * fence.c - the primary's fenced actions: a share lock on the lease row,
 * checked for holder and token, and a row of primary_task_log, in the
 * caller's transaction (db.h db_fence; docs/cluster.md "The primary").
 */
#include "db/db.h"

#include "base/err.h"

#include <stdio.h>

int db_fence(struct db_conn *c, const char *node, uint64_t token, const char *task,
             const char *subject)
{
    if (token == 0)
        return GR_ECONFLICT;
    char tok[24];
    snprintf(tok, sizeof(tok), "%llu", (unsigned long long)token);
    const char *p[4] = {node, tok, task, subject ? subject : ""};
    struct db_res *res = NULL;
    int rc = db_exec(c, &res,
                     "SELECT 1 FROM cluster_leases WHERE name = 'primary' AND holder = $1 AND"
                     " token = $2::bigint FOR KEY SHARE",
                     2, p);
    if (rc == GR_OK && db_res_rows(res) != 1)
        rc = GR_ECONFLICT;
    db_res_free(res);
    if (rc == GR_OK)
        rc = db_exec(c, NULL,
                     "INSERT INTO primary_task_log (token, node, task, subject)"
                     " VALUES ($2::bigint, $1, $3, $4)",
                     4, p);
    return rc;
}
