/* artifacts.c - artifact rows: lookup (cached), deploy, delete, folder listing. */
#include "repo/internal.h"

#include "base/err.h"
#include "bs.h"
#include "db/db.h"
#include "storage/storage.h"
#include "repo/props.h"
#include "repo/security.h"
#include "repo/trash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS(col) "(extract(epoch from " col ") * 1000)::bigint"
/* Artifacts of one binary looked at for a readable one (deploy by checksum):
 * a binary shared more widely than this by unreadable paths only is not found. */
#define ARTIFACTS_CHECKSUM_CANDIDATES "10000"

struct artifacts__key {
    const char *repo, *path;
};

static int artifacts__load(struct repo_ctx *ctx, void *arg, struct gr_sbuf *rec)
{
    struct artifacts__key *k = arg;
    const char *p[2] = {k->repo, k->path};
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "SELECT a.sha256, b.sha1, b.md5, a.size, " MS("a.created") ", " MS(
                          "a.modified") ", " MS("a.updated") ", a.created_by, a.modified_by"
                                                             " FROM artifacts a JOIN binaries b "
                                                             "USING (sha256)"
                                                             " WHERE a.repo = $1 AND a.path = $2",
                      2, p);
    if (rc == GR_OK) {
        if (db_res_rows(res) == 0)
            rc = GR_ENOTFOUND;
        else
            for (int c = 0; c < 9; c++) {
                const char *v = db_res_get(res, 0, c);
                gr_sbuf_add(rec, v, strlen(v) + 1);
            }
    }
    db_res_free(res);
    return rc;
}

static int artifacts__get(struct repo_ctx *ctx, struct gr_arena *a, const char *repo,
                          const char *path, struct artifact *out, bool fill)
{
    struct artifacts__key key = {repo, path};
    struct gr_sbuf k = GR_SBUF_INIT;
    const char *rec;
    size_t len;
    repo__key_artifact(&k, repo, path);
    int rc = fill ? repo__cached(ctx, a, &k, artifacts__load, &key, &rec, &len)
                  : repo__cached_nofill(ctx, a, &k, artifacts__load, &key, &rec, &len);
    gr_sbuf_release(&k);
    if (rc)
        return rc;
    const char *f[9] = {"", "", "", "0", "0", "0", "0", "", ""};
    repo__fields(a, rec, len, f, 9);
    out->repo = repo;
    out->path = path;
    snprintf(out->sha256, sizeof(out->sha256), "%s", f[0]);
    snprintf(out->sha1, sizeof(out->sha1), "%s", f[1]);
    snprintf(out->md5, sizeof(out->md5), "%s", f[2]);
    out->size = strtoull(f[3], NULL, 10);
    out->created_ms = strtoll(f[4], NULL, 10);
    out->modified_ms = strtoll(f[5], NULL, 10);
    out->updated_ms = strtoll(f[6], NULL, 10);
    out->created_by = f[7];
    out->modified_by = f[8];
    return GR_OK;
}

int artifact_get(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *path,
                 struct artifact *out)
{
    return artifacts__get(ctx, a, repo, path, out, true);
}

int artifact_get_for_write(struct repo_ctx *ctx, struct gr_arena *a, const char *repo,
                           const char *path, struct artifact *out)
{
    return artifacts__get(ctx, a, repo, path, out, false);
}

int repo__put_binary(struct repo_ctx *ctx, struct db_conn *c, const struct artifact *art)
{
    char size[24];
    snprintf(size, sizeof(size), "%llu", (unsigned long long)art->size);
    const char *pb[4] = {art->sha256, art->sha1, art->md5, size};
    struct db_res *res = NULL;
    /*
     * The binary's row lock serialises this deploy with the garbage
     * collector (storage/storage.h): it waits while a collection deletes the
     * files, and a tombstone it meets is cleared before any copy is
     * published under that hash.
     */
    int rc = db_exec(
        c, &res, "SELECT tombstoned IS NOT NULL FROM binaries WHERE sha256 = $1 FOR UPDATE", 1, pb);
    bool tombstoned = rc == GR_OK && db_res_rows(res) == 1 && db_res_get(res, 0, 0)[0] == 't';
    db_res_free(res);
    if (rc == GR_OK && tombstoned && !art->pending)
        return GR_ENOTFOUND; /* its files may be half deleted: send the content */
    if (rc == GR_OK)
        rc = db_exec(c, NULL,
                     "INSERT INTO binaries (sha256, sha1, md5, size) VALUES ($1,$2,$3,$4)"
                     " ON CONFLICT (sha256) DO UPDATE SET touched = now(), tombstoned = NULL",
                     4, pb);
    if (rc == GR_OK && tombstoned) /* the collector may have deleted some copies */
        rc = db_exec(c, NULL, "DELETE FROM binary_locations WHERE sha256 = $1", 1, pb);
    if (rc == GR_OK && ctx->storage)
        rc = storage_publish(ctx->storage, c, art->sha256, art->pending);
    return rc;
}

