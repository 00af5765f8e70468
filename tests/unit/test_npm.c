/*
 * test_npm.c - unit tests of the pure npm helpers (formats/npm/npm.h): names and
 * their URL forms, the streaming base64 decoder, locating the attachment
 * in a publish body, semver order, packument assembly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "formats/npm/npm.h"

static int setup(void **state)
{
    *state = gr_arena_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    gr_arena_free(*state);
    return 0;
}

static void npm_name_valid__rules__enforced(void **state)
{
    (void)state;
    assert_true(npm_name_valid("left-pad"));
    assert_true(npm_name_valid("@acme/util.x"));
    assert_true(npm_name_valid("a~b_c"));
    assert_false(npm_name_valid(""));
    assert_false(npm_name_valid(".hidden"));
    assert_false(npm_name_valid("_under"));
    assert_false(npm_name_valid("Upper"));
    assert_false(npm_name_valid("a/b"));
    assert_false(npm_name_valid("@scope"));
    assert_false(npm_name_valid("@/x"));
    assert_false(npm_name_valid("@s/"));
    assert_false(npm_name_valid("@s/x/y"));
    assert_false(npm_name_valid("a b"));
    assert_false(npm_name_valid("a%2f"));
    char longname[NPM_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_false(npm_name_valid(longname));
    longname[NPM_NAME_MAX] = '\0';
    assert_true(npm_name_valid(longname));
}

static void npm_split_name__url_forms__decoded(void **state)
{
    const char *name, *tail;
    assert_int_equal(npm_split_name(*state, "@acme%2futil", &name, &tail), GR_OK);
    assert_string_equal(name, "@acme/util");
    assert_string_equal(tail, "");
    assert_int_equal(npm_split_name(*state, "%40acme%2Futil/-rev/3-ab", &name, &tail), GR_OK);
    assert_string_equal(name, "@acme/util");
    assert_string_equal(tail, "-rev/3-ab");
    assert_int_equal(npm_split_name(*state, "@acme/util/-/util-1.0.0.tgz", &name, &tail), GR_OK);
    assert_string_equal(name, "@acme/util");
    assert_string_equal(tail, "-/util-1.0.0.tgz");
    assert_int_equal(npm_split_name(*state, "lodash?write=true", &name, &tail), GR_OK);
    assert_string_equal(name, "lodash");
    assert_string_equal(tail, "");
    assert_int_equal(npm_split_name(*state, "lodash/dist-tags/beta", &name, &tail), GR_OK);
    assert_string_equal(tail, "dist-tags/beta");
    assert_int_equal(npm_split_name(*state, "@acme", &name, &tail), GR_EINVAL);
    assert_int_equal(npm_split_name(*state, "bad%2", &name, &tail), GR_EINVAL);
    assert_int_equal(npm_split_name(*state, "nul%00x", &name, &tail), GR_EINVAL);
    assert_int_equal(npm_split_name(*state, "..%2f..%2fetc", &name, &tail), GR_EINVAL);
    assert_int_equal(npm_split_name(*state, "@a%2fb%2fc", &name, &tail), GR_EINVAL);
    assert_string_equal(npm_basename("@acme/util"), "util");
    assert_string_equal(npm_basename("util"), "util");
}

/* Decode text split at every position; compare with want. */
static void npm_b64__any_split__same_bytes(void **state)
{
    (void)state;
    const char *in = "aGVsbG8sIHdvcmxkIQ==", *want = "hello, world!";
    for (size_t cut = 0; cut <= strlen(in); cut++) {
        struct npm_b64 st = {0};
        unsigned char out[64];
        size_t a = 0, b = 0;
        assert_int_equal(npm_b64_decode(&st, in, cut, out, &a), GR_OK);
        assert_int_equal(npm_b64_decode(&st, in + cut, strlen(in) - cut, out + a, &b), GR_OK);
        assert_int_equal(npm_b64_finish(&st), GR_OK);
        assert_int_equal(a + b, strlen(want));
        assert_memory_equal(out, want, strlen(want));
    }
    /* "\/" (a JSON escape) reads as "/", unpadded input is fine */
    struct npm_b64 st = {0};
    unsigned char out[16];
    size_t n = 0;
    assert_int_equal(npm_b64_decode(&st, "\\/w", 3, out, &n), GR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 0xff);
}

