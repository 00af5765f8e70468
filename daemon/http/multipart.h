/*
 * multipart.h - streaming form bodies (multipart/form-data, and
 * application/x-www-form-urlencoded) for handlers: each part's bytes are
 * handed over as they arrive and never collected, so a form that carries
 * a large file (twine's upload) costs one fixed buffer whatever its size.
 * Format-neutral: PyPI's upload uses it; any handler that takes a form may.
 * Built on libmicrohttpd's post processor (the http layer is the one user
 * of microhttpd.h).
 *
 * Lifecycle: http_multipart_begin() in the handler (the parser lives in
 * the request's arena and is freed with it), http_multipart_feed() from
 * on_body with every chunk, http_multipart_finish() from on_end. Not
 * thread-safe: one request thread drives it.
 */
#ifndef HTTP_MULTIPART_H
#define HTTP_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_req;
struct http_multipart;

/* One piece of one part, as it arrived. */
struct http_multipart_piece {
    const char *name;         /* the field's name (Content-Disposition name=) */
    const char *filename;     /* the part's file name, or NULL for a plain field */
    const char *content_type; /* the part's Content-Type, or NULL */
    const char *data;         /* len bytes (not NUL-terminated; may hold NULs) */
    size_t len;
    uint64_t off; /* where data starts within the part */
    bool first;   /* the first piece of a new part (a repeated field starts again) */
};

/*
 * Called for every piece, in order. Return GR_OK to go on; any other code
 * stops the parse and is what http_multipart_feed() returns (the rest of
 * the body is then the handler's to drain).
 */
typedef int (*http_multipart_fn)(void *arg, const struct http_multipart_piece *p);

/*
 * Parse r's body as a form (its Content-Type says which), calling fn for
 * every piece. GR_EINVAL when the request carries no form Content-Type (or
 * a multipart one without a boundary); GR_ENOMEM.
 */
int http_multipart_begin(struct http_req *r, http_multipart_fn fn, void *arg,
                         struct http_multipart **out) __attribute__((warn_unused_result));

/* Parse len more bytes. GR_OK, fn's code, or GR_EINVAL for a malformed body. */
int http_multipart_feed(struct http_multipart *m, const char *data, size_t len)
    __attribute__((warn_unused_result));

/*
 * The body ended: GR_OK when it was a whole form; GR_EINVAL when it ended
 * inside a part or before the closing boundary; fn's code when it stopped.
 */
int http_multipart_finish(struct http_multipart *m) __attribute__((warn_unused_result));

#endif
