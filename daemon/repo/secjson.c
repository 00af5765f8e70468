/*
 * secjson.c - the security request bodies (users, groups, permission
 * targets, password changes) read into structs, and the action names.
 * Pure: no database, no cache; fuzzed by tests/fuzz/fuzz_json.c.
 */
#include "repo/security.h"

#include "base/err.h"
#include "base/sbuf.h"
#include "base/utf8.h"

#include <jansson.h>
#include <string.h>

unsigned sec_actions_close(unsigned a)
{
    if (a & SEC_MANAGE)
        a |= SEC_DELETE;
    if (a & SEC_DELETE)
        a |= SEC_WRITE;
    if (a & SEC_WRITE)
        a |= SEC_ANNOTATE;
    if (a & SEC_ANNOTATE)
        a |= SEC_READ;
    return a & 31u;
}

static const char sec__letters[] = "rnwdm";
static const char *const sec__names[] = {"read", "annotate", "write", "delete", "manage"};

int sec_actions_parse_letters(const char *s, unsigned *out)
{
    unsigned a = 0;
    for (; *s; s++) {
        const char *p = strchr(sec__letters, *s);
        if (!p)
            return GR_EINVAL;
        a |= 1u << (p - sec__letters);
    }
    *out = a;
    return GR_OK;
}

void sec_actions_letters(unsigned a, char out[6])
{
    int n = 0;
    for (int i = 0; i < 5; i++)
        if (a & (1u << i))
            out[n++] = sec__letters[i];
    out[n] = '\0';
}

unsigned sec_action_from_name(const char *name)
{
    for (int i = 0; i < 5; i++)
        if (!strcmp(name, sec__names[i]))
            return 1u << i;
    /* Artifactory's older and v1 spellings */
    if (!strcmp(name, "deploy") || !strcmp(name, "w"))
        return SEC_WRITE;
    if (!strcmp(name, "r"))
        return SEC_READ;
    if (!strcmp(name, "n"))
        return SEC_ANNOTATE;
    if (!strcmp(name, "d"))
        return SEC_DELETE;
    if (!strcmp(name, "m") || !strcmp(name, "admin"))
        return SEC_MANAGE;
    return 0;
}

const char *sec_action_name(unsigned one)
{
    for (int i = 0; i < 5; i++)
        if (one == 1u << i)
            return sec__names[i];
    return "?";
}

bool sec_principal_valid(const char *name)
{
    const char *colon = strchr(name, ':');
    if (!colon)
        return sec_name_valid(name);
    /* <realm>:<user>: a realm is a plugin name ([A-Za-z0-9][A-Za-z0-9._-]*) */
    size_t rl = (size_t)(colon - name);
    if (rl == 0 || rl > SEC_NAME_MAX || !sec_name_valid(colon + 1))
        return false;
    for (size_t i = 0; i < rl; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return false;
    }
    return true;
}

bool sec_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > SEC_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '@' || *p == '-'))
            return false;
    return name[0] != '.' && name[0] != '-';
}

/* A string member (absent: *present false). false: wrong type or invalid UTF-8/length. */
static bool sec__str(json_t *o, const char *k, size_t max, const char **out, bool *present)
{
    json_t *v = json_object_get(o, k);
    if (present)
        *present = v != NULL;
    if (!v)
        return true;
    if (!json_is_string(v))
        return false;
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n > max || strlen(s) != n || !gr_utf8_valid(s, n))
        return false;
    *out = s;
    return true;
}

static bool sec__bool(json_t *o, const char *k, bool *out, bool *present)
{
    json_t *v = json_object_get(o, k);
    if (present)
        *present = v != NULL;
    if (!v)
        return true;
    if (!json_is_boolean(v))
        return false;
    *out = json_is_true(v);
    return true;
}

/* An array of names (each sec_name_valid, or any string when names is false). */
static bool sec__strings(struct gr_arena *a, json_t *arr, bool names, size_t max, const char ***out,
                         int *n)
{
    if (!json_is_array(arr) || json_array_size(arr) > SEC_LIST_MAX)
        return false;
    size_t cnt = json_array_size(arr);
    const char **v = gr_arena_alloc(a, (cnt + 1) * sizeof(*v));
    for (size_t i = 0; i < cnt; i++) {
        json_t *e = json_array_get(arr, i);
        if (!json_is_string(e))
            return false;
        const char *s = json_string_value(e);
        size_t len = json_string_length(e);
        if (strlen(s) != len || len > max || !gr_utf8_valid(s, len))
            return false;
        if (names && !sec_name_valid(s))
            return false;
        v[i] = gr_arena_strdup(a, s);
    }
    *out = v;
    *n = (int)cnt;
    return true;
}

/* The shape of a repository key (repo_key_check without the reserved names). */
static bool sec__repo_key_shaped(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > REPO_KEY_MAX ||
        !((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= 'A' && k[0] <= 'Z') ||
          (k[0] >= '0' && k[0] <= '9')))
        return false;
    for (const char *p = k; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return false;
    return true;
}

