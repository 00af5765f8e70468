/* test_blobs.c - the cluster port's request and answer signatures (storage/auth.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int setup(void **state)
{
    struct storage *b = calloc(1, sizeof(*b));
    snprintf(b->node, sizeof(b->node), "n1");
    memcpy(b->key, "0123456789abcdef0123456789abcdef", 32);
    b->key_len = 32;
    b->clustered = true;
    pthread_mutex_init(&b->lock, NULL);
    assert_int_equal(storage__keys_init(b), 0);
    *state = b;
    return 0;
}

/* After a change of b->key or b->next_key. */
static void rekey(struct storage *b)
{
    assert_int_equal(storage__keys_init(b), 0);
}

static int teardown(void **state)
{
    struct storage *b = *state;
    storage__keys_free(b);
    pthread_mutex_destroy(&b->lock);
    free(b);
    return 0;
}

/* the header value after "Name: " */
static const char *value(const char *line)
{
    return strchr(line, ':') + 2;
}

/* Check a request signed into sig at b (this node), v2 alone. */
static bool check(struct storage *b, const char *method, const char *uri,
                  const struct storage__sig *sig, const char **why)
{
    struct storage_auth a;
    return storage_auth_check(b, method, uri, value(sig->auth), NULL, &a, why);
}

static void auth__signed__accepted_once(void **state)
{
    struct storage *b = *state;
    struct storage__sig sig;
    const char *why = NULL;
    storage__sign(b, "PUT", "/v1/blobs/ab/stage", "n1", &sig);
    assert_string_equal(sig.auth2, "");
    assert_memory_equal(sig.auth, "X-Granary-Auth: v2 n1 n1 ", 25);
    assert_true(check(b, "PUT", "/v1/blobs/ab/stage", &sig, &why));
    assert_false(check(b, "PUT", "/v1/blobs/ab/stage", &sig, &why));
    assert_string_equal(why, "replayed request");
}

static void auth__other_method_or_path__refused(void **state)
{
    struct storage *b = *state;
    struct storage__sig sig;
    const char *why = NULL;
    storage__sign(b, "GET", "/v1/blobs/ab", "n1", &sig);
    assert_false(check(b, "DELETE", "/v1/blobs/ab", &sig, &why));
    assert_string_equal(why, "bad signature");
    assert_false(check(b, "GET", "/v1/blobs/ac", &sig, &why));
    assert_false(check(b, "GET", "/v1/blobs/ab?x=1", &sig, &why));
    assert_true(check(b, "GET", "/v1/blobs/ab", &sig, &why));
}

/* A request signed for node n2, replayed to this node (n1): refused,
 * whether sent as it was or with its destination rewritten. */
static void auth__signed_for_another_node__refused(void **state)
{
    struct storage *b = *state;
    struct storage__sig sig;
    struct storage_auth a;
    char node[64], dest[64], ms[32], nonce[32], mac[80], forged[400];
    const char *why = NULL;
    storage__sign(b, "DELETE", "/v1/blobs/ab", "n2", &sig);
    assert_false(check(b, "DELETE", "/v1/blobs/ab", &sig, &why));
    assert_string_equal(why, "signed for another node");
    assert_int_equal(
        sscanf(value(sig.auth), "v2 %63s %63s %31s %31s %79s", node, dest, ms, nonce, mac), 5);
    assert_string_equal(dest, "n2");
    snprintf(forged, sizeof(forged), "v2 %s n1 %s %s %s", node, ms, nonce, mac);
    assert_false(storage_auth_check(b, "DELETE", "/v1/blobs/ab", forged, NULL, &a, &why));
    assert_string_equal(why, "bad signature");
    /* the node it was meant for takes it */
    snprintf(b->node, sizeof(b->node), "n2");
    assert_true(check(b, "DELETE", "/v1/blobs/ab", &sig, &why));
}

static void auth__other_key__refused(void **state)
{
    struct storage *b = *state;
    struct storage__sig sig;
    const char *why = NULL;
    storage__sign(b, "GET", "/v1/ping", "n1", &sig);
    b->key[0] ^= 1;
    rekey(b);
    assert_false(check(b, "GET", "/v1/ping", &sig, &why));
    b->key[0] ^= 1;
    rekey(b);
    assert_true(check(b, "GET", "/v1/ping", &sig, &why));
}

/* Join key rotation: a request signed with the next key is accepted only
 * by a receiver that has it as its next key. */
