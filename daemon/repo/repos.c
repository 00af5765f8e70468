/* repos.c - repository configurations. */
#include "repo/internal.h"

#include "base/err.h"
#include "base/sbuf.h"
#include "db/db.h"

#include <pthread.h>
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

/*
 * The columns of `repositories` a configuration is made of, in the order of
 * the cached record (`r:<key>`: a format tag, then one NUL-terminated field
 * per column). A column is one row here; everything a format adds goes into
 * `settings` (jsonb), which the format validates (daemon/formats/).
 */
enum repos__col {
    RC_KEY,
    RC_RCLASS,
    RC_TYPE,
    RC_DESC,
    RC_INCLUDES,
    RC_EXCLUDES,
    RC_SETTINGS,
    RC_N
};
static const struct {
    const char *select; /* the expression read */
    const char *column; /* the column written */
    const char *cast;   /* of the written parameter */
} repos__cols[RC_N] = {
    [RC_KEY] = {"key", "key", ""},
    [RC_RCLASS] = {"rclass", "rclass", ""},
    [RC_TYPE] = {"package_type", "package_type", ""},
    [RC_DESC] = {"description", "description", ""},
    [RC_INCLUDES] = {"includes_pattern", "includes_pattern", ""},
    [RC_EXCLUDES] = {"excludes_pattern", "excludes_pattern", ""},
    [RC_SETTINGS] = {"settings::text", "settings", "::jsonb"},
};
/* First field of a record of this layout: a record cached by an older build
 * (whose first field is a key, which never holds a '#') is read again. */
#define REPOS_RECORD_TAG "#2"

/* SQL made from repos__cols once: SELECT list, INSERT and UPDATE. */
static char repos__select[256], repos__insert[512], repos__update[512];
static pthread_once_t repos__sql_once = PTHREAD_ONCE_INIT;

static void repos__sql_init(void)
{
    struct gr_sbuf sel = GR_SBUF_INIT, cols = GR_SBUF_INIT, vals = GR_SBUF_INIT, set = GR_SBUF_INIT;
    for (int c = 0; c < RC_N; c++) {
        const char *sep = c ? ", " : "";
        gr_sbuf_addf(&sel, "%s%s", sep, repos__cols[c].select);
        gr_sbuf_addf(&cols, "%s%s", sep, repos__cols[c].column);
        gr_sbuf_addf(&vals, "%s$%d%s", sep, c + 1, repos__cols[c].cast);
        if (c != RC_KEY)
            gr_sbuf_addf(&set, "%s%s = $%d%s", set.len ? ", " : "", repos__cols[c].column, c + 1,
                         repos__cols[c].cast);
    }
    snprintf(repos__select, sizeof(repos__select), "%s", sel.buf);
    snprintf(repos__insert, sizeof(repos__insert), "INSERT INTO repositories (%s) VALUES (%s)",
             cols.buf, vals.buf);
    snprintf(repos__update, sizeof(repos__update),
             "UPDATE repositories SET %s WHERE key = $1 RETURNING key", set.buf);
    gr_sbuf_release(&sel);
    gr_sbuf_release(&cols);
    gr_sbuf_release(&vals);
    gr_sbuf_release(&set);
}

static const char *repos__sql(const char *which)
{
    pthread_once(&repos__sql_once, repos__sql_init);
    return which;
}

void repo_config_defaults(struct repo_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->description = "";
    cfg->includes_pattern = "**/*";
    cfg->excludes_pattern = "";
    cfg->settings = "{}";
}

static void repos__row(struct gr_sbuf *rec, struct db_res *res, int row)
{
    gr_sbuf_add(rec, REPOS_RECORD_TAG, sizeof(REPOS_RECORD_TAG));
    for (int c = 0; c < RC_N; c++) {
        const char *v = db_res_get(res, row, c);
        gr_sbuf_add(rec, v, strlen(v) + 1);
    }
}

/* Fields in repos__cols order. */
static void repos__from_fields(struct repo_config *out, const char *const *f)
{
    snprintf(out->key, sizeof(out->key), "%s", f[RC_KEY]);
    snprintf(out->rclass, sizeof(out->rclass), "%s", f[RC_RCLASS]);
    snprintf(out->package_type, sizeof(out->package_type), "%s", f[RC_TYPE]);
    out->description = f[RC_DESC];
    out->includes_pattern = f[RC_INCLUDES];
    out->excludes_pattern = f[RC_EXCLUDES];
    out->settings = *f[RC_SETTINGS] ? f[RC_SETTINGS] : "{}";
}

/* false: the record has another layout (an older build cached it). */
static bool repos__parse(struct gr_arena *a, const char *rec, size_t len, struct repo_config *out)
{
    const char *f[RC_N + 1] = {""};
    for (int c = 0; c <= RC_N; c++)
        f[c] = "";
    repo__fields(a, rec, len, f, RC_N + 1);
    if (strcmp(f[0], REPOS_RECORD_TAG))
        return false;
    repos__from_fields(out, f + 1);
    return true;
}

static int repos__load(struct repo_ctx *ctx, void *arg, struct gr_sbuf *rec)
{
    const char *key = arg;
    struct db_res *res = NULL;
    char sql[384];
    snprintf(sql, sizeof(sql), "SELECT %s FROM repositories WHERE key = $1",
             repos__sql(repos__select));
    int rc = db_exec1(ctx->db, &res, sql, 1, &key);
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
    if (rc == GR_OK && !repos__parse(a, rec, len, out)) {
        repo__invalidate(ctx, &k, 1); /* cached by an older build: read it again */
        rc = repo__cached(ctx, a, &k, repos__load, (void *)key, &rec, &len);
        if (rc == GR_OK && !repos__parse(a, rec, len, out))
            rc = GR_EDB;
    }
    gr_sbuf_release(&k);
    return rc;
}

int repo_list(struct repo_ctx *ctx, struct gr_arena *a, struct repo_config **out, int *n)
{
    struct db_res *res = NULL;
    char sql[384];
    snprintf(sql, sizeof(sql), "SELECT %s FROM repositories ORDER BY key",
             repos__sql(repos__select));
    int rc = db_exec1(ctx->db, &res, sql, 0, NULL);
    if (rc)
        return rc;
    db_res_arena(res, a);
    int rows = db_res_rows(res);
    struct repo_config *v = gr_arena_calloc(a, sizeof(*v) * (size_t)(rows ? rows : 1));
    for (int i = 0; i < rows; i++) {
        const char *f[RC_N];
        for (int c = 0; c < RC_N; c++)
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
    const char *p[RC_N] = {
        [RC_KEY] = cfg->key,
        [RC_RCLASS] = cfg->rclass,
        [RC_TYPE] = cfg->package_type,
        [RC_DESC] = cfg->description ? cfg->description : "",
        [RC_INCLUDES] = cfg->includes_pattern ? cfg->includes_pattern : "**/*",
        [RC_EXCLUDES] = cfg->excludes_pattern ? cfg->excludes_pattern : "",
        [RC_SETTINGS] = cfg->settings ? cfg->settings : "{}",
    };
    struct db_conn *c;
    struct db_res *res = NULL;
    int rc = db_acquire(ctx->db, 5000, &c);
    if (rc)
        return rc;
    rc = db_begin(c);
    if (rc == GR_OK && create) {
        rc = db_exec(c, NULL, repos__sql(repos__insert), RC_N, p);
    } else if (rc == GR_OK) {
        rc = db_exec(c, &res, repos__sql(repos__update), RC_N, p);
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
