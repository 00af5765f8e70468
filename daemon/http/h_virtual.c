/*
 * h_virtual.c - /<repo>/<path> of a virtual repository (docs/remote.md):
 * a GET asks the members in order (nested virtual repositories flattened,
 * each member's patterns applied, only members the caller may read), and
 * the first that has the file serves it (a remote member may fetch it);
 * merged documents are computed from every member and kept; a deploy goes
 * to defaultDeploymentRepo.
 */
#include "http/remote.h"

#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "formats/format.h"
#include "repo/security.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VIRTUAL_DEPTH 8 /* nested virtual repositories followed at most (cycles are refused) */

static int virtual__members(struct http_req *r, const struct repo_config *v, const char *path,
                            const char *perm_path, int depth, struct http_member **arr, int *n,
                            int *cap, const char **hidden)
{
    struct virtual_settings vs;
    virtual_settings_read(r->arena, v, &vs);
    for (int i = 0; i < vs.n; i++) {
        if (!virtual_member_accepts(&vs, i, path))
            continue;
        struct repo_config m;
        int rc = repo_get(r->ctx, r->arena, vs.members[i], &m);
        if (rc == GR_ENOTFOUND)
            continue; /* deleted since: skipped */
        if (rc)
            return rc;
        if (!http_may(r, m.key, perm_path, SEC_READ)) {
            if (!*hidden)
                *hidden = gr_arena_strdup(r->arena, m.key);
            continue;
        }
        if (!strcmp(m.rclass, "virtual")) {
            if (depth < VIRTUAL_DEPTH &&
                (rc = virtual__members(r, &m, path, perm_path, depth + 1, arr, n, cap, hidden)))
                return rc;
            continue;
        }
        bool dup = false;
        for (int k = 0; k < *n && !dup; k++)
            dup = !strcmp((*arr)[k].cfg.key, m.key);
        if (dup)
            continue;
        if (*n == *cap) {
            int ncap = *cap ? *cap * 2 : 8;
            struct http_member *na = gr_arena_alloc(r->arena, sizeof(*na) * (size_t)ncap);
            if (*n)
                memcpy(na, *arr, sizeof(*na) * (size_t)*n);
            *arr = na;
            *cap = ncap;
        }
        (*arr)[(*n)++].cfg = m;
    }
    return GR_OK;
}

int http_virtual_members(struct http_req *r, const struct repo_config *v, const char *path,
                         const char *perm_path, struct http_member **out, int *n,
                         const char **hidden)
{
    int cap = 0;
    const char *h = NULL;
    *out = NULL;
    *n = 0;
    int rc = virtual__members(r, v, path, perm_path ? perm_path : path, 0, out, n, &cap, &h);
    if (hidden)
        *hidden = h;
    return rc;
}

/*
 * No member this caller may read path in: when some member was left out for
 * want of permission, the refusal of reading it there (401/403, audited);
 * else false (nothing answered: the caller answers 404).
 */
static bool virtual__refused(struct http_req *r, const char *hidden, const char *perm_path)
{
    if (!hidden)
        return false;
    (void)http_need_perm(r, hidden, perm_path, SEC_READ); /* answers the refusal */
    return true;
}

/* Whether a local member stores path, or the file whose checksum file path is. */
static int virtual__local_has(struct http_req *r, const struct repo_config *m, const char *path,
                              bool *has)
{
    struct artifact a;
    int rc = artifact_get(r->ctx, r->arena, m->key, path, &a);
    *has = rc == GR_OK;
    if (rc != GR_ENOTFOUND)
        return rc;
    static const char *const exts[] = {".sha1", ".sha256", ".md5"};
    size_t n = strlen(path);
    for (int i = 0; i < 3; i++) {
        size_t el = strlen(exts[i]);
        if (n > el && !strcmp(path + n - el, exts[i])) {
            rc = artifact_get(r->ctx, r->arena, m->key, gr_arena_strndup(r->arena, path, n - el),
                              &a);
            *has = rc == GR_OK;
            return rc == GR_ENOTFOUND ? GR_OK : rc;
        }
    }
    return GR_OK;
}

