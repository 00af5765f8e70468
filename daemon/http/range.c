/* range.c - single byte ranges and HTTP dates. */
#include "http/range.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Digits only, no sign, no overflow; *end after them. */
static int range__number(const char *s, const char **end, uint64_t *out)
{
    uint64_t n = 0;
    const char *p = s;
    while (isdigit((unsigned char)*p)) {
        unsigned d = (unsigned)(*p - '0');
        if (n > (UINT64_MAX - d) / 10)
            return -1;
        n = n * 10 + d;
        p++;
    }
    if (p == s)
        return -1;
    *end = p;
    *out = n;
    return 0;
}

enum http_range_result http_range_parse(const char *v, uint64_t size, uint64_t *first,
                                        uint64_t *last)
{
    if (!v || strncmp(v, "bytes=", 6) != 0)
        return HTTP_RANGE_NONE;
    const char *p = v + 6;
    while (*p == ' ')
        p++;
    if (strchr(p, ','))
        return HTTP_RANGE_NONE; /* several ranges: answer with the whole body */
    const char *e;
    uint64_t a = 0, b = 0;
    if (*p == '-') { /* suffix: the last n bytes */
        if (range__number(p + 1, &e, &b) || *e)
            return HTTP_RANGE_NONE;
        if (b == 0 || size == 0)
            return HTTP_RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return HTTP_RANGE_OK;
    }
    if (range__number(p, &e, &a) || *e != '-')
        return HTTP_RANGE_NONE;
    p = e + 1;
    if (*p == '\0') {
        b = UINT64_MAX;
    } else if (range__number(p, &e, &b) || *e || b < a) {
        return HTTP_RANGE_NONE;
    }
    if (a >= size)
        return HTTP_RANGE_UNSATISFIABLE;
    *first = a;
    *last = b >= size ? size - 1 : b;
    return HTTP_RANGE_OK;
}

int64_t http_date_parse(const char *v)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = v ? strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm) : NULL;
    if (!end || *end)
        return -1;
    return (int64_t)timegm(&tm);
}
