/*
 * server.h - the one server struct: everything a running granaryd owns.
 * Only main.c (and granaryctl, for offline tasks) sees it; modules get the
 * narrow parts they need (struct repo_ctx, struct http_options).
 *
 * Start-up order: the steps of main.c (main__steps): data-dir lock, routes,
 * embedded PostgreSQL (when no URL) and pool, cache, filestore, hashing
 * threads, the public port (not ready), then migrations, cache validation
 * and the first admin, retried until the database answers; cluster,
 * storage and the cluster port; plugins; then readiness. Shutdown quiesces
 * both ports, then runs the steps' stops backwards.
 */
#ifndef GR_SERVER_H
#define GR_SERVER_H

#include "config.h"
#include "repo/repo.h"

#include <signal.h>
#include <stdbool.h>

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
    sigset_t signals;             /* SIGTERM, SIGINT, SIGHUP: taken by main's thread only */
    bool first_admin;             /* this start created the admin user */
    char first_pw[33];            /* its password, until the banner showed it */
    bool clean;                   /* stopping after a full start (or a stop asked while starting) */
};

#endif
