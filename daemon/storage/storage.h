/*
 * storage.h - redundant binary storage across the nodes (docs/blobs.md,
 * daemon/storage/README.md): placement, synchronous replication over the
 * cluster port, reads from peers, bad-copy handling, and the storage tasks
 * (repair and garbage collection on the primary, scrub on every node).
 *
 * Who holds which binary lives in PostgreSQL (binary_locations). An upload
 * is made durable locally, staged on R-1 peers (each verifies sha256 and
 * fsyncs), and published (renamed into place everywhere) inside the
 * transaction that records the artifact, under the binary's row lock: the
 * garbage collector takes the same lock, so no upload ever publishes a copy
 * under a tombstone and no collection deletes a copy an upload relies on.
 *
 * Thread-safe. One struct storage per process, owned by the server struct and
 * reached through repo_ctx.storage.
 */
#ifndef STORAGE_STORAGE_H
#define STORAGE_STORAGE_H

#include "base/arena.h"

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db_pool;
struct bs_store;
struct db_conn;
struct bs_upload;
struct storage;

struct storage_options {
    struct db_pool *db;  /* the shared database */
    struct bs_store *bs; /* this node's filestore */
    const char *node_id;
    const char *zone;
    const void *key; /* the join key; NULL on a single node (no cluster port) */
    size_t key_len;
    /* NULL, or a second key accepted (never used to sign) during a join key
     * rotation (docs/security.md) */
    const void *next_key;
    size_t next_key_len;
    /* a rolling upgrade from a version that speaks only v1 on the cluster
     * port: accept v1 requests and unsigned answers, and sign requests
     * both ways (docs/security.md) */
    bool accept_v1;
    int down_after_ms;
    /* whether this node holds the primary lease now (cluster/cluster.h, wired by
     * main): repair and GC run there only. NULL: a single node, always. */
    bool (*is_primary)(void *arg);
    /* the fencing token of the primary lease this node holds (0: none); the
     * tasks' actions are fenced by it: fence() checks, inside the action's
     * transaction on c, that this node still holds the lease with token and
     * records the action (cluster_fence, cluster/cluster.h; GR_OK,
     * GR_ECONFLICT: deposed, GR_EDB). Both NULL: unfenced. */
    uint64_t (*primary_token)(void *arg);
    int (*fence)(void *arg, struct db_conn *c, uint64_t token, const char *task,
                 const char *subject);
    void *primary_arg;
    /* ---- the binary provider (docs/storage.md) ---- */
    const char *provider;       /* "local" (NULL), "s3" or "shared-fs": this node's setting */
    const char *shared_fs_path; /* shared-fs: the shared directory ("" none) */
    /* s3: the store ("" endpoint: none); the keys are copied, never shown */
    const char *s3_endpoint, *s3_bucket, *s3_region, *s3_prefix;
    const char *s3_access_key, *s3_secret_key;
    int s3_path_style; /* 1 path-style, 0 virtual-host, -1 path-style for a custom endpoint */
    /* the read-through cache of binaries this node holds no copy of: the
     * store's (s3, in the filestore) or, with the local provider in a
     * cluster, its peers' (in peer_cache_dir); 0: none; -1: 10 GiB */
    int64_t cache_max_bytes;
    const char *peer_cache_dir; /* local provider: where peers' binaries are cached */
};

/* Cluster-wide storage settings (table settings, keys "storage.*"). */
struct storage_settings {
    int redundancy;        /* copies of every binary (default 2) */
    int lenient_limit;     /* fewest copies an upload may be acknowledged with (1) */
    int64_t gc_grace_s;    /* unreferenced binaries younger than this are kept (3600) */
    int64_t gc_interval_s; /* scheduled collection (3600; 0 = only on demand) */
    int64_t scrub_rate;    /* bytes/s re-hashed by each node's scrub (8 MiB/s; 0 = off) */
    int64_t repair_rate;   /* bytes/s copied by repair (64 MiB/s) */
};

