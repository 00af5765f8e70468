/*
 * oci.h - the OCI registry (packageType docker, alias oci; docs/oci.md):
 * the pure rules of the distribution spec (names, tags, digests, routes,
 * manifests, Content-Range, Accept), unit-tested in tests/unit/test_oci.c
 * (oci.c), and the rows of an image in PostgreSQL (oci_db.c,
 * sql/0014_oci.sql). The handlers are oci_http.c.
 *
 * An image <name> = <repository key>/<image path> lives in the repository
 * as artifacts:
 *   <image>/_manifests/<digest>          each manifest's bytes
 *   <image>/_tags/<tag>/manifest.json    each tag (the same binary)
 *   <image>/_blobs/<digest>              each blob a manifest references
 * "_manifests", "_tags" and "_blobs" cannot be components of an image
 * name, so no image's files fall under another's.
 */
#ifndef FORMATS_OCI_H
#define FORMATS_OCI_H

#include "base/arena.h"
#include "repo/repo.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_req;

#define OCI_MANIFEST_MAX (4 * 1024 * 1024) /* the spec's suggested limit */
#define OCI_TAG_MAX 128

#define OCI_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define OCI_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define OCI_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"

/* ---- pure rules (oci.c) ---- */

/* Whether s is an image path: the spec's name components joined by '/'
 * ([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*), at most 255 bytes. */
bool oci_image_valid(const char *s);
/* Whether s is a tag: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. */
bool oci_tag_valid(const char *s);
/* Whether s is an upload session's id: a UUID in lowercase hex (8-4-4-4-12). */
bool oci_upload_id_valid(const char *s);

struct oci_digest {
    char alg[16]; /* "sha256", "sha512" */
    char hex[129];
    char text[146]; /* "<alg>:<hex>" */
};
/*
 * Parse a digest. GR_OK; GR_EINVAL when it is not one by the spec's
 * grammar, or its algorithm is not sha256 or sha512, or its encoding is
 * not the algorithm's lowercase hex of the right length.
 */
int oci_digest_parse(const char *s, struct oci_digest *out) __attribute__((warn_unused_result));

enum oci_op {
    OCI_BASE,       /* /v2/ */
    OCI_CATALOG,    /* /v2/_catalog */
    OCI_TOKEN,      /* /v2/token */
    OCI_MANIFEST,   /* /v2/<name>/manifests/<reference> */
    OCI_BLOB,       /* /v2/<name>/blobs/<digest> */
    OCI_UPLOAD_NEW, /* /v2/<name>/blobs/uploads/ */
    OCI_UPLOAD,     /* /v2/<name>/blobs/uploads/<session> */
    OCI_TAGS,       /* /v2/<name>/tags/list */
    OCI_REFERRERS,  /* /v2/<name>/referrers/<digest> */
};

struct oci_route {
    enum oci_op op;
    const char *name;  /* "<repo>/<image>" */
    const char *repo;  /* the repository key */
    const char *image; /* the image path within it */
    const char *ref;   /* reference, digest or session id, or NULL */
};

/*
 * Split the raw path after "/v2/" (percent-decoded here) into an
 * operation. Read from the right, so an image may have components named
 * "manifests" or "blobs". GR_OK; GR_ENOTFOUND: no operation has that
 * shape; GR_EINVAL: the name is not a repository key and an image path
 * (*why says which).
 */
int oci_route_parse(struct gr_arena *a, const char *rest, bool post, struct oci_route *out,
                    const char **why) __attribute__((warn_unused_result));

/* A descriptor a manifest references. */
struct oci_ref {
    struct oci_digest digest;
    int64_t size;
    bool manifest; /* an index's entry (else a blob: config or layer) */
    bool foreign;  /* a layer with urls: not required in the registry */
};

struct oci_manifest {
    const char *media_type;    /* the effective type */
    const char *artifact_type; /* for referrers: artifactType, else an image's config type */
    const char *subject;       /* the subject's digest, or NULL */
    const char *annotations;   /* compact JSON, or NULL */
    const char *config;        /* an image manifest's config digest, or NULL */
    struct oci_ref *refs;
    int nrefs;
};

/*
 * Check a manifest body against the image spec: schema version 2, one of
 * the four manifest types (the mediaType field, else content_type, else
 * the shape), a mediaType field equal to content_type when both are there,
 * descriptors with valid digests and sizes. GR_OK with *out filled (in a);
 * GR_EINVAL with *why (the answer is MANIFEST_INVALID).
 */
int oci_manifest_parse(struct gr_arena *a, const char *body, size_t len, const char *content_type,
                       struct oci_manifest *out, const char **why)
    __attribute__((warn_unused_result));

/* The mediaType field of a stored manifest, in a, or NULL. */
const char *oci_manifest_media_type(struct gr_arena *a, const char *body, size_t len);

/* Whether an Accept header (NULL: anything) admits media_type. */
bool oci_accepts(const char *accept, const char *media_type);

/* "<start>-<end>" (inclusive, an optional "bytes=" in front) of a
 * Content-Range header. GR_OK or GR_EINVAL. */
int oci_content_range(const char *v, uint64_t *start, uint64_t *end)
    __attribute__((warn_unused_result));

/* ---- rows (oci_db.c) ---- */

/* A blob of an image: linked, or referenced by a manifest. */
struct oci_blob {
    char sha256[65];
    uint64_t size;
};
/* GR_OK, GR_ENOTFOUND, GR_EDB. */
int oci_blob_find(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *image,
                  const char *digest, struct oci_blob *out) __attribute__((warn_unused_result));
/*
 * Link a stored binary (sha256, size) into image as digest, under the
 * binary's row lock (a tombstoned one is refused). GR_OK, GR_ENOTFOUND
 * (the binary is gone), GR_EDB.
 */
