/* cache.c - read-through and invalidation over lmdb-cache (docs/cache.md). */
#include "repo/internal.h"

#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "crypto/crypto.h"
#include "db/db.h"
#include "lc.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CACHE_KEY_DIRECT_MAX 400 /* LMDB keys are at most 511 bytes */
#define CACHE_VAL_STACK 4096

/* Long keys are stored under "h:" + sha256(key); they lose prefix invalidation. */
static void cache__physical(const struct gr_sbuf *key, struct gr_sbuf *phys)
{
    if (key->len <= CACHE_KEY_DIRECT_MAX) {
        gr_sbuf_add(phys, key->buf, key->len);
        return;
    }
    char hex[CR_SHA256_HEX];
    cr_sha256_hex(key->buf, key->len, hex);
    gr_sbuf_adds(phys, "h:");
    gr_sbuf_adds(phys, hex);
}

void repo__key_repo(struct gr_sbuf *k, const char *repo)
{
    gr_sbuf_adds(k, "r:");
    gr_sbuf_adds(k, repo);
}

void repo__key_artifact(struct gr_sbuf *k, const char *repo, const char *path)
{
    gr_sbuf_adds(k, "a:");
    gr_sbuf_add(k, repo, strlen(repo) + 1); /* keep the NUL as separator */
    gr_sbuf_adds(k, path);
}

void repo__key_user(struct gr_sbuf *k, const char *user)
{
    gr_sbuf_adds(k, "u:");
    gr_sbuf_adds(k, user);
}

void repo__key_setting(struct gr_sbuf *k, const char *name)
{
    gr_sbuf_adds(k, "s:");
    gr_sbuf_adds(k, name);
}

void repo__key_folder(struct gr_sbuf *k, const char *repo, const char *top)
{
    gr_sbuf_adds(k, "f:");
    gr_sbuf_add(k, repo, strlen(repo) + 1); /* keep the NUL as separator */
    gr_sbuf_adds(k, top);
}

int repo__fields(struct gr_arena *a, const char *rec, size_t len, const char **f, int max)
{
    (void)a;
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len && n < max; i++) {
        if (i == len || rec[i] == '\0') {
            f[n++] = rec + start;
            start = i + 1;
        }
    }
    return n;
}

void repo__fill(struct repo_ctx *ctx, const struct gr_sbuf *key, const struct gr_sbuf *rec,
                uint64_t token)
{
    struct gr_sbuf phys = GR_SBUF_INIT;
    cache__physical(key, &phys);
    int rc = lc_fill(ctx->cache, phys.buf, phys.len, rec->buf, rec->len, token);
    if (rc != LC_OK && rc != LC_ESTALE)
        gr_warn("cache fill failed: %s", lc_strerror(rc));
    gr_sbuf_release(&phys);
}

