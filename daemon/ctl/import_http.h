/*
 * import_http.h - the few calls of granary's HTTP API that `granaryctl
 * import` makes, over libcurl (the only curl user in daemon/ctl/).
 *
 * One struct imp_http per thread: it owns a curl easy handle, whose
 * connection is kept alive between calls. 5xx answers, 408, 429 and
 * connection errors are retried with exponential backoff; other answers
 * are returned. imp_http_global_init() must run once before any thread.
 */
#ifndef IMP_HTTP_H
#define IMP_HTTP_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

/* Where and as whom; the strings must outlive every imp_http made from it. */
struct imp_server {
    const char *base;            /* "http://host:port[/prefix]", no trailing slash */
    const char *user;            /* Basic auth */
    const char *password;        /* Basic auth */
    int retries;                 /* extra attempts after a retryable failure */
    uint64_t limit_rate;         /* bytes/s of one upload; 0: no limit */
    volatile sig_atomic_t *stop; /* set by a signal: abort transfers and retries */
};

/* The three hex digests of one content (lowercase). */
struct imp_sums {
    char sha256[65];
    char sha1[41];
    char md5[33];
};

/* How a call ended. */
enum imp_rc {
    IMP_OK = 0,     /* 2xx (the file is there / was stored) */
    IMP_ABSENT = 1, /* 404: no such path (stat) or binary (checksum deploy) */
    IMP_EFAIL = -1, /* a non-retryable answer, or retries exhausted: see msg */
    IMP_ESTOP = -2, /* interrupted by the stop flag */
};

/* An HTTP status (0 when no answer arrived) and a message for the report:
 * the server's JSON error message, or the transport error. */
struct imp_answer {
    long status;
    char msg[512];
};

struct imp_http;

/* Call once, before any thread starts; 0 or -1. */
int imp_http_global_init(void) __attribute__((warn_unused_result));
void imp_http_global_cleanup(void);

/* A client for one thread; NULL means out of memory. */
struct imp_http *imp_http_new(const struct imp_server *srv);
void imp_http_free(struct imp_http *h);

/* How many requests this client has sent again after a retryable failure. */
uint64_t imp_http_retried(const struct imp_http *h);

/*
 * GET /api/repositories/{repo}: the pre-flight check of the URL, the
 * credentials and the repository. IMP_OK, IMP_ABSENT (no such repository)
 * or IMP_EFAIL/IMP_ESTOP with ans filled (401: wrong user or password).
 */
int imp_http_repo_check(struct imp_http *h, const char *repo, struct imp_answer *ans)
    __attribute__((warn_unused_result));

/*
 * GET /api/storage/{repo}/{path}: IMP_OK with the stored sha256 in
 * sha256_out ("" for a folder), IMP_ABSENT, or an error.
 */
int imp_http_stat(struct imp_http *h, const char *repo, const char *path, char sha256_out[65],
                  struct imp_answer *ans) __attribute__((warn_unused_result));

/* PUT with X-Checksum-Deploy: IMP_OK (201: deployed from a binary the
 * server has; nothing sent), IMP_ABSENT (404: it lacks the binary), or an
 * error. */
int imp_http_put_checksum(struct imp_http *h, const char *repo, const char *path,
                          const struct imp_sums *sums, struct imp_answer *ans)
    __attribute__((warn_unused_result));

/*
 * PUT the content of fd (size bytes from offset 0, streamed, never loaded
 * whole) with the X-Checksum-* headers, so that the server verifies it
 * (409 on a mismatch). Each byte read is added to *progress (NULL: none),
 * and taken back on a retry or a failure: after IMP_OK it grew by size,
 * otherwise not at all. IMP_OK or an error; fd is rewound for each try.
 */
int imp_http_put_file(struct imp_http *h, const char *repo, const char *path, int fd, uint64_t size,
                      const struct imp_sums *sums, _Atomic uint64_t *progress,
                      struct imp_answer *ans) __attribute__((warn_unused_result));

#endif
