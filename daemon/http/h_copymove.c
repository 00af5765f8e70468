/* h_copymove.c - placeholder until copy and move land (issue 3). */
#include "http/req.h"

void h_copy_move(struct http_req *r, const char *sub, bool move)
{
    http_error(r, 404, "no such api: /api/%s/%s", move ? "move" : "copy", sub);
}
