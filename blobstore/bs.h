/*
 * bs.h - granary's local content-addressed binary store.
 *
 * A store is a directory (normally <data>/filestore) holding
 *   <root>/<first two hex of sha256>/<sha256>      one file per binary
 *   <root>/<first two hex of sha256>/<sha256>.crc  its block checksums
 *   <root>/_pre/                                   uploads in progress, stages
 *   <root>/_quarantine/<sha256>.<unix time>[.crc]  copies that failed a check
 *   <root>/STORE_ID                                this store's random id
 * An upload streams into a private file under _pre/, is fsynced and then
 * renamed under its hash (or dropped when the store already holds that
 * content): nothing half-written is ever visible under a hash. Its sidecar
 * (.crc: the CRC32C of every BS_BLOCK bytes) is renamed under its final name
 * before the data is, and one directory fsync makes both durable. The
 * sidecar itself is not fsynced (it would double the flushes of a small
 * upload): one that a crash lost or tore fails its own CRC, and
 * bs_blob_open() says BS_ENOCRC, as for binaries stored before sidecars
 * existed; the caller re-hashes and calls bs_crc_rebuild()).
 *
 * Caveats:
 *  - The caller computes the hashes (the daemon hashes while it streams);
 *    bs_upload_commit() and bs_stage_commit() trust the sha256 they are
 *    given. The store itself only computes CRC32C (no crypto library).
 *  - One process per store: the daemon holds a lock on its data directory.
 *    bs_open() removes leftovers in _pre/ from a previous crash, including
 *    stages that were never committed.
 *  - Thread-safe: a struct bs_store is shared by all threads; a struct
 *    bs_upload and a struct bs_blob belong to one thread at a time.
 *  - Functions that take a sha256 return BS_EINVAL unless it is lowercase
 *    64-character hex (no path can be smuggled in through it).
 *
 * Placement across nodes (bs_place) lives here too; replication itself is
 * the cluster layer's, which calls this API.
 */
#ifndef BS_H
#define BS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

enum bs_err {
    BS_OK = 0,
    BS_ENOTFOUND = -1, /* no binary with that hash */
    BS_EIO = -2,       /* a system call failed (details in errno at return) */
    BS_ENOSPC = -3,    /* the file system is full */
    BS_EINVAL = -4,    /* not a lowercase 64-hex sha256, or misuse */
    BS_ENOMEM = -5,
    BS_ECORRUPT = -6, /* a block does not match its CRC32C */
    BS_ENOCRC = -7,   /* data present, sidecar missing or damaged */
};

/* Bytes covered by one CRC32C in a sidecar. */
#define BS_BLOCK (64 * 1024)

/* Short text for a bs_err; static storage. */
const char *bs_strerror(int err);

struct bs_store;
struct bs_upload;

/*
 * Open (creating if needed) a store rooted at dir.
 * @param[in] dir  the store's root; created with mode 0750 if missing.
 * @param[out] out the store; close with bs_close().
 * @return BS_OK, BS_EIO (cannot create or read dir, or cannot create
 *         STORE_ID), BS_ENOSPC (no room for STORE_ID), BS_ENOMEM.
 * @note Removes every file left in <dir>/_pre/ by a crashed process
 *       (unfinished uploads and uncommitted stages alike).
 * @note Reads <dir>/STORE_ID, or creates it (fsynced) when it is missing or
 *       does not hold 32 hex characters: see bs_store_id(). A STORE_ID
 *       that exists but cannot be read is BS_EIO, not a new identity.
 */
int bs_open(const char *dir, struct bs_store **out) __attribute__((warn_unused_result));

/*
 * Open a store that several processes on several machines write at once (a
 * shared file system mounted at the same path on every node): as bs_open(),
 * but temp names under _pre/ start with "<tag>-" (unique per writer: the
 * node id), only this writer's leftovers are removed from _pre/, and a file
 * system without RENAME_NOREPLACE (NFS) publishes with link(2) + unlink,
 * which fails just as atomically when the name is taken.
 * @return as bs_open(); BS_EINVAL for an empty tag, one longer than 64
 *         characters, or one with '/' or starting with '.' or "stage".
 * @note Staging (bs_upload_stage) is not for shared stores: other writers'
 *       stages would look abandoned to bs_stage_expire().
 */
