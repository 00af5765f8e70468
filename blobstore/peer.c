/*
 * peer.c - libcurl transport between nodes: parallel pushes, calls, pulled
 * streams. Calls and streams run on pooled sessions (a multi handle, which
 * keeps the connection cache, and its easy handle), so that a node talks to
 * a peer over a few kept-alive connections instead of one per request.
 */
#include "peer.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PEER_STREAM_BUF (256 * 1024)
#define PEER_RECV_BUF (128L * 1024) /* libcurl's receive buffer for streams */
#define PEER_CONNECT_MS 2000L
#define PEER_POOL_MAX 32 /* idle sessions kept; more are freed */
/* an idle connection older than this is not reused: below the cluster
 * port's idle timeout (connection_timeout, 60 s by default), so a request
 * rarely meets a connection the peer is closing (libcurl retries once on a
 * fresh connection when it does) */
#define PEER_MAXAGE_S 20L

/*
 * A pooled session: one transfer at a time. The connection cache lives in
 * the multi handle, so a session that goes back to the pool keeps its
 * connection to the peer it last talked to (its origin).
 */
struct peer__session {
    CURLM *m;
    CURL *e;
    char *buf; /* streams' buffer (PEER_STREAM_BUF), made on first use */
    char origin[192];
    struct peer__session *next;
};

static pthread_mutex_t peer__lock = PTHREAD_MUTEX_INITIALIZER;
static struct peer__session *peer__idle; /* guarded by peer__lock */
static int peer__n_idle;                 /* guarded by peer__lock */
static atomic_uint_fast64_t peer__created, peer__reused, peer__connects;

int bs_peer_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static void peer__session_free(struct peer__session *ps)
{
    if (!ps)
        return;
    if (ps->e)
        curl_easy_cleanup(ps->e);
    if (ps->m)
        curl_multi_cleanup(ps->m);
    free(ps->buf);
    free(ps);
}

void bs_peer_global_cleanup(void)
{
    pthread_mutex_lock(&peer__lock);
    struct peer__session *list = peer__idle;
    peer__idle = NULL;
    peer__n_idle = 0;
    pthread_mutex_unlock(&peer__lock);
    while (list) {
        struct peer__session *next = list->next;
        peer__session_free(list);
        list = next;
    }
    curl_global_cleanup();
}

void bs_peer_stats(struct bs_peer_stats *out)
{
    out->sessions_created = atomic_load(&peer__created);
    out->sessions_reused = atomic_load(&peer__reused);
    out->connections = atomic_load(&peer__connects);
    pthread_mutex_lock(&peer__lock);
    out->idle = peer__n_idle;
    pthread_mutex_unlock(&peer__lock);
}

/* "scheme://host:port" of url (what a kept connection can be reused for). */
static void peer__origin(const char *url, char *out, size_t n)
{
    const char *p = strstr(url, "://");
    p = p ? strchr(p + 3, '/') : NULL;
    size_t len = p ? (size_t)(p - url) : strlen(url);
    snprintf(out, n, "%.*s", (int)len, url);
}

/* An idle session that last talked to url's origin, or a new one; NULL: out of memory. */
static struct peer__session *peer__session_get(const char *url)
{
    char origin[sizeof(((struct peer__session *)0)->origin)];
    peer__origin(url, origin, sizeof(origin));
    pthread_mutex_lock(&peer__lock);
    struct peer__session **pp = &peer__idle;
    while (*pp && strcmp((*pp)->origin, origin))
        pp = &(*pp)->next;
    struct peer__session *ps = *pp;
    if (ps) {
        *pp = ps->next;
        peer__n_idle--;
    }
    pthread_mutex_unlock(&peer__lock);
    if (ps) {
        atomic_fetch_add(&peer__reused, 1);
        ps->next = NULL;
        return ps;
    }
    ps = calloc(1, sizeof(*ps));
    if (!ps || !(ps->m = curl_multi_init()) || !(ps->e = curl_easy_init())) {
        peer__session_free(ps);
        return NULL;
    }
    snprintf(ps->origin, sizeof(ps->origin), "%s", origin);
    atomic_fetch_add(&peer__created, 1);
    return ps;
}

