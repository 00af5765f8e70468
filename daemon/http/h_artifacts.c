/*
 * h_artifacts.c - /<repo>/<path>: download (every block checked), deploy (streamed,
 * hashed in one pass), deploy by checksum, delete, folder listings.
 */
#include "http/blobsend.h"
#include "http/h_plugins.h"
#include "http/range.h"
#include "http/remote.h"
#include "http/req.h"

#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "crypto/crypto.h"
#include "formats/format.h"
#include "repo/ingest.h"
#include "storage/storage.h"

#include <microhttpd.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

json_t *http_artifact_json(struct http_req *r, const struct artifact *a, bool full)
{
    char created[40], modified[40], updated[40];
    http_iso8601(a->created_ms, created, sizeof(created));
    http_iso8601(a->modified_ms, modified, sizeof(modified));
    http_iso8601(a->updated_ms, updated, sizeof(updated));
    struct gr_sbuf enc = GR_SBUF_INIT;
    gr_sbuf_add_urlpath(&enc, a->path);
    const char *base = http_base_url(r);
    json_t *doc = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s},s:{s:s,s:s,s:s},s:s}", "repo", a->repo,
        "path", gr_arena_printf(r->arena, "/%s", a->path), "created", created, "createdBy",
        a->created_by, "downloadUri", gr_arena_printf(r->arena, "%s/%s/%s", base, a->repo, enc.buf),
        "mimeType", http_mime_type(a->path), "size",
        gr_arena_printf(r->arena, "%llu", (unsigned long long)a->size), "checksums", "sha1",
        a->sha1, "md5", a->md5, "sha256", a->sha256, "originalChecksums", "sha1", a->sha1, "md5",
        a->md5, "sha256", a->sha256, "uri",
        gr_arena_printf(r->arena, "%s/api/storage/%s/%s", base, a->repo, enc.buf));
    if (full) {
        json_object_set_new(doc, "lastModified", json_string(modified));
        json_object_set_new(doc, "modifiedBy", json_string(a->modified_by));
        json_object_set_new(doc, "lastUpdated", json_string(updated));
    }
    gr_sbuf_release(&enc);
    return doc;
}

/* A checksum header: absent, or a well-formed hex digest of n chars (lowercased). */
static bool artifacts__checksum_header(struct http_req *r, const char *name, size_t n,
                                       const char **out)
{
    const char *v = http_req_header(r, name);
    *out = NULL;
    if (!v)
        return true;
    if (strlen(v) != n) {
        http_error(r, 400, "%s must be %zu hex characters", name, n);
        return false;
    }
    char *low = gr_arena_strdup(r->arena, v);
    for (char *p = low; *p; p++) {
        if (!isxdigit((unsigned char)*p)) {
            http_error(r, 400, "%s must be hex", name);
            return false;
        }
        *p = (char)tolower((unsigned char)*p);
    }
    *out = low;
    return true;
}

