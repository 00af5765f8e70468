/*
 * test_path.c - unit tests of the artifact path normaliser (http/path.h):
 * traversal in every spelling, empty segments, backslashes, NULs, control
 * characters, bad escapes, invalid UTF-8, the length limits, and the query
 * decoder. Pure functions: no fixtures needed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "http/path.h"

/* Normalise a NUL-terminated raw path into a fresh buffer. */
struct norm {
    int rc;
    bool trailing;
    char out[HTTP_PATH_MAX + 1];
};

static struct norm norm_n(const char *raw, size_t rawlen)
{
    struct norm n;
    memset(&n, 0x5a, sizeof(n));
    n.rc = http_path_normalize(raw, rawlen, n.out, sizeof(n.out), &n.trailing);
    return n;
}

static struct norm norm(const char *raw)
{
    return norm_n(raw, strlen(raw));
}

static void assert_ok(const char *raw, const char *want, bool trailing)
{
    struct norm n = norm(raw);
    if (n.rc != GR_OK)
        fail_msg("'%s': rc %d, want ok", raw, n.rc);
    assert_string_equal(n.out, want);
    assert_int_equal(n.trailing, trailing);
}

static void assert_rc(const char *raw, int want)
{
    struct norm n = norm(raw);
    if (n.rc != want)
        fail_msg("'%s': rc %d, want %d", raw, n.rc, want);
}

/* A path of total bytes made of segments of at most seg bytes ('a'). */
static char *make_path(size_t total, size_t seg)
{
    char *p = malloc(total + 1);
    assert_non_null(p);
    size_t run = 0;
    for (size_t i = 0; i < total; i++) {
        if (run == seg && i + 1 < total) {
            p[i] = '/';
            run = 0;
        } else {
            p[i] = 'a';
            run++;
        }
    }
    p[total] = '\0';
    return p;
}

/* ---- http_path_normalize: accepted --------------------------------------- */

static void http_path_normalize__simple__unchanged(void **state)
{
    (void)state;
    assert_ok("a", "a", false);
    assert_ok("org/example/lib/1.0/lib-1.0.jar", "org/example/lib/1.0/lib-1.0.jar", false);
}

static void http_path_normalize__empty__ok_root(void **state)
{
    (void)state;
    struct norm n = norm_n("", 0);
    assert_int_equal(n.rc, GR_OK);
    assert_string_equal(n.out, "");
    assert_false(n.trailing);
}

static void http_path_normalize__trailing_slash__flag_set_and_stripped(void **state)
{
    (void)state;
    assert_ok("a/b/", "a/b", true);
    assert_ok("a/", "a", true);
    assert_ok("a/b", "a/b", false);
}

static void http_path_normalize__escapes__decoded(void **state)
{
    (void)state;
    assert_ok("%61%62c", "abc", false);
    assert_ok("%4A%4a", "JJ", false);
    assert_ok("a%25b", "a%b", false);
    assert_ok("a%3fb%23c", "a?b#c", false);
}

static void http_path_normalize__space__ok(void **state)
{
    (void)state;
    assert_ok("my%20file.txt", "my file.txt", false);
    assert_ok("my file.txt", "my file.txt", false);
}

static void http_path_normalize__plus__stays_plus(void **state)
{
    (void)state;
    assert_ok("c++/lib+1.0", "c++/lib+1.0", false);
    assert_ok("a%2Bb", "a+b", false);
}

static void http_path_normalize__unicode__ok(void **state)
{
    (void)state;
    assert_ok("caf%c3%a9", "caf\xc3\xa9", false);
    assert_ok("caf%C3%A9/x", "caf\xc3\xa9/x", false);
    assert_ok("caf\xc3\xa9", "caf\xc3\xa9", false);               /* raw UTF-8 */
    assert_ok("%e2%82%ac", "\xe2\x82\xac", false);                /* U+20AC */
    assert_ok("%f0%9f%98%80.txt", "\xf0\x9f\x98\x80.txt", false); /* U+1F600 */
}

