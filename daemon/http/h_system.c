/* h_system.c - health, version, metrics and node settings under /api/system. */
#include "http/req.h"

#include "base/err.h"
#include "base/sbuf.h"
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

static void system__maintenance(struct http_req *r, json_t *doc)
{
    json_t *v = json_object_get(doc, "drain");
    if (!json_is_object(doc) || !json_is_boolean(v)) {
        http_error(r, 400, "expected {\"drain\": true|false}");
        return;
    }
    bool drain = json_is_true(v);
    if (r->ctx->hooks.set_draining) {
        int rc = r->ctx->hooks.set_draining(r->ctx->hooks.arg, drain);
        if (rc) {
            http_error_code(r, rc, NULL);
            return;
        }
    }
    atomic_store(&r->srv->draining, drain);
    http_json(r, 200, json_pack("{s:b}", "drain", drain));
}

/* GET /api/v1/system/liveness and /readiness (no authentication, nor readiness). */
void h_system_v1(struct http_req *r, const char *rest)
{
    bool get = r->method == HM_GET || r->method == HM_HEAD;
    if (strcmp(rest, "liveness") && strcmp(rest, "readiness")) {
        http_error(r, 404, "no such api: /api/v1/system/%s", rest);
        return;
    }
    if (!get) {
        http_error(r, 405, "method %s not allowed here", r->method_str);
        return;
    }
    if (!strcmp(rest, "liveness"))
        http_json(r, 200, json_pack("{s:s}", "status", "UP"));
    else if (atomic_load(&r->srv->ready) && atomic_load(&r->srv->draining))
        http_error(r, 503, "node is draining");
    else if (atomic_load(&r->srv->ready))
        http_json(r, 200, json_pack("{s:s}", "status", "UP"));
    else
        http_error(r, 503,
                   atomic_load(&r->srv->quiesced) ? "node is shutting down" : "node is not ready");
}

/* GET /api/system/ping (no authentication): 200 OK once ready. */
void h_ping(struct http_req *r, const char *rest)
{
    (void)rest;
    if (r->method != HM_GET && r->method != HM_HEAD)
        http_error(r, 405, "method %s not allowed here", r->method_str);
    else if (!atomic_load(&r->srv->ready))
        http_error(r, 503, "node is not ready");
    else
        http_text(r, 200, "text/plain", "OK", 2);
}

void h_system_version(struct http_req *r, const char *rest)
{
    (void)rest;
    http_json(r, 200,
              json_pack("{s:s,s:s,s:[]}", "version", r->srv->opt.version, "revision",
                        r->srv->opt.version, "addons"));
}

void h_system_maintenance(struct http_req *r, const char *rest)
{
    (void)rest;
    if (http_need_admin(r))
        http_read_json_body(r, system__maintenance);
}

void h_system_settings(struct http_req *r, const char *rest)
{
    (void)rest;
    if (!http_need_admin(r))
        return;
    if (r->method == HM_GET || r->method == HM_HEAD) {
        bool on = false;
        int rc = settings_anonymous_read(r->ctx, &on);
        if (rc)
            http_error_code(r, rc, NULL);
        else
            http_json(r, 200, json_pack("{s:b}", "anonymousRead", on));
    } else {
        http_read_json_body(r, system__settings_put);
    }
}

void h_system_metrics(struct http_req *r, const char *rest)
{
    h_metrics(r, rest); /* metrics.c, also at /api/v1/metrics */
}
