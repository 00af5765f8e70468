/*
 * remote.h - remote (caching proxy) and virtual (aggregating) repositories
 * (docs/remote.md, daemon/remote/README.md): their settings, the upstream
 * client, the fetch protocol that makes one upstream request per path for
 * the whole cluster, and the cache of virtual repositories' merged
 * documents.
 *
 * A remote repository's cached files are ordinary artifacts of that
 * repository (replicated, scrubbed, collected like any), stored through the
 * ingest pipeline (repo/ingest.h). A fetch runs on one of this module's
 * fetch threads: it takes a ticket in PostgreSQL (remote_fetches), streams
 * the upstream's answer into the filestore while it hashes it, checks it
 * against the checksums the upstream publishes, and commits it. Readers on
 * this node follow the bytes as they arrive (remote_flight_read); readers
 * on other nodes wait (woken over the bus by the commit's invalidation, or
 * by the poll every second) and then serve the stored copy. A ticket whose
 * heartbeat stops is taken over by another node.
 *
 * This module is the only one besides blobstore/ and granaryctl that
 * includes libcurl. Thread-safe; one struct remote per process
 * (repo_ctx.remote).
 */
#ifndef REMOTE_H
#define REMOTE_H

#include "base/arena.h"
#include "cluster/cluster.h"
#include "repo/repo.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct remote;
struct remote_flight;
struct gr_sbuf;

/* ---- the process's remote machinery ---- */

struct remote_options {
    struct repo_ctx *ctx;
    const char *node_id; /* "" on a single node */
    /* the join key (NULL on a single node): upstream passwords are sealed
     * under a key derived from it, so a database dump does not hold them */
    const void *key;
    size_t key_len;
    int threads; /* fetch threads (0: REMOTE_THREADS) */
};
#define REMOTE_THREADS 8

/*
 * Start the fetch threads and the heartbeat thread (tickets' heartbeats,
 * the waiters' poll); drop tickets a previous run of this node left.
 * GR_EDB, GR_ENOMEM.
 */
int remote_start(const struct remote_options *o, struct remote **out)
    __attribute__((warn_unused_result));
/* Wake every waiter now and refuse new ones (they answer 503): before the
 * HTTP port stops, which must not stop with a suspended request. */
void remote_quiesce(struct remote *rm);
/* Stop: fetches in progress are abandoned (nothing of them is kept). NULL is fine. */
void remote_stop(struct remote *rm);

/*
 * The watch hook (repo_ctx.watch, wired by main): every invalidation this
 * node applies, its own and its peers'. It wakes the requests waiting on
 * an artifact key and drops the merged documents (n == 0: everything).
 */
void remote_invalidated(void *rm, const struct cluster_key *keys, size_t n);

/* Counters as Prometheus lines (a metrics source). */
void remote_metrics(struct remote *rm, struct gr_sbuf *sb);

/* ---- settings (Artifactory's JSON names; docs/remote.md) ---- */

enum remote_policy {
    REMOTE_SUMS_IF_PRESENT, /* "generate-if-absent": a mismatch fails, none is fine */
    REMOTE_SUMS_REQUIRED,   /* "fail": a mismatch or no checksum fails */
    REMOTE_SUMS_IGNORE,     /* "ignore-and-generate": the upstream's are not checked */
};

struct remote_settings {
    const char *url;      /* http(s)://..., no trailing slash */
    const char *username; /* "" without */
    const char *password; /* sealed ("" without): remote_password() opens it */
    bool offline;         /* never ask the upstream: serve what is cached */
    bool hard_fail;       /* a virtual answers this member's upstream errors instead of going on */
    bool store_locally;   /* storeArtifactsLocally: false fetches every time, caches nothing */
    bool block_mime;      /* blockMismatchingMimeTypes: HTML for a non-HTML path is refused */
    int64_t ttl_s;        /* retrievalCachePeriodSecs: metadata's time to live */
    int64_t miss_s;       /* missedRetrievalCachePeriodSecs: the negative cache */
    int64_t offline_s;    /* assumedOfflinePeriodSecs: after a connection failure */
    int64_t timeout_ms;   /* socketTimeoutMillis */
    enum remote_policy policy;
};

