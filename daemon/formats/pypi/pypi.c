/*
 * pypi.c - the pure rules of the PyPI format (pypi.h): project names (PEP
 * 503/508), versions (PEP 440), distribution file names (PEP 427/491/625),
 * core metadata, content negotiation (PEP 691), and the index pages' cached
 * records and rendering (PEP 503, 592, 629, 658, 691, 700, 714).
 */
#include "formats/pypi/pypi.h"

#include "base/err.h"
#include "base/sbuf.h"
#include "base/utf8.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- names ---- */

static bool pypi__alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool pypi__sep(char c)
{
    return c == '-' || c == '_' || c == '.';
}

bool pypi_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > PYPI_NAME_MAX || !pypi__alnum(name[0]) || !pypi__alnum(name[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!pypi__alnum(name[i]) && !pypi__sep(name[i]))
            return false;
    return true;
}

char *pypi_normalize_n(struct gr_arena *a, const char *name, size_t n)
{
    char *out = gr_arena_alloc(a, n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (pypi__sep(name[i])) {
            if (k == 0 || out[k - 1] != '-')
                out[k++] = '-';
            continue;
        }
        out[k++] = (char)tolower((unsigned char)name[i]);
    }
    out[k] = '\0';
    return out;
}

char *pypi_normalize(struct gr_arena *a, const char *name)
{
    return pypi_name_valid(name) ? pypi_normalize_n(a, name, strlen(name)) : NULL;
}

/* ---- versions (PEP 440) ---- */

#define PYPI__REL_MAX 32
#define PYPI__LOCAL_MAX 32

struct pypi__ver {
    uint64_t epoch;
    uint64_t rel[PYPI__REL_MAX];
    int nrel;
    int pre; /* 0 none, 1 a, 2 b, 3 rc */
    uint64_t pre_n;
    bool post, dev;
    uint64_t post_n, dev_n;
    /* local segments: numeric ones as numbers, others as text */
    struct {
        bool num;
        uint64_t n;
        const char *s;
        size_t len;
    } local[PYPI__LOCAL_MAX];
    int nlocal;
};

/* Digits at *p into *v (at most 18, so no overflow); false when none. */
static bool pypi__num(const char **p, uint64_t *v)
{
    const char *s = *p;
    size_t n = 0;
    while (isdigit((unsigned char)s[n]))
        n++;
    if (n == 0 || n > 18)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = x * 10 + (uint64_t)(s[i] - '0');
    *v = x;
    *p = s + n;
    return true;
}

/* Case-insensitive prefix match of word at *p; advances on success. */
static bool pypi__word(const char **p, const char *word)
{
    size_t n = strlen(word);
    if (strncasecmp(*p, word, n))
        return false;
    *p += n;
    return true;
}

static void pypi__opt_sep(const char **p)
{
    if (**p == '-' || **p == '_' || **p == '.')
        (*p)++;
}