static void auth__next_key__accepted_during_rotation(void **state)
{
    struct storage *b = *state;
    const char *why;
    struct storage__sig sig;
    unsigned char old[32];
    memcpy(old, b->key, 32);
    b->key[0] ^= 1; /* sign as a node whose key is the new one */
    rekey(b);
    storage__sign(b, "GET", "/v1/ping", "n1", &sig);
    memcpy(b->key, old, 32);
    rekey(b);
    assert_false(check(b, "GET", "/v1/ping", &sig, &why));
    memcpy(b->next_key, old, 32);
    b->next_key[0] ^= 1;
    b->next_key_len = 32;
    rekey(b);
    storage__sign(b, "GET", "/v1/ping", "n1", &sig);
    assert_true(check(b, "GET", "/v1/ping", &sig, &why)); /* own key */
    b->key[0] ^= 1;
    rekey(b);
    storage__sign(b, "GET", "/v1/ping", "n1", &sig);
    b->key[0] ^= 1;
    rekey(b);
    assert_true(check(b, "GET", "/v1/ping", &sig, &why));  /* the next key */
    assert_false(check(b, "GET", "/v1/ping", &sig, &why)); /* replayed */
    b->next_key_len = 0;
    rekey(b);
}

static void auth__tampered_time_or_node__refused(void **state)
{
    struct storage *b = *state;
    struct storage__sig sig;
    struct storage_auth a;
    char node[64], dest[64], ms[32], nonce[32], mac[80], forged[400];
    const char *why = NULL;
    storage__sign(b, "GET", "/v1/ping", "n1", &sig);
    assert_int_equal(
        sscanf(value(sig.auth), "v2 %63s %63s %31s %31s %79s", node, dest, ms, nonce, mac), 5);
    snprintf(forged, sizeof(forged), "v2 %s %s %lld %s %s", node, dest,
             strtoll(ms, NULL, 10) - 1000, nonce, mac);
    assert_false(storage_auth_check(b, "GET", "/v1/ping", forged, NULL, &a, &why));
    snprintf(forged, sizeof(forged), "v2 n2 %s %s %s %s", dest, ms, nonce, mac);
    assert_false(storage_auth_check(b, "GET", "/v1/ping", forged, NULL, &a, &why));
    assert_string_equal(why, "bad signature");
}

static void auth__malformed_or_missing__refused(void **state)
{
    struct storage *b = *state;
    struct storage_auth a;
    const char *why = NULL;
    assert_false(storage_auth_check(b, "GET", "/v1/ping", NULL, NULL, &a, &why));
    assert_string_equal(why, "missing X-Granary-Auth");
    assert_false(storage_auth_check(b, "GET", "/v1/ping", "v2 n1 n1", NULL, &a, &why));
    assert_string_equal(why, "malformed X-Granary-Auth");
    assert_false(storage_auth_check(b, "GET", "/v1/ping", "v3 a b c d e", NULL, &a, &why));
    assert_string_equal(why, "malformed X-Granary-Auth");
    assert_false(storage_auth_check(b, "GET", "/v1/ping", "", NULL, &a, &why));
    b->clustered = false;
    assert_false(storage_auth_check(b, "GET", "/v1/ping", "v2 a b c d e", NULL, &a, &why));
    b->clustered = true;
}

/*
 * v1 (no destination): refused, unless this node is in an upgrade from v1.
 * A node in that upgrade sends v1 where the older version looks and v2
 * beside it; the v2 one wins, and the v1 one cannot be used again.
 */
static void auth__v1__only_during_an_upgrade(void **state)
{
    struct storage *b = *state;
    struct storage__sig sig;
    struct storage_auth a;
    const char *why = NULL;
    b->accept_v1 = true;
    storage__sign(b, "DELETE", "/v1/blobs/ab", "n2", &sig);
    assert_memory_equal(sig.auth, "X-Granary-Auth: v1 n1 ", 22);
    assert_memory_equal(sig.auth2, "X-Granary-Auth-V2: v2 n1 n2 ", 28);
    b->accept_v1 = false;
    assert_false(storage_auth_check(b, "DELETE", "/v1/blobs/ab", value(sig.auth), NULL, &a, &why));
    assert_string_equal(why, "v1 signature refused (this node is not in an upgrade from v1)");
    /* with both, the v2 one is checked: meant for n2 */
    b->accept_v1 = true;
    assert_false(storage_auth_check(b, "DELETE", "/v1/blobs/ab", value(sig.auth), value(sig.auth2),
                                    &a, &why));
    assert_string_equal(why, "signed for another node");
    /* v1 alone: what the upgrade gives up */
    assert_true(storage_auth_check(b, "DELETE", "/v1/blobs/ab", value(sig.auth), NULL, &a, &why));
    assert_int_equal(a.version, 1);
    assert_string_equal(a.node, "n1");
    /* both, meant for this node: v2; then its v1 half is a replay */
    storage__sign(b, "GET", "/v1/blobs/ab", "n1", &sig);
    assert_true(
        storage_auth_check(b, "GET", "/v1/blobs/ab", value(sig.auth), value(sig.auth2), &a, &why));
    assert_int_equal(a.version, 2);
    assert_string_equal(a.mac, sig.mac);
    assert_false(storage_auth_check(b, "GET", "/v1/blobs/ab", value(sig.auth), NULL, &a, &why));
    assert_string_equal(why, "replayed request");
    b->accept_v1 = false;
}

