/*
 * maven.h - the Maven format (daemon/formats/maven/): the Maven 2 layout
 * (path parsing), Maven's version order (ComparableVersion),
 * maven-metadata.xml computed from the artifact rows, POM coordinates,
 * snapshot retention, the GAVC search, and the repository settings.
 * docs/maven.md describes the rules; maven_http.c is the HTTP side,
 * maven_format.c the format's entry in the registry.
 *
 * Pure functions (parse, compare, render) allocate nothing but what their
 * comment says; database functions are thread-safe and return strings in
 * the caller's arena. Nothing here is cached: metadata is read from
 * PostgreSQL on every request, so every node sees every deploy at once.
 */
#ifndef FORMATS_MAVEN_H
#define FORMATS_MAVEN_H

#include "base/arena.h"
#include "repo/repo.h"
#include "repo/search.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gr_sbuf;
struct http_req;

/* A Maven repository's settings (repo_config.settings; Artifactory's names:
 * handleReleases, handleSnapshots, maxUniqueSnapshots,
 * suppressPomConsistencyChecks; allowReleaseRedeploy is granary's). */
struct maven_settings {
    bool handle_releases, handle_snapshots, suppress_pom_checks, allow_release_redeploy;
    int max_unique_snapshots; /* 0: no limit */
};

/* The settings of cfg, Artifactory's defaults where absent. */
void maven_settings_read(const struct repo_config *cfg, struct maven_settings *out);

/* /<repo>/<path> of a Maven repository (maven_http.c). */
void maven_artifact(struct http_req *r, const struct repo_config *cfg);
struct remote_spec;
/* The remote_spec hook: metadata has a time to live, a file is checked against its .sha1
 * (maven_http.c). */
void maven_remote_spec(struct gr_arena *a, const char *path, struct remote_spec *spec);
/* The virtual_get hook: merged maven-metadata.xml, files from the first member having them. */
void maven_virtual_get(struct http_req *r, const struct repo_config *cfg);
/* GET /api/search/gavc (maven_format.c). */
void maven_search_gavc(struct http_req *r, const char *rest);

enum maven_kind {
    MAVEN_FILE,          /* group/artifact/version/artifact-version[-classifier].ext */
    MAVEN_META_ARTIFACT, /* group/artifact/maven-metadata.xml (also group-level) */
    MAVEN_META_VERSION,  /* group/artifact/X-SNAPSHOT/maven-metadata.xml */
};

/* What a path in a Maven repository names. Strings point into the struct's
 * own buffer (valid while the struct lives). */
struct maven_path {
    enum maven_kind kind;
    const char *group; /* dotted: "com.example" (MAVEN_META_ARTIFACT: the parent path dotted) */
    const char *group_path; /* "com/example" */
    const char *artifact;   /* "x" */
    const char *version;    /* the folder: "1.0" or "1.0-SNAPSHOT" */
    const char
        *file_version;      /* in the file name: "1.0", "1.0-SNAPSHOT" or "1.0-20261128.002356-3" */
    const char *classifier; /* "" when none */
    const char *ext;        /* "jar", "tar.gz", "jar.asc"; "xml" for metadata */
    const char *checksum;   /* "", "sha1", "md5", "sha256" or "sha512" */
    const char *base;       /* the path without the checksum suffix */
    bool snapshot;          /* version ends with -SNAPSHOT */
    bool timestamped;       /* file_version is a unique snapshot build */
    char timestamp[16];     /* "20261128.002356" (timestamped only) */
    int build;              /* build number (timestamped only) */
    char buf[10 * 1024];    /* paths up to 1136 bytes */
};

/*
 * Parse a normalised repository path against the Maven 2 layout.
 * @return GR_OK; GR_EINVAL with *why set to a static reason when the path
 *         does not follow the layout (or is longer than the buffer).
 */
int maven_parse_path(const char *path, struct maven_path *out, const char **why)
    __attribute__((warn_unused_result));

/* True when a version is a snapshot (ends with "-SNAPSHOT"). */
bool maven_is_snapshot(const char *version);

/*
 * Maven 3's ComparableVersion order: <0, 0, >0 like strcmp. Items split
 * on '.', '-' and digit/letter transitions; numbers compare as numbers;
 * qualifiers alpha < beta < milestone < rc = cr < snapshot < "" = ga =
 * final = release < sp < anything else (lexically); a, b, m followed by a
 * digit mean alpha, beta, milestone; case is ignored.
 */
