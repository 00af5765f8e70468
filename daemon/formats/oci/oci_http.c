/*
 * oci_http.c - the OCI distribution API at /v2/ (docs/oci.md): the
 * version check, the token endpoint, manifests, blobs, upload sessions,
 * tags, referrers and the catalog, with the spec's error shape (through
 * r->error_doc) and its Bearer challenge. Uploads go through the ingest
 * pipeline; each chunk of a session is a replicated binary pinned to it,
 * so any node continues the session (oci_db.c).
 */
#include "formats/format.h"
#include "formats/oci/oci.h"

#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "crypto/crypto.h"
#include "http/range.h"
#include "http/req.h"
#include "repo/ingest.h"
#include "repo/security.h"
#include "storage/storage.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern const struct format format_oci;

#define OCI_TOKEN_LIFETIME 3600      /* seconds */
#define OCI_CONFIG_MAX (1024 * 1024) /* config blobs read for their labels */
#define OCI_LIST_MAX 10000           /* tags, catalog entries per answer */

/* Per request (r->hctx). */
struct oci_req {
    struct oci_route rt;
    const char *code; /* the error code of the next error answer */
    json_t *detail;   /* its detail (stolen), or NULL */
    struct repo_config cfg;
    /* bodies */
    struct ingest *in;
    uint64_t got, start;
    struct gr_sbuf body; /* a manifest */
    bool too_big;
    struct oci_upload up;
    struct oci_digest digest;
    bool complete; /* PUT: finish the session after the body */
    bool monolithic;
    struct cr_digest *d512; /* a monolithic upload's sha512, when its digest is one */
};

/* ---- errors in the spec's shape ---- */

static const char *oci__default_code(int status)
{
    switch (status) {
    case 401:
        return "UNAUTHORIZED";
    case 403:
        return "DENIED";
    case 404:
        return "NAME_UNKNOWN";
    case 405:
        return "UNSUPPORTED";
    case 413:
        return "SIZE_INVALID";
    case 416:
        return "BLOB_UPLOAD_INVALID";
    case 429:
        return "TOOMANYREQUESTS";
    default:
        return status >= 500 ? "UNAVAILABLE" : "UNSUPPORTED";
    }
}

/* error_doc: errors[0] gets the spec's code and detail beside the house fields. */
static void oci__error_doc(struct http_req *r, json_t *doc, int status, const char *msg)
{
    (void)msg;
    struct oci_req *x = r->hctx;
    json_t *e = json_array_get(json_object_get(doc, "errors"), 0);
    if (!e)
        return;
    json_object_set_new(e, "code", json_string(x && x->code ? x->code : oci__default_code(status)));
    json_object_set_new(e, "detail", x && x->detail ? x->detail : json_object());
    if (x) {
        x->detail = NULL;
        x->code = NULL;
    }
}

static void oci__err(struct http_req *r, int status, const char *code, json_t *detail,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void oci__err(struct http_req *r, int status, const char *code, json_t *detail,
                     const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct oci_req *x = r->hctx;
    x->code = code;
    x->detail = detail;
    http_error(r, status, "%s", msg);
}

/* A storage or database failure as an answer. */
static void oci__fail(struct http_req *r, int rc)
{
    if (rc == GR_EUNAVAIL)
        oci__err(r, 503, "UNAVAILABLE", NULL, "too few nodes could keep a copy; try again");
    else if (rc == GR_ENOSPC)
        oci__err(r, 507, "UNAVAILABLE", NULL, "no space left on this node");
    else
        http_error_code(r, rc, NULL);
}

/* ---- answers ---- */

static void oci__empty(struct http_req *r, int status, const char *const *headers)
{
    struct MHD_Response *resp = http_response_bytes((void *)"", 0, true);
    if (!resp)
        return;
    for (int i = 0; headers && headers[i]; i += 2)
        http_header(resp, headers[i], headers[i + 1]);
    http_send(r, status, resp);
}

static void oci__json(struct http_req *r, int status, const char *content_type, json_t *doc,
                      const char *const *headers)
{
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!s) {
        http_error(r, 500, "out of memory");
        return;
    }
    size_t len = strlen(s);
    struct MHD_Response *resp = http_response_bytes(s, len, false);
    if (!resp)
        return;
    http_header(resp, "Content-Type", content_type);
    for (int i = 0; headers && headers[i]; i += 2)
        http_header(resp, headers[i], headers[i + 1]);
    r->sent_bytes += r->method == HM_HEAD ? 0 : len;
    http_send(r, status, resp);
}

/* ---- permissions, with the Bearer challenge of the distribution clients ---- */

static const char *oci__challenge(struct http_req *r, const char *scope)
{
    const char *base = http_base_url(r);
    const char *host = strstr(base, "://");
    host = host ? host + 3 : base;
    size_t hn = strcspn(host, "/");
    if (scope)
        return gr_arena_printf(r->arena,
                               "Bearer realm=\"%s/v2/token\",service=\"%.*s\",scope=\"%s\"", base,
                               (int)hn, host, scope);
    return gr_arena_printf(r->arena, "Bearer realm=\"%s/v2/token\",service=\"%.*s\"", base, (int)hn,
                           host);
}

/*
 * The actions on path of the route's repository; a refusal carries the
 * challenge for the scope the client needs (pull, push, delete).
 */
static bool oci__need(struct http_req *r, const char *path, unsigned actions, const char *scope)
{
    struct oci_req *x = r->hctx;
    int n = r->nanswer_headers;
    if (r->user.anonymous) /* only an anonymous caller's refusal is a 401 */
        http_answer_header(
            r, "WWW-Authenticate",
            oci__challenge(r, gr_arena_printf(r->arena, "repository:%s:%s", x->rt.name, scope)));
    bool ok = http_need_perm(r, x->rt.repo, path, actions);
    if (ok)
        r->nanswer_headers = n; /* no challenge on a success */
    return ok;
}

/* The route's repository: a docker repository, else NAME_UNKNOWN. */
static bool oci__repo(struct http_req *r)
{
    struct oci_req *x = r->hctx;
    int rc = repo_get(r->ctx, r->arena, x->rt.repo, &x->cfg);
    if (rc == GR_ENOTFOUND || (rc == GR_OK && http_format(r, x->cfg.package_type) != &format_oci)) {
        oci__err(r, 404, "NAME_UNKNOWN", json_pack("{s:s}", "name", x->rt.name),
                 "repository name not known to registry: '%s' is not a docker repository",
                 x->rt.repo);
        return false;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return false;
    }
    return true;
}

static const char *oci__path(struct http_req *r, const char *kind, const char *what)
{
    struct oci_req *x = r->hctx;
    return gr_arena_printf(r->arena, "%s/%s/%s", x->rt.image, kind, what);
}

static const char *oci__tag_path(struct http_req *r, const char *tag)
{
    struct oci_req *x = r->hctx;
    return gr_arena_printf(r->arena, "%s/_tags/%s/manifest.json", x->rt.image, tag);
}

