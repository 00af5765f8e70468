/*
 * import.c - `granaryctl import`: the migration tool (import.h). A pre-scan
 * lists the work (a directory tree, or a filestore and its map), N worker
 * threads hash and send it, the main thread prints progress, and a report
 * ends the run. docs/import.md describes the behaviour.
 */
#include "import.h"

#include "base/sbuf.h"
#include "base/utf8.h"
#include "crypto/crypto.h"
#include "import_http.h"
#include "import_journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IMP_PARALLEL_DEFAULT 4
#define IMP_PARALLEL_MAX 64
#define IMP_RETRIES_DEFAULT 4
#define IMP_READ_BUF (1024 * 1024)
#define IMP_STATE_SUFFIX ".granary-import.state"

/* One source file and the repository paths it goes to: one path in
 * directory mode, one or more in filestore mode (one blob, several paths). */
struct imp_item {
    char *file; /* the path to open */
    char *name; /* filestore mode: the checksum it is named by; NULL otherwise */
    uint64_t size;
    int64_t mtime_ns;
    char **targets; /* repository paths, --prefix included */
    int ntargets;
};

struct imp_opts {
    const char *url, *user, *password_file, *repo, *prefix, *dir, *filestore, *map, *state;
    int parallel, retries;
    uint64_t limit_rate; /* bytes/s for all uploads together; 0: none */
    int progress;        /* -1: when stderr is a TTY */
    bool no_overwrite;
    const char **excludes;
    int nexcludes;
};

/* Counts for the report; under imp_run.mu. */
struct imp_stats {
    uint64_t imported, bytes_sent, dedup, present, journaled, skipped, excluded, failed, corrupt;
    uint64_t retried; /* requests sent again after a 5xx or a network error */
};

/* The one run: options, the work list, and what workers share. Workers
 * read items and opts only; the rest is atomic or under mu. */
struct imp_run {
    struct imp_opts o;
    struct imp_server srv;
    char *password;
    char *base;   /* the URL without a trailing slash */
    char *prefix; /* normalised --prefix, "" when none */
    char *root;   /* directory mode: realpath of --dir */
    dev_t state_dev;
    ino_t state_ino;

    struct imp_item *items;
    size_t nitems, capitems;
    uint64_t total_files, total_bytes; /* repository paths and their bytes */
    uint64_t units_total;              /* progress: 2 units per source byte (hash + send) */

    struct imp_journal *journal;
    bool journal_warned;
    struct cr_hashpool *hashpool; /* md5 off the worker threads; NULL: inline */

    _Atomic size_t next;
    _Atomic uint64_t files_done;
    _Atomic uint64_t units_done;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int workers_left;
    struct imp_stats st;
    struct gr_sbuf failed_list, corrupt_list, skipped_list;
    double t0;
};

static volatile sig_atomic_t imp_stop;

static void imp__on_signal(int sig)
{
    (void)sig;
    imp_stop = 1;
}

static double imp__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void imp__human(uint64_t n, char out[32])
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, 32, "%llu B", (unsigned long long)n);
    else
        snprintf(out, 32, "%.1f %s", v, unit[u]);
}

void imp_usage(FILE *f)
{
    fputs("  import --url URL --user NAME --repo KEY [--prefix PATH] --dir DIR [options]\n"
          "  import --url URL --user NAME --repo KEY [--prefix PATH] --filestore DIR --map FILE "
          "[options]\n"
          "                                  copy a directory tree, or a checksum-named filestore\n"
          "                                  with a map of '<sha1|sha256>  <path>' lines, into a\n"
          "                                  repository over the HTTP API (docs/import.md)\n"
          "      --url URL                   a node or the load balancer: http://host:port\n"
          "      --user NAME                 the account to deploy as\n"
          "      --password-file FILE        its password (first line); or GRANARY_PASSWORD\n"
          "      --repo KEY                  the target repository (must exist)\n"
          "      --prefix PATH               a folder in the repository to import under\n"
          "      --dir DIR                   import every file under DIR, paths kept\n"
          "      --filestore DIR --map FILE  import DIR/<2 hex>/<checksum> to the mapped paths\n"
          "      --state FILE                the resume journal (default: <DIR or "
          "FILE>" IMP_STATE_SUFFIX ")\n"
          "      --parallel N                concurrent transfers (default 4, at most 64)\n"
          "      --retries N                 retries of a 5xx or network error (default 4)\n"
          "      --limit-rate RATE           cap the upload bandwidth of all transfers together,\n"
          "                                  in bytes/s with an optional K, M or G (1024-based)\n"
          "      --exclude GLOB              skip files and folders whose name or relative path\n"
          "                                  matches (repeatable; directory mode)\n"
          "      --no-overwrite              fail a path that holds different content instead\n"
          "                                  of replacing it\n"
          "      --progress, --no-progress   progress on stderr (default: when it is a terminal)\n"
          "      exit status: 0 all imported, 1 a file failed or was corrupt, 2 bad arguments\n",
          f);
}

/* ---- results --------------------------------------------------------- */

enum imp_outcome { IMP_IMPORTED, IMP_DEDUP, IMP_PRESENT, IMP_JOURNALED, IMP_FAILED, IMP_CORRUPT };

