/*
 * oci.c - the pure rules of the OCI distribution and image specs: names,
 * tags, digests, the routes below /v2/, manifests, Content-Range and
 * Accept. No I/O; unit-tested in tests/unit/test_oci.c.
 */
#include "formats/oci/oci.h"

#include "base/err.h"
#include "base/pct.h"
#include "repo/repo.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool oci__lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* over s[0..n). */
static bool oci__component(const char *s, size_t n)
{
    if (n == 0 || !oci__lower_alnum(s[0]) || !oci__lower_alnum(s[n - 1]))
        return false;
    for (size_t i = 1; i < n; i++) {
        if (oci__lower_alnum(s[i]))
            continue;
        /* a separator: ".", "_", "__" or "-"+, between alphanumerics */
        size_t j = i;
        if (s[i] == '.') {
            j = i + 1;
        } else if (s[i] == '_') {
            j = i + 1;
            if (j < n && s[j] == '_')
                j++;
        } else if (s[i] == '-') {
            while (j < n && s[j] == '-')
                j++;
        } else {
            return false;
        }
        if (j >= n || !oci__lower_alnum(s[j]))
            return false;
        i = j;
    }
    return true;
}

bool oci_image_valid(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 255)
        return false;
    for (const char *p = s;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (!oci__component(p, n))
            return false;
        if (!slash)
            return true;
        p = slash + 1;
    }
}

bool oci_tag_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > OCI_TAG_MAX)
        return false;
    if (!(isalnum((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
            return false;
    return true;
}

bool oci_upload_id_valid(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i]))
            return false;
    }
    return true;
}

