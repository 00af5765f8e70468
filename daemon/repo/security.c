/*
 * security.c - users, groups and permission targets in PostgreSQL, and the
 * cached effective-permission lookup (security.h, docs/security.md).
 */
#include "repo/internal.h"
#include "repo/pattern.h"
#include "repo/props.h"
#include "repo/security.h"

#include "base/err.h"
#include "base/log.h"
#include "crypto/crypto.h"
#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS(col) "(extract(epoch from " col ") * 1000)::bigint"

static void sec__key_perms(struct gr_sbuf *k, const char *user)
{
    gr_sbuf_adds(k, "p:");
    gr_sbuf_adds(k, user);
}

/* After a change to one user: its record (and verifier) and its permissions. */
static void sec__invalidate_user(struct repo_ctx *ctx, const char *user)
{
    struct gr_sbuf k[2] = {GR_SBUF_INIT, GR_SBUF_INIT};
    repo__key_user(&k[0], user);
    sec__key_perms(&k[1], user);
    repo__invalidate(ctx, k, 2);
    gr_sbuf_release(&k[0]);
    gr_sbuf_release(&k[1]);
}

/* After a change to groups or targets: every user's permissions. */
static void sec__invalidate_all_perms(struct repo_ctx *ctx)
{
    struct gr_sbuf k = GR_SBUF_INIT;
    gr_sbuf_adds(&k, "p:");
    repo__invalidate_prefix(ctx, &k);
    gr_sbuf_release(&k);
}

/* "{a,b}" for a text[] parameter. */
static const char *sec__array(struct gr_arena *a, const char *const *v, int n)
{
    struct gr_sbuf sb = GR_SBUF_INIT;
    db_text_array(&sb, v, n);
    const char *s = gr_arena_strndup(a, sb.buf ? sb.buf : "{}", sb.buf ? sb.len : 2);
    gr_sbuf_release(&sb);
    return s;
}

/* Split a string on sep into the arena. */
static int sec__split(struct gr_arena *a, const char *s, char sep, const char ***out)
{
    int n = 0;
    if (!*s) {
        *out = gr_arena_alloc(a, sizeof(char *));
        return 0;
    }
    for (const char *p = s; *p; p++)
        n += *p == sep;
    n++;
    const char **v = gr_arena_alloc(a, (size_t)n * sizeof(*v));
    int i = 0;
    const char *start = s;
    for (const char *p = s;; p++) {
        if (*p == sep || !*p) {
            v[i++] = gr_arena_strndup(a, start, (size_t)(p - start));
            if (!*p)
                break;
            start = p + 1;
        }
    }
    *out = v;
    return n;
}

/* Every name of v exists in table (users or groups). GR_EINVAL when one does not. */
static int sec__all_exist(struct db_conn *c, struct gr_arena *a, const char *table,
                          const char *const *v, int n)
{
    if (n == 0)
        return GR_OK;
    const char *p[1] = {sec__array(a, v, n)};
    char sql[160];
    snprintf(sql, sizeof(sql),
             "SELECT count(DISTINCT name) = cardinality(array(SELECT DISTINCT unnest($1::text[])))"
             " FROM %s WHERE name = ANY($1::text[])",
             table);
    struct db_res *res = NULL;
    int rc = db_exec(c, &res, sql, 1, p);
    if (rc == GR_OK && db_res_get(res, 0, 0)[0] != 't')
        rc = GR_EINVAL;
    db_res_free(res);
    return rc;
}

/* ---- users ---- */

int sec_user_list(struct repo_ctx *ctx, struct gr_arena *a, struct sec_user_info **out, int *n)
{
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res, "SELECT name FROM users ORDER BY name", 0, NULL);
    if (rc)
        return rc;
    db_res_arena(res, a);
    int rows = db_res_rows(res);
    struct sec_user_info *v = gr_arena_calloc(a, sizeof(*v) * (size_t)(rows + 1));
    for (int i = 0; i < rows; i++)
        v[i].name = db_res_get(res, i, 0);
    *out = v;
    *n = rows;
    return GR_OK;
}

