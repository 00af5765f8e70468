/*
 * h_plugins.c - /api/plugins: list, install (PUT, compile-checked), read,
 * delete, reload, executions; and the hook calls other handlers make
 * (each a one-liner at its call site, so those files stay easy to merge).
 */
#include "http/h_plugins.h"

#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "repo/plugins.h"
#include "repo/props.h"
#include "repo/security.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HP_BODY_MAX (1024 * 1024)

/* ---- hooks ---- */

/* The runtime when some plugin defines h; sync: check the generation first. */
static struct plug_runtime *hp__rt(struct http_req *r, enum plug_hook h, bool sync)
{
    struct plug_runtime *rt = plugins_runtime(r->ctx->plugins, sync ? r->arena : NULL);
    return rt && plug_has_hook(rt, h) ? rt : NULL;
}

static void hp__event(struct http_req *r, struct plug_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->repo = r->repo_key;
    ev->path = r->path;
    ev->user = r->user.name;
    ev->admin = http_is_admin(r);
    ev->size = -1;
}

static void hp__artifact(const struct artifact *a, struct plug_artifact *pa)
{
    *pa = (struct plug_artifact){a->repo,       a->path,       a->sha256,      a->sha1,
                                 a->md5,        a->created_by, a->modified_by, a->size,
                                 a->created_ms, a->modified_ms};
}

/*
 * What a hook's outcome means for the request. before: a refusal answers
 * with its status; a failure answers 500 naming the plugin and line.
 * after: failures are logged. true: go on.
 */
static bool hp__decide(struct http_req *r, enum plug_hook h, int rc, struct plug_result *res)
{
    bool before = !(h & 1);
    if (rc == PLUG_OK || rc == PLUG_EBUSY)
        return true;
    if (rc == PLUG_EDENIED) {
        gr_info("req=%llu plugin %s refused %s: %s", (unsigned long long)r->id,
                res->plugin ? res->plugin : "?", plug_hook_name(h),
                res->message ? res->message : "");
        if (before)
            http_error(r, res->status >= 400 ? res->status : 403, "%s",
                       res->message ? res->message : "refused by a plugin");
        return !before;
    }
    gr_error("req=%llu plugin %s failed in %s: %s", (unsigned long long)r->id,
             res->plugin ? res->plugin : "?", plug_hook_name(h),
             res->message ? res->message : plug_strerror(rc));
    if (!before)
        return true;
    http_error(r, 500, "plugin %s failed in %s: %s", res->plugin ? res->plugin : "?",
               plug_hook_name(h), res->message ? res->message : plug_strerror(rc));
    return false;
}

static bool hp__run(struct http_req *r, struct plug_runtime *rt, enum plug_hook h,
                    const struct plug_event *ev, struct plug_result *res)
{
    struct plugins_call call = {r->arena, r->user.name};
    int rc = plug_run_hook(rt, h, ev, &call, res);
    return hp__decide(r, h, rc, res);
}

bool http_plug_authenticate(struct http_req *r, const char *user, const char *password)
{
    if (!strcmp(user, "anonymous"))
        return false; /* the name of unauthenticated callers */
    struct plug_runtime *rt = plugins_runtime(r->ctx->plugins, r->arena);
    if (!rt || !plug_has_realm(rt))
        return false;
    struct plugins_call call = {r->arena, user};
    bool ok = false, admin = false;
    char realm[PLUG_NAME_MAX + 1];
    if (plug_authenticate(rt, user, password, &call, &ok, &admin, realm, sizeof(realm)) !=
            PLUG_OK ||
        !ok)
        return false;
    /* its own principal, "<realm>:<user>": never the internal user of the same name */
    int n = snprintf(r->user.name, sizeof(r->user.name), "%s:%s", realm, user);
    if (n < 0 || (size_t)n >= sizeof(r->user.name)) {
        memset(&r->user, 0, sizeof(r->user));
        return false;
    }
    r->user.admin = admin;
    r->user.anonymous = false;
    return true;
}

