/*
 * npm_api.c - the npm registry API at /api/npm/{repo}/ (docs/npm.md):
 * packuments (full and abbreviated, ETag/304), publish (the base64 tarball
 * decoded straight into the blob store while hashing), tarballs (served as
 * artifacts), dist-tags, deprecate, unpublish, login tokens, whoami,
 * search and a no-op audit endpoint. The rows live in npm.c.
 */
#include "http/h_plugins.h"
#include "http/remote.h"
#include "http/req.h"

#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "storage/storage.h"
#include "crypto/crypto.h"
#include "config.h"
#include "formats/npm/npm.h"
#include "repo/ingest.h"
#include "repo/security.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern const struct format format_npm;

/* storage_read_all's sink into a gr_sbuf. */
static int npm__sb_chunk(void *arg, const void *data, size_t len)
{
    gr_sbuf_add(arg, data, len);
    return GR_OK;
}

/* Seconds an npm login token lives (--npm-token-lifetime; 0: no expiry). */
static int npm__token_lifetime = 365 * 24 * 3600;

void npm_configure(const struct config *cfg)
{
    npm__token_lifetime = cfg->npm_token_lifetime;
}

#define NPM_ABBREV_TYPE "application/vnd.npm.install-v1+json"
#define NPM_DECODE_CHUNK (64 * 1024) /* base64 characters decoded per step */
#define NPM_BODY_FIRST (64 * 1024)   /* a body's first buffer; it doubles as bytes arrive */
#define NPM_LOGIN_NAME_MAX 127       /* longer names are no user's (struct auth_user) */
#define NPM_LOGIN_PASSWORD_MAX 1024

/* One npm request, in the arena. */
struct npm_ctx {
    struct repo_config cfg;
    const char *repo, *name, *tail;
    /* a collected body (publish, deprecate, -rev PUT, dist-tag PUT): cap
     * bytes allocated and counted in npm__held, at most limit + 1 */
    char *buf;
    size_t len, cap, limit;
    size_t want; /* Content-Length + 1, or 0 when the length is not announced */
    void (*done)(struct http_req *r);
};

/*
 * Bytes of npm request bodies held in memory by this process, with the
 * estimated cost of parsing them: all requests together stay below
 * NPM_BODY_BUDGET (npm.h), so concurrent large publishes cannot
 * exhaust memory. Shared by every HTTP thread: atomic.
 */
static atomic_size_t npm__held;

/* Count n more bytes against the budget; false (nothing counted) when they do not fit. */
static bool npm__reserve(size_t n)
{
    size_t cur = atomic_load(&npm__held);
    do {
        if (n > NPM_BODY_BUDGET || cur > NPM_BODY_BUDGET - n)
            return false;
    } while (!atomic_compare_exchange_weak(&npm__held, &cur, cur + n));
    return true;
}

static void npm__unreserve(size_t n)
{
    atomic_fetch_sub(&npm__held, n);
}

/* Free the body and give its bytes back to the budget (at once, not when the request ends). */
static void npm__body_drop(struct npm_ctx *n)
{
    free(n->buf);
    npm__unreserve(n->cap);
    n->buf = NULL;
    n->len = n->cap = 0;
}

static void npm__body_free(void *arg)
{
    npm__body_drop(arg);
}

/*
 * Append a chunk. The buffer grows with the bytes that arrived (doubling,
 * never past the announced length or the limit), each growth counted in
 * the budget first: GR_ETOOBIG over the limit, GR_EUNAVAIL over the
 * budget. On an error the body is dropped; the rest is drained unread.
 */
static int npm__body_chunk(struct http_req *r, const char *data, size_t len)
{
    struct npm_ctx *n = r->hctx;
    int rc = GR_OK;
    if (len > n->limit - n->len) {
        rc = GR_ETOOBIG;
        goto out_drop;
    }
    size_t need = n->len + len + 1;
    if (need > n->cap) {
        size_t cap = n->cap ? n->cap : NPM_BODY_FIRST;
        while (cap < need)
            cap *= 2;
        size_t top = n->want && n->want < n->limit + 1 ? n->want : n->limit + 1;
        if (cap > top)
            cap = top > need ? top : need;
        if (!npm__reserve(cap - n->cap)) {
            rc = GR_EUNAVAIL;
            goto out_drop;
        }
        char *b = realloc(n->buf, cap);
        if (!b) {
            npm__unreserve(cap - n->cap);
            rc = GR_ENOMEM;
            goto out_drop;
        }
        n->buf = b;
        n->cap = cap;
    }
    memcpy(n->buf + n->len, data, len);
    n->len += len;
    n->buf[n->len] = '\0';
    return GR_OK;
out_drop:
    npm__body_drop(n);
    return rc;
}

static void npm__busy(struct http_req *r)
{
    http_error(r, 503, "npm request bodies in memory are at their limit of %u bytes: retry later",
               NPM_BODY_BUDGET);
}

static void npm__body_end(struct http_req *r)
{
    struct npm_ctx *n = r->hctx;
    if (r->body_error == GR_ETOOBIG) {
        http_error(r, 413, "request body larger than the limit of %zu bytes", n->limit);
        return;
    }
    if (r->body_error == GR_EUNAVAIL) {
        npm__busy(r);
        return;
    }
    if (r->body_error) {
        http_error_code(r, r->body_error, "cannot read the request body");
        return;
    }
    n->done(r);
}

/*
 * Collect the body (at most limit bytes: 413 above, before the body when
 * Content-Length says so; 503 when the budget is used up), then call done.
 * Nothing is allocated before bytes arrive.
 */
static void npm__read_body(struct http_req *r, struct npm_ctx *n, size_t limit,
                           void (*done)(struct http_req *r))
{
    const char *cl = http_req_header(r, "Content-Length");
    unsigned long long announced = cl ? strtoull(cl, NULL, 10) : 0;
    if (cl && announced > limit) {
        http_error(r, 413, "body of %s bytes is larger than the limit of %zu bytes", cl, limit);
        return;
    }
    if (cl && announced > NPM_BODY_BUDGET - atomic_load(&npm__held)) {
        npm__busy(r);
        return;
    }
    n->limit = limit;
    n->want = cl ? (size_t)announced + 1 : 0;
    n->done = done;
    gr_arena_cleanup(r->arena, npm__body_free, n);
    r->hctx = n;
    r->on_body = npm__body_chunk;
    r->on_end = npm__body_end;
}

