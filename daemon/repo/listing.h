/*
 * listing.h - what /api/storage and /api/storageinfo report: folder info,
 * file lists and the storage summary. Reads only (from PostgreSQL: these
 * are admin and tooling calls, not the hot download path).
 */
#ifndef REPO_LISTING_H
#define REPO_LISTING_H

#include "repo/repo.h"

struct listing_folder {
    int64_t created_ms, modified_ms, updated_ms;
    const char *created_by, *modified_by;
    struct folder_entry *children;
    int n;
};

/* A folder ("" is the repository root). GR_ENOTFOUND, GR_EDB. */
int listing_folder_info(struct repo_ctx *ctx, struct gr_arena *a, const char *repo,
                        const char *path, struct listing_folder *out)
    __attribute__((warn_unused_result));

struct listing_entry {
    const char *rel; /* "/a/b.jar", relative to the listed folder */
    bool folder;
    uint64_t size;
    int64_t modified_ms;
    const char *sha1, *sha256; /* files only */
};

/*
 * Files (and with folders=true, folders) below path: immediate children
 * unless deep; with deep, at most depth levels (0: unlimited). Ordered by
 * path. GR_ENOTFOUND when path is neither the root nor a folder, GR_EDB.
 */
int listing_list(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *path,
                 bool deep, int depth, bool folders, struct listing_entry **out, int *n)
    __attribute__((warn_unused_result));

/* Whether the caller may see child name (a file or folder) of the listed folder. */
typedef bool (*listing_visible_fn)(void *arg, const char *name);

#define LISTING_PAGE_MAX 10000

/*
 * One page of a folder's immediate children (a folder of 100,000 files is
 * browsed a page at a time): folders first (when folders is true), then
 * files, each by name (bytewise); the entries visible() accepts (NULL:
 * all), from offset (0-based) up to limit (1..LISTING_PAGE_MAX) of them.
 * *total is the number of visible children. Entries' rel is "/<name>";
 * files carry sha1 and sha256. GR_ENOTFOUND when path is neither the root
 * nor a folder, GR_EINVAL (offset < 0, limit out of range), GR_EDB.
 */
int listing_children(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *path,
                     bool folders, listing_visible_fn visible, void *arg, int64_t offset, int limit,
                     struct listing_entry **out, int *n, int64_t *total)
    __attribute__((warn_unused_result));

struct listing_repo_summary {
    const char *key, *package_type;
    uint64_t files, folders, bytes;
};

struct listing_summary {
    uint64_t binaries_count, binaries_bytes; /* distinct contents */
    uint64_t artifacts_count, artifacts_bytes;
    struct listing_repo_summary *repos;
    int nrepos;
};

int listing_summary(struct repo_ctx *ctx, struct gr_arena *a, struct listing_summary *out)
    __attribute__((warn_unused_result));

#endif
