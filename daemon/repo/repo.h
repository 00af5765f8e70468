/*
 * repo.h - repository, artifact, user and settings logic over PostgreSQL
 * (source of truth), the LMDB cache and the local blob store.
 *
 * Every read goes through the cache (read-through, fill-race guarded);
 * every mutation commits in PostgreSQL first, bumps the change counter in
 * the same transaction, then invalidates the keys it touched in the local
 * cache (docs/cache.md). Functions are thread-safe; strings they return
 * live in the caller's arena.
 */
#ifndef REPO_H
#define REPO_H

#include "base/arena.h"
#include "cluster/cluster.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct db_pool;
struct cluster;
struct cr_hashpool;
struct lc_env;
struct bs_store;
struct storage;
struct storage_pending;
struct plugins;
struct remote;

/* What the repository logic needs; owned by the server struct. */
struct repo_ctx {
    struct db_pool *db;
    struct lc_env *cache;
    struct bs_store *bs;
    unsigned char node_secret[32]; /* per process: keys the credential fast path */
    atomic_uint_fast64_t cache_hits, cache_misses;
    /* the cluster, as repo calls it: wired by main (cluster/cluster.h), all
     * NULL on a single node; repo includes no cluster function, only its types */
    struct repo_hooks {
        /* false while the cache lease has lapsed: reads bypass the cache */
        bool (*cache_ok)(void *arg);
        /* after a mutation's local invalidation: tell every peer and wait
         * for their acknowledgements (or their leases) before returning;
         * false when that could not be ensured (no database to flag a silent
         * peer with): the mutation must not be acknowledged
         * (repo_invalidation_unconfirmed()) */
        bool (*invalidate)(void *arg, const struct cluster_key *items, size_t n);
        /* the fencing token of the primary lease this node holds, 0 when none */
        uint64_t (*primary_token)(void *arg);
        /* mark this node draining (or not) in the cluster table. GR_EDB. */
        int (*set_draining)(void *arg, bool draining);
        void *arg;
    } hooks;
    struct cluster *cluster;      /* NULL on a single node (opaque: cluster_api.c's) */
    struct storage *storage;      /* redundant binary storage (storage/storage.h) */
    struct cr_hashpool *hashpool; /* md5 of uploads off the request thread; may be NULL */
    const char *node_id;          /* for the audit log; may be NULL or "" */
    /* told of every invalidation this node applies (its own and its peers'),
     * and of a cache drop (n == 0): wired by main to the remote module
     * (remote/remote.h: requests waiting on a fetch, merged documents) */
    struct repo_watch {
        void (*fn)(void *arg, const struct cluster_key *keys, size_t n);
        void *arg;
    } watch;
    struct remote
        *remote; /* remote and virtual repositories (remote/remote.h); NULL until started */
    struct plugins *plugins; /* Lua plugins (repo/plugins.h); NULL until started */
};

/*
 * Drop keys and prefixes from this node's cache (the local half of an
 * invalidation; the cluster module calls it for invalidations from peers).
 * Never fails: if LMDB refuses, the whole cache is dropped.
 */
void repo_apply_invalidation(struct repo_ctx *ctx, const struct cluster_key *items, size_t n);
/* Whether a mutation on this thread, since the last call, committed but
 * could not make sure every peer dropped its keys (then the answer is 503,
 * not a success: http_send). Clears the flag. */
bool repo_invalidation_unconfirmed(void);

struct gr_sbuf;
/* The cache's hit and miss counts as Prometheus lines (a metrics source, http.h). */
void repo_cache_metrics(struct repo_ctx *ctx, struct gr_sbuf *sb);

/* ---- repositories ---- */

#define REPO_KEY_MAX 64

struct repo_config {
    char key[REPO_KEY_MAX + 1];
    char rclass[16];       /* "local", "remote" or "virtual" */
    char package_type[32]; /* "generic" */
    const char *description, *includes_pattern, *excludes_pattern;
    /* the format's settings: a JSON object, as its format validated it
     * (formats/format.h; "{}" when it has none) */
    const char *settings;
};

/* "<key>-cache" names the cached files of remote repository <key> (docs/remote.md). */
#define REPO_CACHE_SUFFIX "-cache"

/* A configuration with every field at its default (key and strings empty). */
void repo_config_defaults(struct repo_config *cfg);

/* GR_OK for a valid, non-reserved key ([A-Za-z0-9][A-Za-z0-9._-]*, <= 64). */
int repo_key_check(const char *key);
/* Cached. GR_ENOTFOUND, GR_EDB. */
int repo_get(struct repo_ctx *ctx, struct gr_arena *a, const char *key, struct repo_config *out)
    __attribute__((warn_unused_result));
/* All repositories, ordered by key (from the database). */
int repo_list(struct repo_ctx *ctx, struct gr_arena *a, struct repo_config **out, int *n)
    __attribute__((warn_unused_result));
/* GR_EEXIST, GR_EINVAL, GR_EDB. */
int repo_create(struct repo_ctx *ctx, const struct repo_config *cfg)
    __attribute__((warn_unused_result));
/* GR_ENOTFOUND, GR_EINVAL, GR_EDB. */
int repo_update(struct repo_ctx *ctx, const struct repo_config *cfg)
    __attribute__((warn_unused_result));
/* Deletes the repository and its artifacts. GR_ENOTFOUND, GR_EDB. */
int repo_delete(struct repo_ctx *ctx, const char *key) __attribute__((warn_unused_result));

/* ---- artifacts ---- */

