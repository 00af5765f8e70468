/*
 * pool.c - a fixed-size PostgreSQL connection pool, statements and results,
 * and the mapping of SQLSTATEs to gr_err. See db.h for the contract and
 * README.md for the reconnect rules.
 */
#include "db/db.h"
#include "db/db_internal.h"

#include "base/arena.h"
#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"

#include <libpq-fe.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DB_MAX_POOL 1000
#define DB_ERRMSG_MAX 512
#define DB_DOWN_LOG_EVERY_MS 10000
/* While the last connection attempt failed less than this long ago, a slot
 * that needs connecting fails at once (GR_EDB, a 503) instead of waiting out
 * connect_timeout again: requests fail fast while no primary answers. */
#define DB_RETRY_AFTER_FAIL_MS 1000

struct db_conn {
    struct db_pool *pool;
    PGconn *pg;                 /* NULL until connected, or after a close */
    bool busy;                  /* acquired by a thread; guarded by pool->mu */
    bool broken;                /* died inside a transaction: fail until release */
    bool warned;                /* the server sent a WARNING since the last statement began */
    bool stale;                 /* the server is read-only or going away: close at release */
    char sqlstate[6];           /* of the last failure, "" if none or not the server's */
    char errmsg[DB_ERRMSG_MAX]; /* of the last failure, "" if none */
};

struct db_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled when a connection is released */
    int size;
    int nfree;
    bool down;              /* the last connect attempt failed */
    int64_t down_logged_ms; /* when "cannot connect" was last logged */
    int64_t down_since_ms;  /* when the last connect attempt failed */
    struct db__params params;
    char desc[256]; /* for log lines; no password */
    struct db_conn *conns;
};

struct db_res {
    PGresult *pg;
};

static atomic_uint_fast64_t db__queries;
/* process-wide, like db__queries: for db_pool_stats() */
static atomic_uint_fast64_t db__errors, db__connect_failures, db__acquire_timeouts;

static int64_t db__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void db__count_query(void)
{
    atomic_fetch_add_explicit(&db__queries, 1, memory_order_relaxed);
}

uint64_t db_query_count(void)
{
    return (uint64_t)atomic_load_explicit(&db__queries, memory_order_relaxed);
}

void db_pool_stats(struct db_pool *p, struct db_pool_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (p) {
        pthread_mutex_lock(&p->mu);
        st->size = p->size;
        st->in_use = p->size - p->nfree;
        pthread_mutex_unlock(&p->mu);
    }
    st->errors = atomic_load(&db__errors);
    st->connect_failures = atomic_load(&db__connect_failures);
    st->acquire_timeouts = atomic_load(&db__acquire_timeouts);
}

/* ---- SQLSTATE mapping ----------------------------------------------------- */

bool db__sqlstate_stale(const char *sqlstate)
{
    if (!sqlstate || strlen(sqlstate) != 5)
        return false;
    return strcmp(sqlstate, "25006") == 0       /* read_only_sql_transaction */
           || strncmp(sqlstate, "57P0", 4) == 0 /* admin shutdown, crash, cannot connect now */
           || strncmp(sqlstate, "08", 2) == 0;  /* connection exceptions */
}

int db__sqlstate_err(const char *sqlstate)
{
    if (!sqlstate || strlen(sqlstate) != 5)
        return GR_EDB;
    if (strcmp(sqlstate, "23505") == 0)
        return GR_EEXIST;
    if (strcmp(sqlstate, "23503") == 0)
        return GR_ENOTFOUND;
    if (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0)
        return GR_EINVAL;
    return GR_EDB;
}

/* ---- connection parameters ------------------------------------------------ */

void db__params_free(struct db__params *p)
{
    if (!p->keys)
        return;
    for (int i = 0; i < p->n; i++) {
        free(p->keys[i]);
        free(p->vals[i]);
    }
    free(p->keys);
    free(p->vals);
    p->keys = p->vals = NULL;
    p->n = 0;
}

