/*
 * trash.h - the trash can (Artifactory's auto-trashcan): a deleted artifact
 * waits in the `trash` table for trash_retention_days (a setting; default
 * 14, 0 disables the trash: deletes are final), with its properties as
 * jsonb; a deleted folder's own property rows wait in `trash_folders`
 * (sql/0004_trash.sql). From there it can be restored, or purged: by hand
 * (clean one path, empty everything) or once expired.
 *
 * Purging removes trash rows only: the binary row stays, and garbage
 * collection decides later (a trash row keeps its binary referenced).
 * One trash row per (repository, path): the last delete of a path wins,
 * and a trashed file replaces trashed paths below it (and a trashed
 * folder's files replace trashed files at their folders' paths), so a
 * restore never creates a file and a folder at the same path.
 *
 * Functions are thread-safe; strings they return live in the caller's arena.
 */
#ifndef REPO_TRASH_H
#define REPO_TRASH_H

#include "base/arena.h"
#include "repo/repo.h"

#include <stdbool.h>
#include <stdint.h>

struct db_conn;
struct sec_perms;

#define TRASH_RETENTION_DEFAULT 14 /* days */
#define TRASH_RETENTION_MAX 36500  /* days */
#define TRASH_LIST_MAX 10000       /* items per trash_list() call */

/* The retention in days (cached; the default when unset). GR_EDB. */
int trash_retention_days(struct repo_ctx *ctx, int *days) __attribute__((warn_unused_result));
/* Set it (0..TRASH_RETENTION_MAX; 0 disables the trash). GR_EINVAL, GR_EDB. */
int trash_set_retention_days(struct repo_ctx *ctx, int days) __attribute__((warn_unused_result));

/*
 * Inside the open transaction of c (artifact_delete): delete the artifact
 * at path, or every artifact at and below a folder path ("" is the whole
 * repository), and the property rows at and below path. With keep, move
 * them into the trash first, deleted by user. *files: artifacts deleted
 * (0 when nothing was there). GR_EDB.
 */
int trash_take(struct db_conn *c, const char *repo, const char *path, const char *user, bool keep,
               int *files) __attribute__((warn_unused_result));

struct trash_item {
    const char *repo, *path, *sha256;
    uint64_t size;
    int64_t created_ms, modified_ms, deleted_ms;
    const char *created_by, *modified_by, *deleted_by;
    const char *properties; /* JSON object: {"key": ["value", ...]} */
};

/*
 * Trashed files, by repository then path: those of repo (NULL: all) at or
 * below path (NULL or "": all) that perms may read where they were deleted
 * from (NULL: all), from offset, at most limit (1..TRASH_LIST_MAX); offset
 * counts only those. *more tells whether more follow. GR_EDB.
 */
int trash_list(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *path,
               const struct sec_perms *perms, int offset, int limit, struct trash_item **out,
               int *n, bool *more) __attribute__((warn_unused_result));

/*
 * Restore the trashed file at path, or every trashed file at and below a
 * folder path ("" is the repository), with their properties (and the
 * trashed folder properties), to to_path in to_repo (same names below it;
 * to_path "" means path, in to_repo). Nothing is overwritten. With perms
 * (NULL: no check), user must hold read on every restored item where it
 * was deleted from and write on every target. *files: restored. Errors,
 * with *why: GR_ENOTFOUND (nothing in the trash there, or no target
 * repository), GR_EEXIST (a target exists, or lies below a file),
 * GR_EFORBIDDEN (a permission; the target's include/exclude patterns),
 * GR_EINVAL (a target path too long), GR_EDB.
 */
int trash_restore(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *path,
                  const char *to_repo, const char *to_path, const struct sec_perms *perms,
                  const char *user, int *files, const char **why)
    __attribute__((warn_unused_result));

/* Purge what the trash holds at and below path in repo. *purged: rows. GR_ENOTFOUND, GR_EDB. */
int trash_clean(struct repo_ctx *ctx, const char *repo, const char *path, int *purged)
    __attribute__((warn_unused_result));
/* Purge everything. *purged: rows. GR_EDB. */
int trash_empty(struct repo_ctx *ctx, int *purged) __attribute__((warn_unused_result));

/*
 * Purge the rows deleted longer ago than the retention (all of them when
 * the retention is 0). Meant to run about once a minute on any node (it is
 * idempotent and safe to run on several at once). *purged: rows. GR_EDB.
 */
int trash_purge_expired(struct repo_ctx *ctx, int *purged) __attribute__((warn_unused_result));

#endif
