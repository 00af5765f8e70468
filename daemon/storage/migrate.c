/*
 * migrate.c - moving a cluster's binaries to another provider online
 * (docs/storage.md "Migrating"). The state is the storage_provider row,
 * so that any primary resumes it: 'copying' passes over the binaries in
 * sha256 order (the cursor) copy every one the target does not hold yet,
 * checked on the way, at most `rate` bytes/s; once a pass ends without a
 * failed copy (this primary saw the whole pass), or with at most
 * MIGRATE_BATCH binaries left (uploads meanwhile), the provider
 * switches ('finishing': uploads go to the target, the old provider is
 * still read), and passes go on until one that ends at least 5 s after the
 * switch (every node has seen it) finds nothing left. Then the row says
 * the migration is done; the old provider stays readable as `previous`
 * until the next migration.
 */
#include "storage/internal.h"

#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "bs.h"
#include "crypto/crypto.h"
#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIGRATE_BATCH 20
/* The last pass counts once it ends 5 s after the switch: every node has
 * seen the switch by then (they look every second). */

/* The condition "the target holds sha256 b.sha256" for a kind ($1: the store's location id). */
static const char *migrate__held(int kind)
{
    return kind == STORAGE_LOCAL
               ? "EXISTS (SELECT 1 FROM binary_locations l WHERE l.sha256 = b.sha256 AND"
                 " l.node NOT LIKE 'store:%' AND $1 <> '')"
               : "EXISTS (SELECT 1 FROM binary_locations l WHERE l.sha256 = b.sha256 AND"
                 " l.node = $1)";
}

int storage_migrate_start(struct storage *b, const char *to, int64_t rate, const char **why)
{
    int kind = storage_kind_of(to);
    *why = NULL;
    if (kind < 0) {
        *why = "expected local, s3 or shared-fs";
        return GR_EINVAL;
    }
    if (rate < 0) {
        *why = "bytesPerSecond must be >= 0";
        return GR_EINVAL;
    }
    storage__load_provider(b);
    pthread_mutex_lock(&b->lock);
    int active = b->active, target = b->mig.target;
    pthread_mutex_unlock(&b->lock);
    if (target >= 0) {
        *why = "a migration is running; wait for it to finish";
        return GR_ECONFLICT;
    }
    if (kind == active) {
        *why = "the cluster already keeps its binaries there";
        return GR_EINVAL;
    }
    /* every live node must reach the target: uploads go there once it switches */
    char ms[24];
    snprintf(ms, sizeof(ms), "%d", b->down_after_ms);
    const char *p[3] = {ms, to, NULL};
    struct db_res *res = NULL;
    int rc = db_exec1(
        b->db, &res,
        "SELECT n.id FROM cluster_nodes n LEFT JOIN settings s ON s.key = 'storage.providers:' ||"
        " n.id WHERE n.state <> 'down' AND n.heartbeat > now() - make_interval(secs =>"
        " $1::double precision / 1000) AND NOT ($2 = ANY (string_to_array(coalesce(s.value, ''),"
        " ',')))",
        2, p);
    if (rc == GR_OK && db_res_rows(res) > 0)
        rc = GR_EUNAVAIL;
    db_res_free(res);
    if (rc == GR_EUNAVAIL || !storage__prov(b, kind)) {
        *why = "a live node was not started with that provider's settings (see docs/storage.md)";
        return GR_EUNAVAIL;
    }
    if (rc)
        return rc;
    char rs[24];
    snprintf(rs, sizeof(rs), "%lld", (long long)rate);
    p[0] = to;
    p[1] = rs;
    res = NULL;
    rc = db_exec1(b->db, &res,
                  "UPDATE storage_provider SET target = $1, state = 'copying', rate = $2::bigint,"
                  " cursor = '', copied = 0, bytes = 0, failed = 0, started = now(),"
                  " switched = NULL, finished = NULL WHERE state = '' AND provider <> $1"
                  " RETURNING 1",
                  2, p);
    if (rc == GR_OK && db_res_rows(res) == 0) {
        *why = "a migration is running; wait for it to finish";
        rc = GR_ECONFLICT;
    }
    db_res_free(res);
    if (rc == GR_OK) {
        gr_info("storage: migration to %s started (%lld bytes/s, 0: no limit)", to,
                (long long)rate);
        storage__load_provider(b);
    }
    return rc;
}