/* repo__cached(); fill false: a miss is loaded and not stored. */
static int cache__lookup(struct repo_ctx *ctx, struct gr_arena *a, const struct gr_sbuf *key,
                         repo__load_fn load, void *arg, const char **rec, size_t *reclen, bool fill)
{
    if (ctx->hooks.cache_ok && !ctx->hooks.cache_ok(ctx->hooks.arg)) {
        /* the cache lease lapsed: the cache may have missed invalidations */
        struct gr_sbuf val = GR_SBUF_INIT;
        atomic_fetch_add(&ctx->cache_misses, 1);
        int lrc = load(ctx, arg, &val);
        if (lrc == GR_OK) {
            *rec = gr_arena_strndup(a, val.buf, val.len);
            *reclen = val.len;
        }
        gr_sbuf_release(&val);
        return lrc;
    }
    struct gr_sbuf phys = GR_SBUF_INIT;
    char stackbuf[CACHE_VAL_STACK];
    size_t vlen = 0;
    cache__physical(key, &phys);
    int rc = lc_get(ctx->cache, phys.buf, phys.len, stackbuf, sizeof(stackbuf), &vlen);
    if (rc == LC_ERANGE) {
        char *big = gr_arena_alloc(a, vlen);
        rc = lc_get(ctx->cache, phys.buf, phys.len, big, vlen, &vlen);
        if (rc == LC_OK) {
            gr_sbuf_release(&phys);
            atomic_fetch_add(&ctx->cache_hits, 1);
            if (big[0] == 'A')
                return GR_ENOTFOUND;
            *rec = big + 1;
            *reclen = vlen - 1;
            return GR_OK;
        }
    }
    if (rc == LC_OK && vlen >= 1) {
        gr_sbuf_release(&phys);
        atomic_fetch_add(&ctx->cache_hits, 1);
        if (stackbuf[0] == 'A')
            return GR_ENOTFOUND;
        *rec = gr_arena_strndup(a, stackbuf + 1, vlen - 1);
        *reclen = vlen - 1;
        return GR_OK;
    }
    atomic_fetch_add(&ctx->cache_misses, 1);

    /* miss: token first, then the source of truth, then a guarded fill */
    uint64_t token = lc_fill_token(ctx->cache, phys.buf, phys.len);
    struct gr_sbuf val = GR_SBUF_INIT;
    gr_sbuf_add(&val, "P", 1);
    rc = load(ctx, arg, &val);
#ifdef GRANARY_TEST_HOOKS
    /* test builds only: hold a reader between its database read and its
     * fill, so tests can force the fill race (tests/integration/20_cluster.bats) */
    const char *pause = getenv("GRANARY_TEST_FILL_PAUSE");
    if (pause && *pause && memmem(key->buf, key->len, pause, strlen(pause))) {
        gr_info("test hook: pausing the fill of a key containing '%s'", pause);
        usleep(2000000);
    }
#endif
    if (fill && (rc == GR_OK || rc == GR_ENOTFOUND)) {
        if (rc == GR_ENOTFOUND) {
            gr_sbuf_reset(&val);
            gr_sbuf_add(&val, "A", 1);
        }
        int frc = lc_fill(ctx->cache, phys.buf, phys.len, val.buf, val.len, token);
        if (frc != LC_OK && frc != LC_ESTALE)
            gr_warn("cache fill failed: %s", lc_strerror(frc));
    }
    if (rc == GR_OK) {
        *rec = gr_arena_strndup(a, val.buf + 1, val.len - 1);
        *reclen = val.len - 1;
    }
    gr_sbuf_release(&val);
    gr_sbuf_release(&phys);
    return rc;
}

int repo__cached(struct repo_ctx *ctx, struct gr_arena *a, const struct gr_sbuf *key,
                 repo__load_fn load, void *arg, const char **rec, size_t *reclen)
{
    return cache__lookup(ctx, a, key, load, arg, rec, reclen, true);
}

int repo__cached_nofill(struct repo_ctx *ctx, struct gr_arena *a, const struct gr_sbuf *key,
                        repo__load_fn load, void *arg, const char **rec, size_t *reclen)
{
    return cache__lookup(ctx, a, key, load, arg, rec, reclen, false);
}
/* Exact keys of one invalidation, collected for one LMDB write transaction. */
struct cache__batch {
    struct gr_sbuf *phys;
    size_t n, cap;
};

static void cache__batch_add(struct cache__batch *b, const char *key, size_t len)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        struct gr_sbuf *v = realloc(b->phys, cap * sizeof(*v));
        if (!v)
            abort(); /* as the arena and sbuf do: no half-applied invalidation */
        b->phys = v;
        b->cap = cap;
    }
    struct gr_sbuf logical = {(char *)key, len, 0};
    gr_sbuf_init(&b->phys[b->n]);
    cache__physical(&logical, &b->phys[b->n++]);
}

