/*
 * pypi.h - the PyPI format (docs/pypi.md): a Python package index for pip,
 * twine, poetry and uv at /api/pypi/<repo>/.
 *
 * Files are artifacts of the repository at "<project>/<version>/<file>",
 * <project> the normalized name (PEP 503) and <version> the normalized
 * version (PEP 440); a wheel's core metadata (PEP 658) is the artifact
 * "<file>.metadata" beside it. What twine's form says is kept as pypi.*
 * properties of the file, yanks (PEP 592) as pypi.yanked and
 * pypi.yanked_reason. The index pages (PEP 503 HTML, PEP 691/700 JSON) are
 * computed from those rows and kept in the LMDB cache under the project's
 * folder summary (repo__key_folder), which every change below the folder
 * drops on every node.
 *
 * The first half is pure (names, versions, file names, core metadata,
 * content negotiation, the page records and their rendering;
 * tests/unit/test_pypi.c); the rest reads and writes rows, archives and
 * requests. Strings returned live in the caller's arena; functions are
 * thread-safe.
 */
#ifndef FORMATS_PYPI_H
#define FORMATS_PYPI_H

#include "base/arena.h"
#include "repo/repo.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gr_sbuf;
struct props_set;
struct http_req;

/* Limits (docs/limits.md). */
#define PYPI_METADATA_MAX (2u * 1024 * 1024) /* a wheel's METADATA, an sdist's PKG-INFO */
#define PYPI_FIELD_MAX (64u * 1024)          /* one form field that is kept */
#define PYPI_FIELDS_MAX (1024u * 1024)       /* all kept form fields together */
#define PYPI_SUMMARY_MAX 512                 /* characters, as PyPI */
#define PYPI_NAME_MAX 200                    /* bytes of a project name */
/* An sdist's archive is read until its PKG-INFO, at most this many bytes
 * unpacked (a compressed archive of zeros cannot keep a thread busy). */
#define PYPI_SCAN_MAX (1024u * 1024 * 1024)

/* ---- names and versions (pure) ---- */

/* A valid project name (PEP 508): ASCII letters and digits, with '.', '_',
 * '-' inside, at most PYPI_NAME_MAX bytes. */
bool pypi_name_valid(const char *name);
/* The normalized name (PEP 503: lowercase, runs of -_. become '-'), or
 * NULL when name is not valid. */
char *pypi_normalize(struct gr_arena *a, const char *name);
/* The same over n bytes, not checked (for matching file name parts). */
char *pypi_normalize_n(struct gr_arena *a, const char *name, size_t n);

/*
 * The normalized form of a PEP 440 version ("1.0-RC.1" -> "1.0rc1",
 * "v2.0.post" -> "2.0.post0", "1!1.0+Ubuntu-1" -> "1!1.0+ubuntu.1"), or
 * NULL when v is not one (or has a number of more than 18 digits).
 */
char *pypi_version_normalize(struct gr_arena *a, const char *v);
/* PEP 440 order of two versions (<0, 0, >0); text that is not a version
 * sorts before every version, then bytewise. */
int pypi_version_cmp(const char *a, const char *b);
/* A pre-release or a development release. */
bool pypi_version_is_pre(const char *v);

/* ---- file names (pure) ---- */

enum pypi_kind { PYPI_WHEEL, PYPI_SDIST };

struct pypi_filename {
    enum pypi_kind kind;
    const char *version;   /* the file name's version, normalized */
    const char *pyversion; /* a wheel's python tag ("py3"), "source" for an sdist */
    const char *ext;       /* ".whl", ".tar.gz" or ".zip" */
};

/*
 * Parse a distribution's file name for the project norm (normalized): a
 * wheel (PEP 427/491: name-version[-build]-python-abi-platform.whl) or an
 * sdist (PEP 625: name-version.tar.gz, also .zip). GR_EINVAL with *why
 * (static or in a) when it is neither, or names another project.
 */
