/*
 * props.c - properties: Artifactory's property syntax (pure parsers) and the
 * rows of the `properties` table (get, set, delete, deploy matrix).
 */
#include "repo/props.h"
#include "repo/internal.h"

#include "base/err.h"
#include "base/pct.h"
#include "base/utf8.h"
#include "base/sbuf.h"
#include "db/db.h"

#include <stdlib.h>
#include <string.h>

/* ---- pure parsing ---- */

bool props_key_valid(const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n > PROPS_KEY_MAX || !gr_utf8_valid(key, n))
        return false;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f || strchr(")(}{][*+^$\\/~`!@#%&<>;=,|", *p))
            return false;
        /* U+00B1 and U+00A7, forbidden by Artifactory */
        if (*p == 0xc2 && (p[1] == 0xb1 || p[1] == 0xa7))
            return false;
    }
    return true;
}

bool props_value_valid(const char *value)
{
    size_t n = strlen(value);
    return n <= PROPS_VALUE_MAX && gr_utf8_valid(value, n);
}

/* Bytes of s before the first unescaped character of stops (or the end). */
static size_t props__span(const char *s, const char *stops)
{
    size_t i = 0;
    while (s[i] && !strchr(stops, s[i])) {
        if (s[i] == '\\' && s[i + 1])
            i++;
        i++;
    }
    return i;
}

/* s[0..n) with backslash escapes removed, in a; NULL for a trailing lone backslash. */
static char *props__unescape(struct gr_arena *a, const char *s, size_t n)
{
    char *out = gr_arena_alloc(a, n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\') {
            if (++i == n)
                return NULL;
        }
        out[o++] = s[i];
    }
    out[o] = '\0';
    return out;
}

/* Collects entries, merging repeated keys and dropping repeated values. */
struct props__builder {
    struct gr_arena *a;
    struct props_entry *e;
    int n, cap, *vcap;
    int values;
};

static struct props_entry *props__entry(struct props__builder *b, const char *key)
{
    for (int i = 0; i < b->n; i++)
        if (!strcmp(b->e[i].key, key))
            return &b->e[i];
    if (b->n == PROPS_KEYS_MAX)
        return NULL;
    if (b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 8;
        struct props_entry *e = gr_arena_calloc(b->a, sizeof(*e) * (size_t)cap);
        int *vcap = gr_arena_calloc(b->a, sizeof(*vcap) * (size_t)cap);
        if (b->n) {
            memcpy(e, b->e, sizeof(*e) * (size_t)b->n);
            memcpy(vcap, b->vcap, sizeof(*vcap) * (size_t)b->n);
        }
        b->e = e;
        b->vcap = vcap;
        b->cap = cap;
    }
    struct props_entry *e = &b->e[b->n++];
    e->key = key;
    return e;
}

/* Add key (and value, unless NULL). GR_EINVAL over the limits. */
static int props__put(struct props__builder *b, const char *key, const char *value)
{
    struct props_entry *e = props__entry(b, key);
    if (!e)
        return GR_EINVAL;
    if (!value)
        return GR_OK;
    for (int i = 0; i < e->nvalues; i++)
        if (!strcmp(e->values[i], value))
            return GR_OK;
    if (b->values == PROPS_VALUES_MAX)
        return GR_EINVAL;
    int *cap = &b->vcap[e - b->e];
    if (e->nvalues == *cap) {
        int ncap = *cap ? *cap * 2 : 4;
        const char **v = gr_arena_alloc(b->a, sizeof(*v) * (size_t)ncap);
        if (e->nvalues)
            memcpy(v, e->values, sizeof(*v) * (size_t)e->nvalues);
        e->values = v;
        *cap = ncap;
    }
    e->values[e->nvalues++] = value;
    b->values++;
    return GR_OK;
}

static void props__done(struct props__builder *b, struct props_set *out)
{
    out->e = b->e;
    out->n = b->n;
}