static bool pypi__ver_parse(const char *v, struct pypi__ver *out)
{
    memset(out, 0, sizeof(*out));
    if (!v)
        return false;
    const char *p = v;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == 'v' || *p == 'V')
        p++;
    uint64_t x;
    if (!pypi__num(&p, &x))
        return false;
    if (*p == '!') {
        out->epoch = x;
        p++;
        if (!pypi__num(&p, &x))
            return false;
    }
    out->rel[out->nrel++] = x;
    while (*p == '.' && isdigit((unsigned char)p[1])) {
        p++;
        if (out->nrel == PYPI__REL_MAX || !pypi__num(&p, &x))
            return false;
        out->rel[out->nrel++] = x;
    }
    /* pre-release: [sep] (alpha|a|beta|b|preview|pre|c|rc) [sep] [N] */
    {
        const char *q = p;
        pypi__opt_sep(&q);
        static const struct {
            const char *w;
            int kind;
        } pre[] = {{"alpha", 1}, {"beta", 2}, {"preview", 3}, {"pre", 3},
                   {"rc", 3},    {"a", 1},    {"b", 2},       {"c", 3}};
        for (size_t i = 0; i < sizeof(pre) / sizeof(pre[0]); i++) {
            const char *w = q;
            if (pypi__word(&w, pre[i].w)) {
                out->pre = pre[i].kind;
                const char *n = w;
                pypi__opt_sep(&n);
                if (isdigit((unsigned char)*n)) {
                    if (!pypi__num(&n, &out->pre_n))
                        return false;
                    w = n;
                }
                p = w;
                break;
            }
        }
    }
    /* post-release: -N, or [sep] (post|rev|r) [sep] [N] */
    {
        const char *q = p;
        if (*q == '-' && isdigit((unsigned char)q[1])) {
            q++;
            if (!pypi__num(&q, &out->post_n))
                return false;
            out->post = true;
            p = q;
        } else {
            pypi__opt_sep(&q);
            if (pypi__word(&q, "post") || pypi__word(&q, "rev") || pypi__word(&q, "r")) {
                out->post = true;
                const char *n = q;
                pypi__opt_sep(&n);
                if (isdigit((unsigned char)*n)) {
                    if (!pypi__num(&n, &out->post_n))
                        return false;
                    q = n;
                }
                p = q;
            }
        }
    }
    /* development release: [sep] dev [sep] [N] */
    {
        const char *q = p;
        pypi__opt_sep(&q);
        if (pypi__word(&q, "dev")) {
            out->dev = true;
            const char *n = q;
            pypi__opt_sep(&n);
            if (isdigit((unsigned char)*n)) {
                if (!pypi__num(&n, &out->dev_n))
                    return false;
                q = n;
            }
            p = q;
        }
    }
    /* local version: + [a-z0-9]+ ([-_.] [a-z0-9]+)* */
    if (*p == '+') {
        p++;
        for (;;) {
            size_t n = 0;
            while (pypi__alnum(p[n]))
                n++;
            if (n == 0 || out->nlocal == PYPI__LOCAL_MAX)
                return false;
            bool num = true;
            for (size_t i = 0; i < n; i++)
                num &= isdigit((unsigned char)p[i]) != 0;
            if (num) {
                const char *d = p;
                while (n > 1 && *d == '0')
                    d++, n--; /* leading zeros do not count */
                if (n > 18)
                    return false;
                uint64_t val = 0;
                for (size_t i = 0; i < n; i++)
                    val = val * 10 + (uint64_t)(d[i] - '0');
                out->local[out->nlocal].n = val;
                p = d + n;
            } else {
                out->local[out->nlocal].s = p;
                out->local[out->nlocal].len = n;
                p += n;
            }
            out->local[out->nlocal++].num = num;
            if (pypi__sep(*p) && pypi__alnum(p[1]))
                p++;
            else
                break;
        }
    }
    while (isspace((unsigned char)*p))
        p++;
    return *p == '\0';
}

char *pypi_version_normalize(struct gr_arena *a, const char *v)
{
    struct pypi__ver x;
    if (!pypi__ver_parse(v, &x))
        return NULL;
    struct gr_sbuf sb = GR_SBUF_INIT;
    if (x.epoch)
        gr_sbuf_addf(&sb, "%" PRIu64 "!", x.epoch);
    for (int i = 0; i < x.nrel; i++)
        gr_sbuf_addf(&sb, "%s%" PRIu64, i ? "." : "", x.rel[i]);
    if (x.pre)
        gr_sbuf_addf(&sb, "%s%" PRIu64, x.pre == 1 ? "a" : x.pre == 2 ? "b" : "rc", x.pre_n);
    if (x.post)
        gr_sbuf_addf(&sb, ".post%" PRIu64, x.post_n);
    if (x.dev)
        gr_sbuf_addf(&sb, ".dev%" PRIu64, x.dev_n);
    for (int i = 0; i < x.nlocal; i++) {
        gr_sbuf_adds(&sb, i ? "." : "+");
        if (x.local[i].num) {
            gr_sbuf_addf(&sb, "%" PRIu64, x.local[i].n);
        } else {
            for (size_t k = 0; k < x.local[i].len; k++) {
                char c = (char)tolower((unsigned char)x.local[i].s[k]);
                gr_sbuf_add(&sb, &c, 1);
            }
        }
    }
    char *out = gr_arena_strdup(a, sb.buf);
    gr_sbuf_release(&sb);
    return out;
}