const char *db__params_get(const struct db__params *p, const char *key)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->keys[i], key) == 0)
            return p->vals[i];
    return NULL;
}

static int params__add(struct db__params *p, const char *key, const char *val)
{
    char *k = strdup(key), *v = strdup(val);
    if (!k || !v) {
        free(k);
        free(v);
        return GR_ENOMEM;
    }
    p->keys[p->n] = k;
    p->vals[p->n] = v;
    p->n++;
    return GR_OK;
}

static bool env__set(const char *name)
{
    const char *v = getenv(name);
    return v && *v;
}

int db__params_build(const char *conninfo, struct db__params *p, char *err, size_t errlen)
{
    char *perr = NULL;

    memset(p, 0, sizeof(*p));
    if (errlen)
        err[0] = '\0';
    PQconninfoOption *opts = PQconninfoParse(conninfo ? conninfo : "", &perr);
    if (!opts) {
        if (!perr)
            return GR_ENOMEM;
        snprintf(err, errlen, "%s", perr);
        size_t len = strlen(err);
        while (len && (err[len - 1] == '\n' || err[len - 1] == ' '))
            err[--len] = '\0';
        PQfreemem(perr);
        return GR_EINVAL;
    }
    /* application_name, connect_timeout, the keepalives (4), tcp_user_timeout, options */
    int total = 8;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (o->val)
            total++;
    p->keys = calloc((size_t)total + 1, sizeof(char *));
    p->vals = calloc((size_t)total + 1, sizeof(char *));
    if (!p->keys || !p->vals)
        goto out_free;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (o->val && params__add(p, o->keyword, o->val) != GR_OK)
            goto out_free;
    if (!db__params_get(p, "application_name") && !env__set("PGAPPNAME") &&
        params__add(p, "application_name", "granary") != GR_OK)
        goto out_free;
    if (!db__params_get(p, "connect_timeout") && !env__set("PGCONNECT_TIMEOUT") &&
        params__add(p, "connect_timeout", DB_CONNECT_TIMEOUT_S) != GR_OK)
        goto out_free;
    /*
     * A server that vanishes without closing the connection (a crash of its
     * machine, a network partition) must not hold a statement forever: TCP
     * keepalives notice an idle silence, tcp_user_timeout unacknowledged
     * data, statement_timeout a server that is there but stuck (a commit
     * waiting for a synchronous standby that is gone).
     */
    static const char *const net[][3] = {
        {"keepalives", NULL, "1"},
        {"keepalives_idle", NULL, "5"},
        {"keepalives_interval", NULL, "2"},
        {"keepalives_count", NULL, "2"},
        {"tcp_user_timeout", NULL, DB_TCP_USER_TIMEOUT_MS},
        {"options", "PGOPTIONS", "-c statement_timeout=" DB_STATEMENT_TIMEOUT_MS DB_SERVER_OPTIONS},
    };
    for (size_t i = 0; i < sizeof(net) / sizeof(net[0]); i++)
        if (!db__params_get(p, net[i][0]) && !(net[i][1] && env__set(net[i][1])) &&
            params__add(p, net[i][0], net[i][2]) != GR_OK)
            goto out_free;
    PQconninfoFree(opts);
    return GR_OK;

out_free:
    PQconninfoFree(opts);
    for (int i = 0; i < p->n; i++) {
        free(p->keys[i]);
        free(p->vals[i]);
    }
    free(p->keys);
    free(p->vals);
    memset(p, 0, sizeof(*p));
    return GR_ENOMEM;
}

void db__params_describe(const struct db__params *p, char *buf, size_t len)
{
    static const char *const shown[] = {"host", "hostaddr", "port", "dbname", "user"};
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
        const char *v = db__params_get(p, shown[i]);
        if (!v || !*v || off >= len)
            continue;
        int m = snprintf(buf + off, len - off, "%s%s=%s", off ? " " : "", shown[i], v);
        if (m < 0)
            break;
        off += (size_t)m;
    }
    if (!buf[0])
        snprintf(buf, len, "(libpq defaults)");
}

