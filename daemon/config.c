/* config.c - defaults < config file < GRANARY_* environment < flags. */
#include "config.h"

#include "base/cidr.h"
#include "base/err.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->data_dir, sizeof(c->data_dir), "/var/lib/granary");
    snprintf(c->listen_host, sizeof(c->listen_host), "127.0.0.1");
    c->listen_port = 8080;
    c->db_pool_size = 16; /* > HTTP threads (4 per core) + heartbeat + main */
    c->threads = 0;
    c->max_body_size = 0;
    c->anonymous_read = -1;
    snprintf(c->log_level, sizeof(c->log_level), "info");
    c->cache_size_mb = 1024;
    c->connection_timeout = 60;
    c->header_timeout = 20;
    c->max_conn_per_client = 256;
    c->shutdown_timeout = 30;
    if (gethostname(c->node_id, sizeof(c->node_id) - 1) != 0 || !c->node_id[0])
        snprintf(c->node_id, sizeof(c->node_id), "node");
    snprintf(c->zone, sizeof(c->zone), "default");
    c->lease_ms = 3000;
    c->heartbeat_ms = 1000;
    c->down_after_ms = 5000;
    c->remove_down_after = 3600;
    c->bus_timeout_ms = 1000;
    c->plugins_memory_mb = 32;
    c->plugins_budget_m = 20;
    c->plugins_job_budget_m = 500;
    c->npm_token_lifetime = 365 * 24 * 3600;
    c->session_lifetime = 8 * 3600;
    snprintf(c->storage_provider, sizeof(c->storage_provider), "local");
    snprintf(c->s3_region, sizeof(c->s3_region), "us-east-1");
    c->s3_path_style = -1;
    c->cache_max_bytes = -1;
}

static int config__copy(char *dst, size_t dsz, const char *v, const char *key, char *err,
                        size_t errsz)
{
    if (strlen(v) >= dsz) {
        snprintf(err, errsz, "%s: value too long (max %zu bytes)", key, dsz - 1);
        return GR_EINVAL;
    }
    strcpy(dst, v);
    return GR_OK;
}

static int config__u64(uint64_t *dst, const char *v, const char *key, char *err, size_t errsz)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    uint64_t mul = 1;
    if (end != v && *end) {
        switch (toupper((unsigned char)*end)) {
        case 'K':
            mul = 1024ULL;
            end++;
            break;
        case 'M':
            mul = 1024ULL * 1024;
            end++;
            break;
        case 'G':
            mul = 1024ULL * 1024 * 1024;
            end++;
            break;
        }
    }
    if (v[0] < '0' || v[0] > '9' || *end || errno || (mul > 1 && n > UINT64_MAX / mul)) {
        snprintf(err, errsz, "%s: not a size: '%s'", key, v);
        return GR_EINVAL;
    }
    *dst = (uint64_t)n * mul;
    return GR_OK;
}

static int config__int(int *dst, const char *v, int lo, int hi, const char *key, char *err,
                       size_t errsz)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (end == v || *end || errno || n < lo || n > hi) {
        snprintf(err, errsz, "%s: expected an integer in [%d, %d], got '%s'", key, lo, hi, v);
        return GR_EINVAL;
    }
    *dst = (int)n;
    return GR_OK;
}

static int config__bool(int *dst, const char *v, const char *key, char *err, size_t errsz)
{
    if (!strcasecmp(v, "true") || !strcasecmp(v, "on") || !strcasecmp(v, "yes") ||
        !strcmp(v, "1")) {
        *dst = 1;
    } else if (!strcasecmp(v, "false") || !strcasecmp(v, "off") || !strcasecmp(v, "no") ||
               !strcmp(v, "0")) {
        *dst = 0;
    } else {
        snprintf(err, errsz, "%s: expected true or false, got '%s'", key, v);
        return GR_EINVAL;
    }
    return GR_OK;
}

