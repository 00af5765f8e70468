/*
 * test_bs.c - unit tests of the local blobstore (bs.h): directory layout,
 * crash leftovers, upload commit/abort, deduplication, reads, hash
 * validation, a write that fails half-way (RLIMIT_FSIZE standing in for a
 * full disk), CRC32C (hardware against software), sidecars and checked
 * reads, corruption, staging, quarantine, delete, the ordered walk and the
 * store id. Each test gets a fresh store in a /tmp directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bs.h"

/* sha256 of "abc" and of "" (the store trusts them; real values anyway) */
#define SHA_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* a well-formed hash nothing in these tests stores */
#define SHA_ABSENT "0000000000000000000000000000000000000000000000000000000000000000"

struct fx {
    char root[64];
    char dir[128]; /* the store: <root>/fs, created by bs_open() */
    char pre[160];
    struct bs_store *bs;
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
    strcpy(fx->root, "/tmp/test_bs-XXXXXX");
    if (mkdtemp(fx->root) == NULL) {
        free(fx);
        return -1;
    }
    snprintf(fx->dir, sizeof(fx->dir), "%s/fs", fx->root);
    snprintf(fx->pre, sizeof(fx->pre), "%s/_pre", fx->dir);
    if (bs_open(fx->dir, &fx->bs) != BS_OK) {
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
    bs_close(fx->bs);
    nftw(fx->root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

/* Entries of a directory, "." and ".." excluded; -1 if it cannot be read. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void blob_path(const struct fx *fx, const char *sha, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%.2s/%s", fx->dir, sha, sha);
}

/* Read a whole file into a malloc'ed buffer; *len gets its size. */
static char *slurp_fd(int fd, size_t *len)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    char *buf = malloc((size_t)st.st_size + 1);
    assert_non_null(buf);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);
        assert_true(r > 0);
        got += (size_t)r;
    }
    *len = got;
    return buf;
}

static char *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    char *buf = slurp_fd(fd, len);
    close(fd);
    return buf;
}

static void store(struct fx *fx, const char *sha, const void *data, size_t len, bool *existed)
{
    struct bs_upload *u = NULL;
    assert_int_equal(bs_upload_begin(fx->bs, &u), BS_OK);
    assert_int_equal(bs_upload_write(u, data, len), BS_OK);
    assert_int_equal(bs_upload_commit(u, sha, existed), BS_OK);
}

/* ---- bs_open -------------------------------------------------------------- */

