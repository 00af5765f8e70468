/*
 * cluster.c - heartbeat thread (membership, cache lease, primary lease,
 * cluster tasks) and the writer's side of acknowledged invalidation.
 * The protocol is docs/cluster.md's ("Caches that are never stale", "The
 * primary").
 */
#include "cluster/cluster.h"

#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "bus.h"
#include "crypto/crypto.h"
#include "db/db.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MS(col) "(extract(epoch from " col ") * 1000)::bigint"
#define CLUSTER_MSG_INVALIDATE 1
#define CLUSTER_PRIMARY_LEASE_MS 3000
#define CLUSTER_MAX_PEERS 64
#define CLUSTER_KEYS_MAX 64 /* keys in one invalidation message */
/* an invalidation message: per key, a flag byte (1: prefix), its length in 4
 * bytes big-endian, then its bytes */
#define CLUSTER_KEY_HEAD 5
#define CLUSTER_ID_MAX 64          /* bytes of a node id, with its NUL */
#define CLUSTER_ENDPOINT_MAX 300   /* bytes of a bus endpoint, with its NUL */
#define CLUSTER_RETRY_STEP_MS 50   /* between two sends to a peer not connected yet */
#define CLUSTER_WAIT_MARGIN_MS 200 /* past a lease before a writer stops waiting for a peer */
#define CLUSTER_POLL_US 20000      /* between two looks at a flagged peer's flush */

struct cluster {
    struct db_pool *db;
    struct cluster_cache cache; /* the node's cache, driven by the protocol */
    struct bus *bus;
    char id[CLUSTER_ID_MAX], public_url[256], cluster_url[256], bus_endpoint[CLUSTER_ENDPOINT_MAX],
        zone[64], version[32];
    unsigned char key[256], next_key[256];
    size_t key_len, next_key_len; /* next_key_len 0: no rotation under way */
    int lease_ms, heartbeat_ms, down_after_ms, remove_down_after_s, bus_timeout_ms;
    bool preferred;

    pthread_t thread;
    pthread_mutex_t lock; /* stop flag and wake-ups; the peer list */
    pthread_cond_t wake;
    bool stopping;

    atomic_int_fast64_t lease_deadline_ns;   /* monotonic; the cache may be used before it */
    atomic_int_fast64_t primary_deadline_ns; /* monotonic; primary (advisory) before it */
    atomic_bool draining, primary;
    atomic_bool ready; /* 'starting' in the table until the node serves */
    atomic_uint_fast64_t primary_token;

    /* what this node has seen of each peer's renewal counter, and since when
     * (monotonic): a counter that stood still for a whole lease means the
     * peer's lease is over, whatever any clock but ours says (under lock) */
    struct cluster__seen {
        char id[CLUSTER_ID_MAX];
        long long renewals;
        int64_t since_ns;
    } seen[CLUSTER_MAX_PEERS];
    int nseen;

    char peer_ids[CLUSTER_MAX_PEERS][CLUSTER_ID_MAX],
        peer_eps[CLUSTER_MAX_PEERS][CLUSTER_ENDPOINT_MAX];
    int npeers;

    atomic_uint_fast64_t st_sent, st_missing, st_waits, st_flushes, st_tasks, st_unconfirmed;
    atomic_uint_fast64_t st_inval_bucket[CLUSTER_INVAL_BUCKETS + 1], st_inval_us;
};

const double cluster_inval_bounds[CLUSTER_INVAL_BUCKETS] = {0.001, 0.002, 0.005, 0.01,
                                                            0.05,  0.25,  1,     5};

static int64_t cluster__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void cluster__hmac(const void *key, size_t klen, const void *data, size_t len,
                          unsigned char out[32])
{
    cr_hmac_sha256(key, klen, data, len, out);
}

/* ---- the reader's side: is the cache lease valid? ---- */

bool cluster_cache_ok(void *arg)
{
    struct cluster *c = arg;
    return cluster__mono_ns() < atomic_load(&c->lease_deadline_ns);
}

/* ---- invalidation messages: [u8 prefix][u32 len][key] ... ---- */

static void cluster__encode(struct gr_sbuf *sb, const struct cluster_key *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char h[CLUSTER_KEY_HEAD] = {
            items[i].prefix ? 1 : 0, (unsigned char)(items[i].len >> 24),
            (unsigned char)(items[i].len >> 16), (unsigned char)(items[i].len >> 8),
            (unsigned char)items[i].len};
        gr_sbuf_add(sb, h, CLUSTER_KEY_HEAD);
        gr_sbuf_add(sb, items[i].key, items[i].len);
    }
}

static int cluster__on_message(void *arg, const struct bus_msg *m, void **reply, size_t *reply_len)
{
    struct cluster *c = arg;
    *reply = NULL;
    *reply_len = 0;
    if (m->type != CLUSTER_MSG_INVALIDATE)
        return 0; /* events we do not know yet are acknowledged and ignored */
    const unsigned char *p = m->payload;
    size_t left = m->len, n = 0;
    struct cluster_key items[CLUSTER_KEYS_MAX];
    while (left > 0) {
        if (left < CLUSTER_KEY_HEAD || n == CLUSTER_KEYS_MAX)
            goto bad;
        size_t len = ((size_t)p[1] << 24) | ((size_t)p[2] << 16) | ((size_t)p[3] << 8) | p[4];
        if (len > left - CLUSTER_KEY_HEAD)
            goto bad;
        items[n++] = (struct cluster_key){(const char *)p + CLUSTER_KEY_HEAD, len, p[0] == 1};
        p += CLUSTER_KEY_HEAD + len;
        left -= CLUSTER_KEY_HEAD + len;
    }
    c->cache.apply(c->cache.arg, items, n);
    return 0;
bad:
    /* cannot tell what to drop: drop everything, then acknowledge */
    gr_warn("cluster: malformed invalidation from %s: dropping the cache", m->sender);
    if (c->cache.drop(c->cache.arg) != GR_OK)
        return -1;
    return 0;
}

static void cluster__on_gap(void *arg, const char *sender)
{
    struct cluster *c = arg;
    gr_warn("cluster: messages from %s were lost: dropping the cache", sender);
    atomic_fetch_add(&c->st_flushes, 1);
    if (c->cache.drop(c->cache.arg) != GR_OK)
        gr_error("cluster: cache drop failed");
}

/* ---- peers ---- */

