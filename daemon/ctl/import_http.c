/*
 * import_http.c - granary's HTTP API as `granaryctl import` uses it, over
 * one libcurl easy handle per thread, with retries (import_http.h).
 */
#include "import_http.h"

#include "base/sbuf.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define IMP_HTTP_BODY_MAX (64 * 1024)
#define IMP_HTTP_BACKOFF_MS 250
#define IMP_HTTP_BACKOFF_MAX_MS 8000

struct imp_http {
    const struct imp_server *srv;
    CURL *c;
    struct gr_sbuf body; /* the answer, up to IMP_HTTP_BODY_MAX bytes */
    char errbuf[CURL_ERROR_SIZE];
    /* the upload in flight */
    int fd;
    _Atomic uint64_t *progress;
    uint64_t sent; /* bytes of this attempt, taken back from progress on a rewind */
    uint64_t retried;
};

enum imp_http_method { IMP_GET, IMP_PUT_EMPTY, IMP_PUT_FILE };

int imp_http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void imp_http_global_cleanup(void)
{
    curl_global_cleanup();
}

struct imp_http *imp_http_new(const struct imp_server *srv)
{
    struct imp_http *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->c = curl_easy_init();
    if (!h->c) {
        free(h);
        return NULL;
    }
    h->srv = srv;
    h->fd = -1;
    gr_sbuf_init(&h->body);
    return h;
}

void imp_http_free(struct imp_http *h)
{
    if (!h)
        return;
    curl_easy_cleanup(h->c);
    gr_sbuf_release(&h->body);
    free(h);
}

uint64_t imp_http_retried(const struct imp_http *h)
{
    return h->retried;
}

static size_t imp_http__write(char *p, size_t size, size_t n, void *ud)
{
    struct imp_http *h = ud;
    size_t len = size * n;
    if (h->body.len < IMP_HTTP_BODY_MAX)
        gr_sbuf_add(&h->body, p, len < IMP_HTTP_BODY_MAX ? len : IMP_HTTP_BODY_MAX);
    return len;
}

static size_t imp_http__read_none(char *buf, size_t size, size_t n, void *ud)
{
    (void)buf, (void)size, (void)n, (void)ud;
    return 0;
}

static size_t imp_http__read(char *buf, size_t size, size_t n, void *ud)
{
    struct imp_http *h = ud;
    ssize_t r;
    do
        r = read(h->fd, buf, size * n);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return CURL_READFUNC_ABORT;
    h->sent += (uint64_t)r;
    if (h->progress)
        atomic_fetch_add(h->progress, (uint64_t)r);
    return (size_t)r;
}

/* libcurl rewinds the body when it must send it again (a reused connection
 * that was closed under it). */
static int imp_http__seek(void *ud, curl_off_t off, int origin)
{
    struct imp_http *h = ud;
    if (origin != SEEK_SET || lseek(h->fd, (off_t)off, SEEK_SET) < 0)
        return CURL_SEEKFUNC_CANTSEEK;
    if (h->progress)
        atomic_fetch_sub(h->progress, h->sent - (uint64_t)off);
    h->sent = (uint64_t)off;
    return CURL_SEEKFUNC_OK;
}

static int imp_http__xfer(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    struct imp_http *h = ud;
    return h->srv->stop && *h->srv->stop ? 1 : 0;
}

static bool imp_http__stopped(const struct imp_http *h)
{
    return h->srv->stop && *h->srv->stop;
}

/* Transport errors worth another attempt: the network or the server, not us. */
static bool imp_http__retryable(CURLcode cc)
{
    switch (cc) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_READ_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_LOGIN_DENIED:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
        return false;
    default:
        return true;
    }
}

/* The report's text for an HTTP answer: the server's JSON error message
 * ({"errors":[{"status":N,"message":"..."}]}) or the start of the body. */
static void imp_http__answer(struct imp_http *h, long status, struct imp_answer *ans)
{
    ans->status = status;
    const char *msg = NULL;
    json_t *j = json_loadb(h->body.buf, h->body.len, 0, NULL);
    if (j) {
        json_t *m = json_object_get(json_array_get(json_object_get(j, "errors"), 0), "message");
        msg = json_string_value(m);
    }
    if (msg) {
        snprintf(ans->msg, sizeof(ans->msg), "HTTP %ld: %s", status, msg);
    } else {
        size_t n = strcspn(h->body.buf, "\r\n");
        if (n > 200)
            n = 200;
        if (n)
            snprintf(ans->msg, sizeof(ans->msg), "HTTP %ld: %.*s", status, (int)n, h->body.buf);
        else
            snprintf(ans->msg, sizeof(ans->msg), "HTTP %ld", status);
    }
    json_decref(j);
}

