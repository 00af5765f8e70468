/*
 * pattern.h - Ant-style path patterns, as a repository's includesPattern and
 * excludesPattern use them (Artifactory's syntax): copy, move and restore
 * check every target path against the target repository's patterns.
 *
 * Syntax: patterns are matched segment by segment ('/' separates); "**" as
 * a whole segment matches zero or more segments, '*' matches zero or more
 * characters within a segment, '?' exactly one character (a UTF-8
 * sequence counts as one). A pattern ending in '/' means "dir/" followed by "**". Leading
 * and doubled slashes are ignored. A list is comma-separated; blanks around
 * each pattern are ignored. Matching is case-sensitive.
 *
 * Pure functions, no allocation, safe from any thread; unit-tested in
 * tests/unit/test_pattern.c. Time is O(pattern segments x path segments)
 * per pattern, whatever the pattern (no exponential backtracking).
 */
#ifndef REPO_PATTERN_H
#define REPO_PATTERN_H

#include <stdbool.h>
#include <stddef.h>

/* True when path (no leading slash needed) matches the one pattern of plen bytes. */
bool pattern_match(const char *pattern, size_t plen, const char *path);

/*
 * True when path matches any pattern of the comma-separated list. A list
 * with no pattern at all (NULL, "" or only blanks and commas) gives
 * if_empty.
 */
bool pattern_list_match(const char *list, const char *path, bool if_empty);

/*
 * Whether a repository with these patterns accepts a file at path: it must
 * match an include (an empty include list accepts everything) and no
 * exclude (an empty exclude list excludes nothing). NULL reads as "".
 */
bool pattern_accepts(const char *includes, const char *excludes, const char *path);

#endif
