/*
 * bs.h - granary's local content-addressed binary store.
 *
 * A store is a directory (normally <data>/filestore) holding
 *   <root>/<first two hex of sha256>/<sha256>   one file per binary
 *   <root>/_pre/                                uploads in progress
 * An upload streams into a private file under _pre/, is fsynced and then
 * renamed under its hash (or dropped when the store already holds that
 * content): nothing half-written is ever visible under a hash.
 *
 * Caveats:
 *  - The caller computes the hashes (the daemon hashes while it streams);
 *    bs_upload_commit() trusts the sha256 it is given.
 *  - One process per store: the daemon holds a lock on its data directory.
 *    bs_open() removes leftovers in _pre/ from a previous crash.
 *  - Thread-safe: a struct bs_store is shared by all threads; a struct
 *    bs_upload belongs to one request (one thread at a time).
 *
 * Replication, placement and scrub arrive with the cluster (issue "Blobs");
 * this header is where they will be declared.
 */
#ifndef BS_H
#define BS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum bs_err {
    BS_OK = 0,
    BS_ENOTFOUND = -1, /* no binary with that hash */
    BS_EIO = -2,       /* a system call failed (details in errno at return) */
    BS_ENOSPC = -3,    /* the file system is full */
    BS_EINVAL = -4,    /* not a lowercase 64-hex sha256, or misuse */
    BS_ENOMEM = -5,
};

/* Short text for a bs_err; static storage. */
const char *bs_strerror(int err);

struct bs_store;
struct bs_upload;

/*
 * Open (creating if needed) a store rooted at dir.
 * @param[in] dir  the store's root; created with mode 0750 if missing.
 * @param[out] out the store; close with bs_close().
 * @return BS_OK, BS_EIO (cannot create or read dir), BS_ENOMEM.
 * @note Removes every file left in <dir>/_pre/ by a crashed process.
 */
int bs_open(const char *dir, struct bs_store **out) __attribute__((warn_unused_result));
void bs_close(struct bs_store *bs);

/*
 * Start an upload: creates a private temp file under _pre/.
 * @return BS_OK, BS_EIO, BS_ENOSPC, BS_ENOMEM.
 * @note The upload must end with exactly one of bs_upload_commit() or
 *       bs_upload_abort(); both free it.
 */
int bs_upload_begin(struct bs_store *bs, struct bs_upload **out)
    __attribute__((warn_unused_result));

/* Append len bytes. BS_OK, BS_EIO, BS_ENOSPC (the upload stays abortable). */
int bs_upload_write(struct bs_upload *u, const void *data, size_t len)
    __attribute__((warn_unused_result));

/* Bytes written so far. */
uint64_t bs_upload_size(const struct bs_upload *u);

/*
 * Make the upload durable under sha256: fsync the file, rename it to
 * <root>/<aa>/<sha256> and fsync the directory; if that binary is already
 * stored, the temp file is removed instead and *existed is set.
 * @param[in] sha256 lowercase hex of the content (the caller computed it).
 * @param[out] existed may be NULL.
 * @return BS_OK, BS_EINVAL (bad hash), BS_EIO, BS_ENOSPC. On any return
 *         the upload is freed and its temp file gone (or renamed).
 */
int bs_upload_commit(struct bs_upload *u, const char *sha256, bool *existed)
    __attribute__((warn_unused_result));

/* Drop the upload and its temp file. NULL is fine. */
void bs_upload_abort(struct bs_upload *u);

/*
 * Open a stored binary for reading.
 * @param[out] fd   a read-only fd the caller owns and must close.
 * @param[out] size its size in bytes.
 * @return BS_OK, BS_ENOTFOUND, BS_EINVAL, BS_EIO.
 */
int bs_open_blob(struct bs_store *bs, const char *sha256, int *fd, uint64_t *size)
    __attribute__((warn_unused_result));

/* True when the store holds the binary. */
bool bs_has(struct bs_store *bs, const char *sha256);

/* Bytes free for uploads on the store's file system, or -1. */
int64_t bs_free_bytes(struct bs_store *bs);

/* Size of the store's file system in bytes, or -1. */
int64_t bs_total_bytes(struct bs_store *bs);

/* The store's root directory; valid until bs_close(). */
const char *bs_root(const struct bs_store *bs);

/* True for a lowercase 64-character hex string. */
bool bs_valid_sha256(const char *s);

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
