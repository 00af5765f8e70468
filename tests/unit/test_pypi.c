/*
 * test_pypi.c - unit tests of the pure PyPI rules (formats/pypi/pypi.h):
 * project names (PEP 503/508), versions (PEP 440: normal form and order),
 * distribution file names (PEP 427/491/625), core metadata, content
 * negotiation (PEP 691), and the index pages' records and rendering.
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
#include "base/sbuf.h"
#include "formats/pypi/pypi.h"

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

static void pypi_normalize__names__pep503(void **state)
{
    struct gr_arena *a = *state;
    assert_string_equal(pypi_normalize(a, "Hello_Pkg"), "hello-pkg");
    assert_string_equal(pypi_normalize(a, "A.-_b__C"), "a-b-c");
    assert_string_equal(pypi_normalize(a, "x"), "x");
    assert_null(pypi_normalize(a, ""));
    assert_null(pypi_normalize(a, "-lead"));
    assert_null(pypi_normalize(a, "trail."));
    assert_null(pypi_normalize(a, "sp ace"));
    assert_null(pypi_normalize(a, "a/b"));
    assert_null(pypi_normalize(a, "caf\xc3\xa9"));
    char big[PYPI_NAME_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_null(pypi_normalize(a, big));
}

static void pypi_version_normalize__pep440__normal_form(void **state)
{
    struct gr_arena *a = *state;
    static const char *const cases[][2] = {
        {"1.0", "1.0"},
        {"v1.0", "1.0"},
        {"1.0-RC.1", "1.0rc1"},
        {"1.0c1", "1.0rc1"},
        {"1.0alpha", "1.0a0"},
        {"1.0.beta-2", "1.0b2"},
        {"1.0-1", "1.0.post1"},
        {"1.0.post", "1.0.post0"},
        {"1.0-rev3", "1.0.post3"},
        {"1.0dev", "1.0.dev0"},
        {"1.0-a1.post2-dev3", "1.0a1.post2.dev3"},
        {"1!2.0", "1!2.0"},
        {"0!2.0", "2.0"},
        {"01.002", "1.2"},
        {"1.0+Ubuntu-1", "1.0+ubuntu.1"},
        {"1.0+abc.007", "1.0+abc.7"},
        {" 2.1 ", "2.1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = pypi_version_normalize(a, cases[i][0]);
        assert_non_null(got);
        assert_string_equal(got, cases[i][1]);
    }
    static const char *const bad[] = {
        "", "x", "1.0-", "1.0.x", "1..0", "1.0+", "1.0+a..b", "1.0 2", "1234567890123456789"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_null(pypi_version_normalize(a, bad[i]));
}

static void pypi_version_cmp__pep440__order(void **state)
{
    (void)state;
    /* PEP 440's own example order, and a few edges */
    static const char *const order[] = {
        "1.0.dev456",    "1.0a1",         "1.0a2.dev456", "1.0a12.dev456",
        "1.0a12",        "1.0b1.dev456",  "1.0b2",        "1.0b2.post345.dev456",
        "1.0b2.post345", "1.0rc1.dev456", "1.0rc1",       "1.0",
        "1.0+abc.5",     "1.0+abc.7",     "1.0+5",        "1.0.post456.dev34",
        "1.0.post456",   "1.0.15",        "1.1.dev1",     "1!0.1",
    };
    size_t n = sizeof(order) / sizeof(order[0]);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            int c = pypi_version_cmp(order[i], order[j]);
            if (i < j)
                assert_true(c < 0);
            else if (i > j)
                assert_true(c > 0);
            else
                assert_int_equal(c, 0);
        }
    assert_int_equal(pypi_version_cmp("1.0", "1.0.0"), 0);
    assert_true(pypi_version_cmp("not a version", "0.1") < 0);
    assert_true(pypi_version_is_pre("2.0rc1"));
    assert_true(pypi_version_is_pre("2.0.dev1"));
    assert_false(pypi_version_is_pre("2.0.post1"));
}

