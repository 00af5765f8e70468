/*
 * test_db.c - unit tests of daemon/db without a server: SQLSTATE mapping,
 * connection parameters, and the pool and migration runner against a fake
 * libpq linked in with -Wl,--wrap (WRAP_test_db in GNUmakefile).
 *
 * The fake cannot include libpq-fe.h (only daemon/db/ may), so it declares
 * the wrapped functions over its own struct pg_conn / pg_result and uses
 * libpq's enum values, which are part of libpq's stable ABI. Every libpq
 * function pool.c and migrate.c call, other than PQconninfoParse,
 * PQconninfoFree, PQfreemem and PQisthreadsafe, must be in WRAP_test_db.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "db/db.h"
#include "db/db_internal.h"
#include "db/migrate.h"

/* ---- fake libpq ------------------------------------------------------------ */

enum { CONNECTION_OK = 0, CONNECTION_BAD = 1 };
enum { PGRES_COMMAND_OK = 1, PGRES_TUPLES_OK = 2, PGRES_FATAL_ERROR = 7 };
enum { PQTRANS_IDLE = 0, PQTRANS_INTRANS = 2, PQTRANS_INERROR = 3, PQTRANS_UNKNOWN = 4 };
#define PG_DIAG_SQLSTATE 'C'
#define PG_DIAG_MESSAGE_PRIMARY 'M'
#define PG_DIAG_SEVERITY_NONLOCALIZED 'V'

struct pg_conn {
    int status;
    int txn;
};

struct pg_result {
    int status;
    char sqlstate[6];
    char msg[128];
    char cmd[16];
    char severity[16]; /* a notice's */
    int nrows, ncols;
    const char *cells[16][2];
};

#define FAKE_MAX_SENT 64

/* What the fake server does and what it saw; reset by setup(). */
static struct {
    bool connect_ok;     /* PQconnectdbParams gives a good connection */
    bool reset_ok;       /* PQreset brings it back */
    const char *die_on;  /* the connection dies on a statement containing this */
    int die_count;       /* ... this many times */
    const char *fail_on; /* a statement containing this fails with fail_state */
    const char *fail_state;
    const char *max_version; /* what SELECT max(version) answers */
    const char *applied[16]; /* the versions recorded; NULL: 1 up to max_version */
    bool warn_on_commit;     /* COMMIT sends a WARNING first (a cancelled synchronous wait) */
    void (*notice)(void *arg, const struct pg_result *r); /* the receiver db/ set */
    void *notice_arg;
    int connects, resets, finishes, live_results;
    int nsent;
    char sent[FAKE_MAX_SENT][256];
    char param0[FAKE_MAX_SENT][64]; /* $1 of each statement, "" if none */
} fk;

typedef void (*fake_notice_fn)(void *arg, const struct pg_result *r);

struct pg_conn *__wrap_PQconnectdbParams(const char *const *keys, const char *const *vals,
                                         int expand);
int __wrap_PQstatus(const struct pg_conn *c);
char *__wrap_PQerrorMessage(const struct pg_conn *c);
void __wrap_PQfinish(struct pg_conn *c);
void __wrap_PQreset(struct pg_conn *c);
fake_notice_fn __wrap_PQsetNoticeReceiver(struct pg_conn *c, fake_notice_fn fn, void *arg);
int __wrap_PQtransactionStatus(const struct pg_conn *c);
struct pg_result *__wrap_PQexec(struct pg_conn *c, const char *sql);
struct pg_result *__wrap_PQexecParams(struct pg_conn *c, const char *sql, int n,
                                      const unsigned *types, const char *const *vals,
                                      const int *lens, const int *formats, int resfmt);
int __wrap_PQresultStatus(const struct pg_result *r);
char *__wrap_PQresultErrorField(const struct pg_result *r, int field);
char *__wrap_PQresultErrorMessage(const struct pg_result *r);
char *__wrap_PQresStatus(int st);
void __wrap_PQclear(struct pg_result *r);
int __wrap_PQntuples(const struct pg_result *r);
int __wrap_PQnfields(const struct pg_result *r);
char *__wrap_PQgetvalue(const struct pg_result *r, int row, int col);
int __wrap_PQgetisnull(const struct pg_result *r, int row, int col);
char *__wrap_PQcmdStatus(struct pg_result *r);

struct pg_conn *__wrap_PQconnectdbParams(const char *const *keys, const char *const *vals,
                                         int expand)
{
    (void)keys;
    (void)vals;
    (void)expand;
    struct pg_conn *c = calloc(1, sizeof(*c));
    c->status = fk.connect_ok ? CONNECTION_OK : CONNECTION_BAD;
    fk.connects++;
    return c;
}

int __wrap_PQstatus(const struct pg_conn *c)
{
    return c ? c->status : CONNECTION_BAD;
}

