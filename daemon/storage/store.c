/*
 * store.c - the storage layer's side of the binary providers (provider.h,
 * docs/storage.md): opening the configured ones, choosing or checking the
 * cluster's provider, putting a binary into a store under its row lock,
 * and the tasks of a cluster whose binaries live in a store: repair as a
 * check that every binary is there, scrub of the store's copies (the
 * primary's), and the read-through cache's eviction (s3, every node).
 */
#include "storage/internal.h"
#include "storage/s3/s3.h"

#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "bs.h"
#include "crypto/crypto.h"
#include "db/db.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_CACHE_DEFAULT (10LL << 30)
#define STORE_EVICT_EVERY_MS 60000
#define STORE_CHECK_BATCH 200 /* existence checks per repair pass */

int storage__active(struct storage *b)
{
    pthread_mutex_lock(&b->lock);
    int k = b->active;
    pthread_mutex_unlock(&b->lock);
    return k;
}

struct storage_provider *storage__prov(struct storage *b, int kind)
{
    return kind >= 0 && kind < STORAGE_KINDS ? b->prov[kind] : NULL;
}

const char *storage_provider_name(struct storage *st)
{
    return st ? storage_kind_name(storage__active(st)) : "local";
}

struct bs_store *storage_upload_store(struct storage *st, struct bs_store *fallback)
{
    if (st && storage__active(st) == STORAGE_SHARED && st->shared_bs)
        return st->shared_bs;
    return fallback;
}

void storage__load_provider(struct storage *b)
{
    struct db_res *res = NULL;
    if (db_exec1(b->db, &res,
                 "SELECT provider, previous, target, state, rate, cursor, copied, bytes, failed"
                 " FROM storage_provider",
                 0, NULL) != GR_OK ||
        db_res_rows(res) != 1) {
        db_res_free(res);
        return; /* keep what was known */
    }
    int active = storage_kind_of(db_res_get(res, 0, 0));
    pthread_mutex_lock(&b->lock);
    if (active >= 0)
        b->active = active;
    b->previous = storage_kind_of(db_res_get(res, 0, 1));
    b->mig.target = storage_kind_of(db_res_get(res, 0, 2));
    snprintf(b->mig.state, sizeof(b->mig.state), "%s", db_res_get(res, 0, 3));
    b->mig.rate = strtoll(db_res_get(res, 0, 4), NULL, 10);
    snprintf(b->mig.cursor, sizeof(b->mig.cursor), "%s", db_res_get(res, 0, 5));
    b->mig.copied = strtoll(db_res_get(res, 0, 6), NULL, 10);
    b->mig.bytes = strtoll(db_res_get(res, 0, 7), NULL, 10);
    b->mig.failed = strtoll(db_res_get(res, 0, 8), NULL, 10);
    pthread_mutex_unlock(&b->lock);
    db_res_free(res);
}

