/* err.c - text and HTTP status for the error codes of err.h. */
#include "err.h"

const char *gr_strerror(int err)
{
    switch (err) {
    case GR_OK:
        return "success";
    case GR_ENOMEM:
        return "out of memory";
    case GR_EINVAL:
        return "invalid input";
    case GR_ENOTFOUND:
        return "not found";
    case GR_EEXIST:
        return "already exists";
    case GR_EIO:
        return "i/o error";
    case GR_EDB:
        return "database unavailable";
    case GR_ECONFLICT:
        return "conflict";
    case GR_ETOOBIG:
        return "too large";
    case GR_EAUTH:
        return "unauthorized";
    case GR_EFORBIDDEN:
        return "forbidden";
    case GR_EUNAVAIL:
        return "service unavailable";
    case GR_ENOSPC:
        return "no space left on device";
    case GR_ESCHEMA:
        return "database schema is newer than this binary";
    case GR_ELOCKED:
        return "data directory is locked by another process";
    case GR_EMETHOD:
        return "method not allowed";
    case GR_ECORRUPT:
        return "stored bytes failed their checksum";
    }
    return "unknown error";
}

int gr_err_http_status(int err)
{
    switch (err) {
    case GR_EINVAL:
        return 400;
    case GR_EAUTH:
        return 401;
    case GR_EFORBIDDEN:
        return 403;
    case GR_ENOTFOUND:
        return 404;
    case GR_EMETHOD:
        return 405;
    case GR_EEXIST:
        return 409;
    case GR_ECONFLICT:
        return 409;
    case GR_ETOOBIG:
        return 413;
    case GR_EDB:
        return 503;
    case GR_EUNAVAIL:
        return 503;
    case GR_ENOSPC:
        return 507;
    default:
        return 500;
    }
}
