/*
 * format.h - what a package format brings to granary, and the registry
 * that lists the formats (formats.c). docs/architecture.md "Adding a
 * format" walks through it; daemon/formats/README.md has the rules.
 *
 * A format is a folder under daemon/formats/ with one `const struct format`
 * and one line in formats.c. The core knows nothing else about it: the
 * route table takes its routes, /<repo>/<path> of its repositories goes to
 * its artifact handler, the repository API takes and shows its settings
 * through its hooks, and its deploys go through the one ingest pipeline
 * (the hooks of struct http_deploy_hooks, http/req.h, set by its handler).
 *
 * Formats are immutable tables read by any thread; every hook is
 * thread-safe and keeps no state between calls.
 */
#ifndef FORMATS_FORMAT_H
#define FORMATS_FORMAT_H

#include "base/arena.h"

#include <jansson.h>
#include <stdbool.h>

struct config;
struct http_req;
struct http_route;
struct repo_config;
struct remote_spec;

struct format {
    const char *name; /* the packageType repositories name ("maven") */
    /* The node's settings (config.h), once at start before any request: a
     * format keeps what it needs of them (npm: its tokens' lifetime). NULL: none. */
    void (*configure)(const struct config *cfg);
    const char *const *aliases; /* other packageType values meaning it (NULL-terminated), or NULL */
    /* Rows this format adds to the route table (http/route.h), ended by a row
     * whose path is NULL; NULL: none. */
    const struct http_route *routes;
    /*
     * GET/HEAD/PUT/DELETE of /<repo>/<path> in a repository of this format,
     * called after authentication with r->repo_key and r->path parsed; it
     * answers (itself, or through http_artifact_generic()). NULL: the core
     * artifact handler serves the repository as generic files.
     */
    void (*artifact)(struct http_req *r, const struct repo_config *cfg);

    /* ---- repository settings: one JSON object per repository (repo_config.settings) */
    /* The repository-JSON fields the format owns (NULL-terminated), or NULL. */
    const char *const *settings_fields;
    /*
     * Check doc's fields of settings_fields and write them into settings (the
     * repository's current settings, defaults absent). Fields the document
     * lacks stay as they are. @return 0, or GR_EINVAL with *why (static or in
     * a) naming the field.
     */
    int (*settings_apply)(struct gr_arena *a, json_t *doc, json_t *settings, const char **why);
    /* Add every setting, defaults filled in, to a repository's JSON (GET). */
    void (*settings_json)(json_t *settings, json_t *doc);

    /* ---- remote and virtual repositories (docs/remote.md, http/remote.h) */
    /* true: repositories of this format are local only (a remote or virtual
     * one is refused with 400): its client API does not know them yet. */
    bool local_only;
    /*
     * Remote: how path is fetched. The core has filled spec with a file
     * (REMOTE_FILE, kept for good) at the same path, escaped, checked
     * against the upstream's X-Checksum-* headers; the hook may make it
     * metadata (REMOTE_METADATA, kept retrievalCachePeriodSecs), change the
     * upstream path and Accept, and add the checksums the upstream publishes
     * (spec->sums, run on the fetch thread). NULL: the core's spec.
     */
    void (*remote_spec)(struct gr_arena *a, const char *path, struct remote_spec *spec);
    /*
     * Remote: GET/HEAD of /<repo>/<path> (a file; read permission checked),
     * for what the format answers its own way (Maven: checksum files of
     * cached files, metadata); it calls http_remote_file() for the rest.
     * NULL: http_remote_file() for every path.
     */
    void (*remote_get)(struct http_req *r, const struct repo_config *cfg);
    /*
     * Virtual: GET/HEAD of /<repo>/<path> (read permission checked on the
     * virtual repository), for merged documents (Maven's metadata); it calls
     * http_virtual_file() for the rest. NULL: http_virtual_file(): the first
     * member that has the file.
     */
    void (*virtual_get)(struct http_req *r, const struct repo_config *cfg);
    /*
     * Virtual: merge the index documents members have for path (docs[i] of
     * lens[i] bytes from members[i], in resolution order) into one (*out,
     * in a). 0, or GR_EINVAL when they cannot be merged.
     */
    int (*merge_index)(struct gr_arena *a, const char *path, const char *const *members,
                       const char *const *docs, const size_t *lens, int n, char **out,
                       size_t *out_len);
};

/* Every format, in the registry's order, ended by NULL. */
extern const struct format *const formats[];

/* The format of a packageType (its name or an alias), or NULL when none is. */
const struct format *format_find(const char *package_type);

/* The registered names, comma-separated ("generic, maven, npm"), for messages. */
const char *format_names(void);

#endif
