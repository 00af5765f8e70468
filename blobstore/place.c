/*
 * place.c - which nodes hold a binary: rendezvous (highest random weight)
 * hashing with a preference for distinct zones. Pure: no I/O, no state.
 */
#include "bs.h"

#include <string.h>

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= FNV_PRIME;
    }
    return h;
}

/* splitmix64's finaliser: every input bit reaches every output bit. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static bool same_zone(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Does a node scoring s with id beat the best so far (index best)? Ties go
 * to the smaller id, so the order of nodes[] does not matter. */
static bool beats(uint64_t s, const char *id, int best, uint64_t best_s,
                  const struct bs_node *nodes)
{
    return best < 0 || s > best_s || (s == best_s && strcmp(id, nodes[best].id) < 0);
}

int bs_place(const char *sha256, const struct bs_node *nodes, int n, const char *first_zone,
             int want, int *out)
{
    if (!sha256 || !out || (n > 0 && !nodes))
        return BS_EINVAL;
    if (n <= 0 || want <= 0)
        return 0;
    for (int i = 0; i < n; i++)
        if (!nodes[i].id)
            return BS_EINVAL;
    if (want > n)
        want = n;
    /* the FNV state after the hash and a NUL separator, shared by all nodes */
    uint64_t base = fnv1a(FNV_OFFSET, sha256) * FNV_PRIME;
    int chosen = 0;
    /* scores are recomputed per pick: no allocation, n is a handful */
    while (chosen < want) {
        int best_free = -1, best_any = -1;
        uint64_t sbf = 0, sba = 0;
        for (int i = 0; i < n; i++) {
            bool taken = false, zone_used = first_zone && same_zone(nodes[i].zone, first_zone);
            for (int k = 0; k < chosen && !taken; k++) {
                taken = out[k] == i;
                zone_used = zone_used || same_zone(nodes[i].zone, nodes[out[k]].zone);
            }
            if (taken)
                continue;
            uint64_t s = mix64(fnv1a(base, nodes[i].id));
            if (beats(s, nodes[i].id, best_any, sba, nodes)) {
                best_any = i;
                sba = s;
            }
            if (!zone_used && beats(s, nodes[i].id, best_free, sbf, nodes)) {
                best_free = i;
                sbf = s;
            }
        }
        out[chosen++] = best_free >= 0 ? best_free : best_any;
    }
    return chosen;
}
