/*
 * maven.c - the Maven 2 layout, Maven's version order, maven-metadata.xml
 * computed from the artifact rows, POM coordinates (libxml2), snapshot
 * retention and the GAVC search. See maven.h and docs/maven.md.
 */
#include "formats/maven/maven.h"

#include "base/err.h"
#include "base/sbuf.h"
#include "db/db.h"
#include "repo/props.h"

#include <ctype.h>
#include <fnmatch.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MS(col) "(extract(epoch from " col ") * 1000)::bigint"

/* ---- layout ---- */

bool maven_is_snapshot(const char *version)
{
    size_t n = strlen(version);
    return n > 9 && !strcmp(version + n - 9, "-SNAPSHOT");
}

/* "20261128.002356-3" at s: its length, timestamp and build number, or 0. */
static size_t maven__unique_suffix(const char *s, char ts[16], int *build)
{
    for (int i = 0; i < 15; i++) {
        if (i == 8 ? s[i] != '.' : !isdigit((unsigned char)s[i]))
            return 0;
    }
    if (s[15] != '-' || !isdigit((unsigned char)s[16]))
        return 0;
    size_t n = 16;
    long b = 0;
    while (isdigit((unsigned char)s[n]) && n < 26)
        b = b * 10 + (s[n++] - '0');
    if (isdigit((unsigned char)s[n]) || b <= 0)
        return 0;
    memcpy(ts, s, 15);
    ts[15] = '\0';
    *build = (int)b;
    return n;
}

static const char *const maven__sums[] = {"sha1", "md5", "sha256", "sha512", NULL};

int maven_parse_path(const char *path, struct maven_path *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    *why = NULL;
    size_t len = strlen(path);
    /* the buffer holds: base, group (dotted), group_path, artifact, version,
     * file_version, classifier, ext, checksum; each at most len + 1 */
    if (len == 0 || len * 9 + 16 > sizeof(out->buf)) {
        *why = "path too long for the Maven layout";
        return GR_EINVAL;
    }
    char *w = out->buf;
#define MAVEN_PUT(dst, src, n)                                                                     \
    do {                                                                                           \
        memcpy(w, (src), (n));                                                                     \
        w[(n)] = '\0';                                                                             \
        (dst) = w;                                                                                 \
        w += (n) + 1;                                                                              \
    } while (0)
    size_t blen = len;
    out->checksum = "";
    for (int i = 0; maven__sums[i]; i++) {
        size_t sl = strlen(maven__sums[i]);
        if (len > sl + 1 && path[len - sl - 1] == '.' && !strcmp(path + len - sl, maven__sums[i])) {
            out->checksum = maven__sums[i];
            blen = len - sl - 1;
            break;
        }
    }
    MAVEN_PUT(out->base, path, blen);
    /* segments of base */
    const char *seg[512];
    size_t segl[512];
    int nseg = 0;
    for (const char *s = out->base; *s;) {
        const char *e = strchr(s, '/');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (l == 0 || nseg == 512) {
            *why = "empty path segment";
            return GR_EINVAL;
        }
        seg[nseg] = s;
        segl[nseg++] = l;
        s += l + (e ? 1 : 0);
    }
    const char *file = seg[nseg - 1];
    size_t filel = segl[nseg - 1];
    int ngroup;
    if (filel == 18 && !memcmp(file, "maven-metadata.xml", 18)) {
        if (nseg >= 4 && segl[nseg - 2] > 9 &&
            !memcmp(seg[nseg - 2] + segl[nseg - 2] - 9, "-SNAPSHOT", 9)) {
            out->kind = MAVEN_META_VERSION;
            MAVEN_PUT(out->version, seg[nseg - 2], segl[nseg - 2]);
            MAVEN_PUT(out->artifact, seg[nseg - 3], segl[nseg - 3]);
            ngroup = nseg - 3;
            out->snapshot = true;
        } else if (nseg >= 2) {
            out->kind = MAVEN_META_ARTIFACT;
            MAVEN_PUT(out->artifact, seg[nseg - 2], segl[nseg - 2]);
            ngroup = nseg - 2;
            out->version = "";
        } else {
            *why = "maven-metadata.xml at the repository root";
            return GR_EINVAL;
        }
        out->file_version = out->version;
        out->classifier = "";
        out->ext = "xml";
    } else {
        if (nseg < 4) {
            *why = "expected group/artifact/version/artifact-version[-classifier].extension";
            return GR_EINVAL;
        }
        out->kind = MAVEN_FILE;
        MAVEN_PUT(out->version, seg[nseg - 2], segl[nseg - 2]);
        MAVEN_PUT(out->artifact, seg[nseg - 3], segl[nseg - 3]);
        ngroup = nseg - 3;
        out->snapshot = maven_is_snapshot(out->version);
        size_t al = segl[nseg - 3], vl = segl[nseg - 2];
        if (filel <= al + 1 || memcmp(file, out->artifact, al) || file[al] != '-') {
            *why = "the file name does not start with the artifactId and '-'";
            return GR_EINVAL;
        }
        const char *rest = file + al + 1;
        size_t restl = filel - al - 1, fvl = 0;
        if (restl >= vl && !memcmp(rest, out->version, vl) &&
            (restl == vl || rest[vl] == '-' || rest[vl] == '.'))
            fvl = vl;
        if (out->snapshot && restl > vl - 8) {
            size_t bl = vl - 8; /* "1.0-" of "1.0-SNAPSHOT" */
            size_t ul = 0;
            if (!memcmp(rest, out->version, bl))
                ul = maven__unique_suffix(rest + bl, out->timestamp, &out->build);
            if (ul && (bl + ul == restl || rest[bl + ul] == '-' || rest[bl + ul] == '.')) {
                fvl = bl + ul;
                out->timestamped = true;
            }
        }
        if (!fvl) {
            *why = "the file name does not carry the version of its folder";
            return GR_EINVAL;
        }
        MAVEN_PUT(out->file_version, rest, fvl);
        const char *tail = rest + fvl;
        size_t taill = restl - fvl;
        const char *dot = memchr(tail, '.', taill);
        if (!dot || dot == tail + taill - 1) {
            *why = "the file name has no extension";
            return GR_EINVAL;
        }
        if (*tail == '-') {
            if (dot == tail + 1) {
                *why = "empty classifier";
                return GR_EINVAL;
            }
            MAVEN_PUT(out->classifier, tail + 1, (size_t)(dot - tail - 1));
        } else {
            out->classifier = "";
        }
        MAVEN_PUT(out->ext, dot + 1, (size_t)(tail + taill - dot - 1));
    }
    if (ngroup < 1 && out->kind != MAVEN_META_ARTIFACT) {
        *why = "no groupId";
        return GR_EINVAL;
    }
    size_t gl = ngroup ? (size_t)(seg[ngroup - 1] + segl[ngroup - 1] - seg[0]) : 0;
    MAVEN_PUT(out->group_path, out->base, gl);
    MAVEN_PUT(out->group, out->base, gl);
    for (char *p = (char *)out->group; *p; p++)
        if (*p == '/')
            *p = '.';
#undef MAVEN_PUT
    return GR_OK;
}

