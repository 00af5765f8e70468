/* proxyconf.c - nginx, Apache and HAProxy configurations from a node list (proxyconf.h). */
#include "proxy/proxyconf.h"

#include "base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A node reduced to what a proxy needs. */
struct pc__backend {
    const char *id;
    char host[256]; /* as written in the URL, brackets kept for IPv6 */
    int port;
};

int pc_type_parse(const char *s, enum pc_type *out)
{
    if (!s)
        return GR_EINVAL;
    if (!strcmp(s, "nginx"))
        *out = PC_NGINX;
    else if (!strcmp(s, "apache") || !strcmp(s, "apache2") || !strcmp(s, "httpd"))
        *out = PC_APACHE;
    else if (!strcmp(s, "haproxy"))
        *out = PC_HAPROXY;
    else
        return GR_EINVAL;
    return GR_OK;
}

const char *pc_type_name(enum pc_type t)
{
    switch (t) {
    case PC_NGINX:
        return "nginx";
    case PC_APACHE:
        return "apache";
    case PC_HAPROXY:
        return "haproxy";
    }
    return "?";
}

/* A value that goes into a configuration file verbatim: no quotes, spaces,
 * semicolons, braces or control characters (they would end a directive). */
static bool pc__safe(const char *s)
{
    if (!s)
        return true;
    if (!*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f || strchr("\"'`;{}#\\$<>|&", *p))
            return false;
    return strlen(s) < 1024;
}

/* http://host:port[/...] -> host and port; false when unusable. */
static bool pc__parse_url(const char *url, struct pc__backend *b)
{
    if (!url || strncmp(url, "http://", 7))
        return false;
    const char *h = url + 7;
    size_t hl;
    const char *after;
    if (*h == '[') {
        const char *e = strchr(h, ']');
        if (!e)
            return false;
        hl = (size_t)(e - h) + 1;
        after = e + 1;
    } else {
        hl = strcspn(h, ":/");
        after = h + hl;
    }
    if (hl == 0 || hl >= sizeof(b->host))
        return false;
    memcpy(b->host, h, hl);
    b->host[hl] = '\0';
    if (!pc__safe(b->host))
        return false;
    b->port = 80;
    if (*after == ':') {
        char *end;
        long p = strtol(after + 1, &end, 10);
        if (p < 1 || p > 65535 || (*end && *end != '/'))
            return false;
        b->port = (int)p;
    } else if (*after && *after != '/') {
        return false;
    }
    return true;
}

/* "[host:]port" -> the port (for X-Forwarded-Port and Apache's Listen). */
static int pc__listen_port(const char *listen)
{
    const char *c = strrchr(listen, ':');
    return atoi(c ? c + 1 : listen);
}

static void pc__nginx_location(struct gr_sbuf *o, const struct pc_options *opt, const char *up)
{
    gr_sbuf_addf(o,
                 "    location / {\n"
                 "        proxy_pass http://%s;\n"
                 "        proxy_http_version 1.1;\n"
                 "%s"
                 "        proxy_set_header Host $http_host;\n"
                 "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
                 "        proxy_set_header X-Forwarded-Proto $scheme;\n"
                 "        proxy_set_header X-Forwarded-Host $http_host;\n"
                 "        proxy_set_header X-Forwarded-Port $server_port;\n"
                 "        proxy_set_header X-Request-Id $request_id;\n"
                 "        # a refused connection, a timeout, 502 or 503 (not ready, draining,\n"
                 "        # shutting down): the next node. nginx never retries POST, LOCK\n"
                 "        # or PATCH, nor a request whose body it has begun to send.\n"
                 "        proxy_next_upstream error timeout http_502 http_503;\n"
                 "        proxy_next_upstream_tries 3;\n"
                 "        proxy_next_upstream_timeout 30s;\n"
                 "        proxy_connect_timeout 2s;\n"
                 "        proxy_read_timeout %ds;\n"
                 "        proxy_send_timeout %ds;\n"
                 "        proxy_request_buffering off;\n"
                 "        proxy_buffering off;\n"
                 "        proxy_redirect off;\n"
                 "    }\n",
                 up, opt->keepalive > 0 ? "        proxy_set_header Connection \"\";\n" : "",
                 opt->read_timeout_s, opt->read_timeout_s);
}