static void bs_open__missing_dir__creates_root_and_pre(void **state)
{
    struct fx *fx = *state;
    struct stat st;
    assert_int_equal(stat(fx->dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777 & ~0750, 0);
    assert_int_equal(stat(fx->pre, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(count_entries(fx->pre), 0);
}

static void bs_open__existing_store__reopens_with_blobs(void **state)
{
    struct fx *fx = *state;
    store(fx, SHA_ABC, "abc", 3, NULL);
    bs_close(fx->bs);
    fx->bs = NULL;
    assert_int_equal(bs_open(fx->dir, &fx->bs), BS_OK);
    assert_true(bs_has(fx->bs, SHA_ABC));
}

static void bs_open__leftovers_in_pre__removed(void **state)
{
    struct fx *fx = *state;
    store(fx, SHA_ABC, "abc", 3, NULL);
    /* a crashed process: an unfinished upload and a foreign temp file */
    struct bs_upload *u = NULL;
    assert_int_equal(bs_upload_begin(fx->bs, &u), BS_OK);
    assert_int_equal(bs_upload_write(u, "half", 4), BS_OK);
    char path[256];
    snprintf(path, sizeof(path), "%s/12345-7", fx->pre);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("partial", f);
    fclose(f);
    assert_int_equal(count_entries(fx->pre), 2);

    struct bs_store *again = NULL;
    assert_int_equal(bs_open(fx->dir, &again), BS_OK);
    assert_int_equal(count_entries(fx->pre), 0);
    assert_true(bs_has(again, SHA_ABC));
    bs_close(again);
    bs_upload_abort(u); /* its file is already gone: must not fail */
    assert_int_equal(count_entries(fx->pre), 0);
}

static void bs_open__parent_missing__eio(void **state)
{
    struct fx *fx = *state;
    char dir[200];
    struct bs_store *bs = NULL;
    snprintf(dir, sizeof(dir), "%s/no/such/parent", fx->root);
    assert_int_equal(bs_open(dir, &bs), BS_EIO);
    assert_null(bs);
}

static void bs_open__root_is_a_file__eio(void **state)
{
    struct fx *fx = *state;
    char path[200];
    struct bs_store *bs = NULL;
    snprintf(path, sizeof(path), "%s/file", fx->root);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(bs_open(path, &bs), BS_EIO);
    assert_null(bs);
}

/* ---- uploads -------------------------------------------------------------- */

static void bs_upload__write_commit__file_under_hash(void **state)
{
    struct fx *fx = *state;
    struct bs_upload *u = NULL;
    bool existed = true;
    assert_int_equal(bs_upload_begin(fx->bs, &u), BS_OK);
    assert_int_equal(count_entries(fx->pre), 1);
    assert_int_equal(bs_upload_write(u, "a", 1), BS_OK);
    assert_int_equal(bs_upload_write(u, "bc", 2), BS_OK);
    assert_int_equal(bs_upload_size(u), 3);
    assert_int_equal(bs_upload_commit(u, SHA_ABC, &existed), BS_OK);
    assert_false(existed);

    char path[256];
    size_t len;
    blob_path(fx, SHA_ABC, path, sizeof(path));
    char *got = slurp(path, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(got, "abc", 3);
    free(got);
    assert_int_equal(count_entries(fx->pre), 0);
    assert_true(bs_has(fx->bs, SHA_ABC));
}

static void bs_upload__many_chunks__bytes_intact(void **state)
{
    struct fx *fx = *state;
    enum { TOTAL = 1 << 20, CHUNK = 4093 };
    unsigned char *data = malloc(TOTAL);
    assert_non_null(data);
    for (size_t i = 0; i < TOTAL; i++)
        data[i] = (unsigned char)(i * 31 + (i >> 11));
    struct bs_upload *u = NULL;
    assert_int_equal(bs_upload_begin(fx->bs, &u), BS_OK);
    for (size_t off = 0; off < TOTAL; off += CHUNK) {
        size_t n = TOTAL - off < CHUNK ? TOTAL - off : CHUNK;
        assert_int_equal(bs_upload_write(u, data + off, n), BS_OK);
    }
    assert_int_equal(bs_upload_size(u), TOTAL);
    const char *sha = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
    assert_int_equal(bs_upload_commit(u, sha, NULL), BS_OK);

    int fd = -1;
    uint64_t size = 0;
    assert_int_equal(bs_open_blob(fx->bs, sha, &fd, &size), BS_OK);
    assert_int_equal(size, TOTAL);
    size_t len;
    char *got = slurp_fd(fd, &len);
    close(fd);
    assert_int_equal(len, TOTAL);
    assert_memory_equal(got, data, TOTAL);
    free(got);
    free(data);
}

static void bs_upload__empty__committed(void **state)
{
    struct fx *fx = *state;
    struct bs_upload *u = NULL;
    assert_int_equal(bs_upload_begin(fx->bs, &u), BS_OK);
    assert_int_equal(bs_upload_write(u, "", 0), BS_OK);
    assert_int_equal(bs_upload_size(u), 0);
    assert_int_equal(bs_upload_commit(u, SHA_EMPTY, NULL), BS_OK);
    int fd = -1;
    uint64_t size = 99;
    assert_int_equal(bs_open_blob(fx->bs, SHA_EMPTY, &fd, &size), BS_OK);
    assert_int_equal(size, 0);
    close(fd);
}

static void bs_upload__same_content_twice__existed_one_file(void **state)
{
    struct fx *fx = *state;
    bool existed = true;
    store(fx, SHA_ABC, "abc", 3, &existed);
    assert_false(existed);
    store(fx, SHA_ABC, "abc", 3, &existed);
    assert_true(existed);
    store(fx, SHA_ABC, "abc", 3, NULL); /* existed may be NULL */

    char sub[200];
    snprintf(sub, sizeof(sub), "%s/ba", fx->dir);
    assert_int_equal(count_entries(sub), 2); /* the data and its sidecar */
    assert_int_equal(count_entries(fx->pre), 0);
    char path[256];
    size_t len;
    blob_path(fx, SHA_ABC, path, sizeof(path));
    char *got = slurp(path, &len);
    assert_int_equal(len, 3);
    free(got);
}

static void bs_upload__existing_copy__kept_in_place(void **state)
{
    struct fx *fx = *state;
    bool existed = false;
    char path[256];
    struct stat before, after;
    store(fx, SHA_ABC, "abc", 3, NULL);
    blob_path(fx, SHA_ABC, path, sizeof(path));
    assert_int_equal(stat(path, &before), 0);
    store(fx, SHA_ABC, "abc", 3, &existed);
    assert_true(existed);
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);
}

static void bs_upload__abort__temp_file_removed(void **state)
{
    struct fx *fx = *state;
    struct bs_upload *u = NULL;
    assert_int_equal(bs_upload_begin(fx->bs, &u), BS_OK);
    assert_int_equal(bs_upload_write(u, "abc", 3), BS_OK);
    assert_int_equal(count_entries(fx->pre), 1);
    bs_upload_abort(u);
    assert_int_equal(count_entries(fx->pre), 0);
    assert_false(bs_has(fx->bs, SHA_ABC));
    assert_int_equal(count_entries(fx->dir), 2); /* only _pre and STORE_ID */
    bs_upload_abort(NULL);
}

static void bs_upload__interleaved__independent(void **state)
{
    struct fx *fx = *state;
    struct bs_upload *a = NULL, *b = NULL;
    assert_int_equal(bs_upload_begin(fx->bs, &a), BS_OK);
    assert_int_equal(bs_upload_begin(fx->bs, &b), BS_OK);
    assert_int_equal(count_entries(fx->pre), 2);
    assert_int_equal(bs_upload_write(a, "ab", 2), BS_OK);
    assert_int_equal(bs_upload_write(b, "xyz", 3), BS_OK);
    assert_int_equal(bs_upload_write(a, "c", 1), BS_OK);
    assert_int_equal(bs_upload_size(a), 3);
    assert_int_equal(bs_upload_size(b), 3);
    bs_upload_abort(b);
    assert_int_equal(bs_upload_commit(a, SHA_ABC, NULL), BS_OK);
    assert_true(bs_has(fx->bs, SHA_ABC));
    assert_int_equal(count_entries(fx->pre), 0);
}

static void bs_upload__commit_invalid_sha__einval_no_temp_left(void **state)
{
    struct fx *fx = *state;
    static const char *const bad[] = {
        "",
        "abc",
        "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a",
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0",
        "../../../../../../../../../../../../../../../../../../../etc/pwd",
        "ba/816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct bs_upload *u = NULL;
        bool existed = true;
        assert_int_equal(bs_upload_begin(fx->bs, &u), BS_OK);
        assert_int_equal(bs_upload_write(u, "abc", 3), BS_OK);
        assert_int_equal(bs_upload_commit(u, bad[i], &existed), BS_EINVAL);
        assert_false(existed);
        assert_int_equal(count_entries(fx->pre), 0);
    }
    assert_int_equal(count_entries(fx->dir), 2); /* _pre, STORE_ID: no <aa>/ made */
}

/* ---- reads ---------------------------------------------------------------- */

static void bs_open_blob__stored__fd_and_size(void **state)
{
    struct fx *fx = *state;
    store(fx, SHA_ABC, "abc", 3, NULL);
    int fd = -1;
    uint64_t size = 0;
    assert_int_equal(bs_open_blob(fx->bs, SHA_ABC, &fd, &size), BS_OK);
    assert_true(fd >= 0);
    assert_int_equal(size, 3);
    char buf[8];
    assert_int_equal(read(fd, buf, sizeof(buf)), 3);
    assert_memory_equal(buf, "abc", 3);
    /* read-only */
    assert_int_equal(write(fd, "x", 1), -1);
    close(fd);
}

static void bs_open_blob__absent__enotfound(void **state)
{
    struct fx *fx = *state;
    int fd = -1;
    uint64_t size = 0;
    assert_int_equal(bs_open_blob(fx->bs, SHA_ABSENT, &fd, &size), BS_ENOTFOUND);
    assert_int_equal(fd, -1);
}

static void bs_open_blob__invalid_sha__einval(void **state)
{
    struct fx *fx = *state;
    int fd = -1;
    uint64_t size = 0;
    assert_int_equal(bs_open_blob(fx->bs, "", &fd, &size), BS_EINVAL);
    assert_int_equal(bs_open_blob(fx->bs, "_pre", &fd, &size), BS_EINVAL);
    assert_int_equal(
        bs_open_blob(fx->bs, "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
                     &fd, &size),
        BS_EINVAL);
    assert_int_equal(fd, -1);
}

static void bs_has__cases__as_stored(void **state)
{
    struct fx *fx = *state;
    assert_false(bs_has(fx->bs, SHA_ABC));
    store(fx, SHA_ABC, "abc", 3, NULL);
    assert_true(bs_has(fx->bs, SHA_ABC));
    assert_false(bs_has(fx->bs, SHA_ABSENT));
    assert_false(bs_has(fx->bs, "ba"));
    assert_false(bs_has(fx->bs, ""));
    assert_false(bs_has(fx->bs, "_pre"));
}

static void bs_free_bytes__store__positive(void **state)
{
    struct fx *fx = *state;
    assert_true(bs_free_bytes(fx->bs) > 0);
}

/* ---- bs_valid_sha256 / bs_strerror ---------------------------------------- */

static void bs_valid_sha256__cases__lowercase_64_hex_only(void **state)
{
    (void)state;
    assert_true(bs_valid_sha256(SHA_ABC));
    assert_true(bs_valid_sha256(SHA_EMPTY));
    assert_true(bs_valid_sha256(SHA_ABSENT));
    assert_true(
        bs_valid_sha256("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"));
    assert_false(bs_valid_sha256(""));
    assert_false(bs_valid_sha256("ab"));
    /* 63 and 65 characters */
    assert_false(
        bs_valid_sha256("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a"));
    assert_false(
        bs_valid_sha256("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0"));
    assert_false(
        bs_valid_sha256("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad/"));
    /* uppercase, non-hex, separators */
    assert_false(
        bs_valid_sha256("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
    assert_false(
        bs_valid_sha256("Ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    assert_false(
        bs_valid_sha256("ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    assert_false(
        bs_valid_sha256("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a "));
    assert_false(
        bs_valid_sha256("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f2001/.."));
    assert_false(
        bs_valid_sha256("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a\xc3"));
}

static void bs_strerror__every_code__text(void **state)
{
    (void)state;
    static const int codes[] = {BS_OK,     BS_ENOTFOUND, BS_EIO,      BS_ENOSPC,
                                BS_EINVAL, BS_ENOMEM,    BS_ECORRUPT, BS_ENOCRC};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *s = bs_strerror(codes[i]);
        assert_non_null(s);
        assert_true(s[0] != '\0');
        assert_string_not_equal(s, "unknown error");
    }
    assert_string_equal(bs_strerror(-999), "unknown error");
}

/* ---- a write that fails half-way ------------------------------------------ */

/*
 * RLIMIT_FSIZE stands in for a full disk without root-only mounts: with
 * SIGXFSZ ignored, a write past the limit fails with EFBIG. The store must
 * report BS_EIO (or BS_ENOSPC), stay abortable, and show nothing under the
 * hash. The limit is restored before any assertion can longjmp away.
 */
static void bs_upload_write__file_size_limit__error_nothing_visible(void **state)
{
    struct fx *fx = *state;
    enum { LIMIT = 16 << 10, TOTAL = 64 << 10 };
    char *data = calloc(1, TOTAL);
    assert_non_null(data);
    struct bs_upload *u = NULL;
    assert_int_equal(bs_upload_begin(fx->bs, &u), BS_OK);

    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    if (old.rlim_cur != RLIM_INFINITY && old.rlim_cur < TOTAL) {
        bs_upload_abort(u);
        free(data);
        skip();
    }
    struct sigaction ign = {.sa_handler = SIG_IGN}, oldsa;
    sigemptyset(&ign.sa_mask);
    assert_int_equal(sigaction(SIGXFSZ, &ign, &oldsa), 0);
    lim = old;
    lim.rlim_cur = LIMIT;
    int lrc = setrlimit(RLIMIT_FSIZE, &lim);
    int wrc = bs_upload_write(u, data, TOTAL);
    int err = errno;
    uint64_t written = bs_upload_size(u);
    setrlimit(RLIMIT_FSIZE, &old);
    sigaction(SIGXFSZ, &oldsa, NULL);
    free(data);

    assert_int_equal(lrc, 0);
    if (wrc != BS_EIO && wrc != BS_ENOSPC)
        fail_msg("write past RLIMIT_FSIZE: rc %d (errno %d), want BS_EIO or BS_ENOSPC", wrc, err);
    assert_true(written <= LIMIT);
    assert_int_equal(count_entries(fx->pre), 1);
    bs_upload_abort(u);
    assert_int_equal(count_entries(fx->pre), 0);
    assert_false(bs_has(fx->bs, SHA_ABSENT));
    assert_int_equal(count_entries(fx->dir), 2); /* _pre, STORE_ID: nothing under a hash */
}

/* ---- CRC32C ---------------------------------------------------------------- */

/* xorshift64*: repeatable test data without libc's rand() */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

static unsigned char *random_bytes(size_t len, uint64_t seed)
{
    unsigned char *b = malloc(len ? len : 1);
    assert_non_null(b);
    uint64_t s = seed | 1;
    for (size_t i = 0; i < len; i++)
        b[i] = (unsigned char)(rnd(&s) >> 56);
    return b;
}

typedef uint32_t crc_fn(uint32_t, const void *, size_t);

static void bs_crc32c__known_vectors__match(void **state)
{
    (void)state;
    crc_fn *fns[] = {bs_crc32c, bs_crc32c_sw, bs_crc32c_hw};
    unsigned char zeros[32] = {0}, ones[32], inc[32], dec[32];
    for (int i = 0; i < 32; i++) {
        ones[i] = 0xff;
        inc[i] = (unsigned char)i;
        dec[i] = (unsigned char)(31 - i);
    }
    for (size_t f = 0; f < 3; f++) {
        assert_int_equal(fns[f](0, "123456789", 9), 0xE3069283u);
        assert_int_equal(fns[f](0, "", 0), 0);
        /* RFC 3720 B.4 */
        assert_int_equal(fns[f](0, zeros, 32), 0x8A9136AAu);
        assert_int_equal(fns[f](0, ones, 32), 0x62A8AB43u);
        assert_int_equal(fns[f](0, inc, 32), 0x46DD794Eu);
        assert_int_equal(fns[f](0, dec, 32), 0x113FDB5Cu);
        /* chaining */
        assert_int_equal(fns[f](fns[f](0, "1234", 4), "56789", 5), 0xE3069283u);
    }
}

static void bs_crc32c__hw_and_sw_random__agree(void **state)
{
    (void)state;
    enum { LEN = 3 << 20 };
    unsigned char *b = random_bytes(LEN, 42);
    uint64_t s = 7;
    if (!bs_crc32c_has_hw())
        print_message("no SSE4.2 here: the hardware path is the software one\n");
    /* every length around the interleave sizes, at every alignment */
    static const size_t lens[] = {0,     1,     7,     8,     9,       255,    256,   767,
                                  768,   769,   1000,  4096,  24575,   24576,  24577, 65535,
                                  65536, 65537, 98304, 99999, 1 << 20, LEN - 8};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
        for (size_t a = 0; a < 8; a++)
            assert_int_equal(bs_crc32c_hw(0, b + a, lens[i]), bs_crc32c_sw(0, b + a, lens[i]));
    for (int i = 0; i < 2000; i++) {
        size_t off = (size_t)(rnd(&s) % LEN);
        size_t len = (size_t)(rnd(&s) % (LEN - off + 1));
        if (i % 2)
            len %= 100000;
        uint32_t seed = (uint32_t)rnd(&s);
        uint32_t sw = bs_crc32c_sw(seed, b + off, len);
        assert_int_equal(bs_crc32c_hw(seed, b + off, len), sw);
        assert_int_equal(bs_crc32c(seed, b + off, len), sw);
        /* split anywhere: the same CRC */
        size_t cut = len ? (size_t)(rnd(&s) % len) : 0;
        assert_int_equal(bs_crc32c_hw(bs_crc32c_hw(seed, b + off, cut), b + off + cut, len - cut),
                         sw);
    }
    free(b);
}

/* ---- sidecars and checked reads ------------------------------------------- */

/* A well-formed, distinct fake hash for test number i. */
static void fake_sha(unsigned i, char out[65])
{
    snprintf(out, 65, "%08x%056x", i * 2654435761u, i);
}

static void store_chunked(struct fx *fx, const char *sha, const unsigned char *data, size_t len,
                          size_t chunk)
{
    struct bs_upload *u = NULL;
    assert_int_equal(bs_upload_begin(fx->bs, &u), BS_OK);
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        assert_int_equal(bs_upload_write(u, data + off, n), BS_OK);
    }
    assert_int_equal(bs_upload_commit(u, sha, NULL), BS_OK);
}

static void crc_path(const struct fx *fx, const char *sha, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%.2s/%s.crc", fx->dir, sha, sha);
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Overwrite one byte of a file at off with its complement. */
static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, off), 1);
    c = (unsigned char)~c;
    assert_int_equal(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

static void bs_upload_commit__sidecar__format_as_documented(void **state)
{
    struct fx *fx = *state;
    enum { LEN = 2 * BS_BLOCK + 5 };
    unsigned char *data = random_bytes(LEN, 1);
    char sha[65], path[256];
    fake_sha(1, sha);
    store_chunked(fx, sha, data, LEN, 1000);
    crc_path(fx, sha, path, sizeof(path));
    size_t len;
    unsigned char *c = (unsigned char *)slurp(path, &len);
    assert_int_equal(len, 20 + 3 * 4 + 4);
    assert_memory_equal(c, "GRCRC1\0\0", 8);
    assert_int_equal(le32(c + 8), BS_BLOCK);
    assert_int_equal(le32(c + 12), LEN);
    assert_int_equal(le32(c + 16), 0);
    assert_int_equal(le32(c + 20), bs_crc32c(0, data, BS_BLOCK));
    assert_int_equal(le32(c + 24), bs_crc32c(0, data + BS_BLOCK, BS_BLOCK));
    assert_int_equal(le32(c + 28), bs_crc32c(0, data + 2 * BS_BLOCK, 5));
    assert_int_equal(le32(c + 32), bs_crc32c(0, c, 32));
    free(c);
    free(data);
    assert_int_equal(count_entries(fx->pre), 0);
}

static void bs_blob_read__every_size__content_intact(void **state)
{
    struct fx *fx = *state;
    static const size_t sizes[] = {0,
                                   1,
                                   BS_BLOCK - 1,
                                   BS_BLOCK,
                                   BS_BLOCK + 1,
                                   2 * BS_BLOCK,
                                   3 * BS_BLOCK + 100,
                                   20 * BS_BLOCK};
    static const size_t chunks[] = {7777, BS_BLOCK, 1 << 20};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t len = sizes[i];
        unsigned char *data = random_bytes(len, i + 10);
        char sha[65], path[256];
        fake_sha((unsigned)(100 + i), sha);
        store_chunked(fx, sha, data, len, chunks[i % 3]);
        crc_path(fx, sha, path, sizeof(path));
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, 24 + 4 * ((len + BS_BLOCK - 1) / BS_BLOCK));

        struct bs_blob *b = NULL;
        assert_int_equal(bs_blob_open(fx->bs, sha, &b), BS_OK);
        assert_int_equal(bs_blob_size(b), len);
        assert_true(bs_blob_fd(b) >= 0);
        unsigned char *got = malloc(len + 1);
        assert_non_null(got);
        /* aligned block-sized reads, as a download does */
        size_t off = 0;
        for (;;) {
            size_t want = len - off < BS_BLOCK ? BS_BLOCK : BS_BLOCK; /* may pass EOF */
            ssize_t r = bs_blob_read(b, off, got + off, off + want > len ? len - off : want);
            assert_true(r >= 0);
            if (r == 0)
                break;
            off += (size_t)r;
        }
        assert_int_equal(off, len);
        assert_memory_equal(got, data, len);
        /* one read of everything, asking for more than there is */
        unsigned char *all = malloc(len + 4096);
        assert_non_null(all);
        assert_int_equal(bs_blob_read(b, 0, all, len + 4096), (ssize_t)len);
        assert_memory_equal(all, data, len);
        assert_int_equal(bs_blob_read(b, len, all, 10), 0);
        assert_int_equal(bs_blob_read(b, len + 12345, all, 10), 0);
        free(all);
        bs_blob_close(b);
        assert_int_equal(bs_verify_blocks(fx->bs, sha), BS_OK);
        free(got);
        free(data);
    }
    bs_blob_close(NULL);
}

static void bs_blob_read__unaligned_ranges__match(void **state)
{
    struct fx *fx = *state;
    enum { LEN = 5 * BS_BLOCK + 123 };
    unsigned char *data = random_bytes(LEN, 3);
    char sha[65];
    fake_sha(3, sha);
    store_chunked(fx, sha, data, LEN, 65521);
    struct bs_blob *b = NULL;
    assert_int_equal(bs_blob_open(fx->bs, sha, &b), BS_OK);
    unsigned char *buf = malloc(LEN + 100);
    assert_non_null(buf);
    /* edges: one byte each side of every block boundary */
    for (size_t k = 1; k <= 5; k++) {
        size_t off = k * BS_BLOCK - 1;
        assert_int_equal(bs_blob_read(b, off, buf, 2), 2);
        assert_memory_equal(buf, data + off, 2);
    }
    uint64_t s = 99;
    for (int i = 0; i < 500; i++) {
        size_t off = (size_t)(rnd(&s) % (LEN + 10));
        size_t len = (size_t)(rnd(&s) % (i % 4 == 0 ? LEN : 3 * BS_BLOCK));
        ssize_t want = off >= LEN ? 0 : (ssize_t)(LEN - off < len ? LEN - off : len);
        assert_int_equal(bs_blob_read(b, off, buf, len), want);
        if (want > 0)
            assert_memory_equal(buf, data + off, (size_t)want);
    }
    free(buf);
    bs_blob_close(b);
    free(data);
}

static void bs_blob_read__flipped_byte__only_that_block_ecorrupt(void **state)
{
    struct fx *fx = *state;
    enum { LEN = 4 * BS_BLOCK };
    unsigned char *data = random_bytes(LEN, 4);
    char sha[65], path[256];
    fake_sha(4, sha);
    store_chunked(fx, sha, data, LEN, BS_BLOCK);
    assert_int_equal(bs_verify_blocks(fx->bs, sha), BS_OK);
    blob_path(fx, sha, path, sizeof(path));
    flip_byte(path, 2 * BS_BLOCK + 1000);

    struct bs_blob *b = NULL;
    assert_int_equal(bs_blob_open(fx->bs, sha, &b), BS_OK);
    unsigned char *buf = malloc(LEN);
    assert_non_null(buf);
    assert_int_equal(bs_blob_read(b, 2 * BS_BLOCK, buf, BS_BLOCK), BS_ECORRUPT);
    assert_int_equal(bs_blob_read(b, 2 * BS_BLOCK + 5, buf, 10), BS_ECORRUPT);
    assert_int_equal(bs_blob_read(b, BS_BLOCK + 10, buf, BS_BLOCK), BS_ECORRUPT);
    assert_int_equal(bs_blob_read(b, 0, buf, LEN), BS_ECORRUPT);
    for (size_t k = 0; k < 4; k++) {
        if (k == 2)
            continue;
        assert_int_equal(bs_blob_read(b, k * BS_BLOCK, buf, BS_BLOCK), BS_BLOCK);
        assert_memory_equal(buf, data + k * BS_BLOCK, BS_BLOCK);
        assert_int_equal(bs_blob_read(b, k * BS_BLOCK + 3, buf, 100), 100);
    }
    assert_int_equal(bs_blob_read(b, 0, buf, 2 * BS_BLOCK), 2 * BS_BLOCK);
    bs_blob_close(b);
    assert_int_equal(bs_verify_blocks(fx->bs, sha), BS_ECORRUPT);
    free(buf);
    free(data);
}

static void bs_blob_read__file_truncated_after_open__ecorrupt(void **state)
{
    struct fx *fx = *state;
    enum { LEN = 2 * BS_BLOCK + 10 };
    unsigned char *data = random_bytes(LEN, 5);
    char sha[65], path[256];
    fake_sha(5, sha);
    store_chunked(fx, sha, data, LEN, LEN);
    struct bs_blob *b = NULL;
    assert_int_equal(bs_blob_open(fx->bs, sha, &b), BS_OK);
    blob_path(fx, sha, path, sizeof(path));
    assert_int_equal(truncate(path, BS_BLOCK + 7), 0);
    unsigned char *buf = malloc(LEN);
    assert_non_null(buf);
    assert_int_equal(bs_blob_read(b, 0, buf, BS_BLOCK), BS_BLOCK);
    assert_int_equal(bs_blob_read(b, BS_BLOCK, buf, BS_BLOCK), BS_ECORRUPT);
    assert_int_equal(bs_blob_read(b, 2 * BS_BLOCK, buf, 10), BS_ECORRUPT);
    bs_blob_close(b);
    /* the sidecar now describes another size */
    assert_int_equal(bs_blob_open(fx->bs, sha, &b), BS_ENOCRC);
    free(buf);
    free(data);
}

static void bs_blob_open__sidecar_missing_or_damaged__enocrc(void **state)
{
    struct fx *fx = *state;
    enum { LEN = BS_BLOCK + 10 };
    unsigned char *data = random_bytes(LEN, 6);
    char sha[65], path[256];
    struct bs_blob *b = NULL;
    fake_sha(6, sha);
    store_chunked(fx, sha, data, LEN, 4096);
    crc_path(fx, sha, path, sizeof(path));

    /* a byte of a block CRC, of the header, of the trailer */
    static const off_t at[] = {21, 9, 13, 27};
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        flip_byte(path, at[i]);
        assert_int_equal(bs_blob_open(fx->bs, sha, &b), BS_ENOCRC);
        assert_int_equal(bs_verify_blocks(fx->bs, sha), BS_ENOCRC);
        flip_byte(path, at[i]);
        assert_int_equal(bs_blob_open(fx->bs, sha, &b), BS_OK);
        bs_blob_close(b);
    }
    assert_int_equal(truncate(path, 20), 0);
    assert_int_equal(bs_blob_open(fx->bs, sha, &b), BS_ENOCRC);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(bs_blob_open(fx->bs, sha, &b), BS_ENOCRC);
    assert_true(bs_has(fx->bs, sha));

    /* the caller re-hashed: rebuild, and reads are checked again */
    assert_int_equal(bs_crc_rebuild(fx->bs, sha), BS_OK);
    assert_int_equal(count_entries(fx->pre), 0);
    assert_int_equal(bs_blob_open(fx->bs, sha, &b), BS_OK);
    unsigned char *buf = malloc(LEN);
    assert_non_null(buf);
    assert_int_equal(bs_blob_read(b, 0, buf, LEN), LEN);
    assert_memory_equal(buf, data, LEN);
    bs_blob_close(b);
    assert_int_equal(bs_crc_rebuild(fx->bs, SHA_ABSENT), BS_ENOTFOUND);
    assert_int_equal(bs_crc_rebuild(fx->bs, "../x"), BS_EINVAL);
    free(buf);
    free(data);
}

static void bs_blob_open__legacy_store_without_sidecar__enocrc(void **state)
{
    struct fx *fx = *state;
    char path[256];
    mkdir(fx->dir, 0750);
    snprintf(path, sizeof(path), "%s/ba", fx->dir);
    assert_int_equal(mkdir(path, 0750), 0);
    blob_path(fx, SHA_ABC, path, sizeof(path));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("abc", f);
    fclose(f);
    struct bs_blob *b = NULL;
    assert_int_equal(bs_blob_open(fx->bs, SHA_ABC, &b), BS_ENOCRC);
    assert_null(b);
    int fd = -1;
    uint64_t size = 0;
    assert_int_equal(bs_open_blob(fx->bs, SHA_ABC, &fd, &size), BS_OK);
    assert_int_equal(size, 3);
    close(fd);
}

static void bs_blob_open__absent_or_invalid__enotfound_einval(void **state)
{
    struct fx *fx = *state;
    struct bs_blob *b = NULL;
    assert_int_equal(bs_blob_open(fx->bs, SHA_ABSENT, &b), BS_ENOTFOUND);
    store(fx, SHA_ABC, "abc", 3, NULL);
    /* same <aa>/ directory, other hash */
    assert_int_equal(
        bs_blob_open(fx->bs, "ba00000000000000000000000000000000000000000000000000000000000000",
                     &b),
        BS_ENOTFOUND);
    assert_int_equal(bs_blob_open(fx->bs, "_pre", &b), BS_EINVAL);
    assert_null(b);
    assert_int_equal(bs_verify_blocks(fx->bs, SHA_ABSENT), BS_ENOTFOUND);
    assert_int_equal(bs_verify_blocks(fx->bs, "x"), BS_EINVAL);
}

static void bs_upload_commit__existing_sidecar__kept_if_same_else_replaced(void **state)
{
    struct fx *fx = *state;
    char path[256];
    struct stat before, after;
    struct bs_blob *b = NULL;
    store(fx, SHA_ABC, "abc", 3, NULL);
    crc_path(fx, SHA_ABC, path, sizeof(path));
    assert_int_equal(stat(path, &before), 0);
    bool existed = false;
    store(fx, SHA_ABC, "abc", 3, &existed);
    assert_true(existed);
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);

    flip_byte(path, 21);
    assert_int_equal(bs_blob_open(fx->bs, SHA_ABC, &b), BS_ENOCRC);
    store(fx, SHA_ABC, "abc", 3, &existed);
    assert_true(existed);
    assert_int_equal(bs_blob_open(fx->bs, SHA_ABC, &b), BS_OK);
    bs_blob_close(b);

    assert_int_equal(unlink(path), 0);
    store(fx, SHA_ABC, "abc", 3, &existed);
    assert_true(existed);
    assert_int_equal(bs_blob_open(fx->bs, SHA_ABC, &b), BS_OK);
    bs_blob_close(b);
    assert_int_equal(count_entries(fx->pre), 0);
}

static void bs_upload_sync__then_commit__durable_and_idempotent(void **state)
{
    struct fx *fx = *state;
    struct bs_upload *u = NULL;
    assert_int_equal(bs_upload_begin(fx->bs, &u), BS_OK);
    const char *path = bs_upload_path(u);
    assert_non_null(path);
    assert_true(path[0] == '/');
    assert_non_null(strstr(path, "/_pre/"));
    assert_int_equal(bs_upload_write(u, "ab", 2), BS_OK);
    assert_int_equal(bs_upload_sync(u), BS_OK);
    assert_int_equal(bs_upload_sync(u), BS_OK);
    size_t len;
    char *got = slurp(path, &len); /* what a replication client reads */
    assert_int_equal(len, 2);
    free(got);
    assert_int_equal(bs_upload_write(u, "c", 1), BS_OK);
    assert_int_equal(bs_upload_sync(u), BS_OK);
    assert_int_equal(bs_upload_commit(u, SHA_ABC, NULL), BS_OK);
    assert_int_equal(bs_verify_blocks(fx->bs, SHA_ABC), BS_OK);
    assert_int_equal(count_entries(fx->pre), 0);
}

static void bs_upload_path__relative_root__absolute(void **state)
{
    struct fx *fx = *state;
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(fx->root), 0);
    struct bs_store *rel = NULL;
    int rc = bs_open("fs", &rel);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, BS_OK);
    struct bs_upload *u = NULL;
    assert_int_equal(bs_upload_begin(rel, &u), BS_OK);
    char want[256];
    char *real = realpath(fx->pre, NULL);
    assert_non_null(real);
    snprintf(want, sizeof(want), "%s/", real);
    free(real);
    assert_int_equal(strncmp(bs_upload_path(u), want, strlen(want)), 0);
    assert_int_equal(access(bs_upload_path(u), F_OK), 0);
    bs_upload_abort(u);
    bs_close(rel);
}