/* Make the bus peers the union of ids/eps and the current list (under lock). */
static void cluster__merge_peers(struct cluster *c, char (*ids)[CLUSTER_ID_MAX],
                                 char (*eps)[CLUSTER_ENDPOINT_MAX], int n, bool replace)
{
    pthread_mutex_lock(&c->lock);
    bool changed = false;
    if (replace) {
        if (n != c->npeers)
            changed = true;
        for (int i = 0; i < n && !changed; i++)
            if (strcmp(ids[i], c->peer_ids[i]) || strcmp(eps[i], c->peer_eps[i]))
                changed = true;
        if (changed) {
            for (int i = 0; i < n; i++) {
                memcpy(c->peer_ids[i], ids[i], CLUSTER_ID_MAX);
                memcpy(c->peer_eps[i], eps[i], CLUSTER_ENDPOINT_MAX);
            }
            c->npeers = n;
        }
    } else {
        for (int i = 0; i < n; i++) {
            int j;
            for (j = 0; j < c->npeers; j++)
                if (!strcmp(c->peer_ids[j], ids[i]))
                    break;
            if (j == c->npeers && c->npeers < CLUSTER_MAX_PEERS) {
                memcpy(c->peer_ids[j], ids[i], CLUSTER_ID_MAX);
                memcpy(c->peer_eps[j], eps[i], CLUSTER_ENDPOINT_MAX);
                c->npeers++;
                changed = true;
            } else if (j < c->npeers && strcmp(c->peer_eps[j], eps[i])) {
                memcpy(c->peer_eps[j], eps[i], CLUSTER_ENDPOINT_MAX);
                changed = true;
            }
        }
    }
    if (changed) {
        struct bus_peer peers[CLUSTER_MAX_PEERS];
        for (int i = 0; i < c->npeers; i++) {
            peers[i].id = c->peer_ids[i];
            peers[i].endpoint = c->peer_eps[i];
        }
        if (bus_set_peers(c->bus, peers, (size_t)c->npeers) != 0)
            gr_warn("cluster: cannot update bus peers");
    }
    pthread_mutex_unlock(&c->lock);
}

/* ---- the writer's side ---- */

/*
 * Record that peer id's renewal counter is renewals now; return since when
 * (this node's monotonic clock) it has had that value. Called after the
 * query that read it returned, so the renewal that set it had committed,
 * and the peer's deadline from it is earlier than since + lease.
 */
static int64_t cluster__observe(struct cluster *c, const char *id, long long renewals, int64_t now)
{
    pthread_mutex_lock(&c->lock);
    int i, oldest = 0;
    for (i = 0; i < c->nseen; i++) {
        if (!strcmp(c->seen[i].id, id))
            break;
        if (c->seen[i].since_ns < c->seen[oldest].since_ns)
            oldest = i;
    }
    if (i == c->nseen) {
        if (c->nseen < CLUSTER_MAX_PEERS)
            c->nseen++;
        else
            i = oldest;
        snprintf(c->seen[i].id, CLUSTER_ID_MAX, "%s", id);
        c->seen[i].renewals = renewals;
        c->seen[i].since_ns = now;
    } else if (c->seen[i].renewals != renewals) {
        c->seen[i].renewals = renewals;
        c->seen[i].since_ns = now;
    }
    int64_t since = c->seen[i].since_ns;
    pthread_mutex_unlock(&c->lock);
    return since;
}

/*
 * How long a counter must stand still, or a flagged node be waited for,
 * before its lease is over: its own lease (peer_lease_ms, as its last
 * renewal stored it; nodes may be configured with different leases) or
 * this node's, whichever is longer, plus the margin.
 */
static int64_t cluster__lease_over_ns(const struct cluster *c, int peer_lease_ms)
{
    int lease = peer_lease_ms > c->lease_ms ? peer_lease_ms : c->lease_ms;
    return (int64_t)(lease + CLUSTER_WAIT_MARGIN_MS) * 1000000LL;
}

/*
 * The peers ids[0..n) did not acknowledge: flag them to flush (one
 * statement), then wait until each confirmed its flush or a whole lease
 * (the longest of theirs, lease_ms, or this node's) has passed on this
 * node's clock since the flags were stored. Any renewal
 * of a peer that commits after its flag sees it and drops the cache first;
 * one that committed before it gave the peer a deadline earlier than the
 * flag plus a lease. No database clock is read. All silent peers are
 * waited for at once, so a write waits one lease however many are silent.
 * false: the flags could not be stored within a lease (no database): such
 * a peer may go on serving the old state, so the write is not acknowledged.
 */
static bool cluster__wait_out(struct cluster *c, const char *const *ids, int n, int lease_ms)
{
    atomic_fetch_add(&c->st_waits, (uint64_t)n);
    int64_t give_up = cluster__mono_ns() + cluster__lease_over_ns(c, lease_ms);
    struct gr_sbuf arr = GR_SBUF_INIT, eps = GR_SBUF_INIT;
    db_text_array(&arr, ids, n);
    const char *p[2] = {arr.buf, NULL};
    struct db_res *flags = NULL;
    int64_t flagged_at = 0;
    for (;;) {
        if (db_exec1(c->db, &flags,
                     "UPDATE cluster_nodes SET flush_epoch = flush_epoch + 1 WHERE id ="
                     " ANY($1::text[]) RETURNING id, flush_epoch",
                     1, p) == GR_OK) {
            flagged_at = cluster__mono_ns();
            break;
        }
        db_res_free(flags);
        flags = NULL;
        if (cluster__mono_ns() >= give_up) {
            gr_sbuf_release(&arr);
            return false;
        }
        usleep(CLUSTER_POLL_US * 5);
    }
    /* a node no longer in the table (removed) has nothing to flush */
    int nf = db_res_rows(flags);
    if (nf == 0) {
        db_res_free(flags);
        gr_sbuf_release(&arr);
        return true;
    }
    const char *fid[CLUSTER_MAX_PEERS], *fep[CLUSTER_MAX_PEERS];
    for (int i = 0; i < nf && i < CLUSTER_MAX_PEERS; i++) {
        fid[i] = db_res_get(flags, i, 0);
        fep[i] = db_res_get(flags, i, 1);
    }
    gr_sbuf_reset(&arr);
    db_text_array(&arr, fid, nf < CLUSTER_MAX_PEERS ? nf : CLUSTER_MAX_PEERS);
    db_text_array(&eps, fep, nf < CLUSTER_MAX_PEERS ? nf : CLUSTER_MAX_PEERS);
    db_res_free(flags);
    p[0] = arr.buf;
    p[1] = eps.buf;
    int64_t deadline = flagged_at + cluster__lease_over_ns(c, lease_ms);
    while (cluster__mono_ns() < deadline) {
        struct db_res *res = NULL;
        int rc = db_exec1(c->db, &res,
                          "SELECT count(*) FROM unnest($1::text[], $2::bigint[]) AS v(id, e) JOIN"
                          " cluster_nodes n ON n.id = v.id WHERE n.flushed_epoch < v.e",
                          2, p);
        bool done = rc == GR_OK && db_res_get(res, 0, 0)[0] == '0';
        db_res_free(res);
        if (done)
            break;
        usleep(CLUSTER_POLL_US);
    }
    gr_sbuf_release(&arr);
    gr_sbuf_release(&eps);
    return true;
}

static bool cluster__invalidate_peers(struct cluster *c, const struct cluster_key *items, size_t n);

