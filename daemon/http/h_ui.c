/*
 * h_ui.c - the web UI (docs/ui.md): its static files at /ui/ (built into
 * the binary by scripts/embed-ui), the redirect of browsers from /, and
 * its sessions: sign-in and sign-out at /api/ui/session, the list and
 * revocation at /api/ui/sessions. The UI is a client of the REST API like
 * any other; a session only stands for its user (server.c checks the
 * cookie and, for changes, the CSRF token).
 */
#include "http/cookie.h"
#include "http/req.h"
#include "http/ui_assets.h"

#include "base/err.h"
#include "base/log.h"
#include "crypto/crypto.h"
#include "repo/security.h"

#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define UI_SESSION_LIFETIME_DEFAULT (8 * 3600)

/*
 * The UI's pages may load scripts, styles and images from this origin only
 * and talk to nothing else; no inline script or style runs, nothing may
 * frame them. Whatever an attacker stores in a name or a property, the page
 * renders it as text (ui/js/dom.js), and this policy stops any script
 * that got in anyway.
 */
#define UI_CSP                                                                                     \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "                   \
    "frame-ancestors 'none'"

static void ui__headers(struct MHD_Response *resp)
{
    http_header(resp, "Content-Security-Policy", UI_CSP);
    http_header(resp, "X-Content-Type-Options", "nosniff");
    http_header(resp, "X-Frame-Options", "DENY");
    http_header(resp, "Referrer-Policy", "same-origin");
}

static void ui__redirect(struct http_req *r, int status, const char *to)
{
    struct MHD_Response *resp = http_response_bytes(NULL, 0, true);
    if (!resp)
        return;
    http_header(resp, MHD_HTTP_HEADER_LOCATION, to);
    http_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    http_send(r, status, resp);
}

bool http_ui_redirect(struct http_req *r)
{
    if (r->method != HM_GET && r->method != HM_HEAD)
        return false;
    const char *accept = http_req_header(r, MHD_HTTP_HEADER_ACCEPT);
    if (!accept || !strcasestr(accept, "text/html"))
        return false;
    ui__redirect(r, 302, "/ui/");
    return true;
}

static bool ui__accepts_gzip(struct http_req *r)
{
    const char *ae = http_req_header(r, MHD_HTTP_HEADER_ACCEPT_ENCODING);
    if (!ae)
        return false;
    /* "gzip" listed, and not with q=0 */
    const char *g = strcasestr(ae, "gzip");
    if (!g)
        return false;
    const char *end = strchr(g, ',');
    const char *q = strstr(g, "q=0");
    return !(q && (!end || q < end) && strspn(q + 3, ".0") == strcspn(q + 3, ",; "));
}

/* /ui and /ui/<file>: the UI's files, built in. */
void h_ui_asset(struct http_req *r, const char *rest)
{
    bool slash = r->raw_path_len > 0 && r->raw_uri[r->raw_path_len - 1] == '/';
    if (!*rest && !slash) {
        ui__redirect(r, 301, "/ui/"); /* /ui: relative links need the slash */
        return;
    }
    const char *name = *rest ? rest : "index.html";
    const struct http_ui_asset *f = NULL;
    for (int i = 0; i < http_ui_assets_count; i++)
        if (!strcmp(http_ui_assets[i].path, name)) {
            f = &http_ui_assets[i];
            break;
        }
    if (!f) {
        http_error(r, 404, "no such file in the web UI: %.200s", name);
        return;
    }
    char etag[64];
    snprintf(etag, sizeof(etag), "\"%s\"", f->etag);
    if (http_not_modified(r, etag, -1)) {
        struct MHD_Response *resp = http_response_bytes(NULL, 0, true);
        if (!resp)
            return;
        http_header(resp, MHD_HTTP_HEADER_ETAG, etag);
        http_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        http_send(r, 304, resp);
        return;
    }
    bool gz = f->gz && ui__accepts_gzip(r);
    const unsigned char *body = gz ? f->gz : f->body;
    size_t len = gz ? f->gzlen : f->len;
    /* the table is static: libmicrohttpd may send from it without a copy */
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return;
    http_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, f->type);
    http_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    /* revalidated at every load (an ETag makes that a 304): a new granaryd's UI
     * is seen at once, and no file name needs a hash */
    http_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    if (f->gz)
        http_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    if (gz)
        http_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    ui__headers(resp);
    r->sent_bytes += r->method == HM_HEAD ? 0 : len;
    http_send(r, 200, resp);
}