/* ---- staging -------------------------------------------------------------- */

static void stage(struct fx *fx, const char *sha, const void *data, size_t len,
                  char id[BS_STAGE_ID])
{
    struct bs_upload *u = NULL;
    assert_int_equal(bs_upload_begin(fx->bs, &u), BS_OK);
    assert_int_equal(bs_upload_write(u, data, len), BS_OK);
    assert_int_equal(bs_upload_stage(u, sha, id), BS_OK);
    assert_int_equal(strlen(id), 32);
    for (int i = 0; i < 32; i++)
        assert_non_null(strchr("0123456789abcdef", id[i]));
}

static void bs_stage__stage_then_commit__published_pre_empty(void **state)
{
    struct fx *fx = *state;
    char id[BS_STAGE_ID], path[256];
    stage(fx, SHA_ABC, "abc", 3, id);
    assert_false(bs_has(fx->bs, SHA_ABC));
    snprintf(path, sizeof(path), "%s/stage-%s", fx->pre, id);
    assert_int_equal(access(path, F_OK), 0);
    strcat(path, ".crc");
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(count_entries(fx->pre), 2);

    bool existed = true;
    assert_int_equal(bs_stage_commit(fx->bs, id, SHA_ABC, &existed), BS_OK);
    assert_false(existed);
    assert_true(bs_has(fx->bs, SHA_ABC));
    assert_int_equal(bs_verify_blocks(fx->bs, SHA_ABC), BS_OK);
    assert_int_equal(count_entries(fx->pre), 0);
    assert_int_equal(bs_stage_commit(fx->bs, id, SHA_ABC, &existed), BS_ENOTFOUND);

    /* the same content again: dropped, existed */
    stage(fx, SHA_ABC, "abc", 3, id);
    assert_int_equal(bs_stage_commit(fx->bs, id, SHA_ABC, &existed), BS_OK);
    assert_true(existed);
    assert_int_equal(count_entries(fx->pre), 0);
}