/* Back to the pool (the easy handle is no longer in the multi), or freed when the pool is full. */
static void peer__session_put(struct peer__session *ps)
{
    if (!ps)
        return;
    pthread_mutex_lock(&peer__lock);
    bool keep = peer__n_idle < PEER_POOL_MAX;
    if (keep) {
        ps->next = peer__idle;
        peer__idle = ps;
        peer__n_idle++;
    }
    pthread_mutex_unlock(&peer__lock);
    if (!keep)
        peer__session_free(ps);
}

/* ---- shared request plumbing ---- */

struct peer__xfer {
    struct bs_peer_req *req;
    CURL *e;
    bool own_e; /* e is this transfer's (a push), not a pooled session's */
    struct curl_slist *hdr;
    size_t body_len;
    int fd;             /* push: the file */
    uint64_t off, size; /* push: position and total */
    bool finished;      /* peer__finish ran: status or error is set */
};

static size_t peer__collect(char *data, size_t sz, size_t nm, void *arg)
{
    struct peer__xfer *x = arg;
    size_t n = sz * nm, room = sizeof(x->req->body) - 1 - x->body_len;
    size_t take = n < room ? n : room;
    memcpy(x->req->body + x->body_len, data, take);
    x->body_len += take;
    x->req->body[x->body_len] = '\0';
    x->req->body_len = x->body_len;
    if (take < n)
        x->req->truncated = true;
    return n;
}

static size_t peer__read_file(char *buf, size_t sz, size_t nm, void *arg)
{
    struct peer__xfer *x = arg;
    size_t want = sz * nm;
    if (x->off >= x->size)
        return 0;
    if (want > x->size - x->off)
        want = (size_t)(x->size - x->off);
    ssize_t got;
    do
        got = pread(x->fd, buf, want, (off_t)x->off);
    while (got < 0 && errno == EINTR);
    if (got <= 0)
        return CURL_READFUNC_ABORT;
    x->off += (uint64_t)got;
    return (size_t)got;
}

/* Set x up for req on e (a pooled session's handle, reset here), or on a new handle (e NULL). */
static int peer__setup(struct peer__xfer *x, struct bs_peer_req *req, const char *method,
                       int timeout_s, CURL *e)
{
    memset(x, 0, sizeof(*x));
    x->fd = -1;
    x->req = req;
    req->status = 0;
    req->body[0] = req->error[0] = req->header[0] = '\0';
    req->body_len = 0;
    req->truncated = false;
    if (e) {
        curl_easy_reset(e);
        x->e = e;
    } else {
        x->e = curl_easy_init();
        x->own_e = true;
    }
    if (!x->e) {
        snprintf(req->error, sizeof(req->error), "out of memory");
        return -1;
    }
    if (req->auth)
        x->hdr = curl_slist_append(x->hdr, req->auth);
    if (req->auth2)
        x->hdr = curl_slist_append(x->hdr, req->auth2);
    if (req->extra)
        x->hdr = curl_slist_append(x->hdr, req->extra);
    x->hdr = curl_slist_append(x->hdr, "Expect:");
    curl_easy_setopt(x->e, CURLOPT_URL, req->url);
    curl_easy_setopt(x->e, CURLOPT_HTTPHEADER, x->hdr);
    curl_easy_setopt(x->e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->e, CURLOPT_CONNECTTIMEOUT_MS, PEER_CONNECT_MS);
    if (timeout_s > 0)
        curl_easy_setopt(x->e, CURLOPT_TIMEOUT, (long)timeout_s);
    curl_easy_setopt(x->e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(x->e, CURLOPT_MAXAGE_CONN, PEER_MAXAGE_S);
    curl_easy_setopt(x->e, CURLOPT_WRITEFUNCTION, peer__collect);
    curl_easy_setopt(x->e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->e, CURLOPT_PRIVATE, x);
    if (!strcmp(method, "POST")) {
        curl_easy_setopt(x->e, CURLOPT_POST, 1L);
        curl_easy_setopt(x->e, CURLOPT_POSTFIELDSIZE, 0L);
        curl_easy_setopt(x->e, CURLOPT_POSTFIELDS, "");
    } else if (strcmp(method, "GET")) {
        curl_easy_setopt(x->e, CURLOPT_CUSTOMREQUEST, method);
    }
    return 0;
}

/* The value of the answer header req->keep_header into req->header (the last of that name). */
static void peer__keep_header(struct peer__xfer *x)
{
    struct curl_header *h = NULL;
    x->req->header[0] = '\0';
    if (x->req->keep_header &&
        curl_easy_header(x->e, x->req->keep_header, 0, CURLH_HEADER, -1, &h) == CURLHE_OK && h &&
        h->value && strlen(h->value) < sizeof(x->req->header))
        snprintf(x->req->header, sizeof(x->req->header), "%s", h->value);
}

static void peer__finish(struct peer__xfer *x, CURLcode res)
{
    x->finished = true;
    long conns = 0;
    if (curl_easy_getinfo(x->e, CURLINFO_NUM_CONNECTS, &conns) == CURLE_OK && conns > 0)
        atomic_fetch_add(&peer__connects, (uint64_t)conns);
    if (res == CURLE_OK) {
        long code = 0;
        curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &code);
        x->req->status = (int)code;
        peer__keep_header(x);
    } else {
        snprintf(x->req->error, sizeof(x->req->error), "%s", curl_easy_strerror(res));
    }
}

