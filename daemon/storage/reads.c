/*
 * reads.c - reading a binary: this node's copy checked block by block, or
 * a peer's checked against its signed block checksums, bad copies
 * quarantined, pulls of a copy from peers (repair, self-heal), and whole
 * reads for the formats (a POM to check).
 */
#include "storage/internal.h"

#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "bs.h"
#include "crypto/crypto.h"
#include "db/db.h"
#include "peer.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- reads ---- */

void storage_forget_local(struct storage *st, const char *sha256)
{
    const char *p[2] = {sha256, st ? st->node : ""};
    if (db_exec1(st->db, NULL, "DELETE FROM binary_locations WHERE sha256 = $1 AND node = $2", 2,
                 p) != GR_OK)
        gr_warn("cannot forget the location of %s on this node", sha256);
}

void storage_bad_local_copy(struct storage *b, const char *sha256, const char *why)
{
    if (b->pcache && !bs_has(b->bs, sha256) && bs_has(b->pcache, sha256)) {
        storage_bad_cached_copy(b, sha256, why); /* a peer's binary, cached here */
        return;
    }
    if (storage__active(b) == STORAGE_SHARED && b->shared_bs) {
        /* the shared store's copy: the only one */
        int rc = bs_quarantine(b->shared_bs, sha256);
        gr_error("bad copy of %s in the shared store (%s): %s", sha256, why,
                 rc == BS_OK ? "quarantined" : bs_strerror(rc));
        atomic_fetch_add(&b->bad_copies, 1);
        if (rc == BS_OK) {
            atomic_fetch_add(&b->quarantined, 1);
            const char *p[2] = {sha256, "store:shared-fs"};
            if (db_exec1(b->db, NULL,
                         "DELETE FROM binary_locations WHERE sha256 = $1 AND node = $2", 2,
                         p) != GR_OK)
                gr_warn("cannot forget the bad copy of %s", sha256);
        }
        return;
    }
    if (storage__active(b) == STORAGE_S3) {
        /* a cached copy: not a replica, nothing to forget */
        int rc = bs_quarantine(b->bs, sha256);
        gr_error("bad cached copy of %s on this node (%s): %s", sha256, why,
                 rc == BS_OK ? "quarantined" : bs_strerror(rc));
        atomic_fetch_add(&b->bad_copies, 1);
        return;
    }
    int rc = bs_quarantine(b->bs, sha256);
    gr_error("bad copy of %s on this node (%s): %s", sha256, why,
             rc == BS_OK ? "quarantined" : bs_strerror(rc));
    if (b) {
        atomic_fetch_add(&b->bad_copies, 1);
        if (rc == BS_OK)
            atomic_fetch_add(&b->quarantined, 1);
    }
    storage_forget_local(b, sha256);
    if (b)
        storage_kick_repair(b);
}

/* sha256 of a local file by its fd: true when it matches. */
static bool storage__rehash(int fd, const char *sha256)
{
    char hex[65];
    return cr_sha256_fd_hex(fd, 0, UINT64_MAX, hex) == GR_OK && !strcmp(hex, sha256);
}

int storage_open_local(struct storage *st, const char *sha256, struct bs_blob **blob)
{
    *blob = NULL;
    int kind = storage__active(st);
    struct bs_store *bs = kind == STORAGE_SHARED && st->shared_bs ? st->shared_bs : st->bs;
    int rc = bs_blob_open(bs, sha256, blob);
    if (rc == BS_ENOTFOUND && bs != st->bs) {
        /* this node's own copy from before a migration to the shared store
         * (read by the migration's copy and by peers until it is done) */
        rc = bs_blob_open(st->bs, sha256, blob);
        if (rc == BS_ENOCRC)
            rc = BS_ENOTFOUND;
    }
    if (kind == STORAGE_S3) {
        if (rc == BS_OK) { /* a hit: most recently used (the cache's eviction order) */
            atomic_fetch_add(&st->cache_hits, 1);
            if (futimens(bs_blob_fd(*blob), NULL))
                gr_debug("cannot touch the cached copy of %s", sha256);
        } else {
            atomic_fetch_add(&st->cache_misses, 1);
        }
    }
    if (rc == BS_ENOCRC) {
        /* an old copy (or a damaged checksum file): settle it by its sha256 */
        int fd;
        uint64_t size;
        if (bs_open_blob(bs, sha256, &fd, &size) != BS_OK)
            return GR_ENOTFOUND;
        bool good = storage__rehash(fd, sha256);
        close(fd);
        if (!good) {
            storage_bad_local_copy(st, sha256, "sha256 mismatch");
            return GR_ENOTFOUND;
        }
        if (bs_crc_rebuild(bs, sha256) != BS_OK)
            return GR_EIO;
        rc = bs_blob_open(bs, sha256, blob);
    }
    if (rc == BS_ENOTFOUND)
        return GR_ENOTFOUND;
    if (rc != BS_OK) {
        /* the disk fails (errors, permissions): a holder has the bytes */
        gr_warn("storage: cannot open the local copy of %s: reading it from a peer", sha256);
        storage_disk_check(st);
        return GR_ENOTFOUND;
    }
    return GR_OK;
}

