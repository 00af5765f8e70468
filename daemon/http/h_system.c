/* h_system.c - health, version, metrics and node settings under /api/system. */
#include "http/req.h"

#include "base/err.h"
#include "base/sbuf.h"
#include "db/db.h"

#include <string.h>

static void system__metrics(struct http_req *r)
{
    struct gr_sbuf sb = GR_SBUF_INIT;
    struct http_server *h = r->srv;
    gr_sbuf_addf(&sb,
                 "# TYPE granary_db_queries_total counter\ngranary_db_queries_total %llu\n"
                 "# TYPE granary_cache_hits_total counter\ngranary_cache_hits_total %llu\n"
                 "# TYPE granary_cache_misses_total counter\ngranary_cache_misses_total %llu\n"
                 "# TYPE granary_http_requests_total counter\ngranary_http_requests_total %llu\n"
                 "# TYPE granary_http_active_requests gauge\ngranary_http_active_requests %d\n",
                 (unsigned long long)db_query_count(),
                 (unsigned long long)atomic_load(&r->ctx->cache_hits),
                 (unsigned long long)atomic_load(&r->ctx->cache_misses),
                 (unsigned long long)atomic_load(&h->requests), atomic_load(&h->active));
    http_text(r, 200, "text/plain; version=0.0.4", sb.buf, sb.len);
    gr_sbuf_release(&sb);
}

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
        if (atomic_load(&r->srv->ready))
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
        if (!get)
            goto method;
        if (http_need_admin(r))
            system__metrics(r);
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
