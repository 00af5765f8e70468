/*
 * metrics.c - the access log line and the request metrics of both ports
 * (requests by route and status, latency histograms, bytes in and out),
 * and GET /api/v1/metrics (also /api/system/metrics): those, with the
 * cache, database pool, bus, invalidation and storage figures, in
 * Prometheus text format (docs/operations.md lists them).
 *
 * The request counters are process-wide (like db_query_count()): the public
 * port and the cluster port share them, told apart by route ("cluster").
 * Every counter is atomic; nothing here blocks a request.
 */
#include "http/req.h"

#include "base/log.h"
#include "base/sbuf.h"
#include "cluster/cluster.h"
#include "db/db.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

enum metrics__route {
    MR_ARTIFACT, /* /<repo>/<path>, Maven layout included */
    MR_NPM,
    MR_STORAGE,
    MR_SEARCH,
    MR_REPOSITORIES,
    MR_COPY_MOVE,
    MR_TRASH,
    MR_SYSTEM,
    MR_HEALTH,
    MR_OTHER_API,
    MR_ROOT,
    MR_CLUSTER, /* the cluster port */
    MR_COUNT
};

static const char *const metrics__route_names[MR_COUNT] = {
    "artifact", "npm",    "storage", "search", "repositories", "copy_move",
    "trash",    "system", "health",  "api",    "root",         "cluster"};

#define METRICS_BUCKETS 12
static const double metrics__bounds[METRICS_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                        0.1,   0.25,   0.5,   1,    5,     30};
#define METRICS_STATUS_MAX 600

struct metrics__per_route {
    atomic_uint_fast64_t status[METRICS_STATUS_MAX]; /* index 0: no answer */
    atomic_uint_fast64_t bucket[METRICS_BUCKETS + 1];
    atomic_uint_fast64_t sum_us, bytes_in, bytes_out, aborted;
};

static struct metrics__per_route metrics__r[MR_COUNT];

/* Which route a request took, from how it was addressed. */
static enum metrics__route metrics__classify(const struct http_req *r)
{
    if (r->srv->opt.internal)
        return MR_CLUSTER;
    const char *p = r->raw_uri;
    size_t len = r->raw_path_len;
    if (len >= 12 && !strncmp(p, "/artifactory", 12) && (len == 12 || p[12] == '/')) {
        p += 12;
        len -= 12;
    }
    if (len <= 1)
        return MR_ROOT;
    if (len < 5 || strncmp(p, "/api/", 5))
        return MR_ARTIFACT;
    p += 5;
    static const struct {
        const char *prefix;
        enum metrics__route route;
    } map[] = {
        {"npm/", MR_NPM},           {"storage", MR_STORAGE},
        {"search/", MR_SEARCH},     {"repositories", MR_REPOSITORIES},
        {"copy/", MR_COPY_MOVE},    {"move/", MR_COPY_MOVE},
        {"trash", MR_TRASH},        {"v1/system/", MR_HEALTH},
        {"system/ping", MR_HEALTH}, {"system/", MR_SYSTEM},
        {"v1/metrics", MR_SYSTEM},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strncmp(p, map[i].prefix, strlen(map[i].prefix)))
            return map[i].route;
    return MR_OTHER_API;
}

/* A header value fit for a log line: printable, no spaces or quotes, short. */
static const char *metrics__token(struct http_req *r, const char *name)
{
    const char *v = http_req_header(r, name);
    if (!v || !*v)
        return NULL;
    size_t n = strlen(v);
    if (n > 64)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (v[i] <= ' ' || v[i] > '~' || v[i] == '"' || v[i] == '\\')
            return NULL;
    return v;
}

void http_access_done(struct http_req *r, bool completed, double ms)
{
    enum metrics__route rt = metrics__classify(r);
    struct metrics__per_route *m = &metrics__r[rt];
    int st = r->responded && r->status > 0 && r->status < METRICS_STATUS_MAX ? r->status : 0;
    atomic_fetch_add_explicit(&m->status[st], 1, memory_order_relaxed);
    double s = ms / 1e3;
    int b = 0;
    while (b < METRICS_BUCKETS && s > metrics__bounds[b])
        b++;
    atomic_fetch_add_explicit(&m->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->sum_us, (uint64_t)(ms * 1e3), memory_order_relaxed);
    atomic_fetch_add_explicit(&m->bytes_in, r->body_bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->bytes_out, r->sent_bytes, memory_order_relaxed);
    if (!completed)
        atomic_fetch_add_explicit(&m->aborted, 1, memory_order_relaxed);

    /*
     * One line per request, key=value, greppable: req= is this node's
     * request id (X-Request-Id of the answer); rid= the X-Request-Id the
     * caller sent (the load balancer's id, or on the cluster port the
     * calling node's req=, with from= naming that node).
     */
    const char *rid = metrics__token(r, "X-Request-Id");
    const char *from = NULL;
    char node[64];
    if (rt == MR_CLUSTER) {
        /* "v2 NODE DEST ms nonce mac" (or "v1 NODE ms nonce mac") */
        const char *auth = http_req_header(r, "X-Granary-Auth");
        if (auth && sscanf(auth, "v%*1[12] %63s", node) == 1)
            from = node;
    }
    gr_info("req=%llu access method=%s path=%.*s status=%d in=%llu out=%llu ms=%.1f user=%s "
            "route=%s%s%s%s%s%s",
            (unsigned long long)r->id, r->method_str ? r->method_str : "-",
            (int)(r->raw_path_len > 300 ? 300 : r->raw_path_len), r->raw_uri,
            r->responded ? r->status : 0, (unsigned long long)r->body_bytes,
            (unsigned long long)r->sent_bytes, ms, r->user.name[0] ? r->user.name : "-",
            metrics__route_names[rt], rid ? " rid=" : "", rid ? rid : "", from ? " from=" : "",
            from ? from : "", completed ? "" : " aborted");
}

