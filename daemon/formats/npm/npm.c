/*
 * npm.c - the npm registry's rows (sql/0007_npm.sql) and the pure helpers
 * of npm.h: names, streaming base64, locating the tarball in a publish
 * body, semver order, packument assembly.
 */
#include "formats/npm/npm.h"
#include "repo/security.h"

#include "base/err.h"
#include "base/pct.h"
#include "crypto/crypto.h"
#include "db/db.h"
#include "repo/internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MS(col) "(extract(epoch from " col ") * 1000)::bigint"
#define US(col) "(extract(epoch from " col ") * 1000000)::bigint"

/* ---- names ---- */

static bool npm__part_valid(const char *s, size_t n)
{
    if (n == 0 || s[0] == '.' || s[0] == '_')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == '_' || c == '~'))
            return false;
    }
    return true;
}

bool npm_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > NPM_NAME_MAX)
        return false;
    if (name[0] != '@')
        return npm__part_valid(name, n);
    const char *slash = strchr(name, '/');
    if (!slash)
        return false;
    return npm__part_valid(name + 1, (size_t)(slash - name - 1)) &&
           npm__part_valid(slash + 1, n - (size_t)(slash - name) - 1);
}

char *npm_unescape(struct gr_arena *a, const char *s, size_t n)
{
    return gr_pct_decode(a, s, n);
}

int npm_split_name(struct gr_arena *a, const char *raw, const char **name, const char **tail)
{
    size_t l1 = strcspn(raw, "/?");
    char *first = npm_unescape(a, raw, l1);
    if (!first)
        return GR_EINVAL;
    const char *rest = raw + l1;
    if (first[0] == '@' && !strchr(first, '/')) {
        /* "@scope/name" with a literal slash */
        if (*rest != '/')
            return GR_EINVAL;
        rest++;
        size_t l2 = strcspn(rest, "/?");
        char *second = npm_unescape(a, rest, l2);
        if (!second)
            return GR_EINVAL;
        first = gr_arena_printf(a, "%s/%s", first, second);
        rest += l2;
    }
    if (!npm_name_valid(first))
        return GR_EINVAL;
    if (*rest == '/')
        rest++;
    else if (*rest == '?')
        rest = "";
    *name = first;
    *tail = rest;
    return GR_OK;
}

const char *npm_basename(const char *name)
{
    const char *slash = name[0] == '@' ? strchr(name, '/') : NULL;
    return slash ? slash + 1 : name;
}

/* ---- base64 ---- */

static int npm__b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int npm_b64_decode(struct npm_b64 *s, const char *in, size_t n, unsigned char *out, size_t *outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '\\')
            continue; /* "\/" is a JSON escape of '/' (the next char is checked) */
        if (c == '=') {
            s->ended = true;
            continue;
        }
        if (c == '\n' || c == '\r')
            continue;
        int v = npm__b64val(c);
        if (v < 0 || s->ended) {
            *outlen = o;
            return GR_EINVAL;
        }
        s->acc = (s->acc << 6) | (uint32_t)v;
        s->bits += 6;
        if (s->bits >= 8) {
            s->bits -= 8;
            out[o++] = (unsigned char)((s->acc >> s->bits) & 0xff);
        }
    }
    *outlen = o;
    return GR_OK;
}

int npm_b64_finish(const struct npm_b64 *s)
{
    /* leftover bits must be fewer than a byte and zero */
    if (s->bits >= 6 || (s->acc & ((1u << s->bits) - 1)))
        return GR_EINVAL;
    return GR_OK;
}

/* ---- locating the attachment ---- */

static void npm__ws(const char *b, size_t len, size_t *i)
{
    while (*i < len && (b[*i] == ' ' || b[*i] == '\t' || b[*i] == '\n' || b[*i] == '\r'))
        (*i)++;
}

/* At a '"': set [*s, *e) to the contents and step past the closing quote. */
static bool npm__string(const char *b, size_t len, size_t *i, size_t *s, size_t *e)
{
    if (*i >= len || b[*i] != '"')
        return false;
    size_t j = *i + 1;
    *s = j;
    while (j < len && b[j] != '"') {
        if (b[j] == '\\')
            j++;
        j++;
    }
    if (j >= len)
        return false;
    *e = j;
    *i = j + 1;
    return true;
}

/* Skip any value (iteratively: no recursion on deep input). */
static bool npm__skip(const char *b, size_t len, size_t *i)
{
    size_t s, e;
    npm__ws(b, len, i);
    if (*i >= len)
        return false;
    char c = b[*i];
    if (c == '"')
        return npm__string(b, len, i, &s, &e);
    if (c == '{' || c == '[') {
        size_t depth = 0;
        while (*i < len) {
            c = b[*i];
            if (c == '"') {
                if (!npm__string(b, len, i, &s, &e))
                    return false;
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']') {
                if (--depth == 0) {
                    (*i)++;
                    return true;
                }
            }
            (*i)++;
        }
        return false;
    }
    size_t start = *i;
    while (*i < len && !strchr(",}] \t\r\n", b[*i]))
        (*i)++;
    return *i > start;
}