int repo__put_artifact(struct db_conn *c, struct gr_arena *a, struct artifact *art)
{
    char size[24];
    snprintf(size, sizeof(size), "%llu", (unsigned long long)art->size);
    const char *pa[5] = {art->repo, art->path, art->sha256, size, art->modified_by};
    struct db_res *res = NULL;
    int rc =
        db_exec(c, &res,
                "INSERT INTO artifacts (repo, path, sha256, size, created_by, modified_by)"
                " VALUES ($1,$2,$3,$4,$5,$5) ON CONFLICT (repo, path) DO UPDATE SET"
                " sha256 = EXCLUDED.sha256, size = EXCLUDED.size, modified = now(),"
                " modified_by = EXCLUDED.modified_by, updated = now()"
                " RETURNING " MS("created") ", " MS("modified") ", " MS("updated") ", created_by",
                5, pa);
    if (rc == GR_OK && db_res_rows(res) == 1) {
        art->created_ms = strtoll(db_res_get(res, 0, 0), NULL, 10);
        art->modified_ms = strtoll(db_res_get(res, 0, 1), NULL, 10);
        art->updated_ms = strtoll(db_res_get(res, 0, 2), NULL, 10);
        art->created_by = gr_arena_strdup(a, db_res_get(res, 0, 3));
    }
    db_res_free(res);
    return rc;
}

int artifact_put(struct repo_ctx *ctx, struct gr_arena *a, struct artifact *art)
{
    struct db_conn *c;
    int rc = db_acquire(ctx->db, 5000, &c);
    if (rc)
        return rc;
    rc = db_begin(c);
    if (rc == GR_OK)
        rc = repo__put_binary(ctx, c, art);
    if (rc == GR_OK)
        rc = repo__put_artifact(c, a, art);
    if (rc == GR_OK)
        rc = props_apply_matrix(c, art->repo, art->path, art->matrix);
    rc = repo__bump_finish(c, rc);
    struct gr_sbuf k = GR_SBUF_INIT;
    repo__key_artifact(&k, art->repo, art->path);
    repo__invalidate(ctx, &k, 1);
    gr_sbuf_release(&k);
    return rc;
}

void artifact_forget(struct repo_ctx *ctx, const char *repo, const char *path)
{
    struct gr_sbuf k = GR_SBUF_INIT;
    repo__key_artifact(&k, repo, path);
    repo__invalidate(ctx, &k, 1);
    gr_sbuf_release(&k);
}

/* Whether perms may read one of the artifacts whose binary is sha256. GR_EDB. */
static int artifacts__readable_binary(struct repo_ctx *ctx, const char *sha256,
                                      const struct sec_perms *perms, bool *yes)
{
    struct db_res *res = NULL;
    *yes = false;
    int rc = db_exec1(ctx->db, &res,
                      "SELECT repo, path FROM artifacts WHERE sha256 = $1 ORDER BY repo, path"
                      " LIMIT " ARTIFACTS_CHECKSUM_CANDIDATES,
                      1, &sha256);
    for (int i = 0; rc == GR_OK && i < db_res_rows(res) && !*yes; i++)
        *yes = (sec_perms_on(perms, db_res_get(res, i, 0), db_res_get(res, i, 1)) & SEC_READ) != 0;
    db_res_free(res);
    return rc;
}

