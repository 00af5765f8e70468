/*
 * tokens.c - access tokens (security.h): issued at random, stored only as
 * sha256, checked through the cache (`t:<sha256>`), revoked cluster-wide
 * before the revoking call returns.
 */
#include "repo/internal.h"
#include "repo/security.h"

#include "base/err.h"
#include "base/log.h"
#include "crypto/crypto.h"
#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MS(col) "(extract(epoch from " col ") * 1000)::bigint"

int64_t repo__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tok__key(struct gr_sbuf *k, const char *sha)
{
    gr_sbuf_adds(k, "t:");
    gr_sbuf_adds(k, sha);
}

int repo__random_id(const char *prefix, char *out, size_t hexbytes)
{
    unsigned char raw[32];
    if (hexbytes > sizeof(raw) || cr_random(raw, hexbytes))
        return GR_EIO;
    size_t pl = strlen(prefix);
    memcpy(out, prefix, pl);
    for (size_t i = 0; i < hexbytes; i++)
        snprintf(out + pl + 2 * i, 3, "%02x", raw[i]);
    return GR_OK;
}

bool sec_token_shaped(const char *s)
{
    if (strlen(s) != SEC_TOKEN_LEN)
        return false;
    if (strncmp(s, SEC_TOKEN_PREFIX, 4) && strncmp(s, "npm_", 4))
        return false;
    return strspn(s + 4, "0123456789abcdef") == SEC_TOKEN_LEN - 4;
}

static int tok__scope_ok(const char *scope)
{
    return !strcmp(scope, "applied-permissions/user") || !strcmp(scope, "applied-permissions/admin")
               ? GR_OK
               : GR_EINVAL;
}

int sec_token_issue(struct repo_ctx *ctx, const char *user, const char *scope, int64_t expires_in,
                    const char *description, char *token, char *refresh,
                    struct sec_token_info *info)
{
    if (tok__scope_ok(scope) || expires_in < 0 || expires_in > SEC_TOKEN_EXPIRES_MAX)
        return GR_EINVAL;
    char id[40], sum[CR_SHA256_HEX], rsum[CR_SHA256_HEX], exp[24];
    if (repo__random_id("", id, 12) || repo__random_id(SEC_TOKEN_PREFIX, token, 32))
        return GR_EIO;
    cr_sha256_hex(token, SEC_TOKEN_LEN, sum);
    if (refresh) {
        if (repo__random_id(SEC_TOKEN_PREFIX, refresh, 32))
            return GR_EIO;
        cr_sha256_hex(refresh, SEC_TOKEN_LEN, rsum);
    }
    snprintf(exp, sizeof(exp), "%lld", (long long)expires_in);
    const char *p[7] = {id, sum, refresh ? rsum : NULL, user, scope, description ? description : "",
                        exp};
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "INSERT INTO access_tokens (id, token_sha256, refresh_sha256, user_name,"
                      " scope, description, expires) VALUES ($1, $2, $3, $4, $5, $6,"
                      " CASE WHEN $7::bigint = 0 THEN NULL"
                      " ELSE now() + $7::bigint * interval '1 second' END)"
                      " RETURNING " MS("created") ", coalesce(" MS("expires") ", 0)",
                      7, p);
    if (rc)
        return rc; /* GR_ENOTFOUND: no such user (foreign key) */
    if (info) {
        memset(info, 0, sizeof(*info));
        info->created_ms = strtoll(db_res_get(res, 0, 0), NULL, 10);
        info->expires_ms = strtoll(db_res_get(res, 0, 1), NULL, 10);
        info->refreshable = refresh != NULL;
    }
    db_res_free(res);
    /* a cached absence of this hash (someone guessed it?) must go */
    struct gr_sbuf k = GR_SBUF_INIT;
    tok__key(&k, sum);
    repo__invalidate(ctx, &k, 1);
    gr_sbuf_release(&k);
    return GR_OK;
}

/* t:<sha> record: id \0 user \0 scope \0 expires_ms \0 revoked */
static int tok__load(struct repo_ctx *ctx, void *arg, struct gr_sbuf *rec)
{
    const char *p[1] = {arg};
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "SELECT id, user_name, scope, coalesce(" MS(
                          "expires") ", 0), revoked::int"
                                     " FROM access_tokens WHERE token_sha256 = $1",
                      1, p);
    if (rc)
        return rc;
    if (db_res_rows(res) == 0)
        rc = GR_ENOTFOUND;
    else
        for (int c = 0; c < 5; c++) {
            const char *v = db_res_get(res, 0, c);
            gr_sbuf_add(rec, v, strlen(v) + 1);
        }
    db_res_free(res);
    return rc;
}

int sec_token_check(struct repo_ctx *ctx, const char *token, struct auth_user *out)
{
    if (!sec_token_shaped(token))
        return GR_EAUTH;
    char sum[CR_SHA256_HEX];
    cr_sha256_hex(token, strlen(token), sum);
    return sec__token_check_sha(ctx, sum, out);
}