int sec_user_get(struct repo_ctx *ctx, struct gr_arena *a, const char *name,
                 struct sec_user_info *out)
{
    const char *p[1] = {name};
    struct db_res *res = NULL;
    int rc =
        db_exec1(ctx->db, &res,
                 "SELECT u.name, u.email, u.admin::int, u.disabled::int, " MS("u.created") ", " MS(
                     "u.password_changed") ", coalesce((SELECT string_agg(group_name, ','"
                                           " ORDER BY group_name) FROM group_members WHERE"
                                           " user_name = u.name), '')"
                                           " FROM users u WHERE u.name = $1",
                 1, p);
    if (rc)
        return rc;
    db_res_arena(res, a);
    if (db_res_rows(res) == 0)
        return GR_ENOTFOUND;
    out->name = db_res_get(res, 0, 0);
    out->email = db_res_get(res, 0, 1);
    out->admin = db_res_get(res, 0, 2)[0] == '1';
    out->disabled = db_res_get(res, 0, 3)[0] == '1';
    out->created_ms = strtoll(db_res_get(res, 0, 4), NULL, 10);
    out->password_changed_ms = strtoll(db_res_get(res, 0, 5), NULL, 10);
    out->ngroups = sec__split(a, db_res_get(res, 0, 6), ',', &out->groups);
    return GR_OK;
}

static int sec__password_ok(const char *pw)
{
    size_t n = strlen(pw);
    return n >= SEC_PASSWORD_MIN && n <= SEC_PASSWORD_MAX ? GR_OK : GR_EINVAL;
}

/* The number of admins other than name (users with the flag, not disabled). */
static int sec__other_admins(struct db_conn *c, const char *name, int *n)
{
    const char *p[1] = {name};
    struct db_res *res = NULL;
    int rc = db_exec(
        c, &res, "SELECT count(*) FROM users WHERE admin AND NOT disabled AND name <> $1", 1, p);
    if (rc == GR_OK)
        *n = atoi(db_res_get(res, 0, 0));
    db_res_free(res);
    return rc;
}

int sec_user_put(struct repo_ctx *ctx, const struct sec_user *u, bool create)
{
    if (!sec_name_valid(u->name) || !strcmp(u->name, "anonymous"))
        return GR_EINVAL;
    if (create && !u->has_password)
        return GR_EINVAL;
    char hash[CR_PASSWORD_HASH_MAX] = "";
    if (u->has_password) {
        if (sec__password_ok(u->password))
            return GR_EINVAL;
        if (cr_password_hash(u->password, hash))
            return GR_EIO;
    }
    struct gr_arena *a = gr_arena_new();
    if (!a)
        return GR_ENOMEM;
    struct db_conn *c;
    struct db_res *res = NULL;
    int rc = db_acquire(ctx->db, DB_ACQUIRE_TIMEOUT_MS, &c);
    if (rc) {
        gr_arena_free(a);
        return rc;
    }
    rc = db_begin(c);
    if (rc == GR_OK && create) {
        const char *p[5] = {u->name, hash, u->admin ? "t" : "f", u->disabled ? "t" : "f",
                            u->has_email ? u->email : ""};
        rc = db_exec(c, NULL,
                     "INSERT INTO users (name, password_hash, admin, disabled, email)"
                     " VALUES ($1, $2, $3, $4, $5)",
                     5, p);
        if (rc == GR_OK && !u->has_groups)
            rc = db_exec(c, NULL,
                         "INSERT INTO group_members (group_name, user_name)"
                         " SELECT name, $1::text FROM groups WHERE auto_join",
                         1, p);
    } else if (rc == GR_OK) {
        const char *p[9] = {u->name,
                            u->has_password ? "t" : "f",
                            hash,
                            u->has_admin ? "t" : "f",
                            u->admin ? "t" : "f",
                            u->has_disabled ? "t" : "f",
                            u->disabled ? "t" : "f",
                            u->has_email ? "t" : "f",
                            u->has_email ? u->email : ""};
        rc = db_exec(c, &res,
                     "UPDATE users SET"
                     " password_hash = CASE WHEN $2 THEN $3 ELSE password_hash END,"
                     " password_changed = CASE WHEN $2 THEN now() ELSE password_changed END,"
                     " admin = CASE WHEN $4 THEN $5::boolean ELSE admin END,"
                     " disabled = CASE WHEN $6 THEN $7::boolean ELSE disabled END,"
                     " email = CASE WHEN $8 THEN $9 ELSE email END"
                     " WHERE name = $1 RETURNING name",
                     9, p);
        if (rc == GR_OK && db_res_rows(res) == 0)
            rc = GR_ENOTFOUND;
        db_res_free(res);
        /* never lock the last admin out */
        int others = 1;
        if (rc == GR_OK && ((u->has_admin && !u->admin) || (u->has_disabled && u->disabled)))
            rc = sec__other_admins(c, u->name, &others);
        if (rc == GR_OK && others == 0)
            rc = GR_ECONFLICT;
    }
    if (rc == GR_OK && u->has_groups) {
        rc = sec__all_exist(c, a, "groups", (const char *const *)u->groups, u->ngroups);
        const char *p[2] = {u->name, sec__array(a, (const char *const *)u->groups, u->ngroups)};
        if (rc == GR_OK)
            rc = db_exec(c, NULL, "DELETE FROM group_members WHERE user_name = $1", 1, p);
        if (rc == GR_OK)
            rc = db_exec(c, NULL,
                         "INSERT INTO group_members (group_name, user_name)"
                         " SELECT DISTINCT unnest($2::text[]), $1::text",
                         2, p);
    }
    if (rc == GR_OK)
        rc = repo__bump(c);
    rc = repo__finish(c, rc);
    sec__invalidate_user(ctx, u->name);
    gr_arena_free(a);
    return rc;
}

