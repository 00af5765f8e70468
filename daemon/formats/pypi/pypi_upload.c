/*
 * pypi_upload.c - the legacy upload API that twine, poetry and uv speak
 * (POST /api/pypi/{repo}/, multipart/form-data, ":action=file_upload"):
 * the file part streams into the ingest pipeline while it arrives (never
 * whole in memory), the form's other fields are kept or dropped as they
 * come; then the digests sent are checked, the file name against the
 * form's name and version, and both against the core metadata inside the
 * file (read back from this node's disk), and the file, its metadata (a
 * wheel's, for PEP 658) and its pypi.* properties are committed together.
 * Nothing is stored when any check fails.
 */
#include "formats/pypi/pypi.h"
#include "http/h_plugins.h"
#include "http/multipart.h"
#include "http/req.h"

#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "base/utf8.h"
#include "crypto/crypto.h"
#include "repo/ingest.h"
#include "repo/props.h"
#include "repo/security.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* The form fields that are kept (the rest, the description among them, is dropped). */
static const struct {
    const char *name;
    bool multi;
} pypi__kept[] = {
    {":action", false},          {"protocol_version", false}, {"name", false},
    {"version", false},          {"filetype", false},         {"pyversion", false},
    {"metadata_version", false}, {"summary", false},          {"requires_python", false},
    {"sha256_digest", false},    {"md5_digest", false},       {"blake2_256_digest", false},
    {"requires_dist", true},     {"classifiers", true},
};
#define PYPI__NKEPT ((int)(sizeof(pypi__kept) / sizeof(pypi__kept[0])))

struct pypi__val {
    int field;
    struct gr_sbuf v;
    struct pypi__val *next;
};

/* One upload, in the request's arena. */
struct pypi__up {
    const struct repo_config *cfg;
    struct http_multipart *mp;
    struct pypi__val *vals, *cur; /* kept values; the one being received */
    size_t kept;
    bool in_file;
    int files;            /* "content" parts seen */
    const char *filename; /* the content part's file name */
    struct ingest *in;
    bool denied;     /* the caller may not write where the file goes */
    const char *why; /* what was wrong with the form (400) */
};

static void pypi__vals_free(void *arg)
{
    struct pypi__up *u = arg;
    for (struct pypi__val *v = u->vals; v; v = v->next)
        gr_sbuf_release(&v->v);
}

static int pypi__field_index(const char *name)
{
    for (int i = 0; i < PYPI__NKEPT; i++)
        if (!strcmp(pypi__kept[i].name, name))
            return i;
    return -1;
}

/* A single-valued field's value (trimmed of surrounding blanks), or NULL. */
static const char *pypi__get(struct gr_arena *a, struct pypi__up *u, const char *name)
{
    int f = pypi__field_index(name);
    for (struct pypi__val *v = u->vals; v; v = v->next)
        if (v->field == f) {
            const char *s = v->v.buf;
            size_t n = v->v.len;
            while (n && isspace((unsigned char)*s))
                s++, n--;
            while (n && isspace((unsigned char)s[n - 1]))
                n--;
            return gr_arena_strndup(a, s, n);
        }
    return NULL;
}

/* Every value of a multi-valued field, in order; returns the count. */
static int pypi__get_all(struct gr_arena *a, struct pypi__up *u, const char *name,
                         const char ***out)
{
    int f = pypi__field_index(name), n = 0;
    for (struct pypi__val *v = u->vals; v; v = v->next)
        n += v->field == f;
    const char **r = gr_arena_alloc(a, sizeof(*r) * (size_t)(n + 1));
    int k = n;
    /* values were pushed in front: the list runs newest first */
    for (struct pypi__val *v = u->vals; v; v = v->next)
        if (v->field == f)
            r[--k] = gr_arena_strndup(a, v->v.buf, v->v.len);
    *out = r;
    return n;
}

/* The project path of the file, when the form's fields are known (or NULL). */
static const char *pypi__path_of(struct http_req *r, struct pypi__up *u, const char *filename)
{
    const char *name = pypi__get(r->arena, u, "name"), *version = pypi__get(r->arena, u, "version");
    const char *norm = name ? pypi_normalize(r->arena, name) : NULL;
    const char *vnorm = version ? pypi_version_normalize(r->arena, version) : NULL;
    if (!norm || !vnorm || !filename)
        return NULL;
    return gr_arena_printf(r->arena, "%s/%s/%s", norm, vnorm, filename);
}

