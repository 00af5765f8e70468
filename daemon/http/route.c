/*
 * route.c - the one route table (route.h): the core's rows, the rows
 * formats and the storage layer add at start, and the lookup both ports
 * and the metrics use.
 */
#include "http/req.h"
#include "http/route.h"

#include "base/err.h"
#include "base/log.h"
#include "formats/format.h"

#include <string.h>

/* The core's endpoints. Formats and the storage layer bring their own. */
static const struct http_route route__core[] = {
    /* health: before readiness and authentication */
    {"/api/v1/system/", HTTP_PREFIX, HTTP_M_ANY, HTTP_OPEN, "health", h_system_v1},
    {"/api/system/ping", HTTP_EXACT, HTTP_M_ANY, HTTP_OPEN, "health", h_ping},
    /* the API */
    {"/api/system/version", HTTP_EXACT, HTTP_M_READ, HTTP_AUTH, "system", h_system_version},
    {"/api/system/metrics", HTTP_EXACT, HTTP_M_ANY, HTTP_AUTH, "system", h_system_metrics},
    {"/api/system/maintenance", HTTP_EXACT, HTTP_M_POST | HTTP_M_PUT, HTTP_AUTH, "system",
     h_system_maintenance},
    {"/api/system/settings", HTTP_EXACT, HTTP_M_READ | HTTP_M_PUT | HTTP_M_POST, HTTP_AUTH,
     "system", h_system_settings},
    {"/api/v1/metrics", HTTP_EXACT, HTTP_M_ANY, HTTP_AUTH, "system", h_metrics},
    {"/api/repositories", HTTP_EXACT, HTTP_M_READ, HTTP_AUTH, "repositories", h_repositories},
    {"/api/repositories/", HTTP_PREFIX, HTTP_M_ANY, HTTP_AUTH, "repositories", h_repository},
    {"/api/storage/", HTTP_PREFIX, HTTP_M_ANY, HTTP_AUTH, "storage", h_storage},
    {"/api/storageinfo", HTTP_EXACT, HTTP_M_ANY, HTTP_AUTH, "storage", h_storageinfo},
    {"/api/search/", HTTP_PREFIX, HTTP_M_ANY, HTTP_AUTH, "search", h_search},
    {"/api/copy/", HTTP_PREFIX, HTTP_M_ANY, HTTP_AUTH, "copy_move", h_copy},
    {"/api/move/", HTTP_PREFIX, HTTP_M_ANY, HTTP_AUTH, "copy_move", h_move},
    {"/api/trash", HTTP_EXACT, HTTP_M_READ, HTTP_AUTH, "trash", h_trash_list},
    {"/api/trash/list", HTTP_EXACT, HTTP_M_READ, HTTP_AUTH, "trash", h_trash_list},
    {"/api/trash/settings", HTTP_EXACT, HTTP_M_ANY, HTTP_AUTH, "trash", h_trash_settings},
    {"/api/trash/empty", HTTP_EXACT, HTTP_M_ANY, HTTP_AUTH, "trash", h_trash_empty},
    {"/api/trash/purge-expired", HTTP_EXACT, HTTP_M_ANY, HTTP_AUTH, "trash", h_trash_purge_expired},
    {"/api/trash/restore/", HTTP_PREFIX, HTTP_M_ANY, HTTP_AUTH, "trash", h_trash_restore},
    {"/api/trash/clean/", HTTP_PREFIX, HTTP_M_ANY, HTTP_AUTH, "trash", h_trash_clean},
    {"/api/security/users", HTTP_EXACT, HTTP_M_ANY, HTTP_AUTH, "api", h_sec_users},
    {"/api/security/users/", HTTP_PREFIX, HTTP_M_ANY, HTTP_AUTH, "api", h_sec_users},
    {"/api/security/groups", HTTP_EXACT, HTTP_M_ANY, HTTP_AUTH, "api", h_sec_groups},
    {"/api/security/groups/", HTTP_PREFIX, HTTP_M_ANY, HTTP_AUTH, "api", h_sec_groups},
    {"/api/security/permissions", HTTP_EXACT, HTTP_M_ANY, HTTP_AUTH, "api", h_sec_permissions},
    {"/api/security/permissions/", HTTP_PREFIX, HTTP_M_ANY, HTTP_AUTH, "api", h_sec_permissions},
    {"/api/v2/security/permissions", HTTP_EXACT, HTTP_M_ANY, HTTP_AUTH, "api",
     h_sec_permissions_v2},
    {"/api/v2/security/permissions/", HTTP_PREFIX, HTTP_M_ANY, HTTP_AUTH, "api",
     h_sec_permissions_v2},
    {"/api/security/token", HTTP_EXACT, HTTP_M_ANY, HTTP_AUTH, "api", h_sec_token},
    {"/api/security/token/", HTTP_PREFIX, HTTP_M_ANY, HTTP_AUTH, "api", h_sec_token},
    {"/api/audit", HTTP_EXACT, HTTP_M_ANY, HTTP_AUTH, "api", h_audit},
    {"/api/plugins", HTTP_EXACT, HTTP_M_ANY, HTTP_AUTH, "api", h_plugins},
    {"/api/plugins/", HTTP_PREFIX, HTTP_M_ANY, HTTP_AUTH, "api", h_plugins},
    /* the web UI (h_ui.c, docs/ui.md): its sessions, its files */
    {"/api/ui/session", HTTP_EXACT, HTTP_M_READ | HTTP_M_POST | HTTP_M_DELETE, HTTP_SESSION, "ui",
     h_ui_session},
    {"/api/ui/sessions", HTTP_EXACT, HTTP_M_READ, HTTP_AUTH, "ui", h_ui_sessions},
    {"/api/ui/sessions/", HTTP_PREFIX, HTTP_M_DELETE, HTTP_AUTH, "ui", h_ui_sessions},
    {"/ui", HTTP_EXACT, HTTP_M_READ, HTTP_OPEN, "ui", h_ui_asset},
    {"/ui/", HTTP_PREFIX, HTTP_M_READ, HTTP_OPEN, "ui", h_ui_asset},
    {"/api/", HTTP_PREFIX, HTTP_M_ANY, HTTP_AUTH, "api", h_no_api},
    /* a browser is sent to /ui/; an ended UI session reads as anonymous here */
    {"/", HTTP_EXACT, HTTP_M_ANY, HTTP_SESSION, "root", h_root},
    {NULL, HTTP_EXACT, 0, HTTP_AUTH, NULL, NULL},
};

