/*
 * storage.c - the storage layer's life: start and stop, the settings
 * (redundancy, lenient limit, GC, scrub, repair rates), the membership
 * snapshot placement uses, the status, and the thread that runs the
 * tasks (scrub on every node; repair and GC on the primary).
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

int64_t storage__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int storage__lock_live(struct db_conn *c, const char *sha256)
{
    struct db_res *res = NULL;
    const char *p[1] = {sha256};
    int rc =
        db_exec(c, &res,
                "SELECT 1 FROM binaries WHERE sha256 = $1 AND tombstoned IS NULL FOR UPDATE", 1, p);
    if (rc == GR_OK && db_res_rows(res) == 0)
        rc = GR_ENOTFOUND;
    db_res_free(res);
    return rc;
}

int storage_bs_err(int rc)
{
    switch (rc) {
    case BS_OK:
        return GR_OK;
    case BS_ENOSPC:
        return GR_ENOSPC;
    case BS_ENOTFOUND:
        return GR_ENOTFOUND;
    case BS_ENOMEM:
        return GR_ENOMEM;
    case BS_EINVAL:
        return GR_EINVAL;
    case BS_ECORRUPT:
        return GR_ECORRUPT;
    default:
        return GR_EIO;
    }
}

void storage__hex(const unsigned char *in, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static const struct storage_settings storage__defaults = {
    .redundancy = 2,
    .lenient_limit = 1,
    .gc_grace_s = 3600,
    .gc_interval_s = 3600,
    .scrub_rate = 8 << 20,
    .repair_rate = 64 << 20,
};

/* ---- membership ---- */

int storage__snapshot(struct storage *b, struct storage__node *out)
{
    pthread_mutex_lock(&b->lock);
    int n = b->n_nodes;
    memcpy(out, b->nodes, (size_t)n * sizeof(*out));
    pthread_mutex_unlock(&b->lock);
    return n;
}

bool storage__node_url(struct storage *b, const char *id, char *out, size_t n)
{
    bool found = false;
    pthread_mutex_lock(&b->lock);
    for (int i = 0; i < b->n_nodes && !found; i++)
        if (!strcmp(b->nodes[i].id, id) && b->nodes[i].url[0]) {
            snprintf(out, n, "%s", b->nodes[i].url);
            found = true;
        }
    pthread_mutex_unlock(&b->lock);
    return found;
}

int storage__redundancy(struct storage *b)
{
    if (!b || !b->clustered || storage__active(b) != STORAGE_LOCAL)
        return 1; /* a store keeps its own redundancy */
    pthread_mutex_lock(&b->lock);
    int r = b->set.redundancy;
    pthread_mutex_unlock(&b->lock);
    return r;
}

int storage__lenient(struct storage *b)
{
    if (!b || !b->clustered || storage__active(b) != STORAGE_LOCAL)
        return 1;
    pthread_mutex_lock(&b->lock);
    int r = b->set.lenient_limit;
    pthread_mutex_unlock(&b->lock);
    return r;
}

/* ---- settings ---- */

