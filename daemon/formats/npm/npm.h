/*
 * npm.h - the npm registry's data: packages, versions (their manifests),
 * dist-tags and login tokens in PostgreSQL (sql/0007_npm.sql), packuments
 * assembled from those rows per request, and the pure helpers the HTTP
 * handler (npm_http.c) needs: name checks, a streaming base64 decoder,
 * locating the tarball in a publish body, semver ordering.
 *
 * A packument is never stored as one document, so concurrent publishes of
 * different versions (through any nodes) all survive. Tarballs are
 * artifacts of the repository at "{name}/-/{file}" (docs/npm.md).
 * Functions are thread-safe; strings they return live in the caller's arena.
 */
#ifndef FORMATS_NPM_H
#define FORMATS_NPM_H

#include "base/arena.h"
#include "repo/repo.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Request bodies (docs/limits.md). A publish body (the tarball in base64
 * inside JSON) is held in memory up to NPM_BODY_MAX (413 above); any other
 * document npm PUTs (deprecate, unpublish of versions) up to NPM_DOC_MAX.
 * All npm bodies held by the process together, and the estimated memory of
 * parsing them (NPM_PARSE_FACTOR x their size), stay below NPM_BODY_BUDGET:
 * a body that would cross it is refused with 503.
 */
#define NPM_BODY_MAX (64u * 1024 * 1024)
#define NPM_DOC_MAX (16u * 1024 * 1024)
#define NPM_BODY_BUDGET (256u * 1024 * 1024)
#define NPM_PARSE_FACTOR 4u
#define NPM_NAME_MAX 214

/* ---- pure helpers (tests/unit/test_npm.c) ---- */

/*
 * True for a publishable package name: "name" or "@scope/name", at most
 * 214 characters, each part of [a-z0-9._~-] not starting with '.' or '_'.
 */
bool npm_name_valid(const char *name);

/*
 * Split the raw text after "/api/npm/{repo}/" into a package name (decoded:
 * "@scope%2fname", "%40scope%2Fname" and "@scope/name" all read
 * "@scope/name") and what follows it (*tail: "" or the rest after the
 * name's closing '/', still raw). GR_EINVAL for a malformed escape or an
 * invalid name.
 */
int npm_split_name(struct gr_arena *a, const char *raw, const char **name, const char **tail)
    __attribute__((warn_unused_result));

/* Percent-decode n bytes into the arena; NULL for a malformed escape or a NUL. */
char *npm_unescape(struct gr_arena *a, const char *s, size_t n);

/* The unscoped part of a name ("@s/x" -> "x"). */
const char *npm_basename(const char *name);

/*
 * Streaming base64 decoder (standard alphabet, padding optional, "\/" read
 * as "/" since it is a legal JSON escape). Feed it any split of the input.
 */
struct npm_b64 {
    uint32_t acc;
    int bits;
    bool ended; /* '=' seen: only more '=' may follow */
};
/*
 * Decode n characters into out (which must hold n * 3 / 4 + 3 bytes);
 * *outlen gets the bytes written. GR_EINVAL on a character outside the
 * alphabet.
 */
int npm_b64_decode(struct npm_b64 *s, const char *in, size_t n, unsigned char *out, size_t *outlen)
    __attribute__((warn_unused_result));
/* GR_OK when the input ended on a whole quantum, GR_EINVAL otherwise. */
int npm_b64_finish(const struct npm_b64 *s) __attribute__((warn_unused_result));

/*
 * Find the contents of the one string "_attachments.<file>.data" in a JSON
 * body without parsing it: *off and *len delimit the characters between
 * the quotes; *file (arena) is the attachment's key.
 * GR_ENOTFOUND when there is no _attachments member, GR_EINVAL for a body
 * that is not a JSON object, or holds other than one attachment with one
 * string "data".
 */
int npm_find_attachment(struct gr_arena *a, const char *buf, size_t len, size_t *off, size_t *dlen,
                        const char **file) __attribute__((warn_unused_result));