int sec_user_set_password(struct repo_ctx *ctx, const char *name, const char *password)
{
    struct sec_user u = {.name = name, .password = password, .has_password = true};
    if (sec__password_ok(password))
        return GR_EINVAL;
    return sec_user_put(ctx, &u, false);
}

int sec_user_delete(struct repo_ctx *ctx, const char *name)
{
    const char *p[1] = {name};
    struct db_conn *c;
    struct db_res *res = NULL;
    int rc = db_acquire(ctx->db, DB_ACQUIRE_TIMEOUT_MS, &c);
    if (rc)
        return rc;
    int others = 1;
    rc = db_begin(c);
    if (rc == GR_OK)
        rc = sec__other_admins(c, name, &others);
    if (rc == GR_OK && others == 0)
        rc = GR_ECONFLICT;
    if (rc == GR_OK)
        rc = db_exec(c, NULL, "DELETE FROM permission_grants WHERE kind = 'u' AND principal = $1",
                     1, p);
    if (rc == GR_OK) {
        rc = db_exec(c, &res, "DELETE FROM users WHERE name = $1 RETURNING name", 1, p);
        if (rc == GR_OK && db_res_rows(res) == 0)
            rc = GR_ENOTFOUND;
        db_res_free(res);
    }
    if (rc == GR_OK)
        rc = repo__bump(c);
    rc = repo__finish(c, rc);
    sec__invalidate_user(ctx, name);
    /* its tokens and UI sessions went with it (ON DELETE CASCADE): forget every
     * cached token and session (a user of the same name made later must not
     * inherit them) */
    struct gr_sbuf k = GR_SBUF_INIT;
    gr_sbuf_adds(&k, "t:");
    repo__invalidate_prefix(ctx, &k);
    gr_sbuf_reset(&k);
    gr_sbuf_adds(&k, "w:");
    repo__invalidate_prefix(ctx, &k);
    gr_sbuf_release(&k);
    return rc;
}

/* ---- groups ---- */

int sec_group_list(struct repo_ctx *ctx, struct gr_arena *a, struct sec_group_info **out, int *n)
{
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res, "SELECT name FROM groups ORDER BY name", 0, NULL);
    if (rc)
        return rc;
    db_res_arena(res, a);
    int rows = db_res_rows(res);
    struct sec_group_info *v = gr_arena_calloc(a, sizeof(*v) * (size_t)(rows + 1));
    for (int i = 0; i < rows; i++)
        v[i].name = db_res_get(res, i, 0);
    *out = v;
    *n = rows;
    return GR_OK;
}

