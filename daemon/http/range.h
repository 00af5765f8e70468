/*
 * range.h - HTTP Range and date headers on downloads (RFC 9110 14.1, 13.1).
 * Pure functions, unit-tested in tests/unit/test_range.c.
 */
#ifndef HTTP_RANGE_H
#define HTTP_RANGE_H

#include <stdint.h>

enum http_range_result {
    HTTP_RANGE_NONE = 0,           /* no usable Range: send the whole body (200) */
    HTTP_RANGE_OK = 1,             /* one satisfiable range: 206 */
    HTTP_RANGE_UNSATISFIABLE = -1, /* 416 with Content-Range: bytes * / size */
};

/*
 * Parse a Range header value against a body of size bytes. Only a single
 * "bytes=" range is honoured ("a-b", "a-", "-n"); several ranges, other
 * units or malformed values read as HTTP_RANGE_NONE (the whole body is a
 * valid answer to those). On HTTP_RANGE_OK, *first and *last (inclusive)
 * are set.
 */
enum http_range_result http_range_parse(const char *value, uint64_t size, uint64_t *first,
                                        uint64_t *last);

/* Seconds since the epoch from an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), or -1. */
int64_t http_date_parse(const char *value);

#endif