static void metrics__requests(struct gr_sbuf *sb)
{
    gr_sbuf_adds(sb, "# HELP granary_http_requests_by_route_total Requests answered, by route "
                     "and status (0: no answer).\n"
                     "# TYPE granary_http_requests_by_route_total counter\n");
    for (int rt = 0; rt < MR_COUNT; rt++)
        for (int st = 0; st < METRICS_STATUS_MAX; st++) {
            uint64_t v = atomic_load_explicit(&metrics__r[rt].status[st], memory_order_relaxed);
            if (v)
                gr_sbuf_addf(sb,
                             "granary_http_requests_by_route_total{route=\"%s\",status=\"%d\"} "
                             "%llu\n",
                             metrics__route_names[rt], st, (unsigned long long)v);
        }
    gr_sbuf_adds(sb, "# HELP granary_http_request_duration_seconds Time from the request line "
                     "to the end of the answer.\n"
                     "# TYPE granary_http_request_duration_seconds histogram\n");
    for (int rt = 0; rt < MR_COUNT; rt++) {
        struct metrics__per_route *m = &metrics__r[rt];
        uint64_t cum = 0;
        for (int b = 0; b <= METRICS_BUCKETS; b++) {
            cum += atomic_load_explicit(&m->bucket[b], memory_order_relaxed);
            if (b < METRICS_BUCKETS)
                gr_sbuf_addf(sb,
                             "granary_http_request_duration_seconds_bucket{route=\"%s\","
                             "le=\"%g\"} %llu\n",
                             metrics__route_names[rt], metrics__bounds[b], (unsigned long long)cum);
            else
                gr_sbuf_addf(sb,
                             "granary_http_request_duration_seconds_bucket{route=\"%s\","
                             "le=\"+Inf\"} %llu\n",
                             metrics__route_names[rt], (unsigned long long)cum);
        }
        gr_sbuf_addf(sb,
                     "granary_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                     "granary_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                     metrics__route_names[rt], (double)atomic_load(&m->sum_us) / 1e6,
                     metrics__route_names[rt], (unsigned long long)cum);
    }
    static const char *const names[3] = {"granary_http_received_bytes_total",
                                         "granary_http_sent_bytes_total",
                                         "granary_http_aborted_requests_total"};
    static const char *const help[3] = {"Request body bytes received.",
                                        "Response body bytes sent (declared length of buffered "
                                        "answers, bytes produced for streamed ones).",
                                        "Requests whose connection ended before the answer did."};
    for (int k = 0; k < 3; k++) {
        gr_sbuf_addf(sb, "# HELP %s %s\n# TYPE %s counter\n", names[k], help[k], names[k]);
        for (int rt = 0; rt < MR_COUNT; rt++) {
            struct metrics__per_route *m = &metrics__r[rt];
            uint64_t v = atomic_load(k == 0 ? &m->bytes_in : k == 1 ? &m->bytes_out : &m->aborted);
            gr_sbuf_addf(sb, "%s{route=\"%s\"} %llu\n", names[k], metrics__route_names[rt],
                         (unsigned long long)v);
        }
    }
}

