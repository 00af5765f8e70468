/*
 * db.h - the connection pool and statements: granary's only door to
 * PostgreSQL. Nothing above the db layer sees libpq; results come back as
 * struct db_res, text cells indexed by row and column.
 *
 * Caveats
 * - Threads: a pool is shared by any number of threads (mutex + condition
 *   variable, fixed size, no threads of its own). A struct db_conn belongs to
 *   the one thread that acquired it until db_release(); a struct db_res may be
 *   read by any one thread at a time and is freed by its owner.
 * - Reconnects: connections are opened lazily on db_acquire() and reset when
 *   found dead. A statement that fails because the connection died is sent
 *   again once, after a reset, only when the connection was outside a
 *   transaction; inside one the transaction is lost and the caller gets
 *   GR_EDB (see daemon/db/README.md).
 * - fork: a child must not use a pool inherited from its parent.
 */
#ifndef DB_DB_H
#define DB_DB_H

#include <stdbool.h>
#include <stdint.h>

struct db_pool;
struct db_conn;
struct db_res;
struct gr_arena;

/* Milliseconds db_exec1() waits for a free connection. */
#define DB_ACQUIRE_TIMEOUT_MS 5000

/*
 * Create a pool of up to size connections to the server described by
 * conninfo (a "postgresql://..." URL or "key=value ..." string).
 * application_name=granary and connect_timeout=5 are added unless conninfo
 * (or PGAPPNAME / PGCONNECT_TIMEOUT) sets them.
 *
 * Lazy: no connection is made here, so a server that is down right now is
 * not an error; each slot connects on the first db_acquire() that takes it.
 *
 * @param[in] conninfo  connection string; copied, may contain a password
 *                      (it is never logged)
 * @param[in] size      number of connections, 1..1000
 * @param[out] out      the pool; free with db_pool_close()
 * @return GR_OK; GR_EINVAL if conninfo does not parse or size is out of
 *         range (the reason is logged); GR_ENOMEM.
 */
int db_pool_open(const char *conninfo, int size, struct db_pool **out)
    __attribute__((warn_unused_result));

/*
 * Close every connection and free the pool. All connections must have been
 * released. p may be NULL.
 */
void db_pool_close(struct db_pool *p);

/*
 * Take a connection, waiting up to timeout_ms for one to be free
 * (0: do not wait; negative: wait forever), and connect it if it is not
 * connected. Connecting is bounded by connect_timeout, not by timeout_ms.
 *
 * @return GR_OK with *out set; GR_EDB if none became free in time or the
 *         server cannot be reached (logged, at most every 10 s while down).
 * @note Always pair with db_release().
 */
int db_acquire(struct db_pool *p, int timeout_ms, struct db_conn **out)
    __attribute__((warn_unused_result));

/*
 * Give a connection back. A transaction still open is rolled back; a
 * connection that is broken (or whose state is unknown) is closed here and
 * reconnected by the next db_acquire() that takes its slot. c may be NULL.
 */
void db_release(struct db_conn *c);

/*
 * Run one statement with text parameters ($1..$n) and text results.
 *
 * @param[in] c        an acquired connection
 * @param[out] out     the result rows, or NULL to discard them; set only on
 *                     GR_OK, owned by the caller (db_res_free / db_res_arena)
 * @param[in] sql      one statement
 * @param[in] nparams  number of entries in params
 * @param[in] params   values for $1..$n; a NULL entry is SQL NULL
 * @return GR_OK;
 *         GR_EEXIST    unique_violation (23505);
 *         GR_ENOTFOUND foreign_key_violation (23503);
 *         GR_EINVAL    other data exceptions and integrity violations
 *                      (classes 22 and 23);
 *         GR_EDB       anything else: connection lost, server down or
 *                      shutting down, syntax error, a statement after an
 *                      error inside a transaction (answer 503).
 *         Failures are logged with their SQLSTATE and message; data errors
 *         (22/23) at info level, the rest as errors.
 * @note If the connection is found dead outside a transaction, it is reset
 *       once and the statement sent again. Inside a transaction the result
 *       is GR_EDB and every later statement on c fails with GR_EDB until
 *       db_release(), which closes the connection.
 */
