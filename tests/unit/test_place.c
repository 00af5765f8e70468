/*
 * test_place.c - unit tests of bs_place(): rendezvous hashing over nodes
 * with zones. Determinism, independence from the order of the nodes,
 * zone spreading, minimal movement when a node leaves or joins, and the
 * edges (want > n, nothing to choose, bad arguments).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "bs.h"

enum { HASHES = 10000 };

static void sha_of(unsigned i, char out[65])
{
    /* spread like real hashes, without a crypto library */
    uint64_t z = (uint64_t)i * 0x9e3779b97f4a7c15ull;
    for (int k = 0; k < 4; k++) {
        z ^= z >> 31;
        z *= 0xbf58476d1ce4e5b9ull;
        snprintf(out + 16 * k, 17, "%016llx", (unsigned long long)z);
    }
}

static const struct bs_node ten[10] = {
    {"node-a", "z1"}, {"node-b", "z1"}, {"node-c", "z1"}, {"node-d", "z2"}, {"node-e", "z2"},
    {"node-f", "z2"}, {"node-g", "z3"}, {"node-h", "z3"}, {"node-i", "z3"}, {"node-j", "z3"},
};

static void bs_place__same_input__same_output(void **state)
{
    (void)state;
    char sha[65];
    for (unsigned i = 0; i < 200; i++) {
        int a[10], b[10];
        sha_of(i, sha);
        assert_int_equal(bs_place(sha, ten, 10, "z1", 3, a), 3);
        assert_int_equal(bs_place(sha, ten, 10, "z1", 3, b), 3);
        assert_memory_equal(a, b, sizeof(int) * 3);
        assert_true(a[0] != a[1] && a[1] != a[2] && a[0] != a[2]);
    }
}

static void bs_place__nodes_reordered__same_ids_chosen(void **state)
{
    (void)state;
    struct bs_node rev[10];
    for (int i = 0; i < 10; i++)
        rev[i] = ten[9 - i];
    char sha[65];
    for (unsigned i = 0; i < 500; i++) {
        int a[4], b[4];
        sha_of(i, sha);
        assert_int_equal(bs_place(sha, ten, 10, NULL, 4, a), 4);
        assert_int_equal(bs_place(sha, rev, 10, NULL, 4, b), 4);
        for (int k = 0; k < 4; k++)
            assert_string_equal(ten[a[k]].id, rev[b[k]].id);
    }
}

static void bs_place__three_zones__spread_before_reuse(void **state)
{
    (void)state;
    char sha[65];
    int first[10] = {0};
    for (unsigned i = 0; i < 2000; i++) {
        int o[10];
        sha_of(i, sha);
        /* receiver in z1: the next two copies go to z2 and z3 */
        assert_int_equal(bs_place(sha, ten, 10, "z1", 2, o), 2);
        assert_string_not_equal(ten[o[0]].zone, "z1");
        assert_string_not_equal(ten[o[1]].zone, "z1");
        assert_string_not_equal(ten[o[0]].zone, ten[o[1]].zone);
        first[o[0]]++;
        /* no receiver zone: the first three cover the three zones */
        assert_int_equal(bs_place(sha, ten, 10, NULL, 10, o), 10);
        assert_string_not_equal(ten[o[0]].zone, ten[o[1]].zone);
        assert_string_not_equal(ten[o[0]].zone, ten[o[2]].zone);
        assert_string_not_equal(ten[o[1]].zone, ten[o[2]].zone);
        bool all[10] = {false};
        for (int k = 0; k < 10; k++) {
            assert_false(all[o[k]]);
            all[o[k]] = true;
        }
    }
    /* z2 and z3 nodes all get first choices; z1 nodes none */
    for (int k = 0; k < 3; k++)
        assert_int_equal(first[k], 0);
    for (int k = 3; k < 10; k++)
        assert_true(first[k] > 100);
}

static void bs_place__one_zone__pure_rendezvous(void **state)
{
    (void)state;
    const struct bs_node same[3] = {{"x", "z"}, {"y", "z"}, {"w", NULL}};
    const struct bs_node none[3] = {{"x", NULL}, {"y", ""}, {"w", NULL}};
    char sha[65];
    for (unsigned i = 0; i < 300; i++) {
        int a[3], b[3];
        sha_of(i, sha);
        /* everything in the receiver's zone: order is by score alone */
        assert_int_equal(bs_place(sha, same, 2, "z", 2, a), 2);
        assert_int_equal(bs_place(sha, none, 3, "", 3, b), 3);
        int c[3];
        assert_int_equal(bs_place(sha, none, 3, NULL, 3, c), 3);
        assert_memory_equal(b, c, sizeof(b));
    }
}

