/*
 * sbuf.h - a growable, always NUL-terminated byte buffer (git's strbuf).
 *
 * Lifecycle: gr_sbuf_init() (or GR_SBUF_INIT), appends, then either
 * gr_sbuf_release() or gr_sbuf_detach() to take the malloc'ed string.
 * Allocation failure aborts the process, as with the arena.
 */
#ifndef GR_SBUF_H
#define GR_SBUF_H

#include <stddef.h>

struct gr_sbuf {
    char *buf; /* NUL-terminated; "" (static) until the first append */
    size_t len;
    size_t cap;
};

#define GR_SBUF_INIT                                                                               \
    {                                                                                              \
        (char *)gr_sbuf__empty, 0, 0                                                               \
    }
extern const char gr_sbuf__empty[1];

void gr_sbuf_init(struct gr_sbuf *sb);
void gr_sbuf_release(struct gr_sbuf *sb);
/* The string, now owned by the caller (free()); sb is reset to empty. */
char *gr_sbuf_detach(struct gr_sbuf *sb);
void gr_sbuf_add(struct gr_sbuf *sb, const void *data, size_t len);
void gr_sbuf_adds(struct gr_sbuf *sb, const char *s);
void gr_sbuf_addf(struct gr_sbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s with the five HTML special characters escaped (also right for XML text and attributes).
 */
void gr_sbuf_add_html(struct gr_sbuf *sb, const char *s);
/* Append s percent-encoded for a URL path (slashes kept). */
void gr_sbuf_add_urlpath(struct gr_sbuf *sb, const char *s);
void gr_sbuf_reset(struct gr_sbuf *sb);

#endif
