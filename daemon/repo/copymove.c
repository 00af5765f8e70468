/*
 * copymove.c - copy and move of artifacts (copymove.h): resolve the target
 * by Unix rules, validate every target path, then rewrite rows in one
 * transaction. The source rows are locked (FOR SHARE / FOR UPDATE) and the
 * rewrite names them explicitly, so a file uploaded meanwhile below the
 * source is neither validated nor copied half-way.
 */
#include "repo/copymove.h"
#include "repo/internal.h"
#include "repo/pattern.h"
#include "repo/security.h"

#include "base/err.h"
#include "base/log.h"
#include "db/db.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COPYMOVE_ATTEMPTS 3 /* a deadlock between two calls is retried */

/* ---- helpers (shared with trash.c) ---- */

int copymove__chars(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

const char *copymove__map(struct gr_arena *a, const char *src, const char *from, const char *to)
{
    if (!strcmp(src, from))
        return to;
    const char *rel = src + (*from ? strlen(from) + 1 : 0);
    return *to ? gr_arena_printf(a, "%s/%s", to, rel) : rel;
}

void copymove__problem(struct gr_arena *a, struct copymove_result *out, int err, const char *fmt,
                       ...)
{
    out->problems_total++;
    if (out->nproblems >= COPYMOVE_PROBLEMS_MAX)
        return;
    if (!out->problems)
        out->problems = gr_arena_calloc(a, sizeof(*out->problems) * COPYMOVE_PROBLEMS_MAX);
    char msg[1024 + 2 * COPYMOVE_PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    out->problems[out->nproblems].err = err;
    out->problems[out->nproblems].message = gr_arena_strdup(a, msg);
    out->nproblems++;
}

static int copymove__cmp(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Sort v[0..n) and drop duplicates; returns the new count. */
static int copymove__uniq(const char **v, int n)
{
    if (n == 0)
        return 0;
    qsort(v, (size_t)n, sizeof(*v), copymove__cmp);
    int k = 1;
    for (int i = 1; i < n; i++)
        if (strcmp(v[i], v[k - 1]))
            v[k++] = v[i];
    return k;
}

/* The proper ancestors of the paths v[0..n) ("a", "a/b" for "a/b/c"), distinct. */
static const char **copymove__ancestors(struct gr_arena *a, const char *const *v, int n, int *count)
{
    int cap = 0;
    for (int i = 0; i < n; i++)
        for (const char *s = v[i]; *s; s++)
            cap += *s == '/';
    const char **out = gr_arena_alloc(a, sizeof(*out) * (size_t)(cap ? cap : 1));
    int k = 0;
    for (int i = 0; i < n; i++)
        for (const char *s = v[i]; *s; s++)
            if (*s == '/')
                out[k++] = gr_arena_strndup(a, v[i], (size_t)(s - v[i]));
    *count = copymove__uniq(out, k);
    return out;
}

/* Whether who holds need on repo/path (always, without an actor). */
static bool copymove__may(const struct copymove_actor *who, const char *repo, const char *path,
                          unsigned need)
{
    return !who || !who->perms || (sec_perms_on(who->perms, repo, path) & need) == need;
}

int copymove__check_targets(struct db_conn *c, struct gr_arena *a, const struct repo_config *cfg,
                            const struct copymove_actor *who, const char *const *dst, int n,
                            int clash_err, int exists_err, bool fail_fast,
                            struct copymove_result *out)
{
#define STOP() (fail_fast && out->problems_total > 0)
    for (int i = 0; i < n && !STOP(); i++)
        if (!copymove__may(who, cfg->key, dst[i], SEC_WRITE)) {
            copymove__problem(a, out, GR_EFORBIDDEN, "user '%s' has no write permission on '%s:%s'",
                              who->user, cfg->key, dst[i]);
            out->denied = true;
        }
    if (out->problems_total > 0) /* refused for want of permission: nothing more to say */
        return GR_OK;
    for (int i = 0; i < n && !STOP(); i++) {
        if (strlen(dst[i]) > COPYMOVE_PATH_MAX)
            copymove__problem(a, out, GR_EINVAL,
                              "The target path '%.64s...' is longer than %d bytes", dst[i],
                              COPYMOVE_PATH_MAX);
        else if (!pattern_accepts(cfg->includes_pattern, cfg->excludes_pattern, dst[i]))
            copymove__problem(a, out, GR_EFORBIDDEN,
                              "The repository '%s' rejected the resolution of artifact in path "
                              "'%s' due to a conflict with its include/exclude patterns.",
                              cfg->key, dst[i]);
    }
    if (STOP() || n == 0)
        return GR_OK;

    /* target paths that are existing files or folders */
    struct gr_sbuf arr = GR_SBUF_INIT;
    db_text_array(&arr, dst, n);
    const char *p[2] = {cfg->key, arr.buf};
    struct db_res *res = NULL;
    int rc =
        db_exec(c, &res,
                "SELECT d, f, g FROM (SELECT u.d, u.i,"
                " EXISTS (SELECT 1 FROM artifacts WHERE repo = $1 AND path = u.d) AS f,"
                " EXISTS (SELECT 1 FROM artifacts WHERE repo = $1"
                "  AND path > (u.d || '/') COLLATE \"C\" AND path < (u.d || '0') COLLATE \"C\")"
                "  AS g"
                " FROM unnest($2::text[]) WITH ORDINALITY AS u(d, i)) s"
                " WHERE f OR g ORDER BY i",
                2, p);
    gr_sbuf_release(&arr);
    if (rc)
        return rc;
    db_res_arena(res, a);
    /* overwriting a file is deleting its content */
    int before = out->problems_total;
    for (int i = 0; i < db_res_rows(res) && !STOP(); i++) {
        const char *d = db_res_get(res, i, 0);
        if (db_res_get(res, i, 1)[0] == 't' && exists_err == GR_OK &&
            !copymove__may(who, cfg->key, d, SEC_WRITE | SEC_DELETE)) {
            copymove__problem(a, out, GR_EFORBIDDEN,
                              "Not enough permissions to overwrite artifact '%s:%s' (user '%s'"
                              " needs DELETE permission).",
                              cfg->key, d, who->user);
            out->denied = true;
        }
    }
    if (out->problems_total > before)
        return GR_OK;
    for (int i = 0; i < db_res_rows(res) && !STOP(); i++) {
        const char *d = db_res_get(res, i, 0);
        if (db_res_get(res, i, 2)[0] == 't')
            copymove__problem(a, out, clash_err, "The target '%s:%s' is an existing folder",
                              cfg->key, d);
        else if (exists_err != GR_OK)
            copymove__problem(a, out, exists_err, "The target '%s:%s' already exists", cfg->key, d);
    }
    if (STOP())
        return GR_OK;

    /* an existing file where a target needs a folder */
    int na = 0;
    const char **anc = copymove__ancestors(a, dst, n, &na);
    if (na == 0)
        return GR_OK;
    struct gr_sbuf arr2 = GR_SBUF_INIT;
    db_text_array(&arr2, anc, na);
    const char *p2[2] = {cfg->key, arr2.buf};
    res = NULL;
    rc = db_exec(c, &res,
                 "SELECT path FROM artifacts WHERE repo = $1 AND path = ANY ($2::text[])"
                 " ORDER BY path",
                 2, p2);
    gr_sbuf_release(&arr2);
    if (rc)
        return rc;
    db_res_arena(res, a);
    for (int i = 0; i < db_res_rows(res) && !STOP(); i++)
        copymove__problem(a, out, clash_err,
                          "The target '%s:%s' is an existing file: nothing can be created below it",
                          cfg->key, db_res_get(res, i, 0));
    return GR_OK;
#undef STOP
}

/* ---- copy and move ---- */

static const char *copymove__base(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static const char *copymove__join(struct gr_arena *a, const char *dir, const char *name)
{
    if (!*dir)
        return name;
    if (!*name)
        return dir;
    return gr_arena_printf(a, "%s/%s", dir, name);
}

/* b is a or lies below a ("" is above everything). */
static bool copymove__within(const char *b, const char *a)
{
    size_t n = strlen(a);
    if (n == 0)
        return true;
    return !strncmp(b, a, n) && (b[n] == '\0' || b[n] == '/');
}

/* Folders of a tree copy: the source folder itself (unless the root) and every folder below. */
static int copymove__count_folders(struct gr_arena *a, const char *const *src, int n,
                                   const char *from)
{
    const char **rels = gr_arena_alloc(a, sizeof(*rels) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++)
        rels[i] = src[i] + (*from ? strlen(from) + 1 : 0);
    int na = 0;
    copymove__ancestors(a, rels, n, &na);
    return na + (*from ? 1 : 0);
}

struct copymove__plan {
    bool is_file;
    const char **src, **dst; /* files */
    int n;
    const char *like; /* below the source (NULL for a file) */
};

/* Exists a file at path / anything below path in repo (inside c's transaction). */
static int copymove__probe(struct db_conn *c, const char *repo, const char *path, bool *file,
                           bool *folder)
{
    struct gr_sbuf like = GR_SBUF_INIT;
    db_like_below(&like, path);
    const char *p[3] = {repo, path, like.buf};
    struct db_res *res = NULL;
    int rc =
        db_exec(c, &res,
                "SELECT EXISTS (SELECT 1 FROM artifacts WHERE repo = $1 AND path = $2),"
                " EXISTS (SELECT 1 FROM artifacts WHERE repo = $1 AND path LIKE $3 ESCAPE '\\')",
                3, p);
    gr_sbuf_release(&like);
    if (rc == GR_OK) {
        *file = *path && db_res_get(res, 0, 0)[0] == 't';
        *folder = db_res_get(res, 0, 1)[0] == 't';
    }
    db_res_free(res);
    return rc;
}

/*
 * Load and lock the source, resolve the target, validate. GR_OK with
 * out->nproblems == 0 means the plan may run.
 */
static int copymove__prepare(struct db_conn *c, struct gr_arena *a,
                             const struct copymove_request *q, const struct repo_config *dcfg,
                             struct copymove__plan *pl, struct copymove_result *out)
{
    const char *sp = q->src_path, *t = q->dst_path;
    struct gr_sbuf like = GR_SBUF_INIT;
    db_like_below(&like, sp);
    pl->like = gr_arena_strdup(a, like.buf);
    gr_sbuf_release(&like);
    const char *p[3] = {q->src_repo, sp, pl->like};
    struct db_res *res = NULL;
    const char *sql = q->dry_run ? "SELECT path FROM artifacts WHERE repo = $1 AND"
                                   " (path = $2 OR path LIKE $3 ESCAPE '\\') ORDER BY path"
                      : q->move
                          ? "SELECT path FROM artifacts WHERE repo = $1 AND"
                            " (path = $2 OR path LIKE $3 ESCAPE '\\') ORDER BY path FOR UPDATE"
                          : "SELECT path FROM artifacts WHERE repo = $1 AND"
                            " (path = $2 OR path LIKE $3 ESCAPE '\\') ORDER BY path FOR SHARE";
    int rc = db_exec(c, &res, sql, 3, p);
    if (rc)
        return rc;
    db_res_arena(res, a);
    int rows = db_res_rows(res);
    pl->is_file = false;
    for (int i = 0; i < rows && *sp && !q->src_slash; i++)
        pl->is_file |= !strcmp(db_res_get(res, i, 0), sp);
    pl->src = gr_arena_alloc(a, sizeof(*pl->src) * (size_t)(rows ? rows : 1));
    pl->n = 0;
    if (pl->is_file) {
        pl->src[pl->n++] = sp;
        pl->like = NULL;
    } else {
        for (int i = 0; i < rows; i++)
            if (strcmp(db_res_get(res, i, 0), sp))
                pl->src[pl->n++] = db_res_get(res, i, 0);
    }
    if (pl->n == 0) {
        out->message = gr_arena_printf(a, "Could not find item at %s:%s", q->src_repo, sp);
        return GR_ENOTFOUND;
    }

    /* the target, by Unix rules */
    bool t_file = false, t_dir = false;
    rc = copymove__probe(c, q->dst_repo, t, &t_file, &t_dir);
    if (rc)
        return rc;
    const char *tr;
    if (pl->is_file) {
        bool under = q->dst_slash || !*t || (t_dir && !t_file);
        tr = under ? copymove__join(a, t, copymove__base(sp)) : t;
    } else {
        if (t_file) {
            out->message =
                gr_arena_printf(a, "Can't %s folder %s:%s onto the existing file %s:%s",
                                q->move ? "move" : "copy", q->src_repo, sp, q->dst_repo, t);
            return GR_EINVAL;
        }
        bool under = q->dst_slash || !*t || t_dir;
        tr = under ? copymove__join(a, t, copymove__base(sp)) : t;
    }
    out->dst_path = tr;

    /* overlap within one repository */
    if (!strcmp(q->src_repo, q->dst_repo)) {
        const char *verb = q->move ? "move" : "copy";
        if (!strcmp(tr, sp)) {
            out->message = gr_arena_printf(
                a, "Skipping %s %s:%s: Destination and source are the same", verb, q->src_repo, sp);
            return GR_ECONFLICT;
        }
        if (!pl->is_file && copymove__within(tr, sp)) {
            out->message = gr_arena_printf(a, "Can't %s %s:%s into itself (%s:%s)", verb,
                                           q->src_repo, sp, q->dst_repo, tr);
            return GR_ECONFLICT;
        }
        if (!pl->is_file && copymove__within(sp, tr)) {
            out->message = gr_arena_printf(a, "Can't %s %s:%s onto %s:%s, which contains it", verb,
                                           q->src_repo, sp, q->dst_repo, tr);
            return GR_ECONFLICT;
        }
    }

    pl->dst = gr_arena_alloc(a, sizeof(*pl->dst) * (size_t)pl->n);
    for (int i = 0; i < pl->n; i++)
        pl->dst[i] = copymove__map(a, pl->src[i], sp, tr);
    out->files = pl->n;
    out->folders = pl->is_file ? 0 : copymove__count_folders(a, pl->src, pl->n, sp);
    struct copymove_actor who = {q->perms, q->user};
    return copymove__check_targets(c, a, dcfg, &who, pl->dst, pl->n, GR_EINVAL, GR_OK, q->fail_fast,
                                   out);
}

/* Rewrite the rows of a validated plan. */
static int copymove__execute(struct db_conn *c, struct gr_arena *a,
                             const struct copymove_request *q, const struct copymove__plan *pl,
                             const struct copymove_result *out)
{
    struct gr_sbuf srcs = GR_SBUF_INIT, dsts = GR_SBUF_INIT;
    db_text_array(&srcs, pl->src, pl->n);
    db_text_array(&dsts, pl->dst, pl->n);
    struct db_res *res = NULL;

    /* an overwritten file takes the source's properties, not a mix */
    const char *pd[2] = {q->dst_repo, dsts.buf};
    int rc = db_exec(c, NULL, "DELETE FROM properties WHERE repo = $1 AND path = ANY ($2::text[])",
                     2, pd);
    if (rc == GR_OK && q->move) {
        const char *pm[4] = {q->dst_repo, q->src_repo, srcs.buf, dsts.buf};
        rc = db_exec(c, &res,
                     "WITH i AS (INSERT INTO artifacts (repo, path, sha256, size, created,"
                     " created_by, modified, modified_by)"
                     " SELECT $1, m.dst, a.sha256, a.size, a.created, a.created_by, a.modified,"
                     " a.modified_by FROM unnest($3::text[], $4::text[]) AS m(src, dst)"
                     " JOIN artifacts a ON a.repo = $2 AND a.path = m.src"
                     " ON CONFLICT (repo, path) DO UPDATE SET sha256 = EXCLUDED.sha256,"
                     " size = EXCLUDED.size, created = EXCLUDED.created,"
                     " created_by = EXCLUDED.created_by, modified = EXCLUDED.modified,"
                     " modified_by = EXCLUDED.modified_by, updated = now() RETURNING 1)"
                     " SELECT count(*) FROM i",
                     4, pm);
    } else if (rc == GR_OK) {
        const char *pc[5] = {q->dst_repo, q->src_repo, srcs.buf, dsts.buf, q->user ? q->user : ""};
        rc = db_exec(c, &res,
                     "WITH i AS (INSERT INTO artifacts (repo, path, sha256, size, created_by,"
                     " modified_by)"
                     " SELECT $1, m.dst, a.sha256, a.size, $5, $5"
                     " FROM unnest($3::text[], $4::text[]) AS m(src, dst)"
                     " JOIN artifacts a ON a.repo = $2 AND a.path = m.src"
                     " ON CONFLICT (repo, path) DO UPDATE SET sha256 = EXCLUDED.sha256,"
                     " size = EXCLUDED.size, modified = now(), modified_by = EXCLUDED.modified_by,"
                     " updated = now() RETURNING 1)"
                     " SELECT count(*) FROM i",
                     5, pc);
    }
    if (rc == GR_OK && atoi(db_res_get(res, 0, 0)) != pl->n)
        rc = GR_ECONFLICT; /* cannot happen while the source rows are locked */
    db_res_free(res);

    /* properties of the source and everything below it, files and folders */
    char skip[16];
    snprintf(skip, sizeof(skip), "%d", *q->src_path ? copymove__chars(q->src_path) + 2 : 1);
    const char *tr = out->dst_path;
    const char *prefix = *tr ? gr_arena_printf(a, "%s/", tr) : "";
    const char *pp[7] = {q->dst_repo, q->src_repo, q->src_path, tr, prefix, skip, pl->like};
    if (rc == GR_OK)
        rc = db_exec(c, NULL,
                     "INSERT INTO properties (repo, path, key, value)"
                     " SELECT $1, CASE WHEN p.path = $3 THEN $4 ELSE $5 || substr(p.path, $6::int)"
                     " END, p.key, p.value FROM properties p"
                     " WHERE p.repo = $2 AND (p.path = $3 OR p.path LIKE $7 ESCAPE '\\')"
                     " ON CONFLICT DO NOTHING",
                     7, pp);
    if (rc == GR_OK && q->move) {
        const char *pa[2] = {q->src_repo, srcs.buf};
        rc = db_exec(c, NULL, "DELETE FROM artifacts WHERE repo = $1 AND path = ANY ($2::text[])",
                     2, pa);
        const char *pr[3] = {q->src_repo, q->src_path, pl->like};
        if (rc == GR_OK)
            rc = db_exec(c, NULL,
                         "DELETE FROM properties WHERE repo = $1 AND"
                         " (path = $2 OR path LIKE $3 ESCAPE '\\')",
                         3, pr);
    }
    gr_sbuf_release(&srcs);
    gr_sbuf_release(&dsts);
    if (rc == GR_OK)
        rc = repo__bump(c);
    return rc;
}

static bool copymove__deadlock(struct db_conn *c)
{
    const char *st = db_last_sqlstate(c);
    return !strcmp(st, "40P01") || !strcmp(st, "40001");
}

/* Drop the cached records under the source or target of a plan. */
static void copymove__invalidate(struct repo_ctx *ctx, const char *repo, const char *path,
                                 bool folder)
{
    struct gr_sbuf k = GR_SBUF_INIT;
    repo__key_artifact(&k, repo, path);
    repo__invalidate(ctx, &k, 1);
    if (folder) {
        if (*path)
            gr_sbuf_add(&k, "/", 1);
        repo__invalidate_prefix(ctx, &k);
    }
    gr_sbuf_release(&k);
}

/* One try in one transaction; *retry when it died in a deadlock. */
static int copymove__attempt(struct repo_ctx *ctx, struct gr_arena *a,
                             const struct copymove_request *q, const struct repo_config *dcfg,
                             struct copymove_result *out, bool *retry)
{
    struct copymove__plan pl = {0};
    struct db_conn *c;
    bool executed = false;
    *retry = false;
    int rc = db_acquire(ctx->db, 5000, &c);
    if (rc)
        return rc;
    rc = db_begin(c);
    if (rc == GR_OK)
        rc = copymove__prepare(c, a, q, dcfg, &pl, out);
    if (rc == GR_OK && out->nproblems > 0)
        rc = out->problems[out->nproblems - 1].err;
    if (rc == GR_OK && !q->dry_run) {
        executed = true;
        rc = copymove__execute(c, a, q, &pl, out);
    }
    if (rc == GR_EDB)
        *retry = copymove__deadlock(c);
    if (q->dry_run) {
        db_rollback(c);
        db_release(c);
    } else {
        rc = repo__finish(c, rc);
    }
    if (executed) { /* also when the commit's outcome is unknown */
        copymove__invalidate(ctx, q->dst_repo, out->dst_path, !pl.is_file);
        if (q->move)
            copymove__invalidate(ctx, q->src_repo, q->src_path, !pl.is_file);
    }
    if (rc == GR_ECONFLICT && !out->message)
        out->message = "the source changed during the operation; try again";
    return rc;
}

int copymove_run(struct repo_ctx *ctx, struct gr_arena *a, const struct copymove_request *q,
                 struct copymove_result *out)
{
    struct repo_config scfg, dcfg;
    memset(out, 0, sizeof(*out));
    int rc = repo_get(ctx, a, q->src_repo, &scfg);
    if (rc == GR_ENOTFOUND)
        out->message = gr_arena_printf(a, "Repository %s not found", q->src_repo);
    if (rc)
        return rc;
    rc = repo_get(ctx, a, q->dst_repo, &dcfg);
    if (rc == GR_ENOTFOUND)
        out->message = gr_arena_printf(a, "Target repository %s not found", q->dst_repo);
    if (rc)
        return rc;
    if (strcmp(dcfg.rclass,
               "local")) { /* a remote's files are its upstream's; a virtual has none */
        out->message = gr_arena_printf(a,
                                       "Target repository %s is a %s repository: only local"
                                       " repositories take copies",
                                       q->dst_repo, dcfg.rclass);
        return GR_EINVAL;
    }
    if (q->move && !strcmp(scfg.rclass, "virtual")) {
        out->message =
            gr_arena_printf(a, "Repository %s is virtual: it stores nothing", q->src_repo);
        return GR_EINVAL;
    }
    for (int i = 0; i < COPYMOVE_ATTEMPTS; i++) {
        bool retry = false;
        memset(out, 0, sizeof(*out));
        rc = copymove__attempt(ctx, a, q, &dcfg, out, &retry);
        if (!retry)
            break;
        gr_warn("copymove: deadlock, trying again (%d)", i + 1);
    }
    return rc;
}
