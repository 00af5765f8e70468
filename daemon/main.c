/* main.c - granaryd: arguments, start-up and shutdown order, signals. */
#include "server.h"

#include "base/err.h"
#include "base/log.h"
#include "bs.h"
#include "cluster/cluster.h"
#include "crypto/crypto.h"
#include "db/db.h"
#include "db/embedded.h"
#include "db/migrate.h"
#include "formats/format.h"
#include "http/http.h"
#include "http/route.h"
#include "lc.h"
#include "peer.h"
#include "remote/remote.h"
#include "storage/storage.h"
#include "repo/plugins.h"
#include "repo/trash.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int main__lock(struct server *s)
{
    char path[1024];
    snprintf(path, sizeof(path), "%.900s/granary.lock", s->cfg.data_dir);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0) {
        gr_error("cannot open %s: %s", path, strerror(errno));
        return GR_EIO;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        gr_error("data directory %s is in use by another granaryd", s->cfg.data_dir);
        return GR_ELOCKED;
    }
    char pid[24];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(s->lock_fd, 0) == 0 && write(s->lock_fd, pid, (size_t)n) != n)
        gr_warn("cannot write pid to %s", path);
    return GR_OK;
}

/* ---- the wiring between repo and the cluster, which include none of each other ---- */

static void main__cache_apply(void *arg, const struct cluster_key *keys, size_t n)
{
    repo_apply_invalidation(arg, keys, n);
}

static int main__cache_drop(void *arg)
{
    return repo_cache_drop(arg);
}

static uint64_t main__cache_hits(void *arg)
{
    return atomic_load(&((struct repo_ctx *)arg)->cache_hits);
}

static uint64_t main__cache_misses(void *arg)
{
    return atomic_load(&((struct repo_ctx *)arg)->cache_misses);
}

static uint64_t main__primary_token(void *arg)
{
    return cluster_primary_token(arg);
}

/* The storage layer fences the primary's tasks through this (cluster_fence). */
static int main__fence(void *arg, struct db_conn *c, uint64_t token, const char *task,
                       const char *subject)
{
    return cluster_fence(arg, c, token, task, subject);
}

static int main__set_draining(void *arg, bool draining)
{
    return cluster_set_draining(arg, draining);
}

/* Database work that must succeed before the node is ready. */
static int main__prepare(struct server *s, bool *first_admin, char pw[33])
{
    int from = 0, to = 0;
    int rc = db_migrate(s->ctx.db, db_migrations, db_migrations_count, &from, &to);
    if (rc)
        return rc;
    if (from != to)
        gr_info("database schema migrated from version %d to %d", from, to);
    bool kept = false;
    rc = repo_cache_start(&s->ctx, &kept);
    if (rc)
        return rc;
    gr_info("metadata cache %s", kept ? "kept (clean stop, no change since)" : "dropped");
    if (s->cfg.anonymous_read >= 0) {
        rc = settings_set_anonymous_read(&s->ctx, s->cfg.anonymous_read == 1);
        if (rc)
            return rc;
    }
    return auth_bootstrap_admin(&s->ctx, s->cfg.data_dir, pw, first_admin);
}

/* A join key file's bytes, trailing blanks dropped; -1 when unreadable. */
static ssize_t main__read_key(const char *path, unsigned char *key, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, key, size) : -1;
    if (fd >= 0)
        close(fd);
    while (n > 0 && (key[n - 1] == '\n' || key[n - 1] == '\r' || key[n - 1] == ' '))
        n--;
    return n;
}

/*
 * Join the cluster when a join key is configured; otherwise make sure this
 * database does not belong to a cluster (a node without the key would serve
 * from a cache nobody invalidates).
 */
