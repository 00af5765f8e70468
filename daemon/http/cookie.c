/* cookie.c - the Cookie header and the session cookie's Set-Cookie (cookie.h). */
#include "http/cookie.h"

#include <stdio.h>
#include <string.h>

static bool cookie__octet_ok(unsigned char c)
{
    /* RFC 6265 cookie-octet */
    return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) ||
           (c >= 0x3c && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}

bool http_cookie_get(const char *header, const char *name, char *out, size_t outsz)
{
    if (!header || !name || !outsz)
        return false;
    size_t nl = strlen(name);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        if (!end)
            end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq && (size_t)(eq - p) == nl && !memcmp(p, name, nl)) {
            const char *v = eq + 1, *ve = end;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
                v++;
                ve--;
            }
            size_t n = (size_t)(ve - v);
            if (n >= outsz)
                return false;
            for (size_t i = 0; i < n; i++)
                if (!cookie__octet_ok((unsigned char)v[i]))
                    return false;
            memcpy(out, v, n);
            out[n] = '\0';
            return true;
        }
        p = end;
    }
    return false;
}

bool http_session_set_cookie(char *out, size_t outsz, const char *value, long max_age, bool secure)
{
    bool clear = !value || !*value;
    int n = snprintf(out, outsz, "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%ld%s",
                     HTTP_SESSION_COOKIE, clear ? "" : value, clear ? 0L : max_age,
                     secure ? "; Secure" : "");
    return n > 0 && (size_t)n < outsz;
}