static int pypi__u64cmp(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b;
}

/* The order of packaging's _cmpkey: epoch, release without trailing zeros,
 * pre (a dev-only release before every pre-release; none after all), post
 * (none first), dev (none last), local (none first; text before numbers). */
static int pypi__ver_cmp(const struct pypi__ver *x, const struct pypi__ver *y)
{
    int c = pypi__u64cmp(x->epoch, y->epoch);
    if (c)
        return c;
    int nx = x->nrel, ny = y->nrel;
    while (nx > 1 && x->rel[nx - 1] == 0)
        nx--;
    while (ny > 1 && y->rel[ny - 1] == 0)
        ny--;
    for (int i = 0; i < nx || i < ny; i++) {
        uint64_t a = i < nx ? x->rel[i] : 0, b = i < ny ? y->rel[i] : 0;
        if ((c = pypi__u64cmp(a, b)))
            return c;
    }
    /* pre: -1 (dev only), then (kind, n), then +inf (none) */
    int kx = !x->pre && !x->post && x->dev ? -1 : x->pre ? x->pre : 4;
    int ky = !y->pre && !y->post && y->dev ? -1 : y->pre ? y->pre : 4;
    if ((c = kx - ky))
        return c < 0 ? -1 : 1;
    if (x->pre && (c = pypi__u64cmp(x->pre_n, y->pre_n)))
        return c;
    if (x->post != y->post)
        return x->post ? 1 : -1;
    if ((c = pypi__u64cmp(x->post_n, y->post_n)))
        return c;
    if (x->dev != y->dev)
        return x->dev ? -1 : 1;
    if ((c = pypi__u64cmp(x->dev_n, y->dev_n)))
        return c;
    for (int i = 0; i < x->nlocal || i < y->nlocal; i++) {
        if (i >= x->nlocal || i >= y->nlocal)
            return i >= x->nlocal ? -1 : 1;
        if (x->local[i].num != y->local[i].num)
            return x->local[i].num ? 1 : -1;
        if (x->local[i].num) {
            if ((c = pypi__u64cmp(x->local[i].n, y->local[i].n)))
                return c;
            continue;
        }
        size_t n = x->local[i].len < y->local[i].len ? x->local[i].len : y->local[i].len;
        c = strncasecmp(x->local[i].s, y->local[i].s, n);
        if (!c && x->local[i].len != y->local[i].len)
            c = x->local[i].len < y->local[i].len ? -1 : 1;
        if (c)
            return c < 0 ? -1 : 1;
    }
    return 0;
}

int pypi_version_cmp(const char *a, const char *b)
{
    struct pypi__ver x, y;
    bool px = pypi__ver_parse(a, &x), py = pypi__ver_parse(b, &y);
    if (!px || !py) {
        if (px != py)
            return px ? 1 : -1;
        int c = strcmp(a ? a : "", b ? b : "");
        return c < 0 ? -1 : c > 0;
    }
    return pypi__ver_cmp(&x, &y);
}

bool pypi_version_is_pre(const char *v)
{
    struct pypi__ver x;
    return pypi__ver_parse(v, &x) && (x.pre || x.dev);
}

/* ---- file names ---- */

static bool pypi__ends(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcmp(s + n - k, suffix);
}

bool pypi_is_dist(const char *filename)
{
    return pypi__ends(filename, ".whl") || pypi__ends(filename, ".tar.gz") ||
           pypi__ends(filename, ".zip");
}