char *__wrap_PQerrorMessage(const struct pg_conn *c)
{
    return (char *)(c->status == CONNECTION_OK ? ""
                                               : "server closed the connection unexpectedly\n");
}

void __wrap_PQfinish(struct pg_conn *c)
{
    fk.finishes++;
    free(c);
}

void __wrap_PQreset(struct pg_conn *c)
{
    fk.resets++;
    c->status = fk.reset_ok ? CONNECTION_OK : CONNECTION_BAD;
    c->txn = fk.reset_ok ? PQTRANS_IDLE : PQTRANS_UNKNOWN;
}

fake_notice_fn __wrap_PQsetNoticeReceiver(struct pg_conn *c, fake_notice_fn fn, void *arg)
{
    (void)c;
    fk.notice = fn;
    fk.notice_arg = arg;
    return NULL;
}

int __wrap_PQtransactionStatus(const struct pg_conn *c)
{
    return c->status == CONNECTION_OK ? c->txn : PQTRANS_UNKNOWN;
}

static struct pg_result *fake_res(int status, const char *sqlstate, const char *msg)
{
    struct pg_result *r = calloc(1, sizeof(*r));
    r->status = status;
    snprintf(r->sqlstate, sizeof(r->sqlstate), "%s", sqlstate ? sqlstate : "");
    snprintf(r->msg, sizeof(r->msg), "%s", msg ? msg : "");
    fk.live_results++;
    return r;
}

