/*
 * fuzz_props.c - libFuzzer target for the property parsers (repo/props.h):
 * the ?properties= list, deploy matrix parameters, key lists and search
 * value lists. Every parsed key and value must pass the validators the
 * storage layer relies on.
 */
#include "repo/props.h"

#include "base/arena.h"
#include "base/err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_props: invariant failed: %s (line %d)\n", #cond, __LINE__);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_set(const struct props_set *s, bool values)
{
    CHECK(s->n >= 0 && s->n <= PROPS_KEYS_MAX);
    for (int i = 0; i < s->n; i++) {
        CHECK(props_key_valid(s->e[i].key));
        if (!values)
            continue;
        CHECK(s->e[i].nvalues >= 0 && s->e[i].nvalues <= PROPS_VALUES_MAX);
        for (int j = 0; j < s->e[i].nvalues; j++)
            CHECK(props_value_valid(s->e[i].values[j]));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    struct gr_arena *a = gr_arena_new();
    if (!a)
        abort();
    struct props_set set;
    int rc = props_parse_list(a, s, &set);
    CHECK(rc == GR_OK || rc == GR_EINVAL);
    if (rc == GR_OK)
        check_set(&set, true);
    rc = props_parse_matrix(a, s, &set);
    CHECK(rc == GR_OK || rc == GR_EINVAL);
    if (rc == GR_OK)
        check_set(&set, true);
    rc = props_parse_keys(a, s, &set);
    CHECK(rc == GR_OK || rc == GR_EINVAL);
    if (rc == GR_OK)
        check_set(&set, false);
    const char **v;
    int n;
    rc = props_parse_values(a, s, &v, &n);
    CHECK(rc == GR_OK || rc == GR_EINVAL);
    if (rc == GR_OK)
        for (int i = 0; i < n; i++)
            CHECK(props_value_valid(v[i]));
    (void)props_key_valid(s);
    (void)props_value_valid(s);
    gr_arena_free(a);
    free(s);
    return 0;
}
