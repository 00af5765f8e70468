/*
 * provider.h - the binary-provider contract (docs/storage.md): where the
 * copies of binaries are kept. Three implementations:
 *
 *   local      this node's filestore (provider_fs.c); redundancy comes from
 *              the cluster: an upload is staged on redundancy - 1 peers
 *              (replicate.c) and read from them when this node has no copy
 *   shared-fs  one directory on a shared file system, the same on every
 *              node (provider_fs.c over bs_open_shared()); no copies
 *              between nodes
 *   s3         an S3-compatible object store (s3/provider_s3.c); each node's
 *              filestore is a read-through cache, never counted as a copy
 *
 * Each is one contract: put a verified local file, read a range with every
 * block checked before a byte is returned, stat, delete, list (scrub,
 * migration). Where a provider keeps a binary is recorded in
 * binary_locations under the provider's location id: the node's id for
 * local, "store:shared-fs" and "store:s3" for the others.
 *
 * Thread-safe: one struct storage_provider per provider and process, used
 * by every thread; a struct storage_pread belongs to one thread at a time.
 * Only the storage layer includes this header.
 */
#ifndef STORAGE_PROVIDER_H
#define STORAGE_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bs_store;
struct s3;
struct storage_provider;
struct storage_pread;

enum storage_kind { STORAGE_LOCAL = 0, STORAGE_SHARED = 1, STORAGE_S3 = 2, STORAGE_KINDS = 3 };

struct storage_provider_ops {
    /*
     * Make the binary sha256 durable in the provider from the local file
     * path (size bytes, already hashed by the caller, and fsynced), with the
     * block checksums crcs (ceil(size / 65536) entries). Idempotent: an
     * existing copy of the same content is kept.
     * @return GR_OK; GR_EUNAVAIL (the provider cannot be reached: nothing
     *         may be acknowledged), GR_EAUTH (its credentials were refused),
     *         GR_ENOSPC, GR_EIO, GR_ENOMEM; err says why.
     */
    int (*put)(struct storage_provider *p, const char *sha256, const char *path, uint64_t size,
               const uint32_t *crcs, char *err, size_t errsz);
    /*
     * Open a read of bytes [off, off + len) of a binary of size bytes. Every
     * block the range touches is read whole and checked against the
     * binary's block checksums before a byte of it is returned; the first
     * one before this returns.
     * @return GR_OK; GR_ENOTFOUND (no copy); GR_ECORRUPT (the copy failed its
     *         check: the caller counts it, and repair or scrub takes over);
     *         GR_EUNAVAIL; GR_EIO; GR_ENOMEM.
     */
    int (*open)(struct storage_provider *p, const char *sha256, uint64_t size, uint64_t off,
                uint64_t len, struct storage_pread **out);
    /* Next checked bytes: the count, 0 at the end; GR_ECORRUPT, GR_EUNAVAIL, GR_EIO. */
    long (*read)(struct storage_pread *r, void *buf, size_t max);
    void (*close)(struct storage_pread *r);
    /* GR_OK with *size, GR_ENOTFOUND, GR_EUNAVAIL, GR_EIO. */
    int (*stat)(struct storage_provider *p, const char *sha256, uint64_t *size);
    /* Delete the binary (GR_OK also when there was none); GR_EUNAVAIL, GR_EIO. */
    int (*del)(struct storage_provider *p, const char *sha256);
    /*
     * fn(arg, sha256, size) for every binary, in sha256 order, strictly
     * after `after` ("" from the start). fn's non-zero value stops the walk
     * and is returned; else GR_OK, GR_EUNAVAIL, GR_EIO.
     */
    int (*list)(struct storage_provider *p, const char *after,
                int (*fn)(void *arg, const char *sha256, uint64_t size), void *arg);
    /* Move a bad copy out of service (or delete it); GR_OK, GR_EIO. */
    int (*quarantine)(struct storage_provider *p, const char *sha256);
    void (*free)(struct storage_provider *p);
};

struct storage_provider {
    const struct storage_provider_ops *ops;
    enum storage_kind kind;
    const char *name;    /* "local", "shared-fs", "s3" */
    char loc[72];        /* its id in binary_locations */
    struct bs_store *bs; /* local and shared-fs: the store; s3: NULL */
    struct s3 *s3;       /* s3: the client */
};

/* The name of a kind ("local", "shared-fs", "s3"). */
const char *storage_kind_name(enum storage_kind k);
/* The kind of a name; -1 for another name. */
int storage_kind_of(const char *name);

/* A provider over a blobstore (local: this node's, loc its id; shared-fs: a
 * shared one). Does not take bs. GR_OK, GR_ENOMEM. */
int storage_provider_fs(enum storage_kind kind, struct bs_store *bs, const char *loc,
                        struct storage_provider **out) __attribute__((warn_unused_result));
/* The s3 provider; takes s (freed with the provider). GR_OK, GR_ENOMEM. */
int storage_provider_s3(struct s3 *s, struct storage_provider **out)
    __attribute__((warn_unused_result));

/* The object keys of the s3 provider: "<aa>/<sha256>" and its sidecar "<aa>/<sha256>.crc". */
void storage_s3_key(const char *sha256, bool crc, char out[80]);

#endif
