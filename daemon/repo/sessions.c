/*
 * sessions.c - the web UI's sessions (security.h): a random cookie value,
 * stored only as its sha256, checked through the cache (`w:<sha256>`) on
 * every node, revoked cluster-wide before the revoking call returns. A
 * session opened with an access token is checked through that token too.
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

static void sess__key(struct gr_sbuf *k, const char *sha)
{
    gr_sbuf_adds(k, "w:");
    gr_sbuf_adds(k, sha);
}

bool sec_session_shaped(const char *s)
{
    return strlen(s) == SEC_SESSION_LEN && !strncmp(s, SEC_SESSION_PREFIX, 4) &&
           strspn(s + 4, "0123456789abcdef") == SEC_SESSION_LEN - 4;
}

void sec_session_csrf(const char *cookie, char out[SEC_CSRF_LEN + 1])
{
    static const char what[] = "granary-ui-csrf-v1";
    unsigned char mac[32];
    cr_hmac_sha256(cookie, strlen(cookie), what, sizeof(what) - 1, mac);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

int sec_session_open(struct repo_ctx *ctx, const char *user, bool scoped, const char *token_sha256,
                     int64_t lifetime, const char *client, char *cookie,
                     struct sec_session_info *info)
{
    if (lifetime < 1 || lifetime > SEC_SESSION_LIFETIME_MAX || !user || strchr(user, ':'))
        return GR_EINVAL; /* a plugin realm's user has no row to hang a session on */
    char id[40], sum[CR_SHA256_HEX], life[24];
    if (repo__random_id("", id, 12) || repo__random_id(SEC_SESSION_PREFIX, cookie, 32))
        return GR_EIO;
    cr_sha256_hex(cookie, SEC_SESSION_LEN, sum);
    snprintf(life, sizeof(life), "%lld", (long long)lifetime);
    const char *p[7] = {id,  sum, user, scoped ? "t" : "f", token_sha256, client ? client : "",
                        life};
    struct db_res *res = NULL;
    /* expired sessions go on the way (revoked ones too, once expired) */
    int rc = db_exec1(ctx->db, &res,
                      "WITH purge AS (DELETE FROM ui_sessions WHERE expires < now()"
                      " - interval '1 hour') INSERT INTO ui_sessions (id, session_sha256,"
                      " user_name, scoped, token_sha256, client, expires) VALUES ($1, $2, $3,"
                      " $4::boolean, $5, $6, now() + $7::bigint * interval '1 second')"
                      " RETURNING " MS("created") ", " MS("expires"),
                      7, p);
    if (rc)
        return rc; /* GR_ENOTFOUND: no such user (foreign key) */
    if (info) {
        memset(info, 0, sizeof(*info));
        info->created_ms = strtoll(db_res_get(res, 0, 0), NULL, 10);
        info->expires_ms = strtoll(db_res_get(res, 0, 1), NULL, 10);
        info->scoped = scoped;
        info->with_token = token_sha256 != NULL;
    }
    db_res_free(res);
    /* a cached absence of this hash must go */
    struct gr_sbuf k = GR_SBUF_INIT;
    sess__key(&k, sum);
    repo__invalidate(ctx, &k, 1);
    gr_sbuf_release(&k);
    return GR_OK;
}

/* w:<sha> record: id \0 user \0 scoped \0 token_sha256 \0 expires_ms \0 revoked */
static int sess__load(struct repo_ctx *ctx, void *arg, struct gr_sbuf *rec)
{
    const char *p[1] = {arg};
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "SELECT id, user_name, scoped::int, coalesce(token_sha256, ''), " MS(
                          "expires") ", revoked::int FROM ui_sessions WHERE session_sha256 = $1",
                      1, p);
    if (rc)
        return rc;
    if (db_res_rows(res) == 0)
        rc = GR_ENOTFOUND;
    else
        for (int c = 0; c < 6; c++) {
            const char *v = db_res_get(res, 0, c);
            gr_sbuf_add(rec, v, strlen(v) + 1);
        }
    db_res_free(res);
    return rc;
}