/* The repository-JSON fields of remote and of virtual repositories (NULL-terminated). */
extern const char *const remote_fields[];
extern const char *const virtual_fields[];

/* The settings of a remote repository, defaults where absent (strings in a). */
void remote_settings_read(struct gr_arena *a, const struct repo_config *cfg,
                          struct remote_settings *out);
/*
 * Check doc's remote fields and write them into settings (fields doc lacks
 * stay); the password is sealed. creating: url is required. GR_EINVAL with
 * *why (static or in a), GR_EIO.
 */
int remote_settings_apply(struct remote *rm, struct gr_arena *a, json_t *doc, json_t *settings,
                          bool creating, const char **why) __attribute__((warn_unused_result));
/* The remote fields, defaults filled in, into doc (GET): never the password. */
void remote_settings_json(json_t *settings, json_t *doc);
/* The upstream password in clear (in a), "" when none or when it cannot be opened. */
const char *remote_password(struct remote *rm, struct gr_arena *a, const struct remote_settings *s);

struct virtual_settings {
    int n;
    const char **members;  /* in resolution order */
    const char **includes; /* per member ("": everything) */
    const char **excludes; /* per member ("": nothing) */
    const char *deploy;    /* defaultDeploymentRepo ("" without) */
};

/* The settings of a virtual repository (strings in a). */
void virtual_settings_read(struct gr_arena *a, const struct repo_config *cfg,
                           struct virtual_settings *out);
/*
 * Check doc's virtual fields against the repositories that exist (members
 * of self's packageType; no cycle through nested virtuals; the default
 * deployment repository a local member) and write them into settings.
 * GR_EINVAL with *why, GR_EDB.
 */
int virtual_settings_apply(struct repo_ctx *ctx, struct gr_arena *a, const struct repo_config *self,
                           json_t *doc, json_t *settings, const char **why)
    __attribute__((warn_unused_result));
void virtual_settings_json(json_t *settings, json_t *doc);
/* Whether member i of v is asked for path (its include and exclude patterns). */
bool virtual_member_accepts(const struct virtual_settings *v, int i, const char *path);

/* ---- fetching ---- */

enum remote_kind {
    REMOTE_FILE,     /* fetched once, kept until deleted */
    REMOTE_METADATA, /* kept retrievalCachePeriodSecs, then fetched again */
};

/* What the upstream publishes a file must hash to (lowercase hex; "" unknown). */
struct remote_sums {
    char sha1[41], sha256[65], md5[33], sha512[129];
};

/* The upstream of one fetch, for a format's checksum hook. */
struct remote_upstream;

/*
 * GET upath (relative to the upstream's URL, escaped) of the fetch's
 * upstream, at most max bytes of body (in a, NUL-terminated). *status is
 * the upstream's status (0 when it could not be reached). GR_OK when an
 * answer came (whatever its status), GR_EIO otherwise, GR_ETOOBIG.
 */
int remote_upstream_get(struct remote_upstream *up, struct gr_arena *a, const char *upath,
                        size_t max, char **body, size_t *len, int *status)
    __attribute__((warn_unused_result));

/*
 * A format's checksum hook: fill out with what the upstream publishes for
 * path of repository repo (Maven: the .sha1 beside the file; npm: the
 * packument's dist). Runs on a fetch thread before the file is fetched.
 */
typedef void (*remote_sums_fn)(struct remote_upstream *up, struct repo_ctx *ctx, struct gr_arena *a,
                               const char *repo, const char *path, struct remote_sums *out);