/* One decoded item "k[=v1,v2]" (s[0..n)). */
static int props__item(struct props__builder *b, const char *s, size_t n)
{
    char *item = gr_arena_strndup(b->a, s, n);
    size_t kl = props__span(item, "=");
    char *key = props__unescape(b->a, item, kl);
    if (!key || !props_key_valid(key))
        return GR_EINVAL;
    if (!item[kl])
        return props__put(b, key, "");
    const char *v = item + kl + 1;
    for (;;) {
        size_t vl = props__span(v, ",");
        char *value = props__unescape(b->a, v, vl);
        if (!value || !props_value_valid(value))
            return GR_EINVAL;
        int rc = props__put(b, key, value);
        if (rc)
            return rc;
        if (!v[vl])
            return GR_OK;
        v += vl + 1;
    }
}

int props_parse_list(struct gr_arena *a, const char *s, struct props_set *out)
{
    struct props__builder b = {.a = a};
    out->e = NULL;
    out->n = 0;
    for (;;) {
        size_t n = props__span(s, "|;");
        if (n) {
            int rc = props__item(&b, s, n);
            if (rc)
                return rc;
        }
        if (!s[n])
            break;
        s += n + 1;
    }
    props__done(&b, out);
    return GR_OK;
}

int props_parse_matrix(struct gr_arena *a, const char *raw, struct props_set *out)
{
    struct props__builder b = {.a = a};
    out->e = NULL;
    out->n = 0;
    for (;;) {
        size_t n = props__span(raw, ";");
        if (n) {
            char *item = gr_pct_decode(a, raw, n);
            if (!item)
                return GR_EINVAL;
            /* a decoded ';', '|' or '%' is data: the item is parsed whole */
            int rc = props__item(&b, item, strlen(item));
            if (rc)
                return rc;
        }
        if (!raw[n])
            break;
        raw += n + 1;
    }
    props__done(&b, out);
    return GR_OK;
}

int props_parse_keys(struct gr_arena *a, const char *s, struct props_set *out)
{
    struct props__builder b = {.a = a};
    out->e = NULL;
    out->n = 0;
    for (;;) {
        size_t n = props__span(s, ",");
        if (n) {
            char *key = props__unescape(a, s, n);
            if (!key || !props_key_valid(key))
                return GR_EINVAL;
            int rc = props__put(&b, key, NULL);
            if (rc)
                return rc;
        }
        if (!s[n])
            break;
        s += n + 1;
    }
    props__done(&b, out);
    return GR_OK;
}

int props_parse_values(struct gr_arena *a, const char *s, const char ***values, int *n)
{
    struct props__builder b = {.a = a};
    *values = NULL;
    *n = 0;
    if (!*s || !strcmp(s, "*"))
        return GR_OK;
    for (;;) {
        size_t vl = props__span(s, ",");
        char *value = props__unescape(a, s, vl);
        if (!value || !props_value_valid(value))
            return GR_EINVAL;
        int rc = props__put(&b, "", value);
        if (rc)
            return rc;
        if (!s[vl])
            break;
        s += vl + 1;
    }
    *values = b.e[0].values;
    *n = b.e[0].nvalues;
    return GR_OK;
}

/* ---- storage ---- */

/* The keys of set as a text[] literal; with pairs, also parallel (key, value) literals. */
struct props__arrays {
    struct gr_sbuf keys, pk, pv;
};

