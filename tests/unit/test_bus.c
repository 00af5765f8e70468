/*
 * test_bus.c - unit tests of zmq-bus (bus.h): the wire format on its own
 * (round trip, every truncation, bit flips, crafted fields, random bytes),
 * then real buses in this process on 127.0.0.1 with ephemeral ports:
 * requests and acks with replies, nacks, timeouts, a peer restarted with a
 * new incarnation, a peer with the wrong key, broadcasts, replays and gaps
 * (crafted with bus_send_raw()), concurrent callers, and overflow.
 * HMAC-SHA256 is cr_hmac_sha256() from the daemon's crypto helpers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "crypto/crypto.h"

#define KEY "0123456789abcdef-granary-test-key"
#define OTHER_KEY "fedcba9876543210-granary-evil-key"
#define LOOPBACK "tcp://127.0.0.1:*"
#define WAIT_MS 3000 /* upper bound for anything that should happen promptly */

/* ---- helpers: time, randomness ----------------------------------------- */

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* ---- helpers: messages ---------------------------------------------------- */

static void msg_set(struct bus_msg *m, uint8_t kind, const char *from, const char *to, uint64_t inc,
                    uint64_t seq, const char *payload)
{
    memset(m, 0, sizeof(*m));
    m->kind = kind;
    m->type = 9;
    strcpy(m->sender, from);
    strcpy(m->recipient, to);
    m->incarnation = inc;
    m->seq = seq;
    m->id = 0x1122334455667788u;
    m->ref_incarnation = (kind == BUS_ACK || kind == BUS_NACK) ? 0xa5a5a5a5a5a5a5a5u : 0;
    m->time_ms = wall_ms();
    m->payload = payload;
    m->len = payload != NULL ? strlen(payload) : 0;
}

/* Encode m under key into buf; returns the length. */
static size_t enc(const struct bus_msg *m, const char *key, unsigned char *buf, size_t bufsz)
{
    size_t len = 0;
    assert_int_equal(bus_msg_encode(m, cr_hmac_sha256, key, strlen(key), buf, bufsz, &len), BUS_OK);
    return len;
}

static int dec(const unsigned char *buf, size_t len, struct bus_msg *m)
{
    return bus_msg_decode(buf, len, cr_hmac_sha256, KEY, strlen(KEY), m);
}

/* Recompute the MAC after editing a message, so that only the structure
 * checks can refuse it. */
static void remac(unsigned char *buf, size_t len)
{
    cr_hmac_sha256(KEY, strlen(KEY), buf, len - BUS_MAC_LEN, buf + len - BUS_MAC_LEN);
}

/* ---- wire format ---------------------------------------------------------- */

static void msg_encode_decode__every_kind__round_trip(void **state)
{
    (void)state;
    static const uint8_t kinds[] = {BUS_REQUEST, BUS_ACK, BUS_NACK, BUS_EVENT};
    char longid[BUS_MAX_ID + 1];
    memset(longid, 'x', BUS_MAX_ID);
    longid[BUS_MAX_ID] = '\0';
    for (size_t k = 0; k < 4; k++) {
        for (int variant = 0; variant < 2; variant++) {
            struct bus_msg m, out;
            const char *payload = variant ? NULL : "keys: repo/a repo/b";
            msg_set(&m, kinds[k], variant ? longid : "node-a", variant ? "b" : "node-b",
                    0xdeadbeefcafef00du, 42 + k, payload);
            unsigned char buf[512];
            size_t len = enc(&m, KEY, buf, sizeof(buf));
            assert_int_equal(len, bus_msg_size(strlen(m.sender), strlen(m.recipient), m.len));
            assert_int_equal(buf[0], BUS_WIRE_VERSION);
            assert_int_equal(dec(buf, len, &out), BUS_OK);
            assert_int_equal(out.kind, m.kind);
            assert_int_equal(out.type, 9);
            assert_string_equal(out.sender, m.sender);
            assert_string_equal(out.recipient, m.recipient);
            assert_true(out.incarnation == m.incarnation);
            assert_true(out.seq == m.seq);
            assert_true(out.id == m.id);
            assert_true(out.ref_incarnation == m.ref_incarnation);
            assert_true(out.time_ms == m.time_ms);
            assert_int_equal(out.len, m.len);
            if (m.len > 0)
                assert_memory_equal(out.payload, payload, m.len);
        }
    }
}

static void msg_encode__bad_fields__einval(void **state)
{
    (void)state;
    unsigned char buf[512];
    size_t len;
    struct bus_msg m;
#define EXPECT_EINVAL(edit)                                                                        \
    do {                                                                                           \
        msg_set(&m, BUS_REQUEST, "a", "b", 7, 1, "p");                                             \
        edit;                                                                                      \
        assert_int_equal(                                                                          \
            bus_msg_encode(&m, cr_hmac_sha256, KEY, strlen(KEY), buf, sizeof(buf), &len),          \
            BUS_EINVAL);                                                                           \
    } while (0)
    EXPECT_EINVAL(m.kind = 0);
    EXPECT_EINVAL(m.kind = 5);
    EXPECT_EINVAL(m.sender[0] = '\0');
    EXPECT_EINVAL(memset(m.sender, 'x', sizeof(m.sender))); /* 65 bytes, no NUL */
    EXPECT_EINVAL(m.recipient[0] = '\0');
    EXPECT_EINVAL(m.incarnation = 0);
    EXPECT_EINVAL(m.seq = 0);
    EXPECT_EINVAL(m.id = 0);
    EXPECT_EINVAL(m.ref_incarnation = 3);                     /* a request names no incarnation */
    EXPECT_EINVAL((m.kind = BUS_ACK, m.ref_incarnation = 0)); /* an ack must */
    EXPECT_EINVAL(m.payload = NULL);                          /* with len 1 */
#undef EXPECT_EINVAL
    msg_set(&m, BUS_EVENT, "a", "b", 7, 1, NULL);
    assert_int_equal(bus_msg_encode(NULL, cr_hmac_sha256, KEY, 1, buf, sizeof(buf), &len),
                     BUS_EINVAL);
    assert_int_equal(bus_msg_encode(&m, NULL, KEY, 1, buf, sizeof(buf), &len), BUS_EINVAL);
    assert_int_equal(bus_msg_encode(&m, cr_hmac_sha256, KEY, 0, buf, sizeof(buf), &len),
                     BUS_EINVAL);
    assert_int_equal(bus_msg_encode(&m, cr_hmac_sha256, KEY, 1, NULL, 10, &len), BUS_EINVAL);
    assert_int_equal(bus_msg_encode(&m, cr_hmac_sha256, KEY, 1, buf, sizeof(buf), NULL),
                     BUS_EINVAL);
}

static void msg_encode__small_buffer__erange_with_size(void **state)
{
    (void)state;
    struct bus_msg m;
    msg_set(&m, BUS_EVENT, "abc", "de", 7, 1, "12345");
    unsigned char buf[128];
    memset(buf, 0xee, sizeof(buf));
    size_t need = 0;
    size_t want = BUS_MSG_OVERHEAD + 3 + 2 + 5;
    assert_int_equal(bus_msg_encode(&m, cr_hmac_sha256, KEY, strlen(KEY), buf, want - 1, &need),
                     BUS_ERANGE);
    assert_int_equal(need, want);
    assert_int_equal(buf[0], 0xee); /* untouched */
    assert_int_equal(bus_msg_encode(&m, cr_hmac_sha256, KEY, strlen(KEY), NULL, 0, &need),
                     BUS_ERANGE);
    assert_int_equal(bus_msg_encode(&m, cr_hmac_sha256, KEY, strlen(KEY), buf, want, &need),
                     BUS_OK);
}

