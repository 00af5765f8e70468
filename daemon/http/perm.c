/*
 * perm.c - who may do what (docs/security.md): every handler asks here.
 * One check, http_need_perm(); the http_need_* helpers name the action and
 * record it for the audit log (written when the request completes with a
 * 2xx answer).
 */
#include "http/req.h"

#include "base/err.h"
#include "base/log.h"
#include "repo/security.h"

#include <string.h>

void http_audit(struct http_req *r, const char *action, const char *repo, const char *path,
                const char *detail)
{
    r->audit_action = action;
    r->audit_repo = repo ? gr_arena_strdup(r->arena, repo) : NULL;
    r->audit_path = path ? gr_arena_strdup(r->arena, path) : NULL;
    r->audit_detail = detail ? gr_arena_strdup(r->arena, detail) : NULL;
}

/* Anonymous callers need anonymous access on (cluster-wide). false: 401 sent. */
static bool perm__anonymous_ok(struct http_req *r)
{
    bool on = false;
    int rc = settings_anonymous_read(r->ctx, &on);
    if (rc) {
        http_error_code(r, rc, NULL);
        return false;
    }
    if (!on)
        http_error(r, 401, "authentication required");
    return on;
}

int http_perms(struct http_req *r, const struct sec_perms **out)
{
    if (!r->perms) {
        struct sec_perms *p = gr_arena_calloc(r->arena, sizeof(*p));
        bool on = true;
        int rc = r->user.anonymous ? settings_anonymous_read(r->ctx, &on) : GR_OK;
        if (rc == GR_OK && on) /* anonymous callers hold nothing while anonymous access is off */
            rc = sec_perms_load(r->ctx, r->arena, &r->user, p);
        if (rc)
            return rc;
        r->perms = p;
    }
    *out = r->perms;
    return GR_OK;
}

/* The actions r->user holds on repo/path (tree: on all below it); false: an error was sent. */
static bool perm__have(struct http_req *r, const char *repo, const char *path, bool tree,
                       unsigned *have)
{
    const struct sec_perms *p;
    int rc = http_perms(r, &p);
    if (rc) {
        http_error_code(r, rc, NULL);
        return false;
    }
    *have = tree ? sec_perms_on_tree(p, repo, path) : sec_perms_on(p, repo, path);
    return true;
}

bool http_need_perm(struct http_req *r, const char *repo, const char *path, unsigned action)
{
    if (r->user.anonymous && !perm__anonymous_ok(r))
        return false;
    unsigned have = 0;
    if (!perm__have(r, repo, path ? path : "", false, &have))
        return false;
    if ((have & action) == action)
        return true;
    if (r->user.anonymous) {
        http_error(r, 401, "authentication required");
        return false;
    }
    gr_info("req=%llu denied: %s lacks %s on %s/%s", (unsigned long long)r->id, r->user.name,
            sec_action_name(action), repo, path ? path : "");
    http_error(r, 403, "user '%s' has no %s permission on '%s/%s'", r->user.name,
               sec_action_name(action), repo, path ? path : "");
    return false;
}

bool http_may(struct http_req *r, const char *repo, const char *path, unsigned action)
{
    const struct sec_perms *p;
    return http_perms(r, &p) == GR_OK &&
           (sec_perms_on(p, repo, path ? path : "") & action) == action;
}

bool http_may_entry(struct http_req *r, const char *repo, const char *folder, const char *name)
{
    if (r->perms && r->perms->all)
        return true;
    const char *path = *folder ? gr_arena_printf(r->arena, "%s/%s", folder, name) : name;
    return http_may(r, repo, path, SEC_READ);
}

bool http_repo_visible(struct http_req *r, const char *key)
{
    const struct sec_perms *p;
    return http_perms(r, &p) == GR_OK && (sec_perms_in_repo(p, key) & SEC_READ);
}

bool http_need_repo_visible(struct http_req *r, const char *key)
{
    if (r->user.anonymous && !perm__anonymous_ok(r))
        return false;
    const struct sec_perms *p;
    int rc = http_perms(r, &p);
    if (rc) {
        http_error_code(r, rc, NULL);
        return false;
    }
    if (sec_perms_in_repo(p, key) & SEC_READ)
        return true;
    if (r->user.anonymous)
        http_error(r, 401, "authentication required");
    else
        http_error(r, 403, "user '%s' has no read permission in repository '%s'", r->user.name,
                   key);
    return false;
}

bool http_need_read(struct http_req *r)
{
    if (r->repo_key)
        return http_need_perm(r, r->repo_key, r->path, SEC_READ);
    return !r->user.anonymous || perm__anonymous_ok(r);
}

