/*
 * test_crypto.c - unit tests of the crypto helpers (crypto/crypto.h):
 * digests against published vectors, chunked versus one-shot hashing,
 * HMAC-SHA256 (RFC 4231), password hashing and verification (including
 * malformed stored strings), random bytes and passwords.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "crypto/crypto.h"

struct vec {
    const char *in;
    const char *sha256, *sha1, *md5;
};

static const struct vec vectors[] = {
    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "da39a3ee5e6b4b0d3255bfef95601890afd80709", "d41d8cd98f00b204e9800998ecf8427e"},
    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
     "a9993e364706816aba3e25717850c26c9cd0d89d", "900150983cd24fb0d6963f7d28e17f72"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
     "84983e441c3bd26ebaae4aa1f95129e5e54670f1", "8215ef0796a20bcaaae116d3876c664a"},
};

/* One million 'a' (FIPS 180 long-message vectors). */
#define MILLION_SHA256 "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
#define MILLION_SHA1 "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
#define MILLION_MD5 "7707d6ae4e027c70eea2a935c2296f21"

static void hex(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", in[i]);
}

/* ---- digests -------------------------------------------------------------- */

static void cr_multihash__known_vectors__match(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        char s256[CR_SHA256_HEX], s1[CR_SHA1_HEX], m5[CR_MD5_HEX];
        struct cr_multihash *h = cr_multihash_new(NULL);
        assert_non_null(h);
        cr_multihash_update(h, vectors[i].in, strlen(vectors[i].in));
        cr_multihash_final(h, s256, s1, m5);
        cr_multihash_free(h);
        assert_string_equal(s256, vectors[i].sha256);
        assert_string_equal(s1, vectors[i].sha1);
        assert_string_equal(m5, vectors[i].md5);
    }
}

static void cr_multihash__no_update__empty_digests(void **state)
{
    (void)state;
    char s256[CR_SHA256_HEX], s1[CR_SHA1_HEX], m5[CR_MD5_HEX];
    struct cr_multihash *h = cr_multihash_new(NULL);
    assert_non_null(h);
    cr_multihash_final(h, s256, s1, m5);
    cr_multihash_free(h);
    assert_string_equal(s256, vectors[0].sha256);
    assert_string_equal(s1, vectors[0].sha1);
    assert_string_equal(m5, vectors[0].md5);
}

static void cr_multihash__chunked__equals_one_shot(void **state)
{
    (void)state;
    enum { N = 1000000 };
    char *a = malloc(N);
    assert_non_null(a);
    memset(a, 'a', N);

    char one[3][CR_SHA256_HEX], chunked[3][CR_SHA256_HEX];
    struct cr_multihash *h = cr_multihash_new(NULL);
    assert_non_null(h);
    cr_multihash_update(h, a, N);
    cr_multihash_final(h, one[0], one[1], one[2]);
    cr_multihash_free(h);

    /* uneven chunks, some empty, crossing every block boundary */
    h = cr_multihash_new(NULL);
    assert_non_null(h);
    size_t off = 0, step = 0;
    while (off < N) {
        size_t n = (step * 7919) % 1031;
        if (n > N - off)
            n = N - off;
        cr_multihash_update(h, a + off, n);
        off += n;
        step++;
    }
    cr_multihash_final(h, chunked[0], chunked[1], chunked[2]);
    cr_multihash_free(h);
    free(a);

    assert_string_equal(one[0], MILLION_SHA256);
    assert_string_equal(one[1], MILLION_SHA1);
    assert_string_equal(one[2], MILLION_MD5);
    for (int i = 0; i < 3; i++)
        assert_string_equal(chunked[i], one[i]);
}

static void cr_multihash_free__null__ok(void **state)
{
    (void)state;
    cr_multihash_free(NULL);
}

static void cr_sha256_hex__known_vectors__match(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        char out[CR_SHA256_HEX];
        memset(out, 'X', sizeof(out));
        cr_sha256_hex(vectors[i].in, strlen(vectors[i].in), out);
        assert_string_equal(out, vectors[i].sha256);
    }
}

/* A file of 3 MiB + 5 bytes (more than one read of the helper), hashed
 * whole, to its end, and in a range, against cr_sha256_hex of the same
 * bytes; a range past the end is GR_EIO. */
