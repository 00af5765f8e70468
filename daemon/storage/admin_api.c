/*
 * admin_api.c - /api/system/storage/...: the storage tasks on demand (gc,
 * optimize = repair, scrub), the cluster-wide storage settings, and the
 * replication state shown in /api/system/cluster, /api/storageinfo and
 * the metrics.
 */
#include "http/req.h"
#include "http/route.h"

#include "base/err.h"
#include "base/sbuf.h"
#include "storage/storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *storage__status_doc(const struct storage_status *st,
                                   const struct storage_settings *set);

/* "lastRun": when a task's last pass on this node ended (null: never). */
static void storage__last_run(json_t *doc, const char *task, int64_t ms)
{
    json_t *t = json_object_get(doc, task);
    if (!t)
        return;
    if (ms <= 0) {
        json_object_set_new(t, "lastRun", json_null());
        return;
    }
    char iso[40];
    http_iso8601(ms, iso, sizeof(iso));
    json_object_set_new(t, "lastRun", json_string(iso));
}

json_t *storage_status_json(struct storage *s)
{
    struct storage_status st;
    struct storage_settings set = {0};
    if (!s || storage_status(s, true, &st) != GR_OK)
        return json_null();
    storage_get_settings(s, &set);
    json_t *doc = storage__status_doc(&st, &set);
    if (!doc)
        return json_null();
    storage__last_run(doc, "repair", st.last_repair_ms);
    storage__last_run(doc, "gc", st.last_gc_ms);
    storage__last_run(doc, "scrub", st.last_scrub_ms);
    /* binaries by their number of live copies: {"0":n,"1":n,...,"8+":n} */
    int64_t by[STORAGE_COPIES_MAX + 1];
    if (storage_copies(s, by) == GR_OK) {
        json_t *c = json_object();
        for (int i = 0; i <= STORAGE_COPIES_MAX; i++) {
            char k[8];
            snprintf(k, sizeof(k), i == STORAGE_COPIES_MAX ? "%d+" : "%d", i);
            json_object_set_new(c, k, json_integer(by[i]));
        }
        json_object_set_new(doc, "copies", c);
    }
    json_t *prov = storage_provider_json(s);
    json_object_update(doc, prov);
    json_decref(prov);
    return doc;
}

static json_t *storage__status_doc(const struct storage_status *s0,
                                   const struct storage_settings *s1)
{
    const struct storage_status st = *s0;
    const struct storage_settings set = *s1;
    return json_pack(
        "{s:i,s:i,s:I,s:I,s:I,s:I,s:I,s:{s:b,s:I,s:I,s:I},s:{s:b,s:I,s:I,s:I},"
        "s:{s:b,s:I,s:I,s:I},s:{s:I,s:I,s:I,s:I,s:I,s:I}}",
        "redundancy", set.redundancy, "lenientLimit", set.lenient_limit, "binaries",
        (json_int_t)st.binaries, "underReplicated", (json_int_t)st.under_replicated, "unavailable",
        (json_int_t)st.unavailable, "overReplicated", (json_int_t)st.over_replicated, "tombstoned",
        (json_int_t)st.tombstoned, "repair", "running", st.repair_running, "runs",
        (json_int_t)st.repair_runs, "copied", (json_int_t)st.repaired, "trimmed",
        (json_int_t)st.trimmed, "gc", "running", st.gc_running, "runs", (json_int_t)st.gc_runs,
        "bytesFreed", (json_int_t)st.gc_bytes_freed, "filesDeleted",
        (json_int_t)st.gc_files_deleted, "scrub", "running", st.scrub_running, "files",
        (json_int_t)st.scrubbed_files, "bytes", (json_int_t)st.scrubbed_bytes, "bad",
        (json_int_t)st.scrub_bad, "thisNode", "replicatedCopies", (json_int_t)st.replicated_copies,
        "replicationFailures", (json_int_t)st.replication_failures, "remoteReads",
        (json_int_t)st.remote_reads, "remoteReadFailures", (json_int_t)st.remote_read_failures,
        "badCopies", (json_int_t)st.bad_copies, "quarantined", (json_int_t)st.quarantined);
}

