/*
 * merged.c - the documents virtual repositories merge from their members
 * (Maven's maven-metadata.xml, npm's packuments), computed once and kept
 * in memory until something changes. Every invalidation of an artifact or
 * a repository that this node applies (its own writes and, before they
 * answer, every peer's: docs/cluster.md) moves the generation on and drops
 * them all; a document computed from members read before that is never
 * kept. Bounded: REMOTE_MERGED_MAX documents, REMOTE_MERGED_BYTES bytes,
 * the least recently used go first.
 */
#include "remote/internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t merged__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t remote_merged_gen(struct remote *rm)
{
    return atomic_load(&rm->gen);
}

static void merged__drop(struct remote *rm, struct remote_merged *m)
{
    rm->merged_bytes -= m->len;
    free(m->key);
    free(m->doc);
    memset(m, 0, sizeof(*m));
}

void remote__merged_clear(struct remote *rm)
{
    pthread_mutex_lock(&rm->merged_mu);
    atomic_fetch_add(&rm->gen, 1);
    for (int i = 0; i < REMOTE_MERGED_MAX; i++)
        if (rm->merged[i].key)
            merged__drop(rm, &rm->merged[i]);
    pthread_mutex_unlock(&rm->merged_mu);
}

bool remote_merged_get(struct remote *rm, struct gr_arena *a, const char *key, char **doc,
                       size_t *len)
{
    bool hit = false;
    if (rm->ctx->hooks.cache_ok && !rm->ctx->hooks.cache_ok(rm->ctx->hooks.arg))
        return false; /* the cache lease lapsed: invalidations may have been missed */
    pthread_mutex_lock(&rm->merged_mu);
    uint64_t gen = atomic_load(&rm->gen);
    for (int i = 0; i < REMOTE_MERGED_MAX && !hit; i++) {
        struct remote_merged *m = &rm->merged[i];
        if (!m->key || strcmp(m->key, key))
            continue;
        if (m->gen != gen || merged__now_ms() >= m->expires_ms) {
            merged__drop(rm, m);
            break;
        }
        m->used = ++rm->merged_clock;
        *doc = gr_arena_alloc(a, m->len + 1);
        memcpy(*doc, m->doc, m->len);
        (*doc)[m->len] = '\0';
        *len = m->len;
        hit = true;
    }
    pthread_mutex_unlock(&rm->merged_mu);
    if (hit)
        atomic_fetch_add(&rm->merged_hits, 1);
    return hit;
}

void remote_merged_put(struct remote *rm, const char *key, uint64_t gen, int64_t expires_ms,
                       const char *doc, size_t len)
{
    if (len > REMOTE_MERGED_BYTES / 4)
        return;
    char *k = strdup(key), *d = malloc(len ? len : 1);
    if (!k || !d) {
        free(k);
        free(d);
        return;
    }
    memcpy(d, doc, len);
    pthread_mutex_lock(&rm->merged_mu);
    if (gen != atomic_load(&rm->gen)) { /* a member changed while it was computed */
        pthread_mutex_unlock(&rm->merged_mu);
        free(k);
        free(d);
        return;
    }
    struct remote_merged *slot = NULL;
    for (int i = 0; i < REMOTE_MERGED_MAX; i++)
        if (rm->merged[i].key && !strcmp(rm->merged[i].key, key))
            merged__drop(rm, &rm->merged[i]);
    while (!slot) {
        struct remote_merged *oldest = NULL;
        for (int i = 0; i < REMOTE_MERGED_MAX && !slot; i++) {
            struct remote_merged *m = &rm->merged[i];
            if (!m->key && rm->merged_bytes + len <= REMOTE_MERGED_BYTES)
                slot = m;
            else if (m->key && (!oldest || m->used < oldest->used))
                oldest = m;
        }
        if (!slot && !oldest)
            break;
        if (!slot)
            merged__drop(rm, oldest);
    }
    if (slot) {
        *slot = (struct remote_merged){k, d, len, gen, ++rm->merged_clock, expires_ms};
        rm->merged_bytes += len;
        k = d = NULL;
    }
    pthread_mutex_unlock(&rm->merged_mu);
    free(k);
    free(d);
}