/*
 * Start: record this node's filestore identity (a changed identity means an
 * empty or replaced disk: this node's locations are forgotten), take an
 * inventory of the local files, and start the storage thread (membership,
 * stage expiry, scrub, and on the primary repair and collection).
 * GR_EDB, GR_ENOMEM.
 */
int storage_start(const struct storage_options *o, struct storage **out)
    __attribute__((warn_unused_result));
/* Stop the thread and free. NULL is fine. */
void storage_stop(struct storage *b);

/* How many nodes this node would place copies on now: its view of the
 * active nodes, refreshed by the storage thread every second (a metric, so
 * that a test or an operator can tell when a node has seen a change). */
int storage_placement_nodes(struct storage *st);
/* Current settings (refreshed by the storage thread every few seconds). */
void storage_get_settings(struct storage *b, struct storage_settings *out);
/* Store settings cluster-wide. GR_EINVAL (out of range), GR_EDB. */
int storage_set_settings(struct storage *b, const struct storage_settings *s)
    __attribute__((warn_unused_result));

/* ---- the binary provider ---- */

/* The active provider's name ("local", "shared-fs", "s3"). */
const char *storage_provider_name(struct storage *st);

/*
 * The store an upload streams into (repo/ingest.c): the shared-fs store
 * when that provider is active (so its copy is published by a rename),
 * else this node's filestore (fallback).
 */
struct bs_store *storage_upload_store(struct storage *st, struct bs_store *fallback);

/*
 * Start moving every binary to provider `to` (docs/storage.md
 * "Migrating"): recorded in the database, run by the primary (resumable,
 * throttled to rate bytes/s, 0: no limit), online; once every binary is
 * there, the cluster's provider switches and the old one is still read
 * until a last pass found nothing left to copy.
 * @return GR_OK; GR_EINVAL (unknown provider, or the active one; why set);
 *         GR_ECONFLICT (a migration is running; why set); GR_EUNAVAIL (a
 *         live node cannot reach that provider; why set); GR_EDB.
 */
int storage_migrate_start(struct storage *st, const char *to, int64_t rate, const char **why)
    __attribute__((warn_unused_result));
/* The provider and the migration's state as JSON (a new reference). */
json_t *storage_provider_json(struct storage *st);
/* The provider's counters (cache, store) as Prometheus lines. */
void storage_provider_metrics(struct storage *st, struct gr_sbuf *sb);

/* ---- uploads ---- */

/* An upload's copies between staging and publication (arena-owned). */
struct storage_pending;

/* An upload's copies streamed to peers while its body arrives (arena-owned). */
struct storage_stream;

/*
 * Uploads shorter than this are pushed to peers after their body (one
 * request per peer from the file); from this size on, repo/ingest.c
 * streams them while they arrive (storage_stream_begin()), so that the
 * copies cost no second transfer.
 */
#define STORAGE_STREAM_MIN (1024u * 1024)

/*
 * Start streaming an upload to R-1 peers while its body arrives (the local
 * provider with R > 1 only): the peers are picked by rendezvous hashing
 * over the active nodes under a random key (distinct zones first; the
 * sha256 is not known yet), each stages what it receives under the sha256
 * it computes. The have bytes already written to the file at path are
 * sent first. NULL: nothing is streamed (a store provider, R = 1, no peer,
 * out of memory): storage_replicate() then pushes the copies after the
 * body. The arena's cleanup aborts the transfers still running.
 */
struct storage_stream *storage_stream_begin(struct storage *st, struct gr_arena *a,
                                            const char *path, uint64_t have);
/* len more bytes of the body to the peers still receiving it (s NULL: nothing). */
void storage_stream_write(struct storage_stream *s, const void *data, size_t len);
/* Copies staged by a peer while the body arrived, since the start. */
uint64_t storage_streamed_copies(struct storage *st);