static void http_path_normalize__dots_inside_names__ok(void **state)
{
    (void)state;
    assert_ok(".hidden", ".hidden", false);
    assert_ok("a./.b/...", "a./.b/...", false);
    assert_ok("..a/a../a..b", "..a/a../a..b", false);
    assert_ok("%2e%2e%2e", "...", false);
}

static void http_path_normalize__rawlen__bytes_after_ignored(void **state)
{
    (void)state;
    struct norm n = norm_n("ab\0..", 2);
    assert_int_equal(n.rc, GR_OK);
    assert_string_equal(n.out, "ab");
    n = norm_n("abc/%2e%2e", 3);
    assert_int_equal(n.rc, GR_OK);
    assert_string_equal(n.out, "abc");
}

/* ---- http_path_normalize: traversal -------------------------------------- */

static void http_path_normalize__dotdot__einval(void **state)
{
    (void)state;
    assert_rc("..", GR_EINVAL);
    assert_rc("../", GR_EINVAL);
    assert_rc("../a", GR_EINVAL);
    assert_rc("a/..", GR_EINVAL);
    assert_rc("a/../", GR_EINVAL);
    assert_rc("a/../b", GR_EINVAL);
    assert_rc("../../etc/passwd", GR_EINVAL);
}

static void http_path_normalize__dot__einval(void **state)
{
    (void)state;
    assert_rc(".", GR_EINVAL);
    assert_rc("./", GR_EINVAL);
    assert_rc("./a", GR_EINVAL);
    assert_rc("a/.", GR_EINVAL);
    assert_rc("a/./b", GR_EINVAL);
    assert_rc("%2e", GR_EINVAL);
    assert_rc("a/%2E/b", GR_EINVAL);
}

static void http_path_normalize__encoded_dotdot__einval(void **state)
{
    (void)state;
    assert_rc("%2e%2e", GR_EINVAL);
    assert_rc("%2E%2E", GR_EINVAL);
    assert_rc("%2E%2e", GR_EINVAL);
    assert_rc("%2e.", GR_EINVAL);
    assert_rc(".%2e", GR_EINVAL);
    assert_rc("a/%2e%2e/b", GR_EINVAL);
    assert_rc("a/%2e%2e", GR_EINVAL);
    assert_rc("%2e%2e/a", GR_EINVAL);
}

static void http_path_normalize__encoded_slash_dotdot__einval(void **state)
{
    (void)state;
    assert_rc("..%2f", GR_EINVAL);
    assert_rc("..%2F", GR_EINVAL);
    assert_rc("..%2fa", GR_EINVAL);
    assert_rc("a%2f..%2fb", GR_EINVAL);
    assert_rc("a%2F%2e%2e%2Fb", GR_EINVAL);
    assert_rc("a/..%2f", GR_EINVAL);
}

/* ---- http_path_normalize: empty segments ---------------------------------- */

static void http_path_normalize__leading_slash__einval(void **state)
{
    (void)state;
    assert_rc("/a", GR_EINVAL);
    assert_rc("%2fa", GR_EINVAL);
}

static void http_path_normalize__slash_alone__einval(void **state)
{
    (void)state;
    assert_rc("/", GR_EINVAL);
    assert_rc("%2f", GR_EINVAL);
}

static void http_path_normalize__double_slash__einval(void **state)
{
    (void)state;
    assert_rc("//", GR_EINVAL);
    assert_rc("a//b", GR_EINVAL);
    assert_rc("a//", GR_EINVAL);
    assert_rc("//a", GR_EINVAL);
    assert_rc("a/%2fb", GR_EINVAL);
}

/* ---- http_path_normalize: refused bytes ---------------------------------- */

static void http_path_normalize__backslash__einval(void **state)
{
    (void)state;
    assert_rc("\\", GR_EINVAL);
    assert_rc("a\\b", GR_EINVAL);
    assert_rc("..\\a", GR_EINVAL);
    assert_rc("%5c", GR_EINVAL);
    assert_rc("a%5Cb", GR_EINVAL);
    assert_rc("..%5c..%5cwindows", GR_EINVAL);
}