int storage__providers_start(struct storage *b, const struct storage_options *o)
{
    b->configured = storage_kind_of(o->provider && *o->provider ? o->provider : "local");
    b->previous = b->mig.target = -1;
    if (b->configured < 0) {
        gr_error("storage provider '%s': expected local, s3 or shared-fs", o->provider);
        return GR_EINVAL;
    }
    b->cache_max = o->cache_max_bytes < 0 ? STORE_CACHE_DEFAULT : o->cache_max_bytes;
    if (b->clustered && b->cache_max > 0 && o->peer_cache_dir && *o->peer_cache_dir) {
        int rc = bs_open(o->peer_cache_dir, &b->pcache);
        if (rc) /* reads go on from the peers, uncached */
            gr_warn("cannot open the peer cache %s: %s", o->peer_cache_dir, bs_strerror(rc));
    }
    if (storage_provider_fs(STORAGE_LOCAL, b->bs, b->node, &b->prov[STORAGE_LOCAL]))
        return GR_ENOMEM;
    if (o->shared_fs_path && *o->shared_fs_path) {
        int rc = bs_open_shared(o->shared_fs_path, b->node, &b->shared_bs);
        if (rc) {
            gr_error("cannot open the shared store %s: %s", o->shared_fs_path, bs_strerror(rc));
            return GR_EINVAL;
        }
        if (storage_provider_fs(STORAGE_SHARED, b->shared_bs, "store:shared-fs",
                                &b->prov[STORAGE_SHARED]))
            return GR_ENOMEM;
    }
    if (o->s3_endpoint && *o->s3_endpoint) {
        struct s3_config c = {.endpoint = o->s3_endpoint,
                              .bucket = o->s3_bucket,
                              .region = o->s3_region,
                              .prefix = o->s3_prefix,
                              .access_key = o->s3_access_key,
                              .secret_key = o->s3_secret_key,
                              .path_style = o->s3_path_style != 0,
                              .timeout_s = 10};
        struct s3 *s = NULL;
        if (!o->s3_access_key || !*o->s3_access_key || !o->s3_secret_key || !*o->s3_secret_key ||
            s3_open(&c, &s)) {
            gr_error("s3: expected --s3-endpoint http(s)://HOST[:PORT], --s3-bucket, a prefix of"
                     " letters, digits, '.', '_', '-' and '/', and both keys (--s3-access-key-file"
                     " and --s3-secret-key-file, or GRANARY_S3_ACCESS_KEY and"
                     " GRANARY_S3_SECRET_KEY)");
            return GR_EINVAL;
        }
        if (storage_provider_s3(s, &b->prov[STORAGE_S3])) {
            s3_close(s);
            return GR_ENOMEM;
        }
    }
    if (!b->prov[b->configured]) {
        gr_error("storage provider %s is not configured: %s", storage_kind_name(b->configured),
                 b->configured == STORAGE_S3 ? "give --s3-endpoint, --s3-bucket and the keys"
                                             : "give --shared-fs-path");
        return GR_EINVAL;
    }
    /* the first node chooses; a cluster that already holds binaries on its
     * nodes' disks stays local until it is migrated */
    const char *name = storage_kind_name(b->configured);
    const char *p[2] = {name, NULL};
    int rc = db_exec1(b->db, NULL,
                      "INSERT INTO storage_provider (provider) SELECT $1 WHERE $1 = 'local' OR"
                      " NOT EXISTS (SELECT 1 FROM binaries) ON CONFLICT DO NOTHING",
                      1, p);
    struct db_res *res = NULL;
    if (rc == GR_OK)
        rc = db_exec1(b->db, &res, "SELECT provider FROM storage_provider", 0, NULL);
    if (rc) {
        db_res_free(res);
        return rc;
    }
    const char *have = db_res_rows(res) == 1 ? db_res_get(res, 0, 0) : "local";
    if (strcmp(have, name)) {
        gr_error("storage provider mismatch: this cluster keeps its binaries in %s (chosen by"
                 " its first node%s); this node was started with --storage-provider %s. Start"
                 " it with --storage-provider %s, or move the cluster with granaryctl storage"
                 " migrate",
                 have, db_res_rows(res) == 1 ? " or by a migration" : ": binaries exist already",
                 name, have);
        db_res_free(res);
        return GR_EINVAL;
    }
    db_res_free(res);
    b->active = b->configured;
    /* what this node can reach, for a migration's check */
    struct gr_sbuf can = GR_SBUF_INIT;
    for (int k = 0; k < STORAGE_KINDS; k++)
        if (b->prov[k]) {
            gr_sbuf_adds(&can, can.len ? "," : "");
            gr_sbuf_adds(&can, storage_kind_name(k));
        }
    char key[128];
    snprintf(key, sizeof(key), "storage.providers:%s", b->node);
    const char *pp[2] = {key, can.buf};
    rc = db_exec1(b->db, NULL,
                  "INSERT INTO settings (key, value) VALUES ($1, $2)"
                  " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                  2, pp);
    gr_sbuf_release(&can);
    storage__load_provider(b);
    if (b->active != STORAGE_LOCAL || b->configured != STORAGE_LOCAL)
        gr_info("storage: binaries in %s%s", storage_kind_name(b->active),
                b->active == STORAGE_S3 && b->cache_max > 0 ? " with a read-through cache" : "");
    return rc;
}

void storage__providers_stop(struct storage *b)
{
    for (int k = 0; k < STORAGE_KINDS; k++)
        if (b->prov[k])
            b->prov[k]->ops->free(b->prov[k]);
    bs_close(b->shared_bs);
    bs_close(b->pcache);
}

int storage__store_put(struct storage *b, struct storage_provider *p, const char *sha256,
                       const char *path, uint64_t size, const uint32_t *crcs, char *err,
                       size_t errsz)
{
    int rc = p->ops->put(p, sha256, path, size, crcs, err, errsz);
    if (rc)
        return rc;
    struct db_conn *c;
    rc = db_acquire(b->db, 5000, &c);
    if (rc)
        return rc;
    rc = db_begin(c);
    const char *pp[2] = {sha256, p->loc};
    if (rc == GR_OK)
        rc = storage__lock_live(c, sha256); /* collected meanwhile: record nothing */
    uint64_t have = 0;
    /* under the lock: a collection that deleted it before we locked is seen here */
    if (rc == GR_OK && p->ops->stat(p, sha256, &have) != GR_OK)
        rc = p->ops->put(p, sha256, path, size, crcs, err, errsz);
    if (rc == GR_OK)
        rc = db_exec(c, NULL,
                     "INSERT INTO binary_locations (sha256, node) VALUES ($1, $2)"
                     " ON CONFLICT DO NOTHING",
                     2, pp);
    rc = rc ? (db_rollback(c), rc) : db_commit(c);
    db_release(c);
    return rc;
}

/* This node's filestore copy of sha256, verified whole, put into p again (heal). */
static bool store__heal_from_cache(struct storage *b, struct storage_provider *p,
                                   const char *sha256)
{
    struct bs_blob *blob = NULL;
    if (p->kind == STORAGE_LOCAL || bs_blob_open(b->bs, sha256, &blob) != BS_OK)
        return false;
    char path[1024], err[200], hex[65];
    snprintf(path, sizeof(path), "%s/%.2s/%s", bs_root(b->bs), sha256, sha256);
    bool ok = cr_sha256_fd_hex(bs_blob_fd(blob), 0, UINT64_MAX, hex) == GR_OK &&
              !strcmp(hex, sha256) && bs_verify_blocks(b->bs, sha256) == BS_OK;
    uint64_t n;
    const uint32_t *crcs = bs_blob_crcs(blob, &n);
    if (ok) {
        p->ops->del(p, sha256); /* a bad copy of the same size would be kept by put */
        ok = storage__store_put(b, p, sha256, path, bs_blob_size(blob), crcs, err, sizeof(err)) ==
             GR_OK;
        if (!ok)
            gr_warn("storage: cannot put %s into %s again: %s", sha256, p->name, err);
    }
    bs_blob_close(blob);
    if (ok)
        gr_info("storage: %s put into %s again from this node's copy", sha256, p->name);
    return ok;
}

int storage__repair_store(struct storage *b, struct storage_repair_report *out)
{
    int kind = storage__active(b);
    struct storage_provider *p = storage__prov(b, kind);
    if (!p)
        return GR_EUNAVAIL;
    const char *pp[2] = {p->loc, ""};
    struct db_res *res = NULL;
    /* binaries the store has no record of (an upload that met an outage
     * during a migration's switch, a copy repair forgot): put them there */
    int rc =
        db_exec1(b->db, &res,
                 "SELECT b.sha256, b.size FROM binaries b WHERE b.tombstoned IS NULL AND NOT EXISTS"
                 " (SELECT 1 FROM binary_locations l WHERE l.sha256 = b.sha256 AND l.node ="
                 " $1) LIMIT 1000",
                 1, pp);
    for (int i = 0; rc == GR_OK && i < db_res_rows(res) && !b->stopping; i++) {
        const char *sha = db_res_get(res, i, 0);
        out->checked++;
        if (storage__copy_to(b, kind, sha, strtoull(db_res_get(res, i, 1), NULL, 10)) == GR_OK) {
            out->copied++;
            atomic_fetch_add(&b->repaired, 1);
        } else {
            out->unavailable++;
        }
    }
    db_res_free(res);
    res = NULL;
    if (rc)
        return rc;
    /* a slice of the recorded copies: is each still there? */
    char *cursor = b->repair_cursor; /* repair passes do not overlap (repair_running) */
    pp[1] = cursor;
    rc = db_exec1(b->db, &res,
                  "SELECT sha256, (SELECT size FROM binaries x WHERE x.sha256 = l.sha256) FROM"
                  " binary_locations l WHERE node = $1 AND sha256 > $2 ORDER BY sha256 LIMIT 200",
                  2, pp);
    int rows = rc == GR_OK ? db_res_rows(res) : 0;
    for (int i = 0; i < rows && !b->stopping; i++) {
        const char *sha = db_res_get(res, i, 0);
        uint64_t size = 0, want = strtoull(db_res_get(res, i, 1), NULL, 10);
        out->checked++;
        snprintf(cursor, 65, "%s", sha);
        int src = p->ops->stat(p, sha, &size);
        if (src == GR_OK && size == want)
            continue;
        if (src != GR_OK && src != GR_ENOTFOUND)
            break; /* the store is not answering: next pass */
        gr_error("repair: %s is %s in %s", sha, src == GR_OK ? "of the wrong size" : "missing",
                 p->name);
        if (store__heal_from_cache(b, p, sha)) {
            out->copied++;
            atomic_fetch_add(&b->repaired, 1);
        } else {
            out->unavailable++;
            atomic_fetch_add(&b->store_bad, 1);
        }
    }
    if (rows < STORE_CHECK_BATCH)
        cursor[0] = '\0';
    db_res_free(res);
    return rc;
}

struct store__scrub {
    struct storage *b;
    struct storage_provider *p;
    struct storage_scrub_report *rep;
    int64_t budget; /* < 0: unlimited */
    char last[65];
    char *buf;
};

static int store__scrub_one(void *arg, const char *sha256, uint64_t size)
{
    struct store__scrub *s = arg;
    struct storage *b = s->b;
    if (s->budget == 0 || b->stopping)
        return 1;
    snprintf(s->last, sizeof(s->last), "%s", sha256);
    struct storage_pread *r = NULL;
    int rc = s->p->ops->open(s->p, sha256, size, 0, size, &r);
    struct cr_digest *d = rc == GR_OK ? cr_digest_new(CR_SHA256) : NULL;
    while (rc == GR_OK) {
        long n = s->p->ops->read(r, s->buf, 1 << 20);
        if (n < 0)
            rc = (int)n;
        if (n <= 0)
            break;
        cr_digest_update(d, s->buf, (size_t)n);
    }
    if (r)
        s->p->ops->close(r);
    if (rc == GR_OK) {
        unsigned char raw[64];
        char hex[65];
        cr_digest_final(d, raw);
        storage__hex(raw, 32, hex);
        if (strcmp(hex, sha256))
            rc = GR_ECORRUPT;
    }
    cr_digest_free(d);
    if (rc == GR_EUNAVAIL || rc == GR_ENOMEM)
        return 1; /* the store is not answering: the next slice resumes here */
    s->rep->files++;
    s->rep->bytes += (int64_t)size;
    atomic_fetch_add(&b->scrubbed_files, 1);
    atomic_fetch_add(&b->scrubbed_bytes, size);
    if (s->budget > 0)
        s->budget = s->budget > (int64_t)size + 1 ? s->budget - (int64_t)size - 1 : 0;
    if (rc == GR_OK || rc == GR_ENOTFOUND)
        return 0;
    s->rep->bad++;
    atomic_fetch_add(&b->scrub_bad, 1);
    atomic_fetch_add(&b->bad_copies, 1);
    gr_error("scrub: the copy of %s in %s is bad (%s)", sha256, s->p->name, gr_strerror(rc));
    if (s->p->ops->quarantine && s->p->ops->quarantine(s->p, sha256) == GR_OK) {
        atomic_fetch_add(&b->quarantined, 1);
        const char *pp[2] = {sha256, s->p->loc};
        if (db_exec1(b->db, NULL, "DELETE FROM binary_locations WHERE sha256 = $1 AND node = $2", 2,
                     pp) != GR_OK)
            gr_warn("scrub: cannot forget the bad copy of %s", sha256);
    }
    if (store__heal_from_cache(b, s->p, sha256))
        s->rep->healed++;
    return 0;
}

int storage__scrub_store(struct storage *b, int64_t budget, struct storage_scrub_report *out)
{
    struct storage_provider *p = storage__prov(b, storage__active(b));
    if (!p)
        return GR_EUNAVAIL;
    struct store__scrub s = {.b = b, .p = p, .rep = out, .budget = budget, .buf = malloc(1 << 20)};
    if (!s.buf)
        return GR_ENOMEM;
    const char *from = budget < 0 ? "" : b->scrub_cursor;
    snprintf(s.last, sizeof(s.last), "%s", from);
    int rc = p->ops->list(p, from, store__scrub_one, &s);
    free(s.buf);
    if (budget >= 0) {
        if (rc == GR_OK) { /* the end: a pass is complete */
            b->scrub_cursor[0] = '\0';
            atomic_store(&b->last_scrub_ms, storage__now_ms());
        } else if (rc == 1) {
            snprintf(b->scrub_cursor, sizeof(b->scrub_cursor), "%s", s.last);
        }
    }
    return rc < 0 ? rc : GR_OK;
}

/* ---- the read-through cache (s3) ---- */

struct store__cached {
    char sha256[65];
    uint64_t size;
    int64_t mtime;
};

struct store__walk {
    struct bs_store *cache;
    struct store__cached *v;
    size_t n, cap;
    int64_t total;
};

static int store__walk_one(void *arg, const char *sha256, uint64_t size)
{
    struct store__walk *w = arg;
    char path[1024];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%.2s/%s", bs_root(w->cache), sha256, sha256);
    if (stat(path, &st))
        return 0;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        struct store__cached *v = realloc(w->v, cap * sizeof(*v));
        if (!v)
            return 1;
        w->v = v;
        w->cap = cap;
    }
    struct store__cached *c = &w->v[w->n++];
    snprintf(c->sha256, sizeof(c->sha256), "%s", sha256);
    c->size = size;
    c->mtime = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    w->total += (int64_t)size;
    return 0;
}

