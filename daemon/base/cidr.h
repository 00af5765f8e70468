/*
 * cidr.h - address ranges ("10.0.0.0/8", "::1/128", "192.0.2.7"), for the
 * proxies whose X-Forwarded-For a node believes (--trusted-proxy,
 * docs/security.md). Pure functions, no allocation, any thread.
 */
#ifndef GR_CIDR_H
#define GR_CIDR_H

#include <stdbool.h>
#include <stddef.h>

#define GR_CIDR_MAX 32 /* ranges in one list */

struct gr_cidr {
    int family;             /* AF_INET or AF_INET6 */
    unsigned char addr[16]; /* network byte order, host bits cleared */
    int bits;               /* prefix length */
};

/*
 * Parse a comma-separated list of ranges (blanks around each ignored; an
 * address without "/N" is a single host) into out[0..max). "" is an empty
 * list. GR_OK with *n set, or GR_EINVAL (a malformed range, a prefix too
 * long for its family, more than max ranges).
 */
int gr_cidr_parse_list(const char *s, struct gr_cidr *out, int max, int *n)
    __attribute__((warn_unused_result));

/* Whether the textual address addr (IPv4, IPv6, or IPv4-mapped IPv6) lies in one of v[0..n). */
bool gr_cidr_contains(const struct gr_cidr *v, int n, const char *addr);

#endif
