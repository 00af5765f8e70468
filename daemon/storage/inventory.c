/*
 * inventory.c - at start: the filestore's identity, and adopting the
 * local files the database does not know this node holds (or sweeping
 * orphans older than a day's uploads).
 */
#include "storage/internal.h"

#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "bs.h"
#include "crypto/crypto.h"
#include "db/db.h"
#include "peer.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- inventory: the filestore's identity, and adopting local files ---- */

/*
 * A file no binary row knows of (a publication rolled back after this node
 * had published its copy): delete it once it is old, under the binary's
 * advisory lock, which every upload takes before it publishes a copy (an
 * upload that is publishing the same content right now would otherwise
 * find this file in place, count on it, and lose it).
 */
static bool storage__sweep_orphan(struct storage *b, const char *sha256)
{
    char path[1024];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%.2s/%s", bs_root(b->bs), sha256, sha256);
    if (stat(path, &st) || time(NULL) - st.st_mtime < STORAGE_ORPHAN_AGE_S)
        return false;
    struct db_conn *c;
    if (db_acquire(b->db, 5000, &c))
        return false;
    const char *p[1] = {sha256};
    struct db_res *res = NULL;
    int rc = db_begin(c);
    if (rc == GR_OK)
        rc = db_exec(c, NULL, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", 1, p);
    if (rc == GR_OK)
        rc = db_exec(c, &res, "SELECT 1 FROM binaries WHERE sha256 = $1", 1, p);
    bool orphan = rc == GR_OK && db_res_rows(res) == 0;
    db_res_free(res);
    if (orphan && bs_delete(b->bs, sha256) == BS_OK)
        gr_info("storage: deleted %s, a copy no binary row knows of", sha256);
    else
        orphan = false;
    if (rc == GR_OK)
        db_rollback(c); /* nothing to commit: the lock goes with the transaction */
    db_release(c);
    return orphan;
}

void storage__adopt_flush(struct storage__batch *bt)
{
    if (bt->n == 0)
        return;
    const char *v[STORAGE_BATCH];
    for (int i = 0; i < bt->n; i++)
        v[i] = bt->sha[i];
    db_text_array(&bt->arr, v, bt->n);
    const char *p[2] = {bt->arr.buf, bt->b->node};
    struct db_res *res = NULL;
    if (db_exec1(bt->b->db, &res,
                 "INSERT INTO binary_locations (sha256, node) SELECT s, $2 FROM"
                 " unnest($1::text[]) s WHERE EXISTS (SELECT 1 FROM binaries b WHERE"
                 " b.sha256 = s AND b.tombstoned IS NULL) ON CONFLICT DO NOTHING RETURNING 1",
                 2, p) == GR_OK)
        bt->adopted += db_res_rows(res);
    else
        gr_warn("storage: could not record a batch of local copies");
    db_res_free(res);
    res = NULL;
    if (bt->sweep &&
        db_exec1(bt->b->db, &res,
                 "SELECT s FROM unnest($1::text[]) s WHERE NOT EXISTS (SELECT 1 FROM binaries b"
                 " WHERE b.sha256 = s)",
                 1, p) == GR_OK)
        for (int i = 0; i < db_res_rows(res); i++)
            bt->orphans += storage__sweep_orphan(bt->b, db_res_get(res, i, 0));
    db_res_free(res);
    gr_sbuf_reset(&bt->arr);
    bt->n = 0;
}

int storage__adopt_one(void *arg, const char *sha256, uint64_t size)
{
    struct storage__batch *bt = arg;
    (void)size;
    snprintf(bt->sha[bt->n], sizeof(bt->sha[0]), "%s", sha256);
    if (++bt->n >= STORAGE_BATCH)
        storage__adopt_flush(bt);
    return 0;
}

int storage__inventory(struct storage *b)
{
    char key[128];
    snprintf(key, sizeof(key), "storage.store_id:%s", b->node);
    const char *id = bs_store_id(b->bs);
    const char *p[3] = {key, id, b->node};
    struct db_res *res = NULL;
    int rc = db_exec1(b->db, &res, "SELECT value FROM settings WHERE key = $1", 1, p);
    if (rc) {
        db_res_free(res);
        return rc;
    }
    if (db_res_rows(res) == 1 && strcmp(db_res_get(res, 0, 0), id)) {
        gr_warn("storage: this node's filestore is new (id %s, was %s): forgetting its copies", id,
                db_res_get(res, 0, 0));
        if (db_exec1(b->db, NULL, "DELETE FROM binary_locations WHERE node = $1", 1, &p[2]) !=
            GR_OK)
            gr_warn("storage: could not forget this node's copies");
    }
    db_res_free(res);
    rc = db_exec1(b->db, NULL,
                  "INSERT INTO settings (key, value) VALUES ($1, $2)"
                  " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                  2, p);
    if (rc)
        return rc;
    if (storage__active(b) != STORAGE_LOCAL)
        return GR_OK; /* the filestore is a cache (s3) or unused (shared-fs): no copies to adopt */
    struct storage__batch bt = {.b = b, .arr = GR_SBUF_INIT};
    if (bs_each(b->bs, NULL, storage__adopt_one, &bt) != BS_OK)
        gr_warn("storage: could not list the filestore");
    storage__adopt_flush(&bt);
    gr_sbuf_release(&bt.arr);
    if (bt.adopted)
        gr_info("storage: recorded %lld local copies", (long long)bt.adopted);
    return GR_OK;
}