static void pc__nginx(struct gr_sbuf *o, const struct pc__backend *b, int n,
                      const struct pc_options *opt, bool tls)
{
    const char *up = opt->upstream_name;
    gr_sbuf_addf(o, "upstream %s {\n", up);
    for (int i = 0; i < n; i++)
        gr_sbuf_addf(o, "    server %s:%d max_fails=1 fail_timeout=%ds; # %s\n", b[i].host,
                     b[i].port, opt->fail_timeout_s, b[i].id);
    /* idle connections to the nodes, closed by nginx before a node's header
     * deadline would close them: nginx never sends a request on a
     * connection the node is closing (a stopping node closes none) */
    if (opt->keepalive > 0)
        gr_sbuf_addf(o,
                     "    keepalive %d;\n"
                     "    keepalive_timeout %ds;\n",
                     opt->keepalive, PC_IDLE_S);
    gr_sbuf_adds(o, "}\n\n");
    gr_sbuf_addf(o,
                 "server {\n"
                 "    listen %s;\n",
                 opt->listen);
    if (tls)
        gr_sbuf_addf(o,
                     "    listen %s ssl;\n"
                     "    ssl_certificate %s;\n"
                     "    ssl_certificate_key %s;\n"
                     "    ssl_protocols TLSv1.2 TLSv1.3;\n",
                     opt->tls_listen, opt->tls_cert, opt->tls_key);
    gr_sbuf_addf(o,
                 "    server_name %s;\n"
                 "    client_max_body_size 0;\n"
                 "    chunked_transfer_encoding on;\n"
                 "    large_client_header_buffers 4 32k;\n",
                 opt->server_name);
    pc__nginx_location(o, opt, up);
    gr_sbuf_adds(o, "}\n");
}

static void pc__haproxy(struct gr_sbuf *o, const struct pc__backend *b, int n,
                        const struct pc_options *opt, bool tls)
{
    gr_sbuf_addf(o,
                 "global\n"
                 "    maxconn 4096\n"
                 "\n"
                 "defaults\n"
                 "    mode http\n"
                 "    option httplog\n"
                 "    option forwardfor\n"
                 "    %s\n"
                 "    option redispatch\n"
                 "    retries 2\n"
                 "    # connection failures, empty answers and 503 go to the next node;\n"
                 "    # L7 retries need a buffered request, so a streamed upload is never\n"
                 "    # sent twice\n"
                 "    retry-on conn-failure empty-response 503\n"
                 "    timeout connect 2s\n"
                 "    timeout client %ds\n"
                 "    timeout server %ds\n"
                 "    timeout http-request 30s\n"
                 "    timeout http-keep-alive 10s\n"
                 "\n"
                 "frontend %s\n"
                 "    bind %s\n",
                 opt->keepalive > 0 ? "http-reuse safe" : "option http-server-close",
                 opt->read_timeout_s, opt->read_timeout_s, opt->upstream_name, opt->listen);
    if (tls)
        gr_sbuf_addf(o,
                     "    # HAProxy reads the key from the certificate file or from\n"
                     "    # the same name with .key appended\n"
                     "    bind %s ssl crt %s\n",
                     opt->tls_listen, opt->tls_cert);
    gr_sbuf_addf(o,
                 "    http-request disable-l7-retry if METH_POST\n"
                 "    http-request set-header X-Forwarded-Proto https if { ssl_fc }\n"
                 "    http-request set-header X-Forwarded-Proto http if !{ ssl_fc }\n"
                 "    http-request set-header X-Forwarded-Host %%[req.hdr(host)]\n"
                 "    http-request set-header X-Forwarded-Port %%[dst_port]\n"
                 "    default_backend %s_nodes\n"
                 "\n"
                 "backend %s_nodes\n"
                 "    balance roundrobin\n"
                 "    option httpchk GET /api/v1/system/readiness\n"
                 "    http-check expect status 200\n"
                 "    default-server inter 1s fastinter 500ms downinter 1s fall 2 rise 2\n",
                 opt->upstream_name, opt->upstream_name);
    for (int i = 0; i < n; i++)
        gr_sbuf_addf(o, "    server %s %s:%d check\n", b[i].id, b[i].host, b[i].port);
}

