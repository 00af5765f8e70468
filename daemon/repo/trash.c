/*
 * trash.c - the trash can (trash.h): moving deleted rows in, listing,
 * restoring, purging, and the retention setting.
 */
#include "repo/trash.h"
#include "repo/copymove.h"
#include "repo/internal.h"
#include "repo/security.h"

#include "base/err.h"
#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS(col) "(extract(epoch from " col ") * 1000)::bigint"
#define TRASH_SETTING "trash_retention_days"

/* ---- the retention setting ---- */

int trash_retention_days(struct repo_ctx *ctx, int *days)
{
    struct gr_arena *a = gr_arena_new();
    if (!a)
        return GR_ENOMEM;
    const char *v = NULL;
    int rc = repo__setting_get(ctx, a, TRASH_SETTING, &v);
    *days = TRASH_RETENTION_DEFAULT;
    if (rc == GR_OK) {
        char *end;
        long n = strtol(v, &end, 10);
        if (end != v && n >= 0 && n <= TRASH_RETENTION_MAX)
            *days = (int)n;
    } else if (rc == GR_ENOTFOUND) {
        rc = GR_OK;
    }
    gr_arena_free(a);
    return rc;
}

int trash_set_retention_days(struct repo_ctx *ctx, int days)
{
    if (days < 0 || days > TRASH_RETENTION_MAX)
        return GR_EINVAL;
    char v[16];
    snprintf(v, sizeof(v), "%d", days);
    return repo__setting_set(ctx, TRASH_SETTING, v);
}

/* ---- into the trash ---- */

/* Append a text[] literal of path and its ancestors ("a", "a/b", "a/b/c"); {} for the root. */
static void trash__self_and_ancestors(struct gr_sbuf *arr, const char *path)
{
    gr_sbuf_add(arr, "{", 1);
    for (const char *s = path; *path; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        gr_sbuf_adds(arr, arr->len > 1 ? ",\"" : "\"");
        for (const char *t = path; t < s; t++) {
            if (*t == '\\' || *t == '"')
                gr_sbuf_add(arr, "\\", 1);
            gr_sbuf_add(arr, t, 1);
        }
        gr_sbuf_add(arr, "\"", 1);
        if (!*s)
            break;
    }
    gr_sbuf_add(arr, "}", 1);
}

static int trash__segments(const char *path)
{
    if (!*path)
        return 0;
    int n = 1;
    for (const char *s = path; *s; s++)
        n += *s == '/';
    return n;
}

/* The aggregated properties of one path as {"key": [values]}: SQL over properties p. */
#define TRASH_PROPS_OF(repo, path)                                                                 \
    "COALESCE((SELECT jsonb_object_agg(k.key, k.vals) FROM (SELECT key, jsonb_agg(value ORDER BY"  \
    " value) AS vals FROM properties p WHERE p.repo = " repo " AND p.path = " path                 \
    " GROUP BY key) k), '{}'::jsonb)"

