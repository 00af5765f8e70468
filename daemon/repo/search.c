/*
 * search.c - /api/search queries: one statement per search, served by the
 * indexes of sql/0001 and sql/0002 (see docs/api.md), then one more for the
 * hits' properties when asked.
 */
#include "repo/search.h"
#include "repo/internal.h"

#include "base/err.h"
#include "base/sbuf.h"
#include "db/db.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS(col) "(extract(epoch from " col ") * 1000)::bigint"
#define HIT_COLS                                                                                   \
    "a.sha256, b.sha1, b.md5, a.size, " MS("a.created") ", " MS("a.modified") ", " MS(             \
        "a.updated") ", a.created_by, a.modified_by"
/* A microsecond count ($n::bigint) as a timestamptz, exactly. */
#define US_TS(n) "('epoch'::timestamptz + " n "::bigint * interval '1 microsecond')"

/* ---- pure helpers ---- */

int search_name_like(const char *name, struct gr_sbuf *like)
{
    size_t n = strlen(name);
    if (n == 0)
        return GR_EINVAL;
    if (strspn(name, "*?") == n)
        return GR_EINVAL;
    if (name[0] != '*' && name[0] != '?')
        gr_sbuf_add(like, "%", 1);
    for (const char *s = name; *s; s++) {
        if (*s == '*')
            gr_sbuf_add(like, "%", 1);
        else if (*s == '?')
            gr_sbuf_add(like, "_", 1);
        else {
            if (*s == '%' || *s == '_' || *s == '\\')
                gr_sbuf_add(like, "\\", 1);
            gr_sbuf_add(like, s, 1);
        }
    }
    if (name[n - 1] != '*' && name[n - 1] != '?')
        gr_sbuf_add(like, "%", 1);
    return GR_OK;
}

/* n decimal digits at s into *v; false if any is not a digit. */
static bool search__digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        *v = *v * 10 + (s[i] - '0');
    }
    return true;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's algorithm). */
static int64_t search__days(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Latest instant accepted: 9999-12-31T23:59:59.999Z. */
#define SEARCH_MS_MAX 253402300799999LL

int search_parse_time(const char *s, int64_t *ms)
{
    size_t n = strlen(s);
    if (n == 0)
        return GR_EINVAL;
    if (strspn(s, "0123456789") == n ||
        (s[0] == '-' && n > 1 && strspn(s + 1, "0123456789") == n - 1)) {
        if (n > 16)
            return GR_EINVAL;
        int64_t v = strtoll(s, NULL, 10);
        if (v > SEARCH_MS_MAX || v < -SEARCH_MS_MAX)
            return GR_EINVAL;
        *ms = v;
        return GR_OK;
    }
    /* YYYY-MM-DDTHH:MM:SS */
    int y, mo, d, h, mi, se;
    if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':' || !search__digits(s, 4, &y) || !search__digits(s + 5, 2, &mo) ||
        !search__digits(s + 8, 2, &d) || !search__digits(s + 11, 2, &h) ||
        !search__digits(s + 14, 2, &mi) || !search__digits(s + 17, 2, &se))
        return GR_EINVAL;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || se > 59)
        return GR_EINVAL;
    const char *p = s + 19;
    int frac = 0;
    if (*p == '.') {
        int digits = 0;
        p++;
        while (isdigit((unsigned char)*p)) {
            if (digits < 3)
                frac = frac * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0 || digits > 9)
            return GR_EINVAL;
        for (; digits < 3; digits++)
            frac *= 10;
    }
    int off = 0; /* minutes east of UTC */
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        int sign = *p == '-' ? -1 : 1;
        p++;
        if (!search__digits(p, 2, &oh))
            return GR_EINVAL;
        p += 2;
        if (*p == ':')
            p++;
        if (!search__digits(p, 2, &om))
            return GR_EINVAL;
        p += 2;
        if (oh > 23 || om > 59)
            return GR_EINVAL;
        off = sign * (oh * 60 + om);
    } else {
        return GR_EINVAL;
    }
    if (*p)
        return GR_EINVAL;
    int64_t secs = search__days(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - (int64_t)off * 60;
    *ms = secs * 1000 + frac;
    if (*ms > SEARCH_MS_MAX)
        return GR_EINVAL;
    return GR_OK;
}

