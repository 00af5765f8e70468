/*
 * h_security.c - /api/security/{users,groups,permissions,token},
 * /api/v2/security/permissions and /api/audit (docs/security.md).
 * Artifactory's shapes; no answer ever carries a password hash or a
 * stored token (only the token just issued).
 */
#include "http/path.h"
#include "http/req.h"

#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "repo/security.h"

#include <stdlib.h>
#include <string.h>

#define FORM_BODY_MAX (64 * 1024)

static const char *sec__uri(struct http_req *r, const char *what, const char *name)
{
    return gr_arena_printf(r->arena, "%s%s/api/%s/%s", http_base_url(r), r->base, what, name);
}

static void sec__err(struct http_req *r, int rc, const char *what, const char *name)
{
    if (rc == GR_ENOTFOUND)
        http_error(r, 404, "%s '%s' not found", what, name);
    else if (rc == GR_EEXIST)
        http_error(r, 409, "%s '%s' already exists", what, name);
    else if (rc == GR_ECONFLICT)
        http_error(r, 409, "refused: this would leave no enabled admin");
    else if (rc == GR_EINVAL)
        http_error(r, 400,
                   "invalid %s: a name of 1-64 of A-Z a-z 0-9 . _ @ -, a password of %d-%d"
                   " bytes, existing groups and users",
                   what, SEC_PASSWORD_MIN, SEC_PASSWORD_MAX);
    else
        http_error_code(r, rc, NULL);
}

