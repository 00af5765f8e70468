/*
 * oci_format.c - the docker format's entry in the registry
 * (formats/format.h): packageType "docker" (alias "oci"), the OCI
 * distribution API at /v2/ (oci_http.c), and /<repo>/<path> of its
 * repositories read as files (writes go through /v2/ only).
 */
#include "formats/format.h"
#include "formats/oci/oci.h"
#include "http/route.h"

#include <stddef.h>

static const struct http_route oci__routes[] = {
    {"/v2/", HTTP_PREFIX, HTTP_M_ANY, HTTP_BYHAND, "oci", oci_api},
    {"/v2", HTTP_EXACT, HTTP_M_ANY, HTTP_BYHAND, "oci", oci_api},
    {NULL, HTTP_EXACT, 0, HTTP_AUTH, NULL, NULL},
};

static const char *const oci__aliases[] = {"oci", NULL};

const struct format format_oci = {
    .name = "docker",
    .aliases = oci__aliases,
    .routes = oci__routes,
    .artifact = oci_artifact,
    .local_only = true, /* remote and virtual registries: not built yet */
};
