/*
 * pypi_http.c - the PyPI API at /api/pypi/{repo}/ (docs/pypi.md): the
 * simple index (PEP 503 HTML, PEP 691/700 JSON by Accept, from the LMDB
 * cache), file downloads, the project JSON API, yanks (PEP 592), the
 * search at /api/search/pypi, and /<repo>/<path> of PyPI repositories.
 * Uploads (twine's form) are pypi_upload.c's.
 *
 * Permissions (docs/security.md): a project is the path <project> (its
 * normalized name), a file its stored path <project>/<version>/<file>;
 * pages show only the files the caller reads.
 */
#include "formats/pypi/pypi.h"
#include "http/path.h"
#include "http/req.h"
#include "http/search.h"

#include "base/err.h"
#include "base/log.h"
#include "base/pct.h"
#include "base/sbuf.h"
#include "repo/props.h"
#include "repo/security.h"
#include "storage/storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One request of the API, in the arena. */
struct pypi_req {
    struct repo_config cfg;
    const char *repo;
};

/* ---- answers ---- */

/* Send a document taken from sb (its buffer goes to the response). */
static void pypi__send(struct http_req *r, int status, const char *type, struct gr_sbuf *sb,
                       bool vary)
{
    size_t len = sb->len;
    struct MHD_Response *resp = http_response_bytes(gr_sbuf_detach(sb), len, false);
    if (!resp) {
        http_error(r, 500, "out of memory");
        return;
    }
    http_header(resp, "Content-Type", type);
    /* pages hold escaped text and links only: nothing in them may run */
    http_header(resp, "X-Content-Type-Options", "nosniff");
    http_header(resp, "Content-Security-Policy", HTTP_CSP_DOWNLOAD);
    if (vary)
        http_header(resp, "Vary", "Accept");
    r->sent_bytes += r->method == HM_HEAD ? 0 : len;
    http_send(r, status, resp);
}

/* 301 to location (a path below the API, as the client addressed us). */
static void pypi__redirect(struct http_req *r, const char *location)
{
    struct MHD_Response *resp = http_response_bytes((void *)"", 0, true);
    if (!resp) {
        http_error(r, 500, "out of memory");
        return;
    }
    http_header(resp, "Location", location);
    http_send(r, 301, resp);
}

/* The representation the client accepts, or 406 (false). */
static bool pypi__negotiate(struct http_req *r, enum pypi_type *t)
{
    const char *f = http_query(r, "format"); /* PEP 691's optional URL parameter */
    *t = pypi_accept(f && *f ? f : http_req_header(r, "Accept"));
    if (*t == PYPI_T_NONE) {
        http_error(
            r, 406,
            "none of the types in Accept is served here: application/vnd.pypi.simple.v1+json,"
            " application/vnd.pypi.simple.v1+html, text/html");
        return false;
    }
    return true;
}

static bool pypi__tree_reads(struct http_req *r, const char *repo, const char *folder)
{
    const struct sec_perms *p;
    return http_perms(r, &p) == GR_OK &&
           (p->all || (sec_perms_on_tree(p, repo, folder) & SEC_READ));
}

/* ---- the simple index ---- */

static void pypi__simple_root(struct http_req *r, struct pypi_req *q)
{
    enum pypi_type t;
    if (!http_need_repo_visible(r, q->repo) || !pypi__negotiate(r, &t))
        return;
    const char *rec;
    size_t len;
    struct pypi_project *p;
    int n;
    int rc = pypi_root_cached(r->ctx, r->arena, q->repo, &rec, &len);
    if (rc == GR_OK && pypi_root_entries(r->arena, rec, len, &p, &n))
        rc = GR_EIO;
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    bool *show = NULL;
    if (!pypi__tree_reads(r, q->repo, "")) {
        show = gr_arena_alloc(r->arena, sizeof(*show) * (size_t)(n ? n : 1));
        for (int i = 0; i < n; i++)
            show[i] = http_may(r, q->repo, p[i].norm, SEC_READ);
    }
    struct gr_sbuf sb = GR_SBUF_INIT;
    pypi_render_root(&sb, t, p, n, show);
    pypi__send(r, 200, pypi_type_header(t), &sb, true);
}

