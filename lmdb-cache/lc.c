/*
 * lc.c - the LMDB-backed node cache: environment lifecycle, the fill-race
 * guard (per-bucket invalidation counters plus a global epoch), reads,
 * fills, invalidations, meta values. The contract is in lc.h, the design
 * in README.md. The only file of granary that includes <lmdb.h>.
 */
#include "lc.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LC__NBUCKETS 4096u /* power of two */
#define LC__POOL_MAX 64    /* idle read txns kept for reuse */
#define LC__MAXREADERS 1024
#define LC__DEFAULT_MAP ((size_t)1 << 30)
#define LC__MIN_PAGES 16
#define LC__BOOT_ID_LEN 64
#define LC__DIRTY "lc.dirty"
#define LC__LOCK "lc.lock"

struct lc_env {
    MDB_env *mdb;
    MDB_dbi data;
    MDB_dbi meta;
    size_t maxkey;
    int dirfd;  /* the directory, for the marker and fsync */
    int lockfd; /* lc.lock, flock()ed for the life of the env */
    /* lc.dirty exists: commits since the last sync. Read and written only
     * while holding LMDB's writer lock (or single-threaded in open/close). */
    bool dirty;
    char boot_id[LC__BOOT_ID_LEN];
    /* An invalidation could not be applied: gets and fills fail until a
     * successful drop. */
    atomic_bool fenced;
    /* Idle, reset read-only txns (MDB_NOTLS lets any thread renew one). */
    pthread_mutex_t pool_mu;
    size_t npool;
    MDB_txn *pool[LC__POOL_MAX];
    /* Token = epoch + bucket[hash(key)]. Both only grow, and are bumped only
     * inside LMDB write txns (release); readers load them with acquire. */
    _Atomic uint64_t epoch;
    _Atomic uint64_t bucket[LC__NBUCKETS];
};

const char *lc_strerror(int err)
{
    switch (err) {
    case LC_OK:
        return "ok";
    case LC_ENOTFOUND:
        return "not found";
    case LC_ESTALE:
        return "stale fill token";
    case LC_ERANGE:
        return "buffer too small";
    case LC_EFULL:
        return "cache map full";
    case LC_EIO:
        return "cache i/o error";
    case LC_EINVAL:
        return "invalid argument";
    case LC_ENOMEM:
        return "out of memory";
    }
    return "unknown error";
}

/* An LMDB (or errno) return value as an lc_err. */
static int lc__err(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return LC_OK;
    case MDB_NOTFOUND:
        return LC_ENOTFOUND;
    case MDB_MAP_FULL:
        return LC_EFULL;
    case ENOMEM:
        return LC_ENOMEM;
    case EINVAL:
    case MDB_BAD_VALSIZE:
        return LC_EINVAL;
    default:
        return LC_EIO;
    }
}

static bool lc__key_ok(const struct lc_env *env, const void *key, size_t klen)
{
    return key != NULL && klen > 0 && klen <= env->maxkey;
}

/* ---- the fill-race guard ------------------------------------------------ */

/* FNV-1a 64 with a murmur3 finaliser so that the low bits mix well. */
static uint64_t lc__hash(const void *key, size_t klen)
{
    const unsigned char *p = key;
    uint64_t h = 0xcbf29ce484222325u;

    for (size_t i = 0; i < klen; i++) {
        h ^= p[i];
        h *= 0x100000001b3u;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53u;
    h ^= h >> 33;
    return h;
}

static size_t lc__bucket(const void *key, size_t klen)
{
    return (size_t)(lc__hash(key, klen) & (LC__NBUCKETS - 1));
}

static uint64_t lc__token(struct lc_env *env, size_t b)
{
    return atomic_load_explicit(&env->bucket[b], memory_order_acquire) +
           atomic_load_explicit(&env->epoch, memory_order_acquire);
}

static void lc__bump_bucket(struct lc_env *env, size_t b)
{
    atomic_fetch_add_explicit(&env->bucket[b], 1, memory_order_release);
}

static void lc__bump_epoch(struct lc_env *env)
{
    atomic_fetch_add_explicit(&env->epoch, 1, memory_order_release);
}

/* ---- the dirty marker: lc.dirty exists while commits may be unsynced ---- */

/* The kernel's boot id, or "" if unknown (then every marker looks foreign). */
static void lc__read_boot_id(char *out, size_t outsz)
{
    out[0] = '\0';
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, out, outsz - 1);
    close(fd);
    if (n <= 0) {
        out[0] = '\0';
        return;
    }
    out[n] = '\0';
    out[strcspn(out, "\n")] = '\0';
}

