/*
 * test_remote.c - unit tests of the remote module's pure parts
 * (remote/remote.h): a remote repository's settings under Artifactory's
 * names (checks, defaults, display), the sealed password, and a virtual
 * repository's members with their patterns. The fetching is driven by
 * tests/integration/34_remote.bats and 35_virtual.bats.
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
#include "remote/internal.h"

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

/* The settings text after applying doc onto settings (in a); NULL when refused (*why). */
static const char *apply(struct gr_arena *a, struct remote *rm, const char *doc,
                         const char *settings, bool creating, const char **why)
{
    json_t *d = json_loads(doc, 0, NULL), *s = json_loads(settings, 0, NULL);
    assert_non_null(d);
    assert_non_null(s);
    int rc = remote_settings_apply(rm, a, d, s, creating, why);
    char *text = rc == GR_OK ? json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    const char *out = text ? gr_arena_strdup(a, text) : NULL;
    free(text);
    json_decref(d);
    json_decref(s);
    return out;
}

static void remote_settings__artifactory_fields__checked_and_defaulted(void **state)
{
    struct gr_arena *a = *state;
    struct remote rm;
    memset(&rm, 0, sizeof(rm));
    memset(rm.seal_key, 3, sizeof(rm.seal_key));
    const char *why = NULL;
    const char *s = apply(a, &rm,
                          "{\"url\":\"https://repo.example/maven2//\",\"offline\":true,"
                          "\"retrievalCachePeriodSecs\":60,\"username\":\"u\",\"password\":\"pw\"}",
                          "{}", true, &why);
    assert_non_null(s);
    struct repo_config cfg;
    repo_config_defaults(&cfg);
    cfg.settings = s;
    struct remote_settings rs;
    remote_settings_read(a, &cfg, &rs);
    assert_string_equal(rs.url, "https://repo.example/maven2");
    assert_true(rs.offline);
    assert_int_equal(rs.ttl_s, 60);
    assert_int_equal(rs.miss_s, 1800);
    assert_int_equal(rs.offline_s, 300);
    assert_int_equal(rs.timeout_ms, 15000);
    assert_true(rs.store_locally);
    assert_true(rs.block_mime);
    assert_false(rs.hard_fail);
    assert_int_equal(rs.policy, REMOTE_SUMS_IF_PRESENT);
    /* sealed: stored unreadable, opened with the key, never shown */
    assert_null(strstr(s, "\"pw\""));
    assert_string_equal(remote_password(&rm, a, &rs), "pw");
    struct remote other = rm;
    memset(other.seal_key, 4, sizeof(other.seal_key));
    assert_string_equal(remote_password(&other, a, &rs), "");
    json_t *shown = json_object(), *st = json_loads(s, 0, NULL);
    remote_settings_json(st, shown);
    assert_null(json_object_get(shown, "password"));
    assert_true(json_is_true(json_object_get(shown, "passwordSet")));
    assert_string_equal(json_string_value(json_object_get(shown, "remoteRepoChecksumPolicyType")),
                        "generate-if-absent");
    json_decref(shown);
    json_decref(st);
    /* an update keeps what it does not name; an empty password removes it */
    const char *s2 = apply(a, &rm, "{\"password\":\"\",\"hardFail\":true}", s, false, &why);
    assert_non_null(s2);
    assert_null(strstr(s2, "password"));
    assert_non_null(strstr(s2, "\"url\":\"https://repo.example/maven2\""));
    /* refusals name the field */
    static const char *const bad[] = {
        "{\"url\":\"ftp://x\"}",
        "{\"url\":\"http://user:pw@host/\"}",
        "{\"url\":\"http://host/a b\"}",
        "{\"url\":\"http://\"}",
        "{\"url\":\"http://h\",\"socketTimeoutMillis\":1}",
        "{\"url\":\"http://h\",\"offline\":1}",
        "{\"url\":\"http://h\",\"remoteRepoChecksumPolicyType\":\"pass-thru\"}",
        "{\"url\":\"http://h\",\"username\":\"a\\nb\"}",
        "{\"offline\":true}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        assert_null(apply(a, &rm, bad[i], "{}", true, &why));
        assert_non_null(why);
    }
}

static void virtual_settings__members_patterns__read_in_order(void **state)
{
    struct gr_arena *a = *state;
    struct repo_config cfg;
    repo_config_defaults(&cfg);
    cfg.settings = "{\"repositories\":[\"loc\",\"rem\",7,\"other\"],\"defaultDeploymentRepo\":"
                   "\"loc\",\"memberPatterns\":{\"rem\":{\"includesPattern\":\"org/**\","
                   "\"excludesPattern\":\"org/secret/**\"}}}";
    struct virtual_settings v;
    virtual_settings_read(a, &cfg, &v);
    assert_int_equal(v.n, 3);
    assert_string_equal(v.members[0], "loc");
    assert_string_equal(v.members[1], "rem");
    assert_string_equal(v.members[2], "other");
    assert_string_equal(v.deploy, "loc");
    assert_true(virtual_member_accepts(&v, 0, "com/x/y.jar"));
    assert_true(virtual_member_accepts(&v, 1, "org/x/y.jar"));
    assert_false(virtual_member_accepts(&v, 1, "com/x/y.jar"));
    assert_false(virtual_member_accepts(&v, 1, "org/secret/y.jar"));
    cfg.settings = "{}";
    virtual_settings_read(a, &cfg, &v);
    assert_int_equal(v.n, 0);
    assert_string_equal(v.deploy, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(remote_settings__artifactory_fields__checked_and_defaulted,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(virtual_settings__members_patterns__read_in_order, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("remote", tests, NULL, NULL);
}
