/*
 * proxy.c - `granaryctl proxy-config` (proxy.h): fetch the node list from
 * the first node that answers, write the configuration, and with --watch
 * rewrite it (atomically, then run --reload-cmd) whenever it changes.
 */
#include "proxy.h"

#include "base/err.h"
#include "base/sbuf.h"
#include "proxy/proxyconf.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct pxc_opts {
    const char *urls[16];
    int nurls;
    char *url_lists[16]; /* the --url values, split in place (owned) */
    int nlists;
    const char *user, *password_file, *token_file, *type, *out, *reload_cmd;
    struct pc_options pc;
    bool watch, seeds; /* seeds: the --url nodes are the upstreams, nobody is asked */
    double interval_s;
};

static volatile sig_atomic_t pxc__stop;

static void pxc__on_signal(int sig)
{
    (void)sig;
    pxc__stop = 1;
}

void pxc_usage(FILE *f)
{
    fputs("  proxy-config --type nginx|apache|haproxy --url URL[,URL...] [options]\n"
          "      a load balancer's configuration from the cluster's active nodes\n"
          "      --url URL                   a node (several: the first that answers)\n"
          "      --seeds                     list the --url nodes themselves, ask no node\n"
          "                                  (a first configuration before any node is up)\n"
          "      --user USER                 an admin [admin]\n"
          "      --password-file FILE        its password (first line); or GRANARY_PASSWORD\n"
          "      --token-file FILE           an access token instead (first line; Bearer)\n"
          "      --out FILE                  write FILE (atomically) instead of stdout\n"
          "      --listen [HOST:]PORT        the proxy's HTTP listener [80]\n"
          "      --server-name NAME          the virtual host's name\n"
          "      --ssl-cert FILE --ssl-key FILE  terminate TLS too\n"
          "      --ssl-listen [HOST:]PORT    the TLS listener [443]\n"
          "      --read-timeout SECONDS      upstream read timeout [900]\n"
          "      --keepalive N               idle connections kept to the nodes; 0: none\n"
          "                                  [32 for nginx and Apache, 0 for HAProxy]\n"
          "      --watch                     rewrite FILE whenever the node list changes\n"
          "      --interval SECONDS          how often --watch looks [2]\n"
          "      --reload-cmd CMD            run (sh -c) after each rewrite, e.g. 'nginx -s "
          "reload'\n",
          f);
}

static size_t pxc__collect(char *p, size_t sz, size_t n, void *arg)
{
    gr_sbuf_add(arg, p, sz * n);
    return sz * n;
}

/* nodes -> cfg in the asked type. 0, or -1 with a message on stderr. */
static int pxc__render(const struct pxc_opts *o, const struct pc_node *nodes, int n,
                       struct gr_sbuf *cfg)
{
    enum pc_type t = PC_NGINX;
    int rc = pc_type_parse(o->type, &t);
    gr_sbuf_reset(cfg);
    if (rc == GR_OK)
        rc = pc_write(t, nodes, n, &o->pc, cfg);
    if (rc) {
        fprintf(stderr, "granaryctl proxy-config: %s\n",
                rc == GR_ENOTFOUND ? "the cluster lists no node"
                                   : "an option or a node URL cannot go into the file");
        return -1;
    }
    return 0;
}

/* --seeds: every --url is an active upstream named seedN. */
static int pxc__render_seeds(const struct pxc_opts *o, struct gr_sbuf *cfg)
{
    char ids[16][16];
    struct pc_node nodes[16];
    for (int u = 0; u < o->nurls; u++) {
        snprintf(ids[u], sizeof(ids[u]), "seed%d", u + 1);
        nodes[u] = (struct pc_node){ids[u], o->urls[u], "active"};
    }
    return pxc__render(o, nodes, o->nurls, cfg);
}

/*
 * GET /api/system/cluster from the first URL that answers 200 and turn it
 * into the configuration. 0 and cfg filled; -1 with a message on stderr.
 */
