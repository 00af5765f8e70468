/*
 * upstream.c - GETs of a remote repository's upstream (libcurl, on the
 * calling fetch thread): a streamed GET whose body goes chunk by chunk to
 * the caller while it arrives (never held whole), and a small GET for a
 * checksum file. Credentials go with libcurl's own authentication, so a
 * redirect to another host does not carry them.
 */
#include "remote/internal.h"

#include "base/err.h"
#include "base/log.h"

#include <curl/curl.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct upstream__xfer {
    CURL *e;
    struct remote_upstream *up;
    struct remote_answer *ans;
    int (*on_headers)(void *arg, const struct remote_answer *ans);
    int (*on_data)(void *arg, const void *data, size_t len);
    void *arg;
    bool told; /* on_headers was called */
};

/* Keep one checksum header (hex of n characters) into dst. */
static void upstream__sum(const char *v, size_t vl, char *dst, size_t n)
{
    while (vl > 0 && isspace((unsigned char)v[vl - 1]))
        vl--;
    if (vl != n)
        return;
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)v[i]))
            return;
        dst[i] = (char)tolower((unsigned char)v[i]);
    }
    dst[n] = '\0';
}

static size_t upstream__header(char *data, size_t sz, size_t nm, void *arg)
{
    struct upstream__xfer *x = arg;
    size_t n = sz * nm;
    if (n >= 5 && !strncmp(data, "HTTP/", 5)) {
        /* a new answer (after a redirect or a 100): forget the last one's headers */
        memset(&x->ans->sums, 0, sizeof(x->ans->sums));
        x->ans->ctype[0] = '\0';
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon)
        return n;
    size_t kl = (size_t)(colon - data);
    const char *v = colon + 1;
    size_t vl = n - kl - 1;
    while (vl > 0 && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
        vl--;
    static const struct {
        const char *name;
        size_t off, len;
    } sums[] = {
        {"X-Checksum-Sha256", offsetof(struct remote_sums, sha256), 64},
        {"X-Checksum-Sha1", offsetof(struct remote_sums, sha1), 40},
        {"X-Checksum-Md5", offsetof(struct remote_sums, md5), 32},
    };
    for (size_t i = 0; i < sizeof(sums) / sizeof(sums[0]); i++)
        if (kl == strlen(sums[i].name) && !strncasecmp(data, sums[i].name, kl))
            upstream__sum(v, vl, (char *)&x->ans->sums + sums[i].off, sums[i].len);
    if (kl == 12 && !strncasecmp(data, "Content-Type", 12))
        snprintf(x->ans->ctype, sizeof(x->ans->ctype), "%.*s", (int)vl, v);
    return n;
}

/* The final answer's headers are in: fill status and length, ask the caller. */
static int upstream__tell(struct upstream__xfer *x)
{
    if (x->told)
        return 0;
    x->told = true;
    long code = 0;
    curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &code);
    x->ans->status = (int)code;
    curl_off_t cl = -1;
    curl_easy_getinfo(x->e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    x->ans->length = cl >= 0 ? (uint64_t)cl : UINT64_MAX;
    return x->on_headers ? x->on_headers(x->arg, x->ans) : 0;
}

static size_t upstream__write(char *data, size_t sz, size_t nm, void *arg)
{
    struct upstream__xfer *x = arg;
    size_t n = sz * nm;
    if (!x->told && upstream__tell(x)) {
        x->ans->stopped = true;
        return 0; /* no body wanted */
    }
    if (x->ans->status != 200)
        return n; /* an error answer's body: not ours to keep */
    if (x->on_data && x->on_data(x->arg, data, n)) {
        x->ans->stopped = true;
        return 0;
    }
    return n;
}

static int upstream__progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct upstream__xfer *x = arg;
    (void)dt, (void)dn, (void)ut, (void)un;
    return atomic_load(&x->up->rm->stop) ? 1 : 0;
}

/* An easy handle for one GET of upath, options set. NULL: out of memory. */
static CURL *upstream__easy(struct remote_upstream *up, const char *upath, char *url, size_t urlsz,
                            struct curl_slist **hdrs)
{
    snprintf(url, urlsz, "%s/%s", up->base, upath);
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, up->timeout_ms);
    /* no limit on the whole transfer; an upstream that sends nothing for the
     * socket timeout (rounded up to a second) is given up */
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)((up->timeout_ms + 999) / 1000));
    curl_easy_setopt(e, CURLOPT_USERAGENT, "granary/" GRANARY_VERSION);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
    if (up->user && *up->user) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, up->user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, up->password ? up->password : "");
    }
    *hdrs = NULL;
    if (up->accept) {
        char h[256];
        snprintf(h, sizeof(h), "Accept: %s", up->accept);
        *hdrs = curl_slist_append(*hdrs, h);
    }
    if (*hdrs)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, *hdrs);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, upstream__progress);
    return e;
}

int remote__fetch(struct remote_upstream *up, const char *upath,
                  int (*on_headers)(void *arg, const struct remote_answer *ans),
                  int (*on_data)(void *arg, const void *data, size_t len), void *arg,
                  struct remote_answer *ans)
{
    memset(ans, 0, sizeof(*ans));
    ans->length = UINT64_MAX;
    char url[4096];
    struct curl_slist *hdrs = NULL;
    CURL *e = upstream__easy(up, upath, url, sizeof(url), &hdrs);
    if (!e) {
        snprintf(ans->error, sizeof(ans->error), "out of memory");
        return GR_EIO;
    }
    struct upstream__xfer x = {e, up, ans, on_headers, on_data, arg, false};
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, upstream__header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, upstream__write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &x);
    CURLcode rc = curl_easy_perform(e);
    if (rc == CURLE_OK && !x.told && upstream__tell(&x))
        ans->stopped = true; /* an empty body: the headers were all there was */
    int out = GR_OK;
    if (rc != CURLE_OK && !ans->stopped) {
        long code = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        ans->timed_out = rc == CURLE_OPERATION_TIMEDOUT;
        ans->unreachable = code == 0 && !x.told;
        snprintf(ans->error, sizeof(ans->error), "%s%s", curl_easy_strerror(rc),
                 ans->timed_out ? " (socketTimeoutMillis)" : "");
        out = GR_EIO;
    } else if (ans->stopped && rc == CURLE_ABORTED_BY_CALLBACK) {
        snprintf(ans->error, sizeof(ans->error), "the node is stopping");
        out = GR_EIO;
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(e);
    return out;
}

struct upstream__small {
    struct gr_arena *a;
    char *buf;
    size_t len, max;
    bool over;
};

static int upstream__small_data(void *arg, const void *data, size_t len)
{
    struct upstream__small *s = arg;
    if (s->len + len > s->max) {
        s->over = true;
        return 1;
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    return 0;
}

int remote_upstream_get(struct remote_upstream *up, struct gr_arena *a, const char *upath,
                        size_t max, char **body, size_t *len, int *status)
{
    struct upstream__small s = {a, gr_arena_alloc(a, max + 1), 0, max, false};
    struct remote_answer ans;
    const char *accept = up->accept;
    up->accept = NULL;
    int rc = remote__fetch(up, upath, NULL, upstream__small_data, &s, &ans);
    up->accept = accept;
    *status = ans.status;
    if (s.over)
        return GR_ETOOBIG;
    if (rc && ans.status == 0)
        return GR_EIO;
    s.buf[s.len] = '\0';
    *body = s.buf;
    *len = s.len;
    return GR_OK;
}