static void http_path_normalize__raw_nul__einval(void **state)
{
    (void)state;
    struct norm n = norm_n("a\0b", 3);
    assert_int_equal(n.rc, GR_EINVAL);
    n = norm_n("\0", 1);
    assert_int_equal(n.rc, GR_EINVAL);
    n = norm_n("a.jar\0.txt", 10);
    assert_int_equal(n.rc, GR_EINVAL);
}

static void http_path_normalize__pct00__einval(void **state)
{
    (void)state;
    assert_rc("%00", GR_EINVAL);
    assert_rc("a.jar%00.txt", GR_EINVAL);
}

static void http_path_normalize__control_chars__einval(void **state)
{
    (void)state;
    assert_rc("\x01", GR_EINVAL);
    assert_rc("a\tb", GR_EINVAL);
    assert_rc("a\nb", GR_EINVAL);
    assert_rc("a\x1f", GR_EINVAL);
    assert_rc("a\x7f", GR_EINVAL);
    assert_rc("%01", GR_EINVAL);
    assert_rc("a%0d%0ab", GR_EINVAL);
    assert_rc("%1F", GR_EINVAL);
    assert_rc("%7f", GR_EINVAL);
}

static void http_path_normalize__bad_escape__einval(void **state)
{
    (void)state;
    assert_rc("%", GR_EINVAL);
    assert_rc("a%", GR_EINVAL);
    assert_rc("%4", GR_EINVAL);
    assert_rc("a/%4", GR_EINVAL);
    assert_rc("%zz", GR_EINVAL);
    assert_rc("%g0", GR_EINVAL);
    assert_rc("%0g", GR_EINVAL);
    assert_rc("%%41", GR_EINVAL);
    assert_rc("% 1", GR_EINVAL);
}

static void http_path_normalize__bad_escape_cut_by_rawlen__einval(void **state)
{
    (void)state;
    /* the escape's hex digits lie beyond rawlen: they must not be read */
    struct norm n = norm_n("a%41", 3);
    assert_int_equal(n.rc, GR_EINVAL);
    n = norm_n("a%41", 2);
    assert_int_equal(n.rc, GR_EINVAL);
}

static void http_path_normalize__invalid_utf8__einval(void **state)
{
    (void)state;
    assert_rc("%c0%af", GR_EINVAL); /* overlong '/' */
    assert_rc("..%c0%af..", GR_EINVAL);
    assert_rc("%c0%ae%c0%ae", GR_EINVAL); /* overlong ".." */ /* ... used for traversal */
    assert_rc("%e0%80%af", GR_EINVAL);                        /* 3-byte overlong */
    assert_rc("%f0%80%80%af", GR_EINVAL);                     /* 4-byte overlong */
    assert_rc("%ed%a0%80", GR_EINVAL);                        /* surrogate U+D800 */
    assert_rc("%ed%bf%bf", GR_EINVAL);                        /* surrogate U+DFFF */
    assert_rc("%c3", GR_EINVAL);                              /* truncated */
    assert_rc("a%c3/b", GR_EINVAL);                           /* truncated mid-path */
    assert_rc("%e2%82", GR_EINVAL);                           /* truncated 3-byte */
    assert_rc("%80", GR_EINVAL);                              /* lone continuation */
    assert_rc("%ff", GR_EINVAL);
    assert_rc("%f4%90%80%80", GR_EINVAL); /* above U+10FFFF */
    assert_rc("\xc0\xaf", GR_EINVAL);     /* raw overlong */
    assert_rc("\xed\xa0\x80", GR_EINVAL); /* raw surrogate */
}

static void http_path_normalize__small_out__einval(void **state)
{
    (void)state;
    char out[HTTP_PATH_MAX];
    bool trailing = true;
    assert_int_equal(http_path_normalize("a", 1, out, sizeof(out), &trailing), GR_EINVAL);
}

/* ---- http_path_normalize: limits ------------------------------------------ */

static void http_path_normalize__path_max__ok(void **state)
{
    (void)state;
    char *p = make_path(HTTP_PATH_MAX, 200);
    struct norm n = norm(p);
    assert_int_equal(n.rc, GR_OK);
    assert_int_equal(strlen(n.out), HTTP_PATH_MAX);
    assert_string_equal(n.out, p);
    free(p);
}

