/*
 * server.c - libmicrohttpd set-up, the access handler, routing, auth and
 * the access log. Handlers live in h_*.c.
 */
#include "http/cookie.h"
#include "http/h_plugins.h"
#include "http/http.h"
#include "http/path.h"
#include "http/req.h"
#include "http/route.h"

#include "base/err.h"
#include "base/log.h"
#include "crypto/crypto.h"
#include "repo/security.h"

#include <microhttpd.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

static void server__conn_mark(struct http_req *r, bool in_request);

/* Keep URIs raw: the path normaliser and http_query() decode, and must see %00. */
static size_t server__unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

/* Called first for every request, with the raw URI: create its arena. */
static void *server__uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct http_server *h = cls;
    struct gr_arena *a = gr_arena_new();
    (void)conn; /* r->conn is set at the first access call */
    if (!a)
        return NULL;
    struct http_req *r = gr_arena_calloc(a, sizeof(*r));
    r->arena = a;
    r->srv = h;
    r->ctx = h->ctx;
    r->id = atomic_fetch_add(&h->next_id, 1) + 1;
    r->raw_uri = gr_arena_strdup(a, uri ? uri : "/");
    r->raw_path_len = strcspn(r->raw_uri, "?");
    r->base = "";
    r->route_label = -1;
    clock_gettime(CLOCK_MONOTONIC, &r->t0);
    return r;
}

static void server__completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    struct http_server *h = cls;
    struct http_req *r = *con_cls;
    (void)conn;
    if (!r)
        return;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms =
        (double)(t1.tv_sec - r->t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - r->t0.tv_nsec) / 1e6;
    if (r->started) /* the access line and the request metrics (metrics.c) */
        http_access_done(r, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK, ms);
    if (r->audit_action && r->responded && r->status >= 200 && r->status < 300)
        sec_audit(r->ctx, r->user.name, r->client, r->audit_action, r->audit_repo, r->audit_path,
                  r->audit_detail);
    if (r->started && conn)
        server__conn_mark(r, false);
    if (r->counted)
        atomic_fetch_sub(&h->active, 1);
    gr_arena_free(r->arena); /* runs cleanups: temp files, fds, results */
    *con_cls = NULL;
}

/* ---- auth ---- */

static int server__b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Decode base64 into out (NUL-terminated); -1 when malformed or too long. */
static int server__b64decode(const char *in, char *out, size_t outsz)
{
    size_t o = 0;
    unsigned int acc = 0;
    int bits = 0;
    for (; *in && *in != '='; in++) {
        int v = server__b64val(*in);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned int)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= outsz)
                return -1;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    return (int)o;
}

/*
 * The client's address as text (arena), "" when unknown: the TCP peer, or,
 * when the peer is a trusted proxy, the rightmost address of
 * X-Forwarded-For that is not itself a trusted proxy (what a client wrote
 * there itself stands to the left of what the proxies appended).
 */
static const char *server__client(struct http_req *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char buf[INET6_ADDRSTRLEN] = "";
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, sizeof(buf));
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, sizeof(buf));
    }
    const struct http_server *h = r->srv;
    r->via_proxy = h->nproxies && gr_cidr_contains(h->proxies, h->nproxies, buf);
    const char *xff = r->via_proxy ? http_req_header(r, "X-Forwarded-For") : NULL;
    if (!xff)
        return gr_arena_strdup(r->arena, buf);
    const char *end = xff + strlen(xff);
    while (end > xff) {
        const char *start = end;
        while (start > xff && start[-1] != ',')
            start--;
        const char *s = start, *e = end;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        char one[INET6_ADDRSTRLEN];
        if (e - s <= 0 || (size_t)(e - s) >= sizeof(one))
            break; /* malformed: the last trusted hop is the best we know */
        memcpy(one, s, (size_t)(e - s));
        one[e - s] = '\0';
        unsigned char probe[16];
        if (inet_pton(AF_INET, one, probe) != 1 && inet_pton(AF_INET6, one, probe) != 1)
            break;
        snprintf(buf, sizeof(buf), "%s", one);
        if (!gr_cidr_contains(h->proxies, h->nproxies, one))
            break;
        end = start > xff ? start - 1 : xff;
    }
    return gr_arena_strdup(r->arena, buf);
}