static void imp_http__sleep_ms(const struct imp_http *h, long ms)
{
    while (ms > 0 && !imp_http__stopped(h)) {
        long step = ms < 100 ? ms : 100;
        struct timespec ts = {0, step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

/*
 * One request with retries. IMP_OK for 2xx, IMP_ABSENT for 404, IMP_EFAIL
 * for any other final answer or transport failure, IMP_ESTOP when stopped.
 * ans is filled in every case but IMP_OK.
 */
static int imp_http__do(struct imp_http *h, const char *url, enum imp_http_method m,
                        struct curl_slist *hdrs, uint64_t size, int retries, struct imp_answer *ans)
{
    for (int attempt = 0;; attempt++) {
        CURL *c = h->c;
        curl_easy_reset(c); /* keeps the live connections */
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_USERNAME, h->srv->user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, h->srv->password);
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "granaryctl-import/" GRANARY_VERSION);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
        curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
        /* a stalled transfer: under 1 byte/s for a minute */
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, imp_http__write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, imp_http__xfer);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        if (m == IMP_PUT_EMPTY) {
            curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)0);
            curl_easy_setopt(c, CURLOPT_READFUNCTION, imp_http__read_none);
        } else if (m == IMP_PUT_FILE) {
            if (lseek(h->fd, 0, SEEK_SET) < 0) {
                ans->status = 0;
                snprintf(ans->msg, sizeof(ans->msg), "cannot rewind the file: %s", strerror(errno));
                return IMP_EFAIL;
            }
            if (h->progress)
                atomic_fetch_sub(h->progress, h->sent);
            h->sent = 0;
            curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
            curl_easy_setopt(c, CURLOPT_READFUNCTION, imp_http__read);
            curl_easy_setopt(c, CURLOPT_READDATA, h);
            curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, imp_http__seek);
            curl_easy_setopt(c, CURLOPT_SEEKDATA, h);
            curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
            if (h->srv->limit_rate)
                curl_easy_setopt(c, CURLOPT_MAX_SEND_SPEED_LARGE, (curl_off_t)h->srv->limit_rate);
        }
        gr_sbuf_reset(&h->body);
        h->errbuf[0] = '\0';
        CURLcode cc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (imp_http__stopped(h)) {
            ans->status = status;
            snprintf(ans->msg, sizeof(ans->msg), "interrupted");
            return IMP_ESTOP;
        }
        bool retry;
        if (cc != CURLE_OK) {
            ans->status = 0;
            snprintf(ans->msg, sizeof(ans->msg), "%s",
                     h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc));
            retry = imp_http__retryable(cc);
        } else if (status >= 200 && status < 300) {
            return IMP_OK;
        } else {
            imp_http__answer(h, status, ans);
            if (status == 404)
                return IMP_ABSENT;
            retry = status >= 500 || status == 408 || status == 429;
        }
        if (!retry)
            return IMP_EFAIL;
        if (attempt >= retries) {
            if (attempt > 0) {
                size_t n = strlen(ans->msg);
                snprintf(ans->msg + n, sizeof(ans->msg) - n, " (after %d attempts)", attempt + 1);
            }
            return IMP_EFAIL;
        }
        h->retried++;
        long ms = IMP_HTTP_BACKOFF_MS << (attempt < 6 ? attempt : 6);
        imp_http__sleep_ms(h, ms < IMP_HTTP_BACKOFF_MAX_MS ? ms : IMP_HTTP_BACKOFF_MAX_MS);
    }
}

/* base + "/" + prefix + encoded repo + "/" + encoded path */
static void imp_http__url(struct imp_http *h, struct gr_sbuf *u, const char *api, const char *repo,
                          const char *path)
{
    gr_sbuf_adds(u, h->srv->base);
    gr_sbuf_adds(u, api);
    gr_sbuf_add_urlpath(u, repo);
    if (path) {
        gr_sbuf_adds(u, "/");
        gr_sbuf_add_urlpath(u, path);
    }
}

