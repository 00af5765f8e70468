/* crypto.c - OpenSSL behind the small API of crypto.h. */
#include "crypto/crypto.h"

#include "base/err.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A copy of upload bytes, shared by the pooled digests (refcounted). */
struct hash__chunk {
    atomic_int refs;
    size_t len;
    unsigned char data[];
};

struct hash__node {
    struct hash__node *next;
    struct hash__chunk *chunk;
};

/* One digest fed by the pool's workers, in order, one worker at a time. */
struct hash__stream {
    EVP_MD_CTX *md;
    struct cr_multihash *owner;
    int index;
    struct hash__node *head, *tail; /* under pool->lock */
    bool scheduled;                 /* on the run queue or being hashed */
    struct hash__stream *next_run;
};

/* sha256, sha1, md5: each its own stream, so that on a pool each can run
 * on its own core (the request thread only copies, writes and checksums) */
#define HASH__STREAMS 3

struct cr_multihash {
    struct hash__stream streams[HASH__STREAMS];
    struct cr_hashpool *pool; /* NULL: everything inline */
    uint64_t seen;            /* bytes given to update so far */
    struct hash__chunk *fill; /* gathering bytes for the pool (owned by the caller) */
    size_t pending;           /* bytes queued, under pool->lock */
    pthread_cond_t drained;
};

/* Hashed chunks kept for reuse: a fresh 1 MiB malloc is an mmap, or heap
 * pages faulted in, for every chunk of an upload. */
#define HASH__SPARES 16

struct cr_hashpool {
    pthread_mutex_t lock;
    pthread_cond_t work;
    struct hash__stream *run_head, *run_tail;
    struct hash__chunk *spare[HASH__SPARES]; /* under lock */
    int nspare;
    bool stopping;
    int n;
    pthread_t threads[];
};

/* Drop one stream's hold on c (pool lock held); the last one keeps it as
 * a spare or frees it. */
static void hash__unref(struct cr_hashpool *p, struct hash__chunk *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    if (p->nspare < HASH__SPARES)
        p->spare[p->nspare++] = c;
    else
        free(c);
}

/* An empty chunk of CR_HASH_BATCH bytes, a spare if there is one; NULL
 * when out of memory. */
static struct hash__chunk *hash__chunk_new(struct cr_hashpool *p)
{
    struct hash__chunk *c = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->nspare > 0)
        c = p->spare[--p->nspare];
    pthread_mutex_unlock(&p->lock);
    if (!c)
        c = malloc(sizeof(*c) + CR_HASH_BATCH);
    if (c)
        c->len = 0;
    return c;
}

static void *hash__worker(void *arg)
{
    struct cr_hashpool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->run_head && !p->stopping)
            pthread_cond_wait(&p->work, &p->lock);
        if (!p->run_head)
            break;
        struct hash__stream *st = p->run_head;
        p->run_head = st->next_run;
        if (!p->run_head)
            p->run_tail = NULL;
        int idx = st->index;
        struct cr_multihash *h = st->owner;
        /* this worker owns st until its queue is empty */
        while (st->head) {
            struct hash__node *nd = st->head;
            st->head = nd->next;
            if (!st->head)
                st->tail = NULL;
            pthread_mutex_unlock(&p->lock);
            EVP_DigestUpdate(st->md, nd->chunk->data, nd->chunk->len);
            pthread_mutex_lock(&p->lock);
            if (idx == HASH__STREAMS - 1)
                h->pending -= nd->chunk->len; /* counted once, on the last stream */
            hash__unref(p, nd->chunk);
            free(nd);
            pthread_cond_broadcast(&h->drained);
        }
        st->scheduled = false;
        pthread_cond_broadcast(&h->drained);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int cr_hashpool_start(int n, struct cr_hashpool **out)
{
    struct cr_hashpool *p = calloc(1, sizeof(*p) + sizeof(pthread_t) * (size_t)n);
    if (!p)
        return GR_ENOMEM;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    for (; p->n < n; p->n++)
        if (pthread_create(&p->threads[p->n], NULL, hash__worker, p) != 0) {
            cr_hashpool_stop(p);
            return GR_ENOMEM;
        }
    *out = p;
    return GR_OK;
}

