/*
 * test_security.c - unit tests of the pure parts of the security model
 * (repo/security.h, repo/secjson.c): action implications and spellings,
 * names, and the user, group, permission target and password-change
 * bodies. The database side is covered by tests/integration/60_*.bats.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "base/arena.h"
#include "base/err.h"
#include "repo/security.h"

static json_t *doc(const char *text)
{
    json_error_t e;
    json_t *d = json_loads(text, JSON_REJECT_DUPLICATES, &e);
    if (!d)
        fail_msg("bad test JSON: %s", e.text);
    return d;
}

static void actions__implications__closed(void **state)
{
    (void)state;
    assert_int_equal(sec_actions_close(SEC_MANAGE), 31);
    assert_int_equal(sec_actions_close(SEC_DELETE),
                     SEC_DELETE | SEC_WRITE | SEC_ANNOTATE | SEC_READ);
    assert_int_equal(sec_actions_close(SEC_WRITE), SEC_WRITE | SEC_ANNOTATE | SEC_READ);
    assert_int_equal(sec_actions_close(SEC_ANNOTATE), SEC_ANNOTATE | SEC_READ);
    assert_int_equal(sec_actions_close(SEC_READ), SEC_READ);
    assert_int_equal(sec_actions_close(0), 0);
}

static void actions__letters_and_names__round_trip(void **state)
{
    (void)state;
    unsigned a = 0;
    char l[6];
    assert_int_equal(sec_actions_parse_letters("rw", &a), GR_OK);
    assert_int_equal(a, SEC_READ | SEC_WRITE);
    sec_actions_letters(a, l);
    assert_string_equal(l, "rw");
    assert_int_equal(sec_actions_parse_letters("rx", &a), GR_EINVAL);
    assert_int_equal(sec_action_from_name("delete"), SEC_DELETE);
    assert_int_equal(sec_action_from_name("deploy"), SEC_WRITE);
    assert_int_equal(sec_action_from_name("m"), SEC_MANAGE);
    assert_int_equal(sec_action_from_name("READ"), 0);
    assert_string_equal(sec_action_name(SEC_ANNOTATE), "annotate");
}

static void names__valid_and_invalid(void **state)
{
    (void)state;
    assert_true(sec_name_valid("bob"));
    assert_true(sec_name_valid("bob.smith@example.com"));
    assert_false(sec_name_valid(""));
    assert_false(sec_name_valid("-bob"));
    assert_false(sec_name_valid("bo b"));
    assert_false(sec_name_valid("bob/x"));
    assert_false(
        sec_name_valid("0123456789012345678901234567890123456789012345678901234567890123456789"));
}

static void principal__realm_qualified__only_as_grants(void **state)
{
    (void)state;
    assert_true(sec_principal_valid("bob"));
    assert_true(sec_principal_valid("static-realm:ci"));
    assert_false(sec_name_valid("static-realm:ci")); /* never an internal user's name */
    assert_false(sec_principal_valid(":ci"));
    assert_false(sec_principal_valid("realm:"));
    assert_false(sec_principal_valid("-realm:ci"));
    assert_false(sec_principal_valid("a:b:c"));
    assert_false(sec_principal_valid("re alm:ci"));
}

static void user__body__members_and_presence(void **state)
{
    (void)state;
    struct gr_arena *a = gr_arena_new();
    struct sec_user u;
    const char *why = NULL;
    json_t *d =
        doc("{\"name\":\"bob\",\"password\":\"password1\",\"groups\":[\"devs\"],\"admin\":true}");
    assert_int_equal(sec_user_from_json(a, d, "bob", &u, &why), GR_OK);
    assert_true(u.has_password && u.has_groups && u.has_admin && u.admin);
    assert_false(u.has_disabled || u.has_email);
    assert_int_equal(u.ngroups, 1);
    assert_string_equal(u.groups[0], "devs");
    json_decref(d);
    d = doc("{\"name\":\"alice\"}");
    assert_int_equal(sec_user_from_json(a, d, "bob", &u, &why),
                     GR_EINVAL); /* URL and body differ */
    json_decref(d);
    d = doc("{\"admin\":\"yes\"}");
    assert_int_equal(sec_user_from_json(a, d, "bob", &u, &why), GR_EINVAL);
    json_decref(d);
    d = doc("{\"groups\":[\"a b\"]}");
    assert_int_equal(sec_user_from_json(a, d, "bob", &u, &why), GR_EINVAL);
    json_decref(d);
    d = doc("[]");
    assert_int_equal(sec_user_from_json(a, d, "bob", &u, &why), GR_EINVAL);
    json_decref(d);
    gr_arena_free(a);
}