/* Iterate an object's members: at '{' or after a member; false at the end or on error. */
static int npm__member(const char *b, size_t len, size_t *i, bool first, size_t *ks, size_t *ke)
{
    npm__ws(b, len, i);
    if (*i >= len)
        return -1;
    if (first) {
        if (b[*i] != '{')
            return -1;
        (*i)++;
        npm__ws(b, len, i);
        if (*i < len && b[*i] == '}') {
            (*i)++;
            return 0;
        }
    } else {
        if (b[*i] == '}') {
            (*i)++;
            return 0;
        }
        if (b[*i] != ',')
            return -1;
        (*i)++;
        npm__ws(b, len, i);
    }
    if (!npm__string(b, len, i, ks, ke))
        return -1;
    npm__ws(b, len, i);
    if (*i >= len || b[*i] != ':')
        return -1;
    (*i)++;
    npm__ws(b, len, i);
    return 1;
}

static bool npm__key_is(const char *b, size_t ks, size_t ke, const char *k)
{
    return ke - ks == strlen(k) && !memcmp(b + ks, k, ke - ks);
}

int npm_find_attachment(struct gr_arena *a, const char *b, size_t len, size_t *off, size_t *dlen,
                        const char **file)
{
    size_t i = 0, ks, ke;
    int found = 0;
    int m;
    for (bool first = true; (m = npm__member(b, len, &i, first, &ks, &ke)) == 1; first = false) {
        if (!npm__key_is(b, ks, ke, "_attachments")) {
            if (!npm__skip(b, len, &i))
                return GR_EINVAL;
            continue;
        }
        if (found)
            return GR_EINVAL; /* a second _attachments */
        int m2;
        size_t fs, fe;
        int natt = 0;
        for (bool f2 = true; (m2 = npm__member(b, len, &i, f2, &fs, &fe)) == 1; f2 = false) {
            if (++natt > 1)
                return GR_EINVAL;
            *file = gr_arena_strndup(a, b + fs, fe - fs);
            int m3, ndata = 0;
            size_t ds, de;
            for (bool f3 = true; (m3 = npm__member(b, len, &i, f3, &ds, &de)) == 1; f3 = false) {
                if (npm__key_is(b, ds, de, "data")) {
                    size_t s, e;
                    if (ndata++ || !npm__string(b, len, &i, &s, &e))
                        return GR_EINVAL;
                    *off = s;
                    *dlen = e - s;
                } else if (!npm__skip(b, len, &i)) {
                    return GR_EINVAL;
                }
            }
            if (m3 < 0 || ndata != 1)
                return GR_EINVAL;
        }
        if (m2 < 0 || natt != 1)
            return GR_EINVAL;
        found = 1;
    }
    if (m < 0)
        return GR_EINVAL;
    return found ? GR_OK : GR_ENOTFOUND;
}

/* ---- semver ---- */

struct npm__semver {
    const char *num[3];
    size_t numlen[3];
    const char *pre; /* NULL: none */
    size_t prelen;
};

static bool npm__digits(const char *s, size_t *n)
{
    size_t k = 0;
    while (isdigit((unsigned char)s[k]))
        k++;
    *n = k;
    return k > 0;
}

static bool npm__semver_parse(const char *v, struct npm__semver *out)
{
    const char *p = v;
    if (*p == 'v' || *p == '=')
        p++;
    for (int k = 0; k < 3; k++) {
        out->num[k] = p;
        if (!npm__digits(p, &out->numlen[k]))
            return false;
        p += out->numlen[k];
        if (k < 2) {
            if (*p != '.')
                return false;
            p++;
        }
    }
    out->pre = NULL;
    out->prelen = 0;
    if (*p == '-') {
        out->pre = ++p;
        out->prelen = strcspn(p, "+");
        p += out->prelen;
    }
    return *p == '\0' || *p == '+';
}

static int npm__numcmp(const char *a, size_t an, const char *b, size_t bn)
{
    while (an > 1 && *a == '0')
        a++, an--;
    while (bn > 1 && *b == '0')
        b++, bn--;
    if (an != bn)
        return an < bn ? -1 : 1;
    return memcmp(a, b, an);
}

static int npm__precmp(const char *a, size_t an, const char *b, size_t bn)
{
    for (;;) {
        if (an == 0 || bn == 0)
            return an == bn ? 0 : an == 0 ? -1 : 1;
        size_t la = 0, lb = 0;
        while (la < an && a[la] != '.')
            la++;
        while (lb < bn && b[lb] != '.')
            lb++;
        size_t da, db;
        bool na = npm__digits(a, &da) && da == la, nb = npm__digits(b, &db) && db == lb;
        int c;
        if (na && nb)
            c = npm__numcmp(a, la, b, lb);
        else if (na != nb)
            c = na ? -1 : 1;
        else {
            c = memcmp(a, b, la < lb ? la : lb);
            if (!c && la != lb)
                c = la < lb ? -1 : 1;
        }
        if (c)
            return c < 0 ? -1 : 1;
        a += la, an -= la, b += lb, bn -= lb;
        if (an) /* skip the dots */
            a++, an--;
        if (bn)
            b++, bn--;
        if (!an && !bn)
            return 0;
    }
}

