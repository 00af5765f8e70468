/*
 * s3.c - the S3 client of s3.h: libcurl signs (CURLOPT_AWS_SIGV4), this
 * file builds URLs, streams bodies from files, and reads the few XML
 * answers it needs (an upload id, a listing, an error code) by their tags.
 */
#include "storage/s3/s3.h"

#include "base/err.h"
#include "base/log.h"
#include "crypto/crypto.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S3_POOL 16
#define S3_TEXT_MAX (8u << 20) /* an XML answer (a listing of 1000 keys is ~300 KiB) */
/* sha256 of the empty string: the payload hash of a request without a body */
#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct s3 {
    char *endpoint; /* scheme://host[:port], no trailing slash */
    char *scheme, *host, *bucket, *region, *prefix, *ak, *sk;
    bool path_style;
    int timeout_s;
    char sigv4[160];
    pthread_mutex_t lock; /* guards pool */
    CURL *pool[S3_POOL];
    int npool;
    atomic_uint_fast64_t requests, failures;
};

static bool s3__safe(const char *p)
{
    for (; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-' || *p == '/'))
            return false;
    return true;
}

int s3_open(const struct s3_config *c, struct s3 **out)
{
    *out = NULL;
    if (!c->endpoint || !*c->endpoint || !c->bucket || !*c->bucket || !c->access_key ||
        !c->secret_key || !s3__safe(c->prefix ? c->prefix : "") || !s3__safe(c->bucket) ||
        strchr(c->bucket, '/'))
        return GR_EINVAL;
    const char *sep = strstr(c->endpoint, "://");
    if (!sep || (strncmp(c->endpoint, "http://", 7) && strncmp(c->endpoint, "https://", 8)))
        return GR_EINVAL;
    struct s3 *s = calloc(1, sizeof(*s));
    if (!s)
        return GR_ENOMEM;
    s->endpoint = strdup(c->endpoint);
    s->scheme = strndup(c->endpoint, (size_t)(sep - c->endpoint));
    s->host = strdup(sep + 3);
    s->bucket = strdup(c->bucket);
    s->region = strdup(c->region && *c->region ? c->region : "us-east-1");
    s->prefix = strdup(c->prefix ? c->prefix : "");
    s->ak = strdup(c->access_key);
    s->sk = strdup(c->secret_key);
    if (!s->endpoint || !s->scheme || !s->host || !s->bucket || !s->region || !s->prefix ||
        !s->ak || !s->sk) {
        s3_close(s);
        return GR_ENOMEM;
    }
    size_t n = strlen(s->endpoint);
    while (n > 0 && s->endpoint[n - 1] == '/')
        s->endpoint[--n] = '\0';
    n = strlen(s->host);
    while (n > 0 && s->host[n - 1] == '/')
        s->host[--n] = '\0';
    s->path_style = c->path_style;
    s->timeout_s = c->timeout_s > 0 ? c->timeout_s : 10;
    snprintf(s->sigv4, sizeof(s->sigv4), "aws:amz:%s:s3", s->region);
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return GR_OK;
}

void s3_close(struct s3 *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->npool; i++)
        curl_easy_cleanup(s->pool[i]);
    if (s->sk)
        memset(s->sk, 0, strlen(s->sk));
    free(s->endpoint);
    free(s->scheme);
    free(s->host);
    free(s->bucket);
    free(s->region);
    free(s->prefix);
    free(s->ak);
    free(s->sk);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void s3_counts(struct s3 *s, uint64_t *requests, uint64_t *failures)
{
    *requests = s ? atomic_load(&s->requests) : 0;
    *failures = s ? atomic_load(&s->failures) : 0;
}

static CURL *s3__handle(struct s3 *s)
{
    CURL *h = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->npool > 0)
        h = s->pool[--s->npool];
    pthread_mutex_unlock(&s->lock);
    if (h)
        curl_easy_reset(h); /* keeps its connections */
    else
        h = curl_easy_init();
    return h;
}