/* ---- ComparableVersion ---- */

enum vitem { VI_INT, VI_STR, VI_LIST };

struct vnode {
    enum vitem type;
    const char *s; /* VI_INT: digits without leading zeros; VI_STR: the comparable qualifier */
    size_t len;
    int parent;
    bool removed;
    int nkids, *kids;
};

#define VMAX 256

struct vtree {
    struct vnode n[VMAX];
    int count;
    char text[1024]; /* lowercased copy and the qualifiers' comparable forms */
    size_t used;
    int kidpool[VMAX];
};

static const char *const vqualifiers[] = {"alpha", "beta", "milestone", "rc", "snapshot", "", "sp"};

/* Store the comparable form of a qualifier (Maven's StringItem). */
static const char *vt_qualifier(struct vtree *t, const char *s, size_t len, bool followed_by_digit,
                                size_t *outlen)
{
    char q[128];
    size_t ql = len < sizeof(q) - 1 ? len : sizeof(q) - 1;
    memcpy(q, s, ql);
    q[ql] = '\0';
    if (followed_by_digit && ql == 1) {
        const char *full = q[0] == 'a'   ? "alpha"
                           : q[0] == 'b' ? "beta"
                           : q[0] == 'm' ? "milestone"
                                         : NULL;
        if (full)
            snprintf(q, sizeof(q), "%s", full);
    }
    if (!strcmp(q, "ga") || !strcmp(q, "final") || !strcmp(q, "release"))
        q[0] = '\0';
    else if (!strcmp(q, "cr"))
        snprintf(q, sizeof(q), "rc");
    char out[160];
    int idx = -1;
    for (int i = 0; i < 7; i++)
        if (!strcmp(q, vqualifiers[i]))
            idx = i;
    if (idx >= 0)
        snprintf(out, sizeof(out), "%d", idx);
    else
        snprintf(out, sizeof(out), "7-%s", q);
    size_t ol = strlen(out);
    if (t->used + ol + 1 > sizeof(t->text)) {
        *outlen = 0;
        return "";
    }
    char *dst = t->text + t->used;
    memcpy(dst, out, ol + 1);
    t->used += ol + 1;
    *outlen = ol;
    return dst;
}

