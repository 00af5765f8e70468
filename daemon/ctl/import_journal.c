/*
 * import_journal.c - the state file of `granaryctl import`: loaded into an
 * open-addressing hash table at start, appended line by line as paths are
 * done (import_journal.h).
 */
#include "import_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IMP_JOURNAL_SYNC_LINES 64
#define IMP_JOURNAL_SYNC_NS 1000000000LL

struct imp_jslot {
    char *key; /* NULL: empty slot */
    struct imp_jentry e;
};

struct imp_journal {
    struct imp_jslot *slots;
    size_t cap; /* a power of two */
    size_t n;
    FILE *f;
    int fd;
    pthread_mutex_t mu;
    unsigned unsynced;
    long long last_sync_ns;
};

static long long imp_journal__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* FNV-1a */
static size_t imp_journal__hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

static struct imp_jslot *imp_journal__slot(struct imp_jslot *slots, size_t cap, const char *key)
{
    size_t i = imp_journal__hash(key) & (cap - 1);
    while (slots[i].key && strcmp(slots[i].key, key))
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

/* Insert or replace; the table takes key. -1 when out of memory. */
static int imp_journal__put(struct imp_journal *j, char *key, const struct imp_jentry *e)
{
    if ((j->n + 1) * 2 > j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 1024;
        struct imp_jslot *s = calloc(cap, sizeof(*s));
        if (!s)
            return -1;
        for (size_t i = 0; i < j->cap; i++)
            if (j->slots[i].key)
                *imp_journal__slot(s, cap, j->slots[i].key) = j->slots[i];
        free(j->slots);
        j->slots = s;
        j->cap = cap;
    }
    struct imp_jslot *s = imp_journal__slot(j->slots, j->cap, key);
    if (s->key) {
        free(key);
    } else {
        s->key = key;
        j->n++;
    }
    s->e = *e;
    return 0;
}

static bool imp_journal__hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* Parse one line (without its newline) into e and a pointer to its key;
 * false for a malformed or torn line. */
static bool imp_journal__parse(char *line, struct imp_jentry *e, const char **key)
{
    if (strlen(line) < 64 + 1 + 40 + 1 + 1 + 1 + 1 + 1 + 1 || line[64] != ' ' || line[105] != ' ')
        return false;
    if (!imp_journal__hex(line, 64) || !imp_journal__hex(line + 65, 40))
        return false;
    memcpy(e->sha256, line, 64);
    e->sha256[64] = '\0';
    memcpy(e->sha1, line + 65, 40);
    e->sha1[40] = '\0';
    char *p = line + 106, *end;
    errno = 0;
    unsigned long long size = strtoull(p, &end, 10);
    if (end == p || *end != ' ' || errno)
        return false;
    p = end + 1;
    long long mt = strtoll(p, &end, 10);
    if (end == p || *end != ' ' || errno || !end[1])
        return false;
    e->size = size;
    e->mtime_ns = mt;
    *key = end + 1;
    return true;
}

static int imp_journal__load(struct imp_journal *j, char *err, size_t errsz)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    off_t whole = 0; /* bytes of complete lines */
    bool torn = false;
    while ((n = getline(&line, &cap, j->f)) > 0) {
        torn = line[n - 1] != '\n';
        if (torn)
            break; /* a crash mid-line: never trust it */
        whole += n;
        line[n - 1] = '\0';
        struct imp_jentry e;
        const char *key;
        if (line[0] == '#' || !imp_journal__parse(line, &e, &key))
            continue;
        char *k = strdup(key);
        if (!k || imp_journal__put(j, k, &e)) {
            free(k);
            free(line);
            snprintf(err, errsz, "out of memory loading the state file");
            return -1;
        }
    }
    free(line);
    if (ferror(j->f)) {
        snprintf(err, errsz, "cannot read the state file: %s", strerror(errno));
        return -1;
    }
    /* Cut a torn line off: completed by the next append it would be
     * trusted, and it may hold a cut path. */
    if (torn && ftruncate(j->fd, whole) < 0) {
        snprintf(err, errsz, "cannot repair the state file: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int imp_journal_open(const char *path, struct imp_journal **out, char *err, size_t errsz)
{
    struct imp_journal *j = calloc(1, sizeof(*j));
    if (!j) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    j->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (j->fd < 0) {
        snprintf(err, errsz, "state file %s: %s", path, strerror(errno));
        goto out_free;
    }
    if (flock(j->fd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(err, errsz, "state file %s: %s", path,
                 errno == EWOULDBLOCK ? "in use by another granaryctl import" : strerror(errno));
        goto out_close_fd;
    }
    j->f = fdopen(j->fd, "a+");
    if (!j->f) {
        snprintf(err, errsz, "state file %s: %s", path, strerror(errno));
        goto out_close_fd;
    }
    if (imp_journal__load(j, err, errsz))
        goto out_close_file;
    pthread_mutex_init(&j->mu, NULL);
    j->last_sync_ns = imp_journal__now_ns();
    *out = j;
    return 0;

out_close_file:
    fclose(j->f); /* closes fd */
    j->fd = -1;
out_close_fd:
    if (j->fd >= 0)
        close(j->fd);
out_free:
    for (size_t i = 0; i < j->cap; i++)
        free(j->slots[i].key);
    free(j->slots);
    free(j);
    return -1;
}

const struct imp_jentry *imp_journal_find(const struct imp_journal *j, const char *key)
{
    if (!j->n)
        return NULL;
    const struct imp_jslot *s = imp_journal__slot(j->slots, j->cap, key);
    return s->key ? &s->e : NULL;
}

size_t imp_journal_loaded(const struct imp_journal *j)
{
    return j->n;
}

int imp_journal_append(struct imp_journal *j, const char *key, const struct imp_jentry *e)
{
    pthread_mutex_lock(&j->mu);
    int rc = 0;
    if (fprintf(j->f, "%s %s %llu %lld %s\n", e->sha256, e->sha1, (unsigned long long)e->size,
                (long long)e->mtime_ns, key) < 0 ||
        fflush(j->f) == EOF)
        rc = -1;
    long long now = imp_journal__now_ns();
    if (rc == 0 &&
        (++j->unsynced >= IMP_JOURNAL_SYNC_LINES || now - j->last_sync_ns >= IMP_JOURNAL_SYNC_NS)) {
        if (fdatasync(j->fd) < 0)
            rc = -1;
        j->unsynced = 0;
        j->last_sync_ns = now;
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

void imp_journal_tick(struct imp_journal *j)
{
    pthread_mutex_lock(&j->mu);
    long long now = imp_journal__now_ns();
    if (j->unsynced && now - j->last_sync_ns >= IMP_JOURNAL_SYNC_NS) {
        (void)fdatasync(j->fd); /* a failure shows again at close */
        j->unsynced = 0;
        j->last_sync_ns = now;
    }
    pthread_mutex_unlock(&j->mu);
}

int imp_journal_close(struct imp_journal *j)
{
    if (!j)
        return 0;
    int rc = 0;
    if (fflush(j->f) == EOF || fdatasync(j->fd) < 0)
        rc = -1;
    fclose(j->f); /* also drops the flock */
    pthread_mutex_destroy(&j->mu);
    for (size_t i = 0; i < j->cap; i++)
        free(j->slots[i].key);
    free(j->slots);
    free(j);
    return rc;
}
