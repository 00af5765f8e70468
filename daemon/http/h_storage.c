/* h_storage.c - /api/storage/{repo}/{path}: item info and file lists; /api/storageinfo. */
#include "http/req.h"

#include "base/err.h"
#include "base/sbuf.h"
#include "repo/listing.h"
#include "repo/security.h"
#include "storage/storage.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "1" or "" (a bare ?list) is on; "0" is off; absent is dflt. */
static bool storage__flag(struct http_req *r, const char *name, bool dflt)
{
    const char *v = http_query(r, name);
    if (!v)
        return dflt;
    return strcmp(v, "0") != 0 && strcmp(v, "false") != 0;
}

static const char *storage__uri(struct http_req *r)
{
    struct gr_sbuf enc = GR_SBUF_INIT;
    gr_sbuf_add_urlpath(&enc, r->path);
    const char *uri = gr_arena_printf(r->arena, "%s/api/storage/%s%s%s", http_base_url(r),
                                      r->repo_key, *r->path ? "/" : "", enc.buf);
    gr_sbuf_release(&enc);
    return uri;
}

static bool storage__visible(void *arg, const char *name)
{
    struct http_req *r = arg;
    return http_may_entry(r, r->repo_key, r->path, name);
}

/* A decimal query parameter in [lo, hi], or dflt when absent. false: 400 sent. */
static bool storage__int(struct http_req *r, const char *name, int64_t lo, int64_t hi, int64_t dflt,
                         int64_t *out)
{
    const char *s = http_query(r, name);
    *out = dflt;
    if (!s)
        return true;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) {
        http_error(r, 400, "%s must be a number between %lld and %lld", name, (long long)lo,
                   (long long)hi);
        return false;
    }
    *out = v;
    return true;
}

/* One entry of a ?list answer (Artifactory's shape); md: with mdTimestamps. */
static json_t *storage__entry_json(const struct listing_entry *e, bool md)
{
    char date[40];
    http_iso8601(e->modified_ms, date, sizeof(date));
    json_t *f;
    if (e->folder)
        f = json_pack("{s:s,s:i,s:s,s:b}", "uri", e->rel, "size", -1, "lastModified", date,
                      "folder", 1);
    else
        f = json_pack("{s:s,s:I,s:s,s:b,s:s,s:s}", "uri", e->rel, "size", (json_int_t)e->size,
                      "lastModified", date, "folder", 0, "sha1", e->sha1, "sha2", e->sha256);
    if (md && !e->folder)
        json_object_set_new(f, "mdTimestamps", json_pack("{s:s}", "properties", date));
    return f;
}

/*
 * ?list&offset=N&limit=M[&listFolders=1]: one page of the immediate
 * children, folders first, then files, each by name; "total" counts what
 * the caller may see (the UI's browser pages through a folder of any size).
 */
