/*
 * route.h - the one route table (route.c): every endpoint of both ports is
 * a row of method mask, path, match kind, authentication, metrics label
 * and handler, as Redis's command table. The core's rows are route.c's
 * own; formats (formats/format.h) and the storage layer add theirs at
 * start, before http_start(), through http_routes_add().
 *
 * Matching: an exact row before any prefix row, then the longest prefix;
 * "/artifactory" in front of a path is stripped first. A public path that
 * no row matches is /<repo>/<path> (the artifact handler). Rows are read
 * by every request thread: they are added once, before serving starts.
 */
#ifndef HTTP_ROUTE_H
#define HTTP_ROUTE_H

#include <stdbool.h>

struct http_req;

/* Method masks (bits of enum http_method, http/req.h). */
#define HTTP_M_GET 0x01u
#define HTTP_M_HEAD 0x02u
#define HTTP_M_PUT 0x04u
#define HTTP_M_POST 0x08u
#define HTTP_M_DELETE 0x10u
#define HTTP_M_READ (HTTP_M_GET | HTTP_M_HEAD)
#define HTTP_M_ANY 0u /* the handler answers 405 itself */

enum http_route_match {
    HTTP_EXACT,  /* the path and nothing else */
    HTTP_PREFIX, /* the path and anything after it: the handler gets the rest */
};

enum http_route_auth {
    HTTP_OPEN,     /* answered before readiness and authentication (health checks) */
    HTTP_AUTH,     /* readiness, then the caller's credentials (none: anonymous) */
    HTTP_INTERNAL, /* the cluster port: the handler checks the join-key signature */
    HTTP_SESSION,  /* as HTTP_AUTH, but a UI session cookie that no longer holds reads as
                      no credentials (r->session_ended), not 401: the UI's session
                      endpoints and / */
    /* the handler calls http_authenticate() itself, after setting its error
     * shape and headers, so the core's refusals (401, 429, 503) reach its
     * clients in that shape: the OCI registry */
    HTTP_BYHAND,
};

struct http_route {
    const char *path; /* "/api/storage/"; NULL ends a table */
    enum http_route_match match;
    unsigned methods; /* HTTP_M_* mask; HTTP_M_ANY: every method reaches the handler */
    enum http_route_auth auth;
    const char *label; /* the route of metrics and the access log ("storage") */
    /* rest: the raw (still percent-encoded) text after path, in the request's arena */
    void (*handler)(struct http_req *r, const char *rest);
};

/* Metric labels one process can have (one per distinct label). */
#define HTTP_ROUTE_LABELS_MAX 48

/*
 * Add rows (ended by a row with a NULL path) to the table. Call before
 * http_start(). @return GR_OK; GR_EINVAL when a row's path is already in
 * the table with the same match kind, or the table or the labels are full
 * (logged).
 */
int http_routes_add(const struct http_route *rows) __attribute__((warn_unused_result));

#endif