static const char *oci__upload_url(struct http_req *r, const char *id)
{
    struct oci_req *x = r->hctx;
    return gr_arena_printf(r->arena, "%s/v2/%s/blobs/uploads/%s", r->base, x->rt.name, id);
}

static const char *oci__blob_url(struct http_req *r, const char *digest)
{
    struct oci_req *x = r->hctx;
    return gr_arena_printf(r->arena, "%s/v2/%s/blobs/%s", r->base, x->rt.name, digest);
}

/* "0-<last byte>" of an upload of size bytes ("0-0" before the first). */
static const char *oci__range(struct http_req *r, uint64_t size)
{
    return gr_arena_printf(r->arena, "0-%llu", (unsigned long long)(size ? size - 1 : 0));
}

static void oci__upload_answer(struct http_req *r, int status, const struct oci_upload *u)
{
    const char *h[] = {"Location",
                       oci__upload_url(r, u->id),
                       "Range",
                       oci__range(r, u->size),
                       "Docker-Upload-UUID",
                       u->id,
                       "Blob-Upload-Session-ID",
                       u->id,
                       NULL};
    oci__empty(r, status, h);
}

/* ---- media types of stored manifests: a small memo by content ---- */

#define OCI_MEMO 1024
static struct {
    char sha256[65];
    char type[80];
} oci__memo[OCI_MEMO];
static pthread_mutex_t oci__memo_mu = PTHREAD_MUTEX_INITIALIZER;

static unsigned oci__memo_slot(const char *sha256)
{
    char head[9];
    memcpy(head, sha256, 8);
    head[8] = '\0';
    return (unsigned)strtoul(head, NULL, 16) % OCI_MEMO;
}

/* The media type the content of sha256 declares, if memoised (into out). */
static bool oci__memo_get(const char *sha256, char *out, size_t n)
{
    unsigned s = oci__memo_slot(sha256) % OCI_MEMO;
    pthread_mutex_lock(&oci__memo_mu);
    bool hit = !strcmp(oci__memo[s].sha256, sha256);
    if (hit)
        snprintf(out, n, "%s", oci__memo[s].type);
    pthread_mutex_unlock(&oci__memo_mu);
    return hit;
}

static void oci__memo_put(const char *sha256, const char *type)
{
    if (strlen(type) >= sizeof(oci__memo[0].type))
        return;
    unsigned s = oci__memo_slot(sha256) % OCI_MEMO;
    pthread_mutex_lock(&oci__memo_mu);
    snprintf(oci__memo[s].sha256, sizeof(oci__memo[s].sha256), "%s", sha256);
    snprintf(oci__memo[s].type, sizeof(oci__memo[s].type), "%s", type);
    pthread_mutex_unlock(&oci__memo_mu);
}

/* ---- reading stored binaries whole (manifests, configs) ---- */

static int oci__collect(void *arg, const void *data, size_t len)
{
    gr_sbuf_add(arg, data, len);
    return 0;
}

static void oci__sbuf_free(void *arg)
{
    gr_sbuf_release(arg);
}

/* The bytes of a stored binary (verified), in the request's arena. */
static int oci__read(struct http_req *r, const char *sha256, uint64_t size, const char **out)
{
    struct gr_sbuf *sb = gr_arena_calloc(r->arena, sizeof(*sb));
    gr_sbuf_init(sb);
    gr_arena_cleanup(r->arena, oci__sbuf_free, sb);
    int rc = storage_read_all(r->ctx->storage, sha256, size, oci__collect, sb);
    if (rc == GR_OK)
        *out = sb->buf ? sb->buf : "";
    return rc;
}

/* ---- /v2/ and the token endpoint ---- */

/*
 * GET /v2/: 200 for a caller with credentials; an anonymous caller always
 * gets the Bearer challenge (clients learn the token realm from this
 * answer alone), and the token endpoint gives it the anonymous token when
 * anonymous access is on.
 */
static void oci__base(struct http_req *r)
{
    if (r->user.anonymous && !http_req_header(r, "Authorization")) {
        http_answer_header(r, "WWW-Authenticate", oci__challenge(r, NULL));
        oci__err(r, 401, "UNAUTHORIZED", NULL, "authentication required");
        return;
    }
    oci__json(r, 200, "application/json", json_object(), NULL);
}

/* Which of "pull", "push", "delete" in a scope's actions the caller holds on name. */
static const char *oci__granted(struct http_req *r, const char *name, const char *actions)
{
    const char *slash = strchr(name, '/');
    if (!slash || !oci_image_valid(slash + 1))
        return NULL;
    const char *repo = gr_arena_strndup(r->arena, name, (size_t)(slash - name));
    struct repo_config cfg;
    if (repo_key_check(repo) != GR_OK || repo_get(r->ctx, r->arena, repo, &cfg) != GR_OK)
        return NULL;
    struct gr_sbuf sb = GR_SBUF_INIT;
    static const struct {
        const char *word;
        unsigned act;
    } map[] = {{"pull", SEC_READ}, {"push", SEC_WRITE}, {"delete", SEC_DELETE}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        size_t wn = strlen(map[i].word);
        bool asked = false;
        for (const char *p = actions; *p; p += strcspn(p, ","), p += *p == ',') {
            if (strcspn(p, ",") == wn && !strncmp(p, map[i].word, wn))
                asked = true;
            if (!strncmp(p, "*", 1) && strcspn(p, ",") == 1)
                asked = true;
        }
        if (asked && http_may(r, repo, slash + 1, map[i].act))
            gr_sbuf_addf(&sb, "%s%s", sb.len ? "," : "", map[i].word);
    }
    const char *out = sb.len ? gr_arena_strdup(r->arena, sb.buf) : NULL;
    gr_sbuf_release(&sb);
    return out;
}

/*
 * GET /v2/token?service=&scope=repository:<name>:<actions>: a granary
 * access token for the caller (who authenticated with Basic: a password
 * or an access token), with the actions of the scope the caller holds.
 */
