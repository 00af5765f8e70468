/*
 * oci_db.c - the rows of the OCI registry (sql/0014_oci.sql): upload
 * sessions and their pinned parts, blob links, manifests, tags and
 * references, and the artifacts that show an image in the repository
 * (oci.h has the layout). Every change that touches artifacts commits
 * with the binary's row lock taken (as every deploy does) and invalidates
 * the artifacts' cache keys everywhere before it returns.
 */
#include "formats/oci/oci.h"

#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "crypto/crypto.h"
#include "db/db.h"
#include "repo/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static const char *oci__blob_path(struct gr_arena *a, const char *image, const char *digest)
{
    return gr_arena_printf(a, "%s/_blobs/%s", image, digest);
}

static const char *oci__manifest_path(struct gr_arena *a, const char *image, const char *digest)
{
    return gr_arena_printf(a, "%s/_manifests/%s", image, digest);
}

static const char *oci__tag_path(struct gr_arena *a, const char *image, const char *tag)
{
    return gr_arena_printf(a, "%s/_tags/%s/manifest.json", image, tag);
}

/* s with LIKE's wildcards and escape escaped ('\'). */
static const char *oci__like_escape(struct gr_arena *a, const char *s)
{
    char *out = gr_arena_alloc(a, strlen(s) * 2 + 1), *o = out;
    for (; *s; s++) {
        if (*s == '%' || *s == '_' || *s == '\\')
            *o++ = '\\';
        *o++ = *s;
    }
    *o = '\0';
    return out;
}

/* Drop the cache keys of artifact paths of repo, everywhere. */
/* The first column of each row of res as strings in a (NULL-ended), *n of
 * them; frees res. */
static const char **oci__column0(struct gr_arena *a, struct db_res *res, int *n)
{
    *n = db_res_rows(res);
    const char **out = gr_arena_calloc(a, (size_t)(*n + 1) * sizeof(*out));
    for (int i = 0; i < *n; i++)
        out[i] = gr_arena_strdup(a, db_res_get(res, i, 0));
    db_res_free(res);
    return out;
}

static void oci__invalidate(struct repo_ctx *ctx, const char *repo, const char *const *paths, int n)
{
    if (n <= 0)
        return;
    struct gr_sbuf *keys = calloc((size_t)n, sizeof(*keys));
    if (!keys) {
        /* cannot name the keys: drop them all */
        struct gr_sbuf k = GR_SBUF_INIT;
        repo__key_artifact(&k, repo, "");
        repo__invalidate_prefix(ctx, &k);
        gr_sbuf_release(&k);
        return;
    }
    for (int i = 0; i < n; i++) {
        gr_sbuf_init(&keys[i]);
        repo__key_artifact(&keys[i], repo, paths[i]);
    }
    repo__invalidate(ctx, keys, (size_t)n);
    for (int i = 0; i < n; i++)
        gr_sbuf_release(&keys[i]);
    free(keys);
}

/* A Postgres text[] literal of paths, in a. */
static const char *oci__text_array(struct gr_arena *a, const char *const *v, int n)
{
    struct gr_sbuf sb = GR_SBUF_INIT;
    gr_sbuf_adds(&sb, "{");
    for (int i = 0; i < n; i++) {
        gr_sbuf_adds(&sb, i ? ",\"" : "\"");
        for (const char *s = v[i]; *s; s++) {
            if (*s == '"' || *s == '\\')
                gr_sbuf_add(&sb, "\\", 1);
            gr_sbuf_add(&sb, s, 1);
        }
        gr_sbuf_adds(&sb, "\"");
    }
    gr_sbuf_adds(&sb, "}");
    const char *out = gr_arena_strdup(a, sb.buf);
    gr_sbuf_release(&sb);
    return out;
}

/* Take the row lock of a stored binary that is not tombstoned. GR_ENOTFOUND, GR_EDB. */
static int oci__lock_binary(struct db_conn *c, const char *sha256)
{
    const char *p[1] = {sha256};
    struct db_res *res = NULL;
    int rc = db_exec(c, &res,
                     "UPDATE binaries SET touched = now() WHERE sha256 = $1 AND tombstoned IS NULL"
                     " RETURNING 1",
                     1, p);
    if (rc == GR_OK && db_res_rows(res) != 1)
        rc = GR_ENOTFOUND;
    db_res_free(res);
    return rc;
}