/*
 * Read sha256 whole, checked, from wherever a good copy is (not the
 * target), into a new upload on store dst; its sha256 is checked at the
 * end. GR_OK with *out, GR_ENOTFOUND, GR_EIO, GR_ENOSPC, GR_ENOMEM.
 */
static int migrate__fetch(struct storage *b, int target, const char *sha256, uint64_t size,
                          struct bs_store *dst, struct bs_upload **out)
{
    int order[4] = {STORAGE_LOCAL, STORAGE_SHARED, STORAGE_S3, -2}; /* -2: the peers */
    char *buf = malloc(1 << 20);
    if (!buf)
        return GR_ENOMEM;
    int rc = GR_ENOTFOUND;
    for (int i = 0; i < 4 && rc != GR_OK; i++) {
        int k = order[i];
        if (k == target && k != STORAGE_LOCAL)
            continue;
        struct storage_provider *p = k >= 0 ? storage__prov(b, k) : NULL;
        struct storage_remote *rem = NULL;
        struct storage_pread *pr = NULL;
        if (k >= 0 && (!p || p->ops->open(p, sha256, size, 0, size, &pr) != GR_OK))
            continue;
        if (k == -2 && (target == STORAGE_LOCAL ||
                        storage_open_remote(b, sha256, size, NULL, "migrate", &rem) != GR_OK))
            continue;
        struct bs_upload *u = NULL;
        struct cr_digest *d = cr_digest_new(CR_SHA256);
        rc = d ? storage_bs_err(bs_upload_begin(dst, &u)) : GR_ENOMEM;
        while (rc == GR_OK) {
            long n = pr ? p->ops->read(pr, buf, 1 << 20) : storage_remote_read(rem, buf, 1 << 20);
            if (n < 0)
                rc = GR_EIO;
            if (n <= 0)
                break;
            cr_digest_update(d, buf, (size_t)n);
            rc = storage_bs_err(bs_upload_write(u, buf, (size_t)n));
        }
        if (pr)
            p->ops->close(pr);
        storage_remote_close(rem);
        if (rc == GR_OK) {
            unsigned char raw[64];
            char hex[65];
            cr_digest_final(d, raw);
            storage__hex(raw, 32, hex);
            if (strcmp(hex, sha256) || bs_upload_size(u) != size) {
                gr_error("migrate: the copy of %s read from %s failed its sha256", sha256,
                         k >= 0 ? storage_kind_name(k) : "a peer");
                rc = GR_ECORRUPT;
            }
        }
        cr_digest_free(d);
        if (rc == GR_OK)
            rc = storage_bs_err(bs_upload_sync(u));
        if (rc == GR_OK) {
            *out = u;
        } else {
            bs_upload_abort(u);
            if (rc == GR_ENOSPC)
                break;
            rc = GR_ENOTFOUND; /* try the next source */
        }
    }
    free(buf);
    return rc;
}