/*
 * After an upload's body is in and hashed: fsync the local copy and have
 * R-1 peers stage a copy (each verifies sha256 and fsyncs). The copies
 * streamed while the body arrived (stream, may be NULL) count when the
 * peer's sha256 matches; the rest are pushed from the file to the next
 * peers by rendezvous hashing over the active nodes (distinct zones
 * first), a failing peer replaced by the next in placement order. Takes
 * bu (consumed whatever happens). Nothing is published yet.
 * @param[out] out  the pending copies; an arena cleanup aborts whatever is
 *                  not published by then
 * @return GR_OK; GR_EUNAVAIL when fewer than lenient_limit copies could be
 *         made durable (nothing is kept), GR_ENOSPC, GR_EIO, GR_ENOMEM.
 */
int storage_replicate(struct storage *st, struct gr_arena *a, struct bs_upload *bu,
                      struct storage_stream *stream, const char *sha256, uint64_t size,
                      const char *request_id, struct storage_pending **out)
    __attribute__((warn_unused_result));

/*
 * Inside the transaction of c, after the binary's row is locked (and any
 * tombstone cleared): publish the pending copies (local rename, commit of
 * each peer stage) and record their locations. p NULL (a deploy by
 * checksum, npm metadata...): check that some node holds the binary.
 * @return GR_OK; GR_EUNAVAIL when fewer than lenient_limit copies were
 *         published (the caller rolls back), GR_ENOTFOUND (p NULL and no
 *         copy anywhere), GR_EDB.
 */
int storage_publish(struct storage *st, struct db_conn *c, const char *sha256,
                    struct storage_pending *p) __attribute__((warn_unused_result));

/* ---- reads ---- */

/*
 * Hot copies: small binaries (at most STORAGE_HOT_MAX bytes) this node
 * served lately from its own copy or its peer cache, kept in memory as they were read and
 * checked, at most 64 MiB in all (the local provider only). A hit costs a
 * stat of the file, which revalidates it: a copy deleted, quarantined,
 * moved or written to since then is a miss (and dropped).
 */
#define STORAGE_HOT_MAX (16u * 1024)
struct storage_hot;
struct bs_blob;
/*
 * The bytes of sha256 when a hot copy of exactly size bytes is still this
 * node's copy, with *ref held (storage_hot_release() it when they are
 * sent); NULL otherwise.
 */
const void *storage_hot_get(struct storage *st, const char *sha256, uint64_t size,
                            struct storage_hot **ref);
/* After a whole read of blob (checked): keep data as sha256's hot copy, if
 * blob is this node's own copy of it or its peer cache's, and small enough. */
void storage_hot_put(struct storage *st, struct bs_blob *blob, const char *sha256, const void *data,
                     uint64_t size);
/* Let go of a storage_hot_get() reference (any thread). NULL is fine. */
void storage_hot_release(struct storage_hot *ref);
/* Hits, stale entries dropped, and bytes held, since the start. */
void storage_hot_stats(struct storage *st, uint64_t *hits, uint64_t *stale, int64_t *bytes);

/*
 * The cluster port's answers to a GET of a binary carry the checksums of
 * the blocks they send in this header when they send at most
 * STORAGE_CRC_HEADER_MAX_BLOCKS blocks (32 MiB; the header stays within
 * 4 KiB): "<block size> <binary size> <first block> <8 hex digits per
 * block>", covered by the answer's signature. The holder checked every
 * block against the same checksums before sending it; the reading node
 * checks every block against them before it passes on a byte of it, and
 * asks for at most that many blocks at a time. (To a v1 request, during an
 * upgrade: "<block size> <8 hex digits per block>" for a whole binary
 * only, unsigned, as the older version reads it.)
 */
#define STORAGE_CRC_HEADER "X-Granary-Block-Crc32c"
#define STORAGE_CRC_HEADER_MAX_BLOCKS 512

/* A download from a peer (see storage_open_remote). */
struct storage_remote;

