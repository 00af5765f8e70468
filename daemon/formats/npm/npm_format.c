/*
 * npm_format.c - the npm format's entry in the registry (formats/format.h):
 * the registry API at /api/npm/<repo>/ (npm_http.c). An npm repository has
 * no settings of its own, and its /<repo>/<path> is the core's (tarballs
 * as files).
 */
#include "formats/format.h"
#include "formats/npm/npm.h"
#include "http/route.h"

#include <stddef.h>

static const struct http_route npm__routes[] = {
    {"/api/npm/", HTTP_PREFIX, HTTP_M_ANY, HTTP_AUTH, "npm", npm_api},
    {NULL, HTTP_EXACT, 0, HTTP_AUTH, NULL, NULL},
};

const struct format format_npm = {
    .name = "npm",
    .configure = npm_configure,
    .routes = npm__routes,
};