void storage_metrics(struct storage *s, struct gr_sbuf *sb)
{
    struct storage_status st;
    if (!s || storage_status(s, false, &st) != GR_OK)
        return;
    gr_sbuf_addf(
        sb,
        "# TYPE granary_storage_binaries gauge\ngranary_storage_binaries %lld\n"
        "# TYPE granary_storage_under_replicated gauge\n"
        "granary_storage_under_replicated %lld\n"
        "# TYPE granary_storage_unavailable gauge\ngranary_storage_unavailable %lld\n"
        "# TYPE granary_storage_replicated_copies_total counter\n"
        "granary_storage_replicated_copies_total %llu\n"
        "# TYPE granary_storage_replication_failures_total counter\n"
        "granary_storage_replication_failures_total %llu\n"
        "# TYPE granary_storage_remote_reads_total counter\n"
        "granary_storage_remote_reads_total %llu\n"
        "# TYPE granary_storage_holder_cache_hits_total counter\n"
        "granary_storage_holder_cache_hits_total %llu\n"
        "# TYPE granary_storage_holder_queries_total counter\n"
        "granary_storage_holder_queries_total %llu\n"
        "# TYPE granary_storage_holder_cache_stale_total counter\n"
        "granary_storage_holder_cache_stale_total %llu\n"
        "# TYPE granary_storage_peer_connections_total counter\n"
        "granary_storage_peer_connections_total %llu\n"
        "# TYPE granary_storage_peer_sessions_reused_total counter\n"
        "granary_storage_peer_sessions_reused_total %llu\n"
        "# TYPE granary_storage_bad_copies_total counter\n"
        "granary_storage_bad_copies_total %llu\n"
        "# TYPE granary_storage_scrubbed_bytes_total counter\n"
        "granary_storage_scrubbed_bytes_total %llu\n"
        "# TYPE granary_storage_scrub_bad_total counter\n"
        "granary_storage_scrub_bad_total %llu\n"
        "# TYPE granary_storage_repaired_total counter\n"
        "granary_storage_repaired_total %llu\n"
        "# TYPE granary_storage_gc_runs_total counter\ngranary_storage_gc_runs_total %llu\n"
        "# TYPE granary_storage_gc_bytes_freed_total counter\n"
        "granary_storage_gc_bytes_freed_total %llu\n"
        "# TYPE granary_storage_placement_nodes gauge\n"
        "granary_storage_placement_nodes %d\n",
        (long long)st.binaries, (long long)st.under_replicated, (long long)st.unavailable,
        (unsigned long long)st.replicated_copies, (unsigned long long)st.replication_failures,
        (unsigned long long)st.remote_reads, (unsigned long long)st.holder_cache_hits,
        (unsigned long long)st.holder_queries, (unsigned long long)st.holder_cache_stale,
        (unsigned long long)st.peer_connections, (unsigned long long)st.peer_sessions_reused,
        (unsigned long long)st.bad_copies, (unsigned long long)st.scrubbed_bytes,
        (unsigned long long)st.scrub_bad, (unsigned long long)st.repaired,
        (unsigned long long)st.gc_runs, (unsigned long long)st.gc_bytes_freed,
        storage_placement_nodes(s));
    gr_sbuf_addf(sb,
                 "# HELP granary_storage_streamed_copies_total copies a peer staged while"
                 " the upload's body arrived\n"
                 "# TYPE granary_storage_streamed_copies_total counter\n"
                 "granary_storage_streamed_copies_total %llu\n",
                 (unsigned long long)storage_streamed_copies(s));
    uint64_t hot_hits, hot_stale;
    int64_t hot_bytes;
    storage_hot_stats(s, &hot_hits, &hot_stale, &hot_bytes);
    gr_sbuf_addf(sb,
                 "# HELP granary_storage_hot_hits_total downloads served from a hot copy (a"
                 " small binary kept in memory as read and checked)\n"
                 "# TYPE granary_storage_hot_hits_total counter\n"
                 "granary_storage_hot_hits_total %llu\n"
                 "# HELP granary_storage_hot_stale_total hot copies dropped because the file"
                 " changed or went\n"
                 "# TYPE granary_storage_hot_stale_total counter\n"
                 "granary_storage_hot_stale_total %llu\n"
                 "# TYPE granary_storage_hot_bytes gauge\ngranary_storage_hot_bytes %lld\n",
                 (unsigned long long)hot_hits, (unsigned long long)hot_stale, (long long)hot_bytes);
    gr_sbuf_addf(sb,
                 "# HELP granary_storage_disk_degraded 1 while this node's filestore fails"
                 " (read-only, unwritable, I/O errors)\n"
                 "# TYPE granary_storage_disk_degraded gauge\n"
                 "granary_storage_disk_degraded %d\n",
                 storage_disk_degraded(s) ? 1 : 0);
    storage_provider_metrics(s, sb);
}