static void pypi__simple_project(struct http_req *r, struct pypi_req *q, const char *norm)
{
    enum pypi_type t;
    r->repo_key = q->repo; /* permission targets see a project as the path <project> */
    r->path = (char *)norm;
    if (!http_need_read(r) || !pypi__negotiate(r, &t))
        return;
    const char *rec, *display;
    size_t len;
    struct pypi_entry *e;
    int n;
    int rc = pypi_project_cached(r->ctx, r->arena, q->repo, norm, &rec, &len);
    if (rc == GR_ENOTFOUND) {
        http_error(r, 404, "no project '%s' in '%s'", norm, q->repo);
        return;
    }
    if (rc == GR_OK && pypi_project_entries(r->arena, rec, len, &display, &e, &n))
        rc = GR_EIO;
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    bool *show = NULL;
    if (!pypi__tree_reads(r, q->repo, norm)) {
        int shown = 0;
        show = gr_arena_alloc(r->arena, sizeof(*show) * (size_t)(n ? n : 1));
        for (int i = 0; i < n; i++)
            shown += show[i] = http_may(r, q->repo, e[i].path, SEC_READ);
        if (!shown) {
            http_error(r, 404, "no project '%s' in '%s'", norm, q->repo);
            return;
        }
    }
    struct gr_sbuf sb = GR_SBUF_INIT;
    pypi_render_project(&sb, t, norm, display, e, n, show);
    pypi__send(r, 200, pypi_type_header(t), &sb, true);
}

/*
 * "simple/..." after the repository: the root, a project page, or a
 * redirect to the normalized name with its trailing slash (PEP 503).
 */
static void pypi__simple(struct http_req *r, struct pypi_req *q, const char *rest)
{
    if (r->method != HM_GET && r->method != HM_HEAD) {
        http_error(r, 405, "method %s not allowed on the simple index", r->method_str);
        return;
    }
    const char *base = gr_arena_printf(r->arena, "%s/api/pypi/%s/simple/", r->base, q->repo);
    if (!*rest) {
        pypi__simple_root(r, q);
        return;
    }
    size_t n = strcspn(rest, "/");
    if (rest[n] == '/' && rest[n + 1]) {
        http_error(r, 404, "no such page of the simple index");
        return;
    }
    const char *name = gr_pct_decode(r->arena, rest, n);
    const char *norm = name ? pypi_normalize(r->arena, name) : NULL;
    if (!norm) {
        http_error(r, 404, "'%s' is not a project name", name ? name : "");
        return;
    }
    if (strcmp(name, norm) || rest[n] != '/') {
        struct gr_sbuf loc = GR_SBUF_INIT;
        gr_sbuf_adds(&loc, base);
        gr_sbuf_adds(&loc, norm);
        gr_sbuf_adds(&loc, "/");
        pypi__redirect(r, gr_arena_strdup(r->arena, loc.buf));
        gr_sbuf_release(&loc);
        return;
    }
    pypi__simple_project(r, q, norm);
}

/* packages/<path>: a file or its core metadata, as the artifact it is. */
static void pypi__package(struct http_req *r, struct pypi_req *q, const char *rest)
{
    if (r->method != HM_GET && r->method != HM_HEAD) {
        http_error(r, 405, "files are uploaded with twine (POST /api/pypi/%s/)", q->repo);
        return;
    }
    const char *rp = gr_arena_printf(r->arena, "%s/%s", q->repo, rest);
    if (!*rest || !http_parse_repo_path(r, rp, strlen(rp)))
        return;
    if (r->trailing_slash || r->matrix) {
        http_error(r, 404, "no such file");
        return;
    }
    http_artifact_generic(r, &q->cfg);
}

/* ---- the JSON API ---- */

struct pypi__collect {
    struct gr_sbuf *sb;
};

static int pypi__collect_fn(void *arg, const void *data, size_t len)
{
    struct pypi__collect *c = arg;
    if (c->sb->len + len > PYPI_METADATA_MAX)
        return GR_ETOOBIG;
    gr_sbuf_add(c->sb, data, len);
    return GR_OK;
}