int sec_group_get(struct repo_ctx *ctx, struct gr_arena *a, const char *name,
                  struct sec_group_info *out)
{
    const char *p[1] = {name};
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "SELECT g.name, g.description, g.auto_join::int, g.admin::int,"
                      " coalesce((SELECT string_agg(user_name, ',' ORDER BY user_name)"
                      " FROM group_members WHERE group_name = g.name), '')"
                      " FROM groups g WHERE g.name = $1",
                      1, p);
    if (rc)
        return rc;
    db_res_arena(res, a);
    if (db_res_rows(res) == 0)
        return GR_ENOTFOUND;
    out->name = db_res_get(res, 0, 0);
    out->description = db_res_get(res, 0, 1);
    out->auto_join = db_res_get(res, 0, 2)[0] == '1';
    out->admin = db_res_get(res, 0, 3)[0] == '1';
    out->nusers = sec__split(a, db_res_get(res, 0, 4), ',', &out->users);
    return GR_OK;
}

int sec_group_put(struct repo_ctx *ctx, const struct sec_group *g, bool create)
{
    if (!sec_name_valid(g->name))
        return GR_EINVAL;
    struct gr_arena *a = gr_arena_new();
    if (!a)
        return GR_ENOMEM;
    struct db_conn *c;
    struct db_res *res = NULL;
    int rc = db_acquire(ctx->db, DB_ACQUIRE_TIMEOUT_MS, &c);
    if (rc) {
        gr_arena_free(a);
        return rc;
    }
    rc = db_begin(c);
    const char *p[7] = {g->name,
                        g->has_description ? "t" : "f",
                        g->description ? g->description : "",
                        g->has_auto_join ? "t" : "f",
                        g->auto_join ? "t" : "f",
                        g->has_admin ? "t" : "f",
                        g->admin ? "t" : "f"};
    if (rc == GR_OK && create) {
        const char *q[4] = {p[0], p[2], p[4], p[6]};
        rc = db_exec(c, NULL,
                     "INSERT INTO groups (name, description, auto_join, admin)"
                     " VALUES ($1, $2, $3, $4)",
                     4, q);
    } else if (rc == GR_OK) {
        rc = db_exec(c, &res,
                     "UPDATE groups SET"
                     " description = CASE WHEN $2 THEN $3 ELSE description END,"
                     " auto_join = CASE WHEN $4 THEN $5::boolean ELSE auto_join END,"
                     " admin = CASE WHEN $6 THEN $7::boolean ELSE admin END"
                     " WHERE name = $1 RETURNING name",
                     7, p);
        if (rc == GR_OK && db_res_rows(res) == 0)
            rc = GR_ENOTFOUND;
        db_res_free(res);
    }
    if (rc == GR_OK && g->has_users) {
        rc = sec__all_exist(c, a, "users", (const char *const *)g->users, g->nusers);
        const char *q[2] = {g->name, sec__array(a, (const char *const *)g->users, g->nusers)};
        if (rc == GR_OK)
            rc = db_exec(c, NULL, "DELETE FROM group_members WHERE group_name = $1", 1, q);
        if (rc == GR_OK)
            rc = db_exec(c, NULL,
                         "INSERT INTO group_members (group_name, user_name)"
                         " SELECT DISTINCT $1::text, unnest($2::text[])",
                         2, q);
    }
    if (rc == GR_OK)
        rc = repo__bump(c);
    rc = repo__finish(c, rc);
    sec__invalidate_all_perms(ctx);
    gr_arena_free(a);
    return rc;
}

int sec_group_delete(struct repo_ctx *ctx, const char *name)
{
    const char *p[1] = {name};
    struct db_conn *c;
    struct db_res *res = NULL;
    int rc = db_acquire(ctx->db, DB_ACQUIRE_TIMEOUT_MS, &c);
    if (rc)
        return rc;
    rc = db_begin(c);
    if (rc == GR_OK)
        rc = db_exec(c, NULL, "DELETE FROM permission_grants WHERE kind = 'g' AND principal = $1",
                     1, p);
    if (rc == GR_OK) {
        rc = db_exec(c, &res, "DELETE FROM groups WHERE name = $1 RETURNING name", 1, p);
        if (rc == GR_OK && db_res_rows(res) == 0)
            rc = GR_ENOTFOUND;
        db_res_free(res);
    }
    if (rc == GR_OK)
        rc = repo__bump(c);
    rc = repo__finish(c, rc);
    sec__invalidate_all_perms(ctx);
    return rc;
}

/* ---- permission targets ---- */

