/* test_cookie.c - the Cookie header, the session cookie (daemon/http/cookie.h), and the
 * shape and CSRF token of a web UI session (repo/security.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/cookie.h"
#include "repo/security.h"

static void http_cookie_get__among_others__its_value(void **state)
{
    (void)state;
    char v[80];
    assert_true(
        http_cookie_get("a=1; granary_session=grs_ab; b=2", "granary_session", v, sizeof(v)));
    assert_string_equal(v, "grs_ab");
    assert_true(http_cookie_get("granary_session=x", "granary_session", v, sizeof(v)));
    assert_string_equal(v, "x");
    assert_true(http_cookie_get("granary_session=\"q\";", "granary_session", v, sizeof(v)));
    assert_string_equal(v, "q");
    /* the first of two, a name only as a whole */
    assert_true(http_cookie_get("x_granary_session=no; granary_session=one; granary_session=two",
                                "granary_session", v, sizeof(v)));
    assert_string_equal(v, "one");
    assert_true(http_cookie_get("granary_session=", "granary_session", v, sizeof(v)));
    assert_string_equal(v, "");
}

static void http_cookie_get__absent_long_or_bad__false(void **state)
{
    (void)state;
    char v[8];
    assert_false(http_cookie_get("a=1; b=2", "granary_session", v, sizeof(v)));
    assert_false(http_cookie_get("", "granary_session", v, sizeof(v)));
    assert_false(http_cookie_get(NULL, "granary_session", v, sizeof(v)));
    assert_false(http_cookie_get("granary_session", "granary_session", v, sizeof(v)));
    assert_false(http_cookie_get("granary_session=12345678", "granary_session", v, sizeof(v)));
    assert_false(http_cookie_get("granary_session=a b", "granary_session", v, sizeof(v)));
    assert_false(http_cookie_get("granary_session=a\\b", "granary_session", v, sizeof(v)));
    assert_false(http_cookie_get("granary_session=a\x01", "granary_session", v, sizeof(v)));
}

static void http_session_set_cookie__attributes__strict_httponly(void **state)
{
    (void)state;
    char sc[200];
    assert_true(http_session_set_cookie(sc, sizeof(sc), "grs_1", 60, false));
    assert_string_equal(sc, "granary_session=grs_1; Path=/; HttpOnly; SameSite=Strict; Max-Age=60");
    assert_true(http_session_set_cookie(sc, sizeof(sc), "grs_1", 60, true));
    assert_string_equal(
        sc, "granary_session=grs_1; Path=/; HttpOnly; SameSite=Strict; Max-Age=60; Secure");
    assert_true(http_session_set_cookie(sc, sizeof(sc), NULL, 60, false));
    assert_string_equal(sc, "granary_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    assert_false(http_session_set_cookie(sc, 20, "grs_1", 60, false));
}

static void sec_session__shape_and_csrf__bound_to_the_cookie(void **state)
{
    (void)state;
    char a[SEC_SESSION_LEN + 1], b[SEC_SESSION_LEN + 1];
    memcpy(a, "grs_", 4);
    memset(a + 4, 'a', SEC_SESSION_LEN - 4);
    a[SEC_SESSION_LEN] = '\0';
    memcpy(b, a, sizeof(a));
    b[SEC_SESSION_LEN - 1] = 'b';
    assert_true(sec_session_shaped(a));
    assert_false(sec_session_shaped("grs_abc"));
    assert_false(
        sec_session_shaped("grt_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    char bad[SEC_SESSION_LEN + 1];
    memcpy(bad, a, sizeof(a));
    bad[10] = 'A'; /* hex is lowercase */
    assert_false(sec_session_shaped(bad));
    char ca[SEC_CSRF_LEN + 1], ca2[SEC_CSRF_LEN + 1], cb[SEC_CSRF_LEN + 1];
    sec_session_csrf(a, ca);
    sec_session_csrf(a, ca2);
    sec_session_csrf(b, cb);
    assert_int_equal(strlen(ca), SEC_CSRF_LEN);
    assert_string_equal(ca, ca2);    /* the same on every node */
    assert_string_not_equal(ca, cb); /* another session, another token */
    assert_null(strstr(ca, a + 4));  /* not the cookie itself */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(http_cookie_get__among_others__its_value),
        cmocka_unit_test(http_cookie_get__absent_long_or_bad__false),
        cmocka_unit_test(http_session_set_cookie__attributes__strict_httponly),
        cmocka_unit_test(sec_session__shape_and_csrf__bound_to_the_cookie),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