/* A wheel tag: [A-Za-z0-9_.]+ (compressed tag sets join with '.'). */
static bool pypi__tag(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!pypi__alnum(s[i]) && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

int pypi_filename_parse(struct gr_arena *a, const char *filename, const char *norm,
                        struct pypi_filename *out, const char **why)
{
    size_t n = strlen(filename);
    memset(out, 0, sizeof(*out));
    if (n == 0 || n > 255 || strchr(filename, '/') || strchr(filename, '\\') ||
        filename[0] == '.' || !gr_utf8_valid(filename, n)) {
        *why = "the file name must be one path segment of at most 255 bytes";
        return GR_EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)filename[i] < 0x20 || filename[i] == 0x7f) {
            *why = "control characters in the file name";
            return GR_EINVAL;
        }
    if (pypi__ends(filename, ".whl")) {
        /* name-version[-build]-python-abi-platform.whl */
        const char *part[7];
        size_t len[7];
        int k = 0;
        const char *s = filename, *end = filename + n - 4;
        while (s <= end && k < 7) {
            const char *d = memchr(s, '-', (size_t)(end - s));
            part[k] = s;
            len[k++] = d ? (size_t)(d - s) : (size_t)(end - s);
            if (!d)
                break;
            s = d + 1;
        }
        if ((k != 5 && k != 6) || (s <= end && memchr(s, '-', (size_t)(end - s)))) {
            *why = gr_arena_printf(a,
                                   "'%s' is not a wheel name: name-version[-build]-python-abi-"
                                   "platform.whl (PEP 427)",
                                   filename);
            return GR_EINVAL;
        }
        for (int i = 0; i < k; i++)
            if (len[i] == 0 || (i >= k - 3 && !pypi__tag(part[i], len[i]))) {
                *why = gr_arena_printf(a, "'%s': an empty part or a bad tag (PEP 427)", filename);
                return GR_EINVAL;
            }
        if (k == 6 && !isdigit((unsigned char)part[2][0])) {
            *why = gr_arena_printf(a, "'%s': a wheel's build tag starts with a digit", filename);
            return GR_EINVAL;
        }
        if (strcmp(pypi_normalize_n(a, part[0], len[0]), norm)) {
            *why = gr_arena_printf(a, "the file name '%s' names another project than '%s'",
                                   filename, norm);
            return GR_EINVAL;
        }
        out->version = pypi_version_normalize(a, gr_arena_strndup(a, part[1], len[1]));
        if (!out->version) {
            *why = gr_arena_printf(a, "the file name '%s' carries no valid version (PEP 440)",
                                   filename);
            return GR_EINVAL;
        }
        out->kind = PYPI_WHEEL;
        out->pyversion = gr_arena_strndup(a, part[k - 3], len[k - 3]);
        out->ext = ".whl";
        return GR_OK;
    }
    const char *ext = pypi__ends(filename, ".tar.gz") ? ".tar.gz"
                      : pypi__ends(filename, ".zip")  ? ".zip"
                                                      : NULL;
    if (!ext) {
        *why = gr_arena_printf(a,
                               "'%s' is not a distribution: a wheel (.whl) or an sdist "
                               "(.tar.gz, .zip)",
                               filename);
        return GR_EINVAL;
    }
    /* name-version.tar.gz: the first split whose name part is the project */
    size_t stem = n - strlen(ext);
    for (size_t i = 1; i + 1 < stem; i++) {
        if (filename[i] != '-')
            continue;
        if (strcmp(pypi_normalize_n(a, filename, i), norm))
            continue;
        out->version =
            pypi_version_normalize(a, gr_arena_strndup(a, filename + i + 1, stem - i - 1));
        if (!out->version)
            continue;
        out->kind = PYPI_SDIST;
        out->pyversion = "source";
        out->ext = ext;
        return GR_OK;
    }
    *why = gr_arena_printf(a, "the sdist name '%s' is not '<%s>-<version>%s' (PEP 625)", filename,
                           norm, ext);
    return GR_EINVAL;
}

/* ---- core metadata ---- */