static int vt_add(struct vtree *t, int parent, enum vitem type, const char *s, size_t len,
                  bool digit_follows)
{
    if (t->count == VMAX)
        return -1;
    struct vnode *v = &t->n[t->count];
    memset(v, 0, sizeof(*v));
    v->type = type;
    v->parent = parent;
    if (type == VI_INT) {
        while (len > 1 && *s == '0')
            s++, len--;
        v->s = s;
        v->len = len;
    } else if (type == VI_STR) {
        v->s = vt_qualifier(t, s, len, digit_follows, &v->len);
    }
    return t->count++;
}

static bool vt_is_null(const struct vtree *t, int i)
{
    const struct vnode *v = &t->n[i];
    switch (v->type) {
    case VI_INT:
        return v->len == 1 && v->s[0] == '0';
    case VI_STR:
        return v->len == 1 && v->s[0] == '5'; /* the release qualifier "" */
    default:
        for (int k = 0; k < t->count; k++)
            if (t->n[k].parent == i && !t->n[k].removed)
                return false;
        return true;
    }
}

/* Maven's ListItem.normalize(): drop trailing null items. */
static void vt_normalize(struct vtree *t, int list)
{
    for (int k = t->count - 1; k > list; k--) {
        if (t->n[k].parent != list || t->n[k].removed)
            continue;
        if (vt_is_null(t, k))
            t->n[k].removed = true;
        else if (t->n[k].type != VI_LIST)
            break;
    }
}

static void vt_parse(struct vtree *t, const char *version)
{
    t->count = 0;
    t->used = 0;
    size_t n = strlen(version);
    if (n > 255)
        n = 255;
    char *lc = t->text;
    for (size_t i = 0; i < n; i++)
        lc[i] = (char)tolower((unsigned char)version[i]);
    lc[n] = '\0';
    t->used = n + 1;
    int stack[VMAX], sp = 0;
    int list = vt_add(t, -1, VI_LIST, NULL, 0, false);
    stack[sp++] = list;
    bool digit = false;
    size_t start = 0;
    for (size_t i = 0; i < n && list >= 0; i++) {
        char c = lc[i];
        if (c == '.' || c == '-') {
            if (i == start)
                vt_add(t, list, VI_INT, "0", 1, false);
            else
                vt_add(t, list, digit ? VI_INT : VI_STR, lc + start, i - start, false);
            start = i + 1;
            if (c == '-') {
                list = vt_add(t, list, VI_LIST, NULL, 0, false);
                if (list >= 0 && sp < VMAX)
                    stack[sp++] = list;
            }
        } else if (isdigit((unsigned char)c)) {
            if (!digit && i > start) {
                vt_add(t, list, VI_STR, lc + start, i - start, true);
                start = i;
                list = vt_add(t, list, VI_LIST, NULL, 0, false);
                if (list >= 0 && sp < VMAX)
                    stack[sp++] = list;
            }
            digit = true;
        } else {
            if (digit && i > start) {
                vt_add(t, list, VI_INT, lc + start, i - start, false);
                start = i;
                list = vt_add(t, list, VI_LIST, NULL, 0, false);
                if (list >= 0 && sp < VMAX)
                    stack[sp++] = list;
            }
            digit = false;
        }
    }
    if (list >= 0 && n > start)
        vt_add(t, list, digit ? VI_INT : VI_STR, lc + start, n - start, false);
    while (sp > 0)
        vt_normalize(t, stack[--sp]);
    /* children arrays, in order */
    int used = 0;
    for (int i = 0; i < t->count; i++) {
        if (t->n[i].type != VI_LIST)
            continue;
        t->n[i].kids = t->kidpool + used;
        for (int k = i + 1; k < t->count; k++)
            if (t->n[k].parent == i && !t->n[k].removed)
                t->n[i].kids[t->n[i].nkids++] = k;
        used += t->n[i].nkids;
    }
}

static int vt_cmp_str(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c)
        return c < 0 ? -1 : 1;
    return al < bl ? -1 : al > bl ? 1 : 0;
}

static int vt_cmp(const struct vtree *ta, int a, const struct vtree *tb, int b);

/* item a compared with "nothing" (Maven's compareTo(null)) */
static int vt_cmp_null(const struct vtree *t, int a)
{
    const struct vnode *v = &t->n[a];
    switch (v->type) {
    case VI_INT:
        return vt_is_null(t, a) ? 0 : 1;
    case VI_STR:
        return vt_cmp_str(v->s, v->len, "5", 1);
    default:
        return v->nkids ? vt_cmp_null(t, v->kids[0]) : 0;
    }
}