static int config__listen(struct config *c, const char *v, char *err, size_t errsz)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v) {
        snprintf(err, errsz, "listen: expected HOST:PORT, got '%s'", v);
        return GR_EINVAL;
    }
    size_t hl = (size_t)(colon - v);
    if (hl >= sizeof(c->listen_host)) {
        snprintf(err, errsz, "listen: host too long");
        return GR_EINVAL;
    }
    int port;
    if (config__int(&port, colon + 1, 0, 65535, "listen port", err, errsz))
        return GR_EINVAL;
    memcpy(c->listen_host, v, hl);
    c->listen_host[hl] = '\0';
    /* [::1]:8080; a bare IPv6 address is ambiguous */
    if (hl >= 2 && c->listen_host[0] == '[' && c->listen_host[hl - 1] == ']') {
        memmove(c->listen_host, c->listen_host + 1, hl - 2);
        c->listen_host[hl - 2] = '\0';
    } else if (memchr(c->listen_host, ':', hl)) {
        snprintf(err, errsz, "listen: write IPv6 addresses in brackets, e.g. [::1]:8080");
        return GR_EINVAL;
    }
    c->listen_port = port;
    return GR_OK;
}

int config_set(struct config *c, const char *rawkey, const char *v, char *err, size_t errsz)
{
    char key[64];
    size_t i;
    for (i = 0; rawkey[i] && i < sizeof(key) - 1; i++)
        key[i] = rawkey[i] == '-' ? '_' : (char)tolower((unsigned char)rawkey[i]);
    key[i] = '\0';

    if (!strcmp(key, "data_dir"))
        return config__copy(c->data_dir, sizeof(c->data_dir), v, key, err, errsz);
    if (!strcmp(key, "listen"))
        return config__listen(c, v, err, errsz);
    if (!strcmp(key, "database_url"))
        return config__copy(c->database_url, sizeof(c->database_url), v, key, err, errsz);
    if (!strcmp(key, "db_pool_size"))
        return config__int(&c->db_pool_size, v, 1, 256, key, err, errsz);
    if (!strcmp(key, "threads"))
        return config__int(&c->threads, v, 0, 256, key, err, errsz);
    if (!strcmp(key, "max_body_size"))
        return config__u64(&c->max_body_size, v, key, err, errsz);
    if (!strcmp(key, "anonymous_read"))
        return config__bool(&c->anonymous_read, v, key, err, errsz);
    if (!strcmp(key, "log_level")) {
        if (strcmp(v, "debug") && strcmp(v, "info") && strcmp(v, "warn") && strcmp(v, "error")) {
            snprintf(err, errsz, "log_level: expected debug, info, warn or error");
            return GR_EINVAL;
        }
        return config__copy(c->log_level, sizeof(c->log_level), v, key, err, errsz);
    }
    if (!strcmp(key, "cache_size_mb")) {
        int mb;
        if (config__int(&mb, v, 1, 1024 * 1024, key, err, errsz))
            return GR_EINVAL;
        c->cache_size_mb = (uint64_t)mb;
        return GR_OK;
    }
    if (!strcmp(key, "connection_timeout"))
        return config__int(&c->connection_timeout, v, 1, 3600, key, err, errsz);
    if (!strcmp(key, "header_timeout"))
        return config__int(&c->header_timeout, v, 1, 3600, key, err, errsz);
    if (!strcmp(key, "max_conn_per_client"))
        return config__int(&c->max_conn_per_client, v, 0, 65535, key, err, errsz);
    if (!strcmp(key, "shutdown_timeout"))
        return config__int(&c->shutdown_timeout, v, 0, 3600, key, err, errsz);
    if (!strcmp(key, "trusted_proxy")) {
        struct gr_cidr r[GR_CIDR_MAX];
        int n;
        if (gr_cidr_parse_list(v, r, GR_CIDR_MAX, &n)) {
            snprintf(err, errsz,
                     "trusted_proxy: expected addresses or CIDR ranges, comma-separated"
                     " (at most %d), got '%s'",
                     GR_CIDR_MAX, v);
            return GR_EINVAL;
        }
        return config__copy(c->trusted_proxy, sizeof(c->trusted_proxy), v, key, err, errsz);
    }
    if (!strcmp(key, "node_id")) {
        for (const char *s = v; *s; s++)
            if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.') {
                snprintf(err, errsz, "node_id: use letters, digits, '.', '_' and '-'");
                return GR_EINVAL;
            }
        if (!*v) {
            snprintf(err, errsz, "node_id: empty");
            return GR_EINVAL;
        }
        return config__copy(c->node_id, sizeof(c->node_id), v, key, err, errsz);
    }
    if (!strcmp(key, "public_url"))
        return config__copy(c->public_url, sizeof(c->public_url), v, key, err, errsz);
    if (!strcmp(key, "cluster_listen"))
        return config__copy(c->cluster_listen, sizeof(c->cluster_listen), v, key, err, errsz);
    if (!strcmp(key, "bus_listen"))
        return config__copy(c->bus_listen, sizeof(c->bus_listen), v, key, err, errsz);
    if (!strcmp(key, "zone"))
        return config__copy(c->zone, sizeof(c->zone), v, key, err, errsz);
    if (!strcmp(key, "join_key_file"))
        return config__copy(c->join_key_file, sizeof(c->join_key_file), v, key, err, errsz);
    if (!strcmp(key, "join_key_next_file"))
        return config__copy(c->join_key_next_file, sizeof(c->join_key_next_file), v, key, err,
                            errsz);
    if (!strcmp(key, "lease_ms"))
        return config__int(&c->lease_ms, v, 300, 600000, key, err, errsz);
    if (!strcmp(key, "heartbeat_ms"))
        return config__int(&c->heartbeat_ms, v, 50, 60000, key, err, errsz);
    if (!strcmp(key, "down_after_ms"))
        return config__int(&c->down_after_ms, v, 100, 3600000, key, err, errsz);
    if (!strcmp(key, "remove_down_after"))
        return config__int(&c->remove_down_after, v, 1, 86400 * 365, key, err, errsz);
    if (!strcmp(key, "preferred_primary"))
        return config__bool(&c->preferred_primary, v, key, err, errsz);
    if (!strcmp(key, "cluster_port_v1"))
        return config__bool(&c->cluster_port_v1, v, key, err, errsz);
    if (!strcmp(key, "bus_timeout_ms"))
        return config__int(&c->bus_timeout_ms, v, 10, 60000, key, err, errsz);
    if (!strcmp(key, "plugins_dir"))
        return config__copy(c->plugins_dir, sizeof(c->plugins_dir), v, key, err, errsz);
    if (!strcmp(key, "plugins_memory_mb"))
        return config__int(&c->plugins_memory_mb, v, 1, 4096, key, err, errsz);
    if (!strcmp(key, "plugins_budget_m"))
        return config__int(&c->plugins_budget_m, v, 1, 100000, key, err, errsz);
    if (!strcmp(key, "plugins_job_budget_m"))
        return config__int(&c->plugins_job_budget_m, v, 1, 1000000, key, err, errsz);
    if (!strcmp(key, "session_lifetime")) /* a UI session: 5 seconds (tests) to 30 days */
        return config__int(&c->session_lifetime, v, 5, 30 * 24 * 3600, key, err, errsz);
    if (!strcmp(key, "npm_token_lifetime")) /* at most ten years, as any access token */
        return config__int(&c->npm_token_lifetime, v, 0, 10 * 365 * 24 * 3600, key, err, errsz);
    if (!strcmp(key, "storage_provider")) {
        if (strcmp(v, "local") && strcmp(v, "s3") && strcmp(v, "shared-fs")) {
            snprintf(err, errsz, "storage_provider: expected local, s3 or shared-fs");
            return GR_EINVAL;
        }
        return config__copy(c->storage_provider, sizeof(c->storage_provider), v, key, err, errsz);
    }
    if (!strcmp(key, "s3_endpoint")) {
        if (*v && strncmp(v, "http://", 7) && strncmp(v, "https://", 8)) {
            snprintf(err, errsz, "s3_endpoint: expected http://HOST[:PORT] or https://...");
            return GR_EINVAL;
        }
        return config__copy(c->s3_endpoint, sizeof(c->s3_endpoint), v, key, err, errsz);
    }
    if (!strcmp(key, "s3_bucket"))
        return config__copy(c->s3_bucket, sizeof(c->s3_bucket), v, key, err, errsz);
    if (!strcmp(key, "s3_region"))
        return config__copy(c->s3_region, sizeof(c->s3_region), v, key, err, errsz);
    if (!strcmp(key, "s3_prefix"))
        return config__copy(c->s3_prefix, sizeof(c->s3_prefix), v, key, err, errsz);
    if (!strcmp(key, "s3_access_key_file"))
        return config__copy(c->s3_access_key_file, sizeof(c->s3_access_key_file), v, key, err,
                            errsz);
    if (!strcmp(key, "s3_secret_key_file"))
        return config__copy(c->s3_secret_key_file, sizeof(c->s3_secret_key_file), v, key, err,
                            errsz);
    if (!strcmp(key, "s3_access_key"))
        return config__copy(c->s3_access_key, sizeof(c->s3_access_key), v, key, err, errsz);
    if (!strcmp(key, "s3_secret_key"))
        return config__copy(c->s3_secret_key, sizeof(c->s3_secret_key), v, key, err, errsz);
    if (!strcmp(key, "s3_path_style"))
        return config__bool(&c->s3_path_style, v, key, err, errsz);
    if (!strcmp(key, "shared_fs_path"))
        return config__copy(c->shared_fs_path, sizeof(c->shared_fs_path), v, key, err, errsz);
    if (!strcmp(key, "cache_max_bytes")) {
        uint64_t n;
        if (config__u64(&n, v, key, err, errsz))
            return GR_EINVAL;
        c->cache_max_bytes = (int64_t)(n > INT64_MAX ? INT64_MAX : n);
        return GR_OK;
    }
    snprintf(err, errsz, "unknown setting '%s'", rawkey);
    return GR_EINVAL;
}