int search_checksum_norm(const char *type, const char *value, char *out)
{
    size_t want = !strcmp(type, "sha256") ? 64
                  : !strcmp(type, "sha1") ? 40
                  : !strcmp(type, "md5")  ? 32
                                          : 0;
    if (!want || strlen(value) != want)
        return GR_EINVAL;
    for (size_t i = 0; i < want; i++) {
        if (!isxdigit((unsigned char)value[i]))
            return GR_EINVAL;
        out[i] = (char)tolower((unsigned char)value[i]);
    }
    out[want] = '\0';
    return GR_OK;
}

/* ---- queries ---- */

/* Statement parameters: strings owned by the arena or by sbufs the caller keeps. */
struct search__params {
    const char *v[80];
    int n;
    struct gr_sbuf own[40]; /* array literals */
    int nown;
};

/* Add a parameter; returns its number ($n). */
static int search__param(struct search__params *p, const char *v)
{
    p->v[p->n] = v;
    return ++p->n;
}

/* Add a text[] parameter built from v[0..n); returns its number. */
static int search__param_array(struct search__params *p, const char *const *v, int n)
{
    struct gr_sbuf *sb = &p->own[p->nown++];
    gr_sbuf_init(sb);
    db_text_array(sb, v, n);
    return search__param(p, sb->buf);
}

static void search__params_release(struct search__params *p)
{
    for (int i = 0; i < p->nown; i++)
        gr_sbuf_release(&p->own[i]);
}

/* " AND <col> = ANY($n::text[])" for the repository filter, if any. */
static void search__repos(struct gr_sbuf *sql, struct search__params *p,
                          const struct search_query *q, const char *col)
{
    if (q->nrepos <= 0)
        return;
    int k = search__param_array(p, q->repos, q->nrepos);
    gr_sbuf_addf(sql, " AND %s = ANY($%d::text[])", col, k);
}