static void oci__token(struct http_req *r)
{
    if (r->method != HM_GET && r->method != HM_POST) {
        oci__err(r, 405, "UNSUPPORTED", NULL, "the token endpoint answers GET");
        return;
    }
    /* an OAuth2 form POST (containerd sends one first when it holds a
     * password, with the credentials in the body): credentials come in the
     * Authorization header only, so such a POST is 401 and the client falls
     * back to GET with Basic, as it does with Artifactory; answering it as
     * anonymous would hand a signed-in client the anonymous token */
    if (r->method == HM_POST && !http_req_header(r, "Authorization")) {
        oci__err(r, 401, "UNAUTHORIZED", NULL,
                 "the token endpoint takes credentials as Basic authentication: GET it");
        return;
    }
    bool anon_ok = false;
    if (r->user.anonymous && (settings_anonymous_read(r->ctx, &anon_ok) != GR_OK || !anon_ok)) {
        oci__err(r, 401, "UNAUTHORIZED", NULL, "credentials required: anonymous access is off");
        return;
    }
    const char *scope = http_query(r, "scope");
    const char *granted_scope = NULL;
    if (scope && !strncmp(scope, "repository:", 11)) {
        const char *name = scope + 11;
        const char *colon = strrchr(name, ':');
        if (colon) {
            const char *nm = gr_arena_strndup(r->arena, name, (size_t)(colon - name));
            const char *g = oci__granted(r, nm, colon + 1);
            granted_scope = gr_arena_printf(r->arena, "repository:%s:%s", nm, g ? g : "");
        }
    }
    if (r->user.anonymous) { /* what no credentials grant, as a token */
        char now[40];
        http_iso8601((int64_t)time(NULL) * 1000, now, sizeof(now));
        json_t *doc =
            json_pack("{s:s,s:s,s:i,s:s}", "token", HTTP_ANONYMOUS_BEARER, "access_token",
                      HTTP_ANONYMOUS_BEARER, "expires_in", OCI_TOKEN_LIFETIME, "issued_at", now);
        if (granted_scope)
            json_object_set_new(doc, "scope", json_string(granted_scope));
        oci__json(r, 200, "application/json", doc, NULL);
        return;
    }
    /* a caller that came with a token gets that token back: a token never
     * mints another that would outlive it */
    const char *had = r->auth_token; /* as Bearer, or as Basic's password */
    if (had) {
        char now[40];
        http_iso8601((int64_t)time(NULL) * 1000, now, sizeof(now));
        json_t *doc = json_pack("{s:s,s:s,s:i,s:s}", "token", had, "access_token", had,
                                "expires_in", OCI_TOKEN_LIFETIME, "issued_at", now);
        if (granted_scope)
            json_object_set_new(doc, "scope", json_string(granted_scope));
        oci__json(r, 200, "application/json", doc, NULL);
        return;
    }
    char tok[SEC_TOKEN_LEN + 1];
    struct sec_token_info info;
    int rc = sec_token_issue(r->ctx, r->user.name,
                             r->user.admin && !r->user.scoped ? "applied-permissions/admin"
                                                              : "applied-permissions/user",
                             OCI_TOKEN_LIFETIME, "registry token", tok, NULL, &info);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    char issued[40];
    http_iso8601(info.created_ms, issued, sizeof(issued));
    json_t *doc = json_pack("{s:s,s:s,s:i,s:s}", "token", tok, "access_token", tok, "expires_in",
                            OCI_TOKEN_LIFETIME, "issued_at", issued);
    if (granted_scope)
        json_object_set_new(doc, "scope", json_string(granted_scope));
    oci__json(r, 200, "application/json", doc, NULL);
}

/* ---- catalog ---- */

static int oci__count(struct http_req *r, int *n)
{
    const char *s = http_query(r, "n");
    *n = -1;
    if (!s)
        return GR_OK;
    char *e;
    long v = strtol(s, &e, 10);
    if (!*s || *e || v < 0)
        return GR_EINVAL;
    *n = v > OCI_LIST_MAX ? OCI_LIST_MAX : (int)v;
    return GR_OK;
}

static void oci__catalog(struct http_req *r)
{
    if (r->method != HM_GET && r->method != HM_HEAD) {
        oci__err(r, 405, "UNSUPPORTED", NULL, "the catalog answers GET");
        return;
    }
    bool anon_ok = false;
    if (r->user.anonymous && (settings_anonymous_read(r->ctx, &anon_ok) != GR_OK || !anon_ok)) {
        http_answer_header(r, "WWW-Authenticate", oci__challenge(r, "registry:catalog:*"));
        oci__err(r, 401, "UNAUTHORIZED", NULL, "authentication required");
        return;
    }
    int n;
    if (oci__count(r, &n)) {
        oci__err(r, 400, "UNSUPPORTED", NULL, "n must be a number");
        return;
    }
    if (n < 0)
        n = OCI_LIST_MAX;
    const char *last = http_query(r, "last");
    if (last && !*last)
        last = NULL;
    json_t *list = json_array();
    const char *after = last, *final = NULL;
    bool more = false;
    /* the images the caller may read, in pages of 500 rows */
    while (!more && n > 0) {
        const char **names;
        int got;
        int rc = oci_catalog(r->ctx, r->arena, after, 500, &names, &got);
        if (rc) {
            json_decref(list);
            http_error_code(r, rc, NULL);
            return;
        }
        for (int i = 0; i < got; i++) {
            after = names[i];
            const char *slash = strchr(names[i], '/');
            const char *repo = gr_arena_strndup(r->arena, names[i], (size_t)(slash - names[i]));
            if (!http_may(r, repo, slash + 1, SEC_READ))
                continue;
            if ((int)json_array_size(list) == n) {
                more = true;
                break;
            }
            json_array_append_new(list, json_string(names[i]));
            final = names[i];
        }
        if (got < 500)
            break;
    }
    json_t *doc = json_pack("{s:o}", "repositories", list);
    if (more) {
        const char *link = gr_arena_printf(r->arena, "<%s/v2/_catalog?n=%d&last=%s>; rel=\"next\"",
                                           r->base, n, final);
        const char *h[] = {"Link", link, NULL};
        oci__json(r, 200, "application/json", doc, h);
        return;
    }
    oci__json(r, 200, "application/json", doc, NULL);
}

/* ---- blobs ---- */