int npm_semver_cmp(const char *a, const char *b)
{
    struct npm__semver x, y;
    bool px = npm__semver_parse(a, &x), py = npm__semver_parse(b, &y);
    if (!px || !py) {
        if (px != py)
            return px ? 1 : -1;
        int c = strcmp(a, b);
        return c < 0 ? -1 : c > 0;
    }
    for (int k = 0; k < 3; k++) {
        int c = npm__numcmp(x.num[k], x.numlen[k], y.num[k], y.numlen[k]);
        if (c)
            return c < 0 ? -1 : 1;
    }
    if (!x.pre || !y.pre)
        return x.pre == y.pre ? 0 : x.pre ? -1 : 1;
    return npm__precmp(x.pre, x.prelen, y.pre, y.prelen);
}

/* ---- packuments ---- */

static void npm__iso(int64_t ms, char *buf, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + k, n - k, ".%03dZ", (int)(ms % 1000));
}

static const char *const npm__abbrev_keys[] = {
    "name",
    "version",
    "dist",
    "deprecated",
    "dependencies",
    "optionalDependencies",
    "devDependencies",
    "bundleDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "bin",
    "directories",
    "engines",
    "cpu",
    "os",
    "_hasShrinkwrap",
    "hasInstallScript",
    "funding",
    "license",
    "acceptDependencies",
    "libc",
};

static const char *const npm__top_keys[] = {
    "description", "readme", "keywords",    "license",      "homepage",       "repository",
    "bugs",        "author", "maintainers", "contributors", "readmeFilename",
};

/* One version for the packument: a shallow copy with dist.tarball rewritten. */
static json_t *npm__version_doc(const struct npm_package *p, const struct npm_version_row *row,
                                const char *tarball_base, bool abbreviated)
{
    json_t *m = row->manifest;
    json_t *out;
    if (abbreviated) {
        out = json_object();
        for (size_t k = 0; k < sizeof(npm__abbrev_keys) / sizeof(npm__abbrev_keys[0]); k++) {
            json_t *v = json_object_get(m, npm__abbrev_keys[k]);
            if (v)
                json_object_set(out, npm__abbrev_keys[k], v);
        }
        json_t *scripts = json_object_get(m, "scripts");
        if (!json_object_get(out, "hasInstallScript") && json_is_object(scripts) &&
            (json_object_get(scripts, "install") || json_object_get(scripts, "preinstall") ||
             json_object_get(scripts, "postinstall")))
            json_object_set_new(out, "hasInstallScript", json_true());
    } else {
        out = json_copy(m);
    }
    if (!out)
        return NULL;
    json_t *dist = json_object_get(m, "dist");
    dist = json_is_object(dist) ? json_copy(dist) : json_object();
    json_object_set_new(dist, "tarball",
                        json_sprintf("%s/%s/-/%s", tarball_base, p->name, row->file));
    json_object_set_new(out, "dist", dist);
    return out;
}

json_t *npm_packument(const struct npm_package *p, const char *tarball_base, bool abbreviated)
{
    json_t *versions = json_object(), *tags = json_object(), *time = json_object();
    char iso[40];
    const struct npm_version_row *highest = NULL;
    for (int i = 0; i < p->nv; i++) {
        const struct npm_version_row *row = &p->v[i];
        json_object_set_new(versions, row->version,
                            npm__version_doc(p, row, tarball_base, abbreviated));
        npm__iso(row->published_ms, iso, sizeof(iso));
        json_object_set_new(time, row->version, json_string(iso));
        if (!highest || npm_semver_cmp(row->version, highest->version) > 0)
            highest = row;
    }
    const char *tag;
    json_t *tv;
    json_object_foreach(p->tags, tag, tv)
    {
        if (json_is_string(tv) && json_object_get(versions, json_string_value(tv)))
            json_object_set(tags, tag, tv);
    }
    if (!json_object_get(tags, "latest") && highest)
        json_object_set_new(tags, "latest", json_string(highest->version));
    char modified[40];
    npm__iso(p->modified_ms, modified, sizeof(modified));
    json_t *doc = json_object();
    if (abbreviated) {
        json_object_set_new(doc, "name", json_string(p->name));
        json_object_set_new(doc, "modified", json_string(modified));
        json_object_set_new(doc, "dist-tags", tags);
        json_object_set_new(doc, "versions", versions);
        json_decref(time);
        return doc;
    }
    npm__iso(p->created_ms, iso, sizeof(iso));
    json_object_set_new(time, "created", json_string(iso));
    json_object_set_new(time, "modified", json_string(modified));
    json_object_set_new(doc, "_id", json_string(p->name));
    json_object_set_new(doc, "_rev", json_string(p->rev ? p->rev : "0-0"));
    json_object_set_new(doc, "name", json_string(p->name));
    json_t *latest = NULL;
    const char *lv = json_string_value(json_object_get(tags, "latest"));
    for (int i = 0; lv && i < p->nv; i++)
        if (!strcmp(p->v[i].version, lv))
            latest = p->v[i].manifest;
    for (size_t k = 0; latest && k < sizeof(npm__top_keys) / sizeof(npm__top_keys[0]); k++) {
        json_t *v = json_object_get(latest, npm__top_keys[k]);
        if (v)
            json_object_set(doc, npm__top_keys[k], v);
    }
    json_object_set_new(doc, "dist-tags", tags);
    json_object_set_new(doc, "versions", versions);
    json_object_set_new(doc, "time", time);
    return doc;
}

