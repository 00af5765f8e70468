/*
 * test_props.c - unit tests of the pure parsers behind properties and
 * search (repo/props.h, repo/search.h): Artifactory's list, matrix and key
 * syntax with backslash escapes, key and value rules and limits, the
 * PostgreSQL array literal, quick-search name patterns, date parameters
 * and checksum terms. No database: a fresh arena per test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/err.h"
#include "base/sbuf.h"
#include "repo/internal.h"
#include "db/db.h"
#include "repo/props.h"
#include "repo/search.h"

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

/* The set as "k=v1,v2|k2=" (values joined by ',', entries by '|') for compact asserts. */
static const char *show(struct gr_arena *a, const struct props_set *s)
{
    struct gr_sbuf sb = GR_SBUF_INIT;
    for (int i = 0; i < s->n; i++) {
        if (i)
            gr_sbuf_adds(&sb, "|");
        gr_sbuf_addf(&sb, "%s=", s->e[i].key);
        for (int j = 0; j < s->e[i].nvalues; j++)
            gr_sbuf_addf(&sb, "%s[%s]", j ? "," : "", s->e[i].values[j]);
    }
    char *out = gr_arena_strdup(a, sb.buf);
    gr_sbuf_release(&sb);
    return out;
}

static void expect_list(struct gr_arena *a, const char *in, const char *want)
{
    struct props_set s;
    int rc = props_parse_list(a, in, &s);
    if (rc != GR_OK)
        fail_msg("'%s': rc %d", in, rc);
    assert_string_equal(show(a, &s), want);
}

static void expect_matrix(struct gr_arena *a, const char *in, const char *want)
{
    struct props_set s;
    int rc = props_parse_matrix(a, in, &s);
    if (rc != GR_OK)
        fail_msg("'%s': rc %d", in, rc);
    assert_string_equal(show(a, &s), want);
}

static void expect_list_rc(struct gr_arena *a, const char *in, int want)
{
    struct props_set s;
    int rc = props_parse_list(a, in, &s);
    if (rc != want)
        fail_msg("'%s': rc %d, want %d", in, rc, want);
}

static void expect_matrix_rc(struct gr_arena *a, const char *in, int want)
{
    struct props_set s;
    int rc = props_parse_matrix(a, in, &s);
    if (rc != want)
        fail_msg("'%s': rc %d, want %d", in, rc, want);
}

/* ---- props_parse_list ---- */

static void props_parse_list__pipe_and_comma__entries_and_values(void **state)
{
    expect_list(*state, "a=1,2|b=3", "a=[1],[2]|b=[3]");
    expect_list(*state, "os=win,linux;qa=done", "os=[win],[linux]|qa=[done]");
    expect_list(*state, "build.number=7", "build.number=[7]");
}

static void props_parse_list__backslash__escapes_separators(void **state)
{
    expect_list(*state, "a=1\\,2", "a=[1,2]");
    expect_list(*state, "a=1\\=1", "a=[1=1]");
    expect_list(*state, "a=x\\|y|b=z", "a=[x|y]|b=[z]");
    expect_list(*state, "a=x\\;y", "a=[x;y]");
    expect_list(*state, "a=c:\\\\dir", "a=[c:\\dir]");
    expect_list(*state, "a=\\q", "a=[q]"); /* any character: the backslash goes */
}

static void props_parse_list__second_equals__literal(void **state)
{
    expect_list(*state, "a=b=c", "a=[b=c]");
    expect_list(*state, "sig=abc==", "sig=[abc==]");
}

static void props_parse_list__no_value__one_empty_value(void **state)
{
    expect_list(*state, "a", "a=[]");
    expect_list(*state, "a=", "a=[]");
    expect_list(*state, "a=1,", "a=[1],[]");
}

static void props_parse_list__repeats__merged(void **state)
{
    expect_list(*state, "a=1|a=2|a=1", "a=[1],[2]");
    expect_list(*state, "a=1,1,1", "a=[1]");
    expect_list(*state, "b=2|a=1|b=3", "b=[2],[3]|a=[1]");
}

static void props_parse_list__empty_items__skipped(void **state)
{
    expect_list(*state, "", "");
    expect_list(*state, "|", "");
    expect_list(*state, "a=1||b=2|", "a=[1]|b=[2]");
}

static void props_parse_list__utf8__kept(void **state)
{
    expect_list(*state, "t\xc3\xa9st=v\xc3\xa4l", "t\xc3\xa9st=[v\xc3\xa4l]");
    expect_list(*state, "a=with space", "a=[with space]");
}