static json_t *sec__strarr(const char *const *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* ---- users ---- */

static json_t *sec__user_json(struct http_req *r, const struct sec_user_info *u)
{
    char created[40], changed[40];
    http_iso8601(u->created_ms, created, sizeof(created));
    http_iso8601(u->password_changed_ms, changed, sizeof(changed));
    return json_pack("{s:s,s:s,s:b,s:b,s:b,s:b,s:b,s:s,s:o,s:s,s:s,s:s}", "name", u->name, "email",
                     u->email, "admin", u->admin, "disabled", u->disabled, "profileUpdatable", 1,
                     "disableUIAccess", 0, "internalPasswordDisabled", 0, "realm", "internal",
                     "groups", sec__strarr(u->groups, u->ngroups), "created", created,
                     "lastPasswordChange", changed, "uri", sec__uri(r, "security/users", u->name));
}

struct sec_req {
    const char *name;
    bool create;   /* PUT: create or replace; POST: update */
    bool need_old; /* a password set by the user itself (not an admin): the old one first */
};

/*
 * The current password of user, checked and throttled like a login (a
 * stolen session or short-lived token must not be enough to take the
 * account). false: an answer was sent (429, 401, or an error).
 */
static bool sec__old_password_ok(struct http_req *r, const char *user, const char *old_pw,
                                 const char *how)
{
    int wait = sec_throttle_wait(user, r->client);
    if (wait > 0) {
        http_error(r, 429, "too many failed logins: retry in %d s", wait);
        return false;
    }
    struct auth_user check;
    int rc = auth_check_password(r->ctx, user, old_pw, &check);
    sec_throttle_result(user, r->client, rc == GR_OK);
    if (rc == GR_EAUTH) {
        sec_audit(r->ctx, user, r->client, "login_failed", NULL, NULL, how);
        http_error(r, 401, "the old password is wrong");
        return false;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return false;
    }
    return true;
}

static void sec__user_put_done(struct http_req *r, json_t *doc)
{
    struct sec_req *q = r->hctx_sec;
    struct sec_user u;
    const char *why = "";
    if (sec_user_from_json(r->arena, doc, q->name, &u, &why)) {
        http_error(r, 400, "%s", why);
        return;
    }
    if (u.has_password && (strlen(u.password) < SEC_PASSWORD_MIN)) {
        http_error(r, 400, "the password must have at least %d characters", SEC_PASSWORD_MIN);
        return;
    }
    int rc;
    bool created = false;
    if (q->create) {
        rc = sec_user_put(r->ctx, &u, true);
        created = rc == GR_OK;
        if (rc == GR_EEXIST)
            rc = sec_user_put(r->ctx, &u, false);
    } else {
        rc = sec_user_put(r->ctx, &u, false);
    }
    if (rc) {
        sec__err(r, rc, "user", q->name);
        return;
    }
    http_audit(r, "security", NULL, NULL,
               gr_arena_printf(r->arena, "%s user %s", created ? "create" : "update", q->name));
    http_text(r, created ? 201 : 200, NULL, "", 0);
}

static void sec__password_done(struct http_req *r, json_t *doc)
{
    struct sec_req *q = r->hctx_sec;
    json_t *pw = json_object_get(doc, "password");
    if (!json_is_string(pw)) {
        http_error(r, 400, "a \"password\" string is required");
        return;
    }
    if (q->need_old) {
        const char *old = json_string_value(json_object_get(doc, "oldPassword"));
        if (!old) {
            http_error(r, 400,
                       "an \"oldPassword\" string is required to change one's own"
                       " password");
            return;
        }
        if (!sec__old_password_ok(r, q->name, old, "password"))
            return;
    }
    int rc = sec_user_set_password(r->ctx, q->name, json_string_value(pw));
    if (rc == GR_EINVAL) {
        http_error(r, 400, "the password must have %d to %d characters", SEC_PASSWORD_MIN,
                   SEC_PASSWORD_MAX);
        return;
    }
    if (rc) {
        sec__err(r, rc, "user", q->name);
        return;
    }
    http_audit(r, "security", NULL, NULL,
               gr_arena_printf(r->arena, "password of user %s", q->name));
    http_text(r, 200, "text/plain", "", 0);
}

/* Artifactory's POST /api/security/users/authorization/changePassword (the user itself). */
static void sec__change_password_done(struct http_req *r, json_t *doc)
{
    const char *user, *old_pw, *new_pw, *why = "";
    if (sec_password_change_from_json(r->arena, doc, &user, &old_pw, &new_pw, &why)) {
        http_error(r, 400, "%s", why);
        return;
    }
    if (strcmp(user, r->user.name) && !http_is_admin(r)) {
        http_error(r, 403, "a user may change only its own password");
        return;
    }
    if (!sec__old_password_ok(r, user, old_pw, "changePassword"))
        return;
    int rc = sec_user_set_password(r->ctx, user, new_pw);
    if (rc == GR_EINVAL) {
        http_error(r, 400, "the password must have %d to %d characters", SEC_PASSWORD_MIN,
                   SEC_PASSWORD_MAX);
        return;
    }
    if (rc) {
        sec__err(r, rc, "user", user);
        return;
    }
    http_audit(r, "security", NULL, NULL, gr_arena_printf(r->arena, "password of user %s", user));
    http_text(r, 200, "text/plain", "Password has been successfully changed", 38);
}

static void sec__users(struct http_req *r, const char *rest)
{
    if (!*rest) {
        if (r->method != HM_GET && r->method != HM_HEAD) {
            http_error(r, 405, "method %s not allowed here", r->method_str);
            return;
        }
        if (!http_need_admin(r))
            return;
        struct sec_user_info *v;
        int n;
        int rc = sec_user_list(r->ctx, r->arena, &v, &n);
        if (rc) {
            http_error_code(r, rc, NULL);
            return;
        }
        json_t *arr = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "name", v[i].name, "uri",
                                                 sec__uri(r, "security/users", v[i].name), "realm",
                                                 "internal"));
        http_json(r, 200, arr);
        return;
    }
    if (!strcmp(rest, "authorization/changePassword")) {
        if (r->method != HM_POST) {
            http_error(r, 405, "method %s not allowed here", r->method_str);
            return;
        }
        if (r->user.anonymous) {
            http_error(r, 401, "authentication required");
            return;
        }
        http_read_json_body(r, sec__change_password_done);
        return;
    }
    const char *slash = strchr(rest, '/');
    const char *name = slash ? gr_arena_strndup(r->arena, rest, (size_t)(slash - rest)) : rest;
    if (slash && !strcmp(slash, "/password")) {
        /* granary: set a password (admin, or the user itself) {"password": "..."} */
        if (r->method != HM_POST && r->method != HM_PUT) {
            http_error(r, 405, "method %s not allowed here", r->method_str);
            return;
        }
        if (r->user.anonymous || (strcmp(r->user.name, name) && !http_need_admin(r))) {
            if (!r->responded)
                http_error(r, 401, "authentication required");
            return;
        }
        const struct sec_perms *perms;
        int rc = http_perms(r, &perms);
        if (rc) {
            http_error_code(r, rc, NULL);
            return;
        }
        struct sec_req *q = gr_arena_calloc(r->arena, sizeof(*q));
        q->name = name;
        q->need_old = !perms->all; /* only an admin sets a password without the old one */
        r->hctx_sec = q;
        http_read_json_body(r, sec__password_done);
        return;
    }
    if (slash) {
        http_error(r, 404, "no such api");
        return;
    }
    if (!http_need_admin(r))
        return;
    if (r->method == HM_GET || r->method == HM_HEAD) {
        struct sec_user_info u;
        int rc = sec_user_get(r->ctx, r->arena, name, &u);
        if (rc)
            sec__err(r, rc, "user", name);
        else
            http_json(r, 200, sec__user_json(r, &u));
    } else if (r->method == HM_PUT || r->method == HM_POST) {
        struct sec_req *q = gr_arena_calloc(r->arena, sizeof(*q));
        q->name = name;
        q->create = r->method == HM_PUT;
        r->hctx_sec = q;
        http_read_json_body(r, sec__user_put_done);
    } else if (r->method == HM_DELETE) {
        int rc = sec_user_delete(r->ctx, name);
        if (rc) {
            sec__err(r, rc, "user", name);
            return;
        }
        http_audit(r, "security", NULL, NULL, gr_arena_printf(r->arena, "delete user %s", name));
        http_text(r, 200, "text/plain", "", 0);
    } else {
        http_error(r, 405, "method %s not allowed here", r->method_str);
    }
}

