/* repos.c - repository configurations. */
#include "repo/internal.h"

#include "base/err.h"
#include "db/db.h"

#include <stdio.h>
#include <string.h>

/* Keys that would shadow a route. */
static const char *const reserved[] = {"api",  "artifactory", "ui",          "v2", "webapp",
                                       "list", "-",           "favicon.ico", NULL};

int repo_key_check(const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n > REPO_KEY_MAX)
        return GR_EINVAL;
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '-' && c != '_' && c != '.')))
            return GR_EINVAL;
    }
    for (int i = 0; reserved[i]; i++)
        if (!strcmp(key, reserved[i]))
            return GR_EINVAL;
    return GR_OK;
}

#define REPO_COLS "key, rclass, package_type, description, includes_pattern, excludes_pattern"

static void repos__row(struct gr_sbuf *rec, struct db_res *res, int row)
{
    for (int c = 0; c < 6; c++) {
        const char *v = db_res_get(res, row, c);
        gr_sbuf_add(rec, v, strlen(v) + 1);
    }
}

static void repos__parse(struct gr_arena *a, const char *rec, size_t len, struct repo_config *out)
{
    const char *f[6] = {"", "", "", "", "", ""};
    repo__fields(a, rec, len, f, 6);
    snprintf(out->key, sizeof(out->key), "%s", f[0]);
    snprintf(out->rclass, sizeof(out->rclass), "%s", f[1]);
    snprintf(out->package_type, sizeof(out->package_type), "%s", f[2]);
    out->description = f[3];
    out->includes_pattern = f[4];
    out->excludes_pattern = f[5];
}

static int repos__load(struct repo_ctx *ctx, void *arg, struct gr_sbuf *rec)
{
    const char *key = arg;
    struct db_res *res = NULL;
    int rc =
        db_exec1(ctx->db, &res, "SELECT " REPO_COLS " FROM repositories WHERE key = $1", 1, &key);
    if (rc == GR_OK) {
        if (db_res_rows(res) == 0)
            rc = GR_ENOTFOUND;
        else
            repos__row(rec, res, 0);
    }
    db_res_free(res);
    return rc;
}

int repo_get(struct repo_ctx *ctx, struct gr_arena *a, const char *key, struct repo_config *out)
{
    if (repo_key_check(key) != GR_OK)
        return GR_ENOTFOUND;
    struct gr_sbuf k = GR_SBUF_INIT;
    const char *rec;
    size_t len;
    repo__key_repo(&k, key);
    int rc = repo__cached(ctx, a, &k, repos__load, (void *)key, &rec, &len);
    gr_sbuf_release(&k);
    if (rc == GR_OK)
        repos__parse(a, rec, len, out);
    return rc;
}

int repo_list(struct repo_ctx *ctx, struct gr_arena *a, struct repo_config **out, int *n)
{
    struct db_res *res = NULL;
    int rc =
        db_exec1(ctx->db, &res, "SELECT " REPO_COLS " FROM repositories ORDER BY key", 0, NULL);
    if (rc)
        return rc;
    db_res_arena(res, a);
    int rows = db_res_rows(res);
    struct repo_config *v = gr_arena_calloc(a, sizeof(*v) * (size_t)(rows ? rows : 1));
    for (int i = 0; i < rows; i++) {
        snprintf(v[i].key, sizeof(v[i].key), "%s", db_res_get(res, i, 0));
        snprintf(v[i].rclass, sizeof(v[i].rclass), "%s", db_res_get(res, i, 1));
        snprintf(v[i].package_type, sizeof(v[i].package_type), "%s", db_res_get(res, i, 2));
        v[i].description = gr_arena_strdup(a, db_res_get(res, i, 3));
        v[i].includes_pattern = gr_arena_strdup(a, db_res_get(res, i, 4));
        v[i].excludes_pattern = gr_arena_strdup(a, db_res_get(res, i, 5));
    }
    *out = v;
    *n = rows;
    return GR_OK;
}

static int repos__write(struct repo_ctx *ctx, const struct repo_config *cfg, bool create)
{
    if (repo_key_check(cfg->key) != GR_OK)
        return GR_EINVAL;
    const char *p[6] = {cfg->key,
                        cfg->rclass,
                        cfg->package_type,
                        cfg->description ? cfg->description : "",
                        cfg->includes_pattern ? cfg->includes_pattern : "**/*",
                        cfg->excludes_pattern ? cfg->excludes_pattern : ""};
    struct db_conn *c;
    struct db_res *res = NULL;
    int rc = db_acquire(ctx->db, 5000, &c);
    if (rc)
        return rc;
    rc = db_begin(c);
    if (rc == GR_OK && create)
        rc = db_exec(c, NULL, "INSERT INTO repositories (" REPO_COLS ") VALUES ($1,$2,$3,$4,$5,$6)",
                     6, p);
    else if (rc == GR_OK) {
        rc = db_exec(c, &res,
                     "UPDATE repositories SET rclass=$2, package_type=$3, description=$4,"
                     " includes_pattern=$5, excludes_pattern=$6 WHERE key=$1 RETURNING key",
                     6, p);
        if (rc == GR_OK && db_res_rows(res) == 0)
            rc = GR_ENOTFOUND;
        db_res_free(res);
    }
    if (rc == GR_OK)
        rc = repo__bump(c);
    rc = repo__finish(c, rc);
    struct gr_sbuf k = GR_SBUF_INIT;
    repo__key_repo(&k, cfg->key);
    repo__invalidate(ctx, &k, 1);
    gr_sbuf_release(&k);
    return rc;
}

int repo_create(struct repo_ctx *ctx, const struct repo_config *cfg)
{
    return repos__write(ctx, cfg, true);
}

int repo_update(struct repo_ctx *ctx, const struct repo_config *cfg)
{
    return repos__write(ctx, cfg, false);
}

int repo_delete(struct repo_ctx *ctx, const char *key)
{
    if (repo_key_check(key) != GR_OK)
        return GR_ENOTFOUND;
    struct db_conn *c;
    struct db_res *res = NULL;
    int rc = db_acquire(ctx->db, 5000, &c);
    if (rc)
        return rc;
    rc = db_begin(c);
    if (rc == GR_OK) {
        /* artifacts go with it (ON DELETE CASCADE); binaries stay for GC */
        rc = db_exec(c, &res, "DELETE FROM repositories WHERE key = $1 RETURNING key", 1, &key);
        if (rc == GR_OK && db_res_rows(res) == 0)
            rc = GR_ENOTFOUND;
        db_res_free(res);
    }
    if (rc == GR_OK)
        rc = repo__bump(c);
    rc = repo__finish(c, rc);
    struct gr_sbuf k = GR_SBUF_INIT, prefix = GR_SBUF_INIT;
    repo__key_repo(&k, key);
    repo__invalidate(ctx, &k, 1);
    repo__key_artifact(&prefix, key, "");
    repo__invalidate_prefix(ctx, &prefix);
    gr_sbuf_release(&k);
    gr_sbuf_release(&prefix);
    return rc;
}
