/*
 * s3.h - a small S3 client for the s3 binary provider (provider_s3.c):
 * objects put from a local file (one PUT, or a multipart upload whose parts
 * are retried), ranged GETs into a buffer, HEAD, DELETE and ListObjectsV2.
 * Every request is signed with AWS Signature Version 4 by libcurl
 * (CURLOPT_AWS_SIGV4) and carries the payload's sha256 in
 * x-amz-content-sha256, which the store checks against the body.
 *
 * Thread-safe: a struct s3 keeps a small pool of curl handles (and their
 * kept-alive connections) shared by all threads.
 */
#ifndef STORAGE_S3_H
#define STORAGE_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct s3_config {
    const char *endpoint;   /* "http://127.0.0.1:4568", "https://s3.eu-west-1.amazonaws.com" */
    const char *bucket;     /* the bucket */
    const char *region;     /* "us-east-1" */
    const char *prefix;     /* prepended to every key ("" or "granary/"): [A-Za-z0-9._/-] */
    const char *access_key; /* the key id */
    const char *secret_key; /* the secret; copied, never logged */
    bool path_style;        /* endpoint/bucket/key, else bucket.host/key */
    int timeout_s;          /* a request that moves no byte for this long fails */
};

struct s3;

/* A copy of c. GR_OK, GR_EINVAL (a missing field, or a prefix with other characters), GR_ENOMEM. */
int s3_open(const struct s3_config *c, struct s3 **out) __attribute__((warn_unused_result));
/* Free; NULL is fine. */
void s3_close(struct s3 *s);

/*
 * The result of every call: GR_OK; GR_ENOTFOUND (404); GR_EAUTH (401/403:
 * the signature or the credentials were refused); GR_EUNAVAIL (no answer,
 * a timeout or a 5xx: the store is down or overloaded); GR_EIO (any other
 * answer). err (when not NULL) gets a short reason, the store's error code
 * included ("403 SignatureDoesNotMatch").
 */

/*
 * PUT len bytes of fd from off as key. sha256_hex: the payload's sha256 (the
 * store checks the body against it); checksum_b64: base64 of the same
 * digest sent as x-amz-checksum-sha256 (stores that keep checksums check
 * it too) or NULL.
 */
int s3_put_fd(struct s3 *s, const char *key, int fd, uint64_t off, uint64_t len,
              const char *sha256_hex, const char *checksum_b64, char *err, size_t errsz)
    __attribute__((warn_unused_result));
/* PUT a small buffer as key. */
int s3_put_buf(struct s3 *s, const char *key, const void *buf, size_t len, char *err, size_t errsz)
    __attribute__((warn_unused_result));

/* Multipart upload: create (upload id into id), one part (its ETag into etag), complete, abort. */
int s3_mp_create(struct s3 *s, const char *key, char id[256], char *err, size_t errsz)
    __attribute__((warn_unused_result));
int s3_mp_part(struct s3 *s, const char *key, const char *id, int part, int fd, uint64_t off,
               uint64_t len, char etag[80], char *err, size_t errsz)
    __attribute__((warn_unused_result));
int s3_mp_complete(struct s3 *s, const char *key, const char *id, char (*etags)[80], int n,
                   char *err, size_t errsz) __attribute__((warn_unused_result));
void s3_mp_abort(struct s3 *s, const char *key, const char *id);

/*
 * GET bytes [off, off + len) of key into buf (room for len). *got: the
 * bytes received; *size: the object's size (from Content-Range or
 * Content-Length). len 0: the whole object, at most max bytes (a larger
 * object is GR_ETOOBIG).
 */
int s3_get(struct s3 *s, const char *key, uint64_t off, uint64_t len, void *buf, size_t max,
           size_t *got, uint64_t *size, char *err, size_t errsz)
    __attribute__((warn_unused_result));
/* HEAD: the object's size. */
int s3_head(struct s3 *s, const char *key, uint64_t *size, char *err, size_t errsz)
    __attribute__((warn_unused_result));
/* DELETE (GR_OK also when it did not exist, as S3 answers). */
int s3_delete(struct s3 *s, const char *key, char *err, size_t errsz)
    __attribute__((warn_unused_result));
/*
 * Every key under the prefix pfx (relative to the configured prefix), in
 * key order, from strictly after `after` ("" or NULL: the start): fn(arg,
 * key relative to the configured prefix, size); fn's non-zero value stops
 * the walk and is returned.
 */
int s3_list(struct s3 *s, const char *pfx, const char *after,
            int (*fn)(void *arg, const char *key, uint64_t size), void *arg, char *err,
            size_t errsz);

/* Requests sent and failed (answers other than 2xx and 404, and no answer). */
void s3_counts(struct s3 *s, uint64_t *requests, uint64_t *failures);

#endif