/* ---- groups ---- */

static json_t *sec__group_json(struct http_req *r, const struct sec_group_info *g)
{
    return json_pack("{s:s,s:s,s:b,s:b,s:s,s:o,s:s}", "name", g->name, "description",
                     g->description, "autoJoin", g->auto_join, "adminPrivileges", g->admin, "realm",
                     "internal", "userNames", sec__strarr(g->users, g->nusers), "uri",
                     sec__uri(r, "security/groups", g->name));
}

static void sec__group_put_done(struct http_req *r, json_t *doc)
{
    struct sec_req *q = r->hctx_sec;
    struct sec_group g;
    const char *why = "";
    if (sec_group_from_json(r->arena, doc, q->name, &g, &why)) {
        http_error(r, 400, "%s", why);
        return;
    }
    int rc;
    bool created = false;
    if (q->create) {
        rc = sec_group_put(r->ctx, &g, true);
        created = rc == GR_OK;
        if (rc == GR_EEXIST)
            rc = sec_group_put(r->ctx, &g, false);
    } else {
        rc = sec_group_put(r->ctx, &g, false);
    }
    if (rc) {
        sec__err(r, rc, "group", q->name);
        return;
    }
    http_audit(r, "security", NULL, NULL,
               gr_arena_printf(r->arena, "%s group %s", created ? "create" : "update", q->name));
    http_text(r, created ? 201 : 200, NULL, "", 0);
}

static void sec__groups(struct http_req *r, const char *name)
{
    if (!http_need_admin(r))
        return;
    if (!*name) {
        if (r->method != HM_GET && r->method != HM_HEAD) {
            http_error(r, 405, "method %s not allowed here", r->method_str);
            return;
        }
        struct sec_group_info *v;
        int n;
        int rc = sec_group_list(r->ctx, r->arena, &v, &n);
        if (rc) {
            http_error_code(r, rc, NULL);
            return;
        }
        json_t *arr = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(arr, json_pack("{s:s,s:s}", "name", v[i].name, "uri",
                                                 sec__uri(r, "security/groups", v[i].name)));
        http_json(r, 200, arr);
        return;
    }
    if (r->method == HM_GET || r->method == HM_HEAD) {
        struct sec_group_info g;
        int rc = sec_group_get(r->ctx, r->arena, name, &g);
        if (rc)
            sec__err(r, rc, "group", name);
        else
            http_json(r, 200, sec__group_json(r, &g));
    } else if (r->method == HM_PUT || r->method == HM_POST) {
        struct sec_req *q = gr_arena_calloc(r->arena, sizeof(*q));
        q->name = name;
        q->create = r->method == HM_PUT;
        r->hctx_sec = q;
        http_read_json_body(r, sec__group_put_done);
    } else if (r->method == HM_DELETE) {
        int rc = sec_group_delete(r->ctx, name);
        if (rc) {
            sec__err(r, rc, "group", name);
            return;
        }
        http_audit(r, "security", NULL, NULL, gr_arena_printf(r->arena, "delete group %s", name));
        http_text(r, 200, "text/plain", "", 0);
    } else {
        http_error(r, 405, "method %s not allowed here", r->method_str);
    }
}