static char *config__trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int config_load_file(struct config *c, const char *path, char *err, size_t errsz)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errsz, "%s: %s", path, strerror(errno));
        return GR_EIO;
    }
    char line[2048];
    int lineno = 0, rc = GR_OK;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *s = config__trim(line);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errsz, "%s:%d: expected 'key = value'", path, lineno);
            rc = GR_EINVAL;
            break;
        }
        *eq = '\0';
        char *k = config__trim(s), *v = config__trim(eq + 1);
        size_t vl = strlen(v);
        if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
            v[vl - 1] = '\0';
            v++;
        }
        char sub[512];
        if (config_set(c, k, v, sub, sizeof(sub))) {
            snprintf(err, errsz, "%s:%d: %s", path, lineno, sub);
            rc = GR_EINVAL;
            break;
        }
    }
    fclose(f);
    return rc;
}

int config_load_env(struct config *c, char *const *envp, char *err, size_t errsz)
{
    for (; envp && *envp; envp++) {
        if (strncmp(*envp, "GRANARY_", 8) != 0)
            continue;
        const char *eq = strchr(*envp, '=');
        if (!eq)
            continue;
        char key[64];
        size_t kl = (size_t)(eq - (*envp + 8));
        if (kl >= sizeof(key))
            continue;
        memcpy(key, *envp + 8, kl);
        key[kl] = '\0';
        if (!strcmp(key, "CONFIG") || !strncmp(key, "TEST_", 5) || !strncmp(key, "PG_", 3))
            continue; /* not settings: the config path and test/tool knobs */
        char sub[512];
        if (config_set(c, key, eq + 1, sub, sizeof(sub))) {
            snprintf(err, errsz, "environment GRANARY_%s: %s", key, sub);
            return GR_EINVAL;
        }
    }
    return GR_OK;
}

