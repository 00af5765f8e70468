/* respond.c - answering helpers and request accessors for handlers. */
#include "http/path.h"
#include "http/range.h"
#include "http/req.h"
#include "repo/repo.h"

#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void http_header(struct MHD_Response *resp, const char *name, const char *value)
{
    MHD_add_response_header(resp, name, value);
}

void http_answer_header(struct http_req *r, const char *name, const char *value)
{
    if (r->nanswer_headers >= (int)(sizeof(r->answer_headers) / sizeof(r->answer_headers[0])))
        return;
    r->answer_headers[r->nanswer_headers].name = gr_arena_strdup(r->arena, name);
    r->answer_headers[r->nanswer_headers].value = gr_arena_strdup(r->arena, value);
    r->nanswer_headers++;
}

/* Whether the request's answers carry a header of that name already. */
static bool respond__has_answer_header(struct http_req *r, const char *name)
{
    for (int i = 0; i < r->nanswer_headers; i++)
        if (!strcasecmp(r->answer_headers[i].name, name))
            return true;
    return false;
}

void http_send(struct http_req *r, int status, struct MHD_Response *resp)
{
    if (r->responded) {
        MHD_destroy_response(resp);
        return;
    }
    if (status >= 200 && status < 300 && repo_invalidation_unconfirmed()) {
        /* committed, but a peer may still serve the old state: not a success
         * (the client retries; docs/cluster.md "Across a database failover") */
        MHD_destroy_response(resp);
        http_error(r, 503, "the change is stored but not yet visible on every node; retry");
        return;
    }
    for (int i = 0; i < r->nanswer_headers; i++)
        MHD_add_response_header(resp, r->answer_headers[i].name, r->answer_headers[i].value);
    if (status == 503 && !respond__has_answer_header(r, "Retry-After"))
        MHD_add_response_header(resp, "Retry-After", "1");
    char id[24];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)r->id);
    MHD_add_response_header(resp, "X-Request-Id", id);
    MHD_add_response_header(resp, "Server", "granary");
    /* draining or stopping: the client (a load balancer's pool) must not
     * send another request on this connection; a stopping node waits for
     * its connections to close rather than closing one under a request
     * (docs/operations.md "Keepalive to the nodes") */
    if (atomic_load(&r->srv->quiesced) || atomic_load(&r->srv->draining))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (r->stale && status < 300) { /* expired metadata the upstream could not refresh */
        MHD_add_response_header(resp, "X-Granary-Stale", "1");
        MHD_add_response_header(resp, "Warning", "110 granary \"Response is Stale\"");
    }
    if (MHD_queue_response(r->conn, (unsigned int)status, resp) == MHD_YES) {
        r->responded = true;
        r->status = status;
    }
    MHD_destroy_response(resp);
}

void http_text(struct http_req *r, int status, const char *content_type, const char *body,
               size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return;
    if (content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    r->sent_bytes += r->method == HM_HEAD ? 0 : len;
    http_send(r, status, resp);
}

void http_json(struct http_req *r, int status, json_t *doc)
{
    char *s = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(doc);
    if (!s) {
        http_text(r, 500, "application/json",
                  "{\"errors\":[{\"status\":500,\"message\":\"out of memory\"}]}", 54);
        return;
    }
    size_t len = strlen(s);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, s, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    r->sent_bytes += r->method == HM_HEAD ? 0 : len;
    http_send(r, status, resp);
}

void http_error(struct http_req *r, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *doc = json_pack("{s:[{s:i,s:s}]}", "errors", "status", status, "message", msg);
    if (doc && r->error_doc)
        r->error_doc(r, doc, status, msg);
    char *s = doc ? json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(doc);
    if (!s)
        return;
    size_t len = strlen(s);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, s, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    r->sent_bytes += r->method == HM_HEAD ? 0 : len;
    /* the web UI (X-Granary-UI) shows its own sign-in form: no browser
     * dialog; a handler may have set another challenge (the registry's) */
    if (status == 401 && !http_req_header(r, "X-Granary-UI") &&
        !respond__has_answer_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Basic realm=\"granary\"");
    if (status >= 500)
        gr_warn("req=%llu %d %s", (unsigned long long)r->id, status, msg);
    http_send(r, status, resp);
}

void http_error_code(struct http_req *r, int err, const char *msg)
{
    http_error(r, gr_err_http_status(err), "%s", msg ? msg : gr_strerror(err));
}

const char *http_req_header(struct http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

struct respond__join {
    struct http_req *r;
    const char *name;
    struct gr_sbuf sb;
};

static enum MHD_Result respond__join_one(void *cls, enum MHD_ValueKind kind, const char *key,
                                         const char *value)
{
    struct respond__join *j = cls;
    (void)kind;
    if (key && value && !strcasecmp(key, j->name)) {
        if (j->sb.len)
            gr_sbuf_adds(&j->sb, ", ");
        gr_sbuf_adds(&j->sb, value);
    }
    return MHD_YES;
}

const char *http_req_header_all(struct http_req *r, const char *name)
{
    struct respond__join j = {r, name, GR_SBUF_INIT};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, respond__join_one, &j);
    const char *out = j.sb.len ? gr_arena_strdup(r->arena, j.sb.buf) : NULL;
    gr_sbuf_release(&j.sb);
    return out;
}

const char *http_query(struct http_req *r, const char *name)
{
    const char *raw = NULL;
    size_t n = 0;
    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &raw,
                                      &n) != MHD_YES)
        return NULL;
    if (!raw) /* "?list": present without a value */
        return "";
    char *out = gr_arena_alloc(r->arena, n + 1);
    if (http_query_decode(raw, n, out, n + 1) != GR_OK)
        return NULL;
    return out;
}

