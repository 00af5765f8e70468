/**
 * @file lc.h
 * @brief lmdb-cache: the node-local key/value cache of granary, over LMDB.
 *
 * Keys and values are opaque byte strings. PostgreSQL is the source of
 * truth; this cache only ever holds copies, and may be emptied at any time.
 * This header is the whole contract; lmdb-cache/README.md explains the
 * design. It is the only module that includes <lmdb.h>.
 *
 * The protocol that keeps the cache from serving stale data (docs/cluster.md,
 * "Caches that are never stale", point 4):
 *
 *   reader (on a miss)                     writer / invalidation receiver
 *   ------------------                     ------------------------------
 *   t = lc_fill_token(env, k)              commit the change in PostgreSQL
 *   v = read k from PostgreSQL             lc_invalidate(env, {k, ...})
 *   lc_fill(env, k, v, t)                  acknowledge / answer the client
 *
 * lc_fill() stores v only if no invalidation that could touch k began after
 * t was taken; the check runs inside the LMDB write transaction, so it is
 * serialised against every invalidation. Once lc_invalidate() has returned
 * LC_OK, no lc_get() that starts afterwards returns a value older than the
 * PostgreSQL commit that preceded the invalidation.
 *
 * Caveats:
 *
 * - Threads: an lc_env is safe to share between threads, and every
 *   function but lc_open() and lc_close() may be called concurrently.
 *   Writes (lc_fill, lc_invalidate*, lc_drop, lc_meta_set/del, lc_sync)
 *   serialise on LMDB's single writer lock; reads never block on writers.
 *   No call keeps a transaction open after it returns.
 *
 * - fork: do not use an lc_env in a child after fork(); open a new one
 *   there (after the parent's is closed). The library's descriptors are
 *   close-on-exec.
 *
 * - One lc_env per directory, in one process: the invalidation counters
 *   live in the memory of the lc_env, so a second opener (in this or
 *   another process) would not see this one's invalidations. lc_open()
 *   enforces it with an flock() and fails with LC_EIO. Do not put the
 *   directory on a network filesystem.
 *
 * - Durability: the environment is opened with MDB_NOSYNC, so commits reach
 *   the page cache, not the disk. A crash of the process loses nothing and
 *   leaves the files consistent. An OS crash or power loss while commits
 *   were not yet synced may leave them torn; lc_open() detects that (a
 *   marker file written before the first unsynced commit, stamped with the
 *   kernel boot id) and then starts from an empty environment: data AND
 *   meta values are gone. Treat a missing meta value as "unknown".
 *
 * - Files in the directory: data.mdb and lock.mdb (LMDB), lc.lock (the
 *   single-opener lock) and, while unsynced commits exist, lc.dirty.
 *
 * - Error codes are the negative values of enum lc_err; no function sets
 *   errno as part of its contract.
 */
#ifndef LC_H
#define LC_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define LC_MUST_USE __attribute__((warn_unused_result))
#else
#define LC_MUST_USE
#endif

/** Longest key (and meta name) in bytes; LMDB's compiled-in limit. */
#define LC_MAX_KEY 511

/** Return codes. 0 is success; everything else is negative. */
enum lc_err {
    LC_OK = 0,
    LC_ENOTFOUND = -1, /**< no such key / meta name */
    LC_ESTALE = -2,    /**< lc_fill(): an invalidation came after the token */
    LC_ERANGE = -3,    /**< lc_get(): the buffer is too small */
    LC_EFULL = -4,     /**< the map is full (the cache was emptied) */
    LC_EIO = -5,       /**< LMDB or system call failure, directory in use */
    LC_EINVAL = -6,    /**< bad argument: NULL, key length 0 or > LC_MAX_KEY */
    LC_ENOMEM = -7,    /**< out of memory */
};

/** @brief Short lowercase text for an lc_err code.
 *
 * @param[in] err One of enum lc_err (anything else gives "unknown error").
 * @return Static storage, never NULL.
 */
const char *lc_strerror(int err);