/* The statement for q (without LIMIT); GR_EINVAL for a malformed query. */
static int search__sql(struct gr_arena *a, const struct search_query *q, struct gr_sbuf *sql,
                       struct search__params *p)
{
    switch (q->kind) {
    case SEARCH_NAME: {
        if (!q->like)
            return GR_EINVAL;
        int k = search__param(p, q->like);
        gr_sbuf_addf(sql,
                     "SELECT a.repo, a.path, " HIT_COLS ", false FROM artifacts a"
                     " JOIN binaries b ON b.sha256 = a.sha256"
                     " WHERE a.name LIKE $%d ESCAPE '\\'",
                     k);
        search__repos(sql, p, q, "a.repo");
        return GR_OK;
    }
    case SEARCH_CHECKSUM: {
        if (!q->sum || !q->sum_type)
            return GR_EINVAL;
        const char *col = !strcmp(q->sum_type, "sha256") ? "a.sha256"
                          : !strcmp(q->sum_type, "sha1") ? "b.sha1"
                          : !strcmp(q->sum_type, "md5")  ? "b.md5"
                                                         : NULL;
        if (!col)
            return GR_EINVAL;
        int k = search__param(p, q->sum);
        gr_sbuf_addf(sql,
                     "SELECT a.repo, a.path, " HIT_COLS ", false FROM artifacts a"
                     " JOIN binaries b ON b.sha256 = a.sha256 WHERE %s = $%d",
                     col, k);
        search__repos(sql, p, q, "a.repo");
        return GR_OK;
    }
    case SEARCH_DATES: {
        if (!q->by_created && !q->by_modified)
            return GR_EINVAL;
        /*
         * Dates are displayed as rounded milliseconds; shift the bounds by
         * half a millisecond so that "from < shown <= to" holds exactly:
         * round(us/1000) > from  <=>  us >= from*1000 + 500.
         */
        int kf = search__param(p, gr_arena_printf(a, "%lld", (long long)q->from_ms * 1000 + 500));
        int kt = search__param(p, gr_arena_printf(a, "%lld", (long long)q->to_ms * 1000 + 500));
        gr_sbuf_adds(sql, "SELECT a.repo, a.path, " HIT_COLS ", false FROM artifacts a"
                          " JOIN binaries b ON b.sha256 = a.sha256 WHERE (");
        if (q->by_created)
            gr_sbuf_addf(sql, "(a.created >= " US_TS("$%d") " AND a.created < " US_TS("$%d") ")",
                         kf, kt);
        if (q->by_created && q->by_modified)
            gr_sbuf_adds(sql, " OR ");
        if (q->by_modified)
            gr_sbuf_addf(sql, "(a.modified >= " US_TS("$%d") " AND a.modified < " US_TS("$%d") ")",
                         kf, kt);
        gr_sbuf_adds(sql, ")");
        search__repos(sql, p, q, "a.repo");
        return GR_OK;
    }
    case SEARCH_PROP: {
        const struct props_set *ps = q->props;
        if (!ps || ps->n == 0 || ps->n > 32)
            return GR_EINVAL;
        /*
         * p0, the driving scan of properties_key_value, is the first term
         * with a single value if there is one: (repo, path, key, value) is
         * unique, so its rows are distinct paths and LIMIT stops the scan
         * early. Otherwise (a value list, or any value) a path can match
         * several rows: DISTINCT, which hashes every match first (tried: a
         * NOT EXISTS "smallest value" filter streams, but with LIMIT the
         * planner then picks merge joins over whole indexes, 3-6x slower).
         */
        int d = 0;
        for (int i = ps->n - 1; i >= 0; i--)
            if (ps->e[i].nvalues == 1)
                d = i;
        gr_sbuf_addf(sql,
                     "SELECT m.repo, m.path, " HIT_COLS ", a.id IS NULL FROM ("
                     "SELECT %sp0.repo, p0.path FROM properties p0 WHERE ",
                     ps->e[d].nvalues == 1 ? "" : "DISTINCT ");
        for (int j = 0; j < ps->n; j++) {
            int i = j == 0 ? d : j <= d ? j - 1 : j; /* the driver first, then the others */
            const struct props_entry *e = &ps->e[i];
            int kk = search__param(p, e->key);
            int kv = e->nvalues > 0 ? search__param_array(p, e->values, e->nvalues) : 0;
            if (j == 0) {
                gr_sbuf_addf(sql, "p0.key = $%d", kk);
                if (kv)
                    gr_sbuf_addf(sql, " AND p0.value = ANY($%d::text[])", kv);
                search__repos(sql, p, q, "p0.repo");
                continue;
            }
            gr_sbuf_addf(sql,
                         " AND EXISTS (SELECT 1 FROM properties p%d WHERE p%d.repo = p0.repo"
                         " AND p%d.path = p0.path AND p%d.key = $%d",
                         j, j, j, j, kk);
            if (kv)
                gr_sbuf_addf(sql, " AND p%d.value = ANY($%d::text[])", j, kv);
            gr_sbuf_adds(sql, ")");
        }
        /* only items that exist: a file, the root, or a folder (a file below it) */
        gr_sbuf_adds(sql, ") m LEFT JOIN artifacts a ON a.repo = m.repo AND a.path = m.path"
                          " LEFT JOIN binaries b ON b.sha256 = a.sha256"
                          " WHERE a.id IS NOT NULL OR m.path = '' OR EXISTS (SELECT 1 FROM"
                          " artifacts f WHERE f.repo = m.repo AND f.path > m.path || '/'"
                          " AND f.path < m.path || '0')");
        return GR_OK;
    }
    }
    return GR_EINVAL;
}

static int search__cmp(const void *x, const void *y)
{
    const struct search_hit *a = x, *b = y;
    int c = strcmp(a->repo, b->repo);
    return c ? c : strcmp(a->path, b->path);
}