int sec__token_check_sha(struct repo_ctx *ctx, const char *sum, struct auth_user *out)
{
    struct gr_arena *a = gr_arena_new();
    if (!a)
        return GR_ENOMEM;
    struct gr_sbuf k = GR_SBUF_INIT;
    tok__key(&k, sum);
    const char *rec;
    size_t len;
    int rc = repo__cached(ctx, a, &k, tok__load, (void *)sum, &rec, &len);
    gr_sbuf_release(&k);
    if (rc == GR_ENOTFOUND)
        rc = GR_EAUTH;
    if (rc)
        goto out;
    const char *f[5] = {"", "", "", "0", "1"};
    repo__fields(a, rec, len, f, 5);
    int64_t exp = strtoll(f[3], NULL, 10);
    if (f[4][0] == '1' || (exp != 0 && repo__now_ms() >= exp)) {
        rc = GR_EAUTH;
        goto out;
    }
    bool admin = false, disabled = true;
    rc = auth_user_lookup(ctx, f[1], &admin, &disabled);
    if (rc == GR_ENOTFOUND || (rc == GR_OK && disabled))
        rc = GR_EAUTH;
    if (rc)
        goto out;
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", f[1]);
    out->scoped = strcmp(f[2], "applied-permissions/admin") != 0;
    out->admin = admin && !out->scoped;
    out->anonymous = false;
out:
    gr_arena_free(a);
    return rc;
}

int sec_token_refresh(struct repo_ctx *ctx, const char *refresh_token, int64_t expires_in,
                      char *token, char *refresh, struct sec_token_info *info)
{
    if (!sec_token_shaped(refresh_token))
        return GR_EAUTH;
    char rsum[CR_SHA256_HEX];
    cr_sha256_hex(refresh_token, strlen(refresh_token), rsum);
    const char *p[1] = {rsum};
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "WITH bump AS (UPDATE change_counter SET value = value + 1 WHERE id = 1)"
                      " UPDATE access_tokens SET revoked = true, refresh_sha256 = NULL"
                      " WHERE refresh_sha256 = $1 AND NOT revoked"
                      " RETURNING token_sha256, user_name, scope, description",
                      1, p);
    if (rc)
        return rc;
    if (db_res_rows(res) == 0) {
        db_res_free(res);
        return GR_EAUTH;
    }
    char sum[CR_SHA256_HEX], user[SEC_NAME_MAX + 1], scope[64], desc[256];
    snprintf(sum, sizeof(sum), "%s", db_res_get(res, 0, 0));
    snprintf(user, sizeof(user), "%s", db_res_get(res, 0, 1));
    snprintf(scope, sizeof(scope), "%s", db_res_get(res, 0, 2));
    snprintf(desc, sizeof(desc), "%s", db_res_get(res, 0, 3));
    db_res_free(res);
    struct gr_sbuf k = GR_SBUF_INIT;
    tok__key(&k, sum);
    repo__invalidate(ctx, &k, 1);
    gr_sbuf_release(&k);
    return sec_token_issue(ctx, user, scope, expires_in, desc, token, refresh, info);
}

int sec_token_list(struct repo_ctx *ctx, struct gr_arena *a, const char *user,
                   struct sec_token_info **out, int *n)
{
    const char *p[1] = {user};
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "SELECT id, user_name, scope, description, " MS("created") ", coalesce(" MS(
                          "expires") ", 0), (refresh_sha256 IS NOT NULL)::int, revoked::int"
                                     " FROM access_tokens WHERE $1::text IS NULL OR user_name = $1"
                                     " ORDER BY created DESC, id",
                      1, p);
    if (rc)
        return rc;
    db_res_arena(res, a);
    int rows = db_res_rows(res);
    struct sec_token_info *v = gr_arena_calloc(a, sizeof(*v) * (size_t)(rows + 1));
    for (int i = 0; i < rows; i++) {
        v[i].id = db_res_get(res, i, 0);
        v[i].user = db_res_get(res, i, 1);
        v[i].scope = db_res_get(res, i, 2);
        v[i].description = db_res_get(res, i, 3);
        v[i].created_ms = strtoll(db_res_get(res, i, 4), NULL, 10);
        v[i].expires_ms = strtoll(db_res_get(res, i, 5), NULL, 10);
        v[i].refreshable = db_res_get(res, i, 6)[0] == '1';
        v[i].revoked = db_res_get(res, i, 7)[0] == '1';
    }
    *out = v;
    *n = rows;
    return GR_OK;
}

int sec_token_revoke(struct repo_ctx *ctx, const char *token, const char *id, const char *owner,
                     char revoked_user[SEC_NAME_MAX + 1])
{
    char sum[CR_SHA256_HEX] = "";
    if (token)
        cr_sha256_hex(token, strlen(token), sum);
    const char *p[3] = {token ? sum : NULL, id, owner};
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "WITH bump AS (UPDATE change_counter SET value = value + 1 WHERE id = 1)"
                      " UPDATE access_tokens SET revoked = true, refresh_sha256 = NULL"
                      " WHERE (token_sha256 = $1 OR id = $2) AND ($3::text IS NULL"
                      " OR user_name = $3) RETURNING token_sha256, user_name",
                      3, p);
    if (rc)
        return rc;
    int rows = db_res_rows(res);
    if (rows == 0) {
        db_res_free(res);
        return GR_ENOTFOUND;
    }
    if (revoked_user)
        snprintf(revoked_user, SEC_NAME_MAX + 1, "%s", db_res_get(res, 0, 1));
    struct gr_sbuf k = GR_SBUF_INIT;
    tok__key(&k, db_res_get(res, 0, 0));
    db_res_free(res);
    /* local drop, then every peer acknowledges before we return */
    repo__invalidate(ctx, &k, 1);
    gr_sbuf_release(&k);
    return GR_OK;
}