int bs_open_shared(const char *dir, const char *tag, struct bs_store **out)
    __attribute__((warn_unused_result));
void bs_close(struct bs_store *bs);

/*
 * Start an upload: creates a private temp file under _pre/.
 * @return BS_OK, BS_EIO, BS_ENOSPC, BS_ENOMEM.
 * @note The upload must end with exactly one of bs_upload_commit(),
 *       bs_upload_stage() or bs_upload_abort(); each frees it.
 */
int bs_upload_begin(struct bs_store *bs, struct bs_upload **out)
    __attribute__((warn_unused_result));

/*
 * Append len bytes; the CRC32C of every BS_BLOCK is computed on the way.
 * @return BS_OK, BS_EIO, BS_ENOSPC, BS_ENOMEM (the checksum list could not
 *         grow). After an error the upload can only be aborted.
 */
int bs_upload_write(struct bs_upload *u, const void *data, size_t len)
    __attribute__((warn_unused_result));

/* Bytes written so far. */
uint64_t bs_upload_size(const struct bs_upload *u);

/* The store the upload belongs to. */
struct bs_store *bs_upload_store(const struct bs_upload *u);

/*
 * The block checksums of the bytes written so far (the last, partial block
 * included): *n entries, owned by the upload, valid until the next write
 * or its end. NULL with *n 0 when out of memory (or nothing was written).
 * Encode them with bs_sidecar_encode() to store them elsewhere.
 */
const uint32_t *bs_upload_crcs(struct bs_upload *u, uint64_t *n);

/*
 * Make the upload durable under sha256: fsync the file (skipped when
 * bs_upload_sync() already did and nothing was written since), write the
 * sidecar <root>/<aa>/<sha256>.crc (temp file, rename; not fsynced, see
 * above), then rename the data to <root>/<aa>/<sha256> with
 * RENAME_NOREPLACE and fsync the directory. If that binary is already
 * stored, the temp file is removed instead and *existed is set; its sidecar
 * is kept when it is identical to the one just computed, else replaced.
 * @param[in] sha256 lowercase hex of the content (the caller computed it).
 * @param[out] existed may be NULL.
 * @return BS_OK, BS_EINVAL (bad hash), BS_EIO, BS_ENOSPC, BS_ENOMEM. On any
 *         return the upload is freed and its temp file gone (or renamed).
 */
int bs_upload_commit(struct bs_upload *u, const char *sha256, bool *existed)
    __attribute__((warn_unused_result));

/* Drop the upload and its temp file. NULL is fine. */
void bs_upload_abort(struct bs_upload *u);

/*
 * Make the bytes written so far durable (fsync), without publishing them;
 * lets the caller pay for the fsync outside a database lock. Idempotent:
 * a second call with nothing written in between does no I/O, and
 * bs_upload_commit()/bs_upload_stage() then skip their own fsync.
 * @return BS_OK, BS_EIO, BS_ENOSPC (the upload stays abortable).
 */
int bs_upload_sync(struct bs_upload *u) __attribute__((warn_unused_result));

/*
 * Absolute path of the upload's temp file (under <root>/_pre/), e.g. for
 * the replication client to send it to peers while it is being committed.
 * @note Owned by the upload: valid until bs_upload_commit(),
 *       bs_upload_stage() or bs_upload_abort(). Read the file only; the
 *       bytes are complete once the caller has stopped writing.
 */
const char *bs_upload_path(const struct bs_upload *u);

/*
 * Open a stored binary for reading.
 * @param[out] fd   a read-only fd the caller owns and must close.
 * @param[out] size its size in bytes.
 * @return BS_OK, BS_ENOTFOUND, BS_EINVAL, BS_EIO.
 */
int bs_open_blob(struct bs_store *bs, const char *sha256, int *fd, uint64_t *size)
    __attribute__((warn_unused_result));

/* True when the store holds the binary (data file; says nothing of its
 * sidecar or its health). */
bool bs_has(struct bs_store *bs, const char *sha256);

/* Bytes free for uploads on the store's file system, or -1. */
int64_t bs_free_bytes(struct bs_store *bs);

/* Size of the store's file system in bytes, or -1. */
int64_t bs_total_bytes(struct bs_store *bs);

