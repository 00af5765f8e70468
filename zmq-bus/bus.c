/*
 * bus.c - the bus thread and the calls that hand it work. The bus thread
 * owns every ZeroMQ socket: a ROUTER bound on the listen endpoint (requests
 * and events in, acks out) and one DEALER per peer (requests and events
 * out, acks in). Callers queue commands under b->mu and wake it through an
 * eventfd that zmq_poll() watches; request callers then sleep on a
 * condition variable of their own until the bus thread has their answers.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "bus.h"

#define BUS__PENDING 1      /* bus_ack.status while the target owes an answer */
#define BUS__MAX_SENDERS 64 /* senders whose sequence numbers are tracked */
#define BUS__RETIRED 8      /* replaced incarnations remembered per sender */
#define BUS__BATCH 256      /* messages taken from one socket per poll round */
#define BUS__MIN_MSG 4096   /* smallest max_msg_size */

/* A peer: in b->peers (the callers' view, sock NULL) or b->dealers (the bus
 * thread's, with its DEALER socket). */
struct bus__peer {
    char id[BUS_MAX_ID + 1];
    char endpoint[BUS_MAX_ENDPOINT + 1];
    void *sock;
};

enum bus__op { OP_REQUEST, OP_EVENT, OP_RAW, OP_PEERS };

/* One unit of work for the bus thread, owned by the queue and then by the
 * bus thread, which frees it. */
struct bus__cmd {
    struct bus__cmd *next;
    enum bus__op op;
    uint8_t type;
    uint64_t call_id; /* OP_REQUEST: the waiting call */
    size_t ntargets;  /* OP_REQUEST, OP_RAW: target ids */
    char (*targets)[BUS_MAX_ID + 1];
    struct bus__peer *peers; /* OP_PEERS: the new set; new sockets owned */
    size_t npeers;
    size_t len; /* payload (or raw bytes) */
    unsigned char data[];
};

/* A request waiting for answers; lives on the caller's stack, reachable by
 * the bus thread through b->calls under b->mu only. */
struct bus__call {
    struct bus__call *next;
    uint64_t id;
    pthread_cond_t cond;
    size_t remaining;
    struct bus_ack_result *res;
};

/* Receive-side tracking of one sender (bus thread only). */
struct bus__sender {
    char id[BUS_MAX_ID + 1];
    uint64_t incarnation;
    uint64_t last_seq;   /* requests and events */
    uint64_t last_reply; /* acks and nacks */
    uint64_t retired[BUS__RETIRED];
    unsigned retired_next;
    uint64_t used; /* for LRU eviction */
};

/* Send-side counters towards one node (bus thread only); kept for the
 * life of the bus so that sequence numbers never restart. */
struct bus__link {
    char id[BUS_MAX_ID + 1];
    uint64_t out_seq;   /* requests and events we sent it */
    uint64_t reply_seq; /* acks and nacks we sent it */
};

struct bus__counters {
    _Atomic uint64_t sent, received, acked, nacked, timeouts, acks_late;
    _Atomic uint64_t dropped_malformed, dropped_version, dropped_forged, dropped_replayed;
    _Atomic uint64_t dropped_skew, dropped_overflow, gaps, accepted_next_key;
};

struct bus {
    /* fixed at bus_open() */
    char id[BUS_MAX_ID + 1];
    uint64_t incarnation;
    unsigned char *key;
    size_t key_len;
    unsigned char *next_key; /* NULL, or accepted too during a key rotation */
    size_t next_key_len;
    struct bus_callbacks cb;
    int send_hwm, recv_hwm, reconnect_ivl, heartbeat_ivl, ipv6;
    int64_t max_skew_ms;
    size_t max_msg, max_queued;
    char endpoint[BUS_MAX_ENDPOINT + 1];
    void *ctx;
    void *router;
    int efd;
    pthread_t thread;
    pthread_condattr_t cattr;
    _Atomic uint64_t next_id;

    /* under mu */
    pthread_mutex_t mu;
    struct bus__cmd *qhead, *qtail;
    size_t queued; /* events and raw sends in the queue */
    struct bus__peer *peers;
    size_t npeers;
    struct bus__call *calls;
    bool stopping;

    /* serialises bus_set_peers() */
    pthread_mutex_t peers_mu;

    /* bus thread only */
    struct bus__peer *dealers;
    size_t ndealers;
    struct bus__link *links;
    size_t nlinks, caplinks;
    struct bus__sender senders[BUS__MAX_SENDERS];
    size_t nsenders;
    uint64_t tick;
    zmq_pollitem_t *items;
    size_t capitems;

    struct bus__counters st;
};

/* The bus whose thread this is, so that a request from a callback is
 * refused instead of waiting for itself. */
static _Thread_local const struct bus *bus__self;

#define COUNT(b, field) atomic_fetch_add_explicit(&(b)->st.field, 1, memory_order_relaxed)

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static size_t bounded_len(const char *s, size_t max)
{
    return strnlen(s, max + 1);
}

static bool id_ok(const char *id)
{
    if (id == NULL)
        return false;
    size_t n = bounded_len(id, BUS_MAX_ID);
    return n > 0 && n <= BUS_MAX_ID;
}

/* Largest payload that fits one message between two ids of any length. */
static size_t max_payload(const struct bus *b)
{
    return b->max_msg - bus_msg_size(BUS_MAX_ID, BUS_MAX_ID, 0);
}