static void msg_decode__every_truncation_and_extension__malformed(void **state)
{
    (void)state;
    struct bus_msg m, out;
    msg_set(&m, BUS_REQUEST, "node-a", "node-b", 99, 5, "payload bytes");
    unsigned char buf[256];
    size_t len = enc(&m, KEY, buf, sizeof(buf) - 1);
    for (size_t n = 0; n < len; n++)
        assert_int_equal(dec(buf, n, &out), BUS_EMALFORMED);
    buf[len] = 0;
    assert_int_equal(dec(buf, len + 1, &out), BUS_EMALFORMED);
    assert_int_equal(dec(NULL, 0, &out), BUS_EMALFORMED);
    assert_int_equal(dec(NULL, 5, &out), BUS_EINVAL);
    assert_int_equal(dec(buf, len, NULL), BUS_EINVAL);
    assert_int_equal(bus_msg_decode(buf, len, NULL, KEY, 3, &out), BUS_EINVAL);
    assert_int_equal(bus_msg_decode(buf, len, cr_hmac_sha256, KEY, 0, &out), BUS_EINVAL);
}

static void msg_decode__unknown_version__eversion(void **state)
{
    (void)state;
    struct bus_msg m, out;
    msg_set(&m, BUS_EVENT, "a", "b", 1, 1, "x");
    unsigned char buf[256];
    size_t len = enc(&m, KEY, buf, sizeof(buf));
    static const unsigned char versions[] = {0, 2, 0x7f, 0xff};
    for (size_t i = 0; i < sizeof(versions); i++) {
        buf[0] = versions[i];
        remac(buf, len);
        assert_int_equal(dec(buf, len, &out), BUS_EVERSION);
        assert_int_equal(dec(buf, 1, &out), BUS_EVERSION); /* the version is read first */
    }
}

static void msg_decode__any_bit_flipped__refused(void **state)
{
    (void)state;
    struct bus_msg m, out;
    msg_set(&m, BUS_ACK, "node-a", "node-b", 0x0123456789abcdefu, 0x0102030405060708u,
            "reply payload");
    unsigned char buf[256];
    size_t len = enc(&m, KEY, buf, sizeof(buf));
    size_t ids_end = 6 + strlen("node-a") + strlen("node-b");
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (unsigned char)(1u << bit);
            int rc = dec(buf, len, &out);
            assert_int_not_equal(rc, BUS_OK);
            /* past the ids and the length field, structure stays valid, so
             * only the MAC can tell */
            if (i >= ids_end + 44)
                assert_int_equal(rc, BUS_EFORGED);
            buf[i] ^= (unsigned char)(1u << bit);
        }
    }
    assert_int_equal(dec(buf, len, &out), BUS_OK);
}

static void msg_decode__other_key__eforged(void **state)
{
    (void)state;
    struct bus_msg m, out;
    msg_set(&m, BUS_REQUEST, "evil", "node-b", 5, 1, "invalidate everything");
    unsigned char buf[256];
    size_t len = enc(&m, OTHER_KEY, buf, sizeof(buf));
    assert_int_equal(dec(buf, len, &out), BUS_EFORGED);
    /* same key, but a prefix of it */
    assert_int_equal(
        bus_msg_decode(buf, len, cr_hmac_sha256, OTHER_KEY, strlen(OTHER_KEY) - 1, &out),
        BUS_EFORGED);
}

static void msg_decode__crafted_fields__malformed(void **state)
{
    (void)state;
    struct bus_msg m, out;
    unsigned char buf[256];
    size_t len;
    /* sender "a", recipient "b": ids at 6 and 7, numbers from 8 */
    enum { INC = 8, SEQ = 16, ID = 24, REF = 32, PLEN = 48 };
#define EXPECT_MALFORMED(kind, edit)                                                               \
    do {                                                                                           \
        msg_set(&m, kind, "a", "b", 0x1111111111111111u, 3, "payload");                            \
        len = enc(&m, KEY, buf, sizeof(buf));                                                      \
        edit;                                                                                      \
        remac(buf, len);                                                                           \
        assert_int_equal(dec(buf, len, &out), BUS_EMALFORMED);                                     \
    } while (0)
    EXPECT_MALFORMED(BUS_EVENT, buf[1] = 0); /* kind */
    EXPECT_MALFORMED(BUS_EVENT, buf[1] = 5);
    EXPECT_MALFORMED(BUS_EVENT, buf[3] = 1); /* reserved flags */
    EXPECT_MALFORMED(BUS_EVENT, buf[4] = 0); /* sender length */
    EXPECT_MALFORMED(BUS_EVENT, buf[4] = BUS_MAX_ID + 1);
    EXPECT_MALFORMED(BUS_EVENT, buf[4] = 200);
    EXPECT_MALFORMED(BUS_EVENT, buf[5] = 0);    /* recipient length */
    EXPECT_MALFORMED(BUS_EVENT, buf[5] = 2);    /* lengths no longer add up */
    EXPECT_MALFORMED(BUS_EVENT, buf[6] = '\0'); /* NUL in an id */
    EXPECT_MALFORMED(BUS_EVENT, buf[7] = '\0');
    EXPECT_MALFORMED(BUS_EVENT, memset(buf + INC, 0, 8)); /* zero incarnation */
    EXPECT_MALFORMED(BUS_EVENT, memset(buf + SEQ, 0, 8)); /* zero seq */
    EXPECT_MALFORMED(BUS_EVENT, memset(buf + ID, 0, 8));  /* zero id */
    EXPECT_MALFORMED(BUS_REQUEST, buf[REF + 7] = 1);      /* request naming an incarnation */
    EXPECT_MALFORMED(BUS_ACK, memset(buf + REF, 0, 8));   /* ack naming none */
    EXPECT_MALFORMED(BUS_NACK, memset(buf + REF, 0, 8));
    EXPECT_MALFORMED(BUS_EVENT, buf[PLEN + 3]++);  /* payload length too big */
    EXPECT_MALFORMED(BUS_EVENT, buf[PLEN + 3]--);  /* too small */
    EXPECT_MALFORMED(BUS_EVENT, buf[PLEN] = 0xff); /* huge */
#undef EXPECT_MALFORMED
}

static void msg_decode__random_bytes__refused_never_crash(void **state)
{
    (void)state;
    unsigned char buf[400];
    struct bus_msg out, m;
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(rnd() % sizeof(buf));
        for (size_t i = 0; i < len; i++)
            buf[i] = (unsigned char)rnd();
        if (len > 0 && (round & 1))
            buf[0] = BUS_WIRE_VERSION;
        if (len > 6 && (round & 2)) { /* plausible head */
            buf[1] = (unsigned char)(1 + rnd() % 4);
            buf[3] = 0;
            buf[4] = (unsigned char)(1 + rnd() % 8);
            buf[5] = (unsigned char)(1 + rnd() % 8);
        }
        int rc = dec(buf, len, &out);
        assert_true(rc == BUS_EMALFORMED || rc == BUS_EVERSION || rc == BUS_EFORGED);
    }
    /* random mutations of a valid message */
    msg_set(&m, BUS_REQUEST, "node-a", "node-b", 77, 8, "some payload to damage");
    unsigned char good[256];
    size_t glen = enc(&m, KEY, good, sizeof(good));
    for (int round = 0; round < 20000; round++) {
        memcpy(buf, good, glen);
        int edits = 1 + (int)(rnd() % 4);
        for (int e = 0; e < edits; e++)
            buf[rnd() % glen] = (unsigned char)rnd();
        size_t len = (round & 1) ? glen : (size_t)(rnd() % (glen + 8));
        int rc = dec(buf, len, &out);
        if (rc == BUS_OK) /* only if every edit rewrote a byte with its own value */
            assert_memory_equal(buf, good, glen);
        else
            assert_true(rc == BUS_EMALFORMED || rc == BUS_EVERSION || rc == BUS_EFORGED);
    }
}

