/*
 * cluster.h - membership, cache leases, acknowledged invalidation and the
 * primary lease: docs/cluster.md, "Caches that are never stale" and "The
 * primary"; daemon/cluster/README.md.
 *
 * One heartbeat thread per node (started by cluster_start) renews the
 * node's row and cache lease in PostgreSQL, refreshes the bus peers, and
 * holds or takes the primary lease. Writers call into it through the hooks
 * it installs in struct repo_ctx. All functions are thread-safe.
 */
#ifndef CLUSTER_H
#define CLUSTER_H

#include "base/arena.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cluster;
struct db_pool;

/* A cache key, or a key prefix, to drop (an invalidation's item). */
struct cluster_key {
    const char *key;
    size_t len;
    bool prefix;
};

/*
 * The node's metadata cache as the coherence protocol drives it (repo's
 * cache, wired by main: the cluster module includes no repo header).
 */
struct cluster_cache {
    /* drop keys (an invalidation from a peer); never fails: drops all if it must */
    void (*apply)(void *arg, const struct cluster_key *keys, size_t n);
    /* drop everything (a lapsed lease, a bus gap); GR_OK or an error */
    int (*drop)(void *arg);
    /* the cache's hit and miss counts, shown in the cluster view */
    uint64_t (*hits)(void *arg);
    uint64_t (*misses)(void *arg);
    void *arg;
};

struct cluster_options {
    struct db_pool *db;
    struct cluster_cache cache;
    const char *node_id;
    const char *public_url;
    const char *cluster_url; /* "" when the node has no internal port */
    const char *bus_listen;  /* HOST:PORT */
    const char *zone;
    const char *version;
    const void *key; /* the join key: signs every bus message */
    size_t key_len;
    const void *next_key; /* NULL, or a second key accepted during a rotation */
    size_t next_key_len;
    int lease_ms, heartbeat_ms, down_after_ms, remove_down_after_s, bus_timeout_ms;
    bool preferred_primary;
};

/*
 * Join: check the join key against the cluster's verifier (the first node
 * records it), register this node, open the bus, take a first cache lease,
 * and start the heartbeat thread. Installs its hooks in ctx (cache_ok,
 * invalidate). GR_EAUTH when the join key is not the cluster's, GR_EIO when
 * the bus cannot bind, GR_EDB.
 */
int cluster_start(const struct cluster_options *o, struct cluster **out)
    __attribute__((warn_unused_result));

struct http_route;
/* The cluster's endpoints (cluster_api.c), rows for the route table (http/route.h). */
extern const struct http_route *const cluster_routes;

/*
 * The cache coherence hooks repo calls (repo_ctx.hooks, wired by main; arg
 * is the struct cluster). cluster_cache_ok: false while this node's cache
 * lease has lapsed (reads then bypass the cache). cluster_invalidate: after
 * a mutation committed and its keys left the local cache, tell every peer
 * holding a lease and wait until each acknowledged (its keys are gone) or
 * its lease ran out by the database clock, at most one lease; it returns
 * only then, so no node serves the old value once the writer answers
 * (docs/cluster.md).
 */
bool cluster_cache_ok(void *arg);
/* false: the keys reached neither every peer nor, for a silent one, the
 * database that flags it (no database for a whole lease): the mutation is
 * committed but must not be acknowledged (answer 503). */
bool cluster_invalidate(void *arg, const struct cluster_key *keys, size_t n);

/* Leave: stop the heartbeat, mark the node down and its lease expired (so
 * writers stop waiting for it), close the bus. NULL is fine. */
void cluster_stop(struct cluster *c);

/* Drain (or undrain): state 'draining' in the cluster table. GR_EDB. */
int cluster_set_draining(struct cluster *c, bool draining) __attribute__((warn_unused_result));
bool cluster_is_draining(struct cluster *c);
/* The node serves requests: its row goes from 'starting' to 'active' (the
 * state load balancers follow). NULL is fine. GR_EDB (the next heartbeat
 * writes it anyway). */
