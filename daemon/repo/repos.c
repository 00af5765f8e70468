/* repos.c - repository configurations. */
#include "repo/internal.h"

#include "base/err.h"
#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
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

#define REPO_COLS                                                                                  \
    "key, rclass, package_type, description, includes_pattern, excludes_pattern,"                  \
    " handle_releases, handle_snapshots, max_unique_snapshots,"                                    \
    " suppress_pom_consistency_checks, allow_release_redeploy"
#define REPO_NCOLS 11

void repo_config_defaults(struct repo_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->description = "";
    cfg->includes_pattern = "**/*";
    cfg->excludes_pattern = "";
    cfg->handle_releases = true;
    cfg->handle_snapshots = true;
}

static void repos__row(struct gr_sbuf *rec, struct db_res *res, int row)
{
    for (int c = 0; c < REPO_NCOLS; c++) {
        const char *v = db_res_get(res, row, c);
        gr_sbuf_add(rec, v, strlen(v) + 1);
    }
}

/* Fields in REPO_COLS order (a record cached by an older build has fewer:
 * the rest keep their defaults). */
static void repos__from_fields(struct repo_config *out, const char *const *f)
{
    snprintf(out->key, sizeof(out->key), "%s", f[0]);
    snprintf(out->rclass, sizeof(out->rclass), "%s", f[1]);
    snprintf(out->package_type, sizeof(out->package_type), "%s", f[2]);
    out->description = f[3];
    out->includes_pattern = f[4];
    out->excludes_pattern = f[5];
    out->handle_releases = f[6][0] != 'f';
    out->handle_snapshots = f[7][0] != 'f';
    out->max_unique_snapshots = atoi(f[8]);
    out->suppress_pom_checks = f[9][0] == 't';
    out->allow_release_redeploy = f[10][0] == 't';
}

static void repos__parse(struct gr_arena *a, const char *rec, size_t len, struct repo_config *out)
{
    const char *f[REPO_NCOLS] = {"", "", "", "", "", "", "t", "t", "0", "f", "f"};
    repo__fields(a, rec, len, f, REPO_NCOLS);
    repos__from_fields(out, f);
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
        const char *f[REPO_NCOLS];
        for (int c = 0; c < REPO_NCOLS; c++)
            f[c] = db_res_get(res, i, c); /* the result belongs to the arena now */
        repos__from_fields(&v[i], f);
    }
    *out = v;
    *n = rows;
    return GR_OK;
}

static int repos__write(struct repo_ctx *ctx, const struct repo_config *cfg, bool create)
{
    if (repo_key_check(cfg->key) != GR_OK)
        return GR_EINVAL;
    char maxu[16];
    snprintf(maxu, sizeof(maxu), "%d", cfg->max_unique_snapshots);
    const char *p[REPO_NCOLS] = {cfg->key,
                                 cfg->rclass,
                                 cfg->package_type,
                                 cfg->description ? cfg->description : "",
                                 cfg->includes_pattern ? cfg->includes_pattern : "**/*",
                                 cfg->excludes_pattern ? cfg->excludes_pattern : "",
                                 cfg->handle_releases ? "t" : "f",
                                 cfg->handle_snapshots ? "t" : "f",
                                 maxu,
                                 cfg->suppress_pom_checks ? "t" : "f",
                                 cfg->allow_release_redeploy ? "t" : "f"};
    struct db_conn *c;
    struct db_res *res = NULL;
    int rc = db_acquire(ctx->db, 5000, &c);
    if (rc)
        return rc;
    rc = db_begin(c);
    if (rc == GR_OK && create)
        rc = db_exec(c, NULL,
                     "INSERT INTO repositories (" REPO_COLS ")"
                     " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
                     REPO_NCOLS, p);
    else if (rc == GR_OK) {
        rc = db_exec(c, &res,
                     "UPDATE repositories SET rclass=$2, package_type=$3, description=$4,"
                     " includes_pattern=$5, excludes_pattern=$6, handle_releases=$7,"
                     " handle_snapshots=$8, max_unique_snapshots=$9,"
                     " suppress_pom_consistency_checks=$10, allow_release_redeploy=$11"
                     " WHERE key=$1 RETURNING key",
                     REPO_NCOLS, p);
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
