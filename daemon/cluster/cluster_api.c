/*
 * cluster_api.c - the cluster's own endpoints, rows of the route table
 * (http/route.h) that main adds: the cluster view (GET /api/system/cluster),
 * removing a down node (DELETE /api/system/cluster/nodes/{id}), and a load
 * balancer's configuration from the live node list
 * (GET /api/system/configuration/reverseProxy/{nginx,apache,haproxy}).
 */
#include "cluster/cluster.h"
#include "http/req.h"
#include "http/route.h"

#include "base/err.h"
#include "base/sbuf.h"
#include "proxy/proxyconf.h"
#include "repo/security.h"
#include "storage/storage.h"

#include <stdlib.h>
#include <string.h>

/* The node list for everyone signed in (what a load balancer's generator needs:
 * id, url, state); versions, addresses, leases, caches and storage for admins. */
static void cluster_api__view(struct http_req *r, bool full)
{
    struct cluster_status st;
    int rc = cluster_status(r->ctx->cluster, r->ctx->db, r->arena, &st);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    json_t *nodes = json_array();
    for (int i = 0; i < st.n; i++) {
        const struct cluster_node_info *n = &st.nodes[i];
        char hb[40], le[40], started[40];
        http_iso8601(n->heartbeat_ms, hb, sizeof(hb));
        http_iso8601(n->lease_expiry_ms, le, sizeof(le));
        http_iso8601(n->started_ms, started, sizeof(started));
        if (!full) {
            json_array_append_new(
                nodes, json_pack("{s:s,s:s,s:s}", "id", n->id, "state", n->state, "url", n->url));
            continue;
        }
        uint64_t total = n->cache_hits + n->cache_misses;
        json_array_append_new(
            nodes, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:f,s:b,s:I,s:I,s:I}",
                             "id", n->id, "state", n->state, "disk", n->disk, "zone", n->zone,
                             "url", n->url, "clusterUrl", n->cluster_url, "bus", n->bus, "version",
                             n->version, "started", started, "heartbeat", hb, "leaseExpiry", le,
                             "cacheHitRatio", total ? (double)n->cache_hits / (double)total : 0.0,
                             "preferredPrimary", n->preferred_primary, "cacheHits",
                             (json_int_t)n->cache_hits, "cacheMisses", (json_int_t)n->cache_misses,
                             "heartbeatAgeMs", (json_int_t)n->heartbeat_age_ms));
    }
    if (!full) {
        http_json(r, 200,
                  json_pack("{s:o,s:b}", "nodes", nodes, "clustered", r->ctx->cluster != NULL));
        return;
    }
    json_t *doc = json_pack(
        "{s:s,s:I,s:o,s:b,s:o,s:s,s:i}", "primary", st.primary, "primaryToken",
        (json_int_t)st.primary_token, "nodes", nodes, "clustered", r->ctx->cluster != NULL,
        "storage", storage_status_json(r->ctx->storage), "answeredBy",
        r->ctx->node_id ? r->ctx->node_id : "", "downAfterMs", st.down_after_ms);
    http_json(r, 200, doc);
}

static void cluster_api__get(struct http_req *r, const char *rest)
{
    (void)rest;
    const struct sec_perms *perms;
    if (!http_need_write(r)) /* signed in */
        return;
    int rc = http_perms(r, &perms);
    if (rc)
        http_error_code(r, rc, NULL);
    else
        cluster_api__view(r, perms->all);
}

static void cluster_api__node_delete(struct http_req *r, const char *id)
{
    if (!http_need_admin(r))
        return;
    int rc = cluster_remove_node(r->ctx->cluster, r->ctx->db, id);
    if (rc == GR_ENOTFOUND)
        http_error(r, 404, "no node '%s'", id);
    else if (rc == GR_ECONFLICT)
        http_error(r, 409, "node '%s' is alive: only a down node can be removed", id);
    else if (rc)
        http_error_code(r, rc, NULL);
    else
        http_text(r, 204, NULL, "", 0);
}

/*
 * Query parameters: listen, sslListen, serverName, sslCertificate, sslKey,
 * readTimeout (seconds), keepalive (idle connections to the nodes). A single node (no cluster)
 * lists itself.
 */
static void cluster_api__proxy(struct http_req *r, const char *type)
{
    if (r->method != HM_GET && r->method != HM_HEAD) {
        http_error(r, 405, "method %s not allowed here", r->method_str);
        return;
    }
    enum pc_type t;
    if (pc_type_parse(type, &t)) {
        http_error(r, 404, "no reverse-proxy type '%s' (nginx, apache, haproxy)", type);
        return;
    }
    if (!http_need_admin(r))
        return;
    struct cluster_status st;
    int rc = cluster_status(r->ctx->cluster, r->ctx->db, r->arena, &st);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    struct pc_node *nodes = gr_arena_calloc(r->arena, (size_t)(st.n ? st.n : 1) * sizeof(*nodes));
    for (int i = 0; i < st.n; i++)
        nodes[i] = (struct pc_node){st.nodes[i].id, st.nodes[i].url, st.nodes[i].state};
    int n = st.n;
    if (n == 0 && !r->ctx->cluster) { /* a single node: itself */
        const char *host = r->srv->opt.host;
        if (!host || !*host || !strcmp(host, "0.0.0.0") || !strcmp(host, "::"))
            host = "127.0.0.1";
        nodes[0] = (struct pc_node){"node",
                                    gr_arena_printf(r->arena, "http://%s%s%s:%d",
                                                    strchr(host, ':') ? "[" : "", host,
                                                    strchr(host, ':') ? "]" : "", r->srv->opt.port),
                                    "active"};
        n = 1;
    }
    const char *rt = http_query(r, "readTimeout");
    const char *ka = http_query(r, "keepalive");
    struct pc_options o = {
        .listen = http_query(r, "listen"),
        .tls_listen = http_query(r, "sslListen"),
        .server_name = http_query(r, "serverName"),
        .tls_cert = http_query(r, "sslCertificate"),
        .tls_key = http_query(r, "sslKey"),
        .read_timeout_s = rt ? atoi(rt) : 0,
        .keepalive = ka ? (atoi(ka) > 0 ? atoi(ka) : -1) : 0,
    };
    struct gr_sbuf sb = GR_SBUF_INIT;
    rc = pc_write(t, nodes, n, &o, &sb);
    if (rc == GR_ENOTFOUND)
        http_error(r, 503, "the cluster lists no node yet");
    else if (rc == GR_EINVAL)
        http_error(r, 400,
                   "a parameter or a node's URL cannot go into the configuration "
                   "(quotes, spaces, ';', braces; URLs must be http://host:port)");
    else if (rc)
        http_error_code(r, rc, NULL);
    else
        http_text(r, 200, "text/plain; charset=utf-8", sb.buf, sb.len);
    gr_sbuf_release(&sb);
}

static const struct http_route cluster_api__routes[] = {
    {"/api/system/cluster", HTTP_EXACT, HTTP_M_READ, HTTP_AUTH, "system", cluster_api__get},
    {"/api/system/cluster/nodes/", HTTP_PREFIX, HTTP_M_DELETE, HTTP_AUTH, "system",
     cluster_api__node_delete},
    {"/api/system/configuration/reverseProxy/", HTTP_PREFIX, HTTP_M_ANY, HTTP_AUTH, "system",
     cluster_api__proxy},
    {NULL, HTTP_EXACT, 0, HTTP_AUTH, NULL, NULL},
};

const struct http_route *const cluster_routes = cluster_api__routes;
