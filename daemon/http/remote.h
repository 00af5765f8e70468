/*
 * remote.h (http) - serving remote and virtual repositories
 * (docs/remote.md): the artifact route's handling of both rclasses
 * (h_remote.c), and what formats build their own remote and virtual
 * answers with (metadata, merged documents). The fetching itself is the
 * remote module's (remote/remote.h).
 *
 * A lookup may have to wait for a fetch: the request is then suspended and
 * its route's handler runs again from the start when the fetch moves on
 * (http_suspend). So every function here that returns false has either
 * answered or suspended the request: the handler returns at once, and
 * must be safe to run again (everything it computed lives in the arena;
 * what the lookups learnt is kept in r->remote).
 */
#ifndef HTTP_REMOTE_H
#define HTTP_REMOTE_H

#include "http/req.h"
#include "remote/remote.h"

struct format;

/* ---- the artifact route (h_artifacts.c dispatches by rclass) ---- */

/* /<repo>/<path> of a remote repository: GET/HEAD fetch through the cache, DELETE removes a
 * cached file (delete permission), PUT is 405. */
void http_remote_artifact(struct http_req *r, const struct repo_config *cfg,
                          const struct format *f);
/* /<repo>/<path> of a virtual repository: GET/HEAD resolve through the members, PUT deploys to
 * defaultDeploymentRepo (405 without one), DELETE is 405. */
void http_virtual_artifact(struct http_req *r, const struct repo_config *cfg,
                           const struct format *f);

/* ---- remote repositories ---- */

/* How to fetch path of remote cfg: a file at the same path, then the format's remote_spec. */
void http_remote_spec(struct http_req *r, const struct repo_config *cfg, const char *path,
                      struct remote_spec *spec);
/*
 * Look path up in remote cfg (remote_lookup()): false when the request was
 * answered (an error) or suspended; true: res says what (a flight in it
 * belongs to the request's arena).
 */
bool http_remote_find(struct http_req *r, const struct repo_config *cfg, const char *path,
                      const struct remote_spec *spec, struct remote_result *res);
/* Answer with a found result: the cached file (stale: with X-Granary-Stale and Warning), the
 * bytes of a fetch as they arrive, 404, or the failure's status and reason. */
void http_remote_answer(struct http_req *r, const struct repo_config *cfg, const char *path,
                        const struct remote_result *res);
/* GET/HEAD of path in remote cfg: find, then answer. */
void http_remote_file(struct http_req *r, const struct repo_config *cfg, const char *path);
/*
 * The whole bytes of a document of remote cfg (metadata: spec->complete is
 * set here). false: answered or suspended; true: *doc (in the arena, NUL
 * ended) and *len, or *doc NULL and res says why (MISS or FAIL). Stale
 * metadata sets r->stale.
 */
bool http_remote_doc(struct http_req *r, const struct repo_config *cfg, const char *path,
                     struct remote_spec *spec, char **doc, size_t *len, struct remote_result *res);

/* ---- virtual repositories ---- */

struct http_member {
    struct repo_config cfg;
};

/*
 * The members of virtual v asked for path by this caller, in resolution
 * order: nested virtual repositories flattened, each member's patterns
 * applied and only members the caller may read path in (perm_path: the
 * path permissions see, NULL for path). *hidden (may be NULL): the first
 * member left out for want of read permission, or NULL. GR_OK, GR_EDB.
 */
int http_virtual_members(struct http_req *r, const struct repo_config *v, const char *path,
                         const char *perm_path, struct http_member **out, int *n,
                         const char **hidden) __attribute__((warn_unused_result));
/* GET/HEAD of path in v: the first member that has it serves it; 404 when none. */
void http_virtual_file(struct http_req *r, const struct repo_config *v, const char *path);

/* A local member's own document at path (in the arena); GR_ENOTFOUND when it has none. */
typedef int (*http_local_doc_fn)(struct http_req *r, const struct repo_config *member,
                                 const char *path, char **doc, size_t *len);
/*
 * The document members of v have at path, merged by f->merge_index and
 * kept (remote/remote.h: until any artifact or repository changes on any
 * node). perm_path as for http_virtual_members(). false: answered or
 * suspended; true: *doc (NULL when no member has one) and *len.
 */
bool http_virtual_merged(struct http_req *r, const struct repo_config *v, const struct format *f,
                         const char *path, const char *perm_path, http_local_doc_fn local,
                         char **doc, size_t *len);

#endif
