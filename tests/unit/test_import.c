/*
 * test_import.c - unit tests of the state file of `granaryctl import`
 * (daemon/ctl/import_journal.h): load, append, later lines winning, torn
 * and malformed lines ignored, one import per state file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/import_journal.h"

#define S256_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define S256_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define S1_A "1111111111111111111111111111111111111111"

struct fixture {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    strcpy(f->dir, "/tmp/test_import.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/state", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static struct imp_journal *open_ok(const char *path)
{
    struct imp_journal *j = NULL;
    char err[256] = "";
    assert_int_equal(imp_journal_open(path, &j, err, sizeof(err)), 0);
    assert_non_null(j);
    return j;
}

static struct imp_jentry entry(const char *s256, uint64_t size, int64_t mtime)
{
    struct imp_jentry e = {.size = size, .mtime_ns = mtime};
    strcpy(e.sha256, s256);
    strcpy(e.sha1, S1_A);
    return e;
}

static void imp_journal_open__new_file__empty_then_appends_survive(void **state)
{
    struct fixture *f = *state;
    struct imp_journal *j = open_ok(f->path);
    assert_int_equal(imp_journal_loaded(j), 0);
    assert_null(imp_journal_find(j, "libs/a"));
    struct imp_jentry a = entry(S256_A, 12, 1700000000123456789LL);
    assert_int_equal(imp_journal_append(j, "libs/a b/ü.txt", &a), 0);
    assert_int_equal(imp_journal_append(j, "libs/c", &a), 0);
    assert_int_equal(imp_journal_close(j), 0);

    j = open_ok(f->path);
    assert_int_equal(imp_journal_loaded(j), 2);
    const struct imp_jentry *e = imp_journal_find(j, "libs/a b/ü.txt");
    assert_non_null(e);
    assert_string_equal(e->sha256, S256_A);
    assert_string_equal(e->sha1, S1_A);
    assert_int_equal(e->size, 12);
    assert_true(e->mtime_ns == 1700000000123456789LL);
    assert_null(imp_journal_find(j, "libs/a b"));
    assert_int_equal(imp_journal_close(j), 0);
}

static void imp_journal_open__same_path_twice__last_line_wins(void **state)
{
    struct fixture *f = *state;
    struct imp_journal *j = open_ok(f->path);
    struct imp_jentry a = entry(S256_A, 1, 1), b = entry(S256_B, 2, 2);
    assert_int_equal(imp_journal_append(j, "libs/x", &a), 0);
    assert_int_equal(imp_journal_append(j, "libs/x", &b), 0);
    assert_int_equal(imp_journal_close(j), 0);
    j = open_ok(f->path);
    assert_int_equal(imp_journal_loaded(j), 1);
    assert_string_equal(imp_journal_find(j, "libs/x")->sha256, S256_B);
    assert_int_equal(imp_journal_find(j, "libs/x")->size, 2);
    assert_int_equal(imp_journal_close(j), 0);
}

static void imp_journal_open__torn_and_bad_lines__ignored_torn_cut(void **state)
{
    struct fixture *f = *state;
    write_file(f->path, "# comment\n"
                        "\n"
                        "not a journal line\n"
                        "AAAAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa " S1_A
                        " 1 1 libs/uppercase\n" S256_A " " S1_A " x 1 libs/badsize\n" S256_A
                        " " S1_A " 5 6 libs/good\n" S256_A " " S1_A " 5 6 \n" S256_A " " S1_A
                        " 7 8 libs/torn"); /* a crash mid-line: no newline */
    struct imp_journal *j = open_ok(f->path);
    assert_int_equal(imp_journal_loaded(j), 1);
    assert_non_null(imp_journal_find(j, "libs/good"));
    assert_null(imp_journal_find(j, "libs/torn"));
    assert_null(imp_journal_find(j, "libs/uppercase"));
    /* the torn tail is cut, so it cannot be completed by the next line */
    struct imp_jentry a = entry(S256_A, 9, 9);
    assert_int_equal(imp_journal_append(j, "libs/after", &a), 0);
    assert_int_equal(imp_journal_close(j), 0);
    j = open_ok(f->path);
    assert_int_equal(imp_journal_loaded(j), 2);
    assert_int_equal(imp_journal_find(j, "libs/after")->size, 9);
    assert_null(imp_journal_find(j, "libs/torn"));
    assert_int_equal(imp_journal_close(j), 0);
}

static void imp_journal_open__in_use__refused(void **state)
{
    struct fixture *f = *state;
    struct imp_journal *j = open_ok(f->path), *j2 = NULL;
    char err[256] = "";
    assert_int_equal(imp_journal_open(f->path, &j2, err, sizeof(err)), -1);
    assert_null(j2);
    assert_non_null(strstr(err, "in use by another granaryctl import"));
    assert_int_equal(imp_journal_close(j), 0);
    j = open_ok(f->path); /* free again once closed */
    assert_int_equal(imp_journal_close(j), 0);
}

static void imp_journal_open__unwritable_place__message(void **state)
{
    (void)state;
    struct imp_journal *j = NULL;
    char err[256] = "";
    assert_int_equal(imp_journal_open("/nonexistent/dir/state", &j, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent/dir/state"));
}

static void imp_journal_open__many_paths__table_grows(void **state)
{
    struct fixture *f = *state;
    struct imp_journal *j = open_ok(f->path);
    char key[32];
    for (int i = 0; i < 5000; i++) {
        struct imp_jentry e = entry(S256_A, (uint64_t)i, i);
        snprintf(key, sizeof(key), "libs/f%d", i);
        assert_int_equal(imp_journal_append(j, key, &e), 0);
    }
    imp_journal_tick(j);
    assert_int_equal(imp_journal_close(j), 0);
    j = open_ok(f->path);
    assert_int_equal(imp_journal_loaded(j), 5000);
    for (int i = 0; i < 5000; i += 97) {
        snprintf(key, sizeof(key), "libs/f%d", i);
        assert_int_equal(imp_journal_find(j, key)->size, i);
    }
    assert_int_equal(imp_journal_close(j), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(imp_journal_open__new_file__empty_then_appends_survive,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(imp_journal_open__same_path_twice__last_line_wins, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(imp_journal_open__torn_and_bad_lines__ignored_torn_cut,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(imp_journal_open__in_use__refused, setup, teardown),
        cmocka_unit_test(imp_journal_open__unwritable_place__message),
        cmocka_unit_test_setup_teardown(imp_journal_open__many_paths__table_grows, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