/* A path to look up in a remote repository. */
struct remote_spec {
    enum remote_kind kind;
    const char *upath;   /* what to ask the upstream for (escaped, relative to its URL) */
    const char *accept;  /* the Accept header sent upstream, or NULL */
    remote_sums_fn sums; /* or NULL: only the upstream's X-Checksum-* headers */
    const char *user;    /* recorded as the cached file's creator */
    bool complete;       /* the caller needs the whole file: wait for a fetch's end */
};

/* What one request remembers between its lookups (remote_req_new). */
struct remote_req {
    /* fetches this request waited on, with their outcome (a fetch that
     * failed without leaving a record is not started again for it) */
    struct remote_flight *seen[8];
    int nseen;
    /* REMOTE_WAIT: what to wait on, and the wake-ups counted when the
     * lookup began (one since then wakes the waiter at once) */
    const char *wait_repo, *wait_path;
    uint64_t events;
};

/* A request's memory, in a (the fetches it holds are released with a). NULL: out of memory. */
struct remote_req *remote_req_new(struct gr_arena *a);

enum remote_res {
    REMOTE_HIT,    /* cached (fresh): art */
    REMOTE_STALE,  /* expired metadata the upstream could not refresh: art, reason */
    REMOTE_FLIGHT, /* a fetch on this node to follow: flight (a reference) */
    REMOTE_WAIT,   /* wait (remote_wait), then look up again */
    REMOTE_MISS,   /* the upstream has nothing there (404): reason */
    REMOTE_FAIL,   /* status (502 checksum or upstream error, 504 timeout) and reason */
};

struct remote_result {
    enum remote_res res;
    struct artifact art;
    struct remote_flight *flight; /* release with remote_flight_put() */
    int status;
    const char *reason;
};

/*
 * Look path up in remote repository cfg for a reader: its cached copy, a
 * fetch in progress (or one started now, once per cluster), or what the
 * upstream answered last. Never blocks on the upstream: REMOTE_WAIT means
 * the caller registers with remote_wait() and looks up again when woken.
 * GR_OK (see out->res), GR_EDB, GR_ENOMEM.
 */
int remote_lookup(struct remote *rm, struct gr_arena *a, struct remote_req *rq,
                  const struct repo_config *cfg, const char *path, const struct remote_spec *spec,
                  struct remote_result *out) __attribute__((warn_unused_result));

/*
 * After REMOTE_WAIT: call fn(arg) once, from any thread, when rq's path may
 * have moved on (a fetch's answer or end on this node, an invalidation of
 * its artifact from any node, or the poll every second). false: the node
 * is stopping (nothing registered; answer 503).
 */
bool remote_wait(struct remote *rm, const struct remote_req *rq, void (*fn)(void *arg), void *arg);

/* The upstream's answer of a fetch being followed: its length (UINT64_MAX
 * unknown) and content type ("" unknown), stable once REMOTE_FLIGHT was
 * returned. */
void remote_flight_info(struct remote_flight *f, uint64_t *length, const char **content_type);
/*
 * The next bytes at off of a fetch: waits until they arrived (the last part
 * only once the whole body checked out). @return the count, 0 at the end of
 * a verified body, -1 when the fetch failed (cut the answer).
 */
long remote_flight_read(struct remote_flight *f, uint64_t off, void *buf, size_t max);
/* Another reference to f (returned). */
struct remote_flight *remote_flight_ref(struct remote_flight *f);
/* Release a reference. NULL is fine. */
void remote_flight_put(struct remote_flight *f);

/* ---- virtual repositories' merged documents ---- */

/* Take before reading the members of a merge. */
uint64_t remote_merged_gen(struct remote *rm);
/* A merged document cached under key (in a), or false. */
bool remote_merged_get(struct remote *rm, struct gr_arena *a, const char *key, char **doc,
                       size_t *len);
/* Keep a merged document computed from members read after gen was taken
 * (dropped at once when something changed meanwhile), at most until
 * expires_ms (Unix ms; INT64_MAX: until something changes). */
void remote_merged_put(struct remote *rm, const char *key, uint64_t gen, int64_t expires_ms,
                       const char *doc, size_t len);

#endif
