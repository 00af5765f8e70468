/*
 * bs.c - local content-addressed store: open and identity, streaming temp
 * files with their block CRCs, commit and staging, quarantine, delete and
 * the ordered walk. Sidecar files are in sidecar.c, checked reads in blob.c.
 */
#include "bs_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* Start writeback of every this many bytes while the upload streams, so the
 * final fsync waits for the tail only, not for the whole file. */
#define BS_WRITEBACK_CHUNK (8u * 1024 * 1024)

struct bs_upload {
    struct bs_store *bs;
    int fd;
    int err; /* sticky: the first write error; commit refuses */
    uint64_t size;
    uint64_t flushed; /* bytes handed to writeback */
    uint64_t synced;  /* size at the last bs_upload_sync(), if has_synced */
    bool has_synced;
    uint32_t cur;   /* CRC32C of the current, partial block */
    uint32_t fill;  /* bytes in it: size % BS_BLOCK */
    uint32_t *crcs; /* CRC32C of each full block */
    size_t ncrcs, cap;
    char name[128]; /* file name under _pre/ */
    char *path;     /* absolute path of _pre/<name> */
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
    case BS_ECORRUPT:
        return "checksum mismatch";
    case BS_ENOCRC:
        return "no block checksums";
    }
    return "unknown error";
}

bool bs_valid_sha256(const char *s)
{
    size_t i;
    for (i = 0; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')) || i >= 64)
            return false;
    return i == 64;
}

/* Remove what _pre/ holds: everything, or (a shared store) this writer's
 * leftovers only, named "<tag>-...". */
static void bs__clean_pre(int pre_fd, const char *tag)
{
    size_t tl = strlen(tag);
    int fd = openat(pre_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && (!tl || (!strncmp(e->d_name, tag, tl) && e->d_name[tl] == '-')))
            unlinkat(pre_fd, e->d_name, 0);
    closedir(d);
}

static bool bs__hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* n random bytes as 2n lowercase hex characters and a NUL. */
static int bs__random_hex(char *out, size_t n)
{
    unsigned char r[32];
    size_t got = 0;
    if (n > sizeof(r))
        return BS_EINVAL;
    while (got < n) {
        ssize_t k = getrandom(r + got, n - got, 0);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return BS_EIO;
        }
        got += (size_t)k;
    }
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
    return BS_OK;
}

/* Read STORE_ID, or make a new one durable when it is missing or not 32
 * hex characters (a damaged identity must not be mistaken for a known one). */
static int bs__load_id(struct bs_store *bs)
{
    char buf[64];
    int fd = openat(bs->root_fd, "STORE_ID", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = bs__read_full(fd, buf, sizeof(buf), 0);
        close(fd);
        if (n < 0)
            return BS_EIO;
        if ((n == 32 || (n == 33 && buf[32] == '\n')) && bs__hex(buf, 32)) {
            memcpy(bs->id, buf, 32);
            bs->id[32] = '\0';
            return BS_OK;
        }
    } else if (errno != ENOENT) {
        return BS_EIO;
    }
    int rc = bs__random_hex(bs->id, 16);
    if (rc != BS_OK)
        return rc;
    memcpy(buf, bs->id, 32);
    buf[32] = '\n';
    rc = bs__write_at(bs->root_fd, "STORE_ID.tmp", buf, 33);
    if (rc != BS_OK)
        return rc;
    if (renameat(bs->root_fd, "STORE_ID.tmp", bs->root_fd, "STORE_ID") < 0) {
        rc = bs__errno();
        unlinkat(bs->root_fd, "STORE_ID.tmp", 0);
        return rc;
    }
    return fsync(bs->root_fd) < 0 ? bs__errno() : BS_OK;
}