static int oci__begin(struct repo_ctx *ctx, struct db_conn **c)
{
    int rc = db_acquire(ctx->db, DB_ACQUIRE_TIMEOUT_MS, c);
    if (rc)
        return rc;
    rc = db_begin(*c);
    if (rc) {
        db_release(*c);
        *c = NULL;
    }
    return rc;
}

/* ---- blobs ---- */

int oci_blob_find(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *image,
                  const char *digest, struct oci_blob *out)
{
    struct artifact art;
    int rc = artifact_get(ctx, a, repo, oci__blob_path(a, image, digest), &art);
    if (rc == GR_OK) { /* referenced by a manifest: from the cache */
        memcpy(out->sha256, art.sha256, sizeof(out->sha256));
        out->size = art.size;
        return GR_OK;
    }
    if (rc != GR_ENOTFOUND)
        return rc;
    const char *p[3] = {repo, image, digest};
    struct db_res *res = NULL;
    rc = db_exec1(ctx->db, &res,
                  "SELECT l.sha256, l.size FROM oci_blobs l JOIN binaries b ON b.sha256 = l.sha256"
                  " WHERE l.repo = $1 AND l.name = $2 AND l.digest = $3 AND b.tombstoned IS NULL",
                  3, p);
    if (rc == GR_OK && db_res_rows(res) == 1) {
        snprintf(out->sha256, sizeof(out->sha256), "%s", db_res_get(res, 0, 0));
        out->size = strtoull(db_res_get(res, 0, 1), NULL, 10);
    } else if (rc == GR_OK) {
        rc = GR_ENOTFOUND;
    }
    db_res_free(res);
    return rc;
}

static int oci__link(struct db_conn *c, const char *repo, const char *image, const char *digest,
                     const char *sha256, uint64_t size)
{
    char sz[24];
    snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
    const char *p[5] = {repo, image, digest, sha256, sz};
    return db_exec(
        c, NULL,
        "INSERT INTO oci_blobs (repo, name, digest, sha256, size) VALUES ($1,$2,$3,$4,$5)"
        " ON CONFLICT (repo, name, digest) DO UPDATE SET sha256 = EXCLUDED.sha256,"
        " size = EXCLUDED.size",
        5, p);
}

int oci_blob_link(struct repo_ctx *ctx, const char *repo, const char *image, const char *digest,
                  const char *sha256, uint64_t size)
{
    struct db_conn *c;
    int rc = oci__begin(ctx, &c);
    if (rc)
        return rc;
    rc = oci__lock_binary(c, sha256);
    if (rc == GR_OK)
        rc = oci__link(c, repo, image, digest, sha256, size);
    return repo__finish(c, rc);
}

int oci_blob_delete(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *image,
                    const char *digest)
{
    struct db_conn *c;
    int rc = oci__begin(ctx, &c);
    if (rc)
        return rc;
    const char *path = oci__blob_path(a, image, digest);
    const char *p[3] = {repo, image, digest};
    struct db_res *r1 = NULL, *r2 = NULL;
    rc = db_exec(c, &r1,
                 "DELETE FROM oci_blobs WHERE repo = $1 AND name = $2 AND digest = $3 RETURNING 1",
                 3, p);
    const char *pa[2] = {repo, path};
    if (rc == GR_OK)
        rc = db_exec(c, &r2, "DELETE FROM artifacts WHERE repo = $1 AND path = $2 RETURNING 1", 2,
                     pa);
    if (rc == GR_OK && db_res_rows(r1) + db_res_rows(r2) == 0)
        rc = GR_ENOTFOUND;
    db_res_free(r1);
    db_res_free(r2);
    if (rc == GR_OK)
        rc = db_exec(c, NULL, "DELETE FROM properties WHERE repo = $1 AND path = $2", 2, pa);
    if (rc == GR_OK)
        rc = repo__bump(c);
    rc = repo__finish(c, rc);
    if (rc == GR_OK)
        oci__invalidate(ctx, repo, &path, 1);
    return rc;
}