/* ---- rows ---- */

static void npm__decref(void *arg)
{
    json_decref(arg);
}

static json_t *npm__arena_json(struct gr_arena *a, const char *text)
{
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    if (j)
        gr_arena_cleanup(a, npm__decref, j);
    return j;
}

/* The file name of a tarball path "{name}/-/{file}". */
static const char *npm__file_of(const char *path)
{
    const char *s = strstr(path, "/-/");
    return s ? s + 3 : path;
}

static const char *npm__rev(struct gr_arena *a, const char *nversions, const char *us)
{
    return gr_arena_printf(a, "%s-%llx", nversions, (unsigned long long)strtoull(us, NULL, 10));
}

int npm_package_get(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *name,
                    struct npm_package *out)
{
    const char *p[2] = {repo, name};
    struct db_res *res = NULL;
    int rc = db_exec1(
        ctx->db, &res,
        "SELECT " MS("p.created") ", " MS("p.modified") ", " US(
            "p.modified") ","
                          " coalesce((SELECT json_object_agg(t.tag, t.version) FROM npm_dist_tags t"
                          "   WHERE t.repo = p.repo AND t.name = p.name), '{}'),"
                          " coalesce((SELECT json_agg(json_build_array(v.version, v.manifest, "
                          "v.tarball_path, " MS(
                              "v.published") ")) FROM npm_versions v WHERE v.repo = p.repo AND "
                                             "v.name = p.name),"
                                             " '[]'),"
                                             " (SELECT count(*) FROM npm_versions v WHERE v.repo = "
                                             "p.repo AND v.name "
                                             "= p.name)"
                                             " FROM npm_packages p WHERE p.repo = $1 AND p.name = "
                                             "$2",
        2, p);
    if (rc)
        return rc;
    db_res_arena(res, a);
    if (db_res_rows(res) == 0)
        return GR_ENOTFOUND;
    out->name = name;
    out->created_ms = strtoll(db_res_get(res, 0, 0), NULL, 10);
    out->modified_ms = strtoll(db_res_get(res, 0, 1), NULL, 10);
    out->rev = npm__rev(a, db_res_get(res, 0, 5), db_res_get(res, 0, 2));
    out->tags = npm__arena_json(a, db_res_get(res, 0, 3));
    json_t *rows = npm__arena_json(a, db_res_get(res, 0, 4));
    if (!out->tags || !json_is_array(rows))
        return GR_EDB;
    size_t n = json_array_size(rows);
    out->v = gr_arena_calloc(a, sizeof(*out->v) * (n ? n : 1));
    out->nv = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(rows, i);
        const char *ver = json_string_value(json_array_get(r, 0));
        json_t *m = json_array_get(r, 1);
        const char *path = json_string_value(json_array_get(r, 2));
        if (!ver || !json_is_object(m) || !path)
            continue;
        struct npm_version_row *v = &out->v[out->nv++];
        v->version = ver;
        v->manifest = m;
        v->file = npm__file_of(path);
        v->published_ms = (int64_t)json_integer_value(json_array_get(r, 3));
        if (json_is_real(json_array_get(r, 3)))
            v->published_ms = (int64_t)json_real_value(json_array_get(r, 3));
    }
    return GR_OK;
}

static void npm__invalidate_artifact(struct repo_ctx *ctx, const char *repo, const char *path)
{
    struct gr_sbuf k = GR_SBUF_INIT;
    repo__key_artifact(&k, repo, path);
    repo__invalidate(ctx, &k, 1);
    gr_sbuf_release(&k);
}

int npm_publish(struct repo_ctx *ctx, struct gr_arena *a, struct npm_publish *p)
{
    struct artifact *t = &p->tarball;
    t->repo = p->repo;
    t->path = gr_arena_printf(a, "%s/-/%s", p->name, p->file);
    t->modified_by = p->user;
    struct db_conn *c;
    struct db_res *res = NULL;
    int rc = db_acquire(ctx->db, DB_ACQUIRE_TIMEOUT_MS, &c);
    if (rc)
        return rc;
    rc = db_begin(c);
    /* the package row first: it serialises publishes of one package */
    const char *pp[2] = {p->repo, p->name};
    if (rc == GR_OK)
        rc =
            db_exec(c, NULL,
                    "INSERT INTO npm_packages (repo, name) VALUES ($1, $2) ON CONFLICT (repo, name)"
                    " DO UPDATE SET modified = clock_timestamp()",
                    2, pp);
    if (rc == GR_OK)
        rc = repo__put_binary(ctx, c, t);
    const char *pv[7] = {p->repo, p->name, p->version, p->manifest, t->path, t->sha256, p->user};
    if (rc == GR_OK)
        rc =
            db_exec(c, &res,
                    "INSERT INTO npm_versions (repo, name, version, manifest, tarball_path, sha256,"
                    " published_by) VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT DO NOTHING"
                    " RETURNING 1",
                    7, pv);
    if (rc == GR_OK && db_res_rows(res) == 0)
        rc = GR_EEXIST;
    db_res_free(res);
    res = NULL;
    if (rc == GR_OK)
        rc = repo__put_artifact(c, a, t);
    for (int i = 0; rc == GR_OK && i < p->ntags; i++) {
        const char *pt[4] = {p->repo, p->name, p->tags[i], p->version};
        rc = db_exec(c, NULL,
                     "INSERT INTO npm_dist_tags (repo, name, tag, version) VALUES ($1,$2,$3,$4)"
                     " ON CONFLICT (repo, name, tag) DO UPDATE SET version = EXCLUDED.version",
                     4, pt);
    }
    if (rc == GR_OK)
        rc = repo__bump(c);
    rc = repo__finish(c, rc);
    if (rc == GR_OK)
        npm__invalidate_artifact(ctx, p->repo, t->path);
    return rc;
}