static void s3__release(struct s3 *s, CURL *h)
{
    pthread_mutex_lock(&s->lock);
    if (s->npool < S3_POOL) {
        s->pool[s->npool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    if (h)
        curl_easy_cleanup(h);
}

/* One request and its answer. */
struct s3__req {
    const char *method; /* GET, PUT, POST, DELETE, HEAD */
    const char *key;    /* relative to the prefix; NULL: the bucket */
    const char *query;  /* "" or "a=b&c=d", sorted, values encoded as they are signed */
    const char *sha256; /* the payload's hex sha256; NULL: empty */
    const char *extra;  /* one more header line, or NULL */
    int wait_s;         /* a stall of this long fails the request; 0: the store's timeout_s */
    /* the body: len bytes of fd from off, or of buf */
    int fd;
    uint64_t off, len;
    const char *buf;
    bool has_body;
    uint64_t sent;
    /* the answer: into out (room for cap), else into text */
    char *out;
    size_t cap, got;
    bool overflow;
    char *text;
    size_t text_len, text_cap;
    long status;
    char etag[80];
    uint64_t total; /* from Content-Range's "/N" or Content-Length */
    bool has_total;
};

static size_t s3__read(char *dst, size_t size, size_t nitems, void *arg)
{
    struct s3__req *q = arg;
    size_t want = size * nitems;
    if (want > q->len - q->sent)
        want = (size_t)(q->len - q->sent);
    if (want == 0)
        return 0;
    if (q->buf) {
        memcpy(dst, q->buf + q->sent, want);
    } else {
        ssize_t r;
        do
            r = pread(q->fd, dst, want, (off_t)(q->off + q->sent));
        while (r < 0 && errno == EINTR);
        if (r <= 0)
            return CURL_READFUNC_ABORT;
        want = (size_t)r;
    }
    q->sent += want;
    return want;
}

static size_t s3__write(char *data, size_t size, size_t nitems, void *arg)
{
    struct s3__req *q = arg;
    size_t n = size * nitems;
    if (q->out && q->status / 100 == 2) {
        if (n > q->cap - q->got) {
            q->overflow = true;
            return 0;
        }
        memcpy(q->out + q->got, data, n);
        q->got += n;
        return n;
    }
    if (q->text_len + n + 1 > q->text_cap) {
        size_t cap = q->text_cap ? q->text_cap : 4096;
        while (cap < q->text_len + n + 1)
            cap *= 2;
        char *t = cap <= S3_TEXT_MAX ? realloc(q->text, cap) : NULL;
        if (!t)
            return 0;
        q->text = t;
        q->text_cap = cap;
    }
    memcpy(q->text + q->text_len, data, n);
    q->text_len += n;
    q->text[q->text_len] = '\0';
    return n;
}

static size_t s3__header(char *line, size_t size, size_t nitems, void *arg)
{
    struct s3__req *q = arg;
    size_t n = size * nitems;
    char h[512];
    size_t l = n < sizeof(h) - 1 ? n : sizeof(h) - 1;
    memcpy(h, line, l);
    h[l] = '\0';
    h[strcspn(h, "\r\n")] = '\0';
    if (!strncmp(h, "HTTP/", 5)) {
        const char *sp = strchr(h, ' ');
        q->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        q->has_total = false;
    } else if (!strncasecmp(h, "etag:", 5)) {
        const char *v = h + 5;
        while (*v == ' ')
            v++;
        size_t vl = strlen(v) < sizeof(q->etag) - 1 ? strlen(v) : sizeof(q->etag) - 1;
        memcpy(q->etag, v, vl);
        q->etag[vl] = '\0';
    } else if (!strncasecmp(h, "content-range:", 14)) {
        const char *slash = strrchr(h, '/');
        if (slash && slash[1] != '*') {
            q->total = strtoull(slash + 1, NULL, 10);
            q->has_total = true;
        }
    } else if (!strncasecmp(h, "content-length:", 15) && !q->has_total) {
        q->total = strtoull(h + 15, NULL, 10);
    }
    return n;
}

/* The text between <tag> and </tag> from *from on, into out; the end of it, or NULL. */
static const char *s3__tag(const char *xml, const char *tag, char *out, size_t n)
{
    char open[64], close[64];
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    const char *a = xml ? strstr(xml, open) : NULL;
    const char *b = a ? strstr(a, close) : NULL;
    if (!b)
        return NULL;
    a += strlen(open);
    size_t l = (size_t)(b - a) < n - 1 ? (size_t)(b - a) : n - 1;
    memcpy(out, a, l);
    out[l] = '\0';
    return b + strlen(close);
}

static int s3__do(struct s3 *s, struct s3__req *q, char *err, size_t errsz)
{
    char url[2048], hdr[160];
    const char *key = q->key;
    if (s->path_style) /* the bucket itself is "/bucket", without a slash after it */
        snprintf(url, sizeof(url), "%s/%s%s%s%s%s%s", s->endpoint, s->bucket, key ? "/" : "",
                 key ? s->prefix : "", key ? key : "", q->query[0] ? "?" : "", q->query);
    else
        snprintf(url, sizeof(url), "%s://%s.%s/%s%s%s%s", s->scheme, s->bucket, s->host,
                 key ? s->prefix : "", key ? key : "", q->query[0] ? "?" : "", q->query);
    CURL *h = s3__handle(s);
    if (!h) {
        snprintf(err ? err : hdr, err ? errsz : sizeof(hdr), "out of memory");
        return GR_ENOMEM;
    }
    struct curl_slist *hl = NULL;
    snprintf(hdr, sizeof(hdr), "x-amz-content-sha256: %s", q->sha256 ? q->sha256 : S3_EMPTY_SHA256);
    hl = curl_slist_append(hl, hdr);
    /* no "Expect:" line to drop 100-continue: libcurl would sign the empty header */
    if (q->extra)
        hl = curl_slist_append(hl, q->extra);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s->sigv4);
    curl_easy_setopt(h, CURLOPT_USERNAME, s->ak);
    curl_easy_setopt(h, CURLOPT_PASSWORD, s->sk);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)(q->wait_s > 0 ? q->wait_s : s->timeout_s));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, s3__write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, q);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, s3__header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, q);
    if (!strcmp(q->method, "PUT")) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, s3__read);
        curl_easy_setopt(h, CURLOPT_READDATA, q);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->len);
    } else if (!strcmp(q->method, "POST")) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->buf ? q->buf : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(q->buf ? q->len : 0));
    } else if (!strcmp(q->method, "HEAD")) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(q->method, "GET")) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
    }
    atomic_fetch_add(&s->requests, 1);
    CURLcode cc = curl_easy_perform(h);
    curl_slist_free_all(hl);
    s3__release(s, h);
    int rc;
    char code[96] = "";
    if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && q->overflow)) {
        if (err)
            snprintf(err, errsz, "no answer from %s: %s", s->endpoint, curl_easy_strerror(cc));
        rc = GR_EUNAVAIL;
    } else if (q->overflow) {
        if (err)
            snprintf(err, errsz, "answer larger than expected");
        rc = GR_ETOOBIG;
    } else if (q->status / 100 == 2) {
        rc = GR_OK;
    } else {
        s3__tag(q->text, "Code", code, sizeof(code));
        if (err)
            snprintf(err, errsz, "%ld %s", q->status,
                     code[0]                                ? code
                     : q->status == 401 || q->status == 403 ? "(the store refused the request's"
                                                              " signature or credentials)"
                                                            : "(no error code)");
        rc = q->status == 404                       ? GR_ENOTFOUND
             : q->status == 401 || q->status == 403 ? GR_EAUTH
             : q->status >= 500                     ? GR_EUNAVAIL
                                                    : GR_EIO;
    }
    if (rc != GR_OK && rc != GR_ENOTFOUND)
        atomic_fetch_add(&s->failures, 1);
    return rc;
}