/*
 * Create lc.dirty, stamped with the boot id, and make it durable before the
 * first unsynced commit can reach the disk. Called inside a write txn.
 */
static int lc__mark_dirty(struct lc_env *env)
{
    if (env->dirty)
        return LC_OK;
    int fd = openat(env->dirfd, LC__DIRTY, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return LC_EIO;
    size_t len = strlen(env->boot_id);
    int rc = LC_OK;
    if (write(fd, env->boot_id, len) != (ssize_t)len || fdatasync(fd) != 0)
        rc = LC_EIO;
    if (close(fd) != 0)
        rc = LC_EIO;
    if (rc == LC_OK && fsync(env->dirfd) != 0)
        rc = LC_EIO;
    if (rc == LC_OK)
        env->dirty = true;
    return rc;
}

/* After a successful mdb_env_sync(): nothing unsynced, remove the marker. */
static int lc__mark_clean(struct lc_env *env)
{
    if (!env->dirty)
        return LC_OK;
    if (unlinkat(env->dirfd, LC__DIRTY, 0) != 0 && errno != ENOENT)
        return LC_EIO;
    if (fsync(env->dirfd) != 0)
        return LC_EIO;
    env->dirty = false;
    return LC_OK;
}

/* Delete the environment's files (not lc.lock), the marker last. */
static int lc__remove_files(struct lc_env *env)
{
    static const char *const files[] = {"data.mdb", "lock.mdb", LC__DIRTY};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        if (unlinkat(env->dirfd, files[i], 0) != 0 && errno != ENOENT)
            return LC_EIO;
    env->dirty = false;
    return fsync(env->dirfd) == 0 ? LC_OK : LC_EIO;
}

/*
 * At open: a marker from this boot means the process died but the page
 * cache kept every write, so the files are consistent; keep them (and the
 * marker). A marker from another boot (or an unknown one) means unsynced
 * commits may be torn: delete the environment.
 */
static int lc__recover(struct lc_env *env)
{
    char seen[LC__BOOT_ID_LEN];
    int fd = openat(env->dirfd, LC__DIRTY, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? LC_OK : LC_EIO;
    ssize_t n = read(fd, seen, sizeof(seen) - 1);
    close(fd);
    if (n < 0)
        return LC_EIO;
    seen[n] = '\0';
    if (env->boot_id[0] != '\0' && strcmp(seen, env->boot_id) == 0) {
        env->dirty = true;
        return LC_OK;
    }
    return lc__remove_files(env);
}

/* ---- transactions ------------------------------------------------------- */

static int lc__wbegin(struct lc_env *env, MDB_txn **txn)
{
    return lc__err(mdb_txn_begin(env->mdb, NULL, 0, txn));
}

/* Commit a write txn (which is gone afterwards, whatever the result). */
static int lc__wcommit(struct lc_env *env, MDB_txn *txn)
{
    int rc = lc__mark_dirty(env);
    if (rc != LC_OK) {
        mdb_txn_abort(txn);
        return rc;
    }
    return lc__err(mdb_txn_commit(txn));
}

/* A read txn: a pooled one renewed, or a new one. */
static int lc__rbegin(struct lc_env *env, MDB_txn **txn)
{
    MDB_txn *t = NULL;

    pthread_mutex_lock(&env->pool_mu);
    if (env->npool > 0)
        t = env->pool[--env->npool];
    pthread_mutex_unlock(&env->pool_mu);
    if (t != NULL) {
        int rc = mdb_txn_renew(t);
        if (rc == MDB_SUCCESS) {
            *txn = t;
            return LC_OK;
        }
        mdb_txn_abort(t);
    }
    return lc__err(mdb_txn_begin(env->mdb, NULL, MDB_RDONLY, txn));
}

/* Give a read txn back: reset and pooled (it keeps its reader slot). */
static void lc__rend(struct lc_env *env, MDB_txn *txn)
{
    mdb_txn_reset(txn);
    pthread_mutex_lock(&env->pool_mu);
    if (env->npool < LC__POOL_MAX) {
        env->pool[env->npool++] = txn;
        txn = NULL;
    }
    pthread_mutex_unlock(&env->pool_mu);
    if (txn != NULL)
        mdb_txn_abort(txn);
}

/*
 * Empty the data sub-db in its own write txn and make every token stale.
 * On success the cache holds nothing stale, so a fence is lifted.
 */
static int lc__empty(struct lc_env *env)
{
    MDB_txn *txn;
    int rc = lc__wbegin(env, &txn);
    if (rc != LC_OK)
        return rc;
    lc__bump_epoch(env);
    rc = lc__err(mdb_drop(txn, env->data, 0));
    if (rc != LC_OK) {
        mdb_txn_abort(txn);
        return rc;
    }
    rc = lc__wcommit(env, txn);
    if (rc == LC_OK)
        atomic_store(&env->fenced, false);
    return rc;
}

/*
 * An invalidation failed with rc: empty the cache instead, or, if even that
 * fails, fence it so that nothing possibly stale is served.
 */
static int lc__invalidation_failed(struct lc_env *env, int rc)
{
    lc__bump_epoch(env);
    if (lc__empty(env) == LC_OK)
        return LC_OK;
    atomic_store(&env->fenced, true);
    return rc;
}

/* ---- lifecycle ---------------------------------------------------------- */

/* flock() lc.lock so that one lc_env at a time uses the directory. */
static int lc__lock_dir(struct lc_env *env)
{
    env->lockfd = openat(env->dirfd, LC__LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (env->lockfd < 0)
        return LC_EIO;
    if (flock(env->lockfd, LOCK_EX | LOCK_NB) != 0) {
        close(env->lockfd);
        env->lockfd = -1;
        return LC_EIO;
    }
    return LC_OK;
}

/* Open the two sub-dbs in a txn begun with txn_flags, and commit it. */
static int lc__open_dbis(struct lc_env *env, unsigned txn_flags, unsigned db_flags)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(env->mdb, NULL, txn_flags, &txn);
    if (rc != MDB_SUCCESS)
        return lc__err(rc);
    if ((rc = mdb_dbi_open(txn, "data", db_flags, &env->data)) != MDB_SUCCESS ||
        (rc = mdb_dbi_open(txn, "meta", db_flags, &env->meta)) != MDB_SUCCESS) {
        mdb_txn_abort(txn);
        return lc__err(rc);
    }
    if (txn_flags & MDB_RDONLY)
        return lc__err(mdb_txn_commit(txn));
    return lc__wcommit(env, txn);
}

static int lc__open_mdb(struct lc_env *env, const char *dir, size_t map_size)
{
    int rc = mdb_env_create(&env->mdb);
    if (rc != MDB_SUCCESS)
        return lc__err(rc);
    if ((rc = mdb_env_set_maxdbs(env->mdb, 2)) != MDB_SUCCESS ||
        (rc = mdb_env_set_maxreaders(env->mdb, LC__MAXREADERS)) != MDB_SUCCESS ||
        (rc = mdb_env_set_mapsize(env->mdb, map_size)) != MDB_SUCCESS ||
        (rc = mdb_env_open(env->mdb, dir, MDB_NOTLS | MDB_NOSYNC, 0600)) != MDB_SUCCESS)
        goto out_close_env;
    int maxkey = mdb_env_get_maxkeysize(env->mdb);
    env->maxkey = maxkey < LC_MAX_KEY ? (size_t)maxkey : LC_MAX_KEY;

    /* Existing sub-dbs open in a read txn, so that a reopen writes
     * nothing (and leaves no dirty marker); a new env creates them. */
    int lrc = lc__open_dbis(env, MDB_RDONLY, 0);
    if (lrc == LC_ENOTFOUND)
        lrc = lc__open_dbis(env, 0, MDB_CREATE);
    if (lrc == LC_OK)
        return LC_OK;
    rc = lrc == LC_ENOMEM ? ENOMEM : EIO;

out_close_env:
    mdb_env_close(env->mdb);
    env->mdb = NULL;
    /* Only LC_ENOMEM or LC_EIO: the caller's arguments were checked. */
    return rc == ENOMEM ? LC_ENOMEM : LC_EIO;
}

int lc_open(const char *dir, size_t map_size, struct lc_env **out)
{
    if (dir == NULL || dir[0] == '\0' || out == NULL)
        return LC_EINVAL;
    long pg = sysconf(_SC_PAGESIZE);
    size_t page = pg > 0 ? (size_t)pg : 4096;
    if (map_size == 0)
        map_size = LC__DEFAULT_MAP;
    if (map_size < LC__MIN_PAGES * page)
        return LC_EINVAL;
    if (map_size % page != 0)
        map_size += page - map_size % page;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return LC_EIO;

    struct lc_env *env = calloc(1, sizeof(*env));
    if (env == NULL)
        return LC_ENOMEM;
    int rc = LC_EIO;
    env->lockfd = -1;
    env->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (env->dirfd < 0)
        goto out_free;
    if ((rc = lc__lock_dir(env)) != LC_OK)
        goto out_close_dir;
    lc__read_boot_id(env->boot_id, sizeof(env->boot_id));
    if ((rc = lc__recover(env)) != LC_OK)
        goto out_unlock;
    if (pthread_mutex_init(&env->pool_mu, NULL) != 0) {
        rc = LC_ENOMEM;
        goto out_unlock;
    }
    /* Start the epoch at the wall clock so tokens from an earlier env in
     * this process do not match by accident. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    atomic_init(&env->epoch, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
    for (size_t i = 0; i < LC__NBUCKETS; i++)
        atomic_init(&env->bucket[i], 0);
    atomic_init(&env->fenced, false);
    if ((rc = lc__open_mdb(env, dir, map_size)) != LC_OK)
        goto out_mutex;
    *out = env;
    return LC_OK;

out_mutex:
    pthread_mutex_destroy(&env->pool_mu);
out_unlock:
    close(env->lockfd);
out_close_dir:
    close(env->dirfd);
out_free:
    free(env);
    return rc;
}

void lc_close(struct lc_env *env)
{
    if (env == NULL)
        return;
    for (size_t i = 0; i < env->npool; i++)
        mdb_txn_abort(env->pool[i]);
    env->npool = 0;
    /* A fenced cache holds keys whose invalidation failed: the files must
     * not outlive this env. Otherwise sync (no other thread is left, so the
     * writer lock lc_sync() takes is free). */
    bool fenced = atomic_load(&env->fenced);
    if (!fenced)
        (void)!lc_sync(env);
    mdb_env_close(env->mdb);
    if (fenced)
        (void)!lc__remove_files(env);
    pthread_mutex_destroy(&env->pool_mu);
    close(env->lockfd);
    close(env->dirfd);
    free(env);
}

/* ---- reads and fills ---------------------------------------------------- */

int lc_get(struct lc_env *env, const void *key, size_t klen, void *buf, size_t bufsz, size_t *vlen)
{
    if (env == NULL || vlen == NULL || !lc__key_ok(env, key, klen) || (buf == NULL && bufsz > 0))
        return LC_EINVAL;
    if (atomic_load(&env->fenced))
        return LC_EIO;
    MDB_txn *txn;
    int rc = lc__rbegin(env, &txn);
    if (rc != LC_OK)
        return rc;
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
    MDB_val v;
    rc = lc__err(mdb_get(txn, env->data, &k, &v));
    if (rc == LC_OK) {
        *vlen = v.mv_size;
        if (v.mv_size > bufsz)
            rc = LC_ERANGE;
        else if (v.mv_size > 0)
            memcpy(buf, v.mv_data, v.mv_size);
    }
    lc__rend(env, txn);
    return rc;
}

uint64_t lc_fill_token(struct lc_env *env, const void *key, size_t klen)
{
    if (env == NULL || (key == NULL && klen > 0))
        return 0;
    return lc__token(env, lc__bucket(key, klen));
}

int lc_fill(struct lc_env *env, const void *key, size_t klen, const void *val, size_t vlen,
            uint64_t token)
{
    if (env == NULL || !lc__key_ok(env, key, klen) || (val == NULL && vlen > 0) ||
        vlen > UINT32_MAX)
        return LC_EINVAL;
    if (atomic_load(&env->fenced))
        return LC_EIO;
    size_t b = lc__bucket(key, klen);
    MDB_txn *txn;
    int rc = lc__wbegin(env, &txn);
    if (rc != LC_OK)
        return rc;
    /* Under the writer lock: every invalidation has either fully committed
     * (and bumped) or not started. */
    if (lc__token(env, b) != token) {
        mdb_txn_abort(txn);
        return LC_ESTALE;
    }
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
    MDB_val v = {.mv_size = vlen, .mv_data = (void *)val};
    rc = lc__err(mdb_put(txn, env->data, &k, &v, 0));
    if (rc == LC_OK)
        rc = lc__wcommit(env, txn);
    else
        mdb_txn_abort(txn);
    if (rc == LC_EFULL)
        (void)lc__empty(env);
    return rc;
}

/* ---- invalidation ------------------------------------------------------- */

int lc_invalidate(struct lc_env *env, const struct lc_key *keys, size_t n)
{
    if (env == NULL || (keys == NULL && n > 0))
        return LC_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (keys[i].data == NULL && keys[i].len > 0)
            return LC_EINVAL;
    if (n == 0)
        return LC_OK;
    MDB_txn *txn;
    int rc = lc__wbegin(env, &txn);
    if (rc != LC_OK)
        return lc__invalidation_failed(env, rc);
    for (size_t i = 0; i < n; i++)
        lc__bump_bucket(env, lc__bucket(keys[i].data, keys[i].len));
    for (size_t i = 0; i < n && rc == LC_OK; i++) {
        if (!lc__key_ok(env, keys[i].data, keys[i].len))
            continue; /* could never have been stored */
        MDB_val k = {.mv_size = keys[i].len, .mv_data = (void *)keys[i].data};
        int mrc = mdb_del(txn, env->data, &k, NULL);
        if (mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND)
            rc = lc__err(mrc);
    }
    if (rc == LC_OK)
        rc = lc__wcommit(env, txn);
    else
        mdb_txn_abort(txn);
    return rc == LC_OK ? LC_OK : lc__invalidation_failed(env, rc);
}

/* Delete the keys starting with prefix (all if plen is 0) in txn. */
static int lc__del_prefix(struct lc_env *env, MDB_txn *txn, const void *prefix, size_t plen)
{
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, env->data, &cur);
    if (mrc != MDB_SUCCESS)
        return lc__err(mrc);
    MDB_val k = {.mv_size = plen, .mv_data = (void *)prefix};
    MDB_val v;
    MDB_cursor_op op = plen > 0 ? MDB_SET_RANGE : MDB_FIRST;
    while ((mrc = mdb_cursor_get(cur, &k, &v, op)) == MDB_SUCCESS) {
        if (plen > 0 && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0))
            break; /* past the range: keys sort by memcmp */
        if ((mrc = mdb_cursor_del(cur, 0)) != MDB_SUCCESS)
            break;
        op = MDB_NEXT; /* after a delete, NEXT yields the following key */
    }
    mdb_cursor_close(cur);
    return mrc == MDB_NOTFOUND ? LC_OK : lc__err(mrc);
}