static void props__arrays(struct gr_arena *a, const struct props_set *set,
                          struct props__arrays *out)
{
    gr_sbuf_init(&out->keys);
    gr_sbuf_init(&out->pk);
    gr_sbuf_init(&out->pv);
    const char **keys = gr_arena_alloc(a, sizeof(*keys) * (size_t)(set->n ? set->n : 1));
    int total = 0;
    for (int i = 0; i < set->n; i++) {
        keys[i] = set->e[i].key;
        total += set->e[i].nvalues;
    }
    db_text_array(&out->keys, keys, set->n);
    const char **pk = gr_arena_alloc(a, sizeof(*pk) * (size_t)(total ? total : 1));
    const char **pv = gr_arena_alloc(a, sizeof(*pv) * (size_t)(total ? total : 1));
    int k = 0;
    for (int i = 0; i < set->n; i++)
        for (int j = 0; j < set->e[i].nvalues; j++) {
            pk[k] = set->e[i].key;
            pv[k++] = set->e[i].values[j];
        }
    db_text_array(&out->pk, pk, total);
    db_text_array(&out->pv, pv, total);
}

static void props__arrays_release(struct props__arrays *x)
{
    gr_sbuf_release(&x->keys);
    gr_sbuf_release(&x->pk);
    gr_sbuf_release(&x->pv);
}

/*
 * Does the item exist: the root, a file, or a folder (a file below it)?
 * Folders are found by a range on the (repo, path) index: in the C
 * collation everything below "a/b" sorts between "a/b/" and "a/b0".
 */
/*
 * GR_OK when the item exists (the root, a file, or a folder: a file below
 * it), GR_ENOTFOUND when it or its repository does not. Folders are found
 * by a range on the (repo, path) index: in the C collation everything below
 * "a/b" sorts between "a/b/" and "a/b0" ('0' follows '/'). A file row is
 * locked (FOR KEY SHARE) so that a concurrent delete waits for this
 * transaction and then sees (and takes along) the rows it wrote.
 */
static int props__exists(struct db_conn *c, const char *repo, const char *path)
{
    const char *p[2] = {repo, path};
    struct db_res *res = NULL;
    int rc = db_exec(c, &res,
                     "SELECT EXISTS (SELECT 1 FROM repositories WHERE key = $1) AND ($2::text = ''"
                     " OR EXISTS (SELECT 1 FROM artifacts WHERE repo = $1 AND path = $2"
                     " FOR KEY SHARE)"
                     " OR EXISTS (SELECT 1 FROM artifacts WHERE repo = $1 AND path > $2 || '/'"
                     " AND path < $2 || '0'))",
                     2, p);
    if (rc == GR_OK && db_res_get(res, 0, 0)[0] != 't')
        rc = GR_ENOTFOUND;
    db_res_free(res);
    return rc;
}

int props_get(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *path,
              const struct props_set *keys, struct props_set *out)
{
    out->e = NULL;
    out->n = 0;
    struct gr_sbuf karr = GR_SBUF_INIT;
    bool filter = keys && keys->n > 0;
    if (filter) {
        const char **k = gr_arena_alloc(a, sizeof(*k) * (size_t)keys->n);
        for (int i = 0; i < keys->n; i++)
            k[i] = keys->e[i].key;
        db_text_array(&karr, k, keys->n);
    }
    const char *p[3] = {repo, path, karr.buf};
    struct db_conn *c;
    struct db_res *res = NULL;
    int rc = db_acquire(ctx->db, DB_ACQUIRE_TIMEOUT_MS, &c);
    if (rc) {
        gr_sbuf_release(&karr);
        return rc;
    }
    rc = props__exists(c, repo, path);
    if (rc == GR_OK)
        rc = db_exec(c, &res,
                     filter ? "SELECT key, value FROM properties WHERE repo = $1 AND path = $2"
                              " AND key = ANY($3::text[]) ORDER BY key, value"
                            : "SELECT key, value FROM properties WHERE repo = $1 AND path = $2"
                              " ORDER BY key, value",
                     filter ? 3 : 2, p);
    db_release(c);
    gr_sbuf_release(&karr);
    if (rc)
        return rc;
    db_res_arena(res, a);
    int rows = db_res_rows(res);
    int nk = 0;
    for (int i = 0; i < rows; i++)
        nk += i == 0 || strcmp(db_res_get(res, i, 0), db_res_get(res, i - 1, 0)) != 0;
    struct props_entry *e = gr_arena_calloc(a, sizeof(*e) * (size_t)(nk ? nk : 1));
    const char **vals = gr_arena_alloc(a, sizeof(*vals) * (size_t)(rows ? rows : 1));
    int k = -1;
    for (int i = 0; i < rows; i++) {
        vals[i] = db_res_get(res, i, 1);
        if (k < 0 || strcmp(e[k].key, db_res_get(res, i, 0))) {
            e[++k].key = db_res_get(res, i, 0);
            e[k].values = &vals[i];
        }
        e[k].nvalues++;
    }
    out->e = e;
    out->n = nk;
    return GR_OK;
}