static void wake(struct bus *b)
{
    uint64_t one = 1;
    ssize_t r = write(b->efd, &one, sizeof(one));
    (void)r; /* EAGAIN: the counter is already nonzero, the thread wakes anyway */
}

/* Append a command; wake the thread if the queue was empty (it empties the
 * whole queue each time it wakes). Caller holds b->mu. */
static bool enqueue_locked(struct bus *b, struct bus__cmd *c)
{
    bool was_empty = b->qhead == NULL;
    c->next = NULL;
    if (b->qtail != NULL)
        b->qtail->next = c;
    else
        b->qhead = c;
    b->qtail = c;
    return was_empty;
}

static struct bus__cmd *cmd_new(enum bus__op op, size_t len, size_t ntargets)
{
    size_t tsz = ntargets * sizeof(char[BUS_MAX_ID + 1]);
    /* targets after the payload, aligned for char arrays (no alignment) */
    struct bus__cmd *c = malloc(sizeof(*c) + len + tsz);
    if (c == NULL)
        return NULL;
    memset(c, 0, sizeof(*c));
    c->op = op;
    c->len = len;
    c->ntargets = ntargets;
    c->targets = ntargets > 0 ? (char(*)[BUS_MAX_ID + 1])(c->data + len) : NULL;
    return c;
}

static void close_peers(struct bus__peer *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i].sock != NULL)
            zmq_close(p[i].sock);
}

static void cmd_free(struct bus__cmd *c)
{
    if (c->op == OP_PEERS) {
        close_peers(c->peers, c->npeers);
        free(c->peers);
    }
    free(c);
}

/* ---- sockets ------------------------------------------------------------ */

static int set_int(void *sock, int opt, int v)
{
    return zmq_setsockopt(sock, opt, &v, sizeof(v));
}

/* Options common to the ROUTER and the DEALERs; see README, "Sockets". */
static int sock_setup(const struct bus *b, void *s)
{
    int64_t maxmsg = (int64_t)b->max_msg;
    if (set_int(s, ZMQ_LINGER, 0) != 0 || set_int(s, ZMQ_SNDHWM, b->send_hwm) != 0 ||
        set_int(s, ZMQ_RCVHWM, b->recv_hwm) != 0 ||
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) != 0 ||
        set_int(s, ZMQ_IPV6, b->ipv6) != 0)
        return -1;
    if (b->heartbeat_ivl > 0 && (set_int(s, ZMQ_HEARTBEAT_IVL, b->heartbeat_ivl) != 0 ||
                                 set_int(s, ZMQ_HEARTBEAT_TIMEOUT, 3 * b->heartbeat_ivl) != 0))
        return -1;
    return 0;
}

static int zmq_to_bus(int e)
{
    switch (e) {
    case EINVAL:
    case EPROTONOSUPPORT:
    case ENOCOMPATPROTO:
    case ENODEV:
        return BUS_EINVAL;
    case ENOMEM:
        return BUS_ENOMEM;
    }
    return BUS_EIO;
}

/* A connected DEALER towards endpoint. The routing id is left to the
 * peer's ROUTER (see README, "Sockets"). */
static int dealer_new(struct bus *b, const char *endpoint, void **out)
{
    void *s = zmq_socket(b->ctx, ZMQ_DEALER);
    if (s == NULL)
        return zmq_to_bus(zmq_errno());
    if (sock_setup(b, s) != 0 || set_int(s, ZMQ_IMMEDIATE, 1) != 0 ||
        set_int(s, ZMQ_RECONNECT_IVL, b->reconnect_ivl) != 0 || zmq_connect(s, endpoint) != 0) {
        int rc = zmq_to_bus(zmq_errno());
        zmq_close(s);
        return rc;
    }
    *out = s;
    return BUS_OK;
}

/* Encode m into a ZeroMQ message and send it without waiting, after a
 * routing id frame when route is not NULL. 0 sent; -1 dropped. */
