/*
 * hot.c - small binaries this node served lately from its own copy or its
 * peer cache, kept in memory as they were read and checked (storage.h "hot
 * copies"): a download of one costs a stat of the file instead of opening
 * it and its checksums, reading and checking. The stat is the
 * revalidation: a copy deleted, quarantined, evicted, moved or written to
 * since (a changed inode, size or ctime) is a miss,
 * and the read that follows checks the file again.
 *
 * Direct-mapped: STORAGE_HOT_SLOTS slots chosen by the sha256's first hex
 * digits, a new entry replaces the slot's; so at most STORAGE_HOT_SLOTS x
 * STORAGE_HOT_MAX bytes (64 MiB) in all, with no budget to keep. Entries are reference-counted: a
 * response holds one while it is being sent, so a replaced entry is freed by whoever lets go of it
 * last.
 */
#include "storage/internal.h"

#include "bs.h"

#include <stdlib.h>
#include <string.h>

_Static_assert((uint64_t)STORAGE_HOT_SLOTS *STORAGE_HOT_MAX <= 64u * 1024 * 1024,
               "hot copies are bounded by their slots: at most 64 MiB");

struct storage_hot {
    atomic_int refs;        /* the slot's, and one per holder */
    struct bs_store *store; /* whose file it is: this node's filestore or its peer cache */
    char sha256[65];
    uint64_t size;
    dev_t dev;
    ino_t ino;
    struct timespec ctime;
    unsigned char data[];
};

void storage__hot_init(struct storage *b)
{
    for (int i = 0; i < STORAGE_HOT_LOCKS; i++)
        pthread_mutex_init(&b->hot_lock[i], NULL);
}

void storage_hot_release(struct storage_hot *e)
{
    if (e && atomic_fetch_sub(&e->refs, 1) == 1)
        free(e);
}

void storage__hot_free(struct storage *b)
{
    for (int i = 0; i < STORAGE_HOT_SLOTS; i++) {
        struct storage_hot *e = b->hot[i];
        b->hot[i] = NULL;
        if (e)
            atomic_fetch_sub(&b->hot_bytes, (int64_t)e->size);
        storage_hot_release(e);
    }
    for (int i = 0; i < STORAGE_HOT_LOCKS; i++)
        pthread_mutex_destroy(&b->hot_lock[i]);
}

static unsigned storage__hot_slot(const char *sha256)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = sha256[i];
        v = v * 16 + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    return v % STORAGE_HOT_SLOTS;
}

static bool storage__hot_same(const struct storage_hot *e, const struct stat *st)
{
    return e->dev == st->st_dev && e->ino == st->st_ino && e->size == (uint64_t)st->st_size &&
           e->ctime.tv_sec == st->st_ctim.tv_sec && e->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* Take s out of its slot if it is still there (the slot's reference goes). */
static void storage__hot_drop(struct storage *b, unsigned s, struct storage_hot *e)
{
    pthread_mutex_t *l = &b->hot_lock[s % STORAGE_HOT_LOCKS];
    pthread_mutex_lock(l);
    bool mine = b->hot[s] == e;
    if (mine)
        b->hot[s] = NULL;
    pthread_mutex_unlock(l);
    if (mine) {
        atomic_fetch_sub(&b->hot_bytes, (int64_t)e->size);
        storage_hot_release(e);
    }
}

const void *storage_hot_get(struct storage *b, const char *sha256, uint64_t size,
                            struct storage_hot **ref)
{
    *ref = NULL;
    if (!b || storage__active(b) != STORAGE_LOCAL || size > STORAGE_HOT_MAX ||
        !bs_valid_sha256(sha256))
        return NULL;
    unsigned s = storage__hot_slot(sha256);
    pthread_mutex_t *l = &b->hot_lock[s % STORAGE_HOT_LOCKS];
    pthread_mutex_lock(l);
    struct storage_hot *e = b->hot[s];
    if (e && strcmp(e->sha256, sha256))
        e = NULL;
    if (e)
        atomic_fetch_add(&e->refs, 1);
    pthread_mutex_unlock(l);
    if (!e)
        return NULL;
    struct stat st;
    if (e->size != size || bs_blob_stat(e->store, sha256, &st) != BS_OK ||
        !storage__hot_same(e, &st)) {
        storage__hot_drop(b, s, e); /* gone or changed: the next read checks the file */
        storage_hot_release(e);
        atomic_fetch_add(&b->hot_stale, 1);
        return NULL;
    }
    atomic_fetch_add(&b->hot_hits, 1);
    *ref = e;
    return e->data;
}

void storage_hot_put(struct storage *b, struct bs_blob *blob, const char *sha256, const void *data,
                     uint64_t size)
{
    if (!b || storage__active(b) != STORAGE_LOCAL || size > STORAGE_HOT_MAX ||
        !bs_valid_sha256(sha256) || bs_blob_size(blob) != size)
        return;
    /* this node's own copy or its peer cache's (not a shared store's): the
     * file storage_hot_get() looks at again */
    struct stat fst, st;
    struct bs_store *store = NULL;
    if (fstat(bs_blob_fd(blob), &fst) < 0)
        return;
    struct bs_store *mine[2] = {b->bs, b->pcache};
    for (int i = 0; i < 2 && !store; i++)
        if (mine[i] && bs_blob_stat(mine[i], sha256, &st) == BS_OK && fst.st_dev == st.st_dev &&
            fst.st_ino == st.st_ino)
            store = mine[i];
    if (!store)
        return;
    struct storage_hot *e = malloc(sizeof(*e) + (size ? size : 1));
    if (!e)
        return;
    atomic_init(&e->refs, 1);
    e->store = store;
    memcpy(e->sha256, sha256, 65);
    e->size = size;
    e->dev = fst.st_dev;
    e->ino = fst.st_ino;
    e->ctime = fst.st_ctim;
    memcpy(e->data, data, size);
    unsigned s = storage__hot_slot(sha256);
    pthread_mutex_t *l = &b->hot_lock[s % STORAGE_HOT_LOCKS];
    pthread_mutex_lock(l);
    struct storage_hot *old = b->hot[s];
    b->hot[s] = e;
    pthread_mutex_unlock(l);
    atomic_fetch_add(&b->hot_bytes, (int64_t)size);
    if (old) {
        atomic_fetch_sub(&b->hot_bytes, (int64_t)old->size);
        storage_hot_release(old);
    }
}

void storage_hot_stats(struct storage *b, uint64_t *hits, uint64_t *stale, int64_t *bytes)
{
    *hits = atomic_load(&b->hot_hits);
    *stale = atomic_load(&b->hot_stale);
    *bytes = atomic_load(&b->hot_bytes);
}
