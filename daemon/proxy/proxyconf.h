/*
 * proxyconf.h - reverse-proxy configurations (nginx, Apache, HAProxy) for a
 * granary cluster, written from a node list. Pure: no I/O, no daemon state;
 * granaryd (GET /api/system/configuration/reverseProxy/{type}) and
 * `granaryctl proxy-config` both call it (docs/operations.md).
 *
 * What every configuration does: the active nodes' public URLs are the
 * upstreams (draining and down nodes get no new requests; the cluster port
 * is never named); readiness (/api/v1/system/readiness) is the health check
 * where the proxy has active checks (HAProxy, Apache's mod_proxy_hcheck) and
 * a failed connection or a 502/503 marks a node down quickly and sends
 * idempotent requests to the next node (nginx's proxy_next_upstream);
 * unlimited bodies streamed without buffering; long read timeouts;
 * X-Forwarded-For/-Proto/-Host/-Port; TLS termination when a certificate
 * and key are given.
 */
#ifndef PROXYCONF_H
#define PROXYCONF_H

#include "base/sbuf.h"

#include <stdbool.h>

enum pc_type { PC_NGINX, PC_APACHE, PC_HAPROXY };

/* One node as cluster_status() or GET /api/system/cluster describes it. */
struct pc_node {
    const char *id;
    const char *url;   /* public URL: "http://host:port[/]" */
    const char *state; /* "active", "draining", "down" */
};

/* Seconds an idle connection to a node stays in the balancer's pool. */
#define PC_IDLE_S 10

/* Options; NULL or 0 members take the defaults in brackets. */
struct pc_options {
    const char *listen;        /* plain HTTP listener, "[host:]port" ["80"] */
    const char *server_name;   /* ["_" for nginx, "granary" elsewhere] */
    const char *tls_cert;      /* PEM certificate: with tls_key, TLS is on */
    const char *tls_key;       /* PEM private key */
    const char *tls_listen;    /* TLS listener, "[host:]port" ["443"] */
    int read_timeout_s;        /* upstream read/send timeout [900] */
    int fail_timeout_s;        /* a failed node is skipped this long [5] */
    const char *upstream_name; /* ["granary"] */
    /* idle connections kept open to the nodes (nginx keepalive, Apache
     * connection reuse, HAProxy http-reuse) [32 for nginx and Apache, which
     * close them after PC_IDLE_S; HAProxy: none]; < 0: a new connection per
     * request. Safe because the balancer closes idle connections before a
     * node would (its header deadline, 20 s), and a stopping node closes
     * none itself: it answers `Connection: close` (docs/operations.md). */
    int keepalive;
};

/* "nginx", "apache" (or "apache2"), "haproxy": 0 and *out, or GR_EINVAL. */
int pc_type_parse(const char *s, enum pc_type *out) __attribute__((warn_unused_result));

/* The file name a type's configuration is usually given ("granary.conf", ...). */
const char *pc_type_name(enum pc_type t);

/*
 * Append the configuration for the nodes to out. Nodes whose state is not
 * "active" are left out. When no node is active, every node with a usable
 * URL is listed, as if active: more likely the view is wrong (heartbeats
 * late on an overloaded database) than every node dead, and the proxy's
 * own health checks then decide; a file with no usable upstream would
 * answer 502 to everything.
 * GR_OK; GR_EINVAL when a URL is unusable (not http://host:port or an
 * option holds a character that would break the file) - nothing is then
 * guaranteed about out; GR_ENOTFOUND when nodes is empty.
 */
int pc_write(enum pc_type t, const struct pc_node *nodes, int n, const struct pc_options *o,
             struct gr_sbuf *out) __attribute__((warn_unused_result));

#endif