int pypi_filename_parse(struct gr_arena *a, const char *filename, const char *norm,
                        struct pypi_filename *out, const char **why)
    __attribute__((warn_unused_result));

/* The kind of a stored file by its name's ending; false: not a distribution. */
bool pypi_is_dist(const char *filename);

/* ---- core metadata (pure) ---- */

struct pypi_meta_field {
    const char *key, *value;
};

/* A core metadata file (METADATA, PKG-INFO): RFC 822 headers and a body. */
struct pypi_meta {
    struct pypi_meta_field *f;
    int n;
    const char *body; /* the description after the headers ("" when none) */
};

/*
 * Parse len bytes of core metadata. GR_EINVAL with *why when it is not
 * UTF-8, or lacks Metadata-Version, Name or Version.
 */
int pypi_meta_parse(struct gr_arena *a, const char *text, size_t len, struct pypi_meta *out,
                    const char **why) __attribute__((warn_unused_result));
/* The first value of key (case-insensitive), or NULL. */
const char *pypi_meta_get(const struct pypi_meta *m, const char *key);
/* Every value of key into *out (in a); returns the count. */
int pypi_meta_all(struct gr_arena *a, const struct pypi_meta *m, const char *key,
                  const char ***out);

/* ---- content negotiation (pure) ---- */

enum pypi_type {
    PYPI_T_NONE,    /* nothing acceptable: 406 */
    PYPI_T_HTML,    /* text/html (PEP 503; the default) */
    PYPI_T_HTML_V1, /* application/vnd.pypi.simple.v1+html */
    PYPI_T_JSON_V1, /* application/vnd.pypi.simple.v1+json (PEP 691) */
};
/* The representation for an Accept header (NULL: text/html): the highest
 * q, then JSON before HTML; "latest" reads as v1. */
enum pypi_type pypi_accept(const char *accept);
/* The Content-Type of a representation. */
const char *pypi_type_header(enum pypi_type t);

/* ---- index pages (pure) ---- */

/* One distribution file of a project, as the index shows it. */
struct pypi_file {
    const char *path;     /* "<project>/<version>/<file>" */
    const char *filename; /* its last segment */
    const char *version;  /* its folder: the normalized version */
    char sha256[65], md5[33];
    uint64_t size;
    int64_t upload_us;           /* upload time, microseconds since the epoch */
    const char *requires_python; /* or NULL */
    bool yanked;
    const char *yanked_reason; /* or NULL */
    const char *meta_sha256;   /* its core metadata's, or NULL (none stored) */
    const char *name;          /* pypi.name, the project's name as uploaded, or NULL */
    json_t *props;             /* its pypi.* properties {"key":["v",...]}, or NULL */
};

/*
 * The first field of the cached records: a build that renders pages
 * otherwise changes it, and a record of another form is read again.
 */
#define PYPI_PROJECT_MAGIC "pypi-project-2"
#define PYPI_ROOT_MAGIC "pypi-root-1"

/*
 * The cached record of a project page: its display name and, per file,
 * its path, version and its rendered HTML anchor and JSON object (links
 * relative to the page: "../../packages/<path>"). Files in f that are not
 * at "<project>/<version>/<file>" or not distributions are left out.
 */
void pypi_project_record(struct gr_sbuf *rec, const char *display, const struct pypi_file *f,
                         int n);

/* One file of a decoded project record. */
struct pypi_entry {
    const char *path, *version, *html, *json;
};
/* Decode a project record (pointing into rec). GR_EINVAL for a damaged one. */
int pypi_project_entries(struct gr_arena *a, const char *rec, size_t len, const char **display,
                         struct pypi_entry **out, int *n) __attribute__((warn_unused_result));
/* A project's page from its entries; show[i] false leaves entry i out (show NULL: all). */
void pypi_render_project(struct gr_sbuf *sb, enum pypi_type t, const char *norm,
                         const char *display, const struct pypi_entry *e, int n, const bool *show);