/* ---- upload sessions ---- */

int oci_upload_new(struct repo_ctx *ctx, const char *repo, const char *image, const char *user,
                   struct oci_upload *out)
{
    memset(out, 0, sizeof(*out));
    unsigned char raw[16];
    if (cr_random(raw, sizeof(raw)) != GR_OK)
        return GR_EIO;
    /* a random (version 4) UUID: the spec's upload location contains one */
    raw[6] = (unsigned char)((raw[6] & 0x0f) | 0x40);
    raw[8] = (unsigned char)((raw[8] & 0x3f) | 0x80);
    char *o = out->id;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        snprintf(o, 3, "%02x", raw[i]);
        o += 2;
    }
    out->repo = repo;
    out->image = image;
    /* sessions idle for a day are abandoned: their parts go to the collector */
    int rc = db_exec1(ctx->db, NULL,
                      "WITH old AS (DELETE FROM oci_uploads WHERE updated < now() - interval"
                      " '1 day' RETURNING id) DELETE FROM binary_pins WHERE owner IN"
                      " (SELECT 'oci-upload:' || id FROM old)",
                      0, NULL);
    const char *p[4] = {out->id, repo, image, user};
    if (rc == GR_OK)
        rc = db_exec1(ctx->db, NULL,
                      "INSERT INTO oci_uploads (id, repo, name, created_by) VALUES ($1,$2,$3,$4)",
                      4, p);
    return rc;
}

int oci_upload_get(struct repo_ctx *ctx, struct gr_arena *a, const char *id, const char *repo,
                   const char *image, struct oci_upload *out)
{
    memset(out, 0, sizeof(*out));
    if (!oci_upload_id_valid(id))
        return GR_ENOTFOUND;
    const char *p[3] = {id, repo, image};
    struct db_res *res = NULL;
    int rc = db_exec1(
        ctx->db, &res,
        "SELECT size, parts FROM oci_uploads WHERE id = $1 AND repo = $2 AND name = $3", 3, p);
    if (rc == GR_OK && db_res_rows(res) == 1) {
        snprintf(out->id, sizeof(out->id), "%s", id);
        out->repo = gr_arena_strdup(a, repo);
        out->image = gr_arena_strdup(a, image);
        out->size = strtoull(db_res_get(res, 0, 0), NULL, 10);
        out->parts = atoi(db_res_get(res, 0, 1));
    } else if (rc == GR_OK) {
        rc = GR_ENOTFOUND;
    }
    db_res_free(res);
    return rc;
}

int oci_upload_append(struct repo_ctx *ctx, const char *id, uint64_t start,
                      const struct artifact *art)
{
    struct db_conn *c;
    int rc = oci__begin(ctx, &c);
    if (rc)
        return rc;
    const char *p[1] = {id};
    struct db_res *res = NULL;
    /* the session's row lock orders chunks sent to several nodes at once */
    rc = db_exec(c, &res, "SELECT size, parts FROM oci_uploads WHERE id = $1 FOR UPDATE", 1, p);
    int parts = 0;
    if (rc == GR_OK && db_res_rows(res) != 1)
        rc = GR_ENOTFOUND;
    else if (rc == GR_OK && strtoull(db_res_get(res, 0, 0), NULL, 10) != start)
        rc = GR_ECONFLICT;
    else if (rc == GR_OK)
        parts = atoi(db_res_get(res, 0, 1));
    db_res_free(res);
    if (rc == GR_OK)
        rc = repo__put_binary(ctx, c, art);
    char owner[64], seq[16], sz[24];
    snprintf(owner, sizeof(owner), "oci-upload:%s", id);
    snprintf(seq, sizeof(seq), "%d", parts);
    snprintf(sz, sizeof(sz), "%llu", (unsigned long long)art->size);
    const char *pp[4] = {owner, seq, art->sha256, sz};
    if (rc == GR_OK)
        rc = db_exec(c, NULL,
                     "INSERT INTO binary_pins (owner, seq, sha256, size) VALUES ($1,$2,$3,$4)", 4,
                     pp);
    const char *pu[2] = {id, sz};
    if (rc == GR_OK)
        rc = db_exec(c, NULL,
                     "UPDATE oci_uploads SET size = size + $2::bigint, parts = parts + 1,"
                     " updated = now() WHERE id = $1",
                     2, pu);
    return repo__finish(c, rc);
}

