/*
 * sidecar.c - the .crc file beside each binary: encoding, checking, and
 * installing it durably before the data it describes becomes visible.
 * The layout is in bs_int.h and README.md.
 */
#include "bs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char crc__magic[8] = "GRCRC1\0";

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

int bs__errno(void)
{
    return (errno == ENOSPC || errno == EDQUOT) ? BS_ENOSPC : BS_EIO;
}

void bs__rel(const char *sha256, bool crc, char out[72])
{
    snprintf(out, 72, "%c%c/%s%s", sha256[0], sha256[1], sha256, crc ? ".crc" : "");
}

int bs__subdir(struct bs_store *bs, const char *sha256, bool create)
{
    char sub[3] = {sha256[0], sha256[1], '\0'};
    if (create && mkdirat(bs->root_fd, sub, 0750) < 0 && errno != EEXIST)
        return -1;
    return openat(bs->root_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

unsigned char *bs__crc_encode(uint64_t size, const uint32_t *crcs, size_t *len)
{
    uint64_t n = bs__nblocks(size);
    if (n > (SIZE_MAX - BS__CRC_HEAD - 4) / 4)
        return NULL;
    size_t l = BS__CRC_LEN(n);
    unsigned char *b = malloc(l);
    if (!b)
        return NULL;
    memcpy(b, crc__magic, 8);
    put32(b + 8, BS_BLOCK);
    put64(b + 12, size);
    for (uint64_t i = 0; i < n; i++)
        put32(b + BS__CRC_HEAD + 4 * i, crcs[i]);
    put32(b + l - 4, bs_crc32c(0, b, l - 4));
    *len = l;
    return b;
}

unsigned char *bs_sidecar_encode(uint64_t size, const uint32_t *crcs, size_t *len)
{
    return bs__crc_encode(size, crcs, len);
}

int bs_sidecar_decode(const void *buf, size_t len, uint64_t size, uint32_t **crcs)
{
    const unsigned char *b = buf;
    uint64_t n = bs__nblocks(size);
    *crcs = NULL;
    if (n > (SIZE_MAX - BS__CRC_HEAD - 4) / 4 || len != BS__CRC_LEN(n) ||
        memcmp(b, crc__magic, 8) != 0 || get32(b + 8) != BS_BLOCK || get64(b + 12) != size ||
        get32(b + len - 4) != bs_crc32c(0, b, len - 4))
        return BS_ENOCRC;
    uint32_t *c = n ? malloc(n * sizeof(*c)) : NULL;
    if (n && !c)
        return BS_ENOMEM;
    for (uint64_t i = 0; i < n; i++)
        c[i] = get32(b + BS__CRC_HEAD + 4 * i);
    *crcs = c;
    return BS_OK;
}

/* pread exactly len bytes: len, fewer at EOF, or -1 (errno). */
ssize_t bs__read_full(int fd, void *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int bs__crc_load(int dirfd, const char *name, uint64_t size, uint32_t **crcs)
{
    int rc = BS_ENOCRC;
    uint64_t n = bs__nblocks(size);
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? BS_ENOCRC : BS_EIO;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = BS_EIO;
        goto out_close;
    }
    if (n > (SIZE_MAX - BS__CRC_HEAD - 4) / 4 || (uint64_t)st.st_size != BS__CRC_LEN(n))
        goto out_close;
    size_t len = BS__CRC_LEN(n);
    unsigned char *b = malloc(len);
    uint32_t *c = n ? malloc(n * sizeof(*c)) : NULL;
    if (!b || (n && !c)) {
        rc = BS_ENOMEM;
        goto out_free;
    }
    ssize_t r = bs__read_full(fd, b, len, 0);
    if (r < 0) {
        rc = BS_EIO;
        goto out_free;
    }
    if ((size_t)r != len || memcmp(b, crc__magic, 8) != 0 || get32(b + 8) != BS_BLOCK ||
        get64(b + 12) != size || get32(b + len - 4) != bs_crc32c(0, b, len - 4))
        goto out_free;
    for (uint64_t i = 0; i < n; i++)
        c[i] = get32(b + BS__CRC_HEAD + 4 * i);
    free(b);
    close(fd);
    *crcs = c;
    return BS_OK;
out_free:
    free(b);
    free(c);
out_close:
    close(fd);
    return rc;
}

int bs__crc_compute(int fd, uint64_t *size, uint32_t **crcs)
{
    enum { CHUNK = 16 * BS_BLOCK };
    struct stat st;
    if (fstat(fd, &st) < 0)
        return BS_EIO;
    uint64_t sz = (uint64_t)st.st_size, n = bs__nblocks(sz);
    if (n > SIZE_MAX / sizeof(uint32_t))
        return BS_ENOMEM;
    uint32_t *c = n ? malloc(n * sizeof(*c)) : NULL;
    unsigned char *buf = aligned_alloc(4096, CHUNK);
    if ((n && !c) || !buf) {
        free(c);
        free(buf);
        return BS_ENOMEM;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    for (uint64_t off = 0; off < sz; off += CHUNK) {
        size_t want = sz - off < CHUNK ? (size_t)(sz - off) : CHUNK;
        ssize_t r = bs__read_full(fd, buf, want, off);
        if (r != (ssize_t)want) {
            if (r >= 0)
                errno = EIO; /* shrank under us */
            free(c);
            free(buf);
            return BS_EIO;
        }
        for (size_t b = 0; b < want; b += BS_BLOCK)
            c[(off + b) / BS_BLOCK] =
                bs_crc32c(0, buf + b, want - b < BS_BLOCK ? want - b : BS_BLOCK);
    }
    free(buf);
    *size = sz;
    *crcs = c;
    return BS_OK;
}

/*
 * Write a whole file name under dirfd and close it (fsynced first when
 * sync); removed on error. Sidecars are written without fsync: one lost or
 * torn by a crash fails its own CRC, reads as BS_ENOCRC, and the caller
 * re-hashes the data and rebuilds it (bs.h), so it need not cost a disk
 * flush on every upload.
 */
static int write_file_sync_at(int dirfd, const char *name, const void *buf, size_t len, bool sync)
{
    int rc, e;
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return bs__errno();
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            goto out_unlink;
        }
        p += w;
        len -= (size_t)w;
    }
    if (sync && fsync(fd) < 0)
        goto out_unlink;
    int f = fd;
    fd = -1;
    if (close(f) < 0)
        goto out_unlink;
    return BS_OK;
out_unlink:
    rc = bs__errno();
    e = errno;
    if (fd >= 0)
        close(fd);
    unlinkat(dirfd, name, 0);
    errno = e;
    return rc;
}

int bs__write_at(int dirfd, const char *name, const void *buf, size_t len)
{
    return write_file_sync_at(dirfd, name, buf, len, true);
}

int bs__write_tmp(struct bs_store *bs, const char *tmp, const void *buf, size_t len)
{
    return write_file_sync_at(bs->pre_fd, tmp, buf, len, false);
}

/* True when dfd/name holds exactly the len bytes of enc. */
static bool same_file(int dfd, const char *name, const unsigned char *enc, size_t len)
{
    bool same = false;
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    unsigned char *b = NULL;
    if (fstat(fd, &st) == 0 && (uint64_t)st.st_size == len && (b = malloc(len ? len : 1)))
        same = bs__read_full(fd, b, len, 0) == (ssize_t)len && memcmp(b, enc, len) == 0;
    free(b);
    close(fd);
    return same;
}

int bs__crc_install(struct bs_store *bs, int dfd, const char *sha256, const char *tmp,
                    bool tmp_ready, const unsigned char *enc, size_t len)
{
    char name[72];
    snprintf(name, sizeof(name), "%s.crc", sha256);
    if (same_file(dfd, name, enc, len)) {
        if (tmp_ready)
            unlinkat(bs->pre_fd, tmp, 0);
        return BS_OK;
    }
    if (!tmp_ready) {
        int rc = bs__write_tmp(bs, tmp, enc, len);
        if (rc != BS_OK)
            return rc;
    }
    if (renameat(bs->pre_fd, tmp, dfd, name) < 0) {
        int rc = bs__errno(), e = errno;
        unlinkat(bs->pre_fd, tmp, 0);
        errno = e;
        return rc;
    }
    /* no directory fsync here: the data's rename is made durable with the
     * same fsync, and a data file whose sidecar a crash lost reads as
     * BS_ENOCRC until it is re-hashed */
    return BS_OK;
}

int bs__publish(struct bs_store *bs, const char *name, const char *sha256, const char *tmp,
                bool tmp_ready, const unsigned char *enc, size_t len, bool *existed)
{
    int rc;
    int dfd = bs__subdir(bs, sha256, true);
    if (dfd < 0) {
        rc = bs__errno();
        if (tmp_ready)
            unlinkat(bs->pre_fd, tmp, 0);
        return rc;
    }
    rc = bs__crc_install(bs, dfd, sha256, tmp, tmp_ready, enc, len);
    if (rc != BS_OK)
        goto out_close;
    /* renameat2(NOREPLACE) keeps an existing copy (the same bytes) in place */
    int mv = renameat2(bs->pre_fd, name, dfd, sha256, RENAME_NOREPLACE);
    if (mv < 0 && errno == EINVAL) {
        /* a file system without RENAME_NOREPLACE (NFS): link(2) fails with
         * EEXIST when the name is taken, atomically on the server too */
        mv = linkat(bs->pre_fd, name, dfd, sha256, 0);
        if (mv == 0)
            unlinkat(bs->pre_fd, name, 0);
    }
    if (mv < 0) {
        if (errno == EEXIST) {
            if (existed)
                *existed = true;
            unlinkat(bs->pre_fd, name, 0);
        } else {
            rc = errno == ENOENT ? BS_ENOTFOUND : bs__errno();
        }
        goto out_close;
    }
    if (fsync(dfd) < 0)
        rc = bs__errno();
out_close:
    close(dfd);
    return rc;
}
