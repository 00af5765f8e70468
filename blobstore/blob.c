/*
 * blob.c - reads checked against the sidecar, block by block, plus the
 * scrub check and the rebuild of a missing sidecar.
 */
#include "bs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Full blocks read into the caller's buffer with one pread, then checked
 * while they are still in the L2 cache: 4 (256 KiB) beat 1 and 8 in
 * `make bench-bs`. Buffers are page-aligned: copying out of the page cache
 * into a misaligned buffer ran 4x slower on the AMD test machine.
 */
#define BS__BATCH 4

struct bs_blob {
    int fd;
    uint64_t size;
    uint32_t *crcs;         /* bs__nblocks(size) entries */
    unsigned char *scratch; /* one block, for unaligned edges (NULL until one) */
};

int bs_blob_open(struct bs_store *bs, const char *sha256, struct bs_blob **out)
{
    int rc;
    if (!bs_valid_sha256(sha256))
        return BS_EINVAL;
    struct bs_blob *b = calloc(1, sizeof(*b));
    if (!b)
        return BS_ENOMEM;
    b->fd = -1;
    /* both files by their paths under the root: no directory to open and
     * close on every read (a download of a small binary is these calls) */
    char rel[72];
    bs__rel(sha256, false, rel);
    b->fd = openat(bs->root_fd, rel, O_RDONLY | O_CLOEXEC);
    if (b->fd < 0) {
        rc = errno == ENOENT ? BS_ENOTFOUND : BS_EIO;
        goto out_free;
    }
    struct stat st;
    if (fstat(b->fd, &st) < 0) {
        rc = BS_EIO;
        goto out_free;
    }
    b->size = (uint64_t)st.st_size;
    bs__rel(sha256, true, rel);
    rc = bs__crc_load(bs->root_fd, rel, b->size, &b->crcs);
    if (rc != BS_OK)
        goto out_free;
    *out = b;
    return BS_OK;
out_free:
    bs_blob_close(b);
    return rc;
}

uint64_t bs_blob_size(const struct bs_blob *b)
{
    return b->size;
}

int bs_blob_fd(const struct bs_blob *b)
{
    return b->fd;
}

int bs_blob_stat(struct bs_store *bs, const char *sha256, struct stat *out)
{
    if (!bs_valid_sha256(sha256))
        return BS_EINVAL;
    char rel[72];
    bs__rel(sha256, false, rel);
    if (fstatat(bs->root_fd, rel, out, 0) < 0)
        return errno == ENOENT ? BS_ENOTFOUND : BS_EIO;
    return BS_OK;
}

const uint32_t *bs_blob_crcs(const struct bs_blob *b, uint64_t *n)
{
    *n = bs__nblocks(b->size);
    return b->crcs;
}

void bs_blob_close(struct bs_blob *b)
{
    if (!b)
        return;
    if (b->fd >= 0)
        close(b->fd);
    free(b->crcs);
    free(b->scratch);
    free(b);
}

/* Read nbytes of whole blocks starting at block blk into dst and check
 * them: BS_OK, BS_ECORRUPT (mismatch or short file), BS_EIO. */
static int blob__load(struct bs_blob *b, uint64_t blk, unsigned char *dst, size_t nbytes)
{
    ssize_t r = bs__read_full(b->fd, dst, nbytes, blk * BS_BLOCK);
    if (r < 0)
        return BS_EIO;
    if ((size_t)r != nbytes)
        return BS_ECORRUPT;
    for (size_t o = 0; o < nbytes; o += BS_BLOCK, blk++) {
        size_t l = nbytes - o < BS_BLOCK ? nbytes - o : BS_BLOCK;
        if (bs_crc32c(0, dst + o, l) != b->crcs[blk])
            return BS_ECORRUPT;
    }
    return BS_OK;
}

ssize_t bs_blob_read(struct bs_blob *b, uint64_t off, void *buf, size_t len)
{
    unsigned char *out = buf;
    if (off >= b->size || len == 0)
        return 0;
    if (len > b->size - off)
        len = (size_t)(b->size - off);
    if (len > SSIZE_MAX)
        len = SSIZE_MAX; /* unreachable: no buffer is that large */
    size_t done = 0;
    while (done < len) {
        uint64_t pos = off + done;
        uint64_t blk = pos / BS_BLOCK, start = blk * BS_BLOCK;
        size_t blen = b->size - start < BS_BLOCK ? (size_t)(b->size - start) : BS_BLOCK;
        size_t want = len - done;
        int rc;
        if (pos == start && want >= blen) {
            /* whole blocks straight into the caller's buffer */
            size_t n = want == b->size - pos ? want : want / BS_BLOCK * BS_BLOCK;
            if (n > (size_t)BS__BATCH * BS_BLOCK)
                n = (size_t)BS__BATCH * BS_BLOCK;
            rc = blob__load(b, blk, out + done, n);
            if (rc != BS_OK)
                return rc;
            done += n;
        } else {
            /* page-aligned (see BS__BATCH), allocated at the first edge:
             * a whole small binary never needs it */
            if (!b->scratch && !(b->scratch = aligned_alloc(4096, BS_BLOCK)))
                return BS_ENOMEM;
            rc = blob__load(b, blk, b->scratch, blen);
            if (rc != BS_OK)
                return rc;
            size_t n = (size_t)(start + blen - pos);
            if (n > want)
                n = want;
            memcpy(out + done, b->scratch + (pos - start), n);
            done += n;
        }
    }
    return (ssize_t)done;
}

int bs_verify_blocks(struct bs_store *bs, const char *sha256)
{
    enum { CHUNK = 16 * BS_BLOCK };
    struct bs_blob *b = NULL;
    int rc = bs_blob_open(bs, sha256, &b);
    if (rc != BS_OK)
        return rc;
    unsigned char *buf = aligned_alloc(4096, CHUNK);
    if (!buf) {
        bs_blob_close(b);
        return BS_ENOMEM;
    }
    posix_fadvise(b->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    for (uint64_t off = 0; off < b->size; off += CHUNK) {
        ssize_t r = bs_blob_read(b, off, buf, CHUNK);
        if (r < 0) {
            rc = (int)r;
            break;
        }
    }
    free(buf);
    bs_blob_close(b);
    return rc;
}

int bs_crc_rebuild(struct bs_store *bs, const char *sha256)
{
    int rc;
    if (!bs_valid_sha256(sha256))
        return BS_EINVAL;
    int dfd = bs__subdir(bs, sha256, false);
    if (dfd < 0)
        return errno == ENOENT ? BS_ENOTFOUND : BS_EIO;
    int fd = openat(dfd, sha256, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = errno == ENOENT ? BS_ENOTFOUND : BS_EIO;
        goto out_close_dir;
    }
    uint64_t size = 0;
    uint32_t *crcs = NULL;
    rc = bs__crc_compute(fd, &size, &crcs);
    close(fd);
    if (rc != BS_OK)
        goto out_close_dir;
    size_t len;
    unsigned char *enc = bs__crc_encode(size, crcs, &len);
    free(crcs);
    if (!enc) {
        rc = BS_ENOMEM;
        goto out_close_dir;
    }
    char tmp[140];
    snprintf(tmp, sizeof(tmp), "%s%srb-%ld-%llu.crc", bs->tag, bs->tag[0] ? "-" : "",
             (long)getpid(), (unsigned long long)atomic_fetch_add(&bs->seq, 1));
    rc = bs__crc_install(bs, dfd, sha256, tmp, false, enc, len);
    free(enc);
    if (rc == BS_OK && fsync(dfd) < 0)
        rc = bs__errno();
out_close_dir:
    close(dfd);
    return rc;
}
