/*
 * internal.h - the storage layer's state, shared by its files (storage.c,
 * auth.c, replicate.c, reads.c, holders.c, inventory.c, scrub.c, repair.c,
 * gc.c, cluster_api.c, admin_api.c) and nobody else.
 */
#ifndef STORAGE_INTERNAL_H
#define STORAGE_INTERNAL_H

#include "base/sbuf.h"
#include "storage/provider.h"
#include "storage/storage.h"

#include <pthread.h>
#include <stdatomic.h>

#define STORAGE_MAX_NODES 64
#define STORAGE_NONCES 8192 /* replay window entries */
#define STORAGE_AUTH_WINDOW_MS 60000
#define STORAGE_STALL_S 10 /* a peer that moves no byte for this long is given up */
#define STORAGE_CALL_TIMEOUT_S 10
#define STORAGE_HOLDERS_SLOTS 1024 /* holder cache entries (holders.c) */
#define STORAGE_HOT_SLOTS 4096     /* hot copies (hot.c): direct-mapped slots */
#define STORAGE_HOT_LOCKS 64
#define STORAGE_HOLDERS_MAX 4        /* holders kept per entry */
#define STORAGE_HOLDERS_TTL_MS 10000 /* an entry is trusted this long */

/* A node as the storage thread last saw it in cluster_nodes. */
struct storage__node {
    char id[64], url[256], zone[64];
    bool placeable; /* active (not draining) and its disk not degraded */
    bool degraded;  /* its filestore fails: its copies do not count towards redundancy */
};

/* A binary's holders (other than this node) as PostgreSQL last said. */
struct storage__holders_entry {
    char sha256[65];
    int n;         /* 0: empty */
    int64_t at_ms; /* monotonic */
    char ids[STORAGE_HOLDERS_MAX][64];
};

/* A holder to read from: a live node with a cluster URL. */
struct storage__holder {
    char id[64], url[256];
};

struct storage {
    struct db_pool *db;  /* the shared database (binaries, locations, nodes, settings) */
    struct bs_store *bs; /* this node's filestore */
    char node[64], zone[64];
    unsigned char key[256];
    size_t key_len;
    unsigned char next_key[256]; /* accepted too during a key rotation */
    size_t next_key_len;         /* 0: none */
    /* key and next_key made ready for HMACs (storage__keys_init) */
    struct cr_hmac_key *hkey, *hkey_next;
    bool clustered;
    bool accept_v1;                    /* an upgrade from v1: see storage_options */
    atomic_bool disk_degraded;         /* the filestore failed its last probe */
    atomic_int_fast64_t disk_probe_ms; /* when it was probed */
    char disk_published[16];           /* the disk_state last stored in cluster_nodes */
    bool (*is_primary)(void *arg);     /* storage_options */
    uint64_t (*primary_token)(void *arg);
    int (*fence)(void *arg, struct db_conn *c, uint64_t token, const char *task,
                 const char *subject);
    void *primary_arg;
    int down_after_ms;

    pthread_mutex_t lock; /* guards the members below up to the counters */
    pthread_cond_t wake;
    pthread_t thread;
    bool started, stopping, kick;
    struct storage_settings set;
    struct storage__node nodes[STORAGE_MAX_NODES]; /* live nodes, this one included */
    int n_nodes;
    struct {
        uint64_t h;
        int64_t ms;
    } nonces[STORAGE_NONCES];
    char scrub_cursor[65];
    int64_t counts[5]; /* the last fresh storage_status() counts */

    atomic_uint_fast64_t replicated, repl_failures, remote_reads, remote_failures;
    atomic_uint_fast64_t streamed; /* copies staged by a peer while the body arrived */
    atomic_uint_fast64_t bad_copies, quarantined, scrubbed_files, scrubbed_bytes, scrub_bad;
    atomic_uint_fast64_t repaired, trimmed, repair_runs, gc_runs, gc_freed, gc_files;
    atomic_uint_fast64_t holder_hits, holder_queries, holder_stale;
    atomic_bool gc_running, repair_running, scrub_running;
    atomic_int_fast64_t last_repair_ms, last_gc_ms, last_scrub_ms;

