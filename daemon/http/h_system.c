/* h_system.c - health, version, metrics and node settings under /api/system. */
#include "http/req.h"

#include "base/err.h"
#include "base/sbuf.h"
#include "cluster/cluster.h"
#include "db/db.h"
#include "repo/security.h"

#include <string.h>

static void system__settings_put(struct http_req *r, json_t *doc)
{
    json_t *v = json_object_get(doc, "anonymousRead");
    if (!json_is_object(doc) || !json_is_boolean(v)) {
        http_error(r, 400, "expected {\"anonymousRead\": true|false}");
        return;
    }
    int rc = settings_set_anonymous_read(r->ctx, json_is_true(v));
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    http_json(r, 200, json_pack("{s:b}", "anonymousRead", json_is_true(v)));
}

/* The node list for everyone signed in (what a load balancer's generator needs:
 * id, url, state); versions, addresses, leases, caches and storage for admins. */
static void system__cluster(struct http_req *r, bool full)
{
    struct cluster_status st;
    int rc = cluster_status(r->ctx->cluster, r->ctx, r->arena, &st);
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
            nodes,
            json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:f,s:b,s:I,s:I}", "id", n->id,
                      "state", n->state, "zone", n->zone, "url", n->url, "clusterUrl",
                      n->cluster_url, "bus", n->bus, "version", n->version, "started", started,
                      "heartbeat", hb, "leaseExpiry", le, "cacheHitRatio",
                      total ? (double)n->cache_hits / (double)total : 0.0, "preferredPrimary",
                      n->preferred_primary, "cacheHits", (json_int_t)n->cache_hits, "cacheMisses",
                      (json_int_t)n->cache_misses));
    }
    if (!full) {
        http_json(r, 200,
                  json_pack("{s:o,s:b}", "nodes", nodes, "clustered", r->ctx->cluster != NULL));
        return;
    }
    json_t *doc = json_pack("{s:s,s:I,s:o,s:b,s:o}", "primary", st.primary, "primaryToken",
                            (json_int_t)st.primary_token, "nodes", nodes, "clustered",
                            r->ctx->cluster != NULL, "storage", http_storage_status_json(r));
    http_json(r, 200, doc);
}

static void system__maintenance(struct http_req *r, json_t *doc)
{
    json_t *v = json_object_get(doc, "drain");
    if (!json_is_object(doc) || !json_is_boolean(v)) {
        http_error(r, 400, "expected {\"drain\": true|false}");
        return;
    }
    bool drain = json_is_true(v);
    if (r->ctx->cluster) {
        int rc = cluster_set_draining(r->ctx->cluster, drain);
        if (rc) {
            http_error_code(r, rc, NULL);
            return;
        }
    }
    atomic_store(&r->srv->draining, drain);
    http_json(r, 200, json_pack("{s:b}", "drain", drain));
}

void h_system(struct http_req *r, const char *sub)
{
    bool get = r->method == HM_GET || r->method == HM_HEAD;
    if (!strcmp(sub, "system/ping")) {
        if (!get)
            goto method;
        if (!atomic_load(&r->srv->ready))
            http_error(r, 503, "node is not ready");
        else
            http_text(r, 200, "text/plain", "OK", 2);
        return;
    }
    if (!strcmp(sub, "v1/system/liveness")) {
        if (!get)
            goto method;
        http_json(r, 200, json_pack("{s:s}", "status", "UP"));
        return;
    }
    if (!strcmp(sub, "v1/system/readiness")) {
        if (!get)
            goto method;
        if (atomic_load(&r->srv->ready) && atomic_load(&r->srv->draining))
            http_error(r, 503, "node is draining");
        else if (atomic_load(&r->srv->ready))
            http_json(r, 200, json_pack("{s:s}", "status", "UP"));
        else
            http_error(r, 503,
                       atomic_load(&r->srv->quiesced) ? "node is shutting down"
                                                      : "node is not ready");
        return;
    }
    if (!strcmp(sub, "system/version")) {
        if (!get)
            goto method;
        http_json(r, 200,
                  json_pack("{s:s,s:s,s:[]}", "version", r->srv->opt.version, "revision",
                            r->srv->opt.version, "addons"));
        return;
    }
    if (!strcmp(sub, "system/metrics")) {
        h_metrics(r); /* metrics.c, also at /api/v1/metrics */
        return;
    }
    if (!strcmp(sub, "system/cluster")) {
        if (!get)
            goto method;
        const struct sec_perms *perms;
        if (!http_need_write(r)) /* signed in */
            return;
        int rc = http_perms(r, &perms);
        if (rc)
            http_error_code(r, rc, NULL);
        else
            system__cluster(r, perms->all);
        return;
    }
    if (!strncmp(sub, "system/cluster/nodes/", 21)) {
        if (r->method != HM_DELETE)
            goto method;
        if (!http_need_admin(r))
            return;
        const char *id = sub + 21;
        int rc = cluster_remove_node(r->ctx, id, 5000);
        if (rc == GR_ENOTFOUND)
            http_error(r, 404, "no node '%s'", id);
        else if (rc == GR_ECONFLICT)
            http_error(r, 409, "node '%s' is alive: only a down node can be removed", id);
        else if (rc)
            http_error_code(r, rc, NULL);
        else
            http_text(r, 204, NULL, "", 0);
        return;
    }
    if (!strcmp(sub, "system/maintenance")) {
        if (r->method != HM_POST && r->method != HM_PUT)
            goto method;
        if (http_need_admin(r))
            http_read_json_body(r, system__maintenance);
        return;
    }
    if (!strncmp(sub, "system/configuration/reverseProxy/", 34)) {
        h_proxy(r, sub + 34);
        return;
    }
    if (!strncmp(sub, "system/storage/", 15)) {
        h_system_storage(r, sub + 15);
        return;
    }
    if (!strcmp(sub, "system/settings")) {
        if (!http_need_admin(r))
            return;
        if (get) {
            bool on = false;
            int rc = settings_anonymous_read(r->ctx, &on);
            if (rc)
                http_error_code(r, rc, NULL);
            else
                http_json(r, 200, json_pack("{s:b}", "anonymousRead", on));
        } else if (r->method == HM_PUT || r->method == HM_POST) {
            http_read_json_body(r, system__settings_put);
        } else {
            goto method;
        }
        return;
    }
    http_error(r, 404, "no such api: /api/%s", sub);
    return;
method:
    http_error(r, 405, "method %s not allowed here", r->method_str);
}