bool http_plug_before_download(struct http_req *r, const struct artifact *a)
{
    struct plug_runtime *rt = hp__rt(r, PLUG_BEFORE_DOWNLOAD, true);
    if (!rt)
        return true;
    struct plug_event ev;
    struct plug_artifact pa;
    hp__event(r, &ev);
    hp__artifact(a, &pa);
    ev.artifact = &pa;
    struct plug_result res;
    bool go = hp__run(r, rt, PLUG_BEFORE_DOWNLOAD, &ev, &res);
    if (go && res.respond) {
        /* an alternative response: the body moves to libmicrohttpd */
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(res.body_len, res.body, MHD_RESPMEM_MUST_FREE);
        if (resp) {
            res.body = NULL;
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, res.content_type);
            for (int i = 0; i < res.nheaders; i++)
                MHD_add_response_header(resp, res.headers[i].key, res.headers[i].value);
            http_send(r, res.status, resp);
        } else {
            http_error(r, 500, "out of memory");
        }
        go = false;
    }
    plug_result_release(&res);
    return go;
}

/* An after-hook of one artifact: its outcome changes nothing. */
static void hp__after(struct http_req *r, enum plug_hook hook, const struct artifact *a, int status)
{
    struct plug_runtime *rt = hp__rt(r, hook, false);
    if (!rt)
        return;
    struct plug_event ev;
    struct plug_artifact pa;
    hp__event(r, &ev);
    hp__artifact(a, &pa);
    ev.artifact = &pa;
    ev.status = status;
    struct plug_result res;
    hp__run(r, rt, hook, &ev, &res);
    plug_result_release(&res);
}

void http_plug_after_download(struct http_req *r, const struct artifact *a, int status)
{
    hp__after(r, PLUG_AFTER_DOWNLOAD, a, status);
}

/* Flatten a parsed property set for an event. */
static void hp__props(struct http_req *r, const struct props_set *set, bool keys_only,
                      struct plug_event *ev)
{
    int total = 0;
    for (int i = 0; set && i < set->n; i++)
        total += set->e[i].nvalues > 0 && !keys_only ? set->e[i].nvalues : 1;
    struct plug_prop *v = gr_arena_calloc(r->arena, sizeof(*v) * (size_t)(total + 1));
    int n = 0;
    for (int i = 0; set && i < set->n; i++) {
        if (keys_only || set->e[i].nvalues == 0)
            v[n++] = (struct plug_prop){set->e[i].key, keys_only ? NULL : ""};
        else
            for (int j = 0; j < set->e[i].nvalues; j++)
                v[n++] = (struct plug_prop){set->e[i].key, set->e[i].values[j]};
    }
    ev->props = v;
    ev->nprops = n;
}

/* Matrix text for one value: backslash the list syntax, percent-encode the rest. */
static void hp__matrix_add(struct gr_sbuf *sb, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == ',' || *p == '\\' || *p == '|' || *p == '=')
            gr_sbuf_adds(sb, "%5C");
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '.' || *p == '-' || *p == '_') {
            gr_sbuf_add(sb, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            gr_sbuf_add(sb, e, 3);
        }
    }
}

static bool hp__before_upload(struct http_req *r, int64_t size)
{
    struct plug_runtime *rt = hp__rt(r, PLUG_BEFORE_UPLOAD, true);
    if (!rt)
        return true;
    struct plug_event ev;
    hp__event(r, &ev);
    struct props_set set = {NULL, 0};
    if (r->matrix && *r->matrix && props_parse_matrix(r->arena, r->matrix, &set) == GR_OK)
        hp__props(r, &set, false, &ev);
    else
        ev.props = NULL;
    ev.size = size;
    struct plug_result res;
    bool go = hp__run(r, rt, PLUG_BEFORE_UPLOAD, &ev, &res);
    if (go && res.nadd > 0) {
        struct gr_sbuf sb = GR_SBUF_INIT;
        if (r->matrix && *r->matrix)
            gr_sbuf_adds(&sb, r->matrix);
        for (int i = 0; i < res.nadd; i++) {
            if (sb.len)
                gr_sbuf_adds(&sb, ";");
            hp__matrix_add(&sb, res.add_props[i].key);
            gr_sbuf_adds(&sb, "=");
            hp__matrix_add(&sb, res.add_props[i].value);
        }
        r->matrix = gr_arena_strdup(r->arena, sb.buf);
        gr_sbuf_release(&sb);
    }
    plug_result_release(&res);
    return go;
}

bool http_plug_before_upload(struct http_req *r)
{
    const char *cl = http_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return hp__before_upload(r, cl ? strtoll(cl, NULL, 10) : -1);
}

bool http_plug_before_upload_sized(struct http_req *r, int64_t size)
{
    return hp__before_upload(r, size);
}