/* Acknowledged invalidation (below), timed for the metrics. */
bool cluster_invalidate(void *arg, const struct cluster_key *items, size_t n)
{
    struct cluster *c = arg;
    int64_t t0 = cluster__mono_ns();
    bool ok = cluster__invalidate_peers(c, items, n);
    double s = (double)(cluster__mono_ns() - t0) / 1e9;
    int b = 0;
    while (b < CLUSTER_INVAL_BUCKETS && s > cluster_inval_bounds[b])
        b++;
    atomic_fetch_add(&c->st_inval_bucket[b], 1);
    atomic_fetch_add(&c->st_inval_us, (uint64_t)(s * 1e6));
    if (!ok) {
        atomic_fetch_add(&c->st_unconfirmed, 1);
        gr_warn("cluster: invalidation not confirmed (no database to flag a silent peer with)");
    }
    return ok;
}

/* The peers a writer must reach: those holding a cache lease now. */
struct cluster__peers {
    char ids[CLUSTER_MAX_PEERS][CLUSTER_ID_MAX], eps[CLUSTER_MAX_PEERS][CLUSTER_ENDPOINT_MAX];
    int lease_ms[CLUSTER_MAX_PEERS]; /* each one's lease, as its last renewal stored it */
    int n;
    bool from_db; /* false: the database did not answer, every known peer instead */
};

/*
 * Step 1: the peers that may hold a cache lease now. Every node not marked
 * down is read with its renewal counter; one whose counter this node has
 * seen stand still for a whole lease (its own clock) is flagged to flush
 * in a statement that rechecks the counter under the row lock, and is not
 * waited for: its lease is over, and a later renewal sees the flag and
 * drops its cache first. The others are sent the keys. No database clock is
 * read, so a failover to a server with another clock changes nothing.
 * Without a database (retried for up to a lease): every peer this node
 * knows, and from_db false.
 */
static void cluster__lease_holders(struct cluster *c, struct cluster__peers *pp)
{
    const char *p[1] = {c->id};
    struct db_res *res = NULL;
    int64_t give_up = cluster__mono_ns() + (int64_t)c->lease_ms * 1000000LL;
    pp->n = 0;
    for (;;) {
        pp->from_db = db_exec1(c->db, &res,
                               "SELECT id, bus_endpoint, renewals, greatest(0, (extract(epoch FROM"
                               " lease_expiry - heartbeat) * 1000)::bigint) FROM cluster_nodes"
                               " WHERE id <> $1 AND state <> 'down' ORDER BY id",
                               1, p) == GR_OK;
        if (pp->from_db || cluster__mono_ns() >= give_up)
            break;
        usleep(CLUSTER_POLL_US * 5);
    }
    if (!pp->from_db) {
        pthread_mutex_lock(&c->lock);
        pp->n = c->npeers;
        memcpy(pp->ids, c->peer_ids, sizeof(pp->ids[0]) * (size_t)pp->n);
        memcpy(pp->eps, c->peer_eps, sizeof(pp->eps[0]) * (size_t)pp->n);
        pthread_mutex_unlock(&c->lock);
        for (int i = 0; i < pp->n; i++)
            pp->lease_ms[i] = c->lease_ms;
        db_res_free(res);
        return;
    }
    int64_t now = cluster__mono_ns();
    const char *over_ids[CLUSTER_MAX_PEERS], *over_eps[CLUSTER_MAX_PEERS];
    const char *over_n[CLUSTER_MAX_PEERS];
    int over_lease[CLUSTER_MAX_PEERS], nover = 0;
    for (int i = 0; i < db_res_rows(res) && i < CLUSTER_MAX_PEERS; i++) {
        const char *id = db_res_get(res, i, 0);
        int64_t since = cluster__observe(c, id, strtoll(db_res_get(res, i, 2), NULL, 10), now);
        long long lease = strtoll(db_res_get(res, i, 3), NULL, 10);
        int lease_ms = lease > 0 && lease < INT32_MAX ? (int)lease : c->lease_ms;
        if (now - since >= cluster__lease_over_ns(c, lease_ms)) {
            over_ids[nover] = id;
            over_eps[nover] = db_res_get(res, i, 1);
            over_lease[nover] = lease_ms;
            over_n[nover++] = db_res_get(res, i, 2);
            continue;
        }
        snprintf(pp->ids[pp->n], CLUSTER_ID_MAX, "%s", id);
        snprintf(pp->eps[pp->n], CLUSTER_ENDPOINT_MAX, "%s", db_res_get(res, i, 1));
        pp->lease_ms[pp->n] = lease_ms;
        pp->n++;
    }
    if (nover > 0) {
        struct gr_sbuf ids = GR_SBUF_INIT, ns = GR_SBUF_INIT;
        db_text_array(&ids, over_ids, nover);
        db_text_array(&ns, over_n, nover);
        const char *q[2] = {ids.buf, ns.buf};
        struct db_res *fl = NULL;
        int rc = db_exec1(c->db, &fl,
                          "UPDATE cluster_nodes n SET flush_epoch = CASE WHEN n.flush_epoch >"
                          " n.flushed_epoch THEN n.flush_epoch ELSE n.flush_epoch + 1 END FROM"
                          " unnest($1::text[], $2::bigint[]) AS v(id, r) WHERE n.id = v.id AND"
                          " n.renewals = v.r RETURNING n.id",
                          2, q);
        gr_sbuf_release(&ids);
        gr_sbuf_release(&ns);
        for (int k = 0; k < nover; k++) {
            bool flagged = false;
            for (int i = 0; rc == GR_OK && i < db_res_rows(fl) && !flagged; i++)
                flagged = !strcmp(db_res_get(fl, i, 0), over_ids[k]);
            if (flagged)
                continue;
            /* it renewed after all (or no database): send it the keys */
            snprintf(pp->ids[pp->n], CLUSTER_ID_MAX, "%s", over_ids[k]);
            snprintf(pp->eps[pp->n], CLUSTER_ENDPOINT_MAX, "%s", over_eps[k]);
            pp->lease_ms[pp->n] = over_lease[k];
            pp->n++;
        }
        db_res_free(fl);
    }
    db_res_free(res);
}

/* Whether acks holds an acknowledgement (status) from peer. */
static bool cluster__ack_is(const struct bus_ack_result *acks, const char *peer, int status)
{
    for (size_t j = 0; j < acks->n; j++)
        if (acks->acks[j].status == status && !strcmp(acks->acks[j].peer, peer))
            return true;
    return false;
}

/*
 * Step 3: a peer the first send could not reach (connected a moment ago):
 * send to it alone every CLUSTER_RETRY_STEP_MS until the monotonic time
 * until (one ack timeout after the first send, shared by all such peers).
 * Stops early when it answers, or when it is reachable but silent. true:
 * it acknowledged.
 */