static void bs_stage_commit__sidecar_lost__recomputed(void **state)
{
    struct fx *fx = *state;
    enum { LEN = BS_BLOCK + 1 };
    unsigned char *data = random_bytes(LEN, 8);
    char id[BS_STAGE_ID], path[256], sha[65];
    fake_sha(8, sha);
    stage(fx, sha, data, LEN, id);
    snprintf(path, sizeof(path), "%s/stage-%s.crc", fx->pre, id);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(bs_stage_commit(fx->bs, id, sha, NULL), BS_OK);
    assert_int_equal(bs_verify_blocks(fx->bs, sha), BS_OK);
    assert_int_equal(count_entries(fx->pre), 0);
    free(data);
}

static void bs_stage_commit__bad_ids__einval_or_enotfound(void **state)
{
    struct fx *fx = *state;
    char id[BS_STAGE_ID];
    stage(fx, SHA_ABC, "abc", 3, id);
    static const char *const bad[] = {
        "",
        "abc",
        "../../../../../../../../../../etc",
        "0123456789ABCDEF0123456789abcdef",
        "0123456789abcdef0123456789abcde/",
        "0123456789abcdef0123456789abcdef0",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(bs_stage_commit(fx->bs, bad[i], SHA_ABC, NULL), BS_EINVAL);
        bs_stage_abort(fx->bs, bad[i]);
    }
    assert_int_equal(bs_stage_commit(fx->bs, id, "nope", NULL), BS_EINVAL);
    assert_int_equal(bs_stage_commit(fx->bs, "0123456789abcdef0123456789abcdef", SHA_ABC, NULL),
                     BS_ENOTFOUND);
    assert_int_equal(count_entries(fx->pre), 2);
    bs_stage_abort(fx->bs, id);
    assert_int_equal(count_entries(fx->pre), 0);
    assert_int_equal(bs_stage_commit(fx->bs, id, SHA_ABC, NULL), BS_ENOTFOUND);
    assert_false(bs_has(fx->bs, SHA_ABC));
}