/*
 * Whether applying wanted (a version from a document npm PUT back) to the
 * stored manifest changes its "deprecated" field: a non-empty string sets
 * it, anything else clears it. *message (may be NULL) gets the new text, or
 * NULL when the field goes.
 */
bool npm_deprecation_changes(json_t *stored, json_t *wanted, const char **message);

/* Order two versions by semver precedence (build metadata ignored; text
 * that is not semver sorts before semver, then bytewise). <0, 0, >0. */
int npm_semver_cmp(const char *a, const char *b);

/* One version row of a package, as the packument builder takes it. */
struct npm_version_row {
    const char *version;
    json_t *manifest; /* borrowed */
    const char *file; /* tarball file name */
    int64_t published_ms;
};

/* A package as stored. */
struct npm_package {
    const char *name;
    int64_t created_ms, modified_ms;
    const char *rev;           /* "<n>-<hex>" */
    struct npm_version_row *v; /* any order */
    int nv;
    json_t *tags; /* {"tag":"version"}, borrowed */
};

/*
 * The packument of p: full (application/json: _id, _rev, name, dist-tags,
 * versions, time, and description, readme, ... of the latest version) or
 * abbreviated (application/vnd.npm.install-v1+json: name, modified,
 * dist-tags, versions holding the install fields only). Each version's
 * dist.tarball becomes tarball_base + "/" + name + "/-/" + file. A missing
 * "latest" tag points to the highest version. New reference; NULL when out
 * of memory.
 */
json_t *npm_packument(const struct npm_package *p, const char *tarball_base, bool abbreviated);

/* ---- packuments of remote and virtual repositories (docs/remote.md) ---- */

/* A version of a merged packument names the member it comes from under this key (never shown). */
#define NPM_MEMBER_KEY "_granaryMember"

/* The file name of a tarball URL (after its last '/'), or NULL. */
const char *npm_tarball_file(const char *url);

/* Whether the caller sees a version: member is its NPM_MEMBER_KEY (NULL: none), file its
 * tarball's file name. */
typedef bool (*npm_keep_fn)(void *arg, const char *member, const char *file);

/*
 * A packument as served from a full one (an upstream's, or a merge): the
 * versions keep accepts (NULL: all), each dist.tarball rewritten to
 * tarball_base + "/" + name + "/-/" + file, dist-tags naming versions left
 * out dropped (latest: the highest version when it is gone), full or
 * abbreviated (application/vnd.npm.install-v1+json). New reference; NULL
 * when out of memory.
 */
json_t *npm_packument_shape(json_t *full, const char *name, const char *tarball_base,
                            bool abbreviated, npm_keep_fn keep, void *arg);

/*
 * The merge_index hook: the full packuments members have (in resolution
 * order) as one: the first member that has a version wins it (marked with
 * NPM_MEMBER_KEY), each dist-tag comes from the first member that has it,
 * the other fields from the first document. GR_EINVAL when none parses.
 */
int npm_packument_merge(struct gr_arena *a, const char *path, const char *const *members,
                        const char *const *docs, const size_t *lens, int n, char **out,
                        size_t *out_len) __attribute__((warn_unused_result));

/* ---- rows ---- */

/*
 * Load a package's rows (one statement: one snapshot). Manifests and tags
 * are owned by the arena (decref'd when it is freed).
 * GR_ENOTFOUND, GR_EDB.
 */
int npm_package_get(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *name,
                    struct npm_package *out) __attribute__((warn_unused_result));

/* A version being published, with its tarball already durable in the blob store. */
struct npm_publish {
    const char *repo, *name, *version;
    const char *manifest;    /* JSON text */
    const char *file;        /* tarball file name */
    struct artifact tarball; /* hashes and size filled in; repo and path set here */
    const char *user;
    const char *const *tags; /* dist-tags to point at this version */
    int ntags;
};

