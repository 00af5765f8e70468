/*
 * crc32c.c - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used
 * by iSCSI, ext4 and SCTP. x86-64 with SSE4.2 uses the crc32 instruction on
 * three independent streams at once (the instruction has a latency of 3 and
 * a throughput of 1 per cycle) and joins them with "shift by n zero bytes"
 * tables; everything else uses slicing-by-8 tables. The method is Mark
 * Adler's (zlib's crc32_combine idea applied to the interleave).
 */
#include "bs.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82f63b78u

/* Interleave lengths: three streams of LONG bytes, then of SHORT bytes. */
#define LONG 8192
#define SHORT 256

static uint32_t crc__sw[8][256];    /* slicing-by-8 */
static uint32_t crc__long[4][256];  /* append LONG zero bytes to a crc */
static uint32_t crc__short[4][256]; /* append SHORT zero bytes to a crc */
static pthread_once_t crc__once = PTHREAD_ONCE_INIT;
static uint32_t (*crc__impl)(uint32_t, const void *, size_t);
static void crc__init(void);

/* Multiply a 32x32 GF(2) matrix (mat[i] = column i) by a vector. */
static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
    uint32_t sum = 0;
    while (vec) {
        if (vec & 1)
            sum ^= *mat;
        vec >>= 1;
        mat++;
    }
    return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *mat)
{
    for (int n = 0; n < 32; n++)
        square[n] = gf2_times(mat, mat[n]);
}

/* The operator that appends len zero bytes (len a power of two) to a raw
 * (not pre/post-inverted) crc register, as 32 columns in even[]. */
static void zeros_op(uint32_t *even, size_t len)
{
    uint32_t odd[32];
    uint32_t row = 1;
    odd[0] = POLY; /* one zero bit */
    for (int n = 1; n < 32; n++) {
        odd[n] = row;
        row <<= 1;
    }
    gf2_square(even, odd); /* two zero bits */
    gf2_square(odd, even); /* four zero bits */
    /* the first square gives one zero byte; each next one doubles it */
    do {
        gf2_square(even, odd);
        len >>= 1;
        if (len == 0)
            return;
        gf2_square(odd, even);
        len >>= 1;
    } while (len);
    memcpy(even, odd, sizeof(odd));
}

/* Byte-wise tables of the zeros operator, one per byte of the operand. */
static void zeros_tables(uint32_t zeros[][256], size_t len)
{
    uint32_t op[32];
    zeros_op(op, len);
    for (uint32_t n = 0; n < 256; n++) {
        zeros[0][n] = gf2_times(op, n);
        zeros[1][n] = gf2_times(op, n << 8);
        zeros[2][n] = gf2_times(op, n << 16);
        zeros[3][n] = gf2_times(op, n << 24);
    }
}

static inline uint32_t crc_shift(uint32_t zeros[][256], uint32_t crc)
{
    return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^ zeros[2][(crc >> 16) & 0xff] ^
           zeros[3][crc >> 24];
}

static inline uint64_t load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v)); /* little-endian hosts only use the word path */
    return v;
}

uint32_t bs_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    pthread_once(&crc__once, crc__init);
    crc = ~crc;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (len && ((uintptr_t)p & 7)) {
        crc = crc__sw[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        len--;
    }
    while (len >= 8) {
        uint64_t w = load64(p) ^ crc;
        crc = crc__sw[7][w & 0xff] ^ crc__sw[6][(w >> 8) & 0xff] ^ crc__sw[5][(w >> 16) & 0xff] ^
              crc__sw[4][(w >> 24) & 0xff] ^ crc__sw[3][(w >> 32) & 0xff] ^
              crc__sw[2][(w >> 40) & 0xff] ^ crc__sw[1][(w >> 48) & 0xff] ^ crc__sw[0][w >> 56];
        p += 8;
        len -= 8;
    }
#endif
    while (len--)
        crc = crc__sw[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

#define HW __attribute__((target("sse4.2")))

HW static uint32_t crc__hw(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t c0 = ~crc & 0xffffffffu, c1, c2;

    while (len && ((uintptr_t)p & 7)) {
        c0 = _mm_crc32_u8((uint32_t)c0, *p++);
        len--;
    }
    while (len >= 3 * LONG) {
        const unsigned char *end = p + LONG;
        c1 = c2 = 0;
        do {
            c0 = _mm_crc32_u64(c0, load64(p));
            c1 = _mm_crc32_u64(c1, load64(p + LONG));
            c2 = _mm_crc32_u64(c2, load64(p + 2 * LONG));
            p += 8;
        } while (p < end);
        c0 = crc_shift(crc__long, (uint32_t)c0) ^ c1;
        c0 = crc_shift(crc__long, (uint32_t)c0) ^ c2;
        p += 2 * LONG;
        len -= 3 * LONG;
    }
    while (len >= 3 * SHORT) {
        const unsigned char *end = p + SHORT;
        c1 = c2 = 0;
        do {
            c0 = _mm_crc32_u64(c0, load64(p));
            c1 = _mm_crc32_u64(c1, load64(p + SHORT));
            c2 = _mm_crc32_u64(c2, load64(p + 2 * SHORT));
            p += 8;
        } while (p < end);
        c0 = crc_shift(crc__short, (uint32_t)c0) ^ c1;
        c0 = crc_shift(crc__short, (uint32_t)c0) ^ c2;
        p += 2 * SHORT;
        len -= 3 * SHORT;
    }
    while (len >= 8) {
        c0 = _mm_crc32_u64(c0, load64(p));
        p += 8;
        len -= 8;
    }
    while (len--)
        c0 = _mm_crc32_u8((uint32_t)c0, *p++);
    return ~(uint32_t)c0;
}
#endif

static void crc__init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        crc__sw[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int k = 1; k < 8; k++)
            crc__sw[k][n] = crc__sw[0][crc__sw[k - 1][n] & 0xff] ^ (crc__sw[k - 1][n] >> 8);
    zeros_tables(crc__long, LONG);
    zeros_tables(crc__short, SHORT);
    crc__impl = bs_crc32c_sw;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2"))
        crc__impl = crc__hw;
#endif
}

bool bs_crc32c_has_hw(void)
{
    pthread_once(&crc__once, crc__init);
#if defined(__x86_64__)
    return crc__impl == crc__hw;
#else
    return false;
#endif
}

uint32_t bs_crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc__once, crc__init);
#if defined(__x86_64__)
    if (crc__impl == crc__hw)
        return crc__hw(crc, data, len);
#endif
    return bs_crc32c_sw(crc, data, len);
}

uint32_t bs_crc32c(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc__once, crc__init);
    return crc__impl(crc, data, len);
}