int pypi_meta_parse(struct gr_arena *a, const char *text, size_t len, struct pypi_meta *out,
                    const char **why)
{
    memset(out, 0, sizeof(*out));
    out->body = "";
    if (!gr_utf8_valid(text, len) || memchr(text, '\0', len)) {
        *why = "the core metadata is not UTF-8 text";
        return GR_EINVAL;
    }
    /* at most one field per line */
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    out->f = gr_arena_calloc(a, sizeof(*out->f) * lines);
    struct gr_sbuf val = GR_SBUF_INIT;
    const char *key = NULL;
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && text[e] != '\n')
            e++;
        size_t ll = e - i;
        if (ll && text[i + ll - 1] == '\r')
            ll--;
        const char *line = text + i;
        size_t next = e < len ? e + 1 : e;
        if (ll == 0) { /* the end of the headers: the rest is the description */
            i = next;
            break;
        }
        if (line[0] == ' ' || line[0] == '\t') { /* a continuation line */
            if (key) {
                gr_sbuf_add(&val, "\n", 1);
                gr_sbuf_add(&val, line, ll);
            }
            i = next;
            continue;
        }
        if (key) {
            out->f[out->n].key = key;
            out->f[out->n++].value = gr_arena_strdup(a, val.buf);
        }
        const char *colon = memchr(line, ':', ll);
        if (!colon) {
            gr_sbuf_release(&val);
            *why = gr_arena_printf(a, "the core metadata has a line that is no header: %.60s",
                                   gr_arena_strndup(a, line, ll));
            return GR_EINVAL;
        }
        key = gr_arena_strndup(a, line, (size_t)(colon - line));
        const char *v = colon + 1;
        while (v < line + ll && (*v == ' ' || *v == '\t'))
            v++;
        gr_sbuf_reset(&val);
        gr_sbuf_add(&val, v, (size_t)(line + ll - v));
        i = next;
    }
    if (key) {
        out->f[out->n].key = key;
        out->f[out->n++].value = gr_arena_strdup(a, val.buf);
    }
    gr_sbuf_release(&val);
    if (i < len)
        out->body = gr_arena_strndup(a, text + i, len - i);
    static const char *const need[] = {"Metadata-Version", "Name", "Version"};
    for (size_t k = 0; k < 3; k++)
        if (!pypi_meta_get(out, need[k]) || !*pypi_meta_get(out, need[k])) {
            *why = gr_arena_printf(a, "the core metadata has no %s", need[k]);
            return GR_EINVAL;
        }
    return GR_OK;
}

const char *pypi_meta_get(const struct pypi_meta *m, const char *key)
{
    for (int i = 0; i < m->n; i++)
        if (!strcasecmp(m->f[i].key, key))
            return m->f[i].value;
    return NULL;
}

int pypi_meta_all(struct gr_arena *a, const struct pypi_meta *m, const char *key, const char ***out)
{
    const char **v = gr_arena_alloc(a, sizeof(*v) * (size_t)(m->n + 1));
    int k = 0;
    for (int i = 0; i < m->n; i++)
        if (!strcasecmp(m->f[i].key, key))
            v[k++] = m->f[i].value;
    *out = v;
    return k;
}

/* ---- content negotiation ---- */

enum pypi_type pypi_accept(const char *accept)
{
    if (!accept || !*accept)
        return PYPI_T_HTML;
    /* best q per representation; ties go to the richer one */
    double q[4] = {-1, -1, -1, -1};
    const char *p = accept;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        size_t n = strcspn(p, ",");
        const char *item = p, *semi = memchr(item, ';', n);
        size_t tl = semi ? (size_t)(semi - item) : n;
        while (tl && (item[tl - 1] == ' ' || item[tl - 1] == '\t'))
            tl--;
        double qv = 1.0;
        for (const char *s = semi; s;) { /* parameters: only q matters */
            const char *t = s + 1;
            while (*t == ' ' || *t == '\t')
                t++;
            if ((t[0] == 'q' || t[0] == 'Q') && t[1] == '=')
                qv = strtod(t + 2, NULL);
            s = t < item + n ? memchr(t, ';', (size_t)(item + n - t)) : NULL;
        }
        char type[96];
        snprintf(type, sizeof(type), "%.*s", (int)(tl < sizeof(type) - 1 ? tl : sizeof(type) - 1),
                 item);
        for (char *c = type; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        int hit[4] = {0};
        if (!strcmp(type, "application/vnd.pypi.simple.v1+json") ||
            !strcmp(type, "application/vnd.pypi.simple.latest+json"))
            hit[PYPI_T_JSON_V1] = 1;
        else if (!strcmp(type, "application/vnd.pypi.simple.v1+html") ||
                 !strcmp(type, "application/vnd.pypi.simple.latest+html"))
            hit[PYPI_T_HTML_V1] = 1;
        else if (!strcmp(type, "text/html"))
            hit[PYPI_T_HTML] = 1;
        else if (!strcmp(type, "*/*")) /* anything: the legacy default, as PyPI */
            hit[PYPI_T_HTML] = 1;
        else if (!strcmp(type, "application/*"))
            hit[PYPI_T_HTML_V1] = hit[PYPI_T_JSON_V1] = 1;
        else if (!strcmp(type, "text/*"))
            hit[PYPI_T_HTML] = 1;
        for (int t = 1; t < 4; t++)
            if (hit[t] && qv > q[t])
                q[t] = qv;
        p = item + n;
    }
    enum pypi_type best = PYPI_T_NONE;
    double bq = 0;
    /* richest first, so that a tie keeps it */
    static const enum pypi_type order[] = {PYPI_T_JSON_V1, PYPI_T_HTML_V1, PYPI_T_HTML};
    for (int i = 0; i < 3; i++)
        if (q[order[i]] > bq) {
            bq = q[order[i]];
            best = order[i];
        }
    return best;
}