static int main__cluster(struct server *s, unsigned char key[256], size_t *key_len,
                         unsigned char next[256], size_t *next_len)
{
    *key_len = 0;
    *next_len = 0;
    if (!s->cfg.join_key_file[0]) {
        struct db_res *res = NULL;
        int rc = db_exec1(s->ctx.db, &res,
                          "SELECT 1 FROM settings WHERE key = 'cluster_key_verifier'", 0, NULL);
        int rows = rc == GR_OK ? db_res_rows(res) : 0;
        db_res_free(res);
        if (rc)
            return rc;
        if (rows > 0) {
            gr_error("this database belongs to a cluster: start with --join-key-file");
            return GR_EAUTH;
        }
        return GR_OK;
    }
    ssize_t n = main__read_key(s->cfg.join_key_file, key, 256);
    if (n < 16) {
        gr_error("join key file %s: unreadable or shorter than 16 bytes", s->cfg.join_key_file);
        return GR_EAUTH;
    }
    ssize_t nn = 0;
    if (s->cfg.join_key_next_file[0]) {
        nn = main__read_key(s->cfg.join_key_next_file, next, 256);
        if (nn < 16) {
            gr_error("join key file %s: unreadable or shorter than 16 bytes",
                     s->cfg.join_key_next_file);
            return GR_EAUTH;
        }
    }
    if (!s->cfg.bus_listen[0]) {
        gr_error("a cluster node needs --bus-listen HOST:PORT");
        return GR_EINVAL;
    }
    char public_url[300];
    if (s->cfg.public_url[0])
        snprintf(public_url, sizeof(public_url), "%s", s->cfg.public_url);
    else
        snprintf(public_url, sizeof(public_url), "http://%.200s:%d", s->cfg.listen_host,
                 s->cfg.listen_port);
    char cluster_url[300] = "";
    if (s->cfg.cluster_listen[0])
        snprintf(cluster_url, sizeof(cluster_url), "http://%.250s", s->cfg.cluster_listen);
    struct cluster_options co = {
        .db = s->ctx.db,
        .cache = {main__cache_apply, main__cache_drop, main__cache_hits, main__cache_misses,
                  &s->ctx},
        .node_id = s->cfg.node_id,
        .public_url = public_url,
        .cluster_url = cluster_url,
        .bus_listen = s->cfg.bus_listen,
        .zone = s->cfg.zone,
        .version = GRANARY_VERSION,
        .key = key,
        .key_len = (size_t)n,
        .next_key = nn > 0 ? next : NULL,
        .next_key_len = (size_t)nn,
        .lease_ms = s->cfg.lease_ms,
        .heartbeat_ms = s->cfg.heartbeat_ms,
        .down_after_ms = s->cfg.down_after_ms,
        .remove_down_after_s = s->cfg.remove_down_after,
        .bus_timeout_ms = s->cfg.bus_timeout_ms,
        .preferred_primary = s->cfg.preferred_primary == 1,
    };
    *key_len = (size_t)n;
    *next_len = (size_t)nn;
    int rc = cluster_start(&co, &s->cluster);
    if (rc)
        return rc;
    /* repo calls the cluster through these: it includes none of its functions */
    s->ctx.hooks = (struct repo_hooks){cluster_cache_ok, cluster_invalidate, main__primary_token,
                                       main__set_draining, s->cluster};
    s->ctx.cluster = s->cluster;
    return GR_OK;
}

/*
 * Redundant storage (storage/storage.h), and the cluster port that peers reach
 * it through when this node is in a cluster.
 */
/* The storage layer asks the cluster through this (no include of cluster/ there). */
static bool main__is_primary(void *arg)
{
    return cluster_is_primary(arg);
}

/* A key from a file's first line into out, else from the setting itself (the environment). */
static int main__s3_key(const char *file, const char *value, char *out, size_t n)
{
    snprintf(out, n, "%s", value);
    if (!file[0])
        return GR_OK;
    FILE *f = fopen(file, "r");
    if (!f) {
        gr_error("cannot read %s: %s", file, strerror(errno));
        return GR_EIO;
    }
    if (!fgets(out, (int)n, f))
        out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    return GR_OK;
}

