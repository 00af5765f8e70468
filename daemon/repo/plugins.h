/*
 * plugins.h - the daemon's side of Lua plugins (lua-plugins/plug.h):
 * sources in PostgreSQL, the cluster-wide generation, the host callbacks
 * plugins call, and the job scheduler (docs/plugins.md).
 *
 * Distribution: every change (put, delete, reload) bumps the setting
 * `plugins_generation` in the transaction that makes it, then invalidates
 * its cache key everywhere (acknowledged by every peer, docs/cluster.md)
 * before it returns. plugins_sync() reads the generation through the cache
 * before hooks run, and reloads the set when it changed: so a change is
 * live on every node before the call that made it returns, at the cost of
 * one LMDB read per hooked request.
 *
 * Threads: all functions are thread-safe. The scheduler thread (started by
 * plugins_start) runs jobs one at a time.
 */
#ifndef REPO_PLUGINS_H
#define REPO_PLUGINS_H

#include "base/arena.h"
#include "plug.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct repo_ctx;
struct plugins;

struct plugins_options {
    const char *node_id;
    const char *dir; /* plugins_dir, or "" */
    size_t mem_limit;
    uint64_t budget, job_budget;
};

/*
 * Create the runtime, install dir/<name>.lua files (logged when one does
 * not compile), load the set and start the scheduler. Sets ctx->plugins.
 * Call after migrations and the cluster (primary jobs need it).
 * GR_ENOMEM, GR_EDB.
 */
int plugins_start(const struct plugins_options *o, struct repo_ctx *ctx, struct plugins **out)
    __attribute__((warn_unused_result));
/* Stop the scheduler and free the runtime (after the HTTP threads are gone). NULL is fine. */
void plugins_stop(struct plugins *p);

/* The runtime (NULL when p is NULL); with an arena, its set is first made
 * current per the database generation (one cached read). */
struct plug_runtime *plugins_runtime(struct plugins *p, struct gr_arena *a);

/* The `call` every plug_run_*() gets: the request's arena and user. */
struct plugins_call {
    struct gr_arena *a;
    const char *user;
};

/*
 * Install or replace a plugin: compile-check it (err gets "name:line:
 * message"), store it, bump the generation, invalidate cluster-wide.
 * GR_EINVAL (does not compile; err says why), GR_EDB.
 */
int plugins_put(struct plugins *p, const char *name, const char *src, size_t len, const char *user,
                bool *created, char *err, size_t errlen) __attribute__((warn_unused_result));
/* GR_ENOTFOUND, GR_EDB. */
int plugins_delete(struct plugins *p, const char *name) __attribute__((warn_unused_result));
/* The source (in a). GR_ENOTFOUND, GR_EDB. */
int plugins_source(struct plugins *p, struct gr_arena *a, const char *name, const char **src,
                   size_t *len) __attribute__((warn_unused_result));

struct plugins_row {
    const char *name, *updated_by;
    int64_t updated_ms;
    size_t size;
};
/* Stored plugins by name (in a). GR_EDB. */
int plugins_list(struct plugins *p, struct gr_arena *a, struct plugins_row **out, int *n)
    __attribute__((warn_unused_result));

/* Install plugins_dir again and bump the generation: every node reloads. GR_EDB. */
int plugins_reload(struct plugins *p, uint64_t *generation) __attribute__((warn_unused_result));

struct plugins_job_row {
    const char *plugin, *job, *node, *last_error;
    int64_t last_run_ms;
    uint64_t runs;
};
/* The recorded state of primary jobs (in a). GR_EDB. */
int plugins_job_rows(struct plugins *p, struct gr_arena *a, struct plugins_job_row **out, int *n)
    __attribute__((warn_unused_result));

#endif