/* Count one repository path as finished. */
static void imp__done(struct imp_run *r, enum imp_outcome o, const char *path, const char *msg)
{
    pthread_mutex_lock(&r->mu);
    switch (o) {
    case IMP_IMPORTED:
        r->st.imported++;
        break;
    case IMP_DEDUP:
        r->st.dedup++;
        break;
    case IMP_PRESENT:
        r->st.present++;
        break;
    case IMP_JOURNALED:
        r->st.journaled++;
        break;
    case IMP_FAILED:
        r->st.failed++;
        gr_sbuf_addf(&r->failed_list, "  failed   %s: %s\n", path, msg);
        break;
    case IMP_CORRUPT:
        r->st.corrupt++;
        gr_sbuf_addf(&r->corrupt_list, "  corrupt  %s: %s\n", path, msg);
        break;
    }
    pthread_mutex_unlock(&r->mu);
    atomic_fetch_add(&r->files_done, 1);
}

/* A failure found by the scan, before any work: counted in the totals. */
static void imp__scan_failed(struct imp_run *r, const char *path, const char *msg)
{
    r->total_files++;
    imp__done(r, IMP_FAILED, path, msg);
}

static void imp__skipped(struct imp_run *r, const char *path, const char *why)
{
    r->st.skipped++;
    gr_sbuf_addf(&r->skipped_list, "  skipped  %s: %s\n", path, why);
}

/* ---- the work list ---------------------------------------------------- */

static struct imp_item *imp__add_item(struct imp_run *r, const char *file, const struct stat *st)
{
    if (r->nitems == r->capitems) {
        size_t cap = r->capitems ? r->capitems * 2 : 1024;
        struct imp_item *v = realloc(r->items, cap * sizeof(*v));
        if (!v)
            return NULL;
        r->items = v;
        r->capitems = cap;
    }
    struct imp_item *it = &r->items[r->nitems];
    memset(it, 0, sizeof(*it));
    it->file = strdup(file);
    if (!it->file)
        return NULL;
    it->size = (uint64_t)st->st_size;
    it->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
    r->nitems++;
    r->units_total += 2 * it->size;
    return it;
}

static int imp__add_target(struct imp_run *r, struct imp_item *it, const char *rel)
{
    char **v = realloc(it->targets, (size_t)(it->ntargets + 1) * sizeof(*v));
    if (!v)
        return -1;
    it->targets = v;
    struct gr_sbuf p = GR_SBUF_INIT;
    if (*r->prefix) {
        gr_sbuf_adds(&p, r->prefix);
        gr_sbuf_adds(&p, "/");
    }
    gr_sbuf_adds(&p, rel);
    it->targets[it->ntargets++] = gr_sbuf_detach(&p);
    r->total_files++;
    r->total_bytes += it->size;
    return 0;
}

/* Why granary would refuse this name as a path segment, or NULL. */
static const char *imp__bad_name(const char *name)
{
    size_t n = strlen(name);
    if (!gr_utf8_valid(name, n))
        return "name is not valid UTF-8 (granary paths are UTF-8)";
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return "name has a control character";
        if (*p == '\\')
            return "name has a backslash";
    }
    return NULL;
}

static bool imp__excluded(const struct imp_run *r, const char *rel, const char *name)
{
    for (int i = 0; i < r->o.nexcludes; i++)
        if (!fnmatch(r->o.excludes[i], rel, 0) || !fnmatch(r->o.excludes[i], name, 0))
            return true;
    return false;
}

/* The directories being walked, to stop a symlink loop. */
struct imp_ancestor {
    dev_t dev;
    ino_t ino;
    const struct imp_ancestor *up;
};

static int imp__cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int imp__scan_dir(struct imp_run *r, const char *abs, const char *rel,
                         const struct imp_ancestor *anc);

/* One directory entry: a file becomes an item; a folder (or a symlink to
 * one inside DIR) is walked; anything else is reported. -1: out of memory. */
static int imp__scan_entry(struct imp_run *r, const char *abs, const char *rel, const char *name,
                           const struct imp_ancestor *anc)
{
    const char *why;
    struct stat st;
    if (lstat(abs, &st) < 0) {
        imp__scan_failed(r, rel, strerror(errno));
        return 0;
    }
    if (st.st_dev == r->state_dev && st.st_ino == r->state_ino)
        return 0; /* our own journal */
    if (imp__excluded(r, rel, name)) {
        r->st.excluded++;
        return 0;
    }
    if ((why = imp__bad_name(name))) {
        imp__scan_failed(r, rel, why);
        return 0;
    }
    if (S_ISLNK(st.st_mode)) {
        char *real = realpath(abs, NULL);
        if (!real) {
            imp__skipped(r, rel, "broken symlink");
            return 0;
        }
        size_t n = strlen(r->root);
        bool inside = !strncmp(real, r->root, n) && (real[n] == '/' || !real[n] || n == 1);
        if (!inside || stat(abs, &st) < 0) {
            char msg[PATH_MAX + 64];
            snprintf(msg, sizeof(msg), "symlink to outside DIR (%s)", real);
            free(real);
            imp__skipped(r, rel, msg);
            return 0;
        }
        free(real);
    }
    if (S_ISDIR(st.st_mode)) {
        for (const struct imp_ancestor *a = anc; a; a = a->up)
            if (a->dev == st.st_dev && a->ino == st.st_ino) {
                imp__skipped(r, rel, "symlink loop");
                return 0;
            }
        struct imp_ancestor me = {st.st_dev, st.st_ino, anc};
        return imp__scan_dir(r, abs, rel, &me);
    }
    if (!S_ISREG(st.st_mode)) {
        imp__skipped(r, rel,
                     S_ISFIFO(st.st_mode)                         ? "special file (fifo)"
                     : S_ISSOCK(st.st_mode)                       ? "special file (socket)"
                     : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "special file (device)"
                                                                  : "special file");
        return 0;
    }
    struct imp_item *it = imp__add_item(r, abs, &st);
    if (!it || imp__add_target(r, it, rel))
        return -1;
    return 0;
}

/* Walk abs (whose repository-relative path is rel, "" for DIR itself),
 * entries in byte order. -1: out of memory. */
