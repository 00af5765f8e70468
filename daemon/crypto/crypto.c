/* crypto.c - OpenSSL behind the small API of crypto.h. */
#include "crypto/crypto.h"

#include "base/err.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cr_multihash {
    EVP_MD_CTX *sha256, *sha1, *md5;
};

struct cr_multihash *cr_multihash_new(void)
{
    struct cr_multihash *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->sha256 = EVP_MD_CTX_new();
    h->sha1 = EVP_MD_CTX_new();
    h->md5 = EVP_MD_CTX_new();
    if (!h->sha256 || !h->sha1 || !h->md5 || !EVP_DigestInit_ex(h->sha256, EVP_sha256(), NULL) ||
        !EVP_DigestInit_ex(h->sha1, EVP_sha1(), NULL) ||
        !EVP_DigestInit_ex(h->md5, EVP_md5(), NULL)) {
        cr_multihash_free(h);
        return NULL;
    }
    return h;
}

void cr_multihash_update(struct cr_multihash *h, const void *data, size_t len)
{
    EVP_DigestUpdate(h->sha256, data, len);
    EVP_DigestUpdate(h->sha1, data, len);
    EVP_DigestUpdate(h->md5, data, len);
}

static void crypto__hex(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static void crypto__final(EVP_MD_CTX *c, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(c, md, &n);
    crypto__hex(md, n, out);
}

void cr_multihash_final(struct cr_multihash *h, char sha256[CR_SHA256_HEX], char sha1[CR_SHA1_HEX],
                        char md5[CR_MD5_HEX])
{
    crypto__final(h->sha256, sha256);
    crypto__final(h->sha1, sha1);
    crypto__final(h->md5, md5);
}

void cr_multihash_free(struct cr_multihash *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->sha256);
    EVP_MD_CTX_free(h->sha1);
    EVP_MD_CTX_free(h->md5);
    free(h);
}

void cr_sha256_hex(const void *data, size_t len, char out[CR_SHA256_HEX])
{
    unsigned char md[32];
    unsigned int n = 32;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    crypto__hex(md, 32, out);
}

void cr_hmac_sha256(const void *key, size_t klen, const void *data, size_t len,
                    unsigned char out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)klen, data, len, out, &n);
}

int cr_random(void *buf, size_t n)
{
    return RAND_bytes(buf, (int)n) == 1 ? GR_OK : GR_EIO;
}

int cr_random_password(char *out, size_t len)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[256];
    if (len >= sizeof(rnd))
        return GR_EINVAL;
    if (cr_random(rnd, len) != GR_OK)
        return GR_EIO;
    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[rnd[i] % 62]; /* 256 % 62 bias is negligible for 24+ chars */
    out[len] = '\0';
    return GR_OK;
}

bool cr_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

int cr_password_hash(const char *password, char out[CR_PASSWORD_HASH_MAX])
{
    unsigned char salt[16], dk[32];
    unsigned char salt64[32], dk64[64];
    if (cr_random(salt, sizeof(salt)) != GR_OK)
        return GR_EIO;
    if (!PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, sizeof(salt),
                           CR_PBKDF2_ITERATIONS, EVP_sha256(), sizeof(dk), dk))
        return GR_EIO;
    EVP_EncodeBlock(salt64, salt, sizeof(salt));
    EVP_EncodeBlock(dk64, dk, sizeof(dk));
    snprintf(out, CR_PASSWORD_HASH_MAX, "pbkdf2-sha256$%d$%s$%s", CR_PBKDF2_ITERATIONS,
             (char *)salt64, (char *)dk64);
    return GR_OK;
}

bool cr_password_verify(const char *password, const char *stored)
{
    char buf[CR_PASSWORD_HASH_MAX];
    if (strlen(stored) >= sizeof(buf) || strncmp(stored, "pbkdf2-sha256$", 14) != 0)
        return false;
    strcpy(buf, stored + 14);
    char *iters = buf, *salt64 = strchr(iters, '$');
    if (!salt64)
        return false;
    *salt64++ = '\0';
    char *dk64 = strchr(salt64, '$');
    if (!dk64)
        return false;
    *dk64++ = '\0';
    char *end;
    long it = strtol(iters, &end, 10);
    if (*end || it < 1000 || it > 10000000)
        return false;
    /* 16 bytes of salt and 32 of key are 24 and 44 base64 characters */
    if (strlen(salt64) != 24 || strlen(dk64) != 44)
        return false;
    unsigned char salt[64], want[64], got[32];
    int sl = EVP_DecodeBlock(salt, (const unsigned char *)salt64, (int)strlen(salt64));
    int wl = EVP_DecodeBlock(want, (const unsigned char *)dk64, (int)strlen(dk64));
    if (sl < 16 || wl < 32)
        return false;
    /* EVP_DecodeBlock counts padding bytes: the salt is 16 bytes, the key 32 */
    if (!PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, 16, (int)it, EVP_sha256(),
                           sizeof(got), got))
        return false;
    return CRYPTO_memcmp(got, want, sizeof(got)) == 0;
}