static bool cluster__retry_unreachable(struct cluster *c, const struct bus_ack_result *acks,
                                       const char *peer, const struct cluster_key *items, size_t n,
                                       int64_t until)
{
    if (!cluster__ack_is(acks, peer, BUS_EUNREACH))
        return false;
    while (cluster__mono_ns() + CLUSTER_RETRY_STEP_MS * 1000000LL < until) {
        usleep(CLUSTER_RETRY_STEP_MS * 1000);
        struct gr_sbuf payload = GR_SBUF_INIT;
        cluster__encode(&payload, items, n);
        struct bus_ack_result one;
        memset(&one, 0, sizeof(one));
        int left = (int)((until - cluster__mono_ns()) / 1000000LL);
        int rc = bus_request_one(c->bus, peer, CLUSTER_MSG_INVALIDATE, payload.buf, payload.len,
                                 left > 10 ? left : 10, &one);
        gr_sbuf_release(&payload);
        bool reachable = one.n == 1 && one.acks[0].status != BUS_EUNREACH;
        bus_ack_result_free(&one);
        if (rc == BUS_OK)
            return true;
        if (reachable)
            return false; /* reachable but silent: its lease decides */
    }
    return false;
}

/*
 * The acknowledged invalidation (cluster_invalidate's contract, cluster.h):
 *   1. the peers holding a lease now;
 *   2. send the keys to all of them at once and collect the acks;
 *   3. a peer not connected yet is sent to again for up to the ack timeout;
 *   4. a peer that still did not acknowledge is flagged to flush and waited
 *      out: until it confirms the flush or its lease has expired by the
 *      database clock (without a database: one full lease covers all).
 * It returns only when every peer either dropped the keys or can no
 * longer serve from its cache: the no-stale-read guarantee of
 * docs/cluster.md rests on this.
 */
static bool cluster__invalidate_peers(struct cluster *c, const struct cluster_key *items, size_t n)
{
    struct cluster__peers pp;
    cluster__lease_holders(c, &pp);
    if (pp.n == 0)
        return pp.from_db;
    cluster__merge_peers(c, pp.ids, pp.eps, pp.n, false);
    /* step 2 */
    struct gr_sbuf payload = GR_SBUF_INIT;
    cluster__encode(&payload, items, n);
    struct bus_ack_result acks;
    memset(&acks, 0, sizeof(acks));
    atomic_fetch_add(&c->st_sent, 1);
    int brc = bus_request_all(c->bus, CLUSTER_MSG_INVALIDATE, payload.buf, payload.len,
                              c->bus_timeout_ms, &acks);
    (void)brc; /* BUS_EINCOMPLETE and errors: the per-peer statuses tell */
    gr_sbuf_release(&payload);
    bool ok = pp.from_db; /* without the database, a node that joined a moment ago is unknown */
    const char *silent[CLUSTER_MAX_PEERS];
    int nsilent = 0, silent_lease = 0;
    int64_t retry_until = cluster__mono_ns() + (int64_t)c->bus_timeout_ms * 1000000LL;
    for (int i = 0; i < pp.n; i++) {
        if (cluster__ack_is(&acks, pp.ids[i], BUS_OK) ||
            cluster__retry_unreachable(c, &acks, pp.ids[i], items, n, retry_until)) /* step 3 */
            continue;
        atomic_fetch_add(&c->st_missing, 1);
        gr_warn("cluster: no acknowledgement from %s: waiting out its lease", pp.ids[i]);
        silent[nsilent++] = pp.ids[i];
        if (pp.lease_ms[i] > silent_lease)
            silent_lease = pp.lease_ms[i];
    }
    /* step 4 */
    if (nsilent > 0 && !cluster__wait_out(c, silent, nsilent, silent_lease))
        ok = false;
    bus_ack_result_free(&acks);
    return ok;
}

/* ---- the heartbeat thread ---- */

/* What the node's row says: a load balancer sends requests only to 'active'
 * (proxy-config), so a node is 'starting' until it answers them. */
static const char *cluster__state(struct cluster *c)
{
    if (atomic_load(&c->draining))
        return "draining";
    return atomic_load(&c->ready) ? "active" : "starting";
}

static int cluster__register(struct cluster *c)
{
    const char *p[8] = {c->id,
                        c->public_url,
                        c->cluster_url,
                        c->bus_endpoint,
                        c->zone,
                        c->version,
                        c->preferred ? "true" : "false",
                        cluster__state(c)};
    return db_exec1(c->db, NULL,
                    "INSERT INTO cluster_nodes (id, public_url, cluster_url, bus_endpoint, zone,"
                    " version, preferred_primary, state, started, heartbeat, lease_expiry)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7::boolean, $8, now(), now(), now())"
                    " ON CONFLICT (id) DO UPDATE SET public_url = $2, cluster_url = $3,"
                    " bus_endpoint = $4, zone = $5, version = $6, preferred_primary = $7::boolean,"
                    " state = $8, started = now(), heartbeat = now()",
                    8, p);
}

/* Renew the row and the cache lease; drop the cache first when needed. */
static void cluster__renew(struct cluster *c)
{
    int64_t t0 = cluster__mono_ns(); /* before the renewal is sent */
    bool lapsed = t0 >= atomic_load(&c->lease_deadline_ns);
    char lease[16], hits[24], misses[24];
    snprintf(lease, sizeof(lease), "%d", c->lease_ms);
    snprintf(hits, sizeof(hits), "%llu", (unsigned long long)c->cache.hits(c->cache.arg));
    snprintf(misses, sizeof(misses), "%llu", (unsigned long long)c->cache.misses(c->cache.arg));
    const char *p[5] = {c->id, lease, hits, misses, cluster__state(c)};
    struct db_res *res = NULL;
    int rc = db_exec1(c->db, &res,
                      "UPDATE cluster_nodes SET heartbeat = now(),"
                      " lease_expiry = now() + make_interval(secs => $2::double precision / 1000),"
                      " cache_hits = $3::bigint, cache_misses = $4::bigint,"
                      /* never back to 'starting': cluster_set_ready's write may precede ours */
                      " state = CASE WHEN $5 = 'starting' THEN state ELSE $5 END,"
                      " renewals = renewals + 1"
                      " WHERE id = $1 RETURNING flush_epoch, flushed_epoch",
                      5, p);
    if (rc) {
        db_res_free(res);
        return; /* the lease lapses by itself */
    }
    if (db_res_rows(res) == 0) {
        db_res_free(res);
        gr_warn("cluster: this node's row was removed: registering again");
        if (cluster__register(c) == GR_OK)
            atomic_store(&c->lease_deadline_ns, 0); /* flush at the next renewal */
        return;
    }
    char epoch[24];
    snprintf(epoch, sizeof(epoch), "%s", db_res_get(res, 0, 0));
    bool flagged = strtoll(epoch, NULL, 10) > strtoll(db_res_get(res, 0, 1), NULL, 10);
    db_res_free(res);
    if (lapsed || flagged) {
        /* we may have missed invalidations: writers stopped waiting for us */
        if (c->cache.drop(c->cache.arg) != GR_OK)
            return;
        atomic_fetch_add(&c->st_flushes, 1);
        const char *q[2] = {c->id, epoch};
        if (db_exec1(c->db, NULL,
                     "UPDATE cluster_nodes SET flushed_epoch = greatest(flushed_epoch,"
                     " $2::bigint) WHERE id = $1",
                     2, q) != GR_OK)
            return;
        if (lapsed)
            gr_info("cluster: cache lease renewed after a lapse; cache dropped");
    }
    atomic_store(&c->lease_deadline_ns, t0 + (int64_t)c->lease_ms * 1000000LL);
}