/* http_multipart_fn: keep, stream or drop each piece of the form. */
static int pypi__piece(void *arg, const struct http_multipart_piece *p)
{
    struct http_req *r = arg;
    struct pypi__up *u = r->hctx;
    if (p->first) {
        u->cur = NULL;
        u->in_file = false;
        if (!strcmp(p->name, "content")) {
            if (!p->filename || !*p->filename) {
                u->why = "the form's file (the part 'content') has no file name";
                return GR_EINVAL;
            }
            if (++u->files > 1) {
                u->why = "the form carries more than one file (the part 'content')";
                return GR_EINVAL;
            }
            u->filename = gr_arena_strdup(r->arena, p->filename);
            /* twine sends the fields first: refuse before the bytes when it is clear */
            const char *path = pypi__path_of(r, u, u->filename);
            if (path && !http_may(r, u->cfg->key, path, SEC_WRITE)) {
                u->denied = true;
                return GR_EFORBIDDEN;
            }
            int rc = ingest_begin(r->ctx, r->arena, &u->in);
            if (rc)
                return rc;
            u->in_file = true;
        } else {
            int f = pypi__field_index(p->name);
            if (f >= 0) {
                if (!pypi__kept[f].multi && pypi__get(r->arena, u, p->name)) {
                    u->why = gr_arena_printf(r->arena, "the form gives '%s' twice", p->name);
                    return GR_EINVAL;
                }
                struct pypi__val *v = gr_arena_calloc(r->arena, sizeof(*v));
                v->field = f;
                gr_sbuf_init(&v->v);
                v->next = u->vals;
                u->vals = u->cur = v;
            }
        }
    }
    if (u->in_file)
        return ingest_write(u->in, p->data, p->len);
    if (u->cur) {
        if (u->cur->v.len + p->len > PYPI_FIELD_MAX || u->kept + p->len > PYPI_FIELDS_MAX) {
            u->why = gr_arena_printf(r->arena,
                                     "the form field '%s' is too large (limits: %u bytes a field,"
                                     " %u for the fields kept)",
                                     p->name, PYPI_FIELD_MAX, PYPI_FIELDS_MAX);
            return GR_EINVAL;
        }
        gr_sbuf_add(&u->cur->v, p->data, p->len);
        u->kept += p->len;
    }
    return GR_OK;
}

static int pypi__upload_body(struct http_req *r, const char *data, size_t len)
{
    struct pypi__up *u = r->hctx;
    uint64_t max = r->srv->opt.max_body_size;
    if (max && r->body_bytes > max)
        return GR_ETOOBIG;
    return http_multipart_feed(u->mp, data, len);
}

/* hex (n digits) in lowercase into out, or false. */
static bool pypi__hex(const char *s, size_t n, char *out)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return false;
        out[i] = (char)tolower((unsigned char)s[i]);
    }
    out[n] = '\0';
    return true;
}

/* md5_digest: hex, or urlsafe base64 without padding (Warehouse's legacy form). */
static bool pypi__md5_matches(const char *sent, const char *md5hex)
{
    char hex[33];
    if (pypi__hex(sent, 32, hex))
        return !strcmp(hex, md5hex);
    unsigned char raw[16];
    for (int i = 0; i < 16; i++) {
        unsigned x;
        if (sscanf(md5hex + 2 * i, "%2x", &x) != 1)
            return false;
        raw[i] = (unsigned char)x;
    }
    char b64[32];
    size_t n = cr_base64_encode(raw, 16, b64);
    while (n && b64[n - 1] == '=')
        n--;
    b64[n] = '\0';
    for (char *c = b64; *c; c++)
        *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
    return !strcmp(sent, b64);
}

/* A property value as stored: one line of UTF-8 within PROPS_VALUE_MAX. */
static bool pypi__prop_ok(const char *v)
{
    return props_value_valid(v) && !strpbrk(v, "\r\n");
}

struct pypi__props {
    struct props_entry e[12];
    int n;
};

static void pypi__prop_add(struct gr_arena *a, struct pypi__props *ps, const char *key,
                           const char *const *v, int n)
{
    if (n <= 0)
        return;
    const char **copy = gr_arena_alloc(a, sizeof(*copy) * (size_t)n);
    memcpy(copy, v, sizeof(*copy) * (size_t)n);
    ps->e[ps->n++] = (struct props_entry){key, copy, n};
}

static void pypi__prop1(struct gr_arena *a, struct pypi__props *ps, const char *key, const char *v)
{
    if (v && *v)
        pypi__prop_add(a, ps, key, &v, 1);
}