static void s3__req_free(struct s3__req *q)
{
    free(q->text);
}

int s3_put_fd(struct s3 *s, const char *key, int fd, uint64_t off, uint64_t len,
              const char *sha256_hex, const char *checksum_b64, char *err, size_t errsz)
{
    char extra[128];
    if (checksum_b64)
        snprintf(extra, sizeof(extra), "x-amz-checksum-sha256: %s", checksum_b64);
    struct s3__req q = {.method = "PUT",
                        .key = key,
                        .query = "",
                        .sha256 = sha256_hex,
                        .extra = checksum_b64 ? extra : NULL,
                        .fd = fd,
                        .off = off,
                        .len = len};
    int rc = s3__do(s, &q, err, errsz);
    if (rc == GR_OK && q.sent != len) {
        snprintf(err, errsz, "sent %llu of %llu bytes", (unsigned long long)q.sent,
                 (unsigned long long)len);
        rc = GR_EIO;
    }
    s3__req_free(&q);
    return rc;
}

int s3_put_buf(struct s3 *s, const char *key, const void *buf, size_t len, char *err, size_t errsz)
{
    char sha[CR_SHA256_HEX];
    cr_sha256_hex(buf, len, sha);
    struct s3__req q = {
        .method = "PUT", .key = key, .query = "", .sha256 = sha, .buf = buf, .len = len};
    int rc = s3__do(s, &q, err, errsz);
    s3__req_free(&q);
    return rc;
}