int storage_open_cached(struct storage *st, const char *sha256, struct bs_blob **blob)
{
    *blob = NULL;
    if (!st || !st->pcache || storage__cache_bs(st) != st->pcache)
        return GR_ENOTFOUND;
    int rc = bs_blob_open(st->pcache, sha256, blob);
    if (rc != BS_OK) {
        if (rc != BS_ENOTFOUND && bs_delete(st->pcache, sha256) == BS_OK)
            atomic_fetch_add(&st->cache_evicted, 1); /* no checksums, unreadable: refetch */
        atomic_fetch_add(&st->cache_misses, 1);
        return GR_ENOTFOUND;
    }
    atomic_fetch_add(&st->cache_hits, 1);
    if (futimens(bs_blob_fd(*blob), NULL)) /* most recently used: the eviction order */
        gr_debug("cannot touch the cached copy of %s", sha256);
    return GR_OK;
}

void storage_bad_cached_copy(struct storage *st, const char *sha256, const char *why)
{
    gr_error("bad cached copy of %s on this node (%s): dropped", sha256, why);
    atomic_fetch_add(&st->bad_copies, 1);
    if (st->pcache && bs_delete(st->pcache, sha256) == BS_OK)
        atomic_fetch_add(&st->cache_evicted, 1);
}

/*
 * A read from a peer. Blocks arrive in order, one answer ("window") of at
 * most STORAGE_CRC_HEADER_MAX_BLOCKS blocks at a time; each block is read
 * whole and checked before a byte of it is returned: into the caller's
 * buffer when it fits there whole, else into blk.
 */
struct storage_remote {
    struct storage *st;
    const char *request_id;
    char sha256[65], node[64], url[256];
    uint64_t size;     /* the binary's */
    uint64_t pos, end; /* bytes [pos, end) are still to be returned */
    /* the holder's current answer: blocks [win_first, win_end) */
    struct bs_peer_stream *s;
    uint64_t win_first, win_end;
    uint64_t next_block; /* the next block to arrive */
    uint32_t *crcs;      /* the window's block checksums; NULL: a legacy answer without them */
    bool legacy;         /* unsigned answers (a v1 holder, during an upgrade) */
    bool failed;
    struct cr_digest *d; /* legacy, a whole binary without block checksums: its sha256 */
    unsigned char *blk; /* the last block read and checked, when it is not in the caller's buffer */
    uint64_t blk_no;    /* UINT64_MAX: none */
    size_t blk_len;
    const char *why; /* what went wrong */
    /* a read from a store (provider.h) instead of a peer */
    struct storage_provider *prov;
    struct storage_pread *pr;
    struct bs_upload *fill;   /* a whole read: the cache's copy on its way */
    struct cr_digest *fill_d; /* its sha256 */
};

static uint64_t storage__nblocks(uint64_t size)
{
    return (size + BS_BLOCK - 1) / BS_BLOCK;
}

/* Bytes in block k of r's binary. */
static size_t storage__block_len(const struct storage_remote *r, uint64_t k)
{
    uint64_t off = k * BS_BLOCK;
    return r->size - off < BS_BLOCK ? (size_t)(r->size - off) : BS_BLOCK;
}

/* n block checksums from exactly 8 * n lowercase hex digits; NULL when malformed (or no memory). */
static uint32_t *storage__hex_crcs(const char *v, uint64_t n)
{
    if (strlen(v) != 8 * n)
        return NULL;
    uint32_t *crcs = malloc(n ? n * sizeof(*crcs) : 1);
    for (uint64_t i = 0; crcs && i < n; i++) {
        uint32_t c = 0;
        for (int k = 0; k < 8; k++) {
            char ch = v[8 * i + (uint64_t)k];
            int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
            if (d < 0) {
                free(crcs);
                return NULL;
            }
            c = c << 4 | (uint32_t)d;
        }
        crcs[i] = c;
    }
    return crcs;
}

uint32_t *storage__parse_blocks(const char *v, uint64_t size, uint64_t first, uint64_t n)
{
    char head[80];
    if (!v || n > STORAGE_CRC_HEADER_MAX_BLOCKS)
        return NULL;
    int len = snprintf(head, sizeof(head), "%d %llu %llu ", BS_BLOCK, (unsigned long long)size,
                       (unsigned long long)first);
    if (strncmp(v, head, (size_t)len))
        return NULL;
    return storage__hex_crcs(v + len, n);
}

/* The block checksums of a v1 STORAGE_CRC_HEADER value (a whole binary); NULL when absent or
 * malformed. */