static int send_msg(struct bus *b, void *sock, zmq_msg_t *route, const struct bus_msg *m)
{
    size_t size = bus_msg_size(strlen(m->sender), strlen(m->recipient), m->len);
    zmq_msg_t zm;
    if (zmq_msg_init_size(&zm, size) != 0)
        return -1;
    size_t outlen;
    if (bus_msg_encode(m, b->cb.hmac, b->key, b->key_len, zmq_msg_data(&zm), size, &outlen) != 0)
        goto out_close;
    if (route != NULL &&
        zmq_send(sock, zmq_msg_data(route), zmq_msg_size(route), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        goto out_close;
    if (zmq_msg_send(&zm, sock, ZMQ_DONTWAIT) < 0)
        goto out_close;
    return 0;

out_close:
    zmq_msg_close(&zm);
    return -1;
}

static void msg_init(const struct bus *b, struct bus_msg *m, uint8_t kind, uint8_t type,
                     const char *to)
{
    memset(m, 0, sizeof(*m));
    m->kind = kind;
    m->type = type;
    memcpy(m->sender, b->id, sizeof(m->sender));
    strcpy(m->recipient, to); /* at most BUS_MAX_ID bytes, checked on the way in */
    m->incarnation = b->incarnation;
    m->time_ms = now_ms();
}

/* ---- bus thread: peers, links and sender tracking ---------------------- */

static struct bus__peer *find_dealer(struct bus *b, const char *id)
{
    for (size_t i = 0; i < b->ndealers; i++)
        if (strcmp(b->dealers[i].id, id) == 0)
            return &b->dealers[i];
    return NULL;
}

/* The send counters towards id, created at zero; NULL if out of memory. */
static struct bus__link *link_get(struct bus *b, const char *id)
{
    for (size_t i = 0; i < b->nlinks; i++)
        if (strcmp(b->links[i].id, id) == 0)
            return &b->links[i];
    if (b->nlinks == b->caplinks) {
        size_t cap = b->caplinks ? 2 * b->caplinks : 8;
        struct bus__link *l = realloc(b->links, cap * sizeof(*l));
        if (l == NULL)
            return NULL;
        b->links = l;
        b->caplinks = cap;
    }
    struct bus__link *l = &b->links[b->nlinks++];
    memset(l, 0, sizeof(*l));
    strcpy(l->id, id);
    return l;
}

enum bus__verdict { V_OK, V_GAP, V_REPLAY };
enum bus__stream { S_DATA, S_REPLY };

/* The tracking entry for a sender; a new one (evicting the least recently
 * used when full: its next message then shows as a gap, which is safe). */
static struct bus__sender *sender_get(struct bus *b, const char *id, uint64_t incarnation)
{
    struct bus__sender *s = NULL;
    for (size_t i = 0; i < b->nsenders; i++)
        if (strcmp(b->senders[i].id, id) == 0)
            s = &b->senders[i];
    if (s == NULL) {
        if (b->nsenders < BUS__MAX_SENDERS) {
            s = &b->senders[b->nsenders++];
        } else {
            s = &b->senders[0];
            for (size_t i = 1; i < b->nsenders; i++)
                if (b->senders[i].used < s->used)
                    s = &b->senders[i];
        }
        memset(s, 0, sizeof(*s));
        strcpy(s->id, id);
        s->incarnation = incarnation;
    }
    s->used = ++b->tick;
    return s;
}

/*
 * The replay and gap rules for an authentic message (README, "Replay and
 * gaps"): a new incarnation replaces the tracked one and restarts both
 * streams, a replaced one is refused; within an incarnation each stream's
 * sequence numbers must grow, and a data stream that skips one has a gap.
 */
static enum bus__verdict track(struct bus *b, const char *id, uint64_t incarnation, uint64_t seq,
                               enum bus__stream stream)
{
    struct bus__sender *s = sender_get(b, id, incarnation);
    if (s->incarnation != incarnation) {
        for (unsigned i = 0; i < BUS__RETIRED; i++)
            if (s->retired[i] == incarnation)
                return V_REPLAY;
        s->retired[s->retired_next] = s->incarnation;
        s->retired_next = (s->retired_next + 1) % BUS__RETIRED;
        s->incarnation = incarnation;
        s->last_seq = 0;
        s->last_reply = 0;
    }
    if (stream == S_REPLY) {
        if (seq <= s->last_reply)
            return V_REPLAY;
        s->last_reply = seq;
        return V_OK;
    }
    if (seq <= s->last_seq)
        return V_REPLAY;
    bool gap = seq != s->last_seq + 1;
    s->last_seq = seq;
    return gap ? V_GAP : V_OK;
}

/* ---- bus thread: requests and their answers ---------------------------- */

static struct bus__call *find_call_locked(struct bus *b, uint64_t id)
{
    for (struct bus__call *c = b->calls; c != NULL; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

/*
 * Record the answer of target peer to call id. reply (malloc()ed) moves
 * into the result. Returns false, leaving reply to the caller, when no call
 * waits for it (the caller gave up) or peer already answered. Acks and
 * nacks are counted here, before the caller can wake and read the stats.
 */
static bool resolve(struct bus *b, uint64_t call_id, const char *peer, int status, void *reply,
                    size_t reply_len)
{
    bool done = false;
    pthread_mutex_lock(&b->mu);
    struct bus__call *c = find_call_locked(b, call_id);
    if (c != NULL) {
        for (size_t i = 0; i < c->res->n; i++) {
            struct bus_ack *a = &c->res->acks[i];
            if (a->status != BUS__PENDING || strcmp(a->peer, peer) != 0)
                continue;
            a->status = status;
            a->reply = reply;
            a->reply_len = reply_len;
            if (status == BUS_OK)
                COUNT(b, acked);
            else if (status == BUS_ENACK)
                COUNT(b, nacked);
            if (--c->remaining == 0)
                pthread_cond_signal(&c->cond);
            done = true;
            break;
        }
    }
    pthread_mutex_unlock(&b->mu);
    return done;
}

static void run_request(struct bus *b, struct bus__cmd *c)
{
    pthread_mutex_lock(&b->mu);
    bool waiting = find_call_locked(b, c->call_id) != NULL;
    pthread_mutex_unlock(&b->mu);
    if (!waiting)
        return; /* timed out before we got to it: do not send */
    for (size_t i = 0; i < c->ntargets; i++) {
        const char *to = c->targets[i];
        struct bus__peer *d = find_dealer(b, to);
        struct bus__link *l = d != NULL ? link_get(b, to) : NULL;
        if (l != NULL) {
            struct bus_msg m;
            msg_init(b, &m, BUS_REQUEST, c->type, to);
            m.seq = ++l->out_seq;
            m.id = c->call_id;
            m.payload = c->data;
            m.len = c->len;
            if (send_msg(b, d->sock, NULL, &m) == 0) {
                COUNT(b, sent);
                continue;
            }
            COUNT(b, dropped_overflow);
        }
        resolve(b, c->call_id, to, BUS_EUNREACH, NULL, 0);
    }
}

static void run_event(struct bus *b, struct bus__cmd *c)
{
    uint64_t id = atomic_fetch_add(&b->next_id, 1);
    for (size_t i = 0; i < b->ndealers; i++) {
        struct bus__peer *d = &b->dealers[i];
        struct bus__link *l = link_get(b, d->id);
        if (l == NULL) {
            COUNT(b, dropped_overflow);
            continue;
        }
        struct bus_msg m;
        msg_init(b, &m, BUS_EVENT, c->type, d->id);
        m.seq = ++l->out_seq;
        m.id = id;
        m.payload = c->data;
        m.len = c->len;
        if (send_msg(b, d->sock, NULL, &m) == 0)
            COUNT(b, sent);
        else
            COUNT(b, dropped_overflow);
    }
}

static void run_raw(struct bus *b, struct bus__cmd *c)
{
    struct bus__peer *d = find_dealer(b, c->targets[0]);
    if (d != NULL && zmq_send(d->sock, c->data, c->len, ZMQ_DONTWAIT) >= 0)
        COUNT(b, sent);
    else
        COUNT(b, dropped_overflow);
}

/* Install a new peer set: keep the sockets of unchanged peers, take the new
 * ones from the command, close the rest. */
static void run_peers(struct bus *b, struct bus__cmd *c)
{
    size_t need = 2 + c->npeers;
    if (need > b->capitems) {
        zmq_pollitem_t *it = realloc(b->items, need * sizeof(*it));
        if (it != NULL) {
            b->items = it;
            b->capitems = need;
        } /* else: the peers that do not fit are not polled for acks (they
             time out) until a later bus_set_peers() succeeds */
    }
    for (size_t i = 0; i < c->npeers; i++) {
        struct bus__peer *p = &c->peers[i];
        struct bus__peer *old = find_dealer(b, p->id);
        if (p->sock == NULL && old != NULL) {
            p->sock = old->sock; /* unchanged peer: keep its connection */
            old->sock = NULL;
        }
    }
    close_peers(b->dealers, b->ndealers);
    free(b->dealers);
    b->dealers = c->peers;
    b->ndealers = c->npeers;
    c->peers = NULL;
    c->npeers = 0;
}

static void run_cmds(struct bus *b, struct bus__cmd *list)
{
    while (list != NULL) {
        struct bus__cmd *c = list;
        list = c->next;
        switch (c->op) {
        case OP_REQUEST:
            run_request(b, c);
            break;
        case OP_EVENT:
            run_event(b, c);
            break;
        case OP_RAW:
            run_raw(b, c);
            break;
        case OP_PEERS:
            run_peers(b, c);
            break;
        }
        cmd_free(c);
    }
}

/* ---- bus thread: receiving ---------------------------------------------- */

/* Decode and authenticate; count and return false if the message is to be
 * dropped for any reason but the replay rules. */
static bool accept_msg(struct bus *b, const void *data, size_t len, struct bus_msg *m)
{
    int drc = bus_msg_decode(data, len, b->cb.hmac, b->key, b->key_len, m);
    if (drc == BUS_EFORGED && b->next_key != NULL) {
        drc = bus_msg_decode(data, len, b->cb.hmac, b->next_key, b->next_key_len, m);
        if (drc == BUS_OK)
            COUNT(b, accepted_next_key);
    }
    switch (drc) {
    case BUS_OK:
        break;
    case BUS_EVERSION:
        COUNT(b, dropped_version);
        return false;
    case BUS_EFORGED:
        COUNT(b, dropped_forged);
        return false;
    default:
        COUNT(b, dropped_malformed);
        return false;
    }
    if (strcmp(m->recipient, b->id) != 0) {
        COUNT(b, dropped_replayed); /* authentic, but meant for another node */
        return false;
    }
    int64_t skew = (int64_t)(now_ms() - m->time_ms);
    if (skew > b->max_skew_ms || skew < -b->max_skew_ms) {
        COUNT(b, dropped_skew);
        return false;
    }
    return true;
}

/* A request or event on the ROUTER; route is the connection it came on. */
static void on_router_msg(struct bus *b, zmq_msg_t *route, const void *data, size_t len)
{
    struct bus_msg m;
    if (!accept_msg(b, data, len, &m))
        return;
    if (m.kind != BUS_REQUEST && m.kind != BUS_EVENT) {
        COUNT(b, dropped_malformed); /* an answer on the wrong socket */
        return;
    }
    enum bus__verdict v = track(b, m.sender, m.incarnation, m.seq, S_DATA);
    if (v == V_REPLAY) {
        COUNT(b, dropped_replayed);
        return;
    }
    COUNT(b, received);
    if (v == V_GAP) {
        COUNT(b, gaps);
        if (b->cb.on_gap != NULL)
            b->cb.on_gap(b->cb.arg, m.sender);
    }
    void *reply = NULL;
    size_t reply_len = 0;
    int rc = 0;
    if (b->cb.on_message != NULL)
        rc = b->cb.on_message(b->cb.arg, &m, &reply, &reply_len);
    if (m.kind == BUS_EVENT)
        goto out_free; /* no answer to an event; a reply set anyway is freed */
    uint8_t kind = rc == 0 ? BUS_ACK : BUS_NACK;
    if (reply == NULL)
        reply_len = 0;
    if (reply_len > max_payload(b)) {
        kind = BUS_NACK;
        reply_len = 0;
    }
    struct bus__link *l = link_get(b, m.sender);
    if (l == NULL) {
        COUNT(b, dropped_overflow);
        goto out_free;
    }
    struct bus_msg a;
    msg_init(b, &a, kind, m.type, m.sender);
    a.seq = ++l->reply_seq;
    a.id = m.id;
    a.ref_incarnation = m.incarnation;
    a.payload = reply;
    a.len = reply_len;
    if (send_msg(b, b->router, route, &a) == 0)
        COUNT(b, sent);
    else
        COUNT(b, dropped_overflow);
out_free:
    free(reply);
}

/* An ack or nack on the DEALER towards peer d. */
static void on_dealer_msg(struct bus *b, const struct bus__peer *d, const void *data, size_t len)
{
    struct bus_msg m;
    if (!accept_msg(b, data, len, &m))
        return;
    if (m.kind != BUS_ACK && m.kind != BUS_NACK) {
        COUNT(b, dropped_malformed);
        return;
    }
    /* An answer to another incarnation of this node, or from a node we did
     * not ask on this connection, can only be a replay. */
    if (m.ref_incarnation != b->incarnation || strcmp(m.sender, d->id) != 0 ||
        track(b, m.sender, m.incarnation, m.seq, S_REPLY) == V_REPLAY) {
        COUNT(b, dropped_replayed);
        return;
    }
    COUNT(b, received);
    void *reply = NULL;
    if (m.len > 0) {
        reply = malloc(m.len);
        if (reply == NULL) {
            /* cannot deliver the reply: the target is left to time out */
            COUNT(b, acks_late);
            return;
        }
        memcpy(reply, m.payload, m.len);
    }
    int status = m.kind == BUS_ACK ? BUS_OK : BUS_ENACK;
    if (!resolve(b, m.id, m.sender, status, reply, m.len)) {
        COUNT(b, acks_late);
        free(reply);
    }
}

/* Discard the remaining frames of a multipart message. */
static void drain_more(void *sock, zmq_msg_t *last)
{
    while (zmq_msg_more(last)) {
        zmq_msg_close(last);
        zmq_msg_init(last);
        if (zmq_msg_recv(last, sock, 0) < 0)
            break;
    }
}

static void recv_router(struct bus *b)
{
    for (int n = 0; n < BUS__BATCH; n++) {
        zmq_msg_t route, body;
        zmq_msg_init(&route);
        if (zmq_msg_recv(&route, b->router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&route);
            return;
        }
        zmq_msg_init(&body);
        if (!zmq_msg_more(&route) || zmq_msg_recv(&body, b->router, 0) < 0) {
            COUNT(b, dropped_malformed);
        } else if (zmq_msg_more(&body)) {
            drain_more(b->router, &body);
            COUNT(b, dropped_malformed); /* we send one frame per message */
        } else {
            on_router_msg(b, &route, zmq_msg_data(&body), zmq_msg_size(&body));
        }
        zmq_msg_close(&body);
        zmq_msg_close(&route);
    }
}

static void recv_dealer(struct bus *b, const struct bus__peer *d)
{
    for (int n = 0; n < BUS__BATCH; n++) {
        zmq_msg_t zm;
        zmq_msg_init(&zm);
        if (zmq_msg_recv(&zm, d->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&zm);
            return;
        }
        if (zmq_msg_more(&zm)) {
            drain_more(d->sock, &zm);
            COUNT(b, dropped_malformed);
        } else {
            on_dealer_msg(b, d, zmq_msg_data(&zm), zmq_msg_size(&zm));
        }
        zmq_msg_close(&zm);
    }
}

/* ---- bus thread: the loop ------------------------------------------------ */

/* Fill the poll items: the wakeup, the ROUTER, then the DEALERs that fit
 * (all of them unless growing the array failed; see run_peers()). */
static size_t build_items(struct bus *b)
{
    size_t n = 2 + b->ndealers;
    if (n > b->capitems)
        n = b->capitems;
    memset(b->items, 0, n * sizeof(*b->items));
    b->items[0].fd = b->efd;
    b->items[0].events = ZMQ_POLLIN;
    b->items[1].socket = b->router;
    b->items[1].events = ZMQ_POLLIN;
    for (size_t i = 2; i < n; i++) {
        b->items[i].socket = b->dealers[i - 2].sock;
        b->items[i].events = ZMQ_POLLIN;
    }
    return n;
}

/*
 * Wait for work; take messages from the sockets first (the poll items are
 * valid until a command changes the peers), then the commands. Exits when
 * bus_close() has set stopping, after running the commands queued before.
 */
static void *bus_thread(void *arg)
{
    struct bus *b = arg;
    bus__self = b;
    pthread_setname_np(pthread_self(), "bus");
    for (;;) {
        size_t nitems = build_items(b);
        if (zmq_poll(b->items, (int)nitems, -1) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            break; /* ETERM cannot happen before bus_close(); give up */
        }
        if (b->items[1].revents & ZMQ_POLLIN)
            recv_router(b);
        for (size_t i = 2; i < nitems; i++)
            if (b->items[i].revents & ZMQ_POLLIN)
                recv_dealer(b, &b->dealers[i - 2]);
        if (b->items[0].revents & ZMQ_POLLIN) {
            uint64_t v;
            ssize_t r = read(b->efd, &v, sizeof(v));
            (void)r;
            pthread_mutex_lock(&b->mu);
            struct bus__cmd *list = b->qhead;
            b->qhead = b->qtail = NULL;
            b->queued = 0;
            bool stop = b->stopping;
            pthread_mutex_unlock(&b->mu);
            run_cmds(b, list);
            if (stop)
                break;
        }
    }
    return NULL;
}

/* ---- open and close ----------------------------------------------------- */

/* A random nonzero number. It must differ from the last run's, not be
 * secret (messages are authenticated by the key), so when the kernel's
 * pool is not ready yet (early boot of the appliance) clocks and the pid,
 * mixed, will do rather than block. */
static uint64_t new_incarnation(const struct bus *b)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v)) {
        struct timespec rt, mt;
        clock_gettime(CLOCK_REALTIME, &rt);
        clock_gettime(CLOCK_MONOTONIC, &mt);
        v = (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec;
        v ^= ((uint64_t)mt.tv_nsec << 32) ^ ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)b;
        /* splitmix64 finaliser */
        v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9u;
        v = (v ^ (v >> 27)) * 0x94d049bb133111ebu;
        v ^= v >> 31;
    }
    return v != 0 ? v : 1;
}

static int pick(int v, int dflt)
{
    return v == 0 ? dflt : v;
}

int bus_open(const struct bus_options *o, const struct bus_callbacks *cb, struct bus **out)
{
    if (o == NULL || cb == NULL || out == NULL || cb->hmac == NULL || !id_ok(o->node_id) ||
        o->key == NULL || o->key_len < BUS_MIN_KEY || o->listen_endpoint == NULL ||
        (o->next_key != NULL && o->next_key_len < BUS_MIN_KEY) ||
        bounded_len(o->listen_endpoint, BUS_MAX_ENDPOINT) > BUS_MAX_ENDPOINT || o->send_hwm < 0 ||
        o->recv_hwm < 0 || o->max_skew_ms < 0 || o->reconnect_ivl_ms < 0 ||
        o->heartbeat_ivl_ms < -1 || (o->max_msg_size != 0 && o->max_msg_size < BUS__MIN_MSG))
        return BUS_EINVAL;

    int rc = BUS_ENOMEM;
    struct bus *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return BUS_ENOMEM;
    strcpy(b->id, o->node_id);
    b->cb = *cb;
    b->send_hwm = pick(o->send_hwm, 1000);
    b->recv_hwm = pick(o->recv_hwm, 1000);
    b->max_skew_ms = pick(o->max_skew_ms, 60000);
    b->reconnect_ivl = pick(o->reconnect_ivl_ms, 100);
    b->heartbeat_ivl = pick(o->heartbeat_ivl_ms, 1000);
    b->ipv6 = o->ipv6 ? 1 : 0;
    b->max_msg = o->max_msg_size != 0 ? o->max_msg_size : (size_t)4 << 20;
    b->max_queued = o->max_queued != 0 ? o->max_queued : 4096;
    atomic_init(&b->next_id, 1);
    b->efd = -1;
    b->capitems = 2 + 16;
    b->items = calloc(b->capitems, sizeof(*b->items));
    b->key = malloc(o->key_len);
    if (b->key == NULL || b->items == NULL)
        goto out_free;
    memcpy(b->key, o->key, o->key_len);
    b->key_len = o->key_len;
    if (o->next_key != NULL) {
        b->next_key = malloc(o->next_key_len);
        if (b->next_key == NULL)
            goto out_free;
        memcpy(b->next_key, o->next_key, o->next_key_len);
        b->next_key_len = o->next_key_len;
    }
    b->incarnation = new_incarnation(b);

    rc = BUS_EIO;
    if (pthread_mutex_init(&b->mu, NULL) != 0)
        goto out_free;
    if (pthread_mutex_init(&b->peers_mu, NULL) != 0)
        goto out_mu;
    if (pthread_condattr_init(&b->cattr) != 0)
        goto out_peers_mu;
    if (pthread_condattr_setclock(&b->cattr, CLOCK_MONOTONIC) != 0)
        goto out_cattr;
    b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (b->efd < 0)
        goto out_cattr;
    b->ctx = zmq_ctx_new();
    if (b->ctx == NULL)
        goto out_efd;
    zmq_ctx_set(b->ctx, ZMQ_BLOCKY, 0);
    zmq_ctx_set(b->ctx, ZMQ_IO_THREADS, 1);
    b->router = zmq_socket(b->ctx, ZMQ_ROUTER);
    if (b->router == NULL)
        goto out_ctx;
    if (sock_setup(b, b->router) != 0 || set_int(b->router, ZMQ_ROUTER_MANDATORY, 1) != 0)
        goto out_router;
    if (zmq_bind(b->router, o->listen_endpoint) != 0) {
        rc = zmq_to_bus(zmq_errno());
        goto out_router;
    }
    size_t eplen = sizeof(b->endpoint);
    if (zmq_getsockopt(b->router, ZMQ_LAST_ENDPOINT, b->endpoint, &eplen) != 0)
        goto out_router;

    /* The bus thread takes no signals: they belong to the daemon's threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int prc = pthread_create(&b->thread, NULL, bus_thread, b);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (prc != 0)
        goto out_router;
    *out = b;
    return BUS_OK;

out_router:
    zmq_close(b->router);
out_ctx:
    zmq_ctx_term(b->ctx);
out_efd:
    close(b->efd);
out_cattr:
    pthread_condattr_destroy(&b->cattr);
out_peers_mu:
    pthread_mutex_destroy(&b->peers_mu);
out_mu:
    pthread_mutex_destroy(&b->mu);
out_free:
    free(b->items);
    free(b->key);
    free(b->next_key);
    free(b);
    return rc;
}

void bus_close(struct bus *b)
{
    if (b == NULL)
        return;
    pthread_mutex_lock(&b->mu);
    b->stopping = true;
    pthread_mutex_unlock(&b->mu);
    wake(b);
    pthread_join(b->thread, NULL);

    /* Whatever the thread did not take (it takes everything before it
     * stops; this is for the case zmq_poll failed). */
    while (b->qhead != NULL) {
        struct bus__cmd *c = b->qhead;
        b->qhead = c->next;
        cmd_free(c);
    }
    close_peers(b->dealers, b->ndealers);
    free(b->dealers);
    zmq_close(b->router);
    zmq_ctx_term(b->ctx);
    close(b->efd);
    free(b->peers);
    free(b->links);
    free(b->items);
    pthread_condattr_destroy(&b->cattr);
    pthread_mutex_destroy(&b->peers_mu);
    pthread_mutex_destroy(&b->mu);
    free(b->key);
    free(b->next_key);
    free(b);
}

const char *bus_endpoint(const struct bus *b)
{
    return b->endpoint;
}

uint64_t bus_incarnation(const struct bus *b)
{
    return b->incarnation;
}

/* ---- peers -------------------------------------------------------------- */

static const struct bus__peer *find_peer_locked(const struct bus *b, const char *id)
{
    for (size_t i = 0; i < b->npeers; i++)
        if (strcmp(b->peers[i].id, id) == 0)
            return &b->peers[i];
    return NULL;
}

int bus_set_peers(struct bus *b, const struct bus_peer *peers, size_t n)
{
    if (b == NULL || (peers == NULL && n > 0))
        return BUS_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!id_ok(peers[i].id) || peers[i].endpoint == NULL || peers[i].endpoint[0] == '\0' ||
            bounded_len(peers[i].endpoint, BUS_MAX_ENDPOINT) > BUS_MAX_ENDPOINT)
            return BUS_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(peers[i].id, peers[j].id) == 0)
                return BUS_EINVAL;
    }

    struct bus__cmd *c = cmd_new(OP_PEERS, 0, 0);
    struct bus__peer *set = calloc(n > 0 ? n : 1, sizeof(*set));
    if (c == NULL || set == NULL) {
        free(c);
        free(set);
        return BUS_ENOMEM;
    }
    c->peers = set;
    int rc = BUS_OK;
    pthread_mutex_lock(&b->peers_mu);
    /* b->peers changes only under peers_mu, which we hold: read it freely */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(peers[i].id, b->id) == 0)
            continue;
        struct bus__peer *p = &set[k++];
        c->npeers = k;
        strcpy(p->id, peers[i].id);
        strcpy(p->endpoint, peers[i].endpoint);
        const struct bus__peer *cur = find_peer_locked(b, p->id);
        if (cur != NULL && strcmp(cur->endpoint, p->endpoint) == 0)
            continue; /* unchanged: the bus thread keeps its socket */
        rc = dealer_new(b, p->endpoint, &p->sock);
        if (rc != BUS_OK)
            goto out_unlock;
    }

    /* The callers' view: a copy without sockets. */
    struct bus__peer *view = calloc(k > 0 ? k : 1, sizeof(*view));
    if (view == NULL) {
        rc = BUS_ENOMEM;
        goto out_unlock;
    }
    for (size_t i = 0; i < k; i++) {
        strcpy(view[i].id, set[i].id);
        strcpy(view[i].endpoint, set[i].endpoint);
    }
    pthread_mutex_lock(&b->mu);
    free(b->peers);
    b->peers = view;
    b->npeers = k;
    bool w = enqueue_locked(b, c);
    pthread_mutex_unlock(&b->mu);
    pthread_mutex_unlock(&b->peers_mu);
    if (w)
        wake(b);
    return BUS_OK;