int sec_target_list(struct repo_ctx *ctx, struct gr_arena *a, const char ***names, int *n)
{
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res, "SELECT name FROM permission_targets ORDER BY name", 0, NULL);
    if (rc)
        return rc;
    db_res_arena(res, a);
    int rows = db_res_rows(res);
    const char **v = gr_arena_alloc(a, sizeof(*v) * (size_t)(rows + 1));
    for (int i = 0; i < rows; i++)
        v[i] = db_res_get(res, i, 0);
    *names = v;
    *n = rows;
    return GR_OK;
}

int sec_target_get(struct repo_ctx *ctx, struct gr_arena *a, const char *name,
                   struct sec_target *out)
{
    const char *p[1] = {name};
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "SELECT name, array_to_string(repositories, ','), includes, excludes"
                      " FROM permission_targets WHERE name = $1",
                      1, p);
    if (rc)
        return rc;
    db_res_arena(res, a);
    if (db_res_rows(res) == 0)
        return GR_ENOTFOUND;
    out->name = db_res_get(res, 0, 0);
    out->nrepos = sec__split(a, db_res_get(res, 0, 1), ',', &out->repos);
    out->includes = db_res_get(res, 0, 2);
    out->excludes = db_res_get(res, 0, 3);
    rc = db_exec1(ctx->db, &res,
                  "SELECT kind, principal, actions FROM permission_grants WHERE target = $1"
                  " ORDER BY kind DESC, principal",
                  1, p);
    if (rc)
        return rc;
    db_res_arena(res, a);
    int rows = db_res_rows(res);
    out->grants = gr_arena_calloc(a, sizeof(*out->grants) * (size_t)(rows + 1));
    for (int i = 0; i < rows; i++) {
        unsigned acts = 0;
        (void)sec_actions_parse_letters(db_res_get(res, i, 2), &acts);
        out->grants[i] = (struct sec_grant){db_res_get(res, i, 0)[0], db_res_get(res, i, 1), acts};
    }
    out->ngrants = rows;
    return GR_OK;
}

int sec_target_put(struct repo_ctx *ctx, const struct sec_target *t, bool create)
{
    if (!sec_name_valid(t->name))
        return GR_EINVAL;
    struct gr_arena *a = gr_arena_new();
    if (!a)
        return GR_ENOMEM;
    struct db_conn *c;
    int rc = db_acquire(ctx->db, DB_ACQUIRE_TIMEOUT_MS, &c);
    if (rc) {
        gr_arena_free(a);
        return rc;
    }
    const char *p[4] = {t->name, sec__array(a, t->repos, t->nrepos), t->includes, t->excludes};
    rc = db_begin(c);
    if (rc == GR_OK && create)
        rc = db_exec(c, NULL,
                     "INSERT INTO permission_targets (name, repositories, includes, excludes)"
                     " VALUES ($1, $2::text[], $3, $4)",
                     4, p);
    else if (rc == GR_OK)
        rc = db_exec(c, NULL,
                     "INSERT INTO permission_targets (name, repositories, includes, excludes)"
                     " VALUES ($1, $2::text[], $3, $4) ON CONFLICT (name) DO UPDATE SET"
                     " repositories = EXCLUDED.repositories, includes = EXCLUDED.includes,"
                     " excludes = EXCLUDED.excludes, modified = now()",
                     4, p);
    if (rc == GR_OK)
        rc = db_exec(c, NULL, "DELETE FROM permission_grants WHERE target = $1", 1, p);
    for (int i = 0; rc == GR_OK && i < t->ngrants; i++) {
        char kind[2] = {t->grants[i].kind, '\0'}, letters[6];
        sec_actions_letters(t->grants[i].actions, letters);
        const char *q[4] = {t->name, kind, t->grants[i].principal, letters};
        rc = db_exec(c, NULL,
                     "INSERT INTO permission_grants (target, kind, principal, actions)"
                     " VALUES ($1, $2, $3, $4) ON CONFLICT (target, kind, principal)"
                     " DO UPDATE SET actions = EXCLUDED.actions",
                     4, q);
    }
    if (rc == GR_OK)
        rc = repo__bump(c);
    rc = repo__finish(c, rc);
    sec__invalidate_all_perms(ctx);
    gr_arena_free(a);
    return rc;
}