static void bus_strerror__every_code__text(void **state)
{
    (void)state;
    for (int e = BUS_OK; e >= BUS_ERANGE; e--) {
        assert_non_null(bus_strerror(e));
        assert_string_not_equal(bus_strerror(e), "unknown error");
    }
    assert_string_equal(bus_strerror(1), "unknown error");
    assert_string_equal(bus_strerror(-1000), "unknown error");
}

/* ---- helpers: nodes -------------------------------------------------------- */

/* A bus plus what its callbacks saw. */
struct node {
    struct bus *b;
    char id[BUS_MAX_ID + 1];
    char endpoint[BUS_MAX_ENDPOINT + 1];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int requests, events, gaps;
    int log;            /* one tick per callback */
    int gap_at, msg_at; /* log tick of the last gap, the last message */
    char gap_sender[BUS_MAX_ID + 1];
    char last_sender[BUS_MAX_ID + 1];
    char last_payload[64];
    uint8_t last_type;
    bool pause;     /* the handler blocks while set */
    bool inside;    /* the handler is blocked now */
    bool nack;      /* the handler refuses requests */
    bool call_self; /* the handler calls bus_request_all() on its own bus */
    int self_rc;
};

struct fx {
    struct node n[4];
};

static int on_message(void *arg, const struct bus_msg *m, void **reply, size_t *reply_len)
{
    struct node *n = arg;
    pthread_mutex_lock(&n->mu);
    n->msg_at = ++n->log;
    if (m->kind == BUS_REQUEST)
        n->requests++;
    else
        n->events++;
    strcpy(n->last_sender, m->sender);
    size_t l = m->len < sizeof(n->last_payload) - 1 ? m->len : sizeof(n->last_payload) - 1;
    memcpy(n->last_payload, m->payload, l);
    n->last_payload[l] = '\0';
    n->last_type = m->type;
    pthread_cond_broadcast(&n->cv);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5; /* never hang the suite */
    while (n->pause) {
        n->inside = true;
        pthread_cond_broadcast(&n->cv);
        if (pthread_cond_timedwait(&n->cv, &n->mu, &until) == ETIMEDOUT)
            break;
    }
    n->inside = false;
    bool nack = n->nack, call_self = n->call_self;
    char payload[64];
    strcpy(payload, n->last_payload);
    pthread_mutex_unlock(&n->mu);

    if (call_self) {
        struct bus_ack_result r;
        int rc = bus_request_all(n->b, 1, NULL, 0, 10, &r);
        pthread_mutex_lock(&n->mu);
        n->self_rc = rc;
        pthread_mutex_unlock(&n->mu);
    }
    assert_non_null(reply);
    assert_non_null(reply_len);
    assert_null(*reply);
    assert_int_equal(*reply_len, 0);
    {
        /* events too: the bus must free it unsent */
        char *r = malloc(128);
        assert_non_null(r);
        *reply_len = (size_t)snprintf(r, 128, "%s:%s", n->id, payload);
        *reply = r;
    }
    return nack ? 1 : 0;
}

static void on_gap(void *arg, const char *sender)
{
    struct node *n = arg;
    pthread_mutex_lock(&n->mu);
    n->gaps++;
    n->gap_at = ++n->log;
    strcpy(n->gap_sender, sender);
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    for (int i = 0; i < 4; i++) {
        pthread_mutex_init(&fx->n[i].mu, NULL);
        pthread_cond_init(&fx->n[i].cv, NULL);
    }
    *state = fx;
    return 0;
}

static void node_close(struct node *n)
{
    if (n->b == NULL)
        return;
    pthread_mutex_lock(&n->mu);
    n->pause = false;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
    bus_close(n->b);
    n->b = NULL;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    for (int i = 0; i < 4; i++) {
        node_close(&fx->n[i]);
        pthread_cond_destroy(&fx->n[i].cv);
        pthread_mutex_destroy(&fx->n[i].mu);
    }
    free(fx);
    return 0;
}

/* Open n as id on endpoint with key; opt may tune the queues. */
static void node_open_opts(struct node *n, const char *id, const char *endpoint, const char *key,
                           const struct bus_options *opt)
{
    struct bus_options o = {0};
    if (opt != NULL)
        o = *opt;
    o.node_id = id;
    o.listen_endpoint = endpoint;
    o.key = key;
    o.key_len = strlen(key);
    struct bus_callbacks cb = {cr_hmac_sha256, on_message, on_gap, n};
    strcpy(n->id, id);
    assert_int_equal(bus_open(&o, &cb, &n->b), BUS_OK);
    strcpy(n->endpoint, bus_endpoint(n->b));
}

static void node_open(struct node *n, const char *id)
{
    node_open_opts(n, id, LOOPBACK, KEY, NULL);
}

/* Make every node of ns[0..k) a peer of every other. */
static void mesh(struct node *ns, int k)
{
    for (int i = 0; i < k; i++) {
        struct bus_peer p[4];
        int m = 0;
        for (int j = 0; j < k; j++)
            if (j != i)
                p[m++] = (struct bus_peer){ns[j].id, ns[j].endpoint};
        assert_int_equal(bus_set_peers(ns[i].b, p, (size_t)m), BUS_OK);
    }
}

/* Retry a request to every peer until all ack: connections are made in the
 * background, and sends to a peer not yet connected are dropped. */
static void warm(struct node *n)
{
    uint64_t until = mono_ms() + WAIT_MS;
    for (;;) {
        struct bus_ack_result r;
        int rc = bus_request_all(n->b, 0, "warm", 4, 500, &r);
        bus_ack_result_free(&r);
        if (rc == BUS_OK)
            return;
        assert_int_equal(rc, BUS_EINCOMPLETE);
        assert_true(mono_ms() < until);
        sleep_ms(5);
    }
}

/* Wait until *field (guarded by n->mu) reaches want. */
static bool wait_field(struct node *n, const int *field, int want)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&n->mu);
    int rc = 0;
    while (*field < want && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&n->cv, &n->mu, &until);
    bool ok = *field >= want;
    pthread_mutex_unlock(&n->mu);
    return ok;
}

static bool wait_inside(struct node *n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&n->mu);
    int rc = 0;
    while (!n->inside && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&n->cv, &n->mu, &until);
    bool ok = n->inside;
    pthread_mutex_unlock(&n->mu);
    return ok;
}

static void set_pause(struct node *n, bool on)
{
    pthread_mutex_lock(&n->mu);
    n->pause = on;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

static int get_int(struct node *n, const int *field)
{
    pthread_mutex_lock(&n->mu);
    int v = *field;
    pthread_mutex_unlock(&n->mu);
    return v;
}

static struct bus_stats stats(struct node *n)
{
    struct bus_stats st;
    bus_stats(n->b, &st);
    return st;
}

/* Wait until a counter of n's bus reaches want. */
#define WAIT_STAT(n, field, want)                                                                  \
    do {                                                                                           \
        uint64_t until_ = mono_ms() + WAIT_MS;                                                     \
        while (stats(n).field < (uint64_t)(want) && mono_ms() < until_)                            \
            sleep_ms(1);                                                                           \
        assert_true(stats(n).field >= (uint64_t)(want));                                           \
    } while (0)

static const struct bus_ack *ack_of(const struct bus_ack_result *r, const char *peer)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->acks[i].peer, peer) == 0)
            return &r->acks[i];
    fail_msg("no result for %s", peer);
    return NULL;
}

/* ---- opening and peers ------------------------------------------------------ */