int oci_upload_parts(struct repo_ctx *ctx, struct gr_arena *a, const char *id, char (**sha256)[65],
                     uint64_t **sizes, int *n)
{
    char owner[64];
    snprintf(owner, sizeof(owner), "oci-upload:%s", id);
    const char *p[1] = {owner};
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "SELECT sha256, size FROM binary_pins WHERE owner = $1 ORDER BY seq", 1, p);
    if (rc)
        return rc;
    *n = db_res_rows(res);
    *sha256 = gr_arena_calloc(a, (size_t)(*n + 1) * sizeof(**sha256));
    *sizes = gr_arena_calloc(a, (size_t)(*n + 1) * sizeof(**sizes));
    for (int i = 0; i < *n; i++) {
        snprintf((*sha256)[i], 65, "%s", db_res_get(res, i, 0));
        (*sizes)[i] = strtoull(db_res_get(res, i, 1), NULL, 10);
    }
    db_res_free(res);
    return GR_OK;
}

static int oci__drop_session(struct db_conn *c, const char *id, bool *found)
{
    char owner[64];
    snprintf(owner, sizeof(owner), "oci-upload:%s", id);
    const char *po[1] = {owner}, *pi[1] = {id};
    int rc = db_exec(c, NULL, "DELETE FROM binary_pins WHERE owner = $1", 1, po);
    struct db_res *res = NULL;
    if (rc == GR_OK)
        rc = db_exec(c, &res, "DELETE FROM oci_uploads WHERE id = $1 RETURNING 1", 1, pi);
    if (found)
        *found = rc == GR_OK && db_res_rows(res) == 1;
    db_res_free(res);
    return rc;
}

int oci_upload_finish(struct repo_ctx *ctx, const char *id, const char *repo, const char *image,
                      const char *digest, const struct artifact *art)
{
    struct db_conn *c;
    int rc = oci__begin(ctx, &c);
    if (rc)
        return rc;
    if (id) {
        const char *p[1] = {id};
        struct db_res *res = NULL;
        rc = db_exec(c, &res, "SELECT 1 FROM oci_uploads WHERE id = $1 FOR UPDATE", 1, p);
        if (rc == GR_OK && db_res_rows(res) != 1)
            rc = GR_ENOTFOUND;
        db_res_free(res);
    }
    if (rc == GR_OK)
        rc = art->pending ? repo__put_binary(ctx, c, art) : oci__lock_binary(c, art->sha256);
    if (rc == GR_OK)
        rc = oci__link(c, repo, image, digest, art->sha256, art->size);
    if (rc == GR_OK && id)
        rc = oci__drop_session(c, id, NULL);
    return repo__finish(c, rc);
}

int oci_upload_cancel(struct repo_ctx *ctx, const char *id)
{
    struct db_conn *c;
    int rc = oci__begin(ctx, &c);
    if (rc)
        return rc;
    bool found = false;
    rc = oci__drop_session(c, id, &found);
    if (rc == GR_OK && !found)
        rc = GR_ENOTFOUND;
    return repo__finish(c, rc);
}

/* ---- manifests ---- */

/* An artifact row for path with a's binary. */
static int oci__put_artifact(struct db_conn *c, struct gr_arena *a, const char *repo,
                             const char *path, const char *sha256, uint64_t size, const char *user)
{
    struct artifact art;
    memset(&art, 0, sizeof(art));
    art.repo = repo;
    art.path = path;
    snprintf(art.sha256, sizeof(art.sha256), "%s", sha256);
    art.size = size;
    art.modified_by = user;
    return repo__put_artifact(c, a, &art);
}