int sec_target_delete(struct repo_ctx *ctx, const char *name)
{
    const char *p[1] = {name};
    struct db_conn *c;
    struct db_res *res = NULL;
    int rc = db_acquire(ctx->db, DB_ACQUIRE_TIMEOUT_MS, &c);
    if (rc)
        return rc;
    rc = db_begin(c);
    if (rc == GR_OK) {
        rc =
            db_exec(c, &res, "DELETE FROM permission_targets WHERE name = $1 RETURNING name", 1, p);
        if (rc == GR_OK && db_res_rows(res) == 0)
            rc = GR_ENOTFOUND;
        db_res_free(res);
    }
    if (rc == GR_OK)
        rc = repo__bump(c);
    rc = repo__finish(c, rc);
    sec__invalidate_all_perms(ctx);
    return rc;
}

/* ---- effective permissions ---- */

/*
 * p:<user> record: group_admin \0 then per target: repositories (comma-
 * separated) \0 includes \0 excludes \0 action letters (user's and groups'
 * grants together).
 */
static int sec__perms_load(struct repo_ctx *ctx, void *arg, struct gr_sbuf *rec)
{
    const char *p[1] = {arg};
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "SELECT coalesce(bool_or(g.admin), false)::int FROM group_members m"
                      " JOIN groups g ON g.name = m.group_name WHERE m.user_name = $1",
                      1, p);
    if (rc)
        return rc;
    gr_sbuf_add(rec, db_res_get(res, 0, 0), 2);
    db_res_free(res);
    rc = db_exec1(ctx->db, &res,
                  "SELECT array_to_string(t.repositories, ','), t.includes, t.excludes,"
                  " string_agg(g.actions, '') FROM permission_targets t"
                  " JOIN permission_grants g ON g.target = t.name"
                  " WHERE (g.kind = 'u' AND g.principal = $1) OR (g.kind = 'g' AND g.principal"
                  " IN (SELECT group_name FROM group_members WHERE user_name = $1))"
                  " GROUP BY t.name ORDER BY t.name",
                  1, p);
    if (rc)
        return rc;
    for (int i = 0; i < db_res_rows(res); i++)
        for (int c = 0; c < 4; c++) {
            const char *v = db_res_get(res, i, c);
            gr_sbuf_add(rec, v, strlen(v) + 1);
        }
    db_res_free(res);
    return GR_OK;
}

static bool sec__repo_in(const char *list, const char *repo)
{
    size_t rl = strlen(repo);
    for (const char *s = list; *s;) {
        size_t n = strcspn(s, ",");
        if ((n == rl && !memcmp(s, repo, n)) || (n == 3 && !memcmp(s, "ANY", 3)) ||
            (n == 9 && !memcmp(s, "ANY LOCAL", 9)))
            return true;
        s += n;
        if (*s == ',')
            s++;
    }
    return false;
}

/* The user's record: fields, count. */
static int sec__perms(struct repo_ctx *ctx, struct gr_arena *a, const char *user,
                      const char ***fields, int *nf)
{
    struct gr_sbuf k = GR_SBUF_INIT;
    sec__key_perms(&k, user);
    const char *rec;
    size_t len;
    int rc = repo__cached(ctx, a, &k, sec__perms_load, (void *)user, &rec, &len);
    gr_sbuf_release(&k);
    if (rc)
        return rc;
    int max = 1;
    for (size_t i = 0; i < len; i++)
        max += rec[i] == '\0';
    const char **f = gr_arena_alloc(a, sizeof(*f) * (size_t)(max + 1));
    int n = repo__fields(a, rec, len, f, max);
    /* the record ends with a NUL: the split yields one empty field after it */
    if (n > 0 && len > 0 && rec[len - 1] == '\0' && !*f[n - 1])
        n--;
    *fields = f;
    *nf = n;
    return GR_OK;
}

/*
 * Whether a target's patterns accept every path below folder path (and the
 * folder): no excludes, and an include that is "**" or "<prefix>/ **" (no space) with
 * a literal prefix that path equals or lies below. Conservative: patterns
 * that might leave something below out do not count.
 */