/* Copy one binary to the target provider and record its location there. */
int storage__copy_to(struct storage *b, int target, const char *sha256, uint64_t size)
{
    struct storage_provider *p = storage__prov(b, target);
    struct bs_store *dst = target == STORAGE_SHARED ? b->shared_bs : b->bs;
    struct bs_upload *u = NULL;
    int rc = migrate__fetch(b, target, sha256, size, dst, &u);
    if (rc)
        return rc;
    char err[256] = "";
    if (target == STORAGE_S3) {
        uint64_t n;
        const uint32_t *crcs = bs_upload_crcs(u, &n);
        rc = storage__store_put(b, p, sha256, bs_upload_path(u), size, crcs, err, sizeof(err));
        bs_upload_abort(u);
        if (rc && rc != GR_ENOTFOUND)
            gr_warn("migrate: cannot put %s into s3: %s", sha256, err[0] ? err : gr_strerror(rc));
        return rc == GR_ENOTFOUND ? GR_OK : rc;
    }
    /* local: this node and redundancy - 1 peers, as an upload; shared-fs: a rename */
    struct gr_arena *a = gr_arena_new();
    struct storage_pending *pend = NULL;
    if (!a) {
        bs_upload_abort(u);
        return GR_ENOMEM;
    }
    if (target == STORAGE_LOCAL) {
        rc = storage__replicate_local(b, a, u, NULL, sha256, size, "migrate", &pend);
    } else {
        pend = NULL;
        rc = GR_OK;
    }
    struct db_conn *c = NULL;
    if (rc == GR_OK)
        rc = db_acquire(b->db, 5000, &c);
    if (rc == GR_OK)
        rc = db_begin(c);
    const char *pp[2] = {sha256, p->loc};
    if (rc == GR_OK)
        rc = storage__lock_live(c, sha256);
    bool gone = rc == GR_ENOTFOUND; /* collected meanwhile: nothing to copy */
    if (gone)
        rc = GR_OK;
    if (rc == GR_OK && !gone) {
        if (target == STORAGE_LOCAL) {
            rc = storage_publish(b, c, sha256, pend);
        } else {
            rc = storage_bs_err(bs_upload_commit(u, sha256, NULL));
            u = NULL;
            if (rc == GR_OK)
                rc = db_exec(c, NULL,
                             "INSERT INTO binary_locations (sha256, node) VALUES ($1, $2)"
                             " ON CONFLICT DO NOTHING",
                             2, pp);
        }
    }
    if (c) {
        if (rc || gone)
            db_rollback(c);
        else
            rc = db_commit(c);
        db_release(c);
    }
    if (target != STORAGE_LOCAL)
        bs_upload_abort(u);
    gr_arena_free(a); /* aborts what was not published */
    return rc;
}