static int bs__open(const char *dir, const char *tag, struct bs_store **out)
{
    int rc = BS_EIO;
    struct bs_store *bs = calloc(1, sizeof(*bs));
    if (!bs)
        return BS_ENOMEM;
    bs->root = strdup(dir);
    bs->root_fd = bs->pre_fd = -1;
    snprintf(bs->tag, sizeof(bs->tag), "%s", tag);
    if (!bs->root)
        goto out_nomem;
    if (mkdir(dir, 0750) < 0 && errno != EEXIST)
        goto out_io;
    bs->root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (bs->root_fd < 0)
        goto out_io;
    bs->abs_root = realpath(dir, NULL);
    if (!bs->abs_root) {
        if (errno == ENOMEM)
            goto out_nomem;
        goto out_io;
    }
    if (mkdirat(bs->root_fd, "_pre", 0750) < 0 && errno != EEXIST)
        goto out_io;
    bs->pre_fd = openat(bs->root_fd, "_pre", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (bs->pre_fd < 0)
        goto out_io;
    bs__clean_pre(bs->pre_fd, bs->tag);
    rc = bs__load_id(bs);
    if (rc != BS_OK)
        goto out_io;
    *out = bs;
    return BS_OK;
out_io:
    bs_close(bs);
    return rc;
out_nomem:
    bs_close(bs);
    return BS_ENOMEM;
}

int bs_open(const char *dir, struct bs_store **out)
{
    return bs__open(dir, "", out);
}

int bs_open_shared(const char *dir, const char *tag, struct bs_store **out)
{
    if (!tag || !*tag || strlen(tag) > 64 || strchr(tag, '/') || tag[0] == '.' ||
        !strncmp(tag, "stage", 5))
        return BS_EINVAL;
    return bs__open(dir, tag, out);
}

void bs_close(struct bs_store *bs)
{
    if (!bs)
        return;
    if (bs->pre_fd >= 0)
        close(bs->pre_fd);
    if (bs->root_fd >= 0)
        close(bs->root_fd);
    free(bs->abs_root);
    free(bs->root);
    free(bs);
}

const char *bs_store_id(const struct bs_store *bs)
{
    return bs->id;
}

int bs_upload_begin(struct bs_store *bs, struct bs_upload **out)
{
    struct bs_upload *u = calloc(1, sizeof(*u));
    if (!u)
        return BS_ENOMEM;
    u->bs = bs;
    uint64_t n = atomic_fetch_add(&bs->seq, 1);
    if (bs->tag[0]) /* a shared store: names unique across its writers */
        snprintf(u->name, sizeof(u->name), "%s-%ld-%llu", bs->tag, (long)getpid(),
                 (unsigned long long)n);
    else
        snprintf(u->name, sizeof(u->name), "%ld-%llu", (long)getpid(), (unsigned long long)n);
    size_t plen = strlen(bs->abs_root) + sizeof("/_pre/") + strlen(u->name);
    u->path = malloc(plen);
    if (!u->path) {
        free(u);
        return BS_ENOMEM;
    }
    snprintf(u->path, plen, "%s/_pre/%s", bs->abs_root, u->name);
    u->fd = openat(bs->pre_fd, u->name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (u->fd < 0) {
        int rc = bs__errno();
        free(u->path);
        free(u);
        return rc;
    }
    *out = u;
    return BS_OK;
}

/* Fold n freshly written bytes into the block CRCs. */
static int upload__crc(struct bs_upload *u, const unsigned char *p, size_t n)
{
    while (n > 0) {
        size_t take = BS_BLOCK - u->fill;
        if (take > n)
            take = n;
        u->cur = bs_crc32c(u->cur, p, take);
        u->fill += (uint32_t)take;
        p += take;
        n -= take;
        if (u->fill < BS_BLOCK)
            break;
        if (u->ncrcs == u->cap) {
            size_t cap = u->cap ? 2 * u->cap : 64;
            uint32_t *c = realloc(u->crcs, cap * sizeof(*c));
            if (!c)
                return BS_ENOMEM;
            u->crcs = c;
            u->cap = cap;
        }
        u->crcs[u->ncrcs++] = u->cur;
        u->cur = 0;
        u->fill = 0;
    }
    return BS_OK;
}

int bs_upload_write(struct bs_upload *u, const void *data, size_t len)
{
    const unsigned char *p = data;
    if (u->err)
        return u->err;
    while (len > 0) {
        ssize_t w = write(u->fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return u->err = bs__errno();
        }
        int rc = upload__crc(u, p, (size_t)w);
        if (rc != BS_OK)
            return u->err = rc;
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

struct bs_store *bs_upload_store(const struct bs_upload *u)
{
    return u->bs;
}

/* The partial last block's checksum into the slot after the whole blocks'
 * (not counted in ncrcs: more bytes may follow). false: out of memory. */
static bool upload__last_block(struct bs_upload *u)
{
    if (u->fill == 0)
        return true;
    if (u->ncrcs == u->cap) {
        uint32_t *c = realloc(u->crcs, (u->cap + 1) * sizeof(*c));
        if (!c)
            return false;
        u->crcs = c;
        u->cap++;
    }
    u->crcs[u->ncrcs] = u->cur;
    return true;
}

const uint32_t *bs_upload_crcs(struct bs_upload *u, uint64_t *n)
{
    *n = 0;
    if (!upload__last_block(u))
        return NULL;
    *n = u->ncrcs + (u->fill > 0);
    return u->crcs;
}

const char *bs_upload_path(const struct bs_upload *u)
{
    return u->path;
}

int bs_upload_sync(struct bs_upload *u)
{
    if (u->err)
        return u->err;
    if (u->has_synced && u->synced == u->size)
        return BS_OK;
    if (fsync(u->fd) < 0)
        return bs__errno();
    u->has_synced = true;
    u->synced = u->size;
    return BS_OK;
}

/* Free the upload; its temp file is removed when unlink is set. */
static void upload__free(struct bs_upload *u, bool unlink)
{
    if (u->fd >= 0)
        close(u->fd);
    if (unlink)
        unlinkat(u->bs->pre_fd, u->name, 0);
    free(u->crcs);
    free(u->path);
    free(u);
}

void bs_upload_abort(struct bs_upload *u)
{
    if (u)
        upload__free(u, true);
}

/* The upload's sidecar, encoded (malloc'ed); NULL when out of memory. */
static unsigned char *upload__encode(struct bs_upload *u, size_t *len)
{
    if (!upload__last_block(u))
        return NULL;
    return bs__crc_encode(u->size, u->crcs, len);
}

/* Everything commit and stage do before the data moves: validate, fsync,
 * close, encode. The upload is freed (temp file removed) on error. */
static int upload__finish(struct bs_upload *u, const char *sha256, unsigned char **enc, size_t *len)
{
    int rc = BS_EINVAL;
    if (!bs_valid_sha256(sha256))
        goto out_abort;
    rc = bs_upload_sync(u);
    if (rc != BS_OK)
        goto out_abort;
    if (close(u->fd) < 0) {
        u->fd = -1;
        rc = BS_EIO;
        goto out_abort;
    }
    u->fd = -1;
    *enc = upload__encode(u, len);
    if (!*enc) {
        rc = BS_ENOMEM;
        goto out_abort;
    }
    return BS_OK;
out_abort:
    bs_upload_abort(u);
    return rc;
}

int bs_upload_commit(struct bs_upload *u, const char *sha256, bool *existed)
{
    unsigned char *enc;
    size_t len;
    if (existed)
        *existed = false;
    int rc = upload__finish(u, sha256, &enc, &len);
    if (rc != BS_OK)
        return rc;
    char tmp[140];
    snprintf(tmp, sizeof(tmp), "%s.crc", u->name);
    rc = bs__publish(u->bs, u->name, sha256, tmp, false, enc, len, existed);
    free(enc);
    upload__free(u, rc != BS_OK);
    return rc;
}

/* ---- staging -------------------------------------------------------------- */

static bool bs__valid_stage_id(const char *id)
{
    return id && strlen(id) == BS_STAGE_ID - 1 && bs__hex(id, BS_STAGE_ID - 1);
}

int bs_upload_stage(struct bs_upload *u, const char *sha256, char id[BS_STAGE_ID])
{
    unsigned char *enc;
    size_t len;
    struct bs_store *bs = u->bs;
    /* stamp the stage time first: bs_stage_expire() goes by mtime */
    if (!u->err && u->fd >= 0)
        futimens(u->fd, NULL);
    int rc = upload__finish(u, sha256, &enc, &len);
    if (rc != BS_OK)
        return rc;
    char sid[BS_STAGE_ID], name[48], tmp[48];
    rc = bs__random_hex(sid, 16);
    if (rc != BS_OK)
        goto out_abort;
    snprintf(name, sizeof(name), "stage-%s", sid);
    snprintf(tmp, sizeof(tmp), "stage-%s.crc", sid);
    rc = bs__write_tmp(bs, tmp, enc, len);
    if (rc != BS_OK)
        goto out_abort;
    if (renameat(bs->pre_fd, u->name, bs->pre_fd, name) < 0) {
        rc = bs__errno();
        unlinkat(bs->pre_fd, tmp, 0);
        goto out_abort;
    }
    free(enc);
    upload__free(u, false);
    memcpy(id, sid, BS_STAGE_ID);
    return BS_OK;
out_abort:
    free(enc);
    upload__free(u, true);
    return rc;
}

int bs_stage_commit(struct bs_store *bs, const char *id, const char *sha256, bool *existed)
{
    int rc;
    if (existed)
        *existed = false;
    if (!bs__valid_stage_id(id) || !bs_valid_sha256(sha256))
        return BS_EINVAL;
    char name[48], tmp[48];
    snprintf(name, sizeof(name), "stage-%s", id);
    snprintf(tmp, sizeof(tmp), "stage-%s.crc", id);
    int fd = openat(bs->pre_fd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? BS_ENOTFOUND : BS_EIO;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return BS_EIO;
    }
    uint64_t size = (uint64_t)st.st_size;
    uint32_t *crcs = NULL;
    bool ready = true;
    rc = bs__crc_load(bs->pre_fd, tmp, size, &crcs);
    if (rc == BS_ENOCRC) {
        /* lost or damaged: the data was fsynced when staged, recompute */
        ready = false;
        unlinkat(bs->pre_fd, tmp, 0);
        rc = bs__crc_compute(fd, &size, &crcs);
    }
    close(fd);
    if (rc != BS_OK)
        return rc;
    size_t len;
    unsigned char *enc = bs__crc_encode(size, crcs, &len);
    free(crcs);
    if (!enc)
        return BS_ENOMEM;
    rc = bs__publish(bs, name, sha256, tmp, ready, enc, len, existed);
    free(enc);
    return rc;
}

void bs_stage_abort(struct bs_store *bs, const char *id)
{
    if (!bs__valid_stage_id(id))
        return;
    char name[48];
    snprintf(name, sizeof(name), "stage-%s", id);
    unlinkat(bs->pre_fd, name, 0);
    snprintf(name, sizeof(name), "stage-%s.crc", id);
    unlinkat(bs->pre_fd, name, 0);
}

int bs_stage_expire(struct bs_store *bs, int64_t older_than_s)
{
    int n = 0;
    int fd = openat(bs->pre_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return BS_EIO;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return BS_EIO;
    }
    time_t limit = time(NULL) - (time_t)older_than_s;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *id = e->d_name + 6;
        size_t l = strlen(e->d_name);
        bool crc = l == 6 + 32 + 4 && strcmp(e->d_name + 38, ".crc") == 0;
        if (strncmp(e->d_name, "stage-", 6) != 0 || (l != 6 + 32 && !crc) || !bs__hex(id, 32))
            continue;
        struct stat st;
        if (fstatat(bs->pre_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_mtime > limit)
            continue;
        if (!crc) {
            if (unlinkat(bs->pre_fd, e->d_name, 0) == 0)
                n++;
            char side[48];
            snprintf(side, sizeof(side), "%s.crc", e->d_name);
            unlinkat(bs->pre_fd, side, 0);
        } else {
            /* an orphan sidecar (its data already gone) */
            char data[48];
            snprintf(data, sizeof(data), "stage-%.32s", id);
            if (faccessat(bs->pre_fd, data, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
                unlinkat(bs->pre_fd, e->d_name, 0);
        }
        if (n == INT_MAX)
            break;
    }
    closedir(d);
    return n;
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

/* ---- quarantine and delete ------------------------------------------------ */

int bs_quarantine(struct bs_store *bs, const char *sha256)
{
    int rc = BS_OK;
    if (!bs_valid_sha256(sha256))
        return BS_EINVAL;
    int dfd = bs__subdir(bs, sha256, false);
    if (dfd < 0)
        return errno == ENOENT ? BS_ENOTFOUND : BS_EIO;
    if (mkdirat(bs->root_fd, "_quarantine", 0750) < 0 && errno != EEXIST) {
        close(dfd);
        return BS_EIO;
    }
    int qfd = openat(bs->root_fd, "_quarantine", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (qfd < 0) {
        close(dfd);
        return BS_EIO;
    }
    char name[112], side[72];
    long long t = (long long)time(NULL);
    for (int k = 0;; k++) {
        if (k == 0)
            snprintf(name, sizeof(name), "%s.%lld", sha256, t);
        else
            snprintf(name, sizeof(name), "%s.%lld.%d", sha256, t, k);
        if (renameat2(dfd, sha256, qfd, name, RENAME_NOREPLACE) == 0)
            break;
        if (errno != EEXIST || k == 1000) {
            rc = errno == ENOENT ? BS_ENOTFOUND : BS_EIO;
            goto out_close;
        }
    }
    /* the data is out of service; its sidecar follows (or goes) */
    snprintf(side, sizeof(side), "%s.crc", sha256);
    strcat(name, ".crc");
    if (renameat(dfd, side, qfd, name) < 0 && errno != ENOENT)
        unlinkat(dfd, side, 0);
    if (fsync(qfd) < 0 || fsync(dfd) < 0)
        rc = BS_EIO;
out_close:
    close(qfd);
    close(dfd);
    return rc;
}

int64_t bs_quarantine_count(struct bs_store *bs)
{
    int64_t n = 0;
    int fd = openat(bs->root_fd, "_quarantine", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] != '.' && !(l > 4 && strcmp(e->d_name + l - 4, ".crc") == 0))
            n++;
    }
    closedir(d);
    return n;
}

int bs_delete(struct bs_store *bs, const char *sha256)
{
    int rc = BS_OK;
    if (!bs_valid_sha256(sha256))
        return BS_EINVAL;
    int dfd = bs__subdir(bs, sha256, false);
    if (dfd < 0)
        return errno == ENOENT ? BS_ENOTFOUND : BS_EIO;
    /* data first: a visible data file always has its sidecar */
    if (unlinkat(dfd, sha256, 0) < 0) {
        if (errno != ENOENT) {
            close(dfd);
            return BS_EIO;
        }
        rc = BS_ENOTFOUND;
    }
    char side[72];
    snprintf(side, sizeof(side), "%s.crc", sha256);
    if (unlinkat(dfd, side, 0) < 0 && errno != ENOENT && rc == BS_OK)
        rc = BS_EIO;
    if (fsync(dfd) < 0 && rc == BS_OK)
        rc = BS_EIO;
    close(dfd);
    return rc;
}

/* ---- the ordered walk ----------------------------------------------------- */

struct each__names {
    char (*v)[65];
    size_t n, cap;
};

static int each__cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Valid hash names of one <aa>/ directory that sort after `after`, sorted. */
static int each__list(int dfd, const char *sub, const char *after, struct each__names *names)
{
    names->n = 0;
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return BS_EIO;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return BS_EIO;
    }
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] != sub[0] || e->d_name[1] != sub[1] || !bs_valid_sha256(e->d_name) ||
            strcmp(e->d_name, after) <= 0)
            continue;
        if (names->n == names->cap) {
            size_t cap = names->cap ? 2 * names->cap : 256;
            char(*v)[65] = realloc(names->v, cap * sizeof(*v));
            if (!v) {
                closedir(d);
                return BS_ENOMEM;
            }
            names->v = v;
            names->cap = cap;
        }
        memcpy(names->v[names->n++], e->d_name, 65);
        errno = 0;
    }
    int rc = errno ? BS_EIO : BS_OK;
    closedir(d);
    if (names->n > 1)
        qsort(names->v, names->n, sizeof(*names->v), each__cmp);
    return rc;
}

int bs_each(struct bs_store *bs, const char *after,
            int (*fn)(void *arg, const char *sha256, uint64_t size), void *arg)
{
    int rc = BS_OK;
    struct each__names names = {0};
    if (!after)
        after = "";
    for (int i = 0; i < 256 && rc == BS_OK; i++) {
        static const char hex[] = "0123456789abcdef";
        char sub[3] = {hex[i >> 4], hex[i & 15], '\0'};
        if (strncmp(sub, after, 2) < 0)
            continue;
        int dfd = openat(bs->root_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
            if (errno != ENOENT)
                rc = BS_EIO;
            continue;
        }
        rc = each__list(dfd, sub, after, &names);
        for (size_t k = 0; k < names.n && rc == BS_OK; k++) {
            struct stat st;
            if (fstatat(dfd, names.v[k], &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno != ENOENT)
                    rc = BS_EIO;
                continue;
            }
            if (S_ISREG(st.st_mode))
                rc = fn(arg, names.v[k], (uint64_t)st.st_size);
        }
        close(dfd);
    }
    free(names.v);
    return rc;
}