int s3_mp_create(struct s3 *s, const char *key, char id[256], char *err, size_t errsz)
{
    struct s3__req q = {.method = "POST", .key = key, .query = "uploads="};
    int rc = s3__do(s, &q, err, errsz);
    if (rc == GR_OK && !s3__tag(q.text, "UploadId", id, 256)) {
        snprintf(err, errsz, "no UploadId in the answer");
        rc = GR_EIO;
    }
    s3__req_free(&q);
    return rc;
}

int s3_mp_part(struct s3 *s, const char *key, const char *id, int part, int fd, uint64_t off,
               uint64_t len, char etag[80], char *err, size_t errsz)
{
    char sha[CR_SHA256_HEX], query[400];
    int rc = cr_sha256_fd_hex(fd, off, len, sha);
    if (rc) {
        snprintf(err, errsz, "cannot read the part");
        return rc;
    }
    snprintf(query, sizeof(query), "partNumber=%d&uploadId=%s", part, id);
    struct s3__req q = {.method = "PUT",
                        .key = key,
                        .query = query,
                        .sha256 = sha,
                        .fd = fd,
                        .off = off,
                        .len = len};
    rc = s3__do(s, &q, err, errsz);
    if (rc == GR_OK && !q.etag[0]) {
        snprintf(err, errsz, "no ETag for part %d", part);
        rc = GR_EIO;
    }
    if (rc == GR_OK)
        snprintf(etag, 80, "%s", q.etag);
    s3__req_free(&q);
    return rc;
}

#define S3_COMPLETE_WAIT_S 600

int s3_mp_complete(struct s3 *s, const char *key, const char *id, char (*etags)[80], int n,
                   char *err, size_t errsz)
{
    size_t cap = 128 + (size_t)n * 160;
    char *body = malloc(cap), query[400], sha[CR_SHA256_HEX];
    if (!body)
        return GR_ENOMEM;
    size_t len = (size_t)snprintf(body, cap, "<CompleteMultipartUpload>");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(body + len, cap - len,
                                "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i + 1,
                                etags[i]);
    len += (size_t)snprintf(body + len, cap - len, "</CompleteMultipartUpload>");
    cr_sha256_hex(body, len, sha);
    snprintf(query, sizeof(query), "uploadId=%s", id);
    /* the store joins the parts before it answers: minutes for a large
     * object on some stores, with no byte sent meanwhile */
    struct s3__req q = {.method = "POST",
                        .key = key,
                        .query = query,
                        .sha256 = sha,
                        .buf = body,
                        .len = len,
                        .wait_s = S3_COMPLETE_WAIT_S};
    int rc = s3__do(s, &q, err, errsz);
    /* S3 may answer 200 with an error document after a long completion */
    char code[96];
    if (rc == GR_OK && q.text && strstr(q.text, "<Error>") && s3__tag(q.text, "Code", code, 96)) {
        snprintf(err, errsz, "200 %s", code);
        rc = GR_EUNAVAIL;
    }
    s3__req_free(&q);
    free(body);
    return rc;
}