int oci_digest_parse(const char *s, struct oci_digest *out)
{
    memset(out, 0, sizeof(*out));
    const char *colon = s ? strchr(s, ':') : NULL;
    if (!colon)
        return GR_EINVAL;
    size_t an = (size_t)(colon - s), hn = strlen(colon + 1);
    if (an == 0 || an >= sizeof(out->alg) || hn == 0 || hn >= sizeof(out->hex))
        return GR_EINVAL;
    memcpy(out->alg, s, an);
    memcpy(out->hex, colon + 1, hn);
    size_t want;
    if (!strcmp(out->alg, "sha256"))
        want = 64;
    else if (!strcmp(out->alg, "sha512"))
        want = 128;
    else
        return GR_EINVAL;
    if (hn != want)
        return GR_EINVAL;
    for (size_t i = 0; i < hn; i++) {
        char c = out->hex[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return GR_EINVAL;
    }
    snprintf(out->text, sizeof(out->text), "%s:%s", out->alg, out->hex);
    return GR_OK;
}

/* Split name (decoded) into repository key and image path. */
static int oci__name(struct gr_arena *a, const char *name, size_t n, struct oci_route *out,
                     const char **why)
{
    out->name = gr_arena_strndup(a, name, n);
    const char *slash = strchr(out->name, '/');
    if (!slash) {
        *why = "a name is <repository key>/<image>: the image is missing";
        return GR_EINVAL;
    }
    out->repo = gr_arena_strndup(a, out->name, (size_t)(slash - out->name));
    out->image = slash + 1;
    if (repo_key_check(out->repo) != GR_OK) {
        *why = "the repository key in the name is not valid";
        return GR_EINVAL;
    }
    if (!oci_image_valid(out->image)) {
        *why = "invalid image name: lowercase components [a-z0-9] joined by '.', '_', '__' or "
               "'-', separated by '/'";
        return GR_EINVAL;
    }
    return GR_OK;
}

int oci_route_parse(struct gr_arena *a, const char *rest, bool post, struct oci_route *out,
                    const char **why)
{
    memset(out, 0, sizeof(*out));
    *why = NULL;
    char *p = gr_pct_decode(a, rest, strlen(rest));
    if (!p)
        return GR_EINVAL;
    size_t n = strlen(p);
    if (n == 0) {
        out->op = OCI_BASE;
        return GR_OK;
    }
    if (!strcmp(p, "_catalog")) {
        out->op = OCI_CATALOG;
        return GR_OK;
    }
    if (!strcmp(p, "token")) {
        out->op = OCI_TOKEN;
        return GR_OK;
    }
    /* from the right: .../blobs/uploads/[<id>], .../tags/list, .../<kind>/<ref> */
    static const struct {
        const char *suffix;
        enum oci_op op;
        bool post_only;
    } fixed[] = {
        {"/blobs/uploads/", OCI_UPLOAD_NEW, false},
        {"/blobs/uploads", OCI_UPLOAD_NEW, true},
        {"/tags/list", OCI_TAGS, false},
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        size_t sn = strlen(fixed[i].suffix);
        if (n > sn && !strcmp(p + n - sn, fixed[i].suffix) && (!fixed[i].post_only || post)) {
            out->op = fixed[i].op;
            return oci__name(a, p, n - sn, out, why);
        }
    }
    char *last = strrchr(p, '/');
    if (!last || last == p || !last[1])
        return GR_ENOTFOUND;
    size_t before = (size_t)(last - p);
    static const struct {
        const char *kind;
        enum oci_op op;
    } kinds[] = {
        {"/manifests", OCI_MANIFEST},
        {"/blobs", OCI_BLOB},
        {"/referrers", OCI_REFERRERS},
        {"/blobs/uploads", OCI_UPLOAD},
    };
    /* the longest kind that ends right before the last slash */
    int best = -1;
    for (int i = 0; i < (int)(sizeof(kinds) / sizeof(kinds[0])); i++) {
        size_t kn = strlen(kinds[i].kind);
        if (before > kn && !strncmp(p + before - kn, kinds[i].kind, kn) &&
            (best < 0 || kn > strlen(kinds[best].kind)))
            best = i;
    }
    if (best < 0)
        return GR_ENOTFOUND;
    out->op = kinds[best].op;
    out->ref = last + 1;
    return oci__name(a, p, before - strlen(kinds[best].kind), out, why);
}

/* ---- manifests ---- */

static bool oci__known_type(const char *t)
{
    return !strcmp(t, OCI_MT_OCI_MANIFEST) || !strcmp(t, OCI_MT_OCI_INDEX) ||
           !strcmp(t, OCI_MT_DOCKER_MANIFEST) || !strcmp(t, OCI_MT_DOCKER_LIST);
}

static bool oci__is_index(const char *t)
{
    return !strcmp(t, OCI_MT_OCI_INDEX) || !strcmp(t, OCI_MT_DOCKER_LIST);
}

/* A descriptor: mediaType (a string), digest, size. */
static int oci__descriptor(json_t *d, struct oci_ref *out, const char **why)
{
    json_t *mt = json_object_get(d, "mediaType");
    json_t *dg = json_object_get(d, "digest");
    json_t *sz = json_object_get(d, "size");
    if (!json_is_object(d) || !json_is_string(mt) || !json_is_string(dg) || !json_is_integer(sz)) {
        *why = "a descriptor needs mediaType, digest and size";
        return GR_EINVAL;
    }
    if (oci_digest_parse(json_string_value(dg), &out->digest) != GR_OK) {
        *why = "a descriptor's digest is not a valid sha256 or sha512 digest";
        return GR_EINVAL;
    }
    out->size = (int64_t)json_integer_value(sz);
    if (out->size < 0) {
        *why = "a descriptor's size is negative";
        return GR_EINVAL;
    }
    json_t *urls = json_object_get(d, "urls");
    out->foreign = json_is_array(urls) && json_array_size(urls) > 0;
    return GR_OK;
}

int oci_manifest_parse(struct gr_arena *a, const char *body, size_t len, const char *content_type,
                       struct oci_manifest *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = GR_EINVAL;
    if (!doc || !json_is_object(doc)) {
        *why = "the manifest is not a JSON object";
        goto out;
    }
    json_t *sv = json_object_get(doc, "schemaVersion");
    if (!json_is_integer(sv) || json_integer_value(sv) != 2) {
        *why = json_is_integer(sv) && json_integer_value(sv) == 1
                   ? "Docker image manifest schema 1 is not supported: push schema 2 or OCI"
                   : "schemaVersion must be 2";
        goto out;
    }
    json_t *mt = json_object_get(doc, "mediaType");
    if (mt && !json_is_string(mt)) {
        *why = "mediaType must be a string";
        goto out;
    }
    const char *field = mt ? json_string_value(mt) : NULL;
    char ctbuf[128] = "";
    if (content_type) { /* without parameters */
        size_t k = strcspn(content_type, ";");
        while (k > 0 && content_type[k - 1] == ' ')
            k--;
        if (k < sizeof(ctbuf))
            memcpy(ctbuf, content_type, k), ctbuf[k] = '\0';
    }
    const char *ct = ctbuf[0] ? ctbuf : NULL;
    if (field && ct && strcmp(field, ct) && oci__known_type(ct)) {
        *why = "the manifest's mediaType differs from its Content-Type";
        goto out;
    }
    const char *type = field;
    if (!type && ct && oci__known_type(ct))
        type = ct;
    if (!type) /* the shape tells */
        type = json_object_get(doc, "manifests") ? OCI_MT_OCI_INDEX : OCI_MT_OCI_MANIFEST;
    if (!oci__known_type(type)) {
        *why = "unsupported manifest media type";
        goto out;
    }
    out->media_type = gr_arena_strdup(a, type);
    json_t *at = json_object_get(doc, "artifactType");
    if (at && !json_is_string(at)) {
        *why = "artifactType must be a string";
        goto out;
    }
    if (at && !*json_string_value(at)) /* empty is missing (the referrers rule) */
        at = NULL;
    if (oci__is_index(type)) {
        json_t *ms = json_object_get(doc, "manifests");
        if (!json_is_array(ms)) {
            *why = "an index needs a manifests array";
            goto out;
        }
        out->refs = gr_arena_calloc(a, (json_array_size(ms) + 1) * sizeof(*out->refs));
        size_t i;
        json_t *d;
        json_array_foreach(ms, i, d)
        {
            struct oci_ref *r = &out->refs[out->nrefs];
            if (oci__descriptor(d, r, why))
                goto out;
            r->manifest = true;
            r->foreign = false;
            out->nrefs++;
        }
    } else {
        json_t *cfg = json_object_get(doc, "config");
        json_t *layers = json_object_get(doc, "layers");
        if (!cfg || !json_is_array(layers)) {
            *why = "an image manifest needs config and layers";
            goto out;
        }
        out->refs = gr_arena_calloc(a, (json_array_size(layers) + 1) * sizeof(*out->refs));
        if (oci__descriptor(cfg, &out->refs[0], why))
            goto out;
        out->refs[0].foreign = false;
        out->config = out->refs[0].digest.text;
        out->nrefs = 1;
        size_t i;
        json_t *d;
        json_array_foreach(layers, i, d)
        {
            if (oci__descriptor(d, &out->refs[out->nrefs], why))
                goto out;
            out->nrefs++;
        }
        if (!at)
            at = json_object_get(cfg, "mediaType");
    }
    if (at)
        out->artifact_type = gr_arena_strdup(a, json_string_value(at));
    json_t *subj = json_object_get(doc, "subject");
    if (subj) {
        struct oci_ref s;
        if (oci__descriptor(subj, &s, why))
            goto out;
        out->subject = gr_arena_strdup(a, s.digest.text);
    }
    json_t *ann = json_object_get(doc, "annotations");
    if (ann && !json_is_object(ann)) {
        *why = "annotations must be an object";
        goto out;
    }
    if (ann && json_object_size(ann)) {
        char *s = json_dumps(ann, JSON_COMPACT);
        out->annotations = s ? gr_arena_strdup(a, s) : NULL;
        free(s);
    }
    rc = GR_OK;
out:
    json_decref(doc);
    return rc;
}

const char *oci_manifest_media_type(struct gr_arena *a, const char *body, size_t len)
{
    json_t *doc = json_loadb(body, len, 0, NULL);
    json_t *mt = json_object_get(doc, "mediaType");
    const char *s = json_is_string(mt) ? gr_arena_strdup(a, json_string_value(mt)) : NULL;
    json_decref(doc);
    return s;
}

bool oci_accepts(const char *accept, const char *media_type)
{
    if (!accept || !*accept)
        return true;
    size_t tn = strlen(media_type);
    const char *slash = strchr(media_type, '/');
    size_t major = slash ? (size_t)(slash - media_type) : tn;
    for (const char *p = accept; *p;) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, ",;");
        size_t k = n;
        while (k > 0 && (p[k - 1] == ' ' || p[k - 1] == '\t'))
            k--;
        if ((k == tn && !strncasecmp(p, media_type, tn)) || (k == 3 && !strncmp(p, "*/*", 3)) ||
            (k == major + 2 && !strncasecmp(p, media_type, major) && !strncmp(p + major, "/*", 2)))
            return true;
        p += strcspn(p, ",");
    }
    return false;
}

int oci_content_range(const char *v, uint64_t *start, uint64_t *end)
{
    if (!v)
        return GR_EINVAL;
    v += strspn(v, " ");
    if (!strncasecmp(v, "bytes=", 6))
        v += 6;
    else if (!strncasecmp(v, "bytes ", 6))
        v += 6;
    if (!isdigit((unsigned char)*v))
        return GR_EINVAL;
    char *e;
    unsigned long long a = strtoull(v, &e, 10);
    if (*e != '-' || !isdigit((unsigned char)e[1]))
        return GR_EINVAL;
    unsigned long long b = strtoull(e + 1, &e, 10);
    e += strspn(e, " ");
    if (*e == '/') { /* "a-b/total" */
        e++;
        while (*e && (isdigit((unsigned char)*e) || *e == '*'))
            e++;
    }
    if (*e || b < a)
        return GR_EINVAL;
    *start = a;
    *end = b;
    return GR_OK;
}
