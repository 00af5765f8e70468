/*
 * cluster_api.c - the cluster port: what nodes ask of each other to keep
 * binaries redundant. Every request is signed with the join key for this
 * node (storage_auth_check), and every answer to it is signed back
 * (storage_sign_answer: status, binary, block checksums, body); nothing here
 * is reachable from the public port.
 *
 *   PUT    /v1/blobs/{sha256}/stage       receive a copy: verify, fsync, stage
 *   PUT    /v1/stages                     receive an upload as it arrives (chunked):
 *                                         hash, fsync, stage; the answer names the sha256
 *   POST   /v1/stages/{id}/commit?sha256= publish a staged copy
 *   DELETE /v1/stages/{id}                drop a staged copy
 *   GET    /v1/blobs/{sha256}             this node's copy, block-verified (Range ok)
 *   DELETE /v1/blobs/{sha256}             delete this node's copy (GC, trim)
 *   POST   /v1/blobs/{sha256}/pull?from=  fetch a copy from those nodes (repair)
 *   POST   /v1/blobs/{sha256}/quarantine  this node's copy failed a peer's check
 *   GET    /v1/ping
 */
#include "http/blobsend.h"
#include "http/range.h"
#include "http/req.h"

#include "base/err.h"
#include "base/log.h"
#include "bs.h"
#include "crypto/crypto.h"
#include "storage/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct internal__stage {
    struct bs_upload *bu;
    struct cr_digest *d;
    char sha256[65];
};

/* A request that passed the signature check (r->hctx): what its answer is signed against. */
struct internal__req {
    struct storage_auth auth;
    char sha256[65]; /* the binary the call is about, or "" */
    struct internal__stage stage;
};

/* Add the answer's signature to resp (a v2 request); blocks and body as storage_sign_answer(). */
static void internal__sign(struct http_req *r, struct MHD_Response *resp, int status,
                           const char *blocks, const void *body, size_t len)
{
    struct internal__req *q = r->hctx;
    char sig[200];
    storage_sign_answer(r->ctx->storage, &q->auth, status, q->sha256, blocks,
                        r->method == HM_HEAD ? NULL : body, r->method == HM_HEAD ? 0 : len, sig,
                        sizeof(sig));
    if (sig[0])
        http_header(resp, STORAGE_ANSWER_HEADER, sig);
}

/* Answer with a copy of body, signed. */
static void internal__answer(struct http_req *r, int status, const char *type, const char *body,
                             size_t len)
{
    struct MHD_Response *resp = http_response_bytes((void *)body, len, true);
    if (!resp)
        return;
    if (type)
        http_header(resp, "Content-Type", type);
    internal__sign(r, resp, status, "", body, len);
    r->sent_bytes += r->method == HM_HEAD ? 0 : len;
    http_send(r, status, resp);
}

/* Answer with a JSON document (reference stolen), signed. */
static void internal__json(struct http_req *r, int status, json_t *doc)
{
    char *s = doc ? json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(doc);
    if (!s) {
        http_error(r, 500, "out of memory");
        return;
    }
    internal__answer(r, status, "application/json", s, strlen(s));
    free(s);
}

/*
 * The JSON error shape, signed. The message is cut at 200 bytes so that
 * the whole answer fits what the calling node reads of it (it checks the
 * signature over the whole body).
 */