/*
 * Record a publish in one transaction: the binary and the tarball's
 * artifact row, the package, the version and its dist-tags.
 * GR_EEXIST when the version (or its tarball path) exists, GR_ENOTFOUND
 * when the repository is gone, GR_EDB.
 */
int npm_publish(struct repo_ctx *ctx, struct gr_arena *a, struct npm_publish *p)
    __attribute__((warn_unused_result));

/*
 * Apply a document the client PUT back (deprecate, or unpublish of
 * versions): versions present in doc get their "deprecated" field from it;
 * with remove, versions absent from doc are deleted (their tarballs go to
 * the trash) and dist-tags become doc's (restricted to remaining versions).
 * rev, when not NULL, must be the package's current _rev (GR_ECONFLICT).
 * GR_ENOTFOUND, GR_ECONFLICT, GR_EDB.
 */
int npm_update(struct repo_ctx *ctx, const char *repo, const char *name, json_t *doc, bool remove,
               const char *rev, const char *user) __attribute__((warn_unused_result));

/* Delete a whole package and its tarballs (rev as above). GR_ENOTFOUND, GR_ECONFLICT, GR_EDB. */
int npm_delete_package(struct repo_ctx *ctx, const char *repo, const char *name, const char *rev,
                       const char *user) __attribute__((warn_unused_result));

/*
 * Set (version != NULL) or delete a dist-tag. Without replace, a tag that
 * names another version is left alone (GR_EEXIST): moving a tag replaces
 * content. GR_ENOTFOUND (package, version or tag), GR_EEXIST, GR_EDB.
 */
int npm_tag_set(struct repo_ctx *ctx, const char *repo, const char *name, const char *tag,
                const char *version, bool replace) __attribute__((warn_unused_result));

/*
 * Whether the caller may see a package: its name and the tarball path of
 * the version a search shows (NULL when it has none).
 */
typedef bool (*npm_visible_fn)(void *arg, const char *name, const char *tarball_path);

/*
 * Packages whose name contains text (case-insensitive), by name, with the
 * latest version's manifest: a JSON array of {name, version, manifest,
 * modified_ms, publisher}, at most size from from. With visible (not
 * NULL), only the packages it accepts count, for the page and for *total.
 * GR_EDB, GR_ENOMEM.
 */
int npm_search(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *text,
               int from, int size, npm_visible_fn visible, void *arg, json_t **out, int *total)
    __attribute__((warn_unused_result));

/* ---- tokens ---- */

/*
 * Issue a login token for user: an access token (out, "grt_" + 64 hex,
 * NPM_TOKEN_LEN + 1 bytes; only its sha256 is stored) living lifetime
 * seconds (0: no expiry), revocable like any other.
 * GR_ENOTFOUND (no such user), GR_EINVAL, GR_EIO, GR_EDB.
 */
#define NPM_TOKEN_LEN 68
int npm_token_issue(struct repo_ctx *ctx, const char *user, int64_t lifetime,
                    char out[NPM_TOKEN_LEN + 1]) __attribute__((warn_unused_result));

/* The user a token belongs to (enabled users only). GR_EAUTH, GR_EDB. */
int npm_token_check(struct repo_ctx *ctx, const char *token, struct auth_user *out)
    __attribute__((warn_unused_result));

struct remote_upstream;
struct remote_sums;
/* The remote_sums hook of a remote npm repository's tarball "{name}/-/{file}": dist.shasum and
 * dist.integrity of the version in the cached packument (npm_http.c). */
void npm_remote_sums(struct remote_upstream *up, struct repo_ctx *ctx, struct gr_arena *a,
                     const char *repo, const char *path, struct remote_sums *out);

struct http_req;
/* /api/npm/<repo>/... : the registry API (npm_http.c); sub is the raw text after "/api/npm/". */
void npm_api(struct http_req *r, const char *sub);
struct config;
/* Keep the node's npm settings (the format's configure hook). */
void npm_configure(const struct config *cfg);

#endif