static int main__blobs(struct server *s, const unsigned char *key, size_t key_len,
                       const unsigned char *next, size_t next_len)
{
    char ak[256], sk[256];
    if (main__s3_key(s->cfg.s3_access_key_file, s->cfg.s3_access_key, ak, sizeof(ak)) ||
        main__s3_key(s->cfg.s3_secret_key_file, s->cfg.s3_secret_key, sk, sizeof(sk)))
        return GR_EINVAL;
    char pcache[1024];
    snprintf(pcache, sizeof(pcache), "%.900s/peer-cache", s->cfg.data_dir);
    struct storage_options bo = {
        .node_id = s->cfg.node_id,
        .zone = s->cfg.zone,
        .key = key_len ? key : NULL,
        .key_len = key_len,
        .next_key = next_len ? next : NULL,
        .next_key_len = next_len,
        .accept_v1 = s->cfg.cluster_port_v1 == 1,
        .down_after_ms = s->cfg.down_after_ms,
        .is_primary = main__is_primary,
        .primary_token = main__primary_token,
        .fence = main__fence,
        .primary_arg = s->cluster,
        .db = s->ctx.db,
        .bs = s->ctx.bs,
        .provider = s->cfg.storage_provider,
        .shared_fs_path = s->cfg.shared_fs_path,
        .s3_endpoint = s->cfg.s3_endpoint,
        .s3_bucket = s->cfg.s3_bucket,
        .s3_region = s->cfg.s3_region,
        .s3_prefix = s->cfg.s3_prefix,
        .s3_access_key = ak,
        .s3_secret_key = sk,
        .s3_path_style = s->cfg.s3_path_style,
        .cache_max_bytes = s->cfg.cache_max_bytes,
        .peer_cache_dir = pcache,
    };
    int rc = storage_start(&bo, &s->storage);
    explicit_bzero(sk, sizeof(sk));
    s->ctx.storage = s->storage;
    if (rc || !key_len || !s->cfg.cluster_listen[0])
        return rc;
    char host[256];
    snprintf(host, sizeof(host), "%s", s->cfg.cluster_listen);
    char *colon = strrchr(host, ':');
    if (!colon) {
        gr_error("cluster_listen must be HOST:PORT");
        return GR_EINVAL;
    }
    *colon = '\0';
    struct http_options ho = {
        .host = host,
        .port = atoi(colon + 1),
        .threads = 4,
        .connection_timeout = s->cfg.connection_timeout,
        .version = GRANARY_VERSION,
        .internal = true,
    };
    rc = http_start(&ho, &s->ctx, &s->internal);
    if (rc == GR_OK)
        http_set_ready(s->internal, true);
    return rc;
}

/* The figures of every module below http for GET /api/v1/metrics. */
static void main__metrics(void *arg, struct gr_sbuf *sb)
{
    struct server *s = arg;
    db_metrics(s->ctx.db, sb);
    repo_cache_metrics(&s->ctx, sb);
    cluster_metrics(s->ctx.cluster, sb);
    storage_metrics(s->storage, sb);
    remote_metrics(s->ctx.remote, sb);
}

static bool main__stop_signal(sigset_t *set, int timeout_ms)
{
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    siginfo_t si;
    return sigtimedwait(set, &si, &ts) >= 0; /* < 0: the timeout */
}

/* ---- start-up steps: each starts one part, its stop undoes it ---- */

/* A step's answer when a stop signal came while it waited: a clean exit. */
#define MAIN_STOPPED 1

static int main__start_dir(struct server *s)
{
    if (mkdir(s->cfg.data_dir, 0750) < 0 && errno != EEXIST) {
        gr_error("cannot create data directory %s: %s", s->cfg.data_dir, strerror(errno));
        return GR_EIO;
    }
    return main__lock(s);
}

static void main__stop_dir(struct server *s)
{
    close(s->lock_fd);
}

/* The node's secret, the formats' and modules' routes and metrics: before any port serves. */
static int main__start_routes(struct server *s)
{
    s->ctx.node_id = s->cfg.node_id;
    if (cr_random(s->ctx.node_secret, sizeof(s->ctx.node_secret)))
        return GR_EIO;
    for (int i = 0; formats[i]; i++) {
        if (formats[i]->configure)
            formats[i]->configure(&s->cfg);
        if (formats[i]->routes && http_routes_add(formats[i]->routes))
            return GR_EINVAL;
    }
    if (http_routes_add(cluster_routes) || http_routes_add(storage_routes) ||
        http_metrics_add(main__metrics, s))
        return GR_EINVAL;
    return GR_OK;
}

/* The embedded PostgreSQL (when no URL is given) and the connection pool. */
static int main__start_database(struct server *s)
{
    s->conninfo = s->cfg.database_url;
    if (!s->cfg.database_url[0]) {
        char pgdir[1024];
        snprintf(pgdir, sizeof(pgdir), "%.900s/pg", s->cfg.data_dir);
        int rc = db_embedded_start(pgdir, &s->embedded);
        if (rc) {
            gr_error("cannot start the embedded PostgreSQL: %s", gr_strerror(rc));
            return rc;
        }
        s->conninfo = db_embedded_conninfo(s->embedded);
    }
    if (db_pool_open(s->conninfo, s->cfg.db_pool_size, &s->ctx.db)) {
        gr_error("cannot create the database pool");
        return GR_EDB;
    }
    return GR_OK;
}

