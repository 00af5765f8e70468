/*
 * blobtasks.c - the storage thread: membership and settings, stage expiry,
 * the start-up inventory, scrub (every node), and repair and garbage
 * collection (on the primary, or on demand on any node).
 */
#include "repo/blobs_internal.h"

#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "bs.h"
#include "cluster/cluster.h"
#include "crypto/crypto.h"
#include "db/db.h"
#include "peer.h"
#include "repo/internal.h"
#include "repo/repo.h"

#include <errno.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOBS_TICK_MS 1000
#define BLOBS_REPAIR_EVERY_MS 30000
#define BLOBS_STAGE_MAX_AGE_S 900
#define BLOBS_BATCH 500
#define BLOBS_STATUS_EVERY_MS 15000
#define BLOBS_SCRUB_PAUSE_MS (10 * 60 * 1000) /* between the end of a pass and the next */
#define BLOBS_ORPHAN_AGE_S 3600               /* unknown files younger than this may be in flight */

static const struct blobs_settings blobs__defaults = {
    .redundancy = 2,
    .lenient_limit = 1,
    .gc_grace_s = 3600,
    .gc_interval_s = 3600,
    .scrub_rate = 8 << 20,
    .repair_rate = 64 << 20,
};

/* ---- settings ---- */

static void blobs__load_settings(struct blobs *b)
{
    struct db_res *res = NULL;
    struct blobs_settings s = blobs__defaults;
    if (db_exec1(b->ctx->db, &res, "SELECT key, value FROM settings WHERE key LIKE 'storage.%'", 0,
                 NULL) != GR_OK) {
        db_res_free(res);
        return;
    }
    for (int i = 0; i < db_res_rows(res); i++) {
        const char *k = db_res_get(res, i, 0) + 8;
        long long v = strtoll(db_res_get(res, i, 1), NULL, 10);
        if (!strcmp(k, "redundancy"))
            s.redundancy = (int)v;
        else if (!strcmp(k, "lenient_limit"))
            s.lenient_limit = (int)v;
        else if (!strcmp(k, "gc_grace_s"))
            s.gc_grace_s = v;
        else if (!strcmp(k, "gc_interval_s"))
            s.gc_interval_s = v;
        else if (!strcmp(k, "scrub_rate"))
            s.scrub_rate = v;
        else if (!strcmp(k, "repair_rate"))
            s.repair_rate = v;
    }
    db_res_free(res);
    pthread_mutex_lock(&b->lock);
    b->set = s;
    pthread_mutex_unlock(&b->lock);
}

int blobs_placement_nodes(struct blobs *b)
{
    int n = 0;
    pthread_mutex_lock(&b->lock);
    for (int i = 0; i < b->n_nodes; i++)
        if (b->nodes[i].placeable && (b->nodes[i].url[0] || !b->clustered))
            n++;
    pthread_mutex_unlock(&b->lock);
    return n;
}

void blobs_get_settings(struct blobs *b, struct blobs_settings *out)
{
    pthread_mutex_lock(&b->lock);
    *out = b->set;
    pthread_mutex_unlock(&b->lock);
}