static int pxc__generate(const struct pxc_opts *o, const char *password, struct gr_sbuf *cfg)
{
    if (o->seeds)
        return pxc__render_seeds(o, cfg);
    char err[CURL_ERROR_SIZE] = "";
    for (int u = 0; u < o->nurls; u++) {
        CURL *c = curl_easy_init();
        if (!c)
            return -1;
        struct gr_sbuf body = GR_SBUF_INIT;
        char url[2048];
        snprintf(url, sizeof(url), "%s/api/system/cluster", o->urls[u]);
        curl_easy_setopt(c, CURLOPT_URL, url);
        if (o->token_file) {
            curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
            curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, password);
        } else {
            curl_easy_setopt(c, CURLOPT_USERNAME, o->user);
            curl_easy_setopt(c, CURLOPT_PASSWORD, password);
        }
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, pxc__collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
        CURLcode cc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(c);
        if (cc != CURLE_OK || status != 200) {
            fprintf(stderr, "granaryctl proxy-config: %s: %s\n", url,
                    cc != CURLE_OK  ? err
                    : status == 401 ? "401 (user, password or token)"
                                    : "not 200");
            gr_sbuf_release(&body);
            continue;
        }
        json_error_t je;
        json_t *doc = json_loadb(body.buf, body.len, 0, &je);
        gr_sbuf_release(&body);
        json_t *arr = json_object_get(doc, "nodes");
        size_t n = json_array_size(arr);
        struct pc_node *nodes = calloc(n ? n : 1, sizeof(*nodes));
        if (!nodes) {
            json_decref(doc);
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(arr, i);
            nodes[i] = (struct pc_node){json_string_value(json_object_get(e, "id")),
                                        json_string_value(json_object_get(e, "url")),
                                        json_string_value(json_object_get(e, "state"))};
        }
        if (n == 0 && json_is_false(json_object_get(doc, "clustered"))) {
            nodes[0] = (struct pc_node){"node", o->urls[u], "active"};
            n = 1;
        }
        int rc = pxc__render(o, nodes, (int)n, cfg);
        free(nodes);
        json_decref(doc);
        return rc;
    }
    return -1;
}

/* Whether FILE holds exactly cfg. */
static bool pxc__same(const char *file, const struct gr_sbuf *cfg)
{
    FILE *f = fopen(file, "rb");
    if (!f)
        return false;
    struct gr_sbuf old = GR_SBUF_INIT;
    char buf[8192];
    size_t k;
    while ((k = fread(buf, 1, sizeof(buf), f)) > 0)
        gr_sbuf_add(&old, buf, k);
    fclose(f);
    bool same = old.len == cfg->len && !memcmp(old.buf, cfg->buf, cfg->len);
    gr_sbuf_release(&old);
    return same;
}

/* Write cfg to file.tmp, fsync, rename: a reload never sees half a file. */
static int pxc__write(const char *file, const struct gr_sbuf *cfg)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", file);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "granaryctl proxy-config: %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    bool ok =
        fwrite(cfg->buf, 1, cfg->len, f) == cfg->len && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, file)) {
        fprintf(stderr, "granaryctl proxy-config: %s: %s\n", file, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int pxc__parse(int argc, char **argv, struct pxc_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->user = "admin";
    o->interval_s = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--watch")) {
            o->watch = true;
            continue;
        }
        if (!strcmp(a, "--seeds")) {
            o->seeds = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "granaryctl proxy-config: %s needs a value\n", a);
            return -1;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--url")) {
            char *copy = o->nlists < 16 ? strdup(v) : NULL, *save = NULL;
            if (!copy) {
                fprintf(stderr, "granaryctl proxy-config: too many --url options\n");
                return -1;
            }
            o->url_lists[o->nlists++] = copy;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (o->nurls == 16) {
                    fprintf(stderr, "granaryctl proxy-config: more than 16 node URLs\n");
                    return -1;
                }
                size_t l = strlen(t);
                while (l > 0 && t[l - 1] == '/')
                    t[--l] = '\0';
                o->urls[o->nurls++] = t;
            }
        } else if (!strcmp(a, "--user"))
            o->user = v;
        else if (!strcmp(a, "--password-file"))
            o->password_file = v;
        else if (!strcmp(a, "--token-file"))
            o->token_file = v;
        else if (!strcmp(a, "--type"))
            o->type = v;
        else if (!strcmp(a, "--out"))
            o->out = v;
        else if (!strcmp(a, "--reload-cmd"))
            o->reload_cmd = v;
        else if (!strcmp(a, "--listen"))
            o->pc.listen = v;
        else if (!strcmp(a, "--server-name"))
            o->pc.server_name = v;
        else if (!strcmp(a, "--ssl-cert"))
            o->pc.tls_cert = v;
        else if (!strcmp(a, "--ssl-key"))
            o->pc.tls_key = v;
        else if (!strcmp(a, "--ssl-listen"))
            o->pc.tls_listen = v;
        else if (!strcmp(a, "--read-timeout"))
            o->pc.read_timeout_s = atoi(v);
        else if (!strcmp(a, "--keepalive"))
            o->pc.keepalive = atoi(v) > 0 ? atoi(v) : -1;
        else if (!strcmp(a, "--interval"))
            o->interval_s = atof(v);
        else {
            fprintf(stderr, "granaryctl proxy-config: unknown option %s\n", a);
            return -1;
        }
    }
    enum pc_type t;
    if (!o->type || pc_type_parse(o->type, &t)) {
        fprintf(stderr, "granaryctl proxy-config: --type nginx|apache|haproxy\n");
        return -1;
    }
    if (o->nurls == 0) {
        fprintf(stderr, "granaryctl proxy-config: --url URL is required\n");
        return -1;
    }
    if (o->token_file && o->password_file) {
        fprintf(stderr, "granaryctl proxy-config: --password-file or --token-file, not both\n");
        return -1;
    }
    if (o->watch && o->seeds) {
        fprintf(stderr, "granaryctl proxy-config: --seeds has nothing to watch\n");
        return -1;
    }
    if (o->watch && !o->out) {
        fprintf(stderr, "granaryctl proxy-config: --watch needs --out FILE\n");
        return -1;
    }
    if (o->interval_s < 0.2)
        o->interval_s = 0.2;
    return 0;
}