const char *pypi_type_header(enum pypi_type t)
{
    switch (t) {
    case PYPI_T_JSON_V1:
        return "application/vnd.pypi.simple.v1+json";
    case PYPI_T_HTML_V1:
        return "application/vnd.pypi.simple.v1+html";
    default:
        return "text/html; charset=utf-8";
    }
}

/* ---- index pages ---- */

/* A JSON string literal of s. */
static void pypi__json_str(struct gr_sbuf *sb, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    gr_sbuf_add(sb, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            gr_sbuf_add(sb, e, 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            gr_sbuf_add(sb, e, 6);
        } else if (*p == '<' || *p == '>' || *p == '&') { /* harmless in any page */
            char e[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            gr_sbuf_add(sb, e, 6);
        } else {
            gr_sbuf_add(sb, p, 1);
        }
    }
    gr_sbuf_add(sb, "\"", 1);
}

static void pypi__iso_us(int64_t us, char *buf, size_t n)
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + k, n - k, ".%06dZ", (int)(us % 1000000));
}

/* Whether path is "<norm>/<version>/<file>" for a distribution file. */
static bool pypi__file_row(const struct pypi_file *f)
{
    const char *s1 = strchr(f->path, '/');
    const char *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
    return s2 && !strchr(s2 + 1, '/') && pypi_is_dist(s2 + 1);
}