/* A token (Bearer, or the password of Basic auth). false: an answer was sent. */
static bool server__token(struct http_req *r, const char *user, const char *token)
{
    int rc = sec_token_check(r->ctx, token, &r->user);
    if (rc == GR_OK && (!user || !*user || !strcmp(user, r->user.name))) {
        r->auth_token = gr_arena_strdup(r->arena, token);
        return true;
    }
    memset(&r->user, 0, sizeof(r->user));
    if (rc == GR_OK || rc == GR_EAUTH) {
        gr_warn("req=%llu token authentication failed from %s", (unsigned long long)r->id,
                r->client);
        http_error(r, 401, "bad credentials: unknown, expired or revoked token");
    } else {
        http_error_code(r, rc, NULL);
    }
    return false;
}

/* A password, throttled per user and per client address (req.h). */
bool http_login_password(struct http_req *r, const char *user, const char *password,
                         const char *how, bool audit_success)
{
    int wait = sec_throttle_wait(user, r->client);
    if (wait > 0) {
        char *ra = gr_arena_printf(r->arena, "%d", wait);
        gr_warn("req=%llu login for '%.64s' from %s refused: throttled for %d s",
                (unsigned long long)r->id, user, r->client, wait);
        http_error(r, 429, "too many failed logins: retry in %s s", ra);
        return false;
    }
    int rc = auth_check_password(r->ctx, user, password, &r->user);
    bool hashed = r->user.slow_path; /* on GR_EAUTH: a real user's wrong password */
    if (rc == GR_EAUTH) {
        /* credentials granary's users refuse are offered to plugin realms */
        memset(&r->user, 0, sizeof(r->user));
        if (http_plug_authenticate(r, user, password)) {
            sec_throttle_result(user, r->client, true);
            return true;
        }
        if (r->responded)
            return false;
    }
    if (rc == GR_OK) {
        sec_throttle_result(user, r->client, true);
        /* the first check of this password on this node, or an explicit login */
        if (r->user.slow_path || audit_success)
            sec_audit(r->ctx, user, r->client, "login", NULL, NULL, how);
        return true;
    }
    memset(&r->user, 0, sizeof(r->user));
    if (rc == GR_EAUTH) {
        if (!hashed) /* an unknown or disabled name costs what a wrong password does */
            auth_password_dummy(password);
        int n = sec_throttle_result(user, r->client, false);
        gr_warn("req=%llu authentication failed for user '%.64s' from %s (%d in a row)",
                (unsigned long long)r->id, user, r->client, n);
        sec_audit(r->ctx, user, r->client, "login_failed", NULL, NULL, how);
        http_error(r, 401, "bad credentials");
    } else {
        http_error_code(r, rc, NULL);
    }
    return false;
}

static void server__anonymous(struct http_req *r)
{
    snprintf(r->user.name, sizeof(r->user.name), "anonymous");
    r->user.anonymous = true;
}

/*
 * A web UI session cookie (docs/ui.md). A request that changes something
 * (any method but GET and HEAD) must carry the session's CSRF token in
 * X-CSRF-Token: a page of another site can make the browser send the
 * cookie (were it not SameSite=Strict), never that header. A cookie that
 * no longer holds is 401, or no credentials on an HTTP_SESSION row.
 * false: an answer was sent.
 */
static bool server__session(struct http_req *r, const char *cookie, bool lenient)
{
    const char *id = NULL;
    int rc = sec_session_check(r->ctx, r->arena, cookie, &r->user, &id);
    if (rc == GR_EAUTH) {
        memset(&r->user, 0, sizeof(r->user));
        if (lenient) {
            r->session_ended = true;
            server__anonymous(r);
            return true;
        }
        http_error(r, 401, "session expired or revoked: sign in again");
        return false;
    }
    if (rc) {
        memset(&r->user, 0, sizeof(r->user));
        http_error_code(r, rc, NULL);
        return false;
    }
    if (r->method != HM_GET && r->method != HM_HEAD) {
        char want[SEC_CSRF_LEN + 1];
        sec_session_csrf(cookie, want);
        const char *got = http_req_header(r, "X-CSRF-Token");
        if (!got || strlen(got) != SEC_CSRF_LEN || !cr_equal(got, want, SEC_CSRF_LEN)) {
            gr_warn("req=%llu %s %.200s with the session of '%s' refused: no or a wrong CSRF token",
                    (unsigned long long)r->id, r->method_str, r->raw_uri, r->user.name);
            memset(&r->user, 0, sizeof(r->user));
            http_error(r, 403,
                       "missing or wrong CSRF token: a change made with a session "
                       "cookie must carry the session's X-CSRF-Token header");
            return false;
        }
    }
    r->session = gr_arena_strdup(r->arena, cookie);
    r->session_id = id;
    return true;
}