static void bus_open__bad_options__refused(void **state)
{
    struct fx *fx = *state;
    struct bus_callbacks cb = {cr_hmac_sha256, NULL, NULL, NULL};
    struct bus_options o = {
        .node_id = "a", .listen_endpoint = LOOPBACK, .key = KEY, .key_len = strlen(KEY)};
    struct bus *b = (struct bus *)&o; /* must stay untouched */
    struct bus_options bad;
    assert_int_equal(bus_open(NULL, &cb, &b), BUS_EINVAL);
    assert_int_equal(bus_open(&o, NULL, &b), BUS_EINVAL);
    assert_int_equal(bus_open(&o, &cb, NULL), BUS_EINVAL);
    struct bus_callbacks nohmac = {0};
    assert_int_equal(bus_open(&o, &nohmac, &b), BUS_EINVAL);
    bad = o, bad.node_id = "";
    assert_int_equal(bus_open(&bad, &cb, &b), BUS_EINVAL);
    char longid[BUS_MAX_ID + 2];
    memset(longid, 'i', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    bad = o, bad.node_id = longid;
    assert_int_equal(bus_open(&bad, &cb, &b), BUS_EINVAL);
    bad = o, bad.key_len = BUS_MIN_KEY - 1;
    assert_int_equal(bus_open(&bad, &cb, &b), BUS_EINVAL);
    bad = o, bad.listen_endpoint = "nonsense";
    assert_int_equal(bus_open(&bad, &cb, &b), BUS_EINVAL);
    bad = o, bad.send_hwm = -1;
    assert_int_equal(bus_open(&bad, &cb, &b), BUS_EINVAL);
    bad = o, bad.max_msg_size = 100;
    assert_int_equal(bus_open(&bad, &cb, &b), BUS_EINVAL);
    assert_ptr_equal(b, (struct bus *)&o);

    /* the address is taken */
    node_open(&fx->n[0], "a");
    bad = o, bad.listen_endpoint = fx->n[0].endpoint;
    assert_int_equal(bus_open(&bad, &cb, &b), BUS_EIO);
    assert_int_equal(strncmp(fx->n[0].endpoint, "tcp://127.0.0.1:", 16), 0);
    assert_true(bus_incarnation(fx->n[0].b) != 0);
    bus_close(NULL);
}

static void bus_set_peers__bad_sets__einval_set_unchanged(void **state)
{
    struct fx *fx = *state;
    node_open(&fx->n[0], "a");
    node_open(&fx->n[1], "b");
    struct bus *b = fx->n[0].b;
    struct bus_peer good = {"b", fx->n[1].endpoint};
    assert_int_equal(bus_set_peers(b, &good, 1), BUS_OK);
    struct bus_peer dup[] = {{"b", fx->n[1].endpoint}, {"b", "tcp://127.0.0.1:1"}};
    assert_int_equal(bus_set_peers(b, dup, 2), BUS_EINVAL);
    struct bus_peer noid = {NULL, "tcp://127.0.0.1:1"};
    assert_int_equal(bus_set_peers(b, &noid, 1), BUS_EINVAL);
    struct bus_peer noep = {"c", ""};
    assert_int_equal(bus_set_peers(b, &noep, 1), BUS_EINVAL);
    struct bus_peer badep = {"c", "nonsense://x"};
    assert_int_equal(bus_set_peers(b, &badep, 1), BUS_EINVAL);
    assert_int_equal(bus_set_peers(b, NULL, 1), BUS_EINVAL);
    assert_int_equal(bus_set_peers(NULL, NULL, 0), BUS_EINVAL);

    /* still exactly {b} */
    struct bus_ack_result r;
    warm(&fx->n[0]);
    assert_int_equal(bus_request_all(b, 1, "x", 1, 1000, &r), BUS_OK);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.acks[0].peer, "b");
    bus_ack_result_free(&r);

    /* its own id is ignored; an empty set leaves no target */
    struct bus_peer withself[] = {{"a", fx->n[0].endpoint}, {"b", fx->n[1].endpoint}};
    assert_int_equal(bus_set_peers(b, withself, 2), BUS_OK);
    assert_int_equal(bus_request_all(b, 1, "x", 1, 1000, &r), BUS_OK);
    assert_int_equal(r.n, 1);
    bus_ack_result_free(&r);
    assert_int_equal(bus_set_peers(b, NULL, 0), BUS_OK);
    assert_int_equal(bus_request_all(b, 1, "x", 1, 1000, &r), BUS_OK);
    assert_int_equal(r.n, 0);
    assert_null(r.acks);
    bus_ack_result_free(&r);
}

/* ---- requests and acks ------------------------------------------------------- */

static void request_all__three_nodes__every_peer_acks_with_reply(void **state)
{
    struct fx *fx = *state;
    node_open(&fx->n[0], "a");
    node_open(&fx->n[1], "b");
    node_open(&fx->n[2], "c");
    mesh(fx->n, 3);
    warm(&fx->n[0]);
    struct bus_stats before = stats(&fx->n[0]);
    int breq = get_int(&fx->n[1], &fx->n[1].requests);

    struct bus_ack_result r;
    assert_int_equal(bus_request_all(fx->n[0].b, 42, "repo/a", 6, 1000, &r), BUS_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.n_acked, 2);
    const struct bus_ack *ab = ack_of(&r, "b"), *ac = ack_of(&r, "c");
    assert_int_equal(ab->status, BUS_OK);
    assert_int_equal(ab->reply_len, strlen("b:repo/a"));
    assert_memory_equal(ab->reply, "b:repo/a", ab->reply_len);
    assert_int_equal(ac->status, BUS_OK);
    assert_memory_equal(ac->reply, "c:repo/a", ac->reply_len);
    bus_ack_result_free(&r);
    assert_int_equal(r.n, 0);

    /* the handler ran before the ack, with what was sent */
    assert_int_equal(get_int(&fx->n[1], &fx->n[1].requests), breq + 1);
    pthread_mutex_lock(&fx->n[1].mu);
    assert_string_equal(fx->n[1].last_sender, "a");
    assert_string_equal(fx->n[1].last_payload, "repo/a");
    assert_int_equal(fx->n[1].last_type, 42);
    pthread_mutex_unlock(&fx->n[1].mu);
    struct bus_stats after = stats(&fx->n[0]);
    assert_true(after.acked == before.acked + 2);
    assert_true(after.sent == before.sent + 2);
    assert_true(after.timeouts == before.timeouts);

    /* empty payload, and every other node can ask too */
    warm(&fx->n[2]);
    assert_int_equal(bus_request_all(fx->n[2].b, 1, NULL, 0, 1000, &r), BUS_OK);
    assert_int_equal(r.n_acked, 2);
    bus_ack_result_free(&r);
}

static void request_one__named_peer__only_it_handles(void **state)
{
    struct fx *fx = *state;
    node_open(&fx->n[0], "a");
    node_open(&fx->n[1], "b");
    node_open(&fx->n[2], "c");
    mesh(fx->n, 3);
    warm(&fx->n[0]);
    int creq = get_int(&fx->n[2], &fx->n[2].requests);
    struct bus_ack_result r;
    assert_int_equal(bus_request_one(fx->n[0].b, "b", 3, "one", 3, 1000, &r), BUS_OK);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.acks[0].peer, "b");
    assert_memory_equal(r.acks[0].reply, "b:one", 5);
    bus_ack_result_free(&r);
    assert_int_equal(get_int(&fx->n[2], &fx->n[2].requests), creq);

    assert_int_equal(bus_request_one(fx->n[0].b, "zz", 3, "one", 3, 100, &r), BUS_ENOPEER);
    assert_int_equal(r.n, 0);
    assert_int_equal(bus_request_one(fx->n[0].b, NULL, 3, "one", 3, 100, &r), BUS_EINVAL);
    assert_int_equal(bus_request_all(fx->n[0].b, 3, NULL, 1, 100, &r), BUS_EINVAL);
    assert_int_equal(bus_request_all(fx->n[0].b, 3, "x", 1, -1, &r), BUS_EINVAL);
    assert_int_equal(bus_request_all(fx->n[0].b, 3, "x", 1, 100, NULL), BUS_EINVAL);
    assert_int_equal(bus_request_all(fx->n[0].b, 3, "x", (size_t)8 << 20, 100, &r), BUS_ERANGE);
}