/* ---- errors --------------------------------------------------------------- */

/* Keep msg in c->errmsg on one line, without libpq's trailing newline. */
static void conn__set_error(struct db_conn *c, const char *sqlstate, const char *msg)
{
    snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", sqlstate ? sqlstate : "");
    snprintf(c->errmsg, sizeof(c->errmsg), "%s", msg && *msg ? msg : "unknown error");
    size_t len = 0;
    for (char *s = c->errmsg; *s; s++, len++)
        if (*s == '\n' || *s == '\t' || *s == '\r')
            *s = ' ';
    while (len && c->errmsg[len - 1] == ' ')
        c->errmsg[--len] = '\0';
}

static void conn__clear_error(struct db_conn *c)
{
    c->sqlstate[0] = '\0';
    c->errmsg[0] = '\0';
}

const char *db_last_error(struct db_conn *c)
{
    return c ? c->errmsg : "";
}

const char *db_last_sqlstate(struct db_conn *c)
{
    return c ? c->sqlstate : "";
}

/* The first line of sql, shortened, for log lines. */
static void sql__brief(const char *sql, char *buf, size_t len)
{
    while (*sql == ' ' || *sql == '\n' || *sql == '\t')
        sql++;
    size_t n = strcspn(sql, "\n");
    if (n > 60)
        n = 60;
    if (n >= len)
        n = len - 1;
    memcpy(buf, sql, n);
    buf[n] = '\0';
}

/* ---- pool ----------------------------------------------------------------- */

/*
 * libpq notices (e.g. "relation ... already exists, skipping") go to debug.
 * A WARNING is remembered on the connection: at COMMIT it is how the server
 * says "committed locally, but the synchronous standby did not confirm"
 * (a cancelled wait), which db_commit() must not report as a success.
 */
static void conn__notice(void *arg, const PGresult *r)
{
    struct db_conn *c = arg;
    const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    if (c && sev && strcmp(sev, "WARNING") == 0) {
        c->warned = true;
        gr_warn("db: server warning: %s", msg ? msg : "(no message)");
    } else {
        gr_debug("db: server notice: %s", msg ? msg : "(no message)");
    }
}

static void pool__note_down(struct db_pool *p, const char *msg)
{
    int64_t now = db__now_ms();
    bool log;
    pthread_mutex_lock(&p->mu);
    log = !p->down || now - p->down_logged_ms >= DB_DOWN_LOG_EVERY_MS;
    if (log)
        p->down_logged_ms = now;
    p->down = true;
    p->down_since_ms = now;
    pthread_mutex_unlock(&p->mu);
    if (log)
        gr_error("db: cannot connect to %s: %s", p->desc, msg);
}

static void pool__note_up(struct db_pool *p)
{
    bool was_down;
    pthread_mutex_lock(&p->mu);
    was_down = p->down;
    p->down = false;
    pthread_mutex_unlock(&p->mu);
    if (was_down)
        gr_info("db: connected to %s again", p->desc);
}

/* (Re)connect c: close what is there and open a fresh connection. */
static int conn__connect(struct db_conn *c)
{
    struct db_pool *p = c->pool;
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    c->broken = false;
    c->stale = false;
    PGconn *pg = PQconnectdbParams((const char *const *)p->params.keys,
                                   (const char *const *)p->params.vals, 0);
    if (!pg) {
        atomic_fetch_add(&db__connect_failures, 1);
        conn__set_error(c, NULL, "out of memory");
        pool__note_down(p, c->errmsg);
        return GR_EDB;
    }
    if (PQstatus(pg) != CONNECTION_OK) {
        atomic_fetch_add(&db__connect_failures, 1);
        conn__set_error(c, NULL, PQerrorMessage(pg));
        PQfinish(pg);
        pool__note_down(p, c->errmsg);
        return GR_EDB;
    }
    PQsetNoticeReceiver(pg, conn__notice, c);
    c->pg = pg;
    pool__note_up(p);
    return GR_OK;
}

