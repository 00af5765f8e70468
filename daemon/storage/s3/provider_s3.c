/*
 * provider_s3.c - the s3 provider (provider.h): a binary is the object
 * "<prefix><aa>/<sha256>" and its block checksums the object
 * "<prefix><aa>/<sha256>.crc" (the blobstore's sidecar format), written
 * before the data, so that a data object is never visible without them.
 * Large binaries go up in parts (each retried); a failed multipart upload
 * is aborted. Reads fetch whole blocks, a window at a time, and check
 * every block against the sidecar before a byte of it is returned.
 */
#include "storage/provider.h"
#include "storage/s3/s3.h"

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

#define S3P_MULTIPART_MIN (32ull << 20) /* binaries from this size go up in parts */
#define S3P_PART (16ull << 20)
#define S3P_TRIES 3
#define S3P_WINDOW_BLOCKS 64 /* blocks per GET of a read (4 MiB) */
#define S3P_SIDECAR_MAX (64u << 20)

void storage_s3_key(const char *sha256, bool crc, char out[80])
{
    snprintf(out, 80, "%.2s/%.64s%s", sha256, sha256, crc ? ".crc" : "");
}

static void s3p__b64_sha256(const char *hex, char out[48])
{
    unsigned char raw[32];
    for (int i = 0; i < 32; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        raw[i] = (unsigned char)v;
    }
    size_t n = cr_base64_encode(raw, 32, out);
    out[n] = '\0';
}

/* Retry a call that failed on the way (no answer, a 5xx) a few times. */
#define S3P_RETRY(rc, call)                                                                        \
    do {                                                                                           \
        for (int try_ = 0; try_ < S3P_TRIES; try_++) {                                             \
            rc = (call);                                                                           \
            if (rc != GR_EUNAVAIL && rc != GR_EIO)                                                 \
                break;                                                                             \
            if (try_ + 1 < S3P_TRIES)                                                              \
                usleep(200000u * (unsigned)(try_ + 1));                                            \
        }                                                                                          \
    } while (0)

static int s3p__multipart(struct s3 *s, const char *key, int fd, uint64_t size, char *err,
                          size_t errsz)
{
    char id[256];
    int rc;
    S3P_RETRY(rc, s3_mp_create(s, key, id, err, errsz));
    if (rc)
        return rc;
    int n = (int)((size + S3P_PART - 1) / S3P_PART);
    char(*etags)[80] = calloc((size_t)n, sizeof(*etags));
    if (!etags) {
        s3_mp_abort(s, key, id);
        return GR_ENOMEM;
    }
    for (int i = 0; rc == GR_OK && i < n; i++) {
        uint64_t off = (uint64_t)i * S3P_PART;
        uint64_t len = size - off < S3P_PART ? size - off : S3P_PART;
        S3P_RETRY(rc, s3_mp_part(s, key, id, i + 1, fd, off, len, etags[i], err, errsz));
        if (rc)
            gr_warn("s3: part %d of %s failed: %s", i + 1, key, err);
    }
    if (rc == GR_OK) {
        S3P_RETRY(rc, s3_mp_complete(s, key, id, etags, n, err, errsz));
        /* a completion whose answer was lost (a retry then finds the upload
         * gone): the object of that sha256 and size is there all the same */
        uint64_t have = 0;
        char herr[160];
        if (rc && rc != GR_EAUTH && s3_head(s, key, &have, herr, sizeof(herr)) == GR_OK &&
            have == size) {
            gr_warn("s3: completing the upload of %s failed (%s), but the object is there", key,
                    err);
            rc = GR_OK;
        }
    }
    free(etags);
    if (rc)
        s3_mp_abort(s, key, id); /* its parts are not left behind in the bucket */
    return rc;
}

