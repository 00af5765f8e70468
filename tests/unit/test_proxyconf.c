/*
 * test_proxyconf.c - unit tests of the reverse-proxy configuration writer
 * (proxy/proxyconf.h): which nodes become upstreams, the directives every
 * configuration must hold, TLS, and refusal of values that would break a
 * file. Pure functions: no fixtures. (nginx -t, haproxy -c and
 * apache2ctl -t check real output in tests/integration/70_lb.bats.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "base/err.h"
#include "base/sbuf.h"
#include "proxy/proxyconf.h"

static const struct pc_node three[] = {
    {"n1", "http://10.0.0.1:8081", "active"},
    {"n2", "http://10.0.0.2:8082/", "draining"},
    {"n3", "http://10.0.0.3:8083", "down"},
};

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void pc_write__nginx__only_active_nodes_are_upstreams(void **state)
{
    (void)state;
    struct gr_sbuf sb = GR_SBUF_INIT;
    struct pc_options o = {0};
    assert_int_equal(pc_write(PC_NGINX, three, 3, &o, &sb), GR_OK);
    assert_non_null(strstr(sb.buf, "server 10.0.0.1:8081 max_fails=1"));
    assert_null(strstr(sb.buf, "10.0.0.2"));
    assert_null(strstr(sb.buf, "10.0.0.3"));
    assert_non_null(strstr(sb.buf, "client_max_body_size 0;"));
    assert_non_null(strstr(sb.buf, "proxy_request_buffering off;"));
    assert_non_null(strstr(sb.buf, "proxy_next_upstream error timeout http_502 http_503;"));
    assert_non_null(strstr(sb.buf, "proxy_read_timeout 900s;"));
    assert_non_null(strstr(sb.buf, "X-Forwarded-Port $server_port"));
    assert_non_null(strstr(sb.buf, "listen 80;"));
    assert_null(strstr(sb.buf, "ssl"));
    gr_sbuf_release(&sb);
}

static void pc_write__no_active_node__lists_all_fail_open(void **state)
{
    (void)state;
    struct gr_sbuf sb = GR_SBUF_INIT;
    struct pc_options o = {0};
    assert_int_equal(pc_write(PC_NGINX, three + 1, 2, &o, &sb), GR_OK);
    assert_int_equal(count(sb.buf, "    server 10.0.0."), 2);
    assert_null(strstr(sb.buf, " down;"));
    gr_sbuf_reset(&sb);
    assert_int_equal(pc_write(PC_HAPROXY, three + 1, 2, &o, &sb), GR_OK);
    assert_int_equal(count(sb.buf, " check\n"), 2);
    gr_sbuf_release(&sb);
}

/* Keepalive to the nodes by default where the balancer closes idle
 * connections before a node's header deadline; none when asked (< 0). */
static void pc_write__keepalive__default_on_with_idle_timeout_off_on_request(void **state)
{
    (void)state;
    struct gr_sbuf sb = GR_SBUF_INIT;
    struct pc_options o = {0};
    assert_int_equal(pc_write(PC_NGINX, three, 3, &o, &sb), GR_OK);
    assert_non_null(strstr(sb.buf, "    keepalive 32;\n    keepalive_timeout 10s;\n"));
    assert_non_null(strstr(sb.buf, "proxy_set_header Connection \"\";"));
    gr_sbuf_reset(&sb);
    assert_int_equal(pc_write(PC_APACHE, three, 3, &o, &sb), GR_OK);
    assert_non_null(strstr(sb.buf, " ttl=10\n"));
    assert_null(strstr(sb.buf, "disablereuse"));
    gr_sbuf_reset(&sb);
    assert_int_equal(pc_write(PC_HAPROXY, three, 3, &o, &sb), GR_OK);
    assert_non_null(strstr(sb.buf, "option http-server-close"));
    gr_sbuf_reset(&sb);
    o.keepalive = -1;
    assert_int_equal(pc_write(PC_NGINX, three, 3, &o, &sb), GR_OK);
    assert_null(strstr(sb.buf, "keepalive"));
    assert_null(strstr(sb.buf, "Connection"));
    gr_sbuf_reset(&sb);
    assert_int_equal(pc_write(PC_APACHE, three, 3, &o, &sb), GR_OK);
    assert_non_null(strstr(sb.buf, " disablereuse=On\n"));
    gr_sbuf_reset(&sb);
    o.keepalive = 8;
    assert_int_equal(pc_write(PC_HAPROXY, three, 3, &o, &sb), GR_OK);
    assert_non_null(strstr(sb.buf, "http-reuse safe"));
    gr_sbuf_release(&sb);
}

static void pc_write__haproxy_and_apache__check_readiness(void **state)
{
    (void)state;
    struct gr_sbuf sb = GR_SBUF_INIT;
    struct pc_options o = {.listen = "127.0.0.1:9000"};
    struct pc_node two[] = {{"a", "http://h1:1", "active"}, {"b", "http://h2:2", "active"}};
    assert_int_equal(pc_write(PC_HAPROXY, two, 2, &o, &sb), GR_OK);
    assert_non_null(strstr(sb.buf, "option httpchk GET /api/v1/system/readiness"));
    assert_non_null(strstr(sb.buf, "bind 127.0.0.1:9000\n"));
    assert_int_equal(count(sb.buf, " check\n"), 2);
    gr_sbuf_reset(&sb);
    assert_int_equal(pc_write(PC_APACHE, two, 2, &o, &sb), GR_OK);
    assert_int_equal(count(sb.buf, "BalancerMember \"http://h"), 2);
    assert_non_null(strstr(sb.buf, "hcuri=/api/v1/system/readiness"));
    assert_non_null(strstr(sb.buf, "Listen 127.0.0.1:9000\n"));
    assert_non_null(strstr(sb.buf, "LimitRequestBody 0"));
    gr_sbuf_release(&sb);
}

