/*
 * h_remote.c - /<repo>/<path> of a remote repository (docs/remote.md): a
 * GET serves the cached copy, or the bytes of the one fetch the cluster
 * makes as they arrive, or waits for another node's fetch (suspended: no
 * thread held) and then serves what it stored. <key>-cache shows the
 * cached files only; deleting one makes the next GET fetch it again.
 */
#include "http/blobsend.h"
#include "http/remote.h"

#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "formats/format.h"
#include "storage/storage.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REMOTE_DOC_MAX (64u * 1024 * 1024) /* a metadata document read whole */

void http_remote_spec(struct http_req *r, const struct repo_config *cfg, const char *path,
                      struct remote_spec *spec)
{
    struct gr_sbuf up = GR_SBUF_INIT;
    gr_sbuf_add_urlpath(&up, path);
    *spec = (struct remote_spec){
        .kind = REMOTE_FILE,
        .upath = gr_arena_strdup(r->arena, up.buf ? up.buf : ""),
        .user = r->user.name,
    };
    gr_sbuf_release(&up);
    const struct format *f = http_format(r, cfg->package_type);
    if (f && f->remote_spec)
        f->remote_spec(r->arena, path, spec);
}

static void remote__put_flight(void *arg)
{
    remote_flight_put(arg);
}

bool http_remote_find(struct http_req *r, const struct repo_config *cfg, const char *path,
                      const struct remote_spec *spec, struct remote_result *res)
{
    struct remote *rm = r->ctx->remote;
    if (r->stopping || !rm) {
        http_error(r, 503, "node is stopping");
        return false;
    }
    if (!r->remote && !(r->remote = remote_req_new(r->arena))) {
        http_error(r, 500, "out of memory");
        return false;
    }
    int rc = remote_lookup(rm, r->arena, r->remote, cfg, path, spec, res);
    if (rc) {
        http_error_code(r, rc, NULL);
        return false;
    }
    if (res->res == REMOTE_WAIT) {
        http_suspend(r);
        if (!remote_wait(rm, r->remote, http_resume, r)) {
            r->stopping = true; /* the node stops: the handler runs again and answers 503 */
            http_resume(r);
        }
        return false;
    }
    if (res->flight)
        gr_arena_cleanup(r->arena, remote__put_flight, res->flight);
    return true;
}

static ssize_t remote__no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls, (void)pos, (void)buf, (void)max;
    return MHD_CONTENT_READER_END_WITH_ERROR; /* never called for HEAD */
}

/* The bytes of a fetch of this node as they arrive: 200, no checksum headers (not known yet). */
static void remote__answer_flight(struct http_req *r, const char *path, struct remote_flight *f)
{
    uint64_t len;
    const char *ctype;
    remote_flight_info(f, &len, &ctype);
    struct MHD_Response *resp =
        r->method == HM_HEAD
            ? MHD_create_response_from_callback(len == UINT64_MAX ? MHD_SIZE_UNKNOWN : len, 4096,
                                                remote__no_body, NULL, NULL)
            : http_flight_response(r, remote_flight_ref(f), len);
    if (!resp) {
        http_error(r, 500, "out of memory");
        return;
    }
    http_download_headers(r, resp, path);
    const char *slash = strrchr(path, '/');
    http_header(resp, "X-Artifactory-Filename", slash ? slash + 1 : path);
    http_send(r, 200, resp);
}

void http_remote_answer(struct http_req *r, const struct repo_config *cfg, const char *path,
                        const struct remote_result *res)
{
    switch (res->res) {
    case REMOTE_STALE:
        r->stale = res->reason ? res->reason : "stale";
        /* fall through */
    case REMOTE_HIT:
        r->repo_key = gr_arena_strdup(r->arena, cfg->key);
        r->path = gr_arena_strdup(r->arena, path);
        http_artifact_send(r, &res->art);
        return;
    case REMOTE_FLIGHT:
        remote__answer_flight(r, path, res->flight);
        return;
    case REMOTE_MISS:
        http_error(r, 404, "%s", res->reason ? res->reason : "not found upstream");
        return;
    case REMOTE_FAIL:
        http_error(r, res->status ? res->status : 502, "%s",
                   res->reason ? res->reason : "the upstream failed");
        return;
    case REMOTE_WAIT:
        break;
    }
    http_error(r, 500, "unexpected lookup result");
}

void http_remote_file(struct http_req *r, const struct repo_config *cfg, const char *path)
{
    struct remote_spec spec;
    struct remote_result res;
    http_remote_spec(r, cfg, path, &spec);
    if (http_remote_find(r, cfg, path, &spec, &res))
        http_remote_answer(r, cfg, path, &res);
}

static int remote__collect(void *arg, const void *data, size_t len)
{
    struct gr_sbuf *sb = arg;
    if (sb->len + len > REMOTE_DOC_MAX)
        return GR_ETOOBIG;
    gr_sbuf_add(sb, data, len);
    return GR_OK;
}

bool http_remote_doc(struct http_req *r, const struct repo_config *cfg, const char *path,
                     struct remote_spec *spec, char **doc, size_t *len, struct remote_result *res)
{
    spec->complete = true;
    *doc = NULL;
    *len = 0;
    if (!http_remote_find(r, cfg, path, spec, res))
        return false;
    struct gr_sbuf sb = GR_SBUF_INIT;
    int rc = GR_OK;
    if (res->res == REMOTE_HIT || res->res == REMOTE_STALE) {
        if (res->res == REMOTE_STALE)
            r->stale = res->reason ? res->reason : "stale";
        rc = res->art.size > REMOTE_DOC_MAX ? GR_ETOOBIG
                                            : storage_read_all(r->ctx->storage, res->art.sha256,
                                                               res->art.size, remote__collect, &sb);
    } else if (res->res == REMOTE_FLIGHT) {
        char buf[65536];
        long n;
        while (rc == GR_OK && (n = remote_flight_read(res->flight, sb.len, buf, sizeof(buf))) != 0)
            rc = n < 0 ? GR_EIO : remote__collect(&sb, buf, (size_t)n);
    } else {
        return true; /* MISS or FAIL: res says why */
    }
    if (rc) {
        gr_sbuf_release(&sb);
        http_error(r, rc == GR_ETOOBIG ? 502 : 503, "cannot read %s/%s: %s", cfg->key, path,
                   rc == GR_ETOOBIG ? "larger than the limit of a metadata document"
                                    : gr_strerror(rc));
        return false;
    }
    *doc = gr_arena_alloc(r->arena, sb.len + 1);
    if (sb.len)
        memcpy(*doc, sb.buf, sb.len);
    (*doc)[sb.len] = '\0';
    *len = sb.len;
    gr_sbuf_release(&sb);
    return true;
}

void http_remote_artifact(struct http_req *r, const struct repo_config *cfg, const struct format *f)
{
    bool read = r->method == HM_GET || r->method == HM_HEAD;
    if (r->method == HM_PUT) {
        http_error(r, 405,
                   "remote repository '%s' is a cache of its upstream: deploy to a local"
                   " repository",
                   cfg->key);
        return;
    }
    /* the cached files as they are: <key>-cache, listings, and deletes (a re-fetch follows) */
    if (!read || r->cache_view || r->trailing_slash || !*r->path) {
        http_artifact_generic(r, cfg);
        return;
    }
    if (!http_need_read(r)) /* caching a file is part of reading it */
        return;
    if (http_artifact_checksum(r)) /* <file>.sha1 of a cached file: its stored checksum */
        return;
    if (f && f->remote_get)
        f->remote_get(r, cfg);
    else
        http_remote_file(r, cfg, r->path);
}
