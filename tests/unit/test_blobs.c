/* test_blobs.c - the cluster port's request signatures (repo/blobs.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "repo/blobs_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int setup(void **state)
{
    struct blobs *b = calloc(1, sizeof(*b));
    snprintf(b->node, sizeof(b->node), "n1");
    memcpy(b->key, "0123456789abcdef0123456789abcdef", 32);
    b->key_len = 32;
    b->clustered = true;
    pthread_mutex_init(&b->lock, NULL);
    *state = b;
    return 0;
}

static int teardown(void **state)
{
    struct blobs *b = *state;
    pthread_mutex_destroy(&b->lock);
    free(b);
    return 0;
}

/* the header value after "X-Granary-Auth: " */
static const char *value(const char *line)
{
    return strchr(line, ':') + 2;
}

static void auth__signed__accepted_once(void **state)
{
    struct blobs *b = *state;
    char h[400];
    const char *why = NULL;
    blobs__sign(b, "PUT", "/v1/blobs/ab/stage", h, sizeof(h));
    assert_true(blobs_auth_check(b, "PUT", "/v1/blobs/ab/stage", value(h), &why));
    assert_false(blobs_auth_check(b, "PUT", "/v1/blobs/ab/stage", value(h), &why));
    assert_string_equal(why, "replayed request");
}

static void auth__other_method_or_path__refused(void **state)
{
    struct blobs *b = *state;
    char h[400];
    const char *why = NULL;
    blobs__sign(b, "GET", "/v1/blobs/ab", h, sizeof(h));
    assert_false(blobs_auth_check(b, "DELETE", "/v1/blobs/ab", value(h), &why));
    assert_string_equal(why, "bad signature");
    assert_false(blobs_auth_check(b, "GET", "/v1/blobs/ac", value(h), &why));
    assert_false(blobs_auth_check(b, "GET", "/v1/blobs/ab?x=1", value(h), &why));
    assert_true(blobs_auth_check(b, "GET", "/v1/blobs/ab", value(h), &why));
}

static void auth__other_key__refused(void **state)
{
    struct blobs *b = *state;
    char h[400];
    const char *why = NULL;
    blobs__sign(b, "GET", "/v1/ping", h, sizeof(h));
    b->key[0] ^= 1;
    assert_false(blobs_auth_check(b, "GET", "/v1/ping", value(h), &why));
    b->key[0] ^= 1;
    assert_true(blobs_auth_check(b, "GET", "/v1/ping", value(h), &why));
}

/* Join key rotation: a request signed with the next key is accepted only
 * by a receiver that has it as its next key. */
static void auth__next_key__accepted_during_rotation(void **state)
{
    struct blobs *b = *state;
    const char *why;
    char h[400];
    unsigned char old[32];
    memcpy(old, b->key, 32);
    b->key[0] ^= 1; /* sign as a node whose key is the new one */
    blobs__sign(b, "GET", "/v1/ping", h, sizeof(h));
    memcpy(b->key, old, 32);
    assert_false(blobs_auth_check(b, "GET", "/v1/ping", value(h), &why));
    memcpy(b->next_key, old, 32);
    b->next_key[0] ^= 1;
    b->next_key_len = 32;
    blobs__sign(b, "GET", "/v1/ping", h, sizeof(h));
    assert_true(blobs_auth_check(b, "GET", "/v1/ping", value(h), &why)); /* own key */
    b->key[0] ^= 1;
    blobs__sign(b, "GET", "/v1/ping", h, sizeof(h));
    b->key[0] ^= 1;
    assert_true(blobs_auth_check(b, "GET", "/v1/ping", value(h), &why));  /* the next key */
    assert_false(blobs_auth_check(b, "GET", "/v1/ping", value(h), &why)); /* replayed */
    b->next_key_len = 0;
}

static void auth__tampered_time_or_node__refused(void **state)
{
    struct blobs *b = *state;
    char h[400], node[64], ms[32], nonce[32], mac[80], forged[400];
    const char *why = NULL;
    blobs__sign(b, "GET", "/v1/ping", h, sizeof(h));
    assert_int_equal(sscanf(value(h), "v1 %63s %31s %31s %79s", node, ms, nonce, mac), 4);
    snprintf(forged, sizeof(forged), "v1 %s %lld %s %s", node, strtoll(ms, NULL, 10) - 1000, nonce,
             mac);
    assert_false(blobs_auth_check(b, "GET", "/v1/ping", forged, &why));
    snprintf(forged, sizeof(forged), "v1 n2 %s %s %s", ms, nonce, mac);
    assert_false(blobs_auth_check(b, "GET", "/v1/ping", forged, &why));
}

static void auth__malformed_or_missing__refused(void **state)
{
    struct blobs *b = *state;
    const char *why = NULL;
    assert_false(blobs_auth_check(b, "GET", "/v1/ping", NULL, &why));
    assert_string_equal(why, "missing X-Granary-Auth");
    assert_false(blobs_auth_check(b, "GET", "/v1/ping", "v1 n1", &why));
    assert_string_equal(why, "malformed X-Granary-Auth");
    assert_false(blobs_auth_check(b, "GET", "/v1/ping", "", &why));
    b->clustered = false;
    assert_false(blobs_auth_check(b, "GET", "/v1/ping", "v1 a b c d", &why));
    b->clustered = true;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(auth__signed__accepted_once, setup, teardown),
        cmocka_unit_test_setup_teardown(auth__other_method_or_path__refused, setup, teardown),
        cmocka_unit_test_setup_teardown(auth__other_key__refused, setup, teardown),
        cmocka_unit_test_setup_teardown(auth__next_key__accepted_during_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(auth__tampered_time_or_node__refused, setup, teardown),
        cmocka_unit_test_setup_teardown(auth__malformed_or_missing__refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