/* The store's root directory; valid until bs_close(). */
const char *bs_root(const struct bs_store *bs);

/* True for a lowercase 64-character hex string. */
bool bs_valid_sha256(const char *s);

/*
 * The store's identity: 32 lowercase hex characters drawn with getrandom(2)
 * when bs_open() found no STORE_ID (a new store, or a wiped data directory)
 * and read from <root>/STORE_ID afterwards. A node whose store id changed
 * has lost its binaries, whatever the database says it holds.
 * @note Owned by the store; valid until bs_close().
 */
const char *bs_store_id(const struct bs_store *bs);

/* ---- checksums ---------------------------------------------------------- */

/*
 * CRC-32C (Castagnoli) of len bytes, continuing crc (0 to start):
 * bs_crc32c(bs_crc32c(0, a, n), b, m) is the CRC of a followed by b, and
 * bs_crc32c(0, "123456789", 9) == 0xE3069283. Uses the SSE4.2 crc32
 * instruction when the CPU has it, else a table-driven fallback.
 */
uint32_t bs_crc32c(uint32_t crc, const void *data, size_t len);

/* The table-driven implementation, whatever the CPU (for tests, benches). */
uint32_t bs_crc32c_sw(uint32_t crc, const void *data, size_t len);

/* The SSE4.2 implementation; falls back to bs_crc32c_sw() when the CPU has
 * no SSE4.2 (see bs_crc32c_has_hw()). For tests and benchmarks. */
uint32_t bs_crc32c_hw(uint32_t crc, const void *data, size_t len);

/* True when bs_crc32c() runs on the CPU's crc32 instruction. */
bool bs_crc32c_has_hw(void);

/*
 * A sidecar's bytes (the layout of README.md) for a binary of size bytes
 * whose blocks have the checksums crcs (ceil(size / BS_BLOCK) entries), e.g.
 * to store it beside a binary in an object store. malloc'ed, *len set;
 * NULL when out of memory.
 */
unsigned char *bs_sidecar_encode(uint64_t size, const uint32_t *crcs, size_t *len);

/*
 * Check sidecar bytes for a binary of size bytes (magic, block size, size,
 * length, its own CRC) and return its block checksums: BS_OK with *crcs
 * malloc'ed (NULL for an empty binary), BS_ENOCRC (damaged or about
 * another size), BS_ENOMEM.
 */
int bs_sidecar_decode(const void *buf, size_t len, uint64_t size, uint32_t **crcs)
    __attribute__((warn_unused_result));

/* ---- staging: durable now, published later ------------------------------ */

/* Size of a stage id: 32 lowercase hex characters and a NUL. */
#define BS_STAGE_ID 33

/*
 * Make an upload durable without publishing it (a replica received from a
 * peer waits for the sender's word): fsync the data (unless
 * bs_upload_sync() already did), write its sidecar (not fsynced) as
 * _pre/stage-<id>.crc and keep the data as _pre/stage-<id>.
 * @param[in] u       the upload; freed on any return.
 * @param[in] sha256  the content's hash, checked for form only (the stage
 *                    does not record it: bs_stage_commit() is told again).
 * @param[out] id     the new stage's id, NUL-terminated (getrandom(2)).
 * @return BS_OK, BS_EINVAL (bad hash; nothing staged), BS_EIO, BS_ENOSPC,
 *         BS_ENOMEM. On error nothing is left in _pre/.
 * @note A stage ends with bs_stage_commit() or bs_stage_abort(); else
 *       bs_stage_expire() or the next bs_open() removes it. Stages do not
 *       survive a restart: a sender whose commit gets BS_ENOTFOUND must count
 *       that replica as lost (its bytes are durable only once committed).
 */
int bs_upload_stage(struct bs_upload *u, const char *sha256, char id[BS_STAGE_ID])
    __attribute__((warn_unused_result));

