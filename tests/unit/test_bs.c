/*
 * test_bs.c - unit tests of the local blobstore (bs.h): directory layout,
 * crash leftovers, upload commit/abort, deduplication, reads, hash
 * validation and a write that fails half-way (RLIMIT_FSIZE standing in for
 * a full disk). Each test gets a fresh store in a /tmp directory.
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
    assert_int_equal(count_entries(sub), 1);
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
    assert_int_equal(count_entries(fx->dir), 1); /* only _pre */
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
    assert_int_equal(count_entries(fx->dir), 1); /* no <aa>/ made */
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
    static const int codes[] = {BS_OK, BS_ENOTFOUND, BS_EIO, BS_ENOSPC, BS_EINVAL, BS_ENOMEM};
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
    assert_int_equal(count_entries(fx->dir), 1); /* only _pre: nothing under any hash */
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

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(bs_open__missing_dir__creates_root_and_pre),
        T(bs_open__existing_store__reopens_with_blobs),
        T(bs_open__leftovers_in_pre__removed),
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
    };
    return cmocka_run_group_tests_name("bs", tests, NULL, NULL);
}