/** An open cache. Opaque; safe to share between threads (see Caveats). */
struct lc_env;

/** One key for lc_invalidate(). The bytes are only read during the call. */
struct lc_key {
    const void *data;
    size_t len;
};

/** Numbers from lc_stat(). */
struct lc_stat {
    uint64_t entries;    /**< keys in the data sub-db */
    uint64_t map_size;   /**< bytes the cache may grow to */
    uint64_t used_bytes; /**< pages holding data now, in bytes (approximate) */
};

/** @brief Open (creating if needed) the cache in a directory.
 *
 * Creates dir with mode 0700 if it is missing (its parent must exist),
 * takes the single-opener lock, discards a torn environment left by an OS
 * crash (see Caveats), and opens an LMDB environment with
 * MDB_NOTLS|MDB_NOSYNC, room for 1024 concurrent readers, a "data" sub-db
 * for the cache and a "meta" sub-db for lc_meta_*(). Data and meta of a
 * cleanly closed (or process-crashed) cache are kept.
 *
 * @param[in] dir Directory of the environment.
 * @param[in] map_size Most bytes the cache may use on disk and in address
 *   space; 0 means 1 GiB. Rounded up to a page; at least 16 pages (64 KiB
 *   with 4 KiB pages). If the data already in the file needs more, the
 *   map grows to fit it.
 * @param[out] out The new handle on success; untouched on failure.
 * @return LC_OK, or:
 *   - LC_EINVAL: dir or out NULL, dir empty, map_size too small;
 *   - LC_ENOMEM: out of memory;
 *   - LC_EIO: dir cannot be created or is not a directory, another lc_env
 *     (in this or another process) has it open, the files are unreadable
 *     or not an LMDB environment of this version. The cache being
 *     disposable, a caller may remove the directory and try again.
 * @note Free the handle with lc_close(); only after every other call on it
 *   has returned.
 */
LC_MUST_USE int lc_open(const char *dir, size_t map_size, struct lc_env **out);

/** @brief Sync the cache to disk, then close it and free the handle.
 *
 * If the sync fails the files are still closed; the next lc_open() after
 * an OS crash will then find them possibly torn and start empty. If the env
 * is fenced (see lc_invalidate()) it deletes the files instead of syncing,
 * so the next lc_open() starts empty (meta values gone).
 *
 * @param[in] env A handle from lc_open(), or NULL (does nothing).
 * @note No other call on env may be running or start; env is invalid
 *   afterwards.
 */
void lc_close(struct lc_env *env);

/** @brief Copy the value of a key into a caller's buffer.
 *
 * The hot read path: one read-only LMDB transaction taken from a pool in
 * env, no allocation in steady state, never blocks on writers.
 *
 * @param[in] env The cache.
 * @param[in] key The key bytes.
 * @param[in] klen Key length, 1..LC_MAX_KEY.
 * @param[out] buf Where the value is copied; may be NULL if bufsz is 0.
 * @param[in] bufsz Size of buf.
 * @param[out] vlen The value's length, on LC_OK and on LC_ERANGE.
 * @return LC_OK, or:
 *   - LC_ENOTFOUND: the key is not cached;
 *   - LC_ERANGE: bufsz < *vlen; buf untouched, retry with *vlen bytes (the
 *     value may have changed by then);
 *   - LC_EINVAL: env, key or vlen NULL, klen 0 or > LC_MAX_KEY, buf NULL
 *     with bufsz > 0;
 *   - LC_EIO: LMDB failed, or an earlier invalidation failed and the cache
 *     is fenced until lc_drop() succeeds (see lc_invalidate());
 *   - LC_ENOMEM: out of memory.
 *   Treat every error but LC_ERANGE as a miss.
 */
LC_MUST_USE int lc_get(struct lc_env *env, const void *key, size_t klen, void *buf, size_t bufsz,
                       size_t *vlen);

