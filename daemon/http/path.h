/*
 * path.h - the artifact path normaliser: every path a client sends goes
 * through it before it names anything.
 *
 * Pure functions, no allocation, safe from any thread; fuzzed by
 * tests/fuzz/fuzz_path.c and unit-tested in tests/unit/test_path.c.
 */
#ifndef HTTP_PATH_H
#define HTTP_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* Limits (docs/limits.md): bytes of a decoded path, bytes of one segment. */
#define HTTP_PATH_MAX 1024
#define HTTP_SEGMENT_MAX 255

/*
 * Decode and check the path of an artifact, as received (percent-encoded,
 * the part after "/<repo>/").
 *
 * Refused (GR_EINVAL): a bad or NUL escape (%00, %zz), a raw NUL within
 * rawlen, a backslash, control characters, invalid UTF-8, an empty
 * segment (a leading "/" or "//"), a "." or ".." segment in any encoding
 * (%2e%2e). Refused with GR_ETOOBIG: a decoded path longer than
 * HTTP_PATH_MAX or a segment longer than HTTP_SEGMENT_MAX.
 *
 * @param[in] raw, rawlen  the encoded path (not NUL-terminated necessarily).
 * @param[out] out         the decoded path, no leading or trailing slash,
 *                         NUL-terminated; outsz must be > HTTP_PATH_MAX.
 * @param[out] trailing    set when the path ended with "/" (a folder).
 * @return GR_OK, GR_EINVAL or GR_ETOOBIG; out is unspecified on error.
 * @note An empty path (the repository root) is valid: out = "".
 */
int http_path_normalize(const char *raw, size_t rawlen, char *out, size_t outsz, bool *trailing);

/*
 * Percent-decode a query-string value ('+' is a space) into out
 * (NUL-terminated). GR_EINVAL for a bad escape or a NUL, GR_ETOOBIG when
 * out is too small.
 */
int http_query_decode(const char *raw, size_t rawlen, char *out, size_t outsz);

/* True when s (len bytes) is valid UTF-8 without overlongs or surrogates. */
bool http_utf8_valid(const char *s, size_t len);

#endif