struct respond__json_body {
    struct gr_sbuf buf;
    void (*done)(struct http_req *r, json_t *doc);
};

static void respond__json_free(void *arg)
{
    struct respond__json_body *b = arg;
    gr_sbuf_release(&b->buf);
}

static int respond__json_chunk(struct http_req *r, const char *data, size_t len)
{
    struct respond__json_body *b = r->hctx;
    if (b->buf.len + len > HTTP_JSON_BODY_MAX)
        return GR_ETOOBIG;
    gr_sbuf_add(&b->buf, data, len);
    return GR_OK;
}

static void respond__json_end(struct http_req *r)
{
    struct respond__json_body *b = r->hctx;
    if (r->body_error == GR_ETOOBIG) {
        http_error(r, 413, "request body larger than %d bytes", HTTP_JSON_BODY_MAX);
        return;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(b->buf.buf, b->buf.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        http_error(r, 400, "invalid JSON: %s at line %d column %d", jerr.text, jerr.line,
                   jerr.column);
        return;
    }
    b->done(r, doc);
    json_decref(doc);
}

void http_read_json_body(struct http_req *r, void (*done)(struct http_req *r, json_t *doc))
{
    struct respond__json_body *b = gr_arena_calloc(r->arena, sizeof(*b));
    gr_sbuf_init(&b->buf);
    b->done = done;
    gr_arena_cleanup(r->arena, respond__json_free, b);
    r->hctx = b;
    r->on_body = respond__json_chunk;
    r->on_end = respond__json_end;
}

void http_date(int64_t ms, char *buf, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

void http_iso8601(int64_t ms, char *buf, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + k, n - k, ".%03dZ", (int)(ms % 1000));
}

/* A forwarded header's first value (proxies append ", next"), trimmed;
 * NULL when absent, empty or holding characters no host or scheme has. */
static const char *respond__forwarded(struct http_req *r, const char *name)
{
    const char *v = http_req_header(r, name);
    if (!v)
        return NULL;
    v += strspn(v, " \t");
    size_t n = strcspn(v, ", \t");
    if (n == 0 || n > 255)
        return NULL;
    char *s = gr_arena_strndup(r->arena, v, n);
    if (strpbrk(s, "/\\\"<>'`@?#%"))
        return NULL;
    return s;
}

/*
 * The URL clients reach this node by: X-Forwarded-Proto, -Host and -Port
 * when a load balancer sent them (docs/operations.md), else Host.
 */
const char *http_base_url(struct http_req *r)
{
    const char *proto = respond__forwarded(r, "X-Forwarded-Proto");
    proto = proto && !strcasecmp(proto, "https") ? "https" : "http";
    const char *host = respond__forwarded(r, "X-Forwarded-Host");
    if (!host)
        host = http_req_header(r, MHD_HTTP_HEADER_HOST);
    if (!host || !*host || strpbrk(host, " /\\\"<>"))
        host = "localhost";
    const char *port = respond__forwarded(r, "X-Forwarded-Port");
    const char *bracket = strrchr(host, ']');
    bool has_port = strchr(bracket ? bracket : host, ':') != NULL;
    if (port && !has_port && strspn(port, "0123456789") == strlen(port) &&
        strcmp(port, proto[4] ? "443" : "80"))
        return gr_arena_printf(r->arena, "%s://%s:%s%s", proto, host, port, r->base);
    return gr_arena_printf(r->arena, "%s://%s%s", proto, host, r->base);
}

const char *http_mime_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {"jar", "application/java-archive"},
        {"war", "application/java-archive"},
        {"ear", "application/java-archive"},
        {"pom", "application/x-maven-pom+xml"},
        {"xml", "application/xml"},
        {"json", "application/json"},
        {"txt", "text/plain"},
        {"md", "text/markdown"},
        {"html", "text/html"},
        {"htm", "text/html"},
        {"css", "text/css"},
        {"js", "application/javascript"},
        {"sha1", "text/plain"},
        {"sha256", "text/plain"},
        {"sha512", "text/plain"},
        {"md5", "text/plain"},
        {"asc", "text/plain"},
        {"tgz", "application/x-gzip"},
        {"gz", "application/x-gzip"},
        {"tar", "application/x-tar"},
        {"zip", "application/zip"},
        {"whl", "application/zip"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"gif", "image/gif"},
        {"svg", "image/svg+xml"},
        {"pdf", "application/pdf"},
        {"deb", "application/vnd.debian.binary-package"},
        {"rpm", "application/x-rpm"},
    };
    const char *dot = strrchr(name, '.');
    const char *slash = strrchr(name, '/');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (!strcasecmp(dot + 1, types[i].ext))
                return types[i].type;
    return "application/octet-stream";
}