static int imp__scan_dir(struct imp_run *r, const char *abs, const char *rel,
                         const struct imp_ancestor *anc)
{
    DIR *d = opendir(abs);
    if (!d) {
        char msg[300];
        snprintf(msg, sizeof(msg), "cannot read the folder: %s", strerror(errno));
        imp__scan_failed(r, *rel ? rel : ".", msg);
        return 0;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **v = realloc(names, cap * sizeof(*v));
            if (!v) {
                rc = -1;
                goto out_free;
            }
            names = v;
        }
        if (!(names[n] = strdup(de->d_name))) {
            rc = -1;
            goto out_free;
        }
        n++;
    }
    qsort(names, n, sizeof(*names), imp__cmp_str);
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct gr_sbuf a = GR_SBUF_INIT, p = GR_SBUF_INIT;
        gr_sbuf_addf(&a, "%s/%s", abs, names[i]);
        if (*rel)
            gr_sbuf_addf(&p, "%s/%s", rel, names[i]);
        else
            gr_sbuf_adds(&p, names[i]);
        rc = imp__scan_entry(r, a.buf, p.buf, names[i], anc);
        gr_sbuf_release(&a);
        gr_sbuf_release(&p);
    }
out_free:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

/* One line of the map: its checksum, repository path and line number. */
struct imp_mapline {
    char sum[65];
    char *path;
    size_t lineno;
};

static int imp__cmp_sum(const void *a, const void *b)
{
    const struct imp_mapline *x = a, *y = b;
    int c = strcmp(x->sum, y->sum);
    return c ? c : (x->lineno > y->lineno) - (x->lineno < y->lineno);
}

static int imp__cmp_path(const void *a, const void *b)
{
    const struct imp_mapline *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    return c ? c : (x->lineno > y->lineno) - (x->lineno < y->lineno);
}

/* Normalise a relative repository path in place: no leading slashes, no
 * empty, "." or ".." segment. NULL when it cannot name a file. */
static char *imp__norm_path(char *p)
{
    while (*p == '/')
        p++;
    size_t n = strlen(p);
    while (n && p[n - 1] == '/')
        p[--n] = '\0';
    if (!n)
        return NULL;
    for (const char *s = p; *s;) {
        size_t len = strcspn(s, "/");
        if (!len || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
            return NULL;
        s += len;
        if (*s == '/')
            s++;
    }
    return p;
}

/*
 * Read the map ("<sha1|sha256>  <path>" lines, as sha1sum/sha256sum
 * print them) and group its paths by checksum into items. A malformed
 * line or a path mapped to two checksums stops the run before it starts:
 * -1 with a message on stderr.
 */
static int imp__load_map(struct imp_run *r)
{
    FILE *f = fopen(r->o.map, "r");
    if (!f) {
        fprintf(stderr, "granaryctl import: --map %s: %s\n", r->o.map, strerror(errno));
        return -1;
    }
    struct imp_mapline *v = NULL;
    size_t n = 0, cap = 0, lineno = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    int bad = 0, rc = -1;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#')
            continue;
        size_t hl = 0;
        while (hl < 64 && ((p[hl] >= '0' && p[hl] <= '9') || (p[hl] >= 'a' && p[hl] <= 'f') ||
                           (p[hl] >= 'A' && p[hl] <= 'F')))
            hl++;
        char *path = p + hl;
        bool ok = (hl == 40 || hl == 64) && (*path == ' ' || *path == '\t');
        if (ok) {
            path++;
            if (*path == ' ' || *path == '*') /* "sum  path" or "sum *path" */
                path++;
            ok = imp__bad_name(path) == NULL && (path = imp__norm_path(path)) != NULL;
        }
        if (!ok) {
            if (bad++ < 10)
                fprintf(stderr, "granaryctl import: %s:%zu: expected '<sha1 or sha256>  <path>'\n",
                        r->o.map, lineno);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            struct imp_mapline *nv = realloc(v, cap * sizeof(*nv));
            if (!nv)
                goto out_oom;
            v = nv;
        }
        for (size_t i = 0; i < hl; i++)
            v[n].sum[i] = (char)(p[i] >= 'A' && p[i] <= 'F' ? p[i] - 'A' + 'a' : p[i]);
        v[n].sum[hl] = '\0';
        v[n].lineno = lineno;
        if (!(v[n].path = strdup(path)))
            goto out_oom;
        n++;
    }
    if (ferror(f)) {
        fprintf(stderr, "granaryctl import: --map %s: %s\n", r->o.map, strerror(errno));
        goto out_free;
    }
    if (bad) {
        fprintf(stderr, "granaryctl import: %d malformed line%s in %s; nothing imported\n", bad,
                bad > 1 ? "s" : "", r->o.map);
        goto out_free;
    }
    /* a path mapped twice: the same checksum is a harmless repeat */
    qsort(v, n, sizeof(*v), imp__cmp_path);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (w && !strcmp(v[w - 1].path, v[i].path)) {
            if (strcmp(v[w - 1].sum, v[i].sum)) {
                fprintf(stderr,
                        "granaryctl import: %s:%zu: '%s' is mapped to two checksums (also at "
                        "line %zu); nothing imported\n",
                        r->o.map, v[i].lineno, v[i].path, v[w - 1].lineno);
                bad++;
            }
            free(v[i].path);
            continue;
        }
        v[w++] = v[i];
    }
    n = w;
    if (bad)
        goto out_free;
    qsort(v, n, sizeof(*v), imp__cmp_sum);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && !strcmp(v[j].sum, v[i].sum))
            j++;
        struct gr_sbuf file = GR_SBUF_INIT;
        gr_sbuf_addf(&file, "%s/%.2s/%s", r->o.filestore, v[i].sum, v[i].sum);
        struct stat st;
        if (stat(file.buf, &st) < 0 || !S_ISREG(st.st_mode)) {
            char msg[PATH_MAX + 64];
            snprintf(msg, sizeof(msg), "blob %s: %s", file.buf,
                     errno == ENOENT ? "not in the filestore" : "not a regular file");
            for (size_t k = i; k < j; k++) {
                struct gr_sbuf t = GR_SBUF_INIT;
                if (*r->prefix)
                    gr_sbuf_addf(&t, "%s/", r->prefix);
                gr_sbuf_adds(&t, v[k].path);
                imp__scan_failed(r, t.buf, msg);
                gr_sbuf_release(&t);
            }
        } else {
            struct imp_item *it = imp__add_item(r, file.buf, &st);
            if (!it || !(it->name = strdup(v[i].sum))) {
                gr_sbuf_release(&file);
                goto out_oom;
            }
            for (size_t k = i; k < j; k++)
                if (imp__add_target(r, it, v[k].path)) {
                    gr_sbuf_release(&file);
                    goto out_oom;
                }
        }
        gr_sbuf_release(&file);
        i = j;
    }
    rc = 0;
    goto out_free;
