/*
 * crypto.h - digests, HMAC, random bytes and password hashing: the only
 * part of granary that includes OpenSSL.
 *
 * All functions are thread-safe. Hex digests are lowercase and
 * NUL-terminated in caller-provided buffers of the CR_*_HEX sizes.
 */
#ifndef CR_CRYPTO_H
#define CR_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CR_SHA256_HEX 65
#define CR_SHA1_HEX 41
#define CR_MD5_HEX 33

/* sha256, sha1 and md5 of one stream, computed in the same pass. */
struct cr_multihash;

/*
 * Worker threads that compute the digests of large uploads: sha256, sha1 and
 * md5 are three streams, each hashed in order by one worker at a time, so
 * the three (and the request thread's copy, CRC and write) run on different
 * cores. Started once; uploads never create threads. A context with a pool
 * hashes its first CR_HASH_INLINE_MAX bytes inline (a small upload never
 * wakes a worker), then gathers the bytes into chunks of CR_HASH_BATCH
 * (copied: one lock and one wake-up per chunk, not per network read) that
 * the workers take; at most CR_HASHPOOL_BACKLOG bytes per context wait,
 * after which cr_multihash_update() blocks (back-pressure).
 */
struct cr_hashpool;
#define CR_HASHPOOL_BACKLOG (16u * 1024 * 1024)
#define CR_HASH_INLINE_MAX (256u * 1024)
#define CR_HASH_BATCH (1024u * 1024)

/* Start n worker threads. GR_ENOMEM. */
int cr_hashpool_start(int n, struct cr_hashpool **out) __attribute__((warn_unused_result));
/* Stop and join the workers (no context may be in use). NULL is fine. */
void cr_hashpool_stop(struct cr_hashpool *p);

/*
 * A new context; NULL means out of memory. With a pool, the digests of the
 * bytes past CR_HASH_INLINE_MAX run on the pool's workers (the data is
 * copied; without memory for a copy, on the caller's thread); pool may be
 * NULL (all inline). The digests are the same either way. Free with
 * cr_multihash_free() (which waits for queued work).
 */
struct cr_multihash *cr_multihash_new(struct cr_hashpool *pool);
void cr_multihash_update(struct cr_multihash *h, const void *data, size_t len);
/* Finish and write the three hex digests; the context can then only be freed. */
void cr_multihash_final(struct cr_multihash *h, char sha256[CR_SHA256_HEX], char sha1[CR_SHA1_HEX],
                        char md5[CR_MD5_HEX]);
void cr_multihash_free(struct cr_multihash *h);

/* sha256 of a buffer, as hex. */
void cr_sha256_hex(const void *data, size_t len, char out[CR_SHA256_HEX]);

/* sha256 of len bytes of the file fd from offset off (len UINT64_MAX: to
 * its end), read with pread, as hex. GR_OK; GR_EIO (a read failed, or the
 * file ended before len bytes); GR_ENOMEM. */
int cr_sha256_fd_hex(int fd, uint64_t off, uint64_t len, char out[CR_SHA256_HEX])
    __attribute__((warn_unused_result));

#define CR_SHA512_HEX 129

/* sha512 of a buffer, as hex. */
void cr_sha512_hex(const void *data, size_t len, char out[CR_SHA512_HEX]);

/* One digest over a stream (for formats that need sha512, e.g. npm's integrity). */
enum cr_algo { CR_MD5, CR_SHA1, CR_SHA256, CR_SHA512 };
struct cr_digest;

/* NULL means out of memory. Free with cr_digest_free(). */
struct cr_digest *cr_digest_new(enum cr_algo algo);
void cr_digest_update(struct cr_digest *d, const void *data, size_t len);
/* The raw digest into out (at least 64 bytes); returns its length. The
 * digest can then only be freed. */
size_t cr_digest_final(struct cr_digest *d, unsigned char out[64]);
void cr_digest_free(struct cr_digest *d);

/* Standard base64 (with padding) of n bytes into out, which must hold
 * 4 * ((n + 2) / 3) + 1 bytes; returns the length written (NUL excluded). */
size_t cr_base64_encode(const void *in, size_t n, char *out);

/* HMAC-SHA256 of data under key, raw 32 bytes. */
void cr_hmac_sha256(const void *key, size_t klen, const void *data, size_t len,
                    unsigned char out[32]);

/*
 * A key made ready for many HMAC-SHA256s: its padded blocks are hashed once
 * here, so that each MAC costs a quarter of cr_hmac_sha256()'s (the
 * cluster port signs and checks two per request). Read-only once made:
 * any number of threads may use it at once.
 * @return the key, or NULL (out of memory); free with cr_hmac_key_free().
 */
struct cr_hmac_key;
struct cr_hmac_key *cr_hmac_key_new(const void *key, size_t klen);
/* NULL is fine. */
void cr_hmac_key_free(struct cr_hmac_key *k);
/*
 * HMAC-SHA256 of data under k, raw 32 bytes (the same as cr_hmac_sha256()
 * with k's bytes). GR_OK, or GR_ENOMEM (out is then unusable: compare
 * nothing with it).
 */
int cr_hmac_sha256_k(const struct cr_hmac_key *k, const void *data, size_t len,
                     unsigned char out[32]) __attribute__((warn_unused_result));

/* n cryptographically random bytes; 0, or GR_EIO if the RNG failed. */
int cr_random(void *buf, size_t n) __attribute__((warn_unused_result));

/* A random password of len characters from [A-Za-z0-9] into out[len+1]. */
int cr_random_password(char *out, size_t len) __attribute__((warn_unused_result));

/*
 * Authenticated encryption (AES-256-GCM) of small secrets at rest (a remote
 * repository's upstream password). cr_seal writes a random 12-byte nonce,
 * the ciphertext and the 16-byte tag: n + CR_SEAL_OVERHEAD bytes into out.
 * cr_open reverses it into out (n - CR_SEAL_OVERHEAD bytes). GR_OK;
 * GR_EIO (the RNG or OpenSSL failed); cr_open: GR_EAUTH when the bytes were
 * not sealed under key (or were changed), GR_EINVAL when too short.
 */
#define CR_SEAL_OVERHEAD 28
int cr_seal(const unsigned char key[32], const void *in, size_t n, unsigned char *out)
    __attribute__((warn_unused_result));
int cr_open(const unsigned char key[32], const unsigned char *in, size_t n, void *out)
    __attribute__((warn_unused_result));

/* Constant-time comparison of two buffers of the same length. */
bool cr_equal(const void *a, const void *b, size_t len);

/*
 * Hash a password for storage: "pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>"
 * with a 16-byte random salt. out must hold CR_PASSWORD_HASH_MAX bytes.
 * Returns 0, or GR_EIO if the RNG or the KDF failed.
 */
#define CR_PASSWORD_HASH_MAX 160
#define CR_PBKDF2_ITERATIONS 100000
int cr_password_hash(const char *password, char out[CR_PASSWORD_HASH_MAX])
    __attribute__((warn_unused_result));

/* True when password matches a string made by cr_password_hash(); constant time. */
bool cr_password_verify(const char *password, const char *stored);

#endif