    /* ---- binary providers (provider.h, docs/storage.md) ---- */
    /* the providers this node can reach: local always, the others when
     * configured; NULL otherwise. Set at start, read-only after. */
    struct storage_provider *prov[STORAGE_KINDS];
    struct bs_store *shared_bs; /* the shared-fs store (prov[STORAGE_SHARED]->bs) */
    /* local provider, clustered: copies of peers' binaries read here, never
     * a location (not in binary_locations, never counted as a copy) */
    struct bs_store *pcache;
    int configured;    /* the kind this node was started with */
    int64_t cache_max; /* bytes of this node's read-through cache (0: none) */
    /* the cluster's provider row (storage_provider), refreshed by the thread
     * every tick; guarded by lock */
    int active;   /* where uploads go */
    int previous; /* the provider before the last migration (still read), -1 */
    struct storage__migration {
        int target; /* -1: none */
        char state[16];
        int64_t rate, copied, bytes, failed;
        char cursor[65];
    } mig;
    /* the primary's thread only: the failures of the pass it saw start */
    bool mig_pass_own;
    int64_t mig_pass_failed;
    atomic_uint_fast64_t cache_hits, cache_misses, cache_fills, cache_evicted, store_bad;
    atomic_int_fast64_t cache_bytes; /* the cache's size at the last walk, plus fills since */
    int64_t last_evict_ms;
    char repair_cursor[65]; /* store mode: the existence checks resume here */

    pthread_mutex_t holders_lock; /* guards holders[] */
    struct storage__holders_entry holders[STORAGE_HOLDERS_SLOTS];

    /* hot copies (hot.c): slot i is guarded by hot_lock[i % STORAGE_HOT_LOCKS] */
    pthread_mutex_t hot_lock[STORAGE_HOT_LOCKS];
    struct storage_hot *hot[STORAGE_HOT_SLOTS];
    atomic_int_fast64_t hot_bytes;
    atomic_uint_fast64_t hot_hits, hot_stale;
};

/* hot.c: the slots' locks, made and destroyed with the storage (free drops every entry). */
void storage__hot_init(struct storage *b);
void storage__hot_free(struct storage *b);

/* (Re)make hkey and hkey_next from key and next_key. GR_OK, GR_ENOMEM. */
int storage__keys_init(struct storage *b) __attribute__((warn_unused_result));
/* Free hkey and hkey_next. */
void storage__keys_free(struct storage *b);

/* A request's signature (storage__sign), kept to check the answer against. */
struct storage__sig {
    char auth[400];  /* the STORAGE_AUTH_HEADER line: v2, or v1 during an upgrade */
    char auth2[400]; /* the STORAGE_AUTH_V2_HEADER line during an upgrade, else "" */
    char mac[65];    /* the v2 hmac */
    char dest[64];   /* the node the request is for */
};

/*
 * Sign a request from this node to node dest: method and uri (path and
 * query, as sent) into sig (see STORAGE_AUTH_HEADER in storage.h).
 */
void storage__sign(struct storage *b, const char *method, const char *uri, const char *dest,
                   struct storage__sig *sig);

/*
 * Whether the answer to the request signed into sig may be trusted: its
 * STORAGE_ANSWER_HEADER value (header: NULL or "" when absent) signs status,
 * sha256 ("" when none), blocks ("" when none) and the body, by sig->dest.
 * An unsigned answer is accepted only during an upgrade (b->accept_v1),
 * with *legacy set: it comes from a node of the older version (or from
 * the network). false: refuse the answer (why says why).
 */
bool storage__check_answer(struct storage *b, const struct storage__sig *sig, const char *header,
                           int status, const char *sha256, const char *blocks, const void *body,
                           size_t len, bool *legacy, const char **why);

/*
 * The block checksums in a v2 STORAGE_CRC_HEADER value, which must describe
 * blocks [first, first + n) of a binary of size bytes: a new array of n
 * entries (the caller frees it), or NULL when absent, malformed or about
 * other blocks.
 */
uint32_t *storage__parse_blocks(const char *v, uint64_t size, uint64_t first, uint64_t n);

/* The sha256 a cluster-port path is about ("/v1/blobs/<sha256>[/...]"), or "". */
void storage__uri_sha256(const char *uri, char out[65]);
/* Copies of the live nodes; returns the count. */
int storage__snapshot(struct storage *b, struct storage__node *out);
/* The URL of a live node, or NULL (copied into out). */
bool storage__node_url(struct storage *b, const char *id, char *out, size_t n);
/* Effective redundancy: 1 on a single node. */
int storage__redundancy(struct storage *b);
/*
 * Call node dest: method on its cluster URL base + uri, signed for it;
 * returns the HTTP status of its signed answer (0: no answer, or one that
 * is not signed by dest; body then says why).
 */
