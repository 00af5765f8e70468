/*
 * ingest.h - the one upload pipeline every deploy goes through, whatever
 * its format (docs/architecture.md "Upload"): the bytes stream into the
 * local filestore while sha256, sha1 and md5 are computed in the same pass
 * (ingest_write), and from STORAGE_STREAM_MIN bytes on they also stream to
 * redundancy - 1 peers (storage_stream_begin); ingest_finish gives the
 * hashes; after the caller's checks (checksum headers, the format's rules),
 * ingest_replicate has the copies staged on redundancy - 1 peers (those
 * streamed count when their hash matches; the rest are pushed from the
 * file); then the caller commits the rows
 * (artifact_put, or a format's own commit such as npm_publish), which
 * publishes the copies under the binary's row lock.
 *
 * An ingest lives in the request's arena: whatever has not been handed on
 * when the arena is freed (an error, a refused check) is aborted and its
 * space freed. Not thread-safe: one request thread drives it.
 */
#ifndef REPO_INGEST_H
#define REPO_INGEST_H

#include "base/arena.h"
#include "repo/repo.h"

#include <stddef.h>

struct ingest;

/* Start an upload into this node's filestore. GR_ENOMEM, GR_ENOSPC, GR_EIO. */
int ingest_begin(struct repo_ctx *ctx, struct gr_arena *a, struct ingest **out)
    __attribute__((warn_unused_result));
/*
 * Hash and store len more bytes. GR_ENOSPC, GR_EIO (the upload is aborted at
 * once, so a full disk frees its space without waiting for the rest of the
 * body; later calls return the same error).
 */
int ingest_write(struct ingest *in, const void *data, size_t len)
    __attribute__((warn_unused_result));
/*
 * The file the bytes go to (under the filestore's _pre/), for a reader that
 * follows them as they arrive (a remote repository's fetch): valid until
 * ingest_replicate() or the end of the ingest; an fd opened on it stays
 * readable after that.
 */
const char *ingest_path(const struct ingest *in);
/* The bytes are all in: a's sha256, sha1, md5 and size. */
void ingest_finish(struct ingest *in, struct artifact *a);
/*
 * After ingest_finish(), before ingest_replicate(): a read-only fd on the
 * bytes received, from this node's filestore (the caller owns it and closes
 * it), for a format that checks the content itself (a wheel's METADATA)
 * without holding it in memory. GR_EIO, GR_EINVAL (the upload failed or was
 * handed on).
 */
int ingest_open_read(struct ingest *in, int *fd) __attribute__((warn_unused_result));
/*
 * The upload checked: stage its copies (a->pending) for the commit that
 * follows (artifact_put, npm_publish). request_id names the request in
 * peers' logs. GR_EUNAVAIL (too few nodes could keep a copy), GR_ENOSPC,
 * GR_EIO, GR_ENOMEM.
 */
int ingest_replicate(struct ingest *in, const char *request_id, struct artifact *a)
    __attribute__((warn_unused_result));

#endif