static void http_path_normalize__path_max_plus_one__etoobig(void **state)
{
    (void)state;
    char *p = make_path(HTTP_PATH_MAX + 1, 200);
    assert_rc(p, GR_ETOOBIG);
    free(p);
    p = make_path(HTTP_PATH_MAX * 4, 200);
    assert_rc(p, GR_ETOOBIG);
    free(p);
}

static void http_path_normalize__path_max_encoded__limit_on_decoded(void **state)
{
    (void)state;
    /* 1024 decoded bytes sent as 3072 encoded ones are fine; one more is not */
    char *plain = make_path(HTTP_PATH_MAX + 1, 200);
    char *enc = malloc(3 * (HTTP_PATH_MAX + 1) + 1);
    assert_non_null(enc);
    size_t o = 0;
    for (size_t i = 0; i < HTTP_PATH_MAX; i++) {
        if (plain[i] == '/') {
            enc[o++] = '/';
        } else {
            memcpy(enc + o, "%61", 3);
            o += 3;
        }
    }
    enc[o] = '\0';
    struct norm n = norm(enc);
    assert_int_equal(n.rc, GR_OK);
    assert_int_equal(strlen(n.out), HTTP_PATH_MAX);
    memcpy(enc + o, "%61", 4);
    assert_rc(enc, GR_ETOOBIG);
    free(enc);
    free(plain);
}

static void http_path_normalize__segment_255__ok(void **state)
{
    (void)state;
    char seg[HTTP_SEGMENT_MAX + 8];
    memset(seg, 'x', HTTP_SEGMENT_MAX);
    seg[HTTP_SEGMENT_MAX] = '\0';
    struct norm n = norm(seg);
    assert_int_equal(n.rc, GR_OK);
    assert_string_equal(n.out, seg);

    char path[HTTP_SEGMENT_MAX + 16];
    snprintf(path, sizeof(path), "a/%s/b", seg);
    n = norm(path);
    assert_int_equal(n.rc, GR_OK);
}

static void http_path_normalize__segment_256__etoobig(void **state)
{
    (void)state;
    char seg[HTTP_SEGMENT_MAX + 8];
    memset(seg, 'x', HTTP_SEGMENT_MAX + 1);
    seg[HTTP_SEGMENT_MAX + 1] = '\0';
    assert_rc(seg, GR_ETOOBIG);

    char path[HTTP_SEGMENT_MAX + 16];
    snprintf(path, sizeof(path), "a/%s/b", seg);
    assert_rc(path, GR_ETOOBIG);
    snprintf(path, sizeof(path), "a/%s/", seg);
    assert_rc(path, GR_ETOOBIG);
}

/* ---- http_query_decode ---------------------------------------------------- */

static int qdec(const char *raw, char *out, size_t outsz)
{
    return http_query_decode(raw, strlen(raw), out, outsz);
}

static void http_query_decode__plus__space(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(qdec("a+b+c", out, sizeof(out)), GR_OK);
    assert_string_equal(out, "a b c");
}

static void http_query_decode__pct2b__plus(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(qdec("c%2B%2b", out, sizeof(out)), GR_OK);
    assert_string_equal(out, "c++");
}

static void http_query_decode__escapes__decoded(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(qdec("name%3Dlib%26v%3d1%20x%c3%a9", out, sizeof(out)), GR_OK);
    assert_string_equal(out, "name=lib&v=1 x\xc3\xa9");
    assert_int_equal(qdec("plain", out, sizeof(out)), GR_OK);
    assert_string_equal(out, "plain");
}

static void http_query_decode__empty__ok(void **state)
{
    (void)state;
    char out[4] = "xyz";
    assert_int_equal(http_query_decode("", 0, out, sizeof(out)), GR_OK);
    assert_string_equal(out, "");
}