void http_virtual_file(struct http_req *r, const struct repo_config *v, const char *path)
{
    struct http_member *m;
    int n;
    const char *hidden;
    int rc = http_virtual_members(r, v, path, NULL, &m, &n, &hidden);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    if (n == 0 && virtual__refused(r, hidden, path))
        return;
    const char *vkey = v->key, *failed = NULL;
    for (int i = 0; i < n; i++) {
        const struct repo_config *c = &m[i].cfg;
        const struct format *f = http_format(r, c->package_type);
        if (!strcmp(c->rclass, "local")) {
            bool has;
            if ((rc = virtual__local_has(r, c, path, &has))) {
                http_error_code(r, rc, NULL);
                return;
            }
            if (!has)
                continue;
            /* the member serves it as it would itself (its format's rules, its permission) */
            r->repo_key = gr_arena_strdup(r->arena, c->key);
            r->path = gr_arena_strdup(r->arena, path);
            if (f && f->artifact)
                f->artifact(r, c);
            else
                http_artifact_generic(r, c);
            return;
        }
        r->repo_key = gr_arena_strdup(r->arena, c->key);
        r->path = gr_arena_strdup(r->arena, path);
        if (http_artifact_checksum(r)) /* <file>.sha1 of a file it has cached */
            return;
        struct remote_spec spec;
        struct remote_result res;
        http_remote_spec(r, c, path, &spec);
        if (!http_remote_find(r, c, path, &spec, &res))
            return;
        if (res.res == REMOTE_MISS)
            continue;
        if (res.res == REMOTE_FAIL) {
            struct remote_settings s;
            remote_settings_read(r->arena, c, &s);
            if (s.hard_fail) { /* hardFail: this member's failure is the answer */
                http_remote_answer(r, c, path, &res);
                return;
            }
            failed = gr_arena_printf(r->arena, "; member '%s' failed: %s", c->key, res.reason);
            continue;
        }
        http_remote_answer(r, c, path, &res);
        return;
    }
    r->repo_key = vkey;
    http_error(r, 404, "not found in any member of virtual repository '%s': %s%s", vkey, path,
               failed ? failed : "");
}

