/*
 * provider_fs.c - the providers over a blobstore (provider.h): "local", this
 * node's filestore, and "shared-fs", one store on a shared file system that
 * every node writes (bs_open_shared()). Reads are checked block by block
 * against the sidecars; a copy whose sidecar is missing or torn is
 * re-hashed once and its sidecar rebuilt when the content is good.
 */
#include "storage/provider.h"

#include "base/err.h"
#include "base/log.h"
#include "bs.h"
#include "crypto/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const storage__kinds[STORAGE_KINDS] = {"local", "shared-fs", "s3"};

const char *storage_kind_name(enum storage_kind k)
{
    return k >= 0 && k < STORAGE_KINDS ? storage__kinds[k] : "?";
}

int storage_kind_of(const char *name)
{
    for (int i = 0; name && i < STORAGE_KINDS; i++)
        if (!strcmp(name, storage__kinds[i]))
            return i;
    return -1;
}

static int fsp__err(int bs_rc)
{
    switch (bs_rc) {
    case BS_OK:
        return GR_OK;
    case BS_ENOTFOUND:
        return GR_ENOTFOUND;
    case BS_ENOSPC:
        return GR_ENOSPC;
    case BS_ENOMEM:
        return GR_ENOMEM;
    case BS_ECORRUPT:
        return GR_ECORRUPT;
    case BS_EINVAL:
        return GR_EINVAL;
    default:
        return GR_EIO;
    }
}

static int fsp__put(struct storage_provider *p, const char *sha256, const char *path, uint64_t size,
                    const uint32_t *crcs, char *err, size_t errsz)
{
    (void)crcs; /* the store computes its own while it writes */
    if (bs_has(p->bs, sha256))
        return GR_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errsz, "cannot open %s: %s", path, strerror(errno));
        return GR_EIO;
    }
    struct bs_upload *u = NULL;
    char *buf = malloc(1 << 20);
    int rc = buf ? fsp__err(bs_upload_begin(p->bs, &u)) : GR_ENOMEM;
    uint64_t done = 0;
    while (rc == GR_OK && done < size) {
        ssize_t n = pread(fd, buf, 1 << 20, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = GR_EIO;
            break;
        }
        rc = fsp__err(bs_upload_write(u, buf, (size_t)n));
        done += (uint64_t)n;
    }
    close(fd);
    free(buf);
    if (rc == GR_OK && done != size)
        rc = GR_EIO;
    if (rc == GR_OK) {
        rc = fsp__err(bs_upload_commit(u, sha256, NULL));
        u = NULL;
    }
    bs_upload_abort(u);
    if (rc)
        snprintf(err, errsz, "%s: %s", p->name, gr_strerror(rc));
    return rc;
}

struct storage_pread {
    struct bs_blob *blob;
    uint64_t pos, end;
};

/* A copy without a good sidecar: re-hash it; good, rebuild the sidecar. */
static int fsp__settle(struct storage_provider *p, const char *sha256)
{
    int fd;
    uint64_t size;
    int rc = fsp__err(bs_open_blob(p->bs, sha256, &fd, &size));
    if (rc)
        return rc;
    char hex[CR_SHA256_HEX];
    rc = cr_sha256_fd_hex(fd, 0, UINT64_MAX, hex);
    close(fd);
    if (rc == GR_OK)
        rc = strcmp(hex, sha256) ? GR_ECORRUPT : fsp__err(bs_crc_rebuild(p->bs, sha256));
    return rc;
}

static long fsp__read(struct storage_pread *r, void *buf, size_t max)
{
    if (r->pos >= r->end)
        return 0;
    if (max > r->end - r->pos)
        max = (size_t)(r->end - r->pos);
    ssize_t n = bs_blob_read(r->blob, r->pos, buf, max);
    if (n < 0)
        return fsp__err((int)n);
    if (n == 0)
        return GR_EIO; /* shorter than the caller was told */
    r->pos += (uint64_t)n;
    return (long)n;
}

static void fsp__close(struct storage_pread *r)
{
    if (!r)
        return;
    bs_blob_close(r->blob);
    free(r);
}

static int fsp__open(struct storage_provider *p, const char *sha256, uint64_t size, uint64_t off,
                     uint64_t len, struct storage_pread **out)
{
    *out = NULL;
    struct bs_blob *blob = NULL;
    int rc = bs_blob_open(p->bs, sha256, &blob);
    if (rc == BS_ENOCRC) {
        int src = fsp__settle(p, sha256);
        if (src)
            return src;
        rc = bs_blob_open(p->bs, sha256, &blob);
    }
    if (rc != BS_OK)
        return fsp__err(rc);
    if (bs_blob_size(blob) != size || off + len > size) {
        bs_blob_close(blob);
        return GR_ECORRUPT;
    }
    struct storage_pread *r = calloc(1, sizeof(*r));
    if (!r) {
        bs_blob_close(blob);
        return GR_ENOMEM;
    }
    r->blob = blob;
    r->pos = off;
    r->end = off + len;
    if (len > 0) { /* the first block, before the caller commits to this copy */
        char *blk = malloc(BS_BLOCK);
        uint64_t start = off - off % BS_BLOCK;
        size_t n = size - start < BS_BLOCK ? (size_t)(size - start) : BS_BLOCK;
        ssize_t got = blk ? bs_blob_read(blob, start, blk, n) : BS_ENOMEM;
        free(blk);
        if (got != (ssize_t)n) {
            fsp__close(r);
            return got < 0 ? fsp__err((int)got) : GR_EIO;
        }
    }
    *out = r;
    return GR_OK;
}

static int fsp__stat(struct storage_provider *p, const char *sha256, uint64_t *size)
{
    int fd;
    int rc = fsp__err(bs_open_blob(p->bs, sha256, &fd, size));
    if (rc == GR_OK)
        close(fd);
    return rc;
}

static int fsp__del(struct storage_provider *p, const char *sha256)
{
    int rc = bs_delete(p->bs, sha256);
    return rc == BS_ENOTFOUND ? GR_OK : fsp__err(rc);
}

static int fsp__list(struct storage_provider *p, const char *after,
                     int (*fn)(void *arg, const char *sha256, uint64_t size), void *arg)
{
    int rc = bs_each(p->bs, after, fn, arg);
    return rc > 0 ? rc : fsp__err(rc);
}

static int fsp__quarantine(struct storage_provider *p, const char *sha256)
{
    return fsp__err(bs_quarantine(p->bs, sha256));
}

static void fsp__free(struct storage_provider *p)
{
    free(p);
}

static const struct storage_provider_ops fsp__ops = {
    .put = fsp__put,
    .open = fsp__open,
    .read = fsp__read,
    .close = fsp__close,
    .stat = fsp__stat,
    .del = fsp__del,
    .list = fsp__list,
    .quarantine = fsp__quarantine,
    .free = fsp__free,
};

int storage_provider_fs(enum storage_kind kind, struct bs_store *bs, const char *loc,
                        struct storage_provider **out)
{
    struct storage_provider *p = calloc(1, sizeof(*p));
    if (!p)
        return GR_ENOMEM;
    p->ops = &fsp__ops;
    p->kind = kind;
    p->name = storage_kind_name(kind);
    snprintf(p->loc, sizeof(p->loc), "%s", loc);
    p->bs = bs;
    *out = p;
    return GR_OK;
}