/** @brief Take a fill token for a key, BEFORE reading the source of truth.
 *
 * The token is the sum of the invalidation counter of the key's bucket
 * (key hashed into one of 4096 buckets) and a global epoch. Both only ever
 * grow, so the sum stays equal exactly while neither changes: an
 * invalidation of any key in the same bucket, an lc_invalidate_prefix(), an
 * lc_drop() or an emptying on map full all make the token stale.
 *
 * @param[in] env The cache.
 * @param[in] key The key bytes (any length; lc_fill() checks it).
 * @param[in] klen Key length.
 * @return The token (any value, 0 included); 0 if env is NULL.
 * @note Lock-free, no system call. A token is meaningful only to the env
 *   that issued it.
 */
LC_MUST_USE uint64_t lc_fill_token(struct lc_env *env, const void *key, size_t klen);

/** @brief Store key=val unless an invalidation came after the token.
 *
 * Inside one LMDB write transaction: compare the key's current token with
 * token, then put (replacing any value). A failed fill is harmless (the
 * next lc_get() misses), so callers may ignore the result.
 *
 * @param[in] env The cache.
 * @param[in] key The key bytes.
 * @param[in] klen Key length, 1..LC_MAX_KEY.
 * @param[in] val The value bytes; copied. May be NULL if vlen is 0.
 * @param[in] vlen Value length (at most 4 GiB - 1, and the map must hold it).
 * @param[in] token From lc_fill_token() for this key, taken before the
 *   source of truth was read.
 * @return LC_OK (stored), or:
 *   - LC_ESTALE: an invalidation that could touch key happened since the
 *     token was taken; nothing stored;
 *   - LC_EFULL: the map is full; nothing stored, and the whole data sub-db
 *     was emptied (all tokens stale) so later fills can succeed;
 *   - LC_EINVAL: env or key NULL, klen 0 or > LC_MAX_KEY, val NULL with
 *     vlen > 0, vlen too large;
 *   - LC_EIO: LMDB or the dirty marker failed, or the cache is fenced
 *     (see lc_invalidate()); nothing stored;
 *   - LC_ENOMEM: out of memory; nothing stored.
 */
int lc_fill(struct lc_env *env, const void *key, size_t klen, const void *val, size_t vlen,
            uint64_t token);

/** @brief Invalidate keys: delete them and make their tokens stale.
 *
 * One write transaction: bump the invalidation counter of each key's
 * bucket, then delete each key. Absent keys, and keys that could never be
 * stored (len 0 or > LC_MAX_KEY), are fine. If the deletes cannot be
 * written (map full, LMDB error), the whole data sub-db is emptied instead
 * in a new transaction, which meets the same contract: LC_OK.
 *
 * @param[in] env The cache.
 * @param[in] keys n keys; may be NULL if n is 0.
 * @param[in] n Number of keys.
 * @return LC_OK: none of the keys is cached any more, and no lc_fill()
 *   whose token was taken before this call began can store one of them.
 *   Or:
 *   - LC_EINVAL: env NULL, keys NULL with n > 0, a key with data NULL and
 *     len > 0; nothing done;
 *   - LC_EIO / LC_ENOMEM / LC_EFULL: neither the deletes nor the emptying
 *     could be committed. The cache is then fenced: lc_get() and lc_fill()
 *     fail with LC_EIO until an lc_drop() succeeds, so nothing stale is
 *     served. Do not acknowledge the invalidation. The stale keys are
 *     still in the file: lc_close() of a fenced env deletes the files (meta
 *     included); after a crash, the caller's drop on an unclean stop
 *     covers them.
 */
LC_MUST_USE int lc_invalidate(struct lc_env *env, const struct lc_key *keys, size_t n);

/** @brief Delete every key that starts with a prefix; make all tokens stale.
 *
 * One write transaction: bump the global epoch (every outstanding token,
 * whatever its key, becomes stale) and delete the range of keys starting
 * with prefix by a cursor scan. Falls back to emptying like
 * lc_invalidate().
 *
 * @param[in] env The cache.
 * @param[in] prefix The prefix bytes; may be NULL if plen is 0.
 * @param[in] plen Prefix length, 0..LC_MAX_KEY; 0 deletes every key.
 * @return LC_OK, or:
 *   - LC_EINVAL: env NULL, prefix NULL with plen > 0, plen > LC_MAX_KEY;
 *     nothing done;
 *   - LC_EIO / LC_ENOMEM / LC_EFULL: as lc_invalidate() (cache fenced).
 * @note The transaction's size grows with the number of keys deleted.
 */