static void request_all__handler_refuses__enack_with_reply(void **state)
{
    struct fx *fx = *state;
    node_open(&fx->n[0], "a");
    node_open(&fx->n[1], "b");
    node_open(&fx->n[2], "c");
    mesh(fx->n, 3);
    warm(&fx->n[0]);
    pthread_mutex_lock(&fx->n[2].mu);
    fx->n[2].nack = true;
    pthread_mutex_unlock(&fx->n[2].mu);
    struct bus_ack_result r;
    assert_int_equal(bus_request_all(fx->n[0].b, 1, "k", 1, 1000, &r), BUS_EINCOMPLETE);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.n_acked, 1);
    assert_int_equal(ack_of(&r, "b")->status, BUS_OK);
    const struct bus_ack *ac = ack_of(&r, "c");
    assert_int_equal(ac->status, BUS_ENACK);
    assert_memory_equal(ac->reply, "c:k", 3);
    bus_ack_result_free(&r);
    assert_true(stats(&fx->n[0]).nacked == 1);
}

static void request_all__paused_peer__timed_out_then_late_ack_counted(void **state)
{
    struct fx *fx = *state;
    node_open(&fx->n[0], "a");
    node_open(&fx->n[1], "b");
    node_open(&fx->n[2], "c");
    mesh(fx->n, 3);
    warm(&fx->n[0]);
    set_pause(&fx->n[2], true);
    struct bus_ack_result r;
    uint64_t t0 = mono_ms();
    assert_int_equal(bus_request_all(fx->n[0].b, 1, "k", 1, 150, &r), BUS_EINCOMPLETE);
    uint64_t took = mono_ms() - t0;
    assert_true(took >= 140); /* waited for c, not for ever */
    assert_int_equal(ack_of(&r, "b")->status, BUS_OK);
    assert_int_equal(ack_of(&r, "c")->status, BUS_ETIMEDOUT);
    assert_null(ack_of(&r, "c")->reply);
    bus_ack_result_free(&r);
    assert_true(stats(&fx->n[0]).timeouts == 1);

    /* c's handler finishes; its ack arrives for no one */
    assert_true(wait_inside(&fx->n[2]));
    set_pause(&fx->n[2], false);
    WAIT_STAT(&fx->n[0], acks_late, 1);
    assert_int_equal(bus_request_all(fx->n[0].b, 1, "k", 1, 1000, &r), BUS_OK);
    bus_ack_result_free(&r);
}

static void request_all__peer_closed_then_restarted__reached_again(void **state)
{
    struct fx *fx = *state;
    node_open(&fx->n[0], "a");
    node_open(&fx->n[1], "b");
    mesh(fx->n, 2);
    warm(&fx->n[0]);
    uint64_t old_inc = bus_incarnation(fx->n[1].b);
    char endpoint[BUS_MAX_ENDPOINT + 1];
    strcpy(endpoint, fx->n[1].endpoint);

    node_close(&fx->n[1]);
    struct bus_ack_result r;
    assert_int_equal(bus_request_all(fx->n[0].b, 1, "k", 1, 200, &r), BUS_EINCOMPLETE);
    assert_int_equal(r.n_acked, 0);
    int st = r.acks[0].status;
    assert_true(st == BUS_EUNREACH || st == BUS_ETIMEDOUT);
    bus_ack_result_free(&r);

    /* same id, same endpoint, new process (incarnation): a reconnects */
    fx->n[1].requests = 0;
    node_open_opts(&fx->n[1], "b", endpoint, KEY, NULL);
    assert_true(bus_incarnation(fx->n[1].b) != old_inc);
    struct bus_peer pa = {"a", fx->n[0].endpoint};
    assert_int_equal(bus_set_peers(fx->n[1].b, &pa, 1), BUS_OK);
    warm(&fx->n[0]);
    assert_int_equal(bus_request_all(fx->n[0].b, 1, "again", 5, 1000, &r), BUS_OK);
    assert_memory_equal(r.acks[0].reply, "b:again", 7);
    bus_ack_result_free(&r);
    /* and the restarted node can ask a, whose tracking of b restarts */
    warm(&fx->n[1]);
    assert_true(stats(&fx->n[0]).dropped_replayed == 0);
}

static void request_all__peer_moved__set_peers_follows(void **state)
{
    struct fx *fx = *state;
    node_open(&fx->n[0], "a");
    node_open(&fx->n[1], "b");
    mesh(fx->n, 2);
    warm(&fx->n[0]);
    node_close(&fx->n[1]);
    node_open(&fx->n[1], "b"); /* another port */
    mesh(fx->n, 2);
    warm(&fx->n[0]);
    struct bus_ack_result r;
    assert_int_equal(bus_request_one(fx->n[0].b, "b", 1, "m", 1, 1000, &r), BUS_OK);
    bus_ack_result_free(&r);
}

static void request_all__peer_removed__not_targeted(void **state)
{
    struct fx *fx = *state;
    node_open(&fx->n[0], "a");
    node_open(&fx->n[1], "b");
    node_open(&fx->n[2], "c");
    mesh(fx->n, 3);
    warm(&fx->n[0]);
    struct bus_peer pb = {"b", fx->n[1].endpoint};
    assert_int_equal(bus_set_peers(fx->n[0].b, &pb, 1), BUS_OK);
    int creq = get_int(&fx->n[2], &fx->n[2].requests);
    struct bus_ack_result r;
    assert_int_equal(bus_request_all(fx->n[0].b, 1, "k", 1, 1000, &r), BUS_OK);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.acks[0].peer, "b");
    bus_ack_result_free(&r);
    assert_int_equal(get_int(&fx->n[2], &fx->n[2].requests), creq);
}

static void request_all__from_callback__edeadlk(void **state)
{
    struct fx *fx = *state;
    node_open(&fx->n[0], "a");
    node_open(&fx->n[1], "b");
    mesh(fx->n, 2);
    warm(&fx->n[0]);
    pthread_mutex_lock(&fx->n[1].mu);
    fx->n[1].call_self = true;
    pthread_mutex_unlock(&fx->n[1].mu);
    struct bus_ack_result r;
    assert_int_equal(bus_request_all(fx->n[0].b, 1, "k", 1, 1000, &r), BUS_OK);
    bus_ack_result_free(&r);
    assert_int_equal(get_int(&fx->n[1], &fx->n[1].self_rc), BUS_EDEADLK);
}

/* ---- authentication ----------------------------------------------------------- */