void cr_hashpool_stop(struct cr_hashpool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    while (p->nspare > 0)
        free(p->spare[--p->nspare]);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

struct cr_multihash *cr_multihash_new(struct cr_hashpool *pool)
{
    const EVP_MD *algos[HASH__STREAMS] = {EVP_sha256(), EVP_sha1(), EVP_md5()};
    struct cr_multihash *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->pool = pool;
    pthread_cond_init(&h->drained, NULL);
    bool ok = true;
    for (int i = 0; i < HASH__STREAMS; i++) {
        h->streams[i].owner = h;
        h->streams[i].index = i;
        h->streams[i].md = EVP_MD_CTX_new();
        ok = ok && h->streams[i].md && EVP_DigestInit_ex(h->streams[i].md, algos[i], NULL);
    }
    if (!ok) {
        cr_multihash_free(h);
        return NULL;
    }
    return h;
}

/* Wait until no worker holds or will take any stream of h (pool lock held). */
static void hash__drain(struct cr_multihash *h)
{
    for (int i = 0; i < HASH__STREAMS; i++)
        while (h->streams[i].scheduled)
            pthread_cond_wait(&h->drained, &h->pool->lock);
}

/* Hand the gathered chunk (if any) to the pool's workers: one lock, one
 * wake-up per idle stream. Blocks while CR_HASHPOOL_BACKLOG bytes wait.
 * false: out of memory (the chunk is still h->fill, nothing queued). */
static bool hash__queue(struct cr_multihash *h)
{
    struct cr_hashpool *p = h->pool;
    struct hash__chunk *c = h->fill;
    if (!c || c->len == 0)
        return true;
    struct hash__node *nd[HASH__STREAMS];
    for (int i = 0; i < HASH__STREAMS; i++)
        if (!(nd[i] = malloc(sizeof(*nd[i])))) {
            while (i-- > 0)
                free(nd[i]);
            return false;
        }
    h->fill = NULL;
    atomic_init(&c->refs, HASH__STREAMS);
    pthread_mutex_lock(&p->lock);
    while (h->pending > CR_HASHPOOL_BACKLOG)
        pthread_cond_wait(&h->drained, &p->lock);
    h->pending += c->len;
    for (int i = 0; i < HASH__STREAMS; i++) {
        struct hash__stream *st = &h->streams[i];
        nd[i]->next = NULL;
        nd[i]->chunk = c;
        if (st->tail)
            st->tail->next = nd[i];
        else
            st->head = nd[i];
        st->tail = nd[i];
        if (!st->scheduled) {
            st->scheduled = true;
            st->next_run = NULL;
            if (p->run_tail)
                p->run_tail->next_run = st;
            else
                p->run_head = st;
            p->run_tail = st;
            pthread_cond_signal(&p->work);
        }
    }
    pthread_mutex_unlock(&p->lock);
    return true;
}

/* The rest on this thread (the pool is short of memory, or the end): the
 * gathered chunk queued (or, without memory for that, kept), everything
 * queued hashed, then the kept chunk and data here, in that order. */
static void hash__inline(struct cr_multihash *h, const void *data, size_t len)
{
    bool queued = hash__queue(h);
    pthread_mutex_lock(&h->pool->lock);
    hash__drain(h);
    pthread_mutex_unlock(&h->pool->lock);
    if (!queued) {
        for (int i = 0; i < HASH__STREAMS; i++)
            EVP_DigestUpdate(h->streams[i].md, h->fill->data, h->fill->len);
    }
    free(h->fill);
    h->fill = NULL;
    for (int i = 0; i < HASH__STREAMS && len > 0; i++)
        EVP_DigestUpdate(h->streams[i].md, data, len);
}

void cr_multihash_update(struct cr_multihash *h, const void *data, size_t len)
{
    const unsigned char *d = data;
    if (len == 0)
        return;
    if (!h->pool || h->seen + len <= CR_HASH_INLINE_MAX) {
        /* small bodies: three digests of a few KiB cost less than waking workers */
        for (int i = 0; i < HASH__STREAMS; i++)
            EVP_DigestUpdate(h->streams[i].md, d, len);
        h->seen += len;
        return;
    }
    h->seen += len;
    while (len > 0) {
        if (!h->fill) {
            h->fill = hash__chunk_new(h->pool);
            if (!h->fill) {
                hash__inline(h, d, len);
                return;
            }
        }
        size_t take = CR_HASH_BATCH - h->fill->len;
        if (take > len)
            take = len;
        memcpy(h->fill->data + h->fill->len, d, take);
        h->fill->len += take;
        d += take;
        len -= take;
        if (h->fill->len == CR_HASH_BATCH && !hash__queue(h)) {
            hash__inline(h, d, len);
            return;
        }
    }
}

static void crypto__hex(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static void crypto__final(EVP_MD_CTX *c, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(c, md, &n);
    crypto__hex(md, n, out);
}

void cr_multihash_final(struct cr_multihash *h, char sha256[CR_SHA256_HEX], char sha1[CR_SHA1_HEX],
                        char md5[CR_MD5_HEX])
{
    if (h->pool)
        hash__inline(h, NULL, 0); /* the last chunk queued, all of it hashed */
    crypto__final(h->streams[0].md, sha256);
    crypto__final(h->streams[1].md, sha1);
    crypto__final(h->streams[2].md, md5);
}

void cr_multihash_free(struct cr_multihash *h)
{
    if (!h)
        return;
    if (h->pool) {
        pthread_mutex_lock(&h->pool->lock);
        hash__drain(h);
        pthread_mutex_unlock(&h->pool->lock);
    }
    free(h->fill);
    pthread_cond_destroy(&h->drained);
    for (int i = 0; i < HASH__STREAMS; i++)
        EVP_MD_CTX_free(h->streams[i].md);
    free(h);
}

void cr_sha256_hex(const void *data, size_t len, char out[CR_SHA256_HEX])
{
    unsigned char md[32];
    unsigned int n = 32;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    crypto__hex(md, 32, out);
}

int cr_sha256_fd_hex(int fd, uint64_t off, uint64_t len, char out[CR_SHA256_HEX])
{
    enum { CHUNK = 1 << 20 };
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    char *buf = malloc(CHUNK);
    int rc = c && buf && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 ? GR_OK : GR_ENOMEM;
    for (uint64_t done = 0; rc == GR_OK && done < len;) {
        size_t want = len - done < CHUNK ? (size_t)(len - done) : CHUNK;
        ssize_t r = pread(fd, buf, want, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || (r == 0 && len != UINT64_MAX))
            rc = GR_EIO;
        if (r <= 0)
            break;
        EVP_DigestUpdate(c, buf, (size_t)r);
        done += (uint64_t)r;
    }
    if (rc == GR_OK)
        crypto__final(c, out);
    EVP_MD_CTX_free(c);
    free(buf);
    return rc;
}

void cr_sha512_hex(const void *data, size_t len, char out[CR_SHA512_HEX])
{
    unsigned char md[64];
    unsigned int n = 64;
    EVP_Digest(data, len, md, &n, EVP_sha512(), NULL);
    crypto__hex(md, 64, out);
}

struct cr_digest *cr_digest_new(enum cr_algo algo)
{
    const EVP_MD *md = algo == CR_MD5      ? EVP_md5()
                       : algo == CR_SHA1   ? EVP_sha1()
                       : algo == CR_SHA256 ? EVP_sha256()
                                           : EVP_sha512();
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c && !EVP_DigestInit_ex(c, md, NULL)) {
        EVP_MD_CTX_free(c);
        c = NULL;
    }
    return (struct cr_digest *)c;
}

void cr_digest_update(struct cr_digest *d, const void *data, size_t len)
{
    EVP_DigestUpdate((EVP_MD_CTX *)d, data, len);
}

size_t cr_digest_final(struct cr_digest *d, unsigned char out[64])
{
    unsigned int n = 0;
    EVP_DigestFinal_ex((EVP_MD_CTX *)d, out, &n);
    return n;
}

void cr_digest_free(struct cr_digest *d)
{
    EVP_MD_CTX_free((EVP_MD_CTX *)d);
}

size_t cr_base64_encode(const void *in, size_t n, char *out)
{
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

void cr_hmac_sha256(const void *key, size_t klen, const void *data, size_t len,
                    unsigned char out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)klen, data, len, out, &n);
}