static void npm__decref(void *arg)
{
    json_decref(arg);
}

static void npm__parse_release(void *arg)
{
    npm__unreserve((size_t)(uintptr_t)arg);
}

/*
 * The body parsed as JSON (any value), or NULL after an answer: 413 above
 * max bytes, 503 when the parse's estimated memory does not fit the
 * budget, 400 for anything but JSON. Reference stolen by the arena.
 */
static json_t *npm__body_json(struct http_req *r, struct npm_ctx *n, size_t max)
{
    if (n->len > max) {
        http_error(r, 413, "document of %zu bytes is larger than the limit of %zu bytes", n->len,
                   max);
        return NULL;
    }
    size_t cost = n->len * NPM_PARSE_FACTOR;
    if (!npm__reserve(cost)) {
        npm__busy(r);
        return NULL;
    }
    gr_arena_cleanup(r->arena, npm__parse_release, (void *)(uintptr_t)cost);
    json_error_t err;
    json_t *doc = n->buf ? json_loadb(n->buf, n->len, JSON_DECODE_ANY, &err) : NULL;
    if (!doc) {
        http_error(r, 400, "invalid JSON: %s", n->buf ? err.text : "empty body");
        return NULL;
    }
    gr_arena_cleanup(r->arena, npm__decref, doc);
    return doc;
}

static void npm__ok(struct http_req *r, int status)
{
    http_json(r, status, json_pack("{s:b}", "ok", 1));
}

static void npm__err(struct http_req *r, int rc, const char *what)
{
    if (rc == GR_ENOTFOUND)
        http_error(r, 404, "not found: %s", what);
    else if (rc == GR_ECONFLICT)
        http_error(r, 409, "%s changed meanwhile: fetch it again", what);
    else
        http_error_code(r, rc, NULL);
}

/*
 * ---- who may do what (docs/npm.md) ----
 * Permission targets see a package as the path "{name}" (its packument and
 * dist-tags) and each version as the path its tarball is stored at,
 * "{name}/-/{file}" (the manifest is stored with it). Reading a version
 * needs read there; publishing one write (and delete to replace a file
 * already there); deprecating or unpublishing one delete. Versions the
 * caller may not read are left out of what it is shown, and left alone by
 * the documents it PUTs back.
 */

/* The path a version's tarball is stored at (arena). */
static char *npm__tgz_path(struct http_req *r, struct npm_ctx *n, const char *file)
{
    return gr_arena_printf(r->arena, "%s/-/%s", n->name, file);
}

/* Whether the caller holds action on every path below the package (no per-version check needed). */
static bool npm__may_all(struct http_req *r, struct npm_ctx *n, unsigned action)
{
    unsigned have = 0;
    return sec_effective_tree(r->ctx, r->arena, &r->user, n->repo, n->name, &have) == GR_OK &&
           (have & action) == action;
}

static bool npm__may_version(struct http_req *r, struct npm_ctx *n, const struct npm_version_row *v,
                             unsigned action)
{
    return http_may(r, n->repo, npm__tgz_path(r, n, v->file), action);
}

/*
 * Load the package as the caller may see it: versions whose tarball it may
 * not read are left out (and the dist-tags naming them with them). false:
 * an answer was sent (404 also when no version is visible).
 */
static bool npm__load_visible(struct http_req *r, struct npm_ctx *n, struct npm_package *p)
{
    int rc = npm_package_get(r->ctx, r->arena, n->repo, n->name, p);
    if (rc) {
        npm__err(r, rc, n->name);
        return false;
    }
    if (npm__may_all(r, n, SEC_READ))
        return true;
    int k = 0;
    for (int i = 0; i < p->nv; i++)
        if (npm__may_version(r, n, &p->v[i], SEC_READ))
            p->v[k++] = p->v[i];
    bool hidden_all = k == 0 && p->nv > 0;
    p->nv = k;
    if (hidden_all) {
        npm__err(r, GR_ENOTFOUND, n->name);
        return false;
    }
    return true;
}

/* ---- packuments ---- */

static const char *npm__tarball_base(struct http_req *r, struct npm_ctx *n)
{
    return gr_arena_printf(r->arena, "%s/api/npm/%s", http_base_url(r), n->repo);
}

static bool npm__wants_abbreviated(struct http_req *r)
{
    const char *accept = http_req_header(r, "Accept");
    const char *w = http_query(r, "write");
    return accept && strstr(accept, NPM_ABBREV_TYPE) && !(w && !strcmp(w, "true"));
}

/* Send doc (stolen) with an ETag of its bytes; 304 when If-None-Match has it. */
static void npm__send_doc(struct http_req *r, json_t *doc, const char *type)
{
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!s) {
        http_error(r, 500, "out of memory");
        return;
    }
    size_t len = strlen(s);
    char sum[CR_SHA256_HEX], etag[48];
    cr_sha256_hex(s, len, sum);
    snprintf(etag, sizeof(etag), "\"%.40s\"", sum);
    struct MHD_Response *resp;
    int status = 200;
    if (http_not_modified(r, etag, -1)) {
        free(s);
        resp = http_response_bytes(NULL, 0, true);
        status = 304;
    } else {
        resp = http_response_bytes(s, len, false);
        if (resp)
            http_header(resp, "Content-Type", type);
        r->sent_bytes += r->method == HM_HEAD ? 0 : len;
    }
    if (!resp) {
        http_error(r, 500, "out of memory");
        return;
    }
    http_header(resp, "ETag", etag);
    http_header(resp, "Vary", "Accept");
    http_send(r, status, resp);
}

static void npm__packument_get(struct http_req *r, struct npm_ctx *n)
{
    struct npm_package p;
    if (!npm__load_visible(r, n, &p))
        return;
    bool ab = npm__wants_abbreviated(r);
    json_t *doc = npm_packument(&p, npm__tarball_base(r, n), ab);
    if (!doc) {
        http_error(r, 500, "out of memory");
        return;
    }
    npm__send_doc(r, doc, ab ? NPM_ABBREV_TYPE : "application/json");
}

