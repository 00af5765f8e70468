/*
 * pattern.c - Ant-style include/exclude patterns (pattern.h). Both levels
 * (segments within a path, characters within a segment) use the linear
 * wildcard algorithm: on a mismatch, go back to the last star and let it
 * swallow one more element. That is correct because a star matches any
 * sequence and every other token matches exactly one element.
 */
#include "repo/pattern.h"

#include <string.h>

/* Bytes of the UTF-8 sequence starting with c (1 for a stray byte). */
static size_t pattern__charlen(unsigned char c)
{
    if (c >= 0xf0 && c <= 0xf7)
        return 4;
    if (c >= 0xe0)
        return c <= 0xef ? 3 : 1;
    if (c >= 0xc0)
        return 2;
    return 1;
}

/* One segment: glob g (gl bytes, '*' and '?') against s (sl bytes). */
static bool pattern__glob(const char *g, size_t gl, const char *s, size_t sl)
{
    size_t gi = 0, si = 0;
    size_t star = (size_t)-1, resume = 0;
    while (si < sl) {
        if (gi < gl && g[gi] == '*') {
            star = gi++;
            resume = si;
            continue;
        }
        if (gi < gl && g[gi] == '?') {
            size_t n = pattern__charlen((unsigned char)s[si]);
            gi++;
            si += n <= sl - si ? n : sl - si;
            continue;
        }
        if (gi < gl && g[gi] == s[si]) {
            gi++;
            si++;
            continue;
        }
        if (star == (size_t)-1)
            return false;
        /* let the last star take one more character */
        gi = star + 1;
        resume += pattern__charlen((unsigned char)s[resume]);
        if (resume > sl)
            return false;
        si = resume;
    }
    while (gi < gl && g[gi] == '*')
        gi++;
    return gi == gl;
}

struct pattern__seg {
    const char *p;
    size_t n;
};

/* The next non-empty '/'-separated segment of [*s, end), or false at the end. */
static bool pattern__next(const char **s, const char *end, struct pattern__seg *out)
{
    while (*s < end && **s == '/')
        (*s)++;
    if (*s >= end)
        return false;
    const char *slash = memchr(*s, '/', (size_t)(end - *s));
    const char *e = slash ? slash : end;
    out->p = *s;
    out->n = (size_t)(e - *s);
    *s = e;
    return true;
}

static bool pattern__is_globstar(const struct pattern__seg *t)
{
    return t->n == 2 && t->p[0] == '*' && t->p[1] == '*';
}

/*
 * Segment-level matcher. The pattern text itself is the token array:
 * tokens are re-read from remembered positions after a backtrack. A
 * pattern ending in '/' has one more, implicit "**" token at its end.
 */
bool pattern_match(const char *pattern, size_t plen, const char *path)
{
    const char *pend = pattern + plen;
    const char *send = path + strlen(path);
    bool implicit = plen > 0 && pattern[plen - 1] == '/'; /* the trailing "**" is still ahead */
    const char *pp = pattern, *sp = path;
    const char *star_pp = NULL; /* pattern position after the last "**" */
    const char *star_sp = NULL; /* path position up to which that "**" has swallowed */
    bool star_implicit = false; /* the implicit token still ahead after star_pp */
    struct pattern__seg t, s;

    for (;;) {
        const char *sp_next = sp;
        if (!pattern__next(&sp_next, send, &s))
            break;
        const char *pp_next = pp;
        bool have_t = pattern__next(&pp_next, pend, &t);
        if ((have_t && pattern__is_globstar(&t)) || (!have_t && implicit)) {
            if (!have_t)
                implicit = false;
            star_pp = pp_next;
            star_sp = sp; /* "**" first takes nothing */
            star_implicit = implicit;
            pp = pp_next;
            continue;
        }
        if (have_t && pattern__glob(t.p, t.n, s.p, s.n)) {
            pp = pp_next;
            sp = sp_next;
            continue;
        }
        if (star_pp == NULL)
            return false;
        /* the last "**" takes one more segment */
        if (!pattern__next(&star_sp, send, &s))
            return false;
        sp = star_sp;
        pp = star_pp;
        implicit = star_implicit;
    }
    /* the path is used up: what is left of the pattern must be globstars */
    while (pattern__next(&pp, pend, &t))
        if (!pattern__is_globstar(&t))
            return false;
    return true;
}

bool pattern_list_match(const char *list, const char *path, bool if_empty)
{
    bool any = false;
    const char *s = list ? list : "";
    for (;;) {
        const char *comma = strchr(s, ',');
        const char *e = comma ? comma : s + strlen(s);
        const char *b = s;
        while (b < e && (*b == ' ' || *b == '\t' || *b == '\n' || *b == '\r'))
            b++;
        const char *t = e;
        while (t > b && (t[-1] == ' ' || t[-1] == '\t' || t[-1] == '\n' || t[-1] == '\r'))
            t--;
        if (t > b) {
            any = true;
            if (pattern_match(b, (size_t)(t - b), path))
                return true;
        }
        if (!comma)
            break;
        s = comma + 1;
    }
    return any ? false : if_empty;
}

bool pattern_accepts(const char *includes, const char *excludes, const char *path)
{
    return pattern_list_match(includes, path, true) && !pattern_list_match(excludes, path, false);
}