static void target__body__v2_shape(void **state)
{
    (void)state;
    struct gr_arena *a = gr_arena_new();
    struct sec_target t;
    const char *why = NULL;
    json_t *d = doc("{\"repo\":{\"repositories\":[\"libs\",\"ANY LOCAL\"],"
                    "\"include-patterns\":[\"org/**\",\"com/**\"],\"exclude-patterns\":[\"\"],"
                    "\"actions\":{\"users\":{\"bob\":[\"read\",\"write\"]},"
                    "\"groups\":{\"devs\":[\"manage\"]}}}}");
    assert_int_equal(sec_target_from_json(a, d, "t1", &t, &why), GR_OK);
    assert_int_equal(t.nrepos, 2);
    assert_string_equal(t.includes, "org/**,com/**");
    assert_string_equal(t.excludes, "");
    assert_int_equal(t.ngrants, 2);
    assert_int_equal(t.grants[0].kind, 'u');
    assert_int_equal(t.grants[0].actions, SEC_READ | SEC_WRITE);
    assert_int_equal(t.grants[1].kind, 'g');
    assert_int_equal(t.grants[1].actions, SEC_MANAGE);
    json_decref(d);
    /* no repo object, a comma inside a pattern, an unknown action, a bad key */
    static const char *const bad[] = {
        "{}",
        "{\"repo\":{\"repositories\":[\"libs\"],\"include-patterns\":[\"a,b\"]}}",
        "{\"repo\":{\"repositories\":[\"libs\"],\"actions\":{\"users\":{\"bob\":[\"fly\"]}}}}",
        "{\"repo\":{\"repositories\":[\"../x\"]}}",
        "{\"repo\":{\"repositories\":\"libs\"}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        d = doc(bad[i]);
        why = NULL;
        if (sec_target_from_json(a, d, "t1", &t, &why) != GR_EINVAL)
            fail_msg("accepted: %s", bad[i]);
        assert_non_null(why);
        json_decref(d);
    }
    gr_arena_free(a);
}

static void password_change__body__new_passwords_must_agree(void **state)
{
    (void)state;
    struct gr_arena *a = gr_arena_new();
    const char *u, *o, *n, *why;
    json_t *d = doc("{\"userName\":\"bob\",\"oldPassword\":\"x\",\"newPassword1\":\"abcdefgh\","
                    "\"newPassword2\":\"abcdefgh\"}");
    assert_int_equal(sec_password_change_from_json(a, d, &u, &o, &n, &why), GR_OK);
    assert_string_equal(n, "abcdefgh");
    json_decref(d);
    d = doc("{\"userName\":\"bob\",\"oldPassword\":\"x\",\"newPassword1\":\"abcdefgh\","
            "\"newPassword2\":\"abcdefgX\"}");
    assert_int_equal(sec_password_change_from_json(a, d, &u, &o, &n, &why), GR_EINVAL);
    json_decref(d);
    gr_arena_free(a);
}

static void tokens__shape(void **state)
{
    (void)state;
    char t[SEC_TOKEN_LEN + 1] = "grt_";
    memset(t + 4, 'a', SEC_TOKEN_LEN - 4);
    t[SEC_TOKEN_LEN] = '\0';
    assert_true(sec_token_shaped(t));
    t[0] = 'n', t[1] = 'p', t[2] = 'm';
    assert_true(sec_token_shaped(t));
    t[10] = 'Z';
    assert_false(sec_token_shaped(t));
    assert_false(sec_token_shaped("grt_abc"));
    assert_false(sec_token_shaped("password123"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(actions__implications__closed),
        cmocka_unit_test(actions__letters_and_names__round_trip),
        cmocka_unit_test(names__valid_and_invalid),
        cmocka_unit_test(principal__realm_qualified__only_as_grants),
        cmocka_unit_test(user__body__members_and_presence),
        cmocka_unit_test(target__body__v2_shape),
        cmocka_unit_test(password_change__body__new_passwords_must_agree),
        cmocka_unit_test(tokens__shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