static void artifacts__commit(struct http_req *r, struct artifact *a)
{
    a->repo = r->repo_key;
    a->path = r->path;
    a->modified_by = r->user.name;
    a->matrix = r->matrix;
    int rc = artifact_put(r->ctx, r->arena, a);
    if (rc == GR_ENOTFOUND) {
        http_error(r, 404, "repository '%s' not found", r->repo_key);
        return;
    }
    if (rc == GR_EINVAL) {
        http_error(r, 400, "malformed matrix parameters: expected ;key=value[;key=value...]");
        return;
    }
    if (rc == GR_EUNAVAIL) {
        http_error(r, 503, "too few nodes could store a copy of the upload; try again");
        return;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    if (r->deploy.done)
        r->deploy.done(r, a);
    http_plug_after_upload(r, a); /* plugins (h_plugins.c) */
    http_json(r, 201, http_artifact_json(r, a, false));
}

static int artifacts__put_chunk(struct http_req *r, const char *data, size_t len)
{
    uint64_t max = r->srv->opt.max_body_size;
    if (max && r->body_bytes > max)
        return GR_ETOOBIG;
    if (r->deploy.tap)
        r->deploy.tap(r, data, len);
    return ingest_write(r->hctx, data, len);
}

static void artifacts__put_end(struct http_req *r)
{
    struct ingest *in = r->hctx;
    if (r->body_error) {
        if (r->body_error == GR_ETOOBIG)
            http_error(r, 413, "body larger than the limit of %llu bytes",
                       (unsigned long long)r->srv->opt.max_body_size);
        else
            http_error_code(r, r->body_error, "cannot store the upload");
        return;
    }
    struct artifact a = {0};
    ingest_finish(in, &a);
    const char *want256, *want1, *wantmd5;
    if (!artifacts__checksum_header(r, "X-Checksum-Sha256", 64, &want256) ||
        !artifacts__checksum_header(r, "X-Checksum-Sha1", 40, &want1) ||
        !artifacts__checksum_header(r, "X-Checksum-Md5", 32, &wantmd5))
        return;
    const char *bad = want256 && strcmp(want256, a.sha256) ? "sha256"
                      : want1 && strcmp(want1, a.sha1)     ? "sha1"
                      : wantmd5 && strcmp(wantmd5, a.md5)  ? "md5"
                                                           : NULL;
    if (bad) {
        http_error(r, 409, "checksum mismatch: the %s sent differs from the content's (%s)", bad,
                   !strcmp(bad, "sha256") ? a.sha256
                   : !strcmp(bad, "sha1") ? a.sha1
                                          : a.md5);
        return;
    }
    if (r->deploy.check && !r->deploy.check(r, &a))
        return; /* the arena cleanup aborts the upload */
    char rid[24];
    snprintf(rid, sizeof(rid), "%llu", (unsigned long long)r->id);
    int rc = ingest_replicate(in, rid, &a);
    if (rc) {
        const char *prov = storage_provider_name(r->ctx->storage);
        http_error_code(r, rc,
                        rc != GR_EUNAVAIL        ? "cannot store the upload"
                        : !strcmp(prov, "local") ? "too few nodes could store a copy; try again"
                        : !strcmp(prov, "s3")
                            ? "the S3 store did not take the upload (it is down or refused"
                              " granary's credentials); try again"
                            : "the shared store did not take the upload; try again");
        return;
    }
    artifacts__commit(r, &a);
}

static void artifacts__deploy_by_checksum(struct http_req *r)
{
    const char *s256, *s1, *md5;
    if (!artifacts__checksum_header(r, "X-Checksum-Sha256", 64, &s256) ||
        !artifacts__checksum_header(r, "X-Checksum-Sha1", 40, &s1) ||
        !artifacts__checksum_header(r, "X-Checksum-Md5", 32, &md5))
        return;
    if (!s256 && !s1) {
        http_error(r, 400, "checksum deploy needs X-Checksum-Sha256 or X-Checksum-Sha1");
        return;
    }
    struct artifact a = {0};
    const struct sec_perms *perms;
    int rc = http_perms(r, &perms);
    /* only a binary the caller can already read: a checksum is not a credential */
    if (rc == GR_OK)
        rc = artifact_find_binary(r->ctx, s256, s256 ? NULL : s1, perms, &a);
    if (rc == GR_ENOTFOUND) {
        http_error(r, 404, "checksum deploy failed: no binary with that checksum");
        return;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    if ((s1 && strcmp(s1, a.sha1)) || (md5 && strcmp(md5, a.md5))) {
        http_error(r, 409, "checksum mismatch between the headers sent");
        return;
    }
    if (r->deploy.check && !r->deploy.check(r, &a))
        return;
    artifacts__commit(r, &a);
}

static void artifacts__put(struct http_req *r)
{
    if (r->trailing_slash || !*r->path) {
        http_error(r, 400, "cannot deploy to a folder path; name a file");
        return;
    }
    const char *cl = http_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t max = r->srv->opt.max_body_size;
    if (cl && max && strtoull(cl, NULL, 10) > max) {
        http_error(r, 413, "body of %s bytes is larger than the limit of %llu bytes", cl,
                   (unsigned long long)max);
        return;
    }
    if (!http_plug_before_upload(r)) /* plugins (h_plugins.c): may refuse, may add properties */
        return;
    const char *cd = http_req_header(r, "X-Checksum-Deploy");
    if (cd && !strcasecmp(cd, "true")) {
        artifacts__deploy_by_checksum(r);
        return;
    }
    struct ingest *in;
    int rc = ingest_begin(r->ctx, r->arena, &in);
    if (rc) {
        http_error_code(r, rc, "cannot start the upload");
        return;
    }
    r->hctx = in;
    r->on_body = artifacts__put_chunk;
    r->on_end = artifacts__put_end;
}

static void artifacts__listing(struct http_req *r, const struct folder_entry *v, int n)
{
    struct gr_sbuf sb = GR_SBUF_INIT, self = GR_SBUF_INIT;
    gr_sbuf_addf(&sb, "%s/%s/", r->base, r->repo_key);
    gr_sbuf_add_urlpath(&sb, r->path);
    if (*r->path)
        gr_sbuf_adds(&sb, "/");
    gr_sbuf_add(&self, sb.buf, sb.len);
    gr_sbuf_reset(&sb);
    gr_sbuf_adds(&sb, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ");
    gr_sbuf_add_html(&sb, r->repo_key);
    gr_sbuf_adds(&sb, "/");
    gr_sbuf_add_html(&sb, r->path);
    gr_sbuf_adds(&sb, "</title></head>\n<body><h1>Index of ");
    gr_sbuf_add_html(&sb, r->repo_key);
    gr_sbuf_adds(&sb, "/");
    gr_sbuf_add_html(&sb, r->path);
    gr_sbuf_adds(&sb, "</h1>\n<pre>");
    if (*r->path)
        gr_sbuf_adds(&sb, "<a href=\"../\">../</a>\n");
    for (int i = 0; i < n; i++) {
        char date[40];
        if (!http_may_entry(r, r->repo_key, r->path, v[i].name))
            continue; /* a listing shows only what the caller may read */
        http_iso8601(v[i].modified_ms, date, sizeof(date));
        gr_sbuf_adds(&sb, "<a href=\"");
        gr_sbuf_add_html(&sb, self.buf);
        struct gr_sbuf enc = GR_SBUF_INIT;
        gr_sbuf_add_urlpath(&enc, v[i].name);
        gr_sbuf_add_html(&sb, enc.buf);
        gr_sbuf_release(&enc);
        if (v[i].is_folder)
            gr_sbuf_adds(&sb, "/");
        gr_sbuf_adds(&sb, "\">");
        gr_sbuf_add_html(&sb, v[i].name);
        if (v[i].is_folder)
            gr_sbuf_addf(&sb, "/</a>  %s  -\n", date);
        else
            gr_sbuf_addf(&sb, "</a>  %s  %llu\n", date, (unsigned long long)v[i].size);
    }
    gr_sbuf_adds(&sb, "</pre></body></html>\n");
    http_text(r, 200, "text/html; charset=utf-8", sb.buf, sb.len);
    gr_sbuf_release(&sb);
    gr_sbuf_release(&self);
}

static void artifacts__folder(struct http_req *r)
{
    struct folder_entry *v = NULL;
    int n = 0;
    int rc = artifact_list_folder(r->ctx, r->arena, r->repo_key, r->path, &v, &n);
    if (rc == GR_ENOTFOUND)
        http_error(r, 404, "not found: %s/%s", r->repo_key, r->path);
    else if (rc)
        http_error_code(r, rc, NULL);
    else
        artifacts__listing(r, v, n);
}

/*
 * GET <path>.sha1|.sha256|.md5 of an artifact whose checksum file was never
 * deployed: answer from the stored checksums. false: not such a request.
 */
static bool artifacts__checksum_file(struct http_req *r)
{
    static const char *const exts[] = {".sha1", ".sha256", ".md5"};
    size_t n = strlen(r->path);
    for (int i = 0; i < 3; i++) {
        size_t el = strlen(exts[i]);
        if (n <= el || strcmp(r->path + n - el, exts[i]))
            continue;
        char *base = gr_arena_strndup(r->arena, r->path, n - el);
        struct artifact a;
        if (artifact_get(r->ctx, r->arena, r->repo_key, base, &a) != GR_OK)
            return false;
        const char *sum = i == 0 ? a.sha1 : i == 1 ? a.sha256 : a.md5;
        http_text(r, 200, "text/plain", sum, strlen(sum));
        return true;
    }
    return false;
}

static void artifacts__hot_release(void *cls)
{
    storage_hot_release(cls);
}

static ssize_t artifacts__no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls, (void)pos, (void)buf, (void)max;
    return MHD_CONTENT_READER_END_WITH_ERROR; /* never called for HEAD */
}

/*
 * The body of a download: this node's copy, every block verified before it
 * goes out (a small one read and checked in one go), or else a peer's. A
 * copy that fails before the answer starts is quarantined and the next
 * holder serves. NULL: an error answer was sent.
 */
struct MHD_Response *http_artifact_body(struct http_req *r, const struct artifact *a,
                                        uint64_t first, uint64_t len)
{
    if (r->method == HM_HEAD) /* only the length matters */
        return MHD_create_response_from_callback(len, 4096, artifacts__no_body, NULL, NULL);
    struct storage_hot *hot = NULL;
    const char *bytes = storage_hot_get(r->ctx->storage, a->sha256, a->size, &hot);
    if (bytes) { /* read and checked before, and still this node's copy */
        struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback_cls(
            len, (void *)(bytes + first), artifacts__hot_release, hot);
        if (resp) {
            r->sent_bytes += len;
            return resp;
        }
        storage_hot_release(hot);
    }
    struct bs_blob *blob = NULL;
    int rc = storage_open_local(r->ctx->storage, a->sha256, &blob);
    /* else a copy of a peer's, read here before (the peer cache; a bad one
     * is dropped by storage_bad_local_copy) */
    if (rc == GR_ENOTFOUND && storage_open_cached(r->ctx->storage, a->sha256, &blob) == GR_OK)
        rc = GR_OK;
    if (rc == GR_OK && storage_blob_size(blob) != a->size) {
        storage_blob_close(blob);
        storage_bad_local_copy(r->ctx->storage, a->sha256, "wrong size");
        rc = GR_ENOTFOUND;
    }
    if (rc == GR_OK && len <= HTTP_SMALL_BODY) {
        /* small: one verified read, sent with the headers */
        char *buf = malloc(len ? len : 1);
        long got = buf ? storage_blob_read(blob, first, buf, len) : GR_ENOMEM;
        if (got == (long)len && first == 0 && len == a->size)
            storage_hot_put(r->ctx->storage, blob, a->sha256, buf, len);
        storage_blob_close(blob);
        if (got == (long)len) {
            r->sent_bytes += len;
            return MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
        }
        free(buf);
        if (got == GR_ECORRUPT)
            storage_bad_local_copy(r->ctx->storage, a->sha256, "block checksum mismatch");
        rc = GR_ENOTFOUND;
    } else if (rc == GR_OK) {
        if (http_blob_check_first(r, blob, a->sha256, first, len) == 0)
            return http_blob_local_response(r, blob, a->sha256, first, len);
        storage_blob_close(blob);
        rc = GR_ENOTFOUND;
    }
    if (rc == GR_ENOTFOUND) {
        char rid[24], range[64];
        snprintf(rid, sizeof(rid), "%llu", (unsigned long long)r->id);
        snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)first,
                 (unsigned long long)(first + len - 1));
        bool whole = first == 0 && len == a->size;
        struct storage_remote *rem = NULL;
        if (len == 0) /* nothing to fetch */
            return MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        rc = storage_open_remote(r->ctx->storage, a->sha256, a->size, whole ? NULL : range,
                                 gr_arena_strdup(r->arena, rid), &rem);
        if (rc == GR_OK)
            return http_blob_remote_response(r, rem, len);
    }
    gr_error("req=%llu no node could serve binary %s of %s/%s: %s", (unsigned long long)r->id,
             a->sha256, r->repo_key, r->path, gr_strerror(rc));
    http_error(r, 503, "no good copy of this artifact's binary is reachable; try again");
    return NULL;
}

