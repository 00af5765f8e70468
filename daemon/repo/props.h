/*
 * props.h - artifact and folder properties (multi-valued key/value pairs on
 * a path), stored in the `properties` table of sql/0002_storage_api.sql.
 *
 * Two halves: pure parsers of Artifactory's property syntax (no I/O, unit
 * tested in tests/unit/test_props.c) and the storage operations behind
 * /api/storage/...?properties and deploy matrix parameters. Properties are
 * not cached in LMDB: every read goes to PostgreSQL; every mutation bumps
 * the change counter in its transaction and, once committed, invalidates the
 * item's artifact key (so summaries derived from properties, such as PyPI's
 * index, are read again: repo__key_folder in repo/internal.h).
 *
 * Syntax (docs/api.md, "Properties and search"):
 *   list    "k=v1,v2|k2=v3"   items split on '|' or ';', values on ','
 *   matrix  "k=v1,v2;k2=v3"   raw and percent-encoded, items split on ';'
 *   keys    "k,k2"
 * A backslash makes the next character literal ("a=1\,2" is one value
 * "1,2"; "\\" is a backslash); a trailing lone backslash is an error. Only
 * the first unescaped '=' of an item separates key and value. "k" and "k="
 * both give one empty value. Repeated keys merge; repeated values collapse.
 */
#ifndef REPO_PROPS_H
#define REPO_PROPS_H

#include "base/arena.h"

#include <stdbool.h>

struct db_conn;
struct gr_sbuf;
struct repo_ctx;

/* Limits: bytes of a key, bytes of a value, keys and values in one request. */
#define PROPS_KEY_MAX 255
#define PROPS_VALUE_MAX 1024
#define PROPS_KEYS_MAX 256
#define PROPS_VALUES_MAX 1024

struct props_entry {
    const char *key;
    const char **values; /* nvalues strings; no duplicates */
    int nvalues;
};

/* Keys in first-seen order (parsers) or sorted (props_get); all in one arena. */
struct props_set {
    struct props_entry *e;
    int n;
};

/* ---- pure parsing ---- */

/*
 * A key Artifactory accepts: 1..PROPS_KEY_MAX bytes of valid UTF-8 without
 * control characters, space, or any of )(}{][*+^$\/~`!@#%&<>;=,|±§.
 */
bool props_key_valid(const char *key);

/* A value: at most PROPS_VALUE_MAX bytes of valid UTF-8 ("" is fine). */
bool props_value_valid(const char *value);

/*
 * Parse a decoded list "k=v1,v2|k2=v3" (the value of ?properties= on PUT).
 * Empty items are skipped, so out->n may be 0.
 * @return GR_OK; GR_EINVAL for a bad key, a bad value, a dangling
 *         backslash, or more than PROPS_KEYS_MAX keys / PROPS_VALUES_MAX values.
 * @note out and its strings live in a.
 */
int props_parse_list(struct gr_arena *a, const char *s, struct props_set *out)
    __attribute__((warn_unused_result));

/*
 * Parse raw deploy matrix parameters "k=v1,v2;k2=v3" (percent-encoded, as
 * received after the path's first ';'). Items split on raw ';' not preceded
 * by a backslash; each item is percent-decoded ('+' stays '+'), then parsed
 * as one list item. Same errors as props_parse_list, plus GR_EINVAL for a
 * bad or NUL percent escape.
 */
int props_parse_matrix(struct gr_arena *a, const char *raw, struct props_set *out)
    __attribute__((warn_unused_result));

/*
 * Parse a decoded key list "k,k2" (?properties= on GET and DELETE): entries
 * with no values. Empty entries are skipped. GR_EINVAL for a bad key.
 */
int props_parse_keys(struct gr_arena *a, const char *s, struct props_set *out)
    __attribute__((warn_unused_result));

/*
 * Parse a decoded value list "v1,v2" (a property search term) into
 * (*values, *n). "" and a lone "*" give n = 0 (any value). GR_EINVAL for a bad
 * value, a dangling backslash or more than PROPS_VALUES_MAX values.
 */
int props_parse_values(struct gr_arena *a, const char *s, const char ***values, int *n)
    __attribute__((warn_unused_result));

/* ---- storage ---- */

/*
 * Inside the open transaction of c: set the properties given as matrix
 * parameters on a deploy ("k=v;k2=v2;k=v3", raw and percent-encoded, as
 * received after the path's first ';'), replacing those keys on the path.
 * NULL or "" does nothing. GR_EINVAL for malformed parameters, GR_EDB.
 */
int props_apply_matrix(struct db_conn *c, const char *repo, const char *path, const char *matrix)
    __attribute__((warn_unused_result));

/*
 * Inside the open transaction of c: replace the keys of set on path (that
 * path only; values are not checked here: parse or build them valid).
 * Nothing for an empty set. GR_EDB. The caller's commit invalidates the
 * item's artifact key (repo/internal.h), as props_set_item() does.
 */
int props_put(struct db_conn *c, struct gr_arena *a, const char *repo, const char *path,
              const struct props_set *set) __attribute__((warn_unused_result));

/* Inside the open transaction of c: remove the keys of keys (values ignored) from path. GR_EDB. */
int props_drop(struct db_conn *c, struct gr_arena *a, const char *repo, const char *path,
               const struct props_set *keys) __attribute__((warn_unused_result));

/*
 * The properties of an item (a file, a folder, or the root ""), sorted by
 * key then value; keys (NULL or empty: all) restricts them to those keys.
 * out->n == 0 when the item has none (of those).
 * @return GR_OK; GR_ENOTFOUND when the item does not exist; GR_EDB.
 */
int props_get(struct repo_ctx *ctx, struct gr_arena *a, const char *repo, const char *path,
              const struct props_set *keys, struct props_set *out)
    __attribute__((warn_unused_result));

/*
 * Set properties on an item, replacing the keys of set (other keys stay).
 * recursive: also on every file and folder below path (a file has none).
 * @return GR_OK; GR_ENOTFOUND when the item (or the repository) does not
 *         exist; GR_EINVAL for an empty set; GR_EDB.
 */
int props_set_item(struct repo_ctx *ctx, const char *repo, const char *path,
                   const struct props_set *set, bool recursive) __attribute__((warn_unused_result));

/*
 * Remove the keys of keys (values ignored) from an item and, when
 * recursive, from everything below it. Removing absent keys is not an
 * error. GR_ENOTFOUND when the item does not exist; GR_EINVAL for no keys;
 * GR_EDB.
 */
int props_delete_keys(struct repo_ctx *ctx, const char *repo, const char *path,
                      const struct props_set *keys, bool recursive)
    __attribute__((warn_unused_result));

#endif
