/*
 * npm_format.c - the npm format's entry in the registry (formats/format.h):
 * the registry API at /api/npm/<repo>/ (npm_http.c). An npm repository has
 * no settings of its own, and its /<repo>/<path> is the core's (tarballs
 * as files).
 */
#include "formats/format.h"
#include "formats/npm/npm.h"
#include "http/route.h"
#include "remote/remote.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/*
 * How a remote npm repository fetches: a packument (kept at
 * .npm/{name}/package.json, Artifactory's place) is metadata, asked for as
 * /{name} with a scope's '/' as %2f; a tarball {name}/-/{file} is a file
 * checked against the packument's dist.
 */
static void npm__remote_spec(struct gr_arena *a, const char *path, struct remote_spec *spec)
{
    size_t n = strlen(path), hl = strlen(".npm/"), tl = strlen("/package.json");
    if (n > hl + tl && !strncmp(path, ".npm/", hl) && !strcmp(path + n - tl, "/package.json")) {
        const char *name = gr_arena_strndup(a, path + hl, n - hl - tl);
        const char *slash = strchr(name, '/');
        spec->kind = REMOTE_METADATA;
        spec->upath =
            slash ? gr_arena_printf(a, "%.*s%%2f%s", (int)(slash - name), name, slash + 1) : name;
        spec->accept = "application/json";
        return;
    }
    if (strstr(path, "/-/"))
        spec->sums = npm_remote_sums;
}

static const struct http_route npm__routes[] = {
    {"/api/npm/", HTTP_PREFIX, HTTP_M_ANY, HTTP_AUTH, "npm", npm_api},
    {NULL, HTTP_EXACT, 0, HTTP_AUTH, NULL, NULL},
};

const struct format format_npm = {
    .name = "npm",
    .configure = npm_configure,
    .routes = npm__routes,
    .remote_spec = npm__remote_spec,
    .merge_index = npm_packument_merge,
};