static void bs_place__remove_one_of_ten__about_a_tenth_move(void **state)
{
    (void)state;
    struct bs_node nine[9];
    const int gone = 4;
    for (int i = 0, k = 0; i < 10; i++)
        if (i != gone)
            nine[k++] = ten[i];
    char sha[65];
    int moved = 0;
    for (unsigned i = 0; i < HASHES; i++) {
        int a, b;
        sha_of(i, sha);
        assert_int_equal(bs_place(sha, ten, 10, NULL, 1, &a), 1);
        assert_int_equal(bs_place(sha, nine, 9, NULL, 1, &b), 1);
        if (strcmp(ten[a].id, nine[b].id) != 0) {
            /* only the binaries whose first choice left move */
            assert_int_equal(a, gone);
            moved++;
        } else {
            assert_int_not_equal(a, gone);
        }
    }
    print_message("removing 1 of 10 nodes moved %d of %d first choices\n", moved, HASHES);
    assert_in_range(moved, HASHES / 10 - 200, HASHES / 10 + 200);
}

static void bs_place__add_one__only_to_the_new_node(void **state)
{
    (void)state;
    struct bs_node eleven[11];
    memcpy(eleven, ten, sizeof(ten));
    eleven[10] = (struct bs_node){"node-k", "z4"};
    char sha[65];
    int moved = 0;
    for (unsigned i = 0; i < HASHES; i++) {
        int a[2], b[2];
        sha_of(i, sha);
        assert_int_equal(bs_place(sha, ten, 10, NULL, 1, a), 1);
        assert_int_equal(bs_place(sha, eleven, 11, NULL, 1, b), 1);
        if (a[0] != b[0]) {
            assert_int_equal(b[0], 10);
            moved++;
        }
    }
    assert_in_range(moved, HASHES / 11 - 200, HASHES / 11 + 200);
}

static void bs_place__want_more_than_n__all_nodes_once(void **state)
{
    (void)state;
    int o[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
    char sha[65];
    sha_of(1, sha);
    assert_int_equal(bs_place(sha, ten, 3, "z9", 8, o), 3);
    assert_true(o[0] != o[1] && o[1] != o[2] && o[0] != o[2]);
    for (int k = 0; k < 3; k++)
        assert_in_range(o[k], 0, 2);
    assert_int_equal(o[3], -1);
    assert_int_equal(bs_place(sha, ten, 0, NULL, 3, o), 0);
    assert_int_equal(bs_place(sha, ten, 10, NULL, 0, o), 0);
    assert_int_equal(bs_place(sha, ten, 10, NULL, -1, o), 0);
    assert_int_equal(bs_place(sha, NULL, 0, NULL, 3, o), 0);
}

static void bs_place__bad_arguments__einval(void **state)
{
    (void)state;
    int o[2];
    const struct bs_node bad[2] = {{"a", NULL}, {NULL, NULL}};
    char sha[65];
    sha_of(1, sha);
    assert_int_equal(bs_place(NULL, ten, 10, NULL, 1, o), BS_EINVAL);
    assert_int_equal(bs_place(sha, NULL, 3, NULL, 1, o), BS_EINVAL);
    assert_int_equal(bs_place(sha, ten, 10, NULL, 1, NULL), BS_EINVAL);
    assert_int_equal(bs_place(sha, bad, 2, NULL, 1, o), BS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bs_place__same_input__same_output),
        cmocka_unit_test(bs_place__nodes_reordered__same_ids_chosen),
        cmocka_unit_test(bs_place__three_zones__spread_before_reuse),
        cmocka_unit_test(bs_place__one_zone__pure_rendezvous),
        cmocka_unit_test(bs_place__remove_one_of_ten__about_a_tenth_move),
        cmocka_unit_test(bs_place__add_one__only_to_the_new_node),
        cmocka_unit_test(bs_place__want_more_than_n__all_nodes_once),
        cmocka_unit_test(bs_place__bad_arguments__einval),
    };
    return cmocka_run_group_tests_name("place", tests, NULL, NULL);
}