static bool sec__name_matches(json_t *doc, const char *name, const char **why)
{
    json_t *v = json_object_get(doc, "name");
    if (v && (!json_is_string(v) || strcmp(json_string_value(v), name))) {
        *why = "the name in the body differs from the name in the URL";
        return false;
    }
    return true;
}

int sec_user_from_json(struct gr_arena *a, const void *vdoc, const char *name, struct sec_user *out,
                       const char **why)
{
    json_t *doc = (json_t *)vdoc;
    memset(out, 0, sizeof(*out));
    out->email = "";
    if (!json_is_object(doc)) {
        *why = "the body must be a JSON object";
        return GR_EINVAL;
    }
    if (!sec_name_valid(name)) {
        *why = "invalid user name (1-64 of A-Z a-z 0-9 . _ @ -)";
        return GR_EINVAL;
    }
    if (!sec__name_matches(doc, name, why))
        return GR_EINVAL;
    out->name = gr_arena_strdup(a, name);
    if (!sec__str(doc, "email", 254, &out->email, &out->has_email)) {
        *why = "email must be a string of at most 254 bytes";
        return GR_EINVAL;
    }
    if (!sec__str(doc, "password", SEC_PASSWORD_MAX, &out->password, &out->has_password)) {
        *why = "password must be a string of at most 256 bytes";
        return GR_EINVAL;
    }
    if (!sec__bool(doc, "admin", &out->admin, &out->has_admin) ||
        !sec__bool(doc, "disabled", &out->disabled, &out->has_disabled)) {
        *why = "admin and disabled must be booleans";
        return GR_EINVAL;
    }
    json_t *g = json_object_get(doc, "groups");
    if (g) {
        out->has_groups = true;
        if (!sec__strings(a, g, true, SEC_NAME_MAX, &out->groups, &out->ngroups)) {
            *why = "groups must be an array of group names";
            return GR_EINVAL;
        }
    }
    if (out->has_email)
        out->email = gr_arena_strdup(a, out->email);
    if (out->has_password)
        out->password = gr_arena_strdup(a, out->password);
    return GR_OK;
}

int sec_group_from_json(struct gr_arena *a, const void *vdoc, const char *name,
                        struct sec_group *out, const char **why)
{
    json_t *doc = (json_t *)vdoc;
    memset(out, 0, sizeof(*out));
    out->description = "";
    if (!json_is_object(doc)) {
        *why = "the body must be a JSON object";
        return GR_EINVAL;
    }
    if (!sec_name_valid(name)) {
        *why = "invalid group name (1-64 of A-Z a-z 0-9 . _ @ -)";
        return GR_EINVAL;
    }
    if (!sec__name_matches(doc, name, why))
        return GR_EINVAL;
    out->name = gr_arena_strdup(a, name);
    if (!sec__str(doc, "description", 1024, &out->description, &out->has_description)) {
        *why = "description must be a string of at most 1024 bytes";
        return GR_EINVAL;
    }
    if (!sec__bool(doc, "autoJoin", &out->auto_join, &out->has_auto_join) ||
        !sec__bool(doc, "adminPrivileges", &out->admin, &out->has_admin)) {
        *why = "autoJoin and adminPrivileges must be booleans";
        return GR_EINVAL;
    }
    json_t *u = json_object_get(doc, "userNames");
    if (u) {
        out->has_users = true;
        if (!sec__strings(a, u, true, SEC_NAME_MAX, &out->users, &out->nusers)) {
            *why = "userNames must be an array of user names";
            return GR_EINVAL;
        }
    }
    out->description = gr_arena_strdup(a, out->description);
    return GR_OK;
}

/* Patterns: no commas inside one (the list is stored comma-separated), no control bytes. */
static bool sec__patterns(struct gr_arena *a, json_t *arr, const char *def, const char **out)
{
    if (!arr) {
        *out = def;
        return true;
    }
    const char **v;
    int n;
    if (!sec__strings(a, arr, false, 1024, &v, &n))
        return false;
    struct gr_sbuf sb = GR_SBUF_INIT;
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        for (const unsigned char *p = (const unsigned char *)v[i]; *p; p++)
            if (*p < 0x20 || *p == ',' || *p == 0x7f)
                ok = false;
        if (!*v[i])
            continue; /* Artifactory sends [""] for "no excludes" */
        if (sb.len)
            gr_sbuf_add(&sb, ",", 1);
        gr_sbuf_adds(&sb, v[i]);
    }
    *out = gr_arena_strndup(a, sb.buf ? sb.buf : "", sb.len);
    gr_sbuf_release(&sb);
    return ok;
}