static uint32_t *storage__parse_crcs_v1(const char *v, uint64_t size)
{
    uint64_t n = storage__nblocks(size);
    char head[16];
    snprintf(head, sizeof(head), "%d ", BS_BLOCK);
    if (!v || strncmp(v, head, strlen(head)) || n > STORAGE_CRC_HEADER_MAX_BLOCKS)
        return NULL;
    return storage__hex_crcs(v + strlen(head), n);
}

/* A peer's copy failed the check (why): quarantine it there and forget it. */
static void storage__bad_remote_copy(struct storage_remote *r, const char *why)
{
    struct storage *b = r->st;
    char uri[128];
    gr_error("req=%s copy of %s from %s: %s; quarantining it", r->request_id, r->sha256, r->node,
             why);
    storage__holders_forget(b, r->sha256);
    snprintf(uri, sizeof(uri), "/v1/blobs/%s/quarantine", r->sha256);
    storage__call(b, "POST", r->node, r->url, uri, r->request_id, NULL, 0);
    const char *p[2] = {r->sha256, r->node};
    if (db_exec1(r->st->db, NULL, "DELETE FROM binary_locations WHERE sha256 = $1 AND node = $2", 2,
                 p) != GR_OK)
        gr_warn("cannot forget the bad copy of %s on %s", r->sha256, r->node);
    atomic_fetch_add(&b->bad_copies, 1);
    storage_kick_repair(b);
}

/*
 * Ask r's holder for the blocks from first on (as many as the read needs,
 * at most STORAGE_CRC_HEADER_MAX_BLOCKS) and check its answer before a byte
 * of it is read: status, length, and the signature over the checksums of
 * exactly those blocks. The answer replaces r's current one.
 * GR_OK; GR_ENOTFOUND (no answer, an error, or the wrong length); GR_EAUTH
 * (an answer the holder did not sign, r->why says why).
 */
static int storage__window(struct storage_remote *r, uint64_t first)
{
    struct storage *b = r->st;
    uint64_t total = storage__nblocks(r->size), wend = storage__nblocks(r->end);
    if (wend > first + STORAGE_CRC_HEADER_MAX_BLOCKS)
        wend = first + STORAGE_CRC_HEADER_MAX_BLOCKS;
    uint64_t from = first * BS_BLOCK, to = wend * BS_BLOCK < r->size ? wend * BS_BLOCK : r->size;
    bool whole = first == 0 && wend == total;
    char uri[128], url[512], rid[96], range[64];
    struct storage__sig sig;
    snprintf(uri, sizeof(uri), "/v1/blobs/%s", r->sha256);
    snprintf(url, sizeof(url), "%s%s", r->url, uri);
    snprintf(rid, sizeof(rid), "X-Request-Id: %s", r->request_id ? r->request_id : "");
    snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)from,
             (unsigned long long)(to - 1));
    storage__sign(b, "GET", uri, r->node, &sig);
    struct bs_peer_req req = {.url = url,
                              .auth = sig.auth,
                              .auth2 = sig.auth2[0] ? sig.auth2 : NULL,
                              .extra = rid,
                              .keep_header = STORAGE_ANSWER_HEADER};
    struct bs_peer_stream *s = NULL;
    uint64_t len = 0;
    if (bs_peer_stream_open(&req, whole ? NULL : range, STORAGE_STALL_S, &s, &len) ||
        req.status != (whole ? 200 : 206) || len != to - from) {
        gr_warn("req=%s cannot read %s from %s: %d %s", r->request_id, r->sha256, r->node,
                req.status,
                req.status == 200 || req.status == 206 ? "unexpected status or length"
                : req.status                           ? req.body
                                                       : req.error);
        bs_peer_stream_close(s);
        return GR_ENOTFOUND;
    }
    char *blocks = bs_peer_stream_header(s, STORAGE_CRC_HEADER);
    uint32_t *crcs = NULL;
    bool legacy = false;
    r->why = NULL;
    if (!storage__check_answer(b, &sig, req.header, req.status, r->sha256, blocks ? blocks : "",
                               NULL, 0, &legacy, &r->why)) {
        /* r->why is set */
    } else if (!legacy && wend > first) {
        crcs = storage__parse_blocks(blocks, r->size, first, wend - first);
        if (!crcs)
            r->why = "its signed answer has no checksums of the blocks asked for";
    } else if (whole) { /* a v1 holder: its unsigned checksums, or sha256 */
        crcs = storage__parse_crcs_v1(blocks, r->size);
    }
    free(blocks);
    if (r->why) {
        bs_peer_stream_close(s);
        return GR_EAUTH;
    }
    if (legacy && !crcs && r->pos == 0 && r->end == r->size && first == 0 && !r->d)
        r->d = cr_digest_new(CR_SHA256);
    bs_peer_stream_close(r->s);
    free(r->crcs);
    r->s = s;
    r->crcs = crcs;
    r->legacy = legacy;
    r->win_first = first;
    r->win_end = wend;
    r->next_block = first;
    return GR_OK;
}