#define SHA "aa00000000000000000000000000000000000000000000000000000000000001"
#define SHB "bb00000000000000000000000000000000000000000000000000000000000002"
#define BLOCKS "65536 70000 0 0123456789abcdef"

/* A request for this node and the signed answer to it (into ans). */
static void request_and_answer(struct storage *b, struct storage__sig *sig, int status,
                               const char *blocks, const char *body, char ans[200])
{
    struct storage_auth a;
    const char *why;
    storage__sign(b, "GET", "/v1/blobs/" SHA, "n1", sig);
    assert_true(storage_auth_check(b, "GET", "/v1/blobs/" SHA, value(sig->auth), NULL, &a, &why));
    storage_sign_answer(b, &a, status, SHA, blocks, body, body ? strlen(body) : 0, ans, 200);
}

static void answer__signed__accepted(void **state)
{
    struct storage *b = *state;
    struct storage__sig sig;
    char ans[200];
    const char *why = NULL;
    bool legacy = true;
    request_and_answer(b, &sig, 200, BLOCKS, NULL, ans);
    assert_memory_equal(ans, "v2 n1 ", 6);
    assert_true(storage__check_answer(b, &sig, ans, 200, SHA, BLOCKS, NULL, 0, &legacy, &why));
    assert_false(legacy);
    request_and_answer(b, &sig, 201, "", "{\"stage\":\"x\"}", ans);
    assert_true(
        storage__check_answer(b, &sig, ans, 201, SHA, "", "{\"stage\":\"x\"}", 13, &legacy, &why));
}

/* Status, binary, block checksums, body, the answering node, the request: each is signed. */
static void answer__tampered__refused(void **state)
{
    struct storage *b = *state;
    struct storage__sig sig, other;
    char ans[200], ans2[200];
    const char *why = NULL;
    bool legacy;
    request_and_answer(b, &sig, 200, BLOCKS, NULL, ans);
    assert_false(storage__check_answer(b, &sig, ans, 206, SHA, BLOCKS, NULL, 0, &legacy, &why));
    assert_string_equal(why, "bad answer signature");
    assert_false(storage__check_answer(b, &sig, ans, 200, SHB, BLOCKS, NULL, 0, &legacy, &why));
    assert_false(storage__check_answer(b, &sig, ans, 200, SHA, "65536 70000 0 0123456789abcdee",
                                       NULL, 0, &legacy, &why));
    assert_false(storage__check_answer(b, &sig, ans, 200, SHA, "65536 70000 1 0123456789abcdef",
                                       NULL, 0, &legacy, &why));
    assert_false(storage__check_answer(b, &sig, ans, 200, SHA, "", NULL, 0, &legacy, &why));
    assert_false(storage__check_answer(b, &sig, ans, 200, SHA, BLOCKS, "x", 1, &legacy, &why));
    /* the same answer to another request */
    request_and_answer(b, &other, 200, BLOCKS, NULL, ans2);
    assert_false(storage__check_answer(b, &other, ans, 200, SHA, BLOCKS, NULL, 0, &legacy, &why));
    assert_string_equal(why, "bad answer signature");
    /* a body */
    request_and_answer(b, &sig, 204, "", "", ans);
    assert_true(storage__check_answer(b, &sig, ans, 204, SHA, "", NULL, 0, &legacy, &why));
    assert_false(storage__check_answer(b, &sig, ans, 404, SHA, "", NULL, 0, &legacy, &why));
    request_and_answer(b, &sig, 201, "", "{\"stage\":\"x\"}", ans);
    assert_false(
        storage__check_answer(b, &sig, ans, 201, SHA, "", "{\"stage\":\"y\"}", 13, &legacy, &why));
    /* signed by another node than the one asked */
    snprintf(sig.dest, sizeof(sig.dest), "n2");
    assert_false(
        storage__check_answer(b, &sig, ans, 201, SHA, "", "{\"stage\":\"x\"}", 13, &legacy, &why));
    assert_string_equal(why, "answer signed by another node");
    /* another key */
    request_and_answer(b, &sig, 200, BLOCKS, NULL, ans);
    b->key[3] ^= 1;
    rekey(b);
    assert_false(storage__check_answer(b, &sig, ans, 200, SHA, BLOCKS, NULL, 0, &legacy, &why));
    b->key[3] ^= 1;
    rekey(b);
    assert_true(storage__check_answer(b, &sig, ans, 200, SHA, BLOCKS, NULL, 0, &legacy, &why));
}

