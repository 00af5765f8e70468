/* hashspeed.c - the upload baseline for `make bench`: single-thread speed of
 * sha256 + sha1 + md5 computed in one pass (1 MiB chunks, OpenSSL EVP) over
 * a file held in memory, i.e. what granaryd's upload path must do per byte.
 *
 * usage: hashspeed FILE [PASSES]
 * prints: "<best MB/s> <sha256 hex>"  (MB = 10^6 bytes; best of PASSES, default 3)
 *
 * Built by bench/run: cc -O2 -o build/bench/hashspeed bench/hashspeed.c -lcrypto
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHUNK (1024 * 1024)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: hashspeed FILE [PASSES]\n");
        return 2;
    }
    int passes = argc > 2 ? atoi(argv[2]) : 3;
    if (passes < 1)
        passes = 1;

    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    if (fseek(f, 0, SEEK_END) != 0) {
        perror("fseek");
        return 1;
    }
    long size = ftell(f);
    rewind(f);
    unsigned char *buf = malloc(size > 0 ? (size_t)size : 1);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "hashspeed: cannot read %s\n", argv[1]);
        return 1;
    }
    fclose(f);

    double best = 0;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    for (int p = 0; p < passes; p++) {
        EVP_MD_CTX *c256 = EVP_MD_CTX_new(), *c1 = EVP_MD_CTX_new(), *c5 = EVP_MD_CTX_new();
        if (!c256 || !c1 || !c5)
            return 1;
        double t0 = now();
        EVP_DigestInit_ex(c256, EVP_sha256(), NULL);
        EVP_DigestInit_ex(c1, EVP_sha1(), NULL);
        EVP_DigestInit_ex(c5, EVP_md5(), NULL);
        for (long off = 0; off < size; off += CHUNK) {
            size_t n = (size_t)(size - off < CHUNK ? size - off : CHUNK);
            EVP_DigestUpdate(c256, buf + off, n);
            EVP_DigestUpdate(c1, buf + off, n);
            EVP_DigestUpdate(c5, buf + off, n);
        }
        unsigned char tmp[EVP_MAX_MD_SIZE];
        unsigned int tl;
        EVP_DigestFinal_ex(c1, tmp, &tl);
        EVP_DigestFinal_ex(c5, tmp, &tl);
        EVP_DigestFinal_ex(c256, md, &mdlen);
        double dt = now() - t0;
        double mbps = dt > 0 ? (double)size / 1e6 / dt : 0;
        if (mbps > best)
            best = mbps;
        EVP_MD_CTX_free(c256);
        EVP_MD_CTX_free(c1);
        EVP_MD_CTX_free(c5);
    }
    printf("%.1f ", best);
    for (unsigned int i = 0; i < mdlen; i++)
        printf("%02x", md[i]);
    printf("\n");
    free(buf);
    return 0;
}