/* Replace the docker.* properties of path with pairs kv[0..2n); others stay. */
static int oci__set_props(struct db_conn *c, const char *repo, const char *path,
                          const char *const *kv, int n)
{
    const char *p[4] = {repo, path, NULL, NULL};
    int rc = db_exec(c, NULL,
                     "DELETE FROM properties WHERE repo = $1 AND path = $2 AND key LIKE 'docker.%'",
                     2, p);
    for (int i = 0; rc == GR_OK && i < n; i++) {
        p[2] = kv[2 * i];
        p[3] = kv[2 * i + 1];
        rc = db_exec(c, NULL,
                     "INSERT INTO properties (repo, path, key, value) VALUES ($1,$2,$3,$4)"
                     " ON CONFLICT DO NOTHING",
                     4, p);
    }
    return rc;
}

/* The binary (sha256, size) of a referenced blob or manifest of the image. */
static int oci__ref_binary(struct db_conn *c, struct gr_arena *a, const char *repo,
                           const char *image, const struct oci_ref *r, char sha256[65],
                           uint64_t *size)
{
    struct db_res *res = NULL;
    int rc;
    if (r->manifest) {
        const char *p[3] = {repo, image, r->digest.text};
        rc = db_exec(c, &res,
                     "SELECT sha256, size FROM oci_manifests WHERE repo = $1 AND name = $2 AND"
                     " digest = $3",
                     3, p);
    } else {
        const char *p[4] = {repo, image, r->digest.text, oci__blob_path(a, image, r->digest.text)};
        rc = db_exec(c, &res,
                     "SELECT sha256, size FROM oci_blobs WHERE repo = $1 AND name = $2 AND"
                     " digest = $3 UNION ALL SELECT sha256, size FROM artifacts WHERE repo = $1"
                     " AND path = $4 LIMIT 1",
                     4, p);
    }
    if (rc == GR_OK && db_res_rows(res) == 0)
        rc = GR_ENOTFOUND;
    if (rc == GR_OK) {
        snprintf(sha256, 65, "%s", db_res_get(res, 0, 0));
        *size = strtoull(db_res_get(res, 0, 1), NULL, 10);
    }
    db_res_free(res);
    return rc;
}