/* ---- sessions ---- */

static long ui__lifetime(struct http_req *r)
{
    int s = r->srv->opt.session_lifetime;
    return s > 0 ? s : UI_SESSION_LIFETIME_DEFAULT;
}

/* Secure only behind TLS: a trusted proxy says the client spoke https. */
static bool ui__secure(struct http_req *r)
{
    const char *p = r->via_proxy ? http_req_header(r, "X-Forwarded-Proto") : NULL;
    return p && !strncasecmp(p, "https", 5) && (p[5] == '\0' || p[5] == ',' || p[5] == ' ');
}

static void ui__set_cookie(struct MHD_Response *resp, struct http_req *r, const char *value)
{
    char sc[256];
    if (http_session_set_cookie(sc, sizeof(sc), value, ui__lifetime(r), ui__secure(r)))
        http_header(resp, MHD_HTTP_HEADER_SET_COOKIE, sc);
}

/* An answer with a JSON document and a Set-Cookie (value NULL: cleared). */
static void ui__json_cookie(struct http_req *r, int status, json_t *doc, const char *value)
{
    char *s = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(doc);
    if (!s) {
        http_error(r, 500, "out of memory");
        return;
    }
    size_t len = strlen(s);
    struct MHD_Response *resp = http_response_bytes(s, len, false);
    if (!resp)
        return;
    http_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    http_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    ui__set_cookie(resp, r, value);
    r->sent_bytes += len;
    http_send(r, status, resp);
}

/* Who the caller is, for the UI: user, admin, and the CSRF token of its session. */
static json_t *ui__whoami(struct http_req *r, const char *cookie, int64_t expires_ms)
{
    bool anon_on = false;
    if (settings_anonymous_read(r->ctx, &anon_on) != GR_OK)
        anon_on = false;
    json_t *doc = json_pack("{s:s,s:b,s:b,s:b,s:b}", "user", r->user.name, "anonymous",
                            r->user.anonymous, "admin", !r->user.anonymous && http_is_admin(r),
                            "scoped", r->user.scoped, "anonymousAccess", anon_on);
    if (cookie) {
        char csrf[SEC_CSRF_LEN + 1];
        sec_session_csrf(cookie, csrf);
        json_object_set_new(doc, "csrfToken", json_string(csrf));
    }
    if (expires_ms > 0) {
        char exp[40];
        http_iso8601(expires_ms, exp, sizeof(exp));
        json_object_set_new(doc, "expires", json_string(exp));
    }
    if (r->session_ended)
        json_object_set_new(doc, "sessionEnded", json_true());
    return doc;
}