static int vt_cmp(const struct vtree *ta, int a, const struct vtree *tb, int b)
{
    const struct vnode *x = &ta->n[a], *y = &tb->n[b];
    switch (x->type) {
    case VI_INT:
        if (y->type != VI_INT)
            return 1;
        if (x->len != y->len)
            return x->len < y->len ? -1 : 1;
        return vt_cmp_str(x->s, x->len, y->s, y->len);
    case VI_STR:
        if (y->type != VI_STR)
            return -1;
        return vt_cmp_str(x->s, x->len, y->s, y->len);
    default:
        if (y->type == VI_INT)
            return -1;
        if (y->type == VI_STR)
            return 1;
        for (int i = 0; i < x->nkids || i < y->nkids; i++) {
            int r;
            if (i >= x->nkids)
                r = -vt_cmp_null(tb, y->kids[i]);
            else if (i >= y->nkids)
                r = vt_cmp_null(ta, x->kids[i]);
            else
                r = vt_cmp(ta, x->kids[i], tb, y->kids[i]);
            if (r)
                return r;
        }
        return 0;
    }
}

int maven_version_cmp(const char *a, const char *b)
{
    struct vtree *t = malloc(2 * sizeof(*t));
    if (!t)
        return strcmp(a, b);
    vt_parse(&t[0], a);
    vt_parse(&t[1], b);
    int r = vt_cmp(&t[0], 0, &t[1], 0);
    free(t);
    return r;
}

/* ---- metadata ---- */

static void maven__elem(struct gr_sbuf *sb, const char *indent, const char *name, const char *v)
{
    gr_sbuf_addf(sb, "%s<%s>", indent, name);
    gr_sbuf_add_html(sb, v);
    gr_sbuf_addf(sb, "</%s>\n", name);
}

/* yyyyMMddHHmmss in UTC */
static void maven__stamp(int64_t ms, char out[16])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y%m%d%H%M%S", &tm);
}

static int maven__vcmp_q(const void *x, const void *y)
{
    return maven_version_cmp(*(const char *const *)x, *(const char *const *)y);
}

