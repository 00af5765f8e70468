/* sbuf.c - growable string buffer. */
#include "sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char gr_sbuf__empty[1];

void gr_sbuf_init(struct gr_sbuf *sb)
{
    sb->buf = (char *)gr_sbuf__empty;
    sb->len = sb->cap = 0;
}

void gr_sbuf_release(struct gr_sbuf *sb)
{
    if (sb->cap)
        free(sb->buf);
    gr_sbuf_init(sb);
}

char *gr_sbuf_detach(struct gr_sbuf *sb)
{
    char *s = sb->cap ? sb->buf : strdup("");
    if (!s)
        abort();
    gr_sbuf_init(sb);
    return s;
}

static void sbuf__grow(struct gr_sbuf *sb, size_t extra)
{
    if (sb->len + extra + 1 <= sb->cap)
        return;
    size_t cap = sb->cap ? sb->cap * 2 : 64;
    while (cap < sb->len + extra + 1)
        cap *= 2;
    char *nb = sb->cap ? realloc(sb->buf, cap) : malloc(cap);
    if (!nb) {
        fputs("granary: out of memory\n", stderr);
        abort();
    }
    if (!sb->cap)
        nb[0] = '\0';
    sb->buf = nb;
    sb->cap = cap;
}

void gr_sbuf_add(struct gr_sbuf *sb, const void *data, size_t len)
{
    sbuf__grow(sb, len);
    memcpy(sb->buf + sb->len, data, len);
    sb->len += len;
    sb->buf[sb->len] = '\0';
}

void gr_sbuf_adds(struct gr_sbuf *sb, const char *s)
{
    gr_sbuf_add(sb, s, strlen(s));
}

void gr_sbuf_addf(struct gr_sbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) {
        va_end(ap2);
        return;
    }
    if ((size_t)n < sizeof(tmp)) {
        gr_sbuf_add(sb, tmp, (size_t)n);
    } else {
        sbuf__grow(sb, (size_t)n);
        vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap2);
        sb->len += (size_t)n;
    }
    va_end(ap2);
}

void gr_sbuf_add_html(struct gr_sbuf *sb, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            gr_sbuf_adds(sb, "&lt;");
            break;
        case '>':
            gr_sbuf_adds(sb, "&gt;");
            break;
        case '&':
            gr_sbuf_adds(sb, "&amp;");
            break;
        case '"':
            gr_sbuf_adds(sb, "&quot;");
            break;
        case '\'':
            gr_sbuf_adds(sb, "&#39;");
            break;
        default:
            gr_sbuf_add(sb, s, 1);
        }
    }
}

void gr_sbuf_add_urlpath(struct gr_sbuf *sb, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~/!$&'()*+,=:@", c)) {
            gr_sbuf_add(sb, p, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            gr_sbuf_add(sb, e, 3);
        }
    }
}

void gr_sbuf_reset(struct gr_sbuf *sb)
{
    sb->len = 0;
    if (sb->cap)
        sb->buf[0] = '\0';
}
