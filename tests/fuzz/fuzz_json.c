/*
 * fuzz_json.c - libFuzzer target for the JSON request bodies of the
 * security API (repo/secjson.c): users, groups, permission targets and
 * password changes, decoded with the flags http_read_json_body() uses.
 * Beyond "no crash, no leak": every accepted document yields valid names,
 * actions within the five known bits, and no pattern holding a comma.
 */
#include "repo/security.h"

#include "base/arena.h"
#include "base/err.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_json: invariant failed: %s (line %d)\n", #cond, __LINE__);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_target(const struct sec_target *t)
{
    CHECK(sec_name_valid(t->name));
    CHECK(t->includes && *t->includes);
    CHECK(t->excludes);
    for (int i = 0; i < t->ngrants; i++) {
        CHECK(t->grants[i].kind == 'u' || t->grants[i].kind == 'g');
        CHECK(sec_name_valid(t->grants[i].principal));
        CHECK((t->grants[i].actions & ~31u) == 0);
        char l[6];
        unsigned back;
        sec_actions_letters(t->grants[i].actions, l);
        CHECK(sec_actions_parse_letters(l, &back) == GR_OK && back == t->grants[i].actions);
        CHECK(sec_actions_close(sec_actions_close(back)) == sec_actions_close(back));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        return 0;
    struct gr_arena *a = gr_arena_new();
    if (!a)
        abort();
    const char *why = NULL;
    static const char *const names[] = {"bob", "java-devs", ""};
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        struct sec_user u;
        if (sec_user_from_json(a, doc, names[k], &u, &why) == GR_OK) {
            CHECK(sec_name_valid(u.name));
            for (int i = 0; i < u.ngroups; i++)
                CHECK(sec_name_valid(u.groups[i]));
            CHECK(!u.has_password || strlen(u.password) <= SEC_PASSWORD_MAX);
        } else {
            CHECK(why != NULL);
        }
        struct sec_group g;
        if (sec_group_from_json(a, doc, names[k], &g, &why) == GR_OK)
            for (int i = 0; i < g.nusers; i++)
                CHECK(sec_name_valid(g.users[i]));
        struct sec_target t;
        if (sec_target_from_json(a, doc, names[k], &t, &why) == GR_OK)
            check_target(&t);
    }
    /* a target named by the body itself */
    json_t *n = json_is_object(doc) ? json_object_get(doc, "name") : NULL;
    if (json_is_string(n)) {
        struct sec_target t;
        if (sec_target_from_json(a, doc, json_string_value(n), &t, &why) == GR_OK)
            check_target(&t);
    }
    const char *u, *o, *p;
    if (sec_password_change_from_json(a, doc, &u, &o, &p, &why) == GR_OK)
        CHECK(u && o && p);
    gr_arena_free(a);
    json_decref(doc);
    return 0;
}