int oci_manifest_put(struct repo_ctx *ctx, struct gr_arena *a, struct oci_push *p)
{
    const struct oci_manifest *m = p->m;
    /* the artifacts written, for the invalidation */
    const char **paths = gr_arena_calloc(a, (size_t)(m->nrefs + 3) * sizeof(*paths));
    int npaths = 0;
    struct db_conn *c;
    int rc = oci__begin(ctx, &c);
    if (rc)
        return rc;
    /* every reference is in the image, locked against the collector */
    char(*shas)[65] = gr_arena_calloc(a, (size_t)(m->nrefs + 1) * sizeof(*shas));
    uint64_t *sizes = gr_arena_calloc(a, (size_t)(m->nrefs + 1) * sizeof(*sizes));
    for (int i = 0; rc == GR_OK && i < m->nrefs; i++) {
        const struct oci_ref *r = &m->refs[i];
        if (r->foreign)
            continue;
        rc = oci__ref_binary(c, a, p->repo, p->image, r, shas[i], &sizes[i]);
        if (rc == GR_OK && (int64_t)sizes[i] != r->size)
            rc = GR_EINVAL;
        if (rc == GR_ENOTFOUND || rc == GR_EINVAL)
            p->missing = r->digest.text;
    }
    /* rows are locked and written in one order (by digest), so that two
     * pushes sharing layers never wait for each other in a cycle */
    int *order = gr_arena_calloc(a, (size_t)(m->nrefs + 1) * sizeof(*order));
    int nord = 0;
    for (int i = 0; i < m->nrefs; i++)
        if (!m->refs[i].foreign)
            order[nord++] = i;
    for (int i = 1; i < nord; i++) /* insertion sort: a manifest has few references */
        for (int j = i;
             j > 0 && strcmp(m->refs[order[j - 1]].digest.text, m->refs[order[j]].digest.text) > 0;
             j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int k = 0; rc == GR_OK && k < nord; k++) {
        rc = oci__lock_binary(c, shas[order[k]]);
        if (rc == GR_ENOTFOUND)
            p->missing = m->refs[order[k]].digest.text;
    }
    if (rc == GR_OK)
        rc = repo__put_binary(ctx, c, p->art);
    char sz[24];
    snprintf(sz, sizeof(sz), "%llu", (unsigned long long)p->art->size);
    const char *pm[9] = {p->repo,       p->image,         p->digest.text, p->art->sha256, sz,
                         m->media_type, m->artifact_type, m->subject,     m->annotations};
    if (rc == GR_OK)
        rc = db_exec(c, NULL,
                     "INSERT INTO oci_manifests (repo, name, digest, sha256, size, media_type,"
                     " artifact_type, subject, annotations) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)"
                     " ON CONFLICT (repo, name, digest) DO UPDATE SET media_type ="
                     " EXCLUDED.media_type, artifact_type = EXCLUDED.artifact_type, subject ="
                     " EXCLUDED.subject, annotations = EXCLUDED.annotations",
                     9, pm);
    if (rc == GR_OK)
        rc = db_exec(c, NULL, "DELETE FROM oci_refs WHERE repo = $1 AND name = $2 AND digest = $3",
                     3, pm);
    for (int i = 0; rc == GR_OK && i < m->nrefs; i++) {
        const struct oci_ref *r = &m->refs[i];
        const char *pr[5] = {p->repo, p->image, p->digest.text, r->digest.text,
                             r->manifest ? "m" : "b"};
        rc = db_exec(c, NULL,
                     "INSERT INTO oci_refs (repo, name, digest, ref, kind) VALUES ($1,$2,$3,$4,$5)"
                     " ON CONFLICT DO NOTHING",
                     5, pr);
    }
    for (int k = 0; rc == GR_OK && k < nord; k++) {
        const struct oci_ref *r = &m->refs[order[k]];
        if (r->manifest)
            continue;
        paths[npaths] = oci__blob_path(a, p->image, r->digest.text);
        rc = oci__put_artifact(c, a, p->repo, paths[npaths], shas[order[k]], sizes[order[k]],
                               p->user);
        npaths++;
    }
    const char *mpath = oci__manifest_path(a, p->image, p->digest.text);
    if (rc == GR_OK) {
        p->art->repo = p->repo;
        p->art->path = mpath;
        p->art->modified_by = p->user;
        rc = repo__put_artifact(c, a, p->art);
        paths[npaths++] = mpath;
    }
    if (rc == GR_OK)
        rc = oci__set_props(c, p->repo, mpath, p->props, p->nprops);
    if (rc == GR_OK && p->tag) {
        const char *tpath = oci__tag_path(a, p->image, p->tag);
        const char *pt[4] = {p->repo, p->image, p->tag, p->digest.text};
        rc = db_exec(c, NULL,
                     "INSERT INTO oci_tags (repo, name, tag, digest) VALUES ($1,$2,$3,$4)"
                     " ON CONFLICT (repo, name, tag) DO UPDATE SET digest = EXCLUDED.digest,"
                     " updated = now()",
                     4, pt);
        if (rc == GR_OK)
            rc = oci__put_artifact(c, a, p->repo, tpath, p->art->sha256, p->art->size, p->user);
        if (rc == GR_OK)
            rc = oci__set_props(c, p->repo, tpath, p->props, p->nprops);
        paths[npaths++] = tpath;
    }
    if (rc == GR_OK)
        rc = repo__bump(c);
    rc = repo__finish(c, rc);
    if (rc == GR_OK)
        oci__invalidate(ctx, p->repo, paths, npaths);
    return rc;
}

int oci_manifest_type(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *image,
                      const char *digest, const char **out)
{
    const char *p[3] = {repo, image, digest};
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "SELECT media_type FROM oci_manifests WHERE repo = $1 AND name = $2 AND"
                      " digest = $3",
                      3, p);
    if (rc == GR_OK && db_res_rows(res) == 1)
        *out = gr_arena_strdup(a, db_res_get(res, 0, 0));
    else if (rc == GR_OK)
        rc = GR_ENOTFOUND;
    db_res_free(res);
    return rc;
}

