/* h_repos.c - /api/repositories in Artifactory's shapes. */
#include "http/path.h"
#include "http/req.h"

#include "base/err.h"

#include <stdio.h>
#include <string.h>

static json_t *repos__json(struct http_req *r, const struct repo_config *c, bool full)
{
    if (!full)
        return json_pack("{s:s,s:s,s:s,s:s,s:s}", "key", c->key, "type", "LOCAL", "description",
                         c->description, "url",
                         gr_arena_printf(r->arena, "%s/%s", http_base_url(r), c->key),
                         "packageType", c->package_type);
    json_t *doc =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "key", c->key, "rclass", c->rclass, "packageType",
                  c->package_type, "description", c->description, "includesPattern",
                  c->includes_pattern, "excludesPattern", c->excludes_pattern);
    if (!strcmp(c->package_type, "maven")) /* Artifactory's names (docs/maven.md) */
        json_object_update_new(
            doc, json_pack("{s:b,s:b,s:i,s:b,s:s,s:s,s:b}", "handleReleases", c->handle_releases,
                           "handleSnapshots", c->handle_snapshots, "maxUniqueSnapshots",
                           c->max_unique_snapshots, "suppressPomConsistencyChecks",
                           c->suppress_pom_checks, "snapshotVersionBehavior", "unique",
                           "checksumPolicyType", "client-checksums", "allowReleaseRedeploy",
                           c->allow_release_redeploy));
    return doc;
}

/* Maven fields: booleans, a count, and two settings granary has one value of. */
static const char *const repos__bools[] = {"handleReleases", "handleSnapshots",
                                           "suppressPomConsistencyChecks", "allowReleaseRedeploy",
                                           NULL};

static bool repos__is_bool_field(const char *k)
{
    for (int i = 0; repos__bools[i]; i++)
        if (!strcmp(k, repos__bools[i]))
            return true;
    return false;
}

/* Check and apply the Maven fields of doc; false: an answer (400) was sent. */
static bool repos__apply_maven(struct http_req *r, json_t *doc, struct repo_config *cfg)
{
    json_t *v;
    bool *dst[] = {&cfg->handle_releases, &cfg->handle_snapshots, &cfg->suppress_pom_checks,
                   &cfg->allow_release_redeploy};
    for (int i = 0; repos__bools[i]; i++)
        if ((v = json_object_get(doc, repos__bools[i])))
            *dst[i] = json_is_true(v);
    if ((v = json_object_get(doc, "maxUniqueSnapshots"))) {
        json_int_t n = json_integer_value(v);
        if (!json_is_integer(v) || n < 0 || n > 1000000) {
            http_error(r, 400, "field 'maxUniqueSnapshots' must be an integer from 0 to 1000000");
            return false;
        }
        cfg->max_unique_snapshots = (int)n;
    }
    const char *svb = json_string_value(json_object_get(doc, "snapshotVersionBehavior"));
    if (svb && strcmp(svb, "unique")) {
        http_error(r, 400, "unsupported snapshotVersionBehavior '%s' (supported: unique)", svb);
        return false;
    }
    const char *cp = json_string_value(json_object_get(doc, "checksumPolicyType"));
    if (cp && strcmp(cp, "client-checksums") && strcmp(cp, "server-generated-checksums")) {
        http_error(r, 400,
                   "unsupported checksumPolicyType '%s' (supported: client-checksums,"
                   " server-generated-checksums)",
                   cp);
        return false;
    }
    return true;
}

/* Apply the fields of doc onto cfg; false: an answer (400) was sent. */
static bool repos__apply(struct http_req *r, json_t *doc, struct repo_config *cfg)
{
    if (!json_is_object(doc)) {
        http_error(r, 400, "expected a JSON object");
        return false;
    }
    static const char *const known[] = {"key",
                                        "rclass",
                                        "packageType",
                                        "description",
                                        "includesPattern",
                                        "excludesPattern",
                                        "repoLayoutRef",
                                        "notes",
                                        "handleReleases",
                                        "handleSnapshots",
                                        "maxUniqueSnapshots",
                                        "suppressPomConsistencyChecks",
                                        "allowReleaseRedeploy",
                                        "snapshotVersionBehavior",
                                        "checksumPolicyType",
                                        NULL};
    const char *k;
    json_t *v;
    json_object_foreach(doc, k, v)
    {
        bool ok = false;
        for (int i = 0; known[i]; i++)
            ok |= !strcmp(k, known[i]);
        if (!ok) {
            http_error(r, 400, "unknown field '%s'", k);
            return false;
        }
        if (repos__is_bool_field(k)) {
            if (!json_is_boolean(v)) {
                http_error(r, 400, "field '%s' must be true or false", k);
                return false;
            }
            continue;
        }
        if (!strcmp(k, "maxUniqueSnapshots"))
            continue; /* checked by repos__apply_maven */
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
    if (rclass && strcmp(rclass, "local")) {
        http_error(r, 400, "unsupported rclass '%s' (supported: local)", rclass);
        return false;
    }
    const char *pt = json_string_value(json_object_get(doc, "packageType"));
    if (pt && strcmp(pt, "generic") && strcmp(pt, "maven") && strcmp(pt, "npm")) {
        http_error(r, 400, "unsupported packageType '%s' (supported: generic, maven, npm)", pt);
        return false;
    }
    if (pt)
        snprintf(cfg->package_type, sizeof(cfg->package_type), "%s", pt);
    const char *d = json_string_value(json_object_get(doc, "description"));
    const char *inc = json_string_value(json_object_get(doc, "includesPattern"));
    const char *exc = json_string_value(json_object_get(doc, "excludesPattern"));
    if (d)
        cfg->description = gr_arena_strdup(r->arena, d);
    if (inc)
        cfg->includes_pattern = gr_arena_strdup(r->arena, inc);
    if (exc)
        cfg->excludes_pattern = gr_arena_strdup(r->arena, exc);
    return repos__apply_maven(r, doc, cfg);
}

static void repos__create(struct http_req *r, json_t *doc)
{
    struct repo_config cfg;
    repo_config_defaults(&cfg);
    snprintf(cfg.key, sizeof(cfg.key), "%s", r->repo_key);
    snprintf(cfg.rclass, sizeof(cfg.rclass), "local");
    snprintf(cfg.package_type, sizeof(cfg.package_type), "generic");
    if (!json_object_get(doc, "rclass") && json_is_object(doc)) {
        http_error(r, 400, "missing field 'rclass'");
        return;
    }
    if (!repos__apply(r, doc, &cfg))
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
    if (!repos__apply(r, doc, &cfg))
        return;
    rc = repo_update(r->ctx, &cfg);
    if (rc) {
        http_error_code(r, rc, rc == GR_ENOTFOUND ? "repository not found" : NULL);
        return;
    }
    char *msg = gr_arena_printf(r->arena, "Repository '%s' update successful.\n", cfg.key);
    http_text(r, 200, "text/plain", msg, strlen(msg));
}

void h_repositories(struct http_req *r, const char *sub)
{
    bool get = r->method == HM_GET || r->method == HM_HEAD;
    if (!strcmp(sub, "repositories")) {
        if (!get) {
            http_error(r, 405, "method %s not allowed here", r->method_str);
            return;
        }
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
        return;
    }
    const char *key = sub + strlen("repositories/");
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