static int s3p__put(struct storage_provider *p, const char *sha256, const char *path, uint64_t size,
                    const uint32_t *crcs, char *err, size_t errsz)
{
    char key[80], ckey[80];
    storage_s3_key(sha256, false, key);
    storage_s3_key(sha256, true, ckey);
    uint64_t have = 0, chave = 0;
    int rc = s3_head(p->s3, key, &have, err, errsz);
    int crc = rc == GR_OK && have == size ? s3_head(p->s3, ckey, &chave, err, errsz) : rc;
    if (rc == GR_OK && have == size && crc == GR_OK)
        return GR_OK; /* the same content is there, with its sidecar */
    if ((rc != GR_OK && rc != GR_ENOTFOUND) || (crc != GR_OK && crc != GR_ENOTFOUND))
        return rc != GR_OK && rc != GR_ENOTFOUND ? rc : crc;
    size_t elen = 0;
    unsigned char *enc = bs_sidecar_encode(size, crcs, &elen);
    if (!enc)
        return GR_ENOMEM;
    S3P_RETRY(rc, s3_put_buf(p->s3, ckey, enc, elen, err, errsz));
    free(enc);
    if (rc)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errsz, "cannot open %s: %s", path, strerror(errno));
        return GR_EIO;
    }
    if (size >= S3P_MULTIPART_MIN) {
        rc = s3p__multipart(p->s3, key, fd, size, err, errsz);
    } else {
        char b64[48];
        s3p__b64_sha256(sha256, b64);
        S3P_RETRY(rc, s3_put_fd(p->s3, key, fd, 0, size, sha256, b64, err, errsz));
    }
    close(fd);
    return rc;
}

struct storage_pread {
    struct storage_provider *p;
    char key[80];
    uint64_t size, pos, end;
    uint32_t *crcs;
    unsigned char *win; /* blocks [win_first, win_first + win_n) */
    uint64_t win_first, win_n;
    size_t win_len;
};

static uint64_t s3p__nblocks(uint64_t size)
{
    return (size + BS_BLOCK - 1) / BS_BLOCK;
}

/* Fetch and check the window of blocks that holds byte pos. */
static int s3p__window(struct storage_pread *r, uint64_t pos)
{
    char err[200];
    uint64_t first = pos / BS_BLOCK, total = s3p__nblocks(r->size);
    uint64_t lastb = (r->end - 1) / BS_BLOCK + 1; /* blocks the read still needs */
    uint64_t n = lastb - first < S3P_WINDOW_BLOCKS ? lastb - first : S3P_WINDOW_BLOCKS;
    if (first + n > total)
        n = total - first;
    uint64_t from = first * BS_BLOCK;
    uint64_t len = (first + n) * BS_BLOCK < r->size ? n * BS_BLOCK : r->size - from;
    size_t got = 0;
    uint64_t osize = 0;
    int rc;
    S3P_RETRY(rc, s3_get(r->p->s3, r->key, from, len, r->win, (size_t)len, &got, &osize, err,
                         sizeof(err)));
    if (rc == GR_OK && (got != len || osize != r->size)) {
        snprintf(err, sizeof(err), "got %zu of %llu bytes (object of %llu)", got,
                 (unsigned long long)len, (unsigned long long)osize);
        rc = GR_ECORRUPT;
    }
    if (rc) {
        gr_warn("s3: reading %s: %s", r->key, err);
        return rc;
    }
    for (uint64_t k = 0; k < n; k++) {
        size_t bl = len - k * BS_BLOCK < BS_BLOCK ? (size_t)(len - k * BS_BLOCK) : BS_BLOCK;
        if (bs_crc32c(0, r->win + k * BS_BLOCK, bl) != r->crcs[first + k]) {
            gr_error("s3: block %llu of %s failed its CRC32C", (unsigned long long)(first + k),
                     r->key);
            return GR_ECORRUPT;
        }
    }
    r->win_first = first;
    r->win_n = n;
    r->win_len = (size_t)len;
    return GR_OK;
}

static long s3p__read(struct storage_pread *r, void *buf, size_t max)
{
    size_t done = 0;
    while (done < max && r->pos < r->end) {
        uint64_t k = r->pos / BS_BLOCK;
        if (k < r->win_first || k >= r->win_first + r->win_n || !r->win_n) {
            int rc = s3p__window(r, r->pos);
            if (rc)
                return done ? (long)done : rc;
        }
        uint64_t woff = r->pos - r->win_first * BS_BLOCK;
        size_t n = r->win_len - (size_t)woff;
        if (n > max - done)
            n = max - done;
        if (n > r->end - r->pos)
            n = (size_t)(r->end - r->pos);
        memcpy((char *)buf + done, r->win + woff, n);
        done += n;
        r->pos += n;
    }
    return (long)done;
}

static void s3p__close(struct storage_pread *r)
{
    if (!r)
        return;
    free(r->crcs);
    free(r->win);
    free(r);
}

