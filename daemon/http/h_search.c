/*
 * h_search.c - /api/search/{artifact,checksum,prop,dates} in Artifactory's
 * shapes: {"results":[{"uri":...}]}, with X-Result-Detail: info and/or
 * properties adding storage info and properties to each result.
 */
#include "http/path.h"
#include "http/req.h"
#include "http/search.h"
#include "repo/security.h"

#include "base/err.h"
#include "base/sbuf.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool http_search_repos(struct http_req *r, struct search_query *q)
{
    const char *v = http_query(r, "repos");
    q->repos = NULL;
    q->nrepos = 0;
    if (!v || !*v)
        return true;
    const char **keys = gr_arena_alloc(r->arena, sizeof(*keys) * 64);
    char *s = gr_arena_strdup(r->arena, v);
    for (char *save = NULL, *k = strtok_r(s, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
        k += strspn(k, " ");
        k[strcspn(k, " ")] = '\0';
        if (!*k)
            continue;
        bool dup = false;
        for (int i = 0; i < q->nrepos; i++)
            dup |= !strcmp(keys[i], k);
        if (dup)
            continue;
        if (q->nrepos == 64) {
            http_error(r, 400, "repos: at most 64 repositories");
            return false;
        }
        struct repo_config cfg;
        int rc = repo_get(r->ctx, r->arena, k, &cfg);
        size_t kl = strlen(k), sl = strlen(REPO_CACHE_SUFFIX);
        if (rc == GR_ENOTFOUND && kl > sl && !strcmp(k + kl - sl, REPO_CACHE_SUFFIX)) {
            /* <key>-cache: a remote repository's cached files, which are its own */
            char *base = gr_arena_strndup(r->arena, k, kl - sl);
            rc = repo_get(r->ctx, r->arena, base, &cfg);
            if (rc == GR_OK && strcmp(cfg.rclass, "remote"))
                rc = GR_ENOTFOUND;
            if (rc == GR_OK)
                k = base;
        }
        if (rc == GR_ENOTFOUND) {
            http_error(r, 404, "repository '%s' not found", k);
            return false;
        }
        if (rc) {
            http_error_code(r, rc, NULL);
            return false;
        }
        keys[q->nrepos++] = k;
    }
    q->repos = keys;
    return true;
}

static bool search__artifact(struct http_req *r, struct http_search *s)
{
    const char *name = http_query(r, "name");
    if (!name || !*name) {
        http_error(r, 400, "The search term cannot be empty");
        return false;
    }
    if (strlen(name) > HTTP_SEGMENT_MAX || !http_utf8_valid(name, strlen(name))) {
        http_error(r, 400, "name: at most %d bytes of UTF-8", HTTP_SEGMENT_MAX);
        return false;
    }
    struct gr_sbuf like = GR_SBUF_INIT;
    if (search_name_like(name, &like) != GR_OK) {
        gr_sbuf_release(&like);
        http_error(r, 400, "Search term containing only wildcards is not permitted");
        return false;
    }
    s->q.kind = SEARCH_NAME;
    s->q.like = gr_arena_strdup(r->arena, like.buf);
    gr_sbuf_release(&like);
    return true;
}

static bool search__checksum(struct http_req *r, struct http_search *s)
{
    static const char *const types[] = {"sha256", "sha1", "md5"};
    const char *type = NULL, *value = NULL;
    for (int i = 0; i < 3; i++) {
        const char *v = http_query(r, types[i]);
        if (!v)
            continue;
        if (type) {
            http_error(r, 400, "give exactly one of sha256, sha1 or md5");
            return false;
        }
        type = types[i];
        value = v;
    }
    if (!type) {
        http_error(r, 400, "one of sha256, sha1 or md5 is required");
        return false;
    }
    char *norm = gr_arena_alloc(r->arena, 65);
    if (search_checksum_norm(type, value, norm) != GR_OK) {
        http_error(r, 400, "%s must be %d hex characters", type,
                   !strcmp(type, "sha256") ? 64
                   : !strcmp(type, "sha1") ? 40
                                           : 32);
        return false;
    }
    s->q.kind = SEARCH_CHECKSUM;
    s->q.sum_type = type;
    s->q.sum = norm;
    return true;
}

/* Collects ?k=v1,v2 search terms, merging repeated keys. */
struct search__terms {
    struct http_req *r;
    struct props_entry e[32];
    int n;
    const char *error; /* first problem, answered as 400 */
};

static enum MHD_Result search__term(void *cls, enum MHD_ValueKind kind, const char *rkey,
                                    const char *rvalue)
{
    struct search__terms *t = cls;
    (void)kind;
    if (t->error)
        return MHD_NO;
    size_t kl = strlen(rkey), vl = rvalue ? strlen(rvalue) : 0;
    char *key = gr_arena_alloc(t->r->arena, kl + 1);
    char *value = gr_arena_alloc(t->r->arena, vl + 1);
    if (http_query_decode(rkey, kl, key, kl + 1) != GR_OK ||
        http_query_decode(rvalue ? rvalue : "", vl, value, vl + 1) != GR_OK) {
        t->error = "bad percent escape in a property search term";
        return MHD_NO;
    }
    if (!strcmp(key, "repos"))
        return MHD_YES;
    if (!props_key_valid(key)) {
        t->error = "invalid property key in the search";
        return MHD_NO;
    }
    const char **vals;
    int nv;
    if (props_parse_values(t->r->arena, value, &vals, &nv) != GR_OK) {
        t->error = "invalid property value in the search (at most 1024 bytes of UTF-8 each)";
        return MHD_NO;
    }
    for (int i = 0; i < t->n; i++) {
        struct props_entry *e = &t->e[i];
        if (strcmp(e->key, key))
            continue;
        /* k=v&k=w: either value; an empty term means any value */
        if (e->nvalues == 0 || nv == 0) {
            e->nvalues = 0;
            return MHD_YES;
        }
        const char **m = gr_arena_alloc(t->r->arena, sizeof(*m) * (size_t)(e->nvalues + nv));
        memcpy(m, e->values, sizeof(*m) * (size_t)e->nvalues);
        memcpy(m + e->nvalues, vals, sizeof(*m) * (size_t)nv);
        e->values = m;
        e->nvalues += nv;
        return MHD_YES;
    }
    if (t->n == 32) {
        t->error = "at most 32 properties in one search";
        return MHD_NO;
    }
    t->e[t->n].key = key;
    t->e[t->n].values = vals;
    t->e[t->n++].nvalues = nv;
    return MHD_YES;
}

static bool search__prop(struct http_req *r, struct http_search *s)
{
    struct search__terms *t = gr_arena_calloc(r->arena, sizeof(*t));
    t->r = r;
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, search__term, t);
    if (t->error) {
        http_error(r, 400, "%s", t->error);
        return false;
    }
    if (t->n == 0) {
        http_error(r, 400, "The search term cannot be empty");
        return false;
    }
    struct props_set *ps = gr_arena_alloc(r->arena, sizeof(*ps));
    ps->e = t->e;
    ps->n = t->n;
    s->q.kind = SEARCH_PROP;
    s->q.props = ps;
    return true;
}