/*
 * In c's transaction: replace the keys of set on path and, when recursive,
 * on every file and folder below it (folders are the ancestors of files,
 * between path and the file).
 */
static int props__replace(struct db_conn *c, struct gr_arena *a, const char *repo, const char *path,
                          const struct props_set *set, bool recursive)
{
    struct props__arrays arr;
    struct gr_sbuf like = GR_SBUF_INIT;
    props__arrays(a, set, &arr);
    db_like_below(&like, path);
    const char *p[6] = {repo, path, arr.keys.buf, like.buf, arr.pk.buf, arr.pv.buf};
    const char *pi[5] = {repo, path, arr.pk.buf, arr.pv.buf, like.buf};
    int rc;
    if (!recursive) {
        rc = db_exec(c, NULL,
                     "DELETE FROM properties WHERE repo = $1 AND path = $2"
                     " AND key = ANY($3::text[])",
                     3, p);
        if (rc == GR_OK)
            rc = db_exec(c, NULL,
                         "INSERT INTO properties (repo, path, key, value)"
                         " SELECT $1, $2, k, v FROM unnest($3::text[], $4::text[]) AS t(k, v)"
                         " ON CONFLICT DO NOTHING",
                         4, pi);
    } else {
        rc = db_exec(c, NULL,
                     "DELETE FROM properties WHERE repo = $1 AND (path = $2 OR path LIKE $4"
                     " ESCAPE '\\') AND key = ANY($3::text[])",
                     4, p);
        /* the item, the files below it, and the folders between them */
        if (rc == GR_OK)
            rc = db_exec(
                c, NULL,
                "INSERT INTO properties (repo, path, key, value)"
                " SELECT $1, i.path, t.k, t.v FROM ("
                "  SELECT $2::text COLLATE \"C\" AS path"
                "  UNION SELECT path FROM artifacts WHERE repo = $1 AND path LIKE $5 ESCAPE '\\'"
                "  UNION SELECT array_to_string(s.parts[1:d.n], '/') FROM ("
                "    SELECT string_to_array(path, '/') AS parts FROM artifacts"
                "     WHERE repo = $1 AND path LIKE $5 ESCAPE '\\') s,"
                "   generate_series(cardinality(string_to_array($2::text, '/')) + 1,"
                "                   cardinality(s.parts) - 1) AS d(n)"
                " ) i, unnest($3::text[], $4::text[]) AS t(k, v)"
                " ON CONFLICT DO NOTHING",
                5, pi);
    }
    props__arrays_release(&arr);
    gr_sbuf_release(&like);
    return rc;
}

int props_put(struct db_conn *c, struct gr_arena *a, const char *repo, const char *path,
              const struct props_set *set)
{
    return set && set->n > 0 ? props__replace(c, a, repo, path, set, false) : GR_OK;
}

int props_drop(struct db_conn *c, struct gr_arena *a, const char *repo, const char *path,
               const struct props_set *keys)
{
    if (!keys || keys->n == 0)
        return GR_OK;
    struct props__arrays arr;
    props__arrays(a, keys, &arr);
    const char *p[3] = {repo, path, arr.keys.buf};
    int rc = db_exec(c, NULL,
                     "DELETE FROM properties WHERE repo = $1 AND path = $2"
                     " AND key = ANY($3::text[])",
                     3, p);
    props__arrays_release(&arr);
    return rc;
}

