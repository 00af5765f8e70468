/*
 * copymove.h - copy and move of artifacts (Artifactory's /api/copy and
 * /api/move): a file, or a folder and everything below it, within or across
 * repositories.
 *
 * Metadata only: new artifact rows point at the same sha256, so no byte is
 * copied and the blob store is not touched. Property rows (files and
 * folders) travel along: copied by a copy, moved by a move. One
 * transaction per call, all or nothing: a single refused item refuses the
 * whole call (Artifactory would copy the rest; failFast only changes how
 * many refusals are reported). The target follows Unix rules, as
 * Artifactory does: an existing folder (or a target named with a trailing
 * slash, or the repository root) receives the source under its own name;
 * otherwise the source is renamed to the target; an existing target file
 * is overwritten.
 */
#ifndef REPO_COPYMOVE_H
#define REPO_COPYMOVE_H

#include "base/arena.h"
#include "base/sbuf.h"
#include "repo/repo.h"

#include <stdbool.h>

struct db_conn;
struct sec_perms;

/* Longest artifact path a copy may create (bytes; docs/limits.md, as http/path.h). */
#define COPYMOVE_PATH_MAX 1024
/* Refusals listed in a result; more are only counted. */
#define COPYMOVE_PROBLEMS_MAX 100

struct copymove_request {
    const char *src_repo, *src_path; /* normalised; "" is the repository root */
    bool src_slash;                  /* named with a trailing slash: must be a folder */
    const char *dst_repo, *dst_path;
    bool dst_slash; /* trailing slash: place the source under dst_path */
    bool move;
    bool dry_run;   /* validate and count, change nothing */
    bool fail_fast; /* stop validating at the first refused item */
    const char *user;
    /* the caller's permissions: write on every target path (and delete where it
     * overwrites a file) is checked once the targets are known; NULL: no check */
    const struct sec_perms *perms;
};

/* One refused item. */
struct copymove_problem {
    int err; /* GR_EFORBIDDEN (patterns), GR_EINVAL (file/folder clash), GR_EEXIST (restore) */
    const char *message;
};

/* What happened; strings live in the caller's arena. */
struct copymove_result {
    const char *dst_path;              /* the target after the Unix rules ("" is the root) */
    int files, folders;                /* copied or moved (would be, for a dry run) */
    const char *message;               /* on a request-level failure: why */
    struct copymove_problem *problems; /* refused items, in path order */
    int nproblems;                     /* listed: at most COPYMOVE_PROBLEMS_MAX */
    int problems_total;
    bool denied; /* a problem is the caller's want of permission (not the patterns) */
};

/*
 * Copy or move. On GR_OK out has the counts (and nothing changed for a dry
 * run). Errors, each with out->message:
 *   GR_ENOTFOUND  the source or target repository, or the source item
 *   GR_ECONFLICT  onto itself, into its own subfolder, or onto a folder
 *                 that contains the source
 *   GR_EINVAL     a folder onto an existing file
 *   GR_EFORBIDDEN / GR_EINVAL with out->nproblems > 0: items refused (the
 *                 target repository's include/exclude patterns, a file
 *                 onto a folder, a path below a file, a path too long);
 *                 the code is the last problem's; nothing changed
 *   GR_EDB        the database (a deadlock is retried twice first)
 * Cache keys of the targets (and of the sources for a move) are
 * invalidated after the commit.
 */
int copymove_run(struct repo_ctx *ctx, struct gr_arena *a, const struct copymove_request *req,
                 struct copymove_result *out) __attribute__((warn_unused_result));

/* ---- helpers shared with trash.c (repo/ only) ---- */

/* Characters (not bytes) of UTF-8 s: what SQL's substr() counts. */
int copymove__chars(const char *s);
/* src (from itself, or below it) moved to below to; in the arena. */
const char *copymove__map(struct gr_arena *a, const char *src, const char *from, const char *to);
/* Record a refused item in out (counted always, listed up to the maximum). */
void copymove__problem(struct gr_arena *a, struct copymove_result *out, int err, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));

/* Who acts, for the permission checks of every path an operation touches. */
struct copymove_actor {
    const struct sec_perms *perms; /* NULL: nobody to check (an internal caller) */
    const char *user;              /* for the messages */
};

/*
 * Inside c's transaction: check the n distinct file paths that are about to
 * be created in repository cfg. Refusals go to out->problems: a path over
 * COPYMOVE_PATH_MAX or refused by the include/exclude patterns, a path that
 * is an existing folder or lies below an existing file (clash_err), and an
 * existing file when exists_err is not GR_OK (GR_OK: it is overwritten).
 * Before all of these, the actor's permissions: write on every path, and
 * write and delete on an existing file that would be overwritten; when
 * one is missing, only those refusals (GR_EFORBIDDEN) are reported.
 * With fail_fast the checks stop at the first refusal. GR_OK or GR_EDB.
 */
int copymove__check_targets(struct db_conn *c, struct gr_arena *a, const struct repo_config *cfg,
                            const struct copymove_actor *who, const char *const *dst, int n,
                            int clash_err, int exists_err, bool fail_fast,
                            struct copymove_result *out) __attribute__((warn_unused_result));

#endif