static void conn__close(struct db_conn *c)
{
    if (c->pg)
        PQfinish(c->pg);
    c->pg = NULL;
    c->broken = false;
    c->stale = false;
}

int db_pool_open(const char *conninfo, int size, struct db_pool **out)
{
    char err[256];
    int rc;

    *out = NULL;
    if (size < 1 || size > DB_MAX_POOL) {
        gr_error("db: pool size %d out of range 1..%d", size, DB_MAX_POOL);
        return GR_EINVAL;
    }
    if (!PQisthreadsafe()) {
        gr_error("db: libpq was built without thread safety");
        return GR_EINVAL;
    }
    struct db_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return GR_ENOMEM;
    p->conns = calloc((size_t)size, sizeof(*p->conns));
    if (!p->conns) {
        rc = GR_ENOMEM;
        goto out_free;
    }
    rc = db__params_build(conninfo, &p->params, err, sizeof(err));
    if (rc != GR_OK) {
        if (rc == GR_EINVAL)
            gr_error("db: bad database url: %s", err);
        goto out_free;
    }
    db__params_describe(&p->params, p->desc, sizeof(p->desc));

    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) {
        rc = GR_ENOMEM;
        goto out_params;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int e = pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (e != 0) {
        rc = GR_ENOMEM;
        goto out_params;
    }
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        rc = GR_ENOMEM;
        goto out_cond;
    }
    p->size = p->nfree = size;
    for (int i = 0; i < size; i++)
        p->conns[i].pool = p;
    gr_info("db: pool of %d connections to %s", size, p->desc);
    *out = p;
    return GR_OK;

out_cond:
    pthread_cond_destroy(&p->cv);
out_params:
    db__params_free(&p->params);
out_free:
    free(p->conns);
    free(p);
    return rc;
}

void db_pool_close(struct db_pool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->size; i++) {
        if (p->conns[i].busy)
            gr_error("db: pool closed while a connection is still acquired");
        conn__close(&p->conns[i]);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    db__params_free(&p->params);
    free(p->conns);
    free(p);
}

/* A free slot, preferring one already connected. Called with p->mu held. */
static struct db_conn *pool__take(struct db_pool *p)
{
    struct db_conn *spare = NULL;
    for (int i = 0; i < p->size; i++) {
        struct db_conn *c = &p->conns[i];
        if (c->busy)
            continue;
        if (c->pg && PQstatus(c->pg) == CONNECTION_OK) {
            spare = c;
            break;
        }
        if (!spare)
            spare = c;
    }
    spare->busy = true;
    p->nfree--;
    return spare;
}

static void pool__give_back(struct db_conn *c)
{
    struct db_pool *p = c->pool;
    pthread_mutex_lock(&p->mu);
    c->busy = false;
    p->nfree++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* The last connection attempt failed less than DB_RETRY_AFTER_FAIL_MS ago. */
static bool pool__failing_fast(struct db_pool *p)
{
    pthread_mutex_lock(&p->mu);
    bool fast = p->down && db__now_ms() - p->down_since_ms < DB_RETRY_AFTER_FAIL_MS;
    pthread_mutex_unlock(&p->mu);
    return fast;
}

int db_acquire(struct db_pool *p, int timeout_ms, struct db_conn **out)
{
    struct timespec deadline;
    *out = NULL;
    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&p->mu);
    while (p->nfree == 0) {
        int e = timeout_ms < 0 ? pthread_cond_wait(&p->cv, &p->mu)
                               : pthread_cond_timedwait(&p->cv, &p->mu, &deadline);
        if (e == ETIMEDOUT && p->nfree == 0) {
            pthread_mutex_unlock(&p->mu);
            atomic_fetch_add(&db__acquire_timeouts, 1);
            gr_warn("db: no free connection after %d ms (pool of %d)", timeout_ms, p->size);
            return GR_EDB;
        }
    }
    struct db_conn *c = pool__take(p);
    pthread_mutex_unlock(&p->mu);

    conn__clear_error(c);
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
        if (pool__failing_fast(p)) {
            conn__set_error(c, NULL, "no database server answered a moment ago");
            pool__give_back(c);
            return GR_EDB;
        }
        if (conn__connect(c) != GR_OK) {
            pool__give_back(c);
            return GR_EDB;
        }
    }
    *out = c;
    return GR_OK;
}

