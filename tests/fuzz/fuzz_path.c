/*
 * fuzz_path.c - libFuzzer target for the path normaliser and the query
 * decoder (http/path.h). Beyond "no crash, no sanitizer report", every
 * accepted path is checked against the invariants the rest of granary
 * relies on: no "", "." or ".." segment, no backslash, no control
 * character, at most HTTP_PATH_MAX bytes, segments of at most
 * HTTP_SEGMENT_MAX bytes, valid UTF-8, and a second pass is a no-op.
 * Run with `make fuzz`; seeds are in tests/fuzz/corpus/.
 */
#include "http/path.h"

#include "base/err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_path: invariant failed: %s (line %d)\n", #cond, __LINE__);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_path(const char *out, size_t n)
{
    CHECK(n <= HTTP_PATH_MAX);
    CHECK(http_utf8_valid(out, n));
    if (n == 0)
        return;
    CHECK(out[0] != '/');
    CHECK(out[n - 1] != '/');
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n) {
            unsigned char c = (unsigned char)out[i];
            CHECK(c >= 0x20 && c != 0x7f);
            CHECK(c != '\\');
        }
        if (i == n || out[i] == '/') {
            size_t len = i - start;
            const char *seg = out + start;
            CHECK(len > 0);
            CHECK(len <= HTTP_SEGMENT_MAX);
            CHECK(!(len == 1 && seg[0] == '.'));
            CHECK(!(len == 2 && seg[0] == '.' && seg[1] == '.'));
            start = i + 1;
        }
    }
}

static void fuzz_path(const uint8_t *data, size_t size)
{
    /* exactly-sized heap copies, so any read or write past them is reported */
    char *raw = malloc(size ? size : 1);
    char *out = malloc(HTTP_PATH_MAX + 1);
    if (raw == NULL || out == NULL)
        abort();
    if (size)
        memcpy(raw, data, size);
    bool trailing = false;
    int rc = http_path_normalize(raw, size, out, HTTP_PATH_MAX + 1, &trailing);
    CHECK(rc == GR_OK || rc == GR_EINVAL || rc == GR_ETOOBIG);
    if (rc == GR_OK) {
        size_t n = strnlen(out, HTTP_PATH_MAX + 1);
        CHECK(n <= HTTP_PATH_MAX);
        check_path(out, n);
        /* an accepted input ending in a raw '/' is a folder */
        if (size > 0 && data[size - 1] == '/')
            CHECK(trailing);
        /* normalising the output again changes nothing (when it has no '%') */
        if (memchr(out, '%', n) == NULL) {
            char *again = malloc(HTTP_PATH_MAX + 1);
            if (again == NULL)
                abort();
            bool t2 = true;
            CHECK(http_path_normalize(out, n, again, HTTP_PATH_MAX + 1, &t2) == GR_OK);
            CHECK(strcmp(again, out) == 0);
            CHECK(!t2);
            free(again);
        }
    }
    free(out);
    free(raw);
}

static void fuzz_query(const uint8_t *data, size_t size)
{
    /* a small output buffer too, to exercise GR_ETOOBIG at every length */
    static const size_t sizes[] = {1, 17, 4097};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t outsz = sizes[k];
        char *raw = malloc(size ? size : 1);
        char *out = malloc(outsz);
        if (raw == NULL || out == NULL)
            abort();
        if (size)
            memcpy(raw, data, size);
        int rc = http_query_decode(raw, size, out, outsz);
        CHECK(rc == GR_OK || rc == GR_EINVAL || rc == GR_ETOOBIG);
        if (rc == GR_OK) {
            size_t n = strnlen(out, outsz);
            CHECK(n < outsz); /* NUL-terminated inside the buffer */
            CHECK(n <= size); /* decoding never grows */
            /* without escapes the output is the input with '+' as ' ' */
            if (memchr(data, '%', size) == NULL) {
                CHECK(n == size);
                for (size_t i = 0; i < n; i++)
                    CHECK(out[i] == (data[i] == '+' ? ' ' : (char)data[i]));
            }
        }
        free(out);
        free(raw);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_path(data, size);
    fuzz_query(data, size);
    (void)http_utf8_valid((const char *)data, size);
    return 0;
}