/*
 * The folder summaries an artifact key's invalidation reaches
 * (repo__key_folder): an artifact "a:<repo>\0<top>/..." (or a prefix below
 * "<top>/") drops "f:<repo>\0<top>" and the repository's "f:<repo>\0"; a
 * prefix that names no whole top folder ("a:<repo>\0", a repository
 * deleted) drops every summary under it. Derived here, on the node that
 * applies the invalidation, so every writer of artifact rows (deploys,
 * deletes, copy and move, the trash, properties, a format's commit) and
 * every peer keeps them right without naming them.
 */
static int cache__folders(struct repo_ctx *ctx, const struct cluster_key *it,
                          struct cache__batch *b, bool *any_prefix)
{
    const char *key = it->key;
    size_t len = it->len;
    if (len < 2 || memcmp(key, "a:", 2))
        return LC_OK;
    const char *nul = memchr(key + 2, '\0', len - 2);
    const char *path = nul ? nul + 1 : key + len;
    size_t plen = (size_t)(key + len - path);
    const char *slash = memchr(path, '/', plen);
    struct gr_sbuf f = GR_SBUF_INIT;
    int rc = LC_OK;
    gr_sbuf_adds(&f, "f:");
    if (!nul || (it->prefix && !slash)) {
        /* a prefix across repositories, or the whole of one: every summary below */
        gr_sbuf_add(&f, key + 2, len - 2);
        *any_prefix = true;
        rc = lc_invalidate_prefix(ctx->cache, f.buf, f.len);
    } else {
        gr_sbuf_add(&f, key + 2, (size_t)(path - key) - 2); /* "<repo>\0": the repository's */
        cache__batch_add(b, f.buf, f.len);
        gr_sbuf_add(&f, path, slash ? (size_t)(slash - path) : plen);
        cache__batch_add(b, f.buf, f.len);
    }
    gr_sbuf_release(&f);
    return rc;
}

/* The local half: drop keys (or prefixes) from this node's LMDB. */
void repo_apply_invalidation(struct repo_ctx *ctx, const struct cluster_key *items, size_t n)
{
    int rc = LC_OK;
    bool any_prefix = false;
    struct cache__batch b = {0};
    for (size_t i = 0; i < n && rc == LC_OK; i++) {
        if (items[i].prefix) {
            rc = lc_invalidate_prefix(ctx->cache, items[i].key, items[i].len);
            any_prefix = true;
        } else {
            cache__batch_add(&b, items[i].key, items[i].len);
        }
        if (rc == LC_OK)
            rc = cache__folders(ctx, &items[i], &b, &any_prefix);
    }
    if (rc == LC_OK && b.n) {
        struct lc_key *lk = malloc(b.n * sizeof(*lk));
        if (!lk)
            abort();
        for (size_t i = 0; i < b.n; i++)
            lk[i] = (struct lc_key){b.phys[i].buf, b.phys[i].len};
        rc = lc_invalidate(ctx->cache, lk, b.n);
        free(lk);
    }
    for (size_t i = 0; i < b.n; i++)
        gr_sbuf_release(&b.phys[i]);
    free(b.phys);
    /* hashed long keys cannot be matched by prefix: they all go */
    if (rc == LC_OK && any_prefix)
        rc = lc_invalidate_prefix(ctx->cache, "h:", 2);
    if (rc != LC_OK) {
        /* the cache must never keep what the database no longer says */
        gr_error("cache invalidation failed (%s): dropping the cache", lc_strerror(rc));
        if (lc_drop(ctx->cache) != LC_OK)
            gr_error("cache drop failed too");
    }
    if (ctx->watch.fn) /* after the keys are gone: a woken reader reads the new state */
        ctx->watch.fn(ctx->watch.arg, items, n);
}

/* Set on the thread of a mutation whose acknowledged invalidation could not
 * be completed; read (and cleared) before the request is answered. */
static _Thread_local bool cache__unconfirmed;

bool repo_invalidation_unconfirmed(void)
{
    bool u = cache__unconfirmed;
    cache__unconfirmed = false;
    return u;
}

