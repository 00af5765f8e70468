/*
 * maven_format.c - the Maven format's entry in the registry
 * (formats/format.h): its repository settings (Artifactory's names, kept in
 * repo_config.settings), its route (GET /api/search/gavc) and its
 * artifact handler (maven_http.c).
 */
#include "formats/format.h"
#include "formats/maven/maven.h"
#include "http/path.h"
#include "http/req.h"
#include "http/route.h"
#include "http/search.h"

#include "base/err.h"

#include <jansson.h>
#include <string.h>

static const char *const maven__bools[] = {"handleReleases", "handleSnapshots",
                                           "suppressPomConsistencyChecks", "allowReleaseRedeploy",
                                           NULL};
static const char *const maven__fields[] = {"handleReleases",       "handleSnapshots",
                                            "maxUniqueSnapshots",   "suppressPomConsistencyChecks",
                                            "allowReleaseRedeploy", "snapshotVersionBehavior",
                                            "checksumPolicyType",   NULL};

/* The settings in doc (NULL: none), Artifactory's defaults where absent. */
static void maven__from_json(json_t *doc, struct maven_settings *out)
{
    *out = (struct maven_settings){.handle_releases = true, .handle_snapshots = true};
    json_t *v;
    bool *dst[] = {&out->handle_releases, &out->handle_snapshots, &out->suppress_pom_checks,
                   &out->allow_release_redeploy};
    for (int i = 0; maven__bools[i]; i++)
        if ((v = json_object_get(doc, maven__bools[i])) && json_is_boolean(v))
            *dst[i] = json_is_true(v);
    if ((v = json_object_get(doc, "maxUniqueSnapshots")) && json_is_integer(v))
        out->max_unique_snapshots = (int)json_integer_value(v);
}

void maven_settings_read(const struct repo_config *cfg, struct maven_settings *out)
{
    json_t *doc = json_loads(cfg->settings ? cfg->settings : "{}", 0, NULL);
    maven__from_json(doc, out);
    json_decref(doc);
}

/* Check doc's Maven fields and write them into settings. */
static int maven__settings_apply(struct gr_arena *a, json_t *doc, json_t *settings,
                                 const char **why)
{
    json_t *v;
    for (int i = 0; maven__bools[i]; i++) {
        if (!(v = json_object_get(doc, maven__bools[i])))
            continue;
        if (!json_is_boolean(v)) {
            *why = gr_arena_printf(a, "field '%s' must be true or false", maven__bools[i]);
            return GR_EINVAL;
        }
        json_object_set(settings, maven__bools[i], v);
    }
    if ((v = json_object_get(doc, "maxUniqueSnapshots"))) {
        json_int_t n = json_integer_value(v);
        if (!json_is_integer(v) || n < 0 || n > 1000000) {
            *why = "field 'maxUniqueSnapshots' must be an integer from 0 to 1000000";
            return GR_EINVAL;
        }
        json_object_set(settings, "maxUniqueSnapshots", v);
    }
    /* two settings granary has one value of */
    const char *svb = json_string_value(json_object_get(doc, "snapshotVersionBehavior"));
    if (svb && strcmp(svb, "unique")) {
        *why =
            gr_arena_printf(a, "unsupported snapshotVersionBehavior '%s' (supported: unique)", svb);
        return GR_EINVAL;
    }
    const char *cp = json_string_value(json_object_get(doc, "checksumPolicyType"));
    if (cp && strcmp(cp, "client-checksums") && strcmp(cp, "server-generated-checksums")) {
        *why = gr_arena_printf(a,
                               "unsupported checksumPolicyType '%s' (supported: client-checksums,"
                               " server-generated-checksums)",
                               cp);
        return GR_EINVAL;
    }
    return GR_OK;
}

static void maven__settings_json(json_t *settings, json_t *doc)
{
    struct maven_settings s;
    maven__from_json(settings, &s);
    json_object_update_new(doc, json_pack("{s:b,s:b,s:i,s:b,s:s,s:s,s:b}", "handleReleases",
                                          s.handle_releases, "handleSnapshots", s.handle_snapshots,
                                          "maxUniqueSnapshots", s.max_unique_snapshots,
                                          "suppressPomConsistencyChecks", s.suppress_pom_checks,
                                          "snapshotVersionBehavior", "unique", "checksumPolicyType",
                                          "client-checksums", "allowReleaseRedeploy",
                                          s.allow_release_redeploy));
}

/* GET /api/search/gavc?g=&a=&v=&c=: Maven coordinates with '*' and '?'; at least one. */
void maven_search_gavc(struct http_req *r, const char *rest)
{
    (void)rest;
    struct http_search *s = gr_arena_calloc(r->arena, sizeof(*s));
    if (!http_search_begin(r, s))
        return;
    struct maven_gavc gq = {0};
    const char **f[4] = {&gq.g, &gq.a, &gq.v, &gq.c};
    static const char *const names[4] = {"g", "a", "v", "c"};
    bool any = false;
    for (int i = 0; i < 4; i++) {
        const char *v = http_query(r, names[i]);
        if (v && (strlen(v) > HTTP_SEGMENT_MAX || !http_utf8_valid(v, strlen(v)))) {
            http_error(r, 400, "%s: at most %d bytes of UTF-8", names[i], HTTP_SEGMENT_MAX);
            return;
        }
        *f[i] = v;
        any |= v && *v;
    }
    if (!any) {
        http_error(r, 400, "Missing search parameters: give at least one of g, a, v or c");
        return;
    }
    if (!http_search_repos(r, &s->q))
        return;
    struct search_hit *hits;
    int n;
    bool truncated;
    int rc = maven_gavc_search(r->ctx, r->arena, &gq, &s->q, s->props, &hits, &n, &truncated);
    if (rc)
        http_error_code(r, rc, NULL);
    else
        http_search_answer(r, s, hits, n, truncated);
}

static const struct http_route maven__routes[] = {
    {"/api/search/gavc", HTTP_EXACT, HTTP_M_ANY, HTTP_AUTH, "search", maven_search_gavc},
    {"/api/search/gavc/", HTTP_EXACT, HTTP_M_ANY, HTTP_AUTH, "search", maven_search_gavc},
    {NULL, HTTP_EXACT, 0, HTTP_AUTH, NULL, NULL},
};

const struct format format_maven = {
    .name = "maven",
    .routes = maven__routes,
    .artifact = maven_artifact,
    .settings_fields = maven__fields,
    .settings_apply = maven__settings_apply,
    .settings_json = maven__settings_json,
    .remote_spec = maven_remote_spec,
    .virtual_get = maven_virtual_get,
    .merge_index = maven_metadata_merge,
};
