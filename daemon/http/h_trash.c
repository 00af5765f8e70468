/*
 * h_trash.c - the trash can under /api/trash, in Artifactory's shapes where
 * Artifactory has them (restore, clean, empty) and granary's own otherwise:
 *   GET    /api/trash, /api/trash/list?repo=&path=&offset=&limit=   list
 *   POST   /api/trash/restore/{repo}/{path}[?to=/{repo2}/{path2}]     restore
 *   DELETE /api/trash/clean/{repo}/{path}                             purge part
 *   POST   /api/trash/empty                                           purge all
 *   POST   /api/trash/purge-expired                                   purge the expired
 *   GET/PUT /api/trash/settings {"enabled","retentionPeriodDays"}     retention
 */
#include "http/req.h"
#include "repo/security.h"

#include "base/err.h"
#include "base/sbuf.h"
#include "repo/trash.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRASH_LIST_DEFAULT 1000

/* An integer parameter from min to max; false: a 400 was sent. */
static bool trash__int_param(struct http_req *r, const char *name, int def, int min, int max,
                             int *out)
{
    const char *v = http_query(r, name);
    *out = def;
    if (!v)
        return true;
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < min || n > max) {
        http_error(r, 400, "parameter '%s' must be an integer from %d to %d", name, min, max);
        return false;
    }
    *out = (int)n;
    return true;
}

static void trash__list(struct http_req *r)
{
    const char *repo = http_query(r, "repo");
    const char *path = http_query(r, "path");
    int offset, limit;
    if (!trash__int_param(r, "offset", 0, 0, 1 << 30, &offset) ||
        !trash__int_param(r, "limit", TRASH_LIST_DEFAULT, 1, TRASH_LIST_MAX, &limit))
        return;
    if (repo && !*repo)
        repo = NULL;
    if (path) {
        while (*path == '/')
            path++;
        size_t n = strlen(path);
        while (n > 0 && path[n - 1] == '/')
            n--;
        path = gr_arena_strndup(r->arena, path, n);
    }
    struct trash_item *v;
    int n;
    bool more;
    const struct sec_perms *perms;
    int rc = http_perms(r, &perms);
    if (rc == GR_OK) /* only what the caller could read where it was */
        rc = trash_list(r->ctx, r->arena, repo, path, perms, offset, limit, &v, &n, &more);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    json_t *items = json_array();
    for (int i = 0; i < n; i++) {
        char created[40], modified[40], deleted[40];
        http_iso8601(v[i].created_ms, created, sizeof(created));
        http_iso8601(v[i].modified_ms, modified, sizeof(modified));
        http_iso8601(v[i].deleted_ms, deleted, sizeof(deleted));
        json_t *props = json_loads(v[i].properties, 0, NULL);
        json_array_append_new(items, json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:o}",
                                               "repo", v[i].repo, "path", v[i].path, "sha256",
                                               v[i].sha256, "size", (json_int_t)v[i].size,
                                               "created", created, "createdBy", v[i].created_by,
                                               "modified", modified, "modifiedBy", v[i].modified_by,
                                               "deleted", deleted, "deletedBy", v[i].deleted_by,
                                               "properties", props ? props : json_object()));
    }
    http_json(r, 200,
              json_pack("{s:s,s:o,s:i,s:i,s:b}", "repo", "auto-trashcan", "items", items, "offset",
                        offset, "limit", limit, "more", more));
}

static json_t *trash__settings_json(int days)
{
    return json_pack("{s:b,s:i}", "enabled", days > 0, "retentionPeriodDays", days);
}

static void trash__settings_put(struct http_req *r, json_t *doc)
{
    if (!json_is_object(doc)) {
        http_error(r, 400, "expected {\"retentionPeriodDays\": N}");
        return;
    }
    const char *k;
    json_t *val;
    json_object_foreach(doc, k, val)
    {
        if (strcmp(k, "retentionPeriodDays") && strcmp(k, "enabled")) {
            http_error(r, 400, "unknown field '%s'", k);
            return;
        }
    }
    json_t *days = json_object_get(doc, "retentionPeriodDays");
    json_t *enabled = json_object_get(doc, "enabled");
    if ((days && !json_is_integer(days)) || (enabled && !json_is_boolean(enabled)) ||
        (!days && !enabled)) {
        http_error(r, 400, "expected {\"retentionPeriodDays\": N} (0 disables the trash)");
        return;
    }
    json_int_t d;
    int rc;
    if (days) {
        d = json_integer_value(days);
        if (d < 0 || d > TRASH_RETENTION_MAX) {
            http_error(r, 400, "retentionPeriodDays must be from 0 to %d", TRASH_RETENTION_MAX);
            return;
        }
        if (enabled && json_is_true(enabled) != (d > 0)) {
            http_error(r, 400, "\"enabled\" contradicts retentionPeriodDays (0 disables)");
            return;
        }
    } else if (json_is_false(enabled)) {
        d = 0;
    } else {
        int cur = TRASH_RETENTION_DEFAULT;
        rc = trash_retention_days(r->ctx, &cur);
        if (rc) {
            http_error_code(r, rc, NULL);
            return;
        }
        d = cur > 0 ? cur : TRASH_RETENTION_DEFAULT;
    }
    rc = trash_set_retention_days(r->ctx, (int)d);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    http_json(r, 200, trash__settings_json((int)d));
}

