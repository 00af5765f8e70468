/*
 * test_pattern.c - unit tests of the Ant-style include/exclude patterns
 * (repo/pattern.h): globstars, stars and question marks, the "dir/" form,
 * comma lists, empty lists, UTF-8, and a pathological pattern that must
 * stay fast. Pure functions: no fixtures needed.
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
#include <time.h>

#include "repo/pattern.h"

static void yes(const char *pattern, const char *path)
{
    if (!pattern_match(pattern, strlen(pattern), path))
        fail_msg("'%s' should match '%s'", pattern, path);
}

static void no(const char *pattern, const char *path)
{
    if (pattern_match(pattern, strlen(pattern), path))
        fail_msg("'%s' should not match '%s'", pattern, path);
}

static void pattern_match__default_include__matches_everything(void **state)
{
    (void)state;
    yes("**/*", "a");
    yes("**/*", "a/b/c.jar");
    yes("**", "a/b/c.jar");
    yes("**", "x");
    yes("**/**", "x/y");
}

static void pattern_match__star__one_segment_only(void **state)
{
    (void)state;
    yes("*.jar", "x.jar");
    yes("*", "x");
    no("*.jar", "a/x.jar");
    no("*.jar", "x.jar.sha1");
    yes("a/*/c", "a/b/c");
    no("a/*/c", "a/b/x/c");
    yes("a*b*c", "abc");
    yes("a*b*c", "aXXbYYc");
    no("a*b*c", "aXXbYY");
    yes("*a*", "banana");
    yes("**a", "xa"); /* "**" inside a longer segment is a plain star */
}

static void pattern_match__globstar__zero_or_more_segments(void **state)
{
    (void)state;
    yes("**/*.jar", "x.jar");
    yes("**/*.jar", "a/b/x.jar");
    no("**/*.jar", "a/b/x.pom");
    yes("org/**", "org");
    yes("org/**", "org/a/b");
    no("org/**", "com/org/a");
    yes("a/**/b", "a/b");
    yes("a/**/b", "a/x/y/b");
    no("a/**/b", "a/x/c");
    yes("**/secret/**", "secret/x");
    yes("**/secret/**", "a/b/secret/c/d");
    no("**/secret/**", "a/secrets/c");
    yes("a/**/b/**/c", "a/x/b/y/b/z/c");
    no("a/**/b/**/c", "a/x/c");
}

static void pattern_match__question_mark__one_character(void **state)
{
    (void)state;
    yes("a/?.txt", "a/b.txt");
    no("a/?.txt", "a/bb.txt");
    no("a/?.txt", "a/.txt");
    yes("?\xc3\xa9", "x\xc3\xa9");  /* "é" is one character */
    yes("x?", "x\xc3\xa9");         /* '?' takes the whole sequence */
    no("x??", "x\xc3\xa9");         /* ... not two bytes of it */
    yes("*\xc3\xa9", "ab\xc3\xa9"); /* a star backtracks by whole characters */
}

static void pattern_match__trailing_slash__means_everything_below(void **state)
{
    (void)state;
    yes("org/", "org/a");
    yes("org/", "org/a/b/c");
    yes("org/", "org");
    no("org/", "com/a");
    yes("**/a/", "x/a/b/c");
}

static void pattern_match__slashes__leading_and_doubled_ignored(void **state)
{
    (void)state;
    yes("/a/b", "a/b");
    yes("a//b", "a/b");
    yes("a/b", "/a/b");
    no("a/b", "a/b/c");
    no("a/b/c", "a/b");
}

static void pattern_match__case__sensitive(void **state)
{
    (void)state;
    no("*.JAR", "x.jar");
    yes("*.JAR", "x.JAR");
}

static void pattern_list_match__comma_list__any_matches(void **state)
{
    (void)state;
    assert_true(pattern_list_match("com/**, org/**", "org/x", false));
    assert_true(pattern_list_match("com/**,org/**", "com/x", false));
    assert_true(pattern_list_match(" com/** ,\torg/** ", "org/x", false));
    assert_false(pattern_list_match("com/**, org/**", "net/x", true));
}

static void pattern_list_match__empty__if_empty(void **state)
{
    (void)state;
    assert_true(pattern_list_match("", "a", true));
    assert_false(pattern_list_match("", "a", false));
    assert_true(pattern_list_match(NULL, "a", true));
    assert_false(pattern_list_match(" , ,", "a", false));
}

static void pattern_accepts__includes_and_excludes(void **state)
{
    (void)state;
    assert_true(pattern_accepts("**/*", "", "a/b.jar"));
    assert_false(pattern_accepts("**/*", "**/*.tmp", "a/b.tmp"));
    assert_true(pattern_accepts("**/*", "**/*.tmp", "a/b.jar"));
    assert_false(pattern_accepts("org/**", "", "com/x.jar"));
    assert_true(pattern_accepts("", "", "anything/at/all"));
    assert_true(pattern_accepts(NULL, NULL, "x"));
    assert_false(pattern_accepts("org/**", "org/internal/**", "org/internal/x"));
}

static void pattern_match__pathological__linear_time(void **state)
{
    (void)state;
    /* 40 globstars against 500 segments: exponential backtracking would never finish */
    char pat[512] = "";
    for (int i = 0; i < 40; i++)
        strcat(pat, "**/a/");
    strcat(pat, "b");
    static char path[1200];
    path[0] = '\0';
    for (int i = 0; i < 500; i++)
        strcat(path, i ? "/a" : "a");
    clock_t t0 = clock();
    assert_false(pattern_match(pat, strlen(pat), path));
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 2.0);
    /* and a long glob within one segment */
    char seg[300];
    memset(seg, 'a', 250);
    seg[250] = '\0';
    assert_false(pattern_match("*a*a*a*a*a*a*a*a*a*a*b", 22, seg));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pattern_match__default_include__matches_everything),
        cmocka_unit_test(pattern_match__star__one_segment_only),
        cmocka_unit_test(pattern_match__globstar__zero_or_more_segments),
        cmocka_unit_test(pattern_match__question_mark__one_character),
        cmocka_unit_test(pattern_match__trailing_slash__means_everything_below),
        cmocka_unit_test(pattern_match__slashes__leading_and_doubled_ignored),
        cmocka_unit_test(pattern_match__case__sensitive),
        cmocka_unit_test(pattern_list_match__comma_list__any_matches),
        cmocka_unit_test(pattern_list_match__empty__if_empty),
        cmocka_unit_test(pattern_accepts__includes_and_excludes),
        cmocka_unit_test(pattern_match__pathological__linear_time),
    };
    return cmocka_run_group_tests_name("pattern", tests, NULL, NULL);
}