struct cr_hmac_key {
    EVP_MD_CTX *inner, *outer; /* SHA-256 with the key's ipad / opad block hashed */
};

void cr_hmac_key_free(struct cr_hmac_key *k)
{
    if (!k)
        return;
    EVP_MD_CTX_free(k->inner);
    EVP_MD_CTX_free(k->outer);
    free(k);
}

struct cr_hmac_key *cr_hmac_key_new(const void *key, size_t klen)
{
    unsigned char k[64] = {0}, pad[64];
    unsigned int n = 0;
    if (klen > sizeof(k)) /* RFC 2104: a key longer than a block is hashed first */
        EVP_Digest(key, klen, k, &n, EVP_sha256(), NULL);
    else if (klen)
        memcpy(k, key, klen);
    struct cr_hmac_key *h = calloc(1, sizeof(*h));
    bool ok = h && (h->inner = EVP_MD_CTX_new()) && (h->outer = EVP_MD_CTX_new());
    for (size_t i = 0; i < sizeof(pad); i++)
        pad[i] = k[i] ^ 0x36;
    ok = ok && EVP_DigestInit_ex(h->inner, EVP_sha256(), NULL) &&
         EVP_DigestUpdate(h->inner, pad, sizeof(pad));
    for (size_t i = 0; i < sizeof(pad); i++)
        pad[i] = k[i] ^ 0x5c;
    ok = ok && EVP_DigestInit_ex(h->outer, EVP_sha256(), NULL) &&
         EVP_DigestUpdate(h->outer, pad, sizeof(pad));
    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(pad, sizeof(pad));
    if (!ok) {
        cr_hmac_key_free(h);
        return NULL;
    }
    return h;
}