void pypi_project_record(struct gr_sbuf *rec, const char *display, const struct pypi_file *f, int n)
{
    gr_sbuf_add(rec, PYPI_PROJECT_MAGIC, strlen(PYPI_PROJECT_MAGIC) + 1);
    gr_sbuf_add(rec, display, strlen(display) + 1);
    struct gr_sbuf url = GR_SBUF_INIT, one = GR_SBUF_INIT;
    for (int i = 0; i < n; i++) {
        if (!pypi__file_row(&f[i]))
            continue;
        gr_sbuf_reset(&url);
        gr_sbuf_adds(&url, "../../packages/");
        gr_sbuf_add_urlpath(&url, f[i].path);
        gr_sbuf_add(rec, f[i].path, strlen(f[i].path) + 1);
        gr_sbuf_add(rec, f[i].version, strlen(f[i].version) + 1);
        /* the anchor (PEP 503, 592, 658, 714) */
        gr_sbuf_reset(&one);
        gr_sbuf_adds(&one, "    <a href=\"");
        gr_sbuf_add_html(&one, url.buf);
        gr_sbuf_addf(&one, "#sha256=%s\"", f[i].sha256);
        if (f[i].requires_python && *f[i].requires_python) {
            gr_sbuf_adds(&one, " data-requires-python=\"");
            gr_sbuf_add_html(&one, f[i].requires_python);
            gr_sbuf_adds(&one, "\"");
        }
        if (f[i].yanked) {
            gr_sbuf_adds(&one, " data-yanked=\"");
            gr_sbuf_add_html(&one, f[i].yanked_reason ? f[i].yanked_reason : "");
            gr_sbuf_adds(&one, "\"");
        }
        if (f[i].meta_sha256)
            gr_sbuf_addf(&one,
                         " data-dist-info-metadata=\"sha256=%s\" data-core-metadata=\"sha256=%s\"",
                         f[i].meta_sha256, f[i].meta_sha256);
        gr_sbuf_adds(&one, ">");
        gr_sbuf_add_html(&one, f[i].filename);
        gr_sbuf_adds(&one, "</a><br/>\n");
        gr_sbuf_add(rec, one.buf, one.len + 1);
        /* the file object (PEP 691, 700, 714) */
        gr_sbuf_reset(&one);
        gr_sbuf_adds(&one, "{\"filename\":");
        pypi__json_str(&one, f[i].filename);
        gr_sbuf_adds(&one, ",\"url\":");
        pypi__json_str(&one, url.buf);
        gr_sbuf_addf(&one, ",\"hashes\":{\"sha256\":\"%s\"}", f[i].sha256);
        if (f[i].requires_python && *f[i].requires_python) {
            gr_sbuf_adds(&one, ",\"requires-python\":");
            pypi__json_str(&one, f[i].requires_python);
        }
        char when[40];
        pypi__iso_us(f[i].upload_us, when, sizeof(when));
        gr_sbuf_addf(&one, ",\"size\":%" PRIu64 ",\"upload-time\":\"%s\"", f[i].size, when);
        if (f[i].yanked) {
            gr_sbuf_adds(&one, ",\"yanked\":");
            if (f[i].yanked_reason && *f[i].yanked_reason)
                pypi__json_str(&one, f[i].yanked_reason);
            else
                gr_sbuf_adds(&one, "true");
        }
        /* not the older "dist-info-metadata": pip 22.3 to 23.1 fail on its
         * dictionary form in JSON, the reason for PEP 714's new name */
        if (f[i].meta_sha256)
            gr_sbuf_addf(&one, ",\"core-metadata\":{\"sha256\":\"%s\"}", f[i].meta_sha256);
        else
            gr_sbuf_adds(&one, ",\"core-metadata\":false");
        gr_sbuf_adds(&one, "}");
        gr_sbuf_add(rec, one.buf, one.len + 1);
    }
    gr_sbuf_release(&url);
    gr_sbuf_release(&one);
}

/* The next NUL-terminated field of a record, or NULL at its end. */
static const char *pypi__field(const char **p, const char *end)
{
    if (*p >= end)
        return NULL;
    const char *nul = memchr(*p, '\0', (size_t)(end - *p));
    if (!nul)
        return NULL;
    const char *f = *p;
    *p = nul + 1;
    return f;
}

int pypi_project_entries(struct gr_arena *a, const char *rec, size_t len, const char **display,
                         struct pypi_entry **out, int *n)
{
    const char *p = rec, *end = rec + len;
    const char *magic = pypi__field(&p, end);
    *display = pypi__field(&p, end);
    if (!magic || strcmp(magic, PYPI_PROJECT_MAGIC) || !*display)
        return GR_EINVAL;
    size_t cap = 0;
    for (size_t i = 0; i < len; i++)
        cap += rec[i] == '\0';
    struct pypi_entry *e = gr_arena_calloc(a, sizeof(*e) * (cap / 4 + 1));
    int k = 0;
    while (p < end) {
        e[k].path = pypi__field(&p, end);
        e[k].version = pypi__field(&p, end);
        e[k].html = pypi__field(&p, end);
        e[k].json = pypi__field(&p, end);
        if (!e[k].json)
            return GR_EINVAL;
        k++;
    }
    *out = e;
    *n = k;
    return GR_OK;
}

