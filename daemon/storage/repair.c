/*
 * repair.c - the primary restores `redundancy` copies of every binary in
 * distinct zones, trims extras (docs/blobs.md "Repair").
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

/* ---- repair ---- */

/* The ids of nodes[0..n) as a text[] literal into sb. */
void storage__ids(const struct storage__node *nodes, int n, struct gr_sbuf *sb)
{
    const char *v[STORAGE_MAX_NODES];
    for (int i = 0; i < n; i++)
        v[i] = nodes[i].id;
    db_text_array(sb, v, n);
}

static int storage__rank(const char *sha256, const struct storage__node *nodes, int n, int *order)
{
    struct bs_node cand[STORAGE_MAX_NODES];
    for (int i = 0; i < n; i++)
        cand[i] = (struct bs_node){.id = nodes[i].id, .zone = nodes[i].zone};
    return n > 0 ? bs_place(sha256, cand, n, NULL, n, order) : 0;
}

static bool storage__in(const char *list, const char *id)
{
    size_t n = strlen(id);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, id, n))
            return true;
        p += len + (e ? 1 : 0);
    }
    return false;
}

static bool storage__zone_in(const char *const *zones, int n, const char *zone)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(zones[i], zone))
            return true;
    return false;
}

/*
 * Delete the copy on node nd, fenced by the run's token, under the binary's
 * row lock, and only if at least R copies on other live nodes stay recorded
 * (counted under that lock: two trims that each judged from their own view
 * cannot leave fewer than R between them); then forget its location.
 * GR_OK; GR_ECONFLICT: this node is no longer the primary (stop the run);
 * anything else: this copy stays.
 */
static int storage__trim(struct storage *b, uint64_t token, const char *sha256,
                         const struct storage__node *nd, const char *live, int R)
{
    struct db_conn *c;
    if (db_acquire(b->db, 5000, &c))
        return GR_EDB;
    struct db_res *res = NULL;
    char rs[16];
    snprintf(rs, sizeof(rs), "%d", R);
    const char *p[4] = {sha256, nd->id, live, rs};
    int rc = db_begin(c);
    if (rc == GR_OK)
        rc = storage__fence(b, c, token, "trim", sha256);
    if (rc == GR_OK)
        rc = storage__lock_live(c, sha256);
    if (rc == GR_OK)
        rc = db_exec(c, &res,
                     "SELECT count(*) >= $4::int FROM binary_locations WHERE sha256 = $1 AND"
                     " node <> $2 AND node = ANY($3::text[])",
                     4, p);
    if (rc == GR_OK && db_res_get(res, 0, 0)[0] != 't')
        rc = GR_EUNAVAIL; /* fewer than R would stay: keep it */
    db_res_free(res);
    if (rc == GR_OK) {
        if (!strcmp(nd->id, b->node)) {
            int brc = bs_delete(b->bs, sha256);
            rc = brc == BS_OK || brc == BS_ENOTFOUND ? GR_OK : GR_EIO;
        } else {
            char uri[128];
            snprintf(uri, sizeof(uri), "/v1/blobs/%s", sha256);
            int st = storage__call(b, "DELETE", nd->id, nd->url, uri, "repair", NULL, 0);
            rc = st == 204 || st == 404 ? GR_OK : GR_EIO;
        }
    }
    if (rc == GR_OK)
        rc = db_exec(c, NULL, "DELETE FROM binary_locations WHERE sha256 = $1 AND node = $2", 2, p);
    rc = rc ? (db_rollback(c), rc) : db_commit(c);
    db_release(c);
    return rc;
}

void storage__pace(struct storage *b, uint64_t bytes, int64_t rate)
{
    if (rate <= 0 || bytes == 0)
        return;
    int64_t ms = (int64_t)(bytes * 1000 / (uint64_t)rate);
    for (; ms > 0 && !b->stopping; ms -= 100)
        usleep(ms > 100 ? 100000 : (useconds_t)ms * 1000);
}

int storage_repair(struct storage *b, struct storage_repair_report *out)
{
    return storage__repair_run(b, false, out);
}

