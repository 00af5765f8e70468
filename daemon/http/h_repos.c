/* h_repos.c - /api/repositories in Artifactory's shapes. */
#include "http/path.h"
#include "http/req.h"

#include "base/err.h"
#include "base/sbuf.h"
#include "formats/format.h"
#include "remote/remote.h"

#include <ctype.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *repos__json(struct http_req *r, const struct repo_config *c, bool full)
{
    bool remote = !strcmp(c->rclass, "remote"), virtual = !strcmp(c->rclass, "virtual");
    json_t *settings = NULL;
    if (full || remote) {
        settings = json_loads(c->settings ? c->settings : "{}", 0, NULL);
        if (!settings)
            settings = json_object();
    }
    if (!full) {
        char type[16];
        size_t i = 0;
        for (; c->rclass[i] && i < sizeof(type) - 1; i++)
            type[i] = (char)toupper((unsigned char)c->rclass[i]);
        type[i] = '\0';
        /* Artifactory's list: a remote's url is its upstream's */
        const char *up = remote ? json_string_value(json_object_get(settings, "url")) : NULL;
        json_t *doc = json_pack(
            "{s:s,s:s,s:s,s:s,s:s}", "key", c->key, "type", type, "description", c->description,
            "url", up ? up : gr_arena_printf(r->arena, "%s/%s", http_base_url(r), c->key),
            "packageType", c->package_type);
        json_decref(settings);
        return doc;
    }
    json_t *doc =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "key", c->key, "rclass", c->rclass, "packageType",
                  c->package_type, "description", c->description, "includesPattern",
                  c->includes_pattern, "excludesPattern", c->excludes_pattern);
    const struct format *f = http_format(r, c->package_type);
    if (f && f->settings_json) /* the format's own fields (docs/<format>.md) */
        f->settings_json(settings, doc);
    if (remote) /* docs/remote.md */
        remote_settings_json(settings, doc);
    else if (virtual)
        virtual_settings_json(settings, doc);
    json_decref(settings);
    return doc;
}

/* The repository fields of the core; each format adds its own (format.h). */
static const char *const repos__core_fields[] = {
    "key",           "rclass", "packageType", "description", "includesPattern", "excludesPattern",
    "repoLayoutRef", "notes",  NULL};

/* Whether k is a field of the core or of some format: a document may carry
 * another format's fields (clients send them all); only the repository's own
 * format applies its own. */
static bool repos__known_field(struct http_req *r, const char *k)
{
    for (int i = 0; repos__core_fields[i]; i++)
        if (!strcmp(k, repos__core_fields[i]))
            return true;
    const struct format *const *v = r->srv->opt.formats;
    for (int i = 0; v && v[i]; i++)
        for (int j = 0; v[i]->settings_fields && v[i]->settings_fields[j]; j++)
            if (!strcmp(k, v[i]->settings_fields[j]))
                return true;
    /* the fields of remote and virtual repositories (docs/remote.md) */
    for (int i = 0; remote_fields[i]; i++)
        if (!strcmp(k, remote_fields[i]))
            return true;
    for (int i = 0; virtual_fields[i]; i++)
        if (!strcmp(k, virtual_fields[i]))
            return true;
    return false;
}

/* The format's settings of doc, and its rclass's, merged into cfg->settings; false: an answer
 * (400) was sent. */
static bool repos__apply_format(struct http_req *r, json_t *doc, const struct format *f,
                                struct repo_config *cfg, bool creating)
{
    json_t *settings = json_loads(cfg->settings ? cfg->settings : "{}", 0, NULL);
    if (!json_is_object(settings)) {
        json_decref(settings);
        settings = json_object();
    }
    const char *why = "invalid settings";
    int rc = f->settings_apply ? f->settings_apply(r->arena, doc, settings, &why) : GR_OK;
    if (rc == GR_OK && !strcmp(cfg->rclass, "remote"))
        rc = r->ctx->remote
                 ? remote_settings_apply(r->ctx->remote, r->arena, doc, settings, creating, &why)
                 : GR_EUNAVAIL;
    else if (rc == GR_OK && !strcmp(cfg->rclass, "virtual"))
        rc = virtual_settings_apply(r->ctx, r->arena, cfg, doc, settings, &why);
    if (rc == GR_OK) {
        char *text = json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS);
        cfg->settings = text ? gr_arena_strdup(r->arena, text) : NULL;
        free(text);
        if (!cfg->settings)
            rc = GR_ENOMEM;
    }
    json_decref(settings);
    if (rc == GR_EINVAL)
        http_error(r, 400, "%s", why);
    else if (rc)
        http_error_code(r, rc, NULL);
    return rc == GR_OK;
}

