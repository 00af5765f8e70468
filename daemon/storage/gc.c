/*
 * gc.c - garbage collection (primary, or on demand): binaries no artifact,
 * trash or pin row (binary_pins: the parts of unfinished uploads) references, older than the grace
 * period, tombstoned under their row lock and only then deleted (docs/blobs.md "Garbage
 * collection").
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

/* ---- garbage collection ---- */

/* Phase 2 for one tombstoned binary: delete its files under the row lock. */
static int storage__collect_one(struct storage *b, uint64_t token, const char *sha256,
                                struct storage_gc_report *out)
{
    struct db_conn *c;
    if (db_acquire(b->db, 5000, &c))
        return GR_EDB;
    struct db_res *res = NULL;
    const char *p[2] = {sha256, NULL};
    int rc = db_begin(c);
    if (rc == GR_OK) {
        rc = storage__fence(b, c, token, "gc-delete", sha256);
        if (rc == GR_ECONFLICT) {
            db_rollback(c);
            db_release(c);
            return rc;
        }
    }
    /* lock the row only while it is still tombstoned: FOR UPDATE rechecks
     * the condition on the latest version (an upload may have cleared it) */
    if (rc == GR_OK)
        rc = db_exec(c, &res,
                     "SELECT size FROM binaries WHERE sha256 = $1 AND tombstoned IS NOT NULL"
                     " FOR UPDATE SKIP LOCKED",
                     1, p);
    if (rc == GR_OK && db_res_rows(res) == 1) {
        /*
         * Under the lock, with a fresh snapshot: is it referenced after all?
         * (Phase 1's statement may have judged by a snapshot older than an
         * upload that committed just before it locked the row; anything that
         * references the binary later needs this row lock, or fails its
         * foreign key once the row is gone.)
         */
        db_res_free(res);
        res = NULL;
        rc = db_exec(c, &res,
                     "SELECT EXISTS (SELECT 1 FROM artifacts WHERE sha256 = $1) OR"
                     " EXISTS (SELECT 1 FROM trash WHERE sha256 = $1) OR"
                     " EXISTS (SELECT 1 FROM binary_pins WHERE sha256 = $1)",
                     1, p);
        if (rc == GR_OK && db_res_get(res, 0, 0)[0] == 't') {
            db_res_free(res);
            res = NULL;
            rc = db_exec(c, NULL, "UPDATE binaries SET tombstoned = NULL WHERE sha256 = $1", 1, p);
            rc = rc ? (db_rollback(c), rc) : db_commit(c);
            db_release(c);
            out->revived++;
            return GR_OK;
        }
        db_res_free(res);
        res = NULL;
        if (rc == GR_OK)
            rc = db_exec(
                c, &res,
                "SELECT (SELECT size FROM binaries WHERE sha256 = $1),"
                " coalesce(string_agg(node, ','), '') FROM binary_locations WHERE sha256 = $1",
                1, p);
    } else if (rc == GR_OK) {
        db_res_free(res);
        res = NULL;
        rc = GR_ENOTFOUND;
    }
    if (rc || db_res_rows(res) == 0) { /* un-tombstoned, locked by an upload, or gone */
        db_res_free(res);
        db_rollback(c);
        db_release(c);
        return GR_OK;
    }
    uint64_t size = strtoull(db_res_get(res, 0, 0), NULL, 10);
    char *holders = strdup(db_res_get(res, 0, 1));
    db_res_free(res);
    int left = 0;
    for (char *save = NULL, *id = holders ? strtok_r(holders, ",", &save) : NULL; id;
         id = strtok_r(NULL, ",", &save)) {
        bool gone = false;
        if (!strcmp(id, b->node)) {
            int brc = bs_delete(b->bs, sha256);
            gone = brc == BS_OK || brc == BS_ENOTFOUND;
        } else if (storage__is_store(id)) { /* a provider's store (store.c) */
            gone = storage__store_del(b, id, sha256);
        } else {
            char url[256], uri[128];
            snprintf(uri, sizeof(uri), "/v1/blobs/%s", sha256);
            if (storage__node_url(b, id, url, sizeof(url))) {
                int st = storage__call(b, "DELETE", id, url, uri, "gc", NULL, 0);
                gone = st == 204 || st == 404;
            }
        }
        if (gone) {
            out->files_deleted++;
            out->bytes_freed += (int64_t)size;
            p[1] = id;
            if (db_exec(c, NULL, "DELETE FROM binary_locations WHERE sha256 = $1 AND node = $2", 2,
                        p) != GR_OK)
                left++;
        } else {
            left++; /* that node is down: its copy goes in a later run */
        }
    }
    free(holders);
    if (left == 0) {
        rc = db_exec(c, NULL, "DELETE FROM binaries WHERE sha256 = $1 AND tombstoned IS NOT NULL",
                     1, p);
        if (rc == GR_OK)
            out->deleted++;
    } else {
        out->kept_unreachable++;
    }
    rc = rc ? (db_rollback(c), rc) : db_commit(c);
    db_release(c);
    return GR_OK;
}

