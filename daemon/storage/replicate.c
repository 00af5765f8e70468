/*
 * replicate.c - an upload's copies: staged on redundancy - 1 peers while
 * the client waits, published under the binary's row lock with the
 * artifact row (docs/blobs.md "Upload").
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

/* ---- uploads ---- */

struct storage__staged {
    char node[64], url[256], id[BS_STAGE_ID];
};

struct storage_pending {
    struct storage *st;
    struct bs_upload *bu; /* the local copy until published */
    char sha256[65];
    const char *request_id;
    struct storage__staged *peers;
    int n_peers;
    bool done;
    int kind; /* the provider it goes to (provider.h) */
};

/* Drop stage id on node (at base): it will not be published. */
static void storage__stage_drop(struct storage *b, const char *node, const char *base,
                                const char *id, const char *request_id)
{
    char uri[128];
    snprintf(uri, sizeof(uri), "/v1/stages/%s", id);
    storage__call(b, "DELETE", node, base, uri, request_id, NULL, 0);
}

static void storage__pending_cleanup(void *arg)
{
    struct storage_pending *p = arg;
    bs_upload_abort(p->bu);
    p->bu = NULL;
    if (p->done)
        return;
    for (int i = 0; i < p->n_peers; i++)
        storage__stage_drop(p->st, p->peers[i].node, p->peers[i].url, p->peers[i].id,
                            p->request_id);
}

/*
 * The upload durable here (fsynced), then its pending publication, which
 * the arena aborts unless it is published (peers' stages deleted). bu is
 * taken in every case. GR_OK with *out set, or the fsync's error.
 */
static int storage__pending_new(struct storage *b, struct gr_arena *a, struct bs_upload *bu,
                                int kind, const char *sha256, const char *request_id,
                                struct storage_pending **out)
{
    int rc = bs_upload_sync(bu);
    if (rc) {
        bs_upload_abort(bu);
        return storage_bs_err(rc);
    }
    struct storage_pending *p = gr_arena_calloc(a, sizeof(*p));
    p->st = b;
    p->bu = bu;
    p->kind = kind;
    p->request_id = request_id;
    snprintf(p->sha256, sizeof(p->sha256), "%s", sha256);
    gr_arena_cleanup(a, storage__pending_cleanup, p);
    *out = p;
    return GR_OK;
}