int lc_invalidate_prefix(struct lc_env *env, const void *prefix, size_t plen)
{
    if (env == NULL || (prefix == NULL && plen > 0) || plen > env->maxkey)
        return LC_EINVAL;
    MDB_txn *txn;
    int rc = lc__wbegin(env, &txn);
    if (rc != LC_OK)
        return lc__invalidation_failed(env, rc);
    lc__bump_epoch(env);
    rc = lc__del_prefix(env, txn, prefix, plen);
    if (rc == LC_OK)
        rc = lc__wcommit(env, txn);
    else
        mdb_txn_abort(txn);
    return rc == LC_OK ? LC_OK : lc__invalidation_failed(env, rc);
}

int lc_drop(struct lc_env *env)
{
    if (env == NULL)
        return LC_EINVAL;
    int rc = lc__empty(env);
    if (rc != LC_OK)
        atomic_store(&env->fenced, true);
    return rc;
}

/* ---- meta, sync, stat --------------------------------------------------- */

static bool lc__name_ok(const struct lc_env *env, const char *name)
{
    return name != NULL && name[0] != '\0' && strnlen(name, env->maxkey + 1) <= env->maxkey;
}

int lc_meta_get(struct lc_env *env, const char *name, uint64_t *val)
{
    if (env == NULL || val == NULL || !lc__name_ok(env, name))
        return LC_EINVAL;
    MDB_txn *txn;
    int rc = lc__rbegin(env, &txn);
    if (rc != LC_OK)
        return rc;
    MDB_val k = {.mv_size = strlen(name), .mv_data = (void *)name};
    MDB_val v;
    rc = lc__err(mdb_get(txn, env->meta, &k, &v));
    if (rc == LC_OK) {
        if (v.mv_size == sizeof(*val))
            memcpy(val, v.mv_data, sizeof(*val));
        else
            rc = LC_EIO;
    }
    lc__rend(env, txn);
    return rc;
}

