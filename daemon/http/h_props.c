/* h_props.c - placeholder: /api/storage/...?properties lands with issue 3. */
#include "http/req.h"

void h_properties(struct http_req *r)
{
    http_error(r, 404, "properties are not available yet");
}