int maven_metadata_artifact(const char *group, const char *artifact, const struct maven_file *f,
                            int n, struct gr_sbuf *sb)
{
    const char **v = malloc(sizeof(*v) * (size_t)(n ? n : 1));
    struct maven_path *p = malloc(sizeof(*p));
    char **owned = malloc(sizeof(*owned) * (size_t)(n ? n : 1));
    if (!v || !p || !owned) {
        free(v);
        free(p);
        free(owned);
        return GR_ENOMEM;
    }
    int nv = 0;
    int64_t newest = 0;
    for (int i = 0; i < n; i++) {
        const char *why;
        if (maven_parse_path(f[i].path, p, &why) != GR_OK || p->kind != MAVEN_FILE ||
            *p->checksum || strcmp(p->group, group) || strcmp(p->artifact, artifact))
            continue;
        if (f[i].modified_ms > newest)
            newest = f[i].modified_ms;
        bool seen = false;
        for (int k = 0; k < nv && !seen; k++)
            seen = !strcmp(v[k], p->version);
        if (!seen) {
            owned[nv] = strdup(p->version);
            v[nv] = owned[nv];
            if (v[nv])
                nv++;
        }
    }
    free(p);
    if (nv == 0) {
        free(v);
        free(owned);
        return GR_ENOTFOUND;
    }
    qsort(v, (size_t)nv, sizeof(*v), maven__vcmp_q);
    const char *release = NULL;
    for (int k = nv - 1; k >= 0 && !release; k--)
        if (!maven_is_snapshot(v[k]))
            release = v[k];
    char stamp[16];
    maven__stamp(newest, stamp);
    gr_sbuf_adds(sb, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata>\n");
    maven__elem(sb, "  ", "groupId", group);
    maven__elem(sb, "  ", "artifactId", artifact);
    gr_sbuf_adds(sb, "  <versioning>\n");
    maven__elem(sb, "    ", "latest", v[nv - 1]);
    if (release)
        maven__elem(sb, "    ", "release", release);
    gr_sbuf_adds(sb, "    <versions>\n");
    for (int k = 0; k < nv; k++)
        maven__elem(sb, "      ", "version", v[k]);
    gr_sbuf_adds(sb, "    </versions>\n");
    maven__elem(sb, "    ", "lastUpdated", stamp);
    gr_sbuf_adds(sb, "  </versioning>\n</metadata>\n");
    for (int k = 0; k < nv; k++)
        free(owned[k]);
    free(owned);
    free(v);
    return GR_OK;
}

struct maven__snap {
    char classifier[256], ext[64], value[128], timestamp[16];
    int build;
};

static int maven__snap_q(const void *x, const void *y)
{
    const struct maven__snap *a = x, *b = y;
    int c = strcmp(a->classifier, b->classifier);
    return c ? c : strcmp(a->ext, b->ext);
}

int maven_metadata_snapshot(const char *group, const char *artifact, const char *version,
                            const struct maven_file *f, int n, struct gr_sbuf *sb)
{
    struct maven__snap *s = calloc((size_t)(n ? n : 1), sizeof(*s));
    struct maven_path *p = malloc(sizeof(*p));
    if (!s || !p) {
        free(s);
        free(p);
        return GR_ENOMEM;
    }
    int ns = 0, best = -1;
    char best_ts[16] = "";
    int64_t newest = 0;
    for (int i = 0; i < n; i++) {
        const char *why;
        if (maven_parse_path(f[i].path, p, &why) != GR_OK || p->kind != MAVEN_FILE ||
            *p->checksum || !p->timestamped || strcmp(p->group, group) ||
            strcmp(p->artifact, artifact) || strcmp(p->version, version))
            continue;
        if (strlen(p->classifier) >= sizeof(s->classifier) || strlen(p->ext) >= sizeof(s->ext) ||
            strlen(p->file_version) >= sizeof(s->value))
            continue;
        if (f[i].modified_ms > newest)
            newest = f[i].modified_ms;
        if (p->build > best || (p->build == best && strcmp(p->timestamp, best_ts) > 0)) {
            best = p->build;
            snprintf(best_ts, sizeof(best_ts), "%s", p->timestamp);
        }
        int k = 0;
        while (k < ns && (strcmp(s[k].classifier, p->classifier) || strcmp(s[k].ext, p->ext)))
            k++;
        if (k == ns) {
            snprintf(s[k].classifier, sizeof(s[k].classifier), "%s", p->classifier);
            snprintf(s[k].ext, sizeof(s[k].ext), "%s", p->ext);
            s[k].build = -1;
            ns++;
        }
        if (p->build > s[k].build ||
            (p->build == s[k].build && strcmp(p->timestamp, s[k].timestamp) > 0)) {
            s[k].build = p->build;
            snprintf(s[k].timestamp, sizeof(s[k].timestamp), "%s", p->timestamp);
            snprintf(s[k].value, sizeof(s[k].value), "%s", p->file_version);
        }
    }
    free(p);
    if (ns == 0) {
        free(s);
        return GR_ENOTFOUND;
    }
    qsort(s, (size_t)ns, sizeof(*s), maven__snap_q);
    char stamp[16];
    maven__stamp(newest, stamp);
    gr_sbuf_adds(sb,
                 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata modelVersion=\"1.1.0\">\n");
    maven__elem(sb, "  ", "groupId", group);
    maven__elem(sb, "  ", "artifactId", artifact);
    maven__elem(sb, "  ", "version", version);
    gr_sbuf_adds(sb, "  <versioning>\n    <snapshot>\n");
    maven__elem(sb, "      ", "timestamp", best_ts);
    gr_sbuf_addf(sb, "      <buildNumber>%d</buildNumber>\n", best);
    gr_sbuf_adds(sb, "    </snapshot>\n");
    maven__elem(sb, "    ", "lastUpdated", stamp);
    gr_sbuf_adds(sb, "    <snapshotVersions>\n");
    for (int k = 0; k < ns; k++) {
        char upd[16];
        /* the build's own time: its timestamp without the dot */
        memcpy(upd, s[k].timestamp, 8);
        memcpy(upd + 8, s[k].timestamp + 9, 6);
        upd[14] = '\0';
        gr_sbuf_adds(sb, "      <snapshotVersion>\n");
        if (*s[k].classifier)
            maven__elem(sb, "        ", "classifier", s[k].classifier);
        maven__elem(sb, "        ", "extension", s[k].ext);
        maven__elem(sb, "        ", "value", s[k].value);
        maven__elem(sb, "        ", "updated", upd);
        gr_sbuf_adds(sb, "      </snapshotVersion>\n");
    }
    gr_sbuf_adds(sb, "    </snapshotVersions>\n  </versioning>\n</metadata>\n");
    free(s);
    return GR_OK;
}

int maven_snapshot_resolve(struct gr_arena *a, const struct maven_path *want,
                           const struct maven_file *f, int n, const char **out)
{
    struct maven_path *p = malloc(sizeof(*p));
    if (!p)
        return GR_ENOMEM;
    int best = -1;
    char best_ts[16] = "";
    *out = NULL;
    for (int i = 0; i < n; i++) {
        const char *why;
        if (maven_parse_path(f[i].path, p, &why) != GR_OK || p->kind != MAVEN_FILE ||
            *p->checksum || !p->timestamped || strcmp(p->artifact, want->artifact) ||
            strcmp(p->version, want->version) || strcmp(p->group, want->group) ||
            strcmp(p->classifier, want->classifier) || strcmp(p->ext, want->ext))
            continue;
        if (p->build > best || (p->build == best && strcmp(p->timestamp, best_ts) > 0)) {
            best = p->build;
            snprintf(best_ts, sizeof(best_ts), "%s", p->timestamp);
            *out = gr_arena_strdup(a, f[i].path);
        }
    }
    free(p);
    return *out ? GR_OK : GR_ENOTFOUND;
}

/* ---- POM ---- */

static pthread_once_t maven__xml_once = PTHREAD_ONCE_INIT;

static void maven__xml_init(void)
{
    xmlInitParser();
}

/* The text of the first child element called name, or NULL. */
static xmlNodePtr maven__child(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr c = parent ? parent->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, name))
            return c;
    return NULL;
}