/*
 * After a change of properties: drop the cached record of the item (and of
 * everything below it), so what is derived from rows and properties
 * (repo__key_folder summaries) is read again on every node. Properties
 * themselves are not cached.
 */
static void props__invalidate(struct repo_ctx *ctx, const char *repo, const char *path,
                              bool recursive)
{
    struct gr_sbuf k = GR_SBUF_INIT;
    repo__key_artifact(&k, repo, path);
    repo__invalidate(ctx, &k, 1);
    if (recursive) {
        if (*path)
            gr_sbuf_add(&k, "/", 1);
        repo__invalidate_prefix(ctx, &k);
    }
    gr_sbuf_release(&k);
}

int props_set_item(struct repo_ctx *ctx, const char *repo, const char *path,
                   const struct props_set *set, bool recursive)
{
    if (!set || set->n == 0)
        return GR_EINVAL;
    struct gr_arena *a = gr_arena_new();
    if (!a)
        return GR_ENOMEM;
    struct db_conn *c;
    int rc = db_acquire(ctx->db, DB_ACQUIRE_TIMEOUT_MS, &c);
    if (rc) {
        gr_arena_free(a);
        return rc;
    }
    rc = db_begin(c);
    if (rc == GR_OK)
        rc = props__exists(c, repo, path);
    if (rc == GR_OK)
        rc = props__replace(c, a, repo, path, set, recursive);
    if (rc == GR_OK)
        rc = repo__bump(c);
    rc = repo__finish(c, rc);
    gr_arena_free(a);
    if (rc == GR_OK || rc == GR_EDB) /* EDB: the commit's outcome may be unknown */
        props__invalidate(ctx, repo, path, recursive);
    return rc;
}

int props_delete_keys(struct repo_ctx *ctx, const char *repo, const char *path,
                      const struct props_set *keys, bool recursive)
{
    if (!keys || keys->n == 0)
        return GR_EINVAL;
    struct gr_arena *a = gr_arena_new();
    if (!a)
        return GR_ENOMEM;
    struct props__arrays arr;
    struct gr_sbuf like = GR_SBUF_INIT;
    props__arrays(a, keys, &arr);
    db_like_below(&like, path);
    const char *p[4] = {repo, path, arr.keys.buf, like.buf};
    struct db_conn *c;
    int rc = db_acquire(ctx->db, DB_ACQUIRE_TIMEOUT_MS, &c);
    if (rc == GR_OK) {
        rc = db_begin(c);
        if (rc == GR_OK)
            rc = props__exists(c, repo, path);
        if (rc == GR_OK)
            rc = db_exec(c, NULL,
                         recursive ? "DELETE FROM properties WHERE repo = $1 AND (path = $2 OR"
                                     " path LIKE $4 ESCAPE '\\') AND key = ANY($3::text[])"
                                   : "DELETE FROM properties WHERE repo = $1 AND path = $2"
                                     " AND key = ANY($3::text[])",
                         recursive ? 4 : 3, p);
        if (rc == GR_OK)
            rc = repo__bump(c);
        rc = repo__finish(c, rc);
        if (rc == GR_OK || rc == GR_EDB)
            props__invalidate(ctx, repo, path, recursive);
    }
    props__arrays_release(&arr);
    gr_sbuf_release(&like);
    gr_arena_free(a);
    return rc;
}

int props_apply_matrix(struct db_conn *c, const char *repo, const char *path, const char *matrix)
{
    if (!matrix || !*matrix)
        return GR_OK;
    struct gr_arena *a = gr_arena_new();
    if (!a)
        return GR_ENOMEM;
    struct props_set set;
    int rc = props_parse_matrix(a, matrix, &set);
    if (rc == GR_OK && set.n > 0)
        rc = props__replace(c, a, repo, path, &set, false);
    gr_arena_free(a);
    return rc;
}