static void props_parse_list__bad_keys__einval(void **state)
{
    expect_list_rc(*state, "=1", GR_EINVAL);
    expect_list_rc(*state, "a b=1", GR_EINVAL);
    expect_list_rc(*state, "a*=1", GR_EINVAL);
    expect_list_rc(*state, "a/b=1", GR_EINVAL);
    expect_list_rc(*state, "a\\,b=1", GR_EINVAL); /* an escaped ',' is still forbidden in a key */
    expect_list_rc(*state, "a\tb=1", GR_EINVAL);
    expect_list_rc(*state, "\xc2\xb1=1", GR_EINVAL); /* U+00B1 */
    expect_list_rc(*state, "\xc2\xa7=1", GR_EINVAL); /* U+00A7 */
    expect_list_rc(*state, "\xff=1", GR_EINVAL);
}

static void props_parse_list__dangling_backslash__einval(void **state)
{
    expect_list_rc(*state, "a=1\\", GR_EINVAL);
    expect_list_rc(*state, "a\\", GR_EINVAL);
}

static void props_parse_list__bad_value_utf8__einval(void **state)
{
    expect_list_rc(*state, "a=\xc3", GR_EINVAL);
    expect_list_rc(*state, "a=\xed\xa0\x80", GR_EINVAL); /* a surrogate */
}

static void props_parse_list__limits__einval_past_them(void **state)
{
    struct gr_arena *a = *state;
    char key[PROPS_KEY_MAX + 4];
    memset(key, 'k', PROPS_KEY_MAX);
    strcpy(key + PROPS_KEY_MAX, "=1");
    expect_list_rc(a, key, GR_OK);
    memset(key, 'k', PROPS_KEY_MAX + 1);
    strcpy(key + PROPS_KEY_MAX + 1, "=1");
    expect_list_rc(a, key, GR_EINVAL);

    char *val = gr_arena_alloc(a, PROPS_VALUE_MAX + 8);
    strcpy(val, "a=");
    memset(val + 2, 'v', PROPS_VALUE_MAX);
    val[2 + PROPS_VALUE_MAX] = '\0';
    expect_list_rc(a, val, GR_OK);
    strcat(val, "v");
    expect_list_rc(a, val, GR_EINVAL);

    struct gr_sbuf sb = GR_SBUF_INIT;
    for (int i = 0; i < PROPS_KEYS_MAX; i++)
        gr_sbuf_addf(&sb, "%sk%d=1", i ? "|" : "", i);
    expect_list_rc(a, sb.buf, GR_OK);
    gr_sbuf_adds(&sb, "|one=more");
    expect_list_rc(a, sb.buf, GR_EINVAL);
    gr_sbuf_reset(&sb);
    gr_sbuf_adds(&sb, "a=0");
    for (int i = 1; i < PROPS_VALUES_MAX; i++)
        gr_sbuf_addf(&sb, ",%d", i);
    expect_list_rc(a, sb.buf, GR_OK);
    gr_sbuf_adds(&sb, ",x");
    expect_list_rc(a, sb.buf, GR_EINVAL);
    gr_sbuf_release(&sb);
}

/* ---- props_parse_matrix ---- */

static void props_parse_matrix__semicolons__entries(void **state)
{
    expect_matrix(*state, "build.number=7;team=x", "build.number=[7]|team=[x]");
    expect_matrix(*state, "a=1;a=2", "a=[1],[2]");
    expect_matrix(*state, "os=win,linux", "os=[win],[linux]");
    expect_matrix(*state, "a=1;", "a=[1]");
    expect_matrix(*state, "", "");
}

static void props_parse_matrix__percent__decoded_per_item(void **state)
{
    expect_matrix(*state, "a=x%3By", "a=[x;y]");    /* an encoded ';' is data */
    expect_matrix(*state, "a=x%7Cy", "a=[x|y]");    /* '|' is not a separator in a matrix */
    expect_matrix(*state, "a=1%2C2", "a=[1],[2]");  /* a decoded ',' still splits values */
    expect_matrix(*state, "a=1%5C%2C2", "a=[1,2]"); /* unless escaped */
    expect_matrix(*state, "a=1%5C=1", "a=[1=1]");
    expect_matrix(*state, "a=b+c%20d", "a=[b+c d]"); /* '+' is not a space in a path */
    expect_matrix(*state, "k%C3%A9=%C3%A4", "k\xc3\xa9=[\xc3\xa4]");
}

static void props_parse_matrix__raw_backslash__escapes_semicolon(void **state)
{
    expect_matrix(*state, "a=x\\;y;b=1", "a=[x;y]|b=[1]");
    expect_matrix(*state, "a=x\\,y", "a=[x,y]");
}

static void props_parse_matrix__bad_input__einval(void **state)
{
    expect_matrix_rc(*state, "a=%zz", GR_EINVAL);
    expect_matrix_rc(*state, "a=%2", GR_EINVAL);
    expect_matrix_rc(*state, "a=%", GR_EINVAL);
    expect_matrix_rc(*state, "a=%00", GR_EINVAL);
    expect_matrix_rc(*state, "=1", GR_EINVAL);
    expect_matrix_rc(*state, "a%20b=1", GR_EINVAL);
    expect_matrix_rc(*state, "a=%ff", GR_EINVAL);
    expect_matrix_rc(*state, "a=1\\", GR_EINVAL);
}