void db_release(struct db_conn *c)
{
    if (!c)
        return;
    if (c->pg && !c->broken && !c->stale && PQstatus(c->pg) == CONNECTION_OK) {
        PGTransactionStatusType ts = PQtransactionStatus(c->pg);
        if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
            gr_debug("db: connection released inside a transaction; rolling back");
            db__count_query();
            PGresult *r = PQexec(c->pg, "ROLLBACK");
            if (PQresultStatus(r) != PGRES_COMMAND_OK ||
                PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
                gr_warn("db: rollback on release failed; closing the connection");
                conn__close(c);
            }
            PQclear(r);
        } else if (ts != PQTRANS_IDLE) {
            conn__close(c); /* state unknown: do not hand it to someone else */
        }
    } else {
        conn__close(c); /* broken: the next db_acquire() of this slot reconnects */
    }
    pool__give_back(c);
}

/* ---- statements ----------------------------------------------------------- */

/*
 * Send sql (with params, or as a script with PQexec) and return the
 * successful PGresult in *out. On a dead connection outside a transaction,
 * reconnect once and resend, unless script (a migration is never resent).
 */
static int conn__run(struct db_conn *c, PGresult **out, const char *sql, int nparams,
                     const char *const *params, bool script)
{
    char brief[64];
    *out = NULL;
    if (!c->pg || c->broken) {
        conn__set_error(c, NULL, "connection lost inside a transaction");
        return GR_EDB;
    }
    bool idle = PQtransactionStatus(c->pg) == PQTRANS_IDLE;
    for (int attempt = 0;; attempt++) {
        db__count_query();
        c->warned = false;
        PGresult *r = script ? PQexec(c->pg, sql)
                             : PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0);
        ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            *out = r;
            return GR_OK;
        }
        sql__brief(sql, brief, sizeof(brief));
        if (PQstatus(c->pg) != CONNECTION_OK) {
            const char *sqlstate = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
            conn__set_error(c, sqlstate, PQerrorMessage(c->pg));
            PQclear(r);
            if (idle && attempt == 0 && !script) {
                gr_warn("db: connection lost (%s); reconnecting", c->errmsg);
                PQreset(c->pg);
                if (PQstatus(c->pg) == CONNECTION_OK) {
                    pool__note_up(c->pool);
                    continue;
                }
                conn__set_error(c, NULL, PQerrorMessage(c->pg));
                pool__note_down(c->pool, c->errmsg); /* logged at most every 10 s */
                return GR_EDB;
            }
            if (!idle) {
                c->broken = true;
                gr_error("db: connection lost inside a transaction: %s [%s]", c->errmsg, brief);
            } else {
                gr_error("db: connection lost: %s [%s]", c->errmsg, brief);
            }
            return GR_EDB;
        }
        if (!r) {
            conn__set_error(c, NULL, PQerrorMessage(c->pg));
            gr_error("db: %s [%s]", c->errmsg, brief);
            return GR_EDB;
        }
        const char *sqlstate = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (st == PGRES_FATAL_ERROR && db__sqlstate_stale(sqlstate)) {
            /* a read-only server (a standby, a demoted primary) or one going
             * away: this session will not serve writes again */
            c->stale = true;
            if (idle && attempt == 0 && !script && strcmp(sqlstate, "25006") == 0) {
                /* refused before it did anything: find the primary, send again */
                gr_warn("db: the server is read-only (a failover?); reconnecting");
                PQclear(r);
                PQreset(c->pg);
                c->stale = false;
                if (PQstatus(c->pg) == CONNECTION_OK) {
                    pool__note_up(c->pool);
                    continue;
                }
                conn__set_error(c, NULL, PQerrorMessage(c->pg));
                pool__note_down(c->pool, c->errmsg);
                return GR_EDB;
            }
        }
        const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        const char *detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
        if (st == PGRES_EMPTY_QUERY)
            primary = "empty query";
        else if (st != PGRES_FATAL_ERROR && !primary)
            primary = PQresStatus(st); /* COPY and the like: never sent by granary */
        conn__set_error(c, sqlstate, primary ? primary : PQresultErrorMessage(r));
        int err = st == PGRES_FATAL_ERROR ? db__sqlstate_err(sqlstate) : GR_EDB;
        if (err == GR_EDB)
            atomic_fetch_add(&db__errors, 1);
        if (err == GR_EDB)
            gr_error("db: %s %s%s%s [%s]", c->sqlstate[0] ? c->sqlstate : "-", c->errmsg,
                     detail ? ": " : "", detail ? detail : "", brief);
        else
            gr_info("db: %s %s%s%s [%s]", c->sqlstate, c->errmsg, detail ? ": " : "",
                    detail ? detail : "", brief);
        PQclear(r);
        return err;
    }
}