static struct pg_result *fake_row(const char *v)
{
    struct pg_result *r = fake_res(PGRES_TUPLES_OK, NULL, NULL);
    r->nrows = r->ncols = 1;
    r->cells[0][0] = v;
    return r;
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The fake server: a tiny model of transaction state and the statements db/ sends. */
static struct pg_result *fake_run(struct pg_conn *c, const char *sql, const char *p0)
{
    if (fk.nsent < FAKE_MAX_SENT) {
        snprintf(fk.sent[fk.nsent], sizeof(fk.sent[0]), "%s", sql);
        snprintf(fk.param0[fk.nsent], sizeof(fk.param0[0]), "%s", p0 ? p0 : "");
    }
    fk.nsent++;
    if (c->status != CONNECTION_OK)
        return fake_res(PGRES_FATAL_ERROR, NULL, "no connection to the server");
    if (fk.die_on && strstr(sql, fk.die_on) && fk.die_count > 0) {
        fk.die_count--;
        c->status = CONNECTION_BAD;
        c->txn = PQTRANS_UNKNOWN;
        return fake_res(PGRES_FATAL_ERROR, NULL, "server closed the connection unexpectedly");
    }
    if (fk.fail_on && strstr(sql, fk.fail_on)) {
        if (c->txn == PQTRANS_INTRANS)
            c->txn = PQTRANS_INERROR;
        return fake_res(PGRES_FATAL_ERROR, fk.fail_state, "boom");
    }
    struct pg_result *r;
    if (starts(sql, "BEGIN")) {
        c->txn = PQTRANS_INTRANS;
        r = fake_res(PGRES_COMMAND_OK, NULL, NULL);
        strcpy(r->cmd, "BEGIN");
        return r;
    }
    if (starts(sql, "COMMIT") && fk.warn_on_commit && fk.notice) {
        struct pg_result *w =
            fake_res(PGRES_COMMAND_OK, "01000", "canceling wait for synchronous replication");
        strcpy(w->severity, "WARNING");
        fk.notice(fk.notice_arg, w);
        __wrap_PQclear(w);
    }
    if (starts(sql, "COMMIT") || starts(sql, "ROLLBACK")) {
        r = fake_res(PGRES_COMMAND_OK, NULL, NULL);
        strcpy(r->cmd, starts(sql, "COMMIT") && c->txn != PQTRANS_INERROR ? "COMMIT" : "ROLLBACK");
        c->txn = PQTRANS_IDLE;
        return r;
    }
    if (c->txn == PQTRANS_INERROR)
        return fake_res(PGRES_FATAL_ERROR, "25P02", "current transaction is aborted");
    if (strstr(sql, "max(version)"))
        return fake_row(fk.max_version ? fk.max_version : "0");
    if (starts(sql, "SELECT version FROM schema_migrations")) {
        static const char *const nums[16] = {"1", "2",  "3",  "4",  "5",  "6",  "7",  "8",
                                             "9", "10", "11", "12", "13", "14", "15", "16"};
        r = fake_res(PGRES_TUPLES_OK, NULL, NULL);
        r->ncols = 1;
        int max = fk.max_version ? atoi(fk.max_version) : 0;
        for (int i = 0; i < 16 && (fk.applied[0] ? fk.applied[i] != NULL : i < max); i++)
            r->cells[r->nrows++][0] = fk.applied[0] ? fk.applied[i] : nums[i];
        return r;
    }
    if (strstr(sql, "pg_try_advisory_xact_lock"))
        return fake_row("t");
    if (starts(sql, "SELECT")) {
        r = fake_res(PGRES_TUPLES_OK, NULL, NULL);
        r->nrows = 1;
        r->ncols = 2;
        r->cells[0][0] = "42";
        r->cells[0][1] = NULL;
        return r;
    }
    return fake_res(PGRES_COMMAND_OK, NULL, NULL);
}

struct pg_result *__wrap_PQexec(struct pg_conn *c, const char *sql)
{
    return fake_run(c, sql, NULL);
}

struct pg_result *__wrap_PQexecParams(struct pg_conn *c, const char *sql, int n,
                                      const unsigned *types, const char *const *vals,
                                      const int *lens, const int *formats, int resfmt)
{
    (void)types;
    (void)lens;
    (void)formats;
    (void)resfmt;
    return fake_run(c, sql, n > 0 ? vals[0] : NULL);
}

int __wrap_PQresultStatus(const struct pg_result *r)
{
    return r ? r->status : PGRES_FATAL_ERROR;
}

char *__wrap_PQresultErrorField(const struct pg_result *r, int field)
{
    if (!r)
        return NULL;
    if (field == PG_DIAG_SQLSTATE)
        return r->sqlstate[0] ? (char *)r->sqlstate : NULL;
    if (field == PG_DIAG_MESSAGE_PRIMARY)
        return r->msg[0] ? (char *)r->msg : NULL;
    if (field == PG_DIAG_SEVERITY_NONLOCALIZED)
        return r->severity[0] ? (char *)r->severity : NULL;
    return NULL;
}

char *__wrap_PQresultErrorMessage(const struct pg_result *r)
{
    return (char *)(r ? r->msg : "");
}

char *__wrap_PQresStatus(int st)
{
    (void)st;
    return (char *)"PGRES_OTHER";
}

void __wrap_PQclear(struct pg_result *r)
{
    if (r)
        fk.live_results--;
    free(r);
}

int __wrap_PQntuples(const struct pg_result *r)
{
    return r->nrows;
}

int __wrap_PQnfields(const struct pg_result *r)
{
    return r->ncols;
}

char *__wrap_PQgetvalue(const struct pg_result *r, int row, int col)
{
    const char *v = r->cells[row][col];
    return (char *)(v ? v : "");
}

int __wrap_PQgetisnull(const struct pg_result *r, int row, int col)
{
    return r->cells[row][col] == NULL;
}

char *__wrap_PQcmdStatus(struct pg_result *r)
{
    return r->cmd;
}

/* ---- fixtures and helpers ------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    memset(&fk, 0, sizeof(fk));
    fk.connect_ok = true;
    fk.reset_ok = true;
    return 0;
}

/* Every PGresult handed out was cleared. */
static int teardown(void **state)
{
    (void)state;
    assert_int_equal(fk.live_results, 0);
    return 0;
}

/* Index of the first statement sent that contains s, or -1. */
static int sent_index(const char *s)
{
    for (int i = 0; i < fk.nsent && i < FAKE_MAX_SENT; i++)
        if (strstr(fk.sent[i], s))
            return i;
    return -1;
}

static struct db_pool *open_pool(int size)
{
    struct db_pool *p;
    assert_int_equal(db_pool_open("host=/nonexistent dbname=granary", size, &p), GR_OK);
    return p;
}

/* ---- SQLSTATE mapping ----------------------------------------------------- */

static void sqlstate_err__codes__mapped(void **state)
{
    (void)state;
    assert_int_equal(db__sqlstate_err("23505"), GR_EEXIST);
    assert_int_equal(db__sqlstate_err("23503"), GR_ENOTFOUND);
    assert_int_equal(db__sqlstate_err("23502"), GR_EINVAL); /* not_null_violation */
    assert_int_equal(db__sqlstate_err("23514"), GR_EINVAL); /* check_violation */
    assert_int_equal(db__sqlstate_err("22P02"), GR_EINVAL); /* invalid_text_representation */
    assert_int_equal(db__sqlstate_err("22001"), GR_EINVAL); /* string_data_right_truncation */
    assert_int_equal(db__sqlstate_err("08006"), GR_EDB);    /* connection_failure */
    assert_int_equal(db__sqlstate_err("57P01"), GR_EDB);    /* admin_shutdown */
    assert_int_equal(db__sqlstate_err("40001"), GR_EDB);    /* serialization_failure */
    assert_int_equal(db__sqlstate_err("42P01"), GR_EDB);    /* undefined_table */
    assert_int_equal(db__sqlstate_err("25P02"), GR_EDB);    /* in_failed_sql_transaction */
    assert_int_equal(db__sqlstate_err(NULL), GR_EDB);
    assert_int_equal(db__sqlstate_err(""), GR_EDB);
    assert_int_equal(db__sqlstate_err("235"), GR_EDB);
}

/* ---- connection parameters ------------------------------------------------ */

static void params_build__keyword_string__adds_appname_and_timeout(void **state)
{
    (void)state;
    struct db__params p;
    char err[128];
    unsetenv("PGAPPNAME");
    unsetenv("PGCONNECT_TIMEOUT");
    assert_int_equal(db__params_build("host=/run/pg dbname=granary", &p, err, sizeof(err)), GR_OK);
    assert_string_equal(db__params_get(&p, "host"), "/run/pg");
    assert_string_equal(db__params_get(&p, "dbname"), "granary");
    assert_string_equal(db__params_get(&p, "application_name"), "granary");
    assert_string_equal(db__params_get(&p, "connect_timeout"), "3");
    assert_string_equal(db__params_get(&p, "keepalives"), "1");
    assert_string_equal(db__params_get(&p, "tcp_user_timeout"), "6000");
    assert_string_equal(db__params_get(&p, "options"),
                        "-c statement_timeout=30000 -c tcp_keepalives_idle=5 -c"
                        " tcp_keepalives_interval=2 -c tcp_keepalives_count=2 -c"
                        " tcp_user_timeout=6000");
    assert_null(p.keys[p.n]);
    assert_null(p.vals[p.n]);
    db__params_free(&p);
}

static void params_build__url_with_settings__kept_and_password_not_described(void **state)
{
    (void)state;
    struct db__params p;
    char err[128], desc[256];
    assert_int_equal(db__params_build("postgresql://gr:s3cret@db.lan:5433/arts"
                                      "?application_name=node-a&connect_timeout=2",
                                      &p, err, sizeof(err)),
                     GR_OK);
    assert_string_equal(db__params_get(&p, "application_name"), "node-a");
    assert_string_equal(db__params_get(&p, "connect_timeout"), "2");
    assert_string_equal(db__params_get(&p, "password"), "s3cret");
    db__params_describe(&p, desc, sizeof(desc));
    assert_string_equal(desc, "host=db.lan port=5433 dbname=arts user=gr");
    assert_null(strstr(desc, "s3cret"));
    db__params_free(&p);
}

static void params_build__env_settings__respected(void **state)
{
    (void)state;
    struct db__params p;
    char err[128];
    setenv("PGAPPNAME", "from-env", 1);
    setenv("PGCONNECT_TIMEOUT", "9", 1);
    assert_int_equal(db__params_build("dbname=x", &p, err, sizeof(err)), GR_OK);
    assert_null(db__params_get(&p, "application_name"));
    assert_null(db__params_get(&p, "connect_timeout"));
    db__params_free(&p);
    unsetenv("PGAPPNAME");
    unsetenv("PGCONNECT_TIMEOUT");
}

static void params_build__garbage__einval_with_reason(void **state)
{
    (void)state;
    struct db__params p;
    char err[128];
    assert_int_equal(db__params_build("host=x nosuchkey=1", &p, err, sizeof(err)), GR_EINVAL);
    assert_non_null(strstr(err, "nosuchkey"));
    assert_int_equal(db__params_build("postgresql://h/db?nosuch=1", &p, err, sizeof(err)),
                     GR_EINVAL);
    assert_int_equal(db__params_build("postgresql://[::1/db", &p, err, sizeof(err)), GR_EINVAL);
    assert_int_equal(db__params_build("dbname='unterminated", &p, err, sizeof(err)), GR_EINVAL);
}

static void pool_open__bad_args__einval(void **state)
{
    (void)state;
    struct db_pool *p;
    assert_int_equal(db_pool_open("host=x", 0, &p), GR_EINVAL);
    assert_null(p);
    assert_int_equal(db_pool_open("bogus=1", 4, &p), GR_EINVAL);
    assert_null(p);
}

/* ---- pool ----------------------------------------------------------------- */

static void pool_open__server_down__opens_and_acquire_fails(void **state)
{
    (void)state;
    struct db_conn *c;
    fk.connect_ok = false;
    struct db_pool *p = open_pool(2);
    assert_int_equal(fk.connects, 0); /* lazy */
    assert_int_equal(db_acquire(p, 100, &c), GR_EDB);
    assert_null(c);
    assert_int_equal(fk.connects, 1);
    assert_int_equal(fk.nsent, 0);
    /* within a second of the failure: fails at once, without trying (fail fast) */
    fk.connect_ok = true;
    assert_int_equal(db_acquire(p, 100, &c), GR_EDB);
    assert_int_equal(fk.connects, 1);
    /* the slot went back: the next try connects again and, the server back, works */
    usleep(1100 * 1000);
    assert_int_equal(db_acquire(p, 100, &c), GR_OK);
    assert_int_equal(fk.connects, 2);
    db_release(c);
    db_pool_close(p);
}

static void exec__results__text_cells_and_null(void **state)
{
    (void)state;
    struct db_pool *p = open_pool(1);
    struct db_res *r;
    uint64_t q0 = db_query_count();
    assert_int_equal(db_exec1(p, &r, "SELECT a, b", 0, NULL), GR_OK);
    assert_int_equal(db_query_count() - q0, 1);
    assert_int_equal(db_res_rows(r), 1);
    assert_int_equal(db_res_cols(r), 2);
    assert_string_equal(db_res_get(r, 0, 0), "42");
    assert_false(db_res_isnull(r, 0, 0));
    assert_string_equal(db_res_get(r, 0, 1), "");
    assert_true(db_res_isnull(r, 0, 1));
    assert_string_equal(db_res_get(r, 1, 0), ""); /* out of range */
    assert_string_equal(db_res_get(r, 0, -1), "");
    assert_true(db_res_isnull(r, 5, 5));
    db_res_free(r);
    db_res_free(NULL);
    db_pool_close(p);
}

static void exec__dead_conn_outside_txn__reset_and_sent_again_once(void **state)
{
    (void)state;
    struct db_pool *p = open_pool(1);
    struct db_conn *c;
    assert_int_equal(db_acquire(p, 100, &c), GR_OK);
    fk.die_on = "UPDATE";
    fk.die_count = 1;
    uint64_t q0 = db_query_count();
    assert_int_equal(db_exec(c, NULL, "UPDATE t SET x = 1", 0, NULL), GR_OK);
    assert_int_equal(fk.resets, 1);
    assert_int_equal(fk.nsent, 2);
    assert_int_equal(db_query_count() - q0, 2);
    db_release(c);
    assert_int_equal(fk.finishes, 0); /* healthy again: kept */
    db_pool_close(p);
}

static void exec__read_only_server_outside_txn__reconnect_and_sent_again(void **state)
{
    (void)state;
    struct db_pool *p = open_pool(1);
    struct db_conn *c;
    assert_int_equal(db_acquire(p, 100, &c), GR_OK);
    fk.fail_on = "UPDATE";
    fk.fail_state = "25006";
    fk.reset_ok = true;
    /* the fake stays read-only: the resend fails too, and nothing more is tried */
    assert_int_equal(db_exec(c, NULL, "UPDATE t SET x = 1", 0, NULL), GR_EDB);
    assert_int_equal(fk.resets, 1);
    assert_int_equal(fk.nsent, 2);
    assert_string_equal(db_last_sqlstate(c), "25006");
    db_release(c);
    assert_int_equal(fk.finishes, 1); /* a read-only session is not kept */
    db_pool_close(p);
}

static void commit__sync_wait_cancelled__edb_and_conn_closed(void **state)
{
    (void)state;
    struct db_pool *p = open_pool(1);
    struct db_conn *c;
    assert_int_equal(db_acquire(p, 100, &c), GR_OK);
    assert_int_equal(db_begin(c), GR_OK);
    assert_int_equal(db_exec(c, NULL, "UPDATE t SET x = 1", 0, NULL), GR_OK);
    fk.warn_on_commit = true;
    assert_int_equal(db_commit(c), GR_EDB);
    assert_string_equal(db_last_error(c), "commit not confirmed by the synchronous standby");
    db_release(c);
    assert_int_equal(fk.finishes, 1);
    db_pool_close(p);
}

static void exec__dead_conn_reset_fails__edb_and_nothing_else(void **state)
{
    (void)state;
    struct db_pool *p = open_pool(1);
    struct db_conn *c;
    assert_int_equal(db_acquire(p, 100, &c), GR_OK);
    fk.die_on = "UPDATE";
    fk.die_count = 1;
    fk.reset_ok = false;
    assert_int_equal(db_exec(c, NULL, "UPDATE t SET x = 1", 0, NULL), GR_EDB);
    assert_int_equal(fk.resets, 1);
    assert_int_equal(fk.nsent, 1);
    assert_string_not_equal(db_last_error(c), "");
    db_release(c);
    assert_int_equal(fk.nsent, 1); /* no ROLLBACK on a dead connection */
    assert_int_equal(fk.finishes, 1);
    db_pool_close(p);
}

static void exec__dead_conn_in_txn__edb_no_resend_until_release(void **state)
{
    (void)state;
    struct db_pool *p = open_pool(1);
    struct db_conn *c;
    assert_int_equal(db_acquire(p, 100, &c), GR_OK);
    assert_int_equal(db_begin(c), GR_OK);
    fk.die_on = "UPDATE";
    fk.die_count = 1;
    assert_int_equal(db_exec(c, NULL, "UPDATE t SET x = 1", 0, NULL), GR_EDB);
    assert_int_equal(fk.resets, 0);
    assert_int_equal(fk.nsent, 2);
    /* the transaction is gone: later statements fail without a round trip */
    assert_int_equal(db_exec(c, NULL, "SELECT 1", 0, NULL), GR_EDB);
    assert_int_equal(db_commit(c), GR_EDB);
    assert_int_equal(fk.nsent, 2);
    assert_int_equal(db_rollback(c), GR_OK);
    db_release(c);
    assert_int_equal(fk.nsent, 2);
    assert_int_equal(fk.finishes, 1);
    /* the slot reconnects on its next use */
    assert_int_equal(db_acquire(p, 100, &c), GR_OK);
    assert_int_equal(fk.connects, 2);
    assert_int_equal(db_exec(c, NULL, "SELECT 1", 0, NULL), GR_OK);
    db_release(c);
    db_pool_close(p);
}

static void exec__unique_violation__eexist_with_message(void **state)
{
    (void)state;
    struct db_pool *p = open_pool(1);
    struct db_conn *c;
    struct db_res *r = (struct db_res *)&r; /* must be reset to NULL */
    fk.fail_on = "INSERT";
    fk.fail_state = "23505";
    assert_int_equal(db_acquire(p, 100, &c), GR_OK);
    assert_int_equal(db_exec(c, &r, "INSERT INTO t VALUES (1)", 0, NULL), GR_EEXIST);
    assert_null(r);
    assert_string_equal(db_last_error(c), "boom");
    assert_string_equal(db_last_sqlstate(c), "23505");
    assert_int_equal(fk.resets, 0);
    fk.fail_state = "23503";
    assert_int_equal(db_exec(c, NULL, "INSERT INTO t VALUES (1)", 0, NULL), GR_ENOTFOUND);
    fk.fail_state = "42601";
    assert_int_equal(db_exec(c, NULL, "INSERT INTO t VALUES (1)", 0, NULL), GR_EDB);
    db_release(c);
    /* a new acquire starts with no error */
    assert_int_equal(db_acquire(p, 100, &c), GR_OK);
    assert_string_equal(db_last_error(c), "");
    db_release(c);
    db_pool_close(p);
}

static void release__open_txn__rolled_back_and_kept(void **state)
{
    (void)state;
    struct db_pool *p = open_pool(1);
    struct db_conn *c;
    assert_int_equal(db_acquire(p, 100, &c), GR_OK);
    assert_int_equal(db_begin(c), GR_OK);
    assert_int_equal(db_exec(c, NULL, "INSERT INTO t VALUES (1)", 0, NULL), GR_OK);
    db_release(c);
    assert_int_equal(fk.nsent, 3);
    assert_string_equal(fk.sent[2], "ROLLBACK");
    assert_int_equal(fk.finishes, 0);
    db_pool_close(p);
}

static void commit__failed_txn__edb(void **state)
{
    (void)state;
    struct db_pool *p = open_pool(1);
    struct db_conn *c;
    fk.fail_on = "INSERT";
    fk.fail_state = "23505";
    assert_int_equal(db_acquire(p, 100, &c), GR_OK);
    assert_int_equal(db_begin(c), GR_OK);
    assert_int_equal(db_exec(c, NULL, "INSERT INTO t VALUES (1)", 0, NULL), GR_EEXIST);
    assert_int_equal(db_commit(c), GR_EDB); /* the server answered ROLLBACK */
    db_release(c);
    db_pool_close(p);
}

static void acquire__pool_exhausted__edb_after_timeout(void **state)
{
    (void)state;
    struct db_pool *p = open_pool(1);
    struct db_conn *a, *b;
    struct timespec t0, t1;
    assert_int_equal(db_acquire(p, 100, &a), GR_OK);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(db_acquire(p, 50, &b), GR_EDB);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 45);
    assert_int_equal(db_acquire(p, 0, &b), GR_EDB);
    db_release(a);
    assert_int_equal(db_acquire(p, 0, &b), GR_OK);
    db_release(b);
    assert_int_equal(fk.connects, 1);
    db_pool_close(p);
}