int trash_take(struct db_conn *c, const char *repo, const char *path, const char *user, bool keep,
               int *files)
{
    struct gr_sbuf like = GR_SBUF_INIT, anc = GR_SBUF_INIT;
    db_like_below(&like, path);
    char nseg[16];
    snprintf(nseg, sizeof(nseg), "%d", trash__segments(path) > 0 ? trash__segments(path) : 1);
    struct db_res *res = NULL;
    int rc = GR_OK;
    *files = 0;
    if (keep) {
        /* a trashed file at path or above it would clash with what arrives */
        trash__self_and_ancestors(&anc, path);
        const char *pa[2] = {repo, anc.buf};
        rc = db_exec(c, NULL, "DELETE FROM trash WHERE repo = $1 AND path = ANY ($2::text[])", 2,
                     pa);
        /* below path: trashed files at the folders of what arrives, and trashed
         * paths below a file that arrives */
        const char *pb[3] = {repo, like.buf, nseg};
        if (rc == GR_OK)
            rc =
                db_exec(c, NULL,
                        "DELETE FROM trash t WHERE t.repo = $1 AND t.path LIKE $2 ESCAPE '\\' AND"
                        " (EXISTS (SELECT 1 FROM artifacts a WHERE a.repo = $1"
                        "   AND a.path > (t.path || '/') COLLATE \"C\""
                        "   AND a.path < (t.path || '0') COLLATE \"C\")"
                        "  OR EXISTS (SELECT 1 FROM generate_series($3::int,"
                        "   cardinality(string_to_array(t.path, '/')) - 1) AS k"
                        "   WHERE EXISTS (SELECT 1 FROM artifacts a WHERE a.repo = $1 AND"
                        "    a.path = array_to_string((string_to_array(t.path, '/'))[1:k], '/'))))",
                        3, pb);
        /* the property rows of folders (paths without an artifact row) */
        const char *pf[4] = {repo, path, like.buf, user};
        if (rc == GR_OK)
            rc = db_exec(
                c, NULL,
                "INSERT INTO trash_folders (repo, path, deleted_by, properties)"
                " SELECT s.repo, s.path, $4, jsonb_object_agg(s.key, s.vals) FROM"
                " (SELECT p.repo, p.path, p.key, jsonb_agg(p.value ORDER BY p.value) AS vals"
                "  FROM properties p WHERE p.repo = $1 AND"
                "  (p.path = $2 OR p.path LIKE $3 ESCAPE '\\') AND NOT EXISTS"
                "  (SELECT 1 FROM artifacts a WHERE a.repo = p.repo AND a.path = p.path)"
                "  GROUP BY p.repo, p.path, p.key) s GROUP BY s.repo, s.path"
                " ON CONFLICT (repo, path) DO UPDATE SET deleted = now(),"
                " deleted_by = EXCLUDED.deleted_by, properties = EXCLUDED.properties",
                4, pf);
        const char *pt[4] = {repo, path, like.buf, user};
        if (rc == GR_OK)
            rc = db_exec(
                c, &res,
                "WITH d AS (DELETE FROM artifacts WHERE repo = $1 AND"
                " (path = $2 OR path LIKE $3 ESCAPE '\\') RETURNING repo, path, sha256, size,"
                " created, created_by, modified, modified_by),"
                " i AS (INSERT INTO trash (repo, path, sha256, size, created, created_by, modified,"
                " modified_by, deleted_by, properties)"
                " SELECT d.repo, d.path, d.sha256, d.size, d.created, d.created_by, d.modified,"
                " d.modified_by, $4, " TRASH_PROPS_OF(
                    "d.repo",
                    "d.path") " FROM d"
                              " ON CONFLICT (repo, path) DO UPDATE SET sha256 = EXCLUDED.sha256,"
                              " size = EXCLUDED.size, created = EXCLUDED.created,"
                              " created_by = EXCLUDED.created_by, modified = EXCLUDED.modified,"
                              " modified_by = EXCLUDED.modified_by, deleted = now(),"
                              " deleted_by = EXCLUDED.deleted_by, properties = EXCLUDED.properties "
                              "RETURNING 1)"
                              " SELECT count(*) FROM i",
                4, pt);
    } else {
        const char *pd[3] = {repo, path, like.buf};
        rc = db_exec(c, &res,
                     "WITH d AS (DELETE FROM artifacts WHERE repo = $1 AND"
                     " (path = $2 OR path LIKE $3 ESCAPE '\\') RETURNING 1) SELECT count(*) FROM d",
                     3, pd);
    }
    if (rc == GR_OK)
        *files = atoi(db_res_get(res, 0, 0));
    db_res_free(res);
    const char *pp[3] = {repo, path, like.buf};
    if (rc == GR_OK && *files > 0)
        rc = db_exec(c, NULL,
                     "DELETE FROM properties WHERE repo = $1 AND"
                     " (path = $2 OR path LIKE $3 ESCAPE '\\')",
                     3, pp);
    gr_sbuf_release(&like);
    gr_sbuf_release(&anc);
    return rc;
}

/* ---- listing ---- */

/* Rows of the trash list from offset, at most limit; the columns trash__item() reads. */
static int trash__list_rows(struct repo_ctx *ctx, const char *repo, const char *path,
                            const char *like, int offset, int limit, struct db_res **res)
{
    bool by_path = path && *path;
    char off[16], lim[16];
    snprintf(off, sizeof(off), "%d", offset);
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *p[5] = {repo, by_path ? path : NULL, by_path ? like : NULL, off, lim};
    return db_exec1(ctx->db, res,
                    "SELECT repo, path, sha256, size, " MS("created") ", " MS("modified") ", " MS(
                        "deleted") ", created_by, modified_by, deleted_by, properties::text"
                                   " FROM trash WHERE ($1::text IS NULL OR repo = $1) AND"
                                   " ($2::text IS NULL OR path = $2 OR path LIKE $3 ESCAPE '\\')"
                                   " ORDER BY repo, path OFFSET $4::int LIMIT $5::int",
                    5, p);
}

