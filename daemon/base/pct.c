/* pct.c - percent-decoding. */
#include "base/pct.h"

int gr_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *gr_pct_decode(struct gr_arena *a, const char *s, size_t n)
{
    char *out = gr_arena_alloc(a, n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0')
            return NULL;
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        if (i + 2 >= n)
            return NULL;
        int h = gr_hex_digit(s[i + 1]), l = gr_hex_digit(s[i + 2]);
        if (h < 0 || l < 0 || (h == 0 && l == 0))
            return NULL;
        out[o++] = (char)(h * 16 + l);
        i += 2;
    }
    out[o] = '\0';
    return out;
}