static void npm_b64__garbage__einval(void **state)
{
    (void)state;
    unsigned char out[16];
    size_t n;
    struct npm_b64 st = {0};
    assert_int_equal(npm_b64_decode(&st, "ab$d", 4, out, &n), GR_EINVAL);
    struct npm_b64 st2 = {0};
    assert_int_equal(npm_b64_decode(&st2, "QQ==QQ", 6, out, &n), GR_EINVAL); /* data after '=' */
    struct npm_b64 st3 = {0};
    assert_int_equal(npm_b64_decode(&st3, "QUJDR", 5, out, &n), GR_OK);
    assert_int_equal(npm_b64_finish(&st3), GR_EINVAL); /* a dangling 6 bits */
}

static void npm_find_attachment__publish_body__found(void **state)
{
    const char *body =
        "{\"_id\":\"x\",\"name\":\"x\",\"versions\":{\"1.0.0\":{\"a\":[1,{\"b\":\"}\"}]}},"
        "\"_attachments\":{\"x-1.0.0.tgz\":{\"content_type\":\"application/octet-"
        "stream\",\"data\":\"QUJD\",\"length\":3}},\"z\":null}";
    size_t off, len;
    const char *file;
    assert_int_equal(npm_find_attachment(*state, body, strlen(body), &off, &len, &file), GR_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(body + off, "QUJD", 4);
    assert_string_equal(file, "x-1.0.0.tgz");
    const char *none = "{\"name\":\"x\",\"versions\":{}}";
    assert_int_equal(npm_find_attachment(*state, none, strlen(none), &off, &len, &file),
                     GR_ENOTFOUND);
    const char *two = "{\"_attachments\":{\"a\":{\"data\":\"QQ==\"},\"b\":{\"data\":\"QQ==\"}}}";
    assert_int_equal(npm_find_attachment(*state, two, strlen(two), &off, &len, &file), GR_EINVAL);
    const char *nodata = "{\"_attachments\":{\"a\":{\"length\":1}}}";
    assert_int_equal(npm_find_attachment(*state, nodata, strlen(nodata), &off, &len, &file),
                     GR_EINVAL);
    const char *trunc = "{\"_attachments\":{\"a\":{\"data\":\"QQ==";
    assert_int_equal(npm_find_attachment(*state, trunc, strlen(trunc), &off, &len, &file),
                     GR_EINVAL);
    assert_int_equal(npm_find_attachment(*state, "[1]", 3, &off, &len, &file), GR_EINVAL);
}

static void npm_semver_cmp__precedence__semver_order(void **state)
{
    (void)state;
    /* semver.org's example chain, each lower than the next */
    const char *chain[] = {"1.0.0-alpha",  "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
                           "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",       "1.0.0",
                           "1.0.1",        "1.2.0",         "1.10.0",           "2.0.0"};
    size_t n = sizeof(chain) / sizeof(chain[0]);
    for (size_t i = 0; i + 1 < n; i++) {
        assert_true(npm_semver_cmp(chain[i], chain[i + 1]) < 0);
        assert_true(npm_semver_cmp(chain[i + 1], chain[i]) > 0);
    }
    assert_int_equal(npm_semver_cmp("1.0.0+build.5", "1.0.0"), 0);
    assert_true(npm_semver_cmp("not-semver", "0.0.1") < 0);
}

/* What deprecation a document asks for, against what is stored (who may do it depends on it). */
static void npm_deprecation_changes__set_change_clear__detected(void **state)
{
    (void)state;
    json_t *plain = json_pack("{s:s}", "version", "1.0.0");
    json_t *dep = json_pack("{s:s,s:s}", "version", "1.0.0", "deprecated", "old");
    json_t *other = json_pack("{s:s}", "deprecated", "newer");
    json_t *empty = json_pack("{s:s}", "deprecated", "");
    json_t *notstr = json_pack("{s:i}", "deprecated", 1);
    const char *msg = "x";
    assert_false(npm_deprecation_changes(plain, plain, &msg));
    assert_null(msg);
    assert_true(npm_deprecation_changes(plain, dep, &msg));
    assert_string_equal(msg, "old");
    assert_false(npm_deprecation_changes(dep, dep, NULL));
    assert_true(npm_deprecation_changes(dep, other, &msg));
    assert_string_equal(msg, "newer");
    /* "" (npm deprecate pkg "") and anything not a string clear it */
    assert_true(npm_deprecation_changes(dep, empty, &msg));
    assert_null(msg);
    assert_true(npm_deprecation_changes(dep, notstr, NULL));
    assert_true(npm_deprecation_changes(dep, plain, NULL));
    assert_false(npm_deprecation_changes(plain, empty, NULL));
    json_decref(plain);
    json_decref(dep);
    json_decref(other);
    json_decref(empty);
    json_decref(notstr);
}

static void npm_packument__rows__full_and_abbreviated(void **state)
{
    (void)state;
    json_t *m1 = json_pack("{s:s,s:s,s:s,s:{s:s},s:{s:s},s:{s:s}}", "name", "@a/x", "version",
                           "1.0.0", "description", "old", "dist", "shasum", "aa", "scripts",
                           "postinstall", "node x", "dependencies", "y", "^1");
    json_t *m2 = json_pack("{s:s,s:s,s:s,s:s,s:{s:s}}", "name", "@a/x", "version", "1.10.0",
                           "description", "new", "readme", "# x", "dist", "shasum", "bb");
    json_t *tags = json_pack("{s:s,s:s}", "beta", "1.0.0", "gone", "9.9.9");
    struct npm_version_row rows[2] = {{"1.10.0", m2, "x-1.10.0.tgz", 2000},
                                      {"1.0.0", m1, "x-1.0.0.tgz", 1000}};
    struct npm_package p = {.name = "@a/x",
                            .created_ms = 1000,
                            .modified_ms = 2000,
                            .rev = "2-abc",
                            .v = rows,
                            .nv = 2,
                            .tags = tags};
    json_t *full = npm_packument(&p, "http://h/api/npm/r", false);
    assert_non_null(full);
    assert_string_equal(json_string_value(json_object_get(full, "_rev")), "2-abc");
    json_t *dt = json_object_get(full, "dist-tags");
    /* no latest row: the highest version; tags naming missing versions dropped */
    assert_string_equal(json_string_value(json_object_get(dt, "latest")), "1.10.0");
    assert_string_equal(json_string_value(json_object_get(dt, "beta")), "1.0.0");
    assert_null(json_object_get(dt, "gone"));
    assert_string_equal(json_string_value(json_object_get(full, "description")), "new");
    assert_string_equal(json_string_value(json_object_get(full, "readme")), "# x");
    json_t *v1 = json_object_get(json_object_get(full, "versions"), "1.0.0");
    assert_string_equal(json_string_value(json_object_get(json_object_get(v1, "dist"), "tarball")),
                        "http://h/api/npm/r/@a/x/-/x-1.0.0.tgz");
    assert_string_equal(json_string_value(json_object_get(v1, "description")), "old");
    assert_string_equal(json_string_value(json_object_get(json_object_get(full, "time"), "1.0.0")),
                        "1970-01-01T00:00:01.000Z");
    /* the stored manifest is untouched */
    assert_null(json_object_get(json_object_get(m1, "dist"), "tarball"));
    json_decref(full);

    json_t *ab = npm_packument(&p, "http://h/api/npm/r", true);
    assert_null(json_object_get(ab, "_rev"));
    assert_null(json_object_get(ab, "time"));
    assert_string_equal(json_string_value(json_object_get(ab, "modified")),
                        "1970-01-01T00:00:02.000Z");
    v1 = json_object_get(json_object_get(ab, "versions"), "1.0.0");
    assert_null(json_object_get(v1, "description"));
    assert_null(json_object_get(v1, "scripts"));
    assert_true(json_is_true(json_object_get(v1, "hasInstallScript")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(v1, "dependencies"), "y")), "^1");
    assert_string_equal(json_string_value(json_object_get(json_object_get(v1, "dist"), "shasum")),
                        "aa");
    json_decref(ab);
    json_decref(m1);
    json_decref(m2);
    json_decref(tags);
}