/* UTF-8 characters in s. */
static size_t pypi__chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static void pypi__fd_close(void *arg)
{
    close(*(int *)arg);
}

/*
 * The metadata inside the file, checked against the form: its Name and
 * Version, and Requires-Python when the form gives one. false: answered.
 */
static bool pypi__check_meta(struct http_req *r, struct pypi__up *u, const struct pypi_filename *fn,
                             const char *norm, const char *vnorm, const char **text, size_t *tlen,
                             struct pypi_meta *m)
{
    int *fd = gr_arena_alloc(r->arena, sizeof(*fd));
    int rc = ingest_open_read(u->in, fd);
    if (rc) {
        http_error_code(r, rc, "cannot read the upload back");
        return false;
    }
    gr_arena_cleanup(r->arena, pypi__fd_close, fd);
    const char *why = NULL;
    rc = pypi_archive_metadata(r->arena, *fd, fn->ext, text, tlen, &why);
    if (rc == GR_OK)
        rc = pypi_meta_parse(r->arena, *text, *tlen, m, &why);
    if (rc) {
        http_error(r, rc == GR_EINVAL ? 400 : 500, "%s", why ? why : gr_strerror(rc));
        return false;
    }
    const char *mname = pypi_meta_get(m, "Name"), *mver = pypi_meta_get(m, "Version");
    const char *mnorm = pypi_normalize(r->arena, mname);
    const char *mvnorm = pypi_version_normalize(r->arena, mver);
    if (!mnorm || strcmp(mnorm, norm)) {
        http_error(r, 400, "the file's metadata names the project '%s', the form '%s'", mname,
                   norm);
        return false;
    }
    if (!mvnorm || strcmp(mvnorm, vnorm)) {
        http_error(r, 400, "the file's metadata says version '%s', the form '%s'", mver, vnorm);
        return false;
    }
    const char *fp = pypi__get(r->arena, u, "requires_python");
    const char *mp = pypi_meta_get(m, "Requires-Python");
    if (fp && *fp && (!mp || strcmp(fp, mp))) {
        http_error(r, 400, "requires_python '%s' differs from the file's metadata ('%s')", fp,
                   mp ? mp : "");
        return false;
    }
    return true;
}

/* The file's pypi.* properties from the form and its metadata. false: answered (400). */
static bool pypi__props_of(struct http_req *r, struct pypi__up *u, const struct pypi_filename *fn,
                           const char *name, const char *norm, const char *vnorm,
                           const struct pypi_meta *m, struct props_set *out)
{
    struct gr_arena *a = r->arena;
    struct pypi__props *ps = gr_arena_calloc(a, sizeof(*ps));
    const char *summary = pypi__get(a, u, "summary");
    if (!summary)
        summary = pypi_meta_get(m, "Summary");
    const char *ft = pypi__get(a, u, "filetype"), *pv = pypi__get(a, u, "pyversion");
    const char *rp = pypi_meta_get(m, "Requires-Python");
    if (!rp)
        rp = pypi__get(a, u, "requires_python");
    if (summary && pypi__chars(summary) > PYPI_SUMMARY_MAX) {
        http_error(r, 400, "the summary is longer than %d characters", PYPI_SUMMARY_MAX);
        return false;
    }
    pypi__prop1(a, ps, "pypi.name", name);
    pypi__prop1(a, ps, "pypi.normalized_name", norm);
    pypi__prop1(a, ps, "pypi.version", vnorm);
    pypi__prop1(a, ps, "pypi.filetype",
                ft && *ft                ? ft
                : fn->kind == PYPI_WHEEL ? "bdist_wheel"
                                         : "sdist");
    pypi__prop1(a, ps, "pypi.pyversion", pv && *pv ? pv : fn->pyversion);
    pypi__prop1(a, ps, "pypi.metadata_version", pypi_meta_get(m, "Metadata-Version"));
    pypi__prop1(a, ps, "pypi.summary", summary);
    pypi__prop1(a, ps, "pypi.requires_python", rp);
    const char **v;
    int n = pypi_meta_all(a, m, "Requires-Dist", &v);
    if (!n)
        n = pypi__get_all(a, u, "requires_dist", &v);
    pypi__prop_add(a, ps, "pypi.requires_dist", v, n);
    n = pypi_meta_all(a, m, "Classifier", &v);
    if (!n)
        n = pypi__get_all(a, u, "classifiers", &v);
    pypi__prop_add(a, ps, "pypi.classifiers", v, n);
    for (int i = 0; i < ps->n; i++)
        for (int k = 0; k < ps->e[i].nvalues; k++)
            if (!pypi__prop_ok(ps->e[i].values[k])) {
                http_error(r, 400, "%s: each value must be one line of UTF-8 of at most %d bytes",
                           ps->e[i].key, PROPS_VALUE_MAX);
                return false;
            }
    out->e = ps->e;
    out->n = ps->n;
    return true;
}