static void main__stop_database(struct server *s)
{
    db_pool_close(s->ctx.db);
    if (s->embedded && db_embedded_stop(s->embedded))
        gr_warn("embedded PostgreSQL did not stop cleanly");
}

static int main__start_cache(struct server *s)
{
    char path[1024];
    snprintf(path, sizeof(path), "%.900s/cache", s->cfg.data_dir);
    int rc = lc_open(path, (size_t)s->cfg.cache_size_mb * 1024 * 1024, &s->ctx.cache);
    if (rc)
        gr_error("cannot open the metadata cache in %s: %s", path, lc_strerror(rc));
    return rc ? GR_EIO : GR_OK;
}

static void main__stop_cache(struct server *s)
{
    lc_close(s->ctx.cache);
}

static int main__start_filestore(struct server *s)
{
    char path[1024];
    snprintf(path, sizeof(path), "%.900s/filestore", s->cfg.data_dir);
    int rc = bs_open(path, &s->ctx.bs);
    if (rc)
        gr_error("cannot open the filestore %s: %s", path, bs_strerror(rc));
    return rc ? GR_EIO : GR_OK;
}

static void main__stop_filestore(struct server *s)
{
    bs_close(s->ctx.bs);
}

static int main__cores(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 1 ? (int)cores : 1;
}

static int main__start_hashing(struct server *s)
{
    if (cr_hashpool_start(main__cores(), &s->ctx.hashpool)) {
        gr_error("cannot start the hashing threads");
        return GR_ENOMEM;
    }
    return GR_OK;
}

static void main__stop_hashing(struct server *s)
{
    cr_hashpool_stop(s->ctx.hashpool);
}

/* The public port, not ready yet: health checks answer while the database comes up. */
static int main__start_http(struct server *s)
{
    struct http_options ho = {
        .host = s->cfg.listen_host,
        .port = s->cfg.listen_port,
        /* four per core: an upload blocks its thread in fsync and PostgreSQL,
         * and every connection on that thread waits behind it */
        .threads = s->cfg.threads > 0 ? s->cfg.threads : 4 * main__cores(),
        .connection_timeout = s->cfg.connection_timeout,
        .header_timeout = s->cfg.header_timeout,
        .max_conn_per_client = s->cfg.max_conn_per_client,
        .max_body_size = s->cfg.max_body_size,
        .trusted_proxy = s->cfg.trusted_proxy,
        .version = GRANARY_VERSION,
        .session_lifetime = s->cfg.session_lifetime,
        .formats = formats,
    };
    return http_start(&ho, &s->ctx, &s->http);
}

/* Both ports: the public one first (its requests may be in a plugin or in the storage). */
static void main__stop_http(struct server *s)
{
    remote_quiesce(s->ctx.remote); /* no request may stay suspended when the port stops */
    http_stop(s->http);
    s->http = NULL;
    http_stop(s->internal);
    s->internal = NULL;
}

/* Migrations, cache validation, the first admin: retried until the database answers. */
static int main__start_schema(struct server *s)
{
    for (int attempt = 0;; attempt++) {
        int rc = main__prepare(s, &s->first_admin, s->first_pw);
        if (rc == GR_OK || rc == GR_ESCHEMA || rc == GR_EINVAL)
            return rc;
        if (attempt % 10 == 0)
            gr_warn("database not ready (%s); retrying", gr_strerror(rc));
        if (main__stop_signal(&s->signals, 1000))
            return MAIN_STOPPED;
    }
}

/* The cluster (when a join key is given), the storage layer, the cluster port. */
static void main__stop_cluster(struct server *s);

static int main__start_cluster(struct server *s)
{
    unsigned char key[256], next[256];
    size_t key_len = 0, next_len = 0;
    int rc = main__cluster(s, key, &key_len, next, &next_len);
    if (rc == GR_OK)
        rc = main__blobs(s, key, key_len, next, next_len);
    memset(key, 0, sizeof(key));
    memset(next, 0, sizeof(next));
    if (rc) /* a failed step is not stopped by the caller: the heartbeat
             * thread would still hold a connection when the pool closes */
        main__stop_cluster(s);
    return rc;
}