bool npm_deprecation_changes(json_t *stored, json_t *wanted, const char **message)
{
    json_t *nd = json_object_get(wanted, "deprecated");
    json_t *od = json_object_get(stored, "deprecated");
    const char *ns = json_is_string(nd) && *json_string_value(nd) ? json_string_value(nd) : NULL;
    const char *os = json_is_string(od) ? json_string_value(od) : NULL;
    if (message)
        *message = ns;
    return ns ? !os || strcmp(ns, os) : od != NULL;
}

/* Lock the package row and check rev. */
static int npm__lock(struct db_conn *c, struct gr_arena *a, const char *repo, const char *name,
                     const char *rev)
{
    const char *p[2] = {repo, name};
    struct db_res *res = NULL;
    int rc = db_exec(c, &res,
                     "SELECT " US("modified") ", (SELECT count(*) FROM npm_versions v"
                                              " WHERE v.repo = p.repo AND v.name = p.name)"
                                              " FROM npm_packages p WHERE repo = $1 AND name = $2"
                                              " FOR UPDATE",
                     2, p);
    if (rc)
        return rc;
    if (db_res_rows(res) == 0)
        rc = GR_ENOTFOUND;
    else if (rev && strcmp(rev, npm__rev(a, db_res_get(res, 0, 1), db_res_get(res, 0, 0))))
        rc = GR_ECONFLICT;
    db_res_free(res);
    return rc;
}

int npm_update(struct repo_ctx *ctx, const char *repo, const char *name, json_t *doc, bool remove,
               const char *rev, const char *user)
{
    struct gr_arena *a = gr_arena_new();
    if (!a)
        return GR_ENOMEM;
    json_t *dv = json_object_get(doc, "versions");
    const char **gone = NULL;
    int ngone = 0;
    struct db_conn *c;
    struct db_res *res = NULL;
    int rc = db_acquire(ctx->db, DB_ACQUIRE_TIMEOUT_MS, &c);
    if (rc)
        goto out_arena;
    rc = db_begin(c);
    if (rc == GR_OK)
        rc = npm__lock(c, a, repo, name, rev);
    const char *pp[2] = {repo, name};
    if (rc == GR_OK)
        rc = db_exec(c, &res,
                     "SELECT version, manifest, tarball_path FROM npm_versions"
                     " WHERE repo = $1 AND name = $2",
                     2, pp);
    int rows = rc == GR_OK ? db_res_rows(res) : 0;
    gone = gr_arena_calloc(a, sizeof(*gone) * (size_t)(rows + 1));
    for (int i = 0; rc == GR_OK && i < rows; i++) {
        const char *ver = db_res_get(res, i, 0);
        json_t *want = json_object_get(dv, ver);
        if (!json_is_object(want)) {
            if (!remove)
                continue;
            const char *pd[3] = {repo, name, ver};
            rc = db_exec(c, NULL,
                         "DELETE FROM npm_versions WHERE repo = $1 AND name = $2 AND version = $3",
                         3, pd);
            gone[ngone++] = gr_arena_strdup(a, db_res_get(res, i, 2));
            continue;
        }
        json_t *m = json_loads(db_res_get(res, i, 1), 0, NULL);
        if (!m) {
            rc = GR_EDB;
            break;
        }
        const char *ns = NULL;
        if (npm_deprecation_changes(m, want, &ns)) {
            if (ns)
                json_object_set_new(m, "deprecated", json_string(ns));
            else
                json_object_del(m, "deprecated");
            char *text = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
            const char *pu[4] = {repo, name, ver, text};
            rc = text ? db_exec(c, NULL,
                                "UPDATE npm_versions SET manifest = $4"
                                " WHERE repo = $1 AND name = $2 AND version = $3",
                                4, pu)
                      : GR_ENOMEM;
            free(text);
        }
        json_decref(m);
    }
    db_res_free(res);
    if (rc == GR_OK && remove) {
        rc = db_exec(c, NULL, "DELETE FROM npm_dist_tags WHERE repo = $1 AND name = $2", 2, pp);
        const char *tag;
        json_t *tv;
        json_object_foreach(json_object_get(doc, "dist-tags"), tag, tv)
        {
            if (rc || !json_is_string(tv))
                continue;
            const char *pt[4] = {repo, name, tag, json_string_value(tv)};
            rc = db_exec(c, NULL,
                         "INSERT INTO npm_dist_tags (repo, name, tag, version)"
                         " SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM npm_versions"
                         "  WHERE repo = $1 AND name = $2 AND version = $4)",
                         4, pt);
        }
        if (rc == GR_OK)
            rc =
                db_exec(c, NULL,
                        "DELETE FROM npm_packages p WHERE repo = $1 AND name = $2 AND NOT EXISTS"
                        " (SELECT 1 FROM npm_versions v WHERE v.repo = p.repo AND v.name = p.name)",
                        2, pp);
    }
    if (rc == GR_OK)
        rc = db_exec(c, NULL,
                     "UPDATE npm_packages SET modified = clock_timestamp()"
                     " WHERE repo = $1 AND name = $2",
                     2, pp);
    if (rc == GR_OK)
        rc = repo__bump(c);
    rc = repo__finish(c, rc);
    for (int i = 0; rc == GR_OK && i < ngone; i++) {
        int drc = artifact_delete(ctx, repo, gone[i], user);
        if (drc && drc != GR_ENOTFOUND)
            rc = drc;
    }
out_arena:
    gr_arena_free(a);
    return rc;
}

