/*
 * search.h - the searches behind /api/search/...: by file name (wildcards),
 * by checksum, by properties, and by date range. Each is one indexed
 * PostgreSQL query (docs/api.md lists which index serves which search),
 * bounded by a result limit; nothing is cached.
 */
#ifndef REPO_SEARCH_H
#define REPO_SEARCH_H

#include "base/arena.h"
#include "repo/props.h"
#include "repo/repo.h"

#include <stdbool.h>
#include <stdint.h>

struct gr_sbuf;

/* Results per search unless the caller asks for fewer (Artifactory's userQueryLimit). */
#define SEARCH_LIMIT_DEFAULT 1000

enum search_kind { SEARCH_NAME, SEARCH_CHECKSUM, SEARCH_PROP, SEARCH_DATES };

struct search_query {
    enum search_kind kind;
    const char *const *repos; /* nrepos keys; none: every repository */
    int nrepos;
    const char *like;              /* NAME: a LIKE pattern (search_name_like) */
    const char *sum_type;          /* CHECKSUM: "sha256", "sha1" or "md5" */
    const char *sum;               /*           lowercase hex of the right length */
    const struct props_set *props; /* PROP: every key must match one of its values
                                      (no values: any value) */
    int64_t from_ms, to_ms;        /* DATES: from < date <= to, in ms as displayed */
    bool by_created, by_modified;  /*        which dates; at least one */
    int limit;                     /* 1.. */
};

struct search_hit {
    const char *repo, *path;
    bool is_folder;         /* PROP only: a folder (or the root) carrying the properties */
    struct artifact art;    /* files: everything artifact_get() fills */
    struct props_set props; /* with_props: the item's properties, sorted */
};

/*
 * Turn an Artifactory quick-search name into a LIKE pattern: '*' and '?'
 * are wildcards, LIKE's own '%', '_' and '\' are escaped, and like
 * Artifactory a name that does not start (end) with a wildcard gets a
 * leading (trailing) '*', so "lib" finds "*lib*".
 * @return GR_OK; GR_EINVAL for an empty name or one made of wildcards only.
 */
int search_name_like(const char *name, struct gr_sbuf *like) __attribute__((warn_unused_result));

/*
 * A date parameter: Java epoch milliseconds ("1708819200000") or ISO 8601
 * "YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|+HHMM|-...)". GR_EINVAL otherwise.
 */
int search_parse_time(const char *s, int64_t *ms) __attribute__((warn_unused_result));

/*
 * Check a checksum search term against its type (sha256: 64, sha1: 40,
 * md5: 32 hex digits) and lowercase it into out (>= 65 bytes).
 * GR_EINVAL for a wrong length or a non-hex character.
 */
int search_checksum_norm(const char *type, const char *value, char *out)
    __attribute__((warn_unused_result));

/*
 * Run q: at most q->limit hits, sorted by repository then path, in *out
 * (array and strings in a). *truncated tells that more matched. with_props
 * also loads each hit's properties (one more query).
 * @return GR_OK; GR_EINVAL for a malformed query; GR_EDB.
 */
int search_run(struct repo_ctx *ctx, struct gr_arena *a, const struct search_query *q,
               bool with_props, struct search_hit **out, int *n, bool *truncated)
    __attribute__((warn_unused_result));

#endif