void pypi_render_project(struct gr_sbuf *sb, enum pypi_type t, const char *norm,
                         const char *display, const struct pypi_entry *e, int n, const bool *show)
{
    if (t == PYPI_T_JSON_V1) {
        gr_sbuf_adds(sb, "{\"meta\":{\"api-version\":\"1.1\"},\"name\":");
        pypi__json_str(sb, norm);
        gr_sbuf_adds(sb, ",\"versions\":[");
        /* the versions of the files shown, each once: entries come by path,
         * so the files of one version are next to each other */
        int shown = 0;
        const char *last = NULL;
        for (int i = 0; i < n; i++) {
            if ((show && !show[i]) || (last && !strcmp(last, e[i].version)))
                continue;
            last = e[i].version;
            if (shown++)
                gr_sbuf_adds(sb, ",");
            pypi__json_str(sb, e[i].version);
        }
        gr_sbuf_adds(sb, "],\"files\":[");
        shown = 0;
        for (int i = 0; i < n; i++) {
            if (show && !show[i])
                continue;
            if (shown++)
                gr_sbuf_adds(sb, ",");
            gr_sbuf_adds(sb, e[i].json);
        }
        gr_sbuf_adds(sb, "]}\n");
        return;
    }
    gr_sbuf_adds(sb, "<!DOCTYPE html>\n<html>\n  <head>\n"
                     "    <meta name=\"pypi:repository-version\" content=\"1.1\">\n"
                     "    <title>Links for ");
    gr_sbuf_add_html(sb, display);
    gr_sbuf_adds(sb, "</title>\n  </head>\n  <body>\n    <h1>Links for ");
    gr_sbuf_add_html(sb, display);
    gr_sbuf_adds(sb, "</h1>\n");
    for (int i = 0; i < n; i++)
        if (!show || show[i])
            gr_sbuf_adds(sb, e[i].html);
    gr_sbuf_adds(sb, "  </body>\n</html>\n");
}

void pypi_root_record(struct gr_sbuf *rec, const struct pypi_project *p, int n)
{
    gr_sbuf_add(rec, PYPI_ROOT_MAGIC, strlen(PYPI_ROOT_MAGIC) + 1);
    for (int i = 0; i < n; i++) {
        gr_sbuf_add(rec, p[i].norm, strlen(p[i].norm) + 1);
        gr_sbuf_add(rec, p[i].display, strlen(p[i].display) + 1);
    }
}

int pypi_root_entries(struct gr_arena *a, const char *rec, size_t len, struct pypi_project **out,
                      int *n)
{
    const char *p = rec, *end = rec + len;
    const char *magic = pypi__field(&p, end);
    if (!magic || strcmp(magic, PYPI_ROOT_MAGIC))
        return GR_EINVAL;
    size_t cap = 0;
    for (size_t i = 0; i < len; i++)
        cap += rec[i] == '\0';
    struct pypi_project *v = gr_arena_calloc(a, sizeof(*v) * (cap / 2 + 1));
    int k = 0;
    while (p < end) {
        v[k].norm = pypi__field(&p, end);
        v[k].display = pypi__field(&p, end);
        if (!v[k].display)
            return GR_EINVAL;
        k++;
    }
    *out = v;
    *n = k;
    return GR_OK;
}

void pypi_render_root(struct gr_sbuf *sb, enum pypi_type t, const struct pypi_project *p, int n,
                      const bool *show)
{
    if (t == PYPI_T_JSON_V1) {
        gr_sbuf_adds(sb, "{\"meta\":{\"api-version\":\"1.1\"},\"projects\":[");
        int shown = 0;
        for (int i = 0; i < n; i++) {
            if (show && !show[i])
                continue;
            gr_sbuf_adds(sb, shown++ ? ",{\"name\":" : "{\"name\":");
            pypi__json_str(sb, p[i].display);
            gr_sbuf_adds(sb, "}");
        }
        gr_sbuf_adds(sb, "]}\n");
        return;
    }
    gr_sbuf_adds(sb, "<!DOCTYPE html>\n<html>\n  <head>\n"
                     "    <meta name=\"pypi:repository-version\" content=\"1.1\">\n"
                     "    <title>Simple index</title>\n  </head>\n  <body>\n");
    for (int i = 0; i < n; i++) {
        if (show && !show[i])
            continue;
        gr_sbuf_adds(sb, "    <a href=\"");
        gr_sbuf_add_html(sb, p[i].norm);
        gr_sbuf_adds(sb, "/\">");
        gr_sbuf_add_html(sb, p[i].display);
        gr_sbuf_adds(sb, "</a><br/>\n");
    }
    gr_sbuf_adds(sb, "  </body>\n</html>\n");
}
