/*
 * config.h - node-local settings: defaults, then a config file
 * (`key = value`, `#` comments), then GRANARY_<KEY> environment variables,
 * then command-line flags (--key-with-dashes VALUE), later ones winning.
 *
 * Keys (docs/configuration.md has the full table):
 *   data_dir, listen, database_url, db_pool_size, threads, max_body_size,
 *   anonymous_read, log_level, cache_size_mb, connection_timeout,
 *   shutdown_timeout
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
    int threads;            /* HTTP worker threads; 0 means one per core */
    uint64_t max_body_size; /* bytes; 0 means no limit */
    int anonymous_read;     /* -1: keep the cluster-wide setting; 0/1: set it at start */
    char log_level[16];
    uint64_t cache_size_mb;
    int connection_timeout; /* seconds a connection may stay silent */
    int shutdown_timeout;   /* seconds SIGTERM waits for in-flight requests */
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