static void *release_later(void *arg)
{
    usleep(30000);
    db_release(arg);
    return NULL;
}

static void acquire__busy_pool__gets_released_conn(void **state)
{
    (void)state;
    struct db_pool *p = open_pool(1);
    struct db_conn *a, *b;
    pthread_t t;
    assert_int_equal(db_acquire(p, 100, &a), GR_OK);
    assert_int_equal(pthread_create(&t, NULL, release_later, a), 0);
    assert_int_equal(db_acquire(p, 5000, &b), GR_OK);
    assert_ptr_equal(a, b);
    pthread_join(t, NULL);
    db_release(b);
    db_pool_close(p);
}

/* ---- migrations ----------------------------------------------------------- */

static const struct db_migration test_migs[] = {
    {1, "one", "CREATE TABLE m1 (x int)"},
    {2, "two", "CREATE TABLE m2 (x int); CREATE TABLE m2b (x int)"},
    {3, "three", "CREATE TABLE m3 (x int)"},
};

static void lock_key__fnv1a_of_name(void **state)
{
    (void)state;
    assert_int_equal(db__fnv1a64(""), UINT64_C(0xcbf29ce484222325));
    assert_int_equal(db__fnv1a64("a"), UINT64_C(0xaf63dc4c8601ec8c));
    assert_int_equal((int64_t)db__fnv1a64("granary-migrate"), DB__MIGRATE_LOCK_KEY);
}