static void pc__apache(struct gr_sbuf *o, const struct pc__backend *b, int n,
                       const struct pc_options *opt, bool tls)
{
    gr_sbuf_addf(o,
                 "# modules: proxy proxy_http proxy_balancer proxy_hcheck lbmethod_byrequests\n"
                 "# headers slotmem_shm%s (a2enmod ...)\n",
                 tls ? " ssl" : "");
    char reuse[32] = " disablereuse=On";
    if (opt->keepalive > 0)
        snprintf(reuse, sizeof(reuse), " ttl=%d", PC_IDLE_S);
    int port = pc__listen_port(opt->listen);
    if (port != 80)
        gr_sbuf_addf(o, "Listen %s\n", opt->listen);
    if (tls && pc__listen_port(opt->tls_listen) != 443)
        gr_sbuf_addf(o, "Listen %s\n", opt->tls_listen);
    gr_sbuf_addf(o, "\n<Proxy \"balancer://%s\">\n", opt->upstream_name);
    for (int i = 0; i < n; i++)
        gr_sbuf_addf(o,
                     "    BalancerMember \"http://%s:%d\" route=%s retry=%d connectiontimeout=2 "
                     "hcmethod=GET hcuri=/api/v1/system/readiness hcinterval=2 hcpasses=2 "
                     "hcfails=1%s\n",
                     b[i].host, b[i].port, b[i].id, opt->fail_timeout_s, reuse);
    gr_sbuf_addf(o,
                 "    ProxySet lbmethod=byrequests failonstatus=503 timeout=%d\n"
                 "</Proxy>\n",
                 opt->read_timeout_s);
    for (int t = 0; t < (tls ? 2 : 1); t++) {
        const char *l = t ? opt->tls_listen : opt->listen;
        const char *c = strrchr(l, ':');
        gr_sbuf_addf(o, "\n<VirtualHost *:%s>\n    ServerName %s\n", c ? c + 1 : l,
                     opt->server_name);
        if (t)
            gr_sbuf_addf(o,
                         "    SSLEngine on\n"
                         "    SSLCertificateFile %s\n"
                         "    SSLCertificateKeyFile %s\n",
                         opt->tls_cert, opt->tls_key);
        gr_sbuf_addf(o,
                     "    LimitRequestBody 0\n"
                     "    ProxyRequests Off\n"
                     "    ProxyPreserveHost On\n"
                     "    ProxyTimeout %d\n"
                     "    AllowEncodedSlashes NoDecode\n"
                     "    RequestHeader set X-Forwarded-Proto \"%s\"\n"
                     "    RequestHeader set X-Forwarded-Port \"%s\"\n"
                     "    ProxyPass \"/\" \"balancer://%s/\" nocanon\n"
                     "    ProxyPassReverse \"/\" \"balancer://%s/\"\n"
                     "</VirtualHost>\n",
                     opt->read_timeout_s, t ? "https" : "http", c ? c + 1 : l, opt->upstream_name,
                     opt->upstream_name);
    }
}

int pc_write(enum pc_type t, const struct pc_node *nodes, int n, const struct pc_options *o,
             struct gr_sbuf *out)
{
    if (n <= 0)
        return GR_ENOTFOUND;
    struct pc_options opt = *o;
    if (!opt.listen)
        opt.listen = "80";
    if (!opt.tls_listen)
        opt.tls_listen = "443";
    if (!opt.server_name)
        opt.server_name = t == PC_NGINX ? "_" : "granary";
    if (!opt.upstream_name)
        opt.upstream_name = "granary";
    if (opt.read_timeout_s <= 0)
        opt.read_timeout_s = 900;
    if (opt.fail_timeout_s <= 0)
        opt.fail_timeout_s = 5;
    if (opt.keepalive == 0)
        opt.keepalive = t == PC_HAPROXY ? -1 : 32;
    if (!pc__safe(opt.listen) || !pc__safe(opt.tls_listen) || !pc__safe(opt.server_name) ||
        !pc__safe(opt.upstream_name) || !pc__safe(opt.tls_cert) || !pc__safe(opt.tls_key) ||
        pc__listen_port(opt.listen) <= 0 || pc__listen_port(opt.tls_listen) <= 0)
        return GR_EINVAL;
    bool tls = opt.tls_cert && opt.tls_key;
    if ((opt.tls_cert != NULL) != (opt.tls_key != NULL) && t != PC_HAPROXY)
        return GR_EINVAL;
    if (t == PC_HAPROXY && opt.tls_cert)
        tls = true;

    struct pc__backend *b = calloc((size_t)n, sizeof(*b));
    if (!b)
        return GR_ENOMEM;
    int nb = 0, active = 0;
    for (int pass = 0; pass < 2 && nb == 0; pass++) {
        for (int i = 0; i < n; i++) {
            bool is_active = nodes[i].state && !strcmp(nodes[i].state, "active");
            if (pass == 0 && !is_active)
                continue;
            if (!nodes[i].id || !pc__safe(nodes[i].id) || !pc__parse_url(nodes[i].url, &b[nb])) {
                free(b);
                return GR_EINVAL;
            }
            b[nb].id = nodes[i].id;
            active += pass == 0;
            nb++;
        }
    }
    gr_sbuf_addf(out,
                 "# granary %s configuration, generated from the cluster's node list:\n"
                 "# %d active node%s. Regenerate it when nodes join or leave\n"
                 "# (granaryctl proxy-config --watch). The cluster port is never exposed.\n",
                 pc_type_name(t), active, active == 1 ? "" : "s");
    if (active == 0)
        gr_sbuf_adds(out, "# no node is active: every known node is listed (fail open)\n");
    gr_sbuf_adds(out, "\n");
    switch (t) {
    case PC_NGINX:
        pc__nginx(out, b, nb, &opt, tls);
        break;
    case PC_APACHE:
        pc__apache(out, b, nb, &opt, tls);
        break;
    case PC_HAPROXY:
        pc__haproxy(out, b, nb, &opt, tls);
        break;
    }
    free(b);
    return GR_OK;
}