const char *config_usage(void)
{
    return "usage: granaryd [options]\n"
           "  --config FILE            settings file (key = value); also GRANARY_CONFIG\n"
           "  --data-dir DIR           data directory (default /var/lib/granary)\n"
           "  --listen HOST:PORT       public HTTP address (default 127.0.0.1:8080)\n"
           "  --database-url URL       PostgreSQL URL; none: a private embedded server\n"
           "  --db-pool-size N         database connections (default 16)\n"
           "  --threads N              HTTP worker threads (default: four per core)\n"
           "  --max-body-size SIZE     largest upload, e.g. 2G (default: no limit)\n"
           "  --anonymous-read BOOL    set cluster-wide anonymous read access at start\n"
           "  --log-level LEVEL        debug, info, warn, error\n"
           "  --cache-size-mb N        LMDB cache map size (default 1024)\n"
           "  --connection-timeout S   close connections silent for S seconds (default 60)\n"
           "  --header-timeout S       a request's headers must arrive within S s (default 20)\n"
           "  --max-conn-per-client N  connections per client address (default 256, 0: none)\n"
           "  --shutdown-timeout S     SIGTERM waits S seconds for requests (default 30)\n"
           "  --trusted-proxy CIDRS    load balancers whose X-Forwarded-For names the client\n"
           "cluster (docs/cluster.md):\n"
           "  --join-key-file FILE     the cluster join key: makes this node a cluster node\n"
           "  --join-key-next-file F   a second key, accepted too (key rotation)\n"
           "  --cluster-port-v1 BOOL   upgrade from v1: accept and send v1 signatures too\n"
           "  --node-id ID             unique node name (default: the host name)\n"
           "  --public-url URL         how clients reach this node (default http://LISTEN)\n"
           "  --cluster-listen H:P     internal port, never behind the load balancer\n"
           "  --bus-listen H:P         ZeroMQ bus address peers connect to\n"
           "  --zone NAME              failure zone (default 'default')\n"
           "  --lease-ms MS            cache lease (default 3000)\n"
           "  --heartbeat-ms MS        heartbeat period (default 1000)\n"
           "  --down-after-ms MS       stale heartbeat: node down (default 5000)\n"
           "  --remove-down-after S    primary removes nodes down longer (default 3600)\n"
           "  --preferred-primary BOOL take the primary role whenever alive\n"
           "  --bus-timeout-ms MS      wait for invalidation acks (default 1000)\n"
           "plugins (docs/plugins.md):\n"
           "  --plugins-dir DIR        install DIR/*.lua as plugins at start\n"
           "  --plugins-memory-mb N    memory cap per Lua state (default 32)\n"
           "  --plugins-budget-m N     million instructions per hook call (default 20)\n"
           "  --plugins-job-budget-m N million instructions per job run (default 500)\n"
           "npm (docs/npm.md):\n"
           "  --npm-token-lifetime S   seconds an npm login token lives (default 31536000,\n"
           "                           a year; 0: never expires)\n"
           "web UI (docs/ui.md):\n"
           "  --session-lifetime S     seconds a UI session lives (default 28800, 8 hours)\n"
           "binary providers (docs/storage.md), chosen per cluster by its first node:\n"
           "  --storage-provider P     local (the nodes' disks), s3 or shared-fs\n"
           "  --s3-endpoint URL        http(s)://HOST[:PORT] of an S3-compatible store\n"
           "  --s3-bucket NAME         its bucket\n"
           "  --s3-region NAME         its region (default us-east-1)\n"
           "  --s3-prefix P            prepended to every object key (default none)\n"
           "  --s3-access-key-file F   the access key id (or GRANARY_S3_ACCESS_KEY)\n"
           "  --s3-secret-key-file F   the secret key (or GRANARY_S3_SECRET_KEY)\n"
           "  --s3-path-style BOOL     endpoint/bucket/key (default: on)\n"
           "  --shared-fs-path DIR     shared-fs: the directory every node mounts\n"
           "  --cache-max-bytes N      read-through cache of binaries this node holds no copy of\n"
           "                           (the store's, or peers'; default 10G; 0: none)\n"
           "  --help, --version\n"
           "Every setting is also GRANARY_<KEY> in the environment and <key> in the file.\n";
}

