/*
 * server.h - the one server struct: everything a running granaryd owns.
 * Only main.c (and granaryctl, for offline tasks) sees it; modules get the
 * narrow parts they need (struct repo_ctx, struct http_options).
 *
 * Start-up order: config, data-dir lock, embedded PostgreSQL (when no URL),
 * pool, local stores (cache, blobs), HTTP (not ready), then migrations, cache
 * validation and the first admin, retried until the database answers;
 * then readiness. Shutdown runs the same list backwards.
 */
#ifndef GR_SERVER_H
#define GR_SERVER_H

#include "config.h"
#include "repo/repo.h"

struct cluster;
struct db_embedded;
struct http_server;

struct server {
    struct config cfg;
    int lock_fd;                  /* flock on <data>/granary.lock */
    struct db_embedded *embedded; /* NULL with an external database */
    const char *conninfo;         /* the URL, or the embedded server's */
    struct repo_ctx ctx;
    struct http_server *http;
    struct cluster *cluster;      /* NULL on a single node */
    struct storage *storage;      /* redundant binary storage (storage/storage.h) */
    struct http_server *internal; /* the cluster port; NULL without one */
};

#endif