/*
 * Open a stream of a binary this node does not hold (or holds a bad copy
 * of), from the nodes that hold it, trying the next on failure. The
 * stream asks the holder for whole blocks (at most
 * STORAGE_CRC_HEADER_MAX_BLOCKS per request) and checks each against the
 * signed block checksums of the holder's answer before it returns a byte
 * of it; the first block is checked before this returns, so that a holder
 * that fails is replaced by the next one.
 * @param[in] range "bytes=a-b" (a single range within the binary) or NULL
 *                  for the whole binary
 * @return GR_OK, GR_ENOTFOUND (no node could serve it), GR_EINVAL (a
 *         range it cannot parse), GR_ENOMEM, GR_EDB.
 */
int storage_open_remote(struct storage *st, const char *sha256, uint64_t size, const char *range,
                        const char *request_id, struct storage_remote **out)
    __attribute__((warn_unused_result));
/*
 * Next bytes: count, 0 at the end, -1 on a transport failure or a block
 * that does not match its signed checksum (then the answer is cut and the
 * holder cache entry dropped; the peer's copy is not quarantined: the
 * holder checked the block before sending it, so the bytes changed on the
 * way). Every byte returned was checked. During an upgrade, an unsigned
 * answer of a v1 holder is checked as that version did (its unsigned block
 * checksums, or the sha256 of a whole binary before its last block is
 * returned; a range from it is not checked), and a mismatch quarantines
 * its copy.
 */
long storage_remote_read(struct storage_remote *s, void *buf, size_t max);
void storage_remote_close(struct storage_remote *s);

/*
 * This node's copy failed a check (a block checksum, or sha256): move it to
 * quarantine, forget its location, count it, and wake repair. A cached copy
 * of a peer's binary is dropped instead.
 */
void storage_bad_local_copy(struct storage *st, const char *sha256, const char *why);

/*
 * Open this node's copy for a verified read, settling missing block
 * checksums (the file is re-hashed: good, the checksums are rebuilt; bad,
 * the copy is quarantined). GR_OK with *blob set, GR_ENOTFOUND (no good
 * local copy), GR_EIO.
 */
struct bs_blob;
int storage_open_local(struct storage *st, const char *sha256, struct bs_blob **blob)
    __attribute__((warn_unused_result));

/*
 * Open this node's cached copy of a peer's binary (the local provider's
 * read-through cache: never a location) for a verified read, counted as a
 * cache hit or miss. GR_OK with *blob set, GR_ENOTFOUND. A cached copy that
 * fails a check is dropped (storage_bad_local_copy sends it to
 * storage_bad_cached_copy); the peers' copies are not suspected.
 */
int storage_open_cached(struct storage *st, const char *sha256, struct bs_blob **blob)
    __attribute__((warn_unused_result));
void storage_bad_cached_copy(struct storage *st, const char *sha256, const char *why);

/*
 * Read a whole binary in order, chunk by chunk to fn: this node's copy
 * (block-verified) or else a peer's (sha256-verified at the end, so fn must
 * not act on the bytes before GR_OK is returned). GR_OK, GR_ENOTFOUND,
 * GR_EIO, GR_ENOMEM, or fn's non-zero value.
 */
int storage_read_all(struct storage *st, const char *sha256, uint64_t size,
                     int (*fn)(void *arg, const void *data, size_t len), void *arg)
    __attribute__((warn_unused_result));

/* ---- the cluster port (storage/cluster_api.c) ---- */

/*
 * Requests carry STORAGE_AUTH_HEADER: "v2 <node> <dest> <unix ms> <nonce>
 * <hmac>", the HMAC-SHA256 under the join key of "granary-v2-request",
 * method, path and query, node, destination node, time and nonce, one per
 * line. During an upgrade (accept_v1) a node sends "v1 <node> <ms> <nonce>
 * <hmac>" there (what the older version checks) and its v2 signature in
 * STORAGE_AUTH_V2_HEADER. Answers carry STORAGE_ANSWER_HEADER: "v2 <node>
 * <hmac>" over "granary-v2-answer", the request's v2 hmac, the answering
 * node, the status, the binary's sha256 (for /v1/blobs/{sha256}...; else
 * empty), STORAGE_CRC_HEADER's value (or empty), then the body (empty for a
 * binary's bytes: the block checksums cover them).
 */
