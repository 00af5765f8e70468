/*
 * req.h - the request as handlers see it, and the helpers they answer with.
 * The request API of http/: its own files, the formats (daemon/formats/) and
 * the modules' *_api.c route files include it; no other module does.
 *
 * A handler is called once when the headers are in. It either answers
 * (http_send / http_error / ...) or, for a request with a body, sets
 * on_body and on_end and answers from on_end. Everything it allocates
 * comes from r->arena, freed when the connection is done with the request.
 */
#ifndef HTTP_REQ_H
#define HTTP_REQ_H

#include "base/arena.h"
#include "base/cidr.h"
#include "http/http.h"
#include "repo/repo.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define HTTP_HEADER_LINE_MAX (16 * 1024) /* larger header lines get 431 */
#define HTTP_HEADER_COUNT_MAX 100        /* more header lines get 431 */
/*
 * libmicrohttpd's per-connection pool: request headers and the read buffer
 * live in it, and libmicrohttpd 0.9.75 zeroes it for every request, so it
 * is a per-request cost: 256 KiB made a 1 KiB GET spend 38% of its CPU in
 * memset. All headers together must fit (docs/limits.md).
 */
#define HTTP_CONN_MEMORY (64 * 1024)
/* Downloads up to this size are read and sent with their headers in one go;
 * larger ones stream in blocks, each checked before it is sent (blobsend.h). */
#define HTTP_SMALL_BODY (16 * 1024)
#define HTTP_JSON_BODY_MAX (1024 * 1024) /* JSON request bodies */
/* "Authorization: Bearer anonymous" is the anonymous user, as no credentials
 * are: the token a registry token endpoint gives a caller without any
 * (docs/oci.md). It grants nothing anonymous access does not. */
#define HTTP_ANONYMOUS_BEARER "anonymous"

enum http_method { HM_GET, HM_HEAD, HM_PUT, HM_POST, HM_DELETE, HM_OTHER };

struct sec_perms;
struct http_route;
struct remote_req;
struct remote_result;
struct remote_spec;
struct format;
struct MHD_Connection;
struct MHD_Response;

struct http_server {
    struct MHD_Daemon *mhd;
    struct repo_ctx *ctx;
    struct http_options opt;
    char *version;
    atomic_bool ready;   /* readiness: serving, not stopping */
    atomic_bool serving; /* requests are served (past start; on while stopping) */
    atomic_bool quiesced;
    atomic_bool draining; /* readiness 503, in-flight requests go on */
    atomic_int active;
    atomic_int open_conns; /* connections open (server__conn_notify) */
    atomic_uint_fast64_t next_id;
    atomic_uint_fast64_t requests;
    /* header deadlines (server.c): every open connection, checked by a reaper thread */
    pthread_mutex_t conns_mu;
    pthread_cond_t conns_cv;
    struct http_conn *conns;
    pthread_t reaper;
    bool reaper_started, reaper_stop;
    atomic_uint_fast64_t cut_slow;       /* connections cut for slow headers */
    struct gr_cidr proxies[GR_CIDR_MAX]; /* opt.trusted_proxy, parsed */
    int nproxies;
};

/* One open connection, for the header deadline (server.c). */
struct http_conn {
    struct http_conn *prev, *next;
    int fd;
    bool in_request; /* headers complete, the request is being handled */
    bool cut;
    int64_t deadline_ms; /* monotonic: full request head due by then */
};