/* The stored core metadata of a file the caller reads, parsed; false when there is none. */
static bool pypi__file_meta(struct http_req *r, struct pypi_req *q, const struct pypi_file *f,
                            struct pypi_meta *m)
{
    if (!f->meta_sha256)
        return false;
    const char *path = gr_arena_printf(r->arena, "%s.metadata", f->path);
    struct artifact art;
    if (!http_may(r, q->repo, path, SEC_READ) ||
        artifact_get(r->ctx, r->arena, q->repo, path, &art) != GR_OK)
        return false;
    struct gr_sbuf sb = GR_SBUF_INIT;
    struct pypi__collect c = {&sb};
    const char *why;
    bool ok =
        storage_read_all(r->ctx->storage, art.sha256, art.size, pypi__collect_fn, &c) == GR_OK &&
        pypi_meta_parse(r->arena, sb.buf, sb.len, m, &why) == GR_OK;
    gr_sbuf_release(&sb);
    return ok;
}

static json_t *pypi__str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

/* The "info" of a release: its core metadata where stored, else its properties. */
static json_t *pypi__info(struct http_req *r, struct pypi_req *q, const char *norm,
                          const struct pypi_file *f, int n, const bool *show, const char *ver)
{
    struct pypi_meta m = {0};
    bool have = false;
    const struct pypi_file *any = NULL;
    bool yanked = true;
    const char *yreason = NULL;
    for (int i = 0; i < n; i++) {
        if (!show[i] || strcmp(f[i].version, ver))
            continue;
        if (!any)
            any = &f[i];
        if (!f[i].yanked)
            yanked = false;
        else if (!yreason)
            yreason = f[i].yanked_reason;
        if (!have)
            have = pypi__file_meta(r, q, &f[i], &m);
    }
    json_t *props = any ? any->props : NULL;
    const char *base = http_base_url(r);
#define META(k, prop)                                                                              \
    (have ? pypi_meta_get(&m, k)                                                                   \
          : json_string_value(json_array_get(json_object_get(props, prop), 0)))
    const char *name = META("Name", "pypi.name");
    json_t *info = json_object();
    json_object_set_new(info, "name", json_string(name ? name : norm));
    json_object_set_new(info, "version", json_string(ver));
    json_object_set_new(info, "summary", pypi__str_or_null(META("Summary", "pypi.summary")));
    json_object_set_new(info, "requires_python",
                        pypi__str_or_null(META("Requires-Python", "pypi.requires_python")));
#undef META
    static const struct {
        const char *json, *meta;
    } plain[] = {{"author", "Author"},
                 {"author_email", "Author-email"},
                 {"maintainer", "Maintainer"},
                 {"maintainer_email", "Maintainer-email"},
                 {"license", "License"},
                 {"home_page", "Home-page"},
                 {"download_url", "Download-URL"},
                 {"keywords", "Keywords"},
                 {"description_content_type", "Description-Content-Type"},
                 {"platform", "Platform"}};
    for (size_t k = 0; k < sizeof(plain) / sizeof(plain[0]); k++)
        json_object_set_new(info, plain[k].json,
                            pypi__str_or_null(have ? pypi_meta_get(&m, plain[k].meta) : NULL));
    json_object_set_new(info, "description",
                        json_string(have && *m.body ? m.body
                                    : have && pypi_meta_get(&m, "Description")
                                        ? pypi_meta_get(&m, "Description")
                                        : ""));
    const char **v;
    int k = have ? pypi_meta_all(r->arena, &m, "Classifier", &v) : 0;
    json_t *cl = json_array();
    for (int i = 0; i < k; i++)
        json_array_append_new(cl, json_string(v[i]));
    json_object_set_new(info, "classifiers", cl);
    k = have ? pypi_meta_all(r->arena, &m, "Requires-Dist", &v) : 0;
    json_t *rd = json_array();
    for (int i = 0; i < k; i++)
        json_array_append_new(rd, json_string(v[i]));
    json_object_set_new(info, "requires_dist", k ? rd : json_null());
    if (!k)
        json_decref(rd);
    k = have ? pypi_meta_all(r->arena, &m, "Project-URL", &v) : 0;
    json_t *pu = json_object();
    for (int i = 0; i < k; i++) {
        const char *comma = strchr(v[i], ',');
        if (!comma)
            continue;
        const char *u = comma + 1;
        while (*u == ' ')
            u++;
        json_object_set_new(pu, gr_arena_strndup(r->arena, v[i], (size_t)(comma - v[i])),
                            json_string(u));
    }
    json_object_set_new(info, "project_urls", json_object_size(pu) ? pu : json_null());
    if (!json_object_size(pu))
        json_decref(pu);
    const char *page = gr_arena_printf(r->arena, "%s/api/pypi/%s/simple/%s/", base, q->repo, norm);
    json_object_set_new(info, "package_url", json_string(page));
    json_object_set_new(info, "project_url", json_string(page));
    json_object_set_new(info, "release_url",
                        json_sprintf("%s/api/pypi/%s/pypi/%s/%s/json", base, q->repo, norm, ver));
    json_object_set_new(info, "bugtrack_url", json_null());
    json_object_set_new(info, "docs_url", json_null());
    json_object_set_new(
        info, "downloads",
        json_pack("{s:i,s:i,s:i}", "last_day", -1, "last_month", -1, "last_week", -1));
    json_object_set_new(info, "yanked", json_boolean(any && yanked));
    json_object_set_new(info, "yanked_reason", pypi__str_or_null(any && yanked ? yreason : NULL));
    return info;
}