static void wrong_key_peer__never_acked__counted_forged(void **state)
{
    struct fx *fx = *state;
    node_open(&fx->n[0], "a");
    node_open(&fx->n[1], "b");
    node_open_opts(&fx->n[2], "evil", LOOPBACK, OTHER_KEY, NULL);
    struct node *a = &fx->n[0], *b = &fx->n[1], *e = &fx->n[2];
    mesh(fx->n, 3); /* everybody lists everybody: only the key differs */

    /* a asks everyone until e has seen (and refused) a's request */
    struct bus_ack_result r;
    uint64_t until = mono_ms() + WAIT_MS;
    while (stats(e).dropped_forged == 0) {
        assert_true(mono_ms() < until);
        int rc = bus_request_all(a->b, 1, "k", 1, 100, &r);
        assert_int_not_equal(rc, BUS_OK);
        assert_int_not_equal(ack_of(&r, "evil")->status, BUS_OK);
        bus_ack_result_free(&r);
    }
    assert_int_equal(get_int(e, &e->requests), 0);

    /* e asks a and b: nobody runs its handler, nobody acks */
    int areq = get_int(a, &a->requests), bev = get_int(b, &b->events);
    uint64_t forged = stats(a).dropped_forged;
    until = mono_ms() + WAIT_MS;
    while (stats(a).dropped_forged == forged) {
        assert_true(mono_ms() < until);
        assert_int_equal(bus_request_all(e->b, 1, "k", 1, 100, &r), BUS_EINCOMPLETE);
        assert_int_equal(r.n_acked, 0);
        bus_ack_result_free(&r);
    }
    assert_int_equal(bus_broadcast(e->b, 2, "plugins reloaded", 16), BUS_OK);
    WAIT_STAT(b, dropped_forged, 1);
    assert_int_equal(get_int(a, &a->requests), areq);
    assert_int_equal(get_int(b, &b->events), bev);
    assert_true(stats(e).acked == 0);
    assert_true(stats(e).received == 0);
}

/* Join key rotation: a node with next_key accepts both keys and signs with
 * its key; a node without it refuses the other key. */
static void rotation__next_key__both_accepted_old_only_refuses(void **state)
{
    struct fx *fx = *state;
    struct bus_options accept_other = {0}, accept_old = {0};
    accept_other.next_key = OTHER_KEY;
    accept_other.next_key_len = strlen(OTHER_KEY);
    accept_old.next_key = KEY;
    accept_old.next_key_len = strlen(KEY);
    node_open(&fx->n[0], "a");                                        /* old key only */
    node_open_opts(&fx->n[1], "b", LOOPBACK, KEY, &accept_other);     /* phase 1 */
    node_open_opts(&fx->n[2], "c", LOOPBACK, OTHER_KEY, &accept_old); /* phase 2 */
    struct node *a = &fx->n[0], *b = &fx->n[1], *c = &fx->n[2];
    mesh(fx->n, 3);

    /* b signs with the old key: a and c (through its next key) ack */
    warm(b);
    /* c signs with the new key: b acks (next key), a never does */
    struct bus_ack_result r;
    uint64_t until = mono_ms() + WAIT_MS;
    for (;;) {
        assert_true(mono_ms() < until);
        int rc = bus_request_all(c->b, 1, "k", 1, 200, &r);
        assert_int_equal(rc, BUS_EINCOMPLETE);
        bool b_ok = ack_of(&r, "b")->status == BUS_OK;
        assert_int_not_equal(ack_of(&r, "a")->status, BUS_OK);
        bus_ack_result_free(&r);
        if (b_ok && stats(a).dropped_forged > 0)
            break;
        sleep_ms(5);
    }
    assert_true(stats(b).accepted_next_key > 0);
    assert_true(stats(c).accepted_next_key > 0); /* b's acks are signed with the old key */
    assert_int_equal(stats(a).accepted_next_key, 0);

    /* a next key shorter than BUS_MIN_KEY is refused */
    struct bus_options bad = {0};
    bad.node_id = "d";
    bad.listen_endpoint = LOOPBACK;
    bad.key = KEY;
    bad.key_len = strlen(KEY);
    bad.next_key = "short";
    bad.next_key_len = 5;
    struct bus_callbacks cb = {cr_hmac_sha256, on_message, on_gap, &fx->n[3]};
    struct bus *d = NULL;
    assert_int_equal(bus_open(&bad, &cb, &d), BUS_EINVAL);
}

/* ---- broadcasts ------------------------------------------------------------------- */

static void broadcast__three_nodes__every_peer_gets_each_event(void **state)
{
    struct fx *fx = *state;
    node_open(&fx->n[0], "a");
    node_open(&fx->n[1], "b");
    node_open(&fx->n[2], "c");
    mesh(fx->n, 3);
    warm(&fx->n[0]);
    int gaps_b = get_int(&fx->n[1], &fx->n[1].gaps);
    int ev_b = get_int(&fx->n[1], &fx->n[1].events), ev_c = get_int(&fx->n[2], &fx->n[2].events);
    for (int i = 0; i < 100; i++) {
        char p[16];
        int l = snprintf(p, sizeof(p), "ev-%d", i);
        assert_int_equal(bus_broadcast(fx->n[0].b, 7, p, (size_t)l), BUS_OK);
    }
    assert_true(wait_field(&fx->n[1], &fx->n[1].events, ev_b + 100));
    assert_true(wait_field(&fx->n[2], &fx->n[2].events, ev_c + 100));
    pthread_mutex_lock(&fx->n[1].mu);
    assert_string_equal(fx->n[1].last_payload, "ev-99"); /* in order, the last one last */
    assert_int_equal(fx->n[1].last_type, 7);
    pthread_mutex_unlock(&fx->n[1].mu);
    assert_int_equal(get_int(&fx->n[1], &fx->n[1].gaps), gaps_b);
    assert_int_equal(bus_broadcast(fx->n[0].b, 7, NULL, 1), BUS_EINVAL);
    assert_int_equal(bus_broadcast(fx->n[0].b, 7, NULL, 0), BUS_OK);
}

static void broadcast__bus_thread_busy__eagain_when_queue_full(void **state)
{
    struct fx *fx = *state;
    struct bus_options o = {.max_queued = 2};
    node_open_opts(&fx->n[0], "a", LOOPBACK, KEY, &o);
    node_open(&fx->n[1], "b");
    mesh(fx->n, 2);
    warm(&fx->n[0]); /* both directions connected */
    warm(&fx->n[1]);
    /* a's handler blocks on b's event: a's bus thread takes no commands */
    set_pause(&fx->n[0], true);
    assert_int_equal(bus_broadcast(fx->n[1].b, 1, "hold", 4), BUS_OK);
    assert_true(wait_inside(&fx->n[0]));
    assert_int_equal(bus_broadcast(fx->n[0].b, 1, "1", 1), BUS_OK);
    assert_int_equal(bus_send_raw(fx->n[0].b, "b", "2", 1), BUS_OK);
    assert_int_equal(bus_broadcast(fx->n[0].b, 1, "3", 1), BUS_EAGAIN);
    assert_int_equal(bus_send_raw(fx->n[0].b, "b", "4", 1), BUS_EAGAIN);
    int ev = get_int(&fx->n[1], &fx->n[1].events);
    set_pause(&fx->n[0], false);
    assert_true(wait_field(&fx->n[1], &fx->n[1].events, ev + 1)); /* "1" went out */
    WAIT_STAT(&fx->n[1], dropped_version, 1);                     /* and so did "2" */
}