/* One meta put (val != NULL) or delete, committed; no sync. */
static int lc__meta_write(struct lc_env *env, const char *name, const uint64_t *val)
{
    MDB_txn *txn;
    int rc = lc__wbegin(env, &txn);
    if (rc != LC_OK)
        return rc;
    MDB_val k = {.mv_size = strlen(name), .mv_data = (void *)name};
    int mrc;
    if (val != NULL) {
        MDB_val v = {.mv_size = sizeof(*val), .mv_data = (void *)val};
        mrc = mdb_put(txn, env->meta, &k, &v, 0);
    } else {
        mrc = mdb_del(txn, env->meta, &k, NULL);
        if (mrc == MDB_NOTFOUND)
            mrc = MDB_SUCCESS;
    }
    if (mrc != MDB_SUCCESS) {
        mdb_txn_abort(txn);
        return lc__err(mrc);
    }
    return lc__wcommit(env, txn);
}

/* A meta write, retried once after emptying the data if the map is full. */
static int lc__meta_change(struct lc_env *env, const char *name, const uint64_t *val)
{
    if (env == NULL || !lc__name_ok(env, name))
        return LC_EINVAL;
    int rc = lc__meta_write(env, name, val);
    if (rc == LC_EFULL && lc__empty(env) == LC_OK)
        rc = lc__meta_write(env, name, val);
    if (rc != LC_OK)
        return rc;
    return lc_sync(env);
}