int storage_gc(struct storage *b, int64_t grace_s, struct storage_gc_report *out)
{
    return storage__gc_run(b, grace_s, false, out);
}

int storage__gc_run(struct storage *b, int64_t grace_s, bool scheduled,
                    struct storage_gc_report *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t token = storage__run_token(b, scheduled);
    if (token == 0)
        return GR_EUNAVAIL; /* not the primary (any more) */
    if (atomic_exchange(&b->gc_running, true))
        return GR_EUNAVAIL;
    int64_t t0 = storage__now_ms();
    storage__refresh_nodes(b);
    if (grace_s < 0) {
        struct storage_settings s;
        storage_get_settings(b, &s);
        grace_s = s.gc_grace_s;
    }
    char gs[24];
    snprintf(gs, sizeof(gs), "%lld", (long long)grace_s);
    const char *p[1] = {gs};
    struct db_res *res = NULL;
    /* phase 1: tombstone, in a committed transaction (fenced), what nothing references */
    struct db_conn *c;
    int rc = db_acquire(b->db, 5000, &c);
    if (rc == GR_OK) {
        rc = db_begin(c);
        if (rc == GR_OK)
            rc = storage__fence(b, c, token, "gc", "");
        if (rc == GR_OK)
            rc = db_exec(
                c, &res,
                "UPDATE binaries b SET tombstoned = now() WHERE b.sha256 IN (SELECT x.sha256 FROM"
                " binaries x WHERE x.tombstoned IS NULL AND x.touched < now() - make_interval(secs"
                " => $1::double precision) AND NOT EXISTS (SELECT 1 FROM artifacts a WHERE"
                " a.sha256 = x.sha256) AND NOT EXISTS (SELECT 1 FROM trash t WHERE t.sha256 ="
                " x.sha256) AND NOT EXISTS (SELECT 1 FROM binary_pins p WHERE p.sha256 = x.sha256)"
                " LIMIT 10000 FOR UPDATE SKIP LOCKED) AND NOT EXISTS (SELECT 1 FROM artifacts a"
                " WHERE a.sha256 = b.sha256) AND NOT EXISTS (SELECT 1 FROM trash t WHERE t.sha256"
                " = b.sha256) AND NOT EXISTS (SELECT 1 FROM binary_pins p WHERE p.sha256 ="
                " b.sha256) RETURNING b.sha256",
                1, p);
        rc = rc ? (db_rollback(c), rc) : db_commit(c);
        db_release(c);
    }
    if (rc == GR_OK)
        out->tombstoned = db_res_rows(res);
    db_res_free(res);
    res = NULL;
    /* phase 2: every tombstone (this run's and any left by an earlier one) */
    if (rc == GR_OK)
        rc = db_exec1(b->db, &res,
                      "SELECT sha256 FROM binaries WHERE tombstoned IS NOT NULL LIMIT 10000", 0,
                      NULL);
    for (int i = 0; rc == GR_OK && i < db_res_rows(res) && !b->stopping; i++)
        if (storage__collect_one(b, token, db_res_get(res, i, 0), out) == GR_ECONFLICT)
            rc = GR_EUNAVAIL; /* deposed: the new primary goes on */
    db_res_free(res);
    out->duration_ms = storage__now_ms() - t0;
    atomic_fetch_add(&b->gc_runs, 1);
    atomic_fetch_add(&b->gc_freed, (uint64_t)out->bytes_freed);
    atomic_fetch_add(&b->gc_files, (uint64_t)out->files_deleted);
    atomic_store(&b->last_gc_ms, storage__now_ms());
    atomic_store(&b->gc_running, false);
    if (out->tombstoned || out->deleted)
        gr_info("gc: tombstoned %lld, deleted %lld binaries, %lld files, %lld bytes in %lld ms",
                (long long)out->tombstoned, (long long)out->deleted, (long long)out->files_deleted,
                (long long)out->bytes_freed, (long long)out->duration_ms);
    return rc;
}