/* Stage text as its own binary (a wheel's metadata) through the ingest pipeline. */
static int pypi__store_text(struct http_req *r, const char *text, size_t len, struct artifact *out)
{
    struct ingest *in;
    int rc = ingest_begin(r->ctx, r->arena, &in);
    if (rc == GR_OK)
        rc = ingest_write(in, text, len);
    if (rc)
        return rc;
    ingest_finish(in, out);
    char rid[24];
    snprintf(rid, sizeof(rid), "%llu", (unsigned long long)r->id);
    return ingest_replicate(in, rid, out);
}

static void pypi__upload_end(struct http_req *r)
{
    struct pypi__up *u = r->hctx;
    const struct repo_config *cfg = u->cfg;
    int rc = r->body_error ? r->body_error : http_multipart_finish(u->mp);
    if (u->denied) { /* answer as the permission check does (401 or 403) */
        r->repo_key = cfg->key;
        r->path = (char *)pypi__path_of(r, u, u->filename);
        if (http_need_perm(r, cfg->key, r->path, SEC_WRITE))
            http_error(r, 403, "no write permission on '%s/%s'", cfg->key, r->path);
        return;
    }
    if (rc == GR_ETOOBIG) {
        http_error(r, 413, "body larger than the limit of %llu bytes",
                   (unsigned long long)r->srv->opt.max_body_size);
        return;
    }
    if (rc == GR_EINVAL) {
        http_error(r, 400, "%s",
                   u->why ? u->why
                          : "not a whole multipart/form-data body (truncated or malformed)");
        return;
    }
    if (rc) {
        http_error_code(r, rc, "cannot store the upload");
        return;
    }
    struct gr_arena *a = r->arena;
    const char *action = pypi__get(a, u, ":action"), *proto = pypi__get(a, u, "protocol_version");
    const char *name = pypi__get(a, u, "name"), *version = pypi__get(a, u, "version");
    if (!action || strcmp(action, "file_upload")) {
        http_error(r, 400, "%s: this index takes ':action=file_upload' only (twine upload)",
                   action ? gr_arena_printf(a, "unsupported :action '%s'", action)
                          : "the form has no ':action'");
        return;
    }
    if (proto && strcmp(proto, "1")) {
        http_error(r, 400, "unsupported protocol_version '%s' (1 is)", proto);
        return;
    }
    if (!u->files || !u->in) {
        http_error(r, 400, "the form carries no file (the part 'content')");
        return;
    }
    if (!name || !version || !*name || !*version) {
        http_error(r, 400, "the form must give the project's name and version");
        return;
    }
    const char *norm = pypi_normalize(a, name), *vnorm = pypi_version_normalize(a, version);
    if (!norm) {
        http_error(r, 400, "'%s' is not a valid project name (PEP 508)", name);
        return;
    }
    if (!vnorm) {
        http_error(r, 400, "'%s' is not a valid version (PEP 440)", version);
        return;
    }
    struct pypi_filename fn;
    const char *why = NULL;
    if (pypi_filename_parse(a, u->filename, norm, &fn, &why)) {
        http_error(r, 400, "%s", why);
        return;
    }
    if (strcmp(fn.version, vnorm)) {
        http_error(r, 400, "the file name '%s' says version %s, the form %s", u->filename,
                   fn.version, vnorm);
        return;
    }
    const char *ft = pypi__get(a, u, "filetype");
    if (ft && *ft && strcmp(ft, fn.kind == PYPI_WHEEL ? "bdist_wheel" : "sdist")) {
        http_error(r, 400, "filetype '%s' does not fit the file '%s'", ft, u->filename);
        return;
    }
    /* who may: write where the file (and its metadata) go */
    char *path = gr_arena_printf(a, "%s/%s/%s", norm, vnorm, u->filename);
    char *mpath = fn.kind == PYPI_WHEEL ? gr_arena_printf(a, "%s.metadata", path) : NULL;
    r->repo_key = cfg->key;
    r->path = path;
    r->matrix = NULL;
    if (!http_need_perm(r, cfg->key, path, SEC_WRITE) ||
        (mpath && !http_need_perm(r, cfg->key, mpath, SEC_WRITE)))
        return;
    http_audit(r, "deploy", cfg->key, path, "pypi upload");
    struct artifact file = {0}, meta = {0}, existing;
    if (artifact_get(r->ctx, a, cfg->key, path, &existing) == GR_OK) {
        http_error(r, 400, "File already exists: '%s' (files are immutable: delete it first)",
                   u->filename);
        return;
    }
    ingest_finish(u->in, &file);
    char want[65];
    const char *s256 = pypi__get(a, u, "sha256_digest"), *md5 = pypi__get(a, u, "md5_digest");
    if (s256 && *s256 && (!pypi__hex(s256, 64, want) || strcmp(want, file.sha256))) {
        http_error(r, 400, "sha256_digest does not match the file received (its sha256 is %s)",
                   file.sha256);
        return;
    }
    if (md5 && *md5 && !pypi__md5_matches(md5, file.md5)) {
        http_error(r, 400, "md5_digest does not match the file received (its md5 is %s)", file.md5);
        return;
    }
    if (file.size == 0) {
        http_error(r, 400, "the file '%s' is empty", u->filename);
        return;
    }
    const char *text;
    size_t tlen;
    struct pypi_meta m;
    if (!pypi__check_meta(r, u, &fn, norm, vnorm, &text, &tlen, &m))
        return;
    struct props_set props;
    if (!pypi__props_of(r, u, &fn, name, norm, vnorm, &m, &props))
        return;
    if (!http_plug_before_upload_sized(r, (int64_t)file.size)) /* plugins (h_plugins.c) */
        return;
    char rid[24];
    snprintf(rid, sizeof(rid), "%llu", (unsigned long long)r->id);
    rc = ingest_replicate(u->in, rid, &file);
    if (rc == GR_OK && mpath)
        rc = pypi__store_text(r, text, tlen, &meta);
    if (rc) {
        http_error_code(r, rc,
                        rc == GR_EUNAVAIL ? "too few nodes could store a copy; try again"
                                          : "cannot store the upload");
        return;
    }
    file.repo = meta.repo = cfg->key;
    file.path = path;
    meta.path = mpath;
    struct pypi_commit c = {cfg->key, norm,        u->filename, &file, mpath ? &meta : NULL,
                            &props,   r->user.name};
    rc = pypi_commit(r->ctx, a, &c);
    if (rc == GR_EEXIST) {
        http_error(r, 400, "File already exists: '%s' (files are immutable: delete it first)",
                   u->filename);
        return;
    }
    if (rc == GR_ENOTFOUND) {
        http_error(r, 404, "repository '%s' not found", cfg->key);
        return;
    }
    if (rc) {
        http_error_code(r, rc,
                        rc == GR_EUNAVAIL ? "too few nodes could store a copy; try again" : NULL);
        return;
    }
    gr_info("req=%llu pypi upload %s/%s by %s", (unsigned long long)r->id, cfg->key, path,
            r->user.name);
    http_plug_after_upload(r, &file); /* plugins (h_plugins.c) */
    http_json(r, 200, http_artifact_json(r, &file, false));
}

