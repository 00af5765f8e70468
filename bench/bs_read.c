/* bs_read.c - `make bench-bs`: the cost of checked reads. Stores a file of
 * random bytes (256 MiB by default) through bs_upload, so it sits in the
 * page cache, then reports the best of PASSES for
 *   bs_crc32c over memory, hardware and software paths,
 *   bs_blob_read in sequential 64 KiB (and 1 MiB) reads,
 *   plain pread(2) with the same sizes on the same fd.
 * GB = 10^9 bytes. The store lives in a fresh directory under DIR (default
 * /tmp) and is removed afterwards.
 *
 * usage: bs_read [MiB] [PASSES] [DIR]
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bs.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

static volatile uint32_t sink;

static double crc_speed(uint32_t (*fn)(uint32_t, const void *, size_t), const unsigned char *buf,
                        size_t len, int passes)
{
    double best = 0;
    for (int p = 0; p < passes; p++) {
        double t = now();
        sink ^= fn(0, buf, len);
        double gbs = (double)len / (now() - t) / 1e9;
        if (gbs > best)
            best = gbs;
    }
    return best;
}

/* Sequential reads of `chunk` bytes; checked through the blob or plain. */
static double read_speed(struct bs_blob *b, bool checked, unsigned char *buf, size_t chunk,
                         int passes)
{
    uint64_t size = bs_blob_size(b);
    double best = 0;
    for (int p = 0; p < passes; p++) {
        double t = now();
        for (uint64_t off = 0; off < size;) {
            ssize_t r = checked ? bs_blob_read(b, off, buf, chunk)
                                : pread(bs_blob_fd(b), buf, chunk, (off_t)off);
            if (r <= 0) {
                fprintf(stderr, "bs_read: read at %llu: %s\n", (unsigned long long)off,
                        r < 0 && checked ? bs_strerror((int)r) : "short");
                exit(1);
            }
            off += (uint64_t)r;
        }
        double gbs = (double)size / (now() - t) / 1e9;
        if (gbs > best)
            best = gbs;
    }
    return best;
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 256;
    int passes = argc > 2 ? atoi(argv[2]) : 5;
    const char *base = argc > 3 ? argv[3] : "/tmp";
    if (mib < 1 || passes < 1) {
        fprintf(stderr, "usage: bs_read [MiB] [PASSES] [DIR]\n");
        return 2;
    }
    size_t len = mib << 20;
    unsigned char *data = aligned_alloc(4096, len), *buf = aligned_alloc(4096, 1 << 20);
    if (!data || !buf)
        return 1;
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < len; i += 8) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        memcpy(data + i, &s, 8);
    }

    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/bs_read-XXXXXX", base);
    if (!mkdtemp(dir)) {
        perror(dir);
        return 1;
    }
    struct bs_store *bs = NULL;
    struct bs_upload *u = NULL;
    const char *sha = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
    double t = now();
    if (bs_open(dir, &bs) != BS_OK || bs_upload_begin(bs, &u) != BS_OK) {
        fprintf(stderr, "bs_read: cannot open a store in %s\n", dir);
        return 1;
    }
    for (size_t off = 0; off < len; off += 1 << 20)
        if (bs_upload_write(u, data + off, 1 << 20) != BS_OK)
            return 1;
    if (bs_upload_commit(u, sha, NULL) != BS_OK)
        return 1;
    double upload = now() - t;

    struct bs_blob *b = NULL;
    if (bs_blob_open(bs, sha, &b) != BS_OK)
        return 1;
    read_speed(b, false, buf, 1 << 20, 1); /* warm the page cache */

    printf("file: %zu MiB in the page cache, best of %d passes, GB = 1e9 bytes\n", mib, passes);
    printf("upload (write + block CRCs + fsync): %.2f GB/s\n", (double)len / upload / 1e9);
    printf("bs_crc32c hw (%s): %6.2f GB/s\n", bs_crc32c_has_hw() ? "sse4.2" : "absent",
           crc_speed(bs_crc32c_hw, data, len, passes));
    printf("bs_crc32c sw (slicing-by-8): %6.2f GB/s\n", crc_speed(bs_crc32c_sw, data, len, passes));
    printf("sequential 64 KiB: bs_blob_read %6.2f GB/s, pread %6.2f GB/s\n",
           read_speed(b, true, buf, BS_BLOCK, passes), read_speed(b, false, buf, BS_BLOCK, passes));
    printf("sequential 1 MiB:  bs_blob_read %6.2f GB/s, pread %6.2f GB/s\n",
           read_speed(b, true, buf, 1 << 20, passes), read_speed(b, false, buf, 1 << 20, passes));
    printf("unaligned 64 KiB (+100): bs_blob_read ");
    {
        double best = 0;
        for (int p = 0; p < passes; p++) {
            double t0 = now();
            for (uint64_t off = 100; off < len;) {
                ssize_t r = bs_blob_read(b, off, buf, BS_BLOCK);
                if (r <= 0)
                    return 1;
                off += (uint64_t)r;
            }
            double gbs = (double)(len - 100) / (now() - t0) / 1e9;
            best = gbs > best ? gbs : best;
        }
        printf("%6.2f GB/s\n", best);
    }
    bs_blob_close(b);
    bs_close(bs);
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(data);
    free(buf);
    return 0;
}
