/*
 * bs_int.h - internals shared by the blobstore's files (bs.c, sidecar.c,
 * blob.c); not part of the contract and not included outside blobstore/.
 */
#ifndef BS_INT_H
#define BS_INT_H

#include "bs.h"

#include <stdatomic.h>

struct bs_store {
    char *root;     /* as given to bs_open() */
    char *abs_root; /* realpath of root, for bs_upload_path() */
    int root_fd;
    int pre_fd;
    atomic_uint_fast64_t seq; /* temp names under _pre/ */
    char id[BS_STAGE_ID];     /* STORE_ID: 32 hex */
    char tag[72];             /* bs_open_shared(): this writer's prefix of temp names; "" */
};

/* Sidecar layout (little-endian):
 *   0  "GRCRC1\0\0"     magic (6 bytes, 2 zero bytes)
 *   8  u32 block size   BS_BLOCK
 *  12  u64 file size
 *  20  u32 crc[n]       n = ceil(file size / block size)
 *  ..  u32 crc32c of every byte before it */
#define BS__CRC_HEAD 20
#define BS__CRC_LEN(nblocks) (BS__CRC_HEAD + 4 * (size_t)(nblocks) + 4)

static inline uint64_t bs__nblocks(uint64_t size)
{
    return (size + BS_BLOCK - 1) / BS_BLOCK;
}

/* errno -> BS_ENOSPC or BS_EIO */
int bs__errno(void);

/* "<aa>/<sha256>" (+ ".crc" when crc) into out[72]. */
void bs__rel(const char *sha256, bool crc, char out[72]);

/* pread exactly len bytes at off: len, fewer at EOF, or -1 (errno). */
ssize_t bs__read_full(int fd, void *buf, size_t len, uint64_t off);

/* Open (optionally creating) the <aa>/ directory of sha256; -1 + errno. */
int bs__subdir(struct bs_store *bs, const char *sha256, bool create);

/* Encode a sidecar for size bytes with the n = bs__nblocks(size) crcs;
 * malloc'ed, *len = BS__CRC_LEN(n). NULL when out of memory. */
unsigned char *bs__crc_encode(uint64_t size, const uint32_t *crcs, size_t *len);

/* Read and check the sidecar `name` under dirfd for a file of `size` bytes:
 * BS_OK with *crcs malloc'ed (NULL for an empty file), BS_ENOCRC (missing
 * or damaged), BS_EIO, BS_ENOMEM. */
int bs__crc_load(int dirfd, const char *name, uint64_t size, uint32_t **crcs);

/* CRCs of every block of an open file (read with pread): BS_OK with *crcs
 * malloc'ed and *size set, BS_EIO, BS_ENOMEM. */
int bs__crc_compute(int fd, uint64_t *size, uint32_t **crcs);

/* Write buf as dirfd/name, fsync it, close: BS_OK, BS_EIO, BS_ENOSPC
 * (the file is removed on error). */
int bs__write_at(int dirfd, const char *name, const void *buf, size_t len);

/* Write buf as _pre/<tmp>, fsync it, close: BS_OK, BS_EIO, BS_ENOSPC
 * (the temp file is removed on error). */
int bs__write_tmp(struct bs_store *bs, const char *tmp, const void *buf, size_t len);

/*
 * Install the encoded sidecar `enc` as <aa>/<sha256>.crc, durably, unless an
 * identical one is already there: write it to _pre/<tmp> (skipped when
 * tmp_ready, i.e. the caller already wrote and fsynced it there), rename,
 * fsync dfd. The temp file is gone on any return.
 */
int bs__crc_install(struct bs_store *bs, int dfd, const char *sha256, const char *tmp,
                    bool tmp_ready, const unsigned char *enc, size_t len);

/*
 * Publish _pre/<name> as <aa>/<sha256> (sidecar encoded in enc, already in
 * _pre/<tmp> if tmp_ready): sidecar first, then the data with
 * RENAME_NOREPLACE, then directory fsync. *existed set when the data was
 * already there (then _pre/<name> is removed). The caller's temp data file
 * stays on error; BS_ENOTFOUND when _pre/<name> does not exist.
 */
int bs__publish(struct bs_store *bs, const char *name, const char *sha256, const char *tmp,
                bool tmp_ready, const unsigned char *enc, size_t len, bool *existed);

#endif