static void broadcast__tiny_hwm_paused_peer__dropped_overflow_then_gap(void **state)
{
    struct fx *fx = *state;
    struct bus_options oa = {.send_hwm = 1}, ob = {.recv_hwm = 1};
    node_open_opts(&fx->n[0], "a", LOOPBACK, KEY, &oa);
    node_open_opts(&fx->n[1], "b", LOOPBACK, KEY, &ob);
    struct node *a = &fx->n[0], *b = &fx->n[1];
    mesh(fx->n, 2);
    warm(a);
    int gaps0 = get_int(b, &b->gaps), ev0 = get_int(b, &b->events);
    struct bus_stats s0 = stats(a);

    set_pause(b, true);
    assert_int_equal(bus_broadcast(a->b, 1, "first", 5), BUS_OK);
    assert_true(wait_inside(b));
    enum { N = 200, SZ = 128 << 10 };
    char *big = calloc(1, SZ);
    assert_non_null(big);
    for (int i = 0; i < N; i++)
        assert_int_equal(bus_broadcast(a->b, 1, big, SZ), BUS_OK);
    free(big);
    /* every copy was either handed to ZeroMQ or dropped, none blocked */
    uint64_t until = mono_ms() + WAIT_MS;
    for (;;) {
        struct bus_stats s = stats(a);
        if (s.sent + s.dropped_overflow >= s0.sent + s0.dropped_overflow + N + 1)
            break;
        assert_true(mono_ms() < until);
        sleep_ms(1);
    }
    assert_true(stats(a).dropped_overflow > s0.dropped_overflow);

    /* b resumes: what was queued arrives, then a gap before the next one */
    set_pause(b, false);
    until = mono_ms() + WAIT_MS;
    for (;;) {
        assert_int_equal(bus_broadcast(a->b, 1, "last", 4), BUS_OK);
        sleep_ms(20);
        pthread_mutex_lock(&b->mu);
        bool got = strcmp(b->last_payload, "last") == 0;
        pthread_mutex_unlock(&b->mu);
        if (got)
            break;
        assert_true(mono_ms() < until);
    }
    assert_true(get_int(b, &b->gaps) > gaps0);
    assert_true(get_int(b, &b->events) < ev0 + N + 1);
    assert_true(stats(b).gaps == (uint64_t)get_int(b, &b->gaps));
}

/* ---- replays and gaps, crafted -------------------------------------------------------- */

/* a and b connected; a's link to b carries crafted bytes from "ghost". */
static void ghost_setup(struct fx *fx)
{
    node_open(&fx->n[0], "a");
    node_open(&fx->n[1], "b");
    mesh(fx->n, 2);
    warm(&fx->n[0]);
}

/* Send m, encoded under key, from a to b as raw bytes; wait until b has
 * either run its handler or counted a drop. */
static void ghost_send(struct fx *fx, const struct bus_msg *m, const char *key)
{
    unsigned char buf[512];
    size_t len = enc(m, key, buf, sizeof(buf));
    struct node *b = &fx->n[1];
    struct bus_stats s = stats(b);
    uint64_t before = s.received + s.dropped_malformed + s.dropped_version + s.dropped_forged +
                      s.dropped_replayed + s.dropped_skew;
    assert_int_equal(bus_send_raw(fx->n[0].b, "b", buf, len), BUS_OK);
    uint64_t until = mono_ms() + WAIT_MS;
    for (;;) {
        s = stats(b);
        if (s.received + s.dropped_malformed + s.dropped_version + s.dropped_forged +
                s.dropped_replayed + s.dropped_skew >
            before)
            break;
        assert_true(mono_ms() < until);
        sleep_ms(1);
    }
}

static void receive__same_message_twice__second_dropped_replayed(void **state)
{
    struct fx *fx = *state;
    ghost_setup(fx);
    struct node *b = &fx->n[1];
    struct bus_msg m;
    msg_set(&m, BUS_EVENT, "ghost", "b", 1234, 1, "once");
    int ev = get_int(b, &b->events);
    ghost_send(fx, &m, KEY);
    assert_int_equal(get_int(b, &b->events), ev + 1);
    pthread_mutex_lock(&b->mu);
    assert_string_equal(b->last_sender, "ghost");
    pthread_mutex_unlock(&b->mu);
    struct bus_stats s = stats(b);
    ghost_send(fx, &m, KEY); /* the same bytes again */
    msg_set(&m, BUS_EVENT, "ghost", "b", 1234, 1, "other payload, same seq");
    ghost_send(fx, &m, KEY);
    assert_true(stats(b).dropped_replayed == s.dropped_replayed + 2);
    assert_int_equal(get_int(b, &b->events), ev + 1);
    msg_set(&m, BUS_EVENT, "ghost", "b", 1234, 2, "next");
    ghost_send(fx, &m, KEY);
    assert_int_equal(get_int(b, &b->events), ev + 2);
}

static void receive__sequence_jump__on_gap_runs_before_handler(void **state)
{
    struct fx *fx = *state;
    ghost_setup(fx);
    struct node *b = &fx->n[1];
    struct bus_msg m;
    int gaps = get_int(b, &b->gaps);
    msg_set(&m, BUS_EVENT, "ghost", "b", 77, 1, "1");
    ghost_send(fx, &m, KEY);
    assert_int_equal(get_int(b, &b->gaps), gaps); /* seq 1 of a new incarnation: no gap */
    msg_set(&m, BUS_EVENT, "ghost", "b", 77, 5, "5");
    ghost_send(fx, &m, KEY);
    pthread_mutex_lock(&b->mu);
    assert_int_equal(b->gaps, gaps + 1);
    assert_string_equal(b->gap_sender, "ghost");
    assert_int_equal(b->gap_at + 1, b->msg_at); /* gap, then the message */
    assert_string_equal(b->last_payload, "5");
    pthread_mutex_unlock(&b->mu);
    msg_set(&m, BUS_EVENT, "ghost", "b", 77, 6, "6");
    ghost_send(fx, &m, KEY);
    assert_int_equal(get_int(b, &b->gaps), gaps + 1);
    /* a request with a gap: flushed first, then handled (and acked) */
    int req = get_int(b, &b->requests);
    msg_set(&m, BUS_REQUEST, "ghost", "b", 77, 9, "9");
    ghost_send(fx, &m, KEY);
    assert_int_equal(get_int(b, &b->gaps), gaps + 2);
    assert_int_equal(get_int(b, &b->requests), req + 1);
    /* a first contact that does not start at 1 is a gap too */
    msg_set(&m, BUS_EVENT, "ghost2", "b", 78, 3, "3");
    ghost_send(fx, &m, KEY);
    assert_int_equal(get_int(b, &b->gaps), gaps + 3);
}

static void receive__new_incarnation__no_gap_and_old_one_refused(void **state)
{
    struct fx *fx = *state;
    ghost_setup(fx);
    struct node *b = &fx->n[1];
    struct bus_msg m;
    int gaps = get_int(b, &b->gaps), ev = get_int(b, &b->events);
    for (uint64_t s = 1; s <= 3; s++) {
        msg_set(&m, BUS_EVENT, "ghost", "b", 100, s, "old life");
        ghost_send(fx, &m, KEY);
    }
    msg_set(&m, BUS_EVENT, "ghost", "b", 200, 1, "restarted"); /* seq back to 1 */
    ghost_send(fx, &m, KEY);
    assert_int_equal(get_int(b, &b->gaps), gaps);
    assert_int_equal(get_int(b, &b->events), ev + 4);
    struct bus_stats s = stats(b);
    msg_set(&m, BUS_EVENT, "ghost", "b", 100, 4, "from the grave");
    ghost_send(fx, &m, KEY);
    assert_true(stats(b).dropped_replayed == s.dropped_replayed + 1);
    msg_set(&m, BUS_EVENT, "ghost", "b", 200, 2, "alive");
    ghost_send(fx, &m, KEY);
    assert_int_equal(get_int(b, &b->events), ev + 5);
    assert_int_equal(get_int(b, &b->gaps), gaps);
}

static void receive__timestamp_out_of_window__dropped_skew(void **state)
{
    struct fx *fx = *state;
    ghost_setup(fx);
    struct node *b = &fx->n[1];
    struct bus_msg m;
    int ev = get_int(b, &b->events);
    msg_set(&m, BUS_EVENT, "ghost", "b", 5, 1, "old");
    m.time_ms -= 61000;
    ghost_send(fx, &m, KEY);
    msg_set(&m, BUS_EVENT, "ghost", "b", 5, 2, "future");
    m.time_ms += 61000;
    ghost_send(fx, &m, KEY);
    assert_true(stats(b).dropped_skew == 2);
    assert_int_equal(get_int(b, &b->events), ev);
    msg_set(&m, BUS_EVENT, "ghost", "b", 5, 3, "in the window");
    m.time_ms -= 30000;
    ghost_send(fx, &m, KEY);
    assert_int_equal(get_int(b, &b->events), ev + 1);
}