int npm_delete_package(struct repo_ctx *ctx, const char *repo, const char *name, const char *rev,
                       const char *user)
{
    struct gr_arena *a = gr_arena_new();
    if (!a)
        return GR_ENOMEM;
    struct db_conn *c;
    int rc = db_acquire(ctx->db, DB_ACQUIRE_TIMEOUT_MS, &c);
    if (rc)
        goto out_arena;
    rc = db_begin(c);
    if (rc == GR_OK)
        rc = npm__lock(c, a, repo, name, rev);
    const char *pp[2] = {repo, name};
    if (rc == GR_OK)
        rc = db_exec(c, NULL, "DELETE FROM npm_packages WHERE repo = $1 AND name = $2", 2, pp);
    if (rc == GR_OK)
        rc = repo__bump(c);
    rc = repo__finish(c, rc);
    if (rc == GR_OK) {
        int drc = artifact_delete(ctx, repo, name, user); /* the folder {name}/ */
        if (drc && drc != GR_ENOTFOUND)
            rc = drc;
    }
out_arena:
    gr_arena_free(a);
    return rc;
}

int npm_tag_set(struct repo_ctx *ctx, const char *repo, const char *name, const char *tag,
                const char *version, bool replace)
{
    struct db_conn *c;
    struct db_res *res = NULL;
    int rc = db_acquire(ctx->db, DB_ACQUIRE_TIMEOUT_MS, &c);
    if (rc)
        return rc;
    rc = db_begin(c);
    const char *pt[4] = {repo, name, tag, version};
    if (rc == GR_OK && version) {
        /* the version first: a missing one is GR_ENOTFOUND, not a taken tag */
        const char *pv[3] = {repo, name, version};
        rc = db_exec(c, &res,
                     "SELECT 1 FROM npm_versions WHERE repo = $1 AND name = $2 AND version = $3"
                     " FOR SHARE",
                     3, pv);
        if (rc == GR_OK && db_res_rows(res) == 0)
            rc = GR_ENOTFOUND;
        db_res_free(res);
        res = NULL;
    }
    if (rc == GR_OK)
        rc = db_exec(c, &res,
                     !version  ? "DELETE FROM npm_dist_tags WHERE repo = $1 AND name = $2"
                                 " AND tag = $3 RETURNING 1"
                     : replace ? "INSERT INTO npm_dist_tags (repo, name, tag, version)"
                                 " VALUES ($1, $2, $3, $4) ON CONFLICT (repo, name, tag)"
                                 " DO UPDATE SET version = $4 RETURNING 1"
                               /* without replace, a tag naming another version stays */
                               : "INSERT INTO npm_dist_tags (repo, name, tag, version)"
                                 " VALUES ($1, $2, $3, $4) ON CONFLICT (repo, name, tag)"
                                 " DO UPDATE SET version = $4 WHERE npm_dist_tags.version = $4"
                                 " RETURNING 1",
                     version ? 4 : 3, pt);
    if (rc == GR_OK && db_res_rows(res) == 0)
        rc = version ? GR_EEXIST : GR_ENOTFOUND;
    db_res_free(res);
    if (rc == GR_OK)
        rc = db_exec(c, NULL,
                     "UPDATE npm_packages SET modified = clock_timestamp()"
                     " WHERE repo = $1 AND name = $2",
                     2, pt);
    if (rc == GR_OK)
        rc = repo__bump(c);
    return repo__finish(c, rc);
}

#define NPM__SEARCH_FROM                                                                           \
    " FROM npm_packages p"                                                                         \
    " LEFT JOIN npm_dist_tags t ON t.repo = p.repo AND t.name = p.name AND t.tag = 'latest'"       \
    " LEFT JOIN npm_versions v ON v.repo = p.repo AND v.name = p.name AND v.version = t.version"

/*
 * The names of the hits the caller may see, in order: every match is
 * checked (names and tarball paths only, no manifests), then the page
 * [from, from + size) of the visible ones is kept as a text[] literal.
 */