out_unlock:
    pthread_mutex_unlock(&b->peers_mu);
    cmd_free(c);
    return rc;
}

/* ---- requests ----------------------------------------------------------- */

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* The request behind bus_request_all() (peer NULL) and bus_request_one(). */
static int request(struct bus *b, const char *peer, uint8_t type, const void *payload, size_t len,
                   int timeout_ms, struct bus_ack_result *res)
{
    if (res != NULL)
        memset(res, 0, sizeof(*res));
    if (b == NULL || res == NULL || (payload == NULL && len > 0) || timeout_ms < 0)
        return BUS_EINVAL;
    if (len > max_payload(b))
        return BUS_ERANGE;
    if (bus__self == b)
        return BUS_EDEADLK;
    struct timespec deadline;
    deadline_after(&deadline, timeout_ms);

    struct bus__call call = {.id = atomic_fetch_add(&b->next_id, 1), .res = res};
    if (pthread_cond_init(&call.cond, &b->cattr) != 0)
        return BUS_ENOMEM;

    int rc = BUS_OK;
    struct bus__cmd *c = NULL;
    pthread_mutex_lock(&b->mu);
    size_t n = b->npeers;
    if (peer != NULL) {
        const struct bus__peer *p = find_peer_locked(b, peer);
        if (p == NULL) {
            rc = BUS_ENOPEER;
            goto out_unlock;
        }
        n = 1;
    }
    if (n == 0)
        goto out_unlock; /* no peers: nothing to wait for */
    c = cmd_new(OP_REQUEST, len, n);
    res->acks = calloc(n, sizeof(*res->acks));
    if (c == NULL || res->acks == NULL) {
        free(c);
        free(res->acks);
        res->acks = NULL;
        rc = BUS_ENOMEM;
        goto out_unlock;
    }
    res->n = n;
    for (size_t i = 0; i < n; i++) {
        const char *id = peer != NULL ? peer : b->peers[i].id;
        strcpy(res->acks[i].peer, id);
        strcpy(c->targets[i], id);
        res->acks[i].status = BUS__PENDING;
    }
    c->type = type;
    c->call_id = call.id;
    if (len > 0)
        memcpy(c->data, payload, len);
    call.remaining = n;
    call.next = b->calls;
    b->calls = &call;
    if (enqueue_locked(b, c)) {
        pthread_mutex_unlock(&b->mu);
        wake(b);
        pthread_mutex_lock(&b->mu);
    }

    while (call.remaining > 0)
        if (pthread_cond_timedwait(&call.cond, &b->mu, &deadline) == ETIMEDOUT)
            break;
    for (struct bus__call **pp = &b->calls; *pp != NULL; pp = &(*pp)->next)
        if (*pp == &call) {
            *pp = call.next;
            break;
        }
    for (size_t i = 0; i < n; i++) {
        struct bus_ack *a = &res->acks[i];
        if (a->status == BUS__PENDING) {
            a->status = BUS_ETIMEDOUT;
            COUNT(b, timeouts);
        }
        if (a->status == BUS_OK)
            res->n_acked++;
    }
    rc = res->n_acked == n ? BUS_OK : BUS_EINCOMPLETE;

out_unlock:
    pthread_mutex_unlock(&b->mu);
    pthread_cond_destroy(&call.cond);
    return rc;
}