int imp_http_repo_check(struct imp_http *h, const char *repo, struct imp_answer *ans)
{
    struct gr_sbuf u = GR_SBUF_INIT;
    imp_http__url(h, &u, "/api/repositories/", repo, NULL);
    /* one retry only: a wrong URL should fail fast */
    int rc = imp_http__do(h, u.buf, IMP_GET, NULL, 0, 1, ans);
    gr_sbuf_release(&u);
    return rc;
}

int imp_http_stat(struct imp_http *h, const char *repo, const char *path, char sha256_out[65],
                  struct imp_answer *ans)
{
    struct gr_sbuf u = GR_SBUF_INIT;
    imp_http__url(h, &u, "/api/storage/", repo, path);
    int rc = imp_http__do(h, u.buf, IMP_GET, NULL, 0, h->srv->retries, ans);
    gr_sbuf_release(&u);
    sha256_out[0] = '\0';
    if (rc != IMP_OK)
        return rc;
    json_t *j = json_loadb(h->body.buf, h->body.len, 0, NULL);
    const char *s = json_string_value(json_object_get(json_object_get(j, "checksums"), "sha256"));
    if (s && strlen(s) == 64)
        memcpy(sha256_out, s, 65);
    json_decref(j);
    return IMP_OK;
}

static struct curl_slist *imp_http__sum_headers(const struct imp_sums *sums, bool by_checksum)
{
    char line[128];
    struct curl_slist *l = NULL, *n;
    /* no "Expect: 100-continue" round trip: the server verifies the body anyway */
    if (!(n = curl_slist_append(l, "Expect:")))
        goto out_oom;
    l = n;
    snprintf(line, sizeof(line), "X-Checksum-Sha256: %s", sums->sha256);
    if (!(n = curl_slist_append(l, line)))
        goto out_oom;
    l = n;
    snprintf(line, sizeof(line), "X-Checksum-Sha1: %s", sums->sha1);
    if (!(n = curl_slist_append(l, line)))
        goto out_oom;
    l = n;
    snprintf(line, sizeof(line), "X-Checksum-Md5: %s", sums->md5);
    if (!(n = curl_slist_append(l, line)))
        goto out_oom;
    l = n;
    if (by_checksum) {
        if (!(n = curl_slist_append(l, "X-Checksum-Deploy: true")))
            goto out_oom;
        l = n;
    }
    return l;
out_oom:
    curl_slist_free_all(l);
    return NULL;
}

static int imp_http__oom(struct imp_answer *ans)
{
    ans->status = 0;
    snprintf(ans->msg, sizeof(ans->msg), "out of memory");
    return IMP_EFAIL;
}

int imp_http_put_checksum(struct imp_http *h, const char *repo, const char *path,
                          const struct imp_sums *sums, struct imp_answer *ans)
{
    struct curl_slist *hdrs = imp_http__sum_headers(sums, true);
    if (!hdrs)
        return imp_http__oom(ans);
    struct gr_sbuf u = GR_SBUF_INIT;
    imp_http__url(h, &u, "/", repo, path);
    int rc = imp_http__do(h, u.buf, IMP_PUT_EMPTY, hdrs, 0, h->srv->retries, ans);
    gr_sbuf_release(&u);
    curl_slist_free_all(hdrs);
    return rc;
}

int imp_http_put_file(struct imp_http *h, const char *repo, const char *path, int fd, uint64_t size,
                      const struct imp_sums *sums, _Atomic uint64_t *progress,
                      struct imp_answer *ans)
{
    struct curl_slist *hdrs = imp_http__sum_headers(sums, false);
    if (!hdrs)
        return imp_http__oom(ans);
    struct gr_sbuf u = GR_SBUF_INIT;
    imp_http__url(h, &u, "/", repo, path);
    h->fd = fd;
    h->progress = progress;
    h->sent = 0;
    int rc = imp_http__do(h, u.buf, IMP_PUT_FILE, hdrs, size, h->srv->retries, ans);
    if (rc == IMP_ABSENT) /* 404 on an upload: the repository went away */
        rc = IMP_EFAIL;
    if (rc != IMP_OK && progress) /* the caller counts a failed file once */
        atomic_fetch_sub(progress, h->sent);
    h->fd = -1;
    h->progress = NULL;
    gr_sbuf_release(&u);
    curl_slist_free_all(hdrs);
    return rc;
}