static void storage__list_page(struct http_req *r, bool folders, bool md)
{
    int64_t offset, limit;
    if (!storage__int(r, "offset", 0, INT64_MAX / 2, 0, &offset) ||
        !storage__int(r, "limit", 1, LISTING_PAGE_MAX, 1000, &limit))
        return;
    if (storage__flag(r, "deep", false)) {
        http_error(r, 400, "offset and limit page a folder's immediate children: not with deep");
        return;
    }
    const struct sec_perms *perms;
    int rc = http_perms(r, &perms);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    struct listing_entry *v;
    int n;
    int64_t total;
    rc = listing_children(r->ctx, r->arena, r->repo_key, r->path, folders,
                          perms->all ? NULL : storage__visible, r, offset, (int)limit, &v, &n,
                          &total);
    if (rc == GR_ENOTFOUND) {
        http_error(r, 404, "folder not found: %s/%s", r->repo_key, r->path);
        return;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    json_t *files = json_array();
    for (int i = 0; i < n; i++) {
        json_array_append_new(files, storage__entry_json(&v[i], md));
    }
    http_json(r, 200,
              json_pack("{s:s,s:o,s:I,s:I,s:I}", "uri", storage__uri(r), "files", files, "offset",
                        (json_int_t)offset, "limit", (json_int_t)limit, "total",
                        (json_int_t)total));
}

static void storage__list(struct http_req *r)
{
    if (http_query(r, "offset") || http_query(r, "limit")) {
        storage__list_page(r, storage__flag(r, "listFolders", false),
                           storage__flag(r, "mdTimestamps", false));
        return;
    }
    const char *ds = http_query(r, "depth");
    int depth = 0;
    if (ds) {
        char *end;
        long d = strtol(ds, &end, 10);
        if (*end || d < 0 || d > 1000) {
            http_error(r, 400, "depth must be a number between 0 and 1000");
            return;
        }
        depth = (int)d;
    }
    bool deep = storage__flag(r, "deep", false);
    bool folders = storage__flag(r, "listFolders", false);
    bool md = storage__flag(r, "mdTimestamps", false);
    bool root = storage__flag(r, "includeRootPath", false);
    struct listing_folder info;
    int rc = listing_folder_info(r->ctx, r->arena, r->repo_key, r->path, &info);
    if (rc == GR_ENOTFOUND) {
        http_error(r, 404, "folder not found: %s/%s", r->repo_key, r->path);
        return;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    struct listing_entry *v;
    int n;
    rc = listing_list(r->ctx, r->arena, r->repo_key, r->path, deep, depth, folders, &v, &n);
    if (rc) {
        http_error_code(r, rc, rc == GR_ENOTFOUND ? "folder not found" : NULL);
        return;
    }
    char created[40], date[40];
    http_iso8601(info.created_ms, created, sizeof(created));
    json_t *files = json_array();
    if (root && folders) {
        http_iso8601(info.modified_ms, date, sizeof(date));
        json_array_append_new(files, json_pack("{s:s,s:i,s:s,s:b}", "uri", "/", "size", -1,
                                               "lastModified", date, "folder", 1));
    }
    for (int i = 0; i < n; i++) {
        if (!http_may_entry(r, r->repo_key, r->path, v[i].rel + 1))
            continue; /* a listing shows only what the caller may read */
        json_array_append_new(files, storage__entry_json(&v[i], md));
    }
    http_json(
        r, 200,
        json_pack("{s:s,s:s,s:o}", "uri", storage__uri(r), "created", created, "files", files));
}

static void storage__folder(struct http_req *r)
{
    struct listing_folder f;
    int rc = listing_folder_info(r->ctx, r->arena, r->repo_key, r->path, &f);
    if (rc == GR_ENOTFOUND) {
        http_error(r, 404, "unable to find item: %s/%s", r->repo_key, r->path);
        return;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    char created[40], modified[40], updated[40];
    http_iso8601(f.created_ms, created, sizeof(created));
    http_iso8601(f.modified_ms, modified, sizeof(modified));
    http_iso8601(f.updated_ms, updated, sizeof(updated));
    json_t *children = json_array();
    for (int i = 0; i < f.n; i++)
        if (http_may_entry(r, r->repo_key, r->path, f.children[i].name))
            json_array_append_new(children,
                                  json_pack("{s:s,s:b}", "uri",
                                            gr_arena_printf(r->arena, "/%s", f.children[i].name),
                                            "folder", f.children[i].is_folder));
    http_json(r, 200,
              json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o}", "uri", storage__uri(r), "repo",
                        r->repo_key, "path", gr_arena_printf(r->arena, "/%s", r->path), "created",
                        created, "createdBy", f.created_by, "lastModified", modified, "modifiedBy",
                        f.modified_by, "lastUpdated", updated, "children", children));
}

void h_storage(struct http_req *r, const char *sub)
{
    if (!http_parse_repo_path(r, sub, strlen(sub)))
        return;
    struct repo_config cfg;
    int rc = repo_get(r->ctx, r->arena, r->repo_key, &cfg);
    if (rc == GR_ENOTFOUND) {
        if (http_need_read(r))
            http_error(r, 404, "repository '%s' not found", r->repo_key);
        return;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    if (http_query(r, "properties")) {
        h_properties(r);
        return;
    }
    if (r->method != HM_GET && r->method != HM_HEAD) {
        http_error(r, 405, "method %s not allowed here", r->method_str);
        return;
    }
    if (!http_need_read(r))
        return;
    if (http_query(r, "list")) {
        storage__list(r);
        return;
    }
    struct artifact a;
    rc = *r->path ? artifact_get(r->ctx, r->arena, r->repo_key, r->path, &a) : GR_ENOTFOUND;
    if (rc == GR_OK)
        http_json(r, 200, http_artifact_json(r, &a, true));
    else if (rc == GR_ENOTFOUND)
        storage__folder(r);
    else
        http_error_code(r, rc, NULL);
}

/* "3.48 GB" as Artifactory prints sizes in storageinfo. */
static const char *storage__human(struct gr_arena *a, uint64_t n)
{
    static const char *const units[] = {"bytes", "KB", "MB", "GB", "TB", "PB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    return u == 0 ? gr_arena_printf(a, "%llu bytes", (unsigned long long)n)
                  : gr_arena_printf(a, "%.2f %s", v, units[u]);
}

static const char *storage__percent(struct gr_arena *a, uint64_t part, uint64_t whole)
{
    return gr_arena_printf(a, "%.2f%%", whole ? 100.0 * (double)part / (double)whole : 0.0);
}

void h_storageinfo(struct http_req *r, const char *rest)
{
    (void)rest;
    if (r->method != HM_GET && r->method != HM_HEAD) {
        http_error(r, 405, "method %s not allowed here", r->method_str);
        return;
    }
    if (!http_need_admin(r))
        return;
    struct listing_summary s;
    int rc = listing_summary(r->ctx, r->arena, &s);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    struct gr_arena *a = r->arena;
    struct storage_disk disk;
    storage_disk(r->ctx->storage, &disk);
    int64_t free_b = disk.free_bytes, total_b = disk.total_bytes;
    uint64_t fb = free_b > 0 ? (uint64_t)free_b : 0, tb = total_b > 0 ? (uint64_t)total_b : 0;
    uint64_t used = tb > fb ? tb - fb : 0;
    json_t *list = json_array();
    uint64_t tf = 0, tfo = 0, tbytes = 0;
    for (int i = 0; i < s.nrepos; i++) {
        const struct listing_repo_summary *x = &s.repos[i];
        tf += x->files;
        tfo += x->folders;
        tbytes += x->bytes;
        json_array_append_new(
            list, json_pack("{s:s,s:s,s:I,s:I,s:s,s:I,s:I,s:s,s:s}", "repoKey", x->key, "repoType",
                            "LOCAL", "foldersCount", (json_int_t)x->folders, "filesCount",
                            (json_int_t)x->files, "usedSpace", storage__human(a, x->bytes),
                            "usedSpaceInBytes", (json_int_t)x->bytes, "itemsCount",
                            (json_int_t)(x->files + x->folders), "packageType", x->package_type,
                            "percentage", storage__percent(a, x->bytes, s.artifacts_bytes)));
    }
    json_array_append_new(
        list, json_pack("{s:s,s:s,s:I,s:I,s:s,s:I,s:I}", "repoKey", "TOTAL", "repoType", "NA",
                        "foldersCount", (json_int_t)tfo, "filesCount", (json_int_t)tf, "usedSpace",
                        storage__human(a, tbytes), "usedSpaceInBytes", (json_int_t)tbytes,
                        "itemsCount", (json_int_t)(tf + tfo)));
    json_t *bin = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "binariesCount",
        gr_arena_printf(a, "%llu", (unsigned long long)s.binaries_count), "binariesSize",
        storage__human(a, s.binaries_bytes), "artifactsSize", storage__human(a, s.artifacts_bytes),
        "optimization", storage__percent(a, s.binaries_bytes, s.artifacts_bytes), "itemsCount",
        gr_arena_printf(a, "%llu", (unsigned long long)(tf + tfo)), "artifactsCount",
        gr_arena_printf(a, "%llu", (unsigned long long)s.artifacts_count), "binariesSizeInBytes",
        (json_int_t)s.binaries_bytes, "artifactsSizeInBytes", (json_int_t)s.artifacts_bytes);
    json_t *fs = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I}", "storageType", "filesystem", "storageDirectory",
        disk.root, "totalSpace", storage__human(a, tb), "usedSpace",
        gr_arena_printf(a, "%s (%s)", storage__human(a, used), storage__percent(a, used, tb)),
        "freeSpace",
        gr_arena_printf(a, "%s (%s)", storage__human(a, fb), storage__percent(a, fb, tb)),
        "totalSpaceInBytes", (json_int_t)tb, "usedSpaceInBytes", (json_int_t)used,
        "freeSpaceInBytes", (json_int_t)fb);
    http_json(r, 200,
              json_pack("{s:o,s:o,s:o,s:o}", "binariesSummary", bin, "fileStoreSummary", fs,
                        "repositoriesSummaryList", list, "replication",
                        storage_status_json(r->ctx->storage)));
}