void http_plug_after_upload(struct http_req *r, const struct artifact *a)
{
    hp__after(r, PLUG_AFTER_UPLOAD, a, 0);
}

static bool hp__simple(struct http_req *r, enum plug_hook h, bool sync, const char *dst_repo,
                       const char *dst_path, const char *action, const struct props_set *set)
{
    struct plug_runtime *rt = hp__rt(r, h, sync);
    if (!rt)
        return true;
    struct plug_event ev;
    hp__event(r, &ev);
    ev.target_repo = dst_repo;
    ev.target_path = dst_path;
    ev.action = action;
    if (set)
        hp__props(r, set, action && !strcmp(action, "delete"), &ev);
    struct plug_artifact pa;
    struct artifact a;
    if (r->path && *r->path && artifact_get(r->ctx, r->arena, r->repo_key, r->path, &a) == GR_OK) {
        hp__artifact(&a, &pa);
        ev.artifact = &pa;
    }
    struct plug_result res;
    bool go = hp__run(r, rt, h, &ev, &res);
    plug_result_release(&res);
    return go;
}

bool http_plug_before_delete(struct http_req *r)
{
    return hp__simple(r, PLUG_BEFORE_DELETE, true, NULL, NULL, NULL, NULL);
}

void http_plug_after_delete(struct http_req *r)
{
    hp__simple(r, PLUG_AFTER_DELETE, false, NULL, NULL, NULL, NULL);
}

bool http_plug_before_copymove(struct http_req *r, bool move, const char *dst_repo,
                               const char *dst_path)
{
    return hp__simple(r, move ? PLUG_BEFORE_MOVE : PLUG_BEFORE_COPY, true, dst_repo, dst_path, NULL,
                      NULL);
}

void http_plug_after_copymove(struct http_req *r, bool move, const char *dst_repo,
                              const char *dst_path)
{
    hp__simple(r, move ? PLUG_AFTER_MOVE : PLUG_AFTER_COPY, false, dst_repo, dst_path, NULL, NULL);
}

bool http_plug_before_props(struct http_req *r, const char *action, const struct props_set *set)
{
    return hp__simple(r, PLUG_BEFORE_PROPERTY_CHANGE, true, NULL, NULL, action, set);
}

void http_plug_after_props(struct http_req *r, const char *action, const struct props_set *set)
{
    hp__simple(r, PLUG_AFTER_PROPERTY_CHANGE, false, NULL, NULL, action, set);
}

/* ---- /api/plugins ---- */

struct hp_body {
    struct gr_sbuf buf;
    void (*done)(struct http_req *r, const char *body, size_t len);
};

static void hp__body_free(void *arg)
{
    struct hp_body *b = arg;
    gr_sbuf_release(&b->buf);
}

static int hp__body_chunk(struct http_req *r, const char *data, size_t len)
{
    struct hp_body *b = r->hctx;
    if (b->buf.len + len > HP_BODY_MAX)
        return GR_ETOOBIG;
    gr_sbuf_add(&b->buf, data, len);
    return GR_OK;
}

static void hp__body_end(struct http_req *r)
{
    struct hp_body *b = r->hctx;
    if (r->body_error) {
        http_error(r, 413, "body larger than %d bytes", HP_BODY_MAX);
        return;
    }
    b->done(r, b->buf.buf, b->buf.len);
}

/* Collect the raw body (at most HP_BODY_MAX), then call done. */
static void hp__read_body(struct http_req *r,
                          void (*done)(struct http_req *r, const char *body, size_t len))
{
    struct hp_body *b = gr_arena_calloc(r->arena, sizeof(*b));
    gr_sbuf_init(&b->buf);
    b->done = done;
    gr_arena_cleanup(r->arena, hp__body_free, b);
    r->hctx = b;
    r->on_body = hp__body_chunk;
    r->on_end = hp__body_end;
}