out_oom:
    fprintf(stderr, "granaryctl import: out of memory reading %s\n", r->o.map);
out_free:
    for (size_t i = 0; i < n; i++)
        free(v[i].path);
    free(v);
    free(line);
    fclose(f);
    return rc;
}

/* ---- the workers ------------------------------------------------------ */

struct imp_worker {
    struct imp_run *r;
    struct imp_http *http;
    unsigned char *buf; /* IMP_READ_BUF */
    pthread_t tid;
};

/* Hash fd in one read: sha256, sha1 and md5. 0, -1 (errno) or 1 (stopped). */
static int imp__hash(struct imp_worker *w, int fd, struct imp_sums *s, uint64_t *size)
{
    struct cr_multihash *h = cr_multihash_new(w->r->hashpool);
    if (!h) {
        errno = ENOMEM;
        return -1;
    }
    *size = 0;
    for (;;) {
        if (imp_stop) {
            cr_multihash_free(h);
            return 1;
        }
        ssize_t n = read(fd, w->buf, IMP_READ_BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            cr_multihash_free(h);
            errno = e;
            return -1;
        }
        if (n == 0)
            break;
        cr_multihash_update(h, w->buf, (size_t)n);
        *size += (uint64_t)n;
        atomic_fetch_add(&w->r->units_done, (uint64_t)n);
    }
    cr_multihash_final(h, s->sha256, s->sha1, s->md5);
    cr_multihash_free(h);
    return 0;
}

static void imp__journal(struct imp_run *r, const char *key, const struct imp_item *it,
                         const struct imp_sums *s)
{
    struct imp_jentry e = {.size = it->size, .mtime_ns = it->mtime_ns};
    memcpy(e.sha256, s->sha256, sizeof(e.sha256));
    memcpy(e.sha1, s->sha1, sizeof(e.sha1));
    if (imp_journal_append(r->journal, key, &e) < 0) {
        pthread_mutex_lock(&r->mu);
        if (!r->journal_warned)
            fprintf(stderr, "granaryctl import: warning: cannot write the state file: %s\n",
                    strerror(errno));
        r->journal_warned = true;
        pthread_mutex_unlock(&r->mu);
    }
}

/* Does the journal's entry still describe this source file? */
static bool imp__journal_match(const struct imp_jentry *e, const struct imp_item *it)
{
    if (!e || e->size != it->size || e->mtime_ns != it->mtime_ns)
        return false;
    if (it->name)
        return !strcmp(it->name, strlen(it->name) == 64 ? e->sha256 : e->sha1);
    return true;
}

/*
 * One repository path of a hashed item: skip it when the repository has
 * it with the same sha256, else deploy by checksum, else send the bytes.
 * Returns false when the run was stopped (the path is left unfinished).
 */
static bool imp__one_target(struct imp_worker *w, struct imp_item *it, const char *path,
                            const char *key, int fd, const struct imp_sums *s, bool *sent)
{
    struct imp_run *r = w->r;
    struct imp_answer ans;
    char have[65];
    int rc = imp_http_stat(w->http, r->o.repo, path, have, &ans);
    if (rc == IMP_ESTOP)
        return false;
    if (rc == IMP_EFAIL) {
        imp__done(r, IMP_FAILED, path, ans.msg);
        return true;
    }
    if (rc == IMP_OK && !strcmp(have, s->sha256)) {
        imp__journal(r, key, it, s);
        imp__done(r, IMP_PRESENT, path, NULL);
        return true;
    }
    if (rc == IMP_OK && r->o.no_overwrite) {
        char msg[160];
        snprintf(msg, sizeof(msg), "the repository holds different content there (sha256 %s)",
                 have[0] ? have : "none: a folder");
        imp__done(r, IMP_FAILED, path, msg);
        return true;
    }
    rc = imp_http_put_checksum(w->http, r->o.repo, path, s, &ans);
    if (rc == IMP_ESTOP)
        return false;
    if (rc == IMP_OK) {
        imp__journal(r, key, it, s);
        imp__done(r, IMP_DEDUP, path, NULL);
        return true;
    }
    if (rc == IMP_EFAIL) {
        imp__done(r, IMP_FAILED, path, ans.msg);
        return true;
    }
    /* the server lacks the binary: send it; count its progress once */
    rc = imp_http_put_file(w->http, r->o.repo, path, fd, it->size, s, *sent ? NULL : &r->units_done,
                           &ans);
    if (rc == IMP_ESTOP)
        return false;
    if (rc != IMP_OK) {
        imp__done(r, IMP_FAILED, path, ans.msg);
        return true;
    }
    pthread_mutex_lock(&r->mu);
    r->st.bytes_sent += it->size;
    pthread_mutex_unlock(&r->mu);
    *sent = true;
    imp__journal(r, key, it, s);
    imp__done(r, IMP_IMPORTED, path, NULL);
    return true;
}