static void receive__not_authentic_or_not_for_us__dropped_and_counted(void **state)
{
    struct fx *fx = *state;
    ghost_setup(fx);
    struct node *b = &fx->n[1];
    struct bus_msg m;
    int ev = get_int(b, &b->events);
    struct bus_stats s0 = stats(b);

    msg_set(&m, BUS_EVENT, "ghost", "b", 5, 1, "forged");
    ghost_send(fx, &m, OTHER_KEY);
    msg_set(&m, BUS_EVENT, "ghost", "c", 5, 1, "for c");
    ghost_send(fx, &m, KEY);
    msg_set(&m, BUS_ACK, "ghost", "b", 5, 1, "an ack where requests go");
    ghost_send(fx, &m, KEY);
    assert_int_equal(bus_send_raw(fx->n[0].b, "b", "\x09garbage", 8), BUS_OK);
    WAIT_STAT(b, dropped_version, s0.dropped_version + 1);
    assert_int_equal(bus_send_raw(fx->n[0].b, "b", "\x01garbage", 8), BUS_OK);
    assert_int_equal(bus_send_raw(fx->n[0].b, "b", NULL, 0), BUS_OK);
    WAIT_STAT(b, dropped_malformed, s0.dropped_malformed + 3);

    struct bus_stats s = stats(b);
    assert_true(s.dropped_forged == s0.dropped_forged + 1);
    assert_true(s.dropped_replayed == s0.dropped_replayed + 1);
    assert_true(s.dropped_malformed == s0.dropped_malformed + 3);
    assert_true(s.dropped_version == s0.dropped_version + 1);
    assert_int_equal(get_int(b, &b->events), ev);
    assert_int_equal(bus_send_raw(fx->n[0].b, "nobody", "x", 1), BUS_ENOPEER);

    /* b still works for a */
    struct bus_ack_result r;
    assert_int_equal(bus_request_all(fx->n[0].b, 1, "k", 1, 1000, &r), BUS_OK);
    bus_ack_result_free(&r);
}

static void receive__ack_for_another_node__dropped_by_requester(void **state)
{
    struct fx *fx = *state;
    ghost_setup(fx);
    struct node *a = &fx->n[0], *b = &fx->n[1];
    struct bus_stats s0 = stats(a);
    int req = get_int(b, &b->requests);
    /* a forwards a request from "ghost": b handles it and answers on the
     * connection it came by, addressed to ghost; a must not take it */
    struct bus_msg m;
    msg_set(&m, BUS_REQUEST, "ghost", "b", 5, 1, "q");
    ghost_send(fx, &m, KEY);
    assert_true(wait_field(b, &b->requests, req + 1));
    WAIT_STAT(a, dropped_replayed, s0.dropped_replayed + 1);
    assert_true(stats(a).acked == s0.acked);
    assert_true(stats(a).acks_late == s0.acks_late);
}

/* ---- concurrency ---------------------------------------------------------------------- */

struct worker {
    struct bus *b;
    int calls, ok;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < w->calls; i++) {
        char p[32];
        int l = snprintf(p, sizeof(p), "w%p-%d", (void *)w, i);
        struct bus_ack_result r;
        int rc = bus_request_all(w->b, 5, p, (size_t)l, 2000, &r);
        bool replies_ok = rc == BUS_OK && r.n == 2;
        for (size_t k = 0; replies_ok && k < r.n; k++) {
            /* each reply is the one to this call: "<peer>:<payload>" */
            char want[64];
            int wl = snprintf(want, sizeof(want), "%s:%s", r.acks[k].peer, p);
            replies_ok =
                r.acks[k].reply_len == (size_t)wl && memcmp(r.acks[k].reply, want, (size_t)wl) == 0;
        }
        if (replies_ok)
            w->ok++;
        bus_ack_result_free(&r);
    }
    return NULL;
}

static void request_all__concurrent_threads__every_call_acked(void **state)
{
    struct fx *fx = *state;
    node_open(&fx->n[0], "a");
    node_open(&fx->n[1], "b");
    node_open(&fx->n[2], "c");
    mesh(fx->n, 3);
    warm(&fx->n[0]);
    warm(&fx->n[1]);
    int breq = get_int(&fx->n[1], &fx->n[1].requests);
    int gaps = get_int(&fx->n[1], &fx->n[1].gaps) + get_int(&fx->n[2], &fx->n[2].gaps);
    enum { T = 6, CALLS = 150 };
    pthread_t th[T];
    struct worker w[T];
    for (int i = 0; i < T; i++) {
        /* most threads ask through a, some through b, at the same time */
        w[i] = (struct worker){fx->n[i % 3 == 2 ? 1 : 0].b, CALLS, 0};
        assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].ok, CALLS);
    }
    /* b was asked by the 4 threads of a and answered the 2 of its own */
    assert_int_equal(get_int(&fx->n[1], &fx->n[1].requests), breq + 4 * CALLS);
    assert_int_equal(get_int(&fx->n[1], &fx->n[1].gaps) + get_int(&fx->n[2], &fx->n[2].gaps), gaps);
    assert_true(stats(&fx->n[0]).timeouts == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(msg_encode_decode__every_kind__round_trip),
        cmocka_unit_test(msg_encode__bad_fields__einval),
        cmocka_unit_test(msg_encode__small_buffer__erange_with_size),
        cmocka_unit_test(msg_decode__every_truncation_and_extension__malformed),
        cmocka_unit_test(msg_decode__unknown_version__eversion),
        cmocka_unit_test(msg_decode__any_bit_flipped__refused),
        cmocka_unit_test(msg_decode__other_key__eforged),
        cmocka_unit_test(msg_decode__crafted_fields__malformed),
        cmocka_unit_test(msg_decode__random_bytes__refused_never_crash),
        cmocka_unit_test(bus_strerror__every_code__text),
        cmocka_unit_test_setup_teardown(bus_open__bad_options__refused, setup, teardown),
        cmocka_unit_test_setup_teardown(bus_set_peers__bad_sets__einval_set_unchanged, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(request_all__three_nodes__every_peer_acks_with_reply, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(request_one__named_peer__only_it_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(request_all__handler_refuses__enack_with_reply, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(request_all__paused_peer__timed_out_then_late_ack_counted,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(request_all__peer_closed_then_restarted__reached_again,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(request_all__peer_moved__set_peers_follows, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(request_all__peer_removed__not_targeted, setup, teardown),
        cmocka_unit_test_setup_teardown(request_all__from_callback__edeadlk, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_key_peer__never_acked__counted_forged, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(rotation__next_key__both_accepted_old_only_refuses, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(broadcast__three_nodes__every_peer_gets_each_event, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(broadcast__bus_thread_busy__eagain_when_queue_full, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(broadcast__tiny_hwm_paused_peer__dropped_overflow_then_gap,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(receive__same_message_twice__second_dropped_replayed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(receive__sequence_jump__on_gap_runs_before_handler, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(receive__new_incarnation__no_gap_and_old_one_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(receive__timestamp_out_of_window__dropped_skew, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(receive__not_authentic_or_not_for_us__dropped_and_counted,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(receive__ack_for_another_node__dropped_by_requester, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(request_all__concurrent_threads__every_call_acked, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("zmq-bus", tests, NULL, NULL);
}