void s3_mp_abort(struct s3 *s, const char *key, const char *id)
{
    char query[400], err[160];
    snprintf(query, sizeof(query), "uploadId=%s", id);
    struct s3__req q = {.method = "DELETE", .key = key, .query = query};
    int rc = s3__do(s, &q, err, sizeof(err));
    if (rc != GR_OK && rc != GR_ENOTFOUND)
        gr_warn("s3: cannot abort the multipart upload of %s: %s", key, err);
    s3__req_free(&q);
}

int s3_get(struct s3 *s, const char *key, uint64_t off, uint64_t len, void *buf, size_t max,
           size_t *got, uint64_t *size, char *err, size_t errsz)
{
    char range[80];
    if (len)
        snprintf(range, sizeof(range), "Range: bytes=%llu-%llu", (unsigned long long)off,
                 (unsigned long long)(off + len - 1));
    struct s3__req q = {.method = "GET",
                        .key = key,
                        .query = "",
                        .extra = len ? range : NULL,
                        .out = buf,
                        .cap = len ? (size_t)len : max};
    int rc = s3__do(s, &q, err, errsz);
    if (rc == GR_OK && len && q.status != 206 && !(off == 0 && q.got == len)) {
        snprintf(err, errsz, "asked for a range, got %ld", q.status);
        rc = GR_EIO;
    }
    *got = q.got;
    if (size)
        *size = q.total;
    s3__req_free(&q);
    return rc;
}

int s3_head(struct s3 *s, const char *key, uint64_t *size, char *err, size_t errsz)
{
    struct s3__req q = {.method = "HEAD", .key = key, .query = ""};
    int rc = s3__do(s, &q, err, errsz);
    *size = q.total;
    s3__req_free(&q);
    return rc;
}

int s3_delete(struct s3 *s, const char *key, char *err, size_t errsz)
{
    struct s3__req q = {.method = "DELETE", .key = key, .query = ""};
    int rc = s3__do(s, &q, err, errsz);
    s3__req_free(&q);
    return rc == GR_ENOTFOUND ? GR_OK : rc;
}

/* Percent-encode a query value as SigV4 signs it (everything but unreserved). */
static void s3__qenc(const char *in, char *out, size_t n)
{
    static const char hx[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *in && o + 4 < n; in++) {
        unsigned char c = (unsigned char)*in;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hx[c >> 4];
            out[o++] = hx[c & 15];
        }
    }
    out[o] = '\0';
}

int s3_list(struct s3 *s, const char *pfx, const char *after,
            int (*fn)(void *arg, const char *key, uint64_t size), void *arg, char *err,
            size_t errsz)
{
    char full[512], cursor[512], epfx[1600], eafter[1600], query[3400];
    size_t plen = strlen(s->prefix);
    snprintf(full, sizeof(full), "%s%s", s->prefix, pfx ? pfx : "");
    snprintf(cursor, sizeof(cursor), "%s%s", after && *after ? s->prefix : "", after ? after : "");
    for (;;) {
        s3__qenc(full, epfx, sizeof(epfx));
        s3__qenc(cursor, eafter, sizeof(eafter));
        snprintf(query, sizeof(query), "list-type=2&max-keys=1000&prefix=%s%s%s", epfx,
                 cursor[0] ? "&start-after=" : "", cursor[0] ? eafter : "");
        struct s3__req q = {.method = "GET", .key = NULL, .query = query};
        int rc = s3__do(s, &q, err, errsz);
        if (rc) {
            s3__req_free(&q);
            return rc;
        }
        const char *p = q.text;
        int n = 0;
        char contents[2048], key[512], size[32], trunc[16] = "";
        while (p && (p = s3__tag(p, "Contents", contents, sizeof(contents)))) {
            if (!s3__tag(contents, "Key", key, sizeof(key)) ||
                !s3__tag(contents, "Size", size, sizeof(size)))
                continue;
            n++;
            snprintf(cursor, sizeof(cursor), "%s", key);
            if (strncmp(key, s->prefix, plen))
                continue;
            rc = fn(arg, key + plen, strtoull(size, NULL, 10));
            if (rc) {
                s3__req_free(&q);
                return rc;
            }
        }
        s3__tag(q.text, "IsTruncated", trunc, sizeof(trunc));
        s3__req_free(&q);
        if (strcmp(trunc, "true") || n == 0)
            return GR_OK;
    }
}