static void cluster__refresh_peers(struct cluster *c)
{
    char ids[CLUSTER_MAX_PEERS][CLUSTER_ID_MAX], eps[CLUSTER_MAX_PEERS][CLUSTER_ENDPOINT_MAX];
    char down[16];
    snprintf(down, sizeof(down), "%d", c->down_after_ms);
    const char *p[2] = {c->id, down};
    struct db_res *res = NULL;
    int rc = db_exec1(c->db, &res,
                      "SELECT id, bus_endpoint, renewals, state <> 'down' AND (lease_expiry >"
                      " now() OR heartbeat > now() - make_interval(secs => $2::double precision"
                      " / 1000)) FROM cluster_nodes WHERE id <> $1 ORDER BY id",
                      2, p);
    if (rc == GR_OK) {
        int n = 0;
        int64_t now = cluster__mono_ns();
        for (int i = 0; i < db_res_rows(res) && n < CLUSTER_MAX_PEERS; i++) {
            cluster__observe(c, db_res_get(res, i, 0), strtoll(db_res_get(res, i, 2), NULL, 10),
                             now);
            if (db_res_get(res, i, 3)[0] != 't')
                continue; /* the bus connects to live nodes only */
            snprintf(ids[n], CLUSTER_ID_MAX, "%s", db_res_get(res, i, 0));
            snprintf(eps[n], CLUSTER_ENDPOINT_MAX, "%s", db_res_get(res, i, 1));
            n++;
        }
        cluster__merge_peers(c, ids, eps, n, true);
    }
    db_res_free(res);
}

/*
 * Take the primary lease, in a transaction of its own: lock its row
 * FOR UPDATE without waiting (SKIP LOCKED: a fenced action of the holder,
 * or the holder's renewal, holds it now; the holder is alive, try again at
 * the next heartbeat), then take it when it expired, or, for the preferred
 * primary, when its holder is not an alive preferred node; insert it when
 * there is none. *res: holder and token when taken (else no row).
 */
static int cluster__take_primary(struct cluster *c, const char *const p[4], struct db_res **res)
{
    struct db_conn *conn;
    int rc = db_acquire(c->db, DB_ACQUIRE_TIMEOUT_MS, &conn);
    if (rc)
        return rc;
    struct db_res *lk = NULL;
    const char *q[3] = {p[0], p[2], p[3]}; /* id, preferred, down_after_ms */
    rc = db_begin(conn);
    if (rc == GR_OK)
        rc =
            db_exec(conn, &lk,
                    "SELECT l.expiry < now() OR ($2::boolean AND NOT EXISTS (SELECT 1 FROM"
                    " cluster_nodes n WHERE n.id = l.holder AND n.preferred_primary AND n.state <>"
                    " 'down' AND n.heartbeat > now() - make_interval(secs => $3::double precision /"
                    " 1000))) FROM cluster_leases l WHERE l.name = 'primary' AND l.holder <> $1"
                    " FOR UPDATE OF l SKIP LOCKED",
                    3, q);
    if (rc == GR_OK && db_res_rows(lk) == 1 && db_res_get(lk, 0, 0)[0] == 't')
        rc = db_exec(conn, res,
                     "UPDATE cluster_leases SET holder = $1, token = token + 1, expiry = now() +"
                     " make_interval(secs => $2::double precision / 1000) WHERE name = 'primary'"
                     " RETURNING holder, token",
                     2, p);
    else if (rc == GR_OK && db_res_rows(lk) == 0)
        /* no lease yet (or it is locked: then this does nothing, without waiting) */
        rc = db_exec(conn, res,
                     "INSERT INTO cluster_leases (name, holder, token, expiry) VALUES ('primary',"
                     " $1, 1, now() + make_interval(secs => $2::double precision / 1000))"
                     " ON CONFLICT (name) DO NOTHING RETURNING holder, token",
                     2, p);
    db_res_free(lk);
    rc = rc ? (db_rollback(conn), rc) : db_commit(conn);
    db_release(conn);
    return rc;
}

/*
 * Hold or take the primary lease. The holder's renewal moves the expiry
 * only: a lock (FOR NO KEY UPDATE) that the fenced actions' FOR KEY SHARE
 * (cluster_fence) does not conflict with, so a long fenced action never
 * holds up the renewal, nor with it this thread's cache lease. Taking the
 * lease over needs FOR UPDATE, which waits for (here: skips while) every
 * fenced action of the holder.
 */
static void cluster__primary(struct cluster *c)
{
    int64_t t0 = cluster__mono_ns(); /* before the renewal is sent */
    char lease[16], down[16];
    snprintf(lease, sizeof(lease), "%d", CLUSTER_PRIMARY_LEASE_MS);
    snprintf(down, sizeof(down), "%d", c->down_after_ms);
    const char *p[4] = {c->id, lease, c->preferred ? "true" : "false", down};
    struct db_res *res = NULL;
    int rc = db_exec1(c->db, &res,
                      "UPDATE cluster_leases SET expiry = now() + make_interval(secs =>"
                      " $2::double precision / 1000) WHERE name = 'primary' AND holder = $1"
                      " RETURNING holder, token",
                      2, p);
    if (rc == GR_OK && db_res_rows(res) == 0) {
        db_res_free(res);
        res = NULL;
        rc = cluster__take_primary(c, p, &res);
    }
    bool mine = rc == GR_OK && db_res_rows(res) == 1 && !strcmp(db_res_get(res, 0, 0), c->id);
    if (mine) {
        uint64_t token = strtoull(db_res_get(res, 0, 1), NULL, 10);
        if (!atomic_load(&c->primary) || atomic_load(&c->primary_token) != token)
            gr_info("cluster: this node is now the primary (token %llu)",
                    (unsigned long long)token);
        atomic_store(&c->primary_token, token);
        atomic_store(&c->primary_deadline_ns, t0 + (int64_t)CLUSTER_PRIMARY_LEASE_MS * 1000000LL);
    } else if (atomic_load(&c->primary) && rc == GR_OK) {
        gr_info("cluster: this node is no longer the primary");
    } else if (atomic_load(&c->primary)) {
        gr_warn("cluster: cannot renew the primary lease; acting as primary no longer");
    }
    atomic_store(&c->primary, mine);
    db_res_free(res);
}

