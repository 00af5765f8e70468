/*
 * pypi_format.c - the PyPI format's entry in the registry
 * (formats/format.h): its API at /api/pypi/<repo>/ (the simple index,
 * uploads, files, the JSON API, yanks), its search at /api/search/pypi,
 * and /<repo>/<path> of its repositories (files as generic ones; uploads
 * go through twine's form). A PyPI repository has no settings of its own.
 */
#include "formats/format.h"
#include "formats/pypi/pypi.h"
#include "http/route.h"

#include <stddef.h>

static const struct http_route pypi__routes[] = {
    {"/api/pypi/", HTTP_PREFIX, HTTP_M_ANY, HTTP_AUTH, "pypi", pypi_api},
    {"/api/search/pypi", HTTP_EXACT, HTTP_M_ANY, HTTP_AUTH, "search", pypi_search},
    {"/api/search/pypi/", HTTP_EXACT, HTTP_M_ANY, HTTP_AUTH, "search", pypi_search},
    {NULL, HTTP_EXACT, 0, HTTP_AUTH, NULL, NULL},
};

const struct format format_pypi = {
    .name = "pypi",
    .routes = pypi__routes,
    .artifact = pypi_artifact,
    .local_only = true, /* remote and virtual PyPI: not built yet */
};
