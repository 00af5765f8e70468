/*
 * multipart.c - streaming form bodies (multipart.h) over libmicrohttpd's
 * post processor, which hands each value over in pieces as the body
 * arrives; this file only tells parts apart and carries the caller's error.
 */
#include "http/multipart.h"
#include "http/req.h"

#include "base/err.h"

#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

/* The post processor's own buffer: a part's headers must fit in it. */
#define MULTIPART_BUFFER (32 * 1024)
#define MULTIPART_NAME_MAX 256 /* longer field names are one name, cut here */

struct http_multipart {
    struct MHD_PostProcessor *pp;
    http_multipart_fn fn;
    void *arg;
    int err; /* fn's code once it stopped the parse */
    bool in_part;
    bool named_file; /* the current part has a file name */
    uint64_t part_bytes;
    char name[MULTIPART_NAME_MAX];
};

static void multipart__cleanup(void *arg)
{
    struct http_multipart *m = arg;
    if (m->pp)
        MHD_destroy_post_processor(m->pp);
    m->pp = NULL;
}

/*
 * libmicrohttpd calls this per piece, off counting from 0 in each value. A
 * piece at offset 0 starts a new part, unless the part before had no bytes
 * yet and carries the same name (an empty first call for the same value).
 */
static enum MHD_Result multipart__iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *filename, const char *content_type,
                                       const char *transfer_encoding, const char *data,
                                       uint64_t off, size_t size)
{
    struct http_multipart *m = cls;
    (void)kind, (void)transfer_encoding;
    if (m->err)
        return MHD_NO;
    const char *name = key ? key : "";
    bool first = false;
    if (off == 0 && (!m->in_part || m->part_bytes > 0 || strncmp(m->name, name, sizeof(m->name)) ||
                     m->named_file != (filename != NULL))) {
        first = true;
        m->in_part = true;
        m->part_bytes = 0;
        m->named_file = filename != NULL;
        snprintf(m->name, sizeof(m->name), "%s", name);
    }
    struct http_multipart_piece p = {
        .name = name,
        .filename = filename,
        .content_type = content_type,
        .data = data ? data : "",
        .len = data ? size : 0,
        .off = off,
        .first = first,
    };
    m->part_bytes += p.len;
    int rc = m->fn(m->arg, &p);
    if (rc) {
        m->err = rc;
        return MHD_NO;
    }
    return MHD_YES;
}

int http_multipart_begin(struct http_req *r, http_multipart_fn fn, void *arg,
                         struct http_multipart **out)
{
    struct http_multipart *m = gr_arena_calloc(r->arena, sizeof(*m));
    m->fn = fn;
    m->arg = arg;
    m->pp = MHD_create_post_processor(r->conn, MULTIPART_BUFFER, multipart__iter, m);
    if (!m->pp)
        return GR_EINVAL;
    gr_arena_cleanup(r->arena, multipart__cleanup, m);
    *out = m;
    return GR_OK;
}

int http_multipart_feed(struct http_multipart *m, const char *data, size_t len)
{
    if (m->err)
        return m->err;
    if (!m->pp)
        return GR_EINVAL;
    if (MHD_post_process(m->pp, data, len) != MHD_YES)
        return m->err ? m->err : GR_EINVAL;
    return GR_OK;
}

int http_multipart_finish(struct http_multipart *m)
{
    if (m->err)
        return m->err;
    if (!m->pp)
        return GR_EINVAL;
    enum MHD_Result done = MHD_destroy_post_processor(m->pp);
    m->pp = NULL;
    if (m->err) /* the last values are handed over while it finishes */
        return m->err;
    return done == MHD_YES ? GR_OK : GR_EINVAL;
}