/*
 * Read the next blocks of the holder's answers into dst: as many whole
 * blocks of the current answer as fit in room (at least the next one; the
 * caller makes room for it), each checked; *len is their size. At the end
 * of an answer, the next one is asked for. GR_OK; GR_EIO (the transfer
 * failed or ended early); GR_ECONFLICT (a block, or the sha256 of a legacy
 * answer, does not match: r->why); or storage__window()'s errors.
 */
static int storage__next_blocks(struct storage_remote *r, unsigned char *dst, size_t room,
                                size_t *len)
{
    if (r->next_block >= r->win_end) {
        int rc = storage__window(r, r->next_block);
        if (rc)
            return rc;
    }
    uint64_t from = r->next_block * BS_BLOCK;
    uint64_t to = r->win_end * BS_BLOCK < r->size ? r->win_end * BS_BLOCK : r->size;
    size_t take = to - from <= room ? (size_t)(to - from) : room - room % BS_BLOCK, got = 0;
    if (take == 0) {
        r->why = "no room for a block";
        return GR_EIO;
    }
    while (got < take) {
        ssize_t c = bs_peer_stream_read(r->s, dst + got, take - got);
        if (c <= 0) {
            r->why = "the transfer failed";
            return GR_EIO;
        }
        got += (size_t)c;
    }
    for (size_t off = 0; off < take; off += BS_BLOCK) {
        size_t n = take - off < BS_BLOCK ? take - off : BS_BLOCK;
        if (r->crcs && bs_crc32c(0, dst + off, n) != r->crcs[r->next_block - r->win_first]) {
            r->why = "a block failed its CRC32C";
            return GR_ECONFLICT;
        }
        r->next_block++;
    }
    if (r->d) {
        cr_digest_update(r->d, dst, take);
        if (from + take == r->size) {
            unsigned char raw[64];
            char hex[65];
            cr_digest_final(r->d, raw);
            storage__hex(raw, 32, hex);
            if (strcmp(hex, r->sha256)) {
                r->why = "it failed its sha256";
                return GR_ECONFLICT;
            }
        }
    }
    if (r->next_block == r->win_end) {
        /* the answer is complete: reading its end lets the connection be reused */
        char c;
        if (bs_peer_stream_read(r->s, &c, 1) != 0) {
            r->why = "the transfer failed";
            return GR_EIO;
        }
    }
    *len = take;
    return GR_OK;
}

/*
 * A read from r's holder failed with rc (storage__window/storage__next_blocks):
 * count and log it; a legacy holder's copy that failed its check is
 * quarantined (that version did so). A signed answer whose bytes do not
 * match its checksums says nothing against the copy: the holder checked
 * each block before sending it, so they changed on the way.
 */
static void storage__remote_failed(struct storage_remote *r, int rc)
{
    struct storage *b = r->st;
    r->failed = true;
    atomic_fetch_add(&b->remote_failures, 1);
    if (rc == GR_ECONFLICT && r->legacy) {
        storage__bad_remote_copy(r, r->why);
        return;
    }
    if (rc == GR_ECONFLICT || rc == GR_EAUTH) {
        storage__holders_forget(b, r->sha256);
        gr_error(
            "req=%s copy of %s from %s refused: %s%s", r->request_id, r->sha256, r->node, r->why,
            rc == GR_ECONFLICT ? " under its holder's signed checksums: changed on the way" : "");
    } else if (rc != GR_ENOTFOUND) {
        gr_warn("req=%s reading %s from %s: %s", r->request_id, r->sha256, r->node,
                r->why ? r->why : gr_strerror(rc));
    }
}

/*
 * A whole read fills the read-through cache cache on the way, when it is
 * the cache in use, the binary is at most half of it, and the disk
 * keeps a tenth free after it (copies come first).
 */
static void storage__fill_begin(struct storage_remote *r, struct bs_store *cache)
{
    struct storage *b = r->st;
    if (!cache || cache != storage__cache_bs(b) || r->pos != 0 || r->end != r->size ||
        r->size > (uint64_t)b->cache_max / 2)
        return;
    int64_t free_b = bs_free_bytes(cache), total = bs_total_bytes(cache);
    if (free_b >= 0 && total > 0 && free_b - (int64_t)r->size < total / 10)
        return;
    if (bs_upload_begin(cache, &r->fill) != BS_OK)
        return;
    r->fill_d = cr_digest_new(CR_SHA256);
    if (!r->fill_d) {
        bs_upload_abort(r->fill);
        r->fill = NULL;
    }
}

/*
 * Open a read of bytes [first, end) from the first of the holders ids (in
 * storage__holders_order) whose answer checks out up to the first block;
 * every holder tried is added to tried. GR_OK with *out set, GR_ENOTFOUND
 * when none could serve, GR_ENOMEM.
 */