static void trash__item(struct db_res *res, int i, struct trash_item *v)
{
    v->repo = db_res_get(res, i, 0);
    v->path = db_res_get(res, i, 1);
    v->sha256 = db_res_get(res, i, 2);
    v->size = strtoull(db_res_get(res, i, 3), NULL, 10);
    v->created_ms = strtoll(db_res_get(res, i, 4), NULL, 10);
    v->modified_ms = strtoll(db_res_get(res, i, 5), NULL, 10);
    v->deleted_ms = strtoll(db_res_get(res, i, 6), NULL, 10);
    v->created_by = db_res_get(res, i, 7);
    v->modified_by = db_res_get(res, i, 8);
    v->deleted_by = db_res_get(res, i, 9);
    v->properties = db_res_get(res, i, 10);
}

int trash_list(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *path,
               const struct sec_perms *perms, int offset, int limit, struct trash_item **out,
               int *n, bool *more)
{
    if (limit < 1)
        limit = 1;
    if (limit > TRASH_LIST_MAX)
        limit = TRASH_LIST_MAX;
    if (offset < 0)
        offset = 0;
    struct gr_sbuf like = GR_SBUF_INIT;
    if (path && *path)
        db_like_below(&like, path);
    const char *likes = gr_arena_strdup(a, like.buf ? like.buf : "");
    gr_sbuf_release(&like);
    struct trash_item *v = gr_arena_calloc(a, sizeof(*v) * (size_t)limit);
    int k = 0, skip = offset;
    *more = false;
    /* unfiltered: one query; filtered: batches until limit + 1 visible rows or the end */
    bool all = !perms || perms->all;
    int batch = all ? limit + offset + 1 : TRASH_LIST_MAX;
    for (int from = 0;; from += batch) {
        struct db_res *res = NULL;
        int rc = trash__list_rows(ctx, repo, path, likes, all ? offset : from,
                                  all ? limit + 1 : batch, &res);
        if (rc)
            return rc;
        db_res_arena(res, a);
        int rows = db_res_rows(res);
        for (int i = 0; i < rows; i++) {
            if (!all &&
                !(sec_perms_on(perms, db_res_get(res, i, 0), db_res_get(res, i, 1)) & SEC_READ))
                continue;
            if (!all && skip > 0) {
                skip--;
                continue;
            }
            if (k == limit) {
                *more = true;
                break;
            }
            trash__item(res, i, &v[k++]);
        }
        if (all || *more || rows < batch)
            break;
    }
    *out = v;
    *n = k;
    return GR_OK;
}

/* ---- restore ---- */