static void peer__release(struct peer__xfer *x)
{
    if (x->e && x->own_e)
        curl_easy_cleanup(x->e);
    curl_slist_free_all(x->hdr);
    if (x->fd >= 0)
        close(x->fd);
    x->e = NULL;
    x->hdr = NULL;
    x->fd = -1;
}

/*
 * Run every transfer added to m until none runs, finishing each (its
 * peer__xfer is the handle's CURLOPT_PRIVATE). A transfer that ends without
 * a result (the multi handle failed) gets an error text.
 */
static void peer__run(CURLM *m, struct peer__xfer *xs, int n)
{
    int running = 1;
    while (running) {
        if (curl_multi_perform(m, &running) != CURLM_OK)
            break;
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)))
            if (msg->msg == CURLMSG_DONE) {
                struct peer__xfer *x = NULL;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
                peer__finish(x, msg->data.result);
            }
        if (running)
            curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    for (int i = 0; i < n; i++)
        if (xs[i].e && !xs[i].finished && !xs[i].req->error[0])
            snprintf(xs[i].req->error, sizeof(xs[i].req->error), "transfer ended without a result");
}

void bs_peer_call(const char *method, struct bs_peer_req *req, int timeout_s)
{
    struct peer__session *ps = peer__session_get(req->url);
    struct peer__xfer x;
    if (!ps) {
        req->status = 0;
        snprintf(req->error, sizeof(req->error), "out of memory");
        return;
    }
    if (peer__setup(&x, req, method, timeout_s, ps->e) == 0) {
        if (curl_multi_add_handle(ps->m, x.e) != CURLM_OK) {
            snprintf(req->error, sizeof(req->error), "cannot start the transfer");
            peer__release(&x);
            peer__session_free(ps);
            return;
        }
        peer__run(ps->m, &x, 1);
        curl_multi_remove_handle(ps->m, x.e);
    }
    peer__release(&x);
    peer__session_put(ps);
}