static int storage__open_from(struct storage *b, const char *sha256, uint64_t size, uint64_t first,
                              uint64_t end, const char *request_id, char ids[][64], int n,
                              char tried[][64], int *n_tried, struct storage_remote **out)
{
    struct storage__holder order[STORAGE_MAX_NODES];
    int m = storage__holders_order(b, ids, n, tried, *n_tried, order);
    for (int i = 0; i < m; i++) {
        if (*n_tried < STORAGE_MAX_NODES)
            memcpy(tried[(*n_tried)++], order[i].id, 64);
        struct storage_remote *r = calloc(1, sizeof(*r));
        if (r)
            r->blk = malloc(size < BS_BLOCK ? (size ? size : 1) : BS_BLOCK);
        if (!r || !r->blk) {
            free(r);
            return GR_ENOMEM;
        }
        r->st = b;
        r->request_id = request_id;
        snprintf(r->sha256, sizeof(r->sha256), "%s", sha256);
        memcpy(r->node, order[i].id, sizeof(r->node));
        memcpy(r->url, order[i].url, sizeof(r->url));
        r->size = size;
        r->pos = first;
        r->end = end;
        r->blk_no = UINT64_MAX;
        atomic_fetch_add(&b->remote_reads, 1);
        int rc = storage__window(r, first / BS_BLOCK);
        if (rc == GR_OK && first < end) { /* the first block, before the answer starts */
            r->blk_no = first / BS_BLOCK;
            rc = storage__next_blocks(r, r->blk, storage__block_len(r, r->blk_no), &r->blk_len);
        }
        if (rc == GR_OK) {
            storage__fill_begin(r, b->pcache);
            *out = r;
            return GR_OK;
        }
        storage__remote_failed(r, rc);
        storage_remote_close(r);
    }
    return GR_ENOTFOUND;
}

int storage__open_store(struct storage *b, int kind, const char *sha256, uint64_t size,
                        uint64_t first, uint64_t end, const char *request_id,
                        struct storage_remote **out)
{
    struct storage_provider *p = storage__prov(b, kind);
    if (!p || kind == STORAGE_LOCAL)
        return GR_ENOTFOUND;
    struct storage_pread *pr = NULL;
    int rc = p->ops->open(p, sha256, size, first, end - first, &pr);
    if (rc) {
        if (rc == GR_ECORRUPT) {
            atomic_fetch_add(&b->bad_copies, 1);
            atomic_fetch_add(&b->store_bad, 1);
            gr_error("req=%s the copy of %s in %s failed its check", request_id, sha256, p->name);
        } else if (rc != GR_ENOTFOUND) {
            gr_warn("req=%s cannot read %s from %s: %s", request_id, sha256, p->name,
                    gr_strerror(rc));
        }
        return rc == GR_ENOTFOUND ? GR_ENOTFOUND : GR_EUNAVAIL;
    }
    struct storage_remote *r = calloc(1, sizeof(*r));
    if (!r) {
        p->ops->close(pr);
        return GR_ENOMEM;
    }
    r->st = b;
    r->request_id = request_id;
    snprintf(r->sha256, sizeof(r->sha256), "%s", sha256);
    snprintf(r->node, sizeof(r->node), "%.63s", p->loc);
    r->size = size;
    r->pos = first;
    r->end = end;
    r->prov = p;
    r->pr = pr;
    /* a whole read from the object store fills this node's cache on the way */
    if (kind == STORAGE_S3)
        storage__fill_begin(r, b->bs);
    atomic_fetch_add(&b->remote_reads, 1);
    *out = r;
    return GR_OK;
}

/* The bytes r returned go into the cache's copy; at the end it is kept if its sha256 matches. */
static void storage__fill(struct storage_remote *r, const void *buf, size_t n)
{
    struct storage *b = r->st;
    if (!r->fill)
        return;
    if (bs_upload_write(r->fill, buf, n) != BS_OK) {
        bs_upload_abort(r->fill); /* a full disk: the read goes on uncached */
        r->fill = NULL;
        return;
    }
    cr_digest_update(r->fill_d, buf, n);
    if (r->pos < r->size)
        return;
    unsigned char raw[64];
    char hex[65];
    cr_digest_final(r->fill_d, raw);
    storage__hex(raw, 32, hex);
    struct bs_upload *u = r->fill;
    r->fill = NULL;
    if (strcmp(hex, r->sha256)) {
        gr_error("req=%s the copy of %s from %s failed its sha256; not cached", r->request_id,
                 r->sha256, r->node);
        bs_upload_abort(u);
        return;
    }
    if (bs_upload_commit(u, r->sha256, NULL) == BS_OK) {
        atomic_fetch_add(&b->cache_fills, 1);
        atomic_fetch_add(&b->cache_bytes, (int64_t)r->size);
    }
}

/* A read of the active provider, else of the one before a migration. */
static int storage__open_stores(struct storage *b, const char *sha256, uint64_t size,
                                uint64_t first, uint64_t end, const char *request_id,
                                struct storage_remote **out);

