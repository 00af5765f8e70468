/*
 * security.h - users, groups, permission targets, access tokens and the
 * audit log (docs/security.md).
 *
 * PostgreSQL holds everything; the hot path (who is this, may they do this
 * here) reads only LMDB: `u:<user>` (auth.c), `p:<user>` (the permission
 * targets that name the user or one of its groups) and `t:<token sha256>`.
 * Every change commits first, then invalidates those keys on every node
 * (acknowledged) before the call returns, so a revocation or a changed
 * permission holds everywhere once the API call has answered.
 *
 * Strings returned live in the caller's arena. Functions are thread-safe.
 */
#ifndef REPO_SECURITY_H
#define REPO_SECURITY_H

#include "base/arena.h"
#include "repo/repo.h"

#include <stdbool.h>
#include <stdint.h>

#define SEC_NAME_MAX 64      /* user, group and permission target names */
#define SEC_PASSWORD_MIN 8   /* shortest password accepted */
#define SEC_PASSWORD_MAX 256 /* longest */
#define SEC_LIST_MAX 1024    /* repositories, patterns, principals per document */
#define SEC_TOKEN_PREFIX "grt_"
#define SEC_TOKEN_LEN 68 /* "grt_" + 64 hex */
#define SEC_TOKEN_EXPIRES_DEFAULT 3600
#define SEC_TOKEN_EXPIRES_MAX (10LL * 365 * 24 * 3600)

/* Actions of a permission target; a stronger one implies the weaker ones
 * (manage > delete > write > annotate > read), as Artifactory's UI sets them. */
enum sec_action {
    SEC_READ = 1,
    SEC_ANNOTATE = 2,
    SEC_WRITE = 4,
    SEC_DELETE = 8,
    SEC_MANAGE = 16,
};
#define SEC_ALL 31u /* every action */

/* The closure of a set of actions under the implications above. */
unsigned sec_actions_close(unsigned actions);
/* "rnwdm" letters <-> bits (unknown letters: GR_EINVAL). */
int sec_actions_parse_letters(const char *s, unsigned *out);
void sec_actions_letters(unsigned actions, char out[6]);
/* Artifactory's v2 names: "read", "annotate", "write", "delete", "manage"; 0 when unknown. */
unsigned sec_action_from_name(const char *name);
const char *sec_action_name(unsigned one_action);

/* ---- documents (pure: repo/secjson.c, fuzzed by tests/fuzz/fuzz_json.c) ---- */

struct sec_user {
    const char *name, *email, *password;
    bool admin, disabled;
    const char **groups;
    int ngroups;
    /* which members the document had (a POST updates only those) */
    bool has_email, has_password, has_admin, has_disabled, has_groups;
};

struct sec_group {
    const char *name, *description;
    bool auto_join, admin;
    const char **users;
    int nusers;
    bool has_description, has_auto_join, has_admin, has_users;
};

struct sec_grant {
    char kind; /* 'u' or 'g' */
    const char *principal;
    unsigned actions;
};

struct sec_target {
    const char *name;
    const char **repos; /* keys, "ANY", "ANY LOCAL", "ANY REMOTE" */
    int nrepos;
    const char *includes, *excludes; /* comma-separated Ant patterns */
    struct sec_grant *grants;
    int ngrants;
};

/* A user, group or permission target name: 1..SEC_NAME_MAX of [A-Za-z0-9._@-]. */
bool sec_name_valid(const char *name);
/*
 * A user a permission target may name: a user name, or a plugin realm's
 * user "<realm>:<name>" (docs/plugins.md). The colon cannot be in a user
 * name (nor in Basic credentials' user part), so a realm's user is never
 * an internal user.
 */
bool sec_principal_valid(const char *name);

/*
 * Read a request body into a struct (strings in a). name is the name from
 * the URL; a "name" member, if present, must equal it. On GR_EINVAL *why
 * (static) says what is wrong. Nothing here touches the database.
 */
int sec_user_from_json(struct gr_arena *a, const void *doc, const char *name, struct sec_user *out,
                       const char **why) __attribute__((warn_unused_result));
int sec_group_from_json(struct gr_arena *a, const void *doc, const char *name,
                        struct sec_group *out, const char **why)
    __attribute__((warn_unused_result));