/* Stage copies on the next candidates until want are staged or none is left. */
static void storage__stage_peers(struct storage *b, struct storage_pending *p, const char *path,
                                 uint64_t size, const struct storage__node *nodes, const int *order,
                                 int n_order, int want)
{
    int next = 0;
    while (p->n_peers < want && next < n_order) {
        int batch = want - p->n_peers;
        if (batch > n_order - next)
            batch = n_order - next;
        struct bs_peer_req reqs[STORAGE_MAX_NODES];
        struct storage__sig *sig = malloc(sizeof(*sig) * (size_t)batch);
        char url[STORAGE_MAX_NODES][512], rid[96], uri[128];
        if (!sig)
            return;
        snprintf(rid, sizeof(rid), "X-Request-Id: %s", p->request_id ? p->request_id : "");
        snprintf(uri, sizeof(uri), "/v1/blobs/%s/stage", p->sha256);
        for (int i = 0; i < batch; i++) {
            const struct storage__node *nd = &nodes[order[next + i]];
            storage__sign(b, "PUT", uri, nd->id, &sig[i]);
            snprintf(url[i], sizeof(url[i]), "%s%s", nd->url, uri);
            reqs[i] = (struct bs_peer_req){.url = url[i],
                                           .auth = sig[i].auth,
                                           .auth2 = sig[i].auth2[0] ? sig[i].auth2 : NULL,
                                           .extra = rid,
                                           .keep_header = STORAGE_ANSWER_HEADER};
        }
        bs_peer_push(path, size, reqs, batch, STORAGE_STALL_S);
        for (int i = 0; i < batch; i++) {
            const struct storage__node *nd = &nodes[order[next + i]];
            const char *why = NULL;
            bool legacy;
            if (reqs[i].status == 201 &&
                (reqs[i].truncated ||
                 !storage__check_answer(b, &sig[i], reqs[i].header, 201, p->sha256, "",
                                        reqs[i].body, reqs[i].body_len, &legacy, &why))) {
                /* a stage nobody can vouch for is not published: it expires there */
                snprintf(reqs[i].error, sizeof(reqs[i].error), "answer 201 refused: %s",
                         why ? why : "answer too long to check");
                reqs[i].status = 0;
            }
            json_t *doc = reqs[i].status == 201 ? json_loads(reqs[i].body, 0, NULL) : NULL;
            const char *id = json_string_value(json_object_get(doc, "stage"));
            if (id && strlen(id) == BS_STAGE_ID - 1) {
                struct storage__staged *s = &p->peers[p->n_peers++];
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
        free(sig);
        next += batch;
    }
}

/*
 * An upload to a store (shared-fs, s3): made durable there now (s3: put,
 * parts and all), or (shared-fs, an upload streamed into the shared store)
 * published by a rename in storage_publish().
 */
static int storage__replicate_store(struct storage *b, int kind, struct gr_arena *a,
                                    struct bs_upload *bu, const char *sha256, uint64_t size,
                                    const char *request_id, struct storage_pending **out)
{
    int rc = storage__pending_new(b, a, bu, kind, sha256, request_id, out);
    if (rc)
        return rc;
    struct storage_provider *pv = storage__prov(b, kind);
    if (!pv)
        return GR_EUNAVAIL;
    if (kind == STORAGE_SHARED && bs_upload_store(bu) == b->shared_bs)
        return GR_OK;
    uint64_t n;
    const uint32_t *crcs = bs_upload_crcs(bu, &n);
    char err[256];
    rc = crcs || size == 0
             ? pv->ops->put(pv, sha256, bs_upload_path(bu), size, crcs, err, sizeof(err))
             : GR_ENOMEM;
    if (rc) {
        atomic_fetch_add(&b->repl_failures, 1);
        gr_error("req=%s cannot store %s in %s: %s", request_id, sha256, pv->name,
                 rc == GR_ENOMEM ? "out of memory" : err);
        return rc == GR_ENOSPC ? GR_ENOSPC : GR_EUNAVAIL;
    }
    return GR_OK;
}

/* Publish an upload to a store (storage__replicate_store), under the row lock. */
static int storage__publish_store(struct storage *b, struct db_conn *c, const char *sha256,
                                  struct storage_pending *p)
{
    struct storage_provider *pv = storage__prov(b, p->kind);
    struct bs_upload *bu = p->bu;
    p->bu = NULL;
    p->done = true;
    int rc = GR_OK;
    char err[256] = "";
    if (!pv) {
        rc = GR_EUNAVAIL;
    } else if (p->kind == STORAGE_SHARED && bs_upload_store(bu) == b->shared_bs) {
        rc = storage_bs_err(bs_upload_commit(bu, sha256, NULL));
        bu = NULL;
    } else {
        /* a collection may have deleted the same content between our put and
         * this lock: look again, and put it again if so */
        uint64_t have = 0, n;
        if (pv->ops->stat(pv, sha256, &have) != GR_OK || have != bs_upload_size(bu)) {
            const uint32_t *crcs = bs_upload_crcs(bu, &n);
            rc = pv->ops->put(pv, sha256, bs_upload_path(bu), bs_upload_size(bu), crcs, err,
                              sizeof(err));
        }
        if (rc == GR_OK && p->kind == STORAGE_S3 && b->cache_max > 0) {
            /* this node's read-through cache keeps the upload too */
            int64_t size = (int64_t)bs_upload_size(bu);
            if (bs_upload_commit(bu, sha256, NULL) == BS_OK) /* frees bu */
                atomic_fetch_add(&b->cache_bytes, size);
            bu = NULL;
        }
    }
    bs_upload_abort(bu);
    if (rc) {
        gr_warn("req=%s cannot publish %s in %s: %s", p->request_id, sha256, pv ? pv->name : "?",
                err[0] ? err : gr_strerror(rc));
        return GR_EUNAVAIL;
    }
    const char *pp[2] = {sha256, pv->loc};
    return db_exec(c, NULL,
                   "INSERT INTO binary_locations (sha256, node) VALUES ($1, $2)"
                   " ON CONFLICT DO NOTHING",
                   2, pp);
}

int storage_replicate(struct storage *b, struct gr_arena *a, struct bs_upload *bu,
                      struct storage_stream *stream, const char *sha256, uint64_t size,
                      const char *request_id, struct storage_pending **out)
{
    *out = NULL;
    int kind = storage__active(b);
    if (kind != STORAGE_LOCAL)
        return storage__replicate_store(b, kind, a, bu, sha256, size, request_id, out);
    return storage__replicate_local(b, a, bu, stream, sha256, size, request_id, out);
}

/*
 * The live nodes but this one that can take a copy (placeable, with a
 * cluster port) and are not among skip[0..n_skip), ranked for key by
 * rendezvous hashing, zones other than this node's first: indexes into
 * nodes[0..n) (a storage__snapshot()) into order, best first. Returns how
 * many.
 */
static int storage__rank_peers(struct storage *b, const struct storage__node *nodes, int n,
                               const char *key, char (*skip)[64], int n_skip, int *order)
{
    struct bs_node cand[STORAGE_MAX_NODES];
    int map[STORAGE_MAX_NODES], m = 0;
    for (int i = 0; i < n; i++) {
        bool skipped = false;
        for (int j = 0; j < n_skip && !skipped; j++)
            skipped = !strcmp(skip[j], nodes[i].id);
        if (!skipped && nodes[i].placeable && nodes[i].url[0] && strcmp(nodes[i].id, b->node)) {
            cand[m] = (struct bs_node){.id = nodes[i].id, .zone = nodes[i].zone};
            map[m++] = i;
        }
    }
    int k = m > 0 ? bs_place(key, cand, m, b->zone, m, order) : 0;
    for (int i = 0; i < k; i++)
        order[i] = map[order[i]];
    return k;
}

/* ---- copies streamed while the body arrives ---- */

struct storage_stream {
    struct storage *st;
    struct bs_peer_tee *tee;
    int n;
    struct bs_peer_req reqs[STORAGE_MAX_NODES];
    struct storage__sig sig[STORAGE_MAX_NODES];
    char node[STORAGE_MAX_NODES][64], base[STORAGE_MAX_NODES][256], url[STORAGE_MAX_NODES][300];
    char rid[20]; /* the stream's name in the peers' logs (rid=), "s-" and 16 hex */
    char hdr[48]; /* its X-Request-Id header line */
};

static void storage__stream_cleanup(void *arg)
{
    struct storage_stream *s = arg;
    bs_peer_tee_free(s->tee); /* the peers drop what they got of an aborted body */
    s->tee = NULL;
}

/* The have bytes of the file at path, to the peers. false: it cannot be read. */
static bool storage__stream_prefix(struct storage_stream *s, const char *path, uint64_t have)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char *buf = malloc(256 * 1024);
    uint64_t off = 0;
    while (buf && off < have) {
        size_t want = have - off < 256 * 1024 ? (size_t)(have - off) : 256 * 1024;
        ssize_t got = pread(fd, buf, want, (off_t)off);
        if (got <= 0)
            break;
        bs_peer_tee_write(s->tee, buf, (size_t)got);
        off += (uint64_t)got;
    }
    free(buf);
    close(fd);
    return off == have;
}

struct storage_stream *storage_stream_begin(struct storage *b, struct gr_arena *a, const char *path,
                                            uint64_t have)
{
    int want = storage__redundancy(b) - 1;
    if (want <= 0 || storage__active(b) != STORAGE_LOCAL || !path)
        return NULL;
    struct storage__node *nodes = gr_arena_alloc(a, sizeof(*nodes) * STORAGE_MAX_NODES);
    struct storage_stream *s = gr_arena_calloc(a, sizeof(*s));
    if (!nodes || !s)
        return NULL;
    /* the content's hash is not known yet: rank under a random key, which
     * spreads uploads as evenly */
    unsigned char rnd[32];
    char key[65];
    if (cr_random(rnd, sizeof(rnd)) != GR_OK)
        return NULL;
    storage__hex(rnd, sizeof(rnd), key);
    int order[STORAGE_MAX_NODES];
    int k = storage__rank_peers(b, nodes, storage__snapshot(b, nodes), key, NULL, 0, order);
    if (k == 0)
        return NULL;
    s->st = b;
    s->n = k < want ? k : want;
    /* the request id is not known here: the stream has its own name, which
     * the upload's log line gives when the copies are counted */
    snprintf(s->rid, sizeof(s->rid), "s-%.16s", key);
    snprintf(s->hdr, sizeof(s->hdr), "X-Request-Id: %s", s->rid);
    for (int i = 0; i < s->n; i++) {
        const struct storage__node *nd = &nodes[order[i]];
        snprintf(s->node[i], sizeof(s->node[i]), "%s", nd->id);
        snprintf(s->base[i], sizeof(s->base[i]), "%s", nd->url);
        snprintf(s->url[i], sizeof(s->url[i]), "%s/v1/stages", nd->url);
        storage__sign(b, "PUT", "/v1/stages", nd->id, &s->sig[i]);
        s->reqs[i] = (struct bs_peer_req){.url = s->url[i],
                                          .auth = s->sig[i].auth,
                                          .auth2 = s->sig[i].auth2[0] ? s->sig[i].auth2 : NULL,
                                          .extra = s->hdr,
                                          .keep_header = STORAGE_ANSWER_HEADER};
    }
    if (bs_peer_tee_open(s->reqs, s->n, STORAGE_STALL_S, &s->tee))
        return NULL;
    gr_arena_cleanup(a, storage__stream_cleanup, s);
    if (!storage__stream_prefix(s, path, have)) {
        storage__stream_cleanup(s);
        return NULL;
    }
    return s;
}

void storage_stream_write(struct storage_stream *s, const void *data, size_t len)
{
    if (s && s->tee)
        bs_peer_tee_write(s->tee, data, len);
}

uint64_t storage_streamed_copies(struct storage *b)
{
    return atomic_load(&b->streamed);
}

/*
 * The streamed copies' answers: each peer whose signed answer names a stage
 * of exactly sha256 joins p's staged peers (a stage of other bytes is
 * dropped; so is one beyond the want copies).
 */
static void storage__stream_collect(struct storage *b, struct storage_stream *s,
                                    struct storage_pending *p, int want, const char *sha256,
                                    const char *request_id)
{
    bs_peer_tee_finish(s->tee);
    for (int i = 0; i < s->n; i++) {
        struct bs_peer_req *r = &s->reqs[i];
        const char *why = NULL;
        bool legacy;
        if (r->status == 201 &&
            (r->truncated || !storage__check_answer(b, &s->sig[i], r->header, 201, "", "", r->body,
                                                    r->body_len, &legacy, &why))) {
            snprintf(r->error, sizeof(r->error), "answer 201 refused: %s",
                     why ? why : "answer too long to check");
            r->status = 0;
        }
        json_t *doc = r->status == 201 ? json_loads(r->body, 0, NULL) : NULL;
        const char *id = json_string_value(json_object_get(doc, "stage"));
        const char *got = json_string_value(json_object_get(doc, "sha256"));
        bool good = id && strlen(id) == BS_STAGE_ID - 1 && got && !strcmp(got, sha256);
        if (good && p->n_peers >= want) { /* redundancy was lowered meanwhile */
            storage__stage_drop(b, s->node[i], s->base[i], id, request_id);
        } else if (good) {
            struct storage__staged *st = &p->peers[p->n_peers++];
            snprintf(st->node, sizeof(st->node), "%s", s->node[i]);
            snprintf(st->url, sizeof(st->url), "%s", s->base[i]);
            snprintf(st->id, sizeof(st->id), "%s", id);
            atomic_fetch_add(&b->streamed, 1);
            gr_info("req=%s copy of %s streamed to %s as rid=%s", request_id, sha256, s->node[i],
                    s->rid);
        } else {
            atomic_fetch_add(&b->repl_failures, 1);
            if (id && strlen(id) == BS_STAGE_ID - 1) /* other bytes: drop that stage now */
                storage__stage_drop(b, s->node[i], s->base[i], id, request_id);
            gr_warn("req=%s streamed copy of %s to %s (rid=%s) failed: %d %s%s%s", request_id,
                    sha256, s->node[i], s->rid, r->status, r->status ? r->body : r->error,
                    got && strcmp(got, sha256) ? ", arrived as " : "",
                    got && strcmp(got, sha256) ? got : "");
        }
        json_decref(doc);
    }
    storage__stream_cleanup(s);
}

int storage__replicate_local(struct storage *b, struct gr_arena *a, struct bs_upload *bu,
                             struct storage_stream *stream, const char *sha256, uint64_t size,
                             const char *request_id, struct storage_pending **out)
{
    *out = NULL;
    if (stream && stream->tee)
        bs_peer_tee_end(stream->tee); /* the peers hash and fsync while we do */
    struct storage_pending *p;
    int rc = storage__pending_new(b, a, bu, STORAGE_LOCAL, sha256, request_id, &p);
    if (rc)
        return rc;
    *out = p;
    int want = storage__redundancy(b) - 1;
    if (want <= 0)
        return GR_OK;
    p->peers = gr_arena_calloc(a, sizeof(*p->peers) *
                                      (size_t)want); /* streamed, then pushed: at most want */
    bool streamed = stream && stream->tee;
    if (streamed)
        storage__stream_collect(b, stream, p, want, sha256, request_id);
    if (p->n_peers < want) {
        /* the rest pushed from the file, to nodes the stream did not ask */
        struct storage__node *nodes = gr_arena_alloc(a, sizeof(*nodes) * STORAGE_MAX_NODES);
        int order[STORAGE_MAX_NODES];
        int k =
            storage__rank_peers(b, nodes, storage__snapshot(b, nodes), sha256,
                                streamed ? stream->node : NULL, streamed ? stream->n : 0, order);
        storage__stage_peers(b, p, bs_upload_path(p->bu), size, nodes, order, k, want);
    }
    if (1 + p->n_peers < storage__lenient(b)) {
        gr_warn("req=%s only %d of %d copies of %s could be staged (lenient limit %d)", request_id,
                1 + p->n_peers, want + 1, sha256, storage__lenient(b));
        return GR_EUNAVAIL;
    }
    return GR_OK;
}

int storage_publish(struct storage *b, struct db_conn *c, const char *sha256,
                    struct storage_pending *p)
{
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
    if (p->kind != STORAGE_LOCAL)
        return storage__publish_store(b, c, sha256, p);
    const char *held[STORAGE_MAX_NODES + 1]; /* the nodes with a published copy */
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
        int st = storage__call(b, "POST", p->peers[i].node, p->peers[i].url, uri, p->request_id,
                               body, sizeof(body));
        if (st == 200) {
            held[copies++] = p->peers[i].node;
        } else {
            atomic_fetch_add(&b->repl_failures, 1);
            gr_warn("req=%s commit of %s on %s failed: %d %s", p->request_id, sha256,
                    p->peers[i].node, st, body);
        }
    }
    p->done = true; /* committed stages are gone; failed ones expire on their node */
    if (copies < storage__lenient(b) || copies == 0)
        return GR_EUNAVAIL;
    atomic_fetch_add(&b->replicated, (uint64_t)copies - 1);
    struct gr_sbuf nodes = GR_SBUF_INIT;
    db_text_array(&nodes, held, copies);
    const char *pp[2] = {sha256, nodes.buf};
    int rc = db_exec(c, NULL,
                     "INSERT INTO binary_locations (sha256, node) SELECT $1, unnest($2::text[])"
                     " ON CONFLICT DO NOTHING",
                     2, pp);
    gr_sbuf_release(&nodes);
    if (rc == GR_OK && copies < storage__redundancy(b))
        storage_kick_repair(b);
    return rc;
}