/* GET /{name}/{version|tag}: one version's manifest. */
static void npm__version_get(struct http_req *r, struct npm_ctx *n)
{
    struct npm_package p;
    if (!npm__load_visible(r, n, &p))
        return;
    json_t *doc = npm_packument(&p, npm__tarball_base(r, n), false);
    const char *spec = npm_unescape(r->arena, n->tail, strlen(n->tail));
    const char *tagged =
        spec ? json_string_value(json_object_get(json_object_get(doc, "dist-tags"), spec)) : NULL;
    json_t *v = json_object_get(json_object_get(doc, "versions"), tagged ? tagged
                                                                  : spec ? spec
                                                                         : "");
    if (!v) {
        json_decref(doc);
        http_error(r, 404, "no such version: %s@%s", n->name, spec ? spec : "?");
        return;
    }
    json_incref(v);
    json_decref(doc);
    npm__send_doc(r, v, "application/json");
}

/* ---- publish ---- */

/* The sha512 entry of an SRI string ("sha512-<b64> ..."), or NULL. */
static const char *npm__sri_sha512(struct gr_arena *a, const char *sri)
{
    for (const char *p = sri; p && *p;) {
        p += strspn(p, " \t");
        size_t l = strcspn(p, " \t");
        if (l > 7 && !strncmp(p, "sha512-", 7)) {
            size_t q = strcspn(p + 7, "? \t");
            return gr_arena_strndup(a, p + 7, q < l - 7 ? q : l - 7);
        }
        p += l;
    }
    return NULL;
}

struct npm_upload {
    struct ingest *in;
    struct cr_digest *sha512;
    unsigned char *out;
};

static void npm__upload_cleanup(void *arg)
{
    struct npm_upload *u = arg;
    cr_digest_free(u->sha512);
    free(u->out);
}

/*
 * Decode the base64 tarball at data[0..len) into the upload pipeline
 * (repo/ingest.h: sha256, sha1, md5) while computing sha512 for
 * dist.integrity. false: an answer was sent.
 */
static bool npm__store_tarball(struct http_req *r, struct npm_upload *u, const char *data,
                               size_t len, struct artifact *t, unsigned char sha512[64])
{
    u->sha512 = cr_digest_new(CR_SHA512);
    u->out = malloc(NPM_DECODE_CHUNK * 3 / 4 + 3);
    int rc = u->sha512 && u->out ? ingest_begin(r->ctx, r->arena, &u->in) : GR_ENOMEM;
    if (rc) {
        http_error_code(r, rc, "cannot start the upload");
        return false;
    }
    struct npm_b64 st = {0};
    for (size_t off = 0; off < len; off += NPM_DECODE_CHUNK) {
        size_t n = len - off < NPM_DECODE_CHUNK ? len - off : NPM_DECODE_CHUNK, got = 0;
        if (npm_b64_decode(&st, data + off, n, u->out, &got) != GR_OK) {
            http_error(r, 400, "the attachment's data is not base64");
            return false;
        }
        cr_digest_update(u->sha512, u->out, got);
        rc = ingest_write(u->in, u->out, got);
        if (rc) {
            http_error_code(r, rc, "cannot store the tarball");
            return false;
        }
    }
    if (npm_b64_finish(&st) != GR_OK) {
        http_error(r, 400, "the attachment's data is truncated base64");
        return false;
    }
    ingest_finish(u->in, t);
    cr_digest_final(u->sha512, sha512);
    return true;
}

static void npm__publish(struct http_req *r, struct npm_ctx *n, size_t off, size_t dlen)
{
    struct npm_upload *u = gr_arena_calloc(r->arena, sizeof(*u));
    gr_arena_cleanup(r->arena, npm__upload_cleanup, u);
    struct npm_publish pub = {.repo = n->repo, .name = n->name, .user = r->user.name};
    unsigned char sha512[64];
    if (!npm__store_tarball(r, u, n->buf + off, dlen, &pub.tarball, sha512))
        return;
    /* drop the base64 from the body before parsing the (now small) rest */
    memmove(n->buf + off, n->buf + off + dlen, n->len - off - dlen);
    n->len -= dlen;
    json_t *doc = npm__body_json(r, n, NPM_DOC_MAX);
    if (!doc)
        return;
    const char *docname = json_string_value(json_object_get(doc, "name"));
    json_t *versions = json_object_get(doc, "versions");
    if (!docname || strcmp(docname, n->name)) {
        http_error(r, 400, "the document's name does not match the URL's (%s)", n->name);
        return;
    }
    if (!json_is_object(versions) || json_object_size(versions) != 1) {
        http_error(r, 400, "a publish must hold exactly one version");
        return;
    }
    const char *ver = json_object_iter_key(json_object_iter(versions));
    json_t *m = json_object_iter_value(json_object_iter(versions));
    const char *mname = json_string_value(json_object_get(m, "name"));
    const char *mver = json_string_value(json_object_get(m, "version"));
    if (!json_is_object(m) || !mname || strcmp(mname, n->name) || !mver || strcmp(mver, ver) ||
        !*ver || strlen(ver) > 256 || strpbrk(ver, "/\\ ")) {
        http_error(r, 400, "version %s: its manifest must carry the same name and version", ver);
        return;
    }
    json_t *dist = json_object_get(m, "dist");
    const char *shasum = json_string_value(json_object_get(dist, "shasum"));
    const char *sri = json_string_value(json_object_get(dist, "integrity"));
    if (shasum && strcasecmp(shasum, pub.tarball.sha1)) {
        http_error(r, 400, "dist.shasum %s does not match the tarball's sha1 %s", shasum,
                   pub.tarball.sha1);
        return;
    }
    const char *want512 = sri ? npm__sri_sha512(r->arena, sri) : NULL;
    if (want512) {
        char have[90];
        cr_base64_encode(sha512, 64, have);
        if (strcmp(want512, have)) {
            http_error(r, 400, "dist.integrity does not match the tarball's sha512 (sha512-%s)",
                       have);
            return;
        }
    }
    /* the tags of this publish: those of dist-tags naming this version */
    json_t *tags = json_object_get(doc, "dist-tags");
    pub.tags = gr_arena_calloc(r->arena, sizeof(char *) * (json_object_size(tags) + 1));
    const char *tag;
    json_t *tv;
    json_object_foreach(tags, tag, tv)
    {
        if (json_is_string(tv) && !strcmp(json_string_value(tv), ver))
            ((const char **)pub.tags)[pub.ntags++] = tag;
    }
    char *text = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) {
        http_error(r, 500, "out of memory");
        return;
    }
    pub.manifest = gr_arena_strdup(r->arena, text);
    free(text);
    pub.version = ver;
    pub.file = gr_arena_printf(r->arena, "%s-%s.tgz", npm_basename(n->name), ver);
    /* permission targets and plugins (h_plugins.c) see the tarball as an
     * upload of {name}/-/{file}: write there, and delete to replace a file */
    r->repo_key = n->repo;
    r->path = npm__tgz_path(r, n, pub.file);
    r->matrix = NULL;
    if (!http_need_deploy(r) || !http_plug_before_upload_sized(r, (int64_t)pub.tarball.size))
        return;
    char rid[24];
    snprintf(rid, sizeof(rid), "%llu", (unsigned long long)r->id);
    int rc = ingest_replicate(u->in, rid, &pub.tarball);
    if (rc) {
        http_error_code(r, rc, "cannot store the tarball");
        return;
    }
    rc = npm_publish(r->ctx, r->arena, &pub);
    if (rc == GR_EEXIST) {
        http_error(r, 403, "cannot publish over the previously published version %s of %s", ver,
                   n->name);
        return;
    }
    if (rc) {
        npm__err(r, rc, n->repo);
        return;
    }
    gr_info("req=%llu npm publish %s/%s@%s by %s", (unsigned long long)r->id, n->repo, n->name, ver,
            r->user.name);
    http_plug_after_upload(r, &pub.tarball); /* plugins (h_plugins.c) */
    npm__ok(r, 201);
}