int bus_request_all(struct bus *b, uint8_t type, const void *payload, size_t len, int timeout_ms,
                    struct bus_ack_result *res)
{
    return request(b, NULL, type, payload, len, timeout_ms, res);
}

int bus_request_one(struct bus *b, const char *peer, uint8_t type, const void *payload, size_t len,
                    int timeout_ms, struct bus_ack_result *res)
{
    if (peer == NULL) {
        if (res != NULL)
            memset(res, 0, sizeof(*res));
        return BUS_EINVAL;
    }
    return request(b, peer, type, payload, len, timeout_ms, res);
}

void bus_ack_result_free(struct bus_ack_result *res)
{
    if (res == NULL)
        return;
    for (size_t i = 0; i < res->n; i++)
        free(res->acks[i].reply);
    free(res->acks);
    memset(res, 0, sizeof(*res));
}

/* ---- fire and forget ---------------------------------------------------- */

/* Queue an event or raw send, bounded by max_queued. */
static int enqueue_bounded(struct bus *b, struct bus__cmd *c, const char *peer)
{
    pthread_mutex_lock(&b->mu);
    if (peer != NULL && find_peer_locked(b, peer) == NULL) {
        pthread_mutex_unlock(&b->mu);
        free(c);
        return BUS_ENOPEER;
    }
    if (b->queued >= b->max_queued) {
        pthread_mutex_unlock(&b->mu);
        free(c);
        return BUS_EAGAIN;
    }
    b->queued++;
    bool w = enqueue_locked(b, c);
    pthread_mutex_unlock(&b->mu);
    if (w)
        wake(b);
    return BUS_OK;
}