static json_t *pypi__file_json(struct http_req *r, struct pypi_req *q, const struct pypi_file *f)
{
    char when[40], iso[64];
    time_t t = (time_t)(f->upload_us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(iso, sizeof(iso), "%s.%06dZ", when, (int)(f->upload_us % 1000000));
    struct gr_sbuf url = GR_SBUF_INIT;
    gr_sbuf_addf(&url, "%s/api/pypi/%s/packages/", http_base_url(r), q->repo);
    gr_sbuf_add_urlpath(&url, f->path);
    const char *ft =
        json_string_value(json_array_get(json_object_get(f->props, "pypi.filetype"), 0));
    const char *pv =
        json_string_value(json_array_get(json_object_get(f->props, "pypi.pyversion"), 0));
    bool wheel = strlen(f->filename) > 4 && !strcmp(f->filename + strlen(f->filename) - 4, ".whl");
    json_t *j = json_pack(
        "{s:s,s:{s:s,s:s},s:i,s:s,s:b,s:s,s:s,s:s,s:o,s:I,s:s,s:s,s:s,s:b,s:o}", "comment_text", "",
        "digests", "md5", f->md5, "sha256", f->sha256, "downloads", -1, "filename", f->filename,
        "has_sig", 0, "md5_digest", f->md5, "packagetype",
        ft      ? ft
        : wheel ? "bdist_wheel"
                : "sdist",
        "python_version",
        pv      ? pv
        : wheel ? ""
                : "source",
        "requires_python", pypi__str_or_null(f->requires_python), "size", (json_int_t)f->size,
        "upload_time", when, "upload_time_iso_8601", iso, "url", url.buf, "yanked", f->yanked,
        "yanked_reason", pypi__str_or_null(f->yanked ? f->yanked_reason : NULL));
    gr_sbuf_release(&url);
    return j;
}

/*
 * pypi/<project>/json and pypi/<project>/<version>/json: the public
 * index's JSON API (info, releases, urls, digests) over the files the
 * caller reads; the release shown for a project is its highest final
 * version that is not wholly yanked (else its highest).
 */
static void pypi__json_api(struct http_req *r, struct pypi_req *q, const char *rest)
{
    if (r->method != HM_GET && r->method != HM_HEAD) {
        http_error(r, 405, "method %s not allowed on the JSON API", r->method_str);
        return;
    }
    const char *seg[3] = {NULL, NULL, NULL};
    size_t len[3] = {0, 0, 0};
    int k = 0;
    for (const char *s = rest; k < 3 && *s;) {
        size_t l = strcspn(s, "/");
        seg[k] = s;
        len[k++] = l;
        s += l;
        if (*s == '/')
            s++;
    }
    bool whole = k == 2 && len[1] == 4 && !strncmp(seg[1], "json", 4);
    bool release = k == 3 && len[2] == 4 && !strncmp(seg[2], "json", 4);
    if (!whole && !release) {
        http_error(r, 404, "the JSON API is pypi/<project>/json or pypi/<project>/<version>/json");
        return;
    }
    const char *name = gr_pct_decode(r->arena, seg[0], len[0]);
    const char *norm = name ? pypi_normalize(r->arena, name) : NULL;
    const char *want = NULL;
    if (release) {
        const char *v = gr_pct_decode(r->arena, seg[1], len[1]);
        want = v ? pypi_version_normalize(r->arena, v) : NULL;
    }
    if (!norm || (release && !want)) {
        http_error(r, 404, "no such project or version");
        return;
    }
    r->repo_key = q->repo;
    r->path = (char *)norm;
    if (!http_need_read(r))
        return;
    struct pypi_file *f;
    int n;
    int rc = pypi_files_load(r->ctx, r->arena, q->repo, norm, &f, &n);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    bool all = pypi__tree_reads(r, q->repo, norm);
    bool *show = gr_arena_alloc(r->arena, sizeof(*show) * (size_t)(n ? n : 1));
    const char *best = NULL;
    int bestrank = -1, shown = 0;
    for (int i = 0; i < n; i++) {
        show[i] = all || http_may(r, q->repo, f[i].path, SEC_READ);
        if (!show[i] || (want && strcmp(f[i].version, want)))
            continue;
        shown++;
        /* final and not yanked > final > anything */
        int rank = (!pypi_version_is_pre(f[i].version) ? 2 : 0) + (!f[i].yanked ? 1 : 0);
        if (rank > bestrank || (rank == bestrank && pypi_version_cmp(f[i].version, best) > 0)) {
            bestrank = rank;
            best = f[i].version;
        }
    }
    if (!shown) {
        http_error(r, 404, want ? "no release %s of '%s'" : "no project '%s'%s", want ? want : norm,
                   want ? norm : "");
        return;
    }
    json_t *doc = json_object();
    json_object_set_new(doc, "info", pypi__info(r, q, norm, f, n, show, best));
    json_t *urls = json_array(), *releases = json_object();
    int64_t serial = 0;
    for (int i = 0; i < n; i++) {
        if (!show[i])
            continue;
        serial = f[i].upload_us / 1000 > serial ? f[i].upload_us / 1000 : serial;
        if (!strcmp(f[i].version, best))
            json_array_append_new(urls, pypi__file_json(r, q, &f[i]));
        if (want)
            continue;
        json_t *rel = json_object_get(releases, f[i].version);
        if (!rel)
            json_object_set_new(releases, f[i].version, rel = json_array());
        json_array_append_new(rel, pypi__file_json(r, q, &f[i]));
    }
    json_object_set_new(doc, "last_serial", json_integer(serial));
    if (want) {
        json_decref(releases);
    } else {
        /* releases by version order */
        const char **keys = gr_arena_alloc(r->arena, sizeof(*keys) * json_object_size(releases));
        size_t nk = 0;
        const char *key;
        json_t *val;
        json_object_foreach(releases, key, val) keys[nk++] = key;
        for (size_t i = 1; i < nk; i++)
            for (size_t j = i; j > 0 && pypi_version_cmp(keys[j - 1], keys[j]) > 0; j--) {
                const char *t = keys[j];
                keys[j] = keys[j - 1];
                keys[j - 1] = t;
            }
        json_t *sorted = json_object();
        for (size_t i = 0; i < nk; i++)
            json_object_set(sorted, keys[i], json_object_get(releases, keys[i]));
        json_decref(releases);
        json_object_set_new(doc, "releases", sorted);
    }
    json_object_set_new(doc, "urls", urls);
    json_object_set_new(doc, "vulnerabilities", json_array());
    http_json(r, 200, doc);
}

/* ---- yanks ---- */

struct pypi__yank {
    struct pypi_req *q;
    const char *norm, *version;
};

static void pypi__yank_apply(struct http_req *r, struct pypi__yank *y, const char *reason)
{
    struct pypi_req *q = y->q;
    if (reason && (!props_value_valid(reason) || strpbrk(reason, "\r\n"))) {
        http_error(r, 400, "the reason must be one line of UTF-8 of at most %d bytes",
                   PROPS_VALUE_MAX);
        return;
    }
    struct pypi_file *f;
    int n;
    int rc = pypi_files_load(r->ctx, r->arena, q->repo, y->norm, &f, &n);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    const char **paths = gr_arena_alloc(r->arena, sizeof(*paths) * (size_t)(n ? n : 1));
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!strcmp(f[i].version, y->version))
            paths[k++] = f[i].path;
    r->repo_key = q->repo;
    r->path = (char *)y->norm;
    if (k == 0) {
        if (http_need_read(r))
            http_error(r, 404, "no release %s of '%s'", y->version, y->norm);
        return;
    }
    /* a yank is a property of each file of the release: annotate on each */
    for (int i = 0; i < k; i++)
        if (!http_need_perm(r, q->repo, paths[i], SEC_ANNOTATE))
            return;
    rc = pypi_yank(r->ctx, q->repo, paths, k, reason);
    if (rc == GR_ENOTFOUND) {
        http_error(r, 409, "a file of release %s changed meanwhile: try again", y->version);
        return;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    http_audit(r, "properties", q->repo, paths[0],
               gr_arena_printf(r->arena, "pypi %s %s %s", reason ? "yank" : "unyank", y->norm,
                               y->version));
    gr_info("req=%llu pypi %s %s/%s %s by %s", (unsigned long long)r->id,
            reason ? "yank" : "unyank", q->repo, y->norm, y->version, r->user.name);
    json_t *files = json_array();
    for (int i = 0; i < k; i++)
        json_array_append_new(files, json_string(paths[i]));
    http_json(r, 200,
              json_pack("{s:s,s:s,s:b,s:o,s:o}", "project", y->norm, "version", y->version,
                        "yanked", reason != NULL, "reason",
                        reason && *reason ? json_string(reason) : json_null(), "files", files));
}

static void pypi__yank_body(struct http_req *r, json_t *doc)
{
    json_t *reason = json_object_get(doc, "reason");
    if (!json_is_object(doc) || (reason && !json_is_string(reason) && !json_is_null(reason))) {
        http_error(r, 400, "the body is {\"reason\": \"...\"} (or nothing)");
        return;
    }
    pypi__yank_apply(r, r->hctx_sec,
                     reason && json_is_string(reason) ? json_string_value(reason) : "");
}

/* yank/<project>/<version>: POST yanks the release (reason: ?reason= or a JSON body), DELETE
 * unyanks it. */
static void pypi__yank(struct http_req *r, struct pypi_req *q, const char *rest)
{
    size_t n = strcspn(rest, "/");
    const char *vs = rest[n] == '/' ? rest + n + 1 : NULL;
    if (!vs || !*vs || strchr(vs, '/')) {
        http_error(r, 404, "yank/<project>/<version>");
        return;
    }
    const char *name = gr_pct_decode(r->arena, rest, n),
               *v = gr_pct_decode(r->arena, vs, strlen(vs));
    struct pypi__yank *y = gr_arena_calloc(r->arena, sizeof(*y));
    y->q = q;
    y->norm = name ? pypi_normalize(r->arena, name) : NULL;
    y->version = v ? pypi_version_normalize(r->arena, v) : NULL;
    if (!y->norm || !y->version) {
        http_error(r, 404, "no such project or version");
        return;
    }
    if (r->method == HM_DELETE) {
        pypi__yank_apply(r, y, NULL);
        return;
    }
    if (r->method != HM_POST) {
        http_error(r, 405, "POST yanks a release, DELETE unyanks it");
        return;
    }
    const char *cl = http_req_header(r, "Content-Length");
    bool body = (cl && strcmp(cl, "0")) || http_req_header(r, "Transfer-Encoding");
    if (!body) {
        const char *reason = http_query(r, "reason");
        pypi__yank_apply(r, y, reason ? reason : "");
        return;
    }
    r->hctx_sec = y;
    http_read_json_body(r, pypi__yank_body);
}

/* ---- the API's entry ---- */

void pypi_api(struct http_req *r, const char *sub)
{
    struct pypi_req *q = gr_arena_calloc(r->arena, sizeof(*q));
    size_t kl = strcspn(sub, "/?");
    q->repo = gr_arena_strndup(r->arena, sub, kl);
    if (repo_key_check(q->repo) != GR_OK) {
        http_error(r, 404, "no such repository");
        return;
    }
    const char *rest = sub + kl;
    bool slash = *rest == '/';
    if (slash)
        rest++;
    const char *qm = strchr(rest, '?');
    if (qm)
        rest = gr_arena_strndup(r->arena, rest, (size_t)(qm - rest));
    int rc = repo_get(r->ctx, r->arena, q->repo, &q->cfg);
    if (rc == GR_ENOTFOUND || (rc == GR_OK && strcmp(q->cfg.package_type, "pypi"))) {
        r->repo_key = NULL;
        if (r->user.anonymous && !http_need_read(r))
            return; /* anonymous callers learn nothing of repositories */
        http_error(r, 404, "no PyPI repository '%s'", q->repo);
        return;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    if (!*rest || !strcmp(rest, "legacy") || !strcmp(rest, "legacy/")) {
        if (r->method == HM_POST)
            pypi_upload(r, &q->cfg);
        else if (r->method == HM_GET || r->method == HM_HEAD)
            pypi__redirect(r,
                           gr_arena_printf(r->arena, "%s/api/pypi/%s/simple/", r->base, q->repo));
        else
            http_error(r, 405, "POST uploads (twine), GET is the simple index");
        return;
    }
    if (!strcmp(rest, "simple")) {
        pypi__redirect(r, gr_arena_printf(r->arena, "%s/api/pypi/%s/simple/", r->base, q->repo));
        return;
    }
    if (!strncmp(rest, "simple/", 7)) {
        pypi__simple(r, q, rest + 7);
        return;
    }
    if (!strncmp(rest, "packages/", 9)) {
        pypi__package(r, q, rest + 9);
        return;
    }
    if (!strncmp(rest, "pypi/", 5)) {
        pypi__json_api(r, q, rest + 5);
        return;
    }
    if (!strncmp(rest, "yank/", 5)) {
        pypi__yank(r, q, rest + 5);
        return;
    }
    http_error(r, 404, "no such PyPI api: %s", rest);
}

/* ---- search ---- */

void pypi_search(struct http_req *r, const char *rest)
{
    (void)rest;
    struct http_search *s = gr_arena_calloc(r->arena, sizeof(*s));
    if (!http_search_begin(r, s))
        return;
    const char *name = http_query(r, "name"), *version = http_query(r, "version");
    const char *norm = name && *name ? pypi_normalize(r->arena, name) : NULL;
    const char *vnorm = version && *version ? pypi_version_normalize(r->arena, version) : NULL;
    if (!norm || (version && *version && !vnorm)) {
        http_error(r, 400, "give name (a project name) and optionally version (a PEP 440 version)");
        return;
    }
    struct props_entry *e = gr_arena_calloc(r->arena, sizeof(*e) * 2);
    const char **v = gr_arena_alloc(r->arena, sizeof(*v) * 2);
    v[0] = norm;
    v[1] = vnorm;
    e[0] = (struct props_entry){"pypi.normalized_name", &v[0], 1};
    e[1] = (struct props_entry){"pypi.version", &v[1], 1};
    struct props_set *ps = gr_arena_alloc(r->arena, sizeof(*ps));
    ps->e = e;
    ps->n = vnorm ? 2 : 1;
    s->q.kind = SEARCH_PROP;
    s->q.props = ps;
    if (!http_search_repos(r, &s->q))
        return;
    struct search_hit *hits;
    int n;
    bool truncated;
    int rc = search_run(r->ctx, r->arena, &s->q, s->props, &hits, &n, &truncated);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    /* files only: the properties are on the distributions */
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!hits[i].is_folder)
            hits[k++] = hits[i];
    http_search_answer(r, s, hits, k, truncated);
}

/* ---- /<repo>/<path> ---- */

void pypi_artifact(struct http_req *r, const struct repo_config *cfg)
{
    if (r->method == HM_PUT) {
        http_error(r, 405,
                   "files of a PyPI repository are uploaded with twine (POST /api/pypi/%s/),"
                   " which checks them",
                   cfg->key);
        return;
    }
    http_artifact_generic(r, cfg);
}