/*
 * Publish a stage under sha256 exactly like bs_upload_commit(): its sidecar
 * first (kept if the store already has an identical one), then the data with
 * RENAME_NOREPLACE, directory fsynced; when the binary is already stored the
 * stage is dropped and *existed set. The data was fsynced when staged.
 * @param[in] id      from bs_upload_stage().
 * @param[in] sha256  the content's hash (trusted, as in bs_upload_commit()).
 * @param[out] existed may be NULL.
 * @return BS_OK, BS_ENOTFOUND (no such stage: aborted, expired, committed,
 *         or the store was reopened), BS_EINVAL (malformed id or hash),
 *         BS_EIO, BS_ENOSPC, BS_ENOMEM. On BS_OK the stage is gone; on an
 *         error other than BS_EINVAL/BS_ENOTFOUND it stays for a retry or
 *         bs_stage_abort().
 * @note A stage whose sidecar went missing gets a new one computed from its
 *       data before it is published.
 */
int bs_stage_commit(struct bs_store *bs, const char *id, const char *sha256, bool *existed)
    __attribute__((warn_unused_result));

/* Remove a stage (data and sidecar). Unknown or malformed ids are ignored. */
void bs_stage_abort(struct bs_store *bs, const char *id);

/*
 * Remove stages staged more than older_than_s seconds ago (by the data
 * file's mtime, set when it was staged), and orphan stage sidecars as old.
 * @return how many stages were removed (>= 0), or BS_EIO if _pre/ cannot
 *         be listed.
 */
int bs_stage_expire(struct bs_store *bs, int64_t older_than_s);

/* ---- verified reads ----------------------------------------------------- */

struct bs_blob;

/*
 * Open a stored binary for reads checked against its sidecar.
 * @param[out] out the blob; close with bs_blob_close(). Untouched on error.
 * @return BS_OK; BS_ENOTFOUND (no data file); BS_EINVAL (bad hash); BS_EIO;
 *         BS_ENOMEM; BS_ENOCRC: the data is there but its sidecar is
 *         missing, fails its own CRC, or describes another size: the caller
 *         re-hashes the data (bs_open_blob()) and then calls
 *         bs_crc_rebuild() or bs_quarantine().
 */
int bs_blob_open(struct bs_store *bs, const char *sha256, struct bs_blob **out)
    __attribute__((warn_unused_result));

/* Size in bytes (as the sidecar and the data file agreed at open). */
uint64_t bs_blob_size(const struct bs_blob *b);

/*
 * The blob's read-only fd, e.g. for sendfile() once a range is verified.
 * @note Owned by the blob: do not close it; valid until bs_blob_close().
 *       Reads through it are not checked.
 */
int bs_blob_fd(const struct bs_blob *b);
/*
 * stat(2) of bs's copy of sha256 by its path, without opening it: whether a
 * copy read before is still the same file (inode, size, ctime).
 * @return BS_OK, BS_ENOTFOUND, BS_EINVAL (bad hash), BS_EIO.
 */
int bs_blob_stat(struct bs_store *bs, const char *sha256, struct stat *out);

/*
 * The sidecar's block checksums: *n entries, the CRC32C of each BS_BLOCK
 * bytes (the last block may be short), as bs_blob_read() checks them.
 * @note Owned by the blob: valid until bs_blob_close().
 */
const uint32_t *bs_blob_crcs(const struct bs_blob *b, uint64_t *n);

/*
 * Read len bytes at off into buf, having checked the CRC32C of every block
 * the range touches. Whole blocks are read: aligned full blocks straight
 * into buf, partial edges through a scratch block inside the blob.
 * @return the bytes read: min(len, size - off), 0 at or past EOF (a short
 *         count only at EOF); or BS_ECORRUPT (a touched block does not match
 *         its checksum, or the file got shorter: the copy must be
 *         quarantined) or BS_EIO (errno set). On error buf holds garbage.
 * @note A blob is used by one thread at a time (the scratch block).
 * @note Fastest with block-aligned off and len and a page-aligned buf (the
 *       kernel's copy out of the page cache is much slower into a
 *       misaligned buffer); see `make bench-bs`.
 */
ssize_t bs_blob_read(struct bs_blob *b, uint64_t off, void *buf, size_t len)
    __attribute__((warn_unused_result));

/* Close the blob and its fd. NULL is fine. */
void bs_blob_close(struct bs_blob *b);

/*
 * Recompute and rewrite the sidecar of a stored binary (temp file, rename,
 * directory fsync), e.g. after bs_blob_open() said BS_ENOCRC.
 * @return BS_OK, BS_ENOTFOUND, BS_EINVAL, BS_EIO, BS_ENOSPC, BS_ENOMEM.
 * @note Trusts the data: call it only after re-hashing the binary with
 *       sha256, or a damaged copy gets checksums that bless it.
 */