/* ---- props_parse_keys / props_parse_values ---- */

static void props_parse_keys__commas__keys_without_values(void **state)
{
    struct props_set s;
    assert_int_equal(props_parse_keys(*state, "os,qa", &s), GR_OK);
    assert_string_equal(show(*state, &s), "os=|qa=");
    assert_int_equal(props_parse_keys(*state, "", &s), GR_OK);
    assert_int_equal(s.n, 0);
    assert_int_equal(props_parse_keys(*state, "a,,a,", &s), GR_OK);
    assert_string_equal(show(*state, &s), "a=");
    assert_int_equal(props_parse_keys(*state, "a,b c", &s), GR_EINVAL);
    assert_int_equal(props_parse_keys(*state, "a=1", &s), GR_EINVAL);
}

static void props_parse_values__lists_and_wildcard(void **state)
{
    const char **v;
    int n;
    assert_int_equal(props_parse_values(*state, "v1,v2,v1", &v, &n), GR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[0], "v1");
    assert_string_equal(v[1], "v2");
    assert_int_equal(props_parse_values(*state, "", &v, &n), GR_OK);
    assert_int_equal(n, 0);
    assert_int_equal(props_parse_values(*state, "*", &v, &n), GR_OK);
    assert_int_equal(n, 0);
    assert_int_equal(props_parse_values(*state, "a\\,b", &v, &n), GR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0], "a,b");
    assert_int_equal(props_parse_values(*state, "x\\", &v, &n), GR_EINVAL);
}

/* ---- key and value rules ---- */

static void props_key_valid__artifactory_rules(void **state)
{
    (void)state;
    assert_true(props_key_valid("build.number"));
    assert_true(props_key_valid("vcs-revision_2"));
    assert_true(props_key_valid("npm:name"));
    assert_true(props_key_valid("\xe6\x97\xa5\xe6\x9c\xac"));
    assert_false(props_key_valid(""));
    const char *bad = ")(}{][*+^$\\/~`!@#%&<>;=,| ";
    for (const char *p = bad; *p; p++) {
        char k[4] = {'a', *p, 'b', '\0'};
        if (props_key_valid(k))
            fail_msg("key with '%c' accepted", *p);
    }
    assert_false(props_key_valid("a\x7f"));
    assert_false(props_key_valid("a\n"));
}

static void props_value_valid__length_and_utf8(void **state)
{
    (void)state;
    assert_true(props_value_valid(""));
    assert_true(props_value_valid("with, commas | and = signs"));
    assert_false(props_value_valid("\xc0\xaf")); /* overlong '/' */
}

/* ---- db_text_array ---- */

static void db_text_array__quotes_and_backslashes__escaped(void **state)
{
    (void)state;
    const char *v[] = {"a", "b\"c", "d\\e", "", "{x,y}"};
    struct gr_sbuf sb = GR_SBUF_INIT;
    db_text_array(&sb, v, 5);
    assert_string_equal(sb.buf, "{\"a\",\"b\\\"c\",\"d\\\\e\",\"\",\"{x,y}\"}");
    gr_sbuf_reset(&sb);
    db_text_array(&sb, v, 0);
    assert_string_equal(sb.buf, "{}");
    gr_sbuf_release(&sb);
}

/* ---- search_name_like ---- */

static void expect_like(const char *name, const char *want)
{
    struct gr_sbuf sb = GR_SBUF_INIT;
    int rc = search_name_like(name, &sb);
    if (rc != GR_OK)
        fail_msg("'%s': rc %d", name, rc);
    assert_string_equal(sb.buf, want);
    gr_sbuf_release(&sb);
}

static void search_name_like__wildcards__like_pattern(void **state)
{
    (void)state;
    expect_like("*.jar",
                "%.jar%"); /* Artifactory appends '*' when the name does not end with one */
    expect_like("lib", "%lib%");
    expect_like("lib-?.?.jar", "%lib-_._.jar%");
    expect_like("*lib*", "%lib%");
    expect_like("?ib", "_ib%");
    expect_like("x.jar?", "%x.jar_");
}

static void search_name_like__like_metachars__escaped(void **state)
{
    (void)state;
    expect_like("a_b%c\\d", "%a\\_b\\%c\\\\d%");
}

static void search_name_like__empty_or_wildcards__einval(void **state)
{
    (void)state;
    struct gr_sbuf sb = GR_SBUF_INIT;
    assert_int_equal(search_name_like("", &sb), GR_EINVAL);
    assert_int_equal(search_name_like("*", &sb), GR_EINVAL);
    assert_int_equal(search_name_like("*?*", &sb), GR_EINVAL);
    gr_sbuf_release(&sb);
}