/*
 * The holders come from the holder cache when it has them (no database
 * query); when every cached holder fails, or on a miss, from PostgreSQL,
 * and the fresh list (without the holders that just failed) is cached.
 */
int storage_open_remote(struct storage *b, const char *sha256, uint64_t size, const char *range,
                        const char *request_id, struct storage_remote **out)
{
    *out = NULL;
    if (!b)
        return GR_ENOTFOUND;
    uint64_t first = 0, end = size;
    if (range) {
        unsigned long long a, z;
        char tail;
        if (sscanf(range, "bytes=%llu-%llu%c", &a, &z, &tail) != 2 || a > z || z >= size)
            return GR_EINVAL;
        first = a;
        end = z + 1;
    }
    return storage__open_stores(b, sha256, size, first, end, request_id, out);
}

/* A read from the peers that hold a copy (local provider). */
static int storage__open_peers(struct storage *b, const char *sha256, uint64_t size, uint64_t first,
                               uint64_t end, const char *request_id, struct storage_remote **out)
{
    if (!b->clustered)
        return GR_ENOTFOUND;
    char ids[STORAGE_MAX_NODES][64], tried[STORAGE_MAX_NODES][64];
    int n_tried = 0;
    int n = storage__holders_cached(b, sha256, ids, STORAGE_MAX_NODES);
    if (n > 0) {
        int rc = storage__open_from(b, sha256, size, first, end, request_id, ids, n, tried,
                                    &n_tried, out);
        if (rc != GR_ENOTFOUND)
            return rc;
        /* every cached holder failed: the list may be stale, ask the database */
        atomic_fetch_add(&b->holder_stale, 1);
        storage__holders_forget(b, sha256);
    }
    n = storage__holders_query(b, sha256, ids, STORAGE_MAX_NODES);
    if (n < 0)
        return GR_EDB;
    int rc =
        storage__open_from(b, sha256, size, first, end, request_id, ids, n, tried, &n_tried, out);
    /* cache what the database said, less the holders that failed just now */
    char keep[STORAGE_MAX_NODES][64];
    int k = 0;
    for (int i = 0; i < n; i++) {
        bool failed = false;
        for (int j = 0; j < n_tried && !failed; j++)
            failed = !strcmp(tried[j], ids[i]) && !(rc == GR_OK && !strcmp((*out)->node, ids[i]));
        if (!failed)
            memcpy(keep[k++], ids[i], 64);
    }
    storage__holders_store(b, sha256, keep, k);
    return rc;
}

static int storage__open_stores(struct storage *b, const char *sha256, uint64_t size,
                                uint64_t first, uint64_t end, const char *request_id,
                                struct storage_remote **out)
{
    pthread_mutex_lock(&b->lock);
    /* the target of a migration too: a node that has not seen the switch
     * yet reads what a node that has seen it stored there */
    int kinds[3] = {b->active, b->previous, b->mig.target};
    pthread_mutex_unlock(&b->lock);
    int rc = GR_ENOTFOUND;
    for (int i = 0; i < 3 && rc != GR_OK; i++) {
        if (kinds[i] < 0 || (i >= 1 && kinds[i] == kinds[0]) || (i == 2 && kinds[2] == kinds[1]))
            continue;
        int r = kinds[i] == STORAGE_LOCAL
                    ? storage__open_peers(b, sha256, size, first, end, request_id, out)
                    : storage__open_store(b, kinds[i], sha256, size, first, end, request_id, out);
        if (r != GR_ENOTFOUND || rc == GR_ENOTFOUND)
            rc = r; /* an outage of the active store says more than a miss elsewhere */
        if (r == GR_OK)
            rc = GR_OK;
    }
    if (rc != GR_OK && storage__active(b) == STORAGE_SHARED && bs_has(b->bs, sha256)) {
        /* a node's own copy from before a migration to the shared store */
        struct storage_provider *lp = b->prov[STORAGE_LOCAL];
        struct storage_pread *pr = NULL;
        if (lp && lp->ops->open(lp, sha256, size, first, end - first, &pr) == GR_OK) {
            struct storage_remote *r = calloc(1, sizeof(*r));
            if (!r) {
                lp->ops->close(pr);
                return GR_ENOMEM;
            }
            r->st = b;
            r->request_id = request_id;
            snprintf(r->sha256, sizeof(r->sha256), "%s", sha256);
            r->size = size;
            r->pos = first;
            r->end = end;
            r->prov = lp;
            r->pr = pr;
            *out = r;
            rc = GR_OK;
        }
    }
    return rc;
}

