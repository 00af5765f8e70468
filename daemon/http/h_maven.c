/* h_maven.c - maven repositories (issue 9 replaces this: layout rules, metadata). */
#include "http/req.h"

void h_maven(struct http_req *r, const struct repo_config *cfg)
{
    h_artifact_generic(r, cfg);
}