int db_exec(struct db_conn *c, struct db_res **out, const char *sql, int nparams,
            const char *const *params) __attribute__((warn_unused_result));

/*
 * db_acquire(p, DB_ACQUIRE_TIMEOUT_MS), db_exec(), db_release(): one
 * autocommitted statement. Same results as those two.
 */
int db_exec1(struct db_pool *p, struct db_res **out, const char *sql, int nparams,
             const char *const *params) __attribute__((warn_unused_result));

/*
 * Transaction control: BEGIN, COMMIT, ROLLBACK.
 * db_commit() returns GR_EDB if the server rolled the transaction back
 * instead (an earlier statement in it failed), and GR_EDB or a data error
 * code (a deferred constraint) if COMMIT itself failed.
 * db_rollback() returns GR_OK when the connection is already dead: the
 * server has dropped the transaction either way.
 */
int db_begin(struct db_conn *c) __attribute__((warn_unused_result));
int db_commit(struct db_conn *c) __attribute__((warn_unused_result));
/*
 * The statement last (no parameters) and COMMIT in one round trip: a row
 * lock last takes is held for the server's time only, not for a round trip
 * to the client (a hot counter row every writer updates). Returns as
 * db_commit(), or last's error (the transaction is then failed; releasing
 * the connection rolls it back). NULL last: db_commit().
 */
int db_commit_after(struct db_conn *c, const char *last) __attribute__((warn_unused_result));
int db_rollback(struct db_conn *c);

/* Rows and columns of a result. */
int db_res_rows(const struct db_res *r);
int db_res_cols(const struct db_res *r);

/*
 * The text of a cell: never NULL; "" for SQL NULL or a row/column out of
 * range. Valid until the result is freed.
 */
const char *db_res_get(const struct db_res *r, int row, int col);

/* True when the cell is SQL NULL (or out of range). */
bool db_res_isnull(const struct db_res *r, int row, int col);

/* Free a result. r may be NULL. */
void db_res_free(struct db_res *r);

/* Hand r to arena a: it is freed when a is freed. r may be NULL. */
void db_res_arena(struct db_res *r, struct gr_arena *a);

/*
 * Statements sent to any server by this process so far, including BEGIN,
 * COMMIT, ROLLBACK and resent statements. Atomic; tests compare two
 * readings to prove that a code path made no round trip.
 */
uint64_t db_query_count(void);

/* The pool's state for the metrics: its size, connections handed out now,
 * and since start: statements that failed with GR_EDB (not data errors such
 * as a unique violation), connection attempts that failed, and
 * db_acquire() calls that timed out waiting for a free connection. */
struct db_pool_stats {
    int size, in_use;
    uint64_t errors, connect_failures, acquire_timeouts;
};
void db_pool_stats(struct db_pool *p, struct db_pool_stats *st);

struct gr_sbuf;
/* Those, and db_query_count(), as Prometheus lines (a metrics source, http.h). */
void db_metrics(struct db_pool *p, struct gr_sbuf *sb);

/*
 * The message of the last failure on c (server or connection), or "" if
 * none since db_acquire(). Valid until the next statement on c.
 */
const char *db_last_error(struct db_conn *c);

/*
 * The SQLSTATE of the last failure on c ("40001", ...), or "" if none or if
 * the failure came from the connection rather than the server. Lets a
 * caller retry a serialization failure or deadlock (both GR_EDB).
 */
const char *db_last_sqlstate(struct db_conn *c);

/* ---- SQL text helpers (no database needed) ---- */

/* Append v[0..n) as a PostgreSQL text[] literal ("{\"a\",\"b\"}", quotes and
 * backslashes escaped; "{}" when n is 0), for a $n::text[] parameter. */
void db_text_array(struct gr_sbuf *sb, const char *const *v, int n);
/* Append a LIKE pattern (ESCAPE '\\') for everything below path ("" = all). */
void db_like_below(struct gr_sbuf *sb, const char *path);

#endif