static void http_query_decode__bad_escape__einval(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(qdec("%", out, sizeof(out)), GR_EINVAL);
    assert_int_equal(qdec("a%4", out, sizeof(out)), GR_EINVAL);
    assert_int_equal(qdec("%zz", out, sizeof(out)), GR_EINVAL);
    assert_int_equal(qdec("%4g", out, sizeof(out)), GR_EINVAL);
}

static void http_query_decode__nul__einval(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(qdec("a%00b", out, sizeof(out)), GR_EINVAL);
    assert_int_equal(http_query_decode("a\0b", 3, out, sizeof(out)), GR_EINVAL);
}

static void http_query_decode__out_too_small__etoobig(void **state)
{
    (void)state;
    char out[8];
    /* 7 characters and the NUL fit in 8 bytes; 8 characters do not */
    assert_int_equal(qdec("1234567", out, sizeof(out)), GR_OK);
    assert_string_equal(out, "1234567");
    assert_int_equal(qdec("12345678", out, sizeof(out)), GR_ETOOBIG);
    assert_int_equal(qdec("%31%32%33%34%35%36%37", out, sizeof(out)), GR_OK);
    assert_int_equal(qdec("%31%32%33%34%35%36%37%38", out, sizeof(out)), GR_ETOOBIG);
}

static void http_query_decode__zero_outsz__etoobig(void **state)
{
    (void)state;
    /*
     * Regression guard (fixed): with outsz == 0 and an empty value, http_query_decode()
     * writes the terminating NUL to out[0] and returns GR_OK: one byte past a
     * zero-sized buffer. It should return GR_ETOOBIG and write nothing.
     */
    char out[1] = {'x'};
    assert_int_equal(http_query_decode("", 0, out, 0), GR_ETOOBIG);
    assert_int_equal(out[0], 'x');
}

/* ---- http_utf8_valid ------------------------------------------------------ */

static bool utf8(const char *s)
{
    return http_utf8_valid(s, strlen(s));
}

static void http_utf8_valid__valid__true(void **state)
{
    (void)state;
    assert_true(http_utf8_valid("", 0));
    assert_true(utf8("plain ascii"));
    assert_true(utf8("\xc3\xa9"));         /* U+00E9 */
    assert_true(utf8("\xc2\x80"));         /* U+0080, smallest 2-byte */
    assert_true(utf8("\xe0\xa0\x80"));     /* U+0800, smallest 3-byte */
    assert_true(utf8("\xed\x9f\xbf"));     /* U+D7FF, below surrogates */
    assert_true(utf8("\xee\x80\x80"));     /* U+E000, above surrogates */
    assert_true(utf8("\xef\xbf\xbf"));     /* U+FFFF */
    assert_true(utf8("\xf0\x90\x80\x80")); /* U+10000 */
    assert_true(utf8("\xf4\x8f\xbf\xbf")); /* U+10FFFF */
    assert_true(utf8("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"));
}

static void http_utf8_valid__overlong__false(void **state)
{
    (void)state;
    assert_false(utf8("\xc0\xaf"));
    assert_false(utf8("\xc1\xbf"));
    assert_false(utf8("\xc0\x80"));
    assert_false(utf8("\xe0\x80\xaf"));
    assert_false(utf8("\xe0\x9f\xbf"));
    assert_false(utf8("\xf0\x80\x80\xaf"));
    assert_false(utf8("\xf0\x8f\xbf\xbf"));
}

static void http_utf8_valid__surrogates__false(void **state)
{
    (void)state;
    assert_false(utf8("\xed\xa0\x80"));
    assert_false(utf8("\xed\xbf\xbf"));
    assert_false(utf8("\xed\xa0\xbd\xed\xb8\x80")); /* CESU-8 pair */
}

static void http_utf8_valid__truncated__false(void **state)
{
    (void)state;
    assert_false(utf8("\xc3"));
    assert_false(utf8("a\xc3"));
    assert_false(utf8("\xe2\x82"));
    assert_false(utf8("\xf0\x9f\x98"));
    /* a valid sequence cut by len */
    assert_false(http_utf8_valid("\xc3\xa9", 1));
    assert_false(http_utf8_valid("\xf0\x9f\x98\x80", 3));
}