/* ---- permission targets ---- */

static json_t *sec__patterns_json(const char *list)
{
    json_t *a = json_array();
    for (const char *s = list; *s;) {
        size_t n = strcspn(s, ",");
        if (n)
            json_array_append_new(a, json_stringn(s, n));
        s += n;
        if (*s)
            s++;
    }
    return a;
}

static json_t *sec__actions_json(unsigned acts, bool letters)
{
    json_t *a = json_array();
    for (unsigned b = 1; b <= SEC_MANAGE; b <<= 1) {
        if (!(acts & b))
            continue;
        if (letters) {
            char l[6];
            sec_actions_letters(b, l);
            json_array_append_new(a, json_string(l));
        } else {
            json_array_append_new(a, json_string(sec_action_name(b)));
        }
    }
    return a;
}

static json_t *sec__target_json(const struct sec_target *t, bool v2)
{
    json_t *users = json_object(), *groups = json_object();
    for (int i = 0; i < t->ngrants; i++)
        json_object_set_new(t->grants[i].kind == 'u' ? users : groups, t->grants[i].principal,
                            sec__actions_json(t->grants[i].actions, !v2));
    if (!v2)
        return json_pack("{s:s,s:s,s:s,s:o,s:{s:o,s:o}}", "name", t->name, "includesPattern",
                         t->includes, "excludesPattern", t->excludes, "repositories",
                         sec__strarr(t->repos, t->nrepos), "principals", "users", users, "groups",
                         groups);
    return json_pack("{s:s,s:{s:o,s:o,s:o,s:{s:o,s:o}}}", "name", t->name, "repo",
                     "include-patterns", sec__patterns_json(t->includes), "exclude-patterns",
                     sec__patterns_json(t->excludes), "repositories",
                     sec__strarr(t->repos, t->nrepos), "actions", "users", users, "groups", groups);
}

static void sec__target_put_done(struct http_req *r, json_t *doc)
{
    struct sec_req *q = r->hctx_sec;
    struct sec_target t;
    const char *why = "";
    if (sec_target_from_json(r->arena, doc, q->name, &t, &why)) {
        http_error(r, 400, "%s", why);
        return;
    }
    /* POST creates only; PUT creates or replaces */
    int rc = sec_target_put(r->ctx, &t, !q->create);
    if (rc) {
        sec__err(r, rc, "permission target", q->name);
        return;
    }
    http_audit(r, "security", NULL, NULL,
               gr_arena_printf(r->arena, "%s permission target %s", r->method_str, q->name));
    http_text(r, q->create ? 200 : 201, NULL, "", 0);
}

/* The granary query: ?repo=&path=[&user=] -> the actions held there. */
static void sec__effective(struct http_req *r)
{
    const char *repo = http_query(r, "repo"), *path = http_query(r, "path");
    const char *user = http_query(r, "user");
    if (!repo || repo_key_check(repo) != GR_OK) {
        http_error(r, 400, "?repo= (a repository key) is required");
        return;
    }
    char *norm = gr_arena_alloc(r->arena, HTTP_PATH_MAX + 1);
    bool trailing;
    if (http_path_normalize(path ? path : "", path ? strlen(path) : 0, norm, HTTP_PATH_MAX + 1,
                            &trailing)) {
        http_error(r, 400, "invalid path");
        return;
    }
    struct auth_user who = r->user;
    if (user && strcmp(user, r->user.name)) {
        if (!http_need_admin(r))
            return;
        memset(&who, 0, sizeof(who));
        snprintf(who.name, sizeof(who.name), "%s", user);
        who.anonymous = !strcmp(user, "anonymous");
        if (!who.anonymous) {
            bool disabled = false;
            int rc = auth_user_lookup(r->ctx, user, &who.admin, &disabled);
            if (rc) {
                sec__err(r, rc, "user", user);
                return;
            }
        }
    } else if (r->user.anonymous && !http_need_read(r)) {
        return;
    }
    unsigned acts = 0;
    int rc = sec_effective(r->ctx, r->arena, &who, repo, norm, &acts, NULL);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    http_json(r, 200,
              json_pack("{s:s,s:s,s:s,s:o}", "user", who.name, "repo", repo, "path", norm,
                        "actions", sec__actions_json(acts, false)));
}