int db_exec(struct db_conn *c, struct db_res **out, const char *sql, int nparams,
            const char *const *params)
{
    PGresult *r;
    if (out)
        *out = NULL;
    int rc = conn__run(c, &r, sql, nparams, params, false);
    if (rc != GR_OK)
        return rc;
    if (!out) {
        PQclear(r);
        return GR_OK;
    }
    struct db_res *res = malloc(sizeof(*res));
    if (!res) {
        PQclear(r);
        return GR_ENOMEM;
    }
    res->pg = r;
    *out = res;
    return GR_OK;
}

int db__exec_script(struct db_conn *c, const char *sql)
{
    PGresult *r;
    int rc = conn__run(c, &r, sql, 0, NULL, true);
    PQclear(r);
    return rc;
}

bool db__conn_in_txn(struct db_conn *c)
{
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK)
        return false;
    PGTransactionStatusType ts = PQtransactionStatus(c->pg);
    return ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR;
}

int db_exec1(struct db_pool *p, struct db_res **out, const char *sql, int nparams,
             const char *const *params)
{
    struct db_conn *c;
    if (out)
        *out = NULL;
    int rc = db_acquire(p, DB_ACQUIRE_TIMEOUT_MS, &c);
    if (rc != GR_OK)
        return rc;
    rc = db_exec(c, out, sql, nparams, params);
    db_release(c);
    return rc;
}

int db_begin(struct db_conn *c)
{
    return db_exec(c, NULL, "BEGIN", 0, NULL);
}

int db_commit(struct db_conn *c)
{
    return db_commit_after(c, NULL);
}

int db_commit_after(struct db_conn *c, const char *last)
{
    PGresult *r;
    char *script = NULL;
    if (last) {
        /* one simple-query message: the server runs both, stops at an error */
        size_t n = strlen(last) + sizeof("; COMMIT");
        script = malloc(n);
        if (!script)
            return GR_ENOMEM;
        snprintf(script, n, "%s; COMMIT", last);
    }
    int rc = script ? conn__run(c, &r, script, 0, NULL, true)
                    : conn__run(c, &r, "COMMIT", 0, NULL, false);
    free(script);
    if (rc != GR_OK)
        return rc;
    /* COMMIT of a failed transaction succeeds as "ROLLBACK" */
    bool rolled_back = strcmp(PQcmdStatus(r), "ROLLBACK") == 0;
    PQclear(r);
    if (rolled_back) {
        conn__set_error(c, NULL, "transaction was rolled back");
        gr_error("db: commit of a failed transaction rolled it back");
        return GR_EDB;
    }
    if (c->warned) {
        /* committed on this server, but its wait for the synchronous standby
         * was cancelled (statement_timeout, a shutdown): not durable on two
         * servers, so not acknowledged; the client's retry finds the rows */
        c->stale = true;
        conn__set_error(c, NULL, "commit not confirmed by the synchronous standby");
        gr_error("db: commit not confirmed by the synchronous standby; answering 503");
        return GR_EDB;
    }
    return GR_OK;
}

