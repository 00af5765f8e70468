/*
 * err.h - the one error enum of granary and its mapping to text and HTTP.
 *
 * Actions return int: 0 (GR_OK) on success, one of the negative codes below
 * on failure. Libraries (lmdb-cache, blobstore) have their own enums; the
 * daemon maps them to these at its boundary.
 */
#ifndef GR_ERR_H
#define GR_ERR_H

enum gr_err {
    GR_OK = 0,
    GR_ENOMEM = -1,      /* allocation failed */
    GR_EINVAL = -2,      /* bad input from a client or a caller */
    GR_ENOTFOUND = -3,   /* no such repository, artifact, user, ... */
    GR_EEXIST = -4,      /* already exists */
    GR_EIO = -5,         /* local disk or system call failure */
    GR_EDB = -6,         /* database unavailable or a query failed */
    GR_ECONFLICT = -7,   /* checksum mismatch, state conflict */
    GR_ETOOBIG = -8,     /* a body, path or header over its limit */
    GR_EAUTH = -9,       /* missing or wrong credentials */
    GR_EFORBIDDEN = -10, /* authenticated but not allowed */
    GR_EUNAVAIL = -11,   /* not ready, draining or shutting down */
    GR_ENOSPC = -12,     /* disk full */
    GR_ESCHEMA = -13,    /* database schema newer than this binary knows */
    GR_ELOCKED = -14,    /* data directory used by another process */
    GR_EMETHOD = -15,    /* method not allowed on this resource */
    GR_ECORRUPT = -16,   /* stored bytes failed their checksum */
};

/* Short lowercase text for an error code; never NULL, static storage. */
const char *gr_strerror(int err);

/* The HTTP status that answers a request failing with err (500 if unknown). */
int gr_err_http_status(int err);

#endif