struct http_req {
    struct http_server *srv;
    struct repo_ctx *ctx;
    struct MHD_Connection *conn;
    struct gr_arena *arena;
    uint64_t id;
    enum http_method method;
    const char *method_str;
    char *raw_uri;       /* as received: path and query, still encoded */
    size_t raw_path_len; /* bytes of raw_uri before '?' */
    const char *base;    /* "" or "/artifactory": how the client addressed us */
    struct auth_user user;
    struct sec_perms *perms; /* perm.c: user's permissions, loaded at the first check */
    const char *client;      /* the peer's address, for throttling and the audit log */
    bool via_proxy;          /* the TCP peer is a trusted proxy (its X-Forwarded-* count) */
    /* a web UI session (server.c, h_ui.c): the cookie's value and the session's id
     * when it authenticated the request; session_ended: a cookie came that no
     * longer holds (HTTP_SESSION rows only) */
    const char *session, *session_id;
    bool session_ended;
    /* set by the http_need_* helpers (perm.c): written to the audit log when
     * the request completes with a 2xx answer */
    const char *audit_action, *audit_repo, *audit_path, *audit_detail;
    bool started, responded, counted;
    bool deferred;   /* routed at the second access call (see server.c) */
    int route_label; /* the metrics label of the route taken (route.c); -1 before routing */
    /* a format's clients read errors their own way: http_error() calls this to
     * adjust the JSON error document (NULL: the house shape only) */
    void (*error_doc)(struct http_req *r, json_t *doc, int status, const char *msg);
    /* headers every answer of this request carries, errors included (http_answer_header) */
    struct http_answer_header {
        const char *name, *value;
    } answer_headers[8];
    int nanswer_headers;
    int status;
    uint64_t sent_bytes;
    struct timespec t0;

    /* artifact routes */
    const char *repo_key;
    char *path; /* normalised */
    bool trailing_slash;
    const char *matrix; /* raw ";k=v;k2=v2" after the path (without the first ';'), or NULL */

    /* request bodies */
    int (*on_body)(struct http_req *r, const char *data, size_t len);
    void (*on_end)(struct http_req *r);
    void *hctx;
    void *hctx_sec; /* h_security.c: what a body is for (hctx holds the body) */
    uint64_t body_bytes;
    int body_error; /* first error while streaming; answered from on_end */
    char *body_error_msg;

    /* suspended (http_suspend): on resume, the route's handler runs again
     * from the start with the same request (its arena, its remote memory) */
    bool suspended;
    bool stopping; /* a wait was refused: the node is stopping (answer 503) */
    void (*route_handler)(struct http_req *r, const char *rest);
    const char *route_rest;
    struct remote_req *remote; /* remote.h: what this request's lookups remember */
    bool cache_view;           /* /<key>-cache/...: a remote repository's cached files only */
    const char *stale;         /* serving expired metadata: why (X-Granary-Stale, Warning) */
    const char *auth_token;    /* the access token the caller authenticated with (arena), or NULL */

    /* Deploy hooks: a package handler (formats/maven/maven_http.c) may set them before
     * http_artifact_generic() takes a PUT; NULL members do nothing. */
    struct http_deploy_hooks {
        /* every body chunk, in order (not for deploys by checksum) */
        void (*tap)(struct http_req *r, const char *data, size_t len);
        /* hashed and verified, nothing stored yet: false refuses the deploy
         * (the hook has answered) and nothing is stored */
        bool (*check)(struct http_req *r, const struct artifact *a);
        /* the artifact row is committed; called before the 201 answer */
        void (*done)(struct http_req *r, const struct artifact *a);
        void *arg;
    } deploy;
};

/* ---- answering ---- */

/*
 * A header every answer of r carries, errors included (values copied into
 * the arena; at most 8, later ones are dropped). A WWW-Authenticate set
 * here replaces the Basic challenge of a 401 (a format whose clients
 * expect another scheme: the OCI registry's Bearer challenge).
 */
void http_answer_header(struct http_req *r, const char *name, const char *value);
/* Queue resp with status (takes ownership of resp). */
void http_send(struct http_req *r, int status, struct MHD_Response *resp);
/* The JSON error shape {"errors":[{"status":N,"message":"..."}]}; 401 adds a Basic challenge
 * (not for the web UI's calls, which carry X-Granary-UI: it has its own sign-in form). */