int storage__call(struct storage *b, const char *method, const char *dest, const char *base,
                  const char *uri, const char *request_id, char *body, size_t bodysz);
int64_t storage__now_ms(void);
/* Sleep as long as bytes take at rate bytes/s (<= 0: no limit), in 100 ms
 * steps that end early when the storage stops (repair, migration). */
void storage__pace(struct storage *b, uint64_t bytes, int64_t rate);
/* In c's transaction: lock the binary's row unless it is tombstoned (a
 * collection that ran first is seen here). GR_OK; GR_ENOTFOUND (gone or
 * tombstoned); GR_EDB. */
int storage__lock_live(struct db_conn *c, const char *sha256);

/* ---- the holder cache (holders.c) ---- */

/* Cached holders of sha256 into ids (at most max); 0: none cached or expired. */
int storage__holders_cached(struct storage *b, const char *sha256, char ids[][64], int max);
/* Remember ids as the holders of sha256 (n 0: forget). */
void storage__holders_store(struct storage *b, const char *sha256, char ids[][64], int n);
/* Forget the cached holders of sha256 (a holder failed or its copy was bad). */
void storage__holders_forget(struct storage *b, const char *sha256);
/* The holders of sha256 other than this node, from PostgreSQL; -1 on a database error. */
int storage__holders_query(struct storage *st, const char *sha256, char ids[][64], int max);
/*
 * The live holders among ids (not in skip) with their URLs, this node's
 * zone first, each group from a rotating start (spreads the reads); returns
 * the count written to out (room for n).
 */
int storage__holders_order(struct storage *b, char ids[][64], int n, char skip[][64], int n_skip,
                           struct storage__holder *out);

/* ---- shared by the files of the storage layer ---- */

/* The storage thread's pace and batches (storage.c, inventory.c, scrub.c). */
#define STORAGE_TICK_MS 1000
#define STORAGE_REPAIR_EVERY_MS 30000
#define STORAGE_STAGE_MAX_AGE_S 900
#define STORAGE_BATCH 500
#define STORAGE_STATUS_EVERY_MS 15000
#define STORAGE_SCRUB_PAUSE_MS (10 * 60 * 1000) /* between the end of a pass and the next */
#define STORAGE_ORPHAN_AGE_S 3600 /* unknown files younger than this may be in flight */

/* A batch of local files to record as this node's copies (inventory.c, scrub.c). */
struct storage__batch {
    struct storage *b;
    struct gr_sbuf arr;
    char sha[STORAGE_BATCH][65];
    int n;
    int64_t adopted, orphans;
    bool sweep; /* also delete old files no binary row knows (scrub) */
};

/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void storage__hex(const unsigned char *in, size_t n, char *out);
/* The fewest copies an upload may be acknowledged with (the setting). */
int storage__lenient(struct storage *b);
/* Read the cluster-wide settings from the database (storage.c). */
void storage__load_settings(struct storage *b);
/* Refresh the membership snapshot from cluster_nodes (storage.c). */
void storage__refresh_nodes(struct storage *b);
/* "id,id,..." of nodes into sb (repair.c). */
void storage__ids(const struct storage__node *nodes, int n, struct gr_sbuf *sb);
/* Scrub up to rate bytes of local copies (scrub.c). */
void storage__scrub_slice(struct storage *b, int64_t rate);
/* Record a batch / one local file (inventory.c). */
void storage__adopt_flush(struct storage__batch *bt);
int storage__adopt_one(void *arg, const char *sha256, uint64_t size);
/* The start-up inventory of the local filestore (inventory.c). */
int storage__inventory(struct storage *b);

/*
 * Fencing of the primary's tasks (docs/cluster.md "The primary"). A run
 * takes the token once: scheduled runs need one (0: not the primary, do
 * nothing); a run asked for through the API on a node that is not the
 * primary, and every run of a single node, is STORAGE_UNFENCED and relies
 * on the row locks alone. storage__fence() is the fence hook (storage.h,
 * storage_options) for a fenced run
 * (GR_ECONFLICT: deposed, stop the run) and GR_OK for an unfenced one.
 */
