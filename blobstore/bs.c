/* bs.c - local content-addressed store: streaming temp files, fsync, rename. */
#include "bs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

struct bs_store {
    char *root;
    int root_fd;
    int pre_fd;
    atomic_uint_fast64_t seq;
};

/* Start writeback of every this many bytes while the upload streams, so the
 * final fsync waits for the tail only, not for the whole file. */
#define BS_WRITEBACK_CHUNK (8u * 1024 * 1024)

struct bs_upload {
    struct bs_store *bs;
    int fd;
    uint64_t size;
    uint64_t flushed; /* bytes handed to writeback */
    char name[64];    /* file name under _pre/ */
};

const char *bs_strerror(int err)
{
    switch (err) {
    case BS_OK:
        return "success";
    case BS_ENOTFOUND:
        return "binary not found";
    case BS_EIO:
        return "i/o error";
    case BS_ENOSPC:
        return "no space left on device";
    case BS_EINVAL:
        return "invalid argument";
    case BS_ENOMEM:
        return "out of memory";
    }
    return "unknown error";
}

static int bs__errno(void)
{
    return (errno == ENOSPC || errno == EDQUOT) ? BS_ENOSPC : BS_EIO;
}

bool bs_valid_sha256(const char *s)
{
    size_t i;
    for (i = 0; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')) || i >= 64)
            return false;
    return i == 64;
}

static void bs__clean_pre(int pre_fd)
{
    int fd = dup(pre_fd);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            unlinkat(pre_fd, e->d_name, 0);
    closedir(d);
}

int bs_open(const char *dir, struct bs_store **out)
{
    struct bs_store *bs = calloc(1, sizeof(*bs));
    if (!bs)
        return BS_ENOMEM;
    bs->root = strdup(dir);
    bs->root_fd = bs->pre_fd = -1;
    if (!bs->root)
        goto out_nomem;
    if (mkdir(dir, 0750) < 0 && errno != EEXIST)
        goto out_io;
    bs->root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (bs->root_fd < 0)
        goto out_io;
    if (mkdirat(bs->root_fd, "_pre", 0750) < 0 && errno != EEXIST)
        goto out_io;
    bs->pre_fd = openat(bs->root_fd, "_pre", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (bs->pre_fd < 0)
        goto out_io;
    bs__clean_pre(bs->pre_fd);
    *out = bs;
    return BS_OK;
out_io:
    bs_close(bs);
    return BS_EIO;
out_nomem:
    bs_close(bs);
    return BS_ENOMEM;
}

void bs_close(struct bs_store *bs)
{
    if (!bs)
        return;
    if (bs->pre_fd >= 0)
        close(bs->pre_fd);
    if (bs->root_fd >= 0)
        close(bs->root_fd);
    free(bs->root);
    free(bs);
}

int bs_upload_begin(struct bs_store *bs, struct bs_upload **out)
{
    struct bs_upload *u = calloc(1, sizeof(*u));
    if (!u)
        return BS_ENOMEM;
    u->bs = bs;
    uint64_t n = atomic_fetch_add(&bs->seq, 1);
    snprintf(u->name, sizeof(u->name), "%ld-%llu", (long)getpid(), (unsigned long long)n);
    u->fd = openat(bs->pre_fd, u->name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (u->fd < 0) {
        int rc = bs__errno();
        free(u);
        return rc;
    }
    *out = u;
    return BS_OK;
}

int bs_upload_write(struct bs_upload *u, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(u->fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return bs__errno();
        }
        p += w;
        len -= (size_t)w;
        u->size += (uint64_t)w;
    }
    if (u->size - u->flushed >= BS_WRITEBACK_CHUNK) {
        /* asynchronous: starts the disk writes now, waits for nothing */
        sync_file_range(u->fd, (off64_t)u->flushed, (off64_t)(u->size - u->flushed),
                        SYNC_FILE_RANGE_WRITE);
        u->flushed = u->size;
    }
    return BS_OK;
}

uint64_t bs_upload_size(const struct bs_upload *u)
{
    return u->size;
}

void bs_upload_abort(struct bs_upload *u)
{
    if (!u)
        return;
    if (u->fd >= 0)
        close(u->fd);
    unlinkat(u->bs->pre_fd, u->name, 0);
    free(u);
}

static int bs__subdir(struct bs_store *bs, const char *sha256, bool create)
{
    char sub[3] = {sha256[0], sha256[1], '\0'};
    if (create && mkdirat(bs->root_fd, sub, 0750) < 0 && errno != EEXIST)
        return -1;
    return openat(bs->root_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int bs_upload_commit(struct bs_upload *u, const char *sha256, bool *existed)
{
    int rc = BS_OK;
    if (existed)
        *existed = false;
    if (!bs_valid_sha256(sha256)) {
        bs_upload_abort(u);
        return BS_EINVAL;
    }
    if (fsync(u->fd) < 0) {
        rc = bs__errno();
        bs_upload_abort(u);
        return rc;
    }
    close(u->fd);
    u->fd = -1;
    int dfd = bs__subdir(u->bs, sha256, true);
    if (dfd < 0) {
        rc = bs__errno();
        bs_upload_abort(u);
        return rc;
    }
    /* renameat2(NOREPLACE) keeps an existing copy (the same bytes) in place */
    if (renameat2(u->bs->pre_fd, u->name, dfd, sha256, RENAME_NOREPLACE) < 0) {
        if (errno == EEXIST) {
            if (existed)
                *existed = true;
        } else {
            rc = bs__errno();
        }
        bs_upload_abort(u);
        close(dfd);
        return rc;
    }
    if (fsync(dfd) < 0)
        rc = bs__errno();
    close(dfd);
    free(u);
    return rc;
}

int bs_open_blob(struct bs_store *bs, const char *sha256, int *fd, uint64_t *size)
{
    if (!bs_valid_sha256(sha256))
        return BS_EINVAL;
    char rel[3 + 65];
    snprintf(rel, sizeof(rel), "%c%c/%s", sha256[0], sha256[1], sha256);
    int f = openat(bs->root_fd, rel, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        return errno == ENOENT ? BS_ENOTFOUND : BS_EIO;
    struct stat st;
    if (fstat(f, &st) < 0) {
        close(f);
        return BS_EIO;
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return BS_OK;
}

bool bs_has(struct bs_store *bs, const char *sha256)
{
    if (!bs_valid_sha256(sha256))
        return false;
    char rel[3 + 65];
    snprintf(rel, sizeof(rel), "%c%c/%s", sha256[0], sha256[1], sha256);
    return faccessat(bs->root_fd, rel, F_OK, 0) == 0;
}

int64_t bs_total_bytes(struct bs_store *bs)
{
    struct statvfs v;
    if (fstatvfs(bs->root_fd, &v) < 0)
        return -1;
    return (int64_t)v.f_blocks * (int64_t)v.f_frsize;
}

const char *bs_root(const struct bs_store *bs)
{
    return bs->root;
}

int64_t bs_free_bytes(struct bs_store *bs)
{
    struct statvfs v;
    if (fstatvfs(bs->root_fd, &v) < 0)
        return -1;
    return (int64_t)v.f_bavail * (int64_t)v.f_frsize;
}