static const char *ui__str(json_t *doc, const char *name)
{
    json_t *v = json_object_get(doc, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/*
 * POST /api/ui/session {"user","password"} or {"token"}: sign in. The
 * password goes through the same throttle, realms and audit log as Basic
 * authentication (http_login_password); a token as any token does.
 */
static void ui__login_done(struct http_req *r, json_t *doc)
{
    const char *user = ui__str(doc, "user"), *pw = ui__str(doc, "password");
    const char *token = ui__str(doc, "token");
    if (!json_is_object(doc) || (token ? user || pw : !user || !pw || !*user)) {
        http_error(r, 400,
                   "expected {\"user\":\"...\",\"password\":\"...\"} or {\"token\":\"...\"}");
        return;
    }
    memset(&r->user, 0, sizeof(r->user));
    r->perms = NULL;
    char tsum[CR_SHA256_HEX];
    if (token) {
        int rc = sec_token_check(r->ctx, token, &r->user);
        if (rc == GR_EAUTH) {
            memset(&r->user, 0, sizeof(r->user));
            gr_warn("req=%llu ui sign-in with a token failed from %s", (unsigned long long)r->id,
                    r->client);
            sec_audit(r->ctx, "", r->client, "login_failed", NULL, NULL, "ui token");
            http_error(r, 401, "bad credentials: unknown, expired or revoked token");
            return;
        }
        if (rc) {
            http_error_code(r, rc, NULL);
            return;
        }
        cr_sha256_hex(token, strlen(token), tsum);
    } else if (!http_login_password(r, user, pw, "ui session", true)) {
        return; /* throttled, refused, counted and audited as any login */
    }
    if (strchr(r->user.name, ':')) {
        http_error(r, 403,
                   "a user of a plugin realm cannot open a UI session; use Basic "
                   "authentication");
        return;
    }
    char cookie[SEC_SESSION_LEN + 1];
    struct sec_session_info info;
    int rc = sec_session_open(r->ctx, r->user.name, r->user.scoped, token ? tsum : NULL,
                              ui__lifetime(r), r->client, cookie, &info);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    if (token) /* a password sign-in was audited by http_login_password */
        http_audit(r, "login", NULL, NULL, "ui session (token)");
    ui__json_cookie(r, 200, ui__whoami(r, cookie, info.expires_ms), cookie);
}

void h_ui_session(struct http_req *r, const char *rest)
{
    (void)rest;
    if (r->method == HM_POST) {
        /* a form of another site cannot send JSON: no login CSRF */
        const char *ct = http_req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (!ct || strncasecmp(ct, "application/json", 16)) {
            http_error(r, 415, "sign in with a JSON body (Content-Type: application/json)");
            return;
        }
        http_read_json_body(r, ui__login_done);
        return;
    }
    if (r->method == HM_DELETE) { /* sign out: the CSRF token was checked (server.c) */
        if (r->session) {
            int rc = sec_session_revoke(r->ctx, r->session, NULL, NULL);
            if (rc && rc != GR_ENOTFOUND) {
                http_error_code(r, rc, NULL);
                return;
            }
            http_audit(r, "logout", NULL, NULL, r->session_id);
        }
        ui__json_cookie(r, 200, json_pack("{s:b}", "signedOut", 1), NULL);
        return;
    }
    json_t *doc = ui__whoami(r, r->session, 0);
    if (r->session_ended) /* the browser forgets the dead cookie */
        ui__json_cookie(r, 200, doc, NULL);
    else
        http_json(r, 200, doc);
}

/*
 * GET /api/ui/sessions[?user=]: one's own sessions (admins: everyone's, or
 * one user's); DELETE /api/ui/sessions/{id}: revoke one's own (admins: any).
 */
void h_ui_sessions(struct http_req *r, const char *id)
{
    if (r->user.anonymous) {
        http_error(r, 401, "authentication required");
        return;
    }
    bool admin = http_is_admin(r);
    if (r->method == HM_DELETE) {
        if (!*id || strlen(id) > 64 || strspn(id, "0123456789abcdef") != strlen(id)) {
            http_error(r, 404, "no such session");
            return;
        }
        int rc = sec_session_revoke(r->ctx, NULL, id, admin ? NULL : r->user.name);
        if (rc == GR_ENOTFOUND)
            http_error(r, 404, "no such session");
        else if (rc)
            http_error_code(r, rc, NULL);
        else {
            http_audit(r, "session_revoke", NULL, NULL, id);
            http_text(r, 204, NULL, "", 0);
        }
        return;
    }
    if (*id) {
        http_error(r, 405, "method %s not allowed here", r->method_str);
        return;
    }
    const char *who = http_query(r, "user");
    if (who && !*who)
        who = NULL;
    if (!admin) {
        if (who && strcmp(who, r->user.name)) {
            http_error(r, 403, "admin rights required to list another user's sessions");
            return;
        }
        who = r->user.name;
    }
    struct sec_session_info *v;
    int n;
    int rc = sec_session_list(r->ctx, r->arena, who, &v, &n);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    json_t *list = json_array();
    for (int i = 0; i < n; i++) {
        char created[40], expires[40];
        http_iso8601(v[i].created_ms, created, sizeof(created));
        http_iso8601(v[i].expires_ms, expires, sizeof(expires));
        json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:b,s:b,s:b}", "id",
                                              v[i].id, "user", v[i].user, "client", v[i].client,
                                              "created", created, "expires", expires, "scoped",
                                              v[i].scoped, "withToken", v[i].with_token, "revoked",
                                              v[i].revoked, "current",
                                              r->session_id && !strcmp(r->session_id, v[i].id)));
    }
    http_json(r, 200, json_pack("{s:o}", "sessions", list));
}