/* What a public path no row matches is: /<repo>/<path>. */
static const struct http_route route__artifact = {"/",       HTTP_PREFIX, HTTP_M_ANY,
                                                  HTTP_AUTH, "artifact",  h_artifact};

#define ROUTE_MAX 128

/* The table: rows in the order added, with their label's index. Written
 * only before serving starts (http_routes_add), read by every thread. */
static struct {
    const struct http_route *row;
    int label;
    size_t len;
    bool api; /* the path starts with /api/ */
} route__rows[ROUTE_MAX];
static int route__n;
static const char *route__labels[HTTP_ROUTE_LABELS_MAX];
static int route__nlabels;
static bool route__core_added;
static int route__artifact_label = -1;

static int route__label(const char *name)
{
    for (int i = 0; i < route__nlabels; i++)
        if (!strcmp(route__labels[i], name))
            return i;
    if (route__nlabels == HTTP_ROUTE_LABELS_MAX)
        return -1;
    route__labels[route__nlabels] = name;
    return route__nlabels++;
}

static int route__add(const struct http_route *rows)
{
    for (const struct http_route *row = rows; row->path; row++) {
        for (int i = 0; i < route__n; i++)
            if (!strcmp(route__rows[i].row->path, row->path) &&
                route__rows[i].row->match == row->match &&
                (route__rows[i].row->auth == HTTP_INTERNAL) == (row->auth == HTTP_INTERNAL)) {
                gr_error("route %s is in the table twice", row->path);
                return GR_EINVAL;
            }
        int label = route__label(row->label);
        if (route__n == ROUTE_MAX || label < 0) {
            gr_error("route table full at %s", row->path);
            return GR_EINVAL;
        }
        route__rows[route__n].row = row;
        route__rows[route__n].label = label;
        route__rows[route__n].len = strlen(row->path);
        route__rows[route__n].api = !strncmp(row->path, "/api/", 5);
        route__n++;
    }
    return GR_OK;
}

/* The core's rows go in first, whoever adds rows first. */
static int route__ensure_core(void)
{
    if (route__core_added)
        return GR_OK;
    route__core_added = true;
    int rc = route__add(route__core);
    if (rc == GR_OK && (route__artifact_label = route__label(route__artifact.label)) < 0)
        rc = GR_EINVAL;
    return rc;
}

int http_routes_add(const struct http_route *rows)
{
    int rc = route__ensure_core();
    return rc ? rc : route__add(rows);
}

int http__routes_ready(void)
{
    return route__ensure_core();
}

const struct http_route *http__route_find(bool internal, const char *path, size_t len, int *label,
                                          size_t *consumed)
{
    int best = -1;
    /* the hot path is /<repo>/<path>: a path outside /api/ skips the /api/ rows */
    bool api = len >= 5 && !memcmp(path, "/api/", 5);
    for (int i = 0; i < route__n; i++) {
        if (route__rows[i].api != api)
            continue;
        const struct http_route *row = route__rows[i].row;
        size_t n = route__rows[i].len;
        if ((row->auth == HTTP_INTERNAL) != internal || len < n || memcmp(path, row->path, n))
            continue;
        if (row->match == HTTP_EXACT) {
            if (len != n)
                continue;
            best = i;
            break; /* an exact row wins */
        }
        if (best < 0 || n > route__rows[best].len)
            best = i;
    }
    if (best >= 0) {
        *label = route__rows[best].label;
        *consumed = route__rows[best].len;
        return route__rows[best].row;
    }
    if (internal) {
        *label = -1;
        *consumed = 0;
        return NULL;
    }
    *label = route__artifact_label;
    *consumed = 1; /* the slash before the repository key */
    return &route__artifact;
}

const char *http__route_label_name(int label)
{
    return label >= 0 && label < route__nlabels ? route__labels[label] : "other";
}

int http__route_label_count(void)
{
    return route__nlabels;
}

int http__route_artifact_label(void)
{
    return route__artifact_label;
}

void h_no_api(struct http_req *r, const char *rest)
{
    http_error(r, 404, "no such api: /api/%s", rest);
}

const struct format *http_format(struct http_req *r, const char *package_type)
{
    const struct format *const *v = r->srv->opt.formats;
    for (int i = 0; v && v[i] && package_type; i++) {
        if (!strcmp(v[i]->name, package_type))
            return v[i];
        for (int k = 0; v[i]->aliases && v[i]->aliases[k]; k++)
            if (!strcmp(v[i]->aliases[k], package_type))
                return v[i];
    }
    return NULL;
}
