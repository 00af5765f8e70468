/* cidr.c - address ranges (cidr.h). */
#include "base/cidr.h"

#include "base/err.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* One address into family and bytes (an IPv4-mapped IPv6 address reads as IPv4). */
static bool cidr__addr(const char *s, int *family, unsigned char out[16])
{
    if (inet_pton(AF_INET, s, out) == 1) {
        *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, s, out) != 1)
        return false;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!memcmp(out, mapped, 12)) {
        memmove(out, out + 12, 4);
        *family = AF_INET;
    } else {
        *family = AF_INET6;
    }
    return true;
}

/* Whether a and b agree on the first bits bits. */
static bool cidr__prefix_eq(const unsigned char *a, const unsigned char *b, int bits)
{
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)whole))
        return false;
    if (!rest)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

int gr_cidr_parse_list(const char *s, struct gr_cidr *out, int max, int *n)
{
    *n = 0;
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        if (!*s)
            break;
        size_t len = strcspn(s, ",");
        while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        char buf[64];
        if (len == 0 || len >= sizeof(buf) || *n >= max)
            return GR_EINVAL;
        memcpy(buf, s, len);
        buf[len] = '\0';
        s += len;
        while (*s && *s != ',')
            s++;
        char *slash = strchr(buf, '/');
        if (slash)
            *slash = '\0';
        struct gr_cidr *c = &out[*n];
        memset(c, 0, sizeof(*c));
        if (strchr(buf, ' ') || !cidr__addr(buf, &c->family, c->addr))
            return GR_EINVAL;
        int maxbits = c->family == AF_INET ? 32 : 128;
        c->bits = maxbits;
        if (slash) {
            char *end;
            long b = strtol(slash + 1, &end, 10);
            if (end == slash + 1 || *end || b < 0 || b > maxbits)
                return GR_EINVAL;
            c->bits = (int)b;
        }
        for (int i = c->bits; i < maxbits; i++) /* clear the host bits */
            c->addr[i / 8] &= (unsigned char)~(0x80 >> (i % 8));
        (*n)++;
    }
    return GR_OK;
}

bool gr_cidr_contains(const struct gr_cidr *v, int n, const char *addr)
{
    int family;
    unsigned char a[16];
    if (n == 0 || !cidr__addr(addr, &family, a))
        return false;
    for (int i = 0; i < n; i++)
        if (v[i].family == family && cidr__prefix_eq(a, v[i].addr, v[i].bits))
            return true;
    return false;
}