/*
 * Authenticate from the Authorization header, else a UI session cookie,
 * else anonymous. lenient: an ended session reads as anonymous (HTTP_SESSION
 * rows). false: an answer was sent.
 */
static bool server__authenticate(struct http_req *r, bool lenient)
{
    const char *auth = http_req_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    r->client = server__client(r);
    if (!auth) {
        char cookie[SEC_SESSION_LEN + 8];
        const char *ch = http_req_header(r, MHD_HTTP_HEADER_COOKIE);
        if (ch && http_cookie_get(ch, HTTP_SESSION_COOKIE, cookie, sizeof(cookie)) && *cookie)
            return server__session(r, cookie, lenient);
        if (ch && strstr(ch, HTTP_SESSION_COOKIE "=")) {
            /* a session cookie too long or malformed to be one of ours */
            if (!lenient) {
                http_error(r, 401, "session expired or revoked: sign in again");
                return false;
            }
            r->session_ended = true;
        }
        server__anonymous(r);
        return true;
    }
    if (!strncasecmp(auth, "Bearer ", 7)) {
        const char *tok = auth + 7;
        while (*tok == ' ')
            tok++;
        /* what a registry's token endpoint hands a caller without
         * credentials (formats/oci): the anonymous user, nothing more */
        if (!strcmp(tok, HTTP_ANONYMOUS_BEARER)) {
            server__anonymous(r);
            return true;
        }
        return server__token(r, NULL, tok);
    }
    if (strncasecmp(auth, "Basic ", 6) == 0) {
        char dec[512];
        int n = server__b64decode(auth + 6, dec, sizeof(dec));
        char *colon = n > 0 ? memchr(dec, ':', (size_t)n) : NULL;
        if (!colon || memchr(dec, '\0', (size_t)n)) {
            http_error(r, 401, "malformed basic credentials");
            return false;
        }
        *colon = '\0';
        /* Maven, pip, twine and npm send an access token as the password;
         * the user name "__token__" (PyPI's convention) stands for its owner */
        if (sec_token_shaped(colon + 1))
            return server__token(r, strcmp(dec, "__token__") ? dec : NULL, colon + 1);
        return http_login_password(r, dec, colon + 1, "password", false);
    }
    http_error(r, 401, "unsupported authorization scheme");
    return false;
}

/* ---- header deadlines: a client that sends its request head too slowly
 * (slowloris) is cut off; idle keep-alive connections likewise ---- */

static int64_t server__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void server__conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                                enum MHD_ConnectionNotificationCode code)
{
    struct http_server *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        struct http_conn *c = calloc(1, sizeof(*c));
        *socket_context = c;
        if (!c)
            return;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->fd = ci ? ci->connect_fd : -1;
        c->deadline_ms = server__mono_ms() + (int64_t)h->opt.header_timeout * 1000;
        atomic_fetch_add(&h->open_conns, 1);
        pthread_mutex_lock(&h->conns_mu);
        c->next = h->conns;
        if (h->conns)
            h->conns->prev = c;
        h->conns = c;
        pthread_mutex_unlock(&h->conns_mu);
        return;
    }
    /* closed: libmicrohttpd calls this before it closes the socket */
    struct http_conn *c = *socket_context;
    if (!c)
        return;
    pthread_mutex_lock(&h->conns_mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&h->conns_mu);
    atomic_fetch_sub(&h->open_conns, 1);
    free(c);
    *socket_context = NULL;
}

/* The request head is in (in_request) or its answer is done (a new deadline). */
static void server__conn_mark(struct http_req *r, bool in_request)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct http_conn *c = ci ? ci->socket_context : NULL;
    if (!c)
        return;
    pthread_mutex_lock(&r->srv->conns_mu);
    c->in_request = in_request;
    c->deadline_ms = server__mono_ms() + (int64_t)r->srv->opt.header_timeout * 1000;
    pthread_mutex_unlock(&r->srv->conns_mu);
}

/* Every 250 ms: shut down (not close: libmicrohttpd owns the fd) connections
 * past their header deadline; libmicrohttpd then sees the end and cleans up. */