void pypi_upload(struct http_req *r, const struct repo_config *cfg)
{
    /* before the body: the caller may write somewhere in the repository */
    const struct sec_perms *p;
    int rc = http_perms(r, &p);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    if (!p->all && !(sec_perms_in_repo(p, cfg->key) & SEC_WRITE)) {
        if (r->user.anonymous)
            http_error(r, 401, "authentication required");
        else
            http_error(r, 403, "user '%s' has no write permission in repository '%s'", r->user.name,
                       cfg->key);
        return;
    }
    const char *cl = http_req_header(r, "Content-Length");
    uint64_t max = r->srv->opt.max_body_size;
    if (cl && max && strtoull(cl, NULL, 10) > max) {
        http_error(r, 413, "body of %s bytes is larger than the limit of %llu bytes", cl,
                   (unsigned long long)max);
        return;
    }
    struct pypi__up *u = gr_arena_calloc(r->arena, sizeof(*u));
    u->cfg = cfg;
    gr_arena_cleanup(r->arena, pypi__vals_free, u);
    r->hctx = u;
    if (http_multipart_begin(r, pypi__piece, r, &u->mp)) {
        http_error(r, 400, "an upload is a multipart/form-data POST (twine upload)");
        return;
    }
    r->on_body = pypi__upload_body;
    r->on_end = pypi__upload_end;
}