/* The repository's list of projects (norm, display name), as cached. */
struct pypi_project {
    const char *norm, *display;
};
void pypi_root_record(struct gr_sbuf *rec, const struct pypi_project *p, int n);
int pypi_root_entries(struct gr_arena *a, const char *rec, size_t len, struct pypi_project **out,
                      int *n) __attribute__((warn_unused_result));
void pypi_render_root(struct gr_sbuf *sb, enum pypi_type t, const struct pypi_project *p, int n,
                      const bool *show);

/* ---- rows (pypi_rows.c) ---- */

/*
 * The distribution files below "<norm>/" with their properties and
 * metadata hashes, ordered by path (one statement). GR_EDB.
 */
int pypi_files_load(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *norm,
                    struct pypi_file **out, int *n) __attribute__((warn_unused_result));

/* A project page's record through the cache (repo__key_folder). GR_ENOTFOUND (no files), GR_EDB. */
int pypi_project_cached(struct repo_ctx *ctx, struct gr_arena *a, const char *repo,
                        const char *norm, const char **rec, size_t *len)
    __attribute__((warn_unused_result));
/* The repository's project list through the cache. GR_EDB. */
int pypi_root_cached(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char **rec,
                     size_t *len) __attribute__((warn_unused_result));

/* An upload whose binaries are staged (ingest_replicate), to commit. */
struct pypi_commit {
    const char *repo, *norm, *filename;
    struct artifact *file;         /* path, hashes, size, pending set */
    struct artifact *meta;         /* its core metadata, or NULL (sdists) */
    const struct props_set *props; /* the pypi.* properties of the file */
    const char *user;
};
/*
 * Record an upload in one transaction, serialised per project: the
 * binaries, the file's row and properties, its metadata's row (replacing a
 * metadata file left without its distribution). GR_EEXIST when a file of
 * that name is in the project, GR_ENOTFOUND (the repository is gone),
 * GR_EUNAVAIL (too few copies could be published), GR_EDB.
 */
int pypi_commit(struct repo_ctx *ctx, struct gr_arena *a, struct pypi_commit *c)
    __attribute__((warn_unused_result));

/*
 * Yank (reason not NULL, "" for none) or unyank (reason NULL) the files at
 * paths[0..n) in one transaction. GR_EDB.
 */
int pypi_yank(struct repo_ctx *ctx, const char *repo, const char *const *paths, int n,
              const char *reason) __attribute__((warn_unused_result));

/* ---- archives (pypi_archive.c, libarchive) ---- */

/*
 * The core metadata inside a distribution (ext ".whl", ".tar.gz" or
 * ".zip": struct pypi_filename) read from fd, which stays the caller's: a
 * wheel's single "<name>.dist-info/METADATA", an sdist's top-level
 * "<dir>/PKG-INFO". *text (in a, NUL-terminated) of *len bytes. GR_EINVAL
 * with *why for a broken archive, no such file, or one larger than
 * PYPI_METADATA_MAX; GR_ENOMEM.
 */
int pypi_archive_metadata(struct gr_arena *a, int fd, const char *ext, const char **text,
                          size_t *len, const char **why) __attribute__((warn_unused_result));

/* ---- requests ---- */

/* /api/pypi/<repo>/... (pypi_http.c); sub is the raw text after "/api/pypi/". */
void pypi_api(struct http_req *r, const char *sub);
/* GET /api/search/pypi?name=&version=[&repos=] */
void pypi_search(struct http_req *r, const char *rest);
/* /<repo>/<path> of a PyPI repository: files as generic ones, but no PUT. */
void pypi_artifact(struct http_req *r, const struct repo_config *cfg);

/* pypi_upload.c: POST of twine's form (the http handler checked the repository). */
void pypi_upload(struct http_req *r, const struct repo_config *cfg);

#endif