static void *server__reaper(void *arg)
{
    struct http_server *h = arg;
    pthread_mutex_lock(&h->conns_mu);
    while (!h->reaper_stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += 250 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->conns_cv, &h->conns_mu, &until);
        int64_t now = server__mono_ms();
        for (struct http_conn *c = h->conns; c; c = c->next) {
            if (c->in_request || c->cut || c->fd < 0 || now < c->deadline_ms)
                continue;
            c->cut = true;
            shutdown(c->fd, SHUT_RDWR);
            atomic_fetch_add(&h->cut_slow, 1);
            gr_info("connection cut: no complete request head within %d s", h->opt.header_timeout);
        }
    }
    pthread_mutex_unlock(&h->conns_mu);
    return NULL;
}

/* ---- routing ---- */

/*
 * <key>-cache names the cached files of remote repository <key> when no
 * repository has that name itself (Artifactory's name for a remote's
 * cache): r->repo_key becomes <key> and r->cache_view is set.
 */
static void server__cache_alias(struct http_req *r)
{
    size_t kl = strlen(r->repo_key), sl = strlen(REPO_CACHE_SUFFIX);
    r->cache_view = false;
    if (kl <= sl || strcmp(r->repo_key + kl - sl, REPO_CACHE_SUFFIX))
        return;
    struct repo_config c;
    if (repo_get(r->ctx, r->arena, r->repo_key, &c) != GR_ENOTFOUND)
        return;
    char *base = gr_arena_strndup(r->arena, r->repo_key, kl - sl);
    if (repo_get(r->ctx, r->arena, base, &c) == GR_OK && !strcmp(c.rclass, "remote")) {
        r->repo_key = base;
        r->cache_view = true;
    }
}

bool http_parse_repo_path(struct http_req *r, const char *p, size_t len)
{
    size_t kl = strcspn(p, "/;?");
    if (kl > len)
        kl = len;
    r->repo_key = gr_arena_strndup(r->arena, p, kl);
    if (repo_key_check(r->repo_key) != GR_OK) {
        http_error(r, 404, "no such repository");
        return false;
    }
    server__cache_alias(r);
    const char *rest = p + kl;
    size_t rl = len - kl;
    bool slash_after_key = rl > 0 && rest[0] == '/';
    if (slash_after_key) {
        rest++;
        rl--;
    }
    /* matrix parameters: everything from the first raw ';' (a ';' in a name is %3B) */
    const char *semi = memchr(rest, ';', rl);
    r->matrix = NULL;
    if (semi) {
        r->matrix = gr_arena_strndup(r->arena, semi + 1, rl - (size_t)(semi - rest) - 1);
        rl = (size_t)(semi - rest);
    }
    r->path = gr_arena_alloc(r->arena, HTTP_PATH_MAX + 1);
    int rc = http_path_normalize(rest, rl, r->path, HTTP_PATH_MAX + 1, &r->trailing_slash);
    if (rc == GR_ETOOBIG) {
        http_error(r, 414, "path or path segment too long (limits: %d and %d bytes)", HTTP_PATH_MAX,
                   HTTP_SEGMENT_MAX);
        return false;
    }
    if (rc) {
        http_error(r, 400,
                   "invalid path: traversal, empty segments, control characters, "
                   "backslashes and bad escapes are refused");
        return false;
    }
    if (rl == 0 && slash_after_key)
        r->trailing_slash = true;
    return true;
}

struct server__hdr {
    bool too_long;
    int count;
};

static enum MHD_Result server__header_check(void *cls, enum MHD_ValueKind kind, const char *key,
                                            const char *value)
{
    struct server__hdr *h = cls;
    (void)kind;
    h->count++;
    if (strlen(key) + (value ? strlen(value) : 0) > HTTP_HEADER_LINE_MAX) {
        h->too_long = true;
        return MHD_NO;
    }
    return MHD_YES;
}

/* Started, then the caller's credentials. false: an answer was sent. A
 * stopping node serves what arrives on its open connections (a balancer
 * could not resend a PUT whose body it sent): only readiness says 503. */
static bool server__ready_authenticate(struct http_req *r, bool lenient)
{
    if (!atomic_load(&r->srv->serving)) {
        http_error(r, 503, "node is not ready");
        return false;
    }
    return server__authenticate(r, lenient);
}

bool http_authenticate(struct http_req *r)
{
    return server__ready_authenticate(r, false);
}