static void migrate__empty_db__all_applied_in_order_under_lock(void **state)
{
    (void)state;
    struct db_pool *p = open_pool(2);
    int from = -1, to = -1;
    assert_int_equal(db_migrate(p, test_migs, 3, &from, &to), GR_OK);
    assert_int_equal(from, 0);
    assert_int_equal(to, 3);
    int begin = sent_index("BEGIN"), lock = sent_index("advisory_xact_lock");
    int create = sent_index("CREATE TABLE IF NOT EXISTS schema_migrations");
    int max = sent_index("max(version)");
    int m1 = sent_index("CREATE TABLE m1"), m2 = sent_index("CREATE TABLE m2 "),
        m3 = sent_index("CREATE TABLE m3"), commit = sent_index("COMMIT");
    assert_true(begin == 0 && begin < lock && lock < create && create < max);
    assert_true(max < m1 && m1 < m2 && m2 < m3 && m3 < commit);
    assert_string_equal(fk.param0[lock], "1398258896788483623");
    assert_string_equal(fk.param0[m1 + 1], "1"); /* INSERT INTO schema_migrations */
    assert_string_equal(fk.param0[m3 + 1], "3");
    assert_int_equal(commit, fk.nsent - 1);
    db_pool_close(p);
}

static void migrate__partly_migrated__only_newer_applied(void **state)
{
    (void)state;
    struct db_pool *p = open_pool(1);
    int from, to;
    fk.max_version = "1";
    assert_int_equal(db_migrate(p, test_migs, 3, &from, &to), GR_OK);
    assert_int_equal(from, 1);
    assert_int_equal(to, 3);
    assert_int_equal(sent_index("CREATE TABLE m1"), -1);
    assert_true(sent_index("CREATE TABLE m2 ") < sent_index("CREATE TABLE m3"));
    db_pool_close(p);
}

