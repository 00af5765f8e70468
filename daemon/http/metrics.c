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
#include "http/route.h"

#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define METRICS_BUCKETS 12
static const double metrics__bounds[METRICS_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                        0.1,   0.25,   0.5,   1,    5,     30};
#define METRICS_STATUS_MAX 600

struct metrics__per_route {
    atomic_uint_fast64_t status[METRICS_STATUS_MAX]; /* index 0: no answer */
    atomic_uint_fast64_t bucket[METRICS_BUCKETS + 1];
    atomic_uint_fast64_t sum_us, bytes_in, bytes_out, aborted;
};

/* One per route label (route.c): a label's index is its slot. */
static struct metrics__per_route metrics__r[HTTP_ROUTE_LABELS_MAX];

/* The label of the route a request took; one that was never routed (an early
 * error, a connection gone before routing) by how it was addressed. */
static int metrics__label(const struct http_req *r)
{
    if (r->route_label >= 0)
        return r->route_label;
    const char *p = r->raw_uri;
    size_t len = r->raw_path_len;
    bool internal = r->srv->opt.internal;
    if (!internal && len >= 12 && !strncmp(p, "/artifactory", 12) && (len == 12 || p[12] == '/')) {
        p += 12;
        len -= 12;
        if (len == 0) {
            p = "/";
            len = 1;
        }
    }
    int label = -1;
    size_t used;
    if (len > 0 && p[0] == '/')
        (void)http__route_find(internal, p, len, &label, &used);
    return label;
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
    int rt = metrics__label(r);
    if (rt < 0 || rt >= HTTP_ROUTE_LABELS_MAX)
        rt = http__route_artifact_label(); /* not a path at all: counted as the catch-all */
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
    if (r->srv->opt.internal) {
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
            http__route_label_name(rt), rid ? " rid=" : "", rid ? rid : "", from ? " from=" : "",
            from ? from : "", completed ? "" : " aborted");
}

static void metrics__requests(struct gr_sbuf *sb)
{
    gr_sbuf_adds(sb, "# HELP granary_http_requests_by_route_total Requests answered, by route "
                     "and status (0: no answer).\n"
                     "# TYPE granary_http_requests_by_route_total counter\n");
    for (int rt = 0; rt < http__route_label_count(); rt++)
        for (int st = 0; st < METRICS_STATUS_MAX; st++) {
            uint64_t v = atomic_load_explicit(&metrics__r[rt].status[st], memory_order_relaxed);
            if (v)
                gr_sbuf_addf(sb,
                             "granary_http_requests_by_route_total{route=\"%s\",status=\"%d\"} "
                             "%llu\n",
                             http__route_label_name(rt), st, (unsigned long long)v);
        }
    gr_sbuf_adds(sb, "# HELP granary_http_request_duration_seconds Time from the request line "
                     "to the end of the answer.\n"
                     "# TYPE granary_http_request_duration_seconds histogram\n");
    for (int rt = 0; rt < http__route_label_count(); rt++) {
        struct metrics__per_route *m = &metrics__r[rt];
        uint64_t cum = 0;
        for (int b = 0; b <= METRICS_BUCKETS; b++) {
            cum += atomic_load_explicit(&m->bucket[b], memory_order_relaxed);
            if (b < METRICS_BUCKETS)
                gr_sbuf_addf(sb,
                             "granary_http_request_duration_seconds_bucket{route=\"%s\","
                             "le=\"%g\"} %llu\n",
                             http__route_label_name(rt), metrics__bounds[b],
                             (unsigned long long)cum);
            else
                gr_sbuf_addf(sb,
                             "granary_http_request_duration_seconds_bucket{route=\"%s\","
                             "le=\"+Inf\"} %llu\n",
                             http__route_label_name(rt), (unsigned long long)cum);
        }
        gr_sbuf_addf(sb,
                     "granary_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                     "granary_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                     http__route_label_name(rt), (double)atomic_load(&m->sum_us) / 1e6,
                     http__route_label_name(rt), (unsigned long long)cum);
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
        for (int rt = 0; rt < http__route_label_count(); rt++) {
            struct metrics__per_route *m = &metrics__r[rt];
            uint64_t v = atomic_load(k == 0 ? &m->bytes_in : k == 1 ? &m->bytes_out : &m->aborted);
            gr_sbuf_addf(sb, "%s{route=\"%s\"} %llu\n", names[k], http__route_label_name(rt),
                         (unsigned long long)v);
        }
    }
}

/* The other modules' figures (db, cache, cluster, storage): writers main registers. */
#define METRICS_SOURCES_MAX 16
static struct {
    http_metrics_fn fn;
    void *arg;
} metrics__sources[METRICS_SOURCES_MAX];
static int metrics__nsources;

int http_metrics_add(http_metrics_fn fn, void *arg)
{
    if (metrics__nsources == METRICS_SOURCES_MAX)
        return GR_EINVAL;
    metrics__sources[metrics__nsources].fn = fn;
    metrics__sources[metrics__nsources].arg = arg;
    metrics__nsources++;
    return GR_OK;
}

void h_metrics(struct http_req *r, const char *rest)
{
    (void)rest;
    if (r->method != HM_GET && r->method != HM_HEAD) {
        http_error(r, 405, "method %s not allowed here", r->method_str);
        return;
    }
    if (!http_need_admin(r))
        return;
    struct gr_sbuf sb = GR_SBUF_INIT;
    struct http_server *h = r->srv;
    for (int i = 0; i < metrics__nsources; i++)
        metrics__sources[i].fn(metrics__sources[i].arg, &sb);
    gr_sbuf_addf(&sb,
                 "# TYPE granary_http_requests_total counter\ngranary_http_requests_total %llu\n"
                 "# TYPE granary_http_active_requests gauge\ngranary_http_active_requests %d\n"
                 "# TYPE granary_ready gauge\ngranary_ready %d\n"
                 "# TYPE granary_draining gauge\ngranary_draining %d\n",
                 (unsigned long long)atomic_load(&h->requests), atomic_load(&h->active),
                 atomic_load(&h->ready) ? 1 : 0, atomic_load(&h->draining) ? 1 : 0);
    metrics__requests(&sb);
    http_text(r, 200, "text/plain; version=0.0.4", sb.buf, sb.len);
    gr_sbuf_release(&sb);
}