static void server__route(struct http_req *r)
{
    const char *p = r->raw_uri;
    size_t len = r->raw_path_len;
    struct server__hdr hdr = {false, 0};

    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, server__header_check, &hdr);
    if (hdr.too_long) {
        http_error(r, 431, "a header line is longer than %d bytes", HTTP_HEADER_LINE_MAX);
        return;
    }
    if (hdr.count > HTTP_HEADER_COUNT_MAX) {
        http_error(r, 431, "more than %d header lines", HTTP_HEADER_COUNT_MAX);
        return;
    }
    if (len == 0 || p[0] != '/') {
        http_error(r, 400, "the request target must be an absolute path");
        return;
    }
    if (len > HTTP_PATH_MAX * 3 + 128) {
        http_error(r, 414, "the path is longer than %d bytes", HTTP_PATH_MAX);
        return;
    }
    bool internal = r->srv->opt.internal;
    if (!internal && len >= 12 && !strncmp(p, "/artifactory", 12) && (len == 12 || p[12] == '/')) {
        r->base = "/artifactory";
        p += 12;
        len -= 12;
        if (len == 0) {
            p = "/";
            len = 1;
        }
    }
    size_t used = 0;
    const struct http_route *row = http__route_find(internal, p, len, &r->route_label, &used);
    if (!row) {
        http_error(r, 404, "no such endpoint");
        return;
    }
    const char *rest = gr_arena_strndup(r->arena, p + used, len - used);
    r->route_handler = row->handler;
    r->route_rest = rest;
    if (row->auth == HTTP_AUTH || row->auth == HTTP_SESSION) {
        if (!server__ready_authenticate(r, row->auth == HTTP_SESSION))
            return;
    }
    if (row->methods && !(row->methods & (1u << r->method))) {
        http_error(r, 405, "method %s not allowed here", r->method_str);
        return;
    }
    row->handler(r, rest);
}

static enum http_method server__method(const char *m)
{
    if (!strcmp(m, "GET"))
        return HM_GET;
    if (!strcmp(m, "HEAD"))
        return HM_HEAD;
    if (!strcmp(m, "PUT"))
        return HM_PUT;
    if (!strcmp(m, "POST"))
        return HM_POST;
    if (!strcmp(m, "DELETE"))
        return HM_DELETE;
    return HM_OTHER;
}

static enum MHD_Result server__access(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
    struct http_server *h = cls;
    struct http_req *r = *con_cls;
    (void)url;
    (void)version;
    if (!r)
        return MHD_NO;  /* out of memory at accept */
    if (r->suspended) { /* resumed (http_resume): the handler runs again */
        r->suspended = false;
        r->route_handler(r, r->route_rest);
        if (!r->responded && !r->suspended)
            http_error(r, 500, "handler gave no answer");
        return MHD_YES;
    }
    if (!r->started) {
        r->started = true;
        r->conn = conn;
        server__conn_mark(r, true);
        r->counted = true;
        atomic_fetch_add(&h->active, 1);
        atomic_fetch_add(&h->requests, 1);
        r->method_str = gr_arena_strdup(r->arena, method);
        r->method = server__method(method);
        /*
         * libmicrohttpd 0.9.75 closes the connection after any answer queued
         * in this first call. Requests with a body are routed now anyway, so
         * that a refusal comes before "100 Continue" and before the body
         * (closing is right then); the rest are routed at the next call and
         * keep their connection alive.
         */
        const char *cl = http_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
        bool has_body =
            (cl && strcmp(cl, "0")) || http_req_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING);
        if (has_body)
            server__route(r);
        else
            r->deferred = true;
        return MHD_YES;
    }
    if (r->deferred) {
        r->deferred = false;
        server__route(r);
        if (r->suspended)
            return MHD_YES; /* http_resume() calls again */
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        r->body_bytes += n;
        if (r->responded)
            return MHD_YES; /* answered early: drain */
        if (!r->on_body)
            return MHD_YES; /* a body nobody asked for is ignored */
        if (r->body_error == GR_OK) {
            int rc = r->on_body(r, upload_data, n);
            if (rc) {
                r->body_error = rc;
                /*
                 * libmicrohttpd 0.9.75 cannot answer mid-body. A body of
                 * declared length is drained and answered at its end; a
                 * chunked one may be endless, so its connection is cut.
                 */
                if (!http_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH))
                    return MHD_NO;
            }
        }
        return MHD_YES;
    }
    /* end of the request body */
    if (!r->responded && r->on_end)
        r->on_end(r);
    if (!r->responded)
        http_error(r, 500, "handler gave no answer");
    return MHD_YES;
}

void http_suspend(struct http_req *r)
{
    r->suspended = true;
    MHD_suspend_connection(r->conn);
}

void http_resume(void *arg)
{
    struct http_req *r = arg;
    MHD_resume_connection(r->conn);
}