static void internal__error(struct http_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void internal__error(struct http_req *r, int status, const char *fmt, ...)
{
    char msg[201];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (status >= 500)
        gr_warn("req=%llu %d %s", (unsigned long long)r->id, status, msg);
    internal__json(r, status,
                   json_pack("{s:[{s:i,s:s}]}", "errors", "status", status, "message", msg));
}

static void internal__error_code(struct http_req *r, int err, const char *msg)
{
    internal__error(r, gr_err_http_status(err), "%s", msg ? msg : gr_strerror(err));
}

static void internal__stage_cleanup(void *arg)
{
    struct internal__stage *s = arg;
    bs_upload_abort(s->bu);
    cr_digest_free(s->d);
}

static int internal__stage_chunk(struct http_req *r, const char *data, size_t len)
{
    struct internal__stage *s = &((struct internal__req *)r->hctx)->stage;
    cr_digest_update(s->d, data, len);
    int rc = bs_upload_write(s->bu, data, len);
    if (rc == BS_OK)
        return GR_OK;
    bs_upload_abort(s->bu);
    s->bu = NULL;
    return storage_bs_err(rc);
}

static void internal__stage_end(struct http_req *r)
{
    struct internal__stage *s = &((struct internal__req *)r->hctx)->stage;
    if (r->body_error) {
        internal__error_code(r, r->body_error, "cannot stage the copy");
        return;
    }
    unsigned char raw[64];
    char hex[65];
    cr_digest_final(s->d, raw);
    storage__hex(raw, 32, hex);
    if (s->sha256[0] && strcmp(hex, s->sha256)) {
        gr_warn("req=%s staged copy of %s arrived as %s: refused",
                http_req_header(r, "X-Request-Id"), s->sha256, hex);
        internal__error(r, 409, "checksum mismatch: the copy's sha256 is %s", hex);
        return;
    }
    char id[BS_STAGE_ID];
    struct bs_upload *bu = s->bu;
    s->bu = NULL;
    uint64_t size = bs_upload_size(bu);
    int rc = bs_upload_stage(bu, hex, id);
    if (rc) {
        internal__error_code(r, storage_bs_err(rc), "cannot stage the copy");
        return;
    }
    if (s->sha256[0])
        internal__json(r, 201, json_pack("{s:s}", "stage", id));
    else /* streamed: the sender checks the hash against its own */
        internal__json(
            r, 201,
            json_pack("{s:s,s:s,s:I}", "stage", id, "sha256", hex, "size", (json_int_t)size));
}

/* Receive a copy of sha256, or (sha256 "") of whatever arrives, named by its hash. */
static void internal__stage(struct http_req *r, const char *sha256)
{
    struct internal__stage *s = &((struct internal__req *)r->hctx)->stage;
    snprintf(s->sha256, sizeof(s->sha256), "%s", sha256);
    s->d = cr_digest_new(CR_SHA256);
    gr_arena_cleanup(r->arena, internal__stage_cleanup, s);
    if (storage_disk_refuses(r->ctx->storage)) {
        /* the sender stages on its next candidate */
        internal__error(r, 503, "this node's filestore fails: no copy here");
        return;
    }
    int rc = s->d ? bs_upload_begin(r->ctx->bs, &s->bu) : BS_ENOMEM;
    if (rc) {
        internal__error_code(r, storage_bs_err(rc), "cannot stage the copy");
        return;
    }
    r->on_body = internal__stage_chunk;
    r->on_end = internal__stage_end;
}

/*
 * STORAGE_CRC_HEADER's value (arena-owned) for an answer that sends bytes
 * [first, first + len) of blob: to a v2 request, the checksums of the
 * blocks they touch; to a v1 request, those of a whole binary. NULL when
 * there are none to send (more than STORAGE_CRC_HEADER_MAX_BLOCKS blocks,
 * no bytes, or a range asked with v1).
 */
static char *internal__crc_header(struct gr_arena *a, const struct bs_blob *blob, int version,
                                  uint64_t first, uint64_t len)
{
    static const char hx[] = "0123456789abcdef";
    uint64_t n = 0, size = bs_blob_size(blob);
    const uint32_t *crcs = bs_blob_crcs(blob, &n);
    uint64_t from = first / BS_BLOCK, to = len ? (first + len - 1) / BS_BLOCK + 1 : from;
    if (to > n || to == from || to - from > STORAGE_CRC_HEADER_MAX_BLOCKS ||
        (version != 2 && (first || len != size)))
        return NULL;
    char *out = gr_arena_alloc(a, 80 + 8 * (to - from));
    int hl = version == 2 ? snprintf(out, 80, "%d %llu %llu ", BS_BLOCK, (unsigned long long)size,
                                     (unsigned long long)from)
                          : snprintf(out, 80, "%d ", BS_BLOCK);
    char *p = out + hl;
    for (uint64_t i = from; i < to; i++)
        for (int k = 7; k >= 0; k--)
            *p++ = hx[crcs[i] >> (4 * k) & 15];
    *p = '\0';
    return out;
}

static void internal__get(struct http_req *r, const char *sha256)
{
    struct bs_blob *blob = NULL;
    int rc = storage_open_local(r->ctx->storage, sha256, &blob);
    struct internal__req *q = r->hctx;
    if (rc) {
        internal__error(r, rc == GR_ENOTFOUND ? 404 : 500, "no good copy of %s here", sha256);
        return;
    }
    uint64_t size = bs_blob_size(blob), first = 0, last = 0;
    enum http_range_result rr = http_range_parse(http_req_header(r, "Range"), size, &first, &last);
    if (rr == HTTP_RANGE_UNSATISFIABLE) {
        bs_blob_close(blob);
        internal__error(r, 416, "range not satisfiable");
        return;
    }
    uint64_t len = rr == HTTP_RANGE_OK ? last - first + 1 : size;
    /* the checksums of the blocks sent, for the reader's check */
    char *crcs = internal__crc_header(r->arena, blob, q->auth.version, first, len);
    struct MHD_Response *resp = NULL;
    if (r->method == HM_GET && len <= HTTP_SMALL_BODY) {
        /* small: one verified read, sent with the headers */
        char *buf = malloc(len ? len : 1);
        ssize_t got = buf ? bs_blob_read(blob, first, buf, len) : BS_ENOMEM;
        bs_blob_close(blob);
        if (got != (ssize_t)len) {
            free(buf);
            gr_error("req=%llu reading %s: %s", (unsigned long long)r->id, sha256,
                     got < 0 ? bs_strerror((int)got) : "short read");
            if (got == BS_ECORRUPT)
                storage_bad_local_copy(r->ctx->storage, sha256, "block checksum mismatch");
            internal__error(r, got == BS_ENOMEM ? 500 : 404, "the copy of %s here failed its check",
                            sha256);
            return;
        }
        resp = http_response_bytes(buf, len, false); /* frees buf if it fails */
        if (resp)
            r->sent_bytes += len;
    } else if (r->method == HM_GET && http_blob_check_first(r, blob, sha256, first, len)) {
        bs_blob_close(blob);
        internal__error(r, 404, "the copy of %s here failed its check", sha256);
        return;
    } else {
        resp = http_blob_local_response(r, blob, sha256, first, len);
    }
    if (!resp) {
        http_error(r, 500, "out of memory");
        return;
    }
    http_header(resp, "Content-Type", "application/octet-stream");
    if (crcs)
        http_header(resp, STORAGE_CRC_HEADER, crcs);
    if (rr == HTTP_RANGE_OK) {
        char cr[80];
        snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)first,
                 (unsigned long long)last, (unsigned long long)size);
        http_header(resp, "Content-Range", cr);
    }
    /* the bytes are covered by the signed block checksums */
    internal__sign(r, resp, rr == HTTP_RANGE_OK ? 206 : 200, crcs ? crcs : "", NULL, 0);
    http_send(r, rr == HTTP_RANGE_OK ? 206 : 200, resp);
}