static const char *maven__text(struct gr_arena *a, xmlNodePtr n)
{
    if (!n)
        return NULL;
    xmlChar *s = xmlNodeGetContent(n);
    if (!s)
        return NULL;
    /* trim */
    const char *b = (const char *)s;
    while (isspace((unsigned char)*b))
        b++;
    size_t l = strlen(b);
    while (l > 0 && isspace((unsigned char)b[l - 1]))
        l--;
    char *r = gr_arena_strndup(a, b, l);
    xmlFree(s);
    return r;
}

int maven_pom_gav(struct gr_arena *a, const char *xml, size_t len, const char **g, const char **art,
                  const char **v)
{
    pthread_once(&maven__xml_once, maven__xml_init);
    *g = *art = *v = NULL;
    if (len > (size_t)64 * 1024 * 1024)
        return GR_EINVAL;
    /* no network, no entity expansion, no DTD loading */
    xmlDocPtr doc = xmlReadMemory(xml, (int)len, "pom.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        return GR_EINVAL;
    int rc = GR_EINVAL;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (root && !strcmp((const char *)root->name, "project")) {
        xmlNodePtr parent = maven__child(root, "parent");
        *g = maven__text(a, maven__child(root, "groupId"));
        *art = maven__text(a, maven__child(root, "artifactId"));
        *v = maven__text(a, maven__child(root, "version"));
        if (!*g)
            *g = maven__text(a, maven__child(parent, "groupId"));
        if (!*v)
            *v = maven__text(a, maven__child(parent, "version"));
        rc = GR_OK;
    }
    xmlFreeDoc(doc);
    return rc;
}

/* ---- virtual repositories: merged metadata ---- */

int maven_metadata_merge(struct gr_arena *a, const char *path, const char *const *members,
                         const char *const *docs, const size_t *lens, int n, char **out,
                         size_t *out_len)
{
    (void)members;
    pthread_once(&maven__xml_once, maven__xml_init);
    size_t pl = strlen(path);
    /* a snapshot's build list is not merged: the first member's builds */
    bool version_level = pl > 28 && !strcmp(path + pl - 28, "-SNAPSHOT/maven-metadata.xml");
    if (version_level || n == 1) {
        *out = gr_arena_strndup(a, docs[0], lens[0]);
        *out_len = lens[0];
        return GR_OK;
    }
    const char *g = NULL, *art = NULL, *stamp = NULL;
    const char **v = NULL;
    int nv = 0, cap = 0;
    for (int i = 0; i < n; i++) {
        if (lens[i] > (size_t)64 * 1024 * 1024)
            continue;
        xmlDocPtr doc = xmlReadMemory(docs[i], (int)lens[i], "maven-metadata.xml", NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
        xmlNodePtr ving = root && !strcmp((const char *)root->name, "metadata")
                              ? maven__child(root, "versioning")
                              : NULL;
        if (ving) {
            if (!g)
                g = maven__text(a, maven__child(root, "groupId"));
            if (!art)
                art = maven__text(a, maven__child(root, "artifactId"));
            const char *lu = maven__text(a, maven__child(ving, "lastUpdated"));
            if (lu && (!stamp || strcmp(lu, stamp) > 0))
                stamp = lu;
            xmlNodePtr vs = maven__child(ving, "versions");
            for (xmlNodePtr c = vs ? vs->children : NULL; c; c = c->next) {
                if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "version"))
                    continue;
                const char *ver = maven__text(a, c);
                bool seen = !ver || !*ver;
                for (int k = 0; k < nv && !seen; k++)
                    seen = !strcmp(v[k], ver);
                if (seen)
                    continue;
                if (nv == cap) {
                    cap = cap ? cap * 2 : 32;
                    const char **nvv = gr_arena_alloc(a, sizeof(*nvv) * (size_t)cap);
                    if (nv)
                        memcpy(nvv, v, sizeof(*nvv) * (size_t)nv);
                    v = nvv;
                }
                v[nv++] = ver;
            }
        }
        xmlFreeDoc(doc);
    }
    if (nv == 0 || !g || !art)
        return GR_EINVAL; /* not artifact metadata (a group's plugins): the first member's */
    qsort(v, (size_t)nv, sizeof(*v), maven__vcmp_q);
    const char *release = NULL;
    for (int k = nv - 1; k >= 0 && !release; k--)
        if (!maven_is_snapshot(v[k]))
            release = v[k];
    struct gr_sbuf sb = GR_SBUF_INIT;
    gr_sbuf_adds(&sb, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata>\n");
    maven__elem(&sb, "  ", "groupId", g);
    maven__elem(&sb, "  ", "artifactId", art);
    gr_sbuf_adds(&sb, "  <versioning>\n");
    maven__elem(&sb, "    ", "latest", v[nv - 1]);
    if (release)
        maven__elem(&sb, "    ", "release", release);
    gr_sbuf_adds(&sb, "    <versions>\n");
    for (int k = 0; k < nv; k++)
        maven__elem(&sb, "      ", "version", v[k]);
    gr_sbuf_adds(&sb, "    </versions>\n");
    if (stamp)
        maven__elem(&sb, "    ", "lastUpdated", stamp);
    gr_sbuf_adds(&sb, "  </versioning>\n</metadata>\n");
    *out = gr_arena_strndup(a, sb.buf, sb.len);
    *out_len = sb.len;
    gr_sbuf_release(&sb);
    return GR_OK;
}

/* ---- database ---- */

int maven_list_files(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *folder,
                     bool deep, struct maven_file **out, int *n)
{
    struct gr_sbuf like = GR_SBUF_INIT;
    db_like_below(&like, folder);
    char skip[24];
    snprintf(skip, sizeof(skip), "%zu", strlen(folder) + 2);
    const char *p[4] = {repo, like.buf, skip, deep ? "t" : "f"};
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "SELECT path, " MS(
                          "modified") " FROM artifacts"
                                      " WHERE repo = $1 AND path LIKE $2 ESCAPE '\\'"
                                      " AND ($4::boolean OR strpos(substr(path, $3::int), '/') = 0)"
                                      " ORDER BY path",
                      4, p);
    gr_sbuf_release(&like);
    if (rc)
        return rc;
    db_res_arena(res, a);
    int rows = db_res_rows(res);
    struct maven_file *v = gr_arena_calloc(a, sizeof(*v) * (size_t)(rows ? rows : 1));
    for (int i = 0; i < rows; i++) {
        v[i].path = db_res_get(res, i, 0);
        v[i].modified_ms = strtoll(db_res_get(res, i, 1), NULL, 10);
    }
    *out = v;
    *n = rows;
    return GR_OK;
}