static void main__stop_cluster(struct server *s)
{
    storage_stop(s->storage);
    s->storage = NULL;
    s->ctx.storage = NULL;
    memset(&s->ctx.hooks, 0, sizeof(s->ctx.hooks));
    s->ctx.cluster = NULL;
    if (s->cluster) {
        /* a cluster node always drops its cache at start: it cannot know that
         * it received every invalidation up to any change counter */
        cluster_stop(s->cluster);
        s->cluster = NULL;
    } else if (s->clean && repo_cache_stop(&s->ctx) != GR_OK) {
        gr_warn("could not record a clean cache stop; the cache will be dropped at next start");
    }
}

/*
 * Remote and virtual repositories (remote/remote.h): the fetch threads, the
 * tickets' heartbeat; invalidations reach it through the cache's watch hook.
 */
static int main__start_remote(struct server *s)
{
    unsigned char key[256];
    ssize_t n = s->cfg.join_key_file[0] ? main__read_key(s->cfg.join_key_file, key, 256) : 0;
    struct remote_options ro = {
        .ctx = &s->ctx,
        .node_id = s->cfg.node_id,
        .key = n > 0 ? key : NULL,
        .key_len = n > 0 ? (size_t)n : 0,
    };
    struct remote *rm = NULL;
    int rc = remote_start(&ro, &rm);
    memset(key, 0, sizeof(key));
    if (rc)
        return rc;
    s->ctx.remote = rm;
    s->ctx.watch = (struct repo_watch){remote_invalidated, rm};
    return GR_OK;
}

static void main__stop_remote(struct server *s)
{
    struct remote *rm = s->ctx.remote;
    memset(&s->ctx.watch, 0, sizeof(s->ctx.watch));
    s->ctx.remote = NULL;
    remote_stop(rm);
}

static int main__start_plugins(struct server *s)
{
    struct plugins_options po = {
        .node_id = s->cfg.node_id,
        .dir = s->cfg.plugins_dir,
        .mem_limit = (size_t)s->cfg.plugins_memory_mb << 20,
        .budget = (uint64_t)s->cfg.plugins_budget_m * 1000000ULL,
        .job_budget = (uint64_t)s->cfg.plugins_job_budget_m * 1000000ULL,
    };
    struct plugins *plugins = NULL;
    int rc = plugins_start(&po, &s->ctx, &plugins);
    if (rc)
        gr_error("cannot start the plugins: %s", gr_strerror(rc));
    return rc;
}

static void main__stop_plugins(struct server *s)
{
    plugins_stop(s->ctx.plugins);
}

/* The start-up order; shutdown quiesces HTTP, then runs the stops backwards. */
static const struct main__step {
    const char *name;
    int (*start)(struct server *s); /* GR_OK, MAIN_STOPPED, or an error (logged) */
    void (*stop)(struct server *s); /* undoes start; NULL: nothing to undo */
} main__steps[] = {
    {"data directory", main__start_dir, main__stop_dir},
    {"routes", main__start_routes, NULL},
    {"database", main__start_database, main__stop_database},
    {"metadata cache", main__start_cache, main__stop_cache},
    {"filestore", main__start_filestore, main__stop_filestore},
    {"hashing threads", main__start_hashing, main__stop_hashing},
    {"public port", main__start_http, main__stop_http},
    {"schema", main__start_schema, NULL},
    {"cluster and storage", main__start_cluster, main__stop_cluster},
    {"remote repositories", main__start_remote, main__stop_remote},
    {"plugins", main__start_plugins, main__stop_plugins},
};
#define MAIN_NSTEPS ((int)(sizeof(main__steps) / sizeof(main__steps[0])))

/* Ready: say so, and the credentials, on stdout. */
static void main__banner(struct server *s)
{
    /* the row first: a load balancer learns of it later than of readiness */
    if (cluster_set_ready(s->cluster) != GR_OK)
        gr_warn("cluster: could not mark this node active; the next heartbeat will");
    http_set_ready(s->http, true);
    const char *shown = strcmp(s->cfg.listen_host, "0.0.0.0") ? s->cfg.listen_host : "127.0.0.1";
    printf("granary %s ready at http://%s:%d/\n", GRANARY_VERSION, shown, s->cfg.listen_port);
    /* a service's stdout is a journal, kept and read by others: the password
     * goes there only when a person watches a terminal */
    if (s->first_admin && isatty(STDOUT_FILENO))
        printf("admin user: admin  password: %s  (also in %s/admin.password)\n", s->first_pw,
               s->cfg.data_dir);
    else
        printf("admin user: admin  password: see %s/admin.password\n", s->cfg.data_dir);
    printf("database: %s\n", s->embedded ? "embedded PostgreSQL under data-dir/pg" : "external");
    fflush(stdout);
    memset(s->first_pw, 0, sizeof(s->first_pw));
}