static bool storage__int(json_t *doc, const char *name, int64_t *v)
{
    json_t *x = json_object_get(doc, name);
    if (!x)
        return true;
    if (!json_is_integer(x))
        return false;
    *v = json_integer_value(x);
    return true;
}

static void storage__config_put(struct http_req *r, json_t *doc)
{
    struct storage_settings s;
    storage_get_settings(r->ctx->storage, &s);
    int64_t red = s.redundancy, len = s.lenient_limit;
    if (!json_is_object(doc) || !storage__int(doc, "redundancy", &red) ||
        !storage__int(doc, "lenientLimit", &len) ||
        !storage__int(doc, "gcGraceSeconds", &s.gc_grace_s) ||
        !storage__int(doc, "gcIntervalSeconds", &s.gc_interval_s) ||
        !storage__int(doc, "scrubBytesPerSecond", &s.scrub_rate) ||
        !storage__int(doc, "repairBytesPerSecond", &s.repair_rate) || red > 16 || len > 16) {
        http_error(r, 400,
                   "expected a JSON object of integers: redundancy, lenientLimit, gcGraceSeconds,"
                   " gcIntervalSeconds, scrubBytesPerSecond, repairBytesPerSecond");
        return;
    }
    s.redundancy = (int)red;
    s.lenient_limit = (int)len;
    int rc = storage_set_settings(r->ctx->storage, &s);
    if (rc == GR_EINVAL) {
        http_error(r, 400,
                   "out of range: 1 <= lenientLimit <= redundancy <= 16, rates and times >= 0,"
                   " repairBytesPerSecond >= 1024");
        return;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    storage_kick_repair(r->ctx->storage);
    http_json(r, 200, storage_status_json(r->ctx->storage));
}

static void storage__config_get(struct http_req *r)
{
    struct storage_settings s;
    storage_get_settings(r->ctx->storage, &s);
    http_json(r, 200,
              json_pack("{s:i,s:i,s:I,s:I,s:I,s:I}", "redundancy", s.redundancy, "lenientLimit",
                        s.lenient_limit, "gcGraceSeconds", (json_int_t)s.gc_grace_s,
                        "gcIntervalSeconds", (json_int_t)s.gc_interval_s, "scrubBytesPerSecond",
                        (json_int_t)s.scrub_rate, "repairBytesPerSecond",
                        (json_int_t)s.repair_rate));
}

/* POST /api/system/storage/migrate {"to":"s3","bytesPerSecond":N}; GET: the state. */
static void storage__migrate_post(struct http_req *r, json_t *doc)
{
    json_t *to = json_object_get(doc, "to"), *rate = json_object_get(doc, "bytesPerSecond");
    if (!json_is_object(doc) || !json_is_string(to) || (rate && !json_is_integer(rate))) {
        http_error(r, 400,
                   "expected {\"to\": \"local\" | \"s3\" | \"shared-fs\","
                   " \"bytesPerSecond\": N (optional, 0: no limit)}");
        return;
    }
    const char *why = NULL;
    int rc = storage_migrate_start(r->ctx->storage, json_string_value(to),
                                   rate ? json_integer_value(rate) : 0, &why);
    if (rc == GR_EINVAL)
        http_error(r, 400, "cannot migrate to %s: %s", json_string_value(to), why);
    else if (rc == GR_ECONFLICT || rc == GR_EUNAVAIL)
        http_error(r, 409, "cannot migrate to %s: %s", json_string_value(to), why);
    else if (rc)
        http_error_code(r, rc, NULL);
    else
        http_json(r, 202, storage_provider_json(r->ctx->storage));
}

static void admin_api__storage(struct http_req *r, const char *sub)
{
    if (!http_need_admin(r))
        return;
    if (!r->ctx->storage) {
        http_error(r, 503, "storage is not started");
        return;
    }
    if (!strcmp(sub, "config")) {
        if (r->method == HM_GET || r->method == HM_HEAD)
            storage__config_get(r);
        else if (r->method == HM_PUT || r->method == HM_POST)
            http_read_json_body(r, storage__config_put);
        else
            http_error(r, 405, "method %s not allowed here", r->method_str);
        return;
    }
    if (!strcmp(sub, "migrate")) {
        if (r->method == HM_GET || r->method == HM_HEAD)
            http_json(r, 200, storage_provider_json(r->ctx->storage));
        else if (r->method == HM_POST)
            http_read_json_body(r, storage__migrate_post);
        else
            http_error(r, 405, "method %s not allowed here", r->method_str);
        return;
    }
    if (r->method != HM_POST) {
        http_error(r, 405, "method %s not allowed here", r->method_str);
        return;
    }
    if (!strcmp(sub, "gc")) {
        const char *g = http_query(r, "graceSeconds");
        char *end = NULL;
        long long grace = g ? strtoll(g, &end, 10) : -1;
        if (g && (*end || grace < 0)) {
            http_error(r, 400, "graceSeconds must be a number >= 0");
            return;
        }
        struct storage_gc_report rep;
        int rc = storage_gc(r->ctx->storage, grace, &rep);
        if (rc == GR_EUNAVAIL)
            http_error(r, 409, "a garbage collection is already running on this node");
        else if (rc)
            http_error_code(r, rc, NULL);
        else
            http_json(r, 200,
                      json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "revived", (json_int_t)rep.revived,
                                "tombstoned", (json_int_t)rep.tombstoned, "binariesDeleted",
                                (json_int_t)rep.deleted, "filesDeleted",
                                (json_int_t)rep.files_deleted, "bytesFreed",
                                (json_int_t)rep.bytes_freed, "keptUnreachable",
                                (json_int_t)rep.kept_unreachable, "durationMs",
                                (json_int_t)rep.duration_ms));
        return;
    }
    if (!strcmp(sub, "optimize")) {
        struct storage_repair_report rep;
        int rc = storage_repair(r->ctx->storage, &rep);
        if (rc == GR_EUNAVAIL)
            http_error(r, 409, "a repair pass is already running on this node");
        else if (rc)
            http_error_code(r, rc, NULL);
        else
            http_json(r, 200,
                      json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "checked", (json_int_t)rep.checked,
                                "copied", (json_int_t)rep.copied, "trimmed",
                                (json_int_t)rep.trimmed, "failed", (json_int_t)rep.failed,
                                "unavailable", (json_int_t)rep.unavailable, "bytes",
                                (json_int_t)rep.bytes, "durationMs", (json_int_t)rep.duration_ms));
        return;
    }
    if (!strcmp(sub, "scrub")) {
        struct storage_scrub_report rep;
        int rc = storage_scrub(r->ctx->storage, &rep);
        if (rc == GR_EUNAVAIL)
            http_error(r, 409, "a scrub is already running on this node");
        else if (rc)
            http_error_code(r, rc, NULL);
        else
            http_json(r, 200,
                      json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "orphansDeleted",
                                (json_int_t)rep.orphans, "files", (json_int_t)rep.files, "bytes",
                                (json_int_t)rep.bytes, "bad", (json_int_t)rep.bad, "healed",
                                (json_int_t)rep.healed, "missing", (json_int_t)rep.missing,
                                "adopted", (json_int_t)rep.adopted, "durationMs",
                                (json_int_t)rep.duration_ms));
        return;
    }
    http_error(r, 404, "no such api: /api/system/storage/%s", sub);
}

static const struct http_route storage__routes[] = {
    {"/api/system/storage/", HTTP_PREFIX, HTTP_M_ANY, HTTP_AUTH, "system", admin_api__storage},
    /* the cluster port: signed requests only (cluster_api.c) */
    {"/", HTTP_PREFIX, HTTP_M_ANY, HTTP_INTERNAL, "cluster", storage_cluster_api},
    {NULL, HTTP_EXACT, 0, HTTP_AUTH, NULL, NULL},
};

const struct http_route *const storage_routes = storage__routes;