static void pypi_filename_parse__wheels_and_sdists__parsed(void **state)
{
    struct gr_arena *a = *state;
    struct pypi_filename f;
    const char *why = NULL;
    assert_int_equal(
        pypi_filename_parse(a, "Hello_Pkg-1.0.0-py3-none-any.whl", "hello-pkg", &f, &why), GR_OK);
    assert_int_equal(f.kind, PYPI_WHEEL);
    assert_string_equal(f.version, "1.0.0");
    assert_string_equal(f.pyversion, "py3");
    assert_string_equal(f.ext, ".whl");
    assert_int_equal(
        pypi_filename_parse(a, "x-2.0rc1-b1-cp311-cp311-manylinux_2_17_x86_64.whl", "x", &f, &why),
        GR_EINVAL); /* a build tag starts with a digit */
    assert_int_equal(
        pypi_filename_parse(a, "x-2.0rc1-1-cp311-cp311-manylinux_2_17_x86_64.whl", "x", &f, &why),
        GR_OK);
    assert_string_equal(f.version, "2.0rc1");
    assert_string_equal(f.pyversion, "cp311");
    assert_int_equal(pypi_filename_parse(a, "other-1.0-py3-none-any.whl", "hello", &f, &why),
                     GR_EINVAL);
    assert_non_null(strstr(why, "another project"));
    assert_int_equal(pypi_filename_parse(a, "hello-1.0-py3-none.whl", "hello", &f, &why),
                     GR_EINVAL);
    assert_int_equal(pypi_filename_parse(a, "hello-x.y-py3-none-any.whl", "hello", &f, &why),
                     GR_EINVAL);
    /* sdists: PEP 625 names and older ones with dashes in the name */
    assert_int_equal(pypi_filename_parse(a, "hello_pkg-1.0.tar.gz", "hello-pkg", &f, &why), GR_OK);
    assert_int_equal(f.kind, PYPI_SDIST);
    assert_string_equal(f.ext, ".tar.gz");
    assert_string_equal(f.pyversion, "source");
    assert_int_equal(pypi_filename_parse(a, "Hello-Pkg-2.0.post1.zip", "hello-pkg", &f, &why),
                     GR_OK);
    assert_string_equal(f.version, "2.0.post1");
    assert_string_equal(f.ext, ".zip");
    assert_int_equal(pypi_filename_parse(a, "hello-pkg.tar.gz", "hello-pkg", &f, &why), GR_EINVAL);
    assert_int_equal(pypi_filename_parse(a, "hello-1.0.egg", "hello", &f, &why), GR_EINVAL);
    assert_int_equal(pypi_filename_parse(a, "../hello-1.0.tar.gz", "hello", &f, &why), GR_EINVAL);
    assert_int_equal(pypi_filename_parse(a, ".hello-1.0.tar.gz", "hello", &f, &why), GR_EINVAL);
    assert_true(pypi_is_dist("a-1.tar.gz"));
    assert_false(pypi_is_dist("a-1.whl.metadata"));
}

static void pypi_meta_parse__headers_and_body__fields(void **state)
{
    struct gr_arena *a = *state;
    static const char text[] = "Metadata-Version: 2.1\r\n"
                               "Name: Hello_Pkg\r\n"
                               "Version: 1.0\r\n"
                               "Summary: greets\r\n"
                               "License: line one\r\n"
                               "        line two\r\n"
                               "Classifier: A :: B\r\n"
                               "Classifier: C :: D\r\n"
                               "Requires-Python: >=3.7\r\n"
                               "\r\n"
                               "# Hello\n\nthe description\n";
    struct pypi_meta m;
    const char *why = NULL;
    assert_int_equal(pypi_meta_parse(a, text, sizeof(text) - 1, &m, &why), GR_OK);
    assert_string_equal(pypi_meta_get(&m, "name"), "Hello_Pkg");
    assert_string_equal(pypi_meta_get(&m, "requires-python"), ">=3.7");
    assert_string_equal(pypi_meta_get(&m, "License"), "line one\n        line two");
    const char **v;
    assert_int_equal(pypi_meta_all(a, &m, "Classifier", &v), 2);
    assert_string_equal(v[1], "C :: D");
    assert_string_equal(m.body, "# Hello\n\nthe description\n");
    assert_null(pypi_meta_get(&m, "Author"));
    static const char noname[] = "Metadata-Version: 2.1\nVersion: 1.0\n";
    assert_int_equal(pypi_meta_parse(a, noname, sizeof(noname) - 1, &m, &why), GR_EINVAL);
    assert_non_null(strstr(why, "Name"));
    static const char latin1[] = "Metadata-Version: 2.1\nName: x\nVersion: 1\nAuthor: Jos\xe9\n";
    assert_int_equal(pypi_meta_parse(a, latin1, sizeof(latin1) - 1, &m, &why), GR_EINVAL);
    static const char noheader[] = "Metadata-Version: 2.1\nName: x\nVersion: 1\nnot a header\n";
    assert_int_equal(pypi_meta_parse(a, noheader, sizeof(noheader) - 1, &m, &why), GR_EINVAL);
}