#define STORAGE_AUTH_HEADER "X-Granary-Auth"
#define STORAGE_AUTH_V2_HEADER "X-Granary-Auth-V2"
#define STORAGE_ANSWER_HEADER "X-Granary-Answer-Auth"

/* A request that passed storage_auth_check(): what its answer is signed against. */
struct storage_auth {
    int version;   /* 1 or 2; a v1 request gets an unsigned answer */
    char node[64]; /* the calling node */
    char mac[65];  /* the request's v2 hmac (hex) */
};

/*
 * Check a request's signature headers (v1: STORAGE_AUTH_HEADER, whose value
 * is header; v2: header_v2 if present, else header): HMAC-SHA256 under
 * the join key (or the next key during a rotation), addressed to this
 * node (v2), at most 60 s old, each (node, nonce) accepted once; a v1
 * signature only during an upgrade (accept_v1). false: refuse (why says
 * why); true: *out describes the request.
 */
bool storage_auth_check(struct storage *b, const char *method, const char *uri, const char *header,
                        const char *header_v2, struct storage_auth *out, const char **why);

/*
 * STORAGE_ANSWER_HEADER's value for an answer to req (a v2 request) into out
 * (at least 140 bytes): status, sha256 ("" when the call is not about one
 * binary), blocks (STORAGE_CRC_HEADER's value, "" when absent) and the body
 * (NULL/0 for a binary's bytes). "" for a v1 request.
 */
void storage_sign_answer(struct storage *b, const struct storage_auth *req, int status,
                         const char *sha256, const char *blocks, const void *body, size_t len,
                         char *out, size_t n);
/*
 * Fetch a binary from one of sources (comma-separated cluster URLs),
 * verify it, and publish it here with its location (under the row lock:
 * never for a tombstoned or deleted binary). GR_OK, GR_ENOTFOUND (no
 * source had a good copy, or the binary is gone), GR_ENOSPC, GR_EIO, GR_EDB.
 */
int storage_pull(struct storage *st, const char *sha256, const char *sources,
                 const char *request_id) __attribute__((warn_unused_result));
/* Forget this node's location of sha256 (after quarantine or delete). */
void storage_forget_local(struct storage *st, const char *sha256);

/* ---- tasks ---- */

struct storage_gc_report {
    int64_t tombstoned, deleted, files_deleted, bytes_freed, kept_unreachable;
    int64_t revived; /* tombstoned, then found referenced under its lock */
    int64_t duration_ms;
};
/* Collect now, with grace_s (-1: the setting). GR_OK, GR_EDB, GR_EUNAVAIL (one is running). */
int storage_gc(struct storage *st, int64_t grace_s, struct storage_gc_report *out)
    __attribute__((warn_unused_result));

struct storage_repair_report {
    int64_t checked, copied, trimmed, failed, unavailable, bytes;
    int64_t duration_ms;
};
/* One repair pass now (any node may run it; the primary runs it on a schedule). */
int storage_repair(struct storage *st, struct storage_repair_report *out)
    __attribute__((warn_unused_result));

struct storage_scrub_report {
    int64_t files, bytes, bad, healed, missing, adopted, orphans;
    int64_t duration_ms;
};
/* One full scrub pass of this node's copies now, at full speed. */
int storage_scrub(struct storage *st, struct storage_scrub_report *out)
    __attribute__((warn_unused_result));

struct storage_status {
    int64_t binaries, under_replicated, unavailable, over_replicated, tombstoned;
    uint64_t replicated_copies, replication_failures, remote_reads, remote_read_failures;
    /* reads from peers: holder lists from the cache, from PostgreSQL, and
     * cached lists whose every holder failed (then PostgreSQL was asked) */
    uint64_t holder_cache_hits, holder_queries, holder_cache_stale;
    /* connections this node opened to peers, and transfers that reused a
     * pooled session (and its kept-alive connection) */
    uint64_t peer_connections, peer_sessions_reused;
    uint64_t bad_copies, quarantined, scrubbed_files, scrubbed_bytes, scrub_bad;
    uint64_t repaired, trimmed, repair_runs, gc_runs, gc_bytes_freed, gc_files_deleted;
    bool repair_running, gc_running, scrub_running;
    int64_t last_repair_ms, last_gc_ms, last_scrub_ms; /* Unix ms of the last pass end, 0: never */
};
/*
 * Counters of this node and the cluster-wide replication state. fresh:
 * count binaries in PostgreSQL now; otherwise the counts of the last fresh
 * call (the storage thread of a cluster node makes one every 15 s), so that
 * a metrics scrape costs no query. GR_EDB.
 */