int blobs_set_settings(struct blobs *b, const struct blobs_settings *s)
{
    if (s->redundancy < 1 || s->redundancy > 16 || s->lenient_limit < 1 ||
        s->lenient_limit > s->redundancy || s->gc_grace_s < 0 || s->gc_interval_s < 0 ||
        s->scrub_rate < 0 || s->repair_rate < 1024)
        return GR_EINVAL;
    char v[6][24];
    snprintf(v[0], 24, "%d", s->redundancy);
    snprintf(v[1], 24, "%d", s->lenient_limit);
    snprintf(v[2], 24, "%lld", (long long)s->gc_grace_s);
    snprintf(v[3], 24, "%lld", (long long)s->gc_interval_s);
    snprintf(v[4], 24, "%lld", (long long)s->scrub_rate);
    snprintf(v[5], 24, "%lld", (long long)s->repair_rate);
    const char *p[6] = {v[0], v[1], v[2], v[3], v[4], v[5]};
    int rc = db_exec1(b->ctx->db, NULL,
                      "INSERT INTO settings (key, value) VALUES ('storage.redundancy', $1),"
                      " ('storage.lenient_limit', $2), ('storage.gc_grace_s', $3),"
                      " ('storage.gc_interval_s', $4), ('storage.scrub_rate', $5),"
                      " ('storage.repair_rate', $6)"
                      " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                      6, p);
    if (rc == GR_OK) {
        pthread_mutex_lock(&b->lock);
        b->set = *s;
        pthread_mutex_unlock(&b->lock);
    }
    return rc;
}

/* ---- membership ---- */

static void blobs__refresh_nodes(struct blobs *b)
{
    struct blobs__node nodes[BLOBS_MAX_NODES];
    int n = 0;
    if (!b->clustered) {
        snprintf(nodes[0].id, sizeof(nodes[0].id), "%s", b->node);
        snprintf(nodes[0].zone, sizeof(nodes[0].zone), "%s", b->zone);
        nodes[0].url[0] = '\0';
        nodes[0].placeable = true;
        n = 1;
    } else {
        char ms[24];
        snprintf(ms, sizeof(ms), "%d", b->down_after_ms);
        const char *p[1] = {ms};
        struct db_res *res = NULL;
        if (db_exec1(b->ctx->db, &res,
                     "SELECT id, cluster_url, zone, state = 'active' FROM cluster_nodes"
                     " WHERE state <> 'down' AND heartbeat > now() - make_interval(secs =>"
                     " $1::double precision / 1000) ORDER BY id",
                     1, p) != GR_OK) {
            db_res_free(res);
            return; /* keep the last view */
        }
        for (int i = 0; i < db_res_rows(res) && n < BLOBS_MAX_NODES; i++, n++) {
            snprintf(nodes[n].id, sizeof(nodes[n].id), "%s", db_res_get(res, i, 0));
            snprintf(nodes[n].url, sizeof(nodes[n].url), "%s", db_res_get(res, i, 1));
            snprintf(nodes[n].zone, sizeof(nodes[n].zone), "%s", db_res_get(res, i, 2));
            nodes[n].placeable = db_res_get(res, i, 3)[0] == 't';
        }
        db_res_free(res);
    }
    pthread_mutex_lock(&b->lock);
    memcpy(b->nodes, nodes, (size_t)n * sizeof(nodes[0]));
    b->n_nodes = n;
    pthread_mutex_unlock(&b->lock);
}

/* ---- inventory: the filestore's identity, and adopting local files ---- */

struct blobs__batch {
    struct blobs *b;
    struct gr_sbuf arr;
    char sha[BLOBS_BATCH][65];
    int n;
    int64_t adopted, orphans;
    bool sweep; /* also delete old files no binary row knows (scrub) */
};

/*
 * A file no binary row knows of (a publication rolled back after this node
 * had published its copy): delete it once it is old, under the binary's
 * advisory lock, which every upload takes before it publishes a copy (an
 * upload that is publishing the same content right now would otherwise
 * find this file in place, count on it, and lose it).
 */
static bool blobs__sweep_orphan(struct blobs *b, const char *sha256)
{
    char path[1024];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%.2s/%s", bs_root(b->ctx->bs), sha256, sha256);
    if (stat(path, &st) || time(NULL) - st.st_mtime < BLOBS_ORPHAN_AGE_S)
        return false;
    struct db_conn *c;
    if (db_acquire(b->ctx->db, 5000, &c))
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
    if (orphan && bs_delete(b->ctx->bs, sha256) == BS_OK)
        gr_info("storage: deleted %s, a copy no binary row knows of", sha256);
    else
        orphan = false;
    if (rc == GR_OK)
        db_rollback(c); /* nothing to commit: the lock goes with the transaction */
    db_release(c);
    return orphan;
}

static void blobs__adopt_flush(struct blobs__batch *bt)
{
    if (bt->n == 0)
        return;
    const char *v[BLOBS_BATCH];
    for (int i = 0; i < bt->n; i++)
        v[i] = bt->sha[i];
    repo__pg_array(&bt->arr, v, bt->n);
    const char *p[2] = {bt->arr.buf, bt->b->node};
    struct db_res *res = NULL;
    if (db_exec1(bt->b->ctx->db, &res,
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
        db_exec1(bt->b->ctx->db, &res,
                 "SELECT s FROM unnest($1::text[]) s WHERE NOT EXISTS (SELECT 1 FROM binaries b"
                 " WHERE b.sha256 = s)",
                 1, p) == GR_OK)
        for (int i = 0; i < db_res_rows(res); i++)
            bt->orphans += blobs__sweep_orphan(bt->b, db_res_get(res, i, 0));
    db_res_free(res);
    gr_sbuf_reset(&bt->arr);
    bt->n = 0;
}

static int blobs__adopt_one(void *arg, const char *sha256, uint64_t size)
{
    struct blobs__batch *bt = arg;
    (void)size;
    snprintf(bt->sha[bt->n], sizeof(bt->sha[0]), "%s", sha256);
    if (++bt->n >= BLOBS_BATCH)
        blobs__adopt_flush(bt);
    return 0;
}

static int blobs__inventory(struct blobs *b)
{
    char key[128];
    snprintf(key, sizeof(key), "storage.store_id:%s", b->node);
    const char *id = bs_store_id(b->ctx->bs);
    const char *p[3] = {key, id, b->node};
    struct db_res *res = NULL;
    int rc = db_exec1(b->ctx->db, &res, "SELECT value FROM settings WHERE key = $1", 1, p);
    if (rc) {
        db_res_free(res);
        return rc;
    }
    if (db_res_rows(res) == 1 && strcmp(db_res_get(res, 0, 0), id)) {
        gr_warn("storage: this node's filestore is new (id %s, was %s): forgetting its copies", id,
                db_res_get(res, 0, 0));
        if (db_exec1(b->ctx->db, NULL, "DELETE FROM binary_locations WHERE node = $1", 1, &p[2]) !=
            GR_OK)
            gr_warn("storage: could not forget this node's copies");
    }
    db_res_free(res);
    rc = db_exec1(b->ctx->db, NULL,
                  "INSERT INTO settings (key, value) VALUES ($1, $2)"
                  " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                  2, p);
    if (rc)
        return rc;
    struct blobs__batch bt = {.b = b, .arr = GR_SBUF_INIT};
    if (bs_each(b->ctx->bs, NULL, blobs__adopt_one, &bt) != BS_OK)
        gr_warn("storage: could not list the filestore");
    blobs__adopt_flush(&bt);
    gr_sbuf_release(&bt.arr);
    if (bt.adopted)
        gr_info("storage: recorded %lld local copies", (long long)bt.adopted);
    return GR_OK;
}

/* ---- scrub ---- */

struct blobs__scrub {
    struct blobs *b;
    struct blobs_scrub_report *rep;
    int64_t budget; /* bytes left in this slice; < 0: unlimited */
    char last[65];
};

/* Pull a good copy after this node's was quarantined. */
static bool blobs__heal(struct blobs *b, const char *sha256)
{
    struct blobs__node nodes[BLOBS_MAX_NODES];
    int n = blobs__snapshot(b, nodes);
    const char *p[1] = {sha256};
    struct db_res *res = NULL;
    if (db_exec1(b->ctx->db, &res, "SELECT node FROM binary_locations WHERE sha256 = $1", 1, p) !=
        GR_OK) {
        db_res_free(res);
        return false;
    }
    struct gr_sbuf src = GR_SBUF_INIT;
    for (int i = 0; i < db_res_rows(res); i++)
        for (int k = 0; k < n; k++)
            if (!strcmp(nodes[k].id, db_res_get(res, i, 0)) && strcmp(nodes[k].id, b->node) &&
                nodes[k].url[0]) {
                gr_sbuf_adds(&src, src.len ? "," : "");
                gr_sbuf_adds(&src, nodes[k].url);
            }
    db_res_free(res);
    bool ok = src.len && blobs_pull(b->ctx, sha256, src.buf, "scrub") == GR_OK;
    gr_sbuf_release(&src);
    return ok;
}

static int blobs__scrub_one(void *arg, const char *sha256, uint64_t size)
{
    struct blobs__scrub *s = arg;
    struct blobs *b = s->b;
    if (s->budget >= 0 && s->budget <= 0)
        return 1; /* this slice is spent */
    snprintf(s->last, sizeof(s->last), "%s", sha256);
    int fd;
    uint64_t sz;
    if (bs_open_blob(b->ctx->bs, sha256, &fd, &sz) != BS_OK)
        return 0; /* deleted meanwhile */
    char hex[65];
    int hrc = blobs__hash_file(fd, hex);
    close(fd);
    if (hrc)
        return 0; /* out of memory or an I/O error: try again next pass */
    s->rep->files++;
    s->rep->bytes += (int64_t)size;
    if (s->budget > 0)
        s->budget = s->budget > (int64_t)size + 1 ? s->budget - (int64_t)size - 1 : 0;
    atomic_fetch_add(&b->scrubbed_files, 1);
    atomic_fetch_add(&b->scrubbed_bytes, size);
    if (strcmp(hex, sha256)) {
        s->rep->bad++;
        atomic_fetch_add(&b->scrub_bad, 1);
        blobs_bad_local_copy(b->ctx, sha256, "scrub: sha256 mismatch");
        if (blobs__heal(b, sha256)) {
            s->rep->healed++;
            gr_info("scrub: %s healed from a peer", sha256);
        }
        return 0;
    }
    int vrc = bs_verify_blocks(b->ctx->bs, sha256);
    if (vrc == BS_ECORRUPT || vrc == BS_ENOCRC) {
        /* the content is good: only its block checksums were wrong */
        gr_warn("scrub: %s had bad block checksums; rebuilt", sha256);
        if (bs_crc_rebuild(b->ctx->bs, sha256) != BS_OK)
            gr_warn("scrub: cannot rebuild the block checksums of %s", sha256);
    }
    return 0;
}

/* Locations of this node whose file is gone: forget them (repair restores). */
static int64_t blobs__forget_missing(struct blobs *b)
{
    const char *p[1] = {b->node};
    struct db_res *res = NULL;
    int64_t missing = 0;
    if (db_exec1(b->ctx->db, &res, "SELECT sha256 FROM binary_locations WHERE node = $1", 1, p) ==
        GR_OK)
        for (int i = 0; i < db_res_rows(res); i++)
            if (!bs_has(b->ctx->bs, db_res_get(res, i, 0))) {
                gr_warn("scrub: copy of %s is missing on this node", db_res_get(res, i, 0));
                blobs_forget_local(b->ctx, db_res_get(res, i, 0));
                missing++;
            }
    db_res_free(res);
    if (missing)
        blobs_kick_repair(b);
    return missing;
}

int blobs_scrub(struct repo_ctx *ctx, struct blobs_scrub_report *out)
{
    struct blobs *b = ctx->blobs;
    memset(out, 0, sizeof(*out));
    if (atomic_exchange(&b->scrub_running, true))
        return GR_EUNAVAIL;
    int64_t t0 = blobs__now_ms();
    struct blobs__scrub s = {.b = b, .rep = out, .budget = -1};
    int rc = bs_each(ctx->bs, NULL, blobs__scrub_one, &s) == BS_OK ? GR_OK : GR_EIO;
    out->missing = blobs__forget_missing(b);
    struct blobs__batch bt = {.b = b, .arr = GR_SBUF_INIT, .sweep = true};
    if (bs_each(ctx->bs, NULL, blobs__adopt_one, &bt) == BS_OK)
        blobs__adopt_flush(&bt);
    gr_sbuf_release(&bt.arr);
    out->adopted = bt.adopted;
    out->orphans = bt.orphans;
    out->duration_ms = blobs__now_ms() - t0;
    atomic_store(&b->last_scrub_ms, blobs__now_ms());
    atomic_store(&b->scrub_running, false);
    gr_info("scrub: %lld files, %lld bytes, %lld bad, %lld healed, %lld missing in %lld ms",
            (long long)out->files, (long long)out->bytes, (long long)out->bad,
            (long long)out->healed, (long long)out->missing, (long long)out->duration_ms);
    return rc;
}

/* The thread's slow scrub: about rate bytes per tick-second, resumable. */
static void blobs__scrub_slice(struct blobs *b, int64_t rate)
{
    if (rate <= 0 || (!b->scrub_cursor[0] &&
                      blobs__now_ms() - atomic_load(&b->last_scrub_ms) < BLOBS_SCRUB_PAUSE_MS))
        return; /* a pass ended recently: the next one starts later */
    if (atomic_exchange(&b->scrub_running, true))
        return;
    struct blobs_scrub_report rep = {0};
    struct blobs__scrub s = {.b = b, .rep = &rep, .budget = rate};
    snprintf(s.last, sizeof(s.last), "%s", b->scrub_cursor);
    int rc = bs_each(b->ctx->bs, b->scrub_cursor, blobs__scrub_one, &s);
    if (rc == BS_OK) {
        /* reached the end: a pass is complete */
        b->scrub_cursor[0] = '\0';
        blobs__forget_missing(b);
        atomic_store(&b->last_scrub_ms, blobs__now_ms());
    } else if (rc == 1) {
        snprintf(b->scrub_cursor, sizeof(b->scrub_cursor), "%s", s.last); /* slice spent */
    }
    atomic_store(&b->scrub_running, false);
}

/* ---- repair ---- */

/* The ids of nodes[0..n) as a text[] literal into sb. */
static void blobs__ids(const struct blobs__node *nodes, int n, struct gr_sbuf *sb)
{
    const char *v[BLOBS_MAX_NODES];
    for (int i = 0; i < n; i++)
        v[i] = nodes[i].id;
    repo__pg_array(sb, v, n);
}

static int blobs__rank(const char *sha256, const struct blobs__node *nodes, int n, int *order)
{
    struct bs_node cand[BLOBS_MAX_NODES];
    for (int i = 0; i < n; i++)
        cand[i] = (struct bs_node){.id = nodes[i].id, .zone = nodes[i].zone};
    return n > 0 ? bs_place(sha256, cand, n, NULL, n, order) : 0;
}

static bool blobs__in(const char *list, const char *id)
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

static bool blobs__zone_in(const char *const *zones, int n, const char *zone)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(zones[i], zone))
            return true;
    return false;
}

/* Delete the copy on node under the row lock, then its location. */
static bool blobs__trim(struct blobs *b, const char *sha256, const struct blobs__node *nd)
{
    struct db_conn *c;
    if (db_acquire(b->ctx->db, 5000, &c))
        return false;
    struct db_res *res = NULL;
    const char *p[2] = {sha256, nd->id};
    int rc = db_begin(c);
    if (rc == GR_OK)
        rc = db_exec(c, &res,
                     "SELECT 1 FROM binaries WHERE sha256 = $1 AND tombstoned IS NULL FOR UPDATE",
                     1, p);
    if (rc == GR_OK && db_res_rows(res) == 0)
        rc = GR_ENOTFOUND;
    db_res_free(res);
    if (rc == GR_OK) {
        if (!strcmp(nd->id, b->node)) {
            int brc = bs_delete(b->ctx->bs, sha256);
            rc = brc == BS_OK || brc == BS_ENOTFOUND ? GR_OK : GR_EIO;
        } else {
            char uri[128];
            snprintf(uri, sizeof(uri), "/v1/blobs/%s", sha256);
            int st = blobs__call(b, "DELETE", nd->id, nd->url, uri, "repair", NULL, 0);
            rc = st == 204 || st == 404 ? GR_OK : GR_EIO;
        }
    }
    if (rc == GR_OK)
        rc = db_exec(c, NULL, "DELETE FROM binary_locations WHERE sha256 = $1 AND node = $2", 2, p);
    rc = rc ? (db_rollback(c), rc) : db_commit(c);
    db_release(c);
    return rc == GR_OK;
}

static void blobs__pace(struct blobs *b, uint64_t bytes, int64_t rate)
{
    if (rate <= 0 || bytes == 0)
        return;
    int64_t ms = (int64_t)(bytes * 1000 / (uint64_t)rate);
    for (; ms > 0 && !b->stopping; ms -= 100)
        usleep(ms > 100 ? 100000 : (useconds_t)ms * 1000);
}

int blobs_repair(struct repo_ctx *ctx, struct blobs_repair_report *out)
{
    struct blobs *b = ctx->blobs;
    memset(out, 0, sizeof(*out));
    if (atomic_exchange(&b->repair_running, true))
        return GR_EUNAVAIL;
    int64_t t0 = blobs__now_ms();
    blobs__load_settings(b);
    blobs__refresh_nodes(b); /* a node that just came back is a target */
    struct blobs__node nodes[BLOBS_MAX_NODES], place[BLOBS_MAX_NODES];
    int n = blobs__snapshot(b, nodes), np = 0;
    struct gr_sbuf live = GR_SBUF_INIT;
    blobs__ids(nodes, n, &live);
    for (int i = 0; i < n; i++)
        if (nodes[i].placeable && (nodes[i].url[0] || !b->clustered))
            place[np++] = nodes[i];
    int R = blobs__redundancy(b);
    struct blobs_settings set;
    blobs_get_settings(b, &set);
    char rs[16];
    snprintf(rs, sizeof(rs), "%d", R);
    const char *p[2] = {live.buf, rs};
    struct db_res *res = NULL;
    int rc = db_exec1(
        ctx->db, &res,
        "SELECT b.sha256, b.size, coalesce(string_agg(l.node, ',') FILTER (WHERE l.node ="
        " ANY($1::text[])), '') FROM binaries b LEFT JOIN binary_locations l USING (sha256)"
        " WHERE b.tombstoned IS NULL GROUP BY b.sha256, b.size HAVING count(l.node) FILTER"
        " (WHERE l.node = ANY($1::text[])) <> $2::int LIMIT 1000",
        2, p);
    gr_sbuf_release(&live);
    for (int i = 0; rc == GR_OK && i < db_res_rows(res) && !b->stopping; i++) {
        const char *sha = db_res_get(res, i, 0), *holders = db_res_get(res, i, 2);
        uint64_t size = strtoull(db_res_get(res, i, 1), NULL, 10);
        int order[BLOBS_MAX_NODES], k = blobs__rank(sha, place, np, order), have = 0;
        out->checked++;
        for (int j = 0; j < n; j++)
            have += blobs__in(holders, nodes[j].id);
        if (have == 0) {
            out->unavailable++;
            continue;
        }
        if (have < R) {
            /* sources: live holders with a cluster port */
            struct gr_sbuf from = GR_SBUF_INIT;
            for (int j = 0; j < n; j++)
                if (blobs__in(holders, nodes[j].id) && nodes[j].url[0]) {
                    gr_sbuf_adds(&from, from.len ? "," : "");
                    gr_sbuf_adds(&from, nodes[j].id);
                }
            /* targets in placement order, first those in a zone that holds
             * no copy yet (as at upload), then any */
            const char *zones[BLOBS_MAX_NODES];
            int nz = 0;
            bool tried[BLOBS_MAX_NODES] = {false};
            for (int j = 0; j < n; j++)
                if (blobs__in(holders, nodes[j].id))
                    zones[nz++] = nodes[j].zone;
            for (int pass = 0; pass < 2 && have < R; pass++)
                for (int j = 0; j < k && have < R && from.len; j++) {
                    const struct blobs__node *t = &place[order[j]];
                    if (tried[order[j]] || blobs__in(holders, t->id) ||
                        (pass == 0 && blobs__zone_in(zones, nz, t->zone)))
                        continue;
                    tried[order[j]] = true;
                    char uri[400], body[256];
                    snprintf(uri, sizeof(uri), "/v1/blobs/%s/pull?from=%s", sha, from.buf);
                    int st =
                        blobs__call(b, "POST", t->id, t->url, uri, "repair", body, sizeof(body));
                    if (st == 200) {
                        have++;
                        if (nz < BLOBS_MAX_NODES)
                            zones[nz++] = t->zone;
                        out->copied++;
                        out->bytes += (int64_t)size;
                        atomic_fetch_add(&b->repaired, 1);
                        gr_info("repair: copied %s to %s", sha, t->id);
                        blobs__pace(b, size, set.repair_rate);
                    } else {
                        out->failed++;
                        gr_warn("repair: copy of %s to %s failed: %d %s", sha, t->id, st, body);
                    }
                }
            gr_sbuf_release(&from);
        } else if (have > R) {
            /* keep the R best-placed holders, trim the others */
            int kept = 0;
            bool keep[BLOBS_MAX_NODES] = {false};
            for (int j = 0; j < k && kept < R; j++)
                if (blobs__in(holders, place[order[j]].id)) {
                    keep[order[j]] = true;
                    kept++;
                }
            for (int j = 0; j < np && have > R; j++)
                if (!keep[j] && blobs__in(holders, place[j].id) && kept >= R &&
                    blobs__trim(b, sha, &place[j])) {
                    have--;
                    out->trimmed++;
                    atomic_fetch_add(&b->trimmed, 1);
                    gr_info("repair: trimmed the extra copy of %s on %s", sha, place[j].id);
                }
        }
    }
    db_res_free(res);
    out->duration_ms = blobs__now_ms() - t0;
    atomic_fetch_add(&b->repair_runs, 1);
    atomic_store(&b->last_repair_ms, blobs__now_ms());
    atomic_store(&b->repair_running, false);
    if (out->copied || out->trimmed || out->failed)
        gr_info("repair: checked %lld, copied %lld, trimmed %lld, failed %lld, unavailable %lld"
                " in %lld ms",
                (long long)out->checked, (long long)out->copied, (long long)out->trimmed,
                (long long)out->failed, (long long)out->unavailable, (long long)out->duration_ms);
    return rc;
}

/* ---- garbage collection ---- */

/* Phase 2 for one tombstoned binary: delete its files under the row lock. */
static void blobs__collect_one(struct blobs *b, const char *sha256, struct blobs_gc_report *out)
{
    struct db_conn *c;
    if (db_acquire(b->ctx->db, 5000, &c))
        return;
    struct db_res *res = NULL;
    const char *p[2] = {sha256, NULL};
    int rc = db_begin(c);
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
                     " EXISTS (SELECT 1 FROM trash WHERE sha256 = $1)",
                     1, p);
        if (rc == GR_OK && db_res_get(res, 0, 0)[0] == 't') {
            db_res_free(res);
            res = NULL;
            rc = db_exec(c, NULL, "UPDATE binaries SET tombstoned = NULL WHERE sha256 = $1", 1, p);
            rc = rc ? (db_rollback(c), rc) : db_commit(c);
            db_release(c);
            out->revived++;
            return;
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
        return;
    }
    uint64_t size = strtoull(db_res_get(res, 0, 0), NULL, 10);
    char *holders = strdup(db_res_get(res, 0, 1));
    db_res_free(res);
    int left = 0;
    for (char *save = NULL, *id = holders ? strtok_r(holders, ",", &save) : NULL; id;
         id = strtok_r(NULL, ",", &save)) {
        bool gone = false;
        if (!strcmp(id, b->node)) {
            int brc = bs_delete(b->ctx->bs, sha256);
            gone = brc == BS_OK || brc == BS_ENOTFOUND;
        } else {
            char url[256], uri[128];
            snprintf(uri, sizeof(uri), "/v1/blobs/%s", sha256);
            if (blobs__node_url(b, id, url, sizeof(url))) {
                int st = blobs__call(b, "DELETE", id, url, uri, "gc", NULL, 0);
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
}

int blobs_gc(struct repo_ctx *ctx, int64_t grace_s, struct blobs_gc_report *out)
{
    struct blobs *b = ctx->blobs;
    memset(out, 0, sizeof(*out));
    if (atomic_exchange(&b->gc_running, true))
        return GR_EUNAVAIL;
    int64_t t0 = blobs__now_ms();
    blobs__refresh_nodes(b);
    if (grace_s < 0) {
        struct blobs_settings s;
        blobs_get_settings(b, &s);
        grace_s = s.gc_grace_s;
    }
    char gs[24];
    snprintf(gs, sizeof(gs), "%lld", (long long)grace_s);
    const char *p[1] = {gs};
    struct db_res *res = NULL;
    /* phase 1: tombstone, in a committed transaction, what nothing references */
    int rc = db_exec1(
        ctx->db, &res,
        "UPDATE binaries b SET tombstoned = now() WHERE b.sha256 IN (SELECT x.sha256 FROM"
        " binaries x WHERE x.tombstoned IS NULL AND x.touched < now() - make_interval(secs =>"
        " $1::double precision) AND NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.sha256 ="
        " x.sha256) AND NOT EXISTS (SELECT 1 FROM trash t WHERE t.sha256 = x.sha256) LIMIT 10000"
        " FOR UPDATE SKIP LOCKED) AND NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.sha256 ="
        " b.sha256) AND NOT EXISTS (SELECT 1 FROM trash t WHERE t.sha256 = b.sha256)"
        " RETURNING b.sha256",
        1, p);
    if (rc == GR_OK)
        out->tombstoned = db_res_rows(res);
    db_res_free(res);
    res = NULL;
    /* phase 2: every tombstone (this run's and any left by an earlier one) */
    if (rc == GR_OK)
        rc = db_exec1(ctx->db, &res,
                      "SELECT sha256 FROM binaries WHERE tombstoned IS NOT NULL LIMIT 10000", 0,
                      NULL);
    for (int i = 0; rc == GR_OK && i < db_res_rows(res) && !b->stopping; i++)
        blobs__collect_one(b, db_res_get(res, i, 0), out);
    db_res_free(res);
    out->duration_ms = blobs__now_ms() - t0;
    atomic_fetch_add(&b->gc_runs, 1);
    atomic_fetch_add(&b->gc_freed, (uint64_t)out->bytes_freed);
    atomic_fetch_add(&b->gc_files, (uint64_t)out->files_deleted);
    atomic_store(&b->last_gc_ms, blobs__now_ms());
    atomic_store(&b->gc_running, false);
    if (out->tombstoned || out->deleted)
        gr_info("gc: tombstoned %lld, deleted %lld binaries, %lld files, %lld bytes in %lld ms",
                (long long)out->tombstoned, (long long)out->deleted, (long long)out->files_deleted,
                (long long)out->bytes_freed, (long long)out->duration_ms);
    return rc;
}

/* ---- status ---- */

int blobs_status(struct repo_ctx *ctx, bool fresh, struct blobs_status *out)
{
    struct blobs *b = ctx->blobs;
    memset(out, 0, sizeof(*out));
    if (!b)
        return GR_OK;
    int rc = GR_OK;
    if (fresh) {
        blobs__refresh_nodes(b);
        struct blobs__node nodes[BLOBS_MAX_NODES];
        int n = blobs__snapshot(b, nodes);
        struct gr_sbuf live = GR_SBUF_INIT;
        blobs__ids(nodes, n, &live);
        char rs[16];
        snprintf(rs, sizeof(rs), "%d", blobs__redundancy(b));
        const char *p[2] = {live.buf, rs};
        struct db_res *res = NULL;
        rc = db_exec1(ctx->db, &res,
                      "SELECT count(*), count(*) FILTER (WHERE c > 0 AND c < $2::int),"
                      " count(*) FILTER (WHERE c = 0 AND NOT t), count(*) FILTER (WHERE c >"
                      " $2::int), count(*) FILTER (WHERE t) FROM (SELECT b.sha256,"
                      " b.tombstoned IS NOT NULL t, count(l.node) FILTER (WHERE l.node ="
                      " ANY($1::text[])) c FROM binaries b LEFT JOIN binary_locations l USING"
                      " (sha256) GROUP BY b.sha256, b.tombstoned) s",
                      2, p);
        gr_sbuf_release(&live);
        if (rc == GR_OK && db_res_rows(res) == 1) {
            pthread_mutex_lock(&b->lock);
            for (int i = 0; i < 5; i++)
                b->counts[i] = strtoll(db_res_get(res, 0, i), NULL, 10);
            pthread_mutex_unlock(&b->lock);
        }
        db_res_free(res);
    }
    pthread_mutex_lock(&b->lock);
    out->binaries = b->counts[0];
    out->under_replicated = b->counts[1];
    out->unavailable = b->counts[2];
    out->over_replicated = b->counts[3];
    out->tombstoned = b->counts[4];
    pthread_mutex_unlock(&b->lock);
    out->replicated_copies = atomic_load(&b->replicated);
    out->replication_failures = atomic_load(&b->repl_failures);
    out->remote_reads = atomic_load(&b->remote_reads);
    out->remote_read_failures = atomic_load(&b->remote_failures);
    out->holder_cache_hits = atomic_load(&b->holder_hits);
    out->holder_queries = atomic_load(&b->holder_queries);
    out->holder_cache_stale = atomic_load(&b->holder_stale);
    struct bs_peer_stats ps;
    bs_peer_stats(&ps);
    out->peer_connections = ps.connections;
    out->peer_sessions_reused = ps.sessions_reused;
    out->bad_copies = atomic_load(&b->bad_copies);
    out->quarantined = atomic_load(&b->quarantined);
    out->scrubbed_files = atomic_load(&b->scrubbed_files);
    out->scrubbed_bytes = atomic_load(&b->scrubbed_bytes);
    out->scrub_bad = atomic_load(&b->scrub_bad);
    out->repaired = atomic_load(&b->repaired);
    out->trimmed = atomic_load(&b->trimmed);
    out->repair_runs = atomic_load(&b->repair_runs);
    out->gc_runs = atomic_load(&b->gc_runs);
    out->gc_bytes_freed = atomic_load(&b->gc_freed);
    out->gc_files_deleted = atomic_load(&b->gc_files);
    out->repair_running = atomic_load(&b->repair_running);
    out->gc_running = atomic_load(&b->gc_running);
    out->scrub_running = atomic_load(&b->scrub_running);
    out->last_repair_ms = atomic_load(&b->last_repair_ms);
    out->last_gc_ms = atomic_load(&b->last_gc_ms);
    out->last_scrub_ms = atomic_load(&b->last_scrub_ms);
    return rc;
}

/* ---- the thread ---- */

void blobs_kick_repair(struct blobs *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->kick = true;
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->lock);
}

static bool blobs__primary(struct blobs *b)
{
    return !b->clustered || cluster_is_primary(b->ctx->cluster);
}

static void *blobs__thread(void *arg)
{
    struct blobs *b = arg;
    int64_t last_repair = 0, last_gc = blobs__now_ms(), last_expire = 0, last_status = 0;
    pthread_mutex_lock(&b->lock);
    while (!b->stopping) {
        bool kick = b->kick;
        b->kick = false;
        struct blobs_settings s = b->set;
        pthread_mutex_unlock(&b->lock);

        if (b->clustered) { /* a single node changes its settings itself */
            blobs__load_settings(b);
            blobs__refresh_nodes(b);
        }
        int64_t now = blobs__now_ms();
        if (now - last_expire > 60000) {
            int n = bs_stage_expire(b->ctx->bs, BLOBS_STAGE_MAX_AGE_S);
            if (n > 0)
                gr_info("storage: removed %d abandoned stages", n);
            last_expire = now;
        }
        if (blobs__primary(b) && b->clustered &&
            (kick || now - last_repair > BLOBS_REPAIR_EVERY_MS)) {
            struct blobs_repair_report rep;
            if (blobs_repair(b->ctx, &rep) != GR_EUNAVAIL)
                last_repair = blobs__now_ms();
        }
        if (blobs__primary(b) && s.gc_interval_s > 0 && now - last_gc > s.gc_interval_s * 1000) {
            struct blobs_gc_report rep;
            if (blobs_gc(b->ctx, -1, &rep) != GR_EUNAVAIL)
                last_gc = blobs__now_ms();
        }
        blobs__scrub_slice(b, s.scrub_rate * BLOBS_TICK_MS / 1000);
        if (b->clustered && now - last_status > BLOBS_STATUS_EVERY_MS) {
            struct blobs_status st;
            if (blobs_status(b->ctx, true, &st) == GR_OK)
                last_status = now;
        }

        pthread_mutex_lock(&b->lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)BLOBS_TICK_MS % 1000 * 1000000L;
        ts.tv_sec += BLOBS_TICK_MS / 1000 + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        if (!b->stopping && !b->kick)
            pthread_cond_timedwait(&b->wake, &b->lock, &ts);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

int blobs_start(const struct blobs_options *o, struct repo_ctx *ctx, struct blobs **out)
{
    struct blobs *b = calloc(1, sizeof(*b));
    if (!b)
        return GR_ENOMEM;
    b->ctx = ctx;
    snprintf(b->node, sizeof(b->node), "%s", o->node_id);
    snprintf(b->zone, sizeof(b->zone), "%s", o->zone && *o->zone ? o->zone : "default");
    if (o->key && o->key_len) {
        b->key_len = o->key_len < sizeof(b->key) ? o->key_len : sizeof(b->key);
        memcpy(b->key, o->key, b->key_len);
        if (o->next_key && o->next_key_len) {
            b->next_key_len =
                o->next_key_len < sizeof(b->next_key) ? o->next_key_len : sizeof(b->next_key);
            memcpy(b->next_key, o->next_key, b->next_key_len);
        }
        b->clustered = true;
        b->accept_v1 = o->accept_v1;
        if (blobs__keys_init(b)) {
            blobs__keys_free(b);
            free(b);
            return GR_ENOMEM;
        }
    }
    b->down_after_ms = o->down_after_ms > 0 ? o->down_after_ms : 5000;
    b->set = blobs__defaults;
    pthread_mutex_init(&b->lock, NULL);
    pthread_mutex_init(&b->holders_lock, NULL);
    pthread_cond_init(&b->wake, NULL);
    ctx->blobs = b;
    blobs__load_settings(b);
    blobs__refresh_nodes(b);
    int rc = blobs__inventory(b);
    if (rc == GR_OK && pthread_create(&b->thread, NULL, blobs__thread, b) != 0)
        rc = GR_ENOMEM;
    if (rc) {
        ctx->blobs = NULL;
        pthread_mutex_destroy(&b->lock);
        pthread_mutex_destroy(&b->holders_lock);
        pthread_cond_destroy(&b->wake);
        blobs__keys_free(b);
        free(b);
        return rc;
    }
    b->started = true;
    atomic_store(&b->last_scrub_ms, blobs__now_ms()); /* the first pass after a pause */
    *out = b;
    return GR_OK;
}

void blobs_stop(struct blobs *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->stopping = true;
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->lock);
    if (b->started)
        pthread_join(b->thread, NULL);
    if (b->ctx->blobs == b)
        b->ctx->blobs = NULL;
    memset(b->key, 0, sizeof(b->key));
    memset(b->next_key, 0, sizeof(b->next_key));
    blobs__keys_free(b);
    pthread_mutex_destroy(&b->lock);
    pthread_mutex_destroy(&b->holders_lock);
    pthread_cond_destroy(&b->wake);
    free(b);
}