static bool sec__covers_tree(const char *includes, const char *excludes, const char *path)
{
    if (*excludes)
        return false;
    size_t pl = strlen(path);
    for (const char *s = includes; *s;) {
        size_t n = strcspn(s, ",");
        while (n > 0 && (*s == ' ' || *s == '\t'))
            s++, n--;
        size_t m = n;
        while (m > 0 && (s[m - 1] == ' ' || s[m - 1] == '\t'))
            m--;
        if (m == 2 && !memcmp(s, "**", 2))
            return true;
        if (m > 3 && !memcmp(s + m - 3, "/**", 3)) {
            size_t k = m - 3; /* the prefix */
            bool literal = memchr(s, '*', k) == NULL && memchr(s, '?', k) == NULL;
            if (literal && pl >= k && !memcmp(path, s, k) && (pl == k || path[k] == '/'))
                return true;
        }
        s += n;
        while (*s == ',' || *s == ' ')
            s++;
    }
    return false;
}

int sec_perms_load(struct repo_ctx *ctx, struct gr_arena *a, const struct auth_user *user,
                   struct sec_perms *out)
{
    memset(out, 0, sizeof(*out));
    if (user->admin && !user->anonymous) {
        out->all = true;
        return GR_OK;
    }
    const char **f;
    int n;
    int rc = sec__perms(ctx, a, user->anonymous ? "anonymous" : user->name, &f, &n);
    if (rc == GR_ENOTFOUND)
        return GR_OK;
    if (rc)
        return rc;
    /* an admin group makes an admin, but not through a user-scoped token */
    if (n >= 1 && f[0][0] == '1' && !user->anonymous && !user->scoped) {
        out->all = out->group_admin = true;
        return GR_OK;
    }
    out->f = f;
    out->n = n;
    return GR_OK;
}

/* The union of the actions of the targets covering repo (and path, and with
 * tree everything below path; NULL repo or path: any). */
static unsigned sec__perms_match(const struct sec_perms *p, const char *repo, const char *path,
                                 bool tree)
{
    if (p->all)
        return SEC_ALL;
    unsigned acc = 0;
    for (int i = 1; i + 3 < p->n; i += 4) {
        const char *const *f = p->f;
        if (repo && !sec__repo_in(f[i], repo))
            continue;
        if (path && !pattern_accepts(f[i + 1], f[i + 2], path))
            continue;
        if (tree && !sec__covers_tree(f[i + 1], f[i + 2], path ? path : ""))
            continue;
        unsigned got = 0;
        (void)sec_actions_parse_letters(f[i + 3], &got);
        acc |= got;
    }
    return sec_actions_close(acc);
}

unsigned sec_perms_on(const struct sec_perms *p, const char *repo, const char *path)
{
    return sec__perms_match(p, repo, path ? path : "", false);
}

unsigned sec_perms_on_tree(const struct sec_perms *p, const char *repo, const char *path)
{
    return sec__perms_match(p, repo, path ? path : "", true);
}

unsigned sec_perms_in_repo(const struct sec_perms *p, const char *repo)
{
    return sec__perms_match(p, repo, NULL, false);
}

int sec_effective(struct repo_ctx *ctx, struct gr_arena *a, const struct auth_user *user,
                  const char *repo, const char *path, unsigned *actions, bool *group_admin)
{
    struct sec_perms p;
    int rc = sec_perms_load(ctx, a, user, &p);
    *actions = rc == GR_OK && (repo || p.all) ? sec_perms_on(&p, repo, path) : 0;
    if (group_admin)
        *group_admin = rc == GR_OK && p.group_admin;
    return rc;
}

int sec_effective_tree(struct repo_ctx *ctx, struct gr_arena *a, const struct auth_user *user,
                       const char *repo, const char *path, unsigned *actions)
{
    struct sec_perms p;
    int rc = sec_perms_load(ctx, a, user, &p);
    *actions = rc == GR_OK && (repo || p.all) ? sec_perms_on_tree(&p, repo, path) : 0;
    return rc;
}

int sec_any(struct repo_ctx *ctx, struct gr_arena *a, const struct auth_user *user,
            unsigned actions, bool *yes)
{
    struct sec_perms p;
    int rc = sec_perms_load(ctx, a, user, &p);
    *yes = rc == GR_OK && (sec__perms_match(&p, NULL, NULL, false) & actions) != 0;
    return rc;
}