int cluster_set_ready(struct cluster *c);
/* True while this node renewed the primary lease less than a lease ago by
 * its own clock (a stuck heartbeat ends it). Advisory: actions are fenced. */
bool cluster_is_primary(struct cluster *c);
/* The fencing token of the primary lease this node holds (0 when it holds
 * none, its renewal is older than the lease, or c is NULL): cluster tasks
 * check it inside their own transaction (cluster_fence()). */
uint64_t cluster_primary_token(struct cluster *c);
/* This node's id ("" for NULL). */
const char *cluster_node_id(struct cluster *c);

struct db_conn;
/*
 * Fence one action of the primary (docs/cluster.md "The primary"): inside
 * a transaction on conn, lock the primary lease's row FOR KEY SHARE if this
 * node holds it with token, and record the action in primary_task_log.
 * Until conn commits or rolls back, no other node can take the lease (a
 * takeover locks the row FOR UPDATE, which conflicts), while this node's
 * own renewals (FOR NO KEY UPDATE) go on; so everything the transaction
 * does is done by the one primary of that token: a deposed primary's
 * action fails here and must be rolled back.
 *
 * @param[in] task, subject  what is done, and to what (for the log)
 * @return GR_OK; GR_ECONFLICT when this node does not hold the lease with
 *         token (deposed, or 0: not the primary); GR_EDB.
 */
int cluster_fence(struct cluster *c, struct db_conn *conn, uint64_t token, const char *task,
                  const char *subject) __attribute__((warn_unused_result));

struct cluster_node_info {
    const char *id, *state, *zone, *url, *cluster_url, *bus, *version;
    const char *disk; /* "ok" or "degraded" (the filestore fails) */
    int64_t started_ms, heartbeat_ms, lease_expiry_ms;
    int64_t heartbeat_age_ms; /* by the database's clock: no node's clock skews it */
    uint64_t cache_hits, cache_misses;
    bool preferred_primary;
};

struct cluster_status {
    const char *primary; /* "" when none */
    uint64_t primary_token;
    int down_after_ms; /* a heartbeat older than this is a node down */
    struct cluster_node_info *nodes;
    int n;
};

/* The cluster as the database sees it (c may be NULL: single node). */
int cluster_status(struct cluster *c, struct db_pool *db, struct gr_arena *a,
                   struct cluster_status *out) __attribute__((warn_unused_result));

/* Remove a node that is down (by c's down_after_ms; 5 s for NULL, a single node).
 * GR_ENOTFOUND, GR_ECONFLICT (it is alive), GR_EDB. */
int cluster_remove_node(struct cluster *c, struct db_pool *db, const char *id)
    __attribute__((warn_unused_result));

/* Upper bounds (seconds) of the invalidation latency histogram's buckets. */
#define CLUSTER_INVAL_BUCKETS 8
extern const double cluster_inval_bounds[CLUSTER_INVAL_BUCKETS];

struct cluster_stats {
    uint64_t invalidations_sent, acks_missing, lease_waits, flushes, primary_tasks_run;
    uint64_t unconfirmed; /* invalidations that could not be ensured (answered 503) */
    /* acknowledged invalidation, from the send to the last ack (or lease wait):
     * cumulative counts per bucket of cluster_inval_bounds, then +Inf */
    uint64_t inval_bucket[CLUSTER_INVAL_BUCKETS + 1];
    uint64_t inval_count, inval_sum_us;
    /* the bus (zmq-bus bus_stats): messages sent and accepted, request
     * targets that timed out, messages dropped (forged, replayed, skewed,
     * malformed, overflow), sequence gaps seen */
    uint64_t bus_sent, bus_received, bus_timeouts, bus_dropped, bus_gaps;
};
void cluster_get_stats(struct cluster *c, struct cluster_stats *st);

struct gr_sbuf;
/* Those, and the bus's counters, as Prometheus lines (a metrics source, http.h);
 * nothing for NULL (a single node). */
void cluster_metrics(struct cluster *c, struct gr_sbuf *sb);

#endif