void http_error(struct http_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Map a gr_err to its status and answer with msg (or gr_strerror()). */
void http_error_code(struct http_req *r, int err, const char *msg);
/* Answer with a JSON document (reference stolen). */
void http_json(struct http_req *r, int status, json_t *doc);
/* Answer with a copy of a text body. */
void http_text(struct http_req *r, int status, const char *content_type, const char *body,
               size_t len);
/* Add a header to a response being built (values copied). */
void http_header(struct MHD_Response *resp, const char *name, const char *value);
/*
 * A response of len bytes: copy (the caller keeps data) or take (data was
 * malloc'd; freed once sent). NULL (out of memory; a taken buffer is freed).
 */
struct MHD_Response *http_response_bytes(void *data, size_t len, bool copy);

/*
 * Park the request without holding a thread (a remote fetch it waits on):
 * the handler returns at once and answers nothing; http_resume() (any
 * thread) makes the route's handler run again from the start. Only for
 * requests without a body.
 */
void http_suspend(struct http_req *r);
/* Resume a suspended request (arg: the struct http_req). Thread-safe; once per suspend. */
void http_resume(void *arg);

/* ---- request data ---- */

/* A request header (case-insensitive), or NULL. */
const char *http_req_header(struct http_req *r, const char *name);
/* Every line of a request header joined by ", " (in the arena), or NULL:
 * clients send Accept as several lines. */
const char *http_req_header_all(struct http_req *r, const char *name);
/* A decoded query parameter (in the arena), NULL when absent, "" when empty.
 * A malformed escape reads as absent. */
const char *http_query(struct http_req *r, const char *name);
/* Collect a JSON body into the arena (max HTTP_JSON_BODY_MAX) and then call done. */
void http_read_json_body(struct http_req *r, void (*done)(struct http_req *r, json_t *doc));

/*
 * ---- who may do what (perm.c): false means an answer (401/403) was sent ----
 * http_need_perm() is the one check: the actions (enum sec_action, all of
 * them) on repo/path for r->user (anonymous needs anonymous access on).
 * read/write use r->repo_key and r->path when a repository is addressed,
 * else read only needs anonymous access or a user and write a user.
 * deploy: write, and delete too when the path exists (an overwrite);
 * delete, annotate (properties) and copy/move likewise; each also records
 * the action for the audit log. admin: the user's flag or an admin group.
 */
bool http_need_perm(struct http_req *r, const char *repo, const char *path, unsigned actions);
/* Whether r->user holds the actions there, answering nothing (to filter results). */
bool http_may(struct http_req *r, const char *repo, const char *path, unsigned actions);
/* Whether r->user may read something in repository key (lists show only those). */
bool http_repo_visible(struct http_req *r, const char *key);
/* As http_repo_visible, answering 401/403 when not (repository configurations). */
bool http_need_repo_visible(struct http_req *r, const char *key);
/* Whether r->user may read the entry name of folder (a listing shows only those). */
bool http_may_entry(struct http_req *r, const char *repo, const char *folder, const char *name);
/* r->user's permissions (struct sec_perms, repo/security.h), loaded once per request
 * and kept in r->perms. GR_EDB. */
int http_perms(struct http_req *r, const struct sec_perms **out)
    __attribute__((warn_unused_result));
bool http_need_read(struct http_req *r);
bool http_need_write(struct http_req *r);
bool http_need_deploy(struct http_req *r);
bool http_need_delete(struct http_req *r);
bool http_need_annotate(struct http_req *r);
/* When r->path is a folder: the actions on everything below it (the folder rule of
 * docs/security.md: a recursive property change); a file needs nothing more. */
bool http_need_tree(struct http_req *r, unsigned actions);
bool http_need_copy_move(struct http_req *r, const char *src_repo, const char *src_path,
                         const char *dst_repo, const char *dst_path, bool move);
bool http_need_admin(struct http_req *r);
/* Whether r->user is an admin (the flag, or an admin group unless a user-scoped token
 * brought it), answering nothing. */
bool http_is_admin(struct http_req *r);
/*
 * server.c: check a user name and password as Basic authentication does:
 * 429 at once while the name or r->client is throttled (failed logins),
 * then granary's users, then plugin realms. A failure is counted, logged
 * and audited (login_failed, detail how) and answered 401; a success
 * clears the counts, sets r->user and is audited (login) on the first
 * check of the password on this node, or always with audit_success.
 * false: an answer was sent.
 */
bool http_login_password(struct http_req *r, const char *user, const char *password,
                         const char *how, bool audit_success);
/*
 * server.c: what the core does for an HTTP_AUTH row before its handler
 * (route.h), for a handler of an HTTP_BYHAND row: 503 while the
 * node is not ready, then the caller's credentials (none: anonymous; bad
 * ones: 401; a throttled login: 429). false: an answer was sent, through
 * the r->error_doc and answer headers the handler set first.
 */
bool http_authenticate(struct http_req *r);
/* Record an audited action (strings copied); written when the request completes with 2xx. */
void http_audit(struct http_req *r, const char *action, const char *repo, const char *path,
                const char *detail);

/*
 * Conditional GET: whether the client's copy is current, by If-None-Match
 * against etag (quoted; "*" matches anything), or, without that header, by
 * If-Modified-Since against modified_ms (< 0: not asked). true: answer 304.
 */
bool http_not_modified(struct http_req *r, const char *etag, int64_t modified_ms);
/* RFC 7231 date for ms since the epoch, into buf (>= 32 bytes). */
void http_date(int64_t ms, char *buf, size_t n);
/* ISO 8601 with milliseconds and offset, as Artifactory prints: 2026-11-28T01:02:03.456Z */
void http_iso8601(int64_t ms, char *buf, size_t n);
/* Scheme://host[:port][/artifactory] clients reach us by: X-Forwarded-Proto/-Host/-Port, else Host.
 */
const char *http_base_url(struct http_req *r);
/*
 * Artifactory's item JSON for an artifact: repo, path, created, createdBy,
 * downloadUri, mimeType, size (a string), checksums, originalChecksums, uri;
 * full adds lastModified, modifiedBy, lastUpdated (storage info).
 */
json_t *http_artifact_json(struct http_req *r, const struct artifact *a, bool full);
/* A content type for a file name, by extension. */
const char *http_mime_type(const char *name);
/* The policy of every artifact download: no script, no plugin, no form, its own origin. */
#define HTTP_CSP_DOWNLOAD "default-src 'none'; sandbox"
/*
 * The headers of an artifact's bytes (docs/security.md): its Content-Type
 * by name, X-Content-Type-Options: nosniff, Content-Security-Policy:
 * HTTP_CSP_DOWNLOAD, and for a type a browser would render actively (HTML,
 * SVG, XML, JavaScript, CSS, PDF) Content-Disposition: attachment.
 */
void http_download_headers(struct http_req *r, struct MHD_Response *resp, const char *path);

/*
 * Split "<repo>[/<path>][;matrix]" (raw, without the leading slash) into
 * r->repo_key, r->path, r->trailing_slash and r->matrix. false: an error
 * answer (404 bad key, 400 bad path, 414 too long) was sent.
 */
bool http_parse_repo_path(struct http_req *r, const char *p, size_t len);

/* ---- handlers (one file per group), each the handler of rows of the route table
 * (route.c): rest is the raw text after the row's path ---- */
void h_system_v1(struct http_req *r, const char *rest); /* /api/v1/system/{liveness,readiness} */
void h_ping(struct http_req *r, const char *rest);      /* /api/system/ping */
void h_system_version(struct http_req *r, const char *rest); /* h_system.c: /api/system/... */
void h_system_metrics(struct http_req *r, const char *rest);
void h_system_maintenance(struct http_req *r, const char *rest);
void h_system_settings(struct http_req *r, const char *rest);
void h_repositories(struct http_req *r, const char *rest); /* h_repos.c: the list */
void h_repository(struct http_req *r, const char *rest);   /* rest: the key */
/* h_artifacts.c: /<repo>/<path> (rest: "<repo>/<path>"), dispatched to the repository's format */
void h_artifact(struct http_req *r, const char *rest);
/* The generic artifact methods (GET/HEAD/PUT/DELETE) for a known repository. */
void http_artifact_generic(struct http_req *r, const struct repo_config *cfg);
/*
 * Answer a GET/HEAD of r->path with artifact a of r->repo_key (read
 * permission already checked): plugins, 304, one range, the verified bytes
 * and the download headers; r->stale adds X-Granary-Stale: 1 and Warning.
 */
void http_artifact_send(struct http_req *r, const struct artifact *a);
/* GET of <file>.sha1/.sha256/.md5 in r->repo_key answered from <file>'s stored checksums;
 * false (nothing sent): r->path is not such a path, or <file> is not stored. */
bool http_artifact_checksum(struct http_req *r);
/*
 * The body of a download of len bytes from first of a's binary: this
 * node's copy, every block verified before it goes out, or else a peer's
 * (a HEAD gets a body-less response of that length). NULL: an error
 * answer (503) was sent. For formats that serve binaries under their own
 * URLs (the OCI registry's blobs).
 */
struct MHD_Response *http_artifact_body(struct http_req *r, const struct artifact *a,
                                        uint64_t first, uint64_t len);
void h_root(struct http_req *r, const char *rest);
void h_storage(struct http_req *r, const char *rest);     /* h_storage.c: /api/storage/... */
void h_storageinfo(struct http_req *r, const char *rest); /* h_storage.c: /api/storageinfo */
/* h_props.c: /api/storage/{repo}/{path}?properties (GET, PUT, DELETE); r->repo_key,
 * r->path and r->trailing_slash are parsed and authentication is done */
void h_properties(struct http_req *r);
void h_search(struct http_req *r, const char *rest);     /* h_search.c: /api/search/... */
void h_copy(struct http_req *r, const char *rest);       /* h_copymove.c: /api/copy/... */
void h_move(struct http_req *r, const char *rest);       /* /api/move/... */
void h_trash_list(struct http_req *r, const char *rest); /* h_trash.c: /api/trash... */
void h_trash_settings(struct http_req *r, const char *rest);
void h_trash_empty(struct http_req *r, const char *rest);
void h_trash_purge_expired(struct http_req *r, const char *rest);
void h_trash_restore(struct http_req *r, const char *rest);
void h_trash_clean(struct http_req *r, const char *rest);
void h_sec_users(struct http_req *r, const char *rest); /* h_security.c: /api/security/users */
void h_sec_groups(struct http_req *r, const char *rest);
void h_sec_permissions(struct http_req *r, const char *rest);    /* v1 */
void h_sec_permissions_v2(struct http_req *r, const char *rest); /* /api/v2/security/permissions */
void h_sec_token(struct http_req *r, const char *rest);
void h_audit(struct http_req *r, const char *rest);   /* /api/audit */
void h_plugins(struct http_req *r, const char *rest); /* h_plugins.c: /api/plugins... */
/* h_ui.c: the web UI's files (/ui, /ui/...), its sessions (/api/ui/session, /api/ui/sessions) */
void h_ui_asset(struct http_req *r, const char *rest);
void h_ui_session(struct http_req *r, const char *rest);
void h_ui_sessions(struct http_req *r, const char *rest);
/* A GET or HEAD from a browser (Accept: text/html) is redirected to /ui/: true when it was. */
bool http_ui_redirect(struct http_req *r);
/* metrics.c: GET /api/v1/metrics and /api/system/metrics (Prometheus text) */
void h_metrics(struct http_req *r, const char *rest);
/* route.c: any other /api/... : 404 */
void h_no_api(struct http_req *r, const char *rest);
/* metrics.c: count a finished request and write its access log line */
void http_access_done(struct http_req *r, bool completed, double ms);

/* The format of a packageType (name or alias) among the server's formats, or NULL. */
const struct format *http_format(struct http_req *r, const char *package_type);

/* ---- the route table's lookup (route.c), for the router and the metrics ---- */

/* Make sure the core's rows are in the table (http_start calls it). GR_EINVAL. */
int http__routes_ready(void);
/*
 * The row for path[0..len) on the public port or the cluster port
 * (internal); on the public port a path no row matches is the artifact
 * route. *label is its metrics label, *consumed the bytes of path the row
 * matched. NULL (the cluster port only): no row.
 */
const struct http_route *http__route_find(bool internal, const char *path, size_t len, int *label,
                                          size_t *consumed);
/* A label's name ("other" for -1); how many labels there are. */
const char *http__route_label_name(int label);
int http__route_label_count(void);
/* The label of the catch-all /<repo>/<path> route. */
int http__route_artifact_label(void);

#endif
