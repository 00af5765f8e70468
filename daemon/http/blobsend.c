/*
 * blobsend.c - responses that stream a binary: from this node's copy with
 * every block checked against its CRC32C before it is sent, or from a
 * peer with every block checked against the holder's signed checksums
 * before it is sent (storage_remote_read). A failed check cuts the
 * connection: a client never gets a complete answer with wrong bytes.
 */
#include "http/blobsend.h"

#include "base/err.h"
#include "base/log.h"
#include "remote/remote.h"
#include "storage/storage.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

/* MHD's buffer for a callback response: whole 64 KiB blocks go straight in */
#define BLOBSEND_CHUNK (256 * 1024)

/*
 * The buffer for a body of len bytes: MHD allocates (and zeroes) it with
 * every response, so a small body gets a small one.
 */
static size_t blobsend__chunk(uint64_t len)
{
    if (len >= BLOBSEND_CHUNK)
        return BLOBSEND_CHUNK;
    return len > 0 ? (size_t)len : 1;
}

struct blobsend__local {
    struct repo_ctx *ctx;
    struct bs_blob *blob;
    uint64_t first;
    char sha256[65];
    uint64_t req;
    uint64_t *sent; /* the request's bytes out (alive until the response is done) */
};

static ssize_t blobsend__local_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct blobsend__local *s = cls;
    long n = storage_blob_read(s->blob, s->first + pos, buf, max);
    if (n > 0) {
        *s->sent += (uint64_t)n;
        return n;
    }
    if (n == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    gr_error("req=%llu reading %s at %llu: %s; connection cut", (unsigned long long)s->req,
             s->sha256, (unsigned long long)(s->first + pos), gr_strerror((int)n));
    if (n == GR_ECORRUPT)
        storage_bad_local_copy(s->ctx->storage, s->sha256, "block checksum mismatch while sending");
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

static void blobsend__local_free(void *cls)
{
    struct blobsend__local *s = cls;
    storage_blob_close(s->blob);
    free(s);
}

int http_blob_check_first(struct http_req *r, struct bs_blob *blob, const char *sha256,
                          uint64_t first, uint64_t len)
{
    char buf[STORAGE_BLOCK];
    uint64_t start = first - first % STORAGE_BLOCK;
    size_t n = len ? STORAGE_BLOCK : 0;
    if (start + n > storage_blob_size(blob))
        n = (size_t)(storage_blob_size(blob) - start);
    if (n == 0)
        return 0;
    long got = storage_blob_read(blob, start, buf, n);
    if (got == (long)n)
        return 0;
    gr_error("req=%llu first block of %s: %s", (unsigned long long)r->id, sha256,
             got < 0 ? gr_strerror((int)got) : "short read");
    if (got == GR_ECORRUPT)
        storage_bad_local_copy(r->ctx->storage, sha256, "block checksum mismatch");
    return -1;
}

struct MHD_Response *http_blob_local_response(struct http_req *r, struct bs_blob *blob,
                                              const char *sha256, uint64_t first, uint64_t len)
{
    struct blobsend__local *s = calloc(1, sizeof(*s));
    if (!s) {
        storage_blob_close(blob);
        return NULL;
    }
    s->ctx = r->ctx;
    s->blob = blob;
    s->first = first;
    s->req = r->id;
    s->sent = &r->sent_bytes;
    snprintf(s->sha256, sizeof(s->sha256), "%s", sha256);
    struct MHD_Response *resp = MHD_create_response_from_callback(
        len, blobsend__chunk(len), blobsend__local_read, s, blobsend__local_free);
    if (!resp)
        blobsend__local_free(s);
    return resp;
}

struct blobsend__remote {
    struct storage_remote *rem;
    uint64_t len;
    uint64_t req;
    uint64_t *sent; /* as in blobsend__local */
};

static ssize_t blobsend__remote_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct blobsend__remote *s = cls;
    long n = storage_remote_read(s->rem, buf, max);
    if (n > 0 && pos + (uint64_t)n >= s->len) {
        /* the last bytes: only after the end of the stream checked out */
        char extra;
        if (storage_remote_read(s->rem, &extra, 1) != 0)
            n = -1;
    }
    if (n > 0) {
        *s->sent += (uint64_t)n;
        return n;
    }
    if (n < 0 || pos < s->len) {
        gr_error("req=%llu peer stream failed at %llu of %llu; connection cut",
                 (unsigned long long)s->req, (unsigned long long)pos, (unsigned long long)s->len);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    return MHD_CONTENT_READER_END_OF_STREAM;
}

static void blobsend__remote_free(void *cls)
{
    struct blobsend__remote *s = cls;
    storage_remote_close(s->rem);
    free(s);
}

struct MHD_Response *http_blob_remote_response(struct http_req *r, struct storage_remote *rem,
                                               uint64_t len)
{
    struct blobsend__remote *s = calloc(1, sizeof(*s));
    if (!s) {
        storage_remote_close(rem);
        return NULL;
    }
    s->rem = rem;
    s->len = len;
    s->req = r->id;
    s->sent = &r->sent_bytes;
    struct MHD_Response *resp = MHD_create_response_from_callback(
        len, blobsend__chunk(len), blobsend__remote_read, s, blobsend__remote_free);
    if (!resp)
        blobsend__remote_free(s);
    return resp;
}

struct blobsend__flight {
    struct remote_flight *f;
    uint64_t req;
    uint64_t *sent;
};

static ssize_t blobsend__flight_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct blobsend__flight *s = cls;
    long n = remote_flight_read(s->f, pos, buf, max);
    if (n > 0) {
        *s->sent += (uint64_t)n;
        return n;
    }
    if (n == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    gr_warn("req=%llu the remote fetch failed at %llu; connection cut", (unsigned long long)s->req,
            (unsigned long long)pos);
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

static void blobsend__flight_free(void *cls)
{
    struct blobsend__flight *s = cls;
    remote_flight_put(s->f);
    free(s);
}

struct MHD_Response *http_flight_response(struct http_req *r, struct remote_flight *f, uint64_t len)
{
    struct blobsend__flight *s = calloc(1, sizeof(*s));
    if (!s) {
        remote_flight_put(f);
        return NULL;
    }
    s->f = f;
    s->req = r->id;
    s->sent = &r->sent_bytes;
    struct MHD_Response *resp = MHD_create_response_from_callback(
        len == UINT64_MAX ? MHD_SIZE_UNKNOWN : len, BLOBSEND_CHUNK, blobsend__flight_read, s,
        blobsend__flight_free);
    if (!resp)
        blobsend__flight_free(s);
    return resp;
}