int storage_status(struct storage *st, bool fresh, struct storage_status *out)
    __attribute__((warn_unused_result));

#define STORAGE_COPIES_MAX 8
/*
 * How many binaries (not tombstoned) have 0, 1, ... live copies, by the
 * database now: by_copies[i] for i < STORAGE_COPIES_MAX, the last slot
 * counting STORAGE_COPIES_MAX or more. GR_EDB.
 */
int storage_copies(struct storage *st, int64_t by_copies[STORAGE_COPIES_MAX + 1])
    __attribute__((warn_unused_result));

/* Wake the storage thread for a repair pass (on the primary) soon. */
void storage_kick_repair(struct storage *b);

struct http_req;
struct http_route;
struct gr_sbuf;
/* The storage layer's endpoints (admin_api.c: /api/system/storage/...; the
 * cluster port's "/", cluster_api.c), rows for the route table (http/route.h). */
extern const struct http_route *const storage_routes;
/* The cluster port's handler (cluster_api.c). */
void storage_cluster_api(struct http_req *r, const char *rest);
/* The replication state as JSON (null for NULL): /api/system/cluster, /api/storageinfo. */
json_t *storage_status_json(struct storage *st);
/* The storage counters as Prometheus lines (a metrics source, http.h). */
void storage_metrics(struct storage *st, struct gr_sbuf *sb);

/* ---- this node's copy, read block by block (for the download path) ---- */

/* Bytes a block checksum covers: reads checked in whole blocks go fastest. */
#define STORAGE_BLOCK 65536
/* The size of an open local copy (storage_open_local). */
uint64_t storage_blob_size(struct bs_blob *blob);
/*
 * Read up to len bytes at off, every block they touch checked against its
 * CRC32C first. @return the bytes read (0 at the end), or GR_ECORRUPT (a
 * block failed: call storage_bad_local_copy), GR_EIO.
 */
long storage_blob_read(struct bs_blob *blob, uint64_t off, void *buf, size_t len);
/* Close a local copy. NULL is fine. */
void storage_blob_close(struct bs_blob *blob);

/* This node's filestore: where, and its file system's space (-1: unknown). */
struct storage_disk {
    const char *root;
    int64_t free_bytes, total_bytes;
};
void storage_disk(struct storage *st, struct storage_disk *out);

/*
 * Probe the filestore now (a file written, synced and removed at its root)
 * and return whether it is degraded: read-only, unwritable or failing. A
 * degraded node is shown so in /api/system/cluster ("disk") and the
 * metrics, holds no new copies, takes no uploads (503), and its copies do
 * not count towards redundancy, so repair copies them elsewhere. The storage
 * thread probes every few seconds. false for NULL.
 */
bool storage_disk_check(struct storage *st);
/* The result of the last probe (no I/O). */
bool storage_disk_degraded(struct storage *st);
/*
 * Whether new bytes (an upload, a peer's copy) must be refused (503): the
 * last probe failed and a probe now fails again. A filestore can fail
 * without failing every write: files opened before it turned read-only (a
 * bind mount remounted, a directory made unwritable) still take data, and
 * an upload acknowledged there would be on a disk the node itself calls
 * broken. false for NULL.
 */
bool storage_disk_refuses(struct storage *st);

/* The daemon error (base/err.h) of a blobstore result (bs.h): the one mapping. */
int storage_bs_err(int bs_rc);

#endif