static int trash__restore_rows(struct db_conn *c, struct gr_arena *a, const char *repo,
                               const char *path, const struct repo_config *tcfg,
                               const char *to_path, const struct copymove_actor *who, int *files,
                               const char **why)
{
    struct gr_sbuf like = GR_SBUF_INIT;
    db_like_below(&like, path);
    const char *likes = gr_arena_strdup(a, like.buf);
    gr_sbuf_release(&like);
    const char *p[3] = {repo, path, likes};
    struct db_res *res = NULL;
    int rc = db_exec(c, &res,
                     "SELECT path FROM trash WHERE repo = $1 AND"
                     " (path = $2 OR path LIKE $3 ESCAPE '\\') ORDER BY path FOR UPDATE",
                     3, p);
    if (rc)
        return rc;
    db_res_arena(res, a);
    int n = db_res_rows(res);
    if (n == 0) {
        *why = gr_arena_printf(a, "Nothing in the trash at %s:%s", repo, path);
        return GR_ENOTFOUND;
    }
    const char **src = gr_arena_alloc(a, sizeof(*src) * (size_t)n);
    const char **dst = gr_arena_alloc(a, sizeof(*dst) * (size_t)n);
    for (int i = 0; i < n; i++) {
        src[i] = db_res_get(res, i, 0);
        dst[i] = copymove__map(a, src[i], path, to_path);
        /* what one could not read where it was is not one's to take back */
        if (who->perms && !(sec_perms_on(who->perms, repo, src[i]) & SEC_READ)) {
            *why =
                gr_arena_printf(a, "user '%s' has no read permission on the trashed items at %s:%s",
                                who->user, repo, path);
            return GR_EFORBIDDEN;
        }
    }
    struct copymove_result chk = {0};
    rc = copymove__check_targets(c, a, tcfg, who, dst, n, GR_EEXIST, GR_EEXIST, false, &chk);
    if (rc == GR_OK && chk.nproblems > 0) {
        *why = chk.problems_total > 1
                   ? gr_arena_printf(a, "%s (and %d more)", chk.problems[0].message,
                                     chk.problems_total - 1)
                   : chk.problems[0].message;
        return chk.problems[chk.nproblems - 1].err;
    }
    if (rc)
        return rc;

    struct gr_sbuf srcs = GR_SBUF_INIT, dsts = GR_SBUF_INIT;
    db_text_array(&srcs, src, n);
    db_text_array(&dsts, dst, n);
    const char *pd[2] = {tcfg->key, dsts.buf};
    rc = db_exec(c, NULL, "DELETE FROM properties WHERE repo = $1 AND path = ANY ($2::text[])", 2,
                 pd);
    const char *pm[4] = {tcfg->key, repo, srcs.buf, dsts.buf};
    if (rc == GR_OK)
        rc = db_exec(c, NULL,
                     "INSERT INTO artifacts (repo, path, sha256, size, created, created_by,"
                     " modified, modified_by)"
                     " SELECT $1, m.dst, t.sha256, t.size, t.created, t.created_by, t.modified,"
                     " t.modified_by FROM unnest($3::text[], $4::text[]) AS m(src, dst)"
                     " JOIN trash t ON t.repo = $2 AND t.path = m.src",
                     4, pm);
    if (rc == GR_OK)
        rc = db_exec(c, NULL,
                     "INSERT INTO properties (repo, path, key, value)"
                     " SELECT $1, m.dst, kv.key, v.value"
                     " FROM unnest($3::text[], $4::text[]) AS m(src, dst)"
                     " JOIN trash t ON t.repo = $2 AND t.path = m.src"
                     " CROSS JOIN LATERAL jsonb_each(t.properties) AS kv"
                     " CROSS JOIN LATERAL jsonb_array_elements_text(kv.value) AS v(value)"
                     " ON CONFLICT DO NOTHING",
                     4, pm);
    /* the trashed properties of the folder and the folders below it */
    char skip[16];
    snprintf(skip, sizeof(skip), "%d", *path ? copymove__chars(path) + 2 : 1);
    const char *prefix = *to_path ? gr_arena_printf(a, "%s/", to_path) : "";
    const char *pf[7] = {tcfg->key, repo, path, to_path, prefix, skip, likes};
    if (rc == GR_OK)
        rc = db_exec(c, NULL,
                     "INSERT INTO properties (repo, path, key, value)"
                     " SELECT $1, CASE WHEN f.path = $3 THEN $4 ELSE $5 || substr(f.path, $6::int)"
                     " END, kv.key, v.value FROM trash_folders f"
                     " CROSS JOIN LATERAL jsonb_each(f.properties) AS kv"
                     " CROSS JOIN LATERAL jsonb_array_elements_text(kv.value) AS v(value)"
                     " WHERE f.repo = $2 AND (f.path = $3 OR f.path LIKE $7 ESCAPE '\\')"
                     " ON CONFLICT DO NOTHING",
                     7, pf);
    if (rc == GR_OK)
        rc = db_exec(c, NULL,
                     "DELETE FROM trash_folders WHERE repo = $1 AND"
                     " (path = $2 OR path LIKE $3 ESCAPE '\\')",
                     3, p);
    const char *pt[2] = {repo, srcs.buf};
    if (rc == GR_OK)
        rc = db_exec(c, NULL, "DELETE FROM trash WHERE repo = $1 AND path = ANY ($2::text[])", 2,
                     pt);
    gr_sbuf_release(&srcs);
    gr_sbuf_release(&dsts);
    if (rc == GR_EEXIST)
        *why = "A target was created meanwhile";
    if (rc == GR_OK)
        *files = n;
    return rc;
}