static void pypi_accept__headers__representation(void **state)
{
    (void)state;
    /* what pip 23 sends */
    assert_int_equal(pypi_accept("application/vnd.pypi.simple.v1+json, "
                                 "application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"),
                     PYPI_T_JSON_V1);
    assert_int_equal(pypi_accept(NULL), PYPI_T_HTML);
    assert_int_equal(pypi_accept("*/*"), PYPI_T_HTML);
    assert_int_equal(pypi_accept("text/html"), PYPI_T_HTML);
    assert_int_equal(pypi_accept("application/vnd.pypi.simple.v1+html"), PYPI_T_HTML_V1);
    assert_int_equal(pypi_accept("application/vnd.pypi.simple.latest+json"), PYPI_T_JSON_V1);
    assert_int_equal(pypi_accept("application/vnd.pypi.simple.v1+json;q=0.2, text/html"),
                     PYPI_T_HTML);
    assert_int_equal(pypi_accept("APPLICATION/VND.PYPI.SIMPLE.V1+JSON"), PYPI_T_JSON_V1);
    assert_int_equal(pypi_accept("application/json"), PYPI_T_NONE);
    assert_int_equal(pypi_accept("text/html;q=0"), PYPI_T_NONE);
    assert_int_equal(pypi_accept("application/vnd.pypi.simple.v2+json"), PYPI_T_NONE);
    assert_string_equal(pypi_type_header(PYPI_T_JSON_V1), "application/vnd.pypi.simple.v1+json");
}