/* Fail every path of it still pending. */
static void imp__fail_all(struct imp_run *r, struct imp_item *it, const bool *pending,
                          enum imp_outcome o, const char *msg)
{
    for (int i = 0; i < it->ntargets; i++)
        if (pending[i])
            imp__done(r, o, it->targets[i], msg);
}

/*
 * One source file: skip its journaled paths; hash it once (and check its
 * name in filestore mode); then each remaining path in turn. Every path
 * ends counted in the report, unless the run is stopped. Progress gets
 * 2 * size units per file whatever happened (hash + send), so that the
 * bytes shown reach the total.
 */
static void imp__do_item(struct imp_worker *w, struct imp_item *it)
{
    struct imp_run *r = w->r;
    uint64_t credit = 2 * it->size, credited = 0;
    bool *pending = calloc((size_t)it->ntargets, sizeof(bool));
    char **keys = calloc((size_t)it->ntargets, sizeof(char *));
    int npending = 0;
    if (!pending || !keys) {
        free(pending);
        free(keys);
        for (int i = 0; i < it->ntargets; i++)
            imp__done(r, IMP_FAILED, it->targets[i], "out of memory");
        return;
    }
    for (int i = 0; i < it->ntargets; i++) {
        struct gr_sbuf k = GR_SBUF_INIT;
        gr_sbuf_addf(&k, "%s/%s", r->o.repo, it->targets[i]);
        keys[i] = gr_sbuf_detach(&k);
        if (imp__journal_match(imp_journal_find(r->journal, keys[i]), it)) {
            imp__done(r, IMP_JOURNALED, it->targets[i], NULL);
        } else {
            pending[i] = true;
            npending++;
        }
    }
    if (!npending)
        goto out_credit;

    char msg[PATH_MAX + 160];
    int fd = open(it->file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(msg, sizeof(msg), "cannot open %s: %s", it->file, strerror(errno));
        imp__fail_all(r, it, pending, IMP_FAILED, msg);
        goto out_credit;
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    struct imp_sums s;
    uint64_t size;
    int rc = imp__hash(w, fd, &s, &size);
    if (rc == 1)
        goto out_close_fd; /* stopped: the paths stay unfinished */
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "cannot read %s: %s", it->file, strerror(errno));
        imp__fail_all(r, it, pending, IMP_FAILED, msg);
        goto out_credit_fd;
    }
    credited += size;
    if (size != it->size) {
        snprintf(msg, sizeof(msg), "%s changed during the import (%llu bytes, was %llu)", it->file,
                 (unsigned long long)size, (unsigned long long)it->size);
        imp__fail_all(r, it, pending, IMP_FAILED, msg);
        goto out_credit_fd;
    }
    if (it->name) {
        bool is256 = strlen(it->name) == 64;
        const char *got = is256 ? s.sha256 : s.sha1;
        if (strcmp(got, it->name)) {
            snprintf(msg, sizeof(msg), "%s: content %s is %s", it->file, is256 ? "sha256" : "sha1",
                     got);
            imp__fail_all(r, it, pending, IMP_CORRUPT, msg);
            goto out_credit_fd;
        }
    }
    bool sent = false;
    for (int i = 0; i < it->ntargets; i++) {
        if (!pending[i])
            continue;
        if (imp_stop || !imp__one_target(w, it, it->targets[i], keys[i], fd, &s, &sent))
            goto out_close_fd;
    }
    if (sent)
        credited += it->size;

out_credit_fd:
    close(fd);
out_credit:
    if (credit > credited)
        atomic_fetch_add(&r->units_done, credit - credited);
    goto out_free;
out_close_fd:
    close(fd);
out_free:
    for (int i = 0; i < it->ntargets; i++)
        free(keys[i]);
    free(keys);
    free(pending);
}

