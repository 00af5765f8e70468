/*
 * test_peer.c - the tee of blobstore/peer.c (a body streamed to several
 * peers as it arrives) against real HTTP servers on loopback
 * (libmicrohttpd): every byte in order through many turns of the ring, a
 * peer that answers before the body drops out without stopping the
 * others, a slow peer holds the writer back instead of losing bytes.
 */
#include "peer.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A receiving server: sums what it gets (FNV-1a over the bytes, in order). */
struct rx {
    struct MHD_Daemon *d;
    int port;
    int status;         /* its answer: 201 after the body, or this at once */
    useconds_t delay;   /* per chunk received: a slow peer */
    int delay_chunks;   /* only the first this many (0: all) */
    int delayed;        /* chunks delayed so far */
    uint64_t got, hash; /* of the last request */
};

struct rx_req {
    uint64_t got, hash;
};

static enum MHD_Result rx_handler(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **ptr)
{
    (void)url;
    (void)method;
    (void)version;
    struct rx *x = cls;
    struct rx_req *q = *ptr;
    if (!q) {
        q = calloc(1, sizeof(*q));
        q->hash = 1469598103934665603ull;
        *ptr = q;
        if (x->status == 201)
            return MHD_YES;
        /* answer before the body */
        struct MHD_Response *r =
            MHD_create_response_from_buffer(4, (void *)"nope", MHD_RESPMEM_PERSISTENT);
        enum MHD_Result rc = MHD_queue_response(c, (unsigned)x->status, r);
        MHD_destroy_response(r);
        return rc;
    }
    if (x->status != 201) {
        *size = 0;
        return MHD_YES;
    }
    if (*size) {
        for (size_t i = 0; i < *size; i++)
            q->hash = (q->hash ^ (unsigned char)data[i]) * 1099511628211ull;
        q->got += *size;
        *size = 0;
        if (x->delay && (x->delay_chunks == 0 || x->delayed++ < x->delay_chunks))
            usleep(x->delay);
        return MHD_YES;
    }
    x->got = q->got;
    x->hash = q->hash;
    char body[64];
    int n = snprintf(body, sizeof(body), "%llu", (unsigned long long)q->got);
    struct MHD_Response *r =
        MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc = MHD_queue_response(c, 201, r);
    MHD_destroy_response(r);
    return rc;
}

static void rx_done(void *cls, struct MHD_Connection *c, void **ptr,
                    enum MHD_RequestTerminationCode t)
{
    (void)cls;
    (void)c;
    (void)t;
    free(*ptr);
    *ptr = NULL;
}

static void rx_start(struct rx *x, int status, useconds_t delay)
{
    x->status = status;
    x->delay = delay;
    x->d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                         rx_handler, x, MHD_OPTION_NOTIFY_COMPLETED, rx_done, NULL, MHD_OPTION_END);
    assert_non_null(x->d);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(x->d, MHD_DAEMON_INFO_BIND_PORT);
    x->port = info->port;
}

/* The body: size bytes of a known pattern, written in chunks of odd sizes. */
static uint64_t body_write(struct bs_peer_tee *t, uint64_t size)
{
    unsigned char buf[70001];
    uint64_t hash = 1469598103934665603ull, off = 0;
    size_t step = 1;
    while (off < size) {
        size_t n = step % sizeof(buf) + 1;
        if (n > size - off)
            n = (size_t)(size - off);
        for (size_t i = 0; i < n; i++) {
            buf[i] = (unsigned char)((off + i) * 2654435761u >> 13);
            hash = (hash ^ buf[i]) * 1099511628211ull;
        }
        bs_peer_tee_write(t, buf, n);
        off += n;
        step = step * 7 + 13;
    }
    return hash;
}

/* Three peers, 9 MiB (four turns of the ring): two get every byte in order, one refuses at once. */
static void test_tee_every_byte_in_order(void **state)
{
    (void)state;
    struct rx a = {0}, b = {0}, bad = {0};
    rx_start(&a, 201, 0);
    rx_start(&b, 201, 0);
    rx_start(&bad, 503, 0);
    char ua[64], ub[64], uc[64];
    snprintf(ua, sizeof(ua), "http://127.0.0.1:%d/v1/stages", a.port);
    snprintf(ub, sizeof(ub), "http://127.0.0.1:%d/v1/stages", b.port);
    snprintf(uc, sizeof(uc), "http://127.0.0.1:%d/v1/stages", bad.port);
    struct bs_peer_req reqs[3] = {{.url = ua}, {.url = uc}, {.url = ub}};
    struct bs_peer_tee *t = NULL;
    assert_int_equal(bs_peer_tee_open(reqs, 3, 10, &t), 0);
    uint64_t size = 9ull * 1024 * 1024 + 12345;
    uint64_t hash = body_write(t, size);
    bs_peer_tee_finish(t);
    bs_peer_tee_free(t);
    assert_int_equal(reqs[0].status, 201);
    assert_int_equal(reqs[2].status, 201);
    assert_int_equal(reqs[1].status, 503);
    assert_int_equal(a.got, size);
    assert_int_equal(b.got, size);
    assert_true(a.hash == hash);
    assert_true(b.hash == hash);
    assert_int_equal(strtoull(reqs[0].body, NULL, 10), size);
    MHD_stop_daemon(a.d);
    MHD_stop_daemon(b.d);
    MHD_stop_daemon(bad.d);
}

