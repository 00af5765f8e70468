/* ingest.c - the one upload pipeline (ingest.h). */
#include "repo/ingest.h"

#include "base/err.h"
#include "bs.h"
#include "crypto/crypto.h"
#include "storage/storage.h"

#include <fcntl.h>

struct ingest {
    struct repo_ctx *ctx;
    struct gr_arena *a;
    struct bs_upload *bu; /* NULL once handed to replication, or aborted */
    struct cr_multihash *hash;
    int error; /* the first write error, returned by every later write */
    /* copies streamed to peers while the body arrives, from STORAGE_STREAM_MIN bytes on */
    struct storage_stream *stream;
    bool stream_asked;
};

static void ingest__cleanup(void *arg)
{
    struct ingest *in = arg;
    bs_upload_abort(in->bu);
    cr_multihash_free(in->hash);
}

int ingest_begin(struct repo_ctx *ctx, struct gr_arena *a, struct ingest **out)
{
    struct ingest *in = gr_arena_calloc(a, sizeof(*in));
    if (!in)
        return GR_ENOMEM;
    in->ctx = ctx;
    in->a = a;
    in->hash = cr_multihash_new(ctx->hashpool);
    /* the shared-fs provider's uploads stream into the shared store itself */
    struct bs_store *bs = storage_upload_store(ctx->storage, ctx->bs);
    int rc;
    if (!in->hash)
        rc = GR_ENOMEM;
    else if (storage_disk_refuses(ctx->storage))
        rc = GR_EUNAVAIL; /* this node's disk fails: 503, the client's retry goes elsewhere */
    else
        rc = storage_bs_err(bs_upload_begin(bs, &in->bu));
    if (rc == GR_EIO && storage_disk_check(ctx->storage))
        rc = GR_EUNAVAIL;
    gr_arena_cleanup(a, ingest__cleanup, in);
    *out = in;
    return rc;
}

int ingest_write(struct ingest *in, const void *data, size_t len)
{
    if (in->error)
        return in->error;
    cr_multihash_update(in->hash, data, len);
    int rc = storage_bs_err(bs_upload_write(in->bu, data, len));
    if (rc) {
        bs_upload_abort(in->bu); /* free the space now, not after the rest of the body */
        in->bu = NULL;
        in->error = rc;
        return rc;
    }
    storage_stream_write(in->stream, data, len);
    if (!in->stream_asked && bs_upload_size(in->bu) >= STORAGE_STREAM_MIN) {
        in->stream_asked = true; /* what is written so far goes first */
        in->stream = storage_stream_begin(in->ctx->storage, in->a, bs_upload_path(in->bu),
                                          bs_upload_size(in->bu));
    }
    return rc;
}

const char *ingest_path(const struct ingest *in)
{
    return in->bu ? bs_upload_path(in->bu) : NULL;
}

void ingest_finish(struct ingest *in, struct artifact *a)
{
    cr_multihash_final(in->hash, a->sha256, a->sha1, a->md5);
    a->size = in->bu ? bs_upload_size(in->bu) : 0;
}

int ingest_open_read(struct ingest *in, int *fd)
{
    if (in->error || !in->bu)
        return GR_EINVAL;
    *fd = open(bs_upload_path(in->bu), O_RDONLY | O_CLOEXEC);
    return *fd < 0 ? GR_EIO : GR_OK;
}

int ingest_replicate(struct ingest *in, const char *request_id, struct artifact *a)
{
    if (in->error)
        return in->error;
    struct bs_upload *bu = in->bu;
    in->bu = NULL; /* replication takes it whatever happens */
    return storage_replicate(in->ctx->storage, in->a, bu, in->stream, a->sha256, a->size,
                             gr_arena_strdup(in->a, request_id), &a->pending);
}