/* keep every version but those of member "hidden" */
static bool keep__not_hidden(void *arg, const char *member, const char *file)
{
    (void)arg, (void)file;
    return !member || strcmp(member, "hidden");
}

static void npm_packument_merge__members__first_wins_tags_per_tag(void **state)
{
    struct gr_arena *a = *state;
    const char *docs[] = {
        "{\"name\":\"p\",\"description\":\"local\",\"dist-tags\":{\"latest\":\"1.0.0\"},"
        "\"versions\":{\"1.0.0\":{\"version\":\"1.0.0\",\"dist\":{\"shasum\":\"l\","
        "\"tarball\":\"/p/-/p-1.0.0.tgz\"}}},\"time\":{\"modified\":\"2026-01-01T00:00:00.000Z\"}}",
        "not json",
        "{\"name\":\"p\",\"description\":\"upstream\",\"dist-tags\":{\"latest\":\"2.0.0\","
        "\"next\":\"2.0.0\"},\"versions\":{\"1.0.0\":{\"version\":\"1.0.0\",\"dist\":{\"shasum\":"
        "\"u\",\"tarball\":\"https://x/p/-/p-1.0.0.tgz\"}},\"2.0.0\":{\"version\":\"2.0.0\","
        "\"dist\":{\"shasum\":\"u2\",\"tarball\":\"https://x/p/-/p-2.0.0.tgz\"}}},"
        "\"time\":{\"modified\":\"2026-06-01T00:00:00.000Z\"}}",
    };
    const char *members[] = {"loc", "broken", "hidden"};
    size_t lens[] = {strlen(docs[0]), strlen(docs[1]), strlen(docs[2])};
    char *out;
    size_t len;
    assert_int_equal(
        npm_packument_merge(a, ".npm/p/package.json", members, docs, lens, 3, &out, &len), GR_OK);
    json_t *m = json_loadb(out, len, 0, NULL);
    assert_non_null(m);
    json_t *v = json_object_get(m, "versions");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(v, "1.0.0"), "dist"), "shasum")),
                        "l");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(v, "2.0.0"), NPM_MEMBER_KEY)), "hidden");
    json_t *tags = json_object_get(m, "dist-tags");
    assert_string_equal(json_string_value(json_object_get(tags, "latest")), "1.0.0");
    assert_string_equal(json_string_value(json_object_get(tags, "next")), "2.0.0");
    assert_string_equal(json_string_value(json_object_get(m, "description")), "local");
    assert_string_equal(json_string_value(json_object_get(json_object_get(m, "time"), "modified")),
                        "2026-06-01T00:00:00.000Z");
    /* served: a hidden member's versions and the tags naming them go, tarballs point here */
    json_t *shaped =
        npm_packument_shape(m, "p", "http://g/api/npm/v", false, keep__not_hidden, NULL);
    v = json_object_get(shaped, "versions");
    assert_int_equal(json_object_size(v), 1);
    assert_null(json_object_get(json_object_get(v, "1.0.0"), NPM_MEMBER_KEY));
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(v, "1.0.0"), "dist"), "tarball")),
                        "http://g/api/npm/v/p/-/p-1.0.0.tgz");
    assert_null(json_object_get(json_object_get(shaped, "dist-tags"), "next"));
    assert_null(json_object_get(json_object_get(shaped, "time"), "2.0.0"));
    json_decref(shaped);
    shaped = npm_packument_shape(m, "p", "http://g", true, NULL, NULL);
    assert_int_equal(json_object_size(json_object_get(shaped, "versions")), 2);
    assert_null(json_object_get(shaped, "description"));
    json_decref(shaped);
    json_decref(m);
    const char *none[] = {"x"};
    size_t nl[] = {1};
    assert_int_equal(npm_packument_merge(a, "p", members, none, nl, 1, &out, &len), GR_EINVAL);
    assert_null(npm_tarball_file("noslash"));
    assert_string_equal(npm_tarball_file("https://r/@s/p/-/p-1.tgz"), "p-1.tgz");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(npm_name_valid__rules__enforced),
        cmocka_unit_test_setup_teardown(npm_split_name__url_forms__decoded, setup, teardown),
        cmocka_unit_test(npm_b64__any_split__same_bytes),
        cmocka_unit_test(npm_b64__garbage__einval),
        cmocka_unit_test_setup_teardown(npm_find_attachment__publish_body__found, setup, teardown),
        cmocka_unit_test(npm_semver_cmp__precedence__semver_order),
        cmocka_unit_test(npm_deprecation_changes__set_change_clear__detected),
        cmocka_unit_test(npm_packument__rows__full_and_abbreviated),
        cmocka_unit_test_setup_teardown(npm_packument_merge__members__first_wins_tags_per_tag,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