/* ---- search_parse_time ---- */

static void expect_time(const char *s, int64_t want)
{
    int64_t ms = -1;
    int rc = search_parse_time(s, &ms);
    if (rc != GR_OK)
        fail_msg("'%s': rc %d", s, rc);
    if (ms != want)
        fail_msg("'%s': %lld, want %lld", s, (long long)ms, (long long)want);
}

static void search_parse_time__epoch_ms__as_is(void **state)
{
    (void)state;
    expect_time("0", 0);
    expect_time("1708819200000", 1708819200000LL);
    expect_time("-1000", -1000);
}

static void search_parse_time__iso8601__utc_ms(void **state)
{
    (void)state;
    expect_time("1970-01-01T00:00:00Z", 0);
    expect_time("2024-02-25T00:00:00.000Z", 1708819200000LL);
    expect_time("2024-02-28T12:07:45.867Z", 1709122065867LL);
    expect_time("2024-02-28T12:07:45.8Z", 1709122065800LL);
    expect_time("2024-02-28T12:07:45.867999Z", 1709122065867LL);
    expect_time("2024-02-28T14:07:45.867+02:00", 1709122065867LL);
    expect_time("2024-02-28T07:07:45.867-0500", 1709122065867LL);
    expect_time("2000-02-29T00:00:00Z", 951782400000LL);
    expect_time("9999-12-31T23:59:59.999Z", 253402300799999LL);
}

static void search_parse_time__bad__einval(void **state)
{
    (void)state;
    int64_t ms;
    const char *bad[] = {"",
                         "abc",
                         "12a",
                         "99999999999999999",
                         "2024-02-28",
                         "2024-02-28T12:07:45",
                         "2024-02-30T00:00:00Z",
                         "2023-02-29T00:00:00Z",
                         "2024-13-01T00:00:00Z",
                         "2024-02-28T24:00:00Z",
                         "2024-02-28T12:07:45.Z",
                         "2024-02-28T12:07:45Zjunk",
                         "2024-02-28T12:07:45+2:00",
                         NULL};
    for (int i = 0; bad[i]; i++)
        if (search_parse_time(bad[i], &ms) != GR_EINVAL)
            fail_msg("'%s' accepted", bad[i]);
}

/* ---- search_checksum_norm ---- */

static void search_checksum_norm__lengths_and_hex(void **state)
{
    (void)state;
    char out[65];
    assert_int_equal(search_checksum_norm("md5", "D41D8CD98F00B204E9800998ECF8427E", out), GR_OK);
    assert_string_equal(out, "d41d8cd98f00b204e9800998ecf8427e");
    assert_int_equal(search_checksum_norm("sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709", out),
                     GR_OK);
    assert_int_equal(
        search_checksum_norm(
            "sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", out),
        GR_OK);
    assert_int_equal(search_checksum_norm("sha1", "d41d8cd98f00b204e9800998ecf8427e", out),
                     GR_EINVAL);
    assert_int_equal(search_checksum_norm("md5", "g41d8cd98f00b204e9800998ecf8427e", out),
                     GR_EINVAL);
    assert_int_equal(search_checksum_norm("sha512", "00", out), GR_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(props_parse_list__pipe_and_comma__entries_and_values),
        T(props_parse_list__backslash__escapes_separators),
        T(props_parse_list__second_equals__literal),
        T(props_parse_list__no_value__one_empty_value),
        T(props_parse_list__repeats__merged),
        T(props_parse_list__empty_items__skipped),
        T(props_parse_list__utf8__kept),
        T(props_parse_list__bad_keys__einval),
        T(props_parse_list__dangling_backslash__einval),
        T(props_parse_list__bad_value_utf8__einval),
        T(props_parse_list__limits__einval_past_them),
        T(props_parse_matrix__semicolons__entries),
        T(props_parse_matrix__percent__decoded_per_item),
        T(props_parse_matrix__raw_backslash__escapes_semicolon),
        T(props_parse_matrix__bad_input__einval),
        T(props_parse_keys__commas__keys_without_values),
        T(props_parse_values__lists_and_wildcard),
        T(props_key_valid__artifactory_rules),
        T(props_value_valid__length_and_utf8),
        T(db_text_array__quotes_and_backslashes__escaped),
        T(search_name_like__wildcards__like_pattern),
        T(search_name_like__like_metachars__escaped),
        T(search_name_like__empty_or_wildcards__einval),
        T(search_parse_time__epoch_ms__as_is),
        T(search_parse_time__iso8601__utc_ms),
        T(search_parse_time__bad__einval),
        T(search_checksum_norm__lengths_and_hex),
#undef T
    };
    return cmocka_run_group_tests_name("props", tests, NULL, NULL);
}