/*
 * Cluster task: forget nodes down for longer than remove_down_after, in a
 * transaction fenced by the lease's token (cluster_fence); and keep a week of
 * the primary's task log.
 */
static void cluster__tasks(struct cluster *c)
{
    uint64_t token = cluster_primary_token(c);
    if (!token)
        return;
    char secs[16];
    snprintf(secs, sizeof(secs), "%d", c->remove_down_after_s);
    const char *p[2] = {c->id, secs};
    struct db_res *res = NULL;
    const char *stale = "n.id <> $1 AND n.heartbeat < now() - make_interval(secs => "
                        "$2::double precision)";
    struct gr_sbuf q = GR_SBUF_INIT;
    gr_sbuf_addf(&q, "SELECT count(*) FROM cluster_nodes n WHERE %s", stale);
    int rc = db_exec1(c->db, &res, q.buf, 2, p);
    bool any = rc == GR_OK && strtoll(db_res_get(res, 0, 0), NULL, 10) > 0;
    db_res_free(res);
    res = NULL;
    if (any) {
        struct db_conn *conn;
        if (db_acquire(c->db, DB_ACQUIRE_TIMEOUT_MS, &conn) == GR_OK) {
            rc = db_begin(conn);
            if (rc == GR_OK)
                rc = cluster_fence(c, conn, token, "remove-nodes", "");
            gr_sbuf_reset(&q);
            gr_sbuf_addf(&q, "DELETE FROM cluster_nodes n WHERE %s RETURNING n.id", stale);
            if (rc == GR_OK)
                rc = db_exec(conn, &res, q.buf, 2, p);
            rc = rc ? (db_rollback(conn), rc) : db_commit(conn);
            db_release(conn);
            if (rc == GR_OK) {
                atomic_fetch_add(&c->st_tasks, 1);
                for (int i = 0; i < db_res_rows(res); i++)
                    gr_info("cluster: removed node %s (down for more than %d s; token %llu)",
                            db_res_get(res, i, 0), c->remove_down_after_s,
                            (unsigned long long)token);
            }
            db_res_free(res);
        }
    }
    gr_sbuf_release(&q);
    /* about once a minute (a heartbeat is a second at most) */
    if (rand() % 60 == 0 &&
        db_exec1(c->db, NULL, "DELETE FROM primary_task_log WHERE at < now() - interval '7 days'",
                 0, NULL) != GR_OK)
        gr_debug("cluster: could not prune the primary's task log");
}

static void *cluster__thread(void *arg)
{
    struct cluster *c = arg;
    int period = c->heartbeat_ms < c->lease_ms / 3 ? c->heartbeat_ms : c->lease_ms / 3;
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        pthread_mutex_unlock(&c->lock);
        cluster__renew(c);
        cluster__refresh_peers(c);
        cluster__primary(c);
        cluster__tasks(c);
        pthread_mutex_lock(&c->lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)(period % 1000) * 1000000L;
        ts.tv_sec += period / 1000 + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        if (!c->stopping)
            pthread_cond_timedwait(&c->wake, &c->lock, &ts);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* ---- lifecycle ---- */

static void cluster__verifier(const unsigned char *key, size_t len, char hex[65])
{
    unsigned char mac[32];
    static const char digits[] = "0123456789abcdef";
    static const char label[] = "granary cluster join key v1";
    cr_hmac_sha256(key, len, label, sizeof(label) - 1, mac);
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[mac[i] >> 4];
        hex[2 * i + 1] = digits[mac[i] & 15];
    }
    hex[64] = '\0';
}

/*
 * settings.cluster_key_verifier holds the verifiers of the keys the cluster
 * accepts (one, or two separated by ',' during a rotation). The first node
 * records its own. A node may join when one of its keys is accepted; it
 * then records its keys as the accepted ones, so the set follows the
 * rotation (docs/security.md: accept both, sign with the new, drop the old).
 */
static int cluster__check_key(struct cluster *c)
{
    char mine[2][65], want[140];
    cluster__verifier(c->key, c->key_len, mine[0]);
    snprintf(want, sizeof(want), "%s", mine[0]);
    if (c->next_key_len) {
        cluster__verifier(c->next_key, c->next_key_len, mine[1]);
        snprintf(want, sizeof(want), "%s,%s", mine[0], mine[1]);
    }
    const char *p[1] = {want};
    struct db_res *res = NULL;
    int rc;
    /* Two first nodes at once: the INSERT of the one that loses waits for
     * the other's commit and does nothing, but its SELECT's snapshot is
     * older than that commit and sees no row either. The next statement
     * sees it. */
    for (int attempt = 0; attempt < 3; attempt++) {
        db_res_free(res);
        res = NULL;
        rc = db_exec1(c->db, &res,
                      "WITH ins AS (INSERT INTO settings (key, value) VALUES"
                      " ('cluster_key_verifier', $1) ON CONFLICT (key) DO NOTHING RETURNING value)"
                      " SELECT value FROM ins UNION ALL SELECT value FROM settings"
                      " WHERE key = 'cluster_key_verifier'",
                      1, p);
        if (rc) {
            db_res_free(res);
            return rc;
        }
        if (db_res_rows(res) >= 1)
            break;
    }
    bool ok = false, update = false;
    if (db_res_rows(res) >= 1) {
        const char *v = db_res_get(res, 0, 0);
        for (int k = 0; k < (c->next_key_len ? 2 : 1); k++)
            for (const char *s = v; *s;) {
                size_t n = strcspn(s, ",");
                if (n == 64 && cr_equal(s, mine[k], 64))
                    ok = true;
                s += n;
                if (*s)
                    s++;
            }
        update = ok && strcmp(v, want) != 0;
    }
    db_res_free(res);
    if (!ok)
        return GR_EAUTH;
    if (update) {
        rc = db_exec1(c->db, NULL,
                      "UPDATE settings SET value = $1 WHERE key = 'cluster_key_verifier'", 1, p);
        if (rc == GR_OK)
            gr_info("cluster: accepted join keys are now this node's (%s)",
                    c->next_key_len ? "key rotation: two keys" : "one key");
    }
    return rc;
}

