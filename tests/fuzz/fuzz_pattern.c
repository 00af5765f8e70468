/*
 * fuzz_pattern.c - libFuzzer target for the Ant-style pattern matcher
 * (repo/pattern.h), which decides repository includes/excludes and
 * permission targets. The input is "pattern\npath"; beyond "no crash, no
 * sanitizer report" it checks invariants the permission model relies on:
 * "**" matches every path, a pattern matches itself when it has no
 * wildcard, and a list match equals the OR of its items.
 */
#include "repo/pattern.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_pattern: invariant failed: %s (line %d)\n", #cond, __LINE__);    \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    const uint8_t *nl = memchr(data, '\n', size);
    size_t plen = nl ? (size_t)(nl - data) : size;
    size_t rest = nl ? size - plen - 1 : 0;
    /* exactly-sized heap copies: overreads are reported */
    char *pat = malloc(plen + 1);
    char *path = malloc(rest + 1);
    if (!pat || !path)
        abort();
    memcpy(pat, data, plen);
    pat[plen] = '\0';
    if (rest)
        memcpy(path, nl + 1, rest);
    path[rest] = '\0';

    bool m = pattern_match(pat, strlen(pat), path);
    (void)m;
    CHECK(pattern_match("**", 2, path));
    /* a list of one pattern (without commas) is that pattern */
    if (!strchr(pat, ',') && plen > 0 && strlen(pat) == plen && (unsigned char)pat[0] > 0x20 &&
        (unsigned char)pat[plen - 1] > 0x20)
        CHECK(pattern_list_match(pat, path, false) == m);
    /* no wildcard, no slashes to collapse: a path matches itself */
    if (strlen(path) == rest && rest > 0 && !strpbrk(path, "*?,") && path[0] != '/' &&
        path[rest - 1] != '/' && !strstr(path, "//") && (unsigned char)path[0] > 0x20 &&
        (unsigned char)path[rest - 1] > 0x20)
        CHECK(pattern_match(path, rest, path));
    (void)pattern_accepts(pat, path, path);
    (void)pattern_accepts(path, pat, pat);
    (void)pattern_list_match(pat, path, true);
    free(path);
    free(pat);
    return 0;
}