static bool sec__grants(struct gr_arena *a, json_t *obj, char kind, struct sec_grant *g, int *n,
                        int max)
{
    if (!obj)
        return true;
    if (!json_is_object(obj) || json_object_size(obj) > SEC_LIST_MAX)
        return false;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        bool name_ok = kind == 'u' ? sec_principal_valid(k) : sec_name_valid(k);
        if (*n >= max || !name_ok || !json_is_array(v) || json_array_size(v) > 16)
            return false;
        unsigned acts = 0;
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            unsigned one = json_is_string(e) ? sec_action_from_name(json_string_value(e)) : 0;
            if (!one)
                return false;
            acts |= one;
        }
        g[*n] = (struct sec_grant){kind, gr_arena_strdup(a, k), acts};
        (*n)++;
    }
    return true;
}

int sec_target_from_json(struct gr_arena *a, const void *vdoc, const char *name,
                         struct sec_target *out, const char **why)
{
    json_t *doc = (json_t *)vdoc;
    memset(out, 0, sizeof(*out));
    if (!json_is_object(doc)) {
        *why = "the body must be a JSON object";
        return GR_EINVAL;
    }
    if (!sec_name_valid(name)) {
        *why = "invalid permission target name (1-64 of A-Z a-z 0-9 . _ @ -)";
        return GR_EINVAL;
    }
    if (!sec__name_matches(doc, name, why))
        return GR_EINVAL;
    out->name = gr_arena_strdup(a, name);
    json_t *repo = json_object_get(doc, "repo");
    if (!json_is_object(repo)) {
        *why = "a \"repo\" object is required";
        return GR_EINVAL;
    }
    json_t *repos = json_object_get(repo, "repositories");
    if (!repos || !sec__strings(a, repos, false, 64, &out->repos, &out->nrepos)) {
        *why = "repo.repositories must be an array of repository keys";
        return GR_EINVAL;
    }
    for (int i = 0; i < out->nrepos; i++) {
        const char *r = out->repos[i];
        if (strcmp(r, "ANY") && strcmp(r, "ANY LOCAL") && strcmp(r, "ANY REMOTE") &&
            !sec__repo_key_shaped(r)) {
            *why = "repo.repositories: not a repository key nor ANY, ANY LOCAL, ANY REMOTE";
            return GR_EINVAL;
        }
    }
    if (!sec__patterns(a, json_object_get(repo, "include-patterns"), "**", &out->includes) ||
        !sec__patterns(a, json_object_get(repo, "exclude-patterns"), "", &out->excludes)) {
        *why = "include-patterns and exclude-patterns must be arrays of patterns without"
               " commas or control characters";
        return GR_EINVAL;
    }
    if (!*out->includes)
        out->includes = "**";
    json_t *acts = json_object_get(repo, "actions");
    if (acts && !json_is_object(acts)) {
        *why = "repo.actions must be an object";
        return GR_EINVAL;
    }
    json_t *users = acts ? json_object_get(acts, "users") : NULL;
    json_t *groups = acts ? json_object_get(acts, "groups") : NULL;
    size_t max = (json_is_object(users) ? json_object_size(users) : 0) +
                 (json_is_object(groups) ? json_object_size(groups) : 0);
    if (max > SEC_LIST_MAX) {
        *why = "too many principals";
        return GR_EINVAL;
    }
    out->grants = gr_arena_calloc(a, (max + 1) * sizeof(*out->grants));
    if (!sec__grants(a, users, 'u', out->grants, &out->ngrants, (int)max) ||
        !sec__grants(a, groups, 'g', out->grants, &out->ngrants, (int)max)) {
        *why = "repo.actions.users and .groups map names to arrays of read, annotate, write,"
               " delete, manage";
        return GR_EINVAL;
    }
    return GR_OK;
}

int sec_password_change_from_json(struct gr_arena *a, const void *vdoc, const char **user,
                                  const char **old_pw, const char **new_pw, const char **why)
{
    json_t *doc = (json_t *)vdoc;
    const char *u = NULL, *o = NULL, *n1 = NULL, *n2 = NULL;
    bool pu, po, p1, p2;
    if (!json_is_object(doc) || !sec__str(doc, "userName", SEC_NAME_MAX, &u, &pu) ||
        !sec__str(doc, "oldPassword", SEC_PASSWORD_MAX, &o, &po) ||
        !sec__str(doc, "newPassword1", SEC_PASSWORD_MAX, &n1, &p1) ||
        !sec__str(doc, "newPassword2", SEC_PASSWORD_MAX, &n2, &p2) || !pu || !po || !p1 || !p2) {
        *why = "userName, oldPassword, newPassword1 and newPassword2 (strings) are required";
        return GR_EINVAL;
    }
    if (strcmp(n1, n2)) {
        *why = "newPassword1 and newPassword2 differ";
        return GR_EINVAL;
    }
    *user = gr_arena_strdup(a, u);
    *old_pw = gr_arena_strdup(a, o);
    *new_pw = gr_arena_strdup(a, n1);
    return GR_OK;
}