int sec_session_check(struct repo_ctx *ctx, struct gr_arena *a, const char *cookie,
                      struct auth_user *out, const char **id)
{
    if (!sec_session_shaped(cookie))
        return GR_EAUTH;
    char sum[CR_SHA256_HEX];
    cr_sha256_hex(cookie, strlen(cookie), sum);
    struct gr_sbuf k = GR_SBUF_INIT;
    sess__key(&k, sum);
    const char *rec;
    size_t len;
    int rc = repo__cached(ctx, a, &k, sess__load, sum, &rec, &len);
    gr_sbuf_release(&k);
    if (rc == GR_ENOTFOUND)
        return GR_EAUTH;
    if (rc)
        return rc;
    const char *f[6] = {"", "", "1", "", "0", "1"};
    repo__fields(a, rec, len, f, 6);
    if (f[5][0] == '1' || repo__now_ms() >= strtoll(f[4], NULL, 10))
        return GR_EAUTH;
    struct auth_user u;
    memset(&u, 0, sizeof(u));
    if (*f[3]) {
        /* opened with a token: it must still hold, and it must be this user's */
        rc = sec__token_check_sha(ctx, f[3], &u);
        if (rc)
            return rc;
        if (strcmp(u.name, f[1]))
            return GR_EAUTH;
    } else {
        bool admin = false, disabled = true;
        rc = auth_user_lookup(ctx, f[1], &admin, &disabled);
        if (rc == GR_ENOTFOUND || (rc == GR_OK && disabled))
            return GR_EAUTH;
        if (rc)
            return rc;
        snprintf(u.name, sizeof(u.name), "%s", f[1]);
        u.admin = admin;
    }
    if (f[2][0] == '1') {
        u.scoped = true;
        u.admin = false;
    }
    *out = u;
    if (id)
        *id = f[0];
    return GR_OK;
}

int sec_session_list(struct repo_ctx *ctx, struct gr_arena *a, const char *user,
                     struct sec_session_info **out, int *n)
{
    const char *p[1] = {user};
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "SELECT id, user_name, client, " MS("created") ", " MS(
                          "expires") ", scoped::int, (token_sha256 IS NOT NULL)::int,"
                                     " revoked::int FROM ui_sessions WHERE ($1::text IS NULL OR"
                                     " user_name = $1) AND expires > now()"
                                     " ORDER BY created DESC, id",
                      1, p);
    if (rc)
        return rc;
    db_res_arena(res, a);
    int rows = db_res_rows(res);
    struct sec_session_info *v = gr_arena_calloc(a, sizeof(*v) * (size_t)(rows + 1));
    for (int i = 0; i < rows; i++) {
        v[i].id = db_res_get(res, i, 0);
        v[i].user = db_res_get(res, i, 1);
        v[i].client = db_res_get(res, i, 2);
        v[i].created_ms = strtoll(db_res_get(res, i, 3), NULL, 10);
        v[i].expires_ms = strtoll(db_res_get(res, i, 4), NULL, 10);
        v[i].scoped = db_res_get(res, i, 5)[0] == '1';
        v[i].with_token = db_res_get(res, i, 6)[0] == '1';
        v[i].revoked = db_res_get(res, i, 7)[0] == '1';
    }
    *out = v;
    *n = rows;
    return GR_OK;
}

int sec_session_revoke(struct repo_ctx *ctx, const char *cookie, const char *id, const char *owner)
{
    char sum[CR_SHA256_HEX] = "";
    if (cookie)
        cr_sha256_hex(cookie, strlen(cookie), sum);
    const char *p[3] = {cookie ? sum : NULL, id, owner};
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "WITH bump AS (UPDATE change_counter SET value = value + 1 WHERE id = 1)"
                      " UPDATE ui_sessions SET revoked = true WHERE (session_sha256 = $1 OR"
                      " id = $2) AND ($3::text IS NULL OR user_name = $3) AND NOT revoked"
                      " RETURNING session_sha256",
                      3, p);
    if (rc)
        return rc;
    if (db_res_rows(res) == 0) {
        db_res_free(res);
        return GR_ENOTFOUND;
    }
    struct gr_sbuf k = GR_SBUF_INIT;
    sess__key(&k, db_res_get(res, 0, 0));
    db_res_free(res);
    /* local drop, then every peer acknowledges before we return */
    repo__invalidate(ctx, &k, 1);
    gr_sbuf_release(&k);
    return GR_OK;
}