void storage__load_settings(struct storage *b)
{
    struct db_res *res = NULL;
    struct storage_settings s = storage__defaults;
    if (db_exec1(b->db, &res, "SELECT key, value FROM settings WHERE key LIKE 'storage.%'", 0,
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

int storage_placement_nodes(struct storage *b)
{
    int n = 0;
    pthread_mutex_lock(&b->lock);
    for (int i = 0; i < b->n_nodes; i++)
        if (b->nodes[i].placeable && (b->nodes[i].url[0] || !b->clustered))
            n++;
    pthread_mutex_unlock(&b->lock);
    return n;
}

void storage_get_settings(struct storage *b, struct storage_settings *out)
{
    pthread_mutex_lock(&b->lock);
    *out = b->set;
    pthread_mutex_unlock(&b->lock);
}

int storage_set_settings(struct storage *b, const struct storage_settings *s)
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
    int rc = db_exec1(b->db, NULL,
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

void storage__refresh_nodes(struct storage *b)
{
    struct storage__node nodes[STORAGE_MAX_NODES];
    int n = 0;
    if (!b->clustered) {
        snprintf(nodes[0].id, sizeof(nodes[0].id), "%s", b->node);
        snprintf(nodes[0].zone, sizeof(nodes[0].zone), "%s", b->zone);
        nodes[0].url[0] = '\0';
        nodes[0].placeable = true;
        nodes[0].degraded = false;
        n = 1;
    } else {
        char ms[24];
        snprintf(ms, sizeof(ms), "%d", b->down_after_ms);
        const char *p[1] = {ms};
        struct db_res *res = NULL;
        if (db_exec1(b->db, &res,
                     "SELECT id, cluster_url, zone,"
                     " state IN ('starting', 'active') AND disk_state = 'ok',"
                     " disk_state <> 'ok' FROM cluster_nodes"
                     " WHERE state <> 'down' AND heartbeat > now() - make_interval(secs =>"
                     " $1::double precision / 1000) ORDER BY id",
                     1, p) != GR_OK) {
            db_res_free(res);
            return; /* keep the last view */
        }
        for (int i = 0; i < db_res_rows(res) && n < STORAGE_MAX_NODES; i++, n++) {
            snprintf(nodes[n].id, sizeof(nodes[n].id), "%s", db_res_get(res, i, 0));
            snprintf(nodes[n].url, sizeof(nodes[n].url), "%s", db_res_get(res, i, 1));
            snprintf(nodes[n].zone, sizeof(nodes[n].zone), "%s", db_res_get(res, i, 2));
            nodes[n].placeable = db_res_get(res, i, 3)[0] == 't';
            nodes[n].degraded = db_res_get(res, i, 4)[0] == 't';
        }
        db_res_free(res);
    }
    pthread_mutex_lock(&b->lock);
    memcpy(b->nodes, nodes, (size_t)n * sizeof(nodes[0]));
    b->n_nodes = n;
    pthread_mutex_unlock(&b->lock);
}

/* ---- status ---- */

int storage_status(struct storage *b, bool fresh, struct storage_status *out)
{
    memset(out, 0, sizeof(*out));
    if (!b)
        return GR_OK;
    int rc = GR_OK;
    if (fresh) {
        storage__refresh_nodes(b);
        struct storage__node nodes[STORAGE_MAX_NODES];
        int n = storage__snapshot(b, nodes);
        struct gr_sbuf live = GR_SBUF_INIT;
        storage__live_ids(b, nodes, n, &live);
        char rs[16];
        snprintf(rs, sizeof(rs), "%d", storage__redundancy(b));
        const char *p[2] = {live.buf, rs};
        struct db_res *res = NULL;
        rc = db_exec1(b->db, &res,
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

int storage_copies(struct storage *b, int64_t by_copies[STORAGE_COPIES_MAX + 1])
{
    memset(by_copies, 0, sizeof(int64_t) * (STORAGE_COPIES_MAX + 1));
    if (!b)
        return GR_OK;
    struct storage__node nodes[STORAGE_MAX_NODES];
    int n = storage__snapshot(b, nodes);
    struct gr_sbuf live = GR_SBUF_INIT;
    storage__ids(nodes, n, &live);
    char max[16];
    snprintf(max, sizeof(max), "%d", STORAGE_COPIES_MAX);
    const char *p[2] = {live.buf, max};
    struct db_res *res = NULL;
    int rc = db_exec1(b->db, &res,
                      "SELECT least(c, $2::int), count(*) FROM (SELECT count(l.node) FILTER"
                      " (WHERE l.node = ANY($1::text[])) c FROM binaries b LEFT JOIN"
                      " binary_locations l USING (sha256) WHERE b.tombstoned IS NULL"
                      " GROUP BY b.sha256) s GROUP BY 1",
                      2, p);
    gr_sbuf_release(&live);
    if (rc)
        return rc;
    for (int i = 0; i < db_res_rows(res); i++) {
        int c = atoi(db_res_get(res, i, 0));
        if (c >= 0 && c <= STORAGE_COPIES_MAX)
            by_copies[c] = strtoll(db_res_get(res, i, 1), NULL, 10);
    }
    db_res_free(res);
    return GR_OK;
}

/* ---- the thread ---- */

void storage_kick_repair(struct storage *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->kick = true;
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->lock);
}

uint64_t storage__run_token(struct storage *b, bool scheduled)
{
    if (!b->clustered || !b->primary_token || !b->fence)
        return STORAGE_UNFENCED;
    uint64_t t = b->primary_token(b->primary_arg);
    return t ? t : scheduled ? 0 : STORAGE_UNFENCED;
}

int storage__fence(struct storage *b, struct db_conn *c, uint64_t token, const char *task,
                   const char *subject)
{
    if (token == STORAGE_UNFENCED)
        return GR_OK;
    int rc = b->fence(b->primary_arg, c, token, task, subject);
    if (rc == GR_ECONFLICT)
        gr_warn("storage: %s of %s refused: this node no longer holds the primary lease with"
                " token %llu",
                task, subject, (unsigned long long)token);
    return rc;
}

static void storage__disk_tick(struct storage *b);

static bool storage__primary(struct storage *b)
{
    return !b->clustered || !b->is_primary || b->is_primary(b->primary_arg);
}

static void *storage__thread(void *arg)
{
    struct storage *b = arg;
    int64_t last_repair = 0, last_gc = storage__now_ms(), last_expire = 0, last_status = 0;
    pthread_mutex_lock(&b->lock);
    while (!b->stopping) {
        bool kick = b->kick;
        b->kick = false;
        struct storage_settings s = b->set;
        bool migrating = b->mig.target >= 0;
        pthread_mutex_unlock(&b->lock);

        storage__disk_tick(b);
        if (b->clustered) { /* a single node changes its settings itself */
            storage__load_settings(b);
            storage__refresh_nodes(b);
        }
        /* a migration may have switched it: another node's, or this single
         * node's (which starts it itself: no query a second when idle) */
        if (b->clustered || migrating)
            storage__load_provider(b);
        bool local = storage__active(b) == STORAGE_LOCAL;
        int64_t now = storage__now_ms();
        if (now - last_expire > 60000) {
            int n = bs_stage_expire(b->bs, STORAGE_STAGE_MAX_AGE_S);
            if (n > 0)
                gr_info("storage: removed %d abandoned stages", n);
            last_expire = now;
        }
        if (storage__primary(b) && (b->clustered || !local) &&
            (kick || now - last_repair > STORAGE_REPAIR_EVERY_MS)) {
            struct storage_repair_report rep;
            if (storage__repair_run(b, true, &rep) != GR_EUNAVAIL)
                last_repair = storage__now_ms();
        }
        if (storage__primary(b) && s.gc_interval_s > 0 && now - last_gc > s.gc_interval_s * 1000) {
            struct storage_gc_report rep;
            if (storage__gc_run(b, -1, true, &rep) != GR_EUNAVAIL)
                last_gc = storage__now_ms();
        }
        if (local) {
            storage__scrub_slice(b, s.scrub_rate * STORAGE_TICK_MS / 1000);
        } else if (storage__primary(b) && s.scrub_rate > 0 &&
                   (b->scrub_cursor[0] ||
                    now - atomic_load(&b->last_scrub_ms) >= STORAGE_SCRUB_PAUSE_MS) &&
                   !atomic_exchange(&b->scrub_running, true)) {
            /* the store's copies are scrubbed by the primary only */
            struct storage_scrub_report rep = {0};
            if (storage__scrub_store(b, s.scrub_rate * STORAGE_TICK_MS / 1000, &rep))
                gr_debug("scrub of the store: not answering");
            atomic_store(&b->scrub_running, false);
        }
        if (storage__primary(b))
            storage__migrate_step(b);
        storage__cache_evict(b);
        if (b->clustered && now - last_status > STORAGE_STATUS_EVERY_MS) {
            struct storage_status st;
            if (storage_status(b, true, &st) == GR_OK)
                last_status = now;
        }

        pthread_mutex_lock(&b->lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)STORAGE_TICK_MS % 1000 * 1000000L;
        ts.tv_sec += STORAGE_TICK_MS / 1000 + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        if (!b->stopping && !b->kick)
            pthread_cond_timedwait(&b->wake, &b->lock, &ts);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

int storage_start(const struct storage_options *o, struct storage **out)
{
    struct storage *b = calloc(1, sizeof(*b));
    if (!b)
        return GR_ENOMEM;
    b->db = o->db;
    b->bs = o->bs;
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
        b->is_primary = o->is_primary;
        b->primary_token = o->primary_token;
        b->fence = o->fence;
        b->primary_arg = o->primary_arg;
        if (storage__keys_init(b)) {
            storage__keys_free(b);
            free(b);
            return GR_ENOMEM;
        }
    }
    b->down_after_ms = o->down_after_ms > 0 ? o->down_after_ms : 5000;
    b->set = storage__defaults;
    pthread_mutex_init(&b->lock, NULL);
    pthread_mutex_init(&b->holders_lock, NULL);
    pthread_cond_init(&b->wake, NULL);
    storage__hot_init(b);
    storage__load_settings(b);
    storage__refresh_nodes(b);
    int rc = storage__providers_start(b, o);
    if (rc == GR_OK)
        rc = storage__inventory(b);
    if (rc == GR_OK && pthread_create(&b->thread, NULL, storage__thread, b) != 0)
        rc = GR_ENOMEM;
    if (rc) {
        storage__providers_stop(b);
        storage__hot_free(b);
        pthread_mutex_destroy(&b->lock);
        pthread_mutex_destroy(&b->holders_lock);
        pthread_cond_destroy(&b->wake);
        storage__keys_free(b);
        free(b);
        return rc;
    }
    b->started = true;
    atomic_store(&b->last_scrub_ms, storage__now_ms()); /* the first pass after a pause */
    *out = b;
    return GR_OK;
}

void storage_stop(struct storage *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->stopping = true;
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->lock);
    if (b->started)
        pthread_join(b->thread, NULL);
    memset(b->key, 0, sizeof(b->key));
    memset(b->next_key, 0, sizeof(b->next_key));
    storage__providers_stop(b);
    storage__keys_free(b);
    storage__hot_free(b);
    pthread_mutex_destroy(&b->lock);
    pthread_mutex_destroy(&b->holders_lock);
    pthread_cond_destroy(&b->wake);
    free(b);
}

#define STORAGE_DISK_PROBE_MS 2000 /* between two probes of the filestore */

bool storage_disk_check(struct storage *b)
{
    if (!b)
        return false;
    char path[4096];
    snprintf(path, sizeof(path), "%s/.probe", bs_root(b->bs));
    bool ok = false;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        ok = write(fd, "p", 1) == 1 && fsync(fd) == 0;
        ok = close(fd) == 0 && ok;
        ok = unlink(path) == 0 && ok;
    }
    bool was = atomic_exchange(&b->disk_degraded, !ok);
    atomic_store(&b->disk_probe_ms, storage__now_ms());
    if (was != !ok) {
        if (ok)
            gr_info("storage: the filestore %s works again", bs_root(b->bs));
        else
            gr_error("storage: the filestore %s fails (%s): degraded, no new copies here",
                     bs_root(b->bs), strerror(errno));
    }
    return !ok;
}

bool storage_disk_degraded(struct storage *b)
{
    return b && atomic_load(&b->disk_degraded);
}

bool storage_disk_refuses(struct storage *b)
{
    return storage_disk_degraded(b) && storage_disk_check(b);
}

/* Probe when due; store a change of state (or any state every minute) in
 * this node's row, which placement and repair read. */
static void storage__disk_tick(struct storage *b)
{
    static const int republish_ms = 60000;
    int64_t now = storage__now_ms();
    if (now - atomic_load(&b->disk_probe_ms) >= STORAGE_DISK_PROBE_MS)
        storage_disk_check(b);
    if (!b->clustered)
        return;
    const char *want = atomic_load(&b->disk_degraded) ? "degraded" : "ok";
    static _Thread_local int64_t published_ms;
    if (!strcmp(want, b->disk_published) && now - published_ms < republish_ms)
        return;
    const char *p[2] = {b->node, want};
    if (db_exec1(b->db, NULL, "UPDATE cluster_nodes SET disk_state = $2 WHERE id = $1", 2, p) ==
        GR_OK) {
        snprintf(b->disk_published, sizeof(b->disk_published), "%s", want);
        published_ms = now;
    }
}

void storage_disk(struct storage *b, struct storage_disk *out)
{
    out->root = b ? bs_root(b->bs) : "";
    out->free_bytes = b ? bs_free_bytes(b->bs) : -1;
    out->total_bytes = b ? bs_total_bytes(b->bs) : -1;
}
