/*
 * peer.h - moving binaries between nodes over the cluster port (libcurl).
 *
 * The transport half of replication: push a file to several peers at once,
 * make small calls (commit a stage, delete, quarantine, pull), and stream a
 * binary from a peer without holding it in memory. The caller builds each
 * request's authentication header (the daemon signs with the join key; see
 * daemon/storage/): this module knows URLs and bytes, nothing else.
 *
 * Connections are reused: calls and streams run on sessions taken from a
 * process-wide pool (at most 32 idle), each keeping its kept-alive
 * connection to the peer it last talked to; a session is taken for the
 * same peer when one is idle. Pushes (large uploads, one connection per
 * peer in parallel) make their own connections.
 *
 * Caveats:
 *  - bs_peer_global_init() must run once before any thread uses the rest
 *    (curl_global_init is not thread-safe); bs_peer_global_cleanup() once
 *    after every thread is done with it.
 *  - Every function is thread-safe; a struct bs_peer_stream belongs to one
 *    thread at a time (any thread, not necessarily the one that opened it).
 */
#ifndef BS_PEER_H
#define BS_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One request to one peer, and what came back. */
struct bs_peer_req {
    const char *url;   /* in: absolute URL */
    const char *auth;  /* in: full header line "Name: value", or NULL */
    const char *auth2; /* in: another header line, or NULL */
    const char *extra; /* in: another header line, or NULL */
    /* in: the name of an answer header to keep in header[], or NULL */
    const char *keep_header;
    int status;       /* out: HTTP status, 0 when no answer */
    char header[160]; /* out: keep_header's value ("" when absent or longer) */
    char body[512];   /* out: the answer's first bytes, NUL-terminated */
    size_t body_len;  /* out: bytes in body */
    bool truncated;   /* out: the answer's body was longer than body holds */
    char error[128];  /* out: transport error text when status is 0 */
};

/* Once per process, before threads use this module. 0 or -1. */
int bs_peer_global_init(void);
/* Once per process, when no thread uses this module any more: frees the idle sessions. */
void bs_peer_global_cleanup(void);

/* Counters since the start (for metrics and tests). */
struct bs_peer_stats {
    uint64_t sessions_created; /* sessions made (none idle for that peer) */
    uint64_t sessions_reused;  /* sessions taken from the pool */
    uint64_t connections;      /* TCP connections opened by calls and streams (and pushes) */
    int idle;                  /* sessions in the pool now */
};
void bs_peer_stats(struct bs_peer_stats *out);

/*
 * PUT the first size bytes of the file at path to every reqs[i].url in
 * parallel (one connection each), streamed from the file.
 * @param[in] stall_s  a transfer that moves no byte for this long fails
 *                      (there is no limit on the whole transfer)
 * @note Fills status/body/error of each request; never fails as a whole.
 */
void bs_peer_push(const char *path, uint64_t size, struct bs_peer_req *reqs, int n, int stall_s);

/*
 * A PUT whose body is given as it arrives (chunked), to several peers at
 * once: one connection each, fed from one ring of PEER_TEE_RING bytes, so
 * a write blocks only while the slowest peer is a whole ring behind. A peer
 * that fails or answers early drops out; the others go on. Not
 * thread-safe: one thread drives a tee (any thread, one at a time).
 */
struct bs_peer_tee;

/*
 * Start the PUTs to reqs[0..n) (reqs must outlive the tee: each one's
 * status, body and error are filled as its transfer ends).
 * @param[in] stall_s  a peer that takes no byte for this long while bytes
 *                     wait for it, or that does not answer this long after
 *                     the last byte, is given up
 * @return 0 with *out set, -1 (out of memory; nothing started).
 */
int bs_peer_tee_open(struct bs_peer_req *reqs, int n, int stall_s, struct bs_peer_tee **out);
/* len more bytes of the body to every peer still in; returns how many are still in. */
int bs_peer_tee_write(struct bs_peer_tee *t, const void *data, size_t len);
/* The body is complete: let the peers know without waiting for them. */
void bs_peer_tee_end(struct bs_peer_tee *t);
/* After bs_peer_tee_end(): wait until every peer has answered or dropped out. */
void bs_peer_tee_finish(struct bs_peer_tee *t);
/* Abort what still runs and free the tee. NULL is fine. */
void bs_peer_tee_free(struct bs_peer_tee *t);

/* A request without a body (method "POST", "DELETE", "GET"); fills status/body/error. */
void bs_peer_call(const char *method, struct bs_peer_req *req, int timeout_s);

/* A download from a peer, pulled by the reader. */
struct bs_peer_stream;

/*
 * Start a GET and wait for the answer's headers (at most timeout_s without
 * progress, then as long as bytes keep coming).
 * @param[in]  range  "bytes=a-b" or NULL
 * @param[out] length Content-Length, or UINT64_MAX when absent
 * @return 0 with *out set (only for status 200 or 206), -1 otherwise
 *         (then *out is NULL and req->error/status say why).
 * @note req's status and header are set when this returns; the stream
 *       keeps no pointer to req (it may go out of scope).
 */
int bs_peer_stream_open(struct bs_peer_req *req, const char *range, int timeout_s,
                        struct bs_peer_stream **out, uint64_t *length);

/*
 * The value of the answer's header name (the last one of that name), as a
 * new string the caller frees; NULL when absent (or out of memory).
 */
char *bs_peer_stream_header(struct bs_peer_stream *s, const char *name);

/*
 * Up to max bytes of the body into buf. Returns the count, 0 at the end of
 * a complete body, -1 on a transport error or a body shorter than announced.
 */
ssize_t bs_peer_stream_read(struct bs_peer_stream *s, void *buf, size_t max);

/* Abort or finish the transfer and free it. NULL is fine. */
void bs_peer_stream_close(struct bs_peer_stream *s);

#endif