static void oci__blob(struct http_req *r)
{
    struct oci_req *x = r->hctx;
    struct oci_digest d;
    if (oci_digest_parse(x->rt.ref, &d)) {
        oci__err(r, 400, "DIGEST_INVALID", json_pack("{s:s}", "digest", x->rt.ref),
                 "provided digest is not a valid sha256 or sha512 digest");
        return;
    }
    const char *path = oci__path(r, "_blobs", d.text);
    if (r->method == HM_DELETE) {
        if (!oci__need(r, path, SEC_DELETE, "delete"))
            return;
        int rc = oci_blob_delete(r->ctx, r->arena, x->rt.repo, x->rt.image, d.text);
        if (rc == GR_ENOTFOUND)
            oci__err(r, 404, "BLOB_UNKNOWN", json_pack("{s:s}", "digest", d.text),
                     "blob unknown to registry");
        else if (rc)
            oci__fail(r, rc);
        else
            oci__empty(r, 202, NULL);
        return;
    }
    if (r->method != HM_GET && r->method != HM_HEAD) {
        oci__err(r, 405, "UNSUPPORTED", NULL, "a blob answers GET, HEAD and DELETE");
        return;
    }
    if (!oci__need(r, path, SEC_READ, "pull"))
        return;
    struct oci_blob b;
    int rc = oci_blob_find(r->ctx, r->arena, x->rt.repo, x->rt.image, d.text, &b);
    if (rc == GR_ENOTFOUND) {
        oci__err(r, 404, "BLOB_UNKNOWN", json_pack("{s:s}", "digest", d.text),
                 "blob unknown to registry");
        return;
    }
    if (rc) {
        oci__fail(r, rc);
        return;
    }
    struct artifact a;
    memset(&a, 0, sizeof(a));
    a.repo = x->rt.repo;
    a.path = path;
    memcpy(a.sha256, b.sha256, sizeof(a.sha256));
    a.size = b.size;
    char etag[160];
    snprintf(etag, sizeof(etag), "\"%s\"", d.text);
    if (r->method == HM_GET && http_not_modified(r, etag, -1)) {
        const char *h[] = {"ETag", etag, "Docker-Content-Digest", d.text, NULL};
        oci__empty(r, 304, h);
        return;
    }
    uint64_t first = 0, last = 0;
    const char *range = http_req_header(r, "Range");
    enum http_range_result rr = http_range_parse(range, b.size, &first, &last);
    if (rr == HTTP_RANGE_UNSATISFIABLE) {
        http_answer_header(r, "Content-Range",
                           gr_arena_printf(r->arena, "bytes */%llu", (unsigned long long)b.size));
        oci__err(r, 416, "SIZE_INVALID", NULL, "range not satisfiable: the blob has %llu bytes",
                 (unsigned long long)b.size);
        return;
    }
    uint64_t len = rr == HTTP_RANGE_OK ? last - first + 1 : b.size;
    struct MHD_Response *resp = http_artifact_body(r, &a, first, len);
    if (!resp)
        return; /* answered */
    if (rr == HTTP_RANGE_OK)
        http_header(resp, "Content-Range",
                    gr_arena_printf(r->arena, "bytes %llu-%llu/%llu", (unsigned long long)first,
                                    (unsigned long long)last, (unsigned long long)b.size));
    http_header(resp, "Content-Type", "application/octet-stream");
    http_header(resp, "Docker-Content-Digest", d.text);
    http_header(resp, "ETag", etag);
    http_header(resp, "Accept-Ranges", "bytes");
    http_header(resp, "Cache-Control", "max-age=31536000");
    http_header(resp, "X-Content-Type-Options", "nosniff");
    http_send(r, rr == HTTP_RANGE_OK ? 206 : 200, resp);
}

/* ---- uploads ---- */

static int oci__ingest_chunk(struct http_req *r, const char *data, size_t len)
{
    struct oci_req *x = r->hctx;
    int rc = x->in ? GR_OK : ingest_begin(r->ctx, r->arena, &x->in);
    if (rc == GR_OK)
        rc = ingest_write(x->in, data, len);
    if (rc == GR_OK && x->d512)
        cr_digest_update(x->d512, data, len);
    if (rc == GR_OK)
        x->got += len;
    return rc;
}

static void oci__digest_free(void *arg);

/* The body is in: hash and replicate it into art. false: answered. */
static bool oci__ingest_done(struct http_req *r, struct artifact *art)
{
    struct oci_req *x = r->hctx;
    memset(art, 0, sizeof(*art));
    if (r->body_error) {
        oci__fail(r, r->body_error);
        return false;
    }
    int rc = x->in ? GR_OK : ingest_begin(r->ctx, r->arena, &x->in);
    if (rc) {
        oci__fail(r, rc);
        return false;
    }
    ingest_finish(x->in, art);
    char rid[24];
    snprintf(rid, sizeof(rid), "%llu", (unsigned long long)r->id);
    rc = ingest_replicate(x->in, rid, art);
    if (rc) {
        oci__fail(r, rc);
        return false;
    }
    return true;
}

static int oci__hash_part(void *arg, const void *data, size_t len)
{
    cr_digest_update(arg, data, len);
    return 0;
}

struct oci__concat {
    struct ingest *in;
    struct cr_digest *d512;
};

static int oci__concat_part(void *arg, const void *data, size_t len)
{
    struct oci__concat *c = arg;
    if (c->d512)
        cr_digest_update(c->d512, data, len);
    return ingest_write(c->in, data, len);
}

static void oci__digest_free(void *arg)
{
    cr_digest_free(arg);
}

static void oci__digest_mismatch(struct http_req *r, const char *want)
{
    oci__err(r, 400, "DIGEST_INVALID", json_pack("{s:s}", "digest", want),
             "provided digest did not match uploaded content");
}

/*
 * Finish a session (id, or NULL for a monolithic POST whose body is the
 * one part in art): verify the digest over the parts, make the blob (the
 * one part itself when it matches, else the parts concatenated through
 * the ingest pipeline) and link it.
 */