int trash_restore(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *path,
                  const char *to_repo, const char *to_path, const struct sec_perms *perms,
                  const char *user, int *files, const char **why)
{
    struct repo_config tcfg;
    *files = 0;
    *why = NULL;
    if (!*to_path) /* into a repository: at the same path there */
        to_path = path;
    int rc = repo_get(ctx, a, to_repo, &tcfg);
    if (rc == GR_ENOTFOUND)
        *why = gr_arena_printf(a, "Restore repo '%s' doesn't exist", to_repo);
    if (rc)
        return rc;
    struct db_conn *c;
    rc = db_acquire(ctx->db, 5000, &c);
    if (rc)
        return rc;
    rc = db_begin(c);
    if (rc == GR_OK)
        rc = trash__restore_rows(c, a, repo, path, &tcfg, to_path,
                                 &(struct copymove_actor){perms, user}, files, why);
    if (rc == GR_OK)
        rc = repo__bump(c);
    rc = repo__finish(c, rc);
    if (rc == GR_OK || rc == GR_EDB) { /* EDB: the commit's outcome may be unknown */
        struct gr_sbuf k = GR_SBUF_INIT;
        repo__key_artifact(&k, to_repo, to_path);
        repo__invalidate(ctx, &k, 1);
        if (*to_path)
            gr_sbuf_add(&k, "/", 1);
        repo__invalidate_prefix(ctx, &k);
        gr_sbuf_release(&k);
    }
    return rc;
}

/* ---- purging ---- */

/* Run a DELETE ... on both tables in one transaction; *purged: rows. */
static int trash__purge(struct repo_ctx *ctx, const char *sql_files, const char *sql_folders,
                        int nparams, const char *const *params, int *purged)
{
    struct db_conn *c;
    struct db_res *res = NULL;
    *purged = 0;
    int rc = db_acquire(ctx->db, 5000, &c);
    if (rc)
        return rc;
    rc = db_begin(c);
    if (rc == GR_OK)
        rc = db_exec(c, &res, sql_files, nparams, params);
    if (rc == GR_OK)
        *purged += atoi(db_res_get(res, 0, 0));
    db_res_free(res);
    res = NULL;
    if (rc == GR_OK)
        rc = db_exec(c, &res, sql_folders, nparams, params);
    if (rc == GR_OK)
        *purged += atoi(db_res_get(res, 0, 0));
    db_res_free(res);
    return repo__finish(c, rc);
}

int trash_clean(struct repo_ctx *ctx, const char *repo, const char *path, int *purged)
{
    struct gr_sbuf like = GR_SBUF_INIT;
    db_like_below(&like, path);
    const char *p[3] = {repo, path, like.buf};
    int rc = trash__purge(ctx,
                          "WITH d AS (DELETE FROM trash WHERE repo = $1 AND"
                          " (path = $2 OR path LIKE $3 ESCAPE '\\') RETURNING 1)"
                          " SELECT count(*) FROM d",
                          "WITH d AS (DELETE FROM trash_folders WHERE repo = $1 AND"
                          " (path = $2 OR path LIKE $3 ESCAPE '\\') RETURNING 1)"
                          " SELECT count(*) FROM d",
                          3, p, purged);
    gr_sbuf_release(&like);
    if (rc == GR_OK && *purged == 0)
        rc = GR_ENOTFOUND;
    return rc;
}

int trash_empty(struct repo_ctx *ctx, int *purged)
{
    return trash__purge(ctx, "WITH d AS (DELETE FROM trash RETURNING 1) SELECT count(*) FROM d",
                        "WITH d AS (DELETE FROM trash_folders RETURNING 1) SELECT count(*) FROM d",
                        0, NULL, purged);
}

int trash_purge_expired(struct repo_ctx *ctx, int *purged)
{
    int days = TRASH_RETENTION_DEFAULT;
    *purged = 0;
    int rc = trash_retention_days(ctx, &days);
    if (rc)
        return rc;
    char d[16];
    snprintf(d, sizeof(d), "%d", days);
    const char *p[1] = {d};
    return trash__purge(ctx,
                        "WITH d AS (DELETE FROM trash WHERE deleted < now() -"
                        " make_interval(days => $1::int) RETURNING 1) SELECT count(*) FROM d",
                        "WITH d AS (DELETE FROM trash_folders WHERE deleted < now() -"
                        " make_interval(days => $1::int) RETURNING 1) SELECT count(*) FROM d",
                        1, p, purged);
}