static int maven__int_desc(const void *x, const void *y)
{
    int a = *(const int *)x, b = *(const int *)y;
    return a < b ? 1 : a > b ? -1 : 0;
}

int maven_prune_snapshots(struct repo_ctx *ctx, struct gr_arena *a, const char *repo,
                          const char *folder, int keep, const char *user, int *deleted)
{
    *deleted = 0;
    if (keep <= 0)
        return GR_OK;
    struct maven_file *f;
    int n;
    int rc = maven_list_files(ctx, a, repo, folder, false, &f, &n);
    if (rc || n == 0)
        return rc;
    int *builds = gr_arena_alloc(a, sizeof(int) * (size_t)n);
    int *fb = gr_arena_alloc(a, sizeof(int) * (size_t)n);
    int nb = 0;
    struct maven_path *p = gr_arena_alloc(a, sizeof(*p));
    for (int i = 0; i < n; i++) {
        const char *why;
        fb[i] = -1;
        if (maven_parse_path(f[i].path, p, &why) != GR_OK || p->kind != MAVEN_FILE ||
            !p->timestamped)
            continue;
        fb[i] = p->build;
        bool seen = false;
        for (int k = 0; k < nb && !seen; k++)
            seen = builds[k] == p->build;
        if (!seen)
            builds[nb++] = p->build;
    }
    if (nb <= keep)
        return GR_OK;
    qsort(builds, (size_t)nb, sizeof(int), maven__int_desc);
    int oldest_kept = builds[keep - 1];
    for (int i = 0; i < n; i++) {
        if (fb[i] < 0 || fb[i] >= oldest_kept)
            continue;
        rc = artifact_delete(ctx, repo, f[i].path, user);
        if (rc == GR_ENOTFOUND) /* a concurrent prune got there first */
            continue;
        if (rc)
            return rc;
        (*deleted)++;
    }
    return GR_OK;
}

/* An Artifactory wildcard ('*', '?') as a LIKE pattern, dots as slashes when group. */
static void maven__like(struct gr_sbuf *sb, const char *s, bool group)
{
    for (; *s; s++) {
        if (*s == '*')
            gr_sbuf_add(sb, "%", 1);
        else if (*s == '?')
            gr_sbuf_add(sb, "_", 1);
        else if (*s == '.' && group)
            gr_sbuf_add(sb, "/", 1);
        else {
            if (*s == '\\' || *s == '%' || *s == '_')
                gr_sbuf_add(sb, "\\", 1);
            gr_sbuf_add(sb, s, 1);
        }
    }
}