/* Executions for everyone (what one may call); jobs, their errors and the plugins for admins. */
static void hp__list(struct http_req *r, bool full)
{
    struct plug_runtime *rt = plugins_runtime(r->ctx->plugins, r->arena);
    struct plug_exec_info *ex = NULL;
    struct plug_job_info *jobs = NULL;
    int nex = 0, njobs = 0, nrows = 0, njr = 0;
    struct plugins_row *rows = NULL;
    struct plugins_job_row *jr = NULL;
    int rc = plugins_list(r->ctx->plugins, r->arena, &rows, &nrows);
    if (rc == GR_OK)
        rc = plugins_job_rows(r->ctx->plugins, r->arena, &jr, &njr);
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    if (plug_executions(rt, &ex, &nex) != PLUG_OK || plug_jobs(rt, &jobs, &njobs) != PLUG_OK) {
        free(ex);
        http_error(r, 500, "out of memory");
        return;
    }
    json_t *jex = json_array(), *jjobs = json_array(), *jplugins = json_array();
    for (int i = 0; i < nex; i++)
        json_array_append_new(jex, json_pack("{s:s,s:s,s:b}", "name", ex[i].name, "plugin",
                                             ex[i].plugin, "admin", ex[i].admin));
    for (int i = 0; i < njobs; i++) {
        json_t *j =
            json_pack("{s:s,s:s,s:s}", "plugin", jobs[i].plugin, "name", jobs[i].name, "where",
                      jobs[i].where == PLUG_WHERE_PRIMARY ? "primary" : "every-node");
        if (jobs[i].interval_ms)
            json_object_set_new(j, "interval", json_real((double)jobs[i].interval_ms / 1000.0));
        else
            json_object_set_new(j, "cron", json_string(jobs[i].cron));
        for (int k = 0; k < njr; k++) {
            if (strcmp(jr[k].plugin, jobs[i].plugin) || strcmp(jr[k].job, jobs[i].name))
                continue;
            char when[40];
            http_iso8601(jr[k].last_run_ms, when, sizeof(when));
            json_object_set_new(j, "runs", json_integer((json_int_t)jr[k].runs));
            json_object_set_new(j, "lastRun", json_string(when));
            json_object_set_new(j, "lastNode", json_string(jr[k].node));
            if (*jr[k].last_error)
                json_object_set_new(j, "lastError", json_string(jr[k].last_error));
        }
        json_array_append_new(jjobs, j);
    }
    for (int i = 0; i < nrows; i++) {
        char when[40];
        http_iso8601(rows[i].updated_ms, when, sizeof(when));
        json_array_append_new(jplugins, json_pack("{s:s,s:s,s:s,s:I}", "name", rows[i].name,
                                                  "updated", when, "updatedBy", rows[i].updated_by,
                                                  "size", (json_int_t)rows[i].size));
    }
    free(ex);
    free(jobs);
    if (!full) {
        json_decref(jjobs);
        json_decref(jplugins);
        http_json(r, 200, json_pack("{s:o}", "executions", jex));
        return;
    }
    http_json(r, 200,
              json_pack("{s:o,s:o,s:o,s:I}", "executions", jex, "jobs", jjobs, "plugins", jplugins,
                        "generation", (json_int_t)plug_generation(rt)));
}

static void hp__put_done(struct http_req *r, const char *body, size_t len)
{
    const char *name = r->repo_key; /* the plugin name, parsed by h_plugins */
    char err[1024] = "";
    bool created = false;
    int rc =
        plugins_put(r->ctx->plugins, name, body, len, r->user.name, &created, err, sizeof(err));
    if (rc == GR_EINVAL) {
        http_error(r, 400, "plugin refused: %s", err);
        return;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return;
    }
    http_json(r, created ? 201 : 200,
              json_pack("{s:s,s:s}", "name", name, "status", created ? "installed" : "replaced"));
}

/* "a=1;b=2" (also '|' between pairs) into params. */
static int hp__params(struct http_req *r, const char *s, struct plug_param **out)
{
    int n = 0, cap = 8;
    struct plug_param *v = gr_arena_calloc(r->arena, sizeof(*v) * (size_t)cap);
    char *copy = gr_arena_strdup(r->arena, s ? s : "");
    char *save = NULL;
    for (char *it = strtok_r(copy, ";|", &save); it; it = strtok_r(NULL, ";|", &save)) {
        if (n == cap) {
            struct plug_param *nv = gr_arena_calloc(r->arena, sizeof(*v) * (size_t)cap * 2);
            memcpy(nv, v, sizeof(*v) * (size_t)n);
            v = nv;
            cap *= 2;
        }
        char *eq = strchr(it, '=');
        if (eq)
            *eq = '\0';
        v[n++] = (struct plug_param){it, eq ? eq + 1 : ""};
    }
    *out = v;
    return n;
}

