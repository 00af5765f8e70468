/*
 * pypi_archive.c - the core metadata inside a distribution (pypi.h), read
 * with libarchive from the uploaded bytes on this node's disk: a wheel's
 * "<name>.dist-info/METADATA" (the zip's central directory, so nothing else
 * is unpacked) or an sdist's "<dir>/PKG-INFO" (a .tar.gz is scanned until
 * it, at most PYPI_SCAN_MAX bytes unpacked). Only the metadata is held in
 * memory, at most PYPI_METADATA_MAX bytes. The only user of libarchive.
 */
#include "formats/pypi/pypi.h"

#include "base/err.h"

#include <archive.h>
#include <archive_entry.h>
#include <string.h>

#define PYPI__ENTRIES_MAX 1000000 /* entries looked at in one archive */
#define PYPI__BLOCK 65536

static void pypi__archive_free(void *arg)
{
    archive_read_free(arg);
}

/* Whether path is "<dir>/<leaf>" with one plain directory (ending in suffix, if given). */
static bool pypi__top_level(const char *path, const char *suffix, const char *leaf)
{
    if (!strncmp(path, "./", 2))
        path += 2;
    const char *slash = strchr(path, '/');
    if (!slash || slash == path || strcmp(slash + 1, leaf))
        return false;
    size_t dl = (size_t)(slash - path), sl = suffix ? strlen(suffix) : 0;
    return !suffix || (dl > sl && !memcmp(slash - sl, suffix, sl));
}

/* Read the current entry's data, at most PYPI_METADATA_MAX bytes. */
static int pypi__read_entry(struct gr_arena *a, struct archive *ar, const char *what,
                            const char **text, size_t *len, const char **why)
{
    size_t cap = 16 * 1024, n = 0;
    char *buf = gr_arena_alloc(a, cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap >= PYPI_METADATA_MAX + 1) {
                *why = gr_arena_printf(a, "%s is larger than the limit of %u bytes", what,
                                       PYPI_METADATA_MAX);
                return GR_EINVAL;
            }
            size_t ncap = cap * 2 > PYPI_METADATA_MAX + 1 ? PYPI_METADATA_MAX + 1 : cap * 2;
            char *nb = gr_arena_alloc(a, ncap + 1);
            memcpy(nb, buf, n);
            buf = nb;
            cap = ncap;
        }
        la_ssize_t got = archive_read_data(ar, buf + n, cap - n);
        if (got < 0) {
            *why = gr_arena_printf(a, "cannot read %s: %s", what, archive_error_string(ar));
            return GR_EINVAL;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    if (n > PYPI_METADATA_MAX) {
        *why =
            gr_arena_printf(a, "%s is larger than the limit of %u bytes", what, PYPI_METADATA_MAX);
        return GR_EINVAL;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return GR_OK;
}

int pypi_archive_metadata(struct gr_arena *a, int fd, const char *ext, const char **text,
                          size_t *len, const char **why)
{
    bool wheel = !strcmp(ext, ".whl"), tgz = !strcmp(ext, ".tar.gz");
    const char *kind = wheel ? "wheel (a zip archive)" : tgz ? "sdist (.tar.gz)" : "sdist (.zip)";
    const char *leaf = wheel ? "METADATA" : "PKG-INFO";
    struct archive *ar = archive_read_new();
    if (!ar)
        return GR_ENOMEM;
    gr_arena_cleanup(a, pypi__archive_free, ar);
    if (tgz) {
        archive_read_support_filter_gzip(ar);
        archive_read_support_format_tar(ar);
    } else {
        archive_read_support_format_zip_seekable(ar);
    }
    if (archive_read_open_fd(ar, fd, PYPI__BLOCK) != ARCHIVE_OK) {
        *why = gr_arena_printf(a, "not a valid %s: %s", kind, archive_error_string(ar));
        return GR_EINVAL;
    }
    struct archive_entry *e;
    int found = 0, rc = GR_OK;
    for (int i = 0;; i++) {
        int h = archive_read_next_header(ar, &e);
        if (h == ARCHIVE_EOF)
            break;
        if (h < ARCHIVE_WARN) {
            *why = gr_arena_printf(a, "not a valid %s: %s", kind, archive_error_string(ar));
            return GR_EINVAL;
        }
        if (i >= PYPI__ENTRIES_MAX || archive_filter_bytes(ar, 0) > (la_int64_t)PYPI_SCAN_MAX) {
            *why = gr_arena_printf(a,
                                   "the %s is too large to look into (more than %d entries or"
                                   " %u bytes before its %s)",
                                   kind, PYPI__ENTRIES_MAX, PYPI_SCAN_MAX, leaf);
            return GR_EINVAL;
        }
        const char *path = archive_entry_pathname(e);
        if (!path || archive_entry_filetype(e) != AE_IFREG ||
            !pypi__top_level(path, wheel ? ".dist-info" : NULL, leaf))
            continue;
        if (++found > 1) {
            *why = gr_arena_printf(a, "the %s holds more than one top-level */%s", kind, leaf);
            return GR_EINVAL;
        }
        rc =
            pypi__read_entry(a, ar, gr_arena_printf(a, "%s in the %s", path, kind), text, len, why);
        if (rc)
            return rc;
        if (!wheel)
            break; /* an sdist's first top-level PKG-INFO is the one */
    }
    if (!found) {
        *why = gr_arena_printf(a, "the %s has no %s%s", kind,
                               wheel ? "<name>.dist-info/" : "top-level <dir>/", leaf);
        return GR_EINVAL;
    }
    return GR_OK;
}