int cr_hmac_sha256_k(const struct cr_hmac_key *k, const void *data, size_t len,
                     unsigned char out[32])
{
    unsigned char inner[32];
    unsigned int n = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool ok = c && EVP_MD_CTX_copy_ex(c, k->inner) && EVP_DigestUpdate(c, data, len) &&
              EVP_DigestFinal_ex(c, inner, &n) && EVP_MD_CTX_copy_ex(c, k->outer) &&
              EVP_DigestUpdate(c, inner, sizeof(inner)) && EVP_DigestFinal_ex(c, out, &n);
    EVP_MD_CTX_free(c);
    return ok ? GR_OK : GR_ENOMEM;
}

int cr_random(void *buf, size_t n)
{
    return RAND_bytes(buf, (int)n) == 1 ? GR_OK : GR_EIO;
}

int cr_random_password(char *out, size_t len)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[256];
    if (len >= sizeof(rnd))
        return GR_EINVAL;
    if (cr_random(rnd, len) != GR_OK)
        return GR_EIO;
    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[rnd[i] % 62]; /* 256 % 62 bias is negligible for 24+ chars */
    out[len] = '\0';
    return GR_OK;
}

bool cr_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

int cr_password_hash(const char *password, char out[CR_PASSWORD_HASH_MAX])
{
    unsigned char salt[16], dk[32];
    unsigned char salt64[32], dk64[64];
    if (cr_random(salt, sizeof(salt)) != GR_OK)
        return GR_EIO;
    if (!PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, sizeof(salt),
                           CR_PBKDF2_ITERATIONS, EVP_sha256(), sizeof(dk), dk))
        return GR_EIO;
    EVP_EncodeBlock(salt64, salt, sizeof(salt));
    EVP_EncodeBlock(dk64, dk, sizeof(dk));
    snprintf(out, CR_PASSWORD_HASH_MAX, "pbkdf2-sha256$%d$%s$%s", CR_PBKDF2_ITERATIONS,
             (char *)salt64, (char *)dk64);
    return GR_OK;
}

bool cr_password_verify(const char *password, const char *stored)
{
    char buf[CR_PASSWORD_HASH_MAX];
    if (strlen(stored) >= sizeof(buf) || strncmp(stored, "pbkdf2-sha256$", 14) != 0)
        return false;
    strcpy(buf, stored + 14);
    char *iters = buf, *salt64 = strchr(iters, '$');
    if (!salt64)
        return false;
    *salt64++ = '\0';
    char *dk64 = strchr(salt64, '$');
    if (!dk64)
        return false;
    *dk64++ = '\0';
    char *end;
    long it = strtol(iters, &end, 10);
    if (*end || it < 1000 || it > 10000000)
        return false;
    /* 16 bytes of salt and 32 of key are 24 and 44 base64 characters */
    if (strlen(salt64) != 24 || strlen(dk64) != 44)
        return false;
    unsigned char salt[64], want[64], got[32];
    int sl = EVP_DecodeBlock(salt, (const unsigned char *)salt64, (int)strlen(salt64));
    int wl = EVP_DecodeBlock(want, (const unsigned char *)dk64, (int)strlen(dk64));
    if (sl < 16 || wl < 32)
        return false;
    /* EVP_DecodeBlock counts padding bytes: the salt is 16 bytes, the key 32 */
    if (!PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, 16, (int)it, EVP_sha256(),
                           sizeof(got), got))
        return false;
    return CRYPTO_memcmp(got, want, sizeof(got)) == 0;
}

int cr_seal(const unsigned char key[32], const void *in, size_t n, unsigned char *out)
{
    if (n > INT32_MAX || RAND_bytes(out, 12) != 1)
        return GR_EIO;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, rc = GR_EIO;
    if (c && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, out) == 1 &&
        EVP_EncryptUpdate(c, out + 12, &len, in, (int)n) == 1 &&
        EVP_EncryptFinal_ex(c, out + 12 + len, &len) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + 12 + n) == 1)
        rc = GR_OK;
    EVP_CIPHER_CTX_free(c);
    return rc;
}

int cr_open(const unsigned char key[32], const unsigned char *in, size_t n, void *out)
{
    if (n < CR_SEAL_OVERHEAD || n > INT32_MAX)
        return GR_EINVAL;
    size_t m = n - CR_SEAL_OVERHEAD;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, rc = GR_EIO;
    if (c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, in) == 1 &&
        EVP_DecryptUpdate(c, out, &len, in + 12, (int)m) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)(in + 12 + m)) == 1)
        rc = EVP_DecryptFinal_ex(c, (unsigned char *)out + len, &len) == 1 ? GR_OK : GR_EAUTH;
    EVP_CIPHER_CTX_free(c);
    return rc;
}
