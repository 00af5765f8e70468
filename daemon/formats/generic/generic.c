/*
 * generic.c - the generic format: files at any path, served and deployed
 * by the core's artifact handler (http_artifact_generic), no settings, no
 * routes of its own. The format every other one falls back to.
 */
#include "formats/format.h"

const struct format format_generic = {
    .name = "generic",
};