static void pypi_project_record__render__pages(void **state)
{
    struct gr_arena *a = *state;
    struct pypi_file f[3] = {
        {.path = "demo/1.0/demo-1.0-py3-none-any.whl",
         .filename = "demo-1.0-py3-none-any.whl",
         .version = "1.0",
         .size = 10,
         .upload_us = 1700000000123456,
         .requires_python = ">=3.7,<4",
         .meta_sha256 = "mm"},
        {.path = "demo/1.0/demo-1.0.tar.gz",
         .filename = "demo-1.0.tar.gz",
         .version = "1.0",
         .size = 20,
         .yanked = true,
         .yanked_reason = "bad \"build\" <x>"},
        {.path = "demo/2.0/demo-2.0.tar.gz",
         .filename = "demo-2.0.tar.gz",
         .version = "2.0",
         .size = 30,
         .yanked = true},
    };
    strcpy(f[0].sha256, "aa");
    strcpy(f[1].sha256, "bb");
    strcpy(f[2].sha256, "cc");
    struct gr_sbuf rec = GR_SBUF_INIT, sb = GR_SBUF_INIT;
    pypi_project_record(&rec, "Demo", f, 3);
    const char *display;
    struct pypi_entry *e;
    int n;
    assert_int_equal(pypi_project_entries(a, rec.buf, rec.len, &display, &e, &n), GR_OK);
    assert_string_equal(display, "Demo");
    assert_int_equal(n, 3);
    pypi_render_project(&sb, PYPI_T_HTML, "demo", display, e, n, NULL);
    assert_non_null(strstr(sb.buf, "<meta name=\"pypi:repository-version\" content=\"1.1\">"));
    assert_non_null(strstr(sb.buf, "href=\"../../packages/demo/1.0/demo-1.0-py3-none-any.whl"
                                   "#sha256=aa\" data-requires-python=\"&gt;=3.7,&lt;4\""
                                   " data-dist-info-metadata=\"sha256=mm\" data-core-metadata="
                                   "\"sha256=mm\">demo-1.0-py3-none-any.whl</a>"));
    assert_non_null(strstr(sb.buf, "data-yanked=\"bad &quot;build&quot; &lt;x&gt;\""));
    assert_non_null(strstr(sb.buf, "demo-2.0.tar.gz#sha256=cc\" data-yanked=\"\">"));
    gr_sbuf_reset(&sb);
    pypi_render_project(&sb, PYPI_T_JSON_V1, "demo", display, e, n, NULL);
    json_error_t err;
    json_t *doc = json_loads(sb.buf, 0, &err);
    assert_non_null(doc);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(doc, "meta"), "api-version")), "1.1");
    assert_string_equal(json_string_value(json_object_get(doc, "name")), "demo");
    json_t *vs = json_object_get(doc, "versions");
    assert_int_equal(json_array_size(vs), 2);
    json_t *files = json_object_get(doc, "files");
    assert_int_equal(json_array_size(files), 3);
    json_t *f0 = json_array_get(files, 0), *f1 = json_array_get(files, 1),
           *f2 = json_array_get(files, 2);
    assert_string_equal(json_string_value(json_object_get(f0, "upload-time")),
                        "2023-11-14T22:13:20.123456Z");
    assert_int_equal(json_integer_value(json_object_get(f0, "size")), 10);
    assert_string_equal(json_string_value(json_object_get(f0, "requires-python")), ">=3.7,<4");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(f0, "core-metadata"), "sha256")), "mm");
    assert_null(json_object_get(f0, "yanked"));
    assert_string_equal(json_string_value(json_object_get(f1, "yanked")), "bad \"build\" <x>");
    assert_true(json_is_true(json_object_get(f2, "yanked")));
    assert_true(json_is_false(json_object_get(f1, "core-metadata")));
    json_decref(doc);
    /* a caller who reads only the 2.0 file sees that one and its version */
    bool show[3] = {false, false, true};
    gr_sbuf_reset(&sb);
    pypi_render_project(&sb, PYPI_T_JSON_V1, "demo", display, e, n, show);
    doc = json_loads(sb.buf, 0, &err);
    assert_int_equal(json_array_size(json_object_get(doc, "files")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "versions"), 0)),
                        "2.0");
    json_decref(doc);
    /* a damaged record is refused, not read past its end */
    assert_int_equal(pypi_project_entries(a, rec.buf, rec.len - 3, &display, &e, &n), GR_EINVAL);
    assert_int_equal(pypi_project_entries(a, "pypi-project-1", 15, &display, &e, &n), GR_EINVAL);
    gr_sbuf_release(&rec);
    gr_sbuf_release(&sb);
}

static void pypi_root_record__render__projects(void **state)
{
    struct gr_arena *a = *state;
    struct pypi_project p[2] = {{"a-b", "A_B"}, {"x", "<x>"}};
    struct gr_sbuf rec = GR_SBUF_INIT, sb = GR_SBUF_INIT;
    pypi_root_record(&rec, p, 2);
    struct pypi_project *v;
    int n;
    assert_int_equal(pypi_root_entries(a, rec.buf, rec.len, &v, &n), GR_OK);
    assert_int_equal(n, 2);
    pypi_render_root(&sb, PYPI_T_HTML, v, n, NULL);
    assert_non_null(strstr(sb.buf, "<a href=\"a-b/\">A_B</a>"));
    assert_non_null(strstr(sb.buf, "<a href=\"x/\">&lt;x&gt;</a>"));
    gr_sbuf_reset(&sb);
    bool show[2] = {false, true};
    pypi_render_root(&sb, PYPI_T_JSON_V1, v, n, show);
    json_t *doc = json_loads(sb.buf, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(json_array_size(json_object_get(doc, "projects")), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(doc, "projects"), 0), "name")),
                        "<x>");
    json_decref(doc);
    gr_sbuf_release(&rec);
    gr_sbuf_release(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(pypi_normalize__names__pep503, setup, teardown),
        cmocka_unit_test_setup_teardown(pypi_version_normalize__pep440__normal_form, setup,
                                        teardown),
        cmocka_unit_test(pypi_version_cmp__pep440__order),
        cmocka_unit_test_setup_teardown(pypi_filename_parse__wheels_and_sdists__parsed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(pypi_meta_parse__headers_and_body__fields, setup, teardown),
        cmocka_unit_test(pypi_accept__headers__representation),
        cmocka_unit_test_setup_teardown(pypi_project_record__render__pages, setup, teardown),
        cmocka_unit_test_setup_teardown(pypi_root_record__render__projects, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
