/*
 * http.h - the public HTTP listener (libmicrohttpd, thread pool + epoll).
 *
 * The only module that includes microhttpd.h. main starts it once the
 * repository context is ready, flips readiness, and on SIGTERM quiesces it
 * (no new connections, readiness 503), waits for in-flight requests and
 * stops it.
 */
#ifndef HTTP_H
#define HTTP_H

#include <stdbool.h>
#include <stdint.h>

struct repo_ctx;
struct http_server;
struct format;

struct http_options {
    const char *host;
    int port;
    int threads;             /* worker threads (>= 1) */
    int connection_timeout;  /* seconds */
    int header_timeout;      /* seconds from connect (or the last answer) to a full request head */
    int max_conn_per_client; /* per client address; 0: no limit */
    uint64_t max_body_size;  /* 0: unlimited */
    /* comma-separated CIDRs (base/cidr.h) of proxies whose X-Forwarded-For names the
     * client, for throttling and the audit log; NULL or "": none */
    const char *trusted_proxy;
    const char *version;
    int session_lifetime; /* seconds a web UI session lives (docs/ui.md); <= 0: 8 hours */
    bool internal;        /* the cluster port (storage/cluster_api.c), not the public API */
    /* the package formats (formats/format.h, the registry's list, NULL-ended):
     * repositories' types, settings and artifact handlers */
    const struct format *const *formats;
};

/*
 * Bind and start serving (readiness is off until http_set_ready()).
 * @return GR_OK, GR_EIO (cannot bind: the message is logged), GR_ENOMEM.
 * @note ctx must outlive the server.
 */
int http_start(const struct http_options *o, struct repo_ctx *ctx, struct http_server **out)
    __attribute__((warn_unused_result));

/* Readiness as /api/v1/system/readiness reports it. */
void http_set_ready(struct http_server *h, bool ready);

/* Stop accepting connections (existing ones go on); readiness turns 503. */
void http_quiesce(struct http_server *h);

/* Requests being processed right now. */
int http_active_requests(struct http_server *h);
/* Connections open on the port, idle keep-alive ones included. */
int http_open_connections(struct http_server *h);

struct gr_sbuf;
/* A writer of Prometheus text lines (the database's, the cache's, the
 * cluster's, the storage's figures) for GET /api/v1/metrics. */
typedef void (*http_metrics_fn)(void *arg, struct gr_sbuf *sb);
/* Add one before serving starts (at most 16). GR_EINVAL when full. */
int http_metrics_add(http_metrics_fn fn, void *arg) __attribute__((warn_unused_result));

/* Close every connection and free the server. NULL is fine. */
void http_stop(struct http_server *h);

#endif