/* A slow peer: the writer waits for it (the ring is full) and it still gets every byte. */
static void test_tee_slow_peer_holds_the_writer(void **state)
{
    (void)state;
    struct rx slow = {0};
    rx_start(&slow, 201, 2000); /* 2 ms per chunk received */
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/v1/stages", slow.port);
    struct bs_peer_req req = {.url = u};
    struct bs_peer_tee *t = NULL;
    assert_int_equal(bs_peer_tee_open(&req, 1, 10, &t), 0);
    uint64_t size = 5ull * 1024 * 1024;
    uint64_t hash = body_write(t, size);
    bs_peer_tee_finish(t);
    bs_peer_tee_free(t);
    assert_int_equal(req.status, 201);
    assert_int_equal(slow.got, size);
    assert_true(slow.hash == hash);
    MHD_stop_daemon(slow.d);
}

/*
 * A peer that stops taking bytes (1.5 s for each of the first 4 chunks it
 * reads) while a healthy one keeps up: after stall_s without progress it
 * is dropped, with the reason, and the writer goes on; the other peer gets
 * the whole body. (Without the drop, the stuck peer would catch up and
 * answer 201.)
 */
static void test_tee_stalled_peer_dropped(void **state)
{
    (void)state;
    struct rx stuck = {0}, good = {0};
    rx_start(&stuck, 201, 1500000);
    stuck.delay_chunks = 4;
    rx_start(&good, 201, 0);
    char us[64], ug[64];
    snprintf(us, sizeof(us), "http://127.0.0.1:%d/v1/stages", stuck.port);
    snprintf(ug, sizeof(ug), "http://127.0.0.1:%d/v1/stages", good.port);
    struct bs_peer_req reqs[2] = {{.url = us}, {.url = ug}};
    struct bs_peer_tee *t = NULL;
    assert_int_equal(bs_peer_tee_open(reqs, 2, 1, &t), 0);
    /* more than the ring and both sockets' buffers hold */
    uint64_t size = 48ull * 1024 * 1024;
    uint64_t hash = body_write(t, size);
    bs_peer_tee_finish(t);
    bs_peer_tee_free(t);
    assert_int_equal(reqs[0].status, 0);
    assert_non_null(strstr(reqs[0].error, "stalled"));
    assert_int_equal(reqs[1].status, 201);
    assert_int_equal(good.got, size);
    assert_true(good.hash == hash);
    MHD_stop_daemon(good.d);
    MHD_stop_daemon(stuck.d);
}

/* Aborted mid-body (the client went away): the peer never sees a complete body. */
static void test_tee_abort(void **state)
{
    (void)state;
    struct rx a = {0};
    rx_start(&a, 201, 0);
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/v1/stages", a.port);
    struct bs_peer_req req = {.url = u};
    struct bs_peer_tee *t = NULL;
    assert_int_equal(bs_peer_tee_open(&req, 1, 10, &t), 0);
    body_write(t, 3ull * 1024 * 1024);
    bs_peer_tee_free(t);
    assert_int_equal(req.status, 0);
    assert_int_equal(a.got, 0); /* no request ended with its body complete */
    MHD_stop_daemon(a.d);
}

/* No peer answers (nothing listens): the writes do not block, the answer says why. */
static void test_tee_unreachable(void **state)
{
    (void)state;
    struct rx a = {0};
    rx_start(&a, 201, 0);
    int port = a.port;
    MHD_stop_daemon(a.d); /* the port is closed now */
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/v1/stages", port);
    struct bs_peer_req req = {.url = u};
    struct bs_peer_tee *t = NULL;
    assert_int_equal(bs_peer_tee_open(&req, 1, 10, &t), 0);
    body_write(t, 4ull * 1024 * 1024);
    bs_peer_tee_finish(t);
    bs_peer_tee_free(t);
    assert_int_equal(req.status, 0);
    assert_true(req.error[0] != '\0');
}

int main(void)
{
    if (bs_peer_global_init())
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tee_every_byte_in_order),
        cmocka_unit_test(test_tee_slow_peer_holds_the_writer),
        cmocka_unit_test(test_tee_stalled_peer_dropped),
        cmocka_unit_test(test_tee_abort),
        cmocka_unit_test(test_tee_unreachable),
    };
    int rc = cmocka_run_group_tests_name("peer", tests, NULL, NULL);
    bs_peer_global_cleanup();
    return rc;
}
