/*
 * import_journal.h - the state file of `granaryctl import`: one line per
 * repository path done, so that a re-run (after a crash, a kill -9 or a
 * power cut) skips it without reading the source file again.
 *
 * Line format (docs/import.md), appended and never rewritten:
 *     <sha256> <sha1> <size> <mtime_ns> <repo>/<path>
 * Lines starting with '#' are comments; a torn last line (a crash while
 * it was written) is cut off at open.
 *
 * Threads: open/close from one thread; imp_journal_find() may be called
 * from any thread (the table is read-only after open) and
 * imp_journal_append() from any thread (it takes a mutex).
 */
#ifndef IMP_JOURNAL_H
#define IMP_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

/* What the journal says about one path: the content it got and the
 * source file's size and mtime at the time. */
struct imp_jentry {
    char sha256[65];
    char sha1[41];
    uint64_t size;
    int64_t mtime_ns;
};

struct imp_journal;

/*
 * Open (create) the state file at path, load its lines and lock it
 * (flock) against a second import using it at the same time.
 * @param[out] out  the journal; free with imp_journal_close().
 * @return 0, or -1 with a message in err (cannot open, in use, no memory).
 */
int imp_journal_open(const char *path, struct imp_journal **out, char *err, size_t errsz)
    __attribute__((warn_unused_result));

/* The last entry loaded for key ("<repo>/<path>"), or NULL. The pointer
 * lives until imp_journal_close(). Entries appended since open are not
 * looked up. */
const struct imp_jentry *imp_journal_find(const struct imp_journal *j, const char *key);

/* How many distinct paths were loaded at open. */
size_t imp_journal_loaded(const struct imp_journal *j);

/*
 * Append one done path. The line is flushed to the kernel at once (a
 * killed process loses nothing) and fdatasync'ed every 64 lines or every
 * second, and at close. Returns 0, or -1 (errno set) when the write
 * failed: the import goes on, a re-run will just check those paths again.
 */
int imp_journal_append(struct imp_journal *j, const char *key, const struct imp_jentry *e);

/* fdatasync when lines wait unsynced for a second or more: called about
 * once a second, so a quiet spell (one long upload) leaves none behind. */
void imp_journal_tick(struct imp_journal *j);

/* fdatasync, unlock and free. Returns 0, or -1 if the final sync failed.
 * NULL is fine. */
int imp_journal_close(struct imp_journal *j);

#endif
