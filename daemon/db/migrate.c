/*
 * migrate.c - apply the embedded schema migrations under an advisory lock,
 * so that nodes starting together migrate once and a binary never runs
 * against a schema newer than it knows.
 */
#include "db/migrate.h"
#include "db/db.h"
#include "db/db_internal.h"

#include "base/err.h"
#include "base/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

uint64_t db__fnv1a64(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

int db__migrations_check(const struct db_migration *m, int n)
{
    if (n < 0 || (n > 0 && !m)) {
        gr_error("db: bad migration table (%d entries)", n);
        return GR_EINVAL;
    }
    for (int i = 0; i < n; i++) {
        if (m[i].version <= 0 || !m[i].name || !m[i].sql) {
            gr_error("db: migration #%d has no version, name or sql", i);
            return GR_EINVAL;
        }
        if (i > 0 && m[i].version <= m[i - 1].version) {
            gr_error("db: migrations out of order: %04d after %04d", m[i].version,
                     m[i - 1].version);
            return GR_EINVAL;
        }
    }
    return GR_OK;
}

static int64_t migrate__ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for the migration lock, saying so if another node holds it. */
static int migrate__lock(struct db_conn *c)
{
    char key[32];
    const char *params[1] = {key};
    struct db_res *r;
    snprintf(key, sizeof(key), "%" PRId64, DB__MIGRATE_LOCK_KEY);
    int rc = db_exec(c, &r, "SELECT pg_try_advisory_xact_lock($1::bigint)", 1, params);
    if (rc != GR_OK)
        return rc;
    bool got = db_res_get(r, 0, 0)[0] == 't';
    db_res_free(r);
    if (got)
        return GR_OK;
    gr_info("db: another node is migrating the schema; waiting for it");
    return db_exec(c, NULL, "SELECT pg_advisory_xact_lock($1::bigint)", 1, params);
}

/* The highest version in schema_migrations (0 if none) into *cur. */
static int migrate__current(struct db_conn *c, int *cur)
{
    struct db_res *r;
    int rc = db_exec(c, &r, "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL);
    if (rc != GR_OK)
        return rc;
    char *end;
    long v = strtol(db_res_get(r, 0, 0), &end, 10);
    bool ok = db_res_rows(r) == 1 && *end == '\0' && v >= 0 && v <= INT32_MAX;
    db_res_free(r);
    if (!ok) {
        gr_error("db: cannot read the schema version from schema_migrations");
        return GR_EDB;
    }
    *cur = (int)v;
    return GR_OK;
}

/*
 * Every migration of m[] below cur must be recorded: one that is not was
 * added below the newest applied one and would be skipped silently (its
 * number must be above every released one). GR_EINVAL (logged), GR_EDB.
 */
static int migrate__none_skipped(struct db_conn *c, const struct db_migration *m, int n, int cur)
{
    struct db_res *r;
    int rc = db_exec(c, &r, "SELECT version FROM schema_migrations ORDER BY version", 0, NULL);
    if (rc != GR_OK)
        return rc;
    int rows = db_res_rows(r), k = 0;
    for (int i = 0; i < n && m[i].version < cur && rc == GR_OK; i++) {
        while (k < rows && atoi(db_res_get(r, k, 0)) < m[i].version)
            k++;
        if (k < rows && atoi(db_res_get(r, k, 0)) == m[i].version)
            continue;
        gr_error("db: migration %04d_%s is below the database's schema version %d but was never"
                 " applied: a migration was added below the newest one; give it a number"
                 " above %d",
                 m[i].version, m[i].name, cur, cur);
        rc = GR_EINVAL;
    }
    db_res_free(r);
    return rc;
}

static int migrate__apply(struct db_conn *c, const struct db_migration *m)
{
    int64_t t0 = migrate__ms();
    int rc = db__exec_script(c, m->sql);
    if (rc != GR_OK) {
        gr_error("db: migration %04d_%s failed: %s", m->version, m->name, db_last_error(c));
        return GR_EDB;
    }
    if (!db__conn_in_txn(c)) {
        gr_error("db: migration %04d_%s ended the migration transaction; remove its "
                 "BEGIN/COMMIT (the database may be partly migrated)",
                 m->version, m->name);
        return GR_EINVAL;
    }
    char version[16];
    snprintf(version, sizeof(version), "%d", m->version);
    const char *params[2] = {version, m->name};
    rc = db_exec(c, NULL, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
                 params);
    if (rc != GR_OK)
        return GR_EDB;
    gr_info("db: applied migration %04d_%s (%" PRId64 " ms)", m->version, m->name,
            migrate__ms() - t0);
    return GR_OK;
}

int db_migrate(struct db_pool *p, const struct db_migration *m, int n, int *from, int *to)
{
    struct db_conn *c;
    int cur = 0;
    int rc;

    if (from)
        *from = 0;
    if (to)
        *to = 0;
    rc = db__migrations_check(m, n);
    if (rc != GR_OK)
        return rc;
    int newest = n > 0 ? m[n - 1].version : 0;

    rc = db_acquire(p, DB_ACQUIRE_TIMEOUT_MS, &c);
    if (rc != GR_OK)
        return GR_EDB;
    rc = db_begin(c);
    if (rc != GR_OK)
        goto out_release;
    /* a long migration or a wait for the lock must not hit a role's timeouts */
    rc = db__exec_script(c, "SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0");
    if (rc != GR_OK)
        goto out_rollback;
    rc = migrate__lock(c);
    if (rc != GR_OK)
        goto out_rollback;
    rc = db_exec(c, NULL,
                 "CREATE TABLE IF NOT EXISTS schema_migrations ("
                 "version int PRIMARY KEY, name text NOT NULL, "
                 "applied_at timestamptz NOT NULL DEFAULT now())",
                 0, NULL);
    if (rc != GR_OK)
        goto out_rollback;
    rc = migrate__current(c, &cur);
    if (rc == GR_OK)
        rc = migrate__none_skipped(c, m, n, cur);
    if (rc != GR_OK)
        goto out_rollback;
    if (cur > newest) {
        gr_error("db: database schema version %d is newer than this granaryd knows (%d); "
                 "upgrade granaryd",
                 cur, newest);
        if (from)
            *from = cur;
        if (to)
            *to = cur;
        rc = GR_ESCHEMA;
        goto out_rollback;
    }
    if (cur == newest) {
        gr_info("db: schema is up to date at version %d", cur);
    } else {
        gr_info("db: migrating schema from version %d to %d", cur, newest);
        for (int i = 0; i < n; i++) {
            if (m[i].version <= cur)
                continue;
            rc = migrate__apply(c, &m[i]);
            if (rc != GR_OK)
                goto out_rollback;
        }
    }
    rc = db_commit(c);
    if (rc != GR_OK) {
        rc = GR_EDB;
        goto out_release;
    }
    if (from)
        *from = cur;
    if (to)
        *to = newest;
    db_release(c);
    return GR_OK;

out_rollback:
    (void)db_rollback(c);
    if (rc != GR_ESCHEMA && rc != GR_EINVAL)
        rc = GR_EDB;
out_release:
    db_release(c);
    return rc;
}