bool http_need_write(struct http_req *r)
{
    if (r->repo_key)
        return http_need_perm(r, r->repo_key, r->path, SEC_WRITE);
    if (r->user.anonymous) {
        http_error(r, 401, "authentication required");
        return false;
    }
    return true;
}

bool http_need_deploy(struct http_req *r)
{
    if (!http_need_perm(r, r->repo_key, r->path, SEC_WRITE))
        return false;
    struct artifact a;
    int rc = artifact_get_for_write(r->ctx, r->arena, r->repo_key, r->path, &a);
    if (rc == GR_ENOTFOUND) {
        http_audit(r, "deploy", r->repo_key, r->path, NULL);
        return true;
    }
    if (rc) {
        http_error_code(r, rc, NULL);
        return false;
    }
    /* overwriting is deleting the old content (Artifactory's rule and message) */
    unsigned have = 0;
    if (!perm__have(r, r->repo_key, r->path, false, &have))
        return false;
    if (!(have & SEC_DELETE)) {
        if (r->user.anonymous) {
            http_error(r, 401, "authentication required");
            return false;
        }
        http_error(r, 403,
                   "Not enough permissions to overwrite artifact '%s:%s' (user '%s' needs DELETE"
                   " permission).",
                   r->repo_key, r->path, r->user.name);
        return false;
    }
    http_audit(r, "overwrite", r->repo_key, r->path, a.sha256);
    return true;
}

/*
 * A folder (anything that is not a file) is acted on as a whole: the
 * actions must come from targets that cover everything below it, so that
 * excluded files cannot be deleted, moved or copied along with their
 * folder. false: an answer was sent.
 */
static bool perm__need_tree(struct http_req *r, const char *repo, const char *path, unsigned action)
{
    struct artifact a;
    int rc = artifact_get(r->ctx, r->arena, repo, path ? path : "", &a);
    if (rc == GR_OK && path && *path)
        return true; /* a file: the path check was enough */
    if (rc != GR_OK && rc != GR_ENOTFOUND) {
        http_error_code(r, rc, NULL);
        return false;
    }
    unsigned have = 0;
    if (!perm__have(r, repo, path ? path : "", true, &have))
        return false;
    if ((have & action) == action)
        return true;
    if (r->user.anonymous) {
        http_error(r, 401, "authentication required");
        return false;
    }
    http_error(r, 403,
               "user '%s' has no %s permission on everything below '%s/%s' (patterns exclude"
               " some of it)",
               r->user.name, sec_action_name(action), repo, path ? path : "");
    return false;
}

bool http_need_tree(struct http_req *r, unsigned action)
{
    return perm__need_tree(r, r->repo_key, r->path, action);
}

bool http_need_delete(struct http_req *r)
{
    if (!http_need_perm(r, r->repo_key, r->path, SEC_DELETE) ||
        !perm__need_tree(r, r->repo_key, r->path, SEC_DELETE))
        return false;
    http_audit(r, "delete", r->repo_key, r->path, NULL);
    return true;
}

bool http_need_annotate(struct http_req *r)
{
    if (!http_need_perm(r, r->repo_key, r->path, SEC_ANNOTATE))
        return false;
    http_audit(r, "properties", r->repo_key, r->path, r->method_str);
    return true;
}

bool http_need_copy_move(struct http_req *r, const char *src_repo, const char *src_path,
                         const char *dst_repo, const char *dst_path, bool move)
{
    /* the target paths are checked one by one once they are known (copymove.c) */
    unsigned src_action = move ? SEC_DELETE : SEC_READ;
    if (!http_need_perm(r, src_repo, src_path, src_action) ||
        !perm__need_tree(r, src_repo, src_path, src_action))
        return false;
    char *detail = gr_arena_printf(r->arena, "to %s/%s", dst_repo, dst_path);
    http_audit(r, move ? "move" : "copy", src_repo, src_path, detail);
    return true;
}

bool http_is_admin(struct http_req *r)
{
    const struct sec_perms *p;
    return !r->user.anonymous && (r->user.admin || (http_perms(r, &p) == GR_OK && p->all));
}

bool http_need_admin(struct http_req *r)
{
    if (r->user.anonymous) {
        http_error(r, 401, "authentication required");
        return false;
    }
    if (r->user.admin)
        return true;
    const struct sec_perms *p;
    int rc = http_perms(r, &p);
    if (rc) {
        http_error_code(r, rc, NULL);
        return false;
    }
    if (p->all)
        return true;
    http_error(r, 403, "admin rights required");
    return false;
}