int cluster_start(const struct cluster_options *o, struct cluster **out)
{
    struct cluster *c = calloc(1, sizeof(*c));
    if (!c)
        return GR_ENOMEM;
    c->db = o->db;
    c->cache = o->cache;
    snprintf(c->id, sizeof(c->id), "%s", o->node_id);
    snprintf(c->public_url, sizeof(c->public_url), "%s", o->public_url);
    snprintf(c->cluster_url, sizeof(c->cluster_url), "%s", o->cluster_url ? o->cluster_url : "");
    snprintf(c->bus_endpoint, sizeof(c->bus_endpoint), "tcp://%s", o->bus_listen);
    snprintf(c->zone, sizeof(c->zone), "%s", o->zone);
    snprintf(c->version, sizeof(c->version), "%s", o->version);
    if (o->key_len == 0 || o->key_len > sizeof(c->key)) {
        free(c);
        return GR_EINVAL;
    }
    memcpy(c->key, o->key, o->key_len);
    c->key_len = o->key_len;
    if (o->next_key && o->next_key_len > 0 && o->next_key_len <= sizeof(c->next_key)) {
        memcpy(c->next_key, o->next_key, o->next_key_len);
        c->next_key_len = o->next_key_len;
    }
    c->lease_ms = o->lease_ms;
    c->heartbeat_ms = o->heartbeat_ms;
    c->down_after_ms = o->down_after_ms;
    c->remove_down_after_s = o->remove_down_after_s;
    c->bus_timeout_ms = o->bus_timeout_ms;
    c->preferred = o->preferred_primary;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->wake, NULL);

    int rc = cluster__check_key(c);
    if (rc == GR_EAUTH) {
        gr_error("cluster: this node's join key is not the cluster's: refusing to join");
        goto out_free;
    }
    if (rc)
        goto out_free;
    struct bus_options bo = {
        .node_id = c->id,
        .listen_endpoint = c->bus_endpoint,
        .key = c->key,
        .key_len = c->key_len,
        .next_key = c->next_key_len ? c->next_key : NULL,
        .next_key_len = c->next_key_len,
    };
    struct bus_callbacks cb = {
        .hmac = cluster__hmac,
        .on_message = cluster__on_message,
        .on_gap = cluster__on_gap,
        .arg = c,
    };
    if (bus_open(&bo, &cb, &c->bus) != 0) {
        gr_error("cluster: cannot open the bus on %s", c->bus_endpoint);
        rc = GR_EIO;
        goto out_free;
    }
    rc = cluster__register(c);
    if (rc)
        goto out_bus;
    /* the first lease; the cache was validated (or dropped) by repo_cache_start */
    atomic_store(&c->lease_deadline_ns, INT64_MAX);
    cluster__renew(c);
    cluster__refresh_peers(c);
    cluster__primary(c);
    if (pthread_create(&c->thread, NULL, cluster__thread, c) != 0) {
        rc = GR_ENOMEM;
        goto out_bus;
    }
    gr_info("cluster: node %s joined (bus %s, zone %s, lease %d ms)", c->id, c->bus_endpoint,
            c->zone, c->lease_ms);
    *out = c;
    return GR_OK;
out_bus:
    bus_close(c->bus);
out_free:
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c);
    return rc;
}

