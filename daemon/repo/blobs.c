/*
 * blobs.c - replication of uploads, publication under the binary's row
 * lock, reads from peers, bad copies, pulls, and the cluster-port
 * signatures. The storage thread and its tasks are in blobtasks.c.
 */
#include "repo/blobs_internal.h"

#include "base/err.h"
#include "base/log.h"
#include "bs.h"
#include "crypto/crypto.h"
#include "db/db.h"
#include "peer.h"
#include "repo/internal.h"
#include "repo/repo.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t blobs__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int blobs__bs_err(int rc)
{
    switch (rc) {
    case BS_OK:
        return GR_OK;
    case BS_ENOSPC:
        return GR_ENOSPC;
    case BS_ENOTFOUND:
        return GR_ENOTFOUND;
    case BS_ENOMEM:
        return GR_ENOMEM;
    case BS_EINVAL:
        return GR_EINVAL;
    default:
        return GR_EIO;
    }
}

static void blobs__hex(const unsigned char *in, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- signatures on the cluster port ---- */

static void blobs__mac(const unsigned char *key, size_t key_len, const char *method,
                       const char *uri, const char *node, const char *ms, const char *nonce,
                       char hex[65])
{
    size_t n = strlen(method) + strlen(uri) + strlen(node) + strlen(ms) + strlen(nonce) + 8;
    char *msg = malloc(n);
    unsigned char mac[32];
    if (!msg) {
        hex[0] = '\0';
        return;
    }
    int len = snprintf(msg, n, "%s\n%s\n%s\n%s\n%s", method, uri, node, ms, nonce);
    cr_hmac_sha256(key, key_len, msg, (size_t)len, mac);
    free(msg);
    blobs__hex(mac, 32, hex);
}

void blobs__sign(struct blobs *b, const char *method, const char *uri, char *out, size_t n)
{
    unsigned char raw[8] = {0};
    char nonce[17], ms[24], mac[65];
    if (cr_random(raw, sizeof(raw)))
        memset(raw, 0, sizeof(raw)); /* refused by the receiver's replay check */
    blobs__hex(raw, sizeof(raw), nonce);
    snprintf(ms, sizeof(ms), "%lld", (long long)blobs__now_ms());
    blobs__mac(b->key, b->key_len, method, uri, b->node, ms, nonce, mac);
    snprintf(out, n, "X-Granary-Auth: v1 %s %s %s %s", b->node, ms, nonce, mac);
}

bool blobs_auth_check(struct blobs *b, const char *method, const char *uri, const char *header,
                      const char **why)
{
    char node[64], ms[24], nonce[24], mac[72], want[65];
    *why = "missing X-Granary-Auth";
    if (!b || !b->clustered) {
        *why = "this node is not in a cluster";
        return false;
    }
    if (!header)
        return false;
    if (sscanf(header, "v1 %63s %23s %23s %71s", node, ms, nonce, mac) != 4) {
        *why = "malformed X-Granary-Auth";
        return false;
    }
    blobs__mac(b->key, b->key_len, method, uri, node, ms, nonce, want);
    bool ok = strlen(mac) == 64 && cr_equal(mac, want, 64);
    if (!ok && strlen(mac) == 64 && b->next_key_len) {
        /* a join key rotation: the second key is accepted too */
        blobs__mac(b->next_key, b->next_key_len, method, uri, node, ms, nonce, want);
        ok = cr_equal(mac, want, 64);
    }
    if (!ok) {
        *why = "bad signature";
        return false;
    }
    int64_t t = strtoll(ms, NULL, 10), now = blobs__now_ms();
    if (t < now - BLOBS_AUTH_WINDOW_MS || t > now + BLOBS_AUTH_WINDOW_MS) {
        *why = "signature too old or from the future";
        return false;
    }
    /* replays: remember each (node, nonce) for the window */
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = node; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    for (const char *p = nonce; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h |= 1;
    bool fresh = true;
    pthread_mutex_lock(&b->lock);
    size_t i = h % BLOBS_NONCES, free_slot = SIZE_MAX;
    for (size_t k = 0; k < 64; k++, i = (i + 1) % BLOBS_NONCES) {
        if (b->nonces[i].h == h && b->nonces[i].ms >= now - 2 * BLOBS_AUTH_WINDOW_MS) {
            fresh = false;
            break;
        }
        if (free_slot == SIZE_MAX &&
            (b->nonces[i].h == 0 || b->nonces[i].ms < now - 2 * BLOBS_AUTH_WINDOW_MS))
            free_slot = i;
    }
    if (fresh) {
        if (free_slot == SIZE_MAX)
            free_slot = h % BLOBS_NONCES; /* crowded: evict */
        b->nonces[free_slot].h = h;
        b->nonces[free_slot].ms = now;
    }
    pthread_mutex_unlock(&b->lock);
    if (!fresh)
        *why = "replayed request";
    return fresh;
}

int blobs__call(struct blobs *b, const char *method, const char *base, const char *uri,
                const char *request_id, char *body, size_t bodysz)
{
    char auth[400], url[1024], rid[96];
    blobs__sign(b, method, uri, auth, sizeof(auth));
    snprintf(url, sizeof(url), "%s%s", base, uri);
    snprintf(rid, sizeof(rid), "X-Request-Id: %s", request_id ? request_id : "storage");
    struct bs_peer_req req = {.url = url, .auth = auth, .extra = rid};
    bs_peer_call(method, &req, BLOBS_CALL_TIMEOUT_S);
    if (body && bodysz)
        snprintf(body, bodysz, "%s", req.status ? req.body : req.error);
    return req.status;
}

/* ---- membership ---- */

int blobs__snapshot(struct blobs *b, struct blobs__node *out)
{
    pthread_mutex_lock(&b->lock);
    int n = b->n_nodes;
    memcpy(out, b->nodes, (size_t)n * sizeof(*out));
    pthread_mutex_unlock(&b->lock);
    return n;
}

bool blobs__node_url(struct blobs *b, const char *id, char *out, size_t n)
{
    bool found = false;
    pthread_mutex_lock(&b->lock);
    for (int i = 0; i < b->n_nodes && !found; i++)
        if (!strcmp(b->nodes[i].id, id) && b->nodes[i].url[0]) {
            snprintf(out, n, "%s", b->nodes[i].url);
            found = true;
        }
    pthread_mutex_unlock(&b->lock);
    return found;
}

int blobs__redundancy(struct blobs *b)
{
    if (!b || !b->clustered)
        return 1;
    pthread_mutex_lock(&b->lock);
    int r = b->set.redundancy;
    pthread_mutex_unlock(&b->lock);
    return r;
}

static int blobs__lenient(struct blobs *b)
{
    if (!b || !b->clustered)
        return 1;
    pthread_mutex_lock(&b->lock);
    int r = b->set.lenient_limit;
    pthread_mutex_unlock(&b->lock);
    return r;
}

/* ---- uploads ---- */

struct blobs__staged {
    char node[64], url[256], id[BS_STAGE_ID];
};

struct blobs_pending {
    struct repo_ctx *ctx;
    struct bs_upload *bu; /* the local copy until published */
    char sha256[65];
    const char *request_id;
    struct blobs__staged *peers;
    int n_peers;
    bool done;
};

static void blobs__pending_cleanup(void *arg)
{
    struct blobs_pending *p = arg;
    bs_upload_abort(p->bu);
    p->bu = NULL;
    if (p->done)
        return;
    for (int i = 0; i < p->n_peers; i++) {
        char uri[128];
        snprintf(uri, sizeof(uri), "/v1/stages/%s", p->peers[i].id);
        blobs__call(p->ctx->blobs, "DELETE", p->peers[i].url, uri, p->request_id, NULL, 0);
    }
}

/* Stage copies on the next candidates until want are staged or none is left. */
static void blobs__stage_peers(struct blobs *b, struct blobs_pending *p, const char *path,
                               uint64_t size, const struct blobs__node *nodes, const int *order,
                               int n_order, int want)
{
    int next = 0;
    while (p->n_peers < want && next < n_order) {
        int batch = want - p->n_peers;
        if (batch > n_order - next)
            batch = n_order - next;
        struct bs_peer_req reqs[BLOBS_MAX_NODES];
        char auth[BLOBS_MAX_NODES][400], url[BLOBS_MAX_NODES][512], rid[96];
        snprintf(rid, sizeof(rid), "X-Request-Id: %s", p->request_id ? p->request_id : "");
        for (int i = 0; i < batch; i++) {
            const struct blobs__node *nd = &nodes[order[next + i]];
            char uri[128];
            snprintf(uri, sizeof(uri), "/v1/blobs/%s/stage", p->sha256);
            blobs__sign(b, "PUT", uri, auth[i], sizeof(auth[i]));
            snprintf(url[i], sizeof(url[i]), "%s%s", nd->url, uri);
            reqs[i] = (struct bs_peer_req){.url = url[i], .auth = auth[i], .extra = rid};
        }
        bs_peer_push(path, size, reqs, batch, BLOBS_STALL_S);
        for (int i = 0; i < batch; i++) {
            const struct blobs__node *nd = &nodes[order[next + i]];
            json_t *doc = reqs[i].status == 201 ? json_loads(reqs[i].body, 0, NULL) : NULL;
            const char *id = json_string_value(json_object_get(doc, "stage"));
            if (id && strlen(id) == BS_STAGE_ID - 1) {
                struct blobs__staged *s = &p->peers[p->n_peers++];
                snprintf(s->node, sizeof(s->node), "%s", nd->id);
                snprintf(s->url, sizeof(s->url), "%s", nd->url);
                snprintf(s->id, sizeof(s->id), "%s", id);
            } else {
                atomic_fetch_add(&b->repl_failures, 1);
                gr_warn("req=%s replication of %s to %s failed: %d %s", p->request_id, p->sha256,
                        nd->id, reqs[i].status, reqs[i].status ? reqs[i].body : reqs[i].error);
            }
            json_decref(doc);
        }
        next += batch;
    }
}

int blobs_replicate(struct repo_ctx *ctx, struct gr_arena *a, struct bs_upload *bu,
                    const char *sha256, uint64_t size, const char *request_id,
                    struct blobs_pending **out)
{
    struct blobs *b = ctx->blobs;
    *out = NULL;
    int rc = bs_upload_sync(bu);
    if (rc) {
        bs_upload_abort(bu);
        return blobs__bs_err(rc);
    }
    struct blobs_pending *p = gr_arena_calloc(a, sizeof(*p));
    p->ctx = ctx;
    p->bu = bu;
    p->request_id = request_id;
    snprintf(p->sha256, sizeof(p->sha256), "%s", sha256);
    gr_arena_cleanup(a, blobs__pending_cleanup, p);
    *out = p;
    int want = blobs__redundancy(b) - 1;
    if (want <= 0)
        return GR_OK;
    struct blobs__node *nodes = gr_arena_alloc(a, sizeof(*nodes) * BLOBS_MAX_NODES);
    int n = blobs__snapshot(b, nodes), m = 0;
    struct bs_node cand[BLOBS_MAX_NODES];
    int map[BLOBS_MAX_NODES], order[BLOBS_MAX_NODES];
    for (int i = 0; i < n; i++)
        if (nodes[i].placeable && nodes[i].url[0] && strcmp(nodes[i].id, b->node)) {
            cand[m] = (struct bs_node){.id = nodes[i].id, .zone = nodes[i].zone};
            map[m++] = i;
        }
    int k = m > 0 ? bs_place(sha256, cand, m, b->zone, m, order) : 0;
    for (int i = 0; i < k; i++)
        order[i] = map[order[i]];
    p->peers = gr_arena_calloc(a, sizeof(*p->peers) * (size_t)(want > 0 ? want : 1));
    blobs__stage_peers(b, p, bs_upload_path(bu), size, nodes, order, k, want);
    if (1 + p->n_peers < blobs__lenient(b)) {
        gr_warn("req=%s only %d of %d copies of %s could be staged (lenient limit %d)", request_id,
                1 + p->n_peers, want + 1, sha256, blobs__lenient(b));
        return GR_EUNAVAIL;
    }
    return GR_OK;
}

int blobs_publish(struct repo_ctx *ctx, struct db_conn *c, const char *sha256,
                  struct blobs_pending *p)
{
    struct blobs *b = ctx->blobs;
    struct db_res *res = NULL;
    if (!p) {
        const char *pp[1] = {sha256};
        int rc =
            db_exec(c, &res, "SELECT 1 FROM binary_locations WHERE sha256 = $1 LIMIT 1", 1, pp);
        if (rc == GR_OK && db_res_rows(res) == 0)
            rc = GR_ENOTFOUND;
        db_res_free(res);
        return rc;
    }
    const char *held[BLOBS_MAX_NODES + 1]; /* the nodes with a published copy */
    int copies = 0;
    bool existed = false;
    struct bs_upload *bu = p->bu;
    p->bu = NULL;
    int brc = bs_upload_commit(bu, sha256, &existed);
    if (brc == BS_OK) {
        held[copies++] = b->node;
    } else {
        gr_warn("req=%s cannot publish the local copy of %s: %s", p->request_id, sha256,
                bs_strerror(brc));
    }
    for (int i = 0; i < p->n_peers; i++) {
        char uri[200], body[256];
        snprintf(uri, sizeof(uri), "/v1/stages/%s/commit?sha256=%s", p->peers[i].id, sha256);
        int st = blobs__call(b, "POST", p->peers[i].url, uri, p->request_id, body, sizeof(body));
        if (st == 200) {
            held[copies++] = p->peers[i].node;
        } else {
            atomic_fetch_add(&b->repl_failures, 1);
            gr_warn("req=%s commit of %s on %s failed: %d %s", p->request_id, sha256,
                    p->peers[i].node, st, body);
        }
    }
    p->done = true; /* committed stages are gone; failed ones expire on their node */
    if (copies < blobs__lenient(b) || copies == 0)
        return GR_EUNAVAIL;
    atomic_fetch_add(&b->replicated, (uint64_t)copies - 1);
    struct gr_sbuf nodes = GR_SBUF_INIT;
    repo__pg_array(&nodes, held, copies);
    const char *pp[2] = {sha256, nodes.buf};
    int rc = db_exec(c, NULL,
                     "INSERT INTO binary_locations (sha256, node) SELECT $1, unnest($2::text[])"
                     " ON CONFLICT DO NOTHING",
                     2, pp);
    gr_sbuf_release(&nodes);
    if (rc == GR_OK && copies < blobs__redundancy(b))
        blobs_kick_repair(b);
    return rc;
}

/* ---- reads ---- */

void blobs_forget_local(struct repo_ctx *ctx, const char *sha256)
{
    const char *p[2] = {sha256, ctx->blobs ? ctx->blobs->node : ""};
    if (db_exec1(ctx->db, NULL, "DELETE FROM binary_locations WHERE sha256 = $1 AND node = $2", 2,
                 p) != GR_OK)
        gr_warn("cannot forget the location of %s on this node", sha256);
}

void blobs_bad_local_copy(struct repo_ctx *ctx, const char *sha256, const char *why)
{
    struct blobs *b = ctx->blobs;
    int rc = bs_quarantine(ctx->bs, sha256);
    gr_error("bad copy of %s on this node (%s): %s", sha256, why,
             rc == BS_OK ? "quarantined" : bs_strerror(rc));
    if (b) {
        atomic_fetch_add(&b->bad_copies, 1);
        if (rc == BS_OK)
            atomic_fetch_add(&b->quarantined, 1);
    }
    blobs_forget_local(ctx, sha256);
    if (b)
        blobs_kick_repair(b);
}

int blobs__hash_file(int fd, char hex[65])
{
    struct cr_digest *d = cr_digest_new(CR_SHA256);
    char *buf = malloc(1 << 20);
    int rc = d && buf ? GR_OK : GR_ENOMEM;
    off_t off = 0;
    while (rc == GR_OK) {
        ssize_t got = pread(fd, buf, 1 << 20, off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            rc = GR_EIO;
        if (got <= 0)
            break;
        cr_digest_update(d, buf, (size_t)got);
        off += got;
    }
    if (rc == GR_OK) {
        unsigned char raw[64];
        cr_digest_final(d, raw);
        blobs__hex(raw, 32, hex);
    }
    cr_digest_free(d);
    free(buf);
    return rc;
}

/* sha256 of a local file by its fd: true when it matches. */
static bool blobs__rehash(int fd, const char *sha256)
{
    char hex[65];
    return blobs__hash_file(fd, hex) == GR_OK && !strcmp(hex, sha256);
}

int blobs_open_local(struct repo_ctx *ctx, const char *sha256, struct bs_blob **blob)
{
    *blob = NULL;
    int rc = bs_blob_open(ctx->bs, sha256, blob);
    if (rc == BS_ENOCRC) {
        /* an old copy (or a damaged checksum file): settle it by its sha256 */
        int fd;
        uint64_t size;
        if (bs_open_blob(ctx->bs, sha256, &fd, &size) != BS_OK)
            return GR_ENOTFOUND;
        bool good = blobs__rehash(fd, sha256);
        close(fd);
        if (!good) {
            blobs_bad_local_copy(ctx, sha256, "sha256 mismatch");
            return GR_ENOTFOUND;
        }
        if (bs_crc_rebuild(ctx->bs, sha256) != BS_OK)
            return GR_EIO;
        rc = bs_blob_open(ctx->bs, sha256, blob);
    }
    if (rc == BS_ENOTFOUND)
        return GR_ENOTFOUND;
    return rc == BS_OK ? GR_OK : GR_EIO;
}

struct blobs_remote {
    struct repo_ctx *ctx;
    struct bs_peer_stream *s;
    /* the check of a whole binary: the holder's block checksums, or else
     * sha256 (d); neither for a range */
    struct cr_digest *d;
    uint32_t *crcs;         /* nblocks entries */
    uint64_t nblocks, size; /* size: the binary's */
    uint64_t pos;           /* bytes checked or in the current block */
    uint32_t crc;           /* CRC32C of the current block so far */
    bool checked;           /* every block matched */
    char sha256[65], node[64], url[256];
    const char *request_id;
};

/*
 * The block checksums of a BLOBS_CRC_HEADER value for a binary of size
 * bytes; NULL when absent or malformed (then the body's sha256 is checked).
 */
static uint32_t *blobs__parse_crcs(const char *v, uint64_t size, uint64_t *nblocks)
{
    uint64_t n = (size + BS_BLOCK - 1) / BS_BLOCK;
    char head[16];
    snprintf(head, sizeof(head), "%d ", BS_BLOCK);
    if (!v || strncmp(v, head, strlen(head)) || n > BLOBS_CRC_HEADER_MAX_BLOCKS)
        return NULL;
    v += strlen(head);
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
    *nblocks = n;
    return crcs;
}

/* Check the next n bytes of a whole binary against the block checksums: false on a mismatch. */
static bool blobs__check_blocks(struct blobs_remote *r, const unsigned char *p, size_t n)
{
    while (n > 0) {
        uint64_t in_block = r->pos % BS_BLOCK, block = r->pos / BS_BLOCK;
        size_t take = BS_BLOCK - (size_t)in_block;
        if (take > n)
            take = n;
        if (block >= r->nblocks)
            return false; /* more bytes than the binary has */
        r->crc = bs_crc32c(in_block ? r->crc : 0, p, take);
        r->pos += take;
        p += take;
        n -= take;
        if ((r->pos % BS_BLOCK == 0 || r->pos == r->size) && r->crc != r->crcs[block])
            return false;
    }
    return true;
}

/* A peer's copy failed the check (why): quarantine it there and forget it. */
static void blobs__bad_remote_copy(struct blobs_remote *r, const char *why)
{
    struct blobs *b = r->ctx->blobs;
    char uri[128];
    gr_error("req=%s copy of %s from %s: %s; quarantining it", r->request_id, r->sha256, r->node,
             why);
    blobs__holders_forget(b, r->sha256);
    snprintf(uri, sizeof(uri), "/v1/blobs/%s/quarantine", r->sha256);
    blobs__call(b, "POST", r->url, uri, r->request_id, NULL, 0);
    const char *p[2] = {r->sha256, r->node};
    if (db_exec1(r->ctx->db, NULL, "DELETE FROM binary_locations WHERE sha256 = $1 AND node = $2",
                 2, p) != GR_OK)
        gr_warn("cannot forget the bad copy of %s on %s", r->sha256, r->node);
    atomic_fetch_add(&b->bad_copies, 1);
    blobs_kick_repair(b);
}

/*
 * Open a stream from the first of the holders ids (in blobs__holders_order)
 * that answers; every holder tried is added to tried. GR_OK with *out set,
 * GR_ENOTFOUND when none could serve, GR_ENOMEM.
 */
static int blobs__open_from(struct repo_ctx *ctx, const char *sha256, uint64_t size,
                            const char *range, const char *request_id, char ids[][64], int n,
                            char tried[][64], int *n_tried, struct blobs_remote **out)
{
    struct blobs *b = ctx->blobs;
    struct blobs__holder order[BLOBS_MAX_NODES];
    int m = blobs__holders_order(b, ids, n, tried, *n_tried, order);
    for (int i = 0; i < m; i++) {
        if (*n_tried < BLOBS_MAX_NODES)
            memcpy(tried[(*n_tried)++], order[i].id, 64);
        struct blobs_remote *r = calloc(1, sizeof(*r));
        if (!r)
            return GR_ENOMEM;
        r->ctx = ctx;
        r->request_id = request_id;
        snprintf(r->sha256, sizeof(r->sha256), "%s", sha256);
        memcpy(r->node, order[i].id, sizeof(r->node));
        memcpy(r->url, order[i].url, sizeof(r->url));
        char uri[128], url[512], auth[400], rid[96];
        snprintf(uri, sizeof(uri), "/v1/blobs/%s", sha256);
        snprintf(url, sizeof(url), "%s%s", r->url, uri);
        snprintf(rid, sizeof(rid), "X-Request-Id: %s", request_id ? request_id : "");
        blobs__sign(b, "GET", uri, auth, sizeof(auth));
        struct bs_peer_req req = {.url = url, .auth = auth, .extra = rid};
        uint64_t len = 0;
        atomic_fetch_add(&b->remote_reads, 1);
        if (bs_peer_stream_open(&req, range, BLOBS_STALL_S, &r->s, &len) == 0 &&
            (range || len == size)) {
            r->size = size;
            if (!range) {
                char *v = bs_peer_stream_header(r->s, BLOBS_CRC_HEADER);
                r->crcs = blobs__parse_crcs(v, size, &r->nblocks);
                free(v);
                if (!r->crcs) /* a holder that sends no checksums: sha256 */
                    r->d = cr_digest_new(CR_SHA256);
            }
            if (range || r->crcs || r->d) {
                *out = r;
                return GR_OK;
            }
        }
        atomic_fetch_add(&b->remote_failures, 1);
        gr_warn("req=%s cannot read %s from %s: %d %s", request_id, sha256, r->node, req.status,
                req.status ? req.body : req.error);
        bs_peer_stream_close(r->s);
        free(r);
    }
    return GR_ENOTFOUND;
}

/*
 * The holders come from the holder cache when it has them (no database
 * query); when every cached holder fails, or on a miss, from PostgreSQL,
 * and the fresh list (without the holders that just failed) is cached.
 */
int blobs_open_remote(struct repo_ctx *ctx, const char *sha256, uint64_t size, const char *range,
                      const char *request_id, struct blobs_remote **out)
{
    struct blobs *b = ctx->blobs;
    *out = NULL;
    if (!b || !b->clustered)
        return GR_ENOTFOUND;
    char ids[BLOBS_MAX_NODES][64], tried[BLOBS_MAX_NODES][64];
    int n_tried = 0;
    int n = blobs__holders_cached(b, sha256, ids, BLOBS_MAX_NODES);
    if (n > 0) {
        int rc =
            blobs__open_from(ctx, sha256, size, range, request_id, ids, n, tried, &n_tried, out);
        if (rc != GR_ENOTFOUND)
            return rc;
        /* every cached holder failed: the list may be stale, ask the database */
        atomic_fetch_add(&b->holder_stale, 1);
        blobs__holders_forget(b, sha256);
    }
    n = blobs__holders_query(ctx, sha256, ids, BLOBS_MAX_NODES);
    if (n < 0)
        return GR_EDB;
    int rc = blobs__open_from(ctx, sha256, size, range, request_id, ids, n, tried, &n_tried, out);
    /* cache what the database said, less the holders that failed just now */
    char keep[BLOBS_MAX_NODES][64];
    int k = 0;
    for (int i = 0; i < n; i++) {
        bool failed = false;
        for (int j = 0; j < n_tried && !failed; j++)
            failed = !strcmp(tried[j], ids[i]) && !(rc == GR_OK && !strcmp((*out)->node, ids[i]));
        if (!failed)
            memcpy(keep[k++], ids[i], 64);
    }
    blobs__holders_store(b, sha256, keep, k);
    return rc;
}

long blobs_remote_read(struct blobs_remote *r, void *buf, size_t max)
{
    ssize_t n = bs_peer_stream_read(r->s, buf, max);
    if (n > 0 && r->crcs && !blobs__check_blocks(r, buf, (size_t)n)) {
        blobs__bad_remote_copy(r, "a block failed its CRC32C");
        return -1;
    }
    if (n == 0 && r->crcs && !r->checked) {
        if (r->pos != r->size) { /* cannot happen: the stream checks the length */
            blobs__bad_remote_copy(r, "the body is short");
            return -1;
        }
        r->checked = true;
    }
    if (n > 0 && r->d)
        cr_digest_update(r->d, buf, (size_t)n);
    if (n == 0 && r->d) {
        unsigned char raw[64];
        char hex[65];
        cr_digest_final(r->d, raw);
        cr_digest_free(r->d);
        r->d = NULL;
        blobs__hex(raw, 32, hex);
        if (strcmp(hex, r->sha256)) {
            blobs__bad_remote_copy(r, "it failed its sha256");
            return -1;
        }
    }
    if (n < 0)
        atomic_fetch_add(&r->ctx->blobs->remote_failures, 1);
    return (long)n;
}

void blobs_remote_close(struct blobs_remote *r)
{
    if (!r)
        return;
    bs_peer_stream_close(r->s);
    cr_digest_free(r->d);
    free(r->crcs);
    free(r);
}

/* ---- pulls (repair and self-heal) ---- */

/* Stream sha256 from one source into a new local upload; verified. */
static int blobs__fetch(struct repo_ctx *ctx, const char *sha256, const char *base,
                        const char *request_id, struct bs_upload **out)
{
    struct blobs *b = ctx->blobs;
    char uri[128], url[512], auth[400], rid[96];
    snprintf(uri, sizeof(uri), "/v1/blobs/%s", sha256);
    snprintf(url, sizeof(url), "%s%s", base, uri);
    snprintf(rid, sizeof(rid), "X-Request-Id: %s", request_id ? request_id : "");
    blobs__sign(b, "GET", uri, auth, sizeof(auth));
    struct bs_peer_req req = {.url = url, .auth = auth, .extra = rid};
    struct bs_peer_stream *s = NULL;
    uint64_t len;
    if (bs_peer_stream_open(&req, NULL, BLOBS_STALL_S, &s, &len))
        return req.status == 404 ? GR_ENOTFOUND : GR_EIO;
    struct bs_upload *u = NULL;
    struct cr_digest *d = cr_digest_new(CR_SHA256);
    char *buf = malloc(256 * 1024);
    int rc = d && buf ? blobs__bs_err(bs_upload_begin(ctx->bs, &u)) : GR_ENOMEM;
    while (rc == GR_OK) {
        ssize_t n = bs_peer_stream_read(s, buf, 256 * 1024);
        if (n < 0)
            rc = GR_EIO;
        if (n <= 0)
            break;
        cr_digest_update(d, buf, (size_t)n);
        rc = blobs__bs_err(bs_upload_write(u, buf, (size_t)n));
    }
    bs_peer_stream_close(s);
    free(buf);
    if (rc == GR_OK) {
        unsigned char raw[64];
        char hex[65];
        cr_digest_final(d, raw);
        blobs__hex(raw, 32, hex);
        if (strcmp(hex, sha256)) {
            gr_error("copy of %s from %s failed its sha256", sha256, base);
            rc = GR_ECONFLICT;
        }
    }
    cr_digest_free(d);
    if (rc == GR_OK)
        rc = blobs__bs_err(bs_upload_sync(u));
    if (rc) {
        bs_upload_abort(u);
        return rc;
    }
    *out = u;
    return GR_OK;
}

int blobs_pull(struct repo_ctx *ctx, const char *sha256, const char *sources,
               const char *request_id)
{
    struct blobs *b = ctx->blobs;
    if (!b || !bs_valid_sha256(sha256))
        return GR_EINVAL;
    char *list = strdup(sources ? sources : ""), *save = NULL;
    if (!list)
        return GR_ENOMEM;
    struct bs_upload *u = NULL;
    int rc = GR_ENOTFOUND;
    for (char *src = strtok_r(list, ",", &save); src && !u; src = strtok_r(NULL, ",", &save)) {
        char url[256];
        if (strncmp(src, "http", 4)) { /* a node id */
            if (!blobs__node_url(b, src, url, sizeof(url)))
                continue;
            src = url;
        }
        rc = blobs__fetch(ctx, sha256, src, request_id, &u);
        if (rc == GR_ENOSPC)
            break;
    }
    free(list);
    if (!u)
        return rc == GR_ENOSPC ? rc : GR_ENOTFOUND;
    struct db_conn *c;
    rc = db_acquire(ctx->db, 5000, &c);
    if (rc) {
        bs_upload_abort(u);
        return rc;
    }
    rc = db_begin(c);
    struct db_res *res = NULL;
    const char *p[2] = {sha256, b->node};
    if (rc == GR_OK)
        rc = db_exec(c, &res,
                     "SELECT 1 FROM binaries WHERE sha256 = $1 AND tombstoned IS NULL FOR UPDATE",
                     1, p);
    if (rc == GR_OK && db_res_rows(res) == 0)
        rc = GR_ENOTFOUND; /* collected meanwhile: publish nothing */
    db_res_free(res);
    if (rc == GR_OK) {
        struct bs_upload *pub = u;
        u = NULL;
        rc = blobs__bs_err(bs_upload_commit(pub, sha256, NULL));
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

int blobs_read_all(struct repo_ctx *ctx, const char *sha256, uint64_t size,
                   int (*fn)(void *arg, const void *data, size_t len), void *arg)
{
    char *buf = malloc(BS_BLOCK * 4);
    if (!buf)
        return GR_ENOMEM;
    struct bs_blob *blob = NULL;
    int rc = blobs_open_local(ctx, sha256, &blob);
    if (rc == GR_OK) {
        for (uint64_t off = 0; rc == GR_OK;) {
            ssize_t n = bs_blob_read(blob, off, buf, BS_BLOCK * 4);
            if (n == BS_ECORRUPT)
                blobs_bad_local_copy(ctx, sha256, "block checksum mismatch");
            if (n < 0)
                rc = GR_EIO;
            if (n <= 0)
                break;
            rc = fn(arg, buf, (size_t)n);
            off += (uint64_t)n;
        }
        bs_blob_close(blob);
    } else if (rc == GR_ENOTFOUND) {
        struct blobs_remote *rem = NULL;
        rc = blobs_open_remote(ctx, sha256, size, NULL, "read", &rem);
        while (rc == GR_OK) {
            long n = blobs_remote_read(rem, buf, BS_BLOCK * 4);
            if (n < 0)
                rc = GR_EIO;
            if (n <= 0)
                break;
            rc = fn(arg, buf, (size_t)n);
        }
        blobs_remote_close(rem);
    }
    free(buf);
    return rc;
}
