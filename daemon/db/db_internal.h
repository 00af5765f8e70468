/*
 * db_internal.h - what pool.c shares with migrate.c, embedded.c and
 * tests/unit/test_db.c. Not for use outside daemon/db/. Free of libpq types
 * so that the unit test can include it without libpq-fe.h.
 */
#ifndef DB_DB_INTERNAL_H
#define DB_DB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db_conn;
struct db_migration;

/* Defaults added to the connection string (README "The pool"): connecting
 * gives up on a host after 3 s; unacknowledged data after 6 s; a statement
 * after 30 s. */
#define DB_CONNECT_TIMEOUT_S "3"
#define DB_TCP_USER_TIMEOUT_MS "6000"
#define DB_STATEMENT_TIMEOUT_MS "30000"
/* The server's side of the same: it notices a client that vanished (a
 * node cut off) within about 9 s and ends its session, rolling back what
 * it held (row locks a live node would wait for). */
#define DB_SERVER_OPTIONS                                                                          \
    " -c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=2"             \
    " -c tcp_user_timeout=" DB_TCP_USER_TIMEOUT_MS

/* The connection parameters of a pool, as PQconnectdbParams() takes them. */
struct db__params {
    char **keys; /* NULL-terminated, malloc'ed */
    char **vals; /* parallel to keys */
    int n;
};

/*
 * Parse conninfo (URL or key=value) into p, adding application_name=granary,
 * connect_timeout=DB_CONNECT_TIMEOUT_S, TCP keepalives, tcp_user_timeout and
 * a statement_timeout (options) when neither conninfo nor the environment
 * (PGAPPNAME, PGCONNECT_TIMEOUT, PGOPTIONS) sets them.
 * Returns GR_OK; GR_EINVAL with libpq's reason in err; GR_ENOMEM.
 */
int db__params_build(const char *conninfo, struct db__params *p, char *err, size_t errlen);
void db__params_free(struct db__params *p);
/* The value for key, or NULL. */
const char *db__params_get(const struct db__params *p, const char *key);
/* "host=... port=... dbname=... user=..." for log lines: never the password. */
void db__params_describe(const struct db__params *p, char *buf, size_t len);

/* The session must not be reused: the server is read-only (25006, a standby
 * or a demoted primary), shutting down (57P0x) or the connection failed (08). */
bool db__sqlstate_stale(const char *sqlstate);

/* The gr_err for a SQLSTATE (NULL or "" when the failure is not the server's). */
int db__sqlstate_err(const char *sqlstate);

/* Count one statement sent to a server (see db_query_count()). */
void db__count_query(void);

/*
 * Run sql, which may hold several statements, with the simple protocol
 * (PQexec) on an acquired connection: for migration bodies. Errors as
 * db_exec(); never resent.
 */
int db__exec_script(struct db_conn *c, const char *sql);

/* True when the server reports c inside a transaction (open or failed). */
bool db__conn_in_txn(struct db_conn *c);

/*
 * The pg_advisory_xact_lock key that serialises db_migrate() across nodes:
 * FNV-1a 64 of "granary-migrate", as a signed bigint.
 */
#define DB__MIGRATE_LOCK_KEY INT64_C(1398258896788483623)
uint64_t db__fnv1a64(const char *s);

/*
 * GR_OK when the n migrations have positive versions in strictly ascending
 * order and a name and SQL each; GR_EINVAL (logged) otherwise.
 */
int db__migrations_check(const struct db_migration *m, int n);

#endif