static void cr_sha256_fd_hex__whole_range_and_short__match_or_eio(void **state)
{
    (void)state;
    size_t n = (3u << 20) + 5;
    unsigned char *b = malloc(n);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(i * 7 + i / 4096);
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fflush(f);
    int fd = fileno(f);
    char want[CR_SHA256_HEX], got[CR_SHA256_HEX];
    cr_sha256_hex(b, n, want);
    assert_int_equal(cr_sha256_fd_hex(fd, 0, UINT64_MAX, got), GR_OK);
    assert_string_equal(got, want);
    assert_int_equal(cr_sha256_fd_hex(fd, 0, n, got), GR_OK);
    assert_string_equal(got, want);
    cr_sha256_hex(b + 1000, 2u << 20, want);
    assert_int_equal(cr_sha256_fd_hex(fd, 1000, 2u << 20, got), GR_OK);
    assert_string_equal(got, want);
    assert_int_equal(cr_sha256_fd_hex(fd, n - 4, 5, got), GR_EIO);
    fclose(f);
    free(b);
}

/* ---- HMAC ----------------------------------------------------------------- */

static void cr_hmac_sha256__rfc4231_case2__match(void **state)
{
    (void)state;
    unsigned char mac[32];
    char h[65];
    const char *data = "what do ya want for nothing?";
    cr_hmac_sha256("Jefe", 4, data, strlen(data), mac);
    hex(mac, 32, h);
    assert_string_equal(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void cr_hmac_sha256__rfc4231_case1__match(void **state)
{
    (void)state;
    unsigned char key[20], mac[32];
    char h[65];
    memset(key, 0x0b, sizeof(key));
    cr_hmac_sha256(key, sizeof(key), "Hi There", 8, mac);
    hex(mac, 32, h);
    assert_string_equal(h, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

static void cr_hmac_sha256__rfc4231_case6_long_key__match(void **state)
{
    (void)state;
    unsigned char key[131], mac[32];
    char h[65];
    const char *data = "Test Using Larger Than Block-Size Key - Hash Key First";
    memset(key, 0xaa, sizeof(key));
    cr_hmac_sha256(key, sizeof(key), data, strlen(data), mac);
    hex(mac, 32, h);
    assert_string_equal(h, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

/* A prepared key gives the MAC of cr_hmac_sha256(), for keys shorter than,
 * as long as and longer than a SHA-256 block, and for every message. */
static void cr_hmac_sha256_k__any_key__same_as_oneshot(void **state)
{
    (void)state;
    static const size_t klens[] = {0, 4, 44, 63, 64, 65, 131, 256};
    unsigned char key[256], data[300], a[32], b[32];
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (unsigned char)(i * 7 + 1);
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 13);
    for (size_t i = 0; i < sizeof(klens) / sizeof(klens[0]); i++) {
        struct cr_hmac_key *k = cr_hmac_key_new(key, klens[i]);
        assert_non_null(k);
        for (size_t len = 0; len <= sizeof(data); len += 37) {
            cr_hmac_sha256(key, klens[i], data, len, a);
            assert_int_equal(cr_hmac_sha256_k(k, data, len, b), 0);
            assert_memory_equal(a, b, 32);
        }
        cr_hmac_key_free(k);
    }
    cr_hmac_key_free(NULL);
}

/* ---- cr_equal / cr_random ------------------------------------------------- */

static void cr_equal__cases__compared(void **state)
{
    (void)state;
    assert_true(cr_equal("abcdef", "abcdef", 6));
    assert_false(cr_equal("abcdef", "abcdeg", 6));
    assert_false(cr_equal("xbcdef", "abcdef", 6));
    assert_true(cr_equal("abc", "abd", 2));
    assert_true(cr_equal("a", "b", 0));
}

static void cr_random__bytes__filled_and_different(void **state)
{
    (void)state;
    unsigned char a[32] = {0}, b[32] = {0}, zero[32] = {0};
    assert_int_equal(cr_random(a, sizeof(a)), GR_OK);
    assert_int_equal(cr_random(b, sizeof(b)), GR_OK);
    assert_memory_not_equal(a, zero, sizeof(a));
    assert_memory_not_equal(a, b, sizeof(a));
    assert_int_equal(cr_random(a, 0), GR_OK);
}

static bool alnum_only(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

static void cr_random_password__len24__alphabet_and_length(void **state)
{
    (void)state;
    char a[25], b[25];
    memset(a, '!', sizeof(a));
    assert_int_equal(cr_random_password(a, 24), GR_OK);
    assert_int_equal(strlen(a), 24);
    assert_true(alnum_only(a));
    assert_int_equal(cr_random_password(b, 24), GR_OK);
    assert_string_not_equal(a, b);
}

static void cr_random_password__len0__empty(void **state)
{
    (void)state;
    char out[1] = {'!'};
    assert_int_equal(cr_random_password(out, 0), GR_OK);
    assert_string_equal(out, "");
}

static void cr_random_password__many__every_class_seen(void **state)
{
    (void)state;
    bool upper = false, lower = false, digit = false;
    for (int i = 0; i < 100; i++) {
        char p[33];
        assert_int_equal(cr_random_password(p, 32), GR_OK);
        assert_int_equal(strlen(p), 32);
        assert_true(alnum_only(p));
        for (const char *c = p; *c; c++) {
            upper |= *c >= 'A' && *c <= 'Z';
            lower |= *c >= 'a' && *c <= 'z';
            digit |= *c >= '0' && *c <= '9';
        }
    }
    assert_true(upper && lower && digit);
}

static void cr_random_password__long__ok_or_error_no_overflow(void **state)
{
    (void)state;
    /* the header names no limit: either a full password or an error code */
    enum { LEN = 1000 };
    char *out = malloc(LEN + 1);
    assert_non_null(out);
    int rc = cr_random_password(out, LEN);
    if (rc == GR_OK) {
        assert_int_equal(strlen(out), LEN);
        assert_true(alnum_only(out));
    } else {
        assert_true(rc < 0);
    }
    free(out);
}

/* ---- passwords ------------------------------------------------------------ */

/*
 * A link-time spy on OpenSSL's EVP_DecodeBlock(): this definition in the
 * test binary takes precedence over libcrypto's for crypto.o (symbol
 * interposition). It calls the real one into a buffer of its own, records
 * the largest decode and copies the bytes out with memcpy(), so that
 * AddressSanitizer checks the caller's destination. Declared here because
 * only daemon/crypto/ includes OpenSSL headers.
 */
int EVP_DecodeBlock(unsigned char *t, const unsigned char *f, int n);
static int spy_max_decoded;

int EVP_DecodeBlock(unsigned char *t, const unsigned char *f, int n)
{
    static int (*real)(unsigned char *, const unsigned char *, int);
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "EVP_DecodeBlock");
    if (real == NULL)
        fail_msg("dlsym(EVP_DecodeBlock): %s", dlerror());
    unsigned char *tmp = malloc((n > 0 ? (size_t)n : 0) / 4 * 3 + 4);
    if (tmp == NULL)
        fail_msg("out of memory");
    int r = real(tmp, f, n);
    if (r > 0) {
        memcpy(t, tmp, (size_t)r);
        if (r > spy_max_decoded)
            spy_max_decoded = r;
    }
    free(tmp);
    return r;
}

/*
 * cr_password_hash() always runs CR_PBKDF2_ITERATIONS rounds, so these few
 * calls are the slow part of the suite; the other checks verify against
 * strings made elsewhere with 1000 rounds.
 */
static void cr_password_hash__round_trip__verifies(void **state)
{
    (void)state;
    char stored[CR_PASSWORD_HASH_MAX], again[CR_PASSWORD_HASH_MAX];
    assert_int_equal(cr_password_hash("s3cret pass", stored), GR_OK);
    assert_int_equal(strncmp(stored, "pbkdf2-sha256$100000$", 21), 0);
    assert_true(strlen(stored) < CR_PASSWORD_HASH_MAX);
    assert_true(cr_password_verify("s3cret pass", stored));
    assert_false(cr_password_verify("s3cret pasS", stored));
    /* a fresh salt each time */
    assert_int_equal(cr_password_hash("s3cret pass", again), GR_OK);
    assert_string_not_equal(stored, again);
}

/* Made with Python: hashlib.pbkdf2_hmac("sha256", b"correct horse", bytes(range(16)), 1000). */
#define KNOWN_STORED                                                                               \
    "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw==$yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ="
/* The same for the empty password and salt bytes(range(100, 116)). */
#define KNOWN_EMPTY                                                                                \
    "pbkdf2-sha256$1000$ZGVmZ2hpamtsbW5vcHFycw==$9PPl2xkpkQejHQyH/rxA1CYopOfKGZ35QxGMt/82HZQ="

static void cr_password_verify__foreign_known_hash__true(void **state)
{
    (void)state;
    assert_true(cr_password_verify("correct horse", KNOWN_STORED));
    assert_true(cr_password_verify("", KNOWN_EMPTY));
}

static void cr_password_verify__wrong_password__false(void **state)
{
    (void)state;
    assert_false(cr_password_verify("correct horsE", KNOWN_STORED));
    assert_false(cr_password_verify("correct horse ", KNOWN_STORED));
    assert_false(cr_password_verify("correct hors", KNOWN_STORED));
    assert_false(cr_password_verify("", KNOWN_STORED));
    assert_false(cr_password_verify("x", KNOWN_EMPTY));
}

/* The salt and key fields of KNOWN_STORED. */
#define KNOWN_TAIL "AAECAwQFBgcICQoLDA0ODw==$yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ="

static void cr_password_verify__malformed__false(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "$",
        "pbkdf2-sha256",
        "pbkdf2-sha256$",
        "pbkdf2-sha256$$$",
        "pbkdf2-sha256$1000",
        "pbkdf2-sha256$1000$",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw==",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw==$",
        "pbkdf2-sha1$1000$" KNOWN_TAIL,
        "PBKDF2-SHA256$1000$" KNOWN_TAIL,
        "bcrypt$2b$12$abcdefghijklmnopqrstuu",
        /* iterations out of range or not a number */
        "pbkdf2-sha256$999$" KNOWN_TAIL,
        "pbkdf2-sha256$0$" KNOWN_TAIL,
        "pbkdf2-sha256$-1000$" KNOWN_TAIL,
        "pbkdf2-sha256$x$" KNOWN_TAIL,
        "pbkdf2-sha256$99999999999999999999$" KNOWN_TAIL,
        "pbkdf2-sha256$20000000$" KNOWN_TAIL,
        /* bad base64, short salt, short key */
        "pbkdf2-sha256$1000$!!!!!!!!!!!!!!!!!!!!!!!!$yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ=",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw==$!!!!",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw$yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ=",
        "pbkdf2-sha256$1000$AAECAw==$yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ=",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw==$yRTMTwbMbo9G0Vfj",
        /* the right key under a wrong salt */
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODg==$yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ=",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (cr_password_verify("correct horse", bad[i]))
            fail_msg("verified against malformed '%s'", bad[i]);
}

static void cr_password_verify__too_long__false(void **state)
{
    (void)state;
    char stored[CR_PASSWORD_HASH_MAX + 40];
    snprintf(stored, sizeof(stored), "%s", KNOWN_STORED);
    size_t n = strlen(stored);
    memset(stored + n, '=', sizeof(stored) - 1 - n);
    stored[sizeof(stored) - 1] = '\0';
    assert_false(cr_password_verify("correct horse", stored));
}

static void cr_password_verify__long_base64_fields__false_no_overflow(void **state)
{
    (void)state;
    /*
     * Regression guard (fixed): cr_password_verify() decodes the salt and the key with
     * EVP_DecodeBlock() into 64-byte stack arrays (salt[64], want[64])
     * without bounding the base64 input. A stored string shorter than
     * CR_PASSWORD_HASH_MAX whose salt field is 136 base64 characters decodes
     * to 102 bytes: a stack buffer overflow (the SANITIZE build reports
     * stack-buffer-overflow through the spy's memcpy; the plain build fails
     * the size assertion below). Malformed stored strings must just give
     * false. A valid field decodes to at most 18 (salt) or 33 (key) bytes.
     */
    char stored[CR_PASSWORD_HASH_MAX];
    int n = snprintf(stored, sizeof(stored), "pbkdf2-sha256$1000$");
    memset(stored + n, 'A', 136);
    strcpy(stored + n + 136, "$");
    assert_true(strlen(stored) < CR_PASSWORD_HASH_MAX);
    spy_max_decoded = 0;
    assert_false(cr_password_verify("x", stored));
    assert_in_range(spy_max_decoded, 0, 64);

    n = snprintf(stored, sizeof(stored), "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw==$");
    memset(stored + n, 'A', 112);
    stored[n + 112] = '\0';
    assert_true(strlen(stored) < CR_PASSWORD_HASH_MAX);
    spy_max_decoded = 0;
    assert_false(cr_password_verify("x", stored));
    assert_in_range(spy_max_decoded, 0, 64);
}

static void cr_multihash__pooled_chunks__same_digests(void **state)
{
    (void)state;
    struct cr_hashpool *pool = NULL;
    assert_int_equal(cr_hashpool_start(2, &pool), 0);
    size_t n = 3 * 1024 * 1024 + 17;
    unsigned char *buf = malloc(n);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)(i * 31 + (i >> 8));
    char a256[CR_SHA256_HEX], a1[CR_SHA1_HEX], amd5[CR_MD5_HEX];
    char b256[CR_SHA256_HEX], b1[CR_SHA1_HEX], bmd5[CR_MD5_HEX];
    struct cr_multihash *plain = cr_multihash_new(NULL), *pooled = cr_multihash_new(pool);
    struct cr_multihash *abandoned = cr_multihash_new(pool);
    for (size_t off = 0; off < n;) {
        size_t len = (off * 7 % 65521) + 1;
        if (len > n - off)
            len = n - off;
        cr_multihash_update(plain, buf + off, len);
        cr_multihash_update(pooled, buf + off, len);
        cr_multihash_update(abandoned, buf + off, len);
        off += len;
    }
    cr_multihash_update(pooled, buf, 0);
    cr_multihash_final(plain, a256, a1, amd5);
    cr_multihash_final(pooled, b256, b1, bmd5);
    assert_string_equal(a256, b256);
    assert_string_equal(a1, b1);
    assert_string_equal(amd5, bmd5);
    cr_multihash_free(abandoned); /* freed with work queued: waits, no leak */
    cr_multihash_free(plain);
    cr_multihash_free(pooled);
    free(buf);
    cr_hashpool_stop(pool);
}

/* One million 'a' (the FIPS 180 / RFC 1321 long vectors), in pieces of
 * 1000 bytes: the first CR_HASH_INLINE_MAX inline, the rest through the
 * pool's three streams in CR_HASH_BATCH chunks, the last one partial. */
static void cr_multihash__pooled_million_a__known_vectors(void **state)
{
    (void)state;
    struct cr_hashpool *pool = NULL;
    assert_int_equal(cr_hashpool_start(2, &pool), 0);
    char piece[1000];
    memset(piece, 'a', sizeof(piece));
    struct cr_multihash *h = cr_multihash_new(pool);
    assert_non_null(h);
    for (int i = 0; i < 1000; i++)
        cr_multihash_update(h, piece, sizeof(piece));
    char s256[CR_SHA256_HEX], s1[CR_SHA1_HEX], m5[CR_MD5_HEX];
    cr_multihash_final(h, s256, s1, m5);
    cr_multihash_free(h);
    assert_string_equal(s256, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    assert_string_equal(s1, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    assert_string_equal(m5, "7707d6ae4e027c70eea2a935c2296f21");
    cr_hashpool_stop(pool);
}

/* Updates that end exactly at the inline limit and at batch boundaries,
 * and one spanning several batches: the same digests as without a pool. */
static void cr_multihash__batch_boundaries__same_digests(void **state)
{
    (void)state;
    struct cr_hashpool *pool = NULL;
    assert_int_equal(cr_hashpool_start(2, &pool), 0);
    size_t n = CR_HASH_INLINE_MAX + 3 * CR_HASH_BATCH;
    unsigned char *buf = malloc(n);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)(i * 131 + (i >> 11));
    /* cut points: the inline limit, +1, a batch later exactly, then the rest in one piece */
    size_t cuts[][4] = {
        {CR_HASH_INLINE_MAX, CR_HASH_INLINE_MAX + 1, CR_HASH_INLINE_MAX + 1 + CR_HASH_BATCH, n},
        {CR_HASH_INLINE_MAX - 1, CR_HASH_INLINE_MAX + CR_HASH_BATCH, n - 1, n},
        {n, n, n, n}, /* one update of everything: no inline part at all */
    };
    char a256[CR_SHA256_HEX], a1[CR_SHA1_HEX], amd5[CR_MD5_HEX];
    struct cr_multihash *plain = cr_multihash_new(NULL);
    cr_multihash_update(plain, buf, n);
    cr_multihash_final(plain, a256, a1, amd5);
    cr_multihash_free(plain);
    for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) {
        struct cr_multihash *h = cr_multihash_new(pool);
        size_t off = 0;
        for (int j = 0; j < 4; j++) {
            cr_multihash_update(h, buf + off, cuts[k][j] - off);
            off = cuts[k][j];
        }
        char b256[CR_SHA256_HEX], b1[CR_SHA1_HEX], bmd5[CR_MD5_HEX];
        cr_multihash_final(h, b256, b1, bmd5);
        cr_multihash_free(h);
        assert_string_equal(a256, b256);
        assert_string_equal(a1, b1);
        assert_string_equal(amd5, bmd5);
    }
    free(buf);
    cr_hashpool_stop(pool);
}

struct small_body {
    struct cr_hashpool *pool;
    char s256[CR_SHA256_HEX];
    atomic_bool done;
};

static void *small_body_thread(void *arg)
{
    struct small_body *sb = arg;
    static char body[CR_HASH_INLINE_MAX];
    memset(body, 'a', sizeof(body));
    struct cr_multihash *h = cr_multihash_new(sb->pool);
    for (size_t off = 0; off < sizeof(body); off += 4096)
        cr_multihash_update(h, body + off, 4096);
    char s1[CR_SHA1_HEX], m5[CR_MD5_HEX];
    cr_multihash_final(h, sb->s256, s1, m5);
    cr_multihash_free(h);
    atomic_store(&sb->done, true);
    return NULL;
}

/* A body of up to CR_HASH_INLINE_MAX bytes never waits for a worker: on a
 * pool without any, its digests are still computed (it would hang if a
 * byte had been queued). */
static void cr_multihash__small_body_on_pool__hashed_inline(void **state)
{
    (void)state;
    struct cr_hashpool *pool = NULL;
    assert_int_equal(cr_hashpool_start(0, &pool), 0);
    struct small_body sb = {.pool = pool};
    atomic_init(&sb.done, false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, small_body_thread, &sb), 0);
    for (int i = 0; i < 3000 && !atomic_load(&sb.done); i++)
        usleep(10 * 1000);
    assert_true(atomic_load(&sb.done)); /* else: stuck waiting for a worker */
    pthread_join(t, NULL);
    char want[CR_SHA256_HEX];
    static char body[CR_HASH_INLINE_MAX];
    memset(body, 'a', sizeof(body));
    cr_sha256_hex(body, sizeof(body), want);
    assert_string_equal(sb.s256, want);
    cr_hashpool_stop(pool);
}

struct pool_stress {
    struct cr_hashpool *pool;
    int seed;
    int failures;
};

static void *pool_stress_thread(void *arg)
{
    struct pool_stress *ps = arg;
    unsigned char buf[70000];
    unsigned int x = (unsigned int)ps->seed;
    for (int round = 0; round < 40; round++) {
        struct cr_multihash *plain = cr_multihash_new(NULL), *pooled = cr_multihash_new(ps->pool);
        int chunks = 1 + round % 7;
        for (int c = 0; c < chunks; c++) {
            x = x * 1103515245u + 12345u;
            size_t len = x % sizeof(buf);
            for (size_t i = 0; i < len; i++)
                buf[i] = (unsigned char)(x >> (i % 24));
            cr_multihash_update(plain, buf, len);
            cr_multihash_update(pooled, buf, len);
        }
        if (round % 5 == 4) { /* abandoned with work queued, as an aborted upload */
            cr_multihash_free(pooled);
            cr_multihash_free(plain);
            continue;
        }
        char a256[CR_SHA256_HEX], a1[CR_SHA1_HEX], amd5[CR_MD5_HEX];
        char b256[CR_SHA256_HEX], b1[CR_SHA1_HEX], bmd5[CR_MD5_HEX];
        cr_multihash_final(plain, a256, a1, amd5);
        cr_multihash_final(pooled, b256, b1, bmd5);
        if (strcmp(a256, b256) || strcmp(a1, b1) || strcmp(amd5, bmd5))
            ps->failures++;
        cr_multihash_free(plain);
        cr_multihash_free(pooled);
    }
    return NULL;
}

/* Many uploads at once from several threads share two workers. */
static void cr_hashpool__concurrent_contexts__right_digests_no_deadlock(void **state)
{
    (void)state;
    struct cr_hashpool *pool = NULL;
    assert_int_equal(cr_hashpool_start(2, &pool), 0);
    pthread_t t[6];
    struct pool_stress ps[6];
    for (int i = 0; i < 6; i++) {
        ps[i] = (struct pool_stress){pool, i + 1, 0};
        assert_int_equal(pthread_create(&t[i], NULL, pool_stress_thread, &ps[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(ps[i].failures, 0);
    }
    cr_hashpool_stop(pool);
}

static void cr_sha512_and_digest__abc__known_vectors(void **state)
{
    (void)state;
    static const char want[] = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                               "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
    char hex[CR_SHA512_HEX];
    cr_sha512_hex("abc", 3, hex);
    assert_string_equal(hex, want);
    struct cr_digest *d = cr_digest_new(CR_SHA512);
    assert_non_null(d);
    cr_digest_update(d, "a", 1);
    cr_digest_update(d, "bc", 2);
    unsigned char raw[64];
    assert_int_equal(cr_digest_final(d, raw), 64);
    cr_digest_free(d);
    assert_int_equal(raw[0], 0xdd);
    assert_int_equal(raw[63], 0x9f);
    char b64[16];
    assert_int_equal(cr_base64_encode("abcd", 4, b64), 8);
    assert_string_equal(b64, "YWJjZA==");
}

static void cr_seal__round_trip__tampering_refused(void **state)
{
    (void)state;
    unsigned char key[32], other[32], sealed[64 + CR_SEAL_OVERHEAD], again[64 + CR_SEAL_OVERHEAD];
    char clear[65] = {0};
    memset(key, 7, sizeof(key));
    memset(other, 8, sizeof(other));
    const char *pw = "upstream password";
    size_t n = strlen(pw);
    assert_int_equal(cr_seal(key, pw, n, sealed), GR_OK);
    assert_int_equal(cr_seal(key, pw, n, again), GR_OK);
    assert_memory_not_equal(sealed, again, n + CR_SEAL_OVERHEAD); /* a fresh nonce each time */
    assert_int_equal(cr_open(key, sealed, n + CR_SEAL_OVERHEAD, clear), GR_OK);
    assert_string_equal(clear, pw);
    assert_int_equal(cr_open(other, sealed, n + CR_SEAL_OVERHEAD, clear), GR_EAUTH);
    sealed[14] ^= 1;
    assert_int_equal(cr_open(key, sealed, n + CR_SEAL_OVERHEAD, clear), GR_EAUTH);
    assert_int_equal(cr_open(key, sealed, CR_SEAL_OVERHEAD - 1, clear), GR_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cr_multihash__pooled_chunks__same_digests),
        cmocka_unit_test(cr_multihash__pooled_million_a__known_vectors),
        cmocka_unit_test(cr_multihash__batch_boundaries__same_digests),
        cmocka_unit_test(cr_multihash__small_body_on_pool__hashed_inline),
        cmocka_unit_test(cr_sha512_and_digest__abc__known_vectors),
        cmocka_unit_test(cr_hashpool__concurrent_contexts__right_digests_no_deadlock),
        cmocka_unit_test(cr_multihash__known_vectors__match),
        cmocka_unit_test(cr_multihash__no_update__empty_digests),
        cmocka_unit_test(cr_multihash__chunked__equals_one_shot),
        cmocka_unit_test(cr_multihash_free__null__ok),
        cmocka_unit_test(cr_sha256_hex__known_vectors__match),
        cmocka_unit_test(cr_sha256_fd_hex__whole_range_and_short__match_or_eio),
        cmocka_unit_test(cr_hmac_sha256__rfc4231_case2__match),
        cmocka_unit_test(cr_hmac_sha256__rfc4231_case1__match),
        cmocka_unit_test(cr_hmac_sha256__rfc4231_case6_long_key__match),
        cmocka_unit_test(cr_hmac_sha256_k__any_key__same_as_oneshot),
        cmocka_unit_test(cr_equal__cases__compared),
        cmocka_unit_test(cr_random__bytes__filled_and_different),
        cmocka_unit_test(cr_random_password__len24__alphabet_and_length),
        cmocka_unit_test(cr_random_password__len0__empty),
        cmocka_unit_test(cr_random_password__many__every_class_seen),
        cmocka_unit_test(cr_random_password__long__ok_or_error_no_overflow),
        cmocka_unit_test(cr_password_hash__round_trip__verifies),
        cmocka_unit_test(cr_password_verify__foreign_known_hash__true),
        cmocka_unit_test(cr_password_verify__wrong_password__false),
        cmocka_unit_test(cr_password_verify__malformed__false),
        cmocka_unit_test(cr_password_verify__too_long__false),
        cmocka_unit_test(cr_seal__round_trip__tampering_refused),
        cmocka_unit_test(cr_password_verify__long_base64_fields__false_no_overflow),
    };
    return cmocka_run_group_tests_name("crypto", tests, NULL, NULL);
}