int maven_version_cmp(const char *a, const char *b);

/* One stored file, as maven_metadata_* consume them. */
struct maven_file {
    const char *path; /* repository path */
    int64_t modified_ms;
};

/*
 * Render the artifact-level maven-metadata.xml of group:artifact from the
 * files below group/artifact/ (any order; only layout-valid, non-checksum
 * files of that artifact count). sb receives the bytes.
 * @return GR_OK; GR_ENOTFOUND when no version has a file.
 */
int maven_metadata_artifact(const char *group, const char *artifact, const struct maven_file *f,
                            int n, struct gr_sbuf *sb) __attribute__((warn_unused_result));

/*
 * Render the snapshot-level maven-metadata.xml of group:artifact:version
 * (a -SNAPSHOT version) from the files in its folder: the newest build
 * (highest build number) and, per classifier and extension, its newest
 * value. @return GR_OK; GR_ENOTFOUND when the folder has no file.
 */
int maven_metadata_snapshot(const char *group, const char *artifact, const char *version,
                            const struct maven_file *f, int n, struct gr_sbuf *sb)
    __attribute__((warn_unused_result));

/*
 * The newest build of a -SNAPSHOT file among the files of its folder: the
 * timestamped file with the same classifier and extension and the highest
 * build number. *out is the path (in a). GR_ENOTFOUND when there is none.
 */
int maven_snapshot_resolve(struct gr_arena *a, const struct maven_path *p,
                           const struct maven_file *f, int n, const char **out)
    __attribute__((warn_unused_result));

/*
 * The groupId, artifactId and version of a POM (parent's groupId and
 * version when the POM has none of its own), in a.
 * @return GR_OK; GR_EINVAL when the bytes are not a POM.
 */
int maven_pom_gav(struct gr_arena *a, const char *xml, size_t len, const char **g, const char **art,
                  const char **v) __attribute__((warn_unused_result));

/*
 * Virtual repositories' merge_index hook: the maven-metadata.xml members
 * have at path as one: the union of their versions in Maven's order,
 * latest and release recomputed, the newest lastUpdated. A snapshot's
 * metadata (<version>-SNAPSHOT/maven-metadata.xml) is the first member's.
 * *out in a. GR_EINVAL when the documents are not artifact metadata.
 */
int maven_metadata_merge(struct gr_arena *a, const char *path, const char *const *members,
                         const char *const *docs, const size_t *lens, int n, char **out,
                         size_t *out_len) __attribute__((warn_unused_result));

/*
 * The files stored below a folder ("g/a" for artifact metadata, "g/a/v"
 * for a version), with their modification times. Array and strings in a.
 * GR_EDB.
 */
int maven_list_files(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *folder,
                     bool deep, struct maven_file **out, int *n)
    __attribute__((warn_unused_result));

/*
 * maxUniqueSnapshots: keep the newest keep builds (by build number) of the
 * unique snapshots in folder (g/a/X-SNAPSHOT), deleting (trashing) the
 * files of older builds as user. *deleted counts the files removed.
 * GR_EDB.
 */
int maven_prune_snapshots(struct repo_ctx *ctx, struct gr_arena *a, const char *repo,
                          const char *folder, int keep, const char *user, int *deleted)
    __attribute__((warn_unused_result));

/* GET /api/search/gavc: fields may use '*' and '?'; NULL or "" means any. */
struct maven_gavc {
    const char *g, *a, *v, *c;
};

/*
 * Files of Maven repositories (all, or q->repos) whose coordinates match:
 * the hits of search_run's shape (files only, with artifact info), sorted
 * by repository then path, at most q->limit; *truncated tells that more
 * matched. with_props loads each hit's properties.
 * @return GR_OK; GR_EINVAL when no field is given; GR_EDB.
 */
int maven_gavc_search(struct repo_ctx *ctx, struct gr_arena *a, const struct maven_gavc *g,
                      const struct search_query *q, bool with_props, struct search_hit **out,
                      int *n, bool *truncated) __attribute__((warn_unused_result));

#endif /* FORMATS_MAVEN_H */