int db_rollback(struct db_conn *c)
{
    if (!c->pg || c->broken || PQstatus(c->pg) != CONNECTION_OK) {
        c->broken = true; /* released connections are closed, then reconnected */
        return GR_OK;
    }
    PGresult *r;
    int rc = conn__run(c, &r, "ROLLBACK", 0, NULL, false);
    PQclear(r);
    if (rc != GR_OK)
        c->broken = true;
    return rc;
}

/* ---- results -------------------------------------------------------------- */

int db_res_rows(const struct db_res *r)
{
    return r ? PQntuples(r->pg) : 0;
}

int db_res_cols(const struct db_res *r)
{
    return r ? PQnfields(r->pg) : 0;
}

static bool res__in_range(const struct db_res *r, int row, int col)
{
    return r && row >= 0 && col >= 0 && row < PQntuples(r->pg) && col < PQnfields(r->pg);
}

const char *db_res_get(const struct db_res *r, int row, int col)
{
    if (!res__in_range(r, row, col))
        return "";
    const char *v = PQgetvalue(r->pg, row, col);
    return v ? v : "";
}

bool db_res_isnull(const struct db_res *r, int row, int col)
{
    return !res__in_range(r, row, col) || PQgetisnull(r->pg, row, col);
}

void db_res_free(struct db_res *r)
{
    if (!r)
        return;
    PQclear(r->pg);
    free(r);
}

static void res__cleanup(void *arg)
{
    db_res_free(arg);
}

void db_res_arena(struct db_res *r, struct gr_arena *a)
{
    if (r)
        gr_arena_cleanup(a, res__cleanup, r);
}

void db_metrics(struct db_pool *p, struct gr_sbuf *sb)
{
    struct db_pool_stats ps;
    db_pool_stats(p, &ps);
    gr_sbuf_addf(sb,
                 "# TYPE granary_db_queries_total counter\ngranary_db_queries_total %llu\n"
                 "# TYPE granary_db_pool_size gauge\ngranary_db_pool_size %d\n"
                 "# TYPE granary_db_pool_in_use gauge\ngranary_db_pool_in_use %d\n"
                 "# TYPE granary_db_errors_total counter\ngranary_db_errors_total %llu\n"
                 "# TYPE granary_db_connect_failures_total counter\n"
                 "granary_db_connect_failures_total %llu\n"
                 "# TYPE granary_db_pool_timeouts_total counter\n"
                 "granary_db_pool_timeouts_total %llu\n",
                 (unsigned long long)db_query_count(), ps.size, ps.in_use,
                 (unsigned long long)ps.errors, (unsigned long long)ps.connect_failures,
                 (unsigned long long)ps.acquire_timeouts);
}

/* ---- SQL text helpers ---- */

void db_like_below(struct gr_sbuf *sb, const char *path)
{
    for (const char *s = path; *s; s++) {
        if (*s == '\\' || *s == '%' || *s == '_')
            gr_sbuf_add(sb, "\\", 1);
        gr_sbuf_add(sb, s, 1);
    }
    if (*path)
        gr_sbuf_add(sb, "/", 1);
    gr_sbuf_add(sb, "%", 1);
}

void db_text_array(struct gr_sbuf *sb, const char *const *v, int n)
{
    gr_sbuf_add(sb, "{", 1);
    for (int i = 0; i < n; i++) {
        if (i)
            gr_sbuf_add(sb, ",", 1);
        gr_sbuf_add(sb, "\"", 1);
        for (const char *p = v[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                gr_sbuf_add(sb, "\\", 1);
            gr_sbuf_add(sb, p, 1);
        }
        gr_sbuf_add(sb, "\"", 1);
    }
    gr_sbuf_add(sb, "}", 1);
}