/* Apply the fields of doc onto cfg; false: an answer (400) was sent. */
static bool repos__apply(struct http_req *r, json_t *doc, struct repo_config *cfg, bool creating)
{
    if (!json_is_object(doc)) {
        http_error(r, 400, "expected a JSON object");
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach(doc, k, v)
    {
        if (!repos__known_field(r, k)) {
            http_error(r, 400, "unknown field '%s'", k);
            return false;
        }
        bool core = false;
        for (int i = 0; repos__core_fields[i]; i++)
            core |= !strcmp(k, repos__core_fields[i]);
        if (!core)
            continue; /* a format's field: its format checks it */
        if (!json_is_string(v)) {
            http_error(r, 400, "field '%s' must be a string", k);
            return false;
        }
        const char *s = json_string_value(v);
        if (strlen(s) > 4096 || !http_utf8_valid(s, strlen(s)) ||
            memchr(s, '\0', json_string_length(v))) {
            http_error(r, 400, "field '%s' is not a valid string", k);
            return false;
        }
    }
    const char *key = json_string_value(json_object_get(doc, "key"));
    if (key && strcmp(key, cfg->key)) {
        http_error(r, 400, "key '%s' in the body differs from the key in the path", key);
        return false;
    }
    const char *rclass = json_string_value(json_object_get(doc, "rclass"));
    if (rclass && strcmp(rclass, "local") && strcmp(rclass, "remote") &&
        strcmp(rclass, "virtual")) {
        http_error(r, 400, "unsupported rclass '%s' (supported: local, remote, virtual)", rclass);
        return false;
    }
    if (rclass && !creating && strcmp(rclass, cfg->rclass)) {
        http_error(r, 400, "a repository's rclass cannot change ('%s' is %s)", cfg->key,
                   cfg->rclass);
        return false;
    }
    if (rclass)
        snprintf(cfg->rclass, sizeof(cfg->rclass), "%s", rclass);
    const char *pt = json_string_value(json_object_get(doc, "packageType"));
    const struct format *f = http_format(r, pt ? pt : cfg->package_type);
    if (!f) {
        const struct format *const *all = r->srv->opt.formats;
        struct gr_sbuf names = GR_SBUF_INIT;
        for (int i = 0; all && all[i]; i++)
            gr_sbuf_addf(&names, "%s%s", i ? ", " : "", all[i]->name);
        http_error(r, 400, "unsupported packageType '%s' (supported: %s)",
                   pt ? pt : cfg->package_type, names.buf ? names.buf : "");
        gr_sbuf_release(&names);
        return false;
    }
    if (f->local_only && strcmp(cfg->rclass, "local")) {
        http_error(r, 400, "packageType '%s' supports only rclass local (not %s)", f->name,
                   cfg->rclass);
        return false;
    }
    if (pt)
        snprintf(cfg->package_type, sizeof(cfg->package_type), "%s", f->name);
    const char *d = json_string_value(json_object_get(doc, "description"));
    const char *inc = json_string_value(json_object_get(doc, "includesPattern"));
    const char *exc = json_string_value(json_object_get(doc, "excludesPattern"));
    if (d)
        cfg->description = gr_arena_strdup(r->arena, d);
    if (inc)
        cfg->includes_pattern = gr_arena_strdup(r->arena, inc);
    if (exc)
        cfg->excludes_pattern = gr_arena_strdup(r->arena, exc);
    return repos__apply_format(r, doc, f, cfg, creating);
}

static void repos__create(struct http_req *r, json_t *doc)
{
    struct repo_config cfg;
    repo_config_defaults(&cfg);
    snprintf(cfg.key, sizeof(cfg.key), "%s", r->repo_key);
    snprintf(cfg.rclass, sizeof(cfg.rclass), "local");
    /* the registry's first format is the default (formats.c) */
    const struct format *const *all = r->srv->opt.formats;
    snprintf(cfg.package_type, sizeof(cfg.package_type), "%s", all && all[0] ? all[0]->name : "");
    if (!json_object_get(doc, "rclass") && json_is_object(doc)) {
        http_error(r, 400, "missing field 'rclass'");
        return;
    }
    if (!repos__apply(r, doc, &cfg, true))
        return;
    int rc = repo_create(r->ctx, &cfg);
    if (rc == GR_EEXIST) {
        http_error(r, 400, "repository '%s' already exists", cfg.key);
        return;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    char *msg = gr_arena_printf(r->arena, "Successfully created repository '%s' \n", cfg.key);
    http_text(r, 200, "text/plain", msg, strlen(msg));
}

static void repos__update(struct http_req *r, json_t *doc)
{
    struct repo_config cfg;
    int rc = repo_get(r->ctx, r->arena, r->repo_key, &cfg);
    if (rc == GR_ENOTFOUND) {
        http_error(r, 404, "repository '%s' not found", r->repo_key);
        return;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    if (!repos__apply(r, doc, &cfg, false))
        return;
    rc = repo_update(r->ctx, &cfg);
    if (rc) {
        http_error_code(r, rc, rc == GR_ENOTFOUND ? "repository not found" : NULL);
        return;
    }
    char *msg = gr_arena_printf(r->arena, "Repository '%s' update successful.\n", cfg.key);
    http_text(r, 200, "text/plain", msg, strlen(msg));
}

void h_repositories(struct http_req *r, const char *rest)
{
    (void)rest;
    {
        if (!http_need_read(r))
            return;
        struct repo_config *v;
        int n;
        int rc = repo_list(r->ctx, r->arena, &v, &n);
        if (rc) {
            http_error_code(r, rc, NULL);
            return;
        }
        json_t *arr = json_array();
        for (int i = 0; i < n; i++)
            if (http_repo_visible(r, v[i].key)) /* only where the caller may read something */
                json_array_append_new(arr, repos__json(r, &v[i], false));
        http_json(r, 200, arr);
    }
}

void h_repository(struct http_req *r, const char *key)
{
    bool get = r->method == HM_GET || r->method == HM_HEAD;
    if (repo_key_check(key) != GR_OK) {
        if (r->method == HM_PUT)
            http_error(r, 400,
                       "invalid repository key: use letters, digits, '.', '_' and '-',"
                       " starting with a letter or digit, at most %d characters; "
                       "reserved: api, artifactory, ui, v2",
                       REPO_KEY_MAX);
        else
            http_error(r, 404, "repository not found");
        return;
    }
    r->repo_key = key;
    if (get) {
        if (!http_need_repo_visible(r, key))
            return;
        struct repo_config cfg;
        int rc = repo_get(r->ctx, r->arena, key, &cfg);
        if (rc == GR_ENOTFOUND)
            http_error(r, 404, "repository '%s' not found", key);
        else if (rc)
            http_error_code(r, rc, NULL);
        else
            http_json(r, 200, repos__json(r, &cfg, true));
        return;
    }
    if (!http_need_admin(r))
        return;
    switch (r->method) {
    case HM_PUT:
        http_read_json_body(r, repos__create);
        return;
    case HM_POST:
        http_read_json_body(r, repos__update);
        return;
    case HM_DELETE: {
        int rc = repo_delete(r->ctx, key);
        if (rc == GR_ENOTFOUND) {
            http_error(r, 404, "repository '%s' not found", key);
        } else if (rc) {
            http_error_code(r, rc, NULL);
        } else {
            char *msg = gr_arena_printf(
                r->arena, "Repository '%s' and all its content have been removed successfully.\n",
                key);
            http_text(r, 200, "text/plain", msg, strlen(msg));
        }
        return;
    }
    default:
        http_error(r, 405, "method %s not allowed here", r->method_str);
    }
}
