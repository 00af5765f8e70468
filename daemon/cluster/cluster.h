/*
 * cluster.h - membership, cache leases, acknowledged invalidation and the
 * primary lease: DESIGN.md "Consistency" and "Cluster roles" (docs/cluster.md).
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

struct repo_ctx;
struct cluster;

struct cluster_options {
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
int cluster_start(const struct cluster_options *o, struct repo_ctx *ctx, struct cluster **out)
    __attribute__((warn_unused_result));

/* Leave: stop the heartbeat, mark the node down and its lease expired (so
 * writers stop waiting for it), close the bus. NULL is fine. */
void cluster_stop(struct cluster *c);

/* Drain (or undrain): state 'draining' in the cluster table. GR_EDB. */
int cluster_set_draining(struct cluster *c, bool draining) __attribute__((warn_unused_result));
bool cluster_is_draining(struct cluster *c);
bool cluster_is_primary(struct cluster *c);
/* The fencing token of the primary lease this node holds (0 when it holds
 * none or c is NULL): cluster tasks check it inside their own statement. */
uint64_t cluster_primary_token(struct cluster *c);

struct cluster_node_info {
    const char *id, *state, *zone, *url, *cluster_url, *bus, *version;
    int64_t started_ms, heartbeat_ms, lease_expiry_ms;
    uint64_t cache_hits, cache_misses;
    bool preferred_primary;
};

struct cluster_status {
    const char *primary; /* "" when none */
    uint64_t primary_token;
    struct cluster_node_info *nodes;
    int n;
};

/* The cluster as the database sees it (c may be NULL: single node). */
int cluster_status(struct cluster *c, struct repo_ctx *ctx, struct gr_arena *a,
                   struct cluster_status *out) __attribute__((warn_unused_result));

/* Remove a node that is down. GR_ENOTFOUND, GR_ECONFLICT (it is alive), GR_EDB. */
int cluster_remove_node(struct repo_ctx *ctx, const char *id, int down_after_ms)
    __attribute__((warn_unused_result));

/* Upper bounds (seconds) of the invalidation latency histogram's buckets. */
#define CLUSTER_INVAL_BUCKETS 8
extern const double cluster_inval_bounds[CLUSTER_INVAL_BUCKETS];

struct cluster_stats {
    uint64_t invalidations_sent, acks_missing, lease_waits, flushes, primary_tasks_run;
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