int bus_broadcast(struct bus *b, uint8_t type, const void *payload, size_t len)
{
    if (b == NULL || (payload == NULL && len > 0))
        return BUS_EINVAL;
    if (len > max_payload(b))
        return BUS_ERANGE;
    struct bus__cmd *c = cmd_new(OP_EVENT, len, 0);
    if (c == NULL)
        return BUS_ENOMEM;
    c->type = type;
    if (len > 0)
        memcpy(c->data, payload, len);
    return enqueue_bounded(b, c, NULL);
}

int bus_send_raw(struct bus *b, const char *peer, const void *data, size_t len)
{
    if (b == NULL || peer == NULL || (data == NULL && len > 0))
        return BUS_EINVAL;
    if (!id_ok(peer))
        return BUS_ENOPEER;
    if (len > b->max_msg)
        return BUS_ERANGE;
    struct bus__cmd *c = cmd_new(OP_RAW, len, 1);
    if (c == NULL)
        return BUS_ENOMEM;
    strcpy(c->targets[0], peer);
    if (len > 0)
        memcpy(c->data, data, len);
    return enqueue_bounded(b, c, peer);
}

void bus_stats(struct bus *b, struct bus_stats *st)
{
    if (b == NULL || st == NULL)
        return;
    st->sent = atomic_load(&b->st.sent);
    st->received = atomic_load(&b->st.received);
    st->acked = atomic_load(&b->st.acked);
    st->nacked = atomic_load(&b->st.nacked);
    st->timeouts = atomic_load(&b->st.timeouts);
    st->acks_late = atomic_load(&b->st.acks_late);
    st->dropped_malformed = atomic_load(&b->st.dropped_malformed);
    st->dropped_version = atomic_load(&b->st.dropped_version);
    st->dropped_forged = atomic_load(&b->st.dropped_forged);
    st->dropped_replayed = atomic_load(&b->st.dropped_replayed);
    st->dropped_skew = atomic_load(&b->st.dropped_skew);
    st->dropped_overflow = atomic_load(&b->st.dropped_overflow);
    st->gaps = atomic_load(&b->st.gaps);
    st->accepted_next_key = atomic_load(&b->st.accepted_next_key);
}