/*
 * Apply a document npm PUT back: the deprecations it carries (remove
 * false: PUT /{name}) or, in addition, the unpublish of the versions it
 * lacks and its dist-tags (remove true: PUT /{name}/-rev/{rev}). Changing
 * or removing a version needs delete on its tarball's path (403, nothing
 * changed, otherwise); versions the caller may not read are kept as they
 * are, with their dist-tags, whatever the document says. The package is
 * checked and written at one _rev: if it changes in between (and the
 * client named no rev) it is looked at again.
 */
static void npm__apply_doc(struct http_req *r, struct npm_ctx *n, json_t *doc, bool remove,
                           const char *rev)
{
    json_t *dv = json_object_get(doc, "versions");
    if (!json_is_object(doc) || !json_is_object(dv)) {
        http_error(r, 400, "the document has no versions");
        return;
    }
    bool all_read = npm__may_all(r, n, SEC_READ), all_delete = npm__may_all(r, n, SEC_DELETE);
    int rc = GR_ECONFLICT;
    struct gr_sbuf what = GR_SBUF_INIT;
    for (int attempt = 0; attempt < 3 && rc == GR_ECONFLICT; attempt++) {
        struct npm_package p;
        rc = npm_package_get(r->ctx, r->arena, n->repo, n->name, &p);
        if (rc == GR_OK && rev && strcmp(rev, p.rev))
            rc = GR_ECONFLICT;
        if (rc)
            break;
        json_t *work = json_copy(doc);
        json_t *wv = json_copy(dv);
        json_t *wt = json_object_get(doc, "dist-tags");
        wt = json_is_object(wt) ? json_copy(wt) : json_object();
        json_object_set_new(work, "versions", wv);
        json_object_set_new(work, "dist-tags", wt);
        gr_sbuf_reset(&what);
        const char *denied = NULL;
        for (int i = 0; i < p.nv && !denied; i++) {
            const struct npm_version_row *v = &p.v[i];
            json_t *want = json_object_get(wv, v->version);
            bool present = json_is_object(want);
            if (!present && !remove)
                continue;
            if (!present && !all_read && !npm__may_version(r, n, v, SEC_READ)) {
                /* hidden from the caller: its absence says nothing, it stays */
                json_object_set(wv, v->version, v->manifest);
                continue;
            }
            if (present && !npm_deprecation_changes(v->manifest, want, NULL))
                continue;
            if (!all_delete && !npm__may_version(r, n, v, SEC_DELETE))
                denied = npm__tgz_path(r, n, v->file);
            gr_sbuf_adds(&what, what.len ? ", " : "");
            gr_sbuf_adds(&what, v->version);
        }
        if (denied) {
            json_decref(work);
            gr_sbuf_release(&what);
            gr_info("req=%llu denied: %s lacks delete on %s/%s", (unsigned long long)r->id,
                    r->user.name, n->repo, denied);
            http_error(r, 403,
                       "user '%s' has no delete permission on '%s/%s' (needed to %s a version)",
                       r->user.name, n->repo, denied, remove ? "unpublish or change" : "deprecate");
            return;
        }
        /* the dist-tags of versions kept because hidden stay too */
        const char *tag;
        json_t *tv;
        json_object_foreach(p.tags, tag, tv)
        {
            const char *tver = json_string_value(tv);
            if (remove && tver && !json_object_get(wt, tag) && json_object_get(wv, tver) &&
                !json_object_get(dv, tver))
                json_object_set(wt, tag, tv);
        }
        rc = npm_update(r->ctx, n->repo, n->name, work, remove, p.rev, r->user.name);
        json_decref(work);
        if (rc == GR_ECONFLICT && rev)
            break; /* the client's rev is stale: its own document must be fetched again */
    }
    if (rc) {
        gr_sbuf_release(&what);
        npm__err(r, rc, n->name);
        return;
    }
    if (what.len) /* audited when the request completes with 2xx */
        http_audit(r, remove ? "delete" : "overwrite", n->repo, n->name,
                   gr_arena_printf(r->arena, "npm %s %s",
                                   remove ? "unpublish or change" : "deprecate", what.buf));
    gr_sbuf_release(&what);
    npm__ok(r, 200);
}

/* PUT /{name}: a publish (with an attachment) or a document update (deprecate). */
static void npm__put_done(struct http_req *r)
{
    struct npm_ctx *n = r->hctx;
    size_t off = 0, dlen = 0;
    const char *file = NULL;
    int rc = n->buf ? npm_find_attachment(r->arena, n->buf, n->len, &off, &dlen, &file) : GR_EINVAL;
    if (rc == GR_OK) {
        npm__publish(r, n, off, dlen);
        return;
    }
    if (rc != GR_ENOTFOUND) {
        http_error(r, 400, "a publish body is a JSON object with one attachment");
        return;
    }
    json_t *doc = npm__body_json(r, n, NPM_DOC_MAX);
    if (doc)
        npm__apply_doc(r, n, doc, false, NULL);
}

/* PUT /{name}/-rev/{rev}: the document minus unpublished versions. */
static void npm__rev_put_done(struct http_req *r)
{
    struct npm_ctx *n = r->hctx;
    json_t *doc = npm__body_json(r, n, NPM_DOC_MAX);
    const char *rev = n->tail + strlen("-rev/");
    if (doc)
        npm__apply_doc(r, n, doc, true, *rev ? rev : NULL);
}