/* The v2 shape {"name","repo":{"repositories","include-patterns","exclude-patterns",
 * "actions":{"users":{u:[...]},"groups":{g:[...]}}}}. */
int sec_target_from_json(struct gr_arena *a, const void *doc, const char *name,
                         struct sec_target *out, const char **why)
    __attribute__((warn_unused_result));
/* {"userName","oldPassword","newPassword1","newPassword2"} (Artifactory's changePassword). */
int sec_password_change_from_json(struct gr_arena *a, const void *doc, const char **user,
                                  const char **old_pw, const char **new_pw, const char **why)
    __attribute__((warn_unused_result));

/* ---- users and groups ---- */

struct sec_user_info {
    const char *name, *email;
    bool admin, disabled;
    int64_t created_ms, password_changed_ms;
    const char **groups;
    int ngroups;
};

/* All users (names only filled), ordered. GR_EDB. */
int sec_user_list(struct repo_ctx *ctx, struct gr_arena *a, struct sec_user_info **out, int *n)
    __attribute__((warn_unused_result));
/* GR_ENOTFOUND, GR_EDB. Never returns a password hash. */
int sec_user_get(struct repo_ctx *ctx, struct gr_arena *a, const char *name,
                 struct sec_user_info *out) __attribute__((warn_unused_result));
/*
 * Create (create=true: GR_EEXIST if present; a password is required) or
 * update (only the members the document had; GR_ENOTFOUND if absent).
 * A new user without "groups" joins the auto-join groups. GR_EINVAL (a
 * short password, an unknown group, the name "anonymous"), GR_EDB.
 */
int sec_user_put(struct repo_ctx *ctx, const struct sec_user *u, bool create)
    __attribute__((warn_unused_result));
/* Deletes the user, its tokens and its grants. GR_ENOTFOUND, GR_EINVAL (the last admin), GR_EDB. */
int sec_user_delete(struct repo_ctx *ctx, const char *name) __attribute__((warn_unused_result));
/* Set a password (length checked). GR_ENOTFOUND, GR_EINVAL, GR_EDB. */
int sec_user_set_password(struct repo_ctx *ctx, const char *name, const char *password)
    __attribute__((warn_unused_result));

struct sec_group_info {
    const char *name, *description;
    bool auto_join, admin;
    const char **users;
    int nusers;
};
int sec_group_list(struct repo_ctx *ctx, struct gr_arena *a, struct sec_group_info **out, int *n)
    __attribute__((warn_unused_result));
int sec_group_get(struct repo_ctx *ctx, struct gr_arena *a, const char *name,
                  struct sec_group_info *out) __attribute__((warn_unused_result));
/* As sec_user_put; "userNames" replaces the members (unknown users: GR_EINVAL). */
int sec_group_put(struct repo_ctx *ctx, const struct sec_group *g, bool create)
    __attribute__((warn_unused_result));
int sec_group_delete(struct repo_ctx *ctx, const char *name) __attribute__((warn_unused_result));

/* ---- permission targets ---- */

/* Names only, ordered. */
int sec_target_list(struct repo_ctx *ctx, struct gr_arena *a, const char ***names, int *n)
    __attribute__((warn_unused_result));
int sec_target_get(struct repo_ctx *ctx, struct gr_arena *a, const char *name,
                   struct sec_target *out) __attribute__((warn_unused_result));
/* create: GR_EEXIST if present; otherwise create or replace. GR_EDB. */
int sec_target_put(struct repo_ctx *ctx, const struct sec_target *t, bool create)
    __attribute__((warn_unused_result));
int sec_target_delete(struct repo_ctx *ctx, const char *name) __attribute__((warn_unused_result));

/*
 * The actions user holds on repo/path (closed under the implications):
 * every action for an admin (the user's flag or an admin group), else the
 * union over the permission targets that name the user or one of its
 * groups and cover the repository and the path. Anonymous is the user
 * "anonymous" (whether anonymous access is on is the caller's business).
 * Cached (`p:<user>`): no database query when warm. path "" is the
 * repository root (only "**"-like includes cover it). *group_admin (may be
 * NULL) tells whether an admin group holds the user. GR_EDB.
 */
int sec_effective(struct repo_ctx *ctx, struct gr_arena *a, const struct auth_user *user,
                  const char *repo, const char *path, unsigned *actions, bool *group_admin)
    __attribute__((warn_unused_result));