static void *imp__worker(void *arg)
{
    struct imp_worker *w = arg;
    struct imp_run *r = w->r;
    for (;;) {
        if (imp_stop)
            break;
        size_t i = atomic_fetch_add(&r->next, 1);
        if (i >= r->nitems)
            break;
        imp__do_item(w, &r->items[i]);
    }
    pthread_mutex_lock(&r->mu);
    r->workers_left--;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---- progress and report ---------------------------------------------- */

static void imp__progress(struct imp_run *r, bool tty)
{
    double el = imp__now() - r->t0;
    uint64_t done = atomic_load(&r->units_done) / 2, total = r->units_total / 2;
    if (done > total)
        done = total;
    double rate = el > 0 ? (double)done / el : 0;
    char d[32], t[32], eta[32] = "-";
    imp__human(done, d);
    imp__human(total, t);
    if (rate > 0 && done > 0) {
        long s = (long)((double)(total - done) / rate);
        snprintf(eta, sizeof(eta), "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    }
    fprintf(stderr, "%s%llu/%llu files  %s/%s  %.1f MiB/s  ETA %s%s", tty ? "\r" : "",
            (unsigned long long)atomic_load(&r->files_done), (unsigned long long)r->total_files, d,
            t, rate / (1024.0 * 1024.0), eta, tty ? "\033[K" : "\n");
    fflush(stderr);
}

static void imp__report(struct imp_run *r, double el, bool interrupted)
{
    char sent[32], total[32];
    imp__human(r->st.bytes_sent, sent);
    imp__human(r->total_bytes, total);
    uint64_t left = r->total_files - atomic_load(&r->files_done);
    printf("granaryctl import: %s into %s/%s in %.1f s\n", interrupted ? "INTERRUPTED" : "done",
           r->base, r->o.repo, el);
    printf("  imported         %8llu files, %s sent\n", (unsigned long long)r->st.imported, sent);
    printf("  deduplicated     %8llu files (checksum deploy, no bytes sent)\n",
           (unsigned long long)r->st.dedup);
    printf("  already present  %8llu files (same sha256 in the repository)\n",
           (unsigned long long)r->st.present);
    printf("  journaled        %8llu files (done by an earlier run, not read again)\n",
           (unsigned long long)r->st.journaled);
    printf("  skipped          %8llu (symlinks out of DIR, special files)\n",
           (unsigned long long)r->st.skipped);
    if (r->o.nexcludes)
        printf("  excluded         %8llu (--exclude)\n", (unsigned long long)r->st.excluded);
    printf("  failed           %8llu files\n", (unsigned long long)r->st.failed);
    printf("  corrupt          %8llu files\n", (unsigned long long)r->st.corrupt);
    printf("  retried          %8llu requests sent again (after a 5xx or a network error)\n",
           (unsigned long long)r->st.retried);
    if (interrupted)
        printf("  not done         %8llu files (run again to resume)\n", (unsigned long long)left);
    /* an interrupted run's rate is over what it did */
    double bytes = interrupted ? (double)(atomic_load(&r->units_done) / 2) : (double)r->total_bytes;
    double files = (double)atomic_load(&r->files_done);
    printf("  total            %8llu files, %s, %.1f MiB/s, %.1f files/s\n",
           (unsigned long long)r->total_files, total, el > 0 ? bytes / el / (1024.0 * 1024.0) : 0.0,
           el > 0 ? files / el : 0.0);
    fputs(r->skipped_list.buf, stdout);
    fputs(r->corrupt_list.buf, stdout);
    fputs(r->failed_list.buf, stdout);
    fflush(stdout);
}

/* ---- arguments ------------------------------------------------------- */

static int imp__bad_arg(const char *fmt, const char *a)
{
    fputs("granaryctl import: ", stderr);
    fprintf(stderr, fmt, a);
    fputs("\n(granaryctl import --help lists the options)\n", stderr);
    return 2;
}

static int imp__int_arg(const char *name, const char *v, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi) {
        fprintf(stderr, "granaryctl import: %s must be a number from %d to %d\n", name, lo, hi);
        return 2;
    }
    *out = (int)n;
    return 0;
}

static int imp__parse(struct imp_opts *o, int argc, char **argv)
{
    o->parallel = IMP_PARALLEL_DEFAULT;
    o->retries = IMP_RETRIES_DEFAULT;
    o->progress = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        char flag[64];
        const char *eq = strchr(a, '=');
        if (!strncmp(a, "--", 2) && eq && (size_t)(eq - a) < sizeof(flag)) {
            snprintf(flag, sizeof(flag), "%.*s", (int)(eq - a), a);
            a = flag;
            v = eq + 1;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs("usage: granaryctl import ...\n", stdout);
            imp_usage(stdout);
            exit(0);
        }
        bool boolean =
            !strcmp(a, "--no-overwrite") || !strcmp(a, "--progress") || !strcmp(a, "--no-progress");
        if (boolean) {
            if (v)
                return imp__bad_arg("%s takes no value", a);
            if (!strcmp(a, "--no-overwrite"))
                o->no_overwrite = true;
            else
                o->progress = !strcmp(a, "--progress");
            continue;
        }
        static const char *const valued[] = {
            "--url",     "--user",      "--password-file", "--repo",  "--prefix",
            "--dir",     "--filestore", "--map",           "--state", "--parallel",
            "--retries", "--exclude",   "--limit-rate"};
        bool known = false;
        for (size_t k = 0; k < sizeof(valued) / sizeof(valued[0]); k++)
            known |= !strcmp(a, valued[k]);
        if (!known)
            return imp__bad_arg("unknown option '%s'", a);
        if (!v) {
            if (i + 1 >= argc)
                return imp__bad_arg("%s needs a value", a);
            v = argv[++i];
        }
        const char **s = !strcmp(a, "--url")             ? &o->url
                         : !strcmp(a, "--user")          ? &o->user
                         : !strcmp(a, "--password-file") ? &o->password_file
                         : !strcmp(a, "--repo")          ? &o->repo
                         : !strcmp(a, "--prefix")        ? &o->prefix
                         : !strcmp(a, "--dir")           ? &o->dir
                         : !strcmp(a, "--filestore")     ? &o->filestore
                         : !strcmp(a, "--map")           ? &o->map
                         : !strcmp(a, "--state")         ? &o->state
                                                         : NULL;
        if (s) {
            *s = v;
        } else if (!strcmp(a, "--parallel")) {
            if (imp__int_arg(a, v, 1, IMP_PARALLEL_MAX, &o->parallel))
                return 2;
        } else if (!strcmp(a, "--retries")) {
            if (imp__int_arg(a, v, 0, 100, &o->retries))
                return 2;
        } else if (!strcmp(a, "--limit-rate")) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(v, &end, 10);
            int shift = !*end                                    ? 0
                        : !strcmp(end, "K") || !strcmp(end, "k") ? 10
                        : !strcmp(end, "M") || !strcmp(end, "m") ? 20
                        : !strcmp(end, "G") || !strcmp(end, "g") ? 30
                                                                 : -1;
            if (errno || end == v || *v == '-' || shift < 0 || !n || n > (1ULL << 40))
                return imp__bad_arg("--limit-rate '%s': expected bytes/s such as 500K or 20M", v);
            o->limit_rate = (uint64_t)n << shift;
        } else if (!strcmp(a, "--exclude")) {
            const char **e = realloc(o->excludes, (size_t)(o->nexcludes + 1) * sizeof(*e));
            if (!e)
                return imp__bad_arg("%s: out of memory", a);
            o->excludes = e;
            o->excludes[o->nexcludes++] = v;
        } else {
            return imp__bad_arg("unknown option '%s'", a);
        }
    }
    if (!o->url)
        return imp__bad_arg("%s is required", "--url");
    if (!o->user)
        return imp__bad_arg("%s is required", "--user");
    if (!o->repo)
        return imp__bad_arg("%s is required", "--repo");
    if (!o->dir == !o->filestore)
        return imp__bad_arg("%s", "give either --dir DIR or --filestore DIR --map FILE");
    if (o->filestore && !o->map)
        return imp__bad_arg("%s", "--filestore needs --map FILE");
    if (o->map && !o->filestore)
        return imp__bad_arg("%s", "--map goes with --filestore DIR");
    if (o->nexcludes && o->filestore)
        return imp__bad_arg("%s", "--exclude applies to --dir only");
    return 0;
}