/* ---- dist-tags ---- */

/*
 * PUT .../dist-tags/{tag} "version": the version must be one the caller may
 * read; a new tag needs write on the package, moving a tag that names
 * another version delete (it replaces the tag).
 */
static void npm__tag_put_done(struct http_req *r)
{
    struct npm_ctx *n = r->hctx;
    json_t *doc = npm__body_json(r, n, HTTP_JSON_BODY_MAX);
    if (!doc)
        return;
    if (!json_is_string(doc)) {
        http_error(r, 400, "the body must be a JSON string: the version");
        return;
    }
    const char *tag = n->tail + strlen("dist-tags/"), *ver = json_string_value(doc);
    struct npm_package p;
    if (!npm__load_visible(r, n, &p))
        return;
    bool known = false;
    for (int i = 0; i < p.nv && !known; i++)
        known = !strcmp(p.v[i].version, ver);
    if (!known) {
        http_error(r, 404, "no version %s of %s", ver, n->name);
        return;
    }
    bool replace = http_may(r, n->repo, n->name, SEC_DELETE);
    int rc = npm_tag_set(r->ctx, n->repo, n->name, tag, ver, replace);
    if (rc == GR_ENOTFOUND)
        http_error(r, 404, "no version %s of %s", ver, n->name);
    else if (rc == GR_EEXIST)
        http_error(r, 403,
                   "user '%s' has no delete permission on '%s/%s': the tag '%s' names another"
                   " version, and moving it replaces it",
                   r->user.name, n->repo, n->name, tag);
    else if (rc)
        npm__err(r, rc, n->name);
    else
        npm__ok(r, 201);
}

static bool npm__rclass(const struct npm_ctx *n, const char *rclass);
/* Read on the package here; through a virtual repository, on the members that have it
 * (checked as they are asked). false: refused (answered). */
static bool npm__need_read(struct http_req *r, struct npm_ctx *n);
static bool npm__foreign_doc(struct http_req *r, struct npm_ctx *n, bool abbreviated, json_t **out);
static void npm__read_only(struct http_req *r, struct npm_ctx *n);

static void npm__dist_tags(struct http_req *r, struct npm_ctx *n)
{
    const char *tag = NULL;
    r->repo_key = n->repo; /* permission targets see the package as the path <name> */
    r->path = gr_arena_strdup(r->arena, n->name);
    if (!strncmp(n->tail, "dist-tags/", 10) && n->tail[10])
        tag = npm_unescape(r->arena, n->tail + 10, strlen(n->tail + 10));
    else if (strcmp(n->tail, "dist-tags") && strcmp(n->tail, "dist-tags/")) {
        http_error(r, 404, "no such npm api");
        return;
    }
    if (!tag || !*tag || strchr(tag, '/')) {
        if (tag || r->method != HM_GET) {
            http_error(r, tag ? 400 : 405, tag ? "bad tag" : "name a tag");
            return;
        }
        if (!npm__need_read(r, n))
            return;
        json_t *doc = NULL;
        if (!npm__rclass(n, "local")) {
            if (!npm__foreign_doc(r, n, true, &doc))
                return;
        } else {
            struct npm_package p;
            if (!npm__load_visible(r, n, &p))
                return;
            doc = npm_packument(&p, "", true);
        }
        json_t *tags = json_incref(json_object_get(doc, "dist-tags"));
        json_decref(doc);
        http_json(r, 200, tags);
        return;
    }
    n->tail = gr_arena_printf(r->arena, "dist-tags/%s", tag);
    if (!npm__rclass(n, "local")) {
        npm__read_only(r, n);
        return;
    }
    if (r->method == HM_PUT || r->method == HM_POST) {
        if (http_need_write(r))
            npm__read_body(r, n, HTTP_JSON_BODY_MAX, npm__tag_put_done);
    } else if (r->method == HM_DELETE) {
        /* removing a tag removes content: delete on the package */
        if (!http_need_perm(r, n->repo, n->name, SEC_DELETE))
            return;
        if (!strcmp(tag, "latest")) {
            http_error(r, 400, "the latest tag cannot be removed");
            return;
        }
        int rc = npm_tag_set(r->ctx, n->repo, n->name, tag, NULL, true);
        if (rc) {
            npm__err(r, rc, tag);
            return;
        }
        http_audit(r, "delete", n->repo, n->name,
                   gr_arena_printf(r->arena, "npm dist-tag rm %s", tag));
        npm__ok(r, 200);
    } else {
        http_error(r, 405, "method %s not allowed on dist-tags", r->method_str);
    }
}

/* ---- users ---- */

/*
 * PUT /-/user/org.couchdb.user:{name}: a login as Basic authentication is
 * one (throttled, audited, the same cost for unknown names), answered with
 * a new access token of npm_token_lifetime seconds.
 */
