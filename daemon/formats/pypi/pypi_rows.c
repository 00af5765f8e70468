/*
 * pypi_rows.c - a PyPI repository's rows (pypi.h): the distribution files
 * of a project with their pypi.* properties and metadata hashes, the index
 * records kept in the LMDB cache under the folder summaries of
 * repo__key_folder (dropped on every node by any change below the folder),
 * and the commits of uploads and yanks.
 */
#include "formats/pypi/pypi.h"

#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "db/db.h"
#include "repo/internal.h"
#include "repo/props.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define US(col) "(extract(epoch from " col ") * 1000000)::bigint"
/* A distribution at <project>/<version>/<file> */
#define PYPI_DIST_RE "'^[^/]+/[^/]+/[^/]+\\.(whl|tar\\.gz|zip)$'"

static void pypi__decref(void *arg)
{
    json_decref(arg);
}

/* The first value of a pypi.* property, or NULL. */
static const char *pypi__prop(json_t *props, const char *key)
{
    return json_string_value(json_array_get(json_object_get(props, key), 0));
}

int pypi_files_load(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *norm,
                    struct pypi_file **out, int *n)
{
    struct gr_sbuf like = GR_SBUF_INIT;
    db_like_below(&like, norm);
    const char *p[2] = {repo, like.buf};
    struct db_res *res = NULL;
    int rc = db_exec1(
        ctx->db, &res,
        "SELECT a.path, a.sha256, b.md5, a.size, " US(
            "a.created") ","
                         " coalesce((SELECT json_object_agg(s.key, s.vals) FROM (SELECT pr.key,"
                         "   json_agg(pr.value ORDER BY pr.value) AS vals FROM properties pr"
                         "   WHERE pr.repo = a.repo AND pr.path = a.path AND pr.key LIKE 'pypi.%'"
                         "   GROUP BY pr.key) s), '{}'),"
                         " m.sha256"
                         " FROM artifacts a JOIN binaries b ON b.sha256 = a.sha256"
                         " LEFT JOIN artifacts m ON m.repo = a.repo AND m.path = a.path || "
                         "'.metadata'"
                         " WHERE a.repo = $1 AND a.path LIKE $2 ESCAPE '\\' AND a.path "
                         "~ " PYPI_DIST_RE " ORDER BY a.path",
        2, p);
    gr_sbuf_release(&like);
    if (rc)
        return rc;
    db_res_arena(res, a);
    int rows = db_res_rows(res);
    struct pypi_file *f = gr_arena_calloc(a, sizeof(*f) * (size_t)(rows ? rows : 1));
    for (int i = 0; i < rows; i++) {
        f[i].path = db_res_get(res, i, 0);
        const char *s1 = strchr(f[i].path, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
        f[i].version = s2 ? gr_arena_strndup(a, s1 + 1, (size_t)(s2 - s1 - 1)) : "";
        f[i].filename = s2 ? s2 + 1 : f[i].path;
        snprintf(f[i].sha256, sizeof(f[i].sha256), "%s", db_res_get(res, i, 1));
        snprintf(f[i].md5, sizeof(f[i].md5), "%s", db_res_get(res, i, 2));
        f[i].size = strtoull(db_res_get(res, i, 3), NULL, 10);
        f[i].upload_us = strtoll(db_res_get(res, i, 4), NULL, 10);
        f[i].props = json_loads(db_res_get(res, i, 5), 0, NULL);
        if (f[i].props)
            gr_arena_cleanup(a, pypi__decref, f[i].props);
        f[i].requires_python = pypi__prop(f[i].props, "pypi.requires_python");
        const char *y = pypi__prop(f[i].props, "pypi.yanked");
        f[i].yanked = y && !strcmp(y, "true");
        f[i].yanked_reason = pypi__prop(f[i].props, "pypi.yanked_reason");
        f[i].meta_sha256 = db_res_isnull(res, i, 6) ? NULL : db_res_get(res, i, 6);
        f[i].name = pypi__prop(f[i].props, "pypi.name");
    }
    *out = f;
    *n = rows;
    return GR_OK;
}

struct pypi__load {
    struct gr_arena *a;
    const char *repo, *norm;
};

/* repo__load_fn: a project's page record; GR_ENOTFOUND (cached too) when it has no files. */
static int pypi__load_project(struct repo_ctx *ctx, void *arg, struct gr_sbuf *rec)
{
    struct pypi__load *l = arg;
    struct pypi_file *f;
    int n;
    int rc = pypi_files_load(ctx, l->a, l->repo, l->norm, &f, &n);
    if (rc)
        return rc;
    if (n == 0)
        return GR_ENOTFOUND;
    /* the project's name as its latest upload spelled it */
    const char *display = l->norm;
    int64_t newest = -1;
    for (int i = 0; i < n; i++)
        if (f[i].name && pypi_normalize(l->a, f[i].name) &&
            !strcmp(pypi_normalize(l->a, f[i].name), l->norm) && f[i].upload_us > newest) {
            newest = f[i].upload_us;
            display = f[i].name;
        }
    pypi_project_record(rec, display, f, n);
    return GR_OK;
}

/*
 * A record through the cache; one another build wrote (its first field is
 * not magic: the pages' form changed) is dropped everywhere and read again.
 */
static int pypi__cached(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *top,
                        repo__load_fn load, const char *magic, const char **rec, size_t *len)
{
    struct pypi__load l = {a, repo, top};
    struct gr_sbuf k = GR_SBUF_INIT;
    repo__key_folder(&k, repo, top);
    int rc = repo__cached(ctx, a, &k, load, &l, rec, len);
    if (rc == GR_OK && (*len < strlen(magic) + 1 || strcmp(*rec, magic))) {
        gr_info("pypi: an index record of %s/%s from another version: read again", repo, top);
        repo__invalidate(ctx, &k, 1);
        rc = repo__cached(ctx, a, &k, load, &l, rec, len);
    }
    gr_sbuf_release(&k);
    return rc;
}

int pypi_project_cached(struct repo_ctx *ctx, struct gr_arena *a, const char *repo,
                        const char *norm, const char **rec, size_t *len)
{
    return pypi__cached(ctx, a, repo, norm, pypi__load_project, PYPI_PROJECT_MAGIC, rec, len);
}

/* repo__load_fn: the repository's projects with their names. */
static int pypi__load_root(struct repo_ctx *ctx, void *arg, struct gr_sbuf *rec)
{
    struct pypi__load *l = arg;
    const char *p[1] = {l->repo};
    struct db_res *res = NULL;
    int rc =
        db_exec1(ctx->db, &res,
                 "SELECT DISTINCT ON (top) top, display FROM ("
                 " SELECT split_part(a.path, '/', 1) AS top, a.created,"
                 "  (SELECT pr.value FROM properties pr WHERE pr.repo = a.repo AND pr.path = a.path"
                 "    AND pr.key = 'pypi.name' LIMIT 1) AS display"
                 " FROM artifacts a WHERE a.repo = $1 AND a.path ~ " PYPI_DIST_RE
                 ") s ORDER BY top, created DESC",
                 1, p);
    if (rc)
        return rc;
    db_res_arena(res, l->a);
    int rows = db_res_rows(res);
    struct pypi_project *v = gr_arena_calloc(l->a, sizeof(*v) * (size_t)(rows ? rows : 1));
    for (int i = 0; i < rows; i++) {
        v[i].norm = db_res_get(res, i, 0);
        const char *d = db_res_get(res, i, 1);
        const char *dn = *d ? pypi_normalize(l->a, d) : NULL;
        v[i].display = dn && !strcmp(dn, v[i].norm) ? d : v[i].norm;
    }
    pypi_root_record(rec, v, rows);
    return GR_OK;
}

int pypi_root_cached(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char **rec,
                     size_t *len)
{
    return pypi__cached(ctx, a, repo, "", pypi__load_root, PYPI_ROOT_MAGIC, rec, len);
}

/* Drop the cached records of paths (and with them the folder summaries above). */
static void pypi__invalidate(struct repo_ctx *ctx, const char *repo, const char *const *paths,
                             int n)
{
    struct gr_sbuf *k = calloc((size_t)(n ? n : 1), sizeof(*k));
    if (!k)
        abort();
    for (int i = 0; i < n; i++) {
        gr_sbuf_init(&k[i]);
        repo__key_artifact(&k[i], repo, paths[i]);
    }
    repo__invalidate(ctx, k, (size_t)n);
    for (int i = 0; i < n; i++)
        gr_sbuf_release(&k[i]);
    free(k);
}

int pypi_commit(struct repo_ctx *ctx, struct gr_arena *a, struct pypi_commit *c)
{
    struct db_conn *conn;
    struct db_res *res = NULL;
    int rc = db_acquire(ctx->db, DB_ACQUIRE_TIMEOUT_MS, &conn);
    if (rc)
        return rc;
    rc = db_begin(conn);
    /* one upload of a project at a time, through any node */
    const char *lk[1] = {gr_arena_printf(a, "pypi:%s/%s", c->repo, c->norm)};
    if (rc == GR_OK)
        rc = db_exec(conn, NULL, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", 1, lk);
    struct gr_sbuf like = GR_SBUF_INIT;
    db_like_below(&like, c->norm);
    const char *pe[3] = {c->repo, c->filename, like.buf};
    if (rc == GR_OK)
        rc = db_exec(conn, &res,
                     "SELECT 1 FROM artifacts WHERE repo = $1 AND name = $2"
                     " AND path LIKE $3 ESCAPE '\\' LIMIT 1",
                     3, pe);
    gr_sbuf_release(&like);
    if (rc == GR_OK && db_res_rows(res) > 0)
        rc = GR_EEXIST; /* files are immutable: delete it first */
    db_res_free(res);
    res = NULL;
    c->file->modified_by = c->user;
    if (rc == GR_OK)
        rc = repo__put_binary(ctx, conn, c->file);
    if (rc == GR_OK)
        rc = repo__put_artifact(conn, a, c->file);
    if (rc == GR_OK)
        rc = props_put(conn, a, c->repo, c->file->path, c->props);
    if (c->meta) {
        c->meta->modified_by = c->user;
        if (rc == GR_OK)
            rc = repo__put_binary(ctx, conn, c->meta);
        if (rc == GR_OK) /* replaces a metadata file whose distribution was deleted */
            rc = repo__put_artifact(conn, a, c->meta);
    }
    if (rc == GR_OK)
        rc = repo__bump(conn);
    if (rc == GR_EDB && !strcmp(db_last_sqlstate(conn), "23503"))
        rc = GR_ENOTFOUND; /* the repository went meanwhile */
    rc = repo__finish(conn, rc);
    if (rc == GR_OK || rc == GR_EDB) { /* EDB: the commit's outcome may be unknown */
        const char *paths[2] = {c->file->path, c->meta ? c->meta->path : NULL};
        pypi__invalidate(ctx, c->repo, paths, c->meta ? 2 : 1);
    }
    return rc;
}

int pypi_yank(struct repo_ctx *ctx, const char *repo, const char *const *paths, int n,
              const char *reason)
{
    struct gr_arena *a = gr_arena_new();
    if (!a)
        return GR_ENOMEM;
    struct db_conn *conn;
    struct db_res *res = NULL;
    int rc = db_acquire(ctx->db, DB_ACQUIRE_TIMEOUT_MS, &conn);
    if (rc) {
        gr_arena_free(a);
        return rc;
    }
    rc = db_begin(conn);
    struct gr_sbuf arr = GR_SBUF_INIT;
    db_text_array(&arr, paths, n);
    const char *pp[2] = {repo, arr.buf};
    /* the files stay while their properties change */
    if (rc == GR_OK)
        rc = db_exec(conn, &res,
                     "SELECT path FROM artifacts WHERE repo = $1 AND path = ANY($2::text[])"
                     " FOR KEY SHARE",
                     2, pp);
    if (rc == GR_OK && db_res_rows(res) != n)
        rc = GR_ENOTFOUND;
    db_res_free(res);
    gr_sbuf_release(&arr);
    static const char *const tv[1] = {"true"};
    const char *rv[1] = {reason};
    struct props_entry keys[2] = {{"pypi.yanked", NULL, 0}, {"pypi.yanked_reason", NULL, 0}};
    struct props_entry vals[2] = {{"pypi.yanked", (const char **)tv, 1},
                                  {"pypi.yanked_reason", rv, 1}};
    struct props_set drop = {keys, 2};
    struct props_set put = {vals, reason && *reason ? 2 : 1};
    for (int i = 0; rc == GR_OK && i < n; i++) {
        rc = props_drop(conn, a, repo, paths[i], &drop);
        if (rc == GR_OK && reason)
            rc = props_put(conn, a, repo, paths[i], &put);
    }
    if (rc == GR_OK)
        rc = repo__bump(conn);
    rc = repo__finish(conn, rc);
    if (rc == GR_OK || rc == GR_EDB)
        pypi__invalidate(ctx, repo, paths, n);
    gr_arena_free(a);
    return rc;
}