void bs_peer_push(const char *path, uint64_t size, struct bs_peer_req *reqs, int n, int stall_s)
{
    if (n <= 0)
        return;
    struct peer__xfer *xs = calloc((size_t)n, sizeof(*xs));
    CURLM *m = curl_multi_init();
    if (!xs || !m) {
        for (int i = 0; i < n; i++)
            snprintf(reqs[i].error, sizeof(reqs[i].error), "out of memory"), reqs[i].status = 0;
        free(xs);
        if (m)
            curl_multi_cleanup(m);
        return;
    }
    for (int i = 0; i < n; i++) {
        struct peer__xfer *x = &xs[i];
        if (peer__setup(x, &reqs[i], "PUT", 0, NULL))
            continue;
        x->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (x->fd < 0) {
            snprintf(reqs[i].error, sizeof(reqs[i].error), "cannot open the upload: %s",
                     strerror(errno));
            peer__release(x);
            continue;
        }
        x->size = size;
        x->hdr = curl_slist_append(x->hdr, "Content-Type: application/octet-stream");
        curl_easy_setopt(x->e, CURLOPT_HTTPHEADER, x->hdr);
        curl_easy_setopt(x->e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(x->e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
        curl_easy_setopt(x->e, CURLOPT_READFUNCTION, peer__read_file);
        curl_easy_setopt(x->e, CURLOPT_READDATA, x);
        curl_easy_setopt(x->e, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
        /* no total limit (a big binary takes its time); a stalled peer is
         * given up after stall_s without progress */
        curl_easy_setopt(x->e, CURLOPT_TIMEOUT, 0L);
        curl_easy_setopt(x->e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(x->e, CURLOPT_LOW_SPEED_TIME, (long)stall_s);
        curl_multi_add_handle(m, x->e);
    }
    peer__run(m, xs, n);
    for (int i = 0; i < n; i++) {
        if (xs[i].e)
            curl_multi_remove_handle(m, xs[i].e);
        peer__release(&xs[i]);
    }
    curl_multi_cleanup(m);
    free(xs);
}

/* ---- tees: one body, as it arrives, to several peers ---- */

#define PEER_TEE_RING (2u * 1024 * 1024)

struct peer__tee_x {
    struct peer__xfer x;
    struct bs_peer_tee *t;
    uint64_t off;     /* bytes of the body this peer has taken */
    int64_t moved_ms; /* when it last took a byte (or bytes came for it) */
    bool live;        /* still in the multi handle */
    bool paused;      /* its read callback paused: nothing was there to take */
};

struct bs_peer_tee {
    CURLM *m;
    struct peer__tee_x *xs;
    int n, live, stall_s;
    unsigned char *ring;
    uint64_t head; /* bytes of the body written in */
    bool eof;
};

static int64_t peer__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t peer__tee_read(char *buf, size_t sz, size_t nm, void *arg)
{
    struct peer__tee_x *tx = arg;
    struct bs_peer_tee *t = tx->t;
    size_t want = sz * nm;
    uint64_t avail = t->head - tx->off;
    if (avail == 0) {
        if (t->eof)
            return 0;
        tx->paused = true;
        return CURL_READFUNC_PAUSE;
    }
    if (want > avail)
        want = (size_t)avail;
    size_t at = (size_t)(tx->off % PEER_TEE_RING), first = PEER_TEE_RING - at;
    if (first > want)
        first = want;
    memcpy(buf, t->ring + at, first);
    memcpy(buf + first, t->ring, want - first);
    tx->off += want;
    tx->moved_ms = peer__now_ms();
    return want;
}

static void peer__tee_drop(struct bs_peer_tee *t, struct peer__tee_x *tx)
{
    if (!tx->live)
        return;
    curl_multi_remove_handle(t->m, tx->x.e);
    tx->live = false;
    t->live--;
}

/* Wake every paused peer that has bytes to take (or the end to see). */
static void peer__tee_unpause(struct bs_peer_tee *t)
{
    int64_t now = peer__now_ms();
    for (int i = 0; i < t->n; i++) {
        struct peer__tee_x *tx = &t->xs[i];
        if (tx->live && tx->paused && (tx->off < t->head || t->eof)) {
            tx->paused = false;
            tx->moved_ms = now; /* it waited for us, not we for it */
            curl_easy_pause(tx->x.e, CURLPAUSE_CONT);
        }
    }
}

/* One round of transfer (waiting up to wait_ms for a socket); reaps ended transfers and stalls. */
static void peer__tee_pump(struct bs_peer_tee *t, int wait_ms)
{
    int running = 0;
    if (wait_ms > 0)
        curl_multi_poll(t->m, NULL, 0, wait_ms, NULL);
    if (curl_multi_perform(t->m, &running) != CURLM_OK) {
        for (int i = 0; i < t->n; i++)
            if (t->xs[i].live) {
                snprintf(t->xs[i].x.req->error, sizeof(t->xs[i].x.req->error), "transfer failed");
                peer__tee_drop(t, &t->xs[i]);
            }
        return;
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(t->m, &left)))
        if (msg->msg == CURLMSG_DONE) {
            struct peer__xfer *x = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            struct peer__tee_x *tx = (struct peer__tee_x *)x; /* x is its first member */
            peer__finish(x, msg->data.result);
            peer__tee_drop(t, tx);
        }
    int64_t now = peer__now_ms();
    for (int i = 0; i < t->n; i++) {
        struct peer__tee_x *tx = &t->xs[i];
        bool waiting = tx->off < t->head || t->eof; /* on the peer, not on us */
        if (tx->live && waiting && now - tx->moved_ms > (int64_t)t->stall_s * 1000) {
            snprintf(tx->x.req->error, sizeof(tx->x.req->error), "stalled for %d s", t->stall_s);
            peer__tee_drop(t, tx);
        }
    }
}

int bs_peer_tee_open(struct bs_peer_req *reqs, int n, int stall_s, struct bs_peer_tee **out)
{
    *out = NULL;
    struct bs_peer_tee *t = calloc(1, sizeof(*t));
    if (!t || !(t->xs = calloc((size_t)(n > 0 ? n : 1), sizeof(*t->xs))) ||
        !(t->ring = malloc(PEER_TEE_RING)) || !(t->m = curl_multi_init())) {
        bs_peer_tee_free(t);
        return -1;
    }
    t->n = n;
    t->stall_s = stall_s > 0 ? stall_s : 1;
    int64_t now = peer__now_ms();
    for (int i = 0; i < n; i++) {
        struct peer__tee_x *tx = &t->xs[i];
        if (peer__setup(&tx->x, &reqs[i], "PUT", 0, NULL))
            continue;
        tx->t = t;
        tx->moved_ms = now;
        tx->x.hdr = curl_slist_append(tx->x.hdr, "Content-Type: application/octet-stream");
        curl_easy_setopt(tx->x.e, CURLOPT_HTTPHEADER, tx->x.hdr);
        curl_easy_setopt(tx->x.e, CURLOPT_UPLOAD, 1L); /* no size: chunked */
        curl_easy_setopt(tx->x.e, CURLOPT_READFUNCTION, peer__tee_read);
        curl_easy_setopt(tx->x.e, CURLOPT_READDATA, tx);
        curl_easy_setopt(tx->x.e, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
        curl_easy_setopt(tx->x.e, CURLOPT_TIMEOUT, 0L); /* stalls are judged in peer__tee_pump */
        if (curl_multi_add_handle(t->m, tx->x.e) != CURLM_OK) {
            snprintf(reqs[i].error, sizeof(reqs[i].error), "cannot start the transfer");
            continue;
        }
        tx->live = true;
        t->live++;
    }
    peer__tee_pump(t, 0); /* connect while the first bytes arrive */
    *out = t;
    return 0;
}

int bs_peer_tee_write(struct bs_peer_tee *t, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len > 0 && t->live > 0) {
        uint64_t low = t->head;
        for (int i = 0; i < t->n; i++)
            if (t->xs[i].live && t->xs[i].off < low)
                low = t->xs[i].off;
        size_t room = PEER_TEE_RING - (size_t)(t->head - low);
        if (room == 0) { /* the slowest peer is a ring behind: wait for it */
            peer__tee_pump(t, 100);
            continue;
        }
        size_t at = (size_t)(t->head % PEER_TEE_RING), n = PEER_TEE_RING - at;
        if (n > room)
            n = room;
        if (n > len)
            n = len;
        memcpy(t->ring + at, p, n);
        t->head += n;
        p += n;
        len -= n;
        peer__tee_unpause(t);
    }
    if (t->live > 0)
        peer__tee_pump(t, 0);
    return t->live;
}

void bs_peer_tee_end(struct bs_peer_tee *t)
{
    t->eof = true;
    peer__tee_unpause(t);
    if (t->live > 0)
        peer__tee_pump(t, 0);
}

void bs_peer_tee_finish(struct bs_peer_tee *t)
{
    if (!t->eof)
        bs_peer_tee_end(t);
    while (t->live > 0) {
        peer__tee_unpause(t);
        peer__tee_pump(t, 100);
    }
}

void bs_peer_tee_free(struct bs_peer_tee *t)
{
    if (!t)
        return;
    for (int i = 0; t->xs && i < t->n; i++) {
        struct peer__tee_x *tx = &t->xs[i];
        if (tx->live && !tx->x.finished)
            snprintf(tx->x.req->error, sizeof(tx->x.req->error), "aborted");
        peer__tee_drop(t, tx);
        if (tx->x.e)
            peer__release(&tx->x);
    }
    if (t->m)
        curl_multi_cleanup(t->m);
    free(t->xs);
    free(t->ring);
    free(t);
}

/* ---- pulled streams ---- */

struct bs_peer_stream {
    struct peer__xfer x;
    /* what x.req points to once the stream is open: the caller's request
     * may go out of scope, and a transfer that ends later writes its
     * status here */
    struct bs_peer_req own;
    struct peer__session *ps;
    CURLM *m;        /* ps->m */
    char *buf;       /* ps->buf: what arrived beyond the reader's buffer */
    size_t off, len; /* unread bytes are buf[off, len) */
    char *dst;       /* while a read waits: the reader's buffer, filled first */
    size_t dst_max, dst_len;
    bool paused, headers, done, failed, added;
    uint64_t got, expect;
};

/*
 * Body bytes from libcurl: straight into the waiting reader's buffer, the
 * rest into buf; a pause when buf is full (libcurl then offers the same
 * bytes again, so nothing of them may be taken).
 */
static size_t peer__stream_write(char *data, size_t sz, size_t nm, void *arg)
{
    struct bs_peer_stream *s = arg;
    size_t n = sz * nm;
    long code = 0;
    curl_easy_getinfo(s->x.e, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200 && code != 206) /* an error answer: keep its first bytes */
        return peer__collect(data, sz, nm, &s->x);
    size_t room = s->dst ? s->dst_max - s->dst_len : 0;
    size_t take = n < room ? n : room, rest = n - take;
    if (rest > 0) {
        if (s->off == s->len)
            s->off = s->len = 0;
        if (PEER_STREAM_BUF - s->len < rest && s->off > 0) {
            memmove(s->buf, s->buf + s->off, s->len - s->off);
            s->len -= s->off;
            s->off = 0;
        }
        if (PEER_STREAM_BUF - s->len < rest) {
            s->paused = true;
            return CURL_WRITEFUNC_PAUSE;
        }
    }
    if (take) {
        memcpy(s->dst + s->dst_len, data, take);
        s->dst_len += take;
    }
    if (rest) {
        memcpy(s->buf + s->len, data + take, rest);
        s->len += rest;
    }
    s->got += n;
    return n;
}

static size_t peer__stream_header(char *data, size_t sz, size_t nm, void *arg)
{
    struct bs_peer_stream *s = arg;
    size_t n = sz * nm;
    if (n <= 2 && (data[0] == '\r' || data[0] == '\n')) {
        long code = 0;
        curl_easy_getinfo(s->x.e, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 200) /* not a 100 Continue */
            s->headers = true;
    }
    return n;
}

/* One round of transfer: returns false when nothing more can happen. */
static bool peer__stream_pump(struct bs_peer_stream *s, int wait_ms)
{
    if (s->done)
        return false;
    int running = 0;
    if (curl_multi_perform(s->m, &running) != CURLM_OK) {
        s->done = s->failed = true;
        return false;
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(s->m, &left)))
        if (msg->msg == CURLMSG_DONE) {
            s->done = true;
            s->headers = true;
            peer__finish(&s->x, msg->data.result);
            if (msg->data.result != CURLE_OK)
                s->failed = true;
        }
    if (!s->done && running && wait_ms > 0 && s->off == s->len && s->dst_len == 0 && !s->paused)
        curl_multi_poll(s->m, NULL, 0, wait_ms, NULL); /* nothing came: wait for the socket */
    return !s->done;
}

int bs_peer_stream_open(struct bs_peer_req *req, const char *range, int timeout_s,
                        struct bs_peer_stream **out, uint64_t *length)
{
    *out = NULL;
    *length = UINT64_MAX;
    struct bs_peer_stream *s = calloc(1, sizeof(*s));
    struct peer__session *ps = s ? peer__session_get(req->url) : NULL;
    if (ps && !ps->buf)
        ps->buf = malloc(PEER_STREAM_BUF);
    if (!ps || !ps->buf) {
        snprintf(req->error, sizeof(req->error), "out of memory");
        req->status = 0;
        peer__session_put(ps);
        free(s);
        return -1;
    }
    s->ps = ps;
    s->m = ps->m;
    s->buf = ps->buf;
    if (peer__setup(&s->x, req, "GET", 0, ps->e)) {
        bs_peer_stream_close(s);
        return -1;
    }
    curl_easy_setopt(s->x.e, CURLOPT_WRITEFUNCTION, peer__stream_write);
    curl_easy_setopt(s->x.e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(s->x.e, CURLOPT_HEADERFUNCTION, peer__stream_header);
    curl_easy_setopt(s->x.e, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(s->x.e, CURLOPT_BUFFERSIZE, PEER_RECV_BUF);
    /* no total timeout (a slow client pauses the transfer); a stalled peer
     * is given up after timeout_s without a byte */
    curl_easy_setopt(s->x.e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(s->x.e, CURLOPT_LOW_SPEED_TIME, (long)(timeout_s > 0 ? timeout_s : 60));
    if (range)
        curl_easy_setopt(s->x.e, CURLOPT_RANGE, range + (strncmp(range, "bytes=", 6) ? 0 : 6));
    if (curl_multi_add_handle(s->m, s->x.e) != CURLM_OK) {
        snprintf(req->error, sizeof(req->error), "cannot start the transfer");
        bs_peer_stream_close(s);
        return -1;
    }
    s->added = true;
    while (!s->headers && peer__stream_pump(s, 200))
        ;
    long code = 0;
    curl_easy_getinfo(s->x.e, CURLINFO_RESPONSE_CODE, &code);
    req->status = (int)code;
    if (s->failed || (code != 200 && code != 206)) {
        if (!s->done) { /* an error answer: let its body arrive for the message */
            for (int i = 0; i < 20 && peer__stream_pump(s, 100); i++)
                ;
            req->status = (int)code;
        }
        bs_peer_stream_close(s);
        return -1;
    }
    peer__keep_header(&s->x);
    s->own = *req; /* from now on the transfer reports into the stream */
    s->x.req = &s->own;
    curl_off_t cl = -1;
    curl_easy_getinfo(s->x.e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    if (cl >= 0)
        *length = s->expect = (uint64_t)cl;
    else
        s->expect = UINT64_MAX;
    *out = s;
    return 0;
}

char *bs_peer_stream_header(struct bs_peer_stream *s, const char *name)
{
    struct curl_header *h = NULL;
    if (curl_easy_header(s->x.e, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h || !h->value)
        return NULL;
    return strdup(h->value);
}

/* Up to max buffered bytes into buf. */
static size_t peer__stream_take(struct bs_peer_stream *s, void *buf, size_t max)
{
    size_t n = s->len - s->off;
    if (n > max)
        n = max;
    memcpy(buf, s->buf + s->off, n);
    s->off += n;
    return n;
}

ssize_t bs_peer_stream_read(struct bs_peer_stream *s, void *buf, size_t max)
{
    if (s->off < s->len)
        return (ssize_t)peer__stream_take(s, buf, max);
    if (max == 0)
        return 0;
    /* nothing buffered: libcurl writes into buf directly (one copy less) */
    s->dst = buf;
    s->dst_max = max;
    s->dst_len = 0;
    while (s->dst_len == 0 && s->off == s->len) {
        if (s->done)
            break;
        if (s->paused) {
            s->paused = false;
            curl_easy_pause(s->x.e, CURLPAUSE_CONT); /* may deliver at once */
            continue;
        }
        /* a short wait: libcurl may hold data of a transfer it just
         * unpaused without the socket becoming readable again */
        peer__stream_pump(s, 10);
    }
    s->dst = NULL;
    if (s->dst_len > 0)
        return (ssize_t)s->dst_len;
    if (s->off < s->len)
        return (ssize_t)peer__stream_take(s, buf, max);
    if (s->failed || (s->expect != UINT64_MAX && s->got != s->expect))
        return -1;
    return 0;
}

void bs_peer_stream_close(struct bs_peer_stream *s)
{
    if (!s)
        return;
    if (s->added)
        curl_multi_remove_handle(s->m, s->x.e);
    peer__release(&s->x);
    if (s->done || !s->added) {
        peer__session_put(s->ps);
    } else {
        /* given up mid-transfer: its connection is closed anyway; start afresh */
        peer__session_free(s->ps);
    }
    free(s);
}