static void answer__unsigned__refused_unless_upgrading(void **state)
{
    struct storage *b = *state;
    struct storage__sig sig;
    char ans[200];
    const char *why = NULL;
    bool legacy = false;
    request_and_answer(b, &sig, 200, BLOCKS, NULL, ans);
    assert_false(storage__check_answer(b, &sig, NULL, 200, SHA, BLOCKS, NULL, 0, &legacy, &why));
    assert_string_equal(why, "unsigned answer");
    assert_false(storage__check_answer(b, &sig, "", 200, SHA, BLOCKS, NULL, 0, &legacy, &why));
    assert_false(storage__check_answer(b, &sig, "v2 n1", 200, SHA, BLOCKS, NULL, 0, &legacy, &why));
    assert_string_equal(why, "malformed answer signature");
    b->accept_v1 = true;
    assert_true(storage__check_answer(b, &sig, NULL, 200, SHA, BLOCKS, NULL, 0, &legacy, &why));
    assert_true(legacy);
    /* a signature that is there is checked, upgrade or not */
    assert_false(storage__check_answer(b, &sig, ans, 206, SHA, BLOCKS, NULL, 0, &legacy, &why));
    b->accept_v1 = false;
}

static void blocks__parse__exact_blocks_only(void **state)
{
    (void)state;
    uint32_t *c = storage__parse_blocks("65536 70000 0 0123456789abcdef", 70000, 0, 2);
    assert_non_null(c);
    assert_int_equal(c[0], 0x01234567);
    assert_int_equal(c[1], 0x89abcdef);
    free(c);
    assert_null(storage__parse_blocks(NULL, 70000, 0, 2));
    assert_null(storage__parse_blocks("65536 70000 0 0123456789abcdef", 70001, 0, 2)); /* size */
    assert_null(storage__parse_blocks("65536 70000 0 0123456789abcdef", 70000, 1, 2)); /* first */
    assert_null(storage__parse_blocks("65536 70000 0 0123456789abcdef", 70000, 0, 1)); /* count */
    assert_null(storage__parse_blocks("65536 70000 0 0123456789ABCDEF", 70000, 0, 2));
    assert_null(storage__parse_blocks("65536 70000 00 0123456789abcdef", 70000, 0, 2));
    assert_null(storage__parse_blocks("4096 70000 0 0123456789abcdef", 70000, 0, 2));
    assert_null(storage__parse_blocks("0123456789abcdef", 70000, 0, 2)); /* v1's form */
    c = storage__parse_blocks("65536 200000 3 89abcdef", 200000, 3, 1);
    assert_non_null(c);
    assert_int_equal(c[0], 0x89abcdef);
    free(c);
    assert_null(
        storage__parse_blocks("65536 1 0 00000000", 1, 0, STORAGE_CRC_HEADER_MAX_BLOCKS + 1));
}

static void uri__sha256(void **state)
{
    (void)state;
    char out[65];
    storage__uri_sha256("/v1/blobs/" SHA, out);
    assert_string_equal(out, SHA);
    storage__uri_sha256("/v1/blobs/" SHA "/pull?from=n2", out);
    assert_string_equal(out, SHA);
    storage__uri_sha256("/v1/blobs/" SHA "?x", out);
    assert_string_equal(out, SHA);
    storage__uri_sha256("/v1/blobs/" SHA "x", out);
    assert_string_equal(out, "");
    storage__uri_sha256("/v1/stages/abc/commit?sha256=" SHA, out);
    assert_string_equal(out, "");
    storage__uri_sha256("/v1/blobs/AA00", out);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(auth__signed__accepted_once, setup, teardown),
        cmocka_unit_test_setup_teardown(auth__other_method_or_path__refused, setup, teardown),
        cmocka_unit_test_setup_teardown(auth__signed_for_another_node__refused, setup, teardown),
        cmocka_unit_test_setup_teardown(auth__other_key__refused, setup, teardown),
        cmocka_unit_test_setup_teardown(auth__next_key__accepted_during_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(auth__tampered_time_or_node__refused, setup, teardown),
        cmocka_unit_test_setup_teardown(auth__malformed_or_missing__refused, setup, teardown),
        cmocka_unit_test_setup_teardown(auth__v1__only_during_an_upgrade, setup, teardown),
        cmocka_unit_test_setup_teardown(answer__signed__accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(answer__tampered__refused, setup, teardown),
        cmocka_unit_test_setup_teardown(answer__unsigned__refused_unless_upgrading, setup,
                                        teardown),
        cmocka_unit_test(blocks__parse__exact_blocks_only),
        cmocka_unit_test(uri__sha256),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