static void npm__login_done(struct http_req *r, json_t *doc)
{
    const char *name = json_string_value(json_object_get(doc, "name"));
    const char *password = json_string_value(json_object_get(doc, "password"));
    if (!name || !password || !*name) {
        http_error(r, 400, "name and password required");
        return;
    }
    if (strlen(name) > NPM_LOGIN_NAME_MAX || strlen(password) > NPM_LOGIN_PASSWORD_MAX) {
        http_error(r, 400, "name (%d bytes) or password (%d bytes) too long", NPM_LOGIN_NAME_MAX,
                   NPM_LOGIN_PASSWORD_MAX);
        return;
    }
    if (!http_login_password(r, name, password, "npm login", true))
        return;
    char token[NPM_TOKEN_LEN + 1];
    int rc = npm_token_issue(r->ctx, r->user.name, npm__token_lifetime, token);
    if (rc == GR_ENOTFOUND) { /* a plugin realm's user: tokens belong to granary's users */
        http_error(r, 403, "npm tokens are issued to granary's users only, not to '%s'",
                   r->user.name);
        return;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    gr_info("req=%llu npm login of %s from %s", (unsigned long long)r->id, r->user.name, r->client);
    http_json(r, 201,
              json_pack("{s:b,s:s,s:s}", "ok", 1, "id",
                        gr_arena_printf(r->arena, "org.couchdb.user:%s", r->user.name), "token",
                        token));
}

/* A search hit is shown when the caller may read the package and the version shown. */
static bool npm__search_visible(void *arg, const char *name, const char *tarball_path)
{
    struct http_req *r = arg;
    return http_may(r, r->repo_key, name, SEC_READ) &&
           (!tarball_path || http_may(r, r->repo_key, tarball_path, SEC_READ));
}

static void npm__search(struct http_req *r, struct npm_ctx *n)
{
    const char *text = http_query(r, "text");
    const char *fs = http_query(r, "from"), *ss = http_query(r, "size");
    int from = fs ? atoi(fs) : 0, size = ss ? atoi(ss) : 20;
    if (from < 0)
        from = 0;
    if (size <= 0 || size > 250)
        size = 20;
    /* only what the caller may read (docs/security.md: search hides the rest) */
    unsigned have = 0;
    int rc = sec_effective_tree(r->ctx, r->arena, &r->user, n->repo, "", &have);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    r->repo_key = n->repo;
    json_t *rows;
    int total = 0;
    rc = npm_search(r->ctx, r->arena, n->repo, text ? text : "", from, size,
                    have & SEC_READ ? NULL : npm__search_visible, r, &rows, &total);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    json_t *objects = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        json_t *m = json_object_get(row, "manifest");
        char date[40];
        http_iso8601(json_integer_value(json_object_get(row, "modified_ms")), date, sizeof(date));
        json_t *pkg = json_pack("{s:O,s:O,s:s}", "name", json_object_get(row, "name"), "version",
                                json_object_get(row, "version"), "date", date);
        static const char *const keys[] = {"description", "author", "license"};
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
            if (json_object_get(m, keys[k]))
                json_object_set(pkg, keys[k], json_object_get(m, keys[k]));
        json_t *kw = json_object_get(m, "keywords");
        json_object_set_new(pkg, "keywords", json_is_array(kw) ? json_incref(kw) : json_array());
        /* npm search prints maintainers[].username */
        const char *by = json_string_value(json_object_get(row, "publisher"));
        json_object_set_new(pkg, "publisher", json_pack("{s:s}", "username", by ? by : ""));
        json_object_set_new(pkg, "maintainers", json_pack("[{s:s}]", "username", by ? by : ""));
        json_object_set_new(pkg, "links", json_object());
        json_array_append_new(objects,
                              json_pack("{s:o,s:{s:f,s:{s:f,s:f,s:f}},s:f}", "package", pkg,
                                        "score", "final", 1.0, "detail", "quality", 1.0,
                                        "popularity", 1.0, "maintenance", 1.0, "searchScore", 1.0));
    }
    char now[40];
    http_iso8601((int64_t)time(NULL) * 1000, now, sizeof(now));
    http_json(r, 200, json_pack("{s:o,s:i,s:s}", "objects", objects, "total", total, "time", now));
}

static void npm__audit_done(struct http_req *r)
{
    http_json(r, 200, json_object());
}

static int npm__drain(struct http_req *r, const char *data, size_t len)
{
    (void)r, (void)data, (void)len;
    return GR_OK;
}

/* /-/... routes that name no package. true when handled. */
static bool npm__special(struct http_req *r, struct npm_ctx *n, const char *rest)
{
    if (!strcmp(rest, "-/whoami")) {
        if (r->user.anonymous)
            http_error(r, 401, "not logged in");
        else
            http_json(r, 200, json_pack("{s:s}", "username", r->user.name));
        return true;
    }
    if (!strcmp(rest, "-/ping")) {
        http_json(r, 200, json_object());
        return true;
    }
    if (!strcmp(rest, "-/v1/login")) {
        http_error(r, 404, "web login is not supported: use the legacy login");
        return true;
    }
    if (!strncmp(rest, "-/user/", 7)) {
        if (r->method != HM_PUT) {
            http_error(r, 404, "no such user api");
            return true;
        }
        http_read_json_body(r, npm__login_done);
        return true;
    }
    if (!strcmp(rest, "-/v1/search")) {
        if (http_need_read(r))
            npm__search(r, n);
        return true;
    }
    if (!strncmp(rest, "-/npm/v1/security/", 18)) {
        /* audits: nothing known, nothing to report */
        if (r->method == HM_POST) {
            r->on_body = npm__drain;
            r->on_end = npm__audit_done;
        } else {
            http_json(r, 200, json_object());
        }
        return true;
    }
    if (!strncmp(rest, "-/package/", 10)) {
        if (npm_split_name(r->arena, rest + 10, &n->name, &n->tail)) {
            http_error(r, 400, "invalid package name");
            return true;
        }
        npm__dist_tags(r, n);
        return true;
    }
    if (!strncmp(rest, "-/", 2)) {
        http_error(r, 404, "no such npm api: %s", rest);
        return true;
    }
    return false;
}

/* Authenticate a Bearer token issued by npm login. false: an answer was sent. */
static bool npm__bearer(struct http_req *r)
{
    const char *auth = http_req_header(r, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7))
        return true;
    const char *tok = auth + 7;
    while (*tok == ' ')
        tok++;
    int rc = npm_token_check(r->ctx, tok, &r->user);
    if (rc == GR_OK) {
        r->user.anonymous = false;
        return true;
    }
    if (rc == GR_EAUTH)
        http_error(r, 401, "unknown or revoked token");
    else
        http_error_code(r, rc, NULL);
    return false;
}

/* ---- remote and virtual npm repositories (docs/remote.md) ---- */

/* Where a remote npm repository keeps a package's packument (Artifactory's place). */
static const char *npm__doc_path(struct gr_arena *a, const char *name)
{
    return gr_arena_printf(a, ".npm/%s/package.json", name);
}

static bool npm__rclass(const struct npm_ctx *n, const char *rclass)
{
    return !strcmp(n->cfg.rclass, rclass);
}

static bool npm__need_read(struct http_req *r, struct npm_ctx *n)
{
    return npm__rclass(n, "virtual") || http_need_read(r);
}

/* A local member's packument for a merge (npm_packument of its rows). */
static int npm__local_doc(struct http_req *r, const struct repo_config *member, const char *path,
                          char **doc, size_t *len)
{
    size_t pl = strlen(path), hl = strlen(".npm/"), tl = strlen("/package.json");
    if (pl <= hl + tl)
        return GR_ENOTFOUND;
    const char *name = gr_arena_strndup(r->arena, path + hl, pl - hl - tl);
    struct npm_package p;
    int rc = npm_package_get(r->ctx, r->arena, member->key, name, &p);
    if (rc)
        return rc;
    json_t *j = npm_packument(&p, "", false);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s)
        return GR_ENOMEM;
    *len = strlen(s);
    *doc = gr_arena_strdup(r->arena, s);
    free(s);
    return GR_OK;
}

