/* peer.c - libcurl transport between nodes: parallel pushes, calls, pulled streams. */
#include "peer.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PEER_STREAM_BUF (256 * 1024)
#define PEER_CONNECT_MS 2000L

int bs_peer_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

/* ---- shared request plumbing ---- */

struct peer__xfer {
    struct bs_peer_req *req;
    CURL *e;
    struct curl_slist *hdr;
    size_t body_len;
    int fd;             /* push: the file */
    uint64_t off, size; /* push: position and total */
};

static size_t peer__collect(char *data, size_t sz, size_t nm, void *arg)
{
    struct peer__xfer *x = arg;
    size_t n = sz * nm, room = sizeof(x->req->body) - 1 - x->body_len;
    size_t take = n < room ? n : room;
    memcpy(x->req->body + x->body_len, data, take);
    x->body_len += take;
    x->req->body[x->body_len] = '\0';
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

static int peer__setup(struct peer__xfer *x, struct bs_peer_req *req, const char *method,
                       int timeout_s)
{
    memset(x, 0, sizeof(*x));
    x->fd = -1;
    x->req = req;
    req->status = 0;
    req->body[0] = req->error[0] = '\0';
    x->e = curl_easy_init();
    if (!x->e) {
        snprintf(req->error, sizeof(req->error), "out of memory");
        return -1;
    }
    if (req->auth)
        x->hdr = curl_slist_append(x->hdr, req->auth);
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

static void peer__finish(struct peer__xfer *x, CURLcode res)
{
    if (res == CURLE_OK) {
        long code = 0;
        curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &code);
        x->req->status = (int)code;
    } else {
        snprintf(x->req->error, sizeof(x->req->error), "%s", curl_easy_strerror(res));
    }
}

static void peer__release(struct peer__xfer *x)
{
    if (x->e)
        curl_easy_cleanup(x->e);
    curl_slist_free_all(x->hdr);
    if (x->fd >= 0)
        close(x->fd);
    x->e = NULL;
    x->hdr = NULL;
    x->fd = -1;
}

void bs_peer_call(const char *method, struct bs_peer_req *req, int timeout_s)
{
    struct peer__xfer x;
    if (peer__setup(&x, req, method, timeout_s) == 0)
        peer__finish(&x, curl_easy_perform(x.e));
    peer__release(&x);
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
        if (peer__setup(x, &reqs[i], "PUT", 0))
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
    for (int i = 0; i < n; i++) {
        if (xs[i].e)
            curl_multi_remove_handle(m, xs[i].e);
        peer__release(&xs[i]);
    }
    curl_multi_cleanup(m);
    free(xs);
}

/* ---- pulled streams ---- */

struct bs_peer_stream {
    struct peer__xfer x;
    CURLM *m;
    char *buf;
    size_t off, len; /* unread bytes are buf[off, len) */
    bool paused, headers, done, failed;
    uint64_t got, expect;
};

static size_t peer__stream_write(char *data, size_t sz, size_t nm, void *arg)
{
    struct bs_peer_stream *s = arg;
    size_t n = sz * nm;
    long code = 0;
    curl_easy_getinfo(s->x.e, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200 && code != 206) /* an error answer: keep its first bytes */
        return peer__collect(data, sz, nm, &s->x);
    if (s->off == s->len)
        s->off = s->len = 0;
    if (PEER_STREAM_BUF - s->len < n) {
        if (s->off > 0) {
            memmove(s->buf, s->buf + s->off, s->len - s->off);
            s->len -= s->off;
            s->off = 0;
        }
        if (PEER_STREAM_BUF - s->len < n) {
            s->paused = true;
            return CURL_WRITEFUNC_PAUSE;
        }
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
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
    if (!s->done && running && wait_ms > 0)
        curl_multi_poll(s->m, NULL, 0, wait_ms, NULL);
    return !s->done;
}

int bs_peer_stream_open(struct bs_peer_req *req, const char *range, int timeout_s,
                        struct bs_peer_stream **out, uint64_t *length)
{
    *out = NULL;
    *length = UINT64_MAX;
    struct bs_peer_stream *s = calloc(1, sizeof(*s));
    if (!s || !(s->buf = malloc(PEER_STREAM_BUF)) || !(s->m = curl_multi_init())) {
        snprintf(req->error, sizeof(req->error), "out of memory");
        req->status = 0;
        if (s)
            free(s->buf);
        free(s);
        return -1;
    }
    if (peer__setup(&s->x, req, "GET", 0)) {
        bs_peer_stream_close(s);
        return -1;
    }
    curl_easy_setopt(s->x.e, CURLOPT_WRITEFUNCTION, peer__stream_write);
    curl_easy_setopt(s->x.e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(s->x.e, CURLOPT_HEADERFUNCTION, peer__stream_header);
    curl_easy_setopt(s->x.e, CURLOPT_HEADERDATA, s);
    /* no total timeout (a slow client pauses the transfer); a stalled peer
     * is given up after timeout_s without a byte */
    curl_easy_setopt(s->x.e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(s->x.e, CURLOPT_LOW_SPEED_TIME, (long)(timeout_s > 0 ? timeout_s : 60));
    if (range)
        curl_easy_setopt(s->x.e, CURLOPT_RANGE, range + (strncmp(range, "bytes=", 6) ? 0 : 6));
    curl_multi_add_handle(s->m, s->x.e);
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
    curl_off_t cl = -1;
    curl_easy_getinfo(s->x.e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    if (cl >= 0)
        *length = s->expect = (uint64_t)cl;
    else
        s->expect = UINT64_MAX;
    *out = s;
    return 0;
}

ssize_t bs_peer_stream_read(struct bs_peer_stream *s, void *buf, size_t max)
{
    while (s->off == s->len) {
        if (s->done) {
            if (s->failed || (s->expect != UINT64_MAX && s->got != s->expect))
                return -1;
            return 0;
        }
        if (s->paused) {
            s->paused = false;
            curl_easy_pause(s->x.e, CURLPAUSE_CONT);
            if (s->off != s->len)
                break;
        }
        peer__stream_pump(s, 1000);
    }
    size_t n = s->len - s->off;
    if (n > max)
        n = max;
    memcpy(buf, s->buf + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

void bs_peer_stream_close(struct bs_peer_stream *s)
{
    if (!s)
        return;
    if (s->x.e && s->m)
        curl_multi_remove_handle(s->m, s->x.e);
    peer__release(&s->x);
    if (s->m)
        curl_multi_cleanup(s->m);
    free(s->buf);
    free(s);
}
