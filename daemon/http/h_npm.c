/* h_npm.c - the npm registry API (issue 10 replaces this). */
#include "http/req.h"

void h_npm(struct http_req *r, const char *sub)
{
    http_error(r, 404, "no such api: /api/npm/%s", sub);
}
