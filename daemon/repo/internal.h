/*
 * internal.h - helpers shared by the files of repo/ (not for other modules).
 */
#ifndef REPO_INTERNAL_H
#define REPO_INTERNAL_H

#include "base/sbuf.h"
#include "repo/repo.h"

#include <stddef.h>

struct db_conn;

/*
 * Loads one record from the database into rec (fields separated by NUL
 * bytes), or returns GR_ENOTFOUND to have the absence cached, or another
 * error (nothing cached).
 */
typedef int (*repo__load_fn)(struct repo_ctx *ctx, void *arg, struct gr_sbuf *rec);

/*
 * Read-through lookup of key: a hit costs one LMDB read; a miss takes a
 * fill token, calls load and stores the result only if no invalidation
 * touched the key meanwhile. *rec (in the arena) holds the record.
 * GR_ENOTFOUND for a (cached) absence, or load's error.
 */
int repo__cached(struct repo_ctx *ctx, struct gr_arena *a, const struct gr_sbuf *key,
                 repo__load_fn load, void *arg, const char **rec, size_t *reclen);
/* repo__cached() that stores nothing on a miss: for a look-up just before
 * a write of the same key, whose invalidation would delete the entry again
 * (one LMDB write transaction fewer, on the writer lock every upload takes). */
int repo__cached_nofill(struct repo_ctx *ctx, struct gr_arena *a, const struct gr_sbuf *key,
                        repo__load_fn load, void *arg, const char **rec, size_t *reclen);

/* Store a record under key with a token taken before its source was read. */
void repo__fill(struct repo_ctx *ctx, const struct gr_sbuf *key, const struct gr_sbuf *rec,
                uint64_t token);

/* Invalidate keys (each a NUL-free or NUL-containing sbuf). */
void repo__invalidate(struct repo_ctx *ctx, const struct gr_sbuf *keys, size_t n);
/* Invalidate every key starting with prefix, and every hashed long key. */
void repo__invalidate_prefix(struct repo_ctx *ctx, const struct gr_sbuf *prefix);

/*
 * Cluster-wide settings (table `settings`), read through the cache. get:
 * the value in the arena, GR_ENOTFOUND when unset, GR_EDB. set: upsert,
 * bump the change counter, invalidate everywhere.
 */
int repo__setting_get(struct repo_ctx *ctx, struct gr_arena *a, const char *name,
                      const char **value) __attribute__((warn_unused_result));
int repo__setting_set(struct repo_ctx *ctx, const char *name, const char *value)
    __attribute__((warn_unused_result));

/* Cache keys. */
void repo__key_repo(struct gr_sbuf *k, const char *repo);
void repo__key_artifact(struct gr_sbuf *k, const char *repo, const char *path);
void repo__key_user(struct gr_sbuf *k, const char *user);
void repo__key_setting(struct gr_sbuf *k, const char *name);
/*
 * "f:<repo>\0<top>": a summary of the top-level folder <top> of a
 * repository ("" for the repository as a whole) that a format computes from
 * the rows below it (PyPI's index pages). Nobody writes it but
 * repo__cached; every invalidation of an artifact key at or below <top>/
 * drops it, and the repository's "", on every node (cache.c), so it is
 * never stale whoever changed the rows.
 */
void repo__key_folder(struct gr_sbuf *k, const char *repo, const char *top);

/*
 * tokens.c: authenticate the access token whose sha256 (hex) is sum, as
 * sec_token_check() does (a session opened with a token is checked
 * through it). GR_EAUTH, GR_EDB.
 */
int sec__token_check_sha(struct repo_ctx *ctx, const char *sum, struct auth_user *out)
    __attribute__((warn_unused_result));

/* Wall-clock milliseconds since the epoch (tokens.c). */
int64_t repo__now_ms(void);
/* prefix + 2 * hexbytes hex digits of randomness into out (tokens' and UI
 * sessions' secrets and ids; tokens.c). GR_OK, GR_EIO. */
int repo__random_id(const char *prefix, char *out, size_t hexbytes)
    __attribute__((warn_unused_result));

/* Split a NUL-separated record into at most max fields; returns the count. */
int repo__fields(struct gr_arena *a, const char *rec, size_t len, const char **f, int max);

/*
 * Inside the open transaction of c: record art's binary (sha256, sha1, md5,
 * size; kept if known) under its row lock and publish art->pending's copies
 * (storage/storage.h; GR_ENOTFOUND when art->pending is NULL and no node holds
 * the binary, GR_EUNAVAIL when too few copies could be published), and upsert art's artifact row
 * (repo, path, sha256, size, modified_by; a re-deploy keeps `created`), filling its times and
 * created_by (strings in a). GR_ENOTFOUND when the repository is gone.
 */
int repo__put_binary(struct repo_ctx *ctx, struct db_conn *c, const struct artifact *art)
    __attribute__((warn_unused_result));
int repo__put_artifact(struct db_conn *c, struct gr_arena *a, struct artifact *art)
    __attribute__((warn_unused_result));

/* Run the change-counter bump inside the open transaction of c. */
int repo__bump(struct db_conn *c) __attribute__((warn_unused_result));

/* Commit c's transaction (or roll back when rc != 0), release c; returns rc or the commit's error.
 */
int repo__finish(struct db_conn *c, int rc);
/*
 * repo__bump() and repo__finish() in one round trip when rc == 0: the
 * counter's row, which every writer updates, stays locked for the server's
 * time only (concurrent uploads queue on it). Rolls back when rc != 0.
 */
int repo__bump_finish(struct db_conn *c, int rc);

#endif