void cluster_stop(struct cluster *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    const char *p[1] = {c->id};
    if (db_exec1(c->db, NULL,
                 "UPDATE cluster_nodes SET state = 'down', lease_expiry = now() WHERE id = $1", 1,
                 p) != GR_OK)
        gr_warn("cluster: could not mark this node down; peers wait out its lease");
    /* expired, not deleted: the next holder's token is one more, never 1 again */
    if (db_exec1(c->db, NULL,
                 "UPDATE cluster_leases SET expiry = now() - interval '1 ms' WHERE name ="
                 " 'primary' AND holder = $1",
                 1, p) != GR_OK)
        gr_warn("cluster: could not release the primary lease");
    bus_close(c->bus);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int cluster_set_draining(struct cluster *c, bool draining)
{
    atomic_store(&c->draining, draining);
    const char *p[2] = {c->id, cluster__state(c)};
    return db_exec1(c->db, NULL, "UPDATE cluster_nodes SET state = $2 WHERE id = $1", 2, p);
}

int cluster_set_ready(struct cluster *c)
{
    if (!c)
        return GR_OK;
    atomic_store(&c->ready, true);
    const char *p[2] = {c->id, cluster__state(c)};
    return db_exec1(c->db, NULL, "UPDATE cluster_nodes SET state = $2 WHERE id = $1", 2, p);
}

bool cluster_is_draining(struct cluster *c)
{
    return c && atomic_load(&c->draining);
}

/*
 * Primary only while the lease renewed by this node is younger than the
 * lease by its own clock: a node whose heartbeat is stuck (a database that
 * does not answer) stops believing it is the primary. Advisory: what the
 * primary does is fenced by the token in the database (cluster_fence()).
 */
bool cluster_is_primary(struct cluster *c)
{
    return c && atomic_load(&c->primary) &&
           cluster__mono_ns() < atomic_load(&c->primary_deadline_ns);
}

uint64_t cluster_primary_token(struct cluster *c)
{
    return cluster_is_primary(c) ? atomic_load(&c->primary_token) : 0;
}

const char *cluster_node_id(struct cluster *c)
{
    return c ? c->id : "";
}

int cluster_fence(struct cluster *c, struct db_conn *conn, uint64_t token, const char *task,
                  const char *subject)
{
    if (!c || token == 0)
        return GR_ECONFLICT;
    char tok[24];
    snprintf(tok, sizeof(tok), "%llu", (unsigned long long)token);
    const char *p[4] = {c->id, tok, task, subject ? subject : ""};
    struct db_res *res = NULL;
    int rc = db_exec(conn, &res,
                     "SELECT 1 FROM cluster_leases WHERE name = 'primary' AND holder = $1 AND"
                     " token = $2::bigint FOR KEY SHARE",
                     2, p);
    if (rc == GR_OK && db_res_rows(res) != 1)
        rc = GR_ECONFLICT;
    db_res_free(res);
    if (rc == GR_OK)
        rc = db_exec(conn, NULL,
                     "INSERT INTO primary_task_log (token, node, task, subject)"
                     " VALUES ($2::bigint, $1, $3, $4)",
                     4, p);
    return rc;
}

void cluster_get_stats(struct cluster *c, struct cluster_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (!c)
        return;
    st->invalidations_sent = atomic_load(&c->st_sent);
    st->acks_missing = atomic_load(&c->st_missing);
    st->lease_waits = atomic_load(&c->st_waits);
    st->flushes = atomic_load(&c->st_flushes);
    st->primary_tasks_run = atomic_load(&c->st_tasks);
    st->unconfirmed = atomic_load(&c->st_unconfirmed);
    uint64_t cum = 0;
    for (int b = 0; b <= CLUSTER_INVAL_BUCKETS; b++) {
        cum += atomic_load(&c->st_inval_bucket[b]);
        st->inval_bucket[b] = cum;
    }
    st->inval_count = cum;
    st->inval_sum_us = atomic_load(&c->st_inval_us);
    if (c->bus) {
        struct bus_stats bs;
        bus_stats(c->bus, &bs);
        st->bus_sent = bs.sent;
        st->bus_received = bs.received;
        st->bus_timeouts = bs.timeouts;
        st->bus_dropped = bs.dropped_malformed + bs.dropped_version + bs.dropped_forged +
                          bs.dropped_replayed + bs.dropped_skew + bs.dropped_overflow;
        st->bus_gaps = bs.gaps;
    }
}

int cluster_status(struct cluster *c, struct db_pool *db, struct gr_arena *a,
                   struct cluster_status *out)
{
    char down[16];
    snprintf(down, sizeof(down), "%d", c ? c->down_after_ms : 5000);
    const char *p[1] = {down};
    struct db_res *res = NULL;
    memset(out, 0, sizeof(*out));
    int rc = db_exec1(
        db, &res,
        "SELECT id, CASE WHEN state <> 'down' AND heartbeat < now() - make_interval(secs =>"
        " $1::double precision / 1000) THEN 'down' ELSE state END, zone, public_url,"
        " cluster_url, bus_endpoint, version, " MS("started") ", " MS("heartbeat") ", " MS(
            "lease_expiry") ", cache_hits, cache_misses, preferred_primary,"
                            " (SELECT holder FROM cluster_leases WHERE name = 'primary' AND"
                            " expiry > now()),"
                            " (SELECT token FROM cluster_leases WHERE name = 'primary'),"
                            " (extract(epoch from now() - heartbeat) * 1000)::bigint,"
                            " disk_state FROM cluster_nodes ORDER BY id",
        1, p);
    if (rc)
        return rc;
    db_res_arena(res, a);
    out->n = db_res_rows(res);
    out->nodes = gr_arena_calloc(a, sizeof(*out->nodes) * (size_t)(out->n + 1));
    out->primary = "";
    out->down_after_ms = c ? c->down_after_ms : 5000;
    for (int i = 0; i < out->n; i++) {
        struct cluster_node_info *n = &out->nodes[i];
        n->id = db_res_get(res, i, 0);
        n->state = db_res_get(res, i, 1);
        n->zone = db_res_get(res, i, 2);
        n->url = db_res_get(res, i, 3);
        n->cluster_url = db_res_get(res, i, 4);
        n->bus = db_res_get(res, i, 5);
        n->version = db_res_get(res, i, 6);
        n->started_ms = strtoll(db_res_get(res, i, 7), NULL, 10);
        n->heartbeat_ms = strtoll(db_res_get(res, i, 8), NULL, 10);
        n->lease_expiry_ms = strtoll(db_res_get(res, i, 9), NULL, 10);
        n->cache_hits = strtoull(db_res_get(res, i, 10), NULL, 10);
        n->cache_misses = strtoull(db_res_get(res, i, 11), NULL, 10);
        n->preferred_primary = db_res_get(res, i, 12)[0] == 't';
        out->primary = db_res_get(res, i, 13);
        out->primary_token = strtoull(db_res_get(res, i, 14), NULL, 10);
        n->heartbeat_age_ms = strtoll(db_res_get(res, i, 15), NULL, 10);
        n->disk = db_res_get(res, i, 16);
    }
    return GR_OK;
}

int cluster_remove_node(struct cluster *c, struct db_pool *db, const char *id)
{
    char down[16];
    snprintf(down, sizeof(down), "%d", c ? c->down_after_ms : 5000);
    const char *p[2] = {id, down};
    struct db_res *res = NULL;
    int rc = db_exec1(db, &res,
                      "WITH d AS (DELETE FROM cluster_nodes WHERE id = $1 AND (state = 'down' OR"
                      " heartbeat < now() - make_interval(secs => $2::double precision / 1000))"
                      " RETURNING 1) SELECT (SELECT count(*) FROM d),"
                      " (SELECT count(*) FROM cluster_nodes WHERE id = $1)",
                      2, p);
    if (rc == GR_OK) {
        if (db_res_get(res, 0, 0)[0] != '0')
            rc = GR_OK;
        else if (db_res_get(res, 0, 1)[0] != '0')
            rc = GR_ECONFLICT;
        else
            rc = GR_ENOTFOUND;
    }
    db_res_free(res);
    return rc;
}

void cluster_metrics(struct cluster *c, struct gr_sbuf *sb)
{
    struct cluster_stats cs;
    if (!c)
        return;
    cluster_get_stats(c, &cs);
    gr_sbuf_addf(sb,
                 "# TYPE granary_cluster_invalidations_total counter\n"
                 "granary_cluster_invalidations_total %llu\n"
                 "# TYPE granary_cluster_acks_missing_total counter\n"
                 "granary_cluster_acks_missing_total %llu\n"
                 "# TYPE granary_cluster_lease_waits_total counter\n"
                 "granary_cluster_lease_waits_total %llu\n"
                 "# TYPE granary_cluster_cache_flushes_total counter\n"
                 "granary_cluster_cache_flushes_total %llu\n"
                 "# TYPE granary_cluster_primary_tasks_total counter\n"
                 "granary_cluster_primary_tasks_total %llu\n"
                 "# TYPE granary_cluster_invalidations_unconfirmed_total counter\n"
                 "granary_cluster_invalidations_unconfirmed_total %llu\n"
                 "# TYPE granary_cluster_primary gauge\ngranary_cluster_primary %d\n",
                 (unsigned long long)cs.invalidations_sent, (unsigned long long)cs.acks_missing,
                 (unsigned long long)cs.lease_waits, (unsigned long long)cs.flushes,
                 (unsigned long long)cs.primary_tasks_run, (unsigned long long)cs.unconfirmed,
                 cluster_is_primary(c) ? 1 : 0);
    gr_sbuf_adds(sb, "# HELP granary_cluster_invalidation_seconds Acknowledged invalidation: "
                     "sending the keys until every peer acked or its lease ran out.\n"
                     "# TYPE granary_cluster_invalidation_seconds histogram\n");
    for (int b = 0; b < CLUSTER_INVAL_BUCKETS; b++)
        gr_sbuf_addf(sb, "granary_cluster_invalidation_seconds_bucket{le=\"%g\"} %llu\n",
                     cluster_inval_bounds[b], (unsigned long long)cs.inval_bucket[b]);
    gr_sbuf_addf(sb,
                 "granary_cluster_invalidation_seconds_bucket{le=\"+Inf\"} %llu\n"
                 "granary_cluster_invalidation_seconds_sum %.6f\n"
                 "granary_cluster_invalidation_seconds_count %llu\n",
                 (unsigned long long)cs.inval_count, (double)cs.inval_sum_us / 1e6,
                 (unsigned long long)cs.inval_count);
    gr_sbuf_addf(sb,
                 "# TYPE granary_bus_messages_sent_total counter\n"
                 "granary_bus_messages_sent_total %llu\n"
                 "# TYPE granary_bus_messages_received_total counter\n"
                 "granary_bus_messages_received_total %llu\n"
                 "# TYPE granary_bus_request_timeouts_total counter\n"
                 "granary_bus_request_timeouts_total %llu\n"
                 "# TYPE granary_bus_messages_dropped_total counter\n"
                 "granary_bus_messages_dropped_total %llu\n"
                 "# TYPE granary_bus_gaps_total counter\ngranary_bus_gaps_total %llu\n",
                 (unsigned long long)cs.bus_sent, (unsigned long long)cs.bus_received,
                 (unsigned long long)cs.bus_timeouts, (unsigned long long)cs.bus_dropped,
                 (unsigned long long)cs.bus_gaps);
}
