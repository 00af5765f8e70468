/*
 * test_lc.c - unit tests of lmdb-cache (lc.h): reads, the fill-race guard,
 * invalidation, meta values, crash recovery, map full, and a threaded run
 * that checks no read is stale. Each test gets a fresh directory in /tmp.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lc.h"

#define TEST_MAP ((size_t)16 << 20)

struct fx {
    char root[64];
    char dir[128];
    struct lc_env *env;
};

static int rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    strcpy(fx->root, "/tmp/test_lc-XXXXXX");
    if (mkdtemp(fx->root) == NULL) {
        free(fx);
        return -1;
    }
    /* A leaf that does not exist yet: lc_open() creates it. */
    snprintf(fx->dir, sizeof(fx->dir), "%s/cache", fx->root);
    if (lc_open(fx->dir, TEST_MAP, &fx->env) != LC_OK) {
        nftw(fx->root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    lc_close(fx->env);
    nftw(fx->root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static void reopen(struct fx *fx, size_t map_size)
{
    lc_close(fx->env);
    fx->env = NULL;
    assert_int_equal(lc_open(fx->dir, map_size, &fx->env), LC_OK);
}

static void put(struct lc_env *env, const char *key, const char *val)
{
    uint64_t t = lc_fill_token(env, key, strlen(key));
    assert_int_equal(lc_fill(env, key, strlen(key), val, strlen(val), t), LC_OK);
}

static void assert_hit(struct lc_env *env, const char *key, const char *val)
{
    char buf[256];
    size_t vlen = 0;
    assert_int_equal(lc_get(env, key, strlen(key), buf, sizeof(buf), &vlen), LC_OK);
    assert_int_equal(vlen, strlen(val));
    assert_memory_equal(buf, val, vlen);
}

static void assert_miss(struct lc_env *env, const char *key)
{
    char buf[256];
    size_t vlen = 0;
    assert_int_equal(lc_get(env, key, strlen(key), buf, sizeof(buf), &vlen), LC_ENOTFOUND);
}

static bool file_exists(const struct fx *fx, const char *name)
{
    char path[192];
    snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
    return access(path, F_OK) == 0;
}

/* ---- reads and fills ---------------------------------------------------- */

static void lc_get__miss__enotfound(void **state)
{
    struct fx *fx = *state;
    assert_miss(fx->env, "absent");
}

static void lc_fill__then_get__hit(void **state)
{
    struct fx *fx = *state;
    put(fx->env, "repo/a", "value-a");
    assert_hit(fx->env, "repo/a", "value-a");
    put(fx->env, "repo/a", "value-a2"); /* replaces */
    assert_hit(fx->env, "repo/a", "value-a2");
}

static void lc_fill__empty_value__stored(void **state)
{
    struct fx *fx = *state;
    uint64_t t = lc_fill_token(fx->env, "k", 1);
    assert_int_equal(lc_fill(fx->env, "k", 1, NULL, 0, t), LC_OK);
    size_t vlen = 99;
    assert_int_equal(lc_get(fx->env, "k", 1, NULL, 0, &vlen), LC_OK);
    assert_int_equal(vlen, 0);
}

static void lc_get__small_buffer__erange_with_needed_size(void **state)
{
    struct fx *fx = *state;
    put(fx->env, "k", "0123456789");
    char buf[4] = "xyz";
    size_t vlen = 0;
    assert_int_equal(lc_get(fx->env, "k", 1, buf, sizeof(buf), &vlen), LC_ERANGE);
    assert_int_equal(vlen, 10);
    assert_string_equal(buf, "xyz"); /* untouched */
    vlen = 0;
    assert_int_equal(lc_get(fx->env, "k", 1, NULL, 0, &vlen), LC_ERANGE);
    assert_int_equal(vlen, 10);
    char exact[10];
    assert_int_equal(lc_get(fx->env, "k", 1, exact, sizeof(exact), &vlen), LC_OK);
    assert_memory_equal(exact, "0123456789", 10);
}

/* ---- the fill race ------------------------------------------------------ */

static void lc_fill__after_invalidate__refused(void **state)
{
    struct fx *fx = *state;
    uint64_t t = lc_fill_token(fx->env, "k", 1);
    /* the writer commits in PostgreSQL and invalidates, meanwhile */
    struct lc_key k = {"k", 1};
    assert_int_equal(lc_invalidate(fx->env, &k, 1), LC_OK);
    assert_int_equal(lc_fill(fx->env, "k", 1, "old", 3, t), LC_ESTALE);
    assert_miss(fx->env, "k");
    /* a token taken afterwards works */
    put(fx->env, "k", "new");
    assert_hit(fx->env, "k", "new");
}

static void lc_invalidate__key_in_other_bucket__fill_accepted(void **state)
{
    struct fx *fx = *state;
    char other[32];
    bool found = false;
    for (int i = 0; i < 100 && !found; i++) {
        uint64_t t = lc_fill_token(fx->env, "k", 1);
        snprintf(other, sizeof(other), "other-%d", i);
        struct lc_key k = {other, strlen(other)};
        assert_int_equal(lc_invalidate(fx->env, &k, 1), LC_OK);
        if (lc_fill_token(fx->env, "k", 1) != t)
            continue; /* same bucket: try the next key */
        found = true;
        assert_int_equal(lc_fill(fx->env, "k", 1, "v", 1, t), LC_OK);
        assert_hit(fx->env, "k", "v");
    }
    assert_true(found);
}

static void lc_invalidate__several_keys__all_gone(void **state)
{
    struct fx *fx = *state;
    put(fx->env, "a", "1");
    put(fx->env, "b", "2");
    put(fx->env, "c", "3");
    struct lc_key keys[] = {{"a", 1}, {"absent", 6}, {"c", 1}};
    assert_int_equal(lc_invalidate(fx->env, keys, 3), LC_OK);
    assert_miss(fx->env, "a");
    assert_hit(fx->env, "b", "2");
    assert_miss(fx->env, "c");
    assert_int_equal(lc_invalidate(fx->env, NULL, 0), LC_OK);
}

static void lc_invalidate_prefix__deletes_exactly_prefixed_keys(void **state)
{
    struct fx *fx = *state;
    const char *gone[] = {"a/b", "a/b/c", "a/b0", "a/bz", "a/b\xff"};
    const char *kept[] = {"a/", "a/a", "a/a\xff", "a/c", "a", "b/b", "0"};
    for (size_t i = 0; i < 5; i++)
        put(fx->env, gone[i], "g");
    for (size_t i = 0; i < 7; i++)
        put(fx->env, kept[i], "k");
    uint64_t t = lc_fill_token(fx->env, "unrelated", 9);

    assert_int_equal(lc_invalidate_prefix(fx->env, "a/b", 3), LC_OK);
    for (size_t i = 0; i < 5; i++)
        assert_miss(fx->env, gone[i]);
    for (size_t i = 0; i < 7; i++)
        assert_hit(fx->env, kept[i], "k");
    /* every outstanding token is stale, whatever its key */
    assert_int_equal(lc_fill(fx->env, "unrelated", 9, "v", 1, t), LC_ESTALE);
    assert_miss(fx->env, "unrelated");

    /* a prefix that matches nothing, and one past the last key */
    assert_int_equal(lc_invalidate_prefix(fx->env, "zzz", 3), LC_OK);
    assert_int_equal(lc_invalidate_prefix(fx->env, "a/b", 3), LC_OK);
    struct lc_stat st;
    assert_int_equal(lc_stat(fx->env, &st), LC_OK);
    assert_int_equal(st.entries, 7);
}

static void lc_invalidate_prefix__empty_prefix__deletes_all(void **state)
{
    struct fx *fx = *state;
    put(fx->env, "x", "1");
    put(fx->env, "y", "2");
    assert_int_equal(lc_invalidate_prefix(fx->env, NULL, 0), LC_OK);
    assert_miss(fx->env, "x");
    assert_miss(fx->env, "y");
}

static void lc_drop__empties_and_stales_tokens(void **state)
{
    struct fx *fx = *state;
    put(fx->env, "x", "1");
    put(fx->env, "y", "2");
    assert_int_equal(lc_meta_set(fx->env, "m", 7), LC_OK);
    uint64_t t = lc_fill_token(fx->env, "z", 1);
    assert_int_equal(lc_drop(fx->env), LC_OK);
    assert_miss(fx->env, "x");
    assert_miss(fx->env, "y");
    assert_int_equal(lc_fill(fx->env, "z", 1, "3", 1, t), LC_ESTALE);
    uint64_t v = 0;
    assert_int_equal(lc_meta_get(fx->env, "m", &v), LC_OK); /* meta kept */
    assert_int_equal(v, 7);
    put(fx->env, "z", "3");
    assert_hit(fx->env, "z", "3");
}

/* ---- meta, persistence, recovery ---------------------------------------- */

static void lc_meta__set_get_del(void **state)
{
    struct fx *fx = *state;
    uint64_t v = 0;
    assert_int_equal(lc_meta_get(fx->env, "gen", &v), LC_ENOTFOUND);
    assert_int_equal(lc_meta_set(fx->env, "gen", UINT64_MAX - 1), LC_OK);
    assert_int_equal(lc_meta_get(fx->env, "gen", &v), LC_OK);
    assert_true(v == UINT64_MAX - 1);
    assert_int_equal(lc_meta_set(fx->env, "gen", 42), LC_OK);
    assert_int_equal(lc_meta_get(fx->env, "gen", &v), LC_OK);
    assert_int_equal(v, 42);
    assert_int_equal(lc_meta_del(fx->env, "gen"), LC_OK);
    assert_int_equal(lc_meta_get(fx->env, "gen", &v), LC_ENOTFOUND);
    assert_int_equal(lc_meta_del(fx->env, "gen"), LC_OK); /* absent is fine */
    /* meta names and data keys do not collide */
    put(fx->env, "gen", "data");
    assert_int_equal(lc_meta_get(fx->env, "gen", &v), LC_ENOTFOUND);
    /* synced: no unsynced-commit marker left */
    assert_int_equal(lc_meta_set(fx->env, "gen", 1), LC_OK);
    assert_false(file_exists(fx, "lc.dirty"));
}

static void lc_meta__persists_across_reopen(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(lc_meta_set(fx->env, "a", 1), LC_OK);
    assert_int_equal(lc_meta_set(fx->env, "b", 2), LC_OK);
    assert_int_equal(lc_meta_del(fx->env, "b"), LC_OK);
    reopen(fx, TEST_MAP);
    uint64_t v = 0;
    assert_int_equal(lc_meta_get(fx->env, "a", &v), LC_OK);
    assert_int_equal(v, 1);
    assert_int_equal(lc_meta_get(fx->env, "b", &v), LC_ENOTFOUND);
}

static void lc_open__reopen__keeps_data(void **state)
{
    struct fx *fx = *state;
    put(fx->env, "k", "v");
    assert_true(file_exists(fx, "lc.dirty"));
    reopen(fx, 0);
    assert_false(file_exists(fx, "lc.dirty")); /* closed cleanly */
    assert_hit(fx->env, "k", "v");
}

static void lc_open__second_open_of_same_dir__eio(void **state)
{
    struct fx *fx = *state;
    struct lc_env *second = NULL;
    assert_int_equal(lc_open(fx->dir, TEST_MAP, &second), LC_EIO);
    assert_null(second);
}

/* A child opens the cache, writes, and dies without lc_close(). */
static void crash_child(struct fx *fx)
{
    lc_close(fx->env);
    fx->env = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct lc_env *env;
        if (lc_open(fx->dir, TEST_MAP, &env) != LC_OK || lc_meta_set(env, "m", 5) != LC_OK)
            _exit(1);
        uint64_t t = lc_fill_token(env, "k", 1);
        _exit(lc_fill(env, "k", 1, "v", 1, t) == LC_OK ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(file_exists(fx, "lc.dirty"));
}

static void lc_open__process_crashed__keeps_data(void **state)
{
    struct fx *fx = *state;
    crash_child(fx);
    assert_int_equal(lc_open(fx->dir, TEST_MAP, &fx->env), LC_OK);
    assert_hit(fx->env, "k", "v");
    uint64_t v = 0;
    assert_int_equal(lc_meta_get(fx->env, "m", &v), LC_OK);
    assert_int_equal(v, 5);
}

static void lc_open__unsynced_across_reboot__starts_empty(void **state)
{
    struct fx *fx = *state;
    crash_child(fx);
    /* pretend the machine rebooted: the marker names another boot */
    char path[192];
    snprintf(path, sizeof(path), "%s/lc.dirty", fx->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("00000000-0000-0000-0000-000000000000", f);
    assert_int_equal(fclose(f), 0);

    assert_int_equal(lc_open(fx->dir, TEST_MAP, &fx->env), LC_OK);
    assert_miss(fx->env, "k");
    uint64_t v = 0;
    assert_int_equal(lc_meta_get(fx->env, "m", &v), LC_ENOTFOUND);
    put(fx->env, "k", "again");
    assert_hit(fx->env, "k", "again");
}

/* ---- limits and errors -------------------------------------------------- */

static void lc_key__too_long__einval(void **state)
{
    struct fx *fx = *state;
    char key[LC_MAX_KEY + 1];
    memset(key, 'k', sizeof(key));
    char buf[8];
    size_t vlen;
    uint64_t t = lc_fill_token(fx->env, key, LC_MAX_KEY);
    assert_int_equal(lc_fill(fx->env, key, LC_MAX_KEY, "v", 1, t), LC_OK);
    assert_int_equal(lc_get(fx->env, key, LC_MAX_KEY, buf, sizeof(buf), &vlen), LC_OK);

    t = lc_fill_token(fx->env, key, sizeof(key));
    assert_int_equal(lc_fill(fx->env, key, sizeof(key), "v", 1, t), LC_EINVAL);
    assert_int_equal(lc_get(fx->env, key, sizeof(key), buf, sizeof(buf), &vlen), LC_EINVAL);
    assert_int_equal(lc_get(fx->env, key, 0, buf, sizeof(buf), &vlen), LC_EINVAL);
    assert_int_equal(lc_invalidate_prefix(fx->env, key, sizeof(key)), LC_EINVAL);
    /* a key that can never be stored is trivially invalidated */
    struct lc_key k[] = {{key, sizeof(key)}, {key, LC_MAX_KEY}};
    assert_int_equal(lc_invalidate(fx->env, k, 2), LC_OK);
    assert_int_equal(lc_get(fx->env, key, LC_MAX_KEY, buf, sizeof(buf), &vlen), LC_ENOTFOUND);

    char name[LC_MAX_KEY + 2];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    assert_int_equal(lc_meta_set(fx->env, name, 1), LC_EINVAL);
    assert_int_equal(lc_meta_set(fx->env, "", 1), LC_EINVAL);
}

static void lc_args__null__einval(void **state)
{
    struct fx *fx = *state;
    struct lc_env *env = NULL;
    size_t vlen;
    uint64_t v;
    char buf[4];
    assert_int_equal(lc_open(NULL, 0, &env), LC_EINVAL);
    assert_int_equal(lc_open(fx->dir, 0, NULL), LC_EINVAL);
    assert_int_equal(lc_open(fx->dir, 4096, &env), LC_EINVAL); /* map too small */
    assert_int_equal(lc_get(NULL, "k", 1, buf, 4, &vlen), LC_EINVAL);
    assert_int_equal(lc_get(fx->env, "k", 1, buf, 4, NULL), LC_EINVAL);
    assert_int_equal(lc_get(fx->env, "k", 1, NULL, 4, &vlen), LC_EINVAL);
    assert_int_equal(lc_fill(fx->env, "k", 1, NULL, 3, 0), LC_EINVAL);
    assert_int_equal(lc_fill(NULL, "k", 1, "v", 1, 0), LC_EINVAL);
    assert_int_equal(lc_invalidate(fx->env, NULL, 1), LC_EINVAL);
    struct lc_key bad = {NULL, 3};
    assert_int_equal(lc_invalidate(fx->env, &bad, 1), LC_EINVAL);
    assert_int_equal(lc_invalidate_prefix(NULL, "a", 1), LC_EINVAL);
    assert_int_equal(lc_drop(NULL), LC_EINVAL);
    assert_int_equal(lc_meta_get(fx->env, NULL, &v), LC_EINVAL);
    assert_int_equal(lc_meta_get(fx->env, "m", NULL), LC_EINVAL);
    assert_int_equal(lc_sync(NULL), LC_EINVAL);
    assert_int_equal(lc_stat(fx->env, NULL), LC_EINVAL);
    assert_int_equal(lc_fill_token(NULL, "k", 1), 0);
    lc_close(NULL);
}

static void lc_strerror__every_code__text(void **state)
{
    (void)state;
    for (int e = LC_ENOMEM; e <= LC_OK; e++) {
        assert_non_null(lc_strerror(e));
        assert_string_not_equal(lc_strerror(e), "unknown error");
    }
    assert_string_equal(lc_strerror(12345), "unknown error");
}

static void lc_stat__counts_entries_and_space(void **state)
{
    struct fx *fx = *state;
    struct lc_stat st;
    assert_int_equal(lc_stat(fx->env, &st), LC_OK);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.map_size, TEST_MAP);
    uint64_t empty_used = st.used_bytes;
    char key[16], val[1000];
    memset(val, 'v', sizeof(val));
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%03d", i);
        uint64_t t = lc_fill_token(fx->env, key, strlen(key));
        assert_int_equal(lc_fill(fx->env, key, strlen(key), val, sizeof(val), t), LC_OK);
    }
    assert_int_equal(lc_stat(fx->env, &st), LC_OK);
    assert_int_equal(st.entries, 100);
    assert_true(st.used_bytes >= empty_used + 100 * sizeof(val));
    assert_true(st.used_bytes <= st.map_size);
}

static void lc_fill__map_full__efull_and_cache_emptied(void **state)
{
    struct fx *fx = *state;
    reopen(fx, 64 << 10); /* the file is still small: the new size holds */
    assert_int_equal(lc_drop(fx->env), LC_OK);
    char key[16], val[1000];
    memset(val, 'v', sizeof(val));
    int rc = LC_OK, i;
    for (i = 0; i < 10000 && rc == LC_OK; i++) {
        snprintf(key, sizeof(key), "k%05d", i);
        uint64_t t = lc_fill_token(fx->env, key, strlen(key));
        rc = lc_fill(fx->env, key, strlen(key), val, sizeof(val), t);
    }
    assert_int_equal(rc, LC_EFULL);
    assert_true(i > 5);
    struct lc_stat st;
    assert_int_equal(lc_stat(fx->env, &st), LC_OK);
    assert_int_equal(st.entries, 0);
    assert_miss(fx->env, "k00000");
    /* usable afterwards, and meta writes still work */
    put(fx->env, "after", "full");
    assert_hit(fx->env, "after", "full");
    assert_int_equal(lc_meta_set(fx->env, "m", 1), LC_OK);
}

/*
 * An invalidation that cannot be committed must not leave stale data
 * servable. Make the marker path a directory so that no commit can happen.
 */
static void lc_invalidate__cannot_commit__cache_fenced_until_drop(void **state)
{
    struct fx *fx = *state;
    put(fx->env, "k", "v");
    assert_int_equal(lc_sync(fx->env), LC_OK);
    char path[192];
    snprintf(path, sizeof(path), "%s/lc.dirty", fx->dir);
    assert_int_equal(mkdir(path, 0700), 0);

    struct lc_key k = {"k", 1};
    assert_int_equal(lc_invalidate(fx->env, &k, 1), LC_EIO);
    char buf[8];
    size_t vlen;
    assert_int_equal(lc_get(fx->env, "k", 1, buf, sizeof(buf), &vlen), LC_EIO);
    uint64_t t = lc_fill_token(fx->env, "x", 1);
    assert_int_equal(lc_fill(fx->env, "x", 1, "v", 1, t), LC_EIO);
    assert_int_equal(lc_drop(fx->env), LC_EIO);

    assert_int_equal(rmdir(path), 0);
    assert_int_equal(lc_drop(fx->env), LC_OK);
    assert_miss(fx->env, "k");
    put(fx->env, "k", "new");
    assert_hit(fx->env, "k", "new");
}

static void lc_close__while_fenced__files_discarded(void **state)
{
    struct fx *fx = *state;
    put(fx->env, "k", "v");
    assert_int_equal(lc_meta_set(fx->env, "m", 1), LC_OK);
    char path[192];
    snprintf(path, sizeof(path), "%s/lc.dirty", fx->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    struct lc_key k = {"k", 1};
    assert_int_equal(lc_invalidate(fx->env, &k, 1), LC_EIO);
    assert_int_equal(rmdir(path), 0);

    reopen(fx, TEST_MAP); /* a clean restart must not resurrect "k" */
    assert_miss(fx->env, "k");
    uint64_t v;
    assert_int_equal(lc_meta_get(fx->env, "m", &v), LC_ENOTFOUND);
}

/* ---- threads ------------------------------------------------------------ */

#define MT_KEYS 16
#define MT_THREADS 4

/* A stand-in for PostgreSQL: per key, the committed version and the
 * highest version whose invalidation has been acknowledged. */
struct mt {
    struct lc_env *env;
    atomic_bool stop;
    _Atomic uint64_t version[MT_KEYS];
    _Atomic uint64_t acked[MT_KEYS];
    atomic_ulong stale_reads, errors, hits, fills, refused;
};

struct mt_arg {
    struct mt *mt;
    unsigned seed;
};

static void mt_key(char *out, size_t outsz, unsigned k)
{
    snprintf(out, outsz, "key-%02u", k);
}

static void mt_ack(_Atomic uint64_t *acked, uint64_t v)
{
    uint64_t cur = atomic_load(acked);
    while (cur < v && !atomic_compare_exchange_weak(acked, &cur, v))
        ;
}

static void *mt_worker(void *p)
{
    struct mt_arg *arg = p;
    struct mt *mt = arg->mt;
    char key[16];
    while (!atomic_load(&mt->stop)) {
        unsigned r = (unsigned)rand_r(&arg->seed) % 100;
        unsigned k = (unsigned)rand_r(&arg->seed) % MT_KEYS;
        mt_key(key, sizeof(key), k);
        size_t klen = strlen(key);
        if (r < 20) { /* writer: commit, invalidate, acknowledge */
            uint64_t v = atomic_fetch_add(&mt->version[k], 1) + 1;
            struct lc_key lk = {key, klen};
            if (lc_invalidate(mt->env, &lk, 1) != LC_OK)
                atomic_fetch_add(&mt->errors, 1);
            mt_ack(&mt->acked[k], v);
        } else if (r < 50) { /* reader on a miss: token, read, fill */
            uint64_t t = lc_fill_token(mt->env, key, klen);
            uint64_t v = atomic_load(&mt->version[k]);
            if (r & 1)
                sched_yield(); /* widen the race window */
            int rc = lc_fill(mt->env, key, klen, &v, sizeof(v), t);
            if (rc == LC_OK)
                atomic_fetch_add(&mt->fills, 1);
            else if (rc == LC_ESTALE)
                atomic_fetch_add(&mt->refused, 1);
            else
                atomic_fetch_add(&mt->errors, 1);
        } else if (r < 52) { /* an administrative prefix invalidation */
            if (lc_invalidate_prefix(mt->env, "key-1", 5) != LC_OK)
                atomic_fetch_add(&mt->errors, 1);
        } else { /* get: never older than an acknowledged invalidation */
            uint64_t floor = atomic_load(&mt->acked[k]);
            uint64_t v;
            size_t vlen;
            int rc = lc_get(mt->env, key, klen, &v, sizeof(v), &vlen);
            if (rc == LC_OK) {
                atomic_fetch_add(&mt->hits, 1);
                if (vlen != sizeof(v) || v < floor)
                    atomic_fetch_add(&mt->stale_reads, 1);
            } else if (rc != LC_ENOTFOUND) {
                atomic_fetch_add(&mt->errors, 1);
            }
        }
    }
    return NULL;
}

static void lc_threads__fills_invalidations_gets__no_stale_read(void **state)
{
    struct fx *fx = *state;
    static struct mt mt; /* large and zero-initialised */
    memset(&mt, 0, sizeof(mt));
    mt.env = fx->env;
    pthread_t th[MT_THREADS];
    struct mt_arg args[MT_THREADS];
    for (unsigned i = 0; i < MT_THREADS; i++) {
        args[i] = (struct mt_arg){.mt = &mt, .seed = 0x9e3779b9u * (i + 1)};
        assert_int_equal(pthread_create(&th[i], NULL, mt_worker, &args[i]), 0);
    }
    struct timespec half = {.tv_sec = 0, .tv_nsec = 500000000};
    nanosleep(&half, NULL);
    atomic_store(&mt.stop, true);
    for (unsigned i = 0; i < MT_THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);

    print_message("threads: %lu fills, %lu refused, %lu hits\n", atomic_load(&mt.fills),
                  atomic_load(&mt.refused), atomic_load(&mt.hits));
    assert_int_equal(atomic_load(&mt.errors), 0);
    assert_int_equal(atomic_load(&mt.stale_reads), 0);
    assert_true(atomic_load(&mt.fills) > 0);

    struct lc_key keys[MT_KEYS];
    char names[MT_KEYS][16];
    for (unsigned k = 0; k < MT_KEYS; k++) {
        mt_key(names[k], sizeof(names[k]), k);
        keys[k] = (struct lc_key){names[k], strlen(names[k])};
    }
    assert_int_equal(lc_invalidate(fx->env, keys, MT_KEYS), LC_OK);
    for (unsigned k = 0; k < MT_KEYS; k++)
        assert_miss(fx->env, names[k]);
    struct lc_stat st;
    assert_int_equal(lc_stat(fx->env, &st), LC_OK);
    assert_int_equal(st.entries, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(lc_get__miss__enotfound, setup, teardown),
        cmocka_unit_test_setup_teardown(lc_fill__then_get__hit, setup, teardown),
        cmocka_unit_test_setup_teardown(lc_fill__empty_value__stored, setup, teardown),
        cmocka_unit_test_setup_teardown(lc_get__small_buffer__erange_with_needed_size, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(lc_fill__after_invalidate__refused, setup, teardown),
        cmocka_unit_test_setup_teardown(lc_invalidate__key_in_other_bucket__fill_accepted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(lc_invalidate__several_keys__all_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(lc_invalidate_prefix__deletes_exactly_prefixed_keys, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(lc_invalidate_prefix__empty_prefix__deletes_all, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(lc_drop__empties_and_stales_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(lc_meta__set_get_del, setup, teardown),
        cmocka_unit_test_setup_teardown(lc_meta__persists_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(lc_open__reopen__keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(lc_open__second_open_of_same_dir__eio, setup, teardown),
        cmocka_unit_test_setup_teardown(lc_open__process_crashed__keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(lc_open__unsynced_across_reboot__starts_empty, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(lc_key__too_long__einval, setup, teardown),
        cmocka_unit_test_setup_teardown(lc_args__null__einval, setup, teardown),
        cmocka_unit_test(lc_strerror__every_code__text),
        cmocka_unit_test_setup_teardown(lc_stat__counts_entries_and_space, setup, teardown),
        cmocka_unit_test_setup_teardown(lc_fill__map_full__efull_and_cache_emptied, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(lc_invalidate__cannot_commit__cache_fenced_until_drop,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(lc_close__while_fenced__files_discarded, setup, teardown),
        cmocka_unit_test_setup_teardown(lc_threads__fills_invalidations_gets__no_stale_read, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