static void http_utf8_valid__bad_bytes__false(void **state)
{
    (void)state;
    assert_false(utf8("\x80"));
    assert_false(utf8("a\xbf"));
    assert_false(utf8("\xc3\x28")); /* continuation missing */
    assert_false(utf8("\xe2\x28\xa1"));
    assert_false(utf8("\xf8\x88\x80\x80\x80")); /* 5-byte form */
    assert_false(utf8("\xfe"));
    assert_false(utf8("\xff"));
    assert_false(utf8("\xf4\x90\x80\x80")); /* U+110000 */
    assert_false(utf8("\xf5\x80\x80\x80"));
}

static void http_utf8_valid__len__bytes_beyond_ignored(void **state)
{
    (void)state;
    assert_true(http_utf8_valid("ab\xff", 2));
    assert_true(http_utf8_valid("\xc3\xa9\xff", 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(http_path_normalize__simple__unchanged),
        cmocka_unit_test(http_path_normalize__empty__ok_root),
        cmocka_unit_test(http_path_normalize__trailing_slash__flag_set_and_stripped),
        cmocka_unit_test(http_path_normalize__escapes__decoded),
        cmocka_unit_test(http_path_normalize__space__ok),
        cmocka_unit_test(http_path_normalize__plus__stays_plus),
        cmocka_unit_test(http_path_normalize__unicode__ok),
        cmocka_unit_test(http_path_normalize__dots_inside_names__ok),
        cmocka_unit_test(http_path_normalize__rawlen__bytes_after_ignored),
        cmocka_unit_test(http_path_normalize__dotdot__einval),
        cmocka_unit_test(http_path_normalize__dot__einval),
        cmocka_unit_test(http_path_normalize__encoded_dotdot__einval),
        cmocka_unit_test(http_path_normalize__encoded_slash_dotdot__einval),
        cmocka_unit_test(http_path_normalize__leading_slash__einval),
        cmocka_unit_test(http_path_normalize__slash_alone__einval),
        cmocka_unit_test(http_path_normalize__double_slash__einval),
        cmocka_unit_test(http_path_normalize__backslash__einval),
        cmocka_unit_test(http_path_normalize__raw_nul__einval),
        cmocka_unit_test(http_path_normalize__pct00__einval),
        cmocka_unit_test(http_path_normalize__control_chars__einval),
        cmocka_unit_test(http_path_normalize__bad_escape__einval),
        cmocka_unit_test(http_path_normalize__bad_escape_cut_by_rawlen__einval),
        cmocka_unit_test(http_path_normalize__invalid_utf8__einval),
        cmocka_unit_test(http_path_normalize__small_out__einval),
        cmocka_unit_test(http_path_normalize__path_max__ok),
        cmocka_unit_test(http_path_normalize__path_max_plus_one__etoobig),
        cmocka_unit_test(http_path_normalize__path_max_encoded__limit_on_decoded),
        cmocka_unit_test(http_path_normalize__segment_255__ok),
        cmocka_unit_test(http_path_normalize__segment_256__etoobig),
        cmocka_unit_test(http_query_decode__plus__space),
        cmocka_unit_test(http_query_decode__pct2b__plus),
        cmocka_unit_test(http_query_decode__escapes__decoded),
        cmocka_unit_test(http_query_decode__empty__ok),
        cmocka_unit_test(http_query_decode__bad_escape__einval),
        cmocka_unit_test(http_query_decode__nul__einval),
        cmocka_unit_test(http_query_decode__out_too_small__etoobig),
        cmocka_unit_test(http_query_decode__zero_outsz__etoobig),
        cmocka_unit_test(http_utf8_valid__valid__true),
        cmocka_unit_test(http_utf8_valid__overlong__false),
        cmocka_unit_test(http_utf8_valid__surrogates__false),
        cmocka_unit_test(http_utf8_valid__truncated__false),
        cmocka_unit_test(http_utf8_valid__bad_bytes__false),
        cmocka_unit_test(http_utf8_valid__len__bytes_beyond_ignored),
    };
    return cmocka_run_group_tests_name("path", tests, NULL, NULL);
}