static int server__threads(int n)
{
    if (n > 0)
        return n;
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c > 0 ? (int)c : 2;
}

int http_start(const struct http_options *o, struct repo_ctx *ctx, struct http_server **out)
{
    struct http_server *h = calloc(1, sizeof(*h));
    if (!h)
        return GR_ENOMEM;
    if (http__routes_ready() != GR_OK) {
        free(h);
        return GR_EINVAL;
    }
    h->ctx = ctx;
    h->opt = *o;
    if (h->opt.header_timeout <= 0)
        h->opt.header_timeout = 20;
    pthread_mutex_init(&h->conns_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->conns_cv, &ca);
    pthread_condattr_destroy(&ca);
    h->version = strdup(o->version ? o->version : "0");
    h->opt.version = h->version;
    h->opt.trusted_proxy = NULL; /* parsed below; the caller's string need not outlive us */
    if (o->trusted_proxy &&
        gr_cidr_parse_list(o->trusted_proxy, h->proxies, GR_CIDR_MAX, &h->nproxies) != GR_OK) {
        gr_error("trusted_proxy: malformed list '%s'", o->trusted_proxy);
        free(h->version);
        free(h);
        return GR_EINVAL;
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%d", o->port);
    int grc = getaddrinfo(o->host, port, &hints, &ai);
    if (grc) {
        gr_error("cannot resolve listen address %s: %s", o->host, gai_strerror(grc));
        free(h->version);
        free(h);
        return GR_EIO;
    }
    /* suspend and resume: requests waiting on a remote fetch hold no thread */
    unsigned int flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->mhd = MHD_start_daemon(
        flags, (uint16_t)o->port, NULL, NULL, server__access, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)server__threads(o->threads),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)o->connection_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)4096, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1, MHD_OPTION_NOTIFY_COMPLETED,
        server__completed, h, MHD_OPTION_URI_LOG_CALLBACK, server__uri_log, h,
        MHD_OPTION_UNESCAPE_CALLBACK, server__unescape, NULL, MHD_OPTION_NOTIFY_CONNECTION,
        server__conn_notify, h, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned int)(o->max_conn_per_client > 0 ? o->max_conn_per_client : 0), MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->mhd) {
        gr_error("cannot listen on %s:%d (address in use or not allowed)", o->host, o->port);
        free(h->version);
        free(h);
        return GR_EIO;
    }
    if (pthread_create(&h->reaper, NULL, server__reaper, h) == 0)
        h->reaper_started = true;
    else
        gr_warn("no header-deadline thread: slow clients are only cut by connection_timeout");
    *out = h;
    return GR_OK;
}

void http_set_ready(struct http_server *h, bool ready)
{
    atomic_store(&h->serving, ready);
    atomic_store(&h->ready, ready);
}

void http_quiesce(struct http_server *h)
{
    atomic_store(&h->ready, false);
    atomic_store(&h->quiesced, true);
    MHD_socket s = MHD_quiesce_daemon(h->mhd);
    if (s == MHD_INVALID_SOCKET)
        return;
    /* connections the kernel completed before the port stopped wait in its
     * backlog, their requests maybe sent: closing the socket would reset
     * them (a balancer cannot resend a PUT whose body went). Serve them. */
    int fl = fcntl(s, F_GETFL);
    if (fl >= 0 && fcntl(s, F_SETFL, fl | O_NONBLOCK) == 0) {
        for (;;) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof(ss);
            int fd = accept4(s, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0)
                break;
            if (MHD_add_connection(h->mhd, fd, (struct sockaddr *)&ss, sl) != MHD_YES)
                gr_warn("stopping: a connection from the backlog could not be served: %s",
                        strerror(errno)); /* closed by libmicrohttpd */
        }
    }
    close(s);
}

int http_active_requests(struct http_server *h)
{
    return atomic_load(&h->active);
}

int http_open_connections(struct http_server *h)
{
    return atomic_load(&h->open_conns);
}

void http_stop(struct http_server *h)
{
    if (!h)
        return;
    if (h->reaper_started) {
        pthread_mutex_lock(&h->conns_mu);
        h->reaper_stop = true;
        pthread_cond_signal(&h->conns_cv);
        pthread_mutex_unlock(&h->conns_mu);
        pthread_join(h->reaper, NULL);
    }
    MHD_stop_daemon(h->mhd); /* runs the close notifications */
    pthread_cond_destroy(&h->conns_cv);
    pthread_mutex_destroy(&h->conns_mu);
    free(h->version);
    free(h);
}