/* Local invalidation, then (in a cluster) the acknowledged broadcast. */
static void cache__invalidate(struct repo_ctx *ctx, const struct cluster_key *items, size_t n)
{
    repo_apply_invalidation(ctx, items, n);
    if (ctx->hooks.invalidate && !ctx->hooks.invalidate(ctx->hooks.arg, items, n))
        cache__unconfirmed = true;
}

void repo__invalidate(struct repo_ctx *ctx, const struct gr_sbuf *keys, size_t n)
{
    /* in batches a cluster message carries (CLUSTER_KEYS_MAX is the receiver's limit) */
    enum { BATCH = 32 };
    struct cluster_key items[BATCH];
    for (size_t done = 0; done < n;) {
        size_t k = 0;
        for (; k < BATCH && done < n; k++, done++)
            items[k] = (struct cluster_key){keys[done].buf, keys[done].len, false};
        cache__invalidate(ctx, items, k);
    }
}

void repo__invalidate_prefix(struct repo_ctx *ctx, const struct gr_sbuf *prefix)
{
    struct cluster_key item = {prefix->buf, prefix->len, true};
    cache__invalidate(ctx, &item, 1);
}

#define CACHE__BUMP "UPDATE change_counter SET value = value + 1 WHERE id = 1"

int repo__bump(struct db_conn *c)
{
    return db_exec(c, NULL, CACHE__BUMP, 0, NULL);
}

/* repo__finish(), with last (or nothing) sent with the COMMIT. */
static int cache__finish(struct db_conn *c, int rc, const char *last)
{
    if (rc == GR_OK)
        rc = db_commit_after(c, last);
    else
        db_rollback(c);
    db_release(c);
    return rc;
}

int repo__bump_finish(struct db_conn *c, int rc)
{
    return cache__finish(c, rc, CACHE__BUMP);
}

int repo__finish(struct db_conn *c, int rc)
{
    return cache__finish(c, rc, NULL);
}

static int cache__counter(struct repo_ctx *ctx, uint64_t *v)
{
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res, "SELECT value FROM change_counter WHERE id = 1", 0, NULL);
    if (rc == GR_OK) {
        if (db_res_rows(res) == 1)
            *v = strtoull(db_res_get(res, 0, 0), NULL, 10);
        else
            rc = GR_EDB;
    }
    db_res_free(res);
    return rc;
}

int repo_cache_start(struct repo_ctx *ctx, bool *kept)
{
    uint64_t clean = 0, now = 0;
    *kept = false;
    int rc = cache__counter(ctx, &now);
    if (rc)
        return rc;
    if (lc_meta_get(ctx->cache, "clean_counter", &clean) == LC_OK && clean == now)
        *kept = true;
    else if (lc_drop(ctx->cache) != LC_OK)
        return GR_EIO;
    /* from here on a crash must not look like a clean stop */
    if (lc_meta_del(ctx->cache, "clean_counter") != LC_OK)
        return GR_EIO;
    return GR_OK;
}

int repo_cache_stop(struct repo_ctx *ctx)
{
    uint64_t now = 0;
    int rc = cache__counter(ctx, &now);
    if (rc)
        return rc;
    if (lc_sync(ctx->cache) != LC_OK || lc_meta_set(ctx->cache, "clean_counter", now) != LC_OK)
        return GR_EIO;
    return GR_OK;
}

int repo_cache_drop(struct repo_ctx *ctx)
{
    int rc = lc_drop(ctx->cache) == LC_OK ? GR_OK : GR_EIO;
    if (ctx->watch.fn)
        ctx->watch.fn(ctx->watch.arg, NULL, 0);
    return rc;
}

void repo_cache_metrics(struct repo_ctx *ctx, struct gr_sbuf *sb)
{
    gr_sbuf_addf(sb,
                 "# TYPE granary_cache_hits_total counter\ngranary_cache_hits_total %llu\n"
                 "# TYPE granary_cache_misses_total counter\ngranary_cache_misses_total %llu\n",
                 (unsigned long long)atomic_load(&ctx->cache_hits),
                 (unsigned long long)atomic_load(&ctx->cache_misses));
}