LC_MUST_USE int lc_invalidate_prefix(struct lc_env *env, const void *prefix, size_t plen);

/** @brief Empty the data sub-db and make all tokens stale.
 *
 * Meta values are kept. Lifts the fence left by a failed invalidation.
 *
 * @param[in] env The cache.
 * @return LC_OK, or:
 *   - LC_EINVAL: env NULL;
 *   - LC_EIO / LC_ENOMEM / LC_EFULL: could not commit; the cache is fenced
 *     (lc_get() and lc_fill() fail with LC_EIO) until a drop succeeds.
 */
LC_MUST_USE int lc_drop(struct lc_env *env);

/** @brief Read a named 64-bit meta value.
 *
 * @param[in] env The cache.
 * @param[in] name NUL-terminated, 1..LC_MAX_KEY bytes.
 * @param[out] val The value on LC_OK.
 * @return LC_OK, or:
 *   - LC_ENOTFOUND: never set, deleted, or lost (see Caveats);
 *   - LC_EINVAL: env, name or val NULL, bad name length;
 *   - LC_EIO: LMDB failed or the stored value is not 8 bytes;
 *   - LC_ENOMEM: out of memory.
 */
LC_MUST_USE int lc_meta_get(struct lc_env *env, const char *name, uint64_t *val);

/** @brief Set a named 64-bit meta value and sync it to disk.
 *
 * Meta values are not touched by lc_drop() or the emptying on map full.
 * If the map is full, the data sub-db is emptied (all tokens stale) and
 * the put retried once.
 *
 * @param[in] env The cache.
 * @param[in] name NUL-terminated, 1..LC_MAX_KEY bytes.
 * @param[in] val The value, stored in host byte order.
 * @return LC_OK once the value (and every earlier commit) is on disk, or:
 *   - LC_EINVAL: env or name NULL, bad name length;
 *   - LC_EFULL: full even after emptying the data;
 *   - LC_EIO: LMDB, the sync or the dirty marker failed (the value may be
 *     set but not yet durable);
 *   - LC_ENOMEM: out of memory.
 * @note Costs an fsync; not for hot paths.
 */
LC_MUST_USE int lc_meta_set(struct lc_env *env, const char *name, uint64_t val);

/** @brief Delete a named meta value and sync to disk. Absent is LC_OK.
 *
 * @param[in] env The cache.
 * @param[in] name NUL-terminated, 1..LC_MAX_KEY bytes.
 * @return LC_OK once the deletion is on disk, or LC_EINVAL, LC_EFULL,
 *   LC_EIO, LC_ENOMEM as lc_meta_set().
 */
LC_MUST_USE int lc_meta_del(struct lc_env *env, const char *name);

/** @brief Flush every commit so far to disk.
 *
 * Briefly takes the writer lock. After it, an OS crash before the next
 * write no longer discards the cache at the next lc_open().
 *
 * @param[in] env The cache.
 * @return LC_OK, or:
 *   - LC_EINVAL: env NULL;
 *   - LC_EIO: fsync or the marker update failed;
 *   - LC_ENOMEM: out of memory.
 */
LC_MUST_USE int lc_sync(struct lc_env *env);

/** @brief Entry count and space use.
 *
 * used_bytes counts the pages of the file not on LMDB's free list; pages
 * freed by recent writes come back after the readers that may see them
 * finish.
 *
 * @param[in] env The cache.
 * @param[out] st Filled on LC_OK.
 * @return LC_OK, or LC_EINVAL (env or st NULL), LC_EIO, LC_ENOMEM.
 */
LC_MUST_USE int lc_stat(struct lc_env *env, struct lc_stat *st);

#endif