static void metrics__cluster(struct http_req *r, struct gr_sbuf *sb)
{
    struct cluster_stats cs;
    cluster_get_stats(r->ctx->cluster, &cs);
    gr_sbuf_addf(sb,
                 "# TYPE granary_cluster_invalidations_total counter\n"
                 "granary_cluster_invalidations_total %llu\n"
                 "# TYPE granary_cluster_acks_missing_total counter\n"
                 "granary_cluster_acks_missing_total %llu\n"
                 "# TYPE granary_cluster_lease_waits_total counter\n"
                 "granary_cluster_lease_waits_total %llu\n"
                 "# TYPE granary_cluster_cache_flushes_total counter\n"
                 "granary_cluster_cache_flushes_total %llu\n"
                 "# TYPE granary_cluster_primary_tasks_total counter\n"
                 "granary_cluster_primary_tasks_total %llu\n"
                 "# TYPE granary_cluster_primary gauge\ngranary_cluster_primary %d\n",
                 (unsigned long long)cs.invalidations_sent, (unsigned long long)cs.acks_missing,
                 (unsigned long long)cs.lease_waits, (unsigned long long)cs.flushes,
                 (unsigned long long)cs.primary_tasks_run,
                 cluster_is_primary(r->ctx->cluster) ? 1 : 0);
    gr_sbuf_adds(sb, "# HELP granary_cluster_invalidation_seconds Acknowledged invalidation: "
                     "sending the keys until every peer acked or its lease ran out.\n"
                     "# TYPE granary_cluster_invalidation_seconds histogram\n");
    for (int b = 0; b < CLUSTER_INVAL_BUCKETS; b++)
        gr_sbuf_addf(sb, "granary_cluster_invalidation_seconds_bucket{le=\"%g\"} %llu\n",
                     cluster_inval_bounds[b], (unsigned long long)cs.inval_bucket[b]);
    gr_sbuf_addf(sb,
                 "granary_cluster_invalidation_seconds_bucket{le=\"+Inf\"} %llu\n"
                 "granary_cluster_invalidation_seconds_sum %.6f\n"
                 "granary_cluster_invalidation_seconds_count %llu\n",
                 (unsigned long long)cs.inval_count, (double)cs.inval_sum_us / 1e6,
                 (unsigned long long)cs.inval_count);
    gr_sbuf_addf(sb,
                 "# TYPE granary_bus_messages_sent_total counter\n"
                 "granary_bus_messages_sent_total %llu\n"
                 "# TYPE granary_bus_messages_received_total counter\n"
                 "granary_bus_messages_received_total %llu\n"
                 "# TYPE granary_bus_request_timeouts_total counter\n"
                 "granary_bus_request_timeouts_total %llu\n"
                 "# TYPE granary_bus_messages_dropped_total counter\n"
                 "granary_bus_messages_dropped_total %llu\n"
                 "# TYPE granary_bus_gaps_total counter\ngranary_bus_gaps_total %llu\n",
                 (unsigned long long)cs.bus_sent, (unsigned long long)cs.bus_received,
                 (unsigned long long)cs.bus_timeouts, (unsigned long long)cs.bus_dropped,
                 (unsigned long long)cs.bus_gaps);
}

void h_metrics(struct http_req *r)
{
    if (r->method != HM_GET && r->method != HM_HEAD) {
        http_error(r, 405, "method %s not allowed here", r->method_str);
        return;
    }
    if (!http_need_admin(r))
        return;
    struct gr_sbuf sb = GR_SBUF_INIT;
    struct http_server *h = r->srv;
    struct db_pool_stats ps;
    db_pool_stats(r->ctx->db, &ps);
    gr_sbuf_addf(&sb,
                 "# TYPE granary_db_queries_total counter\ngranary_db_queries_total %llu\n"
                 "# TYPE granary_db_pool_size gauge\ngranary_db_pool_size %d\n"
                 "# TYPE granary_db_pool_in_use gauge\ngranary_db_pool_in_use %d\n"
                 "# TYPE granary_db_errors_total counter\ngranary_db_errors_total %llu\n"
                 "# TYPE granary_db_connect_failures_total counter\n"
                 "granary_db_connect_failures_total %llu\n"
                 "# TYPE granary_db_pool_timeouts_total counter\n"
                 "granary_db_pool_timeouts_total %llu\n"
                 "# TYPE granary_cache_hits_total counter\ngranary_cache_hits_total %llu\n"
                 "# TYPE granary_cache_misses_total counter\ngranary_cache_misses_total %llu\n"
                 "# TYPE granary_http_requests_total counter\ngranary_http_requests_total %llu\n"
                 "# TYPE granary_http_active_requests gauge\ngranary_http_active_requests %d\n"
                 "# TYPE granary_ready gauge\ngranary_ready %d\n"
                 "# TYPE granary_draining gauge\ngranary_draining %d\n",
                 (unsigned long long)db_query_count(), ps.size, ps.in_use,
                 (unsigned long long)ps.errors, (unsigned long long)ps.connect_failures,
                 (unsigned long long)ps.acquire_timeouts,
                 (unsigned long long)atomic_load(&r->ctx->cache_hits),
                 (unsigned long long)atomic_load(&r->ctx->cache_misses),
                 (unsigned long long)atomic_load(&h->requests), atomic_load(&h->active),
                 atomic_load(&h->ready) ? 1 : 0, atomic_load(&h->draining) ? 1 : 0);
    if (r->ctx->cluster)
        metrics__cluster(r, &sb);
    http_storage_metrics(r, &sb);
    metrics__requests(&sb);
    http_text(r, 200, "text/plain; version=0.0.4", sb.buf, sb.len);
    gr_sbuf_release(&sb);
}