static void artifacts__get(struct http_req *r)
{
    if (r->trailing_slash || !*r->path) {
        artifacts__folder(r);
        return;
    }
    struct artifact a;
    int rc = artifact_get(r->ctx, r->arena, r->repo_key, r->path, &a);
    if (rc == GR_ENOTFOUND) {
        if (!artifacts__checksum_file(r))
            artifacts__folder(r);
        return;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    http_artifact_send(r, &a);
}

bool http_artifact_checksum(struct http_req *r)
{
    return artifacts__checksum_file(r);
}

void http_artifact_send(struct http_req *r, const struct artifact *ap)
{
    struct artifact a = *ap;
    if (!http_plug_before_download(r, &a)) /* plugins (h_plugins.c): refused or answered */
        return;
    char etag[48], lm[40];
    snprintf(etag, sizeof(etag), "\"%s\"", a.sha1);
    http_date(a.modified_ms, lm, sizeof(lm));
    struct MHD_Response *resp;
    int status = 200;
    if (http_not_modified(r, etag, a.modified_ms)) {
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        status = 304;
    } else {
        uint64_t size = a.size, first = 0, last = 0;
        const char *range = http_req_header(r, MHD_HTTP_HEADER_RANGE);
        const char *if_range = http_req_header(r, MHD_HTTP_HEADER_IF_RANGE);
        if (if_range && strcmp(if_range, etag) && strcmp(if_range, lm))
            range = NULL; /* the client's copy is stale: send it all */
        enum http_range_result rr = http_range_parse(range, size, &first, &last);
        if (rr == HTTP_RANGE_UNSATISFIABLE) {
            char cr[48];
            snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)size);
            json_t *doc = json_pack("{s:[{s:i,s:s}]}", "errors", "status", 416, "message",
                                    "range not satisfiable");
            char *body = json_dumps(doc, JSON_COMPACT);
            json_decref(doc);
            resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
            http_send(r, 416, resp);
            return;
        }
        if (rr == HTTP_RANGE_OK)
            status = 206;
        uint64_t len = rr == HTTP_RANGE_OK ? last - first + 1 : size;
        resp = http_artifact_body(r, &a, first, len);
        if (!resp)
            return; /* answered */
        if (rr == HTTP_RANGE_OK) {
            char cr[80];
            snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)first,
                     (unsigned long long)last, (unsigned long long)size);
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    }
    http_download_headers(r, resp, r->path);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, lm);
    MHD_add_response_header(resp, "X-Checksum-Sha1", a.sha1);
    MHD_add_response_header(resp, "X-Checksum-Sha256", a.sha256);
    MHD_add_response_header(resp, "X-Checksum-Md5", a.md5);
    const char *slash = strrchr(r->path, '/');
    MHD_add_response_header(resp, "X-Artifactory-Filename", slash ? slash + 1 : r->path);
    http_send(r, status, resp);
    http_plug_after_download(r, &a, status); /* plugins (h_plugins.c) */
}