/* Delete artifact rows (and their properties) of repo at paths; adds them to out. */
static int oci__delete_paths(struct db_conn *c, struct gr_arena *a, const char *repo,
                             const char *const *paths, int n)
{
    if (n == 0)
        return GR_OK;
    const char *p[2] = {repo, oci__text_array(a, paths, n)};
    int rc =
        db_exec(c, NULL, "DELETE FROM artifacts WHERE repo = $1 AND path = ANY ($2::text[])", 2, p);
    if (rc == GR_OK)
        rc = db_exec(c, NULL, "DELETE FROM properties WHERE repo = $1 AND path = ANY ($2::text[])",
                     2, p);
    return rc;
}

int oci_manifest_delete(struct repo_ctx *ctx, struct gr_arena *a, const char *repo,
                        const char *image, const char *digest)
{
    struct db_conn *c;
    int rc = oci__begin(ctx, &c);
    if (rc)
        return rc;
    const char *p[3] = {repo, image, digest};
    struct db_res *res = NULL;
    rc = db_exec(c, &res,
                 "DELETE FROM oci_manifests WHERE repo = $1 AND name = $2 AND digest = $3"
                 " RETURNING 1",
                 3, p);
    if (rc == GR_OK && db_res_rows(res) != 1)
        rc = GR_ENOTFOUND;
    db_res_free(res);
    res = NULL;
    if (rc == GR_OK)
        rc = db_exec(c, NULL, "DELETE FROM oci_refs WHERE repo = $1 AND name = $2 AND digest = $3",
                     3, p);
    if (rc == GR_OK)
        rc = db_exec(c, &res,
                     "DELETE FROM oci_tags WHERE repo = $1 AND name = $2 AND digest = $3"
                     " RETURNING tag",
                     3, p);
    int ntags = rc == GR_OK ? db_res_rows(res) : 0;
    const char **paths = gr_arena_calloc(a, (size_t)(ntags + 2) * sizeof(*paths));
    int n = 0;
    paths[n++] = oci__manifest_path(a, image, digest);
    for (int i = 0; i < ntags; i++)
        paths[n++] = oci__tag_path(a, image, db_res_get(res, i, 0));
    db_res_free(res);
    res = NULL;
    if (rc == GR_OK)
        rc = oci__delete_paths(c, a, repo, paths, n);
    /* blobs no remaining manifest of the image references leave its folder */
    const char *pb[4] = {repo, image,
                         gr_arena_printf(a, "%s/_blobs/%%", oci__like_escape(a, image)),
                         gr_arena_printf(a, "%zu", strlen(image) + strlen("/_blobs/") + 1)};
    if (rc == GR_OK)
        rc = db_exec(c, &res,
                     "DELETE FROM artifacts WHERE repo = $1 AND path LIKE $3 ESCAPE '\\' AND"
                     " substr(path, $4::int) NOT IN (SELECT ref FROM oci_refs WHERE repo = $1 AND"
                     " name = $2 AND kind = 'b') RETURNING path",
                     4, pb);
    int nb = rc == GR_OK ? db_res_rows(res) : 0;
    const char **all = gr_arena_calloc(a, (size_t)(n + nb + 1) * sizeof(*all));
    memcpy(all, paths, (size_t)n * sizeof(*all));
    for (int i = 0; i < nb; i++)
        all[n + i] = gr_arena_strdup(a, db_res_get(res, i, 0));
    db_res_free(res);
    if (rc == GR_OK && nb) {
        const char *pp[2] = {repo, oci__text_array(a, all + n, nb)};
        rc = db_exec(c, NULL, "DELETE FROM properties WHERE repo = $1 AND path = ANY ($2::text[])",
                     2, pp);
    }
    if (rc == GR_OK)
        rc = repo__bump(c);
    rc = repo__finish(c, rc);
    if (rc == GR_OK)
        oci__invalidate(ctx, repo, all, n + nb);
    return rc;
}