static void pc_write__tls__certificate_paths_in_every_type(void **state)
{
    (void)state;
    struct gr_sbuf sb = GR_SBUF_INIT;
    struct pc_options o = {.tls_cert = "/etc/ssl/g.crt", .tls_key = "/etc/ssl/g.key"};
    assert_int_equal(pc_write(PC_NGINX, three, 1, &o, &sb), GR_OK);
    assert_non_null(strstr(sb.buf, "listen 443 ssl;"));
    assert_non_null(strstr(sb.buf, "ssl_certificate /etc/ssl/g.crt;"));
    assert_non_null(strstr(sb.buf, "ssl_certificate_key /etc/ssl/g.key;"));
    gr_sbuf_reset(&sb);
    assert_int_equal(pc_write(PC_APACHE, three, 1, &o, &sb), GR_OK);
    assert_non_null(strstr(sb.buf, "SSLCertificateFile /etc/ssl/g.crt"));
    assert_non_null(strstr(sb.buf, "X-Forwarded-Proto \"https\""));
    gr_sbuf_reset(&sb);
    assert_int_equal(pc_write(PC_HAPROXY, three, 1, &o, &sb), GR_OK);
    assert_non_null(strstr(sb.buf, "bind 443 ssl crt /etc/ssl/g.crt"));
    /* a certificate without its key: refused (HAProxy reads both from one file) */
    struct pc_options half = {.tls_cert = "/x.crt"};
    gr_sbuf_reset(&sb);
    assert_int_equal(pc_write(PC_NGINX, three, 1, &half, &sb), GR_EINVAL);
    gr_sbuf_release(&sb);
}

static void pc_write__unsafe_values__refused(void **state)
{
    (void)state;
    struct gr_sbuf sb = GR_SBUF_INIT;
    struct pc_options bad[] = {
        {.server_name = "a;b"},   {.server_name = "a b"},
        {.listen = "80 default"}, {.tls_cert = "/a\"", .tls_key = "/k"},
        {.listen = "x"},          {.server_name = ""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gr_sbuf_reset(&sb);
        assert_int_equal(pc_write(PC_NGINX, three, 1, &bad[i], &sb), GR_EINVAL);
    }
    struct pc_options o = {0};
    const char *urls[] = {"https://h:1", "http://h:0", "http://h:99999", "http://h;x:1",
                          "http://:80",  "ftp://h",    "http://h:12ab",  NULL};
    for (int i = 0; urls[i]; i++) {
        struct pc_node n = {"n", urls[i], "active"};
        gr_sbuf_reset(&sb);
        assert_int_equal(pc_write(PC_NGINX, &n, 1, &o, &sb), GR_EINVAL);
    }
    struct pc_node evil = {"n}", "http://h:1", "active"};
    assert_int_equal(pc_write(PC_HAPROXY, &evil, 1, &o, &sb), GR_EINVAL);
    assert_int_equal(pc_write(PC_NGINX, three, 0, &o, &sb), GR_ENOTFOUND);
    gr_sbuf_release(&sb);
}

static void pc_write__url_forms__host_and_port(void **state)
{
    (void)state;
    struct gr_sbuf sb = GR_SBUF_INIT;
    struct pc_options o = {0};
    struct pc_node n[] = {{"a", "http://[::1]:8081", "active"}, {"b", "http://host", "active"}};
    assert_int_equal(pc_write(PC_NGINX, n, 2, &o, &sb), GR_OK);
    assert_non_null(strstr(sb.buf, "server [::1]:8081 "));
    assert_non_null(strstr(sb.buf, "server host:80 "));
    gr_sbuf_release(&sb);
}

static void pc_type_parse__names(void **state)
{
    (void)state;
    enum pc_type t;
    assert_int_equal(pc_type_parse("nginx", &t), GR_OK);
    assert_int_equal(t, PC_NGINX);
    assert_int_equal(pc_type_parse("apache", &t), GR_OK);
    assert_int_equal(t, PC_APACHE);
    assert_int_equal(pc_type_parse("haproxy", &t), GR_OK);
    assert_int_equal(t, PC_HAPROXY);
    assert_int_equal(pc_type_parse("iis", &t), GR_EINVAL);
    assert_int_equal(pc_type_parse(NULL, &t), GR_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pc_write__nginx__only_active_nodes_are_upstreams),
        cmocka_unit_test(pc_write__no_active_node__lists_all_fail_open),
        cmocka_unit_test(pc_write__keepalive__default_on_with_idle_timeout_off_on_request),
        cmocka_unit_test(pc_write__haproxy_and_apache__check_readiness),
        cmocka_unit_test(pc_write__tls__certificate_paths_in_every_type),
        cmocka_unit_test(pc_write__unsafe_values__refused),
        cmocka_unit_test(pc_write__url_forms__host_and_port),
        cmocka_unit_test(pc_type_parse__names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