static void migrate__up_to_date__no_migration_sql(void **state)
{
    (void)state;
    struct db_pool *p = open_pool(1);
    int from, to;
    fk.max_version = "3";
    assert_int_equal(db_migrate(p, test_migs, 3, &from, &to), GR_OK);
    assert_int_equal(from, 3);
    assert_int_equal(to, 3);
    assert_int_equal(sent_index("CREATE TABLE m"), -1);
    assert_int_equal(sent_index("INSERT"), -1);
    assert_int_equal(sent_index("COMMIT"), fk.nsent - 1);
    db_pool_close(p);
}

static void migrate__added_below_newest__refused(void **state)
{
    (void)state;
    struct db_pool *p = open_pool(1);
    int from, to;
    /* the database has 1 and 3: migration 2 came after 3 was applied */
    fk.max_version = "3";
    fk.applied[0] = "1";
    fk.applied[1] = "3";
    assert_int_equal(db_migrate(p, test_migs, 3, &from, &to), GR_EINVAL);
    assert_int_equal(sent_index("CREATE TABLE m"), -1);
    assert_int_equal(sent_index("COMMIT"), -1);
    db_pool_close(p);
}

static void migrate__newer_schema__eschema_and_nothing_changed(void **state)
{
    (void)state;
    struct db_pool *p = open_pool(1);
    int from, to;
    fk.max_version = "7";
    assert_int_equal(db_migrate(p, test_migs, 3, &from, &to), GR_ESCHEMA);
    assert_int_equal(from, 7);
    assert_int_equal(to, 7);
    assert_int_equal(sent_index("CREATE TABLE m"), -1);
    assert_int_equal(sent_index("INSERT"), -1);
    assert_int_equal(sent_index("COMMIT"), -1);
    assert_string_equal(fk.sent[fk.nsent - 1], "ROLLBACK");
    db_pool_close(p);
}