int oci_tag_delete(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *image,
                   const char *tag)
{
    struct db_conn *c;
    int rc = oci__begin(ctx, &c);
    if (rc)
        return rc;
    const char *p[3] = {repo, image, tag};
    struct db_res *res = NULL;
    rc = db_exec(c, &res,
                 "DELETE FROM oci_tags WHERE repo = $1 AND name = $2 AND tag = $3 RETURNING 1", 3,
                 p);
    if (rc == GR_OK && db_res_rows(res) != 1)
        rc = GR_ENOTFOUND;
    db_res_free(res);
    const char *path = oci__tag_path(a, image, tag);
    if (rc == GR_OK)
        rc = oci__delete_paths(c, a, repo, &path, 1);
    if (rc == GR_OK)
        rc = repo__bump(c);
    rc = repo__finish(c, rc);
    if (rc == GR_OK)
        oci__invalidate(ctx, repo, &path, 1);
    return rc;
}

/* ---- listings ---- */

int oci_manifest_tags(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *image,
                      const char *digest, const char ***tags, int *n)
{
    const char *p[3] = {repo, image, digest};
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "SELECT tag FROM oci_tags WHERE repo = $1 AND name = $2 AND digest = $3"
                      " ORDER BY tag",
                      3, p);
    if (rc)
        return rc;
    *tags = oci__column0(a, res, n);
    return GR_OK;
}

int oci_tags_list(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *image,
                  const char *last, int n, const char ***tags, int *count, bool *exists)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", n + 1);
    const char *p[4] = {repo, image, last, lim};
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "SELECT tag FROM oci_tags WHERE repo = $1 AND name = $2 AND ($3::text IS NULL"
                      " OR tag > $3::text COLLATE \"C\") ORDER BY tag LIMIT $4::int",
                      4, p);
    if (rc)
        return rc;
    *tags = oci__column0(a, res, count);
    res = NULL;
    *exists = *count > 0;
    if (!*exists) {
        rc = db_exec1(ctx->db, &res,
                      "SELECT EXISTS (SELECT 1 FROM oci_manifests WHERE repo = $1 AND name = $2)"
                      " OR EXISTS (SELECT 1 FROM oci_blobs WHERE repo = $1 AND name = $2)",
                      2, p);
        *exists = rc == GR_OK && db_res_get(res, 0, 0)[0] == 't';
        db_res_free(res);
    }
    return rc;
}

int oci_referrers(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *image,
                  const char *digest, const char *artifact_type, struct oci_referrer **out, int *n)
{
    const char *p[4] = {repo, image, digest, artifact_type};
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "SELECT digest, media_type, artifact_type, annotations, size FROM"
                      " oci_manifests WHERE repo = $1 AND name = $2 AND subject = $3 AND ($4::text"
                      " IS NULL OR artifact_type = $4::text) ORDER BY digest",
                      4, p);
    if (rc)
        return rc;
    *n = db_res_rows(res);
    *out = gr_arena_calloc(a, (size_t)(*n + 1) * sizeof(**out));
    for (int i = 0; i < *n; i++) {
        struct oci_referrer *r = &(*out)[i];
        r->digest = gr_arena_strdup(a, db_res_get(res, i, 0));
        r->media_type = gr_arena_strdup(a, db_res_get(res, i, 1));
        r->artifact_type =
            db_res_isnull(res, i, 2) ? NULL : gr_arena_strdup(a, db_res_get(res, i, 2));
        r->annotations =
            db_res_isnull(res, i, 3) ? NULL : gr_arena_strdup(a, db_res_get(res, i, 3));
        r->size = strtoll(db_res_get(res, i, 4), NULL, 10);
    }
    db_res_free(res);
    return GR_OK;
}

int oci_catalog(struct repo_ctx *ctx, struct gr_arena *a, const char *last, int max,
                const char ***names, int *n)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", max);
    const char *p[2] = {last, lim};
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "SELECT n FROM (SELECT DISTINCT (repo || '/' || name) COLLATE \"C\" AS n FROM"
                      " oci_manifests) x WHERE $1::text IS NULL OR n > $1::text COLLATE \"C\""
                      " ORDER BY n LIMIT $2::int",
                      2, p);
    if (rc)
        return rc;
    *names = oci__column0(a, res, n);
    return GR_OK;
}
