/* listing.c - folder info, file lists and the storage summary. */
#include "repo/listing.h"

#include "base/err.h"
#include "db/db.h"
#include "repo/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS(col) "(extract(epoch from " col ") * 1000)::bigint"

int listing_folder_info(struct repo_ctx *ctx, struct gr_arena *a, const char *repo,
                        const char *path, struct listing_folder *out)
{
    int rc = artifact_list_folder(ctx, a, repo, path, &out->children, &out->n);
    if (rc)
        return rc;
    struct gr_sbuf like = GR_SBUF_INIT;
    db_like_below(&like, path);
    const char *p[2] = {repo, like.buf};
    struct db_res *res = NULL;
    rc = db_exec1(ctx->db, &res,
                  "SELECT " MS("coalesce(min(a.created), r.created)") ", " MS(
                      "coalesce(max(a.modified), "
                      "r.created)") ", " MS("coalesce(max(a.updated), "
                                            "r.created)") ","
                                                          " coalesce((array_agg(a.created_by ORDER "
                                                          "BY a.created))[1], ''),"
                                                          " coalesce((array_agg(a.modified_by "
                                                          "ORDER BY a.modified DESC))[1], '')"
                                                          " FROM repositories r LEFT JOIN "
                                                          "artifacts a ON a.repo = r.key"
                                                          " AND a.path LIKE $2 ESCAPE '\\' WHERE "
                                                          "r.key = $1 GROUP BY r.created",
                  2, p);
    gr_sbuf_release(&like);
    if (rc)
        return rc;
    db_res_arena(res, a);
    if (db_res_rows(res) != 1)
        return GR_ENOTFOUND;
    out->created_ms = strtoll(db_res_get(res, 0, 0), NULL, 10);
    out->modified_ms = strtoll(db_res_get(res, 0, 1), NULL, 10);
    out->updated_ms = strtoll(db_res_get(res, 0, 2), NULL, 10);
    out->created_by = db_res_get(res, 0, 3);
    out->modified_by = db_res_get(res, 0, 4);
    return GR_OK;
}

static int listing__cmp(const void *x, const void *y)
{
    const struct listing_entry *a = x, *b = y;
    return strcmp(a->rel, b->rel);
}

int listing_list(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *path,
                 bool deep, int depth, bool folders, struct listing_entry **out, int *n)
{
    struct gr_sbuf like = GR_SBUF_INIT;
    db_like_below(&like, path);
    const char *p[2] = {repo, like.buf};
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "SELECT a.path, a.size, " MS("a.modified") ", b.sha1, a.sha256"
                                                                 " FROM artifacts a JOIN binaries "
                                                                 "b USING (sha256)"
                                                                 " WHERE a.repo = $1 AND a.path "
                                                                 "LIKE $2 ESCAPE '\\'"
                                                                 " ORDER BY a.path",
                      2, p);
    gr_sbuf_release(&like);
    if (rc)
        return rc;
    db_res_arena(res, a);
    int rows = db_res_rows(res);
    if (rows == 0 && *path)
        return GR_ENOTFOUND;
    size_t skip = *path ? strlen(path) + 1 : 0;
    int maxdepth = deep ? (depth > 0 ? depth : 1 << 30) : 1;
    /* every file contributes itself and, with folders, each of its parent folders */
    size_t cap = (size_t)rows * 2 + 1, cnt = 0;
    struct listing_entry *v = gr_arena_calloc(a, sizeof(*v) * cap);
    for (int i = 0; i < rows; i++) {
        const char *rel = db_res_get(res, i, 0) + skip;
        int64_t mod = strtoll(db_res_get(res, i, 2), NULL, 10);
        int d = 1;
        for (const char *s = rel; *s; s++) {
            if (*s != '/')
                continue;
            if (folders && d <= maxdepth) {
                if (cnt == cap) {
                    cap *= 2;
                    struct listing_entry *nv = gr_arena_calloc(a, sizeof(*nv) * cap);
                    memcpy(nv, v, sizeof(*v) * cnt);
                    v = nv;
                }
                v[cnt].rel = gr_arena_printf(a, "/%.*s", (int)(s - rel), rel);
                v[cnt].folder = true;
                v[cnt].modified_ms = mod;
                cnt++;
            }
            d++;
        }
        if (d > maxdepth)
            continue;
        if (cnt == cap) {
            cap *= 2;
            struct listing_entry *nv = gr_arena_calloc(a, sizeof(*nv) * cap);
            memcpy(nv, v, sizeof(*v) * cnt);
            v = nv;
        }
        v[cnt].rel = gr_arena_printf(a, "/%s", rel);
        v[cnt].size = strtoull(db_res_get(res, i, 1), NULL, 10);
        v[cnt].modified_ms = mod;
        v[cnt].sha1 = db_res_get(res, i, 3);
        v[cnt].sha256 = db_res_get(res, i, 4);
        cnt++;
    }
    qsort(v, cnt, sizeof(*v), listing__cmp);
    /* merge duplicate folders, keeping the newest modification below them */
    size_t o = 0;
    for (size_t i = 0; i < cnt; i++) {
        if (o > 0 && v[i].folder && v[o - 1].folder && !strcmp(v[o - 1].rel, v[i].rel)) {
            if (v[i].modified_ms > v[o - 1].modified_ms)
                v[o - 1].modified_ms = v[i].modified_ms;
            continue;
        }
        v[o++] = v[i];
    }
    *out = v;
    *n = (int)o;
    return GR_OK;
}