static void migrate__failing_migration__rolled_back_rest_skipped(void **state)
{
    (void)state;
    struct db_pool *p = open_pool(1);
    int from, to;
    fk.fail_on = "CREATE TABLE m2 ";
    fk.fail_state = "42P07";
    assert_int_equal(db_migrate(p, test_migs, 3, &from, &to), GR_EDB);
    assert_int_equal(sent_index("CREATE TABLE m3"), -1);
    assert_int_equal(sent_index("COMMIT"), -1);
    assert_string_equal(fk.sent[fk.nsent - 1], "ROLLBACK");
    assert_int_equal(to, 0);
    db_pool_close(p);
}

static void migrate__server_down__edb_nothing_sent(void **state)
{
    (void)state;
    struct db_pool *p = open_pool(1);
    int from, to;
    fk.connect_ok = false;
    assert_int_equal(db_migrate(p, test_migs, 3, &from, &to), GR_EDB);
    assert_int_equal(fk.nsent, 0);
    db_pool_close(p);
}

static void migrate__conn_dies_mid_run__edb_not_resent(void **state)
{
    (void)state;
    struct db_pool *p = open_pool(1);
    int from, to;
    fk.die_on = "CREATE TABLE m2 ";
    fk.die_count = 1;
    assert_int_equal(db_migrate(p, test_migs, 3, &from, &to), GR_EDB);
    assert_int_equal(fk.resets, 0);
    assert_int_equal(sent_index("CREATE TABLE m3"), -1);
    assert_int_equal(sent_index("COMMIT"), -1);
    assert_int_equal(fk.finishes, 1); /* closed on release, reconnected later */
    db_pool_close(p);
}