#define STORAGE_UNFENCED UINT64_MAX
uint64_t storage__run_token(struct storage *b, bool scheduled);
int storage__fence(struct storage *b, struct db_conn *c, uint64_t token, const char *task,
                   const char *subject);
int storage__repair_run(struct storage *b, bool scheduled, struct storage_repair_report *out);
int storage__gc_run(struct storage *b, int64_t grace_s, bool scheduled,
                    struct storage_gc_report *out);
/* ---- providers (provider.h; store.c, migrate.c) ---- */

/* The active provider's kind (the cluster's provider row). */
int storage__active(struct storage *b);
/* The provider of a kind this node can reach, or NULL. */
struct storage_provider *storage__prov(struct storage *b, int kind);
/* Open the providers the options configure, choose or check the cluster's
 * provider (storage_provider row). GR_OK; GR_EINVAL (why logged). */
int storage__providers_start(struct storage *b, const struct storage_options *o)
    __attribute__((warn_unused_result));
void storage__providers_stop(struct storage *b);
/* Re-read the provider row (the thread, every tick). */
void storage__load_provider(struct storage *b);
/*
 * Put the binary in the local file path into provider p, with its block
 * checksums (read from the file when crcs is NULL), then record its
 * location under the binary's row lock; when the row is gone or
 * tombstoned, nothing is recorded (GR_ENOTFOUND). GR_OK, GR_EUNAVAIL,
 * GR_EAUTH, GR_EIO, GR_EDB, GR_ENOMEM.
 */
int storage__store_put(struct storage *b, struct storage_provider *p, const char *sha256,
                       const char *path, uint64_t size, const uint32_t *crcs, char *err,
                       size_t errsz) __attribute__((warn_unused_result));
/* Open a checked read from provider kind (s3: with a cache fill); GR_ENOTFOUND when none. */
int storage__open_store(struct storage *b, int kind, const char *sha256, uint64_t size,
                        uint64_t first, uint64_t end, const char *request_id,
                        struct storage_remote **out);
/* The store-mode tasks (store.c): repair is a check that every binary is in
 * the store; scrub re-hashes the store's copies (budget < 0: all). */
int storage__repair_store(struct storage *b, struct storage_repair_report *out);
/* storage_repair() of a store: the running flag, the counters, the log line. */
int storage__repair_store_pass(struct storage *b, struct storage_repair_report *out);
/* Whether a binary_locations id names a store ("store:..."), not a node. */
bool storage__is_store(const char *loc);
/* Delete sha256 from the store named loc (GC); false when it cannot be reached. */
bool storage__store_del(struct storage *b, const char *loc, const char *sha256);
/* The location ids counted as copies now (live nodes, or the active store) as a text[] literal. */
void storage__live_ids(struct storage *b, const struct storage__node *nodes, int n,
                       struct gr_sbuf *sb);
int storage__scrub_store(struct storage *b, int64_t budget, struct storage_scrub_report *out);
/* Keep the read-through cache under cache_max (every node). */
void storage__cache_evict(struct storage *b);
/* The read-through cache's store: the filestore (s3), pcache (local), or NULL. */
struct bs_store *storage__cache_bs(struct storage *b);
/* An upload's copies on this node and redundancy - 1 peers (the local
 * provider's storage_replicate(); also a migration's copy to local). */
int storage__replicate_local(struct storage *b, struct gr_arena *a, struct bs_upload *bu,
                             struct storage_stream *stream, const char *sha256, uint64_t size,
                             const char *request_id, struct storage_pending **out)
    __attribute__((warn_unused_result));
/*
 * Copy sha256 (size bytes) from wherever a good copy is to provider kind,
 * checked, and record its location there under the row lock (migrate.c).
 * GR_OK (also when the binary was collected meanwhile), GR_ENOTFOUND (no
 * good copy anywhere), GR_EUNAVAIL, GR_EIO, GR_ENOSPC, GR_EDB.
 */
int storage__copy_to(struct storage *b, int kind, const char *sha256, uint64_t size)
    __attribute__((warn_unused_result));
/* One step of a provider migration (migrate.c; the primary's thread). */
void storage__migrate_step(struct storage *b);

#endif