/* Types a browser would run or render with active content (script, styles, XSLT, forms). */
static bool respond__active_type(const char *type)
{
    static const char *const active[] = {"text/html",       "application/xhtml+xml",
                                         "image/svg+xml",   "application/xml",
                                         "text/xml",        "application/javascript",
                                         "text/javascript", "text/css",
                                         "application/pdf", NULL};
    for (int i = 0; active[i]; i++)
        if (!strcmp(type, active[i]))
            return true;
    size_t n = strlen(type);
    return n > 4 && !strcmp(type + n - 4, "+xml"); /* application/x-maven-pom+xml and kin */
}

void http_download_headers(struct http_req *r, struct MHD_Response *resp, const char *path)
{
    const char *type = http_mime_type(path);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    /* the bytes are someone's upload, served on the API's origin: never sniffed,
     * never scripted, never with the origin's rights */
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Content-Security-Policy", HTTP_CSP_DOWNLOAD);
    if (!respond__active_type(type))
        return;
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    struct gr_sbuf sb = GR_SBUF_INIT;
    gr_sbuf_adds(&sb, "attachment; filename*=UTF-8''");
    static const char attr[] = "!#$&+-.^_`|~"; /* RFC 8187 attr-char besides letters, digits */
    for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
            strchr(attr, *s))
            gr_sbuf_add(&sb, (const char *)s, 1);
        else
            gr_sbuf_addf(&sb, "%%%02X", *s);
    }
    MHD_add_response_header(resp, "Content-Disposition", sb.buf);
    gr_sbuf_release(&sb);
    (void)r;
}

struct MHD_Response *http_response_bytes(void *data, size_t len, bool copy)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, data, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_MUST_FREE);
    if (!resp && !copy)
        free(data);
    return resp;
}

bool http_not_modified(struct http_req *r, const char *etag, int64_t modified_ms)
{
    const char *inm = http_req_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (inm) {
        if (!strcmp(inm, "*"))
            return true;
        /* the tag with or without its quotes (some clients drop them) */
        size_t n = strlen(etag);
        const char *tag = etag;
        if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
            tag = etag + 1;
            n -= 2;
        }
        for (const char *p = inm; *p; p++)
            if (!strncmp(p, tag, n))
                return true;
        return false;
    }
    if (modified_ms < 0)
        return false;
    int64_t ims = http_date_parse(http_req_header(r, MHD_HTTP_HEADER_IF_MODIFIED_SINCE));
    return ims >= 0 && modified_ms / 1000 <= ims;
}