static void migrate__body_ends_txn__einval(void **state)
{
    (void)state;
    static const struct db_migration bad[] = {{1, "sneaky", "COMMIT"}};
    struct db_pool *p = open_pool(1);
    int from, to;
    assert_int_equal(db_migrate(p, bad, 1, &from, &to), GR_EINVAL);
    assert_int_equal(sent_index("INSERT"), -1);
    db_pool_close(p);
}

static void migrate__unsorted_table__einval_nothing_sent(void **state)
{
    (void)state;
    static const struct db_migration unsorted[] = {{2, "b", "SELECT 2"}, {1, "a", "SELECT 1"}};
    static const struct db_migration dup[] = {{1, "a", "SELECT 1"}, {1, "b", "SELECT 1"}};
    static const struct db_migration zero[] = {{0, "a", "SELECT 1"}};
    struct db_pool *p = open_pool(1);
    int from, to;
    assert_int_equal(db_migrate(p, unsorted, 2, &from, &to), GR_EINVAL);
    assert_int_equal(db_migrate(p, dup, 2, &from, &to), GR_EINVAL);
    assert_int_equal(db_migrate(p, zero, 1, &from, &to), GR_EINVAL);
    assert_int_equal(fk.nsent, 0);
    assert_int_equal(fk.connects, 0);
    db_pool_close(p);
}

int main(void)
{
    gr_log_set_level((enum gr_log_level)(GR_LOG_ERROR + 1)); /* quiet */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sqlstate_err__codes__mapped),
        cmocka_unit_test(params_build__keyword_string__adds_appname_and_timeout),
        cmocka_unit_test(params_build__url_with_settings__kept_and_password_not_described),
        cmocka_unit_test(params_build__env_settings__respected),
        cmocka_unit_test(params_build__garbage__einval_with_reason),
        cmocka_unit_test(pool_open__bad_args__einval),
        cmocka_unit_test_setup_teardown(pool_open__server_down__opens_and_acquire_fails, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(exec__results__text_cells_and_null, setup, teardown),
        cmocka_unit_test_setup_teardown(exec__dead_conn_outside_txn__reset_and_sent_again_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(exec__dead_conn_reset_fails__edb_and_nothing_else, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            exec__read_only_server_outside_txn__reconnect_and_sent_again, setup, teardown),
        cmocka_unit_test_setup_teardown(commit__sync_wait_cancelled__edb_and_conn_closed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(exec__dead_conn_in_txn__edb_no_resend_until_release, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(exec__unique_violation__eexist_with_message, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(release__open_txn__rolled_back_and_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(commit__failed_txn__edb, setup, teardown),
        cmocka_unit_test_setup_teardown(acquire__pool_exhausted__edb_after_timeout, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(acquire__busy_pool__gets_released_conn, setup, teardown),
        cmocka_unit_test(lock_key__fnv1a_of_name),
        cmocka_unit_test_setup_teardown(migrate__empty_db__all_applied_in_order_under_lock, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(migrate__partly_migrated__only_newer_applied, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(migrate__up_to_date__no_migration_sql, setup, teardown),
        cmocka_unit_test_setup_teardown(migrate__added_below_newest__refused, setup, teardown),
        cmocka_unit_test_setup_teardown(migrate__newer_schema__eschema_and_nothing_changed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(migrate__failing_migration__rolled_back_rest_skipped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(migrate__server_down__edb_nothing_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(migrate__conn_dies_mid_run__edb_not_resent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(migrate__body_ends_txn__einval, setup, teardown),
        cmocka_unit_test_setup_teardown(migrate__unsorted_table__einval_nothing_sent, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
