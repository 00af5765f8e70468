/* h_trash.c - placeholder until the trash can lands (issue 3). */
#include "http/req.h"

void h_trash(struct http_req *r, const char *sub)
{
    http_error(r, 404, "no such api: /api/%s", sub);
}