int bs_crc_rebuild(struct bs_store *bs, const char *sha256) __attribute__((warn_unused_result));

/*
 * Check every block of a stored binary against its sidecar (scrub).
 * @return BS_OK, BS_ECORRUPT (some block differs, or the file is shorter),
 *         BS_ENOCRC, BS_ENOTFOUND, BS_EINVAL, BS_EIO, BS_ENOMEM.
 */
int bs_verify_blocks(struct bs_store *bs, const char *sha256) __attribute__((warn_unused_result));

/* ---- quarantine, delete, inventory -------------------------------------- */

/*
 * Take a bad copy out of service: move <aa>/<sha256> to
 * <root>/_quarantine/<sha256>.<unix time> (a ".<n>" suffix is added if
 * that name is taken) and its sidecar, if any, beside it with ".crc"
 * appended; fsync both directories. Readers that already opened the copy
 * keep their fd.
 * @return BS_OK, BS_ENOTFOUND (no data file), BS_EINVAL, BS_EIO.
 */
int bs_quarantine(struct bs_store *bs, const char *sha256) __attribute__((warn_unused_result));

/* Data files in _quarantine/ (sidecars not counted); 0 when it does not
 * exist, -1 if it cannot be read. */
int64_t bs_quarantine_count(struct bs_store *bs);

/*
 * Delete a stored binary: unlink the data, then its sidecar, then fsync
 * the directory. Open fds keep reading the old file.
 * @return BS_OK, BS_ENOTFOUND (no data file; a stray sidecar is removed
 *         anyway), BS_EINVAL, BS_EIO.
 * @note The caller (garbage collection) decides that nothing references
 *       the binary; the store does not know.
 */
int bs_delete(struct bs_store *bs, const char *sha256) __attribute__((warn_unused_result));

/*
 * Call fn(arg, sha256, size) for every stored binary in ascending sha256
 * order, starting strictly after the cursor `after` (NULL or "" = from the
 * start; any string compares with strcmp, so the last sha256 seen resumes
 * an interrupted walk). Skips _pre/, _quarantine/, sidecars and every name
 * that is not a 64-hex hash in its own <aa>/ directory. Binaries added or
 * removed during the walk may or may not be seen. fn may delete or
 * quarantine the binary it is given.
 * @param[in] fn  returns 0 to go on; any other value stops the walk.
 * @return BS_OK; fn's non-zero value when fn stopped the walk; BS_EIO (a
 *         directory could not be read); BS_ENOMEM.
 * @note The sha256 string passed to fn is valid during the call only.
 */
int bs_each(struct bs_store *bs, const char *after,
            int (*fn)(void *arg, const char *sha256, uint64_t size), void *arg);

/* ---- placement ---------------------------------------------------------- */

/* A candidate node for bs_place(). zone NULL or "" is one anonymous zone. */
struct bs_node {
    const char *id;
    const char *zone;
};

/*
 * Choose up to `want` nodes to hold the binary sha256, in preference order,
 * by rendezvous (highest random weight) hashing: each node scores
 * splitmix64(FNV-1a(sha256, NUL, node id)); repeatedly take the best-scoring
 * node whose zone is not used yet (first_zone, the receiving node's zone,
 * counts as used; NULL for none), and once no unused zone remains, the
 * best-scoring node left. Equal scores are ordered by id, so the result
 * does not depend on the order of nodes[] (only on the set). Adding or
 * removing a node only moves binaries for which that node scores highest.
 * Pure: no I/O, no allocation, thread-safe.
 * @param[in] sha256 the binary (any NUL-terminated string is hashed).
 * @param[in] nodes  n candidates (the receiving node excluded by the caller).
 * @param[out] out   indices into nodes[]; room for min(want, n).
 * @return the number chosen, min(want, n) (0 if either is <= 0), or
 *         BS_EINVAL when sha256, nodes (with n > 0) or out is NULL, or a
 *         node id is NULL.
 */
int bs_place(const char *sha256, const struct bs_node *nodes, int n, const char *first_zone,
             int want, int *out);

#endif
