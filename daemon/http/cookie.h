/*
 * cookie.h - the Cookie request header and the web UI's session cookie
 * (pure: no request, no allocation; tests/unit/test_cookie.c).
 */
#ifndef HTTP_COOKIE_H
#define HTTP_COOKIE_H

#include <stdbool.h>
#include <stddef.h>

/* The cookie that carries a web UI session (docs/ui.md). */
#define HTTP_SESSION_COOKIE "granary_session"

/*
 * The value of the first cookie called name in a Cookie header
 * ("a=1; b=2"), copied into out (outsz bytes, NUL-terminated); surrounding
 * double quotes are removed. false when there is none, or when its value
 * does not fit or holds a byte a cookie value may not (controls, space,
 * '"', ',', ';', '\\').
 */
bool http_cookie_get(const char *header, const char *name, char *out, size_t outsz);

/*
 * The Set-Cookie value of the session cookie into out (outsz bytes):
 * value (NULL or "": the cookie is cleared), Path=/, HttpOnly,
 * SameSite=Strict, Max-Age=max_age (0 when cleared) and Secure when
 * secure. false when it does not fit.
 */
bool http_session_set_cookie(char *out, size_t outsz, const char *value, long max_age, bool secure);

#endif