int oci_blob_link(struct repo_ctx *ctx, const char *repo, const char *image, const char *digest,
                  const char *sha256, uint64_t size) __attribute__((warn_unused_result));
/* Delete a blob from an image: its link and its artifact row. GR_ENOTFOUND, GR_EDB. */
int oci_blob_delete(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *image,
                    const char *digest) __attribute__((warn_unused_result));

struct oci_upload {
    char id[37];
    const char *repo, *image;
    uint64_t size;
    int parts;
};
/* A new session (after removing sessions idle for a day). GR_EDB. */
int oci_upload_new(struct repo_ctx *ctx, const char *repo, const char *image, const char *user,
                   struct oci_upload *out) __attribute__((warn_unused_result));
/* GR_OK, GR_ENOTFOUND (unknown, or of another image), GR_EDB. */
int oci_upload_get(struct repo_ctx *ctx, struct gr_arena *a, const char *id, const char *repo,
                   const char *image, struct oci_upload *out) __attribute__((warn_unused_result));
/*
 * Append a replicated part (art: hashes, size and pending copies) at
 * offset start: publish it, pin it, advance the session, in one
 * transaction. GR_OK; GR_ECONFLICT when the session is no longer at start
 * (another chunk won: nothing kept); GR_ENOTFOUND (session gone), GR_EDB,
 * GR_EUNAVAIL.
 */
int oci_upload_append(struct repo_ctx *ctx, const char *id, uint64_t start,
                      const struct artifact *art) __attribute__((warn_unused_result));
/* The parts of a session in order (sha256s and sizes, in a). GR_EDB. */
int oci_upload_parts(struct repo_ctx *ctx, struct gr_arena *a, const char *id, char (**sha256)[65],
                     uint64_t **sizes, int *n) __attribute__((warn_unused_result));
/*
 * Finish a session: the blob (art: its binary, with pending copies when
 * it is new; NULL pending: an existing binary, e.g. the one part) is
 * published and linked as digest, the session and its pins removed.
 * GR_OK, GR_ENOTFOUND (session gone, or the binary), GR_EDB, GR_EUNAVAIL.
 */
int oci_upload_finish(struct repo_ctx *ctx, const char *id, const char *repo, const char *image,
                      const char *digest, const struct artifact *art)
    __attribute__((warn_unused_result));
/* Cancel a session. GR_OK, GR_ENOTFOUND, GR_EDB. */
int oci_upload_cancel(struct repo_ctx *ctx, const char *id) __attribute__((warn_unused_result));

/* A manifest being pushed. */
struct oci_push {
    const char *repo, *image, *user;
    const char *tag; /* or NULL: pushed by digest */
    struct oci_digest digest;
    const struct oci_manifest *m;
    struct artifact *art;     /* its bytes: hashes, size, pending copies */
    const char *const *props; /* key, value pairs for the tag's and digest's artifacts */
    int nprops;
    /* out: the first referenced blob or manifest missing from the image */
    const char *missing;
};
/*
 * Record a manifest: check that every blob and manifest it references is
 * in the image (GR_ENOTFOUND with p->missing), publish its bytes, write
 * its rows, its artifacts (manifest, tag, referenced blobs) and their
 * properties, in one transaction, then invalidate those artifacts
 * everywhere. GR_OK, GR_ENOTFOUND, GR_EINVAL (a referenced blob's size
 * differs: p->missing names it), GR_EDB, GR_EUNAVAIL.
 */
int oci_manifest_put(struct repo_ctx *ctx, struct gr_arena *a, struct oci_push *p)
    __attribute__((warn_unused_result));
/* The stored media type of a manifest (in a). GR_OK, GR_ENOTFOUND, GR_EDB. */
int oci_manifest_type(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *image,
                      const char *digest, const char **out) __attribute__((warn_unused_result));
/*
 * Delete a manifest by digest (with the tags pointing at it, and the
 * artifacts of blobs no other manifest of the image references), or a
 * tag. GR_OK, GR_ENOTFOUND, GR_EDB.
 */
int oci_manifest_delete(struct repo_ctx *ctx, struct gr_arena *a, const char *repo,
                        const char *image, const char *digest) __attribute__((warn_unused_result));
int oci_tag_delete(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *image,
                   const char *tag) __attribute__((warn_unused_result));

/* The tags of image pointing at digest (in a). GR_EDB. */
int oci_manifest_tags(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *image,
                      const char *digest, const char ***tags, int *n)
    __attribute__((warn_unused_result));
/* Tags after last (NULL: from the start), at most n + 1 (to tell whether
 * more follow). *exists: the image has a manifest or a blob. GR_EDB. */
int oci_tags_list(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *image,
                  const char *last, int n, const char ***tags, int *count, bool *exists)
    __attribute__((warn_unused_result));

struct oci_referrer {
    const char *digest, *media_type, *artifact_type, *annotations;
    int64_t size;
};
/* Manifests of image whose subject is digest (artifact_type NULL: all). GR_EDB. */
int oci_referrers(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *image,
                  const char *digest, const char *artifact_type, struct oci_referrer **out, int *n)
    __attribute__((warn_unused_result));

/* Images ("<repo>/<image>") after last, in order, at most max. GR_EDB. */
int oci_catalog(struct repo_ctx *ctx, struct gr_arena *a, const char *last, int max,
                const char ***names, int *n) __attribute__((warn_unused_result));

/* The handler of /v2/ (oci_http.c). */
void oci_api(struct http_req *r, const char *rest);
/* /<repo>/<path> of a docker repository: reads as files, writes only through /v2/. */
void oci_artifact(struct http_req *r, const struct repo_config *cfg);

#endif