int storage__repair_run(struct storage *b, bool scheduled, struct storage_repair_report *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t token = storage__run_token(b, scheduled);
    if (token == 0)
        return GR_EUNAVAIL;                  /* not the primary (any more) */
    if (storage__active(b) != STORAGE_LOCAL) /* the store keeps the copies (store.c) */
        return storage__repair_store_pass(b, out);
    if (atomic_exchange(&b->repair_running, true))
        return GR_EUNAVAIL;
    int64_t t0 = storage__now_ms();
    if (token != STORAGE_UNFENCED) {
        /* the run begins under the lease: recorded in the task log */
        struct db_conn *fc;
        int frc = db_acquire(b->db, 5000, &fc);
        if (frc == GR_OK) {
            frc = db_begin(fc);
            if (frc == GR_OK)
                frc = storage__fence(b, fc, token, "repair", "");
            frc = frc ? (db_rollback(fc), frc) : db_commit(fc);
            db_release(fc);
        }
        if (frc) {
            atomic_store(&b->repair_running, false);
            return frc == GR_ECONFLICT ? GR_EUNAVAIL : frc;
        }
    }
    storage__load_settings(b);
    storage__refresh_nodes(b); /* a node that just came back is a target */
    struct storage__node nodes[STORAGE_MAX_NODES], place[STORAGE_MAX_NODES];
    int n = storage__snapshot(b, nodes), np = 0;
    struct gr_sbuf live = GR_SBUF_INIT, live_ok = GR_SBUF_INIT;
    storage__ids(nodes, n, &live);
    struct storage__node counted[STORAGE_MAX_NODES]; /* whose copies count */
    int nc = 0;
    for (int i = 0; i < n; i++)
        if (!nodes[i].degraded)
            counted[nc++] = nodes[i];
    storage__ids(counted, nc, &live_ok);
    for (int i = 0; i < n; i++)
        if (nodes[i].placeable && (nodes[i].url[0] || !b->clustered))
            place[np++] = nodes[i];
    int R = storage__redundancy(b);
    struct storage_settings set;
    storage_get_settings(b, &set);
    char rs[16];
    snprintf(rs, sizeof(rs), "%d", R);
    const char *p[3] = {live.buf, rs, live_ok.buf};
    struct db_res *res = NULL;
    int rc = db_exec1(
        b->db, &res,
        "SELECT b.sha256, b.size, coalesce(string_agg(l.node, ',') FILTER (WHERE l.node ="
        " ANY($1::text[])), '') FROM binaries b LEFT JOIN binary_locations l USING (sha256)"
        " WHERE b.tombstoned IS NULL GROUP BY b.sha256, b.size HAVING count(l.node) FILTER"
        " (WHERE l.node = ANY($3::text[])) <> $2::int LIMIT 1000",
        3, p);
    gr_sbuf_release(&live);
    bool deposed = false;
    for (int i = 0; rc == GR_OK && i < db_res_rows(res) && !b->stopping && !deposed; i++) {
        const char *sha = db_res_get(res, i, 0), *holders = db_res_get(res, i, 2);
        uint64_t size = strtoull(db_res_get(res, i, 1), NULL, 10);
        int order[STORAGE_MAX_NODES], k = storage__rank(sha, place, np, order), have = 0;
        out->checked++;
        int sources = 0;
        for (int j = 0; j < n; j++) {
            sources += storage__in(holders, nodes[j].id);
            have += storage__in(holders, nodes[j].id) && !nodes[j].degraded;
        }
        if (sources == 0) {
            out->unavailable++;
            continue;
        }
        if (have < R) {
            /* sources: live holders with a cluster port */
            struct gr_sbuf from = GR_SBUF_INIT;
            for (int j = 0; j < n; j++)
                if (storage__in(holders, nodes[j].id) && nodes[j].url[0]) {
                    gr_sbuf_adds(&from, from.len ? "," : "");
                    gr_sbuf_adds(&from, nodes[j].id);
                }
            /* targets in placement order, first those in a zone that holds
             * no copy yet (as at upload), then any */
            const char *zones[STORAGE_MAX_NODES];
            int nz = 0;
            bool tried[STORAGE_MAX_NODES] = {false};
            for (int j = 0; j < n; j++)
                if (storage__in(holders, nodes[j].id))
                    zones[nz++] = nodes[j].zone;
            for (int pass = 0; pass < 2 && have < R; pass++)
                for (int j = 0; j < k && have < R && from.len; j++) {
                    const struct storage__node *t = &place[order[j]];
                    if (tried[order[j]] || storage__in(holders, t->id) ||
                        (pass == 0 && storage__zone_in(zones, nz, t->zone)))
                        continue;
                    tried[order[j]] = true;
                    char uri[400], body[256];
                    snprintf(uri, sizeof(uri), "/v1/blobs/%s/pull?from=%s", sha, from.buf);
                    int st =
                        storage__call(b, "POST", t->id, t->url, uri, "repair", body, sizeof(body));
                    if (st == 200) {
                        have++;
                        if (nz < STORAGE_MAX_NODES)
                            zones[nz++] = t->zone;
                        out->copied++;
                        out->bytes += (int64_t)size;
                        atomic_fetch_add(&b->repaired, 1);
                        gr_info("repair: copied %s to %s", sha, t->id);
                        storage__pace(b, size, set.repair_rate);
                    } else {
                        out->failed++;
                        gr_warn("repair: copy of %s to %s failed: %d %s", sha, t->id, st, body);
                    }
                }
            gr_sbuf_release(&from);
        } else if (have > R) {
            /* keep the R best-placed holders, trim the others */
            int kept = 0;
            bool keep[STORAGE_MAX_NODES] = {false};
            for (int j = 0; j < k && kept < R; j++)
                if (storage__in(holders, place[order[j]].id)) {
                    keep[order[j]] = true;
                    kept++;
                }
            for (int j = 0; j < np && have > R && !deposed; j++) {
                if (keep[j] || !storage__in(holders, place[j].id) || kept < R)
                    continue;
                int trc = storage__trim(b, token, sha, &place[j], live_ok.buf, R);
                if (trc == GR_ECONFLICT) {
                    deposed = true;
                } else if (trc == GR_OK) {
                    have--;
                    out->trimmed++;
                    atomic_fetch_add(&b->trimmed, 1);
                    gr_info("repair: trimmed the extra copy of %s on %s", sha, place[j].id);
                }
            }
        }
    }
    db_res_free(res);
    gr_sbuf_release(&live_ok);
    if (deposed)
        gr_warn("repair: run stopped: this node is no longer the primary");
    out->duration_ms = storage__now_ms() - t0;
    atomic_fetch_add(&b->repair_runs, 1);
    atomic_store(&b->last_repair_ms, storage__now_ms());
    atomic_store(&b->repair_running, false);
    if (out->copied || out->trimmed || out->failed)
        gr_info("repair: checked %lld, copied %lld, trimmed %lld, failed %lld, unavailable %lld"
                " in %lld ms",
                (long long)out->checked, (long long)out->copied, (long long)out->trimmed,
                (long long)out->failed, (long long)out->unavailable, (long long)out->duration_ms);
    return rc;
}