static void bs_upload_stage__invalid_sha__einval_nothing_left(void **state)
{
    struct fx *fx = *state;
    char id[BS_STAGE_ID] = "";
    struct bs_upload *u = NULL;
    assert_int_equal(bs_upload_begin(fx->bs, &u), BS_OK);
    assert_int_equal(bs_upload_write(u, "abc", 3), BS_OK);
    assert_int_equal(bs_upload_stage(u, "ABC", id), BS_EINVAL);
    assert_int_equal(count_entries(fx->pre), 0);
}

static void set_mtime(const char *path, time_t t)
{
    struct timespec ts[2] = {{.tv_sec = t}, {.tv_sec = t}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void bs_stage_expire__old_stages__removed_young_kept(void **state)
{
    struct fx *fx = *state;
    char old_id[BS_STAGE_ID], young_id[BS_STAGE_ID], path[256];
    stage(fx, SHA_ABC, "abc", 3, old_id);
    stage(fx, SHA_EMPTY, "", 0, young_id);
    snprintf(path, sizeof(path), "%s/stage-%s", fx->pre, old_id);
    set_mtime(path, time(NULL) - 3600);
    strcat(path, ".crc");
    set_mtime(path, time(NULL) - 3600);
    /* an orphan stage sidecar, old, and an unrelated upload in progress */
    snprintf(path, sizeof(path), "%s/stage-0123456789abcdef0123456789abcdef.crc", fx->pre);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    set_mtime(path, time(NULL) - 3600);
    struct bs_upload *u = NULL;
    assert_int_equal(bs_upload_begin(fx->bs, &u), BS_OK);
    assert_int_equal(count_entries(fx->pre), 6);

    assert_int_equal(bs_stage_expire(fx->bs, 600), 1);
    assert_int_equal(count_entries(fx->pre), 3);
    assert_int_equal(bs_stage_commit(fx->bs, old_id, SHA_ABC, NULL), BS_ENOTFOUND);
    assert_int_equal(bs_stage_commit(fx->bs, young_id, SHA_EMPTY, NULL), BS_OK);
    assert_int_equal(bs_stage_expire(fx->bs, 600), 0);
    bs_upload_abort(u);
    assert_int_equal(count_entries(fx->pre), 0);
    assert_int_equal(bs_verify_blocks(fx->bs, SHA_EMPTY), BS_OK);
}

static void bs_open__stale_stage__removed(void **state)
{
    struct fx *fx = *state;
    char id[BS_STAGE_ID];
    stage(fx, SHA_ABC, "abc", 3, id);
    bs_close(fx->bs);
    fx->bs = NULL;
    assert_int_equal(bs_open(fx->dir, &fx->bs), BS_OK);
    assert_int_equal(count_entries(fx->pre), 0);
    assert_int_equal(bs_stage_commit(fx->bs, id, SHA_ABC, NULL), BS_ENOTFOUND);
}

/* ---- quarantine and delete ------------------------------------------------ */

static void bs_quarantine__stored__moved_with_sidecar(void **state)
{
    struct fx *fx = *state;
    char qdir[200];
    snprintf(qdir, sizeof(qdir), "%s/_quarantine", fx->dir);
    assert_int_equal(bs_quarantine_count(fx->bs), 0);
    store(fx, SHA_ABC, "abc", 3, NULL);
    assert_int_equal(bs_quarantine(fx->bs, SHA_ABC), BS_OK);
    assert_false(bs_has(fx->bs, SHA_ABC));
    assert_int_equal(bs_quarantine_count(fx->bs), 1);
    assert_int_equal(count_entries(qdir), 2);
    DIR *d = opendir(qdir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            assert_int_equal(strncmp(e->d_name, SHA_ABC ".", 65), 0);
            assert_true(strlen(e->d_name) > 66);
        }
    closedir(d);
    char sub[200];
    snprintf(sub, sizeof(sub), "%s/ba", fx->dir);
    assert_int_equal(count_entries(sub), 0);
    /* the same content again in the same second, quarantined again */
    store(fx, SHA_ABC, "abc", 3, NULL);
    assert_int_equal(bs_quarantine(fx->bs, SHA_ABC), BS_OK);
    assert_int_equal(bs_quarantine_count(fx->bs), 2);
    assert_int_equal(count_entries(qdir), 4);
    assert_int_equal(bs_quarantine(fx->bs, SHA_ABC), BS_ENOTFOUND);
    assert_int_equal(bs_quarantine(fx->bs, SHA_ABSENT), BS_ENOTFOUND);
    assert_int_equal(bs_quarantine(fx->bs, "../../x"), BS_EINVAL);
}

static void bs_delete__stored__data_and_sidecar_gone(void **state)
{
    struct fx *fx = *state;
    store(fx, SHA_ABC, "abc", 3, NULL);
    assert_int_equal(bs_delete(fx->bs, SHA_ABC), BS_OK);
    assert_false(bs_has(fx->bs, SHA_ABC));
    char sub[200];
    snprintf(sub, sizeof(sub), "%s/ba", fx->dir);
    assert_int_equal(count_entries(sub), 0);
    assert_int_equal(bs_delete(fx->bs, SHA_ABC), BS_ENOTFOUND);
    assert_int_equal(bs_delete(fx->bs, SHA_ABSENT), BS_ENOTFOUND);
    assert_int_equal(bs_delete(fx->bs, "ba"), BS_EINVAL);
    /* stored again afterwards: a normal binary */
    store(fx, SHA_ABC, "abc", 3, NULL);
    assert_int_equal(bs_verify_blocks(fx->bs, SHA_ABC), BS_OK);
}

/* ---- a sidecar that cannot be written ------------------------------------ */

/*
 * The data is written; then RLIMIT_FSIZE (as above) drops below the size of
 * the sidecar, so that commit's and stage's only write fails. Nothing may
 * become visible and _pre/ must be left empty.
 */
static void bs_upload_commit__sidecar_write_fails__error_nothing_visible(void **state)
{
    struct fx *fx = *state;
    enum { LEN = 3 * BS_BLOCK };
    unsigned char *data = random_bytes(LEN, 12);
    char sha[65], id[BS_STAGE_ID];
    fake_sha(12, sha);
    struct bs_upload *u = NULL, *v = NULL;
    assert_int_equal(bs_upload_begin(fx->bs, &u), BS_OK);
    assert_int_equal(bs_upload_write(u, data, LEN), BS_OK);
    assert_int_equal(bs_upload_begin(fx->bs, &v), BS_OK);
    assert_int_equal(bs_upload_write(v, data, LEN), BS_OK);
    free(data);

    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    if (old.rlim_cur != RLIM_INFINITY && old.rlim_cur < LEN) {
        bs_upload_abort(u);
        bs_upload_abort(v);
        skip();
    }
    struct sigaction ign = {.sa_handler = SIG_IGN}, oldsa;
    sigemptyset(&ign.sa_mask);
    assert_int_equal(sigaction(SIGXFSZ, &ign, &oldsa), 0);
    lim = old;
    lim.rlim_cur = 10; /* a sidecar of 3 blocks is 36 bytes */
    int lrc = setrlimit(RLIMIT_FSIZE, &lim);
    int crc = bs_upload_commit(u, sha, NULL);
    int src = bs_upload_stage(v, sha, id);
    setrlimit(RLIMIT_FSIZE, &old);
    sigaction(SIGXFSZ, &oldsa, NULL);

    assert_int_equal(lrc, 0);
    if (crc != BS_EIO && crc != BS_ENOSPC)
        fail_msg("commit with no room for the sidecar: rc %d", crc);
    if (src != BS_EIO && src != BS_ENOSPC)
        fail_msg("stage with no room for the sidecar: rc %d", src);
    assert_false(bs_has(fx->bs, sha));
    assert_int_equal(count_entries(fx->pre), 0);
    char sub[200];
    snprintf(sub, sizeof(sub), "%s/%.2s", fx->dir, sha);
    assert_true(count_entries(sub) <= 0); /* missing or empty */
}

/* ---- bs_each -------------------------------------------------------------- */

struct seen {
    char sha[64][65];
    uint64_t size[64];
    int n;
    int stop_after; /* return 7 after this many; 0 = never */
};

static int collect(void *arg, const char *sha, uint64_t size)
{
    struct seen *s = arg;
    if (s->n >= 64)
        return -100;
    snprintf(s->sha[s->n], 65, "%s", sha);
    s->size[s->n] = size;
    s->n++;
    return s->stop_after && s->n == s->stop_after ? 7 : 0;
}

static void touch(const char *dir, const char *name)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
}

static void bs_each__store_with_junk__ascending_resumable(void **state)
{
    struct fx *fx = *state;
    enum { N = 40 };
    char shas[N][65];
    for (unsigned i = 0; i < N; i++) {
        fake_sha(i + 1000, shas[i]);
        store(fx, shas[i], shas[i], i, NULL);
    }
    /* junk the walk must skip */
    char sub[200], id[BS_STAGE_ID];
    touch(fx->dir, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
    snprintf(sub, sizeof(sub), "%s/%.2s", fx->dir, shas[0]);
    touch(sub, "not-a-hash");
    touch(sub, "00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"); /* misplaced */
    snprintf(sub, sizeof(sub), "%s/zz", fx->dir);
    assert_int_equal(mkdir(sub, 0750), 0);
    stage(fx, SHA_ABC, "abc", 3, id);
    store(fx, SHA_EMPTY, "", 0, NULL);
    assert_int_equal(bs_quarantine(fx->bs, SHA_EMPTY), BS_OK);

    struct seen *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    assert_int_equal(bs_each(fx->bs, NULL, collect, s), BS_OK);
    assert_int_equal(s->n, N);
    for (int i = 1; i < s->n; i++)
        assert_true(strcmp(s->sha[i - 1], s->sha[i]) < 0);
    for (int i = 0; i < s->n; i++) {
        int k;
        for (k = 0; k < N && strcmp(shas[k], s->sha[i]) != 0; k++)
            ;
        assert_true(k < N);
        assert_int_equal(s->size[i], (uint64_t)k);
    }
    /* resume after the 10th: the other 30, in order */
    struct seen *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    assert_int_equal(bs_each(fx->bs, s->sha[9], collect, r), BS_OK);
    assert_int_equal(r->n, N - 10);
    assert_string_equal(r->sha[0], s->sha[10]);
    memset(r, 0, sizeof(*r));
    assert_int_equal(bs_each(fx->bs, "", collect, r), BS_OK);
    assert_int_equal(r->n, N);
    memset(r, 0, sizeof(*r));
    assert_int_equal(bs_each(fx->bs, s->sha[N - 1], collect, r), BS_OK);
    assert_int_equal(r->n, 0);
    /* fn stops the walk: its value comes back */
    memset(r, 0, sizeof(*r));
    r->stop_after = 5;
    assert_int_equal(bs_each(fx->bs, NULL, collect, r), 7);
    assert_int_equal(r->n, 5);
    assert_string_equal(r->sha[4], s->sha[4]);
    free(r);
    free(s);
}

/* ---- store id ------------------------------------------------------------- */

static void bs_store_id__reopen_same_wipe_new(void **state)
{
    struct fx *fx = *state;
    char first[BS_STAGE_ID], path[200];
    const char *id = bs_store_id(fx->bs);
    assert_int_equal(strlen(id), 32);
    snprintf(first, sizeof(first), "%s", id);
    snprintf(path, sizeof(path), "%s/STORE_ID", fx->dir);
    size_t len;
    char *got = slurp(path, &len);
    assert_int_equal(len, 33);
    assert_memory_equal(got, first, 32);
    free(got);

    bs_close(fx->bs);
    fx->bs = NULL;
    assert_int_equal(bs_open(fx->dir, &fx->bs), BS_OK);
    assert_string_equal(bs_store_id(fx->bs), first);

    /* wiped: a new store, a new id */
    bs_close(fx->bs);
    fx->bs = NULL;
    nftw(fx->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    assert_int_equal(bs_open(fx->dir, &fx->bs), BS_OK);
    assert_int_equal(strlen(bs_store_id(fx->bs)), 32);
    assert_string_not_equal(bs_store_id(fx->bs), first);

    /* garbage in STORE_ID: replaced by a fresh id */
    snprintf(first, sizeof(first), "%s", bs_store_id(fx->bs));
    bs_close(fx->bs);
    fx->bs = NULL;
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("not an id\n", f);
    fclose(f);
    assert_int_equal(bs_open(fx->dir, &fx->bs), BS_OK);
    assert_int_equal(strlen(bs_store_id(fx->bs)), 32);
    assert_string_not_equal(bs_store_id(fx->bs), first);
    assert_string_not_equal(bs_store_id(fx->bs), "not an id");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* ---- shared stores and sidecars for other stores ------------------------ */

static void bs_open_shared__two_writers__own_temp_names_own_leftovers(void **state)
{
    struct fx *fx = *state;
    struct bs_store *a = NULL, *b = NULL;
    assert_int_equal(bs_open_shared(fx->dir, "node-a", &a), BS_OK);
    assert_int_equal(bs_open_shared(fx->dir, "node-b", &b), BS_OK);
    struct bs_upload *ua = NULL, *ub = NULL;
    assert_int_equal(bs_upload_begin(a, &ua), BS_OK);
    assert_int_equal(bs_upload_begin(b, &ub), BS_OK);
    assert_non_null(strstr(bs_upload_path(ua), "/_pre/node-a-"));
    assert_non_null(strstr(bs_upload_path(ub), "/_pre/node-b-"));
    assert_ptr_equal(bs_upload_store(ua), a);
    assert_int_equal(count_entries(fx->pre), 2);
    /* node-a restarts: its leftover goes, node-b's upload in flight stays */
    struct bs_store *a2 = NULL;
    assert_int_equal(bs_open_shared(fx->dir, "node-a", &a2), BS_OK);
    assert_int_equal(count_entries(fx->pre), 1);
    assert_int_equal(bs_upload_write(ub, "abc", 3), BS_OK);
    assert_int_equal(bs_upload_commit(ub, SHA_ABC, NULL), BS_OK);
    assert_true(bs_has(a2, SHA_ABC));
    bs_upload_abort(ua);
    bs_close(a);
    bs_close(a2);
    bs_close(b);
}

static void bs_open_shared__bad_tags__einval(void **state)
{
    struct fx *fx = *state;
    struct bs_store *s = NULL;
    assert_int_equal(bs_open_shared(fx->dir, "", &s), BS_EINVAL);
    assert_int_equal(bs_open_shared(fx->dir, "a/b", &s), BS_EINVAL);
    assert_int_equal(bs_open_shared(fx->dir, ".x", &s), BS_EINVAL);
    assert_int_equal(bs_open_shared(fx->dir, "stage-1", &s), BS_EINVAL);
    assert_null(s);
}

static void bs_sidecar__upload_crcs_encoded__decode_round_trip(void **state)
{
    struct fx *fx = *state;
    size_t len = 3 * BS_BLOCK + 123;
    unsigned char *data = malloc(len);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (unsigned char)(i * 7 + 3);
    struct bs_upload *u = NULL;
    assert_int_equal(bs_upload_begin(fx->bs, &u), BS_OK);
    assert_int_equal(bs_upload_write(u, data, len), BS_OK);
    uint64_t n = 0;
    const uint32_t *crcs = bs_upload_crcs(u, &n);
    assert_non_null(crcs);
    assert_int_equal(n, 4);
    for (uint64_t k = 0; k < n; k++) {
        size_t bl = len - k * BS_BLOCK < BS_BLOCK ? len - k * BS_BLOCK : BS_BLOCK;
        assert_int_equal(crcs[k], bs_crc32c(0, data + k * BS_BLOCK, bl));
    }
    size_t elen = 0;
    unsigned char *enc = bs_sidecar_encode(len, crcs, &elen);
    assert_non_null(enc);
    uint32_t *back = NULL;
    assert_int_equal(bs_sidecar_decode(enc, elen, len, &back), BS_OK);
    assert_memory_equal(back, crcs, n * sizeof(*back));
    free(back);
    /* another size, a flipped byte, a short buffer: refused */
    assert_int_equal(bs_sidecar_decode(enc, elen, len + 1, &back), BS_ENOCRC);
    enc[21] ^= 1;
    assert_int_equal(bs_sidecar_decode(enc, elen, len, &back), BS_ENOCRC);
    enc[21] ^= 1;
    assert_int_equal(bs_sidecar_decode(enc, elen - 1, len, &back), BS_ENOCRC);
    assert_null(back);
    free(enc);
    bs_upload_abort(u);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(bs_open__missing_dir__creates_root_and_pre),
        T(bs_open__existing_store__reopens_with_blobs),
        T(bs_open__leftovers_in_pre__removed),
        T(bs_open_shared__two_writers__own_temp_names_own_leftovers),
        T(bs_open_shared__bad_tags__einval),
        T(bs_sidecar__upload_crcs_encoded__decode_round_trip),
        T(bs_open__parent_missing__eio),
        T(bs_open__root_is_a_file__eio),
        T(bs_upload__write_commit__file_under_hash),
        T(bs_upload__many_chunks__bytes_intact),
        T(bs_upload__empty__committed),
        T(bs_upload__same_content_twice__existed_one_file),
        T(bs_upload__existing_copy__kept_in_place),
        T(bs_upload__abort__temp_file_removed),
        T(bs_upload__interleaved__independent),
        T(bs_upload__commit_invalid_sha__einval_no_temp_left),
        T(bs_open_blob__stored__fd_and_size),
        T(bs_open_blob__absent__enotfound),
        T(bs_open_blob__invalid_sha__einval),
        T(bs_has__cases__as_stored),
        T(bs_free_bytes__store__positive),
        cmocka_unit_test(bs_valid_sha256__cases__lowercase_64_hex_only),
        cmocka_unit_test(bs_strerror__every_code__text),
        T(bs_upload_write__file_size_limit__error_nothing_visible),
        cmocka_unit_test(bs_crc32c__known_vectors__match),
        cmocka_unit_test(bs_crc32c__hw_and_sw_random__agree),
        T(bs_upload_commit__sidecar__format_as_documented),
        T(bs_blob_read__every_size__content_intact),
        T(bs_blob_read__unaligned_ranges__match),
        T(bs_blob_read__flipped_byte__only_that_block_ecorrupt),
        T(bs_blob_read__file_truncated_after_open__ecorrupt),
        T(bs_blob_open__sidecar_missing_or_damaged__enocrc),
        T(bs_blob_open__legacy_store_without_sidecar__enocrc),
        T(bs_blob_open__absent_or_invalid__enotfound_einval),
        T(bs_upload_commit__existing_sidecar__kept_if_same_else_replaced),
        T(bs_upload_sync__then_commit__durable_and_idempotent),
        T(bs_upload_path__relative_root__absolute),
        T(bs_stage__stage_then_commit__published_pre_empty),
        T(bs_stage_commit__sidecar_lost__recomputed),
        T(bs_stage_commit__bad_ids__einval_or_enotfound),
        T(bs_upload_stage__invalid_sha__einval_nothing_left),
        T(bs_stage_expire__old_stages__removed_young_kept),
        T(bs_open__stale_stage__removed),
        T(bs_quarantine__stored__moved_with_sidecar),
        T(bs_delete__stored__data_and_sidecar_gone),
        T(bs_upload_commit__sidecar_write_fails__error_nothing_visible),
        T(bs_each__store_with_junk__ascending_resumable),
        T(bs_store_id__reopen_same_wipe_new),
    };
    return cmocka_run_group_tests_name("bs", tests, NULL, NULL);
}
