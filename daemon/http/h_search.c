/* h_search.c - placeholder until the search handlers land (issue 3). */
#include "http/req.h"

void h_search(struct http_req *r, const char *sub)
{
    http_error(r, 404, "no such api: /api/search/%s", sub);
}