/*
 * A caller's permissions, loaded once (one cached read) and asked many
 * times without further lookups: a listing filtered entry by entry, the
 * target paths of a copy, the items of a trash restore.
 * all: an admin (the user's flag, or an admin group unless the caller
 * came with a user-scoped token). The fields point into the arena given
 * to sec_perms_load() and live as long as it.
 */
struct sec_perms {
    bool all, group_admin;
    const char *const *f; /* the p:<user> record's fields */
    int n;
};
int sec_perms_load(struct repo_ctx *ctx, struct gr_arena *a, const struct auth_user *user,
                   struct sec_perms *out) __attribute__((warn_unused_result));
/* The actions held on repo/path ("" is the repository root). */
unsigned sec_perms_on(const struct sec_perms *p, const char *repo, const char *path);
/* The actions held on everything at and below the folder repo/path (sec_effective_tree). */
unsigned sec_perms_on_tree(const struct sec_perms *p, const char *repo, const char *path);
/* The actions held on some path of repo (whatever the patterns): whether to show the
 * repository at all. */
unsigned sec_perms_in_repo(const struct sec_perms *p, const char *repo);

/*
 * As sec_effective, for a whole folder (a folder delete, move or copy):
 * only targets whose patterns surely cover everything below path count
 * (no excludes; an include "**" or "<literal prefix>/ **" (no space) above path).
 */
int sec_effective_tree(struct repo_ctx *ctx, struct gr_arena *a, const struct auth_user *user,
                       const char *repo, const char *path, unsigned *actions)
    __attribute__((warn_unused_result));
/* Whether any target gives user any of the actions in any repository (cached). */
int sec_any(struct repo_ctx *ctx, struct gr_arena *a, const struct auth_user *user,
            unsigned actions, bool *yes) __attribute__((warn_unused_result));

/* ---- access tokens ---- */

struct sec_token_info {
    const char *id, *user, *scope, *description;
    int64_t created_ms, expires_ms; /* expires 0: never */
    bool refreshable, revoked;
};

/*
 * Issue a token for user with scope ("applied-permissions/user" or
 * "applied-permissions/admin") and lifetime (seconds, 0: never).
 * token (SEC_TOKEN_LEN + 1 bytes) receives it; refresh (same size, may be
 * NULL) a refresh token when wanted. Only hashes are stored.
 * GR_ENOTFOUND (no such user), GR_EINVAL, GR_EDB.
 */
int sec_token_issue(struct repo_ctx *ctx, const char *user, const char *scope, int64_t expires_in,
                    const char *description, char *token, char *refresh,
                    struct sec_token_info *info) __attribute__((warn_unused_result));
/* Exchange a refresh token for a new pair (the old pair is revoked). GR_EAUTH, GR_EDB. */
int sec_token_refresh(struct repo_ctx *ctx, const char *refresh_token, int64_t expires_in,
                      char *token, char *refresh, struct sec_token_info *info)
    __attribute__((warn_unused_result));
/*
 * Authenticate a token (cached `t:<sha256>` and `u:<user>`): out is its
 * user (admin only with the admin scope and an admin user). GR_EAUTH
 * (unknown, revoked, expired, disabled user), GR_EDB.
 */
int sec_token_check(struct repo_ctx *ctx, const char *token, struct auth_user *out)
    __attribute__((warn_unused_result));
/* Whether a string has the shape of a token (granary's or npm's). */
bool sec_token_shaped(const char *s);
/* Tokens of user (NULL: all), newest first. */
int sec_token_list(struct repo_ctx *ctx, struct gr_arena *a, const char *user,
                   struct sec_token_info **out, int *n) __attribute__((warn_unused_result));
/*
 * Revoke by token value or by id (exactly one non-NULL). owner: when not
 * NULL, only that user's tokens (GR_ENOTFOUND otherwise). The revocation
 * is acknowledged by every node before this returns. GR_ENOTFOUND, GR_EDB.
 */
int sec_token_revoke(struct repo_ctx *ctx, const char *token, const char *id, const char *owner,
                     char revoked_user[SEC_NAME_MAX + 1]) __attribute__((warn_unused_result));

/* ---- web UI sessions (sessions.c, docs/ui.md) ---- */