/* Read the password (first line of --password-file, or GRANARY_PASSWORD). */
static char *imp__password(const struct imp_opts *o)
{
    if (!o->password_file) {
        const char *e = getenv("GRANARY_PASSWORD");
        if (!e || !*e) {
            fprintf(stderr, "granaryctl import: give --password-file FILE or set "
                            "GRANARY_PASSWORD\n");
            return NULL;
        }
        return strdup(e);
    }
    FILE *f = fopen(o->password_file, "r");
    if (!f) {
        fprintf(stderr, "granaryctl import: --password-file %s: %s\n", o->password_file,
                strerror(errno));
        return NULL;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    fclose(f);
    if (n > 0)
        line[strcspn(line, "\r\n")] = '\0';
    if (n <= 0 || !line[0]) {
        fprintf(stderr, "granaryctl import: --password-file %s is empty\n", o->password_file);
        free(line);
        return NULL;
    }
    return line;
}

/* Check the inputs and settle the derived settings; 2 on a bad one. */
static int imp__prepare(struct imp_run *r)
{
    struct imp_opts *o = &r->o;
    if (strncmp(o->url, "http://", 7) && strncmp(o->url, "https://", 8))
        return imp__bad_arg("--url %s: expected http://host:port or https://...", o->url);
    r->base = strdup(o->url);
    if (!r->base)
        return 2;
    size_t n = strlen(r->base);
    while (n && r->base[n - 1] == '/')
        r->base[--n] = '\0';
    if (!*o->repo || strchr(o->repo, '/') || imp__bad_name(o->repo))
        return imp__bad_arg("--repo '%s' is not a repository key", o->repo);
    char *pre = strdup(o->prefix ? o->prefix : "");
    if (!pre)
        return 2;
    r->prefix = pre;
    if (*pre) {
        char *p = imp__norm_path(pre);
        if (!p || imp__bad_name(p))
            return imp__bad_arg("--prefix '%s' is not a repository folder path", o->prefix);
        memmove(pre, p, strlen(p) + 1);
    }
    struct stat st;
    if (o->dir) {
        if (stat(o->dir, &st) < 0)
            return imp__bad_arg("--dir %s: no such directory", o->dir);
        if (!S_ISDIR(st.st_mode))
            return imp__bad_arg("--dir %s: not a directory", o->dir);
        if (!(r->root = realpath(o->dir, NULL)))
            return imp__bad_arg("--dir %s: cannot resolve it", o->dir);
    } else {
        if (stat(o->filestore, &st) < 0 || !S_ISDIR(st.st_mode))
            return imp__bad_arg("--filestore %s: no such directory", o->filestore);
        if (stat(o->map, &st) < 0 || !S_ISREG(st.st_mode))
            return imp__bad_arg("--map %s: no such file", o->map);
    }
    return 0;
}

/* The default state file: beside DIR (not inside it) or the map. */
static char *imp__default_state(const struct imp_run *r)
{
    struct gr_sbuf s = GR_SBUF_INIT;
    if (r->root)
        gr_sbuf_adds(&s, strcmp(r->root, "/") ? r->root : "/granary-import");
    else
        gr_sbuf_adds(&s, r->o.map);
    gr_sbuf_adds(&s, IMP_STATE_SUFFIX);
    return gr_sbuf_detach(&s);
}

/* ---- main ------------------------------------------------------------ */

static int imp__run(struct imp_run *r)
{
    /* pre-flight: reach the server, log in, find the repository */
    struct imp_http *h = imp_http_new(&r->srv);
    if (!h)
        return 1;
    struct imp_answer ans;
    int rc = imp_http_repo_check(h, r->o.repo, &ans);
    imp_http_free(h);
    if (rc == IMP_ABSENT) {
        fprintf(stderr, "granaryctl import: repository '%s' not found at %s; create it first\n",
                r->o.repo, r->base);
        return 1;
    }
    if (rc != IMP_OK) {
        if (ans.status == 401)
            fprintf(stderr, "granaryctl import: %s refused user '%s': wrong user or password\n",
                    r->base, r->o.user);
        else
            fprintf(stderr, "granaryctl import: %s: %s\n", r->base, ans.msg);
        return 1;
    }

    /* the scan (which leaves the state file out), then the journal */
    char *state = r->o.state ? strdup(r->o.state) : imp__default_state(r);
    if (!state)
        return 1;
    struct stat st;
    if (stat(state, &st) == 0) {
        r->state_dev = st.st_dev;
        r->state_ino = st.st_ino;
    }
    if (r->root) {
        rc = stat(r->root, &st);
        if (rc == 0) {
            struct imp_ancestor top = {st.st_dev, st.st_ino, NULL};
            rc = imp__scan_dir(r, r->root, "", &top);
        }
        if (rc)
            fprintf(stderr, "granaryctl import: cannot scan %s\n", r->root);
    } else {
        rc = imp__load_map(r);
    }
    if (rc) {
        free(state);
        return 2;
    }
    char err[PATH_MAX + 128];
    if (imp_journal_open(state, &r->journal, err, sizeof(err))) {
        fprintf(stderr, "granaryctl import: %s%s\n", err,
                r->o.state ? "" : "; choose another place with --state FILE");
        free(state);
        return 1;
    }
    bool tty = isatty(STDERR_FILENO);
    bool progress = r->o.progress < 0 ? tty : r->o.progress;
    if (progress) {
        char t[32];
        imp__human(r->units_total / 2, t);
        fprintf(stderr, "granaryctl import: %llu files, %s to check; state in %s\n",
                (unsigned long long)r->total_files, t, state);
    }

    /* the workers */
    int nw = r->o.parallel;
    if ((size_t)nw > r->nitems)
        nw = r->nitems ? (int)r->nitems : 1;
    struct imp_worker *w = calloc((size_t)nw, sizeof(*w));
    if (!w) {
        (void)imp_journal_close(r->journal);
        free(state);
        return 1;
    }
    /* md5 (the slowest of the three digests) on as many threads as cores,
     * as granaryd does: a large file hashes in nearly half the time */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores > 1 && cr_hashpool_start((int)cores, &r->hashpool))
        r->hashpool = NULL;
    r->t0 = imp__now();
    int started = 0;
    for (int i = 0; i < nw; i++) {
        w[i].r = r;
        w[i].http = imp_http_new(&r->srv);
        w[i].buf = malloc(IMP_READ_BUF);
        if (!w[i].http || !w[i].buf)
            break;
        r->workers_left++;
        if (pthread_create(&w[i].tid, NULL, imp__worker, &w[i])) {
            r->workers_left--;
            break;
        }
        started++;
    }
    if (!started) {
        fprintf(stderr, "granaryctl import: cannot start the workers\n");
        imp_stop = 1;
    }
    pthread_mutex_lock(&r->mu);
    double shown = imp__now();
    while (r->workers_left > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        if (r->workers_left > 0 && imp__now() - shown >= 1.0) {
            shown = imp__now();
            pthread_mutex_unlock(&r->mu);
            imp_journal_tick(r->journal);
            if (progress)
                imp__progress(r, tty);
            pthread_mutex_lock(&r->mu);
        }
    }
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < nw; i++) {
        if (i < started)
            pthread_join(w[i].tid, NULL);
        if (w[i].http)
            r->st.retried += imp_http_retried(w[i].http);
        imp_http_free(w[i].http);
        free(w[i].buf);
    }
    free(w);
    cr_hashpool_stop(r->hashpool);
    r->hashpool = NULL;
    double el = imp__now() - r->t0;
    if (progress) {
        imp__progress(r, tty);
        if (tty)
            fputc('\n', stderr);
    }
    if (imp_journal_close(r->journal) < 0)
        fprintf(stderr, "granaryctl import: warning: cannot sync the state file %s: %s\n", state,
                strerror(errno));
    r->journal = NULL;
    bool interrupted = imp_stop != 0;
    imp__report(r, el, interrupted);
    free(state);
    return r->st.failed || r->st.corrupt || interrupted ? 1 : 0;
}