int config_load(struct config *c, int argc, char *const *argv, char *const *envp, char *err,
                size_t errsz)
{
    const char *file = NULL;
    config_defaults(c);
    for (char *const *e = envp; e && *e; e++)
        if (!strncmp(*e, "GRANARY_CONFIG=", 15))
            file = *e + 15;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            file = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            file = argv[i] + 9;
    }
    if (file && *file) {
        int rc = config_load_file(c, file, err, errsz);
        if (rc)
            return rc == GR_EIO ? GR_EINVAL : rc;
    }
    if (config_load_env(c, envp, err, errsz))
        return GR_EINVAL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            c->show_help = true;
            continue;
        }
        if (!strcmp(a, "--version")) {
            c->show_version = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errsz, "unexpected argument '%s'", a);
            return GR_EINVAL;
        }
        char key[64];
        const char *val, *eq = strchr(a, '=');
        if (eq) {
            size_t kl = (size_t)(eq - a - 2);
            if (kl >= sizeof(key)) {
                snprintf(err, errsz, "unknown option '%s'", a);
                return GR_EINVAL;
            }
            memcpy(key, a + 2, kl);
            key[kl] = '\0';
            val = eq + 1;
        } else {
            if (strlen(a + 2) >= sizeof(key) || i + 1 >= argc) {
                snprintf(err, errsz, "option '%s' needs a value", a);
                return GR_EINVAL;
            }
            strcpy(key, a + 2);
            val = argv[++i];
        }
        if (!strcmp(key, "config"))
            continue;
        if (config_set(c, key, val, err, errsz))
            return GR_EINVAL;
    }
    return GR_OK;
}
