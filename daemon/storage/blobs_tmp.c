/*
 * blobs.c - replication of uploads, publication under the binary's row
 * lock, reads from peers, bad copies, pulls, and the cluster-port
 * signatures. The storage thread and its tasks are in blobtasks.c.
 */
#include "storage/internal.h"

#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
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

int64_t storage__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int storage__bs_err(int rc)
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

static void storage__hex(const unsigned char *in, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- signatures on the cluster port ---- */

int storage__keys_init(struct storage *b)
{
    storage__keys_free(b);
    b->hkey = cr_hmac_key_new(b->key, b->key_len);
    if (b->next_key_len)
        b->hkey_next = cr_hmac_key_new(b->next_key, b->next_key_len);
    return b->hkey && (b->hkey_next || !b->next_key_len) ? GR_OK : GR_ENOMEM;
}

void storage__keys_free(struct storage *b)
{
    cr_hmac_key_free(b->hkey);
    cr_hmac_key_free(b->hkey_next);
    b->hkey = b->hkey_next = NULL;
}

/*
 * The hex HMAC-SHA256 under key of the fields joined with '\n', followed,
 * when tail is not NULL, by '\n' and tail_len bytes of tail. Every field
 * is free of '\n' (methods, paths as sent, node ids and numbers from
 * headers parsed with %s), so the message reads back one way only. When
 * the MAC cannot be computed (no key, out of memory) hex is "", which
 * matches nothing (storage__mac_matches).
 */
static void storage__mac(const struct cr_hmac_key *key, const char *const *fields, int n,
                         const void *tail, size_t tail_len, char hex[65])
{
    struct gr_sbuf sb = GR_SBUF_INIT;
    unsigned char mac[32];
    for (int i = 0; i < n; i++) {
        if (i)
            gr_sbuf_add(&sb, "\n", 1);
        gr_sbuf_adds(&sb, fields[i]);
    }
    if (tail) {
        gr_sbuf_add(&sb, "\n", 1);
        gr_sbuf_add(&sb, tail, tail_len);
    }
    if (key && cr_hmac_sha256_k(key, sb.buf, sb.len, mac) == GR_OK)
        storage__hex(mac, 32, hex);
    else
        hex[0] = '\0';
    gr_sbuf_release(&sb);
}

static void storage__mac_v1(const struct cr_hmac_key *key, const char *method, const char *uri,
                            const char *node, const char *ms, const char *nonce, char hex[65])
{
    const char *f[] = {method, uri, node, ms, nonce};
    storage__mac(key, f, 5, NULL, 0, hex);
}

static void storage__mac_v2(const struct cr_hmac_key *key, const char *method, const char *uri,
                            const char *node, const char *dest, const char *ms, const char *nonce,
                            char hex[65])
{
    const char *f[] = {"granary-v2-request", method, uri, node, dest, ms, nonce};
    storage__mac(key, f, 7, NULL, 0, hex);
}

static void storage__mac_answer(const struct cr_hmac_key *key, const char *req_mac,
                                const char *node, int status, const char *sha256,
                                const char *blocks, const void *body, size_t len, char hex[65])
{
    char st[16];
    snprintf(st, sizeof(st), "%d", status);
    const char *f[] = {"granary-v2-answer", req_mac, node, st, sha256 ? sha256 : "",
                       blocks ? blocks : ""};
    storage__mac(key, f, 6, body ? body : "", body ? len : 0, hex);
}

void storage__uri_sha256(const char *uri, char out[65])
{
    out[0] = '\0';
    if (strncmp(uri, "/v1/blobs/", 10) || strlen(uri) < 74 ||
        (uri[74] && uri[74] != '/' && uri[74] != '?'))
        return;
    memcpy(out, uri + 10, 64);
    out[64] = '\0';
    if (!bs_valid_sha256(out))
        out[0] = '\0';
}

void storage__sign(struct storage *b, const char *method, const char *uri, const char *dest,
                   struct storage__sig *sig)
{
    unsigned char raw[8] = {0};
    char nonce[17], ms[24], v1[65];
    if (cr_random(raw, sizeof(raw)))
        memset(raw, 0, sizeof(raw)); /* refused by the receiver's replay check */
    storage__hex(raw, sizeof(raw), nonce);
    snprintf(ms, sizeof(ms), "%lld", (long long)storage__now_ms());
    snprintf(sig->dest, sizeof(sig->dest), "%s", dest ? dest : "");
    storage__mac_v2(b->hkey, method, uri, b->node, sig->dest, ms, nonce, sig->mac);
    if (!b->accept_v1) {
        snprintf(sig->auth, sizeof(sig->auth), STORAGE_AUTH_HEADER ": v2 %s %s %s %s %s", b->node,
                 sig->dest, ms, nonce, sig->mac);
        sig->auth2[0] = '\0';
        return;
    }
    /* an upgrade: v1 where the older version looks, v2 beside it (same
     * nonce: a receiver that took one of them refuses the other) */
    storage__mac_v1(b->hkey, method, uri, b->node, ms, nonce, v1);
    snprintf(sig->auth, sizeof(sig->auth), STORAGE_AUTH_HEADER ": v1 %s %s %s %s", b->node, ms,
             nonce, v1);
    snprintf(sig->auth2, sizeof(sig->auth2), STORAGE_AUTH_V2_HEADER ": v2 %s %s %s %s %s", b->node,
             sig->dest, ms, nonce, sig->mac);
}

/* Whether mac is want_key (the join key's MAC) or, during a rotation, want_next. */
static bool storage__mac_matches(struct storage *b, const char *mac, const char *want_key,
                                 const char *want_next)
{
    if (strlen(mac) != 64)
        return false;
    if (strlen(want_key) == 64 && cr_equal(mac, want_key, 64))
        return true;
    return b->hkey_next && strlen(want_next) == 64 && cr_equal(mac, want_next, 64);
}

/* Remember (node, nonce) for the replay window: false when it was seen already. */
static bool storage__nonce_fresh(struct storage *b, const char *node, const char *nonce,
                                 int64_t now)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = node; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    for (const char *p = nonce; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h |= 1;
    bool fresh = true;
    pthread_mutex_lock(&b->lock);
    size_t i = h % STORAGE_NONCES, free_slot = SIZE_MAX;
    for (size_t k = 0; k < 64; k++, i = (i + 1) % STORAGE_NONCES) {
        if (b->nonces[i].h == h && b->nonces[i].ms >= now - 2 * STORAGE_AUTH_WINDOW_MS) {
            fresh = false;
            break;
        }
        if (free_slot == SIZE_MAX &&
            (b->nonces[i].h == 0 || b->nonces[i].ms < now - 2 * STORAGE_AUTH_WINDOW_MS))
            free_slot = i;
    }
    if (fresh) {
        if (free_slot == SIZE_MAX)
            free_slot = h % STORAGE_NONCES; /* crowded: evict */
        b->nonces[free_slot].h = h;
        b->nonces[free_slot].ms = now;
    }
    pthread_mutex_unlock(&b->lock);
    return fresh;
}

bool storage_auth_check(struct storage *b, const char *method, const char *uri, const char *header,
                        const char *header_v2, struct storage_auth *out, const char **why)
{
    char node[64], dest[64], ms[24], nonce[24], mac[72], want[65], want_next[65] = "";
    *why = "missing " STORAGE_AUTH_HEADER;
    memset(out, 0, sizeof(*out));
    if (!b || !b->clustered) {
        *why = "this node is not in a cluster";
        return false;
    }
    const char *h = header_v2 ? header_v2 : header;
    if (!h)
        return false;
    if (!strncmp(h, "v2 ", 3)) {
        if (sscanf(h, "v2 %63s %63s %23s %23s %71s", node, dest, ms, nonce, mac) != 5) {
            *why = "malformed " STORAGE_AUTH_HEADER;
            return false;
        }
        storage__mac_v2(b->hkey, method, uri, node, dest, ms, nonce, want);
        if (b->hkey_next)
            storage__mac_v2(b->hkey_next, method, uri, node, dest, ms, nonce, want_next);
        out->version = 2;
    } else if (!strncmp(h, "v1 ", 3) && !header_v2) {
        if (sscanf(h, "v1 %63s %23s %23s %71s", node, ms, nonce, mac) != 4) {
            *why = "malformed " STORAGE_AUTH_HEADER;
            return false;
        }
        if (!b->accept_v1) {
            /* not destination-bound, and its answer would be unsigned */
            *why = "v1 signature refused (this node is not in an upgrade from v1)";
            return false;
        }
        storage__mac_v1(b->hkey, method, uri, node, ms, nonce, want);
        if (b->hkey_next)
            storage__mac_v1(b->hkey_next, method, uri, node, ms, nonce, want_next);
        out->version = 1;
    } else {
        *why = "malformed " STORAGE_AUTH_HEADER;
        return false;
    }
    if (!storage__mac_matches(b, mac, want, want_next)) {
        *why = "bad signature";
        return false;
    }
    if (out->version == 2 && strcmp(dest, b->node)) {
        *why = "signed for another node";
        return false;
    }
    int64_t t = strtoll(ms, NULL, 10), now = storage__now_ms();
    if (t < now - STORAGE_AUTH_WINDOW_MS || t > now + STORAGE_AUTH_WINDOW_MS) {
        *why = "signature too old or from the future";
        return false;
    }
    if (!storage__nonce_fresh(b, node, nonce, now)) {
        *why = "replayed request";
        return false;
    }
    snprintf(out->node, sizeof(out->node), "%s", node);
    if (out->version == 2)
        memcpy(out->mac, mac, 65);
    return true;
}

void storage_sign_answer(struct storage *b, const struct storage_auth *req, int status,
                         const char *sha256, const char *blocks, const void *body, size_t len,
                         char *out, size_t n)
{
    char mac[65];
    if (!req || req->version != 2) {
        if (n)
            out[0] = '\0';
        return;
    }
    storage__mac_answer(b->hkey, req->mac, b->node, status, sha256, blocks, body, len, mac);
    snprintf(out, n, "v2 %s %s", b->node, mac);
}

bool storage__check_answer(struct storage *b, const struct storage__sig *sig, const char *header,
                           int status, const char *sha256, const char *blocks, const void *body,
                           size_t len, bool *legacy, const char **why)
{
    char node[64], mac[72], want[65], want_next[65] = "";
    *legacy = false;
    if (!header || !*header) {
        if (b->accept_v1) { /* a node of the older version, during the upgrade */
            *legacy = true;
            return true;
        }
        *why = "unsigned answer";
        return false;
    }
    if (sscanf(header, "v2 %63s %71s", node, mac) != 2) {
        *why = "malformed answer signature";
        return false;
    }
    if (strcmp(node, sig->dest)) {
        *why = "answer signed by another node";
        return false;
    }
    storage__mac_answer(b->hkey, sig->mac, node, status, sha256, blocks, body, len, want);
    if (b->hkey_next)
        storage__mac_answer(b->hkey_next, sig->mac, node, status, sha256, blocks, body, len,
                            want_next);
    if (!storage__mac_matches(b, mac, want, want_next)) {
        *why = "bad answer signature";
        return false;
    }
    return true;
}

int storage__call(struct storage *b, const char *method, const char *dest, const char *base,
                  const char *uri, const char *request_id, char *body, size_t bodysz)
{
    char url[1024], rid[96], sha[65];
    struct storage__sig sig;
    storage__sign(b, method, uri, dest, &sig);
    snprintf(url, sizeof(url), "%s%s", base, uri);
    snprintf(rid, sizeof(rid), "X-Request-Id: %s", request_id ? request_id : "storage");
    struct bs_peer_req req = {.url = url,
                              .auth = sig.auth,
                              .auth2 = sig.auth2[0] ? sig.auth2 : NULL,
                              .extra = rid,
                              .keep_header = STORAGE_ANSWER_HEADER};
    bs_peer_call(method, &req, STORAGE_CALL_TIMEOUT_S);
    const char *why = NULL;
    bool legacy;
    storage__uri_sha256(uri, sha);
    if (req.status) {
        if (req.truncated)
            why = "answer too long to check";
        else
            storage__check_answer(b, &sig, req.header, req.status, sha, "", req.body, req.body_len,
                                  &legacy, &why);
        if (why)
            gr_warn("req=%s %s %s on %s: answer %d refused: %s",
                    request_id ? request_id : "storage", method, uri, dest, req.status, why);
    }
    if (why) {
        if (body && bodysz)
            snprintf(body, bodysz, "%s (answer %d: %.100s)", why, req.status, req.body);
        return 0;
    }
    if (body && bodysz)
        snprintf(body, bodysz, "%s", req.status ? req.body : req.error);
    return req.status;
}

/* ---- membership ---- */

int storage__snapshot(struct storage *b, struct storage__node *out)
{
    pthread_mutex_lock(&b->lock);
    int n = b->n_nodes;
    memcpy(out, b->nodes, (size_t)n * sizeof(*out));
    pthread_mutex_unlock(&b->lock);
    return n;
}

bool storage__node_url(struct storage *b, const char *id, char *out, size_t n)
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

int storage__redundancy(struct storage *b)
{
    if (!b || !b->clustered)
        return 1;
    pthread_mutex_lock(&b->lock);
    int r = b->set.redundancy;
    pthread_mutex_unlock(&b->lock);
    return r;
}

static int storage__lenient(struct storage *b)
{
    if (!b || !b->clustered)
        return 1;
    pthread_mutex_lock(&b->lock);
    int r = b->set.lenient_limit;
    pthread_mutex_unlock(&b->lock);
    return r;
}

/* ---- uploads ---- */

struct storage__staged {
    char node[64], url[256], id[BS_STAGE_ID];
};

struct storage_pending {
    struct repo_ctx *ctx;
    struct bs_upload *bu; /* the local copy until published */
    char sha256[65];
    const char *request_id;
    struct storage__staged *peers;
    int n_peers;
    bool done;
};

static void storage__pending_cleanup(void *arg)
{
    struct storage_pending *p = arg;
    bs_upload_abort(p->bu);
    p->bu = NULL;
    if (p->done)
        return;
    for (int i = 0; i < p->n_peers; i++) {
        char uri[128];
        snprintf(uri, sizeof(uri), "/v1/stages/%s", p->peers[i].id);
        storage__call(p->ctx->storage, "DELETE", p->peers[i].node, p->peers[i].url, uri,
                      p->request_id, NULL, 0);
    }
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

int storage_replicate(struct repo_ctx *ctx, struct gr_arena *a, struct bs_upload *bu,
                      const char *sha256, uint64_t size, const char *request_id,
                      struct storage_pending **out)
{
    struct storage *b = ctx->storage;
    *out = NULL;
    int rc = bs_upload_sync(bu);
    if (rc) {
        bs_upload_abort(bu);
        return storage__bs_err(rc);
    }
    struct storage_pending *p = gr_arena_calloc(a, sizeof(*p));
    p->ctx = ctx;
    p->bu = bu;
    p->request_id = request_id;
    snprintf(p->sha256, sizeof(p->sha256), "%s", sha256);
    gr_arena_cleanup(a, storage__pending_cleanup, p);
    *out = p;
    int want = storage__redundancy(b) - 1;
    if (want <= 0)
        return GR_OK;
    struct storage__node *nodes = gr_arena_alloc(a, sizeof(*nodes) * STORAGE_MAX_NODES);
    int n = storage__snapshot(b, nodes), m = 0;
    struct bs_node cand[STORAGE_MAX_NODES];
    int map[STORAGE_MAX_NODES], order[STORAGE_MAX_NODES];
    for (int i = 0; i < n; i++)
        if (nodes[i].placeable && nodes[i].url[0] && strcmp(nodes[i].id, b->node)) {
            cand[m] = (struct bs_node){.id = nodes[i].id, .zone = nodes[i].zone};
            map[m++] = i;
        }
    int k = m > 0 ? bs_place(sha256, cand, m, b->zone, m, order) : 0;
    for (int i = 0; i < k; i++)
        order[i] = map[order[i]];
    p->peers = gr_arena_calloc(a, sizeof(*p->peers) * (size_t)(want > 0 ? want : 1));
    storage__stage_peers(b, p, bs_upload_path(bu), size, nodes, order, k, want);
    if (1 + p->n_peers < storage__lenient(b)) {
        gr_warn("req=%s only %d of %d copies of %s could be staged (lenient limit %d)", request_id,
                1 + p->n_peers, want + 1, sha256, storage__lenient(b));
        return GR_EUNAVAIL;
    }
    return GR_OK;
}

int storage_publish(struct repo_ctx *ctx, struct db_conn *c, const char *sha256,
                    struct storage_pending *p)
{
    struct storage *b = ctx->storage;
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
    repo__pg_array(&nodes, held, copies);
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

/* ---- reads ---- */

void storage_forget_local(struct repo_ctx *ctx, const char *sha256)
{
    const char *p[2] = {sha256, ctx->storage ? ctx->storage->node : ""};
    if (db_exec1(ctx->db, NULL, "DELETE FROM binary_locations WHERE sha256 = $1 AND node = $2", 2,
                 p) != GR_OK)
        gr_warn("cannot forget the location of %s on this node", sha256);
}

void storage_bad_local_copy(struct repo_ctx *ctx, const char *sha256, const char *why)
{
    struct storage *b = ctx->storage;
    int rc = bs_quarantine(ctx->bs, sha256);
    gr_error("bad copy of %s on this node (%s): %s", sha256, why,
             rc == BS_OK ? "quarantined" : bs_strerror(rc));
    if (b) {
        atomic_fetch_add(&b->bad_copies, 1);
        if (rc == BS_OK)
            atomic_fetch_add(&b->quarantined, 1);
    }
    storage_forget_local(ctx, sha256);
    if (b)
        storage_kick_repair(b);
}

int storage__hash_file(int fd, char hex[65])
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
        storage__hex(raw, 32, hex);
    }
    cr_digest_free(d);
    free(buf);
    return rc;
}

/* sha256 of a local file by its fd: true when it matches. */
static bool storage__rehash(int fd, const char *sha256)
{
    char hex[65];
    return storage__hash_file(fd, hex) == GR_OK && !strcmp(hex, sha256);
}

int storage_open_local(struct repo_ctx *ctx, const char *sha256, struct bs_blob **blob)
{
    *blob = NULL;
    int rc = bs_blob_open(ctx->bs, sha256, blob);
    if (rc == BS_ENOCRC) {
        /* an old copy (or a damaged checksum file): settle it by its sha256 */
        int fd;
        uint64_t size;
        if (bs_open_blob(ctx->bs, sha256, &fd, &size) != BS_OK)
            return GR_ENOTFOUND;
        bool good = storage__rehash(fd, sha256);
        close(fd);
        if (!good) {
            storage_bad_local_copy(ctx, sha256, "sha256 mismatch");
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

/*
 * A read from a peer. Blocks arrive in order, one answer ("window") of at
 * most STORAGE_CRC_HEADER_MAX_BLOCKS blocks at a time; each block is read
 * whole and checked before a byte of it is returned: into the caller's
 * buffer when it fits there whole, else into blk.
 */
struct storage_remote {
    struct repo_ctx *ctx;
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
    struct storage *b = r->ctx->storage;
    char uri[128];
    gr_error("req=%s copy of %s from %s: %s; quarantining it", r->request_id, r->sha256, r->node,
             why);
    storage__holders_forget(b, r->sha256);
    snprintf(uri, sizeof(uri), "/v1/blobs/%s/quarantine", r->sha256);
    storage__call(b, "POST", r->node, r->url, uri, r->request_id, NULL, 0);
    const char *p[2] = {r->sha256, r->node};
    if (db_exec1(r->ctx->db, NULL, "DELETE FROM binary_locations WHERE sha256 = $1 AND node = $2",
                 2, p) != GR_OK)
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
    struct storage *b = r->ctx->storage;
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
    struct storage *b = r->ctx->storage;
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
 * Open a read of bytes [first, end) from the first of the holders ids (in
 * storage__holders_order) whose answer checks out up to the first block;
 * every holder tried is added to tried. GR_OK with *out set, GR_ENOTFOUND
 * when none could serve, GR_ENOMEM.
 */
static int storage__open_from(struct repo_ctx *ctx, const char *sha256, uint64_t size,
                              uint64_t first, uint64_t end, const char *request_id, char ids[][64],
                              int n, char tried[][64], int *n_tried, struct storage_remote **out)
{
    struct storage *b = ctx->storage;
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
        r->ctx = ctx;
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
            *out = r;
            return GR_OK;
        }
        storage__remote_failed(r, rc);
        storage_remote_close(r);
    }
    return GR_ENOTFOUND;
}

/*
 * The holders come from the holder cache when it has them (no database
 * query); when every cached holder fails, or on a miss, from PostgreSQL,
 * and the fresh list (without the holders that just failed) is cached.
 */
int storage_open_remote(struct repo_ctx *ctx, const char *sha256, uint64_t size, const char *range,
                        const char *request_id, struct storage_remote **out)
{
    struct storage *b = ctx->storage;
    *out = NULL;
    if (!b || !b->clustered)
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
    char ids[STORAGE_MAX_NODES][64], tried[STORAGE_MAX_NODES][64];
    int n_tried = 0;
    int n = storage__holders_cached(b, sha256, ids, STORAGE_MAX_NODES);
    if (n > 0) {
        int rc = storage__open_from(ctx, sha256, size, first, end, request_id, ids, n, tried,
                                    &n_tried, out);
        if (rc != GR_ENOTFOUND)
            return rc;
        /* every cached holder failed: the list may be stale, ask the database */
        atomic_fetch_add(&b->holder_stale, 1);
        storage__holders_forget(b, sha256);
    }
    n = storage__holders_query(ctx, sha256, ids, STORAGE_MAX_NODES);
    if (n < 0)
        return GR_EDB;
    int rc =
        storage__open_from(ctx, sha256, size, first, end, request_id, ids, n, tried, &n_tried, out);
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

long storage_remote_read(struct storage_remote *r, void *buf, size_t max)
{
    unsigned char *out = buf;
    size_t done = 0;
    if (r->failed)
        return -1;
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
    return (long)done;
}

void storage_remote_close(struct storage_remote *r)
{
    if (!r)
        return;
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
static int storage__fetch(struct repo_ctx *ctx, const char *sha256, const char *src,
                          const char *base, const char *request_id, struct bs_upload **out)
{
    struct storage *b = ctx->storage;
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
    int rc = d && buf ? storage__bs_err(bs_upload_begin(ctx->bs, &u)) : GR_ENOMEM;
    while (rc == GR_OK) {
        ssize_t n = bs_peer_stream_read(s, buf, 256 * 1024);
        if (n < 0)
            rc = GR_EIO;
        if (n <= 0)
            break;
        cr_digest_update(d, buf, (size_t)n);
        rc = storage__bs_err(bs_upload_write(u, buf, (size_t)n));
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
        rc = storage__bs_err(bs_upload_sync(u));
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

int storage_pull(struct repo_ctx *ctx, const char *sha256, const char *sources,
                 const char *request_id)
{
    struct storage *b = ctx->storage;
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
        rc = storage__fetch(ctx, sha256, id, url, request_id, &u);
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
        rc = storage__bs_err(bs_upload_commit(pub, sha256, NULL));
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

int storage_read_all(struct repo_ctx *ctx, const char *sha256, uint64_t size,
                     int (*fn)(void *arg, const void *data, size_t len), void *arg)
{
    char *buf = malloc(BS_BLOCK * 4);
    if (!buf)
        return GR_ENOMEM;
    struct bs_blob *blob = NULL;
    int rc = storage_open_local(ctx, sha256, &blob);
    if (rc == GR_OK) {
        for (uint64_t off = 0; rc == GR_OK;) {
            ssize_t n = bs_blob_read(blob, off, buf, BS_BLOCK * 4);
            if (n == BS_ECORRUPT)
                storage_bad_local_copy(ctx, sha256, "block checksum mismatch");
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
        rc = storage_open_remote(ctx, sha256, size, NULL, "read", &rem);
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