void h_artifact(struct http_req *r, const char *rest)
{
    if (!http_parse_repo_path(r, rest, strlen(rest)))
        return;
    struct repo_config cfg;
    int rc = repo_get(r->ctx, r->arena, r->repo_key, &cfg);
    if (rc == GR_ENOTFOUND) {
        /* do not tell anonymous callers which repositories exist */
        if (r->user.anonymous && !http_need_read(r))
            return;
        http_error(r, 404, "repository '%s' not found", r->repo_key);
        return;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    const struct format *f = http_format(r, cfg.package_type);
    if (!strcmp(cfg.rclass, "remote"))
        http_remote_artifact(r, &cfg, f); /* h_remote.c */
    else if (!strcmp(cfg.rclass, "virtual"))
        http_virtual_artifact(r, &cfg, f);
    else if (f && f->artifact)
        f->artifact(r, &cfg); /* the format's rules, then http_artifact_generic() */
    else
        http_artifact_generic(r, &cfg);
}

void http_artifact_generic(struct http_req *r, const struct repo_config *cfg)
{
    int rc;
    (void)cfg;
    switch (r->method) {
    case HM_GET:
    case HM_HEAD:
        if (http_need_read(r))
            artifacts__get(r);
        return;
    case HM_PUT:
        if (http_need_deploy(r))
            artifacts__put(r);
        return;
    case HM_DELETE:
        if (!http_need_delete(r) || !http_plug_before_delete(r)) /* plugins: h_plugins.c */
            return;
        rc = artifact_delete(r->ctx, r->repo_key, r->path, r->user.name);
        if (rc == GR_ENOTFOUND)
            http_error(r, 404, "not found: %s/%s", r->repo_key, r->path);
        else if (rc)
            http_error_code(r, rc, NULL);
        else
            http_text(r, 204, NULL, "", 0);
        if (rc == GR_OK)
            http_plug_after_delete(r);
        return;
    default:
        http_error(r, 405, "method %s not allowed on artifacts", r->method_str);
    }
}

void h_root(struct http_req *r, const char *rest)
{
    (void)rest;
    if (r->method != HM_GET && r->method != HM_HEAD) {
        http_error(r, 405, "method %s not allowed here", r->method_str);
        return;
    }
    if (http_ui_redirect(r)) /* a browser: the web UI; API clients get the listing */
        return;
    if (!http_need_read(r))
        return;
    struct repo_config *v;
    int n;
    int rc = repo_list(r->ctx, r->arena, &v, &n);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    struct gr_sbuf sb = GR_SBUF_INIT;
    gr_sbuf_adds(&sb, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>granary</title>"
                      "</head>\n<body><h1>Repositories</h1>\n<pre>");
    for (int i = 0; i < n; i++) {
        if (!http_repo_visible(r, v[i].key))
            continue;
        gr_sbuf_addf(&sb, "<a href=\"%s/", r->base);
        gr_sbuf_add_html(&sb, v[i].key);
        gr_sbuf_adds(&sb, "/\">");
        gr_sbuf_add_html(&sb, v[i].key);
        gr_sbuf_adds(&sb, "/</a>  ");
        gr_sbuf_add_html(&sb, v[i].package_type);
        gr_sbuf_adds(&sb, "\n");
    }
    gr_sbuf_adds(&sb, "</pre></body></html>\n");
    http_text(r, 200, "text/html; charset=utf-8", sb.buf, sb.len);
    gr_sbuf_release(&sb);
}