static bool search__dates(struct http_req *r, struct http_search *s)
{
    if (r->user.anonymous) { /* Artifactory: a non-anonymous user */
        http_error(r, 401, "authentication required");
        return false;
    }
    const char *from = http_query(r, "from"), *to = http_query(r, "to");
    const char *fields = http_query(r, "dateFields");
    if (!from || !*from) {
        http_error(r, 400, "'from' parameter cannot be empty");
        return false;
    }
    if (search_parse_time(from, &s->q.from_ms) != GR_OK) {
        http_error(r, 400, "from: epoch milliseconds or an ISO 8601 date expected");
        return false;
    }
    if (to && *to) {
        if (search_parse_time(to, &s->q.to_ms) != GR_OK) {
            http_error(r, 400, "to: epoch milliseconds or an ISO 8601 date expected");
            return false;
        }
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s->q.to_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    if (!fields || !*fields) {
        http_error(r, 400, "'dateFields' parameter cannot be empty (created, lastModified)");
        return false;
    }
    char *f = gr_arena_strdup(r->arena, fields);
    for (char *save = NULL, *k = strtok_r(f, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
        k += strspn(k, " ");
        k[strcspn(k, " ")] = '\0';
        if (!strcmp(k, "created"))
            s->created = true;
        else if (!strcmp(k, "lastModified"))
            s->modif = true;
        else if (!strcmp(k, "lastDownloaded")) {
            http_error(r, 400,
                       "date field 'lastDownloaded' is not supported: downloads are not"
                       " recorded (possible values: created, lastModified)");
            return false;
        } else if (*k) {
            http_error(r, 400,
                       "date field name '%.64s' unknown (possible values: created,"
                       " lastModified)",
                       k);
            return false;
        }
    }
    if (!s->created && !s->modif) {
        http_error(r, 400, "'dateFields' parameter cannot be empty (created, lastModified)");
        return false;
    }
    s->q.kind = SEARCH_DATES;
    s->q.by_created = s->created;
    s->q.by_modified = s->modif;
    s->empty_is_404 = true;
    return true;
}

/* One result object. */
static json_t *search__result(struct http_req *r, const struct http_search *s,
                              const struct search_hit *h)
{
    json_t *o;
    if (s->info && !h->is_folder) {
        o = http_artifact_json(r, &h->art, true);
    } else {
        struct gr_sbuf enc = GR_SBUF_INIT;
        gr_sbuf_add_urlpath(&enc, h->path);
        const char *uri = gr_arena_printf(r->arena, "%s/api/storage/%s%s%s", http_base_url(r),
                                          h->repo, *h->path ? "/" : "", enc.buf);
        gr_sbuf_release(&enc);
        o = json_object();
        if (s->info) {
            json_object_set_new(o, "repo", json_string(h->repo));
            json_object_set_new(o, "path", json_string(gr_arena_printf(r->arena, "/%s", h->path)));
        }
        json_object_set_new(o, "uri", json_string(uri));
    }
    char buf[40];
    if (s->created && !h->is_folder) {
        http_iso8601(h->art.created_ms, buf, sizeof(buf));
        json_object_set_new(o, "created", json_string(buf));
    }
    if (s->modif && !h->is_folder) {
        http_iso8601(h->art.modified_ms, buf, sizeof(buf));
        json_object_set_new(o, "lastModified", json_string(buf));
    }
    if (s->props) {
        json_t *p = json_object();
        for (int i = 0; i < h->props.n; i++) {
            json_t *vals = json_array();
            for (int j = 0; j < h->props.e[i].nvalues; j++)
                json_array_append_new(vals, json_string(h->props.e[i].values[j]));
            json_object_set_new(p, h->props.e[i].key, vals);
        }
        json_object_set_new(o, "properties", p);
    }
    return o;
}

bool http_search_begin(struct http_req *r, struct http_search *s)
{
    if (r->method != HM_GET && r->method != HM_HEAD) {
        http_error(r, 405, "method %s not allowed here", r->method_str);
        return false;
    }
    if (!http_need_read(r))
        return false;
    memset(s, 0, sizeof(*s));
    const char *detail = http_req_header(r, "X-Result-Detail");
    s->info = detail && strstr(detail, "info");
    s->props = detail && strstr(detail, "properties");
    s->q.limit = SEARCH_LIMIT_DEFAULT;
    return true;
}

void http_search_answer(struct http_req *r, const struct http_search *s,
                        const struct search_hit *hits, int n, bool truncated)
{
    if (n == 0 && s->empty_is_404) {
        http_error(r, 404, "No results found.");
        return;
    }
    json_t *results = json_array();
    for (int i = 0; i < n; i++)
        if (http_may(r, hits[i].repo, hits[i].path, SEC_READ)) /* hide what one may not read */
            json_array_append_new(results, search__result(r, s, &hits[i]));
    json_t *doc = json_object();
    json_object_set_new(doc, "results", results);
    char *body = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(doc);
    if (!body) {
        http_error(r, 500, "out of memory");
        return;
    }
    size_t len = strlen(body);
    struct MHD_Response *resp = http_response_bytes(body, len, false);
    if (!resp) {
        http_error(r, 500, "out of memory");
        return;
    }
    http_header(resp, "Content-Type", "application/json");
    r->sent_bytes += len;
    if (truncated) {
        char lim[16];
        snprintf(lim, sizeof(lim), "%d", s->q.limit);
        http_header(resp, "X-Result-Limit-Reached", lim);
    }
    http_send(r, 200, resp);
}

void h_search(struct http_req *r, const char *sub)
{
    size_t sl = strlen(sub);
    while (sl > 0 && sub[sl - 1] == '/')
        sl--;
    const char *kind = gr_arena_strndup(r->arena, sub, sl);
    bool (*parse)(struct http_req *, struct http_search *) =
        !strcmp(kind, "artifact")   ? search__artifact
        : !strcmp(kind, "checksum") ? search__checksum
        : !strcmp(kind, "prop")     ? search__prop
        : !strcmp(kind, "dates")    ? search__dates
                                    : NULL;
    if (!parse) {
        if (r->method != HM_GET && r->method != HM_HEAD)
            http_error(r, 405, "method %s not allowed here", r->method_str);
        else
            http_error(r, 404, "no such api: /api/search/%s", sub);
        return;
    }
    struct http_search *s = gr_arena_calloc(r->arena, sizeof(*s));
    if (!http_search_begin(r, s) || !parse(r, s) || !http_search_repos(r, &s->q))
        return;
    struct search_hit *hits;
    int n;
    bool truncated;
    int rc = search_run(r->ctx, r->arena, &s->q, s->props, &hits, &n, &truncated);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    http_search_answer(r, s, hits, n, truncated);
}