#define SEC_SESSION_PREFIX "grs_"
#define SEC_SESSION_LEN 68 /* "grs_" + 64 hex: the cookie's value */
#define SEC_CSRF_LEN 64    /* hex */
#define SEC_SESSION_LIFETIME_MAX (30LL * 24 * 3600)

struct sec_session_info {
    const char *id, *user, *client;
    int64_t created_ms, expires_ms;
    bool scoped;     /* opened with a user-scoped token: never an admin */
    bool with_token; /* opened with an access token: ends with it */
    bool revoked;
};

/* Whether s has the shape of a session cookie value. */
bool sec_session_shaped(const char *s);
/*
 * Open a session for user, living lifetime seconds (1..SEC_SESSION_LIFETIME_MAX).
 * scoped: the user signed in with a user-scoped token; token_sha256 (may be
 * NULL): the sha256 of the access token it signed in with, so that the
 * session ends with the token. client: the address, for the list. cookie
 * (SEC_SESSION_LEN + 1 bytes) receives the value to set; only its sha256
 * is stored. Expired sessions are purged on the way.
 * GR_ENOTFOUND (no such user), GR_EINVAL, GR_EDB.
 */
int sec_session_open(struct repo_ctx *ctx, const char *user, bool scoped, const char *token_sha256,
                     int64_t lifetime, const char *client, char *cookie,
                     struct sec_session_info *info) __attribute__((warn_unused_result));
/*
 * Authenticate a session cookie value (cached `w:<sha256>`, `u:<user>`, and
 * `t:<sha256>` when it was opened with a token): out is its user (an admin
 * only when the user is one and the session is not scoped). *id (may be
 * NULL) receives the session's id in a. GR_EAUTH (unknown, revoked, expired,
 * its token gone, user disabled or deleted), GR_EDB.
 */
int sec_session_check(struct repo_ctx *ctx, struct gr_arena *a, const char *cookie,
                      struct auth_user *out, const char **id) __attribute__((warn_unused_result));
/*
 * The CSRF token bound to a session: HMAC-SHA256 under the cookie value, in
 * hex (SEC_CSRF_LEN + 1 bytes). Only the holder of the cookie (the server,
 * and the page it gave the token to) can know it.
 */
void sec_session_csrf(const char *cookie, char out[SEC_CSRF_LEN + 1]);
/* Sessions of user (NULL: all) that have not expired, newest first. GR_EDB. */
int sec_session_list(struct repo_ctx *ctx, struct gr_arena *a, const char *user,
                     struct sec_session_info **out, int *n) __attribute__((warn_unused_result));
/*
 * Revoke by cookie value or by id (exactly one non-NULL). owner: when not
 * NULL, only that user's sessions (GR_ENOTFOUND otherwise). Acknowledged by
 * every node before this returns. GR_ENOTFOUND, GR_EDB.
 */
int sec_session_revoke(struct repo_ctx *ctx, const char *cookie, const char *id, const char *owner)
    __attribute__((warn_unused_result));

/* ---- audit ---- */

struct sec_audit_entry {
    int64_t id, at_ms;
    const char *user, *client, *node, *action, *repo, *path, *detail;
};

/*
 * Append an audit row (one INSERT). Failures are logged, never returned:
 * the audited action has already happened. NULL strings read as "".
 */
void sec_audit(struct repo_ctx *ctx, const char *user, const char *client, const char *action,
               const char *repo, const char *path, const char *detail);
/* Filtered (NULL: any), newest first, at most limit rows. GR_EDB. */
int sec_audit_query(struct repo_ctx *ctx, struct gr_arena *a, const char *user, const char *action,
                    int64_t from_ms, int64_t to_ms, int limit, struct sec_audit_entry **out, int *n)
    __attribute__((warn_unused_result));

/* ---- failed logins (this node's memory) ---- */

/*
 * Before checking a password: 0 when an attempt is allowed now, else the
 * seconds to wait (per user name and per client address, whichever is
 * longer). After: sec_throttle_result() records success (clears the
 * user's and address's counts) or failure (returns the new failure count
 * of the user). The first SEC_THROTTLE_FREE failures cost nothing; then
 * each one doubles the wait, from 1 s up to SEC_THROTTLE_MAX_S.
 */
#define SEC_THROTTLE_FREE 5
#define SEC_THROTTLE_MAX_S 60
int sec_throttle_wait(const char *user, const char *client);
int sec_throttle_result(const char *user, const char *client, bool ok);

#endif
