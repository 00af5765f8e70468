/*
 * internal.h - what the files of remote/ share (not for other modules).
 */
#ifndef REMOTE_INTERNAL_H
#define REMOTE_INTERNAL_H

#include "remote/remote.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define REMOTE_VIRTUAL_DEPTH 8    /* nested virtual repositories resolved at most */
#define REMOTE_VIRTUAL_MEMBERS 64 /* members of one virtual repository */
#define REMOTE_HEARTBEAT_MS 1000  /* tickets' heartbeats, and the waiters' poll */
#define REMOTE_STALE_MS 5000      /* a ticket without a heartbeat this long is taken over */
#define REMOTE_HOLD (64 * 1024)   /* bytes held back from readers until the body checked out */
#define REMOTE_FAIL_KEEP_S 5      /* an upstream error is remembered this long for the waiters */
#define REMOTE_MERGED_MAX 256     /* merged documents kept */
#define REMOTE_MERGED_BYTES (64u << 20)

struct remote_waiter {
    struct remote_waiter *next;
    char *repo, *path; /* malloc'd */
    void (*fn)(void *arg);
    void *arg;
};

struct remote_merged {
    char *key, *doc;
    size_t len;
    uint64_t gen, used;
    int64_t expires_ms;
};

struct remote {
    struct repo_ctx *ctx;
    char node[80];
    unsigned char seal_key[32];
    pthread_mutex_t mu;
    pthread_cond_t cv;             /* the fetch queue, and stopping */
    pthread_cond_t beat_cv;        /* the heartbeat thread's sleep (stopping) */
    uint64_t events;               /* wake-ups so far (remote_wait's lost-wakeup check) */
    struct remote_flight *flights; /* fetches of this node not ended yet */
    struct remote_flight *qhead, *qtail;
    struct remote_waiter *waiters;
    bool quiescing, stopping;
    atomic_bool stop; /* stopping, read by transfers without the lock */
    pthread_t *threads;
    int nthreads;
    pthread_t beat;
    bool beat_started;
    /* merged documents */
    atomic_uint_fast64_t gen;
    pthread_mutex_t merged_mu;
    struct remote_merged merged[REMOTE_MERGED_MAX];
    size_t merged_bytes;
    uint64_t merged_clock;
    /* counters */
    atomic_uint_fast64_t fetches, fetch_failures, fetch_bytes, joined, waited, takeovers,
        merged_hits;
};

enum remote_flight_state {
    REMOTE_FL_QUEUED,   /* waiting for a fetch thread */
    REMOTE_FL_BODY,     /* the upstream answered 200: bytes arriving */
    REMOTE_FL_VERIFIED, /* the whole body checked out: readers may read all */
    REMOTE_FL_FAILED,   /* status and reason say why */
};

struct ingest;
struct cr_digest;

struct remote_flight {
    struct remote *rm;
    atomic_int refs;
    struct remote_flight *next;  /* rm->flights */
    struct remote_flight *qnext; /* rm's queue */
    char *repo, *path;           /* in a */
    struct gr_arena *a;          /* the fetch's: its strings, its ingest */
    struct remote_settings s;
    const char *password;
    struct remote_spec spec;
    bool commit;   /* storeArtifactsLocally */
    int64_t token; /* its ticket, 0: none */
    struct ingest *in;
    int rfd; /* the arriving file, for readers */
    /* under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    enum remote_flight_state state;
    bool headers; /* the upstream's answer is known (state past QUEUED) */
    bool ended;   /* out of rm->flights */
    int status;   /* the upstream's; on failure the answer's (404, 502, 504) */
    char reason[512];
    uint64_t length, written;
    char ctype[128];
};

/* The upstream of one fetch (upstream.c). */
struct remote_upstream {
    const char *base; /* the repository's url */
    const char *user, *password;
    long timeout_ms;
    const char *accept;
    struct remote *rm; /* stopping aborts transfers */
};

/* One streamed GET's answer (upstream.c). */
struct remote_answer {
    int status;      /* 0: no answer */
    uint64_t length; /* UINT64_MAX unknown */
    char ctype[128];
    struct remote_sums sums; /* the X-Checksum-* headers */
    bool unreachable; /* no answer at all: connection refused, no such host, timeout before it */
    bool timed_out;
    bool stopped; /* the on_headers or on_data callback refused, or the node stops */
    char error[256];
};

/*
 * GET upath of up, streaming: on_headers once the final answer's headers
 * are in (non-zero: no body wanted), on_data per chunk of a 200's body
 * (non-zero: abort). GR_OK when the transfer completed (any status); GR_EIO
 * otherwise (ans says why).
 */
int remote__fetch(struct remote_upstream *up, const char *upath,
                  int (*on_headers)(void *arg, const struct remote_answer *ans),
                  int (*on_data)(void *arg, const void *data, size_t len), void *arg,
                  struct remote_answer *ans);

/* Seal a password under rm's key: "sealed:v1:<hex>" in a (settings.c). */
int remote__seal(struct remote *rm, struct gr_arena *a, const char *clear, const char **out)
    __attribute__((warn_unused_result));

/* Wake every waiter on repo/path (path NULL: every waiter). */
void remote__wake(struct remote *rm, const char *repo, const char *path);

/* Drop every merged document (merged.c). */
void remote__merged_clear(struct remote *rm);

#endif