static int npm__search_visible(struct repo_ctx *ctx, const char *repo, const char *like, int from,
                               int size, npm_visible_fn visible, void *arg, struct gr_sbuf *names,
                               int *total)
{
    const char *p[2] = {repo, like};
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "SELECT p.name, v.tarball_path" NPM__SEARCH_FROM
                      " WHERE p.repo = $1 AND p.name ILIKE $2 ESCAPE '\\' ORDER BY p.name",
                      2, p);
    if (rc)
        return rc;
    int rows = db_res_rows(res), seen = 0;
    const char **page = calloc((size_t)size + 1, sizeof(*page));
    if (!page) {
        db_res_free(res);
        return GR_ENOMEM;
    }
    int n = 0;
    for (int i = 0; i < rows; i++) {
        const char *name = db_res_get(res, i, 0);
        const char *tgz = db_res_isnull(res, i, 1) ? NULL : db_res_get(res, i, 1);
        if (!visible(arg, name, tgz))
            continue;
        if (seen >= from && n < size)
            page[n++] = name;
        seen++;
    }
    db_text_array(names, page, n);
    free(page);
    db_res_free(res);
    *total = seen;
    return GR_OK;
}

int npm_search(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *text,
               int from, int size, npm_visible_fn visible, void *arg, json_t **out, int *total)
{
    struct gr_sbuf like = GR_SBUF_INIT, names = GR_SBUF_INIT;
    gr_sbuf_adds(&like, "%");
    for (const char *s = text; *s; s++) {
        if (*s == '\\' || *s == '%' || *s == '_')
            gr_sbuf_add(&like, "\\", 1);
        gr_sbuf_add(&like, s, 1);
    }
    gr_sbuf_adds(&like, "%");
    int rc = GR_OK, filtered_total = 0;
    if (visible)
        rc = npm__search_visible(ctx, repo, like.buf, from, size, visible, arg, &names,
                                 &filtered_total);
    char f[16], z[16];
    snprintf(f, sizeof(f), "%d", visible ? 0 : from);
    snprintf(z, sizeof(z), "%d", size);
    const char *p[5] = {repo, like.buf, f, z, visible ? names.buf : NULL};
    struct db_res *res = NULL;
    if (rc == GR_OK)
        rc = db_exec1(ctx->db, &res,
                      "SELECT p.name, v.version, v.manifest, " MS(
                          "p.modified") ", count(*) OVER (),"
                                        " coalesce(v.published_by, '')" NPM__SEARCH_FROM
                                        " WHERE p.repo = $1 AND p.name ILIKE $2 ESCAPE '\\'"
                                        " AND ($5::text[] IS NULL OR p.name = ANY($5::text[]))"
                                        " ORDER BY p.name OFFSET $3::int LIMIT $4::int",
                      5, p);
    gr_sbuf_release(&like);
    gr_sbuf_release(&names);
    if (rc)
        return rc;
    db_res_arena(res, a);
    json_t *arr = json_array();
    gr_arena_cleanup(a, npm__decref, arr);
    int rows = db_res_rows(res);
    *total = visible ? filtered_total : rows ? atoi(db_res_get(res, 0, 4)) : 0;
    for (int i = 0; i < rows; i++) {
        json_t *m = json_loads(db_res_get(res, i, 2), 0, NULL);
        json_array_append_new(arr, json_pack("{s:s,s:s,s:o,s:I,s:s}", "name", db_res_get(res, i, 0),
                                             "version", db_res_get(res, i, 1), "manifest",
                                             m ? m : json_object(), "modified_ms",
                                             (json_int_t)strtoll(db_res_get(res, i, 3), NULL, 10),
                                             "publisher", db_res_get(res, i, 5)));
    }
    *out = arr;
    return GR_OK;
}

/* ---- tokens ---- */

/* npm login tokens are access tokens (repo/tokens.c): revocable, cached, audited */
int npm_token_issue(struct repo_ctx *ctx, const char *user, int64_t lifetime,
                    char out[NPM_TOKEN_LEN + 1])
{
    /* the token carries the user's rights, an admin's included (as npm tokens did) */
    bool admin = false, disabled = false;
    int rc = auth_user_lookup(ctx, user, &admin, &disabled);
    if (rc)
        return rc;
    return sec_token_issue(ctx, user,
                           admin ? "applied-permissions/admin" : "applied-permissions/user",
                           lifetime, "npm login", out, NULL, NULL);
}

int npm_token_check(struct repo_ctx *ctx, const char *token, struct auth_user *out)
{
    return sec_token_check(ctx, token, out);
}

/* ---- packuments of remote and virtual repositories (docs/remote.md) ---- */

const char *npm_tarball_file(const char *url)
{
    const char *s = url ? strrchr(url, '/') : NULL;
    return s && s[1] ? s + 1 : NULL;
}