long storage_remote_read(struct storage_remote *r, void *buf, size_t max)
{
    unsigned char *out = buf;
    size_t done = 0;
    if (r->failed)
        return -1;
    if (r->pr) { /* a store: its reads are checked block by block */
        long n = r->prov->ops->read(r->pr, buf, max);
        if (n < 0) {
            r->failed = true;
            atomic_fetch_add(&r->st->remote_failures, 1);
            if (n == GR_ECORRUPT) {
                atomic_fetch_add(&r->st->bad_copies, 1);
                atomic_fetch_add(&r->st->store_bad, 1);
            }
            gr_error("req=%s reading %s from %s: %s; the answer is cut", r->request_id, r->sha256,
                     r->prov->name, gr_strerror((int)n));
            return -1;
        }
        r->pos += (uint64_t)n;
        if (n > 0)
            storage__fill(r, buf, (size_t)n);
        return n;
    }
    while (done < max && r->pos < r->end) {
        uint64_t k = r->pos / BS_BLOCK;
        if (r->blk_no != k) {
            /* block k has not arrived yet: it is the next one. Whole blocks
             * that are wanted whole go straight into buf; else into blk. */
            size_t len = storage__block_len(r, k), room = max - done;
            if (room > r->end - r->pos)
                room = (size_t)(r->end - r->pos);
            bool direct = k * BS_BLOCK == r->pos && room >= len;
            if (!direct && done > 0)
                break; /* the rest next time */
            int rc = r->next_block == k ? storage__next_blocks(r, direct ? out + done : r->blk,
                                                               direct ? room : len, &len)
                                        : GR_EIO;
            if (rc) {
                storage__remote_failed(r, rc);
                return done > 0 ? (long)done : -1; /* what was checked; then -1 */
            }
            if (direct) {
                r->pos += len;
                done += len;
                continue;
            }
            r->blk_no = k;
            r->blk_len = len;
        }
        size_t off = (size_t)(r->pos - r->blk_no * BS_BLOCK), n = r->blk_len - off;
        if (n > max - done)
            n = max - done;
        if (n > r->end - r->pos)
            n = (size_t)(r->end - r->pos);
        memcpy(out + done, r->blk + off, n);
        r->pos += n;
        done += n;
    }
    if (done > 0)
        storage__fill(r, buf, done);
    return (long)done;
}

void storage_remote_close(struct storage_remote *r)
{
    if (!r)
        return;
    if (r->pr)
        r->prov->ops->close(r->pr);
    bs_upload_abort(r->fill);
    cr_digest_free(r->fill_d);
    bs_peer_stream_close(r->s);
    cr_digest_free(r->d);
    free(r->crcs);
    free(r->blk);
    free(r);
}

/* ---- pulls (repair and self-heal) ---- */

/*
 * Stream sha256 from node src (cluster URL base) into a new local upload,
 * its answer signed by src and the whole body checked against its sha256
 * before anything is kept.
 */
static int storage__fetch(struct storage *b, const char *sha256, const char *src, const char *base,
                          const char *request_id, struct bs_upload **out)
{
    char uri[128], url[512], rid[96];
    struct storage__sig sig;
    snprintf(uri, sizeof(uri), "/v1/blobs/%s", sha256);
    snprintf(url, sizeof(url), "%s%s", base, uri);
    snprintf(rid, sizeof(rid), "X-Request-Id: %s", request_id ? request_id : "");
    storage__sign(b, "GET", uri, src, &sig);
    struct bs_peer_req req = {.url = url,
                              .auth = sig.auth,
                              .auth2 = sig.auth2[0] ? sig.auth2 : NULL,
                              .extra = rid,
                              .keep_header = STORAGE_ANSWER_HEADER};
    struct bs_peer_stream *s = NULL;
    uint64_t len;
    if (bs_peer_stream_open(&req, NULL, STORAGE_STALL_S, &s, &len))
        return req.status == 404 ? GR_ENOTFOUND : GR_EIO;
    char *blocks = bs_peer_stream_header(s, STORAGE_CRC_HEADER);
    const char *why = NULL;
    bool legacy;
    bool ok = storage__check_answer(b, &sig, req.header, req.status, sha256, blocks ? blocks : "",
                                    NULL, 0, &legacy, &why);
    free(blocks);
    if (!ok) {
        gr_warn("req=%s pull of %s from %s refused: %s", request_id ? request_id : "", sha256, src,
                why);
        bs_peer_stream_close(s);
        return GR_EIO;
    }
    struct bs_upload *u = NULL;
    struct cr_digest *d = cr_digest_new(CR_SHA256);
    char *buf = malloc(256 * 1024);
    int rc = d && buf ? storage_bs_err(bs_upload_begin(b->bs, &u)) : GR_ENOMEM;
    while (rc == GR_OK) {
        ssize_t n = bs_peer_stream_read(s, buf, 256 * 1024);
        if (n < 0)
            rc = GR_EIO;
        if (n <= 0)
            break;
        cr_digest_update(d, buf, (size_t)n);
        rc = storage_bs_err(bs_upload_write(u, buf, (size_t)n));
    }
    bs_peer_stream_close(s);
    free(buf);
    if (rc == GR_OK) {
        unsigned char raw[64];
        char hex[65];
        cr_digest_final(d, raw);
        storage__hex(raw, 32, hex);
        if (strcmp(hex, sha256)) {
            gr_error("copy of %s from %s failed its sha256", sha256, src);
            rc = GR_ECONFLICT;
        }
    }
    cr_digest_free(d);
    if (rc == GR_OK)
        rc = storage_bs_err(bs_upload_sync(u));
    if (rc) {
        bs_upload_abort(u);
        return rc;
    }
    *out = u;
    return GR_OK;
}