static int s3p__open(struct storage_provider *p, const char *sha256, uint64_t size, uint64_t off,
                     uint64_t len, struct storage_pread **out)
{
    *out = NULL;
    char ckey[80], err[200];
    storage_s3_key(sha256, true, ckey);
    size_t clen = 4 * (size_t)s3p__nblocks(size) + 24, got = 0;
    if (clen > S3P_SIDECAR_MAX)
        return GR_ETOOBIG;
    unsigned char *enc = malloc(clen + 1);
    struct storage_pread *r = calloc(1, sizeof(*r));
    if (!enc || !r) {
        free(enc);
        free(r);
        return GR_ENOMEM;
    }
    int rc;
    S3P_RETRY(rc, s3_get(p->s3, ckey, 0, 0, enc, clen + 1, &got, NULL, err, sizeof(err)));
    if (rc == GR_ETOOBIG)
        rc = GR_ECORRUPT;
    if (rc == GR_OK && bs_sidecar_decode(enc, got, size, &r->crcs) != BS_OK)
        rc = GR_ECORRUPT;
    free(enc);
    if (rc) {
        if (rc != GR_ENOTFOUND)
            gr_warn("s3: block checksums of %s: %s", sha256,
                    rc == GR_ECORRUPT ? "damaged or of another size" : err);
        s3p__close(r);
        return rc;
    }
    r->p = p;
    storage_s3_key(sha256, false, r->key);
    r->size = size;
    r->pos = off;
    r->end = off + len;
    r->win = malloc((size_t)S3P_WINDOW_BLOCKS * BS_BLOCK);
    if (!r->win) {
        s3p__close(r);
        return GR_ENOMEM;
    }
    if (len > 0 && (rc = s3p__window(r, off)) != GR_OK) {
        s3p__close(r);
        return rc;
    }
    *out = r;
    return GR_OK;
}

/* The binary and its sidecar (a collection racing a put may leave one without the other). */
static int s3p__stat(struct storage_provider *p, const char *sha256, uint64_t *size)
{
    char key[80], err[200];
    uint64_t csize;
    storage_s3_key(sha256, false, key);
    int rc = s3_head(p->s3, key, size, err, sizeof(err));
    if (rc == GR_OK) {
        storage_s3_key(sha256, true, key);
        rc = s3_head(p->s3, key, &csize, err, sizeof(err));
    }
    return rc;
}

static int s3p__del(struct storage_provider *p, const char *sha256)
{
    char key[80], err[200];
    storage_s3_key(sha256, false, key);
    int rc = s3_delete(p->s3, key, err, sizeof(err));
    if (rc == GR_OK) { /* the data first: a sidecar alone is harmless */
        storage_s3_key(sha256, true, key);
        rc = s3_delete(p->s3, key, err, sizeof(err));
    }
    if (rc)
        gr_warn("s3: cannot delete %s: %s", sha256, err);
    return rc;
}

struct s3p__walk {
    int (*fn)(void *arg, const char *sha256, uint64_t size);
    void *arg;
};

static int s3p__each(void *arg, const char *key, uint64_t size)
{
    struct s3p__walk *w = arg;
    /* "<aa>/<sha256>": data objects only */
    if (strlen(key) != 67 || key[2] != '/' || !bs_valid_sha256(key + 3) || strncmp(key, key + 3, 2))
        return 0;
    return w->fn(w->arg, key + 3, size);
}

static int s3p__list(struct storage_provider *p, const char *after,
                     int (*fn)(void *arg, const char *sha256, uint64_t size), void *arg)
{
    char cursor[80] = "", err[200];
    if (after && bs_valid_sha256(after))
        storage_s3_key(after, false, cursor);
    struct s3p__walk w = {fn, arg};
    int rc = s3_list(p->s3, "", cursor, s3p__each, &w, err, sizeof(err));
    if (rc < 0)
        gr_warn("s3: cannot list the bucket: %s", err);
    return rc;
}

static void s3p__free(struct storage_provider *p)
{
    s3_close(p->s3);
    free(p);
}

static const struct storage_provider_ops s3p__ops = {
    .put = s3p__put,
    .open = s3p__open,
    .read = s3p__read,
    .close = s3p__close,
    .stat = s3p__stat,
    .del = s3p__del,
    .list = s3p__list,
    .quarantine = NULL, /* the store's copy is the only one: kept, reported */
    .free = s3p__free,
};

int storage_provider_s3(struct s3 *s, struct storage_provider **out)
{
    struct storage_provider *p = calloc(1, sizeof(*p));
    if (!p)
        return GR_ENOMEM;
    p->ops = &s3p__ops;
    p->kind = STORAGE_S3;
    p->name = "s3";
    snprintf(p->loc, sizeof(p->loc), "store:s3");
    p->s3 = s;
    *out = p;
    return GR_OK;
}