/* "/v1/blobs/<sha>[/<verb>]": the hash into sha, the verb (or "") returned. */
static const char *internal__blob_path(const char *p, char sha[65])
{
    if (strncmp(p, "/v1/blobs/", 10) || strlen(p) < 74)
        return NULL;
    memcpy(sha, p + 10, 64);
    sha[64] = '\0';
    if (!bs_valid_sha256(sha))
        return NULL;
    const char *rest = p + 74;
    if (*rest == '\0')
        return rest;
    return *rest == '/' ? rest + 1 : NULL;
}

void storage_cluster_api(struct http_req *r, const char *rest)
{
    (void)rest;
    const char *why;
    struct internal__req *q = gr_arena_calloc(r->arena, sizeof(*q));
    if (!storage_auth_check(r->ctx->storage, r->method_str, r->raw_uri,
                            http_req_header(r, STORAGE_AUTH_HEADER),
                            http_req_header(r, STORAGE_AUTH_V2_HEADER), &q->auth, &why)) {
        gr_warn("req=%llu cluster port: %s %s refused: %s", (unsigned long long)r->id,
                r->method_str, r->raw_uri, why);
        http_error(r, 401, "cluster request refused: %s", why);
        return;
    }
    r->hctx = q;
    char *path = gr_arena_strndup(r->arena, r->raw_uri, r->raw_path_len);
    const char *rid = http_req_header(r, "X-Request-Id");
    char sha[65];
    const char *verb = internal__blob_path(path, sha);
    if (verb) /* the answer says which binary it is about */
        memcpy(q->sha256, sha, sizeof(sha));
    if (!strcmp(path, "/v1/ping")) {
        internal__json(r, 200, json_pack("{s:b}", "ok", 1));
    } else if (verb && !*verb && (r->method == HM_GET || r->method == HM_HEAD)) {
        internal__get(r, sha);
    } else if (verb && !*verb && r->method == HM_DELETE) {
        int rc = bs_delete(r->ctx->bs, sha);
        if (rc == BS_OK)
            gr_info("req=%s deleted the copy of %s", rid ? rid : "", sha);
        if (rc == BS_OK || rc == BS_ENOTFOUND)
            internal__answer(r, rc == BS_OK ? 204 : 404, NULL, "", 0);
        else
            internal__error(r, 500, "cannot delete %s: %s", sha, bs_strerror(rc));
    } else if (verb && !strcmp(verb, "stage") && r->method == HM_PUT) {
        internal__stage(r, sha);
    } else if (verb && !strcmp(verb, "pull") && r->method == HM_POST) {
        int rc = storage_pull(r->ctx->storage, sha, http_query(r, "from"), rid);
        if (rc)
            internal__error_code(r, rc, "cannot pull the copy");
        else
            internal__json(r, 200, json_pack("{s:s}", "sha256", sha));
    } else if (verb && !strcmp(verb, "quarantine") && r->method == HM_POST) {
        int rc = bs_quarantine(r->ctx->bs, sha);
        gr_error("req=%s a peer found this node's copy of %s bad: %s", rid ? rid : "", sha,
                 rc == BS_OK ? "quarantined" : bs_strerror(rc));
        storage_forget_local(r->ctx->storage, sha);
        internal__json(r, 200, json_pack("{s:b}", "quarantined", rc == BS_OK));
    } else if (!strcmp(path, "/v1/stages") && r->method == HM_PUT) {
        internal__stage(r, "");
    } else if (!strncmp(path, "/v1/stages/", 11)) {
        char id[BS_STAGE_ID + 16];
        snprintf(id, sizeof(id), "%s", path + 11);
        char *slash = strchr(id, '/');
        bool commit = slash && !strcmp(slash, "/commit");
        if (slash)
            *slash = '\0';
        if (commit && r->method == HM_POST) {
            const char *want = http_query(r, "sha256");
            bool existed = false;
            int rc = want && bs_valid_sha256(want) ? bs_stage_commit(r->ctx->bs, id, want, &existed)
                                                   : BS_EINVAL;
            if (rc == BS_OK)
                internal__json(r, 200, json_pack("{s:b}", "existed", existed));
            else
                internal__error(r,
                                rc == BS_ENOTFOUND ? 404
                                : rc == BS_EINVAL  ? 400
                                                   : 500,
                                "cannot publish stage %s: %s", id, bs_strerror(rc));
        } else if (!slash && r->method == HM_DELETE) {
            bs_stage_abort(r->ctx->bs, id);
            internal__answer(r, 204, NULL, "", 0);
        } else {
            internal__error(r, 404, "no such cluster call: %s %s", r->method_str, path);
        }
    } else {
        internal__error(r, 404, "no such cluster call: %s %s", r->method_str, path);
    }
}
