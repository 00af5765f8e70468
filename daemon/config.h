/*
 * config.h - node-local settings: defaults, then a config file
 * (`key = value`, `#` comments), then GRANARY_<KEY> environment variables,
 * then command-line flags (--key-with-dashes VALUE), later ones winning.
 *
 * Keys (docs/configuration.md has the full table):
 *   data_dir, listen, database_url, db_pool_size, threads, max_body_size,
 *   anonymous_read, log_level, cache_size_mb, connection_timeout,
 *   shutdown_timeout, trusted_proxy, and for a cluster node: node_id, public_url,
 *   cluster_listen, bus_listen, zone, join_key_file, join_key_next_file, cluster_port_v1,
 *   lease_ms, heartbeat_ms, down_after_ms, remove_down_after, preferred_primary, bus_timeout_ms;
 *   plugins: plugins_dir, plugins_memory_mb, plugins_budget_m, plugins_job_budget_m;
 *   npm: npm_token_lifetime; the web UI: session_lifetime;
 *   binary providers (docs/storage.md): storage_provider, s3_endpoint, s3_bucket,
 *   s3_region, s3_prefix, s3_access_key_file, s3_secret_key_file, s3_access_key,
 *   s3_secret_key (the environment's GRANARY_S3_*), s3_path_style, shared_fs_path,
 *   cache_max_bytes
 */
#ifndef GR_CONFIG_H
#define GR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config {
    char data_dir[512];
    char listen_host[256];
    int listen_port;
    char database_url[1024]; /* "" means the embedded PostgreSQL */
    int db_pool_size;
    int threads;            /* HTTP worker threads; 0 means four per core */
    uint64_t max_body_size; /* bytes; 0 means no limit */
    int anonymous_read;     /* -1: keep the cluster-wide setting; 0/1: set it at start */
    char log_level[16];
    uint64_t cache_size_mb;
    int connection_timeout;   /* seconds a connection may stay silent */
    int header_timeout;       /* seconds to send a request's headers (slowloris) */
    int max_conn_per_client;  /* concurrent connections per client address (0: no limit) */
    int shutdown_timeout;     /* seconds SIGTERM waits for in-flight requests */
    char trusted_proxy[1024]; /* CIDRs whose X-Forwarded-For names the client (base/cidr.h) */
    /* cluster (docs/cluster.md); a node is a cluster node when join_key_file is set */
    char node_id[64];
    char public_url[256];     /* "" means http://<listen> */
    char cluster_listen[256]; /* HOST:PORT of the internal port; "" means none yet */
    char bus_listen[256];     /* HOST:PORT of the ZeroMQ bus */
    char zone[64];
    char join_key_file[512];
    char join_key_next_file[512]; /* a second key accepted during a rotation (docs/security.md) */
    int cluster_port_v1;          /* 0/1: an upgrade from cluster-port v1 (docs/security.md) */
    int lease_ms;                 /* cache lease L */
    int heartbeat_ms;             /* membership heartbeat */
    int down_after_ms;            /* a heartbeat older than this: the node is down */
    int remove_down_after;        /* seconds; the primary removes nodes down for longer */
    int preferred_primary;        /* 0/1 */
    int bus_timeout_ms;           /* how long a writer waits for acknowledgements */
    /* Lua plugins (docs/plugins.md) */
    char plugins_dir[512];    /* *.lua installed at start; "" means none */
    int plugins_memory_mb;    /* memory cap per Lua state */
    int plugins_budget_m;     /* million instructions per hook, realm or execution call */
    int plugins_job_budget_m; /* million instructions per job run */
    /* npm (docs/npm.md) */
    int npm_token_lifetime; /* seconds an npm login token lives; 0: it never expires */
    /* the web UI (docs/ui.md) */
    int session_lifetime; /* seconds a UI session lives */
    /* binary providers (docs/storage.md) */
    char storage_provider[16]; /* local, s3, shared-fs */
    char s3_endpoint[256], s3_bucket[128], s3_region[64], s3_prefix[128];
    char s3_access_key_file[512], s3_secret_key_file[512];
    char s3_access_key[256], s3_secret_key[256]; /* the environment's; a file is better */
    int s3_path_style;                           /* -1: on for a custom endpoint (any given one) */
    char shared_fs_path[512];                    /* shared-fs: the directory every node mounts */
    int64_t cache_max_bytes; /* the read-through cache (s3's, peers'); -1: 10 GiB; 0: none */
    bool show_help, show_version;
};

/* Fill c with the defaults. */
void config_defaults(struct config *c);

/*
 * Apply one setting by key (underscores or dashes). Returns 0, or GR_EINVAL
 * with a message in err (errsz bytes) for an unknown key or a bad value.
 */
int config_set(struct config *c, const char *key, const char *value, char *err, size_t errsz);

/* Apply a `key = value` file; GR_EIO if it cannot be read, GR_EINVAL with
 * "file:line: ..." in err for a bad line. */
int config_load_file(struct config *c, const char *path, char *err, size_t errsz);

/* Apply GRANARY_<KEY> variables from envp (NULL-terminated). */
int config_load_env(struct config *c, char *const *envp, char *err, size_t errsz);

/*
 * The whole order: defaults, --config/GRANARY_CONFIG file, environment,
 * flags. GR_EINVAL with a message in err for anything wrong.
 */
int config_load(struct config *c, int argc, char *const *argv, char *const *envp, char *err,
                size_t errsz);

/* The --help text. */
const char *config_usage(void);

#endif