static int64_t virtual__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool http_virtual_merged(struct http_req *r, const struct repo_config *v, const struct format *f,
                         const char *path, const char *perm_path, http_local_doc_fn local,
                         char **doc, size_t *len)
{
    struct remote *rm = r->ctx->remote;
    struct http_member *m;
    int n;
    const char *hidden;
    int rc = http_virtual_members(r, v, path, perm_path, &m, &n, &hidden);
    *doc = NULL;
    *len = 0;
    if (rc || !rm) {
        http_error_code(r, rc ? rc : GR_EUNAVAIL, NULL);
        return false;
    }
    if (n == 0 && virtual__refused(r, hidden, perm_path ? perm_path : path))
        return false;
    /* the merge depends on the members this caller reads: they are part of its key */
    struct gr_sbuf key = GR_SBUF_INIT;
    gr_sbuf_addf(&key, "%s\n%s", v->key, path);
    for (int i = 0; i < n; i++)
        gr_sbuf_addf(&key, "\n%s", m[i].cfg.key);
    const char *k = gr_arena_strdup(r->arena, key.buf);
    gr_sbuf_release(&key);
    if (remote_merged_get(rm, r->arena, k, doc, len))
        return true;
    uint64_t gen = remote_merged_gen(rm);
    const char **names = gr_arena_calloc(r->arena, sizeof(char *) * (size_t)(n + 1));
    const char **docs = gr_arena_calloc(r->arena, sizeof(char *) * (size_t)(n + 1));
    size_t *lens = gr_arena_calloc(r->arena, sizeof(size_t) * (size_t)(n + 1));
    int k_docs = 0;
    bool keep = true;
    int64_t expires = INT64_MAX;
    for (int i = 0; i < n; i++) {
        const struct repo_config *c = &m[i].cfg;
        char *d = NULL;
        size_t l = 0;
        if (!strcmp(c->rclass, "local")) {
            rc = local(r, c, path, &d, &l);
            if (rc == GR_ENOTFOUND)
                continue;
            if (rc) {
                http_error_code(r, rc, NULL);
                return false;
            }
        } else {
            struct remote_spec spec;
            struct remote_result res;
            struct remote_settings s;
            http_remote_spec(r, c, path, &spec);
            remote_settings_read(r->arena, c, &s);
            if (!http_remote_doc(r, c, path, &spec, &d, &l, &res))
                return false;
            if (res.res == REMOTE_FAIL && s.hard_fail) {
                http_remote_answer(r, c, path, &res);
                return false;
            }
            /* kept no longer than the member's own copy is fresh, or its miss remembered */
            if (res.res == REMOTE_HIT && res.art.updated_ms + s.ttl_s * 1000 < expires)
                expires = res.art.updated_ms + s.ttl_s * 1000;
            else if (res.res == REMOTE_MISS && virtual__now_ms() + s.miss_s * 1000 < expires)
                expires = virtual__now_ms() + s.miss_s * 1000;
            else if (res.res != REMOTE_HIT && res.res != REMOTE_MISS)
                keep = false; /* stale, failed, or just fetched (its commit invalidates) */
            if (!d)
                continue;
        }
        names[k_docs] = c->key;
        docs[k_docs] = d;
        lens[k_docs++] = l;
    }
    if (k_docs == 0)
        return true;
    char *out = NULL;
    size_t out_len = 0;
    if (!f || !f->merge_index ||
        f->merge_index(r->arena, path, names, docs, lens, k_docs, &out, &out_len) != GR_OK) {
        out = (char *)docs[0]; /* cannot be merged: the first member's */
        out_len = lens[0];
    }
    if (keep)
        remote_merged_put(rm, k, gen, expires, out, out_len);
    *doc = out;
    *len = out_len;
    return true;
}

void http_virtual_artifact(struct http_req *r, const struct repo_config *cfg,
                           const struct format *f)
{
    if (r->method == HM_PUT) {
        struct virtual_settings vs;
        virtual_settings_read(r->arena, cfg, &vs);
        struct repo_config t;
        int rc = *vs.deploy ? repo_get(r->ctx, r->arena, vs.deploy, &t) : GR_ENOTFOUND;
        if (rc == GR_ENOTFOUND || (rc == GR_OK && strcmp(t.rclass, "local"))) {
            http_error(r, 405,
                       "virtual repository '%s' has no defaultDeploymentRepo: deploy to one of"
                       " its local members",
                       cfg->key);
            return;
        }
        if (rc) {
            http_error_code(r, rc, NULL);
            return;
        }
        r->repo_key = gr_arena_strdup(r->arena, t.key); /* its permissions, its rules */
        const struct format *tf = http_format(r, t.package_type);
        if (tf && tf->artifact)
            tf->artifact(r, &t);
        else
            http_artifact_generic(r, &t);
        return;
    }
    if (r->method != HM_GET && r->method != HM_HEAD) {
        http_error(r, 405, "method %s not allowed on virtual repository '%s'", r->method_str,
                   cfg->key);
        return;
    }
    /* reading through a virtual repository needs read where the file is: on the members */
    if (r->trailing_slash || !*r->path) {
        if (!http_need_read(r))
            return;
        http_error(r, 404,
                   "virtual repository '%s' is not browsed: browse its members (GET"
                   " /api/repositories/%s lists them)",
                   cfg->key, cfg->key);
        return;
    }
    if (f && f->virtual_get)
        f->virtual_get(r, cfg);
    else
        http_virtual_file(r, cfg, r->path);
}
