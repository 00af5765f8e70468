/*
 * h_proxy.c - GET /api/system/configuration/reverseProxy/{nginx,apache,haproxy}:
 * a load balancer's configuration from the live node list (proxy/proxyconf.h).
 */
#include "http/req.h"

#include "base/err.h"
#include "base/sbuf.h"
#include "cluster/cluster.h"
#include "proxy/proxyconf.h"

#include <stdlib.h>
#include <string.h>

/*
 * Query parameters: listen, sslListen, serverName, sslCertificate, sslKey,
 * readTimeout (seconds), keepalive (idle connections to the nodes). A single node (no cluster)
 * lists itself.
 */
void h_proxy(struct http_req *r, const char *type)
{
    if (r->method != HM_GET && r->method != HM_HEAD) {
        http_error(r, 405, "method %s not allowed here", r->method_str);
        return;
    }
    enum pc_type t;
    if (pc_type_parse(type, &t)) {
        http_error(r, 404, "no reverse-proxy type '%s' (nginx, apache, haproxy)", type);
        return;
    }
    if (!http_need_admin(r))
        return;
    struct cluster_status st;
    int rc = cluster_status(r->ctx->cluster, r->ctx, r->arena, &st);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    struct pc_node *nodes = gr_arena_calloc(r->arena, (size_t)(st.n ? st.n : 1) * sizeof(*nodes));
    for (int i = 0; i < st.n; i++)
        nodes[i] = (struct pc_node){st.nodes[i].id, st.nodes[i].url, st.nodes[i].state};
    int n = st.n;
    if (n == 0 && !r->ctx->cluster) { /* a single node: itself */
        const char *host = r->srv->opt.host;
        if (!host || !*host || !strcmp(host, "0.0.0.0") || !strcmp(host, "::"))
            host = "127.0.0.1";
        nodes[0] = (struct pc_node){"node",
                                    gr_arena_printf(r->arena, "http://%s%s%s:%d",
                                                    strchr(host, ':') ? "[" : "", host,
                                                    strchr(host, ':') ? "]" : "", r->srv->opt.port),
                                    "active"};
        n = 1;
    }
    const char *rt = http_query(r, "readTimeout");
    const char *ka = http_query(r, "keepalive");
    struct pc_options o = {
        .listen = http_query(r, "listen"),
        .tls_listen = http_query(r, "sslListen"),
        .server_name = http_query(r, "serverName"),
        .tls_cert = http_query(r, "sslCertificate"),
        .tls_key = http_query(r, "sslKey"),
        .read_timeout_s = rt ? atoi(rt) : 0,
        .keepalive = ka ? atoi(ka) : 0,
    };
    struct gr_sbuf sb = GR_SBUF_INIT;
    rc = pc_write(t, nodes, n, &o, &sb);
    if (rc == GR_ENOTFOUND)
        http_error(r, 503, "the cluster lists no node yet");
    else if (rc == GR_EINVAL)
        http_error(r, 400,
                   "a parameter or a node's URL cannot go into the configuration "
                   "(quotes, spaces, ';', braces; URLs must be http://host:port)");
    else if (rc)
        http_error_code(r, rc, NULL);
    else
        http_text(r, 200, "text/plain; charset=utf-8", sb.buf, sb.len);
    gr_sbuf_release(&sb);
}