/*
 * The immediate children of a folder, grouped from the paths below it (the
 * range scan of artifacts_repo_path_key): name, is_dir, size, newest
 * modification. $1 repo, $2 the LIKE pattern below path, $3 where the name
 * starts in a path (1-based), $4 whether folders are wanted.
 */
#define LISTING__CHILDREN                                                                          \
    "SELECT name, is_dir, size, ms FROM (SELECT split_part(substr(path, $3::int), '/', 1) AS"      \
    " name, strpos(substr(path, $3::int), '/') > 0 AS is_dir, max(size) AS size, max(" MS(         \
        "modified") ") AS ms FROM artifacts WHERE repo = $1 AND path LIKE $2 ESCAPE '\\'"          \
                    " GROUP BY 1, 2) g WHERE $4::boolean OR NOT is_dir"

int listing_children(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *path,
                     bool folders, listing_visible_fn visible, void *arg, int64_t offset, int limit,
                     struct listing_entry **out, int *n, int64_t *total)
{
    if (offset < 0 || limit < 1 || limit > LISTING_PAGE_MAX)
        return GR_EINVAL;
    struct gr_sbuf like = GR_SBUF_INIT, pre = GR_SBUF_INIT;
    db_like_below(&like, path);
    if (*path) {
        gr_sbuf_adds(&pre, path);
        gr_sbuf_adds(&pre, "/");
    } else {
        gr_sbuf_adds(&pre, "");
    }
    char skip[24], lim[24], off[24];
    snprintf(skip, sizeof(skip), "%zu", *path ? strlen(path) + 2 : (size_t)1);
    snprintf(lim, sizeof(lim), "%d", limit);
    snprintf(off, sizeof(off), "%lld", (long long)offset);
    struct db_res *res = NULL;
    int rc;
    if (!visible) {
        /* everything is visible: the database counts, sorts and cuts the page,
         * and joins the checksums of the page's files only */
        const char *p[7] = {repo, like.buf, skip, folders ? "t" : "f", lim, off, pre.buf};
        rc = db_exec1(ctx->db, &res,
                      "SELECT s.name, s.is_dir, s.size, s.ms, s.total, b.sha1, a.sha256 FROM"
                      " (SELECT c.*, count(*) OVER () AS total FROM (" LISTING__CHILDREN
                      ") c ORDER BY is_dir DESC, name LIMIT $5::bigint OFFSET $6::bigint) s"
                      " LEFT JOIN artifacts a ON NOT s.is_dir AND a.repo = $1 AND a.path = $7 ||"
                      " s.name LEFT JOIN binaries b ON b.sha256 = a.sha256"
                      " ORDER BY s.is_dir DESC, s.name",
                      7, p);
    } else {
        const char *p[4] = {repo, like.buf, skip, folders ? "t" : "f"};
        rc = db_exec1(ctx->db, &res, LISTING__CHILDREN " ORDER BY is_dir DESC, name", 4, p);
    }
    gr_sbuf_release(&like);
    if (rc) {
        gr_sbuf_release(&pre);
        return rc;
    }
    db_res_arena(res, a);
    int rows = db_res_rows(res);
    struct listing_entry *v = gr_arena_calloc(a, sizeof(*v) * (size_t)(limit + 1));
    int cnt = 0;
    int64_t seen = 0;
    if (!visible) {
        /* an offset past the end leaves no row to carry the total: count again */
        seen = rows ? strtoll(db_res_get(res, 0, 4), NULL, 10) : 0;
        for (int i = 0; i < rows; i++, cnt++) {
            v[cnt].rel = gr_arena_printf(a, "/%s", db_res_get(res, i, 0));
            v[cnt].folder = db_res_get(res, i, 1)[0] == 't';
            v[cnt].size = v[cnt].folder ? 0 : strtoull(db_res_get(res, i, 2), NULL, 10);
            v[cnt].modified_ms = strtoll(db_res_get(res, i, 3), NULL, 10);
            v[cnt].sha1 = db_res_get(res, i, 5);
            v[cnt].sha256 = db_res_get(res, i, 6);
        }
        if (rows == 0 && offset > 0) {
            const char *p[4] = {repo, like.buf, skip, folders ? "t" : "f"};
            gr_sbuf_init(&like);
            db_like_below(&like, path);
            p[1] = like.buf;
            struct db_res *cr = NULL;
            rc = db_exec1(ctx->db, &cr, "SELECT count(*) FROM (" LISTING__CHILDREN ") c", 4, p);
            gr_sbuf_release(&like);
            if (rc) {
                gr_sbuf_release(&pre);
                return rc;
            }
            seen = strtoll(db_res_get(cr, 0, 0), NULL, 10);
            db_res_free(cr);
        }
    } else {
        /* the caller's view: every child is asked, the page is cut from what is left */
        const char **files = gr_arena_calloc(a, sizeof(*files) * (size_t)(limit + 1));
        int nfiles = 0;
        for (int i = 0; i < rows; i++) {
            const char *name = db_res_get(res, i, 0);
            if (!visible(arg, name))
                continue;
            if (seen++ < offset || cnt >= limit)
                continue;
            v[cnt].rel = gr_arena_printf(a, "/%s", name);
            v[cnt].folder = db_res_get(res, i, 1)[0] == 't';
            v[cnt].size = v[cnt].folder ? 0 : strtoull(db_res_get(res, i, 2), NULL, 10);
            v[cnt].modified_ms = strtoll(db_res_get(res, i, 3), NULL, 10);
            v[cnt].sha1 = v[cnt].sha256 = "";
            if (!v[cnt].folder)
                files[nfiles++] = gr_arena_printf(a, "%s%s", pre.buf, name);
            cnt++;
        }
        if (nfiles) {
            struct gr_sbuf arr = GR_SBUF_INIT;
            db_text_array(&arr, files, nfiles);
            const char *p[3] = {repo, arr.buf, skip};
            struct db_res *sr = NULL;
            rc = db_exec1(ctx->db, &sr,
                          "SELECT substr(a.path, $3::int), b.sha1, a.sha256 FROM artifacts a"
                          " JOIN binaries b USING (sha256) WHERE a.repo = $1"
                          " AND a.path = ANY ($2::text[]) ORDER BY 1",
                          3, p);
            gr_sbuf_release(&arr);
            if (rc) {
                gr_sbuf_release(&pre);
                return rc;
            }
            db_res_arena(sr, a);
            /* both in bytewise name order (the page's files follow its folders) */
            int k = 0, srows = db_res_rows(sr);
            for (int i = 0; i < srows; i++) {
                const char *name = db_res_get(sr, i, 0);
                while (k < cnt && (v[k].folder || strcmp(v[k].rel + 1, name) < 0))
                    k++;
                if (k < cnt && !strcmp(v[k].rel + 1, name)) {
                    v[k].sha1 = db_res_get(sr, i, 1);
                    v[k].sha256 = db_res_get(sr, i, 2);
                }
            }
        }
    }
    gr_sbuf_release(&pre);
    if (rows == 0 && *path) {
        /* nothing of the kind asked for: is there a folder at all? */
        gr_sbuf_init(&like);
        db_like_below(&like, path);
        const char *p[2] = {repo, like.buf};
        struct db_res *er = NULL;
        rc = db_exec1(
            ctx->db, &er,
            "SELECT 1 FROM artifacts WHERE repo = $1 AND path LIKE $2 ESCAPE '\\' LIMIT 1", 2, p);
        gr_sbuf_release(&like);
        if (rc)
            return rc;
        bool exists = db_res_rows(er) > 0;
        db_res_free(er);
        if (!exists)
            return GR_ENOTFOUND;
    }
    *out = v;
    *n = cnt;
    *total = seen;
    return GR_OK;
}