static void sec__targets(struct http_req *r, const char *name, bool v2)
{
    if (!v2 && !strcmp(name, "effective")) {
        if (r->method != HM_GET && r->method != HM_HEAD)
            http_error(r, 405, "method %s not allowed here", r->method_str);
        else
            sec__effective(r);
        return;
    }
    if (!http_need_admin(r))
        return;
    if (!*name) {
        if (r->method != HM_GET && r->method != HM_HEAD) {
            http_error(r, 405, "method %s not allowed here", r->method_str);
            return;
        }
        const char **v;
        int n;
        int rc = sec_target_list(r->ctx, r->arena, &v, &n);
        if (rc) {
            http_error_code(r, rc, NULL);
            return;
        }
        json_t *arr = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(
                arr, json_pack("{s:s,s:s}", "name", v[i], "uri",
                               sec__uri(r, v2 ? "v2/security/permissions" : "security/permissions",
                                        v[i])));
        http_json(r, 200, arr);
        return;
    }
    if (r->method == HM_GET || r->method == HM_HEAD) {
        struct sec_target t;
        int rc = sec_target_get(r->ctx, r->arena, name, &t);
        if (rc)
            sec__err(r, rc, "permission target", name);
        else
            http_json(r, 200, sec__target_json(&t, v2));
        return;
    }
    if (!v2) {
        http_error(r, 405, "use /api/v2/security/permissions/%s to change a permission target",
                   name);
        return;
    }
    if (r->method == HM_PUT || r->method == HM_POST) {
        struct sec_req *q = gr_arena_calloc(r->arena, sizeof(*q));
        q->name = name;
        q->create = r->method == HM_PUT;
        r->hctx_sec = q;
        http_read_json_body(r, sec__target_put_done);
    } else if (r->method == HM_DELETE) {
        int rc = sec_target_delete(r->ctx, name);
        if (rc) {
            sec__err(r, rc, "permission target", name);
            return;
        }
        http_audit(r, "security", NULL, NULL,
                   gr_arena_printf(r->arena, "delete permission target %s", name));
        http_text(r, 200, "text/plain", "", 0);
    } else {
        http_error(r, 405, "method %s not allowed here", r->method_str);
    }
}

/* ---- form bodies (application/x-www-form-urlencoded), for the token API ---- */

struct sec_form {
    struct gr_sbuf buf;
    void (*done)(struct http_req *r);
};

static void sec__form_free(void *arg)
{
    struct sec_form *f = arg;
    gr_sbuf_release(&f->buf);
}

static int sec__form_chunk(struct http_req *r, const char *data, size_t len)
{
    struct sec_form *f = r->hctx;
    if (f->buf.len + len > FORM_BODY_MAX)
        return GR_ETOOBIG;
    gr_sbuf_add(&f->buf, data, len);
    return GR_OK;
}

static void sec__form_end(struct http_req *r)
{
    struct sec_form *f = r->hctx;
    if (r->body_error == GR_ETOOBIG) {
        http_error(r, 413, "request body larger than %d bytes", FORM_BODY_MAX);
        return;
    }
    f->done(r);
}

/* A form field from the body, else the query; NULL when absent or malformed. */
static const char *sec__field(struct http_req *r, const char *name)
{
    struct sec_form *f = r->hctx;
    size_t nl = strlen(name);
    const char *s = f && f->buf.buf ? f->buf.buf : "";
    size_t len = f ? f->buf.len : 0;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && s[j] != '&')
            j++;
        if (j - i > nl && !memcmp(s + i, name, nl) && s[i + nl] == '=') {
            size_t vl = j - i - nl - 1;
            char *out = gr_arena_alloc(r->arena, vl + 1);
            if (http_query_decode(s + i + nl + 1, vl, out, vl + 1))
                return NULL;
            return out;
        }
        i = j + 1;
    }
    return http_query(r, name);
}