int artifact_find_binary(struct repo_ctx *ctx, const char *sha256, const char *sha1,
                         const struct sec_perms *perms, struct artifact *out)
{
    struct db_res *res = NULL;
    const char *p = sha256 ? sha256 : sha1;
    int rc = db_exec1(ctx->db, &res,
                      sha256 ? "SELECT sha256, sha1, md5, size FROM binaries b WHERE sha256 = $1"
                               " AND tombstoned IS NULL AND EXISTS (SELECT 1 FROM"
                               " binary_locations l WHERE l.sha256 = b.sha256)"
                             : "SELECT sha256, sha1, md5, size FROM binaries b WHERE sha1 = $1"
                               " AND tombstoned IS NULL AND EXISTS (SELECT 1 FROM"
                               " binary_locations l WHERE l.sha256 = b.sha256) LIMIT 1",
                      1, &p);
    if (rc == GR_OK && db_res_rows(res) == 0)
        rc = GR_ENOTFOUND;
    if (rc == GR_OK) {
        snprintf(out->sha256, sizeof(out->sha256), "%s", db_res_get(res, 0, 0));
        snprintf(out->sha1, sizeof(out->sha1), "%s", db_res_get(res, 0, 1));
        snprintf(out->md5, sizeof(out->md5), "%s", db_res_get(res, 0, 2));
        out->size = strtoull(db_res_get(res, 0, 3), NULL, 10);
    }
    db_res_free(res);
    if (rc == GR_OK && perms && !perms->all) {
        bool yes = false;
        rc = artifacts__readable_binary(ctx, out->sha256, perms, &yes);
        if (rc == GR_OK && !yes)
            rc = GR_ENOTFOUND;
    }
    return rc;
}

int artifact_delete(struct repo_ctx *ctx, const char *repo, const char *path, const char *user)
{
    /* rows go to the trash (repo/trash.h) unless its retention is 0 */
    int days = TRASH_RETENTION_DEFAULT;
    int rc = trash_retention_days(ctx, &days);
    if (rc)
        return rc;
    struct db_conn *c;
    int rows = 0;
    rc = db_acquire(ctx->db, 5000, &c);
    if (rc)
        return rc;
    rc = db_begin(c);
    if (rc == GR_OK)
        rc = trash_take(c, repo, path, user ? user : "", days > 0, &rows);
    if (rc == GR_OK && rows == 0)
        rc = GR_ENOTFOUND;
    if (rc == GR_OK)
        rc = repo__bump(c);
    rc = repo__finish(c, rc);
    if (rc != GR_ENOTFOUND) {
        struct gr_sbuf k = GR_SBUF_INIT, prefix = GR_SBUF_INIT;
        repo__key_artifact(&k, repo, path);
        repo__invalidate(ctx, &k, 1);
        repo__key_artifact(&prefix, repo, path);
        if (*path)
            gr_sbuf_add(&prefix, "/", 1);
        repo__invalidate_prefix(ctx, &prefix);
        gr_sbuf_release(&k);
        gr_sbuf_release(&prefix);
    }
    return rc;
}

int artifact_list_folder(struct repo_ctx *ctx, struct gr_arena *a, const char *repo,
                         const char *path, struct folder_entry **out, int *n)
{
    struct gr_sbuf like = GR_SBUF_INIT;
    db_like_below(&like, path);
    char skip[24];
    snprintf(skip, sizeof(skip), "%zu", *path ? strlen(path) + 2 : (size_t)1);
    const char *p[3] = {repo, like.buf, skip};
    struct db_res *res = NULL;
    int rc =
        db_exec1(ctx->db, &res,
                 "SELECT name, is_dir, max(size), max(ms) FROM ("
                 " SELECT split_part(substr(path, $3::int), '/', 1) AS name,"
                 "  strpos(substr(path, $3::int), '/') > 0 AS is_dir, size, " MS(
                     "modified") " AS ms"
                                 " FROM artifacts WHERE repo = $1 AND path LIKE $2 ESCAPE '\\') s"
                                 " GROUP BY name, is_dir ORDER BY is_dir DESC, name",
                 3, p);
    gr_sbuf_release(&like);
    if (rc)
        return rc;
    db_res_arena(res, a);
    int rows = db_res_rows(res);
    if (rows == 0 && *path)
        return GR_ENOTFOUND;
    struct folder_entry *v = gr_arena_calloc(a, sizeof(*v) * (size_t)(rows ? rows : 1));
    for (int i = 0; i < rows; i++) {
        v[i].name = db_res_get(res, i, 0);
        v[i].is_folder = db_res_get(res, i, 1)[0] == 't';
        v[i].size = strtoull(db_res_get(res, i, 2), NULL, 10);
        v[i].modified_ms = strtoll(db_res_get(res, i, 3), NULL, 10);
    }
    *out = v;
    *n = rows;
    return GR_OK;
}