/* The password or token, from its file or GRANARY_PASSWORD; NULL (said). */
static char *pxc__password(const struct pxc_opts *o)
{
    const char *file = o->token_file ? o->token_file : o->password_file;
    const char *opt = o->token_file ? "--token-file" : "--password-file";
    if (!file) {
        const char *e = getenv("GRANARY_PASSWORD");
        if (!e)
            fprintf(stderr, "granaryctl proxy-config: give --password-file FILE or set "
                            "GRANARY_PASSWORD\n");
        return e ? strdup(e) : NULL;
    }
    FILE *f = fopen(file, "r");
    char line[1024] = "";
    if (!f || !fgets(line, sizeof(line), f)) {
        fprintf(stderr, "granaryctl proxy-config: %s %s: %s\n", opt, file,
                f ? "empty" : strerror(errno));
        if (f)
            fclose(f);
        return NULL;
    }
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    return strdup(line);
}

/*
 * Write when changed; run the reload command after a write (and again at
 * the next call while it keeps failing). 0, or -1.
 */
static int pxc__apply(const struct pxc_opts *o, const struct gr_sbuf *cfg, bool *changed)
{
    static bool reload_pending;
    *changed = false;
    if (!pxc__same(o->out, cfg)) {
        if (pxc__write(o->out, cfg))
            return -1;
        *changed = true;
        reload_pending = o->reload_cmd != NULL;
    }
    if (reload_pending) {
        int st = system(o->reload_cmd);
        if (st != 0) {
            fprintf(stderr, "granaryctl proxy-config: reload command failed (status %d): %s\n", st,
                    o->reload_cmd);
            return -1;
        }
        reload_pending = false;
    }
    return 0;
}

static void pxc__opts_release(struct pxc_opts *o)
{
    for (int i = 0; i < o->nlists; i++)
        free(o->url_lists[i]);
    o->nlists = 0;
}

static int pxc__run(struct pxc_opts *o);

int pxc_main(int argc, char **argv)
{
    struct pxc_opts o;
    int rc = pxc__parse(argc, argv, &o) ? 2 : pxc__run(&o);
    pxc__opts_release(&o);
    return rc;
}

static int pxc__run(struct pxc_opts *op)
{
    struct pxc_opts o = *op;
    char *password = o.seeds ? strdup("") : pxc__password(&o);
    if (!password)
        return 2;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(password);
        return 1;
    }
    struct gr_sbuf cfg = GR_SBUF_INIT;
    int status = 0;
    if (!o.watch) {
        status = pxc__generate(&o, password, &cfg) ? 1 : 0;
        if (status == 0) {
            if (!o.out) {
                status = fwrite(cfg.buf, 1, cfg.len, stdout) == cfg.len ? 0 : 1;
            } else {
                bool changed;
                status = pxc__apply(&o, &cfg, &changed) ? 1 : 0;
            }
        }
        goto out;
    }
    struct sigaction sa = {.sa_handler = pxc__on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    fprintf(stderr, "granaryctl proxy-config: watching %s every %.1fs, writing %s\n", o.urls[0],
            o.interval_s, o.out);
    while (!pxc__stop) {
        bool changed = false;
        if (pxc__generate(&o, password, &cfg) == 0 && pxc__apply(&o, &cfg, &changed) == 0 &&
            changed) {
            time_t now = time(NULL);
            struct tm tm;
            char ts[32];
            gmtime_r(&now, &tm);
            strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
            fprintf(stderr, "%s granaryctl proxy-config: wrote %s%s\n", ts, o.out,
                    o.reload_cmd ? " and reloaded" : "");
        }
        /* a failed fetch or reload keeps the last good file; try again later */
        for (double s = 0; s < o.interval_s && !pxc__stop; s += 0.1) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
out:
    gr_sbuf_release(&cfg);
    curl_global_cleanup();
    free(password);
    return status;
}