static void sec__read_form(struct http_req *r, void (*done)(struct http_req *r))
{
    struct sec_form *f = gr_arena_calloc(r->arena, sizeof(*f));
    gr_sbuf_init(&f->buf);
    f->done = done;
    gr_arena_cleanup(r->arena, sec__form_free, f);
    r->hctx = f;
    r->on_body = sec__form_chunk;
    r->on_end = sec__form_end;
}

/* ---- tokens ---- */

static void sec__token_answer(struct http_req *r, const char *token, const char *refresh,
                              const struct sec_token_info *info, const char *scope,
                              int64_t expires_in)
{
    json_t *doc = json_pack("{s:s,s:I,s:s,s:s}", "access_token", token, "expires_in",
                            (json_int_t)expires_in, "scope", scope, "token_type", "Bearer");
    if (refresh)
        json_object_set_new(doc, "refresh_token", json_string(refresh));
    (void)info;
    http_json(r, 200, doc);
}

static bool sec__int_field(struct http_req *r, const char *name, int64_t def, int64_t *out)
{
    const char *v = sec__field(r, name);
    if (!v || !*v) {
        *out = def;
        return true;
    }
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*end || n < 0 || n > SEC_TOKEN_EXPIRES_MAX) {
        http_error(r, 400, "%s must be a number of seconds from 0 to %lld", name,
                   (long long)SEC_TOKEN_EXPIRES_MAX);
        return false;
    }
    *out = n;
    return true;
}

static void sec__token_create_done(struct http_req *r)
{
    const char *grant = sec__field(r, "grant_type");
    const char *user = sec__field(r, "username");
    const char *scope = sec__field(r, "scope");
    const char *rf = sec__field(r, "refreshable");
    const char *desc = sec__field(r, "description");
    int64_t expires;
    if (!sec__int_field(r, "expires_in", SEC_TOKEN_EXPIRES_DEFAULT, &expires))
        return;
    char token[SEC_TOKEN_LEN + 1], refresh[SEC_TOKEN_LEN + 1];
    struct sec_token_info info;
    if (grant && !strcmp(grant, "refresh_token")) {
        const char *old = sec__field(r, "refresh_token");
        if (expires == 0 && !http_need_admin(r)) /* as when creating: never-expiring is admin's */
            return;
        int rc = old ? sec_token_refresh(r->ctx, old, expires, token, refresh, &info) : GR_EAUTH;
        if (rc == GR_EAUTH) {
            http_error(r, 401, "unknown or used refresh token");
            return;
        }
        if (rc) {
            http_error_code(r, rc, NULL);
            return;
        }
        http_audit(r, "token_refresh", NULL, NULL, NULL);
        sec__token_answer(r, token, refresh, &info, "applied-permissions/user", expires);
        return;
    }
    if (!user || !*user)
        user = r->user.name;
    if (!scope || !*scope)
        scope = "applied-permissions/user";
    bool self = !strcmp(user, r->user.name);
    bool admin_scope = !strcmp(scope, "applied-permissions/admin");
    /* a user may issue its own tokens; tokens for others, admin-scoped or
     * non-expiring tokens need an admin */
    if ((!self || admin_scope || expires == 0) && !http_need_admin(r))
        return;
    bool want_refresh = rf && !strcmp(rf, "true");
    int rc = sec_token_issue(r->ctx, user, scope, expires, desc, token,
                             want_refresh ? refresh : NULL, &info);
    if (rc == GR_ENOTFOUND) {
        http_error(r, 404, "user '%s' not found", user);
        return;
    }
    if (rc == GR_EINVAL) {
        http_error(r, 400, "scope must be applied-permissions/user or applied-permissions/admin");
        return;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    http_audit(r, "token_create", NULL, NULL,
               gr_arena_printf(r->arena, "for %s, %s, %lld s", user, scope, (long long)expires));
    sec__token_answer(r, token, want_refresh ? refresh : NULL, &info, scope, expires);
}

static void sec__token_revoke_done(struct http_req *r)
{
    const char *token = sec__field(r, "token");
    const char *id = sec__field(r, "token_id");
    if ((!token || !*token) && (!id || !*id)) {
        http_error(r, 400, "token= or token_id= is required");
        return;
    }
    /* admins revoke any token; users their own */
    const char *owner = http_is_admin(r) ? NULL : r->user.name;
    char who[SEC_NAME_MAX + 1] = "";
    int rc =
        sec_token_revoke(r->ctx, token && *token ? token : NULL, id && *id ? id : NULL, owner, who);
    if (rc == GR_ENOTFOUND) {
        http_error(r, 404, "token not found");
        return;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    http_audit(r, "token_revoke", NULL, NULL, gr_arena_printf(r->arena, "of %s", who));
    http_text(r, 200, "text/plain", "Token revoked", 13);
}

static void sec__token(struct http_req *r, const char *rest)
{
    if (r->user.anonymous) {
        http_error(r, 401, "authentication required");
        return;
    }
    if (!strcmp(rest, "revoke")) {
        if (r->method != HM_POST)
            http_error(r, 405, "method %s not allowed here", r->method_str);
        else
            sec__read_form(r, sec__token_revoke_done);
        return;
    }
    if (*rest) {
        http_error(r, 404, "no such api");
        return;
    }
    if (r->method == HM_POST) {
        sec__read_form(r, sec__token_create_done);
        return;
    }
    if (r->method != HM_GET && r->method != HM_HEAD) {
        http_error(r, 405, "method %s not allowed here", r->method_str);
        return;
    }
    struct sec_token_info *v;
    int n;
    int rc = sec_token_list(r->ctx, r->arena, http_is_admin(r) ? NULL : r->user.name, &v, &n);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(
            arr, json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:b,s:b,s:s}", "token_id", v[i].id, "issuer",
                           "granary", "subject", v[i].user, "scope", v[i].scope, "issued_at",
                           (json_int_t)(v[i].created_ms / 1000), "expiry",
                           (json_int_t)(v[i].expires_ms / 1000), "refreshable", v[i].refreshable,
                           "revoked", v[i].revoked, "description", v[i].description));
    http_json(r, 200, json_pack("{s:o}", "tokens", arr));
}