static int store__by_mtime(const void *a, const void *b)
{
    const struct store__cached *x = a, *y = b;
    return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

struct bs_store *storage__cache_bs(struct storage *b)
{
    pthread_mutex_lock(&b->lock);
    int active = b->active, target = b->mig.target;
    pthread_mutex_unlock(&b->lock);
    if (b->cache_max <= 0 || target >= 0)
        return NULL;
    return active == STORAGE_S3 ? b->bs : active == STORAGE_LOCAL ? b->pcache : NULL;
}

void storage__cache_evict(struct storage *b)
{
    struct bs_store *cache = storage__cache_bs(b);
    int64_t now = storage__now_ms();
    /* a walk when a fill pushed the count over the limit, else once a
     * minute to correct the count (copies deleted by GC, by hand) */
    if (!cache || (atomic_load(&b->cache_bytes) <= b->cache_max &&
                   now - b->last_evict_ms < STORE_EVICT_EVERY_MS))
        return;
    b->last_evict_ms = now;
    struct store__walk w = {.cache = cache};
    if (bs_each(cache, NULL, store__walk_one, &w) != BS_OK) {
        free(w.v);
        return;
    }
    int64_t total = w.total;
    if (total > b->cache_max) {
        /* least recently used first (a hit touches the file), down to 90 % */
        qsort(w.v, w.n, sizeof(*w.v), store__by_mtime);
        int64_t goal = b->cache_max - b->cache_max / 10;
        for (size_t i = 0; i < w.n && total > goal; i++)
            if (bs_delete(cache, w.v[i].sha256) == BS_OK) {
                total -= (int64_t)w.v[i].size;
                atomic_fetch_add(&b->cache_evicted, 1);
            }
    }
    atomic_store(&b->cache_bytes, total);
    free(w.v);
}

bool storage__is_store(const char *loc)
{
    return !strncmp(loc, "store:", 6);
}

bool storage__store_del(struct storage *b, const char *loc, const char *sha256)
{
    for (int k = 0; k < STORAGE_KINDS; k++)
        if (b->prov[k] && !strcmp(b->prov[k]->loc, loc)) {
            if (k == STORAGE_S3) /* this node's cached copy goes too (other nodes' age out) */
                if (bs_delete(b->bs, sha256) == BS_OK)
                    atomic_fetch_add(&b->cache_evicted, 1);
            return b->prov[k]->ops->del(b->prov[k], sha256) == GR_OK;
        }
    return false; /* a store this node cannot reach: a later run */
}

void storage__live_ids(struct storage *b, const struct storage__node *nodes, int n,
                       struct gr_sbuf *sb)
{
    int kind = storage__active(b);
    struct storage_provider *p = storage__prov(b, kind);
    if (kind == STORAGE_LOCAL || !p) {
        storage__ids(nodes, n, sb);
        return;
    }
    const char *v[1] = {p->loc};
    db_text_array(sb, v, 1);
}

int storage__repair_store_pass(struct storage *b, struct storage_repair_report *out)
{
    if (atomic_exchange(&b->repair_running, true))
        return GR_EUNAVAIL;
    int64_t t0 = storage__now_ms();
    int rc = storage__repair_store(b, out);
    out->duration_ms = storage__now_ms() - t0;
    atomic_fetch_add(&b->repair_runs, 1);
    atomic_store(&b->last_repair_ms, storage__now_ms());
    atomic_store(&b->repair_running, false);
    if (out->copied || out->unavailable)
        gr_info("repair of the store: checked %lld, put again %lld, missing %lld in %lld ms",
                (long long)out->checked, (long long)out->copied, (long long)out->unavailable,
                (long long)out->duration_ms);
    return rc == GR_EUNAVAIL ? GR_OK : rc;
}

void storage_provider_metrics(struct storage *b, struct gr_sbuf *sb)
{
    uint64_t req = 0, fail = 0;
    struct storage_provider *s3 = storage__prov(b, STORAGE_S3);
    if (s3)
        s3_counts(s3->s3, &req, &fail);
    gr_sbuf_addf(sb,
                 "# TYPE granary_storage_provider_info gauge\n"
                 "granary_storage_provider_info{provider=\"%s\"} 1\n"
                 "# TYPE granary_storage_store_bad_total counter\n"
                 "granary_storage_store_bad_total %llu\n"
                 "# TYPE granary_storage_cache_hits_total counter\n"
                 "granary_storage_cache_hits_total %llu\n"
                 "# TYPE granary_storage_cache_misses_total counter\n"
                 "granary_storage_cache_misses_total %llu\n"
                 "# TYPE granary_storage_cache_fills_total counter\n"
                 "granary_storage_cache_fills_total %llu\n"
                 "# TYPE granary_storage_cache_evicted_total counter\n"
                 "granary_storage_cache_evicted_total %llu\n"
                 "# TYPE granary_storage_cache_bytes gauge\n"
                 "granary_storage_cache_bytes %lld\n"
                 "# TYPE granary_storage_s3_requests_total counter\n"
                 "granary_storage_s3_requests_total %llu\n"
                 "# TYPE granary_storage_s3_failures_total counter\n"
                 "granary_storage_s3_failures_total %llu\n",
                 storage_provider_name(b), (unsigned long long)atomic_load(&b->store_bad),
                 (unsigned long long)atomic_load(&b->cache_hits),
                 (unsigned long long)atomic_load(&b->cache_misses),
                 (unsigned long long)atomic_load(&b->cache_fills),
                 (unsigned long long)atomic_load(&b->cache_evicted),
                 (long long)atomic_load(&b->cache_bytes), (unsigned long long)req,
                 (unsigned long long)fail);
}