struct artifact {
    const char *repo, *path;
    char sha256[65], sha1[41], md5[33];
    uint64_t size;
    int64_t created_ms, modified_ms, updated_ms; /* Unix epoch milliseconds */
    const char *created_by, *modified_by;
    const char *matrix; /* artifact_put only: raw matrix parameters to store as properties */
    /* artifact_put only: the upload's copies to publish (storage/storage.h), or
     * NULL when the binary must already be stored (a deploy by checksum) */
    struct storage_pending *pending;
};

/* Cached (also caches absence). GR_ENOTFOUND, GR_EDB. */
int artifact_get(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *path,
                 struct artifact *out) __attribute__((warn_unused_result));
/* artifact_get() for a deploy's look-up of the path it is about to write:
 * a miss is read from the database and not cached (the write's
 * invalidation would delete the entry again at once). */
int artifact_get_for_write(struct repo_ctx *ctx, struct gr_arena *a, const char *repo,
                           const char *path, struct artifact *out)
    __attribute__((warn_unused_result));

/*
 * Record a deployed artifact whose binary is already durable in the blob
 * store: upserts the binary row and the artifact row (a re-deploy replaces
 * the path), keeping `created` on replace. In: repo, path, hashes, size,
 * modified_by. Out: the times and created_by as stored.
 * GR_ENOTFOUND (repository deleted meanwhile), GR_EDB.
 */
int artifact_put(struct repo_ctx *ctx, struct gr_arena *a, struct artifact *art)
    __attribute__((warn_unused_result));

struct sec_perms;
/*
 * Find a stored binary by checksum (X-Checksum-Deploy): exactly one of
 * sha256 or sha1 given (the other NULL). Fills hashes and size. A checksum
 * is not a credential: with perms (NULL: no check), the binary counts only
 * if perms may read an artifact that has it.
 * GR_ENOTFOUND when no binary has it (or its file is gone, or perms may
 * read none of its artifacts), GR_EDB.
 */
int artifact_find_binary(struct repo_ctx *ctx, const char *sha256, const char *sha1,
                         const struct sec_perms *perms, struct artifact *out)
    __attribute__((warn_unused_result));

/*
 * Delete a file, or a folder and everything under it, with their property
 * rows; into the trash (repo/trash.h, deleted by user) unless its retention
 * is 0. GR_ENOTFOUND, GR_EDB.
 */
int artifact_delete(struct repo_ctx *ctx, const char *repo, const char *path, const char *user)
    __attribute__((warn_unused_result));

/*
 * Drop the cache entry of repo/path on every node (acknowledged), changing
 * nothing in the database: what waits on it there wakes (remote.h, the
 * end of a fetch that stored nothing).
 */
void artifact_forget(struct repo_ctx *ctx, const char *repo, const char *path);

struct folder_entry {
    const char *name;
    bool is_folder;
    uint64_t size;       /* files only */
    int64_t modified_ms; /* newest below, for folders */
};

/*
 * Immediate children of a folder ("" is the repository root), folders
 * first then files, each by name. GR_ENOTFOUND when nothing is below path
 * (and path is not the root), GR_EDB.
 */
int artifact_list_folder(struct repo_ctx *ctx, struct gr_arena *a, const char *repo,
                         const char *path, struct folder_entry **out, int *n)
    __attribute__((warn_unused_result));

/* ---- users, credentials, settings ---- */

struct auth_user {
    char name[128];
    bool admin;
    bool anonymous;
    bool scoped;    /* came with a user-scoped token: never an admin, not even through a group */
    bool slow_path; /* auth_check_password: the password was checked by its hash, not the
                       cached verifier (the first login of this password on this node) */
};

/*
 * Check a user name and password. The first success for a password costs
 * one PBKDF2 run; later ones an HMAC and a cache read (the verifier is
 * dropped with the user's cache entry when the user changes).
 * GR_EAUTH (unknown user, wrong password, disabled; out->slow_path then
 * says whether a PBKDF2 run was spent, i.e. a real user's wrong password),
 * GR_EDB.
 */
int auth_check_password(struct repo_ctx *ctx, const char *user, const char *password,
                        struct auth_user *out) __attribute__((warn_unused_result));

/*
 * Spend the PBKDF2 run a real user's wrong password costs, and match
 * nothing: a login refused for an unknown or disabled name calls it so that
 * its timing does not tell which names exist.
 */
void auth_password_dummy(const char *password);

/*
 * First start: when no user exists, create `admin` with a random password,
 * write it to <data_dir>/admin.password (0600) and return it in pw (which
 * must hold 33 bytes); *created tells whether this happened.
 */
int auth_bootstrap_admin(struct repo_ctx *ctx, const char *data_dir, char pw[33], bool *created)
    __attribute__((warn_unused_result));

/*
 * A user's flags from its cached record (`u:<name>`), for token logins.
 * GR_ENOTFOUND, GR_EDB.
 */
int auth_user_lookup(struct repo_ctx *ctx, const char *user, bool *admin, bool *disabled)
    __attribute__((warn_unused_result));

/* Cluster-wide anonymous read access (cached). GR_EDB. */
int settings_anonymous_read(struct repo_ctx *ctx, bool *on) __attribute__((warn_unused_result));
int settings_set_anonymous_read(struct repo_ctx *ctx, bool on) __attribute__((warn_unused_result));

/* ---- cache lifecycle ---- */

/*
 * Before serving: keep the cache only when the last stop was clean and
 * nothing changed in the database since (the change counter matches);
 * otherwise drop it. *kept tells which.
 */
int repo_cache_start(struct repo_ctx *ctx, bool *kept) __attribute__((warn_unused_result));
/* At a clean stop, after the last request: record the change counter. */
int repo_cache_stop(struct repo_ctx *ctx) __attribute__((warn_unused_result));
/* Drop every cached entry (granaryctl cache-drop, tests). */
int repo_cache_drop(struct repo_ctx *ctx) __attribute__((warn_unused_result));

#endif