int listing_summary(struct repo_ctx *ctx, struct gr_arena *a, struct listing_summary *out)
{
    struct db_res *res = NULL;
    memset(out, 0, sizeof(*out));
    int rc = db_exec1(ctx->db, &res,
                      "SELECT (SELECT count(*) FROM binaries), (SELECT coalesce(sum(size), 0)"
                      " FROM binaries), count(*), coalesce(sum(size), 0) FROM artifacts",
                      0, NULL);
    if (rc)
        return rc;
    db_res_arena(res, a);
    out->binaries_count = strtoull(db_res_get(res, 0, 0), NULL, 10);
    out->binaries_bytes = strtoull(db_res_get(res, 0, 1), NULL, 10);
    out->artifacts_count = strtoull(db_res_get(res, 0, 2), NULL, 10);
    out->artifacts_bytes = strtoull(db_res_get(res, 0, 3), NULL, 10);
    /* folders: the distinct parent paths of each repository's files */
    rc = db_exec1(ctx->db, &res,
                  "SELECT r.key, r.package_type,"
                  " (SELECT count(*) FROM artifacts a WHERE a.repo = r.key),"
                  " (SELECT coalesce(sum(size), 0) FROM artifacts a WHERE a.repo = r.key),"
                  " (SELECT count(DISTINCT array_to_string((string_to_array(a.path, '/'))[1:i],"
                  "  '/')) FROM artifacts a, generate_series(1,"
                  "  array_length(string_to_array(a.path, '/'), 1) - 1) i WHERE a.repo = r.key)"
                  " FROM repositories r ORDER BY r.key",
                  0, NULL);
    if (rc)
        return rc;
    db_res_arena(res, a);
    out->nrepos = db_res_rows(res);
    out->repos = gr_arena_calloc(a, sizeof(*out->repos) * (size_t)(out->nrepos + 1));
    for (int i = 0; i < out->nrepos; i++) {
        struct listing_repo_summary *s = &out->repos[i];
        s->key = db_res_get(res, i, 0);
        s->package_type = db_res_get(res, i, 1);
        s->files = strtoull(db_res_get(res, i, 2), NULL, 10);
        s->bytes = strtoull(db_res_get(res, i, 3), NULL, 10);
        s->folders = strtoull(db_res_get(res, i, 4), NULL, 10);
    }
    return GR_OK;
}