/* fnmatch with only '*' and '?' special (brackets and backslashes literal). */
static bool maven__glob(const char *pat, const char *s)
{
    if (!pat || !*pat)
        return true;
    char buf[1024];
    size_t o = 0;
    for (; *pat && o + 3 < sizeof(buf); pat++) {
        if (*pat == '[' || *pat == ']' || *pat == '\\')
            buf[o++] = '\\';
        buf[o++] = *pat;
    }
    buf[o] = '\0';
    return fnmatch(buf, s, 0) == 0;
}

#define MAVEN_GAVC_SCAN 50000 /* rows read from PostgreSQL per search, at most */

int maven_gavc_search(struct repo_ctx *ctx, struct gr_arena *a, const struct maven_gavc *g,
                      const struct search_query *q, bool with_props, struct search_hit **out,
                      int *n, bool *truncated)
{
    bool any = (g->g && *g->g) || (g->a && *g->a) || (g->v && *g->v) || (g->c && *g->c);
    if (!any)
        return GR_EINVAL;
    struct gr_sbuf like = GR_SBUF_INIT, repos = GR_SBUF_INIT;
    if (g->g && *g->g)
        maven__like(&like, g->g, true);
    else
        gr_sbuf_adds(&like, "%");
    gr_sbuf_adds(&like, "/");
    maven__like(&like, g->a && *g->a ? g->a : "*", false);
    gr_sbuf_adds(&like, "/");
    maven__like(&like, g->v && *g->v ? g->v : "*", false);
    gr_sbuf_adds(&like, "/%");
    db_text_array(&repos, q->repos, q->nrepos);
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", MAVEN_GAVC_SCAN);
    const char *p[3] = {like.buf, q->nrepos ? repos.buf : NULL, lim};
    struct db_res *res = NULL;
    int rc = db_exec1(
        ctx->db, &res,
        "SELECT a.repo, a.path, a.sha256, b.sha1, b.md5, a.size, " MS("a.created") ", " MS(
            "a.modified") ", " MS("a.updated") ", a.created_by, a.modified_by"
                                               " FROM artifacts a JOIN repositories r ON r.key = "
                                               "a.repo JOIN binaries b ON b.sha256 = a.sha256"
                                               " WHERE r.package_type = 'maven'"
                                               " AND a.path LIKE $1 ESCAPE '\\'"
                                               " AND ($2::text[] IS NULL OR a.repo = ANY($2))"
                                               " ORDER BY a.repo, a.path LIMIT $3::int",
        3, p);
    gr_sbuf_release(&like);
    gr_sbuf_release(&repos);
    if (rc)
        return rc;
    db_res_arena(res, a);
    int rows = db_res_rows(res);
    int limit = q->limit > 0 ? q->limit : SEARCH_LIMIT_DEFAULT;
    struct search_hit *hits = gr_arena_calloc(a, sizeof(*hits) * (size_t)(limit + 1));
    struct maven_path *mp = gr_arena_alloc(a, sizeof(*mp));
    int nh = 0;
    *truncated = false;
    for (int i = 0; i < rows; i++) {
        const char *why;
        const char *path = db_res_get(res, i, 1);
        if (maven_parse_path(path, mp, &why) != GR_OK || mp->kind != MAVEN_FILE || *mp->checksum)
            continue;
        if (!maven__glob(g->g, mp->group) || !maven__glob(g->a, mp->artifact) ||
            !(maven__glob(g->v, mp->version) || maven__glob(g->v, mp->file_version)))
            continue;
        if (g->c && *g->c && !maven__glob(g->c, mp->classifier))
            continue;
        if (nh == limit) {
            *truncated = true;
            break;
        }
        struct search_hit *h = &hits[nh++];
        h->repo = db_res_get(res, i, 0);
        h->path = path;
        struct artifact *art = &h->art;
        art->repo = h->repo;
        art->path = path;
        snprintf(art->sha256, sizeof(art->sha256), "%s", db_res_get(res, i, 2));
        snprintf(art->sha1, sizeof(art->sha1), "%s", db_res_get(res, i, 3));
        snprintf(art->md5, sizeof(art->md5), "%s", db_res_get(res, i, 4));
        art->size = strtoull(db_res_get(res, i, 5), NULL, 10);
        art->created_ms = strtoll(db_res_get(res, i, 6), NULL, 10);
        art->modified_ms = strtoll(db_res_get(res, i, 7), NULL, 10);
        art->updated_ms = strtoll(db_res_get(res, i, 8), NULL, 10);
        art->created_by = db_res_get(res, i, 9);
        art->modified_by = db_res_get(res, i, 10);
    }
    if (rows == MAVEN_GAVC_SCAN)
        *truncated = true;
    for (int i = 0; with_props && i < nh; i++) {
        rc = props_get(ctx, a, hits[i].repo, hits[i].path, NULL, &hits[i].props);
        if (rc == GR_ENOTFOUND) /* deleted meanwhile */
            rc = GR_OK;
        if (rc)
            return rc;
    }
    *out = hits;
    *n = nh;
    return GR_OK;
}