struct npm__keep {
    struct http_req *r;
    struct npm_ctx *n;
};

/* A version is shown when the caller may read its tarball where it comes from. */
static bool npm__keep_version(void *arg, const char *member, const char *file)
{
    struct npm__keep *k = arg;
    const char *repo = member ? member : k->n->repo;
    if (npm__rclass(k->n, "virtual") && !member)
        return false;
    return http_may(k->r, repo, npm__tgz_path(k->r, k->n, file), SEC_READ);
}

/*
 * The packument of n->name in a remote (the upstream's, cached with the
 * time to live) or virtual repository (its members' merged), as the
 * caller may see it, tarballs pointing here. false: answered or suspended.
 */
static bool npm__foreign_doc(struct http_req *r, struct npm_ctx *n, bool abbreviated, json_t **out)
{
    const char *path = npm__doc_path(r->arena, n->name);
    char *doc = NULL;
    size_t len = 0;
    *out = NULL;
    if (npm__rclass(n, "remote")) {
        struct remote_spec spec;
        struct remote_result res;
        http_remote_spec(r, &n->cfg, path, &spec);
        if (!http_remote_doc(r, &n->cfg, path, &spec, &doc, &len, &res))
            return false;
        if (!doc && res.res == REMOTE_FAIL) {
            http_error(r, res.status, "%s: %s", n->name, res.reason);
            return false;
        }
    } else if (!http_virtual_merged(r, &n->cfg, &format_npm, path, n->name, npm__local_doc, &doc,
                                    &len)) {
        return false;
    }
    json_t *full = doc ? json_loadb(doc, len, 0, NULL) : NULL;
    if (!json_is_object(full)) {
        json_decref(full);
        if (doc)
            http_error(r, 502, "the packument of %s is not a JSON object", n->name);
        else
            npm__err(r, GR_ENOTFOUND, n->name);
        return false;
    }
    struct npm__keep k = {r, n};
    *out = npm_packument_shape(full, n->name, npm__tarball_base(r, n), abbreviated,
                               npm__keep_version, &k);
    size_t had = json_object_size(json_object_get(full, "versions"));
    json_decref(full);
    if (!*out) {
        http_error(r, 500, "out of memory");
        return false;
    }
    if (json_object_size(json_object_get(*out, "versions")) == 0 && had > 0) {
        json_decref(*out);
        *out = NULL;
        npm__err(r, GR_ENOTFOUND, n->name); /* every version hidden from this caller */
        return false;
    }
    return true;
}

/* GET /{name} or /{name}/{version|tag} of a remote or virtual repository. */
static void npm__foreign_get(struct http_req *r, struct npm_ctx *n, const char *spec)
{
    bool ab = !spec && npm__wants_abbreviated(r);
    json_t *doc;
    if (!npm__foreign_doc(r, n, ab, &doc))
        return;
    if (!spec) {
        npm__send_doc(r, doc, ab ? NPM_ABBREV_TYPE : "application/json");
        return;
    }
    const char *tagged =
        json_string_value(json_object_get(json_object_get(doc, "dist-tags"), spec));
    json_t *v = json_object_get(json_object_get(doc, "versions"), tagged ? tagged : spec);
    if (!v) {
        json_decref(doc);
        http_error(r, 404, "no such version: %s@%s", n->name, spec);
        return;
    }
    json_incref(v);
    json_decref(doc);
    npm__send_doc(r, v, "application/json");
}

/* A write to a remote repository, or to a virtual one (other than a publish). */
static void npm__read_only(struct http_req *r, struct npm_ctx *n)
{
    http_error(r, 405, "%s repository '%s' is read-only here: publish to a local repository",
               n->cfg.rclass, n->repo);
}

/*
 * A publish to a virtual repository goes to its defaultDeploymentRepo:
 * n becomes that repository. false: answered (405 without one).
 */
static bool npm__to_deploy_repo(struct http_req *r, struct npm_ctx *n)
{
    struct virtual_settings vs;
    virtual_settings_read(r->arena, &n->cfg, &vs);
    struct repo_config t;
    int rc = *vs.deploy ? repo_get(r->ctx, r->arena, vs.deploy, &t) : GR_ENOTFOUND;
    if (rc == GR_ENOTFOUND || (rc == GR_OK && strcmp(t.rclass, "local"))) {
        http_error(r, 405,
                   "virtual repository '%s' has no defaultDeploymentRepo: publish to a"
                   " local repository",
                   n->repo);
        return false;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return false;
    }
    n->cfg = t;
    n->repo = gr_arena_strdup(r->arena, t.key);
    r->repo_key = n->repo;
    return true;
}

/* The remote_sums hook: a tarball's dist.shasum and dist.integrity from the cached packument. */
void npm_remote_sums(struct remote_upstream *up, struct repo_ctx *ctx, struct gr_arena *a,
                     const char *repo, const char *path, struct remote_sums *out)
{
    (void)up;
    const char *sep = strstr(path, "/-/");
    if (!sep)
        return;
    const char *name = gr_arena_strndup(a, path, (size_t)(sep - path)), *file = sep + 3;
    struct artifact art;
    struct gr_sbuf sb = GR_SBUF_INIT;
    if (artifact_get(ctx, a, repo, npm__doc_path(a, name), &art) != GR_OK ||
        art.size > NPM_DOC_MAX ||
        storage_read_all(ctx->storage, art.sha256, art.size, npm__sb_chunk, &sb) != GR_OK) {
        gr_sbuf_release(&sb);
        return; /* no packument cached: nothing to compare with */
    }
    json_t *doc = json_loadb(sb.buf ? sb.buf : "", sb.len, 0, NULL);
    gr_sbuf_release(&sb);
    const char *ver;
    json_t *m;
    json_object_foreach(json_object_get(doc, "versions"), ver, m)
    {
        json_t *dist = json_object_get(m, "dist");
        const char *f = npm_tarball_file(json_string_value(json_object_get(dist, "tarball")));
        if (!f || strcmp(f, file))
            continue;
        const char *sha1 = json_string_value(json_object_get(dist, "shasum"));
        const char *sri = json_string_value(json_object_get(dist, "integrity"));
        if (sha1 && strlen(sha1) == 40)
            for (int i = 0; i < 41; i++)
                out->sha1[i] = (char)tolower((unsigned char)sha1[i]);
        const char *b64 = sri ? npm__sri_sha512(a, sri) : NULL;
        unsigned char raw[64 + 3];
        size_t got = 0;
        struct npm_b64 st = {0};
        if (b64 && strlen(b64) <= 88 && npm_b64_decode(&st, b64, strlen(b64), raw, &got) == GR_OK &&
            got == 64)
            for (int i = 0; i < 64; i++)
                snprintf(out->sha512 + 2 * i, 3, "%02x", raw[i]);
        break;
    }
    json_decref(doc);
}