void storage__migrate_step(struct storage *b)
{
    pthread_mutex_lock(&b->lock);
    struct storage__migration m = b->mig;
    int active = b->active;
    pthread_mutex_unlock(&b->lock);
    if (m.target < 0)
        return;
    struct storage_provider *p = storage__prov(b, m.target);
    if (!p) {
        gr_warn("migrate: this node (the primary) cannot reach %s", storage_kind_name(m.target));
        return;
    }
    const char *tname = storage_kind_name(m.target);
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "SELECT b.sha256, b.size FROM binaries b WHERE b.tombstoned IS NULL AND b.sha256 >"
             " $2 AND NOT %s ORDER BY b.sha256 LIMIT %d",
             migrate__held(m.target), MIGRATE_BATCH);
    const char *pp[3] = {p->loc, m.cursor, tname};
    struct db_res *res = NULL;
    if (db_exec1(b->db, &res, sql, 2, pp) != GR_OK) {
        db_res_free(res);
        return;
    }
    if (!m.cursor[0]) { /* a pass begins */
        b->mig_pass_own = true;
        b->mig_pass_failed = 0;
    }
    int rows = db_res_rows(res);
    char cursor[65];
    snprintf(cursor, sizeof(cursor), "%s", m.cursor);
    int64_t copied = 0, bytes = 0, failed = 0;
    for (int i = 0; i < rows && !b->stopping; i++) {
        const char *sha = db_res_get(res, i, 0);
        uint64_t size = strtoull(db_res_get(res, i, 1), NULL, 10);
        int rc = storage__copy_to(b, m.target, sha, size);
        if (rc == GR_OK) {
            copied++;
            bytes += (int64_t)size;
        } else {
            failed++;
            gr_warn("migrate: %s not copied to %s: %s", sha, tname, gr_strerror(rc));
        }
        snprintf(cursor, sizeof(cursor), "%s", sha);
        storage__pace(b, size, m.rate);
    }
    db_res_free(res);
    b->mig_pass_failed += failed;
    char c[3][24];
    snprintf(c[0], 24, "%lld", (long long)copied);
    snprintf(c[1], 24, "%lld", (long long)bytes);
    snprintf(c[2], 24, "%lld", (long long)failed);
    const char *up[5] = {cursor, c[0], c[1], c[2], tname};
    if (rows > 0) {
        if (db_exec1(b->db, NULL,
                     "UPDATE storage_provider SET cursor = $1, copied = copied + $2::bigint,"
                     " bytes = bytes + $3::bigint, failed = failed + $4::bigint WHERE target = $5",
                     5, up) != GR_OK)
            gr_warn("migrate: cannot record its progress");
        storage__load_provider(b);
        return;
    }
    /* the end of a pass: anything left (failures, uploads meanwhile)? */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM binaries b WHERE b.tombstoned IS NULL AND NOT %s",
             migrate__held(m.target));
    res = NULL;
    if (db_exec1(b->db, &res, sql, 1, pp) != GR_OK || db_res_rows(res) != 1) {
        db_res_free(res);
        return;
    }
    long long left = strtoll(db_res_get(res, 0, 0), NULL, 10);
    db_res_free(res);
    int rc = GR_OK;
    bool copying = !strcmp(m.state, "copying") && active != m.target;
    /* a pass that copied everything it met switches (the target works),
     * or one that ends with at most a batch left: under a steady flow of
     * uploads (to the old provider until the switch) no pass ends with
     * nothing left, and one that ends with a batch left needs copies faster
     * than the uploads; what is left the passes after the switch copy, and
     * reads find it in the old provider meanwhile */
    bool clean = b->mig_pass_own && b->mig_pass_failed == 0;
    b->mig_pass_own = false;
    if (left > (copying ? (clean ? INT64_MAX : MIGRATE_BATCH) : 0)) {
        rc = db_exec1(b->db, NULL, "UPDATE storage_provider SET cursor = '' WHERE target = $1", 1,
                      &up[4]);
    } else if (copying) {
        rc = db_exec1(b->db, NULL,
                      "UPDATE storage_provider SET previous = provider, provider = target,"
                      " state = 'finishing', cursor = '', switched = now() WHERE target = $1",
                      1, &up[4]);
        if (rc == GR_OK)
            gr_info("migrate: every binary is in %s: the cluster's provider is now %s", tname,
                    tname);
        if (m.target == STORAGE_LOCAL)
            storage_kick_repair(b); /* redundancy - 1 more copies of what came from a store */
    } else {
        /* a pass found nothing left; done once it started after every node saw the switch */
        res = NULL;
        rc = db_exec1(b->db, &res,
                      "UPDATE storage_provider SET target = '', state = '', cursor = '',"
                      " finished = now() WHERE target = $1 AND state = 'finishing' AND switched <"
                      " now() - interval '5 seconds' RETURNING copied, bytes, failed",
                      1, &up[4]);
        if (rc == GR_OK && db_res_rows(res) == 1)
            gr_info("migrate: done: %s binaries, %s bytes copied to %s (%s failures retried)",
                    db_res_get(res, 0, 0), db_res_get(res, 0, 1), tname, db_res_get(res, 0, 2));
        db_res_free(res);
    }
    if (rc)
        gr_warn("migrate: cannot record its state");
    storage__load_provider(b);
}

json_t *storage_provider_json(struct storage *b)
{
    storage__load_provider(b);
    pthread_mutex_lock(&b->lock);
    struct storage__migration m = b->mig;
    int active = b->active, previous = b->previous;
    pthread_mutex_unlock(&b->lock);
    json_t *doc = json_pack("{s:s,s:s*}", "provider", storage_kind_name(active), "previous",
                            previous >= 0 ? storage_kind_name(previous) : NULL);
    if (m.target >= 0)
        json_object_set_new(
            doc, "migration",
            json_pack("{s:s,s:s,s:I,s:I,s:I,s:I}", "to", storage_kind_name(m.target), "state",
                      m.state, "bytesPerSecond", (json_int_t)m.rate, "copied", (json_int_t)m.copied,
                      "bytes", (json_int_t)m.bytes, "failed", (json_int_t)m.failed));
    struct storage_provider *s3 = storage__prov(b, STORAGE_S3);
    if (active == STORAGE_S3 || s3)
        json_object_set_new(doc, "cacheMaxBytes", json_integer((json_int_t)b->cache_max));
    return doc;
}