json_t *npm_packument_shape(json_t *full, const char *name, const char *tarball_base,
                            bool abbreviated, npm_keep_fn keep, void *arg)
{
    json_t *versions = json_object(), *tags = json_object();
    json_t *in_versions = json_object_get(full, "versions");
    const char *ver;
    json_t *m;
    json_object_foreach(in_versions, ver, m)
    {
        if (!json_is_object(m))
            continue;
        json_t *dist = json_object_get(m, "dist");
        const char *file = npm_tarball_file(json_string_value(json_object_get(dist, "tarball")));
        const char *member = json_string_value(json_object_get(m, NPM_MEMBER_KEY));
        if (!file || (keep && !keep(arg, member, file)))
            continue;
        json_t *out;
        if (abbreviated) {
            out = json_object();
            for (size_t k = 0; k < sizeof(npm__abbrev_keys) / sizeof(npm__abbrev_keys[0]); k++) {
                json_t *v = json_object_get(m, npm__abbrev_keys[k]);
                if (v)
                    json_object_set(out, npm__abbrev_keys[k], v);
            }
        } else {
            out = json_copy(m);
            json_object_del(out, NPM_MEMBER_KEY);
        }
        json_t *d = json_copy(json_is_object(dist) ? dist : NULL);
        if (!d)
            d = json_object();
        char *url = NULL;
        if (asprintf(&url, "%s/%s/-/%s", tarball_base, name, file) < 0)
            url = NULL;
        json_object_set_new(d, "tarball", json_string(url ? url : ""));
        free(url);
        json_object_set_new(out, "dist", d);
        json_object_set_new(versions, ver, out);
    }
    const char *tag;
    json_t *tv;
    json_object_foreach(json_object_get(full, "dist-tags"), tag, tv)
    {
        if (json_is_string(tv) && json_object_get(versions, json_string_value(tv)))
            json_object_set(tags, tag, tv);
    }
    const char *highest = NULL;
    json_object_foreach(versions, ver, m)
    {
        if (!highest || npm_semver_cmp(ver, highest) > 0)
            highest = ver;
    }
    if (!json_object_get(tags, "latest") && highest)
        json_object_set_new(tags, "latest", json_string(highest));
    json_t *doc = json_object();
    json_t *time = json_object_get(full, "time");
    json_object_set_new(doc, "name", json_string(name));
    if (abbreviated) {
        json_t *mod = json_object_get(time, "modified");
        if (json_is_string(mod))
            json_object_set(doc, "modified", mod);
        json_object_set_new(doc, "dist-tags", tags);
        json_object_set_new(doc, "versions", versions);
        return doc;
    }
    const char *k;
    json_t *v;
    json_object_foreach(full, k, v)
    {
        if (strcmp(k, "versions") && strcmp(k, "dist-tags") && strcmp(k, "_attachments") &&
            strcmp(k, "name") && strcmp(k, "time") && strcmp(k, "_rev") && strcmp(k, "users"))
            json_object_set(doc, k, v);
    }
    if (!json_object_get(doc, "_id"))
        json_object_set_new(doc, "_id", json_string(name));
    json_object_set_new(doc, "dist-tags", tags);
    json_object_set_new(doc, "versions", versions);
    if (json_is_object(time)) { /* the times of the versions shown, and created/modified */
        json_t *t = json_object();
        json_object_foreach(time, k, v)
        {
            if (!strcmp(k, "created") || !strcmp(k, "modified") || json_object_get(versions, k))
                json_object_set(t, k, v);
        }
        json_object_set_new(doc, "time", t);
    }
    return doc;
}

int npm_packument_merge(struct gr_arena *a, const char *path, const char *const *members,
                        const char *const *docs, const size_t *lens, int n, char **out,
                        size_t *out_len)
{
    (void)path;
    json_t *merged = NULL, *versions = json_object(), *tags = json_object(), *time = json_object();
    for (int i = 0; i < n; i++) {
        json_t *d = json_loadb(docs[i], lens[i], 0, NULL);
        if (!json_is_object(d)) {
            json_decref(d);
            continue;
        }
        if (!merged) /* the description, readme ... of the first member that has the package */
            merged = json_copy(d);
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(d, "versions"), k, v)
        {
            if (!json_is_object(v) || json_object_get(versions, k))
                continue; /* the first member that has a version wins */
            json_t *c = json_copy(v);
            json_object_set_new(c, NPM_MEMBER_KEY, json_string(members[i]));
            json_object_set_new(versions, k, c);
        }
        json_object_foreach(json_object_get(d, "dist-tags"), k, v)
        {
            if (!json_object_get(tags, k)) /* each tag from the first member that has it */
                json_object_set(tags, k, v);
        }
        json_object_foreach(json_object_get(d, "time"), k, v)
        {
            json_t *have = json_object_get(time, k);
            if (!have || (!strcmp(k, "modified") && json_is_string(v) && json_is_string(have) &&
                          strcmp(json_string_value(v), json_string_value(have)) > 0))
                json_object_set(time, k, v);
        }
        json_decref(d);
    }
    if (!merged) {
        json_decref(versions);
        json_decref(tags);
        json_decref(time);
        return GR_EINVAL;
    }
    json_object_set_new(merged, "versions", versions);
    json_object_set_new(merged, "dist-tags", tags);
    json_object_set_new(merged, "time", time);
    char *s = json_dumps(merged, JSON_COMPACT);
    json_decref(merged);
    if (!s)
        return GR_ENOMEM;
    *out_len = strlen(s);
    *out = gr_arena_strdup(a, s);
    free(s);
    return GR_OK;
}