static void oci__complete(struct http_req *r, const char *id, const struct artifact *one)
{
    struct oci_req *x = r->hctx;
    const struct oci_digest *d = &x->digest;
    bool sha512 = !strcmp(d->alg, "sha512");
    struct artifact blob;
    memset(&blob, 0, sizeof(blob));
    char(*shas)[65] = NULL;
    uint64_t *sizes = NULL;
    int n = 0, rc = GR_OK;
    if (id) {
        rc = oci_upload_parts(r->ctx, r->arena, id, &shas, &sizes, &n);
        if (rc) {
            oci__fail(r, rc);
            return;
        }
    }
    if (!id || n == 1) {
        /* one part: it is the blob if the digest matches */
        if (one) {
            blob = *one;
        } else {
            memcpy(blob.sha256, shas[0], sizeof(blob.sha256));
            blob.size = sizes[0];
            blob.pending = NULL;
        }
        if (sha512 && one && x->d512) { /* hashed as it arrived */
            unsigned char md[64];
            cr_digest_final(x->d512, md);
            char hex[129];
            for (int i = 0; i < 64; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
            if (strcmp(hex, d->hex)) {
                oci__digest_mismatch(r, d->text);
                return;
            }
        } else if (sha512) {
            struct cr_digest *h = cr_digest_new(CR_SHA512);
            if (!h) {
                http_error_code(r, GR_ENOMEM, NULL);
                return;
            }
            gr_arena_cleanup(r->arena, oci__digest_free, h);
            rc = storage_read_all(r->ctx->storage, blob.sha256, blob.size, oci__hash_part, h);
            if (rc) {
                oci__fail(r, rc == GR_ENOTFOUND ? GR_EUNAVAIL : rc);
                return;
            }
            unsigned char md[64];
            cr_digest_final(h, md);
            char hex[129];
            for (int i = 0; i < 64; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
            if (strcmp(hex, d->hex)) {
                oci__digest_mismatch(r, d->text);
                return;
            }
        } else if (strcmp(blob.sha256, d->hex)) {
            oci__digest_mismatch(r, d->text);
            return;
        }
    } else {
        /* none, or several parts: concatenate them into a new binary */
        struct oci__concat c = {NULL, NULL};
        rc = ingest_begin(r->ctx, r->arena, &c.in);
        if (rc == GR_OK && sha512) {
            c.d512 = cr_digest_new(CR_SHA512);
            if (c.d512)
                gr_arena_cleanup(r->arena, oci__digest_free, c.d512);
            else
                rc = GR_ENOMEM;
        }
        for (int i = 0; rc == GR_OK && i < n; i++)
            rc = storage_read_all(r->ctx->storage, shas[i], sizes[i], oci__concat_part, &c);
        if (rc) {
            oci__fail(r, rc == GR_ENOTFOUND ? GR_EUNAVAIL : rc);
            return;
        }
        ingest_finish(c.in, &blob);
        bool match;
        if (sha512) {
            unsigned char md[64];
            cr_digest_final(c.d512, md);
            char hex[129];
            for (int i = 0; i < 64; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
            match = !strcmp(hex, d->hex);
        } else {
            match = !strcmp(blob.sha256, d->hex);
        }
        if (!match) {
            oci__digest_mismatch(r, d->text);
            return;
        }
        char rid[24];
        snprintf(rid, sizeof(rid), "%llu", (unsigned long long)r->id);
        rc = ingest_replicate(c.in, rid, &blob);
        if (rc) {
            oci__fail(r, rc);
            return;
        }
    }
    rc = oci_upload_finish(r->ctx, id, x->rt.repo, x->rt.image, d->text, &blob);
    if (rc == GR_ENOTFOUND) {
        oci__err(r, 404, "BLOB_UPLOAD_UNKNOWN", NULL, "blob upload unknown to registry");
        return;
    }
    if (rc) {
        oci__fail(r, rc);
        return;
    }
    const char *h[] = {"Location", oci__blob_url(r, d->text), "Docker-Content-Digest", d->text,
                       NULL};
    oci__empty(r, 201, h);
}

/* End of a PATCH or PUT body: append the chunk (if any), then answer or finish. */
static void oci__upload_end(struct http_req *r)
{
    struct oci_req *x = r->hctx;
    if (x->monolithic) {
        struct artifact art;
        if (oci__ingest_done(r, &art))
            oci__complete(r, NULL, &art);
        return;
    }
    if (x->got > 0) {
        struct artifact art;
        if (!oci__ingest_done(r, &art))
            return;
        int rc = oci_upload_append(r->ctx, x->up.id, x->start, &art);
        if (rc == GR_ECONFLICT) {
            struct oci_upload now;
            if (oci_upload_get(r->ctx, r->arena, x->up.id, x->rt.repo, x->rt.image, &now) == GR_OK)
                x->up.size = now.size;
            http_answer_header(r, "Location", oci__upload_url(r, x->up.id));
            http_answer_header(r, "Range", oci__range(r, x->up.size));
            oci__err(r, 416, "BLOB_UPLOAD_INVALID", NULL,
                     "chunk out of order: another chunk was stored at this offset");
            return;
        }
        if (rc == GR_ENOTFOUND) {
            oci__err(r, 404, "BLOB_UPLOAD_UNKNOWN", NULL, "blob upload unknown to registry");
            return;
        }
        if (rc) {
            oci__fail(r, rc);
            return;
        }
        x->up.size = x->start + art.size;
    } else if (r->body_error) {
        oci__fail(r, r->body_error);
        return;
    }
    if (x->complete)
        oci__complete(r, x->up.id, NULL);
    else
        oci__upload_answer(r, 202, &x->up);
}

/* The chunk's place: Content-Range must start where the session stands. false: answered. */
static bool oci__chunk_range(struct http_req *r)
{
    struct oci_req *x = r->hctx;
    x->start = x->up.size;
    const char *cr = http_req_header(r, "Content-Range");
    if (!cr)
        return true;
    uint64_t a = 0, b = 0;
    const char *cl = http_req_header(r, "Content-Length");
    bool ok = oci_content_range(cr, &a, &b) == GR_OK && a == x->up.size &&
              (!cl || strtoull(cl, NULL, 10) == b - a + 1);
    if (!ok) {
        http_answer_header(r, "Location", oci__upload_url(r, x->up.id));
        http_answer_header(r, "Range", oci__range(r, x->up.size));
        http_answer_header(r, "Blob-Upload-Session-ID", x->up.id);
        oci__err(r, 416, "BLOB_UPLOAD_INVALID", NULL,
                 "chunk out of order or malformed Content-Range: the upload has %llu bytes",
                 (unsigned long long)x->up.size);
        return false;
    }
    return true;
}

static void oci__upload_new(struct http_req *r)
{
    struct oci_req *x = r->hctx;
    if (r->method != HM_POST) {
        oci__err(r, 405, "UNSUPPORTED", NULL, "an upload starts with POST");
        return;
    }
    const char *mount = http_query(r, "mount"), *from = http_query(r, "from");
    const char *dq = http_query(r, "digest");
    struct oci_digest d;
    bool have_digest = dq && oci_digest_parse(dq, &d) == GR_OK;
    if (dq && !have_digest) {
        oci__err(r, 400, "DIGEST_INVALID", json_pack("{s:s}", "digest", dq),
                 "provided digest is not a valid sha256 or sha512 digest");
        return;
    }
    if (!oci__need(r, have_digest ? oci__path(r, "_blobs", d.text) : oci__path(r, "_blobs", ""),
                   SEC_WRITE, "pull,push"))
        return;
    struct oci_digest md;
    if (mount && from && oci_digest_parse(mount, &md) == GR_OK) {
        /* a mount where the caller may read the source; else an upload */
        const char *slash = strchr(from, '/');
        struct repo_config fc;
        struct oci_blob b;
        if (slash && oci_image_valid(slash + 1)) {
            const char *frepo = gr_arena_strndup(r->arena, from, (size_t)(slash - from));
            const char *fpath = gr_arena_printf(r->arena, "%s/_blobs/%s", slash + 1, md.text);
            if (repo_key_check(frepo) == GR_OK && repo_get(r->ctx, r->arena, frepo, &fc) == GR_OK &&
                http_format(r, fc.package_type) == &format_oci &&
                http_may(r, frepo, fpath, SEC_READ) &&
                oci_blob_find(r->ctx, r->arena, frepo, slash + 1, md.text, &b) == GR_OK &&
                oci_blob_link(r->ctx, x->rt.repo, x->rt.image, md.text, b.sha256, b.size) ==
                    GR_OK) {
                const char *h[] = {"Location", oci__blob_url(r, md.text), "Docker-Content-Digest",
                                   md.text, NULL};
                oci__empty(r, 201, h);
                return;
            }
        }
    }
    if (have_digest) { /* monolithic: the body is the blob */
        x->digest = d;
        x->monolithic = true;
        if (!strcmp(d.alg, "sha512")) {
            x->d512 = cr_digest_new(CR_SHA512);
            if (!x->d512) {
                http_error_code(r, GR_ENOMEM, NULL);
                return;
            }
            gr_arena_cleanup(r->arena, oci__digest_free, x->d512);
        }
        r->on_body = oci__ingest_chunk;
        r->on_end = oci__upload_end;
        return;
    }
    int rc = oci_upload_new(r->ctx, x->rt.repo, x->rt.image, r->user.name, &x->up);
    if (rc) {
        oci__fail(r, rc);
        return;
    }
    oci__upload_answer(r, 202, &x->up);
}

static void oci__upload(struct http_req *r)
{
    struct oci_req *x = r->hctx;
    bool write = r->method != HM_GET && r->method != HM_HEAD;
    if (!oci__need(r, oci__path(r, "_blobs", ""), write ? SEC_WRITE : SEC_READ,
                   write ? "pull,push" : "pull"))
        return;
    int rc = oci_upload_get(r->ctx, r->arena, x->rt.ref, x->rt.repo, x->rt.image, &x->up);
    if (rc == GR_ENOTFOUND) {
        oci__err(r, 404, "BLOB_UPLOAD_UNKNOWN", NULL, "blob upload unknown to registry");
        return;
    }
    if (rc) {
        oci__fail(r, rc);
        return;
    }
    switch (r->method) {
    case HM_GET:
    case HM_HEAD:
        oci__upload_answer(r, 204, &x->up);
        return;
    case HM_DELETE:
        rc = oci_upload_cancel(r->ctx, x->up.id);
        if (rc == GR_ENOTFOUND)
            oci__err(r, 404, "BLOB_UPLOAD_UNKNOWN", NULL, "blob upload unknown to registry");
        else if (rc)
            oci__fail(r, rc);
        else
            oci__empty(r, 204, NULL);
        return;
    case HM_PUT: {
        const char *dq = http_query(r, "digest");
        if (!dq || oci_digest_parse(dq, &x->digest)) {
            oci__err(r, 400, "DIGEST_INVALID", dq ? json_pack("{s:s}", "digest", dq) : NULL,
                     "the digest parameter is missing or not a valid sha256 or sha512 digest");
            return;
        }
        if (!oci__chunk_range(r))
            return;
        x->complete = true;
        r->on_body = oci__ingest_chunk;
        r->on_end = oci__upload_end;
        return;
    }
    case HM_OTHER:
        if (!strcmp(r->method_str, "PATCH")) {
            if (!oci__chunk_range(r))
                return;
            r->on_body = oci__ingest_chunk;
            r->on_end = oci__upload_end;
            return;
        }
        break;
    default:
        break;
    }
    oci__err(r, 405, "UNSUPPORTED", NULL, "an upload answers GET, PATCH, PUT and DELETE");
}

/* ---- manifests ---- */

static int oci__manifest_chunk(struct http_req *r, const char *data, size_t len)
{
    struct oci_req *x = r->hctx;
    if (x->body.len + len > OCI_MANIFEST_MAX) {
        x->too_big = true;
        return GR_ETOOBIG;
    }
    gr_sbuf_add(&x->body, data, len);
    return GR_OK;
}

/* The config's labels as docker.label.* properties (kv pairs appended). */
static void oci__labels(struct http_req *r, const struct oci_manifest *m, const char ***kv, int *n,
                        int *cap)
{
    struct oci_req *x = r->hctx;
    struct oci_blob b;
    const char *body;
    if (!m->config ||
        oci_blob_find(r->ctx, r->arena, x->rt.repo, x->rt.image, m->config, &b) != GR_OK ||
        b.size > OCI_CONFIG_MAX || oci__read(r, b.sha256, b.size, &body) != GR_OK)
        return;
    json_t *doc = json_loadb(body, b.size, 0, NULL);
    json_t *labels = json_object_get(json_object_get(doc, "config"), "Labels");
    const char *k;
    json_t *v;
    json_object_foreach(labels, k, v)
    {
        if (!json_is_string(v) || *n >= *cap)
            continue;
        (*kv)[2 * *n] = gr_arena_printf(r->arena, "docker.label.%s", k);
        (*kv)[2 * *n + 1] = gr_arena_strdup(r->arena, json_string_value(v));
        (*n)++;
    }
    json_decref(doc);
}

static void oci__manifest_end(struct http_req *r)
{
    struct oci_req *x = r->hctx;
    if (x->too_big) {
        oci__err(r, 413, "MANIFEST_INVALID", NULL, "manifest larger than %d bytes",
                 OCI_MANIFEST_MAX);
        return;
    }
    const char *body = x->body.buf ? x->body.buf : "";
    size_t len = x->body.len;
    struct oci_manifest m;
    const char *why = NULL;
    if (oci_manifest_parse(r->arena, body, len, http_req_header(r, "Content-Type"), &m, &why)) {
        oci__err(r, 400, "MANIFEST_INVALID", NULL, "manifest invalid: %s", why);
        return;
    }
    /* the digest: the reference's (verified) or the content's sha256 */
    struct oci_push p;
    memset(&p, 0, sizeof(p));
    char sha256[CR_SHA256_HEX];
    cr_sha256_hex(body, len, sha256);
    if (oci_tag_valid(x->rt.ref)) {
        p.tag = x->rt.ref;
        if (oci_digest_parse(gr_arena_printf(r->arena, "sha256:%s", sha256), &p.digest)) {
            http_error(r, 500, "digest of the manifest");
            return;
        }
    } else {
        p.digest = x->digest;
        char hex[CR_SHA512_HEX];
        if (!strcmp(p.digest.alg, "sha512"))
            cr_sha512_hex(body, len, hex);
        if (strcmp(p.digest.hex, strcmp(p.digest.alg, "sha512") ? sha256 : hex)) {
            oci__digest_mismatch(r, p.digest.text);
            return;
        }
    }
    /* a push by tag writes the digest's file too */
    if (p.tag && !oci__need(r, oci__path(r, "_manifests", p.digest.text), SEC_WRITE, "pull,push"))
        return;
    /* its bytes, stored as every binary */
    int rc = ingest_begin(r->ctx, r->arena, &x->in);
    if (rc == GR_OK)
        rc = ingest_write(x->in, body, len);
    struct artifact art;
    memset(&art, 0, sizeof(art));
    if (rc == GR_OK) {
        ingest_finish(x->in, &art);
        char rid[24];
        snprintf(rid, sizeof(rid), "%llu", (unsigned long long)r->id);
        rc = ingest_replicate(x->in, rid, &art);
    }
    if (rc) {
        oci__fail(r, rc);
        return;
    }
    int cap = 64, n = 0;
    const char **kv = gr_arena_calloc(r->arena, (size_t)(2 * cap) * sizeof(*kv));
    kv[2 * n] = "docker.repoName", kv[2 * n + 1] = x->rt.image, n++;
    kv[2 * n] = "docker.manifest", kv[2 * n + 1] = p.tag ? p.tag : p.digest.text, n++;
    kv[2 * n] = "docker.manifest.digest", kv[2 * n + 1] = p.digest.text, n++;
    kv[2 * n] = "docker.manifest.type", kv[2 * n + 1] = m.media_type, n++;
    oci__labels(r, &m, &kv, &n, &cap);
    p.repo = x->rt.repo;
    p.image = x->rt.image;
    p.user = r->user.name;
    p.m = &m;
    p.art = &art;
    p.props = kv;
    p.nprops = n;
    rc = oci_manifest_put(r->ctx, r->arena, &p);
    if (rc == GR_ENOTFOUND && p.missing) {
        oci__err(r, 400, "MANIFEST_BLOB_UNKNOWN", json_pack("{s:s}", "digest", p.missing),
                 "manifest references a blob or manifest unknown to this repository: %s",
                 p.missing);
        return;
    }
    if (rc == GR_EINVAL && p.missing) {
        oci__err(r, 400, "MANIFEST_INVALID", json_pack("{s:s}", "digest", p.missing),
                 "manifest invalid: the size of %s differs from the stored blob's", p.missing);
        return;
    }
    if (rc == GR_ENOTFOUND) {
        oci__err(r, 404, "NAME_UNKNOWN", NULL, "repository deleted meanwhile");
        return;
    }
    if (rc) {
        oci__fail(r, rc);
        return;
    }
    if (oci_manifest_media_type(r->arena, body, len)) /* the content declares it */
        oci__memo_put(art.sha256, m.media_type);
    const char *loc =
        gr_arena_printf(r->arena, "%s/v2/%s/manifests/%s", r->base, x->rt.name, p.digest.text);
    const char *h[] = {
        "Location", loc, "Docker-Content-Digest", p.digest.text, m.subject ? "OCI-Subject" : NULL,
        m.subject,  NULL};
    oci__empty(r, 201, h);
}

static void oci__manifest_put(struct http_req *r)
{
    struct oci_req *x = r->hctx;
    bool tag = oci_tag_valid(x->rt.ref);
    if (!tag && oci_digest_parse(x->rt.ref, &x->digest)) {
        if (strchr(x->rt.ref, ':'))
            oci__err(r, 400, "DIGEST_INVALID", json_pack("{s:s}", "digest", x->rt.ref),
                     "provided digest is not a valid sha256 or sha512 digest");
        else
            oci__err(r, 400, "MANIFEST_INVALID", NULL,
                     "invalid tag: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}");
        return;
    }
    const char *path = tag ? oci__tag_path(r, x->rt.ref) : oci__path(r, "_manifests", x->rt.ref);
    unsigned act = SEC_WRITE;
    if (tag) { /* moving a tag overwrites it: delete too */
        struct artifact cur;
        if (artifact_get(r->ctx, r->arena, x->rt.repo, path, &cur) == GR_OK)
            act |= SEC_DELETE;
    }
    if (!oci__need(r, path, act, act & SEC_DELETE ? "pull,push,delete" : "pull,push"))
        return;
    const char *cl = http_req_header(r, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > OCI_MANIFEST_MAX) {
        oci__err(r, 413, "MANIFEST_INVALID", NULL, "manifest larger than %d bytes",
                 OCI_MANIFEST_MAX);
        return;
    }
    gr_sbuf_init(&x->body);
    gr_arena_cleanup(r->arena, oci__sbuf_free, &x->body);
    r->on_body = oci__manifest_chunk;
    r->on_end = oci__manifest_end;
}

static void oci__manifest(struct http_req *r)
{
    struct oci_req *x = r->hctx;
    if (r->method == HM_PUT) {
        oci__manifest_put(r);
        return;
    }
    bool tag = oci_tag_valid(x->rt.ref);
    struct oci_digest d;
    if (!tag && oci_digest_parse(x->rt.ref, &d)) {
        if (strchr(x->rt.ref, ':'))
            oci__err(r, 400, "DIGEST_INVALID", json_pack("{s:s}", "digest", x->rt.ref),
                     "provided digest is not a valid sha256 or sha512 digest");
        else
            oci__err(r, 404, "MANIFEST_UNKNOWN", NULL, "manifest unknown: not a valid tag");
        return;
    }
    const char *path = tag ? oci__tag_path(r, x->rt.ref) : oci__path(r, "_manifests", d.text);
    if (r->method == HM_DELETE) {
        if (!oci__need(r, path, SEC_DELETE, "delete"))
            return;
        if (!tag) { /* the tags pointing at it go too: delete on each */
            const char **tags;
            int nt = 0;
            int rc =
                oci_manifest_tags(r->ctx, r->arena, x->rt.repo, x->rt.image, d.text, &tags, &nt);
            if (rc) {
                oci__fail(r, rc);
                return;
            }
            for (int i = 0; i < nt; i++)
                if (!oci__need(r, oci__tag_path(r, tags[i]), SEC_DELETE, "delete"))
                    return;
        }
        int rc = tag ? oci_tag_delete(r->ctx, r->arena, x->rt.repo, x->rt.image, x->rt.ref)
                     : oci_manifest_delete(r->ctx, r->arena, x->rt.repo, x->rt.image, d.text);
        if (rc == GR_ENOTFOUND)
            oci__err(r, 404, "MANIFEST_UNKNOWN", NULL, "manifest unknown to registry");
        else if (rc)
            oci__fail(r, rc);
        else
            oci__empty(r, 202, NULL);
        return;
    }
    if (r->method != HM_GET && r->method != HM_HEAD) {
        oci__err(r, 405, "UNSUPPORTED", NULL, "a manifest answers GET, HEAD, PUT and DELETE");
        return;
    }
    if (!oci__need(r, path, SEC_READ, "pull"))
        return;
    struct artifact a;
    int rc = artifact_get(r->ctx, r->arena, x->rt.repo, path, &a);
    if (rc == GR_ENOTFOUND) {
        oci__err(r, 404, "MANIFEST_UNKNOWN", NULL, "manifest unknown to registry");
        return;
    }
    if (rc) {
        oci__fail(r, rc);
        return;
    }
    const char *digest = tag ? gr_arena_printf(r->arena, "sha256:%s", a.sha256) : d.text;
    char type[96];
    const char *body = NULL;
    if (!oci__memo_get(a.sha256, type, sizeof(type)) || r->method == HM_GET) {
        rc = oci__read(r, a.sha256, a.size, &body);
        if (rc) {
            oci__fail(r, rc == GR_ENOTFOUND ? GR_EUNAVAIL : rc);
            return;
        }
        const char *t = oci_manifest_media_type(r->arena, body, a.size);
        if (t) {
            oci__memo_put(a.sha256, t);
        } else if (oci_manifest_type(r->ctx, r->arena, x->rt.repo, x->rt.image, digest, &t) !=
                   GR_OK) {
            t = OCI_MT_OCI_MANIFEST;
        }
        snprintf(type, sizeof(type), "%s", t);
    }
    if (!oci_accepts(http_req_header_all(r, "Accept"), type)) {
        oci__err(r, 404, "MANIFEST_UNKNOWN", NULL,
                 "manifest unknown: it is %s, which the Accept header does not admit", type);
        return;
    }
    char etag[160];
    snprintf(etag, sizeof(etag), "\"%s\"", digest);
    struct MHD_Response *resp = r->method == HM_GET
                                    ? http_response_bytes((void *)body, a.size, true)
                                    : http_artifact_body(r, &a, 0, a.size);
    if (!resp)
        return;
    if (r->method == HM_GET)
        r->sent_bytes += a.size;
    http_header(resp, "Content-Type", type);
    http_header(resp, "Docker-Content-Digest", digest);
    http_header(resp, "ETag", etag);
    http_header(resp, "X-Content-Type-Options", "nosniff");
    http_send(r, 200, resp);
}

/* ---- tags and referrers ---- */

static void oci__tags(struct http_req *r)
{
    struct oci_req *x = r->hctx;
    if (r->method != HM_GET && r->method != HM_HEAD) {
        oci__err(r, 405, "UNSUPPORTED", NULL, "the tags list answers GET");
        return;
    }
    if (!oci__need(r, x->rt.image, SEC_READ, "pull"))
        return;
    int n;
    if (oci__count(r, &n)) {
        oci__err(r, 400, "UNSUPPORTED", NULL, "n must be a non-negative number");
        return;
    }
    const char *last = http_query(r, "last");
    if (last && !*last)
        last = NULL;
    const char **tags;
    int got;
    bool exists;
    int rc = oci_tags_list(r->ctx, r->arena, x->rt.repo, x->rt.image, last,
                           n < 0 ? OCI_LIST_MAX : n, &tags, &got, &exists);
    if (rc) {
        oci__fail(r, rc);
        return;
    }
    if (!exists) {
        oci__err(r, 404, "NAME_UNKNOWN", json_pack("{s:s}", "name", x->rt.name),
                 "repository name not known to registry");
        return;
    }
    int limit = n < 0 ? OCI_LIST_MAX : n;
    bool more = got > limit;
    json_t *list = json_array();
    for (int i = 0; i < got && i < limit; i++)
        json_array_append_new(list, json_string(tags[i]));
    json_t *doc = json_pack("{s:s,s:o}", "name", x->rt.name, "tags", list);
    if (more && limit > 0) {
        const char *link =
            gr_arena_printf(r->arena, "<%s/v2/%s/tags/list?n=%d&last=%s>; rel=\"next\"", r->base,
                            x->rt.name, limit, tags[limit - 1]);
        const char *h[] = {"Link", link, NULL};
        oci__json(r, 200, "application/json", doc, h);
        return;
    }
    oci__json(r, 200, "application/json", doc, NULL);
}

static void oci__referrers(struct http_req *r)
{
    struct oci_req *x = r->hctx;
    if (r->method != HM_GET && r->method != HM_HEAD) {
        oci__err(r, 405, "UNSUPPORTED", NULL, "the referrers list answers GET");
        return;
    }
    struct oci_digest d;
    if (oci_digest_parse(x->rt.ref, &d)) {
        oci__err(r, 400, "DIGEST_INVALID", json_pack("{s:s}", "digest", x->rt.ref),
                 "provided digest is not a valid sha256 or sha512 digest");
        return;
    }
    if (!oci__need(r, x->rt.image, SEC_READ, "pull"))
        return;
    const char *at = http_query(r, "artifactType");
    if (at && !*at)
        at = NULL;
    struct oci_referrer *v;
    int n;
    int rc = oci_referrers(r->ctx, r->arena, x->rt.repo, x->rt.image, d.text, at, &v, &n);
    if (rc) {
        oci__fail(r, rc);
        return;
    }
    json_t *list = json_array();
    for (int i = 0; i < n; i++) {
        json_t *e = json_pack("{s:s,s:s,s:I}", "mediaType", v[i].media_type, "digest", v[i].digest,
                              "size", (json_int_t)v[i].size);
        if (v[i].artifact_type)
            json_object_set_new(e, "artifactType", json_string(v[i].artifact_type));
        json_t *ann = v[i].annotations ? json_loads(v[i].annotations, 0, NULL) : NULL;
        if (ann)
            json_object_set_new(e, "annotations", ann);
        json_array_append_new(list, e);
    }
    json_t *doc = json_pack("{s:i,s:s,s:o}", "schemaVersion", 2, "mediaType", OCI_MT_OCI_INDEX,
                            "manifests", list);
    const char *h[] = {"OCI-Filters-Applied", "artifactType", NULL};
    oci__json(r, 200, OCI_MT_OCI_INDEX, doc, at ? h : NULL);
}

/* ---- the entry ---- */

void oci_api(struct http_req *r, const char *rest)
{
    struct oci_req *x = gr_arena_calloc(r->arena, sizeof(*x));
    r->hctx = x;
    r->error_doc = oci__error_doc;
    http_answer_header(r, "Docker-Distribution-API-Version", "registry/2.0");
    /* the core's refusals of the caller (bad credentials 401, a throttled
     * login 429, a node not ready 503) in the spec's shape; a 401 carries
     * the Bearer challenge, so a client whose token expired fetches another
     * (the token endpoint's keeps Basic: it takes Basic credentials) */
    int nh = r->nanswer_headers;
    if (strcmp(rest, "token") != 0)
        http_answer_header(r, "WWW-Authenticate", oci__challenge(r, NULL));
    if (!http_authenticate(r))
        return;
    r->nanswer_headers = nh;
    const char *why = NULL;
    int rc = oci_route_parse(r->arena, rest, r->method == HM_POST, &x->rt, &why);
    if (rc == GR_EINVAL) {
        oci__err(r, 400, "NAME_INVALID", NULL, "invalid repository name: %s",
                 why ? why : "malformed escape");
        return;
    }
    if (rc) {
        oci__err(r, 404, "UNSUPPORTED", NULL, "no such registry endpoint");
        return;
    }
    switch (x->rt.op) {
    case OCI_BASE:
        oci__base(r);
        return;
    case OCI_TOKEN:
        oci__token(r);
        return;
    case OCI_CATALOG:
        oci__catalog(r);
        return;
    default:
        break;
    }
    if (!oci__repo(r))
        return;
    switch (x->rt.op) {
    case OCI_MANIFEST:
        oci__manifest(r);
        return;
    case OCI_BLOB:
        oci__blob(r);
        return;
    case OCI_UPLOAD_NEW:
        oci__upload_new(r);
        return;
    case OCI_UPLOAD:
        oci__upload(r);
        return;
    case OCI_TAGS:
        oci__tags(r);
        return;
    case OCI_REFERRERS:
        oci__referrers(r);
        return;
    default:
        oci__err(r, 404, "UNSUPPORTED", NULL, "no such registry endpoint");
    }
}

void oci_artifact(struct http_req *r, const struct repo_config *cfg)
{
    if (r->method == HM_GET || r->method == HM_HEAD) {
        http_artifact_generic(r, cfg);
        return;
    }
    http_error(r, 405, "a docker repository is written through the registry API (/v2/%s/...)",
               cfg->key);
}