/* ---- audit ---- */

static bool sec__ms_param(struct http_req *r, const char *name, int64_t *out)
{
    const char *v = http_query(r, name);
    *out = 0;
    if (!v || !*v)
        return true;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*end || n < 0) {
        http_error(r, 400, "%s must be milliseconds since the epoch", name);
        return false;
    }
    *out = n;
    return true;
}

static void sec__audit(struct http_req *r)
{
    if (r->method != HM_GET && r->method != HM_HEAD) {
        http_error(r, 405, "method %s not allowed here", r->method_str);
        return;
    }
    if (!http_need_admin(r))
        return;
    int64_t from, to, limit;
    if (!sec__ms_param(r, "from", &from) || !sec__ms_param(r, "to", &to) ||
        !sec__ms_param(r, "limit", &limit))
        return;
    if (limit <= 0 || limit > 10000)
        limit = 1000;
    const char *user = http_query(r, "user"), *action = http_query(r, "action");
    struct sec_audit_entry *v;
    int n;
    int rc = sec_audit_query(r->ctx, r->arena, user && *user ? user : NULL,
                             action && *action ? action : NULL, from, to, (int)limit, &v, &n);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        char at[40];
        http_iso8601(v[i].at_ms, at, sizeof(at));
        json_array_append_new(
            arr, json_pack("{s:I,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "id", (json_int_t)v[i].id,
                           "time", at, "timeMs", (json_int_t)v[i].at_ms, "user", v[i].user,
                           "client", v[i].client, "node", v[i].node, "action", v[i].action, "repo",
                           v[i].repo, "path", v[i].path, "detail", v[i].detail));
    }
    http_json(r, 200, json_pack("{s:o}", "entries", arr));
}

/* The endpoints under /api/security/, /api/v2/security/ and /api/audit, each a row of
 * the route table (route.c); rest is what follows the row's path ("" for the bare one). */
void h_sec_users(struct http_req *r, const char *rest)
{
    sec__users(r, rest);
}

void h_sec_groups(struct http_req *r, const char *rest)
{
    sec__groups(r, rest);
}

void h_sec_permissions(struct http_req *r, const char *rest)
{
    sec__targets(r, rest, false);
}

void h_sec_permissions_v2(struct http_req *r, const char *rest)
{
    sec__targets(r, rest, true);
}

void h_sec_token(struct http_req *r, const char *rest)
{
    sec__token(r, rest);
}

void h_audit(struct http_req *r, const char *rest)
{
    (void)rest;
    sec__audit(r);
}