int imp_main(int argc, char **argv)
{
    static struct imp_run run; /* zeroed; the only instance */
    struct imp_run *r = &run;
    int rc = imp__parse(&r->o, argc, argv);
    if (rc)
        goto out;
    if ((rc = imp__prepare(r)))
        goto out;
    if (!(r->password = imp__password(&r->o))) {
        rc = 2;
        goto out;
    }
    r->srv = (struct imp_server){
        .base = r->base,
        .user = r->o.user,
        .password = r->password,
        .retries = r->o.retries,
        /* each transfer gets its share; 1 byte/s at least (0 is no limit) */
        .limit_rate = r->o.limit_rate ? (r->o.limit_rate + (uint64_t)r->o.parallel - 1) /
                                            (uint64_t)r->o.parallel
                                      : 0,
        .stop = &imp_stop,
    };
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    gr_sbuf_init(&r->failed_list);
    gr_sbuf_init(&r->corrupt_list);
    gr_sbuf_init(&r->skipped_list);
    struct sigaction sa = {.sa_handler = imp__on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (imp_http_global_init()) {
        fprintf(stderr, "granaryctl import: cannot initialise libcurl\n");
        rc = 1;
        goto out;
    }
    rc = imp__run(r);
    imp_http_global_cleanup();
    gr_sbuf_release(&r->failed_list);
    gr_sbuf_release(&r->corrupt_list);
    gr_sbuf_release(&r->skipped_list);
out:
    for (size_t i = 0; i < r->nitems; i++) {
        free(r->items[i].file);
        free(r->items[i].name);
        for (int k = 0; k < r->items[i].ntargets; k++)
            free(r->items[i].targets[k]);
        free(r->items[i].targets);
    }
    free(r->items);
    free(r->o.excludes);
    if (r->password)
        explicit_bzero(r->password, strlen(r->password));
    free(r->password);
    free(r->base);
    free(r->prefix);
    free(r->root);
    return rc;
}