/* Load the properties of hits[0..n) (one query), sorted by key then value. */
static int search__load_props(struct repo_ctx *ctx, struct gr_arena *a, struct search_hit *hits,
                              int n)
{
    if (n == 0)
        return GR_OK;
    const char **repos = gr_arena_alloc(a, sizeof(*repos) * (size_t)n);
    const char **paths = gr_arena_alloc(a, sizeof(*paths) * (size_t)n);
    for (int i = 0; i < n; i++) {
        repos[i] = hits[i].repo;
        paths[i] = hits[i].path;
    }
    struct gr_sbuf r = GR_SBUF_INIT, pa = GR_SBUF_INIT;
    db_text_array(&r, repos, n);
    db_text_array(&pa, paths, n);
    const char *p[2] = {r.buf, pa.buf};
    struct db_res *res = NULL;
    int rc = db_exec1(ctx->db, &res,
                      "SELECT t.i - 1, p.key, p.value FROM unnest($1::text[], $2::text[])"
                      " WITH ORDINALITY AS t(repo, path, i)"
                      " JOIN properties p ON p.repo = t.repo AND p.path = t.path"
                      " ORDER BY t.i, p.key, p.value",
                      2, p);
    gr_sbuf_release(&r);
    gr_sbuf_release(&pa);
    if (rc)
        return rc;
    db_res_arena(res, a);
    int rows = db_res_rows(res);
    const char **vals = gr_arena_alloc(a, sizeof(*vals) * (size_t)(rows ? rows : 1));
    /* rows are grouped by hit then key: count keys per hit, then fill */
    int *nk = gr_arena_calloc(a, sizeof(*nk) * (size_t)n);
    for (int i = 0; i < rows; i++) {
        int h = atoi(db_res_get(res, i, 0));
        if (h < 0 || h >= n)
            return GR_EDB;
        if (i == 0 || h != atoi(db_res_get(res, i - 1, 0)) ||
            strcmp(db_res_get(res, i, 1), db_res_get(res, i - 1, 1)))
            nk[h]++;
    }
    for (int h = 0; h < n; h++)
        hits[h].props.e =
            gr_arena_calloc(a, sizeof(struct props_entry) * (size_t)(nk[h] ? nk[h] : 1));
    for (int i = 0; i < rows; i++) {
        int h = atoi(db_res_get(res, i, 0));
        struct props_set *s = &hits[h].props;
        const char *k = db_res_get(res, i, 1);
        vals[i] = db_res_get(res, i, 2);
        if (s->n == 0 || strcmp(s->e[s->n - 1].key, k)) {
            s->e[s->n].key = k;
            s->e[s->n].values = &vals[i];
            s->n++;
        }
        s->e[s->n - 1].nvalues++;
    }
    return GR_OK;
}

int search_run(struct repo_ctx *ctx, struct gr_arena *a, const struct search_query *q,
               bool with_props, struct search_hit **out, int *n, bool *truncated)
{
    *out = NULL;
    *n = 0;
    *truncated = false;
    if (q->limit < 1 || q->nrepos > 64)
        return GR_EINVAL;
    struct gr_sbuf sql = GR_SBUF_INIT;
    struct search__params p = {.n = 0};
    int rc = search__sql(a, q, &sql, &p);
    if (rc == GR_OK) {
        int kl = search__param(&p, gr_arena_printf(a, "%d", q->limit + 1));
        gr_sbuf_addf(&sql, " LIMIT $%d", kl);
    }
    struct db_res *res = NULL;
    if (rc == GR_OK)
        rc = db_exec1(ctx->db, &res, sql.buf, p.n, p.v);
    gr_sbuf_release(&sql);
    search__params_release(&p);
    if (rc)
        return rc;
    db_res_arena(res, a);
    int rows = db_res_rows(res);
    if (rows > q->limit) {
        rows = q->limit;
        *truncated = true;
    }
    struct search_hit *hits = gr_arena_calloc(a, sizeof(*hits) * (size_t)(rows ? rows : 1));
    for (int i = 0; i < rows; i++) {
        struct search_hit *h = &hits[i];
        h->repo = db_res_get(res, i, 0);
        h->path = db_res_get(res, i, 1);
        h->is_folder = db_res_get(res, i, 11)[0] == 't';
        h->art.repo = h->repo;
        h->art.path = h->path;
        snprintf(h->art.sha256, sizeof(h->art.sha256), "%s", db_res_get(res, i, 2));
        snprintf(h->art.sha1, sizeof(h->art.sha1), "%s", db_res_get(res, i, 3));
        snprintf(h->art.md5, sizeof(h->art.md5), "%s", db_res_get(res, i, 4));
        h->art.size = strtoull(db_res_get(res, i, 5), NULL, 10);
        h->art.created_ms = strtoll(db_res_get(res, i, 6), NULL, 10);
        h->art.modified_ms = strtoll(db_res_get(res, i, 7), NULL, 10);
        h->art.updated_ms = strtoll(db_res_get(res, i, 8), NULL, 10);
        h->art.created_by = db_res_get(res, i, 9);
        h->art.modified_by = db_res_get(res, i, 10);
    }
    qsort(hits, (size_t)rows, sizeof(*hits), search__cmp);
    if (with_props) {
        rc = search__load_props(ctx, a, hits, rows);
        if (rc)
            return rc;
    }
    *out = hits;
    *n = rows;
    return GR_OK;
}