static void hp__execute_done(struct http_req *r, const char *body, size_t len)
{
    const char *name = r->repo_key;
    struct plug_runtime *rt = plugins_runtime(r->ctx->plugins, r->arena);
    struct plug_param *params = NULL;
    int np = hp__params(r, http_query(r, "params"), &params);
    struct plug_event who;
    memset(&who, 0, sizeof(who));
    who.user = r->user.name;
    who.admin = http_is_admin(r);
    struct plugins_call call = {r->arena, r->user.name};
    struct plug_result res;
    int rc = plug_execute(rt, name, params, np, body, len, &who, &call, &res);
    if (rc == PLUG_OK) {
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(res.body_len, res.body, MHD_RESPMEM_MUST_FREE);
        if (resp) {
            res.body = NULL;
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, res.content_type);
            http_send(r, res.status, resp);
        } else {
            http_error(r, 500, "out of memory");
        }
    } else if (rc == PLUG_ENOTFOUND) {
        http_error(r, 404, "no such execution: %s", name);
    } else if (rc == PLUG_EDENIED) {
        http_error(r, res.status >= 400 ? res.status : 403, "%s",
                   res.message ? res.message : "refused");
    } else if (rc == PLUG_EBUSY) {
        http_error(r, 503, "plugins are busy on this thread");
    } else {
        gr_error("req=%llu execution %s failed: %s", (unsigned long long)r->id, name,
                 res.message ? res.message : plug_strerror(rc));
        http_error(r, 500, "execution %s failed: %s", name,
                   res.message ? res.message : plug_strerror(rc));
    }
    plug_result_release(&res);
}

void h_plugins(struct http_req *r, const char *rest)
{
    if (!r->ctx->plugins) {
        http_error(r, 503, "plugins are not started");
        return;
    }
    if (!*rest) {
        if (r->method != HM_GET && r->method != HM_HEAD) {
            http_error(r, 405, "method %s not allowed here", r->method_str);
            return;
        }
        const struct sec_perms *perms;
        if (!http_need_write(r)) /* any authenticated user */
            return;
        int rc = http_perms(r, &perms);
        if (rc)
            http_error_code(r, rc, NULL);
        else
            hp__list(r, perms->all);
        return;
    }
    if (!strncmp(rest, "execute/", 8)) {
        if (r->method != HM_POST) {
            http_error(r, 405, "method %s not allowed here: use POST", r->method_str);
            return;
        }
        if (!http_need_write(r))
            return;
        r->repo_key = gr_arena_strdup(r->arena, rest + 8);
        if (!plug_name_valid(r->repo_key)) {
            http_error(r, 404, "no such execution: %s", r->repo_key);
            return;
        }
        hp__read_body(r, hp__execute_done);
        return;
    }
    if (!strcmp(rest, "reload")) {
        if (r->method != HM_POST) {
            http_error(r, 405, "method %s not allowed here: use POST", r->method_str);
            return;
        }
        if (!http_need_admin(r))
            return;
        uint64_t gen = 0;
        int rc = plugins_reload(r->ctx->plugins, &gen);
        if (rc) {
            http_error_code(r, rc, NULL);
            return;
        }
        http_json(r, 200, json_pack("{s:I}", "generation", (json_int_t)gen));
        return;
    }
    if (!plug_name_valid(rest)) {
        http_error(r, 404, "no such plugin: names are [A-Za-z0-9][A-Za-z0-9._-]{0,63}");
        return;
    }
    if (!http_need_admin(r)) /* sources may hold secrets (a realm's table) */
        return;
    r->repo_key = gr_arena_strdup(r->arena, rest);
    const char *src;
    size_t len;
    int rc;
    switch (r->method) {
    case HM_GET:
    case HM_HEAD:
        rc = plugins_source(r->ctx->plugins, r->arena, r->repo_key, &src, &len);
        if (rc == GR_ENOTFOUND)
            http_error(r, 404, "no such plugin: %s", r->repo_key);
        else if (rc)
            http_error_code(r, rc, NULL);
        else
            http_text(r, 200, "text/x-lua; charset=utf-8", src, len);
        return;
    case HM_PUT:
        hp__read_body(r, hp__put_done);
        return;
    case HM_DELETE:
        rc = plugins_delete(r->ctx->plugins, r->repo_key);
        if (rc == GR_ENOTFOUND)
            http_error(r, 404, "no such plugin: %s", r->repo_key);
        else if (rc)
            http_error_code(r, rc, NULL);
        else
            http_text(r, 204, NULL, "", 0);
        return;
    default:
        http_error(r, 405, "method %s not allowed on plugins", r->method_str);
    }
}