static void trash__settings(struct http_req *r)
{
    if (!http_need_admin(r))
        return;
    if (r->method == HM_GET || r->method == HM_HEAD) {
        int days = TRASH_RETENTION_DEFAULT;
        int rc = trash_retention_days(r->ctx, &days);
        if (rc)
            http_error_code(r, rc, NULL);
        else
            http_json(r, 200, trash__settings_json(days));
    } else if (r->method == HM_PUT || r->method == HM_POST) {
        http_read_json_body(r, trash__settings_put);
    } else {
        http_error(r, 405, "method %s not allowed here", r->method_str);
    }
}

/*
 * The restore target: ?to=/{repo}/{path} (leading slash optional), parsed
 * like a request path; absent: where it was deleted from. false: an answer
 * was sent.
 */
static bool trash__target(struct http_req *r, const char **repo, const char **path)
{
    *repo = r->repo_key;
    *path = r->path;
    const char *raw = NULL;
    size_t n = 0;
    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, "to", 2, &raw, &n) !=
            MHD_YES ||
        !raw || n == 0)
        return true;
    if (raw[0] == '/') {
        raw++;
        n--;
    }
    char *to = gr_arena_strndup(r->arena, raw, n);
    if (n == 0 || strlen(to) != n || to[0] == '/') {
        http_error(r, 400, "malformed target: expected ?to=/{repo}/{path}");
        return false;
    }
    const char *src_key = r->repo_key;
    char *src_path = r->path;
    bool src_slash = r->trailing_slash;
    bool ok = http_parse_repo_path(r, to, n);
    if (ok && r->matrix) {
        http_error(r, 400, "malformed target: matrix parameters are not allowed in 'to'");
        ok = false;
    }
    *repo = r->repo_key;
    *path = r->path;
    r->repo_key = src_key;
    r->path = src_path;
    r->trailing_slash = src_slash;
    r->matrix = NULL;
    return ok;
}

static void trash__restore(struct http_req *r, const char *rest)
{
    if (r->method != HM_POST) {
        http_error(r, 405, "method %s not allowed here: use POST", r->method_str);
        return;
    }
    /* anonymous callers too, with anonymous access on: each item is checked (trash.c) */
    if (!http_need_read(r) || !http_parse_repo_path(r, rest, strlen(rest)))
        return;
    const char *to_repo, *to_path;
    if (!trash__target(r, &to_repo, &to_path))
        return;
    http_audit(r, "restore", r->repo_key, r->path, NULL);
    int files = 0;
    const char *why = NULL;
    const struct sec_perms *perms;
    /* read where each item was, write where it goes: checked item by item (trash.c) */
    int rc = http_perms(r, &perms);
    if (rc == GR_OK)
        rc = trash_restore(r->ctx, r->arena, r->repo_key, r->path, to_repo, to_path, perms,
                           r->user.name, &files, &why);
    if (rc == GR_EFORBIDDEN && r->user.anonymous) {
        http_error(r, 401, "authentication required");
        return;
    }
    if (rc) {
        http_error_code(r, rc, why);
        return;
    }
    static const char msg[] = "Successfully restored trash items";
    http_text(r, 202, "text/plain", msg, sizeof(msg) - 1);
}

static void trash__clean(struct http_req *r, const char *rest)
{
    if (r->method != HM_DELETE) {
        http_error(r, 405, "method %s not allowed here: use DELETE", r->method_str);
        return;
    }
    if (!http_need_admin(r) || !http_parse_repo_path(r, rest, strlen(rest)))
        return;
    int purged = 0;
    int rc = trash_clean(r->ctx, r->repo_key, r->path, &purged);
    if (rc == GR_ENOTFOUND)
        http_error(r, 404, "nothing in the trash at %s:%s", r->repo_key, r->path);
    else if (rc)
        http_error_code(r, rc, NULL);
    else
        http_text(r, 204, NULL, "", 0);
}

void h_trash_list(struct http_req *r, const char *rest)
{
    (void)rest;
    if (http_need_write(r)) /* authenticated users; each sees what it could read */
        trash__list(r);
}

void h_trash_settings(struct http_req *r, const char *rest)
{
    (void)rest;
    trash__settings(r);
}

/* POST /api/trash/empty (everything) or /api/trash/purge-expired (empty false). */
static void trash__purge(struct http_req *r, bool empty)
{
    {
        if (r->method != HM_POST) {
            http_error(r, 405, "method %s not allowed here: use POST", r->method_str);
            return;
        }
        if (!http_need_admin(r))
            return;
        int purged = 0;
        int rc = empty ? trash_empty(r->ctx, &purged) : trash_purge_expired(r->ctx, &purged);
        if (rc) {
            http_error_code(r, rc, NULL);
        } else if (empty) {
            static const char msg[] = "Successfully deleted all trashcan items";
            http_text(r, 202, "text/plain", msg, sizeof(msg) - 1);
        } else {
            http_json(r, 200, json_pack("{s:i}", "purged", purged));
        }
    }
}

void h_trash_empty(struct http_req *r, const char *rest)
{
    (void)rest;
    trash__purge(r, true);
}

void h_trash_purge_expired(struct http_req *r, const char *rest)
{
    (void)rest;
    trash__purge(r, false);
}

void h_trash_restore(struct http_req *r, const char *rest)
{
    if (*rest)
        trash__restore(r, rest);
    else
        http_error(r, 404, "no such api: /api/trash/restore/");
}

void h_trash_clean(struct http_req *r, const char *rest)
{
    if (*rest)
        trash__clean(r, rest);
    else
        http_error(r, 404, "no such api: /api/trash/clean/");
}
