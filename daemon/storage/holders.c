/*
 * holders.c - which peers hold a binary, for reads from peers: a small
 * in-memory cache of binary_locations in front of PostgreSQL, so that a
 * warm read from a peer asks the database nothing (docs/architecture.md,
 * "State and where it lives": PostgreSQL is kept off the hot read path).
 *
 * The cache is not kept coherent by the bus: an entry lives
 * STORAGE_HOLDERS_TTL_MS, and a stale one only costs a retry, because
 * storage_open_remote() asks PostgreSQL afresh when every cached holder
 * failed (404, refused, bad copy) and the bytes are verified whatever node
 * sends them. Liveness, URL and zone come from the membership snapshot at
 * each read, so a node that goes down or comes back needs no new query.
 */
#include "storage/internal.h"

#include "base/err.h"
#include "db/db.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t holders__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The slot of sha256: its first 8 hex digits (a hash already) modulo the table. */
static struct storage__holders_entry *holders__slot(struct storage *b, const char *sha256)
{
    uint32_t h = 0;
    for (int i = 0; i < 8 && sha256[i]; i++) {
        char c = sha256[i];
        h = h << 4 | (uint32_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return &b->holders[h % STORAGE_HOLDERS_SLOTS];
}

int storage__holders_cached(struct storage *b, const char *sha256, char ids[][64], int max)
{
    int n = 0;
    int64_t now = holders__mono_ms();
    pthread_mutex_lock(&b->holders_lock);
    struct storage__holders_entry *e = holders__slot(b, sha256);
    if (e->n > 0 && !strcmp(e->sha256, sha256) && now - e->at_ms < STORAGE_HOLDERS_TTL_MS) {
        for (; n < e->n && n < max; n++)
            memcpy(ids[n], e->ids[n], 64);
    }
    pthread_mutex_unlock(&b->holders_lock);
    if (n > 0)
        atomic_fetch_add(&b->holder_hits, 1);
    return n;
}

void storage__holders_store(struct storage *b, const char *sha256, char ids[][64], int n)
{
    if (n <= 0) {
        storage__holders_forget(b, sha256);
        return;
    }
    int64_t now = holders__mono_ms();
    pthread_mutex_lock(&b->holders_lock);
    struct storage__holders_entry *e = holders__slot(b, sha256);
    snprintf(e->sha256, sizeof(e->sha256), "%s", sha256);
    e->n = n < STORAGE_HOLDERS_MAX ? n : STORAGE_HOLDERS_MAX;
    for (int i = 0; i < e->n; i++)
        memcpy(e->ids[i], ids[i], 64);
    e->at_ms = now;
    pthread_mutex_unlock(&b->holders_lock);
}

void storage__holders_forget(struct storage *b, const char *sha256)
{
    pthread_mutex_lock(&b->holders_lock);
    struct storage__holders_entry *e = holders__slot(b, sha256);
    if (!strcmp(e->sha256, sha256))
        e->n = 0;
    pthread_mutex_unlock(&b->holders_lock);
}

int storage__holders_query(struct storage *b, const char *sha256, char ids[][64], int max)
{
    struct db_res *res = NULL;
    const char *p[2] = {sha256, b->node};
    atomic_fetch_add(&b->holder_queries, 1);
    int rc = db_exec1(b->db, &res,
                      "SELECT node FROM binary_locations WHERE sha256 = $1 AND node <> $2", 2, p);
    if (rc != GR_OK) {
        db_res_free(res);
        return -1;
    }
    int n = 0;
    for (int i = 0; i < db_res_rows(res) && n < max; i++)
        snprintf(ids[n++], 64, "%s", db_res_get(res, i, 0));
    db_res_free(res);
    return n;
}

int storage__holders_order(struct storage *b, char ids[][64], int n, char skip[][64], int n_skip,
                           struct storage__holder *out)
{
    static atomic_uint rotation;
    struct storage__node nodes[STORAGE_MAX_NODES];
    int n_nodes = storage__snapshot(b, nodes), m = 0;
    unsigned start = n > 0 ? atomic_fetch_add(&rotation, 1) % (unsigned)n : 0;
    /* two passes: this node's zone, then the others; each from a rotating start */
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < n; k++) {
            const char *id = ids[(start + (unsigned)k) % (unsigned)n];
            bool skipped = false;
            for (int j = 0; j < n_skip && !skipped; j++)
                skipped = !strcmp(skip[j], id);
            if (skipped || !strcmp(id, b->node))
                continue;
            for (int j = 0; j < n_nodes; j++) {
                if (strcmp(nodes[j].id, id) || !nodes[j].url[0])
                    continue;
                bool same_zone = !strcmp(nodes[j].zone, b->zone);
                if (same_zone == (pass == 0)) {
                    snprintf(out[m].id, sizeof(out[m].id), "%s", id);
                    snprintf(out[m].url, sizeof(out[m].url), "%s", nodes[j].url);
                    m++;
                }
                break;
            }
        }
    return m;
}