/* The id of the live node whose cluster URL is url, into out; false when none is. */
static bool storage__node_by_url(struct storage *b, const char *url, char *out, size_t n)
{
    bool found = false;
    pthread_mutex_lock(&b->lock);
    for (int i = 0; i < b->n_nodes && !found; i++)
        if (b->nodes[i].url[0] && !strcmp(b->nodes[i].url, url)) {
            snprintf(out, n, "%s", b->nodes[i].id);
            found = true;
        }
    pthread_mutex_unlock(&b->lock);
    return found;
}

int storage_pull(struct storage *b, const char *sha256, const char *sources, const char *request_id)
{
    if (!b || !bs_valid_sha256(sha256))
        return GR_EINVAL;
    char *list = strdup(sources ? sources : ""), *save = NULL;
    if (!list)
        return GR_ENOMEM;
    struct bs_upload *u = NULL;
    int rc = GR_ENOTFOUND;
    for (char *src = strtok_r(list, ",", &save); src && !u; src = strtok_r(NULL, ",", &save)) {
        char url[256], id[64];
        if (strncmp(src, "http", 4)) { /* a node id */
            if (!storage__node_url(b, src, url, sizeof(url)))
                continue;
            snprintf(id, sizeof(id), "%s", src);
        } else { /* a cluster URL: a request is signed for a node */
            if (!storage__node_by_url(b, src, id, sizeof(id)))
                continue;
            snprintf(url, sizeof(url), "%s", src);
        }
        rc = storage__fetch(b, sha256, id, url, request_id, &u);
        if (rc == GR_ENOSPC)
            break;
    }
    free(list);
    if (!u)
        return rc == GR_ENOSPC ? rc : GR_ENOTFOUND;
    struct db_conn *c;
    rc = db_acquire(b->db, 5000, &c);
    if (rc) {
        bs_upload_abort(u);
        return rc;
    }
    rc = db_begin(c);
    const char *p[2] = {sha256, b->node};
    if (rc == GR_OK)
        rc = storage__lock_live(c, sha256); /* collected meanwhile: publish nothing */
    if (rc == GR_OK) {
        struct bs_upload *pub = u;
        u = NULL;
        rc = storage_bs_err(bs_upload_commit(pub, sha256, NULL));
    }
    if (rc == GR_OK)
        rc = db_exec(c, NULL,
                     "INSERT INTO binary_locations (sha256, node) VALUES ($1, $2)"
                     " ON CONFLICT DO NOTHING",
                     2, p);
    rc = rc ? (db_rollback(c), rc) : db_commit(c);
    db_release(c);
    bs_upload_abort(u);
    return rc;
}

int storage_read_all(struct storage *st, const char *sha256, uint64_t size,
                     int (*fn)(void *arg, const void *data, size_t len), void *arg)
{
    char *buf = malloc(BS_BLOCK * 4);
    if (!buf)
        return GR_ENOMEM;
    struct bs_blob *blob = NULL;
    int rc = storage_open_local(st, sha256, &blob);
    if (rc == GR_OK) {
        for (uint64_t off = 0; rc == GR_OK;) {
            ssize_t n = bs_blob_read(blob, off, buf, BS_BLOCK * 4);
            if (n == BS_ECORRUPT)
                storage_bad_local_copy(st, sha256, "block checksum mismatch");
            if (n < 0)
                rc = GR_EIO;
            if (n <= 0)
                break;
            rc = fn(arg, buf, (size_t)n);
            off += (uint64_t)n;
        }
        bs_blob_close(blob);
    } else if (rc == GR_ENOTFOUND) {
        struct storage_remote *rem = NULL;
        rc = storage_open_remote(st, sha256, size, NULL, "read", &rem);
        while (rc == GR_OK) {
            long n = storage_remote_read(rem, buf, BS_BLOCK * 4);
            if (n < 0)
                rc = GR_EIO;
            if (n <= 0)
                break;
            rc = fn(arg, buf, (size_t)n);
        }
        storage_remote_close(rem);
    }
    free(buf);
    return rc;
}

uint64_t storage_blob_size(struct bs_blob *blob)
{
    return bs_blob_size(blob);
}

long storage_blob_read(struct bs_blob *blob, uint64_t off, void *buf, size_t len)
{
    ssize_t n = bs_blob_read(blob, off, buf, len);
    return n >= 0 ? (long)n : storage_bs_err((int)n);
}

void storage_blob_close(struct bs_blob *blob)
{
    bs_blob_close(blob);
}