int lc_meta_set(struct lc_env *env, const char *name, uint64_t val)
{
    return lc__meta_change(env, name, &val);
}

int lc_meta_del(struct lc_env *env, const char *name)
{
    return lc__meta_change(env, name, NULL);
}

/*
 * The writer lock is held across the sync and the marker removal, so no
 * commit can slip in between and be left unsynced without a marker.
 */
int lc_sync(struct lc_env *env)
{
    if (env == NULL)
        return LC_EINVAL;
    MDB_txn *txn;
    int rc = lc__wbegin(env, &txn);
    if (rc != LC_OK)
        return rc;
    rc = mdb_env_sync(env->mdb, 1) == MDB_SUCCESS ? LC_OK : LC_EIO;
    if (rc == LC_OK)
        rc = lc__mark_clean(env);
    mdb_txn_abort(txn);
    return rc;
}

/* Pages on LMDB's free list, summed like mdb_stat -f: each record of the
 * free DB (dbi 0) is an ID list whose first word is its length. */
static int lc__free_pages(MDB_txn *txn, uint64_t *pages)
{
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, 0, &cur);
    if (mrc != MDB_SUCCESS)
        return lc__err(mrc);
    MDB_val k, v;
    *pages = 0;
    while ((mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == MDB_SUCCESS) {
        size_t n;
        if (v.mv_size < sizeof(n))
            continue;
        memcpy(&n, v.mv_data, sizeof(n));
        *pages += n;
    }
    mdb_cursor_close(cur);
    return mrc == MDB_NOTFOUND ? LC_OK : lc__err(mrc);
}

int lc_stat(struct lc_env *env, struct lc_stat *st)
{
    if (env == NULL || st == NULL)
        return LC_EINVAL;
    MDB_txn *txn;
    int rc = lc__rbegin(env, &txn);
    if (rc != LC_OK)
        return rc;
    MDB_stat ms, es;
    MDB_envinfo info;
    uint64_t free_pages = 0;
    if ((rc = lc__err(mdb_stat(txn, env->data, &ms))) == LC_OK &&
        (rc = lc__err(mdb_env_stat(env->mdb, &es))) == LC_OK &&
        (rc = lc__err(mdb_env_info(env->mdb, &info))) == LC_OK)
        rc = lc__free_pages(txn, &free_pages);
    lc__rend(env, txn);
    if (rc != LC_OK)
        return rc;
    uint64_t pages = (uint64_t)info.me_last_pgno + 1;
    st->entries = ms.ms_entries;
    st->map_size = info.me_mapsize;
    st->used_bytes = (pages > free_pages ? pages - free_pages : 0) * es.ms_psize;
    return LC_OK;
}