/*
 * In-flight requests and open connections get shutdown_timeout seconds; then
 * both ports close. The node closes no connection itself before that: a
 * load balancer may be sending a request on an idle one at that moment (a
 * PUT whose body went could not be resent). It answers `Connection: close`
 * instead, and its row says 'draining' so that a watched configuration drops
 * it and the balancer closes its idle connections (the generated ones close
 * them after 10 s anyway; the header deadline cuts a silent client's).
 */
static void main__quiesce(struct server *s)
{
    gr_info("stopping: waiting for in-flight requests and open connections");
    http_quiesce(s->http);
    remote_quiesce(s->ctx.remote); /* requests waiting on a fetch answer 503 now */
    if (s->cluster && cluster_set_draining(s->cluster, true) != GR_OK)
        gr_warn("stopping: could not mark this node draining");
    for (int i = 0; i < s->cfg.shutdown_timeout * 10 &&
                    (http_active_requests(s->http) > 0 || http_open_connections(s->http) > 0);
         i++)
        usleep(100000);
    if (http_active_requests(s->http) > 0)
        gr_warn("%d requests still running at the shutdown timeout", http_active_requests(s->http));
    else if (http_open_connections(s->http) > 0)
        gr_info("stopping: %d idle connections closed at the shutdown timeout",
                http_open_connections(s->http));
    main__stop_http(s);
}

/* Process-wide set-up before any step: logging, signals, libcurl, malloc. */
static int main__process(struct server *s)
{
    gr_log_set_level(!strcmp(s->cfg.log_level, "debug")   ? GR_LOG_DEBUG
                     : !strcmp(s->cfg.log_level, "warn")  ? GR_LOG_WARN
                     : !strcmp(s->cfg.log_level, "error") ? GR_LOG_ERROR
                                                          : GR_LOG_INFO);
    /* signals are taken synchronously by this thread only */
    sigemptyset(&s->signals);
    sigaddset(&s->signals, SIGTERM);
    sigaddset(&s->signals, SIGINT);
    sigaddset(&s->signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &s->signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (bs_peer_global_init()) {
        fprintf(stderr, "granaryd: cannot initialise libcurl\n");
        return GR_ENOMEM;
    }
    /* upload chunks (~128 KiB) come and go all the time: keep them on the
     * heap instead of an mmap/munmap (and page faults) per chunk */
    mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
    return GR_OK;
}

int main(int argc, char **argv)
{
    static struct server srv;
    struct server *s = &srv;
    char err[1024];

    if (config_load(&s->cfg, argc, argv, environ, err, sizeof(err))) {
        fprintf(stderr, "granaryd: %s\n%s", err, config_usage());
        return 2;
    }
    if (s->cfg.show_help) {
        fputs(config_usage(), stdout);
        return 0;
    }
    if (s->cfg.show_version) {
        printf("granaryd %s\n", GRANARY_VERSION);
        return 0;
    }
    s->lock_fd = -1;
    if (main__process(s))
        return 1;
    int done = 0, rc = GR_OK;
    while (done < MAIN_NSTEPS && (rc = main__steps[done].start(s)) == GR_OK)
        done++;
    if (rc && rc != MAIN_STOPPED)
        gr_error("cannot start: %s failed (%s)", main__steps[done].name, gr_strerror(rc));
    if (done == MAIN_NSTEPS) {
        main__banner(s);
        /* once a minute: expired trash (safe on every node, idempotent) */
        while (!main__stop_signal(&s->signals, 60000)) {
            int purged = 0;
            if (trash_purge_expired(&s->ctx, &purged) == GR_OK && purged > 0)
                gr_info("trash: purged %d expired items", purged);
        }
    }
    s->clean = done == MAIN_NSTEPS || rc == MAIN_STOPPED;
    if (s->http && s->clean)
        main__quiesce(s);
    main__stop_http(s); /* whatever else runs may be serving a request */
    while (done-- > 0)
        if (main__steps[done].stop)
            main__steps[done].stop(s);
    bs_peer_global_cleanup(); /* every thread that talks to peers is stopped */
    gr_info("stopped");
    return s->clean ? 0 : 1;
}