/* Routes below a package name. */
static void npm__package(struct http_req *r, struct npm_ctx *n)
{
    const char *t = n->tail;
    /* permission targets see a package as the path <name>, its versions as
     * their tarballs' paths (see "who may do what" above) */
    r->repo_key = n->repo;
    r->path = gr_arena_strdup(r->arena, n->name);
    bool local = npm__rclass(n, "local");
    if (!local && r->method == HM_PUT && !*t && npm__rclass(n, "virtual")) {
        if (!npm__to_deploy_repo(r, n)) /* a publish through a virtual repository */
            return;
        local = true;
    }
    if (!local && r->method != HM_GET && r->method != HM_HEAD) {
        npm__read_only(r, n);
        return;
    }
    if (!*t) {
        if (r->method == HM_GET || r->method == HM_HEAD) {
            if (npm__need_read(r, n)) {
                if (local)
                    npm__packument_get(r, n);
                else
                    npm__foreign_get(r, n, NULL);
            }
        } else if (r->method == HM_PUT) {
            /* a publish or a deprecation: write here, the rest once the body is in */
            if (http_need_write(r))
                npm__read_body(r, n, NPM_BODY_MAX, npm__put_done);
        } else {
            http_error(r, 405, "method %s not allowed on a package", r->method_str);
        }
        return;
    }
    if (!strncmp(t, "-rev/", 5)) {
        /* unpublish: of the whole package, delete on everything below it
         * (perm.c's folder rule); of versions, delete on the package here and
         * on each version removed once the body is in */
        if (r->method == HM_DELETE ? !http_need_delete(r)
                                   : !http_need_perm(r, n->repo, n->name, SEC_DELETE))
            return;
        if (r->method == HM_PUT) {
            npm__read_body(r, n, NPM_DOC_MAX, npm__rev_put_done);
        } else if (r->method == HM_DELETE) {
            int rc =
                npm_delete_package(r->ctx, n->repo, n->name, t[5] ? t + 5 : NULL, r->user.name);
            if (rc)
                npm__err(r, rc, n->name);
            else
                npm__ok(r, 200);
        } else {
            http_error(r, 405, "method %s not allowed here", r->method_str);
        }
        return;
    }
    if (!strncmp(t, "-/", 2)) {
        const char *f = t + 2;
        const char *revp = strstr(f, "/-rev/");
        char *file = npm_unescape(r->arena, f, revp ? (size_t)(revp - f) : strlen(f));
        if (!file || !*file || strchr(file, '/') || file[0] == '.') {
            http_error(r, 404, "no such tarball");
            return;
        }
        r->repo_key = n->repo;
        r->path = gr_arena_printf(r->arena, "%s/-/%s", n->name, file);
        r->trailing_slash = false;
        r->matrix = NULL;
        if (revp) {
            /* npm unpublish: the version's tarball went with its version */
            if (r->method != HM_DELETE) {
                http_error(r, 405, "method %s not allowed here", r->method_str);
                return;
            }
            if (http_need_perm(r, n->repo, r->path, SEC_DELETE))
                npm__ok(r, 200);
            return;
        }
        if (r->method != HM_GET && r->method != HM_HEAD) {
            http_error(r, 405, "tarballs are published with the package document");
            return;
        }
        if (local)
            http_artifact_generic(r, &n->cfg); /* sendfile from the blob store, ETag, ranges */
        else if (http_need_read(r) && npm__rclass(n, "remote"))
            http_remote_file(r, &n->cfg, r->path); /* cached, or fetched once */
        else if (npm__rclass(n, "virtual"))
            http_virtual_file(r, &n->cfg, r->path); /* the first member that has it */
        return;
    }
    if (!strchr(t, '/') && (r->method == HM_GET || r->method == HM_HEAD)) {
        if (!npm__need_read(r, n))
            return;
        if (local) {
            npm__version_get(r, n);
            return;
        }
        const char *spec = npm_unescape(r->arena, t, strlen(t));
        if (!spec) {
            http_error(r, 400, "bad version");
            return;
        }
        npm__foreign_get(r, n, spec);
        return;
    }
    http_error(r, 404, "no such npm api");
}

/* npm prints only an error document's "error" member: give it the message too. */
static void npm__error_doc(struct http_req *r, json_t *doc, int status, const char *msg)
{
    (void)r, (void)status;
    json_object_set_new(doc, "error", json_string(msg));
}

void npm_api(struct http_req *r, const char *sub)
{
    r->error_doc = npm__error_doc;
    struct npm_ctx *n = gr_arena_calloc(r->arena, sizeof(*n));
    size_t kl = strcspn(sub, "/?");
    n->repo = gr_arena_strndup(r->arena, sub, kl);
    if (repo_key_check(n->repo) != GR_OK) {
        http_error(r, 404, "no such repository");
        return;
    }
    const char *rest = sub + kl;
    if (*rest == '/')
        rest++;
    const char *q = strchr(rest, '?');
    if (q)
        rest = gr_arena_strndup(r->arena, rest, (size_t)(q - rest));
    if (!npm__bearer(r))
        return;
    int rc = repo_get(r->ctx, r->arena, n->repo, &n->cfg);
    if (rc == GR_ENOTFOUND || (rc == GR_OK && strcmp(n->cfg.package_type, "npm"))) {
        if (r->user.anonymous && !http_need_read(r))
            return;
        http_error(r, 404, "no npm repository '%s'", n->repo);
        return;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    if (npm__special(r, n, rest))
        return;
    if (!*rest) {
        http_json(r, 200, json_pack("{s:s}", "db_name", n->repo));
        return;
    }
    if (npm_split_name(r->arena, rest, &n->name, &n->tail)) {
        http_error(r, 400, "invalid package name");
        return;
    }
    npm__package(r, n);
}
