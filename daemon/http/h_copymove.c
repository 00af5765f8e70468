/*
 * h_copymove.c - POST /api/copy/{repo}/{path}?to=/{repo2}/{path2} and
 * /api/move/..., with dry, suppressLayouts and failFast, answering in
 * Artifactory's CopyOrMoveResult shape: {"messages":[{"level","message"}]}.
 * Refusals also carry the house error shape ({"errors":[...]}) in the same
 * body, so both kinds of client read them.
 */
#include "http/h_plugins.h"
#include "http/req.h"

#include "base/err.h"
#include "repo/copymove.h"
#include "repo/security.h"

#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

/* A 0/1 flag; false: a 400 was sent. Absent reads as def. */
static bool copymove__flag(struct http_req *r, const char *name, bool def, bool *out)
{
    const char *v = http_query(r, name);
    *out = def;
    if (!v)
        return true;
    if (!strcmp(v, "1") || !strcmp(v, "true") || !*v)
        *out = true;
    else if (!strcmp(v, "0") || !strcmp(v, "false"))
        *out = false;
    else {
        http_error(r, 400, "parameter '%s' must be 0 or 1", name);
        return false;
    }
    return true;
}

/*
 * The target "/{repo}/{path}" (the leading slash is optional, as in
 * Artifactory) through the same parser and normaliser as the request path,
 * so a target can name nothing a request path could not. false: an answer
 * was sent.
 */
static bool copymove__target(struct http_req *r, const char **repo, const char **path, bool *slash)
{
    const char *raw = NULL;
    size_t n = 0;
    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, "to", 2, &raw, &n) !=
            MHD_YES ||
        !raw || n == 0 || (n == 1 && raw[0] == '/')) {
        http_error(r, 400, "missing target: add ?to=/{repo}/{path}");
        return false;
    }
    if (raw[0] == '/') {
        raw++;
        n--;
    }
    char *to = gr_arena_strndup(r->arena, raw, n);
    if (strlen(to) != n || to[0] == '/') {
        http_error(r, 400, "malformed target: expected ?to=/{repo}/{path}");
        return false;
    }
    /* parse into r's fields, then hand them back */
    const char *src_key = r->repo_key, *src_matrix = r->matrix;
    char *src_path = r->path;
    bool src_slash = r->trailing_slash;
    bool ok = http_parse_repo_path(r, to, n);
    if (ok && r->matrix) {
        http_error(r, 400, "malformed target: matrix parameters are not allowed in 'to'");
        ok = false;
    }
    *repo = r->repo_key;
    *path = r->path;
    *slash = r->trailing_slash;
    r->repo_key = src_key;
    r->path = src_path;
    r->trailing_slash = src_slash;
    r->matrix = src_matrix;
    return ok;
}

/* {"messages":[...]} plus, for a refusal, {"errors":[...]}. */
static void copymove__answer_problems(struct http_req *r, const struct copymove_result *res,
                                      int status)
{
    json_t *msgs = json_array(), *errs = json_array();
    for (int i = 0; i < res->nproblems; i++) {
        const struct copymove_problem *p = &res->problems[i];
        json_array_append_new(msgs,
                              json_pack("{s:s,s:s}", "level", "ERROR", "message", p->message));
        json_array_append_new(errs, json_pack("{s:i,s:s}", "status", gr_err_http_status(p->err),
                                              "message", p->message));
    }
    if (res->problems_total > res->nproblems) {
        char *more = gr_arena_printf(r->arena, "%d more items were refused",
                                     res->problems_total - res->nproblems);
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "level", "ERROR", "message", more));
    }
    http_json(r, status, json_pack("{s:o,s:o}", "errors", errs, "messages", msgs));
}

static void copymove__run(struct http_req *r, const char *sub, bool move)
{
    if (r->method != HM_POST) {
        http_error(r, 405, "method %s not allowed here: use POST", r->method_str);
        return;
    }
    if (!http_parse_repo_path(r, sub, strlen(sub)))
        return;
    bool dry, suppress, fail_fast;
    if (!copymove__flag(r, "dry", false, &dry) ||
        !copymove__flag(r, "suppressLayouts", true, &suppress) ||
        !copymove__flag(r, "failFast", false, &fail_fast))
        return;
    (void)suppress; /* no layouts here: paths are never translated */
    struct copymove_request q = {
        .src_repo = r->repo_key,
        .src_path = r->path,
        .src_slash = r->trailing_slash,
        .move = move,
        .dry_run = dry,
        .fail_fast = fail_fast,
        .user = r->user.name,
    };
    if (!copymove__target(r, &q.dst_repo, &q.dst_path, &q.dst_slash))
        return;
    if (!http_need_copy_move(r, q.src_repo, q.src_path, q.dst_repo, q.dst_path, move))
        return;
    int prc = http_perms(r, &q.perms); /* every target path is checked once resolved */
    if (prc) {
        http_error_code(r, prc, NULL);
        return;
    }

    if (!dry && !http_plug_before_copymove(r, move, q.dst_repo, q.dst_path)) /* h_plugins.c */
        return;
    struct copymove_result res;
    int rc = copymove_run(r->ctx, r->arena, &q, &res);
    if (rc && res.nproblems > 0) {
        /* an anonymous caller refused for want of permission is asked to sign
         * in; a refusal by the target's patterns stays 403 for everyone */
        int status = gr_err_http_status(rc);
        copymove__answer_problems(r, &res,
                                  status == 403 && res.denied && r->user.anonymous ? 401 : status);
        return;
    }
    if (rc) {
        http_error_code(r, rc, res.message);
        return;
    }
    char *msg = gr_arena_printf(
        r->arena, "%s %s:%s to %s:%s completed successfully, %d artifacts and %d folders were %s",
        move ? "moving" : "copying", q.src_repo, q.src_path, q.dst_repo, res.dst_path, res.files,
        res.folders, move ? "moved" : "copied");
    http_json(r, 200, json_pack("{s:[{s:s,s:s}]}", "messages", "level", "INFO", "message", msg));
    if (!dry)
        http_plug_after_copymove(r, move, q.dst_repo, res.dst_path);
}

void h_copy(struct http_req *r, const char *rest)
{
    copymove__run(r, rest, false);
}

void h_move(struct http_req *r, const char *rest)
{
    copymove__run(r, rest, true);
}
